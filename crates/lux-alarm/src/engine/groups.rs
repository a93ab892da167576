//! The groups of one rule: a slab of [`Group`]s (one slot per group, a removed group's slot
//! reused) with an index from group key to slot. The engine lists changed groups by slot, so
//! that a commit reaches each one without looking its key up again, and counting an event never
//! copies its group key.
//!
//! Finding a group is the engine's most frequent step, and with tens of thousands of groups
//! their memory is far from the cache: the index holds only slot numbers (4 bytes each, so it
//! stays cached), and a key of up to 24 bytes (`site=...`, `equipment=...`) is kept inside its
//! slot, which counting reads anyway, rather than behind one more pointer.

use crate::window::Group;
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;
use std::hash::BuildHasher;

/// A slot number in a [`RuleGroups`].
pub(super) type SlotId = u32;

/// One group and its key.
#[derive(Debug)]
pub(super) struct Slot {
    /// The group key's UTF-8 bytes (made from a `&str`), inline up to 24 bytes.
    key: SmallVec<[u8; 24]>,
    pub group: Group,
}

impl Slot {
    /// The group key.
    pub fn key(&self) -> &str {
        // Always UTF-8: copied from a `&str` by `RuleGroups::insert`.
        std::str::from_utf8(&self.key).unwrap_or_default()
    }

    /// The group key and the group, to change.
    pub fn parts(&mut self) -> (&str, &mut Group) {
        (std::str::from_utf8(&self.key).unwrap_or_default(), &mut self.group)
    }
}

/// The groups of one rule, by key and by slot.
#[derive(Debug, Default)]
pub(super) struct RuleGroups {
    /// Slot numbers by the hash of their group key. Fx hashing: the keys (at most `max_groups`
    /// of them) come from reference data and equipment ids, not from whoever wants to slow the
    /// table down.
    index: HashTable<SlotId>,
    slots: Vec<Option<Slot>>,
    /// Empty slots, reused first.
    free: Vec<SlotId>,
}

fn hash(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// The key of slot `id`, as hashed (empty for an empty slot, which the index never names).
fn slot_key(slots: &[Option<Slot>], id: SlotId) -> &[u8] {
    slots.get(id as usize).and_then(Option::as_ref).map_or(&[], |slot| &slot.key[..])
}

impl RuleGroups {
    /// The slot of the group `key`.
    pub fn find(&self, key: &str) -> Option<SlotId> {
        let slots = &self.slots;
        self.index.find(hash(key.as_bytes()), |&id| slot_key(slots, id) == key.as_bytes()).copied()
    }

    /// Adds the group `key` (absent, or replaced) and returns its slot.
    pub fn insert(&mut self, key: &str, group: Group) -> SlotId {
        if let Some(id) = self.find(key) {
            if let Some(Some(slot)) = self.slots.get_mut(id as usize) {
                slot.group = group;
                return id;
            }
        }
        let slot = Slot { key: SmallVec::from_slice(key.as_bytes()), group };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(free) = self.slots.get_mut(id as usize) {
                    *free = Some(slot);
                }
                id
            }
            None => {
                self.slots.push(Some(slot));
                // At most `max_groups` slots: far below u32::MAX (validated config).
                SlotId::try_from(self.slots.len() - 1).unwrap_or(SlotId::MAX)
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash(key.as_bytes()), id, |&id| hash(slot_key(slots, id)));
        id
    }

    pub fn get_mut(&mut self, id: SlotId) -> Option<&mut Slot> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Removes the group in slot `id`, returning it.
    pub fn remove(&mut self, id: SlotId) -> Option<Slot> {
        let slot = self.slots.get_mut(id as usize)?.take()?;
        if let Ok(entry) = self.index.find_entry(hash(&slot.key), |&other| other == id) {
            entry.remove();
        }
        self.free.push(id);
        Some(slot)
    }

    /// Every group with its slot, in slot order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SlotId, &mut Slot)> {
        self.slots.iter_mut().enumerate().filter_map(|(i, s)| Some((i as SlotId, s.as_mut()?)))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_found_by_key_and_reused_after_removal() {
        let mut groups = RuleGroups::default();
        let long = "equipment=a-key-longer-than-twenty-four-bytes";
        let a = groups.insert("site=A", Group::new(vec!["A".into()]));
        let b = groups.insert(long, Group::new(vec!["B".into()]));
        assert_ne!(a, b);
        assert_eq!((groups.find("site=A"), groups.find(long), groups.find("site=C")), (Some(a), Some(b), None));
        assert_eq!(groups.insert("site=A", Group::new(vec!["A2".into()])), a, "replaced in place");
        assert_eq!(groups.get_mut(a).map(|s| s.group.values.clone()), Some(vec!["A2".to_owned()]));
        assert_eq!(groups.remove(a).map(|s| s.key().to_owned()), Some("site=A".into()));
        assert!(groups.remove(a).is_none() && groups.get_mut(a).is_none() && groups.find("site=A").is_none());
        assert_eq!(groups.insert("site=C", Group::new(vec!["C".into()])), a, "the free slot is reused");
        let keys: Vec<&str> = groups.iter().map(Slot::key).collect();
        assert_eq!((keys, groups.len()), (vec!["site=C", long], 2));
        // Many groups: the table grows (rehashing by the keys in the slots) and finds them all.
        for i in 0..5_000 {
            groups.insert(&format!("site={i}"), Group::new(vec![]));
        }
        assert!((0..5_000).all(|i| groups.find(&format!("site={i}")).is_some()));
        assert_eq!(groups.len(), 5_002);
    }
}
