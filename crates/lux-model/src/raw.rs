//! What collectors write to the `raw` topic, and what the transform stage cannot decode.

use crate::time::{rfc3339, Millis};
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The wire format a raw record is expected to be in: a hint set by the collector that received
/// it (a RADIUS port only receives RADIUS, a syslog port syslog); `auto` lets the decoder sniff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Let the decoder recognise the format from the bytes.
    Auto,
    /// Syslog, RFC 5424 or RFC 3164 (detected per record).
    Syslog,
    /// A binary RADIUS accounting packet (RFC 2866).
    Radius,
    /// One JSON object per record.
    Json,
    /// `key=value` pairs separated by spaces.
    Kv,
    /// A vendor binary record described in config.
    Binary,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Syslog => "syslog",
            Format::Radius => "radius",
            Format::Json => "json",
            Format::Kv => "kv",
            Format::Binary => "binary",
        }
    }
}

/// Bytes as received. Serialised as `{"text": "..."}` when they are valid UTF-8 (readable in
/// `lux topic read`), else as `{"base64": "..."}`; both forms read back to the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload(pub Vec<u8>);

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PayloadRepr {
    Text(String),
    Base64(String),
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => PayloadRepr::Text(text.to_owned()).serialize(s),
            Err(_) => PayloadRepr::Base64(base64::engine::general_purpose::STANDARD.encode(&self.0)).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match PayloadRepr::deserialize(d)? {
            PayloadRepr::Text(text) => Ok(Payload(text.into_bytes())),
            PayloadRepr::Base64(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map(Payload)
                .map_err(|e| serde::de::Error::custom(format!("bad base64 payload: {e}"))),
        }
    }
}

/// One record as a collector received it from the network (or a file), before any decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    /// Always [`crate::schema::RAW`].
    pub schema: String,
    /// The id of the source (collector) that received the record, from config.
    pub source: String,
    /// The format the collector expects the bytes to be in.
    pub format: Format,
    /// Wall-clock time at which LUX received the record.
    #[serde(with = "rfc3339")]
    pub received_at: Millis,
    /// The sender's address (`ip:port`), when the record came from the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The bytes exactly as received.
    pub payload: Payload,
}

impl RawRecord {
    pub fn new(source: &str, format: Format, received_at: Millis, peer: Option<String>, payload: Vec<u8>) -> Self {
        RawRecord {
            schema: crate::schema::RAW.to_owned(),
            source: source.to_owned(),
            format,
            received_at,
            peer,
            payload: Payload(payload),
        }
    }
}

/// Why a record could not be turned into an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// The record ends before a field it announces.
    Truncated,
    /// A length field disagrees with the record's actual length.
    BadLength,
    /// A checksum or authenticator does not match.
    BadChecksum,
    /// Text that is not valid UTF-8 where UTF-8 is required.
    BadUtf8,
    /// The bytes match no format the source may send.
    UnknownFormat,
    /// A field the mapping needs (equipment id, timestamp, ...) is absent.
    MissingField,
    /// A field is present but its value cannot be used (a timestamp out of range, ...).
    BadValue,
    /// The record in the log is not a valid LUX raw record (written by another tool?).
    BadRecord,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Truncated => "truncated",
            DeadLetterReason::BadLength => "bad_length",
            DeadLetterReason::BadChecksum => "bad_checksum",
            DeadLetterReason::BadUtf8 => "bad_utf8",
            DeadLetterReason::UnknownFormat => "unknown_format",
            DeadLetterReason::MissingField => "missing_field",
            DeadLetterReason::BadValue => "bad_value",
            DeadLetterReason::BadRecord => "bad_record",
        }
    }
}

/// A record that could not be decoded, with the original bytes so that nothing is lost: it can
/// be fixed and replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// Always [`crate::schema::DEADLETTER`].
    pub schema: String,
    /// The typed reason.
    pub reason: DeadLetterReason,
    /// A human-readable explanation (which field, which offset, ...).
    pub detail: String,
    /// The stage that rejected the record (`transform`, ...).
    pub stage: String,
    /// Where the rejected record was in the log: `topic/partition/offset`.
    pub origin: String,
    /// The source id of the raw record, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The format hint of the raw record, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// When the raw record was received, when known.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339::option")]
    pub received_at: Option<Millis>,
    /// The sender's address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The original bytes.
    pub payload: Payload,
}

impl DeadLetter {
    /// A dead letter for a record of the log that is not what the stage reads (reason
    /// `bad_record`): `origin` is `topic/partition/offset`, `payload` the record's bytes.
    pub fn bad_record(stage: &str, origin: String, detail: String, payload: Vec<u8>) -> DeadLetter {
        DeadLetter {
            schema: crate::schema::DEADLETTER.to_owned(),
            reason: DeadLetterReason::BadRecord,
            detail,
            stage: stage.to_owned(),
            origin,
            source: None,
            format: None,
            received_at: None,
            peer: None,
            payload: Payload(payload),
        }
    }
}
