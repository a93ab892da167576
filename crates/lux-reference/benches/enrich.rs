//! Enrichments per second on one core: the as-of join of a mix of events (hostname,
//! NAS-Identifier, NAS-IP-Address keys; half with an error code; some unknown) with a snapshot of
//! 100,000 and of 1,000,000 equipment rows. Events are prepared outside the measurement.

#[path = "common.rs"]
mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lux_reference::Snapshot;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("enrich");
    for n in [1_000usize, 100_000, 1_000_000] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        common::write_referential(dir.path(), n, 0).unwrap_or_else(|e| panic!("{e}"));
        let snapshot = Snapshot::load_csv_dir(dir.path()).unwrap_or_else(|p| panic!("{p:?}"));
        let events = common::events(n, 4096);
        let found = events.iter().filter(|e| snapshot.enrich((*e).clone()).equipment.is_some()).count();
        assert!(found > events.len() * 9 / 10, "the mix must mostly hit: {found}");
        group.throughput(Throughput::Elements(events.len() as u64));
        group.bench_function(format!("{n}_equipment"), |b| {
            b.iter_batched(
                || (events.clone(), Vec::with_capacity(events.len())),
                |(batch, mut out)| {
                    for e in batch {
                        out.push(snapshot.enrich(e));
                    }
                    out
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
