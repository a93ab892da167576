//! The property the demo depends on: with the default configuration, background failures stay
//! under 30 per site and per minute while the incident site exceeds 300 per minute.

use lux_generate::{GeneratorConfig, Network, Traffic};
use std::collections::HashMap;

/// Failures per (site index, minute) over minutes `[from, to)` of simulated time.
fn failures_per_site_minute(
    cfg: &GeneratorConfig,
    from: u64,
    to: u64,
) -> (Network, Traffic, HashMap<(usize, u64), u32>) {
    let start = cfg.start_ms().unwrap();
    let network = Network::generate_at(cfg, start).unwrap();
    let traffic = Traffic::new(&network, cfg, start).unwrap();
    let site_of: HashMap<&str, usize> = network.equipment.iter().map(|e| (e.hostname.as_str(), e.site_index)).collect();
    let mut counts = HashMap::new();
    for s in from * 60..to * 60 {
        for r in traffic.second(s) {
            if r.is_failure() {
                let site = site_of[r.key.as_str()];
                *counts.entry((site, (r.event_time_ms - start) as u64 / 60_000)).or_insert(0u32) += 1;
            }
        }
    }
    drop(site_of);
    (network, traffic, counts)
}

#[test]
fn background_stays_under_30_per_site_minute_and_the_incident_site_exceeds_300() {
    let cfg = GeneratorConfig::default();
    // The incident runs 00:00:10 to 00:10:10: minutes 1..=9 are wholly inside it, 0 and 10
    // partly, 11 is after.
    let (network, traffic, counts) = failures_per_site_minute(&cfg, 0, 12);
    let incident = &traffic.incidents()[0];
    let incident_site = network.sites.iter().position(|s| s.site_id == incident.target).unwrap();
    // The incident hits the site with the most equipment.
    let per_site = network.equipment_per_site();
    assert_eq!(per_site[incident_site], *per_site.iter().max().unwrap());

    let mut busiest_background = 0;
    let mut lowest_incident = u32::MAX;
    for minute in 0..12 {
        for site in 0..network.sites.len() {
            let n = counts.get(&(site, minute)).copied().unwrap_or(0);
            let in_incident = site == incident_site && (1..=9).contains(&minute);
            if in_incident {
                assert!(n > 300, "incident site, minute {minute}: only {n} failures");
                lowest_incident = lowest_incident.min(n);
            } else if !(site == incident_site && (minute == 0 || minute == 10)) {
                busiest_background = busiest_background.max(n);
            }
        }
    }
    eprintln!(
        "busiest background site-minute: {busiest_background} failures; quietest incident minute: {lowest_incident}"
    );
    assert!(busiest_background < 30, "busiest background site-minute has {busiest_background} failures");
    assert!(busiest_background > 0);
    // After the incident the site is back to background levels.
    assert!(counts.get(&(incident_site, 11)).copied().unwrap_or(0) < 30);
}
