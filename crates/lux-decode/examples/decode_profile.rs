//! Decodes the benchmark's records in a loop, for instruction counts under callgrind (which are
//! repeatable on a busy machine, where criterion's timings are not).
//!
//! `decode_profile FORMAT PASSES` decodes the 2,000-record batch of FORMAT (`rfc5424`,
//! `rfc5424-simple`, `rfc3164`, `radius`, `json`, `kv`, `binary`; the same records as
//! `benches/decode.rs`; `syslog_loose` and `syslog_loose-simple` parse the two RFC 5424 batches
//! with the bare parser `syslog_loose` instead, for comparison) once to warm the
//! pseudonym cache, then PASSES more times. The cost of one record is the difference of two runs
//! divided by the records it adds:
//!
//! ```text
//! cargo build --release -p lux-decode --example decode_profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg0 target/release/examples/decode_profile rfc5424 0
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg5 target/release/examples/decode_profile rfc5424 5
//! # instructions per record = (Ir of cg5 - Ir of cg0) / (5 * 2000)
//! ```
//!
//! `decode_profile FORMAT dump` prints the events of the batch as JSON lines instead (to compare
//! two versions of the decoder: their output must not change), decoded into one reused event as
//! the transform stage does.
//!
//! `decode_profile FORMAT cpu` prints the records decoded per second of the thread's CPU time
//! (`/proc/thread-self/schedstat`, Linux; median of five 1-second rounds): a rate that waiting
//! for a core on a loaded machine does not lower, unlike criterion's wall-clock times.
//!
//! `scripts/decode-profile` (in this crate) runs both and prints the figure for every format. To see
//! where the steady state spends, collect only inside the measured passes:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='decode_profile::measured' --callgrind-out-file=/tmp/cg \
//!     target/release/examples/decode_profile rfc5424 5
//! callgrind_annotate --inclusive=yes /tmp/cg
//! ```

#[path = "../benches/common/mod.rs"]
mod common;
#[path = "../benches/common/traffic.rs"]
mod traffic;

use lux_decode::{DecodeConfig, Decoder};
use lux_model::{Event, Format, RawRecord};
use std::hint::black_box;

/// Records per batch, as in the benchmark.
const BATCH: usize = 2_000;
const KEY: &[u8] = b"bench-subscriber-key";

fn main() {
    if let Err(e) = run() {
        eprintln!("decode_profile: {e}");
        eprintln!("usage: decode_profile rfc5424|rfc5424-simple|rfc3164|radius|json|kv|binary|syslog_loose|syslog_loose-simple PASSES|dump|cpu");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let format = args.next().ok_or("no format given")?;
    let passes = args.next();
    let dump = passes.as_deref() == Some("dump");
    let cpu = passes.as_deref() == Some("cpu");
    let passes: usize = match passes {
        Some(_) if dump => 0,
        Some(_) if cpu => 0,
        Some(p) => p.parse().map_err(|e| format!("PASSES {p:?}: {e}"))?,
        None => 10,
    };
    let demo = |source: &str, format: Format, record: fn(u64) -> Vec<u8>| -> Vec<RawRecord> {
        (0..BATCH as u64).map(|i| RawRecord::new(source, format, 1_767_607_200_000 + 5_000, None, record(i))).collect()
    };
    // `syslog_loose` and `syslog_loose-simple`: the RFC 5424 batches, parsed by the bare parser.
    let bare = format.starts_with("syslog_loose");
    let (mut decoder, batch) = match format.as_str() {
        "rfc5424" | "rfc5424-simple" | "rfc3164" | "radius" | "syslog_loose" | "syslog_loose-simple" => {
            let (rfc5424, rfc3164, radius) = traffic::generated(BATCH)?;
            let batch = match format.as_str() {
                "rfc5424" | "syslog_loose" => rfc5424,
                "rfc5424-simple" | "syslog_loose-simple" => traffic::simple(&rfc5424),
                "rfc3164" => rfc3164,
                _ => radius,
            };
            (Decoder::new(&DecodeConfig::default(), KEY), batch)
        }
        "json" | "kv" | "binary" => {
            let cfg = common::config()?;
            let decoder = Decoder::try_new(&cfg, KEY).map_err(|p| format!("{p:?}"))?;
            let batch = match format.as_str() {
                "json" => demo(common::JSON_SOURCE, Format::Json, common::json_record),
                "kv" => demo(common::KV_SOURCE, Format::Kv, common::kv_record),
                _ => demo(common::BINARY_SOURCE, Format::Binary, common::binary_alarm),
            };
            (decoder, batch)
        }
        other => return Err(format!("unknown format {other:?}")),
    };
    if dump {
        // Decoded as the stage decodes, into one reused event: what a record leaves behind must
        // never show in the next one's output.
        let mut event = Event::default();
        for r in &batch {
            match decoder.decode_event(r, &mut event) {
                Ok(()) => println!("{}", serde_json::to_string(&event).map_err(|e| e.to_string())?),
                Err(e) => println!("error: {e}"),
            }
        }
        return Ok(());
    }
    if cpu {
        return cpu_rate(&format, &mut decoder, &batch, bare);
    }
    // The first pass warms the pseudonym cache; the others are the steady state, in a function of
    // their own for `--toggle-collect=decode_profile::measured`.
    let mut event = Event::default();
    let mut decoded = decode_batch(&mut decoder, &mut event, &batch, 1, bare);
    decoded += measured(&mut decoder, &mut event, &batch, passes, bare);
    let expected = batch.len() * (passes + 1);
    if decoded != expected {
        return Err(format!("{} of {expected} records did not decode", expected - decoded));
    }
    println!("{format}: {decoded} records decoded");
    Ok(())
}

/// The CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux): the time spent
/// waiting for a core on a loaded machine does not count.
fn thread_cpu() -> Result<std::time::Duration, String> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").map_err(|e| format!("schedstat: {e}"))?;
    let ns = stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).ok_or("schedstat: no run time")?;
    Ok(std::time::Duration::from_nanos(ns))
}

/// Records decoded per second of this thread's CPU time, over passes of the batch for at least
/// 5 CPU seconds after a warm-up pass: the median of five rounds.
fn cpu_rate(format: &str, decoder: &mut Decoder, batch: &[RawRecord], bare: bool) -> Result<(), String> {
    let mut event = Event::default();
    decode_batch(decoder, &mut event, batch, 1, bare);
    let mut rates = Vec::new();
    for _ in 0..5 {
        let start = thread_cpu()?;
        let mut decoded = 0usize;
        while thread_cpu()? - start < std::time::Duration::from_secs(1) {
            decoded += decode_batch(decoder, &mut event, batch, 10, bare);
        }
        rates.push(decoded as f64 / (thread_cpu()? - start).as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{format}: {:.2} M records per CPU second (median of {:?})",
        median / 1e6,
        rates.iter().map(|r| (r / 1e4).round() / 1e2).collect::<Vec<_>>()
    );
    Ok(())
}

/// Decodes `batch` `times` times (as the transform stage calls the decoder: every record into
/// the same reused event); how many records decoded. With `bare`, parses the lines with
/// `syslog_loose` instead (RFC 5424 variant; every line gives a message).
fn decode_batch(decoder: &mut Decoder, event: &mut Event, batch: &[RawRecord], times: usize, bare: bool) -> usize {
    let mut decoded = 0usize;
    for _ in 0..times {
        for r in batch {
            if bare {
                let line = std::str::from_utf8(black_box(&r.payload.0)).unwrap_or_default();
                black_box(syslog_loose::parse_message(line, syslog_loose::Variant::RFC5424));
                decoded += 1;
                continue;
            }
            if decoder.decode_event(black_box(r), event).is_ok() {
                decoded += 1;
            }
            black_box(&*event);
        }
    }
    decoded
}

/// The measured passes.
#[inline(never)]
fn measured(decoder: &mut Decoder, event: &mut Event, batch: &[RawRecord], times: usize, bare: bool) -> usize {
    decode_batch(decoder, event, batch, times, bare)
}
