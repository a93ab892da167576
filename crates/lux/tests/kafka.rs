//! The pipeline on a real Kafka-protocol broker (tansu, started by each test; `./scripts/test`
//! installs it): the stages run as separate `lux transform` and `lux alarm` processes, two of
//! each sharing 6 partitions as consumer groups, and one of each is stopped mid-stream. At the
//! end every input event is in `enriched` (read_committed) and the alarms are those of a
//! single-process run of the same input on the embedded log.
//!
//! After SIGTERM the stopped instances commit their batch in hand and leave their groups: every
//! event exactly once. After SIGKILL, the open transactions of the killed instances are aborted
//! (when their transaction times out, or when the survivor is fenced in): nothing is lost, but
//! tansu shows the records of aborted transactions to read_committed readers (it sends no
//! aborted-transaction list), so duplicates are counted and reported, and asserted absent only
//! where the broker hides aborted records (`LUX_KAFKA_HIDES_ABORTED=1`, e.g. Apache Kafka).
//!
//! The broker-outage test cuts the path to the broker for 10 s mid-stream (a proxy in front of
//! tansu): the stages wait, retry and finish by themselves, with the same result.

mod common;

use lux_log::kafka::testing::TansuBroker;
use lux_log::kafka::KafkaLog;
use lux_log::{CentralLog, KafkaConfig, StoredRecord};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 6;

/// These tests run one at a time: each starts a broker and five `lux` processes, and on two cores
/// two of them at once starve each other past their waits. (`cargo test` runs a binary's tests on
/// threads, hence the lock; nextest runs them as processes, serialised by the `kafka-pipeline`
/// group of `.config/nextest.toml`.)
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// 40 s of deterministic demo traffic with a site outage and an equipment outage.
fn pipeline_config(backend: &str) -> String {
    let incidents = r#"
[[generator.incidents]]
scope = "site"
start_after = "5s"
duration = "15s"

[[generator.incidents]]
scope = "equipment"
start_after = "24s"
duration = "10s"
"#;
    format!("{}\n[log]\npartitions = {PARTITIONS}\n{backend}", common::bounded_config(40, "20s", incidents))
}

/// The `[log]` keys for the broker, with short timeouts (tansu's first join of a group waits
/// half the session timeout) and the given `transaction_timeout`. `max_poll_interval` leaves
/// room for an instance that takes over partitions to restore their state: with the alarm
/// stage's 12 routed partitions that took about 10 s on tansu under the test command's load,
/// and an instance past the interval leaves its group and joins again.
fn kafka_section(broker: &TansuBroker, transaction_timeout: &str) -> String {
    format!(
        "backend = \"kafka\"\n[log.kafka]\nbrokers = \"{}\"\nsession_timeout = \"6s\"\nmax_poll_interval = \"30s\"\ntransaction_timeout = \"{transaction_timeout}\"\nrequest_timeout = \"10s\"\n",
        broker.brokers
    )
}

/// Event id -> how many times it is in the topic.
fn event_ids(partitions: &[Vec<StoredRecord>]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for record in partitions.iter().flatten() {
        let id = common::json(record)["event_id"].as_str().expect("an event id").to_owned();
        *ids.entry(id).or_default() += 1;
    }
    ids
}

/// An alarm record: (rule, group, window end, state).
type AlarmRecord = (String, String, String, String);

/// The alarm records with how many times each, in canonical form: the `updated` record that
/// gives the final counts of a window an alarm was raised on early is merged into its `raised`
/// record (whether a raise was early depends on timing; see README, Time and windows).
fn alarm_counts(partitions: &[Vec<StoredRecord>]) -> BTreeMap<AlarmRecord, usize> {
    let mut alarms = BTreeMap::new();
    for partition in partitions {
        let mut raised_on = std::collections::BTreeSet::new();
        for record in partition {
            let a = common::json(record);
            let text = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            let window = (text("rule"), text("group_key"), text("window_end"));
            match text("state").as_str() {
                "raised" => {
                    raised_on.insert(window.clone());
                }
                "updated" if raised_on.remove(&window) => continue,
                _ => {}
            }
            *alarms.entry((window.0, window.1, window.2, text("state"))).or_default() += 1;
        }
    }
    alarms
}

/// The single-process run of the same input on the embedded log: (event ids, alarms).
fn reference_run(dir: &Path) -> (BTreeMap<String, usize>, BTreeMap<AlarmRecord, usize>) {
    let config = dir.join("reference.toml");
    std::fs::write(&config, pipeline_config("")).unwrap();
    let data = dir.join("reference");
    let output = common::lux()
        .args(["run", "--until-done", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "reference run: {}", String::from_utf8_lossy(&output.stderr));
    let log = lux_log::embedded::EmbeddedLog::open_reader(&data).unwrap();
    let ids = event_ids(&common::read(&log, "enriched"));
    let alarms = alarm_counts(&common::read(&log, "alarms"));
    assert!(ids.len() > 50_000, "only {} events", ids.len());
    let states: std::collections::BTreeSet<&str> = alarms.keys().map(|k| k.3.as_str()).collect();
    assert_eq!(states.len(), 3, "the input should raise, update and clear alarms: {states:?}");
    (ids, alarms)
}

/// A `lux` process on the broker, its output in `<name>.log`, its `/metrics` on a port of its
/// own (written to `<name>.metrics`).
fn spawn(dir: &Path, config: &Path, name: &str, args: &[&str]) -> Child {
    let data: PathBuf = dir.join(name);
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    std::fs::write(dir.join(format!("{name}.metrics")), format!("http://{metrics}/metrics")).unwrap();
    common::lux()
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "warn,lux=info,lux_stage=info")
        .env("LUX_METRICS__LISTEN", metrics.to_string())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("lux starts")
}

/// The samples of a process's `/metrics` (`name{labels}` -> value), empty while it does not
/// answer.
fn scrape(dir: &Path, name: &str) -> BTreeMap<String, f64> {
    let Ok(url) = std::fs::read_to_string(dir.join(format!("{name}.metrics"))) else { return BTreeMap::new() };
    let Ok(mut response) = ureq::get(&url).call() else { return BTreeMap::new() };
    let text = response.body_mut().read_to_string().unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
        .collect()
}

/// A surviving instance's Kafka metrics, once its work is done: one committed transaction per
/// stage commit, none aborted, at least two assignments (its first, and the one that gave it
/// the stopped instance's partitions), no lag.
fn check_kafka_metrics(dir: &Path, name: &str, stages: &[&str]) {
    let m = scrape(dir, name);
    let get = |series: &str| m.get(series).copied().unwrap_or(-1.0);
    let stage_commits: f64 = stages.iter().map(|s| get(&format!("lux_stage_commits_total{{stage=\"{s}\"}}"))).sum();
    assert!(stage_commits > 0.0, "{name}: no stage commits in its metrics: {m:?}");
    assert_eq!(get("lux_kafka_transactions_total"), stage_commits, "{name}: a transaction per commit: {m:?}");
    assert_eq!(get("lux_kafka_aborts_total"), 0.0, "{name}: {m:?}");
    assert!(get("lux_kafka_assignments_total") >= 2.0 * stages.len() as f64, "{name}: {m:?}");
    assert!(get("lux_kafka_commit_seconds_sum") > 0.0, "{name}: {m:?}");
    for stage in stages {
        assert_eq!(get(&format!("lux_stage_lag_records{{stage=\"{stage}\"}}")), 0.0, "{name}: {stage} lags: {m:?}");
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    let status = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(status, 0, "kill({}, {signal})", child.id());
}

fn logs(dir: &Path) -> String {
    let mut text = String::new();
    for name in ["generator", "transform-1", "transform-2", "alarm-1", "alarm-2"] {
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        text.push_str(&format!("--- {name}\n{}\n", tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
    }
    text
}

/// The stage and Kafka metrics of every process that still answers, for a failure message: which
/// stage lags, how often it was assigned partitions, how many transactions it committed.
fn stage_metrics(dir: &Path) -> String {
    let mut text = String::new();
    for name in ["transform-1", "transform-2", "alarm-1", "alarm-2"] {
        let samples: Vec<String> = scrape(dir, name)
            .into_iter()
            .filter(|(k, _)| k.starts_with("lux_stage_") || k.starts_with("lux_kafka_"))
            .filter(|(k, _)| !k.contains("_bucket"))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !samples.is_empty() {
            text.push_str(&format!("--- {name} metrics\n{}\n", samples.join("\n")));
        }
    }
    text
}

/// Waits until `done` holds, failing with the processes' metrics and logs after `limit`.
fn wait_for(dir: &Path, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    wait_for_explained(dir, what, limit, || if done() { Ok(()) } else { Err(String::new()) })
}

/// [`wait_for`] of a condition that says what it still lacks (`Err`), said on failure.
fn wait_for_explained(dir: &Path, what: &str, limit: Duration, mut done: impl FnMut() -> Result<(), String>) {
    let started = Instant::now();
    loop {
        let lacking = match done() {
            Ok(()) => return,
            Err(lacking) => lacking,
        };
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?}; {lacking}\n{}{}",
            stage_metrics(dir),
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Committed records of a topic (Kafka's offsets count transaction markers too, so the records
/// themselves are counted); 0 while the topic cannot be read.
fn records(log: &dyn CentralLog, topic: &str) -> usize {
    common::try_read(log, topic).map_or(0, |partitions| partitions.iter().map(Vec::len).sum())
}

/// A test's setting: the expected results (of the single-process run), a broker holding the
/// generator's whole input in `raw`, and the config that points `lux` at it.
struct Setting {
    dir: tempfile::TempDir,
    expected_ids: BTreeMap<String, usize>,
    expected_alarms: BTreeMap<AlarmRecord, usize>,
    broker: TansuBroker,
    config: PathBuf,
    log: KafkaLog,
    raw: usize,
    /// Whether [`Setting::finish_and_compare`] checks the survivors' Kafka metrics.
    check_metrics_when_done: std::cell::Cell<bool>,
}

impl Setting {
    fn new(name: &str, broker: TansuBroker, transaction_timeout: &str) -> Setting {
        let dir = tempfile::tempdir().unwrap();
        eprintln!("{name} test directory: {}", dir.path().display());
        let (expected_ids, expected_alarms) = reference_run(dir.path());
        let config = dir.path().join("kafka.toml");
        std::fs::write(&config, pipeline_config(&kafka_section(&broker, transaction_timeout))).unwrap();
        let kafka = KafkaConfig { brokers: broker.brokers.clone(), ..KafkaConfig::default() };
        let log = KafkaLog::connect(&kafka, "").expect("the broker answers");

        // The equipment (the generator) sends everything into `raw` first.
        let mut generator = spawn(dir.path(), &config, "generator", &["run", "--only", "generator"]);
        let status = generator.wait().unwrap();
        assert!(status.success(), "the generator failed\n{}", logs(dir.path()));
        let raw = records(&log, "raw");
        assert_eq!(raw, expected_ids.len(), "the raw topic holds one record per event of the reference run");
        Setting {
            dir,
            expected_ids,
            expected_alarms,
            broker,
            config,
            log,
            raw,
            check_metrics_when_done: Default::default(),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&self, name: &str, args: &[&str]) -> Child {
        spawn(self.dir(), &self.config, name, args)
    }

    /// Waits until a third of the events are enriched.
    fn wait_for_a_third(&self) {
        wait_for(self.dir(), "a third of the events enriched", Duration::from_secs(120), || {
            records(&self.log, "enriched") >= self.raw / 3
        });
    }

    /// Waits for the `survivors` to finish the input, stops them, and compares the topics with
    /// the single-process run: every event, the same alarms, and duplicates as `duplicates` allows.
    fn finish_and_compare(&self, what: &str, survivors: &mut [&mut Child], duplicates: Duplicates) {
        let (dir, log) = (self.dir(), &self.log);
        // The survivors take over the partitions and finish: every event enriched, every window
        // evaluated (the alarm state is finished once the input is idle).
        wait_for(dir, "every event enriched", Duration::from_secs(300), || {
            common::try_read(log, "enriched").is_ok_and(|p| event_ids(&p).len() >= self.expected_ids.len())
        });
        wait_for_explained(dir, "the last windows evaluated", Duration::from_secs(240), || {
            let info = log.topic("alarm-routed").map_err(|e| format!("alarm-routed cannot be described: {e}"))?;
            // Partitions where the alarm group has committed records left to read. The end
            // counts the control records that close transactions, and more than one can follow
            // the last record: under load, tansu left two at the end of some partitions (a
            // read_committed reader went from the group's committed offset to the end and found
            // no record). So a committed offset short of the end is behind only if a record is
            // readable from it.
            let mut behind = Vec::new();
            for p in 0..info.partitions {
                let tp = lux_log::TopicPartition { topic: "alarm-routed".into(), partition: p };
                let end = info.end_offsets.get(p as usize).copied().unwrap_or(0);
                let committed = log.committed_offset("alarm", &tp).ok().flatten().unwrap_or(0);
                if committed + 1 >= end {
                    continue;
                }
                match log.fetch("alarm-routed", p, committed, 1) {
                    Ok(records) if records.is_empty() => {}
                    Ok(records) => {
                        behind.push(format!("{p}: committed {committed}, end {end}, record at {}", records[0].offset))
                    }
                    Err(e) => behind.push(format!("{p}: committed {committed}, end {end}, unreadable: {e}")),
                }
            }
            if !behind.is_empty() {
                return Err(format!("the alarm group has committed records of alarm-routed left to read: {behind:?}"));
            }
            if !lux_alarm::state_is_finished(&log.load_state("alarm").unwrap_or_default(), Duration::from_secs(5)) {
                return Err("the routed input is all read, and the alarm state has windows left open".into());
            }
            let alarms = common::try_read(log, "alarms").map(|p| alarm_counts(&p).len()).unwrap_or(0);
            if alarms < self.expected_alarms.len() {
                return Err(format!("{alarms} alarms of the {} expected", self.expected_alarms.len()));
            }
            Ok(())
        });
        if self.check_metrics_when_done.get() {
            // The metrics are published after each commit: the last ones within a tick.
            wait_for(dir, "the survivors' metrics to show no lag", Duration::from_secs(60), || {
                ["transform-2", "alarm-2"].iter().all(|name| {
                    scrape(dir, name).iter().any(|(k, v)| k.starts_with("lux_stage_lag_records") && *v == 0.0)
                })
            });
            check_kafka_metrics(dir, "transform-2", &["transform"]);
            check_kafka_metrics(dir, "alarm-2", &["alarm-route", "alarm"]);
        }
        for child in survivors.iter_mut() {
            signal(child, libc::SIGTERM);
            assert!(child.wait().unwrap().success(), "the survivors stop cleanly\n{}", logs(dir));
        }

        let ids = event_ids(&common::read(log, "enriched"));
        let lost: Vec<&String> = self.expected_ids.keys().filter(|id| !ids.contains_key(*id)).take(5).collect();
        assert!(lost.is_empty(), "events lost: {lost:?}");
        assert_eq!(ids.len(), self.expected_ids.len(), "events that the reference run does not have");
        let got_alarms = alarm_counts(&common::read(log, "alarms"));
        let missing: Vec<_> = self.expected_alarms.keys().filter(|k| !got_alarms.contains_key(*k)).take(5).collect();
        assert!(missing.is_empty(), "alarms missing: {missing:?}");
        let extra: Vec<_> = got_alarms.keys().filter(|k| !self.expected_alarms.contains_key(*k)).take(5).collect();
        assert!(extra.is_empty(), "alarms the reference run does not have: {extra:?}");
        let duplicated_events = ids.values().filter(|&&n| n > 1).count();
        let duplicated_alarms = got_alarms.values().filter(|&&n| n > 1).count();
        eprintln!(
            "{what}: {} events, {} alarm records; duplicated: {duplicated_events} events, {duplicated_alarms} alarms",
            ids.len(),
            got_alarms.len()
        );
        let mut aborted = 0;
        for name in ["transform-1", "transform-2", "alarm-1", "alarm-2"] {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            let count = |word: &str| log.lines().filter(|l| l.contains(word)).count();
            aborted += count("aborted");
            if !log.is_empty() {
                eprintln!(
                    "  {name}: {} warnings ({} retries, {} aborted, {} fenced)",
                    count("WARN"),
                    count("retrying"),
                    count("aborted"),
                    count("fenced")
                );
            }
        }
        let duplicated = duplicated_events + duplicated_alarms;
        match duplicates {
            Duplicates::None => {
                assert_eq!(duplicated_events, 0, "events duplicated");
                assert_eq!(duplicated_alarms, 0, "alarms duplicated");
            }
            Duplicates::FromAbortedTransactions => assert!(
                duplicated == 0 || aborted > 0,
                "{duplicated} records duplicated, and no transaction was aborted\n{}",
                logs(dir)
            ),
            Duplicates::Reported => {}
        }
    }
}

/// What a test accepts of duplicated records.
#[derive(Clone, Copy)]
enum Duplicates {
    /// None.
    None,
    /// Only if a transaction was aborted (tansu shows aborted transactions' records).
    FromAbortedTransactions,
    /// Any number (a killed instance's open transaction, which tansu never aborts): reported.
    Reported,
}

/// Whether the broker hides aborted transactions from read_committed readers (tansu does not;
/// set `LUX_KAFKA_HIDES_ABORTED=1` for a broker that does, such as Apache Kafka).
fn broker_hides_aborted() -> bool {
    std::env::var("LUX_KAFKA_HIDES_ABORTED").is_ok_and(|v| v == "1")
}

fn scale_out(stop_signal: libc::c_int) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let setting = Setting::new("scale-out", TansuBroker::start().expect("tansu starts"), "10s");
    let dir = setting.dir();

    let mut transforms = [setting.spawn("transform-1", &["transform"]), setting.spawn("transform-2", &["transform"])];
    let mut alarms = [setting.spawn("alarm-1", &["alarm"]), setting.spawn("alarm-2", &["alarm"])];

    // Mid-stream: a third of the events are enriched; one instance of each stage goes.
    setting.wait_for_a_third();
    signal(&transforms[0], stop_signal);
    signal(&alarms[0], stop_signal);
    let stopped_transform = transforms[0].wait().unwrap();
    let stopped_alarm = alarms[0].wait().unwrap();
    if stop_signal == libc::SIGTERM {
        assert!(stopped_transform.success() && stopped_alarm.success(), "SIGTERM stops cleanly\n{}", logs(dir));
    }

    let [_, transform] = &mut transforms;
    let [_, alarm] = &mut alarms;
    if stop_signal == libc::SIGTERM {
        setting.check_metrics_when_done.set(true);
    }
    let what = if stop_signal == libc::SIGTERM { "scale-out (SIGTERM)" } else { "scale-out (SIGKILL)" };
    let duplicates =
        if stop_signal == libc::SIGTERM || broker_hides_aborted() { Duplicates::None } else { Duplicates::Reported };
    setting.finish_and_compare(what, &mut [transform, alarm], duplicates);
}

#[test]
fn two_instances_of_each_stage_share_the_work_and_one_stops_with_sigterm() {
    scale_out(libc::SIGTERM);
}

/// Ignored on tansu: a SIGKILLed instance leaves its transaction open, and tansu never expires
/// open transactions (`transaction_timeout` passes and nothing happens) nor hides their records.
/// Against tansu this test passed in one run of three; in the others the survivors stalled
/// (once on two `raw` partitions the killed transform had owned, once before the last alarm
/// windows), although librdkafka's committed-offset fetch answered at once ("0 unstable
/// partitions") and a plain read-process-write loop of librdkafka 2.12 survives the same kill on
/// tansu. The stall before the last alarm windows may have been this file's own wait, fixed
/// since (see `finish_and_compare`); the stall on `raw` is tansu's open transaction. On
/// 2026-11-28, with each transaction committing beside the stage's next batch, it passed 5 runs
/// of 5 against tansu on an idle machine (86 to 99 s); too few to put it back in the test
/// command. Run it with `cargo nextest run -p lux --test kafka --run-ignored ignored-only`, and
/// against a broker that expires transactions (`LUX_KAFKA_HIDES_ABORTED=1`).
#[test]
#[ignore = "tansu never expires the open transaction of a killed instance; the survivors stall in 2 runs of 3"]
fn two_instances_of_each_stage_share_the_work_and_one_is_sigkilled() {
    scale_out(libc::SIGKILL);
}

/// The path to the broker is cut for 10 seconds mid-stream, then restored: the stages wait,
/// retry and carry on by themselves; every event is enriched and the alarms are those of the
/// single-process run. `transaction_timeout` is longer than the outage, as in production, so the
/// open transaction is usually completed after the outage rather than aborted (exactly once);
/// when librdkafka gives up on it (1 run in 4 here) it is aborted and its batch redone, and
/// tansu then shows the aborted records: duplicates are asserted absent where the broker hides
/// aborted transactions, and otherwise allowed only when a transaction was aborted.
///
/// Ignored in the test command until 2026-11-27: in a clean CI run the alarm stage had "not
/// finished" 120 s after the cut. That was this test's own wait (see `finish_and_compare`: more
/// than one control record can follow the last routed record, and no committed offset passes
/// them); with it fixed, the test passed 4 runs of 4 with a CPU hog and a fuzzer on the 2-core
/// VM, every run exactly once (no transaction aborted).
#[test]
fn a_broker_outage_of_ten_seconds_loses_nothing_and_the_stages_recover() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let broker = TansuBroker::start_behind_proxy().expect("tansu starts");
    let setting = Setting::new("broker-outage", broker, "60s");
    let mut transform = setting.spawn("transform-1", &["transform"]);
    let mut alarm = setting.spawn("alarm-1", &["alarm"]);
    setting.wait_for_a_third();
    let proxy = setting.broker.proxy().expect("the broker is behind a proxy");
    proxy.cut();
    std::thread::sleep(Duration::from_secs(10));
    proxy.restore();
    eprintln!("the path to the broker is restored");
    assert!(
        transform.try_wait().unwrap().is_none() && alarm.try_wait().unwrap().is_none(),
        "the stages outlive the outage\n{}",
        logs(setting.dir())
    );
    let duplicates = if broker_hides_aborted() { Duplicates::None } else { Duplicates::FromAbortedTransactions };
    setting.finish_and_compare("broker outage", &mut [&mut transform, &mut alarm], duplicates);
}
