//! The `[log]` config section: which central log to use and how, and its `[log.kafka]` table
//! (the brokers and client settings of the Kafka backend).

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
    /// A Kafka cluster (`[log.kafka]`): exactly-once stages through transactions, several
    /// instances of a stage sharing the partitions of its inputs as one consumer group.
    Kafka,
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
    /// The backend: `embedded` (default) or `kafka` (then `[log.kafka]` says where and how).
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
    /// How long a stage may keep reading into one batch, from the batch's first record, before
    /// it commits it (outputs, input offsets and state in one step), e.g. `100ms`; as Kafka
    /// Streams' `commit.interval.ms`. A batch also ends when it holds `commit_max_records`
    /// records or its input has nothing more. The trade-off: a stage's outputs become readable
    /// only when its batch is committed, so this adds up to that much latency at each stage,
    /// while each commit has a fixed cost (a Kafka transaction costs the brokers some
    /// milliseconds to a hundred, whatever its size), so longer batches carry more records per
    /// second, and a stage's state (alarm panes, QoE cells) is written once per commit for all
    /// the records that touched it. Watermarks advance and alarm windows fire at each commit.
    /// Unset: `50ms` on the embedded log, `100ms` on Kafka. `0s` commits after every read. At
    /// most `60s`. Sources (generator, collectors) commit after every read whatever this says.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub commit_interval: Option<Duration>,
    /// Most input records one commit of a stage covers (see `commit_interval`); also the most
    /// records a source commits at once. Larger batches mean fewer commits and more memory: a
    /// stage holds its batch's outputs until the commit. Unset: 10,000 on the embedded log,
    /// 50,000 on Kafka. Between 1 and 1,000,000.
    pub commit_max_records: Option<u64>,
    /// Retention of particular topics, by name without `topic_prefix`: `[log.topics.raw]` with
    /// `retention_bytes` and/or `retention_age`, meaning what `log.retention_bytes` and
    /// `log.retention_age` mean; a key set there replaces the `[log]` one for that topic, an
    /// unset one follows it.
    pub topics: BTreeMap<String, TopicRetention>,
    /// The Kafka cluster, when `backend = "kafka"`. Topics are created with `partitions`
    /// partitions; each stage is the consumer group `<topic_prefix><stage>` and keeps its state in
    /// the compacted topic `<topic_prefix><stage>-changelog`. The retention keys above are for
    /// the embedded log only: set Kafka's retention on the topics themselves.
    pub kafka: KafkaConfig,
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

/// How LUX reaches and uses a Kafka cluster (`[log.kafka]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// The bootstrap brokers, `host:port` separated by commas (`kafka1:9092,kafka2:9092`). The
    /// command-line form `--log kafka://kafka1:9092,kafka2:9092` sets this key.
    pub brokers: String,
    /// The client id LUX's Kafka clients show to the brokers (logs, quotas, ACLs); the
    /// transactional ids of the stages start with it too.
    pub client_id: String,
    /// How long the group waits for a silent instance of a stage before giving its partitions
    /// to the others (`session.timeout.ms`), e.g. `10s`. Short means fast failover; the broker
    /// bounds it (`group.min.session.timeout.ms`, 6 s by default on Kafka).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub session_timeout: Duration,
    /// Longest time between two polls of a stage instance before it is considered stuck and its
    /// partitions are reassigned (`max.poll.interval.ms`); at least `session_timeout`. A commit
    /// retried through a broker outage longer than this is refused afterwards and its batch is
    /// read and processed again, not lost.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub max_poll_interval: Duration,
    /// How long a transaction may stay open before the broker aborts it
    /// (`transaction.timeout.ms`): after a crash, readers wait at most this long for the dead
    /// instance's open transaction. Must not exceed the broker's `transaction.max.timeout.ms`
    /// (15 minutes by default): LUX checks it at start and refuses to start otherwise.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub transaction_timeout: Duration,
    /// How long a metadata, admin or read request may take before it fails (and a stage
    /// retries). At most `transaction_timeout`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// librdkafka properties passed to every client as they are: TLS (`security.protocol =
    /// "ssl"`, `"ssl.ca.location"`, `"ssl.certificate.location"`, `"ssl.key.location"`), SASL
    /// (`security.protocol = "sasl_ssl"`, `"sasl.mechanism" = "SCRAM-SHA-512"`,
    /// `"sasl.username"`, `"sasl.password"`), tuning (`"linger.ms"`, `"compression.type"`, ...).
    /// The properties LUX sets itself for exactly-once (group, transactions, isolation, offsets,
    /// timeouts above) are refused here. Where this sets nothing, LUX's stages use
    /// `linger.ms = "5"`, `compression.type = "lz4"` (with JSON records, a third of the broker's
    /// CPU; every Kafka client reads it), `delivery.report.only.error = "true"`
    /// (LUX waits for deliveries by count) and, for their consumers,
    /// `fetch.queue.backoff.ms = "10"` (librdkafka's 1 s left a fast stage with nothing to read).
    pub properties: BTreeMap<String, String>,
}

/// librdkafka properties whose defaults LUX changes, for producers and for stages' consumers,
/// unless `log.kafka.properties` sets them (measured with `lux bench --kafka`: BENCHMARKS.md).
pub(crate) const PRODUCER_DEFAULTS: [(&str, &str); 3] =
    [("linger.ms", "5"), ("compression.type", "lz4"), ("delivery.report.only.error", "true")];
pub(crate) const CONSUMER_DEFAULTS: [(&str, &str); 1] = [("fetch.queue.backoff.ms", "10")];

/// The librdkafka properties LUX sets itself: exactly-once depends on them, or a key of
/// `[log.kafka]` sets them.
const MANAGED_PROPERTIES: [(&str, &str); 15] = [
    ("bootstrap.servers", "set log.kafka.brokers instead"),
    ("metadata.broker.list", "set log.kafka.brokers instead"),
    ("client.id", "set log.kafka.client_id instead"),
    ("session.timeout.ms", "set log.kafka.session_timeout instead"),
    ("max.poll.interval.ms", "set log.kafka.max_poll_interval instead"),
    ("transaction.timeout.ms", "set log.kafka.transaction_timeout instead"),
    ("group.id", "each stage is the group <topic_prefix><stage>"),
    ("transactional.id", "each stage instance derives its own"),
    ("enable.idempotence", "transactions need it on"),
    ("isolation.level", "exactly-once needs read_committed"),
    ("enable.auto.commit", "offsets are committed in the stage's transactions"),
    ("enable.auto.offset.store", "offsets are committed in the stage's transactions"),
    ("auto.offset.reset", "a new group must start at the earliest offset or it would skip records"),
    ("partition.assignment.strategy", "LUX uses the eager range strategy"),
    ("group.protocol", "LUX uses the classic group protocol"),
];

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "localhost:9092".into(),
            client_id: "lux".into(),
            session_timeout: Duration::from_secs(10),
            max_poll_interval: Duration::from_secs(60),
            transaction_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The defaults with the brokers of a `kafka://host:port[,host:port...]` URL (the
    /// command-line form of the log).
    pub fn from_url(url: &str) -> std::result::Result<KafkaConfig, String> {
        KafkaConfig::default().with_url(url)
    }

    /// This config with its brokers replaced by those of a `kafka://host:port[,host:port...]` URL.
    pub fn with_url(self, url: &str) -> std::result::Result<KafkaConfig, String> {
        let Some(rest) = url.strip_prefix("kafka://") else {
            return Err(format!("{url:?} is not a Kafka URL: write kafka://host:port[,host:port...]"));
        };
        let brokers = rest.trim_end_matches('/');
        if let Some(problem) = broker_list_problem(brokers) {
            return Err(format!("{url:?}: {problem}"));
        }
        Ok(KafkaConfig { brokers: brokers.to_owned(), ..self })
    }

    /// The brokers, one `host:port` each.
    pub fn broker_list(&self) -> Vec<&str> {
        self.brokers.split(',').map(str::trim).filter(|b| !b.is_empty()).collect()
    }

    /// Every problem of this section, with keys under `prefix` (`log.kafka`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let key = |field: &str| lux_model::config_key(prefix, field);
        let mut problems = Vec::new();
        if let Some(problem) = broker_list_problem(&self.brokers) {
            problems.push(ConfigProblem::new(key("brokers"), problem));
        }
        let client_id_ok = !self.client_id.is_empty()
            && self.client_id.len() <= 100
            && self.client_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !client_id_ok {
            problems.push(ConfigProblem::new(
                key("client_id"),
                format!("{:?} must be 1 to 100 letters, digits, '.', '_' or '-'", self.client_id),
            ));
        }
        let seconds = |d: Duration| d.as_secs_f64();
        if !(Duration::from_secs(1)..=Duration::from_secs(30 * 60)).contains(&self.session_timeout) {
            problems.push(ConfigProblem::new(
                key("session_timeout"),
                format!("must be between 1s and 30m, not {}s", seconds(self.session_timeout)),
            ));
        }
        if self.max_poll_interval < self.session_timeout || self.max_poll_interval > Duration::from_secs(24 * 3600) {
            problems.push(ConfigProblem::new(
                key("max_poll_interval"),
                format!(
                    "must be between session_timeout ({}s) and 24h, not {}s",
                    seconds(self.session_timeout),
                    seconds(self.max_poll_interval)
                ),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(&self.transaction_timeout) {
            problems.push(ConfigProblem::new(
                key("transaction_timeout"),
                format!(
                    "must be between 1s and the broker's transaction.max.timeout.ms (15m by default), not {}s",
                    seconds(self.transaction_timeout)
                ),
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&self.request_timeout) {
            problems.push(ConfigProblem::new(
                key("request_timeout"),
                format!("must be between 100ms and 1h, not {}s", seconds(self.request_timeout)),
            ));
        } else if self.request_timeout > self.transaction_timeout && self.transaction_timeout >= Duration::from_secs(1)
        {
            // librdkafka refuses a transactional producer whose socket timeout (the request
            // timeout) exceeds the transaction timeout.
            problems.push(ConfigProblem::new(
                key("request_timeout"),
                format!(
                    "must not exceed transaction_timeout ({}s), not {}s",
                    seconds(self.transaction_timeout),
                    seconds(self.request_timeout)
                ),
            ));
        }
        for name in self.properties.keys() {
            if let Some((_, why)) = MANAGED_PROPERTIES.iter().find(|(managed, _)| managed == name) {
                problems.push(ConfigProblem::new(
                    key(&format!("properties.{name}")),
                    format!("is set by LUX ({why}); remove it"),
                ));
            }
        }
        problems
    }
}

/// What is wrong with a comma-separated `host:port` list, if anything.
fn broker_list_problem(brokers: &str) -> Option<String> {
    let entries: Vec<&str> = brokers.split(',').map(str::trim).collect();
    if entries.iter().all(|e| e.is_empty()) {
        return Some("must list at least one broker as host:port, e.g. kafka1:9092,kafka2:9092".into());
    }
    for entry in entries {
        let valid = entry.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.chars().any(|c| c.is_whitespace() || c == '/')
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Some(format!("{entry:?} is not host:port (e.g. kafka1:9092); separate brokers with commas"));
        }
    }
    None
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
            commit_interval: None,
            commit_max_records: None,
            topics: BTreeMap::new(),
            kafka: KafkaConfig::default(),
        }
    }
}

/// The longest `log.commit_interval` allowed.
pub const MAX_COMMIT_INTERVAL: Duration = Duration::from_secs(60);
/// The most records `log.commit_max_records` allows.
pub const MAX_COMMIT_RECORDS: u64 = 1_000_000;

impl LogBackendKind {
    /// The backend's default `log.commit_interval`.
    pub fn default_commit_interval(self) -> Duration {
        match self {
            // Measured (`lux bench --quick`, release, one run each): against 0s and 2,000,
            // 26% less CPU per event at the pipeline's maximum and 31% less at 40,000 events/s,
            // for up to 50 ms more latency per stage.
            LogBackendKind::Embedded => Duration::from_millis(50),
            LogBackendKind::Kafka => Duration::from_millis(100),
        }
    }

    /// The backend's default `log.commit_max_records`.
    pub fn default_commit_max_records(self) -> u64 {
        match self {
            LogBackendKind::Embedded => 10_000,
            LogBackendKind::Kafka => 50_000,
        }
    }
}

impl LogConfig {
    /// `commit_interval`, or the backend's default when unset.
    pub fn commit_interval(&self) -> Duration {
        self.commit_interval.unwrap_or_else(|| self.backend.default_commit_interval())
    }

    /// `commit_max_records`, or the backend's default when unset.
    pub fn commit_max_records(&self) -> usize {
        let records = self.commit_max_records.unwrap_or_else(|| self.backend.default_commit_max_records());
        usize::try_from(records.clamp(1, MAX_COMMIT_RECORDS)).unwrap_or(2_000)
    }

    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.commit_interval.is_some_and(|interval| interval > MAX_COMMIT_INTERVAL) {
            problems.push(ConfigProblem::new(
                lux_model::config_key(prefix, "commit_interval"),
                format!(
                    "must be at most 60s (outputs become readable only at each commit), not {}s; \
                     100ms is a good start on Kafka",
                    self.commit_interval.unwrap_or_default().as_secs_f64()
                ),
            ));
        }
        if let Some(records) = self.commit_max_records.filter(|r| !(1..=MAX_COMMIT_RECORDS).contains(r)) {
            problems.push(ConfigProblem::new(
                lux_model::config_key(prefix, "commit_max_records"),
                format!(
                    "must be between 1 and 1000000 (a batch's outputs are held in memory until its commit), not {records}"
                ),
            ));
        }
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
        if self.backend == LogBackendKind::Kafka {
            problems.extend(self.kafka.validate(&lux_model::config_key(prefix, "kafka")));
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

    #[test]
    fn commit_batches_default_per_backend_and_are_validated() {
        let mut config = LogConfig::default();
        assert_eq!((config.commit_interval(), config.commit_max_records()), (Duration::from_millis(50), 10_000));
        config.backend = LogBackendKind::Kafka;
        assert_eq!((config.commit_interval(), config.commit_max_records()), (Duration::from_millis(100), 50_000));
        config.commit_interval = Some(Duration::from_millis(20));
        config.commit_max_records = Some(10_000);
        assert_eq!((config.commit_interval(), config.commit_max_records()), (Duration::from_millis(20), 10_000));
        assert!(config.validate("log").is_empty());
        config.commit_interval = Some(Duration::from_secs(61));
        config.commit_max_records = Some(0);
        let keys: Vec<String> = config.validate("log").into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["log.commit_interval", "log.commit_max_records"]);
        config.commit_max_records = Some(MAX_COMMIT_RECORDS + 1);
        assert_eq!(config.validate("log").len(), 2);
    }

    #[test]
    fn kafka_settings_are_validated_only_for_the_kafka_backend() {
        let mut config = LogConfig::default();
        config.kafka.brokers = "kafka1".into();
        assert!(config.validate("log").is_empty());
        config.backend = LogBackendKind::Kafka;
        config.kafka.session_timeout = Duration::from_secs(20);
        config.kafka.max_poll_interval = Duration::from_secs(10);
        config.kafka.transaction_timeout = Duration::ZERO;
        config.kafka.client_id = "lux stage".into();
        config.kafka.properties.insert("isolation.level".into(), "read_uncommitted".into());
        config.kafka.properties.insert("ssl.ca.location".into(), "/etc/ca.pem".into());
        let keys: Vec<String> = config.validate("log").into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "log.kafka.brokers",
                "log.kafka.client_id",
                "log.kafka.max_poll_interval",
                "log.kafka.transaction_timeout",
                "log.kafka.properties.isolation.level"
            ]
        );
    }

    #[test]
    fn broker_lists_and_urls() {
        let config = KafkaConfig::from_url("kafka://k1:9092,10.0.0.2:9093/").unwrap();
        assert_eq!(config.brokers, "k1:9092,10.0.0.2:9093");
        assert_eq!(config.broker_list(), ["k1:9092", "10.0.0.2:9093"]);
        assert!(KafkaConfig::from_url("kafka://[::1]:9092").is_ok());
        for bad in ["http://k1:9092", "kafka://", "kafka://k1", "kafka://k1:0", "kafka://k1:9092,k2:x", "kafka://:9092"]
        {
            let error = KafkaConfig::from_url(bad).unwrap_err();
            assert!(error.contains("host:port"), "{bad}: {error}");
        }
    }
}
