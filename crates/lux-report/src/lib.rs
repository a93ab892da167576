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
//! Scheduled delivery: [`config`] (the `[report]` section: schedules, destinations, retries),
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

use lux_model::Millis;
use serde::{Deserialize, Serialize};

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
