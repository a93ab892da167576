//! RFC 3339 timestamps to milliseconds: a fixed-layout parser for the form equipment sends
//! (`2026-01-05T10:00:00.123456+01:00`, `...Z`), falling back to chrono's general parser for
//! anything else (lowercase separators, leap seconds, malformed text and its error message).

use chrono::DateTime;
use lux_model::Millis;

/// Milliseconds since the epoch of an RFC 3339 timestamp, or chrono's error.
pub(crate) fn rfc3339_millis(text: &str) -> Result<Millis, chrono::ParseError> {
    rfc3339_millis_with(text, &mut DayCache::default())
}

/// The date, hour and minute (`YYYY-MM-DDTHH:MM`) a decoder read last, checked, and their
/// seconds since the epoch (before the zone offset): records of a stream mostly share their
/// minute, whose date then is neither read nor checked again.
#[derive(Debug, Default, Clone)]
pub(crate) struct DayCache {
    /// Whether `minute` holds a checked one (the default holds none).
    set: bool,
    minute: [u8; 16],
    secs: i64,
}

/// [`rfc3339_millis`], with the date, hour and minute taken from `cache` when they are the last
/// ones.
pub(crate) fn rfc3339_millis_with(text: &str, cache: &mut DayCache) -> Result<Millis, chrono::ParseError> {
    match fast(text.as_bytes(), cache) {
        Some(ms) => Ok(ms),
        None => DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()),
    }
}

/// `n` ASCII digits of `b` from `at` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let mut v = 0i64;
    for d in b.get(at..at + n)? {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(d - b'0');
    }
    Some(v)
}

/// Days from 1970-01-01 to the proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The seconds since the epoch of `YYYY-MM-DDTHH:MM` (local to the offset that follows), every
/// field in range; `None` for anything else.
fn minute_secs(head: &[u8; 16]) -> Option<i64> {
    let [y0, y1, y2, y3, dash1, mo0, mo1, dash2, d0, d1, t, h0, h1, colon1, mi0, mi1] = *head;
    if dash1 != b'-' || dash2 != b'-' || t != b'T' || colon1 != b':' {
        return None;
    }
    let values = [y0, y1, y2, y3, mo0, mo1, d0, d1, h0, h1, mi0, mi1].map(|c| c.wrapping_sub(b'0'));
    if values.iter().fold(0u8, |acc, d| acc | u8::from(*d > 9)) != 0 {
        return None;
    }
    let [y0, y1, y2, y3, mo0, mo1, d0, d1, h0, h1, mi0, mi1] = values.map(i64::from);
    let (year, month, day) = (y0 * 1000 + y1 * 100 + y2 * 10 + y3, mo0 * 10 + mo1, d0 * 10 + d1);
    let (hour, minute) = (h0 * 10 + h1, mi0 * 10 + mi1);
    if hour > 23 || minute > 59 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60)
}

/// `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)`, every field in range; `None` for anything else.
fn fast(b: &[u8], cache: &mut DayCache) -> Option<Millis> {
    if b.len() < 20 {
        return None;
    }
    let head: [u8; 16] = b.get(..16)?.try_into().ok()?;
    let minute = if cache.set && cache.minute == head {
        cache.secs
    } else {
        let secs = minute_secs(&head)?;
        *cache = DayCache { set: true, minute: head, secs };
        secs
    };
    let [colon2, s0, s1]: [u8; 3] = b.get(16..19)?.try_into().ok()?;
    let (s0, s1) = (s0.wrapping_sub(b'0'), s1.wrapping_sub(b'0'));
    if colon2 != b':' || s0 > 5 || s1 > 9 {
        return None;
    }
    let second = i64::from(s0 * 10 + s1);
    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(b.get(at).map_or(0, |d| d - b'0'));
            }
            at += 1;
        }
        match at - start {
            0 => return None,
            1 => millis *= 100,
            2 => millis *= 10,
            _ => {}
        }
    }
    let offset_minutes = match b.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hm = [*h1, *h2, *m1, *m2];
            let (h, m) = (digits(&hm, 0, 2)?, digits(&hm, 2, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }
        }
        _ => return None,
    };
    let secs = minute + second - offset_minutes * 60;
    Some(secs * 1_000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn chrono_ms(text: &str) -> Option<Millis> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
    }

    #[test]
    fn agrees_with_chrono() {
        for text in [
            "2026-01-05T10:00:00Z",
            "2026-01-05T10:00:00.1Z",
            "2026-01-05T10:00:00.12Z",
            "2026-01-05T10:00:00.123456789Z",
            "2026-01-05T10:00:00.003+01:00",
            "1969-12-31T23:59:59.999-00:30",
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-05T24:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-01-05t10:00:00z",
            "2026-01-05 10:00:00Z",
            "2026-01-05T10:00:00.Z",
            "2026-01-05T10:00:00+1:00",
            "2026-01-05T10:00:00+01:00x",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999+23:59",
            "2026-01-05T10:00:00",
            "-",
        ] {
            assert_eq!(rfc3339_millis(text).ok(), chrono_ms(text), "{text}");
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3339);
        for _ in 0..20_000 {
            let text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}",
                rng.gen_range(0..10_000),
                rng.gen_range(0..14),
                rng.gen_range(0..33),
                rng.gen_range(0..25),
                rng.gen_range(0..61),
                rng.gen_range(0..61),
                [".5", ".123", ".000001", ""][rng.gen_range(0..4)],
                ["Z", "+05:30", "-11:59", "+24:00", "-00:60"][rng.gen_range(0..5)],
            );
            assert_eq!(rfc3339_millis(&text).ok(), chrono_ms(&text), "{text}");
        }
    }

    #[test]
    fn a_cached_minute_gives_the_times_chrono_gives() {
        // A stream whose date, hour and minute mostly repeat (then only the seconds, fraction
        // and zone are read), change, or are broken just after the cached part.
        let mut cache = DayCache::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
        for _ in 0..50_000 {
            let text = format!(
                "{}{}{}{}",
                ["2026-01-05T10:00", "2026-01-05T10:01", "2024-02-29T23:59", "2023-02-29T00:00", "2026-01-05T10:0x"]
                    [rng.gen_range(0..5)],
                [":00", ":59", ":60", ":61", ":5", "x00", ":0a", ":7", ":09"][rng.gen_range(0..9)],
                ["", ".5", ".123", ".123456", "."][rng.gen_range(0..5)],
                ["Z", "+01:00", "-05:30", "+24:00", "z", ""][rng.gen_range(0..6)],
            );
            assert_eq!(rfc3339_millis_with(&text, &mut cache).ok(), chrono_ms(&text), "{text}");
        }
    }

    #[test]
    fn a_cached_day_gives_the_times_chrono_gives() {
        // One cache for a stream of dates that repeat, change, and are sometimes invalid.
        let mut cache = DayCache::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5424);
        for _ in 0..20_000 {
            let text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
                [2024, 2026, 2023][rng.gen_range(0..3)],
                rng.gen_range(1..3),
                [28, 29, 30, 31, 1][rng.gen_range(0..5)],
                rng.gen_range(0..25),
                rng.gen_range(0..61),
                rng.gen_range(0..61),
                ["Z", "+05:30", ".25Z"][rng.gen_range(0..3)],
            );
            assert_eq!(rfc3339_millis_with(&text, &mut cache).ok(), chrono_ms(&text), "{text}");
        }
    }
}
