//! The CSV reference loader and the as-of join: a good fixture joined field by field, and bad
//! fixtures whose every problem is reported with its file, line and column.

mod common;

use common::*;
use lux_model::{EnrichedEvent, EquipmentKey, Outcome, ReferenceStatus};
use lux_reference::{ReferenceConfig, ReferenceProblem, Snapshot, TableCounts};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[test]
fn good_fixture_loads_with_counts_and_a_content_version() {
    let s = load_good();
    assert_eq!(
        s.counts(),
        TableCounts {
            regions: 2,
            sites: 2,
            manufacturers: 2,
            models: 2,
            equipment: 5,
            error_codes: 3,
            interventions: 3
        }
    );
    assert!(s.version().starts_with("ref-") && s.version().len() == 16, "{}", s.version());
    assert_eq!(load_good().version(), s.version(), "same content, same version");
    let mut files = good_files();
    files.insert("regions.csv", format!("{REGIONS}NOR,Normandie\n"));
    let other = Snapshot::load_csv_dir(Fixture::new(&files).path()).unwrap_or_else(|p| panic!("{}", display(&p)));
    assert_ne!(other.version(), s.version());
    assert_eq!(other.counts().regions, 3);
}

#[test]
fn join_fills_every_field() {
    let s = load_good();
    let e = s.enrich(event(
        EquipmentKey::Hostname,
        "bng-par001-01",
        "2026-01-05T10:00:00Z",
        Some("PPP-AUTHFAIL"),
        Outcome::Failure,
    ));
    assert_eq!(e.schema, lux_model::schema::ENRICHED);
    let eq = e.equipment.clone().unwrap_or_else(|| panic!("no equipment"));
    assert_eq!(eq.equipment_id, "BNG-PAR-1");
    assert_eq!(eq.equipment_type, "bng");
    assert_eq!(eq.model, "7750 SR");
    assert_eq!(eq.manufacturer, "Nokia");
    assert_eq!(eq.site, "PAR-001");
    assert_eq!(eq.region, "IDF");
    assert_eq!(eq.technology, "core");
    let err = e.error.clone().unwrap_or_else(|| panic!("no error info"));
    assert_eq!(
        (err.code.as_str(), err.label.as_str(), err.category.as_str(), err.severity.as_str()),
        ("PPP-AUTHFAIL", "PPP authentication failed", "customer", "minor")
    );
    assert_eq!((err.is_failure, err.is_drop, err.customer_impacting), (true, false, true));
    let m = e.maintenance.clone().unwrap_or_else(|| panic!("no maintenance"));
    assert_eq!((m.intervention_id.as_str(), m.kind.as_str(), m.scope.as_str()), ("INT-EQ", "planned", "equipment"));
    assert_eq!((m.suppress_alarms, m.exclude_from_kpi), (true, false));
    assert_eq!(e.reference.status, ReferenceStatus::Ok);
    assert_eq!(&*e.reference.version, s.version());
    assert!(e.is_failure);
    assert_eq!(e.equipment_key(), "BNG-PAR-1");
    let json = serde_json::to_value(&e).unwrap_or_default();
    assert_eq!(json["ref"]["status"], "ok");
    assert_eq!(json["equipment"]["site"], "PAR-001");
    assert_eq!(json["equipment_id"], "bng-par001-01");
}

#[test]
fn every_equipment_key_kind_finds_its_equipment() {
    let s = load_good();
    let at = "2026-01-05T06:00:00Z";
    let found =
        |key, id: &str| s.enrich(event(key, id, at, None, Outcome::Info)).equipment.map(|e| e.equipment_id.clone());
    assert_eq!(found(EquipmentKey::Hostname, "bng-par001-01").as_deref(), Some("BNG-PAR-1"));
    assert_eq!(
        found(EquipmentKey::Hostname, "OLT-LYO-1").as_deref(),
        Some("OLT-LYO-1"),
        "hostname falls back to the id"
    );
    assert_eq!(found(EquipmentKey::NasIdentifier, "nas-par-1").as_deref(), Some("BNG-PAR-1"));
    assert_eq!(found(EquipmentKey::NasIdentifier, "bng-par001-01"), None, "a hostname is not a NAS-Identifier");
    assert_eq!(found(EquipmentKey::NasIpAddress, "10.0.0.1").as_deref(), Some("BNG-PAR-1"));
    assert_eq!(
        found(EquipmentKey::IpAddress, "2001:db8:0:0::1").as_deref(),
        Some("OLT-LYO-1"),
        "IPs compare canonically"
    );
    assert_eq!(found(EquipmentKey::Field, "OLT-LYO-1").as_deref(), Some("OLT-LYO-1"));
    assert_eq!(found(EquipmentKey::Field, "olt-lyo002-01"), None, "field is the equipment id");
}

#[test]
fn validity_is_as_of_the_event_time() {
    let s = load_good();
    let at = |id: &str, t: &str| s.enrich(event(EquipmentKey::Hostname, id, t, None, Outcome::Info)).equipment;
    assert_eq!(
        at("old-host", "2025-03-01T00:00:00Z").map(|e| (e.equipment_id.clone(), e.model.clone())),
        Some(("OLD-1".into(), "7750 SR".into()))
    );
    assert_eq!(
        at("old-host", "2025-06-01T00:00:00Z").map(|e| (e.equipment_id.clone(), e.model.clone())),
        Some(("NEW-1".into(), "MA5800-X7".into()))
    );
    assert_eq!(at("old-host", "2024-12-31T23:59:59Z"), None, "before any validity");
    // BNG-PAR-1 moved from PAR-001 (IDF) to LYO-002 (ARA) on January 10th.
    let before = at("bng-par001-01", "2026-01-09T23:59:59Z").map(|e| (e.site.clone(), e.region.clone()));
    let after = at("bng-par001-01", "2026-01-10T00:00:00Z").map(|e| (e.site.clone(), e.region.clone()));
    assert_eq!(before, Some(("PAR-001".into(), "IDF".into())));
    assert_eq!(after, Some(("LYO-002".into(), "ARA".into())));
}

#[test]
fn long_and_near_miss_keys_and_validity_bounds() {
    // Keys of up to 23 bytes are stored inline, longer ones apart: both must be found, and
    // neither a prefix, an extension nor a one-byte change of them.
    let long_host = "bng-par001-01.core.paris.example-operator.net";
    let long_nas = "nas-par001-01.radius.example-operator.net";
    let long_code = "VENDOR-ACME-SUBSCRIBER-SESSION-LIMIT";
    let mut files = good_files();
    files.insert(
        "equipment.csv",
        format!(
            "{EQUIPMENT}LONG-1,{long_host},10.9.9.9,{long_nas},7750,PAR-001,in_service,,\n\
             EXACT-23,exactly-23-bytes-host-x,,,7750,PAR-001,in_service,,\n"
        ),
    );
    files.insert(
        "error_codes.csv",
        format!("{ERROR_CODES}{long_code},syslog,Session limit,customer,minor,true,false,true\n"),
    );
    let s = Snapshot::load_csv_dir(Fixture::new(&files).path()).unwrap_or_else(|p| panic!("{}", display(&p)));
    let at = "2026-01-05T06:00:00Z";
    let found =
        |key, id: &str| s.enrich(event(key, id, at, None, Outcome::Info)).equipment.map(|e| e.equipment_id.clone());
    assert_eq!(found(EquipmentKey::Hostname, long_host).as_deref(), Some("LONG-1"));
    assert_eq!(found(EquipmentKey::NasIdentifier, long_nas).as_deref(), Some("LONG-1"));
    assert_eq!(found(EquipmentKey::Hostname, "exactly-23-bytes-host-x").as_deref(), Some("EXACT-23"));
    let near =
        [&long_host[..long_host.len() - 1], "bng-par001-01.core.paris.example-operator.nex", "exactly-23-bytes-host-"];
    for id in near.into_iter().chain(["exactly-23-bytes-host-xy", "bng-par001-0", "bng-par001-011", ""]) {
        assert_eq!(found(EquipmentKey::Hostname, id), None, "{id:?}");
    }
    let code = |c: &str| s.enrich(event(EquipmentKey::Hostname, long_host, at, Some(c), Outcome::Info));
    assert_eq!(code(long_code).error.map(|e| e.label.clone()).as_deref(), Some("Session limit"));
    let unknown = code(&long_code[1..]);
    assert_eq!((unknown.error, unknown.reference.status), (None, ReferenceStatus::UnknownErrorCode));
    // Validity is [valid_from, valid_to): BNG-PAR-1 moved on January 10th at midnight.
    let site = |t: &str| {
        s.enrich(event(EquipmentKey::NasIdentifier, "nas-par-1", t, None, Outcome::Info))
            .equipment
            .map(|e| e.site.clone())
    };
    assert_eq!(site("2026-01-09T23:59:59.999Z").as_deref(), Some("PAR-001"));
    assert_eq!(site("2026-01-10T00:00:00.000Z").as_deref(), Some("LYO-002"));
}

#[test]
fn interventions_by_equipment_site_and_region() {
    let s = load_good();
    let m = |t: &str| {
        s.enrich(event(EquipmentKey::Hostname, "bng-par001-01", t, None, Outcome::Info))
            .maintenance
            .map(|m| m.intervention_id.clone())
    };
    assert_eq!(m("2026-01-05T08:59:59Z"), None, "the site one is planned from 08:00 but actually started at 10:30");
    assert_eq!(m("2026-01-05T09:00:00Z").as_deref(), Some("INT-EQ"));
    assert_eq!(m("2026-01-05T10:45:00Z").as_deref(), Some("INT-EQ"), "both cover: the first started wins");
    assert_eq!(m("2026-01-05T11:30:00Z").as_deref(), Some("INT-SITE"), "through the site");
    assert_eq!(m("2026-01-05T12:00:00Z"), None, "end is exclusive");
    assert_eq!(m("2026-01-20T05:00:00Z").as_deref(), Some("INT-REG"), "through the region (after the move to ARA)");
    let olt = s.enrich(event(EquipmentKey::Hostname, "olt-lyo002-01", "2026-01-20T05:00:00Z", None, Outcome::Info));
    let info = olt.maintenance.unwrap_or_else(|| panic!("no maintenance"));
    assert_eq!((info.scope.as_str(), info.suppress_alarms, info.exclude_from_kpi), ("region", true, true));
}

#[test]
fn unknown_equipment_and_codes_are_kept_and_flagged() {
    let s = load_good();
    let t = "2026-01-05T10:00:00Z";
    let e = s.enrich(event(EquipmentKey::Hostname, "nope", t, None, Outcome::Failure));
    assert_eq!(
        (e.reference.status, e.equipment.is_none(), e.maintenance.is_none()),
        (ReferenceStatus::UnknownEquipment, true, true)
    );
    assert!(e.is_failure, "no code: the outcome decides");
    let e = s.enrich(event(EquipmentKey::Hostname, "bng-par001-01", t, Some("XYZ-1"), Outcome::Info));
    assert_eq!((e.reference.status, e.error.is_none(), e.is_failure), (ReferenceStatus::UnknownErrorCode, true, false));
    let e = s.enrich(event(EquipmentKey::Hostname, "nope", t, Some("XYZ-1"), Outcome::Failure));
    assert_eq!((e.reference.status, e.is_failure), (ReferenceStatus::UnknownEquipmentAndErrorCode, true));
    // The catalogue overrides the outcome.
    let e = s.enrich(event(EquipmentKey::NasIdentifier, "nas-par-1", t, Some("RADIUS-TC-2"), Outcome::Info));
    assert_eq!((e.reference.status, e.is_failure), (ReferenceStatus::Ok, true));
    let e = s.enrich(event(EquipmentKey::NasIdentifier, "nas-par-1", t, Some("RADIUS-TC-1"), Outcome::Failure));
    assert!(!e.is_failure);
    let empty = Snapshot::empty().enrich(event(EquipmentKey::Hostname, "bng-par001-01", t, None, Outcome::Success));
    assert_eq!((empty.reference.status, &*empty.reference.version), (ReferenceStatus::UnknownEquipment, "empty"));
}

fn problems_of(files: &BTreeMap<&'static str, String>) -> Vec<ReferenceProblem> {
    match Snapshot::load_csv_dir(Fixture::new(files).path()) {
        Ok(_) => panic!("loaded a bad fixture"),
        Err(p) => p,
    }
}

fn has(problems: &[ReferenceProblem], file: &str, line: Option<u64>, column: Option<&str>, words: &str) -> bool {
    problems
        .iter()
        .any(|p| p.file == file && p.line == line && p.column.as_deref() == column && p.message.contains(words))
}

#[test]
fn missing_file_and_wrong_header() {
    let mut files = good_files();
    files.remove("error_codes.csv");
    files.insert("sites.csv", SITES.replacen("region_id", "region", 1));
    let p = problems_of(&files);
    assert!(has(&p, "error_codes.csv", None, None, "missing file"), "{}", display(&p));
    assert!(
        has(
            &p,
            "sites.csv",
            Some(1),
            None,
            "wrong header: expected `site_id,region_id,name,city`, found `site_id,region,name,city`"
        ),
        "{}",
        display(&p)
    );
    // Without sites, the equipment's site foreign keys fail too: reported, not hidden.
    assert!(has(&p, "equipment.csv", Some(2), Some("site_id"), "unknown site \"PAR-001\""), "{}", display(&p));
    let empty = {
        let mut f = good_files();
        f.insert("regions.csv", String::new());
        problems_of(&f)
    };
    assert!(has(&empty, "regions.csv", None, None, "empty file"), "{}", display(&empty));
}

#[test]
fn every_problem_of_a_bad_fixture_is_reported_with_file_line_and_column() {
    let mut files = good_files();
    files.insert("regions.csv", format!("{REGIONS}IDF,Duplicate\n"));
    files.insert("sites.csv", format!("{SITES}MRS-003,PACA,Marseille,Marseille\n"));
    files.insert("models.csv", format!("{MODELS}X1,nokia,X,router,5g\nX2,acme,X2,cpe,vdsl\n"));
    files.insert(
        "equipment.csv",
        format!(
            "{EQUIPMENT}\
BNG-PAR-1,bng-par001-01,10.0.0.1,nas-par-1,7750,PAR-001,in_service,2026-01-01T00:00:00Z,2026-01-02T00:00:00Z
CPE-1,bng-par001-01,10.9.9.9,,7750,PAR-001,in_service,,
CPE-2,cpe-2,10.0.0.1,nas-par-1,7750,PAR-001,spare,2026-02-01T00:00:00Z,
CPE-3,cpe-3,not-an-ip,,NOPE,PAR-001,broken,yesterday,2026-13-01T00:00:00Z
CPE-4,cpe-4,,,7750,PAR-001,in_service,2026-01-02T00:00:00Z,2026-01-01T00:00:00Z
CPE-5,cpe-5,,
"
        ),
    );
    files.insert("error_codes.csv", format!("{ERROR_CODES}X-1,snmp,x,network,fatal,yes,false,false\nPPP-AUTHFAIL,syslog,dup,customer,minor,true,false,true\n"));
    files.insert(
        "interventions.csv",
        format!("{INTERVENTIONS}INT-X,site,NOWHERE,planned,2026-01-01T00:00:00Z,2026-01-02T00:00:00Z,,,true,false\nINT-Y,rack,R1,urgent,,,,,maybe,false\nINT-Z,equipment,CPE-4,planned,2026-01-02T00:00:00Z,2026-01-01T00:00:00Z,,,true,false\n"),
    );
    let p = problems_of(&files);
    let text = display(&p);
    let expected: &[(&str, u64, Option<&str>, &str)] = &[
        ("regions.csv", 4, Some("region_id"), "duplicate region_id \"IDF\" (first on line 2)"),
        ("sites.csv", 4, Some("region_id"), "unknown region \"PACA\""),
        ("models.csv", 4, Some("equipment_type"), "\"router\" is not one of bng, olt, dslam, cpe, radius"),
        ("models.csv", 4, Some("technology"), "\"5g\""),
        ("models.csv", 5, Some("manufacturer_id"), "unknown manufacturer \"acme\""),
        (
            "equipment.csv",
            7,
            Some("valid_from"),
            "equipment \"BNG-PAR-1\" is valid twice at the same time: its interval overlaps line 2",
        ),
        (
            "equipment.csv",
            8,
            Some("hostname"),
            "hostname \"bng-par001-01\" is also the hostname of equipment \"BNG-PAR-1\"",
        ),
        (
            "equipment.csv",
            7,
            Some("hostname"),
            "hostname \"bng-par001-01\" is also the hostname of equipment \"CPE-1\" (line 8)",
        ),
        (
            "equipment.csv",
            3,
            Some("hostname"),
            "hostname \"bng-par001-01\" is also the hostname of equipment \"CPE-1\" (line 8)",
        ),
        ("equipment.csv", 9, Some("ip_address"), "ip_address \"10.0.0.1\" is also"),
        ("equipment.csv", 9, Some("nas_identifier"), "nas_identifier \"nas-par-1\" is also"),
        ("equipment.csv", 10, Some("ip_address"), "\"not-an-ip\" is not an IP address"),
        ("equipment.csv", 10, Some("status"), "\"broken\" is not one of in_service, decommissioned, spare"),
        ("equipment.csv", 10, Some("valid_from"), "\"yesterday\" is not an RFC 3339 time"),
        ("equipment.csv", 10, Some("valid_to"), "\"2026-13-01T00:00:00Z\" is not an RFC 3339 time"),
        ("equipment.csv", 11, Some("valid_to"), "must be after valid_from"),
        ("error_codes.csv", 5, Some("source_type"), "\"snmp\""),
        ("error_codes.csv", 5, Some("severity"), "\"fatal\""),
        ("error_codes.csv", 5, Some("is_failure"), "\"yes\" is not a boolean"),
        ("error_codes.csv", 6, Some("code"), "duplicate code \"PPP-AUTHFAIL\" (first on line 2)"),
        ("interventions.csv", 5, Some("target_id"), "unknown site \"NOWHERE\""),
        ("interventions.csv", 6, Some("scope"), "\"rack\""),
        ("interventions.csv", 6, Some("kind"), "\"urgent\""),
        ("interventions.csv", 6, Some("suppress_alarms"), "\"maybe\""),
        ("interventions.csv", 7, Some("planned_end"), "must be after planned_start"),
    ];
    for (file, line, column, words) in expected {
        assert!(has(&p, file, Some(*line), *column, words), "missing {file}:{line} {column:?} {words}\nall:\n{text}");
    }
    assert!(has(&p, "equipment.csv", Some(12), None, "4 fields, expected 9"), "{text}");
    assert_eq!(p.len(), expected.len() + 1, "no other problem:\n{text}");
    // Reported in file order, then line order.
    let order: Vec<(usize, Option<u64>)> =
        p.iter().map(|p| (lux_reference::FILES.iter().position(|(f, _)| *f == p.file).unwrap_or(99), p.line)).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    let one =
        p.iter().find(|p| p.file == "equipment.csv" && p.line == Some(10) && p.column.as_deref() == Some("valid_to"));
    assert_eq!(
        one.map(|p| p.to_string()).unwrap_or_default().split(" (").next(),
        Some("equipment.csv:10: column valid_to: \"2026-13-01T00:00:00Z\" is not an RFC 3339 time like 2026-01-05T10:00:00Z")
    );
}

#[test]
fn quoted_fields_bom_and_crlf_are_accepted() {
    let mut files = good_files();
    files.insert(
        "regions.csv",
        format!("\u{feff}{}", REGIONS.replace('\n', "\r\n").replace("Ile-de-France", "\"Ile-de-France, \"\"IDF\"\"\"")),
    );
    let s = Snapshot::load_csv_dir(Fixture::new(&files).path()).unwrap_or_else(|p| panic!("{}", display(&p)));
    assert_eq!(s.counts().regions, 2);
}

#[test]
fn config_validation() {
    assert!(ReferenceConfig::default().validate("reference").is_empty());
    assert!(ReferenceConfig { dir: Some(PathBuf::from("/some/where")), ..Default::default() }
        .validate("reference")
        .is_empty());
    let p = ReferenceConfig { dir: Some(PathBuf::new()), ..Default::default() }.validate("reference");
    assert_eq!(p.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["reference.dir"]);
    let file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    let p = ReferenceConfig { dir: Some(file.path().to_path_buf()), ..Default::default() }.validate("reference");
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("not a directory"));
    let parsed: ReferenceConfig = serde_json::from_str(r#"{"dir": "/data/ref"}"#).unwrap_or_default();
    assert_eq!(parsed.dir, Some(PathBuf::from("/data/ref")));
    assert!(serde_json::from_str::<ReferenceConfig>(r#"{"directory": "/x"}"#).is_err(), "unknown keys are refused");
}

#[test]
fn the_record_serialises_as_the_enriched_event() {
    let s = load_good();
    let (mut joined_equipment, mut with_maintenance, mut cases) = (0, 0, 0);
    let keys = [
        EquipmentKey::Hostname,
        EquipmentKey::NasIdentifier,
        EquipmentKey::NasIpAddress,
        EquipmentKey::IpAddress,
        EquipmentKey::Field,
    ];
    let ids = ["bng-par001-01", "BNG-PAR-1", "OLT-LYO-1", "old-host", "nas-par-1", "10.0.0.1", "2001:DB8::1", "nope"];
    let times = ["2025-03-01T00:00:00Z", "2026-01-05T10:45:00Z", "2026-01-12T00:00:00Z", "2026-01-20T12:00:00Z"];
    for key in keys {
        for id in ids {
            for at in times {
                for code in [None, Some("PPP-AUTHFAIL"), Some("XYZ-1")] {
                    let e = event(key, id, at, code, Outcome::Failure);
                    let joined = s.join(&e);
                    let owned = s.enrich(e.clone());
                    let record = serde_json::to_string(&joined.record(&e)).unwrap_or_else(|x| panic!("{x}"));
                    assert_eq!(record, serde_json::to_string(&owned).unwrap_or_default(), "{key:?} {id} {at} {code:?}");
                    let mut written = Vec::new();
                    joined.record(&e).write_json(&mut written);
                    assert_eq!(String::from_utf8_lossy(&written), record, "write_json: {key:?} {id} {at} {code:?}");
                    let back: EnrichedEvent = serde_json::from_str(&record).unwrap_or_else(|x| panic!("{x}"));
                    assert_eq!(back, owned);
                    assert_eq!(joined.partition_key(&e), owned.equipment_key());
                    assert_eq!(joined.status(), owned.reference.status);
                    assert_eq!(joined.is_failure(), owned.is_failure);
                    joined_equipment += usize::from(joined.equipment().is_some());
                    with_maintenance += usize::from(joined.maintenance().is_some());
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 5 * 8 * 4 * 3);
    assert!(
        joined_equipment > 40 && with_maintenance > 5,
        "{joined_equipment} joined, {with_maintenance} in maintenance"
    );
}

/// Interventions on equipment, sites and regions that overlap in every way: the join picks,
/// for every equipment and hour, the one a plain scan of the table picks (covering the
/// equipment at that time, directly or through its site or region; the first to start, then
/// the smallest id).
#[test]
fn overlapping_interventions_match_a_plain_scan() {
    let mut files = good_files();
    let mut csv = String::from(
        "intervention_id,scope,target_id,kind,planned_start,planned_end,actual_start,actual_end,suppress_alarms,exclude_from_kpi\n",
    );
    // (id, scope, target, start hour, end hour) on 2026-01-05; `None`: open.
    type Row<'a> = (String, &'a str, &'a str, Option<u32>, Option<u32>);
    let mut table: Vec<Row> = Vec::new();
    let targets = [
        ("equipment", "BNG-PAR-1"),
        ("equipment", "OLT-LYO-1"),
        ("site", "PAR-001"),
        ("site", "LYO-002"),
        ("region", "IDF"),
        ("region", "ARA"),
    ];
    for k in 0..60u32 {
        let (scope, target) = targets[(k * 7 % 6) as usize];
        let start = (k % 9 != 0).then_some(k * 5 % 20);
        let end = (k % 11 != 0).then(|| start.unwrap_or(0) + 1 + k % 4);
        let hour = |h: Option<u32>| h.map(|h| format!("2026-01-05T{h:02}:00:00Z")).unwrap_or_default();
        // Ids not in start order, so that the tie-break by id is exercised.
        let id = format!("I{:02}", (k * 37) % 60);
        csv.push_str(&format!("{id},{scope},{target},planned,{},{},,,true,false\n", hour(start), hour(end)));
        table.push((id, scope, target, start, end));
    }
    files.insert("interventions.csv", csv);
    let s = Snapshot::load_csv_dir(Fixture::new(&files).path()).unwrap_or_else(|p| panic!("{}", display(&p)));
    // (equipment id, hostname, site, region) on January 5th.
    let equipment =
        [("BNG-PAR-1", "bng-par001-01", "PAR-001", "IDF"), ("OLT-LYO-1", "olt-lyo002-01", "LYO-002", "ARA")];
    let mut covered = 0;
    for (id, host, site, region) in equipment {
        for minute in (0..26 * 60).step_by(10) {
            let at = format!("2026-01-05T{:02}:{:02}:00Z", minute / 60 % 24, minute % 60);
            let at = if minute >= 24 * 60 { "2026-01-06T01:00:00Z".to_owned() } else { at };
            let t = ms(&at);
            let h = |x: u32| ms(&format!("2026-01-05T{x:02}:00:00Z"));
            let expected = table
                .iter()
                .filter(|(_, scope, target, ..)| match *scope {
                    "equipment" => *target == id,
                    "site" => *target == site,
                    _ => *target == region,
                })
                .filter(|(.., start, end)| start.is_none_or(|s| h(s) <= t) && end.is_none_or(|e| t < h(e)))
                .min_by_key(|(i, _, _, start, _)| (start.map_or(i64::MIN, h), i.clone()))
                .map(|(i, ..)| i.clone());
            let e = event(EquipmentKey::Hostname, host, &at, None, Outcome::Info);
            let got = s.join(&e).maintenance().map(|m| m.intervention_id.clone());
            assert_eq!(got, expected, "{id} at {at}");
            covered += usize::from(expected.is_some());
        }
    }
    assert!(covered > 100, "{covered}");
}
