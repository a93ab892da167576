//! Throughput of the QoE engine: events per second through `on_event` + `advance` (+ the
//! changed cells serialised, as the stage hands them to the runner's commit) for 5,000
//! equipment on 500 sites in 10 regions (every default dimension), events 1 ms apart in event
//! time over 3 partitions, a batch of 1,000 events between `advance` calls as the stage runner
//! does. The `qoe-read` group adds the stage's read of each `enriched` JSON record (against a
//! full read). `cargo bench -p lux-qoe --bench indicators`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lux_model::EnrichedEvent;
use lux_qoe::{QoeConfig, QoeEngine};

mod common;

use common::{drive, make_events, EVENTS};
use std::borrow::Cow;

fn bench(c: &mut Criterion) {
    let events = make_events();
    let config = QoeConfig::default();
    let mut group = c.benchmark_group("qoe");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    for (name, state) in [
        ("on_event+advance+state, 5,000 equipment, 5 dimensions", true),
        ("on_event+advance, no state, 5,000 equipment, 5 dimensions", false),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || QoeEngine::new(&config, &[0, 1, 2]).expect("valid config"),
                |mut engine| drive(&mut engine, &events, Cow::Borrowed, state) + engine.finish_input().len(),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();

    // The stage's read of each record (the `enriched` JSON) before the engine, per event.
    let records: Vec<(u32, Vec<u8>)> =
        events.iter().map(|(p, e)| (*p, serde_json::to_vec(e).expect("serialisable"))).collect();
    let mut group = c.benchmark_group("qoe-read");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    type Read = fn(&[u8]) -> serde_json::Result<EnrichedEvent>;
    let reads: [(&str, Read); 2] = [
        ("full read+on_event+advance", |bytes| serde_json::from_slice(bytes)),
        ("read for indicators+on_event+advance (the stage's)", |bytes| {
            EnrichedEvent::from_json_for_indicators(bytes, QoeEngine::uses_attributes)
        }),
    ];
    for (name, read) in reads {
        group.bench_function(name, |b| {
            b.iter_batched(
                || QoeEngine::new(&config, &[0, 1, 2]).expect("valid config"),
                |mut engine| {
                    let read = |bytes: &Vec<u8>| Cow::Owned(read(bytes).expect("an enriched record"));
                    drive(&mut engine, &records, read, false) + engine.finish_input().len()
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
