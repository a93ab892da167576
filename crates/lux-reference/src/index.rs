//! The lookup structures of a snapshot, built for the hot path of the join.
//!
//! - Join keys are fixed 24-byte values ([`Key`]) compared as three words (no pointer to follow,
//!   no `memcmp` call). A probe is prepared with at most four word loads (overlapping loads for
//!   the tail, no byte loop, no `memcpy` call) and hashed with two folded 64x64->128-bit
//!   multiplications of those words: about 25 instructions for a 16-byte hostname.
//! - The tables ([`Index`]) are open-addressing arrays of 8-byte entries (a 32-bit tag of the
//!   hash and a 4-byte [`Slot`]), at most half full, probed linearly: a lookup reads one cache
//!   line of the table (rarely two) and then the row the slot points to, where the key is
//!   compared (the join reads the row anyway). A hashbrown table read a control group and then a
//!   slot array: one more cache miss per lookup when the referential does not fit in cache.
//!   A million keys take 16 MB of table.
//! - A key with several rows (validity intervals) points to a list of [`Dated`] rows that carry
//!   their validity, so that the row valid at the event's time is chosen without reading the
//!   others.

use lux_model::Millis;

/// Bytes of a [`Key`]; text up to `KEY_BYTES - 1` bytes long is stored inline.
const KEY_BYTES: usize = 24;
const INLINE: usize = KEY_BYTES - 1;
/// Last byte of a key whose text is too long to be inline (held in a [`LongKeys`]).
const LONG: u8 = u8::MAX;

/// Constants of the key hash (hexadecimal digits of pi: no structure shared with text).
const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d0;

/// The folded multiply: both halves of the 128-bit product, xored. Every input bit reaches
/// every output bit.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The hash of a key's three words.
#[inline]
fn hash_words([a, b, c]: [u64; 3]) -> u64 {
    fold(fold(a ^ K0, b ^ K1) ^ c, K2)
}

/// The eight bytes of `bytes` from `at`, little-endian (0 if out of range, which callers rule
/// out).
#[inline]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    bytes.get(at..at + 8).and_then(|s| <[u8; 8]>::try_from(s).ok()).map_or(0, u64::from_le_bytes)
}

/// The four bytes of `bytes` from `at`, little-endian, in the low half of a word.
#[inline]
fn half_word_at(bytes: &[u8], at: usize) -> u64 {
    bytes.get(at..at + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()).map_or(0, |b| u64::from(u32::from_le_bytes(b)))
}

/// The inline form of `text` as three little-endian words: its bytes zero padded, its length
/// in the last byte; `None` when it is longer than 23 bytes.
#[inline]
fn inline_words(text: &str) -> Option<[u64; 3]> {
    let bytes = text.as_bytes();
    let len = bytes.len();
    if len > INLINE {
        return None;
    }
    let mut words = [0u64; 3];
    // The last eight bytes of the text, shifted so that only those after `taken` remain, at the
    // bottom of the word (none when `taken == len`: a shift by 64 gives 0).
    let tail = |taken: usize| word_at(bytes, len - 8).checked_shr((8 * (8 + taken - len)) as u32).unwrap_or(0);
    if len >= 16 {
        words = [word_at(bytes, 0), word_at(bytes, 8), tail(16)];
    } else if len >= 8 {
        words = [word_at(bytes, 0), tail(8), 0];
    } else if len >= 4 {
        // Two overlapping 4-byte loads: the bytes they share are the same.
        let (head, last) = (half_word_at(bytes, 0), half_word_at(bytes, len - 4));
        words[0] = head | (last << (8 * (len - 4)));
    } else if len > 0 {
        // First, middle and last byte (the same byte more than once when shorter than 3).
        let byte = |i: usize| bytes.get(i).map_or(0, |&b| u64::from(b));
        words[0] = byte(0) | (byte(len / 2) << (8 * (len / 2))) | (byte(len - 1) << (8 * (len - 1)));
    }
    words[2] |= (len as u64) << 56;
    Some(words)
}

/// A join key (equipment id, hostname, NAS-Identifier, error code): its text inline, zero
/// padded, with its length in the last byte; or, for text longer than 23 bytes (rare: long
/// FQDNs), the index of the text in the snapshot's [`LongKeys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key([u8; KEY_BYTES]);

impl Key {
    fn from_words(words: [u64; 3]) -> Key {
        let mut bytes = [0u8; KEY_BYTES];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Key(bytes)
    }

    /// The key of `text` when it fits inline.
    fn inline(text: &str) -> Option<Key> {
        inline_words(text).map(Key::from_words)
    }

    fn long(index: u32) -> Key {
        let mut bytes = [0u8; KEY_BYTES];
        for (b, i) in bytes.iter_mut().zip(index.to_le_bytes()) {
            *b = i;
        }
        if let Some(last) = bytes.last_mut() {
            *last = LONG;
        }
        Key(bytes)
    }

    fn long_index(&self) -> Option<usize> {
        let [a, b, c, d, ..] = self.0;
        (self.0.last() == Some(&LONG)).then(|| u32::from_le_bytes([a, b, c, d]) as usize)
    }

    /// The key as three words, for comparisons (three integer compares, no `memcmp`).
    #[inline]
    fn words(&self) -> [u64; 3] {
        let mut words = [0u64; 3];
        for (w, bytes) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            *w = u64::from_le_bytes(b);
        }
        words
    }

    /// The text of the key (`long` holds the texts of long keys).
    pub(crate) fn text<'a>(&'a self, long: &'a LongKeys) -> &'a str {
        match self.long_index() {
            Some(i) => long.0.get(i).map_or("", |text| text),
            None => {
                let len = self.0.last().map_or(0, |&len| usize::from(len));
                self.0.get(..len).and_then(|bytes| std::str::from_utf8(bytes).ok()).unwrap_or("")
            }
        }
    }
}

/// The texts of keys too long to be inline.
#[derive(Debug, Default)]
pub(crate) struct LongKeys(Vec<Box<str>>);

impl LongKeys {
    /// The key to store for `text` (adding it here when it is long).
    pub(crate) fn key(&mut self, text: &str) -> Key {
        Key::inline(text).unwrap_or_else(|| {
            self.0.push(text.into());
            Key::long(u32::try_from(self.0.len() - 1).unwrap_or(u32::MAX))
        })
    }
}

/// The hash of a text too long to be inline: its 8-byte chunks folded in turn.
fn hash_long(text: &str) -> u64 {
    let mut h = K0 ^ text.len() as u64;
    for chunk in text.as_bytes().chunks(8) {
        let mut b = [0u8; 8];
        b.get_mut(..chunk.len()).unwrap_or_default().copy_from_slice(chunk);
        h = fold(h ^ u64::from_le_bytes(b), K1);
    }
    fold(h, K2)
}

/// A key being looked up: prepared once (copied inline, hashed), then compared against stored
/// keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe<'a> {
    text: &'a str,
    inline: Option<[u64; 3]>,
    /// The hash of the text, as [`Index`] tables are built with.
    pub(crate) hash: u64,
}

impl<'a> Probe<'a> {
    #[inline]
    pub(crate) fn new(text: &'a str) -> Probe<'a> {
        let inline = inline_words(text);
        let hash = match inline {
            Some(words) => hash_words(words),
            None => hash_long(text),
        };
        Probe { text, inline, hash }
    }

    /// Whether `key` (stored with `long` for its long texts) is this probe's text.
    #[inline]
    pub(crate) fn matches(&self, key: &Key, long: &LongKeys) -> bool {
        match &self.inline {
            Some(words) => *words == key.words(),
            None => key.long_index().and_then(|i| long.0.get(i)).is_some_and(|text| **text == *self.text),
        }
    }
}

/// The rows under one key: one row index inline (most keys), or, with the high bit set, an
/// index into [`Multi`] (a key with several validity intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(u32);

const MULTI: u32 = 1 << 31;

impl Slot {
    /// The slot of one row, or of one entry of a side table (`i` < 2^31).
    pub(crate) fn one(i: u32) -> Slot {
        Slot(i & !MULTI)
    }

    /// The row of a slot of one row; `None` for a slot of several (see [`Multi::rows`]).
    #[inline]
    pub(crate) fn single(self) -> Option<u32> {
        (self.0 & MULTI == 0).then_some(self.0)
    }
}

/// One row of a key with several, with its validity (first and last millisecond, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dated {
    pub(crate) row: u32,
    pub(crate) from: Millis,
    pub(crate) until: Millis,
}

impl Dated {
    #[inline]
    pub(crate) fn valid_at(&self, t: Millis) -> bool {
        self.from <= t && t <= self.until
    }
}

/// The row lists of keys with several rows (see [`Slot`]), in one vector.
#[derive(Debug, Default)]
pub(crate) struct Multi {
    /// Start and length in `rows` of each list.
    lists: Vec<(u32, u32)>,
    rows: Vec<Dated>,
}

impl Multi {
    /// The rows of a slot of several rows (empty for a slot of one).
    #[inline]
    pub(crate) fn rows(&self, slot: Slot) -> &[Dated] {
        if slot.0 & MULTI == 0 {
            return &[];
        }
        let Some(&(start, len)) = self.lists.get((slot.0 & !MULTI) as usize) else { return &[] };
        self.rows.get(start as usize..start as usize + len as usize).unwrap_or_default()
    }

    /// The slot of `rows` (not empty), adding a list when there are several.
    pub(crate) fn slot(&mut self, rows: &[Dated]) -> Slot {
        match rows {
            [one] => Slot::one(one.row),
            _ => {
                self.lists.push((index_of(self.rows.len()), index_of(rows.len())));
                self.rows.extend_from_slice(rows);
                Slot(index_of(self.lists.len() - 1) | MULTI)
            }
        }
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.lists.shrink_to_fit();
        self.rows.shrink_to_fit();
    }
}

/// An index into a snapshot's rows (a snapshot holds fewer than 2 billion rows).
pub(crate) fn index_of(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// One entry of an [`Index`]: the low 32 bits of the key's hash and its slot.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    slot: u32,
}

/// The `slot` of a free entry (no slot has every bit set: see [`index_of`]).
const FREE: u32 = u32::MAX;

/// Key -> slot, for one kind of key: an open-addressing table at most half full, probed
/// linearly from the entry given by the high bits of the hash. The keys are not in the table:
/// `find` is given how to compare a slot's key.
#[derive(Debug, Default)]
pub(crate) struct Index(Box<[Entry]>);

impl Index {
    /// Builds the table from `(slot, hash)` pairs whose slots are distinct.
    pub(crate) fn from_slots(entries: Vec<(Slot, u64)>) -> Index {
        if entries.is_empty() {
            return Index::default();
        }
        let capacity = entries.len().saturating_mul(2);
        let mut table = vec![Entry { tag: 0, slot: FREE }; capacity].into_boxed_slice();
        for (slot, hash) in entries {
            let mut at = home(hash, capacity);
            // At most half full: a free entry is always found.
            for _ in 0..capacity {
                match table.get_mut(at) {
                    Some(e) if e.slot == FREE => {
                        *e = Entry { tag: hash as u32, slot: slot.0 };
                        break;
                    }
                    _ => at = if at + 1 == capacity { 0 } else { at + 1 },
                }
            }
        }
        Index(table)
    }

    /// The slot of the key hashing to `hash` for which `is_key(slot)`.
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, mut is_key: impl FnMut(Slot) -> bool) -> Option<Slot> {
        let capacity = self.0.len();
        if capacity == 0 {
            return None;
        }
        let mut at = home(hash, capacity);
        let tag = hash as u32;
        for _ in 0..capacity {
            let e = self.0.get(at)?;
            if e.slot == FREE {
                return None;
            }
            if e.tag == tag && is_key(Slot(e.slot)) {
                return Some(Slot(e.slot));
            }
            at = if at + 1 == capacity { 0 } else { at + 1 };
        }
        None
    }

    /// Bytes of the table.
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.0)
    }
}

/// The first entry to probe for `hash` in a table of `capacity` entries (the high bits of the
/// hash, scaled: no power-of-two capacity needed).
#[inline]
fn home(hash: u64, capacity: usize) -> usize {
    ((u128::from(hash) * capacity as u128) >> 64) as usize
}

/// The hash of a text key for an [`Index`] (as its [`Probe`] has it).
pub(crate) fn hash_text(text: &str) -> u64 {
    Probe::new(text).hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_short_and_long_are_found_by_text() {
        let long_text = "a-very-long-hostname-beyond-the-inline-size.example.net";
        let texts = [
            "",
            "a",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "bng-par001-01",
            "cpe-par001-00001",
            "exactly-23-bytes-long!!",
            "é-unicode-hôte",
            long_text,
        ];
        let mut long = LongKeys::default();
        let keys: Vec<Key> = texts.iter().map(|t| long.key(t)).collect();
        assert!(Key::inline("exactly-23-bytes-long!!").is_some());
        assert!(Key::inline("exactly-24-bytes-long!!!").is_none());
        for (i, text) in texts.iter().enumerate() {
            let probe = Probe::new(text);
            let hits: Vec<usize> =
                keys.iter().enumerate().filter(|(_, k)| probe.matches(k, &long)).map(|(j, _)| j).collect();
            assert_eq!(hits, vec![i], "{text:?}");
            assert_eq!(keys.get(i).map(|k| k.text(&long)), Some(*text));
        }
        for absent in ["bng-par001-0", "bng-par001-010", &long_text[1..], "exactly-24-bytes-long!!!", "abcdefgi", "b"] {
            assert!(keys.iter().all(|k| !Probe::new(absent).matches(k, &long)), "{absent:?}");
        }
    }

    #[test]
    fn inline_words_match_the_bytes_zero_padded() {
        let text = "0123456789abcdefghijklm";
        for len in 0..=INLINE {
            let part = &text[..len];
            let mut bytes = [0u8; KEY_BYTES];
            bytes[..len].copy_from_slice(part.as_bytes());
            bytes[INLINE] = len as u8;
            assert_eq!(Key::inline(part), Some(Key(bytes)), "{part:?}");
        }
    }

    #[test]
    fn hashes_spread_over_a_table() {
        // 100,000 hostnames of the demo's shape: no home entry holds more than a few.
        let capacity = 200_000;
        let mut counts = vec![0u32; capacity];
        for i in 0..100_000 {
            let hash = hash_text(&format!("cpe-s{:04}-{i:06}", i % 2_500));
            counts[home(hash, capacity)] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(0);
        let used = counts.iter().filter(|&&c| c > 0).count();
        assert!(max <= 10, "longest chain {max}");
        // A uniform hash fills about 1 - e^-0.5 = 39% of the entries.
        assert!(used > 75_000, "{used} entries used");
    }

    #[test]
    fn index_finds_single_and_multi_slots() {
        let texts = ["a", "b", "c"];
        let mut long = LongKeys::default();
        let rows: Vec<Key> = ["a", "b", "b", "c"].iter().map(|t| long.key(t)).collect();
        let mut multi = Multi::default();
        let dated = |row| Dated { row, from: Millis::MIN, until: Millis::MAX };
        let slots = [multi.slot(&[dated(0)]), multi.slot(&[dated(1), dated(2)]), multi.slot(&[dated(3)])];
        let index = Index::from_slots(slots.iter().zip(texts).map(|(s, t)| (*s, hash_text(t))).collect());
        let rows_of =
            |slot: Slot| slot.single().map_or_else(|| multi.rows(slot).iter().map(|d| d.row).collect(), |r| vec![r]);
        let find = |text: &str| {
            let probe = Probe::new(text);
            let first = |slot: Slot| rows_of(slot).first().and_then(|&row| rows.get(row as usize)).copied();
            index.find(probe.hash, |slot| first(slot).is_some_and(|k| probe.matches(&k, &long))).map(rows_of)
        };
        assert_eq!(find("a"), Some(vec![0]));
        assert_eq!(find("b"), Some(vec![1, 2]));
        assert_eq!(find("c"), Some(vec![3]));
        assert_eq!(find("d"), None);
        assert_eq!(Index::default().find(1, |_| true), None);
    }
}
