//! The text record formats: JSON lines (one JSON object per record, nested objects flattened to
//! dotted keys) and key=value (`k=v k2="quoted v"`, with backslash escapes), both decoded to a
//! flat set of fields that the source's mapping turns into an event.

use crate::{err, DecodeError};
use lux_model::DeadLetterReason as R;
use lux_model::{AttrValue, SmallStr};
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
    std::str::from_utf8(bytes)
        .map_err(|e| DecodeError::new(R::BadUtf8, format!("{what}: invalid UTF-8 at byte {}", e.valid_up_to())))
}

/// One JSON object -> fields. Nested objects are flattened (`{"a":{"b":1}}` gives `a.b = 1`);
/// arrays are kept as arrays.
pub(crate) fn json(bytes: &[u8]) -> Result<Fields, DecodeError> {
    let text = utf8(trim_record(bytes), "json")?;
    if text.is_empty() {
        return err(R::Truncated, "json: the record is empty");
    }
    let object: Map<String, Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            return err(R::BadValue, format!("json: the record is a JSON {}, not an object", json_type(&other)))
        }
        Err(e) if e.is_eof() => {
            return err(
                R::Truncated,
                format!("json: the record ends inside a value (line {}, column {})", e.line(), e.column()),
            )
        }
        Err(e) => return err(R::BadValue, format!("json: {e}")),
    };
    let mut fields = Fields::new();
    flatten(&mut fields, None, object, 0);
    Ok(fields)
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
pub(crate) fn kv(bytes: &[u8]) -> Result<Fields, DecodeError> {
    let text = utf8(trim_record(bytes), "kv")?;
    if text.is_empty() {
        return err(R::Truncated, "kv: the record is empty");
    }
    let mut fields = Fields::new();
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
