//! The traffic: purity per second, resumability, the format mix, payload shapes (syslog lines
//! per the contract, RADIUS packets with valid authenticators), uniqueness and lateness.

use lux_generate::radius::{self, attributes, verify_accounting_request};
use lux_generate::{
    lookup_error_code, GeneratedRecord, GeneratorConfig, IncidentConfig, IncidentScope, Network, Schedule, Traffic,
};
use lux_model::Format;
use std::collections::{HashMap, HashSet};

fn setup(cfg: &GeneratorConfig) -> (Network, Traffic) {
    let start = cfg.start_ms().unwrap();
    let network = Network::generate_at(cfg, start).unwrap();
    let traffic = Traffic::new(&network, cfg, start).unwrap();
    (network, traffic)
}

/// The error code a payload carries, read back from its bytes.
fn code_in_payload(r: &GeneratedRecord) -> Option<String> {
    match r.format {
        Format::Radius => {
            let attrs = attributes(&r.payload).unwrap();
            attrs
                .iter()
                .find(|(t, _)| *t == radius::ACCT_TERMINATE_CAUSE)
                .map(|(_, v)| format!("RADIUS-TC-{}", u32::from_be_bytes([v[0], v[1], v[2], v[3]])))
        }
        _ => {
            let line = std::str::from_utf8(&r.payload).unwrap();
            if let Some(at) = line.find("code=\"") {
                let rest = &line[at + 6..];
                return Some(rest[..rest.find('"').unwrap()].to_owned());
            }
            let at = line.find(": %")?;
            let tag = &line[at + 3..];
            let tag = &tag[..tag.find(':').unwrap()];
            let parts: Vec<&str> = tag.split('-').collect();
            Some(format!("{}-{}", parts[0], parts[2]))
        }
    }
}

#[test]
fn a_second_is_a_pure_function_of_seed_and_second() {
    let cfg = GeneratorConfig::default();
    let (_, a) = setup(&cfg);
    let (_, b) = setup(&cfg);
    for s in [0, 1, 59, 3600, 86_399] {
        assert_eq!(a.second(s), b.second(s), "second {s}");
        assert_eq!(a.second(s), a.second(s));
    }
    assert_ne!(a.second(5), a.second(6));
    let (_, other) = setup(&GeneratorConfig { seed: 43, ..cfg });
    assert_ne!(a.second(5), other.second(5));
}

#[test]
fn records_fall_in_their_second_sorted_with_bounded_lateness() {
    let cfg = GeneratorConfig::default();
    let (network, traffic) = setup(&cfg);
    let hosts: HashSet<&str> = network.equipment.iter().map(|e| e.hostname.as_str()).collect();
    let mut late = 0;
    let mut total = 0;
    for s in 0..120 {
        let start = traffic.second_start_ms(s);
        let records = traffic.second(s);
        assert!(records.windows(2).all(|w| w[0].event_time_ms <= w[1].event_time_ms));
        for r in &records {
            assert!(r.event_time_ms >= start && r.event_time_ms < start + 1000);
            assert!(r.send_time_ms >= r.event_time_ms && r.send_time_ms <= r.event_time_ms + 2000);
            assert!(hosts.contains(r.key.as_str()), "{}", r.key);
            if r.send_time_ms > r.event_time_ms {
                late += 1;
            }
        }
        total += records.len();
    }
    // 0.2% of records are late: "a few".
    assert!(late > 0 && (late as f64) < total as f64 * 0.005, "{late} late of {total}");
}

#[test]
fn rate_follows_the_configuration_and_the_daily_curve() {
    let flat = GeneratorConfig { daily_curve: false, incidents: vec![], ..GeneratorConfig::default() };
    let (_, traffic) = setup(&flat);
    let n: usize = (0..60).map(|s| traffic.second(s).len()).sum();
    // Background records are skipped only for equipment hit by an incident (none here).
    assert!((n as f64 / 60.0 - 2000.0).abs() < 2.0, "{n}");
    let curved = GeneratorConfig { incidents: vec![], ..GeneratorConfig::default() };
    let (_, traffic) = setup(&curved);
    let night: usize = (4 * 3600..4 * 3600 + 10).map(|s| traffic.second(s).len()).sum();
    let evening: usize = (21 * 3600..21 * 3600 + 10).map(|s| traffic.second(s).len()).sum();
    assert!(night < 6_000 && evening > 34_000, "night {night}, evening {evening}");
}

#[test]
fn format_mix_and_payload_shapes() {
    let cfg = GeneratorConfig { daily_curve: false, incidents: vec![], ..GeneratorConfig::default() };
    let (network, traffic) = setup(&cfg);
    let kinds: HashMap<&str, _> =
        network.equipment.iter().map(|e| (e.hostname.as_str(), e.equipment_type.as_str())).collect();
    let nas: HashMap<&str, &str> = network
        .equipment
        .iter()
        .filter_map(|e| e.nas_identifier.as_deref().map(|n| (e.hostname.as_str(), n)))
        .collect();
    let (mut radius_n, mut rfc5424, mut rfc3164) = (0, 0, 0);
    let mut statuses = HashSet::new();
    for s in 0..30 {
        for r in traffic.second(s) {
            let kind = kinds[r.key.as_str()];
            assert_eq!(code_in_payload(&r).as_deref(), r.error_code, "{:?}", String::from_utf8_lossy(&r.payload));
            if let Some(code) = r.error_code {
                assert!(lookup_error_code(code).is_some(), "{code} not in the catalogue");
            }
            match r.format {
                Format::Radius => {
                    radius_n += 1;
                    assert_eq!(kind, "bng");
                    assert!(verify_accounting_request(&r.payload, b"testing123"));
                    assert_eq!(r.payload[0], 4);
                    let attrs: HashMap<u8, &[u8]> = attributes(&r.payload).unwrap().into_iter().collect();
                    assert_eq!(attrs[&radius::NAS_IDENTIFIER], nas[r.key.as_str()].as_bytes());
                    assert!(attrs[&radius::USER_NAME].starts_with(b"sub"));
                    let ts = attrs[&radius::EVENT_TIMESTAMP];
                    let ts = u32::from_be_bytes([ts[0], ts[1], ts[2], ts[3]]) as i64;
                    assert_eq!(ts, r.event_time_ms / 1000);
                    let status = attrs[&radius::ACCT_STATUS_TYPE][3] as u32;
                    statuses.insert(status);
                    assert_eq!(attrs.contains_key(&radius::ACCT_TERMINATE_CAUSE), status == radius::STATUS_STOP);
                    assert_eq!(attrs.contains_key(&radius::ACCT_SESSION_TIME), status != radius::STATUS_START);
                    assert!(attrs.contains_key(&radius::ACCT_SESSION_ID));
                }
                Format::Syslog => {
                    let line = std::str::from_utf8(&r.payload).unwrap();
                    assert!(!line.contains('\n'));
                    if line.split('>').nth(1).unwrap().starts_with("1 ") {
                        rfc5424 += 1;
                        assert!(kind == "bng" || kind == "olt");
                        // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
                        let f: Vec<&str> = line.splitn(7, ' ').collect();
                        assert_eq!(f[1], lux_model::format_rfc3339_millis(r.event_time_ms));
                        assert_eq!(f[2], r.key);
                        assert_eq!(f[3], kind);
                        assert_eq!(f[4], "-");
                        assert!(
                            [
                                "SESSION_START",
                                "SESSION_STOP",
                                "AUTH_REJECT",
                                "LINK_DOWN",
                                "LINK_UP",
                                "ONU_LOS",
                                "CONFIG_CHANGE"
                            ]
                            .contains(&f[5]),
                            "{line}"
                        );
                        assert!(f[6].starts_with("[meta@32473 ") || f[6].starts_with("- "), "{line}");
                    } else {
                        rfc3164 += 1;
                        assert!(kind == "dslam" || kind == "cpe");
                        let ts =
                            chrono::DateTime::from_timestamp_millis(r.event_time_ms).unwrap().format("%b %e %H:%M:%S");
                        let pri_end = line.find('>').unwrap();
                        assert!(line[pri_end + 1..].starts_with(&format!("{ts} {} ", r.key)), "{line}");
                        assert!(line.contains(": %") && line.contains(" subscriber=sub"), "{line}");
                    }
                }
                other => panic!("unexpected format {other:?}"),
            }
        }
    }
    let total = (radius_n + rfc5424 + rfc3164) as f64;
    assert!((radius_n as f64 / total - 0.3).abs() < 0.01);
    assert!((rfc3164 as f64 / (rfc3164 + rfc5424) as f64 - 0.5).abs() < 0.01);
    assert_eq!(statuses, HashSet::from([1, 2, 3]));
}

#[test]
fn contract_examples_shapes_appear() {
    let cfg = GeneratorConfig::default();
    let (_, traffic) = setup(&cfg);
    let lines: Vec<String> = (0..5)
        .flat_map(|s| traffic.second(s))
        .filter(|r| r.format == Format::Syslog)
        .map(|r| String::from_utf8(r.payload).unwrap())
        .collect();
    let auth = lines.iter().find(|l| l.contains(" AUTH_REJECT ")).unwrap();
    assert!(auth.starts_with("<131>1 2026-01-05T00:00:0"), "{auth}");
    assert!(auth.contains("[meta@32473 code=\"PPP-AUTHFAIL\" subscriber=\"sub"), "{auth}");
    let dhcp =
        lines.iter().find(|l| l.contains("%DHCP-3-NOOFFER: no DHCPOFFER received on wan0 subscriber=sub")).unwrap();
    assert!(dhcp.starts_with("<187>Jan  5 00:00:0"), "{dhcp}");
}

#[test]
fn payloads_are_unique() {
    let cfg = GeneratorConfig::default();
    let (_, traffic) = setup(&cfg);
    let mut seen = HashSet::new();
    let mut n = 0;
    for s in 0..180 {
        for r in traffic.second(s) {
            n += 1;
            assert!(seen.insert(r.payload), "duplicate payload in second {s}");
        }
    }
    assert!(n > 200_000, "{n}");
}

#[test]
fn schedule_resumes_at_any_second_with_identical_batches() {
    let cfg = GeneratorConfig { rate: 500.0, ..GeneratorConfig::default() };
    let (_, traffic) = setup(&cfg);
    let mut from_zero = Schedule::new(&traffic, 0);
    let batches: Vec<_> = (0..12).map(|_| from_zero.next_batch(&traffic)).collect();
    for resume_at in [1u64, 2, 5, 9] {
        let mut resumed = Schedule::new(&traffic, resume_at);
        for expected in &batches[resume_at as usize..] {
            assert_eq!(&resumed.next_batch(&traffic), expected);
        }
    }
    // Every record of the seconds generated comes out exactly once, in sending order.
    let emitted: Vec<&GeneratedRecord> = batches.iter().flat_map(|(_, b)| b.iter()).collect();
    let leftover = from_zero.drain();
    let generated: usize = (0..12).map(|s| traffic.second(s).len()).sum();
    assert_eq!(emitted.len() + leftover.len(), generated);
    for (s, batch) in &batches {
        let start = traffic.second_start_ms(*s);
        assert!(batch.iter().all(|r| r.send_time_ms >= start && r.send_time_ms < start + 1000));
        assert!(batch.windows(2).all(|w| w[0].send_time_ms <= w[1].send_time_ms));
    }
    // Late records arrive after records of a later event time.
    let out_of_order = emitted.windows(2).filter(|w| w[1].event_time_ms < w[0].event_time_ms).count();
    assert!(out_of_order > 0);
}

#[test]
fn equipment_incident_makes_its_target_fail_and_only_during_the_incident() {
    let cfg = GeneratorConfig {
        incidents: vec![IncidentConfig {
            scope: IncidentScope::Equipment,
            target: Some("olt-par001-01".into()),
            start_after: std::time::Duration::from_secs(60),
            duration: std::time::Duration::from_secs(60),
            failure_ratio: 0.9,
        }],
        ..GeneratorConfig::default()
    };
    let (_, traffic) = setup(&cfg);
    let count = |range: std::ops::Range<u64>| {
        let mut all = 0;
        let mut failures = 0;
        for s in range {
            for r in traffic.second(s).iter().filter(|r| r.key == "olt-par001-01") {
                all += 1;
                failures += r.is_failure() as u32;
            }
        }
        (all, failures)
    };
    let (before_all, before_failures) = count(0..60);
    let (during_all, during_failures) = count(60..120);
    assert!(before_all > 50 && before_failures < 10, "{before_all} {before_failures}");
    assert!(during_all > 250, "{during_all}");
    let ratio = during_failures as f64 / during_all as f64;
    assert!((ratio - 0.9).abs() < 0.05, "{ratio}");
    let (_, after_failures) = count(120..180);
    assert!(after_failures < 10);
}

#[test]
fn bng_incident_drops_sessions_with_lost_carrier() {
    let cfg = GeneratorConfig {
        incidents: vec![IncidentConfig {
            scope: IncidentScope::Equipment,
            target: Some("bng-par001-01".into()),
            start_after: std::time::Duration::ZERO,
            ..IncidentConfig::default()
        }],
        ..GeneratorConfig::default()
    };
    let (_, traffic) = setup(&cfg);
    let mut codes: HashMap<&str, u32> = HashMap::new();
    for s in 0..30 {
        for r in traffic.second(s).iter().filter(|r| r.key == "bng-par001-01") {
            *codes.entry(r.error_code.unwrap_or("-")).or_default() += 1;
        }
    }
    assert!(codes["RADIUS-TC-2"] > 400, "{codes:?}");
    assert!(codes["PPP-LCPTIMEOUT"] > 250, "{codes:?}");
}
