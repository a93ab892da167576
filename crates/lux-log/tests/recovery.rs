//! The embedded log after crashes and damage: torn tails are truncated on open, uncommitted
//! appends never become visible, corruption below the committed end is reported with its file
//! and byte offset, the journal's checkpoint keeps everything.

use lux_log::embedded::{EmbeddedLog, EmbeddedOptions};
use lux_log::{CentralLog, Commit, Durability, LogError, OutputRecord, StateChange, TopicPartition};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `group` durability with no background sync during the test: only `sync()` and a clean
/// close sync, so a test decides what a power loss could tear.
fn options() -> EmbeddedOptions {
    EmbeddedOptions { group_sync_interval: Duration::from_secs(3600), ..EmbeddedOptions::new(Durability::Group) }
}

fn batch(first: u64, n: u64) -> Commit {
    Commit {
        group: "stage".into(),
        next_offsets: vec![(TopicPartition { topic: "in".into(), partition: 0 }, first + n)],
        outputs: (first..first + n)
            .map(|i| OutputRecord {
                topic: "t".into(),
                key: b"one-key".to_vec(),
                timestamp_ms: i as i64,
                value: format!("record-{i:06}-{}", "x".repeat(150)).into_bytes(),
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

fn open(dir: &Path) -> EmbeddedLog {
    let log = EmbeddedLog::open_with(dir, options()).unwrap();
    log.ensure_topic("in", 1).unwrap();
    log.ensure_topic("t", 1).unwrap();
    log
}

/// Every record of partition 0 of `t`, checked to be `record-0`, `record-1`, ... in order.
fn read_all(log: &EmbeddedLog) -> u64 {
    let mut next = 0u64;
    loop {
        let records = log.fetch("t", 0, next, 500).unwrap();
        if records.is_empty() {
            return next;
        }
        for r in records {
            assert_eq!(r.offset, next);
            assert!(r.value.starts_with(format!("record-{next:06}-").as_bytes()), "offset {next}");
            next += 1;
        }
    }
}

/// A stage's state entries.
type State = Vec<(Vec<u8>, Vec<u8>)>;

fn committed(log: &EmbeddedLog) -> (Option<u64>, State) {
    (
        log.committed_offset("stage", &TopicPartition { topic: "in".into(), partition: 0 }).unwrap(),
        log.load_state("stage").unwrap(),
    )
}

fn segment(dir: &Path) -> PathBuf {
    dir.join("topics/t/0/00000000000000000000.log")
}

fn damage(path: &Path, at_from_end: u64, f: impl FnOnce(&mut Vec<u8>, usize)) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() - at_from_end as usize;
    f(&mut bytes, at);
    std::fs::write(path, bytes).unwrap();
}

/// Two commits, the first synced, the second not; then a crash.
fn synced_then_unsynced(dir: &Path) {
    let log = open(dir);
    log.commit(batch(0, 100)).unwrap();
    log.sync().unwrap();
    log.commit(batch(100, 100)).unwrap();
    log.simulate_crash();
}

fn assert_first_commit_only(dir: &Path) {
    let log = open(dir);
    assert_eq!(read_all(&log), 100, "the second commit is rolled back whole, the first is intact");
    assert_eq!(committed(&log), (Some(100), vec![(b"next".to_vec(), b"100".to_vec())]));
    // Writing resumes right after the last whole commit.
    log.commit(batch(100, 10)).unwrap();
    assert_eq!(read_all(&log), 110);
    drop(log);
    assert_eq!(read_all(&open(dir)), 110);
}

#[test]
fn garbled_segment_tail_rolls_back_to_the_last_whole_commit() {
    let dir = tempfile::tempdir().unwrap();
    synced_then_unsynced(dir.path());
    damage(&segment(dir.path()), 7, |b, at| b[at] ^= 0x55);
    assert_first_commit_only(dir.path());
}

#[test]
fn cut_segment_tail_rolls_back_to_the_last_whole_commit() {
    let dir = tempfile::tempdir().unwrap();
    synced_then_unsynced(dir.path());
    damage(&segment(dir.path()), 50, |b, at| b.truncate(at));
    assert_first_commit_only(dir.path());
}

#[test]
fn torn_journal_tail_is_truncated() {
    for cut in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        synced_then_unsynced(dir.path());
        // The journal's last entry is the second commit.
        damage(&dir.path().join("journal"), 5, |b, at| if cut { b.truncate(at) } else { b[at] ^= 0xff });
        assert_first_commit_only(dir.path());
    }
}

#[test]
fn uncommitted_appends_are_invisible_then_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.commit(batch(0, 50)).unwrap();
    let committed_len = std::fs::metadata(segment(dir.path())).unwrap().len();
    log.append_uncommitted(&batch(50, 30)).unwrap();
    assert!(std::fs::metadata(segment(dir.path())).unwrap().len() > committed_len, "the records were written");
    assert_eq!(read_all(&log), 50, "records past the committed end are not read");
    assert_eq!(log.topic("t").unwrap().end_offsets, vec![50]);
    let reader = EmbeddedLog::open_reader(dir.path()).unwrap();
    assert_eq!(read_all(&reader), 50, "nor by a reader");
    log.simulate_crash();
    let log = open(dir.path());
    assert_eq!(std::fs::metadata(segment(dir.path())).unwrap().len(), committed_len, "truncated on open");
    assert_eq!(read_all(&log), 50);
    log.commit(batch(50, 30)).unwrap();
    assert_eq!(read_all(&log), 80);
    assert_eq!(read_all(&reader), 80);
}

#[test]
fn corruption_below_the_committed_end_names_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        for i in 0..10 {
            log.commit(batch(i * 100, 100)).unwrap();
        }
    }
    let path = segment(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    damage(&path, len / 2, |b, at| b[at] ^= 0x01);
    // Open checks the tail only; a fetch over the damage stops there.
    let error = match EmbeddedLog::open_with(dir.path(), options()) {
        Err(error) => error,
        Ok(log) => {
            (0..).map(|i| log.fetch("t", 0, i * 100, 100)).find_map(Result::err).expect("the damaged record is found")
        }
    };
    let text = error.to_string();
    assert!(matches!(error, LogError::Corrupt { .. }), "{text}");
    assert!(text.contains(&path.display().to_string()) && text.contains("byte offset"), "{text}");

    // In the journal: an entry damaged with whole entries after it is not a torn tail.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        for i in 0..10 {
            log.commit(batch(i * 100, 100)).unwrap();
        }
    }
    let journal = dir.path().join("journal");
    let len = std::fs::metadata(&journal).unwrap().len();
    damage(&journal, len / 2, |b, at| b[at] ^= 0x01);
    let text = EmbeddedLog::open_with(dir.path(), options()).err().expect("refused").to_string();
    assert!(text.contains(&journal.display().to_string()) && text.contains("byte offset"), "{text}");
}

#[test]
fn checkpoints_keep_everything_and_readers_follow_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { checkpoint_bytes: 4096, segment_bytes: 64 << 10, ..options() };
    let log = EmbeddedLog::open_with(dir.path(), options.clone()).unwrap();
    log.ensure_topic("in", 1).unwrap();
    log.ensure_topic("t", 1).unwrap();
    let reader = EmbeddedLog::open_reader(dir.path()).unwrap();
    for i in 0..100 {
        log.commit(batch(i * 20, 20)).unwrap();
        if i % 10 == 0 {
            assert_eq!(read_all(&reader), (i + 1) * 20);
        }
    }
    assert!(std::fs::metadata(dir.path().join("journal")).unwrap().len() < 8192, "the journal was compacted");
    assert_eq!(read_all(&reader), 2000);
    assert_eq!(committed(&reader), (Some(2000), vec![(b"next".to_vec(), b"2000".to_vec())]));
    log.simulate_crash();
    let log = EmbeddedLog::open_with(dir.path(), options).unwrap();
    assert_eq!(read_all(&log), 2000);
    assert_eq!(committed(&log), (Some(2000), vec![(b"next".to_vec(), b"2000".to_vec())]));
    assert!(std::fs::read_dir(dir.path().join("topics/t/0")).unwrap().count() > 4, "several segments");
}

#[test]
fn a_missing_journal_is_refused_not_taken_for_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).commit(batch(0, 10)).unwrap();
    std::fs::remove_file(dir.path().join("journal")).unwrap();
    let text = EmbeddedLog::open_with(dir.path(), options()).err().expect("refused").to_string();
    assert!(text.contains("journal is missing"), "{text}");
    assert!(segment(dir.path()).exists(), "no segment was deleted");
}

/// A power loss that tears one partition's records rolls back that commit in every partition,
/// and every later commit: never half of one.
#[test]
fn a_torn_commit_is_rolled_back_in_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let p_a = lux_log::partition_for_key(b"a", 2);
    let other: Vec<u8> = (b'b'..=b'z').map(|c| vec![c]).find(|k| lux_log::partition_for_key(k, 2) != p_a).unwrap();
    let two_partitions = |first: u64, n: u64| {
        let mut commit = batch(first, n);
        for (i, out) in commit.outputs.iter_mut().enumerate() {
            out.topic = "two".into();
            // Keys alternating between the two partitions.
            out.key = if i % 2 == 0 { b"a".to_vec() } else { other.clone() };
        }
        commit
    };
    {
        let log = open(dir.path());
        log.ensure_topic("two", 2).unwrap();
        log.commit(two_partitions(0, 100)).unwrap();
        log.sync().unwrap();
        log.commit(two_partitions(100, 100)).unwrap();
        log.commit(two_partitions(200, 100)).unwrap();
        log.simulate_crash();
    }
    // The second commit's records in partition `a` did not reach the disk whole.
    let path = dir.path().join(format!("topics/two/{p_a}/00000000000000000000.log"));
    let bytes = std::fs::read(&path).unwrap();
    let record = bytes.len() / 150;
    damage(&path, (record * 75) as u64, |b, at| b[at] ^= 0x10);
    let log = open(dir.path());
    let info = log.topic("two").unwrap();
    assert_eq!(info.end_offsets, vec![50, 50], "back to the first commit in both partitions");
    assert_eq!(committed(&log), (Some(100), vec![(b"next".to_vec(), b"100".to_vec())]));
}
