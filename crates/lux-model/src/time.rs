//! Event-time helpers: LUX keeps time as milliseconds since the Unix epoch (UTC) internally and
//! writes it as RFC 3339 with milliseconds (`2026-01-05T10:00:00.123Z`) in JSON.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// `2026-01-05T10:00:00.123Z`.
pub fn format_rfc3339_millis(ms: Millis) -> String {
    if let Some(text) = rfc3339_millis_text(ms) {
        // Always ASCII digits and separators.
        return String::from_utf8_lossy(&text).into_owned();
    }
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("invalid-time({ms})"),
    }
}

/// The text of [`format_rfc3339_millis`] for the years 0 to 9999 (`None` outside them), computed
/// without `chrono` and without allocating: times are written for every record (the JSON
/// records' times, `lux_model::json::write_time`).
pub(crate) fn rfc3339_millis_text(ms: Millis) -> Option<[u8; 24]> {
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    if !(0..=9999).contains(&year) {
        return None;
    }
    let in_day = ms.rem_euclid(86_400_000);
    let (seconds, millis) = (in_day / 1000, in_day % 1000);
    let two = |n: i64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    let [y0, y1] = two(year / 100);
    let [y2, y3] = two(year % 100);
    let [mo0, mo1] = two(month);
    let [d0, d1] = two(day);
    let [h0, h1] = two(seconds / 3600);
    let [mi0, mi1] = two(seconds / 60 % 60);
    let [s0, s1] = two(seconds % 60);
    let ms0 = b'0' + (millis / 100) as u8;
    let [ms1, ms2] = two(millis % 100);
    Some([
        y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0, s1, b'.', ms0, ms1, ms2,
        b'Z',
    ])
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Serde adapter: `Millis` <-> RFC 3339 string.
pub mod rfc3339 {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339_millis(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| serde::de::Error::custom(format!("bad RFC 3339 time {text:?}: {e}")))
    }

    /// The same for `Option<Millis>`.
    pub mod option {
        use super::*;
        pub fn serialize<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&format_rfc3339_millis(*ms)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
            let text: Option<String> = Option::deserialize(d)?;
            text.map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.timestamp_millis())
                    .map_err(|e| serde::de::Error::custom(format!("bad RFC 3339 time {text:?}: {e}")))
            })
            .transpose()
        }
    }
}
