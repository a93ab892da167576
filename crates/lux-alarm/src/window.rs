//! Per (rule, group) window state: pane counts of one slide each, and the alarm currently raised.
//! A window of `n` slides is the sum of `n` consecutive panes; no event is ever copied.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The counts of one pane: the events of `[index * slide, (index + 1) * slide)` in event time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pane {
    /// `event_time.div_euclid(slide)`.
    pub index: i64,
    /// Failures counted.
    pub failures: u64,
    /// Events counted (failures or not).
    pub total: u64,
    /// Event time of the earliest failure, if any.
    pub first_failure: Option<i64>,
    /// Event time of the latest failure, if any.
    pub last_failure: Option<i64>,
    /// Whether a latest failure carried an intervention that suppresses alarms (ORed over
    /// failures sharing that millisecond, so that arrival order does not matter).
    pub last_suppress: bool,
    /// The suppressing intervention of a latest failure (the smallest id among failures sharing
    /// that millisecond, so that arrival order does not matter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_intervention: Option<String>,
    /// Where its state entry was staged in the commit being made, if it was
    /// ([`crate::engine::Staged`]).
    #[serde(skip)]
    pub staged: StagedAt,
}

/// A pane's place among the state entries staged for a commit: valid only in the commit that
/// `commit` marks (0: never staged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StagedAt {
    pub commit: u64,
    pub entry: u32,
}

impl Pane {
    fn new(index: i64) -> Pane {
        Pane {
            index,
            failures: 0,
            total: 0,
            first_failure: None,
            last_failure: None,
            last_suppress: false,
            last_intervention: None,
            staged: StagedAt::default(),
        }
    }

    fn add(&mut self, time: i64, failure: bool, suppress: bool, intervention: Option<&str>) {
        self.total = self.total.saturating_add(1);
        if !failure {
            return;
        }
        self.failures = self.failures.saturating_add(1);
        self.first_failure = Some(self.first_failure.map_or(time, |f| f.min(time)));
        match self.last_failure {
            Some(last) if last > time => {}
            Some(last) if last == time => {
                self.last_suppress |= suppress;
                if let Some(id) = intervention {
                    if self.last_intervention.as_deref().is_none_or(|kept| id < kept) {
                        self.last_intervention = Some(id.to_owned());
                    }
                }
            }
            _ => {
                self.last_failure = Some(time);
                self.last_suppress = suppress;
                self.last_intervention = intervention.map(str::to_owned);
            }
        }
    }
}

/// The alarm raised for a group, as of its latest record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActiveAlarm {
    pub alarm_id: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub last_suppress: bool,
    /// Failures and events of the window of the latest record.
    pub count: u64,
    pub total: u64,
    /// The suppressing intervention of the latest failure (with `last_suppress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_intervention: Option<String>,
    /// The window (end index) the alarm was raised on while it was still open (early firing):
    /// when it closes, an `updated` record gives its final counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_window: Option<i64>,
}

/// The state of one (rule, group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    /// The group's value of each of the rule's `group_by` dimensions, in order.
    pub values: Vec<String>,
    /// Panes with at least one event, in increasing index order.
    pub panes: VecDeque<Pane>,
    /// Boxed: most groups of a large rule have none, and the group stays small in the cache.
    pub alarm: Option<Box<ActiveAlarm>>,
    /// Listed in the engine's dirty groups (its entry to be written at the next commit).
    pub dirty: bool,
    /// The group's own entry (values, alarm) changed since it was last written.
    pub header_dirty: bool,
}

/// Ranges of window end indices (inclusive), as [`Group::candidate_ranges`] gives them: inline
/// up to 4 (a watermark passing a few slides at once), as it runs for every group at each slide.
pub(crate) type WindowRanges = smallvec::SmallVec<[(i64, i64); 4]>;

/// The failures and events of one window, with where its panes are in [`Group::panes`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowCounts {
    pub failures: u64,
    pub total: u64,
    /// `panes[lo..hi]` are the panes of the window.
    pub lo: usize,
    pub hi: usize,
}

impl Group {
    pub fn new(values: Vec<String>) -> Group {
        Group { values, panes: VecDeque::new(), alarm: None, dirty: false, header_dirty: true }
    }

    /// Counts one event of pane `index`, and returns the pane. Events mostly land in the latest
    /// pane, or start the next one: those are found without searching (a search reads a pane
    /// per step, and the panes of thousands of groups are far from the cache).
    pub fn add(
        &mut self,
        index: i64,
        time: i64,
        failure: bool,
        suppress: bool,
        intervention: Option<&str>,
    ) -> Option<&mut Pane> {
        let latest = self.panes.back().map(|p| p.index);
        let pos = match latest {
            Some(latest) if latest == index => self.panes.len() - 1,
            Some(latest) if latest > index => match self.panes.binary_search_by_key(&index, |p| p.index) {
                Ok(pos) => pos,
                Err(pos) => {
                    self.panes.insert(pos, Pane::new(index));
                    pos
                }
            },
            _ => {
                self.panes.push_back(Pane::new(index));
                self.panes.len() - 1
            }
        };
        let pane = self.panes.get_mut(pos)?;
        pane.add(time, failure, suppress, intervention);
        Some(pane)
    }

    /// The window end indices (`k`: the window is panes `k - n ..= k - 1`) in `(from, to]` at which
    /// the group's window content may change, in increasing order, as merged ranges: each pane
    /// `p` enters at `p + 1` and leaves at `p + n + 1`. Between them the window is empty or
    /// unchanged. `extra` adds one more index (to clear an alarm whose panes are all gone).
    pub fn candidate_ranges(&self, n: i64, from: Option<i64>, to: i64, extra: Option<i64>) -> WindowRanges {
        let low = from.map_or(i64::MIN, |f| f.saturating_add(1));
        let mut ranges = WindowRanges::new();
        // Adds a range; returns whether the ranges now reach `to`.
        let mut push = |start: i64, end: i64| {
            let start = start.max(low);
            let end = end.min(to);
            if start <= end {
                match ranges.last_mut() {
                    Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                    _ => ranges.push((start, end)),
                }
            }
            ranges.last().is_some_and(|last| last.1 >= to)
        };
        let mut extra = extra;
        // Panes whose ranges end before `low` add nothing: skip them at once.
        let first = self.panes.partition_point(|p| p.index.saturating_add(n).saturating_add(1) < low);
        for pane in self.panes.range(first..) {
            let start = pane.index.saturating_add(1);
            if let Some(e) = extra {
                if e <= start {
                    let _ = push(e, e);
                    extra = None;
                }
            }
            // Once a range reaches `to`, the later panes' ranges (starting no earlier) and
            // `extra` (after the panes seen) fall in it: a watermark one slide on stops here,
            // at the first pane, instead of reading a whole window of panes.
            if push(start, pane.index.saturating_add(n).saturating_add(1)) {
                break;
            }
        }
        if let Some(e) = extra {
            let _ = push(e, e);
        }
        ranges
    }

    /// The first window ending at an index in `first..=last` whose counts satisfy `reaches`, with
    /// its counts. Only the indices where a pane enters or leaves the window are tried.
    pub fn first_window_reaching(
        &self,
        n: i64,
        first: i64,
        last: i64,
        reaches: impl Fn(&WindowCounts) -> bool,
    ) -> Option<(i64, WindowCounts)> {
        let mut slider = Slider::new();
        // Skip the panes before the first window at once.
        let start = self.panes.partition_point(|p| p.index < first.saturating_sub(n));
        slider.lo = start;
        slider.hi = start;
        let mut k = first;
        while k <= last {
            let w = slider.window(&self.panes, n, k);
            if reaches(&w) {
                return Some((k, w));
            }
            // The window changes next when the pane after it enters or its first pane leaves.
            let enters = self.panes.get(w.hi).map_or(i64::MAX, |p| p.index.saturating_add(1));
            let leaves = self
                .panes
                .get(w.lo)
                .filter(|_| w.lo < w.hi)
                .map_or(i64::MAX, |p| p.index.saturating_add(n).saturating_add(1));
            let next = enters.min(leaves);
            if next == i64::MAX {
                return None;
            }
            k = next.max(k.saturating_add(1));
        }
        None
    }

    /// The earliest failure time in `panes[lo..hi]`.
    pub fn first_failure(&self, lo: usize, hi: usize) -> Option<i64> {
        self.panes.iter().skip(lo).take(hi.saturating_sub(lo)).find_map(|p| p.first_failure)
    }

    /// The latest failure time in `panes[lo..hi]` and whether it was suppressed.
    pub fn last_failure(&self, lo: usize, hi: usize) -> Option<(i64, bool)> {
        self.panes
            .iter()
            .skip(lo)
            .take(hi.saturating_sub(lo))
            .rev()
            .find_map(|p| p.last_failure.map(|t| (t, p.last_suppress)))
    }

    /// The suppressing intervention of the latest failure in `panes[lo..hi]`.
    pub fn last_intervention(&self, lo: usize, hi: usize) -> Option<&str> {
        let pane = self.panes.iter().skip(lo).take(hi.saturating_sub(lo)).rev().find(|p| p.last_failure.is_some())?;
        pane.last_intervention.as_deref()
    }

    /// Drops the panes no window ending after index `to` contains, nor the first window
    /// without them, handing each to `dropped`.
    pub fn prune(&mut self, n: i64, to: i64, mut dropped: impl FnMut(Pane)) {
        while self.panes.front().is_some_and(|p| p.index.saturating_add(n).saturating_add(1) <= to) {
            if let Some(pane) = self.panes.pop_front() {
                dropped(pane);
            }
        }
    }
}

/// Running sums over a window sliding forward over a group's panes (two pointers).
pub(crate) struct Slider {
    lo: usize,
    hi: usize,
    failures: u64,
    total: u64,
}

impl Slider {
    pub fn new() -> Slider {
        Slider { lo: 0, hi: 0, failures: 0, total: 0 }
    }

    /// The counts of the window ending at index `k` (panes `k - n ..= k - 1`). `k` must not
    /// decrease between calls.
    pub fn window(&mut self, panes: &VecDeque<Pane>, n: i64, k: i64) -> WindowCounts {
        while let Some(p) = panes.get(self.hi) {
            if p.index >= k {
                break;
            }
            self.failures = self.failures.saturating_add(p.failures);
            self.total = self.total.saturating_add(p.total);
            self.hi += 1;
        }
        let first = k.saturating_sub(n);
        while self.lo < self.hi {
            match panes.get(self.lo) {
                Some(p) if p.index < first => {
                    self.failures = self.failures.saturating_sub(p.failures);
                    self.total = self.total.saturating_sub(p.total);
                    self.lo += 1;
                }
                _ => break,
            }
        }
        WindowCounts { failures: self.failures, total: self.total, lo: self.lo, hi: self.hi }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_with(indices: &[i64]) -> Group {
        let mut g = Group::new(vec![]);
        for &i in indices {
            g.add(i, i * 10, true, false, None);
        }
        g
    }

    #[test]
    fn candidate_ranges_merge_and_clip() {
        let g = group_with(&[5, 6, 20]);
        // n = 3: pane 5 -> 6..=9, pane 6 -> 7..=10, pane 20 -> 21..=24.
        assert_eq!(g.candidate_ranges(3, None, 100, None).to_vec(), vec![(6, 10), (21, 24)]);
        assert_eq!(g.candidate_ranges(3, Some(8), 22, None).to_vec(), vec![(9, 10), (21, 22)]);
        assert_eq!(g.candidate_ranges(3, Some(8), 22, Some(15)).to_vec(), vec![(9, 10), (15, 15), (21, 22)]);
        assert!(g.candidate_ranges(3, Some(30), 40, None).is_empty());
        // The scan stops at the first range reaching `to`; `extra` after it is inside it.
        assert_eq!(g.candidate_ranges(3, Some(8), 9, Some(9)).to_vec(), vec![(9, 9)]);
        assert_eq!(g.candidate_ranges(3, Some(5), 9, Some(7)).to_vec(), vec![(6, 9)]);
        assert_eq!(g.candidate_ranges(3, Some(5), 9, Some(12)).to_vec(), vec![(6, 9)]);
        assert_eq!(g.candidate_ranges(3, Some(10), 21, Some(12)).to_vec(), vec![(12, 12), (21, 21)]);
    }

    /// The ranges, the slow way: every index in `(from, to]` where a pane enters or leaves a
    /// window, plus `extra`.
    fn candidates_by_brute_force(g: &Group, n: i64, from: i64, to: i64, extra: Option<i64>) -> Vec<i64> {
        (from + 1..=to)
            .filter(|&k| Some(k) == extra || g.panes.iter().any(|p| p.index < k && k <= p.index + n + 1))
            .collect()
    }

    #[test]
    fn candidate_ranges_hold_exactly_the_indices_where_a_window_may_change() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m) as i64
        };
        for _ in 0..2_000 {
            let mut indices: Vec<i64> = (0..next(6)).map(|_| next(40)).collect();
            indices.sort_unstable();
            let g = group_with(&indices);
            let n = 1 + next(6);
            let from = next(50) - 5;
            let to = from + next(12);
            let extra = if next(2) == 0 { Some(from + next(14)) } else { None };
            let got: Vec<i64> = g.candidate_ranges(n, Some(from), to, extra).iter().flat_map(|&(a, b)| a..=b).collect();
            assert_eq!(
                got,
                candidates_by_brute_force(&g, n, from, to, extra),
                "{indices:?} n={n} ({from}, {to}] {extra:?}"
            );
        }
    }

    #[test]
    fn slider_sums_the_window_panes() {
        let mut g = group_with(&[1, 2, 2, 4]);
        g.add(3, 31, false, false, None);
        let mut s = Slider::new();
        let w = s.window(&g.panes, 2, 3); // panes 1, 2
        assert_eq!((w.failures, w.total), (3, 3));
        let w = s.window(&g.panes, 2, 4); // panes 2, 3
        assert_eq!((w.failures, w.total), (2, 3));
        let w = s.window(&g.panes, 2, 6); // panes 4, 5
        assert_eq!((w.failures, w.total), (1, 1));
        assert_eq!(g.first_failure(w.lo, w.hi), Some(40));
        let w = s.window(&g.panes, 2, 9);
        assert_eq!((w.failures, w.total), (0, 0));
    }

    #[test]
    fn latest_failure_ties_or_the_suppression_flag() {
        let mut a = Group::new(vec![]);
        a.add(0, 5, true, true, Some("INT-2"));
        a.add(0, 5, true, false, None);
        a.add(0, 5, true, true, Some("INT-1"));
        let mut b = Group::new(vec![]);
        b.add(0, 5, true, false, None);
        b.add(0, 5, true, true, Some("INT-1"));
        b.add(0, 5, true, true, Some("INT-2"));
        assert_eq!(a.last_failure(0, 1), Some((5, true)));
        assert_eq!(b.last_failure(0, 1), Some((5, true)));
        assert_eq!(a.last_intervention(0, 1), Some("INT-1"));
        assert_eq!(b.last_intervention(0, 1), Some("INT-1"));
        a.add(0, 6, true, false, None);
        assert_eq!(a.last_failure(0, 1), Some((6, false)));
        assert_eq!(a.last_intervention(0, 1), None);
    }
}
