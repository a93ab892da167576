//! Syslog decoding: RFC 5424 and RFC 3164 (BSD, with the Cisco IOS variants: sequence numbers,
//! `*` unsynchronised clocks, milliseconds, `%FACILITY-SEVERITY-MNEMONIC:` tags), detected per
//! record, mapped to events as the reference-and-traffic contract says.

use crate::cursor::{ascii_number, utf8, Cursor};
use crate::mapping::{code_kind, find_subscriber, ip_text, msgid_kind, redact, Pseudonymiser};
use crate::search::{each_occurrence, sd_name_len, spaces_in_printable, value_end, Needles};
use crate::{err, Clear, DecodeError, Out};
use chrono::{FixedOffset, NaiveDate, TimeZone};
use lux_model::{AttrText, AttributeList, DeadLetterReason as R, EquipmentKey, EventKind, Millis, Outcome, SmallStr};
use std::borrow::Cow;
use std::net::IpAddr;

/// What the syslog parser needs besides the bytes.
pub(crate) struct Context<'a> {
    pub timezone: FixedOffset,
    pub future_tolerance_ms: i64,
    pub received_at: Millis,
    pub peer: Option<&'a str>,
    pub pseudonymiser: &'a Pseudonymiser,
}

/// RFC 3164's default priority when a record has none: user.notice.
const DEFAULT_PRI: u64 = 13;
const BOM: &[u8] = b"\xEF\xBB\xBF";

pub(crate) fn decode<'a>(bytes: &'a [u8], ctx: &Context<'_>, out: &mut Out<'_>) -> Result<Clear<'a>, DecodeError> {
    // Stream framings leave a trailing newline (and some senders a NUL): not part of the record.
    let mut end = bytes.len();
    while end > 0 && matches!(bytes.get(end - 1), Some(b'\n' | b'\r' | b'\0')) {
        end -= 1;
    }
    let bytes = bytes.get(..end).unwrap_or(&[]);
    if bytes.is_empty() {
        return err(R::Truncated, "syslog: the record is empty (only line terminators)");
    }
    // `<PRI>1 `: the common RFC 5424 record first, before the full parser checks anything.
    if let Some((pri, at)) = pri_and_version_1(bytes) {
        if let Some(clear) = rfc5424_common(bytes, at, pri, out) {
            return Ok(clear);
        }
    }
    let mut cur = Cursor::new(bytes);
    let pri = parse_pri(&mut cur)?;
    // RFC 5424: PRI then VERSION (1-2 digits, no leading zero) then SP.
    if pri.is_some() {
        let mark = cur.mark();
        let version = cur.take_while(|b| b.is_ascii_digit());
        if !version.is_empty() && version.len() <= 2 && version.first() != Some(&b'0') && cur.peek() == Some(b' ') {
            if version != b"1" {
                return err(
                    R::BadValue,
                    format!(
                        "syslog: unsupported RFC 5424 VERSION {} (only 1 exists)",
                        String::from_utf8_lossy(version)
                    ),
                );
            }
            cur.bump();
            return rfc5424(&mut cur, pri.unwrap_or(DEFAULT_PRI), ctx, out);
        }
        cur.reset(mark);
    }
    rfc3164(&mut cur, pri, ctx, out)
}

/// The PRI of a record starting `<PRI>1 ` ([`parse_pri`]'s rule: 1-3 digits, at most 191) and
/// where its header goes on.
fn pri_and_version_1(bytes: &[u8]) -> Option<(u64, usize)> {
    let close = bytes.iter().take(5).position(|b| *b == b'>')?;
    let digits = bytes.get(1..close)?;
    if bytes.first() != Some(&b'<') || digits.is_empty() || bytes.get(close + 1..close + 3)? != b"1 " {
        return None;
    }
    // 1 to 3 digits (`close` is at most 4).
    let mut pri = 0u64;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        pri = pri * 10 + u64::from(d - b'0');
    }
    (pri <= 191).then_some((pri, close + 3))
}

/// `<PRI>` if present: 1-3 digits, at most 191.
fn parse_pri(cur: &mut Cursor<'_>) -> Result<Option<u64>, DecodeError> {
    if !cur.eat(b'<') {
        return Ok(None);
    }
    let digits = cur.take_while(|b| b.is_ascii_digit());
    if cur.is_empty() {
        return err(R::Truncated, "syslog: the record ends inside PRI");
    }
    if digits.is_empty() || digits.len() > 3 || !cur.eat(b'>') {
        return err(R::BadValue, format!("syslog: bad PRI at byte {}: expected '<' 1 to 3 digits '>'", cur.pos()));
    }
    match ascii_number(digits) {
        Some(pri) if pri <= 191 => Ok(Some(pri)),
        _ => err(R::BadValue, format!("syslog: PRI {} is out of range (0-191)", String::from_utf8_lossy(digits))),
    }
}

fn pri_attributes(pri: u64, attrs: &mut AttributeList) {
    attrs.push_replacing("syslog.facility", pri / 8);
    attrs.push_replacing("syslog.severity", pri % 8);
}

/// The `subscriber=` value of `text`, borrowed from the record when `text` is.
fn subscriber_in<'a>(text: &Cow<'a, str>) -> Option<Cow<'a, str>> {
    match text {
        Cow::Borrowed(t) => find_subscriber(t).map(Cow::Borrowed),
        Cow::Owned(t) => find_subscriber(t).map(|s| Cow::Owned(s.to_owned())),
    }
}

/// The clear subscriber id as bytes, still borrowed when it was.
fn clear_bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
        Cow::Owned(t) => Cow::Owned(t.into_bytes()),
    }
}

/// The event's message: `text` redacted, in one allocation at most; `None` when empty.
fn message_of(text: Cow<'_, str>, clear: Option<&str>, pseudonymiser: &Pseudonymiser) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let redacted = match redact(&text, clear, pseudonymiser) {
        Cow::Owned(r) => Some(r),
        Cow::Borrowed(_) => None,
    };
    Some(redacted.unwrap_or_else(|| text.into_owned())).filter(|m| !m.is_empty())
}

/// The header fields of RFC 5424 after VERSION, with their maximum lengths.
const HEADER_FIELDS: [(&str, usize); 5] =
    [("TIMESTAMP", 64), ("HOSTNAME", 255), ("APP-NAME", 48), ("PROCID", 128), ("MSGID", 32)];

/// A byte range of the record.
type Span = (usize, usize);

/// The five header fields of RFC 5424 (TIMESTAMP to MSGID) from byte `at`, each printable
/// US-ASCII up to the next SP, in one pass over the bytes; and where the structured data starts.
fn header_fields(bytes: &[u8], mut at: usize) -> Result<([Span; 5], usize), DecodeError> {
    let mut fields = [(0, 0); 5];
    for (slot, (name, max)) in fields.iter_mut().zip(HEADER_FIELDS) {
        let start = at;
        let mut bad = None;
        loop {
            match bytes.get(at) {
                None => {
                    // MSGID is followed by SP then STRUCTURED-DATA: the record may not end in any.
                    return err(
                        R::Truncated,
                        format!(
                            "syslog RFC 5424: the record ends in {name} (byte {start}), before the structured data"
                        ),
                    );
                }
                Some(b' ') => break,
                Some(b) => {
                    if bad.is_none() && !(33..=126).contains(b) {
                        bad = Some((at, *b));
                    }
                    at += 1;
                }
            }
        }
        if at == start {
            return err(R::BadValue, format!("syslog RFC 5424: empty {name} at byte {start} (two spaces?)"));
        }
        if at - start > max {
            return err(
                R::BadValue,
                format!("syslog RFC 5424: {name} at byte {start} is {} bytes long (at most {max})", at - start),
            );
        }
        if let Some((i, b)) = bad {
            return err(
                R::BadValue,
                format!("syslog RFC 5424: {name} has a byte 0x{b:02x} that is not printable US-ASCII at byte {i}"),
            );
        }
        *slot = (start, at);
        at += 1;
    }
    Ok((fields, at))
}

fn nil(field: &str) -> Option<&str> {
    (field != "-").then_some(field)
}

/// The text of a span already checked to be printable US-ASCII (header fields, SD-NAMEs).
fn ascii<'a>(cur: &Cursor<'a>, (start, end): Span) -> &'a str {
    cur.text_of(start, end).unwrap_or_default()
}

fn rfc5424<'a>(cur: &mut Cursor<'a>, pri: u64, ctx: &Context<'_>, out: &mut Out<'_>) -> Result<Clear<'a>, DecodeError> {
    let ts_start = cur.pos();
    let ([timestamp, hostname, app_name, procid, msgid], sd_start) = header_fields(cur.buf(), ts_start)?;
    let (timestamp, hostname, app_name, procid, msgid) =
        (ascii(cur, timestamp), ascii(cur, hostname), ascii(cur, app_name), ascii(cur, procid), ascii(cur, msgid));
    cur.reset(sd_start);

    let event_time = match nil(timestamp) {
        Some(ts) => crate::timestamp::rfc3339_millis(ts).map_err(|e| {
            DecodeError::new(
                R::BadValue,
                format!("syslog RFC 5424: TIMESTAMP {ts:?} at byte {ts_start} is not RFC 3339: {e}"),
            )
        })?,
        // RFC 5424 6.2.3: no time from the originator; the reception time is the best known.
        None => ctx.received_at,
    };
    let Some(hostname) = nil(hostname) else {
        return err(
            R::MissingField,
            "syslog RFC 5424: HOSTNAME is the NILVALUE '-': no equipment to attribute the event to",
        );
    };
    let msgid = nil(msgid);

    let mut params = Params::default();
    structured_data(cur, &mut params)?;
    // The message's span, and its text (borrowed unless it is not UTF-8).
    let message = if cur.is_empty() {
        None
    } else if !cur.eat(b' ') {
        return err(R::BadValue, format!("syslog RFC 5424: expected a space before MSG at byte {}", cur.pos()));
    } else {
        let start = cur.pos();
        let msg = cur.take_rest();
        let end = start + msg.len();
        Some(match msg.strip_prefix(BOM) {
            Some(_) => (
                start + BOM.len(),
                Cow::Borrowed(cur.text_of(start + BOM.len(), end).map_err(|e| {
                    DecodeError::new(
                        R::BadUtf8,
                        format!("syslog RFC 5424: MSG starts with a BOM but is not UTF-8: {e}"),
                    )
                })?),
            ),
            None => match cur.text_of(start, end) {
                Ok(text) => (start, Cow::Borrowed(text)),
                Err(_) => (start, String::from_utf8_lossy(msg)),
            },
        })
    };

    let subscriber = params
        .iter()
        .filter(|p| ascii(cur, p.name) == "subscriber")
        .map(|p| p.value(cur))
        .find(|v| !v.is_empty())
        .or_else(|| message.as_ref().and_then(|(_, m)| subscriber_in(m)));
    let clear = subscriber.as_deref();
    // One scan of the record after the header for what redaction looks for: the fields it
    // hits (rarely any) are redacted, every other one is borrowed as it is.
    let hits = Hits::find(cur.buf(), sd_start, clear);
    let mut code: Option<SmallStr> = None;
    // Names pushed in their order (`sd.*`, then `syslog.*` alphabetically): the list is sorted
    // already unless the parameters were not.
    let mut attrs = out.attribute_list();
    for p in params.iter() {
        let name = ascii(cur, p.name);
        if name == "subscriber" {
            continue;
        }
        let value = if p.escaped || hits.within(p.value) {
            let value = p.value(cur);
            let redacted = redact(&value, clear, ctx.pseudonymiser);
            attrs.text(&redacted)
        } else {
            attrs.text(cur.text_of(p.value.0, p.value.1).unwrap_or_default())
        };
        if name == "code" && code.is_none() {
            code = Some(SmallStr::new(attrs.str(value))).filter(|c| !c.is_empty());
        }
        // A repeated name is kept under its SD-ID (`sd.ID.NAME`), unless that is taken too.
        let short = attrs.concat(&["sd.", name]);
        if !attrs.contains(short) {
            attrs.push(short, value);
        } else {
            let long = attrs.concat(&["sd.", ascii(cur, p.sd_id), ".", name]);
            if !attrs.contains(long) {
                attrs.push(long, value);
            }
        }
    }
    let header = Header {
        app_name: nil(app_name).map(|a| attrs.text(a)),
        msgid: msgid.map(|m| attrs.text(m)),
        procid: nil(procid).map(|p| attrs.text(p)),
    };
    header.push(&mut attrs, pri);
    if nil(timestamp).is_none() {
        attrs.push("syslog.time_source", "received_at");
    }
    attrs.finish();
    match message {
        Some((start, text)) => {
            let end = start + text.len();
            if matches!(text, Cow::Borrowed(_)) && !hits.within((start, end)) {
                out.message(&text);
            } else {
                out.message_owned(message_of(text, clear, ctx.pseudonymiser).unwrap_or_default());
            }
        }
        None => out.no_message(),
    }
    set_rfc5424(out.ev, hostname, event_time, msgid, code);
    Ok(subscriber.map(clear_bytes))
}

/// The `syslog.*` texts of an RFC 5424 header that are not NILVALUE, in the attributes' buffer.
struct Header {
    app_name: Option<AttrText>,
    msgid: Option<AttrText>,
    procid: Option<AttrText>,
}

impl Header {
    /// Pushes the `syslog.*` attributes, in name order (after the `sd.*` ones).
    fn push(self, attrs: &mut AttributeList, pri: u64) {
        if let Some(app) = self.app_name {
            attrs.push("syslog.app_name", app);
        }
        attrs.push("syslog.facility", pri / 8);
        if let Some(msgid) = self.msgid {
            attrs.push("syslog.msgid", msgid);
        }
        if let Some(procid) = self.procid {
            attrs.push("syslog.procid", procid);
        }
        attrs.push("syslog.severity", pri % 8);
    }
}

/// Sets the fields of the event of an RFC 5424 record but its attributes (set already); its kind
/// and outcome from the MSGID, else the error code.
fn set_rfc5424(
    ev: &mut lux_model::Event,
    hostname: &str,
    event_time: Millis,
    msgid: Option<&str>,
    code: Option<SmallStr>,
) {
    let (kind, outcome) = msgid
        .and_then(msgid_kind)
        .or_else(|| code.as_deref().and_then(code_kind))
        .unwrap_or((EventKind::Other, Outcome::Info));
    set_equipment(ev, hostname);
    ev.event_time = event_time;
    ev.kind = kind;
    ev.outcome = outcome;
    ev.error_code = code;
}

/// The common RFC 5424 record, in one pass with no copy but into the event: valid UTF-8, a
/// timestamp, a hostname, parameter values without escapes, names not repeated, at most one
/// non-empty `subscriber` parameter, and nothing to redact outside it. `None` for anything else
/// (then [`rfc5424`] decodes the record, or says what is wrong with it): for every record it
/// accepts, the event is the one [`rfc5424`] makes.
fn rfc5424_common<'a>(bytes: &'a [u8], at: usize, pri: u64, out: &mut Out<'_>) -> Option<Clear<'a>> {
    let text = if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    } else {
        std::str::from_utf8(bytes).ok()?
    };
    // The header: five fields, each up to the next space, printable, none empty or too long.
    let spaces = spaces_in_printable::<5>(bytes, at)?;
    let mut fields = [(0usize, 0usize); 5];
    let mut start = at;
    for ((slot, (_, max)), end) in fields.iter_mut().zip(HEADER_FIELDS).zip(spaces) {
        if end == start || end - start > max {
            return None;
        }
        *slot = (start, end);
        start = end + 1;
    }
    let sd_start = start;
    let field = |(a, b): Span| text.get(a..b);
    let [timestamp, hostname, app_name, procid, msgid] = fields.map(field);
    let (timestamp, hostname) = (nil(timestamp?)?, nil(hostname?)?);
    let (app_name, procid, msgid) = (nil(app_name?), nil(procid?), nil(msgid?));
    let event_time = crate::timestamp::rfc3339_millis_with(timestamp, out.days).ok()?;

    // The structured data: SD-IDs, names and values as spans.
    let mut params = [((0, 0), (0, 0), (0, 0)); 8];
    let mut count = 0;
    let mut pos = sd_start;
    match bytes.get(pos)? {
        b'-' => pos += 1,
        b'[' => {
            while bytes.get(pos) == Some(&b'[') {
                let id = sd_name_common(bytes, pos + 1)?;
                pos = id.1;
                loop {
                    match bytes.get(pos)? {
                        b']' => {
                            pos += 1;
                            break;
                        }
                        b' ' => {}
                        _ => return None,
                    }
                    let name = sd_name_common(bytes, pos + 1)?;
                    if bytes.get(name.1..name.1 + 2)? != b"=\"" {
                        return None;
                    }
                    let value_start = name.1 + 2;
                    let len = value_end(bytes, value_start)?;
                    if bytes.get(value_start + len) != Some(&b'"') {
                        return None;
                    }
                    *params.get_mut(count)? = (id, name, (value_start, value_start + len));
                    count += 1;
                    pos = value_start + len + 1;
                }
            }
        }
        _ => return None,
    }
    let params = params.get(..count)?;
    let message = match bytes.get(pos) {
        None => None,
        Some(b' ') => Some((pos + 1, text.get(pos + 1..)?)),
        Some(_) => return None,
    };
    if message.is_some_and(|(_, m)| m.starts_with('\u{feff}')) {
        return None;
    }
    // The subscriber: one non-empty `subscriber` parameter at most; names otherwise distinct.
    let span = |(a, b): Span| bytes.get(a..b).unwrap_or_default();
    let mut subscriber = None;
    for (i, p) in params.iter().enumerate() {
        let name = span(p.1);
        if name == b"subscriber" {
            if subscriber.is_some() || p.2 .0 == p.2 .1 {
                return None;
            }
            subscriber = Some(field(p.2)?);
        } else if params.iter().take(i).any(|q| span(q.1) == name) {
            return None;
        }
    }
    // Nothing to redact in the values kept nor in the message: neither `subscriber=` nor the
    // clear id occurs in them.
    let needles = Needles::new([b"subscriber=", subscriber.unwrap_or_default().as_bytes()]);
    let shortest = needles.shortest();
    let redactable = |(start, end): Span| {
        let mut found = false;
        if end - start >= shortest {
            needles.each_in_range(bytes, start, end, |_, _| found = true);
        }
        found
    };
    if message.is_some_and(|(start, _)| redactable((start, bytes.len())))
        || params.iter().any(|p| span(p.1) != b"subscriber" && redactable(p.2))
    {
        return None;
    }

    let mut code: Option<SmallStr> = None;
    let mut attrs = out.attribute_list();
    // One copy of the record: the values are ranges of it.
    let copy = attrs.copy(text);
    for p in params {
        let name = field(p.1).unwrap_or_default();
        if name == "subscriber" {
            continue;
        }
        if name == "code" && p.2 .0 < p.2 .1 {
            code = Some(SmallStr::new(field(p.2).unwrap_or_default()));
        }
        let (name, value) = (attrs.concat(&["sd.", name]), attrs.range(copy, p.2 .0, p.2 .1));
        attrs.push(name, value);
    }
    let range =
        |attrs: &AttributeList, present: bool, (start, end): Span| present.then(|| attrs.range(copy, start, end));
    let [_, _, app_span, procid_span, msgid_span] = fields;
    let header = Header {
        app_name: range(&attrs, app_name.is_some(), app_span),
        msgid: range(&attrs, msgid.is_some(), msgid_span),
        procid: range(&attrs, procid.is_some(), procid_span),
    };
    header.push(&mut attrs, pri);
    attrs.finish();
    match message {
        Some((_, m)) => out.message(m),
        None => out.no_message(),
    }
    set_rfc5424(out.ev, hostname, event_time, msgid, code);
    Some(subscriber.map(|s| Cow::Borrowed(s.as_bytes())))
}

/// An SD-NAME from byte `at` ([`sd_name`]'s rule): its span, if it is one.
#[inline]
fn sd_name_common(bytes: &[u8], at: usize) -> Option<Span> {
    sd_name_len(bytes, at).map(|len| (at, at + len))
}

/// Where the record may need redacting: the starts of every `subscriber=` and of every
/// occurrence of the clear subscriber id, found in one scan each from the structured data on.
/// A field none of them falls in has nothing to redact.
struct Hits {
    /// (start, length) of the first hits (the structured data's own `subscriber=` and its value,
    /// usually).
    found: [(usize, usize); 8],
    len: usize,
    /// More hits than `found` holds: every field is then redacted (which finds them again).
    overflow: bool,
}

impl Hits {
    fn find(bytes: &[u8], from: usize, clear: Option<&str>) -> Hits {
        const KEY_LEN: usize = "subscriber=".len();
        let region = bytes.get(from..).unwrap_or(&[]);
        let mut hits = Hits { found: [(0, 0); 8], len: 0, overflow: false };
        let mut push = |at: usize, len: usize| match hits.found.get_mut(hits.len) {
            Some(slot) => {
                *slot = (from + at, len);
                hits.len += 1;
            }
            None => hits.overflow = true,
        };
        let clear = clear.unwrap_or_default().as_bytes();
        each_occurrence(region, [b"subscriber=", clear], |n, at| push(at, if n == 0 { KEY_LEN } else { clear.len() }));
        hits
    }

    /// Whether a hit lies wholly inside `span`.
    fn within(&self, (start, end): Span) -> bool {
        self.overflow || self.found.iter().take(self.len).any(|&(at, len)| at >= start && at + len <= end)
    }
}

/// One PARAM of the structured data, as spans of the record (its value is unescaped only when
/// it is used).
#[derive(Debug, Clone, Copy, Default)]
struct SdParam {
    sd_id: Span,
    name: Span,
    /// Between the quotes, escapes included.
    value: Span,
    /// Whether the value has a backslash (an escape, or one kept as it is).
    escaped: bool,
}

impl SdParam {
    /// The value, unescaped (borrowed unless it had escapes). Checked as UTF-8 when parsed.
    fn value<'a>(&self, cur: &Cursor<'a>) -> Cow<'a, str> {
        if !self.escaped {
            return Cow::Borrowed(cur.text_of(self.value.0, self.value.1).unwrap_or_default());
        }
        let raw = cur.buf().get(self.value.0..self.value.1).unwrap_or(&[]);
        Cow::Owned(String::from_utf8(unescape(raw)).unwrap_or_default())
    }
}

/// A PARAM-VALUE without its escapes: `\"`, `\\` and `\]` lose their backslash; RFC 5424
/// 6.3.3: any other backslash is kept as is.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b == b'\\' {
            if let Some(e @ (b'"' | b'\\' | b']')) = bytes.peek().copied() {
                bytes.next();
                value.push(e);
                continue;
            }
        }
        value.push(b);
    }
    value
}

/// The parameters of a record's structured data: the first ones in place, any more in a vector.
#[derive(Default)]
struct Params {
    first: [SdParam; 8],
    len: usize,
    more: Vec<SdParam>,
}

impl Params {
    fn push(&mut self, p: SdParam) {
        match self.first.get_mut(self.len) {
            Some(slot) => *slot = p,
            None => self.more.push(p),
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &SdParam> {
        self.first.iter().take(self.len).chain(self.more.iter())
    }
}

/// SD-NAME: 1-32 printable US-ASCII except `=`, SP, `]` and `"`.
fn sd_name(cur: &mut Cursor<'_>, what: &str) -> Result<Span, DecodeError> {
    let start = cur.pos();
    let rest = cur.rest();
    let len = rest.iter().position(|&b| !(33..=126).contains(&b) || matches!(b, b'=' | b']' | b'"'));
    let name = rest.get(..len.unwrap_or(rest.len())).unwrap_or(&[]);
    cur.reset(start + name.len());
    if cur.is_empty() {
        return err(
            R::Truncated,
            format!("syslog RFC 5424: the record ends in the structured data ({what} at byte {start})"),
        );
    }
    if name.is_empty() || name.len() > 32 {
        return err(
            R::BadValue,
            format!("syslog RFC 5424: bad {what} at byte {start}: 1 to 32 printable characters expected"),
        );
    }
    Ok((start, start + name.len()))
}

fn expect(cur: &mut Cursor<'_>, byte: u8, what: &str) -> Result<(), DecodeError> {
    match cur.peek() {
        None => err(R::Truncated, format!("syslog RFC 5424: the record ends in the structured data, expected {what}")),
        Some(b) if b == byte => {
            cur.bump();
            Ok(())
        }
        Some(b) => err(
            R::BadValue,
            format!(
                "syslog RFC 5424: expected {what} at byte {} in the structured data, found {:?}",
                cur.pos(),
                char::from(b)
            ),
        ),
    }
}

/// STRUCTURED-DATA: `-` or one or more `[SD-ID *(SP PARAM-NAME="PARAM-VALUE")]`, values with
/// `\"`, `\\` and `\]` escaped; its parameters are pushed to `params` as spans.
fn structured_data(cur: &mut Cursor<'_>, params: &mut Params) -> Result<(), DecodeError> {
    match cur.peek() {
        None => return err(R::Truncated, "syslog RFC 5424: the record ends before STRUCTURED-DATA"),
        Some(b'-') => {
            cur.bump();
            return Ok(());
        }
        Some(b'[') => {}
        Some(b) => {
            return err(
                R::BadValue,
                format!(
                    "syslog RFC 5424: STRUCTURED-DATA at byte {} must be '-' or start with '[', found {:?}",
                    cur.pos(),
                    char::from(b)
                ),
            )
        }
    }
    while cur.eat(b'[') {
        let sd_id = sd_name(cur, "SD-ID")?;
        loop {
            match cur.bump() {
                Some(b']') => break,
                Some(b' ') => {}
                None => {
                    return err(
                        R::Truncated,
                        format!("syslog RFC 5424: the record ends inside SD-ELEMENT [{}", ascii(cur, sd_id)),
                    )
                }
                Some(b) => {
                    return err(
                        R::BadValue,
                        format!(
                            "syslog RFC 5424: unexpected {:?} at byte {} in SD-ELEMENT [{}",
                            char::from(b),
                            cur.pos().saturating_sub(1),
                            ascii(cur, sd_id)
                        ),
                    )
                }
            }
            let name = sd_name(cur, "PARAM-NAME")?;
            expect(cur, b'=', "'=' after a PARAM-NAME")?;
            expect(cur, b'"', "'\"' opening a PARAM-VALUE")?;
            let value_start = cur.pos();
            // Most values have no escape: they are borrowed from the record as they are.
            let plain = cur.take_until2(b'"', b'\\');
            let escaped = cur.peek() != Some(b'"');
            if escaped {
                loop {
                    match cur.bump() {
                        None => {
                            return err(
                                R::Truncated,
                                format!(
                                    "syslog RFC 5424: the record ends inside the value of {} (from byte \
                                     {value_start})",
                                    ascii(cur, name)
                                ),
                            )
                        }
                        Some(b'"') => break,
                        Some(b'\\') => {
                            if matches!(cur.peek(), Some(b'"' | b'\\' | b']')) {
                                cur.bump();
                            }
                        }
                        Some(_) => {}
                    }
                }
            } else {
                cur.bump();
            }
            let value_end = if escaped { cur.pos() - 1 } else { value_start + plain.len() };
            let raw = cur.buf().get(value_start..value_end).unwrap_or(&[]);
            let utf8 = if escaped {
                String::from_utf8(unescape(raw)).map(drop).map_err(|e| e.utf8_error())
            } else {
                cur.text_of(value_start, value_end).map(drop)
            };
            utf8.map_err(|e| bad_value_utf8(ascii(cur, name), value_start, e))?;
            params.push(SdParam { sd_id, name, value: (value_start, value_end), escaped });
        }
    }
    Ok(())
}

fn bad_value_utf8(name: &str, start: usize, e: std::str::Utf8Error) -> DecodeError {
    DecodeError::new(R::BadUtf8, format!("syslog RFC 5424: the value of {name} (byte {start}) is not UTF-8: {e}"))
}

/// Sets the event's equipment to a syslog HOSTNAME.
fn set_equipment(ev: &mut lux_model::Event, hostname: &str) {
    let bytes = hostname.as_bytes();
    let maybe_ip = bytes.first().is_some_and(u8::is_ascii_digit) || bytes.iter().fold(false, |c, b| c | (*b == b':'));
    if !maybe_ip {
        ev.equipment_id = SmallStr::new(hostname);
        ev.equipment_key = EquipmentKey::Hostname;
        return;
    }
    let (id, key) = equipment(hostname);
    ev.equipment_id = id;
    ev.equipment_key = key;
}

/// The equipment key of a syslog HOSTNAME: an IP literal is an `ip_address`.
fn equipment(hostname: &str) -> (SmallStr, EquipmentKey) {
    // Only a name starting with a digit or holding a ':' can be an IP literal: others are not
    // parsed.
    let maybe_ip = hostname.as_bytes().first().is_some_and(u8::is_ascii_digit) || hostname.contains(':');
    match maybe_ip.then(|| hostname.parse::<IpAddr>().ok()).flatten() {
        Some(ip) => (ip_text(ip), EquipmentKey::IpAddress),
        None => (SmallStr::new(hostname), EquipmentKey::Hostname),
    }
}

/// `Jan`..`Dec` -> 1..12.
pub(crate) fn month(name: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    MONTHS.iter().position(|m| m.as_slice() == name).and_then(|i| u32::try_from(i + 1).ok())
}

/// An RFC 3164 timestamp, before its year (and zone) are known.
struct BsdTime {
    month: u32,
    day: u32,
    year: Option<i32>,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

/// A fixed-width run of digits.
fn digits_n(cur: &mut Cursor<'_>, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for _ in 0..n {
        let d = cur.peek().filter(u8::is_ascii_digit)?;
        cur.bump();
        v = v * 10 + u32::from(d - b'0');
    }
    Some(v)
}

/// `Mmm dd hh:mm:ss` (day space-padded, zero-padded or bare), with the Cisco extensions: an
/// optional year after the day and optional `.mmm` milliseconds. `Ok(None)` when the record
/// does not start with a month name (no timestamp at all).
fn bsd_time(cur: &mut Cursor<'_>) -> Result<Option<BsdTime>, DecodeError> {
    let start = cur.pos();
    let Some(month) = cur.rest().get(..3).and_then(month) else {
        return Ok(None);
    };
    if cur.peek_at(3) != Some(b' ') {
        return Ok(None);
    }
    let bad =
        |what: &str| DecodeError::new(R::BadValue, format!("syslog RFC 3164: bad TIMESTAMP at byte {start}: {what}"));
    for _ in 0..4 {
        cur.bump();
    }
    cur.eat(b' ');
    let day_digits = cur.take_while(|b| b.is_ascii_digit());
    let day = match ascii_number(day_digits) {
        Some(d) if day_digits.len() <= 2 && (1..=31).contains(&d) => d as u32,
        _ => return Err(bad("day of month 1-31 expected")),
    };
    if !cur.eat(b' ') {
        return Err(bad("space expected after the day"));
    }
    // Cisco `service timestamps log datetime year`: `Jan  5 2026 10:00:00`.
    let mut year = None;
    if cur.peek_at(4) == Some(b' ') {
        let mark = cur.mark();
        match digits_n(cur, 4) {
            Some(y) if cur.eat(b' ') => year = i32::try_from(y).ok(),
            _ => cur.reset(mark),
        }
    }
    let hour = digits_n(cur, 2).ok_or_else(|| bad("hh:mm:ss expected"))?;
    let minute = if cur.eat(b':') { digits_n(cur, 2) } else { None }.ok_or_else(|| bad("hh:mm:ss expected"))?;
    let second = if cur.eat(b':') { digits_n(cur, 2) } else { None }.ok_or_else(|| bad("hh:mm:ss expected"))?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("time of day out of range"));
    }
    let mut millis = 0;
    if cur.peek() == Some(b'.') && cur.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
        cur.bump();
        let frac = cur.take_while(|b| b.is_ascii_digit());
        for (i, d) in frac.iter().take(3).enumerate() {
            millis += u32::from(d - b'0') * [100, 10, 1].get(i).copied().unwrap_or(0);
        }
    }
    Ok(Some(BsdTime { month, day, year, hour, minute, second: second.min(59), millis }))
}

/// The event time of an RFC 3164 timestamp: in the configured zone, in the year of reception
/// or the one before if the former would be more than `future_tolerance` in the future.
fn bsd_event_time(t: &BsdTime, ctx: &Context<'_>) -> Result<Millis, DecodeError> {
    let at = |year: i32| -> Option<Millis> {
        let date = NaiveDate::from_ymd_opt(year, t.month, t.day)?;
        let naive = date.and_hms_milli_opt(t.hour, t.minute, t.second, t.millis)?;
        ctx.timezone.from_local_datetime(&naive).single().map(|dt| dt.timestamp_millis())
    };
    let bad_date = |year: i32| {
        DecodeError::new(
            R::BadValue,
            format!("syslog RFC 3164: TIMESTAMP month {} day {} does not exist in {year}", t.month, t.day),
        )
    };
    if let Some(year) = t.year {
        return at(year).ok_or_else(|| bad_date(year));
    }
    let received = ctx.timezone.timestamp_millis_opt(ctx.received_at).single().ok_or_else(|| {
        DecodeError::new(R::BadValue, format!("received_at {} is out of the supported time range", ctx.received_at))
    })?;
    let year = chrono::Datelike::year(&received);
    match at(year) {
        Some(ms) if ms <= ctx.received_at.saturating_add(ctx.future_tolerance_ms) => Ok(ms),
        _ => at(year - 1).ok_or_else(|| bad_date(year - 1)),
    }
}

/// `%FACILITY-SEVERITY-MNEMONIC:` -> (facility, severity, mnemonic).
fn cisco_tag(token: &[u8]) -> Option<(&str, u8, &str)> {
    let inner = token.strip_prefix(b"%")?.strip_suffix(b":")?;
    let text = utf8(inner).ok()?;
    let (rest, mnemonic) = text.rsplit_once('-')?;
    let (facility, severity) = rest.rsplit_once('-')?;
    let ident = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    let severity = match severity.as_bytes() {
        [d @ b'0'..=b'7'] => d - b'0',
        _ => return None,
    };
    (ident(facility) && ident(mnemonic)).then_some((facility, severity, mnemonic))
}

/// `TAG:` or `TAG[PID]:` (an RFC 3164 program name).
fn bsd_tag(token: &[u8]) -> Option<(&str, Option<&str>)> {
    let inner = utf8(token.strip_suffix(b":")?).ok()?;
    let (tag, pid) = match inner.split_once('[') {
        Some((tag, pid)) => (tag, Some(pid.strip_suffix(']')?)),
        None => (inner, None),
    };
    let ok = !tag.is_empty()
        && tag.len() <= 48
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
    ok.then_some((tag, pid))
}

fn token<'a>(cur: &Cursor<'a>) -> &'a [u8] {
    let rest = cur.rest();
    let len = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
    rest.get(..len).unwrap_or(&[])
}

fn skip_token(cur: &mut Cursor<'_>) {
    cur.take_while(|b| b != b' ');
    cur.take_while(|b| b == b' ');
}

/// A Cisco sequence number `1234:`.
fn seq_number(token: &[u8]) -> Option<u64> {
    ascii_number(token.strip_suffix(b":")?)
}

fn rfc3164<'a>(
    cur: &mut Cursor<'a>,
    pri: Option<u64>,
    ctx: &Context<'_>,
    out: &mut Out<'_>,
) -> Result<Clear<'a>, DecodeError> {
    let mut attrs = out.attribute_list();
    pri_attributes(pri.unwrap_or(DEFAULT_PRI), &mut attrs);
    // Cisco without `service timestamps` hostname: `<189>4711: *Jan  5 10:00:00.123: %...`.
    if let Some(seq) = seq_number(token(cur)) {
        attrs.push_replacing("cisco.seq", seq);
        skip_token(cur);
    }
    if matches!(cur.peek(), Some(b'*' | b'.')) {
        // Cisco: `*` the clock was never synchronised, `.` it lost synchronisation.
        attrs.push_replacing("cisco.clock_unsynced", true);
        cur.bump();
    }
    let Some(time) = bsd_time(cur)? else {
        return err(
            R::MissingField,
            format!(
                "syslog RFC 3164: no TIMESTAMP ('Mmm dd hh:mm:ss') at byte {} (and not RFC 5424: no VERSION after PRI)",
                cur.pos()
            ),
        );
    };
    let event_time = bsd_event_time(&time, ctx)?;
    cur.eat(b':');
    cur.take_while(|b| b == b' ');

    // HOSTNAME, unless the next token is already a sequence number or a Cisco tag.
    let mut hostname = None;
    let first = token(cur);
    if !first.is_empty() && seq_number(first).is_none() && cisco_tag(first).is_none() && !first.starts_with(b"%") {
        let host = first.strip_suffix(b":").filter(|h| !h.is_empty()).unwrap_or(first);
        if let Some(i) = host.iter().position(|b| !(33..=126).contains(b)) {
            return err(
                R::BadValue,
                format!(
                    "syslog RFC 3164: HOSTNAME has a byte 0x{:02x} that is not printable US-ASCII",
                    host.get(i).copied().unwrap_or(0)
                ),
            );
        }
        if host.len() > 255 {
            return err(R::BadValue, format!("syslog RFC 3164: HOSTNAME is {} bytes long (at most 255)", host.len()));
        }
        hostname = Some(String::from_utf8_lossy(host));
        skip_token(cur);
    }
    if let Some(seq) = seq_number(token(cur)) {
        attrs.push_replacing("cisco.seq", seq);
        skip_token(cur);
    }
    let mut code = None;
    let mut kind_outcome = None;
    let tag = token(cur);
    if let Some((facility, severity, mnemonic)) = cisco_tag(tag) {
        let c = SmallStr::concat(&[facility, "-", mnemonic]);
        kind_outcome = code_kind(&c);
        code = Some(c);
        let facility_text = attrs.text(facility);
        attrs.push_replacing("cisco.facility", facility_text);
        attrs.push_replacing("cisco.severity", severity);
        let mnemonic_text = attrs.text(mnemonic);
        attrs.push_replacing("cisco.mnemonic", mnemonic_text);
        skip_token(cur);
    } else if let Some((app, pid)) = bsd_tag(tag) {
        let app_text = attrs.text(app);
        attrs.push_replacing("syslog.app_name", app_text);
        if let Some(pid) = pid {
            let pid_text = attrs.text(pid);
            attrs.push_replacing("syslog.procid", pid_text);
        }
        skip_token(cur);
    }
    let start = cur.pos();
    let rest = cur.take_rest();
    let text =
        match cur.text_of(start, start + rest.len()).map_or_else(|_| String::from_utf8_lossy(rest), Cow::Borrowed) {
            Cow::Borrowed(t) => Cow::Borrowed(t.trim()),
            Cow::Owned(t) => Cow::Owned(t.trim().to_owned()),
        };
    let subscriber = subscriber_in(&text);
    let message = message_of(text, subscriber.as_deref(), ctx.pseudonymiser);

    let (equipment_id, equipment_key) = match hostname {
        Some(host) => equipment(&host),
        None => match ctx.peer.and_then(peer_ip) {
            Some(ip) => {
                attrs.push_replacing("syslog.hostname_from", "peer");
                (ip_text(ip), EquipmentKey::IpAddress)
            }
            None => {
                return err(
                    R::MissingField,
                    "syslog RFC 3164: no HOSTNAME and no peer address: no equipment to attribute the event to",
                )
            }
        },
    };
    let (kind, outcome) = kind_outcome.unwrap_or((EventKind::Other, Outcome::Info));
    attrs.finish();
    out.message_owned(message.unwrap_or_default());
    let ev = &mut *out.ev;
    ev.event_time = event_time;
    ev.equipment_id = equipment_id;
    ev.equipment_key = equipment_key;
    ev.kind = kind;
    ev.outcome = outcome;
    ev.error_code = code;
    Ok(subscriber.map(clear_bytes))
}

/// The IP of a peer address `ip:port`, `[v6]:port` or a bare IP.
fn peer_ip(peer: &str) -> Option<IpAddr> {
    peer.parse::<std::net::SocketAddr>().map(|s| s.ip()).ok().or_else(|| peer.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The event and clear id the full RFC 5424 parser makes of `line` (a `<PRI>1 ` record).
    fn full(line: &[u8], ctx: &Context<'_>) -> Result<(String, Option<Vec<u8>>), DecodeError> {
        let (mut ev, mut spare, mut days) = (lux_model::Event::default(), String::new(), Default::default());
        let mut out = Out { ev: &mut ev, spare: &mut spare, days: &mut days };
        let mut cur = Cursor::new(line);
        let pri = parse_pri(&mut cur)?.unwrap_or(DEFAULT_PRI);
        cur.take_while(|b| b.is_ascii_digit());
        cur.bump();
        let clear = rfc5424(&mut cur, pri, ctx, &mut out)?.map(|c| c.into_owned());
        Ok((serde_json::to_string(&ev).unwrap_or_default(), clear))
    }

    /// The event and clear id the one-pass path makes of `line`, decoding into `ev` (reused
    /// from line to line, as the transform stage does) with `days`; `None` when it leaves the
    /// line to the full parser.
    fn one_pass(
        line: &[u8],
        ev: &mut lux_model::Event,
        days: &mut crate::timestamp::DayCache,
    ) -> Option<(String, Option<Vec<u8>>)> {
        let mut spare = String::new();
        let mut out = Out { ev, spare: &mut spare, days };
        let (pri, at) = pri_and_version_1(line)?;
        let clear = rfc5424_common(line, at, pri, &mut out)?.map(|c| c.into_owned());
        Some((serde_json::to_string(&*ev).unwrap_or_default(), clear))
    }

    fn pick<'a, R: Rng>(rng: &mut R, options: &[&'a str]) -> &'a str {
        options[rng.gen_range(0..options.len())]
    }

    /// A random RFC 5424 line: mostly well-formed pieces, with the cases the one-pass path must
    /// leave to the full parser (escapes, repeated names, things to redact, a BOM, NILVALUEs,
    /// bad bytes) mixed in, and sometimes a byte changed, added or removed.
    fn random_line<R: Rng>(rng: &mut R) -> Vec<u8> {
        let mut line = String::new();
        line.push_str(pick(rng, &["<34>1 ", "<0>1 ", "<191>1 ", "<13>1 ", "<165>1 "]));
        line.push_str(pick(
            rng,
            &[
                "2026-01-05T10:00:00Z",
                "2026-01-05T10:00:00.123Z",
                "2026-01-05T10:00:59.5+01:00",
                "2026-01-05T10:01:00.000001-05:30",
                "2026-01-06T00:00:00Z",
                "2024-02-29T23:59:59.999Z",
                "2026-02-30T10:00:00Z",
                "2026-01-05T24:00:00Z",
                "2026-01-05t10:00:00z",
                "2026-12-31T23:59:60Z",
                "-",
            ],
        ));
        line.push(' ');
        line.push_str(pick(rng, &["bng-par001-01", "olt-lil002-03", "10.1.2.3", "::1", "-", "h:st", "1host"]));
        line.push(' ');
        line.push_str(pick(rng, &["bng", "-", "olt", "a.very-long-app-name-that-is-more-than-48-bytes-long"]));
        line.push(' ');
        line.push_str(pick(rng, &["-", "1234", "p"]));
        line.push(' ');
        line.push_str(pick(rng, &["SESSION_START", "LINK_DOWN", "ONU_LOS", "-", "ID47", "AUTH_REJECT"]));
        line.push(' ');
        let elements = [
            "[meta port=\"0/1/0:3\"]",
            "[meta subscriber=\"sub0001234\" code=\"LINK-DOWN\"]",
            "[meta subscriber=\"sub0001234\"][x@1 code=\"DHCP-NOOFFER\" port=\"ge-0/0/1\"]",
            "[meta subscriber=\"\"]",
            "[meta subscriber=\"a\" subscriber=\"b\"]",
            "[meta port=\"1\" port=\"2\"]",
            "[a port=\"1\"][b port=\"2\"]",
            "[meta v=\"esc\\\"aped\\]\"]",
            "[meta v=\"subscriber=sub0001234\" subscriber=\"sub0001234\"]",
            "[meta v=\"has sub0001234 in it\" subscriber=\"sub0001234\"]",
            "[meta code=\"\"]",
            "[meta zz=\"1\" aa=\"2\" mm=\"3\"]",
            "[m a=\"1\" b=\"2\" c=\"3\" d=\"4\" e=\"5\" f=\"6\" g=\"7\" h=\"8\" i=\"9\"]",
            "[meta v=\"caf\u{e9}\"]",
            "[meta]",
            "-",
        ];
        let n = rng.gen_range(1..3);
        for i in 0..n {
            let e = pick(rng, &elements);
            if e == "-" && i > 0 {
                continue;
            }
            line.push_str(e);
            if e == "-" {
                break;
            }
        }
        line.push_str(pick(
            rng,
            &[
                "",
                " ONU 0/1/0:3 activated seq=3899",
                " session started subscriber=sub0001234 ip=10.0.0.1",
                " subscriber=other",
                " contains sub0001234 twice sub0001234",
                " \u{feff}with a BOM",
                " caf\u{e9}",
                " ",
                "  two spaces",
                " subscribers are many",
                " sub000123",
            ],
        ));
        let mut bytes = line.into_bytes();
        if rng.gen_range(0..4) == 0 && !bytes.is_empty() {
            let at = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..3) {
                0 => bytes[at] = [b' ', b'"', b'[', b']', b'\\', b'=', 0xff, 0x7f, b'-', b's'][rng.gen_range(0..10)],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, [b' ', b'"', b'[', b']', b'\\', 0xc3, b'0'][rng.gen_range(0..7)]),
            }
        }
        bytes
    }

    #[test]
    fn the_one_pass_path_makes_the_events_the_full_parser_makes() {
        let pseudonymiser = Pseudonymiser::new(b"key");
        let ctx = Context {
            timezone: FixedOffset::east_opt(0).unwrap(),
            future_tolerance_ms: 86_400_000,
            received_at: 1_767_607_200_000,
            peer: Some("10.9.9.9:514"),
            pseudonymiser: &pseudonymiser,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5424);
        let (mut ev, mut days) = (lux_model::Event::default(), crate::timestamp::DayCache::default());
        let mut taken = 0;
        for _ in 0..40_000 {
            let line = random_line(&mut rng);
            if let Some(fast) = one_pass(&line, &mut ev, &mut days) {
                taken += 1;
                let general = full(&line, &ctx);
                assert_eq!(Ok(fast), general, "{:?}", String::from_utf8_lossy(&line));
            }
        }
        // Enough lines of every kind took the one-pass path for the comparison to mean something.
        assert!(taken > 3_000, "only {taken} lines took the one-pass path");
    }
}
