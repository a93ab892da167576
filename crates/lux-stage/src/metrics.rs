//! Counters a running stage exposes, read by the live summary and the `/metrics` endpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the commit latency histogram's buckets.
pub const COMMIT_LATENCY_BUCKETS: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Upper bounds (seconds) of the buckets of the latency from reception to commit: fine enough
/// (about 1.5x apart) for percentiles read off the histogram to hold within a bucket.
pub const RECEPTION_LATENCY_BUCKETS: [f64; 28] = [
    0.001, 0.002, 0.003, 0.005, 0.007, 0.01, 0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5,
    2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 60.0,
];

/// A lock-free latency histogram over fixed bucket bounds (seconds), with its sum and maximum.
#[derive(Debug)]
pub struct LatencyHistogram {
    bounds: &'static [f64],
    /// Observations per bucket; the last slot counts those above the largest bound. Not
    /// cumulative.
    slots: Vec<AtomicU64>,
    micros: AtomicU64,
    micros_max: AtomicU64,
}

impl LatencyHistogram {
    /// An empty histogram over `bounds` (increasing upper bounds, in seconds).
    pub fn new(bounds: &'static [f64]) -> LatencyHistogram {
        LatencyHistogram {
            bounds,
            slots: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            micros: AtomicU64::new(0),
            micros_max: AtomicU64::new(0),
        }
    }

    /// Adds one observation.
    pub fn record(&self, latency: std::time::Duration) {
        self.record_all(std::iter::once(latency));
    }

    /// Adds observations, counted first locally and then added to the shared counters once per
    /// bucket (a batch of a stage costs a few atomic operations, not three a record).
    pub fn record_all(&self, latencies: impl IntoIterator<Item = std::time::Duration>) {
        let mut counts = vec![0u64; self.slots.len()];
        let (mut sum, mut max) = (0u64, 0u64);
        for latency in latencies {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            sum = sum.saturating_add(micros);
            max = max.max(micros);
            let seconds = latency.as_secs_f64();
            let bucket = self.bounds.iter().position(|&le| seconds <= le).unwrap_or(self.bounds.len());
            if let Some(count) = counts.get_mut(bucket) {
                *count += 1;
            }
        }
        for (slot, &count) in self.slots.iter().zip(&counts) {
            if count > 0 {
                slot.fetch_add(count, Ordering::Relaxed);
            }
        }
        if sum > 0 {
            self.micros.fetch_add(sum, Ordering::Relaxed);
        }
        self.micros_max.fetch_max(max, Ordering::Relaxed);
    }

    /// (upper bound in seconds, cumulative count) per bucket, the count of observations and
    /// their total seconds: a Prometheus histogram.
    pub fn cumulative(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut cumulative = 0u64;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.slots)
            .map(|(&le, slot)| {
                cumulative += slot.load(Ordering::Relaxed);
                (le, cumulative)
            })
            .collect();
        let count: u64 = self.slots.iter().map(|slot| slot.load(Ordering::Relaxed)).sum();
        (buckets, count, self.micros.load(Ordering::Relaxed) as f64 / 1e6)
    }

    /// The longest observation, in seconds.
    pub fn max_seconds(&self) -> f64 {
        self.micros_max.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// The `q` quantile (0 to 1) read off the buckets: the upper bound of the bucket holding
    /// it (the maximum when it is above the largest bound); `None` before any observation.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let (buckets, count, _) = self.cumulative();
        if count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * count as f64).ceil().max(1.0) as u64;
        Some(buckets.iter().find(|&&(_, below)| below >= rank).map_or_else(|| self.max_seconds(), |&(le, _)| le))
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new(&COMMIT_LATENCY_BUCKETS)
    }
}

/// Lock-free counters of one stage, shared between its runner and observers.
#[derive(Debug)]
pub struct StageMetrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    /// Time of successful commits (a Kafka transaction, an embedded journal write).
    pub commit_latency: LatencyHistogram,
    /// For each output record whose stage noted the reception of its input
    /// ([`crate::Context::received`]): the time from that reception (the collector's
    /// `received_at` stamp, wall clock) to the commit that made the record readable. For the
    /// transform stage, LUX's end-to-end latency to the `enriched` topic.
    pub reception_latency: LatencyHistogram,
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

impl Default for StageMetrics {
    fn default() -> Self {
        StageMetrics {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            commit_latency: LatencyHistogram::new(&COMMIT_LATENCY_BUCKETS),
            reception_latency: LatencyHistogram::new(&RECEPTION_LATENCY_BUCKETS),
            rebalances: AtomicU64::new(0),
            lag: AtomicU64::new(0),
            gauge: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            counters: Mutex::new(BTreeMap::new()),
        }
    }
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

    /// Records the reception latency of the records a commit made readable: `received` are
    /// their reception stamps (ms since the epoch), `committed_ms` the commit's wall-clock time.
    /// A stamp after the commit (clocks of two hosts apart) counts as no latency.
    pub(crate) fn record_receptions(&self, received: &[i64], committed_ms: i64) {
        self.reception_latency.record_all(
            received.iter().map(|&at| {
                std::time::Duration::from_millis(u64::try_from(committed_ms.saturating_sub(at)).unwrap_or(0))
            }),
        );
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
            metrics.commit_latency.record(Duration::from_micros(micros));
        }
        let (buckets, count, sum) = metrics.commit_latency.cumulative();
        assert_eq!(count, 5);
        assert!((sum - 9.0419).abs() < 1e-9, "{sum}");
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets[1], (0.001, 3));
        assert_eq!(buckets[6], (0.05, 4));
        assert_eq!(buckets.last(), Some(&(2.5, 4)));
        assert_eq!(metrics.commit_latency.max_seconds(), 9.0);
    }

    #[test]
    fn reception_latencies_give_quantiles_by_bucket_and_ignore_clock_skew() {
        let metrics = StageMetrics::default();
        assert_eq!(metrics.reception_latency.quantile(0.5), None);
        // 98 records received 4 ms before the commit, one 120 ms, one 90 s (above every bound),
        // and one stamped after the commit (another host's clock ahead).
        let committed = 1_000_000;
        let mut received = vec![committed - 4; 98];
        received.extend([committed - 120, committed - 90_000, committed + 50]);
        metrics.record_receptions(&received, committed);
        let (_, count, _) = metrics.reception_latency.cumulative();
        assert_eq!(count, 101);
        assert_eq!(metrics.reception_latency.quantile(0.0), Some(0.001));
        assert_eq!(metrics.reception_latency.quantile(0.5), Some(0.005));
        assert_eq!(metrics.reception_latency.quantile(0.98), Some(0.005));
        assert_eq!(metrics.reception_latency.quantile(0.99), Some(0.15));
        assert_eq!(metrics.reception_latency.quantile(1.0), Some(90.0));
    }
}
