//! Counters a running stage exposes, read by the live summary (and later by /metrics).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Lock-free counters of one stage, shared between its runner and observers.
#[derive(Debug, Default)]
pub struct StageMetrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    /// Time spent in successful commits (a Kafka transaction, an embedded journal write), in
    /// microseconds: divided by `commits`, the mean commit latency.
    pub commit_micros: AtomicU64,
    /// The longest successful commit so far, in microseconds.
    pub commit_micros_max: AtomicU64,
    /// Assignments received (the first one, then one per rebalance on Kafka).
    pub rebalances: AtomicU64,
    /// Records waiting in the stage's input partitions (end offset - committed position).
    pub lag: AtomicU64,
    /// The stage's own gauge (see `Processor::gauge`).
    pub gauge: AtomicU64,
    /// Records emitted to the dead-letter topic.
    pub dead_letters: AtomicU64,
    /// The stage's own counters (`Processor::counters`), as of its last commit.
    pub counters: Mutex<BTreeMap<String, u64>>,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageSnapshot {
    pub records_in: u64,
    pub records_out: u64,
    pub commits: u64,
    pub commit_failures: u64,
    pub lag: u64,
    pub gauge: u64,
    pub dead_letters: u64,
}

impl StageMetrics {
    /// The stage's own counters, as of its last commit.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn record_commit_latency(&self, latency: std::time::Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.fetch_add(micros, Ordering::Relaxed);
        self.commit_micros_max.fetch_max(micros, Ordering::Relaxed);
    }

    pub(crate) fn set_counters(&self, counters: Vec<(String, u64)>) {
        if !counters.is_empty() {
            self.counters.lock().unwrap_or_else(|p| p.into_inner()).extend(counters);
        }
    }

    pub fn snapshot(&self) -> StageSnapshot {
        StageSnapshot {
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            commit_failures: self.commit_failures.load(Ordering::Relaxed),
            lag: self.lag.load(Ordering::Relaxed),
            gauge: self.gauge.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
        }
    }
}
