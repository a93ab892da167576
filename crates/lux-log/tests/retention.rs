//! Retention of the embedded log by size and by age: whole old segments go, the start offsets
//! say so, fetches below the start begin at the start.

use lux_log::embedded::{EmbeddedLog, EmbeddedOptions};
use lux_log::{CentralLog, Commit, Durability, OutputRecord};
use std::time::Duration;

fn commit(log: &EmbeddedLog, first: u64, n: u64, timestamp_ms: i64) {
    let outputs = (first..first + n)
        .map(|_| OutputRecord {
            topic: "t".into(),
            key: b"k".to_vec(),
            timestamp_ms,
            value: vec![b'v'; 200],
            decoded: None,
        })
        .collect();
    log.commit(Commit { group: "g".into(), outputs, ..Default::default() }).unwrap();
}

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        segment_bytes: 16 << 10,
        retention_interval: Duration::ZERO,
        ..EmbeddedOptions::new(Durability::Group)
    }
}

fn segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("topics/t/0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count()
}

#[test]
fn retention_by_size_deletes_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { retention_bytes: Some(64 << 10), ..options() };
    let log = EmbeddedLog::open_with(dir.path(), options.clone()).unwrap();
    log.ensure_topic("t", 1).unwrap();
    for i in 0..100 {
        commit(&log, i * 20, 20, 1_000);
    }
    let info = log.topic("t").unwrap();
    assert_eq!(info.end_offsets, vec![2000]);
    let start = info.start_offsets[0];
    assert!(start > 0, "old segments were deleted");
    let kept_bytes: u64 = std::fs::read_dir(dir.path().join("topics/t/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!((64 << 10..(64 << 10) + 2 * (16 << 10) + 8192).contains(&kept_bytes), "{kept_bytes}");
    // A fetch below the start begins at the start.
    let records = log.fetch("t", 0, 0, 5).unwrap();
    assert_eq!(records[0].offset, start);
    let reader = EmbeddedLog::open_reader(dir.path()).unwrap();
    assert_eq!(reader.topic("t").unwrap().start_offsets, vec![start]);
    assert_eq!(reader.fetch("t", 0, 0, 1).unwrap()[0].offset, start);
    drop(log);
    let log = EmbeddedLog::open_with(dir.path(), options).unwrap();
    assert_eq!(log.topic("t").unwrap().start_offsets, vec![start]);
    assert_eq!(log.topic("t").unwrap().record_count(), 2000 - start);
    let mut next = start;
    loop {
        let records = log.fetch("t", 0, next, 300).unwrap();
        let Some(last) = records.last() else { break };
        next = last.offset + 1;
    }
    assert_eq!(next, 2000, "every record from the start on is readable");
}

#[test]
fn retention_by_age_keeps_only_recent_segments_and_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { retention_age: Some(Duration::from_secs(3600)), ..options() };
    let log = EmbeddedLog::open_with(dir.path(), options).unwrap();
    log.ensure_topic("t", 1).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    // Two hours old: past retention.
    for i in 0..20 {
        commit(&log, i * 20, 20, now - 7_200_000);
    }
    assert_eq!(segments(dir.path()), 1, "only the active segment is left of old records");
    let start = log.topic("t").unwrap().start_offsets[0];
    assert!(start > 0);
    for i in 20..60 {
        commit(&log, i * 20, 20, now);
    }
    let info = log.topic("t").unwrap();
    assert!(info.start_offsets[0] >= start && info.start_offsets[0] <= 400, "{info:?}");
    assert!(segments(dir.path()) >= 2, "recent segments are kept");
}

#[test]
fn a_topic_can_have_its_own_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = EmbeddedOptions { retention_bytes: Some(64 << 10), ..options() };
    options
        .topic_retention
        .insert("keep".into(), lux_log::TopicRetention { retention_bytes: Some(1 << 30), retention_age: None });
    let log = EmbeddedLog::open_with(dir.path(), options).unwrap();
    log.ensure_topic("t", 1).unwrap();
    log.ensure_topic("keep", 1).unwrap();
    for i in 0..100 {
        commit(&log, i * 20, 20, 1_000);
        let outputs = (0..20)
            .map(|_| OutputRecord {
                topic: "keep".into(),
                key: b"k".to_vec(),
                timestamp_ms: 1_000,
                value: vec![b'v'; 200],
                decoded: None,
            })
            .collect();
        log.commit(Commit { group: "g".into(), outputs, ..Default::default() }).unwrap();
    }
    assert!(log.topic("t").unwrap().start_offsets[0] > 0, "the [log] retention applies to t");
    assert_eq!(log.topic("keep").unwrap().start_offsets, vec![0], "keep has its own");
    assert_eq!(log.topic("keep").unwrap().record_count(), 2000);
}
