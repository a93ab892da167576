//! Decoding throughput, one criterion group per format: `Decoder::decode_event` (as the transform
//! stage calls it: every record decoded into the same reused event, by a decoder of its own) over
//! a realistic batch of records, into full canonical events, reported as records per second on
//! one core (`Throughput::Elements`).
//!
//! RFC 5424, RFC 3164 and RADIUS records come from the demo generator (`lux-generate`: the
//! operator's BNG, OLT, DSLAM and CPE traffic, incidents included); JSON, key=value and binary
//! records from the demo sources of `common` (the generator does not produce them).
//! `rfc5424_simple` is the "simple" line: the same RFC 5424 lines without their
//! structured data (`-`).
//!
//! The RFC 5424 groups also run a bare parser, `syslog_loose` (`parse_message`, RFC 5424 variant:
//! the header, timestamp and structured data split into a borrowed `Message`, no event, no id,
//! no pseudonym), over the same lines in the same run: `bare-parser/syslog_loose` beside
//! `decode`, so their ratio is measured under the same load.
//! Run: `cargo bench -p lux-decode --bench decode` (add a group name to run one group).

mod common;
#[path = "common/traffic.rs"]
mod traffic;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lux_decode::{DecodeConfig, Decoder};
use lux_model::{Event, Format, RawRecord};
use std::hint::black_box;

/// Records per batch: enough to mix equipment, kinds and incidents, small enough for the cache
/// behaviour of a transform stage's batch.
const BATCH: usize = 2_000;
const KEY: &[u8] = b"bench-subscriber-key";

/// Stops the benchmark with a message: its setup is broken, not its input.
fn fail(what: impl std::fmt::Display) -> ! {
    eprintln!("decode bench setup: {what}");
    std::process::exit(2)
}

fn generated() -> (Vec<RawRecord>, Vec<RawRecord>, Vec<RawRecord>) {
    traffic::generated(BATCH).unwrap_or_else(|e| fail(e))
}

/// `BATCH` records of a demo source.
fn demo(source: &str, format: Format, record: fn(u64) -> Vec<u8>) -> Vec<RawRecord> {
    (0..BATCH as u64).map(|i| RawRecord::new(source, format, 1_767_607_200_000 + 5_000, None, record(i))).collect()
}

/// Measures `decoder` over `batch`, after checking that every record decodes (a benchmark of the
/// error path would flatter the numbers).
fn group(c: &mut Criterion, name: &str, decoder: &Decoder, batch: &[RawRecord], bare_parser: bool) {
    for r in batch {
        if let Err(e) = decoder.decode(r) {
            fail(format!("{name}: {:?} does not decode: {e}", String::from_utf8_lossy(&r.payload.0)));
        }
    }
    let bytes: usize = batch.iter().map(|r| r.payload.0.len()).sum();
    let mut decoder = decoder.clone();
    let mut event = Event::default();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function(
        BenchmarkId::new("decode", format!("{} records, {} B avg", batch.len(), bytes / batch.len().max(1))),
        |b| {
            b.iter(|| {
                for r in batch {
                    let _ = black_box(decoder.decode_event(black_box(r), &mut event));
                    black_box(&event);
                }
            })
        },
    );
    if bare_parser {
        let lines: Vec<&str> =
            batch.iter().map(|r| std::str::from_utf8(&r.payload.0).unwrap_or_else(|e| fail(e))).collect();
        g.bench_function(BenchmarkId::new("bare-parser", "syslog_loose"), |b| {
            b.iter(|| {
                for line in &lines {
                    black_box(syslog_loose::parse_message(black_box(line), syslog_loose::Variant::RFC5424));
                }
            })
        });
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let (rfc5424, rfc3164, radius) = generated();
    let builtin = Decoder::new(&DecodeConfig::default(), KEY);
    group(c, "rfc5424", &builtin, &rfc5424, true);
    group(c, "rfc5424_simple", &builtin, &traffic::simple(&rfc5424), true);
    group(c, "rfc3164", &builtin, &rfc3164, false);
    group(c, "radius", &builtin, &radius, false);

    let cfg = common::config().unwrap_or_else(|e| fail(e));
    let configured = Decoder::try_new(&cfg, KEY).unwrap_or_else(|p| fail(format!("{p:?}")));
    group(c, "json", &configured, &demo(common::JSON_SOURCE, Format::Json, common::json_record), false);
    group(c, "kv", &configured, &demo(common::KV_SOURCE, Format::Kv, common::kv_record), false);
    group(c, "binary", &configured, &demo(common::BINARY_SOURCE, Format::Binary, common::binary_alarm), false);
}

/// The per-record costs every format pays whatever its parser: the deterministic `event_id`
/// (XXH3-128 of the payload) and the subscriber pseudonym (HMAC-SHA256, cached), over the RFC 5424
/// batch.
/// They bound the decoding rate from above.
fn fixed_costs(c: &mut Criterion) {
    let (rfc5424, _, _) = generated();
    let builtin = Decoder::new(&DecodeConfig::default(), KEY);
    let subscribers: Vec<String> = (0..BATCH).map(|i| format!("sub{:07}", i * 7919 % 250_000)).collect();
    let mut g = c.benchmark_group("fixed_costs");
    g.throughput(Throughput::Elements(BATCH as u64));
    // As the decoder computes it: the hash's input built in one reused buffer.
    let mut input = Vec::new();
    g.bench_function("event_id", |b| {
        b.iter(|| {
            for r in &rfc5424 {
                black_box(lux_model::event_id_in(&mut input, black_box(&r.payload.0), 0));
            }
        })
    });
    g.bench_function("pseudonym", |b| {
        b.iter(|| {
            for s in &subscribers {
                black_box(builtin.pseudonym(black_box(s.as_bytes())));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, decode, fixed_costs);
criterion_main!(benches);
