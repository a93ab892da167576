//! The `[metrics]` config section: where the `/metrics` endpoint listens and how many series the
//! window counters may take.

use lux_model::{config_key, ConfigProblem};
use serde::{Deserialize, Serialize};

/// The Prometheus `/metrics` endpoint of every long-running `lux` process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// The address and port `/metrics` is served on (`127.0.0.1:9464`; `0.0.0.0:9464` for every
    /// interface). Empty: no endpoint. When the port is taken (two `lux` processes on one host
    /// with the defaults), the process logs an error and runs on without it: give each process
    /// its own port (`LUX_METRICS__LISTEN`).
    pub listen: String,
    /// Most groups per alarm rule exposed as window-counter series
    /// (`lux_alarm_window_failures{rule,group}`): those with the most failures in their current
    /// window. The groups left out are counted in `lux_alarm_window_groups_omitted{rule}`.
    pub max_series_per_rule: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: "127.0.0.1:9464".to_owned(), max_series_per_rule: 1000 }
    }
}

impl MetricsConfig {
    /// The address to listen on; `None` when the endpoint is off.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return None;
        }
        listen.parse().ok()
    }

    /// Every problem, keyed under `prefix` (`metrics`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let listen = self.listen.trim();
        if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(ConfigProblem::new(
                config_key(prefix, "listen"),
                format!("{listen:?} is not an IP address and port (`127.0.0.1:9464`, `[::]:9464`); empty turns the endpoint off"),
            ));
        }
        if self.max_series_per_rule == 0 {
            problems.push(ConfigProblem::new(
                config_key(prefix, "max_series_per_rule"),
                "must be at least 1 (the groups beyond it are counted, not listed)",
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_an_address_or_empty() {
        assert!(MetricsConfig::default().validate("metrics").is_empty());
        let off = MetricsConfig { listen: " ".into(), ..Default::default() };
        assert!(off.validate("metrics").is_empty());
        assert_eq!(off.listen_addr(), None);
        let bad = MetricsConfig { listen: "localhost".into(), max_series_per_rule: 0 };
        let keys: Vec<String> = bad.validate("metrics").into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["metrics.listen", "metrics.max_series_per_rule"]);
    }
}
