//! Event-time watermarks over input partitions, with bounded out-of-orderness and idle-source
//! detection: the rules every windowed stage (alarm, QoE) closes its windows by.
//!
//! Each partition's watermark is the highest event time it has shown minus the
//! out-of-orderness. The stage's watermark is the lowest over partitions that are not idle
//! (silent, by the wall clock, for `idle_timeout`; a partition never heard from is idle that long
//! after the stage started). A partition that is active but has shown no event time yet holds the
//! watermark back (`None`). When every partition is idle, the watermark moves to the highest
//! partition watermark, so that the last windows close. Monotonicity (a watermark never goes
//! back) is the caller's: it keeps the watermark it has acted on.

use std::collections::BTreeMap;

/// Event-time progress of one input partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PartitionClock {
    /// The highest event time seen on the partition.
    max_event_time: Option<i64>,
    /// Wall time of the partition's latest record; `None`: none since the clock (re)started.
    last_activity_wall: Option<i64>,
}

/// The event-time clocks of a stage's input partitions (see the module docs).
#[derive(Debug, Clone)]
pub struct PartitionWatermarks {
    partitions: BTreeMap<u32, PartitionClock>,
    out_of_orderness_ms: i64,
    idle_timeout_ms: i64,
    /// Wall time of the first call since the clocks were built or reset.
    started_wall: Option<i64>,
}

impl PartitionWatermarks {
    /// Clocks for the input partitions `partitions` (each holds the watermark back until it
    /// shows an event time or is idle; partitions not listed are taken on at their first record).
    pub fn new(partitions: &[u32], out_of_orderness_ms: i64, idle_timeout_ms: i64) -> Self {
        PartitionWatermarks {
            partitions: partitions.iter().map(|&p| (p, PartitionClock::default())).collect(),
            out_of_orderness_ms,
            idle_timeout_ms,
            started_wall: None,
        }
    }

    /// The out-of-orderness, in ms.
    pub fn out_of_orderness_ms(&self) -> i64 {
        self.out_of_orderness_ms
    }

    /// Notes that the stage is running at wall time `now_wall_ms` (the first call starts the
    /// idleness count of partitions never heard from).
    pub fn start(&mut self, now_wall_ms: i64) -> i64 {
        *self.started_wall.get_or_insert(now_wall_ms)
    }

    /// A record of `partition` arrived at wall time `now_wall_ms` (it is not idle).
    pub fn touch(&mut self, partition: u32, now_wall_ms: i64) {
        self.start(now_wall_ms);
        self.partitions.entry(partition).or_default().last_activity_wall = Some(now_wall_ms);
    }

    /// `partition` has shown events up to `event_time`, at wall time `now_wall_ms`. Returns
    /// whether its highest event time moved.
    pub fn observe(&mut self, partition: u32, event_time: i64, now_wall_ms: i64) -> bool {
        self.touch(partition, now_wall_ms);
        let clock = self.partitions.entry(partition).or_default();
        if clock.max_event_time.is_none_or(|m| event_time > m) {
            clock.max_event_time = Some(event_time);
            true
        } else {
            false
        }
    }

    /// Whether an event of `partition` at `event_time` is older than that partition's own
    /// watermark (late, whatever the other partitions do).
    pub fn is_late(&self, partition: u32, event_time: i64) -> bool {
        self.max_event_time(partition).is_some_and(|m| event_time < m.saturating_sub(self.out_of_orderness_ms))
    }

    /// The highest event time seen on `partition`.
    pub fn max_event_time(&self, partition: u32) -> Option<i64> {
        self.partitions.get(&partition).and_then(|c| c.max_event_time)
    }

    /// Every partition's highest event time seen (what a stage persists).
    pub fn max_event_times(&self) -> BTreeMap<u32, i64> {
        self.partitions.iter().filter_map(|(&p, c)| c.max_event_time.map(|t| (p, t))).collect()
    }

    /// Sets a partition's highest event time (restoring persisted state).
    pub fn restore(&mut self, partition: u32, max_event_time: i64) {
        self.partitions.entry(partition).or_default().max_event_time = Some(max_event_time);
    }

    /// Forgets every event time and activity (the partitions listed at `new` stay known).
    pub fn reset(&mut self) {
        for clock in self.partitions.values_mut() {
            *clock = PartitionClock::default();
        }
        self.started_wall = None;
    }

    /// The highest watermark among partitions (`None` before any event): where the watermark
    /// goes once every partition is idle or the input is complete.
    pub fn highest(&self) -> Option<i64> {
        self.partitions
            .values()
            .filter_map(|clock| clock.max_event_time)
            .max()
            .map(|m| m.saturating_sub(self.out_of_orderness_ms))
    }

    /// The watermark the partitions allow at wall time `now_wall_ms` (before the caller's
    /// monotonicity is applied): the lowest over active partitions, `None` while an active
    /// partition has shown no event time, the highest when all are idle.
    pub fn current(&mut self, now_wall_ms: i64) -> Option<i64> {
        let started_wall = self.start(now_wall_ms);
        let mut any_active = false;
        let mut active_unknown = false;
        let mut min_active: Option<i64> = None;
        for clock in self.partitions.values() {
            let wm = clock.max_event_time.map(|m| m.saturating_sub(self.out_of_orderness_ms));
            let last = clock.last_activity_wall.unwrap_or(started_wall);
            if now_wall_ms.saturating_sub(last) >= self.idle_timeout_ms {
                continue;
            }
            any_active = true;
            match wm {
                Some(w) => min_active = Some(min_active.map_or(w, |m| m.min(w))),
                None => active_unknown = true,
            }
        }
        if !any_active {
            self.highest()
        } else if active_unknown {
            None
        } else {
            min_active
        }
    }
}

/// Whether a stage whose watermark is `watermark` has acted on every window its input allows:
/// the watermark is at the highest partition watermark (from `max_event_times`), as after
/// idleness or the end of a bounded input. With no event seen, there is nothing to wait for.
pub fn caught_up(
    watermark: Option<i64>,
    max_event_times: impl IntoIterator<Item = i64>,
    out_of_orderness_ms: i64,
) -> bool {
    let highest = max_event_times.into_iter().max().map(|t| t.saturating_sub(out_of_orderness_ms));
    match (highest, watermark) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(highest), Some(watermark)) => watermark >= highest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_active_partition_holds_the_watermark() {
        let mut w = PartitionWatermarks::new(&[0, 1], 5_000, 30_000);
        assert!(w.observe(0, 100_000, 0));
        // Partition 1 is active (not yet idle) and has shown nothing: no watermark.
        assert_eq!(w.current(1_000), None);
        w.observe(1, 50_000, 1_000);
        assert_eq!(w.current(1_000), Some(45_000));
        assert!(!w.observe(1, 40_000, 2_000));
        assert!(w.is_late(1, 44_999));
        assert!(!w.is_late(1, 45_000));
        // Partition 1 silent for the idle timeout (since wall time 2,000): partition 0 alone.
        w.observe(0, 120_000, 32_000);
        assert_eq!(w.current(31_999), Some(45_000));
        assert_eq!(w.current(32_000), Some(115_000));
        // All idle: the highest.
        assert_eq!(w.current(100_000), Some(115_000));
        assert_eq!(w.max_event_times(), BTreeMap::from([(0, 120_000), (1, 50_000)]));
        assert!(!caught_up(Some(110_000), w.max_event_times().into_values(), 5_000));
        assert!(caught_up(Some(115_000), w.max_event_times().into_values(), 5_000));
        assert!(!caught_up(None, [1], 0));
        w.reset();
        assert_eq!(w.highest(), None);
        assert!(caught_up(None, w.max_event_times().into_values(), 5_000));
    }
}
