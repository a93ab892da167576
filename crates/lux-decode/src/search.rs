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
        None => {
            let mut word = [0u8; 8];
            let mut mask = [0u8; 8];
            for ((w, m), b) in word.iter_mut().zip(mask.iter_mut()).zip(bytes) {
                *w = *b;
                *m = 0xff;
            }
            (u64::from_le_bytes(word), u64::from_le_bytes(mask))
        }
    }
}

/// Calls `found(n, start)` for every occurrence of `needles[n]` in `haystack`, left to right
/// (overlapping ones included); an empty needle occurs nowhere.
pub(crate) fn each_occurrence(haystack: &[u8], needles: [&[u8]; 2], mut found: impl FnMut(usize, usize)) {
    let firsts = needles.map(|n| n.first().copied());
    // The first (up to) 8 bytes of each needle, and the mask of those bytes: most candidates are
    // rejected by one comparison of words, without comparing slices.
    let heads = needles.map(head);
    let mut check = |at: usize| {
        let tail = haystack.get(at..).unwrap_or(&[]);
        let word = head(tail).0;
        for (n, (needle, (prefix, mask))) in needles.iter().zip(heads).enumerate() {
            if word & mask == prefix && !needle.is_empty() && tail.starts_with(needle) {
                found(n, at);
            }
        }
    };
    let (a, b) = match firsts {
        [Some(a), Some(b)] => (a, b),
        [Some(a), None] => (a, a),
        [None, Some(b)] => (b, b),
        [None, None] => return,
    };
    let (wa, wb) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut chunks = haystack.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let w = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes);
        let mut hits = zero_bytes(w ^ wa) | zero_bytes(w ^ wb);
        while hits != 0 {
            check(base + (hits.trailing_zeros() / 8) as usize);
            hits &= hits - 1;
        }
        base += 8;
    }
    for (i, byte) in chunks.remainder().iter().enumerate() {
        if *byte == a || *byte == b {
            check(base + i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::each_occurrence;

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
