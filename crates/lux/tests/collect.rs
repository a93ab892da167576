//! End-to-end tests of the collectors in the `lux` binary: `lux collect` alone, and inside
//! `lux run` feeding the transform stage; both stopped with SIGTERM, after which everything the
//! listeners had received is in the log. Through a collector, `lux run` also shows what becomes
//! of events too late for the alarm windows (the `late` topic and its counters).

mod common;

use common::{lux, read};
use lux_log::embedded::EmbeddedLog;
use lux_log::CentralLog;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Starts `lux` with `args`, and returns it with the address its syslog TCP listener bound
/// (read from its start-up lines on stderr; the config listens on port 0).
fn start(args: &[&str], marker: &str) -> (Running, SocketAddr, std::thread::JoinHandle<String>) {
    let mut child = Running(Some(lux().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()));
    let mut stderr = BufReader::new(child.0.as_mut().unwrap().stderr.take().unwrap());
    let started = Instant::now();
    let mut seen = String::new();
    let addr = loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0 && started.elapsed() < Duration::from_secs(60), "lux ended or never listened: {seen}");
        seen.push_str(&line);
        if let Some(rest) = line.split(marker).nth(1) {
            let addr = rest.split_whitespace().next().unwrap();
            break addr.parse::<SocketAddr>().unwrap_or_else(|e| panic!("{addr:?}: {e}"));
        }
    };
    // Keep reading stderr so that lux never blocks on it; hand it back at the end.
    let rest = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    (child, addr, rest)
}

/// A `lux` process, killed if the test fails before it is stopped.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn terminate(mut running: Running) -> std::process::ExitStatus {
    let mut child = running.0.take().unwrap();
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    child.wait().unwrap()
}

/// A reader of the log `lux` writes, once it exists.
fn open_reader_when_ready(data: &std::path::Path) -> EmbeddedLog {
    let started = Instant::now();
    loop {
        match EmbeddedLog::open_reader(data) {
            Ok(log) => return log,
            Err(e) => assert!(started.elapsed() < Duration::from_secs(60), "no log in {}: {e}", data.display()),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(addr: SocketAddr, lines: &[String]) {
    let mut stream = TcpStream::connect(addr).unwrap();
    for line in lines {
        stream.write_all(line.as_bytes()).unwrap();
        stream.write_all(b"\n").unwrap();
    }
}

#[test]
fn lux_collect_writes_what_senders_send_and_commits_it_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lux.toml");
    std::fs::write(
        &config,
        "[[collect.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\nsource = \"bras-tcp\"\n\n[run]\nsummary_interval = \"0s\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["collect", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    let (child, addr, stderr) = start(&args, "syslog tcp ");
    let lines: Vec<String> =
        (0..5000).map(|i| format!("<34>1 2026-01-05T00:00:00Z bras-1 ppp - - - line {i}")).collect();
    send(addr, &lines);
    let log = open_reader_when_ready(&data);
    let started = Instant::now();
    while log.topic("raw").map(|t| t.record_count()).unwrap_or(0) < 5000 {
        assert!(started.elapsed() < Duration::from_secs(60), "the lines never all landed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = terminate(child);
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "lux collect: {status}\n{stderr}");
    assert!(stderr.contains("collect-bras-tcp 0/s written 5000\n"), "{stderr}");
    let texts: Vec<String> = read(&log, "raw")
        .into_iter()
        .flatten()
        .map(|r| serde_json::from_slice::<lux_model::RawRecord>(&r.value).unwrap())
        .map(|r| {
            assert_eq!(r.source, "bras-tcp");
            String::from_utf8(r.payload.0).unwrap()
        })
        .collect();
    assert_eq!(texts, lines);
}

#[test]
fn lux_collect_without_collectors_explains() {
    let output = lux().args(["collect", "--stop-after", "1s"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no collector is configured"));
}

#[test]
fn lux_run_with_a_collector_feeds_the_transform_stage() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lux.toml");
    std::fs::write(
        &config,
        "[[collect.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\nsource = \"bras-tcp\"\n\n\
         [run]\ngenerator = false\nsummary_interval = \"0s\"\n\n\
         [transform]\nsubscriber_key = \"end-to-end-test-subscriber-key-0123456789\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["run", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    let (child, addr, stderr) = start(&args, "address=");
    let lines: Vec<String> = (0..200)
        .map(|i| format!("<134>1 2026-01-05T00:00:{:02}Z bras-par001-01 ppp - - - session {i} up", i % 60))
        .collect();
    send(addr, &lines);
    let log = open_reader_when_ready(&data);
    let started = Instant::now();
    let count = |topic: &str| log.topic(topic).map(|t| t.record_count()).unwrap_or(0);
    while count("raw") < 200 || count("enriched") + count("deadletter") < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "raw {} enriched {} deadletter {}",
            count("raw"),
            count("enriched"),
            count("deadletter")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = terminate(child);
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "lux run: {status}\n{stderr}");
    assert_eq!(count("raw"), 200);
    assert_eq!((count("enriched"), count("deadletter")), (200, 0), "every collected line was decoded");
}

/// The body of `GET /metrics` on `port`, if it answers.
fn metrics(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: lux\r\n\r\n").ok()?;
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).ok()?;
    answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// The value of the sample `name{labels}` in a Prometheus text page.
fn sample(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[test]
fn events_too_late_for_the_windows_go_unchanged_to_the_late_topic_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lux.toml");
    let metrics_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    std::fs::write(
        &config,
        format!(
            "[[collect.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\nsource = \"bras-tcp\"\n\n\
             [run]\ngenerator = false\nsummary_interval = \"0s\"\n\n\
             [transform]\nsubscriber_key = \"end-to-end-test-subscriber-key-0123456789\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["run", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    let (child, addr, stderr) = start(&args, "address=");
    // One equipment, so one enriched partition read in order: a minute of events, then 7 from ten
    // minutes before, far behind that partition's watermark (5 s of out-of-orderness, no allowed
    // lateness).
    let on_time: Vec<String> =
        (0..60).map(|i| format!("<134>1 2026-01-05T00:10:{i:02}Z bras-par001-01 ppp - - - session {i} up")).collect();
    let late: Vec<String> =
        (0..7).map(|i| format!("<134>1 2026-01-05T00:00:{i:02}Z bras-par001-01 ppp - - - late {i}")).collect();
    send(addr, &on_time.iter().chain(&late).cloned().collect::<Vec<_>>());
    let log = open_reader_when_ready(&data);
    let count = |topic: &str| log.topic(topic).map(|t| t.record_count()).unwrap_or(0);
    let started = Instant::now();
    let counter = "lux_stage_counter_total{stage=\"alarm-route\",counter=\"late_events.site-failures\"}";
    let late_counted = || metrics(metrics_port).and_then(|page| sample(&page, counter));
    while count("late") < 7 || late_counted() != Some(7.0) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "enriched {} late {} counter {:?}",
            count("enriched"),
            count("late"),
            late_counted()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = metrics(metrics_port).unwrap();
    let status = terminate(child);
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "lux run: {status}\n{stderr}");
    assert_eq!(sample(&page, "lux_stage_counter_total{stage=\"alarm-route\",counter=\"late_events\"}"), Some(7.0));
    // The enriched records as they were, each once: the ones of the late lines, in their order.
    let messages: Vec<String> = read(&log, "late")
        .into_iter()
        .flatten()
        .map(|r| {
            let event: lux_model::EnrichedEvent = serde_json::from_slice(&r.value).unwrap();
            assert_eq!(event.event.equipment_id.as_str(), "bras-par001-01");
            event.event.message.unwrap_or_default()
        })
        .collect();
    assert_eq!(messages, (0..7).map(|i| format!("late {i}")).collect::<Vec<_>>());
    assert_eq!((count("enriched"), count("late")), (67, 7));
}

#[test]
fn lux_plan_and_check_show_the_collectors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lux.toml");
    std::fs::write(
        &config,
        "[[collect.syslog]]\nprotocol = \"tls\"\nlisten = \"0.0.0.0:6514\"\nsource = \"bras-tls\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n\n\
         [[collect.radius]]\nlisten = \"0.0.0.0:1813\"\nsource = \"bras-radius\"\n[[collect.radius.clients]]\naddress = \"10.0.0.0/8\"\nsecret_env = \"NAS_SECRET\"\n",
    )
    .unwrap();
    let output = lux().args(["plan", "--config", config.to_str().unwrap()]).output().unwrap();
    let plan = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(plan.contains("collect-bras-tls") && plan.contains("syslog tls 0.0.0.0:6514"), "{plan}");
    assert!(plan.contains("collect-bras-radius") && plan.contains("RADIUS accounting udp 0.0.0.0:1813"), "{plan}");
    std::fs::write(&config, "[[collect.syslog]]\nprotocol = \"tls\"\nlisten = \"0.0.0.0:6514\"\n").unwrap();
    let output = lux().args(["check", config.to_str().unwrap()]).output().unwrap();
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        errors.contains("collect.syslog[0].tls_cert") && errors.contains("needs the certificate chain"),
        "{errors}"
    );
}

/// Posts newline-delimited `lines` to the HTTP collector at `addr`; returns the status line.
fn post_records(addr: SocketAddr, token: &str, lines: &[String]) -> String {
    let body = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/records HTTP/1.1\r\nHost: lux\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn lux_collect_tails_files_and_takes_http_posts_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let token = dir.path().join("probes.token");
    std::fs::write(&token, "t0ken-for-the-test\n").unwrap();
    let config = dir.path().join("lux.toml");
    std::fs::write(
        &config,
        format!(
            "[[collect.files]]\npaths = [\"{}/*.log\"]\nsource = \"olt-files\"\npoll_interval = \"50ms\"\n\n\
             [[collect.http]]\nlisten = \"127.0.0.1:0\"\nsource = \"probes\"\ntoken_file = \"{}\"\n\n\
             [run]\nsummary_interval = \"0s\"\n",
            logs.display(),
            token.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["collect", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    let line = |i: usize| format!("<34>1 2026-01-05T00:00:00Z olt-1 gpon - - - line {i:06}");
    let write = |from: usize, to: usize| {
        let text: String = (from..to).map(|i| format!("{}\n", line(i))).collect();
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(logs.join("olt.log")).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    };
    write(0, 3000);
    let mut expected_http = 0;
    for (round, (from, to)) in [(3000, 3000), (3000, 3500)].into_iter().enumerate() {
        let (child, addr, stderr) = start(&args, "address=");
        write(from, to);
        let posted: Vec<String> = (0..100).map(|i| format!("{{\"round\":{round},\"seq\":{i}}}")).collect();
        assert_eq!(post_records(addr, "wrong", &posted), "HTTP/1.1 401 Unauthorized");
        assert_eq!(post_records(addr, "t0ken-for-the-test", &posted), "HTTP/1.1 200 OK");
        expected_http += 100;
        let log = open_reader_when_ready(&data);
        let started = Instant::now();
        while log.topic("raw").map(|t| t.record_count()).unwrap_or(0) < (to + expected_http) as u64 {
            assert!(started.elapsed() < Duration::from_secs(60), "not every line arrived");
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = terminate(child);
        let stderr = stderr.join().unwrap();
        assert!(status.success(), "lux collect: {status}\n{stderr}");
        assert!(!stderr.contains("t0ken-for-the-test"), "the token is never logged");
    }
    let reader = EmbeddedLog::open_reader(&data).unwrap();
    let records: Vec<serde_json::Value> =
        read(&reader, "raw").into_iter().flatten().map(|r| serde_json::from_slice(&r.value).unwrap()).collect();
    let file_lines: Vec<String> = records
        .iter()
        .filter(|r| r["source"] == "olt-files")
        .map(|r| r["payload"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(file_lines, (0..3500).map(line).collect::<Vec<_>>(), "every line once, in order, across the restart");
    assert_eq!(records.iter().filter(|r| r["source"] == "probes").count(), 200);
}
