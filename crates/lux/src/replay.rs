//! `lux replay`: the batch analysis users run with the same pipeline. It re-runs the transform
//! and alarm stages of `lux run` (the same stage code, through the same runner) over a range of
//! the raw topic, from an offset or a time up to the raw topic's end as of the replay's start
//! (or `--to`), into new topics named with a prefix (`replay1.enriched`, `replay1.alarms`,
//! `replay1.deadletter`) under their own consumer groups (`replay1.transform`, `replay1.alarm`),
//! so that the live topics and the live stages' offsets are untouched.
//!
//! The two stages run one after the other: the transform reads the whole range first, then the
//! alarm stage reads its complete output as a bounded input, evaluating the last windows at its
//! end (`AlarmStage::bounded`) instead of waiting for the wall clock. Given the same raw records,
//! reference data and subscriber key, the outputs are those of the live run.

use crate::config::LuxConfig;
use crate::run::{Pipeline, Topology};
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use lux_alarm::stage::{AlarmRouteStage, AlarmStage, AlarmTopics};
use lux_log::{CentralLog, Commit, StoredRecord, TopicPartition};
use lux_stage::{run_processor, Context, Processor, RunnerOptions, StageMetrics};
use lux_transform::{TransformStage, TransformTopics};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Options of `lux replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Prefix of the output topics and consumer groups (`replay1.` writes `replay1.enriched`,
    /// `replay1.alarms`, `replay1.deadletter`). Their topics must not hold records yet.
    #[arg(long, value_name = "PREFIX")]
    pub output_prefix: String,
    /// Start, in each partition of the raw topic, at the first record stamped at or after this
    /// time (RFC 3339, `2026-01-05T10:00:00Z`). Default: the oldest record.
    #[arg(long, value_name = "RFC3339", conflicts_with = "from_offset")]
    pub from: Option<String>,
    /// Start at this offset in every partition of the raw topic.
    #[arg(long, value_name = "N")]
    pub from_offset: Option<u64>,
    /// Stop, in each partition, before the first record stamped at or after this time.
    /// Default: the raw topic's end as of the replay's start.
    #[arg(long, value_name = "RFC3339", conflicts_with = "to_offset")]
    pub to: Option<String>,
    /// Stop before this offset in every partition of the raw topic.
    #[arg(long, value_name = "N")]
    pub to_offset: Option<u64>,
}

/// Where a replay reads, per partition of the raw topic: `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRange {
    pub from: Vec<u64>,
    pub to: Vec<u64>,
}

impl ReplayRange {
    pub fn records(&self) -> u64 {
        self.from.iter().zip(&self.to).map(|(f, t)| t.saturating_sub(*f)).sum()
    }
}

fn parse_time(flag: &str, text: &str) -> anyhow::Result<i64> {
    lux_generate::parse_rfc3339_ms(text).map_err(|reason| anyhow::anyhow!("{flag}: {reason}"))
}

/// The range the arguments select in the raw topic, clipped to what the log holds.
pub fn range(log: &dyn CentralLog, raw: &str, args: &ReplayArgs) -> anyhow::Result<ReplayRange> {
    let info = log.topic(raw)?;
    let bound = |time: &Option<String>, offset: Option<u64>, flag: &str, default: &[u64]| -> anyhow::Result<Vec<u64>> {
        (0..info.partitions)
            .map(|p| {
                let (start, end) = (info.start_offsets[p as usize], info.end_offsets[p as usize]);
                Ok(match (time, offset) {
                    (Some(text), _) => log.offset_for_time(raw, p, parse_time(flag, text)?)?,
                    (None, Some(n)) => n.clamp(start, end),
                    (None, None) => default[p as usize],
                })
            })
            .collect()
    };
    let from = bound(&args.from, args.from_offset, "--from", &info.start_offsets)?;
    let to = bound(&args.to, args.to_offset, "--to", &info.end_offsets)?;
    if let Some(p) = from.iter().zip(&to).position(|(f, t)| t < f) {
        anyhow::bail!(
            "the replay would end before it starts in partition {p} of {raw} (offsets {} to {}): check --from and --to",
            from[p],
            to[p]
        );
    }
    Ok(ReplayRange { from, to })
}

/// The transform stage of a replay: under the replay's consumer group, and blind to records at or
/// beyond the range's end (it sets `done` once every partition reached it).
struct Bounded {
    inner: Box<dyn Processor>,
    group: String,
    to: Vec<u64>,
    next: Vec<u64>,
    done: Arc<AtomicBool>,
}

impl Bounded {
    fn check_done(&self) {
        if self.next.iter().zip(&self.to).all(|(n, t)| n >= t) {
            self.done.store(true, Ordering::Relaxed);
        }
    }
}

impl Processor for Bounded {
    fn name(&self) -> &str {
        &self.group
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
    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        self.process_batch(std::slice::from_ref(record), ctx)
    }
    /// The records within the replayed range go to the stage in one batch (it may spread them
    /// over threads): all of them, mostly, as only the last poll reaches past the range.
    fn process_batch(&mut self, records: &[StoredRecord], ctx: &mut Context) -> anyhow::Result<()> {
        let within = |r: &StoredRecord| self.to.get(r.partition as usize).is_some_and(|&end| r.offset < end);
        if records.iter().all(within) {
            self.inner.process_batch(records, ctx)?;
        } else {
            let kept: Vec<StoredRecord> = records.iter().filter(|r| within(r)).cloned().collect();
            self.inner.process_batch(&kept, ctx)?;
        }
        for record in records {
            if let Some(next) = self.next.get_mut(record.partition as usize) {
                *next = record.offset + 1;
            }
        }
        self.check_done();
        Ok(())
    }
    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        self.inner.end_batch(ctx)
    }
    fn counters(&self) -> Vec<(String, u64)> {
        self.inner.counters()
    }
}

/// What a replay wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub raw_records: u64,
    pub events: u64,
    pub dead_letters: u64,
    pub alarms: u64,
}

fn bar(prefix: &'static str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total).with_prefix(prefix);
    let style = ProgressStyle::with_template(
        "{prefix:>9} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} records, {msg}, eta {eta}",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// Runs `stage` to the end of its input on its own thread, showing progress from `done()` until
/// it finishes; `stop` (Ctrl-C) ends it after the batch in hand.
fn run_stage(
    log: &Arc<dyn CentralLog>,
    stage: Box<dyn Processor>,
    runner: RunnerOptions,
    stage_stop: Arc<AtomicBool>,
    stop: &AtomicBool,
    bar: &ProgressBar,
    done: &dyn Fn(&StageMetrics) -> anyhow::Result<u64>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(StageMetrics::default());
    let handle = {
        let (log, metrics, stage_stop) = (log.clone(), metrics.clone(), stage_stop.clone());
        std::thread::Builder::new()
            .name("lux-replay".into())
            .spawn(move || run_processor(log, stage, runner, metrics, stage_stop))?
    };
    while !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if stop.load(Ordering::Relaxed) {
            stage_stop.store(true, Ordering::Relaxed);
        }
        show(bar, done(&metrics)?);
    }
    let result = handle.join().map_err(|_| anyhow::anyhow!("the replay crashed (a bug: please report it)"))?;
    show(bar, done(&metrics)?);
    bar.finish_and_clear();
    let seconds = bar.elapsed().as_secs_f64();
    eprintln!(
        "lux replay: {} {} record(s) in {seconds:.1}s ({:.0}/s)",
        bar.prefix(),
        bar.position(),
        bar.position() as f64 / seconds.max(0.001)
    );
    result
}

/// Moves the bar to `position`, with the mean rate so far.
fn show(bar: &ProgressBar, position: u64) {
    bar.set_position(position);
    bar.set_message(format!("{:.0}/s", position as f64 / bar.elapsed().as_secs_f64().max(0.001)));
}

pub fn replay(
    config: LuxConfig,
    data_dir: &Path,
    args: &ReplayArgs,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ReplaySummary> {
    let prefix = &args.output_prefix;
    if prefix.is_empty() {
        anyhow::bail!("--output-prefix must not be empty: the replay must not write into the live topics");
    }
    let topology = Topology::of(&config);
    let out = |topic: &str| format!("{prefix}{topic}");
    let (enriched, deadletter, alarms) = (out(&topology.enriched), out(&topology.deadletter), out(&topology.alarms));
    let (routed, late) = (out(&topology.alarm_routed), out(&topology.late));
    let (transform_group, route_group, alarm_group) = (out("transform"), out("alarm-route"), out("alarm"));
    for topic in [&enriched, &deadletter, &routed, &alarms, &late] {
        lux_log::validate_topic_name(topic).with_context(|| format!("--output-prefix {prefix:?}"))?;
    }
    let Pipeline { log, reference, key, .. } = Pipeline::open(&config, data_dir, stop.clone(), None)?;
    let result = (|| {
        let raw = log.topic(&topology.raw).with_context(|| "nothing to replay yet".to_string())?;
        for topic in [&enriched, &deadletter, &routed, &alarms, &late] {
            if log.topic(topic).is_ok_and(|t| t.record_count() > 0) {
                anyhow::bail!(
                    "topic {topic} already holds records (an earlier replay?); choose another --output-prefix"
                );
            }
        }
        let range = range(log.as_ref(), &topology.raw, args)?;
        let total = range.records();
        eprintln!(
            "lux replay: {total} raw record(s) of {} (offsets {:?} to {:?}) into {enriched}, {deadletter}, {alarms}",
            topology.raw, range.from, range.to
        );
        let runner = RunnerOptions {
            partitions: config.log.partitions,
            max_batch: config.log.commit_max_records(),
            commit_interval: config.log.commit_interval(),
            deadletter_topic: deadletter.clone(),
            stop_when_idle: true,
            ..Default::default()
        };

        // The transform, from the range's start: its group's offsets are set there first.
        let tps: Vec<TopicPartition> =
            (0..raw.partitions).map(|partition| TopicPartition { topic: topology.raw.clone(), partition }).collect();
        log.commit(Commit {
            group: transform_group.clone(),
            next_offsets: tps.iter().cloned().zip(range.from.iter().copied()).collect(),
            ..Default::default()
        })?;
        let topics =
            TransformTopics { raw: topology.raw.clone(), enriched: enriched.clone(), deadletter: deadletter.clone() };
        let done = Arc::new(AtomicBool::new(false));
        let stage = Bounded {
            inner: Box::new(TransformStage::new(&config.transform, &key, reference.clone(), topics)),
            group: transform_group.clone(),
            to: range.to.clone(),
            next: range.from.clone(),
            done: done.clone(),
        };
        stage.check_done();
        let transform_bar = bar("transform", total);
        if !done.load(Ordering::Relaxed) {
            let progress = |_: &StageMetrics| -> anyhow::Result<u64> {
                let mut sum = 0;
                for ((tp, from), to) in tps.iter().zip(&range.from).zip(&range.to) {
                    let at = log.committed_offset(&transform_group, tp)?.unwrap_or(*from);
                    sum += at.clamp(*from, *to) - from;
                }
                Ok(sum)
            };
            run_stage(&log, Box::new(stage), runner.clone(), done, &stop, &transform_bar, &progress)?;
        }
        if stop.load(Ordering::Relaxed) {
            anyhow::bail!(
                "interrupted: {enriched} and {deadletter} hold part of the range; replay into another prefix"
            );
        }

        // The alarm stage's two halves, each over the complete output of the one before.
        let events = log.topic(&enriched)?.record_count();
        let topics = AlarmTopics {
            enriched: enriched.clone(),
            routed: routed.clone(),
            alarms: alarms.clone(),
            deadletter: deadletter.clone(),
            late: late.clone(),
        };
        let partitions = config.log.partitions;
        let routed_partitions = crate::run::routed_partitions(log.as_ref(), &routed, &config.alarm);
        let progress = |m: &StageMetrics| Ok(m.records_in.load(Ordering::Relaxed));
        let route = AlarmRouteStage::new(&config.alarm, routed_partitions, topics.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_group(&route_group);
        let route_bar = bar("route", events);
        run_stage(
            &log,
            Box::new(route),
            runner.clone(),
            Arc::new(AtomicBool::new(false)),
            &stop,
            &route_bar,
            &progress,
        )?;
        if stop.load(Ordering::Relaxed) {
            anyhow::bail!("interrupted: {routed} holds part of the range; replay into another prefix");
        }
        let stage = AlarmStage::new(&config.alarm, partitions, routed_partitions, topics)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_group(&alarm_group)
            .bounded();
        let alarm_bar = bar("alarm", log.topic(&routed)?.record_count());
        let alarm_runner = RunnerOptions { tick: Duration::ZERO, ..runner };
        run_stage(&log, Box::new(stage), alarm_runner, Arc::new(AtomicBool::new(false)), &stop, &alarm_bar, &progress)?;
        if stop.load(Ordering::Relaxed) {
            anyhow::bail!("interrupted: {alarms} holds part of the alarms; replay into another prefix");
        }
        Ok(ReplaySummary {
            raw_records: total,
            events,
            dead_letters: log.topic(&deadletter)?.record_count(),
            alarms: log.topic(&alarms)?.record_count(),
        })
    })();
    stop.store(true, Ordering::Relaxed);
    reference.join();
    result
}
