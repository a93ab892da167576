//! Reading without a group: one partition from an offset (`fetch`, for `lux topic read`, tools
//! and replay), whole changelog partitions up to their end (state restore), a group's
//! committed offsets and time look-ups. Every reader is a read_committed consumer that is
//! assigned partitions by hand and never commits.

use super::admin::Admin;
use super::client::{consumer_config, kafka_error, kafka_problem};
use crate::{KafkaConfig, LogError, Result, StoredRecord, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A stored record from a consumed message.
pub(crate) fn stored_record(message: &BorrowedMessage<'_>) -> StoredRecord {
    StoredRecord {
        topic: message.topic().to_owned(),
        partition: message.partition().max(0) as u32,
        offset: message.offset().max(0) as u64,
        key: message.key().map(<[u8]>::to_vec),
        timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
        value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        decoded: None,
    }
}

/// The fetch consumer and where it stands, so that consecutive fetches of one partition go on
/// from what librdkafka already prefetched.
struct Cursor {
    topic: String,
    partition: u32,
    next: u64,
}

pub(crate) struct Reader {
    config: KafkaConfig,
    topic_prefix: String,
    fetcher: Mutex<(BaseConsumer, Option<Cursor>)>,
    /// One consumer per group whose committed offsets were asked for.
    groups: Mutex<HashMap<String, BaseConsumer>>,
}

impl Reader {
    pub(crate) fn new(config: &KafkaConfig, topic_prefix: &str) -> Result<Reader> {
        Ok(Reader {
            fetcher: Mutex::new((reading_consumer(config, topic_prefix)?, None)),
            config: config.clone(),
            topic_prefix: topic_prefix.to_owned(),
            groups: Mutex::new(HashMap::new()),
        })
    }

    fn brokers(&self) -> &str {
        &self.config.brokers
    }

    /// Up to `max_records` committed records of a partition from `from` on (from its start when
    /// `from` is below it); none when `from` is at or past its end.
    pub(crate) fn fetch(
        &self,
        admin: &Admin,
        topic: &str,
        partition: u32,
        from: u64,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>> {
        let partitions = admin.existing_partitions(topic)?;
        if partition >= partitions {
            return Err(LogError::UnknownPartition { topic: topic.to_owned(), partition, partitions });
        }
        let (low, high) = admin.watermarks(topic, partition)?;
        let from = from.max(low);
        if from >= high || max_records == 0 {
            return Ok(Vec::new());
        }
        let mut guard = self.fetcher.lock().unwrap_or_else(|p| p.into_inner());
        let (consumer, cursor) = &mut *guard;
        let continues = cursor.as_ref().is_some_and(|c| c.topic == topic && c.partition == partition && c.next == from);
        if !continues {
            *cursor = None;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition as i32, Offset::Offset(from as i64))
                .map_err(|e| kafka_error(self.brokers(), "bad partition", &e))?;
            consumer.assign(&tpl).map_err(|e| kafka_error(self.brokers(), &format!("cannot read {topic}"), &e))?;
        }
        let mut records = Vec::new();
        let deadline = Instant::now() + self.config.request_timeout;
        let mut next = from;
        loop {
            let now = Instant::now();
            if now >= deadline {
                *cursor = None;
                if records.is_empty() {
                    return Err(kafka_problem(
                        self.brokers(),
                        format!(
                            "reading {topic}/{partition} from offset {from} timed out (the end is {high}); check that the brokers are reachable"
                        ),
                    ));
                }
                break;
            }
            match consumer.poll(Duration::from_millis(50)) {
                // The offsets between the last record and the end may hold no record to read
                // (transaction markers; aborted records on brokers that hide them): librdkafka
                // moves the position past them.
                None => {
                    if position(consumer, topic, partition).is_some_and(|p| p >= high) {
                        break;
                    }
                }
                Some(Ok(message)) => {
                    let record = stored_record(&message);
                    next = record.offset + 1;
                    records.push(record);
                    if records.len() >= max_records || next >= high {
                        break;
                    }
                }
                // At the last stable offset (brokers that report it): everything committed is read.
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(error)) => {
                    *cursor = None;
                    return Err(kafka_error(self.brokers(), &format!("cannot read {topic}/{partition}"), &error));
                }
            }
        }
        *cursor = Some(Cursor { topic: topic.to_owned(), partition, next });
        Ok(records)
    }

    /// The latest value of every key of the given partitions of a changelog topic, read
    /// (read_committed) from their start to their end as of now; tombstones delete.
    pub(crate) fn read_state(
        &self,
        admin: &Admin,
        changelog: &str,
        partitions: &[u32],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut state: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut tpl = TopicPartitionList::new();
        // Per partition: the end to reach.
        let mut ends: HashMap<i32, u64> = HashMap::new();
        for &partition in partitions {
            let (low, high) = admin.watermarks(changelog, partition)?;
            if high > low {
                tpl.add_partition_offset(changelog, partition as i32, Offset::Offset(low as i64))
                    .map_err(|e| kafka_error(self.brokers(), "bad partition", &e))?;
                ends.insert(partition as i32, high);
            }
        }
        if ends.is_empty() {
            return Ok(Vec::new());
        }
        let consumer = reading_consumer(&self.config, &self.topic_prefix)?;
        consumer
            .assign(&tpl)
            .map_err(|e| kafka_error(self.brokers(), &format!("cannot read the changelog {changelog}"), &e))?;
        let mut last_progress = Instant::now();
        while !ends.is_empty() {
            // Past the last record there may be only transaction markers: see `fetch`.
            ends.retain(|partition, end| position(&consumer, changelog, *partition as u32).is_none_or(|p| p < *end));
            if last_progress.elapsed() > self.config.request_timeout {
                return Err(kafka_problem(
                    self.brokers(),
                    format!(
                        "restoring state from {changelog} stalled (partitions {:?} not read to their end); check that the brokers are reachable",
                        ends.keys().collect::<Vec<_>>()
                    ),
                ));
            }
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    last_progress = Instant::now();
                    let partition = message.partition();
                    let offset = message.offset().max(0) as u64;
                    if let Some(key) = message.key() {
                        match message.payload() {
                            Some(value) => {
                                state.insert(key.to_vec(), value.to_vec());
                            }
                            None => {
                                state.remove(key);
                            }
                        }
                    }
                    if ends.get(&partition).is_some_and(|end| offset + 1 >= *end) {
                        ends.remove(&partition);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    ends.remove(&partition);
                }
                Some(Err(error)) => {
                    return Err(kafka_error(self.brokers(), &format!("cannot read the changelog {changelog}"), &error))
                }
            }
        }
        Ok(state.into_iter().collect())
    }

    /// The committed next offset of a group (`group_id` with the prefix) for a partition.
    pub(crate) fn committed_offset(&self, group_id: &str, tp: &TopicPartition) -> Result<Option<u64>> {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if !groups.contains_key(group_id) {
            let consumer: BaseConsumer = consumer_config(&self.config, group_id)
                .create()
                .map_err(|e| kafka_error(self.brokers(), "cannot create a consumer", &e))?;
            groups.insert(group_id.to_owned(), consumer);
        }
        let Some(consumer) = groups.get(group_id) else { return Ok(None) };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.topic, tp.partition as i32);
        let committed = consumer.committed_offsets(tpl, self.config.request_timeout).map_err(|e| {
            kafka_error(
                self.brokers(),
                &format!("cannot read the committed offset of group {group_id} on {}/{}", tp.topic, tp.partition),
                &e,
            )
        })?;
        let offset = committed.find_partition(&tp.topic, tp.partition as i32).map(|e| e.offset());
        Ok(match offset {
            Some(Offset::Offset(n)) if n >= 0 => Some(n as u64),
            _ => None,
        })
    }

    /// The first offset whose timestamp is at or after `timestamp_ms`, or the end; `None` when
    /// the brokers do not answer time look-ups.
    pub(crate) fn offset_for_time(
        &self,
        admin: &Admin,
        topic: &str,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition as i32, Offset::Offset(timestamp_ms))
            .map_err(|e| kafka_error(self.brokers(), "bad partition", &e))?;
        let guard = self.fetcher.lock().unwrap_or_else(|p| p.into_inner());
        let found = match guard.0.offsets_for_times(tpl, self.config.request_timeout) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, topic, partition, "the brokers do not look up offsets by time; scanning the partition");
                return Ok(None);
            }
        };
        drop(guard);
        match found.find_partition(topic, partition as i32).map(|e| e.offset()) {
            Some(Offset::Offset(n)) if n >= 0 => Ok(Some(n as u64)),
            // No record that late: the end.
            Some(Offset::End) => Ok(Some(admin.watermarks(topic, partition)?.1)),
            _ => Ok(None),
        }
    }
}

/// The consumer's position in a partition (the offset after the last record or transaction
/// marker it consumed), `None` before it consumed anything there.
pub(crate) fn position<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: u32,
) -> Option<u64> {
    let positions = consumer.position().ok()?;
    match positions.find_partition(topic, partition as i32)?.offset() {
        Offset::Offset(n) if n >= 0 => Some(n as u64),
        _ => None,
    }
}

/// A consumer for reading by hand (assigned partitions, never committing).
fn reading_consumer(config: &KafkaConfig, topic_prefix: &str) -> Result<BaseConsumer> {
    let mut client = consumer_config(config, &format!("{topic_prefix}lux-reader"));
    client.set("enable.partition.eof", "true").set("fetch.wait.max.ms", "100");
    client.create().map_err(|e| kafka_error(&config.brokers, "cannot create a reading consumer", &e))
}
