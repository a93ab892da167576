//! LUX reference data: the equipment inventory (with its validity over time), models,
//! manufacturers, sites, regions, the error-code catalogue and interventions, loaded from CSV
//! files or PostgreSQL into a validated, immutable [`Snapshot`]; the as-of join of events with it
//! ([`Snapshot::join`], giving an [`Enrichment`] that borrows the snapshot, serialised with the
//! event as the `enriched` record by [`Enrichment::record`]); live reload behind a
//! [`ReferenceHandle`]; and the `lux reference` commands ([`cli`]).
//!
//! The file formats are the contract of `docs/reference-and-traffic.md`; the PostgreSQL tables
//! and the reload are described in `docs/reference-data.md`.
//!
//! # Performance (issue 4)
//!
//! Measured on the 2-core development VM shared with other builds. Instruction counts are
//! repeatable under load; wall-clock figures are indicative (the load average is given); the
//! `_cpu_time` benchmarks time the joining thread by its own CPU clock, which leaves out the
//! time it waited for a core.
//!
//! | measure (demo-shaped referential of `benches/common.rs`) | before (main `6618527`) | now |
//! |---|---|---|
//! | instructions a join, 5,000 equipment (callgrind, below) | 490 (`enrich`: the event moved in and out) | 284 (`join`) |
//! | instructions a join, 100,000 equipment (same) | 328 (last measured, `e104d9e`) | 264 |
//! | joins/s, 5,000 equipment (criterion median, wall) | 3.9 M (load 5); 6.9 M quiet | 10.9 and 11.7 M (2 runs, load 2-3) |
//! | joins/s, 100,000 equipment (same) | 1.18 M (load 5); 2.2 M quiet | 6.4 and 8.8 M |
//! | joins/s, 1,000,000 equipment (same) | 0.98 M (load 5); 1.0 M quiet | 4.9 and 4.0 M |
//! | joins/s by the thread's CPU clock, 5,000 / 100,000 / 1,000,000 | | 12.7 M / 8.1 M / 4.2 M and 14.6 M / 11.2 M / 5.1 M |
//! | memory of a snapshot of 1,000,000 equipment (1,050,000 rows) | 345.1 MiB, 361 bytes an equipment | 109.7 MiB, 115 bytes |
//! | load and validate 1,000,000 equipment (`--bench reload`) | 5.4 s (quiet) | 3.8 to 4.1 s (load 3.5-4.3) |
//!
//! Commands: `cargo bench -p lux-reference --bench enrich -- --warm-up-time 1 --measurement-time 4`;
//! `valgrind --tool=callgrind --toggle-collect='lux_reference::snapshot::Snapshot::join'
//! target/release/deps/enrich-<hash> --bench --profile-time 3 'enrich/5000_equipment$'`
//! (instructions of the collected part divided by the calls of `Snapshot::join`; before:
//! `--toggle-collect='lux_reference::snapshot::Snapshot::enrich'`); `cargo bench -p
//! lux-reference --bench reload` for memory, load time and pauses.
//!
//! Where the time went and what changed: the old join moved each event (about 300 bytes) into
//! an `EnrichedEvent` and cloned four `Arc`s (atomic increments on lines shared by every thread);
//! [`Snapshot::join`] borrows the event and returns references (the transform stage serialises
//! them directly, JSON identical to `EnrichedEvent`'s). An equipment row is one 64-byte cache
//! line (two inline keys, model and site ids, an index for the few rows with a bounded validity
//! or interventions of their own): model, manufacturer, type, technology, site and region
//! strings are interned once per snapshot instead of 7 `String`s a row. Keys are prepared with
//! a few word loads and hashed with two multiplications; the key tables are open-addressing
//! arrays of 8-byte entries (one cache line a probe, where hashbrown read a control group and
//! a slot). Interventions are listed per equipment and per site (a site's list holds its
//! region's), in start order, scanned until one starts after the event. An IP address is looked
//! up as text first and parsed only when not written canonically.
//!
//! The 100,000 and 1,000,000 cases are bound by memory latency, not instructions: 264
//! instructions a join at 100,000 run at 8.1 to 11.2 M/s by the CPU clock (against 12.7 to
//! 14.6 M/s at 5,000 for 284; callgrind's cache simulation with a 2 MiB last level, a core's L2, counts 6.7 L1 and
//! 4.3 L2 data misses a join at 100,000, a few of them the events read in sequence, which the
//! hardware prefetches), and 1,000,000 at 4.2 to 5.1 M/s, where each join reads a random key-table line, a random
//! row (64 MB of rows) and the site's interventions, and the TLB misses on most of them. Backing
//! the tables with huge pages (`MADV_HUGEPAGE`) gave 4.5 against 3.3 M/s at 1,000,000 (CPU
//! clock, similar load), but a reload with it stalled the stream 164 ms, blocked on a page
//! fault while the loader faulted huge pages in (direct compaction, most likely): not used.
//!
//! Reload (3 runs of `--bench reload`, 1,000,000 rows, load average 4 from other builds): the
//! swap is a pointer swap; the replaced snapshot is freed on the watcher thread, which runs at
//! nice +19. With the enriching thread and its scheduling group at nice -20 (as a stream thread
//! should run in production: on Linux other sessions' processes share the CPU by autogroup
//! whatever their nice value), the longest pause of the enriching thread from the write of the
//! new files until 3 s after the swap was 4.07, 4.72 and 4.07 ms, every one a preemption (a
//! 4 ms scheduler tick; the control window before the write shows the same); the longest that
//! was not a preemption nor a steal (what a reload can cause itself) 3.04, 3.26 and 2.96 ms, none
//! over 0.1 ms within 50 ms of the swap; two runs at load 2 gave 4.47 and 2.98 ms. Without the priority, a compiler in another session
//! preempted the thread for up to 44 ms, with or without a reload.

pub mod cli;
mod config;
mod enrichment;
mod handle;
mod index;
mod load;
pub mod pg;
mod problem;
mod snapshot;

pub use config::{schema_problem, valid_schema, PostgresConfig, ReferenceConfig, SourceKind};
pub use enrichment::{EnrichedRecord, Enrichment, Equipment};
pub use handle::{ReferenceHandle, ReferenceStats};
pub use load::FILES;
pub use problem::ReferenceProblem;
pub use snapshot::{InterventionRow, ReferenceError, Snapshot, TableCounts};
