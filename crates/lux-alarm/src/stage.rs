//! The alarm engine as a stage: reads the `enriched` topic, feeds the windows, writes alarm
//! lifecycle records to the `alarms` topic, and hands its window state to the runner so that it
//! is committed atomically with the input offsets (no alarm lost or duplicated by a restart).

use crate::{AlarmConfig, AlarmEngine};
use lux_log::StoredRecord;
use lux_model::{schema, DeadLetter, DeadLetterReason, EnrichedEvent, Payload};
use lux_stage::{Context, Processor};

/// Topic names the alarm stage reads and writes.
#[derive(Debug, Clone)]
pub struct AlarmTopics {
    pub enriched: String,
    pub alarms: String,
    pub deadletter: String,
}

pub struct AlarmStage {
    engine: AlarmEngine,
    topics: AlarmTopics,
}

impl AlarmStage {
    pub fn new(config: &AlarmConfig, partitions: u32, topics: AlarmTopics) -> Result<Self, crate::InvalidConfig> {
        let partitions: Vec<u32> = (0..partitions).collect();
        Ok(AlarmStage { engine: AlarmEngine::new(config, &partitions)?, topics })
    }
}

impl Processor for AlarmStage {
    fn name(&self) -> &str {
        "alarm"
    }

    fn inputs(&self) -> Vec<String> {
        vec![self.topics.enriched.clone()]
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.topics.alarms.clone(), self.topics.deadletter.clone()]
    }

    fn restore(&mut self, state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        self.engine.restore(state).map_err(|e| anyhow::anyhow!("alarm state: {e}"))
    }

    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
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
        for alarm in self.engine.advance(ctx.now_wall_ms) {
            ctx.emit(&self.topics.alarms, alarm.group_key.as_bytes(), alarm.window_end, serde_json::to_vec(&alarm)?);
        }
        for (key, value) in self.engine.take_changes() {
            ctx.set_state(key, value);
        }
        Ok(())
    }

    fn gauge(&self) -> Option<(&'static str, u64)> {
        Some(("active alarms", self.engine.stats().active_alarms as u64))
    }
}
