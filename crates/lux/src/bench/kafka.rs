//! `lux bench --kafka`: the transform stage with exactly-once on a Kafka-protocol broker.
//!
//! The bench starts a tansu broker on a free 127.0.0.1 port (the memory engine; the binary of
//! `./scripts/test`, or `$LUX_TANSU`), or uses the brokers of `--brokers`. It fills the topic
//! `raw` with `--records` raw records of the demo operator (RFC 5424, RFC 3164 and RADIUS in
//! equal parts, in transactions of 20,000), then runs the transform stage on them in this process
//! exactly as `lux transform` does (the stage runner, a consumer group, one transaction per
//! batch: input offsets, enriched records, dead letters) until every record is committed.
//!
//! Measured from the moment the stage has its partitions (the group's join, seconds on tansu,
//! is left out) to the commit of the last record: events/s, the CPU seconds of this process
//! (the stage with librdkafka's threads; nothing else runs in it meanwhile) and of the broker
//! process (`/proc/<pid>/stat`, when the bench started it), the transactions committed and their
//! mean latency. `--commit-interval` and `--commit-records` set the batch (`log.commit_interval`
//! and `log.commit_max_records`; by default Kafka's defaults): `--commit-interval 0s
//! --commit-records 2000` is the one-transaction-per-poll runner of before.

use super::{cpu_seconds_by_thread, cpu_seconds_of, Machine};
use anyhow::{bail, Context as _};
use lux_log::kafka::testing::TansuBroker;
use lux_log::kafka::{KafkaLog, KafkaMetrics};
use lux_log::{CentralLog, Commit, KafkaConfig, LogBackendKind, OutputRecord};
use lux_stage::{run_processor, RunnerOptions, StageMetrics};
use lux_transform::{TransformConfig, TransformStage, TransformTopics};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The subscriber key of the bench's transform stage (any key costs the same).
const KEY: &[u8] = b"lux-bench-subscriber-key";
/// Records per transaction while filling `raw`.
const FILL_BATCH: usize = 20_000;

/// What the Kafka bench measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KafkaReport {
    pub machine: Machine,
    /// `tansu (started by the bench)` or the `--brokers` list.
    pub brokers: String,
    pub partitions: u32,
    /// The batch of a commit: `log.commit_interval` (seconds) and `log.commit_max_records`.
    pub commit_interval_s: f64,
    pub commit_max_records: usize,
    /// librdkafka properties given with `--kafka-property`.
    pub properties: std::collections::BTreeMap<String, String>,
    /// Raw records put in `raw`, and how fast (records/s, transactions of 20,000).
    pub records: u64,
    pub fill_per_s: f64,
    /// Records the transform stage read and committed, and what it wrote (enriched records and
    /// dead letters).
    pub processed: u64,
    pub written: u64,
    /// Seconds from the stage's assignment to the commit of its last record.
    pub seconds: f64,
    pub events_per_s: f64,
    /// CPU seconds (user + system) in those seconds: this process (the stage and librdkafka),
    /// and the broker (`None` with `--brokers`).
    pub lux_cpu_s: f64,
    /// Of which the stage's own thread (decoding, joining, JSON; librdkafka's threads and the
    /// committing one are the rest): the critical path while commits run beside it.
    pub stage_cpu_s: f64,
    pub broker_cpu_s: Option<f64>,
    /// Transactions the stage committed, and their mean and longest latency (ms).
    pub commits: u64,
    pub commit_mean_ms: f64,
    pub commit_max_ms: f64,
    /// Transactions aborted (retried or dropped batches): 0 in a clean run.
    pub aborts: u64,
}

/// Settings of a Kafka bench run (from `lux bench --kafka ...`).
pub struct KafkaBench {
    pub brokers: Option<String>,
    pub records: u64,
    pub partitions: u32,
    pub commit_interval: Option<Duration>,
    pub commit_records: Option<u64>,
    /// librdkafka properties of the bench's clients (`log.kafka.properties`).
    pub properties: std::collections::BTreeMap<String, String>,
}

/// The name of the stage's thread (no other thread of the bench has it).
const STAGE_THREAD: &str = "lux-transform";

/// Runs the bench; the broker it started is stopped before it returns.
pub fn run(bench: &KafkaBench) -> anyhow::Result<KafkaReport> {
    if bench.records == 0 {
        bail!("--records must be at least 1");
    }
    if !(1..=lux_log::MAX_PARTITIONS).contains(&bench.partitions) {
        bail!("--partitions must be between 1 and {}", lux_log::MAX_PARTITIONS);
    }
    let commit_interval = bench.commit_interval.unwrap_or_else(|| LogBackendKind::Kafka.default_commit_interval());
    let commit_max_records = bench.commit_records.unwrap_or_else(|| LogBackendKind::Kafka.default_commit_max_records());
    if commit_interval > lux_log::MAX_COMMIT_INTERVAL {
        bail!("--commit-interval must be at most 60s");
    }
    if !(1..=lux_log::MAX_COMMIT_RECORDS).contains(&commit_max_records) {
        bail!("--commit-records must be between 1 and 1000000");
    }
    let broker = match &bench.brokers {
        Some(_) => None,
        None => {
            eprintln!("lux bench: starting a tansu broker");
            Some(TansuBroker::start().map_err(anyhow::Error::msg)?)
        }
    };
    let config = match (&broker, &bench.brokers) {
        (Some(broker), _) => broker.config(),
        (None, Some(brokers)) => KafkaConfig {
            brokers: brokers.clone(),
            client_id: "lux-bench".into(),
            // A new group's first join waits about half of this on tansu.
            session_timeout: Duration::from_secs(6),
            max_poll_interval: Duration::from_secs(30),
            transaction_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            ..KafkaConfig::default()
        },
        (None, None) => bail!("no broker"),
    };
    let config = KafkaConfig { properties: bench.properties.clone(), ..config };
    if let Some(problem) = config.validate("log.kafka").first() {
        bail!("--kafka-property: {} {}", problem.key, problem.message);
    }
    // Topics of their own, so that a shared cluster's topics are left alone.
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let prefix = format!("lux-bench-{stamp}-{}.", std::process::id());
    let topics = TransformTopics {
        raw: format!("{prefix}raw"),
        enriched: format!("{prefix}enriched"),
        deadletter: format!("{prefix}deadletter"),
    };
    let connect = || {
        KafkaLog::connect(&config, &prefix)
            .with_context(|| format!("cannot use the Kafka cluster at {}", config.brokers))
    };
    // The filling has a client of its own, closed before the stage starts: the stage's
    // figures (CPU, commits) are its own.
    let filler = connect()?;
    for topic in [&topics.raw, &topics.enriched, &topics.deadletter] {
        filler.ensure_topic(topic, bench.partitions)?;
    }

    let (reference, records) = demo_records()?;
    eprintln!("lux bench: filling {} with {} raw records", topics.raw, bench.records);
    let fill_started = Instant::now();
    let mut next = 0u64;
    while next < bench.records {
        let end = (next + FILL_BATCH as u64).min(bench.records);
        let outputs = (next..end)
            .map(|i| {
                let (key, value) = &records[(i % records.len() as u64) as usize];
                OutputRecord {
                    topic: topics.raw.clone(),
                    key: key.clone(),
                    timestamp_ms: 0,
                    value: value.clone(),
                    decoded: None,
                }
            })
            .collect();
        filler
            .commit(Commit { group: format!("{prefix}feeder"), outputs, ..Default::default() })
            .context("cannot fill the raw topic")?;
        next = end;
    }
    let fill_per_s = bench.records as f64 / fill_started.elapsed().as_secs_f64().max(1e-9);
    drop(filler);
    let log = Arc::new(connect()?);
    eprintln!("lux bench: filled at {fill_per_s:.0} records/s; running the transform stage");

    let stage = TransformStage::new(&TransformConfig::default(), KEY, reference, topics.clone());
    let options = RunnerOptions {
        max_batch: commit_max_records as usize,
        commit_interval,
        partitions: bench.partitions,
        deadletter_topic: topics.deadletter.clone(),
        ..Default::default()
    };
    let metrics = Arc::new(StageMetrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let (log, metrics, stop): (Arc<dyn CentralLog>, _, _) = (log.clone(), metrics.clone(), stop.clone());
        std::thread::Builder::new()
            .name(STAGE_THREAD.into())
            .spawn(move || run_processor(log, Box::new(stage), options, metrics, stop))?
    };
    let self_pid = std::process::id();
    // The stage's own thread, found by its name.
    let stage_cpu = || -> anyhow::Result<f64> {
        cpu_seconds_by_thread(self_pid)?.get(STAGE_THREAD).copied().context("the stage's thread is gone")
    };
    let broker_pid = broker.as_ref().map(TansuBroker::pid);
    let cpu = |pid: Option<u32>| pid.map(cpu_seconds_of).transpose();
    // The clock starts once the stage has its partitions.
    let deadline = Instant::now() + Duration::from_secs(120);
    while metrics.rebalances.load(Ordering::Relaxed) == 0 {
        if handle.is_finished() || Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            return Err(finish(handle).err().unwrap_or_else(|| anyhow::anyhow!("no partitions assigned in 120 s")));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let started = Instant::now();
    let (lux_before, broker_before) = (cpu_seconds_of(self_pid)?, cpu(broker_pid)?);
    let stage_before = stage_cpu()?;
    let commits_before = metrics.commits.load(Ordering::Relaxed);
    let limit = Duration::from_secs(60) + Duration::from_secs_f64(bench.records as f64 / 1_000.0);
    let mut last_progress = Instant::now();
    while metrics.records_in.load(Ordering::Relaxed) < bench.records {
        if handle.is_finished() || started.elapsed() > limit {
            stop.store(true, Ordering::Relaxed);
            let done = metrics.records_in.load(Ordering::Relaxed);
            return Err(finish(handle).err().unwrap_or_else(|| {
                anyhow::anyhow!("the transform stage read {done} of {} records in {limit:?}", bench.records)
            }));
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            eprintln!("lux bench: {} of {} records", metrics.records_in.load(Ordering::Relaxed), bench.records);
            last_progress = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (lux_after, broker_after) = (cpu_seconds_of(self_pid)?, cpu(broker_pid)?);
    let stage_after = stage_cpu()?;
    stop.store(true, Ordering::Relaxed);
    finish(handle)?;
    let kafka = KafkaCounts::of(log.metrics());
    let processed = metrics.records_in.load(Ordering::Relaxed);
    let written = metrics.records_out.load(Ordering::Relaxed);
    if processed != bench.records || written != bench.records {
        bail!(
            "the transform stage read {processed} and wrote {written} records of {}: every raw record should make one \
             enriched record or dead letter",
            bench.records
        );
    }
    let report = KafkaReport {
        machine: Machine::here(),
        brokers: match &bench.brokers {
            Some(brokers) => brokers.clone(),
            None => "tansu (started by the bench, memory engine)".into(),
        },
        partitions: bench.partitions,
        commit_interval_s: commit_interval.as_secs_f64(),
        commit_max_records: commit_max_records as usize,
        properties: bench.properties.clone(),
        records: bench.records,
        fill_per_s,
        processed,
        written,
        seconds,
        events_per_s: processed as f64 / seconds.max(1e-9),
        lux_cpu_s: lux_after - lux_before,
        stage_cpu_s: stage_after - stage_before,
        broker_cpu_s: broker_after.zip(broker_before).map(|(after, before)| after - before),
        commits: metrics.commits.load(Ordering::Relaxed) - commits_before,
        commit_mean_ms: if kafka.commits > 0 { kafka.micros as f64 / kafka.commits as f64 / 1000.0 } else { 0.0 },
        commit_max_ms: log.metrics().commit_micros_max.load(Ordering::Relaxed) as f64 / 1000.0,
        aborts: kafka.aborts,
    };
    drop(log);
    drop(broker);
    Ok(report)
}

fn finish(handle: std::thread::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    handle.join().map_err(|_| anyhow::anyhow!("the transform stage panicked (a bug: please report it)"))?
}

/// The Kafka backend's counters the bench reports.
struct KafkaCounts {
    commits: u64,
    micros: u64,
    aborts: u64,
}

impl KafkaCounts {
    fn of(metrics: &KafkaMetrics) -> KafkaCounts {
        KafkaCounts {
            commits: metrics.commits.load(Ordering::Relaxed),
            micros: metrics.commit_micros_total.load(Ordering::Relaxed),
            aborts: metrics.aborts.load(Ordering::Relaxed),
        }
    }
}

/// A raw record as the collectors write it: key and JSON value.
type KeyValue = (Vec<u8>, Vec<u8>);

/// The demo operator's reference data and 6,000 of its raw records (2,000 of each format) as
/// the collectors write them (key, JSON value), keyed by their peer.
fn demo_records() -> anyhow::Result<(lux_reference::ReferenceHandle, Vec<KeyValue>)> {
    let (rfc5424, rfc3164, radius) = lux_generate::samples::by_format(2_000).map_err(anyhow::Error::msg)?;
    let dir = tempfile::Builder::new().prefix("lux-bench-reference-").tempdir()?;
    let cfg = lux_generate::samples::config();
    let start = cfg.start_ms()?;
    lux_generate::Network::generate_at(&cfg, start)?
        .write_csv(dir.path())
        .context("cannot write the demo reference data")?;
    let snapshot = lux_reference::Snapshot::load_csv_dir(dir.path()).map_err(|problems| {
        anyhow::anyhow!(
            "the demo reference data is invalid: {}",
            problems.first().map(|p| p.to_string()).unwrap_or_default()
        )
    })?;
    let mut records = Vec::new();
    // Interleaved, so that every stretch of the topic has the three formats.
    for ((a, b), c) in rfc5424.iter().zip(&rfc3164).zip(&radius) {
        for raw in [a, b, c] {
            let key = raw.peer.clone().unwrap_or_default().into_bytes();
            records.push((key, serde_json::to_vec(raw)?));
        }
    }
    Ok((lux_reference::ReferenceHandle::fixed(snapshot), records))
}

/// The report as a table.
pub fn print(report: &KafkaReport) {
    let m = &report.machine;
    println!(
        "lux {} on {} CPUs ({}), {:.1} GiB, load average {}; broker: {}",
        m.lux_version, m.cpus, m.cpu_model, m.memory_gib, m.load_average, report.brokers
    );
    println!(
        "transform with exactly-once, {} partitions, commits of at most {} records or {} ms; raw filled at {:.0} records/s",
        report.partitions,
        report.commit_max_records,
        report.commit_interval_s * 1000.0,
        report.fill_per_s
    );
    if !report.properties.is_empty() {
        let properties: Vec<String> = report.properties.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("librdkafka properties: {}", properties.join(", "));
    }
    println!(
        "{:>10} {:>8} {:>10} {:>9} {:>11} {:>10} {:>8} {:>14} {:>13} {:>7}",
        "records",
        "s",
        "events/s",
        "lux CPU s",
        "stage CPU s",
        "broker CPU",
        "commits",
        "commit mean ms",
        "commit max ms",
        "aborts"
    );
    println!(
        "{:>10} {:>8.2} {:>10.0} {:>9.2} {:>11.2} {:>10} {:>8} {:>14.1} {:>13.1} {:>7}",
        report.processed,
        report.seconds,
        report.events_per_s,
        report.lux_cpu_s,
        report.stage_cpu_s,
        report.broker_cpu_s.map_or_else(|| "-".to_owned(), |s| format!("{s:.2}")),
        report.commits,
        report.commit_mean_ms,
        report.commit_max_ms,
        report.aborts
    );
}
