//! The byte scans of the RFC 5424 fast path, 16 positions per step with SSE2 on x86_64 (one
//! byte at a time elsewhere, [`portable`]):
//!
//! - every occurrence of two short needles (`subscriber=` and the record's clear subscriber id):
//!   candidates are the positions holding a needle's first two bytes, each then compared.
//!   Records are short and their needles shorter: building a `memchr::memmem` searcher per
//!   record costs more than this whole scan;
//! - the header's first spaces, with every byte before them printable ([`spaces_in_printable`]);
//! - SD-NAMEs ([`sd_name_len`]) and the end of a structured-data parameter value ([`value_end`]).
//!
//! The blocks are read in place from the record, past the end of the field scanned where the
//! record goes on. A block crossing the record's end is read from its last 16 bytes, shifted,
//! for the redaction candidates (the message ends the record); for the other scans, whose
//! blocks seldom cross it, it is copied, zero-padded.

/// Two short needles, prepared once for several [`Needles::each_in`] scans: the first two bytes
/// of each.
pub(crate) struct Needles<'n> {
    needles: [&'n [u8]; 2],
    /// The first byte of each needle, and its second (any byte for a needle of one byte).
    firsts: [u8; 2],
    seconds: [Option<u8>; 2],
    /// Whether either needle is not empty.
    any: bool,
}

impl<'n> Needles<'n> {
    pub(crate) fn new(needles: [&'n [u8]; 2]) -> Needles<'n> {
        // An empty needle occurs nowhere: it takes the other's bytes (and never matches, below).
        let main = if needles[0].is_empty() { needles[1] } else { needles[0] };
        let own = needles.map(|n| if n.is_empty() { main } else { n });
        let firsts = own.map(|n| n.first().copied().unwrap_or(0));
        let seconds = own.map(|n| n.get(1).copied());
        Needles { needles, firsts, seconds, any: !main.is_empty() }
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
        // Candidates are rare (a needle's first two bytes): each is compared whole.
        let mut check = |at: usize| {
            let tail = haystack.get(at..).unwrap_or(&[]);
            for (n, needle) in self.needles.iter().enumerate() {
                if !needle.is_empty() && tail.starts_with(needle) {
                    found(n, at);
                }
            }
        };
        let mut base = start;
        while base < end {
            // The bytes of a block and the next one's first are read in place where the record
            // holds them all.
            let mut hits = if base + 17 <= bytes.len() {
                masks::candidates(bytes, base, self.firsts, self.seconds)
            } else {
                masks::candidates_at_end(bytes, base, self.firsts, self.seconds)
            };
            // Only positions before `end` are candidates.
            hits &= positions_before(base, end);
            while hits != 0 {
                check(base + hits.trailing_zeros() as usize);
                hits &= hits - 1;
            }
            base += 16;
        }
    }
}

/// Where the value of a structured-data parameter starting at `at` ends: the offset of the
/// first `"` or backslash from `at`, if there is one.
#[inline]
pub(crate) fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut base = at;
    while base < bytes.len() {
        let hits = masks::quote_or_backslash(bytes, base);
        if hits != 0 {
            // Padding is zeros: a hit is a byte of `bytes`.
            return Some(base + hits.trailing_zeros() as usize - at);
        }
        base += 16;
    }
    None
}

/// The length of the SD-NAME (RFC 5424: 1 to 32 printable US-ASCII bytes but `=`, `]` and `"`)
/// starting at `at`, if there is one there: its bytes up to the first other byte or the end.
#[inline]
pub(crate) fn sd_name_len(bytes: &[u8], at: usize) -> Option<usize> {
    // Three blocks at most: a 33rd name byte makes the name too long.
    let mut len = 0;
    while len <= 32 {
        let ends = masks::not_in_sd_name(bytes, at + len);
        if ends != 0 {
            len += ends.trailing_zeros() as usize;
            break;
        }
        len += 16;
    }
    (1..=32).contains(&len).then_some(len)
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
        let (mut spaces, bad) = masks::spaces_and_unprintable(bytes, base);
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

/// The bits of the 16 positions from `at` that come before `end`.
#[inline(always)]
fn positions_before(at: usize, end: usize) -> u32 {
    (1u32 << end.saturating_sub(at).min(16)) - 1
}

// The masks the scans use: SSE2 on x86_64, byte by byte elsewhere.
#[cfg(not(target_arch = "x86_64"))]
use portable as masks;
#[cfg(target_arch = "x86_64")]
use sse2 as masks;

/// The 16-position masks of the scans, with SSE2 (part of the x86_64 baseline: no detection).
/// Each function gives what its namesake in [`portable`] gives (`tests` compare them).
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8, _mm_srli_si128,
    };

    /// The 16 bytes of `bytes` from `at`, zero-padded past its end (a copy only then).
    #[inline(always)]
    fn load(bytes: &[u8], at: usize) -> __m128i {
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

    /// The lanes set in `lanes`, as bits.
    #[inline(always)]
    fn bits(lanes: __m128i) -> u32 {
        // SAFETY: SSE2 only computes.
        unsafe { _mm_movemask_epi8(lanes) as u32 & 0xffff }
    }

    #[inline(always)]
    fn splat(byte: u8) -> __m128i {
        // SAFETY: SSE2 only computes.
        unsafe { _mm_set1_epi8(byte as i8) }
    }

    #[inline(always)]
    pub(super) fn candidates(bytes: &[u8], at: usize, firsts: [u8; 2], seconds: [Option<u8>; 2]) -> u32 {
        candidate_bits(load(bytes, at), load(bytes, at + 1), firsts, seconds)
    }

    /// [`candidates`] of the positions before the end of `bytes` (none past it): for a block
    /// at most 16 bytes from the end of a record of 16 bytes or more, the last 16 bytes read in
    /// place and their bits shifted down to `at` (no copy).
    #[inline(always)]
    pub(super) fn candidates_at_end(bytes: &[u8], at: usize, firsts: [u8; 2], seconds: [Option<u8>; 2]) -> u32 {
        let last = bytes.len().checked_sub(16).filter(|last| *last <= at);
        match last.and_then(|last| Some((last, bytes.get(last..)?))) {
            Some((last, block)) => {
                // SAFETY: `block` is the last 16 bytes; an unaligned load needs no alignment.
                let here = unsafe { _mm_loadu_si128(block.as_ptr().cast()) };
                // SAFETY: SSE2 only computes. The byte shifted in stands past the end.
                let next = unsafe { _mm_srli_si128::<1>(here) };
                candidate_bits(here, next, firsts, seconds).checked_shr((at - last) as u32).unwrap_or(0)
            }
            None => candidates(bytes, at, firsts, seconds) & super::positions_before(at, bytes.len()),
        }
    }

    /// The positions of `here` (its next bytes in `next`) holding a needle's first two bytes.
    #[inline(always)]
    fn candidate_bits(here: __m128i, next: __m128i, firsts: [u8; 2], seconds: [Option<u8>; 2]) -> u32 {
        let needle = |first: u8, second: Option<u8>| {
            // SAFETY: SSE2 only computes.
            unsafe {
                let first = _mm_cmpeq_epi8(here, splat(first));
                match second {
                    Some(second) => _mm_and_si128(first, _mm_cmpeq_epi8(next, splat(second))),
                    None => first,
                }
            }
        };
        let [(fa, sa), (fb, sb)] = [(firsts[0], seconds[0]), (firsts[1], seconds[1])];
        // SAFETY: SSE2 only computes.
        bits(unsafe { _mm_or_si128(needle(fa, sa), needle(fb, sb)) })
    }

    #[inline(always)]
    pub(super) fn quote_or_backslash(bytes: &[u8], at: usize) -> u32 {
        let here = load(bytes, at);
        // SAFETY: SSE2 only computes.
        bits(unsafe { _mm_or_si128(_mm_cmpeq_epi8(here, splat(b'"')), _mm_cmpeq_epi8(here, splat(b'\\'))) })
    }

    #[inline(always)]
    pub(super) fn not_in_sd_name(bytes: &[u8], at: usize) -> u32 {
        let here = load(bytes, at);
        let is = |byte: u8| {
            // SAFETY: SSE2 only computes.
            unsafe { _mm_cmpeq_epi8(here, splat(byte)) }
        };
        // SAFETY: SSE2 only computes.
        bits(unsafe {
            // Signed: bytes from 0x80 on are negative, so below `!` too.
            let outside = _mm_or_si128(_mm_cmplt_epi8(here, splat(b'!')), is(0x7f));
            _mm_or_si128(outside, _mm_or_si128(is(b'='), _mm_or_si128(is(b']'), is(b'"'))))
        })
    }

    #[inline(always)]
    pub(super) fn spaces_and_unprintable(bytes: &[u8], at: usize) -> (u32, u32) {
        let here = load(bytes, at);
        // SAFETY: SSE2 only computes.
        unsafe {
            let space = _mm_cmpeq_epi8(here, splat(b' '));
            // Signed: bytes from 0x80 on are negative, so below `!` too.
            let below = _mm_cmplt_epi8(here, splat(b'!'));
            let bad = _mm_or_si128(_mm_andnot_si128(space, below), _mm_cmpeq_epi8(here, splat(0x7f)));
            (bits(space), bits(bad))
        }
    }
}

/// The scans' masks one byte at a time: the definition the [`sse2`] ones are held to, and what
/// other targets run.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
mod portable {
    /// Byte `i` of `bytes`, 0 past its end (the zero padding of a block).
    fn byte(bytes: &[u8], i: usize) -> u8 {
        bytes.get(i).copied().unwrap_or(0)
    }

    /// Bit `i` for each of positions `at..at + 16` where `hit(position)`.
    fn mask(at: usize, hit: impl Fn(usize) -> bool) -> u32 {
        (0..16).fold(0, |m, i| m | u32::from(hit(at + i)) << i)
    }

    pub(super) fn candidates(bytes: &[u8], at: usize, firsts: [u8; 2], seconds: [Option<u8>; 2]) -> u32 {
        mask(at, |p| {
            firsts.iter().zip(seconds).any(|(f, s)| byte(bytes, p) == *f && s.is_none_or(|s| byte(bytes, p + 1) == s))
        })
    }

    pub(super) fn candidates_at_end(bytes: &[u8], at: usize, firsts: [u8; 2], seconds: [Option<u8>; 2]) -> u32 {
        candidates(bytes, at, firsts, seconds) & super::positions_before(at, bytes.len())
    }

    pub(super) fn quote_or_backslash(bytes: &[u8], at: usize) -> u32 {
        mask(at, |p| matches!(byte(bytes, p), b'"' | b'\\'))
    }

    pub(super) fn not_in_sd_name(bytes: &[u8], at: usize) -> u32 {
        mask(at, |p| !matches!(byte(bytes, p), b'!'..=b'~') || matches!(byte(bytes, p), b'=' | b']' | b'"'))
    }

    pub(super) fn spaces_and_unprintable(bytes: &[u8], at: usize) -> (u32, u32) {
        (mask(at, |p| byte(bytes, p) == b' '), mask(at, |p| !matches!(byte(bytes, p), b' '..=b'~')))
    }
}

#[cfg(test)]
mod tests {
    use super::each_occurrence;

    /// The SSE2 masks are the portable ones, on random bytes of every kind at every offset
    /// (blocks inside the record and crossing its end).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_sse2_masks_are_the_portable_ones() {
        use super::{portable, sse2};
        let alphabet = [b' ', b'!', b'~', 0x7f, 0x1f, 0x80, 0xff, 0, b'"', b'\\', b's', b'u', b']', b'='];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let len = (next() % 48) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let firsts = [alphabet[(next() % 14) as usize], alphabet[(next() % 14) as usize]];
            let seconds = [0, 1].map(|_| (next() % 3 != 0).then(|| alphabet[(next() % 14) as usize]));
            for at in 0..=len + 1 {
                assert_eq!(
                    sse2::candidates(&bytes, at, firsts, seconds),
                    portable::candidates(&bytes, at, firsts, seconds),
                    "candidates of {firsts:?} {seconds:?} in {bytes:?} at {at}"
                );
                assert_eq!(
                    sse2::quote_or_backslash(&bytes, at),
                    portable::quote_or_backslash(&bytes, at),
                    "{bytes:?} at {at}"
                );
                assert_eq!(
                    sse2::candidates_at_end(&bytes, at, firsts, seconds),
                    portable::candidates_at_end(&bytes, at, firsts, seconds),
                    "candidates at the end of {bytes:?} at {at}"
                );
                assert_eq!(sse2::not_in_sd_name(&bytes, at), portable::not_in_sd_name(&bytes, at), "{bytes:?} at {at}");
                assert_eq!(
                    sse2::spaces_and_unprintable(&bytes, at),
                    portable::spaces_and_unprintable(&bytes, at),
                    "{bytes:?} at {at}"
                );
            }
        }
    }

    #[test]
    fn sd_names_are_1_to_32_name_bytes() {
        let naive = |bytes: &[u8], at: usize| {
            let len = bytes.iter().skip(at).take_while(|b| (33..=126).contains(*b) && !b"=]\"".contains(b)).count();
            (1..=32).contains(&len).then_some(len)
        };
        let mut lines: Vec<Vec<u8>> = vec![b"[origin@32473 ip=\"1\"]".to_vec(), b"x".repeat(40), b"".to_vec()];
        for len in [15, 16, 17, 31, 32, 33, 34, 47, 48, 49] {
            let mut line = b"a".repeat(len);
            lines.push(line.clone());
            line.extend_from_slice(b"=\"v\"");
            lines.push(line);
        }
        lines.push("na\u{e9}me=".as_bytes().to_vec());
        for line in &lines {
            for at in 0..=line.len() + 1 {
                assert_eq!(super::sd_name_len(line, at), naive(line, at), "{line:?} at {at}");
            }
        }
    }

    #[test]
    fn value_ends_are_the_first_quote_or_backslash() {
        let line = br#"[x@1 a="value" b="with "escape"" c="a long value, longer than one block of 16" d=""]"#;
        for at in 0..=line.len() {
            let want = line.iter().skip(at).position(|b| matches!(b, b'"' | b'\\'));
            assert_eq!(super::value_end(line, at), want, "from {at}");
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
