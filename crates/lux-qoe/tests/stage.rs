//! The QoE stage and its PostgreSQL sink under the real runner on the embedded log: the `qoe`
//! topic of a run stopped and restarted mid-input equals that of an uninterrupted run; the sink
//! keeps its writes while PostgreSQL is unreachable and writes them once it is back; a replay
//! of the whole topic leaves the table unchanged. PostgreSQL on 127.0.0.1:5432, database
//! `test` (`LUX_TEST_POSTGRES_URL` to use another).

mod common;

use common::*;
use lux_log::embedded::EmbeddedLog;
use lux_log::{CentralLog, Commit, Durability, OutputRecord};
use lux_model::{EnrichedEvent, QoeIndicator};
use lux_qoe::postgres::QoePostgresStage;
use lux_qoe::stage::{QoeStage, QoeTopics};
use lux_qoe::{QoeConfig, QoePostgresConfig};
use lux_stage::{run_processor, Processor, RunnerOptions, StageMetrics};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

fn url() -> String {
    std::env::var("LUX_TEST_POSTGRES_URL").unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".to_owned())
}

fn topics() -> QoeTopics {
    QoeTopics { enriched: "enriched".into(), qoe: "qoe".into(), deadletter: "deadletter".into() }
}

fn config() -> QoeConfig {
    QoeConfig { idle_timeout: std::time::Duration::from_secs(3600), ..QoeConfig::default() }
}

fn open(dir: &Path) -> Arc<dyn CentralLog> {
    Arc::new(EmbeddedLog::open(dir, Durability::Group).expect("the log opens"))
}

/// Appends events to the enriched topic, keyed by equipment (partitioned as the transform
/// stage does), plus one record that is not an event.
fn write(log: &Arc<dyn CentralLog>, events: &[(u32, EnrichedEvent)], garbage: bool) {
    log.ensure_topic("enriched", 3).expect("topic");
    let mut outputs: Vec<OutputRecord> = events
        .iter()
        .map(|(_, e)| OutputRecord {
            topic: "enriched".into(),
            key: e.equipment_key().as_bytes().to_vec(),
            timestamp_ms: e.event.event_time,
            value: serde_json::to_vec(e).expect("JSON"),
            decoded: None,
        })
        .collect();
    if garbage {
        outputs.push(OutputRecord {
            topic: "enriched".into(),
            key: b"A".to_vec(),
            timestamp_ms: T0,
            value: b"{".to_vec(),
            decoded: None,
        });
    }
    log.commit(Commit { group: "test-writer".into(), next_offsets: vec![], outputs, state: vec![] }).expect("commit");
}

fn run(log: &Arc<dyn CentralLog>, stage: impl Processor + 'static) -> Arc<StageMetrics> {
    let options = RunnerOptions { max_batch: 3, stop_when_idle: true, ..Default::default() };
    let metrics = Arc::new(StageMetrics::default());
    run_processor(log.clone(), Box::new(stage), options, metrics.clone(), Arc::new(AtomicBool::new(false)))
        .expect("the stage runs");
    metrics
}

/// Every record of a topic, partition by partition.
fn read<T: serde::de::DeserializeOwned>(log: &Arc<dyn CentralLog>, topic: &str) -> Vec<T> {
    let info = log.topic(topic).expect("topic");
    let mut out = Vec::new();
    for p in 0..info.partitions {
        for r in log.fetch(topic, p, 0, 100_000).expect("fetch") {
            out.push(serde_json::from_slice(&r.value).expect("a record"));
        }
    }
    out
}

fn sorted(mut indicators: Vec<QoeIndicator>) -> Vec<QoeIndicator> {
    indicators.sort_by(|a, b| (a.window_start, &a.dimension, &a.value).cmp(&(b.window_start, &b.dimension, &b.value)));
    indicators
}

fn qoe_stage() -> QoeStage {
    QoeStage::new(&config(), 3, topics()).expect("valid config")
}

#[test]
fn a_restarted_stage_writes_what_an_uninterrupted_one_does() {
    let events = input();
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = open(whole_dir.path());
    write(&whole, &events, true);
    let metrics = run(&whole, qoe_stage().bounded());
    assert_eq!(metrics.snapshot().dead_letters, 1, "the record that is no event");
    let expected = read::<QoeIndicator>(&whole, "qoe");
    assert_eq!(expected.len(), 15);

    for cut in [1, 5, 9, 13] {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open(dir.path());
            write(&log, &events[..cut], false);
            // Not bounded: windows close by the watermark only, the rest stays in the state.
            run(&log, qoe_stage());
        }
        let log = open(dir.path());
        write(&log, &events[cut..], true);
        run(&log, qoe_stage().bounded());
        let got = read::<QoeIndicator>(&log, "qoe");
        assert_eq!(got.len(), expected.len(), "cut after {cut}: each indicator once");
        assert_eq!(sorted(got), sorted(expected.clone()), "cut after {cut}");
        let state = log.load_state("qoe").unwrap();
        let open: std::collections::BTreeSet<String> = state
            .iter()
            .filter_map(|(k, _)| {
                String::from_utf8_lossy(k)
                    .strip_prefix("cell/")
                    .map(|k| k.split('/').next().unwrap_or_default().to_owned())
            })
            .collect();
        assert_eq!(open, [(T0 + 2 * MIN).to_string()].into(), "only minute 2's cells remain in the state");
    }
}

/// A schema of its own for one test, dropped at the end.
struct TestSchema(String);

impl TestSchema {
    fn new() -> TestSchema {
        static N: AtomicU32 = AtomicU32::new(0);
        TestSchema(format!("lux_qoe_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
    }

    fn client(&self) -> postgres::Client {
        lux_reference::pg::connect_client(&url()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The table's rows as text, sorted by key.
    fn rows(&self) -> Vec<String> {
        self.client()
            .query(
                &format!("SELECT t::text FROM \"{}\".qoe_indicators t ORDER BY window_start, dimension, value", self.0),
                &[],
            )
            .expect("the table is readable")
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = lux_reference::pg::connect_client(&url()) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0));
        }
    }
}

fn sink(url: &str, schema: &str, group: &str) -> QoePostgresStage {
    let config = QoePostgresConfig { url: Some(url.to_owned()), schema: schema.to_owned() };
    QoePostgresStage::new(&config, "qoe", "deadletter", Arc::new(AtomicBool::new(false)))
        .expect("a URL is set")
        .with_group(group)
}

#[test]
fn the_postgres_sink_keeps_writes_while_down_and_a_replay_changes_nothing() {
    let schema = TestSchema::new();
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    write(&log, &input(), false);
    run(&log, qoe_stage().bounded());
    let records = read::<QoeIndicator>(&log, "qoe");

    // PostgreSQL unreachable (nothing listens on port 1): every record is a pending write in
    // the committed state, the offsets move on.
    let down = "host=127.0.0.1 port=1 user=postgres dbname=test connect_timeout=2";
    let metrics = run(&log, sink(down, &schema.0, "qoe-postgres"));
    assert_eq!(metrics.snapshot().records_in, 15);
    assert!(metrics.counters().get("failed_writes").is_some_and(|n| *n >= 1));
    let pending = log.load_state("qoe-postgres").unwrap();
    assert_eq!(pending.len(), 15, "every record kept while PostgreSQL is down");

    // Restarted with PostgreSQL reachable: the pending writes are restored and written.
    let metrics = run(&log, sink(&url(), &schema.0, "qoe-postgres"));
    assert_eq!(metrics.snapshot().records_in, 0, "no record read twice");
    assert_eq!(metrics.counters().get("rows_written"), Some(&15));
    assert!(log.load_state("qoe-postgres").unwrap().is_empty(), "nothing pending once written");
    let rows = schema.rows();
    assert_eq!(rows.len(), records.len());
    let mut client = schema.client();
    let site: (i64, i64, i64, Option<f64>, serde_json::Value) = {
        let row = client
            .query_one(
                &format!(
                    "SELECT events, excluded_events, affected_subscribers, drop_rate, top_error_codes::text \
                     FROM \"{}\".qoe_indicators WHERE dimension = 'site' AND value = 'S1' AND window_start = $1",
                    schema.0
                ),
                &[&std::time::SystemTime::UNIX_EPOCH
                    .checked_add(std::time::Duration::from_millis(T0 as u64))
                    .expect("a time")],
            )
            .expect("the row of site S1, minute 0");
        (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            serde_json::from_str(&row.get::<_, String>(4)).unwrap_or_default(),
        )
    };
    assert_eq!((site.0, site.1, site.2, site.3), (9, 2, 4, Some(2.0 / 3.0)));
    assert_eq!(
        site.4,
        serde_json::json!([{"code": "RADIUS-TC-2", "count": 2}, {"code": "DHCP-NOOFFER", "count": 1}, {"code": "PPP-AUTHFAIL", "count": 1}])
    );

    // A replay: the whole topic again, under a new consumer group. The table is unchanged.
    let metrics = run(&log, sink(&url(), &schema.0, "qoe-postgres-replay"));
    assert_eq!(metrics.snapshot().records_in, 15);
    assert_eq!(schema.rows(), rows, "a replay leaves the table unchanged");
}
