//! The QoE engine on hand-built enriched events whose indicators are known: every count of
//! every cell compared exactly, events excluded by an intervention counted apart, late events,
//! and a restart from the committed state giving the records of an uninterrupted run.

mod common;

use common::*;
use lux_model::{EnrichedEvent, ErrorCodeCount, EventKind, QoeIndicator, SessionDurations};
use lux_qoe::{EventOutcome, QoeConfig, QoeEngine};
use std::collections::BTreeMap;

/// What a cell's indicator must hold (rates derived by the test from the counts).
#[derive(Default)]
struct Expected {
    events: u64,
    attempts: u64,
    setup: u64,
    auth: u64,
    stops: u64,
    drops: u64,
    short: u64,
    failures: u64,
    affected: u64,
    durations: Vec<u64>,
    codes: Vec<(&'static str, u64)>,
    excluded: u64,
}

fn expected(start: i64, dimension: &str, value: &str, e: Expected) -> QoeIndicator {
    let mut durations = SessionDurations::default();
    for &d in &e.durations {
        durations.add(d);
    }
    let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
    QoeIndicator {
        schema: "lux.qoe.v1".into(),
        window_start: start,
        window_end: start + MIN,
        dimension: dimension.into(),
        value: value.into(),
        events: e.events,
        attempts: e.attempts,
        setup_successes: e.setup,
        setup_success_rate: ratio(e.setup, e.attempts),
        auth_failures: e.auth,
        auth_failure_rate: ratio(e.auth, e.attempts),
        stops: e.stops,
        drops: e.drops,
        drop_rate: ratio(e.drops, e.stops),
        short_sessions: e.short,
        short_session_ratio: ratio(e.short, durations.count),
        failures: e.failures,
        affected_subscribers: e.affected,
        subscriber_sketch: String::new(),
        durations,
        top_error_codes: e.codes.iter().map(|(c, n)| ErrorCodeCount { code: (*c).into(), count: *n }).collect(),
        excluded_events: e.excluded,
    }
}

fn config() -> QoeConfig {
    QoeConfig { top_error_codes: 2, idle_timeout: std::time::Duration::from_secs(3600), ..QoeConfig::default() }
}

/// The indicators with their sketches checked (they decode to the affected count) and blanked.
fn without_sketches(indicators: Vec<QoeIndicator>) -> Vec<QoeIndicator> {
    indicators
        .into_iter()
        .map(|mut q| {
            let sketch = lux_qoe::hll::HyperLogLog::decode(&q.subscriber_sketch).expect("a valid sketch");
            assert_eq!(sketch.estimate(), q.affected_subscribers);
            q.subscriber_sketch.clear();
            q
        })
        .collect()
}

fn run(engine: &mut QoeEngine, events: &[(u32, EnrichedEvent)]) -> Vec<EventOutcome> {
    events.iter().map(|(p, e)| engine.on_event(*p, e, 0)).collect()
}

#[test]
fn indicators_of_a_known_input_are_exact() {
    let mut engine = QoeEngine::new(&config(), &[0, 1, 2]).unwrap();
    let outcomes = run(&mut engine, &input());
    assert_eq!(outcomes.iter().filter(|o| **o == EventOutcome::Excluded).count(), 2);
    assert_eq!(outcomes.iter().filter(|o| **o == EventOutcome::Counted).count(), 15);
    // Every partition's watermark is at minute 2 + 5 s: minutes 0 and 1 are closed, and the end
    // of the input closes nothing more (minute 2 is not over).
    let out = without_sketches(engine.advance(0));
    assert!(engine.finish_input().is_empty());
    let a0 = Expected {
        events: 7,
        attempts: 5,
        setup: 3,
        auth: 1,
        stops: 2,
        drops: 1,
        short: 1,
        failures: 3,
        affected: 3,
        durations: vec![30, 600],
        codes: vec![("DHCP-NOOFFER", 1), ("PPP-AUTHFAIL", 1)],
        ..Expected::default()
    };
    let b0 = Expected {
        events: 2,
        attempts: 1,
        setup: 1,
        stops: 1,
        drops: 1,
        short: 1,
        failures: 1,
        affected: 1,
        durations: vec![5],
        codes: vec![("RADIUS-TC-2", 1)],
        excluded: 2,
        ..Expected::default()
    };
    let s1 = || Expected {
        events: 9,
        attempts: 6,
        setup: 4,
        auth: 1,
        stops: 3,
        drops: 2,
        short: 2,
        failures: 4,
        affected: 4,
        durations: vec![30, 600, 5],
        codes: vec![("RADIUS-TC-2", 2), ("DHCP-NOOFFER", 1)],
        excluded: 2,
    };
    let c0 = Expected { events: 1, attempts: 1, auth: 1, failures: 1, ..Expected::default() };
    // C's reject carries no code: PPP-AUTHFAIL stays at 1, after DHCP-NOOFFER (ties by code).
    let idf0 = || Expected { events: 10, attempts: 7, auth: 2, failures: 5, ..s1() };
    let a1 = || Expected { events: 1, attempts: 1, setup: 1, ..Expected::default() };
    let c1 = || Expected {
        events: 1,
        stops: 1,
        drops: 1,
        affected: 1,
        durations: vec![100_000],
        codes: vec![("RADIUS-TC-6", 1)],
        ..Expected::default()
    };
    let idf1 = || Expected {
        events: 2,
        attempts: 1,
        setup: 1,
        stops: 1,
        drops: 1,
        affected: 1,
        durations: vec![100_000],
        codes: vec![("RADIUS-TC-6", 1)],
        ..Expected::default()
    };
    let m1 = T0 + MIN;
    let want = vec![
        expected(T0, "equipment", "A", a0),
        expected(T0, "equipment", "B", b0),
        expected(T0, "equipment", "C", c0),
        expected(T0, "site", "S1", s1()),
        expected(T0, "site", "S2", Expected { events: 1, attempts: 1, auth: 1, failures: 1, ..Expected::default() }),
        expected(T0, "region", "IDF", idf0()),
        expected(T0, "manufacturer", "Juniper", idf0()),
        expected(T0, "model", "MX480", idf0()),
        expected(m1, "equipment", "A", a1()),
        expected(m1, "equipment", "C", c1()),
        expected(m1, "site", "S1", a1()),
        expected(m1, "site", "S2", c1()),
        expected(m1, "region", "IDF", idf1()),
        expected(m1, "manufacturer", "Juniper", idf1()),
        expected(m1, "model", "MX480", idf1()),
    ];
    assert_eq!(out.len(), want.len());
    for (got, want) in out.iter().zip(&want) {
        assert_eq!(got, want, "{} {} at {}", want.dimension, want.value, want.window_start);
    }
    assert_eq!(out[0].setup_success_rate, Some(0.6));
    assert_eq!(out[3].drop_rate, Some(2.0 / 3.0));
    assert_eq!(out[3].durations.buckets, vec![1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(out[9].durations.buckets.last(), Some(&1), "above the last bound");
    let counters = engine.counters();
    assert_eq!((counters.counted, counters.excluded, counters.late, counters.indicators), (17, 2, 0, 15));
    // Minute 2: equipment A, B, C, sites S1, S2, and one value of each other dimension.
    assert_eq!(engine.open_cells(), 8);
}

#[test]
fn late_events_are_counted_not_added() {
    let a = equipment("A", "S1");
    let mut engine = QoeEngine::new(&config(), &[0]).unwrap();
    let start = |t: i64| ev(t, &a, EventKind::SessionStart).build();
    assert_eq!(engine.on_event(0, &start(T0 + 30_000), 0), EventOutcome::Counted);
    // Within the out-of-orderness (5 s) of the partition: counted.
    assert_eq!(engine.on_event(0, &start(T0 + 26_000), 0), EventOutcome::Counted);
    assert_eq!(engine.on_event(0, &start(T0 + 24_000), 0), EventOutcome::Late);
    assert_eq!(engine.on_event(0, &start(T0 + MIN + 10_000), 0), EventOutcome::Counted);
    let out = engine.advance(0);
    assert_eq!(out.len(), 5, "minute 0 closed by the watermark at minute 1 + 5 s");
    assert!(out.iter().all(|q| q.events == 2 && q.window_start == T0));
    // Another partition's event of the written minute is late, though its partition is new.
    assert_eq!(engine.on_event(1, &start(T0 + 50_000), 0), EventOutcome::Late);
    assert_eq!(engine.counters().late, 2);
}

/// Applies state changes to a store, as the log does with a commit.
fn apply(store: &mut BTreeMap<Vec<u8>, Vec<u8>>, changes: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
    for (key, value) in changes {
        match value {
            Some(v) => store.insert(key, v),
            None => store.remove(&key),
        };
    }
}

#[test]
fn a_restart_from_the_committed_state_gives_the_same_indicators() {
    let events = input();
    let mut whole = QoeEngine::new(&config(), &[0, 1, 2]).unwrap();
    run(&mut whole, &events);
    let expected = whole.finish_input();

    for cut in 1..events.len() {
        let mut store = BTreeMap::new();
        let mut out = Vec::new();
        let mut first = QoeEngine::new(&config(), &[0, 1, 2]).unwrap();
        run(&mut first, &events[..cut]);
        out.extend(first.advance(0));
        apply(&mut store, first.take_changes());
        // Whatever the engine held but did not hand over is lost with it.
        drop(first);
        let mut second = QoeEngine::new(&config(), &[0, 1, 2]).unwrap();
        second.restore(store.clone()).unwrap();
        run(&mut second, &events[cut..]);
        out.extend(second.finish_input());
        apply(&mut store, second.take_changes());
        assert_eq!(out, expected, "restarted after {cut} events");
        let written = |k: &&Vec<u8>| {
            k.starts_with(format!("cell/{T0}/").as_bytes()) || k.starts_with(format!("cell/{}/", T0 + MIN).as_bytes())
        };
        assert_eq!(store.keys().filter(written).count(), 0, "written cells are deleted");
        assert_eq!(store.keys().filter(|k| k.starts_with(b"cell/")).count(), 8, "minute 2's cells are kept");
    }
}

#[test]
fn bad_state_is_refused_with_its_key() {
    let mut engine = QoeEngine::new(&config(), &[0]).unwrap();
    let error = engine.restore(vec![(b"cell/1/site/S1".to_vec(), b"{}".to_vec())]).unwrap_err();
    assert!(error.contains("cell/1/site/S1"), "{error}");
    let error = engine.restore(vec![(b"what".to_vec(), b"{}".to_vec())]).unwrap_err();
    assert!(error.contains("unknown qoe state entry"), "{error}");
    assert_eq!(engine.open_cells(), 0);
}
