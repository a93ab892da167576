//! Throughput of the alarm engine: events per second through `on_event` + `advance` with 10,000
//! site groups (the default rule: window 60s, slide 10s), events 10ms apart in event time over
//! 3 partitions, `advance` called every 1,000 events as the stage runner does per batch; the
//! second case also serialises the changed state entries per batch, as the runner's commit does.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lux_alarm::{AlarmConfig, AlarmEngine};
use lux_model::{
    EnrichedEvent, EquipmentInfo, EquipmentKey, Event, EventKind, Format, Outcome, ReferenceInfo, ReferenceStatus,
};

const GROUPS: usize = 10_000;
const EVENTS: usize = 100_000;
const BATCH: usize = 1_000;
const T0: i64 = 1_767_607_200_000;

fn make_events() -> Vec<(u32, EnrichedEvent)> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..EVENTS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let site = format!("S{:05}", state as usize % GROUPS);
            let failure = state.checked_rem(3) == Some(0);
            let time = T0 + i as i64 * 10 - (state % 2_000) as i64;
            let event = EnrichedEvent {
                schema: lux_model::schema::ENRICHED.into(),
                event: Event {
                    event_id: format!("{i}").into(),
                    event_time: time,
                    received_at: time,
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
            };
            ((i % 3) as u32, event)
        })
        .collect()
}

fn windows(c: &mut Criterion) {
    let events = make_events();
    let mut cfg = AlarmConfig::default();
    // Low enough that alarms are raised, updated and cleared during the run.
    if let Some(rule) = cfg.rules.first_mut() {
        rule.threshold = Some(4);
        rule.clear = Some(2);
    }
    let mut group = c.benchmark_group("alarm_engine");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(20);
    for (name, persist) in [("on_event+advance/10k_groups", false), ("on_event+advance+take_changes/10k_groups", true)]
    {
        group.bench_function(name, |b| {
            b.iter_batched(
                || AlarmEngine::new(&cfg, &[0, 1, 2]).expect("valid config"),
                |mut engine| {
                    let mut alarms = 0usize;
                    for (n, (partition, event)) in events.iter().enumerate() {
                        engine.on_event(*partition, event, 0);
                        if n % BATCH == BATCH - 1 {
                            alarms += engine.advance(0).len();
                            if persist {
                                alarms += engine.take_changes().len();
                            }
                        }
                    }
                    (engine, alarms)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, windows);
criterion_main!(benches);
