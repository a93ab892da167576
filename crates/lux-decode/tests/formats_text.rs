//! JSON lines and key=value records: field decoding (flattening, quoting, escapes), the
//! per-source mapping to the canonical event (equipment, time formats, kind and outcome maps,
//! error code prefix, pseudonymised subscriber that appears nowhere in clear), overrides of the
//! syslog and RADIUS built-in mappings, dead-letter reasons, and `split_records` for lines.

mod common;

use common::*;
use lux_decode::{DecodeConfig, Decoder};
use lux_model::{DeadLetterReason as R, EquipmentKey, Event, EventKind, Format, Outcome, RawRecord};
use serde_json::json;

fn config() -> DecodeConfig {
    toml::from_str(
        r#"
        [[sources]]
        source = "cpe-json"
        format = "json"
        equipment = { field = "device.host", key = "hostname" }
        time = { field = "ts", format = "rfc3339" }
        kind = { field = "event", map = { "wan_down" = "link_down", "wan_up" = "link_up" }, default = "other" }
        outcome = { field = "status", map = { "ok" = "success", "ko" = "failure" } }
        error_code = { field = "code", prefix = "CPE-" }
        subscriber = { field = "user" }
        message = { field = "msg" }

        [[sources]]
        source = "bng-kv"
        format = "kv"
        equipment = { field = "nas", key = "nas_identifier" }
        time = { field = "t", format = "unix_ms" }
        kind = { value = "dhcp_failure" }
        outcome = { value = "failure" }
        subscriber = { field = "sub" }

        [[sources]]
        source = "bng-syslog"
        equipment = { field = "sd.port", key = "field" }
        kind = { value = "config_change" }

        [[sources]]
        source = "radius-by-ip"
        format = "radius"
        equipment = { field = "NAS-IP-Address", key = "nas_ip_address" }
        subscriber = { field = "Calling-Station-Id" }
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn dec() -> Decoder {
    let cfg = config();
    assert_eq!(cfg.validate("transform.decode"), vec![]);
    Decoder::new(&cfg, KEY)
}

fn decode(source: &str, format: Format, payload: &[u8]) -> Result<Event, (R, String)> {
    let raw = RawRecord::new(source, format, received(), None, payload.to_vec());
    dec().decode(&raw).map(|mut v| v.remove(0)).map_err(|e| (e.reason, e.detail))
}

#[test]
fn json_record_mapped_field_by_field() {
    let line = br#"{"ts":"2026-01-05T11:00:00.250+01:00","device":{"host":"cpe-par001-00042","fw":"1.2"},"event":"wan_down","status":"ko","code":42,"user":"sub0000042","msg":"wan0 down for sub0000042","tags":["a","b"],"note":"seen sub0000042 twice"}"#;
    let e = decode("cpe-json", Format::Json, line).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(e.format, Format::Json);
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("cpe-par001-00042", EquipmentKey::Hostname));
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00.250Z"));
    assert_eq!((e.kind, e.outcome), (EventKind::LinkDown, Outcome::Failure));
    assert_eq!(e.error_code.as_deref(), Some("CPE-42"));
    let pseudonym = dec().pseudonym(b"sub0000042");
    assert_eq!(e.subscriber.as_deref(), Some(pseudonym.as_str()));
    assert_eq!(e.message, Some(format!("wan0 down for {pseudonym}")));
    let expected: std::collections::BTreeMap<String, serde_json::Value> = [
        ("device.fw", json!("1.2")),
        ("event", json!("wan_down")),
        ("status", json!("ko")),
        ("code", json!(42)),
        ("tags", json!(["a", "b"])),
        ("note", json!(format!("seen {pseudonym} twice"))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(e.attributes, expected);
    assert!(!serde_json::to_string(&e).unwrap_or_default().contains("sub0000042"));
    // Unmapped kind value, kind given by name, missing outcome field, time absent.
    let e = decode("cpe-json", Format::Json, br#"{"device":{"host":"h"},"event":"reboot"}"#)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!((e.kind, e.outcome), (EventKind::Reboot, Outcome::Info));
    assert_eq!(e.event_time, received());
    assert_eq!(e.attributes.value("lux.time_source"), Some(json!("received_at")));
    let e = decode("cpe-json", Format::Json, br#"{"device":{"host":"h"},"event":"strange"}"#)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(e.kind, EventKind::Other);
}

#[test]
fn json_failures_map_to_reasons() {
    let cases: Vec<(&[u8], R, &str)> = vec![
        (br#"{"ts":"2026-01-05T10:00:00Z""#, R::Truncated, "json: the record ends"),
        (br#"[1,2]"#, R::BadValue, "not an object"),
        (b"{\"a\":\"\xff\"}", R::BadUtf8, "UTF-8"),
        (br#"{"a":}"#, R::BadValue, "json:"),
        (
            br#"{"ts":"2026-01-05T10:00:00Z"}"#,
            R::MissingField,
            "no equipment id: the record has no field \"device.host\"",
        ),
        (br#"{"device":{"host":""}}"#, R::BadValue, "equipment id"),
        (br#"{"device":{"host":"h"},"ts":"yesterday"}"#, R::BadValue, "event time: field \"ts\""),
        (br#"{"device":{"host":"h"},"ts":1767607200}"#, R::BadValue, "RFC 3339"),
        (b"   ", R::Truncated, "empty"),
    ];
    for (line, reason, detail) in cases {
        let got = decode("cpe-json", Format::Json, line).err();
        assert_eq!(got.as_ref().map(|e| e.0), Some(reason), "{}", String::from_utf8_lossy(line));
        let text = got.map(|e| e.1).unwrap_or_default();
        assert!(text.contains(detail), "{text:?} should contain {detail:?}");
    }
}

#[test]
fn kv_record_with_quotes_and_escapes() {
    let line = br#"nas=bng-par001-01 t=1767607200123 sub="sub 0004711" reason="no \"offer\"\tfrom\\pool" path=C:\dir empty="" single='it''s'"#;
    let e = decode("bng-kv", Format::Kv, line);
    // `'it''s'`: the first quote closes the value, and a quote glued to it is refused.
    assert_eq!(e.err().map(|e| e.0), Some(R::BadValue));
    let line = b"nas=bng-par001-01 t=1767607200123 sub=\"sub 0004711\" reason=\"no \\\"offer\\\"\\tfrom\\\\pool\" path=C:\\dir empty=\"\" single='it\\'s' x=1 x=2\r\n";
    let e = decode("bng-kv", Format::Kv, line).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("bng-par001-01", EquipmentKey::NasIdentifier));
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00.123Z"));
    assert_eq!((e.kind, e.outcome), (EventKind::DhcpFailure, Outcome::Failure));
    assert_eq!(e.subscriber.as_deref(), Some(dec().pseudonym(b"sub 0004711").as_str()));
    let a = &e.attributes;
    assert_eq!(a.value("reason"), Some(json!("no \"offer\"\tfrom\\pool")));
    assert_eq!(a.value("path"), Some(json!("C:\\dir")));
    assert_eq!(a.value("empty"), Some(json!("")));
    assert_eq!(a.value("single"), Some(json!("it's")));
    assert_eq!(a.value("x"), Some(json!("2")), "a repeated key keeps its last value");
    assert_eq!(a.len(), 5);
}

#[test]
fn kv_failures_map_to_reasons() {
    let cases: Vec<(&[u8], R)> = vec![
        (b"nas=a t=1 lonely", R::BadValue),
        (b"nas=a =1", R::BadValue),
        (b"nas=a msg=\"never closed", R::Truncated),
        (b"nas=\xff", R::BadUtf8),
        (b"t=1", R::MissingField),
        (b"nas=a t=soon", R::BadValue),
        (b"", R::Truncated),
    ];
    for (line, reason) in cases {
        let got = decode("bng-kv", Format::Kv, line).err().map(|e| e.0);
        assert_eq!(got, Some(reason), "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn syslog_and_radius_mappings_can_be_overridden() {
    let line = br#"<131>1 2026-01-05T10:00:00.123Z bng-par001-01 bng - AUTH_REJECT [meta@32473 code="PPP-AUTHFAIL" subscriber="sub0004711" port="ge-0/0/1"] PPP authentication failed"#;
    let e = decode("bng-syslog", Format::Syslog, line).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("ge-0/0/1", EquipmentKey::Field));
    assert_eq!((e.kind, e.outcome), (EventKind::ConfigChange, Outcome::Failure), "kind overridden, outcome kept");
    assert_eq!(e.error_code.as_deref(), Some("PPP-AUTHFAIL"));
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00.123Z"));
    assert_eq!(e.subscriber.as_deref(), Some(dec().pseudonym(b"sub0004711").as_str()));
    // Another source with no entry keeps the built-in mapping.
    let e = decode("other", Format::Syslog, line).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!((e.equipment_id.as_str(), e.kind), ("bng-par001-01", EventKind::AuthReject));

    let mut p = vec![4, 7, 0, 0];
    p.extend_from_slice(&[0; 16]);
    for (t, v) in [
        (1u8, b"sub0004711".to_vec()),
        (4, vec![10, 0, 0, 1]),
        (31, b"00:11:22:33:44:55".to_vec()),
        (32, b"bng-par001-01".to_vec()),
        (40, 1u32.to_be_bytes().to_vec()),
    ] {
        p.push(t);
        p.push(u8::try_from(v.len() + 2).unwrap_or(0));
        p.extend_from_slice(&v);
    }
    let len = u16::try_from(p.len()).unwrap_or(0).to_be_bytes();
    p[2..4].copy_from_slice(&len);
    let e = decode("radius-by-ip", Format::Auto, &p).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("10.0.0.1", EquipmentKey::NasIpAddress));
    assert_eq!(e.subscriber.as_deref(), Some(dec().pseudonym(b"00:11:22:33:44:55").as_str()));
    assert_eq!(e.attributes.value("Calling-Station-Id"), None);
    assert_eq!(e.kind, EventKind::SessionStart);
}

#[test]
fn split_records_for_text_and_radius() {
    let d = dec();
    let input = b"a=1\r\n\r\nb=2\n\nc=3";
    assert_eq!(d.split_records(Format::Kv, None, input), Ok(vec![&b"a=1"[..], &b"b=2"[..], &b"c=3"[..]]));
    assert_eq!(d.split_records(Format::Auto, Some("cpe-json"), b"{}\n{}\n").map(|r| r.len()), Ok(2));
    let mut packet = vec![4, 1, 0, 26];
    packet.extend_from_slice(&[0; 16]);
    packet.extend_from_slice(&[40, 6, 0, 0, 0, 1]);
    let mut stream = packet.repeat(3);
    assert_eq!(d.split_records(Format::Radius, None, &stream), Ok(vec![packet.as_slice(); 3]));
    assert_eq!(d.split_records(Format::Auto, None, &stream).map(|r| r.len()), Ok(3), "sniffed as RADIUS");
    stream.extend_from_slice(&packet[..10]);
    let e = d.split_records(Format::Radius, None, &stream).err();
    assert_eq!(e.as_ref().map(|e| e.reason), Some(R::Truncated));
    assert!(e.map(|e| e.detail).unwrap_or_default().starts_with("record at byte 78 of the input"));
}
