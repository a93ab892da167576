//! The decoded forms of each partition's most recent records, kept in memory for the stages of
//! this process that read them ([`crate::Decoded`]). On `lux run`, the transform stage's
//! `enriched` records reach the alarm and QoE stages without being parsed again: parsing was
//! close to half of what each of those two stages spent on a record.
//!
//! Only what a commit published is kept, at the offsets the commit gave it, and only the last
//! [`RECENT_PER_PARTITION`] records of a partition. A reader further behind, or in another
//! process, finds none and decodes the bytes, which stay the truth.

use crate::{Decoded, StoredRecord};
use std::collections::{HashMap, VecDeque};

/// How many records of a partition keep their decoded form: about 100 ms of `enriched` records
/// at 200,000 events/s on 3 partitions, enough for readers that keep up (they read each commit
/// as it lands), and a few MB.
pub const RECENT_PER_PARTITION: usize = 8192;

/// The decoded forms kept, by (topic id, partition).
#[derive(Default)]
pub struct RecentDecoded {
    partitions: HashMap<(u32, u32), Recent>,
}

/// A partition's decoded forms, of the offsets `first..first + values.len()`.
struct Recent {
    first: u64,
    values: VecDeque<Decoded>,
}

impl RecentDecoded {
    /// Keeps the decoded forms of records of a partition just published, each with its offset.
    /// A partition's records come in offset order; after a gap (records appended without a
    /// decoded form) the partition keeps those after it only.
    pub fn keep(&mut self, topic: u32, partition: u32, decoded: impl IntoIterator<Item = (u64, Decoded)>) {
        let mut decoded = decoded.into_iter().peekable();
        let Some(&(first, _)) = decoded.peek() else { return };
        let recent =
            self.partitions.entry((topic, partition)).or_insert_with(|| Recent { first, values: VecDeque::new() });
        for (offset, value) in decoded {
            if recent.first + recent.values.len() as u64 != offset {
                recent.values.clear();
                recent.first = offset;
            }
            if recent.values.len() == RECENT_PER_PARTITION {
                recent.values.pop_front();
                recent.first += 1;
            }
            recent.values.push_back(value);
        }
    }

    /// Hands each of `records` (read from one partition) the decoded form kept for it, if any.
    pub fn attach(&self, topic: u32, partition: u32, records: &mut [StoredRecord]) {
        let Some(recent) = self.partitions.get(&(topic, partition)) else { return };
        for record in records {
            let kept = record.offset.checked_sub(recent.first).and_then(|i| recent.values.get(i as usize));
            if let Some(decoded) = kept {
                record.decoded = Some(decoded.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn record(offset: u64) -> StoredRecord {
        StoredRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            key: None,
            timestamp_ms: 0,
            value: Vec::new(),
            decoded: None,
        }
    }

    fn attached(recent: &RecentDecoded, partition: u32, offsets: std::ops::Range<u64>) -> Vec<Option<u64>> {
        let mut records: Vec<StoredRecord> = offsets.map(record).collect();
        recent.attach(7, partition, &mut records);
        records.iter().map(|r| r.decoded.as_ref().map(|d| *d.get::<u64>().unwrap())).collect()
    }

    #[test]
    fn each_record_gets_the_form_kept_at_its_offset_and_only_the_last_ones_are_kept() {
        let mut recent = RecentDecoded::default();
        let total = RECENT_PER_PARTITION as u64 + 10;
        // In two commits.
        let kept = |offsets: std::ops::Range<u64>| offsets.map(|o| (o, Decoded::new(Arc::new(o * 2))));
        recent.keep(7, 0, kept(100..200));
        recent.keep(7, 0, kept(200..100 + total));
        let first_kept = 100 + total - RECENT_PER_PARTITION as u64;
        let got = attached(&recent, 0, first_kept - 2..first_kept + 2);
        assert_eq!(got, vec![None, None, Some(first_kept * 2), Some((first_kept + 1) * 2)]);
        let end = 100 + total;
        assert_eq!(attached(&recent, 0, end - 1..end + 1), vec![Some((end - 1) * 2), None]);
        // Another partition, another topic: nothing.
        assert_eq!(attached(&recent, 1, end - 1..end), vec![None]);
        let mut other_topic = vec![record(end - 1)];
        recent.attach(8, 0, &mut other_topic);
        assert!(other_topic[0].decoded.is_none());
    }

    #[test]
    fn after_a_gap_only_the_records_after_it_are_kept() {
        let mut recent = RecentDecoded::default();
        recent.keep(7, 0, (0..5u64).map(|o| (o, Decoded::new(Arc::new(o)))));
        // Offsets 5 and 6 were appended without a decoded form.
        recent.keep(7, 0, [(7, Decoded::new(Arc::new(7u64)))]);
        assert_eq!(attached(&recent, 0, 3..9), vec![None, None, None, None, Some(7), None]);
    }
}
