//! The `[generator]` configuration section: the size of the fictional network, the shape of its
//! traffic and the incidents to inject, with validation reporting every problem by dotted key.

use lux_model::ConfigProblem;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The start of simulated time used when none is configured and the caller wants reproducible
/// output (`lux generate`): Monday 2026-01-05, midnight UTC.
pub const DEFAULT_START: &str = "2026-01-05T00:00:00Z";

/// Largest `rate` accepted: the generator numbers records within a second on 20 bits.
pub const MAX_RATE: f64 = 400_000.0;

/// Largest `equipment` accepted (management addresses are allocated in 10.0.0.0/8).
pub const MAX_EQUIPMENT: u64 = 1_000_000;

/// The number of regions the generator has names for.
pub const MAX_REGIONS: u32 = 13;

/// Longest incident `start_after` or `duration` accepted.
const MAX_INCIDENT_SPAN: Duration = Duration::from_secs(366 * 24 * 3600);

/// The demo traffic and reference-data generator (`lux generate`, and the demo source of `lux run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Seed of every random choice: the same seed gives the same network and the same traffic.
    pub seed: u64,
    /// Number of pieces of equipment in the inventory (at least 50): about 0.4% BNGs, 4% OLTs,
    /// 6% DSLAMs, 0.2% RADIUS servers, the rest customer premises equipment (CPE).
    pub equipment: u64,
    /// Number of sites (points of presence) the equipment is spread over.
    pub sites: u32,
    /// Number of regions the sites are spread over (1 to 13).
    pub regions: u32,
    /// Mean number of background records per second over a day (incidents add to it).
    pub rate: f64,
    /// Whether the rate follows a residential daily load curve (low at night, peak around
    /// 21:00 UTC) whose mean over the day is `rate`; if false the rate is flat.
    pub daily_curve: bool,
    /// Outside incidents, the probability that an operation that can fail (a session set-up, a
    /// session's end, a line check) fails. Interim updates and informational messages never
    /// fail, so failures are about 0.3 x this share of all background records.
    pub background_failure_ratio: f64,
    /// Fraction of background records that are RADIUS accounting packets (sent by BNGs); the
    /// rest is syslog.
    pub radius_share: f64,
    /// Fraction of syslog records in RFC 3164 Cisco style (from DSLAMs and CPE); the rest is
    /// RFC 5424 (from BNGs and OLTs).
    pub rfc3164_share: f64,
    /// Shared secret used to compute the Request Authenticator of RADIUS accounting packets.
    pub radius_secret: String,
    /// Start of simulated time, RFC 3339 (`2026-01-05T00:00:00Z`). Unset: `lux generate` uses
    /// 2026-01-05T00:00:00Z so that its output is reproducible, `lux run` the wall clock of its
    /// first run.
    pub start: Option<String>,
    /// Incidents to inject: equipment or whole sites that emit mostly failures for a while.
    pub incidents: Vec<IncidentConfig>,
    /// `lux run` only: how much simulated traffic the generator sends before it stops (`10m`,
    /// rounded up to whole seconds): the records the equipment sends during that time. Unset: it
    /// never stops. With a fixed `start` and `realtime = false`, this is a bounded input that is
    /// the same on every run (tests, benchmarks, batch analysis).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub duration: Option<Duration>,
    /// `lux run` only: whether the generator sends each simulated second once it is past on the
    /// wall clock, stamping records with the wall clock as reception time (`true`, the live
    /// demo). `false`: it sends as fast as the log takes the records and stamps them with their
    /// simulated sending time, so that the raw topic depends only on this configuration.
    pub realtime: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 42,
            equipment: 5000,
            sites: 120,
            regions: 8,
            rate: 2000.0,
            daily_curve: true,
            background_failure_ratio: 0.02,
            radius_share: 0.3,
            rfc3164_share: 0.5,
            radius_secret: "testing123".to_owned(),
            start: None,
            incidents: vec![IncidentConfig::default()],
            duration: None,
            realtime: true,
        }
    }
}

/// What an incident hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentScope {
    /// Every piece of equipment of one site.
    Site,
    /// One piece of equipment.
    Equipment,
}

impl IncidentScope {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentScope::Site => "site",
            IncidentScope::Equipment => "equipment",
        }
    }
}

/// One injected incident (`[[generator.incidents]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentConfig {
    /// `site` (every piece of equipment of a site) or `equipment` (one piece).
    pub scope: IncidentScope,
    /// The site id (`PAR-001`) or equipment id (`olt-par001-03`) hit. Unset: chosen from the
    /// seed, the site with the most equipment, or a BNG or OLT.
    pub target: Option<String>,
    /// When the incident starts, counted from the start of simulated time (the demo default is
    /// short so that `lux run` shows an alarm within half a minute).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub start_after: Duration,
    /// How long the incident lasts.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub duration: Duration,
    /// Fraction of the records emitted by the hit equipment during the incident that are
    /// failures (the rest are recoveries: link up, restarts, reconnections).
    pub failure_ratio: f64,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            scope: IncidentScope::Site,
            target: None,
            start_after: Duration::from_secs(2),
            duration: Duration::from_secs(600),
            failure_ratio: 0.9,
        }
    }
}

fn check_ratio(problems: &mut Vec<ConfigProblem>, key: String, value: f64) {
    if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
        problems.push(ConfigProblem::new(key, format!("must be between 0 and 1, got {value}")));
    }
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("not an RFC 3339 time ({e}): {text:?}"))
}

impl GeneratorConfig {
    /// Every problem of this section, keys prefixed with `prefix` (`generator`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let key = |field: &str| {
            if prefix.is_empty() {
                field.to_owned()
            } else {
                format!("{prefix}.{field}")
            }
        };
        let mut problems = Vec::new();
        if self.equipment < 50 {
            problems.push(ConfigProblem::new(key("equipment"), format!("must be at least 50, got {}", self.equipment)));
        } else if self.equipment > MAX_EQUIPMENT {
            problems.push(ConfigProblem::new(
                key("equipment"),
                format!("must be at most {MAX_EQUIPMENT}, got {}", self.equipment),
            ));
        }
        if self.regions == 0 || self.regions > MAX_REGIONS {
            problems.push(ConfigProblem::new(
                key("regions"),
                format!("must be between 1 and {MAX_REGIONS}, got {}", self.regions),
            ));
        }
        if self.sites == 0 {
            problems.push(ConfigProblem::new(key("sites"), "must be at least 1"));
        } else if self.sites < self.regions {
            problems.push(ConfigProblem::new(
                key("sites"),
                format!("must be at least `regions` ({}), got {}", self.regions, self.sites),
            ));
        } else if u64::from(self.sites) > self.equipment.max(1) {
            problems.push(ConfigProblem::new(
                key("sites"),
                format!("must not exceed `equipment` ({}), got {}", self.equipment, self.sites),
            ));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            problems.push(ConfigProblem::new(key("rate"), format!("must be a number above 0, got {}", self.rate)));
        } else if self.rate > MAX_RATE {
            problems.push(ConfigProblem::new(key("rate"), format!("must be at most {MAX_RATE}, got {}", self.rate)));
        }
        check_ratio(&mut problems, key("background_failure_ratio"), self.background_failure_ratio);
        check_ratio(&mut problems, key("radius_share"), self.radius_share);
        check_ratio(&mut problems, key("rfc3164_share"), self.rfc3164_share);
        if self.radius_secret.is_empty() {
            problems.push(ConfigProblem::new(key("radius_secret"), "must not be empty"));
        }
        if let Some(start) = &self.start {
            if let Err(e) = parse_rfc3339_ms(start) {
                problems.push(ConfigProblem::new(key("start"), e));
            }
        }
        for (i, incident) in self.incidents.iter().enumerate() {
            problems.extend(incident.validate(&key(&format!("incidents[{i}]"))));
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            problems.push(ConfigProblem::new(key("duration"), "must be longer than 0s (leave it unset to never stop)"));
        }
        problems
    }

    /// The start of simulated time in milliseconds since the epoch: `start` when set, else
    /// `default_ms` (the caller's choice: [`DEFAULT_START`] or the wall clock).
    pub fn start_ms_or(&self, default_ms: i64) -> Result<i64, crate::GenerateError> {
        match &self.start {
            Some(text) => parse_rfc3339_ms(text).map_err(|reason| crate::GenerateError::BadStart { reason }),
            None => Ok(default_ms),
        }
    }

    /// `start` when set, else [`DEFAULT_START`].
    pub fn start_ms(&self) -> Result<i64, crate::GenerateError> {
        self.start_ms_or(default_start_ms())
    }
}

/// [`DEFAULT_START`] in milliseconds since the epoch.
pub fn default_start_ms() -> i64 {
    // 2026-01-05T00:00:00Z
    1_767_571_200_000
}

impl IncidentConfig {
    /// Every problem of this incident, keys prefixed with `prefix` (`generator.incidents[0]`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let key = |field: &str| format!("{prefix}.{field}");
        let mut problems = Vec::new();
        if let Some(target) = &self.target {
            if target.trim().is_empty() {
                problems.push(ConfigProblem::new(
                    key("target"),
                    "must not be empty (leave it unset to let the seed choose)",
                ));
            }
        }
        if self.duration.is_zero() {
            problems.push(ConfigProblem::new(key("duration"), "must be longer than 0s"));
        } else if self.duration > MAX_INCIDENT_SPAN {
            problems.push(ConfigProblem::new(key("duration"), "must be at most 366 days"));
        }
        if self.start_after > MAX_INCIDENT_SPAN {
            problems.push(ConfigProblem::new(key("start_after"), "must be at most 366 days"));
        }
        check_ratio(&mut problems, key("failure_ratio"), self.failure_ratio);
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(GeneratorConfig::default().validate("generator"), vec![]);
        assert_eq!(parse_rfc3339_ms(DEFAULT_START), Ok(default_start_ms()));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let mut cfg = GeneratorConfig {
            equipment: 10,
            regions: 20,
            rate: 0.0,
            background_failure_ratio: 1.5,
            radius_share: f64::NAN,
            rfc3164_share: -0.1,
            radius_secret: String::new(),
            start: Some("yesterday".into()),
            duration: Some(Duration::ZERO),
            ..GeneratorConfig::default()
        };
        cfg.incidents.push(IncidentConfig {
            target: Some(" ".into()),
            duration: Duration::ZERO,
            failure_ratio: 2.0,
            ..IncidentConfig::default()
        });
        let keys: Vec<String> = cfg.validate("generator").into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            vec![
                "generator.equipment",
                "generator.regions",
                "generator.sites",
                "generator.rate",
                "generator.background_failure_ratio",
                "generator.radius_share",
                "generator.rfc3164_share",
                "generator.radius_secret",
                "generator.start",
                "generator.incidents[1].target",
                "generator.incidents[1].duration",
                "generator.incidents[1].failure_ratio",
                "generator.duration",
            ]
        );
    }

    #[test]
    fn sites_must_cover_regions() {
        let cfg = GeneratorConfig { sites: 3, regions: 4, ..GeneratorConfig::default() };
        let problems = cfg.validate("g");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "g.sites");
    }

    #[test]
    fn toml_like_json_round_trip_and_unknown_fields_rejected() {
        let cfg: GeneratorConfig =
            serde_json::from_str(r#"{"seed": 7, "incidents": [{"scope": "equipment", "duration": "5m"}]}"#).unwrap();
        assert_eq!(cfg.seed, 7);
        assert_eq!(cfg.rate, 2000.0);
        assert_eq!(cfg.incidents[0].scope, IncidentScope::Equipment);
        assert_eq!(cfg.incidents[0].duration, Duration::from_secs(300));
        assert_eq!(cfg.incidents[0].start_after, Duration::from_secs(2));
        assert_eq!((cfg.duration, cfg.realtime), (None, true));
        let bounded: GeneratorConfig = serde_json::from_str(r#"{"duration": "90s", "realtime": false}"#).unwrap();
        assert_eq!((bounded.duration, bounded.realtime), (Some(Duration::from_secs(90)), false));
        assert!(serde_json::from_str::<GeneratorConfig>(r#"{"sed": 7}"#).is_err());
    }
}
