//! QoE indicators: the records of the `qoe` topic, one per (window, dimension, value).
//!
//! Every count is additive, so a report rolls minutes up to hours or days by summing them;
//! rates are derived from the counts (and `None` when their denominator is 0); the distinct
//! subscribers of several records are merged from their `subscriber_sketch`, not summed.

use crate::time::{rfc3339, Millis};
use serde::{Deserialize, Serialize};

/// Upper bounds (inclusive, in seconds) of the session-duration histogram's buckets; one more
/// bucket counts the longer sessions.
pub const DURATION_BUCKETS_S: [u64; 10] = [10, 30, 60, 300, 900, 1800, 3600, 14_400, 43_200, 86_400];

/// The session durations of a window (from the stops that carry one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDurations {
    /// Stops with a duration.
    pub count: u64,
    /// Sum of their durations, in seconds.
    pub sum_s: u64,
    /// Shortest and longest, in seconds (`None` when `count` is 0).
    pub min_s: Option<u64>,
    pub max_s: Option<u64>,
    /// Sessions per duration bucket: `buckets[i]` counts durations `<= DURATION_BUCKETS_S[i]`
    /// and above the previous bound; the last entry counts those above the last bound.
    pub buckets: Vec<u64>,
}

impl SessionDurations {
    /// Adds one session of `seconds`.
    pub fn add(&mut self, seconds: u64) {
        self.count = self.count.saturating_add(1);
        self.sum_s = self.sum_s.saturating_add(seconds);
        self.min_s = Some(self.min_s.map_or(seconds, |m| m.min(seconds)));
        self.max_s = Some(self.max_s.map_or(seconds, |m| m.max(seconds)));
        if self.buckets.len() != DURATION_BUCKETS_S.len() + 1 {
            self.buckets.resize(DURATION_BUCKETS_S.len() + 1, 0);
        }
        let i = DURATION_BUCKETS_S.iter().position(|&b| seconds <= b).unwrap_or(DURATION_BUCKETS_S.len());
        if let Some(bucket) = self.buckets.get_mut(i) {
            *bucket = bucket.saturating_add(1);
        }
    }
}

/// One error code and the events that carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCodeCount {
    pub code: String,
    pub count: u64,
}

/// The indicators of one dimension value over one window of event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QoeIndicator {
    /// Always [`crate::schema::QOE`].
    pub schema: String,
    /// The window, `[window_start, window_end)` in event time.
    #[serde(with = "rfc3339")]
    pub window_start: Millis,
    #[serde(with = "rfc3339")]
    pub window_end: Millis,
    /// `equipment`, `site`, `region`, `manufacturer` or `model`.
    pub dimension: String,
    /// The dimension's value (`PAR-012` for a site).
    pub value: String,
    /// Events counted (every kind; events excluded by an intervention are not counted).
    pub events: u64,
    /// Session attempts: `session_start` (a success) plus the setup failures `auth_reject`,
    /// `ppp_failure` and `dhcp_failure`.
    pub attempts: u64,
    /// Attempts that set a session up (`session_start`).
    pub setup_successes: u64,
    /// `setup_successes / attempts`.
    pub setup_success_rate: Option<f64>,
    /// Attempts refused by authentication (`auth_reject`).
    pub auth_failures: u64,
    /// `auth_failures / attempts`.
    pub auth_failure_rate: Option<f64>,
    /// Sessions stopped (`session_stop`).
    pub stops: u64,
    /// Stops whose cause the error catalogue marks `is_drop` (the network, not the subscriber,
    /// ended the session).
    pub drops: u64,
    /// `drops / stops`.
    pub drop_rate: Option<f64>,
    /// Stops with a duration shorter than `qoe.short_session`.
    pub short_sessions: u64,
    /// `short_sessions / durations.count`.
    pub short_session_ratio: Option<f64>,
    /// Events the catalogue (or the decoder) counts as failures.
    pub failures: u64,
    /// Distinct subscribers of failures and drops, estimated (HyperLogLog, standard error
    /// 1.6%; exact up to 10, within 2 up to 100).
    pub affected_subscribers: u64,
    /// The HyperLogLog sketch behind `affected_subscribers`, to merge windows or values.
    pub subscriber_sketch: String,
    pub durations: SessionDurations,
    /// The error codes of failures and drops, most frequent first (ties by code), at most
    /// `qoe.top_error_codes`.
    pub top_error_codes: Vec<ErrorCodeCount>,
    /// Events covered by an intervention with `exclude_from_kpi`: counted here only.
    pub excluded_events: u64,
}

/// `numerator / denominator`, `None` when the denominator is 0.
pub fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}
