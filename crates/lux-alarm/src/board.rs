//! The window board: where the alarm stage publishes its window counters (per rule and group)
//! for the metrics endpoint to read. The stage replaces one partition's snapshot at a bounded
//! rate (a short lock, never held while computing); readers merge the partitions.

use crate::RuleCounters;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One (rule, group)'s current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupWindow {
    /// `dim=value,...` (`site=PAR-012`).
    pub group_key: String,
    /// Failures in the window.
    pub failures: u64,
    /// Events (matching the rule's filter) in the window.
    pub events: u64,
    /// Whether the group's alarm is raised.
    pub alarm_active: bool,
}

/// One rule's current windows and counters.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleWindows {
    pub rule: String,
    /// The listed groups, most failures first (at most the bound per rule).
    pub groups: Vec<GroupWindow>,
    /// Tracked groups left out of `groups` by the bound.
    pub omitted: usize,
    /// Groups tracked by the rule.
    pub tracked_groups: usize,
    /// Alarms of the rule raised and not cleared.
    pub active_alarms: usize,
    pub counters: RuleCounters,
}

/// The window counters of one engine (or, merged, of every partition).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowSnapshot {
    /// The engine's event-time watermark (the highest over merged partitions).
    pub watermark_ms: Option<i64>,
    /// Events found late.
    pub late_events: u64,
    /// Events not tracked because `alarm.max_groups` was reached.
    pub overflow_events: u64,
    pub rules: Vec<RuleWindows>,
}

/// Keeps the `max` groups with the most failures (ties: by group key), in that order; returns
/// how many were dropped.
pub(crate) fn keep_top(groups: &mut Vec<GroupWindow>, max: usize) -> usize {
    let order =
        |a: &GroupWindow, b: &GroupWindow| b.failures.cmp(&a.failures).then_with(|| a.group_key.cmp(&b.group_key));
    let dropped = groups.len().saturating_sub(max);
    if dropped > 0 && max > 0 {
        groups.select_nth_unstable_by(max - 1, order);
    }
    groups.truncate(max);
    groups.sort_unstable_by(order);
    dropped
}

/// The shared board: one snapshot per partition of the routed topic owned by this process.
#[derive(Debug)]
pub struct WindowBoard {
    max_groups_per_rule: usize,
    partitions: Mutex<BTreeMap<u32, WindowSnapshot>>,
}

impl WindowBoard {
    /// A board listing at most `max_groups_per_rule` groups per rule (the cardinality bound of
    /// the exposition).
    pub fn new(max_groups_per_rule: usize) -> WindowBoard {
        WindowBoard { max_groups_per_rule, partitions: Mutex::new(BTreeMap::new()) }
    }

    /// The bound per rule.
    pub fn max_groups_per_rule(&self) -> usize {
        self.max_groups_per_rule
    }

    /// Replaces the snapshot of `partition`.
    pub fn publish(&self, partition: u32, snapshot: WindowSnapshot) {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner()).insert(partition, snapshot);
    }

    /// Forgets the partitions not in `owned` (after a rebalance).
    pub fn retain(&self, owned: &[u32]) {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner()).retain(|p, _| owned.contains(p));
    }

    /// Every partition's snapshot merged: per rule (in the order first seen), the groups of all
    /// partitions (each group lives in one), bounded again, and the counters summed.
    pub fn merged(&self) -> WindowSnapshot {
        let partitions = self.partitions.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut merged = WindowSnapshot::default();
        for snapshot in partitions.into_values() {
            merged.watermark_ms = merged.watermark_ms.max(snapshot.watermark_ms);
            merged.late_events = merged.late_events.saturating_add(snapshot.late_events);
            merged.overflow_events = merged.overflow_events.saturating_add(snapshot.overflow_events);
            for rule in snapshot.rules {
                match merged.rules.iter_mut().find(|r| r.rule == rule.rule) {
                    Some(into) => {
                        into.groups.extend(rule.groups);
                        into.omitted += rule.omitted;
                        into.tracked_groups += rule.tracked_groups;
                        into.active_alarms += rule.active_alarms;
                        let (a, b) = (&mut into.counters, &rule.counters);
                        a.counted = a.counted.saturating_add(b.counted);
                        a.late = a.late.saturating_add(b.late);
                        a.ungrouped = a.ungrouped.saturating_add(b.ungrouped);
                        a.overflow = a.overflow.saturating_add(b.overflow);
                    }
                    None => merged.rules.push(rule),
                }
            }
        }
        for rule in &mut merged.rules {
            rule.omitted += keep_top(&mut rule.groups, self.max_groups_per_rule);
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(key: &str, failures: u64) -> GroupWindow {
        GroupWindow { group_key: key.to_owned(), failures, events: failures * 2, alarm_active: false }
    }

    fn rule(groups: Vec<GroupWindow>) -> RuleWindows {
        RuleWindows {
            rule: "r".into(),
            tracked_groups: groups.len(),
            groups,
            omitted: 0,
            active_alarms: 0,
            counters: RuleCounters { counted: 10, ..Default::default() },
        }
    }

    #[test]
    fn the_bound_keeps_the_groups_with_most_failures_and_counts_the_rest() {
        let mut groups = vec![group("a", 1), group("b", 9), group("c", 5), group("d", 5), group("e", 0)];
        assert_eq!(keep_top(&mut groups, 3), 2);
        let keys: Vec<&str> = groups.iter().map(|g| g.group_key.as_str()).collect();
        assert_eq!(keys, ["b", "c", "d"]);
        let mut none = vec![group("a", 1)];
        assert_eq!(keep_top(&mut none, 0), 1);
        assert!(none.is_empty());
    }

    #[test]
    fn partitions_merge_under_the_bound() {
        let board = WindowBoard::new(2);
        let snapshot = |groups| WindowSnapshot {
            watermark_ms: Some(5),
            late_events: 1,
            rules: vec![rule(groups)],
            ..Default::default()
        };
        board.publish(0, snapshot(vec![group("a", 3), group("b", 1)]));
        board.publish(1, snapshot(vec![group("c", 7)]));
        let merged = board.merged();
        assert_eq!(merged.late_events, 2);
        let r = &merged.rules[0];
        assert_eq!(r.groups.iter().map(|g| g.group_key.as_str()).collect::<Vec<_>>(), ["c", "a"]);
        assert_eq!((r.omitted, r.tracked_groups, r.counters.counted), (1, 3, 20));
        board.retain(&[1]);
        assert_eq!(board.merged().rules[0].groups.len(), 1);
    }
}
