//! A reload of 1,000,000 equipment rows while another thread enriches continuously: the longest
//! pause of the enriching thread (target: under 10 ms), the load time, and the memory of a
//! snapshot per million equipment rows (counted by a global allocator). Prints a report; run
//! with `cargo bench -p lux-reference --bench reload`.

#[path = "common.rs"]
mod common;

use lux_reference::{ReferenceConfig, ReferenceHandle, Snapshot};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts the bytes currently allocated.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 1_000_000;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it briefly with other flags.
    if !std::env::args().any(|a| a == "--bench") {
        println!("reload: run with `cargo bench -p lux-reference --bench reload`");
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    common::write_referential(dir.path(), N, 0).unwrap_or_else(|e| panic!("{e}"));

    // Memory and load time of one snapshot.
    let before = ALLOCATED.load(Ordering::Relaxed);
    let start = Instant::now();
    let snapshot = Snapshot::load_csv_dir(dir.path()).unwrap_or_else(|p| panic!("{p:?}"));
    let load_time = start.elapsed();
    let bytes = ALLOCATED.load(Ordering::Relaxed).saturating_sub(before);
    println!(
        "load of {N} equipment rows: {load_time:.2?}; snapshot memory {:.1} MiB ({} bytes per equipment row)",
        bytes as f64 / (1024.0 * 1024.0),
        bytes / N
    );
    // Enrichment throughput on one core, best of 30 batches (robust to other load on the machine).
    let events = common::events(N, 100_000);
    let mut best = Duration::MAX;
    let mut times = Vec::new();
    for _ in 0..30 {
        let (batch, mut out) = (events.clone(), Vec::with_capacity(events.len()));
        let start = Instant::now();
        for e in batch {
            out.push(snapshot.enrich(e));
        }
        let took = start.elapsed();
        std::hint::black_box(&out);
        best = best.min(took);
        times.push(took);
    }
    times.sort_unstable();
    let per = |d: Duration| d.as_nanos() as f64 / events.len() as f64;
    println!(
        "enrich over {N} equipment rows: best {:.0} ns/event ({:.1} M/s), median {:.0} ns/event ({:.1} M/s)",
        per(best),
        1e3 / per(best),
        per(times[times.len() / 2]),
        1e3 / per(times[times.len() / 2])
    );
    drop(snapshot);

    // Live reload while a thread enriches.
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = ReferenceConfig { dir: Some(dir.path().to_path_buf()), ..ReferenceConfig::default() };
    let handle = ReferenceHandle::start(&cfg, dir.path(), Arc::clone(&stop)).unwrap_or_else(|e| panic!("{e}"));
    let enriching = Arc::new(AtomicBool::new(true));
    let t0 = Instant::now();
    let worker = {
        let (handle, enriching) = (handle.clone(), Arc::clone(&enriching));
        std::thread::spawn(move || {
            // (end of the gap since t0, gap) for every gap over 100 µs between two enrichments.
            let mut gaps: Vec<(Duration, Duration)> = Vec::new();
            let mut enriched = 0u64;
            let mut swapped_at = None;
            let first = handle.current();
            let mut last = Instant::now();
            let mut i = 0usize;
            while enriching.load(Ordering::Relaxed) {
                // Like the transform stage: the current snapshot once per batch of 1,000 events.
                let snapshot = handle.current();
                if swapped_at.is_none() && !Arc::ptr_eq(&snapshot, &first) {
                    swapped_at = Some(t0.elapsed());
                }
                for _ in 0..1_000 {
                    i = (i + 1) % events.len();
                    let Some(e) = events.get(i) else { continue };
                    std::hint::black_box(snapshot.enrich(e.clone()));
                    enriched += 1;
                    let now = Instant::now();
                    let gap = now - last;
                    last = now;
                    if gap > Duration::from_micros(100) {
                        gaps.push((now - t0, gap));
                    }
                }
            }
            (enriched, swapped_at, gaps)
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let v1 = handle.stats().version;
    let write_at = t0.elapsed();
    common::write_referential(dir.path(), N, 1).unwrap_or_else(|e| panic!("{e}"));
    while handle.stats().reloads_ok == 0 && t0.elapsed() - write_at < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the old snapshot be freed (on the watcher thread) while the worker still runs.
    std::thread::sleep(Duration::from_secs(3));
    enriching.store(false, Ordering::Relaxed);
    let (enriched, swapped_at, gaps) = worker.join().unwrap_or_else(|_| panic!("worker panicked"));
    stop.store(true, Ordering::Relaxed);
    handle.join();
    let stats = handle.stats();
    assert_ne!(stats.version, v1, "the reload happened");
    let swapped_at = swapped_at.unwrap_or(Duration::MAX);
    let longest = |from: Duration, to: Duration| {
        let within: Vec<Duration> = gaps.iter().filter(|(at, _)| *at >= from && *at < to).map(|(_, g)| *g).collect();
        (within.iter().max().copied().unwrap_or_default(), within.len())
    };
    let window = Duration::from_millis(50);
    let (control, control_n) = longest(Duration::ZERO, write_at);
    let (loading, loading_n) = longest(write_at, swapped_at.saturating_sub(window));
    let (swap, swap_n) = longest(swapped_at.saturating_sub(window), swapped_at + window);
    let (after, after_n) = longest(swapped_at + window, Duration::MAX);
    println!(
        "reload of {N} equipment rows while enriching ({enriched} events enriched): swapped {:.2?} after the write \
         (1-2 s of debounce included)",
        swapped_at.saturating_sub(write_at)
    );
    println!("  longest pause of the enriching thread (and pauses over 100 µs):");
    println!("    before the write (control, no reload):     {control:.2?} ({control_n})");
    println!("    while the new version loads and validates: {loading:.2?} ({loading_n})");
    println!("    within 50 ms of the swap:                  {swap:.2?} ({swap_n})");
    println!("    after the swap (old snapshot freed):       {after:.2?} ({after_n})");
}
