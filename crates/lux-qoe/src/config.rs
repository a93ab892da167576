//! The `[qoe]` config section: the indicators' window, dimensions and thresholds, the watermark
//! settings, and the optional PostgreSQL sink, with their validation.

use lux_model::{config_key, ConfigProblem};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The dimensions indicators can be computed per.
pub const DIMENSIONS: [&str; 5] = ["equipment", "site", "region", "manufacturer", "model"];

/// The QoE stage: per window of event time and per dimension value, the indicators operators
/// follow (session attempts, setup success, authentication failures, drops, short sessions,
/// affected subscribers, session durations, top error codes), written to the `qoe` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QoeConfig {
    /// Whether `lux run` runs the QoE stage (`lux qoe` runs it whatever this says).
    pub enabled: bool,
    /// Length of the tumbling windows, in event time: whole seconds, from 1s to 1h, dividing a
    /// day. Windows start on multiples of it (`1m`: on each minute).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub window: Duration,
    /// The dimensions indicators are computed per: `equipment`, `site`, `region`,
    /// `manufacturer`, `model`. Events without a value for one (unknown equipment) are left out
    /// of that dimension only.
    pub dimensions: Vec<String>,
    /// Sessions that last less than this are short (the short-session ratio).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub short_session: Duration,
    /// The event attribute holding a stopped session's duration, in seconds (RADIUS
    /// `Acct-Session-Time`). Stops without it count as stops, not in the durations.
    pub duration_attribute: String,
    /// How many error codes each indicator lists (the most frequent), 0 to 100.
    pub top_error_codes: usize,
    /// How far out of order (in event time) events of one partition may arrive, as for the alarm
    /// stage: a partition's watermark is its highest event time minus this; an event older than
    /// it, or of a window already written, is late: counted (`late_events`), not added.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub out_of_orderness: Duration,
    /// Wall-clock time after which a silent partition no longer holds the watermark back, as for
    /// the alarm stage. When every partition is idle, the watermark moves to the highest
    /// partition watermark and the windows it passes are written.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub idle_timeout: Duration,
    /// Most (window, dimension, value) cells open at once. Events of a new cell beyond it are
    /// counted as overflow events (`overflow_events`) and not added.
    pub max_cells: usize,
    /// The optional PostgreSQL sink (`lux qoe-postgres`, and `lux run` when `url` is set).
    pub postgres: QoePostgresConfig,
}

impl Default for QoeConfig {
    fn default() -> Self {
        QoeConfig {
            enabled: true,
            window: Duration::from_secs(60),
            dimensions: DIMENSIONS.iter().map(|d| (*d).to_owned()).collect(),
            short_session: Duration::from_secs(60),
            duration_attribute: "Acct-Session-Time".to_owned(),
            top_error_codes: 5,
            out_of_orderness: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_cells: 1_000_000,
            postgres: QoePostgresConfig::default(),
        }
    }
}

/// The PostgreSQL sink of the indicators: the `qoe` topic upserted into the table
/// `<schema>.qoe_indicators`, keyed by (window start, dimension, value), so that writing a
/// record again (a replay, a retry) changes nothing. The `qoe` topic is the exactly-once
/// record; the table follows it at least once, which the upserts make idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QoePostgresConfig {
    /// Connection string (libpq key/value or URL form): `host=127.0.0.1 user=lux dbname=lux`.
    /// Unset: no sink. Prefer the environment variable `LUX_QOE__POSTGRES__URL` for a password.
    pub url: Option<String>,
    /// The schema of the table, created by the sink's migrations (recorded in
    /// `<schema>.qoe_schema_migrations`).
    pub schema: String,
}

impl Default for QoePostgresConfig {
    fn default() -> Self {
        QoePostgresConfig { url: None, schema: "lux".to_owned() }
    }
}

impl QoeConfig {
    /// Every problem of the section, each with its full dotted key (`qoe.window`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let key = |field: &str| config_key(prefix, field);
        let mut problems = Vec::new();
        let window = self.window;
        if window < Duration::from_secs(1)
            || window > Duration::from_secs(3600)
            || window.subsec_nanos() != 0
            || 86_400 % window.as_secs() != 0
        {
            problems.push(ConfigProblem::new(
                key("window"),
                format!(
                    "{} is not a whole number of seconds from 1s to 1h dividing a day (1m, 5m, 15m, 1h ...)",
                    humantime::format_duration(window)
                ),
            ));
        }
        if self.dimensions.is_empty() {
            problems
                .push(ConfigProblem::new(key("dimensions"), format!("list at least one of {}", DIMENSIONS.join(", "))));
        }
        for (i, dimension) in self.dimensions.iter().enumerate() {
            if !DIMENSIONS.contains(&dimension.as_str()) {
                problems.push(ConfigProblem::new(
                    format!("{}[{i}]", key("dimensions")),
                    format!("unknown dimension {dimension:?}; the dimensions are {}", DIMENSIONS.join(", ")),
                ));
            } else if self.dimensions.iter().take(i).any(|d| d == dimension) {
                problems.push(ConfigProblem::new(
                    format!("{}[{i}]", key("dimensions")),
                    format!("{dimension:?} is listed twice"),
                ));
            }
        }
        if self.duration_attribute.is_empty() {
            problems.push(ConfigProblem::new(key("duration_attribute"), "must name an attribute (Acct-Session-Time)"));
        }
        if self.top_error_codes > 100 {
            problems.push(ConfigProblem::new(key("top_error_codes"), "must be at most 100"));
        }
        if self.out_of_orderness > Duration::from_secs(365 * 24 * 3600) {
            problems.push(ConfigProblem::new(key("out_of_orderness"), "must be at most a year"));
        }
        if self.idle_timeout.is_zero() {
            problems.push(ConfigProblem::new(key("idle_timeout"), "must be positive"));
        }
        if self.max_cells == 0 {
            problems.push(ConfigProblem::new(key("max_cells"), "must be at least 1"));
        }
        if let Some(url) = &self.postgres.url {
            if let Err(e) = url.parse::<postgres::Config>() {
                problems
                    .push(ConfigProblem::new(key("postgres.url"), format!("not a PostgreSQL connection string: {e}")));
            }
        }
        problems.extend(lux_reference::schema_problem(key("postgres.schema"), &self.postgres.schema));
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(problems: &[ConfigProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(QoeConfig::default().validate("qoe").is_empty());
        let cfg: QoeConfig = toml::from_str("").unwrap_or_default();
        assert_eq!(cfg, QoeConfig::default());
    }

    #[test]
    fn parses_toml_and_rejects_unknown_keys() {
        let cfg: QoeConfig = toml::from_str(
            "window = \"5m\"\ndimensions = [\"site\", \"region\"]\nshort_session = \"2m\"\ntop_error_codes = 3\n\
             [postgres]\nurl = \"host=127.0.0.1 user=postgres dbname=test\"\nschema = \"qoe_test\"\n",
        )
        .expect("valid TOML");
        assert_eq!(cfg.window, Duration::from_secs(300));
        assert_eq!(cfg.dimensions, vec!["site", "region"]);
        assert_eq!(cfg.short_session, Duration::from_secs(120));
        assert_eq!(cfg.top_error_codes, 3);
        assert_eq!(cfg.postgres.schema, "qoe_test");
        assert!(cfg.validate("qoe").is_empty());
        assert!(toml::from_str::<QoeConfig>("windw = \"1m\"\n").is_err());
        assert!(toml::from_str::<QoeConfig>("[postgres]\nuri = \"x\"\n").is_err());
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let cfg: QoeConfig = toml::from_str(
            "window = \"7s\"\ndimensions = [\"site\", \"planet\", \"site\"]\nduration_attribute = \"\"\n\
             top_error_codes = 101\nidle_timeout = \"0s\"\nmax_cells = 0\n\
             [postgres]\nurl = \"host=x port=notaport\"\nschema = \"1bad-name\"\n",
        )
        .expect("valid TOML");
        assert_eq!(
            keys(&cfg.validate("qoe")),
            vec![
                "qoe.window",
                "qoe.dimensions[1]",
                "qoe.dimensions[2]",
                "qoe.duration_attribute",
                "qoe.top_error_codes",
                "qoe.idle_timeout",
                "qoe.max_cells",
                "qoe.postgres.url",
                "qoe.postgres.schema",
            ]
        );
        let empty: QoeConfig = toml::from_str("dimensions = []\nwindow = \"1500ms\"\n").expect("valid TOML");
        assert_eq!(keys(&empty.validate("qoe")), vec!["qoe.window", "qoe.dimensions"]);
    }
}
