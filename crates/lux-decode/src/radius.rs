//! RADIUS accounting decoding (RFC 2866 Accounting-Request): header and attribute length checks,
//! every standard attribute of RFC 2865/2866/2869 decoded by name and type through the
//! dictionary, Vendor-Specific attributes through the vendor dictionaries (unknown ones kept as
//! hex), mapped to a session event. The Request Authenticator is not verified here: the
//! collector does it with the shared secret before the record reaches the log.

use crate::config::RadiusType;
use crate::cursor::utf8;
use crate::dictionary::{standard, value_label, value_name, Dictionary};
use crate::mapping::{ipv4_str, ipv4_text};
use crate::{err, Clear, DecodeError, Out};
use lux_model::{
    format_rfc3339_millis, AttrText, AttributeList, DeadLetterReason as R, EquipmentKey, EventKind, Millis, Outcome,
    Scalar, SmallStr,
};
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// Code of an Accounting-Request.
pub const ACCOUNTING_REQUEST: u8 = 4;
/// Header: code, identifier, length (2), authenticator (16).
pub const HEADER_LEN: usize = 20;
/// RFC 2865 3: the maximum length of a RADIUS packet.
pub const MAX_LEN: usize = 4096;

/// Attribute types the mapping to an event uses (RFC 2865 / 2866 / 2869).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    pub const EVENT_TIMESTAMP: u8 = 55;
}

/// The attributes the mapping needs, typed; every other one is already in `out` (the list of
/// the event's attributes).
struct Mapped<'a, 'e> {
    user_name: Option<&'a [u8]>,
    nas_identifier: Option<&'a [u8]>,
    nas_ip: Option<Ipv4Addr>,
    status: Option<u32>,
    terminate_cause: Option<u32>,
    event_timestamp: Option<u32>,
    octets: [Option<u32>; 4],
    out: AttributeList<'e>,
}

impl<'e> Mapped<'_, 'e> {
    fn new(out: AttributeList<'e>) -> Self {
        Mapped {
            user_name: None,
            nas_identifier: None,
            nas_ip: None,
            status: None,
            terminate_cause: None,
            event_timestamp: None,
            octets: [None; 4],
            out,
        }
    }
}

/// The event's fields [`to_event`] finds (its attributes are written in place).
struct Fields<'a> {
    kind: EventKind,
    error_code: Option<SmallStr>,
    event_time: Millis,
    /// The NAS-Identifier, else the NAS-IP-Address.
    equipment: Result<&'a str, Ipv4Addr>,
}

/// The packet's length from its header, checked: `bytes` must hold at least that much.
pub(crate) fn packet_length(bytes: &[u8]) -> Result<usize, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return err(R::Truncated, format!("radius: {} bytes, shorter than the 20-byte header", bytes.len()));
    }
    let (Some(&hi), Some(&lo)) = (bytes.get(2), bytes.get(3)) else {
        return err(R::Truncated, "radius: shorter than the header");
    };
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
    Ok(length)
}

pub(crate) fn decode<'a>(
    bytes: &'a [u8],
    received_at: Millis,
    dict: &Dictionary,
    out: &mut Out<'_>,
) -> Result<Clear<'a>, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return err(R::Truncated, format!("radius: {} bytes, shorter than the 20-byte header", bytes.len()));
    }
    let (Some(&code), Some(&identifier)) = (bytes.first(), bytes.get(1)) else {
        return err(R::Truncated, "radius: shorter than the header");
    };
    if code != ACCOUNTING_REQUEST {
        return err(
            R::UnknownFormat,
            format!("radius: code {code} ({}) is not an Accounting-Request (4)", code_name(code)),
        );
    }
    let length = packet_length(bytes)?;
    // RFC 2865 3: octets beyond the length field are padding, to be ignored.
    let packet = bytes.get(..length).unwrap_or(&[]);
    let mut mapped = Mapped::new(out.attribute_list());
    let mut seen = Seen::default();
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
        attribute(&mut mapped, &mut seen, t, value, pos, dict)?;
        pos += len;
    }
    let user_name = mapped.user_name;
    let fields = to_event(mapped, identifier, received_at)?;
    let ev = &mut *out.ev;
    match fields.equipment {
        Ok(id) => {
            if ev.equipment_id != *id {
                ev.equipment_id = SmallStr::new(id);
            }
            ev.equipment_key = EquipmentKey::NasIdentifier;
        }
        Err(ip) => {
            ev.equipment_id = ipv4_text(ip);
            ev.equipment_key = EquipmentKey::NasIpAddress;
        }
    }
    ev.event_time = fields.event_time;
    ev.kind = fields.kind;
    ev.outcome = Outcome::Info;
    ev.error_code = fields.error_code;
    out.no_message();
    Ok(user_name.map(Cow::Borrowed))
}

/// The attribute types seen so far in a packet (a bit each).
#[derive(Default)]
struct Seen([u64; 4]);

impl Seen {
    /// Marks `t` as seen; whether it already was.
    fn mark(&mut self, t: u8) -> bool {
        let bit = 1u64 << (t % 64);
        match self.0.get_mut(usize::from(t / 64)) {
            Some(word) => {
                let was = *word & bit != 0;
                *word |= bit;
                was
            }
            None => false,
        }
    }
}

fn attribute<'a>(
    m: &mut Mapped<'a, '_>,
    seen: &mut Seen,
    t: u8,
    value: &'a [u8],
    pos: usize,
    dict: &Dictionary,
) -> Result<(), DecodeError> {
    use attr::*;
    let Some(def) = standard(t) else {
        // Kept, as hex, for whoever needs them.
        m.out.append(SmallStr::concat(&["radius.attr.", &SmallStr::decimal(u64::from(t))]), SmallStr::hex(value));
        return Ok(());
    };
    let name = def.name;
    if t == VENDOR_SPECIFIC {
        return vendor_specific(m, value, pos, dict);
    }
    let typed = typed_value(def.kind, value).map_err(|expected| {
        DecodeError::new(
            R::BadLength,
            format!("radius: {name} at byte {pos} has {} value bytes ({expected})", value.len()),
        )
    })?;
    if seen.mark(t) && !def.multi {
        return err(R::BadValue, format!("radius: {name} appears twice (second at byte {pos})"));
    }
    match (t, typed) {
        (USER_NAME, _) => m.user_name = Some(value),
        (NAS_IDENTIFIER, _) => m.nas_identifier = Some(value),
        (NAS_IP_ADDRESS, Typed::Ip(ip)) => {
            m.nas_ip = Some(ip);
            let text = m.out.text(ipv4_str(ip, &mut [0; 16]));
            m.out.push_replacing(name, text);
        }
        (ACCT_STATUS_TYPE, Typed::Int(v)) => m.status = Some(v),
        (ACCT_TERMINATE_CAUSE, Typed::Int(v)) => {
            m.terminate_cause = Some(v);
            int_value(&mut m.out, t, name, v);
        }
        (EVENT_TIMESTAMP, Typed::Date(v)) => m.event_timestamp = Some(v),
        (ACCT_INPUT_OCTETS | ACCT_OUTPUT_OCTETS | ACCT_INPUT_GIGAWORDS | ACCT_OUTPUT_GIGAWORDS, Typed::Int(v)) => {
            let slot = match t {
                ACCT_INPUT_OCTETS => 0,
                ACCT_OUTPUT_OCTETS => 1,
                ACCT_INPUT_GIGAWORDS => 2,
                _ => 3,
            };
            if let Some(slot) = m.octets.get_mut(slot) {
                *slot = Some(v);
            }
        }
        (_, Typed::Int(v)) => int_value(&mut m.out, t, name, v),
        (_, typed) => {
            let value = typed.into_scalar(&mut m.out);
            m.out.push(name, value);
        }
    }
    Ok(())
}

/// An integer attribute, with its value's name when the dictionary has one
/// (`Acct-Terminate-Cause` 2 and `Acct-Terminate-Cause-Name` `Lost-Carrier`).
fn int_value(out: &mut AttributeList, t: u8, name: &'static str, v: u32) {
    out.push(name, v);
    if let Some(label) = value_name(t, v) {
        match value_label(t) {
            Some(label_name) => out.push(label_name, label),
            None => {
                let label_name = out.concat(&[name, "-Name"]);
                out.push(label_name, label);
            }
        }
    }
}

/// A value typed by the dictionary, borrowed from the packet.
enum Typed<'a> {
    Text(Cow<'a, str>),
    Hex(&'a [u8]),
    Int(u32),
    Ip(Ipv4Addr),
    Date(u32),
}

impl Typed<'_> {
    /// The value, its text written into the buffer of `out`.
    #[inline(always)]
    fn into_scalar(self, out: &mut AttributeList) -> Scalar {
        let text = |t: AttrText| Scalar::from(t);
        match self {
            Typed::Text(s) => text(out.text(&s)),
            Typed::Hex(bytes) => text(out.hex(bytes)),
            Typed::Int(v) => Scalar::from(v),
            Typed::Ip(ip) => text(out.text(ipv4_str(ip, &mut [0; 16]))),
            Typed::Date(secs) => text(out.text(&format_rfc3339_millis(i64::from(secs) * 1000))),
        }
    }
}

/// `value` typed as `kind`, or what its length should be.
#[inline(always)]
fn typed_value(kind: RadiusType, value: &[u8]) -> Result<Typed<'_>, &'static str> {
    let four = || <[u8; 4]>::try_from(value).map_err(|_| "expected 4");
    Ok(match kind {
        RadiusType::Text => {
            if value.is_empty() {
                return Err("at least 1 byte");
            }
            // Checked as UTF-8 first: the lossy conversion is slower on valid text.
            Typed::Text(utf8(value).map_or_else(|_| String::from_utf8_lossy(value), Cow::Borrowed))
        }
        RadiusType::Octets => {
            if value.is_empty() {
                return Err("at least 1 byte");
            }
            Typed::Hex(value)
        }
        RadiusType::Integer => Typed::Int(u32::from_be_bytes(four()?)),
        RadiusType::IpAddr => Typed::Ip(Ipv4Addr::from(four()?)),
        RadiusType::Date => Typed::Date(u32::from_be_bytes(four()?)),
    })
}

/// RFC 2865 5.26: a 4-byte vendor id, then (in the recommended format) sub-attributes of one
/// byte of type and one byte of length. Vendors and codes the dictionaries do not know, and
/// vendor data not in the recommended format, are kept as hex.
fn vendor_specific(m: &mut Mapped<'_, '_>, value: &[u8], pos: usize, dict: &Dictionary) -> Result<(), DecodeError> {
    let (Some(id), Some(data)) = (value.get(..4).and_then(|v| <[u8; 4]>::try_from(v).ok()), value.get(4..)) else {
        return err(
            R::BadLength,
            format!("radius: Vendor-Specific at byte {pos} has {} value bytes (at least 5)", value.len()),
        );
    };
    let id = u32::from_be_bytes(id);
    let vendor_key = || SmallStr::concat(&["radius.vendor.", &SmallStr::decimal(u64::from(id))]);
    let Some(vendor) = dict.vendors.get(&id) else {
        m.out.append(vendor_key(), SmallStr::hex(data));
        return Ok(());
    };
    // Check the sub-attribute framing first: if it is not the recommended format, keep it whole.
    let mut p = 0;
    while p < data.len() {
        match data.get(p + 1).map(|l| usize::from(*l)) {
            Some(len) if len >= 2 && p + len <= data.len() => p += len,
            _ => {
                m.out.append(vendor_key(), SmallStr::hex(data));
                return Ok(());
            }
        }
    }
    let mut p = 0;
    while let (Some(&code), Some(&len)) = (data.get(p), data.get(p + 1)) {
        let len = usize::from(len);
        let sub = data.get(p + 2..p + len).unwrap_or(&[]);
        p += len.max(2);
        let code_key = || {
            SmallStr::concat(&[
                "radius.vendor.",
                &SmallStr::decimal(u64::from(id)),
                ".",
                &SmallStr::decimal(u64::from(code)),
            ])
        };
        match vendor.attrs.get(&code).map(|a| (a, typed_value(a.kind, sub))) {
            Some((def, Ok(typed))) => {
                let name = m.out.text(&def.name);
                let value = typed.into_scalar(&mut m.out);
                m.out.push(name, value);
            }
            Some((def, Err(_))) => {
                m.out.append(code_key(), SmallStr::hex(sub));
                m.out.append(
                    SmallStr::from_static("radius.warning"),
                    format!("{}: {} value bytes do not fit its type", def.name, sub.len()),
                );
            }
            None => m.out.append(code_key(), SmallStr::hex(sub)),
        }
    }
    Ok(())
}

/// Adds the attributes the mapping derives, sorts the list, and finds the event's fields.
fn to_event<'a>(a: Mapped<'a, '_>, identifier: u8, received_at: Millis) -> Result<Fields<'a>, DecodeError> {
    use attr::*;
    let mut out = a.out;
    out.push_replacing("radius.identifier", identifier);
    let Some(status) = a.status else {
        return err(R::MissingField, "radius: no Acct-Status-Type");
    };
    let kind = match status {
        1 => EventKind::SessionStart,
        2 => EventKind::SessionStop,
        3 => EventKind::SessionInterim,
        // The NAS (re)started or is shutting down: every session on it ended.
        7 | 8 => EventKind::Reboot,
        _ => EventKind::Other,
    };
    out.push_replacing("Acct-Status-Type", status);
    out.push_replacing("Acct-Status-Type-Name", value_name(ACCT_STATUS_TYPE, status).unwrap_or("Other"));

    // Octet counters wrap at 2^32; the gigawords count the wraps (RFC 2869 5.1, 5.2).
    for (i, name) in [(0usize, "Acct-Input-Octets"), (1, "Acct-Output-Octets")] {
        let low = a.octets.get(i).copied().flatten();
        let high = a.octets.get(i + 2).copied().flatten();
        if low.is_some() || high.is_some() {
            let total = (u64::from(high.unwrap_or(0)) << 32) | u64::from(low.unwrap_or(0));
            out.push_replacing(name, total);
        }
    }
    let error_code = a.terminate_cause.map(|c| SmallStr::concat(&["RADIUS-TC-", &SmallStr::decimal(u64::from(c))]));
    let event_time = match a.event_timestamp {
        Some(secs) => i64::from(secs) * 1000,
        None => {
            out.push_replacing("radius.time_source", "received_at");
            received_at
        }
    };
    let equipment = match (a.nas_identifier, a.nas_ip) {
        (Some(id), _) => Ok(nas_identifier(id)?),
        (None, Some(ip)) => Err(ip),
        (None, None) => {
            return err(
                R::MissingField,
                "radius: neither NAS-Identifier nor NAS-IP-Address: no equipment to attribute the event to",
            )
        }
    };
    out.finish();
    Ok(Fields { kind, error_code, event_time, equipment })
}

/// The NAS-Identifier as text.
fn nas_identifier(id: &[u8]) -> Result<&str, DecodeError> {
    utf8(id).map_err(|e| DecodeError::new(R::BadUtf8, format!("radius: NAS-Identifier is not UTF-8: {e}")))
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
