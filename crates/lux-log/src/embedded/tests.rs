//! Unit tests of the embedded log's contract (the crash, corruption, retention and full-disk
//! tests are in `tests/`).

use super::*;
use crate::{OutputRecord, StateChange};

fn out(topic: &str, key: &str, value: &str) -> OutputRecord {
    OutputRecord {
        topic: topic.into(),
        key: key.as_bytes().to_vec(),
        timestamp_ms: 1,
        value: value.as_bytes().to_vec(),
        decoded: None,
    }
}

#[test]
fn commit_is_atomic_and_durable_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), Durability::Group).unwrap();
        log.ensure_topic("raw", 3).unwrap();
        log.ensure_topic("enriched", 3).unwrap();
        let outputs: Vec<_> = (0..100).map(|i| out("raw", &format!("k{i}"), &format!("v{i}"))).collect();
        log.commit(Commit { group: "src".into(), outputs, ..Default::default() }).unwrap();
        // A commit naming an unknown topic fails as a whole: nothing of it is applied.
        let bad = Commit {
            group: "t".into(),
            next_offsets: vec![(TopicPartition { topic: "raw".into(), partition: 0 }, 5)],
            outputs: vec![out("enriched", "a", "x"), out("nope", "a", "x")],
            state: vec![StateChange { partition: 0, key: b"s".to_vec(), value: Some(b"1".to_vec()) }],
        };
        assert!(matches!(log.commit(bad), Err(LogError::UnknownTopic(_))));
        assert_eq!(log.topic("enriched").unwrap().record_count(), 0);
        assert_eq!(log.committed_offset("t", &TopicPartition { topic: "raw".into(), partition: 0 }).unwrap(), None);
        assert!(log.load_state("t").unwrap().is_empty());
        log.commit(Commit {
            group: "t".into(),
            next_offsets: vec![(TopicPartition { topic: "raw".into(), partition: 1 }, 7)],
            outputs: vec![out("enriched", "a", "x")],
            state: vec![
                StateChange { partition: 0, key: b"s".to_vec(), value: Some(b"1".to_vec()) },
                StateChange { partition: 0, key: b"gone".to_vec(), value: None },
            ],
        })
        .unwrap();
    }
    let log = EmbeddedLog::open(dir.path(), Durability::Fsync).unwrap();
    let raw = log.topic("raw").unwrap();
    assert_eq!(raw.record_count(), 100);
    let mut values = Vec::new();
    for p in 0..3 {
        let records = log.fetch("raw", p, 0, 1000).unwrap();
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as u64);
            assert_eq!(partition_for_key(r.key.as_deref().unwrap(), 3), p);
        }
        values.extend(records.into_iter().map(|r| String::from_utf8(r.value).unwrap()));
    }
    values.sort();
    let mut expected: Vec<_> = (0..100).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(values, expected);
    assert_eq!(log.committed_offset("t", &TopicPartition { topic: "raw".into(), partition: 1 }).unwrap(), Some(7));
    assert_eq!(log.load_state("t").unwrap(), vec![(b"s".to_vec(), b"1".to_vec())]);
    // Appends continue after the existing offsets.
    log.commit(Commit { group: "src".into(), outputs: vec![out("enriched", "a", "y")], ..Default::default() }).unwrap();
    let p = partition_for_key(b"a", 3);
    let offsets: Vec<u64> = log.fetch("enriched", p, 0, 10).unwrap().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1]);
    assert_eq!(log.fetch("enriched", p, 1, 10).unwrap().len(), 1);
}

#[test]
fn second_writer_is_refused_but_readers_follow_commits() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), Durability::Group).unwrap();
    log.ensure_topic("raw", 1).unwrap();
    log.commit(Commit { group: "g".into(), outputs: vec![out("raw", "k", "v")], ..Default::default() }).unwrap();
    assert!(matches!(EmbeddedLog::open(dir.path(), Durability::Group), Err(LogError::Locked { .. })));
    let reader = EmbeddedLog::open_reader(dir.path()).unwrap();
    assert_eq!(reader.fetch("raw", 0, 0, 10).unwrap()[0].value, b"v");
    log.commit(Commit { group: "g".into(), outputs: vec![out("raw", "k", "w")], ..Default::default() }).unwrap();
    log.ensure_topic("later", 2).unwrap();
    assert_eq!(reader.fetch("raw", 0, 1, 10).unwrap()[0].value, b"w", "the reader sees later commits");
    assert_eq!(reader.topic("later").unwrap().partitions, 2);
    assert!(reader.ensure_topic("other", 1).is_err(), "a reader cannot write");
    assert!(matches!(log.ensure_topic("raw", 2), Err(LogError::PartitionMismatch { .. })));
    assert!(matches!(log.ensure_topic("bad name", 2), Err(LogError::BadTopicName(_))));
}

#[test]
fn reader_on_missing_or_former_sqlite_log_explains() {
    let dir = tempfile::tempdir().unwrap();
    let err = EmbeddedLog::open_reader(dir.path()).err().unwrap().to_string();
    assert!(err.contains("no embedded log there"), "{err}");
    std::fs::write(dir.path().join(SQLITE_FILE), b"SQLite format 3\0").unwrap();
    let err = EmbeddedLog::open(dir.path(), Durability::Group).err().unwrap().to_string();
    assert!(err.contains("former SQLite engine"), "{err}");
}

#[test]
fn offset_for_time_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { segment_bytes: 8 << 10, ..EmbeddedOptions::new(Durability::Group) };
    let log = EmbeddedLog::open_with(dir.path(), options).unwrap();
    log.ensure_topic("t", 1).unwrap();
    for batch in 0..20i64 {
        let outputs = (0..50i64)
            .map(|i| OutputRecord {
                topic: "t".into(),
                key: b"k".to_vec(),
                timestamp_ms: (batch * 50 + i) * 10,
                value: vec![0; 100],
                decoded: None,
            })
            .collect();
        log.commit(Commit { group: "g".into(), outputs, ..Default::default() }).unwrap();
    }
    assert_eq!(log.offset_for_time("t", 0, 0).unwrap(), 0);
    assert_eq!(log.offset_for_time("t", 0, 5_005).unwrap(), 501);
    assert_eq!(log.offset_for_time("t", 0, 9_990).unwrap(), 999);
    assert_eq!(log.offset_for_time("t", 0, 1_000_000).unwrap(), 1000);
    let reader = EmbeddedLog::open_reader(dir.path()).unwrap();
    assert_eq!(reader.offset_for_time("t", 0, 5_005).unwrap(), 501);
}

#[test]
fn concurrent_ensure_topic_creates_each_topic_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(EmbeddedLog::open(dir.path(), Durability::Group).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for name in ["a", "b", "c"] {
                    log.ensure_topic(name, 3).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.topics().unwrap().len(), 3);
    drop(log);
    assert_eq!(EmbeddedLog::open(dir.path(), Durability::Group).unwrap().topics().unwrap().len(), 3);
}

/// The trait's default `offset_for_time` (for backends without a time index) agrees with the
/// embedded log's indexed one.
#[test]
fn default_offset_for_time_agrees_with_the_index() {
    struct Plain(Arc<EmbeddedLog>);
    impl CentralLog for Plain {
        fn ensure_topic(&self, name: &str, partitions: u32) -> Result<()> {
            self.0.ensure_topic(name, partitions)
        }
        fn topics(&self) -> Result<Vec<TopicInfo>> {
            self.0.topics()
        }
        fn topic(&self, name: &str) -> Result<TopicInfo> {
            self.0.topic(name)
        }
        fn fetch(&self, topic: &str, partition: u32, from: u64, max: usize) -> Result<Vec<StoredRecord>> {
            self.0.fetch(topic, partition, from, max)
        }
        fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<u64>> {
            self.0.committed_offset(group, tp)
        }
        fn load_state(&self, group: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
            self.0.load_state(group)
        }
        fn commit(&self, commit: Commit) -> Result<()> {
            self.0.commit(commit)
        }
        fn wait_for_appends(&self, seen: u64, timeout: Duration) -> u64 {
            self.0.wait_for_appends(seen, timeout)
        }
        fn open_session(self: Arc<Self>, group: &str, inputs: &[String]) -> Result<Box<dyn crate::StageSession>> {
            Ok(Box::new(crate::WholeLogSession::open(self, group, inputs)?))
        }
        fn append_version(&self) -> u64 {
            self.0.append_version()
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedLog::open(dir.path(), Durability::Group).unwrap());
    log.ensure_topic("t", 1).unwrap();
    let outputs = (0..30_000i64)
        .map(|i| OutputRecord {
            topic: "t".into(),
            key: b"k".to_vec(),
            timestamp_ms: i / 3,
            value: vec![1; 10],
            decoded: None,
        })
        .collect();
    log.commit(Commit { group: "g".into(), outputs, ..Default::default() }).unwrap();
    for time in [-5, 0, 1, 4_321, 9_999, 10_000] {
        assert_eq!(
            Plain(log.clone()).offset_for_time("t", 0, time).unwrap(),
            log.offset_for_time("t", 0, time).unwrap()
        );
    }
    assert_eq!(log.offset_for_time("t", 0, 4_321).unwrap(), 12_963);
    assert_eq!(log.offset_for_time("t", 0, 10_000).unwrap(), 30_000);
}

#[test]
fn closed_segments_keep_a_thinned_index_in_memory_and_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { segment_bytes: 2 << 20, ..EmbeddedOptions::new(Durability::Group) };
    let log = EmbeddedLog::open_with(dir.path(), options.clone()).unwrap();
    log.ensure_topic("t", 1).unwrap();
    // 70,000 records of about 100 bytes: four segments, three of them closed.
    let value = |i: i64| format!("{i:>96}");
    for batch in 0..70i64 {
        let outputs = (batch * 1000..(batch + 1) * 1000)
            .map(|i| OutputRecord {
                topic: "t".into(),
                key: b"k".to_vec(),
                timestamp_ms: i,
                value: value(i).into(),
                decoded: None,
            })
            .collect();
        log.commit(Commit { group: "g".into(), outputs, ..Default::default() }).unwrap();
    }
    let indexes = |log: &EmbeddedLog| -> Vec<(bool, usize)> {
        let catalog = log.inner.read();
        let id = topic_id(&catalog, "t").unwrap();
        let p = check_partition(&catalog, id, "t", 0).unwrap();
        p.segments.iter().map(|s| (s.closed, s.index.len())).collect()
    };
    let check = |log: &EmbeddedLog| {
        let segments = indexes(log);
        assert!(segments.len() >= 4, "{segments:?}");
        let (last, closed) = segments.split_last().unwrap();
        assert!(!last.0 && last.1 > 20, "the active segment keeps every entry: {segments:?}");
        for (is_closed, entries) in closed {
            let most = (2 << 20) / super::catalog::CLOSED_INDEX_INTERVAL as usize + 2;
            assert!(*is_closed && *entries >= 2 && *entries <= most, "{segments:?}");
        }
        for from in [0u64, 1, 9_999, 20_001, 35_555, 49_990, 69_999] {
            let records = log.fetch("t", 0, from, 20).unwrap();
            assert_eq!(records.len(), 20.min(70_000 - from as usize), "from {from}");
            for (n, r) in records.iter().enumerate() {
                assert_eq!(r.offset, from + n as u64);
                assert_eq!(r.value, value(r.offset as i64).into_bytes());
            }
            assert_eq!(log.offset_for_time("t", 0, from as i64).unwrap(), from);
        }
    };
    check(&log);
    check(&EmbeddedLog::open_reader(dir.path()).unwrap());
    drop(log);
    check(&EmbeddedLog::open_with(dir.path(), options).unwrap());
}

/// A record whose decoded form (`Decoded`) says which value it was made for.
fn out_decoded(key: &str, value: &str) -> OutputRecord {
    let mut record = out("t", key, value);
    record.decoded = Some(crate::Decoded::new(Arc::new(value.to_owned())));
    record
}

fn decoded_values(records: &[StoredRecord]) -> Vec<Option<String>> {
    records.iter().map(|r| r.decoded.as_ref().map(|d| d.get::<String>().unwrap().clone())).collect()
}

#[test]
fn the_readers_of_the_writing_process_get_the_decoded_forms_of_committed_records_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), Durability::Group).unwrap();
    assert!(log.keeps_decoded());
    log.ensure_topic("t", 1).unwrap();
    // A failed commit's records are not kept: the next commit reuses their offsets.
    let failed = Commit { outputs: vec![out_decoded("k", "failed"), out("nope", "k", "x")], ..Default::default() };
    assert!(log.commit(failed).is_err());
    let outputs = vec![out_decoded("k", "a"), out("t", "k", "plain"), out_decoded("k", "b"), out_decoded("k", "c")];
    log.commit(Commit { group: "g".into(), outputs, ..Default::default() }).unwrap();
    let records = log.fetch("t", 0, 0, 10).unwrap();
    let values: Vec<String> = records.iter().map(|r| String::from_utf8(r.value.clone()).unwrap()).collect();
    assert_eq!(values, ["a", "plain", "b", "c"]);
    // After a record without a decoded form, only the records after it keep theirs.
    assert_eq!(decoded_values(&records), [None, None, Some("b".into()), Some("c".into())]);
    assert_eq!(decoded_values(&log.fetch("t", 0, 3, 10).unwrap()), [Some("c".into())]);

    // Another process reads the bytes only.
    let reader = EmbeddedLog::open_reader(dir.path()).unwrap();
    assert!(!reader.keeps_decoded());
    assert_eq!(decoded_values(&reader.fetch("t", 0, 0, 10).unwrap()), [None, None, None, None]);
    drop(reader);
    // So does the process that opens the log next.
    drop(log);
    let log = EmbeddedLog::open(dir.path(), Durability::Group).unwrap();
    assert_eq!(decoded_values(&log.fetch("t", 0, 0, 10).unwrap()), [None, None, None, None]);
}
