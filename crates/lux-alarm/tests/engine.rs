//! Behaviour of the alarm engine on hand-built enriched events: lifecycle, grouping, filters,
//! lateness, idleness, bounded groups, interleaving independence and restore.

use lux_alarm::{state_is_finished, AlarmConfig, AlarmEngine, EarlyFiring, EventOutcome, RuleConfig};
use lux_model::{
    Alarm, AlarmState, EnrichedEvent, EquipmentInfo, EquipmentKey, Event, EventKind, Format, MaintenanceInfo, Outcome,
    ReferenceInfo, ReferenceStatus,
};
use std::collections::BTreeMap;
use std::time::Duration;

const T0: i64 = 1_767_607_200_000; // 2026-01-05T10:00:00Z, a multiple of 10s
const WALL: i64 = 1_000_000;

fn event(time: i64, site: &str, region: &str, failure: bool) -> EnrichedEvent {
    EnrichedEvent {
        schema: lux_model::schema::ENRICHED.into(),
        event: Event {
            event_id: format!("e-{time}-{site}").into(),
            event_time: time,
            received_at: time,
            source: "syslog".into(),
            format: Format::Syslog,
            equipment_id: format!("bng-{site}").into(),
            equipment_key: EquipmentKey::Hostname,
            kind: if failure { EventKind::AuthReject } else { EventKind::SessionStart },
            outcome: if failure { Outcome::Failure } else { Outcome::Success },
            error_code: failure.then(|| "PPP-AUTHFAIL".into()),
            subscriber: None,
            message: None,
            attributes: Default::default(),
        },
        is_failure: failure,
        equipment: Some(std::sync::Arc::new(EquipmentInfo {
            equipment_id: format!("bng-{site}"),
            equipment_type: "bng".to_owned(),
            model: "MX960".to_owned(),
            manufacturer: "juniper".to_owned(),
            site: site.to_owned(),
            region: region.to_owned(),
            technology: "core".to_owned(),
        })),
        error: None,
        maintenance: None,
        reference: ReferenceInfo { status: ReferenceStatus::Ok, version: "v1".into() },
    }
}

fn fail(time: i64, site: &str) -> EnrichedEvent {
    event(time, site, "IDF", true)
}

fn ok(time: i64, site: &str) -> EnrichedEvent {
    event(time, site, "IDF", false)
}

/// One rule: failures per site, window 30s, slide 10s, threshold 10, clear 5; no lateness slack.
fn config() -> AlarmConfig {
    AlarmConfig {
        out_of_orderness: Duration::ZERO,
        allowed_lateness: Duration::ZERO,
        idle_timeout: Duration::from_secs(30),
        max_groups: 1000,
        threads: 0,
        routed_partitions: 12,
        rules: vec![RuleConfig {
            name: "site-failures".to_owned(),
            filter: BTreeMap::new(),
            group_by: vec!["site".to_owned()],
            window: Duration::from_secs(30),
            slide: Duration::from_secs(10),
            threshold: Some(10),
            early_firing: EarlyFiring::AnyWindow,
            threshold_ratio: None,
            clear_ratio: None,
            min_events: None,
            clear: Some(5),
            severity: "major".to_owned(),
            suppress_during_interventions: true,
        }],
    }
}

fn engine(cfg: &AlarmConfig) -> AlarmEngine {
    AlarmEngine::new(cfg, &[0]).expect("valid config")
}

/// `count` failures at `site` spread over `[start, start + 10s)` on partition 0.
fn burst(engine: &mut AlarmEngine, start: i64, site: &str, count: i64) {
    for i in 0..count {
        assert_eq!(engine.on_event(0, &fail(start + i * (10_000 / count.max(1)), site), WALL), EventOutcome::Counted);
    }
}

fn states(alarms: &[Alarm]) -> Vec<(AlarmState, u64, i64)> {
    alarms.iter().map(|a| (a.state, a.count, a.window_end - T0)).collect()
}

#[test]
fn threshold_crossing_raises_once_updates_and_clears_with_hysteresis() {
    let cfg = config();
    let mut e = engine(&cfg);
    // Pane [0,10s): 4 failures, pane [10s,20s): 6 failures, pane [20s,30s): 2 failures.
    burst(&mut e, T0, "PAR", 4);
    burst(&mut e, T0 + 10_000, "PAR", 6);
    burst(&mut e, T0 + 20_000, "PAR", 2);
    // Watermark to T0+30s: windows ending at 10s (4), 20s (10: raised), 30s (12: updated).
    e.on_event(0, &ok(T0 + 30_000, "PAR"), WALL);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Raised, 10, 20_000), (AlarmState::Updated, 12, 30_000)]);
    let raised = &alarms[0];
    assert_eq!(raised.rule, "site-failures");
    assert_eq!(raised.group_key, "site=PAR");
    assert_eq!(raised.group, BTreeMap::from([("site".to_owned(), "PAR".to_owned())]));
    assert_eq!(raised.severity, "major");
    assert_eq!(raised.threshold, 10);
    assert_eq!(raised.total, 10);
    assert_eq!(raised.window_start, T0 - 10_000);
    assert_eq!(raised.first_seen, T0);
    assert_eq!(raised.last_seen, T0 + 10_000 + 5 * 1666);
    assert_eq!(
        raised.alarm_id,
        lux_model::stable_id("lux.alarm.v1", &[b"site-failures", b"site=PAR", &(T0 - 10_000).to_be_bytes()])
    );
    assert!(alarms.iter().all(|a| a.alarm_id == raised.alarm_id));
    assert!(!raised.suppressed_by_intervention);
    assert_eq!(alarms[1].total, 12);
    assert_eq!(e.stats().active_alarms, 1);

    // Nothing new and the watermark does not move: nothing emitted.
    assert!(e.advance(WALL).is_empty());

    // Window ending at 40s: panes 10s..40s = 6 + 2 + 0 = 8 failures, one success more: still >= clear 5.
    e.on_event(0, &ok(T0 + 40_000, "PAR"), WALL);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Updated, 8, 40_000)]);
    assert_eq!(alarms[0].total, 9);
    // Window ending at 50s: 2 failures < clear 5: cleared; later windows emit nothing.
    e.on_event(0, &ok(T0 + 70_000, "PAR"), WALL);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Cleared, 2, 50_000)]);
    assert_eq!(alarms[0].alarm_id, raised.alarm_id);
    assert_eq!(alarms[0].first_seen, T0);
    assert_eq!(e.stats().active_alarms, 0);

    // A new burst raises a new alarm with a new id.
    burst(&mut e, T0 + 80_000, "PAR", 10);
    e.on_event(0, &ok(T0 + 90_000, "PAR"), WALL);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Raised, 10, 90_000)]);
    assert_ne!(alarms[0].alarm_id, raised.alarm_id);
}

#[test]
fn hysteresis_keeps_the_alarm_between_clear_and_threshold_and_unchanged_windows_emit_nothing() {
    let cfg = config();
    let mut e = engine(&cfg);
    burst(&mut e, T0, "PAR", 10); // raised on window ending 10s
    burst(&mut e, T0 + 30_000, "PAR", 6); // windows ending 40s..60s hold 6 (>= clear 5, < threshold)
    e.on_event(0, &ok(T0 + 80_000, "PAR"), WALL);
    let alarms = e.advance(WALL);
    assert_eq!(
        states(&alarms),
        vec![
            (AlarmState::Raised, 10, 10_000),
            // 20s and 30s: same 10 failures, same total: no record.
            (AlarmState::Updated, 6, 40_000),
            // 50s and 60s unchanged; 70s: empty window clears.
            (AlarmState::Cleared, 0, 70_000),
        ]
    );
    assert_eq!(alarms[2].last_seen, T0 + 30_000 + 5 * 1666);
}

/// A ratio rule: failures / events >= 0.5 over at least 10 events raises, under 0.2 clears.
fn ratio_config() -> AlarmConfig {
    let mut cfg = config();
    let rule = &mut cfg.rules[0];
    (rule.threshold, rule.clear) = (None, None);
    (rule.threshold_ratio, rule.clear_ratio, rule.min_events) = (Some(0.5), Some(0.2), Some(10));
    cfg
}

/// `failures` failures and `successes` successes at `site` in the pane starting at `start`.
fn mix(e: &mut AlarmEngine, start: i64, site: &str, failures: i64, successes: i64) {
    for i in 0..failures {
        assert_eq!(e.on_event(0, &fail(start + i, site), WALL), EventOutcome::Counted);
    }
    for i in 0..successes {
        assert_eq!(e.on_event(0, &ok(start + 5_000 + i, site), WALL), EventOutcome::Counted);
    }
}

#[test]
fn a_ratio_rule_needs_the_minimum_volume_and_clears_under_its_clear_ratio() {
    let cfg = ratio_config();
    let mut e = engine(&cfg);
    mix(&mut e, T0, "PAR", 4, 2); // window ending 10s: 4 / 6, over the ratio but under 10 events
    mix(&mut e, T0 + 10_000, "PAR", 3, 3); // 20s: 7 / 12 >= 0.5: raised
    mix(&mut e, T0 + 20_000, "PAR", 0, 20); // 30s: 7 / 32 = 0.22 >= 0.2: updated
    mix(&mut e, T0 + 30_000, "PAR", 1, 10); // 40s: 4 / 37 = 0.11 < 0.2: cleared
    mix(&mut e, T0 + 40_000, "LYO", 1, 0); // moves the watermark past 40s
    let alarms = e.advance(WALL);
    assert_eq!(
        states(&alarms),
        vec![(AlarmState::Raised, 7, 20_000), (AlarmState::Updated, 7, 30_000), (AlarmState::Cleared, 4, 40_000)]
    );
    let totals: Vec<u64> = alarms.iter().map(|a| a.total).collect();
    assert_eq!(totals, vec![12, 32, 37]);
    // The record's threshold is the failures the window needed: ceil(0.5 x total).
    let thresholds: Vec<u64> = alarms.iter().map(|a| a.threshold).collect();
    assert_eq!(thresholds, vec![6, 16, 19]);
    assert!(alarms.iter().all(|a| a.threshold_ratio == Some(lux_model::Ratio::from_f64(0.5))));
    assert!(alarms.iter().all(|a| a.min_events == Some(10)));
    let json = serde_json::to_value(&alarms[0]).unwrap();
    assert_eq!((json["threshold_ratio"].as_f64(), json["min_events"].as_u64()), (Some(0.5), Some(10)));

    // Under the minimum volume the ratio neither raises nor, once raised, clears: 9 failures
    // of 9 events do not raise; a raised alarm holds through a quiet window with a high ratio.
    let mut e = engine(&cfg);
    mix(&mut e, T0, "PAR", 9, 0); // 10s: 9 / 9, under 10 events: nothing
    mix(&mut e, T0 + 10_000, "PAR", 10, 0); // 20s: 19 / 19: raised; 40s: 10 / 10
    mix(&mut e, T0 + 40_000, "PAR", 1, 1); // 50s to 70s: 1 / 2, under 10 events, over 0.2: holds
    mix(&mut e, T0 + 70_000, "PAR", 0, 1); // 80s: 0 / 1: no failure: cleared
    mix(&mut e, T0 + 80_000, "LYO", 0, 1);
    let alarms = e.advance(WALL);
    assert_eq!(
        states(&alarms),
        vec![
            (AlarmState::Raised, 19, 20_000),
            (AlarmState::Updated, 10, 40_000),
            (AlarmState::Updated, 1, 50_000),
            (AlarmState::Cleared, 0, 80_000),
        ]
    );
}

#[test]
fn grouping_by_two_dimensions_keeps_separate_alarms() {
    let mut cfg = config();
    cfg.rules[0].group_by = vec!["region".to_owned(), "site".to_owned()];
    let mut e = engine(&cfg);
    for i in 0..10 {
        e.on_event(0, &event(T0 + i, "PAR", "IDF", true), WALL);
        e.on_event(0, &event(T0 + i, "LYO", "ARA", true), WALL);
        if i < 9 {
            e.on_event(0, &event(T0 + i, "PAR", "ARA", true), WALL); // same site, other region: 9 only
        }
    }
    e.on_event(0, &ok(T0 + 10_000, "PAR"), WALL);
    let alarms = e.advance(WALL);
    let keys: Vec<&str> = alarms.iter().map(|a| a.group_key.as_str()).collect();
    assert_eq!(keys, vec!["region=ARA,site=LYO", "region=IDF,site=PAR"]);
    assert_eq!(
        alarms[0].group,
        BTreeMap::from([("region".to_owned(), "ARA".to_owned()), ("site".to_owned(), "LYO".to_owned())])
    );
    assert!(alarms.iter().all(|a| a.state == AlarmState::Raised && a.count == 10));
    assert_eq!(e.stats().groups, 3);
}

#[test]
fn filter_selects_events_and_missing_group_dimension_is_ungrouped() {
    let mut cfg = config();
    cfg.rules[0].filter = BTreeMap::from([("region".to_owned(), vec!["IDF".to_owned()])]);
    cfg.rules[0].group_by = vec!["error_code".to_owned()];
    let mut e = engine(&cfg);
    assert_eq!(e.on_event(0, &event(T0, "LYO", "ARA", true), WALL), EventOutcome::Filtered);
    // A success has no error code: accepted by the filter but ungrouped.
    assert_eq!(e.on_event(0, &event(T0, "PAR", "IDF", false), WALL), EventOutcome::Ungrouped);
    let mut unknown = fail(T0, "PAR");
    unknown.equipment = None; // no region: the filter cannot accept it
    assert_eq!(e.on_event(0, &unknown, WALL), EventOutcome::Filtered);
    for i in 0..10 {
        assert_eq!(e.on_event(0, &event(T0 + i, "PAR", "IDF", true), WALL), EventOutcome::Counted);
    }
    e.on_event(0, &ok(T0 + 10_000, "PAR"), WALL);
    let alarms = e.advance(WALL);
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].group_key, "error_code=PPP-AUTHFAIL");
    assert_eq!(alarms[0].total, 10);
    let rule = &e.rule_stats()[0];
    assert_eq!((rule.counters.counted, rule.counters.ungrouped, rule.counters.late), (10, 2, 0));
}

#[test]
fn late_events_are_counted_not_added() {
    let mut cfg = config();
    cfg.out_of_orderness = Duration::from_secs(5);
    let mut e = engine(&cfg);
    assert_eq!(e.on_event(0, &fail(T0 + 20_000, "PAR"), WALL), EventOutcome::Counted);
    // Partition watermark is now T0+15s: T0+16s is within the slack, T0+14s is late.
    assert_eq!(e.on_event(0, &fail(T0 + 16_000, "PAR"), WALL), EventOutcome::Counted);
    assert_eq!(e.on_event(0, &fail(T0 + 14_999, "PAR"), WALL), EventOutcome::Late);
    assert_eq!(e.on_event(0, &fail(T0 + 15_000, "PAR"), WALL), EventOutcome::Counted);
    // A late event no rule accepts is just filtered.
    let mut cfg2 = cfg.clone();
    cfg2.rules[0].filter = BTreeMap::from([("site".to_owned(), vec!["PAR".to_owned()])]);
    let mut e2 = engine(&cfg2);
    e2.on_event(0, &fail(T0 + 20_000, "PAR"), WALL);
    assert_eq!(e2.on_event(0, &fail(T0, "LYO"), WALL), EventOutcome::Filtered);
    assert_eq!(e2.on_event(0, &fail(T0, "PAR"), WALL), EventOutcome::Late);

    let stats = e.stats();
    assert_eq!(stats.late_events, 1);
    assert_eq!(e.rule_stats()[0].counters.late, 1);
    assert_eq!(e.rule_stats()[0].counters.counted, 3);
    // The late failure is in no window: with threshold 3 the window ending at T0+30s raises with
    // exactly the 3 counted failures (4 had the late one been added).
    let mut cfg3 = cfg.clone();
    cfg3.rules[0].threshold = Some(3);
    cfg3.rules[0].clear = Some(1);
    let mut e3 = engine(&cfg3);
    for t in [20_000, 16_000, 14_999, 15_000, 35_000] {
        e3.on_event(0, &fail(T0 + t, "PAR"), WALL);
    }
    let alarms = e3.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Raised, 3, 30_000)]);
    assert_eq!((alarms[0].total, alarms[0].first_seen, alarms[0].last_seen), (3, T0 + 15_000, T0 + 20_000));
    assert_eq!(e3.stats().late_events, 1);
}

#[test]
fn engine_watermark_is_the_minimum_over_active_partitions_and_idle_ones_release_it() {
    let cfg = config();
    let mut e = AlarmEngine::new(&cfg, &[0, 1]).unwrap();
    burst(&mut e, T0, "PAR", 10);
    e.on_event(0, &ok(T0 + 40_000, "PAR"), WALL);
    // Partition 1 never sent anything and is not idle yet: no watermark, no window closed; the
    // 10 failures raised at once all the same (early firing needs no watermark).
    assert_eq!(states(&e.advance(WALL + 29_999)), vec![(AlarmState::Raised, 10, 10_000)]);
    assert_eq!(e.stats().watermark_ms, None);
    // Partition 1 sends an old event: the watermark is its T0+5s. Nothing closes.
    e.on_event(1, &ok(T0 + 5_000, "LYO"), WALL + 29_999);
    assert!(e.advance(WALL + 30_000).is_empty());
    assert_eq!(e.stats().watermark_ms, Some(T0 + 5_000));
    // 30s of wall time without a record from partition 1: it no longer holds the watermark back.
    let alarms = e.advance(WALL + 29_999 + 30_000);
    assert_eq!(e.stats().watermark_ms, Some(T0 + 40_000));
    assert_eq!(states(&alarms), vec![(AlarmState::Cleared, 0, 40_000)]);
    // Partition 1 wakes up behind the engine watermark: its old events are late.
    assert_eq!(e.on_event(1, &fail(T0 + 20_000, "LYO"), WALL + 60_000), EventOutcome::Late);
    // ... and it holds the watermark again (which never goes back).
    e.on_event(0, &ok(T0 + 100_000, "PAR"), WALL + 60_000);
    assert!(e.advance(WALL + 60_000).is_empty());
    assert_eq!(e.stats().watermark_ms, Some(T0 + 40_000));
}

#[test]
fn a_partition_that_never_sends_is_idle_after_the_timeout_since_start() {
    let cfg = config();
    let mut e = AlarmEngine::new(&cfg, &[0, 1, 2]).unwrap();
    burst(&mut e, T0, "PAR", 10);
    e.on_event(0, &ok(T0 + 10_000, "PAR"), WALL);
    // Raised at once; partitions 1 and 2 hold the watermark back.
    assert_eq!(states(&e.advance(WALL + 10_000)), vec![(AlarmState::Raised, 10, 10_000)]);
    assert_eq!(e.stats().watermark_ms, None);
    // Silent for the idle timeout since the start: the watermark is partition 0's, the raise
    // window closes with the counts it was raised with (no update).
    assert!(e.advance(WALL + 30_000).is_empty());
    assert_eq!(e.stats().watermark_ms, Some(T0 + 10_000));
}

#[test]
fn when_every_partition_is_idle_the_last_windows_are_evaluated() {
    let cfg = config();
    let mut e = AlarmEngine::new(&cfg, &[0, 1]).unwrap();
    burst(&mut e, T0, "PAR", 10);
    e.on_event(1, &ok(T0 + 2_000, "LYO"), WALL);
    // Watermark T0+2s: the open window ending at T0+10s reaches the threshold (early firing).
    assert_eq!(states(&e.advance(WALL + 1_000)), vec![(AlarmState::Raised, 10, 10_000)]);
    let alarms = e.advance(WALL + 40_000);
    assert_eq!(e.stats().watermark_ms, Some(T0 + 9_000)); // the highest partition watermark
    assert!(alarms.is_empty(), "no window ends before T0+10s");
}

#[test]
fn the_end_of_a_bounded_input_evaluates_the_last_windows_like_idleness_without_the_wall_clock() {
    let cfg = config();
    let feed = |e: &mut AlarmEngine| {
        burst(e, T0, "PAR", 10);
        burst(e, T0 + 10_000, "PAR", 10);
        e.on_event(1, &ok(T0 + 25_000, "LYO"), WALL);
        e.advance(WALL)
    };
    let mut idle = AlarmEngine::new(&cfg, &[0, 1]).unwrap();
    let mut bounded = AlarmEngine::new(&cfg, &[0, 1]).unwrap();
    let mut first = feed(&mut idle);
    first.extend(idle.advance(WALL + 40_000));
    let mut second = feed(&mut bounded);
    let mut store = Store::new();
    apply(&mut store, bounded.take_changes());
    let committed: Vec<(Vec<u8>, Vec<u8>)> = store.clone().into_iter().collect();
    assert!(!state_is_finished(&committed, cfg.out_of_orderness), "windows up to T0+25s are still to evaluate");
    second.extend(bounded.finish_input());
    apply(&mut store, bounded.take_changes());
    let committed: Vec<(Vec<u8>, Vec<u8>)> = store.into_iter().collect();
    assert!(state_is_finished(&committed, cfg.out_of_orderness));
    assert!(state_is_finished(&[], cfg.out_of_orderness), "no event, nothing to evaluate");
    assert_eq!(bounded.stats().watermark_ms, Some(T0 + 25_000)); // the highest partition watermark
    assert_eq!(states(&second), vec![(AlarmState::Raised, 10, 10_000), (AlarmState::Updated, 20, 20_000)]);
    assert_eq!(second, first);
    assert!(bounded.finish_input().is_empty(), "finishing again changes nothing");
}

#[test]
fn groups_are_bounded_and_overflow_is_counted() {
    let mut cfg = config();
    cfg.max_groups = 2;
    let mut e = engine(&cfg);
    assert_eq!(e.on_event(0, &fail(T0, "A"), WALL), EventOutcome::Counted);
    assert_eq!(e.on_event(0, &fail(T0, "B"), WALL), EventOutcome::Counted);
    assert_eq!(e.on_event(0, &fail(T0, "C"), WALL), EventOutcome::Overflow);
    assert_eq!(e.on_event(0, &fail(T0, "A"), WALL), EventOutcome::Counted);
    assert_eq!(e.on_event(0, &fail(T0 + 1, "C"), WALL), EventOutcome::Overflow);
    let stats = e.stats();
    assert_eq!((stats.groups, stats.overflow_events), (2, 2));
    // Once the windows of A and B are gone, their groups are dropped and C fits.
    e.on_event(0, &ok(T0 + 50_000, "Z"), WALL); // Z overflows too
    assert_eq!(e.stats().overflow_events, 3);
    e.advance(WALL);
    assert_eq!(e.stats().groups, 0);
    assert_eq!(e.on_event(0, &fail(T0 + 50_000, "C"), WALL), EventOutcome::Counted);
    assert_eq!(e.stats().groups, 1);
}

#[test]
fn suppression_follows_the_latest_failure() {
    let cfg = config();
    let mut e = engine(&cfg);
    let maintenance = MaintenanceInfo {
        intervention_id: "INT-1".to_owned(),
        kind: "planned".to_owned(),
        scope: "site".to_owned(),
        suppress_alarms: true,
        exclude_from_kpi: true,
    };
    for i in 0..10 {
        let mut ev = fail(T0 + i, "PAR");
        if i >= 5 {
            ev.maintenance = Some(std::sync::Arc::new(maintenance.clone()));
        }
        e.on_event(0, &ev, WALL);
    }
    // A later success in maintenance does not matter; a later failure outside maintenance does.
    e.on_event(0, &fail(T0 + 10_500, "PAR"), WALL);
    e.on_event(0, &ok(T0 + 20_000, "PAR"), WALL);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Raised, 10, 10_000), (AlarmState::Updated, 11, 20_000)]);
    assert!(alarms[0].suppressed_by_intervention);
    assert_eq!(alarms[0].intervention_id.as_deref(), Some("INT-1"), "the suppressing intervention is named");
    assert!(!alarms[1].suppressed_by_intervention);
    assert_eq!(alarms[1].intervention_id, None);

    // The same with the rule not suppressing: never flagged.
    let mut cfg = config();
    cfg.rules[0].suppress_during_interventions = false;
    let mut e = engine(&cfg);
    for i in 0..10 {
        let mut ev = fail(T0 + i, "PAR");
        ev.maintenance = Some(std::sync::Arc::new(maintenance.clone()));
        e.on_event(0, &ev, WALL);
    }
    e.on_event(0, &ok(T0 + 10_000, "PAR"), WALL);
    let alarms = e.advance(WALL);
    assert!(!alarms[0].suppressed_by_intervention);
    assert_eq!(alarms[0].intervention_id, None);
}

#[test]
fn window_snapshot_gives_each_groups_current_window_under_the_bound() {
    let cfg = config();
    let mut e = engine(&cfg);
    // In event-time order (no lateness slack): PAR 12 failures and LYO 3 in the first slide,
    // LYO 4 more and a NCE failure and success in the second, a PAR success in the third.
    let mut events: Vec<EnrichedEvent> = (0..12).map(|i| fail(T0 + i * 800, "PAR")).collect();
    events.extend((0..3).map(|i| fail(T0 + i * 3_000, "LYO")));
    events.extend((0..4).map(|i| fail(T0 + 10_000 + i * 2_000, "LYO")));
    events.extend([fail(T0 + 10_000, "NCE"), ok(T0 + 10_500, "NCE"), ok(T0 + 20_000, "PAR")]);
    events.sort_by_key(|ev| ev.event.event_time);
    for ev in &events {
        assert_eq!(e.on_event(0, ev, WALL), EventOutcome::Counted);
    }
    // Watermark T0 + 20s: the current window of each group is [T0 - 10s, T0 + 20s).
    e.advance(WALL);
    let snapshot = e.window_snapshot(2);
    assert_eq!(snapshot.watermark_ms, Some(T0 + 20_000));
    let rule = &snapshot.rules[0];
    let listed: Vec<(&str, u64, u64, bool)> =
        rule.groups.iter().map(|g| (g.group_key.as_str(), g.failures, g.events, g.alarm_active)).collect();
    assert_eq!(listed, [("site=PAR", 12, 12, true), ("site=LYO", 7, 7, false)], "most failures first");
    assert_eq!((rule.omitted, rule.tracked_groups, rule.active_alarms), (1, 3, 1));
    assert_eq!(rule.counters.counted, 22);
}

#[test]
fn several_rules_sort_by_window_end_then_rule_then_group() {
    let mut cfg = config();
    let mut fast = cfg.rules[0].clone();
    fast.name = "a-fast".to_owned();
    fast.window = Duration::from_secs(5);
    fast.slide = Duration::from_secs(5);
    fast.threshold = Some(3);
    fast.clear = None; // threshold / 2 = 1
    cfg.rules.push(fast);
    let mut e = engine(&cfg);
    for i in 0..10 {
        for site in ["P2", "P1"] {
            e.on_event(0, &fail(T0 + i * 100, site), WALL);
        }
    }
    e.on_event(0, &ok(T0 + 10_000, "P1"), WALL);
    let alarms = e.advance(WALL);
    let got: Vec<(i64, &str, &str, AlarmState)> =
        alarms.iter().map(|a| (a.window_end - T0, a.rule.as_str(), a.group_key.as_str(), a.state)).collect();
    assert_eq!(
        got,
        vec![
            // Raised early (at 3 failures), then the window's final counts.
            (5_000, "a-fast", "site=P1", AlarmState::Raised),
            (5_000, "a-fast", "site=P1", AlarmState::Updated),
            (5_000, "a-fast", "site=P2", AlarmState::Raised),
            (5_000, "a-fast", "site=P2", AlarmState::Updated),
            (10_000, "a-fast", "site=P1", AlarmState::Cleared),
            (10_000, "a-fast", "site=P2", AlarmState::Cleared),
            (10_000, "site-failures", "site=P1", AlarmState::Raised),
            (10_000, "site-failures", "site=P2", AlarmState::Raised),
        ]
    );
}

/// Per-partition sequences with disorder, lateness and several sites.
fn partition_sequences() -> Vec<(u32, Vec<EnrichedEvent>)> {
    let mut seqs = Vec::new();
    for p in 0..3u32 {
        let mut events = Vec::new();
        let mut state = 0x9e37_79b9_u64 + u64::from(p);
        for i in 0..600i64 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let jitter = ((state >> 33) % 9_000) as i64; // up to 9s back: some late at 5s slack
            let time = T0 + i * 300 - jitter;
            let site = ["PAR", "LYO", "MRS"][((state >> 20) % 3) as usize];
            // A failure storm, then a quiet period in which the alarms clear.
            let failure = if i < 400 {
                (state >> 40).checked_rem(4) != Some(0)
            } else {
                (state >> 40).checked_rem(10) == Some(0)
            };
            events.push(event(time, site, "IDF", failure));
        }
        seqs.push((p, events));
    }
    seqs
}

fn interleaving_config() -> AlarmConfig {
    let mut cfg = config();
    cfg.out_of_orderness = Duration::from_secs(5);
    cfg.rules[0].threshold = Some(60);
    cfg.rules[0].clear = Some(40);
    let mut per_region = cfg.rules[0].clone();
    per_region.name = "region-failures".to_owned();
    per_region.group_by = vec!["region".to_owned()];
    per_region.window = Duration::from_secs(20);
    per_region.threshold = Some(120);
    per_region.clear = None;
    cfg.rules.push(per_region);
    cfg
}

/// Feeds the sequences in the order `order` picks partitions, calling `advance` every `every`
/// events; then lets everything go idle. Wall time never reaches the idle timeout before the end.
type Store = BTreeMap<Vec<u8>, Vec<u8>>;

fn apply(store: &mut Store, changes: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
    for (k, v) in changes {
        match v {
            Some(v) => store.insert(k, v),
            None => store.remove(&k),
        };
    }
}

fn run(
    cfg: &AlarmConfig,
    seqs: &[(u32, Vec<EnrichedEvent>)],
    order: &[usize],
    every: usize,
) -> (Vec<Alarm>, u64, Store) {
    let mut e = AlarmEngine::new(cfg, &[0, 1, 2]).unwrap();
    let mut pos = vec![0usize; seqs.len()];
    let mut alarms = Vec::new();
    for (n, &which) in order.iter().enumerate() {
        let (p, events) = &seqs[which];
        e.on_event(*p, &events[pos[which]], WALL);
        pos[which] += 1;
        if n % every == 0 {
            alarms.extend(e.advance(WALL));
        }
    }
    alarms.extend(e.advance(WALL + 1_000_000));
    let mut store = Store::new();
    apply(&mut store, e.take_changes());
    (alarms, e.stats().late_events, store)
}

/// The alarm records as they do not depend on arrival order: sorted by (window end, rule, group),
/// each group's in the order they were made, and a `raised` record made on an open window
/// (early firing: with the counts so far) merged with the `updated` record of the same window
/// that gave its final counts.
fn canonical(mut alarms: Vec<Alarm>) -> Vec<Alarm> {
    alarms.sort_by(|a, b| (a.window_end, &a.rule, &a.group_key).cmp(&(b.window_end, &b.rule, &b.group_key)));
    let mut out: Vec<Alarm> = Vec::with_capacity(alarms.len());
    for alarm in alarms {
        if let Some(last) = out.last_mut() {
            let same_window = last.alarm_id == alarm.alarm_id && last.window_end == alarm.window_end;
            if same_window && last.state == AlarmState::Raised && alarm.state == AlarmState::Updated {
                *last = Alarm { state: AlarmState::Raised, ..alarm };
                continue;
            }
        }
        out.push(alarm);
    }
    out
}

#[test]
fn alarms_do_not_depend_on_how_partitions_interleave() {
    let cfg = interleaving_config();
    let seqs = partition_sequences();
    let sequential: Vec<usize> = (0..3).flat_map(|p| std::iter::repeat_n(p, 600)).collect();
    let round_robin: Vec<usize> = (0..600).flat_map(|_| 0..3).collect();
    let mut state = 42u64;
    let mut left = [600usize; 3];
    let mut random = Vec::new();
    while left.iter().any(|&l| l > 0) {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        let p = ((state >> 33) % 3) as usize;
        if left[p] > 0 {
            left[p] -= 1;
            random.push(p);
        }
    }
    let (reference, late, _) = run(&cfg, &seqs, &round_robin, 1);
    let reference = canonical(reference);
    assert!(reference.iter().any(|a| a.state == AlarmState::Raised), "the test data must raise alarms");
    assert!(reference.iter().any(|a| a.state == AlarmState::Cleared));
    assert!(reference.iter().any(|a| a.rule == "region-failures"));
    assert!(late > 0, "the test data must have late events");
    assert!(reference.len() >= 20, "only {} alarm records", reference.len());
    for (order, every) in [(&sequential, 1), (&sequential, 97), (&random, 1), (&random, 13), (&round_robin, 500)] {
        let (alarms, late_here, _) = run(&cfg, &seqs, order, every);
        assert_eq!(late_here, late);
        assert_eq!(canonical(alarms), reference);
    }
}

#[test]
fn restored_engine_continues_like_an_uninterrupted_one() {
    let cfg = interleaving_config();
    let seqs = partition_sequences();
    let order: Vec<usize> = (0..600).flat_map(|_| 0..3).collect();
    let (reference, _, reference_store) = run(&cfg, &seqs, &order, 7);
    assert!(reference.iter().any(|a| a.state == AlarmState::Cleared));

    let mut store = Store::new();
    let mut e = AlarmEngine::new(&cfg, &[0, 1, 2]).unwrap();
    let mut pos = [0usize; 3];
    let mut alarms = Vec::new();
    let mut before_restart = 0;
    for (n, &which) in order.iter().enumerate() {
        if n == order.len() / 2 {
            // Crash: a new engine from the persisted state only.
            apply(&mut store, e.take_changes());
            let mut fresh = AlarmEngine::new(&cfg, &[0, 1, 2]).unwrap();
            fresh.restore(store.clone()).unwrap();
            assert_eq!(fresh.stats(), e.stats());
            assert!(fresh.take_changes().is_empty());
            e = fresh;
            before_restart = alarms.len();
        }
        let (p, events) = &seqs[which];
        e.on_event(*p, &events[pos[which]], WALL);
        pos[which] += 1;
        if n % 7 == 0 {
            alarms.extend(e.advance(WALL));
            if n % 3 == 0 {
                apply(&mut store, e.take_changes());
            }
        }
    }
    alarms.extend(e.advance(WALL + 1_000_000));
    assert!(before_restart > 0 && before_restart < alarms.len(), "alarms on both sides of the restart");
    assert_eq!(alarms, reference);
    // The persisted state is the same as the uninterrupted engine's.
    apply(&mut store, e.take_changes());
    assert_eq!(store, reference_store);
    assert!(store.len() > 1);
}

#[test]
fn restore_rejects_bad_entries_and_drops_groups_of_removed_rules() {
    let cfg = config();
    let mut e = engine(&cfg);
    burst(&mut e, T0, "PAR", 3);
    let changes: Vec<(Vec<u8>, Vec<u8>)> = e.take_changes().into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
    assert_eq!(changes.len(), 3, "the group, its pane and meta");

    let mut fresh = engine(&cfg);
    let err = fresh.restore(vec![(b"group/site-failures/site=PAR".to_vec(), b"{not json".to_vec())]).unwrap_err();
    assert!(err.contains("group/site-failures/site=PAR"), "{err}");
    let err = fresh.restore(vec![(b"other".to_vec(), b"{}".to_vec())]).unwrap_err();
    assert!(err.contains("unknown alarm state entry"), "{err}");
    let mismatched: Vec<(Vec<u8>, Vec<u8>)> = changes
        .iter()
        .map(|(k, v)| {
            if k.starts_with(b"group/") {
                (b"group/site-failures/site=LYO".to_vec(), v.clone())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    assert!(fresh.restore(mismatched).unwrap_err().contains("disagree"));
    assert_eq!(fresh.stats().groups, 0, "a failed restore leaves the engine empty");

    let mut renamed = cfg.clone();
    renamed.rules[0].name = "other-rule".to_owned();
    let mut other = engine(&renamed);
    other.restore(changes.clone()).unwrap();
    assert_eq!(other.stats().groups, 0);
    let deletions = other.take_changes();
    assert_eq!(
        deletions,
        vec![(b"group/site-failures/site=PAR".to_vec(), None), (pane_key("site=PAR", T0 / 10_000), None)]
    );

    fresh.restore(changes).unwrap();
    assert_eq!(fresh.stats().groups, 1);
}

#[test]
fn take_changes_reports_each_changed_entry_once() {
    let cfg = config();
    let mut e = engine(&cfg);
    assert!(e.take_changes().is_empty());
    for i in 0..5 {
        e.on_event(0, &fail(T0 + i, "PAR"), WALL);
        e.on_event(0, &fail(T0 + i, "LYO"), WALL);
    }
    // In no particular order: sorted here.
    let sorted = |mut changes: Vec<(Vec<u8>, Option<Vec<u8>>)>| {
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        changes
    };
    let keys: Vec<Vec<u8>> = sorted(e.take_changes()).into_iter().map(|(k, _)| k).collect();
    let pane = T0 / 10_000;
    assert_eq!(
        keys,
        vec![
            b"group/site-failures/site=LYO".to_vec(),
            b"group/site-failures/site=PAR".to_vec(),
            b"meta".to_vec(),
            pane_key("site=LYO", pane),
            pane_key("site=PAR", pane),
        ]
    );
    assert!(e.take_changes().is_empty());
    // One more event: its pane only (the group's own entry is unchanged).
    e.on_event(0, &fail(T0 + 9_000, "PAR"), WALL);
    let keys: Vec<Vec<u8>> = sorted(e.take_changes()).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![b"meta".to_vec(), pane_key("site=PAR", pane)]);
    e.on_event(0, &ok(T0 + 60_000, "NEW"), WALL);
    e.advance(WALL);
    let changes = sorted(e.take_changes());
    let summary: Vec<(Vec<u8>, bool)> = changes.into_iter().map(|(k, v)| (k, v.is_some())).collect();
    assert_eq!(
        summary,
        vec![
            (b"group/site-failures/site=LYO".to_vec(), false),
            (b"group/site-failures/site=NEW".to_vec(), true),
            (b"group/site-failures/site=PAR".to_vec(), false),
            (b"meta".to_vec(), true),
            (pane_key("site=LYO", pane), false),
            (pane_key("site=NEW", pane + 6), true),
            (pane_key("site=PAR", pane), false),
        ]
    );
    // A pane written, then dropped from the windows, in one commit: its deletion only, once.
    e.on_event(0, &fail(T0 + 60_500, "NEW"), WALL);
    e.on_event(0, &ok(T0 + 200_000, "NEW"), WALL);
    e.advance(WALL);
    let changes = sorted(e.take_changes());
    let dropped: Vec<bool> =
        changes.iter().filter(|(k, _)| *k == pane_key("site=NEW", pane + 6)).map(|(_, v)| v.is_some()).collect();
    assert_eq!(dropped, vec![false], "{changes:?}");
    assert_eq!(changes.iter().filter(|(k, _)| *k == pane_key("site=NEW", pane + 20)).count(), 1);
}

/// The state key of pane `index` of a group of rule `site-failures`.
fn pane_key(group_key: &str, index: i64) -> Vec<u8> {
    let mut key = format!("pane/site-failures/{group_key}/").into_bytes();
    key.extend_from_slice(&((index as u64) ^ (1 << 63)).to_be_bytes());
    key
}

#[test]
fn extreme_event_times_do_not_panic() {
    let cfg = config();
    let mut e = AlarmEngine::new(&cfg, &[0, 1]).unwrap();
    for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
        e.on_event(0, &fail(t, "X"), WALL);
        e.on_event(1, &fail(t, "X"), WALL);
        e.advance(WALL);
    }
    e.advance(WALL + 1_000_000);
    let changes: Vec<(Vec<u8>, Vec<u8>)> = e.take_changes().into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
    let mut fresh = AlarmEngine::new(&cfg, &[0, 1]).unwrap();
    fresh.restore(changes).unwrap();
}

/// The two halves of the alarm stage (router, then one engine per partition of the routed
/// topic, fed by watermark markers) across `routed` partitions: the same as `run`, but routed.
/// Markers are sent every `every` events, as the route stage sends them after each batch.
fn run_routed(
    cfg: &AlarmConfig,
    seqs: &[(u32, Vec<EnrichedEvent>)],
    order: &[usize],
    every: usize,
    routed: u32,
) -> (Vec<Alarm>, u64) {
    use lux_alarm::route::{RouteRecord, Router};
    let mut router = Router::new(cfg).unwrap();
    let mut engines: Vec<AlarmEngine> =
        (0..routed).map(|r| AlarmEngine::new(cfg, &[0, 1, 2]).unwrap().for_routed_partition(r)).collect();
    let mut queues: Vec<Vec<RouteRecord>> = vec![Vec::new(); routed as usize];
    let mut pos = vec![0usize; seqs.len()];
    let mut alarms = Vec::new();
    let mut active = std::collections::BTreeSet::new();
    let mut rule_events = Vec::new();
    let deliver = |router: &Router,
                   active: &mut std::collections::BTreeSet<u32>,
                   queues: &mut Vec<Vec<RouteRecord>>,
                   engines: &mut Vec<AlarmEngine>,
                   alarms: &mut Vec<Alarm>,
                   wall: i64| {
        for upstream in std::mem::take(active) {
            let max_event_time = router.clock(upstream).unwrap();
            for queue in queues.iter_mut() {
                queue.push(RouteRecord::Watermark { upstream, max_event_time });
            }
        }
        for (queue, engine) in queues.iter_mut().zip(engines.iter_mut()) {
            for record in queue.drain(..) {
                match record {
                    RouteRecord::Event { upstream, event, .. } => {
                        engine.on_rule_event(upstream, &event, WALL);
                    }
                    RouteRecord::Watermark { upstream, max_event_time } => {
                        engine.on_watermark(upstream, max_event_time, WALL)
                    }
                }
            }
            alarms.extend(engine.advance(wall));
        }
    };
    for (n, &which) in order.iter().enumerate() {
        let (p, events) = &seqs[which];
        rule_events.clear();
        router.route(*p, &events[pos[which]], &mut rule_events);
        active.insert(*p);
        for event in rule_events.drain(..) {
            let r = lux_log::partition_for_key(&lux_alarm::alarm_key(&event.rule, &event.group_key), routed);
            queues[r as usize].push(RouteRecord::Event { upstream: *p, offset: None, event });
        }
        pos[which] += 1;
        if n % every == 0 {
            deliver(&router, &mut active, &mut queues, &mut engines, &mut alarms, WALL);
        }
    }
    deliver(&router, &mut active, &mut queues, &mut engines, &mut alarms, WALL);
    deliver(&router, &mut active, &mut queues, &mut engines, &mut alarms, WALL + 1_000_000);
    let late = router.late_events() + engines.iter().map(|e| e.stats().late_events).sum::<u64>();
    (alarms, late)
}

/// Routing events to the partition of their group, with watermarks carried by markers, gives
/// the alarms of one engine reading every partition, whatever the routed partition count, the
/// interleaving of the enriched partitions and the batch sizes.
#[test]
fn routed_engines_raise_the_alarms_of_a_single_engine() {
    let cfg = interleaving_config();
    let seqs = partition_sequences();
    let round_robin: Vec<usize> = (0..600).flat_map(|_| 0..3).collect();
    let sequential: Vec<usize> = (0..3).flat_map(|p| std::iter::repeat_n(p, 600)).collect();
    let (reference, late, _) = run(&cfg, &seqs, &round_robin, 1);
    assert!(reference.iter().any(|a| a.state == AlarmState::Cleared));
    let reference = canonical(reference);
    for (order, every, routed) in
        [(&round_robin, 1, 1), (&round_robin, 7, 3), (&sequential, 97, 6), (&round_robin, 500, 4)]
    {
        let (alarms, late_here) = run_routed(&cfg, &seqs, order, every, routed);
        assert_eq!(late_here, late, "late events with {routed} routed partitions, every {every}");
        assert_eq!(canonical(alarms), reference, "alarms with {routed} routed partitions, every {every}");
    }
}

/// One site's failures from two partitions: one in [10s, 20s) on partition 0, two in [20s, 30s)
/// and one in [30s, 40s) on partition 1. With a 20 s window (threshold 3) the windows ending at
/// 30 s and at 40 s both reach the threshold; the one ending at 30 s does so only once partition
/// 0's failure is in. Returns the records of partition `first` read first, then the other.
fn two_partition_raise(early_firing: EarlyFiring, first: u32) -> Vec<Alarm> {
    let mut cfg = config();
    cfg.rules[0].window = Duration::from_secs(20);
    cfg.rules[0].threshold = Some(3);
    cfg.rules[0].clear = Some(1);
    cfg.rules[0].early_firing = early_firing;
    let mut e = AlarmEngine::new(&cfg, &[0, 1]).unwrap();
    let by_partition = [
        vec![fail(T0 + 15_000, "PAR")],
        vec![fail(T0 + 21_000, "PAR"), fail(T0 + 22_000, "PAR"), fail(T0 + 31_000, "PAR")],
    ];
    let mut alarms = Vec::new();
    for p in [first, 1 - first] {
        for event in &by_partition[p as usize] {
            assert_eq!(e.on_event(p, event, WALL), EventOutcome::Counted);
            alarms.extend(e.advance(WALL));
        }
    }
    alarms.extend(e.advance(WALL + 1_000_000));
    canonical(alarms)
}

#[test]
fn any_window_early_firing_follows_arrival_across_partitions_and_next_window_does_not() {
    // any_window: partition 0 first gives the window ending at 30 s; partition 1 first reaches
    // the threshold on the window ending at 40 s before partition 0's failure comes.
    let raised = |alarms: &[Alarm]| alarms.iter().find(|a| a.state == AlarmState::Raised).map(|a| a.window_end - T0);
    assert_eq!(raised(&two_partition_raise(EarlyFiring::AnyWindow, 0)), Some(30_000));
    assert_eq!(raised(&two_partition_raise(EarlyFiring::AnyWindow, 1)), Some(40_000));
    // next_window: the window evaluation raises on, whatever the order.
    let first = two_partition_raise(EarlyFiring::NextWindow, 0);
    assert_eq!(raised(&first), Some(30_000));
    assert_eq!(two_partition_raise(EarlyFiring::NextWindow, 1), first);
    assert_eq!(states(&first), vec![(AlarmState::Raised, 3, 30_000)]);
}

#[test]
fn next_window_early_firing_raises_when_the_crossing_window_is_the_one_closing_next() {
    let mut cfg = lagging_config();
    cfg.rules[0].early_firing = EarlyFiring::NextWindow;
    let mut e = engine(&cfg);
    e.on_event(0, &ok(T0 + 60_000, "PAR"), WALL);
    assert!(e.advance(WALL).is_empty());
    assert_eq!(e.stats().watermark_ms, Some(T0), "the window closing next ends at T0 + 10s");
    // Ten failures 40 s ahead of the watermark reach the threshold in the windows ending at 50 s
    // to 70 s: none is the window closing next, so nothing yet.
    burst(&mut e, T0 + 40_000, "PAR", 10);
    assert!(e.advance(WALL).is_empty());
    assert_eq!(e.stats().active_alarms, 0);
    // The watermark moves to 30 s: the window ending at 40 s closes next and holds none of
    // them; at 40 s, the window ending at 50 s (already at the threshold) closes next: raised.
    e.on_event(0, &ok(T0 + 90_000, "PAR"), WALL);
    assert!(e.advance(WALL).is_empty());
    e.on_event(0, &ok(T0 + 100_000, "PAR"), WALL);
    let raised = e.advance(WALL);
    assert_eq!(states(&raised), vec![(AlarmState::Raised, 10, 50_000)]);
    assert_eq!(e.stats().watermark_ms, Some(T0 + 40_000), "raised before its window closed");
    // A failure in the window closing next raises at once: after a clear, on the next incident.
    e.on_event(0, &ok(T0 + 160_000, "PAR"), WALL);
    let cleared = e.advance(WALL);
    assert_eq!(cleared.last().map(|a| a.state), Some(AlarmState::Cleared));
    assert_eq!(e.stats().watermark_ms, Some(T0 + 100_000));
    burst(&mut e, T0 + 100_000, "PAR", 10);
    let again = e.advance(WALL);
    assert_eq!(states(&again), vec![(AlarmState::Raised, 10, 110_000)]);
}

#[test]
fn early_firing_raises_on_the_event_that_reaches_the_threshold_and_the_closed_window_gives_final_counts() {
    let cfg = config();
    let mut e = engine(&cfg);
    e.on_event(0, &ok(T0, "PAR"), WALL);
    assert!(e.advance(WALL).is_empty()); // watermark T0: the open window is [T0 - 20s, T0 + 10s)
    for i in 1..10 {
        e.on_event(0, &fail(T0 + i * 500, "PAR"), WALL);
    }
    assert!(e.advance(WALL).is_empty(), "9 failures: under the threshold");
    assert!(e.take_raised_receptions().is_empty());
    // The 10th failure raises at once, long before the watermark reaches the window's end.
    let mut crossing = fail(T0 + 5_000, "PAR");
    crossing.event.received_at = T0 + 5_123;
    assert_eq!(e.on_event(0, &crossing, WALL), EventOutcome::Counted);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Raised, 10, 10_000)]);
    // The stage measures the alarm's latency from the crossing event's reception.
    assert_eq!(e.take_raised_receptions(), vec![T0 + 5_123]);
    assert!(e.take_raised_receptions().is_empty());
    assert_eq!(alarms[0].total, 11);
    assert!(e.stats().watermark_ms < Some(T0 + 10_000));
    assert_eq!(e.stats().active_alarms, 1);
    // More failures in the open window raise nothing more ...
    e.on_event(0, &fail(T0 + 6_000, "PAR"), WALL);
    e.on_event(0, &fail(T0 + 9_000, "PAR"), WALL);
    assert!(e.advance(WALL).is_empty());
    // ... and when the window closes, an update gives its final counts.
    e.on_event(0, &ok(T0 + 10_000, "PAR"), WALL);
    let closed = e.advance(WALL);
    assert_eq!(states(&closed), vec![(AlarmState::Updated, 12, 10_000)]);
    assert_eq!(
        (closed[0].total, closed[0].first_seen, closed[0].alarm_id.as_str()),
        (13, T0 + 500, alarms[0].alarm_id.as_str())
    );

    // Failures of a later pane raise on the first window holding them, at once.
    let mut e = engine(&cfg);
    e.on_event(0, &ok(T0, "PAR"), WALL);
    e.advance(WALL);
    burst(&mut e, T0 + 10_000, "PAR", 10);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Raised, 10, 20_000)]);
    assert!(e.stats().watermark_ms < Some(T0 + 20_000));

    // A ratio rule waits for its window to close: more successes could lower the ratio.
    let cfg = ratio_config();
    let mut e = engine(&cfg);
    e.on_event(0, &ok(T0, "PAR"), WALL);
    e.advance(WALL);
    mix(&mut e, T0, "PAR", 12, 0);
    assert!(e.advance(WALL).is_empty());
    e.on_event(0, &ok(T0 + 10_000, "PAR"), WALL);
    assert_eq!(states(&e.advance(WALL)), vec![(AlarmState::Raised, 12, 10_000)]);
}

/// One rule, threshold 10, no out-of-orderness, 10s of allowed lateness.
fn lateness_config() -> AlarmConfig {
    let mut cfg = config();
    cfg.allowed_lateness = Duration::from_secs(10);
    cfg
}

#[test]
fn events_within_allowed_lateness_update_the_closed_window_and_later_ones_are_late() {
    let cfg = lateness_config();
    let mut e = engine(&cfg);
    e.on_event(0, &ok(T0, "PAR"), WALL);
    for i in 1..10 {
        e.on_event(0, &fail(T0 + 10_000 + i * 500, "PAR"), WALL);
    }
    e.on_event(0, &ok(T0 + 30_000, "PAR"), WALL);
    assert!(e.advance(WALL).is_empty(), "windows 10s..30s hold 9 failures at most");
    // Watermark T0+30s. 15s behind it: beyond the 10s of lateness.
    assert_eq!(e.on_event(0, &fail(T0 + 15_000, "PAR"), WALL), EventOutcome::Late);
    // 5s behind: within it. The latest closed window, ending at 30s, now holds 10 failures.
    assert_eq!(e.on_event(0, &fail(T0 + 25_000, "PAR"), WALL), EventOutcome::Counted);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Raised, 10, 30_000)]);
    assert_eq!(alarms[0].total, 11);
    // Another one updates what was sent.
    assert_eq!(e.on_event(0, &fail(T0 + 21_000, "PAR"), WALL), EventOutcome::Counted);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Updated, 11, 30_000)]);
    let rule = &e.rule_stats()[0];
    assert_eq!((rule.counters.counted, rule.counters.late), (13, 1));
    assert_eq!(e.stats().late_events, 1);

    // Windows close on the watermark, as without lateness; state stays bounded: once the
    // watermark passes a pane's last window by the lateness, the pane is gone.
    e.on_event(0, &ok(T0 + 100_000, "LYO"), WALL);
    let alarms = e.advance(WALL);
    assert_eq!(states(&alarms), vec![(AlarmState::Cleared, 2, 50_000)]);
    assert_eq!(e.stats().groups, 1, "PAR's panes are purged and its group dropped");
    assert_eq!(e.on_event(0, &fail(T0 + 89_999, "PAR"), WALL), EventOutcome::Late);
    assert_eq!(e.on_event(0, &fail(T0 + 90_000, "PAR"), WALL), EventOutcome::Counted);
}

/// The alarm stage's topics under their default names.
fn stage_topics() -> lux_alarm::stage::AlarmTopics {
    lux_alarm::stage::AlarmTopics {
        enriched: "enriched".into(),
        routed: "alarm-routed".into(),
        alarms: "alarms".into(),
        deadletter: "deadletter".into(),
        late: "late".into(),
    }
}

#[test]
fn the_route_stage_writes_events_beyond_lateness_unchanged_to_the_late_topic() {
    use lux_alarm::stage::AlarmRouteStage;
    use lux_stage::{Context, Processor};
    let cfg = lateness_config();
    let mut stage = AlarmRouteStage::new(&cfg, 2, stage_topics()).unwrap();
    stage.restore(&[], Vec::new()).unwrap();
    assert!(stage.outputs().contains(&"late".to_owned()));
    let mut ctx = Context::default();
    let times = [T0 + 30_000, T0 + 20_000, T0 + 19_999, T0 + 31_000, T0 + 5_000];
    let mut late_values = Vec::new();
    for (offset, time) in times.into_iter().enumerate() {
        let value = serde_json::to_vec(&fail(time, "PAR")).unwrap();
        if time < T0 + 20_000 {
            late_values.push(value.clone());
        }
        let record = lux_log::StoredRecord {
            topic: "enriched".into(),
            partition: 0,
            offset: offset as u64,
            key: Some(b"bng-PAR".to_vec()),
            timestamp_ms: time,
            value,
            decoded: None,
        };
        stage.process(&record, &mut ctx).unwrap();
    }
    stage.end_batch(&mut ctx).unwrap();
    let late: Vec<&lux_log::OutputRecord> = ctx.outputs().iter().filter(|r| r.topic == "late").collect();
    assert_eq!(late.iter().map(|r| r.value.clone()).collect::<Vec<_>>(), late_values, "unchanged, in order");
    assert!(late.iter().all(|r| r.key == b"bng-PAR"));
    let routed = ctx
        .outputs()
        .iter()
        .filter(|r| {
            r.topic == "alarm-routed"
                && matches!(
                    lux_alarm::route::RouteRecord::decode(&r.value),
                    Ok(lux_alarm::route::RouteRecord::Event { .. })
                )
        })
        .count();
    assert_eq!(routed, 3);
    let counters = stage.counters();
    assert!(counters.contains(&("late_events".to_owned(), 2)), "{counters:?}");
    assert!(counters.contains(&("late_events.site-failures".to_owned(), 2)), "{counters:?}");
}

#[test]
fn the_window_stage_traces_events_late_for_its_windows_in_the_late_topic() {
    use lux_alarm::route::{RouteRecord, RuleEvent};
    use lux_alarm::stage::AlarmStage;
    use lux_stage::{Context, Processor};
    let cfg = config();
    let mut stage = AlarmStage::new(&cfg, 1, 1, stage_topics()).unwrap();
    let routed = lux_log::TopicPartition { topic: "alarm-routed".into(), partition: 0 };
    stage.restore(&[routed], Vec::new()).unwrap();
    assert!(stage.outputs().contains(&"late".to_owned()));
    let rule_event = |time: i64| RuleEvent {
        rule: "site-failures".into(),
        group_key: "site=PAR".into(),
        values: vec!["PAR".into()],
        time,
        failure: true,
        suppress: false,
        intervention: None,
        received_at: 0,
    };
    let records = [
        RouteRecord::Watermark { upstream: 0, max_event_time: T0 + 100_000 },
        // Behind the watermark of T0 + 100s: late for the windows.
        RouteRecord::Event { upstream: 0, offset: Some(41), event: rule_event(T0 + 10_000) },
        RouteRecord::Event { upstream: 0, offset: Some(42), event: rule_event(T0 + 100_000) },
    ];
    let mut ctx = Context::default();
    for (offset, routed) in records.iter().enumerate() {
        if offset == 1 {
            stage.end_batch(&mut ctx).unwrap();
        }
        let record = lux_log::StoredRecord {
            topic: "alarm-routed".into(),
            partition: 0,
            offset: offset as u64,
            key: Some(b"site-failures/site=PAR".to_vec()),
            timestamp_ms: T0,
            value: serde_json::to_vec(routed).unwrap(),
            decoded: None,
        };
        stage.process(&record, &mut ctx).unwrap();
    }
    stage.end_batch(&mut ctx).unwrap();
    let late: Vec<&lux_log::OutputRecord> = ctx.outputs().iter().filter(|r| r.topic == "late").collect();
    assert_eq!(late.len(), 1, "one event late: {late:?}");
    let trace: lux_model::LateForWindow = serde_json::from_slice(&late[0].value).unwrap();
    assert_eq!(
        trace,
        lux_model::LateForWindow {
            schema: "lux.late-for-window.v1".into(),
            rule: "site-failures".into(),
            group_key: "site=PAR".into(),
            event_time: T0 + 10_000,
            watermark: Some(T0 + 100_000),
            topic: "enriched".into(),
            partition: 0,
            offset: Some(41),
        }
    );
    assert_eq!(late[0].key, b"site-failures/site=PAR");
    assert_eq!(late[0].timestamp_ms, T0 + 10_000);
}

/// `config()` with 60s of out-of-orderness: the watermark stays a minute behind the newest event.
fn lagging_config() -> AlarmConfig {
    let mut cfg = config();
    cfg.out_of_orderness = Duration::from_secs(60);
    cfg
}

#[test]
fn early_firing_raises_on_the_crossing_event_ahead_of_the_window_the_watermark_closes_next() {
    let cfg = lagging_config();
    let mut e = engine(&cfg);
    e.on_event(0, &ok(T0 + 60_000, "PAR"), WALL);
    assert!(e.advance(WALL).is_empty());
    assert_eq!(e.stats().watermark_ms, Some(T0), "the window closing next ends at T0 + 10s");
    // Failures 40s ahead of the watermark: in the windows ending at 50s, 60s and 70s only.
    for i in 0..9 {
        e.on_event(0, &fail(T0 + 40_000 + i * 1_000, "PAR"), WALL);
    }
    assert!(e.advance(WALL).is_empty(), "9 failures: under the threshold");
    let mut crossing = fail(T0 + 49_000, "PAR");
    crossing.event.received_at = T0 + 61_000;
    assert_eq!(e.on_event(0, &crossing, WALL), EventOutcome::Counted);
    let raised = e.advance(WALL);
    assert_eq!(states(&raised), vec![(AlarmState::Raised, 10, 50_000)], "raised on the first window holding them");
    assert_eq!(raised[0].first_seen, T0 + 40_000);
    assert_eq!(e.take_raised_receptions(), vec![T0 + 61_000]);
    assert_eq!(e.stats().watermark_ms, Some(T0), "raised 50s before the watermark reaches the window's end");
    assert_eq!(e.stats().active_alarms, 1);
}

#[test]
fn windows_closing_before_an_early_raise_window_neither_clear_nor_update_it() {
    let cfg = lagging_config();
    let mut e = engine(&cfg);
    e.on_event(0, &ok(T0 + 60_000, "PAR"), WALL);
    e.advance(WALL);
    burst(&mut e, T0 + 40_000, "PAR", 10);
    let raised = e.advance(WALL);
    assert_eq!(states(&raised), vec![(AlarmState::Raised, 10, 50_000)]);
    // Failures of an earlier pane, not late: the windows ending at 20s..40s reach the threshold
    // too, but the alarm is raised already, on a later window.
    burst(&mut e, T0 + 10_000, "PAR", 10);
    // One more failure in the raise window, before it closes.
    e.on_event(0, &fail(T0 + 45_500, "PAR"), WALL);
    assert!(e.advance(WALL).is_empty());
    // The watermark passes 10s..40s: those windows (empty, or with the earlier failures) are
    // skipped, neither clearing nor updating the alarm.
    e.on_event(0, &ok(T0 + 100_000, "PAR"), WALL);
    assert!(e.advance(WALL).is_empty(), "the windows before the raise window leave the alarm alone");
    assert_eq!(e.stats().active_alarms, 1);
    // The raise window closes: its final counts (the raise window [20s, 50s) holds the pane at
    // 40s only), then it holds until a window without enough failures clears it (the window
    // ending at 70s holds the success at 60s too: updated).
    e.on_event(0, &ok(T0 + 110_000, "PAR"), WALL);
    let closed = e.advance(WALL);
    assert_eq!(states(&closed), vec![(AlarmState::Updated, 11, 50_000)]);
    assert_eq!(closed[0].alarm_id, raised[0].alarm_id);
    assert_eq!(closed[0].first_seen, T0 + 40_000);
    e.on_event(0, &ok(T0 + 140_000, "PAR"), WALL);
    let rest = e.advance(WALL);
    assert_eq!(states(&rest), vec![(AlarmState::Updated, 11, 70_000), (AlarmState::Cleared, 0, 80_000)]);
    assert_eq!(rest[0].total, 12);
    assert_eq!(e.stats().active_alarms, 0);
}

/// One partition over ten minutes, 3 sites, up to 15s of disorder, with failure storms per site
/// that raise, hold and clear, separated by quiet periods longer than a window.
fn disordered_sequence() -> Vec<EnrichedEvent> {
    let mut events = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..2_400i64 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let jitter = ((state >> 33) % 15_000) as i64;
        let time = T0 + i * 250 - jitter;
        let site = ["PAR", "LYO", "MRS"][((state >> 20) % 3) as usize];
        let storm = match site {
            "PAR" => (60_000..150_000).contains(&(i * 250)) || (400_000..450_000).contains(&(i * 250)),
            "LYO" => (200_000..260_000).contains(&(i * 250)),
            _ => (100_000..130_000).contains(&(i * 250)),
        };
        let failure = if storm { (state >> 40) % 4 != 0 } else { (state >> 40) % 20 == 0 };
        events.push(event(time, site, "IDF", failure));
    }
    events
}

/// Feeds `events` calling `advance` after each event `advance_at` accepts, and restarts the
/// engine from its persisted state (only) after each event `restart_at` accepts. Returns each
/// (rule, group)'s records in the order they were made.
fn per_group(
    cfg: &AlarmConfig,
    events: &[EnrichedEvent],
    advance_at: impl Fn(usize) -> bool,
    restart_at: impl Fn(usize) -> bool,
) -> BTreeMap<(String, String), Vec<Alarm>> {
    let mut e = engine(cfg);
    let mut store = Store::new();
    let mut alarms = Vec::new();
    for (i, event) in events.iter().enumerate() {
        e.on_event(0, event, WALL);
        if advance_at(i) {
            alarms.extend(e.advance(WALL));
        }
        if restart_at(i) {
            // A commit, then a crash: a new engine from the persisted state.
            alarms.extend(e.advance(WALL));
            apply(&mut store, e.take_changes());
            e = engine(cfg);
            e.restore(store.clone()).unwrap();
        }
    }
    alarms.extend(e.advance(WALL + 1_000_000));
    let mut out: BTreeMap<(String, String), Vec<Alarm>> = BTreeMap::new();
    for alarm in alarms {
        out.entry((alarm.rule.clone(), alarm.group_key.clone())).or_default().push(alarm);
    }
    out
}

/// Which events an `advance` or a restart follows.
type Pick = Box<dyn Fn(usize) -> bool>;

#[test]
fn early_raises_do_not_depend_on_where_the_watermark_advanced_nor_on_restarts() {
    let mut cfg = config();
    cfg.out_of_orderness = Duration::from_secs(20);
    cfg.rules[0].threshold = Some(20);
    cfg.rules[0].clear = Some(8);
    let events = disordered_sequence();
    let reference = per_group(&cfg, &events, |_| true, |_| false);
    let all: Vec<&Alarm> = reference.values().flatten().collect();
    let raised = all.iter().filter(|a| a.state == AlarmState::Raised).count();
    assert!(raised >= 4, "the data must raise several alarms: {all:#?}");
    assert!(all.iter().any(|a| a.state == AlarmState::Cleared));
    assert!(all.iter().any(|a| a.state == AlarmState::Updated));
    let variants: Vec<(&str, Pick, Pick)> = vec![
        ("every 7", Box::new(|i| i % 7 == 0), Box::new(|_| false)),
        ("every 100", Box::new(|i| i % 100 == 99), Box::new(|_| false)),
        ("irregular", Box::new(|i| (i * i) % 37 == 3), Box::new(|_| false)),
        ("only at restarts", Box::new(|_| false), Box::new(|i| i % 400 == 399)),
        ("restarts", Box::new(|i| i % 5 == 0), Box::new(|i| i % 331 == 17)),
        ("restarts, rare advances", Box::new(|i| i % 211 == 0), Box::new(|i| i % 97 == 50)),
    ];
    for (name, advance_at, restart_at) in variants {
        let got = per_group(&cfg, &events, advance_at, restart_at);
        assert_eq!(got, reference, "records with advances {name}");
    }
}

#[test]
fn state_of_version_1_is_read_and_rewritten_and_a_newer_version_is_refused() {
    let cfg = config();
    // What LUX wrote before binary state: JSON, each group with its whole pane list.
    let pane = T0 / 10_000;
    let meta = format!(
        r#"{{"version":1,"watermark":{T0},"partitions":{{"0":{T0}}},"late_events":0,"overflow_events":0,"rules":{{}}}}"#
    );
    let group = format!(
        r#"{{"version":1,"rule":"site-failures","group_by":["site"],"slide_ms":10000,"group_key":"site=PAR",
        "values":["PAR"],"panes":[{{"index":{pane},"failures":10,"total":10,"first_failure":{T0},
        "last_failure":{t},"last_suppress":false}}],"alarm":{{"alarm_id":"a1","first_seen":{T0},"last_seen":{t},
        "last_suppress":false,"count":10,"total":10,"open_window":{k}}}}}"#,
        t = T0 + 9_000,
        k = pane + 1
    );
    let v1 = vec![
        (b"meta".to_vec(), meta.clone().into_bytes()),
        (b"group/site-failures/site=PAR".to_vec(), group.into_bytes()),
    ];
    let mut e = engine(&cfg);
    e.restore(v1).unwrap();
    assert_eq!((e.stats().groups, e.stats().active_alarms, e.stats().watermark_ms), (1, 1, Some(T0)));
    // Rewritten at the next commit: the group's entry, its pane and meta, in the new format.
    let mut store = Store::new();
    apply(&mut store, e.take_changes());
    let keys: Vec<&Vec<u8>> = store.keys().collect();
    assert_eq!(keys, [&b"group/site-failures/site=PAR".to_vec(), &b"meta".to_vec(), &pane_key("site=PAR", pane)]);
    assert!(String::from_utf8_lossy(&store[&b"meta".to_vec()]).contains(r#""version":2"#));
    // The engine restored from the rewritten state is the same, and carries on.
    let mut again = engine(&cfg);
    again.restore(store.clone()).unwrap();
    assert_eq!(again.stats(), e.stats());
    assert!(again.take_changes().is_empty());
    for mut engine in [e, again] {
        engine.on_event(0, &fail(T0 + 9_500, "PAR"), WALL);
        engine.on_event(0, &ok(T0 + 20_000, "PAR"), WALL);
        let alarms = engine.advance(WALL);
        assert_eq!(states(&alarms), vec![(AlarmState::Updated, 11, 10_000)]);
        assert_eq!(alarms[0].alarm_id, "a1");
    }
    // A state written by a later LUX is refused, saying why.
    let newer = meta.replace(r#""version":1"#, r#""version":3"#);
    let err = engine(&cfg).restore(vec![(b"meta".to_vec(), newer.into_bytes())]).unwrap_err();
    assert!(err.contains("has version 3, this LUX reads versions 1 to 2"), "{err}");
}
