//! Joins per second on one core: [`Snapshot::join`] of a batch of 4,096 events (the mix of
//! `common.rs`: 68% by hostname, 25% by NAS-Identifier, 5% by NAS-IP-Address, 2% unknown
//! equipment; half with an error code, 2% of them unknown) against a referential of the demo's
//! size (5,000 equipment, `lux generate`'s default), of 100,000 and of 1,000,000 equipment.
//! Each measured batch is the next 4,096 of 131,072 prepared events (so that a big referential
//! is read all over, as real traffic does, not through the few rows one batch names). Measured:
//! joining each event, its [`lux_reference::Enrichment`] (references into the snapshot: what
//! the transform stage serialises with the event) pushed into a vector reused from batch to
//! batch. Run with `cargo bench -p lux-reference --bench enrich`; the element throughput is
//! joins per second. Each size is measured twice: by the wall clock, and by the benchmark
//! thread's CPU clock (`_cpu_time`: on a machine shared with other jobs, what the core does
//! when it has the thread).
//!
//! Last measured (2-core VM, load average 2 to 3; `-- --warm-up-time 1 --measurement-time 4`,
//! medians of two runs): 10.9 and 11.7 M joins/s with 5,000 equipment, 6.4 and 8.8 M with
//! 100,000, 4.9 and 4.0 M with 1,000,000 (by the CPU clock 12.7 and 14.6 M, 8.1 and 11.2 M,
//! 4.2 and 5.1 M). Before the join borrowed events and rows (main
//! `6618527`, moving events into `EnrichedEvent`s, load average 5): 3.9 M, 1.18 M, 0.98 M.
//! Instructions a join (callgrind, see the crate docs): 284 at 5,000 and 264 at 100,000, from
//! 490 at 5,000.

#[path = "common.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lux_model::Event;
use lux_reference::{Enrichment, Snapshot};
use std::cell::OnceCell;
use std::time::Duration;

/// Events per measured batch.
const EVENTS: usize = 4_096;
/// Distinct events the batches are taken from, in turn.
const POOL: usize = 131_072;

/// The CPU time the calling thread has used (not the time it waited for a core: on a machine
/// shared with other jobs, what a core would do alone).
fn thread_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: clock_gettime only writes into the zeroed structure given to it.
        let ts = unsafe {
            let mut ts: libc::timespec = std::mem::zeroed();
            libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
            ts
        };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Duration::ZERO
    }
}

/// Joins the next batch of the pool into `out`.
fn join_batch<'s>(snapshot: &'s Snapshot, events: &[Event], next: &mut usize, out: &mut Vec<Enrichment<'s>>) {
    let start = *next;
    *next = (start + EVENTS) % POOL;
    out.clear();
    for e in events.get(start..start + EVENTS).unwrap_or_default() {
        out.push(snapshot.join(e));
    }
    std::hint::black_box(out.len());
}

/// The referential of `n` equipment and the pool of events.
fn load(n: usize) -> (Snapshot, Vec<Event>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    common::write_referential(dir.path(), n, 0).unwrap_or_else(|e| panic!("{e}"));
    let snapshot = Snapshot::load_csv_dir(dir.path()).unwrap_or_else(|p| panic!("{p:?}"));
    let events = common::events(n, POOL);
    let found = events.iter().filter(|e| snapshot.join(e).equipment().is_some()).count();
    assert!(found > events.len() * 9 / 10, "the mix must mostly hit: {found}");
    (snapshot, events)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("enrich");
    for n in [5_000usize, 100_000, 1_000_000] {
        // Loaded on first use, so that a filtered run (`-- enrich/5000`) loads only its size.
        let loaded: OnceCell<(Snapshot, Vec<Event>)> = OnceCell::new();
        let ready = || {
            let (snapshot, events) = loaded.get_or_init(|| load(n));
            (snapshot, events.as_slice())
        };
        group.throughput(Throughput::Elements(EVENTS as u64));
        // Each batch the next 4,096 events of the pool, so that a big referential is not only
        // read through the few rows one batch names (which would stay in cache).
        group.bench_function(format!("{n}_equipment"), |b| {
            let (snapshot, events) = ready();
            let (mut next, mut out) = (0, Vec::with_capacity(EVENTS));
            b.iter(|| join_batch(snapshot, events, &mut next, &mut out))
        });
        // The same, timed by the thread's CPU clock.
        group.bench_function(format!("{n}_equipment_cpu_time"), |b| {
            let (snapshot, events) = ready();
            let (mut next, mut out) = (0, Vec::with_capacity(EVENTS));
            b.iter_custom(|iterations| {
                let start = thread_cpu();
                for _ in 0..iterations {
                    join_batch(snapshot, events, &mut next, &mut out);
                }
                thread_cpu().saturating_sub(start)
            })
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
