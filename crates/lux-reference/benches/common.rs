//! Shared by the benchmarks: a synthetic referential shaped like the demo operator's
//! (`lux generate`), written as CSV files at any size, and a mix of events naming it.
//!
//! The referential of `n` equipment rows: about 40 equipment per site, 8 regions; 0.4% BNGs
//! (with a NAS-Identifier and an IP address), 4% OLTs and 6% DSLAMs (with an IP address), the
//! rest CPE; hostnames like `cpe-s0042-000123` (the equipment id is the hostname, as in the
//! demo); 5% of the equipment moved site at `T0` (two rows with validity intervals, so the join
//! is as of the event time); 40 error codes; 1,000 interventions (half on sites, half on
//! equipment, a few on regions).
//!
//! The events ([`events`]): 68% syslog naming the equipment by hostname (any equipment,
//! uniformly), 25% RADIUS by NAS-Identifier and 5% by NAS-IP-Address (BNGs), 2% naming unknown
//! equipment; half carry an error code, 2% of those unknown to the catalogue; event times spread
//! over ±10 hours around `T0`.

use lux_model::{EquipmentKey, Event, EventKind, Format, Outcome};
use std::fmt::Write as _;
use std::path::Path;

pub const T0: i64 = 1_767_607_200_000; // 2026-01-05T10:00:00Z
const REGIONS: usize = 8;
const CODES: usize = 40;

/// One piece of equipment of the synthetic referential.
struct Equipment {
    hostname: String,
    site: usize,
    ip: Option<String>,
    nas: Option<String>,
    model: &'static str,
}

fn sites(n: usize) -> usize {
    (n / 40).max(10)
}

fn equipment(n: usize, i: usize) -> Equipment {
    let site = i % sites(n);
    let (kind, model) = match i % 250 {
        0 => ("bng", "7750"),
        1..=10 => ("olt", "MA5800"),
        11..=25 => ("dslam", "ISAM"),
        _ => ("cpe", "F@ST"),
    };
    let hostname = format!("{kind}-s{site:04}-{i:06}");
    let ip = (kind != "cpe").then(|| format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255));
    let nas = (kind == "bng").then(|| format!("nas-s{site:04}-{i:06}"));
    Equipment { hostname, site, ip, nas, model }
}

/// Whether equipment `i` moved site at `T0` (two validity intervals).
fn moved(i: usize) -> bool {
    i % 20 == 7
}

/// Writes the seven files of a referential with `n` equipment into `dir`; `variant` changes
/// one site name (a new version with the same size).
pub fn write_referential(dir: &Path, n: usize, variant: u32) -> std::io::Result<()> {
    let mut regions = String::from("region_id,name\n");
    for r in 0..REGIONS {
        let _ = writeln!(regions, "R{r},Region {r}");
    }
    let mut sites_csv = String::from("site_id,region_id,name,city\n");
    for s in 0..sites(n) {
        let name = if s == 0 { format!("Site 0 v{variant}") } else { format!("Site {s}") };
        let _ = writeln!(sites_csv, "S{s:04},R{},{name},City {}", s % REGIONS, s % 97);
    }
    let manufacturers = "manufacturer_id,name,country\nnokia,Nokia,FI\nhuawei,Huawei,CN\nsagem,Sagemcom,FR\n";
    let models = "model_id,manufacturer_id,name,equipment_type,technology\n\
                  7750,nokia,7750 SR,bng,core\nMA5800,huawei,MA5800-X7,olt,ftth\n\
                  ISAM,nokia,ISAM 7302,dslam,vdsl\nF@ST,sagem,F@ST 5670,cpe,ftth\n";
    let t0 = "2026-01-05T10:00:00Z";
    let mut equipment_csv =
        String::from("equipment_id,hostname,ip_address,nas_identifier,model_id,site_id,status,valid_from,valid_to\n");
    for i in 0..n {
        let e = equipment(n, i);
        let (ip, nas) = (e.ip.as_deref().unwrap_or(""), e.nas.as_deref().unwrap_or(""));
        let row = |site: usize, from: &str, to: &str| {
            format!("{h},{h},{ip},{nas},{m},S{site:04},in_service,{from},{to}", h = e.hostname, m = e.model)
        };
        if moved(i) {
            let _ = writeln!(equipment_csv, "{}", row((e.site + 1) % sites(n), "", t0));
            let _ = writeln!(equipment_csv, "{}", row(e.site, t0, ""));
        } else {
            let _ = writeln!(equipment_csv, "{}", row(e.site, "", ""));
        }
    }
    let mut codes = String::from("code,source_type,label,category,severity,is_failure,is_drop,customer_impacting\n");
    for c in 0..CODES {
        let _ = writeln!(codes, "CODE-{c},syslog,Label {c},network,major,{},false,true", c % 2 == 0);
    }
    let mut interventions = String::from(
        "intervention_id,scope,target_id,kind,planned_start,planned_end,actual_start,actual_end,suppress_alarms,exclude_from_kpi\n",
    );
    for k in 0..1_000 {
        let (scope, target) = match k % 100 {
            0 => ("region", format!("R{}", k % REGIONS)),
            _ if k % 2 == 0 => ("site", format!("S{:04}", k % sites(n))),
            _ => ("equipment", equipment(n, (k * 7919) % n.max(1)).hostname),
        };
        let _ = writeln!(
            interventions,
            "INT-{k},{scope},{target},planned,2026-01-05T{:02}:00:00Z,2026-01-05T{:02}:30:00Z,,,true,false",
            k % 20,
            k % 20 + 1
        );
    }
    for (file, content) in [
        ("regions.csv", regions.as_str()),
        ("sites.csv", sites_csv.as_str()),
        ("manufacturers.csv", manufacturers),
        ("models.csv", models),
        ("equipment.csv", equipment_csv.as_str()),
        ("error_codes.csv", codes.as_str()),
        ("interventions.csv", interventions.as_str()),
    ] {
        // Write then rename: a reader never sees half a file.
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, dir.join(file))?;
    }
    Ok(())
}

/// `count` events over a referential of `n` equipment (the mix is in the module's doc).
// The `.into()`s keep this compiling when `Event`'s text fields change type (`Arc<str>`, ...).
#[allow(clippy::useless_conversion)]
pub fn events(n: usize, count: usize) -> Vec<Event> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bngs = n.div_ceil(250).max(1);
    (0..count)
        .map(|k| {
            let r = next();
            let any = (r >> 8) as usize % n.max(1);
            let bng = equipment(n, ((r >> 8) as usize % bngs) * 250);
            let (key, id) = match r % 100 {
                0..=1 => (EquipmentKey::Hostname, format!("cpe-s9999-{any:06}x")),
                2..=69 => (EquipmentKey::Hostname, equipment(n, any).hostname),
                70..=94 => (EquipmentKey::NasIdentifier, bng.nas.unwrap_or_default()),
                _ => (EquipmentKey::NasIpAddress, bng.ip.unwrap_or_default()),
            };
            let code = (r >> 40) % 100;
            let error_code = match code {
                0..=48 => Some(format!("CODE-{}", code % CODES as u64)),
                49 => Some("CODE-UNKNOWN".to_owned()),
                _ => None,
            };
            Event {
                event_id: format!("{k:032x}").into(),
                event_time: T0 - 10 * 3_600_000 + ((r >> 20) % (20 * 3_600_000)) as i64,
                received_at: T0,
                source: "bench".into(),
                format: Format::Syslog,
                equipment_id: id.into(),
                equipment_key: key,
                kind: EventKind::AuthReject,
                outcome: Outcome::Failure,
                error_code: error_code.map(Into::into),
                subscriber: Some(format!("{:032x}", r).into()),
                message: Some("Authentication failed for subscriber".to_owned().into()),
                attributes: Default::default(),
            }
        })
        .collect()
}
