//! Samples of the demo traffic by wire format, as the syslog and RADIUS collectors write them to
//! `raw`: the records the decoder benchmarks, `decode_profile` and `lux bench` measure (so that
//! criterion, callgrind and `lux bench` measure the same records).

use crate::{GeneratedRecord, GeneratorConfig, Network, Traffic};
use lux_model::{Format, RawRecord};

/// Whether a syslog line is RFC 5424 (`<PRI>1 `).
pub fn is_rfc5424(payload: &[u8]) -> bool {
    let after_pri = payload.iter().position(|b| *b == b'>').map(|i| i + 1);
    after_pri.and_then(|i| payload.get(i..i + 2)) == Some(b"1 ")
}

/// The generator's records by format: (RFC 5424 lines, RFC 3164 lines, RADIUS packets).
pub type Batches = (Vec<RawRecord>, Vec<RawRecord>, Vec<RawRecord>);

/// The generator settings the samples come from: the demo operator (its reference data is
/// `Network::generate_at(&config(), config().start_ms()?)`) at 20,000 records/s.
pub fn config() -> GeneratorConfig {
    GeneratorConfig { rate: 20_000.0, daily_curve: false, ..GeneratorConfig::default() }
}

/// At least `batch` of each of (RFC 5424 lines, RFC 3164 lines, RADIUS packets) from the demo
/// generator (the operator's BNG, OLT, DSLAM and CPE traffic, the default incident included), or
/// what went wrong.
pub fn by_format(batch: usize) -> Result<Batches, String> {
    let cfg = config();
    let start = cfg.start_ms().map_err(|e| e.to_string())?;
    let network = Network::generate_at(&cfg, start).map_err(|e| e.to_string())?;
    let traffic = Traffic::new(&network, &cfg, start).map_err(|e| e.to_string())?;
    let (mut rfc5424, mut rfc3164, mut radius) = (Vec::new(), Vec::new(), Vec::new());
    let raw = |r: GeneratedRecord| {
        let peer = format!("10.{}.{}.{}:514", r.key.len() % 250, r.payload.len() % 250, r.event_time_ms % 250);
        RawRecord::new("bench", r.format, r.send_time_ms + 3, Some(peer), r.payload)
    };
    // Seconds 10.. include the default incident's records.
    for s in 10..600 {
        for r in traffic.second(s) {
            match r.format {
                Format::Radius if radius.len() < batch => radius.push(raw(r)),
                Format::Syslog if is_rfc5424(&r.payload) && rfc5424.len() < batch => rfc5424.push(raw(r)),
                Format::Syslog if !is_rfc5424(&r.payload) && rfc3164.len() < batch => rfc3164.push(raw(r)),
                _ => {}
            }
        }
        if rfc5424.len() == batch && rfc3164.len() == batch && radius.len() == batch {
            break;
        }
    }
    if rfc5424.len() < batch || rfc3164.len() < batch || radius.len() < batch {
        return Err(format!("the generator gave {} / {} / {} records", rfc5424.len(), rfc3164.len(), radius.len()));
    }
    Ok((rfc5424, rfc3164, radius))
}
