//! RADIUS accounting decoding (RFC 2866 Accounting-Request): header and attribute length checks,
//! the standard accounting attributes decoded to names and typed values, mapped to a session
//! event. The Request Authenticator is not verified here: the collector does it with the
//! shared secret before the record reaches the log.

use crate::mapping::hex;
use crate::{err, DecodeError, Draft};
use lux_model::{DeadLetterReason as R, EquipmentKey, EventKind, Format, Millis, Outcome};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Code of an Accounting-Request.
pub const ACCOUNTING_REQUEST: u8 = 4;
/// Header: code, identifier, length (2), authenticator (16).
pub const HEADER_LEN: usize = 20;
/// RFC 2865 3: the maximum length of a RADIUS packet.
pub const MAX_LEN: usize = 4096;

/// Attribute types (RFC 2865 / 2866 / 2869).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_SESSION_ID: u8 = 44;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    pub const EVENT_TIMESTAMP: u8 = 55;
}

/// How an attribute's value is typed.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
    Ipv4,
}

fn known(t: u8) -> Option<(&'static str, Kind)> {
    use attr::*;
    Some(match t {
        USER_NAME => ("User-Name", Kind::Text),
        NAS_IP_ADDRESS => ("NAS-IP-Address", Kind::Ipv4),
        FRAMED_IP_ADDRESS => ("Framed-IP-Address", Kind::Ipv4),
        CALLING_STATION_ID => ("Calling-Station-Id", Kind::Text),
        NAS_IDENTIFIER => ("NAS-Identifier", Kind::Text),
        ACCT_STATUS_TYPE => ("Acct-Status-Type", Kind::Integer),
        ACCT_INPUT_OCTETS => ("Acct-Input-Octets", Kind::Integer),
        ACCT_OUTPUT_OCTETS => ("Acct-Output-Octets", Kind::Integer),
        ACCT_SESSION_ID => ("Acct-Session-Id", Kind::Text),
        ACCT_SESSION_TIME => ("Acct-Session-Time", Kind::Integer),
        ACCT_TERMINATE_CAUSE => ("Acct-Terminate-Cause", Kind::Integer),
        ACCT_INPUT_GIGAWORDS => ("Acct-Input-Gigawords", Kind::Integer),
        ACCT_OUTPUT_GIGAWORDS => ("Acct-Output-Gigawords", Kind::Integer),
        EVENT_TIMESTAMP => ("Event-Timestamp", Kind::Integer),
        _ => return None,
    })
}

/// The attributes of one packet, typed.
#[derive(Default)]
struct Attrs<'a> {
    text: BTreeMap<u8, &'a [u8]>,
    int: BTreeMap<u8, u32>,
    ip: BTreeMap<u8, Ipv4Addr>,
    other: BTreeMap<String, Value>,
}

pub(crate) fn decode(bytes: &[u8], received_at: Millis) -> Result<Draft, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return err(R::Truncated, format!("radius: {} bytes, shorter than the 20-byte header", bytes.len()));
    }
    let (Some(&code), Some(&identifier), Some(&hi), Some(&lo)) =
        (bytes.first(), bytes.get(1), bytes.get(2), bytes.get(3))
    else {
        return err(R::Truncated, "radius: shorter than the header");
    };
    if code != ACCOUNTING_REQUEST {
        return err(
            R::UnknownFormat,
            format!("radius: code {code} ({}) is not an Accounting-Request (4)", code_name(code)),
        );
    }
    let length = usize::from(u16::from_be_bytes([hi, lo]));
    if !(HEADER_LEN..=MAX_LEN).contains(&length) {
        return err(R::BadLength, format!("radius: length field {length} is outside 20-4096"));
    }
    if length > bytes.len() {
        return err(
            R::Truncated,
            format!("radius: length field says {length} bytes but the datagram has {}", bytes.len()),
        );
    }
    // RFC 2865 3: octets beyond the length field are padding, to be ignored.
    let packet = bytes.get(..length).unwrap_or(&[]);
    let mut attrs = Attrs::default();
    let mut pos = HEADER_LEN;
    while pos < packet.len() {
        let (Some(&t), Some(&len)) = (packet.get(pos), packet.get(pos + 1)) else {
            return err(
                R::Truncated,
                format!("radius: the packet ends inside the header of an attribute at byte {pos}"),
            );
        };
        let len = usize::from(len);
        if len < 2 {
            return err(R::BadLength, format!("radius: attribute {t} at byte {pos} has length {len} (at least 2)"));
        }
        let Some(value) = packet.get(pos + 2..pos + len) else {
            return err(
                R::Truncated,
                format!(
                    "radius: attribute {t} at byte {pos} announces {len} bytes but the packet ends at byte {}",
                    packet.len()
                ),
            );
        };
        attribute(&mut attrs, t, value, pos)?;
        pos += len;
    }
    to_draft(attrs, identifier, received_at)
}

fn attribute<'a>(attrs: &mut Attrs<'a>, t: u8, value: &'a [u8], pos: usize) -> Result<(), DecodeError> {
    let Some((name, kind)) = known(t) else {
        // Kept, as hex, for whoever needs them (Vendor-Specific, ...).
        attrs.other.entry(format!("radius.attr.{t}")).or_insert_with(|| Value::from(hex(value)));
        return Ok(());
    };
    let duplicate = || DecodeError::new(R::BadValue, format!("radius: {name} appears twice (second at byte {pos})"));
    match kind {
        Kind::Text => {
            if value.is_empty() {
                return err(R::BadLength, format!("radius: {name} at byte {pos} is empty (at least 1 byte)"));
            }
            if attrs.text.insert(t, value).is_some() {
                return Err(duplicate());
            }
        }
        Kind::Integer => {
            let Ok(four) = <[u8; 4]>::try_from(value) else {
                return err(
                    R::BadLength,
                    format!("radius: {name} at byte {pos} has {} value bytes (an integer has 4)", value.len()),
                );
            };
            if attrs.int.insert(t, u32::from_be_bytes(four)).is_some() {
                return Err(duplicate());
            }
        }
        Kind::Ipv4 => {
            let Ok(four) = <[u8; 4]>::try_from(value) else {
                return err(
                    R::BadLength,
                    format!("radius: {name} at byte {pos} has {} value bytes (an IPv4 address has 4)", value.len()),
                );
            };
            if attrs.ip.insert(t, Ipv4Addr::from(four)).is_some() {
                return Err(duplicate());
            }
        }
    }
    Ok(())
}

fn to_draft(a: Attrs<'_>, identifier: u8, received_at: Millis) -> Result<Draft, DecodeError> {
    use attr::*;
    let mut out = a.other;
    out.insert("radius.identifier".into(), Value::from(identifier));
    let Some(&status) = a.int.get(&ACCT_STATUS_TYPE) else {
        return err(R::MissingField, "radius: no Acct-Status-Type");
    };
    let (kind, status_name) = match status {
        1 => (EventKind::SessionStart, "Start"),
        2 => (EventKind::SessionStop, "Stop"),
        3 => (EventKind::SessionInterim, "Interim-Update"),
        // The NAS (re)started or is shutting down: every session on it ended.
        7 => (EventKind::Reboot, "Accounting-On"),
        8 => (EventKind::Reboot, "Accounting-Off"),
        _ => (EventKind::Other, "Other"),
    };
    out.insert("Acct-Status-Type".into(), Value::from(status));
    out.insert("Acct-Status-Type-Name".into(), Value::from(status_name));

    for (t, value) in &a.text {
        if *t == USER_NAME || *t == NAS_IDENTIFIER {
            continue;
        }
        if let Some((name, _)) = known(*t) {
            out.insert(name.into(), Value::from(String::from_utf8_lossy(value).into_owned()));
        }
    }
    for (t, ip) in &a.ip {
        if let Some((name, _)) = known(*t) {
            out.insert(name.into(), Value::from(ip.to_string()));
        }
    }
    // Octet counters wrap at 2^32; the gigawords count the wraps (RFC 2869 5.1, 5.2).
    for (octets, gigawords) in [(ACCT_INPUT_OCTETS, ACCT_INPUT_GIGAWORDS), (ACCT_OUTPUT_OCTETS, ACCT_OUTPUT_GIGAWORDS)]
    {
        let low = a.int.get(&octets).copied();
        let high = a.int.get(&gigawords).copied();
        if low.is_some() || high.is_some() {
            let total = (u64::from(high.unwrap_or(0)) << 32) | u64::from(low.unwrap_or(0));
            if let Some((name, _)) = known(octets) {
                out.insert(name.into(), Value::from(total));
            }
        }
    }
    for t in [ACCT_SESSION_TIME, ACCT_TERMINATE_CAUSE] {
        if let (Some(v), Some((name, _))) = (a.int.get(&t), known(t)) {
            out.insert(name.into(), Value::from(*v));
        }
    }
    let error_code = a.int.get(&ACCT_TERMINATE_CAUSE).map(|c| format!("RADIUS-TC-{c}"));
    let event_time = match a.int.get(&EVENT_TIMESTAMP) {
        Some(secs) => i64::from(*secs) * 1000,
        None => {
            out.insert("radius.time_source".into(), Value::from("received_at"));
            received_at
        }
    };
    let (equipment_id, equipment_key) = match (a.text.get(&NAS_IDENTIFIER), a.ip.get(&NAS_IP_ADDRESS)) {
        (Some(id), _) => {
            let id = std::str::from_utf8(id)
                .map_err(|e| DecodeError::new(R::BadUtf8, format!("radius: NAS-Identifier is not UTF-8: {e}")))?;
            (id.to_owned(), EquipmentKey::NasIdentifier)
        }
        (None, Some(ip)) => (ip.to_string(), EquipmentKey::NasIpAddress),
        (None, None) => {
            return err(
                R::MissingField,
                "radius: neither NAS-Identifier nor NAS-IP-Address: no equipment to attribute the event to",
            )
        }
    };
    Ok(Draft {
        format: Format::Radius,
        event_time,
        equipment_id,
        equipment_key,
        kind,
        outcome: Outcome::Info,
        error_code,
        subscriber_clear: a.text.get(&USER_NAME).map(|u| u.to_vec()),
        message: None,
        attributes: out,
    })
}

fn code_name(code: u8) -> &'static str {
    match code {
        1 => "Access-Request",
        2 => "Access-Accept",
        3 => "Access-Reject",
        5 => "Accounting-Response",
        11 => "Access-Challenge",
        12 => "Status-Server",
        13 => "Status-Client",
        40 => "Disconnect-Request",
        43 => "CoA-Request",
        _ => "unknown",
    }
}
