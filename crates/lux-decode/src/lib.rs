//! LUX decoders: raw bytes as collected -> canonical [`lux_model::Event`]s.
//!
//! Syslog (RFC 5424 and RFC 3164 / Cisco, detected per record) and RADIUS accounting
//! (RFC 2866). Pure: no I/O, no clock (the reception time comes with the record), and no panic on
//! any input: bytes that cannot be decoded give a [`DecodeError`] carrying the typed
//! [`DeadLetterReason`] the transform stage writes to the `deadletter` topic.
//!
//! Subscriber ids are personal data: the decoder replaces them with a keyed pseudonym
//! (HMAC-SHA256) and removes the clear id from the message and the attributes.

mod config;
mod cursor;
mod mapping;
mod radius;
mod syslog;

pub use config::{parse_timezone, DecodeConfig, MAX_FUTURE_TOLERANCE};
pub use mapping::{code_kind, msgid_kind, Pseudonymiser};

use chrono::FixedOffset;
use lux_model::{DeadLetterReason, EquipmentKey, Event, EventKind, Format, Millis, Outcome, RawRecord};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a raw record could not be decoded: the dead-letter reason and a human-readable detail
/// (which field, at which byte offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct DecodeError {
    pub reason: DeadLetterReason,
    pub detail: String,
}

impl DecodeError {
    pub fn new(reason: DeadLetterReason, detail: impl Into<String>) -> Self {
        DecodeError { reason, detail: detail.into() }
    }
}

pub(crate) fn err<T>(reason: DeadLetterReason, detail: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError::new(reason, detail))
}

/// What a dialect parser found, before the common finishing (ids, pseudonym).
pub(crate) struct Draft {
    pub format: Format,
    pub event_time: Millis,
    pub equipment_id: String,
    pub equipment_key: EquipmentKey,
    pub kind: EventKind,
    pub outcome: Outcome,
    pub error_code: Option<String>,
    /// The clear subscriber id: hashed by [`Decoder`], never stored.
    pub subscriber_clear: Option<Vec<u8>>,
    /// Already redacted.
    pub message: Option<String>,
    /// Already free of the clear subscriber id.
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Decodes raw records into events. Cheap to share between threads (`&self` only).
#[derive(Debug, Clone)]
pub struct Decoder {
    timezone: FixedOffset,
    future_tolerance_ms: i64,
    pseudonymiser: Pseudonymiser,
}

impl Decoder {
    /// A decoder for `cfg` (validated beforehand with [`DecodeConfig::validate`]; an invalid
    /// `timezone` falls back to UTC, see [`Decoder::try_new`] to refuse it) that pseudonymises
    /// subscriber ids with `subscriber_key`.
    pub fn new(cfg: &DecodeConfig, subscriber_key: &[u8]) -> Decoder {
        Decoder {
            timezone: parse_timezone(&cfg.timezone).unwrap_or_else(|_| utc()),
            future_tolerance_ms: duration_ms(cfg.future_tolerance.min(MAX_FUTURE_TOLERANCE)),
            pseudonymiser: Pseudonymiser::new(subscriber_key),
        }
    }

    /// Like [`Decoder::new`], but refuses an invalid configuration with every problem found
    /// (keys under `transform.decode`).
    pub fn try_new(cfg: &DecodeConfig, subscriber_key: &[u8]) -> Result<Decoder, Vec<lux_model::ConfigProblem>> {
        let problems = cfg.validate("transform.decode");
        if problems.is_empty() {
            Ok(Decoder::new(cfg, subscriber_key))
        } else {
            Err(problems)
        }
    }

    /// The pseudonym of a clear subscriber id, as it appears in `Event::subscriber`.
    pub fn pseudonym(&self, clear: &[u8]) -> String {
        self.pseudonymiser.pseudonym(clear)
    }

    /// Decodes one raw record. Every record gives one event today; the `Vec` leaves room for
    /// formats that batch several events in one record.
    pub fn decode(&self, raw: &RawRecord) -> Result<Vec<Event>, DecodeError> {
        let bytes = raw.payload.0.as_slice();
        if bytes.is_empty() {
            return err(DeadLetterReason::Truncated, "empty record");
        }
        let draft = match raw.format {
            Format::Syslog => self.syslog(raw, bytes)?,
            Format::Radius => radius::decode(bytes, raw.received_at)?,
            Format::Auto => match sniff(bytes) {
                Some(Format::Syslog) => self.syslog(raw, bytes)?,
                Some(Format::Radius) => radius::decode(bytes, raw.received_at)?,
                _ => {
                    return err(
                        DeadLetterReason::UnknownFormat,
                        format!(
                            "format auto: the record is neither syslog (starts with '<' or a month) nor a RADIUS \
                             Accounting-Request (code 4 and a length field equal to the {} bytes received); first byte 0x{:02x}",
                            bytes.len(),
                            bytes.first().copied().unwrap_or(0)
                        ),
                    )
                }
            },
            Format::Json | Format::Kv | Format::Binary => {
                return err(
                    DeadLetterReason::UnknownFormat,
                    format!("format {} is not supported by this version of the decoder (syslog and radius are)", raw.format.as_str()),
                )
            }
        };
        Ok(vec![self.finish(raw, draft)])
    }

    fn syslog(&self, raw: &RawRecord, bytes: &[u8]) -> Result<Draft, DecodeError> {
        let ctx = syslog::Context {
            timezone: self.timezone,
            future_tolerance_ms: self.future_tolerance_ms,
            received_at: raw.received_at,
            peer: raw.peer.as_deref(),
            pseudonymiser: &self.pseudonymiser,
        };
        syslog::decode(bytes, &ctx)
    }

    fn finish(&self, raw: &RawRecord, draft: Draft) -> Event {
        Event {
            event_id: lux_model::event_id(&raw.payload.0, 0),
            event_time: draft.event_time,
            received_at: raw.received_at,
            source: raw.source.clone(),
            format: draft.format,
            equipment_id: draft.equipment_id,
            equipment_key: draft.equipment_key,
            kind: draft.kind,
            outcome: draft.outcome,
            error_code: draft.error_code,
            subscriber: draft.subscriber_clear.as_deref().map(|clear| self.pseudonymiser.pseudonym(clear)),
            message: draft.message,
            attributes: draft.attributes,
        }
    }
}

/// Recognises the format of `bytes` for `Format::Auto`: syslog when it starts with `<` (a PRI)
/// or a month name (RFC 3164 without PRI); RADIUS when the first byte is 4
/// (Accounting-Request) and the length field equals the datagram's length.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    match bytes.first() {
        Some(b'<') => return Some(Format::Syslog),
        Some(4) => {
            if let (Some(hi), Some(lo)) = (bytes.get(2), bytes.get(3)) {
                if usize::from(u16::from_be_bytes([*hi, *lo])) == bytes.len() {
                    return Some(Format::Radius);
                }
            }
        }
        _ => {}
    }
    if bytes.get(..3).is_some_and(|m| syslog::month(m).is_some()) && bytes.get(3) == Some(&b' ') {
        return Some(Format::Syslog);
    }
    None
}

fn utc() -> FixedOffset {
    use chrono::Offset;
    chrono::Utc.fix()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
