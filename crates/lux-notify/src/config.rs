//! The `[notify]` config section: where alarms are delivered (Alertmanager instances, webhooks)
//! and how delivery retries.

use lux_model::{config_key, ConfigProblem};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The notifiers (the `alarm-notify` stage: `lux notify`, and `lux run` when any is configured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Alertmanager instances (`http://alertmanager:9093`), each sent every alert through its
    /// API v2 (`POST /api/v2/alerts`); list every instance of an Alertmanager cluster. Empty: none.
    pub alertmanager: Vec<String>,
    /// How often every active alarm is sent again to Alertmanager, with `endsAt` four intervals
    /// ahead: keep it well under Alertmanager's `resolve_timeout` (5m by default).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub resend_interval: Duration,
    /// Webhooks (`[[notify.webhooks]]`): each alarm record is POSTed to each, as JSON.
    pub webhooks: Vec<WebhookConfig>,
    /// Longest wait for one HTTP request (connect, send, response).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Longest wait between two attempts of a failed delivery: the wait starts at 500ms and
    /// doubles after each failure up to this.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub retry_max: Duration,
    /// Most deliveries waiting per target. When one target has more (it is down), the stage
    /// stops reading the alarms topic until it catches up: the topic holds the rest.
    pub max_pending: usize,
}

/// One webhook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// The URL (`https://hooks.example.net/lux`) each alarm record is POSTed to (one JSON object
    /// per request, the record as in the `alarms` topic, suppressed ones included and flagged).
    pub url: String,
    /// The environment variable holding a bearer token, sent as `Authorization: Bearer ...`
    /// (read at start).
    pub bearer_token_env: Option<String>,
    /// Extra HTTP headers (`{ "X-Team" = "noc" }`).
    pub headers: BTreeMap<String, String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            alertmanager: Vec::new(),
            resend_interval: Duration::from_secs(60),
            webhooks: Vec::new(),
            timeout: Duration::from_secs(10),
            retry_max: Duration::from_secs(30),
            max_pending: 10_000,
        }
    }
}

fn check_url(problems: &mut Vec<ConfigProblem>, key: String, url: &str) {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
        problems.push(ConfigProblem::new(key, format!("{url:?} is not an http:// or https:// URL with a host")));
    }
}

impl NotifyConfig {
    /// Whether any target is configured (else the stage does not run in `lux run`).
    pub fn is_empty(&self) -> bool {
        self.alertmanager.is_empty() && self.webhooks.is_empty()
    }

    /// Every problem, keyed under `prefix` (`notify`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        for (i, url) in self.alertmanager.iter().enumerate() {
            check_url(&mut problems, format!("{}[{i}]", config_key(prefix, "alertmanager")), url);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, hook) in self.webhooks.iter().enumerate() {
            let key = format!("{}[{i}]", config_key(prefix, "webhooks"));
            check_url(&mut problems, format!("{key}.url"), &hook.url);
            if !seen.insert(hook.url.as_str()) || self.alertmanager.contains(&hook.url) {
                problems.push(ConfigProblem::new(format!("{key}.url"), "is listed twice: each target once"));
            }
            for name in hook.headers.keys() {
                let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                if !valid {
                    problems.push(ConfigProblem::new(
                        format!("{key}.headers"),
                        format!("{name:?} is not an HTTP header name (letters, digits, `-`, `_`)"),
                    ));
                }
            }
        }
        if self.resend_interval < Duration::from_secs(1) {
            problems.push(ConfigProblem::new(config_key(prefix, "resend_interval"), "must be at least 1s"));
        }
        if self.timeout.is_zero() {
            problems.push(ConfigProblem::new(config_key(prefix, "timeout"), "must be more than 0s"));
        }
        if self.retry_max < Duration::from_millis(500) {
            problems.push(ConfigProblem::new(config_key(prefix, "retry_max"), "must be at least 500ms"));
        }
        if self.max_pending == 0 {
            problems.push(ConfigProblem::new(config_key(prefix, "max_pending"), "must be at least 1"));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_their_keys() {
        assert!(NotifyConfig::default().validate("notify").is_empty());
        let config = NotifyConfig {
            alertmanager: vec!["http://am:9093".into(), "am:9093".into()],
            webhooks: vec![WebhookConfig {
                url: "http://am:9093".into(),
                headers: [("X Bad".to_owned(), "v".to_owned())].into(),
                ..Default::default()
            }],
            resend_interval: Duration::ZERO,
            ..Default::default()
        };
        let keys: Vec<String> = config.validate("notify").into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "notify.alertmanager[1]",
                "notify.webhooks[0].url",
                "notify.webhooks[0].headers",
                "notify.resend_interval"
            ]
        );
    }
}
