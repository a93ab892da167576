//! A full disk: on a 4 MiB tmpfs, commits fail with `DiskFull` and leave nothing half-written;
//! once space is freed, writing resumes and every record is there exactly once.
//!
//! Needs root (to mount the tmpfs); skipped with a message otherwise.

use lux_log::embedded::{EmbeddedLog, EmbeddedOptions};
use lux_log::{CentralLog, Commit, Durability, LogError, OutputRecord, StateChange, TopicPartition};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?.keep();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if mounted {
            Some(Tmpfs(dir))
        } else {
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn batch(first: u64, n: u64) -> Commit {
    Commit {
        group: "source".into(),
        next_offsets: vec![(TopicPartition { topic: "in".into(), partition: 0 }, first + n)],
        outputs: (first..first + n)
            .map(|i| OutputRecord {
                topic: "t".into(),
                key: format!("key-{}", i % 7).into_bytes(),
                timestamp_ms: i as i64,
                value: format!("{i:08}{}", "x".repeat(1000)).into_bytes(),
                decoded: None,
            })
            .collect(),
        state: vec![StateChange {
            partition: 0,
            key: b"next".to_vec(),
            value: Some((first + n).to_string().into_bytes()),
        }],
    }
}

/// The record numbers in topic `t`, in partition and offset order.
fn numbers(log: &EmbeddedLog) -> Vec<u64> {
    let mut all = Vec::new();
    for p in 0..3 {
        let mut from = 0;
        loop {
            let records = log.fetch("t", p, from, 200).unwrap();
            let Some(last) = records.last() else { break };
            from = last.offset + 1;
            all.extend(records.iter().map(|r| std::str::from_utf8(&r.value[..8]).unwrap().parse::<u64>().unwrap()));
        }
    }
    all
}

fn check_exactly_once(log: &EmbeddedLog, upto: u64) {
    let mut seen = numbers(log);
    seen.sort_unstable();
    assert_eq!(seen, (0..upto).collect::<Vec<_>>(), "every committed record exactly once");
}

#[test]
fn full_disk_fails_cleanly_then_resumes_with_nothing_lost() {
    let Some(fs) = Tmpfs::mount("4m") else {
        eprintln!("SKIPPED full_disk_fails_cleanly_then_resumes_with_nothing_lost: cannot mount a tmpfs (needs root)");
        return;
    };
    let data = fs.0.join("data");
    let filler: &Path = &fs.0.join("filler");
    std::fs::write(filler, vec![0u8; 1 << 20]).unwrap();
    let options = EmbeddedOptions { segment_bytes: 256 << 10, ..EmbeddedOptions::new(Durability::Group) };
    let log = EmbeddedLog::open_with(&data, options.clone()).unwrap();
    log.ensure_topic("in", 1).unwrap();
    log.ensure_topic("t", 3).unwrap();
    let mut next = 0u64;
    let mut full = 0;
    while full < 3 {
        match log.commit(batch(next, 50)) {
            Ok(()) => next += 50,
            Err(LogError::DiskFull { .. }) => {
                full += 1;
                // Nothing of the failed commit is visible; what was committed is intact.
                check_exactly_once(&log, next);
                assert_eq!(log.load_state("source").unwrap()[0].1, next.to_string().into_bytes());
            }
            Err(other) => panic!("{other}"),
        }
        assert!(next < 10_000, "the disk never filled");
    }
    let before = next;
    assert!(before > 0);
    // Space returns: the same commit goes through, and writing goes on.
    std::fs::remove_file(filler).unwrap();
    for _ in 0..10 {
        log.commit(batch(next, 50)).unwrap();
        next += 50;
    }
    check_exactly_once(&log, next);
    let reader = EmbeddedLog::open_reader(&data).unwrap();
    check_exactly_once(&reader, next);
    drop(reader);
    log.simulate_crash();
    let log = EmbeddedLog::open_with(&data, options).unwrap();
    check_exactly_once(&log, next);
    assert_eq!(
        log.committed_offset("source", &TopicPartition { topic: "in".into(), partition: 0 }).unwrap(),
        Some(next)
    );
}
