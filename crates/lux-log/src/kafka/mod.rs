//! The Kafka backend of the central log: [`KafkaLog`] and its stage sessions ([`KafkaSession`]),
//! on librdkafka (the `rdkafka` crate, built from its bundled source).
//!
//! # How the contract maps onto Kafka
//!
//! - A topic is a Kafka topic with the configured partition count (created through the admin
//!   API; replication is the brokers' `default.replication.factor`). Records are placed with
//!   [`crate::partition_for_key`] (murmur2, as Kafka's Java clients do), so a key lands on the
//!   same partition number on both backends.
//! - A stage `s` is the consumer group `<topic_prefix>s`. Each instance subscribes to the
//!   stage's inputs with the eager `range` assignment strategy: a rebalance revokes everything,
//!   then assigns, which is what [`crate::StageSession`] reports as [`crate::Polled::Assigned`].
//! - A stage's state lives in the compacted topic `<topic_prefix>s-changelog`, with as many
//!   partitions as the stage's largest input (1 for a source). A
//!   [`crate::StateChange`] is written to the changelog partition of the same number as the
//!   input partition it belongs to, so it moves with that partition: on an assignment, the
//!   instance reads the changelog partitions of the numbers it was assigned, from their start to
//!   their end, read_committed, keeping the latest value per key (a tombstone deletes).
//! - Every batch is one transaction: begin; `send_offsets_to_transaction` with the consumer's
//!   group metadata; the outputs; the state changes; commit. The offsets go first because that
//!   is where the group coordinator checks the member's generation: a zombie is refused before
//!   any of its records reach a broker (which matters on brokers that do not hide aborted
//!   records from read_committed readers, such as tansu). Every reader uses
//!   `isolation.level=read_committed`.
//! - A stage's transaction runs on a thread of its own while the stage polls and processes its
//!   next batch ([`crate::StageSession::begin_commit`]); the runner ends it before the next
//!   begins, so transactions stay one at a time and in order. When the group rebalances, the
//!   rebalance callback waits for the transaction in flight before the partitions move: the
//!   next owner starts from its offsets and restores its state. If it fails, the batch
//!   processed meanwhile is void with it (fenced) or follows its retry.
//! - Producers compress with lz4 and stages' consumers refetch after 10 ms instead of 1 s when
//!   their queue was full (unless `log.kafka.properties` says otherwise): on tansu these took
//!   the transform stage from 134,000 to over 200,000 events/s (BENCHMARKS.md).
//!
//! # Transactional ids and fencing (KIP-447)
//!
//! Each stage instance has its own transactional id, `<prefix><stage>-<client_id>-stage-<random>`,
//! new at each start. Since KIP-447 (Kafka 2.5), zombie fencing does not need a transactional id
//! per input partition: the coordinator refuses the offsets of a transaction whose consumer
//! generation is stale (`send_offsets_to_transaction` with the group metadata), and the commit
//! then fails with [`LogError::Fenced`]. A per-instance random id means two instances never
//! fence each other's producers by accident (two instances with the same `client_id` are
//! normal). The price: the open transaction of a crashed instance is not aborted by a
//! successor with the same id, but by the brokers after `log.kafka.transaction_timeout`; until
//! then read_committed readers of the partitions it wrote wait. Keep that timeout short (the
//! default is 60 s).
//!
//! Failures of a transaction: "fenced" (the producer, an unknown member, an illegal generation,
//! a rebalance in progress) aborts and returns [`LogError::Fenced`]: the runner drops the batch,
//! and the session rejoins the group with a new consumer, so that whatever it is assigned next
//! starts at the committed offsets. Anything else (brokers unreachable, timeouts) aborts and
//! returns [`LogError::Kafka`]: the runner retries the same batch with backoff. After a fatal
//! producer error the producer is recreated (with a new transactional id) at the next commit.
//!
//! # Operational safety and metrics
//!
//! [`KafkaLog::connect`] refuses to start when `log.kafka.transaction_timeout` exceeds the
//! brokers' `transaction.max.timeout.ms` (read with DescribeConfigs; when no broker reports it,
//! a warning says the check could not be made). [`KafkaLog::metrics`] counts transactions,
//! aborts, fenced batches, assignments and commit latency for all sessions of the process;
//! [`crate::StageSession::lag`] is the high watermark minus the position over the owned
//! partitions.
//!
//! # Brokers that differ
//!
//! tansu (the broker LUX's tests run against) does not hide the records of aborted
//! transactions from read_committed readers; see `tests/kafka.rs` and the README.

mod admin;
mod client;
mod reader;
mod session;
#[cfg(feature = "testing")]
pub mod testing;

use crate::{CentralLog, Commit, KafkaConfig, LogError, Result, StageSession, StoredRecord, TopicInfo, TopicPartition};
use admin::Admin;
use client::{consumer_config, kafka_error, kafka_problem};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use reader::Reader;
pub use session::KafkaSession;
use session::{abort, prepare, run_transaction, transactional_id, transactional_producer, Transactional, TxnError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counters of the Kafka backend, for every session of a [`KafkaLog`].
#[derive(Debug, Default)]
pub struct KafkaMetrics {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Transactions aborted (each failed commit; the runner retries or drops the batch).
    pub aborts: AtomicU64,
    /// Steps of a transaction retried after a retriable error (a broker unreachable for a
    /// while, a coordinator moving): the transaction is completed, not aborted.
    pub transaction_retries: AtomicU64,
    /// Batches refused because the instance had lost its partitions.
    pub fenced: AtomicU64,
    /// Assignments handed to stages (the first of each session, then one per rebalance).
    pub assignments: AtomicU64,
    /// Sum of the commit latencies, in microseconds (divide by `commits` for the mean).
    pub commit_micros_total: AtomicU64,
    /// The longest commit, in microseconds.
    pub commit_micros_max: AtomicU64,
}

impl KafkaMetrics {
    fn record_commit(&self, latency: Duration) {
        let micros = latency.as_micros() as u64;
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.commit_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.commit_micros_max.fetch_max(micros, Ordering::Relaxed);
    }
}

/// The brokers' `transaction.max.timeout.ms` (the smallest), `None` when none reports it (tansu).
pub fn broker_transaction_max_timeout(config: &KafkaConfig) -> Result<Option<Duration>> {
    Ok(Admin::connect(config, "")?.transaction_max_timeout()?.map(Duration::from_millis))
}

/// The central log on a Kafka cluster. Cheap to share: every stage session of a process opens
/// its own consumer and producer from it.
pub struct KafkaLog {
    config: KafkaConfig,
    topic_prefix: String,
    admin: Admin,
    reader: Reader,
    metrics: KafkaMetrics,
    /// Producers of [`CentralLog::commit`] (groups without a session), by group.
    producers: Mutex<HashMap<String, Transactional>>,
    /// The last version answered by `append_version`.
    version: Mutex<u64>,
}

impl KafkaLog {
    /// Connects to the cluster and checks `transaction_timeout` against the brokers' maximum.
    /// `topic_prefix` (`log.topic_prefix`) names the groups and changelogs: topics passed to the
    /// [`CentralLog`] calls are full names already.
    pub fn connect(config: &KafkaConfig, topic_prefix: &str) -> Result<KafkaLog> {
        let problems = config.validate("log.kafka");
        if let Some(problem) = problems.first() {
            return Err(kafka_problem(&config.brokers, format!("{}: {}", problem.key, problem.message)));
        }
        let admin = Admin::connect(config, topic_prefix)?;
        admin.check_transaction_timeout(config.transaction_timeout)?;
        Ok(KafkaLog {
            reader: Reader::new(config, topic_prefix)?,
            config: config.clone(),
            topic_prefix: topic_prefix.to_owned(),
            admin,
            metrics: KafkaMetrics::default(),
            producers: Mutex::new(HashMap::new()),
            version: Mutex::new(0),
        })
    }

    /// The counters of every session of this log.
    pub fn metrics(&self) -> &KafkaMetrics {
        &self.metrics
    }

    /// The settings this log runs with.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// The consumer group of a stage: `<topic_prefix><stage>`.
    pub fn group_id(&self, group: &str) -> String {
        format!("{}{group}", self.topic_prefix)
    }

    /// The changelog topic of a stage: `<topic_prefix><stage>-changelog`.
    pub fn changelog_topic(&self, group: &str) -> String {
        format!("{}{group}-changelog", self.topic_prefix)
    }

    fn committed_offset_of(&self, group: &str, tp: &TopicPartition) -> Result<Option<u64>> {
        self.reader.committed_offset(&self.group_id(group), tp)
    }

    /// Sum of the high watermarks of every topic: changes whenever something is appended.
    fn high_watermark_sum(&self) -> Result<u64> {
        let mut sum = 0u64;
        for name in self.admin.topic_names()? {
            let info = self.admin.topic_info(&name)?;
            sum = sum.wrapping_add(info.end_offsets.iter().sum::<u64>());
        }
        Ok(sum)
    }
}

impl CentralLog for KafkaLog {
    fn ensure_topic(&self, name: &str, partitions: u32) -> Result<()> {
        self.admin.ensure_topic(name, partitions, false)
    }

    fn topics(&self) -> Result<Vec<TopicInfo>> {
        self.admin.topic_names()?.iter().map(|name| self.admin.topic_info(name)).collect()
    }

    fn topic(&self, name: &str) -> Result<TopicInfo> {
        self.admin.topic_info(name)
    }

    fn fetch(&self, topic: &str, partition: u32, from: u64, max_records: usize) -> Result<Vec<StoredRecord>> {
        self.reader.fetch(&self.admin, topic, partition, from, max_records)
    }

    fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<u64>> {
        self.committed_offset_of(group, tp)
    }

    fn load_state(&self, group: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let changelog = self.changelog_topic(group);
        let Some(partitions) = self.admin.partition_count(&changelog)? else { return Ok(Vec::new()) };
        let all: Vec<u32> = (0..partitions).collect();
        self.reader.read_state(&self.admin, &changelog, &all)
    }

    fn commit(&self, commit: Commit) -> Result<()> {
        self.commit_ref(&commit)
    }

    /// A transaction of a group that owns no inputs (tools, replay, tests): its offsets are
    /// committed with no member generation, which brokers accept while the group has no active
    /// member. State changes go to the group's changelog (created with 1 partition if missing).
    fn commit_ref(&self, commit: &Commit) -> Result<()> {
        if commit.outputs.is_empty() && commit.state.is_empty() && commit.next_offsets.is_empty() {
            return Ok(());
        }
        let brokers = self.config.brokers.clone();
        let changelog = self.changelog_topic(&commit.group);
        let changelog_partitions = match self.admin.partition_count(&changelog)? {
            Some(count) => count,
            None if commit.state.is_empty() => 1,
            None => {
                self.admin.ensure_topic(&changelog, 1, true)?;
                1
            }
        };
        let output_partitions = prepare(self, commit, &changelog, changelog_partitions)?;
        let mut offsets = TopicPartitionList::new();
        for (tp, next) in &commit.next_offsets {
            offsets
                .add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(*next as i64))
                .map_err(|e| kafka_error(&brokers, "bad offset", &e))?;
        }
        let group_member = if offsets.count() > 0 {
            let consumer: BaseConsumer = consumer_config(&self.config, &self.group_id(&commit.group))
                .create()
                .map_err(|e| kafka_error(&brokers, "cannot create a consumer", &e))?;
            let metadata = consumer
                .group_metadata()
                .ok_or_else(|| kafka_problem(&brokers, format!("no group metadata for group {}", commit.group)))?;
            Some((consumer, metadata))
        } else {
            None
        };
        let mut producers = self.producers.lock().unwrap_or_else(|p| p.into_inner());
        let producer = match producers.remove(&commit.group) {
            Some(producer) => producer,
            None => transactional_producer(self, &transactional_id(self, &commit.group, "log"))?,
        };
        let started = std::time::Instant::now();
        let result = run_transaction(
            self,
            &producer.producer,
            commit,
            group_member.as_ref().map(|(_, metadata)| (&offsets, metadata)),
            &output_partitions,
            &changelog,
        );
        match result {
            Ok(()) => {
                self.metrics.record_commit(started.elapsed());
                producers.insert(commit.group.clone(), producer);
                Ok(())
            }
            Err(TxnError { error, what }) => {
                if abort(self, &producer.producer, &error) {
                    producers.insert(commit.group.clone(), producer);
                }
                Err(kafka_error(&brokers, &format!("group {}: cannot {what} (aborted)", commit.group), &error))
            }
        }
    }

    fn offset_for_time(&self, topic: &str, partition: u32, timestamp_ms: i64) -> Result<u64> {
        let partitions = self.admin.existing_partitions(topic)?;
        if partition >= partitions {
            return Err(LogError::UnknownPartition { topic: topic.to_owned(), partition, partitions });
        }
        let (mut from, high) = self.admin.watermarks(topic, partition)?;
        if let Some(offset) = self.reader.offset_for_time(&self.admin, topic, partition, timestamp_ms)? {
            // Checked, since not every broker gets it right (tansu answers 0 for a time after
            // every record): the record there must be at or after the time.
            if offset >= high {
                return Ok(high);
            }
            let found = self.fetch(topic, partition, offset, 1)?;
            if found.first().is_some_and(|r| r.timestamp_ms >= timestamp_ms) {
                return Ok(offset);
            }
            tracing::debug!(topic, partition, offset, "the brokers' time look-up is wrong; scanning");
        }
        // Scan from the start.
        loop {
            let records = self.fetch(topic, partition, from, 10_000)?;
            // None that late: the end (past any transaction marker).
            let Some(last) = records.last() else { return Ok(high.max(from)) };
            if let Some(found) = records.iter().find(|r| r.timestamp_ms >= timestamp_ms) {
                return Ok(found.offset);
            }
            from = last.offset + 1;
        }
    }

    /// Polls the high watermarks every 100 ms until they move or `timeout` passes.
    fn wait_for_appends(&self, seen_version: u64, timeout: Duration) -> u64 {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let version = self.append_version();
            if version != seen_version || std::time::Instant::now() >= deadline {
                return version;
            }
            std::thread::sleep(Duration::from_millis(100).min(deadline - std::time::Instant::now()));
        }
    }

    /// The sum of every topic's high watermark (the last value when the brokers do not answer).
    fn append_version(&self) -> u64 {
        let mut version = self.version.lock().unwrap_or_else(|p| p.into_inner());
        match self.high_watermark_sum() {
            Ok(sum) => *version = sum,
            Err(error) => tracing::warn!(%error, "cannot read the high watermarks"),
        }
        *version
    }

    fn open_session(self: Arc<Self>, group: &str, inputs: &[String]) -> Result<Box<dyn StageSession>> {
        Ok(Box::new(KafkaSession::open(self, group, inputs)?))
    }
}
