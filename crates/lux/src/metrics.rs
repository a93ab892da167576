//! What `lux` exposes on `/metrics`: the collectors of its stages (the runner's counters, the
//! stages' own counters, collector listeners), of the Kafka backend, and of the alarm windows
//! (per rule and group, bounded by `metrics.max_series_per_rule`), and the endpoint's start.

use lux_alarm::board::WindowBoard;
use lux_log::kafka::KafkaMetrics;
use lux_metrics::{Collect, Exposition, Kind, MetricsConfig, MetricsServer, Registry};
use lux_stage::StageMetrics;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Starts the endpoint of `config` (none when `metrics.listen` is empty). A port that cannot be
/// bound is logged, and the process runs on without the endpoint.
pub fn start(config: &MetricsConfig, registry: Arc<Registry>, stop: Arc<AtomicBool>) -> Option<MetricsServer> {
    let addr = config.listen_addr()?;
    match lux_metrics::serve(addr, registry, stop) {
        Ok(server) => {
            tracing::info!(address = %server.local_addr(), "metrics on http://{}/metrics", server.local_addr());
            Some(server)
        }
        Err(error) => {
            tracing::error!(
                "{error:#}: running without a /metrics endpoint (set metrics.listen, e.g. LUX_METRICS__LISTEN=127.0.0.1:9465, \
                 to another port, or to \"\" to turn it off)"
            );
            None
        }
    }
}

/// The stages of the process, by name: added as they start.
#[derive(Default)]
pub struct Stages {
    stages: Mutex<Vec<(String, Arc<StageMetrics>)>>,
}

impl Stages {
    pub fn add(&self, name: &str, metrics: Arc<StageMetrics>) {
        self.stages.lock().unwrap_or_else(|p| p.into_inner()).push((name.to_owned(), metrics));
    }
}

fn get(counter: &AtomicU64) -> f64 {
    counter.load(Ordering::Relaxed) as f64
}

impl Collect for Stages {
    fn collect(&self, out: &mut Exposition) {
        let stages = self.stages.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (name, m) in &stages {
            let stage = [("stage", name.as_str())];
            let counters: [(&str, &str, &AtomicU64); 6] = [
                ("lux_stage_records_in_total", "Records read and committed by the stage.", &m.records_in),
                ("lux_stage_records_out_total", "Records the stage wrote (dead letters included).", &m.records_out),
                (
                    "lux_stage_commits_total",
                    "Batches committed (outputs, input offsets and state in one atomic step).",
                    &m.commits,
                ),
                (
                    "lux_stage_commit_failures_total",
                    "Commits that failed (retried, or dropped after a rebalance).",
                    &m.commit_failures,
                ),
                (
                    "lux_stage_rebalances_total",
                    "Partition assignments received (the first, then one per rebalance).",
                    &m.rebalances,
                ),
                ("lux_stage_dead_letters_total", "Records the stage wrote to the dead-letter topic.", &m.dead_letters),
            ];
            for (metric, help, value) in counters {
                out.sample(metric, Kind::Counter, help, &stage, get(value));
            }
            out.sample(
                "lux_stage_lag_records",
                Kind::Gauge,
                "Records waiting in the stage's input partitions (end offset minus committed position).",
                &stage,
                get(&m.lag),
            );
            out.sample(
                "lux_stage_commit_seconds_max",
                Kind::Gauge,
                "The longest commit since the start.",
                &stage,
                m.commit_latency.max_seconds(),
            );
            let (buckets, count, sum) = m.commit_latency.cumulative();
            out.histogram("lux_stage_commit_seconds", "Time of successful commits.", &stage, &buckets, count, sum);
            let (buckets, count, sum) = m.reception_latency.cumulative();
            if count > 0 {
                out.histogram(
                    "lux_stage_reception_latency_seconds",
                    "Time from the reception of a record (the collector's received_at stamp) to the commit that \
                     made the stage's output of it readable; for the transform stage, the end-to-end latency to \
                     the enriched topic.",
                    &stage,
                    &buckets,
                    count,
                    sum,
                );
                out.sample(
                    "lux_stage_reception_latency_seconds_max",
                    Kind::Gauge,
                    "The longest reception latency since the start.",
                    &stage,
                    m.reception_latency.max_seconds(),
                );
            }
            for (counter_name, value) in m.counters() {
                let value = value as f64;
                if let Some(reason) = counter_name.strip_prefix("dead_letters.") {
                    out.sample(
                        "lux_stage_dead_letters_by_reason_total",
                        Kind::Counter,
                        "Dead letters per reason.",
                        &[("stage", name.as_str()), ("reason", reason)],
                        value,
                    );
                } else if let Some(listener) = name.strip_prefix("collect-") {
                    let labels = [("listener", listener)];
                    if counter_name == "connections_open" {
                        out.sample(
                            "lux_collector_connections_open",
                            Kind::Gauge,
                            "TCP/TLS connections open now.",
                            &labels,
                            value,
                        );
                    } else {
                        let metric = format!("lux_collector_{}_total", lux_metrics::sanitize_name(&counter_name));
                        let help = format!(
                            "The collector listener's `{counter_name}` counter (see the README's Collectors section)."
                        );
                        out.sample(&metric, Kind::Counter, &help, &labels, value);
                    }
                } else {
                    out.sample(
                        "lux_stage_counter_total",
                        Kind::Counter,
                        "The stage's own counters (late_events, bad_records, ...).",
                        &[("stage", name.as_str()), ("counter", counter_name.as_str())],
                        value,
                    );
                }
            }
        }
        if let Some((name, m)) = stages.iter().find(|(name, _)| name == "alarm") {
            out.sample(
                "lux_alarm_active_alarms",
                Kind::Gauge,
                "Alarms raised and not cleared, over the alarm stage's partitions.",
                &[("stage", name.as_str())],
                get(&m.gauge),
            );
        }
    }
}

/// The Kafka backend's counters (for every session of the process).
pub struct KafkaCollector(pub Arc<lux_log::kafka::KafkaLog>);

impl Collect for KafkaCollector {
    fn collect(&self, out: &mut Exposition) {
        let m: &KafkaMetrics = self.0.metrics();
        out.sample(
            "lux_kafka_transactions_total",
            Kind::Counter,
            "Kafka transactions committed.",
            &[],
            get(&m.commits),
        );
        out.sample(
            "lux_kafka_aborts_total",
            Kind::Counter,
            "Kafka transactions aborted (each failed commit; the batch is retried or dropped).",
            &[],
            get(&m.aborts),
        );
        out.sample(
            "lux_kafka_transaction_retries_total",
            Kind::Counter,
            "Steps of Kafka transactions retried after a retriable error (a broker unreachable for a while): completed, not aborted.",
            &[],
            get(&m.transaction_retries),
        );
        out.sample(
            "lux_kafka_fenced_total",
            Kind::Counter,
            "Batches refused because the instance had lost its partitions.",
            &[],
            get(&m.fenced),
        );
        out.sample(
            "lux_kafka_assignments_total",
            Kind::Counter,
            "Partition assignments handed to stages.",
            &[],
            get(&m.assignments),
        );
        out.sample(
            "lux_kafka_commit_seconds_sum",
            Kind::Counter,
            "Total time of Kafka transaction commits.",
            &[],
            m.commit_micros_total.load(Ordering::Relaxed) as f64 / 1e6,
        );
        out.sample(
            "lux_kafka_commit_seconds_max",
            Kind::Gauge,
            "The longest Kafka transaction commit.",
            &[],
            m.commit_micros_max.load(Ordering::Relaxed) as f64 / 1e6,
        );
    }
}

/// The alarm windows: per rule and group the failures and events of the current window, and
/// per rule its counters.
pub struct WindowCollector(pub Arc<WindowBoard>);

impl Collect for WindowCollector {
    fn collect(&self, out: &mut Exposition) {
        let snapshot = self.0.merged();
        if let Some(watermark) = snapshot.watermark_ms {
            out.sample(
                "lux_alarm_watermark_seconds",
                Kind::Gauge,
                "The alarm stage's event-time watermark (Unix time): windows ending before it are evaluated.",
                &[],
                watermark as f64 / 1000.0,
            );
        }
        out.declare(
            "lux_alarm_window_failures",
            Kind::Gauge,
            "Failures in the group's current window (the last one evaluated).",
        );
        out.declare(
            "lux_alarm_window_events",
            Kind::Gauge,
            "Events (matching the rule's filter) in the group's current window.",
        );
        for rule in &snapshot.rules {
            for group in &rule.groups {
                let labels = [("rule", rule.rule.as_str()), ("group", group.group_key.as_str())];
                out.sample("lux_alarm_window_failures", Kind::Gauge, "", &labels, group.failures as f64);
                out.sample("lux_alarm_window_events", Kind::Gauge, "", &labels, group.events as f64);
            }
            let labels = [("rule", rule.rule.as_str())];
            out.sample(
                "lux_alarm_window_groups_omitted",
                Kind::Gauge,
                "Groups tracked by the rule but left out of lux_alarm_window_* by metrics.max_series_per_rule (those with the fewest failures).",
                &labels,
                rule.omitted as f64,
            );
            out.sample(
                "lux_alarm_groups",
                Kind::Gauge,
                "(rule, group) keys tracked by the windows.",
                &labels,
                rule.tracked_groups as f64,
            );
            out.sample(
                "lux_alarm_rule_active_alarms",
                Kind::Gauge,
                "Alarms of the rule raised and not cleared.",
                &labels,
                rule.active_alarms as f64,
            );
            let c = &rule.counters;
            for (what, value) in
                [("counted", c.counted), ("late", c.late), ("ungrouped", c.ungrouped), ("overflow", c.overflow)]
            {
                out.sample(
                    "lux_alarm_rule_events_total",
                    Kind::Counter,
                    "Events the rule accepted, by outcome: counted in a window, late, ungrouped (a group_by dimension missing), overflow (alarm.max_groups reached).",
                    &[("rule", rule.rule.as_str()), ("outcome", what)],
                    value as f64,
                );
            }
        }
    }
}
