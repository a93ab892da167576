//! Throughput of the alarm windows in issue 8's setting ([`lux_alarm::workload`]: 50,000 groups,
//! a 5-minute window sliding every 10 s, 2,000,000 events at 40,000 events/s of event time).
//!
//! - `window_stage`: what the `alarm` stage does per routed event: [`AlarmEngine::on_rule_event`],
//!   then per batch of 1,000 events one watermark marker per partition and `advance`.
//! - `window_stage+state/N`: the same, serialising the changed state entries once every `N`
//!   events, as the runner's commit does with commits of `N` records (`log.commit_max_records`:
//!   10,000 by default on the embedded log, 50,000 on Kafka; 2,000 was the embedded log's
//!   commit before batches spanned polls).
//! - `route+window`: [`AlarmEngine::on_event`] on enriched events (routing, group keys, windows
//!   in one engine), `advance` per batch.
//! - `stage/threads=T/commit=N`: the window half of the stage itself, `AlarmStage`, on the
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
use lux_alarm::route::RuleEvent;
use lux_alarm::workload::{self, failure_of, site, time_of, Shape, EVENTS, GROUPS, T0, TEMPLATES};
use lux_alarm::{AlarmConfig, AlarmEngine};
use lux_model::{
    EnrichedEvent, EquipmentInfo, EquipmentKey, Event, EventKind, Format, Outcome, ReferenceInfo, ReferenceStatus,
};
use std::time::Duration;

/// The `lux` binary's allocator, so that the figures are those of the stage.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events between two advances of the engine-level variants.
const BATCH: usize = workload::BATCH;

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

/// An engine in the steady state of the setting, as after running longer than a window: every
/// group has one failure in each of the 31 slides before `T0` (a full window of panes, as many
/// as a long run keeps), the windows before `T0` are evaluated and the state is committed.
fn warm_engine(cfg: &AlarmConfig) -> AlarmEngine {
    let mut engine = AlarmEngine::new(cfg, &[0, 1, 2]).expect("valid config");
    let mut events: Vec<RuleEvent> = (0..GROUPS).map(|index| failure_of(index, T0)).collect();
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
    let cfg = workload::config();
    let shapes = workload::shapes();
    let mut rule_events: Vec<(u32, i64, RuleEvent)> = shapes
        .iter()
        .map(|s: &Shape| (s.partition, s.jitter, RuleEvent { failure: s.failure, ..failure_of(s.group, T0) }))
        .collect();
    let mut enriched_events: Vec<(u32, i64, EnrichedEvent)> =
        shapes.iter().map(|s| (s.partition, s.jitter, enriched(s.failure, site(s.group)))).collect();

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

    let records = workload::routed_records(&cfg, &shapes);
    let mut group = c.benchmark_group("alarm_windows_50k_groups_5m_by_10s");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    for (threads, commit_every) in [(1, 10_000), (2, 10_000), (2, 50_000)] {
        group.bench_function(format!("stage/threads={threads}/commit={commit_every}"), |b| {
            b.iter_custom(|iters| {
                let mut measured = Duration::ZERO;
                for _ in 0..iters {
                    let mut stage = workload::warm_stage(&cfg, threads).expect("the setting's stage");
                    measured += workload::feed(&mut stage, &records, commit_every).expect("routed records");
                }
                measured
            })
        });
    }
    group.finish();
}

criterion_group!(benches, windows);
criterion_main!(benches);
