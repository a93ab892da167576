//! LUX decoders: raw bytes as collected -> canonical [`lux_model::Event`]s.
//!
//! Syslog (RFC 5424 and RFC 3164 / Cisco, detected per record), RADIUS accounting (RFC 2866,
//! with the RFC 2865/2866/2869 dictionary and vendor dictionaries), JSON lines, key=value, and
//! vendor binary records described declaratively in config; each source's records are mapped to
//! the canonical event as its `[[transform.decode.sources]]` entry says. Pure: no I/O, no clock (the reception time comes with the record), and no panic on
//! any input: bytes that cannot be decoded give a [`DecodeError`] carrying the typed
//! [`DeadLetterReason`] the transform stage writes to the `deadletter` topic.
//!
//! Subscriber ids are personal data: the decoder replaces them with a keyed pseudonym
//! (HMAC-SHA256, cached per clear id) and removes the clear id from the message and the
//! attributes.
//!
//! # Decoding into a reused event
//!
//! [`Decoder::decode_event`] overwrites one [`Event`] per record, as the transform stage calls
//! it: the event's attributes keep their text in one buffer (names known at compile time are
//! `'static`, every other name and value a range of that buffer; numbers in place), its message
//! buffer is kept aside when a record has none, and the decoder keeps its own pseudonym cache
//! (no lock) in front of the shared one and its own event-id input buffer. In steady state a
//! record allocates nothing. [`Decoder::decode`] and [`Decoder::decode_into`] (`&self`, new
//! events) give the same events; the test `a_reused_event_gives_what_a_fresh_one_gives` holds
//! the two together.
//!
//! The common RFC 5424 record (valid UTF-8, a timestamp and a hostname, parameter values
//! without escapes, no repeated name, nothing to redact outside the `subscriber` parameter) is
//! read in one pass (`syslog::rfc5424_common`: header spaces found and checked 8 bytes at a
//! time, values as ranges of one copy of the record); anything else falls back to the full
//! parser, which gives the same event for the records both accept.
//!
//! # Cost per record
//!
//! Measured with callgrind (instruction counts repeat on a loaded machine, timings do not) on the
//! records of `benches/decode.rs` (2,000 per format from the demo generator and the demo sources;
//! `rfc5424-simple` is the same RFC 5424 lines without structured data, the issue's "simple"
//! line), steady state (pseudonym caches warm), decoding into one reused event:
//!
//! ```text
//! crates/lux-decode/scripts/decode-profile          # from the workspace root; all seven formats
//! ```
//!
//! | format   | main 6618527 | main d941131 | e079961 | main 62903b8 | main 7461ccd | main 08c86be | now |
//! |----------|------:|------:|------:|------:|------:|------:|------:|
//! | RFC 5424 | 8,186 | 7,486 | 4,870 | 4,608 | 4,493 | 3,926 | 3,947 |
//! | RFC 5424 simple | | | 3,126 | 2,855 | 2,790 | 2,436 | 2,439 |
//! | RADIUS   | 7,550 | 6,709 | 5,142 | 3,863 | 3,631 | 3,522 | 2,524 |
//! | RFC 3164 | 10,297 | 9,422 | 8,711 | 8,413 | 7,393 | 7,304 | 7,306 |
//! | JSON     | 19,100 | 17,661 | 18,542 | 18,548 | 18,538 | 18,551 | 18,553 |
//! | kv       | 13,938 | 13,077 | 13,148 | 13,156 | 13,122 | 13,178 | 13,164 |
//! | binary   | 14,844 | 13,611 | 14,234 | 14,241 | 14,273 | 14,218 | 14,230 |
//!
//! From 08c86be to now: RADIUS packets whose attribute types come in an order seen before are
//! decoded by that order's plan (`radius::Plans`: the event's attributes in name order, each
//! read from its attribute of the packet or derived; no dictionary look-up, no duplicate
//! check, no sort), which the generic path made and checked from an earlier packet (RADIUS
//! -998, -28%). The other rows moved by under 1%, by code layout.
//!
//! From 7461ccd to 08c86be (each step a commit with its numbers): the RFC 5424 fast path's byte scans
//! take 16 positions a step with SSE2 (`search::sse2`, held by tests to the byte-at-a-time
//! definitions of `search::portable`, which other targets run): the header's spaces and
//! printable bytes (was 8 a step, SWAR), the ends of parameter values (was a `memchr2` call
//! each, whose dispatch costs more than a short value), SD-NAMEs (was a table lookup a byte),
//! and the redaction candidates, read in place from the record instead of per field (RFC 5424
//! -426); the redaction candidates of the block at the record's end read from its last 16
//! bytes, shifted, instead of a zero-padded copy, and compared whole with no 8-byte prefilter,
//! candidates being rare (-75); the event id's hex digits all at once with SSE2 (-63, every
//! format); a RADIUS packet's attributes in a remembered name order gathered straight from it
//! (-37). Tried and dropped: the same shifted read of the last 16 bytes for every scan, through
//! one block type (+210: its bookkeeping cost more than the copies); the event id's input with
//! its domain and length as one 20-byte block (-1). The JSON, kv and binary rows moved by under
//! 1%, by the hex digits and by code layout.
//!
//! From 62903b8 to 7461ccd (branch `decode-speed`, each step a commit with its numbers): the
//! RFC 3339 cache holds the checked `YYYY-MM-DDTHH:MM` (was the date), so a record of the same
//! minute reads only its seconds, fraction and zone; short names' 8-byte sort prefixes and the
//! last bytes of a scan gathered without `memcpy`/`memset` calls; a remembered sort order
//! gathers the entries in one block copy (RADIUS -87); `AttributeList::concat` of a fixed
//! number of parts reserves once and stores the constant `sd.` inline (RFC 5424 -88) and pushes
//! are inlined (RADIUS -92); RFC 3164: `subscriber=` spans found lazily (no vector per text),
//! pseudonyms written in place while redacting, `cisco.*`/`syslog.*` attributes pushed by their
//! static names instead of the generic insert (-1,000). The one-pass RFC 5424 path is held to the
//! full parser by a seeded property test (`syslog::tests`: 40,000 random lines, escapes,
//! repeated names, ids to redact, BOM, NILVALUEs, byte edits). Tried and dropped (callgrind
//! counted more): one redaction scan of the whole record after the header, by `memchr` or by the
//! SWAR scan, instead of the message alone (values shorter than the needles are skipped anyway);
//! the event id's input built in three copies instead of four (-1).
//!
//! From e079961 to 62903b8 (each step a commit with its numbers): RADIUS IPv4 text from a table of
//! octet digits (-359); the attribute list fills and sorts the event's own
//! attributes in place instead of moving them in and out, so no emptied attributes are made
//! and dropped per record (RFC 5424 -214, RADIUS -295); RADIUS values typed inline and equal
//! names told apart by pointer or length before their bytes (-370); a remembered sort order
//! knows whether its names repeat, so the entries are gathered without comparing neighbours
//! (-151); 'static `*-Name` attribute names and IPv4 text written into a byte array with no UTF-8
//! check (-104); cheaper header masks and SD-NAME scan (RFC 5424 -66).
//!
//! Against a bare parser on the same lines: `syslog_loose` (`parse_message`, RFC 5424 variant: a
//! borrowed `Message`, no event, no id, no pseudonym) takes 6,620 instructions per demo line and
//! 3,147 per simple line (`crates/lux-decode/scripts/decode-profile syslog_loose
//! syslog_loose-simple`): LUX, decoding into full events, takes 32% fewer on the demo lines and
//! 11% fewer on the simple ones.
//!
//! Records per second of CPU time at 7461ccd and now (`decode_profile FORMAT cpu`, both binaries
//! and `syslog_loose` run one after the other, three times, on the 2-core VM at load 1.3 to
//! 0.5, 2026-11-27): RFC 5424 1.68 to 1.87 M against 1.74 to 2.03 M (`syslog_loose` 1.19 to
//! 1.32 M on the same lines); simple lines 2.89 to 3.01 M against 3.31 to 3.51 M
//! (`syslog_loose` 3.09 to 3.19 M); RADIUS 2.04 to 2.39 M against 2.08 to 2.31 M.
//!
//! Earlier, records per second of CPU time (`decode_profile FORMAT cpu`: this thread's CPU time, median
//! of five 1-second rounds, run one after the other on the 2-core VM at load 4.5 to 5): RFC 5424
//! 2.59 M (2.44 M at e079961) against `syslog_loose` 1.76 M on the same lines; simple lines
//! 4.15 M against `syslog_loose` 4.15 M; RADIUS 2.68 M (2.31 M at e079961). The criterion bench
//! (`cargo bench -p lux-decode --bench decode -- rfc5424`) runs both on the same lines in the
//! same run too (`decode` and `bare-parser/syslog_loose` in each RFC 5424 group), but its
//! wall-clock times swung by 2x to 5x between runs at that load.
//!
//! Where the RFC 5424 cost goes now (callgrind, per record): the event id ~380 (XXH3-128 of the
//! domain-separated payload ~240, building its input ~120, hex ~10), the structured data
//! ~300 (SD-NAMEs and value ends 16 bytes a step, the parameters' array), the redaction check
//! of the message and values ~220 (`search::Needles`: candidates by their first two bytes, 16
//! positions a step), the header ~150 (5 spaces and printable bytes, 16 bytes a step), the
//! attributes ~460 (one copy of the record, the `sd.` names concatenated, ranges checked on
//! character boundaries, pushes), the timestamp ~65 (~175 before the minute cache), the equipment id and the event's fields
//! ~180, the pseudonym ~100, the message copy ~50, and the rest spread thinly over bounds
//! checks, slicing, option and result plumbing and `memcpy` calls of a few dozen bytes. RADIUS
//! (~12 attributes a packet, by a plan): framing the attributes and finding the order's plan
//! ~230, reading, typing and writing the attributes in name order ~1,100 (two IPv4 texts ~80),
//! the event's fields ~130, the event id ~360, the pseudonym and the rest ~700; by the generic
//! path (an order seen once, or a value its plan does not expect): ~3,500.
//!
//! The target, 5M records/s per core where `syslog_loose` parses 5.5M simple lines, and
//! mapping to events not making LUX slower than that bare parser, measured as ratios in the
//! same rounds (BENCHMARKS.md, two sessions): simple lines decode at 0.89 to 1.31 of
//! `syslog_loose`'s parse rate, RADIUS packets at 0.85 to 1.04 of it (0.91 is the target's
//! ratio), lines with structured data at 1.4 to 1.75 times `syslog_loose`'s rate on the same
//! lines, but at about 0.6 of its simple-line rate. Going further there is no longer one big
//! item but the work itself, done eagerly for every record: it would take an event that keeps
//! spans of the record and defers typing, sorting and hex to serialisation (or skips them for
//! consumers that do not read them), and an event id kept binary.

mod binary;
mod config;
mod cursor;
mod dictionary;
mod mapping;
mod radius;
mod search;
mod source;
mod syslog;
mod text;
mod timestamp;

pub use config::{
    parse_timezone, ByteOrder, ChecksumAlgorithm, ChecksumConfig, DecodeConfig, EquipmentMapping, ErrorCodeMapping,
    FieldConfig, FieldMapping, FieldType, LayoutConfig, RadiusConfig, RadiusType, SourceConfig, TimeFormat,
    TimeMapping, TlvConfig, TlvTagConfig, ValueMapping, VendorAttributeConfig, VendorConfig, MAX_FUTURE_TOLERANCE,
    MAX_RECORD_SIZE,
};
pub use dictionary::{standard as radius_attribute, value_name as radius_value_name, StdAttr, BUILT_IN_VENDORS};
pub use mapping::{code_kind, msgid_kind, Pseudonymiser, CACHE_MAX_ID_LEN, CACHE_SHARDS, CACHE_SHARD_ENTRIES};
pub use source::TIME_SOURCE;

use chrono::FixedOffset;
use lux_model::{AttributeList, DeadLetterReason, Event, Format, RawRecord, SmallStr};
use mapping::LocalPseudonyms;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
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

/// Where a dialect parser writes what it finds: the event being decoded (its fields overwritten,
/// its buffers reused) and a spare message buffer, so that a record allocates nothing in steady
/// state. The clear subscriber id is returned by the parser instead: it never enters the event.
pub(crate) struct Out<'e> {
    pub ev: &'e mut Event,
    /// The buffer of the last message that went away (the next message is written into it).
    pub spare: &'e mut String,
    /// The day number of the last RFC 3339 date read.
    pub days: &'e mut timestamp::DayCache,
}

impl Out<'_> {
    /// Sets the event's message to `text` (`None` when empty), in a reused buffer.
    #[inline]
    pub fn message(&mut self, text: &str) {
        if text.is_empty() {
            self.no_message();
            return;
        }
        let mut m = std::mem::take(self.spare);
        m.clear();
        m.push_str(text);
        self.ev.message = Some(m);
    }

    /// Sets the event's message to `text` (`None` when empty).
    #[inline]
    pub fn message_owned(&mut self, text: String) {
        self.no_message();
        if !text.is_empty() {
            self.ev.message = Some(text);
        }
    }

    /// No message: its buffer is kept for the next one.
    #[inline]
    pub fn no_message(&mut self) {
        if let Some(m) = self.ev.message.take() {
            *self.spare = m;
        }
    }

    /// An empty attribute list on the buffers of the event's previous attributes, which its
    /// `finish` leaves sorted in the event.
    #[inline]
    pub fn attribute_list(&mut self) -> AttributeList<'_> {
        AttributeList::reusing(&mut self.ev.attributes)
    }
}

/// The clear subscriber id a parser found (borrowed from the record when it can be): hashed
/// into the event's pseudonym by [`Decoder`], never stored.
pub(crate) type Clear<'a> = Option<Cow<'a, [u8]>>;

/// Decodes raw records into events. `&self` methods can be shared between threads;
/// [`Decoder::decode_event`] (`&mut self`) reuses the decoder's own buffers and pseudonym
/// cache, with no lock: one decoder per thread (clones share the tables and the shared cache).
#[derive(Debug, Clone)]
pub struct Decoder {
    core: Core,
    scratch: Scratch,
}

/// The decoder's configuration, compiled.
#[derive(Debug, Clone)]
struct Core {
    timezone: FixedOffset,
    future_tolerance_ms: i64,
    pseudonymiser: Pseudonymiser,
    /// Compiled once; shared by clones.
    tables: Arc<Tables>,
}

/// What [`Decoder::decode_event`] keeps from record to record: a spare message buffer, the
/// decoder's own pseudonym cache, the event id's input buffer and the last date read. A clone
/// starts with empty ones.
#[derive(Debug, Default)]
struct Scratch {
    spare: String,
    pseudonyms: LocalPseudonyms,
    /// The event id's hash input.
    id_input: Vec<u8>,
    days: timestamp::DayCache,
    /// The plans of the RADIUS attribute orders seen lately.
    radius: radius::Plans,
}

impl Scratch {
    /// A decoder's own scratch, with its own pseudonym cache and RADIUS plans.
    fn new() -> Self {
        Scratch { pseudonyms: LocalPseudonyms::enabled(), radius: radius::Plans::enabled(), ..Scratch::default() }
    }
}

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Scratch::new()
    }
}

/// The lookup tables built from the configuration at [`Decoder::new`].
#[derive(Debug, Default)]
struct Tables {
    dictionary: dictionary::Dictionary,
    layouts: Vec<binary::Layout>,
    sources: HashMap<String, source::Source>,
}

impl Tables {
    fn new(cfg: &DecodeConfig) -> Tables {
        let layouts: Vec<binary::Layout> = cfg.layouts.iter().map(binary::Layout::new).collect();
        let mut sources = HashMap::new();
        for s in &cfg.sources {
            let layout = layouts.iter().position(|l| l.name == s.layout);
            // The first entry of a source wins ([`DecodeConfig::validate`] reports duplicates).
            sources.entry(s.source.clone()).or_insert_with(|| source::Source::new(s, layout));
        }
        Tables { dictionary: dictionary::Dictionary::new(&cfg.radius), layouts, sources }
    }
}

impl Decoder {
    /// A decoder for `cfg` (validated beforehand with [`DecodeConfig::validate`]; an invalid
    /// `timezone` falls back to UTC, see [`Decoder::try_new`] to refuse it) that pseudonymises
    /// subscriber ids with `subscriber_key`.
    pub fn new(cfg: &DecodeConfig, subscriber_key: &[u8]) -> Decoder {
        Decoder {
            core: Core {
                timezone: parse_timezone(&cfg.timezone).unwrap_or_else(|_| utc()),
                future_tolerance_ms: duration_ms(cfg.future_tolerance.min(MAX_FUTURE_TOLERANCE)),
                pseudonymiser: Pseudonymiser::new(subscriber_key),
                tables: Arc::new(Tables::new(cfg)),
            },
            scratch: Scratch::new(),
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
        self.core.pseudonymiser.pseudonym(clear)
    }

    /// Decodes one raw record. Every record gives one event today; the `Vec` leaves room for
    /// formats that batch several events in one record. A thin wrapper of
    /// [`Decoder::decode_into`].
    pub fn decode(&self, raw: &RawRecord) -> Result<Vec<Event>, DecodeError> {
        let mut events = Vec::with_capacity(1);
        self.decode_into(raw, &mut events)?;
        Ok(events)
    }

    /// Decodes one raw record and appends its events to `out`. On an error nothing is
    /// appended. Each event is a new one: [`Decoder::decode_event`] reuses one instead.
    pub fn decode_into(&self, raw: &RawRecord, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        let mut event = Event::default();
        self.core.decode(raw, &mut event, &mut Scratch::default())?;
        out.push(event);
        Ok(())
    }

    /// Decodes one raw record into `event`, overwriting every field and reusing its buffers
    /// (message, attributes) and the decoder's: the transform stage decodes every record into
    /// the same event, which allocates nothing in steady state. On an error `event` holds no
    /// meaningful event (its buffers are kept).
    ///
    /// The format is the source's `[[transform.decode.sources]]` entry's when it names one, else
    /// the record's hint; `auto` sniffs syslog, RADIUS and JSON from the bytes.
    pub fn decode_event(&mut self, raw: &RawRecord, event: &mut Event) -> Result<(), DecodeError> {
        self.core.decode(raw, event, &mut self.scratch)
    }

    /// Splits `input` (a file or a stream of records, for `lux decode`) into records: text
    /// formats (syslog, JSON, key=value) one record per line (`\r\n` or `\n`, empty lines
    /// skipped), RADIUS by each packet's length field, binary by the layout's length field or
    /// fixed size (the layout of `source`'s entry, or the only layout configured). `auto` takes
    /// the source's format, else RADIUS when the input starts with an Accounting-Request, else
    /// lines. A record that cannot be delimited stops the split with its error.
    pub fn split_records<'a>(
        &self,
        format: Format,
        source: Option<&str>,
        input: &'a [u8],
    ) -> Result<Vec<&'a [u8]>, DecodeError> {
        self.core.split_records(format, source, input)
    }
}

impl Core {
    /// Decodes `raw` into `ev` with the buffers of `scratch`.
    fn decode(&self, raw: &RawRecord, ev: &mut Event, scratch: &mut Scratch) -> Result<(), DecodeError> {
        let bytes = raw.payload.0.as_slice();
        if bytes.is_empty() {
            return err(DeadLetterReason::Truncated, "empty record");
        }
        let entry = if self.tables.sources.is_empty() { None } else { self.tables.sources.get(raw.source.as_str()) };
        let format = match entry.map(|e| e.format) {
            Some(f) if f != Format::Auto => f,
            _ => raw.format,
        };
        let format = match format {
            Format::Auto => sniff(bytes).ok_or_else(|| {
                DecodeError::new(
                    DeadLetterReason::UnknownFormat,
                    format!(
                        "format auto: the record is neither syslog (starts with '<' or a month), nor a RADIUS \
                         Accounting-Request (code 4 and a length field equal to the {} bytes received), nor a JSON \
                         object; first byte 0x{:02x}",
                        bytes.len(),
                        bytes.first().copied().unwrap_or(0)
                    ),
                )
            })?,
            f => f,
        };
        let input = source::Input {
            format,
            source: &raw.source,
            received_at: raw.received_at,
            pseudonymiser: &self.pseudonymiser,
        };
        let mut out = Out { ev, spare: &mut scratch.spare, days: &mut scratch.days };
        out.no_message();
        let clear = match format {
            Format::Syslog => {
                let ctx = syslog::Context {
                    timezone: self.timezone,
                    future_tolerance_ms: self.future_tolerance_ms,
                    received_at: raw.received_at,
                    peer: raw.peer.as_deref(),
                    pseudonymiser: &self.pseudonymiser,
                };
                let clear = syslog::decode(bytes, &ctx, &mut out)?;
                source::build(entry, Some(clear), &mut out, &input)?
            }
            Format::Radius => {
                let clear =
                    radius::decode(bytes, raw.received_at, &self.tables.dictionary, &mut out, &mut scratch.radius)?;
                source::build(entry, Some(clear), &mut out, &input)?
            }
            Format::Json => {
                out.ev.attributes = text::json(bytes, std::mem::take(&mut out.ev.attributes))?;
                source::build(entry, None, &mut out, &input)?
            }
            Format::Kv => {
                out.ev.attributes = text::kv(bytes, std::mem::take(&mut out.ev.attributes))?;
                source::build(entry, None, &mut out, &input)?
            }
            Format::Binary => {
                let layout = self.layout_of(entry, &raw.source)?;
                out.ev.attributes = layout.decode(bytes, std::mem::take(&mut out.ev.attributes))?;
                source::build(entry, None, &mut out, &input)?
            }
            Format::Auto => return err(DeadLetterReason::UnknownFormat, "format auto: not recognised"),
        };
        let ev = out.ev;
        ev.format = format;
        ev.event_id = lux_model::event_id_in(&mut scratch.id_input, bytes, 0);
        ev.received_at = raw.received_at;
        if ev.source != *raw.source {
            ev.source = SmallStr::new(&raw.source);
        }
        ev.subscriber = clear.as_deref().map(|clear| scratch.pseudonyms.pseudonym(&self.pseudonymiser, clear));
        Ok(())
    }

    fn layout_of(&self, entry: Option<&source::Source>, source: &str) -> Result<&binary::Layout, DecodeError> {
        match entry {
            Some(e) => e.layout.and_then(|i| self.tables.layouts.get(i)).ok_or_else(|| {
                DecodeError::new(
                    DeadLetterReason::MissingField,
                    format!("no layout: source {source:?} names layout {:?}, which is not configured", e.layout_name),
                )
            }),
            None => err(
                DeadLetterReason::MissingField,
                format!(
                    "no layout: source {source:?} has no [[transform.decode.sources]] entry naming a binary layout"
                ),
            ),
        }
    }

    fn split_records<'a>(
        &self,
        format: Format,
        source: Option<&str>,
        input: &'a [u8],
    ) -> Result<Vec<&'a [u8]>, DecodeError> {
        let entry = source.and_then(|s| self.tables.sources.get(s));
        let format = match (format, entry) {
            (Format::Auto, Some(e)) => e.format,
            (f, _) => f,
        };
        let format = match format {
            Format::Auto if input.first() == Some(&radius::ACCOUNTING_REQUEST) => Format::Radius,
            f => f,
        };
        let mut records = Vec::new();
        match format {
            Format::Radius => {
                let mut rest = input;
                while !rest.is_empty() {
                    let len = radius::packet_length(rest).map_err(|e| at_offset(e, input.len() - rest.len()))?;
                    let (record, tail) = rest.split_at(len.min(rest.len()));
                    records.push(record);
                    rest = tail;
                }
            }
            Format::Binary => {
                let layout = match entry {
                    Some(_) => self.layout_of(entry, source.unwrap_or(""))?,
                    None => match self.tables.layouts.as_slice() {
                        [only] => only,
                        _ => self.layout_of(None, source.unwrap_or("-"))?,
                    },
                };
                let mut rest = input;
                while !rest.is_empty() {
                    let len = layout.record_len(rest).map_err(|e| at_offset(e, input.len() - rest.len()))?;
                    let (record, tail) = rest.split_at(len.clamp(1, rest.len()));
                    records.push(record);
                    rest = tail;
                }
            }
            Format::Auto | Format::Syslog | Format::Json | Format::Kv => {
                for line in input.split(|b| *b == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if !line.is_empty() {
                        records.push(line);
                    }
                }
            }
        }
        Ok(records)
    }
}

/// Recognises the format of `bytes` for `Format::Auto`: syslog when it starts with `<` (a PRI)
/// or a month name (RFC 3164 without PRI); RADIUS when the first byte is 4
/// (Accounting-Request) and the length field equals the datagram's length; JSON when it starts
/// with `{`.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    match bytes.first() {
        Some(b'<') => return Some(Format::Syslog),
        Some(b'{') => return Some(Format::Json),
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

/// `e` with the byte offset of the record in the input prepended to its detail.
fn at_offset(e: DecodeError, offset: usize) -> DecodeError {
    DecodeError::new(e.reason, format!("record at byte {offset} of the input: {}", e.detail))
}
