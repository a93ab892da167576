//! `lux bench`: measures the whole pipeline on the machine it runs on, end to end.
//!
//! The bench generates the demo operator's reference data and a stretch of its syslog traffic
//! (`lux generate`), starts `lux run` as a child process on an embedded log in a temporary
//! directory with a syslog TCP collector on loopback in place of the generator, and sends it the
//! traffic over one TCP connection: at fixed offered rates (paced every millisecond), then as
//! fast as the collector takes it (TCP back-pressure), which is the pipeline's maximum
//! sustainable rate. After each step it waits until the transform stage has enriched every
//! record the collector wrote, and reads from the child's `/metrics`: the records that went
//! through, the end-to-end latency histogram (`lux_stage_reception_latency_seconds` of the
//! transform stage: from reception to the enriched record being readable, measured by LUX
//! itself, as in production), and from `/proc` its CPU time and peak memory.
//!
//! The traffic holds incidents (a site failing for [`INCIDENT_S`] seconds of event time, every
//! [`INCIDENT_EVERY_S`] seconds, each on another of the largest sites) that cross the threshold
//! of the bench's alarm rule, which the background failures never reach. After each step the
//! bench also waits for the alarm stage, and reads the alarm latency off the same histogram of
//! the `alarm` stage: from the reception of the event that brought a window to the threshold to
//! the `raised` record being readable (early firing), one sample per alarm raised. The generated
//! lines are sent again when they run out, their event times moved on by the span they cover,
//! so that they stay ahead of the watermark as live traffic does ([`Traffic::move_on`]).
//!
//! Each step also reads the CPU time of each of the child's threads (`/proc/PID/task`), summed
//! by group (a stage's thread, a pool's workers): the CPU seconds per million events that each
//! stage costs, printed below the steps' table.
//!
//! Before the pipeline, each component is measured alone on one thread ([`components`]):
//! decoding per format, the as-of join, the whole transform of a record, the embedded log; then
//! the alarm stage's window half on every core, in issue 8's setting.
//!
//! Percentiles are read off the histogram's buckets (about 1.5x apart): each is the upper bound
//! of the bucket that holds it. Output: a table, and JSON with `--json FILE`.
//!
//! `lux bench --kafka` measures the transform stage with exactly-once on a Kafka-protocol broker
//! instead ([`kafka`]).

mod components;
mod kafka;

use anyhow::{bail, Context as _};
pub use components::ComponentResult;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Flags of `lux bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// A short run (about a minute and a half): shorter steps, the same figures.
    #[arg(long)]
    pub quick: bool,
    /// Offered rates of the paced steps, events per second, comma-separated.
    #[arg(long, value_name = "N,N,...", value_delimiter = ',', default_value = "20000,40000,200000")]
    pub rates: Vec<u64>,
    /// How long each step sends (default: 30s, 8s with `--quick`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub step: Option<Duration>,
    /// Also write the results as JSON to this file (`-`: standard output, instead of the table).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Keep the temporary directory (data, generated traffic, the child's log) and print it.
    #[arg(long)]
    pub keep: bool,
    /// Instead of the pipeline: the transform stage with exactly-once on Kafka. Starts a tansu
    /// broker on a free port (or uses `--brokers`), fills `raw` with `--records` records and
    /// reports events/s, the CPU seconds of LUX and of the broker, the transactions and their
    /// latency.
    #[arg(long)]
    pub kafka: bool,
    /// With `--kafka`: the brokers to use (`host:port,...`) instead of starting tansu; the
    /// bench writes topics of its own (`lux-bench-<time>-<pid>.raw`, ...). The broker's CPU is
    /// not measured then.
    #[arg(long, value_name = "HOST:PORT,...", requires = "kafka")]
    pub brokers: Option<String>,
    /// With `--kafka`: raw records to transform.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, requires = "kafka")]
    pub records: u64,
    /// With `--kafka`: partitions of the topics.
    #[arg(long, value_name = "N", default_value_t = 3, requires = "kafka")]
    pub partitions: u32,
    /// With `--kafka`: `log.commit_interval` of the stage (default: Kafka's, 100ms).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "kafka")]
    pub commit_interval: Option<Duration>,
    /// With `--kafka`: `log.commit_max_records` of the stage (default: Kafka's, 50000).
    #[arg(long, value_name = "N", requires = "kafka")]
    pub commit_records: Option<u64>,
    /// With `--kafka`: a librdkafka property for the bench's clients, as in
    /// `log.kafka.properties` (`compression.type=lz4`, `linger.ms=20`, ...); repeat it for more.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE", value_parser = parse_property, requires = "kafka")]
    pub kafka_properties: Vec<(String, String)>,
}

/// `KEY=VALUE`, both non-empty.
fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() && !value.is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE (a librdkafka property, e.g. compression.type=lz4), not {text:?}")),
    }
}

/// What one step measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepResult {
    /// `paced` at `offered_per_s`, or `max` (as fast as the collector takes).
    pub mode: &'static str,
    /// The offered rate (events/s); `None` for the maximum.
    pub offered_per_s: Option<u64>,
    /// Events sent in the step.
    pub sent: u64,
    /// Events the transform stage read and committed its output of (an enriched record or a
    /// dead letter each) in the step.
    pub processed: u64,
    /// `processed` over the time from the step's first send to its last commit.
    pub throughput_per_s: f64,
    /// Seconds from the end of sending until the transform stage had caught up.
    pub drain_s: f64,
    /// End-to-end latency (reception to enriched record readable) percentiles, seconds, as
    /// bucket upper bounds.
    pub latency_p50_s: Option<f64>,
    pub latency_p99_s: Option<f64>,
    /// The upper bound of the highest non-empty bucket of the step (`None` above 60 s).
    pub latency_max_s: Option<f64>,
    /// Alarms raised in the step the moment their threshold was crossed (early firing): one
    /// sample each of the alarm latency.
    pub alarms_raised: u64,
    /// Alarm latency (reception of the threshold-crossing event to the `raised` record
    /// readable) percentiles, seconds, as bucket upper bounds; `None` when no alarm was raised.
    pub alarm_latency_p50_s: Option<f64>,
    pub alarm_latency_p99_s: Option<f64>,
    pub alarm_latency_max_s: Option<f64>,
    /// CPU time (user + system) of the `lux run` process per million events processed.
    pub cpu_s_per_million: f64,
    /// Peak resident memory of the `lux run` process so far (VmHWM), MiB.
    pub peak_memory_mib: f64,
    /// Where the CPU went: CPU seconds per million events of each group of the `lux run`
    /// process's threads (a stage's thread, the collector's workers, ...), by thread name with
    /// any `-<n>` suffix dropped, from the step's start until every stage had caught up.
    pub cpu_s_per_million_by_thread: BTreeMap<String, f64>,
}

/// The whole run, as written with `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    /// Each component alone, on one thread (the alarm windows on every core).
    pub components: Vec<ComponentResult>,
    pub step_s: f64,
    pub steps: Vec<StepResult>,
}

/// Where the figures come from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub load_average: String,
    pub lux_version: &'static str,
}

/// Runs the bench and prints its report.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.kafka {
        let report = kafka::run(&kafka::KafkaBench {
            brokers: args.brokers.clone(),
            records: args.records,
            partitions: args.partitions,
            commit_interval: args.commit_interval,
            commit_records: args.commit_records,
            properties: args.kafka_properties.iter().cloned().collect(),
        })?;
        match args.json.as_deref() {
            Some(path) if path == Path::new("-") => println!("{}", serde_json::to_string_pretty(&report)?),
            Some(path) => {
                std::fs::write(path, serde_json::to_vec_pretty(&report)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                kafka::print(&report);
            }
            None => kafka::print(&report),
        }
        return Ok(());
    }
    let step = args.step.unwrap_or(if args.quick { Duration::from_secs(8) } else { Duration::from_secs(30) });
    if step < Duration::from_secs(1) {
        bail!("--step must be at least 1s");
    }
    if args.rates.contains(&0) {
        bail!("--rates: every rate must be at least 1 event/s");
    }
    let dir = tempfile::Builder::new().prefix("lux-bench-").tempdir().context("cannot create a temporary directory")?;
    let root = dir.path().to_path_buf();
    eprintln!("lux bench: working in {}", root.display());

    let mut traffic = generate_traffic(&root, args, step)?;
    eprintln!(
        "lux bench: {} syslog lines of demo traffic generated ({} s of event time)",
        traffic.lines.len(),
        traffic.span_s
    );
    let each = if args.quick { Duration::from_secs(1) } else { Duration::from_secs(3) };
    let components = components::measure(&root.join("gen").join("reference"), &root, each)?;
    for c in &components {
        eprintln!("lux bench: {}", component_row(c));
    }
    let mut pipeline = Pipeline::start(&root)?;
    let result = measure(&mut pipeline, &mut traffic, args, step);
    pipeline.stop();
    if args.keep {
        let kept = dir.keep();
        eprintln!("lux bench: kept {}", kept.display());
    }
    let report = BenchReport { machine: Machine::here(), components, step_s: step.as_secs_f64(), steps: result? };
    match args.json.as_deref() {
        Some(path) if path == Path::new("-") => println!("{}", serde_json::to_string_pretty(&report)?),
        Some(path) => {
            std::fs::write(path, serde_json::to_vec_pretty(&report)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            print_table(&report);
        }
        None => print_table(&report),
    }
    Ok(())
}

/// The generated syslog lines, sent in turn and again from the first when they run out, their
/// event times then moved on by `span_s` ([`Traffic::move_on`]).
struct Traffic {
    lines: Vec<Vec<u8>>,
    /// Seconds of event time the lines span, rounded up.
    span_s: i64,
}

impl Traffic {
    /// Moves every line's event time `span_s` on, so that lines sent again follow those sent
    /// before in event time, as live traffic does: sent unchanged, they would be behind the
    /// watermark, late, and take the alarm stage's path for late events instead of its windows.
    fn move_on(&mut self) {
        for line in &mut self.lines {
            move_event_time(line, self.span_s);
        }
    }
}

/// Moves a generated syslog line's timestamp (RFC 5424's `2026-01-05T00:00:00.089Z` or RFC
/// 3164's `Jan  5 00:00:01`, both of fixed width) `seconds` on, in place; a line with neither is
/// left as it is.
fn move_event_time(line: &mut [u8], seconds: i64) {
    const RFC5424: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";
    // RFC 3164 names no year: any does for moving a time by seconds within the generated span.
    const RFC3164: &str = "%Y %b %e %H:%M:%S";
    let Some(start) = line.iter().take(5).position(|&b| b == b'>').map(|p| p + 1) else { return };
    let by = chrono::Duration::seconds(seconds);
    if line[start..].starts_with(b"1 ") {
        let Some(field) = line.get_mut(start + 2..start + 26) else { return };
        let Some(time) =
            std::str::from_utf8(field).ok().and_then(|t| chrono::NaiveDateTime::parse_from_str(t, RFC5424).ok())
        else {
            return;
        };
        field.copy_from_slice((time + by).format(RFC5424).to_string().as_bytes());
    } else {
        let Some(field) = line.get_mut(start..start + 15) else { return };
        let Some(time) = std::str::from_utf8(field)
            .ok()
            .and_then(|t| chrono::NaiveDateTime::parse_from_str(&format!("2026 {t}"), RFC3164).ok())
        else {
            return;
        };
        let moved = (time + by).format("%b %e %H:%M:%S").to_string();
        if moved.len() == field.len() {
            field.copy_from_slice(moved.as_bytes());
        }
    }
}

/// Writes the demo reference data to `root/gen/reference` and returns the syslog lines of enough
/// demo traffic for the largest paced step (sent again, later in event time, when they run out).
fn generate_traffic(root: &Path, args: &BenchArgs, step: Duration) -> anyhow::Result<Traffic> {
    let out = root.join("gen");
    let mut cfg = lux_generate::GeneratorConfig { rate: 20_000.0, ..lux_generate::GeneratorConfig::default() };
    // Enough distinct lines for a few seconds of the fastest step; more would only cost memory.
    let seconds = (args.rates.iter().max().copied().unwrap_or(20_000) as f64 * step.as_secs_f64().min(10.0) / cfg.rate)
        .clamp(10.0, 120.0);
    // The network first (a second of traffic), to pick the incidents' sites from it.
    let probe = lux_generate::GenerateArgs {
        duration: Duration::from_secs(1),
        out: Some(out.clone()),
        ..lux_generate::GenerateArgs::default()
    };
    lux_generate::generate(cfg.clone(), &probe).context("cannot generate the demo network")?;
    cfg.incidents = incidents(&out.join("reference").join("equipment.csv"), seconds)?;
    let gen_args = lux_generate::GenerateArgs {
        duration: Duration::from_secs_f64(seconds),
        out: Some(out.clone()),
        ..lux_generate::GenerateArgs::default()
    };
    lux_generate::generate(cfg, &gen_args).context("cannot generate the demo traffic")?;
    let text = std::fs::read(out.join("syslog.log")).context("cannot read the generated syslog lines")?;
    let lines: Vec<Vec<u8>> =
        text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| [l, b"\n"].concat()).collect();
    if lines.is_empty() {
        bail!("the generator wrote no syslog lines");
    }
    Ok(Traffic { lines, span_s: seconds.ceil() as i64 })
}

/// Event time between the starts of two incidents of the bench's traffic.
const INCIDENT_EVERY_S: u64 = 2;
/// How long each incident lasts (event time).
const INCIDENT_S: u64 = 3;
/// The sites incidents go round (the largest ones): an alarm has cleared by the time its site
/// fails again (`INCIDENT_SITES x INCIDENT_EVERY_S` > the rule's window + slide + lateness).
const INCIDENT_SITES: usize = 40;
/// The bench's alarm rule: failures per site over a minute. The background failures of the
/// largest sites stay far under the threshold (about a third of it); an incident on one of
/// [`INCIDENT_SITES`] largest crosses it within its first two seconds.
const ALARM_RULE: &str = r#"
[[alarm.rules]]
name = "site-failures"
group_by = ["site"]
window = "60s"
slide = "10s"
threshold = 300
"#;

/// An incident every [`INCIDENT_EVERY_S`] seconds of the `seconds` generated, each on the next
/// of the [`INCIDENT_SITES`] sites with the most equipment in `equipment_csv`.
fn incidents(equipment_csv: &Path, seconds: f64) -> anyhow::Result<Vec<lux_generate::IncidentConfig>> {
    let text = std::fs::read_to_string(equipment_csv)
        .with_context(|| format!("cannot read the generated {}", equipment_csv.display()))?;
    let mut per_site: BTreeMap<&str, usize> = BTreeMap::new();
    // Columns: equipment_id, hostname, ip_address, nas_identifier, model_id, site_id, ...
    for line in text.lines().skip(1) {
        if let Some(site) = line.split(',').nth(5) {
            *per_site.entry(site).or_default() += 1;
        }
    }
    let mut sites: Vec<(&str, usize)> = per_site.into_iter().collect();
    sites.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    sites.truncate(INCIDENT_SITES);
    if sites.is_empty() {
        bail!("no site in the generated {}", equipment_csv.display());
    }
    let count = (seconds as u64).saturating_sub(INCIDENT_S + 1) / INCIDENT_EVERY_S;
    Ok((0..count)
        .zip(sites.iter().cycle())
        .map(|(i, (site, _))| lux_generate::IncidentConfig {
            scope: lux_generate::IncidentScope::Site,
            target: Some((*site).to_owned()),
            start_after: Duration::from_secs(1 + i * INCIDENT_EVERY_S),
            duration: Duration::from_secs(INCIDENT_S),
            failure_ratio: 0.9,
        })
        .collect())
}

/// The `lux run` child process and its addresses.
struct Pipeline {
    child: Child,
    pid: u32,
    collector: SocketAddr,
    metrics: String,
    log_file: PathBuf,
}

impl Pipeline {
    fn start(root: &Path) -> anyhow::Result<Pipeline> {
        let collector = free_port()?;
        let metrics_addr = free_port()?;
        let config = format!(
            r#"# Written by `lux bench`.
[run]
generator = false
summary_interval = "0s"

[log]
data_dir = "{data}"

[reference]
dir = "{reference}"

[metrics]
listen = "{metrics_addr}"

[[collect.syslog]]
protocol = "tcp"
listen = "{collector}"
source = "demo"
{ALARM_RULE}"#,
            data = toml_path(&root.join("data")),
            reference = toml_path(&root.join("gen").join("reference")),
        );
        let config_file = root.join("lux.toml");
        std::fs::write(&config_file, config).context("cannot write the bench's configuration")?;
        let log_file = root.join("lux-run.log");
        let log = std::fs::File::create(&log_file).context("cannot create the child's log file")?;
        let exe = std::env::current_exe().context("cannot find the lux executable")?;
        let mut command = Command::new(exe);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. The child is
        // stopped if the bench dies (killed, interrupted) instead of running on unobserved.
        unsafe {
            use std::os::unix::process::CommandExt as _;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command
            .arg("run")
            .arg("--config")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start `lux run`")?;
        let pid = child.id();
        let mut pipeline =
            Pipeline { child, pid, collector, metrics: format!("http://{metrics_addr}/metrics"), log_file };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = pipeline.child.try_wait()? {
                bail!("`lux run` exited ({status}) before it was ready; its log: {}", pipeline.log_file.display());
            }
            if pipeline.scrape().is_ok() && TcpStream::connect(collector).is_ok() {
                return Ok(pipeline);
            }
            if Instant::now() > deadline {
                pipeline.stop();
                bail!("`lux run` was not ready within 120 s; its log: {}", pipeline.log_file.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn scrape(&self) -> anyhow::Result<Metrics> {
        let agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().new_agent();
        let text = agent.get(&self.metrics).call()?.body_mut().read_to_string()?;
        Ok(Metrics::parse(&text))
    }

    /// CPU seconds (user + system) of the child so far.
    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds_of(self.pid)
    }

    /// Peak resident memory of the child (VmHWM), MiB.
    fn peak_memory_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kib = kib_field(&status, "VmHWM:").context("no VmHWM in /proc/PID/status")?;
        Ok(kib / 1024.0)
    }

    fn stop(&mut self) {
        // SAFETY: kill takes integers; the pid is our child's, not yet reaped.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) of a process so far, from `/proc/<pid>/stat`.
fn cpu_seconds_of(pid: u32) -> anyhow::Result<f64> {
    cpu_seconds_in(&format!("/proc/{pid}/stat"))
}

/// CPU seconds so far of each group of a process's threads ([`thread_group`]).
fn cpu_seconds_by_thread(pid: u32) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut groups = BTreeMap::new();
    let tasks = format!("/proc/{pid}/task");
    for task in std::fs::read_dir(&tasks).with_context(|| format!("cannot list {tasks}"))? {
        let path = task?.path();
        // A thread that ended between the listing and the read is left out.
        let (Ok(name), Ok(cpu)) =
            (std::fs::read_to_string(path.join("comm")), cpu_seconds_in(&path.join("stat").to_string_lossy()))
        else {
            continue;
        };
        *groups.entry(thread_group(name.trim()).to_owned()).or_insert(0.0) += cpu;
    }
    Ok(groups)
}

/// The CPU seconds of a `/proc/.../stat` file.
fn cpu_seconds_in(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("cannot read the CPU time in {path}"))?;
    // The fields after the command name (in parentheses, which may hold spaces).
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    // SAFETY: sysconf takes an integer and touches no memory.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11) + ticks(12)) / hz)
}

/// The group a thread's CPU is counted in: its name without a `-<n>` suffix (the workers of one
/// pool: `lux-alarm-0`, `lux-alarm-1` are `lux-alarm`). Linux keeps 15 bytes of a thread's name.
fn thread_group(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((group, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => group,
        _ => name,
    }
}

/// The value of a `/proc` line `<name> <n> kB` (`/proc/meminfo`, `/proc/PID/status`), in KiB.
fn kib_field(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
}

fn toml_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "\\\\").replace('"', "\\\"")
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?)
}

/// The samples of a `/metrics` page, by series (`name{labels}`, as printed).
struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
            .collect();
        Metrics(samples)
    }

    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// A stage's reception latency buckets: (upper bound, cumulative count).
    fn latency_buckets(&self, stage: &str) -> Vec<(f64, f64)> {
        let prefix = format!("lux_stage_reception_latency_seconds_bucket{{stage=\"{stage}\",le=\"");
        let mut buckets: Vec<(f64, f64)> = self
            .0
            .iter()
            .filter_map(|(series, &count)| {
                let le = series.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                Some((if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? }, count))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }
}

/// Reads a stage's latency percentiles off the difference of two scrapes' buckets.
fn percentiles(stage: &str, before: &Metrics, after: &Metrics) -> (Option<f64>, Option<f64>, Option<f64>) {
    let start: BTreeMap<u64, f64> =
        before.latency_buckets(stage).into_iter().map(|(le, c)| (le.to_bits(), c)).collect();
    let step: Vec<(f64, f64)> = after
        .latency_buckets(stage)
        .into_iter()
        .map(|(le, c)| (le, c - start.get(&le.to_bits()).copied().unwrap_or(0.0)))
        .collect();
    let total = step.last().map_or(0.0, |&(_, c)| c);
    if total <= 0.0 {
        return (None, None, None);
    }
    let quantile = |q: f64| {
        let rank = (q * total).ceil().max(1.0);
        step.iter().find(|&&(_, c)| c >= rank).map(|&(le, _)| le).filter(|le| le.is_finite())
    };
    (quantile(0.5), quantile(0.99), quantile(1.0))
}

/// At the maximum rate, most lines sent and not yet read by the transform stage.
const MAX_IN_FLIGHT: u64 = 100_000;

const TRANSFORM_IN: &str = "lux_stage_records_in_total{stage=\"transform\"}";
/// Early raises of the alarm stage: the samples of its reception latency histogram.
const ALARMS_RAISED: &str = "lux_stage_reception_latency_seconds_count{stage=\"alarm\"}";
/// The stages reading `enriched` (the alarm stage's two halves, the QoE stage), whose input
/// lag the bench waits to fall to zero after each step.
const READER_LAGS: [&str; 3] = [
    "lux_stage_lag_records{stage=\"alarm-route\"}",
    "lux_stage_lag_records{stage=\"alarm\"}",
    "lux_stage_lag_records{stage=\"qoe\"}",
];

fn measure(
    pipeline: &mut Pipeline,
    traffic: &mut Traffic,
    args: &BenchArgs,
    step: Duration,
) -> anyhow::Result<Vec<StepResult>> {
    let mut results = Vec::new();
    let mut sender = Sender::connect(pipeline.collector, traffic)?;
    // A short warm-up: caches, page faults of the log's first segments, the reference data.
    sender.send(Some(args.rates.first().copied().unwrap_or(20_000)), Duration::from_secs(2), || Ok(0))?;
    wait_until_processed(pipeline, sender.sent)?;
    let steps: Vec<Option<u64>> = args.rates.iter().map(|&r| Some(r)).chain([None]).collect();
    for rate in steps {
        let before = pipeline.scrape()?;
        let cpu_before = pipeline.cpu_seconds()?;
        let threads_before = cpu_seconds_by_thread(pipeline.pid)?;
        let started = Instant::now();
        // At the maximum, the records sent and not yet read by the transform stage are kept
        // under MAX_IN_FLIGHT: what is measured is the rate the pipeline sustains, not how
        // much the collector's queue and the raw topic can hold.
        let sent = sender.send(rate, step, || Ok(pipeline.scrape()?.get(TRANSFORM_IN) as u64))?;
        let sent_at = Instant::now();
        let (drained, drained_at) = wait_until_processed(pipeline, sender.sent)?;
        let cpu = pipeline.cpu_seconds()? - cpu_before;
        let processed = drained.get(TRANSFORM_IN) - before.get(TRANSFORM_IN);
        let (p50, p99, max) = percentiles("transform", &before, &drained);
        // The step's alarms: once the alarm stage has read everything the transform wrote.
        let after = wait_until_readers_caught_up(pipeline)?;
        let (alarm_p50, alarm_p99, alarm_max) = percentiles("alarm", &before, &after);
        let per_million = |cpu: f64| if processed > 0.0 { cpu / processed * 1e6 } else { 0.0 };
        let mut by_thread = cpu_seconds_by_thread(pipeline.pid)?;
        for (group, cpu) in by_thread.iter_mut() {
            *cpu = per_million(*cpu - threads_before.get(group).copied().unwrap_or(0.0));
        }
        let result = StepResult {
            mode: if rate.is_some() { "paced" } else { "max" },
            offered_per_s: rate,
            sent,
            processed: processed as u64,
            throughput_per_s: processed / drained_at.duration_since(started).as_secs_f64().max(1e-9),
            drain_s: drained_at.saturating_duration_since(sent_at).as_secs_f64(),
            latency_p50_s: p50,
            latency_p99_s: p99,
            latency_max_s: max,
            alarms_raised: (after.get(ALARMS_RAISED) - before.get(ALARMS_RAISED)).max(0.0) as u64,
            alarm_latency_p50_s: alarm_p50,
            alarm_latency_p99_s: alarm_p99,
            alarm_latency_max_s: alarm_max,
            cpu_s_per_million: per_million(cpu),
            peak_memory_mib: pipeline.peak_memory_mib()?,
            cpu_s_per_million_by_thread: by_thread,
        };
        eprintln!("lux bench: {}", row(&result));
        results.push(result);
    }
    Ok(results)
}

/// Waits until the transform stage has read every record sent so far (the collector wrote them
/// to `raw` and the transform stage committed its output of them); returns the scrape that
/// showed it and when.
fn wait_until_processed(pipeline: &mut Pipeline, sent: u64) -> anyhow::Result<(Metrics, Instant)> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(status) = pipeline.child.try_wait()? {
            bail!("`lux run` exited ({status}) during the bench; its log: {}", pipeline.log_file.display());
        }
        let metrics = pipeline.scrape()?;
        if metrics.get(TRANSFORM_IN) >= sent as f64 {
            return Ok((metrics, Instant::now()));
        }
        if Instant::now() > deadline {
            bail!(
                "the transform stage read {} of {sent} records in 300 s; the child's log: {}",
                metrics.get(TRANSFORM_IN),
                pipeline.log_file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the alarm stage's halves and the QoE stage have no record left to read (twice in
/// a row, 50 ms apart: the lag is sampled at each poll); returns the scrape that showed it.
fn wait_until_readers_caught_up(pipeline: &mut Pipeline) -> anyhow::Result<Metrics> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut idle_scrapes = 0;
    loop {
        if let Some(status) = pipeline.child.try_wait()? {
            bail!("`lux run` exited ({status}) during the bench; its log: {}", pipeline.log_file.display());
        }
        let metrics = pipeline.scrape()?;
        let lag: f64 = READER_LAGS.iter().map(|series| metrics.get(series)).sum();
        idle_scrapes = if lag <= 0.0 { idle_scrapes + 1 } else { 0 };
        if idle_scrapes >= 2 {
            return Ok(metrics);
        }
        if Instant::now() > deadline {
            bail!(
                "the alarm and QoE stages still had {lag} records to read after 300 s; the child's log: {}",
                pipeline.log_file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends the generated lines over one TCP connection, paced or as fast as it takes them.
struct Sender<'a> {
    stream: std::io::BufWriter<TcpStream>,
    traffic: &'a mut Traffic,
    next: usize,
    /// Lines sent since the connection opened.
    sent: u64,
}

impl<'a> Sender<'a> {
    fn connect(addr: SocketAddr, traffic: &'a mut Traffic) -> anyhow::Result<Sender<'a>> {
        let stream = TcpStream::connect(addr).with_context(|| format!("cannot connect to the collector at {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Sender { stream: std::io::BufWriter::with_capacity(256 * 1024, stream), traffic, next: 0, sent: 0 })
    }

    fn send_one(&mut self) -> std::io::Result<()> {
        self.stream.write_all(&self.traffic.lines[self.next])?;
        self.sent += 1;
        self.next += 1;
        if self.next == self.traffic.lines.len() {
            self.next = 0;
            self.traffic.move_on();
        }
        Ok(())
    }

    /// Sends for `duration`: `rate` lines per second (checked every millisecond), or as fast as
    /// the connection takes them while fewer than [`MAX_IN_FLIGHT`] lines sent are not yet
    /// `processed()` (checked every 10,000 lines). Returns how many.
    fn send(
        &mut self,
        rate: Option<u64>,
        duration: Duration,
        mut processed: impl FnMut() -> anyhow::Result<u64>,
    ) -> anyhow::Result<u64> {
        let start = Instant::now();
        let first = self.sent;
        loop {
            let elapsed = start.elapsed();
            if elapsed >= duration {
                break;
            }
            match rate {
                Some(rate) => {
                    let due = (rate as f64 * elapsed.as_secs_f64()) as u64;
                    while self.sent - first < due {
                        self.send_one().context("the collector closed the connection")?;
                    }
                    self.stream.flush().context("the collector closed the connection")?;
                    std::thread::sleep(Duration::from_micros(500));
                }
                None => {
                    self.stream.flush().context("the collector closed the connection")?;
                    if self.sent.saturating_sub(processed()?) >= MAX_IN_FLIGHT {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    for _ in 0..10_000 {
                        self.send_one().context("the collector closed the connection")?;
                    }
                }
            }
        }
        if let Some(rate) = rate {
            // Exactly the step's share: rate x duration.
            let due = (rate as f64 * duration.as_secs_f64()).round() as u64;
            while self.sent - first < due {
                self.send_one().context("the collector closed the connection")?;
            }
        }
        self.stream.flush().context("the collector closed the connection")?;
        Ok(self.sent - first)
    }
}

impl Machine {
    fn here() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = kib_field(&meminfo, "MemTotal:").unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            memory_gib: memory_kib / (1024.0 * 1024.0),
            load_average: std::fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            lux_version: env!("CARGO_PKG_VERSION"),
        }
    }
}

fn ms(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), |s| format!("≤{:.0}", s * 1000.0))
}

fn row(r: &StepResult) -> String {
    format!(
        "{:<7} {:>10} {:>10} {:>12.0} {:>8.2} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>10.1} {:>9.1}",
        r.mode,
        r.offered_per_s.map_or_else(|| "max".to_owned(), |o| o.to_string()),
        r.processed,
        r.throughput_per_s,
        r.drain_s,
        ms(r.latency_p50_s),
        ms(r.latency_p99_s),
        ms(r.latency_max_s),
        r.alarms_raised,
        ms(r.alarm_latency_p50_s),
        ms(r.alarm_latency_p99_s),
        ms(r.alarm_latency_max_s),
        r.cpu_s_per_million,
        r.peak_memory_mib
    )
}

fn component_row(c: &ComponentResult) -> String {
    format!("{:<17} {:>14.0} {:>12.0}  {}", c.component, c.per_core_per_s, c.wall_per_s, c.detail)
}

/// The steps' CPU seconds per million events by group of threads, a column each, the groups
/// that took the most first.
fn print_cpu_by_thread(steps: &[StepResult]) {
    let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
    for step in steps {
        for (group, cpu) in &step.cpu_s_per_million_by_thread {
            *totals.entry(group.as_str()).or_insert(0.0) += cpu;
        }
    }
    let mut groups: Vec<(&str, f64)> = totals.into_iter().filter(|(_, cpu)| *cpu > 0.0).collect();
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!();
    println!("CPU s/M by thread (from the step's start until every stage had caught up):");
    let header: Vec<String> = groups.iter().map(|(g, _)| format!("{g:>15}")).collect();
    println!("{:<7} {:>10} {}", "mode", "offered/s", header.join(" "));
    for step in steps {
        let cells: Vec<String> = groups
            .iter()
            .map(|(g, _)| format!("{:>15.2}", step.cpu_s_per_million_by_thread.get(*g).copied().unwrap_or(0.0)))
            .collect();
        let offered = step.offered_per_s.map_or_else(|| "max".to_owned(), |o| o.to_string());
        println!("{:<7} {:>10} {}", step.mode, offered, cells.join(" "));
    }
}

fn print_table(report: &BenchReport) {
    let m = &report.machine;
    println!("{:<17} {:>14} {:>12}  what", "component", "per core/s", "wall/s");
    for c in &report.components {
        println!("{}", component_row(c));
    }
    println!();
    println!(
        "lux {} on {} CPUs ({}), {:.1} GiB, load average {}; {} s a step; the whole pipeline \
         (syslog TCP collector -> raw -> transform -> enriched, alarm) on the embedded log",
        m.lux_version, m.cpus, m.cpu_model, m.memory_gib, m.load_average, report.step_s
    );
    println!(
        "{:<7} {:>10} {:>10} {:>12} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "mode",
        "offered/s",
        "processed",
        "events/s",
        "drain s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "alarms",
        "a.p50",
        "a.p99",
        "a.max",
        "CPU s/M",
        "peak MiB"
    );
    for r in &report.steps {
        println!("{}", row(r));
    }
    print_cpu_by_thread(&report.steps);
    println!(
        "latency: reception to the enriched record being readable, from the transform stage's \
         histogram (bucket upper bounds); alarms: raised in the step the moment an event crossed \
         the threshold, and a.p50/a.p99/a.max their latency from that event's reception to the \
         raised record being readable (the alarm stage's histogram); CPU s/M: CPU seconds of `lux run` per \
         million events"
    );
}

#[cfg(test)]
mod tests {
    use super::{move_event_time, thread_group};

    #[test]
    fn event_times_move_on_in_both_syslog_formats() {
        let mut rfc5424 = b"<134>1 2026-01-05T23:59:30.089Z bng-gre001-01 bng - SESSION_STOP - x\n".to_vec();
        move_event_time(&mut rfc5424, 45);
        assert_eq!(rfc5424, b"<134>1 2026-01-06T00:00:15.089Z bng-gre001-01 bng - SESSION_STOP - x\n");
        let mut rfc3164 = b"<187>Jan  5 23:59:30 cpe-lrt002-00011 1134: %DHCP-3-NOOFFER: x\n".to_vec();
        move_event_time(&mut rfc3164, 45);
        assert_eq!(rfc3164, b"<187>Jan  6 00:00:15 cpe-lrt002-00011 1134: %DHCP-3-NOOFFER: x\n");
        let mut rfc3164 = b"<187>Jan 31 23:59:59 cpe 1: x\n".to_vec();
        move_event_time(&mut rfc3164, 1);
        assert_eq!(rfc3164, b"<187>Feb  1 00:00:00 cpe 1: x\n");
        for other in [&b"no priority\n"[..], b"<1>1 not-a-time", b"<1>", b""] {
            let mut line = other.to_vec();
            move_event_time(&mut line, 60);
            assert_eq!(line, other);
        }
    }

    #[test]
    fn the_workers_of_one_pool_are_counted_together() {
        assert_eq!(thread_group("lux-alarm-0"), "lux-alarm");
        assert_eq!(thread_group("lux-alarm-12"), "lux-alarm");
        assert_eq!(thread_group("lux-alarm-route"), "lux-alarm-route");
        assert_eq!(thread_group("lux-collect"), "lux-collect");
        assert_eq!(thread_group("lux-"), "lux-");
        assert_eq!(thread_group("lux"), "lux");
    }
}
