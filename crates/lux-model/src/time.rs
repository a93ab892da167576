//! Event-time helpers: LUX keeps time as milliseconds since the Unix epoch (UTC) internally and
//! writes it as RFC 3339 with milliseconds (`2026-01-05T10:00:00.123Z`) in JSON.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// `2026-01-05T10:00:00.123Z`.
pub fn format_rfc3339_millis(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("invalid-time({ms})"),
    }
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
