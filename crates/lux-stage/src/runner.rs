//! The runner: drives a stage against a central log, batch by batch, one atomic commit each (a
//! processor's batch may span several polls: see [`RunnerOptions::commit_interval`]).

use crate::{Context, Processor, Source, SourcePoll, StageMetrics};
use anyhow::Context as _;
use lux_log::{CentralLog, Commit, CommitDone, LogError, Polled, StageSession, StoredRecord, TopicPartition};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a runner batches and waits.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Most records read (or generated) per commit.
    pub max_batch: usize,
    /// How long a processor may keep reading into one batch, from its first record, before it
    /// commits (a batch also ends when it holds `max_batch` records or its input is idle). Zero:
    /// one commit per poll. Sources commit after every poll whatever this says.
    pub commit_interval: Duration,
    /// How often `end_batch` runs while the input is idle (watermark idleness, timers).
    pub tick: Duration,
    /// Partitions of the topics the runner creates.
    pub partitions: u32,
    /// The dead-letter topic: records emitted to it are counted as dead letters.
    pub deadletter_topic: String,
    /// Stop after the input is exhausted (replay, tests) instead of waiting for more.
    pub stop_when_idle: bool,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            max_batch: 2000,
            commit_interval: Duration::ZERO,
            tick: Duration::from_millis(500),
            partitions: 3,
            deadletter_topic: "deadletter".into(),
            stop_when_idle: false,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// What became of a commit.
enum Committed {
    Yes,
    /// `stop` was set while the commit kept failing: nothing was committed.
    Stopped,
    /// The instance lost its partitions before the commit: nothing was committed, and the next
    /// poll brings the new assignment.
    Fenced,
}

/// A batch whose commit is in flight ([`StageSession::begin_commit`]), and what is counted
/// once it is done.
struct InFlight {
    commit: Arc<Commit>,
    records: u64,
    outputs: u64,
    dead_letters: u64,
    received: Vec<i64>,
}

impl InFlight {
    /// Counts the batch's records as committed at `at_ms`.
    fn count(&self, metrics: &StageMetrics, at_ms: i64) {
        metrics.record_receptions(&self.received, at_ms);
        metrics.records_in.fetch_add(self.records, Ordering::Relaxed);
        metrics.records_out.fetch_add(self.outputs, Ordering::Relaxed);
        metrics.dead_letters.fetch_add(self.dead_letters, Ordering::Relaxed);
    }

    /// Counts the commit and the batch.
    fn done(&self, metrics: &StageMetrics, done: CommitDone) {
        metrics.commits.fetch_add(1, Ordering::Relaxed);
        metrics.commit_latency.record(done.took);
        self.count(metrics, done.at_ms);
    }
}

/// Begins the commit of `batch`: what became of it, and the batch back when its commit is in
/// flight (the caller ends it before the next begins); `None` when it is settled (committed in
/// place, committed again after a failure, or void).
fn begin_commit(
    session: &mut dyn StageSession,
    batch: InFlight,
    metrics: &StageMetrics,
    stop: &AtomicBool,
    stage: &str,
) -> anyhow::Result<(Committed, Option<InFlight>)> {
    match session.begin_commit(batch.commit.clone()) {
        Ok(None) => Ok((Committed::Yes, Some(batch))),
        Ok(Some(done)) => {
            batch.done(metrics, done);
            Ok((Committed::Yes, None))
        }
        Err(failure) => Ok((recommit(session, &batch, failure, metrics, stop, stage)?, None)),
    }
}

/// Ends the commit in flight, if any.
fn end_commit(
    session: &mut dyn StageSession,
    in_flight: &mut Option<InFlight>,
    metrics: &StageMetrics,
    stop: &AtomicBool,
    stage: &str,
) -> anyhow::Result<Committed> {
    let Some(batch) = in_flight.take() else { return Ok(Committed::Yes) };
    match session.end_commit() {
        Ok(Some(done)) => {
            batch.done(metrics, done);
            Ok(Committed::Yes)
        }
        // The session had nothing in flight (it committed in place).
        Ok(None) => Ok(Committed::Yes),
        Err(failure) => recommit(session, &batch, failure, metrics, stop, stage),
    }
}

/// After the commit of `batch` failed: a fenced batch is void (with the batch in hand, read
/// after it: the session's next poll brings the new assignment); after a failure that can pass,
/// the same batch is committed again, in place.
fn recommit(
    session: &mut dyn StageSession,
    batch: &InFlight,
    failure: LogError,
    metrics: &StageMetrics,
    stop: &AtomicBool,
    stage: &str,
) -> anyhow::Result<Committed> {
    metrics.commit_failures.fetch_add(1, Ordering::Relaxed);
    match failure {
        LogError::Fenced { .. } => {
            tracing::warn!(
                stage,
                "batch not committed: the partitions were reassigned; going on from the new assignment"
            );
            Ok(Committed::Fenced)
        }
        LogError::DiskFull { .. } | LogError::Storage { .. } | LogError::Kafka { .. } => {
            tracing::warn!(stage, error = %failure, "commit failed; committing the batch again (nothing is lost: it is kept)");
            let committed = commit_with_retry(session, &batch.commit, metrics, stop, stage)?;
            if let Committed::Yes = committed {
                batch.count(metrics, now_ms());
            }
            Ok(committed)
        }
        error => Err(error).with_context(|| format!("stage {stage}: commit failed")),
    }
}

/// Commits, retrying while the failure is one that can pass (disk full, busy storage, an
/// unreachable broker), until `stop` is set.
fn commit_with_retry(
    session: &mut dyn StageSession,
    commit: &Commit,
    metrics: &StageMetrics,
    stop: &AtomicBool,
    stage: &str,
) -> anyhow::Result<Committed> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        match session.commit(commit) {
            Ok(()) => {
                metrics.commits.fetch_add(1, Ordering::Relaxed);
                metrics.commit_latency.record(started.elapsed());
                return Ok(Committed::Yes);
            }
            Err(LogError::Fenced { .. }) => {
                metrics.commit_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    stage,
                    "batch not committed: the partitions were reassigned; going on from the new assignment"
                );
                return Ok(Committed::Fenced);
            }
            Err(error @ (LogError::DiskFull { .. } | LogError::Storage { .. } | LogError::Kafka { .. })) => {
                metrics.commit_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stage, %error, retry_in = ?backoff, "commit failed; retrying (nothing is lost: the batch is kept)");
                if stop.load(Ordering::Relaxed) {
                    return Ok(Committed::Stopped);
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error).with_context(|| format!("stage {stage}: commit failed")),
        }
    }
}

/// Runs a processor until `stop` is set (finishing and committing the batch in hand), or until
/// its input is exhausted when `options.stop_when_idle`.
///
/// A batch covers one poll or several: the runner keeps polling and processing until the batch
/// holds `options.max_batch` records, `options.commit_interval` has passed since its first
/// record, a poll finds nothing new, or `stop` is set; then it calls the stage's `end_batch` and
/// commits the batch's outputs, input offsets and state in one step.
///
/// The stage is (re)built from the committed state whenever its session brings an assignment:
/// at the start, and after every rebalance on Kafka. A batch in hand then is void (nothing of it
/// was committed, and the new assignment reads its records again from the committed offsets).
pub fn run_processor(
    log: Arc<dyn CentralLog>,
    mut stage: Box<dyn Processor>,
    options: RunnerOptions,
    metrics: Arc<StageMetrics>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let name = stage.name().to_owned();
    for topic in stage.inputs().iter().chain(stage.outputs().iter()) {
        let partitions = stage.partitions(topic).unwrap_or(options.partitions);
        log.ensure_topic(topic, partitions).with_context(|| format!("stage {name}: topic {topic}"))?;
    }
    let fresh_context = || Context::for_log(log.as_ref());
    let mut ctx = fresh_context();
    let mut session = log
        .clone()
        .open_session(&name, &stage.inputs())
        .with_context(|| format!("stage {name}: cannot join the log"))?;
    let max_batch = options.max_batch.max(1);
    let mut received = Vec::new();
    let mut batch = Batch::default();
    let mut last_tick = Instant::now();
    let mut last_lag = Instant::now() - Duration::from_secs(10);
    let mut assigned = false;
    // The batch whose commit runs in the background while the next is read and processed.
    let mut in_flight: Option<InFlight> = None;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && batch.is_empty() {
            break;
        }
        // Inside a batch, a poll waits no longer than what is left of the commit interval; with
        // a commit in flight, no longer than the interval, so that an idle input ends it soon.
        let wait = match batch.started {
            _ if !assigned => Duration::ZERO,
            Some(started) => options.tick.min(options.commit_interval.saturating_sub(started.elapsed())),
            None if in_flight.is_some() => options.tick.min(options.commit_interval.max(Duration::from_millis(10))),
            None => options.tick,
        };
        let room = max_batch.saturating_sub(batch.records).max(1);
        // Asked to stop with a batch in hand: no more reading, the batch is committed.
        let polled = if stopping {
            Polled::Records(Vec::new())
        } else {
            session.poll(room, wait).with_context(|| format!("stage {name}: poll"))?
        };
        let records = match polled {
            Polled::Assigned(assignment) => {
                // A commit in flight finished before the partitions moved; the assignment's
                // offsets and state include it if it went through, and its records are read
                // again if not: either way it is settled (a fenced one brings another
                // assignment at the next poll).
                if let Some(flown) = in_flight.take() {
                    match session.end_commit() {
                        Ok(Some(done)) => flown.done(&metrics, done),
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(stage = %name, %error, "the batch committing when the partitions moved was not committed; it is read again");
                            metrics.commit_failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                tracing::info!(stage = %name, partitions = assignment.partitions.len(), state_entries = assignment.state.len(), "partitions assigned");
                if !batch.is_empty() {
                    tracing::info!(stage = %name, records = batch.records, "the batch in hand is void: the new assignment reads it again");
                }
                batch = Batch::default();
                ctx = fresh_context();
                stage
                    .restore(&assignment.partitions, assignment.state)
                    .with_context(|| format!("stage {name}: cannot restore its state from the log"))?;
                metrics.rebalances.fetch_add(1, Ordering::Relaxed);
                assigned = true;
                continue;
            }
            Polled::Records(records) => records,
        };
        ctx.now_wall_ms = now_ms();
        stage.process_batch(&records, &mut ctx).with_context(|| format!("stage {name}"))?;
        for record in &records {
            batch.advance(record);
        }
        let consumed = records.len();
        if consumed > 0 && batch.started.is_none() {
            batch.started = Some(Instant::now());
        }
        // The batch ends when it is full, old enough, its input is idle (a poll found nothing),
        // or the stage is asked to stop.
        let due = batch.records >= max_batch
            || batch.started.is_some_and(|started| started.elapsed() >= options.commit_interval)
            || consumed == 0
            || stopping
            || stop.load(Ordering::Relaxed);
        if !due {
            continue;
        }
        let batch_records = batch.records;
        let ticked = last_tick.elapsed() >= options.tick;
        // An empty poll of a bounded input is its end: the stage hears of it (end_batch) then.
        if batch_records > 0 || ticked || options.stop_when_idle {
            stage.end_batch(&mut ctx)?;
            last_tick = Instant::now();
        }
        let (outputs, state) = ctx.take();
        ctx.take_received(&mut received);
        let next_offsets = std::mem::take(&mut batch).next_offsets;
        // Commits go one at a time, in order: the one in flight ends before the next begins (and
        // when the input is idle, so that its records are counted without waiting for more).
        let has_commit = batch_records > 0 || !outputs.is_empty() || !state.is_empty();
        if has_commit || in_flight.is_some() {
            match end_commit(session.as_mut(), &mut in_flight, &metrics, &stop, &name)? {
                Committed::Yes => {}
                Committed::Stopped => break,
                // The batch in hand was read after the void one: it is void too.
                Committed::Fenced => continue,
            }
        }
        if has_commit {
            let batch = InFlight {
                records: batch_records as u64,
                outputs: outputs.len() as u64,
                dead_letters: outputs.iter().filter(|o| o.topic == options.deadletter_topic).count() as u64,
                commit: Arc::new(Commit { group: name.clone(), next_offsets, outputs, state }),
                received: std::mem::take(&mut received),
            };
            match begin_commit(session.as_mut(), batch, &metrics, &stop, &name)? {
                (Committed::Yes, flying) => in_flight = flying,
                (Committed::Stopped, _) => break,
                (Committed::Fenced, _) => continue,
            }
            metrics.set_counters(stage.counters());
        }
        if let Some((_, value)) = stage.gauge() {
            metrics.gauge.store(value, Ordering::Relaxed);
        }
        if last_lag.elapsed() >= Duration::from_secs(1) || consumed == 0 {
            last_lag = Instant::now();
            // The lag is for the metrics (and the end of a bounded run): a log that cannot say
            // it for now (a broker unreachable) does not stop a live stage.
            match session.lag() {
                Ok(lag) => {
                    metrics.lag.store(lag, Ordering::Relaxed);
                    // Only a batch that held nothing ends a bounded run: one that held records
                    // was followed by its end_batch, and the stage hears of the input's end at
                    // the next.
                    if batch_records == 0 && lag == 0 && options.stop_when_idle {
                        break;
                    }
                }
                // A bounded run needs the lag to know its end.
                Err(error) if options.stop_when_idle => {
                    return Err(error).with_context(|| format!("stage {name}: lag"));
                }
                Err(error) => {
                    tracing::warn!(stage = %name, %error, "cannot read the stage's lag; trying again later");
                }
            }
        }
    }
    // Stopped (or its bounded input done) with a commit in flight: it ends before the stage.
    end_commit(session.as_mut(), &mut in_flight, &metrics, &stop, &name)?;
    tracing::info!(stage = %name, "stage stopped");
    Ok(())
}

/// The records a processor has read and not committed yet.
#[derive(Default)]
struct Batch {
    /// Records read.
    records: usize,
    /// When the first of them was read (`None`: none yet).
    started: Option<Instant>,
    /// For each input partition read, the offset of the next record.
    next_offsets: Vec<(TopicPartition, u64)>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.records == 0
    }

    fn advance(&mut self, record: &StoredRecord) {
        self.records += 1;
        let next = record.offset + 1;
        match self.next_offsets.iter_mut().find(|(tp, _)| tp.partition == record.partition && tp.topic == record.topic)
        {
            Some((_, offset)) => *offset = next,
            None => self
                .next_offsets
                .push((TopicPartition { topic: record.topic.clone(), partition: record.partition }, next)),
        }
    }
}

/// Runs a source until `stop` is set or the source is finished.
pub fn run_source(
    log: Arc<dyn CentralLog>,
    mut source: Box<dyn Source>,
    options: RunnerOptions,
    metrics: Arc<StageMetrics>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let name = source.name().to_owned();
    for topic in source.outputs() {
        log.ensure_topic(&topic, options.partitions).with_context(|| format!("source {name}: topic {topic}"))?;
    }
    let mut ctx = Context::for_log(log.as_ref());
    let mut session = log.open_session(&name, &[]).with_context(|| format!("source {name}: cannot join the log"))?;
    let mut received = Vec::new();
    let mut restored = false;
    // Set once `stop` is seen by a source that drains what it holds before stopping.
    let mut draining = false;
    loop {
        if stop.load(Ordering::Relaxed) && !draining {
            if !source.stop_intake() {
                break;
            }
            draining = true;
            tracing::info!(source = %name, "stopping: committing what the source already received");
        }
        if !restored {
            // A source owns no input; its first poll brings its state.
            match session.poll(0, Duration::ZERO).with_context(|| format!("source {name}: poll"))? {
                Polled::Assigned(assignment) => {
                    source
                        .restore(assignment.state)
                        .with_context(|| format!("source {name}: cannot restore its state from the log"))?;
                    restored = true;
                    tracing::info!(source = %name, "source started");
                }
                Polled::Records(_) => {}
            }
            continue;
        }
        ctx.now_wall_ms = now_ms();
        let poll = source.poll(&mut ctx, options.max_batch)?;
        metrics.set_counters(source.counters());
        let (outputs, state) = ctx.take();
        ctx.take_received(&mut received);
        if !outputs.is_empty() || !state.is_empty() {
            let count = outputs.len() as u64;
            let commit = Commit { group: name.clone(), next_offsets: Vec::new(), outputs, state };
            match commit_with_retry(session.as_mut(), &commit, &metrics, &stop, &name)? {
                Committed::Yes => {}
                Committed::Stopped => break,
                Committed::Fenced => {
                    // Another instance of the source took over: its state, not ours, goes on.
                    restored = false;
                    continue;
                }
            }
            metrics.record_receptions(&received, now_ms());
            source.committed();
            metrics.records_out.fetch_add(count, Ordering::Relaxed);
        }
        match poll {
            SourcePoll::Ready => {}
            SourcePoll::Idle(_) if draining => break,
            SourcePoll::Idle(wait) => sleep_unless_stopped(wait, &stop),
            SourcePoll::Finished => break,
        }
    }
    tracing::info!(source = %name, "source stopped");
    Ok(())
}

fn sleep_unless_stopped(wait: Duration, stop: &AtomicBool) {
    let deadline = Instant::now() + wait;
    while !stop.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
