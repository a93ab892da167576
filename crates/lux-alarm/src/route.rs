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

use crate::codec::{put_i64, put_opt_str, put_str, put_strs, put_u64, Reader};
use crate::engine::{compile_rules, millis, InvalidConfig, Rule, RuleCounters};
use crate::AlarmConfig;
use lux_model::EnrichedEvent;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One rule's view of an enriched event: what its window needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// The first byte of a binary routed record (the JSON records of an older LUX start with `{`).
const ROUTED_FORMAT: u8 = 3;
const EVENT_TAG: u8 = 1;
const WATERMARK_TAG: u8 = 2;
const FAILURE_FLAG: u8 = 1;
const SUPPRESS_FLAG: u8 = 2;

impl RouteRecord {
    /// The record's value in the routed topic: binary (a format byte, varints, strings), a few
    /// dozen bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(64);
        match self {
            RouteRecord::Event { upstream, offset, event } => encode_event(*upstream, *offset, event, &mut value),
            RouteRecord::Watermark { upstream, max_event_time } => {
                value.extend_from_slice(&[ROUTED_FORMAT, WATERMARK_TAG]);
                put_u64(&mut value, u64::from(*upstream));
                put_i64(&mut value, *max_event_time);
            }
        }
        value
    }

    /// Reads a record of the routed topic: binary, or the JSON of an older LUX.
    pub fn decode(value: &[u8]) -> Result<RouteRecord, String> {
        let mut event = RuleEvent::default();
        Ok(match decode_routed(value, &mut event)? {
            Routed::Event { upstream, offset } => RouteRecord::Event { upstream, offset, event },
            Routed::Watermark { upstream, max_event_time } => RouteRecord::Watermark { upstream, max_event_time },
        })
    }
}

/// Appends the binary routed record of `event`, read at `offset` of enriched partition
/// `upstream`, to `value`.
pub fn encode_event(upstream: u32, offset: Option<u64>, event: &RuleEvent, value: &mut Vec<u8>) {
    value.extend_from_slice(&[ROUTED_FORMAT, EVENT_TAG]);
    put_u64(value, u64::from(upstream));
    match offset {
        None => value.push(0),
        Some(offset) => {
            value.push(1);
            put_u64(value, offset);
        }
    }
    put_i64(value, event.time);
    let mut flags = 0;
    if event.failure {
        flags |= FAILURE_FLAG;
    }
    if event.suppress {
        flags |= SUPPRESS_FLAG;
    }
    value.push(flags);
    put_i64(value, event.received_at);
    put_str(value, &event.rule);
    put_str(value, &event.group_key);
    put_strs(value, &event.values);
    put_opt_str(value, event.intervention.as_deref());
}

/// A record of the routed topic read by [`decode_routed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// An event, read at `offset` of enriched partition `upstream`: its fields are in the
    /// [`RuleEvent`] given to `decode_routed`.
    Event { upstream: u32, offset: Option<u64> },
    /// Enriched partition `upstream` has been read up to events of time `max_event_time`.
    Watermark { upstream: u32, max_event_time: i64 },
}

/// Reads a record of the routed topic (binary, or the JSON of an older LUX). An event's fields
/// go into `event`, whose buffers are reused: reading a binary event allocates nothing once the
/// buffers have grown. On error, `event` holds nothing meaningful.
pub fn decode_routed(value: &[u8], event: &mut RuleEvent) -> Result<Routed, String> {
    if value.first() == Some(&b'{') {
        return match serde_json::from_slice::<RouteRecord>(value).map_err(|e| e.to_string())? {
            RouteRecord::Event { upstream, offset, event: read } => {
                *event = read;
                Ok(Routed::Event { upstream, offset })
            }
            RouteRecord::Watermark { upstream, max_event_time } => Ok(Routed::Watermark { upstream, max_event_time }),
        };
    }
    let mut r = Reader::new(value, ROUTED_FORMAT)?;
    let tag = r.byte()?;
    let upstream = u32::try_from(r.u64()?).map_err(|_| "upstream partition out of range".to_owned())?;
    let routed = match tag {
        EVENT_TAG => {
            let offset = if r.bool()? { Some(r.u64()?) } else { None };
            event.time = r.i64()?;
            let flags = r.byte()?;
            if flags & !(FAILURE_FLAG | SUPPRESS_FLAG) != 0 {
                return Err(format!("bad event flags {flags}"));
            }
            event.failure = flags & FAILURE_FLAG != 0;
            event.suppress = flags & SUPPRESS_FLAG != 0;
            event.received_at = r.i64()?;
            r.string_into(&mut event.rule)?;
            r.string_into(&mut event.group_key)?;
            r.strings_into(&mut event.values)?;
            r.opt_string_into(&mut event.intervention)?;
            Routed::Event { upstream, offset }
        }
        WATERMARK_TAG => Routed::Watermark { upstream, max_event_time: r.i64()? },
        other => return Err(format!("unknown routed record tag {other}")),
    };
    r.end()?;
    Ok(routed)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RuleEvent {
        RuleEvent {
            rule: "site-failures".into(),
            group_key: "site=PAR,model=MX960".into(),
            values: vec!["PAR".into(), "MX960".into()],
            time: -1_767_607_200_123,
            failure: true,
            suppress: true,
            intervention: Some("INT-7".into()),
            received_at: 1_767_607_200_456,
        }
    }

    #[test]
    fn routed_records_round_trip_and_reuse_the_event_buffers() {
        let records = [
            RouteRecord::Event { upstream: 5, offset: Some(u64::MAX), event: event() },
            RouteRecord::Event { upstream: 0, offset: None, event: RuleEvent { intervention: None, ..event() } },
            RouteRecord::Event { upstream: 1, offset: Some(0), event: RuleEvent::default() },
            RouteRecord::Watermark { upstream: u32::MAX, max_event_time: i64::MIN },
        ];
        // One buffer for every read: fields of a previous event must not leak into the next.
        let mut buf = event();
        for record in &records {
            let value = record.encode();
            assert_eq!(RouteRecord::decode(&value).as_ref(), Ok(record));
            match (decode_routed(&value, &mut buf), record) {
                (Ok(Routed::Event { upstream: u, offset: o }), RouteRecord::Event { upstream, offset, event }) => {
                    assert_eq!((u, o, &buf), (*upstream, *offset, event));
                }
                (
                    Ok(Routed::Watermark { upstream: u, max_event_time: t }),
                    RouteRecord::Watermark { upstream, max_event_time },
                ) => {
                    assert_eq!((u, t), (*upstream, *max_event_time));
                }
                (other, _) => panic!("{record:?} read back as {other:?}"),
            }
        }
    }

    #[test]
    fn the_json_records_of_an_older_lux_are_read() {
        let record = RouteRecord::Event { upstream: 2, offset: Some(41), event: event() };
        let json = serde_json::to_vec(&record).unwrap();
        assert_eq!(RouteRecord::decode(&json), Ok(record));
        let marker = br#"{"type":"watermark","upstream":1,"max_event_time":7}"#;
        assert_eq!(RouteRecord::decode(marker), Ok(RouteRecord::Watermark { upstream: 1, max_event_time: 7 }));
    }

    #[test]
    fn a_damaged_routed_record_is_an_error_never_a_panic() {
        let value = RouteRecord::Event { upstream: 2, offset: Some(41), event: event() }.encode();
        let mut buf = RuleEvent::default();
        for cut in 0..value.len() {
            assert!(decode_routed(&value[..cut], &mut buf).is_err(), "cut at {cut}");
        }
        let mut longer = value.clone();
        longer.push(0);
        assert!(decode_routed(&longer, &mut buf).unwrap_err().contains("after the end"));
        let mut bad_tag = value.clone();
        bad_tag[1] = 9;
        assert!(decode_routed(&bad_tag, &mut buf).unwrap_err().contains("tag 9"));
        assert!(decode_routed(b"\x07", &mut buf).unwrap_err().contains("format 7"));
        assert!(decode_routed(b"{\"type\":\"event\"}", &mut buf).is_err());
        // Every byte value at every position: an error or a record, never a panic.
        for i in 0..value.len() {
            for b in 0..=255u8 {
                let mut changed = value.clone();
                changed[i] = b;
                let _ = decode_routed(&changed, &mut buf);
            }
        }
    }
}
