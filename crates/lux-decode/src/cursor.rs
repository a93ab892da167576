//! A byte cursor for the hand-written parsers: every read is bounds-checked and returns
//! `None` at the end of the record instead of panicking. The record is checked for UTF-8 once,
//! so that its fields are then cut as text without validating each again.

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The whole record as text, when it is valid UTF-8 (nearly always).
    text: Option<&'a str>,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0, text: utf8(buf).ok() }
    }

    /// The bytes `start..end` of the record as text: cut from the record validated once when
    /// it is UTF-8 (`str::get` only checks that both ends are character boundaries), else
    /// validated here.
    pub fn text_of(&self, start: usize, end: usize) -> Result<&'a str, std::str::Utf8Error> {
        match self.text.and_then(|t| t.get(start..end)) {
            Some(text) => Ok(text),
            None => utf8(self.buf.get(start..end).unwrap_or(&[])),
        }
    }

    /// Consumes the bytes up to (not including) the next `a` or `b`, or to the end (memchr).
    pub fn take_until2(&mut self, a: u8, b: u8) -> &'a [u8] {
        let rest = self.rest();
        let len = memchr::memchr2(a, b, rest).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or(&[])
    }

    /// The whole record.
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// Offset of the next byte from the start of the record.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.buf.get(self.pos.checked_add(ahead)?).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// Consumes `b` if it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes and returns the longest prefix whose bytes satisfy `pred`.
    pub fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if !pred(b) {
                break;
            }
            self.pos += 1;
        }
        self.buf.get(start..self.pos).unwrap_or(&[])
    }

    /// Everything not consumed yet (consumes it).
    pub fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        rest
    }

    /// Everything not consumed yet, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Saves the position to come back to with [`Cursor::reset`].
    pub fn mark(&self) -> usize {
        self.pos
    }

    pub fn reset(&mut self, mark: usize) {
        self.pos = mark.min(self.buf.len());
    }
}

/// Parses a run of ASCII digits as an unsigned number (`None` if empty or too large).
pub(crate) fn ascii_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

/// `bytes` as text: ASCII (nearly every record and field) is checked a word at a time, anything
/// else validated by `str::from_utf8` (which costs more on the short fields of a record).
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}
