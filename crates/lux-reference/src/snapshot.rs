//! `Snapshot`: one validated, immutable version of the reference data, indexed for the as-of
//! join of events. Everything the join needs is computed once at load: a compact hash table per
//! join key ([`crate::index`]), one 64-byte row (one cache line) per equipment row holding its
//! two keys and the ids of its model and site, the strings of models, manufacturers, sites and
//! regions interned once per snapshot (a row holds no string), and the interventions of each
//! equipment, site and region in start order. Joining an event ([`Snapshot::join`]) is a hash
//! probe or two and a few comparisons: no allocation, no string copied, no reference count
//! touched; the result ([`Enrichment`]) borrows the snapshot.

use crate::enrichment::{Enrichment, Equipment};
use crate::index::{hash_text, index_of, Dated, Index, Key, LongKeys, Multi, Probe, Slot};
use crate::load::{self, Tables, EQUIPMENT, ERROR_CODES, INTERVENTIONS, MANUFACTURERS, MODELS, REGIONS, SITES};
use crate::problem::ReferenceProblem;
use lux_model::{
    EnrichedEvent, EquipmentInfo, EquipmentKey, ErrorInfo, Event, MaintenanceInfo, Millis, Outcome, ReferenceStatus,
};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Rows per table of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TableCounts {
    pub regions: usize,
    pub sites: usize,
    pub manufacturers: usize,
    pub models: usize,
    /// Rows of `equipment.csv` (an equipment may have several, one per validity interval).
    pub equipment: usize,
    pub error_codes: usize,
    pub interventions: usize,
}

/// One equipment row: its equipment id and hostname (compared here when an [`Index`] points to
/// the row: every row has them), the ids of its model and site in the snapshot's tables, and,
/// for the few rows with a bounded validity or interventions of their own, an index into
/// `Snapshot::extras`. One cache line: a join reads one line of the row table. NAS-Identifiers
/// and IP addresses, which few rows have, are in side tables (`Snapshot::nas_keys`,
/// `Snapshot::ip_keys`).
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct EquipmentRow {
    hostname: Key,
    id: Key,
    /// Index into `Snapshot::sites`.
    site: u32,
    /// Index into `Snapshot::models`.
    model: u32,
    /// 0: valid for ever, no intervention on the equipment itself; else 1 + an index into
    /// `Snapshot::extras`.
    extra: u32,
}

/// What few equipment rows have: a bounded validity, interventions on the equipment itself.
#[derive(Debug)]
struct RowExtra {
    /// First millisecond of validity (`Millis::MIN`: since always).
    from: Millis,
    /// Last millisecond of validity, inclusive (`Millis::MAX`: still valid).
    until: Millis,
    /// The interventions on the equipment (by its id), in `Snapshot::covers`.
    interventions: Span,
}

/// A range of `Snapshot::covers`.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

/// An equipment model with its manufacturer, interned once per snapshot.
#[derive(Debug)]
pub(crate) struct ModelInfo {
    pub(crate) name: Box<str>,
    pub(crate) manufacturer: Box<str>,
    pub(crate) equipment_type: Box<str>,
    pub(crate) technology: Box<str>,
}

#[derive(Debug)]
pub(crate) struct SiteInfo {
    pub(crate) id: Box<str>,
    /// Index into `Snapshot::regions`.
    region: u32,
    /// The interventions on the site and on its region, merged in order of start.
    interventions: Span,
}

#[derive(Debug)]
pub(crate) struct RegionInfo {
    pub(crate) id: Box<str>,
}

/// An intervention in the list of its target (equipment, site or region): when it covers
/// (first and last millisecond, inclusive) and its index in `Snapshot::interventions`, which are
/// in order of start then id (so, within a list, in order of start too).
#[derive(Debug, Clone, Copy)]
struct Cover {
    from: Millis,
    until: Millis,
    intervention: u32,
}

/// One intervention of the reference data as a report lists it: what it covers, when, and
/// what it does to alarms and indicators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterventionRow {
    pub id: String,
    /// `planned`, `corrective`, ...
    pub kind: String,
    /// `equipment`, `site` or `region`.
    pub scope: String,
    /// The id of the equipment, site or region covered.
    pub target_id: String,
    /// `actual_start`, else `planned_start`; `None`: open towards the past.
    pub start: Option<Millis>,
    /// `actual_end`, else `planned_end` (exclusive); `None`: still open.
    pub end: Option<Millis>,
    pub suppress_alarms: bool,
    pub exclude_from_kpi: bool,
}

/// A validated version of the reference data. Immutable: a reload builds a new one and swaps it
/// in (behind an `Arc`, see [`crate::ReferenceHandle`]) only once it has been validated whole.
#[derive(Debug)]
pub struct Snapshot {
    version: Arc<str>,
    counts: TableCounts,
    equipment: Vec<EquipmentRow>,
    /// Each row's [`EquipmentInfo`], made the first time an event of the row is handed over
    /// decoded (`Enrichment::into_enriched`), then shared by every later one.
    equipment_infos: Vec<OnceLock<Arc<EquipmentInfo>>>,
    /// See [`EquipmentRow::extra`].
    extras: Vec<RowExtra>,
    models: Vec<ModelInfo>,
    sites: Vec<SiteInfo>,
    regions: Vec<RegionInfo>,
    by_id: Index,
    by_hostname: Index,
    /// Slots of `ip_keys` entries.
    by_ip: Index,
    /// Slots of `nas_keys` entries.
    by_nas: Index,
    /// Each distinct IP address (its canonical text: `2001:db8::1`) and the slot of its rows.
    ip_keys: Vec<(Key, Slot)>,
    /// Each distinct NAS-Identifier and the slot of its rows.
    nas_keys: Vec<(Key, Slot)>,
    /// The row lists of keys with several rows (see [`crate::index::Slot`]).
    multi: Multi,
    /// Join keys longer than 23 bytes.
    long_keys: LongKeys,
    errors: Index,
    /// The error codes (the rows of `errors`).
    error_rows: Vec<(Key, Arc<ErrorInfo>)>,
    /// In order of start, then id.
    interventions: Vec<Arc<MaintenanceInfo>>,
    /// The same interventions with their target and time span (reports list them).
    intervention_rows: Vec<InterventionRow>,
    /// The intervention lists of equipment, sites and regions, each in order of start.
    covers: Vec<Cover>,
}

/// Why loading a snapshot failed: the data is invalid, or the source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The data was read but is invalid: every problem, with its place.
    #[error("invalid reference data: {} problem(s), the first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<ReferenceProblem>),
    /// The PostgreSQL source could not be reached or read.
    #[error("PostgreSQL reference source: {0}")]
    Postgres(String),
    /// The configuration does not say where the data is, or says it wrongly.
    #[error("reference configuration: {0}")]
    Config(String),
    /// The watcher thread could not be started.
    #[error("cannot start the reference watcher: {0}")]
    Thread(String),
}

impl Snapshot {
    /// A snapshot with no data (every event `unknown_equipment`), version `empty`.
    pub fn empty() -> Snapshot {
        Snapshot {
            version: Arc::from("empty"),
            counts: TableCounts::default(),
            equipment: Vec::new(),
            equipment_infos: Vec::new(),
            extras: Vec::new(),
            models: Vec::new(),
            sites: Vec::new(),
            regions: Vec::new(),
            by_id: Index::default(),
            by_hostname: Index::default(),
            by_ip: Index::default(),
            by_nas: Index::default(),
            ip_keys: Vec::new(),
            nas_keys: Vec::new(),
            multi: Multi::default(),
            long_keys: LongKeys::default(),
            errors: Index::default(),
            error_rows: Vec::new(),
            interventions: Vec::new(),
            intervention_rows: Vec::new(),
            covers: Vec::new(),
        }
    }

    /// Every intervention, in order of start then id, with what it covers and when.
    pub fn interventions(&self) -> &[InterventionRow] {
        &self.intervention_rows
    }

    /// Loads the seven CSV files of `dir` and validates them whole: every problem found (missing
    /// files, headers, values, duplicate keys, foreign keys, overlapping validity, ambiguous
    /// join keys) is returned, or none and the snapshot.
    pub fn load_csv_dir(dir: &Path) -> Result<Snapshot, Vec<ReferenceProblem>> {
        let mut problems = Vec::new();
        let tables = load::read_dir(dir, &mut problems);
        Snapshot::validate(tables, problems).1
    }

    /// Checks `tables` whole and builds the snapshot, or returns every problem (in file, line
    /// and column order, placed for the tables' origin). Also returns the content version, which
    /// is known even when the data is invalid (so that a watcher reports a bad version once).
    pub(crate) fn validate(
        tables: Tables,
        mut problems: Vec<ReferenceProblem>,
    ) -> (String, Result<Snapshot, Vec<ReferenceProblem>>) {
        check(&tables, &mut problems);
        // File order, then line, then column order: how a person fixes them.
        let rank = |p: &ReferenceProblem| {
            let file = load::FILES.iter().position(|(f, _)| *f == p.file);
            let column = file
                .and_then(|f| load::FILES.get(f))
                .and_then(|(_, columns)| columns.iter().position(|c| Some(*c) == p.column.as_deref()));
            (file, p.line, column)
        };
        problems.sort_by_key(rank);
        let version = tables.version.clone();
        if problems.is_empty() {
            (version, Ok(build(tables)))
        } else {
            tables.origin.locate(&mut problems);
            (version, Err(problems))
        }
    }

    /// The content hash of the data (`ref-3f2a9c1b7d4e`): the same content gives the same
    /// version, whether it comes from CSV files or PostgreSQL.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Rows per table.
    pub fn counts(&self) -> TableCounts {
        self.counts
    }

    /// Bytes of the join's tables (rows, hash tables, interned strings not counted): what a
    /// snapshot costs per equipment row at the least.
    pub fn table_bytes(&self) -> usize {
        std::mem::size_of_val(self.equipment.as_slice())
            + std::mem::size_of_val(self.extras.as_slice())
            + self.by_id.bytes()
            + self.by_hostname.bytes()
            + self.by_ip.bytes()
            + self.by_nas.bytes()
    }

    /// Whether `row` is valid at `t`.
    #[inline]
    fn valid_at(&self, row: &EquipmentRow, t: Millis) -> bool {
        match row.extra.checked_sub(1) {
            None => true,
            Some(i) => self.extras.get(i as usize).is_some_and(|x| x.from <= t && t <= x.until),
        }
    }

    /// The row of `slot` valid at `t` (the common case: the slot's one row, valid for ever).
    #[inline]
    fn valid_row(&self, slot: Slot, t: Millis) -> Option<&EquipmentRow> {
        match slot.single() {
            Some(i) => self.equipment.get(i as usize).filter(|row| self.valid_at(row, t)),
            None => {
                self.multi.rows(slot).iter().find(|d| d.valid_at(t)).and_then(|d| self.equipment.get(d.row as usize))
            }
        }
    }

    /// The first row of `slot` (all its rows have the same key).
    fn first_row(&self, slot: Slot) -> Option<&EquipmentRow> {
        let i = match slot.single() {
            Some(i) => i,
            None => self.multi.rows(slot).first()?.row,
        };
        self.equipment.get(i as usize)
    }

    /// The row valid at `t` whose key `field` is `probe`'s text, through `index`. The row valid
    /// at `t` is the one whose key is compared: one row read.
    #[inline]
    fn lookup(
        &self,
        index: &Index,
        probe: &Probe,
        field: impl Fn(&EquipmentRow) -> &Key,
        t: Millis,
    ) -> Option<&EquipmentRow> {
        let mut found = None;
        index.find(probe.hash, |slot| match self.valid_row(slot, t) {
            Some(row) => {
                let hit = probe.matches(field(row), &self.long_keys);
                if hit {
                    found = Some(row);
                }
                hit
            }
            // No row valid at `t`: whether this is the key at all (then the answer is none).
            None => self.first_row(slot).is_some_and(|row| probe.matches(field(row), &self.long_keys)),
        })?;
        found
    }

    /// The row valid at `t` under the key hashing to `hash` for which `is_key`, through
    /// `index` and its side table `entries`.
    #[inline]
    fn side<K>(
        &self,
        index: &Index,
        entries: &[(K, Slot)],
        hash: u64,
        is_key: impl Fn(&K) -> bool,
        t: Millis,
    ) -> Option<&EquipmentRow> {
        let entry = |e: Slot| entries.get(e.single()? as usize);
        let found = index.find(hash, |e| entry(e).is_some_and(|(key, _)| is_key(key)))?;
        let &(_, slot) = entry(found)?;
        self.valid_row(slot, t)
    }

    /// The equipment row valid at `t` under `key`, as the event names it.
    #[inline]
    fn find_equipment(&self, key: EquipmentKey, id: &str, t: Millis) -> Option<&EquipmentRow> {
        match key {
            EquipmentKey::Hostname => {
                let probe = Probe::new(id);
                self.lookup(&self.by_hostname, &probe, |r: &EquipmentRow| &r.hostname, t)
                    .or_else(|| self.lookup(&self.by_id, &probe, |r: &EquipmentRow| &r.id, t))
            }
            EquipmentKey::NasIdentifier => {
                let probe = Probe::new(id);
                self.side(&self.by_nas, &self.nas_keys, probe.hash, |key| probe.matches(key, &self.long_keys), t)
            }
            EquipmentKey::NasIpAddress | EquipmentKey::IpAddress => {
                // Most addresses are written canonically: looked up as text first, parsed only
                // when that fails.
                let probe = Probe::new(id);
                self.side(&self.by_ip, &self.ip_keys, probe.hash, |key| probe.matches(key, &self.long_keys), t)
                    .or_else(|| self.find_ip_spelled(id, t))
            }
            EquipmentKey::Field => self.lookup(&self.by_id, &Probe::new(id), |r: &EquipmentRow| &r.id, t),
        }
    }

    /// The row valid at `t` of the IP address `text` written in another form than the canonical
    /// one (`2001:DB8:0::1`).
    #[cold]
    fn find_ip_spelled(&self, text: &str, t: Millis) -> Option<&EquipmentRow> {
        use std::io::Write as _;
        let ip = text.parse::<IpAddr>().ok()?;
        // The canonical text, without allocating: 45 bytes at most.
        let mut buf = [0u8; 64];
        let mut rest = &mut buf[..];
        write!(rest, "{ip}").ok()?;
        let len = 64 - rest.len();
        let canonical = std::str::from_utf8(buf.get(..len)?).ok()?;
        if canonical == text {
            return None;
        }
        let probe = Probe::new(canonical);
        self.side(&self.by_ip, &self.ip_keys, probe.hash, |key| probe.matches(key, &self.long_keys), t)
    }

    /// The meaning of an error code.
    #[inline]
    fn find_error(&self, code: &str) -> Option<&Arc<ErrorInfo>> {
        let probe = Probe::new(code);
        let row = |slot: Slot| self.error_rows.get(slot.single()? as usize);
        let slot = self
            .errors
            .find(probe.hash, |slot| row(slot).is_some_and(|(key, _)| probe.matches(key, &self.long_keys)))?;
        row(slot).map(|(_, info)| info)
    }

    /// The first intervention of `span` covering `t` (its index: the smallest is the first in
    /// order of start, then id).
    #[inline]
    fn covering(&self, span: Span, t: Millis) -> Option<u32> {
        let covers = self.covers.get(span.start as usize..span.start as usize + span.len as usize)?;
        for c in covers {
            if c.from > t {
                // In order of start: none further starts before `t`.
                return None;
            }
            if t <= c.until {
                return Some(c.intervention);
            }
        }
        None
    }

    /// The intervention covering `row` at `t`: on the equipment, its site or its region; if
    /// several, the one that started first, then the smallest id. Two short lists scanned
    /// (the equipment's, when it has one, and its site's, which holds its region's too).
    #[inline]
    fn maintenance(&self, row: &EquipmentRow, t: Millis) -> Option<&Arc<MaintenanceInfo>> {
        let on_site = self.sites.get(row.site as usize).and_then(|s| self.covering(s.interventions, t));
        let own = row.extra.checked_sub(1).and_then(|i| self.extras.get(i as usize));
        let first = match own.and_then(|x| self.covering(x.interventions, t)) {
            Some(i) => Some(on_site.map_or(i, |j| i.min(j))),
            None => on_site,
        }?;
        self.interventions.get(first as usize)
    }

    /// Joins `event` with the reference data as it was at the event's time: the equipment row
    /// valid then, the intervention covering it then (directly, or through its site or region;
    /// if several, the one that started first, then the smallest id), the error code's meaning,
    /// the status and whether the event counts as a failure. Nothing is copied or allocated:
    /// the result borrows this snapshot; [`Enrichment::record`] serialises it with the event as
    /// the `enriched` topic's record.
    pub fn join(&self, event: &Event) -> Enrichment<'_> {
        let t = event.event_time;
        let row = self.find_equipment(event.equipment_key, &event.equipment_id, t);
        let maintenance = row.and_then(|r| self.maintenance(r, t));
        let error = event.error_code.as_deref().and_then(|code| self.find_error(code));
        let unknown_code = event.error_code.is_some() && error.is_none();
        let status = match (row.is_some(), unknown_code) {
            (true, false) => ReferenceStatus::Ok,
            (false, false) => ReferenceStatus::UnknownEquipment,
            (true, true) => ReferenceStatus::UnknownErrorCode,
            (false, true) => ReferenceStatus::UnknownEquipmentAndErrorCode,
        };
        let is_failure = match error {
            Some(e) => e.is_failure,
            None => event.outcome == Outcome::Failure,
        };
        Enrichment { snapshot: self, row, error, maintenance, status, is_failure }
    }

    /// Joins `event` (see [`Snapshot::join`]) into an owned [`EnrichedEvent`]. This allocates
    /// the equipment record (its strings are interned in the snapshot, not kept per row): for
    /// tests and tools; the stream serialises [`Enrichment::record`] instead.
    pub fn enrich(&self, event: Event) -> EnrichedEvent {
        self.join(&event).into_enriched(event)
    }

    /// The shared version string (for owned records).
    pub(crate) fn version_arc(&self) -> &Arc<str> {
        &self.version
    }

    /// The equipment id of `row`.
    pub(crate) fn row_id<'s>(&'s self, row: &'s EquipmentRow) -> &'s str {
        row.id.text(&self.long_keys)
    }

    /// The row's equipment as an [`EquipmentInfo`], made the first time it is asked for and
    /// shared after.
    pub(crate) fn row_info(&self, row: &EquipmentRow) -> Arc<EquipmentInfo> {
        let make = || Arc::new(Equipment { snapshot: self, row }.to_info());
        // `row` is one of `self.equipment` (checked): its index is its distance from the first.
        let at = row as *const EquipmentRow;
        let index = self
            .equipment
            .as_ptr_range()
            .contains(&at)
            .then(|| (at as usize - self.equipment.as_ptr() as usize) / std::mem::size_of::<EquipmentRow>());
        match index.and_then(|i| self.equipment_infos.get(i)) {
            Some(info) => Arc::clone(info.get_or_init(make)),
            None => make(),
        }
    }

    /// The model of `row`.
    pub(crate) fn row_model(&self, row: &EquipmentRow) -> Option<&ModelInfo> {
        self.models.get(row.model as usize)
    }

    /// The site of `row` and its region.
    pub(crate) fn row_site(&self, row: &EquipmentRow) -> (Option<&SiteInfo>, Option<&RegionInfo>) {
        let site = self.sites.get(row.site as usize);
        (site, site.and_then(|s| self.regions.get(s.region as usize)))
    }
}

/// Checks across rows and tables: unique keys, foreign keys, validity intervals, join keys.
fn check(t: &Tables, problems: &mut Vec<ReferenceProblem>) {
    let mut p = |file: &str, line: u64, column: &str, message: String| {
        problems.push(ReferenceProblem::new(file, Some(line), Some(column), message));
    };
    let o = &t.origin;
    let regions = unique(t.regions.iter().map(|r| (r.id.as_str(), r.line)), REGIONS, "region_id", o, &mut p);
    let sites = unique(t.sites.iter().map(|r| (r.id.as_str(), r.line)), SITES, "site_id", o, &mut p);
    let manufacturers =
        unique(t.manufacturers.iter().map(|r| (r.id.as_str(), r.line)), MANUFACTURERS, "manufacturer_id", o, &mut p);
    let models = unique(t.models.iter().map(|r| (r.id.as_str(), r.line)), MODELS, "model_id", o, &mut p);
    unique(t.error_codes.iter().map(|r| (r.info.code.as_str(), r.line)), ERROR_CODES, "code", o, &mut p);
    unique(t.interventions.iter().map(|r| (r.id.as_str(), r.line)), INTERVENTIONS, "intervention_id", o, &mut p);

    for s in &t.sites {
        if !regions.contains(s.region_id.as_str()) {
            p(
                SITES,
                s.line,
                "region_id",
                format!("unknown region {:?} (not in {})", s.region_id, t.origin.table(REGIONS)),
            );
        }
    }
    for m in &t.models {
        if !manufacturers.contains(m.manufacturer_id.as_str()) {
            p(
                MODELS,
                m.line,
                "manufacturer_id",
                format!("unknown manufacturer {:?} (not in {})", m.manufacturer_id, t.origin.table(MANUFACTURERS)),
            );
        }
    }
    let equipment_ids: HashSet<&str> = t.equipment.iter().map(|e| e.id.as_str()).collect();
    for e in &t.equipment {
        if !models.contains(e.model_id.as_str()) {
            p(
                EQUIPMENT,
                e.line,
                "model_id",
                format!("unknown model {:?} (not in {})", e.model_id, t.origin.table(MODELS)),
            );
        }
        if !sites.contains(e.site_id.as_str()) {
            p(EQUIPMENT, e.line, "site_id", format!("unknown site {:?} (not in {})", e.site_id, t.origin.table(SITES)));
        }
    }
    for i in &t.interventions {
        let (known, file) = match i.scope.as_str() {
            "equipment" => (equipment_ids.contains(i.target_id.as_str()), EQUIPMENT),
            "site" => (sites.contains(i.target_id.as_str()), SITES),
            _ => (regions.contains(i.target_id.as_str()), REGIONS),
        };
        if !known {
            p(
                INTERVENTIONS,
                i.line,
                "target_id",
                format!("unknown {} {:?} (not in {})", i.scope, i.target_id, t.origin.table(file)),
            );
        }
    }

    // Validity: the rows of one equipment id must not overlap; two equipment valid at the same
    // time must not share a hostname, IP address or NAS-Identifier (the join would be ambiguous).
    overlaps(t, |e| Some(e.id.as_str()), "valid_from", true, &mut p);
    overlaps(t, |e| Some(e.hostname.as_str()), "hostname", false, &mut p);
    overlaps(t, |e| e.ip_address.as_deref(), "ip_address", false, &mut p);
    overlaps(t, |e| e.nas_identifier.as_deref(), "nas_identifier", false, &mut p);
}

/// The set of ids, reporting each duplicate at its second and later lines.
fn unique<'a>(
    ids: impl Iterator<Item = (&'a str, u64)>,
    file: &'static str,
    column: &str,
    origin: &load::Origin,
    p: &mut impl FnMut(&str, u64, &str, String),
) -> HashSet<&'a str> {
    let mut first: HashMap<&str, u64> = HashMap::default();
    for (id, line) in ids {
        if let Some(prev) = first.get(id) {
            p(file, line, column, format!("duplicate {column} {id:?} (first on {})", origin.row(file, *prev)));
        } else {
            first.insert(id, line);
        }
    }
    first.into_keys().collect()
}

/// Reports rows whose validity overlaps an earlier row with the same `key`: of the same
/// equipment id when `same_id`, else of another equipment id.
fn overlaps<'a>(
    t: &'a Tables,
    key: impl Fn(&'a load::Equipment) -> Option<&'a str>,
    column: &str,
    same_id: bool,
    p: &mut impl FnMut(&str, u64, &str, String),
) {
    // Rows sorted by key, then start: each key's rows are one run (no map of lists: this runs on
    // a million rows at every reload).
    let mut sorted: Vec<(&str, Millis, u64, &load::Equipment)> =
        t.equipment.iter().filter_map(|e| Some((key(e)?, e.valid_from.unwrap_or(Millis::MIN), e.line, e))).collect();
    sorted.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    for group in sorted.chunk_by(|a, b| a.0 == b.0) {
        let (Some(&(k, ..)), true) = (group.first(), group.len() > 1) else { continue };
        let rows = group.iter().map(|&(.., e)| e);
        // Rows still valid at the current row's start (sweep over starts).
        let mut active: Vec<&load::Equipment> = Vec::new();
        for e in rows {
            let start = e.valid_from.unwrap_or(Millis::MIN);
            active.retain(|a| a.valid_to.is_none_or(|to| to > start));
            for a in &active {
                if (a.id == e.id) == same_id {
                    let message = if same_id {
                        format!(
                            "equipment {:?} is valid twice at the same time: its interval overlaps {}",
                            e.id,
                            t.origin.row(EQUIPMENT, a.line)
                        )
                    } else {
                        format!(
                            "{column} {k:?} is also the {column} of equipment {:?} ({}) at the same time: the join would be ambiguous",
                            a.id,
                            t.origin.row(EQUIPMENT, a.line)
                        )
                    };
                    p(EQUIPMENT, e.line, column, message);
                    break;
                }
            }
            active.push(e);
        }
    }
}

/// A validity interval as rows store it: first and last millisecond (inclusive); an empty
/// interval (`valid_to` at the smallest time) as one no time is in.
fn validity(from: Option<Millis>, to: Option<Millis>) -> (Millis, Millis) {
    let from = from.unwrap_or(Millis::MIN);
    match to {
        None => (from, Millis::MAX),
        Some(to) => match to.checked_sub(1) {
            Some(until) => (from, until),
            None => (Millis::MAX, Millis::MIN),
        },
    }
}

/// The slots of each distinct key of `pairs` (key, row: rows in time order), with the key's
/// hash: the entries of an [`Index`]. Sorted runs, not a map of lists: no allocation per key.
fn slots<K: Ord + Copy>(mut pairs: Vec<(K, u32)>, rows: &[Dated], multi: &mut Multi, mut each: impl FnMut(K, Slot)) {
    pairs.sort_unstable();
    let mut dated = Vec::new();
    for group in pairs.chunk_by(|a, b| a.0 == b.0) {
        let Some(&(key, _)) = group.first() else { continue };
        dated.clear();
        dated.extend(group.iter().filter_map(|&(_, row)| rows.get(row as usize)));
        each(key, multi.slot(&dated));
    }
}

/// Appends the covers of the interventions `list` (indexes in start order) to `covers`; their
/// span.
fn cover_span(list: &[u32], windows: &[(Millis, Millis)], covers: &mut Vec<Cover>) -> Span {
    let start = index_of(covers.len());
    for &i in list {
        if let Some(&(from, until)) = windows.get(i as usize) {
            covers.push(Cover { from, until, intervention: i });
        }
    }
    Span { start, len: index_of(covers.len()) - start }
}

fn build(t: Tables) -> Snapshot {
    let mut s = Snapshot::empty();
    s.version = Arc::from(t.version.as_str());
    s.counts = TableCounts {
        regions: t.regions.len(),
        sites: t.sites.len(),
        manufacturers: t.manufacturers.len(),
        models: t.models.len(),
        equipment: t.equipment.len(),
        error_codes: t.error_codes.len(),
        interventions: t.interventions.len(),
    };

    // Interventions in order of start then id, and per scope the target id -> their indexes.
    let mut on: [HashMap<&str, Vec<u32>>; 3] = Default::default();
    let mut interventions: Vec<&load::Intervention> = t.interventions.iter().collect();
    interventions.sort_by(|a, b| (a.start.unwrap_or(Millis::MIN), &a.id).cmp(&(b.start.unwrap_or(Millis::MIN), &b.id)));
    let mut windows = Vec::with_capacity(interventions.len());
    for i in interventions {
        let scope = match i.scope.as_str() {
            "equipment" => 0,
            "site" => 1,
            _ => 2,
        };
        if let Some(map) = on.get_mut(scope) {
            map.entry(i.target_id.as_str()).or_default().push(index_of(s.interventions.len()));
        }
        s.intervention_rows.push(InterventionRow {
            id: i.id.clone(),
            kind: i.kind.clone(),
            scope: i.scope.clone(),
            target_id: i.target_id.clone(),
            start: i.start,
            end: i.end,
            suppress_alarms: i.suppress_alarms,
            exclude_from_kpi: i.exclude_from_kpi,
        });
        s.interventions.push(Arc::new(MaintenanceInfo {
            intervention_id: i.id.clone(),
            kind: i.kind.clone(),
            scope: i.scope.clone(),
            suppress_alarms: i.suppress_alarms,
            exclude_from_kpi: i.exclude_from_kpi,
        }));
        windows.push(validity(i.start, i.end));
    }
    let [on_equipment, on_site, on_region] = &on;
    let equipment_spans: HashMap<&str, Span> =
        on_equipment.iter().map(|(&id, list)| (id, cover_span(list, &windows, &mut s.covers))).collect();

    // Regions, sites and models interned: rows hold their indexes. A site's interventions
    // include its region's.
    let mut region_index: HashMap<&str, u32> = HashMap::default();
    for r in &t.regions {
        region_index.insert(&r.id, index_of(s.regions.len()));
        s.regions.push(RegionInfo { id: r.id.as_str().into() });
    }
    let mut site_index: HashMap<&str, u32> = HashMap::default();
    let mut list = Vec::new();
    for site in &t.sites {
        site_index.insert(&site.id, index_of(s.sites.len()));
        list.clear();
        list.extend(on_site.get(site.id.as_str()).into_iter().flatten());
        list.extend(on_region.get(site.region_id.as_str()).into_iter().flatten());
        list.sort_unstable();
        s.sites.push(SiteInfo {
            id: site.id.as_str().into(),
            region: region_index.get(site.region_id.as_str()).copied().unwrap_or(u32::MAX),
            interventions: cover_span(&list, &windows, &mut s.covers),
        });
    }
    s.covers.shrink_to_fit();
    let manufacturers: HashMap<&str, &str> = t.manufacturers.iter().map(|m| (m.id.as_str(), m.name.as_str())).collect();
    let mut model_index: HashMap<&str, u32> = HashMap::default();
    for m in &t.models {
        model_index.insert(&m.id, index_of(s.models.len()));
        s.models.push(ModelInfo {
            name: m.name.as_str().into(),
            manufacturer: manufacturers.get(m.manufacturer_id.as_str()).copied().unwrap_or_default().into(),
            equipment_type: m.equipment_type.as_str().into(),
            technology: m.technology.as_str().into(),
        });
    }

    // Rows in order of validity start: the rows of one key are in time order.
    let mut order: Vec<&load::Equipment> = t.equipment.iter().collect();
    order.sort_by_key(|e| (e.valid_from.unwrap_or(Millis::MIN), e.line));
    let n = order.len();
    s.equipment.reserve_exact(n);
    let mut dated = Vec::with_capacity(n);
    let (mut ids, mut hostnames) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut ips, mut nas) = (Vec::new(), Vec::new());
    for e in order {
        let i = index_of(s.equipment.len());
        let (from, until) = validity(e.valid_from, e.valid_to);
        let own = equipment_spans.get(e.id.as_str()).copied();
        let extra = if (from, until) == (Millis::MIN, Millis::MAX) && own.is_none() {
            0
        } else {
            s.extras.push(RowExtra { from, until, interventions: own.unwrap_or_default() });
            index_of(s.extras.len())
        };
        dated.push(Dated { row: i, from, until });
        ids.push((e.id.as_str(), i));
        hostnames.push((e.hostname.as_str(), i));
        if let Some(ip) = e.ip_address.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()) {
            ips.push((ip.to_string(), i));
        }
        if let Some(id) = e.nas_identifier.as_deref() {
            nas.push((id, i));
        }
        s.equipment.push(EquipmentRow {
            hostname: s.long_keys.key(&e.hostname),
            id: s.long_keys.key(&e.id),
            site: site_index.get(e.site_id.as_str()).copied().unwrap_or(u32::MAX),
            model: model_index.get(e.model_id.as_str()).copied().unwrap_or(u32::MAX),
            extra,
        });
    }
    s.extras.shrink_to_fit();

    let mut entries = Vec::with_capacity(n);
    slots(ids, &dated, &mut s.multi, |text, slot| entries.push((slot, hash_text(text))));
    s.by_id = Index::from_slots(std::mem::take(&mut entries));
    slots(hostnames, &dated, &mut s.multi, |text, slot| entries.push((slot, hash_text(text))));
    s.by_hostname = Index::from_slots(std::mem::take(&mut entries));
    let mut ip_keys = Vec::new();
    let ips = ips.iter().map(|(text, row)| (text.as_str(), *row)).collect();
    slots(ips, &dated, &mut s.multi, |text, slot| {
        entries.push((Slot::one(index_of(ip_keys.len())), hash_text(text)));
        ip_keys.push((s.long_keys.key(text), slot));
    });
    s.ip_keys = ip_keys;
    s.by_ip = Index::from_slots(std::mem::take(&mut entries));
    let mut nas_keys = Vec::new();
    slots(nas, &dated, &mut s.multi, |text, slot| {
        entries.push((Slot::one(index_of(nas_keys.len())), hash_text(text)));
        nas_keys.push((s.long_keys.key(text), slot));
    });
    s.nas_keys = nas_keys;
    s.by_nas = Index::from_slots(std::mem::take(&mut entries));
    s.multi.shrink_to_fit();

    // Error codes are unique (checked): one slot each.
    for (i, e) in t.error_codes.iter().enumerate() {
        entries.push((Slot::one(index_of(i)), hash_text(&e.info.code)));
        s.error_rows.push((s.long_keys.key(&e.info.code), Arc::new(e.info.clone())));
    }
    s.errors = Index::from_slots(entries);
    s.equipment_infos = s.equipment.iter().map(|_| OnceLock::new()).collect();
    s
}
