//! The PostgreSQL reference source: the versioned migrations that create the seven tables (and
//! the triggers that `NOTIFY lux_reference` on change), reading them into a validated
//! [`Snapshot`] (in one consistent read-only transaction), and importing a CSV directory into
//! them in one transaction.

use crate::config::valid_schema;
use crate::load::{self, Origin, RawRows, FILES};
use crate::problem::ReferenceProblem;
use crate::snapshot::{ReferenceError, Snapshot, TableCounts};
use postgres::{Client, IsolationLevel, NoTls};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The channel the tables' triggers notify on; the payload is `schema.table`.
pub const CHANNEL: &str = "lux_reference";

/// One versioned migration of the reference schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Applied in increasing order; recorded in `schema_migrations`.
    pub version: i32,
    pub name: &'static str,
    /// The SQL, with `{schema}` standing for the quoted schema name.
    pub sql: &'static str,
}

/// A component's migrations, recorded in their own table of the schema so that several
/// components (the reference data, the QoE sink) can share a schema.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSet {
    /// What they create, for errors (`reference`, `qoe`).
    pub component: &'static str,
    /// The table recording the applied versions (`schema_migrations`).
    pub table: &'static str,
    /// The advisory lock taken while migrating, so that two `init` at once do not collide.
    pub lock: i64,
    pub migrations: &'static [Migration],
}

/// The reference data's migrations.
pub const REFERENCE_MIGRATIONS: MigrationSet =
    MigrationSet { component: "reference", table: "schema_migrations", lock: MIGRATION_LOCK, migrations: MIGRATIONS };

/// Every migration shipped with this version of LUX.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "tables", sql: include_str!("../migrations/0001_tables.sql") },
    Migration { version: 2, name: "notify", sql: include_str!("../migrations/0002_notify.sql") },
];

/// The advisory lock taken while migrating, so that two `init` at once do not collide.
const MIGRATION_LOCK: i64 = 0x006c_7578_5f72_6566; // "lux_ref"

/// A PostgreSQL error as a [`ReferenceError`], with what was being done and the server's
/// message when there is one.
pub(crate) fn pg_error(context: &str, e: &postgres::Error) -> ReferenceError {
    ReferenceError::Postgres(describe(context, e))
}

/// A PostgreSQL error as text: what was being done, then the server's message (severity,
/// message, detail) or the client's error and its cause.
pub fn describe(context: &str, e: &postgres::Error) -> String {
    let detail = match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                text.push_str(&format!(" ({d})"));
            }
            text
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    };
    format!("{context}: {detail}")
}

fn quoted(schema: &str) -> Result<String, ReferenceError> {
    if valid_schema(schema) {
        Ok(format!("\"{schema}\""))
    } else {
        Err(ReferenceError::Config(format!("{schema:?} is not a valid schema name")))
    }
}

/// Connects to `url` (libpq key/value or URL form), with a 5 s connect timeout unless the
/// string sets one.
pub fn connect(url: &str) -> Result<Client, ReferenceError> {
    connect_client(url).map_err(ReferenceError::Postgres)
}

/// [`connect`], with the error as text.
pub fn connect_client(url: &str) -> Result<Client, String> {
    let mut config: postgres::Config =
        url.parse().map_err(|e: postgres::Error| describe("invalid connection string", &e))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.connect(NoTls).map_err(|e| describe("cannot connect", &e))
}

/// Creates the schema and applies the migrations not applied yet (recorded in
/// `schema.schema_migrations`), in one transaction. Idempotent. Returns the names of the
/// migrations applied now (`0001_tables`).
pub fn init(client: &mut Client, schema: &str) -> Result<Vec<String>, ReferenceError> {
    quoted(schema)?;
    migrate(client, schema, &REFERENCE_MIGRATIONS).map_err(ReferenceError::Postgres)
}

/// Creates the schema and applies the migrations of `set` not applied yet (recorded in
/// `schema.<set.table>`), in one transaction. Idempotent. Returns the names of the migrations
/// applied now; an error says which migration failed and why.
pub fn migrate(client: &mut Client, schema: &str, set: &MigrationSet) -> Result<Vec<String>, String> {
    if !valid_schema(schema) {
        return Err(format!("{schema:?} is not a valid schema name"));
    }
    let s = format!("\"{schema}\"");
    let table = set.table;
    let context = format!("{} init", set.component);
    let err = |e: postgres::Error| describe(&context, &e);
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&set.lock]).map_err(err)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.{table} (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .map_err(err)?;
    let applied: HashSet<i32> = tx
        .query(&format!("SELECT version FROM {s}.{table}"), &[])
        .map_err(err)?
        .iter()
        .filter_map(|row| row.try_get::<_, i32>(0).ok())
        .collect();
    let mut done = Vec::new();
    for m in set.migrations.iter().filter(|m| !applied.contains(&m.version)) {
        let name = format!("{:04}_{}", m.version, m.name);
        tx.batch_execute(&m.sql.replace("{schema}", &s))
            .map_err(|e| describe(&format!("{} migration {name}", set.component), &e))?;
        tx.execute(&format!("INSERT INTO {s}.{table} (version, name) VALUES ($1, $2)"), &[&m.version, &m.name])
            .map_err(err)?;
        done.push(name);
    }
    tx.commit().map_err(err)?;
    Ok(done)
}

/// An RFC 3339 UTC text of a `timestamptz` column, empty when NULL or `-infinity`.
fn time(column: &str) -> String {
    format!(
        "CASE WHEN {column} IS NULL OR {column} = '-infinity' THEN '' \
         ELSE to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') END"
    )
}

/// The SELECT list of one table: every column of its CSV file, as text in the CSV form.
fn select_list(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| match *c {
            "valid_from" | "valid_to" | "planned_start" | "planned_end" | "actual_start" | "actual_end" => time(c),
            "ip_address" => "COALESCE(host(ip_address), '')".to_owned(),
            "is_failure" | "is_drop" | "customer_impacting" | "suppress_alarms" | "exclude_from_kpi" => {
                format!("{c}::text")
            }
            _ => format!("COALESCE({c}::text, '')"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The primary-key columns of a table (positions in its CSV columns).
fn key_columns(file: &str) -> &'static [usize] {
    if file == load::EQUIPMENT {
        &[0, 7]
    } else {
        &[0]
    }
}

/// Reads the seven tables of `schema` in one read-only, repeatable-read transaction (a
/// consistent view) and validates them whole. Returns the content version (known even when the
/// data is invalid) and the snapshot or every problem (table and key, column). `Err` when the
/// database cannot be read (connection lost, tables missing: run `lux reference init`).
#[allow(clippy::type_complexity)]
pub fn load(
    client: &mut Client,
    schema: &str,
) -> Result<(String, Result<Snapshot, Vec<ReferenceProblem>>), ReferenceError> {
    let s = quoted(schema)?;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| pg_error("cannot start a transaction", &e))?;
    let mut raw: Vec<RawRows> = Vec::with_capacity(FILES.len());
    let mut keys = HashMap::new();
    for (file, columns) in FILES {
        let table = load::table_name(file);
        let order = key_columns(file).iter().filter_map(|&i| columns.get(i)).copied().collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT {} FROM {s}.{table} ORDER BY {order}", select_list(columns));
        let rows = tx.query(&sql, &[]).map_err(|e| pg_error(&format!("cannot read {schema}.{table}"), &e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (n, row) in rows.iter().enumerate() {
            let mut fields = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let v: Option<String> =
                    row.try_get(i).map_err(|e| pg_error(&format!("cannot read {schema}.{table}"), &e))?;
                fields.push(v.unwrap_or_default());
            }
            let ordinal = n as u64 + 1;
            let key = key_columns(file)
                .iter()
                .filter_map(|&i| Some((columns.get(i)?, fields.get(i)?)))
                .map(|(c, v)| if v.is_empty() { format!("{c}=-infinity") } else { format!("{c}={v}") })
                .collect::<Vec<_>>()
                .join(", ");
            keys.insert((file, ordinal), key);
            out.push((ordinal, fields));
        }
        raw.push(out);
    }
    tx.commit().map_err(|e| pg_error("cannot end the transaction", &e))?;
    let mut problems = Vec::new();
    let tables = load::parse(raw, Origin::Postgres { schema: schema.to_owned(), keys }, &mut problems);
    Ok(Snapshot::validate(tables, problems))
}

/// [`load`], with invalid data as [`ReferenceError::Invalid`].
pub fn load_snapshot(client: &mut Client, schema: &str) -> Result<Snapshot, ReferenceError> {
    load(client, schema)?.1.map_err(ReferenceError::Invalid)
}

/// The SQL expression converting the staged text column `c` to the table's type.
fn convert(c: &str) -> String {
    match c {
        "valid_from" => "COALESCE(NULLIF(valid_from, '')::timestamptz, '-infinity')".to_owned(),
        "valid_to" | "planned_start" | "planned_end" | "actual_start" | "actual_end" => {
            format!("NULLIF({c}, '')::timestamptz")
        }
        "ip_address" => "NULLIF(ip_address, '')::inet".to_owned(),
        "nas_identifier" => "NULLIF(nas_identifier, '')".to_owned(),
        "is_failure" | "is_drop" | "customer_impacting" | "suppress_alarms" | "exclude_from_kpi" => {
            format!("{c}::boolean")
        }
        _ => format!("COALESCE({c}, '')"),
    }
}

/// Replaces the content of the tables of `schema` by the CSV directory `dir`, in one
/// transaction (running pipelines see the old content, then the new, never a mix). The
/// directory is validated whole first; nothing is written when it has any problem.
pub fn import_csv_dir(client: &mut Client, schema: &str, dir: &Path) -> Result<TableCounts, ReferenceError> {
    let s = quoted(schema)?;
    let mut files = Vec::with_capacity(FILES.len());
    for (file, _) in FILES {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).map_err(|e| {
            ReferenceError::Invalid(vec![ReferenceProblem::new(
                file,
                None,
                None,
                format!("cannot read {}: {e}", path.display()),
            )])
        })?;
        files.push(bytes);
    }
    // Validate exactly the bytes that are imported.
    let mut problems = Vec::new();
    let tables = load::read_bytes(&files, &mut problems);
    let snapshot = Snapshot::validate(tables, problems).1.map_err(ReferenceError::Invalid)?;

    let err = |e: postgres::Error| pg_error("import", &e);
    let mut tx = client.transaction().map_err(err)?;
    let all = FILES.iter().map(|(f, _)| format!("{s}.{}", load::table_name(f))).collect::<Vec<_>>().join(", ");
    tx.batch_execute(&format!("TRUNCATE {all}")).map_err(err)?;
    for ((file, columns), bytes) in FILES.iter().zip(&files) {
        let table = load::table_name(file);
        let stage = format!("lux_import_{table}");
        let text_columns = columns.iter().map(|c| format!("{c} text")).collect::<Vec<_>>().join(", ");
        tx.batch_execute(&format!("CREATE TEMP TABLE {stage} ({text_columns}) ON COMMIT DROP")).map_err(err)?;
        let mut writer = tx
            .copy_in(&format!("COPY {stage} FROM STDIN WITH (FORMAT csv, HEADER true)"))
            .map_err(|e| pg_error(&format!("import of {file}"), &e))?;
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        writer.write_all(body).map_err(|e| ReferenceError::Postgres(format!("import of {file}: {e}")))?;
        writer.finish().map_err(|e| pg_error(&format!("import of {file}"), &e))?;
        let names = columns.join(", ");
        let exprs = columns.iter().map(|c| convert(c)).collect::<Vec<_>>().join(", ");
        tx.batch_execute(&format!("INSERT INTO {s}.{table} ({names}) SELECT {exprs} FROM {stage}"))
            .map_err(|e| pg_error(&format!("import of {file}"), &e))?;
    }
    tx.commit().map_err(err)?;
    Ok(snapshot.counts())
}
