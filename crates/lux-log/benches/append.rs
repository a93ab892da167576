//! Append + commit throughput of the embedded log: records of 200 bytes, keyed by 5,000
//! equipment-like keys over 3 partitions, committed in batches of the size a stage commits
//! (1,000 and 10,000 records), each commit also advancing an input offset and one state entry
//! as a stage's does. `group` durability (the default); `fsync` for comparison.
//!
//! `cargo bench -p lux-log --bench append` (criterion reports records/s; take the median).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lux_log::embedded::EmbeddedLog;
use lux_log::{CentralLog, Commit, Durability, OutputRecord, StateChange, TopicPartition};

const VALUE_BYTES: usize = 200;

fn batch(first: u64, records: usize) -> Commit {
    let value = vec![b'x'; VALUE_BYTES];
    let outputs = (0..records as u64)
        .map(|i| OutputRecord {
            topic: "enriched".into(),
            key: format!("cpe-par001-{:05}", (first + i) % 5_000).into_bytes(),
            timestamp_ms: 1_767_607_200_000 + (first + i) as i64,
            value: value.clone(),
            decoded: None,
        })
        .collect();
    Commit {
        group: "transform".into(),
        next_offsets: vec![(TopicPartition { topic: "raw".into(), partition: 0 }, first + records as u64)],
        outputs,
        state: vec![StateChange {
            partition: 0,
            key: b"position".to_vec(),
            value: Some((first + records as u64).to_string().into_bytes()),
        }],
    }
}

fn append_commit(c: &mut Criterion) {
    for durability in [Durability::Group, Durability::Fsync] {
        for records in [1_000usize, 10_000] {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = EmbeddedLog::open(dir.path(), durability).expect("open");
            log.ensure_topic("raw", 3).expect("topic");
            log.ensure_topic("enriched", 3).expect("topic");
            let mut group = c.benchmark_group(format!("append_commit/{durability:?}"));
            group.throughput(Throughput::Elements(records as u64));
            group.sample_size(if durability == Durability::Fsync { 10 } else { 20 });
            let mut first = 0u64;
            group.bench_function(format!("{records}x{VALUE_BYTES}B"), |b| {
                b.iter_batched(
                    || {
                        let commit = batch(first, records);
                        first += records as u64;
                        commit
                    },
                    |commit| log.commit(commit).expect("commit"),
                    BatchSize::PerIteration,
                )
            });
            group.finish();
        }
    }
}

criterion_group!(benches, append_commit);
criterion_main!(benches);
