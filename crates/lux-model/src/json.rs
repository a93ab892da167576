//! Writing the JSON of records by hand, byte for byte what `serde_json`'s compact writer gives,
//! for the one record written per event on the hot path (the `enriched` record, see
//! `lux_reference::EnrichedRecord::write_json`).
//!
//! `serde_json` escapes a string by looking each byte up in a table, and writes a flattened
//! struct through a map serializer; the transform stage spent 29% of its time there
//! (`perf`, `lux bench` at 150,000 events/s). Here a string is checked 16 bytes at a time
//! and copied whole when it needs no escape, as almost every string of a record does. The
//! equivalence with `serde_json` is tested on every kind of record the generator makes and on
//! strings with every kind of escape.

use crate::time::{format_rfc3339_millis, rfc3339_millis_text, Millis};

/// Appends `s` as a JSON string: quoted, with `"`, `\` and control characters escaped as
/// `serde_json` does (`\n`, `\t`, ... and `\u001f` for the others); everything else, non-ASCII
/// text included, as it is.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    if needs_escape(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// Whether any byte is `"`, `\` or a control character (below 0x20). Branch-free over blocks
/// of 16 bytes, which the compiler turns into vector compares.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    #[inline(always)]
    fn bad(b: u8) -> bool {
        (b < 0x20) | (b == b'"') | (b == b'\\')
    }
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |any, &b| any | bad(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| bad(b))
}

fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short == 0 {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `"name":`, for a name that needs no escape (the field names of LUX's records).
#[inline]
pub fn write_key(out: &mut Vec<u8>, name: &str) {
    debug_assert!(!needs_escape(name.as_bytes()), "{name:?} is not a plain field name");
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Writes one JSON object, its fields in the order given: `{` when made, `}` at
/// [`Object::end`].
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Starts a field: the comma before it, its name; returns the buffer to write its value to.
    pub fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_key(self.out, name);
        self.out
    }

    pub fn text(&mut self, name: &str, value: &str) {
        write_str(self.key(name), value);
    }

    pub fn time(&mut self, name: &str, ms: Millis) {
        write_time(self.key(name), ms);
    }

    pub fn bool(&mut self, name: &str, value: bool) {
        write_bool(self.key(name), value);
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// Appends a time as the quoted RFC 3339 text of [`format_rfc3339_millis`]
/// (`"2026-01-05T10:00:00.123Z"`), without allocating for the years 0 to 9999.
pub fn write_time(out: &mut Vec<u8>, ms: Millis) {
    match rfc3339_millis_text(ms) {
        Some(text) => {
            out.push(b'"');
            out.extend_from_slice(&text);
            out.push(b'"');
        }
        None => write_str(out, &format_rfc3339_millis(ms)),
    }
}

/// Appends an integer as `serde_json` writes it.
#[inline]
pub fn write_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `true` or `false`.
#[inline]
pub fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut every_byte: String = (0u8..0x80).map(char::from).collect();
        every_byte.push_str("é€😀 \u{7f}\u{80}\u{2028}");
        let long_plain = "a".repeat(100);
        let late_quote = format!("{}\"", "b".repeat(33));
        for s in ["", "plain", "\"", "\\", "a\nb", "\u{1}", "tab\there", &every_byte, &long_plain, &late_quote] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        use chrono::{SecondsFormat, TimeZone, Utc};
        // What `format_rfc3339_millis` was before it computed the text itself.
        let by_chrono = |ms: Millis| match Utc.timestamp_millis_opt(ms).single() {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => format!("invalid-time({ms})"),
        };
        let mut times = vec![0, 1, -1, 999, -86_400_000, 951_782_400_000, 1_767_571_200_123, 253_402_300_799_999];
        // A day every week from 1900 to 2100 (leap years, centuries), at odd moments of the day.
        let mut t = -2_208_988_800_000i64; // 1900-01-01
        while t < 4_102_444_800_000 {
            times.push(t);
            t += 86_400_000 * 7 + 3_723_456;
        }
        times.extend([i64::MIN, i64::MAX, -62_167_219_200_001, 253_402_300_800_000]);
        for ms in times {
            assert_eq!(format_rfc3339_millis(ms), by_chrono(ms));
            let mut out = Vec::new();
            write_time(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&by_chrono(ms)).unwrap());
        }
    }

    #[test]
    fn integers_and_booleans_are_written_as_serde_json_writes_them() {
        let mut out = Vec::new();
        write_int(&mut out, u64::MAX);
        out.push(b',');
        write_int(&mut out, i64::MIN);
        out.push(b',');
        write_bool(&mut out, true);
        out.push(b',');
        write_bool(&mut out, false);
        assert_eq!(out, serde_json::to_vec(&(u64::MAX, i64::MIN, true, false)).unwrap()[1..].split_last().unwrap().1);
    }
}
