//! Periods of a report: the last complete hour, day or (ISO, Monday to Sunday) week before a
//! time, in UTC, or an explicit `[from, to)`; the previous period of the same length; the names
//! of a period for titles and file names.

use crate::schedule::Every;
use crate::Period;
use chrono::{DateTime, TimeZone, Utc};
use lux_model::Millis;

const HOUR_MS: Millis = 3_600_000;
const DAY_MS: Millis = 24 * HOUR_MS;
const WEEK_MS: Millis = 7 * DAY_MS;

/// What period a report covers, before it is placed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodSpec {
    /// The last complete hour (UTC) before the reference time.
    Hour,
    /// The last complete day (UTC, midnight to midnight) before the reference time.
    Day,
    /// The last complete ISO week (UTC, Monday 00:00 to Monday 00:00) before the reference time.
    Week,
    /// An explicit period.
    Range(Period),
}

impl PeriodSpec {
    /// `hour`, `day` or `week`.
    pub fn parse_kind(text: &str) -> Result<PeriodSpec, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hour" | "hourly" => Ok(PeriodSpec::Hour),
            "day" | "daily" => Ok(PeriodSpec::Day),
            "week" | "weekly" => Ok(PeriodSpec::Week),
            other => Err(format!("unknown period {other:?}: use hour, day or week, or --from and --to")),
        }
    }

    /// `[from, to)` from two RFC 3339 times (`2026-11-26T00:00:00Z`); `to` must be after `from`.
    pub fn range(from: &str, to: &str) -> Result<PeriodSpec, String> {
        let (from, to) = (parse_time(from)?, parse_time(to)?);
        if to <= from {
            return Err(format!(
                "the period ends ({}) before it starts ({}): --to must be after --from",
                lux_model::format_rfc3339_millis(to),
                lux_model::format_rfc3339_millis(from)
            ));
        }
        Ok(PeriodSpec::Range(Period { from, to }))
    }

    /// The period this spec names, relative to `at` (the current time unless `--at`).
    pub fn resolve(self, at: Millis) -> Period {
        match self {
            // The same calendar periods as the schedules' (`Every`), so that a scheduled report
            // and `lux report --period` cover the same hours, days and weeks.
            PeriodSpec::Hour => Every::Hour.last_complete(at),
            PeriodSpec::Day => Every::Day.last_complete(at),
            PeriodSpec::Week => Every::Week.last_complete(at),
            PeriodSpec::Range(period) => period,
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time; the error says what was expected.
pub fn parse_time(text: &str) -> Result<Millis, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("bad time {text:?} ({e}): use RFC 3339 with a zone, e.g. 2026-11-26T00:00:00Z"))
}

fn utc(ms: Millis) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

impl Period {
    /// Its length in milliseconds.
    pub fn len_ms(&self) -> Millis {
        self.to.saturating_sub(self.from)
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Period {
        Period { from: self.from.saturating_sub(self.len_ms()), to: self.from }
    }

    /// Whether `t` is in `[from, to)`.
    pub fn contains(&self, t: Millis) -> bool {
        self.from <= t && t < self.to
    }

    /// `hour`, `day` or `week` when the period is one aligned on UTC (a week on Monday), else
    /// `custom`.
    pub fn kind(&self) -> &'static str {
        let len = self.len_ms();
        let aligned = |unit: Millis, offset: Millis| (self.from - offset).rem_euclid(unit) == 0;
        if len == HOUR_MS && aligned(HOUR_MS, 0) {
            "hour"
        } else if len == DAY_MS && aligned(DAY_MS, 0) {
            "day"
        } else if len == WEEK_MS && aligned(WEEK_MS, 4 * DAY_MS) {
            "week"
        } else {
            "custom"
        }
    }

    /// The period for people: `hour 2026-11-26 13:00 UTC`, `day 2026-11-26`, `week 2026-W48`,
    /// `2026-11-26 10:00 UTC to 2026-11-26 12:30 UTC`.
    pub fn label(&self) -> String {
        let (Some(from), Some(to)) = (utc(self.from), utc(self.to)) else {
            return format!("{} to {}", self.from, self.to);
        };
        match self.kind() {
            "hour" => format!("hour {}", from.format("%Y-%m-%d %H:00 UTC")),
            "day" => format!("day {}", from.format("%Y-%m-%d")),
            "week" => format!(
                "week {} ({} to {})",
                from.format("%G-W%V"),
                from.format("%Y-%m-%d"),
                (to - chrono::Duration::days(1)).format("%Y-%m-%d")
            ),
            _ => format!("{} to {}", from.format("%Y-%m-%d %H:%M:%S UTC"), to.format("%Y-%m-%d %H:%M:%S UTC")),
        }
    }

    /// A file name stem for the period's report: `lux-report-hour-2026-11-26T13`,
    /// `lux-report-day-2026-11-26`, `lux-report-week-2026-W48`,
    /// `lux-report-20261126T100000Z-20261126T123000Z`.
    pub fn stem(&self) -> String {
        let (Some(from), Some(to)) = (utc(self.from), utc(self.to)) else {
            return format!("lux-report-{}-{}", self.from, self.to);
        };
        match self.kind() {
            "hour" => format!("lux-report-hour-{}", from.format("%Y-%m-%dT%H")),
            "day" => format!("lux-report-day-{}", from.format("%Y-%m-%d")),
            "week" => format!("lux-report-week-{}", from.format("%G-W%V")),
            _ => format!("lux-report-{}-{}", from.format("%Y%m%dT%H%M%SZ"), to.format("%Y%m%dT%H%M%SZ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Millis {
        parse_time(text).unwrap()
    }

    #[test]
    fn last_complete_hour_day_and_week_before_a_time() {
        let at = t("2026-11-26T13:45:10Z"); // a Thursday
        let hour = PeriodSpec::Hour.resolve(at);
        assert_eq!(hour, Period { from: t("2026-11-26T12:00:00Z"), to: t("2026-11-26T13:00:00Z") });
        assert_eq!(hour.previous(), Period { from: t("2026-11-26T11:00:00Z"), to: t("2026-11-26T12:00:00Z") });
        assert_eq!((hour.kind(), hour.stem().as_str()), ("hour", "lux-report-hour-2026-11-26T12"));
        let day = PeriodSpec::Day.resolve(at);
        assert_eq!(day, Period { from: t("2026-11-25T00:00:00Z"), to: t("2026-11-26T00:00:00Z") });
        assert_eq!((day.kind(), day.stem().as_str()), ("day", "lux-report-day-2026-11-25"));
        let week = PeriodSpec::Week.resolve(at);
        assert_eq!(week, Period { from: t("2026-11-16T00:00:00Z"), to: t("2026-11-23T00:00:00Z") });
        assert_eq!(week.previous().from, t("2026-11-09T00:00:00Z"));
        assert_eq!((week.kind(), week.stem().as_str()), ("week", "lux-report-week-2026-W47"));
        assert_eq!(week.label(), "week 2026-W47 (2026-11-16 to 2026-11-22)");
        // On a boundary, the period that just ended.
        assert_eq!(PeriodSpec::Day.resolve(t("2026-11-26T00:00:00Z")).from, t("2026-11-25T00:00:00Z"));
        assert_eq!(PeriodSpec::Week.resolve(t("2026-11-23T00:00:00Z")).from, t("2026-11-16T00:00:00Z"));
    }

    #[test]
    fn explicit_ranges_are_checked() {
        let range = PeriodSpec::range("2026-11-26T10:00:00Z", "2026-11-26T12:30:00+00:00").unwrap();
        let period = range.resolve(0);
        assert_eq!(period.len_ms(), 150 * 60_000);
        assert_eq!(period.kind(), "custom");
        assert_eq!(period.stem(), "lux-report-20261126T100000Z-20261126T123000Z");
        assert!(PeriodSpec::range("2026-11-26T10:00:00Z", "2026-11-26T10:00:00Z").is_err());
        assert!(PeriodSpec::range("yesterday", "2026-11-26T10:00:00Z").unwrap_err().contains("RFC 3339"));
        assert!(PeriodSpec::parse_kind("month").is_err());
        assert_eq!(PeriodSpec::parse_kind("Week"), Ok(PeriodSpec::Week));
    }
}
