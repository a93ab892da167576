//! The declarative binary record format: a vendor's binary/TLV layout described in
//! `[[transform.decode.layouts]]` (magic bytes, fixed fields at offsets, a total-length field, a
//! TLV section) is compiled once at `Decoder::new` and decodes records to a flat set of fields,
//! with typed dead-letter reasons for truncated records, length mismatches and bad values.

use crate::config::{parse_hex, ByteOrder, ChecksumAlgorithm, FieldType, LayoutConfig};
use crate::mapping::hex;
use crate::mapping::ipv4_text;
use crate::text::Fields;
use crate::{err, DecodeError};
use lux_model::{format_rfc3339_millis, AttrValue, DeadLetterReason as R, SmallStr};
use std::collections::HashMap;
use std::net::Ipv4Addr;

#[derive(Debug, Clone)]
struct Field {
    name: SmallStr,
    offset: usize,
    kind: FieldType,
    length: usize,
    length_size: usize,
    order: ByteOrder,
}

#[derive(Debug, Clone)]
struct Tlv {
    offset: usize,
    tag_size: usize,
    length_size: usize,
    includes_header: bool,
    order: ByteOrder,
    tags: HashMap<u32, (SmallStr, FieldType)>,
}

/// A layout compiled for decoding.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub name: String,
    magic: Vec<u8>,
    magic_offset: usize,
    order: ByteOrder,
    fields: Vec<Field>,
    /// Index in `fields` of the total-length field, and the adjustment added to its value.
    length: Option<(usize, i64)>,
    /// The size of every record, when the layout fixes it.
    fixed_size: Option<usize>,
    /// The smallest record: the end of the furthest fixed-width field and of the magic.
    min_size: usize,
    tlv: Option<Tlv>,
    /// Algorithm, offset (negative: from the end), first byte covered.
    checksum: Option<(ChecksumAlgorithm, i64, usize)>,
}

impl Layout {
    /// Compiles `cfg`; entries with unknown types are skipped ([`LayoutConfig::validate`]
    /// reports them).
    pub fn new(cfg: &LayoutConfig) -> Layout {
        let magic = parse_hex(&cfg.magic).unwrap_or_default();
        let fields: Vec<Field> = cfg
            .fields
            .iter()
            .filter_map(|f| {
                Some(Field {
                    name: SmallStr::new(&f.name),
                    offset: f.offset,
                    kind: FieldType::parse(&f.kind)?,
                    length: f.length,
                    length_size: f.length_size,
                    // Addresses are in network order unless the field itself says otherwise.
                    order: match FieldType::parse(&f.kind)? {
                        FieldType::Ipv4 => f.byte_order.unwrap_or(ByteOrder::Big),
                        _ => f.byte_order.unwrap_or(cfg.byte_order),
                    },
                })
            })
            .collect();
        let extent = |f: &Field| match f.kind {
            FieldType::Bytes | FieldType::String => f.offset.saturating_add(f.length),
            FieldType::StringNul => f.offset.saturating_add(1),
            FieldType::StringPrefixed => f.offset.saturating_add(f.length_size),
            t => f.offset.saturating_add(t.width().unwrap_or(0)),
        };
        let checksum =
            cfg.checksum.as_ref().and_then(|c| Some((ChecksumAlgorithm::parse(&c.algorithm)?, c.offset, c.start)));
        // A checksum at a fixed offset is part of the fixed part; one counted from the end
        // makes the size unknown from the fields alone (set `record_size` or `length_field`).
        let checksum_end = match checksum {
            Some((a, offset, _)) if offset >= 0 => {
                usize::try_from(offset).unwrap_or(usize::MAX).saturating_add(a.width())
            }
            _ => 0,
        };
        let trailer = checksum.is_some_and(|(_, offset, _)| offset < 0);
        let min_size = fields
            .iter()
            .map(extent)
            .chain([cfg.magic_offset.saturating_add(magic.len()), checksum_end])
            .max()
            .unwrap_or(0);
        let length = (!cfg.length_field.is_empty())
            .then(|| fields.iter().position(|f| f.name == cfg.length_field && f.kind.is_integer()))
            .flatten()
            .map(|i| (i, cfg.length_adjust));
        let variable = fields.iter().any(|f| matches!(f.kind, FieldType::StringNul | FieldType::StringPrefixed));
        let fixed_size = if cfg.record_size > 0 {
            Some(cfg.record_size)
        } else if length.is_none() && cfg.tlv.is_none() && !variable && !trailer && min_size > 0 {
            Some(min_size)
        } else {
            None
        };
        let tlv = cfg.tlv.as_ref().map(|t| Tlv {
            offset: t.offset,
            tag_size: t.tag_size,
            length_size: t.length_size,
            includes_header: t.length_includes_header,
            order: t.byte_order.unwrap_or(cfg.byte_order),
            tags: t
                .tags
                .iter()
                .filter_map(|tag| Some((tag.tag, (SmallStr::new(&tag.name), FieldType::parse(&tag.kind)?))))
                .collect(),
        });
        Layout {
            name: cfg.name.clone(),
            magic,
            magic_offset: cfg.magic_offset,
            order: cfg.byte_order,
            fields,
            length,
            fixed_size,
            min_size,
            tlv,
            checksum,
        }
    }

    fn what(&self) -> String {
        format!("binary layout {:?}", self.name)
    }

    /// The length of the record at the start of `input`, from the length field or the fixed
    /// size: how `lux decode` splits a stream of records.
    pub fn record_len(&self, input: &[u8]) -> Result<usize, DecodeError> {
        if let Some((index, adjust)) = self.length {
            let field = self.fields.get(index).ok_or_else(|| self.no_length())?;
            let announced = self.length_value(field, input)?;
            let total = i128::from(announced) + i128::from(adjust);
            let total = usize::try_from(total).ok().filter(|t| *t >= self.min_size.max(1)).ok_or_else(|| {
                DecodeError::new(
                    R::BadLength,
                    format!(
                        "{}: length field {:?} gives {total} bytes, less than the {} bytes of the fixed part",
                        self.what(),
                        field.name,
                        self.min_size.max(1)
                    ),
                )
            })?;
            if total > input.len() {
                return err(
                    R::Truncated,
                    format!("{}: length field says {total} bytes but only {} remain", self.what(), input.len()),
                );
            }
            return Ok(total);
        }
        match self.fixed_size {
            Some(size) if size <= input.len() => Ok(size),
            Some(size) => {
                err(R::Truncated, format!("{}: records are {size} bytes but only {} remain", self.what(), input.len()))
            }
            None => Err(self.no_length()),
        }
    }

    fn no_length(&self) -> DecodeError {
        DecodeError::new(
            R::BadValue,
            format!(
                "{}: has neither length_field nor a fixed record size: records cannot be split out of a stream",
                self.what()
            ),
        )
    }

    fn length_value(&self, field: &Field, record: &[u8]) -> Result<u64, DecodeError> {
        let width = field.kind.width().unwrap_or(0);
        let bytes = record.get(field.offset..field.offset.saturating_add(width)).ok_or_else(|| {
            DecodeError::new(
                R::Truncated,
                format!(
                    "{}: {} bytes, the length field {:?} is at bytes {}..{}",
                    self.what(),
                    record.len(),
                    field.name,
                    field.offset,
                    field.offset.saturating_add(width)
                ),
            )
        })?;
        match integer(field.kind, bytes, field.order) {
            Some(AttrValue::Number(n)) => n.as_u64().ok_or_else(|| {
                DecodeError::new(
                    R::BadLength,
                    format!("{}: length field {:?} is negative ({n})", self.what(), field.name),
                )
            }),
            _ => Err(self.no_length()),
        }
    }

    /// Decodes one record.
    /// `reuse`: the buffers of a previous record's fields (emptied).
    pub fn decode(&self, record: &[u8], mut reuse: Fields) -> Result<Fields, DecodeError> {
        let what = self.what();
        if !self.magic.is_empty() {
            let found = record.get(self.magic_offset..self.magic_offset.saturating_add(self.magic.len()));
            if found != Some(self.magic.as_slice()) {
                return err(
                    R::UnknownFormat,
                    format!(
                        "{what}: the record does not start with the magic bytes {} at byte {} (found {})",
                        hex(&self.magic),
                        self.magic_offset,
                        found.map_or_else(|| "the end of the record".to_owned(), hex)
                    ),
                );
            }
        }
        if record.len() < self.min_size {
            return err(
                R::Truncated,
                format!("{what}: {} bytes, shorter than the {} bytes of its fixed part", record.len(), self.min_size),
            );
        }
        if let Some((index, adjust)) = self.length {
            if let Some(field) = self.fields.get(index) {
                let announced = self.length_value(field, record)?;
                let total = i128::from(announced) + i128::from(adjust);
                let actual = record.len() as i128;
                if total > actual {
                    return err(
                        R::Truncated,
                        format!("{what}: length field {:?} says {total} bytes but the record has {actual}", field.name),
                    );
                }
                if total < actual {
                    return err(
                        R::BadLength,
                        format!("{what}: length field {:?} says {total} bytes but the record has {actual}", field.name),
                    );
                }
            }
        } else if let Some(size) = self.fixed_size {
            if record.len() != size {
                let reason = if record.len() < size { R::Truncated } else { R::BadLength };
                return err(reason, format!("{what}: records are {size} bytes, this one has {}", record.len()));
            }
        }
        if let Some((algorithm, offset, start)) = self.checksum {
            self.check(record, algorithm, offset, start)?;
        }
        reuse.clear();
        let mut fields = reuse;
        for f in &self.fields {
            let value = fixed_field(f, record).map_err(|(reason, why)| {
                DecodeError::new(reason, format!("{what}: field {:?} at byte {}: {why}", f.name, f.offset))
            })?;
            fields.insert(f.name.clone(), value);
        }
        if let Some(tlv) = &self.tlv {
            self.tlvs(tlv, record, &mut fields)?;
        }
        Ok(fields)
    }

    fn check(&self, record: &[u8], algorithm: ChecksumAlgorithm, offset: i64, start: usize) -> Result<(), DecodeError> {
        let width = algorithm.width();
        let at = if offset < 0 {
            usize::try_from(offset.unsigned_abs()).ok().and_then(|back| record.len().checked_sub(back))
        } else {
            usize::try_from(offset).ok()
        };
        let stored = at.and_then(|at| Some((at, record.get(at..at.checked_add(width)?)?)));
        let Some((at, stored)) = stored else {
            return err(
                R::Truncated,
                format!("{}: {} bytes, too short for the checksum at offset {offset}", self.what(), record.len()),
            );
        };
        let stored = uint(stored, self.order).unwrap_or(0);
        let covered = |r: std::ops::Range<usize>| record.get(r).unwrap_or(&[]);
        let (before, after) = (covered(start.min(at)..at), covered((at + width).max(start)..record.len()));
        let computed = checksum(algorithm, before.iter().chain(after));
        if computed != stored {
            return err(
                R::BadChecksum,
                format!(
                    "{}: the {algorithm:?} checksum at byte {at} is 0x{stored:x}, the record's is 0x{computed:x}",
                    self.what()
                ),
            );
        }
        Ok(())
    }

    fn tlvs(&self, tlv: &Tlv, record: &[u8], fields: &mut Fields) -> Result<(), DecodeError> {
        let what = self.what();
        if tlv.offset > record.len() {
            return err(
                R::Truncated,
                format!("{what}: {} bytes, the TLV section starts at byte {}", record.len(), tlv.offset),
            );
        }
        let header = tlv.tag_size + tlv.length_size;
        let mut pos = tlv.offset;
        while pos < record.len() {
            let (Some(tag), Some(len)) = (
                record.get(pos..pos + tlv.tag_size).and_then(|b| uint(b, tlv.order)),
                record.get(pos + tlv.tag_size..pos + header).and_then(|b| uint(b, tlv.order)),
            ) else {
                return err(
                    R::Truncated,
                    format!("{what}: the record ends inside the header of the TLV at byte {pos}"),
                );
            };
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            let value_len = if tlv.includes_header {
                len.checked_sub(header).ok_or_else(|| {
                    DecodeError::new(
                        R::BadLength,
                        format!("{what}: TLV {tag} at byte {pos} has length {len}, less than its {header}-byte header"),
                    )
                })?
            } else {
                len
            };
            let start = pos + header;
            let Some(value) = start.checked_add(value_len).and_then(|end| record.get(start..end)) else {
                return err(
                    R::Truncated,
                    format!(
                        "{what}: TLV {tag} at byte {pos} announces {value_len} value bytes but the record ends at byte {}",
                        record.len()
                    ),
                );
            };
            let tag32 = u32::try_from(tag).unwrap_or(u32::MAX);
            match tlv.tags.get(&tag32) {
                Some((name, kind)) => {
                    let v = tlv_value(*kind, value, tlv.order).map_err(|(reason, why)| {
                        DecodeError::new(reason, format!("{what}: TLV {tag} ({name}) at byte {pos}: {why}"))
                    })?;
                    fields.append(name.clone(), v);
                }
                None => fields.append(SmallStr::concat(&["tlv.", &SmallStr::decimal(tag)]), SmallStr::hex(value)),
            }
            pos = start + value_len;
        }
        Ok(())
    }
}

/// The checksum of `bytes` by `algorithm`.
fn checksum<'a>(algorithm: ChecksumAlgorithm, bytes: impl Iterator<Item = &'a u8>) -> u64 {
    match algorithm {
        ChecksumAlgorithm::Xor8 => u64::from(bytes.fold(0u8, |acc, b| acc ^ b)),
        ChecksumAlgorithm::Sum8 => u64::from(bytes.fold(0u8, |acc, b| acc.wrapping_add(*b))),
        ChecksumAlgorithm::Crc16Ccitt => {
            let mut crc: u16 = 0xFFFF;
            for b in bytes {
                crc ^= u16::from(*b) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
                }
            }
            u64::from(crc)
        }
        ChecksumAlgorithm::Crc32 => {
            let mut crc: u32 = 0xFFFF_FFFF;
            for b in bytes {
                crc ^= u32::from(*b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
                }
            }
            u64::from(!crc)
        }
    }
}

/// Big- or little-endian unsigned integer of 1 to 8 bytes.
fn uint(bytes: &[u8], order: ByteOrder) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    let mut v = 0u64;
    let mut push = |b: &u8| v = (v << 8) | u64::from(*b);
    match order {
        ByteOrder::Big => bytes.iter().for_each(&mut push),
        ByteOrder::Little => bytes.iter().rev().for_each(&mut push),
    }
    Some(v)
}

/// A fixed-width integer or time value of `kind` from exactly its width in `bytes`.
fn integer(kind: FieldType, bytes: &[u8], order: ByteOrder) -> Option<AttrValue> {
    let width = kind.width()?;
    if bytes.len() != width {
        return None;
    }
    let u = uint(bytes, order)?;
    let shift = 64 - 8 * width as u32;
    let signed = ((u << shift) as i64) >> shift;
    Some(match kind {
        FieldType::U8 | FieldType::U16 | FieldType::U32 | FieldType::U64 => AttrValue::from(u),
        FieldType::I8 | FieldType::I16 | FieldType::I32 | FieldType::I64 => AttrValue::from(signed),
        FieldType::Ipv4 => AttrValue::Str(ipv4_text(Ipv4Addr::from(u32::try_from(u).ok()?))),
        FieldType::UnixS => AttrValue::from(format_rfc3339_millis(i64::try_from(u).ok()?.checked_mul(1000)?)),
        FieldType::UnixMs => AttrValue::from(format_rfc3339_millis(i64::try_from(u).ok()?)),
        _ => return None,
    })
}

fn text(bytes: &[u8]) -> Result<AttrValue, (R, String)> {
    crate::cursor::utf8(bytes)
        .map(AttrValue::from)
        .map_err(|e| (R::BadUtf8, format!("text is not UTF-8 (byte {} of the value)", e.valid_up_to())))
}

fn trim_padding(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| *b != 0 && *b != b' ').map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or(&[])
}

fn fixed_field(f: &Field, record: &[u8]) -> Result<AttrValue, (R, String)> {
    let rest = record.get(f.offset..).unwrap_or(&[]);
    let short = |need: usize| (R::Truncated, format!("needs {need} bytes, the record has {} from there", rest.len()));
    match f.kind {
        FieldType::Bytes => {
            rest.get(..f.length).map(|b| AttrValue::Str(SmallStr::hex(b))).ok_or_else(|| short(f.length))
        }
        FieldType::String => text(trim_padding(rest.get(..f.length).ok_or_else(|| short(f.length))?)),
        FieldType::StringNul => {
            let area = if f.length > 0 { rest.get(..f.length.min(rest.len())).unwrap_or(rest) } else { rest };
            match area.iter().position(|b| *b == 0) {
                Some(end) => text(area.get(..end).unwrap_or(&[])),
                // A fixed area filled to the brim needs no terminator.
                None if f.length > 0 && area.len() == f.length => text(area),
                None => Err((R::Truncated, "no NUL byte ends the string".to_owned())),
            }
        }
        FieldType::StringPrefixed => {
            let prefix = rest.get(..f.length_size).ok_or_else(|| short(f.length_size))?;
            let len = uint(prefix, f.order).and_then(|l| usize::try_from(l).ok()).unwrap_or(usize::MAX);
            let body = rest
                .get(f.length_size..)
                .and_then(|r| r.get(..len))
                .ok_or_else(|| short(f.length_size.saturating_add(len)))?;
            text(body)
        }
        t => {
            let width = t.width().unwrap_or(0);
            let bytes = rest.get(..width).ok_or_else(|| short(width))?;
            integer(t, bytes, f.order).ok_or_else(|| (R::BadValue, "the value is out of range".to_owned()))
        }
    }
}

fn tlv_value(kind: FieldType, value: &[u8], order: ByteOrder) -> Result<AttrValue, (R, String)> {
    match kind {
        FieldType::Bytes => Ok(AttrValue::Str(SmallStr::hex(value))),
        FieldType::String | FieldType::StringNul | FieldType::StringPrefixed => text(trim_padding(value)),
        t => {
            let width = t.width().unwrap_or(0);
            if value.len() != width {
                return Err((R::BadLength, format!("{} value bytes, a {t:?} has {width}", value.len())));
            }
            let order = if t == FieldType::Ipv4 { ByteOrder::Big } else { order };
            integer(t, value, order).ok_or_else(|| (R::BadValue, "the value is out of range".to_owned()))
        }
    }
}
