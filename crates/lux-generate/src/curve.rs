//! The daily load curve of a residential broadband network: quiet around 04:00, a daytime
//! plateau, a peak around 21:00 (UTC), normalised so that its mean over a day is 1.

const DAY_MS: i64 = 86_400_000;

/// Relative load at each hour (h:00), before normalisation; linear in between.
const HOURLY: [f64; 24] = [
    0.75, 0.55, 0.40, 0.30, 0.25, 0.30, 0.45, 0.70, 0.90, 1.00, 1.05, 1.10, //
    1.15, 1.10, 1.05, 1.05, 1.10, 1.25, 1.40, 1.55, 1.70, 1.75, 1.50, 1.10,
];

/// The load factor at `ms` (milliseconds since the epoch, UTC): the multiplier of the mean rate.
pub fn load_factor(ms: i64) -> f64 {
    let mean = HOURLY.iter().sum::<f64>() / HOURLY.len() as f64;
    let hours = ms.rem_euclid(DAY_MS) as f64 / 3_600_000.0;
    let hour = (hours.floor() as usize) % 24;
    let frac = hours - hours.floor();
    let a = HOURLY[hour];
    let b = HOURLY[(hour + 1) % 24];
    (a + (b - a) * frac) / mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_over_a_day_is_one() {
        let n = 24 * 60;
        let sum: f64 = (0..n).map(|m| load_factor(1_767_571_200_000 + m * 60_000 + 30_000)).sum();
        assert!((sum / n as f64 - 1.0).abs() < 1e-3, "{}", sum / n as f64);
    }

    #[test]
    fn night_is_low_and_evening_is_the_peak() {
        let day = 1_767_571_200_000;
        let at = |h: i64| load_factor(day + h * 3_600_000);
        assert!(at(4) < 0.3);
        assert!(at(21) > 1.7);
        let peak = (0..24).max_by(|a, b| at(*a).total_cmp(&at(*b)));
        assert_eq!(peak, Some(21));
        assert!(load_factor(-1).is_finite());
    }
}
