//! `Snapshot`: one validated, immutable version of the reference data, indexed for the as-of
//! join of events (hash maps built once at load; a lookup is a few hash probes).

use crate::load::{self, Tables, EQUIPMENT, ERROR_CODES, INTERVENTIONS, MANUFACTURERS, MODELS, REGIONS, SITES};
use crate::problem::ReferenceProblem;
use lux_model::{
    EnrichedEvent, EquipmentInfo, EquipmentKey, ErrorInfo, Event, MaintenanceInfo, Millis, Outcome, ReferenceInfo,
    ReferenceStatus,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;

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

/// One equipment row, joined with its model, manufacturer, site and region at load.
#[derive(Debug)]
struct EquipmentRow {
    info: EquipmentInfo,
    valid_from: Option<Millis>,
    valid_to: Option<Millis>,
}

impl EquipmentRow {
    fn valid_at(&self, t: Millis) -> bool {
        self.valid_from.is_none_or(|from| from <= t) && self.valid_to.is_none_or(|to| t < to)
    }
}

#[derive(Debug)]
struct InterventionRow {
    info: MaintenanceInfo,
    start: Option<Millis>,
    end: Option<Millis>,
}

impl InterventionRow {
    fn covers(&self, t: Millis) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t < e)
    }
}

/// A validated version of the reference data. Immutable: a reload builds a new one and swaps it
/// in (behind an `Arc`) only once it has been validated whole.
#[derive(Debug)]
pub struct Snapshot {
    version: String,
    counts: TableCounts,
    equipment: Vec<EquipmentRow>,
    /// Join key -> rows of `equipment`, sorted by `valid_from`.
    by_id: HashMap<String, Vec<usize>>,
    by_hostname: HashMap<String, Vec<usize>>,
    by_ip: HashMap<String, Vec<usize>>,
    by_nas: HashMap<String, Vec<usize>>,
    errors: HashMap<String, ErrorInfo>,
    interventions: Vec<InterventionRow>,
    /// Target id -> rows of `interventions`, one map per scope.
    on_equipment: HashMap<String, Vec<usize>>,
    on_site: HashMap<String, Vec<usize>>,
    on_region: HashMap<String, Vec<usize>>,
}

impl Snapshot {
    /// A snapshot with no data (every event `unknown_equipment`), version `empty`.
    pub fn empty() -> Snapshot {
        Snapshot {
            version: "empty".to_owned(),
            counts: TableCounts::default(),
            equipment: Vec::new(),
            by_id: HashMap::new(),
            by_hostname: HashMap::new(),
            by_ip: HashMap::new(),
            by_nas: HashMap::new(),
            errors: HashMap::new(),
            interventions: Vec::new(),
            on_equipment: HashMap::new(),
            on_site: HashMap::new(),
            on_region: HashMap::new(),
        }
    }

    /// Loads the seven CSV files of `dir` and validates them whole: every problem found (missing
    /// files, headers, values, duplicate keys, foreign keys, overlapping validity, ambiguous
    /// join keys) is returned, or none and the snapshot.
    pub fn load_csv_dir(dir: &Path) -> Result<Snapshot, Vec<ReferenceProblem>> {
        let mut problems = Vec::new();
        let tables = load::read_dir(dir, &mut problems);
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
        if problems.is_empty() {
            Ok(build(tables))
        } else {
            Err(problems)
        }
    }

    /// The content hash of the files this snapshot was loaded from (`csv-3f2a9c1b7d4e`).
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn counts(&self) -> TableCounts {
        self.counts
    }

    /// The equipment valid at `t` under `key`, as the event names it.
    fn find_equipment(&self, key: EquipmentKey, id: &str, t: Millis) -> Option<&EquipmentRow> {
        let as_of = |map: &HashMap<String, Vec<usize>>, k: &str| {
            map.get(k)?.iter().filter_map(|&i| self.equipment.get(i)).find(|row| row.valid_at(t))
        };
        match key {
            EquipmentKey::Hostname => as_of(&self.by_hostname, id).or_else(|| as_of(&self.by_id, id)),
            EquipmentKey::NasIdentifier => as_of(&self.by_nas, id),
            EquipmentKey::NasIpAddress | EquipmentKey::IpAddress => {
                let canonical = id.parse::<std::net::IpAddr>().map(|ip| ip.to_string());
                as_of(&self.by_ip, canonical.as_deref().unwrap_or(id))
            }
            EquipmentKey::Field => as_of(&self.by_id, id),
        }
    }

    /// The intervention covering `equipment` at `t`, directly or through its site or region;
    /// if several, the one that started first (then the smallest id).
    fn find_intervention(&self, equipment: &EquipmentInfo, t: Millis) -> Option<&InterventionRow> {
        [
            (&self.on_equipment, &equipment.equipment_id),
            (&self.on_site, &equipment.site),
            (&self.on_region, &equipment.region),
        ]
        .into_iter()
        .filter_map(|(map, id)| map.get(id.as_str()))
        .flatten()
        .filter_map(|&i| self.interventions.get(i))
        .filter(|row| row.covers(t))
        .min_by(|a, b| {
            (a.start.unwrap_or(Millis::MIN), &a.info.intervention_id)
                .cmp(&(b.start.unwrap_or(Millis::MIN), &b.info.intervention_id))
        })
    }

    /// Joins `event` with the reference data as it was at the event's time.
    pub fn enrich(&self, event: Event) -> EnrichedEvent {
        let row = self.find_equipment(event.equipment_key, &event.equipment_id, event.event_time);
        let equipment = row.map(|r| r.info.clone());
        let maintenance =
            equipment.as_ref().and_then(|e| self.find_intervention(e, event.event_time)).map(|r| r.info.clone());
        let error = event.error_code.as_deref().and_then(|code| self.errors.get(code)).cloned();
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
            schema: lux_model::schema::ENRICHED.to_owned(),
            event,
            is_failure,
            equipment,
            error,
            maintenance,
            reference: ReferenceInfo { status, version: self.version.clone() },
        }
    }
}

/// Checks across rows and tables: unique keys, foreign keys, validity intervals, join keys.
fn check(t: &Tables, problems: &mut Vec<ReferenceProblem>) {
    let mut p = |file: &str, line: u64, column: &str, message: String| {
        problems.push(ReferenceProblem::new(file, Some(line), Some(column), message));
    };
    let regions = unique(t.regions.iter().map(|r| (r.id.as_str(), r.line)), REGIONS, "region_id", &mut p);
    let sites = unique(t.sites.iter().map(|r| (r.id.as_str(), r.line)), SITES, "site_id", &mut p);
    let manufacturers =
        unique(t.manufacturers.iter().map(|r| (r.id.as_str(), r.line)), MANUFACTURERS, "manufacturer_id", &mut p);
    let models = unique(t.models.iter().map(|r| (r.id.as_str(), r.line)), MODELS, "model_id", &mut p);
    unique(t.error_codes.iter().map(|r| (r.info.code.as_str(), r.line)), ERROR_CODES, "code", &mut p);
    unique(t.interventions.iter().map(|r| (r.id.as_str(), r.line)), INTERVENTIONS, "intervention_id", &mut p);

    for s in &t.sites {
        if !regions.contains(s.region_id.as_str()) {
            p(SITES, s.line, "region_id", format!("unknown region {:?} (not in regions.csv)", s.region_id));
        }
    }
    for m in &t.models {
        if !manufacturers.contains(m.manufacturer_id.as_str()) {
            p(
                MODELS,
                m.line,
                "manufacturer_id",
                format!("unknown manufacturer {:?} (not in manufacturers.csv)", m.manufacturer_id),
            );
        }
    }
    let equipment_ids: HashSet<&str> = t.equipment.iter().map(|e| e.id.as_str()).collect();
    for e in &t.equipment {
        if !models.contains(e.model_id.as_str()) {
            p(EQUIPMENT, e.line, "model_id", format!("unknown model {:?} (not in models.csv)", e.model_id));
        }
        if !sites.contains(e.site_id.as_str()) {
            p(EQUIPMENT, e.line, "site_id", format!("unknown site {:?} (not in sites.csv)", e.site_id));
        }
    }
    for i in &t.interventions {
        let (known, file) = match i.scope.as_str() {
            "equipment" => (equipment_ids.contains(i.target_id.as_str()), EQUIPMENT),
            "site" => (sites.contains(i.target_id.as_str()), SITES),
            _ => (regions.contains(i.target_id.as_str()), REGIONS),
        };
        if !known {
            p(INTERVENTIONS, i.line, "target_id", format!("unknown {} {:?} (not in {file})", i.scope, i.target_id));
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
    file: &str,
    column: &str,
    p: &mut impl FnMut(&str, u64, &str, String),
) -> HashSet<&'a str> {
    let mut first: HashMap<&str, u64> = HashMap::new();
    for (id, line) in ids {
        if let Some(prev) = first.get(id) {
            p(file, line, column, format!("duplicate {column} {id:?} (first on line {prev})"));
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
    let mut groups: HashMap<&str, Vec<&load::Equipment>> = HashMap::new();
    for e in &t.equipment {
        if let Some(k) = key(e) {
            groups.entry(k).or_default().push(e);
        }
    }
    let mut keys: Vec<&&str> = groups.keys().collect();
    keys.sort();
    for k in keys {
        let Some(rows) = groups.get(*k) else { continue };
        if rows.len() < 2 {
            continue;
        }
        let mut rows = rows.clone();
        rows.sort_by_key(|e| (e.valid_from.unwrap_or(Millis::MIN), e.line));
        // Rows still valid at the current row's start (sweep over starts).
        let mut active: Vec<&load::Equipment> = Vec::new();
        for e in rows {
            let start = e.valid_from.unwrap_or(Millis::MIN);
            active.retain(|a| a.valid_to.is_none_or(|to| to > start));
            for a in &active {
                if (a.id == e.id) == same_id {
                    let message = if same_id {
                        format!(
                            "equipment {:?} is valid twice at the same time: its interval overlaps line {}",
                            e.id, a.line
                        )
                    } else {
                        format!(
                            "{column} {k:?} is also the {column} of equipment {:?} (line {}) at the same time: the join would be ambiguous",
                            a.id, a.line
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

fn build(t: Tables) -> Snapshot {
    let sites: HashMap<&str, &str> = t.sites.iter().map(|s| (s.id.as_str(), s.region_id.as_str())).collect();
    let manufacturers: HashMap<&str, &str> = t.manufacturers.iter().map(|m| (m.id.as_str(), m.name.as_str())).collect();
    let models: HashMap<&str, &load::Model> = t.models.iter().map(|m| (m.id.as_str(), m)).collect();

    let mut s = Snapshot::empty();
    s.version = t.version.clone();
    s.counts = TableCounts {
        regions: t.regions.len(),
        sites: t.sites.len(),
        manufacturers: t.manufacturers.len(),
        models: t.models.len(),
        equipment: t.equipment.len(),
        error_codes: t.error_codes.len(),
        interventions: t.interventions.len(),
    };
    let mut order: Vec<&load::Equipment> = t.equipment.iter().collect();
    order.sort_by_key(|e| (e.valid_from.unwrap_or(Millis::MIN), e.line));
    for e in order {
        let model = models.get(e.model_id.as_str());
        let info = EquipmentInfo {
            equipment_id: e.id.clone(),
            equipment_type: model.map(|m| m.equipment_type.clone()).unwrap_or_default(),
            model: model.map(|m| m.name.clone()).unwrap_or_default(),
            manufacturer: model
                .and_then(|m| manufacturers.get(m.manufacturer_id.as_str()))
                .map(|n| (*n).to_owned())
                .unwrap_or_default(),
            site: e.site_id.clone(),
            region: sites.get(e.site_id.as_str()).map(|r| (*r).to_owned()).unwrap_or_default(),
            technology: model.map(|m| m.technology.clone()).unwrap_or_default(),
        };
        let index = s.equipment.len();
        s.by_id.entry(e.id.clone()).or_default().push(index);
        s.by_hostname.entry(e.hostname.clone()).or_default().push(index);
        if let Some(ip) = &e.ip_address {
            s.by_ip.entry(ip.clone()).or_default().push(index);
        }
        if let Some(nas) = &e.nas_identifier {
            s.by_nas.entry(nas.clone()).or_default().push(index);
        }
        s.equipment.push(EquipmentRow { info, valid_from: e.valid_from, valid_to: e.valid_to });
    }
    s.errors = t.error_codes.into_iter().map(|e| (e.info.code.clone(), e.info)).collect();
    for i in t.interventions {
        let index = s.interventions.len();
        let map = match i.scope.as_str() {
            "equipment" => &mut s.on_equipment,
            "site" => &mut s.on_site,
            _ => &mut s.on_region,
        };
        map.entry(i.target_id.clone()).or_default().push(index);
        s.interventions.push(InterventionRow {
            info: MaintenanceInfo {
                intervention_id: i.id,
                kind: i.kind,
                scope: i.scope,
                suppress_alarms: i.suppress_alarms,
                exclude_from_kpi: i.exclude_from_kpi,
            },
            start: i.start,
            end: i.end,
        });
    }
    s
}
