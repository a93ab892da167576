//! Decoding throughput, one criterion group per format: `Decoder::decode_into` (as the transform
//! stage calls it, with one reused vector) over a realistic batch of records, into full canonical
//! events that are then dropped, reported as records per second on one core
//! (`Throughput::Elements`).
//!
//! RFC 5424, RFC 3164 and RADIUS records come from the demo generator (`lux-generate`: the
//! operator's BNG, OLT, DSLAM and CPE traffic, incidents included); JSON, key=value and binary
//! records from the demo sources of `common` (the generator does not produce them).
//! Run: `cargo bench -p lux-decode --bench decode` (add a group name to run one group).

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lux_decode::{DecodeConfig, Decoder};
use lux_generate::{GeneratedRecord, GeneratorConfig, Network, Traffic};
use lux_model::{Format, RawRecord};
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

/// Whether a syslog line is RFC 5424 (`<PRI>1 `).
fn is_rfc5424(payload: &[u8]) -> bool {
    let after_pri = payload.iter().position(|b| *b == b'>').map(|i| i + 1);
    after_pri.and_then(|i| payload.get(i..i + 2)) == Some(b"1 ")
}

/// The generator's traffic split into (RFC 5424 lines, RFC 3164 lines, RADIUS packets), at least
/// `BATCH` of each, as the syslog and RADIUS collectors would write them to `raw`.
fn generated() -> (Vec<RawRecord>, Vec<RawRecord>, Vec<RawRecord>) {
    let cfg = GeneratorConfig { rate: 20_000.0, daily_curve: false, ..GeneratorConfig::default() };
    let start = cfg.start_ms().unwrap_or_else(|e| fail(e));
    let network = Network::generate_at(&cfg, start).unwrap_or_else(|e| fail(e));
    let traffic = Traffic::new(&network, &cfg, start).unwrap_or_else(|e| fail(e));
    let (mut rfc5424, mut rfc3164, mut radius) = (Vec::new(), Vec::new(), Vec::new());
    let raw = |r: GeneratedRecord| {
        let peer = format!("10.{}.{}.{}:514", r.key.len() % 250, r.payload.len() % 250, r.event_time_ms % 250);
        RawRecord::new("bench", r.format, r.send_time_ms + 3, Some(peer), r.payload)
    };
    // Seconds 10.. include the default incident's records.
    for s in 10..600 {
        for r in traffic.second(s) {
            match r.format {
                Format::Radius if radius.len() < BATCH => radius.push(raw(r)),
                Format::Syslog if is_rfc5424(&r.payload) && rfc5424.len() < BATCH => rfc5424.push(raw(r)),
                Format::Syslog if !is_rfc5424(&r.payload) && rfc3164.len() < BATCH => rfc3164.push(raw(r)),
                _ => {}
            }
        }
        if rfc5424.len() == BATCH && rfc3164.len() == BATCH && radius.len() == BATCH {
            break;
        }
    }
    if rfc5424.len() < BATCH || rfc3164.len() < BATCH || radius.len() < BATCH {
        fail(format!("the generator gave {} / {} / {} records", rfc5424.len(), rfc3164.len(), radius.len()));
    }
    (rfc5424, rfc3164, radius)
}

/// `BATCH` records of a demo source.
fn demo(source: &str, format: Format, record: fn(u64) -> Vec<u8>) -> Vec<RawRecord> {
    (0..BATCH as u64).map(|i| RawRecord::new(source, format, 1_767_607_200_000 + 5_000, None, record(i))).collect()
}

/// Measures `decoder` over `batch`, after checking that every record decodes (a benchmark of the
/// error path would flatter the numbers).
fn group(c: &mut Criterion, name: &str, decoder: &Decoder, batch: &[RawRecord]) {
    for r in batch {
        if let Err(e) = decoder.decode(r) {
            fail(format!("{name}: {:?} does not decode: {e}", String::from_utf8_lossy(&r.payload.0)));
        }
    }
    let bytes: usize = batch.iter().map(|r| r.payload.0.len()).sum();
    let mut events = Vec::with_capacity(1);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function(
        BenchmarkId::new("decode", format!("{} records, {} B avg", batch.len(), bytes / batch.len().max(1))),
        |b| {
            b.iter(|| {
                for r in batch {
                    let _ = black_box(decoder.decode_into(black_box(r), &mut events));
                    black_box(&events);
                    events.clear();
                }
            })
        },
    );
    g.finish();
}

fn decode(c: &mut Criterion) {
    let (rfc5424, rfc3164, radius) = generated();
    let builtin = Decoder::new(&DecodeConfig::default(), KEY);
    group(c, "rfc5424", &builtin, &rfc5424);
    group(c, "rfc3164", &builtin, &rfc3164);
    group(c, "radius", &builtin, &radius);

    let cfg = common::config().unwrap_or_else(|e| fail(e));
    let configured = Decoder::try_new(&cfg, KEY).unwrap_or_else(|p| fail(format!("{p:?}")));
    group(c, "json", &configured, &demo(common::JSON_SOURCE, Format::Json, common::json_record));
    group(c, "kv", &configured, &demo(common::KV_SOURCE, Format::Kv, common::kv_record));
    group(c, "binary", &configured, &demo(common::BINARY_SOURCE, Format::Binary, common::binary_alarm));
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
    g.bench_function("event_id", |b| {
        b.iter(|| {
            for r in &rfc5424 {
                black_box(lux_model::event_id(black_box(&r.payload.0), 0));
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
