//! The binary state entries of (rule, group)s: a group entry (`group/<rule>/<group_key>`: the
//! rule's identity, the group's values and its alarm), written when the group is created or its
//! alarm changes, and one entry per pane (`pane/<rule>/<group_key>/<index>`), written when an
//! event is counted in it and deleted when it leaves the windows. A batch thus writes what it
//! changed: one small pane entry per pane touched, never a group's whole pane list.
//!
//! Values start with a format byte ([`FORMAT`]); integers are LEB128 varints (zigzag for the
//! signed), strings are a length and UTF-8 bytes. The JSON group entries of state version 1
//! (whole pane lists, first byte `{`) are read by the engine and rewritten in this format.

use crate::codec::{put_i64, put_opt_i64, put_opt_str, put_str, put_strs, put_u64, Reader};
use crate::window::{ActiveAlarm, Pane, StagedAt};

/// The first byte of every binary entry.
pub(super) const FORMAT: u8 = 2;
/// The prefix of the pane entries: `pane/<rule>/<group_key>/` and the pane index as 8 bytes.
pub const PANE_KEY_PREFIX: &[u8] = b"pane/";
/// The pane index in a key: big-endian with the sign bit flipped, so that keys sort by index.
const INDEX_BYTES: usize = 8;

/// The key of pane `index` of the group `group_key` of `rule` (`pane/` and the alarm key of its
/// routed records, `<rule>/<group_key>`, then `/` and the index), made in one allocation.
pub(super) fn pane_key(rule: &str, group_key: &str, index: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(PANE_KEY_PREFIX.len() + rule.len() + 1 + group_key.len() + 1 + INDEX_BYTES);
    key.extend_from_slice(PANE_KEY_PREFIX);
    key.extend_from_slice(rule.as_bytes());
    key.push(b'/');
    key.extend_from_slice(group_key.as_bytes());
    key.push(b'/');
    key.extend_from_slice(&((index as u64) ^ (1 << 63)).to_be_bytes());
    key
}

/// The alarm key and pane index of a pane entry's key (`None` if it is not one).
pub(super) fn parse_pane_key(key: &[u8]) -> Option<(&[u8], i64)> {
    let rest = key.strip_prefix(PANE_KEY_PREFIX)?;
    let split = rest.len().checked_sub(INDEX_BYTES + 1)?;
    let (alarm_key, tail) = rest.split_at(split);
    let (slash, index) = tail.split_first()?;
    if *slash != b'/' {
        return None;
    }
    let index: [u8; INDEX_BYTES] = index.try_into().ok()?;
    Some((alarm_key, (u64::from_be_bytes(index) ^ (1 << 63)) as i64))
}

/// What a (rule, group)'s entry says, besides its panes.
#[derive(Debug)]
pub(super) struct GroupHeader {
    pub rule: String,
    pub group_by: Vec<String>,
    pub slide_ms: i64,
    pub group_key: String,
    pub values: Vec<String>,
    pub alarm: Option<ActiveAlarm>,
}

pub(super) struct GroupHeaderRef<'a> {
    pub rule: &'a str,
    pub group_by: &'a [String],
    pub slide_ms: i64,
    pub group_key: &'a str,
    pub values: &'a [String],
    pub alarm: Option<&'a ActiveAlarm>,
}

pub(super) fn encode_header(h: &GroupHeaderRef<'_>, buf: &mut Vec<u8>) {
    buf.push(FORMAT);
    put_str(buf, h.rule);
    put_strs(buf, h.group_by);
    put_i64(buf, h.slide_ms);
    put_str(buf, h.group_key);
    put_strs(buf, h.values);
    match h.alarm {
        None => buf.push(0),
        Some(a) => {
            buf.push(1);
            put_str(buf, &a.alarm_id);
            put_i64(buf, a.first_seen);
            put_i64(buf, a.last_seen);
            buf.push(u8::from(a.last_suppress));
            put_u64(buf, a.count);
            put_u64(buf, a.total);
            put_opt_str(buf, a.last_intervention.as_deref());
            put_opt_i64(buf, a.open_window);
        }
    }
}

pub(super) fn decode_header(value: &[u8]) -> Result<GroupHeader, String> {
    let mut r = Reader::new(value, FORMAT)?;
    let header = GroupHeader {
        rule: r.string()?,
        group_by: r.strings()?,
        slide_ms: r.i64()?,
        group_key: r.string()?,
        values: r.strings()?,
        alarm: match r.byte()? {
            0 => None,
            1 => Some(ActiveAlarm {
                alarm_id: r.string()?,
                first_seen: r.i64()?,
                last_seen: r.i64()?,
                last_suppress: r.bool()?,
                count: r.u64()?,
                total: r.u64()?,
                last_intervention: r.opt_string()?,
                open_window: r.opt_i64()?,
            }),
            other => return Err(format!("bad alarm tag {other}")),
        },
    };
    r.end()?;
    Ok(header)
}

/// A state change: key, and the new value (`None`: the entry is deleted).
pub(super) type Change = (Vec<u8>, Option<Vec<u8>>);

/// The pane entries changed since the last commit, encoded as they change: a pane's entry is
/// staged the moment an event lands in it (its memory is then in the cache), and staged again in
/// place when another does. A commit hands them over without visiting the groups again, which
/// would read each group's panes from memory a second time.
#[derive(Debug, Default)]
pub(super) struct Staged {
    entries: Vec<Change>,
    /// Commits made: a pane's [`StagedAt`] is valid only while this is its `commit`.
    commit: u64,
}

impl Staged {
    /// The mark of this commit in a pane's [`StagedAt`] (0, the mark of a pane never staged,
    /// would take 2^64 commits).
    fn mark(&self) -> u64 {
        self.commit.wrapping_add(1)
    }

    /// Where `pane`'s entry was staged in this commit, if it was.
    fn entry_of(&mut self, pane: &Pane) -> Option<&mut Change> {
        if pane.staged.commit == self.mark() {
            self.entries.get_mut(pane.staged.entry as usize)
        } else {
            None
        }
    }

    /// Stages the entry of `pane` of the group `group_key` of `rule`, in place of the one staged
    /// for it earlier in this commit.
    pub fn write(&mut self, rule: &str, group_key: &str, pane: &mut Pane) {
        if let Some((_, value)) = self.entry_of(pane) {
            let value = value.get_or_insert_with(|| Vec::with_capacity(PANE_VALUE_CAPACITY));
            value.clear();
            encode_pane(pane, value);
            return;
        }
        let mut value = Vec::with_capacity(PANE_VALUE_CAPACITY);
        encode_pane(pane, &mut value);
        // Past 4 billion entries in one commit, a pane is staged anew each time (the commit
        // sorts repeated keys).
        if let Ok(entry) = u32::try_from(self.entries.len()) {
            pane.staged = StagedAt { commit: self.mark(), entry };
        }
        self.entries.push((pane_key(rule, group_key, pane.index), Some(value)));
    }

    /// Stages the deletion of the entry of `pane`, dropped from the windows: in place of its
    /// entry staged in this commit, if any.
    pub fn delete(&mut self, rule: &str, group_key: &str, pane: &Pane) {
        if let Some((_, value)) = self.entry_of(pane) {
            *value = None;
            return;
        }
        self.entries.push((pane_key(rule, group_key, pane.index), None));
    }

    /// The entries staged since the last call, in the order first staged; the next ones belong
    /// to a new commit.
    pub fn take(&mut self) -> Vec<Change> {
        self.commit = self.commit.wrapping_add(1);
        std::mem::take(&mut self.entries)
    }

    /// Drops the staged entries (the engine is rebuilt).
    pub fn clear(&mut self) {
        self.take();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Room for a pane's value without growing: counts and two event times (7 bytes each).
pub(super) const PANE_VALUE_CAPACITY: usize = 32;

pub(super) fn encode_pane(pane: &Pane, buf: &mut Vec<u8>) {
    buf.push(FORMAT);
    put_u64(buf, pane.failures);
    put_u64(buf, pane.total);
    put_opt_i64(buf, pane.first_failure);
    put_opt_i64(buf, pane.last_failure);
    buf.push(u8::from(pane.last_suppress));
    put_opt_str(buf, pane.last_intervention.as_deref());
}

pub(super) fn decode_pane(index: i64, value: &[u8]) -> Result<Pane, String> {
    let mut r = Reader::new(value, FORMAT)?;
    let pane = Pane {
        index,
        failures: r.u64()?,
        total: r.u64()?,
        first_failure: r.opt_i64()?,
        last_failure: r.opt_i64()?,
        last_suppress: r.bool()?,
        last_intervention: r.opt_string()?,
        staged: StagedAt::default(),
    };
    r.end()?;
    Ok(pane)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pane_keys_sort_by_index_and_parse_back() {
        let keys: Vec<Vec<u8>> =
            [-5i64, -1, 0, 1, 7, i64::MAX, i64::MIN].iter().map(|&i| pane_key("r", "g/x", i)).collect();
        for (key, i) in keys.iter().zip([-5i64, -1, 0, 1, 7, i64::MAX, i64::MIN]) {
            assert_eq!(parse_pane_key(key), Some((&b"r/g/x"[..], i)));
        }
        assert!(keys[0] < keys[1] && keys[1] < keys[2] && keys[2] < keys[3] && keys[6] < keys[0]);
        assert_eq!(parse_pane_key(b"pane/short"), None);
        assert_eq!(parse_pane_key(b"group/r/g/12345678"), None);
    }

    #[test]
    fn entries_round_trip_and_corruption_is_an_error() {
        let alarm = ActiveAlarm {
            alarm_id: "a1".into(),
            first_seen: -3,
            last_seen: 1_767_607_200_000,
            last_suppress: true,
            count: 300,
            total: u64::MAX,
            last_intervention: Some("INT-1".into()),
            open_window: Some(176_760_721),
        };
        let (group_by, values) = (vec!["site".to_owned()], vec!["PAR".to_owned()]);
        let mut buf = Vec::new();
        let h = GroupHeaderRef {
            rule: "r",
            group_by: &group_by,
            slide_ms: 10_000,
            group_key: "site=PAR",
            values: &values,
            alarm: Some(&alarm),
        };
        encode_header(&h, &mut buf);
        let back = decode_header(&buf).unwrap();
        assert_eq!((back.rule.as_str(), back.slide_ms, back.group_key.as_str()), ("r", 10_000, "site=PAR"));
        assert_eq!((back.group_by, back.values, back.alarm), (group_by, values, Some(alarm)));
        for cut in 0..buf.len() {
            assert!(decode_header(&buf[..cut]).is_err());
        }
        let pane = Pane {
            index: -2,
            failures: 129,
            total: 1 << 40,
            first_failure: Some(-1),
            last_failure: None,
            last_suppress: false,
            last_intervention: Some("I".into()),
            staged: StagedAt::default(),
        };
        let mut buf = Vec::new();
        encode_pane(&pane, &mut buf);
        assert_eq!(decode_pane(-2, &buf).unwrap(), pane);
        buf.push(0);
        assert!(decode_pane(-2, &buf).unwrap_err().contains("after the end"));
        assert!(decode_pane(0, b"{\"version\":1}").unwrap_err().contains("format 123"));
    }
}
