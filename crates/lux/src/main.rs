//! `lux`: the one binary of LUX. Each stage of the pipeline is a subcommand; `lux run` runs them
//! all in one process. See the README for the data flow and the configuration reference.

mod bench;
mod collect;
mod config;
mod decode;
mod docs;
mod metrics;
mod plan;
mod replay;
mod report;
mod run;
mod topic;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// mimalloc rather than the system allocator: the stages allocate many small, short-lived
/// buffers per event (state entries, records, JSON), and with glibc's malloc the alarm windows
/// with their state ran at half the speed (`cargo bench -p lux-alarm --bench windows`, which uses
/// the same allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// LUX turns the raw logs of network equipment into enriched events, alarms and QoE indicators,
/// in real time.
#[derive(Parser)]
#[command(name = "lux", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ConfigArg {
    /// The TOML configuration file (defaults serve the demo when absent).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct DataDirArg {
    /// Where the embedded central log lives (overrides `log.data_dir`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct LogArg {
    /// The central log: `embedded` (in the data directory) or `kafka://host:port[,host:port]`
    /// (overrides `log.backend` and `log.kafka.brokers`).
    #[arg(long, value_name = "LOG")]
    log: Option<String>,
}

/// The options of a command running one kind of stage (`lux transform`, `lux alarm`, ...).
#[derive(clap::Args, Clone)]
struct StageArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    data_dir: DataDirArg,
    #[command(flatten)]
    log: LogArg,
    /// Stop by itself after this long (e.g. `30s`); otherwise run until SIGINT/SIGTERM.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    stop_after: Option<std::time::Duration>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every stage (demo generator, transform, alarm, notifiers) in one process.
    Run {
        #[command(flatten)]
        stage: StageArgs,
        /// With a bounded generator (`generator.duration`): stop once everything it sent went
        /// through every stage and the last windows were evaluated.
        #[arg(long)]
        until_done: bool,
        /// Run only these stages, comma-separated: generator, collect, transform, alarm-route, alarm,
        /// alarm-notify, qoe, qoe-postgres, report (the report scheduler).
        #[arg(long, value_name = "STAGES", value_delimiter = ',')]
        only: Option<Vec<String>>,
    },
    /// Run the transform stage alone (decode + enrich: raw -> enriched). Start several on Kafka
    /// to share the partitions of `raw`.
    Transform(StageArgs),
    /// Run the alarm stage alone (its two halves: alarm-route and alarm). Start several on Kafka
    /// to share the partitions.
    Alarm(StageArgs),
    /// Run the notifiers alone (the `alarm-notify` stage: the alarms topic to Alertmanager and
    /// webhooks, as configured in `[notify]`).
    Notify(StageArgs),
    /// Run the QoE stage alone (enriched -> per-minute indicators -> the `qoe` topic), and its
    /// PostgreSQL sink when `qoe.postgres.url` is set. Run one instance: it reads every
    /// partition.
    Qoe(StageArgs),
    /// Run the report scheduler alone: the `[[report.schedule]]`s' reports built at their times
    /// and delivered to directories, HTTP endpoints and e-mail, retried from the outbox in the
    /// data directory. Run one instance (two would deliver every report twice).
    Publish {
        #[command(flatten)]
        stage: StageArgs,
        /// First make the deliveries marked failed in the outbox (their retries spent) pending
        /// again, with a fresh retry budget.
        #[arg(long)]
        retry_failed: bool,
    },
    /// Run only the collectors of `[collect]` (syslog UDP/TCP/TLS, RADIUS accounting, tailed
    /// files, HTTP), writing into the raw topic of the log.
    Collect(StageArgs),
    /// Re-run the transform and alarm stages over a range of the raw topic into new, prefixed
    /// topics (batch analysis); the live topics are untouched.
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        data_dir: DataDirArg,
        #[command(flatten)]
        log: LogArg,
        #[command(flatten)]
        args: replay::ReplayArgs,
    },
    /// Build the BI report of a period (the last complete hour, day or week, or --from/--to)
    /// from the QoE indicators, alarms and interventions: HTML with SVG charts, CSV and JSON
    /// files in --out (or one format on stdout). Prints the files it wrote.
    Report {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        data_dir: DataDirArg,
        #[command(flatten)]
        log: LogArg,
        #[command(flatten)]
        args: report::ReportArgs,
    },
    /// Generate the demo operator's reference data and traffic (files, stdout, UDP/TCP).
    Generate {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        args: lux_generate::GenerateArgs,
    },
    /// Measure the whole pipeline on this machine: `lux run` fed syslog over loopback at fixed
    /// rates and at its maximum; throughput, end-to-end latency, CPU per million events, peak
    /// memory; or with `--kafka`, the transform stage with exactly-once on a Kafka broker (see
    /// BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Print the events (and dead letters, with reasons) LUX would make of raw input, as JSON lines.
    Decode {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        data_dir: DataDirArg,
        #[command(flatten)]
        args: decode::DecodeArgs,
    },
    /// Validate a configuration file: every problem with its key and line; non-zero exit if any.
    Check {
        /// The configuration file.
        file: PathBuf,
    },
    /// Print the pipeline's topology: stages, topics, partitions, rules.
    Plan {
        #[command(flatten)]
        config: ConfigArg,
        /// `text`, `dot` (Graphviz) or `mermaid`.
        #[arg(long, value_enum, default_value = "text")]
        format: plan::PlanFormat,
    },
    /// Reference data: create the PostgreSQL tables, import CSV files, validate, show.
    Reference {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: lux_reference::cli::ReferenceCommand,
    },
    /// Look inside the central log.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// The configuration reference and defaults.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

impl Command {
    /// The stages of `lux run` that `lux transform`, `lux alarm`, `lux notify` and `lux qoe`
    /// run alone (none for the other commands).
    fn stages_alone(&self) -> &'static [&'static str] {
        match self {
            Command::Transform(_) => &["transform"],
            Command::Alarm(_) => &["alarm-route", "alarm"],
            Command::Notify(_) => &["alarm-notify"],
            Command::Qoe(_) => &["qoe", "qoe-postgres"],
            Command::Publish { .. } => &["report"],
            _ => &[],
        }
    }
}

#[derive(Subcommand)]
enum TopicCommand {
    /// List the topics with their partitions and record counts.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        data_dir: DataDirArg,
        #[command(flatten)]
        log: LogArg,
    },
    /// Print a topic's records from the beginning as JSON lines, then exit (or `--follow`).
    Read {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        data_dir: DataDirArg,
        #[command(flatten)]
        log: LogArg,
        #[command(flatten)]
        args: topic::ReadArgs,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the Markdown reference of every configuration key (generated from the code).
    Reference {
        /// Replace the reference section of this file (the README) instead of printing.
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
    },
    /// Print the default configuration as TOML.
    Defaults,
}

fn load_config(arg: &ConfigArg) -> Result<config::LuxConfig, ExitCode> {
    config::load(arg.config.as_deref(), std::env::vars()).map_err(|errors| {
        eprint!("{errors}");
        ExitCode::from(2)
    })
}

/// The configuration with `--log` applied.
fn load_config_with_log(arg: &ConfigArg, log: &LogArg) -> Result<config::LuxConfig, ExitCode> {
    let mut config = load_config(arg)?;
    match log.log.as_deref() {
        None => {}
        Some("embedded") => config.log.backend = lux_log::LogBackendKind::Embedded,
        Some(url) => match config.log.kafka.clone().with_url(url) {
            Ok(kafka) => {
                config.log.backend = lux_log::LogBackendKind::Kafka;
                config.log.kafka = kafka;
            }
            Err(error) => {
                eprintln!("error: --log {error}");
                return Err(ExitCode::from(2));
            }
        },
    }
    Ok(config)
}

fn data_dir(config: &config::LuxConfig, arg: &DataDirArg) -> PathBuf {
    arg.data_dir.clone().unwrap_or_else(|| config.log.data_dir.clone())
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// SIGINT/SIGTERM set `stop`; a second one exits at once.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    Ok(stop)
}

/// Raises this process's soft limit of open files to its hard limit, as servers that keep many
/// files open do (the Go runtime does it for every program): the embedded log keeps every
/// segment file of its partitions open, one more every `log.segment_bytes` written, and the
/// usual soft limit of 1,024 would be reached within hours at tens of thousands of events/s
/// with no retention. Returns the limit in force.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the one struct passed, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

fn main() -> ExitCode {
    raise_open_files_limit();
    let cli = Cli::parse();
    let alone = cli.command.stages_alone();
    let result = match cli.command {
        Command::Run { stage: StageArgs { config, data_dir: dir, log, stop_after }, until_done, only } => {
            match run_stages(&config, &dir, &log, stop_after, until_done, only, false) {
                Ok(result) => result,
                Err(code) => return code,
            }
        }
        Command::Transform(StageArgs { config, data_dir: dir, log, stop_after })
        | Command::Alarm(StageArgs { config, data_dir: dir, log, stop_after })
        | Command::Notify(StageArgs { config, data_dir: dir, log, stop_after })
        | Command::Qoe(StageArgs { config, data_dir: dir, log, stop_after }) => {
            let only = Some(alone.iter().map(|s| (*s).to_owned()).collect());
            match run_stages(&config, &dir, &log, stop_after, false, only, false) {
                Ok(result) => result,
                Err(code) => return code,
            }
        }
        Command::Publish { stage: StageArgs { config, data_dir: dir, log, stop_after }, retry_failed } => {
            let only = Some(alone.iter().map(|s| (*s).to_owned()).collect());
            match run_stages(&config, &dir, &log, stop_after, false, only, retry_failed) {
                Ok(result) => result,
                Err(code) => return code,
            }
        }
        Command::Collect(StageArgs { config, data_dir: dir, log, stop_after }) => {
            init_tracing("info");
            let config = match load_config_with_log(&config, &log) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let dir = data_dir(&config, &dir);
            stop_on_signals().and_then(|stop| collect::collect(&config, &dir, stop_after, stop))
        }
        Command::Replay { config, data_dir: dir, log, args } => {
            init_tracing("warn");
            let config = match load_config_with_log(&config, &log) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let dir = data_dir(&config, &dir);
            stop_on_signals().and_then(|stop| replay::replay(config, &dir, &args, stop)).map(|s| {
                eprintln!(
                    "lux replay: {} raw record(s) -> {} event(s), {} dead letter(s), {} alarm record(s)",
                    s.raw_records, s.events, s.dead_letters, s.alarms
                );
            })
        }
        Command::Report { config, data_dir: dir, log, args } => {
            init_tracing("warn");
            let config = match load_config_with_log(&config, &log) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let dir = data_dir(&config, &dir);
            report::run(&config, &dir, &args, &mut std::io::stdout().lock()).map(|_| ())
        }
        Command::Generate { config, args } => {
            init_tracing("warn");
            match load_config(&config) {
                Ok(c) => lux_generate::run(c.generator, &args),
                Err(code) => return code,
            }
        }
        Command::Bench(args) => {
            init_tracing("warn");
            bench::run(&args)
        }
        Command::Decode { config, data_dir: dir, args } => {
            init_tracing("warn");
            let config = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let key = decode_subscriber_key(&config, &data_dir(&config, &dir));
            decode::run(&config, &args, &key, &mut std::io::stdout().lock()).map(|summary| {
                let reasons: Vec<String> = summary.dead_letters.iter().map(|(r, n)| format!("{r} {n}")).collect();
                eprintln!(
                    "lux decode: {} record(s), {} event(s), {} dead letter(s){}",
                    summary.records,
                    summary.events,
                    summary.dead_letters.values().sum::<u64>(),
                    if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) }
                );
            })
        }
        Command::Check { file } => {
            return match config::load(Some(&file), std::env::vars()) {
                Ok(_) => {
                    println!("{}: OK", file.display());
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprint!("{errors}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Plan { config, format } => match load_config(&config) {
            Ok(c) => {
                print!("{}", plan::render(&c, format));
                Ok(())
            }
            Err(code) => return code,
        },
        Command::Reference { config, command } => {
            init_tracing("warn");
            match load_config(&config) {
                Ok(c) => match lux_reference::cli::run(&c.reference, &command, &mut std::io::stdout().lock()) {
                    Ok(true) => Ok(()),
                    Ok(false) => return ExitCode::from(1),
                    Err(error) => Err(error),
                },
                Err(code) => return code,
            }
        }
        Command::Topic { command } => {
            init_tracing("warn");
            match command {
                TopicCommand::List { config, data_dir: dir, log } => match load_config_with_log(&config, &log) {
                    Ok(c) => run::open_reader(&c, &data_dir(&c, &dir))
                        .and_then(|log| topic::list(log.as_ref(), &mut std::io::stdout().lock())),
                    Err(code) => return code,
                },
                TopicCommand::Read { config, data_dir: dir, log, args } => match load_config_with_log(&config, &log) {
                    Ok(c) => run::open_reader(&c, &data_dir(&c, &dir)).and_then(|log| {
                        let stop = stop_on_signals()?;
                        topic::read(log.as_ref(), &args, &stop, &mut std::io::stdout().lock()).map(|_| ())
                    }),
                    Err(code) => return code,
                },
            }
        }
        Command::Config { command } => match command {
            ConfigCommand::Reference { write: None } => {
                print!("{}", docs::config_reference());
                Ok(())
            }
            ConfigCommand::Reference { write: Some(path) } => write_reference(&path),
            ConfigCommand::Defaults => toml::to_string_pretty(&config::LuxConfig::default())
                .map(|text| print!("{text}"))
                .map_err(anyhow::Error::from),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A closed stdout (`lux topic read raw | head`) is not an error.
            if error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `lux run` and the commands that run some of its stages (the exit code 2 of a bad
/// configuration, else what the run gave).
fn run_stages(
    config: &ConfigArg,
    dir: &DataDirArg,
    log: &LogArg,
    stop_after: Option<std::time::Duration>,
    until_done: bool,
    only: Option<Vec<String>>,
    retry_failed_reports: bool,
) -> Result<anyhow::Result<()>, ExitCode> {
    init_tracing("info");
    let config = load_config_with_log(config, log)?;
    let options =
        run::RunOptions { data_dir: data_dir(&config, dir), stop_after, until_done, only, retry_failed_reports };
    Ok(stop_on_signals().and_then(|stop| run::run(config, options, stop)))
}

/// The key `lux decode` pseudonymises subscribers with: the configured one, else the one
/// `lux run` keeps in the data directory (so pseudonyms match the pipeline's), else a throwaway key.
fn decode_subscriber_key(config: &config::LuxConfig, data_dir: &Path) -> Vec<u8> {
    if let Some(key) = &config.transform.subscriber_key {
        return key.as_bytes().to_vec();
    }
    if let Ok(key) = std::fs::read(data_dir.join("secrets").join("subscriber.key")) {
        if key.len() >= 16 {
            return key;
        }
    }
    eprintln!("lux decode: no subscriber key configured or in the data directory; pseudonyms use a throwaway key");
    use rand::RngCore;
    let mut key = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

fn write_reference(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let updated = docs::update_readme(&text).ok_or_else(|| {
        anyhow::anyhow!(
            "{} has no configuration reference markers ({} ... {})",
            path.display(),
            docs::START_MARKER,
            docs::END_MARKER
        )
    })?;
    std::fs::write(path, updated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_of_open_files_is_raised_to_the_hard_limit() {
        let raised = super::raise_open_files_limit();
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the one struct passed.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(raised, limit.rlim_cur);
        // An unlimited hard limit cannot be the soft one (the kernel caps open files).
        assert!(limit.rlim_cur == limit.rlim_max || limit.rlim_max == libc::RLIM_INFINITY, "{raised}");
    }
}
