//! The contract's vocabulary: syslog MSGIDs and error codes to event kinds and outcomes, the
//! pseudonymisation of subscriber ids, and the redaction of clear ids from free text.

use hmac::{Hmac, Mac};
use lux_model::{EventKind, Outcome};
use sha2::Sha256;

/// RFC 5424 MSGID -> (kind, outcome), as the reference-and-traffic contract says.
pub fn msgid_kind(msgid: &str) -> Option<(EventKind, Outcome)> {
    Some(match msgid {
        "SESSION_START" => (EventKind::SessionStart, Outcome::Success),
        "SESSION_STOP" => (EventKind::SessionStop, Outcome::Info),
        "AUTH_REJECT" => (EventKind::AuthReject, Outcome::Failure),
        "LINK_DOWN" => (EventKind::LinkDown, Outcome::Failure),
        "LINK_UP" => (EventKind::LinkUp, Outcome::Success),
        "ONU_LOS" => (EventKind::OpticalLos, Outcome::Failure),
        "CONFIG_CHANGE" => (EventKind::ConfigChange, Outcome::Info),
        _ => return None,
    })
}

/// Error code (`FACILITY-MNEMONIC`) -> (kind, outcome), as the contract says.
pub fn code_kind(code: &str) -> Option<(EventKind, Outcome)> {
    Some(match code {
        "DHCP-NOOFFER" => (EventKind::DhcpFailure, Outcome::Failure),
        "PPP-LCPTIMEOUT" => (EventKind::PppFailure, Outcome::Failure),
        "PPP-AUTHFAIL" => (EventKind::AuthReject, Outcome::Failure),
        "LINK-DOWN" => (EventKind::LinkDown, Outcome::Failure),
        "LINK-UP" => (EventKind::LinkUp, Outcome::Success),
        "DSL-RETRAIN" => (EventKind::LinkRetrain, Outcome::Info),
        "SYS-RESTART" => (EventKind::Reboot, Outcome::Info),
        "GPON-LOS" => (EventKind::OpticalLos, Outcome::Failure),
        "GPON-DYINGGASP" => (EventKind::PowerLoss, Outcome::Failure),
        _ => return None,
    })
}

/// Keyed pseudonymisation of subscriber ids: HMAC-SHA256(key, clear id), first 16 bytes as 32
/// lowercase hex characters. The same key always gives the same pseudonym, so indicators can
/// count distinct subscribers without ever holding a clear id.
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser { key: <hidden> }")
    }
}

impl Pseudonymiser {
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length (long keys are hashed first): `new_from_slice` cannot
        // fail; the fallback only keeps this function free of any panic path.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default()));
        Pseudonymiser { mac }
    }

    pub fn pseudonym(&self, clear: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(clear);
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(32);
        for byte in digest.iter().take(16) {
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0x0f)] as char);
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// Finds `subscriber=VALUE` in free text (VALUE quoted with `"`, or up to the next space, `,`
/// or `;`): the clear id, when there is one.
pub fn find_subscriber(text: &str) -> Option<&str> {
    subscriber_spans(text).into_iter().find_map(|(start, end)| text.get(start..end).filter(|v| !v.is_empty()))
}

/// Byte ranges of the values of every `subscriber=VALUE` in `text`.
fn subscriber_spans(text: &str) -> Vec<(usize, usize)> {
    const KEY: &str = "subscriber=";
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|rest| rest.find(KEY)) {
        let key_start = from + found;
        let value_start = key_start + KEY.len();
        let boundary_ok = text[..key_start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'));
        let rest = &text[value_start..];
        let (start, end) = if let Some(quoted) = rest.strip_prefix('"') {
            let len = quoted.find('"').unwrap_or(quoted.len());
            (value_start + 1, value_start + 1 + len)
        } else {
            let len = rest.find(|c: char| c.is_whitespace() || c == ',' || c == ';').unwrap_or(rest.len());
            (value_start, value_start + len)
        };
        if boundary_ok {
            spans.push((start, end));
        }
        from = end.max(value_start);
    }
    spans
}

/// `text` with the value of every `subscriber=VALUE` replaced by its pseudonym, and every other
/// occurrence of `clear` (the record's clear subscriber id, when known) replaced by its own.
pub fn redact(text: &str, clear: Option<&str>, pseudonymiser: &Pseudonymiser) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in subscriber_spans(text) {
        if let (Some(before), Some(value)) = (text.get(last..start), text.get(start..end)) {
            out.push_str(before);
            if !value.is_empty() {
                out.push_str(&pseudonymiser.pseudonym(value.as_bytes()));
            }
            last = end;
        }
    }
    out.push_str(text.get(last..).unwrap_or(""));
    match clear {
        Some(clear) if !clear.is_empty() && out.contains(clear) => {
            out.replace(clear, &pseudonymiser.pseudonym(clear.as_bytes()))
        }
        _ => out,
    }
}
