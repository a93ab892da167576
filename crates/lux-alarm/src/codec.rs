//! The binary encoding of the alarm stage's own records (its state entries and the records of
//! the routed topic): a format byte first, then LEB128 varints (zigzag for the signed), flags as
//! one byte, strings as a length and UTF-8 bytes. Every read error says what was wrong.

pub(crate) fn put_u64(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(crate) fn put_i64(buf: &mut Vec<u8>, v: i64) {
    put_u64(buf, ((v << 1) ^ (v >> 63)) as u64);
}

pub(crate) fn put_opt_i64(buf: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => buf.push(0),
        Some(v) => {
            buf.push(1);
            put_i64(buf, v);
        }
    }
}

pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u64(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

pub(crate) fn put_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            put_str(buf, s);
        }
    }
}

pub(crate) fn put_strs(buf: &mut Vec<u8>, strs: &[String]) {
    put_u64(buf, strs.len() as u64);
    for s in strs {
        put_str(buf, s);
    }
}

/// Reads a binary entry; every error says what was wrong (the caller adds the key).
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `value`, whose first byte must be `format`.
    pub(crate) fn new(value: &'a [u8], format: u8) -> Result<Reader<'a>, String> {
        match value.split_first() {
            Some((&first, rest)) if first == format => Ok(Reader { rest }),
            Some((other, _)) => Err(format!("format {other}, this LUX reads format {format}")),
            None => Err("empty value".to_owned()),
        }
    }

    pub(crate) fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.rest.split_first().ok_or("truncated")?;
        self.rest = rest;
        Ok(b)
    }

    pub(crate) fn bool(&mut self) -> Result<bool, String> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("bad flag {other}")),
        }
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("integer too long".to_owned())
    }

    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub(crate) fn opt_i64(&mut self) -> Result<Option<i64>, String> {
        Ok(if self.bool()? { Some(self.i64()?) } else { None })
    }

    /// A string, borrowed from the value.
    pub(crate) fn str(&mut self) -> Result<&'a str, String> {
        let len = usize::try_from(self.u64()?).map_err(|_| "string too long")?;
        if len > self.rest.len() {
            return Err("truncated".to_owned());
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        std::str::from_utf8(bytes).map_err(|_| "a string is not UTF-8".to_owned())
    }

    pub(crate) fn string(&mut self) -> Result<String, String> {
        self.str().map(str::to_owned)
    }

    pub(crate) fn opt_string(&mut self) -> Result<Option<String>, String> {
        Ok(if self.bool()? { Some(self.string()?) } else { None })
    }

    /// The number of strings of a list: each takes at least a byte, so a count beyond what is
    /// left is corrupt.
    fn count(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
        if n > self.rest.len() as u64 {
            return Err("truncated".to_owned());
        }
        Ok(n as usize)
    }

    pub(crate) fn strings(&mut self) -> Result<Vec<String>, String> {
        let n = self.count()?;
        (0..n).map(|_| self.string()).collect()
    }

    /// A string into `into`, reusing its buffer.
    pub(crate) fn string_into(&mut self, into: &mut String) -> Result<(), String> {
        let s = self.str()?;
        into.clear();
        into.push_str(s);
        Ok(())
    }

    /// An optional string into `into`, reusing its buffer.
    pub(crate) fn opt_string_into(&mut self, into: &mut Option<String>) -> Result<(), String> {
        if !self.bool()? {
            *into = None;
            return Ok(());
        }
        self.string_into(into.get_or_insert_with(String::new))
    }

    /// A list of strings into `into`, reusing its buffers.
    pub(crate) fn strings_into(&mut self, into: &mut Vec<String>) -> Result<(), String> {
        let n = self.count()?;
        into.truncate(n);
        for i in 0..n {
            match into.get_mut(i) {
                Some(s) => self.string_into(s)?,
                None => into.push(self.string()?),
            }
        }
        Ok(())
    }

    pub(crate) fn end(&self) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes after the end", self.rest.len()))
        }
    }
}
