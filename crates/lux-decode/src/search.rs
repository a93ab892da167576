//! Every occurrence of two short needles (`subscriber=` and the record's clear subscriber id) in
//! one pass over a record: a SWAR scan (8 bytes per step, no searcher to build) for the first byte
//! of either needle, each candidate then compared. Records are short and their needles shorter:
//! building a `memchr::memmem` searcher per record costs more than this whole scan.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `w` that is zero (and possibly of some bytes above a zero one,
/// which the caller's comparison weeds out; a zero byte is never missed).
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
    /// (overlapping ones included); an empty needle occurs nowhere. Candidates are the positions
    /// where a needle's first two bytes are, found 8 positions per step.
    #[inline]
    pub(crate) fn each_in(&self, haystack: &[u8], mut found: impl FnMut(usize, usize)) {
        if !self.any {
            return;
        }
        let mut check = |at: usize| {
            let tail = haystack.get(at..).unwrap_or(&[]);
            let word = head(tail).0;
            for (n, (needle, (prefix, mask))) in self.needles.iter().zip(self.heads).enumerate() {
                if word & mask == prefix && !needle.is_empty() && tail.starts_with(needle) {
                    found(n, at);
                }
            }
        };
        let ([fa, fb], [sa, sb], [anya, anyb]) = (self.firsts, self.seconds, self.any_second);
        let candidates = |w: u64, next: u64| {
            let a = zero_bytes(w ^ fa) & (zero_bytes(next ^ sa) | anya);
            let b = zero_bytes(w ^ fb) & (zero_bytes(next ^ sb) | anyb);
            a | b
        };
        let mut chunks = haystack.chunks_exact(8);
        let mut base = 0;
        for chunk in &mut chunks {
            let w = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes);
            // The word of the bytes one further: the second byte of a needle starting at each.
            let next = w >> 8 | u64::from(haystack.get(base + 8).copied().unwrap_or(0)) << 56;
            let mut hits = candidates(w, next);
            while hits != 0 {
                check(base + (hits.trailing_zeros() / 8) as usize);
                hits &= hits - 1;
            }
            base += 8;
        }
        // The last bytes as one zero-padded word: only the bytes present are candidates.
        let (w, present) = head(chunks.remainder());
        let mut hits = candidates(w, w >> 8) & present;
        while hits != 0 {
            check(base + (hits.trailing_zeros() / 8) as usize);
            hits &= hits - 1;
        }
    }
}

/// Calls `found(n, start)` for every occurrence of `needles[n]` in `haystack`, left to right
/// (overlapping ones included); an empty needle occurs nowhere.
pub(crate) fn each_occurrence(haystack: &[u8], needles: [&[u8]; 2], found: impl FnMut(usize, usize)) {
    Needles::new(needles).each_in(haystack, found);
}

/// The high bit of every byte of `w` that is zero, exactly (no false positive).
#[inline]
fn exact_zero_bytes(w: u64) -> u64 {
    !(((w & !HIGHS).wrapping_add(!HIGHS)) | w | !HIGHS)
}

/// The positions of the first `N` spaces of `bytes` from `at`, if every byte before the last of
/// them is printable US-ASCII or a space (an RFC 5424 header's fields and separators): 8 bytes
/// per step.
pub(crate) fn spaces_in_printable<const N: usize>(bytes: &[u8], at: usize) -> Option<[usize; N]> {
    let mut found = [0usize; N];
    let mut n = 0;
    let mut base = at;
    while n < N {
        let (w, present) = head(bytes.get(base..)?);
        let present = present & HIGHS;
        if present == 0 {
            return None;
        }
        let mut spaces = exact_zero_bytes(w ^ 0x2020_2020_2020_2020) & present;
        // Below a space, or above `~` (0x7f and non-ASCII): borrows and carries only mark bytes
        // above a bad one, which are past the limit whenever that one is.
        let bad = ((w.wrapping_sub(ONES * 0x20) & !w) | w.wrapping_add(ONES) | w) & HIGHS & present;
        // Only the bytes before the N-th space count: `limit` masks them.
        let mut limit = u64::MAX;
        while spaces != 0 && n < N {
            let bit = spaces.trailing_zeros();
            if let Some(slot) = found.get_mut(n) {
                *slot = base + (bit / 8) as usize;
            }
            n += 1;
            if n == N {
                limit = (1u64 << bit) - 1;
            }
            spaces &= spaces - 1;
        }
        if bad & limit != 0 {
            return None;
        }
        base += 8;
    }
    Some(found)
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
