//! `DecodeConfig`: the `[transform.decode]` configuration section (time zone, RADIUS vendor
//! dictionaries, declarative binary layouts, per-source mappings to the canonical event), and its
//! validation with full dotted keys.

use chrono::FixedOffset;
use lux_model::{config_key as key, ConfigProblem, EquipmentKey, EventKind, Format, Outcome};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// The longest `future_tolerance` accepted: beyond half a year, "this year or the previous one"
/// becomes ambiguous for a timestamp without a year.
pub const MAX_FUTURE_TOLERANCE: Duration = Duration::from_secs(180 * 24 * 3600);

/// The largest binary record a layout may describe (offsets and sizes beyond are refused).
pub const MAX_RECORD_SIZE: usize = 1 << 20;

/// How raw records are decoded into events (`[transform.decode]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// The time zone of RFC 3164 (BSD / Cisco) syslog timestamps, which carry none: `UTC` or a
    /// fixed offset from UTC such as `+01:00` or `-05:30`. RFC 5424 timestamps carry their own
    /// offset and ignore this setting.
    pub timezone: String,
    /// RFC 3164 timestamps carry no year: a record takes the year of its reception time, or the
    /// previous year when that would put it more than this much after its reception (a record
    /// of December 31st received on January 1st). At most 180 days.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub future_tolerance: Duration,
    /// RADIUS decoding: the vendor dictionaries that decode Vendor-Specific attributes (26).
    pub radius: RadiusConfig,
    /// Declarative binary record layouts (`[[transform.decode.layouts]]`): a vendor's binary or
    /// TLV record described here is decoded with no new code. A source uses one with
    /// `format = "binary"` and `layout = "<name>"` in its `[[transform.decode.sources]]` entry.
    pub layouts: Vec<LayoutConfig>,
    /// Per-source decoding (`[[transform.decode.sources]]`, keyed by the raw record's source id):
    /// the format, the binary layout, and how the canonical event is built from the decoded
    /// fields. Syslog and RADIUS sources need no entry (their built-in mapping applies; an entry
    /// overrides parts of it); JSON, key=value and binary sources need one that maps at least
    /// `equipment`.
    pub sources: Vec<SourceConfig>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            timezone: "UTC".to_owned(),
            future_tolerance: Duration::from_secs(24 * 3600),
            radius: RadiusConfig::default(),
            layouts: Vec::new(),
            sources: Vec::new(),
        }
    }
}

/// RADIUS decoding (`[transform.decode.radius]`).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    /// Vendor dictionaries (`[[transform.decode.radius.vendors]]`), added to the built-in ones
    /// (Cisco 9, Juniper 2636, Huawei 2011). An entry with the id of a built-in vendor extends it;
    /// an attribute with the code of a built-in one replaces it. Vendor-Specific attributes of
    /// vendors or codes known nowhere are kept as hex under `radius.vendor.<id>.<code>`.
    pub vendors: Vec<VendorConfig>,
}

impl RadiusConfig {
    /// Every problem of this section, with its full dotted key.
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut ids = HashSet::new();
        for (i, vendor) in self.vendors.iter().enumerate() {
            let at = key(prefix, &format!("vendors[{i}]"));
            if !ids.insert(vendor.id) {
                problems.push(ConfigProblem::new(
                    key(&at, "id"),
                    format!("vendor id {} appears twice: give each vendor one entry", vendor.id),
                ));
            }
            problems.extend(vendor.validate(&at));
        }
        problems
    }
}

/// One vendor's RADIUS dictionary: its IANA private enterprise number and the sub-attributes
/// it sends inside Vendor-Specific (26) attributes, in the RFC 2865 recommended format (one
/// byte of code, one byte of length).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VendorConfig {
    /// The vendor's IANA private enterprise number (Cisco 9, Juniper 2636, Huawei 2011, ...).
    pub id: u32,
    /// The vendor's name, for documentation and error messages (`Juniper`).
    pub name: String,
    /// The vendor's attributes: `{ code = 1, name = "Juniper-Local-User-Name", type = "text" }`.
    pub attributes: Vec<VendorAttributeConfig>,
}

impl VendorConfig {
    /// Every problem of this vendor entry, with its full dotted key.
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.id == 0 {
            problems.push(ConfigProblem::new(
                key(prefix, "id"),
                "0 is not a vendor id (IANA enterprise numbers start at 1)",
            ));
        }
        if self.name.trim().is_empty() {
            problems.push(ConfigProblem::new(key(prefix, "name"), "empty: give the vendor a name"));
        }
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for (i, a) in self.attributes.iter().enumerate() {
            let at = key(prefix, &format!("attributes[{i}]"));
            if !(1..=255).contains(&a.code) {
                problems.push(ConfigProblem::new(key(&at, "code"), format!("{} is outside 1-255", a.code)));
            }
            if !codes.insert(a.code) {
                problems.push(ConfigProblem::new(
                    key(&at, "code"),
                    format!("code {} appears twice in vendor {} ({})", a.code, self.id, self.name),
                ));
            }
            if a.name.trim().is_empty() {
                problems.push(ConfigProblem::new(key(&at, "name"), "empty: give the attribute a name"));
            } else if !names.insert(a.name.as_str()) {
                problems.push(ConfigProblem::new(key(&at, "name"), format!("name {:?} appears twice", a.name)));
            }
            if RadiusType::parse(&a.kind).is_none() {
                problems.push(ConfigProblem::new(
                    key(&at, "type"),
                    format!("{:?} is not a RADIUS attribute type: expected one of {}", a.kind, RadiusType::NAMES),
                ));
            }
        }
        problems
    }
}

/// One vendor sub-attribute.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VendorAttributeConfig {
    /// The sub-attribute's code (vendor type), 1-255.
    pub code: u32,
    /// Its name: the key of its value in the event's `attributes`.
    pub name: String,
    /// Its type: `text` (UTF-8), `string` or `octets` (bytes, written as hex), `integer` (32-bit
    /// unsigned), `ipaddr` (IPv4) or `date` (Unix seconds, written as RFC 3339).
    #[serde(rename = "type")]
    pub kind: String,
}

impl Default for VendorAttributeConfig {
    fn default() -> Self {
        VendorAttributeConfig { code: 0, name: String::new(), kind: "string".to_owned() }
    }
}

/// The value types of RADIUS attributes (RFC 2865 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RadiusType {
    /// UTF-8 text, 1-253 bytes.
    Text,
    /// Binary data, 1-253 bytes (written as hex).
    Octets,
    /// 32-bit unsigned, big endian.
    Integer,
    /// IPv4 address.
    IpAddr,
    /// 32-bit Unix seconds.
    Date,
}

impl RadiusType {
    const NAMES: &'static str = "text, string, octets, integer, ipaddr, date";

    /// The type named `name` in a dictionary (`text`, `string`/`octets`, `integer`, `ipaddr`, `date`).
    pub fn parse(name: &str) -> Option<RadiusType> {
        Some(match name {
            "text" => RadiusType::Text,
            "string" | "octets" => RadiusType::Octets,
            "integer" => RadiusType::Integer,
            "ipaddr" => RadiusType::IpAddr,
            "date" => RadiusType::Date,
            _ => return None,
        })
    }
}

/// Byte order of multi-byte integers in a binary layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ByteOrder {
    /// Most significant byte first (network order).
    #[default]
    Big,
    /// Least significant byte first.
    Little,
}

/// A vendor's binary record, described field by field (`[[transform.decode.layouts]]`).
///
/// A record is an optional magic number, a fixed part of fields at absolute offsets, and an
/// optional TLV (tag, length, value) section running from `tlv.offset` to the end of the record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LayoutConfig {
    /// The layout's name, referred to by `layout` in `[[transform.decode.sources]]`.
    pub name: String,
    /// Bytes every record starts with (at `magic_offset`), as hex (`"A55A"`, spaces allowed:
    /// `"A5 5A"`). A record without them is refused as `unknown_format`. Empty: no magic.
    pub magic: String,
    /// Offset of the magic bytes from the start of the record.
    pub magic_offset: usize,
    /// Byte order of the record's integers (`big` or `little`); a field or the TLV section may
    /// override it.
    pub byte_order: ByteOrder,
    /// The name of an integer field of the fixed part that holds the record's total length in
    /// bytes. A record whose actual length differs is refused (`truncated` when shorter,
    /// `bad_length` when longer), and `lux decode` splits a stream of records with it. Empty:
    /// no length field.
    pub length_field: String,
    /// Added to the value of `length_field` to give the total length, for formats whose length
    /// excludes a header (a length of the payload after a 4-byte header: `length_adjust = 4`).
    pub length_adjust: i64,
    /// The size of every record, for fixed-size formats without a length field (used to split a
    /// stream and to check each record). 0: not fixed (or the end of the last fixed field, when
    /// the layout has neither TLV section nor variable-length field).
    pub record_size: usize,
    /// The fixed part: `{ name = "slot", offset = 8, type = "u8" }`, ...
    pub fields: Vec<FieldConfig>,
    /// The TLV section, if the record has one.
    pub tlv: Option<TlvConfig>,
    /// A checksum the record carries, checked before decoding (`bad_checksum` when it differs).
    pub checksum: Option<ChecksumConfig>,
}

/// A binary record's checksum: computed over the bytes from `start` to the end of the record,
/// the checksum's own bytes excepted, and compared with the value stored at `offset` (in the
/// layout's byte order).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksumConfig {
    /// `xor8` (XOR of the bytes), `sum8` (their sum modulo 256), `crc16_ccitt` (CRC-16/CCITT-FALSE:
    /// polynomial 0x1021, initial value 0xFFFF) or `crc32` (the CRC-32 of zlib and Ethernet).
    pub algorithm: String,
    /// Where the checksum is: an offset from the start of the record, or from its end when
    /// negative (`-4`: the last four bytes).
    pub offset: i64,
    /// The first byte covered by the checksum.
    pub start: usize,
}

impl Default for ChecksumConfig {
    fn default() -> Self {
        ChecksumConfig { algorithm: "crc32".to_owned(), offset: -4, start: 0 }
    }
}

/// The checksum algorithms of binary layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Xor8,
    Sum8,
    Crc16Ccitt,
    Crc32,
}

impl ChecksumAlgorithm {
    /// The algorithm named `name` in a layout.
    pub fn parse(name: &str) -> Option<ChecksumAlgorithm> {
        Some(match name {
            "xor8" => ChecksumAlgorithm::Xor8,
            "sum8" => ChecksumAlgorithm::Sum8,
            "crc16_ccitt" => ChecksumAlgorithm::Crc16Ccitt,
            "crc32" => ChecksumAlgorithm::Crc32,
            _ => return None,
        })
    }

    /// The size of the checksum in bytes.
    pub fn width(self) -> usize {
        match self {
            ChecksumAlgorithm::Xor8 | ChecksumAlgorithm::Sum8 => 1,
            ChecksumAlgorithm::Crc16Ccitt => 2,
            ChecksumAlgorithm::Crc32 => 4,
        }
    }
}

impl Default for LayoutConfig {
    fn default() -> Self {
        LayoutConfig {
            name: String::new(),
            magic: String::new(),
            magic_offset: 0,
            byte_order: ByteOrder::Big,
            length_field: String::new(),
            length_adjust: 0,
            record_size: 0,
            fields: Vec::new(),
            tlv: None,
            checksum: None,
        }
    }
}

/// A field of a binary layout's fixed part.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FieldConfig {
    /// The field's name: the key of its value among the decoded fields (and the event's
    /// `attributes`).
    pub name: String,
    /// Offset of the field's first byte from the start of the record. Fields may overlap (a
    /// byte read both as a whole and through a bit mask is fine).
    pub offset: usize,
    /// The field's type: `u8`, `u16`, `u32`, `u64`, `i8`, `i16`, `i32`, `i64` (integers),
    /// `ipv4` (4 bytes, in network order unless the field sets `byte_order`), `unix_s` (4-byte Unix seconds), `unix_ms` (8-byte Unix milliseconds),
    /// `bytes` (`length` bytes, written as hex), `string` (`length` bytes of text, trailing NULs
    /// and spaces removed), `string_nul` (text up to a NUL byte, within `length` bytes when
    /// `length` is set) or `string_prefixed` (a `length_size`-byte length, then that many bytes
    /// of text).
    #[serde(rename = "type")]
    pub kind: String,
    /// The size in bytes of `bytes` and `string` fields (required), and the most a
    /// `string_nul` field may span (optional). Ignored by the other types.
    pub length: usize,
    /// The size of the length prefix of a `string_prefixed` field: 1, 2 or 4 bytes.
    pub length_size: usize,
    /// This field's byte order, when it differs from the layout's.
    pub byte_order: Option<ByteOrder>,
}

impl Default for FieldConfig {
    fn default() -> Self {
        FieldConfig { name: String::new(), offset: 0, kind: String::new(), length: 0, length_size: 1, byte_order: None }
    }
}

/// The TLV section of a binary layout: tags and lengths of `tag_size` and `length_size` bytes,
/// from `offset` to the end of the record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlvConfig {
    /// Offset of the first TLV from the start of the record.
    pub offset: usize,
    /// Size of each tag: 1, 2 or 4 bytes.
    pub tag_size: usize,
    /// Size of each length: 1, 2 or 4 bytes.
    pub length_size: usize,
    /// Whether a TLV's length counts its own tag and length bytes (as RADIUS does) rather than
    /// the value alone.
    pub length_includes_header: bool,
    /// Byte order of tags, lengths and integer values, when it differs from the layout's.
    pub byte_order: Option<ByteOrder>,
    /// The known tags: `{ tag = 1, name = "onu_serial", type = "string" }`. Types as for fixed
    /// fields, except `string_nul` and `string_prefixed` (a TLV's value is delimited by its
    /// length; `string` takes it whole). Tags not listed are kept as hex under `tlv.<tag>`; a tag
    /// that repeats gives an array.
    pub tags: Vec<TlvTagConfig>,
}

impl Default for TlvConfig {
    fn default() -> Self {
        TlvConfig {
            offset: 0,
            tag_size: 1,
            length_size: 1,
            length_includes_header: false,
            byte_order: None,
            tags: Vec::new(),
        }
    }
}

/// One known tag of a TLV section.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlvTagConfig {
    /// The tag's value.
    pub tag: u32,
    /// The field name its value is decoded to.
    pub name: String,
    /// The value's type (see `tlv.tags`).
    #[serde(rename = "type")]
    pub kind: String,
}

impl Default for TlvTagConfig {
    fn default() -> Self {
        TlvTagConfig { tag: 0, name: String::new(), kind: "bytes".to_owned() }
    }
}

/// The value types of binary layout fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    Ipv4,
    UnixS,
    UnixMs,
    Bytes,
    String,
    StringNul,
    StringPrefixed,
}

impl FieldType {
    pub(crate) const NAMES: &'static str =
        "u8, u16, u32, u64, i8, i16, i32, i64, ipv4, unix_s, unix_ms, bytes, string, string_nul, string_prefixed";

    /// The type named `name` in a layout.
    pub fn parse(name: &str) -> Option<FieldType> {
        use FieldType::*;
        Some(match name {
            "u8" => U8,
            "u16" => U16,
            "u32" => U32,
            "u64" => U64,
            "i8" => I8,
            "i16" => I16,
            "i32" => I32,
            "i64" => I64,
            "ipv4" => Ipv4,
            "unix_s" => UnixS,
            "unix_ms" => UnixMs,
            "bytes" => Bytes,
            "string" => String,
            "string_nul" => StringNul,
            "string_prefixed" => StringPrefixed,
            _ => return None,
        })
    }

    /// The size of a value of this type when it is fixed by the type itself.
    pub fn width(self) -> Option<usize> {
        use FieldType::*;
        match self {
            U8 | I8 => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | Ipv4 | UnixS => Some(4),
            U64 | I64 | UnixMs => Some(8),
            Bytes | String | StringNul | StringPrefixed => None,
        }
    }

    /// Whether values of this type are integers (usable as a length field).
    pub fn is_integer(self) -> bool {
        use FieldType::*;
        matches!(self, U8 | U16 | U32 | U64 | I8 | I16 | I32 | I64)
    }
}

fn valid_size(n: usize) -> bool {
    matches!(n, 1 | 2 | 4)
}

/// Parses a hex string (spaces and `:` allowed between bytes) into bytes.
pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !matches!(b, b' ' | b':' | b'_')).collect();
    if !digits.chunks_exact(2).remainder().is_empty() {
        return Err(format!("{text:?} has an odd number of hex digits"));
    }
    let nibble = |b: u8| -> Result<u8, String> {
        match b {
            b'0'..=b'9' => Ok(b - b'0'),
            b'a'..=b'f' => Ok(b - b'a' + 10),
            b'A'..=b'F' => Ok(b - b'A' + 10),
            _ => Err(format!("{text:?} is not hex: {:?} is not a hex digit", char::from(b))),
        }
    };
    digits
        .chunks(2)
        .map(|pair| Ok((nibble(*pair.first().unwrap_or(&b'0'))? << 4) | nibble(*pair.get(1).unwrap_or(&b'0'))?))
        .collect()
}

impl LayoutConfig {
    /// Every problem of this layout, with its full dotted key.
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        let mut problem = |k: String, m: String| p.push(ConfigProblem::new(k, m));
        if self.name.trim().is_empty() {
            problem(key(prefix, "name"), "empty: give the layout a name sources can refer to".into());
        }
        match parse_hex(&self.magic) {
            Ok(magic) if self.magic_offset.saturating_add(magic.len()) > MAX_RECORD_SIZE => problem(
                key(prefix, "magic_offset"),
                format!("{} is beyond the largest record ({MAX_RECORD_SIZE} bytes)", self.magic_offset),
            ),
            Ok(_) => {}
            Err(e) => problem(key(prefix, "magic"), e),
        }
        if self.record_size > MAX_RECORD_SIZE {
            problem(key(prefix, "record_size"), format!("{} is beyond {MAX_RECORD_SIZE} bytes", self.record_size));
        }
        let mut names = HashSet::new();
        for (i, f) in self.fields.iter().enumerate() {
            let at = key(prefix, &format!("fields[{i}]"));
            if f.name.trim().is_empty() {
                problem(key(&at, "name"), "empty: give the field a name".into());
            } else if !names.insert(f.name.as_str()) {
                problem(key(&at, "name"), format!("field {:?} appears twice in layout {:?}", f.name, self.name));
            }
            let Some(t) = FieldType::parse(&f.kind) else {
                problem(
                    key(&at, "type"),
                    format!("{:?} is not a field type: expected one of {}", f.kind, FieldType::NAMES),
                );
                continue;
            };
            if matches!(t, FieldType::Bytes | FieldType::String) && f.length == 0 {
                problem(key(&at, "length"), format!("a `{}` field needs its size in bytes (length = N)", f.kind));
            }
            if t == FieldType::StringPrefixed && !valid_size(f.length_size) {
                problem(key(&at, "length_size"), format!("{} is not 1, 2 or 4", f.length_size));
            }
            let extent = t.width().unwrap_or(f.length.max(f.length_size));
            if f.offset.saturating_add(extent) > MAX_RECORD_SIZE {
                problem(
                    key(&at, "offset"),
                    format!("{} is beyond the largest record ({MAX_RECORD_SIZE} bytes)", f.offset),
                );
            } else if self.record_size > 0 && f.offset.saturating_add(extent) > self.record_size {
                problem(
                    key(&at, "offset"),
                    format!("the field ends at byte {}, beyond record_size {}", f.offset + extent, self.record_size),
                );
            }
        }
        if !self.length_field.is_empty() {
            match self.fields.iter().find(|f| f.name == self.length_field) {
                None => problem(
                    key(prefix, "length_field"),
                    format!("no field named {:?} in this layout's fields", self.length_field),
                ),
                Some(f) if !FieldType::parse(&f.kind).is_some_and(FieldType::is_integer) => {
                    problem(key(prefix, "length_field"), format!("field {:?} is a {}, not an integer", f.name, f.kind))
                }
                Some(_) => {}
            }
            if self.record_size > 0 {
                problem(key(prefix, "record_size"), "set either length_field or record_size, not both".into());
            }
        }
        if let Some(c) = &self.checksum {
            if ChecksumAlgorithm::parse(&c.algorithm).is_none() {
                problem(
                    key(prefix, "checksum.algorithm"),
                    format!("{:?} is not a checksum algorithm: expected xor8, sum8, crc16_ccitt or crc32", c.algorithm),
                );
            }
            if c.offset.unsigned_abs() > MAX_RECORD_SIZE as u64 {
                problem(key(prefix, "checksum.offset"), format!("{} is beyond {MAX_RECORD_SIZE} bytes", c.offset));
            }
            if c.start > MAX_RECORD_SIZE {
                problem(key(prefix, "checksum.start"), format!("{} is beyond {MAX_RECORD_SIZE} bytes", c.start));
            }
        }
        if let Some(tlv) = &self.tlv {
            let at = key(prefix, "tlv");
            if !valid_size(tlv.tag_size) {
                problem(key(&at, "tag_size"), format!("{} is not 1, 2 or 4", tlv.tag_size));
            }
            if !valid_size(tlv.length_size) {
                problem(key(&at, "length_size"), format!("{} is not 1, 2 or 4", tlv.length_size));
            }
            if tlv.offset > MAX_RECORD_SIZE {
                problem(key(&at, "offset"), format!("{} is beyond {MAX_RECORD_SIZE} bytes", tlv.offset));
            }
            let mut tags = HashSet::new();
            for (i, t) in tlv.tags.iter().enumerate() {
                let tat = key(&at, &format!("tags[{i}]"));
                if !tags.insert(t.tag) {
                    problem(key(&tat, "tag"), format!("tag {} appears twice", t.tag));
                }
                if valid_size(tlv.tag_size) && tlv.tag_size < 4 && u64::from(t.tag) >= 1u64 << (8 * tlv.tag_size) {
                    problem(key(&tat, "tag"), format!("{} does not fit in a {}-byte tag", t.tag, tlv.tag_size));
                }
                if t.name.trim().is_empty() {
                    problem(key(&tat, "name"), "empty: give the tag a name".into());
                } else if names.contains(t.name.as_str()) {
                    problem(key(&tat, "name"), format!("{:?} is also the name of a fixed field", t.name));
                }
                match FieldType::parse(&t.kind) {
                    None | Some(FieldType::StringNul | FieldType::StringPrefixed) => problem(
                        key(&tat, "type"),
                        format!(
                            "{:?} is not a TLV value type: expected one of u8, u16, u32, u64, i8, i16, i32, i64, ipv4, unix_s, unix_ms, bytes, string",
                            t.kind
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        p
    }
}

/// How a decoded time value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// A string is RFC 3339; a number (or a string of digits) is Unix seconds, or Unix
    /// milliseconds when above 100,000,000,000.
    #[default]
    Auto,
    /// Unix seconds (a number or a string of digits; a fraction is kept to the millisecond).
    UnixS,
    /// Unix milliseconds.
    UnixMs,
    /// RFC 3339 text (`2026-01-05T10:00:00.123Z`).
    Rfc3339,
}

/// A per-source decoding entry (`[[transform.decode.sources]]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// The source id of the raw records this entry applies to (the collector's source id).
    pub source: String,
    /// The format of the source's records: `syslog`, `radius`, `json`, `kv`, `binary`, or `auto`
    /// (the default) to follow the format hint the collector set on each record.
    pub format: Format,
    /// The binary layout (a `[[transform.decode.layouts]]` name); required with `format = "binary"`.
    pub layout: String,
    /// The equipment the event is attributed to: `{ field = "olt", key = "hostname" }`.
    /// Required for JSON, key=value and binary sources.
    pub equipment: Option<EquipmentMapping>,
    /// The event time: `{ field = "ts", format = "unix_s" }`. Default: the time the format
    /// carries (syslog, RADIUS), else the reception time.
    pub time: Option<TimeMapping>,
    /// The event kind: `{ field = "alarm", map = { "17" = "optical_los" } }` or
    /// `{ value = "link_down" }`. Default: the built-in kind (syslog, RADIUS), else `other`.
    pub kind: Option<ValueMapping<EventKind>>,
    /// The outcome, as `kind`: `{ field = "severity", map = { "1" = "failure" } }` or
    /// `{ value = "failure" }`. Default: the built-in outcome, else `info`.
    pub outcome: Option<ValueMapping<Outcome>>,
    /// The error code: `{ field = "code", prefix = "ACME-" }`.
    pub error_code: Option<ErrorCodeMapping>,
    /// The subscriber id field: `{ field = "user" }`. Its clear value is replaced by its keyed
    /// pseudonym and removed from every other field of the event.
    pub subscriber: Option<FieldMapping>,
    /// The free-text message field: `{ field = "text" }`.
    pub message: Option<FieldMapping>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            source: String::new(),
            format: Format::Auto,
            layout: String::new(),
            equipment: None,
            time: None,
            kind: None,
            outcome: None,
            error_code: None,
            subscriber: None,
            message: None,
        }
    }
}

/// Where the equipment id comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EquipmentMapping {
    /// The decoded field holding the equipment's identifier.
    pub field: String,
    /// Which inventory identifier it is: `hostname`, `nas_identifier`, `nas_ip_address`,
    /// `ip_address`, or `field` (the inventory's equipment id itself).
    #[serde(default = "default_equipment_key")]
    pub key: EquipmentKey,
}

fn default_equipment_key() -> EquipmentKey {
    EquipmentKey::Field
}

/// Where the event time comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeMapping {
    /// The decoded field holding the time. When a record lacks it, the time the format itself
    /// carries (syslog, RADIUS) is used, else the reception time, and the event gets the
    /// attribute `lux.time_source = "received_at"`.
    pub field: String,
    /// How it is written: `auto`, `unix_s`, `unix_ms` or `rfc3339`.
    #[serde(default)]
    pub format: TimeFormat,
}

/// A value chosen from a field through a map, or a constant.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, bound(deserialize = "T: serde::Deserialize<'de>"))]
pub struct ValueMapping<T> {
    /// The decoded field whose value selects the result (through `map`, else read as the
    /// result's own name, else `default`).
    #[serde(default)]
    pub field: Option<String>,
    /// Field value (as text) -> result.
    #[serde(default)]
    pub map: BTreeMap<String, T>,
    /// The result when the field is absent or its value is in neither `map` nor the names of
    /// the results. Default: `other` for a kind, `info` for an outcome.
    #[serde(default)]
    pub default: Option<T>,
    /// A constant result for every record of the source (instead of `field`).
    #[serde(default)]
    pub value: Option<T>,
}

impl<T> ValueMapping<T> {
    fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        match (&self.field, &self.value) {
            (Some(_), Some(_)) => p.push(ConfigProblem::new(
                key(prefix, "value"),
                "set either `field` (with `map`) or `value` (a constant), not both",
            )),
            (None, None) => {
                p.push(ConfigProblem::new(key(prefix, "field"), "set `field` (with `map`) or `value` (a constant)"))
            }
            (Some(f), None) if f.trim().is_empty() => {
                p.push(ConfigProblem::new(key(prefix, "field"), "empty field name"))
            }
            _ => {}
        }
        if self.value.is_some() && !self.map.is_empty() {
            p.push(ConfigProblem::new(key(prefix, "map"), "a map is of no use with a constant `value`"));
        }
        p
    }
}

/// Where the error code comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorCodeMapping {
    /// The decoded field holding the code.
    pub field: String,
    /// Prepended to the code to namespace it in the error catalogue (`ACME-` gives `ACME-17`).
    #[serde(default)]
    pub prefix: String,
}

/// A decoded field used as is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// The decoded field's name.
    pub field: String,
}

impl SourceConfig {
    /// Every problem of this entry, with its full dotted key; `layouts` are the configured
    /// layout names.
    pub fn validate(&self, prefix: &str, layouts: &[&str]) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        if self.source.trim().is_empty() {
            p.push(ConfigProblem::new(key(prefix, "source"), "empty: the source id this entry applies to"));
        }
        if self.format == Format::Binary {
            if self.layout.is_empty() {
                p.push(ConfigProblem::new(key(prefix, "layout"), "a binary source needs a layout name"));
            }
        } else if !self.layout.is_empty() && self.format != Format::Auto {
            p.push(ConfigProblem::new(
                key(prefix, "layout"),
                format!("a layout is only used by binary sources (this one is {})", self.format.as_str()),
            ));
        }
        if !self.layout.is_empty() && !layouts.contains(&self.layout.as_str()) {
            p.push(ConfigProblem::new(
                key(prefix, "layout"),
                format!("no layout named {:?} in transform.decode.layouts", self.layout),
            ));
        }
        if matches!(self.format, Format::Json | Format::Kv | Format::Binary) && self.equipment.is_none() {
            p.push(ConfigProblem::new(
                key(prefix, "equipment"),
                format!("a {} source needs `equipment = {{ field = \"...\", key = \"...\" }}`", self.format.as_str()),
            ));
        }
        let mut empty = |k: &str, f: &str| {
            if f.trim().is_empty() {
                p.push(ConfigProblem::new(key(prefix, &format!("{k}.field")), "empty field name"));
            }
        };
        if let Some(m) = &self.equipment {
            empty("equipment", &m.field);
        }
        if let Some(m) = &self.time {
            empty("time", &m.field);
        }
        if let Some(m) = &self.error_code {
            empty("error_code", &m.field);
        }
        if let Some(m) = &self.subscriber {
            empty("subscriber", &m.field);
        }
        if let Some(m) = &self.message {
            empty("message", &m.field);
        }
        if let Some(m) = &self.kind {
            p.extend(m.validate(&key(prefix, "kind")));
        }
        if let Some(m) = &self.outcome {
            p.extend(m.validate(&key(prefix, "outcome")));
        }
        p
    }
}

impl DecodeConfig {
    /// Every problem of this section, with its full dotted key (`prefix` is the section's key,
    /// e.g. `transform.decode`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if let Err(message) = parse_timezone(&self.timezone) {
            problems.push(ConfigProblem::new(key(prefix, "timezone"), message));
        }
        if self.future_tolerance > MAX_FUTURE_TOLERANCE {
            problems.push(ConfigProblem::new(
                key(prefix, "future_tolerance"),
                format!(
                    "{} is too long: at most 180 days (beyond, the year of a timestamp without one is ambiguous)",
                    humantime_format(self.future_tolerance)
                ),
            ));
        }
        problems.extend(self.radius.validate(&key(prefix, "radius")));
        let mut layout_names = Vec::new();
        for (i, layout) in self.layouts.iter().enumerate() {
            let at = key(prefix, &format!("layouts[{i}]"));
            if layout_names.contains(&layout.name.as_str()) {
                problems
                    .push(ConfigProblem::new(key(&at, "name"), format!("layout {:?} is defined twice", layout.name)));
            }
            layout_names.push(layout.name.as_str());
            problems.extend(layout.validate(&at));
        }
        let mut sources = HashSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            let at = key(prefix, &format!("sources[{i}]"));
            if !sources.insert(source.source.as_str()) {
                problems.push(ConfigProblem::new(
                    key(&at, "source"),
                    format!("source {:?} has two entries: merge them", source.source),
                ));
            }
            problems.extend(source.validate(&at, &layout_names));
        }
        problems
    }
}

fn humantime_format(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

/// Parses `UTC`, `Z`, `GMT` or a fixed offset `+hh:mm` / `-hh:mm` (also `+hhmm`, `+hh`).
pub fn parse_timezone(text: &str) -> Result<FixedOffset, String> {
    let bad =
        || format!("{text:?} is not a time zone: expected \"UTC\" or a fixed offset such as \"+01:00\" or \"-05:30\"");
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("gmt") || t == "Z" {
        return FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1i32, t.get(1..).unwrap_or("")),
        Some(b'-') => (-1i32, t.get(1..).unwrap_or("")),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || rest.matches(':').count() > 1 {
        return Err(bad());
    }
    let (hh, mm) = match digits.len() {
        2 => (digits.parse::<i32>().map_err(|_| bad())?, 0),
        4 => (
            digits.get(..2).and_then(|s| s.parse::<i32>().ok()).ok_or_else(bad)?,
            digits.get(2..).and_then(|s| s.parse::<i32>().ok()).ok_or_else(bad)?,
        ),
        _ => return Err(bad()),
    };
    if hh > 14 || mm > 59 {
        return Err(format!("{text:?} is not a valid UTC offset: hours 0-14, minutes 0-59"));
    }
    FixedOffset::east_opt(sign * (hh * 3600 + mm * 60)).ok_or_else(bad)
}
