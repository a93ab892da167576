//! Writes the seed corpus of every fuzz target: `seeds OUT_DIR` fills `OUT_DIR/<target>/` with
//! the real-sender captures of `tests/fixtures/real_senders` (logger, radclient), the demo
//! generator's traffic (RFC 5424, RFC 3164, RADIUS, incidents included) and the demo sources'
//! JSON, key=value and binary records. Used by `scripts/fuzz`.

use lux_decode_fuzz::{samples, Target};
use lux_generate::{GeneratorConfig, Network, Traffic};
use lux_model::Format;
use std::path::{Path, PathBuf};

/// Generated records kept per format.
const PER_FORMAT: usize = 300;

fn main() {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: seeds OUT_DIR");
        std::process::exit(2);
    };
    if let Err(e) = run(&out) {
        eprintln!("seeds: {e}");
        std::process::exit(1);
    }
}

fn run(out: &Path) -> Result<(), String> {
    let mut seeds: Vec<(Target, Vec<u8>)> = Vec::new();
    seeds.extend(fixtures()?);
    seeds.extend(generated()?);
    for i in 0..PER_FORMAT as u64 {
        seeds.push((Target::Json, samples::json_record(i)));
        seeds.push((Target::Kv, samples::kv_record(i)));
        seeds.push((Target::Binary, samples::binary_alarm(i)));
    }
    let mut counts = std::collections::BTreeMap::new();
    for (target, bytes) in seeds {
        let dir = out.join(target.name());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let n = counts.entry(target.name()).or_insert(0usize);
        *n += 1;
        let file = dir.join(format!("seed-{n:05}"));
        std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    for (target, n) in counts {
        println!("{target}: {n} seeds in {}", out.join(target).display());
    }
    Ok(())
}

/// The stored captures of real senders (a TCP capture gives its octet-counted frames).
fn fixtures() -> Result<Vec<(Target, Vec<u8>)>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/real_senders");
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let hex = json.get("bytes").and_then(|b| b.as_str()).unwrap_or_default();
        let bytes: Vec<u8> =
            (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
        let target = if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("radclient")) {
            Target::Radius
        } else {
            Target::Syslog
        };
        if json.get("transport").and_then(|t| t.as_str()) == Some("tcp") {
            // `LEN SP MSG`: the frame is the record.
            if let Some(space) = bytes.iter().position(|b| *b == b' ') {
                out.push((target, bytes.get(space + 1..).unwrap_or_default().to_vec()));
            }
        } else {
            out.push((target, bytes));
        }
    }
    Ok(out)
}

/// The demo generator's traffic: the first `PER_FORMAT` syslog lines of each dialect and RADIUS
/// packets from second 10 on (inside the default incident).
fn generated() -> Result<Vec<(Target, Vec<u8>)>, String> {
    let cfg = GeneratorConfig::default();
    let start = cfg.start_ms().map_err(|e| e.to_string())?;
    let network = Network::generate_at(&cfg, start).map_err(|e| e.to_string())?;
    let traffic = Traffic::new(&network, &cfg, start).map_err(|e| e.to_string())?;
    let (mut rfc5424, mut rfc3164, mut radius) = (0, 0, 0);
    let mut out = Vec::new();
    for s in 10..120 {
        for r in traffic.second(s) {
            let is_5424 = r.payload.iter().position(|b| *b == b'>').and_then(|i| r.payload.get(i + 1..i + 3))
                == Some(b"1 ".as_slice());
            let counter = match (r.format, is_5424) {
                (Format::Radius, _) => &mut radius,
                (_, true) => &mut rfc5424,
                _ => &mut rfc3164,
            };
            if *counter < PER_FORMAT {
                *counter += 1;
                let target = if r.format == Format::Radius { Target::Radius } else { Target::Syslog };
                out.push((target, r.payload));
            }
        }
    }
    Ok(out)
}
