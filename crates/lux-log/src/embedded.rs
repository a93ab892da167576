//! The embedded central log: durable topics in one SQLite database (WAL mode) under the data
//! directory.
//!
//! Why SQLite: a commit of a stage (outputs + input offsets + state) must be one atomic write,
//! and SQLite's transactions give exactly that, crash-safe, with a file format that other
//! processes can read while LUX writes (`lux topic read` on a running pipeline). Records live in
//! one rowid table whose integer key packs `(topic id, partition, offset)`, so appends go to the
//! end of a B-tree and a fetch is one range scan.
//!
//! One process writes a data directory at a time: [`EmbeddedLog::open`] takes an exclusive lock
//! on `lux.lock`. [`EmbeddedLog::open_reader`] opens without the lock, for inspection tools.

use crate::{
    partition_for_key, validate_topic_name, CentralLog, Commit, Durability, LogError, Result, StoredRecord, TopicInfo,
    TopicPartition,
};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

const OFFSET_BITS: u32 = 43;
const PARTITION_BITS: u32 = 10;
const MAX_TOPICS: i64 = 1 << 10;
const MAX_PARTITIONS: u32 = 1 << PARTITION_BITS;

/// The file name of the database inside the data directory.
pub const DATABASE_FILE: &str = "log.sqlite3";
const LOCK_FILE: &str = "lux.lock";

fn record_id(topic_id: i64, partition: u32, offset: u64) -> i64 {
    (topic_id << (OFFSET_BITS + PARTITION_BITS)) | ((partition as i64) << OFFSET_BITS) | offset as i64
}

fn offset_of(id: i64) -> u64 {
    (id as u64) & ((1u64 << OFFSET_BITS) - 1)
}

#[derive(Debug, Clone, Copy)]
struct TopicMeta {
    id: i64,
    partitions: u32,
}

/// The embedded log. Cheap to share behind an `Arc`.
pub struct EmbeddedLog {
    path: PathBuf,
    writer: Option<Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    topics: Mutex<HashMap<String, TopicMeta>>,
    /// (topic id, partition) -> next offset; only kept by the writing process.
    end_offsets: Mutex<HashMap<(i64, u32), u64>>,
    appended: Mutex<u64>,
    appended_signal: Condvar,
    _lock: Option<File>,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `data_dir` for writing, taking the directory's lock.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<EmbeddedLog> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| LogError::DataDir { dir: data_dir.display().to_string(), source })?;
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| LogError::DataDir { dir: data_dir.display().to_string(), source })?;
        if lock.try_lock().is_err() {
            return Err(LogError::Locked {
                dir: data_dir.display().to_string(),
                lock: lock_path.display().to_string(),
            });
        }
        let path = data_dir.join(DATABASE_FILE);
        let writer = open_connection(&path, false)?;
        let synchronous = match durability {
            Durability::Group => "NORMAL",
            Durability::Fsync => "FULL",
        };
        writer
            .execute_batch(&format!(
                "PRAGMA journal_mode=WAL;
                 PRAGMA synchronous={synchronous};
                 CREATE TABLE IF NOT EXISTS topics (
                     id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, partitions INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS records (
                     id INTEGER PRIMARY KEY, key BLOB, timestamp INTEGER NOT NULL, value BLOB NOT NULL);
                 CREATE TABLE IF NOT EXISTS group_offsets (
                     consumer_group TEXT NOT NULL, topic_id INTEGER NOT NULL, partition INTEGER NOT NULL,
                     next_offset INTEGER NOT NULL, PRIMARY KEY (consumer_group, topic_id, partition)) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS stage_state (
                     consumer_group TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
                     PRIMARY KEY (consumer_group, key)) WITHOUT ROWID;
                 PRAGMA quick_check;"
            ))
            .map_err(|e| storage_error(&path, e))?;
        Ok(EmbeddedLog { writer: Some(Mutex::new(writer)), ..EmbeddedLog::empty(path, Some(lock)) })
    }

    /// Opens an existing log for reading only, without the directory's lock, so that it can be
    /// inspected while a `lux run` writes to it.
    pub fn open_reader(data_dir: &Path) -> Result<EmbeddedLog> {
        let path = data_dir.join(DATABASE_FILE);
        if !path.exists() {
            return Err(LogError::DataDir {
                dir: data_dir.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "no embedded log there ({} is missing); run `lux run` first or pass --data-dir",
                        path.display()
                    ),
                ),
            });
        }
        // Fail early with a clear error if the file is not a LUX log.
        let probe = open_connection(&path, true)?;
        probe
            .query_row("SELECT count(*) FROM topics", [], |row| row.get::<_, i64>(0))
            .map_err(|e| storage_error(&path, e))?;
        let log = EmbeddedLog::empty(path, None);
        log.readers.lock().unwrap_or_else(|p| p.into_inner()).push(probe);
        Ok(log)
    }

    fn empty(path: PathBuf, lock: Option<File>) -> EmbeddedLog {
        EmbeddedLog {
            path,
            writer: None,
            readers: Mutex::new(Vec::new()),
            topics: Mutex::new(HashMap::new()),
            end_offsets: Mutex::new(HashMap::new()),
            appended: Mutex::new(0),
            appended_signal: Condvar::new(),
            _lock: lock,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(conn) => conn,
            None => open_connection(&self.path, true)?,
        };
        let result = f(&conn).map_err(|e| storage_error(&self.path, e));
        self.readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        result
    }

    fn topic_meta(&self, name: &str) -> Result<TopicMeta> {
        if let Some(meta) = self.topics.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(*meta);
        }
        let meta = self
            .with_reader(|conn| {
                conn.query_row("SELECT id, partitions FROM topics WHERE name = ?1", [name], |row| {
                    Ok(TopicMeta { id: row.get(0)?, partitions: row.get(1)? })
                })
                .optional()
            })?
            .ok_or_else(|| LogError::UnknownTopic(name.to_owned()))?;
        self.topics.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), meta);
        Ok(meta)
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        match &self.writer {
            Some(writer) => Ok(writer.lock().unwrap_or_else(|p| p.into_inner())),
            None => {
                Err(LogError::Storage { path: self.path.display().to_string(), source: rusqlite::Error::InvalidQuery })
            }
        }
    }

    /// (start, end) offsets of a partition, read from the database.
    fn partition_bounds(&self, conn: &Connection, meta: TopicMeta, partition: u32) -> rusqlite::Result<(u64, u64)> {
        let lo = record_id(meta.id, partition, 0);
        let hi = record_id(meta.id, partition + 1, 0);
        let (min, max): (Option<i64>, Option<i64>) = conn.query_row(
            "SELECT min(id), max(id) FROM records WHERE id >= ?1 AND id < ?2",
            params![lo, hi],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(match (min, max) {
            (Some(min), Some(max)) => (offset_of(min), offset_of(max) + 1),
            _ => (0, 0),
        })
    }

    fn end_offset_cached(&self, conn: &Connection, meta: TopicMeta, partition: u32) -> rusqlite::Result<u64> {
        if let Some(end) = self.end_offsets.lock().unwrap_or_else(|p| p.into_inner()).get(&(meta.id, partition)) {
            return Ok(*end);
        }
        let (_, end) = self.partition_bounds(conn, meta, partition)?;
        self.end_offsets.lock().unwrap_or_else(|p| p.into_inner()).insert((meta.id, partition), end);
        Ok(end)
    }
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| storage_error(path, e))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(|e| storage_error(path, e))?;
    // A 64 MiB page cache and memory-mapped reads: the recent end of each partition, which
    // stages read right after it is written, stays in memory.
    conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA mmap_size = 1073741824;")
        .map_err(|e| storage_error(path, e))?;
    Ok(conn)
}

fn storage_error(path: &Path, error: rusqlite::Error) -> LogError {
    let path = path.display().to_string();
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => LogError::DiskFull { path, detail: error.to_string() },
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
            LogError::Corrupt { path, detail: error.to_string() }
        }
        _ => LogError::Storage { path, source: error },
    }
}

impl CentralLog for EmbeddedLog {
    fn ensure_topic(&self, name: &str, partitions: u32) -> Result<()> {
        validate_topic_name(name)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(LogError::UnknownPartition {
                topic: name.to_owned(),
                partition: partitions,
                partitions: MAX_PARTITIONS,
            });
        }
        match self.topic_meta(name) {
            Ok(meta) if meta.partitions == partitions => return Ok(()),
            Ok(meta) => {
                return Err(LogError::PartitionMismatch {
                    topic: name.to_owned(),
                    existing: meta.partitions,
                    requested: partitions,
                })
            }
            Err(LogError::UnknownTopic(_)) => {}
            Err(other) => return Err(other),
        }
        let conn = self.writer()?;
        let count: i64 = conn
            .query_row("SELECT count(*) FROM topics", [], |row| row.get(0))
            .map_err(|e| storage_error(&self.path, e))?;
        if count >= MAX_TOPICS {
            return Err(LogError::BadTopicName(format!("{name} (the embedded log holds at most {MAX_TOPICS} topics)")));
        }
        conn.execute("INSERT OR IGNORE INTO topics (name, partitions) VALUES (?1, ?2)", params![name, partitions])
            .map_err(|e| storage_error(&self.path, e))?;
        drop(conn);
        self.topic_meta(name).map(|_| ())
    }

    fn topics(&self) -> Result<Vec<TopicInfo>> {
        let names: Vec<String> = self.with_reader(|conn| {
            let mut stmt = conn.prepare("SELECT name FROM topics ORDER BY name")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect()
        })?;
        names.iter().map(|name| self.topic(name)).collect()
    }

    fn topic(&self, name: &str) -> Result<TopicInfo> {
        let meta = self.topic_meta(name)?;
        let mut info = TopicInfo {
            name: name.to_owned(),
            partitions: meta.partitions,
            end_offsets: vec![],
            start_offsets: vec![],
        };
        self.with_reader(|conn| {
            for partition in 0..meta.partitions {
                let (start, end) = self.partition_bounds(conn, meta, partition)?;
                info.start_offsets.push(start);
                info.end_offsets.push(end);
            }
            Ok(())
        })?;
        Ok(info)
    }

    fn fetch(&self, topic: &str, partition: u32, from: u64, max_records: usize) -> Result<Vec<StoredRecord>> {
        let meta = self.topic_meta(topic)?;
        if partition >= meta.partitions {
            return Err(LogError::UnknownPartition { topic: topic.to_owned(), partition, partitions: meta.partitions });
        }
        let lo = record_id(meta.id, partition, from.min((1 << OFFSET_BITS) - 1));
        let hi = record_id(meta.id, partition + 1, 0);
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, key, timestamp, value FROM records WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![lo, hi, max_records as i64], |row| {
                Ok(StoredRecord {
                    topic: topic.to_owned(),
                    partition,
                    offset: offset_of(row.get(0)?),
                    key: row.get(1)?,
                    timestamp_ms: row.get(2)?,
                    value: row.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<u64>> {
        let meta = self.topic_meta(&tp.topic)?;
        self.with_reader(|conn| {
            conn.query_row(
                "SELECT next_offset FROM group_offsets WHERE consumer_group = ?1 AND topic_id = ?2 AND partition = ?3",
                params![group, meta.id, tp.partition],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|o| o.map(|o| o as u64))
        })
    }

    fn load_state(&self, group: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare("SELECT key, value FROM stage_state WHERE consumer_group = ?1 ORDER BY key")?;
            let rows = stmt.query_map([group], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }

    fn commit(&self, commit: Commit) -> Result<()> {
        // Resolve topics before taking the writer lock.
        let mut metas: HashMap<&str, TopicMeta> = HashMap::new();
        for out in &commit.outputs {
            if !metas.contains_key(out.topic.as_str()) {
                metas.insert(&out.topic, self.topic_meta(&out.topic)?);
            }
        }
        let mut input_metas = Vec::with_capacity(commit.next_offsets.len());
        for (tp, next) in &commit.next_offsets {
            input_metas.push((self.topic_meta(&tp.topic)?, tp.partition, *next));
        }
        let mut conn = self.writer()?;
        let path = self.path.clone();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| storage_error(&path, e))?;
        let mut new_ends: HashMap<(i64, u32), u64> = HashMap::new();
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO records (id, key, timestamp, value) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| storage_error(&path, e))?;
            for out in &commit.outputs {
                let meta = metas[out.topic.as_str()];
                let partition = partition_for_key(&out.key, meta.partitions);
                let next = match new_ends.get(&(meta.id, partition)) {
                    Some(next) => *next,
                    None => self.end_offset_cached(&tx, meta, partition).map_err(|e| storage_error(&path, e))?,
                };
                insert
                    .execute(params![record_id(meta.id, partition, next), out.key, out.timestamp_ms, out.value])
                    .map_err(|e| storage_error(&path, e))?;
                new_ends.insert((meta.id, partition), next + 1);
            }
            let mut upsert_offset = tx
                .prepare_cached(
                    "INSERT INTO group_offsets (consumer_group, topic_id, partition, next_offset) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (consumer_group, topic_id, partition) DO UPDATE SET next_offset = excluded.next_offset",
                )
                .map_err(|e| storage_error(&path, e))?;
            for (meta, partition, next) in &input_metas {
                upsert_offset
                    .execute(params![commit.group, meta.id, partition, *next as i64])
                    .map_err(|e| storage_error(&path, e))?;
            }
            let mut put_state = tx
                .prepare_cached(
                    "INSERT INTO stage_state (consumer_group, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (consumer_group, key) DO UPDATE SET value = excluded.value",
                )
                .map_err(|e| storage_error(&path, e))?;
            let mut delete_state = tx
                .prepare_cached("DELETE FROM stage_state WHERE consumer_group = ?1 AND key = ?2")
                .map_err(|e| storage_error(&path, e))?;
            for (key, value) in &commit.state {
                match value {
                    Some(value) => put_state.execute(params![commit.group, key, value]),
                    None => delete_state.execute(params![commit.group, key]),
                }
                .map_err(|e| storage_error(&path, e))?;
            }
        }
        tx.commit().map_err(|e| storage_error(&path, e))?;
        drop(conn);
        if !new_ends.is_empty() {
            self.end_offsets.lock().unwrap_or_else(|p| p.into_inner()).extend(new_ends);
            let mut version = self.appended.lock().unwrap_or_else(|p| p.into_inner());
            *version += 1;
            self.appended_signal.notify_all();
        }
        Ok(())
    }

    fn wait_for_appends(&self, seen_version: u64, timeout: Duration) -> u64 {
        let version = self.appended.lock().unwrap_or_else(|p| p.into_inner());
        if *version != seen_version {
            return *version;
        }
        let (version, _) = self
            .appended_signal
            .wait_timeout_while(version, timeout, |v| *v == seen_version)
            .unwrap_or_else(|p| p.into_inner());
        *version
    }

    fn append_version(&self) -> u64 {
        *self.appended.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutputRecord;

    fn out(topic: &str, key: &str, value: &str) -> OutputRecord {
        OutputRecord {
            topic: topic.into(),
            key: key.as_bytes().to_vec(),
            timestamp_ms: 1,
            value: value.as_bytes().to_vec(),
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
                state: vec![(b"s".to_vec(), Some(b"1".to_vec()))],
            };
            assert!(matches!(log.commit(bad), Err(LogError::UnknownTopic(_))));
            assert_eq!(log.topic("enriched").unwrap().record_count(), 0);
            assert_eq!(log.committed_offset("t", &TopicPartition { topic: "raw".into(), partition: 0 }).unwrap(), None);
            assert!(log.load_state("t").unwrap().is_empty());
            log.commit(Commit {
                group: "t".into(),
                next_offsets: vec![(TopicPartition { topic: "raw".into(), partition: 1 }, 7)],
                outputs: vec![out("enriched", "a", "x")],
                state: vec![(b"s".to_vec(), Some(b"1".to_vec())), (b"gone".to_vec(), None)],
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
        log.commit(Commit { group: "src".into(), outputs: vec![out("enriched", "a", "y")], ..Default::default() })
            .unwrap();
        let p = partition_for_key(b"a", 3);
        let offsets: Vec<u64> = log.fetch("enriched", p, 0, 10).unwrap().iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1]);
        assert_eq!(log.fetch("enriched", p, 1, 10).unwrap().len(), 1);
    }

    #[test]
    fn second_writer_is_refused_but_readers_work() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), Durability::Group).unwrap();
        log.ensure_topic("raw", 1).unwrap();
        log.commit(Commit { group: "g".into(), outputs: vec![out("raw", "k", "v")], ..Default::default() }).unwrap();
        assert!(matches!(EmbeddedLog::open(dir.path(), Durability::Group), Err(LogError::Locked { .. })));
        let reader = EmbeddedLog::open_reader(dir.path()).unwrap();
        assert_eq!(reader.fetch("raw", 0, 0, 10).unwrap()[0].value, b"v");
        assert!(matches!(log.ensure_topic("raw", 2), Err(LogError::PartitionMismatch { .. })));
        assert!(matches!(log.ensure_topic("bad name", 2), Err(LogError::BadTopicName(_))));
    }

    #[test]
    fn reader_on_missing_or_foreign_file_explains() {
        let dir = tempfile::tempdir().unwrap();
        let err = EmbeddedLog::open_reader(dir.path()).err().unwrap().to_string();
        assert!(err.contains("no embedded log there"), "{err}");
        std::fs::write(dir.path().join(DATABASE_FILE), b"this is not a database at all, just some text padding it out....................................................").unwrap();
        let err = EmbeddedLog::open_reader(dir.path()).err().unwrap();
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    }
}
