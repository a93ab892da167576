//! The crash harness: `lux run` on a bounded, deterministic generated input, SIGKILLed at random
//! moments and restarted, must end with exactly the topics of an uninterrupted run: every input
//! event exactly once in `enriched` (by `event_id`, with the same content), and the same alarms
//! and dead letters, record for record. A few undecodable records are put in `raw` before the
//! runs, so that there are dead letters to compare.
//!
//! The uninterrupted run goes first; its event count places the mid-stream kills: kill `i` of `n`
//! lands once about i/n of the events are committed, so the kills spread over the whole input
//! whatever the machine's speed. A quarter of the kills land at start-up instead (opening the
//! log, recovery). CI runs 20 kills. The long version (`scripts/crash [KILLS]`) sets `LUX_CRASH_KILLS` (and
//! `LUX_CRASH_SEED` to replay the kill moments of an earlier run; the seed is printed).

mod common;

use common::{json, read};
use lux_log::embedded::EmbeddedLog;
use lux_log::{CentralLog, Commit, OutputRecord, StoredRecord};
use lux_model::{Format, RawRecord};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The bounded input and a pipeline whose alarms raise, update and clear within it.
fn config(seconds: u64) -> String {
    let incidents = r#"
[[generator.incidents]]
scope = "site"
start_after = "5s"
duration = "20s"

[[generator.incidents]]
scope = "equipment"
start_after = "30s"
duration = "15s"
"#;
    common::bounded_config(seconds, "10s", incidents)
}

/// Records no decoder accepts, written into `raw` before the first run (the demo traffic has
/// none), so that the dead letters compared are not an empty list.
const BAD_RECORDS: usize = 24;

fn seed_bad_records(data_dir: &Path) {
    let log = EmbeddedLog::open(data_dir, lux_log::Durability::Group).expect("the log opens");
    log.ensure_topic("raw", 3).expect("raw topic");
    let start = lux_generate::parse_rfc3339_ms("2026-01-05T10:00:00Z").unwrap();
    let outputs = (0..BAD_RECORDS)
        .map(|i| {
            let value = if i % 2 == 0 {
                format!("not a raw record {i}").into_bytes()
            } else {
                let packet = vec![4, i as u8, 0]; // an Accounting-Request cut after 3 bytes
                serde_json::to_vec(&RawRecord::new("demo", Format::Radius, start, None, packet)).unwrap()
            };
            OutputRecord {
                topic: "raw".into(),
                key: format!("bng-{i}").into_bytes(),
                timestamp_ms: start,
                value,
                decoded: None,
            }
        })
        .collect();
    log.commit(Commit { group: "crash-test".into(), outputs, ..Default::default() }).expect("commit");
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, got {value:?}")))
}

fn lux(config: &Path, data_dir: &Path, log: &Path) -> Child {
    let mut cmd = common::lux();
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    cmd.args(["run", "--until-done", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("lux run starts")
}

/// Waits until the run's log says its stages run (or it exited, or 60 s passed).
fn wait_for_stages(log: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
        if std::fs::read_to_string(log).is_ok_and(|text| text.contains("stage(s) on the embedded log")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the run has committed at least `events` enriched events (or it exited, or 120 s
/// passed).
fn wait_for_events(data_dir: &Path, events: u64, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut reader = None;
    while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
        // One reader for the whole wait: it follows the journal as the run commits.
        if reader.is_none() {
            reader = EmbeddedLog::open_reader(data_dir).ok();
        }
        let committed = reader.as_ref().and_then(|log| log.topic("enriched").ok());
        if committed.is_some_and(|topic| topic.record_count() >= events) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A `lux run` killed when the test ends, whatever happens to it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit by itself (at most `limit`) and asserts that it succeeded.
fn finish(Running(child): &mut Running, limit: Duration, log: &Path) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            assert!(status.success(), "lux run failed ({status}); its log {}:\n{text}", log.display());
            return;
        }
        if Instant::now() > deadline {
            panic!("lux run --until-done did not finish within {limit:?}; its log: {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the comparison looks at, from one data directory.
struct Outcome {
    raw: Vec<Vec<StoredRecord>>,
    /// event_id -> (times seen, content as written).
    enriched: BTreeMap<String, (usize, Vec<u8>)>,
    enriched_count: usize,
    alarms: Vec<Vec<serde_json::Value>>,
    qoe: Vec<Vec<serde_json::Value>>,
    dead_letters: Vec<Vec<serde_json::Value>>,
}

fn outcome(data_dir: &Path) -> Outcome {
    let log = EmbeddedLog::open_reader(data_dir).expect("the log opens");
    let raw = read(&log, "raw");
    let mut enriched: BTreeMap<String, (usize, Vec<u8>)> = BTreeMap::new();
    let mut enriched_count = 0;
    for record in read(&log, "enriched").into_iter().flatten() {
        let id = json(&record)["event_id"].as_str().expect("event_id").to_owned();
        enriched.entry(id).or_insert((0, record.value)).0 += 1;
        enriched_count += 1;
    }
    let values = |topic: &str| -> Vec<Vec<serde_json::Value>> {
        read(&log, topic).iter().map(|p| p.iter().map(json).collect()).collect()
    };
    Outcome {
        raw,
        enriched,
        enriched_count,
        alarms: values("alarms"),
        qoe: values("qoe"),
        dead_letters: values("deadletter"),
    }
}

/// Records in each topic so far (where the kill landed).
fn progress(data_dir: &Path) -> String {
    let Ok(log) = EmbeddedLog::open_reader(data_dir) else { return "no log yet".into() };
    let Ok(topics) = log.topics() else { return "no topics yet".into() };
    topics.iter().map(|t| format!("{} {}", t.name, t.record_count())).collect::<Vec<_>>().join(", ")
}

#[test]
fn sigkilled_runs_end_like_an_uninterrupted_one() {
    let kills = env_number("LUX_CRASH_KILLS").unwrap_or(20) as usize;
    let seed = env_number("LUX_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7)
    });
    // Enough input for each kill to land while records flow (the pipeline commits about 100,000
    // events/s here even in a debug build); more kills get a longer input.
    let seconds = (kills as u64 * 12).max(240);
    eprintln!("crash harness: {kills} kills, seed {seed} (LUX_CRASH_SEED={seed} replays the kill moments), {seconds}s of traffic");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("lux.toml");
    std::fs::write(&config_path, config(seconds)).unwrap();
    // Generous: on a loaded machine the pipeline may run at a few thousand events/s.
    let limit = Duration::from_secs(600 + seconds * 5);

    // Two data directories: the uninterrupted run and the crashing one.
    let (reference_dir, reference_log) = (dir.path().join("reference"), dir.path().join("reference.log"));
    let crashed_dir: PathBuf = dir.path().join("crashed");
    seed_bad_records(&reference_dir);
    seed_bad_records(&crashed_dir);
    // The uninterrupted run first: its event count spreads the kills over the whole input.
    finish(&mut Running(lux(&config_path, &reference_dir, &reference_log)), limit, &reference_log);
    let expected = outcome(&reference_dir);
    let events = expected.enriched_count as u64;

    let mut killed = 0;
    let mut finished_early = 0;
    for leg in 0..kills {
        let log = dir.path().join(format!("crashed-{leg}.log"));
        let mut child = lux(&config_path, &crashed_dir, &log);
        // A quarter of the kills land anywhere from the start (opening the log, recovery, writing
        // the demo referential); the others mid-stream, kill `leg` once the enriched topic holds
        // about leg/kills of the input's events, so that they spread over the whole input
        // whatever the machine's speed.
        let started = Instant::now();
        if rng.gen_range(0..4) > 0 {
            wait_for_stages(&log, &mut child);
            let point = events * (leg as u64 * 1000 + rng.gen_range(0..1000)) / (kills as u64 * 1000);
            wait_for_events(&crashed_dir, point, &mut child);
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..50)));
        } else {
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..1500)));
        }
        let delay = started.elapsed();
        match child.try_wait().expect("wait") {
            None => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reaped");
                killed += 1;
                eprintln!("kill {killed:>3} after {:>5.2}s: {}", delay.as_secs_f64(), progress(&crashed_dir));
            }
            Some(status) => {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                assert!(status.success(), "lux run (leg {leg}) failed ({status}) before its kill:\n{text}");
                finished_early += 1;
            }
        }
    }
    let last_log = dir.path().join("crashed-last.log");
    finish(&mut Running(lux(&config_path, &crashed_dir, &last_log)), limit, &last_log);
    eprintln!("crash harness: {killed} SIGKILLs ({finished_early} runs finished before their kill)");
    assert!(killed >= kills.min(20), "only {killed} of {kills} runs were still running when killed");

    let crashed = outcome(&crashed_dir);
    let raw_count: usize = expected.raw.iter().map(Vec::len).sum();
    assert!(raw_count > 50_000, "the input is too small to mean anything: {raw_count} raw records");
    // The generator resumed exactly where its last commit left it: the same raw topic.
    assert_eq!(
        crashed.raw.iter().map(Vec::len).collect::<Vec<_>>(),
        expected.raw.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(crashed.raw == expected.raw, "the raw topics differ");

    // Every input event exactly once, with the same content.
    let duplicated: Vec<_> = crashed.enriched.iter().filter(|(_, (n, _))| *n > 1).take(5).collect();
    assert!(duplicated.is_empty(), "events duplicated by the crashes: {duplicated:?}");
    assert_eq!(expected.enriched_count, expected.enriched.len(), "the uninterrupted run has duplicate event ids");
    let missing: Vec<_> = expected.enriched.keys().filter(|id| !crashed.enriched.contains_key(*id)).take(5).collect();
    assert!(missing.is_empty(), "events lost by the crashes (of {}): {missing:?}", expected.enriched.len());
    assert_eq!(crashed.enriched.len(), expected.enriched.len(), "events that the uninterrupted run does not have");
    for (id, (_, value)) in &expected.enriched {
        assert!(&crashed.enriched[id].1 == value, "event {id} differs");
    }
    assert!(expected.enriched.len() >= raw_count - BAD_RECORDS, "fewer events than raw records");

    // The same alarms and dead letters, record for record, in the same order per partition (the
    // alarms in canonical form: a raise made early carries the counts its window had when the
    // threshold was reached, which depends on arrival; its window's final counts follow).
    let alarms: usize = expected.alarms.iter().map(Vec::len).sum();
    let states: std::collections::BTreeSet<&str> =
        expected.alarms.iter().flatten().filter_map(|a| a["state"].as_str()).collect();
    assert!(alarms >= 5 && states.len() == 3, "the input should raise, update and clear alarms: {states:?}");
    for (partition, (want, got)) in expected.alarms.iter().zip(&crashed.alarms).enumerate() {
        let (want, got) = (common::canonical_alarms(want), common::canonical_alarms(got));
        assert_eq!(got.len(), want.len(), "alarms of partition {partition}: {got:#?}\nexpected {want:#?}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "alarms of partition {partition} differ");
        }
    }
    assert_eq!(crashed.alarms.len(), expected.alarms.len());
    // The same QoE indicators: no minute repeated or lost by the crashes.
    let indicators: usize = expected.qoe.iter().map(Vec::len).sum();
    assert!(indicators > 1_000, "the input should give indicators for every dimension: {indicators}");
    for (partition, (want, got)) in expected.qoe.iter().zip(&crashed.qoe).enumerate() {
        assert_eq!(got.len(), want.len(), "qoe records of partition {partition}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g, w, "qoe records of partition {partition} differ");
        }
    }
    let dead_letters: usize = expected.dead_letters.iter().map(Vec::len).sum();
    assert_eq!(dead_letters, BAD_RECORDS, "each bad record is one dead letter");
    assert_eq!(crashed.dead_letters, expected.dead_letters, "dead letters differ");
    eprintln!(
        "crash harness: {raw_count} raw records, {} events, {alarms} alarms, {indicators} qoe indicators, {} dead letters: identical",
        expected.enriched.len(),
        expected.dead_letters.iter().map(Vec::len).sum::<usize>()
    );
}
