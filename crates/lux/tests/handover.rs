//! The `enriched` events the transform stage hands, decoded, to the alarm and QoE stages of its
//! process (`lux_log::Decoded`, kept by the embedded log) change nothing: over two minutes of
//! the demo's traffic, with its incident, each decoded event is the one its JSON holds but its
//! message and attributes (`SkimmedEvent`), and both stages write the same records, byte for
//! byte, from the decoded events as from the JSON.

use lux_alarm::stage::{AlarmRouteStage, AlarmTopics};
use lux_alarm::AlarmConfig;
use lux_log::embedded::EmbeddedLog;
use lux_log::{partition_for_key, Durability, OutputRecord, StoredRecord};
use lux_model::{EnrichedEvent, EventKind, RawRecord, SkimmedEvent};
use lux_qoe::stage::{QoeStage, QoeTopics};
use lux_qoe::QoeConfig;
use lux_reference::{ReferenceHandle, Snapshot};
use lux_stage::{Context, Processor};
use lux_transform::{TransformConfig, TransformStage, TransformTopics};

const PARTITIONS: u32 = 3;
/// The wall clock of every step: the same for both runs of a stage.
const NOW: i64 = 1_767_657_600_000;

/// The enriched records of two minutes of demo traffic, made by the transform stage in a
/// context whose log keeps decoded forms, as `lux run`'s does.
fn enriched() -> Vec<OutputRecord> {
    let cfg = lux_generate::GeneratorConfig::default();
    let start = cfg.start_ms().unwrap();
    let network = lux_generate::Network::generate_at(&cfg, start).unwrap();
    let dir = tempfile::tempdir().unwrap();
    network.write_csv(dir.path()).unwrap();
    let snapshot = ReferenceHandle::fixed(Snapshot::load_csv_dir(dir.path()).unwrap());
    let topics = TransformTopics { raw: "raw".into(), enriched: "enriched".into(), deadletter: "deadletter".into() };
    let mut stage = TransformStage::new(&TransformConfig::default(), b"0123456789abcdef", snapshot, topics);
    let log = EmbeddedLog::open(&dir.path().join("data"), Durability::Group).unwrap();
    let mut ctx = Context::for_log(&log);
    assert!(ctx.keeps_decoded(), "the embedded log keeps decoded forms for its own process");
    let traffic = lux_generate::Traffic::new(&network, &cfg, start).unwrap();
    let mut offset = 0;
    for second in 0..120 {
        for record in traffic.second(second) {
            let raw = RawRecord::new("demo", record.format, start + second as i64 * 1000, None, record.payload);
            let value = serde_json::to_vec(&raw).unwrap();
            let stored = StoredRecord {
                topic: "raw".into(),
                partition: 0,
                offset,
                key: None,
                timestamp_ms: 0,
                value,
                decoded: None,
            };
            stage.process(&stored, &mut ctx).unwrap();
            offset += 1;
        }
    }
    ctx.outputs().iter().filter(|o| o.topic == "enriched").cloned().collect()
}

/// The records as a reader of the `enriched` topic gets them: partitioned by key, with their
/// decoded forms or without.
fn as_read(outputs: &[OutputRecord], decoded: bool) -> Vec<StoredRecord> {
    let mut next = [0u64; PARTITIONS as usize];
    outputs
        .iter()
        .map(|out| {
            let partition = partition_for_key(&out.key, PARTITIONS);
            let offset = next[partition as usize];
            next[partition as usize] += 1;
            StoredRecord {
                topic: out.topic.clone(),
                partition,
                offset,
                key: Some(out.key.clone()),
                timestamp_ms: out.timestamp_ms,
                value: out.value.clone(),
                decoded: if decoded { out.decoded.clone() } else { None },
            }
        })
        .collect()
}

/// What a stage writes from `records`, in batches of 1,000, then once idle.
fn written(mut stage: impl Processor, records: &[StoredRecord]) -> Vec<(String, Vec<u8>, i64, Vec<u8>)> {
    let mut ctx = Context::default();
    ctx.now_wall_ms = NOW;
    for batch in records.chunks(1_000) {
        stage.process_batch(batch, &mut ctx).unwrap();
        stage.end_batch(&mut ctx).unwrap();
    }
    stage.end_batch(&mut ctx).unwrap();
    ctx.outputs().iter().map(|o| (o.topic.clone(), o.key.clone(), o.timestamp_ms, o.value.clone())).collect()
}

#[test]
fn the_alarm_and_qoe_stages_write_the_same_from_decoded_events_as_from_their_json() {
    let enriched = enriched();
    assert!(enriched.len() > 20_000, "{} records", enriched.len());
    let (mut formats, mut session_stops) = (std::collections::BTreeSet::new(), 0);
    for out in &enriched {
        let decoded = out.decoded.as_ref().expect("every enriched record has its decoded form");
        let decoded: &SkimmedEvent = decoded.get().expect("a SkimmedEvent");
        let parsed: EnrichedEvent = serde_json::from_slice(&out.value).unwrap();
        assert_eq!(decoded, &SkimmedEvent::from(parsed), "{}", String::from_utf8_lossy(&out.value));
        formats.insert(decoded.0.event.format.as_str());
        session_stops += usize::from(decoded.0.event.kind == EventKind::SessionStop);
    }
    // The QoE stage reads the attributes of session stops from the JSON.
    assert!(formats.len() >= 2 && session_stops > 1_000, "{formats:?}, {session_stops} session stops");

    let (with, without) = (as_read(&enriched, true), as_read(&enriched, false));
    let qoe = || {
        let topics = QoeTopics { enriched: "enriched".into(), qoe: "qoe".into(), deadletter: "deadletter".into() };
        QoeStage::new(&QoeConfig::default(), PARTITIONS, topics).unwrap().bounded()
    };
    let from_decoded = written(qoe(), &with);
    assert!(from_decoded.iter().filter(|o| o.0 == "qoe").count() > 100, "{} indicators", from_decoded.len());
    assert!(from_decoded == written(qoe(), &without), "the QoE stage wrote other indicators from the decoded events");

    let route = || {
        let topics = AlarmTopics {
            enriched: "enriched".into(),
            routed: "alarm-routed".into(),
            alarms: "alarms".into(),
            deadletter: "deadletter".into(),
            late: "late".into(),
        };
        AlarmRouteStage::new(&AlarmConfig::default(), PARTITIONS, topics).unwrap()
    };
    let from_decoded = written(route(), &with);
    assert!(from_decoded.iter().filter(|o| o.0 == "alarm-routed").count() > 1_000, "{} routed", from_decoded.len());
    assert!(from_decoded == written(route(), &without), "the alarm route wrote other records from the decoded events");
}
