//! The CSV format: one section per table, separated by an empty line; each section starts with
//! its header row and the first column of every row names the table (see the crate docs).

use crate::{ReportError, ReportModel};
use lux_model::{format_rfc3339_millis, Millis};

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn at(ms: Option<Millis>) -> String {
    ms.map(format_rfc3339_millis).unwrap_or_default()
}

pub fn render_csv(model: &ReportModel) -> Result<String, ReportError> {
    let mut sections: Vec<Vec<Vec<String>>> = Vec::new();
    let header = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<String>>();

    let mut rows =
        vec![header(&["table", "kpi", "label", "unit", "current", "previous", "delta", "period_from", "period_to"])];
    for k in &model.headline {
        rows.push(vec![
            "headline".into(),
            k.key.clone(),
            k.label.clone(),
            k.unit.clone(),
            opt(k.current),
            opt(k.previous),
            opt(k.delta),
            format_rfc3339_millis(model.period.from),
            format_rfc3339_millis(model.period.to),
        ]);
    }
    sections.push(rows);

    let mut rows = vec![header(&[
        "table",
        "start",
        "events",
        "attempts",
        "failures",
        "failure_rate",
        "stops",
        "drops",
        "drop_rate",
    ])];
    for b in &model.timeline.buckets {
        rows.push(vec![
            "timeline".into(),
            format_rfc3339_millis(b.start),
            b.events.to_string(),
            b.attempts.to_string(),
            b.failures.to_string(),
            opt(b.failure_rate),
            b.stops.to_string(),
            b.drops.to_string(),
            opt(b.drop_rate),
        ]);
    }
    sections.push(rows);

    for list in &model.worst {
        let table = format!("worst_{}", list.dimension);
        let mut rows = vec![header(&[
            "table",
            "rank",
            "value",
            "events",
            "attempts",
            "failures",
            "failure_rate",
            "setup_success_rate",
            "stops",
            "drops",
            "drop_rate",
            "affected_subscribers",
            "previous_failure_rate",
        ])];
        for (i, r) in list.rows.iter().enumerate() {
            rows.push(vec![
                table.clone(),
                (i + 1).to_string(),
                r.value.clone(),
                r.events.to_string(),
                r.attempts.to_string(),
                r.failures.to_string(),
                opt(r.failure_rate),
                opt(r.setup_success_rate),
                r.stops.to_string(),
                r.drops.to_string(),
                opt(r.drop_rate),
                r.affected_subscribers.to_string(),
                opt(r.previous_failure_rate),
            ]);
        }
        sections.push(rows);
    }

    let mut rows = vec![header(&["table", "code", "count", "previous_count", "share"])];
    for c in &model.top_error_codes {
        rows.push(vec![
            "error_codes".into(),
            c.code.clone(),
            c.count.to_string(),
            c.previous_count.to_string(),
            opt(c.share),
        ]);
    }
    sections.push(rows);

    let mut rows = vec![header(&["table", "upper_s", "sessions"])];
    for b in &model.durations.buckets {
        rows.push(vec!["durations".into(), opt(b.upper_s), b.sessions.to_string()]);
    }
    sections.push(rows);

    let mut rows = vec![header(&[
        "table",
        "alarm_id",
        "rule",
        "group",
        "severity",
        "raised_at",
        "cleared_at",
        "duration_s",
        "first_seen",
        "last_seen",
        "peak_count",
        "open_at_end",
        "suppressed",
        "intervention_id",
    ])];
    for a in &model.alarms.alarms {
        rows.push(vec![
            "alarms".into(),
            a.alarm_id.clone(),
            a.rule.clone(),
            a.group_key.clone(),
            a.severity.clone(),
            at(a.raised_at),
            at(a.cleared_at),
            opt(a.duration_s),
            format_rfc3339_millis(a.first_seen),
            format_rfc3339_millis(a.last_seen),
            a.peak_count.to_string(),
            a.open_at_end.to_string(),
            a.suppressed.to_string(),
            a.intervention_id.clone().unwrap_or_default(),
        ]);
    }
    sections.push(rows);

    let mut rows = vec![header(&[
        "table",
        "intervention_id",
        "kind",
        "scope",
        "target_id",
        "start",
        "end",
        "exclude_from_kpi",
        "suppress_alarms",
        "excluded_events",
        "suppressed_alarms",
    ])];
    for i in model.interventions.iter().flatten() {
        rows.push(vec![
            "interventions".into(),
            i.id.clone(),
            i.kind.clone(),
            i.scope.clone(),
            i.target_id.clone(),
            at(i.start),
            at(i.end),
            i.exclude_from_kpi.to_string(),
            i.suppress_alarms.to_string(),
            opt(i.excluded_events),
            i.suppressed_alarms.len().to_string(),
        ]);
    }
    sections.push(rows);

    let fail = |e: String| ReportError::Render { format: "csv", detail: e };
    let mut out = String::new();
    for (i, section) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut writer = ::csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
        for row in section {
            writer.write_record(row).map_err(|e| fail(e.to_string()))?;
        }
        let bytes = writer.into_inner().map_err(|e| fail(e.to_string()))?;
        out.push_str(&String::from_utf8(bytes).map_err(|e| fail(e.to_string()))?);
    }
    Ok(out)
}
