//! `ReferenceConfig`: the `[reference]` configuration section (where the reference data comes
//! from, how it is reloaded), and its validation.

use lux_model::{config_key, ConfigProblem};
use std::path::PathBuf;
use std::time::Duration;

/// Where the reference data (inventory, error catalogue, interventions) comes from, and how it
/// is reloaded while LUX runs (`[reference]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReferenceConfig {
    /// Where the reference data is read from: `csv` (a directory of CSV files, see `dir`) or
    /// `postgres` (the tables created by `lux reference init`, see `postgres`).
    pub source: SourceKind,
    /// A directory holding the seven CSV files of the reference data (`regions.csv`, `sites.csv`,
    /// `manufacturers.csv`, `models.csv`, `equipment.csv`, `error_codes.csv`,
    /// `interventions.csv`). Unset: `lux run` uses the demo referential it generates into its
    /// data directory. Used when `source = "csv"`, and by `lux reference import`.
    pub dir: Option<PathBuf>,
    /// The PostgreSQL source, used when `source = "postgres"`.
    pub postgres: PostgresConfig,
    /// Whether to reload the reference data while LUX runs when it changes (CSV: a file's size
    /// or modification time changed and has been stable for a second; PostgreSQL: a
    /// `NOTIFY lux_reference` from the tables' triggers, or the periodic poll). A new version is
    /// validated whole before it replaces the old one.
    pub watch: bool,
    /// PostgreSQL: how often the tables are re-read even without a notification (a safety net
    /// for missed notifications), e.g. `30s`. Between 1s and 1 day.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

/// The kinds of reference data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A directory of CSV files (`reference.dir`).
    #[default]
    Csv,
    /// PostgreSQL tables (`reference.postgres`).
    Postgres,
}

/// The PostgreSQL reference source (`[reference.postgres]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// The connection string, in libpq key/value form (`host=127.0.0.1 user=postgres
    /// dbname=test`) or as a URL (`postgresql://user@host:5432/db`). Put a password in the
    /// environment variable `LUX_REFERENCE__POSTGRES__URL` rather than in a file under version
    /// control.
    pub url: String,
    /// The PostgreSQL schema holding the reference tables: lower-case letters, digits and `_`,
    /// starting with a letter or `_`, at most 63 characters.
    pub schema: String,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        ReferenceConfig {
            source: SourceKind::Csv,
            dir: None,
            postgres: PostgresConfig::default(),
            watch: true,
            poll_interval: Duration::from_secs(30),
        }
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig { url: "host=127.0.0.1 user=postgres dbname=test".to_owned(), schema: "lux".to_owned() }
    }
}

/// The problem of the schema name `name` at config key `key`, if it is not [`valid_schema`].
pub fn schema_problem(key: String, name: &str) -> Option<ConfigProblem> {
    (!valid_schema(name)).then(|| {
        ConfigProblem::new(
            key,
            format!(
                "{name:?} is not a valid schema name: lower-case letters, digits and `_`, starting with a letter or `_`, at most 63 characters"
            ),
        )
    })
}

/// Whether `name` is a schema name LUX accepts: lower-case letters, digits and `_`, starting
/// with a letter or `_`, at most 63 characters (it is written into SQL statements, quoted).
pub fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

impl ReferenceConfig {
    /// Every problem of this section, with its full dotted key (`prefix` is the section's key,
    /// e.g. `reference`). Whether the files or tables are there and valid is checked when they
    /// are loaded ([`crate::Snapshot::load_csv_dir`], [`crate::pg::load`]), which reports every
    /// problem of the data itself.
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if let Some(dir) = &self.dir {
            let key = config_key(prefix, "dir");
            if dir.as_os_str().is_empty() {
                problems.push(ConfigProblem::new(key, "empty path: leave `dir` out to use the demo referential"));
            } else if dir.exists() && !dir.is_dir() {
                problems.push(ConfigProblem::new(
                    key,
                    format!("{} is a file, not a directory of CSV files", dir.display()),
                ));
            }
        }
        problems.extend(self.postgres.validate(&config_key(prefix, "postgres")));
        if self.poll_interval < Duration::from_secs(1) || self.poll_interval > Duration::from_secs(86_400) {
            problems.push(ConfigProblem::new(
                config_key(prefix, "poll_interval"),
                format!("must be between 1s and 1day, got {}", humantime::format_duration(self.poll_interval)),
            ));
        }
        problems
    }
}

impl PostgresConfig {
    /// Every problem of this section, with its full dotted key (`prefix`: `reference.postgres`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.url.trim().is_empty() {
            problems.push(ConfigProblem::new(
                config_key(prefix, "url"),
                "empty: give a connection string like `host=127.0.0.1 user=postgres dbname=test`",
            ));
        } else if let Err(e) = self.url.parse::<postgres::Config>() {
            problems.push(ConfigProblem::new(config_key(prefix, "url"), format!("not a valid connection string: {e}")));
        }
        problems.extend(schema_problem(config_key(prefix, "schema"), &self.schema));
        problems
    }
}
