//! `lux bench`: a short run measures every step and reports each figure, with every record sent
//! accounted for and the alarms its incidents raise.

use std::process::Command;

#[test]
fn a_short_bench_reports_every_figure_of_each_step() {
    let out = Command::new(env!("CARGO_BIN_EXE_lux"))
        .args(["bench", "--rates", "1000,3000", "--step", "2s", "--json", "-"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run lux bench: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lux bench failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    assert!(report["machine"]["cpus"].as_u64().is_some_and(|n| n >= 1), "{report}");
    let components: Vec<&str> =
        report["components"].as_array().into_iter().flatten().filter_map(|c| c["component"].as_str()).collect();
    assert_eq!(
        components,
        ["decode rfc5424", "decode rfc3164", "decode radius", "enrich", "transform", "embedded log", "alarm windows"],
        "{report}"
    );
    for c in report["components"].as_array().into_iter().flatten() {
        assert!(c["per_core_per_s"].as_f64().is_some_and(|r| r > 0.0), "{c}");
        assert!(c["records"].as_u64().is_some_and(|n| n > 0), "{c}");
        assert!(c["wall_per_s"].as_f64().is_some_and(|r| r > 0.0), "{c}");
    }
    let steps = report["steps"].as_array().unwrap_or_else(|| panic!("no steps: {report}"));
    let modes: Vec<(&str, Option<u64>)> =
        steps.iter().map(|s| (s["mode"].as_str().unwrap_or("?"), s["offered_per_s"].as_u64())).collect();
    assert_eq!(modes, [("paced", Some(1000)), ("paced", Some(3000)), ("max", None)]);
    for step in steps {
        // Everything sent in a step went through the transform stage before the next one.
        assert_eq!(step["processed"], step["sent"], "{step}");
        assert!(step["sent"].as_u64().is_some_and(|n| n > 0), "{step}");
        for figure in ["throughput_per_s", "cpu_s_per_million", "peak_memory_mib", "drain_s"] {
            assert!(step[figure].as_f64().is_some_and(|v| v >= 0.0), "{figure}: {step}");
        }
        for figure in ["latency_p50_s", "latency_p99_s", "latency_max_s"] {
            assert!(step[figure].as_f64().is_some_and(|v| v > 0.0 && v <= 60.0), "{figure}: {step}");
        }
        assert!(step["latency_p50_s"].as_f64() <= step["latency_p99_s"].as_f64(), "{step}");
        // The alarm latency is there for every alarm raised, and only then.
        let raised = step["alarms_raised"].as_u64().unwrap_or_else(|| panic!("alarms_raised: {step}"));
        for figure in ["alarm_latency_p50_s", "alarm_latency_p99_s", "alarm_latency_max_s"] {
            if raised > 0 {
                assert!(step[figure].as_f64().is_some_and(|v| v > 0.0 && v <= 60.0), "{figure}: {step}");
            } else {
                assert!(step[figure].is_null(), "{figure} without an alarm: {step}");
            }
        }
    }
    // The traffic's incidents raise alarms (in this short run, mostly at the maximum rate: the
    // paced steps send a fraction of a second of event time).
    let raised: u64 = steps.iter().filter_map(|s| s["alarms_raised"].as_u64()).sum();
    assert!(raised >= 2, "the bench's incidents should raise alarms: {report}");
    let paced = &steps[0];
    assert_eq!(paced["sent"], 2000, "2 s at 1,000 events/s");
}

/// `lux bench --kafka` on the tansu broker it starts: every record transformed in committed
/// transactions, with the CPU of LUX and of the broker reported.
#[test]
fn the_kafka_bench_transforms_every_record_and_reports_both_cpus() {
    // The tansu binary of ./scripts/test, as the Kafka tests use.
    if let Err(problem) = lux_log::kafka::testing::tansu_binary() {
        panic!("{problem}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_lux"))
        .args(["bench", "--kafka", "--records", "30000", "--commit-records", "10000", "--json", "-"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run lux bench --kafka: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lux bench --kafka failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    assert_eq!(report["processed"], 30_000, "{report}");
    assert_eq!(report["written"], 30_000, "{report}");
    assert_eq!(report["commit_max_records"], 10_000, "{report}");
    // At least 3 transactions of at most 10,000 records each.
    assert!(report["commits"].as_u64().is_some_and(|n| n >= 3), "{report}");
    assert_eq!(report["aborts"], 0, "{report}");
    for figure in ["events_per_s", "lux_cpu_s", "broker_cpu_s", "commit_mean_ms", "seconds"] {
        assert!(report[figure].as_f64().is_some_and(|v| v > 0.0), "{figure}: {report}");
    }
}
