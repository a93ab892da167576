//! `lux report`: the BI report of a period (the last complete hour, day or week, or from/to),
//! built from the `qoe` and `alarms` topics and the reference data's interventions, written as
//! HTML, CSV and JSON files (or one format to stdout). See `lux_report` for the figures.

use crate::config::LuxConfig;
use crate::run::Topology;
use anyhow::Context as _;
use lux_reference::{ReferenceHandle, SourceKind};
use lux_report::{PeriodSpec, RenderedReport, ReportOptions, ReportSources};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Options of `lux report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// `hour`, `day` or `week`: the last complete one (UTC; weeks from Monday) before now, or
    /// before `--at`.
    #[arg(long, value_name = "PERIOD", default_value = "day", conflicts_with_all = ["from", "to"])]
    pub period: String,
    /// Start of an explicit period (RFC 3339, e.g. `2026-11-26T00:00:00Z`), with `--to`.
    #[arg(long, value_name = "TIME", requires = "to")]
    pub from: Option<String>,
    /// End of an explicit period (RFC 3339, exclusive), with `--from`.
    #[arg(long, value_name = "TIME", requires = "from")]
    pub to: Option<String>,
    /// The time `--period` is counted back from (RFC 3339), instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// The formats to write, comma-separated: `html`, `csv`, `json`.
    #[arg(long, value_name = "FORMATS", value_delimiter = ',', default_value = "html,csv,json")]
    pub format: Vec<String>,
    /// The directory to write `<stem>.<format>` files into (created if missing), or `-` to
    /// print one format to stdout.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: String,
    /// The report's title.
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    /// Fewest events a region, site or piece of equipment needs in the period to be ranked
    /// among the worst.
    #[arg(long, value_name = "N")]
    pub min_events: Option<u64>,
    /// Rows of the worst lists and of the error codes.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
}

const FORMATS: [&str; 3] = ["html", "csv", "json"];

/// The formats asked for, checked, in the order given and without repeats.
fn formats(args: &ReportArgs) -> anyhow::Result<Vec<&'static str>> {
    let mut chosen = Vec::new();
    for f in &args.format {
        let f = f.trim().to_ascii_lowercase();
        let Some(known) = FORMATS.iter().find(|k| **k == f) else {
            anyhow::bail!("--format {f:?}: use html, csv or json (comma-separated for several)");
        };
        if !chosen.contains(known) {
            chosen.push(*known);
        }
    }
    if chosen.is_empty() {
        anyhow::bail!("--format: name at least one of html, csv, json");
    }
    if args.out == "-" && chosen.len() > 1 {
        anyhow::bail!("--out - prints one format: add --format html, csv or json");
    }
    Ok(chosen)
}

/// The period the arguments name, as at `now`.
pub fn period(args: &ReportArgs, now: i64) -> anyhow::Result<lux_report::Period> {
    let spec = match (&args.from, &args.to) {
        (Some(from), Some(to)) => PeriodSpec::range(from, to),
        _ => PeriodSpec::parse_kind(&args.period),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let at = match &args.at {
        Some(at) => lux_report::parse_time(at).map_err(|e| anyhow::anyhow!("--at: {e}"))?,
        None => now,
    };
    Ok(spec.resolve(at))
}

/// The reference data whose interventions the report lists: the configured source, or the demo
/// referential `lux run` wrote into the data directory (none when it has not run there).
fn reference(config: &LuxConfig, data_dir: &Path) -> anyhow::Result<Option<ReferenceHandle>> {
    let demo_dir = data_dir.join("reference");
    if config.reference.source == SourceKind::Csv && config.reference.dir.is_none() && !demo_dir.is_dir() {
        return Ok(None);
    }
    let mut cfg = config.reference.clone();
    cfg.watch = false;
    let stop = Arc::new(AtomicBool::new(true));
    ReferenceHandle::start(&cfg, &demo_dir, stop)
        .map(Some)
        .map_err(|error| anyhow::anyhow!("reference data (for the interventions): {error}"))
}

/// The sources of reports for this configuration and data directory (also what a scheduler
/// inside `lux` uses).
pub fn sources(config: &LuxConfig, data_dir: &Path, options: ReportOptions) -> anyhow::Result<ReportSources> {
    let topology = Topology::of(config);
    Ok(ReportSources {
        log: crate::run::open_reader(config, data_dir)?,
        qoe_topic: topology.qoe,
        alarms_topic: topology.alarms,
        reference: reference(config, data_dir)?,
        options,
    })
}

/// Writes `text` to `path` (mode 0644) through a temporary file in the same directory, so that
/// a reader never sees half a report.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot create a file in {}", dir.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    // Readable by the people and programs the reports are for (a temporary file is 0600).
    use std::os::unix::fs::PermissionsExt;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn text<'a>(report: &'a RenderedReport, format: &str) -> &'a str {
    match format {
        "html" => &report.html,
        "csv" => &report.csv,
        _ => &report.json,
    }
}

/// `lux report`: builds the report and writes it; returns the files written (none for stdout).
pub fn run(
    config: &LuxConfig,
    data_dir: &Path,
    args: &ReportArgs,
    out: &mut dyn Write,
) -> anyhow::Result<Vec<PathBuf>> {
    let formats = formats(args)?;
    let now = chrono::Utc::now().timestamp_millis();
    let period = period(args, now)?;
    let defaults = ReportOptions::default();
    let options = ReportOptions {
        title: args.title.clone().unwrap_or(defaults.title),
        min_events: args.min_events.unwrap_or(defaults.min_events),
        top: args.top.unwrap_or(defaults.top),
    };
    let sources = sources(config, data_dir, options)?;
    let inputs = sources.gather(period)?;
    let model = lux_report::build(&inputs, period, now, &sources.options);
    let report = lux_report::render(&model)?;
    eprintln!(
        "lux report: {} ({} to {}): {} indicator record(s), {} event(s), {} alarm(s) active{}",
        period.label(),
        lux_model::format_rfc3339_millis(period.from),
        lux_model::format_rfc3339_millis(period.to),
        model.indicator_records,
        model.current.events,
        model.alarms.alarms.len(),
        if model.has_indicators() { "" } else { " — no indicators in the period, the report says so" }
    );
    if args.out == "-" {
        out.write_all(text(&report, formats.first().copied().unwrap_or("json")).as_bytes())?;
        out.flush()?;
        return Ok(Vec::new());
    }
    let dir = PathBuf::from(&args.out);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let mut written = Vec::new();
    for format in formats {
        let path = dir.join(format!("{}.{format}", report.stem));
        write_atomically(&path, text(&report, format))?;
        writeln!(out, "{}", path.display())?;
        written.push(path);
    }
    Ok(written)
}
