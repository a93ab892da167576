//! The HTML format: one self-contained HTML5 page (inline CSS, inline SVG charts, no script,
//! no external resource). Every string that comes from the data goes through [`escape`].

use super::{count, duration, percent, svg, time};
use crate::{Kpi, ReportModel, WorstList};
use std::fmt::Write;

/// Text safe in HTML content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are not allowed in HTML text.
            c if c.is_control() && c != '\t' && c != '\n' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}
h2{font-size:1.2em;margin:32px 0 8px;border-bottom:2px solid #d5dbe1;padding-bottom:4px}
h3{font-size:1em;margin:20px 0 6px}
.meta{color:#56636f;font-size:.9em;margin:2px 0}
.notes{background:#fff7e0;border-left:4px solid #e0a800;padding:8px 12px;margin:16px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:10px}
.card{background:#fff;border-radius:6px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .label{font-size:.8em;color:#56636f}
.card .value{font-size:1.4em;font-weight:600;margin:2px 0}
.card .prev{font-size:.8em;color:#56636f}
.good{color:#1a7f37}.bad{color:#c62828}.same{color:#56636f}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.85em;margin:6px 0}
th,td{padding:4px 8px;border-bottom:1px solid #e3e7eb;text-align:left}
th{background:#eef1f4}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.chart{max-width:100%;height:auto;background:#fff;border-radius:6px}
.chart .grid{stroke:#e3e7eb;stroke-width:1}
.chart .axis{font-size:11px;fill:#56636f}
.chart .legend{font-size:12px;fill:#34495e}
.chart .rate{fill:#c62828}
.chart .bar{fill:#4a7ab5}
.chart .line{fill:none;stroke:#c62828;stroke-width:2}
.chart .dot{fill:#c62828}
.empty{color:#56636f;font-style:italic}
footer{margin-top:32px;font-size:.8em;color:#56636f}
";

/// The value of a headline figure in its unit.
fn kpi_value(k: &Kpi, v: Option<f64>) -> String {
    match k.unit.as_str() {
        "ratio" => percent(v),
        "seconds" => duration(v),
        _ => v.map(|v| count(v.max(0.0).round() as u64)).unwrap_or_else(|| "–".to_owned()),
    }
}

/// The change of a headline figure, and whether it is good news (`good`, `bad`, `same`).
fn kpi_delta(k: &Kpi) -> (String, &'static str) {
    let Some(delta) = k.delta.filter(|d| d.is_finite()) else { return ("no previous figure".to_owned(), "same") };
    let sign = if delta > 0.0 {
        "+"
    } else if delta < 0.0 {
        "−"
    } else {
        "±"
    };
    let text = match k.unit.as_str() {
        "ratio" => format!("{sign}{:.2} pp", delta.abs() * 100.0),
        "seconds" => format!("{sign}{}", duration(Some(delta.abs()))),
        _ => {
            let relative = k.previous.filter(|p| *p > 0.0).map(|p| format!(" ({sign}{:.1}%)", delta.abs() / p * 100.0));
            format!("{sign}{}{}", count(delta.abs().round() as u64), relative.unwrap_or_default())
        }
    };
    let class = match (k.higher_is_better, delta.partial_cmp(&0.0)) {
        (_, Some(std::cmp::Ordering::Equal)) | (None, _) | (_, None) => "same",
        (Some(better), Some(order)) => {
            if better == (order == std::cmp::Ordering::Greater) {
                "good"
            } else {
                "bad"
            }
        }
    };
    (text, class)
}

fn worst_table(out: &mut String, list: &WorstList) {
    let _ =
        write!(out, "<h3>Worst {} (at least {} events)</h3>", escape(&plural(&list.dimension)), count(list.min_events));
    if list.rows.is_empty() {
        let _ = write!(
            out,
            r#"<p class="empty">No {} with failures and at least {} events ({} seen).</p>"#,
            escape(&list.dimension),
            count(list.min_events),
            count(list.values_seen)
        );
        return;
    }
    out.push_str(r#"<table><thead><tr><th>#</th><th>"#);
    out.push_str(&escape(&list.dimension));
    out.push_str(r#"</th><th class="n">events</th><th class="n">failures</th><th class="n">failure rate</th><th class="n">previous</th><th class="n">setup success</th><th class="n">drop rate</th><th class="n">affected subscribers</th></tr></thead><tbody>"#);
    for (i, r) in list.rows.iter().enumerate() {
        let _ = write!(
            out,
            r#"<tr><td class="n">{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            i + 1,
            escape(&r.value),
            count(r.events),
            count(r.failures),
            percent(r.failure_rate),
            percent(r.previous_failure_rate),
            percent(r.setup_success_rate),
            percent(r.drop_rate),
            count(r.affected_subscribers)
        );
    }
    out.push_str("</tbody></table>");
}

/// Most rows the page shows of the alarm and intervention tables (a week can have thousands of
/// alarms); the CSV and JSON have them all.
pub const MAX_TABLE_ROWS: usize = 200;

/// Says how many rows of a table the page left out.
fn more(out: &mut String, total: usize, what: &str) {
    if total > MAX_TABLE_ROWS {
        let _ = write!(
            out,
            r#"<p class="empty">The first {MAX_TABLE_ROWS} of {} {what}; the CSV and JSON formats list them all.</p>"#,
            count(total as u64)
        );
    }
}

fn plural(dimension: &str) -> String {
    match dimension {
        "equipment" => "equipment".to_owned(),
        d => format!("{d}s"),
    }
}

pub fn render_html(m: &ReportModel) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="LUX {}">
<title>{}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>{}</h1>
<p class="meta">Period: {} to {} (event time) — compared with {} to {}</p>
<p class="meta">Generated {} from {}; {} indicator record(s) in the period.</p>
"#,
        env!("CARGO_PKG_VERSION"),
        escape(&m.title),
        escape(&m.title),
        escape(&time(Some(m.period.from))),
        escape(&time(Some(m.period.to))),
        escape(&time(Some(m.previous_period.from))),
        escape(&time(Some(m.previous_period.to))),
        escape(&time(Some(m.generated_at))),
        escape(if m.source.is_empty() { "no source" } else { &m.source }),
        count(m.indicator_records)
    );
    if !m.notes.is_empty() {
        out.push_str(r#"<div class="notes"><ul>"#);
        for note in &m.notes {
            let _ = write!(out, "<li>{}</li>", escape(note));
        }
        out.push_str("</ul></div>");
    }

    out.push_str(r#"<h2 id="headline">Headline figures</h2><div class="cards">"#);
    for k in &m.headline {
        let (delta, class) = kpi_delta(k);
        let _ = write!(
            out,
            r#"<div class="card" data-kpi="{}"><div class="label">{}</div><div class="value">{}</div><div class="prev">previous {} · <span class="{class}">{}</span></div></div>"#,
            escape(&k.key),
            escape(&k.label),
            escape(&kpi_value(k, k.current)),
            escape(&kpi_value(k, k.previous)),
            escape(&delta)
        );
    }
    out.push_str("</div>");

    out.push_str(r#"<h2 id="timeline">Across the period</h2>"#);
    out.push_str(&svg::timeline(&m.timeline, "Events and failure rate across the period"));

    out.push_str(r#"<h2 id="worst">Where it hurts</h2>"#);
    if let Some(regions) = m.worst.iter().find(|w| w.dimension == "region") {
        if !regions.rows.is_empty() {
            let rows: Vec<(String, f64, String)> = regions
                .rows
                .iter()
                .map(|r| (r.value.clone(), r.failure_rate.unwrap_or(0.0), percent(r.failure_rate)))
                .collect();
            out.push_str(&svg::bars(&rows, "Failure rate of the worst regions"));
        }
    }
    for list in &m.worst {
        worst_table(&mut out, list);
    }

    out.push_str(r#"<h2 id="error-codes">Top error codes</h2>"#);
    if m.top_error_codes.is_empty() {
        out.push_str(r#"<p class="empty">No error code in the period.</p>"#);
    } else {
        let rows: Vec<(String, f64, String)> =
            m.top_error_codes.iter().map(|c| (c.code.clone(), c.count as f64, count(c.count))).collect();
        out.push_str(&svg::bars(&rows, "Events per error code"));
        out.push_str(r#"<table><thead><tr><th>code</th><th class="n">events</th><th class="n">share</th><th class="n">previous period</th></tr></thead><tbody>"#);
        for c in &m.top_error_codes {
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                escape(&c.code),
                count(c.count),
                percent(c.share),
                count(c.previous_count)
            );
        }
        out.push_str("</tbody></table>");
    }

    out.push_str(r#"<h2 id="sessions">Session durations</h2>"#);
    let d = &m.durations;
    if d.sessions == 0 {
        out.push_str(r#"<p class="empty">No stopped session with a duration in the period.</p>"#);
    } else {
        let _ = write!(
            out,
            r#"<p>{} sessions with a duration: mean {}, shortest {}, longest {}; short-session ratio {}.</p>"#,
            count(d.sessions),
            duration(d.mean_s),
            duration(d.min_s.map(|s| s as f64)),
            duration(d.max_s.map(|s| s as f64)),
            percent(m.current.short_session_ratio)
        );
        out.push_str(&svg::durations(d));
    }

    let a = &m.alarms;
    let _ = write!(
        out,
        r#"<h2 id="alarms">Alarms</h2><p>{} raised (previous period {}), {} cleared (previous {}), {} still open at the end of the period, {} suppressed by an intervention. MTTR {} (previous {}).</p>"#,
        count(a.raised),
        count(a.previous_raised),
        count(a.cleared),
        count(a.previous_cleared),
        count(a.open_at_end),
        count(a.suppressed),
        duration(a.mttr_s),
        duration(a.previous_mttr_s)
    );
    if a.alarms.is_empty() {
        out.push_str(r#"<p class="empty">No alarm was active in the period.</p>"#);
    } else {
        out.push_str(r#"<table><thead><tr><th>rule</th><th>group</th><th>severity</th><th>raised</th><th>cleared</th><th class="n">duration</th><th class="n">peak failures</th><th>notes</th></tr></thead><tbody>"#);
        for row in a.alarms.iter().take(MAX_TABLE_ROWS) {
            let mut notes = Vec::new();
            if row.open_at_end {
                notes.push("open".to_owned());
            }
            if row.suppressed {
                notes.push(match &row.intervention_id {
                    Some(id) => format!("suppressed by {id}"),
                    None => "suppressed".to_owned(),
                });
            }
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td></tr>"#,
                escape(&row.rule),
                escape(&row.group_key),
                escape(&row.severity),
                escape(&time(row.raised_at)),
                escape(&time(row.cleared_at)),
                duration(row.duration_s),
                count(row.peak_count),
                escape(&notes.join(", "))
            );
        }
        out.push_str("</tbody></table>");
        more(&mut out, a.alarms.len(), "alarms");
    }

    out.push_str(r#"<h2 id="interventions">Interventions</h2>"#);
    match &m.interventions {
        None => out.push_str(r#"<p class="empty">No reference data was available.</p>"#),
        Some(list) if list.is_empty() => out.push_str(r#"<p class="empty">No intervention overlapped the period.</p>"#),
        Some(list) => {
            out.push_str(r#"<table><thead><tr><th>intervention</th><th>kind</th><th>covers</th><th>from</th><th>to</th><th>effect</th><th class="n">events excluded</th><th class="n">alarms suppressed</th></tr></thead><tbody>"#);
            for i in list.iter().take(MAX_TABLE_ROWS) {
                let mut effect = Vec::new();
                if i.exclude_from_kpi {
                    effect.push("excluded from KPIs");
                }
                if i.suppress_alarms {
                    effect.push("alarms suppressed");
                }
                let _ = write!(
                    out,
                    r#"<tr><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                    escape(&i.id),
                    escape(&i.kind),
                    escape(&i.scope),
                    escape(&i.target_id),
                    escape(&time(i.start)),
                    if i.end.is_some() { escape(&time(i.end)) } else { "open".to_owned() },
                    escape(&effect.join(", ")),
                    i.excluded_events.map(count).unwrap_or_else(|| "–".to_owned()),
                    count(i.suppressed_alarms.len() as u64)
                );
            }
            out.push_str("</tbody></table>");
            more(&mut out, list.len(), "interventions");
        }
    }

    let _ = write!(
        out,
        r#"<footer><p>Figures are sums of the per-minute QoE indicators of the {} dimension whose window starts in the period; rates are summed numerators over summed denominators. Affected subscribers: distinct subscribers of failures and drops, estimated with HyperLogLog (1.6% standard error). MTTR: mean time from an alarm's raise to its clear, over the alarms cleared in the period. Events covered by an intervention that excludes them from KPIs are counted apart.</p></footer>
</main>
</body>
</html>
"#,
        escape(m.totals_dimension.as_deref().unwrap_or("equipment"))
    );
    out
}
