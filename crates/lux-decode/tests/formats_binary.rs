//! The declarative binary format: the worked example of docs/decoding.md (a fictional Fibrelink
//! OLT alarm record, its layout TOML and the event it gives) decoded exactly as documented, and
//! every malformation (magic, truncation, length field, TLVs, types, byte orders) mapped to its
//! dead-letter reason.

mod common;

use common::*;
use lux_decode::{DecodeConfig, Decoder};
use lux_model::{DeadLetterReason as R, EquipmentKey, EventKind, Format, Outcome, RawRecord};
use serde_json::json;

const DOC: &str = include_str!("../../../docs/decoding.md");
const DOC_KEY: &[u8] = b"example-key";

/// The fenced block that follows `<!-- olt-example: NAME -->` in docs/decoding.md.
fn doc_block(name: &str) -> String {
    let marker = format!("<!-- olt-example: {name} -->");
    let after = DOC.split_once(&marker).map(|(_, a)| a).unwrap_or_else(|| panic!("no {marker} in the doc"));
    let body = after.split_once("```").and_then(|(_, b)| b.split_once('\n')).map(|(_, b)| b).unwrap_or("");
    body.split_once("```").map(|(b, _)| b.to_owned()).unwrap_or_default()
}

/// The bytes of a hex dump: `0000  fb 01 ...  ascii`.
fn hexdump(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let hex_part = line.get(6..53).unwrap_or_else(|| line.get(6..).unwrap_or(""));
        for byte in hex_part.split_whitespace() {
            out.push(u8::from_str_radix(byte, 16).unwrap_or_else(|e| panic!("{byte:?}: {e}")));
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct Root {
    transform: Transform,
}
#[derive(serde::Deserialize)]
struct Transform {
    decode: DecodeConfig,
}

fn doc_config() -> DecodeConfig {
    let root: Root = toml::from_str(&doc_block("toml")).unwrap_or_else(|e| panic!("the doc's TOML: {e}"));
    root.transform.decode
}

fn doc_record() -> Vec<u8> {
    hexdump(&doc_block("hexdump"))
}

fn decode_with(cfg: &DecodeConfig, source: &str, format: Format, bytes: &[u8]) -> Result<lux_model::Event, R> {
    let dec = Decoder::try_new(cfg, DOC_KEY).unwrap_or_else(|p| panic!("{p:?}"));
    let raw = RawRecord::new(source, format, received(), None, bytes.to_vec());
    dec.decode(&raw).map(|mut v| v.remove(0)).map_err(|e| {
        assert!(!e.detail.is_empty());
        e.reason
    })
}

#[test]
fn the_documented_olt_alarm_decodes_to_the_documented_event() {
    let cfg = doc_config();
    assert!(cfg.validate("transform.decode").is_empty(), "{:?}", cfg.validate("transform.decode"));
    let bytes = doc_record();
    assert_eq!(bytes.len(), 73);
    let raw = RawRecord::new("olt-alarms", Format::Binary, received(), Some("10.20.0.5:6000".into()), bytes.clone());
    let dec = Decoder::new(&cfg, DOC_KEY);
    let events = dec.decode(&raw).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("olt-par001-01", EquipmentKey::Hostname));
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00Z"));
    assert_eq!((e.kind, e.outcome), (EventKind::OpticalLos, Outcome::Failure));
    assert_eq!(e.error_code.as_deref(), Some("FBL-17"));
    assert_eq!(e.subscriber.as_deref(), Some(dec.pseudonym(b"sub0004711").as_str()));
    let text = serde_json::to_string(e).unwrap_or_default();
    assert!(!text.contains("sub0004711"), "the clear subscriber id leaked: {text}");
    // The event, exactly as the doc shows it.
    let documented: serde_json::Value =
        serde_json::from_str(&doc_block("event")).unwrap_or_else(|err| panic!("the doc's event JSON: {err}"));
    assert_eq!(serde_json::to_value(e).unwrap_or_default(), documented);
    // The same record decodes through the hint alone when the source entry says binary.
    assert_eq!(decode_with(&cfg, "olt-alarms", Format::Auto, &bytes).map(|e| e.kind), Ok(EventKind::OpticalLos));
}

#[test]
fn split_records_uses_the_length_field() {
    let cfg = doc_config();
    let dec = Decoder::new(&cfg, DOC_KEY);
    let one = doc_record();
    let mut stream = one.clone();
    stream.extend_from_slice(&one);
    stream.extend_from_slice(&one[..40]);
    let e = dec.split_records(Format::Binary, Some("olt-alarms"), &stream).err().map(|e| (e.reason, e.detail));
    assert_eq!(e.as_ref().map(|e| e.0), Some(R::Truncated));
    assert!(e.map(|e| e.1).unwrap_or_default().contains("byte 146"), "the offset of the cut record");
    stream.truncate(one.len() * 2);
    let records = dec.split_records(Format::Binary, Some("olt-alarms"), &stream).unwrap_or_default();
    assert_eq!(records, vec![one.as_slice(), one.as_slice()]);
    // No source: the only layout configured.
    assert_eq!(dec.split_records(Format::Binary, None, &stream).map(|r| r.len()), Ok(2));
}

#[test]
fn malformed_records_map_to_reasons() {
    let cfg = doc_config();
    let good = doc_record();
    let with = |at: usize, b: u8| {
        let mut r = good.clone();
        r[at] = b;
        r
    };
    let mut longer = good.clone();
    longer.push(0);
    let mut tlv_cut = good.clone();
    tlv_cut.truncate(good.len() - 1);
    tlv_cut[3] = u8::try_from(tlv_cut.len()).unwrap_or(0);
    let mut rx_3_bytes = good[..32].to_vec();
    rx_3_bytes.extend_from_slice(&[3, 3, 1, 2, 3]);
    rx_3_bytes[3] = u8::try_from(rx_3_bytes.len()).unwrap_or(0);
    let mut bad_utf8 = good.clone();
    bad_utf8[16] = 0xFF;
    let cases: Vec<(&str, Vec<u8>, R)> = vec![
        ("wrong magic", with(1, 0x02), R::UnknownFormat),
        ("shorter than the fixed part", good[..20].to_vec(), R::Truncated),
        ("length field says more", good[..60].to_vec(), R::Truncated),
        ("record longer than the length field", longer, R::BadLength),
        ("length field smaller than the record", with(3, 10), R::BadLength),
        ("a TLV cut in its value", tlv_cut, R::Truncated),
        ("an i16 TLV of 3 bytes", rx_3_bytes, R::BadLength),
        ("olt name not UTF-8", bad_utf8, R::BadUtf8),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(decode_with(&cfg, "olt-alarms", Format::Binary, &bytes).err(), Some(expected), "{name}");
    }
    // No mapping entry for the source: no layout to decode with.
    assert_eq!(decode_with(&cfg, "elsewhere", Format::Binary, &good).err(), Some(R::MissingField));
}

/// A little-endian fixed-size layout with every field type, and a 2-byte-tag TLV whose lengths
/// count the header.
fn all_types_config() -> DecodeConfig {
    toml::from_str(
        r#"
        [[layouts]]
        name = "all"
        byte_order = "little"
        fields = [
          { name = "u8", offset = 0, type = "u8" },
          { name = "u16", offset = 1, type = "u16" },
          { name = "u16be", offset = 1, type = "u16", byte_order = "big" },
          { name = "u32", offset = 3, type = "u32" },
          { name = "u64", offset = 7, type = "u64" },
          { name = "i8", offset = 15, type = "i8" },
          { name = "i16", offset = 16, type = "i16" },
          { name = "i32", offset = 18, type = "i32" },
          { name = "i64", offset = 22, type = "i64" },
          { name = "ip", offset = 30, type = "ipv4" },
          { name = "ts", offset = 34, type = "unix_s" },
          { name = "ts_ms", offset = 38, type = "unix_ms" },
          { name = "raw", offset = 46, type = "bytes", length = 2 },
          { name = "nul", offset = 48, type = "string_nul", length = 4 },
          { name = "pre", offset = 52, type = "string_prefixed", length_size = 2 },
          { name = "host", offset = 56, type = "string", length = 4 },
        ]
        [layouts.tlv]
        offset = 60
        tag_size = 2
        length_size = 1
        length_includes_header = true
        tags = [{ tag = 258, name = "counter", type = "u32" }]

        [[sources]]
        source = "all"
        format = "binary"
        layout = "all"
        equipment = { field = "host", key = "field" }
        time = { field = "ts_ms", format = "unix_ms" }
        kind = { value = "reboot" }
        outcome = { value = "info" }
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_field_type_and_byte_order() {
    let cfg = all_types_config();
    assert_eq!(cfg.validate("d"), vec![]);
    let mut r = vec![0xFE, 0x34, 0x12];
    r.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    r.extend_from_slice(&u64::MAX.to_le_bytes());
    r.push(0xFF); // i8 -1
    r.extend_from_slice(&(-2i16).to_le_bytes());
    r.extend_from_slice(&(-3i32).to_le_bytes());
    r.extend_from_slice(&i64::MIN.to_le_bytes());
    r.extend_from_slice(&[192, 0, 2, 1]);
    r.extend_from_slice(&1_767_607_200u32.to_le_bytes());
    r.extend_from_slice(&1_767_607_200_123u64.to_le_bytes());
    r.extend_from_slice(&[0xAB, 0xCD]);
    r.extend_from_slice(b"ab\0z");
    r.extend_from_slice(&[2, 0, b'h', b'i']);
    r.extend_from_slice(b"eq1 ");
    r.extend_from_slice(&[0x02, 0x01, 7]);
    r.extend_from_slice(&99u32.to_le_bytes());
    r.extend_from_slice(&[0x09, 0x00, 4, 0x55]); // unknown tag 9, header counted: one value byte
    let e = decode_with(&cfg, "all", Format::Binary, &r).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!((e.equipment_id.as_str(), e.equipment_key), ("eq1", EquipmentKey::Field));
    assert_eq!(e.event_time, ms("2026-01-05T10:00:00.123Z"));
    assert_eq!((e.kind, e.outcome), (EventKind::Reboot, Outcome::Info));
    let a = &e.attributes;
    assert_eq!(a.value("u8"), Some(json!(254)));
    assert_eq!(a.value("u16"), Some(json!(0x1234)));
    assert_eq!(a.value("u16be"), Some(json!(0x3412)));
    assert_eq!(a.value("u32"), Some(json!(0xDEAD_BEEFu32)));
    assert_eq!(a.value("u64"), Some(json!(u64::MAX)));
    assert_eq!(a.value("i8"), Some(json!(-1)));
    assert_eq!(a.value("i16"), Some(json!(-2)));
    assert_eq!(a.value("i32"), Some(json!(-3)));
    assert_eq!(a.value("i64"), Some(json!(i64::MIN)));
    assert_eq!(a.value("ip"), Some(json!("192.0.2.1")));
    assert_eq!(a.value("ts"), Some(json!("2026-01-05T10:00:00.000Z")));
    assert_eq!(a.value("raw"), Some(json!("abcd")));
    assert_eq!(a.value("nul"), Some(json!("ab")));
    assert_eq!(a.value("pre"), Some(json!("hi")));
    assert_eq!(a.value("counter"), Some(json!(99)));
    assert_eq!(a.value("tlv.9"), Some(json!("55")), "unknown tags are kept as hex");
    assert_eq!(a.value("ts_ms"), None, "the event time field becomes event_time");
    assert_eq!(a.value("host"), None, "the equipment field becomes equipment_id");
    // A TLV length smaller than its own header.
    let mut bad = r.clone();
    let at = bad.len() - 2;
    bad[at] = 2;
    assert_eq!(decode_with(&cfg, "all", Format::Binary, &bad).err(), Some(R::BadLength));
}

#[test]
fn fixed_size_layouts_split_and_check_size() {
    let cfg: DecodeConfig = toml::from_str(
        r#"
        [[layouts]]
        name = "tick"
        magic = "AA"
        fields = [{ name = "id", offset = 1, type = "u8" }, { name = "t", offset = 2, type = "unix_s" }]
        [[sources]]
        source = "ticks"
        format = "binary"
        layout = "tick"
        equipment = { field = "id" }
        time = { field = "t" }
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dec = Decoder::new(&cfg, DOC_KEY);
    let rec = [0xAA, 7, 0x69, 0x5b, 0x8b, 0xa0];
    let mut stream = rec.repeat(3);
    assert_eq!(dec.split_records(Format::Auto, Some("ticks"), &stream).map(|r| r.len()), Ok(3));
    stream.push(0xAA);
    assert_eq!(dec.split_records(Format::Binary, Some("ticks"), &stream).err().map(|e| e.reason), Some(R::Truncated));
    let e = decode_with(&cfg, "ticks", Format::Binary, &rec).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!((e.equipment_id.as_str(), e.event_time), ("7", ms("2026-01-05T10:00:00Z")));
    assert_eq!(decode_with(&cfg, "ticks", Format::Binary, &stream[..7]).err(), Some(R::BadLength));
}

#[test]
fn checksums_are_verified() {
    let layout = |algorithm: &str, offset: i64, start: usize| -> DecodeConfig {
        toml::from_str(&format!(
            r#"
            [[layouts]]
            name = "c"
            fields = [{{ name = "id", offset = 0, type = "string", length = 9 }}]
            checksum = {{ algorithm = "{algorithm}", offset = {offset}, start = {start} }}
            [[sources]]
            source = "c"
            format = "binary"
            layout = "c"
            equipment = {{ field = "id" }}
            "#
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    };
    // The standard check values of "123456789".
    let cases: Vec<(&str, i64, usize, Vec<u8>)> = vec![
        ("crc32", -4, 0, [&b"123456789"[..], &[0xCB, 0xF4, 0x39, 0x26]].concat()),
        ("crc16_ccitt", -2, 0, [&b"123456789"[..], &[0x29, 0xB1]].concat()),
        ("xor8", -1, 0, [&b"123456789"[..], &[0x31]].concat()),
        ("sum8", -1, 0, [&b"123456789"[..], &[0xDD]].concat()),
        // A checksum in the header, covering what follows it.
        ("sum8", 0, 0, [&[0xDD][..], b"123456789"].concat()),
    ];
    for (algorithm, offset, start, record) in cases {
        let mut cfg = layout(algorithm, offset, start);
        if offset == 0 {
            cfg.layouts[0].fields[0].offset = 1;
        }
        assert_eq!(cfg.validate("d"), vec![], "{algorithm}");
        let got = decode_with(&cfg, "c", Format::Binary, &record).map(|e| String::from(e.equipment_id));
        assert_eq!(got, Ok("123456789".to_owned()), "{algorithm}");
        let mut bad = record.clone();
        let at = if offset == 0 { 5 } else { 3 };
        bad[at] ^= 0x04;
        assert_eq!(decode_with(&cfg, "c", Format::Binary, &bad).err(), Some(R::BadChecksum), "{algorithm}");
    }
    let cfg = layout("md5", 100_000_000, 0);
    let keys: Vec<String> = cfg.validate("d").into_iter().map(|p| p.key).collect();
    assert_eq!(keys, ["d.layouts[0].checksum.algorithm", "d.layouts[0].checksum.offset"]);
    assert_eq!(decode_with(&layout("crc32", -4, 0), "c", Format::Binary, b"12345678").err(), Some(R::Truncated));
}
