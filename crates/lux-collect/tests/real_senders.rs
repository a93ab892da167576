//! The collectors with the senders operators use: `logger` (util-linux) over UDP, TCP with
//! newline framing and with octet counting, `openssl s_client` over TLS, and `radclient`
//! (freeradius-utils) with the right and a wrong secret. Each test counts what lands in the raw
//! topic, and checks its text and its order per sender.

mod common;

use common::{have_tool, text, wait_until, Harness};
use lux_collect::config::{RadiusClientConfig, Secret};
use lux_collect::{CollectConfig, RadiusListenerConfig, SyslogListenerConfig, SyslogProtocol};
use lux_model::Format;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn syslog(protocol: SyslogProtocol, source: &str) -> SyslogListenerConfig {
    SyslogListenerConfig { protocol, listen: "127.0.0.1:0".into(), source: source.into(), ..Default::default() }
}

/// Sends `lines` with `logger` (one message per line of its standard input).
fn logger(args: &[&str], port: u16, lines: &[String]) {
    let mut child = Command::new("logger")
        .args(args)
        .args(["--server", "127.0.0.1", "--port", &port.to_string(), "-t", "luxtest"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("logger runs");
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "logger {args:?} failed: {status}");
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} message {i:05} with some text")).collect()
}

/// Every line landed exactly once, in the order sent, with the listener's source id and hint.
fn assert_landed_in_order(harness: &Harness, source: &str, lines: &[String]) {
    let records: Vec<_> = harness.all_raw().into_iter().filter(|r| r.source == source).collect();
    assert_eq!(records.len(), lines.len(), "records of {source}");
    for (record, line) in records.iter().zip(lines) {
        assert!(text(record).ends_with(line.as_str()), "{:?} does not end with {line:?}", text(record));
        assert_eq!(record.format, Format::Syslog);
        assert!(record.peer.as_deref().is_some_and(|p| p.starts_with("127.0.0.1:")), "{:?}", record.peer);
    }
}

#[test]
fn logger_over_udp_and_tcp_with_both_framings_lands_every_line_once_in_order() {
    if !have_tool("logger") {
        return;
    }
    let config = CollectConfig {
        syslog: vec![
            syslog(SyslogProtocol::Udp, "udp-5424"),
            syslog(SyslogProtocol::Tcp, "tcp-newline"),
            syslog(SyslogProtocol::Tcp, "tcp-octets"),
        ],
        ..Default::default()
    };
    let mut harness = Harness::start(&config);
    harness.run();
    let (udp, tcp, octets) = (numbered("udp", 500), numbered("newline", 2000), numbered("octets", 2000));
    logger(&["--udp", "--rfc5424"], harness.addrs[0].port(), &udp);
    logger(&["--tcp", "--rfc3164"], harness.addrs[1].port(), &tcp);
    logger(&["--tcp", "--octet-count", "--rfc5424"], harness.addrs[2].port(), &octets);
    wait_until("every line in the raw topic", LIMIT, || harness.raw_count() == 4500);
    harness.stop();
    assert_landed_in_order(&harness, "udp-5424", &udp);
    assert_landed_in_order(&harness, "tcp-newline", &tcp);
    assert_landed_in_order(&harness, "tcp-octets", &octets);
    let all = harness.all_raw();
    let sample = all.iter().find(|r| r.source == "tcp-octets").unwrap();
    assert!(text(sample).starts_with("<13>1 "), "an RFC 5424 frame without its octet count: {:?}", text(sample));
    let sample = all.iter().find(|r| r.source == "tcp-newline").unwrap();
    assert!(text(sample).starts_with("<13>") && !text(sample).ends_with('\n'), "{:?}", text(sample));
    for (metrics, sent) in harness.metrics.iter().zip([500, 2000, 2000]) {
        assert_eq!(metrics.get("received"), sent);
        assert_eq!(metrics.get("written"), sent);
        assert_eq!(metrics.get("dropped_overflow"), 0);
    }
    assert_eq!(harness.metrics[1].get("connections_accepted"), 1);
    assert_eq!(harness.metrics[1].get("connections_open"), 0);
}

#[test]
fn openssl_s_client_over_tls_lands_every_line() {
    if !have_tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(dir.path());
    let listener =
        SyslogListenerConfig { tls_cert: Some(cert), tls_key: Some(key), ..syslog(SyslogProtocol::Tls, "bras-tls") };
    let mut harness = Harness::start(&CollectConfig { syslog: vec![listener], ..Default::default() });
    harness.run();
    let lines: Vec<String> =
        (0..300).map(|i| format!("<34>1 2026-01-05T00:00:00Z bras-1 ppp - - - tls line {i:04}")).collect();
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &harness.addrs[0].to_string(), "-quiet", "-no_ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl runs");
    let mut stdin = child.stdin.take().unwrap();
    for line in &lines {
        writeln!(stdin, "{line}").unwrap();
    }
    wait_until("every TLS line in the raw topic", LIMIT, || harness.raw_count() == 300);
    drop(stdin);
    let _ = child.wait();
    harness.stop();
    assert_landed_in_order(&harness, "bras-tls", &lines);
    assert_eq!(harness.metrics[0].get("tls_handshake_failures"), 0);

    // Plain TCP on the TLS port is a failed handshake, counted; nothing lands.
    let mut harness = Harness::start(&CollectConfig {
        syslog: vec![SyslogListenerConfig {
            tls_cert: Some(dir.path().join("cert.pem")),
            tls_key: Some(dir.path().join("key.pem")),
            ..syslog(SyslogProtocol::Tls, "bras-tls")
        }],
        ..Default::default()
    });
    harness.run();
    let mut plain = std::net::TcpStream::connect(harness.addrs[0]).unwrap();
    plain.write_all(b"<34>1 not tls at all\n").unwrap();
    let metrics = harness.metrics[0].clone();
    wait_until("the failed handshake", LIMIT, || metrics.get("tls_handshake_failures") == 1);
    harness.stop();
    assert_eq!(harness.raw_count(), 0);
}

fn radius_listener(secret: &str) -> RadiusListenerConfig {
    RadiusListenerConfig {
        listen: "127.0.0.1:0".into(),
        source: "bras-radius".into(),
        clients: vec![RadiusClientConfig {
            address: "127.0.0.0/8".into(),
            secret: Some(Secret(secret.into())),
            secret_env: None,
        }],
        ..Default::default()
    }
}

/// Start, Interim-Update and Stop of one session, as radclient reads them (blank-line separated).
const SESSION: &str = "Acct-Status-Type = Start\nUser-Name = \"alice\"\nAcct-Session-Id = \"s-1\"\nNAS-IP-Address = 127.0.0.1\n\n\
Acct-Status-Type = Interim-Update\nUser-Name = \"alice\"\nAcct-Session-Id = \"s-1\"\nAcct-Input-Octets = 1000\nNAS-IP-Address = 127.0.0.1\n\n\
Acct-Status-Type = Stop\nUser-Name = \"alice\"\nAcct-Session-Id = \"s-1\"\nAcct-Session-Time = 60\nNAS-IP-Address = 127.0.0.1\n";

fn radclient(port: u16, secret: &str) -> std::process::Output {
    let mut child = Command::new("radclient")
        .args(["-r", "1", "-t", "2", "-x", &format!("127.0.0.1:{port}"), "acct", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient runs");
    child.stdin.take().unwrap().write_all(SESSION.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn radclient_with_the_right_secret_is_answered_and_each_packet_lands_once() {
    if !have_tool("radclient") {
        return;
    }
    let mut harness =
        Harness::start(&CollectConfig { radius: vec![radius_listener("testing123")], ..Default::default() });
    harness.run();
    let output = radclient(harness.addrs[0].port(), "testing123");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "radclient: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.matches("Received Accounting-Response").count(), 3, "{stdout}");
    harness.stop();
    let records = harness.all_raw();
    assert_eq!(records.len(), 3);
    let mut statuses: Vec<u32> = records
        .iter()
        .map(|r| {
            assert_eq!(r.format, Format::Radius);
            assert_eq!(r.source, "bras-radius");
            let attributes = lux_generate::radius::attributes(&r.payload.0).expect("a whole RADIUS packet");
            let status = attributes.iter().find(|(t, _)| *t == lux_generate::radius::ACCT_STATUS_TYPE).unwrap().1;
            u32::from_be_bytes(status.try_into().unwrap())
        })
        .collect();
    statuses.sort();
    assert_eq!(statuses, [1, 2, 3], "Start, Stop and Interim-Update");
    let metrics = &harness.metrics[0];
    assert_eq!(metrics.get("responses"), 3);
    assert_eq!(metrics.get("bad_authenticator"), 0);
}

#[test]
fn radclient_with_a_wrong_secret_gets_no_answer_and_nothing_lands() {
    if !have_tool("radclient") {
        return;
    }
    let mut harness =
        Harness::start(&CollectConfig { radius: vec![radius_listener("testing123")], ..Default::default() });
    harness.run();
    let output = radclient(harness.addrs[0].port(), "not-the-secret");
    assert!(!output.status.success(), "radclient got an answer with a wrong secret");
    harness.stop();
    assert_eq!(harness.raw_count(), 0);
    let metrics = &harness.metrics[0];
    // radclient gives up at the first packet left unanswered.
    assert!(metrics.get("bad_authenticator") >= 1, "{}", metrics.get("bad_authenticator"));
    assert_eq!(metrics.get("responses"), 0);
    assert_eq!(metrics.get("received"), 0);
}

#[test]
fn a_retransmission_is_written_once_and_answered_twice() {
    let mut harness =
        Harness::start(&CollectConfig { radius: vec![radius_listener("testing123")], ..Default::default() });
    harness.run();
    let mut attributes = lux_generate::radius::Attributes::with_capacity(64);
    attributes.integer(lux_generate::radius::ACCT_STATUS_TYPE, 1).octets(lux_generate::radius::USER_NAME, b"bob");
    let packet = attributes.into_accounting_request(42, b"testing123");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answers = Vec::new();
    for _ in 0..2 {
        socket.send_to(&packet, harness.addrs[0]).unwrap();
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).expect("an Accounting-Response");
        answers.push(buf[..n].to_vec());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][0], 5, "Accounting-Response");
    assert_eq!(answers[0][1], 42, "the request's identifier");
    harness.stop();
    assert_eq!(harness.raw_count(), 1);
    assert_eq!(harness.metrics[0].get("retransmissions"), 1);
    assert_eq!(harness.metrics[0].get("responses"), 2);
    assert_eq!(harness.all_raw()[0].payload.0, packet);
}
