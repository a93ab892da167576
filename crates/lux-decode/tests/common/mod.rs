//! Helpers shared by the decoder tests: raw records and a decoder with a fixed key.
#![allow(dead_code)]

use lux_decode::{DecodeConfig, Decoder};
use lux_model::{Format, Millis, RawRecord};

pub const KEY: &[u8] = b"test-subscriber-key";

/// `2026-01-05T10:00:30Z`.
pub fn ms(rfc3339: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map(|t| t.timestamp_millis()).unwrap_or(i64::MIN)
}

pub fn received() -> Millis {
    ms("2026-01-05T10:00:30Z")
}

pub fn decoder() -> Decoder {
    Decoder::new(&DecodeConfig::default(), KEY)
}

pub fn raw(format: Format, payload: &[u8]) -> RawRecord {
    RawRecord::new("test-src", format, received(), Some("192.0.2.10:514".to_owned()), payload.to_vec())
}

pub fn raw_at(format: Format, payload: &[u8], received_at: Millis, peer: Option<&str>) -> RawRecord {
    RawRecord::new("test-src", format, received_at, peer.map(str::to_owned), payload.to_vec())
}
