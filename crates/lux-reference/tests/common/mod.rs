//! Shared by the integration tests: the good CSV fixture (two regions, a BNG that moves site on
//! January 10th, interventions per equipment, site and region), and helpers.
#![allow(dead_code)]

use lux_model::{EquipmentKey, Event, EventKind, Format, Outcome};
use lux_reference::{ReferenceProblem, Snapshot};
use std::collections::BTreeMap;
use std::path::Path;

pub const REGIONS: &str = "region_id,name
IDF,Ile-de-France
ARA,Auvergne-Rhone-Alpes
";
pub const SITES: &str = "site_id,region_id,name,city
PAR-001,IDF,Paris 1,Paris
LYO-002,ARA,\"Lyon, Part-Dieu\",Lyon
";
pub const MANUFACTURERS: &str = "manufacturer_id,name,country
nokia,Nokia,FI
huawei,Huawei,CN
";
pub const MODELS: &str = "model_id,manufacturer_id,name,equipment_type,technology
7750,nokia,7750 SR,bng,core
MA5800,huawei,MA5800-X7,olt,ftth
";
pub const EQUIPMENT: &str =
    "equipment_id,hostname,ip_address,nas_identifier,model_id,site_id,status,valid_from,valid_to
BNG-PAR-1,bng-par001-01,10.0.0.1,nas-par-1,7750,PAR-001,in_service,,2026-01-10T00:00:00Z
BNG-PAR-1,bng-par001-01,10.0.0.1,nas-par-1,7750,LYO-002,in_service,2026-01-10T00:00:00Z,
OLT-LYO-1,olt-lyo002-01,2001:DB8::1,,MA5800,LYO-002,in_service,,
OLD-1,old-host,,,7750,PAR-001,decommissioned,2025-01-01T00:00:00Z,2025-06-01T00:00:00Z
NEW-1,old-host,,,MA5800,LYO-002,in_service,2025-06-01T00:00:00Z,
";
pub const ERROR_CODES: &str = "code,source_type,label,category,severity,is_failure,is_drop,customer_impacting
PPP-AUTHFAIL,syslog,PPP authentication failed,customer,minor,true,false,true
RADIUS-TC-1,radius,User-Request,normal,info,false,false,false
RADIUS-TC-2,radius,Lost-Carrier,network,major,true,true,true
";
pub const INTERVENTIONS: &str = "intervention_id,scope,target_id,kind,planned_start,planned_end,actual_start,actual_end,suppress_alarms,exclude_from_kpi
INT-EQ,equipment,BNG-PAR-1,planned,2026-01-05T09:00:00Z,2026-01-05T11:00:00Z,,,true,false
INT-SITE,site,PAR-001,corrective,2026-01-05T08:00:00Z,2026-01-05T12:00:00Z,2026-01-05T10:30:00Z,,false,true
INT-REG,region,ARA,planned,2026-01-20T00:00:00Z,2026-01-21T00:00:00Z,,,true,true
";

pub fn good_files() -> BTreeMap<&'static str, String> {
    [
        ("regions.csv", REGIONS),
        ("sites.csv", SITES),
        ("manufacturers.csv", MANUFACTURERS),
        ("models.csv", MODELS),
        ("equipment.csv", EQUIPMENT),
        ("error_codes.csv", ERROR_CODES),
        ("interventions.csv", INTERVENTIONS),
    ]
    .into_iter()
    .map(|(f, c)| (f, c.to_owned()))
    .collect()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(files: &BTreeMap<&'static str, String>) -> Fixture {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap_or_else(|e| panic!("write {name}: {e}"));
        }
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub fn load_good() -> Snapshot {
    let f = Fixture::new(&good_files());
    Snapshot::load_csv_dir(f.path()).unwrap_or_else(|p| panic!("{}", display(&p)))
}

pub fn display(problems: &[ReferenceProblem]) -> String {
    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}

pub fn ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).map(|t| t.timestamp_millis()).unwrap_or(i64::MIN)
}

pub fn event(key: EquipmentKey, id: &str, at: &str, code: Option<&str>, outcome: Outcome) -> Event {
    Event {
        event_id: "e1".into(),
        event_time: ms(at),
        received_at: ms(at),
        source: "test".into(),
        format: Format::Syslog,
        equipment_id: id.into(),
        equipment_key: key,
        kind: EventKind::AuthReject,
        outcome,
        error_code: code.map(Into::into),
        subscriber: None,
        message: None,
        attributes: Default::default(),
    }
}
