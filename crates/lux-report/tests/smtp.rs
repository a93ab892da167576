//! E-mail delivery against a real SMTP server: Python's aiosmtpd, started by the test on a free
//! 127.0.0.1 port (tests/smtp_server.py; scripts/test installs aiosmtpd), with authentication.
//! The received message is checked as a mail client would read it: envelope, From, To,
//! Subject, the HTML body equal to the report's HTML, the CSV attachment equal to its CSV. A
//! recipient the server refuses fails the delivery, which is retried with the reason kept.
//! Skipped when aiosmtpd is missing, except under CI (`CI` set) where that fails.

mod common;

use common::{report, tick, MINUTE, T0};
use lux_report::outbox::DeliveryState;
use lux_report::Period;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// aiosmtpd, or `None` (the test is skipped) when it is missing and not under CI.
fn aiosmtpd_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "aiosmtpd is not installed; scripts/test installs it");
        eprintln!("skipped: aiosmtpd is not installed (scripts/test installs it)");
    }
    found
}

struct SmtpServer {
    child: Child,
    port: u16,
}

impl SmtpServer {
    fn start(out: &Path, user: &str, password: &str) -> SmtpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(out)
            .args([user, password])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        SmtpServer { child, port }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_report_is_mailed_with_the_html_as_body_and_the_csv_attached() {
    if !aiosmtpd_available() {
        return;
    }
    let mailbox = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(mailbox.path(), "lux", "mail-s3cret");
    std::env::set_var("LUX_TEST_SMTP_PASSWORD", "mail-s3cret");
    let config = common::config(&format!(
        r#"
        [[schedule]]
        name = "daily"
        every = "day"
        offset = "6h"
        destinations = ["managers", "intruder"]

        [[smtp]]
        name = "managers"
        host = "127.0.0.1"
        port = {port}
        tls = "none"
        username = "lux"
        password_env = "LUX_TEST_SMTP_PASSWORD"
        from = "LUX reports <lux@example.net>"
        to = ["noc@example.net", "Network Managers <managers@example.net>"]
        subject = "{{title}} [{{schedule}}]"
        timeout = "10s"

        [[smtp]]
        name = "intruder"
        host = "127.0.0.1"
        port = {port}
        tls = "none"
        username = "lux"
        password_env = "LUX_TEST_SMTP_PASSWORD"
        from = "lux@example.net"
        to = ["nobody@refused.example.net"]
        timeout = "10s"

        [retry]
        first = "1m"
        attempts = 5
        "#,
        port = server.port
    ));
    let data = tempfile::tempdir().unwrap();
    let mut scheduler = common::scheduler(&config, data.path());
    tick(&mut scheduler, T0); // 2026-11-26T10:00
    let due = T0 + 20 * 60 * MINUTE; // 2026-11-27T06:00, the report of the 26th
    tick(&mut scheduler, due);

    let day = Period { from: T0 - 10 * 60 * MINUTE, to: T0 + 14 * 60 * MINUTE };
    let expected = report("daily", day);
    let received: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mailbox.path().join("1.json")).expect("one message received")).unwrap();
    assert!(!mailbox.path().join("2.json").exists(), "the intruder's message is refused");
    assert_eq!(received["mail_from"], "lux@example.net");
    assert_eq!(received["rcpt_tos"], serde_json::json!(["noc@example.net", "managers@example.net"]));
    assert_eq!(received["authenticated_as"], "lux");
    assert_eq!(received["from"], "LUX reports <lux@example.net>");
    assert_eq!(received["to"], "noc@example.net, Network Managers <managers@example.net>");
    assert_eq!(received["subject"], format!("{} [daily]", expected.title));
    assert_eq!(received["content_type"], "multipart/mixed");
    let parts = received["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0]["content_type"], "text/html");
    assert_ne!(parts[0]["disposition"], "attachment");
    assert_eq!(parts[0]["content"], expected.html.as_str());
    assert_eq!(parts[1]["content_type"], "text/csv");
    assert_eq!(parts[1]["disposition"], "attachment");
    assert_eq!(parts[1]["filename"], format!("{}.csv", expected.stem));
    assert_eq!(parts[1]["content"], expected.csv.as_str());

    // A recipient the server refuses: retried, the server's reason kept (the password never).
    let runs = scheduler.runs();
    assert_eq!(runs.len(), 1);
    let intruder = runs[0].deliveries.iter().find(|d| d.destination == "intruder").unwrap();
    let managers = runs[0].deliveries.iter().find(|d| d.destination == "managers").unwrap();
    assert_eq!(managers.state, DeliveryState::Delivered);
    assert_eq!(intruder.state, DeliveryState::Pending);
    let reason = intruder.attempts.last_error.as_deref().unwrap();
    assert!(reason.contains("smtp 127.0.0.1") && reason.contains("550"), "{reason}");
    assert!(!reason.contains("mail-s3cret"), "{reason}");
    assert_eq!(scheduler.metrics().deliveries("daily", "managers", "delivered"), 1);
    assert_eq!(scheduler.metrics().deliveries("daily", "intruder", "error"), 1);
    // The retry does not mail the managers again.
    tick(&mut scheduler, due + MINUTE);
    assert!(!mailbox.path().join("2.json").exists());
    assert_eq!(scheduler.metrics().deliveries("daily", "intruder", "error"), 2);
}
