//! `lux publish`, the report scheduler as its own process: it resumes the outbox another run
//! left (a pending delivery, and with `--retry-failed` one marked failed), delivers both to a
//! directory, shows them on `/metrics`, and stops cleanly on SIGTERM; `lux check` names the keys
//! of a bad `[report]` section; `lux publish` with no schedule says what to configure; inside
//! `lux run`, a schedule builds `lux report`'s report from the live log and delivers it.

mod common;

use common::lux;
use lux_report::outbox::{DeliveryState, Outbox, Run, StoredReport};
use lux_report::Period;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn stored(stem: &str) -> StoredReport {
    StoredReport {
        title: format!("Report {stem}"),
        stem: stem.to_owned(),
        html: format!("<html><body>{stem}</body></html>"),
        csv: format!("stem\n{stem}\n"),
        json: format!("{{\"stem\":\"{stem}\"}}"),
    }
}

#[test]
fn publish_resumes_the_outbox_shows_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (data, reports) = (dir.path().join("data"), dir.path().join("reports"));
    let port = free_port();
    let config = dir.path().join("lux.toml");
    std::fs::write(
        &config,
        format!(
            "[[report.schedule]]\nname = \"weekly\"\nevery = \"week\"\ndestinations = [\"archive\"]\n\n\
             [[report.dir]]\nname = \"archive\"\npath = \"{}\"\nformats = [\"html\", \"csv\"]\n\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[run]\nsummary_interval = \"0s\"\n",
            reports.display()
        ),
    )
    .unwrap();
    // What an earlier run left: a delivery still pending, one whose retries were spent.
    let outbox = Outbox::open(&data.join("report")).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let week = 7 * 86_400_000;
    let mut runs = Vec::new();
    for (i, state) in [DeliveryState::Failed, DeliveryState::Pending].into_iter().enumerate() {
        let at = now - (2 - i as i64) * week;
        let mut run = Run::new("weekly", at, Period { from: at - week, to: at }, &["archive".to_owned()]);
        run.report = Some(stored(&format!("weekly-{i}")));
        run.deliveries[0].state = state;
        run.deliveries[0].attempts.attempts = 3;
        run.deliveries[0].attempts.last_error = Some("dir /nowhere: permission denied".into());
        outbox.save(&run).unwrap();
        runs.push(run);
    }
    // The schedule has run just now: nothing is missed.
    outbox.save_marks(&[("weekly".to_owned(), now)].into()).unwrap();

    let child = lux()
        .args(["publish", "--retry-failed", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lux publish starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted = ["weekly-0.html", "weekly-0.csv", "weekly-1.html", "weekly-1.csv"];
    while !wanted.iter().all(|f| reports.join(f).exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = (|| -> Result<String, ureq::Error> {
        loop {
            let text = ureq::get(&format!("http://127.0.0.1:{port}/metrics")).call()?.body_mut().read_to_string()?;
            if text.contains("lux_report_pending_deliveries{schedule=\"weekly\",destination=\"archive\"} 0")
                || Instant::now() > deadline
            {
                return Ok(text);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "lux publish did not stop cleanly: {}\n{stderr}", output.status);
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
    assert!(stderr.contains("1 report delivery(ies) marked failed are tried again"), "{stderr}");

    for (i, run) in runs.iter().enumerate() {
        let report = run.report.as_ref().unwrap();
        assert_eq!(std::fs::read_to_string(reports.join(format!("weekly-{i}.html"))).unwrap(), report.html);
        assert_eq!(std::fs::read_to_string(reports.join(format!("weekly-{i}.csv"))).unwrap(), report.csv);
        assert!(!reports.join(format!("weekly-{i}.json")).exists(), "json is not among the formats");
    }
    assert!(Outbox::open(&data.join("report")).unwrap().load().unwrap().is_empty(), "delivered runs leave the outbox");
    let metrics = metrics.expect("/metrics answers");
    for line in [
        "lux_report_deliveries_total{schedule=\"weekly\",destination=\"archive\",outcome=\"delivered\"} 2",
        "lux_report_deliveries_total{schedule=\"weekly\",destination=\"archive\",outcome=\"failed\"} 0",
        "lux_report_pending_deliveries{schedule=\"weekly\",destination=\"archive\"} 0",
        "lux_report_failed_deliveries{schedule=\"weekly\",destination=\"archive\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in\n{metrics}");
    }
}

#[test]
fn check_names_the_keys_of_a_bad_report_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lux.toml");
    std::fs::write(
        &config,
        "[[report.schedule]]\nname = \"daily\"\ncron = \"0 6 * *\"\nperiod = \"day\"\ndestinations = [\"bi\"]\n\n\
         [[report.http]]\nname = \"bi\"\nurl = \"bi.example.net/ingest\"\n\n\
         [[report.smtp]]\nname = \"mail\"\nhost = \"smtp.example.net\"\nfrom = \"lux@example.net\"\nto = []\n",
    )
    .unwrap();
    let output = lux().arg("check").arg(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "line 3: report.schedule[0].cron: \"0 6 * *\" is not a cron expression",
        "line 9: report.http[0].url: \"bi.example.net/ingest\" is not an http:// or https:// URL with a host",
        "line 15: report.smtp[0].to: is empty: list the recipients",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in\n{stderr}");
    }
}

#[test]
fn publish_without_a_schedule_says_what_to_configure() {
    let dir = tempfile::tempdir().unwrap();
    let output = lux().args(["publish", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no report schedule is configured: add [[report.schedule]]"), "{stderr}");
}

/// Inside `lux run`, a schedule builds `lux report`'s report from the log the stages are
/// writing (the embedded log, opened for reading beside its writer) and delivers it: every
/// 10 seconds here, the last complete hour's report, as the three files of its stem.
#[test]
fn lux_run_builds_and_delivers_its_scheduled_reports_from_its_own_log() {
    let dir = tempfile::tempdir().unwrap();
    let (data, reports) = (dir.path().join("data"), dir.path().join("reports"));
    let config = dir.path().join("lux.toml");
    std::fs::write(
        &config,
        format!(
            "[[report.schedule]]\nname = \"often\"\ncron = \"*/10 * * * * *\"\nperiod = \"hour\"\ndestinations = [\"archive\"]\n\n\
             [[report.dir]]\nname = \"archive\"\npath = \"{}\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:{}\"\n\n[run]\nsummary_interval = \"0s\"\n",
            reports.display(),
            free_port()
        ),
    )
    .unwrap();
    let output = lux()
        .args(["run", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["--stop-after", "25s"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "lux run failed:\n{log}");
    let mut files: Vec<String> = std::fs::read_dir(&reports)
        .unwrap_or_else(|e| panic!("no report was delivered to {} ({e}):\n{log}", reports.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // One report (two when the test crosses an hour), each in the three formats.
    let stems: std::collections::BTreeSet<String> =
        files.iter().filter_map(|f| f.strip_suffix(".json")).map(str::to_owned).collect();
    assert!(!stems.is_empty() && stems.len() <= 2, "{files:?}\n{log}");
    let expected: Vec<String> =
        stems.iter().flat_map(|stem| ["csv", "html", "json"].map(|f| format!("{stem}.{f}"))).collect();
    assert_eq!(files, expected);
    let stem = stems.into_iter().next().unwrap();
    assert!(stem.starts_with("lux-report-hour-"), "{files:?}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.join(format!("{stem}.json"))).unwrap()).unwrap();
    assert_eq!(json["schema"], "lux.report.v1", "{json}");
    let html = std::fs::read_to_string(reports.join(format!("{stem}.html"))).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("LUX QoE report (often)"), "{html}");
    assert!(log.contains("report delivered to every destination"), "{log}");
}
