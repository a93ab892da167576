//! The generator as a source stage of `lux run`: it writes the demo operator's traffic into the
//! `raw` topic in real time, one simulated second at a time, in the order the equipment sends
//! it ([`Schedule`]). Its position (the start of the simulation and the next second to send) is
//! committed with the records it emitted, so a stopped `lux run` resumes exactly where it
//! stopped, without gaps or duplicates.
//!
//! With `generator.duration` it finishes after that much simulated traffic; with
//! `generator.realtime = false` it does not wait for the wall clock and stamps each record's
//! reception with its simulated sending time, so that the raw topic depends only on the
//! configuration (a bounded, reproducible input: the crash test, benchmarks).

use crate::{GenerateError, GeneratorConfig, Network, Schedule, Traffic};
use lux_model::RawRecord;
use lux_stage::{Context, Source, SourcePoll};
use std::time::Duration;

/// How far behind the wall clock the generator may be before it skips ahead instead of
/// replaying the missed time at full speed (after a long stop).
pub const MAX_CATCH_UP_SECONDS: u64 = 120;
const STATE_KEY: &[u8] = b"position";

/// The demo traffic source.
pub struct GeneratorSource {
    traffic: Traffic,
    schedule: Option<Schedule>,
    raw_topic: String,
    start_ms: i64,
    next_second: u64,
    realtime: bool,
    /// The first simulated second not to send (`generator.duration`); `None`: never stops.
    end_second: Option<u64>,
}

/// The simulation start recorded by a previous run, if any (from the source's committed state).
pub fn recorded_start_ms(state: &[(Vec<u8>, Vec<u8>)]) -> Option<i64> {
    state.iter().find(|(k, _)| k == STATE_KEY).and_then(|(_, v)| parse_position(v)).map(|(start, _)| start)
}

fn parse_position(value: &[u8]) -> Option<(i64, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (start, next) = text.split_once(' ')?;
    Some((start.parse().ok()?, next.parse().ok()?))
}

impl GeneratorSource {
    /// A source whose simulated time 0 is `start_ms` (the first run's wall clock, or
    /// `generator.start`).
    pub fn new(
        config: &GeneratorConfig,
        network: &Network,
        raw_topic: String,
        start_ms: i64,
    ) -> Result<Self, GenerateError> {
        Ok(GeneratorSource {
            traffic: Traffic::new(network, config, start_ms)?,
            schedule: None,
            raw_topic,
            start_ms,
            next_second: 0,
            realtime: config.realtime,
            end_second: config.duration.map(|d| d.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX)),
        })
    }

    fn position(&self) -> Vec<u8> {
        format!("{} {}", self.start_ms, self.next_second).into_bytes()
    }
}

impl Source for GeneratorSource {
    fn name(&self) -> &str {
        "generator"
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.raw_topic.clone()]
    }

    fn restore(&mut self, state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        for (key, value) in state {
            if key == STATE_KEY {
                let (start, next) = parse_position(&value).ok_or_else(|| {
                    anyhow::anyhow!("unreadable generator position {:?}", String::from_utf8_lossy(&value))
                })?;
                if start != self.start_ms {
                    anyhow::bail!(
                        "the log's traffic started at {} but this run starts it at {}; use the same generator.start or a new --data-dir",
                        lux_model::format_rfc3339_millis(start),
                        lux_model::format_rfc3339_millis(self.start_ms)
                    );
                }
                self.next_second = next;
            }
        }
        Ok(())
    }

    fn poll(&mut self, ctx: &mut Context, max_records: usize) -> anyhow::Result<SourcePoll> {
        let end = self.end_second.unwrap_or(u64::MAX);
        if self.next_second >= end {
            return Ok(SourcePoll::Finished);
        }
        let now = ctx.now_wall_ms;
        let due = if self.realtime {
            if now < self.start_ms {
                return Ok(SourcePoll::Idle(Duration::from_millis((self.start_ms - now).min(1000) as u64)));
            }
            // A simulated second is sent once it is fully past on the wall clock.
            let due = ((now - self.start_ms) / 1000) as u64;
            if self.next_second + MAX_CATCH_UP_SECONDS < due {
                let resume = due - MAX_CATCH_UP_SECONDS;
                tracing::warn!(
                    skipped_seconds = resume - self.next_second,
                    "the generator was stopped for long: skipping ahead instead of replaying all the missed traffic"
                );
                self.next_second = resume;
                self.schedule = None;
            }
            due.min(end)
        } else {
            end
        };
        let schedule = self.schedule.get_or_insert_with(|| Schedule::new(&self.traffic, self.next_second));
        let mut emitted = 0usize;
        while schedule.next_second() < due && emitted < max_records {
            let (_, batch) = schedule.next_batch(&self.traffic);
            for record in batch {
                let received_at = if self.realtime { now } else { record.send_time_ms };
                let raw = RawRecord::new("demo", record.format, received_at, None, record.payload);
                ctx.emit(&self.raw_topic, record.key.as_bytes(), record.event_time_ms, serde_json::to_vec(&raw)?);
                if self.realtime {
                    ctx.received(received_at);
                }
                emitted += 1;
            }
        }
        if schedule.next_second() != self.next_second || emitted > 0 {
            self.next_second = schedule.next_second();
            ctx.set_state(0, STATE_KEY.to_vec(), Some(self.position()));
            return Ok(SourcePoll::Ready);
        }
        let next_due_ms = self.start_ms + (self.next_second as i64 + 1) * 1000;
        Ok(SourcePoll::Idle(Duration::from_millis((next_due_ms - now).clamp(1, 1000) as u64)))
    }
}
