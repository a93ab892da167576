//! Rendering a [`ReportModel`] in every format ([`render`]), and the number formats the HTML
//! page shares with its charts.

mod csv;
mod html;
mod json;
mod svg;

use crate::{RenderedReport, ReportError, ReportModel};

pub use self::csv::render_csv;
pub use self::html::render_html;
pub use self::json::render_json;

/// The model in every format.
pub fn render(model: &ReportModel) -> Result<RenderedReport, ReportError> {
    Ok(RenderedReport {
        period: model.period.period(),
        title: model.title.clone(),
        stem: model.period.period().stem(),
        html: render_html(model),
        csv: render_csv(model)?,
        json: render_json(model)?,
    })
}

/// `1234567` as `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio as a percentage with two decimals (`1.25%`), `–` when undefined.
pub(crate) fn percent(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{:.2}%", r * 100.0),
        _ => "–".to_owned(),
    }
}

/// Seconds for people: `45 s`, `12 min 5 s`, `3 h 20 min`, `2 d 4 h`.
pub(crate) fn duration(seconds: Option<f64>) -> String {
    let Some(s) = seconds.filter(|s| s.is_finite() && *s >= 0.0) else { return "–".to_owned() };
    let s = s.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3_599 => format!("{} min {} s", s / 60, s % 60),
        3_600..=86_399 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// A time as `2026-11-26 13:05 UTC` (`–` for none).
pub(crate) fn time(ms: Option<lux_model::Millis>) -> String {
    use chrono::TimeZone;
    match ms.and_then(|ms| chrono::Utc.timestamp_millis_opt(ms).single()) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "–".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(
            (count(0), count(999), count(1_000), count(1_234_567)),
            ("0".into(), "999".into(), "1,000".into(), "1,234,567".into())
        );
        assert_eq!(
            (percent(Some(0.0125)), percent(None), percent(Some(f64::NAN))),
            ("1.25%".into(), "–".into(), "–".into())
        );
        assert_eq!(duration(Some(3_725.0)), "1 h 2 min");
        assert_eq!(duration(Some(59.4)), "59 s");
        assert_eq!(duration(Some(90_000.0)), "1 d 1 h");
        assert_eq!(time(Some(0)), "1970-01-01 00:00 UTC");
    }
}
