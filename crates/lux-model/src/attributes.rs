//! `Attributes`: the extra fields of an event (syslog structured data, RADIUS attributes, ...),
//! sorted by name. It is written as the same JSON object a `BTreeMap<String, Value>` gives (keys
//! in byte order), but its text lives in ONE buffer: names known at compile time are borrowed
//! `'static`, every other name and text value is a range of that buffer, numbers and booleans
//! are stored in place. Cleared and refilled from record to record ([`AttributeList::reusing`]),
//! it allocates nothing in steady state.

use crate::text::SmallStr;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};
use std::collections::BTreeMap;
use std::fmt;

/// One attribute's value, owned: the scalar kinds decoders produce, or any other JSON value
/// (lists of a repeated attribute, nested JSON) as it is. What [`Attributes::insert`] takes and
/// [`Attributes::remove`] gives back.
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

    /// A borrowed view of the value.
    #[inline]
    pub fn as_ref(&self) -> AttrRef<'_> {
        match self {
            AttrValue::Str(s) => AttrRef::Str(s),
            AttrValue::Number(n) => AttrRef::Number(n.clone()),
            AttrValue::Bool(b) => AttrRef::Bool(*b),
            AttrValue::Json(v) => AttrRef::Json(v),
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
        self.as_ref() == *other
    }
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(s)
    }
}

impl<'de> Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(AttrValue::from)
    }
}

/// One attribute's value as stored, borrowed from its [`Attributes`].
#[derive(Debug, Clone, PartialEq)]
pub enum AttrRef<'a> {
    Str(&'a str),
    Number(Number),
    Bool(bool),
    Json(&'a Value),
}

impl AttrRef<'_> {
    /// The text, when the value is a string.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrRef::Str(s) => Some(s),
            AttrRef::Json(v) => v.as_str(),
            _ => None,
        }
    }

    /// The value as a `serde_json::Value` (copies it).
    pub fn to_value(&self) -> Value {
        match self {
            AttrRef::Str(s) => Value::String((*s).to_owned()),
            AttrRef::Number(n) => Value::Number(n.clone()),
            AttrRef::Bool(b) => Value::Bool(*b),
            AttrRef::Json(v) => (*v).clone(),
        }
    }

    /// An owned copy of the value.
    pub fn to_owned_value(&self) -> AttrValue {
        match self {
            AttrRef::Str(s) => AttrValue::Str(SmallStr::new(s)),
            AttrRef::Number(n) => AttrValue::Number(n.clone()),
            AttrRef::Bool(b) => AttrValue::Bool(*b),
            AttrRef::Json(v) => AttrValue::Json(Box::new((*v).clone())),
        }
    }
}

impl PartialEq<Value> for AttrRef<'_> {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (AttrRef::Str(a), Value::String(b)) => *a == b,
            (AttrRef::Number(a), Value::Number(b)) => a == b,
            (AttrRef::Bool(a), Value::Bool(b)) => a == b,
            (AttrRef::Json(a), b) => *a == b,
            _ => false,
        }
    }
}

impl PartialEq<AttrValue> for AttrRef<'_> {
    fn eq(&self, other: &AttrValue) -> bool {
        *self == other.as_ref()
    }
}

impl Serialize for AttrRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrRef::Str(v) => s.serialize_str(v),
            AttrRef::Number(n) => n.serialize(s),
            AttrRef::Bool(b) => s.serialize_bool(*b),
            AttrRef::Json(v) => v.serialize(s),
        }
    }
}

/// Text of an attribute: borrowed `'static`, or the range `start..end` of the buffer.
#[derive(Debug, Clone, Copy)]
enum Text {
    Static(&'static str),
    Own(u32, u32),
}

/// A name or text value for [`AttributeList`]'s fast pushes: a `'static` string, or text already
/// copied into the list's buffer ([`AttributeList::text`], [`AttributeList::concat`]).
#[derive(Debug, Clone, Copy)]
pub struct AttrText(Text);

impl From<&'static str> for AttrText {
    #[inline]
    fn from(s: &'static str) -> Self {
        AttrText(Text::Static(s))
    }
}

/// A number as stored: non-negative integers are always `U` (as `serde_json::Number` does).
#[derive(Debug, Clone, Copy)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl Num {
    #[inline]
    fn of(n: &Number) -> Num {
        match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Num::U(u),
            (None, Some(i)) => Num::I(i),
            _ => Num::F(n.as_f64().unwrap_or(0.0)),
        }
    }

    #[inline]
    fn number(self) -> Number {
        match self {
            Num::U(u) => Number::from(u),
            Num::I(i) => Number::from(i),
            // Only finite floats are ever stored (they come from a `Number`).
            Num::F(f) => Number::from_f64(f).unwrap_or_else(|| Number::from(0)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Val {
    Text(Text),
    Num(Num),
    Bool(bool),
    /// Index in the JSON values.
    Json(u32),
}

/// Where [`AttributeList::copy`] put a text in the list's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Copied {
    start: usize,
    len: usize,
}

/// A value for [`AttributeList`]'s fast pushes.
#[derive(Debug, Clone, Copy)]
pub struct Scalar(Val);

impl From<AttrText> for Scalar {
    #[inline]
    fn from(t: AttrText) -> Self {
        Scalar(Val::Text(t.0))
    }
}

impl From<&'static str> for Scalar {
    #[inline]
    fn from(s: &'static str) -> Self {
        Scalar(Val::Text(Text::Static(s)))
    }
}

impl From<bool> for Scalar {
    #[inline]
    fn from(b: bool) -> Self {
        Scalar(Val::Bool(b))
    }
}

macro_rules! scalar_from_uint {
    ($($t:ty),*) => {$(
        impl From<$t> for Scalar {
            #[inline]
            fn from(n: $t) -> Self {
                Scalar(Val::Num(Num::U(u64::from(n))))
            }
        }
    )*};
}
scalar_from_uint!(u8, u16, u32, u64);

impl From<i64> for Scalar {
    #[inline]
    fn from(n: i64) -> Self {
        Scalar(Val::Num(if n >= 0 { Num::U(n as u64) } else { Num::I(n) }))
    }
}

/// One attribute, with the first 8 bytes of its name as a big-endian number (zero-padded):
/// comparing those orders most names without comparing the strings.
#[derive(Debug, Clone, Copy)]
struct Entry {
    prefix: u64,
    name: Text,
    value: Val,
}

/// The first 8 bytes of `name`, zero-padded, big-endian: if `prefix(a) < prefix(b)` then
/// `a < b` (a zero pad only ever stands where the shorter name has ended).
#[inline]
fn prefix(name: &str) -> u64 {
    let bytes = name.as_bytes();
    match bytes.get(..8) {
        Some(head) => u64::from_be_bytes(<[u8; 8]>::try_from(head).unwrap_or_default()),
        // Byte by byte (at most 7): cheaper than copying into a padded array.
        None => bytes.iter().zip((8..64).step_by(8).rev()).fold(0, |p, (b, shift)| p | u64::from(*b) << shift),
    }
}

/// A `'static` attribute name with its sort key computed once, for a decoder that pushes the
/// same names record after record ([`AttributeList::push_static`]).
#[derive(Debug, Clone, Copy)]
pub struct StaticName {
    name: &'static str,
    prefix: u64,
}

impl StaticName {
    pub fn new(name: &'static str) -> StaticName {
        StaticName { name, prefix: prefix(name) }
    }

    pub fn as_str(&self) -> &'static str {
        self.name
    }
}

/// The text of `t`, whose `Own` ranges are ranges of `text` (an [`Attributes`]' buffer).
#[inline]
fn text_of(text: &str, t: Text) -> &str {
    match t {
        Text::Static(s) => s,
        Text::Own(start, end) => {
            let bytes = text.as_bytes().get(start as usize..end as usize).unwrap_or(&[]);
            // SAFETY: `Own` ranges are only made by `own` and `AttributeList::range`, around whole
            // `str`s of `text` (checked on character boundaries), which is never truncated but by
            // `clear` (which also drops every range).
            unsafe { std::str::from_utf8_unchecked(bytes) }
        }
    }
}

/// The attributes of an event, sorted by name, each name once.
#[derive(Clone, Default)]
pub struct Attributes {
    entries: Vec<Entry>,
    /// The text of every name and value that is not `'static`.
    text: String,
    /// Values that are neither text, numbers nor booleans (lists, nested objects).
    json: Vec<Value>,
    /// A vector the entries are sorted into (kept for its capacity).
    spare: Vec<Entry>,
    /// The orders of the lists sorted lately on these buffers.
    memo: SortMemo,
}

impl Attributes {
    #[inline]
    pub fn new() -> Attributes {
        Attributes::default()
    }

    #[inline]
    pub fn with_capacity(n: usize) -> Attributes {
        Attributes {
            entries: Vec::with_capacity(n),
            text: String::with_capacity(n * 16),
            json: Vec::new(),
            spare: Vec::new(),
            memo: SortMemo::default(),
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Empties the attributes, keeping their buffers' capacity.
    #[inline]
    pub fn clear(&mut self) {
        self.entries.clear();
        self.text.clear();
        self.json.clear();
    }

    #[inline]
    fn str_of(&self, t: Text) -> &str {
        text_of(&self.text, t)
    }

    /// Whether two names are the same text: the same `'static` string or lengths that differ
    /// answer without comparing bytes.
    #[inline]
    fn same_name(&self, a: Text, b: Text) -> bool {
        match (a, b) {
            (Text::Static(x), Text::Static(y)) if std::ptr::eq(x, y) => true,
            (Text::Static(x), Text::Static(y)) if x.len() != y.len() => false,
            (Text::Own(s1, e1), Text::Own(s2, e2)) if e1.wrapping_sub(s1) != e2.wrapping_sub(s2) => false,
            _ => self.str_of(a) == self.str_of(b),
        }
    }

    /// Copies `parts`, end to end, into the buffer, inline: the room is reserved once and
    /// constant parts (`sd.`) are copied without a call.
    #[inline(always)]
    fn own<const N: usize>(&mut self, parts: &[&str; N]) -> Text {
        let start = self.text.len();
        self.text.reserve(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            self.text.push_str(part);
        }
        self.text_since(start)
    }

    /// The text written into the buffer from `start` to its end. Text past 4 GiB in one event
    /// (no record is that long) is dropped.
    #[inline(always)]
    fn text_since(&mut self, start: usize) -> Text {
        match (u32::try_from(start), u32::try_from(self.text.len())) {
            (Ok(s), Ok(e)) => Text::Own(s, e),
            _ => {
                self.text.truncate(start);
                Text::Static("")
            }
        }
    }

    #[inline]
    fn name_text(&mut self, name: &SmallStr) -> Text {
        match name.as_static() {
            Some(s) => Text::Static(s),
            None => self.own(&[name.as_str()]),
        }
    }

    fn val_of(&mut self, value: AttrValue) -> Val {
        match value {
            AttrValue::Str(s) => Val::Text(self.name_text(&s)),
            AttrValue::Number(n) => Val::Num(Num::of(&n)),
            AttrValue::Bool(b) => Val::Bool(b),
            AttrValue::Json(v) => self.json_val(*v),
        }
    }

    fn json_val(&mut self, v: Value) -> Val {
        match u32::try_from(self.json.len()) {
            Ok(i) => {
                self.json.push(v);
                Val::Json(i)
            }
            Err(_) => Val::Bool(false),
        }
    }

    #[inline]
    fn ref_of(&self, v: Val) -> AttrRef<'_> {
        match v {
            Val::Text(t) => AttrRef::Str(self.str_of(t)),
            Val::Num(n) => AttrRef::Number(n.number()),
            Val::Bool(b) => AttrRef::Bool(b),
            Val::Json(i) => self.json.get(i as usize).map_or(AttrRef::Json(&Value::Null), AttrRef::Json),
        }
    }

    #[inline]
    fn entry(&mut self, name: Text, value: Val) -> Entry {
        Entry { prefix: prefix(self.str_of(name)), name, value }
    }

    #[inline]
    fn find(&self, name: &str) -> Result<usize, usize> {
        let p = prefix(name);
        let cmp = |e: &Entry| e.prefix.cmp(&p).then_with(|| self.str_of(e.name).cmp(name));
        // Names mostly arrive in order: check the end before searching.
        match self.entries.last() {
            Some(last) if cmp(last).is_lt() => Err(self.entries.len()),
            _ => self.entries.binary_search_by(cmp),
        }
    }

    #[inline]
    pub fn get(&self, name: &str) -> Option<AttrRef<'_>> {
        let i = self.find(name).ok()?;
        self.entries.get(i).map(|e| self.ref_of(e.value))
    }

    /// The value of `name` as a `serde_json::Value` (a copy; for tests and tools).
    pub fn value(&self, name: &str) -> Option<Value> {
        self.get(name).map(|v| v.to_value())
    }

    #[inline]
    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name` to `value`, returning the value it replaces.
    pub fn insert(&mut self, name: impl Into<SmallStr>, value: impl Into<AttrValue>) -> Option<AttrValue> {
        let name = name.into();
        match self.find(&name) {
            Ok(i) => {
                let value = self.val_of(value.into());
                let old = self.entries.get(i).map(|e| self.ref_of(e.value).to_owned_value());
                if let Some(e) = self.entries.get_mut(i) {
                    e.value = value;
                }
                old
            }
            Err(i) => {
                let name = self.name_text(&name);
                let value = self.val_of(value.into());
                let entry = self.entry(name, value);
                self.entries.insert(i, entry);
                None
            }
        }
    }

    /// Sets `name` to `value` unless it is already set; whether it was set.
    pub fn insert_new(&mut self, name: impl Into<SmallStr>, value: impl Into<AttrValue>) -> bool {
        let name = name.into();
        match self.find(&name) {
            Ok(_) => false,
            Err(i) => {
                let name = self.name_text(&name);
                let value = self.val_of(value.into());
                let entry = self.entry(name, value);
                self.entries.insert(i, entry);
                true
            }
        }
    }

    /// Sets `name` to `value` unless it is already set, in which case `value` is given back.
    pub fn try_insert(&mut self, name: SmallStr, value: AttrValue) -> Result<(), AttrValue> {
        match self.find(&name) {
            Ok(_) => Err(value),
            Err(i) => {
                let name = self.name_text(&name);
                let value = self.val_of(value);
                let entry = self.entry(name, value);
                self.entries.insert(i, entry);
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
                let value = self.val_of(value.into());
                if let Some(existing) = self.entries.get(i).map(|e| e.value) {
                    let joined = self.join(existing, value);
                    if let Some(e) = self.entries.get_mut(i) {
                        e.value = joined;
                    }
                }
            }
            Err(i) => {
                let name = self.name_text(&name);
                let value = self.val_of(value.into());
                let entry = self.entry(name, value);
                self.entries.insert(i, entry);
            }
        }
    }

    /// `value` added to `existing`: a list grows, a single value becomes a list of both.
    fn join(&mut self, existing: Val, value: Val) -> Val {
        let value = self.ref_of(value).to_value();
        if let Val::Json(i) = existing {
            if let Some(Value::Array(items)) = self.json.get_mut(i as usize) {
                items.push(value);
                return existing;
            }
        }
        let first = self.ref_of(existing).to_value();
        self.json_val(Value::Array(vec![first, value]))
    }

    pub fn remove(&mut self, name: &str) -> Option<AttrValue> {
        let i = self.find(name).ok()?;
        let value = self.entries.get(i).map(|e| self.ref_of(e.value).to_owned_value());
        self.entries.remove(i);
        value
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, AttrRef<'_>)> {
        self.entries.iter().map(|e| (self.str_of(e.name), self.ref_of(e.value)))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| self.str_of(e.name))
    }

    /// Replaces every occurrence of `from` by `to` in the text values (nested JSON values
    /// included, to a depth of 64).
    pub fn replace_in_values(&mut self, from: &str, to: &str) {
        if from.is_empty() {
            return;
        }
        for i in 0..self.entries.len() {
            let Some(Val::Text(t)) = self.entries.get(i).map(|e| e.value) else { continue };
            let text = self.str_of(t);
            if text.contains(from) {
                let replaced = text.replace(from, to);
                let new = self.own(&[&replaced]);
                if let Some(e) = self.entries.get_mut(i) {
                    e.value = Val::Text(new);
                }
            }
        }
        for v in &mut self.json {
            replace_in_value(v, from, to, 0);
        }
    }

    /// The attributes as a `BTreeMap` of JSON values (copies them; for tools and tests).
    pub fn to_map(&self) -> BTreeMap<String, Value> {
        self.iter().map(|(k, v)| (k.to_owned(), v.to_value())).collect()
    }
}

fn replace_in_value(value: &mut Value, from: &str, to: &str, depth: usize) {
    match value {
        Value::String(s) if s.contains(from) => *s = s.replace(from, to),
        Value::Array(items) if depth < 64 => items.iter_mut().for_each(|v| replace_in_value(v, from, to, depth + 1)),
        Value::Object(map) if depth < 64 => map.values_mut().for_each(|v| replace_in_value(v, from, to, depth + 1)),
        _ => {}
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

/// Collects attributes in the order a decoder finds them (a RADIUS packet's, not the names'),
/// then sorts them once, in place ([`AttributeList::finish`]): cheaper than keeping them sorted
/// while inserting out of order. The result is what the same [`Attributes::append`] (for
/// [`AttributeList::append`]) and [`Attributes::insert`] (for [`AttributeList::insert`]) calls in
/// the same order would give. Built on the buffers of a previous record's attributes
/// ([`AttributeList::reusing`]), it allocates nothing in steady state; it fills and sorts those
/// attributes in place (an event's own), so that no list is moved or dropped per record.
#[derive(Debug)]
pub struct AttributeList<'a> {
    attrs: &'a mut Attributes,
    /// Whether every entry pushed so far has a greater 8-byte name prefix than the one before
    /// (then the list is in order, each name once, without comparing names).
    ascending: bool,
    /// Bit `i`: entry `i` replaces the earlier values of its name (an `insert`) rather than
    /// joining them; entries from the 64th on are listed in `replacing`.
    replace: u64,
    replacing: Vec<usize>,
}

/// Lists up to this long are sorted by a key array on the stack; longer ones by `sort_by`.
const SORTED_BY_KEYS: usize = 32;

impl<'a> AttributeList<'a> {
    /// An empty list on the buffers of `attrs` (emptied), which [`AttributeList::finish`] leaves
    /// sorted.
    #[inline]
    pub fn reusing(attrs: &'a mut Attributes) -> AttributeList<'a> {
        attrs.clear();
        AttributeList { attrs, ascending: true, replace: 0, replacing: Vec::new() }
    }

    /// `text` copied into the list's buffer, to push as a name or a value.
    #[inline]
    pub fn text(&mut self, text: &str) -> AttrText {
        AttrText(self.attrs.own(&[text]))
    }

    /// `parts` copied end to end into the list's buffer (`sd.` and a parameter name).
    #[inline]
    pub fn concat<const N: usize>(&mut self, parts: &[&str; N]) -> AttrText {
        AttrText(self.attrs.own(parts))
    }

    /// Copies `text` (a record) into the list's buffer, for [`AttributeList::range`] to take
    /// names and values from it without copying them again.
    #[inline]
    pub fn copy(&mut self, text: &str) -> Copied {
        let start = self.attrs.text.len();
        self.attrs.text.push_str(text);
        Copied { start, len: text.len() }
    }

    /// The bytes `start..end` of the text `copy` copied (empty when that is not a range of
    /// whole characters of it).
    #[inline]
    pub fn range(&self, copy: Copied, start: usize, end: usize) -> AttrText {
        let buf = &self.attrs.text;
        let (s, e) = (copy.start + start, copy.start + end);
        if start > end || end > copy.len || !buf.is_char_boundary(s) || !buf.is_char_boundary(e) {
            return AttrText(Text::Static(""));
        }
        match (u32::try_from(s), u32::try_from(e)) {
            (Ok(s), Ok(e)) => AttrText(Text::Own(s, e)),
            _ => AttrText(Text::Static("")),
        }
    }

    /// Lowercase hex of `bytes` in the list's buffer.
    #[inline]
    pub fn hex(&mut self, bytes: &[u8]) -> AttrText {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let start = self.attrs.text.len();
        self.attrs.text.reserve(bytes.len() * 2);
        for b in bytes {
            self.attrs.text.push(char::from(DIGITS[usize::from(b >> 4)]));
            self.attrs.text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        AttrText(self.attrs.text_since(start))
    }

    /// The text of `t`.
    #[inline]
    pub fn str(&self, t: AttrText) -> &str {
        self.attrs.str_of(t.0)
    }

    /// Whether an entry named `name` was pushed already (a linear search: for short lists).
    #[inline]
    pub fn contains(&self, name: AttrText) -> bool {
        let text = self.attrs.str_of(name.0);
        let p = prefix(text);
        self.attrs.entries.iter().any(|e| e.prefix == p && self.attrs.str_of(e.name) == text)
    }

    /// The decimal digits of `n` in the list's buffer.
    #[inline]
    pub fn decimal(&mut self, n: u64) -> AttrText {
        self.concat(&[&SmallStr::decimal(n)])
    }

    /// As [`Attributes::append`], for a name and value already in the buffer (or `'static`).
    #[inline(always)]
    pub fn push(&mut self, name: impl Into<AttrText>, value: impl Into<Scalar>) {
        let entry = self.attrs.entry(name.into().0, value.into().0);
        self.add(entry);
    }

    /// As [`AttributeList::push`], for a name whose sort key is computed already.
    #[inline(always)]
    pub fn push_static(&mut self, name: StaticName, value: impl Into<Scalar>) {
        self.add(Entry { prefix: name.prefix, name: Text::Static(name.name), value: value.into().0 });
    }

    #[inline(always)]
    fn add(&mut self, entry: Entry) {
        if self.attrs.entries.last().is_some_and(|last| last.prefix >= entry.prefix) {
            self.ascending = false;
        }
        self.attrs.entries.push(entry);
    }

    /// As [`Attributes::insert`], for a name and value already in the buffer (or `'static`).
    #[inline]
    pub fn push_replacing(&mut self, name: impl Into<AttrText>, value: impl Into<Scalar>) {
        self.mark_replacing();
        self.push(name, value);
    }

    #[inline]
    fn mark_replacing(&mut self) {
        let i = self.attrs.entries.len();
        match 1u64.checked_shl(i as u32).filter(|_| i < 64) {
            Some(bit) => self.replace |= bit,
            None => self.replacing.push(i),
        }
    }

    /// As [`Attributes::append`]: a name given several times becomes a list of its values.
    pub fn append(&mut self, name: impl Into<SmallStr>, value: impl Into<AttrValue>) {
        let name = self.attrs.name_text(&name.into());
        let value = self.attrs.val_of(value.into());
        let entry = self.attrs.entry(name, value);
        self.add(entry);
    }

    /// As [`Attributes::insert`]: the value replaces the name's earlier ones.
    pub fn insert(&mut self, name: impl Into<SmallStr>, value: impl Into<AttrValue>) {
        self.mark_replacing();
        self.append(name, value);
    }

    fn replaces(&self, i: usize) -> bool {
        if i < 64 {
            self.replace >> i & 1 == 1
        } else {
            self.replacing.contains(&i)
        }
    }

    /// Whether the entries are already in strictly increasing name order (no sort, no repeat).
    fn in_order(&self) -> bool {
        let a = &self.attrs;
        a.entries.windows(2).all(|pair| match pair {
            [x, y] => x.prefix < y.prefix || (x.prefix == y.prefix && a.str_of(x.name) < a.str_of(y.name)),
            _ => true,
        })
    }

    /// Ends a list whose names were pushed in strictly increasing order, each once: by a
    /// decoder that knows the order of its names beforehand (checked in debug builds only).
    #[inline]
    pub fn finish_in_order(self) {
        debug_assert!(self.in_order(), "attribute names pushed out of order");
    }

    /// Sorts the attributes by name, each name once (in the [`Attributes`] the list was made on).
    pub fn finish(self) {
        if self.ascending || self.in_order() {
            return;
        }
        if self.attrs.entries.len() <= 64 {
            return self.finish_short();
        }
        self.finish_long()
    }

    /// [`AttributeList::finish`] of a list of at most 64 entries: the name order of the same
    /// names pushed in the same order lately ([`SortMemo`]), else their keys (the name's first
    /// 8 bytes above the index) sorted on the stack, names sharing 8 bytes ordered by name; then
    /// the entries gathered in that order into the spare vector, equal names merged.
    fn finish_short(self) {
        let AttributeList { attrs, replace, .. } = self;
        let n = attrs.entries.len();
        // The common case, names in an order seen lately, none repeated: the entries gathered
        // straight in the remembered order.
        let seen = attrs.memo.slots.iter().find(|slot| slot.matches(&attrs.entries, &attrs.text));
        if let Some(slot) = seen.filter(|slot| !slot.repeats) {
            let mut sorted = std::mem::take(&mut attrs.spare);
            gather(&attrs.entries, &slot.order, &mut sorted);
            attrs.spare = std::mem::replace(&mut attrs.entries, sorted);
            return;
        }
        let mut order = [0u8; 64];
        // Whether some names are equal (then their entries are merged).
        let repeats = match seen {
            Some(slot) => {
                for (o, i) in order.iter_mut().zip(&slot.order) {
                    *o = *i;
                }
                slot.repeats
            }
            None => {
                let mut keys = [0u128; 64];
                for (key, (i, e)) in keys.iter_mut().zip(attrs.entries.iter().enumerate()) {
                    *key = u128::from(e.prefix) << 8 | i as u128;
                }
                let keys = keys.get_mut(..n).unwrap_or_default();
                // The keys are distinct (the index is in them): an unstable sort keeps the
                // entries' order among names sharing their first 8 bytes.
                keys.sort_unstable();
                let a = &*attrs;
                let name = |key: u128| a.entries.get((key & 0xff) as usize).map_or("", |e| a.str_of(e.name));
                insertion_sort(keys, |a, b| a >> 8 == b >> 8 && (name(*a), *a & 0xff) > (name(*b), *b & 0xff));
                for (o, key) in order.iter_mut().zip(keys.iter()) {
                    *o = (key & 0xff) as u8;
                }
                let repeats = keys.windows(2).any(|pair| match pair {
                    [x, y] => x >> 8 == y >> 8 && name(*x) == name(*y),
                    _ => false,
                });
                attrs.memo.store(&attrs.entries, &attrs.text, order.get(..n).unwrap_or_default(), repeats);
                repeats
            }
        };
        let mut sorted = std::mem::take(&mut attrs.spare);
        sorted.clear();
        let order = order.get(..n).unwrap_or_default();
        if !repeats {
            gather(&attrs.entries, order, &mut sorted);
        } else {
            for &i in order {
                let i = usize::from(i);
                let Some(e) = attrs.entries.get(i).copied() else { continue };
                let same =
                    sorted.last().is_some_and(|kept| kept.prefix == e.prefix && attrs.same_name(kept.name, e.name));
                match sorted.last_mut() {
                    Some(kept) if same => {
                        kept.value = if replace >> i & 1 == 1 { e.value } else { attrs.join(kept.value, e.value) };
                    }
                    _ => sorted.push(e),
                }
            }
        }
        attrs.spare = std::mem::replace(&mut attrs.entries, sorted);
    }

    /// [`AttributeList::finish`] of a longer list.
    fn finish_long(self) {
        let n = self.attrs.entries.len();
        // order[k]: the original index of the k-th entry in name order (equal names in their
        // original order).
        let mut order_short = [0usize; SORTED_BY_KEYS];
        let mut order_long = Vec::new();
        let order: &[usize] = if n <= SORTED_BY_KEYS {
            // The first 7 bytes of the name above the index: integer comparisons sort most.
            let mut keys = [0u64; SORTED_BY_KEYS];
            for (key, (i, e)) in keys.iter_mut().zip(self.attrs.entries.iter().enumerate()) {
                *key = (e.prefix >> 8) << 8 | i as u64;
            }
            let keys = keys.get_mut(..n).unwrap_or_default();
            insertion_sort(keys, |a, b| a > b);
            // Names sharing their first 7 bytes: ordered by name, then index.
            let attrs = &self.attrs;
            let name = |key: u64| attrs.entries.get((key & 0xff) as usize).map_or("", |e| attrs.str_of(e.name));
            insertion_sort(keys, |a, b| a >> 8 == b >> 8 && (name(*a), *a & 0xff) > (name(*b), *b & 0xff));
            for (slot, key) in order_short.iter_mut().zip(keys.iter()) {
                *slot = (key & 0xff) as usize;
            }
            order_short.get(..n).unwrap_or_default()
        } else {
            order_long.extend(0..n);
            let attrs = &self.attrs;
            order_long.sort_by(|a, b| {
                let key = |i: &usize| attrs.entries.get(*i).map(|e| (e.prefix, attrs.str_of(e.name)));
                key(a).cmp(&key(b)).then(a.cmp(b))
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
        let entries = &mut self.attrs.entries;
        for k in 0..n {
            let mut j = order.get(k).copied().unwrap_or(k);
            while j < k {
                j = order.get(j).copied().unwrap_or(k);
            }
            entries.swap(k, j);
        }
        // Equal names, now adjacent, become one entry.
        let attrs = self.attrs;
        let mut write = 0usize;
        for read in 0..n {
            let Some(later) = attrs.entries.get(read).copied() else { break };
            let same = read > 0
                && attrs.entries.get(write).is_some_and(|kept| {
                    kept.prefix == later.prefix && attrs.str_of(kept.name) == attrs.str_of(later.name)
                });
            if !same {
                if read > 0 {
                    write += 1;
                }
                if let Some(slot) = attrs.entries.get_mut(write) {
                    *slot = later;
                }
                continue;
            }
            let replaces = if read < 64 { sorted_replace >> read & 1 == 1 } else { sorted_replacing.contains(&read) };
            let Some(kept) = attrs.entries.get(write).map(|e| e.value) else { break };
            let value = if replaces { later.value } else { attrs.join(kept, later.value) };
            if let Some(slot) = attrs.entries.get_mut(write) {
                slot.value = value;
            }
        }
        attrs.entries.truncate(if n == 0 { 0 } else { write + 1 });
    }
}

/// The name orders of the last lists of up to 64 entries sorted on these buffers: a source
/// repeats a few orders (a RADIUS NAS one per kind of packet), which are then not sorted again.
#[derive(Debug, Clone, Default)]
struct SortMemo {
    slots: Vec<MemoSlot>,
    /// The slot the next new order takes once every slot is used.
    next: usize,
}

/// Orders remembered.
const MEMO_SLOTS: usize = 4;

/// One list's names in push order, and the order that sorts them.
#[derive(Debug, Clone, Default)]
struct MemoSlot {
    /// `'static`, or a range of `text`.
    names: Vec<Text>,
    text: String,
    /// The push-order index of each entry, in name order.
    order: Vec<u8>,
    /// Whether some of the names are equal.
    repeats: bool,
}

impl MemoSlot {
    fn str_of(&self, t: Text) -> &str {
        match t {
            Text::Static(s) => s,
            Text::Own(start, end) => self.text.get(start as usize..end as usize).unwrap_or(""),
        }
    }

    /// Whether `entries` (their text in `text`) have the same names in the same order.
    fn matches(&self, entries: &[Entry], text: &str) -> bool {
        self.names.len() == entries.len()
            && self.names.iter().zip(entries).all(|(m, e)| match (*m, e.name) {
                (Text::Static(a), Text::Static(b)) if std::ptr::eq(a, b) => true,
                (m, name) => self.str_of(m) == text_of(text, name),
            })
    }
}

impl SortMemo {
    /// Remembers `order` for the names of `entries` (their text in `text`).
    fn store(&mut self, entries: &[Entry], text: &str, order: &[u8], repeats: bool) {
        if self.slots.len() < MEMO_SLOTS {
            self.slots.push(MemoSlot::default());
            self.next = self.slots.len() - 1;
        }
        let Some(slot) = self.slots.get_mut(self.next) else { return };
        self.next = (self.next + 1) % MEMO_SLOTS;
        slot.names.clear();
        slot.text.clear();
        slot.order.clear();
        for e in entries {
            let name = match e.name {
                Text::Static(s) => Text::Static(s),
                own => {
                    let start = slot.text.len();
                    slot.text.push_str(text_of(text, own));
                    match (u32::try_from(start), u32::try_from(slot.text.len())) {
                        (Ok(s), Ok(e)) => Text::Own(s, e),
                        // Never matched again (no record has 4 GiB of names).
                        _ => Text::Static("\u{0}"),
                    }
                }
            };
            slot.names.push(name);
        }
        slot.order.extend_from_slice(order);
        slot.repeats = repeats;
    }
}

/// `entries` in `order` (a permutation of their indexes) into `sorted` (emptied first): copied
/// in one block, then each slot overwritten by its entry, with no capacity check per entry.
#[inline]
fn gather(entries: &[Entry], order: &[u8], sorted: &mut Vec<Entry>) {
    sorted.clear();
    sorted.extend_from_slice(entries);
    for (slot, &i) in sorted.iter_mut().zip(order) {
        if let Some(e) = entries.get(usize::from(i)) {
            *slot = *e;
        }
    }
}

/// Sorts `items` by swapping neighbours while `after(left, right)`: for the short lists of one
/// record.
fn insertion_sort<T: Copy>(items: &mut [T], after: impl Fn(&T, &T) -> bool) {
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

impl From<BTreeMap<String, Value>> for Attributes {
    fn from(map: BTreeMap<String, Value>) -> Self {
        // Already sorted by name, each name once.
        let mut attrs = Attributes::with_capacity(map.len());
        for (k, v) in map {
            let name = attrs.own(&[&k]);
            let value = attrs.val_of(AttrValue::from(v));
            let entry = attrs.entry(name, value);
            attrs.entries.push(entry);
        }
        attrs
    }
}

impl PartialEq<BTreeMap<String, Value>> for Attributes {
    fn eq(&self, other: &BTreeMap<String, Value>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|((k, v), (ok, ov))| k == ok && v == *ov)
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for e in &self.entries {
            map.serialize_key(self.str_of(e.name))?;
            match e.value {
                Val::Text(t) => map.serialize_value(self.str_of(t))?,
                Val::Num(Num::U(u)) => map.serialize_value(&u)?,
                Val::Num(Num::I(i)) => map.serialize_value(&i)?,
                Val::Num(n @ Num::F(_)) => map.serialize_value(&n.number())?,
                Val::Bool(b) => map.serialize_value(&b)?,
                Val::Json(i) => map.serialize_value(self.json.get(i as usize).unwrap_or(&Value::Null))?,
            }
        }
        map.end()
    }
}

impl Attributes {
    /// Appends the attributes as the JSON object their `Serialize` gives with `serde_json`,
    /// byte for byte, written by hand ([`crate::json`]).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::json::write_str(out, self.str_of(e.name));
            out.push(b':');
            match e.value {
                Val::Text(t) => crate::json::write_str(out, self.str_of(t)),
                Val::Num(Num::U(u)) => crate::json::write_int(out, u),
                Val::Num(Num::I(i)) => crate::json::write_int(out, i),
                Val::Bool(b) => crate::json::write_bool(out, b),
                // Floats and nested values are rare: serde_json writes them.
                Val::Num(n @ Num::F(_)) => write_with_serde(out, &n.number()),
                Val::Json(i) => write_with_serde(out, self.json.get(i as usize).unwrap_or(&Value::Null)),
            }
        }
        out.push(b'}');
    }
}

/// Appends a value as `serde_json` writes it (to a `Vec`, which cannot fail; a value that
/// cannot be written, which a number or a `Value` never is, is written as `null`).
fn write_with_serde(out: &mut Vec<u8>, value: &impl Serialize) {
    let mark = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(mark);
        out.extend_from_slice(b"null");
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
    fn written_by_hand_as_serde_json_writes_them() {
        let text =
            r#"{"a":"x\"y\n","b":1,"c":-2,"d":1.5,"e":true,"f":[1,{"g":null}],"h":1e300,"i":"","j":false,"k":-0.0}"#;
        let attributes: Attributes = serde_json::from_str(text).unwrap();
        let mut out = Vec::new();
        attributes.write_json(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&attributes).unwrap());
        let mut out = Vec::new();
        Attributes::default().write_json(&mut out);
        assert_eq!(out, b"{}");
    }

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
            let mut attrs = Attributes::with_capacity(len);
            let mut list = AttributeList::reusing(&mut attrs);
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
            list.finish();
            assert_eq!(attrs, expected, "{len} operations");
        }
    }

    #[test]
    fn lists_on_reused_buffers_sort_as_fresh_ones() {
        // A few name orders that repeat (remembered), others that change, static and copied
        // names, appends and inserts: every list sorts as the same insertions would.
        let orders: [&[&str]; 6] = [
            &["Acct-Status-Type", "NAS-Port", "Acct-Status-Type-Name", "Class", "Class", "a"],
            &["radius.identifier", "Acct-Session-Id", "Acct-Session-Time", "NAS-IP-Address"],
            &["b", "a", "c", "a", "b"],
            &["Acct-Status-Type", "NAS-Port", "Acct-Status-Type-Name", "Class", "Class", "b"],
            &[],
            &["x"],
        ];
        let mut state = 0x853c_49e6_748f_ea9bu64;
        let mut reused = Attributes::new();
        for round in 0..400u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let names = orders[(state % orders.len() as u64) as usize];
            let mut list = AttributeList::reusing(&mut reused);
            let mut expected = Attributes::new();
            for (i, name) in names.iter().enumerate() {
                let value = round * 100 + i as u64;
                let copied = state >> (i % 32) & 1 == 1;
                let name_text = if copied { list.text(name) } else { AttrText::from(*name) };
                if state >> (i + 20) & 3 == 0 {
                    list.push_replacing(name_text, value);
                    expected.insert(*name, value);
                } else {
                    list.push(name_text, value);
                    expected.append(*name, value);
                }
            }
            list.finish();
            assert_eq!(reused, expected, "round {round}: {names:?}");
            assert_eq!(serde_json::to_string(&reused).unwrap(), serde_json::to_string(&expected).unwrap());
        }
    }

    #[test]
    fn prefixes_are_the_first_8_bytes_zero_padded() {
        for name in ["", "a", "sd.port", "syslog.", "syslog.f", "Acct-Status-Type", "\u{e9}t\u{e9}", "ab\0"] {
            let mut padded = [0u8; 8];
            for (p, b) in padded.iter_mut().zip(name.bytes()) {
                *p = b;
            }
            assert_eq!(prefix(name), u64::from_be_bytes(padded), "{name:?}");
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
            assert_eq!(attrs.get(name), Some(AttrRef::Bool(true)), "{name:?}");
        }
        assert_eq!(attrs.get("abcdefg"), None);
    }
}
