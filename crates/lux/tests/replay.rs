//! `lux replay` end to end: a replay of a live run's raw topic gives the live run's enriched
//! events and dead letters, record for record, and its alarms in canonical form; a replay from
//! a time starts at the first record of that time in each partition; the live topics are
//! untouched.

mod common;

use common::{read, values};
use lux_log::embedded::EmbeddedLog;
use std::path::Path;
use std::process::Output;

/// 40 s of traffic with one site incident.
fn pipeline_config() -> String {
    let incidents = r#"
[[generator.incidents]]
scope = "site"
start_after = "5s"
duration = "15s"
"#;
    common::bounded_config(40, "3s", incidents)
}

fn lux(args: &[&str], config: &Path, data_dir: &Path) -> Output {
    let output = common::lux()
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("lux runs");
    assert!(
        output.status.success(),
        "lux {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn replay_reproduces_the_live_run_and_starts_at_the_right_offset_for_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = (dir.path().join("lux.toml"), dir.path().join("data"));
    std::fs::write(&config, pipeline_config()).unwrap();
    lux(&["run", "--until-done"], &config, &data);

    // The whole raw topic.
    let output = lux(&["replay", "--output-prefix", "replay1."], &config, &data);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lux replay:"), "{stderr}");
    let log = EmbeddedLog::open_reader(&data).unwrap();
    let raw = read(&log, "raw");
    let live = values(&log, "enriched");
    let raw_counts: Vec<usize> = raw.iter().map(Vec::len).collect();
    assert!(raw_counts.iter().sum::<usize>() > 50_000, "{raw_counts:?}");
    // The demo traffic makes one event per raw record, each in the partition of its sender.
    assert_eq!(live.iter().map(Vec::len).collect::<Vec<_>>(), raw_counts);
    assert!(values(&log, "replay1.enriched") == live, "the replayed events differ from the live ones");
    let alarms = values(&log, "alarms");
    let states: std::collections::BTreeSet<&str> =
        alarms.iter().flatten().filter_map(|a| a["state"].as_str()).collect();
    assert_eq!(states.len(), 3, "the input should raise, update and clear alarms: {states:?}");
    // In canonical form: a raise made early carries the counts its window had when the
    // threshold was reached, which depends on when the watermark moved (see README, Time and
    // windows); its window's final counts follow.
    let canonical = |partitions: Vec<Vec<serde_json::Value>>| -> Vec<_> {
        partitions.iter().map(|p| common::canonical_alarms(p)).collect()
    };
    assert_eq!(canonical(values(&log, "replay1.alarms")), canonical(alarms.clone()));
    assert_eq!(values(&log, "replay1.deadletter"), values(&log, "deadletter"));
    // The live topics and groups are untouched.
    assert_eq!(read(&log, "raw"), raw);
    assert_eq!(values(&log, "enriched"), live);
    drop(log);

    // The same prefix again is refused: the replay would mix with the first one.
    let again = common::lux()
        .args(["replay", "--output-prefix", "replay1.", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("choose another --output-prefix"));

    // From a time: each partition starts at the first record stamped at or after it.
    let from = "2026-01-05T10:00:25Z";
    let from_ms = lux_generate::parse_rfc3339_ms(from).unwrap();
    lux(&["replay", "--from", from, "--output-prefix", "replay2."], &config, &data);
    let log = EmbeddedLog::open_reader(&data).unwrap();
    let replayed = values(&log, "replay2.enriched");
    for (p, records) in raw.iter().enumerate() {
        let start = live[p].len() - replayed[p].len();
        assert!(start > 0 && start < records.len(), "partition {p} starts at {start}");
        // A boundary: the record before is older, the first one is not.
        assert!(records[start - 1].timestamp_ms < from_ms && records[start].timestamp_ms >= from_ms);
        // Only the few records sent late (after younger ones) may be on the wrong side of it.
        let misplaced = records[..start].iter().filter(|r| r.timestamp_ms >= from_ms).count()
            + records[start..].iter().filter(|r| r.timestamp_ms < from_ms).count();
        assert!(misplaced * 100 < records.len(), "partition {p}: {misplaced} records on the wrong side");
        // The replayed events are exactly the live events of those records.
        assert!(replayed[p] == live[p][start..], "partition {p}: the replay from {from} differs");
    }
}
