//! Throughput of the QoE engine: events per second through `on_event` + `advance` (+ the
//! changed cells serialised, as the stage hands them to the runner's commit) for 5,000
//! equipment on 500 sites in 10 regions (every default dimension), events 1 ms apart in event
//! time over 3 partitions, a batch of 1,000 events between `advance` calls as the stage runner
//! does. `cargo bench -p lux-qoe --bench indicators`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lux_model::{EnrichedEvent, EquipmentInfo, ErrorInfo, Event, EventKind, Outcome, ReferenceInfo, ReferenceStatus};
use lux_qoe::{QoeConfig, QoeEngine};
use std::sync::Arc;

const EQUIPMENT: usize = 5_000;
const EVENTS: usize = 200_000;
const BATCH: usize = 1_000;
const T0: i64 = 1_767_607_200_000;

fn make_events() -> Vec<(u32, EnrichedEvent)> {
    let equipment: Vec<Arc<EquipmentInfo>> = (0..EQUIPMENT)
        .map(|i| {
            Arc::new(EquipmentInfo {
                equipment_id: format!("eq-{i:05}"),
                equipment_type: "bng".into(),
                model: format!("model-{}", i % 20),
                manufacturer: format!("maker-{}", i % 5),
                site: format!("site-{:03}", i % 500),
                region: format!("region-{}", i % 10),
                technology: "ftth".into(),
            })
        })
        .collect();
    let drop = Arc::new(ErrorInfo {
        code: "RADIUS-TC-2".into(),
        label: "Lost-Carrier".into(),
        category: "network".into(),
        severity: "major".into(),
        is_failure: true,
        is_drop: true,
        customer_impacting: true,
    });
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..EVENTS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let eq = &equipment[state as usize % EQUIPMENT];
            let kind = [EventKind::SessionStart, EventKind::SessionStop, EventKind::AuthReject][i % 3];
            let time = T0 + i as i64 - (state % 2_000) as i64;
            let mut event = Event {
                event_id: format!("{i}").as_str().into(),
                event_time: time,
                received_at: time,
                equipment_id: eq.equipment_id.as_str().into(),
                kind,
                outcome: if kind == EventKind::AuthReject { Outcome::Failure } else { Outcome::Info },
                subscriber: Some(format!("sub-{}", state % 100_000).as_str().into()),
                ..Event::default()
            };
            if kind == EventKind::SessionStop {
                event.attributes.insert("Acct-Session-Time", serde_json::json!(state % 7_200));
            }
            let stop_drop = kind == EventKind::SessionStop && state % 4 == 0;
            let enriched = EnrichedEvent {
                schema: lux_model::schema::ENRICHED.into(),
                is_failure: kind == EventKind::AuthReject || stop_drop,
                event,
                equipment: Some(eq.clone()),
                error: stop_drop.then(|| drop.clone()),
                maintenance: None,
                reference: ReferenceInfo { status: ReferenceStatus::Ok, version: "v1".into() },
            };
            ((i % 3) as u32, enriched)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = make_events();
    let config = QoeConfig::default();
    let mut group = c.benchmark_group("qoe");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.bench_function("on_event+advance+state, 5,000 equipment, 5 dimensions", |b| {
        b.iter_batched(
            || QoeEngine::new(&config, &[0, 1, 2]).expect("valid config"),
            |mut engine| {
                let mut written = 0usize;
                for batch in events.chunks(BATCH) {
                    for (partition, event) in batch {
                        engine.on_event(*partition, event, 0);
                    }
                    written += engine.advance(0).len();
                    written += engine.take_changes().len();
                }
                written += engine.finish_input().len();
                written
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("on_event+advance, no state, 5,000 equipment, 5 dimensions", |b| {
        b.iter_batched(
            || QoeEngine::new(&config, &[0, 1, 2]).expect("valid config"),
            |mut engine| {
                let mut written = 0usize;
                for batch in events.chunks(BATCH) {
                    for (partition, event) in batch {
                        engine.on_event(*partition, event, 0);
                    }
                    written += engine.advance(0).len();
                }
                written += engine.finish_input().len();
                written
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
