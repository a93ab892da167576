//! Alarms: the records of the `alarms` topic.

use crate::time::{rfc3339, Millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where an alarm is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// The threshold was crossed: a new alarm.
    Raised,
    /// The alarm still holds; its counts changed.
    Updated,
    /// The rate fell under the clear level: the alarm is over.
    Cleared,
}

/// An event the window half of the alarm stage found too late for one rule's windows, in the
/// `late` topic beside the enriched records the route half finds late. It happens when the
/// idleness of the other partitions released the watermark while the event's partition was
/// behind. The enriched record is `topic`/`partition`/`offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateForWindow {
    /// Always [`crate::schema::LATE_FOR_WINDOW`].
    pub schema: String,
    /// The rule whose windows it was too late for.
    pub rule: String,
    /// The group it would have been counted in.
    pub group_key: String,
    /// Its event time.
    #[serde(with = "rfc3339")]
    pub event_time: Millis,
    /// The window engine's watermark when it came.
    #[serde(with = "rfc3339::option")]
    pub watermark: Option<Millis>,
    /// Where the enriched record is: topic, partition and offset (none in routed records of an
    /// older LUX).
    pub topic: String,
    pub partition: u32,
    pub offset: Option<u64>,
}

/// One alarm lifecycle record. All records of one alarm share its `alarm_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// Always [`crate::schema::ALARM`].
    pub schema: String,
    /// Deterministic: rule, group key and the start of the window that raised it.
    pub alarm_id: String,
    /// The rule's name from config.
    pub rule: String,
    /// The group, as `dimension=value` pairs joined by `,` (`site=PAR-012`).
    pub group_key: String,
    /// The group as a map.
    pub group: BTreeMap<String, String>,
    pub state: AlarmState,
    pub severity: String,
    /// Failures counted in the window.
    pub count: u64,
    /// Events (matching the rule's filter before the failure test) counted in the window.
    pub total: u64,
    /// The failures that raise the alarm: the rule's `threshold` (a count rule), or for a ratio
    /// rule the failures this window needed to reach its ratio (`threshold_ratio` x `total`,
    /// rounded up, at least 1).
    pub threshold: u64,
    /// A ratio rule's `threshold_ratio` (failures / events); absent for a count rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_ratio: Option<Ratio>,
    /// A ratio rule's `min_events`: the fewest events a window needs to raise; absent for a count
    /// rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<u64>,
    /// The window this record was computed on: `[window_start, window_end)`.
    #[serde(with = "rfc3339")]
    pub window_start: Millis,
    #[serde(with = "rfc3339")]
    pub window_end: Millis,
    /// Event time of the first failure of this alarm.
    #[serde(with = "rfc3339")]
    pub first_seen: Millis,
    /// Event time of the latest failure counted.
    #[serde(with = "rfc3339")]
    pub last_seen: Millis,
    /// Whether an intervention covering the group suppressed notification of this alarm.
    pub suppressed_by_intervention: bool,
    /// The intervention that suppressed it (with `suppressed_by_intervention`): the one covering
    /// the equipment of the latest failure counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervention_id: Option<String>,
}

/// A ratio in [0, 1] kept in millionths, so that records compare exactly and thresholds are
/// tested in integers; written as a JSON number (`0.2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ratio(u32);

impl Ratio {
    /// Millionths in one.
    pub const ONE: u32 = 1_000_000;

    /// The ratio nearest `value`, clamped to [0, 1] (NaN gives 0).
    pub fn from_f64(value: f64) -> Ratio {
        let scaled = (value * f64::from(Ratio::ONE)).round();
        if scaled.is_nan() || scaled <= 0.0 {
            Ratio(0)
        } else if scaled >= f64::from(Ratio::ONE) {
            Ratio(Ratio::ONE)
        } else {
            // In (0, ONE): the cast is exact.
            Ratio(scaled as u32)
        }
    }

    /// The ratio in millionths.
    pub fn millionths(self) -> u32 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / f64::from(Ratio::ONE)
    }

    /// Whether `part / whole` is at least this ratio (false when `whole` is 0).
    pub fn reached_by(self, part: u64, whole: u64) -> bool {
        whole > 0 && u128::from(part) * u128::from(Ratio::ONE) >= u128::from(self.0) * u128::from(whole)
    }

    /// The fewest parts of `whole` that reach this ratio (`ceil(ratio x whole)`).
    pub fn parts_of(self, whole: u64) -> u64 {
        let scaled = u128::from(self.0) * u128::from(whole);
        u64::try_from(scaled.div_ceil(u128::from(Ratio::ONE))).unwrap_or(u64::MAX)
    }
}

impl Serialize for Ratio {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Ratio::from_f64(f64::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::Ratio;

    #[test]
    fn ratio_is_exact_in_millionths_and_round_trips_as_a_number() {
        let r = Ratio::from_f64(0.2);
        assert_eq!(r.millionths(), 200_000);
        assert!(r.reached_by(10, 50) && !r.reached_by(9, 50) && !r.reached_by(0, 0));
        assert_eq!((r.parts_of(50), r.parts_of(51), r.parts_of(0)), (10, 11, 0));
        assert_eq!(serde_json::to_string(&r).unwrap(), "0.2");
        assert_eq!(serde_json::from_str::<Ratio>("0.2").unwrap(), r);
        assert_eq!((Ratio::from_f64(f64::NAN), Ratio::from_f64(7.0)), (Ratio::from_f64(0.0), Ratio::from_f64(1.0)));
    }
}
