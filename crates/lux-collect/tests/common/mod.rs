//! Test harness of the collectors: listeners started from a config on port 0, their sources run
//! by the real runner into an embedded log in a temporary directory, and the raw topic read back
//! through `EmbeddedLog::open_reader`.
#![allow(dead_code)]

use lux_collect::metrics::ListenerMetrics;
use lux_collect::CollectConfig;
use lux_log::embedded::EmbeddedLog;
use lux_log::{CentralLog, Durability};
use lux_model::RawRecord;
use lux_stage::{run_source, RunnerOptions, StageMetrics};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const RAW: &str = "raw";
pub const PARTITIONS: u32 = 3;

/// Listeners with their sources, runners not started yet (see [`Harness::run`]).
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub log: Arc<EmbeddedLog>,
    pub stop: Arc<AtomicBool>,
    pub addrs: Vec<SocketAddr>,
    pub metrics: Vec<Arc<ListenerMetrics>>,
    pub stage_metrics: Vec<Arc<StageMetrics>>,
    sources: Vec<lux_collect::Collector>,
    threads: Vec<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Harness {
    /// Binds the listeners of `config` (their `listen` should use port 0).
    pub fn start(config: &CollectConfig) -> Harness {
        Harness::start_in(tempfile::tempdir().unwrap(), config)
    }

    /// Stops the runners, closes the log, and starts `config`'s collectors again on the same log
    /// (as a restarted process would).
    pub fn restart(mut self, config: &CollectConfig) -> Harness {
        self.stop();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        drop(self);
        Harness::start_in(dir, config)
    }

    fn start_in(dir: tempfile::TempDir, config: &CollectConfig) -> Harness {
        let problems = config.validate("collect");
        assert!(problems.is_empty(), "{problems:?}");
        let log = Arc::new(EmbeddedLog::open(dir.path(), Durability::Group).unwrap());
        log.ensure_topic(RAW, PARTITIONS).unwrap();
        let sources = lux_collect::start(config, RAW).unwrap();
        Harness {
            addrs: sources
                .iter()
                .map(|s| s.local_addr().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))))
                .collect(),
            metrics: sources.iter().map(|s| s.metrics()).collect(),
            stage_metrics: Vec::new(),
            sources,
            dir,
            log,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        }
    }

    /// Starts the runner of every source.
    pub fn run(&mut self) {
        for source in self.sources.drain(..) {
            let metrics = Arc::new(StageMetrics::default());
            self.stage_metrics.push(metrics.clone());
            let log: Arc<dyn CentralLog> = self.log.clone();
            let options = RunnerOptions { partitions: PARTITIONS, ..Default::default() };
            let stop = self.stop.clone();
            self.threads.push(std::thread::spawn(move || run_source(log, Box::new(source), options, metrics, stop)));
        }
    }

    /// Stops the runners (they commit what their listeners had queued) and waits for them.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            thread.join().expect("runner thread panicked").expect("runner failed");
        }
    }

    /// Every record of the raw topic, per partition in offset order.
    pub fn raw_records(&self) -> Vec<Vec<RawRecord>> {
        raw_records_in(self.dir.path())
    }

    /// Every record of the raw topic, partitions one after the other.
    pub fn all_raw(&self) -> Vec<RawRecord> {
        self.raw_records().into_iter().flatten().collect()
    }

    /// Records in the raw topic (without reading them).
    pub fn raw_count(&self) -> u64 {
        self.log.topic(RAW).map(|t| t.record_count()).unwrap_or(0)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Waits until `done` holds, failing with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a command-line tool is installed; under CI (where scripts/test installs it) a
/// missing tool fails the test instead of skipping it.
pub fn have_tool(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{name} is not installed; scripts/test installs it");
        eprintln!("skipped: {name} is not installed (scripts/test installs it)");
    }
    found
}

/// The text of a record's payload.
pub fn text(record: &RawRecord) -> String {
    String::from_utf8_lossy(&record.payload.0).into_owned()
}

/// Every record of the raw topic of the log in `dir`, per partition in offset order (read
/// without the log's lock, so while another process writes it).
pub fn raw_records_in(dir: &std::path::Path) -> Vec<Vec<RawRecord>> {
    let reader = EmbeddedLog::open_reader(dir).unwrap();
    (0..PARTITIONS)
        .map(|p| {
            let mut records = Vec::new();
            loop {
                let batch = reader.fetch(RAW, p, records.len() as u64, 100_000).unwrap();
                if batch.is_empty() {
                    break;
                }
                records
                    .extend(batch.iter().map(|r| serde_json::from_slice::<RawRecord>(&r.value).expect("a raw record")));
            }
            records
        })
        .collect()
}

/// Records in the raw topic of the log in `dir` (0 before it exists).
pub fn raw_count_in(dir: &std::path::Path) -> u64 {
    EmbeddedLog::open_reader(dir).ok().and_then(|r| r.topic(RAW).ok()).map(|t| t.record_count()).unwrap_or(0)
}

/// A self-signed certificate for `localhost` and its key, as PEM files in `dir`.
pub fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key)
}
