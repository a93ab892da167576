//! Known answers: indicator and alarm records and interventions made by hand, and the report's
//! figures compared exactly with what they must sum to; then the same model rendered in every
//! format and read back.

use lux_model::{Alarm, AlarmState, ErrorCodeCount, Millis, QoeIndicator, SessionDurations};
use lux_qoe::hll::HyperLogLog;
use lux_reference::InterventionRow;
use lux_report::{build, parse_time, render, Period, PeriodSpec, ReportInputs, ReportModel, ReportOptions};

const MINUTE: Millis = 60_000;

fn t(text: &str) -> Millis {
    parse_time(text).unwrap()
}

/// The period: the day 2026-11-25 (as `lux report --period day --at 2026-11-26T08:00:00Z`).
fn period() -> Period {
    PeriodSpec::Day.resolve(t("2026-11-26T08:00:00Z"))
}

#[derive(Default)]
struct Counts {
    events: u64,
    attempts: u64,
    successes: u64,
    auth: u64,
    stops: u64,
    drops: u64,
    failures: u64,
    short: u64,
    durations: Vec<u64>,
    excluded: u64,
    subscribers: Vec<&'static str>,
    codes: Vec<(&'static str, u64)>,
}

fn indicator(start: &str, dimension: &str, value: &str, c: Counts) -> QoeIndicator {
    let mut sketch = HyperLogLog::default();
    for s in &c.subscribers {
        sketch.insert(s.as_bytes());
    }
    let mut durations = SessionDurations::default();
    for d in &c.durations {
        durations.add(*d);
    }
    let start = t(start);
    QoeIndicator {
        schema: "lux.qoe.v1".into(),
        window_start: start,
        window_end: start + MINUTE,
        dimension: dimension.into(),
        value: value.into(),
        events: c.events,
        attempts: c.attempts,
        setup_successes: c.successes,
        setup_success_rate: lux_model::ratio(c.successes, c.attempts),
        auth_failures: c.auth,
        auth_failure_rate: lux_model::ratio(c.auth, c.attempts),
        stops: c.stops,
        drops: c.drops,
        drop_rate: lux_model::ratio(c.drops, c.stops),
        short_sessions: c.short,
        short_session_ratio: lux_model::ratio(c.short, durations.count),
        failures: c.failures,
        affected_subscribers: sketch.estimate(),
        subscriber_sketch: sketch.encode(),
        durations,
        top_error_codes: c
            .codes
            .iter()
            .map(|(code, count)| ErrorCodeCount { code: (*code).into(), count: *count })
            .collect(),
        excluded_events: c.excluded,
    }
}

fn alarm(id: &str, state: AlarmState, window_end: &str, count: u64, suppressed_by: Option<&str>) -> Alarm {
    let end = t(window_end);
    Alarm {
        schema: "lux.alarm.v1".into(),
        alarm_id: id.into(),
        rule: "site-failures".into(),
        group_key: format!("site={id}"),
        group: [("site".to_owned(), id.to_owned())].into(),
        state,
        severity: "major".into(),
        count,
        total: count * 2,
        threshold: 10,
        threshold_ratio: None,
        min_events: None,
        window_start: end - 10 * MINUTE,
        window_end: end,
        first_seen: end - 9 * MINUTE,
        last_seen: end - MINUTE,
        suppressed_by_intervention: suppressed_by.is_some(),
        intervention_id: suppressed_by.map(str::to_owned),
    }
}

fn intervention(id: &str, target: &str, start: Option<&str>, end: Option<&str>) -> InterventionRow {
    InterventionRow {
        id: id.into(),
        kind: "planned".into(),
        scope: "equipment".into(),
        target_id: target.into(),
        start: start.map(t),
        end: end.map(t),
        suppress_alarms: true,
        exclude_from_kpi: true,
    }
}

fn inputs() -> ReportInputs {
    let a_now = || Counts {
        events: 100,
        attempts: 50,
        successes: 45,
        auth: 3,
        stops: 20,
        drops: 4,
        failures: 8,
        short: 1,
        durations: vec![5, 45, 120, 4000],
        subscribers: vec!["s1", "s2", "s3"],
        codes: vec![("E1", 5), ("E2", 3)],
        ..Counts::default()
    };
    let b_now = || Counts {
        events: 10,
        attempts: 10,
        successes: 5,
        auth: 5,
        failures: 5,
        excluded: 7,
        subscribers: vec!["s3", "s4"],
        codes: vec![("E2", 5)],
        ..Counts::default()
    };
    let a_before = || Counts {
        events: 50,
        attempts: 20,
        successes: 20,
        stops: 10,
        drops: 1,
        failures: 1,
        durations: vec![100, 200],
        subscribers: vec!["s1"],
        codes: vec![("E1", 1)],
        ..Counts::default()
    };
    let indicators = vec![
        indicator("2026-11-25T10:00:00Z", "equipment", "eq-A", a_now()),
        indicator("2026-11-25T10:01:00Z", "equipment", "eq-<B>", b_now()),
        // The same record twice (a table row and a topic record): counted once.
        indicator("2026-11-25T10:01:00Z", "equipment", "eq-<B>", b_now()),
        indicator("2026-11-24T10:00:00Z", "equipment", "eq-A", a_before()),
        // Outside both periods: ignored.
        indicator("2026-11-26T00:00:00Z", "equipment", "eq-A", a_now()),
        indicator("2026-11-23T23:59:00Z", "equipment", "eq-A", a_now()),
        // Sites and regions: the same events counted per site and region.
        indicator("2026-11-25T10:00:00Z", "site", "S1", a_now()),
        indicator("2026-11-25T10:01:00Z", "site", "S2", b_now()),
        indicator("2026-11-24T10:00:00Z", "site", "S1", a_before()),
        indicator("2026-11-25T10:00:00Z", "region", "R1", a_now()),
        indicator("2026-11-25T10:01:00Z", "region", "R2", b_now()),
    ];
    let alarms = vec![
        // X: raised the day before, cleared 30 minutes later in the period.
        alarm("X", AlarmState::Raised, "2026-11-24T23:50:00Z", 12, None),
        alarm("X", AlarmState::Updated, "2026-11-24T23:55:00Z", 30, None),
        alarm("X", AlarmState::Cleared, "2026-11-25T00:20:00Z", 2, None),
        // Y: 10 minutes in the period.
        alarm("Y", AlarmState::Raised, "2026-11-25T10:00:00Z", 11, None),
        alarm("Y", AlarmState::Cleared, "2026-11-25T10:10:00Z", 1, None),
        // Z: raised in the period, still open, suppressed by an intervention.
        alarm("Z", AlarmState::Raised, "2026-11-25T20:00:00Z", 15, Some("INT-1")),
        // W: raised and cleared in the previous period (40 minutes).
        alarm("W", AlarmState::Raised, "2026-11-24T05:00:00Z", 10, None),
        alarm("W", AlarmState::Cleared, "2026-11-24T05:40:00Z", 0, None),
        // V: over before the previous period.
        alarm("V", AlarmState::Raised, "2026-11-20T05:00:00Z", 10, None),
        alarm("V", AlarmState::Cleared, "2026-11-20T05:40:00Z", 0, None),
    ];
    let interventions = vec![
        intervention("INT-1", "eq-<B>", Some("2026-11-25T09:00:00Z"), Some("2026-11-25T11:00:00Z")),
        intervention("INT-2", "eq-A", Some("2026-11-24T09:00:00Z"), Some("2026-11-24T11:00:00Z")),
        intervention("INT-3", "eq-A", None, None),
    ];
    ReportInputs {
        indicators,
        alarms,
        interventions: Some(interventions),
        source: "hand-made records".into(),
        notes: Vec::new(),
    }
}

fn options() -> ReportOptions {
    ReportOptions { title: "Test report".into(), min_events: 20, top: 10 }
}

fn model() -> ReportModel {
    build(&inputs(), period(), t("2026-11-26T08:00:00Z"), &options())
}

#[test]
fn totals_and_rates_are_sums_over_the_equipment_records_of_the_period() {
    let m = model();
    assert_eq!(m.period.period(), Period { from: t("2026-11-25T00:00:00Z"), to: t("2026-11-26T00:00:00Z") });
    assert_eq!(m.previous_period.from, t("2026-11-24T00:00:00Z"));
    assert_eq!(m.totals_dimension.as_deref(), Some("equipment"));
    // 2 equipment + 2 site + 2 region records in the period (the duplicate once).
    assert_eq!(m.indicator_records, 6);
    let c = &m.current;
    assert_eq!(
        (c.records, c.events, c.attempts, c.setup_successes, c.auth_failures, c.stops, c.drops, c.failures),
        (2, 110, 60, 50, 8, 20, 4, 13)
    );
    assert_eq!((c.sessions_with_duration, c.short_sessions, c.excluded_events), (4, 1, 7));
    assert_eq!(c.setup_success_rate, Some(50.0 / 60.0));
    assert_eq!(c.auth_failure_rate, Some(8.0 / 60.0));
    assert_eq!(c.drop_rate, Some(4.0 / 20.0));
    assert_eq!(c.short_session_ratio, Some(1.0 / 4.0));
    assert_eq!(c.failure_rate, Some(13.0 / 110.0));
    assert_eq!(c.mean_session_s, Some((5.0 + 45.0 + 120.0 + 4000.0) / 4.0));
    // s1, s2, s3 and s3, s4: 4 distinct (exact under 10).
    assert_eq!(c.affected_subscribers, 4);
    let p = &m.previous;
    assert_eq!((p.events, p.attempts, p.drops, p.stops, p.failures, p.affected_subscribers), (50, 20, 1, 10, 1, 1));
    assert_eq!(p.setup_success_rate, Some(1.0));

    let kpi = |key: &str| m.headline.iter().find(|k| k.key == key).unwrap_or_else(|| panic!("kpi {key}"));
    assert_eq!(
        (kpi("events").current, kpi("events").previous, kpi("events").delta),
        (Some(110.0), Some(50.0), Some(60.0))
    );
    assert_eq!(kpi("drop_rate").delta, Some(0.2 - 0.1));
    assert_eq!(kpi("setup_success_rate").delta, Some(50.0 / 60.0 - 1.0));
    assert_eq!(kpi("affected_subscribers").delta, Some(3.0));
    assert_eq!(kpi("mean_session").previous, Some(150.0));
    assert_eq!((kpi("alarms_raised").current, kpi("alarms_raised").previous), (Some(2.0), Some(2.0)));
    assert_eq!((kpi("mttr").current, kpi("mttr").previous), (Some(1200.0), Some(2400.0)));

    // The timeline: hours of the day, the two records at 10:00.
    assert_eq!((m.timeline.bucket_ms, m.timeline.buckets.len()), (3_600_000, 24));
    let ten = &m.timeline.buckets[10];
    assert_eq!(
        (ten.start, ten.events, ten.failures, ten.drops, ten.stops),
        (t("2026-11-25T10:00:00Z"), 110, 13, 4, 20)
    );
    assert_eq!(m.timeline.buckets.iter().map(|b| b.events).sum::<u64>(), 110);

    // Durations: 5 s, 45 s, 120 s, 4000 s in buckets <=10, <=60, <=300, <=14400.
    assert_eq!((m.durations.sessions, m.durations.min_s, m.durations.max_s), (4, Some(5), Some(4000)));
    let buckets: Vec<u64> = m.durations.buckets.iter().map(|b| b.sessions).collect();
    assert_eq!(buckets, vec![1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0]);
    assert!(m.notes.is_empty(), "{:?}", m.notes);
}

#[test]
fn worst_lists_rank_by_failure_rate_above_the_minimum_volume() {
    let m = model();
    let list = |d: &str| m.worst.iter().find(|w| w.dimension == d).unwrap();
    // eq-<B> has 10 events: under the minimum of 20; eq-A 100 events, 8 failures.
    let equipment = list("equipment");
    assert_eq!(equipment.values_seen, 2);
    assert_eq!(equipment.rows.len(), 1);
    let a = &equipment.rows[0];
    assert_eq!((a.value.as_str(), a.events, a.failures, a.failure_rate), ("eq-A", 100, 8, Some(0.08)));
    assert_eq!((a.drop_rate, a.previous_failure_rate, a.affected_subscribers), (Some(0.2), Some(1.0 / 50.0), 3));
    // With no minimum, B's 50% failure rate comes first.
    let all = build(&inputs(), period(), 0, &ReportOptions { min_events: 0, ..options() });
    let regions: Vec<(&str, Option<f64>)> = all
        .worst
        .iter()
        .find(|w| w.dimension == "region")
        .unwrap()
        .rows
        .iter()
        .map(|r| (r.value.as_str(), r.failure_rate))
        .collect();
    assert_eq!(regions, vec![("R2", Some(0.5)), ("R1", Some(0.08))]);
    // Error codes: E2 3 + 5, E1 5 (previous period: E1 1).
    let codes: Vec<(&str, u64, u64)> =
        m.top_error_codes.iter().map(|c| (c.code.as_str(), c.count, c.previous_count)).collect();
    assert_eq!(codes, vec![("E2", 8, 0), ("E1", 5, 1)]);
    assert_eq!(m.top_error_codes[0].share, Some(8.0 / 13.0));
}

#[test]
fn alarms_mttr_and_interventions() {
    let m = model();
    let a = &m.alarms;
    assert_eq!((a.raised, a.cleared, a.open_at_end, a.suppressed), (2, 2, 1, 1));
    assert_eq!((a.previous_raised, a.previous_cleared), (2, 1));
    // X 30 min, Y 10 min: 20 min; the previous period: W, 40 min.
    assert_eq!((a.mttr_s, a.previous_mttr_s), (Some(1200.0), Some(2400.0)));
    let listed: Vec<(&str, Option<f64>, bool, u64)> =
        a.alarms.iter().map(|r| (r.alarm_id.as_str(), r.duration_s, r.open_at_end, r.peak_count)).collect();
    assert_eq!(listed, vec![("X", Some(1800.0), false, 30), ("Y", Some(600.0), false, 11), ("Z", None, true, 15)]);
    assert_eq!(a.alarms[2].intervention_id.as_deref(), Some("INT-1"));

    let interventions = m.interventions.as_ref().unwrap();
    let ids: Vec<&str> = interventions.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["INT-1", "INT-3"], "INT-2 is over before the period");
    assert_eq!(interventions[0].excluded_events, Some(7));
    assert_eq!(interventions[0].suppressed_alarms, vec!["Z".to_owned()]);
    assert_eq!(interventions[1].excluded_events, Some(0));
}

#[test]
fn a_period_without_indicators_is_a_report_saying_so() {
    let empty = build(&ReportInputs::default(), period(), 0, &options());
    assert!(!empty.has_indicators());
    assert_eq!(empty.current.events, 0);
    assert!(empty.notes[0].starts_with("no QoE indicators in the period day 2026-11-25"), "{:?}", empty.notes);
    assert!(empty.notes.iter().any(|n| n.contains("no reference data")));
    let report = render(&empty).unwrap();
    assert!(report.html.contains("no QoE indicators in the period"));
    assert!(report.html.contains("<svg"));
}

#[test]
fn every_format_renders_the_model() {
    let m = model();
    let report = render(&m).unwrap();
    assert_eq!(report.stem, "lux-report-day-2026-11-25");
    assert_eq!(report.period, period());
    assert_eq!(report.title, "Test report — day 2026-11-25");

    // JSON: the model itself.
    let back: ReportModel = serde_json::from_str(&report.json).unwrap();
    assert_eq!(back, m);

    // HTML: self-contained, escaped, with its charts and tables.
    let html = &report.html;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("eq-&lt;B&gt;") && !html.contains("eq-<B>"), "data is escaped");
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    assert_eq!(html.matches("<svg").count(), 4, "timeline, worst regions, error codes, durations");
    assert!(html.contains("<td>eq-A</td>"));
    assert!(html.contains("20 min 0 s"), "the MTTR");

    // CSV: sections whose rows name their table.
    let mut tables: std::collections::BTreeMap<String, Vec<Vec<String>>> = Default::default();
    for section in report.csv.split("\n\n") {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(section.as_bytes());
        let header = reader.headers().unwrap().clone();
        assert_eq!(&header[0], "table");
        for row in reader.records() {
            let row = row.unwrap();
            assert_eq!(row.len(), header.len());
            tables.entry(row[0].to_owned()).or_default().push(row.iter().map(str::to_owned).collect());
        }
    }
    let keys: Vec<&str> = tables.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "alarms",
            "durations",
            "error_codes",
            "headline",
            "interventions",
            "timeline",
            "worst_equipment",
            "worst_region",
            "worst_site"
        ]
    );
    let events = tables["headline"].iter().find(|r| r[1] == "events").unwrap();
    assert_eq!((events[4].as_str(), events[5].as_str(), events[6].as_str()), ("110", "50", "60"));
    assert_eq!(tables["error_codes"][0][1..3], ["E2".to_owned(), "8".to_owned()]);
    assert_eq!(tables["alarms"].len(), 3);
    assert_eq!(tables["timeline"].len(), 24);
}

#[test]
fn the_page_shows_the_first_rows_of_long_tables_and_the_other_formats_all() {
    let mut inputs = inputs();
    for i in 0..250 {
        inputs.alarms.push(alarm(&format!("A{i:03}"), AlarmState::Raised, "2026-11-25T12:00:00Z", 10, None));
    }
    let m = build(&inputs, period(), 0, &options());
    assert_eq!(m.alarms.alarms.len(), 253);
    let report = render(&m).unwrap();
    assert!(report.html.contains("The first 200 of 253 alarms; the CSV and JSON formats list them all."));
    assert_eq!(report.csv.lines().filter(|l| l.starts_with("alarms,")).count(), 253);
}
