//! The operator's traffic, second by second: RFC 5424 syslog from BNGs and OLTs, RFC 3164
//! Cisco-style syslog from DSLAMs and CPE, RADIUS accounting from BNGs, plus the failures of the
//! injected incidents. Each simulated second is a pure function of (seed, second), so a stopped
//! run resumes at any second with identical output.

use crate::catalogue;
use crate::config::GeneratorConfig;
use crate::network::{EquipmentStatus, EquipmentType, Network, ResolvedIncident, Technology};
use crate::radius::{self, Attributes};
use crate::{curve, rng_for, GenerateError};
use chrono::{TimeZone, Utc};
use lux_model::Format;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;

/// One record as the equipment sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedRecord {
    /// When it happened by the equipment's clock (ms since the epoch, UTC).
    pub event_time_ms: i64,
    /// When the equipment sends it: the event time, or up to 2 s later for a few late records.
    pub send_time_ms: i64,
    /// [`Format::Syslog`] or [`Format::Radius`].
    pub format: Format,
    /// The sending equipment's hostname.
    pub key: String,
    /// A syslog line (without line terminator) or a RADIUS packet.
    pub payload: Vec<u8>,
    /// The error code the payload carries (`RADIUS-TC-2`, `DHCP-NOOFFER`, ...), if any.
    pub error_code: Option<&'static str>,
}

impl GeneratedRecord {
    /// Whether the error catalogue counts this record as a failure.
    pub fn is_failure(&self) -> bool {
        self.error_code.is_some_and(catalogue::is_failure)
    }
}

/// Rate multiplier of incident traffic per equipment type, in records per second at the default
/// `rate` of 2000 (scaled with `rate`).
fn incident_rate(kind: EquipmentType) -> f64 {
    match kind {
        EquipmentType::Cpe => 0.12,
        EquipmentType::Dslam => 2.0,
        EquipmentType::Olt => 6.0,
        EquipmentType::Bng => 40.0,
        EquipmentType::Radius => 0.0,
    }
}

/// Share of an equipment class's background records that can fail, times
/// `background_failure_ratio`, is the probability of a failure record.
const FAILABLE_BNG: f64 = 0.25;
const FAILABLE_OLT: f64 = 0.35;
const FAILABLE_DSLAM: f64 = 0.3;
const FAILABLE_CPE: f64 = 0.35;
/// Stops are 20% of RADIUS records; this share of `background_failure_ratio` of them fail.
const STOP_FAILURE_SCALE: f64 = 0.35;

/// Probability that a record is sent late (up to 2 s after its event time).
const LATE_PROBABILITY: f64 = 0.002;
const MAX_LATENESS_MS: i64 = 2000;
/// Records per second are numbered on 24 bits (session ids).
const MAX_RECORDS_PER_SECOND: u32 = 1 << 24;

struct Node {
    hostname: String,
    kind: EquipmentType,
    technology: Technology,
    ip: [u8; 4],
    nas: String,
    /// CPE: the subscriber id and number.
    subscriber: String,
    subscriber_no: u32,
    /// CPE: its port on its access node (`0/1/3:17` for GPON, `1/1/12` for DSL).
    port: String,
    /// BNG and access nodes: the CPE they serve (indexes).
    served: Vec<u32>,
    live: bool,
}

struct IncidentPlan {
    start: i64,
    end: i64,
    failure_ratio: f64,
    /// Hit equipment that emits incident records, with cumulative rates.
    members: Vec<u32>,
    cumulative: Vec<f64>,
    total_rate: f64,
    /// By equipment index: whether this incident hits it.
    hit: Vec<bool>,
}

/// The traffic generator of one network and configuration.
pub struct Traffic {
    seed: u64,
    start_ms: i64,
    rate: f64,
    daily_curve: bool,
    failure_ratio: f64,
    radius_share: f64,
    rfc3164_share: f64,
    secret: Vec<u8>,
    nodes: Vec<Node>,
    radius_sources: Vec<u32>,
    rfc5424_sources: Vec<u32>,
    rfc3164_sources: Vec<u32>,
    all_cpe: Vec<u32>,
    plans: Vec<IncidentPlan>,
    incidents: Vec<ResolvedIncident>,
}

/// Per-second formatting context.
struct Second {
    index: u64,
    /// `2026-01-05T10:00:00`.
    rfc3339: String,
    /// `Jan  5 10:00:00`.
    rfc3164: String,
    /// Unix seconds (Event-Timestamp).
    unix: u32,
}

/// What one background or incident draw produced.
struct Draft {
    payload: Vec<u8>,
    format: Format,
    code: Option<&'static str>,
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(rng.gen_range(0..items.len()))
    }
}

/// Picks from `(weight, value)` pairs.
fn weighted<T: Copy>(rng: &mut ChaCha8Rng, choices: &[(u32, T)]) -> T {
    let total: u32 = choices.iter().map(|c| c.0).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for &(w, v) in choices {
        if x < w {
            return v;
        }
        x -= w;
    }
    choices[choices.len() - 1].1
}

impl Traffic {
    /// The traffic of `network` under `cfg`, simulated time starting at `start_ms`. Fails on an
    /// invalid configuration or an incident target that is not in the network.
    pub fn new(network: &Network, cfg: &GeneratorConfig, start_ms: i64) -> Result<Traffic, GenerateError> {
        let problems = cfg.validate("generator");
        if !problems.is_empty() {
            return Err(GenerateError::InvalidConfig(problems));
        }
        let incidents = network.incidents(cfg, start_ms)?;
        let n = network.equipment.len();
        let mut nodes: Vec<Node> = network
            .equipment
            .iter()
            .map(|e| Node {
                hostname: e.hostname.clone(),
                kind: e.equipment_type,
                technology: e.technology,
                ip: e.ip_address.map(|ip| ip.octets()).unwrap_or([0; 4]),
                nas: e.nas_identifier.clone().unwrap_or_default(),
                subscriber: e.subscriber.clone().unwrap_or_default(),
                subscriber_no: e
                    .subscriber
                    .as_deref()
                    .and_then(|s| s.strip_prefix("sub"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                port: String::new(),
                served: Vec::new(),
                live: e.status == EquipmentStatus::InService,
            })
            .collect();
        let mut all_cpe = Vec::new();
        for (i, e) in network.equipment.iter().enumerate() {
            if e.equipment_type != EquipmentType::Cpe || e.status != EquipmentStatus::InService {
                continue;
            }
            all_cpe.push(i as u32);
            let Some(node) = e.uplink.filter(|&u| u < n) else { continue };
            let position = nodes[node].served.len();
            nodes[node].served.push(i as u32);
            nodes[i].port = if nodes[node].kind == EquipmentType::Olt {
                format!("0/{}/{}:{}", position / 512 % 8 + 1, position / 32 % 16, position % 32 + 1)
            } else {
                format!("1/1/{}", position % 48 + 1)
            };
            if let Some(bng) = network.equipment.get(node).and_then(|a| a.uplink).filter(|&b| b < n) {
                nodes[bng].served.push(i as u32);
            }
        }
        let sources = |kinds: &[EquipmentType]| -> Vec<u32> {
            nodes
                .iter()
                .enumerate()
                .filter(|(_, nd)| nd.live && kinds.contains(&nd.kind))
                .map(|(i, _)| i as u32)
                .collect()
        };
        let radius_sources = sources(&[EquipmentType::Bng]);
        let rfc5424_sources = sources(&[EquipmentType::Bng, EquipmentType::Olt]);
        let rfc3164_sources = sources(&[EquipmentType::Dslam, EquipmentType::Cpe]);
        let scale = cfg.rate / 2000.0;
        let plans = incidents
            .iter()
            .map(|inc| {
                let mut hit = vec![false; n];
                let mut members = Vec::new();
                let mut cumulative = Vec::new();
                let mut total = 0.0;
                for &e in &inc.equipment {
                    let Some(node) = nodes.get(e) else { continue };
                    hit[e] = true;
                    let r = incident_rate(node.kind) * scale;
                    if r > 0.0 {
                        total += r;
                        members.push(e as u32);
                        cumulative.push(total);
                    }
                }
                IncidentPlan {
                    start: inc.start,
                    end: inc.end,
                    failure_ratio: inc.failure_ratio,
                    members,
                    cumulative,
                    total_rate: total,
                    hit,
                }
            })
            .collect();
        Ok(Traffic {
            seed: cfg.seed,
            start_ms,
            rate: cfg.rate,
            daily_curve: cfg.daily_curve,
            failure_ratio: cfg.background_failure_ratio,
            radius_share: cfg.radius_share,
            rfc3164_share: cfg.rfc3164_share,
            secret: cfg.radius_secret.as_bytes().to_vec(),
            nodes,
            radius_sources,
            rfc5424_sources,
            rfc3164_sources,
            all_cpe,
            plans,
            incidents,
        })
    }

    /// The start of simulated time (ms since the epoch).
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// The incidents this traffic injects, targets chosen.
    pub fn incidents(&self) -> &[ResolvedIncident] {
        &self.incidents
    }

    /// Expected number of background records in second `s` (before incidents).
    pub fn expected_rate(&self, s: u64) -> f64 {
        let mid = self.second_start(s).saturating_add(500);
        if self.daily_curve {
            self.rate * curve::load_factor(mid)
        } else {
            self.rate
        }
    }

    fn second_start(&self, s: u64) -> i64 {
        self.start_ms.saturating_add(i64::try_from(s).unwrap_or(i64::MAX / 1000).saturating_mul(1000))
    }

    /// Every record whose event time falls in simulated second `s`
    /// (`[start_ms + s*1000, start_ms + s*1000 + 1000)`), sorted by event time. A pure function
    /// of (seed, configuration, `s`).
    pub fn second(&self, s: u64) -> Vec<GeneratedRecord> {
        let sec_start = self.second_start(s);
        let time = Utc.timestamp_millis_opt(sec_start.div_euclid(1000) * 1000).single().unwrap_or_default();
        let ctx = Second {
            index: s,
            rfc3339: time.format("%Y-%m-%dT%H:%M:%S").to_string(),
            rfc3164: time.format("%b %e %H:%M:%S").to_string(),
            unix: u32::try_from(sec_start.div_euclid(1000)).unwrap_or(0),
        };
        let mut rng = rng_for(self.seed, s & (crate::STREAM_NETWORK - 1));
        let lambda = self.expected_rate(s);
        let mut count = lambda.floor() as u32;
        if rng.gen_bool((lambda - lambda.floor()).clamp(0.0, 1.0)) {
            count += 1;
        }
        let mut out = Vec::with_capacity(count as usize + 16);
        let mut seq: u32 = 0;
        for _ in 0..count.min(MAX_RECORDS_PER_SECOND) {
            let offset = rng.gen_range(0..1000);
            let t = sec_start + offset;
            let u: f64 = rng.gen();
            let (sources, class) = if u < self.radius_share {
                (&self.radius_sources, 0)
            } else if rng.gen_bool(self.rfc3164_share) {
                (&self.rfc3164_sources, 2)
            } else {
                (&self.rfc5424_sources, 1)
            };
            let Some(&source) = pick(&mut rng, sources) else { continue };
            if self.is_down(source as usize, t) {
                continue;
            }
            let draft = match class {
                0 => self.radius_background(&mut rng, &ctx, seq, source),
                _ => self.syslog_background(&mut rng, &ctx, offset, seq, source),
            };
            self.push(&mut out, &mut rng, t, source, draft);
            seq += 1;
        }
        let sec_end = sec_start + 1000;
        for plan in &self.plans {
            let from = plan.start.max(sec_start);
            let to = plan.end.min(sec_end);
            if from >= to || plan.members.is_empty() {
                continue;
            }
            let lambda = plan.total_rate * (to - from) as f64 / 1000.0;
            let mut count = lambda.floor() as u32;
            if rng.gen_bool((lambda - lambda.floor()).clamp(0.0, 1.0)) {
                count += 1;
            }
            for _ in 0..count {
                if seq >= MAX_RECORDS_PER_SECOND {
                    break;
                }
                let t = rng.gen_range(from..to);
                let x = rng.gen_range(0.0..plan.total_rate);
                let k = plan.cumulative.partition_point(|&c| c <= x).min(plan.members.len() - 1);
                let source = plan.members[k];
                let failure = rng.gen_bool(plan.failure_ratio);
                let draft = self.incident_record(&mut rng, &ctx, t - sec_start, seq, source, failure);
                self.push(&mut out, &mut rng, t, source, draft);
                seq += 1;
            }
        }
        out.sort_by_key(|r| r.event_time_ms);
        out
    }

    fn push(&self, out: &mut Vec<GeneratedRecord>, rng: &mut ChaCha8Rng, t: i64, source: u32, draft: Draft) {
        let send = if rng.gen_bool(LATE_PROBABILITY) { t + rng.gen_range(1..=MAX_LATENESS_MS) } else { t };
        out.push(GeneratedRecord {
            event_time_ms: t,
            send_time_ms: send,
            format: draft.format,
            key: self.nodes.get(source as usize).map(|n| n.hostname.clone()).unwrap_or_default(),
            payload: draft.payload,
            error_code: draft.code,
        });
    }

    /// Whether equipment `e` is hit by an incident at `t` (it then sends only incident records).
    fn is_down(&self, e: usize, t: i64) -> bool {
        self.plans.iter().any(|p| t >= p.start && t < p.end && p.hit.get(e).copied().unwrap_or(false))
    }

    /// A subscriber served by `node` (its own for a CPE): (id, number, port).
    fn subscriber_of<'a>(&'a self, rng: &mut ChaCha8Rng, node: &'a Node) -> (&'a str, u32, &'a str) {
        let cpe = match node.kind {
            EquipmentType::Cpe => Some(node),
            _ => pick(rng, &node.served).or_else(|| pick(rng, &self.all_cpe)).and_then(|&i| self.nodes.get(i as usize)),
        };
        match cpe {
            Some(c) => (&c.subscriber, c.subscriber_no, &c.port),
            None => ("", 0, ""),
        }
    }

    fn session_id(ctx: &Second, seq: u32) -> String {
        format!("{:08X}{:06X}", ctx.index, seq)
    }

    fn syslog_background(&self, rng: &mut ChaCha8Rng, ctx: &Second, offset: i64, seq: u32, source: u32) -> Draft {
        let Some(node) = self.nodes.get(source as usize) else {
            return Draft { payload: Vec::new(), format: Format::Syslog, code: None };
        };
        let failable = match node.kind {
            EquipmentType::Bng => FAILABLE_BNG,
            EquipmentType::Olt => FAILABLE_OLT,
            EquipmentType::Dslam => FAILABLE_DSLAM,
            _ => FAILABLE_CPE,
        };
        let failure = rng.gen_bool((self.failure_ratio * failable).clamp(0.0, 1.0));
        match node.kind {
            EquipmentType::Bng => {
                let event = if failure {
                    weighted(rng, &[(55, BngEvent::AuthReject), (35, BngEvent::LcpTimeout), (10, BngEvent::LinkDown)])
                } else {
                    weighted(
                        rng,
                        &[
                            (45, BngEvent::Start),
                            (45, BngEvent::Stop),
                            (5, BngEvent::LinkUp),
                            (5, BngEvent::ConfigChange),
                        ],
                    )
                };
                self.bng_syslog(rng, ctx, offset, seq, node, event)
            }
            EquipmentType::Olt => {
                let event = if failure {
                    weighted(rng, &[(70, OltEvent::OnuLos), (30, OltEvent::PortDown)])
                } else {
                    weighted(rng, &[(70, OltEvent::OnuUp), (30, OltEvent::ConfigChange)])
                };
                self.olt_syslog(rng, ctx, offset, seq, node, event)
            }
            EquipmentType::Dslam => {
                let m = if failure {
                    Mnemonic::LinkDown
                } else {
                    weighted(rng, &[(50, Mnemonic::DslRetrain), (50, Mnemonic::LinkUp)])
                };
                self.dslam_syslog(rng, ctx, seq, node, m)
            }
            _ => {
                let ftth = node.technology == Technology::Ftth;
                let m = match (failure, ftth) {
                    (true, true) => weighted(
                        rng,
                        &[
                            (40, Mnemonic::DhcpNoOffer),
                            (20, Mnemonic::LinkDown),
                            (25, Mnemonic::GponLos),
                            (15, Mnemonic::DyingGasp),
                        ],
                    ),
                    (true, false) => weighted(
                        rng,
                        &[
                            (20, Mnemonic::DhcpNoOffer),
                            (30, Mnemonic::LcpTimeout),
                            (25, Mnemonic::AuthFail),
                            (25, Mnemonic::LinkDown),
                        ],
                    ),
                    (false, true) => weighted(rng, &[(60, Mnemonic::LinkUp), (40, Mnemonic::Restart)]),
                    (false, false) => {
                        weighted(rng, &[(50, Mnemonic::DslRetrain), (30, Mnemonic::LinkUp), (20, Mnemonic::Restart)])
                    }
                };
                self.cpe_syslog(rng, ctx, seq, node, m)
            }
        }
    }

    fn incident_record(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Second,
        offset: i64,
        seq: u32,
        source: u32,
        failure: bool,
    ) -> Draft {
        let Some(node) = self.nodes.get(source as usize) else {
            return Draft { payload: Vec::new(), format: Format::Syslog, code: None };
        };
        match node.kind {
            EquipmentType::Bng => {
                if !failure {
                    return self.radius_packet(rng, ctx, seq, node, radius::STATUS_START, None);
                }
                match weighted(rng, &[(50u32, 0u8), (35, 1), (15, 2)]) {
                    0 => self.radius_packet(rng, ctx, seq, node, radius::STATUS_STOP, Some(2)),
                    1 => self.bng_syslog(rng, ctx, offset, seq, node, BngEvent::LcpTimeout),
                    _ => self.radius_packet(rng, ctx, seq, node, radius::STATUS_STOP, Some(9)),
                }
            }
            EquipmentType::Olt => {
                let event = if failure {
                    weighted(rng, &[(75, OltEvent::OnuLos), (25, OltEvent::PortDown)])
                } else {
                    OltEvent::OnuUp
                };
                self.olt_syslog(rng, ctx, offset, seq, node, event)
            }
            EquipmentType::Dslam => {
                let m = if failure {
                    Mnemonic::LinkDown
                } else {
                    weighted(rng, &[(50, Mnemonic::DslRetrain), (50, Mnemonic::LinkUp)])
                };
                self.dslam_syslog(rng, ctx, seq, node, m)
            }
            _ => {
                let m = match (failure, node.technology == Technology::Ftth) {
                    (true, true) => {
                        weighted(rng, &[(40, Mnemonic::DhcpNoOffer), (35, Mnemonic::GponLos), (25, Mnemonic::LinkDown)])
                    }
                    (true, false) => weighted(
                        rng,
                        &[(30, Mnemonic::DhcpNoOffer), (40, Mnemonic::LcpTimeout), (30, Mnemonic::LinkDown)],
                    ),
                    (false, _) => weighted(rng, &[(50, Mnemonic::LinkUp), (50, Mnemonic::Restart)]),
                };
                self.cpe_syslog(rng, ctx, seq, node, m)
            }
        }
    }

    fn radius_background(&self, rng: &mut ChaCha8Rng, ctx: &Second, seq: u32, source: u32) -> Draft {
        let Some(node) = self.nodes.get(source as usize) else {
            return Draft { payload: Vec::new(), format: Format::Radius, code: None };
        };
        let status =
            weighted(rng, &[(30, radius::STATUS_START), (50, radius::STATUS_INTERIM), (20, radius::STATUS_STOP)]);
        let cause = (status == radius::STATUS_STOP).then(|| {
            if rng.gen_bool((self.failure_ratio * STOP_FAILURE_SCALE).clamp(0.0, 1.0)) {
                weighted(rng, &[(60, 2), (10, 3), (10, 8), (5, 9), (5, 11), (10, 15)])
            } else {
                weighted(rng, &[(45, 1), (20, 4), (25, 5), (5, 6), (3, 10), (2, 12)])
            }
        });
        self.radius_packet(rng, ctx, seq, node, status, cause)
    }

    fn radius_packet(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Second,
        seq: u32,
        bng: &Node,
        status: u32,
        cause: Option<u32>,
    ) -> Draft {
        let (subscriber, number, _) = self.subscriber_of(rng, bng);
        let mut a = Attributes::with_capacity(160);
        a.octets(radius::USER_NAME, subscriber.as_bytes())
            .address(radius::NAS_IP_ADDRESS, bng.ip)
            .address(
                radius::FRAMED_IP_ADDRESS,
                [100, 64 + ((number >> 16) & 63) as u8, (number >> 8) as u8, number as u8],
            )
            .octets(
                radius::CALLING_STATION_ID,
                format!("02:4c:55:{:02x}:{:02x}:{:02x}", (number >> 16) as u8, (number >> 8) as u8, number as u8)
                    .as_bytes(),
            )
            .octets(radius::NAS_IDENTIFIER, bng.nas.as_bytes())
            .integer(radius::ACCT_STATUS_TYPE, status)
            .octets(radius::ACCT_SESSION_ID, Self::session_id(ctx, seq).as_bytes());
        if status != radius::STATUS_START {
            // Sessions last from minutes to days; traffic averages 0.2 to 40 Mbit/s.
            let session_time: u32 = if status == radius::STATUS_INTERIM {
                rng.gen_range(1..=96) * 900
            } else {
                rng.gen_range(30..=7 * 86_400)
            };
            let down_rate: u64 = rng.gen_range(25_000..5_000_000);
            let output = u64::from(session_time) * down_rate;
            let input = output / rng.gen_range(4..20);
            a.counter64(radius::ACCT_INPUT_OCTETS, radius::ACCT_INPUT_GIGAWORDS, input)
                .counter64(radius::ACCT_OUTPUT_OCTETS, radius::ACCT_OUTPUT_GIGAWORDS, output)
                .integer(radius::ACCT_SESSION_TIME, session_time);
        }
        if let Some(cause) = cause {
            a.integer(radius::ACCT_TERMINATE_CAUSE, cause);
        }
        a.integer(radius::EVENT_TIMESTAMP, ctx.unix);
        Draft {
            payload: a.into_accounting_request(seq as u8, &self.secret),
            format: Format::Radius,
            code: cause.and_then(catalogue::radius_code),
        }
    }

    fn rfc5424(ctx: &Second, offset: i64, host: &str, app: &str, event: Rfc5424<'_>, seq: u32) -> Vec<u8> {
        let mut line = String::with_capacity(200);
        let _ = write!(line, "<{}>1 {}.{:03}Z {} {} - {} ", event.pri, ctx.rfc3339, offset, host, app, event.msgid);
        if event.params.iter().all(|(_, v)| v.is_empty()) {
            line.push('-');
        } else {
            line.push_str("[meta@32473");
            for (k, v) in event.params.iter().filter(|(_, v)| !v.is_empty()) {
                let _ = write!(line, " {k}=\"{v}\"");
            }
            line.push(']');
        }
        let _ = write!(line, " {} seq={}", event.text, seq);
        line.into_bytes()
    }

    fn bng_syslog(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Second,
        offset: i64,
        seq: u32,
        node: &Node,
        event: BngEvent,
    ) -> Draft {
        let (subscriber, _, _) = self.subscriber_of(rng, node);
        let port = format!("ge-0/{}/{}", rng.gen_range(0..4), rng.gen_range(0..24));
        let session = Self::session_id(ctx, seq);
        let (pri, msgid, code, text): (u8, &str, Option<&'static str>, String) = match event {
            BngEvent::Start => (134, "SESSION_START", None, "PPPoE session established".into()),
            BngEvent::Stop => (134, "SESSION_STOP", None, "PPPoE session closed by subscriber".into()),
            BngEvent::AuthReject => (131, "AUTH_REJECT", Some("PPP-AUTHFAIL"), "PPP authentication failed".into()),
            BngEvent::LcpTimeout => {
                (132, "SESSION_STOP", Some("PPP-LCPTIMEOUT"), "PPPoE session closed: LCP echo timeout".into())
            }
            BngEvent::LinkDown => (131, "LINK_DOWN", Some("LINK-DOWN"), format!("interface {port} down")),
            BngEvent::LinkUp => (133, "LINK_UP", Some("LINK-UP"), format!("interface {port} up")),
            BngEvent::ConfigChange => (133, "CONFIG_CHANGE", None, "configuration committed by user netops".into()),
        };
        let with_subscriber = !matches!(event, BngEvent::LinkDown | BngEvent::LinkUp | BngEvent::ConfigChange);
        let params = [
            ("code", code.unwrap_or("")),
            ("subscriber", if with_subscriber { subscriber } else { "" }),
            ("session", if with_subscriber { session.as_str() } else { "" }),
            ("port", port.as_str()),
        ];
        let payload = Self::rfc5424(
            ctx,
            offset,
            &node.hostname,
            "bng",
            Rfc5424 { pri, msgid, params: &params, text: &text },
            seq,
        );
        Draft { payload, format: Format::Syslog, code }
    }

    fn olt_syslog(
        &self,
        rng: &mut ChaCha8Rng,
        ctx: &Second,
        offset: i64,
        seq: u32,
        node: &Node,
        event: OltEvent,
    ) -> Draft {
        let (subscriber, _, onu_port) = self.subscriber_of(rng, node);
        let pon = onu_port.split(':').next().unwrap_or("0/1/0");
        let (pri, msgid, code, text, port, subscriber): (u8, &str, Option<&'static str>, String, &str, &str) =
            match event {
                OltEvent::OnuLos => {
                    (130, "ONU_LOS", Some("GPON-LOS"), format!("ONU {onu_port} loss of signal"), onu_port, subscriber)
                }
                OltEvent::PortDown => (131, "LINK_DOWN", Some("LINK-DOWN"), format!("PON port {pon} down"), pon, ""),
                OltEvent::OnuUp => {
                    (133, "LINK_UP", Some("LINK-UP"), format!("ONU {onu_port} activated"), onu_port, subscriber)
                }
                OltEvent::ConfigChange => (
                    133,
                    "CONFIG_CHANGE",
                    None,
                    format!("ONU {onu_port} service profile updated"),
                    onu_port,
                    subscriber,
                ),
            };
        let params = [("code", code.unwrap_or("")), ("subscriber", subscriber), ("port", port)];
        let payload = Self::rfc5424(
            ctx,
            offset,
            &node.hostname,
            "olt",
            Rfc5424 { pri, msgid, params: &params, text: &text },
            seq,
        );
        Draft { payload, format: Format::Syslog, code }
    }

    fn rfc3164(ctx: &Second, host: &str, seq: u32, m: Mnemonic, text: &str) -> Vec<u8> {
        let (facility, severity, mnemonic, _) = m.parts();
        // local7 (23) * 8 + severity.
        let pri = 184 + u32::from(severity);
        let mut line = String::with_capacity(160);
        let _ = write!(line, "<{pri}>{} {host} {seq}: %{facility}-{severity}-{mnemonic}: {text}", ctx.rfc3164);
        line.into_bytes()
    }

    fn dslam_syslog(&self, rng: &mut ChaCha8Rng, ctx: &Second, seq: u32, node: &Node, m: Mnemonic) -> Draft {
        let (subscriber, _, line) = self.subscriber_of(rng, node);
        let speed = if node.technology == Technology::Adsl {
            rng.gen_range(2_000..18_000)
        } else {
            rng.gen_range(15_000..95_000)
        };
        let text = match m {
            Mnemonic::LinkDown => format!("Line {line} down, loss of signal subscriber={subscriber}"),
            Mnemonic::DslRetrain => format!("Line {line} retrained, downstream {speed} kbps subscriber={subscriber}"),
            _ => format!("Line {line} up, downstream {speed} kbps subscriber={subscriber}"),
        };
        Draft {
            payload: Self::rfc3164(ctx, &node.hostname, seq, m, &text),
            format: Format::Syslog,
            code: Some(m.code()),
        }
    }

    fn cpe_syslog(&self, rng: &mut ChaCha8Rng, ctx: &Second, seq: u32, node: &Node, m: Mnemonic) -> Draft {
        let sub = &node.subscriber;
        let text = match m {
            Mnemonic::DhcpNoOffer => format!("no DHCPOFFER received on wan0 subscriber={sub}"),
            Mnemonic::LcpTimeout => format!("LCP echo request timeout on ppp0 subscriber={sub}"),
            Mnemonic::AuthFail => format!("PPP authentication rejected by peer on ppp0 subscriber={sub}"),
            Mnemonic::LinkDown => format!("Interface wan0 changed state to down subscriber={sub}"),
            Mnemonic::LinkUp => format!("Interface wan0 changed state to up subscriber={sub}"),
            Mnemonic::DslRetrain => {
                format!("DSL line retrained, downstream {} kbps subscriber={sub}", rng.gen_range(2_000..95_000))
            }
            Mnemonic::Restart => format!(
                "System restarted, firmware 4.{}.{} subscriber={sub}",
                rng.gen_range(1..9),
                rng.gen_range(0..30)
            ),
            Mnemonic::GponLos => format!("Loss of signal on PON interface subscriber={sub}"),
            Mnemonic::DyingGasp => format!("Dying gasp: power supply lost subscriber={sub}"),
        };
        Draft {
            payload: Self::rfc3164(ctx, &node.hostname, seq, m, &text),
            format: Format::Syslog,
            code: Some(m.code()),
        }
    }

    /// The start of simulated second `s` (ms since the epoch).
    pub fn second_start_ms(&self, s: u64) -> i64 {
        self.second_start(s)
    }
}

struct Rfc5424<'a> {
    pri: u8,
    msgid: &'a str,
    params: &'a [(&'a str, &'a str)],
    text: &'a str,
}

#[derive(Debug, Clone, Copy)]
enum BngEvent {
    Start,
    Stop,
    AuthReject,
    LcpTimeout,
    LinkDown,
    LinkUp,
    ConfigChange,
}

#[derive(Debug, Clone, Copy)]
enum OltEvent {
    OnuLos,
    PortDown,
    OnuUp,
    ConfigChange,
}

/// The Cisco-style messages of DSLAMs and CPE.
#[derive(Debug, Clone, Copy)]
enum Mnemonic {
    DhcpNoOffer,
    LcpTimeout,
    AuthFail,
    LinkDown,
    LinkUp,
    DslRetrain,
    Restart,
    GponLos,
    DyingGasp,
}

impl Mnemonic {
    /// (facility, severity, mnemonic, catalogue code).
    fn parts(self) -> (&'static str, u8, &'static str, &'static str) {
        match self {
            Mnemonic::DhcpNoOffer => ("DHCP", 3, "NOOFFER", "DHCP-NOOFFER"),
            Mnemonic::LcpTimeout => ("PPP", 3, "LCPTIMEOUT", "PPP-LCPTIMEOUT"),
            Mnemonic::AuthFail => ("PPP", 4, "AUTHFAIL", "PPP-AUTHFAIL"),
            Mnemonic::LinkDown => ("LINK", 3, "DOWN", "LINK-DOWN"),
            Mnemonic::LinkUp => ("LINK", 5, "UP", "LINK-UP"),
            Mnemonic::DslRetrain => ("DSL", 4, "RETRAIN", "DSL-RETRAIN"),
            Mnemonic::Restart => ("SYS", 5, "RESTART", "SYS-RESTART"),
            Mnemonic::GponLos => ("GPON", 2, "LOS", "GPON-LOS"),
            Mnemonic::DyingGasp => ("GPON", 1, "DYINGGASP", "GPON-DYINGGASP"),
        }
    }

    fn code(self) -> &'static str {
        self.parts().3
    }
}

/// Records grouped by the simulated second in which the equipment sends them (late records
/// included), as a live source needs them. Starting at any second gives the same batches as a
/// run that got there from second 0.
pub struct Schedule {
    next: u64,
    pending: Vec<GeneratedRecord>,
}

impl Schedule {
    /// A schedule whose first batch is second `from_second`.
    pub fn new(traffic: &Traffic, from_second: u64) -> Schedule {
        let boundary = traffic.second_start(from_second);
        let mut pending = Vec::new();
        for s in from_second.saturating_sub(2)..from_second {
            pending.extend(traffic.second(s).into_iter().filter(|r| r.send_time_ms >= boundary));
        }
        Schedule { next: from_second, pending }
    }

    /// The second the next batch is for.
    pub fn next_second(&self) -> u64 {
        self.next
    }

    /// The records sent during simulated second `next_second()`, in sending order; advances.
    pub fn next_batch(&mut self, traffic: &Traffic) -> (u64, Vec<GeneratedRecord>) {
        let s = self.next;
        self.next = s.saturating_add(1);
        self.pending.extend(traffic.second(s));
        let end = traffic.second_start(s.saturating_add(1));
        self.pending.sort_by_key(|r| r.send_time_ms);
        let split = self.pending.partition_point(|r| r.send_time_ms < end);
        let rest = self.pending.split_off(split);
        let batch = std::mem::replace(&mut self.pending, rest);
        (s, batch)
    }

    /// The late records still pending (sent after the last batch), in sending order.
    pub fn drain(self) -> Vec<GeneratedRecord> {
        self.pending
    }
}
