//! The durable outbox of the report scheduler, under `<data_dir>/report/`:
//!
//! - `outbox/<schedule>--<scheduled time>.json`: one file per run of a schedule, holding the
//!   report once built (every retry delivers the same report) and the state of each
//!   destination's delivery (pending with its attempts, last error and next attempt; delivered;
//!   failed once the retry budget is spent). A run whose deliveries all succeeded is removed; one
//!   with a failed delivery stays, marked, until an operator deals with it (`lux publish
//!   --retry-failed` tries again).
//! - `schedules.json`: the last scheduled time each schedule has enqueued, so that runs missed
//!   while LUX was down are found at start.
//!
//! Every file is written atomically (temporary file, sync, rename): a crash leaves the old
//! version or the new one. A delivery is marked delivered (and written) before the next one
//! starts, so a restart repeats at most the one in flight.

use crate::deliver::dir::write_atomically;
use crate::{Period, RenderedReport};
use anyhow::Context as _;
use lux_model::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One run of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub schedule: String,
    /// When the run was due.
    pub scheduled_ms: Millis,
    pub period: Period,
    /// The report, once built.
    pub report: Option<StoredReport>,
    /// The attempts at building it.
    pub build: Attempts,
    pub deliveries: Vec<Delivery>,
}

/// A rendered report as the outbox stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReport {
    pub title: String,
    pub stem: String,
    pub html: String,
    pub csv: String,
    pub json: String,
}

impl StoredReport {
    pub fn from_rendered(report: RenderedReport) -> StoredReport {
        let RenderedReport { period: _, title, stem, html, csv, json } = report;
        StoredReport { title, stem, html, csv, json }
    }

    pub fn rendered(&self, period: Period) -> RenderedReport {
        RenderedReport {
            period,
            title: self.title.clone(),
            stem: self.stem.clone(),
            html: self.html.clone(),
            csv: self.csv.clone(),
            json: self.json.clone(),
        }
    }
}

/// The attempts at something that is retried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    /// Attempts made (failed ones, and the one that succeeded).
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Not tried again before this time.
    pub next_attempt_ms: Millis,
}

/// The delivery of a run's report to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub destination: String,
    pub state: DeliveryState,
    #[serde(flatten)]
    pub attempts: Attempts,
    /// When it was delivered, or marked failed.
    pub done_ms: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// The retry budget is spent (or the report could not be built): kept, not tried again.
    Failed,
}

impl Run {
    /// A new run of `schedule` due at `scheduled_ms`, for `period`, to `destinations`.
    pub fn new(schedule: &str, scheduled_ms: Millis, period: Period, destinations: &[String]) -> Run {
        Run {
            schedule: schedule.to_owned(),
            scheduled_ms,
            period,
            report: None,
            build: Attempts { next_attempt_ms: scheduled_ms, ..Attempts::default() },
            deliveries: destinations
                .iter()
                .map(|d| Delivery {
                    destination: d.clone(),
                    state: DeliveryState::Pending,
                    attempts: Attempts { next_attempt_ms: scheduled_ms, ..Attempts::default() },
                    done_ms: None,
                })
                .collect(),
        }
    }

    /// The outbox file name: `<schedule>--<scheduled time, UTC>.json`.
    pub fn file_name(&self) -> String {
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(self.scheduled_ms)
            .map(|t| t.format("%Y%m%dT%H%M%S%.3fZ").to_string())
            .unwrap_or_else(|| self.scheduled_ms.to_string());
        format!("{}--{at}.json", self.schedule)
    }

    /// Whether every delivery succeeded.
    pub fn is_delivered(&self) -> bool {
        self.deliveries.iter().all(|d| d.state == DeliveryState::Delivered)
    }

    /// Whether something is still to be tried.
    pub fn is_pending(&self) -> bool {
        self.deliveries.iter().any(|d| d.state == DeliveryState::Pending)
    }
}

/// The outbox directory.
pub struct Outbox {
    dir: PathBuf,
}

const SCHEDULES_FILE: &str = "schedules.json";

impl Outbox {
    /// The outbox in `dir` (`<data_dir>/report`), created if missing.
    pub fn open(dir: &Path) -> anyhow::Result<Outbox> {
        let runs = dir.join("outbox");
        std::fs::create_dir_all(&runs)
            .with_context(|| format!("cannot create the report outbox {}", runs.display()))?;
        Ok(Outbox { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn runs_dir(&self) -> PathBuf {
        self.dir.join("outbox")
    }

    /// Every run in the outbox, oldest first. A file that is not a run (edited by hand, from
    /// another version) is renamed `<name>.unreadable` and logged at error level.
    pub fn load(&self) -> anyhow::Result<Vec<Run>> {
        let dir = self.runs_dir();
        let mut runs = Vec::new();
        let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            match serde_json::from_slice::<Run>(&bytes) {
                Ok(run) => runs.push(run),
                Err(error) => {
                    let mut aside = path.clone().into_os_string();
                    aside.push(".unreadable");
                    tracing::error!(
                        file = %path.display(),
                        "a report outbox file is not a run ({error}): renamed *.unreadable and left for an operator"
                    );
                    std::fs::rename(&path, &aside).with_context(|| format!("cannot rename {}", path.display()))?;
                }
            }
        }
        runs.sort_by(|a, b| (a.scheduled_ms, &a.schedule).cmp(&(b.scheduled_ms, &b.schedule)));
        Ok(runs)
    }

    /// Writes `run` (atomically).
    pub fn save(&self, run: &Run) -> anyhow::Result<()> {
        let path = self.runs_dir().join(run.file_name());
        let bytes = serde_json::to_vec_pretty(run)?;
        write_atomically(&path, &bytes)
            .with_context(|| format!("cannot write the report outbox file {}", path.display()))
    }

    /// Removes `run` (all delivered).
    pub fn remove(&self, run: &Run) -> anyhow::Result<()> {
        let path = self.runs_dir().join(run.file_name());
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }

    /// The last scheduled time each schedule enqueued.
    pub fn load_marks(&self) -> anyhow::Result<BTreeMap<String, Millis>> {
        let path = self.dir.join(SCHEDULES_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is not the report schedules' state: move it away to start afresh", path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save_marks(&self, marks: &BTreeMap<String, Millis>) -> anyhow::Result<()> {
        let path = self.dir.join(SCHEDULES_FILE);
        write_atomically(&path, &serde_json::to_vec_pretty(marks)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_marks_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let mut run = Run::new("daily", 86_400_000, Period { from: 0, to: 86_400_000 }, &["a".into(), "b".into()]);
        assert_eq!(run.file_name(), "daily--19700102T000000.000Z.json");
        outbox.save(&run).unwrap();
        run.deliveries[0].state = DeliveryState::Delivered;
        outbox.save(&run).unwrap();
        outbox.save_marks(&[("daily".to_owned(), 86_400_000)].into()).unwrap();
        std::fs::write(dir.path().join("outbox").join("junk.json"), b"{").unwrap();

        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(outbox.load().unwrap(), [run.clone()]);
        assert_eq!(outbox.load_marks().unwrap()["daily"], 86_400_000);
        assert!(dir.path().join("outbox").join("junk.json.unreadable").exists());
        outbox.remove(&run).unwrap();
        assert!(outbox.load().unwrap().is_empty());
    }
}
