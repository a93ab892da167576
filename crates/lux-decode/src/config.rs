//! `DecodeConfig`: the `[transform.decode]` configuration section, and its validation.

use chrono::FixedOffset;
use lux_model::ConfigProblem;
use std::time::Duration;

/// The longest `future_tolerance` accepted: beyond half a year, "this year or the previous one"
/// becomes ambiguous for a timestamp without a year.
pub const MAX_FUTURE_TOLERANCE: Duration = Duration::from_secs(180 * 24 * 3600);

/// How raw records are decoded into events (`[transform.decode]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// The time zone of RFC 3164 (BSD / Cisco) syslog timestamps, which carry none: `UTC` or a
    /// fixed offset from UTC such as `+01:00` or `-05:30`. RFC 5424 timestamps carry their own
    /// offset and ignore this setting.
    pub timezone: String,
    /// RFC 3164 timestamps carry no year: a record takes the year of its reception time, or the
    /// previous year when that would put it more than this much after its reception (a record
    /// of December 31st received on January 1st). At most 180 days.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub future_tolerance: Duration,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig { timezone: "UTC".to_owned(), future_tolerance: Duration::from_secs(24 * 3600) }
    }
}

impl DecodeConfig {
    /// Every problem of this section, with its full dotted key (`prefix` is the section's key,
    /// e.g. `transform.decode`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if let Err(message) = parse_timezone(&self.timezone) {
            problems.push(ConfigProblem::new(key(prefix, "timezone"), message));
        }
        if self.future_tolerance > MAX_FUTURE_TOLERANCE {
            problems.push(ConfigProblem::new(
                key(prefix, "future_tolerance"),
                format!(
                    "{} is too long: at most 180 days (beyond, the year of a timestamp without one is ambiguous)",
                    humantime_format(self.future_tolerance)
                ),
            ));
        }
        problems
    }
}

fn key(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

fn humantime_format(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

/// Parses `UTC`, `Z`, `GMT` or a fixed offset `+hh:mm` / `-hh:mm` (also `+hhmm`, `+hh`).
pub fn parse_timezone(text: &str) -> Result<FixedOffset, String> {
    let bad =
        || format!("{text:?} is not a time zone: expected \"UTC\" or a fixed offset such as \"+01:00\" or \"-05:30\"");
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("gmt") || t == "Z" {
        return FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1i32, t.get(1..).unwrap_or("")),
        Some(b'-') => (-1i32, t.get(1..).unwrap_or("")),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || rest.matches(':').count() > 1 {
        return Err(bad());
    }
    let (hh, mm) = match digits.len() {
        2 => (digits.parse::<i32>().map_err(|_| bad())?, 0),
        4 => (
            digits.get(..2).and_then(|s| s.parse::<i32>().ok()).ok_or_else(bad)?,
            digits.get(2..).and_then(|s| s.parse::<i32>().ok()).ok_or_else(bad)?,
        ),
        _ => return Err(bad()),
    };
    if hh > 14 || mm > 59 {
        return Err(format!("{text:?} is not a valid UTC offset: hours 0-14, minutes 0-59"));
    }
    FixedOffset::east_opt(sign * (hh * 3600 + mm * 60)).ok_or_else(bad)
}
