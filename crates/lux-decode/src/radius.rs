//! RADIUS accounting decoding (RFC 2866 Accounting-Request): header and attribute length checks,
//! every standard attribute of RFC 2865/2866/2869 decoded by name and type through the
//! dictionary, Vendor-Specific attributes through the vendor dictionaries (unknown ones kept as
//! hex), mapped to a session event. The Request Authenticator is not verified here: the
//! collector does it with the shared secret before the record reaches the log.
//!
//! Two paths give the same events and errors: the generic one ([`decode_generic`]: attribute by
//! attribute in packet order, through the dictionary, then sorted by name) takes every packet;
//! a decoder's own [`Plans`] take the packets whose attribute types come in an order seen
//! before, reading their values straight into the event's attributes in name order (a NAS
//! sends a few such orders, one per kind of packet). The test
//! `planned_packets_decode_as_the_generic_path_decodes_them` holds the two together.

use crate::config::RadiusType;
use crate::cursor::utf8;
use crate::dictionary::{standard, value_label, value_name, Dictionary};
use crate::mapping::{ipv4_str, ipv4_text};
use crate::{err, Clear, DecodeError, Out};
use lux_model::{
    format_rfc3339_millis, AttrText, AttributeList, DeadLetterReason as R, EquipmentKey, EventKind, Millis, Outcome,
    Scalar, SmallStr, StaticName,
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

/// Decodes an Accounting-Request into `out`. With `plans` enabled (a decoder's own, see
/// [`Plans`]), a packet whose attribute types come in an order seen lately is decoded by that
/// order's plan; any other packet, and any packet a plan cannot take, by [`decode_generic`].
pub(crate) fn decode<'a>(
    bytes: &'a [u8],
    received_at: Millis,
    dict: &Dictionary,
    out: &mut Out<'_>,
    plans: &mut Plans,
) -> Result<Clear<'a>, DecodeError> {
    if !plans.enabled {
        return decode_generic(bytes, received_at, dict, out);
    }
    // The header is checked by the generic path whenever it runs; a plan needs only a packet of
    // the right code and length, framed into attributes.
    let Plans { frame, known, .. } = plans;
    let framed = match (bytes.first(), bytes.get(1), packet_length(bytes)) {
        (Some(&ACCOUNTING_REQUEST), Some(&identifier), Ok(length)) => {
            bytes.get(..length).filter(|packet| frame.read(packet)).map(|packet| (packet, identifier))
        }
        _ => None,
    };
    let Some((packet, identifier)) = framed else {
        return decode_generic(bytes, received_at, dict, out);
    };
    match known.find(frame) {
        Some(Some(plan)) => match plan.run(frame, packet, identifier, received_at, out) {
            Some(clear) => Ok(clear),
            // A value the plan does not expect (a length, a label, a text): the generic path
            // decodes it, or says what is wrong with it.
            None => decode_generic(bytes, received_at, dict, out),
        },
        Some(None) => decode_generic(bytes, received_at, dict, out),
        None => {
            let clear = decode_generic(bytes, received_at, dict, out)?;
            if known.seen_before(frame) {
                known.learn(frame, packet, identifier, received_at, out.ev, &clear);
            }
            Ok(clear)
        }
    }
}

/// Decodes an Accounting-Request attribute by attribute, in packet order, then sorts them: every
/// packet, every error.
fn decode_generic<'a>(
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
    set_fields(out, fields);
    Ok(user_name.map(Cow::Borrowed))
}

/// Writes the event's fields (its attributes are in place already).
fn set_fields(out: &mut Out<'_>, fields: Fields<'_>) {
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
    let mut out = a.out;
    out.push_replacing("radius.identifier", identifier);
    let Some(status) = a.status else {
        return err(R::MissingField, "radius: no Acct-Status-Type");
    };
    let kind = session_kind(status);
    out.push_replacing("Acct-Status-Type", status);
    out.push_replacing("Acct-Status-Type-Name", status_name(status));

    // Octet counters wrap at 2^32; the gigawords count the wraps (RFC 2869 5.1, 5.2).
    for (i, name) in [(0usize, "Acct-Input-Octets"), (1, "Acct-Output-Octets")] {
        let low = a.octets.get(i).copied().flatten();
        let high = a.octets.get(i + 2).copied().flatten();
        if low.is_some() || high.is_some() {
            out.push_replacing(name, octets(low, high));
        }
    }
    let error_code = a.terminate_cause.map(terminate_error_code);
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

/// The event kind of an Acct-Status-Type.
fn session_kind(status: u32) -> EventKind {
    match status {
        1 => EventKind::SessionStart,
        2 => EventKind::SessionStop,
        3 => EventKind::SessionInterim,
        // The NAS (re)started or is shutting down: every session on it ended.
        7 | 8 => EventKind::Reboot,
        _ => EventKind::Other,
    }
}

/// The `Acct-Status-Type-Name` of an Acct-Status-Type.
fn status_name(status: u32) -> &'static str {
    value_name(attr::ACCT_STATUS_TYPE, status).unwrap_or("Other")
}

/// The event's error code for an Acct-Terminate-Cause.
fn terminate_error_code(cause: u32) -> SmallStr {
    SmallStr::concat(&["RADIUS-TC-", &SmallStr::decimal(u64::from(cause))])
}

/// An octet counter with its gigawords (RFC 2869 5.1, 5.2: the counter wraps at 2^32).
fn octets(low: Option<u32>, high: Option<u32>) -> u64 {
    (u64::from(high.unwrap_or(0)) << 32) | u64::from(low.unwrap_or(0))
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

/// Attributes a packet may have for its order of types to be planned.
const PLANNED_ATTRIBUTES: usize = 32;

/// Orders of attribute types planned, and orders seen once remembered (a NAS sends a few: one
/// per kind of packet).
const PLANS: usize = 16;

/// A packet's attributes, framed: their types in packet order (the packet's shape) and where
/// each value lies.
#[derive(Debug)]
struct Frame {
    count: usize,
    types: [u8; PLANNED_ATTRIBUTES],
    /// Each value's first byte in the packet, and its length.
    values: [(u16, u8); PLANNED_ATTRIBUTES],
}

impl Default for Frame {
    fn default() -> Self {
        Frame { count: 0, types: [0; PLANNED_ATTRIBUTES], values: [(0, 0); PLANNED_ATTRIBUTES] }
    }
}

impl Frame {
    /// Frames `packet`'s attributes; `false` when an attribute's length is wrong or there are
    /// more than [`PLANNED_ATTRIBUTES`] (the generic path then decodes the packet or says what
    /// is wrong). The types past the last attribute are zero, so that two frames' types compare
    /// whole.
    #[inline]
    fn read(&mut self, packet: &[u8]) -> bool {
        self.count = 0;
        self.types = [0; PLANNED_ATTRIBUTES];
        let mut pos = HEADER_LEN;
        while let (Some(&t), Some(&len)) = (packet.get(pos), packet.get(pos + 1)) {
            let (Some(slot), Some(value), Ok(start)) =
                (self.types.get_mut(self.count), self.values.get_mut(self.count), u16::try_from(pos + 2))
            else {
                return false;
            };
            if len < 2 || pos + usize::from(len) > packet.len() {
                return false;
            }
            *slot = t;
            *value = (start, len - 2);
            self.count += 1;
            pos += usize::from(len);
        }
        pos == packet.len()
    }

    /// The value of attribute `i` (packet order).
    #[inline]
    fn value<'a>(&self, packet: &'a [u8], i: u8) -> &'a [u8] {
        let (start, len) = self.values.get(usize::from(i)).copied().unwrap_or_default();
        let start = usize::from(start);
        packet.get(start..start + usize::from(len)).unwrap_or_default()
    }

    /// The 4-byte integer value of attribute `i`, if it is 4 bytes long.
    #[inline]
    fn int(&self, packet: &[u8], i: u8) -> Option<u32> {
        <[u8; 4]>::try_from(self.value(packet, i)).ok().map(u32::from_be_bytes)
    }
}

/// The plans of the orders of attribute types seen lately, each `None` when that order cannot
/// be planned (a Vendor-Specific or unknown attribute, a repeated type, a packet the generic
/// path refused): a decoder's own, like its pseudonym cache.
///
/// Packets of one kind from one NAS carry the same attributes in the same order; only their
/// values change. A plan, made from the first such packet, lists the event's attributes in name
/// order, each with where its value comes from (an attribute of the packet, by index, or a
/// value the mapping derives), and the attributes the event's fields come from. A packet of
/// that order is then decoded by reading its values into the attributes in that order: no
/// dictionary look-up, no duplicate check, no sort. A plan is kept only if it decoded the
/// packet it was made from exactly as the generic path did; a value it does not expect (a
/// length that does not fit the type, an integer whose value name comes or goes, an empty or
/// non-UTF-8 text where one is needed) sends the packet to the generic path.
#[derive(Debug, Default)]
pub(crate) struct Plans {
    enabled: bool,
    /// The packet being decoded, framed.
    frame: Frame,
    known: KnownOrders,
}

/// The orders of attribute types seen lately, and their plans.
#[derive(Debug, Default)]
struct KnownOrders {
    slots: Vec<PlanSlot>,
    /// The slot the next new plan takes once every slot is used.
    next: usize,
    /// Orders seen once, not planned yet (as (count, [`words`])): an order is planned the
    /// second time it is seen, so that a source of more orders than there are slots costs a
    /// look-up per packet, not a plan.
    seen_once: Vec<(usize, [u128; 2])>,
    /// The entry of `seen_once` the next order takes once it is full.
    next_seen: usize,
}

#[derive(Debug)]
struct PlanSlot {
    count: usize,
    /// The attribute types, as [`words`].
    words: [u128; 2],
    plan: Option<Plan>,
}

/// Attribute types as two words: compared in two steps, with no `memcmp` call.
#[inline]
fn words(types: &[u8; PLANNED_ATTRIBUTES]) -> [u128; 2] {
    let (low, high) = types.split_at(PLANNED_ATTRIBUTES / 2);
    let word = |half: &[u8]| <[u8; 16]>::try_from(half).map_or(0, u128::from_ne_bytes);
    [word(low), word(high)]
}

impl Plans {
    /// Plans that are made and used (the default ones are not: a decoder shared between
    /// threads decodes every packet by the generic path).
    pub(crate) fn enabled() -> Plans {
        Plans { enabled: true, ..Plans::default() }
    }
}

impl KnownOrders {
    /// The slot of the frame's order: `None` if it is not remembered.
    #[inline]
    fn find(&self, frame: &Frame) -> Option<Option<&Plan>> {
        let types = words(&frame.types);
        self.slots.iter().find(|slot| slot.count == frame.count && slot.words == types).map(|slot| slot.plan.as_ref())
    }

    /// Whether the frame's order was seen lately (then it is planned); remembers it otherwise.
    fn seen_before(&mut self, frame: &Frame) -> bool {
        let order = (frame.count, words(&frame.types));
        if self.seen_once.contains(&order) {
            return true;
        }
        remember(&mut self.seen_once, &mut self.next_seen, order);
        false
    }

    /// Makes and checks the plan of the frame's order, from a packet the generic path decoded
    /// into `decoded` (giving `clear`), and remembers it.
    fn learn(
        &mut self,
        frame: &Frame,
        packet: &[u8],
        identifier: u8,
        received_at: Millis,
        decoded: &lux_model::Event,
        clear: &Clear<'_>,
    ) {
        let plan = Plan::new(frame, packet).filter(|plan| {
            let mut ev = lux_model::Event::default();
            let (mut spare, mut days) = (String::new(), crate::timestamp::DayCache::default());
            let mut out = Out { ev: &mut ev, spare: &mut spare, days: &mut days };
            let ran = plan.run(frame, packet, identifier, received_at, &mut out);
            ran.as_ref() == Some(clear)
                && ev.attributes == decoded.attributes
                && ev.equipment_id == decoded.equipment_id
                && ev.equipment_key == decoded.equipment_key
                && ev.event_time == decoded.event_time
                && ev.kind == decoded.kind
                && ev.outcome == decoded.outcome
                && ev.error_code == decoded.error_code
                && ev.message == decoded.message
        });
        remember(&mut self.slots, &mut self.next, PlanSlot { count: frame.count, words: words(&frame.types), plan });
    }
}

/// Adds `item` to `ring`, which holds at most [`PLANS`] items: once full, in place of the
/// oldest (at `next`).
fn remember<T>(ring: &mut Vec<T>, next: &mut usize, item: T) {
    if ring.len() < PLANS {
        ring.push(item);
    } else if let Some(old) = ring.get_mut(*next) {
        *old = item;
        *next = (*next + 1) % PLANS;
    }
}

/// One attribute of the event, in a plan: its name and where its value comes from.
#[derive(Debug, Clone, Copy)]
struct Step {
    name: StaticName,
    origin: Origin,
}

/// Where an attribute's value comes from. `i` is an attribute's index in the packet.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// Attribute `i` of type `t`, typed as its dictionary says; an integer with a value name
    /// when `named` (then a [`Origin::ValueName`] step follows somewhere), without one otherwise.
    Value {
        i: u8,
        t: u8,
        kind: RadiusType,
        named: bool,
    },
    /// The value name of the integer attribute `i` of type `t` (`Acct-Terminate-Cause-Name`).
    ValueName {
        i: u8,
        t: u8,
    },
    /// `Acct-Status-Type` and `Acct-Status-Type-Name`.
    Status,
    StatusName,
    /// `Acct-Input-Octets` or `Acct-Output-Octets`, from the attributes of the counter and its
    /// gigawords.
    Octets {
        low: Option<u8>,
        high: Option<u8>,
    },
    /// `radius.identifier`: the packet's identifier.
    Identifier,
    /// `radius.time_source`: `received_at` (the packet has no Event-Timestamp).
    TimeSource,
}

impl Step {
    fn new(name: &'static str, origin: Origin) -> Step {
        Step { name: StaticName::new(name), origin }
    }
}

/// How to decode the packets of one order of attribute types (see [`Plans`]).
#[derive(Debug)]
struct Plan {
    /// The event's attributes, in name order.
    steps: Vec<Step>,
    /// The attributes (packet indexes) the event's fields come from.
    user_name: Option<u8>,
    nas_identifier: Option<u8>,
    nas_ip: Option<u8>,
    status: u8,
    terminate_cause: Option<u8>,
    event_timestamp: Option<u8>,
}

impl Plan {
    /// The plan of the frame's order, as [`decode_generic`] decodes `packet` (of that order):
    /// `None` if the order cannot be planned.
    fn new(frame: &Frame, packet: &[u8]) -> Option<Plan> {
        use attr::*;
        let (mut user_name, mut nas_identifier, mut nas_ip, mut status) = (None, None, None, None);
        let (mut terminate_cause, mut event_timestamp) = (None, None);
        let mut counters: [Option<u8>; 4] = [None; 4];
        let mut steps = Vec::with_capacity(frame.count + 4);
        let mut seen = Seen::default();
        for (i, &t) in frame.types.iter().take(frame.count).enumerate() {
            let i = u8::try_from(i).ok()?;
            let def = standard(t)?;
            if t == VENDOR_SPECIFIC || seen.mark(t) {
                return None;
            }
            let value = |named| Step::new(def.name, Origin::Value { i, t, kind: def.kind, named });
            match t {
                USER_NAME => user_name = Some(i),
                NAS_IDENTIFIER => nas_identifier = Some(i),
                NAS_IP_ADDRESS => {
                    nas_ip = Some(i);
                    steps.push(value(false));
                }
                ACCT_STATUS_TYPE => status = Some(i),
                EVENT_TIMESTAMP => event_timestamp = Some(i),
                ACCT_INPUT_OCTETS => counters[0] = Some(i),
                ACCT_OUTPUT_OCTETS => counters[1] = Some(i),
                ACCT_INPUT_GIGAWORDS => counters[2] = Some(i),
                ACCT_OUTPUT_GIGAWORDS => counters[3] = Some(i),
                _ => {
                    if t == ACCT_TERMINATE_CAUSE {
                        terminate_cause = Some(i);
                    }
                    let named = def.kind == RadiusType::Integer && value_name(t, frame.int(packet, i)?).is_some();
                    steps.push(value(named));
                    if named {
                        steps.push(Step::new(value_label(t)?, Origin::ValueName { i, t }));
                    }
                }
            }
        }
        let status = status?;
        if nas_identifier.is_none() && nas_ip.is_none() {
            return None;
        }
        steps.extend([
            Step::new("radius.identifier", Origin::Identifier),
            Step::new("Acct-Status-Type", Origin::Status),
            Step::new("Acct-Status-Type-Name", Origin::StatusName),
        ]);
        let [input, output, input_giga, output_giga] = counters;
        for (name, low, high) in [("Acct-Input-Octets", input, input_giga), ("Acct-Output-Octets", output, output_giga)]
        {
            if low.is_some() || high.is_some() {
                steps.push(Step::new(name, Origin::Octets { low, high }));
            }
        }
        if event_timestamp.is_none() {
            steps.push(Step::new("radius.time_source", Origin::TimeSource));
        }
        let name = |step: &Step| step.name.as_str();
        steps.sort_by(|a, b| name(a).cmp(name(b)));
        if steps.windows(2).any(|pair| pair.first().map(name) == pair.get(1).map(name)) {
            return None;
        }
        Some(Plan { steps, user_name, nas_identifier, nas_ip, status, terminate_cause, event_timestamp })
    }

    /// Decodes `packet` (of the plan's order) into `out`; `None` (with `out` to be overwritten)
    /// when a value is not what the plan expects.
    #[inline]
    fn run<'a>(
        &self,
        frame: &Frame,
        packet: &'a [u8],
        identifier: u8,
        received_at: Millis,
        out: &mut Out<'_>,
    ) -> Option<Clear<'a>> {
        let int = |i: u8| frame.int(packet, i);
        // Texts the generic path requires non-empty.
        let text = |i: u8| Some(frame.value(packet, i)).filter(|v| !v.is_empty());
        let status = int(self.status)?;
        let terminate_cause = match self.terminate_cause {
            Some(i) => Some(int(i)?),
            None => None,
        };
        let event_time = match self.event_timestamp {
            Some(i) => i64::from(int(i)?) * 1000,
            None => received_at,
        };
        let user_name = match self.user_name {
            Some(i) => Some(text(i)?),
            None => None,
        };
        let nas_ip = match self.nas_ip {
            Some(i) => Some(Ipv4Addr::from(int(i)?)),
            None => None,
        };
        let equipment = match (self.nas_identifier, nas_ip) {
            (Some(i), _) => Ok(utf8(text(i)?).ok()?),
            (None, Some(ip)) => Err(ip),
            (None, None) => return None,
        };
        let mut list = out.attribute_list();
        for step in &self.steps {
            let name = step.name;
            match step.origin {
                Origin::Value { i, t, kind, named } => {
                    let value = match typed_value(kind, frame.value(packet, i)).ok()? {
                        Typed::Int(v) => {
                            if value_name(t, v).is_some() != named {
                                return None;
                            }
                            Scalar::from(v)
                        }
                        typed => typed.into_scalar(&mut list),
                    };
                    list.push_static(name, value);
                }
                Origin::ValueName { i, t } => list.push_static(name, value_name(t, int(i)?)?),
                Origin::Status => list.push_static(name, status),
                Origin::StatusName => list.push_static(name, status_name(status)),
                Origin::Octets { low, high } => {
                    let part = |i: Option<u8>| match i {
                        Some(i) => int(i).map(Some),
                        None => Some(None),
                    };
                    list.push_static(name, octets(part(low)?, part(high)?));
                }
                Origin::Identifier => list.push_static(name, identifier),
                Origin::TimeSource => list.push_static(name, "received_at"),
            }
        }
        // The steps are in name order (the plan decoded its first packet as the generic path did).
        list.finish_in_order();
        let error_code = terminate_cause.map(terminate_error_code);
        set_fields(out, Fields { kind: session_kind(status), error_code, event_time, equipment });
        Some(user_name.map(Cow::Borrowed))
    }
}
