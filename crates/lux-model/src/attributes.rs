//! `Attributes`: the extra fields of an event (syslog structured data, RADIUS attributes, ...),
//! as a vector sorted by name. It is written as the same JSON object a `BTreeMap<String, Value>`
//! gives (keys in byte order), but costs no allocation per name (names are `'static` or short
//! [`SmallStr`]s) and none per short text, number or boolean value.

use crate::text::SmallStr;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};
use std::collections::BTreeMap;
use std::fmt;

/// One attribute's value: the scalar kinds decoders produce, or any other JSON value (lists of
/// a repeated attribute, nested JSON) as it is.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(SmallStr),
    Number(Number),
    Bool(bool),
    Json(Box<Value>),
}

impl AttrValue {
    /// The value as a `serde_json::Value` (copies it).
    pub fn to_value(&self) -> Value {
        match self {
            AttrValue::Str(s) => Value::String(s.as_str().to_owned()),
            AttrValue::Number(n) => Value::Number(n.clone()),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Json(v) => (**v).clone(),
        }
    }

    /// The text, when the value is a string.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            AttrValue::Json(v) => v.as_str(),
            _ => None,
        }
    }
}

impl From<Value> for AttrValue {
    #[inline]
    fn from(v: Value) -> Self {
        match v {
            Value::String(s) => AttrValue::Str(s.into()),
            Value::Number(n) => AttrValue::Number(n),
            Value::Bool(b) => AttrValue::Bool(b),
            other => AttrValue::Json(Box::new(other)),
        }
    }
}

impl From<AttrValue> for Value {
    #[inline]
    fn from(v: AttrValue) -> Self {
        match v {
            AttrValue::Str(s) => Value::String(s.into()),
            AttrValue::Number(n) => Value::Number(n),
            AttrValue::Bool(b) => Value::Bool(b),
            AttrValue::Json(v) => *v,
        }
    }
}

impl From<SmallStr> for AttrValue {
    #[inline]
    fn from(s: SmallStr) -> Self {
        AttrValue::Str(s)
    }
}

impl From<&str> for AttrValue {
    #[inline]
    fn from(s: &str) -> Self {
        AttrValue::Str(SmallStr::new(s))
    }
}

impl From<String> for AttrValue {
    #[inline]
    fn from(s: String) -> Self {
        AttrValue::Str(s.into())
    }
}

impl From<bool> for AttrValue {
    #[inline]
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}

macro_rules! attr_value_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for AttrValue {
            #[inline]
            fn from(n: $t) -> Self {
                AttrValue::Number(Number::from(n))
            }
        }
    )*};
}
attr_value_from_int!(u8, u16, u32, u64, i32, i64);

impl PartialEq<Value> for AttrValue {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (AttrValue::Str(a), Value::String(b)) => a == b,
            (AttrValue::Number(a), Value::Number(b)) => a == b,
            (AttrValue::Bool(a), Value::Bool(b)) => a == b,
            (AttrValue::Json(a), b) => **a == *b,
            _ => false,
        }
    }
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Str(v) => s.serialize_str(v),
            AttrValue::Number(n) => n.serialize(s),
            AttrValue::Bool(b) => s.serialize_bool(*b),
            AttrValue::Json(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(AttrValue::from)
    }
}

/// The attributes of an event, sorted by name, each name once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(Vec<Entry>);

/// One attribute, with the first 8 bytes of its name as a big-endian number (zero-padded):
/// comparing those orders most names without comparing the strings.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    prefix: u64,
    name: SmallStr,
    value: AttrValue,
}

impl Entry {
    #[inline]
    fn new(name: SmallStr, value: AttrValue) -> Entry {
        Entry { prefix: prefix(&name), name, value }
    }
}

/// The first 8 bytes of `name`, zero-padded, big-endian: if `prefix(a) < prefix(b)` then
/// `a < b` (a zero pad only ever stands where the shorter name has ended).
#[inline]
fn prefix(name: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let head = name.as_bytes().get(..8).unwrap_or(name.as_bytes());
    if let Some(slot) = bytes.get_mut(..head.len()) {
        slot.copy_from_slice(head);
    }
    u64::from_be_bytes(bytes)
}

impl Attributes {
    #[inline]
    pub fn new() -> Attributes {
        Attributes(Vec::new())
    }

    #[inline]
    pub fn with_capacity(n: usize) -> Attributes {
        Attributes(Vec::with_capacity(n))
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[inline]
    fn find(&self, name: &str) -> Result<usize, usize> {
        let p = prefix(name);
        let cmp = |e: &Entry| e.prefix.cmp(&p).then_with(|| e.name.as_str().cmp(name));
        // Names mostly arrive in order: check the end before searching.
        match self.0.last() {
            Some(last) if cmp(last).is_lt() => Err(self.0.len()),
            _ => self.0.binary_search_by(cmp),
        }
    }

    #[inline]
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.find(name).ok().and_then(|i| self.0.get(i)).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut AttrValue> {
        let i = self.find(name).ok()?;
        self.0.get_mut(i).map(|e| &mut e.value)
    }

    /// The value of `name` as a `serde_json::Value` (a copy; for tests and tools).
    pub fn value(&self, name: &str) -> Option<Value> {
        self.get(name).map(AttrValue::to_value)
    }

    #[inline]
    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name` to `value`, returning the value it replaces.
    #[inline]
    pub fn insert(&mut self, name: impl Into<SmallStr>, value: impl Into<AttrValue>) -> Option<AttrValue> {
        let name = name.into();
        match self.find(&name) {
            Ok(i) => self.0.get_mut(i).map(|e| std::mem::replace(&mut e.value, value.into())),
            Err(i) => {
                self.0.insert(i, Entry::new(name, value.into()));
                None
            }
        }
    }

    /// Sets `name` to `value` unless it is already set; whether it was set.
    #[inline]
    pub fn insert_new(&mut self, name: impl Into<SmallStr>, value: impl Into<AttrValue>) -> bool {
        let name = name.into();
        match self.find(&name) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, Entry::new(name, value.into()));
                true
            }
        }
    }

    /// Sets `name` to `value` unless it is already set, in which case `value` is given back.
    #[inline]
    pub fn try_insert(&mut self, name: SmallStr, value: AttrValue) -> Result<(), AttrValue> {
        match self.find(&name) {
            Ok(_) => Err(value),
            Err(i) => {
                self.0.insert(i, Entry::new(name, value));
                Ok(())
            }
        }
    }

    /// Adds `value` under `name`; a name already present becomes a list of every value (a
    /// repeated attribute or tag is never dropped).
    pub fn append(&mut self, name: impl Into<SmallStr>, value: impl Into<AttrValue>) {
        let name = name.into();
        match self.find(&name) {
            Ok(i) => {
                if let Some(Entry { value: existing, .. }) = self.0.get_mut(i) {
                    join(existing, value.into());
                }
            }
            Err(i) => self.0.insert(i, Entry::new(name, value.into())),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<AttrValue> {
        let i = self.find(name).ok()?;
        Some(self.0.remove(i).value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|e| (e.name.as_str(), &e.value))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|e| e.name.as_str())
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut AttrValue> {
        self.0.iter_mut().map(|e| &mut e.value)
    }

    /// Empties the attributes, keeping the vector's capacity.
    pub fn clear(&mut self) {
        self.0.clear()
    }

    /// The attributes as a `BTreeMap` of JSON values (copies them; for tools and tests).
    pub fn to_map(&self) -> BTreeMap<String, Value> {
        self.iter().map(|(k, v)| (k.to_owned(), v.to_value())).collect()
    }
}

/// Collects attributes in the order a decoder finds them (a RADIUS packet's, not the names'),
/// then sorts them once, in place ([`AttributeList::finish`]): cheaper than keeping them sorted
/// while inserting out of order. The result is what the same [`Attributes::append`] (for
/// [`AttributeList::append`]) and [`Attributes::insert`] (for [`AttributeList::insert`]) calls in
/// the same order would give.
#[derive(Debug, Default)]
pub struct AttributeList {
    entries: Vec<Entry>,
    /// Bit `i`: entry `i` replaces the earlier values of its name (an `insert`) rather than
    /// joining them; entries from the 64th on are listed in `replacing`.
    replace: u64,
    replacing: Vec<usize>,
}

/// Lists up to this long are sorted by a key array on the stack; longer ones by `sort_by`.
const SORTED_BY_KEYS: usize = 32;

impl AttributeList {
    #[inline]
    pub fn with_capacity(n: usize) -> AttributeList {
        AttributeList { entries: Vec::with_capacity(n), replace: 0, replacing: Vec::new() }
    }

    /// As [`Attributes::append`]: a name given several times becomes a list of its values.
    #[inline]
    pub fn append(&mut self, name: impl Into<SmallStr>, value: impl Into<AttrValue>) {
        self.entries.push(Entry::new(name.into(), value.into()));
    }

    /// As [`Attributes::insert`]: the value replaces the name's earlier ones.
    #[inline]
    pub fn insert(&mut self, name: impl Into<SmallStr>, value: impl Into<AttrValue>) {
        let i = self.entries.len();
        match 1u64.checked_shl(i as u32).filter(|_| i < 64) {
            Some(bit) => self.replace |= bit,
            None => self.replacing.push(i),
        }
        self.entries.push(Entry::new(name.into(), value.into()));
    }

    fn replaces(&self, i: usize) -> bool {
        if i < 64 {
            self.replace >> i & 1 == 1
        } else {
            self.replacing.contains(&i)
        }
    }

    /// The attributes, sorted by name, each name once.
    pub fn finish(mut self) -> Attributes {
        let n = self.entries.len();
        // order[k]: the original index of the k-th entry in name order (equal names in their
        // original order).
        let mut order_short = [0usize; SORTED_BY_KEYS];
        let mut order_long = Vec::new();
        let order: &[usize] = if n <= SORTED_BY_KEYS {
            // The first 7 bytes of the name above the index: integer comparisons sort most.
            let mut keys = [0u64; SORTED_BY_KEYS];
            for (key, (i, e)) in keys.iter_mut().zip(self.entries.iter().enumerate()) {
                *key = (e.prefix >> 8) << 8 | i as u64;
            }
            let keys = keys.get_mut(..n).unwrap_or_default();
            insertion_sort(keys, |a, b| a > b);
            // Names sharing their first 7 bytes: ordered by name, then index.
            let name = |key: u64| self.entries.get((key & 0xff) as usize).map_or("", |e| e.name.as_str());
            insertion_sort(keys, |a, b| a >> 8 == b >> 8 && (name(*a), *a & 0xff) > (name(*b), *b & 0xff));
            for (slot, key) in order_short.iter_mut().zip(keys.iter()) {
                *slot = (key & 0xff) as usize;
            }
            order_short.get(..n).unwrap_or_default()
        } else {
            order_long.extend(0..n);
            let entries = &self.entries;
            order_long.sort_by(|a, b| {
                let (x, y) = (entries.get(*a), entries.get(*b));
                x.map(|e| (e.prefix, e.name.as_str())).cmp(&y.map(|e| (e.prefix, e.name.as_str()))).then(a.cmp(b))
            });
            &order_long
        };
        // Whether the k-th entry in name order replaces (bit k; a vector past 64 entries).
        let (mut sorted_replace, mut sorted_replacing) = (0u64, Vec::new());
        if self.replace != 0 || !self.replacing.is_empty() {
            for (k, &i) in order.iter().enumerate() {
                if self.replaces(i) {
                    match 1u64.checked_shl(k as u32).filter(|_| k < 64) {
                        Some(bit) => sorted_replace |= bit,
                        None => sorted_replacing.push(k),
                    }
                }
            }
        }
        // Applies the permutation in place: position k takes the entry first at order[k].
        for k in 0..n {
            let mut j = order.get(k).copied().unwrap_or(k);
            while j < k {
                j = order.get(j).copied().unwrap_or(k);
            }
            self.entries.swap(k, j);
        }
        // Equal names, now adjacent, become one entry (`dedup_by` visits positions 1.. in order).
        let mut read = 0;
        self.entries.dedup_by(|later, kept| {
            read += 1;
            if later.prefix != kept.prefix || later.name != kept.name {
                return false;
            }
            let value = std::mem::replace(&mut later.value, AttrValue::Bool(false));
            let replaces = if read < 64 { sorted_replace >> read & 1 == 1 } else { sorted_replacing.contains(&read) };
            if replaces {
                kept.value = value;
            } else {
                join(&mut kept.value, value);
            }
            true
        });
        Attributes(self.entries)
    }
}

/// Sorts `items` by swapping neighbours while `after(left, right)`: for the short lists of one
/// record.
fn insertion_sort(items: &mut [u64], after: impl Fn(&u64, &u64) -> bool) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 {
            match (items.get(j - 1), items.get(j)) {
                (Some(a), Some(b)) if after(a, b) => items.swap(j - 1, j),
                _ => break,
            }
            j -= 1;
        }
    }
}

/// `value` added to `existing`, as [`Attributes::append`] does: a list grows, a single value
/// becomes a list of both.
fn join(existing: &mut AttrValue, value: AttrValue) {
    let value = Value::from(value);
    match existing {
        AttrValue::Json(list) if list.is_array() => {
            if let Value::Array(items) = &mut **list {
                items.push(value);
            }
        }
        other => {
            let first = std::mem::replace(other, AttrValue::Bool(false)).into();
            *other = AttrValue::Json(Box::new(Value::Array(vec![first, value])));
        }
    }
}

impl From<BTreeMap<String, Value>> for Attributes {
    #[inline]
    fn from(map: BTreeMap<String, Value>) -> Self {
        // Already sorted by name, each name once.
        Attributes(map.into_iter().map(|(k, v)| Entry::new(SmallStr::from(k), AttrValue::from(v))).collect())
    }
}

impl PartialEq<BTreeMap<String, Value>> for Attributes {
    fn eq(&self, other: &BTreeMap<String, Value>) -> bool {
        self.0.len() == other.len() && self.iter().zip(other).all(|((k, v), (ok, ov))| k == ok && v == ov)
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Attributes, A::Error> {
                let mut out = Attributes::with_capacity(access.size_hint().unwrap_or(0).min(256));
                while let Some((k, v)) = access.next_entry::<SmallStr, AttrValue>()? {
                    // A repeated key keeps the last value, as a map would.
                    out.insert(k, v);
                }
                Ok(out)
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_json_as_a_btreemap() {
        let mut map = BTreeMap::new();
        let mut attrs = Attributes::new();
        for (k, v) in [
            ("syslog.severity", json!(6)),
            ("sd.code", json!("PPP-AUTHFAIL")),
            ("Acct-Input-Octets", json!(u64::MAX)),
            ("cisco.clock_unsynced", json!(true)),
            ("nested", json!({"a": [1, "b"]})),
            ("long", json!("x".repeat(100))),
        ] {
            map.insert(k.to_owned(), v.clone());
            attrs.insert(k, AttrValue::from(v));
        }
        assert_eq!(attrs, map);
        assert_eq!(serde_json::to_string(&attrs).unwrap(), serde_json::to_string(&map).unwrap());
        let back: Attributes = serde_json::from_str(&serde_json::to_string(&map).unwrap()).unwrap();
        assert_eq!(back, attrs);
        assert_eq!(Attributes::from(map.clone()), attrs);
        assert_eq!(attrs.to_map(), map);
    }

    #[test]
    fn repeated_values_become_a_list() {
        let mut attrs = Attributes::new();
        attrs.append("Class", "a");
        attrs.append("Class", "b");
        attrs.append("Class", 3u32);
        assert_eq!(attrs.value("Class"), Some(json!(["a", "b", 3])));
        assert!(!attrs.insert_new("Class", "c"));
        assert_eq!(attrs.remove("Class"), Some(AttrValue::from(json!(["a", "b", 3]))));
        assert!(attrs.is_empty());
    }

    #[test]
    fn a_list_sorted_once_equals_sorted_insertions() {
        // Deterministic pseudo-random operations over names sharing long prefixes.
        let names = [
            "Acct-Input-Octets",
            "Acct-Input-Packets",
            "Acct-Status-Type",
            "Acct-Status-Type-Name",
            "NAS-Port",
            "NAS-Port-Id",
            "NAS-Port-Type",
            "Class",
            "a",
            "",
            "Acct-Ses",
            "Acct-Session-Id",
            "radius.identifier",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0usize, 1, 2, 5, 12, 31, 32, 33, 64, 65, 200] {
            let mut list = AttributeList::with_capacity(len);
            let mut expected = Attributes::new();
            for i in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let name = names[(state % names.len() as u64) as usize];
                if state >> 40 & 3 == 0 {
                    list.insert(name, i as u64);
                    expected.insert(name, i as u64);
                } else {
                    list.append(name, i as u64);
                    expected.append(name, i as u64);
                }
            }
            assert_eq!(list.finish(), expected, "{len} operations");
        }
    }

    #[test]
    fn names_sort_as_strings() {
        let names = ["", "a", "ab", "ab\0", "ab\0x", "abcdefgh", "abcdefgha", "abcdefghi", "b", "syslog.facility"];
        let mut attrs = Attributes::new();
        for name in names.iter().rev() {
            attrs.insert(*name, true);
        }
        assert_eq!(attrs.keys().collect::<Vec<_>>(), names);
        for name in names {
            assert_eq!(attrs.get(name), Some(&AttrValue::Bool(true)), "{name:?}");
        }
        assert_eq!(attrs.get("abcdefg"), None);
    }
}
