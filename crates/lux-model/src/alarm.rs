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
    /// The rule's threshold at the time.
    pub threshold: u64,
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
