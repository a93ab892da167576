//! When a schedule runs and which period each run covers: `every = "day"` with an `offset`, or
//! a cron expression (the `croner` crate) with a `period`, all in UTC. A run scheduled at `t`
//! covers the last complete period that ended at or before `t`, so that a run caught up late
//! (LUX was down at its time) still covers the period it was meant for.

use crate::config::ScheduleConfig;
use crate::Period;
use chrono::{DateTime, Utc};
use lux_model::{ConfigProblem, Millis};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const HOUR_MS: Millis = 3_600_000;
const DAY_MS: Millis = 24 * HOUR_MS;
/// 1970-01-01 was a Thursday: days since the epoch plus this, modulo 7, is days since Monday.
const EPOCH_DAYS_SINCE_MONDAY: Millis = 3;

/// A calendar period length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    Hour,
    Day,
    /// An ISO week, Monday 00:00 to Monday 00:00 (UTC).
    Week,
}

impl Every {
    pub fn as_str(self) -> &'static str {
        match self {
            Every::Hour => "hour",
            Every::Day => "day",
            Every::Week => "week",
        }
    }

    pub fn length_ms(self) -> Millis {
        match self {
            Every::Hour => HOUR_MS,
            Every::Day => DAY_MS,
            Every::Week => 7 * DAY_MS,
        }
    }

    /// The start of the period holding `t`.
    pub fn floor(self, t: Millis) -> Millis {
        match self {
            Every::Hour | Every::Day => t - t.rem_euclid(self.length_ms()),
            Every::Week => {
                let day = t.div_euclid(DAY_MS);
                (day - (day + EPOCH_DAYS_SINCE_MONDAY).rem_euclid(7)) * DAY_MS
            }
        }
    }

    /// The last complete period that ended at or before `t`.
    pub fn last_complete(self, t: Millis) -> Period {
        let to = self.floor(t);
        Period { from: to - self.length_ms(), to }
    }
}

/// When a schedule runs.
#[derive(Debug, Clone)]
pub struct Timing {
    when: When,
    /// The period each run covers.
    pub period: Every,
}

#[derive(Debug, Clone)]
enum When {
    Every { every: Every, offset: Millis },
    Cron(Box<croner::Cron>),
}

impl Timing {
    /// The timing of `schedule`, or the problem with it (keyed under `key`, the schedule's).
    pub fn of(schedule: &ScheduleConfig, key: &str) -> Result<Timing, ConfigProblem> {
        match (&schedule.every, &schedule.cron) {
            (Some(_), Some(_)) => Err(ConfigProblem::new(
                format!("{key}.cron"),
                "is set with `every`: a schedule runs either every hour/day/week or on a cron expression",
            )),
            (None, None) => Err(ConfigProblem::new(
                format!("{key}.every"),
                "is missing: set `every` (hour, day, week) or `cron` (e.g. \"0 6 * * *\")",
            )),
            (Some(every), None) => {
                let offset = schedule.offset.unwrap_or(Duration::from_secs(300));
                let offset_ms = Millis::try_from(offset.as_millis()).unwrap_or(Millis::MAX);
                if offset_ms >= every.length_ms() {
                    return Err(ConfigProblem::new(
                        format!("{key}.offset"),
                        format!("must be less than one {} (the run comes after its period ends)", every.as_str()),
                    ));
                }
                let period = schedule.period.unwrap_or(*every);
                Ok(Timing { when: When::Every { every: *every, offset: offset_ms }, period })
            }
            (None, Some(expression)) => {
                if schedule.offset.is_some() {
                    return Err(ConfigProblem::new(
                        format!("{key}.offset"),
                        "applies to `every` only: a cron expression says the time itself",
                    ));
                }
                let Some(period) = schedule.period else {
                    return Err(ConfigProblem::new(
                        format!("{key}.period"),
                        "is missing: with `cron`, say which period a run covers (hour, day, week)",
                    ));
                };
                let cron = croner::parser::CronParser::new().parse(expression).map_err(|error| {
                    ConfigProblem::new(
                        format!("{key}.cron"),
                        format!("{expression:?} is not a cron expression ({error}); e.g. \"0 6 * * *\" for 06:00 UTC every day"),
                    )
                })?;
                let timing = Timing { when: When::Cron(Box::new(cron)), period };
                if timing.next_after(0).is_none() {
                    return Err(ConfigProblem::new(format!("{key}.cron"), format!("{expression:?} never runs")));
                }
                Ok(timing)
            }
        }
    }

    /// The first scheduled time strictly after `t`, if any.
    pub fn next_after(&self, t: Millis) -> Option<Millis> {
        match &self.when {
            When::Every { every, offset } => {
                let at = every.floor(t) + offset;
                Some(if at > t { at } else { every.floor(t) + every.length_ms() + offset })
            }
            When::Cron(cron) => {
                let start = DateTime::<Utc>::from_timestamp_millis(t)?;
                let next = cron.find_next_occurrence(&start, false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }

    /// The last scheduled time at or before `t`, if any.
    pub fn latest_at_or_before(&self, t: Millis) -> Option<Millis> {
        match &self.when {
            When::Every { every, offset } => {
                let at = every.floor(t) + offset;
                Some(if at <= t { at } else { at - every.length_ms() })
            }
            When::Cron(cron) => {
                let start = DateTime::<Utc>::from_timestamp_millis(t)?;
                let previous = cron.find_previous_occurrence(&start, true).ok()?;
                Some(previous.timestamp_millis())
            }
        }
    }

    /// The period a run scheduled at `at` covers.
    pub fn period_of(&self, at: Millis) -> Period {
        self.period.last_complete(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lux_model::format_rfc3339_millis as show;

    fn ms(text: &str) -> Millis {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    fn schedule(text: &str) -> ScheduleConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn periods_are_utc_hours_days_and_monday_weeks() {
        let t = ms("2026-11-26T13:45:00Z"); // a Thursday
        let hour = Every::Hour.last_complete(t);
        assert_eq!(
            (show(hour.from), show(hour.to)),
            ("2026-11-26T12:00:00.000Z".into(), "2026-11-26T13:00:00.000Z".into())
        );
        let day = Every::Day.last_complete(t);
        assert_eq!(
            (show(day.from), show(day.to)),
            ("2026-11-25T00:00:00.000Z".into(), "2026-11-26T00:00:00.000Z".into())
        );
        let week = Every::Week.last_complete(t);
        assert_eq!(
            (show(week.from), show(week.to)),
            ("2026-11-16T00:00:00.000Z".into(), "2026-11-23T00:00:00.000Z".into())
        );
        // On the boundary itself, the period that just ended.
        let week = Every::Week.last_complete(ms("2026-11-23T00:00:00Z"));
        assert_eq!(show(week.from), "2026-11-16T00:00:00.000Z");
    }

    #[test]
    fn every_day_at_an_offset_runs_once_a_day_for_the_day_before() {
        let timing = Timing::of(&schedule("name = \"d\"\nevery = \"day\"\noffset = \"6h\""), "s").unwrap();
        let next = timing.next_after(ms("2026-11-26T05:00:00Z")).unwrap();
        assert_eq!(show(next), "2026-11-26T06:00:00.000Z");
        let after = timing.next_after(next).unwrap();
        assert_eq!(show(after), "2026-11-27T06:00:00.000Z");
        assert_eq!(show(timing.period_of(next).from), "2026-11-25T00:00:00.000Z");
        assert_eq!(timing.latest_at_or_before(next), Some(next));
        assert_eq!(show(timing.latest_at_or_before(next - 1).unwrap()), "2026-11-25T06:00:00.000Z");
    }

    #[test]
    fn cron_runs_at_its_times_for_its_period() {
        let timing = Timing::of(&schedule("name = \"w\"\ncron = \"30 7 * * 1-5\"\nperiod = \"day\""), "s").unwrap();
        // Friday 08:00 -> Monday 07:30.
        let next = timing.next_after(ms("2026-11-27T08:00:00Z")).unwrap();
        assert_eq!(show(next), "2026-11-30T07:30:00.000Z");
        assert_eq!(show(timing.period_of(next).from), "2026-11-29T00:00:00.000Z");
        assert_eq!(show(timing.latest_at_or_before(next - 1).unwrap()), "2026-11-27T07:30:00.000Z");
        let hourly = Timing::of(&schedule("name = \"h\"\ncron = \"@hourly\"\nperiod = \"hour\""), "s").unwrap();
        assert_eq!(show(hourly.next_after(ms("2026-11-27T08:00:00Z")).unwrap()), "2026-11-27T09:00:00.000Z");
    }

    #[test]
    fn bad_timings_are_refused_with_their_key() {
        let problem = |text: &str| Timing::of(&schedule(text), "report.schedule[0]").unwrap_err().key;
        assert_eq!(problem("name = \"x\""), "report.schedule[0].every");
        assert_eq!(problem("name = \"x\"\nevery = \"hour\"\noffset = \"1h\""), "report.schedule[0].offset");
        assert_eq!(problem("name = \"x\"\ncron = \"0 6 * * *\""), "report.schedule[0].period");
        assert_eq!(problem("name = \"x\"\ncron = \"0 25 * * *\"\nperiod = \"day\""), "report.schedule[0].cron");
        assert_eq!(problem("name = \"x\"\ncron = \"0 6 * * *\"\nevery = \"day\""), "report.schedule[0].cron");
    }
}
