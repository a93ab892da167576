//! Alarms across a SIGKILL of a real `lux run` on the embedded log, landing after an alarm was
//! raised and before it cleared: the restarted run neither repeats nor loses an alarm record.
//! The alarms topic is compared, partition by partition, with an uninterrupted run's, in the
//! canonical form (`common::canonical_alarms`) that does not depend on arrival order.

mod common;

use common::{canonical_alarms, json, read};
use lux_log::embedded::EmbeddedLog;
use lux_log::CentralLog;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// 90 s of traffic with a site outage from 5 s to 35 s: its alarm stays raised for a while.
fn config() -> String {
    let incidents = r#"
[[generator.incidents]]
scope = "site"
start_after = "5s"
duration = "30s"
"#;
    common::bounded_config(90, "5s", incidents)
}

fn lux(config: &Path, data_dir: &Path, log: &Path) -> Child {
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    common::lux()
        .args(["run", "--until-done", "--config"])
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

/// A `lux run` killed when the test ends, whatever happens to it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn finish(child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            assert!(status.success(), "lux run failed ({status}); its log:\n{text}");
            return;
        }
        assert!(Instant::now() < deadline, "lux run --until-done did not finish; its log: {}", log.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every alarm record committed so far, per partition (empty before the topic exists).
fn alarms(data_dir: &Path) -> Vec<Vec<serde_json::Value>> {
    let Ok(log) = EmbeddedLog::open_reader(data_dir) else { return Vec::new() };
    if log.topic("alarms").is_err() {
        return Vec::new();
    }
    read(&log, "alarms").iter().map(|p| p.iter().map(json).collect()).collect()
}

/// The ids of the alarms raised and not (yet) cleared in `alarms`.
fn open_alarms(alarms: &[Vec<serde_json::Value>]) -> BTreeSet<String> {
    let mut open = BTreeSet::new();
    for alarm in alarms.iter().flatten() {
        let id = alarm["alarm_id"].as_str().unwrap_or_default().to_owned();
        match alarm["state"].as_str() {
            Some("raised") => open.insert(id),
            Some("cleared") => open.remove(&id),
            _ => false,
        };
    }
    open
}

#[test]
fn a_sigkill_between_raise_and_clear_neither_repeats_nor_loses_an_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("lux.toml");
    std::fs::write(&config_path, config()).unwrap();

    let (reference_dir, reference_log) = (dir.path().join("reference"), dir.path().join("reference.log"));
    finish(&mut Running(lux(&config_path, &reference_dir, &reference_log)).0, &reference_log);
    let expected = alarms(&reference_dir);
    let site_alarms: Vec<&serde_json::Value> =
        expected.iter().flatten().filter(|a| a["rule"] == "site-failures").collect();
    assert!(
        site_alarms.iter().any(|a| a["state"] == "raised") && site_alarms.iter().any(|a| a["state"] == "cleared"),
        "the outage must raise and clear a site alarm: {site_alarms:#?}"
    );

    // The crashing run: killed as soon as an alarm is raised and not cleared in the committed log.
    let (crashed_dir, crashed_log) = (dir.path().join("crashed"), dir.path().join("crashed.log"));
    let mut running = Running(lux(&config_path, &crashed_dir, &crashed_log));
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(running.0.try_wait().expect("wait").is_none(), "lux run ended before any alarm was raised");
        assert!(Instant::now() < deadline, "no alarm raised within 10 minutes");
        if !open_alarms(&alarms(&crashed_dir)).is_empty() {
            running.0.kill().expect("SIGKILL");
            running.0.wait().expect("reaped");
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let at_kill = alarms(&crashed_dir);
    let open_at_kill = open_alarms(&at_kill);
    assert!(!open_at_kill.is_empty(), "the kill landed between a raise and its clear");
    let records_at_kill: usize = at_kill.iter().map(Vec::len).sum();
    eprintln!("killed with {records_at_kill} alarm records committed, open: {open_at_kill:?}");

    let restart_log = dir.path().join("restarted.log");
    finish(&mut Running(lux(&config_path, &crashed_dir, &restart_log)).0, &restart_log);
    let got = alarms(&crashed_dir);

    // No repeated alarm: one raise and at most one clear per alarm id.
    let mut per_alarm: BTreeMap<(String, String), usize> = BTreeMap::new();
    for alarm in got.iter().flatten() {
        if alarm["state"] != "updated" {
            let key = (alarm["alarm_id"].as_str().unwrap_or_default().to_owned(), alarm["state"].to_string());
            *per_alarm.entry(key).or_default() += 1;
        }
    }
    let repeated: Vec<_> = per_alarm.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "alarm records repeated by the restart: {repeated:?}");
    // The alarms open at the kill were cleared after the restart, as in the uninterrupted run.
    for id in &open_at_kill {
        assert!(
            got.iter().flatten().any(|a| a["alarm_id"] == id.as_str() && a["state"] == "cleared"),
            "{id} never cleared"
        );
    }
    // Nothing lost, nothing added: the uninterrupted run's alarms, partition by partition.
    assert_eq!(got.len(), expected.len());
    for (partition, (got, want)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(canonical_alarms(got), canonical_alarms(want), "alarms of partition {partition}");
    }
}
