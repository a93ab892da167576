//! RADIUS Accounting-Request packets (RFC 2866) as a BNG sends them, with the Request
//! Authenticator computed from the shared secret.

use md5::{Digest, Md5};

pub const CODE_ACCOUNTING_REQUEST: u8 = 4;

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

/// Acct-Status-Type values.
pub const STATUS_START: u32 = 1;
pub const STATUS_STOP: u32 = 2;
pub const STATUS_INTERIM: u32 = 3;

/// The attributes of a packet being built.
#[derive(Debug, Default)]
pub struct Attributes {
    bytes: Vec<u8>,
}

impl Attributes {
    pub fn with_capacity(n: usize) -> Self {
        Attributes { bytes: Vec::with_capacity(n) }
    }

    /// Adds a string/octets attribute; values longer than 253 bytes are cut (RFC 2865 limit).
    pub fn octets(&mut self, kind: u8, value: &[u8]) -> &mut Self {
        let value = &value[..value.len().min(253)];
        self.bytes.push(kind);
        self.bytes.push(value.len() as u8 + 2);
        self.bytes.extend_from_slice(value);
        self
    }

    pub fn integer(&mut self, kind: u8, value: u32) -> &mut Self {
        self.octets(kind, &value.to_be_bytes())
    }

    pub fn address(&mut self, kind: u8, value: [u8; 4]) -> &mut Self {
        self.octets(kind, &value)
    }

    /// A 64-bit counter as its low 32 bits in `low` and its high 32 bits (gigawords) in `high`.
    pub fn counter64(&mut self, low: u8, high: u8, value: u64) -> &mut Self {
        self.integer(low, value as u32);
        self.integer(high, (value >> 32) as u32)
    }

    /// The finished Accounting-Request: code, identifier, length, Request Authenticator
    /// `MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret)`, attributes.
    pub fn into_accounting_request(self, identifier: u8, secret: &[u8]) -> Vec<u8> {
        let length = (20 + self.bytes.len()).min(4096) as u16;
        let attributes = &self.bytes[..usize::from(length) - 20];
        let mut packet = Vec::with_capacity(usize::from(length));
        packet.push(CODE_ACCOUNTING_REQUEST);
        packet.push(identifier);
        packet.extend_from_slice(&length.to_be_bytes());
        packet.extend_from_slice(&[0u8; 16]);
        packet.extend_from_slice(attributes);
        let mut md5 = Md5::new();
        md5.update(&packet);
        md5.update(secret);
        let authenticator = md5.finalize();
        packet[4..20].copy_from_slice(&authenticator);
        packet
    }
}

/// Whether `packet`'s Request Authenticator is right for `secret` (for tests and tools).
pub fn verify_accounting_request(packet: &[u8], secret: &[u8]) -> bool {
    if packet.len() < 20 {
        return false;
    }
    let length = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if length != packet.len() {
        return false;
    }
    let mut md5 = Md5::new();
    md5.update(&packet[..4]);
    md5.update([0u8; 16]);
    md5.update(&packet[20..]);
    md5.update(secret);
    md5.finalize().as_slice() == &packet[4..20]
}

/// The attributes of a packet as (type, value) pairs; `None` if the packet is malformed.
pub fn attributes(packet: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut rest = packet.get(20..)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let kind = *rest.first()?;
        let len = usize::from(*rest.get(1)?);
        if len < 2 {
            return None;
        }
        out.push((kind, rest.get(2..len)?));
        rest = rest.get(len..)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticator_matches_the_rfc_2866_formula() {
        let mut a = Attributes::default();
        a.integer(ACCT_STATUS_TYPE, STATUS_START).octets(USER_NAME, b"sub0000001");
        let packet = a.into_accounting_request(7, b"testing123");
        assert_eq!(packet.len(), 20 + 6 + 12);
        assert_eq!(&packet[..4], &[4, 7, 0, 38]);
        // Independent computation of the authenticator.
        let mut input = packet.clone();
        input[4..20].fill(0);
        input.extend_from_slice(b"testing123");
        assert_eq!(&packet[4..20], Md5::digest(&input).as_slice());
        assert!(verify_accounting_request(&packet, b"testing123"));
        assert!(!verify_accounting_request(&packet, b"wrong"));
        assert_eq!(
            attributes(&packet),
            Some(vec![(ACCT_STATUS_TYPE, &[0u8, 0, 0, 1][..]), (USER_NAME, &b"sub0000001"[..])])
        );
    }

    #[test]
    fn counters_split_into_gigawords() {
        let mut a = Attributes::default();
        a.counter64(ACCT_INPUT_OCTETS, ACCT_INPUT_GIGAWORDS, (3u64 << 32) + 5);
        let packet = a.into_accounting_request(0, b"s");
        let attrs = attributes(&packet).unwrap();
        assert_eq!(attrs[0], (ACCT_INPUT_OCTETS, &[0u8, 0, 0, 5][..]));
        assert_eq!(attrs[1], (ACCT_INPUT_GIGAWORDS, &[0u8, 0, 0, 3][..]));
    }

    #[test]
    fn malformed_packets_are_rejected_without_panic() {
        assert_eq!(attributes(&[0u8; 10]), None);
        let mut p = vec![4u8, 0, 0, 23];
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&[1, 0, 0]);
        assert_eq!(attributes(&p), None);
        assert!(!verify_accounting_request(&p[..21], b"s"));
    }
}
