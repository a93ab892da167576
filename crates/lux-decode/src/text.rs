//! The text record formats: JSON lines (one JSON object per record, nested objects flattened to
//! dotted keys) and key=value (`k=v k2="quoted v"`, with backslash escapes), both decoded to a
//! flat set of fields that the source's mapping turns into an event.

use crate::{err, DecodeError};
use lux_model::DeadLetterReason as R;
use lux_model::{AttrValue, SmallStr};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The decoded fields of a record, by name: they become the event's attributes, less what the
/// source's mapping takes.
pub(crate) type Fields = lux_model::Attributes;

/// Nested objects deeper than this are kept as JSON values instead of being flattened further.
const MAX_FLATTEN_DEPTH: usize = 16;

/// `bytes` without its line terminator (`\n`, `\r\n`) and surrounding blanks.
fn trim_record(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    bytes.get(start..end.max(start)).unwrap_or(&[])
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, DecodeError> {
    crate::cursor::utf8(bytes)
        .map_err(|e| DecodeError::new(R::BadUtf8, format!("{what}: invalid UTF-8 at byte {}", e.valid_up_to())))
}

/// One JSON object -> fields. Nested objects are flattened (`{"a":{"b":1}}` gives `a.b = 1`);
/// arrays are kept as arrays.
/// `reuse`: the buffers of a previous record's fields (emptied).
pub(crate) fn json(bytes: &[u8], mut reuse: Fields) -> Result<Fields, DecodeError> {
    let text = utf8(trim_record(bytes), "json")?;
    if text.is_empty() {
        return err(R::Truncated, "json: the record is empty");
    }
    if text.starts_with('{') {
        // The common case: flattened while it is parsed, names and short strings in place.
        reuse.clear();
        let mut fields = reuse;
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed =
            serde::de::DeserializeSeed::deserialize(Flatten { fields: &mut fields, prefix: None, depth: 0 }, &mut de)
                .and_then(|_| de.end());
        return match parsed {
            Ok(()) => Ok(fields),
            Err(e) => Err(json_error(e)),
        };
    }
    // Not an object: parsed whole, for the error to name what it is.
    match serde_json::from_str::<Value>(text) {
        Ok(other) => err(R::BadValue, format!("json: the record is a JSON {}, not an object", json_type(&other))),
        Err(e) => Err(json_error(e)),
    }
}

fn json_error(e: serde_json::Error) -> DecodeError {
    if e.is_eof() {
        DecodeError::new(
            R::Truncated,
            format!("json: the record ends inside a value (line {}, column {})", e.line(), e.column()),
        )
    } else {
        DecodeError::new(R::BadValue, format!("json: {e}"))
    }
}

/// Reads a JSON object into `fields`, nested objects flattened under `prefix.` (as [`flatten`]
/// does, without building the `Value` tree first). Of two values for one name, the later wins.
struct Flatten<'f> {
    fields: &'f mut Fields,
    prefix: Option<&'f str>,
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for Flatten<'_> {
    /// How many names the object had.
    type Value = usize;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Flatten<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut names = 0;
        while let Some(name) = map.next_key_seed(Name { prefix: self.prefix })? {
            names += 1;
            map.next_value_seed(Field { fields: &mut *self.fields, name, depth: self.depth })?;
        }
        Ok(names)
    }
}

/// A name of a JSON object, as the field's name (`prefix.name`), without allocating when short.
struct Name<'f> {
    prefix: Option<&'f str>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Name<'_> {
    type Value = SmallStr;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<SmallStr, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for Name<'_> {
    type Value = SmallStr;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a name")
    }
    fn visit_str<E>(self, key: &str) -> Result<SmallStr, E> {
        Ok(match self.prefix {
            Some(p) => SmallStr::concat(&[p, ".", key]),
            None => SmallStr::new(key),
        })
    }
}

/// One value of a JSON object, stored under `name` (an object flattened below it).
struct Field<'f> {
    fields: &'f mut Fields,
    name: SmallStr,
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for Field<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Field<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.fields.insert(self.name, v);
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.fields.insert(self.name, v);
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.fields.insert(self.name, v);
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.fields.insert(self.name, AttrValue::from(Value::from(v)));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.fields.insert(self.name, v);
        Ok(())
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.fields.insert(self.name, v);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.fields.insert(self.name, AttrValue::Json(Box::new(Value::Null)));
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let list = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        self.fields.insert(self.name, AttrValue::Json(Box::new(list)));
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_FLATTEN_DEPTH {
            // Deep enough: kept as a JSON value.
            let object = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            self.fields.insert(self.name, AttrValue::Json(Box::new(object)));
            return Ok(());
        }
        let prefix = self.name.clone();
        let names =
            Flatten { fields: &mut *self.fields, prefix: Some(&prefix), depth: self.depth + 1 }.visit_map(map)?;
        if names == 0 {
            // An empty object has no field to flatten into: it is kept as it is.
            self.fields.insert(self.name, AttrValue::Json(Box::new(Value::Object(Map::new()))));
        }
        Ok(())
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The flattening of a parsed object, as [`Flatten`] does it while parsing (the reference its
/// tests compare with).
#[cfg(test)]
fn flatten(fields: &mut Fields, prefix: Option<&str>, object: Map<String, Value>, depth: usize) {
    for (k, v) in object {
        let name = match prefix {
            Some(p) => format!("{p}.{k}"),
            None => k,
        };
        match v {
            Value::Object(inner) if depth < MAX_FLATTEN_DEPTH && !inner.is_empty() => {
                flatten(fields, Some(&name), inner, depth + 1)
            }
            v => {
                fields.insert(name, v);
            }
        }
    }
}

/// `key=value` pairs separated by blanks. A value is either bare (up to the next blank) or
/// quoted with `"` (or `'`), where `\"`, `\'`, `\\`, `\n`, `\r` and `\t` are escapes. A key
/// repeated keeps its last value. A token without `=` is refused (`bad_value`).
/// `reuse`: the buffers of a previous record's fields (emptied).
pub(crate) fn kv(bytes: &[u8], mut reuse: Fields) -> Result<Fields, DecodeError> {
    let text = utf8(trim_record(bytes), "kv")?;
    if text.is_empty() {
        return err(R::Truncated, "kv: the record is empty");
    }
    reuse.clear();
    let mut fields = reuse;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let key_start = i;
        while b.get(i).is_some_and(|c| *c != b'=' && !c.is_ascii_whitespace()) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return err(
                R::BadValue,
                format!(
                    "kv: the token at byte {key_start} ({:?}) is not key=value",
                    text.get(key_start..i).unwrap_or("").chars().take(40).collect::<String>()
                ),
            );
        }
        let key = text.get(key_start..i).unwrap_or("");
        if key.is_empty() {
            return err(R::BadValue, format!("kv: empty key before '=' at byte {i}"));
        }
        i += 1; // '='
        let value = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let open = i;
                i += 1;
                let mut value = String::new();
                let mut run = i;
                loop {
                    match b.get(i) {
                        None => {
                            return err(
                                R::Truncated,
                                format!("kv: the value of {key:?} opened with a quote at byte {open} is never closed"),
                            )
                        }
                        Some(c) if *c == q => {
                            value.push_str(text.get(run..i).unwrap_or(""));
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            value.push_str(text.get(run..i).unwrap_or(""));
                            match b.get(i + 1) {
                                Some(b'n') => value.push('\n'),
                                Some(b'r') => value.push('\r'),
                                Some(b't') => value.push('\t'),
                                Some(c @ (b'"' | b'\'' | b'\\')) => value.push(char::from(*c)),
                                // Not an escape: the backslash stands for itself.
                                _ => {
                                    value.push('\\');
                                    i += 1;
                                    run = i;
                                    continue;
                                }
                            }
                            i += 2;
                            run = i;
                        }
                        Some(_) => i += 1,
                    }
                }
                if b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return err(
                        R::BadValue,
                        format!(
                            "kv: the quoted value of {key:?} is followed by {:?} at byte {i}, not a blank",
                            char::from(b.get(i).copied().unwrap_or(b'?'))
                        ),
                    );
                }
                AttrValue::from(value)
            }
            _ => {
                let start = i;
                while b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    i += 1;
                }
                AttrValue::Str(SmallStr::new(text.get(start..i).unwrap_or("")))
            }
        };
        fields.insert(key, value);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattening_while_parsing_equals_flattening_the_tree() {
        let mut deep = json!({"leaf": 1});
        for i in 0..20 {
            deep = json!({ format!("l{i}"): deep, "n": i });
        }
        for doc in [
            json!({}),
            json!({"a": 1, "b": "two", "c": true, "d": null, "e": 1.5, "f": -3, "g": u64::MAX}),
            json!({"a": {"b": {"c": "x"}, "d": []}, "e": {}, "f": [1, {"g": 2}], "h": {"i": {}}}),
            json!({"esc\"aped": "line\nbreak \u{e9}", "long": "x".repeat(100), "k".repeat(40): 1}),
            deep,
        ] {
            let text = doc.to_string();
            let Value::Object(object) = doc else { unreachable!() };
            let mut expected = Fields::new();
            flatten(&mut expected, None, object, 0);
            assert_eq!(json(text.as_bytes(), Fields::new()).unwrap(), expected, "{text}");
        }
        assert_eq!(json(b"[1]", Fields::new()).unwrap_err().reason, R::BadValue);
        assert_eq!(json(b"{\"a\": ", Fields::new()).unwrap_err().reason, R::Truncated);
        assert_eq!(json(b"{\"a\": 1} x", Fields::new()).unwrap_err().reason, R::BadValue);
    }
}
