//! `Snapshot`: one validated, immutable version of the reference data, indexed for the as-of
//! join of events. Everything the join needs is computed once at load: a compact hash table per
//! join key ([`crate::index`], FxHash), the equipment rows already joined with model,
//! manufacturer, site and region, and for each equipment row the interventions that may cover it.
//! Enriching an event is a hash probe or two and a few `Arc` clones: no allocation, no string
//! copied.

use crate::index::{self, index_of, Index, Key, LongKeys, Multi, Probe, Slot};
use crate::load::{self, Tables, EQUIPMENT, ERROR_CODES, INTERVENTIONS, MANUFACTURERS, MODELS, REGIONS, SITES};
use crate::problem::ReferenceProblem;
use lux_model::{
    EnrichedEvent, EquipmentInfo, EquipmentKey, ErrorInfo, Event, MaintenanceInfo, Millis, Outcome, ReferenceInfo,
    ReferenceStatus,
};
use rustc_hash::{FxHashMap as HashMap, FxHashMap, FxHashSet as HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

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

/// One equipment row, joined with its model, manufacturer, site and region at load, with its
/// equipment id and hostname (compared here when an [`Index`] points to the row: every row has
/// them) and its validity. NAS-Identifiers and IP addresses, which few rows have, are kept in
/// side tables (`Snapshot::nas_keys`, `Snapshot::ip_keys`).
#[derive(Debug)]
struct EquipmentRow {
    info: Arc<EquipmentInfo>,
    /// First millisecond of validity (`Millis::MIN`: since always).
    valid_from: Millis,
    /// Last millisecond of validity, inclusive (`Millis::MAX`: still valid).
    valid_until: Millis,
    /// The interventions on this equipment, its site or its region: a range of
    /// `Snapshot::covering`, which lists indexes into `Snapshot::interventions` in order of start
    /// then id (the first covering an event's time is the one the event is joined with).
    covering: (u32, u32),
    id: Key,
    hostname: Key,
}

impl EquipmentRow {
    #[inline]
    fn valid_at(&self, t: Millis) -> bool {
        self.valid_from <= t && t <= self.valid_until
    }
}

#[derive(Debug)]
struct InterventionRow {
    info: Arc<MaintenanceInfo>,
    start: Option<Millis>,
    end: Option<Millis>,
}

impl InterventionRow {
    fn covers(&self, t: Millis) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t < e)
    }
}

/// A validated version of the reference data. Immutable: a reload builds a new one and swaps it
/// in (behind an `Arc`, see [`crate::ReferenceHandle`]) only once it has been validated whole.
#[derive(Debug)]
pub struct Snapshot {
    version: Arc<str>,
    counts: TableCounts,
    equipment: Vec<EquipmentRow>,
    by_id: Index,
    by_hostname: Index,
    /// Slots of `ip_keys` entries.
    by_ip: Index,
    /// Slots of `nas_keys` entries.
    by_nas: Index,
    /// Each distinct IP address and the slot of its rows.
    ip_keys: Vec<(IpAddr, Slot)>,
    /// Each distinct NAS-Identifier and the slot of its rows.
    nas_keys: Vec<(Key, Slot)>,
    /// The row lists of keys with several rows (see [`crate::index::Slot`]).
    multi: Multi,
    /// Join keys longer than 23 bytes.
    long_keys: LongKeys,
    errors: Index,
    /// The error codes (the rows of `errors`).
    error_rows: Vec<(Key, Arc<ErrorInfo>)>,
    interventions: Vec<InterventionRow>,
    /// The lists of `EquipmentRow::covering`.
    covering: Vec<u32>,
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
            covering: Vec::new(),
        }
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

    /// The row of `slot` valid at `t` (the common case: the slot's one row, valid for ever).
    #[inline]
    fn valid_row(&self, slot: Slot, t: Millis) -> Option<&EquipmentRow> {
        match slot.single() {
            Some(i) => self.equipment.get(i as usize).filter(|row| row.valid_at(t)),
            None => {
                self.multi.rows(&slot).iter().filter_map(|&i| self.equipment.get(i as usize)).find(|r| r.valid_at(t))
            }
        }
    }

    /// The first row of `slot` (all its rows have the same key).
    #[inline]
    fn first_row(&self, slot: &Slot) -> Option<&EquipmentRow> {
        let i = match slot.single() {
            Some(i) => i,
            None => *self.multi.rows(slot).first()?,
        };
        self.equipment.get(i as usize)
    }

    /// The row valid at `t` whose key `field` is `probe`'s text, through `index`.
    #[inline]
    fn lookup(
        &self,
        index: &Index,
        probe: &Probe,
        field: fn(&EquipmentRow) -> &Key,
        t: Millis,
    ) -> Option<&EquipmentRow> {
        let slot = index.find(probe.hash, |slot| {
            self.first_row(slot).is_some_and(|row| probe.matches(field(row), &self.long_keys))
        })?;
        self.valid_row(slot, t)
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
        let entry = |e: &Slot| entries.get(e.single()? as usize);
        let found = index.find(hash, |e| entry(e).is_some_and(|(key, _)| is_key(key)))?;
        let &(_, slot) = entry(&found)?;
        self.valid_row(slot, t)
    }

    /// The equipment row valid at `t` under `key`, as the event names it.
    #[inline]
    fn find_equipment(&self, key: EquipmentKey, id: &str, t: Millis) -> Option<&EquipmentRow> {
        match key {
            EquipmentKey::Hostname => {
                let probe = Probe::new(id);
                self.lookup(&self.by_hostname, &probe, |r| &r.hostname, t)
                    .or_else(|| self.lookup(&self.by_id, &probe, |r| &r.id, t))
            }
            EquipmentKey::NasIdentifier => {
                let probe = Probe::new(id);
                self.side(&self.by_nas, &self.nas_keys, probe.hash, |key| probe.matches(key, &self.long_keys), t)
            }
            EquipmentKey::NasIpAddress | EquipmentKey::IpAddress => {
                let ip = id.parse::<IpAddr>().ok()?;
                self.side(&self.by_ip, &self.ip_keys, index::hash_of(&ip), |key| *key == ip, t)
            }
            EquipmentKey::Field => self.lookup(&self.by_id, &Probe::new(id), |r| &r.id, t),
        }
    }

    /// The meaning of an error code.
    #[inline]
    fn find_error(&self, code: &str) -> Option<&Arc<ErrorInfo>> {
        let probe = Probe::new(code);
        let row = |slot: &Slot| self.error_rows.get(slot.single()? as usize);
        let slot = self
            .errors
            .find(probe.hash, |slot| row(slot).is_some_and(|(key, _)| probe.matches(key, &self.long_keys)))?;
        row(&slot).map(|(_, info)| info)
    }

    /// Joins `event` with the reference data as it was at the event's time: the equipment row
    /// valid then, the intervention covering it then (directly, or through its site or region;
    /// if several, the one that started first, then the smallest id), the error code's meaning.
    /// No allocation: the joined parts are `Arc` clones.
    pub fn enrich(&self, event: Event) -> EnrichedEvent {
        let t = event.event_time;
        let row = self.find_equipment(event.equipment_key, &event.equipment_id, t);
        let maintenance = row.and_then(|r| {
            let (start, len) = r.covering;
            let covering = self.covering.get(start as usize..start as usize + len as usize).unwrap_or_default();
            covering
                .iter()
                .filter_map(|&i| self.interventions.get(i as usize))
                .find(|iv| iv.covers(t))
                .map(|iv| Arc::clone(&iv.info))
        });
        let equipment = row.map(|r| Arc::clone(&r.info));
        let error = event.error_code.as_deref().and_then(|code| self.find_error(code)).cloned();
        let unknown_code = event.error_code.is_some() && error.is_none();
        let status = match (equipment.is_some(), unknown_code) {
            (true, false) => ReferenceStatus::Ok,
            (false, false) => ReferenceStatus::UnknownEquipment,
            (true, true) => ReferenceStatus::UnknownErrorCode,
            (false, true) => ReferenceStatus::UnknownEquipmentAndErrorCode,
        };
        let is_failure = match &error {
            Some(e) => e.is_failure,
            None => event.outcome == Outcome::Failure,
        };
        EnrichedEvent {
            schema: std::borrow::Cow::Borrowed(lux_model::schema::ENRICHED),
            event,
            is_failure,
            equipment,
            error,
            maintenance,
            reference: ReferenceInfo { status, version: Arc::clone(&self.version) },
        }
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

/// The rows of each distinct text key, for [`Index::build`].
fn text_keys<'a>(map: FxHashMap<&'a str, Vec<u32>>) -> impl Iterator<Item = (u64, Vec<u32>)> + 'a {
    map.into_iter().map(|(text, rows)| (Probe::new(text).hash, rows))
}

fn build(t: Tables) -> Snapshot {
    let sites: HashMap<&str, &str> = t.sites.iter().map(|s| (s.id.as_str(), s.region_id.as_str())).collect();
    let manufacturers: HashMap<&str, &str> = t.manufacturers.iter().map(|m| (m.id.as_str(), m.name.as_str())).collect();
    let models: HashMap<&str, &load::Model> = t.models.iter().map(|m| (m.id.as_str(), m)).collect();

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

    // Interventions, and per scope the target id -> their indexes.
    let mut on: [HashMap<&str, Vec<u32>>; 3] = Default::default();
    let mut interventions: Vec<&load::Intervention> = t.interventions.iter().collect();
    interventions.sort_by(|a, b| (a.start.unwrap_or(Millis::MIN), &a.id).cmp(&(b.start.unwrap_or(Millis::MIN), &b.id)));
    for i in interventions {
        let scope = match i.scope.as_str() {
            "equipment" => 0,
            "site" => 1,
            _ => 2,
        };
        if let Some(map) = on.get_mut(scope) {
            map.entry(i.target_id.as_str()).or_default().push(index_of(s.interventions.len()));
        }
        s.interventions.push(InterventionRow {
            info: Arc::new(MaintenanceInfo {
                intervention_id: i.id.clone(),
                kind: i.kind.clone(),
                scope: i.scope.clone(),
                suppress_alarms: i.suppress_alarms,
                exclude_from_kpi: i.exclude_from_kpi,
            }),
            start: i.start,
            end: i.end,
        });
    }
    let [on_equipment, on_site, on_region] = &on;

    let mut by_id: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
    let mut by_hostname: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
    let mut by_ip: FxHashMap<IpAddr, Vec<u32>> = FxHashMap::default();
    let mut by_nas: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
    let mut order: Vec<&load::Equipment> = t.equipment.iter().collect();
    order.sort_by_key(|e| (e.valid_from.unwrap_or(Millis::MIN), e.line));
    s.equipment.reserve_exact(order.len());
    for e in order {
        let model = models.get(e.model_id.as_str());
        let region = sites.get(e.site_id.as_str()).copied().unwrap_or_default();
        let info = EquipmentInfo {
            equipment_id: e.id.clone(),
            equipment_type: model.map(|m| m.equipment_type.clone()).unwrap_or_default(),
            model: model.map(|m| m.name.clone()).unwrap_or_default(),
            manufacturer: model
                .and_then(|m| manufacturers.get(m.manufacturer_id.as_str()))
                .map(|n| (*n).to_owned())
                .unwrap_or_default(),
            site: e.site_id.clone(),
            region: region.to_owned(),
            technology: model.map(|m| m.technology.clone()).unwrap_or_default(),
        };
        let start = index_of(s.covering.len());
        for (map, id) in [(on_equipment, e.id.as_str()), (on_site, e.site_id.as_str()), (on_region, region)] {
            s.covering.extend(map.get(id).into_iter().flatten());
        }
        let covering = s.covering.get_mut(start as usize..).unwrap_or_default();
        // Intervention indexes are in (start, id) order already.
        covering.sort_unstable();
        let covering = (start, index_of(covering.len()));
        let i = index_of(s.equipment.len());
        by_id.entry(&e.id).or_default().push(i);
        by_hostname.entry(&e.hostname).or_default().push(i);
        let ip = e.ip_address.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok());
        if let Some(ip) = ip {
            by_ip.entry(ip).or_default().push(i);
        }
        if let Some(nas) = &e.nas_identifier {
            by_nas.entry(nas).or_default().push(i);
        }
        let (valid_from, valid_until) = validity(e.valid_from, e.valid_to);
        s.equipment.push(EquipmentRow {
            info: Arc::new(info),
            valid_from,
            valid_until,
            covering,
            id: s.long_keys.key(&e.id),
            hostname: s.long_keys.key(&e.hostname),
        });
    }
    s.covering.shrink_to_fit();
    s.by_id = Index::build(text_keys(by_id), &mut s.multi);
    s.by_hostname = Index::build(text_keys(by_hostname), &mut s.multi);
    let mut hashes = Vec::with_capacity(by_ip.len());
    for (ip, rows) in by_ip {
        hashes.push((Slot::one(index_of(s.ip_keys.len())), index::hash_of(&ip)));
        s.ip_keys.push((ip, s.multi.slot(rows)));
    }
    s.by_ip = Index::from_slots(hashes);
    let mut hashes = Vec::with_capacity(by_nas.len());
    for (nas, rows) in by_nas {
        hashes.push((Slot::one(index_of(s.nas_keys.len())), Probe::new(nas).hash));
        let key = s.long_keys.key(nas);
        s.nas_keys.push((key, s.multi.slot(rows)));
    }
    s.by_nas = Index::from_slots(hashes);
    let mut codes: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
    for (i, e) in t.error_codes.iter().enumerate() {
        codes.entry(&e.info.code).or_default().push(index_of(i));
    }
    s.errors = Index::build(text_keys(codes), &mut s.multi);
    s.error_rows = t.error_codes.iter().map(|e| (s.long_keys.key(&e.info.code), Arc::new(e.info.clone()))).collect();
    s
}
