//! The generator's traffic as the syslog and RADIUS collectors write it to `raw`
//! ([`lux_generate::samples`]), and the simple RFC 5424 lines made of it, shared by the
//! decode benchmark and the `decode_profile` example.

use lux_model::RawRecord;

pub use lux_generate::samples::by_format as generated;

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
