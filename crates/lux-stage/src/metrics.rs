//! Counters a running stage exposes, read by the live summary and the `/metrics` endpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the commit latency histogram's buckets.
pub const COMMIT_LATENCY_BUCKETS: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

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
    /// Successful commits per latency bucket ([`COMMIT_LATENCY_BUCKETS`]; the last slot counts
    /// those above the largest bound). Not cumulative.
    pub commit_latency_buckets: [AtomicU64; COMMIT_LATENCY_BUCKETS.len() + 1],
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
        let seconds = latency.as_secs_f64();
        let bucket =
            COMMIT_LATENCY_BUCKETS.iter().position(|&le| seconds <= le).unwrap_or(COMMIT_LATENCY_BUCKETS.len());
        if let Some(slot) = self.commit_latency_buckets.get(bucket) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The commit latency histogram: (upper bound in seconds, cumulative count) per bucket, the
    /// count of commits and their total seconds.
    pub fn commit_latency_histogram(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut cumulative = 0u64;
        let buckets = COMMIT_LATENCY_BUCKETS
            .iter()
            .zip(&self.commit_latency_buckets)
            .map(|(&le, slot)| {
                cumulative += slot.load(Ordering::Relaxed);
                (le, cumulative)
            })
            .collect();
        let count: u64 = self.commit_latency_buckets.iter().map(|slot| slot.load(Ordering::Relaxed)).sum();
        (buckets, count, self.commit_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }

    pub(crate) fn set_counters(&self, counters: Vec<(String, u64)>) {
        if !counters.is_empty() {
            self.counters.lock().unwrap_or_else(|p| p.into_inner()).extend(counters);
        }
    }

    /// A copy of the counters.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn commit_latencies_fall_in_cumulative_buckets() {
        let metrics = StageMetrics::default();
        for micros in [300, 800, 800, 40_000, 9_000_000] {
            metrics.record_commit_latency(Duration::from_micros(micros));
        }
        let (buckets, count, sum) = metrics.commit_latency_histogram();
        assert_eq!(count, 5);
        assert!((sum - 9.0419).abs() < 1e-9, "{sum}");
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets[1], (0.001, 3));
        assert_eq!(buckets[6], (0.05, 4));
        assert_eq!(buckets.last(), Some(&(2.5, 4)));
    }
}
