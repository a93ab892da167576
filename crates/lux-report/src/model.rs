//! The report as data ([`ReportModel`]), built by [`build`] from the indicator records, alarm
//! records and interventions of a period and of the period before it. Pure: no I/O, no clock
//! (the time of the report is an argument), so a test compares its figures exactly.
//!
//! Every figure is computed from summed counts, never from averaged rates: a rate is the sum of
//! its numerators over the sum of its denominators across the indicator records of the period
//! (`drop_rate = Σ drops / Σ stops`). Distinct affected subscribers are the estimate of the
//! union of the records' HyperLogLog sketches (standard error 1.6%, exact up to 10).

use crate::Period;
use lux_model::rfc3339;
use lux_model::{Alarm, AlarmState, Millis, QoeIndicator, DURATION_BUCKETS_S};
use lux_qoe::hll::HyperLogLog;
use lux_reference::InterventionRow;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Version of the JSON form of [`ReportModel`].
pub const REPORT_SCHEMA: &str = "lux.report.v1";

/// The dimensions whose worst values a report lists, in this order.
pub const WORST_DIMENSIONS: [&str; 3] = ["region", "site", "equipment"];

/// The order in which the dimension the period's totals are summed over is picked: the first
/// one present in the records (`equipment`, which every event has, unless it is not configured;
/// the others leave out events of unknown equipment).
pub const TOTALS_DIMENSIONS: [&str; 5] = ["equipment", "site", "region", "manufacturer", "model"];

/// Options of a report's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportOptions {
    /// The report's title (the HTML page's title and heading, an e-mail's subject, with the
    /// period after it).
    pub title: String,
    /// Fewest events a region, site or piece of equipment needs in the period to be ranked among
    /// the worst (rates over a handful of events say little).
    pub min_events: u64,
    /// How many rows the worst lists, the error codes and the alarm table show (at most).
    pub top: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { title: "LUX QoE report".to_owned(), min_events: 20, top: 10 }
    }
}

/// What a report is built from: the records of the period and of the previous one (others are
/// ignored), every alarm record known (an alarm raised before the period and cleared in it
/// needs its raise record), and the interventions of the reference data.
#[derive(Debug, Clone, Default)]
pub struct ReportInputs {
    pub indicators: Vec<QoeIndicator>,
    pub alarms: Vec<Alarm>,
    /// `None`: no reference data was available (the report says so).
    pub interventions: Option<Vec<InterventionRow>>,
    /// Where the indicators came from (`qoe topic "qoe"`, `PostgreSQL table lux.qoe_indicators`).
    pub source: String,
    /// Things the report's reader should know about its inputs (a partial read, ...).
    pub notes: Vec<String>,
}

/// A period as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodInfo {
    #[serde(with = "rfc3339")]
    pub from: Millis,
    #[serde(with = "rfc3339")]
    pub to: Millis,
    /// `hour`, `day`, `week` or `custom`.
    pub kind: String,
    /// `day 2026-11-26`.
    pub label: String,
}

impl PeriodInfo {
    fn of(period: Period) -> PeriodInfo {
        PeriodInfo { from: period.from, to: period.to, kind: period.kind().to_owned(), label: period.label() }
    }

    pub fn period(&self) -> Period {
        Period { from: self.from, to: self.to }
    }
}

/// The summed indicators of a period (over the totals dimension) and the rates derived from
/// them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Indicator records summed.
    pub records: u64,
    pub events: u64,
    pub attempts: u64,
    pub setup_successes: u64,
    pub auth_failures: u64,
    pub stops: u64,
    pub drops: u64,
    pub failures: u64,
    /// Stops with a duration, and the short ones among them.
    pub sessions_with_duration: u64,
    pub short_sessions: u64,
    /// Events covered by an intervention with `exclude_from_kpi` (in no other figure).
    pub excluded_events: u64,
    /// Distinct subscribers of failures and drops (union of the sketches).
    pub affected_subscribers: u64,
    pub setup_success_rate: Option<f64>,
    pub auth_failure_rate: Option<f64>,
    pub drop_rate: Option<f64>,
    pub short_session_ratio: Option<f64>,
    /// `failures / events`.
    pub failure_rate: Option<f64>,
    /// Mean session duration in seconds, over the stops with a duration.
    pub mean_session_s: Option<f64>,
}

/// One headline figure of the period against the previous one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kpi {
    /// Stable name (`drop_rate`).
    pub key: String,
    /// For people (`Drop rate`).
    pub label: String,
    /// `count`, `ratio` (0 to 1) or `seconds`.
    pub unit: String,
    pub current: Option<f64>,
    pub previous: Option<f64>,
    /// `current - previous` (for a ratio, in ratio units: 0.01 is one percentage point).
    pub delta: Option<f64>,
    /// Whether a rise is good news (setup success) or bad (drops); `None`: neither.
    pub higher_is_better: Option<bool>,
}

/// One bucket of the period's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeBucket {
    #[serde(with = "rfc3339")]
    pub start: Millis,
    pub events: u64,
    pub attempts: u64,
    pub failures: u64,
    pub stops: u64,
    pub drops: u64,
    pub failure_rate: Option<f64>,
    pub drop_rate: Option<f64>,
}

/// The period cut in buckets: 5 minutes up to 6 hours, hours up to 8 days, days beyond.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub bucket_ms: i64,
    pub buckets: Vec<TimeBucket>,
}

/// One value of a dimension among the worst of the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstRow {
    pub value: String,
    pub events: u64,
    pub attempts: u64,
    pub failures: u64,
    /// `failures / events`: what the list is ranked by.
    pub failure_rate: Option<f64>,
    pub setup_success_rate: Option<f64>,
    pub stops: u64,
    pub drops: u64,
    pub drop_rate: Option<f64>,
    pub affected_subscribers: u64,
    /// The same value's failure rate in the previous period (`None`: no events then).
    pub previous_failure_rate: Option<f64>,
}

/// The worst values of one dimension: ranked by failure rate (then failures, then value), among
/// those with at least `min_events` events in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstList {
    pub dimension: String,
    pub min_events: u64,
    /// Values of the dimension with events in the period, ranked or not.
    pub values_seen: u64,
    pub rows: Vec<WorstRow>,
}

/// An error code of failures and drops, with its count in both periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorCodeRow {
    pub code: String,
    pub count: u64,
    pub previous_count: u64,
    /// `count /` the period's failures and drops with a code listed.
    pub share: Option<f64>,
}

/// One bucket of the session-duration histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DurationBucket {
    /// Inclusive upper bound in seconds; `None` for the last (longer) bucket.
    pub upper_s: Option<u64>,
    pub sessions: u64,
}

/// The session durations of the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationSummary {
    pub sessions: u64,
    pub mean_s: Option<f64>,
    pub min_s: Option<u64>,
    pub max_s: Option<u64>,
    pub buckets: Vec<DurationBucket>,
}

/// One alarm active at some time during the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRow {
    pub alarm_id: String,
    pub rule: String,
    pub group_key: String,
    pub severity: String,
    /// The end of the window whose counts raised it (`None`: its raise record is no longer in
    /// the topic).
    #[serde(with = "rfc3339::option")]
    pub raised_at: Option<Millis>,
    /// The end of the window whose counts cleared it (`None`: not cleared by the time of the
    /// report).
    #[serde(with = "rfc3339::option")]
    pub cleared_at: Option<Millis>,
    /// `cleared_at - raised_at`, in seconds.
    pub duration_s: Option<f64>,
    /// Event time of its first and latest failures.
    #[serde(with = "rfc3339")]
    pub first_seen: Millis,
    #[serde(with = "rfc3339")]
    pub last_seen: Millis,
    /// Most failures one of its windows counted.
    pub peak_count: u64,
    /// Whether an intervention suppressed its notification (in any of its records).
    pub suppressed: bool,
    pub intervention_id: Option<String>,
    /// Still raised at the end of the period.
    pub open_at_end: bool,
}

/// The alarms of the period and the previous one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlarmSummary {
    /// Alarms raised in the period.
    pub raised: u64,
    /// Alarms cleared in the period (whenever raised).
    pub cleared: u64,
    /// Alarms raised before the end of the period and not cleared by then.
    pub open_at_end: u64,
    /// Alarms active in the period whose notification an intervention suppressed.
    pub suppressed: u64,
    /// Mean time to repair: mean of `cleared_at - raised_at` over the alarms cleared in the
    /// period, in seconds.
    pub mttr_s: Option<f64>,
    pub previous_raised: u64,
    pub previous_cleared: u64,
    pub previous_mttr_s: Option<f64>,
    /// Every alarm active at some time in the period (raised before its end, not cleared
    /// before its start), by raise time.
    pub alarms: Vec<AlarmRow>,
}

/// One intervention overlapping the period and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterventionImpact {
    pub id: String,
    pub kind: String,
    pub scope: String,
    pub target_id: String,
    #[serde(with = "rfc3339::option")]
    pub start: Option<Millis>,
    #[serde(with = "rfc3339::option")]
    pub end: Option<Millis>,
    pub exclude_from_kpi: bool,
    pub suppress_alarms: bool,
    /// Events of its target kept out of the indicators in the windows of the period it overlaps
    /// (`None`: the indicators have no `scope` dimension to count them on).
    pub excluded_events: Option<u64>,
    /// Alarms of the period whose notification it suppressed.
    pub suppressed_alarms: Vec<String>,
}

/// The whole report as data: the JSON format is this, serialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportModel {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    pub title: String,
    #[serde(with = "rfc3339")]
    pub generated_at: Millis,
    pub period: PeriodInfo,
    pub previous_period: PeriodInfo,
    /// Where the indicators came from.
    pub source: String,
    /// The dimension the totals, the timeline and the error codes are summed over (`None`: no
    /// indicator in either period).
    pub totals_dimension: Option<String>,
    /// Indicator records of the period, all dimensions.
    pub indicator_records: u64,
    pub current: Totals,
    pub previous: Totals,
    pub headline: Vec<Kpi>,
    pub timeline: Timeline,
    pub worst: Vec<WorstList>,
    pub top_error_codes: Vec<ErrorCodeRow>,
    pub durations: DurationSummary,
    pub alarms: AlarmSummary,
    /// `None`: no reference data was available.
    pub interventions: Option<Vec<InterventionImpact>>,
    /// What the reader should know: no indicators in the period, unreadable sketches, ...
    pub notes: Vec<String>,
}

impl ReportModel {
    /// Whether the period has any indicator record.
    pub fn has_indicators(&self) -> bool {
        self.indicator_records > 0
    }
}

/// Sums of indicator records (one dimension value, a bucket or a whole period).
#[derive(Debug, Clone, Default)]
struct Acc {
    records: u64,
    events: u64,
    attempts: u64,
    setup_successes: u64,
    auth_failures: u64,
    stops: u64,
    drops: u64,
    failures: u64,
    short_sessions: u64,
    excluded: u64,
    durations: lux_model::SessionDurations,
    subscribers: HyperLogLog,
}

impl Acc {
    fn add(&mut self, r: &QoeIndicator, sketch: Option<&HyperLogLog>) {
        self.records += 1;
        self.events = self.events.saturating_add(r.events);
        self.attempts = self.attempts.saturating_add(r.attempts);
        self.setup_successes = self.setup_successes.saturating_add(r.setup_successes);
        self.auth_failures = self.auth_failures.saturating_add(r.auth_failures);
        self.stops = self.stops.saturating_add(r.stops);
        self.drops = self.drops.saturating_add(r.drops);
        self.failures = self.failures.saturating_add(r.failures);
        self.short_sessions = self.short_sessions.saturating_add(r.short_sessions);
        self.excluded = self.excluded.saturating_add(r.excluded_events);
        let d = &mut self.durations;
        if r.durations.count > 0 {
            d.count = d.count.saturating_add(r.durations.count);
            d.sum_s = d.sum_s.saturating_add(r.durations.sum_s);
            d.min_s = match (d.min_s, r.durations.min_s) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            d.max_s = match (d.max_s, r.durations.max_s) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            if d.buckets.len() < r.durations.buckets.len() {
                d.buckets.resize(r.durations.buckets.len(), 0);
            }
            for (mine, theirs) in d.buckets.iter_mut().zip(&r.durations.buckets) {
                *mine = mine.saturating_add(*theirs);
            }
        }
        if let Some(sketch) = sketch {
            self.subscribers.merge(sketch);
        }
    }

    fn totals(&self) -> Totals {
        Totals {
            records: self.records,
            events: self.events,
            attempts: self.attempts,
            setup_successes: self.setup_successes,
            auth_failures: self.auth_failures,
            stops: self.stops,
            drops: self.drops,
            failures: self.failures,
            sessions_with_duration: self.durations.count,
            short_sessions: self.short_sessions,
            excluded_events: self.excluded,
            affected_subscribers: self.subscribers.estimate(),
            setup_success_rate: ratio(self.setup_successes, self.attempts),
            auth_failure_rate: ratio(self.auth_failures, self.attempts),
            drop_rate: ratio(self.drops, self.stops),
            short_session_ratio: ratio(self.short_sessions, self.durations.count),
            failure_rate: ratio(self.failures, self.events),
            mean_session_s: ratio(self.durations.sum_s, self.durations.count),
        }
    }
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    lux_model::ratio(numerator, denominator)
}

/// The timeline's bucket length for a period of `len` milliseconds.
pub fn bucket_ms(len: Millis) -> Millis {
    const HOUR: Millis = 3_600_000;
    if len <= 6 * HOUR {
        300_000
    } else if len <= 8 * 24 * HOUR {
        HOUR
    } else {
        24 * HOUR
    }
}

/// Builds the report of `period` (and of the period before it, for comparison) from `inputs`,
/// as at `now`. Pure: the same inputs give the same model.
pub fn build(inputs: &ReportInputs, period: Period, now: Millis, options: &ReportOptions) -> ReportModel {
    let previous = period.previous();
    let mut notes = inputs.notes.clone();
    // One record per (window, dimension, value): a record seen twice (a copy of a topic read
    // twice, rows of a table) counts once, the last one winning as in the PostgreSQL upsert.
    let mut latest: HashMap<(Millis, &str, &str), &QoeIndicator> = HashMap::new();
    for r in &inputs.indicators {
        if period.contains(r.window_start) || previous.contains(r.window_start) {
            latest.insert((r.window_start, r.dimension.as_str(), r.value.as_str()), r);
        }
    }
    let mut records: Vec<&QoeIndicator> = latest.into_values().collect();
    records.sort_by(|a, b| (a.window_start, &a.dimension, &a.value).cmp(&(b.window_start, &b.dimension, &b.value)));
    let totals_dimension =
        TOTALS_DIMENSIONS.iter().find(|d| records.iter().any(|r| r.dimension == **d)).map(|d| (*d).to_owned());
    if let Some(d) = totals_dimension.as_deref() {
        if d != "equipment" {
            notes.push(format!(
                "the indicators have no equipment dimension: totals are summed over the {d} dimension, which leaves out events of equipment unknown to the reference data"
            ));
        }
    }

    let bucket = bucket_ms(period.len_ms());
    let bucket_count = usize::try_from((period.len_ms() + bucket - 1) / bucket).unwrap_or(0);
    let mut timeline: Vec<TimeBucket> = (0..bucket_count)
        .map(|i| TimeBucket { start: period.from + bucket * i as i64, ..TimeBucket::default() })
        .collect();
    let (mut current, mut before) = (Acc::default(), Acc::default());
    let mut codes: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut worst: Vec<BTreeMap<&str, Acc>> = vec![BTreeMap::new(); WORST_DIMENSIONS.len()];
    let mut worst_before: Vec<BTreeMap<&str, Acc>> = vec![BTreeMap::new(); WORST_DIMENSIONS.len()];
    let (mut indicator_records, mut bad_sketches) = (0u64, 0u64);
    for r in &records {
        let now_period = period.contains(r.window_start);
        indicator_records += u64::from(now_period);
        let is_total = totals_dimension.as_deref() == Some(r.dimension.as_str());
        let worst_index = WORST_DIMENSIONS.iter().position(|d| *d == r.dimension);
        if !is_total && worst_index.is_none() {
            continue;
        }
        let sketch = if r.subscriber_sketch.is_empty() {
            None
        } else {
            match HyperLogLog::decode(&r.subscriber_sketch) {
                Ok(s) => Some(s),
                Err(_) => {
                    bad_sketches += 1;
                    None
                }
            }
        };
        if is_total {
            if now_period {
                current.add(r, sketch.as_ref());
                let slot = usize::try_from((r.window_start - period.from) / bucket).ok();
                if let Some(b) = slot.and_then(|i| timeline.get_mut(i)) {
                    b.events += r.events;
                    b.attempts += r.attempts;
                    b.failures += r.failures;
                    b.stops += r.stops;
                    b.drops += r.drops;
                }
            } else {
                before.add(r, sketch.as_ref());
            }
            for c in &r.top_error_codes {
                let entry = codes.entry(c.code.as_str()).or_default();
                if now_period {
                    entry.0 += c.count;
                } else {
                    entry.1 += c.count;
                }
            }
        }
        if let Some(i) = worst_index {
            let lists = if now_period { &mut worst } else { &mut worst_before };
            if let Some(list) = lists.get_mut(i) {
                list.entry(r.value.as_str()).or_default().add(r, if now_period { sketch.as_ref() } else { None });
            }
        }
    }
    if bad_sketches > 0 {
        notes.push(format!(
            "{bad_sketches} indicator record(s) had an unreadable subscriber sketch: affected subscribers are undercounted"
        ));
    }
    for b in &mut timeline {
        b.failure_rate = ratio(b.failures, b.events);
        b.drop_rate = ratio(b.drops, b.stops);
    }
    let (totals_now, totals_before) = (current.totals(), before.totals());
    if indicator_records == 0 {
        notes.insert(
            0,
            format!(
                "no QoE indicators in the period {} (source: {}): is the qoe stage running, and did events of that time arrive?",
                period.label(),
                if inputs.source.is_empty() { "none" } else { inputs.source.as_str() }
            ),
        );
    }

    let worst = WORST_DIMENSIONS
        .iter()
        .zip(worst.iter().zip(&worst_before))
        .map(|(dimension, (values, before))| worst_list(dimension, values, before, options))
        .collect();

    let code_total: u64 = codes.values().map(|(now, _)| *now).sum();
    let mut top_error_codes: Vec<ErrorCodeRow> = codes
        .iter()
        .filter(|(_, (now, _))| *now > 0)
        .map(|(code, &(count, previous_count))| ErrorCodeRow {
            code: (*code).to_owned(),
            count,
            previous_count,
            share: ratio(count, code_total),
        })
        .collect();
    top_error_codes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    top_error_codes.truncate(options.top);

    let d = &current.durations;
    let durations = DurationSummary {
        sessions: d.count,
        mean_s: ratio(d.sum_s, d.count),
        min_s: d.min_s,
        max_s: d.max_s,
        buckets: (0..=DURATION_BUCKETS_S.len())
            .map(|i| DurationBucket {
                upper_s: DURATION_BUCKETS_S.get(i).copied(),
                sessions: d.buckets.get(i).copied().unwrap_or(0),
            })
            .collect(),
    };

    let alarms = alarm_summary(&inputs.alarms, period);
    let interventions = inputs.interventions.as_ref().map(|list| intervention_impacts(list, &records, &alarms, period));
    if inputs.interventions.is_none() {
        notes.push("no reference data was available: interventions are not listed".to_owned());
    }
    let headline = headline(&totals_now, &totals_before, &alarms);
    ReportModel {
        schema: REPORT_SCHEMA.to_owned(),
        title: format!("{} — {}", options.title, period.label()),
        generated_at: now,
        period: PeriodInfo::of(period),
        previous_period: PeriodInfo::of(previous),
        source: inputs.source.clone(),
        totals_dimension,
        indicator_records,
        current: totals_now,
        previous: totals_before,
        headline,
        timeline: Timeline { bucket_ms: bucket, buckets: timeline },
        worst,
        top_error_codes,
        durations,
        alarms,
        interventions,
        notes,
    }
}

fn worst_list(
    dimension: &str,
    values: &BTreeMap<&str, Acc>,
    before: &BTreeMap<&str, Acc>,
    options: &ReportOptions,
) -> WorstList {
    let mut rows: Vec<WorstRow> = values
        .iter()
        .filter(|(_, acc)| acc.events >= options.min_events.max(1))
        .map(|(value, acc)| WorstRow {
            value: (*value).to_owned(),
            events: acc.events,
            attempts: acc.attempts,
            failures: acc.failures,
            failure_rate: ratio(acc.failures, acc.events),
            setup_success_rate: ratio(acc.setup_successes, acc.attempts),
            stops: acc.stops,
            drops: acc.drops,
            drop_rate: ratio(acc.drops, acc.stops),
            affected_subscribers: acc.subscribers.estimate(),
            previous_failure_rate: before.get(value).and_then(|b| ratio(b.failures, b.events)),
        })
        .filter(|row| row.failures > 0)
        .collect();
    // By failure rate, compared exactly (a/b > c/d as a·d > c·b), then failures, then value.
    rows.sort_by(|a, b| {
        let left = u128::from(b.failures) * u128::from(a.events);
        let right = u128::from(a.failures) * u128::from(b.events);
        left.cmp(&right).then_with(|| b.failures.cmp(&a.failures)).then_with(|| a.value.cmp(&b.value))
    });
    rows.truncate(options.top);
    WorstList {
        dimension: dimension.to_owned(),
        min_events: options.min_events,
        values_seen: values.len() as u64,
        rows,
    }
}

/// One alarm's lifecycle, from its records.
struct Lifecycle<'a> {
    first: &'a Alarm,
    raised_at: Option<Millis>,
    cleared_at: Option<Millis>,
    first_seen: Millis,
    last_seen: Millis,
    peak: u64,
    suppressed: bool,
    intervention: Option<String>,
}

fn alarm_summary(records: &[Alarm], period: Period) -> AlarmSummary {
    let mut by_id: BTreeMap<&str, Lifecycle<'_>> = BTreeMap::new();
    for a in records {
        let l = by_id.entry(a.alarm_id.as_str()).or_insert_with(|| Lifecycle {
            first: a,
            raised_at: None,
            cleared_at: None,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            peak: 0,
            suppressed: false,
            intervention: None,
        });
        match a.state {
            AlarmState::Raised => l.raised_at = Some(l.raised_at.map_or(a.window_end, |t| t.min(a.window_end))),
            AlarmState::Cleared => l.cleared_at = Some(l.cleared_at.map_or(a.window_end, |t| t.max(a.window_end))),
            AlarmState::Updated => {}
        }
        l.first_seen = l.first_seen.min(a.first_seen);
        l.last_seen = l.last_seen.max(a.last_seen);
        if a.state != AlarmState::Cleared {
            l.peak = l.peak.max(a.count);
        }
        if a.suppressed_by_intervention {
            l.suppressed = true;
            if a.intervention_id.is_some() {
                l.intervention.clone_from(&a.intervention_id);
            }
        }
    }
    let previous = period.previous();
    let mut summary = AlarmSummary::default();
    let (mut repair_ms, mut repaired) = (0i128, 0u64);
    let (mut previous_repair_ms, mut previous_repaired) = (0i128, 0u64);
    for l in by_id.values() {
        if let Some(raised) = l.raised_at {
            summary.raised += u64::from(period.contains(raised));
            summary.previous_raised += u64::from(previous.contains(raised));
        }
        if let Some(cleared) = l.cleared_at {
            let duration = l.raised_at.map(|r| i128::from(cleared) - i128::from(r));
            if period.contains(cleared) {
                summary.cleared += 1;
                if let Some(d) = duration {
                    repair_ms += d;
                    repaired += 1;
                }
            } else if previous.contains(cleared) {
                summary.previous_cleared += 1;
                if let Some(d) = duration {
                    previous_repair_ms += d;
                    previous_repaired += 1;
                }
            }
        }
        // Active during the period: raised before its end (or raise unknown but seen before
        // its end), not cleared before its start.
        let start = l.raised_at.unwrap_or(l.first.window_end);
        let active = start < period.to && l.cleared_at.is_none_or(|c| c >= period.from);
        if !active {
            continue;
        }
        let open_at_end = l.cleared_at.is_none_or(|c| c >= period.to);
        summary.open_at_end += u64::from(open_at_end);
        summary.suppressed += u64::from(l.suppressed);
        summary.alarms.push(AlarmRow {
            alarm_id: l.first.alarm_id.clone(),
            rule: l.first.rule.clone(),
            group_key: l.first.group_key.clone(),
            severity: l.first.severity.clone(),
            raised_at: l.raised_at,
            cleared_at: l.cleared_at.filter(|c| *c < period.to),
            duration_s: match (l.raised_at, l.cleared_at.filter(|c| *c < period.to)) {
                (Some(r), Some(c)) => Some((c - r) as f64 / 1000.0),
                _ => None,
            },
            first_seen: l.first_seen,
            last_seen: l.last_seen,
            peak_count: l.peak,
            suppressed: l.suppressed,
            intervention_id: l.intervention.clone(),
            open_at_end,
        });
    }
    summary.mttr_s = (repaired > 0).then(|| repair_ms as f64 / repaired as f64 / 1000.0);
    summary.previous_mttr_s =
        (previous_repaired > 0).then(|| previous_repair_ms as f64 / previous_repaired as f64 / 1000.0);
    summary.alarms.sort_by(|a, b| {
        (a.raised_at.unwrap_or(Millis::MIN), &a.rule, &a.group_key).cmp(&(
            b.raised_at.unwrap_or(Millis::MIN),
            &b.rule,
            &b.group_key,
        ))
    });
    summary
}

fn intervention_impacts(
    list: &[InterventionRow],
    records: &[&QoeIndicator],
    alarms: &AlarmSummary,
    period: Period,
) -> Vec<InterventionImpact> {
    list.iter()
        .filter(|i| i.start.is_none_or(|s| s < period.to) && i.end.is_none_or(|e| e > period.from))
        .map(|i| {
            let (from, to) = (i.start.unwrap_or(Millis::MIN), i.end.unwrap_or(Millis::MAX));
            let mut scope_seen = false;
            let mut excluded = 0u64;
            for r in records.iter().filter(|r| r.dimension == i.scope) {
                scope_seen = true;
                let overlaps = r.window_start < to && r.window_end > from;
                if r.value == i.target_id && overlaps && period.contains(r.window_start) {
                    excluded = excluded.saturating_add(r.excluded_events);
                }
            }
            InterventionImpact {
                id: i.id.clone(),
                kind: i.kind.clone(),
                scope: i.scope.clone(),
                target_id: i.target_id.clone(),
                start: i.start,
                end: i.end,
                exclude_from_kpi: i.exclude_from_kpi,
                suppress_alarms: i.suppress_alarms,
                excluded_events: scope_seen.then_some(excluded),
                suppressed_alarms: alarms
                    .alarms
                    .iter()
                    .filter(|a| a.intervention_id.as_deref() == Some(i.id.as_str()))
                    .map(|a| a.alarm_id.clone())
                    .collect(),
            }
        })
        .collect()
}

fn headline(now: &Totals, before: &Totals, alarms: &AlarmSummary) -> Vec<Kpi> {
    let count = |v: u64| Some(v as f64);
    let kpi =
        |key: &str, label: &str, unit: &str, current: Option<f64>, previous: Option<f64>, better: Option<bool>| Kpi {
            key: key.to_owned(),
            label: label.to_owned(),
            unit: unit.to_owned(),
            current,
            previous,
            delta: current.zip(previous).map(|(c, p)| c - p),
            higher_is_better: better,
        };
    vec![
        kpi("events", "Events", "count", count(now.events), count(before.events), None),
        kpi("attempts", "Session attempts", "count", count(now.attempts), count(before.attempts), None),
        kpi(
            "setup_success_rate",
            "Setup success rate",
            "ratio",
            now.setup_success_rate,
            before.setup_success_rate,
            Some(true),
        ),
        kpi(
            "auth_failure_rate",
            "Authentication failure rate",
            "ratio",
            now.auth_failure_rate,
            before.auth_failure_rate,
            Some(false),
        ),
        kpi("drop_rate", "Drop rate", "ratio", now.drop_rate, before.drop_rate, Some(false)),
        kpi(
            "short_session_ratio",
            "Short-session ratio",
            "ratio",
            now.short_session_ratio,
            before.short_session_ratio,
            Some(false),
        ),
        kpi("failures", "Failures", "count", count(now.failures), count(before.failures), Some(false)),
        kpi(
            "affected_subscribers",
            "Affected subscribers",
            "count",
            count(now.affected_subscribers),
            count(before.affected_subscribers),
            Some(false),
        ),
        kpi("mean_session", "Mean session duration", "seconds", now.mean_session_s, before.mean_session_s, None),
        kpi(
            "excluded_events",
            "Events excluded (interventions)",
            "count",
            count(now.excluded_events),
            count(before.excluded_events),
            None,
        ),
        kpi(
            "alarms_raised",
            "Alarms raised",
            "count",
            count(alarms.raised),
            count(alarms.previous_raised),
            Some(false),
        ),
        kpi("mttr", "MTTR", "seconds", alarms.mttr_s, alarms.previous_mttr_s, Some(false)),
    ]
}
