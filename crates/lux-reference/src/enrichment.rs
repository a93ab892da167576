//! The result of the join ([`crate::Snapshot::join`]): an [`Enrichment`], a few references into
//! the snapshot (no string copied, no reference count touched), and [`EnrichedRecord`], the
//! event and its enrichment serialised as the `enriched` topic's record (exactly the JSON of
//! [`lux_model::EnrichedEvent`], which is what consumers read it back as).

use crate::snapshot::{EquipmentRow, Snapshot};
use lux_model::json::Object;
use lux_model::{EnrichedEvent, EquipmentInfo, ErrorInfo, Event, MaintenanceInfo, ReferenceInfo, ReferenceStatus};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::sync::Arc;

/// An event's join with one snapshot: the equipment row valid at its time, its error code's
/// meaning, the intervention covering the equipment then, the status of the join and whether
/// the event counts as a failure. Borrows the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Enrichment<'s> {
    pub(crate) snapshot: &'s Snapshot,
    pub(crate) row: Option<&'s EquipmentRow>,
    pub(crate) error: Option<&'s Arc<ErrorInfo>>,
    pub(crate) maintenance: Option<&'s Arc<MaintenanceInfo>>,
    pub(crate) status: ReferenceStatus,
    pub(crate) is_failure: bool,
}

impl<'s> Enrichment<'s> {
    /// The equipment the event was joined with (`None`: unknown at the event's time).
    pub fn equipment(&self) -> Option<Equipment<'s>> {
        self.row.map(|row| Equipment { snapshot: self.snapshot, row })
    }

    /// The meaning of the event's error code (`None`: no code, or unknown).
    pub fn error(&self) -> Option<&'s ErrorInfo> {
        self.error.map(|e| &**e)
    }

    /// The intervention covering the equipment at the event's time.
    pub fn maintenance(&self) -> Option<&'s MaintenanceInfo> {
        self.maintenance.map(|m| &**m)
    }

    pub fn status(&self) -> ReferenceStatus {
        self.status
    }

    /// Whether the event counts as a failure: the error catalogue's `is_failure` when the code
    /// is known, else `outcome == failure`.
    pub fn is_failure(&self) -> bool {
        self.is_failure
    }

    /// The version of the snapshot joined with.
    pub fn version(&self) -> &'s str {
        self.snapshot.version()
    }

    /// The partitioning key of the `enriched` topic: the inventory's equipment id when known,
    /// else the identifier found in the record (as [`EnrichedEvent::equipment_key`]).
    pub fn partition_key<'a>(&self, event: &'a Event) -> &'a str
    where
        's: 'a,
    {
        match self.row {
            Some(row) => self.snapshot.row_id(row),
            None => &event.equipment_id,
        }
    }

    /// `event` with this enrichment, to serialise as the `enriched` topic's record.
    pub fn record<'a>(&self, event: &'a Event) -> EnrichedRecord<'a>
    where
        's: 'a,
    {
        EnrichedRecord {
            schema: lux_model::schema::ENRICHED,
            event,
            is_failure: self.is_failure,
            equipment: self.equipment(),
            error: self.error(),
            maintenance: self.maintenance(),
            reference: ReferenceView { status: self.status, version: self.snapshot.version() },
        }
    }

    /// The owned enriched event. Its equipment record is made once per row of the snapshot and
    /// shared by every event of that equipment.
    pub fn into_enriched(self, event: Event) -> EnrichedEvent {
        EnrichedEvent {
            schema: std::borrow::Cow::Borrowed(lux_model::schema::ENRICHED),
            event,
            is_failure: self.is_failure,
            equipment: self.row.map(|row| self.snapshot.row_info(row)),
            error: self.error.cloned(),
            maintenance: self.maintenance.cloned(),
            reference: ReferenceInfo { status: self.status, version: Arc::clone(self.snapshot.version_arc()) },
        }
    }
}

/// The equipment an event was joined with, as it was at the event's time: a row of the
/// snapshot, its strings interned there.
#[derive(Clone, Copy)]
pub struct Equipment<'s> {
    pub(crate) snapshot: &'s Snapshot,
    pub(crate) row: &'s EquipmentRow,
}

impl std::fmt::Debug for Equipment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_info().fmt(f)
    }
}

impl<'s> Equipment<'s> {
    /// The inventory's id of the equipment.
    pub fn equipment_id(&self) -> &'s str {
        self.snapshot.row_id(self.row)
    }

    /// `bng`, `olt`, `dslam`, `cpe`, `radius`, ...
    pub fn equipment_type(&self) -> &'s str {
        self.snapshot.row_model(self.row).map_or("", |m| &m.equipment_type)
    }

    pub fn model(&self) -> &'s str {
        self.snapshot.row_model(self.row).map_or("", |m| &m.name)
    }

    pub fn manufacturer(&self) -> &'s str {
        self.snapshot.row_model(self.row).map_or("", |m| &m.manufacturer)
    }

    pub fn site(&self) -> &'s str {
        self.snapshot.row_site(self.row).0.map_or("", |s| &s.id)
    }

    pub fn region(&self) -> &'s str {
        self.snapshot.row_site(self.row).1.map_or("", |r| &r.id)
    }

    /// `ftth`, `vdsl`, `adsl`, `core`, ...
    pub fn technology(&self) -> &'s str {
        self.snapshot.row_model(self.row).map_or("", |m| &m.technology)
    }

    /// The owned record.
    pub fn to_info(&self) -> EquipmentInfo {
        EquipmentInfo {
            equipment_id: self.equipment_id().to_owned(),
            equipment_type: self.equipment_type().to_owned(),
            model: self.model().to_owned(),
            manufacturer: self.manufacturer().to_owned(),
            site: self.site().to_owned(),
            region: self.region().to_owned(),
            technology: self.technology().to_owned(),
        }
    }
}

/// Serialised as [`EquipmentInfo`] is.
impl Serialize for Equipment<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let model = self.snapshot.row_model(self.row);
        let (site, region) = self.snapshot.row_site(self.row);
        let mut s = serializer.serialize_struct("EquipmentInfo", 7)?;
        s.serialize_field("equipment_id", self.equipment_id())?;
        s.serialize_field("equipment_type", model.map_or("", |m| &m.equipment_type))?;
        s.serialize_field("model", model.map_or("", |m| &m.name))?;
        s.serialize_field("manufacturer", model.map_or("", |m| &m.manufacturer))?;
        s.serialize_field("site", site.map_or("", |s| &s.id))?;
        s.serialize_field("region", region.map_or("", |r| &r.id))?;
        s.serialize_field("technology", model.map_or("", |m| &m.technology))?;
        s.end()
    }
}

/// An event and its enrichment as the `enriched` topic's record: serialises to the JSON of
/// the [`EnrichedEvent`] [`Enrichment::into_enriched`] would make, without building it.
#[derive(Debug, serde::Serialize)]
pub struct EnrichedRecord<'a> {
    schema: &'static str,
    #[serde(flatten)]
    event: &'a Event,
    is_failure: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    equipment: Option<Equipment<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maintenance: Option<&'a MaintenanceInfo>,
    #[serde(rename = "ref")]
    reference: ReferenceView<'a>,
}

impl EnrichedRecord<'_> {
    /// Appends the record's JSON to `out`: byte for byte what `serde_json` makes of it (its
    /// `Serialize`, the reference), written by hand ([`lux_model::json`]) at a fraction of the
    /// cost, for the transform stage, which writes one per event.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let event = self.event;
        let mut o = Object::new(out);
        o.text("schema", self.schema);
        o.text("event_id", &event.event_id);
        o.time("event_time", event.event_time);
        o.time("received_at", event.received_at);
        o.text("source", &event.source);
        o.text("format", event.format.as_str());
        o.text("equipment_id", &event.equipment_id);
        o.text("equipment_key", event.equipment_key.as_str());
        o.text("kind", event.kind.as_str());
        o.text("outcome", event.outcome.as_str());
        if let Some(code) = &event.error_code {
            o.text("error_code", code);
        }
        if let Some(subscriber) = &event.subscriber {
            o.text("subscriber", subscriber);
        }
        if let Some(message) = &event.message {
            o.text("message", message);
        }
        if !event.attributes.is_empty() {
            event.attributes.write_json(o.key("attributes"));
        }
        o.bool("is_failure", self.is_failure);
        if let Some(e) = &self.equipment {
            let mut equipment = Object::new(o.key("equipment"));
            equipment.text("equipment_id", e.equipment_id());
            equipment.text("equipment_type", e.equipment_type());
            equipment.text("model", e.model());
            equipment.text("manufacturer", e.manufacturer());
            equipment.text("site", e.site());
            equipment.text("region", e.region());
            equipment.text("technology", e.technology());
            equipment.end();
        }
        if let Some(e) = self.error {
            let mut error = Object::new(o.key("error"));
            error.text("code", &e.code);
            error.text("label", &e.label);
            error.text("category", &e.category);
            error.text("severity", &e.severity);
            error.bool("is_failure", e.is_failure);
            error.bool("is_drop", e.is_drop);
            error.bool("customer_impacting", e.customer_impacting);
            error.end();
        }
        if let Some(m) = self.maintenance {
            let mut maintenance = Object::new(o.key("maintenance"));
            maintenance.text("intervention_id", &m.intervention_id);
            maintenance.text("kind", &m.kind);
            maintenance.text("scope", &m.scope);
            maintenance.bool("suppress_alarms", m.suppress_alarms);
            maintenance.bool("exclude_from_kpi", m.exclude_from_kpi);
            maintenance.end();
        }
        let mut reference = Object::new(o.key("ref"));
        reference.text("status", self.reference.status.as_str());
        reference.text("version", self.reference.version);
        reference.end();
        o.end();
    }
}

/// Serialised as [`ReferenceInfo`] is.
#[derive(Debug, serde::Serialize)]
struct ReferenceView<'a> {
    status: ReferenceStatus,
    version: &'a str,
}
