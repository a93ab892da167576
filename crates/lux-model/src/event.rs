//! Decoded events (`Event`) and events joined with reference data (`EnrichedEvent`, the records
//! of the `enriched` topic).

use crate::attributes::Attributes;
use crate::text::SmallStr;
use crate::time::{rfc3339, Millis};
use crate::Format;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

/// What happened, in the operator's vocabulary. New kinds may be added in later schema versions;
/// consumers should treat an unknown kind as `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    SessionStart,
    SessionInterim,
    SessionStop,
    AuthAccept,
    AuthReject,
    LinkUp,
    LinkDown,
    LinkRetrain,
    OpticalLos,
    PowerLoss,
    DhcpFailure,
    PppFailure,
    ConfigChange,
    Reboot,
    Other,
}

impl EventKind {
    pub const ALL: [EventKind; 15] = [
        EventKind::SessionStart,
        EventKind::SessionInterim,
        EventKind::SessionStop,
        EventKind::AuthAccept,
        EventKind::AuthReject,
        EventKind::LinkUp,
        EventKind::LinkDown,
        EventKind::LinkRetrain,
        EventKind::OpticalLos,
        EventKind::PowerLoss,
        EventKind::DhcpFailure,
        EventKind::PppFailure,
        EventKind::ConfigChange,
        EventKind::Reboot,
        EventKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SessionStart => "session_start",
            EventKind::SessionInterim => "session_interim",
            EventKind::SessionStop => "session_stop",
            EventKind::AuthAccept => "auth_accept",
            EventKind::AuthReject => "auth_reject",
            EventKind::LinkUp => "link_up",
            EventKind::LinkDown => "link_down",
            EventKind::LinkRetrain => "link_retrain",
            EventKind::OpticalLos => "optical_los",
            EventKind::PowerLoss => "power_loss",
            EventKind::DhcpFailure => "dhcp_failure",
            EventKind::PppFailure => "ppp_failure",
            EventKind::ConfigChange => "config_change",
            EventKind::Reboot => "reboot",
            EventKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Whether the event reports something that worked, something that failed, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    /// Informational: neither a success nor a failure as far as the decoder can tell (the error
    /// catalogue may still classify the event's error code as a failure).
    Info,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Info => "info",
        }
    }
}

/// Which identifier in the raw record named the equipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EquipmentKey {
    Hostname,
    NasIdentifier,
    NasIpAddress,
    IpAddress,
    Field,
}

impl EquipmentKey {
    pub fn as_str(self) -> &'static str {
        match self {
            EquipmentKey::Hostname => "hostname",
            EquipmentKey::NasIdentifier => "nas_identifier",
            EquipmentKey::NasIpAddress => "nas_ip_address",
            EquipmentKey::IpAddress => "ip_address",
            EquipmentKey::Field => "field",
        }
    }
}

/// An event decoded from a raw record, before enrichment.
///
/// Its short text fields are [`SmallStr`]s (in place up to 32 bytes, deref to `&str`) and its
/// attributes a sorted vector: decoding an event allocates little. The JSON is that of plain
/// strings and a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Deterministic id: the same raw bytes always give the same id ([`crate::event_id`]).
    pub event_id: SmallStr,
    /// When it happened, by the equipment's clock (event time), UTC.
    #[serde(with = "rfc3339")]
    pub event_time: Millis,
    /// When LUX received the raw record (wall clock), UTC.
    #[serde(with = "rfc3339")]
    pub received_at: Millis,
    /// The source id of the collector that received it.
    pub source: SmallStr,
    /// The format it was decoded from.
    pub format: Format,
    /// The equipment's identifier as found in the record (hostname, NAS-Identifier, ...).
    pub equipment_id: SmallStr,
    /// Which identifier `equipment_id` is.
    pub equipment_key: EquipmentKey,
    pub kind: EventKind,
    pub outcome: Outcome,
    /// The equipment's error or cause code, namespaced by source type (`RADIUS-TC-2`,
    /// `DHCP-NOOFFER`, ...), when the record carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<SmallStr>,
    /// The subscriber, pseudonymised with a keyed hash (never the clear identifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<SmallStr>,
    /// Free text of the record, when it has some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Every other field the decoder found (syslog structured data, RADIUS attributes, ...).
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

impl Default for Event {
    /// An empty event, to decode records into (`lux_decode::Decoder::decode_event`).
    fn default() -> Self {
        Event {
            event_id: SmallStr::default(),
            event_time: 0,
            received_at: 0,
            source: SmallStr::default(),
            format: Format::Auto,
            equipment_id: SmallStr::default(),
            equipment_key: EquipmentKey::Hostname,
            kind: EventKind::Other,
            outcome: Outcome::Info,
            error_code: None,
            subscriber: None,
            message: None,
            attributes: Attributes::default(),
        }
    }
}

impl Event {
    /// A copy of the event but its message and attributes, left `None` and empty (see
    /// [`SkimmedEvent`]): its other fields are held in place, so it allocates nothing.
    pub fn skim(&self) -> Event {
        Event {
            event_id: self.event_id.clone(),
            event_time: self.event_time,
            received_at: self.received_at,
            source: self.source.clone(),
            format: self.format,
            equipment_id: self.equipment_id.clone(),
            equipment_key: self.equipment_key,
            kind: self.kind,
            outcome: self.outcome,
            error_code: self.error_code.clone(),
            subscriber: self.subscriber.clone(),
            message: None,
            attributes: Attributes::default(),
        }
    }
}

/// An `enriched` event but its message and attributes (left `None` and empty): the form in
/// which the transform stage hands its events to the alarm and QoE stages of its own process
/// (`lux_log::Decoded`), so that they need not parse the records' JSON. The two fields left out
/// are those that cost to copy, and few readers need them (the QoE stage reads the duration of
/// session stops): such a reader reads the record's JSON instead.
#[derive(Debug, Clone, PartialEq)]
pub struct SkimmedEvent(pub EnrichedEvent);

impl From<EnrichedEvent> for SkimmedEvent {
    /// The event with its message and attributes dropped.
    fn from(mut event: EnrichedEvent) -> SkimmedEvent {
        event.event.message = None;
        event.event.attributes = Attributes::default();
        SkimmedEvent(event)
    }
}

/// The equipment an event was joined with, as it was at the event's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquipmentInfo {
    /// The inventory's id of the equipment.
    pub equipment_id: String,
    /// `bng`, `olt`, `dslam`, `cpe`, `radius`, ...
    pub equipment_type: String,
    pub model: String,
    pub manufacturer: String,
    pub site: String,
    pub region: String,
    /// `ftth`, `vdsl`, `adsl`, `core`, ...
    pub technology: String,
}

/// The meaning of the event's error code, from the error-code catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    pub label: String,
    /// `network`, `customer`, `equipment`, `service`, ...
    pub category: String,
    /// `critical`, `major`, `minor`, `warning`, `info`.
    pub severity: String,
    pub is_failure: bool,
    /// Whether the code ends a session abnormally (a drop).
    pub is_drop: bool,
    pub customer_impacting: bool,
}

/// The intervention (planned works, repair) covering the equipment at the event's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceInfo {
    pub intervention_id: String,
    /// `planned`, `corrective`, ...
    pub kind: String,
    /// `equipment`, `site` or `region`: what the intervention covers.
    pub scope: String,
    /// Whether alarms on the covered equipment are suppressed during the intervention.
    pub suppress_alarms: bool,
    /// Whether events during the intervention are excluded from QoE indicators.
    pub exclude_from_kpi: bool,
}

/// How the join with the reference data went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceStatus {
    /// Equipment found, and error code (if any) found.
    Ok,
    /// No equipment in the inventory matches `equipment_id` at the event time. The event is kept.
    UnknownEquipment,
    /// The equipment is known but the error code is not in the catalogue. The event is kept.
    UnknownErrorCode,
    /// Neither the equipment nor the error code is known.
    UnknownEquipmentAndErrorCode,
}

impl ReferenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceStatus::Ok => "ok",
            ReferenceStatus::UnknownEquipment => "unknown_equipment",
            ReferenceStatus::UnknownErrorCode => "unknown_error_code",
            ReferenceStatus::UnknownEquipmentAndErrorCode => "unknown_equipment_and_error_code",
        }
    }
}

/// Which reference data the event was joined with, so that results can be audited and replays
/// reproduced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceInfo {
    pub status: ReferenceStatus,
    /// The version of the reference-data snapshot (a content hash), shared with the snapshot.
    pub version: Arc<str>,
}

/// A decoded event joined with reference data: the records of the `enriched` topic.
///
/// Serialised with the event's fields at the top level (`flatten`); read back through
/// `EnrichedWire`, which lists them at one level, because a flattened field makes serde
/// buffer every field of the record before reading it (a third of the alarm stage's time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "FullWire")]
pub struct EnrichedEvent {
    /// Always [`crate::schema::ENRICHED`] (borrowed: enriching an event allocates no string for it).
    pub schema: std::borrow::Cow<'static, str>,
    #[serde(flatten)]
    pub event: Event,
    /// Whether this event counts as a failure: the error catalogue's `is_failure` when the code
    /// is known, else `outcome == failure`.
    pub is_failure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Shared (`Arc`) with the reference snapshot: enriching an event copies no strings.
    pub equipment: Option<Arc<EquipmentInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Arc<ErrorInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Arc<MaintenanceInfo>>,
    #[serde(rename = "ref")]
    pub reference: ReferenceInfo,
}

/// An `enriched` record as it is read: [`EnrichedEvent`]'s fields and its event's at one level,
/// with the same names and formats. Unknown fields are ignored (records of a newer LUX). The
/// event's id, subscriber, message and attributes are of types of the reader's choosing:
/// [`FullWire`] reads them, [`SkimWire`] skips them unparsed.
#[derive(Deserialize)]
struct EnrichedWire<Id, Text, Message, Attrs> {
    schema: std::borrow::Cow<'static, str>,
    event_id: Id,
    #[serde(with = "rfc3339")]
    event_time: Millis,
    #[serde(with = "rfc3339")]
    received_at: Millis,
    source: SmallStr,
    format: Format,
    equipment_id: SmallStr,
    equipment_key: EquipmentKey,
    kind: EventKind,
    outcome: Outcome,
    #[serde(default)]
    error_code: Option<SmallStr>,
    #[serde(default)]
    subscriber: Option<Text>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    attributes: Attrs,
    is_failure: bool,
    #[serde(default)]
    equipment: Option<Arc<EquipmentInfo>>,
    #[serde(default)]
    error: Option<Arc<ErrorInfo>>,
    #[serde(default)]
    maintenance: Option<Arc<MaintenanceInfo>>,
    #[serde(rename = "ref")]
    reference: ReferenceInfo,
}

/// Every field of an `enriched` record.
type FullWire = EnrichedWire<SmallStr, SmallStr, String, Attributes>;
/// An `enriched` record but its event's id, subscriber, message and attributes.
type SkimWire = EnrichedWire<IgnoredAny, IgnoredAny, IgnoredAny, IgnoredAny>;
/// An `enriched` record but its event's id and message, with its attributes held as the JSON
/// text they were written as (borrowed from the record), to be parsed only if wanted.
type IndicatorWire<'a> = EnrichedWire<IgnoredAny, SmallStr, IgnoredAny, Option<&'a RawValue>>;

/// What an [`EnrichedWire`] holds of its event's id, subscriber, message and attributes.
type Payload = (SmallStr, Option<SmallStr>, Option<String>, Attributes);

impl<Id, Text, Message, Attrs> EnrichedWire<Id, Text, Message, Attrs> {
    /// The record, with the event's id, subscriber, message and attributes that `payload` makes
    /// of what was read of them.
    fn into_event(self, payload: impl FnOnce(Id, Option<Text>, Option<Message>, Attrs) -> Payload) -> EnrichedEvent {
        let (event_id, subscriber, message, attributes) =
            payload(self.event_id, self.subscriber, self.message, self.attributes);
        EnrichedEvent {
            schema: self.schema,
            event: Event {
                event_id,
                event_time: self.event_time,
                received_at: self.received_at,
                source: self.source,
                format: self.format,
                equipment_id: self.equipment_id,
                equipment_key: self.equipment_key,
                kind: self.kind,
                outcome: self.outcome,
                error_code: self.error_code,
                subscriber,
                message,
                attributes,
            },
            is_failure: self.is_failure,
            equipment: self.equipment,
            error: self.error,
            maintenance: self.maintenance,
            reference: self.reference,
        }
    }
}

impl From<FullWire> for EnrichedEvent {
    fn from(w: FullWire) -> EnrichedEvent {
        w.into_event(|id, subscriber, message, attributes| (id, subscriber, message, attributes))
    }
}

impl EnrichedEvent {
    /// Reads an `enriched` record without its event's id, subscriber, message and attributes,
    /// which are checked for well-formed JSON and skipped unparsed (left empty): for stages that
    /// use none of them, such as the alarm stage's route half, where they were half the cost of
    /// a record.
    pub fn from_json_skimmed(bytes: &[u8]) -> serde_json::Result<EnrichedEvent> {
        let wire: SkimWire = crate::from_json(bytes)?;
        Ok(wire.into_event(|_, _, _, _| (SmallStr::default(), None, None, Attributes::default())))
    }

    /// Reads an `enriched` record for a stage that uses its event's subscriber and, for some
    /// kinds of event only, its attributes, such as the QoE stage (which needs the attributes
    /// of session stops for their durations): the event's id and message are checked for
    /// well-formed JSON and skipped unparsed (left empty), and the attributes are parsed only
    /// when `attributes_wanted` holds for the event's kind (else checked and left empty).
    pub fn from_json_for_indicators(
        bytes: &[u8],
        attributes_wanted: impl FnOnce(EventKind) -> bool,
    ) -> serde_json::Result<EnrichedEvent> {
        let wire: IndicatorWire = crate::from_json(bytes)?;
        let attributes = match wire.attributes {
            Some(raw) if attributes_wanted(wire.kind) => serde_json::from_str(raw.get())?,
            _ => Attributes::default(),
        };
        Ok(wire.into_event(|_, subscriber, _, _| (SmallStr::default(), subscriber, None, attributes)))
    }

    /// The partitioning key of the `enriched` topic: the inventory's equipment id when known,
    /// else the identifier found in the record.
    pub fn equipment_key(&self) -> &str {
        match &self.equipment {
            Some(e) => &e.equipment_id,
            None => &self.event.equipment_id,
        }
    }

    /// The value of a dimension used by rules and indicators: `equipment`, `site`, `region`,
    /// `manufacturer`, `model`, `equipment_type`, `technology`, `error_code`, `kind`, `source`.
    /// `None` when the event has no value for it (unknown equipment, no error code).
    pub fn dimension(&self, name: &str) -> Option<&str> {
        let eq = self.equipment.as_ref();
        match name {
            "equipment" => Some(self.equipment_key()),
            "site" => eq.map(|e| e.site.as_str()),
            "region" => eq.map(|e| e.region.as_str()),
            "manufacturer" => eq.map(|e| e.manufacturer.as_str()),
            "model" => eq.map(|e| e.model.as_str()),
            "equipment_type" => eq.map(|e| e.equipment_type.as_str()),
            "technology" => eq.map(|e| e.technology.as_str()),
            "error_code" => self.event.error_code.as_deref(),
            "error_category" => self.error.as_ref().map(|e| e.category.as_str()),
            "kind" => Some(self.event.kind.as_str()),
            "source" => Some(self.event.source.as_str()),
            _ => None,
        }
    }

    /// The dimension names [`EnrichedEvent::dimension`] knows.
    pub const DIMENSIONS: [&'static str; 11] = [
        "equipment",
        "site",
        "region",
        "manufacturer",
        "model",
        "equipment_type",
        "technology",
        "error_code",
        "error_category",
        "kind",
        "source",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_of_enum_values_are_those_of_their_json() {
        let json = |v: &dyn erased::Named| v.json();
        for kind in EventKind::ALL {
            assert_eq!(json(&kind), kind.as_str());
        }
        for outcome in [Outcome::Success, Outcome::Failure, Outcome::Info] {
            assert_eq!(json(&outcome), outcome.as_str());
        }
        for key in [
            EquipmentKey::Hostname,
            EquipmentKey::NasIdentifier,
            EquipmentKey::NasIpAddress,
            EquipmentKey::IpAddress,
            EquipmentKey::Field,
        ] {
            assert_eq!(json(&key), key.as_str());
        }
        for status in [
            ReferenceStatus::Ok,
            ReferenceStatus::UnknownEquipment,
            ReferenceStatus::UnknownErrorCode,
            ReferenceStatus::UnknownEquipmentAndErrorCode,
        ] {
            assert_eq!(json(&status), status.as_str());
        }
    }

    mod erased {
        /// The JSON string a value serialises to, unquoted.
        pub trait Named {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Named for T {
            fn json(&self) -> String {
                serde_json::to_value(self).unwrap().as_str().unwrap().to_owned()
            }
        }
    }

    fn full() -> EnrichedEvent {
        let mut attributes = Attributes::default();
        attributes.insert("sd.origin.ip", "10.0.0.1");
        attributes.insert("acct_session_time", 3600u64);
        EnrichedEvent {
            schema: crate::schema::ENRICHED.into(),
            event: Event {
                event_id: "e1".into(),
                event_time: 1_767_607_200_123,
                received_at: 1_767_607_200_456,
                source: "bras".into(),
                format: Format::Radius,
                equipment_id: "bng-1".into(),
                equipment_key: EquipmentKey::NasIdentifier,
                kind: EventKind::SessionStop,
                outcome: Outcome::Failure,
                error_code: Some("RADIUS-TC-2".into()),
                subscriber: Some("s-0123".into()),
                message: Some("lost carrier".to_owned()),
                attributes,
            },
            is_failure: true,
            equipment: Some(Arc::new(EquipmentInfo {
                equipment_id: "bng-1".to_owned(),
                equipment_type: "bng".to_owned(),
                model: "MX960".to_owned(),
                manufacturer: "juniper".to_owned(),
                site: "S1".to_owned(),
                region: "IDF".to_owned(),
                technology: "core".to_owned(),
            })),
            error: Some(Arc::new(ErrorInfo {
                code: "RADIUS-TC-2".to_owned(),
                label: "Lost Carrier".to_owned(),
                category: "network".to_owned(),
                severity: "major".to_owned(),
                is_failure: true,
                is_drop: true,
                customer_impacting: true,
            })),
            maintenance: Some(Arc::new(MaintenanceInfo {
                intervention_id: "INT-1".to_owned(),
                kind: "upgrade".to_owned(),
                scope: "site".to_owned(),
                suppress_alarms: true,
                exclude_from_kpi: false,
            })),
            reference: ReferenceInfo { status: ReferenceStatus::Ok, version: "v1".into() },
        }
    }

    #[test]
    fn a_skimmed_read_is_the_record_but_its_events_id_subscriber_message_and_attributes() {
        let json = serde_json::to_vec(&full()).unwrap();
        let mut expected = full();
        expected.event.event_id = SmallStr::default();
        expected.event.subscriber = None;
        expected.event.message = None;
        expected.event.attributes = Attributes::default();
        assert_eq!(EnrichedEvent::from_json_skimmed(&json).unwrap(), expected);
        // What a full read refuses, a skimmed one does too.
        let text = String::from_utf8(json).unwrap();
        for bad in
            [text.replace("\"event_id\"", "\"id\""), text.replace("\"lost carrier\"", "\"lost"), text[..50].to_owned()]
        {
            assert!(serde_json::from_str::<EnrichedEvent>(&bad).is_err());
            assert!(EnrichedEvent::from_json_skimmed(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_read_for_indicators_is_the_record_but_its_events_id_and_message_and_unwanted_attributes() {
        let json = serde_json::to_vec(&full()).unwrap();
        let mut expected = full();
        expected.event.event_id = SmallStr::default();
        expected.event.message = None;
        let read = EnrichedEvent::from_json_for_indicators(&json, |kind| kind == EventKind::SessionStop).unwrap();
        assert_eq!(read, expected);
        expected.event.attributes = Attributes::default();
        assert_eq!(EnrichedEvent::from_json_for_indicators(&json, |_| false).unwrap(), expected);
        // Absent or null attributes read as none.
        let text = String::from_utf8(json).unwrap();
        let start = text.find(",\"attributes\"").unwrap();
        let end = text.find(",\"is_failure\"").unwrap();
        for edited in [
            format!("{}{}", &text[..start], &text[end..]),
            format!("{},\"attributes\":null{}", &text[..start], &text[end..]),
        ] {
            assert_eq!(EnrichedEvent::from_json_for_indicators(edited.as_bytes(), |_| true).unwrap(), expected);
        }
        // What a full read refuses, this read does too, wanted attributes or not.
        for bad in [
            text.replace("\"event_id\"", "\"id\""),
            text.replace("\"lost carrier\"", "\"lost"),
            text.replace("\"attributes\":{", "\"attributes\":{\"x\":[,"),
            text[..50].to_owned(),
        ] {
            assert!(serde_json::from_str::<EnrichedEvent>(&bad).is_err());
            for wanted in [true, false] {
                assert!(EnrichedEvent::from_json_for_indicators(bad.as_bytes(), |_| wanted).is_err(), "{bad}");
            }
        }
        // Invalid UTF-8, even in a skipped string, is refused.
        let mut invalid = text.clone().into_bytes();
        invalid[text.find("lost carrier").unwrap()] = 0xff;
        assert!(EnrichedEvent::from_json_for_indicators(&invalid, |_| false).is_err());
        assert!(EnrichedEvent::from_json_skimmed(&invalid).is_err());
        // Attributes that are well-formed JSON but not attributes are refused when wanted.
        let not_attributes = text.replace("\"attributes\":{", "\"attributes\":[{");
        let not_attributes = not_attributes.replacen(",\"is_failure\"", "],\"is_failure\"", 1);
        assert!(EnrichedEvent::from_json_for_indicators(not_attributes.as_bytes(), |_| true).is_err());
    }

    #[test]
    fn an_enriched_record_reads_back_as_it_was_written() {
        let event = full();
        let json = serde_json::to_string(&event).unwrap_or_default();
        let back: EnrichedEvent = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(back, event);
        assert_eq!(serde_json::to_string(&back).unwrap_or_default(), json);

        // Without the optional fields.
        let mut bare = full();
        (bare.event.error_code, bare.event.subscriber, bare.event.message) = (None, None, None);
        bare.event.attributes = Attributes::default();
        (bare.equipment, bare.error, bare.maintenance) = (None, None, None);
        bare.reference.status = ReferenceStatus::UnknownEquipment;
        let json = serde_json::to_string(&bare).unwrap_or_default();
        let back: EnrichedEvent = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(back, bare);
    }

    #[test]
    fn an_enriched_record_of_a_newer_lux_reads_without_its_new_fields() {
        let mut value = serde_json::to_value(full()).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            fields.insert("added_later".to_owned(), serde_json::json!({"x": [1, 2]}));
        }
        let back: EnrichedEvent = serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, full());
    }

    #[test]
    fn an_enriched_record_without_a_required_field_is_refused_with_its_name() {
        let mut value = serde_json::to_value(full()).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            fields.remove("event_time");
        }
        let error = serde_json::from_value::<EnrichedEvent>(value).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("event_time"), "{error}");
    }
}
