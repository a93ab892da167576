//! The QoE stage end to end: `lux run --until-done` on 150 s of generated traffic, whose
//! indicators per minute and per site and region are compared with what the generator knows
//! it sent (every record, its sender, its error code) and the interventions of its network
//! that exclude events from the KPIs. The half minute at the end is not over: not written.

mod common;

use common::values;
use lux_generate::{GeneratorConfig, InterventionScope, Network, Traffic};
use lux_log::embedded::EmbeddedLog;
use lux_model::QoeIndicator;
use std::collections::{BTreeMap, HashMap};

const SECONDS: u64 = 150;
const MINUTE_MS: i64 = 60_000;

/// (events, failures, excluded events) per (window start, dimension, value).
type Counts = BTreeMap<(i64, String, String), (u64, u64, u64)>;

/// What the generator sent, counted as the QoE stage must count it, for the minutes the
/// watermark closes (those ending at least `qoe.out_of_orderness`, 5 s, before the last event).
fn expected(config: &str) -> Counts {
    let table: toml::Table = toml::from_str(config).expect("TOML");
    let generator: GeneratorConfig = table.get("generator").cloned().expect("[generator]").try_into().expect("valid");
    let start = generator.start_ms().expect("a start");
    let network = Network::generate_at(&generator, start).expect("network");
    let traffic = Traffic::new(&network, &generator, start).expect("traffic");
    let regions: HashMap<&str, &str> =
        network.sites.iter().map(|s| (s.site_id.as_str(), s.region_id.as_str())).collect();
    let by_host: HashMap<&str, (&str, &str, &str)> = network
        .equipment
        .iter()
        .map(|e| {
            let region = regions.get(e.site_id.as_str()).copied().unwrap_or_default();
            (e.hostname.as_str(), (e.equipment_id.as_str(), e.site_id.as_str(), region))
        })
        .collect();
    let excluded = |t: i64, ids: [&str; 3]| {
        network.interventions.iter().any(|i| {
            let (from, to) = i.covers();
            let target = match i.scope {
                InterventionScope::Equipment => ids[0],
                InterventionScope::Site => ids[1],
                InterventionScope::Region => ids[2],
            };
            i.exclude_from_kpi && t >= from && t < to && i.target_id == target
        })
    };
    let mut counts = Counts::new();
    let mut last = i64::MIN;
    for s in 0..SECONDS {
        for record in traffic.second(s) {
            last = last.max(record.event_time_ms);
            let (id, site, region) = by_host[record.key.as_str()];
            let window = record.event_time_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
            let out = excluded(record.event_time_ms, [id, site, region]);
            for (dimension, value) in [("site", site), ("region", region)] {
                let c = counts.entry((window, dimension.to_owned(), value.to_owned())).or_default();
                if out {
                    c.2 += 1;
                } else {
                    c.0 += 1;
                    c.1 += u64::from(record.is_failure());
                }
            }
        }
    }
    counts.retain(|(window, _, _), _| window + MINUTE_MS <= last - 5_000);
    counts
}

#[test]
fn the_indicators_of_generated_traffic_are_what_the_generator_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (config_path, data) = (dir.path().join("lux.toml"), dir.path().join("data"));
    let incidents = "[[generator.incidents]]\nscope = \"site\"\nstart_after = \"70s\"\nduration = \"30s\"\n";
    let config = common::bounded_config(SECONDS, "3s", incidents);
    std::fs::write(&config_path, &config).unwrap();
    let output = common::lux()
        .args(["run", "--until-done", "--config"])
        .arg(&config_path)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("lux runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let log = EmbeddedLog::open_reader(&data).unwrap();
    let indicators: Vec<QoeIndicator> = values(&log, "qoe")
        .into_iter()
        .flatten()
        .map(|v| serde_json::from_value(v).expect("a lux.qoe.v1 record"))
        .collect();
    let mut got = Counts::new();
    let mut per_dimension: BTreeMap<&str, usize> = BTreeMap::new();
    for q in &indicators {
        *per_dimension.entry(q.dimension.as_str()).or_default() += 1;
        if q.dimension == "site" || q.dimension == "region" {
            let previous = got.insert(
                (q.window_start, q.dimension.clone(), q.value.clone()),
                (q.events, q.failures, q.excluded_events),
            );
            assert!(previous.is_none(), "{} {} at {} written twice", q.dimension, q.value, q.window_start);
        }
    }
    let want = expected(&config);
    assert_eq!(got.len(), want.len(), "one record per (minute, site or region) with traffic");
    for (key, counts) in &want {
        assert_eq!(got.get(key), Some(counts), "{key:?}: (events, failures, excluded)");
    }
    let total_excluded: u64 = want.iter().filter(|(k, _)| k.1 == "region").map(|(_, c)| c.2).sum();
    let total_failures: u64 = want.iter().filter(|(k, _)| k.1 == "region").map(|(_, c)| c.1).sum();
    assert!(total_failures > 100, "the site incident's failures: {total_failures}");
    eprintln!("qoe: {} indicators {per_dimension:?}, {total_excluded} events excluded", indicators.len());
    // Every dimension, for the 2 whole minutes of the 2.5 the traffic spans.
    assert_eq!(per_dimension.len(), 5, "{per_dimension:?}");
    let windows: std::collections::BTreeSet<i64> = indicators.iter().map(|q| q.window_start).collect();
    assert_eq!(windows.len(), 2);
}
