//! The lookup structures of a snapshot, built for the hot path of the join: join keys stored as
//! fixed 24-byte values compared word by word (no pointer to follow, no `memcmp` call), and
//! hash tables that hold only a 4-byte [`Slot`] per key (the key itself is compared in the row
//! the slot points to, which the join reads anyway). A million keys take about 10 MB of table
//! instead of about 70 MB for a map holding the keys.

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

/// Bytes of a [`Key`]; text up to `KEY_BYTES - 1` bytes long is stored inline.
const KEY_BYTES: usize = 24;
const INLINE: usize = KEY_BYTES - 1;
/// Last byte of a key whose text is too long to be inline (held in a [`LongKeys`]).
const LONG: u8 = u8::MAX;

/// A join key (equipment id, hostname, NAS-Identifier, error code): its text inline, zero
/// padded, with its length in the last byte; or, for text longer than 23 bytes (rare: long
/// FQDNs), the index of the text in the snapshot's [`LongKeys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key([u8; KEY_BYTES]);

impl Key {
    /// The key of `text` when it fits inline.
    fn inline(text: &str) -> Option<Key> {
        let mut bytes = [0u8; KEY_BYTES];
        let len = u8::try_from(text.len()).ok().filter(|&len| usize::from(len) <= INLINE)?;
        bytes.get_mut(..text.len())?.copy_from_slice(text.as_bytes());
        *bytes.last_mut()? = len;
        Some(Key(bytes))
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

    /// The hash of an inline key: its 24 bytes through FxHash's byte hashing (which mixes
    /// every byte into every bit; hashing the three words as integers would leave the last
    /// characters of a key out of the bits hashbrown uses as tags).
    fn hash_inline(&self) -> u64 {
        let mut h = FxHasher::default();
        h.write(&self.0);
        h.finish()
    }

    /// The key as three words, for comparisons (three integer compares, no `memcmp`).
    #[inline]
    fn words(&self) -> [u64; 3] {
        let mut words = [0u64; 3];
        for (w, bytes) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            *w = u64::from_ne_bytes(b);
        }
        words
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

/// A key being looked up: prepared once (copied inline, hashed), then compared against stored
/// keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe<'a> {
    text: &'a str,
    inline: Option<Key>,
    /// The hash of the text, as [`Index`] tables are built with.
    pub(crate) hash: u64,
}

impl<'a> Probe<'a> {
    pub(crate) fn new(text: &'a str) -> Probe<'a> {
        let inline = Key::inline(text);
        let hash = match &inline {
            Some(key) => key.hash_inline(),
            None => {
                let mut h = FxHasher::default();
                h.write(text.as_bytes());
                h.finish()
            }
        };
        Probe { text, inline, hash }
    }

    /// Whether `key` (stored with `long` for its long texts) is this probe's text.
    #[inline]
    pub(crate) fn matches(&self, key: &Key, long: &LongKeys) -> bool {
        match &self.inline {
            Some(inline) => inline.words() == key.words(),
            None => key.long_index().and_then(|i| long.0.get(i)).is_some_and(|text| **text == *self.text),
        }
    }
}

/// The rows under one key: one row index inline (most keys), or, with the high bit set, an
/// index into [`Multi`] (a key with several validity intervals, rows in `valid_from` order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(u32);

const MULTI: u32 = 1 << 31;

/// The row lists of keys with several rows (see [`Slot`]).
#[derive(Debug, Default)]
pub(crate) struct Multi(Vec<Box<[u32]>>);

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

impl Multi {
    /// The rows of `slot`.
    #[inline]
    pub(crate) fn rows<'s>(&'s self, slot: &'s Slot) -> &'s [u32] {
        if slot.0 & MULTI == 0 {
            std::slice::from_ref(&slot.0)
        } else {
            self.0.get((slot.0 & !MULTI) as usize).map_or(&[], |rows| rows)
        }
    }

    /// The slot of `rows` (not empty), adding a list when there are several.
    pub(crate) fn slot(&mut self, rows: Vec<u32>) -> Slot {
        match rows.as_slice() {
            [one] => Slot(*one),
            _ => {
                self.0.push(rows.into_boxed_slice());
                Slot(index_of(self.0.len() - 1) | MULTI)
            }
        }
    }
}

/// An index into a snapshot's rows (a snapshot holds fewer than 2 billion rows).
pub(crate) fn index_of(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Key -> rows, for one kind of key. The keys are not in the table: `find` is given how to
/// compare a row's key.
#[derive(Debug, Default)]
pub(crate) struct Index(HashTable<Slot>);

impl Index {
    /// Builds the table from `(hash, rows)` of each distinct key.
    pub(crate) fn build(keys: impl Iterator<Item = (u64, Vec<u32>)>, multi: &mut Multi) -> Index {
        let entries = keys.filter(|(_, rows)| !rows.is_empty()).map(|(hash, rows)| (multi.slot(rows), hash)).collect();
        Index::from_slots(entries)
    }

    /// Builds the table from `(slot, hash)` pairs whose slots are distinct.
    pub(crate) fn from_slots(mut entries: Vec<(Slot, u64)>) -> Index {
        // Sorted, a slot's hash is found again if the table ever has to rehash (it does not:
        // its capacity is reserved).
        entries.sort_unstable_by_key(|(slot, _)| slot.0);
        let rehash = |slot: &Slot| {
            let at = entries.binary_search_by_key(&slot.0, |(s, _)| s.0).ok();
            at.and_then(|i| entries.get(i)).map_or(0, |(_, hash)| *hash)
        };
        let mut table = HashTable::with_capacity(entries.len());
        for &(slot, hash) in &entries {
            table.insert_unique(hash, slot, rehash);
        }
        Index(table)
    }

    /// The slot of the key hashing to `hash` for which `is_key(slot)`.
    #[inline]
    pub(crate) fn find(&self, hash: u64, is_key: impl FnMut(&Slot) -> bool) -> Option<Slot> {
        self.0.find(hash, is_key).copied()
    }
}

/// The hash of any `Hash` value (IP addresses) for an [`Index`].
pub(crate) fn hash_of(value: &impl Hash) -> u64 {
    let mut h = FxHasher::default();
    value.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_short_and_long_are_found_by_text() {
        let long_text = "a-very-long-hostname-beyond-the-inline-size.example.net";
        let texts = ["", "bng-par001-01", "exactly-23-bytes-long!!", "é-unicode-hôte", long_text];
        let mut long = LongKeys::default();
        let keys: Vec<Key> = texts.iter().map(|t| long.key(t)).collect();
        assert!(Key::inline("exactly-23-bytes-long!!").is_some());
        assert!(Key::inline("exactly-24-bytes-long!!!").is_none());
        for (i, text) in texts.iter().enumerate() {
            let probe = Probe::new(text);
            let hits: Vec<usize> =
                keys.iter().enumerate().filter(|(_, k)| probe.matches(k, &long)).map(|(j, _)| j).collect();
            assert_eq!(hits, vec![i], "{text:?}");
        }
        for absent in ["bng-par001-0", "bng-par001-010", &long_text[1..], "exactly-24-bytes-long!!!"] {
            assert!(keys.iter().all(|k| !Probe::new(absent).matches(k, &long)), "{absent:?}");
        }
        // The stored key of an inline text hashes as its probe does.
        assert_eq!(Probe::new("bng-par001-01").hash, Key::inline("bng-par001-01").map_or(0, |k| k.hash_inline()));
    }

    #[test]
    fn index_finds_single_and_multi_slots() {
        let texts = ["a", "b", "c"];
        let mut long = LongKeys::default();
        let rows: Vec<Key> = ["a", "b", "b", "c"].iter().map(|t| long.key(t)).collect();
        let mut multi = Multi::default();
        let lists = vec![vec![0], vec![1, 2], vec![3]];
        let index = Index::build(texts.iter().zip(lists).map(|(t, rows)| (Probe::new(t).hash, rows)), &mut multi);
        let find = |text: &str| {
            let probe = Probe::new(text);
            let first = |slot: &Slot| multi.rows(slot).first().and_then(|&row| rows.get(row as usize));
            index
                .find(probe.hash, |slot| first(slot).is_some_and(|k| probe.matches(k, &long)))
                .map(|slot| multi.rows(&slot).to_vec())
        };
        assert_eq!(find("a"), Some(vec![0]));
        assert_eq!(find("b"), Some(vec![1, 2]));
        assert_eq!(find("c"), Some(vec![3]));
        assert_eq!(find("d"), None);
    }
}
