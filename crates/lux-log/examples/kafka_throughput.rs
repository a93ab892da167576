//! Indicative transaction figures of the Kafka backend on a local tansu broker: a stage session
//! reads `records` input records and commits them in batches of `batch` (outputs + offsets +
//! one state entry per batch, one transaction each), then prints the commit latency and the
//! records/s. Run: `cargo run --release -p lux-log --features testing --example kafka_throughput
//! -- 100000 1000` (tansu from `./scripts/test`).

use lux_log::kafka::testing::TansuBroker;
use lux_log::kafka::KafkaLog;
use lux_log::{CentralLog, Commit, OutputRecord, Polled, StateChange, TopicPartition};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let batch: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let broker = TansuBroker::start()?;
    let mut config = broker.config();
    // Extra librdkafka properties to try: LUX_KAFKA_PROPERTIES="linger.ms=1,retry.backoff.ms=10".
    for pair in std::env::var("LUX_KAFKA_PROPERTIES").unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or("LUX_KAFKA_PROPERTIES: write key=value,key=value")?;
        config.properties.insert(key.to_owned(), value.to_owned());
    }
    let log = Arc::new(KafkaLog::connect(&config, "bench.")?);
    log.ensure_topic("bench.in", 6)?;
    log.ensure_topic("bench.out", 6)?;
    let value = vec![b'x'; 200];
    let feed_started = Instant::now();
    for chunk in 0..records.div_ceil(10_000) {
        let outputs = (chunk * 10_000..((chunk + 1) * 10_000).min(records))
            .map(|i| OutputRecord {
                topic: "bench.in".into(),
                key: format!("eq-{}", i % 5000).into_bytes(),
                timestamp_ms: 1_700_000_000_000,
                value: value.clone(),
                decoded: None,
            })
            .collect();
        log.commit(Commit { group: "feeder".into(), outputs, ..Default::default() })?;
    }
    let feed_secs = feed_started.elapsed().as_secs_f64();
    println!("fed {records} records of 200 B in transactions of 10000: {:.0} records/s", records as f64 / feed_secs);

    let mut session = log.clone().open_session("stage", &["bench.in".to_owned()])?;
    let started = Instant::now();
    let mut done = 0;
    let mut latencies = Vec::new();
    while done < records {
        let polled = match session.poll(batch, Duration::from_secs(1))? {
            Polled::Assigned(_) => continue,
            Polled::Records(polled) => polled,
        };
        if polled.is_empty() {
            continue;
        }
        let mut next: BTreeMap<TopicPartition, u64> = BTreeMap::new();
        let outputs = polled
            .iter()
            .map(|r| {
                next.insert(TopicPartition { topic: r.topic.clone(), partition: r.partition }, r.offset + 1);
                OutputRecord {
                    topic: "bench.out".into(),
                    key: r.key.clone().unwrap_or_default(),
                    timestamp_ms: r.timestamp_ms,
                    value: r.value.clone(),
                    decoded: None,
                }
            })
            .collect();
        done += polled.len();
        let state =
            vec![StateChange { partition: 0, key: b"done".to_vec(), value: Some(done.to_string().into_bytes()) }];
        let commit = Commit { group: "stage".into(), next_offsets: next.into_iter().collect(), outputs, state };
        let commit_started = Instant::now();
        session.commit(&commit)?;
        latencies.push(commit_started.elapsed());
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pick = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or_default();
    println!(
        "read-process-write: {done} records in {} transactions: {:.0} records/s; commit latency median {:?}, p90 {:?}, max {:?}; aborts {}",
        latencies.len(),
        done as f64 / secs,
        pick(0.5),
        pick(0.9),
        pick(1.0),
        log.metrics().aborts.load(Ordering::Relaxed)
    );
    Ok(())
}
