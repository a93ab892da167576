//! The runner: drives a stage against a central log, batch by batch, one atomic commit each.

use crate::{Context, Processor, Source, SourcePoll, StageMetrics};
use anyhow::Context as _;
use lux_log::{CentralLog, Commit, LogError, TopicPartition};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a runner batches and waits.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Most records read (or generated) per commit.
    pub max_batch: usize,
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

/// Commits, retrying while the failure is one that can pass (disk full, busy database), until
/// `stop` is set. Returns false if it gave up because of `stop` (nothing was committed).
fn commit_with_retry(
    log: &dyn CentralLog,
    commit: Commit,
    metrics: &StageMetrics,
    stop: &AtomicBool,
    stage: &str,
) -> anyhow::Result<bool> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match log.commit_ref(&commit) {
            Ok(()) => {
                metrics.commits.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            Err(error @ (LogError::DiskFull { .. } | LogError::Storage { .. })) => {
                metrics.commit_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stage, %error, retry_in = ?backoff, "commit failed; retrying (nothing is lost: the batch is kept)");
                if stop.load(Ordering::Relaxed) {
                    return Ok(false);
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
pub fn run_processor(
    log: Arc<dyn CentralLog>,
    mut stage: Box<dyn Processor>,
    options: RunnerOptions,
    metrics: Arc<StageMetrics>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let name = stage.name().to_owned();
    for topic in stage.inputs().iter().chain(stage.outputs().iter()) {
        log.ensure_topic(topic, options.partitions).with_context(|| format!("stage {name}: topic {topic}"))?;
    }
    stage
        .restore(log.load_state(&name)?)
        .with_context(|| format!("stage {name}: cannot restore its state from the log"))?;
    let mut positions: Vec<(TopicPartition, u64)> = Vec::new();
    for topic in stage.inputs() {
        let info = log.topic(&topic)?;
        for partition in 0..info.partitions {
            let tp = TopicPartition { topic: topic.clone(), partition };
            let committed = log.committed_offset(&name, &tp)?.unwrap_or(info.start_offsets[partition as usize]);
            positions.push((tp, committed));
        }
    }
    tracing::debug!(stage = %name, ?positions, "stage started");
    let per_partition = (options.max_batch / positions.len().max(1)).max(1);
    let mut ctx = Context::default();
    let mut last_tick = Instant::now();
    let mut last_lag = Instant::now() - Duration::from_secs(10);
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let seen_version = log.append_version();
        ctx.now_wall_ms = now_ms();
        let mut consumed = 0usize;
        let mut next_offsets = Vec::new();
        for (tp, position) in positions.iter_mut() {
            let records = log.fetch(&tp.topic, tp.partition, *position, per_partition)?;
            if records.is_empty() {
                continue;
            }
            for record in &records {
                stage.process(record, &mut ctx).with_context(|| {
                    format!("stage {name}: record {}/{}/{}", record.topic, record.partition, record.offset)
                })?;
                *position = record.offset + 1;
            }
            consumed += records.len();
            next_offsets.push((tp.clone(), *position));
        }
        let ticked = last_tick.elapsed() >= options.tick;
        if consumed > 0 || ticked {
            stage.end_batch(&mut ctx)?;
            last_tick = Instant::now();
        }
        let (outputs, state) = ctx.take();
        if consumed > 0 || !outputs.is_empty() || !state.is_empty() {
            let out_count = outputs.len() as u64;
            let dead = outputs.iter().filter(|o| o.topic == options.deadletter_topic).count() as u64;
            let commit = Commit { group: name.clone(), next_offsets, outputs, state };
            if !commit_with_retry(log.as_ref(), commit, &metrics, &stop, &name)? {
                break;
            }
            metrics.records_in.fetch_add(consumed as u64, Ordering::Relaxed);
            metrics.records_out.fetch_add(out_count, Ordering::Relaxed);
            metrics.dead_letters.fetch_add(dead, Ordering::Relaxed);
            metrics.set_counters(stage.counters());
        }
        if let Some((_, value)) = stage.gauge() {
            metrics.gauge.store(value, Ordering::Relaxed);
        }
        if last_lag.elapsed() >= Duration::from_secs(1) || consumed == 0 {
            let mut lag = 0;
            for (tp, position) in &positions {
                let info = log.topic(&tp.topic)?;
                lag += info.end_offsets[tp.partition as usize].saturating_sub(*position);
            }
            metrics.lag.store(lag, Ordering::Relaxed);
            last_lag = Instant::now();
            if consumed == 0 && lag == 0 && options.stop_when_idle {
                break;
            }
        }
        if consumed == 0 {
            log.wait_for_appends(seen_version, options.tick);
        }
    }
    tracing::info!(stage = %name, "stage stopped");
    Ok(())
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
    source
        .restore(log.load_state(&name)?)
        .with_context(|| format!("source {name}: cannot restore its state from the log"))?;
    tracing::info!(source = %name, "source started");
    let mut ctx = Context::default();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        ctx.now_wall_ms = now_ms();
        let poll = source.poll(&mut ctx, options.max_batch)?;
        let (outputs, state) = ctx.take();
        if !outputs.is_empty() || !state.is_empty() {
            let count = outputs.len() as u64;
            let commit = Commit { group: name.clone(), next_offsets: Vec::new(), outputs, state };
            if !commit_with_retry(log.as_ref(), commit, &metrics, &stop, &name)? {
                break;
            }
            source.committed();
            metrics.records_out.fetch_add(count, Ordering::Relaxed);
        }
        match poll {
            SourcePoll::Ready => {}
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
