//! Gathering a report's inputs: the indicator records of the period and of the previous one
//! from the `qoe` topic, every record of the `alarms` topic, and the interventions of the
//! current reference data.
//!
//! Topics are read as `lux topic read` reads them: up to the end offsets the log reports when
//! the gathering starts (committed records only: the embedded log shows nothing else, Kafka is
//! read with `isolation.level=read_committed`), so a report built while `lux run` writes is
//! consistent and repeatable. The `qoe` topic's records carry their window's end as timestamp
//! and are appended in window order per partition: each partition is read from the first
//! record of the previous period on ([`lux_log::CentralLog::offset_for_time`], less an hour of
//! margin), not from its start.

use crate::model::ReportInputs;
use crate::{Period, ReportError};
use lux_log::CentralLog;
use lux_model::{Alarm, Millis, QoeIndicator};
use lux_reference::ReferenceHandle;
use std::sync::Arc;

/// Records fetched at once.
const FETCH: usize = 5_000;
/// Longest QoE window (`qoe.window` is at most an hour): how far past a period a window that
/// starts in it can end.
const MAX_WINDOW_MS: Millis = 3_600_000;

/// Where reports are built from. Cheap to clone; a scheduler keeps one and calls
/// [`crate::make_report`] with it for each report.
#[derive(Clone)]
pub struct ReportSources {
    /// The central log (embedded or Kafka) holding the `qoe` and `alarms` topics.
    pub log: Arc<dyn CentralLog>,
    /// The `qoe` topic's name, with its prefix.
    pub qoe_topic: String,
    /// The `alarms` topic's name, with its prefix.
    pub alarms_topic: String,
    /// The reference data whose interventions the report lists (its current snapshot at each
    /// report); `None`: none available, the report says so.
    pub reference: Option<ReferenceHandle>,
    /// What goes in a report.
    pub options: crate::ReportOptions,
}

impl std::fmt::Debug for ReportSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportSources")
            .field("qoe_topic", &self.qoe_topic)
            .field("alarms_topic", &self.alarms_topic)
            .field("reference", &self.reference.is_some())
            .field("options", &self.options)
            .finish()
    }
}

impl ReportSources {
    /// The inputs of the report of `period`: indicators of it and of the previous period, every
    /// alarm record, the interventions. A topic that does not exist yet reads as empty (with a
    /// note in the report); a record that is not what the topic should hold is skipped and
    /// counted in a note.
    pub fn gather(&self, period: Period) -> Result<ReportInputs, ReportError> {
        let mut notes = Vec::new();
        let previous = period.previous();
        let mut indicators = Vec::new();
        let mut bad = 0u64;
        let found = read_topic(
            self.log.as_ref(),
            &self.qoe_topic,
            Some(previous.from.saturating_sub(MAX_WINDOW_MS)),
            |timestamp, value| {
                // The timestamp is the window's end: skip what cannot be in either period
                // before parsing.
                if timestamp <= previous.from || timestamp > period.to.saturating_add(MAX_WINDOW_MS) {
                    return;
                }
                match serde_json::from_slice::<QoeIndicator>(value) {
                    Ok(r) if previous.contains(r.window_start) || period.contains(r.window_start) => indicators.push(r),
                    Ok(_) => {}
                    Err(_) => bad += 1,
                }
            },
        )?;
        if !found {
            notes.push(format!(
                "the topic {:?} does not exist yet: no QoE stage has written indicators to this log",
                self.qoe_topic
            ));
        }
        if bad > 0 {
            notes.push(format!(
                "{bad} record(s) of the topic {:?} were not QoE indicators and were skipped",
                self.qoe_topic
            ));
        }
        let mut alarms = Vec::new();
        let mut bad = 0u64;
        let found = read_topic(self.log.as_ref(), &self.alarms_topic, None, |_, value| {
            match serde_json::from_slice::<Alarm>(value) {
                Ok(a) => alarms.push(a),
                Err(_) => bad += 1,
            }
        })?;
        if !found {
            notes.push(format!(
                "the topic {:?} does not exist yet: no alarm stage has run on this log",
                self.alarms_topic
            ));
        }
        if bad > 0 {
            notes
                .push(format!("{bad} record(s) of the topic {:?} were not alarms and were skipped", self.alarms_topic));
        }
        let interventions = self.reference.as_ref().map(|r| r.current().interventions().to_vec());
        Ok(ReportInputs { indicators, alarms, interventions, source: format!("topic {}", self.qoe_topic), notes })
    }
}

/// Calls `each(timestamp, value)` for every record of `topic` (from the first record at or
/// after `from_time` in each partition, or from the start), up to the end offsets of when it
/// starts. `false` when the topic does not exist.
fn read_topic(
    log: &dyn CentralLog,
    topic: &str,
    from_time: Option<Millis>,
    mut each: impl FnMut(Millis, &[u8]),
) -> Result<bool, ReportError> {
    let info = match log.topic(topic) {
        Ok(info) => info,
        Err(lux_log::LogError::UnknownTopic(_)) => return Ok(false),
        Err(e) => return Err(ReportError::Log { topic: topic.to_owned(), source: e }),
    };
    let fail = |source| ReportError::Log { topic: topic.to_owned(), source };
    for partition in 0..info.partitions {
        let start = info.start_offsets.get(partition as usize).copied().unwrap_or(0);
        let end = info.end_offsets.get(partition as usize).copied().unwrap_or(0);
        let mut position = match from_time {
            Some(t) => log.offset_for_time(topic, partition, t).map_err(fail)?.max(start),
            None => start,
        };
        while position < end {
            let batch = log.fetch(topic, partition, position, FETCH).map_err(fail)?;
            let Some(last) = batch.last() else { break };
            let next = last.offset + 1;
            for record in batch.iter().filter(|r| r.offset < end) {
                each(record.timestamp_ms, &record.value);
            }
            position = next;
        }
    }
    Ok(true)
}
