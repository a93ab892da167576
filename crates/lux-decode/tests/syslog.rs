//! Syslog decoding: RFC 5424 and RFC 3164 / Cisco lines, their mapping to events, and every
//! malformed case mapped to its dead-letter reason.

mod common;

use common::*;
use lux_decode::{DecodeConfig, Decoder};
use lux_model::{DeadLetterReason as R, EquipmentKey, Event, EventKind as K, Format, Outcome as O};
use serde_json::json;
use std::time::Duration;

fn one(dec: &Decoder, format: Format, line: &[u8]) -> Event {
    match dec.decode(&raw(format, line)) {
        Ok(mut events) => {
            assert_eq!(events.len(), 1, "one event per record");
            events.remove(0)
        }
        Err(e) => panic!("{} did not decode: {e}", String::from_utf8_lossy(line)),
    }
}

fn reason(format: Format, line: &[u8]) -> R {
    match decoder().decode(&raw(format, line)) {
        Ok(events) => panic!("{} decoded to {events:?}", String::from_utf8_lossy(line)),
        Err(e) => {
            assert!(!e.detail.is_empty());
            e.reason
        }
    }
}

const EXAMPLE_5424: &str = r#"<131>1 2026-01-05T10:00:00.123Z bng-par001-01 bng - AUTH_REJECT [meta@32473 code="PPP-AUTHFAIL" subscriber="sub0004711" port="ge-0/0/1"] PPP authentication failed"#;

#[test]
fn rfc5424_contract_example_maps_every_field() {
    let dec = decoder();
    let e = one(&dec, Format::Syslog, EXAMPLE_5424.as_bytes());
    assert_eq!(e.event_id, lux_model::event_id(EXAMPLE_5424.as_bytes(), 0));
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00.123Z"));
    assert_eq!(e.received_at, received());
    assert_eq!(e.source, "test-src");
    assert_eq!(e.format, Format::Syslog);
    assert_eq!(e.equipment_id, "bng-par001-01");
    assert_eq!(e.equipment_key, EquipmentKey::Hostname);
    assert_eq!(e.kind, K::AuthReject);
    assert_eq!(e.outcome, O::Failure);
    assert_eq!(e.error_code.as_deref(), Some("PPP-AUTHFAIL"));
    assert_eq!(e.subscriber.as_deref(), Some(dec.pseudonym(b"sub0004711").as_str()));
    assert_eq!(e.subscriber.as_deref().map(str::len), Some(32));
    assert_eq!(e.message.as_deref(), Some("PPP authentication failed"));
    let expected: std::collections::BTreeMap<String, serde_json::Value> = [
        ("syslog.facility", json!(16)),
        ("syslog.severity", json!(3)),
        ("syslog.app_name", json!("bng")),
        ("syslog.msgid", json!("AUTH_REJECT")),
        ("sd.code", json!("PPP-AUTHFAIL")),
        ("sd.port", json!("ge-0/0/1")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(e.attributes, expected);
    let json = serde_json::to_string(&e).unwrap_or_default();
    assert!(!json.contains("sub0004711"), "clear subscriber id leaked: {json}");
}

#[test]
fn pseudonym_is_hmac_sha256_truncated_and_keyed() {
    let a = decoder().pseudonym(b"sub0004711");
    let b = Decoder::new(&DecodeConfig::default(), b"another key").pseudonym(b"sub0004711");
    assert_ne!(a, b);
    assert_eq!(a, decoder().pseudonym(b"sub0004711"));
    assert!(a.len() == 32 && a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
    let rfc = Decoder::new(&DecodeConfig::default(), b"Jefe").pseudonym(b"what do ya want for nothing?");
    assert_eq!(rfc, "5bdcc146bf60754e6a042426089575c7");
}

#[test]
fn rfc5424_msgids_map_to_kind_and_outcome() {
    let cases = [
        ("SESSION_START", K::SessionStart, O::Success),
        ("SESSION_STOP", K::SessionStop, O::Info),
        ("AUTH_REJECT", K::AuthReject, O::Failure),
        ("LINK_DOWN", K::LinkDown, O::Failure),
        ("LINK_UP", K::LinkUp, O::Success),
        ("ONU_LOS", K::OpticalLos, O::Failure),
        ("CONFIG_CHANGE", K::ConfigChange, O::Info),
        ("SOMETHING_ELSE", K::Other, O::Info),
    ];
    for (msgid, kind, outcome) in cases {
        let line = format!("<134>1 2026-01-05T10:00:00.000Z olt-lyo002-01 olt - {msgid} - text");
        let e = one(&decoder(), Format::Syslog, line.as_bytes());
        assert_eq!((e.kind, e.outcome), (kind, outcome), "{msgid}");
        assert_eq!(e.error_code, None);
        assert_eq!(e.attributes.value("syslog.msgid"), Some(json!(msgid)));
    }
    // An unknown MSGID with a known code takes the code's kind.
    let e = one(
        &decoder(),
        Format::Syslog,
        br#"<134>1 2026-01-05T10:00:00Z olt-1 olt - ALARM [meta@32473 code="GPON-LOS"]"#,
    );
    assert_eq!((e.kind, e.outcome, e.error_code.as_deref()), (K::OpticalLos, O::Failure, Some("GPON-LOS")));
    assert_eq!(e.message, None);
}

#[test]
fn rfc5424_timestamps_fractions_and_offsets() {
    let cases = [
        ("2026-01-05T10:00:00Z", "2026-01-05T10:00:00.000Z"),
        ("2026-01-05T10:00:00.5Z", "2026-01-05T10:00:00.500Z"),
        ("2026-01-05T10:00:00.123456Z", "2026-01-05T10:00:00.123Z"),
        ("2026-01-05T11:00:00.250+01:00", "2026-01-05T10:00:00.250Z"),
        ("2026-01-05T04:30:00-05:30", "2026-01-05T10:00:00.000Z"),
        ("2025-12-31T23:59:59.999-00:00", "2025-12-31T23:59:59.999Z"),
    ];
    for (ts, expected) in cases {
        let line = format!("<13>1 {ts} bng-1 bng - SESSION_START -");
        assert_eq!(one(&decoder(), Format::Syslog, line.as_bytes()).event_time, ms(expected), "{ts}");
    }
}

#[test]
fn rfc5424_nilvalues_and_minimal_record() {
    let e = one(&decoder(), Format::Syslog, b"<0>1 - core-rtr-01 - - - -");
    assert_eq!(e.event_time, received(), "NILVALUE timestamp: the reception time");
    assert_eq!(e.attributes.value("syslog.time_source"), Some(json!("received_at")));
    assert_eq!(e.attributes.value("syslog.facility"), Some(json!(0)));
    assert_eq!(e.attributes.value("syslog.app_name"), None);
    assert_eq!(e.attributes.value("syslog.msgid"), None);
    assert_eq!((e.kind, e.outcome, e.message), (K::Other, O::Info, None));
    let e = one(&decoder(), Format::Syslog, b"<191>1 2026-01-05T10:00:00Z h app 4242 - - ");
    assert_eq!(e.attributes.value("syslog.procid"), Some(json!("4242")));
    assert_eq!(e.attributes.value("syslog.severity"), Some(json!(7)));
    assert_eq!(e.message, None, "an empty MSG is no message");
}

#[test]
fn rfc5424_structured_data_escapes_and_several_elements() {
    let line = br#"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_STOP [meta@32473 a="q\"uote" b="back\\slash" c="br\]acket" d="kept\n" e="" session="S1"][origin@32473 ip="10.1.1.1" session="S2"][timeQuality tzKnown="1"] bye"#;
    let e = one(&decoder(), Format::Syslog, line);
    let get = |k: &str| e.attributes.value(k);
    assert_eq!(get("sd.a"), Some(json!("q\"uote")));
    assert_eq!(get("sd.b"), Some(json!("back\\slash")));
    assert_eq!(get("sd.c"), Some(json!("br]acket")));
    assert_eq!(get("sd.d"), Some(json!("kept\\n")));
    assert_eq!(get("sd.e"), Some(json!("")));
    assert_eq!(get("sd.session"), Some(json!("S1")));
    assert_eq!(get("sd.origin@32473.session"), Some(json!("S2")));
    assert_eq!(get("sd.ip"), Some(json!("10.1.1.1")));
    assert_eq!(get("sd.tzKnown"), Some(json!("1")));
    assert_eq!(e.message.as_deref(), Some("bye"));
    assert_eq!(e.kind, K::SessionStop);
}

#[test]
fn rfc5424_bom_and_non_utf8_message() {
    let mut line = b"<13>1 2026-01-05T10:00:00Z bng-1 bng - LINK_UP - ".to_vec();
    line.extend_from_slice(b"\xEF\xBB\xBFport ge-0/0/1 \xC3\xA9tat up");
    let e = one(&decoder(), Format::Syslog, &line);
    assert_eq!(e.message.as_deref(), Some("port ge-0/0/1 \u{e9}tat up"));
    // Without a BOM the MSG may be any bytes: decoded lossily rather than lost.
    let e = one(&decoder(), Format::Syslog, b"<13>1 2026-01-05T10:00:00Z bng-1 bng - LINK_UP - caf\xE9");
    assert_eq!(e.message.as_deref(), Some("caf\u{fffd}"));
}

#[test]
fn ip_literal_hostnames_are_ip_address_keys() {
    let e = one(&decoder(), Format::Syslog, b"<13>1 2026-01-05T10:00:00Z 10.20.30.40 bng - LINK_UP -");
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("10.20.30.40", EquipmentKey::IpAddress));
    let e = one(&decoder(), Format::Syslog, b"<13>1 2026-01-05T10:00:00Z 2001:DB8::1 bng - LINK_UP -");
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("2001:db8::1", EquipmentKey::IpAddress));
}

#[test]
fn clear_subscriber_never_appears_anywhere() {
    let dec = decoder();
    let line = br#"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START [meta@32473 subscriber="sub0000099" session="sub0000099-7"] session up for sub0000099 (subscriber=sub0000099, port 3)"#;
    let e = one(&dec, Format::Syslog, line);
    let p = dec.pseudonym(b"sub0000099");
    assert_eq!(e.subscriber.as_deref(), Some(p.as_str()));
    assert_eq!(e.message, Some(format!("session up for {p} (subscriber={p}, port 3)")));
    assert_eq!(e.attributes.value("sd.session"), Some(json!(format!("{p}-7"))));
    assert!(!serde_json::to_string(&e).unwrap_or_default().contains("sub0000099"));
    // Subscriber only in the free text of a 5424 record.
    let e = one(
        &dec,
        Format::Syslog,
        b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START - up subscriber=\"sub 42\" now",
    );
    assert_eq!(e.subscriber.as_deref(), Some(dec.pseudonym(b"sub 42").as_str()));
    assert_eq!(e.message, Some(format!("up subscriber=\"{}\" now", dec.pseudonym(b"sub 42"))));
    // `nosubscriber=` is another key, not a subscriber.
    let e = one(&dec, Format::Syslog, b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START - nosubscriber=x");
    assert_eq!(e.subscriber, None);
}

const EXAMPLE_3164: &str =
    "<187>Jan  5 10:00:00 cpe-par001-00042 4711: %DHCP-3-NOOFFER: no DHCPOFFER received on wan0 subscriber=sub0000042";

#[test]
fn rfc3164_contract_example_maps_every_field() {
    let dec = decoder();
    let e = one(&dec, Format::Syslog, EXAMPLE_3164.as_bytes());
    let p = dec.pseudonym(b"sub0000042");
    assert_eq!(e.event_id, lux_model::event_id(EXAMPLE_3164.as_bytes(), 0));
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00Z"));
    assert_eq!(e.equipment_id, "cpe-par001-00042");
    assert_eq!(e.equipment_key, EquipmentKey::Hostname);
    assert_eq!((e.kind, e.outcome), (K::DhcpFailure, O::Failure));
    assert_eq!(e.error_code.as_deref(), Some("DHCP-NOOFFER"));
    assert_eq!(e.subscriber.as_deref(), Some(p.as_str()));
    assert_eq!(e.message, Some(format!("no DHCPOFFER received on wan0 subscriber={p}")));
    let expected: std::collections::BTreeMap<String, serde_json::Value> = [
        ("syslog.facility", json!(23)),
        ("syslog.severity", json!(3)),
        ("cisco.seq", json!(4711)),
        ("cisco.facility", json!("DHCP")),
        ("cisco.severity", json!(3)),
        ("cisco.mnemonic", json!("NOOFFER")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(e.attributes, expected);
    assert!(!serde_json::to_string(&e).unwrap_or_default().contains("sub0000042"));
}

#[test]
fn rfc3164_cisco_mnemonics_map_to_codes_kinds_and_outcomes() {
    let cases = [
        ("%DHCP-3-NOOFFER", "DHCP-NOOFFER", K::DhcpFailure, O::Failure),
        ("%PPP-3-LCPTIMEOUT", "PPP-LCPTIMEOUT", K::PppFailure, O::Failure),
        ("%PPP-4-AUTHFAIL", "PPP-AUTHFAIL", K::AuthReject, O::Failure),
        ("%LINK-3-DOWN", "LINK-DOWN", K::LinkDown, O::Failure),
        ("%LINK-5-UP", "LINK-UP", K::LinkUp, O::Success),
        ("%DSL-4-RETRAIN", "DSL-RETRAIN", K::LinkRetrain, O::Info),
        ("%SYS-5-RESTART", "SYS-RESTART", K::Reboot, O::Info),
        ("%GPON-2-LOS", "GPON-LOS", K::OpticalLos, O::Failure),
        ("%GPON-1-DYINGGASP", "GPON-DYINGGASP", K::PowerLoss, O::Failure),
        ("%LINEPROTO-5-UPDOWN", "LINEPROTO-UPDOWN", K::Other, O::Info),
        ("%SW_MATM-4-MACFLAP_NOTIF", "SW_MATM-MACFLAP_NOTIF", K::Other, O::Info),
    ];
    for (tag, code, kind, outcome) in cases {
        let line = format!("<187>Jan 15 08:07:06 dslam-lyo002-01 12: {tag}: something happened");
        let e = one(&decoder(), Format::Syslog, line.as_bytes());
        assert_eq!(e.error_code.as_deref(), Some(code), "{tag}");
        assert_eq!((e.kind, e.outcome), (kind, outcome), "{tag}");
        assert_eq!(e.message.as_deref(), Some("something happened"));
        // Ten days after the reception date: last year's.
        assert_eq!(e.event_time, ms("2025-01-15T08:07:06Z"));
    }
}

#[test]
fn rfc3164_year_inference_around_new_year_and_tolerance() {
    let dec = decoder();
    let at = |line: &str, received: &str| {
        dec.decode(&raw_at(Format::Syslog, line.as_bytes(), ms(received), None)).map(|e| e[0].event_time)
    };
    // December's record received in January: last year.
    assert_eq!(at("<13>Dec 31 23:59:50 h m", "2026-01-01T00:00:30Z"), Ok(ms("2025-12-31T23:59:50Z")));
    // Less than a day ahead of reception (clock skew): this year.
    assert_eq!(at("<13>Jan  6 09:00:00 h m", "2026-01-05T10:00:00Z"), Ok(ms("2026-01-06T09:00:00Z")));
    // More than a day ahead: last year.
    assert_eq!(at("<13>Jan  7 10:00:00 h m", "2026-01-05T10:00:00Z"), Ok(ms("2025-01-07T10:00:00Z")));
    // February 29th of a leap year, received the next year.
    assert_eq!(at("<13>Feb 29 12:00:00 h m", "2029-01-10T00:00:00Z"), Ok(ms("2028-02-29T12:00:00Z")));
    // Cisco with an explicit year: no inference.
    assert_eq!(at("<13>Jan  7 2024 10:00:00 h m", "2026-01-05T10:00:00Z"), Ok(ms("2024-01-07T10:00:00Z")));
    // A longer tolerance keeps it this year.
    let lenient = Decoder::new(
        &DecodeConfig { future_tolerance: Duration::from_secs(3 * 86400), ..DecodeConfig::default() },
        KEY,
    );
    let e = lenient.decode(&raw_at(Format::Syslog, b"<13>Jan  7 10:00:00 h m", ms("2026-01-05T10:00:00Z"), None));
    assert_eq!(e.map(|e| e[0].event_time), Ok(ms("2026-01-07T10:00:00Z")));
}

#[test]
fn rfc3164_configured_timezone() {
    let paris = Decoder::new(&DecodeConfig { timezone: "+01:00".into(), ..DecodeConfig::default() }, KEY);
    let e = one(&paris, Format::Syslog, b"<13>Jan  5 11:00:00 cpe-1 %LINK-5-UP: up");
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00Z"));
    let ny = Decoder::new(&DecodeConfig { timezone: "-05:30".into(), ..DecodeConfig::default() }, KEY);
    assert_eq!(one(&ny, Format::Syslog, b"<13>Jan  5 04:30:00 cpe-1 x").event_time, ms("2026-01-05T10:00:00Z"));
}

#[test]
fn rfc3164_variants() {
    let dec = decoder();
    // No PRI: user.notice; zero-padded day; IP hostname; program tag with pid.
    let e = one(&dec, Format::Syslog, b"Jan 05 10:00:00 10.0.0.1 sshd[123]: Accepted password for admin");
    assert_eq!(e.attributes.value("syslog.facility"), Some(json!(1)));
    assert_eq!(e.attributes.value("syslog.severity"), Some(json!(5)));
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("10.0.0.1", EquipmentKey::IpAddress));
    assert_eq!(e.attributes.value("syslog.app_name"), Some(json!("sshd")));
    assert_eq!(e.attributes.value("syslog.procid"), Some(json!("123")));
    assert_eq!(e.message.as_deref(), Some("Accepted password for admin"));
    assert_eq!((e.kind, e.outcome, e.error_code.clone()), (K::Other, O::Info, None));
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00Z"));
    // Single space before a one-digit day, trailing CRLF.
    let e = one(&dec, Format::Syslog, b"<189>Jan 5 10:00:00 dslam-1 77: %DSL-4-RETRAIN: line 3 retrained\r\n");
    assert_eq!(e.message.as_deref(), Some("line 3 retrained"));
    assert_eq!(e.attributes.value("cisco.seq"), Some(json!(77)));
    // Cisco without hostname: sequence first, unsynchronised clock, milliseconds; equipment from the peer.
    let e = one(&dec, Format::Syslog, b"<189>4711: *Jan  5 10:00:00.123: %SYS-5-RESTART: System restarted --");
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00.123Z"));
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("192.0.2.10", EquipmentKey::IpAddress));
    assert_eq!(e.attributes.value("syslog.hostname_from"), Some(json!("peer")));
    assert_eq!(e.attributes.value("cisco.clock_unsynced"), Some(json!(true)));
    assert_eq!(e.attributes.value("cisco.seq"), Some(json!(4711)));
    assert_eq!(e.kind, K::Reboot);
    // Hostname followed by a colon; no tag at all.
    let e = one(&dec, Format::Syslog, b"<30>Jan 15 00:00:01 olt-7: free text only");
    assert_eq!(e.equipment_id, "olt-7");
    assert_eq!(e.message.as_deref(), Some("free text only"));
    // Quoted subscriber in the text.
    let e = one(
        &dec,
        Format::Syslog,
        b"<187>Jan  5 10:00:00 cpe-1 1: %PPP-4-AUTHFAIL: auth failed subscriber=\"Jean Dupont\";",
    );
    assert_eq!(e.subscriber.as_deref(), Some(dec.pseudonym(b"Jean Dupont").as_str()));
    assert!(!e.message.unwrap_or_default().contains("Jean"));
}

#[test]
fn auto_sniffs_syslog() {
    let e = one(&decoder(), Format::Auto, EXAMPLE_3164.as_bytes());
    assert_eq!((e.format, e.kind), (Format::Syslog, K::DhcpFailure));
    let e = one(&decoder(), Format::Auto, b"Jan  5 10:00:00 cpe-1 %LINK-3-DOWN: down");
    assert_eq!((e.format, e.kind), (Format::Syslog, K::LinkDown));
}

#[test]
fn malformed_syslog_maps_to_reasons() {
    let cases: &[(&[u8], R)] = &[
        (b"\r\n", R::Truncated),
        (b"<13", R::Truncated),
        (b"<1000>1 2026-01-05T10:00:00Z h a - - -", R::BadValue),
        (b"<192>1 2026-01-05T10:00:00Z h a - - -", R::BadValue),
        (b"<>1 2026-01-05T10:00:00Z h a - - -", R::BadValue),
        (b"<1x>1 2026-01-05T10:00:00Z h a - - -", R::BadValue),
        (b"<13>2 2026-01-05T10:00:00Z h a - - -", R::BadValue),
        (b"<13>1 2026-01-05T10:00:00Z bng-1", R::Truncated),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START", R::Truncated),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START ", R::Truncated),
        (b"<13>1 2026-13-05T10:00:00Z bng-1 bng - SESSION_START -", R::BadValue),
        (b"<13>1 yesterday bng-1 bng - SESSION_START -", R::BadValue),
        (b"<13>1  2026-01-05T10:00:00Z bng-1 bng - SESSION_START -", R::BadValue),
        (b"<13>1 2026-01-05T10:00:00Z - bng - SESSION_START -", R::MissingField),
        (b"<13>1 2026-01-05T10:00:00Z b\xC3\xA9 bng - SESSION_START -", R::BadValue),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START [meta a=\"b", R::Truncated),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START [meta a=\"b\"", R::Truncated),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START [meta a=b]", R::BadValue),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START [meta a=\"b\"]x", R::BadValue),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START [ a=\"b\"]", R::BadValue),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START x", R::BadValue),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START [m a=\"\xFF\"]", R::BadUtf8),
        (b"<13>1 2026-01-05T10:00:00Z bng-1 bng - SESSION_START - \xEF\xBB\xBF\xFF", R::BadUtf8),
        (b"<13>hello world", R::MissingField),
        (b"<13>Jan 32 10:00:00 host msg", R::BadValue),
        (b"<13>Jan  0 10:00:00 host msg", R::BadValue),
        (b"<13>Jan  5 25:00:00 host msg", R::BadValue),
        (b"<13>Jan  5 10:61:00 host msg", R::BadValue),
        (b"<13>Jan  5 10-00-00 host msg", R::BadValue),
        (b"<13>Feb 30 10:00:00 host msg", R::BadValue),
        (b"<13>Jan  5 10:00:00 ho\x01st msg", R::BadValue),
    ];
    for (line, expected) in cases {
        assert_eq!(reason(Format::Syslog, line), *expected, "{}", String::from_utf8_lossy(line));
    }
    // No hostname and no peer: no equipment.
    let r = decoder().decode(&raw_at(Format::Syslog, b"<189>12: Jan  5 10:00:00: %LINK-3-DOWN: x", received(), None));
    assert_eq!(r.map_err(|e| e.reason), Err(R::MissingField));
}

#[test]
fn formats_without_a_mapping_say_what_is_missing() {
    // JSON, key=value and binary have no built-in mapping: without a source entry, nothing names
    // the equipment (or the layout).
    for (format, payload, expected) in [
        (Format::Json, &b"{\"a\":1}"[..], "no equipment id"),
        (Format::Auto, &b"{\"a\":1}"[..], "no equipment id"),
        (Format::Kv, &b"a=1"[..], "no equipment id"),
        (Format::Binary, &b"\x01\x02"[..], "no layout"),
    ] {
        let e = decoder().decode(&raw(format, payload)).err();
        assert_eq!(e.as_ref().map(|e| e.reason), Some(R::MissingField), "{format:?}");
        let detail = e.map(|e| e.detail).unwrap_or_default();
        assert!(detail.starts_with(expected) && detail.contains("\"test-src\""), "{detail}");
    }
    assert_eq!(reason(Format::Auto, b"hello world"), R::UnknownFormat);
    assert_eq!(reason(Format::Auto, b"\x00\x01\x02"), R::UnknownFormat);
    let e = decoder().decode(&raw(Format::Auto, b"garbage")).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.starts_with("unknown_format: "), "{e}");
}

#[test]
fn config_validation_reports_keys() {
    assert!(DecodeConfig::default().validate("transform.decode").is_empty());
    for tz in ["UTC", "Z", "+01:00", "-05:30", "+0100", "+14:00"] {
        let cfg = DecodeConfig { timezone: tz.into(), ..DecodeConfig::default() };
        assert!(cfg.validate("x").is_empty(), "{tz}");
    }
    let bad = DecodeConfig {
        timezone: "Europe/Paris".into(),
        future_tolerance: Duration::from_secs(400 * 86400),
        ..DecodeConfig::default()
    };
    let problems = bad.validate("transform.decode");
    let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["transform.decode.timezone", "transform.decode.future_tolerance"]);
    for tz in ["+25:00", "+01:60", "1:00", "+1", "", "+01:00:00"] {
        let cfg = DecodeConfig { timezone: tz.into(), ..DecodeConfig::default() };
        assert_eq!(cfg.validate("d").len(), 1, "{tz:?}");
    }
    assert!(Decoder::try_new(&bad, KEY).is_err());
    let parsed: DecodeConfig = toml_like("timezone = \"+02:00\"\nfuture_tolerance = \"2h\"");
    assert_eq!(
        parsed,
        DecodeConfig {
            timezone: "+02:00".into(),
            future_tolerance: Duration::from_secs(7200),
            ..DecodeConfig::default()
        }
    );
}

/// The two-key TOML subset the test needs, through serde_json (no TOML dependency here).
fn toml_like(text: &str) -> DecodeConfig {
    let mut map = serde_json::Map::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(" = ") {
            map.insert(k.to_owned(), json!(v.trim_matches('"')));
        }
    }
    serde_json::from_value(serde_json::Value::Object(map)).unwrap_or_default()
}
