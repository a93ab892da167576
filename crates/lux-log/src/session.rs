//! A stage instance's hold on the central log: the input partitions it owns, its batches and its
//! atomic commits.
//!
//! This is the part of the log contract where the two backends differ. On the embedded log one
//! process owns every partition of its inputs, always. On Kafka, the instances of a stage form a
//! consumer group and the broker assigns the partitions; the assignment changes when an instance
//! joins or leaves (a rebalance). A [`StageSession`] hides the difference from the runner:
//!
//! 1. The first [`StageSession::poll`] returns [`Polled::Assigned`]: the partitions this instance
//!    owns and the stage state that lives with them. The runner builds the stage from that state.
//! 2. Later polls return records of owned partitions, in offset order per partition, starting at
//!    the group's committed offsets.
//! 3. After each batch (the records of one poll or of several) the runner calls
//!    [`StageSession::commit`]: outputs, input offsets and state changes, all or nothing (one
//!    journal entry on the embedded log, one transaction on Kafka).
//! 4. When the assignment changes, a poll returns [`Polled::Assigned`] again. A batch the runner
//!    had in hand then is void: nothing of it was committed, and the new assignment starts at the
//!    committed offsets, so its records are read again. The runner drops the batch and the
//!    stage, and builds the stage again from the state of the new assignment.
//!
//! A commit can fail with [`crate::LogError::Fenced`] when this instance lost its partitions in
//! the meantime (another instance took over). Nothing of that batch was committed, so the runner
//! discards it and polls: the next poll returns the new assignment.
//!
//! A backend whose commit waits on the network (Kafka: a transaction is a few round trips to the
//! brokers and the delivery of every record) may run it in the background:
//! [`StageSession::begin_commit`] returns while the commit is in flight, the runner reads and
//! processes its next batch meanwhile, and [`StageSession::end_commit`] gives the outcome before
//! the next commit begins. Commits stay one at a time and in order. A commit in flight is
//! finished before the partitions move (the session waits for it when the group rebalances),
//! and when it fails the batch processed meanwhile is void with it: the runner then treats both
//! as one failed commit (fenced: both are read again from the new assignment; a passing
//! failure: the first is committed again, then the second).
//!
//! State is partitioned like records: a [`StateChange`] names the input partition it lives with,
//! so that on Kafka it moves with that partition to whichever instance owns it (it is written to
//! the partition of the same number of the stage's changelog topic).

use crate::{CentralLog, Commit, Result, StoredRecord, TopicPartition};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A change of a stage's state, committed with the batch that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The input partition whose records this state belongs to (0 for a source, which has no
    /// input). On Kafka, the state entry moves with this partition on a rebalance.
    pub partition: u32,
    pub key: Vec<u8>,
    /// The new value, or `None` to delete the entry.
    pub value: Option<Vec<u8>>,
}

/// What a poll brought.
#[derive(Debug)]
pub enum Polled {
    /// Records of owned partitions (maybe none, when the timeout passed).
    Records(Vec<StoredRecord>),
    /// The owned partitions changed (always the first poll's answer). Records polled before are
    /// void: rebuild the stage from `state` and poll again.
    Assigned(Assignment),
}

/// The partitions an instance owns and the state that lives with them.
#[derive(Debug, Default)]
pub struct Assignment {
    /// Owned input partitions, sorted. Empty for a source, and for an instance that has nothing
    /// to do because the group has more instances than partitions.
    pub partitions: Vec<TopicPartition>,
    /// The latest value of every state entry of the owned partitions (of every partition for a
    /// source), as committed.
    pub state: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One stage instance's session with the log; see the module docs for its life cycle.
pub trait StageSession: Send {
    /// Records of owned partitions, at most `max_records`, waiting up to `timeout` when there is
    /// none; or a new assignment.
    fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Polled>;
    /// Applies the batch's outputs, input offsets and state changes atomically. Polls go on after
    /// the records already polled.
    fn commit(&mut self, commit: &Commit) -> Result<()>;
    /// How many records of the owned partitions are not read yet.
    fn lag(&mut self) -> Result<u64>;
    /// Begins a commit that may finish in the background (see the module docs): `Some` when it
    /// was committed before returning (the default, [`StageSession::commit`]), `None` when it
    /// is in flight. The caller ends a commit in flight with [`StageSession::end_commit`] before
    /// it begins the next one.
    fn begin_commit(&mut self, commit: Arc<Commit>) -> Result<Option<CommitDone>> {
        let started = Instant::now();
        self.commit(&commit)?;
        Ok(Some(CommitDone::since(started)))
    }
    /// Waits for the commit in flight, if any, and gives its outcome (`None`: none was in
    /// flight). When a poll brought a new assignment meanwhile, the commit had finished before
    /// it, and this gives its outcome all the same.
    fn end_commit(&mut self) -> Result<Option<CommitDone>> {
        Ok(None)
    }
}

/// A commit that went through: how long it took and when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitDone {
    pub took: Duration,
    /// The wall clock (milliseconds since the Unix epoch) when its outputs became readable.
    pub at_ms: i64,
}

impl CommitDone {
    /// A commit begun at `started` and ending now.
    pub fn since(started: Instant) -> CommitDone {
        let at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        CommitDone { took: started.elapsed(), at_ms }
    }
}

/// The session of a process that owns every partition of its inputs (the embedded log, which one
/// process holds at a time): one assignment, at the start, of everything, with all the group's
/// state. Built on the plain [`CentralLog`] calls.
pub struct WholeLogSession {
    log: Arc<dyn CentralLog>,
    group: String,
    /// Owned partitions and the offset of the next record to read from each.
    positions: Vec<(TopicPartition, u64)>,
    /// The first poll's answer, until it is given.
    assignment: Option<Assignment>,
    /// Where the next poll starts in `positions`, so that partitions take turns.
    next_turn: usize,
}

impl WholeLogSession {
    /// Starts at the group's committed offsets (at the start of a partition never committed).
    pub fn open(log: Arc<dyn CentralLog>, group: &str, inputs: &[String]) -> Result<Self> {
        let mut positions = Vec::new();
        for topic in inputs {
            let info = log.topic(topic)?;
            for partition in 0..info.partitions {
                let tp = TopicPartition { topic: topic.clone(), partition };
                let start = info.start_offsets.get(partition as usize).copied().unwrap_or(0);
                // Retention may have deleted what a stopped stage had not read: resume at the start.
                let committed = log.committed_offset(group, &tp)?.unwrap_or(start).max(start);
                positions.push((tp, committed));
            }
        }
        let assignment = Assignment {
            partitions: positions.iter().map(|(tp, _)| tp.clone()).collect(),
            state: log.load_state(group)?,
        };
        Ok(WholeLogSession { log, group: group.to_owned(), positions, assignment: Some(assignment), next_turn: 0 })
    }

    fn fetch_round(&mut self, max_records: usize) -> Result<Vec<StoredRecord>> {
        let per_partition = (max_records / self.positions.len().max(1)).max(1);
        let mut records = Vec::new();
        let count = self.positions.len();
        for i in 0..count {
            if records.len() >= max_records {
                break;
            }
            let Some((tp, position)) = self.positions.get_mut((self.next_turn + i) % count) else { continue };
            let fetched = self.log.fetch(&tp.topic, tp.partition, *position, per_partition)?;
            if let Some(last) = fetched.last() {
                *position = last.offset + 1;
            }
            records.extend(fetched);
        }
        self.next_turn = (self.next_turn + 1) % count.max(1);
        Ok(records)
    }
}

impl StageSession for WholeLogSession {
    fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Polled> {
        if let Some(assignment) = self.assignment.take() {
            return Ok(Polled::Assigned(assignment));
        }
        if self.positions.is_empty() {
            std::thread::sleep(timeout);
            return Ok(Polled::Records(Vec::new()));
        }
        let seen = self.log.append_version();
        let records = self.fetch_round(max_records)?;
        if !records.is_empty() || timeout.is_zero() {
            return Ok(Polled::Records(records));
        }
        self.log.wait_for_appends(seen, timeout);
        Ok(Polled::Records(self.fetch_round(max_records)?))
    }

    fn commit(&mut self, commit: &Commit) -> Result<()> {
        debug_assert!(commit.group == self.group, "a session commits for its own group");
        self.log.commit_ref(commit)
    }

    fn lag(&mut self) -> Result<u64> {
        let mut lag = 0;
        let mut last: Option<crate::TopicInfo> = None;
        for (tp, position) in &self.positions {
            if last.as_ref().is_none_or(|info| info.name != tp.topic) {
                last = Some(self.log.topic(&tp.topic)?);
            }
            let end = last.as_ref().and_then(|info| info.end_offsets.get(tp.partition as usize)).copied().unwrap_or(0);
            lag += end.saturating_sub(*position);
        }
        Ok(lag)
    }
}
