//! The canonical records of LUX: what flows through the central log.
//!
//! ```text
//! equipment ──► RawRecord ──► [raw] ──► Event ──► EnrichedEvent ──► [enriched] ──► Alarm ──► [alarms]
//!                                  └─ undecodable ──► DeadLetter ──► [deadletter]
//! ```
//!
//! Every record here is serialised as one JSON object per log record. The JSON form of
//! [`EnrichedEvent`], [`Alarm`] and [`DeadLetter`] is the public contract for upstream
//! consumers (documented in the README); each carries a `schema` field naming its version.
//! This crate does no I/O.

mod alarm;
mod event;
mod raw;
mod time;

pub use alarm::{Alarm, AlarmState};
pub use event::{
    EnrichedEvent, EquipmentInfo, EquipmentKey, ErrorInfo, Event, EventKind, MaintenanceInfo, Outcome, ReferenceInfo,
    ReferenceStatus,
};
pub use raw::{DeadLetter, DeadLetterReason, Format, Payload, RawRecord};
pub use time::{format_rfc3339_millis, Millis};

/// Schema version names carried in the `schema` field of every public record.
pub mod schema {
    pub const RAW: &str = "lux.raw.v1";
    pub const ENRICHED: &str = "lux.enriched.v1";
    pub const DEADLETTER: &str = "lux.deadletter.v1";
    pub const ALARM: &str = "lux.alarm.v1";
}

/// Deterministic 128-bit identifier (32 lowercase hex characters) of `parts`, hashed with SHA-256.
///
/// The same parts always give the same id, across runs, machines and versions of LUX: this is
/// what lets downstream consumers detect duplicates.
pub fn stable_id(domain: &str, parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(domain.as_bytes());
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    hex(&digest[..16])
}

/// Lowercase hexadecimal of `bytes`, without a per-byte allocation (ids are made per event).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0x0f) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_stable_across_versions() {
        // Changing these breaks duplicate detection downstream: event ids are a public contract.
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::event_id(b"<134>1 2026-01-05T10:00:00Z host app - ID - msg", 0).len(), 32);
        assert_eq!(super::event_id(b"abc", 0), "a818aaea1e85b2a15dd013aeff9f3fca");
        assert_ne!(super::event_id(b"abc", 0), super::event_id(b"abc", 1));
    }
}

/// The deterministic `event_id` of the event decoded from `payload`: the same bytes always give
/// the same id, so a record collected twice (a retransmission, a replay) is detectable downstream.
/// `index` distinguishes several events decoded from one payload (0 for the first).
pub fn event_id(payload: &[u8], index: u32) -> String {
    stable_id("lux.event.v1", &[payload, &index.to_be_bytes()])
}

/// A problem found while validating a configuration section: the dotted key it concerns
/// (`alarm.rules[0].window`) and what is wrong. The `lux` binary adds the line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl ConfigProblem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem { key: key.into(), message: message.into() }
    }
}

/// The dotted key of `field` in the section `prefix` (`config_key("alarm", "rules")` is
/// `alarm.rules`; an empty prefix gives the field alone). Sections validate with their own key
/// as prefix, without a trailing dot.
pub fn config_key(prefix: &str, field: &str) -> String {
    let prefix = prefix.trim_end_matches('.');
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}
