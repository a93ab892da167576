//! The alarm stage's benchmark workload, in issue 8's setting: one rule counting failures per
//! site over 50,000 sites, a 5-minute window sliding every 10 s, 2,000,000 events arriving at
//! 40,000 events/s of event time (50 s, five slides) from 3 enriched partitions, up to 2 s out
//! of order, a third of them failures (threshold 10, clear 5: alarms raise early, update and
//! clear). `cargo bench -p lux-alarm --bench windows` and `lux bench` both run it, so that the
//! two measure the same thing.
//!
//! The window half of the stage ([`AlarmStage`]) starts from the steady state of a long run
//! ([`warm_stage`]: every group holding a full window of 31 panes and its alarm, all committed)
//! and reads the routed topic as the route half writes it ([`routed_records`]: 12 partitions,
//! binary records, a watermark marker per enriched partition in every routed partition after
//! each 1,000 events).

use crate::route::{encode_event, RouteRecord, RuleEvent};
use crate::stage::{AlarmStage, AlarmTopics};
use crate::AlarmConfig;
use lux_log::{StoredRecord, TopicPartition};
use lux_stage::{Context, Processor};
use std::time::{Duration, Instant};

/// Groups (sites).
pub const GROUPS: usize = 50_000;
/// Events of a run.
pub const EVENTS: usize = 2_000_000;
/// Distinct events, fed in turn with their own event times.
pub const TEMPLATES: usize = 100_000;
/// Events between two watermark markers (the route half's batches).
pub const BATCH: usize = 1_000;
/// Records per poll of the routed topic.
pub const POLL: usize = 2_000;
/// 40,000 events/s of event time: 25 microseconds apart.
const EVENTS_PER_SECOND: i64 = 40_000;
/// Event time of the first event of a run (2026-01-05 10:00 UTC).
pub const T0: i64 = 1_767_607_200_000;
/// Enriched partitions the events come from.
const UPSTREAM: u32 = 3;
const ROUTED: &str = "alarm-routed";

/// One template event: where it comes from and what it is.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Its enriched partition.
    pub partition: u32,
    pub failure: bool,
    /// Its group (site) index.
    pub group: usize,
    /// How far (ms) its event time lags the arrival order.
    pub jitter: i64,
}

/// The [`TEMPLATES`] template events (the same every run).
pub fn shapes() -> Vec<Shape> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..TEMPLATES)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            Shape {
                partition: (i % UPSTREAM as usize) as u32,
                failure: state.checked_rem(3) == Some(0),
                group: state as usize % GROUPS,
                jitter: (state >> 20) as i64 % 2_000,
            }
        })
        .collect()
}

/// The site of group `index`.
pub fn site(index: usize) -> String {
    format!("S{index:05}")
}

/// The event time of the `i`th event of a run, with its template's jitter.
pub fn time_of(i: usize, jitter: i64) -> i64 {
    T0 + i as i64 * 1000 / EVENTS_PER_SECOND - jitter
}

/// The setting's configuration: the default rule (failures per site), its window 5 minutes
/// sliding by 10 s, threshold 10 and clear 5, 2 s of out-of-orderness.
pub fn config() -> AlarmConfig {
    let mut cfg = AlarmConfig { out_of_orderness: Duration::from_secs(2), ..AlarmConfig::default() };
    if let Some(rule) = cfg.rules.first_mut() {
        rule.window = Duration::from_secs(300);
        rule.slide = Duration::from_secs(10);
        rule.threshold = Some(10);
        rule.clear = Some(5);
    }
    cfg
}

/// The rule event of group `index` at `time`: a failure.
pub fn failure_of(index: usize, time: i64) -> RuleEvent {
    let site = site(index);
    RuleEvent {
        rule: "site-failures".to_owned(),
        group_key: format!("site={site}"),
        values: vec![site],
        time,
        failure: true,
        suppress: false,
        intervention: None,
        received_at: T0,
    }
}

fn topics() -> AlarmTopics {
    AlarmTopics {
        enriched: "enriched".into(),
        routed: ROUTED.into(),
        alarms: "alarms".into(),
        deadletter: "deadletter".into(),
        late: "late".into(),
    }
}

/// A record of the routed topic: an event in its group's partition, or a marker in `partition`.
fn routed_record(partitions: u32, partition: Option<u32>, event: Option<&RuleEvent>, value: Vec<u8>) -> StoredRecord {
    let key = event.map(|e| crate::alarm_key(&e.rule, &e.group_key)).unwrap_or_default();
    StoredRecord {
        topic: ROUTED.into(),
        partition: partition.unwrap_or_else(|| lux_log::partition_for_key(&key, partitions)),
        // The window half does not read offsets.
        offset: 0,
        key: Some(key),
        timestamp_ms: event.map_or(T0, |e| e.time),
        value,
        decoded: None,
    }
}

fn marker(partitions: u32, upstream: u32, max_event_time: i64) -> impl Iterator<Item = StoredRecord> {
    let value = RouteRecord::Watermark { upstream, max_event_time }.encode();
    (0..partitions).map(move |p| routed_record(partitions, Some(p), None, value.clone()))
}

fn event_record(partitions: u32, upstream: u32, event: &RuleEvent) -> StoredRecord {
    let mut value = Vec::with_capacity(64);
    encode_event(upstream, None, event, &mut value);
    routed_record(partitions, None, Some(event), value)
}

/// The routed topic (of `cfg.routed_partitions` partitions) as the route half writes it for the
/// [`EVENTS`] events of a run, in the order the window half reads it.
pub fn routed_records(cfg: &AlarmConfig, shapes: &[Shape]) -> Vec<StoredRecord> {
    let partitions = cfg.routed_partitions.max(1);
    let mut records = Vec::with_capacity(EVENTS + EVENTS / BATCH * (UPSTREAM * partitions) as usize);
    let mut highest = [i64::MIN; UPSTREAM as usize];
    for i in 0..EVENTS {
        let Some(shape) = shapes.get(i % shapes.len().max(1)) else { break };
        let event = RuleEvent { time: time_of(i, shape.jitter), failure: shape.failure, ..failure_of(shape.group, T0) };
        if let Some(h) = highest.get_mut(shape.partition as usize) {
            *h = (*h).max(event.time);
        }
        records.push(event_record(partitions, shape.partition, &event));
        if i % BATCH == BATCH - 1 {
            for (upstream, &max_event_time) in (0..).zip(highest.iter()) {
                records.extend(marker(partitions, upstream, max_event_time));
            }
        }
    }
    records
}

/// The window half of the stage on `threads` threads (0: one per core), in the steady state of
/// a long run: every group has had one failure in each of the 31 slides before [`T0`] (a full
/// window of panes, as many as a long run keeps), the windows before `T0` are evaluated and the
/// state is committed. Fed through its own `process_batch` and `end_batch`.
pub fn warm_stage(cfg: &AlarmConfig, threads: usize) -> anyhow::Result<AlarmStage> {
    let partitions = cfg.routed_partitions.max(1);
    let mut stage = AlarmStage::new(cfg, UPSTREAM, partitions, topics())?.with_threads(threads);
    let assigned: Vec<TopicPartition> =
        (0..partitions).map(|partition| TopicPartition { topic: ROUTED.into(), partition }).collect();
    stage.restore(&assigned, Vec::new())?;
    for slide in (1..=31).rev() {
        let time = T0 - slide * 10_000;
        let mut poll: Vec<StoredRecord> = (0..GROUPS)
            .map(|index| event_record(partitions, (index % UPSTREAM as usize) as u32, &failure_of(index, time)))
            .collect();
        for upstream in 0..UPSTREAM {
            poll.extend(marker(partitions, upstream, time));
        }
        let mut ctx = Context::default();
        stage.process_batch(&poll, &mut ctx)?;
        stage.end_batch(&mut ctx)?;
    }
    Ok(stage)
}

/// Feeds `records` to `stage` in polls of [`POLL`] records, with the `end_batch` of a commit
/// every `commit_every` records, and returns the time spent in the stage's calls. Making each
/// poll's records (a copy of `records`, fresh in memory as after a read) and dropping what a
/// commit took are the log's work: not timed.
pub fn feed(stage: &mut AlarmStage, records: &[StoredRecord], commit_every: usize) -> anyhow::Result<Duration> {
    let mut spent = Duration::ZERO;
    let mut ctx = Context::default();
    let mut since_commit = 0;
    for source in records.chunks(POLL) {
        let poll = source.to_vec();
        let started = Instant::now();
        stage.process_batch(&poll, &mut ctx)?;
        since_commit += poll.len();
        let commit = since_commit >= commit_every;
        if commit {
            since_commit = 0;
            stage.end_batch(&mut ctx)?;
        }
        spent += started.elapsed();
        if commit {
            drop(std::mem::take(&mut ctx));
        }
    }
    Ok(spent)
}
