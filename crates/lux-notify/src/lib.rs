//! LUX notifiers: the `alarm-notify` stage ([`stage::NotifyStage`]) reads the `alarms` topic
//! and delivers it, at least once, to Prometheus Alertmanager through its API v2 (active alarms
//! re-sent periodically with `endsAt` ahead, resolved by `endsAt` when they clear; alarms
//! suppressed by an intervention are never sent as active) and to webhooks (each record POSTed
//! as JSON). Each target has its own worker thread ([`deliver`]), so that a target that is down
//! delays only its own deliveries; the alarm stage never waits for any.

pub mod alertmanager;
mod config;
pub mod deliver;
pub mod stage;

pub use config::{NotifyConfig, WebhookConfig};

use lux_metrics::{Collect, Exposition, Kind};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The notifier's running parts: its targets (with their counters) and the shared active set.
pub struct Notifier {
    pub targets: Vec<Arc<deliver::Target>>,
    pub active: deliver::ActiveSet,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Notifier {
    /// Starts one worker per target of `config`; they stop when `stop` is set.
    pub fn start(config: &NotifyConfig, stop: Arc<std::sync::atomic::AtomicBool>) -> anyhow::Result<Notifier> {
        let targets = deliver::targets(config)?;
        let active = deliver::ActiveSet::default();
        let workers = targets
            .iter()
            .map(|t| deliver::spawn_worker(t.clone(), config, active.clone(), stop.clone()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Notifier { targets, active, workers })
    }

    /// The stage that feeds the workers.
    pub fn stage(
        &self,
        config: &NotifyConfig,
        alarms_topic: &str,
        deadletter_topic: &str,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> stage::NotifyStage {
        stage::NotifyStage::new(
            alarms_topic,
            deadletter_topic,
            self.targets.clone(),
            self.active.clone(),
            config.max_pending,
            stop,
        )
    }

    /// The counters of every target, for `/metrics`.
    pub fn collector(&self) -> Arc<dyn Collect> {
        Arc::new(TargetsCollector { targets: self.targets.clone(), active: self.active.clone() })
    }

    /// Waits for the workers (after `stop` was set).
    pub fn join(self) {
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

struct TargetsCollector {
    targets: Vec<Arc<deliver::Target>>,
    active: deliver::ActiveSet,
}

impl Collect for TargetsCollector {
    fn collect(&self, out: &mut Exposition) {
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let suppressed = active.values().filter(|a| a.suppressed_by_intervention).count();
        let help = "Alarms raised and not cleared, as the notifier holds them (suppressed: flagged by an intervention, not sent as active).";
        out.sample(
            "lux_notify_active_alarms",
            Kind::Gauge,
            help,
            &[("suppressed", "false")],
            (active.len() - suppressed) as f64,
        );
        out.sample("lux_notify_active_alarms", Kind::Gauge, help, &[("suppressed", "true")], suppressed as f64);
        drop(active);
        for target in &self.targets {
            let label = target.label();
            let labels = [("target", label.as_str())];
            let m = &target.metrics;
            let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as f64;
            out.sample(
                "lux_notify_requests_total",
                Kind::Counter,
                "HTTP requests to the target that succeeded.",
                &labels,
                get(&m.requests),
            );
            out.sample(
                "lux_notify_delivered_total",
                Kind::Counter,
                "Alarm records (webhook) or alerts (Alertmanager, resends included) delivered.",
                &labels,
                get(&m.delivered),
            );
            out.sample(
                "lux_notify_failures_total",
                Kind::Counter,
                "Delivery attempts that failed and are retried (unreachable, timeout, 5xx, 408, 429).",
                &labels,
                get(&m.failures),
            );
            out.sample(
                "lux_notify_rejected_total",
                Kind::Counter,
                "Deliveries the target refused as malformed (other 4xx): logged and dropped.",
                &labels,
                get(&m.rejected),
            );
            out.sample(
                "lux_notify_pending",
                Kind::Gauge,
                "Deliveries waiting for the target.",
                &labels,
                get(&m.pending),
            );
        }
    }
}
