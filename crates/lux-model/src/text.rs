//! `SmallStr`: the short text fields of an event (ids, hostnames, codes, attribute names and
//! values) without a heap allocation each. Text up to [`SmallStr::INLINE`] bytes (a 32-digit hex
//! id, a hostname) is stored in place, names known at compile time are borrowed `'static`, and
//! only longer text is boxed. It derefs to `&str` and is serialised as a plain JSON string.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Immutable text that avoids the heap when it is short or static. Compares, hashes and orders
/// as the `str` it holds, whatever its representation.
#[derive(Clone)]
pub struct SmallStr(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    /// `len` bytes of `bytes` are valid UTF-8 (the only constructor copies them from a `&str`).
    Inline {
        len: u8,
        bytes: [u8; SmallStr::INLINE],
    },
    Heap(Box<str>),
}

impl SmallStr {
    /// Bytes stored in place: enough for a 128-bit id or a pseudonym in hex.
    pub const INLINE: usize = 32;

    /// Borrowed static text (attribute names known at compile time): no copy at all.
    #[inline]
    pub const fn from_static(text: &'static str) -> SmallStr {
        SmallStr(Repr::Static(text))
    }

    /// A copy of `text`, in place when it is short.
    #[inline]
    pub fn new(text: &str) -> SmallStr {
        let len = text.len();
        if len <= Self::INLINE {
            let mut bytes = [0u8; Self::INLINE];
            if let Some(slot) = bytes.get_mut(..len) {
                slot.copy_from_slice(text.as_bytes());
            }
            // `len <= 32` fits in a u8.
            SmallStr(Repr::Inline { len: len as u8, bytes })
        } else {
            SmallStr(Repr::Heap(text.into()))
        }
    }

    /// A copy of `bytes` when they are ASCII (digits, hex, dotted quads built by a decoder), in
    /// place when short; `None` for anything else. Cheaper than validating UTF-8.
    #[inline]
    pub fn from_ascii(bytes: &[u8]) -> Option<SmallStr> {
        if !bytes.is_ascii() {
            return None;
        }
        let len = bytes.len();
        if len > Self::INLINE {
            return std::str::from_utf8(bytes).ok().map(|t| SmallStr(Repr::Heap(t.into())));
        }
        let mut inline = [0u8; Self::INLINE];
        if let Some(slot) = inline.get_mut(..len) {
            slot.copy_from_slice(bytes);
        }
        // ASCII: valid UTF-8; `len <= 32` fits in a u8.
        Some(SmallStr(Repr::Inline { len: len as u8, bytes: inline }))
    }

    /// The concatenation of `parts` (`sd.` and a parameter name), in place when it is short.
    #[inline]
    pub fn concat(parts: &[&str]) -> SmallStr {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > Self::INLINE {
            return SmallStr(Repr::Heap(parts.concat().into_boxed_str()));
        }
        let mut bytes = [0u8; Self::INLINE];
        let mut at = 0;
        for part in parts {
            if let Some(slot) = bytes.get_mut(at..at + part.len()) {
                slot.copy_from_slice(part.as_bytes());
            }
            at += part.len();
        }
        // Whole `str`s end to end: valid UTF-8; `len <= 32` fits in a u8.
        SmallStr(Repr::Inline { len: len as u8, bytes })
    }

    /// The decimal digits of `n`, in place.
    #[inline]
    pub fn decimal(n: u64) -> SmallStr {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n;
        loop {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut bytes = [0u8; Self::INLINE];
        let used = digits.get(at..).unwrap_or(&[]);
        if let Some(slot) = bytes.get_mut(..used.len()) {
            slot.copy_from_slice(used);
        }
        // ASCII digits, at most 20.
        SmallStr(Repr::Inline { len: used.len() as u8, bytes })
    }

    /// Lowercase hex of `bytes` (at most 16 bytes stay in place).
    #[inline]
    pub fn hex(bytes: &[u8]) -> SmallStr {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        if bytes.len() * 2 > Self::INLINE {
            return SmallStr(Repr::Heap(crate::hex(bytes).into_boxed_str()));
        }
        let mut out = [0u8; Self::INLINE];
        for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
            if let [hi, lo] = pair {
                *hi = DIGITS[usize::from(byte >> 4)];
                *lo = DIGITS[usize::from(byte & 0x0f)];
            }
        }
        // At most 32 hex digits: valid UTF-8, fits in a u8.
        SmallStr(Repr::Inline { len: (bytes.len() * 2) as u8, bytes: out })
    }

    /// The 32 lowercase hex digits of `n`, big-endian (as [`SmallStr::hex`] of its big-endian
    /// bytes): all 32 at once with SSE2 on x86_64, eight at a time elsewhere.
    #[inline]
    pub fn hex128(n: u128) -> SmallStr {
        let mut bytes = [0u8; Self::INLINE];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                _mm_add_epi8, _mm_and_si128, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_set1_epi8, _mm_srli_epi16,
                _mm_storeu_si128, _mm_unpackhi_epi8, _mm_unpacklo_epi8,
            };
            let be = n.to_be_bytes();
            let (first, second) = bytes.split_at_mut(16);
            // SAFETY: SSE2 is part of the x86_64 baseline; the loads read the 16 bytes of `be`
            // and the stores write the 16 bytes of each half of `bytes` (unaligned access is
            // allowed).
            unsafe {
                let v = _mm_loadu_si128(be.as_ptr().cast());
                let low_nibbles = _mm_set1_epi8(0x0f);
                let high = _mm_and_si128(_mm_srli_epi16::<4>(v), low_nibbles);
                let low = _mm_and_si128(v, low_nibbles);
                // Nibble `d` to `'0' + d`, and 39 more from 10 on (`'a'` is `'0' + 10 + 39`).
                let ascii = |d| {
                    let letters = _mm_and_si128(_mm_cmpgt_epi8(d, _mm_set1_epi8(9)), _mm_set1_epi8(39));
                    _mm_add_epi8(_mm_add_epi8(d, _mm_set1_epi8(b'0' as i8)), letters)
                };
                // Each byte's high nibble, then its low one.
                _mm_storeu_si128(first.as_mut_ptr().cast(), ascii(_mm_unpacklo_epi8(high, low)));
                _mm_storeu_si128(second.as_mut_ptr().cast(), ascii(_mm_unpackhi_epi8(high, low)));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            /// The 8 nibbles of `x`, one per byte, most significant first, as ASCII hex digits.
            #[inline]
            fn digits(x: u32) -> [u8; 8] {
                let x = u64::from(x);
                let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
                let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
                let x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
                // Nibbles from 10 up become letters: 'a' is '0' + 10 + 0x27.
                let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
                (x + 0x3030_3030_3030_3030 + letters * 0x27).to_be_bytes()
            }
            for (chunk, shift) in bytes.chunks_exact_mut(8).zip([96u32, 64, 32, 0]) {
                chunk.copy_from_slice(&digits((n >> shift) as u32));
            }
        }
        // 32 ASCII hex digits.
        SmallStr(Repr::Inline { len: Self::INLINE as u8, bytes })
    }

    /// The text, when it is borrowed `'static` ([`SmallStr::from_static`]).
    #[inline]
    pub fn as_static(&self) -> Option<&'static str> {
        match &self.0 {
            Repr::Static(s) => Some(s),
            _ => None,
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Inline { len, bytes } => {
                let used = bytes.get(..usize::from(*len)).unwrap_or(&[]);
                // SAFETY: `Inline` is only built from the bytes of whole `str`s (`new`, `concat`),
                // from ASCII digits (`decimal`, `hex`) or from bytes checked to be ASCII
                // (`from_ascii`), cut at the end of that text: always valid UTF-8.
                unsafe { std::str::from_utf8_unchecked(used) }
            }
            Repr::Heap(s) => s,
        }
    }
}

impl Default for SmallStr {
    fn default() -> Self {
        SmallStr::from_static("")
    }
}

impl Deref for SmallStr {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SmallStr {
    #[inline]
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SmallStr {
    #[inline]
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for SmallStr {
    #[inline]
    fn from(text: &str) -> Self {
        SmallStr::new(text)
    }
}

impl From<String> for SmallStr {
    #[inline]
    fn from(text: String) -> Self {
        if text.len() <= Self::INLINE {
            SmallStr::new(&text)
        } else {
            SmallStr(Repr::Heap(text.into_boxed_str()))
        }
    }
}

impl From<std::borrow::Cow<'_, str>> for SmallStr {
    #[inline]
    fn from(text: std::borrow::Cow<'_, str>) -> Self {
        match text {
            std::borrow::Cow::Borrowed(t) => SmallStr::new(t),
            std::borrow::Cow::Owned(t) => SmallStr::from(t),
        }
    }
}

impl From<&String> for SmallStr {
    #[inline]
    fn from(text: &String) -> Self {
        SmallStr::new(text)
    }
}

impl From<SmallStr> for String {
    #[inline]
    fn from(text: SmallStr) -> Self {
        match text.0 {
            Repr::Heap(s) => s.into_string(),
            _ => text.as_str().to_owned(),
        }
    }
}

impl PartialEq for SmallStr {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SmallStr {}

impl PartialEq<str> for SmallStr {
    #[inline]
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SmallStr {
    #[inline]
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SmallStr {
    #[inline]
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SmallStr> for str {
    #[inline]
    fn eq(&self, other: &SmallStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SmallStr> for &str {
    #[inline]
    fn eq(&self, other: &SmallStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SmallStr> for String {
    #[inline]
    fn eq(&self, other: &SmallStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for SmallStr {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallStr {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SmallStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl Serialize for SmallStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SmallStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SmallStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SmallStr, E> {
                Ok(SmallStr::new(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SmallStr, E> {
                Ok(SmallStr::from(v))
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::SmallStr;

    #[test]
    fn every_representation_is_the_same_text() {
        let long = "x".repeat(SmallStr::INLINE + 1);
        for text in ["", "bng-paris-01", "0123456789abcdef0123456789abcdef", long.as_str(), "é€😀"] {
            let small = SmallStr::new(text);
            assert_eq!(small.as_str(), text);
            assert_eq!(SmallStr::from(text.to_owned()), small);
            assert_eq!(String::from(small.clone()), text);
            assert_eq!(serde_json::to_string(&small).unwrap(), serde_json::to_string(text).unwrap());
            let back: SmallStr = serde_json::from_str(&serde_json::to_string(text).unwrap()).unwrap();
            assert_eq!(back, text);
        }
        assert_eq!(SmallStr::from_static("sd.code"), SmallStr::new("sd.code"));
        assert_eq!(SmallStr::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(SmallStr::hex(&[0xab; 20]), "ab".repeat(20));
        for n in
            [0u128, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210, 0x9a9a_0f0f_f0f0_a5a5_5a5a_1234_abcd_ef09]
        {
            assert_eq!(SmallStr::hex128(n), SmallStr::hex(&n.to_be_bytes()));
        }
        // Every nibble value in every position.
        let mut n = 0x0123_4567_89ab_cdef_u128;
        for _ in 0..64 {
            n = n.rotate_left(4) ^ 0xf0e1_d2c3_b4a5_9687_7869_5a4b_3c2d_1e0f;
            assert_eq!(SmallStr::hex128(n), SmallStr::hex(&n.to_be_bytes()));
        }
        assert!(SmallStr::new("a") < SmallStr::from_static("b"));
        assert_eq!(SmallStr::concat(&["sd.", "code"]), "sd.code");
        assert_eq!(SmallStr::from_ascii(b"10.0.0.1"), Some(SmallStr::new("10.0.0.1")));
        assert_eq!(SmallStr::from_ascii(&[b'7'; 40]), Some(SmallStr::new(&"7".repeat(40))));
        assert_eq!(SmallStr::from_ascii("é".as_bytes()), None);
        assert_eq!(SmallStr::concat(&["x"; 40]), "x".repeat(40));
        for n in [0u64, 7, 10, 4_294_967_295, u64::MAX] {
            assert_eq!(SmallStr::decimal(n), n.to_string());
        }
    }
}
