//! `lux run`: every stage of the pipeline in one process, on the embedded central log.
//!
//! ```text
//! generator ──► [raw] ──► transform ──► [enriched] ──► alarm ──► [alarms] ──► alarm-notify
//!                             │                 └──────► qoe ──► [qoe] ──► qoe-postgres
//!                             └──────────► [deadletter] ◄──┘
//! report scheduler (when `[[report.schedule]]`s are configured): reports of [qoe] and [alarms]
//! pushed to directories, HTTP endpoints and e-mail
//! ```
//!
//! Each stage runs on its own thread with its own runner; they meet only in the log. The
//! process serves its metrics on `/metrics` (see [`crate::metrics`]). SIGINT or
//! SIGTERM stops every stage after its current batch is committed; a second signal exits at
//! once (still safe: an uncommitted batch is simply processed again on the next start).

use crate::config::LuxConfig;
use anyhow::Context as _;
use lux_alarm::stage::{AlarmRouteStage, AlarmStage, AlarmTopics};
use lux_generate::source::GeneratorSource;
use lux_log::embedded::{EmbeddedLog, EmbeddedOptions};
use lux_log::kafka::KafkaLog;
use lux_log::{CentralLog, LogBackendKind};
use lux_qoe::postgres::QoePostgresStage;
use lux_qoe::stage::{QoeStage, QoeTopics};
use lux_reference::{ReferenceHandle, SourceKind};
use lux_stage::{run_processor, run_source, RunnerOptions, StageMetrics, StageSnapshot};
use lux_transform::{TransformStage, TransformTopics};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A stage as `lux plan` shows it.
pub struct StagePlan {
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub detail: String,
}

/// The stages and topics `lux run` wires from a configuration.
pub struct Topology {
    /// Partitions of each topic but the routed one.
    pub partitions: u32,
    /// Partitions of `alarm_routed` when LUX creates it (`alarm.routed_partitions`).
    pub routed_partitions: u32,
    pub raw: String,
    pub enriched: String,
    pub deadletter: String,
    pub alarms: String,
    /// The alarm stage's internal topic between its two halves, keyed by (rule, group).
    pub alarm_routed: String,
    /// Enriched events too late for the alarm windows, unchanged, and traces of those the
    /// window half found late.
    pub late: String,
    /// The QoE indicators.
    pub qoe: String,
    pub topics: Vec<String>,
    pub stages: Vec<StagePlan>,
}

impl Topology {
    /// The partition count LUX creates `topic` with.
    pub fn partitions_of(&self, topic: &str) -> u32 {
        if topic == self.alarm_routed {
            self.routed_partitions
        } else {
            self.partitions
        }
    }

    pub fn of(config: &LuxConfig) -> Topology {
        let log = &config.log;
        let (raw, enriched, deadletter, alarms) =
            (log.topic("raw"), log.topic("enriched"), log.topic("deadletter"), log.topic("alarms"));
        let alarm_routed = log.topic("alarm-routed");
        let late = log.topic("late");
        let qoe = log.topic("qoe");
        let mut stages = Vec::new();
        if config.run.generator {
            stages.push(StagePlan {
                name: "generator".into(),
                inputs: vec![],
                outputs: vec![raw.clone()],
                detail: format!(
                    "demo traffic: {} equipment, {} events/s, seed {}",
                    config.generator.equipment, config.generator.rate, config.generator.seed
                ),
            });
        }
        for listener in &config.collect.syslog {
            let detail = format!(
                "syslog {} {} (format {})",
                listener.protocol.as_str(),
                listener.listen,
                listener.format.as_str()
            );
            stages.push(StagePlan {
                name: format!("collect-{}", listener.source),
                inputs: vec![],
                outputs: vec![raw.clone()],
                detail,
            });
        }
        for listener in &config.collect.radius {
            let detail =
                format!("RADIUS accounting udp {} ({} client entries)", listener.listen, listener.clients.len());
            stages.push(StagePlan {
                name: format!("collect-{}", listener.source),
                inputs: vec![],
                outputs: vec![raw.clone()],
                detail,
            });
        }
        for files in &config.collect.files {
            stages.push(StagePlan {
                name: format!("collect-{}", files.source),
                inputs: vec![],
                outputs: vec![raw.clone()],
                detail: format!("files {} (format {})", files.paths.join(", "), files.format.as_str()),
            });
        }
        for listener in &config.collect.http {
            let scheme = if listener.tls_cert.is_some() { "https" } else { "http" };
            stages.push(StagePlan {
                name: format!("collect-{}", listener.source),
                inputs: vec![],
                outputs: vec![raw.clone()],
                detail: format!("{scheme} {} POST /v1/records (format {})", listener.listen, listener.format.as_str()),
            });
        }
        stages.push(StagePlan {
            name: "transform".into(),
            inputs: vec![raw.clone()],
            outputs: vec![enriched.clone(), deadletter.clone()],
            detail: "decode (syslog RFC 5424/3164, RADIUS accounting) + enrich (reference data)".into(),
        });
        stages.push(StagePlan {
            name: "alarm-route".into(),
            inputs: vec![enriched.clone()],
            outputs: vec![alarm_routed.clone(), deadletter.clone(), late.clone()],
            detail: format!("each event to the partition of its group, for {} rule(s)", config.alarm.rules.len()),
        });
        stages.push(StagePlan {
            name: "alarm".into(),
            inputs: vec![alarm_routed.clone()],
            outputs: vec![alarms.clone(), deadletter.clone(), late.clone()],
            detail: format!("{} sliding-window rule(s)", config.alarm.rules.len()),
        });
        if !config.notify.is_empty() {
            stages.push(StagePlan {
                name: "alarm-notify".into(),
                inputs: vec![alarms.clone()],
                outputs: vec![deadletter.clone()],
                detail: format!(
                    "to {} Alertmanager instance(s) and {} webhook(s)",
                    config.notify.alertmanager.len(),
                    config.notify.webhooks.len()
                ),
            });
        }
        if config.qoe.enabled {
            stages.push(StagePlan {
                name: "qoe".into(),
                inputs: vec![enriched.clone()],
                outputs: vec![qoe.clone(), deadletter.clone()],
                detail: format!(
                    "indicators per {} window and {}",
                    humantime::format_duration(config.qoe.window),
                    config.qoe.dimensions.join(", ")
                ),
            });
        }
        if config.qoe.postgres.url.is_some() {
            stages.push(StagePlan {
                name: "qoe-postgres".into(),
                inputs: vec![qoe.clone()],
                outputs: vec![deadletter.clone()],
                detail: format!("upserts into PostgreSQL table {}.qoe_indicators", config.qoe.postgres.schema),
            });
        }
        if !config.report.is_empty() {
            let names: Vec<&str> = config.report.schedule.iter().map(|s| s.name.as_str()).collect();
            stages.push(StagePlan {
                name: "report".into(),
                inputs: vec![qoe.clone(), alarms.clone()],
                outputs: vec![],
                detail: format!(
                    "scheduled reports ({}) to {} directory(ies), {} HTTP endpoint(s), {} SMTP server(s)",
                    names.join(", "),
                    config.report.dir.len(),
                    config.report.http.len(),
                    config.report.smtp.len()
                ),
            });
        }
        Topology {
            partitions: log.partitions,
            routed_partitions: config.alarm.routed_partitions,
            topics: vec![
                raw.clone(),
                enriched.clone(),
                deadletter.clone(),
                alarm_routed.clone(),
                alarms.clone(),
                late.clone(),
                qoe.clone(),
            ],
            alarm_routed,
            late,
            qoe,
            raw,
            enriched,
            deadletter,
            alarms,
            stages,
        }
    }
}

/// Options of `lux run` from the command line.
pub struct RunOptions {
    pub data_dir: PathBuf,
    /// Stop by itself after this long (demos, tests).
    pub stop_after: Option<Duration>,
    /// With a bounded generator: stop once everything it sent went through every stage and the
    /// last windows were evaluated.
    pub until_done: bool,
    /// Run only these stages (`lux transform`, `lux alarm`, `lux run --only`); `None`: all.
    pub only: Option<Vec<String>>,
    /// Make the report deliveries marked failed in the outbox pending again at start
    /// (`lux publish --retry-failed`).
    pub retry_failed_reports: bool,
}

/// The stages `lux run` can run, in pipeline order.
pub const STAGES: [&str; 9] =
    ["generator", "collect", "transform", "alarm-route", "alarm", "alarm-notify", "qoe", "qoe-postgres", "report"];

impl RunOptions {
    fn runs(&self, stage: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.iter().any(|s| s == stage))
    }

    /// Checks `only` names known stages.
    pub fn check_only(&self) -> anyhow::Result<()> {
        for stage in self.only.iter().flatten() {
            if !STAGES.contains(&stage.as_str()) {
                anyhow::bail!("unknown stage {stage:?} in --only; the stages are {}", STAGES.join(", "));
            }
        }
        Ok(())
    }
}

/// The subscriber-pseudonymisation key: from config, or generated once into the data directory.
fn subscriber_key(config: &LuxConfig, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = &config.transform.subscriber_key {
        return Ok(key.as_bytes().to_vec());
    }
    if config.log.backend == LogBackendKind::Kafka {
        anyhow::bail!(
            "on Kafka, every instance of the transform stage must pseudonymise subscribers with the same key: \
             set transform.subscriber_key (better: the environment variable LUX_TRANSFORM__SUBSCRIBER_KEY)"
        );
    }
    let path = data_dir.join("secrets").join("subscriber.key");
    match std::fs::read(&path) {
        Ok(key) if key.len() >= 16 => return Ok(key),
        Ok(_) => anyhow::bail!("{} is shorter than 16 bytes; delete it to have a new key generated", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let dir = path.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Written aside, then renamed: a crash never leaves a partial key behind.
    let staging = path.with_extension("key.new");
    let _ = std::fs::remove_file(&staging);
    write_private(&staging, key.as_bytes()).with_context(|| format!("cannot write {}", staging.display()))?;
    std::fs::rename(&staging, &path).with_context(|| format!("cannot move the new key to {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a new subscriber pseudonymisation key");
    Ok(key.into_bytes())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// Starts the reference data (with its live-reload watcher): the configured source, or the demo
/// referential, written into the data directory at every start (it is derived from the
/// generator's configuration and start time, so it always matches the traffic; edit a copy and
/// point `reference.dir` at it instead).
fn reference(
    config: &LuxConfig,
    data_dir: &Path,
    network: &lux_generate::Network,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ReferenceHandle> {
    let demo_dir = data_dir.join("reference");
    if config.reference.source == SourceKind::Csv && config.reference.dir.is_none() {
        let staging = data_dir.join("reference.new");
        let _ = std::fs::remove_dir_all(&staging);
        network
            .write_csv(&staging)
            .with_context(|| format!("cannot write the demo reference data to {}", staging.display()))?;
        if demo_dir.exists() {
            std::fs::remove_dir_all(&demo_dir).with_context(|| format!("cannot replace {}", demo_dir.display()))?;
        }
        std::fs::rename(&staging, &demo_dir)
            .with_context(|| format!("cannot move the demo reference data to {}", demo_dir.display()))?;
    }
    ReferenceHandle::start(&config.reference, &demo_dir, stop)
        .map_err(|error| anyhow::anyhow!("reference data: {error}"))
}

/// The configured central log: the embedded one in `data_dir` (with its lock), or a Kafka
/// cluster.
pub(crate) fn open_log(config: &LuxConfig, data_dir: &Path) -> anyhow::Result<Arc<dyn CentralLog>> {
    open_log_observed(config, data_dir, None)
}

/// [`open_log`], with the Kafka backend's counters added to `registry`.
pub(crate) fn open_log_observed(
    config: &LuxConfig,
    data_dir: &Path,
    registry: Option<&lux_metrics::Registry>,
) -> anyhow::Result<Arc<dyn CentralLog>> {
    Ok(match config.log.backend {
        LogBackendKind::Embedded => {
            Arc::new(EmbeddedLog::open_with(data_dir, EmbeddedOptions::from_config(&config.log))?)
        }
        LogBackendKind::Kafka => {
            let log = Arc::new(
                KafkaLog::connect(&config.log.kafka, &config.log.topic_prefix)
                    .with_context(|| format!("cannot use the Kafka cluster at {}", config.log.kafka.brokers))?,
            );
            if let Some(registry) = registry {
                registry.register(Arc::new(crate::metrics::KafkaCollector(log.clone())));
            }
            log
        }
    })
}

/// The configured central log for reading only (`lux topic`): the embedded one without its lock,
/// so that it works while `lux run` writes.
pub(crate) fn open_reader(config: &LuxConfig, data_dir: &Path) -> anyhow::Result<Arc<dyn CentralLog>> {
    match config.log.backend {
        LogBackendKind::Embedded => Ok(Arc::new(EmbeddedLog::open_reader(data_dir)?)),
        LogBackendKind::Kafka => open_log(config, data_dir),
    }
}

/// What the pipeline commands (`lux run`, `lux replay`) open on a data directory: the log (with
/// its lock), the simulation's start, the demo network, the reference data and the subscriber key.
pub(crate) struct Pipeline {
    pub log: Arc<dyn CentralLog>,
    pub start_ms: i64,
    pub network: lux_generate::Network,
    pub reference: ReferenceHandle,
    pub key: Vec<u8>,
}

impl Pipeline {
    pub(crate) fn open(
        config: &LuxConfig,
        data_dir: &Path,
        stop: Arc<AtomicBool>,
        registry: Option<&lux_metrics::Registry>,
    ) -> anyhow::Result<Pipeline> {
        let log = open_log_observed(config, data_dir, registry)?;
        // The simulation's time 0: recorded by the first run, so that a resumed run continues the
        // same traffic (and the same demo referential, whose interventions are placed around it).
        let start_ms = match lux_generate::source::recorded_start_ms(&log.load_state("generator")?) {
            Some(start) => start,
            None => match &config.generator.start {
                Some(_) => config.generator.start_ms()?,
                None => {
                    let now = chrono::Utc::now().timestamp_millis();
                    now - now.rem_euclid(1000)
                }
            },
        };
        let network = lux_generate::Network::generate_at(&config.generator, start_ms)?;
        let reference = reference(config, data_dir, &network, stop)?;
        tracing::info!(source = %reference.stats().source, version = %reference.current().version(), "reference data loaded");
        let key = subscriber_key(config, data_dir)?;
        Ok(Pipeline { log, start_ms, network, reference, key })
    }
}

pub fn run(config: LuxConfig, options: RunOptions, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    options.check_only()?;
    if options.until_done && !(config.run.generator && options.runs("generator") && config.generator.duration.is_some())
    {
        anyhow::bail!(
            "--until-done needs a bounded input: set generator.duration (and keep run.generator = true), \
             or stop `lux run` with --stop-after or Ctrl-C"
        );
    }
    let notify = options.runs("alarm-notify") && !config.notify.is_empty();
    if options.only.as_ref().is_some_and(|only| only.iter().any(|s| s == "alarm-notify")) && !notify {
        anyhow::bail!(
            "no notifier is configured: add notify.alertmanager URLs or [[notify.webhooks]] tables to the configuration \
             (see the configuration reference in the README)"
        );
    }
    let qoe_sink = options.runs("qoe-postgres") && config.qoe.postgres.url.is_some();
    // Asked for alone (not with `qoe`, as `lux qoe` asks for both), the sink must be configured.
    let sink_alone = options
        .only
        .as_ref()
        .is_some_and(|only| only.iter().any(|s| s == "qoe-postgres") && !only.iter().any(|s| s == "qoe"));
    if sink_alone && !qoe_sink {
        anyhow::bail!(
            "the QoE PostgreSQL sink is not configured: set qoe.postgres.url (see the configuration reference in the README)"
        );
    }
    let report = options.runs("report") && !config.report.is_empty();
    if options.only.as_ref().is_some_and(|only| only.iter().any(|s| s == "report")) && !report {
        anyhow::bail!(
            "no report schedule is configured: add [[report.schedule]] tables and their destinations to the \
             configuration (see \"Reports pushed on a schedule\" in the README)"
        );
    }
    // `lux qoe` and `--only qoe` run it whatever `qoe.enabled` says.
    let qoe = options.runs("qoe") && (config.qoe.enabled || options.only.is_some());
    let topology = Topology::of(&config);
    let data_dir = options.data_dir.clone();
    let registry = Arc::new(lux_metrics::Registry::new());
    let stages = Arc::new(crate::metrics::Stages::default());
    registry.register(stages.clone());
    let Pipeline { log, start_ms, network, reference, key } =
        Pipeline::open(&config, &data_dir, stop.clone(), Some(&registry))?;
    // Started before any stage, so that a target it cannot use (a bearer-token variable not
    // set) stops `lux run` before anything runs.
    let notifier = if notify { Some(lux_notify::Notifier::start(&config.notify, stop.clone())?) } else { None };
    // Likewise the report scheduler (a password variable not set, an unreadable outbox).
    let scheduler = if report {
        let dir = data_dir.join("report");
        let mut scheduler = lux_report::Scheduler::new(&config.report, &dir, report_builder(&config, &data_dir))?;
        if options.retry_failed_reports {
            let count = scheduler.retry_failed(chrono::Utc::now().timestamp_millis())?;
            tracing::info!("{count} report delivery(ies) marked failed are tried again");
        }
        registry.register(scheduler.metrics());
        Some(scheduler)
    } else {
        None
    };
    let runner = RunnerOptions {
        partitions: config.log.partitions,
        max_batch: config.log.commit_max_records(),
        commit_interval: config.log.commit_interval(),
        deadletter_topic: topology.deadletter.clone(),
        ..Default::default()
    };

    type StageRun = Box<dyn FnOnce(Arc<StageMetrics>) -> anyhow::Result<()> + Send>;
    /// A stage's name, metrics and thread.
    type StageThread = (String, Arc<StageMetrics>, std::thread::JoinHandle<anyhow::Result<()>>);
    let mut threads: Vec<StageThread> = Vec::new();
    let mut spawn = |name: &str, run: StageRun| -> anyhow::Result<()> {
        let metrics = Arc::new(StageMetrics::default());
        stages.add(name, metrics.clone());
        let (thread_metrics, stop) = (metrics.clone(), stop.clone());
        let handle = std::thread::Builder::new().name(format!("lux-{name}")).spawn(move || {
            let result = run(thread_metrics);
            if result.is_err() {
                // One stage failing stops the others cleanly.
                stop.store(true, Ordering::Relaxed);
            }
            result
        })?;
        threads.push((name.to_owned(), metrics, handle));
        Ok(())
    };

    if config.run.generator && options.runs("generator") {
        let incidents = network.incidents(&config.generator, start_ms)?;
        write_incidents(&data_dir.join("generator").join("incidents.json"), &incidents)?;
        for incident in &incidents {
            tracing::info!(
                scope = ?incident.scope,
                target = %incident.target,
                start = %lux_model::format_rfc3339_millis(incident.start),
                end = %lux_model::format_rfc3339_millis(incident.end),
                "the generator injects an incident"
            );
        }
        let source = GeneratorSource::new(&config.generator, &network, topology.raw.clone(), start_ms)?;
        let (log, runner, stop) = (log.clone(), runner.clone(), stop.clone());
        spawn("generator", Box::new(move |metrics| run_source(log, Box::new(source), runner, metrics, stop)))?;
    }
    // The collectors of [collect]: one source stage per listener, into the raw topic.
    if options.runs("collect") {
        for source in lux_collect::start(&config.collect, &topology.raw)? {
            let name = lux_stage::Source::name(&source).to_owned();
            let (log, runner, stop) = (log.clone(), runner.clone(), stop.clone());
            spawn(&name, Box::new(move |metrics| run_source(log, Box::new(source), runner, metrics, stop)))?;
        }
    }
    if options.runs("transform") {
        let topics = TransformTopics {
            raw: topology.raw.clone(),
            enriched: topology.enriched.clone(),
            deadletter: topology.deadletter.clone(),
        };
        let stage = TransformStage::new(&config.transform, &key, reference.clone(), topics);
        let (log, runner, stop) = (log.clone(), runner.clone(), stop.clone());
        spawn("transform", Box::new(move |metrics| run_processor(log, Box::new(stage), runner, metrics, stop)))?;
    }
    if options.runs("alarm-route") || options.runs("alarm") {
        let topics = AlarmTopics {
            enriched: topology.enriched.clone(),
            routed: topology.alarm_routed.clone(),
            alarms: topology.alarms.clone(),
            deadletter: topology.deadletter.clone(),
            late: topology.late.clone(),
        };
        let routed = routed_partitions(log.as_ref(), &topics.routed, &config.alarm);
        let route = AlarmRouteStage::new(&config.alarm, routed, topics.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let board = Arc::new(lux_alarm::board::WindowBoard::new(config.metrics.max_series_per_rule));
        let stage = AlarmStage::new(&config.alarm, config.log.partitions, routed, topics)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_window_board(board.clone());
        if options.runs("alarm-route") {
            let (log, runner, stop) = (log.clone(), runner.clone(), stop.clone());
            spawn("alarm-route", Box::new(move |metrics| run_processor(log, Box::new(route), runner, metrics, stop)))?;
        }
        if options.runs("alarm") {
            registry.register(Arc::new(crate::metrics::WindowCollector(board)));
            let (log, runner, stop) = (log.clone(), runner.clone(), stop.clone());
            spawn("alarm", Box::new(move |metrics| run_processor(log, Box::new(stage), runner, metrics, stop)))?;
        }
    }
    if let Some(notifier) = &notifier {
        registry.register(notifier.collector());
        let stage = notifier.stage(&config.notify, &topology.alarms, &topology.deadletter, stop.clone());
        let (log, runner, stop) = (log.clone(), runner.clone(), stop.clone());
        spawn("alarm-notify", Box::new(move |metrics| run_processor(log, Box::new(stage), runner, metrics, stop)))?;
    }
    if qoe {
        let topics = QoeTopics {
            enriched: topology.enriched.clone(),
            qoe: topology.qoe.clone(),
            deadletter: topology.deadletter.clone(),
        };
        let stage = QoeStage::new(&config.qoe, config.log.partitions, topics).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (log, runner, stop) = (log.clone(), runner.clone(), stop.clone());
        spawn("qoe", Box::new(move |metrics| run_processor(log, Box::new(stage), runner, metrics, stop)))?;
    }
    if qoe_sink {
        if let Some(stage) =
            QoePostgresStage::new(&config.qoe.postgres, &topology.qoe, &topology.deadletter, stop.clone())
        {
            let (log, runner, stop) = (log.clone(), runner.clone(), stop.clone());
            spawn("qoe-postgres", Box::new(move |metrics| run_processor(log, Box::new(stage), runner, metrics, stop)))?;
        }
    }
    // The scheduler is not a stage of the log (it has no input offsets to commit): its own thread.
    let scheduler = match scheduler {
        Some(scheduler) => Some(lux_report::scheduler::spawn(scheduler, stop.clone())?),
        None => None,
    };
    let metrics_server = crate::metrics::start(&config.metrics, registry, stop.clone());

    match config.log.backend {
        LogBackendKind::Embedded => eprintln!(
            "lux: running {} stage(s){} on the embedded log in {} (Ctrl-C to stop)",
            threads.len(),
            if scheduler.is_some() { " and the report scheduler" } else { "" },
            data_dir.display()
        ),
        LogBackendKind::Kafka => eprintln!(
            "lux: running {} stage(s){} on the Kafka cluster at {} (Ctrl-C to stop)",
            threads.len(),
            if scheduler.is_some() { " and the report scheduler" } else { "" },
            config.log.kafka.brokers
        ),
    }
    let started = Instant::now();
    let interval = config.run.summary_interval;
    let mut last_print = Instant::now();
    let mut previous: Vec<StageSnapshot> = threads.iter().map(|(_, m, _)| m.snapshot()).collect();
    let mut last_done_check = Instant::now();
    let all_finished = |threads: &[StageThread]| {
        threads.iter().all(|(_, _, h)| h.is_finished()) && scheduler.as_ref().is_none_or(|h| h.is_finished())
    };
    while !stop.load(Ordering::Relaxed) && !all_finished(&threads) {
        std::thread::sleep(Duration::from_millis(100));
        if options.stop_after.is_some_and(|d| started.elapsed() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if options.until_done && last_done_check.elapsed() >= runner.tick {
            last_done_check = Instant::now();
            let generator_done = threads.iter().any(|(name, _, h)| name == "generator" && h.is_finished());
            if generator_done && done(log.as_ref(), &topology, &config, qoe)? {
                eprintln!("lux: the bounded input went through every stage");
                stop.store(true, Ordering::Relaxed);
            }
        }
        if !interval.is_zero() && last_print.elapsed() >= interval {
            let elapsed = last_print.elapsed().as_secs_f64();
            last_print = Instant::now();
            let now: Vec<StageSnapshot> = threads.iter().map(|(_, m, _)| m.snapshot()).collect();
            let names: Vec<&str> = threads.iter().map(|(n, _, _)| n.as_str()).collect();
            let mut reasons: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
            for (_, metrics, _) in &threads {
                for (name, value) in metrics.counters() {
                    if let Some(reason) = name.strip_prefix("dead_letters.") {
                        *reasons.entry(reason.to_owned()).or_default() += value;
                    }
                }
            }
            eprintln!("{}", summary_line(&names, &previous, &now, elapsed, &reasons));
            previous = now;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for (name, _, handle) in threads {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failures.push(format!("stage {name} failed: {error:#}")),
            Err(_) => failures.push(format!("stage {name} crashed (a bug: please report it)")),
        }
    }
    reference.join();
    if let Some(scheduler) = scheduler {
        if scheduler.join().is_err() {
            failures.push("the report scheduler crashed (a bug: please report it)".to_owned());
        }
    }
    if let Some(notifier) = notifier {
        notifier.join();
    }
    if let Some(server) = metrics_server {
        server.join();
    }
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("\n"));
    }
    eprintln!("lux: stopped cleanly; every batch in hand was committed. The next `lux run` resumes from here.");
    Ok(())
}

/// The builder of the scheduled reports: `lux report`'s report ([`lux_report::make_report`]) of
/// the period, titled after its schedule. The log and the reference data are opened for each
/// build (a build is rare: once an hour at most), so that nothing the stages hold is shared with
/// the scheduler's thread; an error (a log that cannot be read) is retried by the scheduler.
fn report_builder(config: &LuxConfig, data_dir: &Path) -> lux_report::BuildReport {
    let (config, data_dir) = (config.clone(), data_dir.to_path_buf());
    Arc::new(move |schedule, period| {
        let options = lux_report::ReportOptions {
            title: format!("LUX QoE report ({schedule})"),
            ..lux_report::ReportOptions::default()
        };
        let sources = crate::report::sources(&config, &data_dir, options).map_err(|e| format!("{e:#}"))?;
        lux_report::make_report(&sources, period, chrono::Utc::now().timestamp_millis()).map_err(|e| e.to_string())
    })
}

/// Whether the transform, alarm (and QoE, when `qoe` runs) stages have committed every record of
/// their inputs, and the windowed stages wrote their last windows (once their partitions were
/// idle for their `idle_timeout`).
fn done(log: &dyn CentralLog, topology: &Topology, config: &LuxConfig, qoe: bool) -> anyhow::Result<bool> {
    let mut stages =
        vec![("transform", &topology.raw), ("alarm-route", &topology.enriched), ("alarm", &topology.alarm_routed)];
    if qoe {
        stages.push(("qoe", &topology.enriched));
    }
    for (group, topic) in stages {
        let Ok(info) = log.topic(topic) else { return Ok(false) };
        for (partition, end) in (0..info.partitions).zip(&info.end_offsets) {
            let tp = lux_log::TopicPartition { topic: topic.clone(), partition };
            if log.committed_offset(group, &tp)?.unwrap_or(0) < *end {
                return Ok(false);
            }
        }
    }
    Ok(lux_alarm::state_is_finished(&log.load_state("alarm")?, config.alarm.out_of_orderness)
        && (!qoe || lux_qoe::state_is_finished(&log.load_state("qoe")?, config.qoe.out_of_orderness)))
}

/// Writes the incidents the generator injects, for operators (and tests) to compare the alarms with.
fn write_incidents(path: &Path, incidents: &[lux_generate::ResolvedIncident]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(incidents)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `12:00:05 | generator 2000/s | transform 1998/s lag 12 | alarm 1998/s lag 0 | dead letters 0 | active alarms 1`
fn summary_line(
    names: &[&str],
    before: &[StageSnapshot],
    now: &[StageSnapshot],
    seconds: f64,
    dead_letter_reasons: &std::collections::BTreeMap<String, u64>,
) -> String {
    let mut parts = vec![chrono::Utc::now().format("%H:%M:%S").to_string()];
    let mut dead = 0;
    let mut gauge = None;
    for ((name, b), n) in names.iter().zip(before).zip(now) {
        dead += n.dead_letters;
        if *name == "generator" || name.starts_with("collect-") {
            parts.push(format!("{name} {:.0}/s", (n.records_out - b.records_out) as f64 / seconds));
        } else {
            parts.push(format!("{name} {:.0}/s lag {}", (n.records_in - b.records_in) as f64 / seconds, n.lag));
        }
        if *name == "alarm" {
            gauge = Some(n.gauge);
        }
    }
    if dead_letter_reasons.is_empty() {
        parts.push(format!("dead letters {dead}"));
    } else {
        let reasons: Vec<String> = dead_letter_reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        parts.push(format!("dead letters {dead} ({})", reasons.join(", ")));
    }
    if let Some(active) = gauge {
        parts.push(format!("active alarms {active}"));
    }
    parts.join(" | ")
}

/// The partition count of the alarm stage's routed topic: the topic's own if it exists (its
/// count was set when it was created), else `alarm.routed_partitions`.
pub(crate) fn routed_partitions(log: &dyn CentralLog, topic: &str, config: &lux_alarm::AlarmConfig) -> u32 {
    match log.topic(topic) {
        Ok(info) => {
            if info.partitions != config.routed_partitions {
                tracing::info!(
                    topic,
                    partitions = info.partitions,
                    configured = config.routed_partitions,
                    "the routed topic exists with another partition count than alarm.routed_partitions; LUX keeps the topic's"
                );
            }
            info.partitions
        }
        Err(_) => config.routed_partitions,
    }
}
