//! The `[alarm]` config section: watermark settings and the threshold rules, with their validation.

use lux_model::{ConfigProblem, EnrichedEvent, Ratio};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The severities a rule may give its alarms.
pub const SEVERITIES: [&str; 4] = ["critical", "major", "minor", "warning"];

/// Most panes (window / slide) a rule may keep per group: bounds state and evaluation cost.
pub const MAX_PANES_PER_WINDOW: u128 = 1000;

/// The alarm stage: event-time sliding windows over the `enriched` topic and the threshold rules
/// evaluated on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmConfig {
    /// How far out of order (in event time) events of one partition may arrive: the watermark of
    /// a partition is its highest event time minus this. Windows are evaluated (closed) when the
    /// watermark passes their end.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub out_of_orderness: Duration,
    /// How far behind the watermark an event is still counted. Such an event updates the windows
    /// it belongs to that are still kept: the latest closed window is evaluated again (an
    /// `updated`, `cleared` or `raised` record follows when that changes what was sent) and open
    /// windows count it. Panes are kept until the watermark passes their last window's end plus
    /// this, so state grows with it. An event further behind is late: counted per rule
    /// (`lux_stage_counter_total{stage="alarm-route",counter="late_events.<rule>"}`) and written
    /// unchanged to the `late` topic.
    /// With 0 (default) the alarms do not depend on how partitions interleave; above 0 the
    /// records of late updates follow arrival order.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub allowed_lateness: Duration,
    /// Wall-clock time after which a partition that sent nothing no longer holds back the
    /// watermark (a partition that never sent anything is idle this long after the stage
    /// started). When every partition is idle, the watermark moves to the highest partition
    /// watermark so that the last windows are evaluated.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub idle_timeout: Duration,
    /// Most (rule, group) keys tracked at once. Events of a new group beyond it are counted as
    /// overflow events and not tracked.
    pub max_groups: usize,
    /// Threads the window half of the stage counts events and evaluates windows on. Each
    /// partition of the routed topic has its own engine, and the engines of a batch run side by
    /// side on up to this many threads (a batch under a few hundred records stays on the
    /// stage's thread). 0 (default): one per core. The alarms do not depend on it.
    pub threads: usize,
    /// Partitions of the routed topic between the two halves of the stage (`alarm-routed`):
    /// the units of work that the window half spreads over its threads, and over its instances
    /// on Kafka (as Flink's key groups). Used when the topic is created; an existing topic keeps
    /// its own count, which LUX follows (and logs, when it differs from this). Between 1 and
    /// 1024.
    pub routed_partitions: u32,
    /// The threshold rules. Each counts failures per group in a sliding window.
    pub rules: Vec<RuleConfig>,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig {
            out_of_orderness: Duration::from_secs(5),
            allowed_lateness: Duration::ZERO,
            idle_timeout: Duration::from_secs(30),
            max_groups: 100_000,
            threads: 0,
            routed_partitions: 12,
            // threshold / 2 = 50 clears: `clear` is left unset so that it follows the threshold.
            rules: vec![RuleConfig { threshold: Some(100), ..RuleConfig::default() }],
        }
    }
}

/// One threshold rule: raise an alarm for a group when the failures of its events in a sliding
/// window reach `threshold` (a count rule) or their share of the window's events reaches
/// `threshold_ratio` with at least `min_events` events (a ratio rule); clear it when they fall
/// under `clear` (or `clear_ratio`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    /// Unique name of the rule (letters, digits, `-`, `_`, `.`): carried by its alarms.
    pub name: String,
    /// Which events the rule looks at: dimension -> accepted values (`kind = ["auth_reject"]`).
    /// An event matches when it has an accepted value for every listed dimension. Empty: all
    /// events. Dimensions: `equipment`, `site`, `region`, `manufacturer`, `model`,
    /// `equipment_type`, `technology`, `error_code`, `error_category`, `kind`, `source`.
    pub filter: BTreeMap<String, Vec<String>>,
    /// The dimensions an alarm is raised per (`["site"]`: one alarm per site). Events without a
    /// value for one of them are counted as ungrouped. Empty: one group for all events.
    pub group_by: Vec<String>,
    /// Length of the sliding window, in event time. A positive multiple of `slide`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub window: Duration,
    /// How often the window is evaluated (its step), in event time: at least 1s, whole
    /// milliseconds, and at most 1000 steps per window. Windows end on multiples of it.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub slide: Duration,
    /// A count rule: failures in one window that raise the alarm (at least 1). The alarm is
    /// raised before the window ends, as `early_firing` says. Set this or `threshold_ratio`, not
    /// both.
    pub threshold: Option<u64>,
    /// When a count rule raises: `any_window` (default) the moment a failure brings any open
    /// window holding it to the threshold; `next_window` only when that window is the one the
    /// watermark closes next (else when it does). See [`EarlyFiring`].
    pub early_firing: EarlyFiring,
    /// A count rule's clear level: while raised, the alarm clears when a closed window holds
    /// fewer failures than this (and always when it holds none). Less than `threshold`.
    /// Default: `threshold / 2`.
    pub clear: Option<u64>,
    /// A ratio rule: the share of failures among the window's events (in (0, 1], kept to the
    /// millionth) that raises the alarm, when the window holds at least `min_events` events.
    /// A ratio is known only once its window is complete (more successes may still come), so a
    /// ratio rule raises when the watermark passes the window's end. Set this or `threshold`.
    pub threshold_ratio: Option<f64>,
    /// A ratio rule's clear level: while raised, the alarm clears when a closed window's failure
    /// ratio falls under it, or when the window holds no failure. A window under `min_events`
    /// clears it only that way (little traffic is no sign of recovery). In [0, threshold_ratio).
    /// Default: `threshold_ratio / 2`.
    pub clear_ratio: Option<f64>,
    /// A ratio rule's minimum volume: the fewest events (failures or not) a window must hold for
    /// its ratio to raise the alarm (at least 1). Default: 10.
    pub min_events: Option<u64>,
    /// Severity of the alarms: `critical`, `major`, `minor` or `warning`.
    pub severity: String,
    /// Whether alarms whose latest failure fell in an intervention that suppresses alarms are
    /// flagged `suppressed_by_intervention` (the records are still written; notifiers skip them).
    pub suppress_during_interventions: bool,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            name: "site-failures".to_owned(),
            filter: BTreeMap::new(),
            group_by: vec!["site".to_owned()],
            window: Duration::from_secs(60),
            slide: Duration::from_secs(10),
            // No threshold: a rule written without one must say which kind it is.
            threshold: None,
            early_firing: EarlyFiring::AnyWindow,
            clear: None,
            threshold_ratio: None,
            clear_ratio: None,
            min_events: None,
            severity: "major".to_owned(),
            suppress_during_interventions: true,
        }
    }
}

/// How early a count rule raises its alarm. Both raise before the window ends; they differ in
/// what a second run over the same input (a replay, a scale-out or restarted run) gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EarlyFiring {
    /// The moment a failure brings any open window holding it to the threshold (on the first
    /// such window): the alarm follows the failure that crossed the threshold by the time it
    /// takes to read it. Which window that is, and so the `alarm_id`, depends on the order in
    /// which the group's events arrived: for a group whose events come from one partition
    /// (`group_by` with `equipment`) that order is the log's, the same in every run; for a group
    /// spanning partitions (a site, a region) it depends on how they interleave, so a replay may
    /// raise the same burst of failures on a neighbouring window.
    AnyWindow,
    /// Only when a failure brings the window the watermark closes next to the threshold, else
    /// when that window closes: the window evaluation raises on, whatever the interleaving, so
    /// every run gives the same records (up to the counts of a `raised` record made early). The
    /// alarm may come up to `slide` + `alarm.out_of_orderness` after the failure that crossed
    /// the threshold.
    NextWindow,
}

/// `prefix` with a trailing `.` when it has none (`alarm` and `alarm.` both give `alarm.`).
fn dotted(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('.') {
        prefix.to_owned()
    } else {
        format!("{prefix}.")
    }
}

fn known_dimension(name: &str) -> bool {
    EnrichedEvent::DIMENSIONS.contains(&name)
}

impl AlarmConfig {
    /// Every problem of the section, each with its full dotted key (`alarm.rules[0].slide`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let p = dotted(prefix);
        let mut problems = Vec::new();
        if self.idle_timeout.is_zero() {
            problems.push(ConfigProblem::new(format!("{p}idle_timeout"), "must be positive"));
        }
        if self.out_of_orderness > Duration::from_secs(365 * 24 * 3600) {
            problems.push(ConfigProblem::new(format!("{p}out_of_orderness"), "must be at most a year"));
        }
        if self.allowed_lateness > Duration::from_secs(365 * 24 * 3600) {
            problems.push(ConfigProblem::new(format!("{p}allowed_lateness"), "must be at most a year"));
        }
        if self.max_groups == 0 {
            problems.push(ConfigProblem::new(format!("{p}max_groups"), "must be at least 1"));
        }
        if !(1..=1024).contains(&self.routed_partitions) {
            problems.push(ConfigProblem::new(
                format!("{p}routed_partitions"),
                format!("must be between 1 and 1024, not {}", self.routed_partitions),
            ));
        }
        let mut names = BTreeSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let rp = format!("{p}rules[{i}].");
            if !rule.name.is_empty() && !names.insert(rule.name.as_str()) {
                problems.push(ConfigProblem::new(format!("{rp}name"), format!("duplicate rule name {:?}", rule.name)));
            }
            problems.extend(rule.validate(&rp));
        }
        problems
    }
}

/// Default [`RuleConfig::min_events`] of a ratio rule.
pub const DEFAULT_MIN_EVENTS: u64 = 10;

/// A rule's threshold, as validated: a count of failures or a failure ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Raise at `threshold` failures, clear under `clear` (at least 1).
    Count { threshold: u64, clear: u64 },
    /// Raise when failures / events reach `threshold` with at least `min_events` events; clear
    /// under `clear` or without failures.
    Ratio { threshold: Ratio, clear: Ratio, min_events: u64 },
}

impl RuleConfig {
    /// The clear level in force of a count rule: `clear`, or `threshold / 2` when unset.
    pub fn effective_clear(&self) -> u64 {
        self.clear.unwrap_or(self.threshold.unwrap_or(0) / 2)
    }

    /// The rule's threshold and clear level with their defaults (clear levels at least one
    /// failure, so that a window without failures always clears). Meaningful for a valid rule.
    pub fn level(&self) -> Level {
        match (self.threshold, self.threshold_ratio) {
            (None, Some(ratio)) => Level::Ratio {
                threshold: Ratio::from_f64(ratio),
                clear: Ratio::from_f64(self.clear_ratio.unwrap_or(ratio / 2.0)),
                min_events: self.min_events.unwrap_or(DEFAULT_MIN_EVENTS).max(1),
            },
            (threshold, _) => {
                Level::Count { threshold: threshold.unwrap_or(1).max(1), clear: self.effective_clear().max(1) }
            }
        }
    }

    /// Every problem of this rule, each with its full dotted key (`alarm.rules[0].slide`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let p = dotted(prefix);
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(ConfigProblem::new(format!("{p}{field}"), message));
        };
        if self.name.is_empty() {
            problem("name", "must not be empty".to_owned());
        } else if !self.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            problem("name", format!("{:?} may only hold letters, digits, '-', '_' and '.'", self.name));
        }
        for (dim, values) in &self.filter {
            if !known_dimension(dim) {
                problem(
                    &format!("filter.{dim}"),
                    format!("unknown dimension {dim:?} (known: {})", EnrichedEvent::DIMENSIONS.join(", ")),
                );
            } else if values.is_empty() {
                problem(&format!("filter.{dim}"), "lists no accepted value: the rule would match nothing".to_owned());
            }
        }
        let mut seen = BTreeSet::new();
        for (i, dim) in self.group_by.iter().enumerate() {
            if !known_dimension(dim) {
                problem(
                    &format!("group_by[{i}]"),
                    format!("unknown dimension {dim:?} (known: {})", EnrichedEvent::DIMENSIONS.join(", ")),
                );
            } else if !seen.insert(dim.as_str()) {
                problem(&format!("group_by[{i}]"), format!("dimension {dim:?} is listed twice"));
            }
        }
        let slide = self.slide.as_nanos();
        let window = self.window.as_nanos();
        if self.slide < Duration::from_secs(1) {
            problem("slide", format!("must be at least 1s, not {}", humantime::format_duration(self.slide)));
        } else if slide.checked_rem(1_000_000) != Some(0) {
            problem("slide", "must be a whole number of milliseconds".to_owned());
        } else if window == 0 || window.checked_rem(slide) != Some(0) {
            problem(
                "window",
                format!(
                    "must be a positive multiple of slide ({}), not {}",
                    humantime::format_duration(self.slide),
                    humantime::format_duration(self.window)
                ),
            );
        } else if window / slide > MAX_PANES_PER_WINDOW {
            problem("window", format!("must be at most {MAX_PANES_PER_WINDOW} slides long, not {}", window / slide));
        }
        match (self.threshold, self.threshold_ratio) {
            (None, None) => problem(
                "threshold",
                "is missing: set threshold (failures in a window, e.g. 100) or threshold_ratio \
                 (failures / events, e.g. 0.2, with min_events)"
                    .to_owned(),
            ),
            (Some(_), Some(_)) => problem(
                "threshold_ratio",
                "is set with threshold: keep one (threshold counts failures, threshold_ratio their share of the \
                 window's events)"
                    .to_owned(),
            ),
            (Some(threshold), None) => {
                if threshold == 0 {
                    problem("threshold", "must be at least 1".to_owned());
                }
                if let Some(clear) = self.clear.filter(|&c| c >= threshold) {
                    problem("clear", format!("must be less than threshold ({threshold}), not {clear}"));
                }
                for (field, set) in
                    [("clear_ratio", self.clear_ratio.is_some()), ("min_events", self.min_events.is_some())]
                {
                    if set {
                        problem(
                            field,
                            "applies to threshold_ratio rules: remove it, or use threshold_ratio".to_owned(),
                        );
                    }
                }
            }
            (None, Some(ratio)) => {
                if !(ratio > 0.0 && ratio <= 1.0) {
                    problem("threshold_ratio", format!("must be in (0, 1], not {ratio}"));
                } else if Ratio::from_f64(ratio).millionths() == 0 {
                    problem("threshold_ratio", format!("must be at least 0.000001, not {ratio}"));
                }
                if let Some(clear) = self.clear_ratio {
                    if !(clear >= 0.0 && clear < ratio) {
                        problem("clear_ratio", format!("must be in [0, threshold_ratio ({ratio})), not {clear}"));
                    }
                }
                if self.min_events == Some(0) {
                    problem("min_events", "must be at least 1".to_owned());
                }
                if self.clear.is_some() {
                    problem("clear", "applies to threshold rules: use clear_ratio with threshold_ratio".to_owned());
                }
            }
        }
        if !SEVERITIES.contains(&self.severity.as_str()) {
            problem("severity", format!("unknown severity {:?} (known: {})", self.severity, SEVERITIES.join(", ")));
        }
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
    fn defaults_are_valid_and_match_the_demo() {
        let cfg = AlarmConfig::default();
        assert!(cfg.validate("alarm").is_empty());
        assert_eq!(cfg.rules.len(), 1);
        let rule = &cfg.rules[0];
        assert_eq!(rule.name, "site-failures");
        assert_eq!(rule.group_by, vec!["site"]);
        assert_eq!((rule.window, rule.slide), (Duration::from_secs(60), Duration::from_secs(10)));
        assert_eq!((rule.threshold, rule.effective_clear()), (Some(100), 50));
        assert_eq!(rule.level(), Level::Count { threshold: 100, clear: 50 });
        assert_eq!(cfg.max_groups, 100_000);
    }

    #[test]
    fn parses_toml_with_humantime_durations_and_rejects_unknown_keys() {
        let cfg: AlarmConfig = toml::from_str(
            r#"
            out_of_orderness = "2s"
            [[rules]]
            name = "auth"
            filter = { kind = ["auth_reject"] }
            group_by = ["region", "model"]
            window = "5m"
            slide = "30s"
            threshold = 20
            severity = "critical"
            [[rules]]
            name = "auth-ratio"
            filter = { kind = ["auth_accept", "auth_reject"] }
            threshold_ratio = 0.2
            min_events = 50
            "#,
        )
        .unwrap();
        assert_eq!(cfg.out_of_orderness, Duration::from_secs(2));
        assert_eq!(cfg.idle_timeout, Duration::from_secs(30));
        let rule = &cfg.rules[0];
        assert_eq!(rule.window, Duration::from_secs(300));
        assert_eq!(rule.clear, None);
        assert_eq!(rule.effective_clear(), 10);
        assert!(rule.suppress_during_interventions);
        assert!(cfg.validate("alarm.").is_empty());
        assert_eq!(
            cfg.rules[1].level(),
            Level::Ratio { threshold: Ratio::from_f64(0.2), clear: Ratio::from_f64(0.1), min_events: 50 }
        );
        assert!(toml::from_str::<AlarmConfig>("[[rules]]\nname = \"x\"\ntreshold = 3\n").is_err());
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let mut bad = RuleConfig {
            name: "dup".to_owned(),
            filter: BTreeMap::from([("colour".to_owned(), vec!["red".to_owned()]), ("site".to_owned(), vec![])]),
            group_by: vec!["site".to_owned(), "planet".to_owned(), "site".to_owned()],
            window: Duration::from_secs(25),
            slide: Duration::from_secs(10),
            threshold: Some(10),
            early_firing: EarlyFiring::NextWindow,
            clear: Some(10),
            threshold_ratio: None,
            clear_ratio: None,
            min_events: Some(5),
            severity: "fatal".to_owned(),
            suppress_during_interventions: false,
        };
        let cfg = AlarmConfig {
            idle_timeout: Duration::ZERO,
            max_groups: 0,
            rules: vec![bad.clone(), bad.clone()],
            ..AlarmConfig::default()
        };
        let problems = cfg.validate("alarm");
        let rule =
            ["filter.colour", "filter.site", "group_by[1]", "group_by[2]", "window", "clear", "min_events", "severity"];
        let mut expected: Vec<String> = vec!["alarm.idle_timeout".to_owned(), "alarm.max_groups".to_owned()];
        expected.extend(rule.iter().map(|k| format!("alarm.rules[0].{k}")));
        expected.push("alarm.rules[1].name".to_owned());
        expected.extend(rule.iter().map(|k| format!("alarm.rules[1].{k}")));
        assert_eq!(keys(&problems), expected.iter().map(String::as_str).collect::<Vec<_>>());

        bad.slide = Duration::from_millis(500);
        assert_eq!(
            keys(&bad.validate("r.")),
            vec![
                "r.filter.colour",
                "r.filter.site",
                "r.group_by[1]",
                "r.group_by[2]",
                "r.slide",
                "r.clear",
                "r.min_events",
                "r.severity"
            ]
        );
        bad.slide = Duration::from_secs(1);
        bad.window = Duration::from_secs(1001);
        assert!(bad.validate("r").iter().any(|p| p.key == "r.window" && p.message.contains("1000")));
        bad.window = Duration::ZERO;
        assert!(bad.validate("r").iter().any(|p| p.key == "r.window" && p.message.contains("positive")));
        bad.name = "bad name".to_owned();
        bad.threshold = Some(0);
        let keys_now: Vec<String> = bad.validate("r").into_iter().map(|p| p.key).collect();
        assert!(keys_now.contains(&"r.name".to_owned()) && keys_now.contains(&"r.threshold".to_owned()));
    }

    #[test]
    fn a_rule_has_exactly_one_valid_threshold() {
        let messages = |rule: &RuleConfig| -> Vec<(String, String)> {
            rule.validate("r").into_iter().map(|p| (p.key, p.message)).collect()
        };
        let neither = RuleConfig::default();
        let found = messages(&neither);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "r.threshold");
        assert!(found[0].1.contains("threshold_ratio"), "{}", found[0].1);
        let both = RuleConfig { threshold: Some(5), threshold_ratio: Some(0.5), ..RuleConfig::default() };
        assert_eq!(keys(&both.validate("r")), vec!["r.threshold_ratio"]);
        let ratio = |t: f64, c: Option<f64>, m: Option<u64>| RuleConfig {
            threshold_ratio: Some(t),
            clear_ratio: c,
            min_events: m,
            ..RuleConfig::default()
        };
        assert!(ratio(1.0, Some(0.0), Some(1)).validate("r").is_empty());
        for bad in [0.0, -0.1, 1.5, f64::NAN, 1e-9] {
            assert_eq!(keys(&ratio(bad, None, None).validate("r")), vec!["r.threshold_ratio"], "{bad}");
        }
        assert_eq!(keys(&ratio(0.2, Some(0.2), Some(0)).validate("r")), vec!["r.clear_ratio", "r.min_events"]);
        assert_eq!(keys(&ratio(0.2, Some(-0.1), None).validate("r")), vec!["r.clear_ratio"]);
        let mut mixed = ratio(0.2, None, None);
        mixed.clear = Some(3);
        assert_eq!(keys(&mixed.validate("r")), vec!["r.clear"]);
        assert_eq!(
            ratio(0.3, None, None).level(),
            Level::Ratio {
                threshold: Ratio::from_f64(0.3),
                clear: Ratio::from_f64(0.15),
                min_events: DEFAULT_MIN_EVENTS
            }
        );
    }
}
