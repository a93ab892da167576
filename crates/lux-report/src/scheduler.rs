//! The report scheduler: at each schedule's time it enqueues a run in the [`Outbox`] (the
//! report of the period that just ended, to each of the schedule's destinations), builds the
//! report once, and delivers it to each destination, retrying a failed build or delivery with
//! exponential backoff until the retry budget is spent, when the delivery is marked failed
//! (logged at error level, counted) and kept. Runs missed while LUX was down are enqueued at
//! start (at most `max_catch_up` per schedule, the latest). It runs on a thread of its own
//! ([`spawn`]) inside `lux run` or `lux publish`, and stops between two deliveries when its stop
//! flag is set.
//!
//! The report builder is a parameter ([`BuildReport`]), so that the scheduler knows nothing of
//! how reports are made, and tests hand it reports of their own.

use crate::config::{ReportConfig, RetryConfig, ScheduleConfig};
use crate::deliver::{self, Destination};
use crate::outbox::{Delivery, DeliveryState, Outbox, Run, StoredReport};
use crate::schedule::Timing;
use crate::{Period, RenderedReport};
use lux_metrics::{Collect, Exposition, Kind};
use lux_model::{format_rfc3339_millis, Millis};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Builds the report of a schedule (its name) for a period; the error says why it could not.
pub type BuildReport = Arc<dyn Fn(&str, Period) -> Result<RenderedReport, String> + Send + Sync>;

/// A missed run is logged as caught up when it is enqueued this much after its time.
const LATE_MS: Millis = 60_000;
/// The longest the scheduler sleeps without looking at the clock again.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// The scheduler (see the module docs).
pub struct Scheduler {
    schedules: Vec<(ScheduleConfig, Timing)>,
    retry: RetryConfig,
    max_catch_up: usize,
    destinations: BTreeMap<String, Box<dyn Destination>>,
    outbox: Outbox,
    runs: Vec<Run>,
    marks: BTreeMap<String, Millis>,
    build: BuildReport,
    metrics: Arc<ReportMetrics>,
}

impl Scheduler {
    /// The scheduler of `config` with its outbox in `dir` (`<data_dir>/report`): reads the
    /// outbox, and the destinations' secrets from the environment (an error when one is missing).
    pub fn new(config: &ReportConfig, dir: &Path, build: BuildReport) -> anyhow::Result<Scheduler> {
        let mut schedules = Vec::new();
        for (i, schedule) in config.schedule.iter().enumerate() {
            let timing = Timing::of(schedule, &format!("report.schedule[{i}]"))
                .map_err(|p| anyhow::anyhow!("{}: {}", p.key, p.message))?;
            schedules.push((schedule.clone(), timing));
        }
        let destinations = deliver::destinations(config)?;
        let outbox = Outbox::open(dir)?;
        let runs = outbox.load()?;
        let marks = outbox.load_marks()?;
        let metrics = Arc::new(ReportMetrics::default());
        metrics.init(&schedules, &runs);
        let pending = runs.iter().filter(|r| r.is_pending()).count();
        let failed = runs.iter().filter(|r| !r.is_pending()).count();
        if pending > 0 {
            tracing::info!(dir = %dir.display(), "{pending} report run(s) in the outbox still to deliver: resuming them");
        }
        if failed > 0 {
            tracing::error!(
                dir = %dir.display(),
                "{failed} report run(s) in the outbox have deliveries marked failed (`lux publish --retry-failed` tries them again)"
            );
        }
        Ok(Scheduler {
            schedules,
            retry: config.retry.clone(),
            max_catch_up: config.max_catch_up.max(1) as usize,
            destinations,
            outbox,
            runs,
            marks,
            build,
            metrics,
        })
    }

    /// The counters and gauges, for `/metrics`.
    pub fn metrics(&self) -> Arc<ReportMetrics> {
        self.metrics.clone()
    }

    /// The runs in the outbox (pending, or with failed deliveries).
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Makes every delivery marked failed pending again (a fresh retry budget, due at `now`).
    pub fn retry_failed(&mut self, now: Millis) -> anyhow::Result<usize> {
        let mut count = 0;
        for run in &mut self.runs {
            let mut changed = false;
            for delivery in &mut run.deliveries {
                if delivery.state == DeliveryState::Failed {
                    delivery.state = DeliveryState::Pending;
                    delivery.attempts.attempts = 0;
                    delivery.attempts.next_attempt_ms = now;
                    delivery.done_ms = None;
                    changed = true;
                    count += 1;
                }
            }
            if changed {
                if run.report.is_none() {
                    run.build.attempts = 0;
                    run.build.next_attempt_ms = now;
                }
                self.outbox.save(run)?;
            }
        }
        self.metrics.set_gauges(&self.runs);
        Ok(count)
    }

    /// Enqueues the runs due at `now` (missed ones included) and works on every build and
    /// delivery due; stops between two deliveries once `stop` is set. Returns when it next
    /// has something to do.
    pub fn tick(&mut self, now: Millis, stop: &AtomicBool) -> anyhow::Result<Millis> {
        let result = self.enqueue_due(now).and_then(|()| self.work(now, stop));
        self.metrics.set_gauges(&self.runs);
        result?;
        Ok(self.next_wake())
    }

    fn enqueue_due(&mut self, now: Millis) -> anyhow::Result<()> {
        let mut changed = false;
        for (schedule, timing) in &self.schedules {
            let name = &schedule.name;
            let Some(&mark) = self.marks.get(name) else {
                // A new schedule starts now: nothing before it is missed.
                let next = timing.next_after(now).map(format_rfc3339_millis).unwrap_or_default();
                tracing::info!(schedule = %name, next = %next, "report schedule starts");
                self.marks.insert(name.clone(), now);
                changed = true;
                continue;
            };
            // The times in (mark, now], latest first, one more than kept to see if any is dropped.
            let mut due = Vec::new();
            let mut t = now;
            while let Some(at) = timing.latest_at_or_before(t) {
                if at <= mark || due.len() > self.max_catch_up {
                    break;
                }
                due.push(at);
                t = at - 1;
            }
            let Some(&newest) = due.first() else { continue };
            if due.len() > self.max_catch_up {
                due.truncate(self.max_catch_up);
                let oldest = due.last().copied().unwrap_or(newest);
                tracing::warn!(
                    schedule = %name,
                    "runs missed before {} are skipped: more than report.max_catch_up ({}) were missed",
                    format_rfc3339_millis(oldest),
                    self.max_catch_up
                );
            }
            for at in due.into_iter().rev() {
                if self.runs.iter().any(|r| &r.schedule == name && r.scheduled_ms == at) {
                    continue;
                }
                let run = Run::new(name, at, timing.period_of(at), &schedule.destinations);
                if now - at > LATE_MS {
                    tracing::info!(
                        schedule = %name,
                        scheduled = %format_rfc3339_millis(at),
                        "a run missed while LUX was not running is caught up"
                    );
                }
                self.outbox.save(&run)?;
                self.runs.push(run);
            }
            self.marks.insert(name.clone(), newest);
            changed = true;
        }
        if changed {
            self.outbox.save_marks(&self.marks)?;
        }
        Ok(())
    }

    fn work(&mut self, now: Millis, stop: &AtomicBool) -> anyhow::Result<()> {
        let mut i = 0;
        while i < self.runs.len() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Some(run) = self.runs.get_mut(i) else { break };
            let worker = Worker {
                destinations: &self.destinations,
                outbox: &self.outbox,
                build: &self.build,
                retry: &self.retry,
                metrics: &self.metrics,
            };
            worker.work_on(run, now, stop)?;
            if run.is_delivered() {
                tracing::info!(
                    schedule = %run.schedule,
                    period = %format_period(run.period),
                    "report delivered to every destination"
                );
                self.outbox.remove(run)?;
                self.runs.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// The earliest time something is due: a schedule's next run, a retry.
    fn next_wake(&self) -> Millis {
        let mut next = Millis::MAX;
        for (schedule, timing) in &self.schedules {
            if let Some(at) = self.marks.get(&schedule.name).and_then(|m| timing.next_after(*m)) {
                next = next.min(at);
            }
        }
        for run in self.runs.iter().filter(|r| r.is_pending()) {
            if run.report.is_none() {
                next = next.min(run.build.next_attempt_ms);
            } else {
                for d in run.deliveries.iter().filter(|d| d.state == DeliveryState::Pending) {
                    next = next.min(d.attempts.next_attempt_ms);
                }
            }
        }
        next
    }
}

/// The parts of the scheduler a run is worked on with.
struct Worker<'a> {
    destinations: &'a BTreeMap<String, Box<dyn Destination>>,
    outbox: &'a Outbox,
    build: &'a BuildReport,
    retry: &'a RetryConfig,
    metrics: &'a ReportMetrics,
}

impl Worker<'_> {
    fn work_on(&self, run: &mut Run, now: Millis, stop: &AtomicBool) -> anyhow::Result<()> {
        if !run.is_pending() {
            return Ok(());
        }
        let schedule = run.schedule.clone();
        let period = format_period(run.period);
        if run.report.is_none() {
            if run.build.next_attempt_ms > now {
                return Ok(());
            }
            run.build.attempts += 1;
            match (self.build)(&schedule, run.period) {
                Ok(report) => {
                    self.metrics.count_build(&schedule, "built");
                    tracing::info!(schedule = %schedule, period = %period, stem = %report.stem, "report built");
                    run.report = Some(StoredReport::from_rendered(report));
                    run.build.last_error = None;
                }
                Err(reason) => {
                    self.metrics.count_build(&schedule, "error");
                    if run.build.attempts >= self.retry.attempts {
                        tracing::error!(
                            schedule = %schedule,
                            period = %period,
                            attempts = run.build.attempts,
                            "the report could not be built, its deliveries are marked failed in the outbox: {reason}"
                        );
                        for delivery in run.deliveries.iter_mut().filter(|d| d.state == DeliveryState::Pending) {
                            delivery.state = DeliveryState::Failed;
                            delivery.attempts.last_error = Some(format!("the report could not be built: {reason}"));
                            delivery.done_ms = Some(now);
                            self.metrics.count_delivery(&schedule, &delivery.destination, "failed");
                        }
                    } else {
                        let wait = self.retry.backoff(run.build.attempts);
                        run.build.next_attempt_ms = now.saturating_add(millis(wait));
                        tracing::warn!(
                            schedule = %schedule,
                            period = %period,
                            attempt = run.build.attempts,
                            "the report could not be built, trying again in {}: {reason}",
                            humantime::format_duration(wait)
                        );
                    }
                    run.build.last_error = Some(reason);
                }
            }
            self.outbox.save(run)?;
        }
        let Some(stored) = &run.report else { return Ok(()) };
        let report = stored.rendered(run.period);
        for index in 0..run.deliveries.len() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Some(delivery) = run.deliveries.get_mut(index) else { break };
            if delivery.state != DeliveryState::Pending || delivery.attempts.next_attempt_ms > now {
                continue;
            }
            self.deliver(&schedule, &period, &report, delivery, now);
            // Written before the next delivery: a restart repeats at most the one in flight.
            self.outbox.save(run)?;
        }
        Ok(())
    }

    fn deliver(&self, schedule: &str, period: &str, report: &RenderedReport, delivery: &mut Delivery, now: Millis) {
        let name = delivery.destination.clone();
        delivery.attempts.attempts += 1;
        let attempt = delivery.attempts.attempts;
        let result = match self.destinations.get(&name) {
            Some(destination) => destination
                .deliver(&deliver::Delivery { schedule, report })
                .map_err(|reason| format!("{}: {reason}", destination.describe())),
            None => Err(format!("the destination {name:?} is no longer in [report]")),
        };
        match result {
            Ok(()) => {
                delivery.state = DeliveryState::Delivered;
                delivery.attempts.last_error = None;
                delivery.done_ms = Some(now);
                self.metrics.count_delivery(schedule, &name, "delivered");
                self.metrics.delivered_at(schedule, &name, now);
                tracing::info!(schedule, destination = %name, period, attempt, stem = %report.stem, "report delivered");
            }
            Err(reason) => {
                let gone = !self.destinations.contains_key(&name);
                if gone || attempt >= self.retry.attempts {
                    delivery.state = DeliveryState::Failed;
                    delivery.done_ms = Some(now);
                    self.metrics.count_delivery(schedule, &name, "failed");
                    tracing::error!(
                        schedule,
                        destination = %name,
                        period,
                        attempts = attempt,
                        "report delivery failed for good, kept in the outbox marked failed \
                         (`lux publish --retry-failed` tries it again): {reason}"
                    );
                } else {
                    let wait = self.retry.backoff(attempt);
                    delivery.attempts.next_attempt_ms = now.saturating_add(millis(wait));
                    self.metrics.count_delivery(schedule, &name, "error");
                    tracing::warn!(
                        schedule,
                        destination = %name,
                        period,
                        attempt,
                        "report delivery failed, trying again in {}: {reason}",
                        humantime::format_duration(wait)
                    );
                }
                delivery.attempts.last_error = Some(reason);
            }
        }
    }
}

fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

/// `2026-11-25T00:00:00.000Z/2026-11-26T00:00:00.000Z`.
fn format_period(period: Period) -> String {
    format!("{}/{}", format_rfc3339_millis(period.from), format_rfc3339_millis(period.to))
}

/// Runs `scheduler` on a thread of its own until `stop` is set. An error of the outbox (a full
/// disk) is logged and the tick tried again a few seconds later.
pub fn spawn(mut scheduler: Scheduler, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("lux-report".into()).spawn(move || {
        let mut next = Millis::MIN;
        while !stop.load(Ordering::Relaxed) {
            let now = chrono::Utc::now().timestamp_millis();
            if now >= next {
                next = match scheduler.tick(now, &stop) {
                    Ok(next) => next,
                    Err(error) => {
                        tracing::error!("report scheduler: {error:#}; trying again in 5s");
                        now + 5_000
                    }
                };
            }
            let wait = next.saturating_sub(chrono::Utc::now().timestamp_millis()).clamp(10, 200);
            std::thread::sleep(Duration::from_millis(wait as u64).min(MAX_SLEEP));
        }
    })
}

/// The scheduler's counters and gauges.
#[derive(Default)]
pub struct ReportMetrics {
    inner: Mutex<MetricsInner>,
}

#[derive(Default)]
struct MetricsInner {
    /// (schedule, destination, outcome) -> deliveries.
    deliveries: BTreeMap<(String, String, &'static str), u64>,
    /// (schedule, outcome) -> builds.
    builds: BTreeMap<(String, &'static str), u64>,
    /// (schedule, destination) -> deliveries pending, failed in the outbox, last delivered.
    pending: BTreeMap<(String, String), u64>,
    failed: BTreeMap<(String, String), u64>,
    last_delivered: BTreeMap<(String, String), Millis>,
}

impl ReportMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, MetricsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every series at zero, so that Prometheus sees them before the first delivery.
    fn init(&self, schedules: &[(ScheduleConfig, Timing)], runs: &[Run]) {
        let mut inner = self.lock();
        for (schedule, _) in schedules {
            for outcome in ["built", "error"] {
                inner.builds.entry((schedule.name.clone(), outcome)).or_default();
            }
            for destination in &schedule.destinations {
                for outcome in ["delivered", "error", "failed"] {
                    inner.deliveries.entry((schedule.name.clone(), destination.clone(), outcome)).or_default();
                }
            }
        }
        drop(inner);
        self.set_gauges(runs);
    }

    fn count_delivery(&self, schedule: &str, destination: &str, outcome: &'static str) {
        *self.lock().deliveries.entry((schedule.to_owned(), destination.to_owned(), outcome)).or_default() += 1;
    }

    fn count_build(&self, schedule: &str, outcome: &'static str) {
        *self.lock().builds.entry((schedule.to_owned(), outcome)).or_default() += 1;
    }

    fn delivered_at(&self, schedule: &str, destination: &str, at: Millis) {
        self.lock().last_delivered.insert((schedule.to_owned(), destination.to_owned()), at);
    }

    fn set_gauges(&self, runs: &[Run]) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        for value in inner.pending.values_mut().chain(inner.failed.values_mut()) {
            *value = 0;
        }
        for run in runs {
            for delivery in &run.deliveries {
                let key = (run.schedule.clone(), delivery.destination.clone());
                match delivery.state {
                    DeliveryState::Pending => *inner.pending.entry(key).or_default() += 1,
                    DeliveryState::Failed => *inner.failed.entry(key).or_default() += 1,
                    DeliveryState::Delivered => {}
                }
            }
        }
        for key in inner.deliveries.keys().map(|(s, d, _)| (s.clone(), d.clone())).collect::<Vec<_>>() {
            inner.pending.entry(key.clone()).or_default();
            inner.failed.entry(key).or_default();
        }
    }

    /// The count of deliveries of (schedule, destination) with `outcome` (`delivered`, `error`,
    /// `failed`).
    pub fn deliveries(&self, schedule: &str, destination: &str, outcome: &str) -> u64 {
        let inner = self.lock();
        inner
            .deliveries
            .iter()
            .find(|((s, d, o), _)| s == schedule && d == destination && *o == outcome)
            .map_or(0, |(_, n)| *n)
    }
}

impl Collect for ReportMetrics {
    fn collect(&self, out: &mut Exposition) {
        let inner = self.lock();
        for ((schedule, destination, outcome), value) in &inner.deliveries {
            out.sample(
                "lux_report_deliveries_total",
                Kind::Counter,
                "Report delivery attempts by outcome: delivered; error (failed, tried again later); failed (the retry \
                 budget is spent: kept in the outbox marked failed).",
                &[("schedule", schedule), ("destination", destination), ("outcome", outcome)],
                *value as f64,
            );
        }
        for ((schedule, outcome), value) in &inner.builds {
            out.sample(
                "lux_report_builds_total",
                Kind::Counter,
                "Reports built for a scheduled run (built), or attempts that failed (error).",
                &[("schedule", schedule), ("outcome", outcome)],
                *value as f64,
            );
        }
        for ((schedule, destination), value) in &inner.pending {
            out.sample(
                "lux_report_pending_deliveries",
                Kind::Gauge,
                "Report deliveries in the outbox still to be done (due, or waiting to be retried).",
                &[("schedule", schedule), ("destination", destination)],
                *value as f64,
            );
        }
        for ((schedule, destination), value) in &inner.failed {
            out.sample(
                "lux_report_failed_deliveries",
                Kind::Gauge,
                "Report deliveries in the outbox marked failed (retry budget spent): `lux publish --retry-failed` \
                 tries them again.",
                &[("schedule", schedule), ("destination", destination)],
                *value as f64,
            );
        }
        for ((schedule, destination), at) in &inner.last_delivered {
            out.sample(
                "lux_report_last_delivered_timestamp_seconds",
                Kind::Gauge,
                "When a report of the schedule was last delivered to the destination (since this process started).",
                &[("schedule", schedule), ("destination", destination)],
                *at as f64 / 1000.0,
            );
        }
    }
}
