//! Helpers shared by the end-to-end tests of the `lux` binary: the command itself, a bounded
//! pipeline config, and reading a topic of the embedded log back.

// Each test file uses its own share of these.
#![allow(dead_code)]

use lux_log::{CentralLog, StoredRecord};
use std::process::Command;

/// The `lux` binary, independent of the caller's environment (no `LUX_*` overrides).
pub fn lux() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lux"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LUX_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A pipeline on `seconds` of unpaced, deterministic generated traffic (with `incidents`, TOML
/// `[[generator.incidents]]` tables), whose two alarm rules raise, update and clear within it;
/// the QoE stage goes idle after the same `idle_timeout` as the alarm stage.
pub fn bounded_config(seconds: u64, idle_timeout: &str, incidents: &str) -> String {
    format!(
        r#"
[generator]
start = "2026-01-05T10:00:00Z"
duration = "{seconds}s"
realtime = false
{incidents}
[transform]
subscriber_key = "end-to-end-test-subscriber-key-0123456789"

[alarm]
idle_timeout = "{idle_timeout}"

[qoe]
idle_timeout = "{idle_timeout}"

# A site's events come from many partitions: `next_window` makes its alarms the same however
# they interleave, which the tests comparing two runs (replay, restarts, Kafka) rely on.
[[alarm.rules]]
name = "site-failures"
group_by = ["site"]
threshold = 100
window = "20s"
slide = "5s"
early_firing = "next_window"

[[alarm.rules]]
name = "equipment-failures"
group_by = ["equipment"]
threshold = 4
window = "10s"
slide = "2s"

[run]
summary_interval = "0s"
"#
    )
}

/// Every record of a topic, per partition in offset order (read_committed on Kafka).
pub fn read(log: &dyn CentralLog, topic: &str) -> Vec<Vec<StoredRecord>> {
    try_read(log, topic).unwrap_or_else(|e| panic!("reading topic {topic}: {e}"))
}

/// [`read`], with the log's error (a broker unreachable for a while, say) instead of a panic.
pub fn try_read(log: &dyn CentralLog, topic: &str) -> Result<Vec<Vec<StoredRecord>>, lux_log::LogError> {
    let info = log.topic(topic)?;
    let mut partitions = Vec::new();
    for p in 0..info.partitions {
        let mut records = Vec::new();
        let mut from = info.start_offsets[p as usize];
        loop {
            let batch = log.fetch(topic, p, from, 10_000)?;
            let Some(last) = batch.last() else { break };
            from = last.offset + 1;
            records.extend(batch);
        }
        partitions.push(records);
    }
    Ok(partitions)
}

/// A record's value as JSON.
pub fn json(record: &StoredRecord) -> serde_json::Value {
    serde_json::from_slice(&record.value).expect("records are JSON")
}

/// The records' JSON values, per partition.
pub fn values(log: &dyn CentralLog, topic: &str) -> Vec<Vec<serde_json::Value>> {
    read(log, topic).iter().map(|p| p.iter().map(json).collect()).collect()
}

/// One partition's alarm records in the form that does not depend on when events arrived:
/// sorted by (window end, rule, group), each group's in their order, and a `raised` record made
/// on an open window (early firing, with the counts so far) merged with the `updated` record
/// that gave that window's final counts when it closed.
pub fn canonical_alarms(alarms: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut sorted: Vec<&serde_json::Value> = alarms.iter().collect();
    let key = |a: &serde_json::Value| {
        (
            a["window_end"].as_str().unwrap_or_default().to_owned(),
            a["rule"].as_str().unwrap_or_default().to_owned(),
            a["group_key"].as_str().unwrap_or_default().to_owned(),
        )
    };
    sorted.sort_by_key(|a| key(a));
    let mut out: Vec<serde_json::Value> = Vec::with_capacity(sorted.len());
    for alarm in sorted {
        if let Some(last) = out.last_mut() {
            let same_window = last["alarm_id"] == alarm["alarm_id"] && last["window_end"] == alarm["window_end"];
            if same_window && last["state"] == "raised" && alarm["state"] == "updated" {
                let mut merged = alarm.clone();
                merged["state"] = "raised".into();
                *last = merged;
                continue;
            }
        }
        out.push(alarm.clone());
    }
    out
}
