//! The binary form of a cell's state entry, written after every batch that touched the cell.
//!
//! The JSON form of earlier versions (still read) cost two thirds of the engine's time: every
//! open cell a batch touched was rewritten as JSON, its subscriber sketch as base64 text that
//! the writer then scanned for characters to escape. This form is the same fields, in order,
//! little-endian:
//!
//! ```text
//! "QC" 2                                 magic and format
//! window_ms i64, window_start i64
//! dimension str, value str               str: u32 length, UTF-8 bytes
//! events attempts setup_successes auth_failures stops drops short_sessions failures
//! excluded_events                        u64 each
//! durations: count u64, sum_s u64, min_s opt, max_s opt, buckets u32 n + n u64
//!                                        opt: u8 0 (none) or 1 then u64
//! subscribers: form u8 (`s` or `d`), u32 length, the sketch's bytes
//! codes: u32 n, then n times (code str, count u64)
//! ```
//!
//! A JSON entry starts with `{`, so the first byte tells the two apart.

use super::{Cell, CellEntry};
use crate::hll::HyperLogLog;
use lux_model::SessionDurations;
use std::collections::BTreeMap;

const MAGIC: &[u8; 3] = b"QC\x02";

/// Appends the entry of `cell` to `out`.
pub(super) fn encode(out: &mut Vec<u8>, window_ms: i64, window_start: i64, dimension: &str, value: &str, cell: &Cell) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&window_ms.to_le_bytes());
    out.extend_from_slice(&window_start.to_le_bytes());
    put_str(out, dimension);
    put_str(out, value);
    for n in [
        cell.events,
        cell.attempts,
        cell.setup_successes,
        cell.auth_failures,
        cell.stops,
        cell.drops,
        cell.short_sessions,
        cell.failures,
        cell.excluded_events,
    ] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    let d = &cell.durations;
    out.extend_from_slice(&d.count.to_le_bytes());
    out.extend_from_slice(&d.sum_s.to_le_bytes());
    for opt in [d.min_s, d.max_s] {
        match opt {
            Some(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_le_bytes());
            }
            None => out.push(0),
        }
    }
    put_len(out, d.buckets.len());
    for n in &d.buckets {
        out.extend_from_slice(&n.to_le_bytes());
    }
    let form_at = out.len();
    out.extend_from_slice(&[0; 5]);
    let form = cell.subscribers.encode_bytes(out);
    let sketch_len = out.len() - form_at - 5;
    out[form_at] = form;
    out[form_at + 1..form_at + 5].copy_from_slice(&(sketch_len as u32).to_le_bytes());
    put_len(out, cell.codes.len());
    for (code, count) in &cell.codes {
        put_str(out, code);
        out.extend_from_slice(&count.to_le_bytes());
    }
}

/// Whether `value` is an entry of this form (else it is JSON).
pub(super) fn is_binary(value: &[u8]) -> bool {
    value.starts_with(&MAGIC[..2])
}

/// The entry [`encode`] wrote; an error says what is wrong with it.
pub(super) fn decode(bytes: &[u8]) -> Result<CellEntry, String> {
    let mut r = Reader { bytes, at: 0 };
    let magic = r.take(3)?;
    if magic != MAGIC {
        return Err(format!("a binary cell entry of format {} (this LUX reads format 2)", magic[2]));
    }
    let window_ms = r.i64()?;
    let window_start = r.i64()?;
    let dimension = r.str()?;
    let value = r.str()?;
    let mut counts = [0u64; 9];
    for n in &mut counts {
        *n = r.u64()?;
    }
    let [events, attempts, setup_successes, auth_failures, stops, drops, short_sessions, failures, excluded_events] =
        counts;
    let count = r.u64()?;
    let sum_s = r.u64()?;
    let min_s = r.opt()?;
    let max_s = r.opt()?;
    let buckets = (0..r.len(8)?).map(|_| r.u64()).collect::<Result<Vec<u64>, String>>()?;
    let form = r.take(1)?[0];
    let sketch_len = r.len(1)?;
    let subscribers = HyperLogLog::decode_bytes(form, r.take(sketch_len)?)?;
    let mut codes = BTreeMap::new();
    for _ in 0..r.len(12)? {
        let code = r.str()?;
        codes.insert(code, r.u64()?);
    }
    if r.at != bytes.len() {
        return Err(format!("{} bytes after the end of the cell", bytes.len() - r.at));
    }
    Ok(CellEntry {
        version: super::STATE_VERSION,
        window_ms,
        window_start,
        dimension,
        value,
        cell: Cell {
            events,
            attempts,
            setup_successes,
            auth_failures,
            stops,
            drops,
            short_sessions,
            failures,
            excluded_events,
            subscribers,
            durations: SessionDurations { count, sum_s, min_s, max_s, buckets },
            codes,
            persisted: false,
            dirty: false,
        },
    })
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Reads an entry front to back; every read checks that the bytes are there.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("truncated: {n} bytes wanted at byte {} of {}", self.at, self.bytes.len()));
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A count of items of at least `item_bytes` each, checked against the bytes left (so that
    /// a corrupt count cannot make the reader allocate for items that are not there).
    fn len(&mut self, item_bytes: usize) -> Result<usize, String> {
        let n = u32::from_le_bytes(self.array()?) as usize;
        if n.saturating_mul(item_bytes) > self.bytes.len() - self.at {
            return Err(format!("a count of {n} at byte {} runs past the end", self.at - 4));
        }
        Ok(n)
    }

    fn str(&mut self) -> Result<String, String> {
        let n = self.len(1)?;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map(str::to_owned).map_err(|e| format!("text at byte {at}: {e}"))
    }

    fn opt(&mut self) -> Result<Option<u64>, String> {
        match self.take(1)?[0] {
            0 => Ok(None),
            1 => self.u64().map(Some),
            other => Err(format!("an optional value flagged {other} (0 or 1)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(subscribers: u64) -> Cell {
        let mut cell = Cell { events: 7, attempts: 5, failures: 2, excluded_events: 1, ..Cell::default() };
        for i in 0..subscribers {
            cell.subscribers.insert(format!("subscriber-{i}").as_bytes());
        }
        cell.durations.add(30);
        cell.durations.add(4_000);
        cell.codes.insert("RADIUS-TC-2".into(), 3);
        cell.codes.insert("PPP-É".into(), 1);
        cell
    }

    #[test]
    fn a_cell_reads_back_as_it_was_written_sparse_or_dense_sketch() {
        for (subscribers, dense) in [(0, false), (20, false), (5_000, true)] {
            let cell = cell(subscribers);
            assert_eq!(matches!(cell.subscribers, HyperLogLog::Dense(_)), dense);
            let mut bytes = Vec::new();
            encode(&mut bytes, 60_000, 1_767_607_200_000, "site", "PAR-001", &cell);
            assert!(is_binary(&bytes));
            let entry = decode(&bytes).unwrap();
            assert_eq!(
                (entry.window_ms, entry.window_start, entry.dimension.as_str(), entry.value.as_str()),
                (60_000, 1_767_607_200_000, "site", "PAR-001")
            );
            assert_eq!(entry.cell, cell);
        }
        let empty = Cell::default();
        let mut bytes = Vec::new();
        encode(&mut bytes, 1, 2, "", "", &empty);
        assert_eq!(decode(&bytes).unwrap().cell, empty);
    }

    #[test]
    fn an_engine_restores_the_json_cells_of_earlier_versions_as_it_restores_binary_ones() {
        let config = crate::QoeConfig::default();
        let window_ms = super::super::millis(config.window);
        let start = 1_767_607_200_000 / window_ms * window_ms;
        let cell = cell(20);
        let key = super::super::cell_key(start, "site", "PAR-001");
        let json = serde_json::to_vec(&serde_json::json!({
            "version": 1, "window_ms": window_ms, "window_start": start,
            "dimension": "site", "value": "PAR-001", "cell": &cell,
        }))
        .unwrap();
        let mut binary = Vec::new();
        encode(&mut binary, window_ms, start, "site", "PAR-001", &cell);
        let indicators = [json, binary].map(|value| {
            let mut engine = super::super::QoeEngine::new(&config, &[0]).unwrap();
            let meta = serde_json::json!({
                "version": 1, "watermark": null,
                "partitions": { "0": start + 100 * window_ms }, "counters": {},
            });
            let meta = (super::super::META_KEY.to_vec(), serde_json::to_vec(&meta).unwrap());
            engine.restore(vec![meta, (key.clone(), value)]).unwrap();
            assert_eq!(engine.open_cells(), 1);
            engine.finish_input()
        });
        assert_eq!(indicators[0].len(), 1);
        assert_eq!(indicators[0][0].events, 7);
        assert_eq!(indicators[0], indicators[1]);
    }

    #[test]
    fn a_cells_key_is_its_window_start_dimension_and_value() {
        for start in [0, 7, -60_000, 1_767_607_200_000, i64::MIN, i64::MAX] {
            let key = super::super::cell_key(start, "site", "PAR-001");
            assert_eq!(key, format!("cell/{start}/site/PAR-001").into_bytes());
        }
    }

    #[test]
    fn every_cut_or_corrupted_entry_is_refused_without_panicking() {
        let mut bytes = Vec::new();
        encode(&mut bytes, 60_000, 0, "region", "IDF", &cell(20));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).unwrap_err().contains("after the end"));
        // Every byte set to every value of a few: an error or a cell, never a panic or a huge
        // allocation.
        for at in 0..bytes.len() {
            for v in [0u8, 1, 2, 0x7f, 0x80, 0xff] {
                let mut edited = bytes.clone();
                edited[at] = v;
                let _ = decode(&edited);
            }
        }
        let mut other_format = bytes.clone();
        other_format[2] = 3;
        assert!(decode(&other_format).unwrap_err().contains("format 3"));
    }
}
