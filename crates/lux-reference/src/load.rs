//! Reading the seven CSV files of the reference data into typed rows: headers, field counts,
//! ids, times, booleans and enumerations, every problem recorded with its file, line and column.
//! Checks that span rows or tables (keys, foreign keys, intervals) are in `snapshot.rs`.

use crate::problem::ReferenceProblem;
use lux_model::Millis;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

pub(crate) const REGIONS: &str = "regions.csv";
pub(crate) const SITES: &str = "sites.csv";
pub(crate) const MANUFACTURERS: &str = "manufacturers.csv";
pub(crate) const MODELS: &str = "models.csv";
pub(crate) const EQUIPMENT: &str = "equipment.csv";
pub(crate) const ERROR_CODES: &str = "error_codes.csv";
pub(crate) const INTERVENTIONS: &str = "interventions.csv";

/// Every file with its exact header, in the order they are read (and hashed).
pub const FILES: [(&str, &[&str]); 7] = [
    (REGIONS, &["region_id", "name"]),
    (SITES, &["site_id", "region_id", "name", "city"]),
    (MANUFACTURERS, &["manufacturer_id", "name", "country"]),
    (MODELS, &["model_id", "manufacturer_id", "name", "equipment_type", "technology"]),
    (
        EQUIPMENT,
        &[
            "equipment_id",
            "hostname",
            "ip_address",
            "nas_identifier",
            "model_id",
            "site_id",
            "status",
            "valid_from",
            "valid_to",
        ],
    ),
    (
        ERROR_CODES,
        &["code", "source_type", "label", "category", "severity", "is_failure", "is_drop", "customer_impacting"],
    ),
    (
        INTERVENTIONS,
        &[
            "intervention_id",
            "scope",
            "target_id",
            "kind",
            "planned_start",
            "planned_end",
            "actual_start",
            "actual_end",
            "suppress_alarms",
            "exclude_from_kpi",
        ],
    ),
];

pub(crate) const EQUIPMENT_TYPES: &[&str] = &["bng", "olt", "dslam", "cpe", "radius"];
pub(crate) const TECHNOLOGIES: &[&str] = &["ftth", "vdsl", "adsl", "core"];
pub(crate) const STATUSES: &[&str] = &["in_service", "decommissioned", "spare"];
pub(crate) const SOURCE_TYPES: &[&str] = &["syslog", "radius"];
pub(crate) const CATEGORIES: &[&str] = &["network", "customer", "equipment", "service", "normal"];
pub(crate) const SEVERITIES: &[&str] = &["critical", "major", "minor", "warning", "info"];
pub(crate) const SCOPES: &[&str] = &["equipment", "site", "region"];
pub(crate) const INTERVENTION_KINDS: &[&str] = &["planned", "corrective"];

pub(crate) struct Region {
    pub line: u64,
    pub id: String,
}

pub(crate) struct Site {
    pub line: u64,
    pub id: String,
    pub region_id: String,
}

pub(crate) struct Manufacturer {
    pub line: u64,
    pub id: String,
    pub name: String,
}

pub(crate) struct Model {
    pub line: u64,
    pub id: String,
    pub manufacturer_id: String,
    pub name: String,
    pub equipment_type: String,
    pub technology: String,
}

pub(crate) struct Equipment {
    pub line: u64,
    pub id: String,
    pub hostname: String,
    /// Canonical text form of the address (`2001:db8::1`), so that lookups match any spelling.
    pub ip_address: Option<String>,
    pub nas_identifier: Option<String>,
    pub model_id: String,
    pub site_id: String,
    pub valid_from: Option<Millis>,
    pub valid_to: Option<Millis>,
}

pub(crate) struct ErrorCode {
    pub line: u64,
    pub info: lux_model::ErrorInfo,
}

pub(crate) struct Intervention {
    pub line: u64,
    pub id: String,
    pub scope: String,
    pub target_id: String,
    pub kind: String,
    /// `actual_start` or else `planned_start`; `None`: open.
    pub start: Option<Millis>,
    /// `actual_end` or else `planned_end`; `None`: open.
    pub end: Option<Millis>,
    pub suppress_alarms: bool,
    pub exclude_from_kpi: bool,
}

#[derive(Default)]
pub(crate) struct Tables {
    pub regions: Vec<Region>,
    pub sites: Vec<Site>,
    pub manufacturers: Vec<Manufacturer>,
    pub models: Vec<Model>,
    pub equipment: Vec<Equipment>,
    pub error_codes: Vec<ErrorCode>,
    pub interventions: Vec<Intervention>,
    /// `ref-` and 12 hex characters of the SHA-256 of the content ([`content_version`]).
    pub version: String,
    /// Where the rows come from (to name them in problems).
    pub origin: Origin,
}

/// Where a set of tables came from, to name rows and tables in problems: lines of CSV files, or
/// rows (by primary key) of PostgreSQL tables.
#[derive(Debug, Default)]
pub(crate) enum Origin {
    #[default]
    Csv,
    Postgres {
        schema: String,
        /// `(file, line)` (the row's ordinal) -> its primary key, `equipment_id=BNG-1`.
        keys: HashMap<(&'static str, u64), String>,
    },
}

impl Origin {
    /// How a message names a table: `sites.csv` or `table lux.sites`.
    pub(crate) fn table(&self, file: &str) -> String {
        match self {
            Origin::Csv => file.to_owned(),
            Origin::Postgres { schema, .. } => format!("table {schema}.{}", table_name(file)),
        }
    }

    /// How a message names a row: `line 4` or `row site_id=PAR`.
    pub(crate) fn row(&self, file: &'static str, line: u64) -> String {
        match self {
            Origin::Csv => format!("line {line}"),
            Origin::Postgres { keys, .. } => match keys.get(&(file, line)) {
                Some(key) => format!("row {key}"),
                None => format!("row #{line}"),
            },
        }
    }

    /// Rewrites the places of `problems` (found with file and line) for this origin: for
    /// PostgreSQL, the table `schema.table` and the row's key instead of a line.
    pub(crate) fn locate(&self, problems: &mut [ReferenceProblem]) {
        let Origin::Postgres { schema, keys } = self else { return };
        for p in problems {
            let file = FILES.iter().map(|(f, _)| *f).find(|f| *f == p.file);
            if let (Some(file), Some(line)) = (file, p.line) {
                p.key = Some(keys.get(&(file, line)).cloned().unwrap_or_else(|| format!("#{line}")));
                p.line = None;
            }
            p.file = format!("{schema}.{}", table_name(&p.file));
        }
    }
}

/// The table of a file: `sites.csv` -> `sites`.
pub(crate) fn table_name(file: &str) -> &str {
    file.strip_suffix(".csv").unwrap_or(file)
}

/// The rows of one table as read from a source: `(line or ordinal, fields in FILES order)`.
pub(crate) type RawRows = Vec<(u64, Vec<String>)>;

/// Reads and parses every file of `dir`; problems are appended to `problems`.
pub(crate) fn read_dir(dir: &Path, problems: &mut Vec<ReferenceProblem>) -> Tables {
    let raw: Vec<RawRows> = FILES.iter().map(|(file, columns)| read_rows(dir, file, columns, problems)).collect();
    parse(raw, Origin::Csv, problems)
}

/// Time columns: their canonical form (for the content hash) is RFC 3339 UTC with milliseconds.
const TIME_COLUMNS: &[&str] = &["valid_from", "valid_to", "planned_start", "planned_end", "actual_start", "actual_end"];

/// The canonical text of a field, for the content hash: the same value hashes the same whatever
/// its spelling or source (`2026-01-05T11:00:00+01:00` = `2026-01-05T10:00:00.000Z`,
/// `2001:DB8::1` = `2001:db8::1`). Values that do not parse are hashed as they are (such a
/// snapshot is rejected anyway).
fn canonical(column: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if TIME_COLUMNS.contains(&column) {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
            return t.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        }
    } else if column == "ip_address" {
        if let Ok(ip) = value.parse::<IpAddr>() {
            return ip.to_string();
        }
    }
    value.to_owned()
}

/// The content version of raw tables (in FILES order): `ref-` and 12 hex characters of the
/// SHA-256 of every row's canonical fields, rows sorted, so that the same content gives the
/// same version whether it comes from CSV files (in any row order) or PostgreSQL.
fn content_version(raw: &[RawRows]) -> String {
    let mut hasher = Sha256::new();
    for ((file, columns), rows) in FILES.iter().zip(raw) {
        let mut canon: Vec<String> = rows
            .iter()
            .map(|(_, fields)| {
                let mut row = String::new();
                for (column, value) in columns.iter().zip(fields) {
                    row.push_str(&canonical(column, value));
                    row.push('\u{1f}');
                }
                row
            })
            .collect();
        canon.sort_unstable();
        hasher.update(file.as_bytes());
        hasher.update((canon.len() as u64).to_be_bytes());
        for row in &canon {
            hasher.update((row.len() as u64).to_be_bytes());
            hasher.update(row.as_bytes());
        }
    }
    let digest = hasher.finalize();
    format!("ref-{}", digest.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>())
}

/// Parses the raw rows of the seven tables (in FILES order) into typed rows; problems are
/// appended to `problems` (with the file and the row's line or ordinal).
pub(crate) fn parse(raw: Vec<RawRows>, origin: Origin, problems: &mut Vec<ReferenceProblem>) -> Tables {
    let mut t = Tables { version: content_version(&raw), ..Tables::default() };
    for ((file, columns), rows) in FILES.into_iter().zip(raw) {
        for (line, fields) in rows {
            let mut r = Row { file, line, columns, fields, problems: &mut *problems, ok: true };
            match file {
                REGIONS => {
                    let id = r.id("region_id");
                    if r.ok {
                        t.regions.push(Region { line, id });
                    }
                }
                SITES => {
                    let (id, region_id) = (r.id("site_id"), r.id("region_id"));
                    if r.ok {
                        t.sites.push(Site { line, id, region_id });
                    }
                }
                MANUFACTURERS => {
                    let (id, name) = (r.id("manufacturer_id"), r.text("name"));
                    if r.ok {
                        t.manufacturers.push(Manufacturer { line, id, name });
                    }
                }
                MODELS => {
                    let m = Model {
                        line,
                        id: r.id("model_id"),
                        manufacturer_id: r.id("manufacturer_id"),
                        name: r.text("name"),
                        equipment_type: r.one_of("equipment_type", EQUIPMENT_TYPES),
                        technology: r.one_of("technology", TECHNOLOGIES),
                    };
                    if r.ok {
                        t.models.push(m);
                    }
                }
                EQUIPMENT => {
                    let e = Equipment {
                        line,
                        id: r.id("equipment_id"),
                        hostname: r.id("hostname"),
                        ip_address: r.ip("ip_address"),
                        nas_identifier: r.optional("nas_identifier"),
                        model_id: r.id("model_id"),
                        site_id: r.id("site_id"),
                        valid_from: r.time("valid_from"),
                        valid_to: r.time("valid_to"),
                    };
                    r.one_of("status", STATUSES);
                    if let (Some(from), Some(to)) = (e.valid_from, e.valid_to) {
                        if from >= to {
                            r.problem("valid_to", "must be after valid_from (validity is [valid_from, valid_to))");
                        }
                    }
                    if r.ok {
                        t.equipment.push(e);
                    }
                }
                ERROR_CODES => {
                    let info = lux_model::ErrorInfo {
                        code: r.id("code"),
                        label: r.text("label"),
                        category: r.one_of("category", CATEGORIES),
                        severity: r.one_of("severity", SEVERITIES),
                        is_failure: r.boolean("is_failure"),
                        is_drop: r.boolean("is_drop"),
                        customer_impacting: r.boolean("customer_impacting"),
                    };
                    r.one_of("source_type", SOURCE_TYPES);
                    if r.ok {
                        t.error_codes.push(ErrorCode { line, info });
                    }
                }
                _ => {
                    let (planned_start, planned_end) = (r.time("planned_start"), r.time("planned_end"));
                    let (actual_start, actual_end) = (r.time("actual_start"), r.time("actual_end"));
                    let i = Intervention {
                        line,
                        id: r.id("intervention_id"),
                        scope: r.one_of("scope", SCOPES),
                        target_id: r.id("target_id"),
                        kind: r.one_of("kind", INTERVENTION_KINDS),
                        start: actual_start.or(planned_start),
                        end: actual_end.or(planned_end),
                        suppress_alarms: r.boolean("suppress_alarms"),
                        exclude_from_kpi: r.boolean("exclude_from_kpi"),
                    };
                    if let (Some(s), Some(e)) = (planned_start, planned_end) {
                        if s >= e {
                            r.problem("planned_end", "must be after planned_start");
                        }
                    }
                    if let (Some(s), Some(e)) = (actual_start, actual_end) {
                        if s >= e {
                            r.problem("actual_end", "must be after actual_start");
                        }
                    }
                    if let (Some(s), Some(e)) = (i.start, i.end) {
                        if s >= e && r.ok {
                            r.problem("actual_end", "the intervention would end before it starts (start is actual_start or planned_start, end actual_end or planned_end)");
                        }
                    }
                    if r.ok {
                        t.interventions.push(i);
                    }
                }
            }
        }
    }
    t.origin = origin;
    t
}

/// The data rows of one file as `(line, fields)`, after checking its header and field counts.
fn read_rows(
    dir: &Path,
    file: &'static str,
    columns: &[&str],
    problems: &mut Vec<ReferenceProblem>,
) -> Vec<(u64, Vec<String>)> {
    let path = dir.join(file);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(ReferenceProblem::new(
                file,
                None,
                None,
                format!("missing file (looked for {})", path.display()),
            ));
            return Vec::new();
        }
        Err(e) => {
            problems.push(ReferenceProblem::new(file, None, None, format!("cannot read {}: {e}", path.display())));
            return Vec::new();
        }
    };
    rows_of(file, columns, &bytes, problems)
}

/// Reads the CSV files given as bytes (in FILES order) and parses them.
pub(crate) fn read_bytes(files: &[Vec<u8>], problems: &mut Vec<ReferenceProblem>) -> Tables {
    let raw: Vec<RawRows> =
        FILES.iter().zip(files).map(|((file, columns), bytes)| rows_of(file, columns, bytes, problems)).collect();
    parse(raw, Origin::Csv, problems)
}

/// The data rows of one file's bytes as `(line, fields)`, after checking its header and field
/// counts.
fn rows_of(file: &'static str, columns: &[&str], bytes: &[u8], problems: &mut Vec<ReferenceProblem>) -> RawRows {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let mut rows = Vec::new();
    let mut header_seen = false;
    for record in reader.byte_records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                problems.push(ReferenceProblem::new(file, line, None, format!("unreadable CSV: {e}")));
                return Vec::new();
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if !header_seen {
            header_seen = true;
            let found: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
            if found != columns {
                problems.push(ReferenceProblem::new(
                    file,
                    Some(line),
                    None,
                    format!("wrong header: expected `{}`, found `{}`", columns.join(","), found.join(",")),
                ));
                return Vec::new();
            }
            continue;
        }
        if record.len() != columns.len() {
            problems.push(ReferenceProblem::new(
                file,
                Some(line),
                None,
                format!("{} fields, expected {} ({})", record.len(), columns.len(), columns.join(",")),
            ));
            continue;
        }
        let mut fields = Vec::with_capacity(columns.len());
        let mut utf8_ok = true;
        for (value, column) in record.iter().zip(columns) {
            match std::str::from_utf8(value) {
                Ok(v) => fields.push(v.to_owned()),
                Err(e) => {
                    problems.push(ReferenceProblem::new(file, Some(line), Some(column), format!("not UTF-8: {e}")));
                    utf8_ok = false;
                }
            }
        }
        if utf8_ok {
            rows.push((line, fields));
        }
    }
    if !header_seen {
        problems.push(ReferenceProblem::new(
            file,
            None,
            None,
            format!("empty file: the header `{}` is missing", columns.join(",")),
        ));
    }
    rows
}

/// One data row being parsed: each accessor records a problem (and marks the row bad) when the
/// field's value is not acceptable.
struct Row<'a> {
    file: &'static str,
    line: u64,
    columns: &'static [&'static str],
    fields: Vec<String>,
    problems: &'a mut Vec<ReferenceProblem>,
    ok: bool,
}

impl Row<'_> {
    fn get(&self, column: &str) -> &str {
        self.columns.iter().position(|c| *c == column).and_then(|i| self.fields.get(i)).map_or("", String::as_str)
    }

    fn problem(&mut self, column: &str, message: impl Into<String>) {
        self.ok = false;
        self.problems.push(ReferenceProblem::new(self.file, Some(self.line), Some(column), message));
    }

    fn text(&mut self, column: &str) -> String {
        self.get(column).to_owned()
    }

    /// A required identifier: not empty, no surrounding spaces.
    fn id(&mut self, column: &str) -> String {
        let v = self.get(column).to_owned();
        if v.is_empty() {
            self.problem(column, "empty: an id is required");
        } else if v.trim() != v {
            self.problem(column, format!("{v:?} has leading or trailing spaces"));
        }
        v
    }

    /// An optional identifier: empty means none.
    fn optional(&mut self, column: &str) -> Option<String> {
        let v = self.get(column).to_owned();
        if v.is_empty() {
            return None;
        }
        if v.trim() != v {
            self.problem(column, format!("{v:?} has leading or trailing spaces"));
        }
        Some(v)
    }

    fn ip(&mut self, column: &str) -> Option<String> {
        let v = self.optional(column)?;
        match v.parse::<IpAddr>() {
            Ok(ip) => Some(ip.to_string()),
            Err(_) => {
                self.problem(column, format!("{v:?} is not an IP address"));
                None
            }
        }
    }

    /// An RFC 3339 time; empty means open.
    fn time(&mut self, column: &str) -> Option<Millis> {
        let v = self.get(column).to_owned();
        if v.is_empty() {
            return None;
        }
        match chrono::DateTime::parse_from_rfc3339(&v) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(e) => {
                self.problem(column, format!("{v:?} is not an RFC 3339 time like 2026-01-05T10:00:00Z ({e})"));
                None
            }
        }
    }

    fn boolean(&mut self, column: &str) -> bool {
        match self.get(column) {
            "true" => true,
            "false" => false,
            other => {
                let other = other.to_owned();
                self.problem(column, format!("{other:?} is not a boolean: true or false"));
                false
            }
        }
    }

    fn one_of(&mut self, column: &str, allowed: &[&str]) -> String {
        let v = self.get(column).to_owned();
        if !allowed.contains(&v.as_str()) {
            self.problem(column, format!("{v:?} is not one of {}", allowed.join(", ")));
        }
        v
    }
}
