//! The stage contract and its runner.
//!
//! A stage is processing logic with no I/O of its own. A [`Processor`] takes input records from
//! the central log and emits output records and state changes into a [`Context`]; a [`Source`]
//! (the demo generator, collectors) emits records from outside. The runner ([`run_processor`],
//! [`run_source`]) owns everything else: reading batches, calling the stage, and committing the
//! outputs, the input offsets and the state changes of each batch in one atomic
//! [`lux_log::Commit`]. A crash between two commits loses nothing and duplicates nothing: on
//! restart the stage's state and offsets are those of the last commit, and the batch after it is
//! processed again from the same input.

mod metrics;
pub mod parallel;
mod runner;
pub mod watermark;

pub use metrics::{LatencyHistogram, StageMetrics, StageSnapshot, COMMIT_LATENCY_BUCKETS, RECEPTION_LATENCY_BUCKETS};
pub use runner::{run_processor, run_source, RunnerOptions};

use anyhow::Context as _;
use lux_log::{CentralLog, OutputRecord, StoredRecord};
use lux_model::DeadLetter;

pub use lux_log::{Decoded, StateChange, TopicPartition};

/// What a stage produced while handling a batch: records to append and state to change, all
/// committed together with the batch's input offsets.
#[derive(Debug, Default)]
pub struct Context {
    outputs: Vec<OutputRecord>,
    state: Vec<StateChange>,
    /// Reception stamps noted with [`Context::received`], measured once the step commits.
    received: Vec<i64>,
    /// Wall-clock time of this step (ms since the epoch). Stages use it only to stamp reception
    /// and to detect idleness, never as event time.
    pub now_wall_ms: i64,
    /// Whether the log keeps what [`Context::emit_decoded`] hands it ([`CentralLog::keeps_decoded`]).
    keeps_decoded: bool,
}

impl Context {
    /// Appends `value` to `topic`, partitioned by `key`.
    pub fn emit(&mut self, topic: &str, key: &[u8], timestamp_ms: i64, value: Vec<u8>) {
        self.outputs.push(OutputRecord::new(topic, key, timestamp_ms, value));
    }

    /// A context for a stage run on `log`.
    pub fn for_log(log: &dyn CentralLog) -> Context {
        Context { keeps_decoded: log.keeps_decoded(), ..Context::default() }
    }

    /// Whether the log keeps the decoded form of records for the readers of this process: when
    /// it does not, a stage need not build one for [`Context::emit_decoded`].
    pub fn keeps_decoded(&self) -> bool {
        self.keeps_decoded
    }

    /// [`Context::emit`], with the value before it was encoded, for the stages of this process
    /// that read `topic` ([`lux_log::Decoded`]): `decoded` must agree with `value` (what decoding
    /// it gives, or the part of that its type names).
    pub fn emit_decoded(&mut self, topic: &str, key: &[u8], timestamp_ms: i64, value: Vec<u8>, decoded: Decoded) {
        let mut record = OutputRecord::new(topic, key, timestamp_ms, value);
        record.decoded = Some(decoded);
        self.outputs.push(record);
    }

    /// Sends `record`, which is not what the stage reads, to the dead-letter topic `topic`:
    /// reason `bad_record`, with `detail`, the record's origin (`topic/partition/offset`) and its
    /// bytes, under its key and timestamp.
    pub fn emit_bad_record(
        &mut self,
        topic: &str,
        stage: &str,
        record: &StoredRecord,
        detail: String,
    ) -> anyhow::Result<()> {
        let origin = format!("{}/{}/{}", record.topic, record.partition, record.offset);
        let letter = DeadLetter::bad_record(stage, origin, detail, record.value.clone());
        let key = record.key.as_deref().unwrap_or_default();
        self.emit(topic, key, record.timestamp_ms, serde_json::to_vec(&letter)?);
        Ok(())
    }

    /// Sets (`Some`) or deletes (`None`) a state entry of the stage. `partition` is the input
    /// partition the entry lives with: on Kafka it moves with that partition to whichever
    /// instance owns it (a source, which has no input, uses 0).
    pub fn set_state(&mut self, partition: u32, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.state.push(StateChange { partition, key, value });
    }

    /// Notes that a record emitted in this step derives from input received at `received_at_ms`
    /// (the collector's stamp, ms since the epoch): once the step is committed, the time from
    /// that reception to the commit goes into the stage's reception latency histogram
    /// ([`StageMetrics::reception_latency`]), LUX's end-to-end latency as seen in production.
    pub fn received(&mut self, received_at_ms: i64) {
        self.received.push(received_at_ms);
    }

    /// A context for a share of this step run on another thread
    /// ([`parallel::Workers::spread`]): the same wall-clock time, nothing emitted yet. Hand it
    /// back with [`Context::absorb`].
    pub fn share(&self) -> Context {
        Context { now_wall_ms: self.now_wall_ms, keeps_decoded: self.keeps_decoded, ..Context::default() }
    }

    /// Takes over what `share` emitted, noted and changed, after what this context holds.
    pub fn absorb(&mut self, mut share: Context) {
        self.outputs.append(&mut share.outputs);
        self.state.append(&mut share.state);
        self.received.append(&mut share.received);
    }

    /// The records emitted so far in this step.
    pub fn outputs(&self) -> &[OutputRecord] {
        &self.outputs
    }

    fn take(&mut self) -> (Vec<OutputRecord>, Vec<StateChange>) {
        (std::mem::take(&mut self.outputs), std::mem::take(&mut self.state))
    }

    /// The reception stamps noted since the last call (the buffer is kept for the next step).
    fn take_received(&mut self, into: &mut Vec<i64>) {
        into.clear();
        std::mem::swap(into, &mut self.received);
    }
}

/// A stage that reads topics of the central log.
pub trait Processor: Send {
    /// The stage's name: its consumer group, the owner of its offsets and state.
    fn name(&self) -> &str;
    /// The topics it reads.
    fn inputs(&self) -> Vec<String>;
    /// The topics it writes (created by the runner if missing).
    fn outputs(&self) -> Vec<String>;
    /// The partition count of `topic` (one of its inputs or outputs) when the stage creates it
    /// with a count of its own; `None` (the default): the runner's `log.partitions`.
    fn partitions(&self, _topic: &str) -> Option<u32> {
        None
    }
    /// Resets the stage to own `partitions` with their last committed state entries: called
    /// before the first record, and again whenever the assignment changes (a rebalance on
    /// Kafka). Everything the stage held before is void.
    fn restore(&mut self, partitions: &[TopicPartition], state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()>;
    /// Handles one record. Bad input is not an error: it goes to the dead-letter topic. An
    /// error here stops the stage (a bug or a broken invariant), and nothing of the batch is
    /// committed.
    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()>;
    /// Handles the records of one poll, in order. The default calls [`Processor::process`] on
    /// each; a stage whose state is split by partition may instead spread them over threads
    /// ([`parallel::Workers::spread`]), keeping each partition's records in their order.
    fn process_batch(&mut self, records: &[StoredRecord], ctx: &mut Context) -> anyhow::Result<()> {
        for record in records {
            self.process(record, ctx)
                .with_context(|| format!("record {}/{}/{}", record.topic, record.partition, record.offset))?;
        }
        Ok(())
    }
    /// Called at the end of each batch, just before its commit (a batch is the records of one
    /// poll or of several: see [`RunnerOptions::commit_interval`]), and every `tick` while input
    /// is idle: advance watermarks, fire windows, hand over changed state.
    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()>;
    /// A gauge shown in the live summary (e.g. active alarms); `None` when the stage has none.
    fn gauge(&self) -> Option<(&'static str, u64)> {
        None
    }
    /// Cumulative counters of the stage's own (e.g. `dead_letters.truncated`), published after
    /// each commit for the live summary and metrics.
    fn counters(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}

/// What a [`Source`] did in one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePoll {
    /// It emitted records (maybe none); poll again at once.
    Ready,
    /// Nothing is due before this long; the runner sleeps (or stops) meanwhile.
    Idle(std::time::Duration),
    /// The source has nothing more, ever.
    Finished,
}

/// A stage that brings records from outside the log (generator, collectors).
pub trait Source: Send {
    fn name(&self) -> &str;
    fn outputs(&self) -> Vec<String>;
    fn restore(&mut self, state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()>;
    /// Emits the next records into `ctx` (at most about `max_records`).
    fn poll(&mut self, ctx: &mut Context, max_records: usize) -> anyhow::Result<SourcePoll>;
    /// Called once the records of the last poll are committed to the log: a collector
    /// acknowledges them to the network now, not before.
    fn committed(&mut self) {}
    /// Cumulative counters of the source's own (e.g. a collector's `dropped_overflow`),
    /// published after each poll for the live summary and metrics.
    fn counters(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
    /// Called once when the runner is asked to stop. A source that holds received input it
    /// cannot get again (a collector's queue) stops taking more and returns `true`: the runner
    /// then polls and commits until the source returns [`SourcePoll::Finished`] or is idle.
    /// The default (`false`) stops at once.
    fn stop_intake(&mut self) -> bool {
        false
    }
}
