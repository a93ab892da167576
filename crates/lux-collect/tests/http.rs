//! The HTTP collector with `curl` as the sender: the right, a wrong and a missing token, an
//! oversized and an empty body, a full queue (503 with Retry-After, then 200 once the log takes
//! the records), HTTPS, and `/health`. Each test counts what lands in the raw topic.

mod common;

use common::{have_tool, text, wait_until, Harness};
use lux_collect::config::{ByteSize, Secret};
use lux_collect::{CollectConfig, HttpListenerConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "probe-token-7f3a9c";

fn listener() -> HttpListenerConfig {
    HttpListenerConfig {
        listen: "127.0.0.1:0".into(),
        source: "probes".into(),
        format: lux_model::Format::Json,
        token: Some(Secret(TOKEN.into())),
        ..Default::default()
    }
}

fn collect(listener: HttpListenerConfig) -> CollectConfig {
    CollectConfig { http: vec![listener], ..Default::default() }
}

/// `curl` posting the file `body` to the listener; returns the status code and the answer's
/// headers and body.
fn post(addr: SocketAddr, token: Option<&str>, body: &Path, extra: &[&str]) -> (u16, String) {
    let scheme = if extra.contains(&"--insecure") { "https" } else { "http" };
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--show-error", "--include", "--max-time", "30", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .args(["-H", "Content-Type: application/x-ndjson"])
        .args(extra)
        .arg(format!("{scheme}://{addr}/v1/records"));
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    answer(command.output().expect("curl runs"))
}

fn answer(output: Output) -> (u16, String) {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "curl failed: {}\n{text}", String::from_utf8_lossy(&output.stderr));
    // The last status line (curl shows a `100 Continue` first for large bodies).
    let status = text
        .lines()
        .rev()
        .find(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn json_lines(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!(r#"{{"device":"probe-{}","tag":"{tag}","seq":{i}}}"#, i % 7)).collect()
}

fn body_file(dir: &Path, name: &str, lines: &[String]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn curl_with_the_right_token_gets_200_once_committed_and_wrong_or_missing_tokens_get_401() {
    if !have_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::start(&collect(listener()));
    harness.run();
    let addr = harness.addrs[0];
    let metrics = harness.metrics[0].clone();
    let mut sent = Vec::new();
    for round in 0..3 {
        let lines = json_lines(&format!("round{round}"), 1000);
        let body = body_file(dir.path(), "good.ndjson", &lines);
        let (status, answer) = post(addr, Some(TOKEN), &body, &[]);
        assert_eq!(status, 200, "{answer}");
        assert!(answer.ends_with("{\"accepted\":1000}\n"), "{answer}");
        sent.extend(lines);
        // Answered only once committed: the records are in the log when the answer comes.
        assert_eq!(harness.raw_count(), sent.len() as u64);
    }
    let body = body_file(dir.path(), "bad.ndjson", &json_lines("intruder", 10));
    let (status, answer) = post(addr, Some("not-the-token"), &body, &[]);
    assert_eq!(status, 401, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("www-authenticate: bearer"), "{answer}");
    let (status, _) = post(addr, None, &body, &[]);
    assert_eq!(status, 401);
    let (status, _) = post(addr, Some(&format!("{TOKEN}x")), &body, &[]);
    assert_eq!(status, 401, "a token with one more character");
    let (status, _) = post(addr, None, &body, &["-H", "Authorization: Basic cHJvYmU6dG9rZW4="]);
    assert_eq!(status, 401, "another scheme");
    // Health, without a token.
    let output = Command::new("curl")
        .args(["--silent", "--include", &format!("http://{addr}/health")])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(answer_status(output), 200);
    harness.stop();
    let records = harness.all_raw();
    assert_eq!(records.len(), 3000);
    let mut texts: Vec<String> = records.iter().map(text).collect();
    texts.sort();
    sent.sort();
    assert_eq!(texts, sent, "every record once, none of the refused ones");
    assert!(records.iter().all(|r| r.source == "probes"
        && r.format == lux_model::Format::Json
        && r.peer.as_deref().is_some_and(|p| p.starts_with("127.0.0.1:"))));
    assert_eq!(metrics.get("requests_accepted"), 3);
    assert_eq!(metrics.get("requests_unauthorized"), 4);
    assert_eq!(metrics.get("received"), 3000);
    assert_eq!(metrics.get("written"), 3000);
}

fn answer_status(output: Output) -> u16 {
    answer(output).0
}

#[test]
fn oversized_and_empty_bodies_are_refused_and_long_lines_cut() {
    if !have_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let config = HttpListenerConfig {
        token: None,
        token_file: Some(token_file),
        max_body: ByteSize(64 << 10),
        max_line: ByteSize(1000),
        ..listener()
    };
    let mut harness = Harness::start(&collect(config));
    harness.run();
    let addr = harness.addrs[0];
    let metrics = harness.metrics[0].clone();
    let big = body_file(dir.path(), "big.ndjson", &json_lines("big", 5000));
    let (status, answer) = post(addr, Some(TOKEN), &big, &[]);
    assert_eq!(status, 413, "{answer}");
    // The same without a Content-Length (chunked): refused while it is read.
    let (status, answer) = post(addr, Some(TOKEN), &big, &["-H", "Transfer-Encoding: chunked"]);
    assert_eq!(status, 413, "{answer}");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n\r\n\n").unwrap();
    let (status, answer) = post(addr, Some(TOKEN), &empty, &[]);
    assert_eq!(status, 400, "{answer}");
    let long = vec!["z".repeat(3000), "short and fine".to_string(), "\u{0}\u{1}binary\u{7f}".to_string()];
    let body = body_file(dir.path(), "long.ndjson", &long);
    let (status, answer) = post(addr, Some(TOKEN), &body, &[]);
    assert_eq!(status, 200, "{answer}");
    harness.stop();
    let texts: Vec<String> = harness.all_raw().iter().map(text).collect();
    assert_eq!(texts, vec!["z".repeat(1000), "short and fine".into(), "\u{0}\u{1}binary\u{7f}".into()]);
    assert_eq!(metrics.get("requests_too_large"), 2);
    assert_eq!(metrics.get("requests_bad"), 1);
    assert_eq!(metrics.get("oversized"), 1);
    assert_eq!(metrics.get("requests_accepted"), 1);
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_the_queued_request_its_200_once_committed() {
    if !have_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = HttpListenerConfig { max_body: ByteSize(64 << 10), queue: ByteSize(64 << 10), ..listener() };
    // The runner is not started yet: nothing drains the queue.
    let mut harness = Harness::start(&collect(config));
    let addr = harness.addrs[0];
    let metrics = harness.metrics[0].clone();
    let first = body_file(dir.path(), "first.ndjson", &json_lines("first", 900));
    let queued = {
        let first = first.clone();
        std::thread::spawn(move || post(addr, Some(TOKEN), &first, &[]))
    };
    wait_until("the first request queued", LIMIT, || metrics.get("received") == 900);
    let second = body_file(dir.path(), "second.ndjson", &json_lines("second", 10));
    let (status, answer) = post(addr, Some(TOKEN), &second, &[]);
    assert_eq!(status, 503, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    assert_eq!(harness.raw_count(), 0);
    harness.run();
    let (status, answer) = queued.join().unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(harness.raw_count(), 900);
    let (status, _) = post(addr, Some(TOKEN), &second, &[]);
    assert_eq!(status, 200, "the retry goes through");
    harness.stop();
    assert_eq!(harness.raw_count(), 910);
    assert_eq!(metrics.get("requests_overloaded"), 1);
    assert_eq!(metrics.get("requests_accepted"), 2);
}

#[test]
fn https_with_the_configured_certificate() {
    if !have_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(dir.path());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let config = HttpListenerConfig {
        token: None,
        token_file: Some(token_file),
        tls_cert: Some(cert),
        tls_key: Some(key),
        ..listener()
    };
    let mut harness = Harness::start(&collect(config));
    harness.run();
    let addr = harness.addrs[0];
    let body = body_file(dir.path(), "tls.ndjson", &json_lines("tls", 500));
    let (status, answer) = post(addr, Some(TOKEN), &body, &["--insecure"]);
    assert_eq!(status, 200, "{answer}");
    // Plain HTTP on the HTTPS port: a failed handshake, counted; nothing lands.
    let output = Command::new("curl")
        .args(["--silent", "--max-time", "10", "--data-binary", "x", &format!("http://{addr}/v1/records")])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let metrics = harness.metrics[0].clone();
    wait_until("the failed handshake", LIMIT, || metrics.get("tls_handshake_failures") == 1);
    harness.stop();
    assert_eq!(harness.raw_count(), 500);
}

/// Half-open and slow connections: beyond `max_connections` a connection is closed at once
/// (counted), an idle one is closed after `idle_timeout` (counted), and a sender then gets its
/// 200 as usual.
#[test]
fn idle_connections_are_closed_and_connections_over_the_bound_refused() {
    use std::io::{Read, Write};
    if !have_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = HttpListenerConfig { max_connections: 2, idle_timeout: Duration::from_secs(1), ..listener() };
    let mut harness = Harness::start(&collect(config));
    harness.run();
    let addr = harness.addrs[0];
    let metrics = harness.metrics[0].clone();
    // Two silent connections (one with half a request) take both slots.
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    let mut half = std::net::TcpStream::connect(addr).unwrap();
    half.write_all(b"POST /v1/records HTTP/1.1\r\nHost: x\r\n").unwrap();
    wait_until("both connections accepted", LIMIT, || metrics.get("connections_accepted") == 2);
    // A third one is closed as soon as it is accepted.
    let mut refused = std::net::TcpStream::connect(addr).unwrap();
    refused.set_read_timeout(Some(LIMIT)).unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(refused.read(&mut byte), Ok(0) | Err(_)), "the connection over the bound is closed");
    assert_eq!(metrics.get("connections_refused"), 1);
    // The two idle ones are closed after idle_timeout.
    for stream in [&mut silent, &mut half] {
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    wait_until("both idle connections closed", LIMIT, || metrics.get("connections_open") == 0);
    assert_eq!(metrics.get("idle_timeouts"), 2);
    // A sender is served as usual.
    let lines = json_lines("after", 10);
    let body = body_file(dir.path(), "after.ndjson", &lines);
    let (status, answer) = post(addr, Some(TOKEN), &body, &[]);
    assert_eq!(status, 200, "{answer}");
    harness.stop();
    assert_eq!(harness.all_raw().len(), 10);
}
