//! The transform stage on hand-fed records: good input is enriched and keyed by equipment, bad
//! input becomes dead letters with typed reasons, the original bytes and the offset they came from.

use lux_log::StoredRecord;
use lux_model::{DeadLetter, EnrichedEvent, Format, RawRecord, ReferenceStatus};
use lux_reference::{ReferenceHandle, Snapshot};
use lux_stage::{Context, Processor};
use lux_transform::{TransformConfig, TransformStage, TransformTopics};

fn stored(offset: u64, value: Vec<u8>) -> StoredRecord {
    StoredRecord {
        topic: "raw".into(),
        partition: 1,
        offset,
        key: Some(b"k".to_vec()),
        timestamp_ms: 0,
        value,
        decoded: None,
    }
}

fn raw(format: Format, payload: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&RawRecord::new("demo", format, 1_767_571_200_000, None, payload.to_vec())).unwrap()
}

/// The demo network, the generator's settings and start, and a transform stage joining with
/// the demo referential, as `lux run` uses it.
fn demo() -> (lux_generate::Network, lux_generate::GeneratorConfig, i64, TransformStage) {
    let cfg = lux_generate::GeneratorConfig::default();
    let start = cfg.start_ms().unwrap();
    let network = lux_generate::Network::generate_at(&cfg, start).unwrap();
    let dir = tempfile::tempdir().unwrap();
    network.write_csv(dir.path()).unwrap();
    let snapshot = ReferenceHandle::fixed(Snapshot::load_csv_dir(dir.path()).unwrap());
    let topics = TransformTopics { raw: "raw".into(), enriched: "enriched".into(), deadletter: "deadletter".into() };
    let stage = TransformStage::new(&TransformConfig::default(), b"0123456789abcdef", snapshot, topics);
    (network, cfg, start, stage)
}

#[test]
fn enriches_good_records_and_dead_letters_bad_ones_with_their_reason() {
    let (network, cfg, start, mut stage) = demo();
    let traffic = lux_generate::Traffic::new(&network, &cfg, start).unwrap();
    let records = traffic.second(3);
    assert!(records.len() > 100);

    let mut ctx = Context::default();
    for (i, record) in records.iter().enumerate() {
        stage.process(&stored(i as u64, raw(record.format, &record.payload)), &mut ctx).unwrap();
    }
    let n = records.len() as u64;
    stage.process(&stored(n, b"not json at all".to_vec()), &mut ctx).unwrap();
    stage.process(&stored(n + 1, raw(Format::Radius, &[4, 1, 0])), &mut ctx).unwrap();
    stage.process(&stored(n + 2, raw(Format::Syslog, b"\xff\xfe garbage")), &mut ctx).unwrap();

    let enriched: Vec<EnrichedEvent> = ctx
        .outputs()
        .iter()
        .filter(|o| o.topic == "enriched")
        .map(|o| serde_json::from_slice(&o.value).unwrap())
        .collect();
    assert_eq!(enriched.len(), records.len(), "one event per generated record");
    for (event, out) in enriched.iter().zip(ctx.outputs().iter().filter(|o| o.topic == "enriched")) {
        assert_eq!(event.reference.status, ReferenceStatus::Ok, "{event:?}");
        assert_eq!(out.key, event.equipment_key().as_bytes(), "keyed by equipment");
        assert_eq!(out.timestamp_ms, event.event.event_time, "stamped with event time");
    }
    let dead: Vec<DeadLetter> = ctx
        .outputs()
        .iter()
        .filter(|o| o.topic == "deadletter")
        .map(|o| serde_json::from_slice(&o.value).unwrap())
        .collect();
    assert_eq!(dead.len(), 3);
    assert_eq!(dead[0].reason.as_str(), "bad_record");
    assert_eq!(dead[0].payload.0, b"not json at all");
    assert_eq!(dead[0].origin, format!("raw/1/{n}"));
    assert_eq!(dead[1].reason.as_str(), "truncated");
    assert_eq!(dead[1].payload.0, vec![4, 1, 0], "the original bytes are kept");
    assert_eq!(dead[1].source.as_deref(), Some("demo"));
    assert!(!dead[2].detail.is_empty());
    let counters = stage.counters();
    let total: u64 = counters.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 3);
    assert!(counters.contains(&("dead_letters.truncated".to_owned(), 1)), "{counters:?}");
}

/// The enriched records are written by hand (`EnrichedRecord::write_json`): each is, byte for
/// byte, what serde_json writes of the event read back from it, over a minute of the demo's
/// traffic (every format, kind and attribute the generator makes).
#[test]
fn enriched_records_are_the_json_serde_writes() {
    let (network, cfg, start, mut stage) = demo();
    let traffic = lux_generate::Traffic::new(&network, &cfg, start).unwrap();
    let mut ctx = Context::default();
    let mut formats = std::collections::BTreeSet::new();
    let mut offset = 0;
    for second in 0..60 {
        for record in traffic.second(second) {
            formats.insert(format!("{:?}", record.format));
            stage.process(&stored(offset, raw(record.format, &record.payload)), &mut ctx).unwrap();
            offset += 1;
        }
    }
    let (mut checked, mut kinds, mut with_attributes) = (0, std::collections::BTreeSet::new(), 0);
    for out in ctx.outputs().iter().filter(|o| o.topic == "enriched") {
        let event: EnrichedEvent = serde_json::from_slice(&out.value).unwrap();
        let again = serde_json::to_vec(&event).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.value), String::from_utf8_lossy(&again));
        kinds.insert(event.event.kind);
        with_attributes += usize::from(!event.event.attributes.is_empty());
        checked += 1;
    }
    assert!(checked > 10_000 && with_attributes > 1_000, "{checked} records, {with_attributes} with attributes");
    assert!(formats.len() >= 2 && kinds.len() >= 10, "{formats:?} {kinds:?}");
}
