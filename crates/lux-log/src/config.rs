//! The `[log]` config section: which central log to use and how.

use lux_model::ConfigProblem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Which backend holds the central log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogBackendKind {
    /// A durable log in the data directory of this machine (segment files and a commit
    /// journal). No setup.
    Embedded,
}

/// When an embedded-log commit is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Commits survive a crash of LUX at once; on power loss the last commits of the past
    /// moments may be rolled back (never half-applied). Fast: disks are synced in groups.
    Group,
    /// Every commit is synced to disk before it returns: survives power loss, slower.
    Fsync,
}

/// The central log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The backend: `embedded` (default).
    pub backend: LogBackendKind,
    /// Directory of the embedded log and of LUX's local files. `lux run --data-dir` overrides it.
    pub data_dir: PathBuf,
    /// `group` (default): the written files are synced in the background every 200 ms; a crash
    /// of LUX loses nothing a commit returned for, a power loss may roll back the commits of the
    /// last moments (never half of one). `fsync`: the records and the journal are synced before
    /// each commit returns (survives power loss; each commit waits for the disk).
    pub durability: Durability,
    /// Prefix put before every topic name (`prod.` gives `prod.raw`, `prod.enriched`, ...).
    pub topic_prefix: String,
    /// Partitions of each topic created by LUX. Records are partitioned by equipment.
    pub partitions: u32,
    /// Size of the segment files of the embedded log, in bytes: a partition's records go to a
    /// new file once its current one holds this much. Retention deletes whole segments, so it
    /// is also the granularity of retention. Between 1 MiB and 1 GiB.
    pub segment_bytes: u64,
    /// Most bytes of records kept per partition (unset: no limit). Past it, the oldest whole
    /// segments are deleted (never the one being written), even if a consumer group has not
    /// read them yet, as Kafka does: a stage behind the start of a partition resumes at its
    /// start. At least `segment_bytes`.
    pub retention_bytes: Option<u64>,
    /// How long records are kept, by their timestamp (event time), e.g. `7days` (unset: for
    /// ever). A segment is deleted once its newest record is older than this (never the one
    /// being written), consumer groups or not.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub retention_age: Option<Duration>,
    /// Retention of particular topics, by name without `topic_prefix`: `[log.topics.raw]` with
    /// `retention_bytes` and/or `retention_age`, meaning what `log.retention_bytes` and
    /// `log.retention_age` mean; a key set there replaces the `[log]` one for that topic, an
    /// unset one follows it.
    pub topics: BTreeMap<String, TopicRetention>,
}

/// Retention of one topic (`[log.topics.<name>]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TopicRetention {
    /// Most bytes of records kept per partition of this topic.
    pub retention_bytes: Option<u64>,
    /// How long this topic's records are kept, by their timestamp.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub retention_age: Option<Duration>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            backend: LogBackendKind::Embedded,
            data_dir: PathBuf::from("lux-data"),
            durability: Durability::Group,
            topic_prefix: String::new(),
            partitions: 3,
            segment_bytes: 128 << 20,
            retention_bytes: None,
            retention_age: None,
            topics: BTreeMap::new(),
        }
    }
}

impl LogConfig {
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.partitions == 0 || self.partitions > 1024 {
            problems.push(ConfigProblem::new(
                lux_model::config_key(prefix, "partitions"),
                format!("must be between 1 and 1024, not {}", self.partitions),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push(ConfigProblem::new(lux_model::config_key(prefix, "data_dir"), "must not be empty"));
        }
        if !self.topic_prefix.is_empty() && crate::validate_topic_name(&format!("{}raw", self.topic_prefix)).is_err() {
            problems.push(ConfigProblem::new(
                lux_model::config_key(prefix, "topic_prefix"),
                "may only hold letters, digits, '.', '_' and '-'",
            ));
        }
        if !(1 << 20..=1 << 30).contains(&self.segment_bytes) {
            problems.push(ConfigProblem::new(
                lux_model::config_key(prefix, "segment_bytes"),
                format!("must be between 1048576 (1 MiB) and 1073741824 (1 GiB), not {}", self.segment_bytes),
            ));
        }
        self.validate_retention(prefix, self.retention_bytes, self.retention_age, &mut problems);
        for (name, topic) in &self.topics {
            let key = lux_model::config_key(prefix, &format!("topics.{name}"));
            if crate::validate_topic_name(&self.topic(name)).is_err() {
                problems.push(ConfigProblem::new(&key, "is not a topic name: letters, digits, '.', '_' and '-'"));
            }
            self.validate_retention(&key, topic.retention_bytes, topic.retention_age, &mut problems);
        }
        problems
    }

    fn validate_retention(
        &self,
        prefix: &str,
        bytes: Option<u64>,
        age: Option<Duration>,
        problems: &mut Vec<ConfigProblem>,
    ) {
        if let Some(bytes) = bytes.filter(|b| *b < self.segment_bytes) {
            problems.push(ConfigProblem::new(
                lux_model::config_key(prefix, "retention_bytes"),
                format!("must be at least segment_bytes ({}), not {bytes}", self.segment_bytes),
            ));
        }
        if age.is_some_and(|age| age < Duration::from_secs(60)) {
            problems.push(ConfigProblem::new(
                lux_model::config_key(prefix, "retention_age"),
                "must be at least 1 minute (`1m`); leave it unset to keep records for ever",
            ));
        }
    }

    /// The full name of one of LUX's topics (`raw`, `enriched`, ...).
    pub fn topic(&self, base: &str) -> String {
        format!("{}{}", self.topic_prefix, base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_validated_for_the_log_and_each_topic() {
        let mut config = LogConfig { retention_bytes: Some(1000), ..Default::default() };
        config.topics.insert(
            "raw".into(),
            TopicRetention { retention_bytes: None, retention_age: Some(Duration::from_secs(1)) },
        );
        config.topics.insert("bad name".into(), TopicRetention::default());
        let keys: Vec<String> = config.validate("log").into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["log.retention_bytes", "log.topics.bad name", "log.topics.raw.retention_age"]);
    }
}
