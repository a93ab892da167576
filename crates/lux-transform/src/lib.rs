//! The transform stage: reads the `raw` topic, decodes each record into canonical events
//! (`lux-decode`), joins them with the reference data (`lux-reference`) and writes them to the
//! `enriched` topic, keyed by equipment. A record that cannot be decoded goes to the
//! `deadletter` topic with its typed reason and its original bytes: nothing disappears.
//!
//! The stage is stateless: exactly-once comes from the runner committing each batch's outputs
//! together with its input offsets.

use lux_decode::{DecodeConfig, Decoder};
use lux_log::StoredRecord;
use lux_model::{schema, DeadLetter, DeadLetterReason, Event, Payload, RawRecord, SkimmedEvent};
use lux_reference::{ReferenceHandle, Snapshot};
use lux_stage::{Context, Decoded, Processor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The transform stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TransformConfig {
    /// How raw records are decoded.
    pub decode: DecodeConfig,
    /// The key of the keyed hash that pseudonymises subscriber ids (at least 16 characters).
    /// Keep it secret: whoever has it can test guesses of subscriber ids. When absent, LUX
    /// generates a random key once and keeps it in `<data_dir>/secrets/subscriber.key`.
    /// Set it with the environment variable `LUX_TRANSFORM__SUBSCRIBER_KEY` rather than in a file
    /// under version control. It is never logged.
    pub subscriber_key: Option<String>,
}

impl TransformConfig {
    pub fn validate(&self, prefix: &str) -> Vec<lux_model::ConfigProblem> {
        let mut problems = self.decode.validate(&lux_model::config_key(prefix, "decode"));
        if let Some(key) = &self.subscriber_key {
            if key.len() < 16 {
                problems.push(lux_model::ConfigProblem::new(
                    lux_model::config_key(prefix, "subscriber_key"),
                    "must be at least 16 characters long (a short key makes pseudonyms guessable)",
                ));
            }
        }
        problems
    }
}

/// Topic names the stage reads and writes.
#[derive(Debug, Clone)]
pub struct TransformTopics {
    pub raw: String,
    pub enriched: String,
    pub deadletter: String,
}

/// The transform stage, ready to run.
pub struct TransformStage {
    decoder: Decoder,
    /// The event of the record in hand (every record is decoded into it: its buffers are reused).
    event: Event,
    /// The live reference data; `snapshot` is its version used for the batch in hand, so that
    /// one batch is joined with one version (taken anew after each batch).
    reference: ReferenceHandle,
    snapshot: Arc<Snapshot>,
    topics: TransformTopics,
    /// Dead letters written, per reason, since the stage started.
    dead_letters: BTreeMap<DeadLetterReason, u64>,
    /// The size of the last enriched record: the next one's buffer starts a little larger, so
    /// that serialising it seldom grows it (from 128 bytes, it grew three times a record).
    record_size: usize,
}

impl TransformStage {
    pub fn new(
        config: &TransformConfig,
        subscriber_key: &[u8],
        reference: ReferenceHandle,
        topics: TransformTopics,
    ) -> Self {
        TransformStage {
            decoder: Decoder::new(&config.decode, subscriber_key),
            event: Event::default(),
            snapshot: reference.current(),
            reference,
            topics,
            dead_letters: BTreeMap::new(),
            record_size: 1024,
        }
    }

    fn dead_letter(
        &mut self,
        record: &StoredRecord,
        raw: Option<&RawRecord>,
        reason: DeadLetterReason,
        detail: String,
        ctx: &mut Context,
    ) -> anyhow::Result<()> {
        *self.dead_letters.entry(reason).or_default() += 1;
        let letter = DeadLetter {
            schema: schema::DEADLETTER.to_owned(),
            reason,
            detail,
            stage: "transform".to_owned(),
            origin: format!("{}/{}/{}", record.topic, record.partition, record.offset),
            source: raw.map(|r| r.source.clone()),
            format: raw.map(|r| r.format),
            received_at: raw.map(|r| r.received_at),
            peer: raw.and_then(|r| r.peer.clone()),
            payload: match raw {
                Some(raw) => raw.payload.clone(),
                None => Payload(record.value.clone()),
            },
        };
        let key = record.key.clone().unwrap_or_default();
        ctx.emit(&self.topics.deadletter, &key, record.timestamp_ms, serde_json::to_vec(&letter)?);
        Ok(())
    }
}

impl Processor for TransformStage {
    fn name(&self) -> &str {
        "transform"
    }

    fn inputs(&self) -> Vec<String> {
        vec![self.topics.raw.clone()]
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.topics.enriched.clone(), self.topics.deadletter.clone()]
    }

    fn restore(
        &mut self,
        _partitions: &[lux_stage::TopicPartition],
        _state: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        let raw: RawRecord = match lux_model::from_json(&record.value) {
            Ok(raw) => raw,
            Err(error) => {
                return self.dead_letter(
                    record,
                    None,
                    DeadLetterReason::BadRecord,
                    format!("not a LUX raw record: {error}"),
                    ctx,
                )
            }
        };
        // One event for every record: decoding allocates nothing per record in steady state.
        match self.decoder.decode_event(&raw, &mut self.event) {
            Ok(()) => {
                // The join borrows the snapshot and the event: nothing is copied until the
                // record is serialised.
                let event = &self.event;
                let joined = self.snapshot.join(event);
                let key = joined.partition_key(event).as_bytes();
                let mut value = Vec::with_capacity(self.record_size + self.record_size / 8);
                // By hand: byte for byte serde_json's JSON of the record, at a fraction of the
                // cost (lux_model::json).
                joined.record(event).write_json(&mut value);
                self.record_size = value.len();
                if ctx.keeps_decoded() {
                    // The alarm and QoE stages of this process read the event as it is, but its
                    // message and attributes, instead of parsing `value` (lux_log::Decoded).
                    let skimmed = SkimmedEvent(joined.into_enriched(event.skim()));
                    let decoded = Decoded::new(Arc::new(skimmed));
                    ctx.emit_decoded(&self.topics.enriched, key, event.event_time, value, decoded);
                } else {
                    ctx.emit(&self.topics.enriched, key, event.event_time, value);
                }
                ctx.received(raw.received_at);
                Ok(())
            }
            Err(error) => self.dead_letter(record, Some(&raw), error.reason, error.detail, ctx),
        }
    }

    fn end_batch(&mut self, _ctx: &mut Context) -> anyhow::Result<()> {
        self.snapshot = self.reference.current();
        Ok(())
    }

    fn counters(&self) -> Vec<(String, u64)> {
        self.dead_letters.iter().map(|(reason, n)| (format!("dead_letters.{}", reason.as_str()), *n)).collect()
    }
}
