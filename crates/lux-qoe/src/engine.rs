//! The QoE engine: enriched events counted into tumbling windows of event time per dimension
//! value ("cells"), windows closed (written as [`QoeIndicator`]s) as the watermark passes their
//! end, and the state entries that let a restarted engine carry on where it stopped.
//!
//! Watermarks follow the alarm stage's rules ([`lux_stage::watermark`]): each input partition's
//! is its highest event time minus `out_of_orderness`, the engine's the lowest over partitions
//! not idle. An event older than its partition's watermark, or of a window already written, is
//! late: counted, not added, so that a written indicator never changes.

mod cell_entry;

use crate::hll::HyperLogLog;
use crate::QoeConfig;
use lux_model::{ratio, AttrRef, EnrichedEvent, ErrorCodeCount, EventKind, QoeIndicator, SessionDurations, SmallStr};
use lux_stage::watermark::PartitionWatermarks;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The key of the state entry holding the watermarks and counters.
pub const META_KEY: &[u8] = b"meta";
/// The prefix of the cells' state entries: `cell/<window start ms>/<dimension>/<value>`.
pub const CELL_KEY_PREFIX: &str = "cell/";
const STATE_VERSION: u32 = 1;

/// What [`QoeEngine::on_event`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Added to the cells of its window.
    Counted,
    /// Covered by an intervention with `exclude_from_kpi`: counted as excluded only.
    Excluded,
    /// Older than its partition's watermark, or of a window already written.
    Late,
    /// A cell it needed was new and `max_cells` cells were open: not added there.
    Overflow,
}

/// Counters of the engine, for metrics and the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QoeCounters {
    /// Events added to their cells (excluded ones too: they are counted in them as excluded).
    pub counted: u64,
    /// Events covered by an intervention with `exclude_from_kpi`.
    pub excluded: u64,
    pub late: u64,
    pub overflow: u64,
    /// Indicator records written.
    pub indicators: u64,
}

/// The counts of one (window, dimension, value).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cell {
    events: u64,
    attempts: u64,
    setup_successes: u64,
    auth_failures: u64,
    stops: u64,
    drops: u64,
    short_sessions: u64,
    failures: u64,
    excluded_events: u64,
    #[serde(with = "sketch_text")]
    subscribers: HyperLogLog,
    durations: SessionDurations,
    /// Error code -> failures and drops that carried it.
    codes: BTreeMap<String, u64>,
    /// Whether a state entry holds it (to delete when its window is written).
    #[serde(skip)]
    persisted: bool,
    /// Changed since the last `take_changes`.
    #[serde(skip)]
    dirty: bool,
}

mod sketch_text {
    use crate::hll::HyperLogLog;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sketch: &HyperLogLog, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&sketch.encode())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HyperLogLog, D::Error> {
        HyperLogLog::decode(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// What one event adds to each of its cells (computed once per event).
struct Contribution<'a> {
    attempt: bool,
    setup_success: bool,
    auth_failure: bool,
    stop: bool,
    drop: bool,
    failure: bool,
    /// The session's duration in seconds (a stop that carries one).
    duration_s: Option<u64>,
    /// A failure or a drop: its subscriber is affected, its code counted.
    affected: Option<&'a [u8]>,
    code: Option<&'a str>,
    problem: bool,
}

impl Cell {
    fn add(&mut self, c: &Contribution<'_>, short_session_s: u64) {
        self.events += 1;
        self.attempts += u64::from(c.attempt);
        self.setup_successes += u64::from(c.setup_success);
        self.auth_failures += u64::from(c.auth_failure);
        self.stops += u64::from(c.stop);
        self.drops += u64::from(c.drop);
        self.failures += u64::from(c.failure);
        if let Some(d) = c.duration_s {
            self.durations.add(d);
            self.short_sessions += u64::from(d < short_session_s);
        }
        if let Some(subscriber) = c.affected {
            self.subscribers.insert(subscriber);
        }
        if let (true, Some(code)) = (c.problem, c.code) {
            match self.codes.get_mut(code) {
                Some(n) => *n += 1,
                None => {
                    self.codes.insert(code.to_owned(), 1);
                }
            }
        }
    }

    fn indicator(&self, start: i64, window_ms: i64, dimension: &str, value: &str, top: usize) -> QoeIndicator {
        let mut codes: Vec<ErrorCodeCount> =
            self.codes.iter().map(|(code, &count)| ErrorCodeCount { code: code.clone(), count }).collect();
        codes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
        codes.truncate(top);
        QoeIndicator {
            schema: lux_model::schema::QOE.to_owned(),
            window_start: start,
            window_end: start.saturating_add(window_ms),
            dimension: dimension.to_owned(),
            value: value.to_owned(),
            events: self.events,
            attempts: self.attempts,
            setup_successes: self.setup_successes,
            setup_success_rate: ratio(self.setup_successes, self.attempts),
            auth_failures: self.auth_failures,
            auth_failure_rate: ratio(self.auth_failures, self.attempts),
            stops: self.stops,
            drops: self.drops,
            drop_rate: ratio(self.drops, self.stops),
            short_sessions: self.short_sessions,
            short_session_ratio: ratio(self.short_sessions, self.durations.count),
            failures: self.failures,
            affected_subscribers: self.subscribers.estimate(),
            subscriber_sketch: self.subscribers.encode(),
            durations: self.durations.clone(),
            top_error_codes: codes,
            excluded_events: self.excluded_events,
        }
    }
}

/// The persisted engine-wide state.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaEntry {
    version: u32,
    /// Windows ending at or before it are written.
    watermark: Option<i64>,
    /// Partition -> highest event time seen.
    partitions: BTreeMap<u32, i64>,
    counters: QoeCounters,
}

/// The persisted form of a cell: binary ([`cell_entry`]) since format 2, JSON before (still
/// read).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CellEntry {
    version: u32,
    window_ms: i64,
    window_start: i64,
    dimension: String,
    value: String,
    cell: Cell,
}

/// `cell/<start>/<dimension>/<value>`, built without `format!` (whose machinery was a quarter
/// of the engine's time when it wrote its state).
fn cell_key(start: i64, dimension: &str, value: &str) -> Vec<u8> {
    let digits = SmallStr::decimal(start.unsigned_abs());
    let mut key = Vec::with_capacity(CELL_KEY_PREFIX.len() + 22 + dimension.len() + value.len());
    key.extend_from_slice(CELL_KEY_PREFIX.as_bytes());
    if start < 0 {
        key.push(b'-');
    }
    key.extend_from_slice(digits.as_bytes());
    key.push(b'/');
    key.extend_from_slice(dimension.as_bytes());
    key.push(b'/');
    key.extend_from_slice(value.as_bytes());
    key
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An invalid configuration: every problem, with its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid qoe configuration: {}", .0.iter().map(|p| format!("{}: {}", p.key, p.message)).collect::<Vec<_>>().join("; "))]
pub struct InvalidConfig(pub Vec<lux_model::ConfigProblem>);

/// Per-window, per-dimension-value indicators over enriched events. Pure logic: the stage feeds
/// events and wall-clock time, writes the indicators [`QoeEngine::advance`] returns and persists
/// [`QoeEngine::take_changes`] in the same commit.
#[derive(Debug)]
pub struct QoeEngine {
    window_ms: i64,
    dimensions: Vec<String>,
    short_session_s: u64,
    duration_attribute: String,
    top_error_codes: usize,
    max_cells: usize,
    clocks: PartitionWatermarks,
    /// Windows ending at or before it are written.
    watermark: Option<i64>,
    /// Window start -> per dimension (config order): value -> cell.
    windows: BTreeMap<i64, Vec<HashMap<String, Cell>>>,
    cells: usize,
    /// Cells changed since the last `take_changes` (window start, dimension index, value).
    dirty: Vec<(i64, usize, String)>,
    /// State keys to delete at the next `take_changes`.
    deleted: Vec<Vec<u8>>,
    meta_dirty: bool,
    counters: QoeCounters,
}

impl QoeEngine {
    /// An engine for `cfg` reading the input partitions `partitions` (each holds the watermark
    /// back until it shows an event or is idle). The configuration is validated first.
    pub fn new(cfg: &QoeConfig, partitions: &[u32]) -> Result<QoeEngine, InvalidConfig> {
        let problems = cfg.validate("qoe");
        if !problems.is_empty() {
            return Err(InvalidConfig(problems));
        }
        Ok(QoeEngine {
            window_ms: millis(cfg.window).max(1),
            dimensions: cfg.dimensions.clone(),
            short_session_s: cfg.short_session.as_secs(),
            duration_attribute: cfg.duration_attribute.clone(),
            top_error_codes: cfg.top_error_codes,
            max_cells: cfg.max_cells,
            clocks: PartitionWatermarks::new(partitions, millis(cfg.out_of_orderness), millis(cfg.idle_timeout)),
            watermark: None,
            windows: BTreeMap::new(),
            cells: 0,
            dirty: Vec::new(),
            deleted: Vec::new(),
            meta_dirty: false,
            counters: QoeCounters::default(),
        })
    }

    /// The engine's counters.
    pub fn counters(&self) -> QoeCounters {
        self.counters
    }

    /// Windows ending at or before this event time are written.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Open cells.
    pub fn open_cells(&self) -> usize {
        self.cells
    }

    /// Whether the engine reads the attributes of events of this kind: only session stops,
    /// for their duration. The stage reads the attributes of no other event.
    pub fn uses_attributes(kind: EventKind) -> bool {
        kind == EventKind::SessionStop
    }

    fn duration_s(&self, event: &EnrichedEvent) -> Option<u64> {
        match event.event.attributes.get(&self.duration_attribute)? {
            AttrRef::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            AttrRef::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Takes one enriched event read from input partition `partition` at wall time `now_wall_ms`.
    pub fn on_event(&mut self, partition: u32, event: &EnrichedEvent, now_wall_ms: i64) -> EventOutcome {
        let time = event.event.event_time;
        let start = time.div_euclid(self.window_ms).saturating_mul(self.window_ms);
        let late = self.clocks.is_late(partition, time)
            || self.watermark.is_some_and(|w| start.saturating_add(self.window_ms) <= w);
        if self.clocks.observe(partition, time, now_wall_ms) {
            self.meta_dirty = true;
        }
        self.meta_dirty = true;
        if late {
            self.counters.late += 1;
            return EventOutcome::Late;
        }
        let excluded = event.maintenance.as_ref().is_some_and(|m| m.exclude_from_kpi);
        let kind = event.event.kind;
        let stop = kind == EventKind::SessionStop;
        let drop = stop && event.error.as_ref().is_some_and(|e| e.is_drop);
        let problem = event.is_failure || drop;
        let contribution = Contribution {
            attempt: matches!(
                kind,
                EventKind::SessionStart | EventKind::AuthReject | EventKind::PppFailure | EventKind::DhcpFailure
            ),
            setup_success: kind == EventKind::SessionStart,
            auth_failure: kind == EventKind::AuthReject,
            stop,
            drop,
            failure: event.is_failure,
            duration_s: if stop { self.duration_s(event) } else { None },
            affected: event.event.subscriber.as_deref().filter(|_| problem).map(str::as_bytes),
            code: event.event.error_code.as_deref(),
            problem,
        };
        let mut overflow = false;
        let dimensions = self.dimensions.len();
        let window = self.windows.entry(start).or_insert_with(|| vec![HashMap::new(); dimensions]);
        for (cells, (di, dimension)) in window.iter_mut().zip(self.dimensions.iter().enumerate()) {
            let Some(value) = event.dimension(dimension) else { continue };
            let cell = match cells.get_mut(value) {
                Some(cell) => cell,
                None => {
                    if self.cells >= self.max_cells {
                        overflow = true;
                        continue;
                    }
                    self.cells += 1;
                    cells.entry(value.to_owned()).or_default()
                }
            };
            if excluded {
                cell.excluded_events += 1;
            } else {
                cell.add(&contribution, self.short_session_s);
            }
            if !cell.dirty {
                cell.dirty = true;
                self.dirty.push((start, di, value.to_owned()));
            }
        }
        if window.iter().all(HashMap::is_empty) {
            self.windows.remove(&start);
        }
        if overflow {
            self.counters.overflow += 1;
            return EventOutcome::Overflow;
        }
        self.counters.counted += 1;
        if excluded {
            self.counters.excluded += 1;
            EventOutcome::Excluded
        } else {
            EventOutcome::Counted
        }
    }

    /// Recomputes the watermark at wall time `now_wall_ms` and writes every window whose end it
    /// has passed. Returns their indicators, sorted by (window start, dimension in config
    /// order, value).
    pub fn advance(&mut self, now_wall_ms: i64) -> Vec<QoeIndicator> {
        match self.clocks.current(now_wall_ms) {
            Some(w) => self.advance_to(w),
            None => Vec::new(),
        }
    }

    /// Declares the input complete (a bounded input read to its end): every partition is taken
    /// as idle, as [`QoeEngine::advance`] does after `idle_timeout` of silence.
    pub fn finish_input(&mut self) -> Vec<QoeIndicator> {
        match self.clocks.highest() {
            Some(w) => self.advance_to(w),
            None => Vec::new(),
        }
    }

    fn advance_to(&mut self, watermark: i64) -> Vec<QoeIndicator> {
        if self.watermark.is_some_and(|old| watermark <= old) {
            return Vec::new();
        }
        self.watermark = Some(watermark);
        self.meta_dirty = true;
        let mut out = Vec::new();
        while let Some(entry) = self.windows.first_entry() {
            let start = *entry.key();
            if start.saturating_add(self.window_ms) > watermark {
                break;
            }
            for (cells, dimension) in entry.remove().into_iter().zip(&self.dimensions) {
                let mut cells: Vec<(String, Cell)> = cells.into_iter().collect();
                cells.sort_by(|a, b| a.0.cmp(&b.0));
                for (value, cell) in cells {
                    self.cells = self.cells.saturating_sub(1);
                    if cell.persisted {
                        self.deleted.push(cell_key(start, dimension, &value));
                    }
                    out.push(cell.indicator(start, self.window_ms, dimension, &value, self.top_error_codes));
                }
            }
        }
        // Cells written just now are gone: nothing of them to persist.
        let windows = &self.windows;
        self.dirty.retain(|(start, _, _)| windows.contains_key(start));
        self.counters.indicators += out.len() as u64;
        out
    }

    /// The state entries changed since the last call: key -> new value, `None` for a deleted
    /// entry. Persist them with the outputs of the same batch.
    pub fn take_changes(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut out: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            std::mem::take(&mut self.deleted).into_iter().map(|k| (k, None)).collect();
        for (start, di, value) in std::mem::take(&mut self.dirty) {
            let Some(dimension) = self.dimensions.get(di) else { continue };
            let Some(cell) = self.windows.get_mut(&start).and_then(|w| w.get_mut(di)).and_then(|c| c.get_mut(&value))
            else {
                continue;
            };
            cell.persisted = true;
            cell.dirty = false;
            let mut entry = Vec::with_capacity(256);
            cell_entry::encode(&mut entry, self.window_ms, start, dimension, &value, cell);
            out.push((cell_key(start, dimension, &value), Some(entry)));
        }
        if self.meta_dirty {
            self.meta_dirty = false;
            let meta = MetaEntry {
                version: STATE_VERSION,
                watermark: self.watermark,
                partitions: self.clocks.max_event_times(),
                counters: self.counters,
            };
            out.push((META_KEY.to_vec(), Some(serde_json::to_vec(&meta).unwrap_or_default())));
        }
        out
    }

    /// Rebuilds the engine from every entry [`QoeEngine::take_changes`] wrote (the latest value
    /// of each key). Cells of another window length or of a dimension no longer configured are
    /// dropped (and deleted at the next `take_changes`). On error the engine is left empty.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        self.reset();
        let result = self.restore_entries(entries);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.clocks.reset();
        self.watermark = None;
        self.windows.clear();
        self.cells = 0;
        self.dirty.clear();
        self.deleted.clear();
        self.meta_dirty = false;
        self.counters = QoeCounters::default();
    }

    fn restore_entries(&mut self, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        for (key, value) in entries {
            let shown = String::from_utf8_lossy(&key).into_owned();
            if key == META_KEY {
                let meta: MetaEntry =
                    serde_json::from_slice(&value).map_err(|e| format!("qoe state entry {shown:?}: {e}"))?;
                check_version(meta.version, &shown)?;
                self.watermark = meta.watermark;
                for (p, t) in meta.partitions {
                    self.clocks.restore(p, t);
                }
                self.counters = meta.counters;
            } else if shown.starts_with(CELL_KEY_PREFIX) {
                let entry = if cell_entry::is_binary(&value) {
                    cell_entry::decode(&value).map_err(|e| format!("qoe state entry {shown:?}: {e}"))?
                } else {
                    // The JSON form of earlier versions.
                    let entry: CellEntry =
                        serde_json::from_slice(&value).map_err(|e| format!("qoe state entry {shown:?}: {e}"))?;
                    check_version(entry.version, &shown)?;
                    entry
                };
                if cell_key(entry.window_start, &entry.dimension, &entry.value) != key {
                    return Err(format!("qoe state entry {shown:?}: key and value disagree"));
                }
                let dimension = self.dimensions.iter().position(|d| *d == entry.dimension);
                let (Some(di), true) = (dimension, entry.window_ms == self.window_ms) else {
                    self.deleted.push(key);
                    continue;
                };
                let mut cell = entry.cell;
                cell.persisted = true;
                let dimensions = self.dimensions.len();
                let window = self.windows.entry(entry.window_start).or_insert_with(|| vec![HashMap::new(); dimensions]);
                if let Some(cells) = window.get_mut(di) {
                    if cells.insert(entry.value, cell).is_none() {
                        self.cells += 1;
                    }
                }
            } else {
                return Err(format!("unknown qoe state entry {shown:?}"));
            }
        }
        Ok(())
    }
}

fn check_version(version: u32, key: &str) -> Result<(), String> {
    if version == STATE_VERSION {
        Ok(())
    } else {
        Err(format!("qoe state entry {key:?} has version {version}, this LUX reads version {STATE_VERSION}"))
    }
}

/// Whether the committed state of a QoE stage has written every window its input allows (its
/// watermark is at the highest partition watermark, as after idleness or
/// [`QoeEngine::finish_input`]). Unreadable state is not finished.
pub fn state_is_finished(entries: &[(Vec<u8>, Vec<u8>)], out_of_orderness: std::time::Duration) -> bool {
    entries.iter().filter(|(key, _)| key == META_KEY).all(|(_, value)| {
        let Ok(meta) = serde_json::from_slice::<MetaEntry>(value) else { return false };
        lux_stage::watermark::caught_up(meta.watermark, meta.partitions.into_values(), millis(out_of_orderness))
    })
}
