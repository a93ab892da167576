//! Every occurrence of two short needles (`subscriber=` and the record's clear subscriber id) in
//! one pass over a record: candidates are the positions holding a needle's first two bytes,
//! found 16 positions per step with SSE2 on x86_64 (8 per step elsewhere, by a SWAR scan), each
//! candidate then compared. Records are short and their needles shorter: building a
//! `memchr::memmem` searcher per record costs more than this whole scan. The same 16-byte blocks
//! find the end of a structured-data parameter value ([`value_end`]).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `w` that is zero (and possibly of some bytes above a zero one,
/// which the caller's comparison weeds out; a zero byte is never missed).
#[cfg(not(target_arch = "x86_64"))]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

/// The first (up to) 8 bytes of `bytes` as a little-endian word, zero-padded, and the mask of
/// the bytes present.
#[inline]
fn head(bytes: &[u8]) -> (u64, u64) {
    match bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
        Some(word) => (u64::from_le_bytes(word), u64::MAX),
        // Fewer than 8 bytes: gathered one by one (cheaper than copying them into a padded
        // array), the first lowest.
        None => {
            let word = bytes.iter().rev().fold(0u64, |w, b| w << 8 | u64::from(*b));
            (word, u64::MAX.checked_shl(8 * bytes.len() as u32).map_or(u64::MAX, |m| !m))
        }
    }
}

/// Two short needles, prepared once for several [`Needles::each_in`] scans: the first two bytes
/// of each, repeated over a word, and the first (up to) 8 bytes with their mask.
pub(crate) struct Needles<'n> {
    needles: [&'n [u8]; 2],
    heads: [(u64, u64); 2],
    /// The first byte of each needle over a word, and its second.
    firsts: [u64; 2],
    seconds: [u64; 2],
    /// `HIGHS` for a needle of one byte (any second byte will do), else 0.
    any_second: [u64; 2],
    /// Whether either needle is not empty.
    any: bool,
}

impl<'n> Needles<'n> {
    pub(crate) fn new(needles: [&'n [u8]; 2]) -> Needles<'n> {
        // An empty needle occurs nowhere: it takes the other's bytes (and never matches, below).
        let main = if needles[0].is_empty() { needles[1] } else { needles[0] };
        let own = needles.map(|n| if n.is_empty() { main } else { n });
        let firsts = own.map(|n| ONES * u64::from(n.first().copied().unwrap_or(0)));
        let seconds = own.map(|n| ONES * u64::from(n.get(1).copied().unwrap_or(0)));
        let any_second = own.map(|n| if n.len() < 2 { HIGHS } else { 0 });
        Needles { needles, heads: needles.map(head), firsts, seconds, any_second, any: !main.is_empty() }
    }

    /// The length of the shorter non-empty needle (0 if both are empty).
    pub(crate) fn shortest(&self) -> usize {
        self.needles.iter().map(|n| n.len()).filter(|l| *l > 0).min().unwrap_or(0)
    }

    /// Calls `found(n, start)` for every occurrence of needle `n` in `haystack`, left to right
    /// (overlapping ones included); an empty needle occurs nowhere.
    #[inline]
    pub(crate) fn each_in(&self, haystack: &[u8], found: impl FnMut(usize, usize)) {
        self.each_in_range(haystack, 0, haystack.len(), found)
    }

    /// [`Needles::each_in`] of `bytes[start..end]` (positions given in `bytes`): the blocks
    /// are read from `bytes`, past `end` where it goes on, so that a field inside a record
    /// needs no copy. Nothing when the range is not one of `bytes`.
    #[inline]
    pub(crate) fn each_in_range(&self, bytes: &[u8], start: usize, end: usize, mut found: impl FnMut(usize, usize)) {
        if !self.any || start > end || end > bytes.len() {
            return;
        }
        let haystack = bytes.get(..end).unwrap_or_default();
        let mut check = |at: usize| {
            let tail = haystack.get(at..).unwrap_or(&[]);
            let word = head(tail).0;
            for (n, (needle, (prefix, mask))) in self.needles.iter().zip(self.heads).enumerate() {
                if word & mask == prefix && !needle.is_empty() && tail.starts_with(needle) {
                    found(n, at);
                }
            }
        };
        let mut base = start;
        while base < end {
            let mut hits = self.candidates(bytes, base);
            // Only positions before `end` are candidates.
            if end - base < 16 {
                hits &= (1u32 << (end - base)) - 1;
            }
            while hits != 0 {
                check(base + hits.trailing_zeros() as usize);
                hits &= hits - 1;
            }
            base += 16;
        }
    }

    /// Bit `i`: position `at + i` of `bytes` (zero-padded past its end) holds the first two bytes
    /// of a needle (the first alone for a needle of one byte).
    #[inline(always)]
    fn candidates(&self, bytes: &[u8], at: usize) -> u32 {
        let ([fa, fb], [sa, sb], [anya, anyb]) = (self.firsts, self.seconds, self.any_second);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_and_si128, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
            let (here, next) = (block::load(bytes, at), block::load(bytes, at + 1));
            let byte = |word: u64| word as u8 as i8;
            let any = |word: u64| if word == 0 { 0i8 } else { -1 };
            // SAFETY: SSE2 is part of the x86_64 baseline; these intrinsics only compute.
            unsafe {
                let a = _mm_and_si128(
                    _mm_cmpeq_epi8(here, _mm_set1_epi8(byte(fa))),
                    _mm_or_si128(_mm_cmpeq_epi8(next, _mm_set1_epi8(byte(sa))), _mm_set1_epi8(any(anya))),
                );
                let b = _mm_and_si128(
                    _mm_cmpeq_epi8(here, _mm_set1_epi8(byte(fb))),
                    _mm_or_si128(_mm_cmpeq_epi8(next, _mm_set1_epi8(byte(sb))), _mm_set1_epi8(any(anyb))),
                );
                _mm_movemask_epi8(_mm_or_si128(a, b)) as u32 & 0xffff
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let word = |at: usize| head(bytes.get(at..).unwrap_or_default()).0;
            let half = |w: u64, next: u64| {
                let a = zero_bytes(w ^ fa) & (zero_bytes(next ^ sa) | anya);
                let b = zero_bytes(w ^ fb) & (zero_bytes(next ^ sb) | anyb);
                // The high bit of byte i to bit i.
                let bits = (a | b) >> 7;
                (0..8).fold(0u32, |m, i| m | (((bits >> (8 * i)) & 1) as u32) << i)
            };
            half(word(at), word(at + 1)) | half(word(at + 8), word(at + 9)) << 8
        }
    }
}

/// Where the value of a structured-data parameter starting at `at` ends: the offset of the
/// first `"` or backslash from `at`, if there is one.
#[inline]
pub(crate) fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut base = at;
    while base < bytes.len() {
        let hits = quote_or_backslash(bytes, base);
        if hits != 0 {
            // Padding is zeros: a hit is a byte of `bytes`.
            return Some(base + hits.trailing_zeros() as usize - at);
        }
        base += 16;
    }
    None
}

/// Bit `i`: byte `at + i` of `bytes` (zero-padded past its end) is `"` or a backslash.
#[inline(always)]
fn quote_or_backslash(bytes: &[u8], at: usize) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
        let here = block::load(bytes, at);
        // SAFETY: SSE2 is part of the x86_64 baseline; these intrinsics only compute.
        unsafe {
            let hits = _mm_or_si128(
                _mm_cmpeq_epi8(here, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(here, _mm_set1_epi8(b'\\' as i8)),
            );
            _mm_movemask_epi8(hits) as u32 & 0xffff
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut hits = 0u32;
        for (i, b) in bytes.iter().skip(at).take(16).enumerate() {
            hits |= u32::from(matches!(b, b'"' | b'\\')) << i;
        }
        hits
    }
}

/// 16-byte blocks of a record for SSE2.
#[cfg(target_arch = "x86_64")]
mod block {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128};

    /// The 16 bytes of `bytes` from `at`, zero-padded past its end (a copy only then).
    #[inline(always)]
    pub(super) fn load(bytes: &[u8], at: usize) -> __m128i {
        match bytes.get(at..).and_then(|rest| rest.get(..16)) {
            // SAFETY: `block` is 16 readable bytes; an unaligned load needs no alignment.
            Some(block) => unsafe { _mm_loadu_si128(block.as_ptr().cast()) },
            None => {
                let mut padded = [0u8; 16];
                let rest = bytes.get(at..).unwrap_or_default();
                for (slot, b) in padded.iter_mut().zip(rest) {
                    *slot = *b;
                }
                // SAFETY: as above, on the padded copy.
                unsafe { _mm_loadu_si128(padded.as_ptr().cast()) }
            }
        }
    }
}

/// Calls `found(n, start)` for every occurrence of `needles[n]` in `haystack`, left to right
/// (overlapping ones included); an empty needle occurs nowhere.
pub(crate) fn each_occurrence(haystack: &[u8], needles: [&[u8]; 2], found: impl FnMut(usize, usize)) {
    Needles::new(needles).each_in(haystack, found);
}

/// The positions of the first `N` spaces of `bytes` from `at`, if every byte before the last of
/// them is printable US-ASCII or a space (an RFC 5424 header's fields and separators): 16 bytes
/// per step.
pub(crate) fn spaces_in_printable<const N: usize>(bytes: &[u8], at: usize) -> Option<[usize; N]> {
    let mut found = [0usize; N];
    let mut n = 0;
    let mut base = at;
    while n < N {
        if base >= bytes.len() {
            return None;
        }
        // Past the end, the zero padding counts as a bad byte.
        let (mut spaces, bad) = spaces_and_unprintable(bytes, base);
        // Only the bytes before the N-th space count: `limit` masks them.
        let mut limit = u32::MAX;
        while spaces != 0 && n < N {
            let bit = spaces.trailing_zeros();
            if let Some(slot) = found.get_mut(n) {
                *slot = base + bit as usize;
            }
            n += 1;
            if n == N {
                limit = (1u32 << bit) - 1;
            }
            spaces &= spaces - 1;
        }
        if bad & limit != 0 {
            return None;
        }
        base += 16;
    }
    Some(found)
}

/// Bits `i` of the 16 bytes of `bytes` from `at` (zero-padded past its end): those that are a
/// space, and those that are neither a space nor printable US-ASCII (`!`..`~`).
#[inline(always)]
fn spaces_and_unprintable(bytes: &[u8], at: usize) -> (u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        let here = block::load(bytes, at);
        // SAFETY: SSE2 is part of the x86_64 baseline; these intrinsics only compute.
        unsafe {
            let space = _mm_cmpeq_epi8(here, _mm_set1_epi8(b' ' as i8));
            // Signed: bytes from 0x80 on are negative, so below `!` too.
            let below = _mm_cmplt_epi8(here, _mm_set1_epi8(b'!' as i8));
            let bad = _mm_or_si128(_mm_andnot_si128(space, below), _mm_cmpeq_epi8(here, _mm_set1_epi8(0x7f)));
            (_mm_movemask_epi8(space) as u32 & 0xffff, _mm_movemask_epi8(bad) as u32 & 0xffff)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (mut space, mut bad) = (0u32, 0u32);
        for i in 0..16 {
            match bytes.get(at + i) {
                Some(b' ') => space |= 1 << i,
                Some(b'!'..=b'~') => {}
                _ => bad |= 1 << i,
            }
        }
        (space, bad)
    }
}

#[cfg(test)]
mod tests {
    use super::each_occurrence;

    #[test]
    fn short_heads_are_zero_padded_words() {
        let bytes = b"\x00\xffsub=x\x80\x01abc";
        for start in 0..bytes.len() {
            for end in start..bytes.len() {
                let part = &bytes[start..end];
                let (mut word, mut mask) = ([0u8; 8], [0u8; 8]);
                for (i, b) in part.iter().take(8).enumerate() {
                    word[i] = *b;
                    mask[i] = 0xff;
                }
                let want = (u64::from_le_bytes(word), u64::from_le_bytes(mask));
                assert_eq!(super::head(part), want, "{part:?}");
            }
        }
    }

    #[test]
    fn header_spaces_as_a_byte_loop_finds_them() {
        fn naive(bytes: &[u8], at: usize) -> Option<[usize; 5]> {
            let mut found = [0; 5];
            let mut n = 0;
            for (i, b) in bytes.iter().enumerate().skip(at) {
                if *b == b' ' {
                    found[n] = i;
                    n += 1;
                    if n == 5 {
                        return Some(found);
                    }
                } else if !(33..=126).contains(b) {
                    return None;
                }
            }
            None
        }
        let mut cases: Vec<Vec<u8>> = vec![
            b"1 2026-01-05T10:00:00Z host app - ID [x] msg".to_vec(),
            b"1 a b c d e".to_vec(),
            b"1 a b c d".to_vec(),
            b"1 a\x7f b c d e f".to_vec(),
            b"1 a b c\td e f".to_vec(),
            "1 a b c d \u{e9} e".as_bytes().to_vec(),
            "1 a b \u{e9} d e".as_bytes().to_vec(),
            b"1 ! ! ! ! !!!!!!!".to_vec(),
            b"".to_vec(),
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut line = b"1 ".to_vec();
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                line.push([b' ', b'a', b'!', b'~', 0x7f, 0x1f, 0x80, 0xff, b'0', b' '][(state % 10) as usize]);
            }
            cases.push(line);
        }
        for case in &cases {
            for at in [0, 1, 2] {
                assert_eq!(super::spaces_in_printable::<5>(case, at), naive(case, at), "{case:?} from {at}");
            }
        }
    }

    fn all(needles: [&[u8]; 2], haystack: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        each_occurrence(haystack, needles, |n, i| out.push((n, i)));
        out
    }

    fn naive(needles: [&[u8]; 2], haystack: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for at in 0..haystack.len() {
            for (n, needle) in needles.iter().enumerate() {
                if !needle.is_empty() && haystack[at..].starts_with(needle) {
                    out.push((n, at));
                }
            }
        }
        out
    }

    #[test]
    fn finds_every_occurrence_as_a_naive_search_does() {
        let long = "subscriber=sub0000042 x ".repeat(20);
        let cases: [([&[u8]; 2], &[u8]); 10] = [
            ([b"subscriber=", b"sub0000042"], long.as_bytes()),
            ([b"subscriber=", b""], long.as_bytes()),
            ([b"", b"0000042 "], long.as_bytes()),
            ([b"aa", b"a"], b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ([b"ana", b"n"], b"banana"),
            ([b"", b""], b"banana"),
            ([b"banana!", b"nana"], b"banana"),
            ([b"x", b"y"], b""),
            ([b"\x00\xff", b"\x01"], b"\x00\xff\x00\xff\xff\x00\x01\x01\x00\x01\x00\x00\xff\x01\x02\x00\xff"),
            ([b"\x80", b"\x7f"], b"\x7f\x80\x81\x7f\x80\x00\x00\x80\x7f\x7f\x7e\x80"),
        ];
        for (needles, haystack) in cases {
            assert_eq!(all(needles, haystack), naive(needles, haystack), "{needles:?} in {haystack:?}");
        }
    }
}
