//! `lux run` with the real Debian `prometheus` and `prometheus-alertmanager` (installed by
//! scripts/test; skipped when missing, except under CI where that fails), each started by the
//! test on free 127.0.0.1 ports with its own config and data directory:
//!
//! - Prometheus scrapes LUX's `/metrics`, and PromQL through its HTTP API gives the counters the
//!   topics hold (alarm records read by the notifier, records written by the transform stage),
//!   and the window counters per rule and group;
//! - an injected incident (generated in real time) appears as an active alert in Alertmanager
//!   (`/api/v2/alerts`), and is resolved there after it ends;
//! - the same incident on a site under an intervention that suppresses alarms is recorded as a
//!   suppressed alarm and never active in Alertmanager.

mod common;

use common::lux;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Debian tool, or `None` (the test is skipped) when it is missing and not under CI.
fn tool(names: &[&str]) -> Option<PathBuf> {
    for name in names {
        if let Ok(out) = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output() {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if out.status.success() && !path.is_empty() {
                return Some(PathBuf::from(path));
            }
        }
    }
    assert!(std::env::var_os("CI").is_none(), "{} is not installed; scripts/test installs it", names[0]);
    eprintln!("skipped: {} is not installed (scripts/test installs it)", names[0]);
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed (and reaped) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into()
}

fn get_json(url: &str) -> Option<serde_json::Value> {
    let mut response = agent().get(url).call().ok()?;
    serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()
}

/// Polls `f` every 250 ms until it gives `Some`, for at most `limit` (a bound against hangs,
/// not a timing assertion); `what` says what was awaited when it does not come.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Starts `binary` with `args` and waits until `{url}/-/ready` answers 200.
fn start_server(binary: &Path, args: Vec<String>, url: &str) -> Running {
    let child = Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()));
    let running = Running(child);
    wait_for(&format!("{} to be ready", binary.display()), Duration::from_secs(60), || {
        agent().get(&format!("{url}/-/ready")).call().ok().filter(|r| r.status() == 200)
    });
    running
}

fn start_alertmanager(binary: &Path, dir: &Path) -> (Running, String) {
    let port = free_port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(&config, "route:\n  receiver: nowhere\n  group_wait: 1s\nreceivers:\n  - name: nowhere\n").unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", dir.join("alertmanager-data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        // No cluster gossip (its default port may be taken; a single instance needs none).
        "--cluster.listen-address=".to_owned(),
    ];
    (start_server(binary, args, &url), url)
}

fn start_prometheus(binary: &Path, dir: &Path, scrape: &str) -> (Running, String) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: lux\n    \
             static_configs:\n      - targets: ['{scrape}']\n"
        ),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    (start_server(binary, args, &url), url)
}

/// The value of a PromQL query returning one sample, through Prometheus's HTTP API.
fn promql(prometheus: &str, query: &str) -> Option<f64> {
    let mut response = agent().get(&format!("{prometheus}/api/v1/query")).query("query", query).call().ok()?;
    let body: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()?;
    let result = body["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

/// Alertmanager's alerts for a site: (state, endsAt).
fn alerts_of(alertmanager: &str, site: &str) -> Vec<String> {
    let url = format!("{alertmanager}/api/v2/alerts");
    get_json(&url)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|a| a["labels"]["site"] == site && a["labels"]["alertname"] == "site-failures")
        .map(|a| a["status"]["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn read_topic(data_dir: &Path, topic: &str) -> Vec<serde_json::Value> {
    let output = lux().args(["topic", "read", topic, "--data-dir"]).arg(data_dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The generator's configuration: a small network, paced in real time from `start`.
fn generator_config(start: &str, incidents: &str) -> String {
    format!(
        "[generator]\nstart = \"{start}\"\nrealtime = true\nduration = \"50s\"\nequipment = 300\nsites = 4\nregions = 2\n\
         rate = 300\ndaily_curve = false\n{incidents}\n"
    )
}

/// The two sites with the most equipment, from a generated `equipment.csv`.
fn biggest_sites(reference: &Path) -> (String, String) {
    let text = std::fs::read_to_string(reference.join("equipment.csv")).unwrap();
    let mut header = text.lines().next().unwrap().split(',');
    let site_column = header.position(|c| c == "site_id").unwrap();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines().skip(1) {
        if let Some(site) = line.split(',').nth(site_column) {
            *counts.entry(site.to_owned()).or_default() += 1;
        }
    }
    let mut sites: Vec<(usize, String)> = counts.into_iter().map(|(s, n)| (n, s)).collect();
    sites.sort();
    let (_, a) = sites.pop().unwrap();
    let (_, b) = sites.pop().unwrap();
    (a, b)
}

fn generate(config: &Path, out: &Path) {
    let status = lux()
        .args(["generate", "--duration", "1s", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn prometheus_scrapes_lux_and_alertmanager_shows_the_incident_active_then_resolved_but_never_the_suppressed_one() {
    let (Some(prometheus_bin), Some(alertmanager_bin)) =
        (tool(&["prometheus"]), tool(&["prometheus-alertmanager", "alertmanager"]))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    if std::env::var_os("LUX_KEEP_TEST_DIR").is_some() {
        // Left on disk to look into (lux.log, the data directory).
        std::mem::forget(dir);
    }
    let (_alertmanager, alertmanager) = start_alertmanager(&alertmanager_bin, root.as_path());
    let metrics_port = free_port();
    let (_prometheus, prometheus) =
        start_prometheus(&prometheus_bin, root.as_path(), &format!("127.0.0.1:{metrics_port}"));

    // The demo network from now on, and its two biggest sites: `hit` has an incident, `covered`
    // the same incident under an intervention that suppresses alarms.
    let now = chrono::Utc::now().timestamp() + 2;
    let start = chrono::DateTime::from_timestamp(now, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let config_path = root.join("lux.toml");
    std::fs::write(&config_path, generator_config(&start, "incidents = []")).unwrap();
    generate(&config_path, &root.join("probe"));
    let (hit, covered) = biggest_sites(&root.join("probe/reference"));
    let incidents: String = [&hit, &covered]
        .iter()
        .map(|site| {
            format!(
                "[[generator.incidents]]\nscope = \"site\"\ntarget = \"{site}\"\nstart_after = \"6s\"\nduration = \"20s\"\nfailure_ratio = 0.9\n"
            )
        })
        .collect();
    let generator = generator_config(&start, "");
    std::fs::write(&config_path, format!("{generator}{incidents}")).unwrap();
    generate(&config_path, &root.join("gen"));
    let reference = root.join("gen/reference");
    let mut interventions = std::fs::read_to_string(reference.join("interventions.csv")).unwrap();
    if !interventions.ends_with('\n') {
        interventions.push('\n');
    }
    let (from, to) = (
        chrono::DateTime::from_timestamp(now - 3600, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        chrono::DateTime::from_timestamp(now + 3600, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    interventions.push_str(&format!("INT-TEST,site,{covered},planned,{from},{to},{from},{to},true,true\n"));
    std::fs::write(reference.join("interventions.csv"), interventions).unwrap();

    let config = format!(
        "{generator}{incidents}\n[reference]\ndir = \"{reference}\"\n\n\
         [transform]\nsubscriber_key = \"alerting-test-subscriber-key-0123456789\"\n\n\
         [alarm]\nidle_timeout = \"3s\"\nout_of_orderness = \"2s\"\n\n\
         [[alarm.rules]]\nname = \"site-failures\"\ngroup_by = [\"site\"]\nthreshold = 25\nwindow = \"10s\"\nslide = \"2s\"\n\n\
         [notify]\nalertmanager = [\"{alertmanager}\"]\nresend_interval = \"2s\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n[run]\nsummary_interval = \"0s\"\n",
        reference = reference.display()
    );
    std::fs::write(&config_path, config).unwrap();
    let data = root.join("data");
    let lux_run = lux()
        .args(["run", "--config"])
        .arg(&config_path)
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("lux.log")).unwrap())
        .spawn()
        .expect("lux run starts");
    eprintln!("lux run: config and log in {}", root.display());
    let _lux_run = Running(lux_run);

    // The incident's alarm is active in Alertmanager, the suppressed one is not.
    wait_for(&format!("an active alert for {hit}"), Duration::from_secs(120), || {
        alerts_of(&alertmanager, &hit).iter().any(|s| s == "active").then_some(())
    });
    // The window counters, per rule and group, as Prometheus scraped them: the incident's site
    // holds at least the threshold while its alarm is raised.
    let query = format!("lux_alarm_window_failures{{rule=\"site-failures\",group=\"site={hit}\"}}");
    wait_for("the incident's window counter at its threshold", Duration::from_secs(60), || {
        promql(&prometheus, &query).filter(|failures| *failures >= 25.0)
    });
    let omitted = promql(&prometheus, "lux_alarm_window_groups_omitted{rule=\"site-failures\"}");
    assert_eq!(omitted, Some(0.0), "4 sites are under the bound");
    let alarms =
        wait_for(&format!("the suppressed alarm of {covered} in the alarms topic"), Duration::from_secs(60), || {
            let alarms = read_topic(&data, "alarms");
            alarms.iter().any(|a| a["group"]["site"] == covered.as_str()).then_some(alarms)
        });
    let covered_alarms: Vec<&serde_json::Value> =
        alarms.iter().filter(|a| a["group"]["site"] == covered.as_str()).collect();
    assert!(
        covered_alarms.iter().all(|a| a["suppressed_by_intervention"] == true && a["intervention_id"] == "INT-TEST"),
        "{covered_alarms:?}"
    );
    // Once the notifier has read past the suppressed alarm's records, Alertmanager has none.
    wait_for("the notifier to read the alarms so far", Duration::from_secs(60), || {
        let read = promql(&prometheus, "lux_stage_records_in_total{stage=\"alarm-notify\"}")?;
        (read >= alarms.len() as f64).then_some(())
    });
    assert!(alerts_of(&alertmanager, &covered).is_empty(), "the suppressed alarm is not sent as active");

    // After the incident, the alert is resolved (gone from the active alerts), while the
    // suppressed site never showed up.
    wait_for(&format!("the alert for {hit} to be resolved"), Duration::from_secs(120), || {
        let states = alerts_of(&alertmanager, &hit);
        assert!(alerts_of(&alertmanager, &covered).is_empty(), "the suppressed alarm is never active");
        states.is_empty().then_some(())
    });
    let alarms = read_topic(&data, "alarms");
    assert!(alarms.iter().any(|a| a["group"]["site"] == hit.as_str() && a["state"] == "cleared"), "{alarms:?}");

    // Once the bounded input went through, the counters Prometheus scraped are what the topics hold.
    wait_for("the generator's 50 s to end", Duration::from_secs(180), || {
        let log = std::fs::read_to_string(root.join("lux.log")).ok()?;
        log.contains("source stopped source=generator").then_some(())
    });
    wait_for("the generated records to go through", Duration::from_secs(120), || {
        let generated = promql(&prometheus, "lux_stage_records_out_total{stage=\"generator\"}")?;
        let raw = read_topic(&data, "raw").len() as f64;
        let transformed = promql(&prometheus, "lux_stage_records_in_total{stage=\"transform\"}")?;
        (generated == raw && transformed == raw).then_some(())
    });
    let enriched = read_topic(&data, "enriched").len() as f64;
    let dead = read_topic(&data, "deadletter").len() as f64;
    wait_for("Prometheus to scrape the transform stage's final count", Duration::from_secs(60), || {
        let out = promql(&prometheus, "lux_stage_records_out_total{stage=\"transform\"}")?;
        // Every enriched record's time from reception to its commit is in the histogram.
        let latencies = promql(&prometheus, "lux_stage_reception_latency_seconds_count{stage=\"transform\"}")?;
        (out == enriched + dead && latencies == enriched).then_some(())
    });
    let p99 = promql(
        &prometheus,
        "histogram_quantile(0.99, lux_stage_reception_latency_seconds_bucket{stage=\"transform\"})",
    );
    assert!(p99.is_some_and(|p99| p99 > 0.0 && p99 <= 60.0), "p99 end-to-end latency in seconds: {p99:?}");
    let alarms = wait_for("the alarm records to be read by the notifier and scraped", Duration::from_secs(60), || {
        let alarms = read_topic(&data, "alarms").len() as f64;
        let read = promql(&prometheus, "sum(lux_stage_records_in_total{stage=\"alarm-notify\"})")?;
        (read == alarms).then_some(alarms)
    });
    assert!(alarms >= 3.0, "raised, updated or cleared records for two sites: {alarms}");
}
