//! The QoE stage: reads the `enriched` topic, counts each event into the cells of its window
//! ([`crate::QoeEngine`]), writes the indicators of each window the watermark closes to the `qoe`
//! topic, and hands its cells to the runner, committed with the input offsets in one atomic
//! step: a restart neither repeats nor loses an indicator.
//!
//! One instance reads every partition of `enriched` (its state lives with partition 0): a
//! site's or a region's events come from many equipment partitions. Run one `lux qoe` per
//! deployment; splitting it like the alarm stage (a keyed route topic) is future work.
//!
//! Each record is read with [`EnrichedEvent::from_json_for_indicators`]: the event's id and
//! message are skipped, and its attributes parsed only for session stops (their duration),
//! 28% fewer instructions a record than a full read (`examples/read_profile.rs`).

use crate::engine::{EventOutcome, QoeEngine};
use crate::QoeConfig;
use lux_log::StoredRecord;
use lux_model::{EnrichedEvent, SkimmedEvent};
use lux_stage::{Context, Processor, TopicPartition};

/// Topic names the QoE stage reads and writes.
#[derive(Debug, Clone)]
pub struct QoeTopics {
    pub enriched: String,
    pub qoe: String,
    pub deadletter: String,
}

/// The partition the QoE stage's state entries live with.
const STATE_PARTITION: u32 = 0;

/// The key of an indicator in the `qoe` topic: `<dimension>/<value>`, so that the records of
/// one value are in one partition, in window order.
pub fn indicator_key(dimension: &str, value: &str) -> Vec<u8> {
    format!("{dimension}/{value}").into_bytes()
}

/// The QoE stage (see the module docs).
pub struct QoeStage {
    config: QoeConfig,
    engine: QoeEngine,
    upstream_partitions: Vec<u32>,
    topics: QoeTopics,
    name: String,
    bounded: bool,
    busy: bool,
}

impl QoeStage {
    /// `upstream_partitions` is the partition count of the enriched topic.
    pub fn new(config: &QoeConfig, upstream_partitions: u32, topics: QoeTopics) -> Result<Self, crate::InvalidConfig> {
        let partitions: Vec<u32> = (0..upstream_partitions).collect();
        Ok(QoeStage {
            engine: QoeEngine::new(config, &partitions)?,
            config: config.clone(),
            upstream_partitions: partitions,
            topics,
            name: "qoe".to_owned(),
            bounded: false,
            busy: false,
        })
    }

    /// The same stage under another consumer group (its offsets and state), e.g. a replay's.
    pub fn with_group(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// For an input complete before the stage starts (a replay, a test): the first batch that
    /// brings no record marks its end, and the last windows are written then instead of after
    /// `idle_timeout` of wall-clock silence.
    pub fn bounded(mut self) -> Self {
        self.bounded = true;
        self
    }
}

impl Processor for QoeStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn inputs(&self) -> Vec<String> {
        vec![self.topics.enriched.clone()]
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.topics.qoe.clone(), self.topics.deadletter.clone()]
    }

    fn restore(&mut self, _partitions: &[TopicPartition], state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        self.engine = QoeEngine::new(&self.config, &self.upstream_partitions)?;
        self.busy = false;
        self.engine.restore(state).map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        self.busy = true;
        // The event as the transform stage of this process made it, when the log kept it and
        // the engine needs no attributes of it.
        let skimmed = record.decoded.as_ref().and_then(|d| d.get::<SkimmedEvent>());
        if let Some(SkimmedEvent(event)) = skimmed.filter(|s| !QoeEngine::uses_attributes(s.0.event.kind)) {
            let _: EventOutcome = self.engine.on_event(record.partition, event, ctx.now_wall_ms);
            return Ok(());
        }
        match EnrichedEvent::from_json_for_indicators(&record.value, QoeEngine::uses_attributes) {
            Ok(event) => {
                let _: EventOutcome = self.engine.on_event(record.partition, &event, ctx.now_wall_ms);
            }
            Err(error) => {
                let detail = format!("not a LUX enriched event: {error}");
                ctx.emit_bad_record(&self.topics.deadletter, &self.name, record, detail)?;
            }
        }
        Ok(())
    }

    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        let finish = self.bounded && !self.busy;
        self.busy = false;
        let indicators = if finish { self.engine.finish_input() } else { self.engine.advance(ctx.now_wall_ms) };
        for indicator in indicators {
            let key = indicator_key(&indicator.dimension, &indicator.value);
            ctx.emit(&self.topics.qoe, &key, indicator.window_end, serde_json::to_vec(&indicator)?);
        }
        for (key, value) in self.engine.take_changes() {
            ctx.set_state(STATE_PARTITION, key, value);
        }
        Ok(())
    }

    fn gauge(&self) -> Option<(&'static str, u64)> {
        Some(("open qoe cells", self.engine.open_cells() as u64))
    }

    fn counters(&self) -> Vec<(String, u64)> {
        let c = self.engine.counters();
        vec![
            ("excluded_events".to_owned(), c.excluded),
            ("late_events".to_owned(), c.late),
            ("overflow_events".to_owned(), c.overflow),
            ("indicators".to_owned(), c.indicators),
        ]
    }
}
