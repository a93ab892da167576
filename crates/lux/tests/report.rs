//! `lux report` end to end: `lux run --until-done` on 150 s of generated traffic (with a site
//! incident that raises and clears alarms), then `lux report` for periods of it, whose figures
//! are compared with the records of the `qoe` and `alarms` topics and the demo network's
//! interventions; and the HTML page opened in a real headless Chromium (Debian's `chromium`,
//! installed by scripts/test; skipped when missing, except under CI where that fails):
//! screenshot of the expected size and not blank, the charts and tables in its DOM, no console
//! error.

mod common;

use common::values;
use lux_generate::{GeneratorConfig, Network};
use lux_log::embedded::EmbeddedLog;
use lux_model::{Alarm, AlarmState, QoeIndicator};
use lux_qoe::hll::HyperLogLog;
use lux_report::{parse_time, ReportModel};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SECONDS: u64 = 150;

/// One pipeline run shared by the tests of this file.
struct Run {
    _dir: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
    out: PathBuf,
    config_text: String,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (config, data, out) = (dir.path().join("lux.toml"), dir.path().join("data"), dir.path().join("reports"));
        let incidents = "[[generator.incidents]]\nscope = \"site\"\nstart_after = \"70s\"\nduration = \"30s\"\n";
        let config_text = common::bounded_config(SECONDS, "3s", incidents);
        std::fs::write(&config, &config_text).unwrap();
        let output = common::lux()
            .args(["run", "--until-done", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("lux runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        Run { _dir: dir, config, data, out, config_text }
    })
}

fn report(run: &Run, args: &[&str]) -> Output {
    common::lux()
        .arg("report")
        .arg("--config")
        .arg(&run.config)
        .arg("--data-dir")
        .arg(&run.data)
        .args(args)
        .output()
        .expect("lux report runs")
}

/// `lux report` for [from, to) into `run.out`; the model (its JSON) and the files written.
fn report_model(run: &Run, from: &str, to: &str) -> (ReportModel, Vec<PathBuf>) {
    let out = run.out.to_str().unwrap();
    let output = report(run, &["--from", from, "--to", to, "--out", out, "--min-events", "5"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let files: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout).lines().map(PathBuf::from).collect();
    assert_eq!(files.len(), 3, "html, csv and json: {files:?}");
    let json = files.iter().find(|f| f.extension().is_some_and(|e| e == "json")).unwrap();
    let model: ReportModel = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    (model, files)
}

/// The indicator records of the run, and its alarm records.
fn topics(run: &Run) -> (Vec<QoeIndicator>, Vec<Alarm>) {
    let log = EmbeddedLog::open_reader(&run.data).unwrap();
    let qoe = values(&log, "qoe").into_iter().flatten().map(|v| serde_json::from_value(v).unwrap()).collect();
    let alarms = values(&log, "alarms").into_iter().flatten().map(|v| serde_json::from_value(v).unwrap()).collect();
    (qoe, alarms)
}

/// What the report must say, summed here from the topic's equipment records.
#[derive(Debug, Default, PartialEq)]
struct Sums {
    records: u64,
    events: u64,
    attempts: u64,
    setup_successes: u64,
    auth_failures: u64,
    stops: u64,
    drops: u64,
    failures: u64,
    excluded: u64,
    affected: u64,
}

fn sums(indicators: &[QoeIndicator], from: i64, to: i64) -> Sums {
    let mut s = Sums::default();
    let mut sketch = HyperLogLog::default();
    for q in indicators.iter().filter(|q| q.dimension == "equipment" && q.window_start >= from && q.window_start < to) {
        s.records += 1;
        s.events += q.events;
        s.attempts += q.attempts;
        s.setup_successes += q.setup_successes;
        s.auth_failures += q.auth_failures;
        s.stops += q.stops;
        s.drops += q.drops;
        s.failures += q.failures;
        s.excluded += q.excluded_events;
        sketch.merge(&HyperLogLog::decode(&q.subscriber_sketch).unwrap());
    }
    s.affected = sketch.estimate();
    s
}

/// Rates read back from the report's JSON: serde_json parses floats to within one unit of the
/// last place, not always to the nearest.
fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300),
        (a, b) => a == b,
    }
}

fn totals(m: &lux_report::Totals) -> Sums {
    Sums {
        records: m.records,
        events: m.events,
        attempts: m.attempts,
        setup_successes: m.setup_successes,
        auth_failures: m.auth_failures,
        stops: m.stops,
        drops: m.drops,
        failures: m.failures,
        excluded: m.excluded_events,
        affected: m.affected_subscribers,
    }
}

#[test]
fn the_report_of_a_run_has_the_figures_of_its_topics() {
    let run = run();
    let (indicators, alarms) = topics(run);
    let (from, to) = (parse_time("2026-01-05T10:00:00Z").unwrap(), parse_time("2026-01-05T10:03:00Z").unwrap());
    let (m, files) = report_model(run, "2026-01-05T10:00:00Z", "2026-01-05T10:03:00Z");
    assert!(files.iter().all(|f| f.file_stem().unwrap() == "lux-report-20260105T100000Z-20260105T100300Z"));
    assert!(files.iter().all(|f| f.is_file()));
    use std::os::unix::fs::PermissionsExt;
    assert!(files.iter().all(|f| std::fs::metadata(f).unwrap().permissions().mode() & 0o777 == 0o644));

    let want = sums(&indicators, from, to);
    assert!(want.events > 1_000 && want.failures > 100, "the traffic and its incident: {want:?}");
    assert_eq!(totals(&m.current), want);
    assert_eq!(
        m.indicator_records,
        indicators.iter().filter(|q| q.window_start >= from && q.window_start < to).count() as u64
    );
    assert!(close(m.current.drop_rate, lux_model::ratio(want.drops, want.stops)));
    assert!(close(m.current.setup_success_rate, lux_model::ratio(want.setup_successes, want.attempts)));
    assert_eq!(m.previous.events, 0, "nothing before 10:00");
    assert_eq!(m.headline.iter().find(|k| k.key == "drop_rate").unwrap().delta, None);
    // The timeline (5-minute buckets) holds every event of the period.
    assert_eq!(m.timeline.buckets.iter().map(|b| b.events).sum::<u64>(), want.events);

    // Worst regions: ranked by failure rate over the topic's region records.
    let mut regions: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for q in indicators.iter().filter(|q| q.dimension == "region" && q.window_start >= from && q.window_start < to) {
        let r = regions.entry(q.value.as_str()).or_default();
        r.0 += q.events;
        r.1 += q.failures;
    }
    let mut ranked: Vec<(&str, u64, u64)> =
        regions.iter().filter(|(_, (e, f))| *e >= 5 && *f > 0).map(|(v, (e, f))| (*v, *e, *f)).collect();
    ranked.sort_by(|a, b| {
        (u128::from(b.2) * u128::from(a.1))
            .cmp(&(u128::from(a.2) * u128::from(b.1)))
            .then(b.2.cmp(&a.2))
            .then(a.0.cmp(b.0))
    });
    ranked.truncate(10);
    let worst = m.worst.iter().find(|w| w.dimension == "region").unwrap();
    let got: Vec<(&str, u64, u64)> = worst.rows.iter().map(|r| (r.value.as_str(), r.events, r.failures)).collect();
    assert_eq!(got, ranked);
    assert!(!got.is_empty());

    // Alarms: every raise and clear of the topic falls in the period.
    let at = |state: AlarmState| -> std::collections::BTreeMap<&str, i64> {
        alarms.iter().filter(|a| a.state == state).map(|a| (a.alarm_id.as_str(), a.window_end)).collect()
    };
    let (raised, cleared) = (at(AlarmState::Raised), at(AlarmState::Cleared));
    assert!(!raised.is_empty() && !cleared.is_empty(), "the incident raises and clears alarms");
    assert_eq!(m.alarms.raised, raised.len() as u64);
    assert_eq!(m.alarms.cleared, cleared.len() as u64);
    assert_eq!(m.alarms.open_at_end, (raised.len() - cleared.len()) as u64);
    let repair: i64 = cleared.iter().map(|(id, c)| c - raised[id]).sum();
    assert!(close(m.alarms.mttr_s, Some(repair as f64 / cleared.len() as f64 / 1000.0)), "{:?}", m.alarms.mttr_s);
    assert_eq!(m.alarms.alarms.len(), raised.len());

    // Interventions: those of the demo network overlapping the period.
    let table: toml::Table = toml::from_str(&run.config_text).unwrap();
    let generator: GeneratorConfig = table["generator"].clone().try_into().unwrap();
    let network = Network::generate_at(&generator, generator.start_ms().unwrap()).unwrap();
    let mut want_ids: Vec<&str> = network
        .interventions
        .iter()
        .filter(|i| {
            let (start, end) = i.covers();
            start < to && end > from
        })
        .map(|i| i.intervention_id.as_str())
        .collect();
    want_ids.sort();
    let listed = m.interventions.as_ref().expect("the demo reference data");
    let mut got_ids: Vec<&str> = listed.iter().map(|i| i.id.as_str()).collect();
    got_ids.sort();
    assert_eq!(got_ids, want_ids);
    if want.excluded > 0 {
        assert!(listed.iter().any(|i| i.exclude_from_kpi && i.excluded_events.unwrap_or(0) > 0));
    }
    assert!(m.notes.is_empty(), "{:?}", m.notes);
}

#[test]
fn a_period_is_compared_with_the_one_before() {
    let run = run();
    let (indicators, _) = topics(run);
    let (m, _) = report_model(run, "2026-01-05T10:01:00Z", "2026-01-05T10:02:00Z");
    let minute = |t: &str| parse_time(t).unwrap();
    let now = sums(&indicators, minute("2026-01-05T10:01:00Z"), minute("2026-01-05T10:02:00Z"));
    let before = sums(&indicators, minute("2026-01-05T10:00:00Z"), minute("2026-01-05T10:01:00Z"));
    assert!(now.events > 0 && before.events > 0);
    assert_eq!(totals(&m.current), now);
    assert_eq!(totals(&m.previous), before);
    let events = m.headline.iter().find(|k| k.key == "events").unwrap();
    assert_eq!(events.delta, Some(now.events as f64 - before.events as f64));
    let drop = m.headline.iter().find(|k| k.key == "drop_rate").unwrap();
    let rate = |s: &Sums| s.drops as f64 / s.stops as f64;
    assert!(close(drop.delta, Some(rate(&now) - rate(&before))), "{:?}", drop.delta);
}

#[test]
fn stdout_empty_periods_and_errors() {
    let run = run();
    // One format on stdout.
    let output = report(
        run,
        &["--from", "2026-01-05T10:00:00Z", "--to", "2026-01-05T10:03:00Z", "--out", "-", "--format", "csv"],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("table,kpi,label,unit,current,previous,delta"));
    // A period with no indicators: a report saying so.
    let output = report(run, &["--period", "hour", "--at", "2026-01-05T09:30:00Z", "--out", "-", "--format", "json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let m: ReportModel = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((m.period.label.as_str(), m.indicator_records), ("hour 2026-01-05 08:00 UTC", 0));
    assert!(m.notes[0].starts_with("no QoE indicators in the period"), "{:?}", m.notes);
    // Clear errors.
    for (args, message) in [
        (&["--format", "pdf"][..], "use html, csv or json"),
        (&["--out", "-"][..], "--out - prints one format"),
        (&["--period", "month"][..], "use hour, day or week"),
        (&["--from", "2026-01-05T10:00:00Z", "--to", "2026-01-05T09:00:00Z"][..], "--to must be after --from"),
        (&["--from", "yesterday", "--to", "2026-01-05T09:00:00Z"][..], "RFC 3339"),
    ] {
        let output = report(run, args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A Debian tool, or `None` (the test is skipped) when it is missing and not under CI.
fn tool(name: &str) -> Option<PathBuf> {
    if let Ok(out) = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output() {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !path.is_empty() {
            return Some(PathBuf::from(path));
        }
    }
    assert!(std::env::var_os("CI").is_none(), "{name} is not installed; scripts/test installs it");
    eprintln!("skipped: {name} is not installed (scripts/test installs it)");
    None
}

/// Headless Chromium on `page` with `args`, its own profile, killed after 120 s (a bound against
/// hangs, not a timing assertion): (stdout, stderr).
fn chromium(chromium: &Path, profile: &Path, page: &Path, args: &[String]) -> (String, String) {
    let mut child = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"])
        .args(["--no-first-run", "--disable-extensions", "--disable-background-networking"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env("HOME", profile)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).ok();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).ok();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (out.join().unwrap(), err.join().unwrap())
}

/// The console messages and page errors Chromium logged.
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused to")).collect()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn the_html_report_opens_in_headless_chromium() {
    let Some(chromium_bin) = tool("chromium") else { return };
    let run = run();
    let (_, files) = report_model(run, "2026-01-05T10:00:00Z", "2026-01-05T10:03:00Z");
    let html = files.iter().find(|f| f.extension().is_some_and(|e| e == "html")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    std::fs::create_dir_all(&profile).unwrap();

    // The console is watched: a control page's console.error shows in the log.
    let control = dir.path().join("control.html");
    std::fs::write(&control, "<!DOCTYPE html><html><head><title>c</title></head><body><script>console.error('lux-control-error')</script></body></html>").unwrap();
    let (_, stderr) = chromium(&chromium_bin, &profile, &control, &["--dump-dom".to_owned()]);
    assert!(console_errors(&stderr).iter().any(|l| l.contains("lux-control-error")), "console not captured: {stderr}");

    // The report: its DOM has the charts and tables, and nothing went to the console.
    let (dom, stderr) = chromium(&chromium_bin, &profile, html, &["--dump-dom".to_owned()]);
    assert_eq!(console_errors(&stderr), Vec::<&str>::new(), "{stderr}");
    assert!(dom.contains("<h1>LUX QoE report — 2026-01-05 10:00:00 UTC to 2026-01-05 10:03:00 UTC</h1>"), "{dom}");
    assert_eq!(dom.matches("<svg").count(), 4, "timeline, worst regions, error codes, durations");
    assert!(dom.matches("<table").count() >= 5, "worst lists, error codes, alarms, interventions");
    assert!(dom.contains("<rect class=\"bar\""));

    // A screenshot of the expected size, and not a blank page's.
    let shot = |page: &Path, png: &Path| {
        let (_, stderr) = chromium(
            &chromium_bin,
            &profile,
            page,
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,2000".to_owned(),
                "--hide-scrollbars".to_owned(),
            ],
        );
        let bytes = std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot {}: {e}\n{stderr}", png.display()));
        (bytes, stderr)
    };
    let (report_png, stderr) = shot(html, &dir.path().join("report.png"));
    assert_eq!(console_errors(&stderr), Vec::<&str>::new(), "{stderr}");
    assert_eq!(png_size(&report_png), (1280, 2000));
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><head><title>blank</title></head><body></body></html>").unwrap();
    let (blank_png, _) = shot(&blank, &dir.path().join("blank.png"));
    assert_eq!(png_size(&blank_png), (1280, 2000));
    assert!(
        report_png.len() > 10 * blank_png.len(),
        "the report's screenshot ({} bytes) is not much more than a blank page's ({} bytes)",
        report_png.len(),
        blank_png.len()
    );
    eprintln!("chromium: report screenshot {} bytes, blank page {} bytes", report_png.len(), blank_png.len());
}
