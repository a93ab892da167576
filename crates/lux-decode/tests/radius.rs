//! RADIUS accounting decoding: Start, Interim-Update and Stop packets built here, attribute
//! typing through the RFC 2865/2866/2869 dictionary (named values, repeats, gigawords), vendor
//! dictionaries (built-in and from config, unknown ones kept as hex), equipment keys, and each
//! malformed packet mapped to its reason.

mod common;

use common::*;
use lux_model::{DeadLetterReason as R, EquipmentKey, Event, EventKind as K, Format, Outcome as O};
use serde_json::json;

/// An Accounting-Request with `attrs`, its length field computed.
fn packet(code: u8, attrs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut p = vec![code, 42, 0, 0];
    p.extend_from_slice(&[0xAB; 16]);
    for (t, v) in attrs {
        p.push(*t);
        p.push(u8::try_from(v.len() + 2).unwrap_or(255));
        p.extend_from_slice(v);
    }
    let len = u16::try_from(p.len()).unwrap_or(u16::MAX).to_be_bytes();
    p[2] = len[0];
    p[3] = len[1];
    p
}

fn int(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn text(v: &str) -> Vec<u8> {
    v.as_bytes().to_vec()
}

const T0: u32 = 1_767_607_200; // 2026-01-05T10:00:00Z

fn common_attrs(status: u32) -> Vec<(u8, Vec<u8>)> {
    vec![
        (1, text("sub0004711")),
        (4, vec![10, 0, 0, 1]),
        (8, vec![100, 64, 3, 7]),
        (31, text("00:11:22:33:44:55")),
        (32, text("bng-par001-01")),
        (40, int(status)),
        (44, text("S-0001")),
        (55, int(T0 + status)),
    ]
}

fn decode(format: Format, bytes: &[u8]) -> Result<Event, R> {
    decoder().decode(&raw(format, bytes)).map(|mut v| v.remove(0)).map_err(|e| {
        assert!(!e.detail.is_empty());
        e.reason
    })
}

#[test]
fn start_packet() {
    let bytes = packet(4, &common_attrs(1));
    let e = decode(Format::Radius, &bytes).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!(e.event_id, lux_model::event_id(&bytes, 0));
    assert_eq!(e.format, Format::Radius);
    assert_eq!((e.kind, e.outcome), (K::SessionStart, O::Info));
    assert_eq!(e.event_time, ms("2026-01-05T10:00:01Z"));
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("bng-par001-01", EquipmentKey::NasIdentifier));
    assert_eq!(e.error_code, None);
    assert_eq!(e.message, None);
    assert_eq!(e.subscriber.as_deref(), Some(decoder().pseudonym(b"sub0004711").as_str()));
    let expected: std::collections::BTreeMap<String, serde_json::Value> = [
        ("radius.identifier", json!(42)),
        ("Acct-Status-Type", json!(1)),
        ("Acct-Status-Type-Name", json!("Start")),
        ("NAS-IP-Address", json!("10.0.0.1")),
        ("Framed-IP-Address", json!("100.64.3.7")),
        ("Calling-Station-Id", json!("00:11:22:33:44:55")),
        ("Acct-Session-Id", json!("S-0001")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(e.attributes, expected);
    assert!(!serde_json::to_string(&e).unwrap_or_default().contains("sub0004711"));
}

#[test]
fn interim_packet_with_counters() {
    let mut attrs = common_attrs(3);
    attrs.extend([(42, int(1_000)), (43, int(2_000)), (46, int(600))]);
    let e = decode(Format::Radius, &packet(4, &attrs)).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!(e.kind, K::SessionInterim);
    assert_eq!(e.attributes.value("Acct-Input-Octets"), Some(json!(1_000)));
    assert_eq!(e.attributes.value("Acct-Output-Octets"), Some(json!(2_000)));
    assert_eq!(e.attributes.value("Acct-Session-Time"), Some(json!(600)));
    assert_eq!(e.attributes.value("Acct-Status-Type-Name"), Some(json!("Interim-Update")));
}

#[test]
fn stop_packet_with_gigawords_and_terminate_cause() {
    let mut attrs = common_attrs(2);
    attrs.extend([
        (42, int(5)),
        (52, int(2)),
        (43, int(u32::MAX)),
        (53, int(1)),
        (46, int(3_600)),
        (49, int(2)),
        (26, vec![0, 0, 0x0a, 0x4c, 1, 5, b'o', b'p', b's']),
        (26, vec![0, 0, 0x30, 0x39, 1, 3, 7]),
    ]);
    let e = decode(Format::Radius, &packet(4, &attrs)).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!((e.kind, e.outcome), (K::SessionStop, O::Info));
    assert_eq!(e.error_code.as_deref(), Some("RADIUS-TC-2"));
    assert_eq!(e.attributes.value("Acct-Input-Octets"), Some(json!(2u64 * (1 << 32) + 5)));
    assert_eq!(e.attributes.value("Acct-Output-Octets"), Some(json!((1u64 << 32) + u64::from(u32::MAX))));
    assert_eq!(e.attributes.value("Acct-Input-Gigawords"), None, "folded into the 64-bit total");
    assert_eq!(e.attributes.value("Acct-Terminate-Cause"), Some(json!(2)));
    assert_eq!(e.attributes.value("Acct-Session-Time"), Some(json!(3_600)));
    assert_eq!(e.attributes.value("Juniper-Local-User-Name"), Some(json!("ops")), "built-in vendor 2636");
    assert_eq!(e.attributes.value("radius.vendor.12345"), Some(json!("010307")), "unknown vendor kept as hex");
    assert_eq!(e.attributes.value("Acct-Terminate-Cause-Name"), Some(json!("Lost-Carrier")));
    assert_eq!(e.attributes.value("User-Name"), None);
}

#[test]
fn equipment_falls_back_to_nas_ip_and_time_to_reception() {
    let attrs: Vec<_> = common_attrs(1).into_iter().filter(|(t, _)| *t != 32 && *t != 55).collect();
    let e = decode(Format::Radius, &packet(4, &attrs)).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("10.0.0.1", EquipmentKey::NasIpAddress));
    assert_eq!(e.event_time, received());
    assert_eq!(e.attributes.value("radius.time_source"), Some(json!("received_at")));
    // No User-Name: no subscriber. Accounting-On: the NAS rebooted.
    let attrs: Vec<_> = common_attrs(7).into_iter().filter(|(t, _)| *t != 1).collect();
    let e = decode(Format::Radius, &packet(4, &attrs)).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!((e.kind, e.subscriber), (K::Reboot, None));
}

#[test]
fn auto_sniffs_radius_and_padding_is_ignored() {
    let bytes = packet(4, &common_attrs(1));
    assert_eq!(decode(Format::Auto, &bytes).map(|e| (e.format, e.kind)), Ok((Format::Radius, K::SessionStart)));
    let mut padded = bytes.clone();
    padded.extend_from_slice(&[0, 0, 0]);
    assert_eq!(decode(Format::Radius, &padded).map(|e| e.kind), Ok(K::SessionStart), "RFC 2865: padding ignored");
    assert_eq!(decode(Format::Auto, &padded).err(), Some(R::UnknownFormat), "auto needs an exact length");
}

#[test]
fn malformed_packets_map_to_reasons() {
    let good = packet(4, &common_attrs(1));
    let with_len = |len: u16| {
        let mut p = good.clone();
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    };
    let without = |t: u8| packet(4, &common_attrs(1).into_iter().filter(|(x, _)| *x != t).collect::<Vec<_>>());
    let with = |extra: (u8, Vec<u8>)| {
        let mut a = common_attrs(1);
        a.push(extra);
        packet(4, &a)
    };
    let mut bad_attr_len = good.clone();
    bad_attr_len[21] = 1; // User-Name's length byte
    let mut overrun = good.clone();
    overrun[21] = 200;
    let mut no_room = with_len(u16::try_from(good.len() + 1).unwrap_or(0));
    no_room.push(1);
    let cases: Vec<(&str, Vec<u8>, R)> = vec![
        ("shorter than the header", good[..19].to_vec(), R::Truncated),
        ("Access-Request", packet(1, &common_attrs(1)), R::UnknownFormat),
        ("Accounting-Response", packet(5, &[]), R::UnknownFormat),
        ("length under 20", with_len(19), R::BadLength),
        ("length over 4096", with_len(5000), R::BadLength),
        ("length over the datagram", with_len(u16::try_from(good.len() + 10).unwrap_or(0)), R::Truncated),
        ("attribute length 1", bad_attr_len, R::BadLength),
        ("attribute past the end", overrun, R::Truncated),
        ("attribute header cut", no_room, R::Truncated),
        ("integer of 3 bytes", with((46, vec![0, 0, 1])), R::BadLength),
        ("address of 5 bytes", with((8, vec![1, 2, 3, 4, 5])), R::BadLength),
        ("empty text", with((44, vec![])), R::BadLength),
        ("no Acct-Status-Type", without(40), R::MissingField),
        ("no NAS id", packet(4, &[(40, int(1)), (1, text("u"))]), R::MissingField),
        ("NAS-Identifier not UTF-8", packet(4, &[(40, int(1)), (32, vec![0xFF, 0xFE])]), R::BadUtf8),
        ("two Acct-Status-Type", with((40, int(2))), R::BadValue),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(decode(Format::Radius, &bytes).err(), Some(expected), "{name}");
    }
}

#[test]
fn dictionary_types_named_values_and_repeats() {
    let mut attrs = common_attrs(2);
    attrs.extend([
        (5, int(7)),            // NAS-Port
        (6, int(2)),            // Service-Type Framed
        (7, int(1)),            // Framed-Protocol PPP
        (61, int(15)),          // NAS-Port-Type Ethernet
        (45, int(1)),           // Acct-Authentic RADIUS
        (49, int(11)),          // Acct-Terminate-Cause NAS-Reboot
        (25, vec![0xC1, 0x01]), // Class (octets, may repeat)
        (25, vec![0xC1, 0x02]),
        (87, text("0/1/3:100")), // NAS-Port-Id
        (41, int(3)),            // Acct-Delay-Time
        (200, vec![1, 2]),       // unknown
        (51, int(1)),            // Acct-Link-Count
    ]);
    let e = decode(Format::Radius, &packet(4, &attrs)).unwrap_or_else(|r| panic!("{r:?}"));
    let a = &e.attributes;
    assert_eq!(a.value("NAS-Port"), Some(json!(7)));
    assert_eq!(a.value("Service-Type-Name"), Some(json!("Framed")));
    assert_eq!(a.value("Framed-Protocol-Name"), Some(json!("PPP")));
    assert_eq!(a.value("NAS-Port-Type"), Some(json!(15)));
    assert_eq!(a.value("NAS-Port-Type-Name"), Some(json!("Ethernet")));
    assert_eq!(a.value("Acct-Authentic-Name"), Some(json!("RADIUS")));
    assert_eq!(a.value("Acct-Terminate-Cause-Name"), Some(json!("NAS-Reboot")));
    assert_eq!(e.error_code.as_deref(), Some("RADIUS-TC-11"));
    assert_eq!(a.value("Class"), Some(json!(["c101", "c102"])));
    assert_eq!(a.value("NAS-Port-Id"), Some(json!("0/1/3:100")));
    assert_eq!(a.value("Acct-Delay-Time"), Some(json!(3)));
    assert_eq!(a.value("radius.attr.200"), Some(json!("0102")));
    assert_eq!(a.value("Event-Timestamp"), None, "it is the event time");
}

/// A Vendor-Specific attribute: vendor id then (code, value) sub-attributes.
fn vsa(vendor: u32, subs: &[(u8, Vec<u8>)]) -> (u8, Vec<u8>) {
    let mut v = vendor.to_be_bytes().to_vec();
    for (code, value) in subs {
        v.push(*code);
        v.push(u8::try_from(value.len() + 2).unwrap_or(255));
        v.extend_from_slice(value);
    }
    (26, v)
}

#[test]
fn vendor_specific_attributes_through_the_dictionaries() {
    let cfg: lux_decode::DecodeConfig = toml::from_str(
        r#"
        [[radius.vendors]]
        id = 2636
        name = "Juniper"
        attributes = [{ code = 10, name = "Juniper-Interface-Id", type = "text" }]
        [[radius.vendors]]
        id = 4874
        name = "ERX"
        attributes = [
          { code = 1, name = "ERX-Virtual-Router-Name", type = "text" },
          { code = 4, name = "ERX-Primary-Dns", type = "ipaddr" },
          { code = 99, name = "ERX-Since", type = "date" },
        ]
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.validate("transform.decode"), vec![]);
    let dec = lux_decode::Decoder::new(&cfg, KEY);
    let mut attrs = common_attrs(1);
    attrs.extend([
        vsa(9, &[(1, text("ip:addr-pool=pool1")), (1, text("subscriber:sa=internet"))]),
        vsa(9, &[(1, text("third"))]),
        vsa(2011, &[(2, int(10_000)), (138, text("isp.example")), (77, vec![1])]),
        vsa(2636, &[(1, text("ops")), (10, text("ge-0/0/1.100"))]),
        vsa(4874, &[(1, text("default")), (4, vec![192, 0, 2, 53]), (99, int(T0))]),
        vsa(4874, &[(4, vec![1, 2, 3])]), // an address of 3 bytes: kept as hex, with a warning
        vsa(99_999, &[(1, text("x"))]),
        (26, vec![0, 0, 0, 9, 1]), // Cisco, but not the recommended sub-attribute format
    ]);
    let bytes = packet(4, &attrs);
    let e = dec.decode(&raw(Format::Radius, &bytes)).map(|mut v| v.remove(0)).unwrap_or_else(|e| panic!("{e}"));
    let a = &e.attributes;
    assert_eq!(a.value("Cisco-AVPair"), Some(json!(["ip:addr-pool=pool1", "subscriber:sa=internet", "third"])));
    assert_eq!(a.value("Huawei-Input-Average-Rate"), Some(json!(10_000)));
    assert_eq!(a.value("Huawei-Domain-Name"), Some(json!("isp.example")));
    assert_eq!(a.value("radius.vendor.2011.77"), Some(json!("01")));
    assert_eq!(a.value("Juniper-Local-User-Name"), Some(json!("ops")), "built-in kept");
    assert_eq!(a.value("Juniper-Interface-Id"), Some(json!("ge-0/0/1.100")), "extended from config");
    assert_eq!(a.value("ERX-Virtual-Router-Name"), Some(json!("default")));
    assert_eq!(a.value("ERX-Primary-Dns"), Some(json!("192.0.2.53")));
    assert_eq!(a.value("ERX-Since"), Some(json!("2026-01-05T10:00:00.000Z")));
    assert_eq!(a.value("radius.vendor.4874.4"), Some(json!("010203")));
    assert!(a.value("radius.warning").is_some());
    assert_eq!(a.value("radius.vendor.99999"), Some(json!("010378")));
    assert_eq!(a.value("radius.vendor.9"), Some(json!("01")));
    // Without the config, ERX is unknown: kept whole, as hex.
    let e = decode(Format::Radius, &bytes).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!(e.attributes.value("ERX-Virtual-Router-Name"), None);
    assert!(matches!(e.attributes.value("radius.vendor.4874"), Some(serde_json::Value::Array(v)) if v.len() == 2));
    // A Vendor-Specific attribute too short for its vendor id.
    let short = packet(4, &[common_attrs(1), vec![(26, vec![0, 0, 9])]].concat());
    assert_eq!(decode(Format::Radius, &short).err(), Some(R::BadLength));
}

/// A random value for an attribute of type `t`: one that fits its type 19 times in 20, else an
/// empty one, one of the wrong length or text that is not UTF-8.
fn random_value(rng: &mut rand_chacha::ChaCha8Rng, t: u8) -> Vec<u8> {
    use lux_decode::RadiusType;
    use rand::Rng;
    let misfit = rng.gen_range(0..20) == 0;
    let kind = lux_decode::radius_attribute(t).map_or(RadiusType::Octets, |a| a.kind);
    match kind {
        _ if misfit => match rng.gen_range(0..3) {
            0 => Vec::new(),
            1 => vec![0xff, 0xfe, b'x'],
            _ => vec![1, 2, 3, 4, 5],
        },
        // Small integers: enumerated attributes' values with a name and without one.
        RadiusType::Integer => int(if rng.gen_bool(0.7) { rng.gen_range(0..30) } else { rng.gen() }),
        RadiusType::IpAddr | RadiusType::Date => int(rng.gen()),
        RadiusType::Text | RadiusType::Octets if t == 26 => {
            // Vendor-Specific: Cisco (9) cisco-avpair, or an unknown vendor.
            let vendor: u32 = if rng.gen_bool(0.5) { 9 } else { 4242 };
            let mut v = vendor.to_be_bytes().to_vec();
            v.extend_from_slice(&[1, 8, b'a', b'=', b'b', b'c', b'd', b'e']);
            v
        }
        RadiusType::Text | RadiusType::Octets => {
            let len = rng.gen_range(1..24);
            (0..len).map(|_| rng.gen_range(b'0'..=b'z')).collect()
        }
    }
}

/// Packets of a few orders of attribute types, again and again with random values: a decoder
/// that decodes each order seen before by its plan (`decode_event`, a decoder's own) gives what
/// the generic path gives (`decode`, which a shared decoder uses), events and errors alike,
/// including for values a plan does not expect (an integer whose value name comes or goes, a
/// length that does not fit, an empty or non-UTF-8 text) and orders it cannot plan (a vendor
/// attribute, an unknown type, a repeat, no status, no equipment, too many attributes).
#[test]
fn planned_packets_decode_as_the_generic_path_decodes_them() {
    use rand::{Rng, SeedableRng};
    let many: Vec<u8> = (1..=40).filter(|t| ![2, 3, 26, 25, 33].contains(t)).collect();
    let orders: Vec<&[u8]> = vec![
        &[1, 4, 8, 31, 32, 40, 44, 55, 61, 6, 7, 45],
        &[1, 4, 8, 31, 32, 40, 44, 42, 43, 46, 47, 48, 52, 53, 55],
        &[32, 1, 4, 40, 44, 42, 43, 46, 49, 55, 5, 87, 30],
        &[1, 4, 40, 44, 8, 53],
        &[1, 40, 44],
        &[1, 4, 32, 44],
        &[1, 32, 40, 26, 44],
        &[1, 32, 40, 25, 25, 44],
        &[1, 32, 40, 44, 44],
        &[1, 32, 40, 200, 44],
        &many,
    ];
    let shared = decoder();
    let mut own = decoder();
    let mut event = Event::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x9ad1_0505);
    let (mut decoded, mut refused) = (0, 0);
    for round in 0..30_000 {
        // Mostly the first orders, as a NAS sends them; the others now and then.
        let order = orders[if rng.gen_bool(0.8) { rng.gen_range(0..3) } else { rng.gen_range(0..orders.len()) }];
        let attrs: Vec<(u8, Vec<u8>)> = order.iter().map(|&t| (t, random_value(&mut rng, t))).collect();
        let raw = raw(Format::Radius, &packet(4, &attrs));
        match (shared.decode(&raw), own.decode_event(&raw, &mut event)) {
            (Ok(events), Ok(())) => {
                decoded += 1;
                assert_eq!(events[0], event, "round {round}: {attrs:?}");
            }
            (Err(generic), Err(planned)) => {
                refused += 1;
                assert_eq!(generic, planned, "round {round}: {attrs:?}");
            }
            (generic, planned) => panic!("round {round}: {attrs:?}: generic {generic:?}, planned {planned:?}"),
        }
    }
    // Both kinds of outcome were compared, many times.
    assert!(decoded > 10_000 && refused > 1_000, "{decoded} decoded, {refused} refused");
}
