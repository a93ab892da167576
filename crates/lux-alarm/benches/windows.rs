//! Throughput of the alarm windows in the setting: one rule counting failures per group
//! over 50,000 groups, a 5-minute window sliding every 10 s, 2,000,000 events arriving at 40,000
//! events/s of event time (50 s, five slides) from 3 partitions, up to 2 s out of order, a third
//! of them failures (threshold 10, clear 5: alarms raise early, update and clear).
//!
//! - `window_stage`: what the `alarm` stage does per routed event: [`AlarmEngine::on_rule_event`],
//!   then per batch of 1,000 events one watermark marker per partition and `advance`.
//! - `window_stage+state/N`: the same, serialising the changed state entries once every `N`
//!   events, as the runner's commit does with commits of `N` records (`log.commit_max_records`:
//!   10,000 by default on the embedded log, 50,000 on Kafka; 2,000 was the embedded log's
//!   commit before batches spanned polls).
//! - `route+window`: [`AlarmEngine::on_event`] on enriched events (routing, group keys, windows
//!   in one engine), `advance` per batch.
//! - `stage/threads=T/commit=N`: the window half of the stage itself, [`AlarmStage`], on the
//!   binary records of the routed topic (12 partitions, the default, one engine each): polls of
//!   2,000 records through `process_batch`, with the route half's watermark markers among them,
//!   and every `N` records the `end_batch` of a commit (alarm records, state changes). Its
//!   engines run on `T` threads (`alarm.threads`). Only the stage's calls are timed: making each
//!   poll's records (a copy of the stored ones, fresh in memory as after a read) and dropping
//!   what a commit took are the log's work (`cargo bench -p lux-log`, `lux bench`).
//!
//! Each run starts from the steady state of the setting ([`warm_engine`], not measured): every
//! group holds a full window of panes and its alarm, all committed. Events are 100,000 templates
//! (two per group) fed in turn, their event time set as they are fed so that memory stays small.
//! Run: `cargo bench -p lux-alarm --bench windows` (measured numbers: BENCHMARKS.md, Alarm
//! windows).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lux_alarm::route::{encode_event, RouteRecord, RuleEvent};
use lux_alarm::stage::{AlarmStage, AlarmTopics};
use lux_alarm::{AlarmConfig, AlarmEngine};
use lux_log::{StoredRecord, TopicPartition};
use lux_model::{
    EnrichedEvent, EquipmentInfo, EquipmentKey, Event, EventKind, Format, Outcome, ReferenceInfo, ReferenceStatus,
};
use lux_stage::{Context, Processor};
use std::time::{Duration, Instant};

/// The `lux` binary's allocator, so that the figures are those of the stage.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GROUPS: usize = 50_000;
const EVENTS: usize = 2_000_000;
/// Distinct events fed in turn (each with its own event time).
const TEMPLATES: usize = 100_000;
const BATCH: usize = 1_000;
/// 40,000 events/s of event time: 25 microseconds apart.
const EVENTS_PER_SECOND: i64 = 40_000;
const T0: i64 = 1_767_607_200_000;

/// (partition, failure, site index, jitter in ms) of each template.
fn shapes() -> Vec<(u32, bool, usize, i64)> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..TEMPLATES)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((i % 3) as u32, state.checked_rem(3) == Some(0), state as usize % GROUPS, (state >> 20) as i64 % 2_000)
        })
        .collect()
}

fn site(index: usize) -> String {
    format!("S{index:05}")
}

/// The event time of the `i`th event fed, with its template's jitter.
fn time_of(i: usize, jitter: i64) -> i64 {
    T0 + i as i64 * 1000 / EVENTS_PER_SECOND - jitter
}

fn enriched(failure: bool, site: String) -> EnrichedEvent {
    EnrichedEvent {
        schema: lux_model::schema::ENRICHED.into(),
        event: Event {
            event_id: "e".into(),
            event_time: T0,
            received_at: T0,
            source: "bench".into(),
            format: Format::Syslog,
            equipment_id: format!("bng-{site}").into(),
            equipment_key: EquipmentKey::Hostname,
            kind: if failure { EventKind::AuthReject } else { EventKind::SessionStart },
            outcome: if failure { Outcome::Failure } else { Outcome::Success },
            error_code: None,
            subscriber: None,
            message: None,
            attributes: Default::default(),
        },
        is_failure: failure,
        equipment: Some(std::sync::Arc::new(EquipmentInfo {
            equipment_id: format!("bng-{site}"),
            equipment_type: "bng".to_owned(),
            model: "MX960".to_owned(),
            manufacturer: "juniper".to_owned(),
            site,
            region: "IDF".to_owned(),
            technology: "core".to_owned(),
        })),
        error: None,
        maintenance: None,
        reference: ReferenceInfo { status: ReferenceStatus::Ok, version: "v1".into() },
    }
}

fn config() -> AlarmConfig {
    let mut cfg = AlarmConfig { out_of_orderness: Duration::from_secs(2), ..AlarmConfig::default() };
    if let Some(rule) = cfg.rules.first_mut() {
        rule.window = Duration::from_secs(300);
        rule.slide = Duration::from_secs(10);
        rule.threshold = Some(10);
        rule.clear = Some(5);
    }
    cfg
}

/// The rule event of group `index` at `time`, from `partition`: a failure.
fn warm_up_event(index: usize, time: i64) -> RuleEvent {
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

/// An engine in the steady state of the setting, as after running longer than a window: every
/// group has one failure in each of the 31 slides before `T0` (a full window of panes, as many
/// as a long run keeps), the windows before `T0` are evaluated and the state is committed.
fn warm_engine(cfg: &AlarmConfig) -> AlarmEngine {
    let mut engine = AlarmEngine::new(cfg, &[0, 1, 2]).expect("valid config");
    let mut events: Vec<RuleEvent> = (0..GROUPS).map(|index| warm_up_event(index, T0)).collect();
    for slide in (1..=31).rev() {
        let time = T0 - slide * 10_000;
        for (index, event) in events.iter_mut().enumerate() {
            event.time = time;
            engine.on_rule_event((index % 3) as u32, event, 0);
        }
        for p in 0..3 {
            engine.on_watermark(p, time, 0);
        }
        engine.advance(0);
        engine.take_changes();
    }
    engine
}

fn windows(c: &mut Criterion) {
    let cfg = config();
    let shapes = shapes();
    let mut rule_events: Vec<(u32, i64, RuleEvent)> = shapes
        .iter()
        .map(|&(partition, failure, index, jitter)| {
            let site = site(index);
            let event = RuleEvent {
                rule: "site-failures".to_owned(),
                group_key: format!("site={site}"),
                values: vec![site],
                time: T0,
                failure,
                suppress: false,
                intervention: None,
                received_at: T0,
            };
            (partition, jitter, event)
        })
        .collect();
    let mut enriched_events: Vec<(u32, i64, EnrichedEvent)> = shapes
        .iter()
        .map(|&(partition, failure, index, jitter)| (partition, jitter, enriched(failure, site(index))))
        .collect();

    let mut group = c.benchmark_group("alarm_windows_50k_groups_5m_by_10s");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    for (name, commit_every) in
        [("window_stage", None), ("window_stage+state/2000", Some(2_000)), ("window_stage+state/50000", Some(50_000))]
    {
        group.bench_function(name, |b| {
            b.iter_batched(
                || warm_engine(&cfg),
                |mut engine| {
                    let mut out = 0usize;
                    let mut highest = [i64::MIN; 3];
                    for i in 0..EVENTS {
                        let (partition, jitter, event) = &mut rule_events[i % TEMPLATES];
                        event.time = time_of(i, *jitter);
                        let p = *partition as usize;
                        highest[p] = highest[p].max(event.time);
                        engine.on_rule_event(*partition, event, 0);
                        if i % BATCH == BATCH - 1 {
                            for (p, &time) in highest.iter().enumerate() {
                                engine.on_watermark(p as u32, time, 0);
                            }
                            out += engine.advance(0).len();
                        }
                        if commit_every.is_some_and(|every| i % every == every - 1) {
                            out += engine.take_changes().len();
                        }
                    }
                    (engine, out)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.bench_function("route+window", |b| {
        b.iter_batched(
            || warm_engine(&cfg),
            |mut engine| {
                let mut out = 0usize;
                for i in 0..EVENTS {
                    let (partition, jitter, event) = &mut enriched_events[i % TEMPLATES];
                    event.event.event_time = time_of(i, *jitter);
                    engine.on_event(*partition, event, 0);
                    if i % BATCH == BATCH - 1 {
                        out += engine.advance(0).len();
                    }
                }
                (engine, out)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let records = routed_records(&shapes);
    let mut group = c.benchmark_group("alarm_windows_50k_groups_5m_by_10s");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    for (threads, commit_every) in [(1, 10_000), (2, 10_000), (2, 50_000)] {
        group.bench_function(format!("stage/threads={threads}/commit={commit_every}"), |b| {
            b.iter_custom(|iters| {
                let mut measured = Duration::ZERO;
                for _ in 0..iters {
                    let mut stage = warm_stage(&cfg, threads);
                    let mut ctx = Context::default();
                    let mut since_commit = 0;
                    for source in records.chunks(POLL) {
                        // The log's work, not measured: the poll's records as a read makes them
                        // (fresh in memory), and, below, the commit taking the outputs and state.
                        let poll = source.to_vec();
                        let started = Instant::now();
                        stage.process_batch(&poll, &mut ctx).expect("routed records");
                        since_commit += poll.len();
                        let commit = since_commit >= commit_every;
                        if commit {
                            since_commit = 0;
                            stage.end_batch(&mut ctx).expect("end of batch");
                        }
                        measured += started.elapsed();
                        if commit {
                            drop(std::mem::take(&mut ctx));
                        }
                    }
                }
                measured
            })
        });
    }
    group.finish();
}

/// Partitions of the routed topic in the stage benchmarks (`alarm.routed_partitions`' default):
/// one engine each.
const ROUTED_PARTITIONS: u32 = 12;
/// Records per poll of the routed topic.
const POLL: usize = 2_000;
const ROUTED: &str = "alarm-routed";

fn topics() -> AlarmTopics {
    AlarmTopics {
        enriched: "enriched".into(),
        routed: ROUTED.into(),
        alarms: "alarms".into(),
        deadletter: "deadletter".into(),
        late: "late".into(),
    }
}

/// A record of the routed topic, in its group's partition (or `partition` for a marker).
fn routed_record(partition: Option<u32>, offset: u64, event: Option<&RuleEvent>, value: Vec<u8>) -> StoredRecord {
    let key = event.map(|e| lux_alarm::alarm_key(&e.rule, &e.group_key)).unwrap_or_default();
    StoredRecord {
        topic: ROUTED.into(),
        partition: partition.unwrap_or_else(|| lux_log::partition_for_key(&key, ROUTED_PARTITIONS)),
        offset,
        key: Some(key),
        timestamp_ms: event.map_or(T0, |e| e.time),
        value,
    }
}

/// The routed topic as the route half writes it for the setting's 2,000,000 events (offsets are
/// not per partition: the window half does not read them).
fn routed_records(shapes: &[(u32, bool, usize, i64)]) -> Vec<StoredRecord> {
    let mut records = Vec::with_capacity(EVENTS + EVENTS / BATCH * 3 * ROUTED_PARTITIONS as usize);
    let mut highest = [i64::MIN; 3];
    for i in 0..EVENTS {
        let (partition, failure, index, jitter) = shapes[i % TEMPLATES];
        let event = RuleEvent { time: time_of(i, jitter), failure, ..warm_up_event(index, T0) };
        highest[partition as usize] = highest[partition as usize].max(event.time);
        let mut value = Vec::with_capacity(64);
        encode_event(partition, Some(i as u64), &event, &mut value);
        records.push(routed_record(None, i as u64, Some(&event), value));
        if i % BATCH == BATCH - 1 {
            for (upstream, &max_event_time) in highest.iter().enumerate() {
                let marker = RouteRecord::Watermark { upstream: upstream as u32, max_event_time }.encode();
                for p in 0..ROUTED_PARTITIONS {
                    records.push(routed_record(Some(p), i as u64, None, marker.clone()));
                }
            }
        }
    }
    records
}

/// The window half of the stage in the steady state of [`warm_engine`], fed through its own
/// `process_batch` and `end_batch`.
fn warm_stage(cfg: &AlarmConfig, threads: usize) -> AlarmStage {
    let mut stage = AlarmStage::new(cfg, 3, ROUTED_PARTITIONS, topics()).expect("valid config").with_threads(threads);
    let partitions: Vec<TopicPartition> =
        (0..ROUTED_PARTITIONS).map(|partition| TopicPartition { topic: ROUTED.into(), partition }).collect();
    stage.restore(&partitions, Vec::new()).expect("empty state");
    let mut ctx = Context::default();
    for slide in (1..=31).rev() {
        let time = T0 - slide * 10_000;
        let mut poll: Vec<StoredRecord> = (0..GROUPS)
            .map(|index| {
                let event = warm_up_event(index, time);
                let mut value = Vec::with_capacity(64);
                encode_event((index % 3) as u32, None, &event, &mut value);
                routed_record(None, 0, Some(&event), value)
            })
            .collect();
        for upstream in 0..3 {
            let marker = RouteRecord::Watermark { upstream, max_event_time: time }.encode();
            poll.extend((0..ROUTED_PARTITIONS).map(|p| routed_record(Some(p), 0, None, marker.clone())));
        }
        stage.process_batch(&poll, &mut ctx).expect("routed records");
        stage.end_batch(&mut ctx).expect("end of batch");
        ctx = Context::default();
    }
    stage
}

criterion_group!(benches, windows);
criterion_main!(benches);
