//! The contract's vocabulary: syslog MSGIDs and error codes to event kinds and outcomes, the
//! pseudonymisation of subscriber ids, and the redaction of clear ids from free text.

use hmac::{Hmac, Mac};
use lux_model::{EventKind, Outcome, SmallStr};
use sha2::Sha256;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

/// RFC 5424 MSGID -> (kind, outcome), as the reference-and-traffic contract says.
pub fn msgid_kind(msgid: &str) -> Option<(EventKind, Outcome)> {
    Some(match msgid {
        "SESSION_START" => (EventKind::SessionStart, Outcome::Success),
        "SESSION_STOP" => (EventKind::SessionStop, Outcome::Info),
        "AUTH_REJECT" => (EventKind::AuthReject, Outcome::Failure),
        "LINK_DOWN" => (EventKind::LinkDown, Outcome::Failure),
        "LINK_UP" => (EventKind::LinkUp, Outcome::Success),
        "ONU_LOS" => (EventKind::OpticalLos, Outcome::Failure),
        "CONFIG_CHANGE" => (EventKind::ConfigChange, Outcome::Info),
        _ => return None,
    })
}

/// Error code (`FACILITY-MNEMONIC`) -> (kind, outcome), as the contract says.
pub fn code_kind(code: &str) -> Option<(EventKind, Outcome)> {
    Some(match code {
        "DHCP-NOOFFER" => (EventKind::DhcpFailure, Outcome::Failure),
        "PPP-LCPTIMEOUT" => (EventKind::PppFailure, Outcome::Failure),
        "PPP-AUTHFAIL" => (EventKind::AuthReject, Outcome::Failure),
        "LINK-DOWN" => (EventKind::LinkDown, Outcome::Failure),
        "LINK-UP" => (EventKind::LinkUp, Outcome::Success),
        "DSL-RETRAIN" => (EventKind::LinkRetrain, Outcome::Info),
        "SYS-RESTART" => (EventKind::Reboot, Outcome::Info),
        "GPON-LOS" => (EventKind::OpticalLos, Outcome::Failure),
        "GPON-DYINGGASP" => (EventKind::PowerLoss, Outcome::Failure),
        _ => return None,
    })
}

/// Keyed pseudonymisation of subscriber ids: HMAC-SHA256(key, clear id), first 16 bytes as 32
/// lowercase hex characters. The same key always gives the same pseudonym, so indicators can
/// count distinct subscribers without ever holding a clear id.
///
/// Subscribers repeat constantly (every session start, interim and stop), so pseudonyms are
/// remembered in a bounded cache shared by clones and threads ([`CACHE_SHARDS`] shards of at most
/// [`CACHE_SHARD_ENTRIES`] ids of at most [`CACHE_MAX_ID_LEN`] bytes; a full shard is emptied).
/// The cache lives in memory only, like the raw records it is fed from.
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
    cache: Arc<PseudonymCache>,
}

/// Shards of the pseudonym cache: enough that threads decoding in parallel rarely wait.
pub const CACHE_SHARDS: usize = 16;
/// Ids per shard: 16 x 8192 = 131,072 subscribers (about 10 MiB at most).
pub const CACHE_SHARD_ENTRIES: usize = 8192;
/// Longer ids are hashed every time (no subscriber id is that long; it bounds the memory).
pub const CACHE_MAX_ID_LEN: usize = 64;

/// A shard maps the XXH3-64 of a clear id to the id and its pseudonym (the id is compared on
/// every hit: two ids with the same hash only evict each other).
type Shard = Mutex<HashMap<u64, (Box<[u8]>, [u8; 32]), BuildHasherDefault<KeyIsHash>>>;

/// The map's hasher: the key already is a hash.
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct PseudonymCache {
    shards: [Shard; CACHE_SHARDS],
}

impl Default for PseudonymCache {
    fn default() -> Self {
        PseudonymCache { shards: std::array::from_fn(|_| Mutex::new(HashMap::default())) }
    }
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser { key: <hidden> }")
    }
}

impl Pseudonymiser {
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length (long keys are hashed first): `new_from_slice` cannot
        // fail; the fallback only keeps this function free of any panic path.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default()));
        Pseudonymiser { mac, cache: Arc::default() }
    }

    /// The pseudonym of `clear`, from the cache when it was seen recently.
    pub fn pseudonym(&self, clear: &[u8]) -> String {
        self.pseudonym_small(clear).into()
    }

    /// The same, in place (32 hex digits: no allocation).
    pub fn pseudonym_small(&self, clear: &[u8]) -> SmallStr {
        if clear.len() > CACHE_MAX_ID_LEN {
            return hex_text(&self.compute(clear));
        }
        hex_text(&self.shared_digits(clear, xxhash_rust::xxh3::xxh3_64(clear)))
    }

    /// The pseudonym's hex digits of `clear` (at most [`CACHE_MAX_ID_LEN`] bytes, whose XXH3-64
    /// is `hash`), from the shared cache or computed and cached there.
    fn shared_digits(&self, clear: &[u8], hash: u64) -> [u8; 32] {
        // The top bits pick the shard; the map uses the whole hash.
        let Some(shard) = self.cache.shards.get((hash >> 60) as usize % CACHE_SHARDS) else {
            return self.compute(clear);
        };
        // A poisoned lock only means another thread panicked mid-insert: the map is still sound.
        if let Some((id, pseudonym)) = shard.lock().unwrap_or_else(|p| p.into_inner()).get(&hash) {
            if **id == *clear {
                return *pseudonym;
            }
        }
        let fresh = self.compute(clear);
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_SHARD_ENTRIES {
            map.clear();
        }
        map.insert(hash, (clear.into(), fresh));
        drop(map);
        fresh
    }

    /// HMAC-SHA256(key, clear), first 16 bytes, as hex digits.
    fn compute(&self, clear: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(clear);
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; 32];
        for (pair, byte) in out.chunks_exact_mut(2).zip(digest.iter()) {
            if let [hi, lo] = pair {
                *hi = HEX[usize::from(byte >> 4)];
                *lo = HEX[usize::from(byte & 0x0f)];
            }
        }
        out
    }

    /// The number of pseudonyms cached (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.cache.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len()).sum()
    }
}

/// Slots of a decoder's own pseudonym cache ([`LocalPseudonyms`]): 16,384 of 80 bytes.
pub const LOCAL_CACHE_SLOTS: usize = 16_384;
/// Longer ids skip the decoder's own cache (they still use the shared one).
const LOCAL_MAX_ID_LEN: usize = 32;

/// A decoder's own pseudonym cache, in front of the shared one ([`Pseudonymiser`]): direct
/// mapped by the id's XXH3-64, no lock, no allocation but the table's (made at first use). A
/// miss asks the shared cache and takes the slot.
#[derive(Default)]
pub(crate) struct LocalPseudonyms {
    /// Whether the table may be made (a decoder's, not a one-off decoding's).
    enabled: bool,
    slots: Vec<LocalSlot>,
}

#[derive(Clone, Copy)]
struct LocalSlot {
    hash: u64,
    /// The id's length; `u8::MAX` for an empty slot.
    len: u8,
    id: [u8; LOCAL_MAX_ID_LEN],
    pseudonym: [u8; 32],
}

const EMPTY_SLOT: LocalSlot = LocalSlot { hash: 0, len: u8::MAX, id: [0; LOCAL_MAX_ID_LEN], pseudonym: [0; 32] };

impl std::fmt::Debug for LocalPseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalPseudonyms {{ slots: {} }}", self.slots.len())
    }
}

impl LocalPseudonyms {
    /// A cache that makes its table at first use ([`LocalPseudonyms::default`] never does: it
    /// goes to the shared cache every time).
    pub fn enabled() -> Self {
        LocalPseudonyms { enabled: true, slots: Vec::new() }
    }

    /// The pseudonym of `clear` by `pseudonymiser` (whose key must be the same on every call).
    #[inline]
    pub fn pseudonym(&mut self, pseudonymiser: &Pseudonymiser, clear: &[u8]) -> SmallStr {
        if clear.len() > LOCAL_MAX_ID_LEN || !self.enabled {
            return pseudonymiser.pseudonym_small(clear);
        }
        if self.slots.is_empty() {
            self.slots = vec![EMPTY_SLOT; LOCAL_CACHE_SLOTS];
        }
        let hash = xxhash_rust::xxh3::xxh3_64(clear);
        let Some(slot) = self.slots.get_mut(hash as usize % LOCAL_CACHE_SLOTS) else {
            return pseudonymiser.pseudonym_small(clear);
        };
        if slot.hash == hash && usize::from(slot.len) == clear.len() && slot.id.get(..clear.len()) == Some(clear) {
            return hex_text(&slot.pseudonym);
        }
        let digits = pseudonymiser.shared_digits(clear, hash);
        let mut id = [0u8; LOCAL_MAX_ID_LEN];
        if let Some(head) = id.get_mut(..clear.len()) {
            head.copy_from_slice(clear);
        }
        // `clear.len() <= 32` fits in a u8.
        *slot = LocalSlot { hash, len: clear.len() as u8, id, pseudonym: digits };
        hex_text(&digits)
    }
}

/// 32 hex digits as text, in place.
fn hex_text(digits: &[u8; 32]) -> SmallStr {
    SmallStr::from_ascii(digits).unwrap_or_default()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// Finds `subscriber=VALUE` in free text (VALUE quoted with `"`, or up to the next space, `,`
/// or `;`): the clear id, when there is one.
pub fn find_subscriber(text: &str) -> Option<&str> {
    subscriber_spans(text).find_map(|(start, end)| text.get(start..end).filter(|v| !v.is_empty()))
}

/// The searcher of `subscriber=`, built once.
static SUBSCRIBER_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"subscriber="));

/// Byte ranges of the values of every `subscriber=VALUE` in `text`, found as they are asked
/// for (no vector).
fn subscriber_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    const KEY: &str = "subscriber=";
    let mut from = 0;
    std::iter::from_fn(move || loop {
        let found = text.get(from..).and_then(|rest| SUBSCRIBER_KEY.find(rest.as_bytes()))?;
        let key_start = from + found;
        let value_start = key_start + KEY.len();
        let boundary_ok = text[..key_start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'));
        let rest = &text[value_start..];
        let (start, end) = if let Some(quoted) = rest.strip_prefix('"') {
            let len = quoted.find('"').unwrap_or(quoted.len());
            (value_start + 1, value_start + 1 + len)
        } else {
            let len = rest.find(|c: char| c.is_whitespace() || c == ',' || c == ';').unwrap_or(rest.len());
            (value_start, value_start + len)
        };
        from = end.max(value_start);
        if boundary_ok {
            return Some((start, end));
        }
    })
}

/// `text` with the value of every `subscriber=VALUE` replaced by its pseudonym, and every other
/// occurrence of `clear` (the record's clear subscriber id, when known) replaced by its own.
/// Borrowed as it is when there is nothing to redact (the common case).
pub fn redact<'a>(text: &'a str, clear: Option<&str>, pseudonymiser: &Pseudonymiser) -> Cow<'a, str> {
    let clear = clear.filter(|c| !c.is_empty());
    const KEY_LEN: usize = "subscriber=".len();
    let has_key = text.len() >= KEY_LEN && SUBSCRIBER_KEY.find(text.as_bytes()).is_some();
    let has_clear = clear.is_some_and(|c| {
        text.len() >= c.len() && (text == c || memchr::memmem::find(text.as_bytes(), c.as_bytes()).is_some())
    });
    if !has_key && !has_clear {
        return Cow::Borrowed(text);
    }
    Cow::Owned(redact_owned(text, clear, pseudonymiser))
}

fn redact_owned(text: &str, clear: Option<&str>, pseudonymiser: &Pseudonymiser) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in subscriber_spans(text) {
        if let (Some(before), Some(value)) = (text.get(last..start), text.get(start..end)) {
            out.push_str(before);
            if !value.is_empty() {
                out.push_str(&pseudonymiser.pseudonym_small(value.as_bytes()));
            }
            last = end;
        }
    }
    out.push_str(text.get(last..).unwrap_or(""));
    match clear {
        Some(clear) if !clear.is_empty() && out.contains(clear) => {
            out.replace(clear, &pseudonymiser.pseudonym_small(clear.as_bytes()))
        }
        _ => out,
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn cached_pseudonyms_equal_computed_ones() {
        let p = Pseudonymiser::new(b"key");
        let first = p.pseudonym(b"sub0000042");
        assert_eq!(p.cached(), 1);
        let again = p.pseudonym(b"sub0000042");
        assert_eq!(first, again);
        assert_eq!(first, String::from(hex_text(&p.compute(b"sub0000042"))));
        assert_eq!(first.len(), 32);
        // Clones share the cache.
        let clone = p.clone();
        assert_eq!(clone.pseudonym(b"sub0000042"), first);
        assert_eq!(clone.cached(), 1);
        // A different key gives a different pseudonym, from its own cache.
        assert_ne!(Pseudonymiser::new(b"other").pseudonym(b"sub0000042"), first);
    }

    #[test]
    fn the_cache_is_bounded() {
        let p = Pseudonymiser::new(b"key");
        for i in 0..(CACHE_SHARDS * CACHE_SHARD_ENTRIES * 2) {
            let id = format!("sub{i:07}");
            let pseudonym = p.pseudonym(id.as_bytes());
            if i % 10_007 == 0 {
                assert_eq!(pseudonym, String::from(hex_text(&p.compute(id.as_bytes()))));
            }
        }
        assert!(p.cached() <= CACHE_SHARDS * CACHE_SHARD_ENTRIES);
        assert!(p.cached() > 0);
        // Ids longer than the limit are not cached.
        let long = [b'x'; CACHE_MAX_ID_LEN + 1];
        let before = p.cached();
        assert_eq!(p.pseudonym(&long), String::from(hex_text(&p.compute(&long))));
        assert_eq!(p.cached(), before);
    }
}

/// The text of an IP address as its `Display` writes it (IPv4 without the formatting machinery:
/// one per RADIUS packet at least).
pub(crate) fn ip_text(ip: std::net::IpAddr) -> SmallStr {
    match ip {
        std::net::IpAddr::V4(v4) => ipv4_text(v4),
        std::net::IpAddr::V6(v6) => SmallStr::from(v6.to_string()),
    }
}

/// Dotted-quad text of an IPv4 address, as `Ipv4Addr`'s `Display` writes it.
pub(crate) fn ipv4_text(ip: std::net::Ipv4Addr) -> SmallStr {
    let (digits, len) = ipv4_digits(ip);
    SmallStr::from_ascii(digits.get(..len).unwrap_or(&[])).unwrap_or_default()
}

/// The same text as a `&str` of `buf` (no copy).
pub(crate) fn ipv4_str(ip: std::net::Ipv4Addr, buf: &mut [u8; 16]) -> &str {
    let (digits, len) = ipv4_digits(ip);
    *buf = digits;
    // SAFETY: `ipv4_digits` writes digits and dots only (ASCII, valid UTF-8).
    unsafe { std::str::from_utf8_unchecked(buf.get(..len).unwrap_or(&[])) }
}

/// The decimal digits of every octet then a dot, as 4 little-endian bytes (zero-padded), and
/// how many of them there are: `OCTETS[10]` is `b"10.\0"` and 3.
static OCTETS: [(u32, u8); 256] = {
    let mut table = [(0u32, 0u8); 256];
    let mut n = 0;
    while n < 256 {
        let o = n as u8;
        let (d, len) = match (o / 100, o / 10 % 10, o % 10) {
            (0, 0, c) => ([b'0' + c, b'.', 0, 0], 2),
            (0, b, c) => ([b'0' + b, b'0' + c, b'.', 0], 3),
            (a, b, c) => ([b'0' + a, b'0' + b, b'0' + c, b'.'], 4),
        };
        table[n] = (u32::from_le_bytes(d), len);
        n += 1;
    }
    table
};

/// The dotted-quad digits of `ip` and their length.
fn ipv4_digits(ip: std::net::Ipv4Addr) -> ([u8; 16], usize) {
    // Each octet's digits and dot from the table, written 4 bytes at once at the end of the text.
    let mut text = [0u8; 16];
    let mut len = 0usize;
    for octet in ip.octets() {
        let (digits, n) = OCTETS[usize::from(octet)];
        if let Some(slot) = text.get_mut(len..len + 4) {
            slot.copy_from_slice(&digits.to_le_bytes());
        }
        len += usize::from(n);
    }
    // The last dot dropped.
    (text, len - 1)
}

#[cfg(test)]
mod ip_tests {
    #[test]
    fn ip_text_is_the_display_form() {
        for ip in [[0, 0, 0, 0], [10, 20, 0, 5], [255, 255, 255, 255], [1, 10, 100, 199], [9, 99, 200, 250]] {
            let ip = std::net::Ipv4Addr::from(ip);
            assert_eq!(super::ipv4_text(ip), ip.to_string());
        }
        for octet in 0..=255u8 {
            let ip = std::net::Ipv4Addr::from([octet, 255 - octet, octet / 3, octet % 7]);
            assert_eq!(super::ipv4_str(ip, &mut [0; 16]), ip.to_string());
        }
        let v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(super::ip_text(v6), "2001:db8::1");
    }
}
