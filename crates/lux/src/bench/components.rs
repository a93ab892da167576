//! `lux bench`'s component figures: each piece of the pipeline alone, on one thread, on the demo
//! operator's records: decoding per format, the as-of join, the whole transform of a record
//! (decode, join, JSON), and the embedded log's append and commit; then the alarm stage's window
//! half on every core, in issue 8's setting ([`lux_alarm::workload`]).
//!
//! Rates are per core: records over the measuring thread's CPU time (which other processes on
//! a shared machine disturb much less than wall time); the wall-clock rate is given beside it.
//! For the window half, which runs on several threads, the CPU time is the whole process's.

use anyhow::Context as _;
use lux_decode::{DecodeConfig, Decoder};
use lux_log::embedded::{EmbeddedLog, EmbeddedOptions};
use lux_log::{CentralLog, Commit, Durability};
use lux_model::{Event, RawRecord, SkimmedEvent};
use lux_reference::Snapshot;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One component's figure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentResult {
    /// `decode rfc5424`, `enrich`, ...
    pub component: String,
    /// Records per second of the thread's CPU time.
    pub per_core_per_s: f64,
    /// Records per second of wall-clock time.
    pub wall_per_s: f64,
    /// Records measured.
    pub records: u64,
    pub detail: String,
}

/// The subscriber key of the bench's decoders (the demo's pseudonyms; any key costs the same).
const KEY: &[u8] = b"lux-bench-subscriber-key";
/// Distinct records per format: a transform batch's worth, mixed equipment and incidents.
const BATCH: usize = 2_000;

/// Measures every component for about `each` apiece, the reference data read from `reference`
/// (the demo's CSV files) and the log written under `dir`.
pub fn measure(reference: &Path, dir: &Path, each: Duration) -> anyhow::Result<Vec<ComponentResult>> {
    let (rfc5424, rfc3164, radius) = lux_generate::samples::by_format(BATCH).map_err(anyhow::Error::msg)?;
    let decoder = Decoder::new(&DecodeConfig::default(), KEY);
    let mut results = Vec::new();
    for (name, records) in [("rfc5424", &rfc5424), ("rfc3164", &rfc3164), ("radius", &radius)] {
        results.push(decode(name, &decoder, records, each)?);
    }
    let snapshot = Snapshot::load_csv_dir(reference).map_err(|problems| {
        anyhow::anyhow!(
            "the demo reference data is invalid: {}",
            problems.first().map(|p| p.to_string()).unwrap_or_default()
        )
    })?;
    let mixed: Vec<RawRecord> = rfc5424.iter().chain(&rfc3164).chain(&radius).cloned().collect();
    results.push(enrich(&snapshot, &decoder, &mixed, each)?);
    results.push(transform(&snapshot, &decoder, &mixed, each)?);
    results.push(log_append(dir, each)?);
    results.push(alarm_windows()?);
    Ok(results)
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of the whole process.
fn process_cpu() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec given to it.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

/// Runs `pass` (which handles `per_pass` records) until `each` has passed, after one pass of
/// warm-up, and gives the rates.
fn timed(
    component: &str,
    detail: String,
    per_pass: u64,
    each: Duration,
    mut pass: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<ComponentResult> {
    pass()?;
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let mut records = 0u64;
    while wall.elapsed() < each || records == 0 {
        pass()?;
        records += per_pass;
    }
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), (thread_cpu() - cpu).as_secs_f64());
    Ok(ComponentResult {
        component: component.to_owned(),
        per_core_per_s: records as f64 / cpu.max(1e-9),
        wall_per_s: records as f64 / wall.max(1e-9),
        records,
        detail,
    })
}

fn decode(format: &str, decoder: &Decoder, records: &[RawRecord], each: Duration) -> anyhow::Result<ComponentResult> {
    let mut decoder = decoder.clone();
    let mut event = Event::default();
    // A benchmark of the error path would flatter the figures.
    for raw in records {
        decoder.decode_event(raw, &mut event).with_context(|| {
            format!("a demo {format} record does not decode: {:?}", String::from_utf8_lossy(&raw.payload.0))
        })?;
    }
    let bytes: usize = records.iter().map(|r| r.payload.0.len()).sum();
    let detail = format!("into a reused canonical event; {} B a record", bytes / records.len().max(1));
    timed(&format!("decode {format}"), detail, records.len() as u64, each, || {
        for raw in records {
            let _ = std::hint::black_box(decoder.decode_event(raw, &mut event));
        }
        Ok(())
    })
}

fn decoded(decoder: &Decoder, records: &[RawRecord]) -> Vec<Event> {
    records.iter().filter_map(|raw| decoder.decode(raw).ok()).flatten().collect()
}

fn enrich(
    snapshot: &Snapshot,
    decoder: &Decoder,
    records: &[RawRecord],
    each: Duration,
) -> anyhow::Result<ComponentResult> {
    let events = decoded(decoder, records);
    let counts = snapshot.counts();
    let detail = format!("the as-of join with {} equipment, {} interventions", counts.equipment, counts.interventions);
    timed("enrich", detail, events.len() as u64, each, || {
        for event in &events {
            std::hint::black_box(snapshot.join(event));
        }
        Ok(())
    })
}

fn transform(
    snapshot: &Snapshot,
    decoder: &Decoder,
    records: &[RawRecord],
    each: Duration,
) -> anyhow::Result<ComponentResult> {
    let mut decoder = decoder.clone();
    let mut event = Event::default();
    // The raw records as the transform stage reads them from the log.
    let stored: Vec<Vec<u8>> = records.iter().map(serde_json::to_vec).collect::<Result<_, _>>()?;
    let detail = "raw JSON read, decoded, joined, enriched JSON written and the event handed over skimmed (the transform stage without the log)".to_owned();
    // As the stage does on the embedded log: the raw record's UTF-8 checked once, the enriched
    // record written by hand into a buffer sized from the last one, the event skimmed for the
    // readers of the process.
    let mut size = 0;
    timed("transform", detail, stored.len() as u64, each, || {
        for value in &stored {
            let raw: RawRecord = lux_model::from_json(value)?;
            if decoder.decode_event(&raw, &mut event).is_ok() {
                let joined = snapshot.join(&event);
                let mut enriched = Vec::with_capacity(size + size / 8);
                joined.record(&event).write_json(&mut enriched);
                size = enriched.len();
                let skimmed = Arc::new(SkimmedEvent(joined.into_enriched(event.skim())));
                std::hint::black_box((enriched, skimmed));
            }
        }
        Ok(())
    })
}

fn log_append(dir: &Path, each: Duration) -> anyhow::Result<ComponentResult> {
    const BATCH: u64 = 1_000;
    let commit = Commit::sample(BATCH);
    let path = dir.join("component-log");
    let log = EmbeddedLog::open_with(&path, EmbeddedOptions::new(Durability::Group))
        .with_context(|| format!("cannot open an embedded log in {}", path.display()))?;
    log.ensure_topic("raw", 3)?;
    log.ensure_topic("enriched", 3)?;
    let detail = "append + commit of 200-byte records in commits of 1,000, group durability".to_owned();
    let result = timed("embedded log", detail, BATCH, each, || Ok(log.commit_ref(&commit)?));
    drop(log);
    let _ = std::fs::remove_dir_all(&path);
    result
}

/// The window half of the alarm stage in issue 8's setting, one run of its 2,000,000 events from
/// the steady state, on one thread per core (about 5 s, whatever `each`: the setting's windows
/// slide every 400,000 events). The wall-clock rate counts the stage's calls only; the per-core
/// rate divides by all the CPU the process used meanwhile, making the polls included.
fn alarm_windows() -> anyhow::Result<ComponentResult> {
    use lux_alarm::workload;
    const COMMIT: usize = 10_000;
    let cfg = workload::config();
    let records = workload::routed_records(&cfg, &workload::shapes());
    let threads = lux_stage::parallel::available_threads();
    let mut stage = workload::warm_stage(&cfg, threads).context("the alarm windows' setting")?;
    let cpu = process_cpu();
    let spent = workload::feed(&mut stage, &records, COMMIT)?;
    let cpu = (process_cpu() - cpu).as_secs_f64();
    let events = workload::EVENTS as u64;
    Ok(ComponentResult {
        component: "alarm windows".to_owned(),
        per_core_per_s: events as f64 / cpu.max(1e-9),
        wall_per_s: events as f64 / spent.as_secs_f64().max(1e-9),
        records: events,
        detail: format!(
            "the alarm stage's window half on {threads} thread(s): {} groups, 5 min windows by 10 s, commits of {COMMIT}",
            workload::GROUPS
        ),
    })
}
