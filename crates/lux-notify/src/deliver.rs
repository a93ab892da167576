//! Delivery: one worker thread per target (an Alertmanager instance or a webhook) with its own
//! queue, so that a slow or unreachable target delays only itself and never the alarm stage.
//! A failed delivery is retried, the wait doubling from 500ms up to `retry_max`, until it
//! succeeds (at least once); a target that refuses a delivery as malformed (a 4xx status other
//! than 408 and 429) would refuse it forever: it is counted, logged and dropped.

use crate::config::{NotifyConfig, WebhookConfig};
use lux_model::Alarm;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Most alerts sent to Alertmanager in one request.
const MAX_ALERTS_PER_POST: usize = 500;
/// The first wait after a failed delivery.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// What a target is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// An Alertmanager instance: its base URL.
    Alertmanager,
    /// A webhook, with its headers (the bearer token included).
    Webhook { headers: Vec<(String, String)> },
}

/// One delivery waiting in a target's queue.
#[derive(Debug, Clone)]
pub struct Item {
    /// The state entry that keeps it until it is delivered (partition, key); `None` for an
    /// Alertmanager update that the next periodic resend would repeat anyway.
    pub pending: Option<(u32, Vec<u8>)>,
    /// The alarm record as in the topic (a webhook's body).
    pub record: Arc<Vec<u8>>,
    pub alarm: Arc<Alarm>,
    /// Alertmanager: send it resolved (cleared, or suppressed by an intervention).
    pub resolve: bool,
}

/// Counters of one target.
#[derive(Debug, Default)]
pub struct TargetMetrics {
    /// Requests that succeeded.
    pub requests: AtomicU64,
    /// Alarm records (webhook) or alerts (Alertmanager) delivered.
    pub delivered: AtomicU64,
    /// Attempts that failed and will be retried (unreachable, timeout, 5xx, 408, 429).
    pub failures: AtomicU64,
    /// Deliveries the target refused as malformed (other 4xx), dropped.
    pub rejected: AtomicU64,
    /// Deliveries waiting now.
    pub pending: AtomicU64,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Bumped when the queue is replaced (a new assignment): a worker's batch taken before is
    /// not popped after.
    generation: u64,
}

/// A target and its worker's shared state.
pub struct Target {
    pub url: String,
    pub kind: TargetKind,
    pub metrics: TargetMetrics,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Delivered items' state entries, for the stage to delete.
    acked: Mutex<Vec<(u32, Vec<u8>)>>,
}

impl Target {
    fn new(url: String, kind: TargetKind) -> Target {
        Target {
            url,
            kind,
            metrics: TargetMetrics::default(),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            acked: Mutex::new(Vec::new()),
        }
    }

    /// A short name for logs and metrics: `alertmanager <url>` or `webhook <url>`.
    pub fn label(&self) -> String {
        match self.kind {
            TargetKind::Alertmanager => format!("alertmanager {}", self.url),
            TargetKind::Webhook { .. } => format!("webhook {}", self.url),
        }
    }

    pub fn is_alertmanager(&self) -> bool {
        self.kind == TargetKind::Alertmanager
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds deliveries at the end of the queue.
    pub fn push(&self, items: impl IntoIterator<Item = Item>) {
        let mut queue = self.lock();
        queue.items.extend(items);
        self.metrics.pending.store(queue.items.len() as u64, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// Replaces the queue (a new assignment brings its pending deliveries).
    pub fn replace(&self, items: Vec<Item>) {
        let mut queue = self.lock();
        queue.items = items.into();
        queue.generation += 1;
        self.metrics.pending.store(queue.items.len() as u64, Ordering::Relaxed);
        self.wake.notify_all();
    }

    pub fn pending(&self) -> usize {
        self.lock().items.len()
    }

    /// The state entries of the deliveries done since the last call.
    pub fn take_acked(&self) -> Vec<(u32, Vec<u8>)> {
        std::mem::take(&mut *self.acked.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The targets of a configuration (Alertmanager instances first, then webhooks). Fails when a
/// webhook's bearer-token variable is not set.
pub fn targets(config: &NotifyConfig) -> anyhow::Result<Vec<Arc<Target>>> {
    let mut out: Vec<Arc<Target>> = config
        .alertmanager
        .iter()
        .map(|url| Arc::new(Target::new(url.trim_end_matches('/').to_owned(), TargetKind::Alertmanager)))
        .collect();
    for hook in &config.webhooks {
        out.push(Arc::new(Target::new(hook.url.clone(), TargetKind::Webhook { headers: webhook_headers(hook)? })));
    }
    Ok(out)
}

fn webhook_headers(hook: &WebhookConfig) -> anyhow::Result<Vec<(String, String)>> {
    let mut headers: Vec<(String, String)> = hook.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(var) = &hook.bearer_token_env {
        let token = std::env::var(var).map_err(|_| {
            anyhow::anyhow!(
                "webhook {}: the environment variable {var} (notify.webhooks[].bearer_token_env) is not set",
                hook.url
            )
        })?;
        headers.push(("Authorization".to_owned(), format!("Bearer {}", token.trim())));
    }
    Ok(headers)
}

/// How one request went.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Refused for good (a 4xx other than 408 and 429): status and the start of the body.
    Rejected(u16, String),
    /// Worth retrying: what went wrong.
    Failed(String),
}

fn post(agent: &ureq::Agent, url: &str, headers: &[(String, String)], body: &[u8]) -> Outcome {
    let mut request = agent.post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send(body) {
        Ok(mut response) => {
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return Outcome::Delivered;
            }
            let text = response.body_mut().with_config().limit(2048).read_to_string().unwrap_or_default();
            let text: String = text.chars().take(300).collect();
            if (400..500).contains(&status) && status != 408 && status != 429 {
                Outcome::Rejected(status, text)
            } else {
                Outcome::Failed(format!("HTTP status {status}: {text}"))
            }
        }
        Err(error) => Outcome::Failed(error.to_string()),
    }
}

/// The active alarms the Alertmanager workers send again periodically, by alarm key.
pub type ActiveSet = Arc<Mutex<BTreeMap<String, Arc<Alarm>>>>;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs a target's worker until `stop` is set.
pub fn spawn_worker(
    target: Arc<Target>,
    config: &NotifyConfig,
    active: ActiveSet,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(config.timeout))
        .http_status_as_error(false)
        .user_agent(concat!("lux/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let (resend, retry_max) = (config.resend_interval, config.retry_max);
    Ok(std::thread::Builder::new()
        .name("lux-notify".into())
        .spawn(move || Worker { target, agent, resend, retry_max, active, stop }.run())?)
}

struct Worker {
    target: Arc<Target>,
    agent: ureq::Agent,
    resend: Duration,
    retry_max: Duration,
    active: ActiveSet,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(self) {
        let mut backoff = FIRST_RETRY;
        let mut next_resend = Instant::now();
        let am = self.target.is_alertmanager();
        while !self.stop.load(Ordering::Relaxed) {
            let resend_due = am && Instant::now() >= next_resend;
            let (generation, batch) = {
                let queue = self.target.lock();
                if queue.items.is_empty() && !resend_due {
                    let wait = if am { next_resend.saturating_duration_since(Instant::now()) } else { self.resend };
                    let wait = wait.min(Duration::from_millis(200));
                    let _ = self.target.wake.wait_timeout(queue, wait);
                    continue;
                }
                let take = if am { MAX_ALERTS_PER_POST } else { 1 };
                let batch: Vec<Item> = queue.items.iter().take(take).cloned().collect();
                (queue.generation, batch)
            };
            let now = now_ms();
            let until = now.saturating_add(i64::try_from(self.resend.as_millis() * 4).unwrap_or(i64::MAX));
            let (url, body, count) = match &self.target.kind {
                TargetKind::Alertmanager => {
                    let mut alerts: Vec<serde_json::Value> = batch
                        .iter()
                        .map(|i| {
                            crate::alertmanager::alert(&i.alarm, now, until, i.resolve.then_some(i.alarm.window_end))
                        })
                        .collect();
                    if resend_due {
                        let active: Vec<Arc<Alarm>> =
                            self.active.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
                        alerts.extend(
                            active
                                .iter()
                                .filter(|a| !a.suppressed_by_intervention)
                                .map(|a| crate::alertmanager::alert(a, now, until, None)),
                        );
                    }
                    let count = alerts.len();
                    let body = serde_json::to_vec(&alerts).unwrap_or_default();
                    (format!("{}/api/v2/alerts", self.target.url), body, count)
                }
                TargetKind::Webhook { .. } => {
                    let body = batch.first().map(|i| i.record.as_slice().to_vec()).unwrap_or_default();
                    (self.target.url.clone(), body, batch.len())
                }
            };
            let headers = match &self.target.kind {
                TargetKind::Webhook { headers } => headers.as_slice(),
                TargetKind::Alertmanager => &[],
            };
            let outcome = if count == 0 { Outcome::Delivered } else { post(&self.agent, &url, headers, &body) };
            let metrics = &self.target.metrics;
            match outcome {
                Outcome::Delivered | Outcome::Rejected(..) => {
                    if let Outcome::Rejected(status, text) = &outcome {
                        metrics.rejected.fetch_add(count as u64, Ordering::Relaxed);
                        tracing::error!(url = %url, status, response = %text, deliveries = count, "the target refused the delivery as malformed; dropped");
                    } else if count > 0 {
                        metrics.requests.fetch_add(1, Ordering::Relaxed);
                        metrics.delivered.fetch_add(count as u64, Ordering::Relaxed);
                    }
                    backoff = FIRST_RETRY;
                    if resend_due {
                        next_resend = Instant::now() + self.resend;
                    }
                    self.done(generation, &batch);
                }
                Outcome::Failed(error) => {
                    metrics.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = %url, %error, retry_in = ?backoff, deliveries = count, "delivery failed; retrying");
                    let deadline = Instant::now() + backoff;
                    while !self.stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(50).min(backoff));
                    }
                    backoff = (backoff * 2).min(self.retry_max);
                }
            }
        }
    }

    /// Removes a delivered batch from the front of the queue (unless the queue was replaced
    /// meanwhile) and acknowledges its state entries.
    fn done(&self, generation: u64, batch: &[Item]) {
        let mut queue = self.target.lock();
        if queue.generation == generation {
            let n = batch.len().min(queue.items.len());
            queue.items.drain(..n);
        }
        self.target.metrics.pending.store(queue.items.len() as u64, Ordering::Relaxed);
        drop(queue);
        let acked: Vec<(u32, Vec<u8>)> = batch.iter().filter_map(|i| i.pending.clone()).collect();
        if !acked.is_empty() {
            self.target.acked.lock().unwrap_or_else(|p| p.into_inner()).extend(acked);
        }
    }
}
