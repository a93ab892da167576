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

/// The high bit of every byte of `w` that is zero, exactly (no false positive).
#[inline]
fn exact_zero_bytes(w: u64) -> u64 {
    !(((w & !HIGHS).wrapping_add(!HIGHS)) | w | !HIGHS)
}

/// The high bit of every byte of `w` that is not printable US-ASCII nor a space: below 0x20,
/// 0x7f, or not ASCII.
#[inline]
fn unprintable_bytes(w: u64) -> u64 {
    // (b & 0x7f) + 0x60 has its high bit set exactly when b & 0x7f >= 0x20 (no carry between bytes).
    let at_least_space = ((w & !HIGHS) + 0x6060_6060_6060_6060) & HIGHS;
    (!at_least_space & HIGHS) | (w & HIGHS) | exact_zero_bytes(w ^ 0x7f7f_7f7f_7f7f_7f7f)
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
        let bad = unprintable_bytes(w) & present;
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
