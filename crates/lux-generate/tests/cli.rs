//! `lux generate` end to end: reproducible files, their shapes, and the network outputs (syslog
//! over TCP with octet counting, RADIUS over UDP) paced in real time.

use clap::Parser;
use lux_generate::radius::verify_accounting_request;
use lux_generate::{generate, GenerateArgs, GeneratorConfig};
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::time::Duration;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: GenerateArgs,
}

fn parse(argv: &[&str]) -> GenerateArgs {
    Cli::try_parse_from(std::iter::once("lux-generate").chain(argv.iter().copied())).unwrap().args
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "reference"] {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(sub)).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for path in names.into_iter().filter(|p| p.is_file()) {
            out.push((path.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[test]
fn flags_parse() {
    let args = parse(&[
        "--seed",
        "7",
        "--duration",
        "90s",
        "--rate",
        "100",
        "--out",
        "d",
        "--syslog-tcp",
        "h:1",
        "--octet-counting",
    ]);
    assert_eq!(args.seed, Some(7));
    assert_eq!(args.duration, Duration::from_secs(90));
    assert_eq!(args.rate, Some(100.0));
    assert!(args.octet_counting);
    assert_eq!(parse(&[]).duration, Duration::from_secs(60));
    let octet_counting_needs_tcp = Cli::try_parse_from(["x", "--octet-counting"]);
    assert!(octet_counting_needs_tcp.is_err());
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let run = |dir: &Path, seed: &str| {
        let args = parse(&["--seed", seed, "--duration", "5s", "--out", dir.to_str().unwrap()]);
        generate(GeneratorConfig::default(), &args).unwrap()
    };
    let summary = run(a.path(), "7");
    run(b.path(), "7");
    run(c.path(), "8");
    let fa = files(a.path());
    let names: Vec<&str> = fa.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "incidents.json",
            "radius.bin",
            "syslog.log",
            "reference/equipment.csv",
            "reference/error_codes.csv",
            "reference/interventions.csv",
            "reference/manufacturers.csv",
            "reference/models.csv",
            "reference/regions.csv",
            "reference/sites.csv",
        ]
    );
    assert_eq!(fa, files(b.path()));
    assert_ne!(fa, files(c.path()));

    // syslog.log: one line per syslog record; radius.bin: packets back to back, each valid.
    let log = std::fs::read_to_string(a.path().join("syslog.log")).unwrap();
    assert_eq!(log.lines().count() as u64, summary.rfc5424_records + summary.rfc3164_records);
    let bin = std::fs::read(a.path().join("radius.bin")).unwrap();
    let mut packets = 0;
    let mut rest = &bin[..];
    while !rest.is_empty() {
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        assert!(verify_accounting_request(&rest[..len], b"testing123"));
        rest = &rest[len..];
        packets += 1;
    }
    assert_eq!(packets, summary.radius_records);
    // 5 s at midnight (~0.77 x 2000/s), plus 3 s of the incident (from 2 s).
    assert!((6_000..9_000).contains(&summary.records()), "{}", summary.records());
    let incidents: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.path().join("incidents.json")).unwrap()).unwrap();
    assert_eq!(incidents[0]["scope"], "site");
    assert_eq!(incidents[0]["start"], "2026-01-05T00:00:02.000Z");
}

#[test]
fn sub_second_durations_and_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let args = parse(&["--duration", "250ms", "--out", dir.path().to_str().unwrap()]);
    let summary = generate(GeneratorConfig::default(), &args).unwrap();
    assert!((250..500).contains(&summary.records()), "{}", summary.records());

    let err = generate(GeneratorConfig::default(), &parse(&["--duration", "1s"])).unwrap_err();
    assert!(err.to_string().contains("nothing to write"));
    let err = generate(GeneratorConfig::default(), &parse(&["--rate=-1", "--stdout"])).unwrap_err();
    assert!(err.to_string().contains("generator.rate"), "{err}");
    let err = generate(GeneratorConfig::default(), &parse(&["--start", "now", "--stdout"])).unwrap_err();
    assert!(err.to_string().contains("generator.start"), "{err}");
}

#[test]
fn network_outputs_are_paced_and_framed() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let tcp_addr = tcp.local_addr().unwrap().to_string();
    let udp_addr = udp.local_addr().unwrap().to_string();
    let reader = std::thread::spawn(move || {
        let (stream, _) = tcp.accept().unwrap();
        let mut r = BufReader::new(stream);
        let mut frames = Vec::new();
        loop {
            let mut len = Vec::new();
            if r.read_until(b' ', &mut len).unwrap() == 0 {
                break;
            }
            let n: usize = std::str::from_utf8(&len[..len.len() - 1]).unwrap().parse().unwrap();
            let mut frame = vec![0; n];
            r.read_exact(&mut frame).unwrap();
            frames.push(String::from_utf8(frame).unwrap());
        }
        frames
    });
    let radius = std::thread::spawn(move || {
        let mut packets = 0u64;
        let mut buf = [0u8; 4096];
        while let Ok(n) = udp.recv(&mut buf) {
            assert!(verify_accounting_request(&buf[..n], b"testing123"));
            packets += 1;
        }
        packets
    });
    let args = parse(&[
        "--rate",
        "200",
        "--duration",
        "2s",
        "--syslog-tcp",
        &tcp_addr,
        "--octet-counting",
        "--radius-udp",
        &udp_addr,
    ]);
    let summary = generate(GeneratorConfig::default(), &args).unwrap();
    let frames = reader.join().unwrap();
    let packets = radius.join().unwrap();
    assert_eq!(frames.len() as u64, summary.rfc5424_records + summary.rfc3164_records);
    assert!(frames.iter().all(|f| f.starts_with('<') && !f.contains('\n')));
    // Loopback UDP at 60 packets/s loses nothing.
    assert_eq!(packets, summary.radius_records);
    // Paced in real time: 2 s of simulated time take about 2 s.
    assert!(summary.elapsed >= Duration::from_millis(1500), "{:?}", summary.elapsed);
}
