//! Robustness: 100,000 random and mutated records per decoder (truncations, bit flips, byte
//! insertions and deletions of valid records, and pure noise) never make the decoder (nor
//! `split_records`) panic, every failure carries a detail, and no clear subscriber id leaks.

mod common;

use common::*;
use lux_model::Format;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn radius_stop() -> Vec<u8> {
    let attrs: Vec<(u8, Vec<u8>)> = vec![
        (1, b"sub0004711".to_vec()),
        (4, vec![10, 0, 0, 1]),
        (32, b"bng-par001-01".to_vec()),
        (40, 2u32.to_be_bytes().to_vec()),
        (42, 5u32.to_be_bytes().to_vec()),
        (52, 2u32.to_be_bytes().to_vec()),
        (49, 2u32.to_be_bytes().to_vec()),
        (55, 1_767_607_200u32.to_be_bytes().to_vec()),
    ];
    let mut p = vec![4, 1, 0, 0];
    p.extend_from_slice(&[0; 16]);
    for (t, v) in attrs {
        p.push(t);
        p.push(u8::try_from(v.len() + 2).unwrap_or(0));
        p.extend_from_slice(&v);
    }
    let len = u16::try_from(p.len()).unwrap_or(0).to_be_bytes();
    p[2] = len[0];
    p[3] = len[1];
    p
}

#[test]
fn no_input_makes_the_decoder_panic() {
    let seeds: Vec<Vec<u8>> = vec![
        br#"<131>1 2026-01-05T10:00:00.123Z bng-par001-01 bng - AUTH_REJECT [meta@32473 code="PPP-AUTHFAIL" subscriber="sub0004711" port="ge-0/0/1"] PPP authentication failed"#.to_vec(),
        br#"<13>1 2026-01-05T11:00:00.250+01:00 10.0.0.1 bng 12 SESSION_STOP [a@1 x="q\"\\\]"][b@2 y=""] \xEF\xBB\xBFbye"#.to_vec(),
        b"<187>Jan  5 10:00:00 cpe-par001-00042 4711: %DHCP-3-NOOFFER: no DHCPOFFER received on wan0 subscriber=sub0000042".to_vec(),
        b"<189>4711: *Jan  5 10:00:00.123: %SYS-5-RESTART: System restarted".to_vec(),
        b"Feb 29 2028 23:59:59 olt-1 sshd[1]: subscriber=\"a b\" x".to_vec(),
        radius_stop(),
    ];
    let formats = [Format::Auto, Format::Syslog, Format::Radius];
    let dec = decoder();
    let mut rng = ChaCha8Rng::seed_from_u64(0x00c0_ffee_dec0_de00);
    let (mut ok, mut failed) = (0u32, 0u32);
    for i in 0..100_000u32 {
        let seed = &seeds[rng.gen_range(0..seeds.len())];
        let mut bytes = seed.clone();
        match i % 5 {
            0 => bytes.truncate(rng.gen_range(0..=seed.len())),
            1 => {
                for _ in 0..rng.gen_range(1..=4) {
                    if !bytes.is_empty() {
                        let at = rng.gen_range(0..bytes.len());
                        bytes[at] ^= 1 << rng.gen_range(0..8);
                    }
                }
            }
            2 => {
                for _ in 0..rng.gen_range(1..=3) {
                    let at = rng.gen_range(0..=bytes.len());
                    if rng.gen_bool(0.5) && at < bytes.len() {
                        bytes.remove(at);
                    } else {
                        bytes.insert(at, rng.gen());
                    }
                }
            }
            3 => {
                let at = rng.gen_range(0..bytes.len().max(1));
                if let Some(b) = bytes.get_mut(at) {
                    *b = [b' ', b'"', b'\\', b']', b'[', b'<', b'>', b':', b'%', 0, 0xFF, 4][rng.gen_range(0..12)];
                }
            }
            _ => {
                let len = rng.gen_range(0..64);
                bytes = (0..len).map(|_| rng.gen()).collect();
                if rng.gen_bool(0.3) {
                    bytes.insert(0, if rng.gen_bool(0.5) { b'<' } else { 4 });
                }
            }
        }
        let format = formats[(i as usize / 5) % formats.len()];
        match dec.decode(&raw(format, &bytes)) {
            Ok(events) => {
                ok += 1;
                assert_eq!(events.len(), 1);
                assert!(serde_json::to_string(&events[0]).is_ok());
            }
            Err(e) => {
                failed += 1;
                assert!(!e.detail.is_empty(), "{e:?}");
            }
        }
    }
    assert_eq!(ok + failed, 100_000);
    // The mutations keep a fair share decodable: both paths were exercised.
    assert!(ok > 5_000 && failed > 5_000, "ok {ok} failed {failed}");
}

/// A configuration with a source per new format (JSON, key=value, binary with a length field,
/// TLVs and every field type) and a RADIUS vendor from config.
fn new_formats_config() -> lux_decode::DecodeConfig {
    toml::from_str(
        r#"
        [[radius.vendors]]
        id = 4874
        name = "ERX"
        attributes = [{ code = 1, name = "ERX-VR", type = "text" }, { code = 4, name = "ERX-Dns", type = "ipaddr" }]

        [[layouts]]
        name = "olt"
        magic = "FB01"
        length_field = "length"
        fields = [
          { name = "length", offset = 2, type = "u16" },
          { name = "sev", offset = 4, type = "i8" },
          { name = "code", offset = 5, type = "u16" },
          { name = "time", offset = 7, type = "unix_s" },
          { name = "ip", offset = 11, type = "ipv4" },
          { name = "host", offset = 15, type = "string", length = 8 },
          { name = "nul", offset = 23, type = "string_nul", length = 4 },
          { name = "pre", offset = 27, type = "string_prefixed" },
          { name = "ms", offset = 28, type = "unix_ms", byte_order = "little" },
        ]
        [layouts.tlv]
        offset = 36
        tag_size = 1
        length_size = 2
        tags = [{ tag = 1, name = "sub", type = "string" }, { tag = 2, name = "n", type = "i32" }]

        [[sources]]
        source = "json"
        format = "json"
        equipment = { field = "host" }
        time = { field = "ts" }
        kind = { field = "k", map = { "1" = "link_down" } }
        subscriber = { field = "user" }
        message = { field = "msg" }

        [[sources]]
        source = "kv"
        format = "kv"
        equipment = { field = "host", key = "hostname" }
        time = { field = "t", format = "unix_s" }
        outcome = { field = "o", map = { "ko" = "failure" } }
        subscriber = { field = "user" }
        error_code = { field = "code", prefix = "X-" }

        [[sources]]
        source = "bin"
        format = "binary"
        layout = "olt"
        equipment = { field = "host", key = "hostname" }
        time = { field = "time" }
        kind = { field = "code", map = { "17" = "optical_los" } }
        subscriber = { field = "sub" }
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn olt_record() -> Vec<u8> {
    let mut r = vec![0xFB, 0x01, 0, 0, 0xFF, 0, 17];
    r.extend_from_slice(&1_767_607_200u32.to_be_bytes());
    r.extend_from_slice(&[10, 0, 0, 5]);
    r.extend_from_slice(b"olt-1\0\0\0");
    r.extend_from_slice(b"ab\0\0");
    r.push(0); // an empty prefixed string
    r.extend_from_slice(&[0; 8]);
    r.extend_from_slice(&[1, 0, 10]);
    r.extend_from_slice(b"sub0004711");
    r.extend_from_slice(&[2, 0, 4, 0xFF, 0xFF, 0xFF, 0xFE, 9, 0, 1, 0xAA]);
    let len = u16::try_from(r.len()).unwrap_or(0).to_be_bytes();
    r[2] = len[0];
    r[3] = len[1];
    r
}

fn mutate(rng: &mut ChaCha8Rng, seed: &[u8], i: u32) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    match i % 5 {
        0 => bytes.truncate(rng.gen_range(0..=seed.len())),
        1 => {
            for _ in 0..rng.gen_range(1..=4) {
                if !bytes.is_empty() {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] ^= 1 << rng.gen_range(0..8);
                }
            }
        }
        2 => {
            for _ in 0..rng.gen_range(1..=3) {
                let at = rng.gen_range(0..=bytes.len());
                if rng.gen_bool(0.5) && at < bytes.len() {
                    bytes.remove(at);
                } else {
                    bytes.insert(at, rng.gen());
                }
            }
        }
        3 => {
            let at = rng.gen_range(0..bytes.len().max(1));
            if let Some(b) = bytes.get_mut(at) {
                *b = [b' ', b'"', b'\\', b'=', b'{', b'}', b'[', b':', b',', 0, 0xFF, 0xFB, 1, 2][rng.gen_range(0..14)];
            }
        }
        _ => {
            let len = rng.gen_range(0..80);
            bytes = (0..len).map(|_| rng.gen()).collect();
            if rng.gen_bool(0.3) {
                bytes.splice(0..0, seed.iter().take(rng.gen_range(0..8)).copied());
            }
        }
    }
    bytes
}

#[test]
fn no_input_makes_the_new_decoders_panic() {
    let dec = lux_decode::Decoder::new(&new_formats_config(), KEY);
    let vsa = {
        let mut p = radius_stop();
        p.extend_from_slice(&[26, 18, 0, 0, 0x13, 0x0a, 1, 4, b'v', b'r', 4, 6, 192, 0, 2, 1, 9, 2]);
        let len = u16::try_from(p.len()).unwrap_or(0).to_be_bytes();
        p[2] = len[0];
        p[3] = len[1];
        p
    };
    let cases: Vec<(&str, Format, Vec<Vec<u8>>)> = vec![
        (
            "json",
            Format::Json,
            vec![
                br#"{"host":"cpe-1","ts":"2026-01-05T10:00:00Z","k":1,"user":"sub0004711","msg":"x sub0004711","n":{"a":[1,{"b":null}]}}"#.to_vec(),
                br#"{"host":42,"ts":1767607200123,"k":"link_up","user":7,"e":"\u00e9\"\\"}"#.to_vec(),
            ],
        ),
        (
            "kv",
            Format::Kv,
            vec![
                br#"host=bng-1 t=1767607200.5 o=ko user="sub0004711" code=7 msg="a \"b\" \\ c" x='y'"#.to_vec(),
                b"host=h t=1 user=sub0004711 note=sub0004711\r\n".to_vec(),
            ],
        ),
        ("bin", Format::Binary, vec![olt_record()]),
        ("radius", Format::Radius, vec![vsa, radius_stop()]),
    ];
    let pseudonym = dec.pseudonym(b"sub0004711");
    for (n, (source, format, seeds)) in cases.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0000 + n as u64);
        let (mut ok, mut failed) = (0u32, 0u32);
        for i in 0..100_000u32 {
            let seed = &seeds[rng.gen_range(0..seeds.len())];
            let bytes = mutate(&mut rng, seed, i);
            let raw = lux_model::RawRecord::new(source, *format, received(), None, bytes.clone());
            match dec.decode(&raw) {
                Ok(events) => {
                    ok += 1;
                    assert_eq!(events.len(), 1);
                    let json = serde_json::to_string(&events[0]).unwrap_or_default();
                    // When the record's subscriber is this id (a mutation may have changed it),
                    // it appears nowhere in clear.
                    if events[0].subscriber.as_deref() == Some(pseudonym.as_str()) {
                        assert!(!json.contains("sub0004711"), "{source}: clear subscriber id in {json}");
                    }
                }
                Err(e) => {
                    failed += 1;
                    assert!(!e.detail.is_empty(), "{e:?}");
                }
            }
            if i % 10 == 0 {
                let _ = dec.split_records(*format, Some(source), &bytes);
            }
        }
        assert_eq!(ok + failed, 100_000);
        assert!(ok > 5_000 && failed > 5_000, "{source}: ok {ok} failed {failed}");
    }
}

/// The transform stage decodes every record into one reused event (`Decoder::decode_event`):
/// nothing a record leaves in it (attributes, message, error code, subscriber, ...) may show in
/// the next record's event, and a record that fails must not spoil the next one. A stream of
/// valid and mutated records of every format gives, through one reused event, exactly the
/// events and errors that `Decoder::decode` gives with a fresh event each.
#[test]
fn a_reused_event_gives_what_a_fresh_one_gives() {
    let fresh = lux_decode::Decoder::new(&new_formats_config(), KEY);
    let mut reusing = lux_decode::Decoder::new(&new_formats_config(), KEY);
    let mut event = lux_model::Event::default();
    let syslog = |line: &[u8]| ("test-src", Format::Syslog, line.to_vec());
    let seeds: Vec<(&str, Format, Vec<u8>)> = vec![
        syslog(br#"<134>1 2026-01-05T10:00:00.123Z olt-1 olt - LINK_UP [meta@32473 code="LINK-UP" subscriber="sub0000042" port="0/1/0:3"] ONU 0/1/0:3 activated"#),
        syslog(br#"<131>1 2026-01-05T10:00:01Z bng-1 bng 77 AUTH_REJECT [meta@32473 code="PPP-AUTHFAIL" port="ge-0/0/1"] auth failed subscriber=sub0000043 again sub0000043"#),
        syslog(br#"<13>1 - 10.0.0.1 - - - [a@1 x="q\"\\\]" x="dup"][b@2 y=""]"#),
        syslog(br#"<14>1 2026-01-05T10:00:02+01:00 cpe-9 cpe - - -"#),
        syslog(b"<187>Jan  5 10:00:00 cpe-par001-00042 4711: %DHCP-3-NOOFFER: no DHCPOFFER subscriber=sub0000044"),
        syslog(b"<189>4711: *Jan  5 10:00:00.123: %SYS-5-RESTART: System restarted"),
        ("json", Format::Json, br#"{"host":"cpe-1","ts":"2026-01-05T10:00:00Z","k":1,"user":"sub0004711","msg":"x sub0004711","n":{"a":[1,{"b":null}]}}"#.to_vec()),
        ("kv", Format::Kv, br#"host=bng-1 t=1767607200.5 o=ko user="sub0004711" code=7 msg="a \"b\" \\ c" x='y'"#.to_vec()),
        ("bin", Format::Binary, olt_record()),
        ("test-src", Format::Radius, radius_stop()),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(0x0e5e_d0e7);
    let (mut ok, mut failed) = (0u32, 0u32);
    for i in 0..60_000u32 {
        let (source, format, seed) = &seeds[rng.gen_range(0..seeds.len())];
        let bytes = if i % 3 == 0 { seed.clone() } else { mutate(&mut rng, seed, i) };
        let raw = lux_model::RawRecord::new(source, *format, received(), Some("192.0.2.10:514".to_owned()), bytes);
        match (fresh.decode(&raw), reusing.decode_event(&raw, &mut event)) {
            (Ok(events), Ok(())) => {
                ok += 1;
                assert_eq!(events.len(), 1);
                assert_eq!(events[0], event, "{raw:?}");
                let (a, b) = (serde_json::to_string(&events[0]).unwrap(), serde_json::to_string(&event).unwrap());
                assert_eq!(a, b, "{raw:?}");
            }
            (Err(a), Err(b)) => {
                failed += 1;
                assert_eq!(a, b, "{raw:?}");
            }
            (a, b) => panic!("decode gave {a:?}, decode_event {b:?} for {raw:?}"),
        }
    }
    assert!(ok > 20_000 && failed > 5_000, "ok {ok} failed {failed}");
}
