//! Reads the QoE benchmark's `enriched` records in a loop, for instruction counts under
//! callgrind (repeatable on a busy machine, where criterion's timings are not): what reading a
//! record costs the stages that read JSON records.
//!
//! `read_profile MODE N` reads the first N of the 200,000 records (`benches/common`, about 780
//! bytes each) by MODE, inside the function `read_profile::measured`:
//!
//! - `full`: `serde_json::from_slice::<EnrichedEvent>`, a full read checking each string's UTF-8;
//! - `full-checked-once`: the same through `lux_model::from_json` (UTF-8 checked once a record);
//! - `skimmed`: `EnrichedEvent::from_json_skimmed`, the alarm stage's route half's read;
//! - `indicators`: `EnrichedEvent::from_json_for_indicators`, the QoE stage's read;
//! - `raw-slice` and `raw`: a `raw` record of a syslog line (about 250 bytes) read by
//!   `serde_json::from_slice` and by `lux_model::from_json` (the transform stage's read);
//! - `engine` and `engine-state`: no read, the first N events (already read) through the
//!   engine with the default config, `advance` every 1,000 events as the bench does (`common::drive`), and with
//!   `engine-state` the changed cells' state entries taken too (`take_changes`): the
//!   difference of the two is what writing the state costs.
//!
//! ```text
//! cargo build --release -p lux-qoe --example read_profile
//! valgrind --tool=callgrind --toggle-collect='read_profile::measured*' --callgrind-out-file=/tmp/cg \
//!     target/release/examples/read_profile indicators 20000
//! # instructions per record = the total Ir / 20000
//! ```

#[path = "../benches/common/mod.rs"]
mod common;

use lux_model::{EnrichedEvent, RawRecord};
use lux_qoe::QoeEngine;
use std::borrow::Cow;
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<usize>().ok())) else {
        eprintln!("usage: read_profile full|full-checked-once|skimmed|indicators|raw-slice|raw|engine|engine-state N");
        std::process::exit(2);
    };
    if mode.starts_with("engine") {
        let events: Vec<_> = common::make_events().into_iter().take(n).collect();
        let config = lux_qoe::QoeConfig::default();
        let mut engine = QoeEngine::new(&config, &[0, 1, 2]).expect("the default config is valid");
        measured_engine(&mut engine, &events, mode == "engine-state");
        return;
    }
    let records: Vec<Vec<u8>> = if mode.starts_with("raw") {
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"schema":"lux.raw.v1","source":"demo","format":"syslog","received_at":"2026-11-27T22:15:32.939Z","peer":"127.0.0.1:58716","payload":{{"text":"<189>Jan  5 00:00:00 cpe-lil002-{:05} {i}: %LINK-5-UP: Interface wan0 changed state to up subscriber=sub{:07}"}}}}"#,
                    i % common::EQUIPMENT,
                    i % 100_000
                )
                .into_bytes()
            })
            .collect()
    } else {
        common::make_events().iter().take(n).map(|(_, e)| serde_json::to_vec(e).expect("serialisable")).collect()
    };
    if let Err(error) = measured(&mode, &records) {
        eprintln!("read_profile: {error}");
        std::process::exit(2);
    }
}

#[inline(never)]
fn measured_engine(engine: &mut QoeEngine, events: &[(u32, EnrichedEvent)], state: bool) {
    black_box(common::drive(engine, events, Cow::Borrowed, state));
}

#[inline(never)]
fn measured(mode: &str, records: &[Vec<u8>]) -> Result<(), String> {
    for bytes in records {
        let read = match mode {
            "full" => serde_json::from_slice::<EnrichedEvent>(bytes).map(|e| drop(black_box(e))),
            "full-checked-once" => lux_model::from_json::<EnrichedEvent>(bytes).map(|e| drop(black_box(e))),
            "skimmed" => EnrichedEvent::from_json_skimmed(bytes).map(|e| drop(black_box(e))),
            "indicators" => {
                EnrichedEvent::from_json_for_indicators(bytes, QoeEngine::uses_attributes).map(|e| drop(black_box(e)))
            }
            "raw-slice" => serde_json::from_slice::<RawRecord>(bytes).map(|r| drop(black_box(r))),
            "raw" => lux_model::from_json::<RawRecord>(bytes).map(|r| drop(black_box(r))),
            other => return Err(format!("unknown mode {other}")),
        };
        read.map_err(|e| e.to_string())?;
    }
    Ok(())
}
