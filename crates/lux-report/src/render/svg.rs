//! The report's charts as inline SVG: drawn from the model's figures, every label escaped, no
//! script, no external font or stylesheet (the page's CSS styles them through classes).

use super::html::escape;
use super::{count, percent};
use crate::{DurationSummary, Timeline};
use std::fmt::Write;

const WIDTH: f64 = 900.0;

/// Events per bucket (bars, left axis) and failure rate (line, right axis) across the period.
pub fn timeline(t: &Timeline, label: &str) -> String {
    let (height, left, right, top, bottom) = (260.0, 64.0, 64.0, 16.0, 40.0);
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    let n = t.buckets.len().max(1) as f64;
    let max_events = t.buckets.iter().map(|b| b.events).max().unwrap_or(0).max(1) as f64;
    let max_rate = t.buckets.iter().filter_map(|b| b.failure_rate).fold(0.0f64, f64::max);
    let max_rate = if max_rate > 0.0 { max_rate } else { 0.01 };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(label),
        escape(label)
    );
    // Axes and grid.
    for i in 0..=4 {
        let y = top + plot_h * f64::from(i) / 4.0;
        let events = max_events * f64::from(4 - i) / 4.0;
        let rate = max_rate * f64::from(4 - i) / 4.0;
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text class="axis rate" x="{:.1}" y="{:.1}">{}</text>"#,
            left + plot_w,
            left - 6.0,
            y + 4.0,
            count(events.round() as u64),
            left + plot_w + 6.0,
            y + 4.0,
            percent(Some(rate))
        );
    }
    let slot = plot_w / n;
    for (i, b) in t.buckets.iter().enumerate() {
        let h = plot_h * b.events as f64 / max_events;
        let x = left + slot * i as f64;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{}: {} events, failure rate {}</title></rect>"#,
            x + slot * 0.1,
            top + plot_h - h,
            (slot * 0.8).max(0.5),
            escape(&super::time(Some(b.start))),
            count(b.events),
            percent(b.failure_rate)
        );
    }
    let points: Vec<String> = t
        .buckets
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            b.failure_rate
                .map(|r| format!("{:.1},{:.1}", left + slot * (i as f64 + 0.5), top + plot_h - plot_h * r / max_rate))
        })
        .collect();
    if points.len() > 1 {
        let _ = write!(svg, r#"<polyline class="line" points="{}"/>"#, points.join(" "));
    }
    // A dot per bucket, so that a rate with no neighbour shows too.
    for point in &points {
        if let Some((x, y)) = point.split_once(',') {
            let _ = write!(svg, r#"<circle class="dot" cx="{x}" cy="{y}" r="3"/>"#);
        }
    }
    // About six time labels along the x axis.
    let every = (t.buckets.len() / 6).max(1);
    let long = t.bucket_ms >= 3_600_000 && t.buckets.len() > 24;
    for (i, b) in t.buckets.iter().enumerate().step_by(every) {
        let text = {
            use chrono::TimeZone;
            match chrono::Utc.timestamp_millis_opt(b.start).single() {
                Some(t) if long => t.format("%m-%d %H:%M").to_string(),
                Some(t) => t.format("%H:%M").to_string(),
                None => String::new(),
            }
        };
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + slot * (i as f64 + 0.5),
            top + plot_h + 18.0,
            escape(&text)
        );
    }
    let _ = write!(
        svg,
        r#"<text class="legend" x="{left}" y="{:.1}">■ events per {} (left)</text><text class="legend rate" x="{:.1}" y="{:.1}" text-anchor="end">— failure rate (right)</text></svg>"#,
        height - 4.0,
        escape(&bucket_name(t.bucket_ms)),
        left + plot_w,
        height - 4.0
    );
    svg
}

fn bucket_name(ms: i64) -> String {
    match ms {
        300_000 => "5 minutes".to_owned(),
        3_600_000 => "hour".to_owned(),
        86_400_000 => "day".to_owned(),
        _ => format!("{} s", ms / 1000),
    }
}

/// Horizontal bars: one per row, `(label, value, value as text)`, longest first as given.
pub fn bars(rows: &[(String, f64, String)], label: &str) -> String {
    let (row_h, left, right, top) = (24.0, 220.0, 140.0, 8.0);
    let height = top * 2.0 + row_h * rows.len().max(1) as f64;
    let plot_w = WIDTH - left - right;
    let max = rows.iter().map(|r| r.1).fold(0.0f64, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(label),
        escape(label)
    );
    for (i, (name, value, text)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let w = (plot_w * value / max).max(1.0);
        let shown: String = if name.chars().count() > 30 {
            name.chars().take(29).chain(std::iter::once('…')).collect()
        } else {
            name.clone()
        };
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect class="bar" x="{left}" y="{:.1}" width="{w:.1}" height="{:.1}"><title>{}: {}</title></rect><text class="axis" x="{:.1}" y="{:.1}">{}</text>"#,
            left - 8.0,
            y + row_h * 0.65,
            escape(&shown),
            y + 3.0,
            row_h - 6.0,
            escape(name),
            escape(text),
            left + w + 6.0,
            y + row_h * 0.65,
            escape(text)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The session-duration histogram.
pub fn durations(d: &DurationSummary) -> String {
    let rows: Vec<(String, f64, String)> = d
        .buckets
        .iter()
        .scan(0u64, |lower, b| {
            let name = match b.upper_s {
                Some(upper) => {
                    let name =
                        format!("{} to {}", super::duration(Some(*lower as f64)), super::duration(Some(upper as f64)));
                    *lower = upper;
                    name
                }
                None => format!("over {}", super::duration(Some(*lower as f64))),
            };
            Some((name, b.sessions as f64, count(b.sessions)))
        })
        .collect();
    bars(&rows, "Sessions per duration")
}
