//! The engine's window counters as metrics read them: per rule and group, the failures and
//! events of the window ending at the watermark, bounded in number of groups per rule.

use super::AlarmEngine;
use crate::board::{GroupWindow, RuleWindows, WindowSnapshot};

impl AlarmEngine {
    /// The counters of every rule's current window (the last one evaluated: it ends at the
    /// watermark, rounded down to the rule's slide), per group, with the rule's counters. At most
    /// `max_groups_per_rule` groups per rule are listed, those with the most failures (then by
    /// group key); the others are counted in [`RuleWindows::omitted`]. Costs one pass over the
    /// groups' panes: call it at a bounded rate, not per event.
    pub fn window_snapshot(&self, max_groups_per_rule: usize) -> WindowSnapshot {
        let stats = self.stats();
        let rules = self
            .rules
            .iter()
            .zip(&self.groups)
            .zip(self.merged_counters())
            .map(|((rule, groups), counters)| {
                let end = self.watermark.map(|w| w.div_euclid(rule.slide_ms));
                let mut listed: Vec<GroupWindow> = groups
                    .iter()
                    .map(|slot| {
                        let (key, group) = (slot.key(), &slot.group);
                        let (mut failures, mut events) = (0u64, 0u64);
                        if let Some(end) = end {
                            let first = end.saturating_sub(rule.n);
                            for pane in group.panes.iter().rev().filter(|p| p.index < end) {
                                if pane.index < first {
                                    break;
                                }
                                failures = failures.saturating_add(pane.failures);
                                events = events.saturating_add(pane.total);
                            }
                        }
                        GroupWindow {
                            group_key: key.to_string(),
                            failures,
                            events,
                            alarm_active: group.alarm.is_some(),
                        }
                    })
                    .collect();
                let active_alarms = listed.iter().filter(|g| g.alarm_active).count();
                let tracked_groups = listed.len();
                let omitted = crate::board::keep_top(&mut listed, max_groups_per_rule);
                RuleWindows {
                    rule: rule.name.clone(),
                    groups: listed,
                    omitted,
                    tracked_groups,
                    active_alarms,
                    counters,
                }
            })
            .collect();
        WindowSnapshot {
            watermark_ms: stats.watermark_ms,
            late_events: stats.late_events,
            overflow_events: stats.overflow_events,
            rules,
        }
    }
}
