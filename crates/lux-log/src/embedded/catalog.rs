//! What the embedded log holds, in memory: topics, partitions and their segment files, the
//! committed end of each partition, consumer-group offsets and stage state. It is rebuilt from
//! the journal on open ([`Catalog::apply`]) and kept current by each commit; fetches read the
//! segment files through it.

use super::format::{decode_record, IndexEntry, Indexer, RecordError, RecordRef, INDEX_ENTRY};
use super::journal::{Entry, PartitionEnd};
use crate::{LogError, Result};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory holding the topics, inside the data directory.
pub const TOPICS_DIR: &str = "topics";
const CHUNK: usize = 1 << 20;
/// Bytes of records between two entries kept of a closed segment's sparse index in memory (the
/// index file keeps one every [`super::format::INDEX_INTERVAL`]): a closed segment is read by
/// stages that lag or replay only, whose fetches then scan up to this much more, and the
/// memory the index takes stays a 64th of what every entry would (which, at 24 bytes for every
/// 4 KiB of log, grew with the log: 63 MB for 12 GB).
pub const CLOSED_INDEX_INTERVAL: u64 = 256 * 1024;

/// One segment file of a partition.
#[derive(Debug)]
pub struct Segment {
    /// The offset of its first record (also its file name).
    pub base: u64,
    /// Committed bytes (for the active segment, bytes past this are not committed).
    pub len: u64,
    pub file: Option<Arc<File>>,
    pub index: Vec<IndexEntry>,
    /// Index and max timestamp after the committed records (kept by the writer).
    pub indexer: Indexer,
    pub index_file: Option<Arc<File>>,
    /// No longer the partition's last segment: nothing is appended to it, and its index in
    /// memory was thinned ([`Segment::close`]).
    pub closed: bool,
}

impl Segment {
    pub fn new(base: u64, len: u64) -> Segment {
        Segment {
            base,
            len,
            file: None,
            index: Vec::new(),
            indexer: Indexer { last_indexed: None, max_ts: i64::MIN },
            index_file: None,
            closed: false,
        }
    }

    /// Marks the segment as no longer the partition's last: keeps one entry of its index in
    /// memory every [`CLOSED_INDEX_INTERVAL`] bytes and drops its index file's handle (the
    /// writer's; the file stays on disk, whole).
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.index_file = None;
        let mut last_kept: Option<u64> = None;
        self.index.retain(|e| {
            let keep = last_kept.is_none_or(|last| e.position >= last + CLOSED_INDEX_INTERVAL);
            if keep {
                last_kept = Some(e.position);
            }
            keep
        });
        self.index.shrink_to_fit();
    }
}

/// One partition of a topic.
#[derive(Debug, Default)]
pub struct Partition {
    pub dir: PathBuf,
    /// The first offset still held.
    pub start: u64,
    /// The committed end: readers see the records below it only.
    pub end: u64,
    /// Oldest first; the last one is the active segment.
    pub segments: Vec<Segment>,
}

impl Partition {
    pub fn log_path(&self, base: u64) -> PathBuf {
        self.dir.join(format!("{base:020}.log"))
    }
    pub fn index_path(&self, base: u64) -> PathBuf {
        self.dir.join(format!("{base:020}.idx"))
    }
    /// The committed end as a journal entry states it.
    pub fn end_entry(&self, topic: u32, partition: u32) -> Option<PartitionEnd> {
        let last = self.segments.last()?;
        Some(PartitionEnd { topic, partition, end: self.end, segment: last.base, segment_len: last.len })
    }
    /// The segment holding `offset` (the last one whose base is at most it).
    pub fn segment_for(&self, offset: u64) -> Option<usize> {
        let after = self.segments.partition_point(|s| s.base <= offset);
        after.checked_sub(1)
    }
    /// Closes every segment but the last ([`Segment::close`]).
    pub fn close_all_but_last(&mut self) {
        let count = self.segments.len();
        self.segments.iter_mut().take(count.saturating_sub(1)).for_each(Segment::close);
    }
    /// Where the records after segment `i` begin (the next segment's base, or the end).
    pub fn segment_end_offset(&self, i: usize) -> u64 {
        self.segments.get(i + 1).map_or(self.end, |s| s.base)
    }
}

#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Default)]
pub struct Group {
    pub offsets: HashMap<(u32, u32), u64>,
    pub state: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The whole committed picture.
#[derive(Debug, Default)]
pub struct Catalog {
    pub data_dir: PathBuf,
    /// Indexed by topic id.
    pub topics: Vec<Topic>,
    pub by_name: HashMap<String, u32>,
    pub groups: HashMap<String, Group>,
}

pub fn corrupt(path: &Path, detail: impl Into<String>) -> LogError {
    LogError::Corrupt { path: path.display().to_string(), detail: detail.into() }
}

impl Catalog {
    pub fn new(data_dir: &Path) -> Catalog {
        Catalog { data_dir: data_dir.to_owned(), ..Default::default() }
    }

    pub fn partition_dir(&self, name: &str, partition: u32) -> PathBuf {
        self.data_dir.join(TOPICS_DIR).join(name).join(partition.to_string())
    }

    pub fn partition(&self, topic: u32, partition: u32) -> Option<&Partition> {
        self.topics.get(topic as usize)?.partitions.get(partition as usize)
    }

    pub fn partition_mut(&mut self, topic: u32, partition: u32) -> Option<&mut Partition> {
        self.topics.get_mut(topic as usize)?.partitions.get_mut(partition as usize)
    }

    /// Applies one journal entry to the metadata (no file is touched). `journal` and
    /// `position` name the entry in errors.
    pub fn apply(&mut self, entry: &Entry, journal: &Path, position: u64) -> Result<()> {
        let bad = |what: String| corrupt(journal, format!("the entry at byte offset {position} {what}"));
        match entry {
            Entry::Topic { id, name, partitions } => {
                if *id as usize != self.topics.len() || self.by_name.contains_key(name) {
                    return Err(bad(format!("creates topic {name:?} with id {id} twice or out of order")));
                }
                if *partitions > super::MAX_PARTITIONS {
                    return Err(bad(format!("creates topic {name:?} with {partitions} partitions")));
                }
                let partitions = (0..*partitions)
                    .map(|p| Partition { dir: self.partition_dir(name, p), ..Default::default() })
                    .collect();
                self.topics.push(Topic { name: name.clone(), partitions });
                self.by_name.insert(name.clone(), *id);
            }
            Entry::Commit { group, offsets, ends, state, .. } => {
                for e in ends {
                    let partition = self.partition_mut(e.topic, e.partition).ok_or_else(|| {
                        bad(format!("names partition {}/{} that does not exist", e.topic, e.partition))
                    })?;
                    partition.end = e.end;
                    match partition.segments.last_mut() {
                        Some(last) if last.base == e.segment => last.len = e.segment_len,
                        Some(last) if last.base > e.segment => {
                            return Err(bad(format!(
                                "moves partition {}/{} back to segment {}",
                                e.topic, e.partition, e.segment
                            )))
                        }
                        _ => partition.segments.push(Segment::new(e.segment, e.segment_len)),
                    }
                }
                if !offsets.is_empty() || !state.is_empty() {
                    let g = self.groups.entry(group.clone()).or_default();
                    for (topic, partition, next) in offsets {
                        g.offsets.insert((*topic, *partition), *next);
                    }
                    for (key, value) in state {
                        match value {
                            Some(value) => g.state.insert(key.clone(), value.clone()),
                            None => g.state.remove(key),
                        };
                    }
                }
            }
            Entry::Start { topic, partition, start } => {
                let partition = self
                    .partition_mut(*topic, *partition)
                    .ok_or_else(|| bad(format!("names partition {topic}/{partition} that does not exist")))?;
                partition.start = *start;
                partition.segments.retain(|s| s.base >= *start);
            }
            Entry::Synced { .. } => {}
        }
        Ok(())
    }

    /// The journal entries that rebuild this catalog from nothing (a checkpoint).
    pub fn checkpoint_entries(&self) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut ends = Vec::new();
        for (id, topic) in self.topics.iter().enumerate() {
            let id = id as u32;
            entries.push(Entry::Topic { id, name: topic.name.clone(), partitions: topic.partitions.len() as u32 });
            for (p, partition) in topic.partitions.iter().enumerate() {
                if partition.start > 0 {
                    entries.push(Entry::Start { topic: id, partition: p as u32, start: partition.start });
                }
                ends.extend(partition.end_entry(id, p as u32));
            }
        }
        entries.push(Entry::Commit { data_synced: true, group: String::new(), offsets: vec![], ends, state: vec![] });
        let mut groups: Vec<_> = self.groups.iter().collect();
        groups.sort_by(|a, b| a.0.cmp(b.0));
        for (name, group) in groups {
            let mut offsets: Vec<_> = group.offsets.iter().map(|((t, p), n)| (*t, *p, *n)).collect();
            offsets.sort_unstable();
            let state = group.state.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
            entries.push(Entry::Commit { data_synced: true, group: name.clone(), offsets, ends: vec![], state });
        }
        entries
    }
}

/// Why a scan stopped before its end.
#[derive(Debug)]
pub struct BadRecord {
    pub position: u64,
    pub detail: String,
}

/// Reads the records of `file` in `[from, to)`, calling `each(record, position)` until it
/// returns false. `Ok(Err(bad))` when the bytes at some position are not a record.
///
/// Reads in chunks of [`FIRST_CHUNK`], doubling up to [`CHUNK`] (a fetch of a few records near
/// the end of a partition reads a few kilobytes, a long one 1 MiB at a time), into a buffer
/// kept by the thread: a fresh buffer each call was allocated, zeroed and faulted in each
/// time (a fifth of the QoE stage's CPU at 150,000 events/s).
pub fn scan(
    file: &File,
    from: u64,
    to: u64,
    each: impl FnMut(&RecordRef<'_>, u64) -> bool,
) -> std::io::Result<std::result::Result<(), BadRecord>> {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let scanned = scan_with(&mut buf, file, from, to, each);
            if buf.capacity() > 4 * CHUNK {
                // A record far larger than a chunk was read: do not keep its memory.
                *buf = Vec::new();
            }
            scanned
        }
        // Called from within `each`: a buffer of its own.
        Err(_) => scan_with(&mut Vec::new(), file, from, to, each),
    })
}

/// The first chunk [`scan`] reads.
const FIRST_CHUNK: usize = 64 << 10;

fn scan_with(
    buf: &mut Vec<u8>,
    file: &File,
    from: u64,
    to: u64,
    mut each: impl FnMut(&RecordRef<'_>, u64) -> bool,
) -> std::io::Result<std::result::Result<(), BadRecord>> {
    let mut pos = from;
    let mut chunk = FIRST_CHUNK;
    while pos < to {
        let want = (to - pos).min(chunk as u64) as usize;
        chunk = (chunk * 2).min(CHUNK);
        // Grows the buffer once; its bytes are overwritten by the read.
        if buf.len() < want {
            buf.resize(want, 0);
        }
        read_exact_at(file, &mut buf[..want], pos)?;
        let mut filled = want;
        let mut at = 0usize;
        loop {
            if at == filled {
                break;
            }
            match decode_record(&buf[at..filled]) {
                Ok(record) => {
                    if !each(&record, pos + at as u64) {
                        return Ok(Ok(()));
                    }
                    at += record.size;
                }
                Err(RecordError::Incomplete { needed }) => {
                    if pos + (at + needed) as u64 > to {
                        return Ok(Err(BadRecord {
                            position: pos + at as u64,
                            detail: format!("a record of {needed} bytes that runs past the end ({to})"),
                        }));
                    }
                    if at == 0 {
                        // A record larger than the chunk: read it whole.
                        if buf.len() < needed {
                            buf.resize(needed, 0);
                        }
                        read_exact_at(file, &mut buf[..needed], pos)?;
                        filled = needed;
                        continue;
                    }
                    break;
                }
                Err(error) => return Ok(Err(BadRecord { position: pos + at as u64, detail: error.to_string() })),
            }
        }
        pos += at as u64;
    }
    Ok(Ok(()))
}

fn read_exact_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    file.read_exact_at(buf, pos).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            std::io::Error::new(e.kind(), format!("the file ends before byte {}", pos + buf.len() as u64))
        } else {
            e
        }
    })
}

/// Loads the sparse index of a segment, keeping only the entries that are consistent with the
/// segment (`base`, `len` committed bytes, records below `end_offset`); a damaged index only
/// costs longer scans.
pub fn load_index(path: &Path, base: u64, len: u64, end_offset: u64) -> Vec<IndexEntry> {
    let mut entries = Vec::new();
    extend_index(&mut entries, path, base, len, end_offset);
    entries
}

/// Adds to `entries` those of the index file past them (a reader following a growing segment).
pub fn extend_index(entries: &mut Vec<IndexEntry>, path: &Path, base: u64, len: u64, end_offset: u64) {
    let from = index_bytes(entries.len());
    let Ok(file) = File::open(path) else { return };
    let size = file.metadata().map_or(0, |m| m.len());
    let mut bytes = vec![0; size.saturating_sub(from) as usize];
    if file.read_exact_at(&mut bytes, from).is_err() {
        return;
    }
    for e in IndexEntry::decode_all(&bytes) {
        let ordered = match entries.last() {
            Some(prev) => e.offset > prev.offset && e.position > prev.position && e.max_ts_before >= prev.max_ts_before,
            None => e.offset == base && e.position == 0,
        };
        if !ordered || e.position >= len || e.offset >= end_offset {
            break;
        }
        entries.push(e);
    }
}

/// Bytes of `n` index entries.
pub fn index_bytes(n: usize) -> u64 {
    (n * INDEX_ENTRY) as u64
}
