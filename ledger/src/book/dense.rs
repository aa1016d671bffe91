//! Maps for many small records that live as long as the engine (cards and their usage,
//! the engine's card routes): the records in one `Vec`, found through a hash table of 4-byte
//! slot numbers.
//!
//! A `HashMap<K, V>` keeps every entry in a bucket of its own table, and the table is
//! between 44 % and 87 % full: keyed by a 16-byte card token, one card's usage counters took
//! about 190 bytes of buckets at a million cards. Here the records sit back to back in a
//! `Vec`, whose spare capacity is never touched and so costs no resident memory, and the
//! table holds a `u32` slot and its control byte: 5 to 11 bytes per record. A lookup reads
//! the table and then the record, where a hash map read one bucket; the record is what the
//! caller reads next anyway. Records are never removed (a card stays, whatever its status),
//! which keeps slots stable.
//!
//! Keys are hashed with [`IdHasher`]: they must be ids the engine allocates or keyed
//! fingerprints, never values an outside party chooses.

use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash};

use hashbrown::HashTable;

use super::hasher::IdHasher;

/// The most records one index holds: slots are `u32`. A million cards is 0.02 % of it; the
/// memory of 2^32 records would run out long before.
pub const SLOTS_MAX: usize = u32::MAX as usize;

fn hash_of<K: Hash>(key: &K) -> u64 {
    BuildHasherDefault::<IdHasher>::default().hash_one(key)
}

/// A hash index over records that a caller keeps in a `Vec`: it stores slot numbers only
/// and reads each record's key through `key_at` (when comparing, and when the table grows).
#[derive(Clone, Default)]
pub struct SlotIndex {
    table: HashTable<u32>,
}

impl SlotIndex {
    pub fn with_capacity(capacity: usize) -> SlotIndex {
        SlotIndex {
            table: HashTable::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The slot whose record has `key`.
    pub fn find<K: Hash + Eq>(&self, key: &K, key_at: impl Fn(usize) -> K) -> Option<usize> {
        let found = self
            .table
            .find(hash_of(key), |&slot| key_at(slot as usize) == *key)?;
        Some(*found as usize)
    }

    /// Indexes the record at `slot` under `key`. The caller makes sure no other slot has
    /// that key (look it up first); `key_at` must give the key of every indexed slot.
    pub fn insert<K: Hash>(&mut self, slot: usize, key: &K, key_at: impl Fn(usize) -> K) {
        let slot = u32::try_from(slot).expect("a slot index holds at most SLOTS_MAX records");
        self.table
            .insert_unique(hash_of(key), slot, |&s| hash_of(&key_at(s as usize)));
    }

    /// Makes room for `additional` more slots without growing on the way.
    pub fn reserve<K: Hash>(&mut self, additional: usize, key_at: impl Fn(usize) -> K) {
        self.table
            .reserve(additional, |&s| hash_of(&key_at(s as usize)));
    }

    pub fn clear(&mut self) {
        self.table.clear();
    }
}

impl fmt::Debug for SlotIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotIndex")
            .field("len", &self.len())
            .finish()
    }
}

/// A map whose entries are never removed, kept densely: see the [module documentation](self).
/// Iteration follows insertion order.
#[derive(Clone)]
pub struct DenseMap<K, V> {
    entries: Vec<(K, V)>,
    index: SlotIndex,
}

impl<K, V> Default for DenseMap<K, V> {
    fn default() -> Self {
        DenseMap {
            entries: Vec::new(),
            index: SlotIndex::default(),
        }
    }
}

impl<K: Hash + Eq + Copy, V> DenseMap<K, V> {
    pub fn with_capacity(capacity: usize) -> DenseMap<K, V> {
        DenseMap {
            entries: Vec::with_capacity(capacity),
            index: SlotIndex::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn slot(&self, key: &K) -> Option<usize> {
        let entries = &self.entries;
        self.index.find(key, |slot| entries[slot].0)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.slot(key).map(|slot| &self.entries[slot].1)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let slot = self.slot(key)?;
        Some(&mut self.entries[slot].1)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.slot(key).is_some()
    }

    /// Inserts or replaces; the value replaced, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(slot) = self.slot(&key) {
            return Some(std::mem::replace(&mut self.entries[slot].1, value));
        }
        let slot = self.entries.len();
        self.entries.push((key, value));
        let entries = &self.entries;
        self.index.insert(slot, &key, |s| entries[s].0);
        None
    }

    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        let entries = &self.entries;
        self.index.reserve(additional, |s| entries[s].0);
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.entries.iter().map(|(_, v)| v)
    }
}

impl<'a, K: Hash + Eq + Copy, V> IntoIterator for &'a DenseMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        let pair: fn(&'a (K, V)) -> (&'a K, &'a V) = |(k, v)| (k, v);
        self.entries.iter().map(pair)
    }
}

impl<K: Hash + Eq + Copy, V> FromIterator<(K, V)> for DenseMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(items: I) -> Self {
        let items = items.into_iter();
        let mut map = DenseMap::with_capacity(items.size_hint().0);
        for (k, v) in items {
            map.insert(k, v);
        }
        map
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for DenseMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_hash_map_that_never_removes() {
        let mut dense: DenseMap<u128, u64> = DenseMap::default();
        let mut model: HashMap<u128, u64> = HashMap::new();
        // Keys spread over both words, and repeats that replace.
        for i in 0..20_000u64 {
            let key = u128::from(i % 7_919) << 64 | u128::from(i.wrapping_mul(31) % 5_003);
            assert_eq!(dense.insert(key, i), model.insert(key, i), "{key}");
        }
        assert_eq!(dense.len(), model.len());
        for (k, v) in &model {
            assert_eq!(dense.get(k), Some(v));
        }
        assert_eq!(dense.get(&u128::MAX), None);
        assert!(!dense.contains_key(&(1u128 << 100)));
        if let Some(v) = dense.get_mut(&0) {
            *v = 7;
        }
        assert_eq!(dense.get(&0), Some(&7));
        let first_keys: Vec<u128> = dense.keys().take(3).copied().collect();
        assert_eq!(
            first_keys,
            [0, 1 << 64 | 31, 2 << 64 | 62],
            "insertion order"
        );
        let rebuilt: DenseMap<u128, u64> = dense.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(rebuilt.len(), dense.len());
        assert!(rebuilt.iter().all(|(k, v)| dense.get(k) == Some(v)));
    }

    #[test]
    fn a_slot_index_finds_records_kept_elsewhere() {
        let records: Vec<(u64, &str)> = vec![(10, "a"), (20, "b"), (30, "c")];
        let mut by_id = SlotIndex::default();
        for (slot, (id, _)) in records.iter().enumerate() {
            by_id.insert(slot, id, |s| records[s].0);
        }
        assert_eq!(by_id.find(&20, |s| records[s].0), Some(1));
        assert_eq!(by_id.find(&25, |s| records[s].0), None);
        assert_eq!(by_id.len(), 3);
    }
}
