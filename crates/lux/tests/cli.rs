//! End-to-end tests of the `lux` binary, run as a user would: real processes, real signals, the
//! embedded log on disk, records counted and compared.

mod common;

use common::lux;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run_ok(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("lux runs");
    assert!(
        output.status.success(),
        "lux failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read_topic(data_dir: &Path, topic: &str) -> Vec<serde_json::Value> {
    let output = run_ok(lux().args(["topic", "read", topic, "--data-dir"]).arg(data_dir));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// Runs `lux run` for `seconds`, then stops it with `signal` (`INT` as Ctrl-C would, or `TERM`
/// as a service manager would); returns its stderr.
fn run_for(data_dir: &Path, seconds: u64, signal: &str) -> String {
    let child = lux()
        .args(["run", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lux run starts");
    std::thread::sleep(Duration::from_secs(seconds));
    let status = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let output = child.wait_with_output().unwrap();
    assert!(Instant::now() < deadline);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "lux run did not stop cleanly: {}\n{stderr}", output.status);
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
    stderr
}

#[test]
fn run_with_defaults_enriches_raises_the_incident_alarm_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr = run_for(&data, 30, "INT");
    assert!(stderr.contains("active alarms"), "the live summary is printed: {stderr}");

    let raw = read_topic(&data, "raw");
    let enriched = read_topic(&data, "enriched");
    assert!(raw.len() > 10_000, "30 s of demo traffic, got {} raw records", raw.len());
    assert!(!enriched.is_empty());
    let dead = read_topic(&data, "deadletter");
    assert!(dead.is_empty(), "the demo traffic decodes: {:?}", dead.first());
    // Every enriched event is joined with the demo referential.
    let known = enriched.iter().filter(|e| e["ref"]["status"] == "ok").count();
    assert!(known * 100 >= enriched.len() * 99, "{known} of {} joined", enriched.len());

    // The injected incident raised an alarm for its target.
    let incidents: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(data.join("generator/incidents.json")).unwrap()).unwrap();
    let target = incidents[0]["target"].as_str().unwrap().to_owned();
    let alarms = read_topic(&data, "alarms");
    assert!(
        alarms.iter().any(|a| a["state"] == "raised" && a["group_key"] == format!("site={target}")),
        "no alarm raised for the incident site {target}: {alarms:?}"
    );
    // No alarm for any other site: the background failure rate stays under the threshold.
    let others: Vec<_> = alarms.iter().filter(|a| a["group_key"] != format!("site={target}")).collect();
    assert!(others.is_empty(), "unexpected alarms: {others:?}");

    // A second run resumes: nothing is processed twice, the generator continues its sequence.
    let first_raw = raw.len();
    let first_enriched: HashSet<String> = enriched.iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(first_enriched.len(), enriched.len(), "no duplicate event ids");
    // Meanwhile `topic read --follow` reads the log as it is written, from another process.
    let follower = lux()
        .args(["topic", "read", "enriched", "--follow", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    run_for(&data, 8, "TERM");
    std::thread::sleep(Duration::from_secs(2));
    Command::new("kill").args(["-INT", &follower.id().to_string()]).status().unwrap();
    let followed = follower.wait_with_output().unwrap();
    assert!(followed.status.success(), "{}", String::from_utf8_lossy(&followed.stderr));
    let raw = read_topic(&data, "raw");
    let enriched = read_topic(&data, "enriched");
    assert_eq!(String::from_utf8_lossy(&followed.stdout).lines().count(), enriched.len(), "--follow saw every record");
    assert!(raw.len() > first_raw, "the second run added traffic");
    let ids: HashSet<String> = enriched.iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), enriched.len(), "no event enriched twice across the restart");
    assert!(first_enriched.is_subset(&ids));
    // The alarm raised in the first run is not raised again.
    let raised: Vec<_> = read_topic(&data, "alarms").into_iter().filter(|a| a["state"] == "raised").collect();
    let ids: HashSet<_> = raised.iter().map(|a| a["alarm_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), raised.len(), "an alarm is raised once");
}

#[test]
fn check_names_the_wrong_type_and_the_unknown_key_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lux.toml");
    std::fs::write(
        &file,
        "# demo\n[log]\npartitions = \"three\"\n\n[alarm]\nout_of_orderness = \"5s\"\nwatermark_delay = \"1s\"\n",
    )
    .unwrap();
    let output = lux().arg("check").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3: log.partitions"), "{stderr}");
    assert!(stderr.contains("line 7: alarm.watermark_delay"), "{stderr}");
    assert!(stderr.contains("unknown key"), "{stderr}");

    std::fs::write(&file, "[log]\npartitions = 6\n").unwrap();
    let output = run_ok(lux().arg("check").arg(&file));
    assert!(String::from_utf8_lossy(&output.stdout).contains("OK"));
}

#[test]
fn generate_with_the_same_seed_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        run_ok(lux().args(["generate", "--seed", "7", "--duration", "20s", "--out"]).arg(out));
    }
    let files = list_files(&a);
    assert!(files.len() >= 9, "reference CSVs, syslog, RADIUS and incidents: {files:?}");
    assert_eq!(files, list_files(&b));
    for (name, content) in &files {
        assert!(!content.is_empty(), "{name} is empty");
    }
    let syslog = String::from_utf8_lossy(&files["syslog.log"]);
    assert!(syslog.lines().count() > 1000);
    let other = dir.path().join("c");
    run_ok(lux().args(["generate", "--seed", "8", "--duration", "20s", "--out"]).arg(&other));
    assert_ne!(list_files(&other)["syslog.log"], files["syslog.log"], "another seed, other traffic");
}

fn list_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn plan_lists_every_stage_and_topic_of_run() {
    let text = String::from_utf8(run_ok(lux().arg("plan")).stdout).unwrap();
    for name in ["generator", "transform", "alarm", "raw", "enriched", "deadletter", "alarms", "site-failures"] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let dot = String::from_utf8(run_ok(lux().args(["plan", "--format", "dot"])).stdout).unwrap();
    assert!(dot.starts_with("digraph lux {"));
    assert!(dot.contains("\"topic:raw\" -> \"stage:transform\""));
    assert!(dot.contains("\"stage:alarm\" -> \"topic:alarms\""));
    let mermaid = String::from_utf8(run_ok(lux().args(["plan", "--format", "mermaid"])).stdout).unwrap();
    assert!(mermaid.contains("t_enriched --> s_alarm"));
    // The prefix applies to every topic.
    let prefixed = String::from_utf8(run_ok(lux().arg("plan").env("LUX_LOG__TOPIC_PREFIX", "prod.")).stdout).unwrap();
    assert!(prefixed.contains("prod.enriched"));
}

#[test]
fn readme_config_reference_is_generated_from_the_code() {
    let reference = String::from_utf8(run_ok(lux().args(["config", "reference"])).stdout).unwrap();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    assert!(
        readme.contains(&reference),
        "README.md's configuration reference is stale: run `cargo run -- config reference --write README.md`"
    );
    for key in ["`log.partitions`", "`generator.seed`", "`alarm.rules[].window`", "`transform.subscriber_key`"] {
        assert!(reference.contains(key), "{key} missing");
    }
    // The defaults printed are a valid configuration.
    let defaults = run_ok(lux().args(["config", "defaults"])).stdout;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.toml"), defaults).unwrap();
    run_ok(lux().arg("check").arg(dir.path().join("d.toml")));
}

#[test]
fn topic_tools_explain_a_missing_log() {
    let dir = tempfile::tempdir().unwrap();
    let output = lux().args(["topic", "list", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("run `lux run` first"));
}

#[test]
fn decode_prints_events_and_dead_letters_of_raw_input() {
    let input = "<131>1 2026-01-05T10:00:00.123Z bng-par001-01 bng - AUTH_REJECT [meta@32473 code=\"PPP-AUTHFAIL\" subscriber=\"sub0004711\"] PPP authentication failed\n\
                 <187>Jan  5 10:00:00 cpe-par001-00042 4711: %DHCP-3-NOOFFER: no DHCPOFFER received on wan0 subscriber=sub0000042\n\
                 this is not syslog\n";
    let mut child = lux()
        .args(["decode", "--format", "syslog", "-"])
        .env("LUX_TRANSFORM__SUBSCRIBER_KEY", "a-test-key-of-16+chars")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["kind"], "auth_reject");
    assert_eq!(lines[0]["equipment_id"], "bng-par001-01");
    assert_eq!(lines[0]["error_code"], "PPP-AUTHFAIL");
    assert_eq!(lines[1]["kind"], "dhcp_failure");
    assert_eq!(lines[1]["error_code"], "DHCP-NOOFFER");
    assert_eq!(lines[2]["schema"], "lux.deadletter.v1");
    assert_eq!(lines[2]["payload"]["text"], "this is not syslog");
    assert!(!stdout.contains("sub0004711") && !stdout.contains("sub0000042"), "subscribers are pseudonymised");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("3 record(s), 2 event(s), 1 dead letter(s)"), "{stderr}");

    // RADIUS packets back to back, as `lux generate --out` writes them, enriched with its referential.
    let dir = tempfile::tempdir().unwrap();
    run_ok(lux().args(["generate", "--seed", "3", "--duration", "5s", "--out"]).arg(dir.path()));
    let output = run_ok(
        lux()
            .args(["decode", "--format", "radius", "--reference"])
            .arg(dir.path().join("reference"))
            .arg(dir.path().join("radius.bin")),
    );
    let events: Vec<serde_json::Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.len() > 100);
    assert!(events.iter().all(|e| e["schema"] == "lux.enriched.v1" && e["ref"]["status"] == "ok"));
    assert!(events.iter().all(|e| e["equipment"]["equipment_type"] == "bng"));
}
