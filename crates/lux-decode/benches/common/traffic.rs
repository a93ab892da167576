//! The generator's traffic as the syslog and RADIUS collectors write it to `raw`: RFC 5424 lines,
//! RFC 3164 lines and RADIUS packets, shared by the decode benchmark and the `decode_profile`
//! example (so that criterion and callgrind measure the same records).

use lux_generate::{GeneratedRecord, GeneratorConfig, Network, Traffic};
use lux_model::{Format, RawRecord};

/// Whether a syslog line is RFC 5424 (`<PRI>1 `).
pub fn is_rfc5424(payload: &[u8]) -> bool {
    let after_pri = payload.iter().position(|b| *b == b'>').map(|i| i + 1);
    after_pri.and_then(|i| payload.get(i..i + 2)) == Some(b"1 ")
}

/// The generator's records by format: (RFC 5424 lines, RFC 3164 lines, RADIUS packets).
pub type Batches = (Vec<RawRecord>, Vec<RawRecord>, Vec<RawRecord>);

/// At least `batch` of each of (RFC 5424 lines, RFC 3164 lines, RADIUS packets) from the demo
/// generator (the operator's BNG, OLT, DSLAM and CPE traffic, the default incident included), or
/// what went wrong.
pub fn generated(batch: usize) -> Result<Batches, String> {
    let cfg = GeneratorConfig { rate: 20_000.0, daily_curve: false, ..GeneratorConfig::default() };
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

/// The "simple" RFC 5424 line of each record of `rfc5424`: the same header and message,
/// no structured data (`-`), as in `<34>1 2003-10-11T22:14:15.003Z host su - ID47 - message`.
/// Records whose structured data cannot be delimited are left out.
pub fn simple(rfc5424: &[RawRecord]) -> Vec<RawRecord> {
    rfc5424
        .iter()
        .filter_map(|r| {
            let line = &r.payload.0;
            let (sd, rest) = structured_data(line)?;
            let mut payload = line.get(..sd)?.to_vec();
            payload.push(b'-');
            payload.extend_from_slice(line.get(rest..)?);
            Some(RawRecord::new(r.source.as_str(), r.format, r.received_at, r.peer.clone(), payload))
        })
        .collect()
}

/// Where the structured data of an RFC 5424 line starts (after the 6th space) and ends.
fn structured_data(line: &[u8]) -> Option<(usize, usize)> {
    let start = line.iter().enumerate().filter(|(_, b)| **b == b' ').nth(5)?.0 + 1;
    let mut pos = start;
    if line.get(pos) == Some(&b'-') {
        return Some((start, pos + 1));
    }
    while line.get(pos) == Some(&b'[') {
        let mut quoted = false;
        loop {
            pos += 1;
            match (line.get(pos)?, quoted) {
                (b'\\', true) => pos += 1,
                (b'"', q) => quoted = !q,
                (b']', false) => break,
                _ => {}
            }
        }
        pos += 1;
    }
    Some((start, pos))
}
