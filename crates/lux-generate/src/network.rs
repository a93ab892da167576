//! The fictional operator's network, generated from the seed: regions, sites, manufacturers,
//! models, equipment (with a few validity histories), the error-code catalogue and planned
//! interventions; written as the seven reference CSV files of the contract.

use crate::catalogue::CATALOGUE;
use crate::config::{GeneratorConfig, IncidentScope};
use crate::names::{models_of, MANUFACTURERS, MODELS, REGIONS};
use crate::{rng_for, GenerateError};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Serialize, Serializer};
use std::net::Ipv4Addr;
use std::path::Path;

/// The kind of a piece of equipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EquipmentType {
    /// Broadband network gateway: terminates subscriber sessions, sends RADIUS accounting.
    Bng,
    /// Optical line terminal (FTTH access node).
    Olt,
    /// DSL access multiplexer (VDSL/ADSL access node).
    Dslam,
    /// Customer premises equipment (the subscriber's box or ONT).
    Cpe,
    /// RADIUS (AAA) server.
    Radius,
}

impl EquipmentType {
    pub fn as_str(self) -> &'static str {
        match self {
            EquipmentType::Bng => "bng",
            EquipmentType::Olt => "olt",
            EquipmentType::Dslam => "dslam",
            EquipmentType::Cpe => "cpe",
            EquipmentType::Radius => "radius",
        }
    }
}

/// The access technology an equipment serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Technology {
    Ftth,
    Vdsl,
    Adsl,
    Core,
}

impl Technology {
    pub fn as_str(self) -> &'static str {
        match self {
            Technology::Ftth => "ftth",
            Technology::Vdsl => "vdsl",
            Technology::Adsl => "adsl",
            Technology::Core => "core",
        }
    }
}

/// The state of an equipment over one validity interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EquipmentStatus {
    InService,
    Decommissioned,
    Spare,
}

impl EquipmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EquipmentStatus::InService => "in_service",
            EquipmentStatus::Decommissioned => "decommissioned",
            EquipmentStatus::Spare => "spare",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub region_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `PAR-001`.
    pub site_id: String,
    pub region_id: String,
    /// `Paris POP 1`.
    pub name: String,
    pub city: String,
    /// The site's part of hostnames: `par001`.
    pub code: String,
    /// Index of the site's region in [`Network::regions`].
    pub region_index: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manufacturer {
    pub manufacturer_id: String,
    pub name: String,
    /// ISO 3166 alpha-2 code.
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub model_id: String,
    pub manufacturer_id: String,
    pub name: String,
    pub equipment_type: EquipmentType,
    pub technology: Technology,
}

/// One row of `equipment.csv`: a piece of equipment over one validity interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equipment {
    /// Equal to the hostname.
    pub equipment_id: String,
    /// `olt-par001-03`, `cpe-par001-00042`.
    pub hostname: String,
    /// Management address in 10.0.0.0/8 (none for CPE).
    pub ip_address: Option<Ipv4Addr>,
    /// BNGs only: the NAS-Identifier they put in RADIUS packets (`nas-par001-01`).
    pub nas_identifier: Option<String>,
    pub model_id: String,
    pub site_id: String,
    pub status: EquipmentStatus,
    /// Start of validity (ms since the epoch), `None`: open.
    pub valid_from: Option<i64>,
    /// End of validity (exclusive), `None`: open.
    pub valid_to: Option<i64>,
    pub equipment_type: EquipmentType,
    pub technology: Technology,
    /// Index of the site in [`Network::sites`].
    pub site_index: usize,
    /// CPE only: the clear subscriber id (`sub0004711`).
    pub subscriber: Option<String>,
    /// Index in [`Network::equipment`] of the node this one hangs from: a CPE's OLT or DSLAM,
    /// an access node's BNG.
    pub uplink: Option<usize>,
}

/// What an intervention covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionScope {
    Equipment,
    Site,
    Region,
}

impl InterventionScope {
    pub fn as_str(self) -> &'static str {
        match self {
            InterventionScope::Equipment => "equipment",
            InterventionScope::Site => "site",
            InterventionScope::Region => "region",
        }
    }
}

/// One row of `interventions.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    pub intervention_id: String,
    pub scope: InterventionScope,
    pub target_id: String,
    /// `planned` or `corrective`.
    pub kind: &'static str,
    pub planned_start: i64,
    pub planned_end: i64,
    pub actual_start: Option<i64>,
    pub actual_end: Option<i64>,
    pub suppress_alarms: bool,
    pub exclude_from_kpi: bool,
}

impl Intervention {
    /// `[actual_start or planned_start, actual_end or planned_end)`.
    pub fn covers(&self) -> (i64, i64) {
        (self.actual_start.unwrap_or(self.planned_start), self.actual_end.unwrap_or(self.planned_end))
    }
}

/// An incident with its target chosen and its times fixed (written to `incidents.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedIncident {
    pub scope: IncidentScope,
    /// The site id or equipment id hit.
    pub target: String,
    #[serde(serialize_with = "rfc3339")]
    pub start: i64,
    #[serde(serialize_with = "rfc3339")]
    pub end: i64,
    pub failure_ratio: f64,
    /// How many pieces of in-service equipment the incident hits.
    pub equipment_count: usize,
    /// Indexes in [`Network::equipment`] of the equipment hit.
    #[serde(skip)]
    pub equipment: Vec<usize>,
}

fn rfc3339<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&lux_model::format_rfc3339_millis(*ms))
}

/// The whole reference data of the fictional operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub seed: u64,
    /// The start of simulated time this network was generated for (interventions are placed
    /// around it).
    pub start_ms: i64,
    pub regions: Vec<Region>,
    pub sites: Vec<Site>,
    pub manufacturers: Vec<Manufacturer>,
    pub models: Vec<Model>,
    /// The current row of every piece of equipment.
    pub equipment: Vec<Equipment>,
    /// Earlier validity rows of a few pieces of equipment (a swapped model, a decommissioned
    /// DSLAM's in-service period).
    pub history: Vec<Equipment>,
    pub interventions: Vec<Intervention>,
}

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// Sizes of each equipment population for `total` pieces of equipment.
fn population(total: u64) -> (usize, usize, usize, usize, usize) {
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let bng = (total / 250).max(2);
    let radius = (total / 500).max(1);
    let olt = (total / 25).max(2);
    let dslam = (total * 3 / 50).max(3);
    let cpe = total.saturating_sub(bng + radius + olt + dslam);
    (bng, radius, olt, dslam, cpe)
}

/// 10.a.b.c from an ordinal, avoiding .0 and .255 in the last byte.
fn management_ip(ordinal: usize) -> Ipv4Addr {
    let c = (ordinal % 254) as u8 + 1;
    let b = ((ordinal / 254) % 256) as u8;
    let a = ((ordinal / (254 * 256)) % 256) as u8;
    Ipv4Addr::new(10, a, b, c)
}

/// Splits `total` proportionally to `weights` (largest remainders), summing exactly to `total`.
fn apportion(total: usize, weights: &[f64]) -> Vec<usize> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let assigned: usize = counts.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &i in order.iter().cycle().take(total.saturating_sub(assigned)) {
        counts[i] += 1;
    }
    counts
}

struct Builder {
    equipment: Vec<Equipment>,
    /// Per site, per type: the next hostname number.
    counters: Vec<[usize; 5]>,
    next_ip: usize,
}

impl Builder {
    fn add(&mut self, sites: &[Site], site_index: usize, model_index: usize, uplink: Option<usize>) -> usize {
        let model = &MODELS[model_index.min(MODELS.len() - 1)];
        let t = model.equipment_type;
        let slot = match t {
            EquipmentType::Bng => 0,
            EquipmentType::Olt => 1,
            EquipmentType::Dslam => 2,
            EquipmentType::Cpe => 3,
            EquipmentType::Radius => 4,
        };
        let site = &sites[site_index];
        let counter = &mut self.counters[site_index][slot];
        *counter += 1;
        let hostname = if t == EquipmentType::Cpe {
            format!("cpe-{}-{:05}", site.code, counter)
        } else {
            format!("{}-{}-{:02}", t.as_str(), site.code, counter)
        };
        let ip_address = if t == EquipmentType::Cpe {
            None
        } else {
            self.next_ip += 1;
            Some(management_ip(self.next_ip - 1))
        };
        let nas_identifier = (t == EquipmentType::Bng).then(|| format!("nas-{}-{:02}", site.code, counter));
        self.equipment.push(Equipment {
            equipment_id: hostname.clone(),
            hostname,
            ip_address,
            nas_identifier,
            model_id: model.id.to_owned(),
            site_id: site.site_id.clone(),
            status: EquipmentStatus::InService,
            valid_from: None,
            valid_to: None,
            equipment_type: t,
            technology: model.technology,
            site_index,
            subscriber: None,
            uplink,
        });
        self.equipment.len() - 1
    }
}

impl Network {
    /// The network of `cfg`, with interventions placed around `cfg.start` (or
    /// [`crate::DEFAULT_START`] when unset). Fails on an invalid configuration.
    pub fn generate(cfg: &GeneratorConfig) -> Result<Network, GenerateError> {
        let start_ms = cfg.start_ms()?;
        Network::generate_at(cfg, start_ms)
    }

    /// The network of `cfg` with interventions placed around `start_ms` (ignores `cfg.start`).
    pub fn generate_at(cfg: &GeneratorConfig, start_ms: i64) -> Result<Network, GenerateError> {
        let problems = cfg.validate("generator");
        if !problems.is_empty() {
            return Err(GenerateError::InvalidConfig(problems));
        }
        let mut rng = rng_for(cfg.seed, crate::STREAM_NETWORK);
        let region_count = (cfg.regions as usize).clamp(1, REGIONS.len());
        let regions: Vec<Region> = REGIONS[..region_count]
            .iter()
            .map(|r| Region { region_id: r.id.to_owned(), name: r.name.to_owned() })
            .collect();

        // Sites: round robin over regions, then over each region's cities.
        let mut city_counters: Vec<Vec<usize>> =
            REGIONS[..region_count].iter().map(|r| vec![0; r.cities.len()]).collect();
        let mut sites = Vec::with_capacity(cfg.sites as usize);
        let mut sites_of_region: Vec<Vec<usize>> = vec![Vec::new(); region_count];
        for i in 0..cfg.sites as usize {
            let r = i % region_count;
            let region = &REGIONS[r];
            let c = (i / region_count) % region.cities.len().max(1);
            let (code, city) = region.cities.get(c).copied().unwrap_or(("xxx", "Unknown"));
            let n = match city_counters.get_mut(r).and_then(|v| v.get_mut(c)) {
                Some(counter) => {
                    *counter += 1;
                    *counter
                }
                None => i + 1,
            };
            sites_of_region[r].push(sites.len());
            sites.push(Site {
                site_id: format!("{}-{:03}", code.to_uppercase(), n),
                region_id: region.id.to_owned(),
                name: format!("{city} POP {n}"),
                city: city.to_owned(),
                code: format!("{code}{n:03}"),
                region_index: r,
            });
        }

        let manufacturers = MANUFACTURERS
            .iter()
            .map(|(id, name, country)| Manufacturer {
                manufacturer_id: (*id).to_owned(),
                name: (*name).to_owned(),
                country: (*country).to_owned(),
            })
            .collect();
        let models = MODELS
            .iter()
            .map(|m| Model {
                model_id: m.id.to_owned(),
                manufacturer_id: m.manufacturer_id.to_owned(),
                name: m.name.to_owned(),
                equipment_type: m.equipment_type,
                technology: m.technology,
            })
            .collect();

        let (bng_count, radius_count, olt_count, dslam_count, cpe_count) = population(cfg.equipment);
        let mut b = Builder { equipment: Vec::new(), counters: vec![[0; 5]; sites.len()], next_ip: 0 };
        let pick = |rng: &mut rand_chacha::ChaCha8Rng, choices: &[usize]| choices.choose(rng).copied().unwrap_or(0);
        let bng_models = models_of(EquipmentType::Bng, None);
        let radius_models = models_of(EquipmentType::Radius, None);
        let olt_models = models_of(EquipmentType::Olt, None);
        let vdsl_models = models_of(EquipmentType::Dslam, Some(Technology::Vdsl));
        let adsl_models = models_of(EquipmentType::Dslam, Some(Technology::Adsl));

        // BNGs spread over distinct sites, round robin over regions.
        let mut bngs_of_region: Vec<Vec<usize>> = vec![Vec::new(); region_count];
        let mut all_bngs = Vec::new();
        for j in 0..bng_count {
            let r = j % region_count;
            let region_sites = &sites_of_region[r];
            let site = region_sites[(j / region_count) % region_sites.len().max(1)];
            let model = pick(&mut rng, &bng_models);
            let idx = b.add(&sites, site, model, None);
            bngs_of_region[r].push(idx);
            all_bngs.push(idx);
        }
        for k in 0..radius_count {
            let r = k % region_count;
            let region_sites = &sites_of_region[r];
            let site = region_sites[(k / region_count) % region_sites.len().max(1)];
            let model = pick(&mut rng, &radius_models);
            b.add(&sites, site, model, None);
        }

        // Access nodes: a shuffled mix of OLTs and DSLAMs, apportioned to sites by weight.
        let weights: Vec<f64> = (0..sites.len()).map(|_| rng.gen_range(0.7..1.3)).collect();
        let per_site = apportion(olt_count + dslam_count, &weights);
        let mut kinds: Vec<bool> =
            std::iter::repeat_n(true, olt_count).chain(std::iter::repeat_n(false, dslam_count)).collect();
        kinds.shuffle(&mut rng);
        let mut kinds = kinds.into_iter();
        let mut access_nodes = Vec::new();
        let mut region_bng_cursor = vec![0usize; region_count];
        for (site_index, &count) in per_site.iter().enumerate() {
            let r = sites[site_index].region_index;
            for _ in 0..count {
                let is_olt = kinds.next().unwrap_or(false);
                let model = if is_olt {
                    pick(&mut rng, &olt_models)
                } else if rng.gen_bool(0.75) {
                    pick(&mut rng, &vdsl_models)
                } else {
                    pick(&mut rng, &adsl_models)
                };
                let candidates = if bngs_of_region[r].is_empty() { &all_bngs } else { &bngs_of_region[r] };
                let uplink = candidates.get(region_bng_cursor[r] % candidates.len().max(1)).copied();
                region_bng_cursor[r] += 1;
                access_nodes.push(b.add(&sites, site_index, model, uplink));
            }
        }

        // CPE: round robin over the access nodes, technology of their node.
        let cpe_models: Vec<(Technology, Vec<usize>)> = [Technology::Ftth, Technology::Vdsl, Technology::Adsl]
            .into_iter()
            .map(|t| (t, models_of(EquipmentType::Cpe, Some(t))))
            .collect();
        for k in 0..cpe_count {
            let Some(&node) = access_nodes.get(k % access_nodes.len().max(1)) else { break };
            let (site_index, technology) = (b.equipment[node].site_index, b.equipment[node].technology);
            let choices = cpe_models.iter().find(|(t, _)| *t == technology).map(|(_, m)| m.as_slice()).unwrap_or(&[]);
            let model = pick(&mut rng, choices);
            let idx = b.add(&sites, site_index, model, Some(node));
            b.equipment[idx].subscriber = Some(format!("sub{:07}", k + 1));
        }

        // One DSLAM decommissioned 90 days before the start (in the inventory, silent).
        let retired_at = start_ms - 90 * DAY_MS;
        let retired_site = rng.gen_range(0..sites.len().max(1)).min(sites.len().saturating_sub(1));
        let retired_model = pick(&mut rng, &adsl_models);
        let retired = b.add(&sites, retired_site, retired_model, None);

        let mut equipment = b.equipment;
        let mut history = Vec::new();
        if let Some(current) = equipment.get_mut(retired) {
            let mut old = current.clone();
            old.valid_to = Some(retired_at);
            history.push(old);
            current.status = EquipmentStatus::Decommissioned;
            current.valid_from = Some(retired_at);
        }

        // Two CPE whose model was swapped 30 days before the start.
        let swap_at = start_ms - 30 * DAY_MS;
        let mut swappable: Vec<usize> = equipment
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.equipment_type == EquipmentType::Cpe && models_of(EquipmentType::Cpe, Some(e.technology)).len() > 1
            })
            .map(|(i, _)| i)
            .collect();
        swappable.shuffle(&mut rng);
        for &i in swappable.iter().take(2) {
            let current = &mut equipment[i];
            let old_model = MODELS
                .iter()
                .find(|m| {
                    m.equipment_type == EquipmentType::Cpe
                        && m.technology == current.technology
                        && m.id != current.model_id
                })
                .map(|m| m.id.to_owned())
                .unwrap_or_else(|| current.model_id.clone());
            let mut old = current.clone();
            old.model_id = old_model;
            old.valid_to = Some(swap_at);
            current.valid_from = Some(swap_at);
            history.push(old);
        }

        let mut network = Network {
            seed: cfg.seed,
            start_ms,
            regions,
            sites,
            manufacturers,
            models,
            equipment,
            history,
            interventions: Vec::new(),
        };
        let incidents = network.incidents(cfg, start_ms)?;
        network.interventions = network.plan_interventions(&mut rng, &incidents);
        Ok(network)
    }

    /// In-service equipment count per site.
    pub fn equipment_per_site(&self) -> Vec<usize> {
        let mut counts = vec![0; self.sites.len()];
        for e in self.equipment.iter().filter(|e| e.status == EquipmentStatus::InService) {
            if let Some(c) = counts.get_mut(e.site_index) {
                *c += 1;
            }
        }
        counts
    }

    /// The incidents of `cfg` with their targets chosen and their times fixed from `start_ms`.
    /// Fails when a configured target is not in this network.
    pub fn incidents(&self, cfg: &GeneratorConfig, start_ms: i64) -> Result<Vec<ResolvedIncident>, GenerateError> {
        let per_site = self.equipment_per_site();
        let mut busiest: Vec<usize> = (0..self.sites.len()).collect();
        busiest.sort_by_key(|&s| (std::cmp::Reverse(per_site[s]), s));
        let mut next_busiest = busiest.into_iter();
        let mut chosen_equipment: Vec<usize> = Vec::new();
        let mut out = Vec::new();
        for (index, incident) in cfg.incidents.iter().enumerate() {
            let start = start_ms.saturating_add(i64::try_from(incident.start_after.as_millis()).unwrap_or(i64::MAX));
            let end = start.saturating_add(i64::try_from(incident.duration.as_millis()).unwrap_or(i64::MAX));
            let unknown = |target: &str| GenerateError::UnknownIncidentTarget {
                index,
                scope: incident.scope.as_str(),
                target: target.to_owned(),
            };
            let (target, equipment) = match (incident.scope, &incident.target) {
                (IncidentScope::Site, target) => {
                    let site = match target {
                        Some(t) => self.sites.iter().position(|s| s.site_id == t.trim()).ok_or_else(|| unknown(t))?,
                        None => next_busiest.next().unwrap_or(0),
                    };
                    let hit: Vec<usize> = self
                        .equipment
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| e.site_index == site && e.status == EquipmentStatus::InService)
                        .map(|(i, _)| i)
                        .collect();
                    (self.sites.get(site).map(|s| s.site_id.clone()).unwrap_or_default(), hit)
                }
                (IncidentScope::Equipment, Some(t)) => {
                    let t = t.trim();
                    let i = self
                        .equipment
                        .iter()
                        .position(|e| {
                            (e.equipment_id == t || e.hostname == t) && e.status == EquipmentStatus::InService
                        })
                        .ok_or_else(|| unknown(t))?;
                    (self.equipment[i].equipment_id.clone(), vec![i])
                }
                (IncidentScope::Equipment, None) => {
                    let mut rng = rng_for(self.seed, crate::STREAM_INCIDENTS + index as u64);
                    let candidates: Vec<usize> = self
                        .equipment
                        .iter()
                        .enumerate()
                        .filter(|(i, e)| {
                            matches!(e.equipment_type, EquipmentType::Bng | EquipmentType::Olt)
                                && e.status == EquipmentStatus::InService
                                && !chosen_equipment.contains(i)
                        })
                        .map(|(i, _)| i)
                        .collect();
                    let i = candidates.choose(&mut rng).copied().ok_or_else(|| unknown("(any BNG or OLT)"))?;
                    chosen_equipment.push(i);
                    (self.equipment[i].equipment_id.clone(), vec![i])
                }
            };
            out.push(ResolvedIncident {
                scope: incident.scope,
                target,
                start,
                end,
                failure_ratio: incident.failure_ratio,
                equipment_count: equipment.len(),
                equipment,
            });
        }
        Ok(out)
    }

    /// Whether an intervention of `scope` on `target` over `[from, to)` would cover equipment
    /// hit by one of `incidents` while it is going on.
    fn conflicts(
        &self,
        scope: InterventionScope,
        target: usize,
        from: i64,
        to: i64,
        incidents: &[ResolvedIncident],
    ) -> bool {
        incidents.iter().filter(|inc| from < inc.end && inc.start < to).any(|inc| {
            inc.equipment.iter().any(|&e| {
                let Some(eq) = self.equipment.get(e) else { return false };
                match scope {
                    InterventionScope::Equipment => e == target,
                    InterventionScope::Site => eq.site_index == target,
                    InterventionScope::Region => {
                        self.sites.get(eq.site_index).is_some_and(|s| s.region_index == target)
                    }
                }
            })
        })
    }

    fn plan_interventions(
        &self,
        rng: &mut rand_chacha::ChaCha8Rng,
        incidents: &[ResolvedIncident],
    ) -> Vec<Intervention> {
        let t = self.start_ms;
        struct Plan {
            scope: InterventionScope,
            of_type: Option<EquipmentType>,
            kind: &'static str,
            planned: (i64, i64),
            actual: (Option<i64>, Option<i64>),
            suppress_alarms: bool,
            exclude_from_kpi: bool,
        }
        let plans = [
            // Past planned works on an OLT, done.
            Plan {
                scope: InterventionScope::Equipment,
                of_type: Some(EquipmentType::Olt),
                kind: "planned",
                planned: (t - 7 * DAY_MS + HOUR_MS, t - 7 * DAY_MS + 5 * HOUR_MS),
                actual: (
                    Some(t - 7 * DAY_MS + HOUR_MS + 5 * MINUTE_MS),
                    Some(t - 7 * DAY_MS + 4 * HOUR_MS + 40 * MINUTE_MS),
                ),
                suppress_alarms: true,
                exclude_from_kpi: true,
            },
            // Past repair of a DSLAM.
            Plan {
                scope: InterventionScope::Equipment,
                of_type: Some(EquipmentType::Dslam),
                kind: "corrective",
                planned: (t - 2 * DAY_MS, t - 2 * DAY_MS + 2 * HOUR_MS),
                actual: (Some(t - 2 * DAY_MS + 10 * MINUTE_MS), Some(t - 2 * DAY_MS + 3 * HOUR_MS)),
                suppress_alarms: false,
                exclude_from_kpi: false,
            },
            // Works on a site going on at the start of simulated time, not ended yet.
            Plan {
                scope: InterventionScope::Site,
                of_type: None,
                kind: "planned",
                planned: (t - 30 * MINUTE_MS, t + 2 * HOUR_MS),
                actual: (Some(t - 25 * MINUTE_MS), None),
                suppress_alarms: true,
                exclude_from_kpi: true,
            },
            // Future works on a site.
            Plan {
                scope: InterventionScope::Site,
                of_type: None,
                kind: "planned",
                planned: (t + 2 * DAY_MS + HOUR_MS, t + 2 * DAY_MS + 5 * HOUR_MS),
                actual: (None, None),
                suppress_alarms: true,
                exclude_from_kpi: true,
            },
            // Future night works on a whole region.
            Plan {
                scope: InterventionScope::Region,
                of_type: None,
                kind: "planned",
                planned: (t + 7 * DAY_MS - 2 * HOUR_MS, t + 7 * DAY_MS + 4 * HOUR_MS),
                actual: (None, None),
                suppress_alarms: true,
                exclude_from_kpi: false,
            },
        ];
        let mut out = Vec::new();
        let mut used_sites: Vec<usize> = Vec::new();
        for plan in plans {
            let (from, to) = (plan.actual.0.unwrap_or(plan.planned.0), plan.actual.1.unwrap_or(plan.planned.1));
            let mut candidates: Vec<usize> = match plan.scope {
                InterventionScope::Equipment => self
                    .equipment
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| Some(e.equipment_type) == plan.of_type && e.status == EquipmentStatus::InService)
                    .map(|(i, _)| i)
                    .collect(),
                InterventionScope::Site => (0..self.sites.len()).filter(|s| !used_sites.contains(s)).collect(),
                InterventionScope::Region => (0..self.regions.len()).collect(),
            };
            candidates.shuffle(rng);
            let Some(target) = candidates.into_iter().find(|&c| !self.conflicts(plan.scope, c, from, to, incidents))
            else {
                continue;
            };
            let target_id = match plan.scope {
                InterventionScope::Equipment => self.equipment.get(target).map(|e| e.equipment_id.clone()),
                InterventionScope::Site => {
                    used_sites.push(target);
                    self.sites.get(target).map(|s| s.site_id.clone())
                }
                InterventionScope::Region => self.regions.get(target).map(|r| r.region_id.clone()),
            };
            let Some(target_id) = target_id else { continue };
            out.push(Intervention {
                intervention_id: format!("INT-{:04}", out.len() + 1),
                scope: plan.scope,
                target_id,
                kind: plan.kind,
                planned_start: plan.planned.0,
                planned_end: plan.planned.1,
                actual_start: plan.actual.0,
                actual_end: plan.actual.1,
                suppress_alarms: plan.suppress_alarms,
                exclude_from_kpi: plan.exclude_from_kpi,
            });
        }
        out
    }

    /// Every row of `equipment.csv`: current rows, then earlier validity rows.
    pub fn equipment_rows(&self) -> impl Iterator<Item = &Equipment> {
        self.equipment.iter().chain(self.history.iter())
    }

    /// Writes `regions.csv`, `sites.csv`, `manufacturers.csv`, `models.csv`, `equipment.csv`,
    /// `error_codes.csv` and `interventions.csv` into `dir` (created if missing).
    pub fn write_csv(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let open = |name: &str| csv::Writer::from_path(dir.join(name)).map_err(std::io::Error::from);
        let mut w = open("regions.csv")?;
        w.write_record(["region_id", "name"])?;
        for r in &self.regions {
            w.write_record([&r.region_id, &r.name])?;
        }
        w.flush()?;

        let mut w = open("sites.csv")?;
        w.write_record(["site_id", "region_id", "name", "city"])?;
        for s in &self.sites {
            w.write_record([&s.site_id, &s.region_id, &s.name, &s.city])?;
        }
        w.flush()?;

        let mut w = open("manufacturers.csv")?;
        w.write_record(["manufacturer_id", "name", "country"])?;
        for m in &self.manufacturers {
            w.write_record([&m.manufacturer_id, &m.name, &m.country])?;
        }
        w.flush()?;

        let mut w = open("models.csv")?;
        w.write_record(["model_id", "manufacturer_id", "name", "equipment_type", "technology"])?;
        for m in &self.models {
            w.write_record([
                &m.model_id,
                &m.manufacturer_id,
                &m.name,
                m.equipment_type.as_str(),
                m.technology.as_str(),
            ])?;
        }
        w.flush()?;

        let mut w = open("equipment.csv")?;
        w.write_record([
            "equipment_id",
            "hostname",
            "ip_address",
            "nas_identifier",
            "model_id",
            "site_id",
            "status",
            "valid_from",
            "valid_to",
        ])?;
        for e in self.equipment_rows() {
            w.write_record([
                e.equipment_id.as_str(),
                &e.hostname,
                &e.ip_address.map(|ip| ip.to_string()).unwrap_or_default(),
                e.nas_identifier.as_deref().unwrap_or(""),
                &e.model_id,
                &e.site_id,
                e.status.as_str(),
                &csv_time(e.valid_from),
                &csv_time(e.valid_to),
            ])?;
        }
        w.flush()?;

        let mut w = open("error_codes.csv")?;
        w.write_record([
            "code",
            "source_type",
            "label",
            "category",
            "severity",
            "is_failure",
            "is_drop",
            "customer_impacting",
        ])?;
        for c in CATALOGUE {
            w.write_record([
                c.code,
                c.source_type,
                c.label,
                c.category,
                c.severity,
                bool_str(c.is_failure),
                bool_str(c.is_drop),
                bool_str(c.customer_impacting),
            ])?;
        }
        w.flush()?;

        let mut w = open("interventions.csv")?;
        w.write_record([
            "intervention_id",
            "scope",
            "target_id",
            "kind",
            "planned_start",
            "planned_end",
            "actual_start",
            "actual_end",
            "suppress_alarms",
            "exclude_from_kpi",
        ])?;
        for i in &self.interventions {
            w.write_record([
                i.intervention_id.as_str(),
                i.scope.as_str(),
                &i.target_id,
                i.kind,
                &csv_time(Some(i.planned_start)),
                &csv_time(Some(i.planned_end)),
                &csv_time(i.actual_start),
                &csv_time(i.actual_end),
                bool_str(i.suppress_alarms),
                bool_str(i.exclude_from_kpi),
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// RFC 3339 to the second, empty for an open bound.
fn csv_time(ms: Option<i64>) -> String {
    use chrono::{SecondsFormat, TimeZone, Utc};
    match ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_sums_exactly() {
        assert_eq!(apportion(10, &[1.0, 1.0, 2.0]), vec![3, 2, 5]);
        assert_eq!(apportion(7, &[]), Vec::<usize>::new());
        let c = apportion(500, &[0.7, 1.2, 0.9, 1.1]);
        assert_eq!(c.iter().sum::<usize>(), 500);
    }

    #[test]
    fn management_ips_are_unique_and_in_10_slash_8() {
        let ips: std::collections::HashSet<_> = (0..100_000).map(management_ip).collect();
        assert_eq!(ips.len(), 100_000);
        assert!(ips.iter().all(|ip| ip.octets()[0] == 10 && ip.octets()[3] != 0 && ip.octets()[3] != 255));
    }

    #[test]
    fn population_of_the_default_network() {
        assert_eq!(population(5000), (20, 10, 200, 300, 4470));
        let (b, r, o, d, c) = population(50);
        assert_eq!(b + r + o + d + c, 50);
    }
}
