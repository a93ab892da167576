//! Reading an `enriched` record's `equipment`, `error` and `ref.version` without allocating
//! them anew for every record: the same few thousand equipment and few hundred error codes come
//! back record after record, so each reading thread keeps the ones it has read
//! ([`EquipmentInfo`], [`ErrorInfo`] behind an `Arc`) and hands out a shared one when the
//! record's fields are the same. The fields are read borrowed from the record where they need
//! no unescaping; nothing else changes (a field that differs from the kept one, the inventory
//! having changed, replaces it).
//!
//! Each cache holds at most [`MOST_KEPT`] entries, then starts afresh: memory stays bounded
//! whatever the inventory's size.

use crate::event::{EquipmentInfo, ErrorInfo};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Most entries of each cache of a thread.
const MOST_KEPT: usize = 16_384;

#[derive(Deserialize)]
#[serde(rename = "EquipmentInfo")]
struct EquipmentFields<'a> {
    #[serde(borrow)]
    equipment_id: Cow<'a, str>,
    #[serde(borrow)]
    equipment_type: Cow<'a, str>,
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(borrow)]
    manufacturer: Cow<'a, str>,
    #[serde(borrow)]
    site: Cow<'a, str>,
    #[serde(borrow)]
    region: Cow<'a, str>,
    #[serde(borrow)]
    technology: Cow<'a, str>,
}

impl EquipmentFields<'_> {
    fn matches(&self, e: &EquipmentInfo) -> bool {
        *self.equipment_id == e.equipment_id
            && *self.equipment_type == e.equipment_type
            && *self.model == e.model
            && *self.manufacturer == e.manufacturer
            && *self.site == e.site
            && *self.region == e.region
            && *self.technology == e.technology
    }

    fn to_info(&self) -> EquipmentInfo {
        EquipmentInfo {
            equipment_id: self.equipment_id.as_ref().to_owned(),
            equipment_type: self.equipment_type.as_ref().to_owned(),
            model: self.model.as_ref().to_owned(),
            manufacturer: self.manufacturer.as_ref().to_owned(),
            site: self.site.as_ref().to_owned(),
            region: self.region.as_ref().to_owned(),
            technology: self.technology.as_ref().to_owned(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename = "ErrorInfo")]
struct ErrorFields<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
    #[serde(borrow)]
    label: Cow<'a, str>,
    #[serde(borrow)]
    category: Cow<'a, str>,
    #[serde(borrow)]
    severity: Cow<'a, str>,
    is_failure: bool,
    is_drop: bool,
    customer_impacting: bool,
}

impl ErrorFields<'_> {
    fn matches(&self, e: &ErrorInfo) -> bool {
        *self.code == e.code
            && *self.label == e.label
            && *self.category == e.category
            && *self.severity == e.severity
            && self.is_failure == e.is_failure
            && self.is_drop == e.is_drop
            && self.customer_impacting == e.customer_impacting
    }

    fn to_info(&self) -> ErrorInfo {
        ErrorInfo {
            code: self.code.as_ref().to_owned(),
            label: self.label.as_ref().to_owned(),
            category: self.category.as_ref().to_owned(),
            severity: self.severity.as_ref().to_owned(),
            is_failure: self.is_failure,
            is_drop: self.is_drop,
            customer_impacting: self.customer_impacting,
        }
    }
}

thread_local! {
    static EQUIPMENT: RefCell<HashMap<Box<str>, Arc<EquipmentInfo>>> = RefCell::new(HashMap::new());
    static ERRORS: RefCell<HashMap<Box<str>, Arc<ErrorInfo>>> = RefCell::new(HashMap::new());
    static VERSION: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// The kept entry of `cache` under `key` if `matches` it, else `make()`, kept.
fn lookup<T>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<Box<str>, Arc<T>>>>,
    key: &str,
    matches: impl FnOnce(&T) -> bool,
    make: impl FnOnce() -> T,
) -> Arc<T> {
    cache.with(|cell| {
        let Ok(mut map) = cell.try_borrow_mut() else { return Arc::new(make()) };
        if let Some(kept) = map.get(key).filter(|kept| matches(kept)) {
            return Arc::clone(kept);
        }
        if map.len() >= MOST_KEPT {
            map.clear();
        }
        let made = Arc::new(make());
        map.insert(key.into(), Arc::clone(&made));
        made
    })
}

/// `deserialize_with` of an `Option<Arc<EquipmentInfo>>` field.
pub fn equipment<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<EquipmentInfo>>, D::Error> {
    let Some(fields) = Option::<EquipmentFields>::deserialize(d)? else { return Ok(None) };
    Ok(Some(lookup(&EQUIPMENT, &fields.equipment_id, |kept| fields.matches(kept), || fields.to_info())))
}

/// `deserialize_with` of an `Option<Arc<ErrorInfo>>` field.
pub fn error<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<ErrorInfo>>, D::Error> {
    let Some(fields) = Option::<ErrorFields>::deserialize(d)? else { return Ok(None) };
    Ok(Some(lookup(&ERRORS, &fields.code, |kept| fields.matches(kept), || fields.to_info())))
}

/// `deserialize_with` of the reference data's version (an `Arc<str>`): the last one read is
/// kept (a record's version changes only when the reference data is reloaded).
pub fn version<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    let Text(text) = Text::deserialize(d)?;
    Ok(VERSION.with(|cell| {
        let Ok(mut last) = cell.try_borrow_mut() else { return Arc::from(text.as_ref()) };
        match &*last {
            Some(kept) if **kept == *text => Arc::clone(kept),
            _ => {
                let made: Arc<str> = Arc::from(text.as_ref());
                *last = Some(Arc::clone(&made));
                made
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use crate::EnrichedEvent;
    use std::sync::Arc;

    fn record(site: &str, label: &str, version: &str) -> String {
        format!(
            r#"{{"schema":"lux.enriched.v1","event_id":"e","event_time":"2026-01-05T10:00:00.000Z","received_at":"2026-01-05T10:00:00.100Z","source":"demo","format":"syslog","equipment_id":"cpe-1","equipment_key":"hostname","kind":"link_down","outcome":"failure","error_code":"LINK-DOWN","is_failure":true,"equipment":{{"equipment_id":"cpe-1","equipment_type":"cpe","model":"M","manufacturer":"A\u00e9","site":"{site}","region":"R","technology":"ftth"}},"error":{{"code":"LINK-DOWN","label":"{label}","category":"network","severity":"major","is_failure":true,"is_drop":false,"customer_impacting":true}},"ref":{{"status":"ok","version":"{version}"}}}}"#
        )
    }

    #[test]
    fn records_read_on_one_thread_share_their_equipment_error_and_version_until_they_change() {
        let read = |text: &str| -> EnrichedEvent { crate::from_json(text.as_bytes()).unwrap() };
        let (a, b) = (read(&record("S1", "Link down", "v1")), read(&record("S1", "Link down", "v1")));
        assert_eq!(a, b);
        let (ea, eb) = (a.equipment.as_ref().unwrap(), b.equipment.as_ref().unwrap());
        assert!(Arc::ptr_eq(ea, eb) && Arc::ptr_eq(a.error.as_ref().unwrap(), b.error.as_ref().unwrap()));
        assert!(Arc::ptr_eq(&a.reference.version, &b.reference.version));
        assert_eq!(ea.manufacturer, "Aé", "escaped text is unescaped");
        // The inventory, the error catalogue and the reference data changed: the new values.
        let c = read(&record("S2", "Link lost", "v2"));
        let ec = c.equipment.as_ref().unwrap();
        assert_eq!((ec.site.as_str(), c.error.as_ref().unwrap().label.as_str()), ("S2", "Link lost"));
        assert_eq!(&*c.reference.version, "v2");
        // Read from a value (owned strings), and on another thread: the same records.
        let value: serde_json::Value = serde_json::from_str(&record("S1", "Link down", "v1")).unwrap();
        assert_eq!(serde_json::from_value::<EnrichedEvent>(value).unwrap(), a);
        let text = record("S1", "Link down", "v1");
        let other = std::thread::spawn(move || read(&text)).join().unwrap();
        assert_eq!(other, a);
        // A malformed equipment is refused as before.
        let bad = record("S1", "Link down", "v1").replace(r#""site":"S1","#, "");
        let error = crate::from_json::<EnrichedEvent>(bad.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("missing field `site`"), "{error}");
    }
}
