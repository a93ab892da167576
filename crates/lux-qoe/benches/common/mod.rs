//! The events of the QoE benchmark and profile: 200,000 enriched events, RADIUS-like (starts,
//! stops and rejects with a RADIUS accounting event's attributes and message), on 5,000
//! equipment on 500 sites in 10 regions, 1 ms apart in event time over 3 partitions.

use lux_model::{EnrichedEvent, EquipmentInfo, ErrorInfo, Event, EventKind, Outcome, ReferenceInfo, ReferenceStatus};
use lux_qoe::QoeEngine;
use std::borrow::Cow;
use std::sync::Arc;

pub const EQUIPMENT: usize = 5_000;
pub const EVENTS: usize = 200_000;
pub const T0: i64 = 1_767_607_200_000;
/// Events between `advance` calls, as the stage runner's batches.
pub const BATCH: usize = 1_000;

/// Feeds `items` to `engine` as the stage does, each made an event by `event` (a read, or
/// none): `advance` after every `BATCH` of them and, with `state`, the changed cells' state
/// entries taken after it. Returns how many indicators and entries that made.
pub fn drive<'a, T>(
    engine: &mut QoeEngine,
    items: &'a [(u32, T)],
    event: impl Fn(&'a T) -> Cow<'a, EnrichedEvent>,
    state: bool,
) -> usize {
    let mut written = 0;
    for batch in items.chunks(BATCH) {
        for (partition, item) in batch {
            engine.on_event(*partition, &event(item), 0);
        }
        written += engine.advance(0).len();
        if state {
            written += engine.take_changes().len();
        }
    }
    written
}

pub fn make_events() -> Vec<(u32, EnrichedEvent)> {
    let equipment: Vec<Arc<EquipmentInfo>> = (0..EQUIPMENT)
        .map(|i| {
            Arc::new(EquipmentInfo {
                equipment_id: format!("eq-{i:05}"),
                equipment_type: "bng".into(),
                model: format!("model-{}", i % 20),
                manufacturer: format!("maker-{}", i % 5),
                site: format!("site-{:03}", i % 500),
                region: format!("region-{}", i % 10),
                technology: "ftth".into(),
            })
        })
        .collect();
    let drop = Arc::new(ErrorInfo {
        code: "RADIUS-TC-2".into(),
        label: "Lost-Carrier".into(),
        category: "network".into(),
        severity: "major".into(),
        is_failure: true,
        is_drop: true,
        customer_impacting: true,
    });
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..EVENTS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let eq = &equipment[state as usize % EQUIPMENT];
            let kind = [EventKind::SessionStart, EventKind::SessionStop, EventKind::AuthReject][i % 3];
            let time = T0 + i as i64 - (state % 2_000) as i64;
            let mut event = Event {
                event_id: format!("{i}").as_str().into(),
                event_time: time,
                received_at: time,
                equipment_id: eq.equipment_id.as_str().into(),
                kind,
                outcome: if kind == EventKind::AuthReject { Outcome::Failure } else { Outcome::Info },
                subscriber: Some(format!("sub-{}", state % 100_000).as_str().into()),
                ..Event::default()
            };
            // Attributes and a message as a RADIUS accounting event has them (read by the
            // `read` group; the engine uses only the session time of stops).
            event.attributes.insert("radius.acct_session_id", format!("{state:016x}"));
            event.attributes.insert("radius.framed_ip_address", format!("10.{}.{}.{}", i % 200, i % 250, i % 254));
            event.attributes.insert("radius.nas_port", serde_json::json!(state % 4_096));
            event.attributes.insert("radius.nas_port_type", "Ethernet");
            event.attributes.insert("radius.service_type", "Framed-User");
            if kind == EventKind::SessionStop {
                event.attributes.insert("Acct-Session-Time", serde_json::json!(state % 7_200));
                event.attributes.insert("radius.acct_input_octets", serde_json::json!(state % 1_000_000_007));
                event.attributes.insert("radius.acct_output_octets", serde_json::json!(state % 4_000_000_007));
            }
            event.message = Some(format!("Accounting {kind:?} from eq-{:05}", state as usize % EQUIPMENT));
            let stop_drop = kind == EventKind::SessionStop && state % 4 == 0;
            let enriched = EnrichedEvent {
                schema: lux_model::schema::ENRICHED.into(),
                is_failure: kind == EventKind::AuthReject || stop_drop,
                event,
                equipment: Some(eq.clone()),
                error: stop_drop.then(|| drop.clone()),
                maintenance: None,
                reference: ReferenceInfo { status: ReferenceStatus::Ok, version: "v1".into() },
            };
            ((i % 3) as u32, enriched)
        })
        .collect()
}
