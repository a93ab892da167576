//! The fixed vocabulary of the fictional operator: regions and their cities, manufacturers and
//! the equipment models they make.

use crate::network::{EquipmentType, Technology};

/// A region: id, name, and its cities as (three-letter code, name).
pub struct RegionName {
    pub id: &'static str,
    pub name: &'static str,
    pub cities: &'static [(&'static str, &'static str)],
}

/// Thirteen regions, the most populated first (a network of `n` regions uses the first `n`).
pub const REGIONS: &[RegionName] = &[
    RegionName {
        id: "IDF",
        name: "Île-de-France",
        cities: &[
            ("par", "Paris"),
            ("nan", "Nanterre"),
            ("cre", "Créteil"),
            ("ver", "Versailles"),
            ("sdn", "Saint-Denis"),
        ],
    },
    RegionName {
        id: "ARA",
        name: "Auvergne-Rhône-Alpes",
        cities: &[("lyo", "Lyon"), ("gre", "Grenoble"), ("clf", "Clermont-Ferrand"), ("ste", "Saint-Étienne")],
    },
    RegionName {
        id: "PAC",
        name: "Provence-Alpes-Côte d'Azur",
        cities: &[("mrs", "Marseille"), ("nce", "Nice"), ("tln", "Toulon"), ("avi", "Avignon")],
    },
    RegionName {
        id: "OCC",
        name: "Occitanie",
        cities: &[("tls", "Toulouse"), ("mpl", "Montpellier"), ("nim", "Nîmes"), ("per", "Perpignan")],
    },
    RegionName {
        id: "NAQ",
        name: "Nouvelle-Aquitaine",
        cities: &[("bod", "Bordeaux"), ("lim", "Limoges"), ("poi", "Poitiers"), ("pau", "Pau")],
    },
    RegionName {
        id: "HDF",
        name: "Hauts-de-France",
        cities: &[("lil", "Lille"), ("ami", "Amiens"), ("rbx", "Roubaix"), ("dun", "Dunkerque")],
    },
    RegionName {
        id: "GES",
        name: "Grand Est",
        cities: &[("sxb", "Strasbourg"), ("rei", "Reims"), ("met", "Metz"), ("ncy", "Nancy")],
    },
    RegionName {
        id: "BRE",
        name: "Bretagne",
        cities: &[("rns", "Rennes"), ("bes", "Brest"), ("qmp", "Quimper"), ("lrt", "Lorient")],
    },
    RegionName {
        id: "PDL",
        name: "Pays de la Loire",
        cities: &[("nte", "Nantes"), ("ang", "Angers"), ("lmn", "Le Mans")],
    },
    RegionName { id: "NOR", name: "Normandie", cities: &[("rue", "Rouen"), ("cae", "Caen"), ("leh", "Le Havre")] },
    RegionName { id: "BFC", name: "Bourgogne-Franche-Comté", cities: &[("dij", "Dijon"), ("bsn", "Besançon")] },
    RegionName { id: "CVL", name: "Centre-Val de Loire", cities: &[("trs", "Tours"), ("orl", "Orléans")] },
    RegionName { id: "COR", name: "Corse", cities: &[("aja", "Ajaccio"), ("bia", "Bastia")] },
];

/// Manufacturers: (id, name, ISO country code).
pub const MANUFACTURERS: &[(&str, &str, &str)] = &[
    ("valmont", "Valmont Networks", "FR"),
    ("nordhavn", "Nordhavn Telecom", "DK"),
    ("kestrel", "Kestrel Systems", "US"),
    ("shenlan", "Shenlan Optical", "CN"),
    ("isarwerk", "Isarwerk Kommunikation", "DE"),
    ("aoba", "Aoba Electric", "JP"),
];

/// A model: id, manufacturer id, commercial name, type, technology.
pub struct ModelName {
    pub id: &'static str,
    pub manufacturer_id: &'static str,
    pub name: &'static str,
    pub equipment_type: EquipmentType,
    pub technology: Technology,
}

const fn model(
    id: &'static str,
    manufacturer_id: &'static str,
    name: &'static str,
    equipment_type: EquipmentType,
    technology: Technology,
) -> ModelName {
    ModelName { id, manufacturer_id, name, equipment_type, technology }
}

use EquipmentType::{Bng, Cpe, Dslam, Olt, Radius};
use Technology::{Adsl, Core, Ftth, Vdsl};

/// Every model of the catalogue.
pub const MODELS: &[ModelName] = &[
    model("vlm-bng8800", "valmont", "BNG-8800", Bng, Core),
    model("ksl-kx9000", "kestrel", "KX-9000", Bng, Core),
    model("ksl-aaa200", "kestrel", "AAA-200", Radius, Core),
    model("ndh-radiant4", "nordhavn", "Radiant 4", Radius, Core),
    model("shl-olt5600", "shenlan", "OLT-5600", Olt, Ftth),
    model("ndh-gx16", "nordhavn", "GX-16", Olt, Ftth),
    model("isw-vdsl48", "isarwerk", "VDSL-48", Dslam, Vdsl),
    model("vlm-msan24", "valmont", "MSAN-24", Dslam, Vdsl),
    model("isw-adsl32", "isarwerk", "ADSL-32", Dslam, Adsl),
    model("aob-hg821", "aoba", "HG-821 ONT", Cpe, Ftth),
    model("vlm-box6f", "valmont", "Box 6 Fibre", Cpe, Ftth),
    model("vlm-box6v", "valmont", "Box 6 VDSL", Cpe, Vdsl),
    model("aob-hv510", "aoba", "HV-510", Cpe, Vdsl),
    model("isw-sp3a", "isarwerk", "Speedport A3", Cpe, Adsl),
];

/// Indexes in [`MODELS`] of the models of a type and technology (`None`: any technology).
pub fn models_of(equipment_type: EquipmentType, technology: Option<Technology>) -> Vec<usize> {
    MODELS
        .iter()
        .enumerate()
        .filter(|(_, m)| m.equipment_type == equipment_type && technology.is_none_or(|t| t == m.technology))
        .map(|(i, _)| i)
        .collect()
}
