//! The generated network: sizes, naming, join keys, validity histories, interventions, and the
//! seven CSV files of the contract.

use lux_generate::{
    EquipmentStatus, EquipmentType, GenerateError, GeneratorConfig, IncidentConfig, IncidentScope, InterventionScope,
    Network, Technology, CATALOGUE,
};
use std::collections::{HashMap, HashSet};

fn default_network() -> Network {
    Network::generate(&GeneratorConfig::default()).unwrap()
}

#[test]
fn default_network_has_the_expected_population() {
    let net = default_network();
    assert_eq!(net.regions.len(), 8);
    assert_eq!(net.sites.len(), 120);
    let mut by_type: HashMap<EquipmentType, usize> = HashMap::new();
    for e in net.equipment.iter().filter(|e| e.status == EquipmentStatus::InService) {
        *by_type.entry(e.equipment_type).or_default() += 1;
    }
    assert_eq!(by_type[&EquipmentType::Bng], 20);
    assert_eq!(by_type[&EquipmentType::Radius], 10);
    assert_eq!(by_type[&EquipmentType::Olt], 200);
    assert_eq!(by_type[&EquipmentType::Dslam], 300);
    assert_eq!(by_type[&EquipmentType::Cpe], 4470);
    // Plus one decommissioned DSLAM.
    assert_eq!(net.equipment.len(), 5001);
    assert!(net.manufacturers.len() >= 5);
    // Every site has equipment.
    assert!(net.equipment_per_site().iter().all(|&n| n > 0));
}

#[test]
fn names_and_join_keys_are_well_formed_and_unique() {
    let net = default_network();
    let site_codes: HashMap<&str, &str> = net.sites.iter().map(|s| (s.site_id.as_str(), s.code.as_str())).collect();
    let mut hostnames = HashSet::new();
    let mut ips = HashSet::new();
    let mut nas = HashSet::new();
    for e in &net.equipment {
        assert_eq!(e.equipment_id, e.hostname);
        assert!(hostnames.insert(e.hostname.clone()), "duplicate {}", e.hostname);
        let code = site_codes[e.site_id.as_str()];
        let parts: Vec<&str> = e.hostname.split('-').collect();
        assert_eq!(parts.len(), 3, "{}", e.hostname);
        assert_eq!(parts[0], e.equipment_type.as_str());
        assert_eq!(parts[1], code);
        let digits = if e.equipment_type == EquipmentType::Cpe { 5 } else { 2 };
        assert!(parts[2].len() == digits && parts[2].bytes().all(|b| b.is_ascii_digit()), "{}", e.hostname);
        match e.ip_address {
            Some(ip) => {
                assert_eq!(ip.octets()[0], 10);
                assert!(ips.insert(ip), "duplicate {ip}");
            }
            None => assert_eq!(e.equipment_type, EquipmentType::Cpe),
        }
        assert_eq!(e.nas_identifier.is_some(), e.equipment_type == EquipmentType::Bng);
        if let Some(n) = &e.nas_identifier {
            assert!(nas.insert(n.clone()));
            assert_ne!(n, &e.hostname);
        }
        assert_eq!(e.subscriber.is_some(), e.equipment_type == EquipmentType::Cpe);
        let model = net.models.iter().find(|m| m.model_id == e.model_id).unwrap();
        assert_eq!(model.equipment_type, e.equipment_type);
        assert_eq!(model.technology, e.technology);
        // CPE use the technology of the access node they hang from.
        if e.equipment_type == EquipmentType::Cpe {
            let node = &net.equipment[e.uplink.unwrap()];
            assert!(matches!(node.equipment_type, EquipmentType::Olt | EquipmentType::Dslam));
            assert_eq!(node.technology, e.technology);
            assert_eq!(node.site_index, e.site_index);
        }
    }
    assert_eq!(nas.len(), 20);
    let examples = ["olt-par001-01", "cpe-par001-00001", "bng-par001-01"];
    for h in examples {
        assert!(hostnames.contains(h), "{h} missing");
    }
    assert!(net.models.iter().any(|m| m.technology == Technology::Adsl));
}

#[test]
fn a_few_equipment_have_two_validity_rows() {
    let net = default_network();
    assert_eq!(net.history.len(), 3);
    for old in &net.history {
        let current = net.equipment.iter().find(|e| e.equipment_id == old.equipment_id).unwrap();
        // [open, T) then [T, open): contiguous, non-overlapping.
        assert_eq!(old.valid_from, None);
        assert_eq!(current.valid_to, None);
        assert_eq!(old.valid_to, current.valid_from);
        assert!(current.valid_from.unwrap() < net.start_ms);
        assert!(old.model_id != current.model_id || old.status != current.status);
    }
    let swapped =
        net.history.iter().filter(|o| o.status == EquipmentStatus::InService && o.equipment_type == EquipmentType::Cpe);
    assert_eq!(swapped.count(), 2);
    let retired: Vec<_> = net.equipment.iter().filter(|e| e.status == EquipmentStatus::Decommissioned).collect();
    assert_eq!(retired.len(), 1);
}

#[test]
fn interventions_are_past_and_future_and_never_cover_the_incident() {
    let cfg = GeneratorConfig::default();
    let net = Network::generate(&cfg).unwrap();
    let t = net.start_ms;
    assert_eq!(net.interventions.len(), 5);
    assert!(net.interventions.iter().any(|i| i.covers().1 < t), "none in the past");
    assert!(net.interventions.iter().any(|i| i.covers().0 > t), "none in the future");
    assert!(net.interventions.iter().any(|i| i.covers().0 <= t && t < i.covers().1), "none going on");
    assert!(net.interventions.iter().any(|i| i.kind == "corrective"));
    assert!(net.interventions.iter().any(|i| i.scope == InterventionScope::Region));
    let incidents = net.incidents(&cfg, t).unwrap();
    let inc = &incidents[0];
    let site = net.sites.iter().position(|s| s.site_id == inc.target).unwrap();
    let region = &net.sites[site].region_id;
    for i in &net.interventions {
        let (from, to) = i.covers();
        if from < inc.end && inc.start < to {
            match i.scope {
                InterventionScope::Site => assert_ne!(i.target_id, inc.target),
                InterventionScope::Region => assert_ne!(&i.target_id, region),
                InterventionScope::Equipment => {
                    let e = net.equipment.iter().find(|e| e.equipment_id == i.target_id).unwrap();
                    assert_ne!(e.site_index, site);
                }
            }
        }
    }
}

#[test]
fn interventions_avoid_an_incident_placed_during_future_works() {
    // An incident at +7 days, during the region works: they must go to another region or not at all.
    let mut cfg = GeneratorConfig {
        incidents: vec![IncidentConfig {
            start_after: std::time::Duration::from_secs(7 * 86_400),
            duration: std::time::Duration::from_secs(3600),
            ..IncidentConfig::default()
        }],
        ..GeneratorConfig::default()
    };
    let net = Network::generate(&cfg).unwrap();
    let inc = &net.incidents(&cfg, net.start_ms).unwrap()[0];
    let region = &net.sites.iter().find(|s| s.site_id == inc.target).unwrap().region_id;
    let works = net.interventions.iter().find(|i| i.scope == InterventionScope::Region).unwrap();
    assert_ne!(&works.target_id, region);
    // With a single region there is no region the works could cover safely: none are planned.
    cfg.regions = 1;
    let net = Network::generate(&cfg).unwrap();
    assert_eq!(net.interventions.iter().filter(|i| i.scope == InterventionScope::Region).count(), 0);
    assert_eq!(net.interventions.len(), 4);
}

#[test]
fn same_seed_same_network_other_seed_other_network() {
    let a = default_network();
    let b = default_network();
    assert_eq!(a, b);
    let c = Network::generate(&GeneratorConfig { seed: 7, ..GeneratorConfig::default() }).unwrap();
    assert_ne!(a.equipment, c.equipment);
}

#[test]
fn incident_targets_default_and_explicit() {
    let mut cfg = GeneratorConfig {
        incidents: vec![
            IncidentConfig::default(),
            IncidentConfig { scope: IncidentScope::Equipment, ..IncidentConfig::default() },
            IncidentConfig { scope: IncidentScope::Site, target: Some("LYO-001".into()), ..IncidentConfig::default() },
            IncidentConfig {
                scope: IncidentScope::Equipment,
                target: Some("olt-par001-01".into()),
                ..IncidentConfig::default()
            },
        ],
        ..GeneratorConfig::default()
    };
    let net = Network::generate(&cfg).unwrap();
    let incidents = net.incidents(&cfg, net.start_ms).unwrap();
    let per_site = net.equipment_per_site();
    let busiest = net.sites.iter().position(|s| s.site_id == incidents[0].target).unwrap();
    assert_eq!(per_site[busiest], *per_site.iter().max().unwrap());
    assert_eq!(incidents[0].equipment_count, per_site[busiest]);
    let eq = net.equipment.iter().find(|e| e.equipment_id == incidents[1].target).unwrap();
    assert!(matches!(eq.equipment_type, EquipmentType::Bng | EquipmentType::Olt));
    assert_eq!(incidents[2].target, "LYO-001");
    assert_eq!(incidents[3].target, "olt-par001-01");
    assert_eq!(incidents[3].equipment_count, 1);
    assert_eq!(incidents[0].start, net.start_ms + 2_000);
    assert_eq!(incidents[0].end, net.start_ms + 602_000);
    let json = serde_json::to_value(&incidents[0]).unwrap();
    assert_eq!(json["scope"], "site");
    assert_eq!(json["start"], "2026-01-05T00:00:02.000Z");
    assert_eq!(json["end"], "2026-01-05T00:10:02.000Z");

    cfg.incidents = vec![IncidentConfig { target: Some("NOWHERE-1".into()), ..IncidentConfig::default() }];
    match Network::generate(&cfg) {
        Err(GenerateError::UnknownIncidentTarget { index: 0, target, .. }) => assert_eq!(target, "NOWHERE-1"),
        other => panic!("expected UnknownIncidentTarget, got {other:?}"),
    }
}

#[test]
fn invalid_configuration_is_a_typed_error() {
    let cfg = GeneratorConfig { equipment: 3, ..GeneratorConfig::default() };
    match Network::generate(&cfg) {
        Err(GenerateError::InvalidConfig(problems)) => assert_eq!(problems[0].key, "generator.equipment"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    let cfg = GeneratorConfig { start: Some("soon".into()), ..GeneratorConfig::default() };
    assert!(Network::generate(&cfg).is_err());
}

#[test]
fn small_and_odd_networks_generate() {
    for (equipment, sites, regions) in [(50, 1, 1), (50, 50, 13), (200, 7, 3), (20_000, 300, 13)] {
        let cfg = GeneratorConfig { equipment, sites, regions, ..GeneratorConfig::default() };
        let net = Network::generate(&cfg).unwrap();
        let in_service = net.equipment.iter().filter(|e| e.status == EquipmentStatus::InService).count() as u64;
        assert_eq!(in_service, equipment, "{equipment}/{sites}/{regions}");
        assert_eq!(net.sites.len(), sites as usize);
        let ids: HashSet<_> = net.sites.iter().map(|s| &s.site_id).collect();
        assert_eq!(ids.len(), sites as usize);
    }
}

fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r.records().map(|rec| rec.unwrap().iter().map(str::to_owned).collect()).collect();
    (header, rows)
}

#[test]
fn csv_files_follow_the_contract() {
    let net = default_network();
    let dir = tempfile::tempdir().unwrap();
    net.write_csv(dir.path()).unwrap();
    let expect = [
        ("regions.csv", "region_id,name", 8),
        ("sites.csv", "site_id,region_id,name,city", 120),
        ("manufacturers.csv", "manufacturer_id,name,country", net.manufacturers.len()),
        ("models.csv", "model_id,manufacturer_id,name,equipment_type,technology", net.models.len()),
        (
            "equipment.csv",
            "equipment_id,hostname,ip_address,nas_identifier,model_id,site_id,status,valid_from,valid_to",
            5001 + 3,
        ),
        (
            "error_codes.csv",
            "code,source_type,label,category,severity,is_failure,is_drop,customer_impacting",
            CATALOGUE.len(),
        ),
        (
            "interventions.csv",
            "intervention_id,scope,target_id,kind,planned_start,planned_end,actual_start,actual_end,suppress_alarms,exclude_from_kpi",
            5,
        ),
    ];
    for (file, header, rows) in expect {
        let (h, r) = read_csv(&dir.path().join(file));
        assert_eq!(h.join(","), header, "{file}");
        assert_eq!(r.len(), rows, "{file}");
    }
    let (_, equipment) = read_csv(&dir.path().join("equipment.csv"));
    let bng = equipment.iter().find(|r| r[0] == "bng-par001-01").unwrap();
    assert!(bng[2].starts_with("10."));
    assert_eq!(bng[3], "nas-par001-01");
    assert_eq!(bng[6], "in_service");
    assert_eq!((bng[7].as_str(), bng[8].as_str()), ("", ""));
    let retired = equipment.iter().find(|r| r[6] == "decommissioned").unwrap();
    assert_eq!(retired[7], "2025-10-07T00:00:00Z");
    let (_, codes) = read_csv(&dir.path().join("error_codes.csv"));
    let lost_carrier = codes.iter().find(|r| r[0] == "RADIUS-TC-2").unwrap();
    assert_eq!(lost_carrier[1..].join(","), "radius,Lost-Carrier,network,major,true,true,true");
    let (_, interventions) = read_csv(&dir.path().join("interventions.csv"));
    for row in &interventions {
        assert!(["equipment", "site", "region"].contains(&row[1].as_str()));
        assert!(["planned", "corrective"].contains(&row[3].as_str()));
        assert!(row[4].ends_with('Z') && row[5].ends_with('Z'));
        assert!(["true", "false"].contains(&row[8].as_str()));
    }
    let (_, models) = read_csv(&dir.path().join("models.csv"));
    let types: HashSet<&str> = models.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(types, HashSet::from(["bng", "olt", "dslam", "cpe", "radius"]));
}
