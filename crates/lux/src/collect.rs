//! `lux collect`: only the collectors of `[collect]` (network listeners and tailed files), writing into the raw topic of the
//! configured log (the transform and alarm stages run elsewhere: `lux run`, or their own
//! processes). One source stage per listener, each on its own runner thread; a one-line summary
//! of what each received, wrote and refused every `run.summary_interval`. SIGINT or SIGTERM
//! closes the listeners, commits what they had received, and exits.

use crate::config::LuxConfig;
use lux_collect::metrics::ListenerMetrics;
use lux_log::CentralLog;
use lux_stage::{run_source, RunnerOptions, Source, StageMetrics};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the collectors until `stop` is set (or `stop_after` passes).
pub fn collect(
    config: &LuxConfig,
    data_dir: &Path,
    stop_after: Option<Duration>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    if config.collect.is_empty() {
        anyhow::bail!(
            "no collector is configured: add [[collect.syslog]], [[collect.radius]], [[collect.files]] or \
             [[collect.http]] tables to the configuration (see the configuration reference in the README)"
        );
    }
    let registry = Arc::new(lux_metrics::Registry::new());
    let stages = Arc::new(crate::metrics::Stages::default());
    registry.register(stages.clone());
    let log: Arc<dyn CentralLog> = crate::run::open_log_observed(config, data_dir, Some(&registry))?;
    let raw = config.log.topic("raw");
    let runner = RunnerOptions {
        partitions: config.log.partitions,
        max_batch: config.log.commit_max_records(),
        commit_interval: config.log.commit_interval(),
        ..Default::default()
    };
    let sources = lux_collect::start(&config.collect, &raw)?;
    let mut running = Vec::new();
    for source in sources {
        let name = source.name().to_owned();
        let description = source.description();
        let listener = source.metrics();
        let metrics = Arc::new(StageMetrics::default());
        stages.add(&name, metrics.clone());
        let (log, runner, stop, thread_metrics) = (log.clone(), runner.clone(), stop.clone(), metrics.clone());
        let handle = std::thread::Builder::new().name(format!("lux-{name}")).spawn(move || {
            let result = run_source(log, Box::new(source), runner, thread_metrics, stop.clone());
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            result
        })?;
        eprintln!("lux collect: {name}: {description} -> {raw}");
        running.push((name, listener, handle));
    }
    let target = match config.log.backend {
        lux_log::LogBackendKind::Embedded => format!("the embedded log in {}", data_dir.display()),
        lux_log::LogBackendKind::Kafka => format!("the Kafka cluster at {}", config.log.kafka.brokers),
    };
    eprintln!("lux collect: {} collector(s) writing to {target} (Ctrl-C to stop)", running.len());
    let metrics_server = crate::metrics::start(&config.metrics, registry, stop.clone());
    let started = Instant::now();
    let interval = config.run.summary_interval;
    let mut last_print = Instant::now();
    let mut previous: Vec<u64> = running.iter().map(|(_, m, _)| m.get("written")).collect();
    while !stop.load(Ordering::Relaxed) && !running.iter().all(|(_, _, h)| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if stop_after.is_some_and(|d| started.elapsed() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if !interval.is_zero() && last_print.elapsed() >= interval {
            let seconds = last_print.elapsed().as_secs_f64();
            last_print = Instant::now();
            let now: Vec<u64> = running.iter().map(|(_, m, _)| m.get("written")).collect();
            let parts: Vec<String> = running
                .iter()
                .zip(previous.iter().zip(&now))
                .map(|((name, metrics, _), (before, after))| {
                    summary(name, metrics, after.saturating_sub(*before) as f64 / seconds)
                })
                .collect();
            eprintln!("{} | {}", chrono::Utc::now().format("%H:%M:%S"), parts.join(" | "));
            previous = now;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for (name, metrics, handle) in running {
        match handle.join() {
            Ok(Ok(())) => eprintln!("lux collect: {}", summary(&name, &metrics, 0.0)),
            Ok(Err(error)) => failures.push(format!("{name} failed: {error:#}")),
            Err(_) => failures.push(format!("{name} panicked (a bug: please report it)")),
        }
    }
    if let Some(server) = metrics_server {
        server.join();
    }
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("\n"));
    }
    eprintln!("lux collect: stopped; what the listeners had received is committed.");
    Ok(())
}

/// `collect-bras 1200/s written 52000 | refused: oversized 2, dropped_overflow 10`
fn summary(name: &str, metrics: &ListenerMetrics, rate: f64) -> String {
    let mut line = format!("{name} {rate:.0}/s written {}", metrics.get("written"));
    let refusals: Vec<String> = metrics
        .snapshot()
        .into_iter()
        .filter(|(counter, value)| {
            *value > 0
                && !matches!(
                    counter.as_str(),
                    "received"
                        | "written"
                        | "connections_open"
                        | "connections_accepted"
                        | "responses"
                        | "files_open"
                        | "files_opened"
                        | "requests_accepted"
                )
        })
        .map(|(counter, value)| format!("{counter} {value}"))
        .collect();
    if !refusals.is_empty() {
        line.push_str(&format!(" ({})", refusals.join(", ")));
    }
    line
}
