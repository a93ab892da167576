//! Log files tailed line by line (`[[collect.files]]`), as a source stage that reads on the
//! runner's own thread: it reads only when the runner asks for records, so a log that falls
//! behind simply slows the reading (back-pressure without a queue), and memory is one read
//! buffer plus one open file per tailed file.
//!
//! **Positions.** A file is known by its device and inode (its path is kept for humans and for
//! the record key). Its position (the byte after the last line emitted) is a state entry of the
//! stage, written in the same atomic commit as the records it covers, on either log backend: a
//! crash or a stop at any instant neither loses nor duplicates a line, and a restart resumes
//! at the committed position. The entry also holds a fingerprint (MD5 of the file's first
//! bytes, up to 1 KiB), so that a file whose inode was reused, or which was rewritten under its
//! position, is read from its start instead of from a position that means nothing in it.
//!
//! **Rotation.** The patterns are expanded every `poll_interval`. A file that leaves its path
//! (rename + create, or deletion) stays open and is read to its end before the lines of the
//! file that took its place (records of one path share a key, so they stay in order in one
//! partition), then closed once it has not grown for `rotate_wait`. A file that shrinks under
//! its position (copytruncate) is read again from its start. After a restart, a remembered file
//! that no pattern matches any more is looked for by inode in its directory (`app.log.1`), so
//! the tail it had left is read too.
//!
//! **Lines.** One record per line (LF; a CR before it is removed; empty lines are skipped). A
//! line longer than `max_line` is written cut at that size and counted as `oversized`, the rest
//! of it skipped (as the network listeners cut their frames). A last line without its newline
//! waits for it, and is written alone once the file has not grown for `flush_partial_after`.

use crate::config::{FileSourceConfig, ReadFrom};
use crate::metrics::{ListenerMetrics, RateLimited};
use crate::source::RawJson;
use lux_model::{format_rfc3339_millis, Format};
use lux_stage::{Context, Source, SourcePoll};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of a file's start that make its fingerprint.
const HEAD: u64 = 1024;
/// Smallest read (a read is at least `max_line + 1` bytes, so that an over-long line shows).
const MIN_READ: usize = 64 << 10;
/// Most bytes read from one file in one poll, whatever they hold (a file of empty lines or of
/// one endless line gives no record to count, and must not hold the runner).
const MAX_BYTES_PER_POLL: u64 = 16 << 20;
/// The state key of a file's position: `file/<device>:<inode>`.
const KEY_PREFIX: &str = "file/";

/// A file's identity: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(metadata: &std::fs::Metadata) -> FileId {
        FileId { dev: metadata.dev(), ino: metadata.ino() }
    }

    fn state_key(self) -> Vec<u8> {
        format!("{KEY_PREFIX}{}:{}", self.dev, self.ino).into_bytes()
    }

    fn from_state_key(key: &[u8]) -> Option<FileId> {
        let text = std::str::from_utf8(key).ok()?.strip_prefix(KEY_PREFIX)?;
        let (dev, ino) = text.split_once(':')?;
        Some(FileId { dev: dev.parse().ok()?, ino: ino.parse().ok()? })
    }
}

/// What the log remembers of a file (the value of its state entry, JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Where the file is now (for humans, and to find it again after a rotation).
    pub path: String,
    /// The record key of its lines: the path it was first found at, so that a rotated file and
    /// the one that replaced it write to the same partition.
    pub key: String,
    /// The byte after the last line written.
    pub offset: u64,
    /// Inside an over-long line whose start was written cut: skip to its newline.
    #[serde(default)]
    pub skipping: bool,
    /// How many of the file's first bytes the fingerprint covers.
    pub head_len: u64,
    /// MD5 of those bytes, hex.
    pub head_md5: String,
}

/// A file being tailed.
struct Tailed {
    id: FileId,
    file: File,
    checkpoint: Checkpoint,
    /// Found at a matched path by the last scan (false: rotated away or deleted).
    matched: bool,
    /// Its leaving its path was counted.
    left: bool,
    /// The last read found nothing more to read (or only a partial line): wait for the file to
    /// grow (seen by the next scan) before reading again.
    waiting: bool,
    /// Since when the file has not grown.
    idle_since: Option<Instant>,
    /// Its size at the last scan.
    size: u64,
    /// The checkpoint changed since the last poll (its state entry is due).
    dirty: bool,
}

/// Turns a file's lines into raw records.
struct Lines {
    source_id: String,
    format: Format,
    raw_topic: String,
    max_line: usize,
    metrics: Arc<ListenerMetrics>,
    /// The reception time of the current poll, formatted once.
    stamp: (i64, String),
    /// Records emitted since the last commit.
    emitted: u64,
}

impl Lines {
    fn emit(&mut self, ctx: &mut Context, key: &str, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        let json = RawJson::new(&self.source_id, self.format, (self.stamp.0, &self.stamp.1), None);
        ctx.emit(&self.raw_topic, key.as_bytes(), self.stamp.0, json.record(line));
        ctx.received(self.stamp.0);
        self.emitted += 1;
        ListenerMetrics::inc(&self.metrics.received);
    }

    /// Emits the file's next lines, at most `budget`; returns how many.
    fn read(&mut self, tailed: &mut Tailed, buf: &mut [u8], ctx: &mut Context, budget: usize) -> usize {
        let before = self.emitted;
        let count = |lines: &Lines| usize::try_from(lines.emitted - before).unwrap_or(usize::MAX);
        let start = tailed.checkpoint.offset;
        while count(self) < budget && tailed.checkpoint.offset.saturating_sub(start) < MAX_BYTES_PER_POLL {
            let n = match tailed.file.read_at(buf, tailed.checkpoint.offset) {
                Ok(n) => n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    ListenerMetrics::inc(&self.metrics.read_errors);
                    tracing::warn!(source = %self.source_id, path = %tailed.checkpoint.path, %error, "cannot read the file; trying again at the next scan");
                    tailed.waiting = true;
                    break;
                }
            };
            let data = buf.get(..n).unwrap_or_default();
            if data.is_empty() {
                tailed.waiting = true;
                break;
            }
            let mut pos = 0;
            let mut partial = false;
            while pos < data.len() && count(self) < budget {
                let rest = data.get(pos..).unwrap_or_default();
                let newline = memchr::memchr(b'\n', rest);
                if tailed.checkpoint.skipping {
                    // The rest of an over-long line, already written cut.
                    match newline {
                        Some(i) => {
                            pos += i + 1;
                            tailed.checkpoint.skipping = false;
                        }
                        None => pos = data.len(),
                    }
                    continue;
                }
                match newline {
                    Some(i) if i <= self.max_line => {
                        self.emit(ctx, &tailed.checkpoint.key, rest.get(..i).unwrap_or_default());
                        pos += i + 1;
                    }
                    Some(_) => {
                        self.emit(ctx, &tailed.checkpoint.key, rest.get(..self.max_line).unwrap_or_default());
                        ListenerMetrics::inc(&self.metrics.oversized);
                        pos += self.max_line;
                        tailed.checkpoint.skipping = true;
                    }
                    None if rest.len() > self.max_line => {
                        self.emit(ctx, &tailed.checkpoint.key, rest.get(..self.max_line).unwrap_or_default());
                        ListenerMetrics::inc(&self.metrics.oversized);
                        pos += self.max_line;
                        tailed.checkpoint.skipping = true;
                    }
                    None => {
                        partial = true;
                        break;
                    }
                }
            }
            if pos > 0 {
                tailed.checkpoint.offset += pos as u64;
                tailed.dirty = true;
            } else if partial {
                // Only the start of a line is there: it waits for its newline.
                tailed.waiting = true;
                break;
            }
        }
        if tailed.dirty && tailed.checkpoint.head_len < HEAD && tailed.checkpoint.offset > tailed.checkpoint.head_len {
            set_fingerprint(&tailed.file, &mut tailed.checkpoint);
        }
        count(self)
    }

    /// Writes what is left of a file after its last newline as one record (a last line its
    /// writer did not finish), or skips it when it is the rest of an over-long line.
    fn flush_partial(&mut self, tailed: &mut Tailed, size: u64, buf: &mut [u8], ctx: &mut Context) {
        let len = usize::try_from(size.saturating_sub(tailed.checkpoint.offset)).unwrap_or(usize::MAX);
        if !tailed.checkpoint.skipping {
            let want = len.min(self.max_line).min(buf.len());
            let Some(part) = buf.get_mut(..want) else { return };
            if tailed.file.read_exact_at(part, tailed.checkpoint.offset).is_err() {
                return; // changed under us: the next scan looks again
            }
            if memchr::memchr(b'\n', part).is_some() {
                return; // a newline arrived meanwhile: the next read takes it
            }
            self.emit(ctx, &tailed.checkpoint.key, part);
            ListenerMetrics::inc(&self.metrics.partial_flushed);
        }
        tailed.checkpoint.offset = size;
        tailed.checkpoint.skipping = false;
        tailed.dirty = true;
    }
}

/// MD5 (hex) of a file's first `len` bytes; `None` when they cannot be read.
fn head_md5(file: &File, len: u64) -> Option<String> {
    let mut head = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut head, 0).ok()?;
    let digest: [u8; 16] = Md5::digest(&head).into();
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether the file still starts with the bytes its checkpoint was taken on.
fn head_matches(file: &File, checkpoint: &Checkpoint) -> bool {
    checkpoint.head_len == 0 || head_md5(file, checkpoint.head_len).is_some_and(|md5| md5 == checkpoint.head_md5)
}

fn set_fingerprint(file: &File, checkpoint: &mut Checkpoint) {
    let len = checkpoint.offset.min(HEAD);
    if let Some(md5) = head_md5(file, len) {
        checkpoint.head_len = len;
        checkpoint.head_md5 = md5;
    }
}

/// A file of `near`'s directory with inode `id` (where a rotation moved it).
fn find_by_inode(near: &Path, id: FileId) -> Option<PathBuf> {
    let dir = near.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && FileId::of(&m) == id))
}

/// The tailed files of one `[[collect.files]]` entry, as a source stage.
pub struct FileSource {
    name: String,
    config: FileSourceConfig,
    lines: Lines,
    files: Vec<Tailed>,
    /// Positions read from the log and not yet matched to an open file (until the first scan).
    remembered: HashMap<FileId, Checkpoint>,
    /// Whether a scan has run since the last restore.
    scanned: bool,
    /// Whether a scan has run since the process started (`read_from` applies before it).
    started: bool,
    last_scan: Option<Instant>,
    /// Matches left alone for want of room (counted once each).
    skipped: HashSet<FileId>,
    buf: Vec<u8>,
    warn: RateLimited,
}

impl FileSource {
    pub fn new(config: &FileSourceConfig, raw_topic: &str) -> FileSource {
        let max_line = usize::try_from(config.max_line.bytes()).unwrap_or(usize::MAX).max(1);
        FileSource {
            name: format!("collect-{}", config.source),
            config: config.clone(),
            lines: Lines {
                source_id: config.source.clone(),
                format: config.format,
                raw_topic: raw_topic.to_owned(),
                max_line,
                metrics: Arc::new(ListenerMetrics::default()),
                stamp: (i64::MIN, String::new()),
                emitted: 0,
            },
            files: Vec::new(),
            remembered: HashMap::new(),
            scanned: false,
            started: false,
            last_scan: None,
            skipped: HashSet::new(),
            buf: vec![0; max_line.saturating_add(1).max(MIN_READ)],
            warn: RateLimited::new(Duration::from_secs(10)),
        }
    }

    /// The source's counters (shared: they move while it runs).
    pub fn metrics(&self) -> Arc<ListenerMetrics> {
        self.lines.metrics.clone()
    }

    /// What it tails, for logs: `files /var/log/olt/*.log`.
    pub fn description(&self) -> String {
        format!("files {}", self.config.paths.join(", "))
    }

    /// The source id.
    pub fn source_id(&self) -> &str {
        &self.config.source
    }

    fn warn(&mut self, message: std::fmt::Arguments<'_>) {
        if let Some(held_back) = self.warn.allow() {
            tracing::warn!(source = %self.config.source, held_back, "{message}");
        }
    }

    /// Every regular file the patterns match now, sorted, without duplicates.
    fn matches(&mut self) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for pattern in self.config.paths.clone() {
            match glob::glob(&pattern) {
                Ok(found) => {
                    for entry in found {
                        match entry {
                            Ok(path) => paths.push(path),
                            Err(error) => self.warn(format_args!(
                                "cannot look into {}: {} (check its permissions)",
                                error.path().display(),
                                error.error()
                            )),
                        }
                    }
                }
                Err(error) => self.warn(format_args!("{pattern:?} is not a glob pattern: {error}")),
            }
        }
        paths.sort();
        paths.dedup();
        paths
    }

    /// Opens a file to tail, at its remembered position, at its end, or at its start.
    fn open(&mut self, path: &Path, id: FileId, remembered: Option<Checkpoint>, from_end: bool) -> Option<&mut Tailed> {
        if self.files.len() >= self.config.max_files {
            if self.skipped.insert(id) {
                ListenerMetrics::inc(&self.lines.metrics.files_skipped);
                let max_files = self.config.max_files;
                self.warn(format_args!(
                    "{} is left alone: max_files ({max_files}) files are tailed already (raise max_files)",
                    path.display()
                ));
            }
            return None;
        }
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) => {
                ListenerMetrics::inc(&self.lines.metrics.read_errors);
                self.warn(format_args!("cannot open {}: {error} (check its permissions)", path.display()));
                return None;
            }
        };
        let size = match file.metadata() {
            Ok(metadata) if FileId::of(&metadata) == id => metadata.len(),
            _ => return None, // replaced between the look and the open: the next scan sees it
        };
        let shown = path.display().to_string();
        let mut dirty = true;
        let checkpoint = match remembered {
            Some(checkpoint) if checkpoint.offset <= size && head_matches(&file, &checkpoint) => {
                dirty = checkpoint.path != shown;
                Checkpoint { path: shown, ..checkpoint }
            }
            Some(checkpoint) => {
                ListenerMetrics::inc(&self.lines.metrics.truncations);
                tracing::info!(source = %self.config.source, path = %shown, "the file is not the one whose position was remembered (truncated or replaced): reading it from its start");
                Checkpoint {
                    path: shown,
                    key: checkpoint.key,
                    offset: 0,
                    skipping: false,
                    head_len: 0,
                    head_md5: String::new(),
                }
            }
            None => {
                let offset = if from_end { size } else { 0 };
                let mut checkpoint = Checkpoint {
                    path: shown.clone(),
                    key: shown,
                    offset,
                    skipping: false,
                    head_len: 0,
                    head_md5: String::new(),
                };
                if offset > 0 {
                    set_fingerprint(&file, &mut checkpoint);
                }
                checkpoint
            }
        };
        tracing::info!(source = %self.config.source, path = %checkpoint.path, offset = checkpoint.offset, "tailing");
        ListenerMetrics::inc(&self.lines.metrics.files_opened);
        ListenerMetrics::inc(&self.lines.metrics.files_open);
        self.files.push(Tailed {
            id,
            file,
            checkpoint,
            matched: true,
            left: false,
            waiting: false,
            idle_since: None,
            size: 0,
            dirty,
        });
        self.files.last_mut()
    }

    /// Looks at the files: new matches are opened, files that left their path noted,
    /// truncations detected, idle partial lines flushed, rotated files read to their end closed.
    fn scan(&mut self, ctx: &mut Context) {
        let now = Instant::now();
        self.last_scan = Some(now);
        for tailed in &mut self.files {
            tailed.matched = false;
        }
        for path in self.matches() {
            let Ok(metadata) = std::fs::metadata(&path) else { continue }; // gone meanwhile
            if !metadata.is_file() {
                continue;
            }
            let id = FileId::of(&metadata);
            if let Some(tailed) = self.files.iter_mut().find(|t| t.id == id) {
                let shown = path.display().to_string();
                if !tailed.matched && tailed.checkpoint.path != shown {
                    tailed.checkpoint.path = shown; // renamed to another matched path
                    tailed.dirty = true;
                }
                tailed.matched = true;
                continue;
            }
            let remembered = self.remembered.remove(&id);
            let from_end = !self.started && self.config.read_from == ReadFrom::End;
            self.open(&path, id, remembered, from_end);
        }
        if !self.scanned {
            // Positions of files no pattern matches any more: rotated while LUX was stopped
            // (their tail is read from where they are now) or removed (their rest is lost).
            let mut remembered: Vec<(FileId, Checkpoint)> = self.remembered.drain().collect();
            remembered.sort_by(|a, b| a.1.path.cmp(&b.1.path));
            for (id, checkpoint) in remembered {
                let found = find_by_inode(Path::new(&checkpoint.path), id);
                let opened = match &found {
                    Some(path) => {
                        self.open(path, id, Some(checkpoint.clone()), false).map(|t| t.matched = false).is_some()
                    }
                    None => false,
                };
                if !opened {
                    ListenerMetrics::inc(&self.lines.metrics.files_lost);
                    tracing::warn!(source = %self.config.source, path = %checkpoint.path, offset = checkpoint.offset,
                        "a tailed file was removed while LUX was stopped: what it had after this offset is lost");
                    ctx.set_state(0, id.state_key(), None);
                }
            }
        }
        self.scanned = true;
        self.started = true;
        let mut closed = Vec::new();
        for (index, tailed) in self.files.iter_mut().enumerate() {
            if tailed.matched {
                tailed.left = false;
            } else if !tailed.left {
                tailed.left = true;
                ListenerMetrics::inc(&self.lines.metrics.rotations);
                tracing::info!(source = %self.config.source, path = %tailed.checkpoint.path, "the file left its path (rotated or deleted): reading it to its end");
            }
            let size = tailed.file.metadata().map(|m| m.len()).unwrap_or(tailed.size);
            let grew = size != tailed.size;
            tailed.size = size;
            let rewritten =
                grew && size >= tailed.checkpoint.head_len && !head_matches(&tailed.file, &tailed.checkpoint);
            if size < tailed.checkpoint.offset || rewritten {
                ListenerMetrics::inc(&self.lines.metrics.truncations);
                tracing::info!(source = %self.config.source, path = %tailed.checkpoint.path, "the file was truncated (copytruncate) or rewritten: reading it again from its start");
                tailed.checkpoint = Checkpoint {
                    offset: 0,
                    skipping: false,
                    head_len: 0,
                    head_md5: String::new(),
                    ..std::mem::take(&mut tailed.checkpoint)
                };
                tailed.dirty = true;
                tailed.waiting = false;
            }
            if grew {
                tailed.idle_since = None;
                tailed.waiting = false;
                continue;
            }
            let idle = now.duration_since(*tailed.idle_since.get_or_insert(now));
            if !tailed.waiting {
                continue;
            }
            let flush = !self.config.flush_partial_after.is_zero() && idle >= self.config.flush_partial_after;
            let leaving = !tailed.matched && idle >= self.config.rotate_wait;
            if tailed.checkpoint.offset < size && (flush || leaving) {
                self.lines.flush_partial(tailed, size, &mut self.buf, ctx);
            }
            if leaving && tailed.checkpoint.offset >= size {
                closed.push(index);
            }
        }
        for index in closed.into_iter().rev() {
            let tailed = self.files.remove(index);
            ctx.set_state(0, tailed.id.state_key(), None);
            self.lines.metrics.files_open.fetch_sub(1, Ordering::Relaxed);
            self.skipped.clear();
            tracing::info!(source = %self.config.source, path = %tailed.checkpoint.path, "the rotated file is read to its end: closed");
        }
    }
}

impl Source for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.lines.raw_topic.clone()]
    }

    fn restore(&mut self, state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        // Everything read but not committed is void: read again from the committed positions.
        self.lines.metrics.files_open.fetch_sub(self.files.len() as u64, Ordering::Relaxed);
        self.files.clear();
        self.remembered.clear();
        self.skipped.clear();
        self.scanned = false;
        self.last_scan = None;
        self.lines.emitted = 0;
        for (key, value) in state {
            let Some(id) = FileId::from_state_key(&key) else { continue };
            match serde_json::from_slice::<Checkpoint>(&value) {
                Ok(checkpoint) => {
                    self.remembered.insert(id, checkpoint);
                }
                Err(error) => {
                    tracing::warn!(source = %self.config.source, key = %String::from_utf8_lossy(&key), %error,
                    "a remembered file position cannot be read; the file is read as a new one")
                }
            }
        }
        tracing::info!(source = %self.config.source, positions = self.remembered.len(), "file positions restored from the log");
        Ok(())
    }

    fn poll(&mut self, ctx: &mut Context, max_records: usize) -> anyhow::Result<SourcePoll> {
        if self.lines.stamp.0 != ctx.now_wall_ms {
            self.lines.stamp = (ctx.now_wall_ms, format_rfc3339_millis(ctx.now_wall_ms));
        }
        let interval = self.config.poll_interval;
        if self.last_scan.is_none_or(|at| at.elapsed() >= interval) {
            self.scan(ctx);
        }
        // Files that left their path first: a rotated file's tail before its successor's lines.
        let mut order: Vec<usize> = (0..self.files.len()).collect();
        order.sort_by_key(|&i| self.files.get(i).is_some_and(|t| t.matched));
        let budget = max_records.max(1);
        let mut emitted = 0;
        for index in order {
            if emitted >= budget {
                break;
            }
            let Some(tailed) = self.files.get_mut(index) else { continue };
            if !tailed.waiting {
                emitted += self.lines.read(tailed, &mut self.buf, ctx, budget - emitted);
            }
        }
        for tailed in &mut self.files {
            if std::mem::take(&mut tailed.dirty) {
                let value = serde_json::to_vec(&tailed.checkpoint)?;
                ctx.set_state(0, tailed.id.state_key(), Some(value));
            }
        }
        if emitted > 0 || self.files.iter().any(|t| !t.waiting) {
            return Ok(SourcePoll::Ready);
        }
        let since = self.last_scan.map(|at| at.elapsed()).unwrap_or_default();
        Ok(SourcePoll::Idle(interval.saturating_sub(since)))
    }

    fn committed(&mut self) {
        ListenerMetrics::add(&self.lines.metrics.written, std::mem::take(&mut self.lines.emitted));
    }

    fn counters(&self) -> Vec<(String, u64)> {
        self.lines.metrics.snapshot()
    }
}
