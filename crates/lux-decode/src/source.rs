//! Per-source mapping of decoded fields to the canonical event (`[[transform.decode.sources]]`):
//! compiled once at `Decoder::new` into hash-map lookups, then applied to each record's fields,
//! over the built-in mapping of syslog and RADIUS or on its own for JSON, key=value and binary.

use crate::config::{SourceConfig, TimeFormat, ValueMapping};
use crate::mapping::Pseudonymiser;
use crate::text::Fields;
use crate::{err, Clear, DecodeError, Out};
use chrono::DateTime;
use lux_model::{
    AttrRef, AttrValue, DeadLetterReason as R, EquipmentKey, EventKind, Format, Millis, Outcome, SmallStr,
};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// The attribute set when an event's time is its reception time for want of one in the record.
pub const TIME_SOURCE: &str = "lux.time_source";

/// Unix times above this are read as milliseconds by `time.format = "auto"` (in seconds it
/// would be the year 5138).
const AUTO_MS_THRESHOLD: f64 = 100_000_000_000.0;
/// 9999-12-31T23:59:59Z: later times are refused.
const MAX_MS: i64 = 253_402_300_799_999;

/// A result chosen from a field through a map, or a constant.
#[derive(Debug, Clone)]
pub(crate) enum Choice<T> {
    Const(T),
    Field { field: String, map: HashMap<String, T>, default: T },
}

/// Names of results a field may carry as they are (`link_down`, `failure`).
pub(crate) trait Named: Copy {
    fn parse_name(text: &str) -> Option<Self>;
    const FALLBACK: Self;
}

impl Named for EventKind {
    fn parse_name(text: &str) -> Option<Self> {
        EventKind::parse(text)
    }
    const FALLBACK: Self = EventKind::Other;
}

impl Named for Outcome {
    fn parse_name(text: &str) -> Option<Self> {
        match text {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "info" => Some(Outcome::Info),
            _ => None,
        }
    }
    const FALLBACK: Self = Outcome::Info;
}

impl<T: Named> Choice<T> {
    fn new(cfg: &ValueMapping<T>) -> Choice<T> {
        match (&cfg.value, &cfg.field) {
            (Some(v), _) => Choice::Const(*v),
            (None, None) => Choice::Const(cfg.default.unwrap_or(T::FALLBACK)),
            (None, Some(field)) => Choice::Field {
                field: field.clone(),
                map: cfg.map.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                default: cfg.default.unwrap_or(T::FALLBACK),
            },
        }
    }

    fn choose(&self, fields: &Fields) -> T {
        match self {
            Choice::Const(v) => *v,
            Choice::Field { field, map, default } => match fields.get(field).and_then(value_text) {
                Some(text) => map.get(text.as_ref()).copied().or_else(|| T::parse_name(&text)).unwrap_or(*default),
                None => *default,
            },
        }
    }
}

/// A compiled `[[transform.decode.sources]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub format: Format,
    /// The layout's name, and its index in the decoder's layouts once resolved.
    pub layout_name: String,
    pub layout: Option<usize>,
    equipment: Option<(String, EquipmentKey)>,
    time: Option<(String, TimeFormat)>,
    kind: Option<Choice<EventKind>>,
    outcome: Option<Choice<Outcome>>,
    error_code: Option<(String, String)>,
    subscriber: Option<String>,
    message: Option<String>,
}

impl Source {
    pub fn new(cfg: &SourceConfig, layout: Option<usize>) -> Source {
        Source {
            format: cfg.format,
            layout_name: cfg.layout.clone(),
            layout,
            equipment: cfg.equipment.as_ref().map(|m| (m.field.clone(), m.key)),
            time: cfg.time.as_ref().map(|m| (m.field.clone(), m.format)),
            kind: cfg.kind.as_ref().map(Choice::new),
            outcome: cfg.outcome.as_ref().map(Choice::new),
            error_code: cfg.error_code.as_ref().map(|m| (m.field.clone(), m.prefix.clone())),
            subscriber: cfg.subscriber.as_ref().map(|m| m.field.clone()),
            message: cfg.message.as_ref().map(|m| m.field.clone()),
        }
    }
}

/// The text of a scalar field value (a string, or a number or boolean written as JSON writes
/// it); `None` for null, arrays and objects.
pub(crate) fn value_text(v: AttrRef<'_>) -> Option<Cow<'_, str>> {
    match v {
        AttrRef::Str(s) => Some(Cow::Borrowed(s)),
        AttrRef::Number(n) => Some(Cow::Owned(n.to_string())),
        AttrRef::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
        AttrRef::Json(v) => v.as_str().map(Cow::Borrowed),
    }
}

/// What a record's own decoding gives, for the mapping to complete or override.
pub(crate) struct Input<'a> {
    pub format: Format,
    pub source: &'a str,
    pub received_at: Millis,
    pub pseudonymiser: &'a Pseudonymiser,
}

/// Completes the event of a record as the source's entry `mapping` says. `base` is the clear
/// subscriber id found by a built-in decoder (syslog, RADIUS), which has filled the event;
/// without one (JSON, key=value, binary) the event's attributes hold the decoded fields and its
/// other fields are still to be set. Gives the clear subscriber id.
pub(crate) fn build<'a>(
    mapping: Option<&Source>,
    base: Option<Clear<'a>>,
    out: &mut Out<'_>,
    input: &Input<'_>,
) -> Result<Clear<'a>, DecodeError> {
    let Some(m) = mapping else {
        return match base {
            Some(clear) => Ok(clear),
            None => err(
                R::MissingField,
                format!(
                    "no equipment id: source {:?} has no [[transform.decode.sources]] entry mapping `equipment` \
                     (a {} record has no built-in mapping)",
                    input.source,
                    input.format.as_str()
                ),
            ),
        };
    };
    let has_base = base.is_some();
    let base_clear = base.flatten();
    let ev = &mut *out.ev;
    let attrs = &mut ev.attributes;
    let absent = |what: &str, field: &str| {
        DecodeError::new(
            R::MissingField,
            format!("no {what}: the record has no field {field:?} (source {:?})", input.source),
        )
    };
    match &m.equipment {
        Some((field, key)) => {
            let value = attrs.remove(field).ok_or_else(|| absent("equipment id", field))?;
            let text = value_text(value.as_ref()).map(SmallStr::from).filter(|t| !t.is_empty()).ok_or_else(|| {
                DecodeError::new(
                    R::BadValue,
                    format!("equipment id: field {field:?} is {}, not a non-empty text or number", value.to_value()),
                )
            })?;
            ev.equipment_id = text;
            ev.equipment_key = *key;
        }
        None if has_base => {}
        None => {
            return err(
                R::MissingField,
                format!(
                    "no equipment id: source {:?} has no [[transform.decode.sources]] entry mapping `equipment`",
                    input.source
                ),
            )
        }
    }
    let received = |attrs: &mut lux_model::Attributes| {
        attrs.insert(SmallStr::from_static(TIME_SOURCE), SmallStr::from_static("received_at"));
        input.received_at
    };
    match &m.time {
        Some((field, format)) => match attrs.remove(field) {
            Some(value) => {
                let value = Value::from(value);
                ev.event_time = parse_time(&value, *format).map_err(|why| {
                    DecodeError::new(R::BadValue, format!("event time: field {field:?} ({value}): {why}"))
                })?;
            }
            // Absent: the built-in decoder's time, else the reception time.
            None if has_base => {}
            None => ev.event_time = received(attrs),
        },
        None if has_base => {}
        None => ev.event_time = received(attrs),
    }
    match &m.kind {
        Some(choice) => ev.kind = choice.choose(attrs),
        None if has_base => {}
        None => ev.kind = EventKind::Other,
    }
    match &m.outcome {
        Some(choice) => ev.outcome = choice.choose(attrs),
        None if has_base => {}
        None => ev.outcome = Outcome::Info,
    }
    let mapped_code = match &m.error_code {
        Some((field, prefix)) => attrs
            .get(field)
            .and_then(value_text)
            .filter(|t| !t.is_empty())
            .map(|code| SmallStr::concat(&[prefix, &code])),
        None => None,
    };
    if mapped_code.is_some() || !has_base {
        ev.error_code = mapped_code;
    }
    let mut subscriber_clear = None;
    if let Some(field) = &m.subscriber {
        if let Some(value) = attrs.remove(field) {
            subscriber_clear =
                value_text(value.as_ref()).filter(|t| !t.is_empty()).map(|t| Cow::Owned(t.into_owned().into_bytes()));
        }
    }
    let mapped_subscriber = subscriber_clear.is_some();
    if subscriber_clear.is_none() {
        subscriber_clear = base_clear;
    }
    let message = match &m.message {
        Some(field) => attrs.remove(field).and_then(|v| match v {
            AttrValue::Str(s) => Some(String::from(s)),
            other => value_text(other.as_ref()).map(Cow::into_owned),
        }),
        None => None,
    };
    // The clear subscriber id must appear nowhere in the event. The built-in decoders redact
    // their own fields; the mapped fields are redacted here.
    let redact = subscriber_clear
        .as_deref()
        .and_then(|c| std::str::from_utf8(c).ok())
        .filter(|_| mapped_subscriber || !has_base)
        .map(|clear| (clear, input.pseudonymiser.pseudonym(clear.as_bytes())));
    if let Some((clear, pseudonym)) = &redact {
        attrs.replace_in_values(clear, pseudonym);
    }
    if let Some(message) = message {
        out.message_owned(message);
    }
    if let (Some((clear, pseudonym)), Some(m)) = (&redact, out.ev.message.as_mut()) {
        if m.contains(clear) {
            *m = m.replace(clear, pseudonym);
        }
    }
    Ok(subscriber_clear)
}

/// A time field's value as milliseconds since the epoch.
pub(crate) fn parse_time(value: &Value, format: TimeFormat) -> Result<Millis, String> {
    let number = match value {
        Value::Number(n) => Some(n.as_f64().ok_or("not a finite number")?),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') => {
            Some(s.parse::<f64>().map_err(|_| format!("{s:?} is not a number"))?)
        }
        Value::String(_) => None,
        other => {
            return Err(format!("a time cannot be {}", if other.is_null() { "null" } else { "a list or an object" }))
        }
    };
    let ms = match (number, format) {
        (Some(n), TimeFormat::UnixMs) => n,
        (Some(n), TimeFormat::UnixS) => n * 1000.0,
        (Some(n), TimeFormat::Auto) if n.abs() > AUTO_MS_THRESHOLD => n,
        (Some(n), TimeFormat::Auto) => n * 1000.0,
        (Some(_), TimeFormat::Rfc3339) => return Err("a number, not RFC 3339 text".into()),
        // Binary layouts decode their unix_s / unix_ms fields to RFC 3339: any format accepts it.
        (None, _) => {
            let text = value.as_str().unwrap_or("");
            return DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_millis())
                .map_err(|e| format!("not RFC 3339 ({e})"))
                .and_then(check_range);
        }
    };
    if !ms.is_finite() {
        return Err("not a finite number".into());
    }
    let ms = ms.round();
    if ms.abs() > MAX_MS as f64 {
        return Err("out of range (after the year 9999)".into());
    }
    check_range(ms as i64)
}

fn check_range(ms: Millis) -> Result<Millis, String> {
    if (0..=MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err("out of range (before 1970 or after 9999)".into())
    }
}
