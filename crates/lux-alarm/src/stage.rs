//! The alarm engine as a stage: reads the `enriched` topic, feeds the windows, writes alarm
//! lifecycle records to the `alarms` topic, and hands its window state to the runner so that it
//! is committed atomically with the input offsets (no alarm lost or duplicated by a restart).

use crate::{AlarmConfig, AlarmEngine};
use lux_log::StoredRecord;
use lux_model::{schema, DeadLetter, DeadLetterReason, EnrichedEvent, Payload};
use lux_stage::{Context, Processor, TopicPartition};

/// Topic names the alarm stage reads and writes.
#[derive(Debug, Clone)]
pub struct AlarmTopics {
    pub enriched: String,
    pub alarms: String,
    pub deadletter: String,
}

pub struct AlarmStage {
    engine: AlarmEngine,
    config: AlarmConfig,
    /// The input partition the stage's state is committed with: the lowest owned one. The
    /// alarm state is not split by partition yet, so on Kafka one alarm instance must own every
    /// partition of its input.
    state_partition: u32,
    topics: AlarmTopics,
    /// The consumer group: `alarm` in `lux run`, prefixed in `lux replay`.
    name: String,
    /// The input is bounded and read to its end (see [`AlarmStage::bounded`]).
    bounded: bool,
    /// Records were handed over since the last `end_batch`.
    busy: bool,
}

impl AlarmStage {
    pub fn new(config: &AlarmConfig, partitions: u32, topics: AlarmTopics) -> Result<Self, crate::InvalidConfig> {
        let partitions: Vec<u32> = (0..partitions).collect();
        Ok(AlarmStage {
            engine: AlarmEngine::new(config, &partitions)?,
            config: config.clone(),
            state_partition: 0,
            topics,
            name: "alarm".to_owned(),
            bounded: false,
            busy: false,
        })
    }

    /// The same stage under another consumer group (its offsets and state), e.g. a replay's.
    pub fn with_group(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// For an input that is complete before the stage starts (a replay): the first batch that
    /// brings no record marks the end of the input, and the last windows are evaluated then
    /// ([`AlarmEngine::finish_input`]) instead of after `idle_timeout` of wall-clock silence.
    /// The runner must call `end_batch` on that empty batch (`tick` of zero).
    pub fn bounded(mut self) -> Self {
        self.bounded = true;
        self
    }
}

impl Processor for AlarmStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn inputs(&self) -> Vec<String> {
        vec![self.topics.enriched.clone()]
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.topics.alarms.clone(), self.topics.deadletter.clone()]
    }

    fn restore(&mut self, partitions: &[TopicPartition], state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        let numbers: Vec<u32> = partitions.iter().map(|tp| tp.partition).collect();
        self.engine = AlarmEngine::new(&self.config, &numbers)?;
        self.state_partition = numbers.iter().copied().min().unwrap_or(0);
        self.busy = false;
        self.engine.restore(state).map_err(|e| anyhow::anyhow!("alarm state: {e}"))
    }

    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        self.busy = true;
        match serde_json::from_slice::<EnrichedEvent>(&record.value) {
            Ok(event) => {
                self.engine.on_event(record.partition, &event, ctx.now_wall_ms);
            }
            Err(error) => {
                let letter = DeadLetter {
                    schema: schema::DEADLETTER.to_owned(),
                    reason: DeadLetterReason::BadRecord,
                    detail: format!("not a LUX enriched event: {error}"),
                    stage: "alarm".to_owned(),
                    origin: format!("{}/{}/{}", record.topic, record.partition, record.offset),
                    source: None,
                    format: None,
                    received_at: None,
                    peer: None,
                    payload: Payload(record.value.clone()),
                };
                ctx.emit(
                    &self.topics.deadletter,
                    record.key.as_deref().unwrap_or_default(),
                    record.timestamp_ms,
                    serde_json::to_vec(&letter)?,
                );
            }
        }
        Ok(())
    }

    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        let alarms =
            if self.bounded && !self.busy { self.engine.finish_input() } else { self.engine.advance(ctx.now_wall_ms) };
        self.busy = false;
        for alarm in alarms {
            ctx.emit(&self.topics.alarms, alarm.group_key.as_bytes(), alarm.window_end, serde_json::to_vec(&alarm)?);
        }
        for (key, value) in self.engine.take_changes() {
            ctx.set_state(self.state_partition, key, value);
        }
        Ok(())
    }

    fn gauge(&self) -> Option<(&'static str, u64)> {
        Some(("active alarms", self.engine.stats().active_alarms as u64))
    }
}
