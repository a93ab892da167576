//! The notify stage against the embedded log and a real local HTTP server standing for a webhook
//! and for Alertmanager: records are delivered at least once (through target failures and a
//! restart), Alertmanager gets active alarms as active and clears and suppressions as resolved,
//! and malformed deliveries refused by the target are counted and dropped.

use lux_log::embedded::EmbeddedLog;
use lux_log::{CentralLog, Commit, Durability, OutputRecord};
use lux_model::{Alarm, AlarmState};
use lux_notify::{Notifier, NotifyConfig, WebhookConfig};
use lux_stage::{run_processor, RunnerOptions, StageMetrics};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server received: path, Authorization header, JSON body.
type Received = Arc<Mutex<Vec<(String, Option<String>, serde_json::Value)>>>;

struct Server {
    addr: std::net::SocketAddr,
    received: Received,
    /// Requests still to fail with 503.
    fail: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// A server answering 503 while `fail` > 0 (counting down, unless it is u64::MAX), 400 to
    /// bodies naming the rule `malformed`, else 200; it records what it accepted.
    fn start(fail: u64) -> Server {
        let received: Received = Arc::default();
        let fail = Arc::new(AtomicU64::new(fail));
        let stop = Arc::new(AtomicBool::new(false));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (r, f, s) = (received.clone(), fail.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let handler = move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (r, f) = (r.clone(), f.clone());
                    async move {
                        let failing = f.load(Ordering::SeqCst);
                        if failing > 0 {
                            if failing != u64::MAX {
                                f.fetch_sub(1, Ordering::SeqCst);
                            }
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let text = String::from_utf8_lossy(&body);
                        if text.contains("\"malformed\"") {
                            return axum::http::StatusCode::BAD_REQUEST;
                        }
                        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                        r.lock().unwrap().push((uri.path().to_owned(), auth, json));
                        axum::http::StatusCode::OK
                    }
                };
                let app = axum::Router::new().fallback(axum::routing::post(handler));
                let shutdown = async move {
                    while !s.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                axum::serve(listener, app).with_graceful_shutdown(shutdown).await.unwrap();
            })
        });
        Server { addr, received, fail, stop, thread: Some(thread) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<(String, Option<String>, serde_json::Value)> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn alarm(rule: &str, group: &str, state: AlarmState, suppressed: bool, window_end: i64) -> Alarm {
    Alarm {
        schema: lux_model::schema::ALARM.to_owned(),
        alarm_id: format!("{rule}-{group}"),
        rule: rule.to_owned(),
        group_key: format!("site={group}"),
        group: [("site".to_owned(), group.to_owned())].into(),
        state,
        severity: "major".into(),
        count: 120,
        total: 150,
        threshold: 100,
        threshold_ratio: None,
        min_events: None,
        window_start: window_end - 60_000,
        window_end,
        first_seen: window_end - 50_000,
        last_seen: window_end - 1_000,
        suppressed_by_intervention: suppressed,
        intervention_id: suppressed.then(|| "INT-0001".to_owned()),
    }
}

/// Appends records to the alarms topic (and one that is not an alarm record, when `garbage`).
fn write_alarms(log: &dyn CentralLog, alarms: &[Alarm], garbage: bool) {
    log.ensure_topic("alarms", 1).unwrap();
    let mut outputs: Vec<OutputRecord> = alarms
        .iter()
        .map(|a| OutputRecord {
            topic: "alarms".into(),
            key: format!("{}/{}", a.rule, a.group_key).into_bytes(),
            timestamp_ms: a.window_end,
            value: serde_json::to_vec(a).unwrap(),
            decoded: None,
        })
        .collect();
    if garbage {
        outputs.push(OutputRecord {
            topic: "alarms".into(),
            key: b"x".to_vec(),
            timestamp_ms: 0,
            value: b"{not json".to_vec(),
            decoded: None,
        });
    }
    log.commit(Commit { group: "writer".into(), next_offsets: vec![], outputs, state: vec![] }).unwrap();
}

/// Runs the notify stage until `done` holds (checked every 50 ms, for at most 60 s), then stops
/// it; returns the notifier's counters collected as text and the stage metrics.
fn run_until(
    log: Arc<dyn CentralLog>,
    config: &NotifyConfig,
    mut done: impl FnMut(&dyn CentralLog) -> bool,
) -> (String, Arc<StageMetrics>) {
    let stop = Arc::new(AtomicBool::new(false));
    let notifier = Notifier::start(config, stop.clone()).unwrap();
    let stage = notifier.stage(config, "alarms", "deadletter", stop.clone());
    let metrics = Arc::new(StageMetrics::default());
    let options = RunnerOptions { partitions: 1, tick: Duration::from_millis(50), ..Default::default() };
    let (l, m, s) = (log.clone(), metrics.clone(), stop.clone());
    let runner = std::thread::spawn(move || run_processor(l, Box::new(stage), options, m, s));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(log.as_ref()) {
        assert!(Instant::now() < deadline, "the notifier did not get there within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let registry = lux_metrics::Registry::new();
    registry.register(notifier.collector());
    let text = registry.render();
    stop.store(true, Ordering::Relaxed);
    runner.join().unwrap().unwrap();
    notifier.join();
    (text, metrics)
}

fn pending_entries(log: &dyn CentralLog) -> usize {
    log.load_state("alarm-notify").unwrap().iter().filter(|(k, _)| k.starts_with(b"pending/")).count()
}

fn committed(log: &dyn CentralLog, end: u64) -> bool {
    let tp = lux_log::TopicPartition { topic: "alarms".into(), partition: 0 };
    log.committed_offset("alarm-notify", &tp).unwrap().unwrap_or(0) >= end
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line_start} not in\n{text}"))
}

#[test]
fn webhook_records_are_delivered_at_least_once_through_failures_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn CentralLog> = Arc::new(EmbeddedLog::open(dir.path(), Durability::Group).unwrap());
    let alarms = vec![
        alarm("site-failures", "PAR-001", AlarmState::Raised, false, 60_000),
        alarm("site-failures", "LYO-002", AlarmState::Raised, true, 60_000),
        alarm("site-failures", "PAR-001", AlarmState::Updated, false, 70_000),
        alarm("malformed", "PAR-001", AlarmState::Raised, false, 70_000),
        alarm("site-failures", "PAR-001", AlarmState::Cleared, false, 80_000),
    ];
    write_alarms(log.as_ref(), &alarms, true);
    std::env::set_var("LUX_TEST_WEBHOOK_TOKEN", "s3cret");
    let server = Server::start(u64::MAX);
    let config = NotifyConfig {
        webhooks: vec![WebhookConfig {
            url: server.url("/hook"),
            bearer_token_env: Some("LUX_TEST_WEBHOOK_TOKEN".into()),
            headers: [("X-Team".to_owned(), "noc".to_owned())].into(),
        }],
        retry_max: Duration::from_millis(500),
        ..Default::default()
    };

    // The webhook is down: the stage reads and commits everything, keeping every record as a
    // pending delivery.
    let (text, metrics) = run_until(log.clone(), &config, |log| committed(log, 6) && pending_entries(log) == 5);
    assert!(server.received().is_empty());
    assert!(metric(&text, "lux_notify_failures_total{") >= 1.0, "{text}");
    assert_eq!(metrics.snapshot().dead_letters, 1, "the record that is not an alarm goes to the dead letters");

    // Restarted with the webhook up: the pending deliveries go out, in order, and are cleared.
    server.fail.store(2, Ordering::SeqCst);
    let (text, _) = run_until(log.clone(), &config, |log| pending_entries(log) == 0);
    let received = server.received();
    let expected: Vec<(String, String)> = alarms
        .iter()
        .filter(|a| a.rule != "malformed")
        .map(|a| (a.alarm_id.clone(), serde_json::to_value(a.state).unwrap().as_str().unwrap().to_owned()))
        .collect();
    let got: Vec<(String, String)> = received
        .iter()
        .map(|(_, _, body)| (body["alarm_id"].as_str().unwrap().to_owned(), body["state"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(got, expected, "every record once, in order (suppressed ones included, flagged)");
    assert!(received.iter().all(|(path, auth, _)| path == "/hook" && auth.as_deref() == Some("Bearer s3cret")));
    assert_eq!(received[1].2["intervention_id"], "INT-0001");
    assert_eq!(metric(&text, "lux_notify_failures_total{"), 2.0, "{text}");
    assert_eq!(metric(&text, "lux_notify_rejected_total{"), 1.0, "the malformed delivery is refused and dropped");
    assert_eq!(metric(&text, "lux_notify_delivered_total{"), 4.0);
    // The active set is what is still raised: LYO-002 and the malformed rule's alarm.
    let state = log.load_state("alarm-notify").unwrap();
    let active: Vec<String> = state.iter().map(|(k, _)| String::from_utf8_lossy(k).into_owned()).collect();
    assert_eq!(active, ["active/malformed/site=PAR-001", "active/site-failures/site=LYO-002"]);
}

#[test]
fn alertmanager_gets_active_alarms_as_active_and_clears_and_suppressions_as_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn CentralLog> = Arc::new(EmbeddedLog::open(dir.path(), Durability::Group).unwrap());
    let now = chrono::Utc::now().timestamp_millis();
    let alarms = vec![
        alarm("site-failures", "PAR-001", AlarmState::Raised, false, now - 20_000),
        alarm("site-failures", "LYO-002", AlarmState::Raised, true, now - 20_000),
        alarm("site-failures", "NCE-003", AlarmState::Raised, false, now - 20_000),
        // NCE-003 comes under an intervention while raised: resolved in Alertmanager.
        alarm("site-failures", "NCE-003", AlarmState::Updated, true, now - 15_000),
        alarm("site-failures", "PAR-001", AlarmState::Cleared, false, now - 10_000),
    ];
    write_alarms(log.as_ref(), &alarms, false);
    let server = Server::start(0);
    let config = NotifyConfig { alertmanager: vec![server.url("")], ..Default::default() };
    let (_, _) = run_until(log.clone(), &config, |log| committed(log, 5) && pending_entries(log) == 0);

    let alerts: Vec<serde_json::Value> = server
        .received()
        .into_iter()
        .inspect(|(path, _, _)| assert_eq!(path, "/api/v2/alerts"))
        .flat_map(|(_, _, body)| body.as_array().cloned().unwrap())
        .collect();
    let of = |site: &str| -> Vec<(bool, serde_json::Value)> {
        alerts
            .iter()
            .filter(|a| a["labels"]["site"] == site)
            .map(|a| {
                let ends = chrono::DateTime::parse_from_rfc3339(a["endsAt"].as_str().unwrap()).unwrap();
                (ends.timestamp_millis() > now + 60_000, a.clone())
            })
            .collect()
    };
    let par = of("PAR-001");
    assert!(par.first().is_some_and(|(active, _)| *active), "PAR-001 is first sent active: {par:?}");
    let (last_active, last) = par.last().unwrap();
    assert!(!last_active, "then resolved: {last}");
    assert_eq!(last["endsAt"], lux_model::format_rfc3339_millis(now - 10_000), "resolved when it cleared");
    assert_eq!(last["labels"]["alertname"], "site-failures");
    assert_eq!(last["labels"]["severity"], "major");
    assert!(of("LYO-002").is_empty(), "an alarm suppressed from its start is never sent");
    let nce = of("NCE-003");
    assert!(nce.first().is_some_and(|(active, _)| *active), "{nce:?}");
    assert!(!nce.last().unwrap().0, "suppressed while raised: resolved: {nce:?}");
    assert_eq!(nce.last().unwrap().1["annotations"]["intervention_id"], "INT-0001");
}
