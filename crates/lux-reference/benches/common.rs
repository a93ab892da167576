//! Shared by the benchmarks: a synthetic referential of `n` equipment rows written as CSV files,
//! and a mix of events naming them (hostnames, NAS-Identifiers, NAS-IP-Addresses, error codes).

use lux_model::{EquipmentKey, Event, EventKind, Format, Outcome};
use std::fmt::Write as _;
use std::path::Path;

pub const SITES: usize = 1_000;
pub const T0: i64 = 1_767_607_200_000; // 2026-01-05T10:00:00Z

/// Writes the seven files of a referential with `n` equipment rows into `dir`; `variant`
/// changes one site name (a new version with the same size).
pub fn write_referential(dir: &Path, n: usize, variant: u32) -> std::io::Result<()> {
    let mut regions = String::from("region_id,name\n");
    for r in 0..10 {
        let _ = writeln!(regions, "R{r},Region {r}");
    }
    let mut sites = String::from("site_id,region_id,name,city\n");
    for s in 0..SITES {
        let name = if s == 0 { format!("Site 0 v{variant}") } else { format!("Site {s}") };
        let _ = writeln!(sites, "S{s:04},R{},{name},City {}", s % 10, s % 97);
    }
    let manufacturers = "manufacturer_id,name,country\nnokia,Nokia,FI\nhuawei,Huawei,CN\njuniper,Juniper,US\n";
    let models = "model_id,manufacturer_id,name,equipment_type,technology\n\
                  7750,nokia,7750 SR,bng,core\nMA5800,huawei,MA5800-X7,olt,ftth\n\
                  MX960,juniper,MX960,bng,core\nF@ST,nokia,F@ST 5670,cpe,vdsl\n";
    let mut equipment =
        String::from("equipment_id,hostname,ip_address,nas_identifier,model_id,site_id,status,valid_from,valid_to\n");
    for i in 0..n {
        let model = ["7750", "MA5800", "MX960", "F@ST"][i % 4];
        let nas = if i % 4 == 0 || i % 4 == 2 { format!("nas-{i}") } else { String::new() };
        let _ = writeln!(
            equipment,
            "EQ-{i:07},host-{i:07},10.{}.{}.{},{nas},{model},S{:04},in_service,,",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            i % SITES
        );
    }
    let mut codes = String::from("code,source_type,label,category,severity,is_failure,is_drop,customer_impacting\n");
    for c in 0..20 {
        let _ = writeln!(codes, "CODE-{c},syslog,Label {c},network,major,{},false,true", c % 2 == 0);
    }
    let mut interventions = String::from(
        "intervention_id,scope,target_id,kind,planned_start,planned_end,actual_start,actual_end,suppress_alarms,exclude_from_kpi\n",
    );
    for k in 0..1_000 {
        let (scope, target) = if k % 2 == 0 {
            ("site", format!("S{:04}", k % SITES))
        } else {
            ("equipment", format!("EQ-{:07}", (k * 7919) % n.max(1)))
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
        ("sites.csv", sites.as_str()),
        ("manufacturers.csv", manufacturers),
        ("models.csv", models),
        ("equipment.csv", equipment.as_str()),
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

/// `count` events over `n` equipment: 70% syslog by hostname, 20% RADIUS by NAS-Identifier,
/// 10% by NAS-IP-Address; half carry an error code; 2% name unknown equipment.
pub fn events(n: usize, count: usize) -> Vec<Event> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|k| {
            let r = next();
            let i = (r % n.max(1) as u64) as usize;
            let (key, id) = match r % 100 {
                0..=1 => (EquipmentKey::Hostname, format!("unknown-{i}")),
                2..=71 => (EquipmentKey::Hostname, format!("host-{i:07}")),
                72..=91 => (EquipmentKey::NasIdentifier, format!("nas-{}", i & !1)),
                _ => (EquipmentKey::NasIpAddress, format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)),
            };
            Event {
                event_id: format!("e{k}").into(),
                event_time: T0 - 10 * 3_600_000 + (r % (20 * 3_600_000)) as i64,
                received_at: T0,
                source: "bench".into(),
                format: Format::Syslog,
                equipment_id: id.into(),
                equipment_key: key,
                kind: EventKind::AuthReject,
                outcome: Outcome::Failure,
                error_code: (r % 2 == 0).then(|| format!("CODE-{}", (r >> 8) % 21).into()),
                subscriber: None,
                message: None,
                attributes: Default::default(),
            }
        })
        .collect()
}
