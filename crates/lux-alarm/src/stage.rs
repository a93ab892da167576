//! The alarm stage, in two halves that meet in the routed topic (see [`crate::route`]):
//! [`AlarmRouteStage`] reads the `enriched` topic and routes each rule's view of each event to
//! the partition of its group; [`AlarmStage`] reads the routed topic, feeds the windows (one
//! engine per partition), writes alarm lifecycle records to the `alarms` topic, and hands its
//! window state to the runner so that it is committed atomically with the input offsets (no
//! alarm lost or duplicated by a restart). Each half scales out by partition on Kafka.

use crate::route::{decode_routed, encode_event, RouteOutcome, RouteRecord, Routed, Router, RuleEvent};
use crate::{AlarmConfig, AlarmEngine, EventOutcome};
use anyhow::Context as _;
use lux_log::StoredRecord;
use lux_model::{EnrichedEvent, LateForWindow, SkimmedEvent};
use lux_stage::parallel::Workers;
use lux_stage::{Context, Processor, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How often (wall clock) the alarm stage publishes its window counters to its board, at most.
const PUBLISH_EVERY_MS: i64 = 1000;
/// Fewest records of a poll for the window half to spread them over its threads: below, handing
/// the work over costs more than it saves.
const SPREAD_FROM_RECORDS: usize = 256;

/// A committed state entry: key, value.
type StateEntry = (Vec<u8>, Vec<u8>);

/// Topic names the alarm stage reads and writes.
#[derive(Debug, Clone)]
pub struct AlarmTopics {
    pub enriched: String,
    /// The routed topic between the two halves (internal to the alarm stage).
    pub routed: String,
    pub alarms: String,
    pub deadletter: String,
    /// Where events too late for the windows go, unchanged (written by the route half).
    pub late: String,
}

/// For each partition of a topic of `partitions` partitions, a key that the partitioner sends
/// there: watermark markers go to every partition of the routed topic through the ordinary
/// keyed append, on either backend.
fn partition_keys(partitions: u32) -> Vec<Vec<u8>> {
    let mut keys: Vec<Option<Vec<u8>>> = vec![None; partitions as usize];
    let mut missing = partitions as usize;
    let mut i: u64 = 0;
    while missing > 0 {
        let key = format!("watermark/{i}").into_bytes();
        let slot = keys.get_mut(lux_log::partition_for_key(&key, partitions) as usize);
        if let Some(slot @ None) = slot {
            *slot = Some(key);
            missing -= 1;
        }
        i += 1;
    }
    keys.into_iter().flatten().collect()
}

/// The first half of the alarm stage: enriched events -> the routed topic.
pub struct AlarmRouteStage {
    router: Router,
    config: AlarmConfig,
    topics: AlarmTopics,
    name: String,
    /// One key per partition of the routed topic, for the watermark markers.
    marker_keys: Vec<Vec<u8>>,
    /// Partitions of the routed topic.
    routed_partitions: u32,
    /// Enriched partitions read in the batch in hand.
    active: BTreeSet<u32>,
    routed: Vec<RuleEvent>,
}

impl AlarmRouteStage {
    /// `routed_partitions` is the partition count of the routed topic.
    pub fn new(
        config: &AlarmConfig,
        routed_partitions: u32,
        topics: AlarmTopics,
    ) -> Result<Self, crate::InvalidConfig> {
        Ok(AlarmRouteStage {
            router: Router::new(config)?,
            config: config.clone(),
            topics,
            name: "alarm-route".to_owned(),
            marker_keys: partition_keys(routed_partitions.max(1)),
            routed_partitions: routed_partitions.max(1),
            active: BTreeSet::new(),
            routed: Vec::new(),
        })
    }

    /// The same stage under another consumer group (its offsets and state), e.g. a replay's.
    pub fn with_group(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }
}

impl Processor for AlarmRouteStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn inputs(&self) -> Vec<String> {
        vec![self.topics.enriched.clone()]
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.topics.routed.clone(), self.topics.deadletter.clone(), self.topics.late.clone()]
    }

    fn partitions(&self, topic: &str) -> Option<u32> {
        (topic == self.topics.routed).then_some(self.routed_partitions)
    }

    fn restore(&mut self, _partitions: &[TopicPartition], state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        self.router = Router::new(&self.config)?;
        self.active.clear();
        self.router.restore(state).map_err(|e| anyhow::anyhow!("alarm route state: {e}"))
    }

    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        // The event as the transform stage of this process made it, when the log kept it; else
        // parsed. The route needs neither its attributes nor its message.
        let skimmed;
        let event = match record.decoded.as_ref().and_then(|d| d.get::<SkimmedEvent>()) {
            Some(SkimmedEvent(event)) => event,
            None => match EnrichedEvent::from_json_skimmed(&record.value) {
                Ok(event) => {
                    skimmed = event;
                    &skimmed
                }
                Err(error) => {
                    let detail = format!("not a LUX enriched event: {error}");
                    return ctx.emit_bad_record(&self.topics.deadletter, &self.name, record, detail);
                }
            },
        };
        self.active.insert(record.partition);
        self.routed.clear();
        match self.router.route(record.partition, event, &mut self.routed) {
            RouteOutcome::Routed => {
                for rule_event in self.routed.drain(..) {
                    let key = crate::alarm_key(&rule_event.rule, &rule_event.group_key);
                    let mut value = Vec::with_capacity(64);
                    encode_event(record.partition, Some(record.offset), &rule_event, &mut value);
                    ctx.emit(&self.topics.routed, &key, rule_event.time, value);
                }
            }
            // Too late for the windows: the enriched record as it was read, with its key.
            RouteOutcome::Late => ctx.emit(
                &self.topics.late,
                record.key.as_deref().unwrap_or_default(),
                record.timestamp_ms,
                record.value.clone(),
            ),
            RouteOutcome::Filtered | RouteOutcome::Ungrouped => {}
        }
        Ok(())
    }

    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        for upstream in std::mem::take(&mut self.active) {
            let Some(max_event_time) = self.router.clock(upstream) else { continue };
            let value = RouteRecord::Watermark { upstream, max_event_time }.encode();
            for key in &self.marker_keys {
                ctx.emit(&self.topics.routed, key, max_event_time, value.clone());
            }
        }
        for (partition, key, value) in self.router.take_changes() {
            ctx.set_state(partition, key, value);
        }
        Ok(())
    }

    /// `late_events` (each event once) and `late_events.<rule>` (per rule that accepted it).
    fn counters(&self) -> Vec<(String, u64)> {
        let mut counters = vec![("late_events".to_owned(), self.router.late_events())];
        counters.extend(
            self.router
                .rule_names()
                .zip(self.router.rule_counters())
                .map(|(rule, c)| (format!("late_events.{rule}"), c.late)),
        );
        counters
    }
}

/// Counts one record of the routed topic in `engine` (that of its partition), decoding it into
/// `event` (a buffer reused from record to record). An event too late for the windows leaves a
/// trace in the `late` topic; a record that is not a routed record goes to the dead letters.
fn count_routed(
    engine: &mut AlarmEngine,
    record: &StoredRecord,
    event: &mut RuleEvent,
    ctx: &mut Context,
    stage: &str,
    topics: &AlarmTopics,
) -> anyhow::Result<()> {
    let key = record.key.as_deref().unwrap_or_default();
    let now = ctx.now_wall_ms;
    match decode_routed(&record.value, event) {
        Ok(Routed::Event { upstream, offset }) => {
            if engine.on_rule_event(upstream, event, now) == EventOutcome::Late {
                // Too late for the windows here (the route half found it in time): a trace of
                // it, naming the enriched record, in the `late` topic.
                let late = LateForWindow {
                    schema: lux_model::schema::LATE_FOR_WINDOW.to_owned(),
                    watermark: engine.stats().watermark_ms,
                    rule: event.rule.clone(),
                    group_key: event.group_key.clone(),
                    event_time: event.time,
                    topic: topics.enriched.clone(),
                    partition: upstream,
                    offset,
                };
                ctx.emit(&topics.late, key, late.event_time, serde_json::to_vec(&late)?);
            }
        }
        Ok(Routed::Watermark { upstream, max_event_time }) => engine.on_watermark(upstream, max_event_time, now),
        Err(error) => {
            ctx.emit_bad_record(&topics.deadletter, stage, record, format!("not a LUX routed alarm record: {error}"))?;
        }
    }
    Ok(())
}

/// The second half of the alarm stage: the routed topic -> windows -> the `alarms` topic.
pub struct AlarmStage {
    config: AlarmConfig,
    /// One engine per owned partition of the routed topic.
    engines: BTreeMap<u32, AlarmEngine>,
    /// Partitions of the enriched topic: each one holds the watermark back until its first
    /// marker, or until it is idle.
    upstream_partitions: Vec<u32>,
    /// Partitions of the routed topic.
    routed_partitions: u32,
    topics: AlarmTopics,
    /// The consumer group: `alarm` in `lux run`, prefixed in `lux replay`.
    name: String,
    /// The input is bounded and read to its end (see [`AlarmStage::bounded`]).
    bounded: bool,
    /// Records were handed over since the last `end_batch`.
    busy: bool,
    /// Where the window counters are published for metrics, if anywhere.
    board: Option<Arc<crate::board::WindowBoard>>,
    /// Wall time of the last publication to `board`.
    published_ms: Option<i64>,
    /// The threads the engines run on (`alarm.threads`).
    workers: Workers,
}

impl AlarmStage {
    /// `upstream_partitions` is the partition count of the enriched topic, `routed_partitions`
    /// that of the routed topic.
    pub fn new(
        config: &AlarmConfig,
        upstream_partitions: u32,
        routed_partitions: u32,
        topics: AlarmTopics,
    ) -> Result<Self, crate::InvalidConfig> {
        let upstream: Vec<u32> = (0..upstream_partitions).collect();
        // Validates the configuration once, here, rather than at the first assignment.
        AlarmEngine::new(config, &upstream)?;
        Ok(AlarmStage {
            config: config.clone(),
            engines: BTreeMap::new(),
            upstream_partitions: upstream,
            routed_partitions: routed_partitions.max(1),
            topics,
            name: "alarm".to_owned(),
            bounded: false,
            busy: false,
            board: None,
            published_ms: None,
            workers: Workers::new("alarm", config.threads),
        })
    }

    /// The same stage under another consumer group (its offsets and state), e.g. a replay's.
    pub fn with_group(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// The same stage running its engines on `threads` threads (0: one per core), whatever
    /// `alarm.threads` says.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.workers = Workers::new(&self.name, threads);
        self
    }

    /// For an input that is complete before the stage starts (a replay): the first batch that
    /// brings no record marks the end of the input, and the last windows are evaluated then
    /// ([`AlarmEngine::finish_input`]) instead of after `idle_timeout` of wall-clock silence.
    pub fn bounded(mut self) -> Self {
        self.bounded = true;
        self
    }

    /// Publishes the window counters of each partition to `board` (for the `/metrics`
    /// endpoint), at most once a second and whenever alarm records were emitted.
    pub fn with_window_board(mut self, board: Arc<crate::board::WindowBoard>) -> Self {
        self.board = Some(board);
        self
    }

    fn engine(&mut self, partition: u32) -> anyhow::Result<&mut AlarmEngine> {
        Ok(match self.engines.entry(partition) {
            std::collections::btree_map::Entry::Occupied(engine) => engine.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(AlarmEngine::new(&self.config, &self.upstream_partitions)?.for_routed_partition(partition))
            }
        })
    }
}

impl Processor for AlarmStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn inputs(&self) -> Vec<String> {
        vec![self.topics.routed.clone()]
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.topics.alarms.clone(), self.topics.deadletter.clone(), self.topics.late.clone()]
    }

    fn partitions(&self, topic: &str) -> Option<u32> {
        (topic == self.topics.routed).then_some(self.routed_partitions)
    }

    fn restore(&mut self, partitions: &[TopicPartition], state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        self.engines.clear();
        self.busy = false;
        self.published_ms = None;
        if let Some(board) = &self.board {
            board.retain(&partitions.iter().map(|tp| tp.partition).collect::<Vec<_>>());
        }
        // Each entry goes to the engine of its partition: a group's and its panes' entries hold
        // the key of the group's routed records, a meta entry names its partition.
        let mut per_partition: BTreeMap<u32, Vec<StateEntry>> = BTreeMap::new();
        for (key, value) in state {
            let partition = std::str::from_utf8(&key)
                .ok()
                .and_then(|k| k.strip_prefix("meta/"))
                .and_then(|p| p.parse::<u32>().ok())
                .unwrap_or_else(|| lux_log::partition_for_key(crate::state_routing_key(&key), self.routed_partitions));
            per_partition.entry(partition).or_default().push((key, value));
        }
        for tp in partitions {
            let entries = per_partition.remove(&tp.partition).unwrap_or_default();
            self.engine(tp.partition)?
                .restore(entries)
                .map_err(|e| anyhow::anyhow!("alarm state of partition {}: {e}", tp.partition))?;
        }
        Ok(())
    }

    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        self.process_batch(std::slice::from_ref(record), ctx)
    }

    /// Each partition's records go to its engine; the engines of the poll run side by side on
    /// up to `threads` threads, each in its own [`Context`] share, absorbed in partition order.
    fn process_batch(&mut self, records: &[StoredRecord], ctx: &mut Context) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.busy = true;
        let mut shares: BTreeMap<u32, Vec<&StoredRecord>> = BTreeMap::new();
        for record in records {
            shares.entry(record.partition).or_default().push(record);
        }
        for &partition in shares.keys() {
            self.engine(partition)?;
        }
        let work: Vec<(&mut AlarmEngine, Vec<&StoredRecord>, Context)> = self
            .engines
            .iter_mut()
            .filter_map(|(partition, engine)| shares.remove(partition).map(|share| (engine, share, ctx.share())))
            .collect();
        let (name, topics) = (&self.name, &self.topics);
        let count = |(engine, share, mut share_ctx): (&mut AlarmEngine, Vec<&StoredRecord>, Context)| {
            let mut event = RuleEvent::default();
            for record in share {
                count_routed(engine, record, &mut event, &mut share_ctx, name, topics)
                    .with_context(|| format!("record {}/{}/{}", record.topic, record.partition, record.offset))?;
            }
            Ok::<_, anyhow::Error>(share_ctx)
        };
        let done: Vec<_> = if records.len() < SPREAD_FROM_RECORDS {
            work.into_iter().map(count).collect()
        } else {
            self.workers.spread(work, count)
        };
        for share_ctx in done {
            ctx.absorb(share_ctx?);
        }
        Ok(())
    }

    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        let finish = self.bounded && !self.busy;
        self.busy = false;
        let work: Vec<(u32, &mut AlarmEngine, Context)> =
            self.engines.iter_mut().map(|(&partition, engine)| (partition, engine, ctx.share())).collect();
        let alarms_topic = &self.topics.alarms;
        // Evaluating windows scans every group of an engine whose watermark crossed a slide.
        let done = self.workers.spread(work, |(partition, engine, mut share_ctx): (u32, &mut AlarmEngine, Context)| {
            let alarms = if finish { engine.finish_input() } else { engine.advance(share_ctx.now_wall_ms) };
            let emitted = !alarms.is_empty();
            for alarm in alarms {
                // Keyed like the group's routed records: an alarm's records all go to one
                // partition of `alarms`, in the order its group's engine made them.
                let key = crate::alarm_key(&alarm.rule, &alarm.group_key);
                // An alarm record takes 400 to 600 bytes: one allocation, not three.
                let mut value = Vec::with_capacity(640);
                serde_json::to_writer(&mut value, &alarm)?;
                share_ctx.emit(alarms_topic, &key, alarm.window_end, value);
            }
            // Early raises: their latency from the crossing event's reception, once committed.
            for received_at in engine.take_raised_receptions() {
                share_ctx.received(received_at);
            }
            for (key, value) in engine.take_changes() {
                share_ctx.set_state(partition, key, value);
            }
            Ok::<_, anyhow::Error>((share_ctx, emitted))
        });
        let mut emitted = false;
        for result in done {
            let (share_ctx, share_emitted) = result?;
            ctx.absorb(share_ctx);
            emitted |= share_emitted;
        }
        if let Some(board) = &self.board {
            let due = self.published_ms.is_none_or(|at| ctx.now_wall_ms.saturating_sub(at) >= PUBLISH_EVERY_MS);
            if due || emitted {
                self.published_ms = Some(ctx.now_wall_ms);
                for (&partition, engine) in &self.engines {
                    board.publish(partition, engine.window_snapshot(board.max_groups_per_rule()));
                }
            }
        }
        Ok(())
    }

    fn gauge(&self) -> Option<(&'static str, u64)> {
        Some(("active alarms", self.engines.values().map(|e| e.stats().active_alarms as u64).sum()))
    }
}
