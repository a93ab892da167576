//! Hand-built enriched events whose QoE indicators are known, shared by the tests.

#![allow(dead_code)]

use lux_model::{
    EnrichedEvent, EquipmentInfo, ErrorInfo, Event, EventKind, MaintenanceInfo, Outcome, ReferenceInfo, ReferenceStatus,
};
use std::sync::Arc;

/// 2026-01-05T10:00:00Z.
pub const T0: i64 = 1_767_607_200_000;
pub const MIN: i64 = 60_000;

pub fn equipment(id: &str, site: &str) -> Arc<EquipmentInfo> {
    Arc::new(EquipmentInfo {
        equipment_id: id.into(),
        equipment_type: "bng".into(),
        model: "MX480".into(),
        manufacturer: "Juniper".into(),
        site: site.into(),
        region: "IDF".into(),
        technology: "core".into(),
    })
}

pub fn error(code: &str) -> Arc<ErrorInfo> {
    let (failure, drop) = match code {
        "RADIUS-TC-1" => (false, false),
        "RADIUS-TC-2" => (true, true),
        "RADIUS-TC-6" => (false, true),
        _ => (true, false),
    };
    Arc::new(ErrorInfo {
        code: code.into(),
        label: code.into(),
        category: if drop { "network" } else { "customer" }.into(),
        severity: "major".into(),
        is_failure: failure,
        is_drop: drop,
        customer_impacting: true,
    })
}

/// An enriched event of `eq` at `t`: `kind`, an error `code`, a `subscriber`, a session
/// `duration` (seconds), and whether an intervention excludes it from the KPIs.
pub struct E<'a> {
    t: i64,
    eq: &'a Arc<EquipmentInfo>,
    kind: EventKind,
    code: Option<&'static str>,
    sub: Option<&'static str>,
    duration: Option<u64>,
    excluded: bool,
}

pub fn ev(t: i64, eq: &Arc<EquipmentInfo>, kind: EventKind) -> E<'_> {
    E { t, eq, kind, code: None, sub: None, duration: None, excluded: false }
}

impl E<'_> {
    pub fn code(self, code: &'static str) -> Self {
        E { code: Some(code), ..self }
    }
    pub fn sub(self, sub: &'static str) -> Self {
        E { sub: Some(sub), ..self }
    }
    pub fn duration(self, seconds: u64) -> Self {
        E { duration: Some(seconds), ..self }
    }
    pub fn excluded(self) -> Self {
        E { excluded: true, ..self }
    }

    pub fn build(&self) -> EnrichedEvent {
        let mut event = Event {
            event_id: format!("id-{}", self.t).as_str().into(),
            event_time: self.t,
            received_at: self.t,
            equipment_id: self.eq.equipment_id.as_str().into(),
            kind: self.kind,
            outcome: if self.kind == EventKind::AuthReject { Outcome::Failure } else { Outcome::Info },
            error_code: self.code.map(Into::into),
            subscriber: self.sub.map(Into::into),
            ..Event::default()
        };
        if let Some(d) = self.duration {
            event.attributes.insert("Acct-Session-Time", serde_json::json!(d));
        }
        let error = self.code.map(error);
        EnrichedEvent {
            schema: lux_model::schema::ENRICHED.into(),
            is_failure: error.as_ref().map_or(self.kind == EventKind::AuthReject, |e| e.is_failure),
            event,
            equipment: Some(self.eq.clone()),
            error,
            maintenance: self.excluded.then(|| {
                Arc::new(MaintenanceInfo {
                    intervention_id: "INT-1".into(),
                    kind: "planned".into(),
                    scope: "equipment".into(),
                    suppress_alarms: true,
                    exclude_from_kpi: true,
                })
            }),
            reference: ReferenceInfo { status: ReferenceStatus::Ok, version: "v1".into() },
        }
    }
}

/// The input: equipment A and B on site S1, C on site S2, all in region IDF (same model), over
/// minutes 0 and 1, then one event per partition in minute 2 that closes them.
pub fn input() -> Vec<(u32, EnrichedEvent)> {
    let (a, b, c) = (equipment("A", "S1"), equipment("B", "S1"), equipment("C", "S2"));
    use EventKind::*;
    let events: Vec<(u32, E<'_>)> = vec![
        // Minute 0.
        (0, ev(T0 + 1_000, &a, SessionStart).sub("a1")),
        (0, ev(T0 + 2_000, &a, SessionStart).sub("a2")),
        (0, ev(T0 + 3_000, &a, SessionStart).sub("a3")),
        (0, ev(T0 + 4_000, &a, AuthReject).code("PPP-AUTHFAIL").sub("a4")),
        (0, ev(T0 + 5_000, &a, SessionStop).code("RADIUS-TC-2").sub("a1").duration(30)),
        (0, ev(T0 + 6_000, &a, SessionStop).code("RADIUS-TC-1").sub("a2").duration(600)),
        (0, ev(T0 + 7_000, &a, DhcpFailure).code("DHCP-NOOFFER").sub("a5")),
        (1, ev(T0 + 8_000, &b, SessionStart).sub("b1")),
        (1, ev(T0 + 9_000, &b, SessionStop).code("RADIUS-TC-2").sub("b1").duration(5)),
        (1, ev(T0 + 10_000, &b, SessionStart).sub("b2").excluded()),
        (1, ev(T0 + 11_000, &b, SessionStop).code("RADIUS-TC-2").sub("b2").duration(7).excluded()),
        (2, ev(T0 + 12_000, &c, AuthReject)),
        // Minute 1.
        (0, ev(T0 + MIN + 1_000, &a, SessionStart).sub("a6")),
        (2, ev(T0 + MIN + 2_000, &c, SessionStop).code("RADIUS-TC-6").sub("c1").duration(100_000)),
        // Minute 2, which stays open: each partition's watermark passes the end of minute 1.
        (0, ev(T0 + 2 * MIN + 10_000, &a, LinkUp)),
        (1, ev(T0 + 2 * MIN + 10_000, &b, LinkUp)),
        (2, ev(T0 + 2 * MIN + 10_000, &c, LinkUp)),
    ];
    events.iter().map(|(p, e)| (*p, e.build())).collect()
}
