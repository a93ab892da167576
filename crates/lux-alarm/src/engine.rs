//! The alarm engine: watermarks per partition, events counted into the panes of each rule's
//! groups, windows evaluated as the watermark passes their end, the raise / update / clear
//! lifecycle, and the state entries that let a restarted engine carry on where it stopped.

use crate::config::{AlarmConfig, EarlyFiring, Level};
use crate::route::{RouteOutcome, Router, RuleEvent};
use crate::window::{ActiveAlarm, Group, Slider, WindowCounts};
use groups::{RuleGroups, SlotId};
use lux_model::{Alarm, AlarmState, ConfigProblem, EnrichedEvent};
use lux_stage::watermark::PartitionWatermarks;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

mod groups;
mod publish;
mod state;

pub use state::PANE_KEY_PREFIX;

/// The key of the state entry holding watermarks and counters (of an engine that reads every
/// partition; the engine of one partition of the routed topic uses `meta/<partition>`).
pub const META_KEY: &[u8] = b"meta";
/// The prefix of the state entries of (rule, group)s: `group/<rule>/<group_key>` (their panes
/// are [`PANE_KEY_PREFIX`] entries).
pub const GROUP_KEY_PREFIX: &[u8] = b"group/";
/// The meta entry's version. Version 1 kept each group's panes in its JSON group entry; it is
/// read, and rewritten as version 2 (binary group and pane entries) at the next commit.
const STATE_VERSION: u32 = 2;
/// The oldest state version this LUX reads.
const OLDEST_STATE_VERSION: u32 = 1;

/// What [`AlarmEngine::on_event`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventOutcome {
    /// Added to the window of at least one rule.
    Counted,
    /// Older than the watermark of its partition (or of the engine): counted per rule as late,
    /// added to no window.
    Late,
    /// No rule's filter accepts it.
    Filtered,
    /// Accepted by some rule but without a value for one of its `group_by` dimensions.
    Ungrouped,
    /// Accepted by some rule but its group is new and `max_groups` groups are already tracked.
    Overflow,
}

/// A snapshot of the engine, for metrics and `lux` status output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmStats {
    /// The engine's event-time watermark: every window ending at or before it was evaluated.
    pub watermark_ms: Option<i64>,
    /// Alarms raised and not cleared.
    pub active_alarms: usize,
    /// Tracked (rule, group) keys.
    pub groups: usize,
    /// Events found late (each counted once, whatever the number of rules).
    pub late_events: u64,
    /// Events (each counted once) some rule could not track because of `max_groups`.
    pub overflow_events: u64,
}

/// Per-rule counters, for metrics labelled by rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleCounters {
    /// Events added to one of the rule's windows.
    pub counted: u64,
    /// Events the rule accepted but which were late.
    pub late: u64,
    /// Events the rule accepted but which lacked a `group_by` dimension.
    pub ungrouped: u64,
    /// Events the rule accepted but could not track (`max_groups` reached).
    pub overflow: u64,
}

/// [`RuleCounters`] with the rule's name and current state size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    pub rule: String,
    pub counters: RuleCounters,
    /// Tracked groups of this rule.
    pub groups: usize,
    /// Alarms of this rule raised and not cleared.
    pub active_alarms: usize,
}

/// The configuration was invalid: every problem found, with its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid alarm configuration: {}", .0.iter().map(|p| format!("{}: {}", p.key, p.message)).collect::<Vec<_>>().join("; "))]
pub struct InvalidConfig(pub Vec<ConfigProblem>);

/// A rule, compiled for evaluation.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub name: String,
    filter: Vec<(String, Vec<String>)>,
    pub group_by: Vec<String>,
    window_ms: i64,
    slide_ms: i64,
    /// Panes per window.
    n: i64,
    /// Threshold and clear level; an alarm always clears on a window without failures.
    level: Level,
    /// Which open windows a count rule raises on.
    early_firing: EarlyFiring,
    severity: String,
    suppress: bool,
}

/// Compiles the rules of a valid configuration.
pub(crate) fn compile_rules(cfg: &AlarmConfig) -> Result<Vec<Rule>, InvalidConfig> {
    let problems = cfg.validate("alarm.");
    if !problems.is_empty() {
        return Err(InvalidConfig(problems));
    }
    Ok(cfg
        .rules
        .iter()
        .map(|r| {
            let window_ms = millis(r.window);
            let slide_ms = millis(r.slide).max(1);
            Rule {
                name: r.name.clone(),
                filter: r.filter.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                group_by: r.group_by.clone(),
                window_ms,
                slide_ms,
                n: (window_ms / slide_ms).max(1),
                level: r.level(),
                early_firing: r.early_firing,
                severity: r.severity.clone(),
                suppress: r.suppress_during_interventions,
            }
        })
        .collect())
}

impl Level {
    /// Whether a window of `failures` among `total` events raises the alarm.
    fn raises(&self, failures: u64, total: u64) -> bool {
        match *self {
            Level::Count { threshold, .. } => failures >= threshold,
            Level::Ratio { threshold, min_events, .. } => {
                failures > 0 && total >= min_events && threshold.reached_by(failures, total)
            }
        }
    }

    /// Whether an open window may raise the alarm before it closes: a count rule's failures only
    /// grow, a ratio may still fall with more successes.
    fn fires_early(&self) -> bool {
        matches!(self, Level::Count { .. })
    }

    /// Whether a window of `failures` among `total` events clears a raised alarm.
    fn clears(&self, failures: u64, total: u64) -> bool {
        match *self {
            Level::Count { clear, .. } => failures < clear,
            Level::Ratio { clear, .. } => failures == 0 || !clear.reached_by(failures, total),
        }
    }

    /// The record's `threshold`, `threshold_ratio` and `min_events` for a window of `total` events.
    fn record_fields(&self, total: u64) -> (u64, Option<lux_model::Ratio>, Option<u64>) {
        match *self {
            Level::Count { threshold, .. } => (threshold, None, None),
            Level::Ratio { threshold, min_events, .. } => {
                (threshold.parts_of(total).max(1), Some(threshold), Some(min_events))
            }
        }
    }
}

impl Rule {
    pub(crate) fn accepts(&self, event: &EnrichedEvent) -> bool {
        self.filter.iter().all(|(dim, values)| match event.dimension(dim) {
            Some(v) => values.iter().any(|a| a == v),
            None => false,
        })
    }
}

/// The persisted form of the engine-wide state.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaEntry {
    version: u32,
    watermark: Option<i64>,
    /// Partition -> highest event time seen.
    partitions: BTreeMap<u32, i64>,
    late_events: u64,
    overflow_events: u64,
    rules: BTreeMap<String, RuleCounters>,
}

/// The persisted form of one (rule, group) in state version 1 (JSON, with all its panes), read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupEntry {
    version: u32,
    rule: String,
    group_by: Vec<String>,
    slide_ms: i64,
    group_key: String,
    values: Vec<String>,
    panes: VecDeque<crate::window::Pane>,
    alarm: Option<ActiveAlarm>,
}

/// The key of a (rule, group) in the central log: `<rule>/<group_key>`. Its routed events and its
/// alarm records carry it, so that they share a partition number; its state entry is
/// `group/<rule>/<group_key>`.
pub fn alarm_key(rule: &str, group_key: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(rule.len() + 1 + group_key.len());
    key.extend_from_slice(rule.as_bytes());
    key.push(b'/');
    key.extend_from_slice(group_key.as_bytes());
    key
}

/// The key by which the alarm stage sends a state entry to the engine of its partition: a group's
/// or pane's entry goes where the group's routed records go, its alarm key; a meta entry as it is.
pub fn state_routing_key(key: &[u8]) -> &[u8] {
    if let Some((alarm_key, _)) = state::parse_pane_key(key) {
        return alarm_key;
    }
    key.strip_prefix(GROUP_KEY_PREFIX).unwrap_or(key)
}

fn group_state_key(rule: &str, group_key: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(GROUP_KEY_PREFIX.len() + rule.len() + 1 + group_key.len());
    key.extend_from_slice(GROUP_KEY_PREFIX);
    key.extend_from_slice(&alarm_key(rule, group_key));
    key
}

pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Event-time sliding windows and threshold rules over enriched events. Pure logic: the stage
/// runner feeds events and wall-clock time, writes the alarms returned by [`AlarmEngine::advance`]
/// and persists [`AlarmEngine::take_changes`] in the same commit.
#[derive(Debug)]
pub struct AlarmEngine {
    rules: Vec<Rule>,
    /// Per rule (same order as `rules`): the groups' state, by group key and by slot.
    groups: Vec<RuleGroups>,
    counters: Vec<RuleCounters>,
    group_count: usize,
    active_alarms: usize,
    max_groups: usize,
    /// How far behind the watermark an event is still counted.
    allowed_lateness_ms: i64,
    /// The input partitions' event-time clocks (out-of-orderness, idleness).
    clocks: PartitionWatermarks,
    watermark: Option<i64>,
    late_events: u64,
    overflow_events: u64,
    /// (rule index, slot) of the groups whose own entry changed since the last `take_changes`
    /// (may repeat, and may name a slot emptied or reused since).
    dirty: Vec<(usize, SlotId)>,
    /// The pane entries changed since the last `take_changes`.
    staged: state::Staged,
    /// State keys to delete at the next `take_changes`: the entries of removed groups, and
    /// restored entries no rule wants.
    obsolete: Vec<Vec<u8>>,
    meta_dirty: bool,
    /// The key of this engine's meta entry ([`META_KEY`], or `meta/<partition>`).
    meta_key: Vec<u8>,
    /// Routes the events given to [`AlarmEngine::on_event`] (an engine reading enriched events
    /// itself rather than the routed topic): its lateness and counters are this engine's.
    router: Router,
    route_buf: Vec<RuleEvent>,
    /// Records made as events were counted (early raises, late re-evaluations), returned by the
    /// next `advance`.
    pending: Vec<Alarm>,
    /// The reception stamps of the events that raised an alarm of `pending` (early firing),
    /// taken by [`AlarmEngine::take_raised_receptions`].
    raised_receptions: Vec<i64>,
}

impl AlarmEngine {
    /// An engine for `cfg` reading the input partitions `partitions` (a partition listed here
    /// holds the watermark back until it sends a record or is idle; partitions not listed are
    /// taken on at their first record). The configuration is validated first.
    pub fn new(cfg: &AlarmConfig, partitions: &[u32]) -> Result<AlarmEngine, InvalidConfig> {
        let rules = compile_rules(cfg)?;
        Ok(AlarmEngine {
            groups: rules.iter().map(|_| RuleGroups::default()).collect(),
            counters: rules.iter().map(|_| RuleCounters::default()).collect(),
            rules,
            group_count: 0,
            active_alarms: 0,
            max_groups: cfg.max_groups,
            allowed_lateness_ms: millis(cfg.allowed_lateness),
            clocks: PartitionWatermarks::new(partitions, millis(cfg.out_of_orderness), millis(cfg.idle_timeout)),
            watermark: None,
            late_events: 0,
            overflow_events: 0,
            dirty: Vec::new(),
            staged: state::Staged::default(),
            obsolete: Vec::new(),
            meta_dirty: false,
            meta_key: META_KEY.to_vec(),
            router: Router::new(cfg)?,
            route_buf: Vec::new(),
            pending: Vec::new(),
            raised_receptions: Vec::new(),
        })
    }

    /// The same engine for one partition of the routed topic: its meta entry is
    /// `meta/<partition>`, so that the engines of several partitions share a state store.
    pub fn for_routed_partition(mut self, partition: u32) -> Self {
        self.meta_key = routed_meta_key(partition);
        self
    }

    /// Takes one enriched event read from input partition `partition` at wall time
    /// `now_wall_ms`: routes it to the rules that accept it (lateness against the partition's
    /// own watermark, group keys) and counts it in their windows.
    pub fn on_event(&mut self, partition: u32, event: &EnrichedEvent, now_wall_ms: i64) -> EventOutcome {
        self.clocks.start(now_wall_ms);
        let mut routed = std::mem::take(&mut self.route_buf);
        routed.clear();
        let outcome = self.router.route(partition, event, &mut routed);
        if let Some(time) = self.router.clock(partition) {
            self.on_watermark(partition, time, now_wall_ms);
        }
        let result = match outcome {
            RouteOutcome::Filtered => EventOutcome::Filtered,
            RouteOutcome::Ungrouped => EventOutcome::Ungrouped,
            RouteOutcome::Late => {
                self.meta_dirty = true;
                EventOutcome::Late
            }
            RouteOutcome::Routed => {
                let (mut counted, mut late) = (false, false);
                for rule_event in &routed {
                    match self.count(rule_event) {
                        EventOutcome::Counted => counted = true,
                        EventOutcome::Late => late = true,
                        _ => {}
                    }
                }
                self.meta_dirty = true;
                if late {
                    self.late_events = self.late_events.saturating_add(1);
                    EventOutcome::Late
                } else if counted {
                    EventOutcome::Counted
                } else {
                    self.overflow_events = self.overflow_events.saturating_add(1);
                    EventOutcome::Overflow
                }
            }
        };
        self.route_buf = routed;
        result
    }

    /// Takes one event of the routed topic (one rule's view of an enriched event, routed by the
    /// [`Router`] to the partition of its group), read at wall time `now_wall_ms`. `upstream`
    /// is the enriched partition it came from.
    pub fn on_rule_event(&mut self, upstream: u32, event: &RuleEvent, now_wall_ms: i64) -> EventOutcome {
        self.clocks.touch(upstream, now_wall_ms);
        self.meta_dirty = true;
        let outcome = self.count(event);
        match outcome {
            EventOutcome::Late => self.late_events = self.late_events.saturating_add(1),
            EventOutcome::Overflow => self.overflow_events = self.overflow_events.saturating_add(1),
            _ => {}
        }
        outcome
    }

    /// Takes the progress of enriched partition `upstream`: its highest event time so far, as
    /// the router saw it (read at wall time `now_wall_ms`). It moves the watermark at the next
    /// [`AlarmEngine::advance`].
    pub fn on_watermark(&mut self, upstream: u32, max_event_time: i64, now_wall_ms: i64) {
        if self.clocks.observe(upstream, max_event_time, now_wall_ms) {
            self.meta_dirty = true;
        }
    }

    /// The reception stamps (ms since the epoch) of the events that raised an alarm the moment
    /// they arrived (early firing) since the last call: the stage measures from them the time
    /// from the threshold-crossing event's reception to its alarm record being readable.
    pub fn take_raised_receptions(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.raised_receptions)
    }

    /// Counts one rule's view of an event in its group's panes: late when it is behind the
    /// engine's watermark by more than `allowed_lateness` (the router already judged it against
    /// its own partition). Behind the watermark but within the lateness, the latest closed window
    /// is evaluated again. For a count rule without an alarm, a failure raises at once if it
    /// brings an open window holding it to the threshold (early firing, [`raise_early`]). The
    /// records go to `pending`, returned by the next `advance`.
    fn count(&mut self, event: &RuleEvent) -> EventOutcome {
        let Some(ri) = self.rules.iter().position(|r| r.name == event.rule) else {
            // Routed under a rule this configuration no longer has.
            return EventOutcome::Filtered;
        };
        let (Some(rule), Some(counters), Some(groups)) =
            (self.rules.get(ri), self.counters.get_mut(ri), self.groups.get_mut(ri))
        else {
            return EventOutcome::Filtered;
        };
        if self.watermark.is_some_and(|w| event.time < w.saturating_sub(self.allowed_lateness_ms)) {
            counters.late = counters.late.saturating_add(1);
            return EventOutcome::Late;
        }
        let id = match groups.find(&event.group_key) {
            Some(id) => id,
            None => {
                if self.group_count >= self.max_groups {
                    counters.overflow = counters.overflow.saturating_add(1);
                    return EventOutcome::Overflow;
                }
                self.group_count += 1;
                groups.insert(&event.group_key, Group::new(event.values.clone()))
            }
        };
        let Some(group) = groups.get_mut(id).map(|slot| &mut slot.group) else {
            return EventOutcome::Filtered;
        };
        let pane = event.time.div_euclid(rule.slide_ms);
        if let Some(counted) = group.add(pane, event.time, event.failure, event.suppress, event.intervention.as_deref())
        {
            self.staged.write(&rule.name, &event.group_key, counted);
        }
        counters.counted = counters.counted.saturating_add(1);
        {
            let raised_before = group.alarm.is_some();
            let n = rule.n;
            // Before the first watermark every window is open.
            let to = self.watermark.map_or(i64::MIN, |w| w.div_euclid(rule.slide_ms));
            // Behind the watermark, in the latest closed window: evaluate it again (unless the
            // alarm was raised on a later window, still open, which will be evaluated anyway).
            let in_closed = pane < to && pane.saturating_add(n) >= to;
            if in_closed && group.alarm.as_ref().is_none_or(|a| a.open_window.is_none()) {
                let w = Slider::new().window(&group.panes, n, to);
                step(rule, &event.group_key, group, to, w, true, &mut self.pending);
            }
            // Early firing: the first open window holding the event's pane that it brings to the
            // threshold raises at once (`any_window`), or only the window the watermark closes
            // next (`next_window`; none before the first watermark).
            if event.failure && group.alarm.is_none() {
                let (first, last) = match rule.early_firing {
                    EarlyFiring::AnyWindow => {
                        (pane.saturating_add(1).max(to.saturating_add(1)), pane.saturating_add(n))
                    }
                    // That window holds panes `to + 1 - n ..= to`: a later pane is not in it.
                    EarlyFiring::NextWindow if self.watermark.is_some() && pane <= to => {
                        (to.saturating_add(1), to.saturating_add(1))
                    }
                    EarlyFiring::NextWindow => (1, 0),
                };
                if raise_early(rule, &event.group_key, group, first, last, &mut self.pending) && event.received_at > 0 {
                    self.raised_receptions.push(event.received_at);
                }
            }
            match (raised_before, group.alarm.is_some()) {
                (false, true) => self.active_alarms += 1,
                (true, false) => self.active_alarms = self.active_alarms.saturating_sub(1),
                _ => {}
            }
        }
        if group.header_dirty && !group.dirty {
            group.dirty = true;
            self.dirty.push((ri, id));
        }
        EventOutcome::Counted
    }

    /// Recomputes the watermark at wall time `now_wall_ms` and evaluates every window whose end
    /// it has passed, in order of window end. Returns the alarm records (those made as events
    /// were counted first), sorted by (window_end, rule, group_key), each group's in their order.
    pub fn advance(&mut self, now_wall_ms: i64) -> Vec<Alarm> {
        let watermark = self.clocks.current(now_wall_ms);
        self.advance_to(watermark)
    }

    /// Declares the input complete (a bounded input read to its end, as `lux replay` does):
    /// every partition is taken as idle, so the watermark moves to the highest partition
    /// watermark and the last windows are evaluated, exactly as [`AlarmEngine::advance`] does
    /// once every partition has been silent for `idle_timeout`, but without waiting for the wall
    /// clock. Returns the alarm records like `advance`.
    pub fn finish_input(&mut self) -> Vec<Alarm> {
        let watermark = self.clocks.highest();
        self.advance_to(watermark)
    }

    fn advance_to(&mut self, new_wm: Option<i64>) -> Vec<Alarm> {
        let mut out = std::mem::take(&mut self.pending);
        if let Some(new_wm) = new_wm.filter(|&new| self.watermark.is_none_or(|old| new > old)) {
            self.evaluate_to(new_wm, &mut out);
        }
        // Stable: the records of one (rule, group, window) stay in the order they were made.
        out.sort_by(|a, b| (a.window_end, &a.rule, &a.group_key).cmp(&(b.window_end, &b.rule, &b.group_key)));
        out
    }

    fn evaluate_to(&mut self, new_wm: i64, out: &mut Vec<Alarm>) {
        let old_wm = self.watermark;
        self.watermark = Some(new_wm);
        self.meta_dirty = true;
        for (ri, rule) in self.rules.iter().enumerate() {
            let Some(groups) = self.groups.get_mut(ri) else { continue };
            let to = new_wm.div_euclid(rule.slide_ms);
            let from = old_wm.map(|w| w.div_euclid(rule.slide_ms));
            if from == Some(to) {
                continue;
            }
            // Panes stay while an event within the allowed lateness may still come for them.
            let purge_to = new_wm.saturating_sub(self.allowed_lateness_ms).div_euclid(rule.slide_ms);
            let mut emptied = Vec::new();
            let staged = &mut self.staged;
            for (id, slot) in groups.iter_mut() {
                let (key, group) = slot.parts();
                let raised_before = group.alarm.is_some();
                evaluate_group(rule, key, group, from, to, out);
                group.prune(rule.n, purge_to, |pane| staged.delete(&rule.name, key, &pane));
                match (raised_before, group.alarm.is_some()) {
                    (false, true) => self.active_alarms += 1,
                    (true, false) => self.active_alarms = self.active_alarms.saturating_sub(1),
                    _ => {}
                }
                if group.header_dirty && !group.dirty {
                    group.dirty = true;
                    self.dirty.push((ri, id));
                }
                if group.panes.is_empty() && group.alarm.is_none() {
                    emptied.push(id);
                }
            }
            // A removed group's entries are deleted at the next commit (its slot may be reused
            // before: the dirty list then names the new group).
            for id in emptied {
                if let Some(slot) = groups.remove(id) {
                    self.group_count = self.group_count.saturating_sub(1);
                    // Its panes' deletions were staged as they were pruned.
                    self.obsolete.push(group_state_key(&rule.name, slot.key()));
                }
            }
        }
    }

    /// The state entries changed since the last call: key -> new value, `None` for a deleted
    /// entry, each key once, in no particular order. Persist them with the outputs of the same
    /// batch.
    pub fn take_changes(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut out: Vec<state::Change> =
            Vec::with_capacity(1 + self.obsolete.len() + self.staged.len() + self.dirty.len());
        if self.meta_dirty {
            self.meta_dirty = false;
            out.push((self.meta_key.clone(), Some(encode(&self.meta_entry()))));
        }
        // Without obsolete entries, every key below comes once: a group's entry is written once
        // (its `dirty` flag), a pane's is staged once per commit (again in place), and a pane
        // deleted by pruning is behind every event still counted, so never written again.
        // Otherwise a key may come twice (a removed group made again, a stale pane entry of a
        // restored state rewritten): then the changes are sorted and the last change of a key
        // counts, so the obsolete entries come first.
        let repeats = !self.obsolete.is_empty();
        out.extend(std::mem::take(&mut self.obsolete).into_iter().map(|k| (k, None)));
        out.append(&mut self.staged.take());
        // A slot is listed once while its group's `dirty` flag is set (again if its group was
        // removed and the slot reused): the flag tells the second time apart.
        let mut dirty = std::mem::take(&mut self.dirty);
        for (ri, id) in dirty.drain(..) {
            let (Some(rule), Some(groups)) = (self.rules.get(ri), self.groups.get_mut(ri)) else { continue };
            let Some((key, group)) = groups.get_mut(id).map(groups::Slot::parts) else { continue };
            if !group.dirty {
                continue;
            }
            group.dirty = false;
            if group.header_dirty {
                group.header_dirty = false;
                let mut value = Vec::with_capacity(64);
                let header = state::GroupHeaderRef {
                    rule: &rule.name,
                    group_by: &rule.group_by,
                    slide_ms: rule.slide_ms,
                    group_key: key,
                    values: &group.values,
                    alarm: group.alarm.as_deref(),
                };
                state::encode_header(&header, &mut value);
                out.push((group_state_key(&rule.name, key), Some(value)));
            }
        }
        self.dirty = dirty;
        if !repeats {
            return out;
        }
        // By key (stable); of one key's several changes (a deleted entry written again) the last
        // counts.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let mut merged: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(out.len());
        for change in out {
            match merged.last_mut() {
                Some(last) if last.0 == change.0 => *last = change,
                _ => merged.push(change),
            }
        }
        merged
    }

    fn meta_entry(&self) -> MetaEntry {
        MetaEntry {
            version: STATE_VERSION,
            watermark: self.watermark,
            partitions: self.clocks.max_event_times(),
            late_events: self.late_events.saturating_add(self.router.late_events()),
            overflow_events: self.overflow_events,
            rules: self.rules.iter().zip(self.merged_counters()).map(|(r, c)| (r.name.clone(), c)).collect(),
        }
    }

    /// Rebuilds the engine's state from every entry [`AlarmEngine::take_changes`] ever returned
    /// (the latest value of each key). Groups of rules no longer configured, or whose `slide` or
    /// `group_by` changed, are dropped (and deleted at the next `take_changes`). On error the
    /// engine is left empty, as built by `new`.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        self.reset();
        let result = self.restore_entries(entries);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Each rule's counters: the windows' (counted, overflow, late against the engine's
    /// watermark) and the router's of `on_event` (late against the partition, ungrouped).
    fn merged_counters(&self) -> Vec<RuleCounters> {
        let routed = self.router.rule_counters();
        self.counters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let r = routed.get(i).cloned().unwrap_or_default();
                RuleCounters {
                    counted: c.counted.saturating_add(r.counted),
                    late: c.late.saturating_add(r.late),
                    ungrouped: c.ungrouped.saturating_add(r.ungrouped),
                    overflow: c.overflow.saturating_add(r.overflow),
                }
            })
            .collect()
    }

    fn reset(&mut self) {
        for groups in &mut self.groups {
            groups.clear();
        }
        for counters in &mut self.counters {
            *counters = RuleCounters::default();
        }
        self.clocks.reset();
        self.group_count = 0;
        self.active_alarms = 0;
        self.watermark = None;
        self.late_events = 0;
        self.overflow_events = 0;
        self.dirty.clear();
        self.staged.clear();
        self.obsolete.clear();
        self.meta_dirty = false;
        self.pending.clear();
        self.raised_receptions.clear();
        self.router.reset();
    }

    fn restore_entries(&mut self, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        // Pane entries by their group's alarm key, attached once every group is read.
        let mut panes: HashMap<Vec<u8>, Vec<(Vec<u8>, crate::window::Pane)>> = HashMap::new();
        for (key, value) in entries {
            let shown = || String::from_utf8_lossy(&key).into_owned();
            if key == self.meta_key {
                let meta: MetaEntry =
                    serde_json::from_slice(&value).map_err(|e| format!("alarm state entry {:?}: {e}", shown()))?;
                check_version(meta.version, &shown())?;
                // An older version's meta entry is rewritten at the next commit.
                self.meta_dirty = meta.version != STATE_VERSION;
                self.watermark = meta.watermark;
                for (p, t) in meta.partitions {
                    self.clocks.restore(p, t);
                    self.router.set_clock(p, t);
                }
                self.late_events = meta.late_events;
                self.overflow_events = meta.overflow_events;
                for (rule, counters) in self.rules.iter().zip(self.counters.iter_mut()) {
                    if let Some(c) = meta.rules.get(&rule.name) {
                        *counters = c.clone();
                    }
                }
            } else if let Some((alarm_key, index)) = state::parse_pane_key(&key) {
                let pane =
                    state::decode_pane(index, &value).map_err(|e| format!("alarm state entry {:?}: {e}", shown()))?;
                panes.entry(alarm_key.to_vec()).or_default().push((key, pane));
            } else if key.starts_with(GROUP_KEY_PREFIX) {
                self.restore_group(key, &value)?;
            } else {
                return Err(format!("unknown alarm state entry {:?}", shown()));
            }
        }
        for (ri, rule) in self.rules.iter().enumerate() {
            let Some(groups) = self.groups.get_mut(ri) else { continue };
            for (key, group) in groups.iter_mut().map(|(_, slot)| slot.parts()) {
                let Some(mut found) = panes.remove(&alarm_key(&rule.name, key)) else { continue };
                found.sort_unstable_by_key(|(_, p)| p.index);
                // A version 1 group entry had its panes inline: pane entries beside it are stale.
                if group.panes.is_empty() {
                    group.panes = found.into_iter().map(|(_, p)| p).collect();
                } else {
                    self.obsolete.extend(found.into_iter().map(|(k, _)| k));
                }
            }
        }
        // Panes of groups dropped (rules removed or changed) or without a group entry.
        self.obsolete.extend(panes.into_values().flatten().map(|(k, _)| k));
        Ok(())
    }

    /// Restores one group entry: binary, or JSON of state version 1 (then rewritten whole at the
    /// next commit).
    fn restore_group(&mut self, key: Vec<u8>, value: &[u8]) -> Result<(), String> {
        let shown = || String::from_utf8_lossy(&key).into_owned();
        let (header, panes, legacy) = if value.first() == Some(&b'{') {
            let entry: GroupEntry =
                serde_json::from_slice(value).map_err(|e| format!("alarm state entry {:?}: {e}", shown()))?;
            check_version(entry.version, &shown())?;
            if !entry.panes.iter().zip(entry.panes.iter().skip(1)).all(|(a, b)| a.index < b.index) {
                return Err(format!("alarm state entry {:?}: panes are not in increasing order", shown()));
            }
            let header = state::GroupHeader {
                rule: entry.rule,
                group_by: entry.group_by,
                slide_ms: entry.slide_ms,
                group_key: entry.group_key,
                values: entry.values,
                alarm: entry.alarm,
            };
            (header, entry.panes, true)
        } else {
            let header = state::decode_header(value).map_err(|e| format!("alarm state entry {:?}: {e}", shown()))?;
            (header, VecDeque::new(), false)
        };
        if group_state_key(&header.rule, &header.group_key) != key {
            return Err(format!(
                "alarm state entry {:?} holds rule {:?} group {:?}: key and value disagree",
                shown(),
                header.rule,
                header.group_key
            ));
        }
        let found = self
            .rules
            .iter()
            .position(|r| r.name == header.rule && r.slide_ms == header.slide_ms && r.group_by == header.group_by);
        let Some(ri) = found else {
            self.obsolete.push(key);
            return Ok(());
        };
        if header.values.len() != header.group_by.len() {
            return Err(format!("alarm state entry {:?}: group values do not match group_by", shown()));
        }
        let Some(groups) = self.groups.get_mut(ri) else { return Ok(()) };
        let mut group = Group {
            values: header.values,
            panes,
            alarm: header.alarm.map(Box::new),
            dirty: legacy,
            header_dirty: legacy,
        };
        if legacy {
            for pane in &mut group.panes {
                self.staged.write(&header.rule, &header.group_key, pane);
            }
        }
        let active = group.alarm.is_some();
        if groups.find(&header.group_key).is_none() {
            self.group_count += 1;
            if active {
                self.active_alarms += 1;
            }
        }
        let id = groups.insert(&header.group_key, group);
        if legacy {
            self.dirty.push((ri, id));
        }
        Ok(())
    }

    /// A snapshot of the engine's counters and size.
    pub fn stats(&self) -> AlarmStats {
        AlarmStats {
            watermark_ms: self.watermark,
            active_alarms: self.active_alarms,
            groups: self.group_count,
            late_events: self.late_events.saturating_add(self.router.late_events()),
            overflow_events: self.overflow_events,
        }
    }

    /// Counters and size per rule, in config order.
    pub fn rule_stats(&self) -> Vec<RuleStats> {
        self.rules
            .iter()
            .zip(self.merged_counters())
            .zip(&self.groups)
            .map(|((rule, counters), groups)| RuleStats {
                rule: rule.name.clone(),
                counters,
                groups: groups.len(),
                active_alarms: groups.iter().filter(|s| s.group.alarm.is_some()).count(),
            })
            .collect()
    }
}

/// Whether the committed state of an alarm stage (the entries [`AlarmEngine::take_changes`]
/// wrote, as the log returns them) has evaluated every window its input allows: its watermark is
/// at the highest partition watermark, as after idleness or [`AlarmEngine::finish_input`]. With
/// its input fully consumed, nothing more happens until new events come (`lux run --until-done`
/// waits for this). Unreadable state is not finished.
pub fn state_is_finished(entries: &[(Vec<u8>, Vec<u8>)], out_of_orderness: std::time::Duration) -> bool {
    entries.iter().filter(|(key, _)| key == META_KEY || key.starts_with(ROUTED_META_PREFIX)).all(|(_, value)| {
        let Ok(meta) = serde_json::from_slice::<MetaEntry>(value) else { return false };
        lux_stage::watermark::caught_up(meta.watermark, meta.partitions.into_values(), millis(out_of_orderness))
    })
}

const ROUTED_META_PREFIX: &[u8] = b"meta/";

/// The meta entry's key of the engine of one partition of the routed topic.
pub fn routed_meta_key(partition: u32) -> Vec<u8> {
    let mut key = ROUTED_META_PREFIX.to_vec();
    key.extend_from_slice(partition.to_string().as_bytes());
    key
}

fn check_version(version: u32, key: &str) -> Result<(), String> {
    if (OLDEST_STATE_VERSION..=STATE_VERSION).contains(&version) {
        Ok(())
    } else {
        Err(format!(
            "alarm state entry {key:?} has version {version}, this LUX reads versions {OLDEST_STATE_VERSION} to \
             {STATE_VERSION}: run it with the LUX version that wrote it"
        ))
    }
}

/// JSON of a state value. These plain structs (string-keyed maps, integers, strings) always
/// serialise; were it ever to fail, the empty value written is rejected by `restore` with the key.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Evaluates the windows of one group ending at indices in `(from, to]` (closed: the watermark
/// passed their end); when that clears the group's alarm, a count rule's open windows may raise
/// at once ([`raise_early`]). Appends the alarm records to `out`; a changed alarm marks the
/// group's own entry to write (`header_dirty`).
fn evaluate_group(rule: &Rule, key: &str, group: &mut Group, from: Option<i64>, to: i64, out: &mut Vec<Alarm>) {
    let raised_before = group.alarm.is_some();
    let extra = match (&group.alarm, from) {
        (Some(_), Some(f)) => Some(f.saturating_add(1)),
        _ => None,
    };
    let ranges = group.candidate_ranges(rule.n, from, to, extra);
    let mut slider = Slider::new();
    for (start, end) in ranges {
        let mut k = start;
        loop {
            let w = slider.window(&group.panes, rule.n, k);
            step(rule, key, group, k, w, true, out);
            if k >= end {
                break;
            }
            k += 1;
        }
    }
    // Without an alarm, an open window may already hold the threshold: with `any_window`, after
    // a clear by this evaluation (failures that came while the alarm was raised were not
    // checked), any of them; with `next_window`, the one the watermark closes next, which may
    // have reached it before it was next.
    if group.alarm.is_none() {
        match rule.early_firing {
            EarlyFiring::AnyWindow if raised_before => {
                let last = group.panes.back().map_or(to, |p| p.index.saturating_add(rule.n));
                raise_early(rule, key, group, to.saturating_add(1), last, out);
            }
            EarlyFiring::NextWindow => {
                raise_early(rule, key, group, to.saturating_add(1), to.saturating_add(1), out);
            }
            EarlyFiring::AnyWindow => {}
        }
    }
}

/// Early firing of a count rule on a group without an alarm: raises on the first window ending
/// at an index in `first..=last` (all open) whose failures reach the threshold, with the counts
/// so far. Returns whether it raised.
///
/// Which window that is depends only on the events counted so far and in what order, never on
/// where the watermark stands (an event that is not late lies in no closed window), so that a
/// restart or another batching of the same input raises on the same window (see
/// [`EarlyFiring`] for groups whose events interleave from several partitions). A count only grows, so the
/// window's close gives an `updated` record with its final counts, never a clear; windows that
/// close before it are not evaluated against the alarm (see [`step`]). A ratio rule never
/// fires early: more successes may still bring its ratio down.
fn raise_early(rule: &Rule, key: &str, group: &mut Group, first: i64, last: i64, out: &mut Vec<Alarm>) -> bool {
    if !rule.level.fires_early() || group.alarm.is_some() {
        return false;
    }
    let Some((k, w)) = group.first_window_reaching(rule.n, first, last, |w| rule.level.raises(w.failures, w.total))
    else {
        return false;
    };
    step(rule, key, group, k, w, false, out)
}

/// One lifecycle step of a group on its window ending at index `k`, of counts `w`. A `closed`
/// window (the watermark passed its end) raises, updates or clears; an open one can only raise,
/// and only for a count rule (early firing, see [`raise_early`]). A raise on an open window
/// carries the counts so far; the windows closing before it are skipped, and when it closes an
/// `updated` record follows if its final counts differ. Appends the record to `out`; returns
/// whether the alarm state changed.
fn step(
    rule: &Rule,
    key: &str,
    group: &mut Group,
    k: i64,
    w: WindowCounts,
    closed: bool,
    out: &mut Vec<Alarm>,
) -> bool {
    let state = match &mut group.alarm {
        None if rule.level.raises(w.failures, w.total) && (closed || rule.level.fires_early()) => AlarmState::Raised,
        None => return false,
        Some(_) if !closed => return false,
        // Raised early on a later window: the windows closing before it neither update nor
        // clear it (they would depend on how far the watermark had gone at the raise).
        Some(active) if active.open_window.is_some_and(|o| k < o) => return false,
        Some(active) => {
            let mut completed = false;
            if let Some(o) = active.open_window.filter(|&o| o <= k) {
                completed = true;
                // The raise window is complete: its first failure is final now. It is read from
                // the raise window's own panes, [o - n, o): the first window evaluated after it
                // may be a later one (which depends on how the watermark advanced, e.g. across a
                // restart), and the record must not.
                active.open_window = None;
                active.first_seen = group
                    .panes
                    .iter()
                    .filter(|p| p.index >= o.saturating_sub(rule.n) && p.index < o)
                    .find_map(|p| p.first_failure)
                    .unwrap_or(active.first_seen);
            }
            if rule.level.clears(w.failures, w.total) {
                AlarmState::Cleared
            } else if w.failures != active.count || w.total != active.total {
                AlarmState::Updated
            } else {
                // No record, but a completed raise window changed the alarm (its first failure,
                // no open window): its entry must be written, or a restart would read the
                // early values back, once the raise window's panes are gone.
                if completed {
                    group.header_dirty = true;
                }
                return completed;
            }
        }
    };
    let window_end = k.saturating_mul(rule.slide_ms);
    let window_start = window_end.saturating_sub(rule.window_ms);
    let latest = group.last_failure(w.lo, w.hi);
    // Looked up only when the latest failure was suppressed (rare): no cost otherwise.
    let latest_intervention = match latest {
        Some((_, true)) => group.last_intervention(w.lo, w.hi).map(str::to_owned),
        _ => None,
    };
    let active = match &mut group.alarm {
        None => {
            let first_seen = group.first_failure(w.lo, w.hi).unwrap_or(window_start);
            let (last_seen, last_suppress) = latest.unwrap_or((first_seen, false));
            let alarm_id = lux_model::stable_id(
                "lux.alarm.v1",
                &[rule.name.as_bytes(), key.as_bytes(), &window_start.to_be_bytes()],
            );
            group.alarm.insert(Box::new(ActiveAlarm {
                alarm_id,
                first_seen,
                last_seen,
                last_suppress,
                count: w.failures,
                total: w.total,
                last_intervention: latest_intervention,
                open_window: (!closed).then_some(k),
            }))
        }
        Some(active) => {
            if let Some((t, suppress)) = latest {
                if t >= active.last_seen {
                    active.last_seen = t;
                    active.last_suppress = suppress;
                    active.last_intervention = latest_intervention;
                }
            }
            active.count = w.failures;
            active.total = w.total;
            active
        }
    };
    let (threshold, threshold_ratio, min_events) = rule.level.record_fields(w.total);
    out.push(Alarm {
        schema: lux_model::schema::ALARM.to_owned(),
        alarm_id: active.alarm_id.clone(),
        rule: rule.name.clone(),
        group_key: key.to_owned(),
        group: rule.group_by.iter().cloned().zip(group.values.iter().cloned()).collect(),
        state,
        severity: rule.severity.clone(),
        count: w.failures,
        total: w.total,
        threshold,
        threshold_ratio,
        min_events,
        window_start,
        window_end,
        first_seen: active.first_seen,
        last_seen: active.last_seen,
        suppressed_by_intervention: rule.suppress && active.last_suppress,
        intervention_id: active.last_intervention.clone().filter(|_| rule.suppress && active.last_suppress),
    });
    if state == AlarmState::Cleared {
        group.alarm = None;
    }
    group.header_dirty = true;
    true
}
