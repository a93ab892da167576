//! The central log: where the stages of LUX meet.
//!
//! Stages never call each other; each reads batches from topics of the central log and commits
//! its outputs, its input offsets and its state in one atomic step ([`Commit`]). The
//! [`CentralLog`] trait is that contract; [`embedded::EmbeddedLog`] is the default backend
//! (local, durable, zero setup); [`kafka::KafkaLog`] implements the same contract on a Kafka
//! cluster for production and scale-out.
//!
//! Records are partitioned by key with Kafka's own partitioner ([`partition_for_key`], murmur2),
//! so a key lands on the same partition number on either backend.

mod config;
pub mod embedded;
pub mod kafka;
mod partitioner;
mod session;

pub use config::{
    Durability, KafkaConfig, LogBackendKind, LogConfig, TopicRetention, MAX_COMMIT_INTERVAL, MAX_COMMIT_RECORDS,
};
pub use partitioner::{murmur2, partition_for_key};
pub use session::{Assignment, CommitDone, Polled, StageSession, StateChange, WholeLogSession};
use std::sync::Arc;

/// A record as stored in a topic partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Option<Vec<u8>>,
    /// Milliseconds since the epoch: the record's event time when it has one, else append time.
    pub timestamp_ms: i64,
    pub value: Vec<u8>,
    /// The value as its writer decoded it, when the log kept that beside the bytes
    /// ([`Decoded`]); `None` from any other log, and for records the log no longer holds in
    /// memory: the reader then decodes `value`.
    pub decoded: Option<Decoded>,
}

/// A record a stage wants appended to a topic; the log picks the partition from the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    pub topic: String,
    pub key: Vec<u8>,
    pub timestamp_ms: i64,
    pub value: Vec<u8>,
    /// The value before it was encoded, for a log that keeps it ([`CentralLog::keeps_decoded`]).
    pub decoded: Option<Decoded>,
}

impl OutputRecord {
    /// A record to append to `topic`, partitioned by `key`.
    pub fn new(topic: impl Into<String>, key: impl Into<Vec<u8>>, timestamp_ms: i64, value: Vec<u8>) -> OutputRecord {
        OutputRecord { topic: topic.into(), key: key.into(), timestamp_ms, value, decoded: None }
    }
}

/// The decoded form of a record's value, handed by the stage that wrote it to the stages that
/// read it in the same process, so that these need not decode the bytes again (on the
/// embedded log, the transform stage's `enriched` records, read by the alarm and QoE stages).
///
/// The bytes stay the truth: `decoded` always agrees with them (it is what decoding them gives,
/// or the part of it that its type names, as `lux_model::SkimmedEvent`); a reader that finds no
/// `decoded` (another process, a reader further behind, a Kafka log) decodes the bytes, and the
/// two paths give the same result. It is ignored when records are compared.
#[derive(Clone)]
pub struct Decoded(Arc<dyn std::any::Any + Send + Sync>);

impl Decoded {
    /// The decoded form `value`, shared by every reader that gets it.
    pub fn new<T: std::any::Any + Send + Sync>(value: Arc<T>) -> Decoded {
        Decoded(value)
    }

    /// The decoded value, if it is a `T`.
    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoded")
    }
}

/// The decoded form is the bytes': two records are equal when their bytes are.
impl PartialEq for Decoded {
    fn eq(&self, _: &Decoded) -> bool {
        true
    }
}

impl Eq for Decoded {}

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

/// Everything one step of a stage produced, applied all together or not at all.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The consumer group (the stage's name) whose offsets and state this commit advances.
    pub group: String,
    /// For each input partition, the offset of the next record to read.
    pub next_offsets: Vec<(TopicPartition, u64)>,
    /// Records to append.
    pub outputs: Vec<OutputRecord>,
    /// Stage state changes, each with the input partition it lives with.
    pub state: Vec<StateChange>,
}

impl Commit {
    /// A transform stage's commit for measuring a log: `records` enriched records of 200 bytes
    /// (keys of 5,000 pieces of equipment), one input offset moved and one state entry set.
    /// Used by the log's throughput example and `lux bench`.
    pub fn sample(records: u64) -> Commit {
        Commit {
            group: "transform".into(),
            next_offsets: vec![(TopicPartition { topic: "raw".into(), partition: 0 }, 1)],
            outputs: (0..records)
                .map(|i| OutputRecord {
                    topic: "enriched".into(),
                    key: format!("cpe-par001-{:05}", i % 5_000).into_bytes(),
                    timestamp_ms: 1_767_607_200_000 + i as i64,
                    value: vec![b'x'; 200],
                    decoded: None,
                })
                .collect(),
            state: vec![StateChange { partition: 0, key: b"position".to_vec(), value: Some(b"12345".to_vec()) }],
        }
    }
}

/// A topic and its partitions' offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: u32,
    /// Per partition: the offset the next appended record will get.
    pub end_offsets: Vec<u64>,
    /// Per partition: the oldest offset still held.
    pub start_offsets: Vec<u64>,
}

impl TopicInfo {
    pub fn record_count(&self) -> u64 {
        self.end_offsets.iter().zip(&self.start_offsets).map(|(end, start)| end - start).sum()
    }
}

/// What can go wrong with the central log. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("the data directory {dir} is in use by another LUX process (lock file {lock}); stop that process or choose another --data-dir")]
    Locked { dir: String, lock: String },
    #[error("cannot use the data directory {dir}: {source}; check that it exists and is writable")]
    DataDir { dir: String, source: std::io::Error },
    #[error("topic {0:?} does not exist; `lux topic list` shows the topics")]
    UnknownTopic(String),
    #[error("topic {topic:?} has {partitions} partitions, partition {partition} does not exist")]
    UnknownPartition { topic: String, partition: u32, partitions: u32 },
    #[error("topic {topic:?} already exists with {existing} partitions, not {requested}; set log.partitions to {existing} (partition counts cannot change: keyed state lives with its partition)")]
    PartitionMismatch { topic: String, existing: u32, requested: u32 },
    #[error("invalid topic name {0:?}: use 1 to 200 characters among letters, digits, '.', '_' and '-'")]
    BadTopicName(String),
    #[error("the embedded log at {path} failed: {source}")]
    Storage { path: String, source: std::io::Error },
    #[error("the embedded log at {path} is full: {detail}; free disk space, intake resumes when the write succeeds")]
    DiskFull { path: String, detail: String },
    #[error("stage {group}: this instance lost its partitions to another instance of the group before the batch was committed; nothing of it was committed, and the stage goes on from the new assignment")]
    Fenced { group: String },
    #[error("the Kafka cluster at {brokers} failed: {detail}")]
    Kafka { brokers: String, detail: String },
    #[error("log.kafka.transaction_timeout is {configured_ms} ms but the brokers at {brokers} allow at most {broker_max_ms} ms (transaction.max.timeout.ms): every transaction would be refused; lower log.kafka.transaction_timeout to at most {broker_max_ms} ms, or raise transaction.max.timeout.ms on the brokers")]
    TransactionTimeout { brokers: String, configured_ms: u64, broker_max_ms: u64 },
    #[error(
        "the embedded log is corrupt: {path}: {detail}; restore the data directory from a backup or move it aside"
    )]
    Corrupt { path: String, detail: String },
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// The central log, as stages and tools see it. Implementations are shared between threads.
pub trait CentralLog: Send + Sync {
    /// Creates the topic if it does not exist. Fails if it exists with another partition count.
    fn ensure_topic(&self, name: &str, partitions: u32) -> Result<()>;
    /// Every topic, sorted by name.
    fn topics(&self) -> Result<Vec<TopicInfo>>;
    /// One topic, or [`LogError::UnknownTopic`].
    fn topic(&self, name: &str) -> Result<TopicInfo>;
    /// Up to `max_records` records of one partition, from offset `from` on.
    fn fetch(&self, topic: &str, partition: u32, from: u64, max_records: usize) -> Result<Vec<StoredRecord>>;
    /// The group's committed next offset for a partition (`None`: never committed).
    fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<u64>>;
    /// Every state entry of a group, to restore a stage.
    fn load_state(&self, group: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Applies a commit atomically.
    fn commit(&self, commit: Commit) -> Result<()>;
    /// [`CentralLog::commit`] without giving up the commit, so that a caller can retry it
    /// without a copy. Backends should override the default, which clones.
    fn commit_ref(&self, commit: &Commit) -> Result<()> {
        self.commit(commit.clone())
    }
    /// The first offset of a partition whose record has a timestamp at or after `timestamp_ms`
    /// (the end offset when there is none): where a replay "from a time" starts. The default
    /// reads the partition from its start; backends with a time index override it.
    fn offset_for_time(&self, topic: &str, partition: u32, timestamp_ms: i64) -> Result<u64> {
        let info = self.topic(topic)?;
        let unknown = || LogError::UnknownPartition { topic: topic.to_owned(), partition, partitions: info.partitions };
        let mut from = *info.start_offsets.get(partition as usize).ok_or_else(unknown)?;
        loop {
            let records = self.fetch(topic, partition, from, 10_000)?;
            let Some(last) = records.last() else { return Ok(from) };
            if let Some(found) = records.iter().find(|r| r.timestamp_ms >= timestamp_ms) {
                return Ok(found.offset);
            }
            from = last.offset + 1;
        }
    }
    /// Whether the log keeps the [`OutputRecord::decoded`] form of appended records for the
    /// readers of this process (the embedded log does, for its most recent records); when it
    /// does not, a stage need not build it.
    fn keeps_decoded(&self) -> bool {
        false
    }
    /// Blocks until something is appended or `timeout` passes (returns early on new data).
    fn wait_for_appends(&self, seen_version: u64, timeout: std::time::Duration) -> u64;
    /// A counter that changes whenever records are appended (pair with `wait_for_appends`).
    fn append_version(&self) -> u64;
    /// Opens the session through which one instance of a stage (consumer group `group`) reads
    /// `inputs` and commits (see [`StageSession`]). A source has no inputs.
    fn open_session(self: Arc<Self>, group: &str, inputs: &[String]) -> Result<Box<dyn StageSession>>;
}

/// Most partitions a topic may have, on either backend.
pub const MAX_PARTITIONS: u32 = 1024;

/// Checks the name and partition count of a topic about to be created, on either backend.
pub fn validate_new_topic(name: &str, partitions: u32) -> Result<()> {
    validate_topic_name(name)?;
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(LogError::UnknownPartition {
            topic: name.to_owned(),
            partition: partitions,
            partitions: MAX_PARTITIONS,
        });
    }
    Ok(())
}

/// Checks a topic name (the rules are Kafka's, so that names work on both backends).
pub fn validate_topic_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(LogError::BadTopicName(name.to_owned()))
    }
}
