//! The cluster as a whole: topic creation (admin API), metadata and watermarks, and the brokers'
//! `transaction.max.timeout.ms` (DescribeConfigs) that the configured transaction timeout is
//! checked against before any stage starts.

use super::client::{base_config, block_on, consumer_config, kafka_error, kafka_problem, millis};
use crate::{KafkaConfig, LogError, Result, TopicInfo};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The broker setting that bounds `transaction.timeout.ms`.
const TRANSACTION_MAX_TIMEOUT: &str = "transaction.max.timeout.ms";

/// The admin client and a consumer used for metadata and watermarks (it never subscribes).
pub(crate) struct Admin {
    brokers: String,
    timeout: Duration,
    admin: AdminClient<DefaultClientContext>,
    metadata: BaseConsumer,
    /// Partition counts seen, by topic: they never change under LUX.
    partitions: Mutex<HashMap<String, u32>>,
}

impl Admin {
    pub(crate) fn connect(config: &KafkaConfig, topic_prefix: &str) -> Result<Admin> {
        let brokers = config.brokers.clone();
        let admin =
            base_config(config).create().map_err(|e| kafka_error(&brokers, "cannot create the admin client", &e))?;
        let metadata = consumer_config(config, &format!("{topic_prefix}lux-metadata"))
            .create()
            .map_err(|e| kafka_error(&brokers, "cannot create the metadata client", &e))?;
        Ok(Admin { brokers, timeout: config.request_timeout, admin, metadata, partitions: Mutex::new(HashMap::new()) })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new().request_timeout(Some(self.timeout)).operation_timeout(Some(self.timeout))
    }

    /// The partition count of a topic, `None` when it does not exist.
    pub(crate) fn partition_count(&self, topic: &str) -> Result<Option<u32>> {
        if let Some(count) = self.partitions.lock().unwrap_or_else(|p| p.into_inner()).get(topic) {
            return Ok(Some(*count));
        }
        let metadata = self
            .metadata
            .fetch_metadata(Some(topic), self.timeout)
            .map_err(|e| kafka_error(&self.brokers, &format!("cannot read the metadata of topic {topic}"), &e))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
        match found.error() {
            None => {}
            Some(code) if RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition => return Ok(None),
            Some(code) => {
                return Err(kafka_problem(
                    &self.brokers,
                    format!("topic {topic}: metadata error {}", RDKafkaErrorCode::from(code)),
                ))
            }
        }
        let count = found.partitions().len() as u32;
        if count == 0 {
            return Ok(None);
        }
        self.partitions.lock().unwrap_or_else(|p| p.into_inner()).insert(topic.to_owned(), count);
        Ok(Some(count))
    }

    /// The partition count of a topic that must exist.
    pub(crate) fn existing_partitions(&self, topic: &str) -> Result<u32> {
        self.partition_count(topic)?.ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))
    }

    /// Creates the topic (compacted: a changelog) unless it exists with that many partitions.
    pub(crate) fn ensure_topic(&self, name: &str, partitions: u32, compacted: bool) -> Result<()> {
        crate::validate_new_topic(name, partitions)?;
        if self.check_existing(name, partitions)? {
            return Ok(());
        }
        // Replication: the brokers' default.replication.factor (KIP-464).
        let mut topic = NewTopic::new(name, partitions as i32, TopicReplication::Fixed(-1));
        if compacted {
            topic = topic.set("cleanup.policy", "compact");
        }
        let results = block_on(self.admin.create_topics([&topic], &self.options()), self.timeout + self.timeout)
            .ok_or_else(|| kafka_problem(&self.brokers, format!("creating topic {name} timed out")))?
            .map_err(|e| kafka_error(&self.brokers, &format!("cannot create topic {name}"), &e))?;
        for result in results {
            match result {
                Ok(_) => {}
                // Another instance created it meanwhile: its partition count is checked below.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(kafka_error(
                        &self.brokers,
                        &format!("cannot create topic {name} with {partitions} partitions"),
                        &KafkaError::AdminOp(code),
                    ))
                }
            }
        }
        // Metadata follows creation after a moment.
        let deadline = Instant::now() + self.timeout;
        loop {
            if self.check_existing(name, partitions)? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(kafka_problem(
                    &self.brokers,
                    format!("topic {name} was created but does not show in the metadata; try again"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `true` when the topic exists with `partitions`, an error when with another count.
    fn check_existing(&self, name: &str, partitions: u32) -> Result<bool> {
        match self.partition_count(name)? {
            Some(existing) if existing == partitions => Ok(true),
            Some(existing) => {
                Err(LogError::PartitionMismatch { topic: name.to_owned(), existing, requested: partitions })
            }
            None => Ok(false),
        }
    }

    /// The low and high watermarks of a partition (read_committed readers stop before the
    /// last stable offset, which is the high watermark when no transaction is open).
    pub(crate) fn watermarks(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        let (low, high) = self
            .metadata
            .fetch_watermarks(topic, partition as i32, self.timeout)
            .map_err(|e| kafka_error(&self.brokers, &format!("cannot read the offsets of {topic}/{partition}"), &e))?;
        Ok((low.max(0) as u64, high.max(0) as u64))
    }

    pub(crate) fn topic_info(&self, name: &str) -> Result<TopicInfo> {
        let partitions = self.existing_partitions(name)?;
        let mut info =
            TopicInfo { name: name.to_owned(), partitions, end_offsets: Vec::new(), start_offsets: Vec::new() };
        for partition in 0..partitions {
            let (low, high) = self.watermarks(name, partition)?;
            info.start_offsets.push(low);
            info.end_offsets.push(high);
        }
        Ok(info)
    }

    /// The names of every topic but the brokers' internal ones (`__consumer_offsets`, ...).
    pub(crate) fn topic_names(&self) -> Result<Vec<String>> {
        let metadata = self
            .metadata
            .fetch_metadata(None, self.timeout)
            .map_err(|e| kafka_error(&self.brokers, "cannot list the topics", &e))?;
        let mut names: Vec<String> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.name().starts_with("__") && !t.partitions().is_empty())
            .map(|t| t.name().to_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The brokers' `transaction.max.timeout.ms` (the smallest when they differ), `None` when no
    /// broker reports it.
    pub(crate) fn transaction_max_timeout(&self) -> Result<Option<u64>> {
        let metadata = self
            .metadata
            .fetch_metadata(None, self.timeout)
            .map_err(|e| kafka_error(&self.brokers, "cannot read the cluster metadata", &e))?;
        let ids: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
        let resources: Vec<ResourceSpecifier<'_>> = ids.iter().map(|id| ResourceSpecifier::Broker(*id)).collect();
        let described = block_on(self.admin.describe_configs(&resources, &self.options()), self.timeout + self.timeout);
        let results = match described {
            Some(Ok(results)) => results,
            Some(Err(error)) => {
                tracing::warn!(brokers = %self.brokers, %error, "the brokers do not describe their configuration");
                return Ok(None);
            }
            None => {
                tracing::warn!(brokers = %self.brokers, "describing the brokers' configuration timed out");
                return Ok(None);
            }
        };
        let mut smallest: Option<u64> = None;
        for resource in results.into_iter().flatten() {
            let value =
                resource.get(TRANSACTION_MAX_TIMEOUT).and_then(|e| e.value.as_deref()).and_then(|v| v.parse().ok());
            if let Some(value) = value {
                smallest = Some(smallest.map_or(value, |s: u64| s.min(value)));
            }
        }
        Ok(smallest)
    }

    /// Refuses a transaction timeout above the brokers' maximum; warns when they do not say.
    pub(crate) fn check_transaction_timeout(&self, configured: Duration) -> Result<()> {
        check_transaction_timeout(&self.brokers, millis(configured), self.transaction_max_timeout()?)
    }
}

/// The decision of [`Admin::check_transaction_timeout`], given what the brokers reported.
fn check_transaction_timeout(brokers: &str, configured_ms: u64, broker_max_ms: Option<u64>) -> Result<()> {
    match broker_max_ms {
        Some(broker_max_ms) if configured_ms > broker_max_ms => {
            Err(LogError::TransactionTimeout { brokers: brokers.to_owned(), configured_ms, broker_max_ms })
        }
        Some(_) => Ok(()),
        None => {
            tracing::warn!(
                brokers,
                configured_ms,
                "the brokers do not report {TRANSACTION_MAX_TIMEOUT}: cannot check log.kafka.transaction_timeout against it; if it is above the brokers' maximum, every transaction will be refused"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_timeout_above_the_brokers_maximum_is_refused_with_both_values_and_the_fix() {
        let error = check_transaction_timeout("k1:9092", 960_000, Some(900_000)).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, LogError::TransactionTimeout { configured_ms: 960_000, broker_max_ms: 900_000, .. }));
        for part in
            ["log.kafka.transaction_timeout is 960000 ms", "at most 900000 ms", "transaction.max.timeout.ms", "k1:9092"]
        {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
        assert!(check_transaction_timeout("k1:9092", 900_000, Some(900_000)).is_ok());
        // A broker that does not say (tansu): a warning, not a refusal.
        assert!(check_transaction_timeout("k1:9092", 960_000, None).is_ok());
    }
}
