//! The runner against the embedded log: outputs, offsets and state advance together, and a
//! restarted stage resumes exactly where its last commit left it.

use lux_log::embedded::EmbeddedLog;
use lux_log::{CentralLog, Durability, LogError};
use lux_stage::*;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

struct Numbers {
    next: u64,
    end: u64,
}

impl Source for Numbers {
    fn name(&self) -> &str {
        "numbers"
    }
    fn outputs(&self) -> Vec<String> {
        vec!["in".into()]
    }
    fn restore(&mut self, state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        for (_, v) in state {
            self.next = String::from_utf8(v)?.parse()?;
        }
        Ok(())
    }
    fn poll(&mut self, ctx: &mut Context, max: usize) -> anyhow::Result<SourcePoll> {
        let upto = (self.next + max as u64).min(self.end);
        for i in self.next..upto {
            ctx.emit("in", i.to_string().as_bytes(), i as i64, i.to_string().into_bytes());
        }
        self.next = upto;
        ctx.set_state(0, b"next".to_vec(), Some(self.next.to_string().into_bytes()));
        Ok(if self.next == self.end { SourcePoll::Finished } else { SourcePoll::Ready })
    }
}

/// Sums its input; emits every record doubled.
struct Doubler {
    sum: u64,
}

impl Processor for Doubler {
    fn name(&self) -> &str {
        "doubler"
    }
    fn inputs(&self) -> Vec<String> {
        vec!["in".into()]
    }
    fn outputs(&self) -> Vec<String> {
        vec!["out".into()]
    }
    fn restore(&mut self, _: &[lux_stage::TopicPartition], state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        for (_, v) in state {
            self.sum = String::from_utf8(v)?.parse()?;
        }
        Ok(())
    }
    fn process(&mut self, record: &lux_log::StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        let n: u64 = std::str::from_utf8(&record.value)?.parse()?;
        self.sum += n;
        ctx.emit(
            "out",
            record.key.as_deref().unwrap_or_default(),
            record.timestamp_ms,
            (2 * n).to_string().into_bytes(),
        );
        Ok(())
    }
    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        ctx.set_state(0, b"sum".to_vec(), Some(self.sum.to_string().into_bytes()));
        Ok(())
    }
}

fn options() -> RunnerOptions {
    RunnerOptions { max_batch: 64, stop_when_idle: true, ..Default::default() }
}

#[test]
fn stages_resume_exactly_where_they_committed() {
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    for (run, end) in [(0, 500u64), (1, 1000)] {
        let log: Arc<dyn CentralLog> = Arc::new(EmbeddedLog::open(dir.path(), Durability::Group).unwrap());
        let metrics = Arc::new(StageMetrics::default());
        run_source(log.clone(), Box::new(Numbers { next: 0, end }), options(), metrics.clone(), stop.clone()).unwrap();
        assert_eq!(metrics.snapshot().records_out, 500, "run {run}: the source resumes after its committed position");
        let metrics = Arc::new(StageMetrics::default());
        run_processor(log.clone(), Box::new(Doubler { sum: 0 }), options(), metrics.clone(), stop.clone()).unwrap();
        assert_eq!(metrics.snapshot().records_in, 500, "run {run}: only new input is processed");
        assert_eq!(metrics.snapshot().lag, 0);
        let state = log.load_state("doubler").unwrap();
        assert_eq!(state[0].1, (0..end).sum::<u64>().to_string().into_bytes());
    }
    let log = EmbeddedLog::open_reader(dir.path()).unwrap();
    assert_eq!(log.topic("out").unwrap().record_count(), 1000);
    assert_eq!(doubled(&log), (0..1000).map(|i| 2 * i).collect::<Vec<_>>());
}

/// Retention deletes input a stage had not read yet: the restarted stage resumes at the start
/// of each partition (it does not loop on the deleted offsets) and reads what is left once.
#[test]
fn a_stage_behind_retention_resumes_at_the_start() {
    use lux_log::embedded::EmbeddedOptions;
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let log_options = EmbeddedOptions {
        segment_bytes: 4 << 10,
        retention_bytes: Some(8 << 10),
        retention_interval: std::time::Duration::ZERO,
        ..EmbeddedOptions::new(Durability::Group)
    };
    let log: Arc<dyn CentralLog> = Arc::new(EmbeddedLog::open_with(dir.path(), log_options).unwrap());
    let source = |end| Box::new(Numbers { next: 0, end });
    let metrics = || Arc::new(StageMetrics::default());
    run_source(log.clone(), source(100), options(), metrics(), stop.clone()).unwrap();
    run_processor(log.clone(), Box::new(Doubler { sum: 0 }), options(), metrics(), stop.clone()).unwrap();
    run_source(log.clone(), source(3000), options(), metrics(), stop.clone()).unwrap();
    let input = log.topic("in").unwrap();
    assert!(input.start_offsets.iter().all(|s| *s > 40), "retention deleted unread input: {input:?}");
    let m = metrics();
    run_processor(log.clone(), Box::new(Doubler { sum: 0 }), options(), m.clone(), stop.clone()).unwrap();
    assert_eq!(m.snapshot().records_in, input.record_count(), "what is left is read once");
    assert_eq!(m.snapshot().lag, 0);
    // Everything the stage emitted was appended once (`out` has retention too: count ends).
    let out = log.topic("out").unwrap();
    assert_eq!(out.end_offsets.iter().sum::<u64>(), 100 + input.record_count());
}

/// A source holding received input (a collector's queue): asked to stop, it takes no more and
/// the runner commits what it holds before stopping; its counters are published per poll.
struct Holding {
    held: u64,
    intake_open: bool,
    polls: u64,
}

impl Source for Holding {
    fn name(&self) -> &str {
        "holding"
    }
    fn outputs(&self) -> Vec<String> {
        vec!["held".into()]
    }
    fn restore(&mut self, _: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        Ok(())
    }
    fn poll(&mut self, ctx: &mut Context, max: usize) -> anyhow::Result<SourcePoll> {
        self.polls += 1;
        let n = self.held.min(max as u64);
        for i in 0..n {
            ctx.emit("held", b"k", 0, i.to_string().into_bytes());
        }
        self.held -= n;
        Ok(if n > 0 { SourcePoll::Ready } else { SourcePoll::Idle(std::time::Duration::ZERO) })
    }
    fn counters(&self) -> Vec<(String, u64)> {
        vec![("polls".into(), self.polls), ("intake_open".into(), u64::from(self.intake_open))]
    }
    fn stop_intake(&mut self) -> bool {
        self.intake_open = false;
        true
    }
}

#[test]
fn a_stopping_source_commits_what_it_holds_first() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn CentralLog> = Arc::new(EmbeddedLog::open(dir.path(), Durability::Group).unwrap());
    let stop = Arc::new(AtomicBool::new(true));
    let metrics = Arc::new(StageMetrics::default());
    let source = Holding { held: 1000, intake_open: true, polls: 0 };
    run_source(log.clone(), Box::new(source), options(), metrics.clone(), stop).unwrap();
    assert_eq!(log.topic("held").unwrap().record_count(), 1000, "asked to stop at once, it still drained");
    assert_eq!(metrics.snapshot().records_out, 1000);
    let counters = metrics.counters();
    assert_eq!(counters.get("intake_open"), Some(&0));
    assert_eq!(counters.get("polls"), Some(&(1000 / 64 + 2)), "64 per poll, then the empty poll that ends it");
}

/// The embedded log seen through sessions whose polls bring at most `per_poll` records and
/// whose commits are recorded (the input records each covered), to watch how the runner
/// groups polls into commits.
struct Observed {
    inner: Arc<dyn CentralLog>,
    per_poll: usize,
    commits: Arc<std::sync::Mutex<Vec<usize>>>,
    /// Commits in the background as Kafka's sessions do: `begin_commit` keeps the commit,
    /// `end_commit` makes it, failing this many times first (a passing failure).
    in_flight: Option<usize>,
}

impl CentralLog for Observed {
    fn ensure_topic(&self, name: &str, partitions: u32) -> lux_log::Result<()> {
        self.inner.ensure_topic(name, partitions)
    }
    fn topics(&self) -> lux_log::Result<Vec<lux_log::TopicInfo>> {
        self.inner.topics()
    }
    fn topic(&self, name: &str) -> lux_log::Result<lux_log::TopicInfo> {
        self.inner.topic(name)
    }
    fn fetch(&self, topic: &str, partition: u32, from: u64, max: usize) -> lux_log::Result<Vec<lux_log::StoredRecord>> {
        self.inner.fetch(topic, partition, from, max)
    }
    fn committed_offset(&self, group: &str, tp: &TopicPartition) -> lux_log::Result<Option<u64>> {
        self.inner.committed_offset(group, tp)
    }
    fn load_state(&self, group: &str) -> lux_log::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.load_state(group)
    }
    fn commit(&self, commit: lux_log::Commit) -> lux_log::Result<()> {
        self.inner.commit(commit)
    }
    fn wait_for_appends(&self, seen_version: u64, timeout: std::time::Duration) -> u64 {
        self.inner.wait_for_appends(seen_version, timeout)
    }
    fn append_version(&self) -> u64 {
        self.inner.append_version()
    }
    fn open_session(
        self: Arc<Self>,
        group: &str,
        inputs: &[String],
    ) -> lux_log::Result<Box<dyn lux_log::StageSession>> {
        let inner = lux_log::WholeLogSession::open(self.inner.clone(), group, inputs)?;
        Ok(Box::new(ObservedSession {
            inner,
            per_poll: self.per_poll,
            commits: self.commits.clone(),
            positions: Default::default(),
            in_flight: self.in_flight.map(|failures| InFlightMode { failures, pending: None }),
        }))
    }
}

struct ObservedSession {
    inner: lux_log::WholeLogSession,
    per_poll: usize,
    commits: Arc<std::sync::Mutex<Vec<usize>>>,
    /// The committed next offset of each partition (all start at 0).
    positions: std::collections::HashMap<TopicPartition, u64>,
    in_flight: Option<InFlightMode>,
}

struct InFlightMode {
    /// End_commits left to fail.
    failures: usize,
    pending: Option<Arc<lux_log::Commit>>,
}

impl lux_log::StageSession for ObservedSession {
    fn poll(&mut self, max: usize, timeout: std::time::Duration) -> lux_log::Result<lux_log::Polled> {
        self.inner.poll(max.min(self.per_poll), timeout)
    }
    fn commit(&mut self, commit: &lux_log::Commit) -> lux_log::Result<()> {
        self.inner.commit(commit)?;
        let mut covered = 0;
        for (tp, next) in &commit.next_offsets {
            let at = self.positions.insert(tp.clone(), *next).unwrap_or(0);
            covered += (*next - at) as usize;
        }
        self.commits.lock().unwrap().push(covered);
        Ok(())
    }
    fn lag(&mut self) -> lux_log::Result<u64> {
        self.inner.lag()
    }
    fn begin_commit(&mut self, commit: Arc<lux_log::Commit>) -> lux_log::Result<Option<lux_log::CommitDone>> {
        match &mut self.in_flight {
            Some(mode) => {
                assert!(mode.pending.is_none(), "a commit began while another was in flight");
                mode.pending = Some(commit);
                Ok(None)
            }
            None => {
                let started = std::time::Instant::now();
                self.commit(&commit)?;
                Ok(Some(lux_log::CommitDone::since(started)))
            }
        }
    }
    fn end_commit(&mut self) -> lux_log::Result<Option<lux_log::CommitDone>> {
        let Some(mode) = &mut self.in_flight else { return Ok(None) };
        let Some(commit) = mode.pending.take() else { return Ok(None) };
        if mode.failures > 0 {
            mode.failures -= 1;
            return Err(LogError::Storage { path: "observed".into(), source: std::io::Error::other("busy") });
        }
        let started = std::time::Instant::now();
        self.commit(&commit)?;
        Ok(Some(lux_log::CommitDone::since(started)))
    }
}

/// Fills `in` (one partition) with 0..n (on the plain embedded log) and returns the observed log over it.
fn observed(dir: &std::path::Path, n: u64, per_poll: usize) -> Arc<Observed> {
    let inner: Arc<dyn CentralLog> = Arc::new(EmbeddedLog::open(dir, Durability::Group).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let options = RunnerOptions { partitions: 1, ..options() };
    run_source(inner.clone(), Box::new(Numbers { next: 0, end: n }), options, Arc::new(StageMetrics::default()), stop)
        .unwrap();
    Arc::new(Observed { inner, per_poll, commits: Default::default(), in_flight: None })
}

/// The doubled values in `out`, sorted.
fn doubled(log: &dyn CentralLog) -> Vec<u64> {
    let out = log.topic("out").unwrap();
    let mut values: Vec<u64> = Vec::new();
    for p in 0..out.partitions {
        values.extend(
            log.fetch("out", p, 0, 100_000)
                .unwrap()
                .iter()
                .map(|r| std::str::from_utf8(&r.value).unwrap().parse::<u64>().unwrap()),
        );
    }
    values.sort();
    values
}

/// With a commit interval, a batch spans polls: the runner commits once per `max_batch`
/// records (and once for the rest when the input runs dry), not once per poll.
#[test]
fn a_batch_spanning_several_polls_is_committed_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = observed(dir.path(), 1000, 50);
    let options = RunnerOptions {
        max_batch: 400,
        commit_interval: std::time::Duration::from_secs(3600),
        stop_when_idle: true,
        partitions: 1,
        ..Default::default()
    };
    let metrics = Arc::new(StageMetrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    run_processor(log.clone(), Box::new(Doubler { sum: 0 }), options, metrics.clone(), stop).unwrap();
    // 8 polls of 50 per commit; the last batch ends when a poll finds nothing, and the end of
    // the input (the next empty poll) is one more end_batch, committing its state alone.
    assert_eq!(*log.commits.lock().unwrap(), [400, 400, 200, 0]);
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.records_in, snapshot.records_out, snapshot.commits), (1000, 1000, 4));
    assert_eq!(doubled(log.as_ref()), (0..1000).map(|i| 2 * i).collect::<Vec<_>>());
    let state = log.load_state("doubler").unwrap();
    assert_eq!(state[0].1, (0..1000u64).sum::<u64>().to_string().into_bytes(), "end_batch ran before each commit");
    // With no interval, every poll is a commit, as before.
    let dir = tempfile::tempdir().unwrap();
    let log = observed(dir.path(), 300, 50);
    let options = RunnerOptions { max_batch: 400, stop_when_idle: true, partitions: 1, ..Default::default() };
    run_processor(
        log.clone(),
        Box::new(Doubler { sum: 0 }),
        options,
        Arc::new(StageMetrics::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    assert_eq!(*log.commits.lock().unwrap(), [50, 50, 50, 50, 50, 50, 0]);
}

/// On a log that commits in the background, the runner ends each commit before it begins the
/// next (the session asserts it), ends the last one before it stops, and commits again, in
/// place, one whose end failed: every record once, every batch counted once.
#[test]
fn commits_in_flight_are_ended_in_order_and_a_failed_one_is_committed_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = observed(dir.path(), 1000, 50);
    let log = Arc::new(Observed { in_flight: Some(2), ..Arc::try_unwrap(log).ok().unwrap() });
    let options = RunnerOptions { max_batch: 100, stop_when_idle: true, partitions: 1, ..Default::default() };
    let metrics = Arc::new(StageMetrics::default());
    run_processor(
        log.clone(),
        Box::new(Doubler { sum: 0 }),
        options,
        metrics.clone(),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    assert_eq!(doubled(log.as_ref()), (0..1000).map(|i| 2 * i).collect::<Vec<_>>());
    let commits = log.commits.lock().unwrap().clone();
    assert_eq!(commits.iter().sum::<usize>(), 1000, "{commits:?}");
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.records_in, snapshot.records_out), (1000, 1000));
    assert_eq!(snapshot.commits, commits.len() as u64);
    assert_eq!(snapshot.commit_failures, 2);
    let state = log.load_state("doubler").unwrap();
    assert_eq!(state[0].1, (0..1000u64).sum::<u64>().to_string().into_bytes());
}

/// Sets `stop` once it has seen `after` records: a stop arriving mid-batch.
struct StopsAfter {
    inner: Doubler,
    seen: u64,
    after: u64,
    stop: Arc<AtomicBool>,
}

impl Processor for StopsAfter {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn inputs(&self) -> Vec<String> {
        self.inner.inputs()
    }
    fn outputs(&self) -> Vec<String> {
        self.inner.outputs()
    }
    fn restore(
        &mut self,
        partitions: &[lux_stage::TopicPartition],
        state: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> anyhow::Result<()> {
        self.inner.restore(partitions, state)
    }
    fn process(&mut self, record: &lux_log::StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        self.seen += 1;
        if self.seen == self.after {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.inner.process(record, ctx)
    }
    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        self.inner.end_batch(ctx)
    }
}

/// A stop in the middle of a batch: the poll in hand is finished, the batch committed (outputs,
/// offsets, state), nothing more read; a restart goes on from there and ends with every record
/// once.
#[test]
fn a_stop_in_the_middle_of_a_batch_commits_what_was_processed() {
    let dir = tempfile::tempdir().unwrap();
    let log = observed(dir.path(), 1000, 50);
    let options = RunnerOptions {
        max_batch: 10_000,
        commit_interval: std::time::Duration::from_secs(3600),
        partitions: 1,
        ..Default::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stage = StopsAfter { inner: Doubler { sum: 0 }, seen: 0, after: 120, stop: stop.clone() };
    let metrics = Arc::new(StageMetrics::default());
    run_processor(log.clone(), Box::new(stage), options.clone(), metrics.clone(), stop).unwrap();
    assert_eq!(*log.commits.lock().unwrap(), [150], "three polls of 50, one commit");
    assert_eq!(metrics.snapshot().records_in, 150);
    let values = doubled(log.as_ref());
    assert_eq!(values.len(), 150);
    let sum: u64 = values.iter().sum::<u64>() / 2;
    assert_eq!(log.load_state("doubler").unwrap()[0].1, sum.to_string().into_bytes(), "the state of those 150");
    // The restart reads the rest once.
    let options = RunnerOptions { stop_when_idle: true, ..options };
    run_processor(
        log.clone(),
        Box::new(Doubler { sum: 0 }),
        options,
        Arc::new(StageMetrics::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    assert_eq!(doubled(log.as_ref()), (0..1000).map(|i| 2 * i).collect::<Vec<_>>());
    assert_eq!(log.load_state("doubler").unwrap()[0].1, (0..1000u64).sum::<u64>().to_string().into_bytes());
}
