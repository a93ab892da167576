//! The commit journal: one file per data directory whose CRC-framed entries are the only truth
//! about what is committed. A frame is `len u32 | crc32c u32 | payload`; a payload is one
//! [`Entry`]. A stage commit is one entry, so it is applied whole or not at all.

/// The journal's file name inside the data directory.
pub const JOURNAL_FILE: &str = "journal";
/// The journal being rewritten as a checkpoint, renamed over [`JOURNAL_FILE`] when complete.
pub const JOURNAL_TMP: &str = "journal.tmp";
const FRAME_HEADER: usize = 8;
const MAX_ENTRY: usize = 1 << 30;

/// Where a partition's committed records end: the next offset, and the segment (by base
/// offset) and byte length holding the last of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionEnd {
    pub topic: u32,
    pub partition: u32,
    pub end: u64,
    pub segment: u64,
    pub segment_len: u64,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A topic was created.
    Topic { id: u32, name: String, partitions: u32 },
    /// A stage commit (or, in a checkpoint, the whole of a group / of the partition ends).
    Commit {
        /// Every data file this entry refers to was synced before the entry was written.
        data_synced: bool,
        group: String,
        offsets: Vec<(u32, u32, u64)>,
        ends: Vec<PartitionEnd>,
        state: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    },
    /// Retention moved a partition's first offset (its older segments are deleted).
    Start { topic: u32, partition: u32, start: u64 },
    /// The journal up to byte `upto`, and the data its entries refer to, are on disk.
    Synced { upto: u64 },
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    /// A count of items, each at least `min_size` bytes: refuses counts the input cannot hold.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(min_size)? <= self.0.len()).then_some(n)
    }
}

impl Entry {
    /// Appends this entry as one frame.
    pub fn encode_frame(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.extend_from_slice(&[0; FRAME_HEADER]);
        let mut w = Writer(buf);
        match self {
            Entry::Topic { id, name, partitions } => {
                w.u8(1);
                w.u32(*id);
                w.bytes(name.as_bytes());
                w.u32(*partitions);
            }
            Entry::Commit { data_synced, group, offsets, ends, state } => {
                w.u8(2);
                w.u8(u8::from(*data_synced));
                w.bytes(group.as_bytes());
                w.u32(offsets.len() as u32);
                for (topic, partition, next) in offsets {
                    w.u32(*topic);
                    w.u32(*partition);
                    w.u64(*next);
                }
                w.u32(ends.len() as u32);
                for e in ends {
                    w.u32(e.topic);
                    w.u32(e.partition);
                    w.u64(e.end);
                    w.u64(e.segment);
                    w.u64(e.segment_len);
                }
                w.u32(state.len() as u32);
                for (key, value) in state {
                    w.bytes(key);
                    match value {
                        Some(value) => {
                            w.u8(1);
                            w.bytes(value);
                        }
                        None => w.u8(0),
                    }
                }
            }
            Entry::Start { topic, partition, start } => {
                w.u8(3);
                w.u32(*topic);
                w.u32(*partition);
                w.u64(*start);
            }
            Entry::Synced { upto } => {
                w.u8(4);
                w.u64(*upto);
            }
        }
        let payload_len = (buf.len() - start - FRAME_HEADER) as u32;
        let crc = crc32c::crc32c(&buf[start + FRAME_HEADER..]);
        buf[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
        buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(payload: &[u8]) -> Option<Entry> {
        let mut r = Reader(payload);
        let entry = match r.u8()? {
            1 => Entry::Topic { id: r.u32()?, name: r.string()?, partitions: r.u32()? },
            2 => {
                let data_synced = r.u8()? != 0;
                let group = r.string()?;
                let n = r.count(16)?;
                let mut offsets = Vec::with_capacity(n);
                for _ in 0..n {
                    offsets.push((r.u32()?, r.u32()?, r.u64()?));
                }
                let n = r.count(32)?;
                let mut ends = Vec::with_capacity(n);
                for _ in 0..n {
                    ends.push(PartitionEnd {
                        topic: r.u32()?,
                        partition: r.u32()?,
                        end: r.u64()?,
                        segment: r.u64()?,
                        segment_len: r.u64()?,
                    });
                }
                let n = r.count(5)?;
                let mut state = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = r.bytes()?.to_vec();
                    let value = match r.u8()? {
                        0 => None,
                        1 => Some(r.bytes()?.to_vec()),
                        _ => return None,
                    };
                    state.push((key, value));
                }
                Entry::Commit { data_synced, group, offsets, ends, state }
            }
            3 => Entry::Start { topic: r.u32()?, partition: r.u32()?, start: r.u64()? },
            4 => Entry::Synced { upto: r.u64()? },
            _ => return None,
        };
        r.0.is_empty().then_some(entry)
    }
}

/// The outcome of reading one frame at the start of `bytes`.
#[derive(Debug)]
pub enum Frame {
    /// A whole, valid entry of `size` bytes.
    Entry { entry: Entry, size: usize },
    /// The bytes end inside the frame: a torn tail (or, for a reader, one being written).
    Incomplete,
    /// The frame's length or CRC is wrong.
    Bad(&'static str),
}

/// Reads the frame at the start of `bytes`.
pub fn read_frame(bytes: &[u8]) -> Frame {
    if bytes.len() < FRAME_HEADER {
        return Frame::Incomplete;
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if len == 0 || len > MAX_ENTRY {
        return Frame::Bad("an entry length that cannot be");
    }
    let Some(payload) = bytes.get(FRAME_HEADER..FRAME_HEADER + len) else {
        return Frame::Incomplete;
    };
    if crc32c::crc32c(payload) != crc {
        return Frame::Bad("an entry whose CRC32C does not match its bytes");
    }
    match Entry::decode(payload) {
        Some(entry) => Frame::Entry { entry, size: FRAME_HEADER + len },
        None => Frame::Bad("an entry with a valid CRC that does not decode (written by another version?)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let entries = vec![
            Entry::Topic { id: 3, name: "raw".into(), partitions: 6 },
            Entry::Commit {
                data_synced: true,
                group: "alarm".into(),
                offsets: vec![(3, 1, 99)],
                ends: vec![PartitionEnd { topic: 3, partition: 2, end: 10, segment: 0, segment_len: 900 }],
                state: vec![(b"k".to_vec(), Some(b"v".to_vec())), (b"gone".to_vec(), None)],
            },
            Entry::Start { topic: 3, partition: 0, start: 5 },
            Entry::Synced { upto: 1234 },
        ];
        let mut buf = Vec::new();
        for e in &entries {
            e.encode_frame(&mut buf);
        }
        let mut at = 0;
        for expected in &entries {
            match read_frame(&buf[at..]) {
                Frame::Entry { entry, size } => {
                    assert_eq!(&entry, expected);
                    at += size;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(at, buf.len());
        assert!(matches!(read_frame(&buf[..buf.len() - 1]), Frame::Entry { .. }));
        let last = buf.len() - 17;
        assert!(matches!(read_frame(&buf[last..buf.len() - 1]), Frame::Incomplete));
        let mut bad = buf.clone();
        bad[12] ^= 0xff;
        assert!(matches!(read_frame(&bad), Frame::Bad(_)));
    }
}
