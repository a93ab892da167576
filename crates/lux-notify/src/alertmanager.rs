//! Alarms as Alertmanager API v2 alerts (`POST /api/v2/alerts`, a JSON array of
//! `postableAlert`): labels identify the alert (the rule, the group's dimensions, the severity),
//! annotations describe it, `startsAt` is its first failure and `endsAt` either a time ahead (an
//! active alarm, sent again before it passes) or the time it cleared (resolved).

use lux_model::{format_rfc3339_millis, Alarm};
use serde_json::{json, Map, Value};

/// The alert for `alarm`: active until `active_until_ms` when `resolved_at_ms` is `None`, else
/// resolved then. Times are clamped to `now_ms` so that equipment clocks ahead of ours can
/// neither keep a resolved alert active nor make Alertmanager refuse it (`endsAt` before
/// `startsAt`).
pub fn alert(alarm: &Alarm, now_ms: i64, active_until_ms: i64, resolved_at_ms: Option<i64>) -> Value {
    let mut labels = Map::new();
    labels.insert("alertname".into(), Value::String(alarm.rule.clone()));
    for (dimension, value) in &alarm.group {
        let name = lux_metrics::sanitize_name(dimension);
        if !matches!(name.as_str(), "alertname" | "severity" | "lux_rule") {
            labels.insert(name, Value::String(value.clone()));
        }
    }
    labels.insert("severity".into(), Value::String(alarm.severity.clone()));
    labels.insert("lux_rule".into(), Value::String(alarm.rule.clone()));
    let mut annotations = Map::new();
    let summary = format!(
        "{} failures (threshold {}) in {} events of the window {} - {} for {}",
        alarm.count,
        alarm.threshold,
        alarm.total,
        format_rfc3339_millis(alarm.window_start),
        format_rfc3339_millis(alarm.window_end),
        if alarm.group_key.is_empty() { "all events" } else { &alarm.group_key }
    );
    annotations.insert("summary".into(), Value::String(summary));
    annotations.insert("alarm_id".into(), Value::String(alarm.alarm_id.clone()));
    annotations.insert("group_key".into(), Value::String(alarm.group_key.clone()));
    annotations.insert("count".into(), Value::String(alarm.count.to_string()));
    annotations.insert("total".into(), Value::String(alarm.total.to_string()));
    annotations.insert("threshold".into(), Value::String(alarm.threshold.to_string()));
    if let Some(ratio) = alarm.threshold_ratio {
        annotations.insert("threshold_ratio".into(), Value::String(ratio.as_f64().to_string()));
    }
    annotations.insert("last_seen".into(), Value::String(format_rfc3339_millis(alarm.last_seen)));
    if alarm.suppressed_by_intervention {
        annotations.insert("suppressed_by_intervention".into(), Value::String("true".into()));
    }
    if let Some(id) = &alarm.intervention_id {
        annotations.insert("intervention_id".into(), Value::String(id.clone()));
    }
    let starts = alarm.first_seen.min(now_ms);
    let ends = match resolved_at_ms {
        Some(resolved) => resolved.min(now_ms).max(starts),
        None => active_until_ms.max(starts),
    };
    json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": format_rfc3339_millis(starts),
        "endsAt": format_rfc3339_millis(ends),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lux_model::AlarmState;

    fn alarm() -> Alarm {
        Alarm {
            schema: lux_model::schema::ALARM.to_owned(),
            alarm_id: "a1".into(),
            rule: "site-failures".into(),
            group_key: "site=PAR-001".into(),
            group: [("site".to_owned(), "PAR-001".to_owned())].into(),
            state: AlarmState::Raised,
            severity: "major".into(),
            count: 120,
            total: 130,
            threshold: 100,
            threshold_ratio: None,
            min_events: None,
            window_start: 1_000,
            window_end: 61_000,
            first_seen: 5_000,
            last_seen: 60_000,
            suppressed_by_intervention: false,
            intervention_id: None,
        }
    }

    #[test]
    fn an_active_alarm_ends_ahead_and_a_cleared_one_ends_when_it_cleared() {
        let active = alert(&alarm(), 100_000, 340_000, None);
        assert_eq!(active["labels"]["alertname"], "site-failures");
        assert_eq!(active["labels"]["site"], "PAR-001");
        assert_eq!(active["labels"]["severity"], "major");
        assert_eq!(active["annotations"]["count"], "120");
        assert_eq!(active["startsAt"], "1970-01-01T00:00:05.000Z");
        assert_eq!(active["endsAt"], "1970-01-01T00:05:40.000Z");
        let resolved = alert(&alarm(), 100_000, 340_000, Some(71_000));
        assert_eq!(resolved["endsAt"], "1970-01-01T00:01:11.000Z");
        // Equipment clocks ahead of ours: still resolved now, never before it started.
        let ahead = alert(&alarm(), 3_000, 340_000, Some(71_000));
        assert_eq!(
            (ahead["startsAt"].as_str(), ahead["endsAt"].as_str()),
            (Some("1970-01-01T00:00:03.000Z"), Some("1970-01-01T00:00:03.000Z"))
        );
    }
}
