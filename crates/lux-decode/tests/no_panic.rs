//! Robustness: 100,000 random and mutated records (truncations, bit flips, byte insertions and
//! deletions of valid records, and pure noise) never make the decoder panic, and every failure
//! carries a detail.

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
