//! The router: the first half of the alarm stage, which scales out by partition.
//!
//! The enriched topic is partitioned by equipment, but a rule counts per group (a site, a region,
//! a model...), and the events of one group come from many equipment partitions. To let several
//! instances share the work with each group's window in exactly one of them, the alarm stage is
//! split in two, as Flink splits a job at a `keyBy`:
//!
//! 1. **route** (this module, [`crate::stage::AlarmRouteStage`]) reads the enriched topic. For each
//!    event and each rule that accepts it, it emits a [`RuleEvent`] (the few fields a window needs)
//!    to the routed topic, keyed by the (rule, group) state key, so that every event of a group
//!    lands on the same partition. It judges lateness against the event's own enriched partition,
//!    whose records it reads in order, exactly as a single engine would: an event older than the
//!    partition's watermark by more than `allowed_lateness` is counted per rule and written,
//!    unchanged, to the `late` topic, in the same commit as the offsets it was read at. After each batch it sends
//!    the progress of each enriched partition it read (its highest event time) as a
//!    [`RouteRecord::Watermark`] to every partition of the routed topic.
//! 2. **window** ([`crate::stage::AlarmStage`]) reads the routed topic with one
//!    [`crate::AlarmEngine`] per partition. Each engine takes its watermark from the markers of
//!    its own partition: a marker follows, in that partition, every event of the enriched
//!    partition it covers, so a window is evaluated only after all its events have arrived.
//!
//! Both halves commit their state and input offsets atomically like any stage, and the state of
//! each lives with its partition: on Kafka, when an instance goes away, another takes its
//! partitions over with their state.

use crate::engine::{compile_rules, millis, InvalidConfig, Rule, RuleCounters};
use crate::AlarmConfig;
use lux_model::EnrichedEvent;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One rule's view of an enriched event: what its window needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEvent {
    /// The rule's name.
    pub rule: String,
    /// `dim=value,...` over the rule's `group_by`.
    pub group_key: String,
    /// The group's value of each `group_by` dimension, in order.
    pub values: Vec<String>,
    /// Event time, ms since the epoch.
    pub time: i64,
    pub failure: bool,
    /// An intervention that suppresses alarms covered the equipment then.
    pub suppress: bool,
    /// That intervention's id (with `suppress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervention: Option<String>,
    /// When LUX received the raw record of the event (ms since the epoch, wall clock): the alarm
    /// it raises measures its latency from it (0 in records of an older LUX: not measured).
    #[serde(default)]
    pub received_at: i64,
}

/// A record of the routed topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RouteRecord {
    /// An event for one rule's group, read from enriched partition `upstream`.
    Event {
        upstream: u32,
        /// The enriched record's offset in `upstream` (none in records of an older LUX): named
        /// in the `late` topic when the window half finds the event late.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        #[serde(flatten)]
        event: RuleEvent,
    },
    /// Enriched partition `upstream` has been read up to events of time `max_event_time`.
    Watermark { upstream: u32, max_event_time: i64 },
}

/// What [`Router::route`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOutcome {
    /// At least one rule's [`RuleEvent`] was emitted.
    Routed,
    /// Older than its partition's watermark by more than `allowed_lateness`: counted as late by
    /// the rules that accept it (the route stage writes it to the `late` topic).
    Late,
    /// No rule accepts it.
    Filtered,
    /// Accepted, but no accepting rule found all its `group_by` dimensions.
    Ungrouped,
}

/// The progress and counters of one enriched partition, persisted with that partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionRoute {
    /// The highest event time read.
    max_event_time: Option<i64>,
    /// Events found late.
    late_events: u64,
    /// Per rule name: late and ungrouped events.
    rules: BTreeMap<String, RuleCounters>,
}

/// The prefix of the router's state entries: `route/<partition>`.
const ROUTE_KEY_PREFIX: &str = "route/";

/// Routes enriched events to the rules' groups (see the module docs).
#[derive(Debug)]
pub struct Router {
    rules: Vec<Rule>,
    /// `out_of_orderness` plus `allowed_lateness`: an event further behind its partition's
    /// highest event time is late.
    lateness_ms: i64,
    partitions: BTreeMap<u32, PartitionRoute>,
    /// Partitions whose entry changed since the last `take_changes`.
    dirty: BTreeSet<u32>,
    key_buf: String,
}

impl Router {
    /// A router for `cfg`; the configuration is validated first.
    pub fn new(cfg: &AlarmConfig) -> Result<Router, InvalidConfig> {
        Ok(Router {
            rules: compile_rules(cfg)?,
            lateness_ms: millis(cfg.out_of_orderness).saturating_add(millis(cfg.allowed_lateness)),
            partitions: BTreeMap::new(),
            dirty: BTreeSet::new(),
            key_buf: String::new(),
        })
    }

    /// Routes an event read from enriched partition `partition`: appends one [`RuleEvent`] per
    /// rule that accepts it and finds its group to `out`.
    pub fn route(&mut self, partition: u32, event: &EnrichedEvent, out: &mut Vec<RuleEvent>) -> RouteOutcome {
        let time = event.event.event_time;
        let state = self.partitions.entry(partition).or_default();
        let late = state.max_event_time.is_some_and(|m| time < m.saturating_sub(self.lateness_ms));
        if state.max_event_time.is_none_or(|m| time > m) {
            state.max_event_time = Some(time);
            self.dirty.insert(partition);
        }
        let failure = event.is_failure;
        let suppressing = event.maintenance.as_ref().filter(|m| m.suppress_alarms);
        let suppress = suppressing.is_some();
        let (mut accepted, mut routed) = (false, false);
        let mut key = std::mem::take(&mut self.key_buf);
        for rule in &self.rules {
            if !rule.accepts(event) {
                continue;
            }
            accepted = true;
            if late {
                state.rules.entry(rule.name.clone()).or_default().late += 1;
                continue;
            }
            key.clear();
            let mut values = Vec::with_capacity(rule.group_by.len());
            for (i, dim) in rule.group_by.iter().enumerate() {
                let Some(value) = event.dimension(dim) else { break };
                if i > 0 {
                    key.push(',');
                }
                key.push_str(dim);
                key.push('=');
                key.push_str(value);
                values.push(value.to_owned());
            }
            if values.len() < rule.group_by.len() {
                state.rules.entry(rule.name.clone()).or_default().ungrouped += 1;
                continue;
            }
            out.push(RuleEvent {
                rule: rule.name.clone(),
                group_key: key.clone(),
                values,
                time,
                failure,
                suppress,
                intervention: suppressing.map(|m| m.intervention_id.clone()),
                received_at: event.event.received_at,
            });
            routed = true;
        }
        self.key_buf = key;
        if !accepted {
            return RouteOutcome::Filtered;
        }
        self.dirty.insert(partition);
        if late {
            state.late_events += 1;
            RouteOutcome::Late
        } else if routed {
            RouteOutcome::Routed
        } else {
            RouteOutcome::Ungrouped
        }
    }

    /// The highest event time read from `partition`.
    pub fn clock(&self, partition: u32) -> Option<i64> {
        self.partitions.get(&partition).and_then(|p| p.max_event_time)
    }

    /// Every partition's highest event time read.
    pub fn clocks(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.partitions.iter().filter_map(|(&p, s)| s.max_event_time.map(|t| (p, t)))
    }

    /// Sets a partition's highest event time (an engine restoring its own state).
    pub(crate) fn set_clock(&mut self, partition: u32, time: i64) {
        self.partitions.entry(partition).or_default().max_event_time = Some(time);
    }

    /// Events found late, over every partition.
    pub fn late_events(&self) -> u64 {
        self.partitions.values().map(|p| p.late_events).sum()
    }

    /// The rules' names, in config order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Per rule (config order): the late and ungrouped events, over every partition.
    pub fn rule_counters(&self) -> Vec<RuleCounters> {
        self.rules
            .iter()
            .map(|rule| {
                let mut sum = RuleCounters::default();
                for counters in self.partitions.values().filter_map(|p| p.rules.get(&rule.name)) {
                    sum.late += counters.late;
                    sum.ungrouped += counters.ungrouped;
                }
                sum
            })
            .collect()
    }

    /// The state entries changed since the last call, each with its enriched partition:
    /// `route/<partition>` -> that partition's progress and counters.
    pub fn take_changes(&mut self) -> Vec<(u32, Vec<u8>, Option<Vec<u8>>)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|p| {
                let state = self.partitions.get(&p)?;
                let value = serde_json::to_vec(state).unwrap_or_default();
                Some((p, format!("{ROUTE_KEY_PREFIX}{p}").into_bytes(), Some(value)))
            })
            .collect()
    }

    /// Rebuilds the router from the entries [`Router::take_changes`] wrote (of the partitions
    /// it now owns). On error the router is left empty.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        self.reset();
        for (key, value) in entries {
            let shown = String::from_utf8_lossy(&key).into_owned();
            let partition = shown
                .strip_prefix(ROUTE_KEY_PREFIX)
                .and_then(|p| p.parse::<u32>().ok())
                .ok_or_else(|| format!("unknown alarm route state entry {shown:?}"));
            let state = partition.and_then(|p| {
                serde_json::from_slice::<PartitionRoute>(&value)
                    .map(|s| (p, s))
                    .map_err(|e| format!("alarm route state entry {shown:?}: {e}"))
            });
            match state {
                Ok((p, s)) => {
                    self.partitions.insert(p, s);
                }
                Err(error) => {
                    self.reset();
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn reset(&mut self) {
        self.partitions.clear();
        self.dirty.clear();
    }
}
