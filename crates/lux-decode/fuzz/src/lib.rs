//! What the lux-decode fuzz targets share: one decoder per target (built once), the raw record
//! each target builds from the fuzz input, and the invariants checked on every result.
//!
//! The JSON, key=value and binary targets decode with the demo sources' configuration (the
//! `olt-alarm` binary layout and the source mappings of `benches/common`), so the fuzzer explores
//! the configured mapping code, not only "no source configured" errors.

use lux_decode::{DecodeConfig, DecodeError, Decoder};
use lux_model::{Event, Format, RawRecord};
use std::sync::OnceLock;

#[path = "../../benches/common/mod.rs"]
pub mod samples;

const KEY: &[u8] = b"fuzz-subscriber-key";
/// `2026-01-05T10:00:30Z`: the reception time of every fuzzed record.
pub const RECEIVED_AT: i64 = 1_767_607_230_000;

/// A fuzz target: one input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Syslog,
    Radius,
    Json,
    Kv,
    Binary,
}

impl Target {
    pub const ALL: [Target; 5] = [Target::Syslog, Target::Radius, Target::Json, Target::Kv, Target::Binary];

    /// The cargo fuzz target name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Syslog => "syslog",
            Target::Radius => "radius",
            Target::Json => "json",
            Target::Kv => "kv",
            Target::Binary => "binary",
        }
    }

    pub fn format(self) -> Format {
        match self {
            Target::Syslog => Format::Syslog,
            Target::Radius => Format::Radius,
            Target::Json => Format::Json,
            Target::Kv => Format::Kv,
            Target::Binary => Format::Binary,
        }
    }

    /// The source id the record comes from (the demo source configured for the format).
    pub fn source(self) -> &'static str {
        match self {
            Target::Syslog => "syslog-udp",
            Target::Radius => "radius-acct",
            Target::Json => samples::JSON_SOURCE,
            Target::Kv => samples::KV_SOURCE,
            Target::Binary => samples::BINARY_SOURCE,
        }
    }

    /// The raw record a collector of this format would write for `data`.
    pub fn record(self, data: &[u8]) -> RawRecord {
        RawRecord::new(self.source(), self.format(), RECEIVED_AT, Some("192.0.2.10:514".to_owned()), data.to_vec())
    }

    /// Decodes `data` as this format (and, for syslog and RADIUS, with format `auto` too) and
    /// checks the invariants, and that the transform stage's way of decoding gives the same
    /// ([`same_when_reused`]). Panics (a fuzz finding) when one does not hold.
    pub fn run(self, data: &[u8]) {
        let decoder = decoder();
        let raw = self.record(data);
        let decoded = decoder.decode(&raw);
        check(&raw, &decoded);
        same_when_reused(&raw, &decoded);
        if matches!(self, Target::Syslog | Target::Radius) {
            let auto = RawRecord { format: Format::Auto, ..raw };
            let decoded = decoder.decode(&auto);
            check(&auto, &decoded);
            same_when_reused(&auto, &decoded);
        }
    }
}

/// Checks that a decoder of its own (its pseudonym cache and RADIUS plans, kept from input to
/// input) decoding into one reused event, as the transform stage decodes, gives `decoded`: what
/// the shared decoder gave, event or error.
pub fn same_when_reused(raw: &RawRecord, decoded: &Result<Vec<Event>, DecodeError>) {
    thread_local! {
        static OWN: std::cell::RefCell<Option<(Decoder, Event)>> = const { std::cell::RefCell::new(None) };
    }
    OWN.with(|own| {
        let mut own = own.borrow_mut();
        let (own_decoder, event) = own.get_or_insert_with(|| (decoder().clone(), Event::default()));
        match (decoded, own_decoder.decode_event(raw, event)) {
            (Ok(events), Ok(())) => assert_eq!(events.first(), Some(&*event), "the reused event differs"),
            (Err(shared), Err(reused)) => assert_eq!(shared, &reused, "the errors differ"),
            (shared, reused) => panic!("shared decoder: {shared:?}; reused event: {reused:?}"),
        }
    });
}

/// The demo configuration; a broken one stops the fuzzer at its first input.
pub fn config() -> DecodeConfig {
    match samples::config() {
        Ok(cfg) => cfg,
        Err(e) => panic!("the fuzz targets' decode configuration is invalid: {e}"),
    }
}

/// The decoder every target uses (built once: its HMAC key schedule and layout tables).
pub fn decoder() -> &'static Decoder {
    static DECODER: OnceLock<Decoder> = OnceLock::new();
    DECODER.get_or_init(|| match Decoder::try_new(&config(), KEY) {
        Ok(d) => d,
        Err(problems) => panic!("the fuzz targets' decode configuration is invalid: {problems:?}"),
    })
}

/// The invariants of a decoding result: an error explains itself; events are numbered from the
/// payload (deterministic ids), carry the record's reception time and source, a concrete format,
/// and a pseudonym (32 hex digits) as subscriber, never a clear id.
pub fn check(raw: &RawRecord, result: &Result<Vec<Event>, DecodeError>) {
    match result {
        Err(e) => assert!(!e.detail.is_empty(), "a {:?} error without detail", e.reason),
        Ok(events) => {
            assert!(!events.is_empty(), "Ok with no event");
            for (i, e) in events.iter().enumerate() {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                assert_eq!(e.event_id, lux_model::event_id(&raw.payload.0, index), "event {i}: event_id");
                assert_eq!(e.received_at, raw.received_at, "event {i}: received_at");
                assert_eq!(e.source, raw.source, "event {i}: source");
                assert_ne!(e.format, Format::Auto, "event {i}: format auto");
                assert!(!e.equipment_id.is_empty(), "event {i}: empty equipment id");
                if let Some(s) = &e.subscriber {
                    assert!(
                        s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                        "event {i}: subscriber {s:?} is not a pseudonym"
                    );
                }
                // The event serialises (what the transform stage writes to `enriched`).
                assert!(serde_json::to_string(e).is_ok(), "event {i}: does not serialise");
            }
        }
    }
}
