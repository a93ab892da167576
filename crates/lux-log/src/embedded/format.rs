//! The on-disk formats of the segment files: records (CRC32C-framed) and the sparse index.
//!
//! A record, little-endian: `crc u32 | len u32 | offset u64 | timestamp i64 | key_len u32 | key |
//! value`. `len` counts the bytes after the `len` field; the CRC32C covers everything after the
//! `crc` field; `key_len = u32::MAX` means no key. An index entry (24 bytes): `offset u64 |
//! position u64 | max_timestamp_before i64`, one every [`INDEX_INTERVAL`] bytes of records.

/// Bytes of a record before its key.
pub const RECORD_HEADER: usize = 28;
/// The largest record accepted (a length above it is corruption, not a record).
pub const MAX_RECORD: usize = 64 << 20;
/// Bytes of records between two sparse index entries.
pub const INDEX_INTERVAL: u64 = 4096;
/// Bytes of one index entry.
pub const INDEX_ENTRY: usize = 24;
const NO_KEY: u32 = u32::MAX;

/// Appends one record to `buf`.
pub fn encode_record(buf: &mut Vec<u8>, offset: u64, timestamp_ms: i64, key: Option<&[u8]>, value: &[u8]) {
    let start = buf.len();
    let key_len = key.map_or(0, <[u8]>::len);
    let len = (RECORD_HEADER - 8 + key_len + value.len()) as u32;
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&timestamp_ms.to_le_bytes());
    buf.extend_from_slice(&key.map_or(NO_KEY, |k| k.len() as u32).to_le_bytes());
    if let Some(key) = key {
        buf.extend_from_slice(key);
    }
    buf.extend_from_slice(value);
    let crc = crc32c::crc32c(&buf[start + 4..]);
    buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// One record read back from a segment, borrowing its bytes.
#[derive(Debug)]
pub struct RecordRef<'a> {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
    /// Total bytes of the record (header included).
    pub size: usize,
}

/// Why the bytes at a position are not a whole record.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer bytes than the record needs: give more, or it is a torn tail.
    Incomplete { needed: usize },
    /// A length that cannot be.
    BadLength(u64),
    /// The CRC does not match the bytes.
    BadCrc,
    /// The key length runs past the record.
    BadKey,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Incomplete { needed } => write!(f, "a record cut short ({needed} bytes needed)"),
            RecordError::BadLength(len) => write!(f, "a record length of {len} bytes that cannot be"),
            RecordError::BadCrc => f.write_str("a record whose CRC32C does not match its bytes"),
            RecordError::BadKey => f.write_str("a record whose key length runs past the record"),
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Parses the record at the start of `bytes`, checking its length and CRC.
pub fn decode_record(bytes: &[u8]) -> Result<RecordRef<'_>, RecordError> {
    if bytes.len() < RECORD_HEADER {
        return Err(RecordError::Incomplete { needed: RECORD_HEADER });
    }
    let len = u32_at(bytes, 4) as usize;
    if !(RECORD_HEADER - 8..=MAX_RECORD).contains(&len) {
        return Err(RecordError::BadLength(len as u64));
    }
    let size = 8 + len;
    if bytes.len() < size {
        return Err(RecordError::Incomplete { needed: size });
    }
    let record = &bytes[..size];
    if crc32c::crc32c(&record[4..]) != u32_at(record, 0) {
        return Err(RecordError::BadCrc);
    }
    let key_len = u32_at(record, 24);
    let (key, value_start) = if key_len == NO_KEY {
        (None, RECORD_HEADER)
    } else {
        let end = RECORD_HEADER.checked_add(key_len as usize).filter(|end| *end <= size).ok_or(RecordError::BadKey)?;
        (Some(&record[RECORD_HEADER..end]), end)
    };
    Ok(RecordRef {
        offset: u64_at(record, 8),
        timestamp_ms: u64_at(record, 16) as i64,
        key,
        value: &record[value_start..],
        size,
    })
}

/// A sparse index entry: the record at `offset` starts at byte `position` of its segment, and
/// every record before it in the segment has a timestamp of at most `max_ts_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: u64,
    pub position: u64,
    pub max_ts_before: i64,
}

impl IndexEntry {
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.offset.to_le_bytes());
        buf.extend_from_slice(&self.position.to_le_bytes());
        buf.extend_from_slice(&self.max_ts_before.to_le_bytes());
    }

    /// Entries of an index file; a partial last entry is ignored.
    pub fn decode_all(bytes: &[u8]) -> Vec<IndexEntry> {
        bytes
            .chunks_exact(INDEX_ENTRY)
            .map(|e| IndexEntry { offset: u64_at(e, 0), position: u64_at(e, 8), max_ts_before: u64_at(e, 16) as i64 })
            .collect()
    }
}

/// Tracks when the next index entry is due while records are appended to (or scanned in) a
/// segment, so that writing and recovery produce the same entries.
#[derive(Debug, Clone, Copy)]
pub struct Indexer {
    pub last_indexed: Option<u64>,
    pub max_ts: i64,
}

impl Indexer {
    /// The entry for a record about to be placed at `position`, when one is due.
    pub fn before_record(&mut self, offset: u64, position: u64) -> Option<IndexEntry> {
        let due = self.last_indexed.is_none_or(|last| position >= last + INDEX_INTERVAL);
        if due {
            self.last_indexed = Some(position);
            Some(IndexEntry { offset, position, max_ts_before: self.max_ts })
        } else {
            None
        }
    }

    pub fn after_record(&mut self, timestamp_ms: i64) {
        self.max_ts = self.max_ts.max(timestamp_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_detected() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, -3, Some(b"key"), b"value");
        encode_record(&mut buf, 8, 5, None, b"");
        let first = decode_record(&buf).unwrap();
        assert_eq!(
            (first.offset, first.timestamp_ms, first.key, first.value),
            (7, -3, Some(&b"key"[..]), &b"value"[..])
        );
        let second = decode_record(&buf[first.size..]).unwrap();
        assert_eq!((second.offset, second.key, second.value), (8, None, &b""[..]));
        assert_eq!(first.size + second.size, buf.len());
        assert!(matches!(decode_record(&buf[..10]), Err(RecordError::Incomplete { .. })));
        let mut bad = buf.clone();
        bad[30] ^= 1;
        assert_eq!(decode_record(&bad).unwrap_err(), RecordError::BadCrc);
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_record(&bad), Err(RecordError::BadLength(_))));
    }
}
