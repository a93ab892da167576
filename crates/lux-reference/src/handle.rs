//! `ReferenceHandle`: the current reference snapshot, shared by every stage thread and replaced
//! while the stream runs. Readers get it lock-free (`arc-swap`); a watcher thread reloads it when
//! the source changes (CSV: file sizes and modification times, debounced; PostgreSQL: `LISTEN
//! lux_reference` plus a periodic poll, reconnecting with backoff), validates the new version
//! whole and swaps the pointer. An invalid version keeps the old snapshot, is logged with every
//! problem and counted. Old snapshots are freed on the watcher thread, never on a reader's.

use crate::config::{ReferenceConfig, SourceKind};
use crate::load;
use crate::pg;
use crate::problem::ReferenceProblem;
use crate::snapshot::{ReferenceError, Snapshot, TableCounts};
use arc_swap::ArcSwap;
use lux_model::{EnrichedEvent, Event};
use postgres::fallible_iterator::FallibleIterator;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How often the CSV files' sizes and modification times are checked. A change is loaded once
/// it has been the same for two checks in a row (so a file being written is not read half-way).
const CSV_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long the PostgreSQL watcher waits for a notification before checking its stop flag.
const NOTIFY_WAIT: Duration = Duration::from_millis(200);
/// After a notification, further notifications within this delay are folded into one reload.
const NOTIFY_DEBOUNCE: Duration = Duration::from_millis(100);
/// Reconnection backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How many problems of a rejected version are kept in `last_error` (all are logged).
const ERROR_PROBLEMS: usize = 5;

/// Counters of a [`ReferenceHandle`], for metrics and `lux reference show`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReferenceStats {
    /// The source: `csv:/path/to/dir` or `postgres:schema`.
    pub source: String,
    /// The version of the current snapshot.
    pub version: String,
    /// Rows per table of the current snapshot.
    pub counts: TableCounts,
    /// New versions validated and swapped in since the start.
    pub reloads_ok: u64,
    /// New versions rejected as invalid (the old snapshot was kept).
    pub reloads_rejected: u64,
    /// Failures to read the source (connection lost, unreadable directory); the old snapshot
    /// was kept.
    pub source_errors: u64,
    /// The last rejection or source failure, with its first problems.
    pub last_error: Option<String>,
}

struct Shared {
    current: ArcSwap<Snapshot>,
    source: String,
    reloads_ok: AtomicU64,
    reloads_rejected: AtomicU64,
    source_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

/// The live reference data: cheap to clone, [`ReferenceHandle::current`] is lock-free.
#[derive(Clone)]
pub struct ReferenceHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ReferenceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceHandle").field("stats", &self.stats()).finish()
    }
}

impl ReferenceHandle {
    /// A handle on a fixed snapshot, never reloaded (tests, replays).
    pub fn fixed(snapshot: Snapshot) -> ReferenceHandle {
        ReferenceHandle::new(snapshot, "fixed".to_owned())
    }

    fn new(snapshot: Snapshot, source: String) -> ReferenceHandle {
        ReferenceHandle {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(snapshot),
                source,
                reloads_ok: AtomicU64::new(0),
                reloads_rejected: AtomicU64::new(0),
                source_errors: AtomicU64::new(0),
                last_error: Mutex::new(None),
                watcher: Mutex::new(None),
            }),
        }
    }

    /// Loads the configured source (`fallback_dir`: the CSV directory used when `cfg.dir` is
    /// unset, the demo referential) and, when `cfg.watch`, starts the watcher thread, which runs
    /// until `stop` is set. Fails when the first load fails (invalid data, database
    /// unreachable, tables missing: run `lux reference init`).
    pub fn start(
        cfg: &ReferenceConfig,
        fallback_dir: &Path,
        stop: Arc<AtomicBool>,
    ) -> Result<ReferenceHandle, ReferenceError> {
        match cfg.source {
            SourceKind::Csv => {
                let dir = cfg.dir.clone().unwrap_or_else(|| fallback_dir.to_path_buf());
                let seen = fingerprint(&dir);
                let snapshot = Snapshot::load_csv_dir(&dir).map_err(ReferenceError::Invalid)?;
                let handle = ReferenceHandle::new(snapshot, format!("csv:{}", dir.display()));
                if cfg.watch {
                    let shared = Arc::clone(&handle.shared);
                    handle.spawn(move || watch_csv(&shared, &dir, seen, &stop))?;
                }
                Ok(handle)
            }
            SourceKind::Postgres => {
                let schema = cfg.postgres.schema.clone();
                let mut client = connect_and_listen(&cfg.postgres.url, cfg.watch)?;
                let snapshot = pg::load_snapshot(&mut client, &schema)?;
                let handle = ReferenceHandle::new(snapshot, format!("postgres:{schema}"));
                if cfg.watch {
                    let shared = Arc::clone(&handle.shared);
                    let (url, poll) = (cfg.postgres.url.clone(), cfg.poll_interval);
                    handle.spawn(move || watch_postgres(&shared, &url, &schema, poll, Some(client), &stop))?;
                }
                Ok(handle)
            }
        }
    }

    fn spawn(&self, work: impl FnOnce() + Send + 'static) -> Result<(), ReferenceError> {
        let thread = std::thread::Builder::new()
            .name("lux-reference-watch".to_owned())
            .spawn(move || {
                lower_priority();
                work();
            })
            .map_err(|e| ReferenceError::Thread(e.to_string()))?;
        *lock(&self.shared.watcher) = Some(thread);
        Ok(())
    }

    /// The current snapshot. Lock-free; hold it for a batch rather than per event.
    pub fn current(&self) -> Arc<Snapshot> {
        self.shared.current.load_full()
    }

    /// Joins `event` with the current snapshot (see [`Snapshot::enrich`]).
    pub fn enrich(&self, event: Event) -> EnrichedEvent {
        self.shared.current.load().enrich(event)
    }

    /// The counters and the current version.
    pub fn stats(&self) -> ReferenceStats {
        let current = self.shared.current.load();
        ReferenceStats {
            source: self.shared.source.clone(),
            version: current.version().to_owned(),
            counts: current.counts(),
            reloads_ok: self.shared.reloads_ok.load(Ordering::Relaxed),
            reloads_rejected: self.shared.reloads_rejected.load(Ordering::Relaxed),
            source_errors: self.shared.source_errors.load(Ordering::Relaxed),
            last_error: lock(&self.shared.last_error).clone(),
        }
    }

    /// Waits for the watcher thread to end (after `stop` was set); at once when there is none.
    pub fn join(&self) {
        let thread = lock(&self.shared.watcher).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the reference watcher thread panicked");
            }
        }
    }
}

/// Runs the calling thread (the watcher) at the lowest priority (nice +19), so that loading,
/// validating and freeing a big snapshot yields the CPU to the threads that enrich the stream
/// whenever they share a core (the watcher still runs at once on an idle core). Best effort.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value is per thread, and `who = 0` is the calling thread.
        // SAFETY: setpriority only takes integer arguments and touches no memory of ours.
        let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
        if done != 0 {
            tracing::debug!("could not lower the priority of the reference watcher");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the watcher remembers between reloads.
#[derive(Default)]
struct Reloader {
    /// The version last rejected, not to report it again at every poll.
    rejected: Option<String>,
    /// Replaced snapshots still used by a reader: freed here once the last reader is done.
    retired: Vec<Arc<Snapshot>>,
}

impl Reloader {
    /// Swaps in a valid new version, or keeps the old one and reports why.
    fn apply(&mut self, shared: &Shared, version: String, result: Result<Snapshot, Vec<ReferenceProblem>>) {
        let current = shared.current.load();
        if version == current.version() {
            self.rejected = None;
            return;
        }
        if self.rejected.as_deref() == Some(version.as_str()) {
            return;
        }
        match result {
            Ok(snapshot) => {
                let counts = snapshot.counts();
                let old = shared.current.swap(Arc::new(snapshot));
                tracing::info!(
                    source = %shared.source, old = %old.version(), new = %version,
                    equipment = counts.equipment, interventions = counts.interventions,
                    "reference data reloaded"
                );
                self.retired.push(old);
                self.rejected = None;
                shared.reloads_ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(problems) => {
                for p in &problems {
                    tracing::warn!(source = %shared.source, version = %version, "invalid reference data: {p}");
                }
                let mut text =
                    format!("version {version} rejected, {} kept: {} problem(s): ", current.version(), problems.len());
                let shown: Vec<String> = problems.iter().take(ERROR_PROBLEMS).map(ToString::to_string).collect();
                text.push_str(&shown.join("; "));
                if problems.len() > ERROR_PROBLEMS {
                    text.push_str("; ...");
                }
                *lock(&shared.last_error) = Some(text);
                self.rejected = Some(version);
                shared.reloads_rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(current);
        self.free_retired();
    }

    /// Frees the replaced snapshots no reader holds any more (on this thread: a big snapshot
    /// takes milliseconds to free, which must not stall a reader).
    fn free_retired(&mut self) {
        self.retired.retain(|s| Arc::strong_count(s) > 1);
    }
}

fn source_error(shared: &Shared, error: &ReferenceError) {
    tracing::warn!(source = %shared.source, "reference source: {error}; the current snapshot is kept");
    *lock(&shared.last_error) = Some(error.to_string());
    shared.source_errors.fetch_add(1, Ordering::Relaxed);
}

/// Sleeps `duration` in small steps; true when `stop` was set meanwhile.
fn sleep_unless_stopped(stop: &AtomicBool, duration: Duration) -> bool {
    let end = Instant::now() + duration;
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// Sizes and modification times of the seven files (`None`: missing).
type Fingerprint = Vec<Option<(u64, Option<SystemTime>)>>;

fn fingerprint(dir: &Path) -> Fingerprint {
    load::FILES
        .iter()
        .map(|(file, _)| std::fs::metadata(dir.join(file)).ok().map(|m| (m.len(), m.modified().ok())))
        .collect()
}

fn watch_csv(shared: &Shared, dir: &Path, mut loaded: Fingerprint, stop: &AtomicBool) {
    let mut reloader = Reloader::default();
    let mut pending: Option<Fingerprint> = None;
    while !sleep_unless_stopped(stop, CSV_CHECK_INTERVAL) {
        reloader.free_retired();
        let seen = fingerprint(dir);
        if seen == loaded {
            pending = None;
            continue;
        }
        if pending.as_ref() != Some(&seen) {
            // Changed since the last check: wait until it stays the same for one interval.
            pending = Some(seen);
            continue;
        }
        pending = None;
        loaded = seen;
        let mut problems = Vec::new();
        let tables = load::read_dir(dir, &mut problems);
        let (version, result) = Snapshot::validate(tables, problems);
        reloader.apply(shared, version, result);
    }
}

fn connect_and_listen(url: &str, listen: bool) -> Result<postgres::Client, ReferenceError> {
    let mut client = pg::connect(url)?;
    if listen {
        client.batch_execute(&format!("LISTEN {}", pg::CHANNEL)).map_err(|e| pg::pg_error("LISTEN", &e))?;
    }
    Ok(client)
}

/// Waits up to `timeout` for notifications; true when one is about `schema`'s tables.
fn notified(client: &mut postgres::Client, prefix: &str, timeout: Duration) -> Result<bool, postgres::Error> {
    let relevant = |n: &postgres::Notification| n.channel() == pg::CHANNEL && n.payload().starts_with(prefix);
    let mut notifications = client.notifications();
    let mut hit = notifications.timeout_iter(timeout).next()?.is_some_and(|n| relevant(&n));
    let mut pending = notifications.iter();
    while let Some(n) = pending.next()? {
        hit |= relevant(&n);
    }
    Ok(hit)
}

fn watch_postgres(
    shared: &Shared,
    url: &str,
    schema: &str,
    poll: Duration,
    mut client: Option<postgres::Client>,
    stop: &AtomicBool,
) {
    let prefix = format!("{schema}.");
    let mut reloader = Reloader::default();
    let mut backoff = BACKOFF_MIN;
    let mut next_poll = Instant::now() + poll;
    while !stop.load(Ordering::Relaxed) {
        reloader.free_retired();
        let mut reload = false;
        let c = match client.as_mut().filter(|c| !c.is_closed()) {
            Some(c) => c,
            None => match connect_and_listen(url, true) {
                Ok(c) => {
                    tracing::info!(source = %shared.source, "reconnected to the PostgreSQL reference source");
                    backoff = BACKOFF_MIN;
                    // Notifications may have been missed while disconnected.
                    reload = true;
                    client.insert(c)
                }
                Err(e) => {
                    client = None;
                    source_error(shared, &e);
                    if sleep_unless_stopped(stop, backoff) {
                        break;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
        };
        if !reload {
            match notified(c, &prefix, NOTIFY_WAIT) {
                Ok(true) => {
                    reload = true;
                    // Fold a burst of changes (a multi-statement update) into one reload.
                    let deadline = Instant::now() + Duration::from_secs(1);
                    while Instant::now() < deadline && matches!(notified(c, &prefix, NOTIFY_DEBOUNCE), Ok(true)) {}
                }
                Ok(false) => reload = Instant::now() >= next_poll,
                Err(e) => {
                    source_error(shared, &pg::pg_error("connection lost", &e));
                    client = None;
                    continue;
                }
            }
        }
        if !reload {
            continue;
        }
        next_poll = Instant::now() + poll;
        match pg::load(c, schema) {
            Ok((version, result)) => reloader.apply(shared, version, result),
            Err(e) => {
                source_error(shared, &e);
                if c.is_closed() {
                    client = None;
                }
            }
        }
    }
}
