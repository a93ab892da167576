//! LUX reports: what managers and other teams read instead of opening a dashboard.
//!
//! A report covers a period of event time (an hour, a day, a week, or from/to). It is built
//! from the QoE indicators of the `qoe` topic, the alarms of the `alarms` topic and the
//! interventions of the reference data, and rendered in every format at once
//! ([`RenderedReport`]): a self-contained HTML page with SVG charts, CSV and JSON.
//!
//! Reports are built on demand (`lux report`) or on a schedule, and delivered to a directory,
//! an HTTP endpoint or by e-mail.
//!
//! # Building a report
//!
//! [`make_report`] is the one call: the [`ReportSources`] (the central log, the topic names, the
//! reference data, the [`ReportOptions`]), the [`Period`] and the time of the report give the
//! [`RenderedReport`], in every format. A scheduler keeps one `ReportSources` and calls it for
//! each period it is due for (`PeriodSpec::Day.resolve(now)` is yesterday, UTC). It reads the
//! log (a few seconds for a day of a large network), so call it off any latency-sensitive thread.
//! "No indicators in the period" is a report saying so, not an error; an error is a log that
//! cannot be read.
//!
//! The steps are public too: [`ReportSources::gather`] reads the inputs ([`ReportInputs`]),
//! [`build`] turns them into the [`ReportModel`] (pure: the figures, compared exactly by the
//! tests), [`render`] renders a model.
//!
//! # The figures
//!
//! - The **period** is `[from, to)` of event time; the **previous period** the same length just
//!   before it. Indicator records count in a period when their window starts in it.
//! - **Totals** are sums of the indicator records of one dimension (`equipment`, the first of
//!   [`TOTALS_DIMENSIONS`] present), so each event counts once; **rates** are sums over sums:
//!   setup success rate `Σ setup_successes / Σ attempts`, authentication failure rate
//!   `Σ auth_failures / Σ attempts`, drop rate `Σ drops / Σ stops`, short-session ratio
//!   `Σ short_sessions / Σ durations.count`, failure rate `Σ failures / Σ events`, mean session
//!   `Σ durations.sum_s / Σ durations.count`. **Affected subscribers** is the estimate of the
//!   union of the records' HyperLogLog sketches (1.6% standard error, exact up to 10).
//! - **Worst regions, sites, equipment**: the values with at least `min_events` events in the
//!   period and at least one failure, by failure rate (then failures), with their failure rate
//!   in the previous period.
//! - **Top error codes**: summed from each record's `top_error_codes` (the `qoe.top_error_codes`
//!   most frequent codes of each window and value): exact when no equipment had more distinct
//!   codes than that in one window.
//! - **Alarms**: an alarm is raised at the end of the window whose counts raised it (its
//!   `raised` record's `window_end`) and cleared at its `cleared` record's `window_end`. Raised
//!   and cleared count the alarms whose raise or clear falls in the period; **MTTR** is the mean
//!   of `cleared - raised` over the alarms cleared in the period; the table lists every alarm
//!   active in the period (raised before its end, not cleared before its start), open ones
//!   marked.
//! - **Interventions**: those overlapping the period, with the events of their target excluded
//!   from the indicators (the `excluded_events` of the records of the intervention's scope and
//!   target, in the windows of the period it overlaps: another intervention on the same target
//!   at the same time would be counted too) and the alarms whose notification they suppressed.
//!
//! # Formats
//!
//! - **HTML**: one self-contained HTML5 page: inline CSS, inline SVG charts (events and failure
//!   rate across the period, worst regions, top error codes, session durations), no script, no
//!   external resource; every string from the data is escaped.
//! - **CSV**: one file of sections, one per table (`headline`, `timeline`, `worst_region`,
//!   `worst_site`, `worst_equipment`, `error_codes`, `durations`, `alarms`, `interventions`),
//!   separated by an empty line; each section starts with its header row, and the first column
//!   of every row names its table (`grep '^alarms,'` picks one). Rates are ratios (0.0125),
//!   times RFC 3339, durations seconds.
//! - **JSON**: the [`ReportModel`], schema [`REPORT_SCHEMA`].
//!
//! # Scheduled delivery
//!
//! [`config`] (the `[report]` section: schedules, destinations, retries),
//! [`schedule`] (when a schedule runs and which period a run covers), [`deliver`] (directory,
//! HTTP, SMTP), [`outbox`] (the durable record of every run and delivery, so that none is lost
//! silently) and [`scheduler`] (the loop tying them together, inside `lux run` or `lux publish`).

pub mod config;
pub mod deliver;
pub mod outbox;
pub mod schedule;
pub mod scheduler;

pub use config::ReportConfig;
pub use scheduler::{BuildReport, Scheduler};

mod gather;
mod model;
mod period;
mod render;

pub use gather::ReportSources;
pub use model::{
    bucket_ms, build, AlarmRow, AlarmSummary, DurationBucket, DurationSummary, ErrorCodeRow, InterventionImpact, Kpi,
    PeriodInfo, ReportInputs, ReportModel, ReportOptions, TimeBucket, Timeline, Totals, WorstList, WorstRow,
    REPORT_SCHEMA, TOTALS_DIMENSIONS, WORST_DIMENSIONS,
};
pub use period::{parse_time, PeriodSpec};
pub use render::{render, render_csv, render_html, render_json};

use lux_model::Millis;
use serde::{Deserialize, Serialize};

/// Why a report could not be made. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read the topic {topic:?}: {source}")]
    Log {
        topic: String,
        #[source]
        source: lux_log::LogError,
    },
    #[error("cannot render the report as {format}: {detail}")]
    Render { format: &'static str, detail: String },
}

/// The report of `period` as at `now` (milliseconds since the epoch, wall clock: the report's
/// "generated at"), built from `sources` and rendered in every format. See the crate docs for
/// the figures.
pub fn make_report(sources: &ReportSources, period: Period, now: Millis) -> Result<RenderedReport, ReportError> {
    let inputs = sources.gather(period)?;
    let model = build(&inputs, period, now, &sources.options);
    render(&model)
}

/// A period of event time, `[from, to)`, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    pub from: Millis,
    pub to: Millis,
}

/// A report rendered in every format, ready to be written or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedReport {
    /// The period the report covers.
    pub period: Period,
    /// A title for people: the subject of an e-mail, the HTML page's title.
    pub title: String,
    /// A file name stem without extension, unique per report and period
    /// (`lux-report-day-2026-11-26`): the files are `<stem>.html`, `<stem>.csv`, `<stem>.json`.
    pub stem: String,
    /// The self-contained HTML page (inline CSS and SVG, no external resources).
    pub html: String,
    /// The report's tables as CSV.
    pub csv: String,
    /// The report as JSON.
    pub json: String,
}
