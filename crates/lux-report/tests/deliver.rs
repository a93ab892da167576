//! Scheduled delivery to a directory and to an HTTP endpoint, driven by explicit times: the
//! report of each period delivered once, a failed delivery retried with backoff until the
//! server answers 2xx, a run missed while the scheduler was down caught up at start, a
//! delivery whose retries are spent kept in the outbox marked failed (and tried again on
//! demand), all surviving restarts of the scheduler.

mod common;

use common::{config, report, scheduler, tick, HttpServer, HOUR, MINUTE, T0};
use lux_report::outbox::{DeliveryState, Outbox};
use lux_report::{Period, Scheduler};
use std::sync::{Arc, Mutex};

fn hour(from: i64) -> Period {
    Period { from, to: from + HOUR }
}

#[test]
fn a_directory_gets_every_format_of_each_period_once() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let config = config(&format!(
        r#"
        [[schedule]]
        name = "hourly"
        every = "hour"
        offset = "5m"
        destinations = ["archive"]

        [[dir]]
        name = "archive"
        path = "{}"
        "#,
        out.path().join("reports").display()
    ));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut scheduler = Scheduler::new(&config, data.path(), common::builder(calls.clone())).unwrap();
    tick(&mut scheduler, T0); // 10:00: the schedule starts
    tick(&mut scheduler, T0 + 4 * MINUTE); // nothing due yet
    assert!(calls.lock().unwrap().is_empty());
    tick(&mut scheduler, T0 + 5 * MINUTE); // 10:05: the 09:00-10:00 report
    tick(&mut scheduler, T0 + 6 * MINUTE);
    tick(&mut scheduler, T0 + HOUR + 5 * MINUTE); // 11:05: the 10:00-11:00 report
    let expected = [hour(T0 - HOUR), hour(T0)];
    assert_eq!(*calls.lock().unwrap(), expected.map(|p| ("hourly".to_owned(), p)));

    let mut files: Vec<String> = std::fs::read_dir(out.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut wanted = Vec::new();
    for period in expected {
        let report = report("hourly", period);
        for (ext, content) in [("csv", &report.csv), ("html", &report.html), ("json", &report.json)] {
            let name = format!("{}.{ext}", report.stem);
            assert_eq!(&std::fs::read_to_string(out.path().join("reports").join(&name)).unwrap(), content);
            wanted.push(name);
        }
    }
    wanted.sort();
    assert_eq!(files, wanted, "only the reports, no temporary file left");
    // Delivered runs leave the outbox.
    assert!(scheduler.runs().is_empty());
    assert!(Outbox::open(data.path()).unwrap().load().unwrap().is_empty());
    assert_eq!(scheduler.metrics().deliveries("hourly", "archive", "delivered"), 2);
}

fn http_config(url: &str, attempts: u32) -> lux_report::ReportConfig {
    config(&format!(
        r#"
        max_catch_up = 5

        [[schedule]]
        name = "hourly"
        every = "hour"
        offset = "5m"
        destinations = ["bi"]

        [[http]]
        name = "bi"
        url = "{url}"
        bearer_token_env = "LUX_TEST_REPORT_TOKEN"
        headers = {{ "X-Team" = "bi" }}
        timeout = "5s"

        [retry]
        first = "1m"
        max = "4m"
        attempts = {attempts}
        "#
    ))
}

fn set_token() {
    // Every test of this file sets the same value: setting it concurrently is harmless.
    std::env::set_var("LUX_TEST_REPORT_TOKEN", "s3cret-token");
}

#[test]
fn a_failed_post_is_retried_with_backoff_until_the_server_answers_2xx() {
    set_token();
    let server = HttpServer::start(&[500, 503]);
    let data = tempfile::tempdir().unwrap();
    let mut scheduler = scheduler(&http_config(&server.url(), 10), data.path());
    tick(&mut scheduler, T0);
    tick(&mut scheduler, T0 + 5 * MINUTE); // attempt 1: 500
    assert_eq!(server.requests().len(), 1);
    tick(&mut scheduler, T0 + 5 * MINUTE + 59_000); // the first wait (1m) is not over
    assert_eq!(server.requests().len(), 1);
    tick(&mut scheduler, T0 + 6 * MINUTE); // attempt 2: 503
    tick(&mut scheduler, T0 + 7 * MINUTE + 59_000); // the second wait is 2m
    assert_eq!(server.requests().len(), 2);
    let run = &scheduler.runs()[0];
    assert_eq!(run.deliveries[0].attempts.attempts, 2);
    assert!(run.deliveries[0].attempts.last_error.as_deref().unwrap().contains("HTTP status 503"), "{run:?}");
    tick(&mut scheduler, T0 + 8 * MINUTE); // attempt 3: 200
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(scheduler.runs().is_empty());

    let expected = report("hourly", hour(T0 - HOUR));
    for request in &requests {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/ingest"));
        assert_eq!(request.body, expected.json.as_bytes(), "the same report every attempt");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), Some("Bearer s3cret-token"));
        assert_eq!(request.header("x-team"), Some("bi"));
        assert_eq!(request.header("x-lux-report"), Some(expected.stem.as_str()));
        assert_eq!(request.header("x-lux-period-from"), Some("2026-11-26T09:00:00.000Z"));
        assert_eq!(request.header("x-lux-period-to"), Some("2026-11-26T10:00:00.000Z"));
    }
    let metrics = scheduler.metrics();
    assert_eq!(metrics.deliveries("hourly", "bi", "error"), 2);
    assert_eq!(metrics.deliveries("hourly", "bi", "delivered"), 1);
    let registry = lux_metrics::Registry::new();
    registry.register(metrics);
    let text = registry.render();
    for line in [
        "lux_report_deliveries_total{schedule=\"hourly\",destination=\"bi\",outcome=\"delivered\"} 1",
        "lux_report_deliveries_total{schedule=\"hourly\",destination=\"bi\",outcome=\"error\"} 2",
        "lux_report_deliveries_total{schedule=\"hourly\",destination=\"bi\",outcome=\"failed\"} 0",
        "lux_report_pending_deliveries{schedule=\"hourly\",destination=\"bi\"} 0",
        "lux_report_builds_total{schedule=\"hourly\",outcome=\"built\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

#[test]
fn a_pending_delivery_survives_a_restart_and_missed_runs_are_caught_up() {
    set_token();
    // The endpoint is down: nothing listens on its port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = http_config(&format!("http://{port}/ingest"), 10);
    {
        let mut scheduler = scheduler(&config, data.path());
        tick(&mut scheduler, T0);
        tick(&mut scheduler, T0 + 5 * MINUTE); // refused
        let run = &scheduler.runs()[0];
        assert_eq!(run.deliveries[0].state, DeliveryState::Pending);
        assert!(run.deliveries[0].attempts.last_error.is_some());
        assert_eq!(scheduler.metrics().deliveries("hourly", "bi", "error"), 1);
    } // LUX stops at 10:06...
    let server = HttpServer::start_on(port, &[]);
    // ... and starts again at 13:30: the 10:05 run is still pending, the 11:05, 12:05 and 13:05
    // ones were missed.
    let mut scheduler = scheduler(&config, data.path());
    assert_eq!(scheduler.runs().len(), 1, "the pending run is read back from the outbox");
    tick(&mut scheduler, T0 + 3 * HOUR + 30 * MINUTE);
    assert!(scheduler.runs().is_empty(), "{:?}", scheduler.runs());
    let stems: Vec<String> =
        server.requests().iter().map(|r| r.header("x-lux-report").unwrap_or_default().to_owned()).collect();
    let expected: Vec<String> = (0..4).map(|i| report("hourly", hour(T0 + (i - 1) * HOUR)).stem).collect();
    assert_eq!(stems, expected, "each period once, oldest first");
    // Nothing more to do until 14:05.
    tick(&mut scheduler, T0 + 4 * HOUR + 4 * MINUTE);
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn missed_runs_beyond_max_catch_up_are_skipped_and_the_latest_kept() {
    set_token();
    let server = HttpServer::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let config = http_config(&server.url(), 10);
    {
        let mut scheduler = scheduler(&config, data.path());
        tick(&mut scheduler, T0);
    }
    // Down for a day: 24 runs missed, max_catch_up = 5.
    let mut scheduler = scheduler(&config, data.path());
    tick(&mut scheduler, T0 + 24 * HOUR + 10 * MINUTE);
    let stems: Vec<String> =
        server.requests().iter().map(|r| r.header("x-lux-report").unwrap_or_default().to_owned()).collect();
    let expected: Vec<String> = (19..24).map(|i| report("hourly", hour(T0 + i * HOUR)).stem).collect();
    assert_eq!(stems, expected);
}

#[test]
fn a_delivery_whose_retries_are_spent_is_kept_marked_failed_and_can_be_retried() {
    set_token();
    let server = HttpServer::start(&[500, 500, 500, 500]);
    let data = tempfile::tempdir().unwrap();
    let config = http_config(&server.url(), 2);
    {
        let mut scheduler = scheduler(&config, data.path());
        tick(&mut scheduler, T0);
        tick(&mut scheduler, T0 + 5 * MINUTE);
        tick(&mut scheduler, T0 + 6 * MINUTE); // the second and last attempt
        tick(&mut scheduler, T0 + 30 * MINUTE);
        assert_eq!(server.requests().len(), 2);
        let metrics = scheduler.metrics();
        assert_eq!(metrics.deliveries("hourly", "bi", "error"), 1);
        assert_eq!(metrics.deliveries("hourly", "bi", "failed"), 1);
        let registry = lux_metrics::Registry::new();
        registry.register(metrics);
        let text = registry.render();
        let line = "lux_report_failed_deliveries{schedule=\"hourly\",destination=\"bi\"} 1";
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    // Kept in the outbox, marked failed with the reason.
    let runs = Outbox::open(data.path()).unwrap().load().unwrap();
    assert_eq!(runs.len(), 1);
    let delivery = &runs[0].deliveries[0];
    assert_eq!((delivery.state, delivery.attempts.attempts), (DeliveryState::Failed, 2));
    assert!(delivery.attempts.last_error.as_deref().unwrap().contains("HTTP status 500"), "{delivery:?}");
    assert_eq!(runs[0].report.as_ref().unwrap().json, report("hourly", hour(T0 - HOUR)).json);

    // A restart does not try it again on its own...
    let mut scheduler = scheduler(&config, data.path());
    tick(&mut scheduler, T0 + 40 * MINUTE);
    assert_eq!(server.requests().len(), 2);
    // ... `--retry-failed` does, with a fresh budget (500, 500: failed again).
    assert_eq!(scheduler.retry_failed(T0 + 41 * MINUTE).unwrap(), 1);
    tick(&mut scheduler, T0 + 41 * MINUTE);
    tick(&mut scheduler, T0 + 42 * MINUTE);
    assert_eq!(server.requests().len(), 4);
    assert_eq!(scheduler.runs()[0].deliveries[0].state, DeliveryState::Failed);
    // Once more, and the server is back.
    scheduler.retry_failed(T0 + 50 * MINUTE).unwrap();
    tick(&mut scheduler, T0 + 50 * MINUTE);
    assert_eq!(server.requests().len(), 5);
    assert!(scheduler.runs().is_empty());
    assert!(Outbox::open(data.path()).unwrap().load().unwrap().is_empty());
}

#[test]
fn a_report_that_cannot_be_built_is_retried_then_its_deliveries_marked_failed() {
    set_token();
    let server = HttpServer::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let config = http_config(&server.url(), 3);
    let attempts = Arc::new(Mutex::new(0));
    let build: lux_report::BuildReport = {
        let attempts = attempts.clone();
        Arc::new(move |schedule, period| {
            let mut n = attempts.lock().unwrap();
            *n += 1;
            if *n <= 4 {
                Err(format!("the qoe topic cannot be read (attempt {n})"))
            } else {
                Ok(report(schedule, period))
            }
        })
    };
    let mut scheduler = Scheduler::new(&config, data.path(), build).unwrap();
    tick(&mut scheduler, T0);
    tick(&mut scheduler, T0 + 5 * MINUTE); // build 1 fails
    tick(&mut scheduler, T0 + 6 * MINUTE); // build 2 fails
    tick(&mut scheduler, T0 + 8 * MINUTE); // build 3 fails: the budget is spent
    assert_eq!(*attempts.lock().unwrap(), 3);
    let run = &scheduler.runs()[0];
    assert_eq!(run.deliveries[0].state, DeliveryState::Failed);
    assert!(run.deliveries[0].attempts.last_error.as_deref().unwrap().contains("attempt 3"), "{run:?}");
    assert_eq!(scheduler.metrics().deliveries("hourly", "bi", "failed"), 1);
    assert!(server.requests().is_empty());
    // The next hour's run builds (attempt 4 fails, 5 succeeds) and is delivered; the failed one stays.
    tick(&mut scheduler, T0 + HOUR + 5 * MINUTE);
    tick(&mut scheduler, T0 + HOUR + 6 * MINUTE);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(scheduler.runs().len(), 1);
    assert_eq!(scheduler.runs()[0].period, hour(T0 - HOUR));
}
