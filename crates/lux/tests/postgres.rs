//! `lux run` with its reference data in the real PostgreSQL (127.0.0.1:5432, database `test`):
//! an intervention inserted while the pipeline runs enriches the events after its start within
//! two seconds, without a restart.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn psql(sql: &str) -> String {
    let output = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql runs (the test command installs the PostgreSQL client)");
    assert!(output.status.success(), "psql failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

fn lux(schema: &str) -> Command {
    let mut cmd = common::lux();
    cmd.env("LUX_REFERENCE__SOURCE", "postgres").env("LUX_REFERENCE__POSTGRES__SCHEMA", schema);
    cmd
}

fn ok(cmd: &mut Command) -> String {
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn millis(rfc3339: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap()).unwrap().timestamp_millis()
}

#[test]
fn an_intervention_inserted_while_running_enriches_the_next_events() {
    let schema = Schema(format!("lux_e2e_{}_{}", std::process::id(), now_ms()));
    let dir = tempfile::tempdir().unwrap();
    // The demo referential, loaded into PostgreSQL.
    ok(lux(&schema.0).args(["generate", "--duration", "1s", "--out"]).arg(dir.path().join("gen")));
    ok(lux(&schema.0).args(["reference", "init"]));
    ok(lux(&schema.0).args(["reference", "import", "--dir"]).arg(dir.path().join("gen/reference")));
    let shown = ok(lux(&schema.0).args(["reference", "show"]));
    assert!(shown.contains("equipment"), "{shown}");

    let data = dir.path().join("data");
    let child = lux(&schema.0)
        .args(["run", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let incidents: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("generator/incidents.json")).unwrap()).unwrap();
    let site = incidents[0]["target"].as_str().unwrap().to_owned();
    // The intervention starts at PostgreSQL's `now()`, between these two instants (starting
    // `psql` can take a second on a loaded machine).
    let insert_started = now_ms();
    psql(&format!(
        "INSERT INTO {}.interventions VALUES ('INT-E2E', 'site', '{site}', 'corrective', now(), now() + interval '1 hour', \
         now(), NULL, true, false)",
        schema.0
    ));
    let inserted = now_ms();
    std::thread::sleep(Duration::from_secs(8));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let events = read_enriched(&data);
    let at_site: Vec<&serde_json::Value> = events.iter().filter(|e| e["equipment"]["site"] == site.as_str()).collect();
    let before: Vec<_> = at_site.iter().filter(|e| millis(&e["event_time"]) < insert_started - 1000).collect();
    // After: events of the intervention's time (the join is as of the event's time), received
    // once the change had 2 seconds to reach the running stages.
    let after: Vec<_> = at_site
        .iter()
        .filter(|e| millis(&e["event_time"]) >= inserted && millis(&e["received_at"]) >= inserted + 2000)
        .collect();
    assert!(before.len() > 20 && after.len() > 20, "{} before, {} after", before.len(), after.len());
    assert!(before.iter().all(|e| e["maintenance"]["intervention_id"] != "INT-E2E"), "not before its start");
    for event in &after {
        assert_eq!(event["maintenance"]["intervention_id"], "INT-E2E", "{event}");
        assert_eq!(event["maintenance"]["suppress_alarms"], true);
    }
    let versions: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e["ref"]["version"].as_str().unwrap()).collect();
    assert_eq!(versions.len(), 2, "two reference versions were used, before and after the insert: {versions:?}");
}

fn read_enriched(data: &Path) -> Vec<serde_json::Value> {
    let output = common::lux().args(["topic", "read", "enriched", "--data-dir"]).arg(data).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
