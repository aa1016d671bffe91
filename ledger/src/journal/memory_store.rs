//! An in-memory store for tests, with the failures a disk can produce on demand.
//!
//! It keeps two maps: what readers see now (`visible`) and what would survive a power cut
//! (`durable`, updated only by `flush`). [`MemoryStore::durable_image`] is a crash: a new
//! store holding only what was flushed. Records can be damaged in place (a flipped byte, a
//! cut-off value), and appends or flushes can be made to fail, to test the paths sled
//! never takes on a healthy disk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::store::{EncodedRecord, EventStore, StoreIter};
use super::{JournalError, Seq};

/// A failure to inject into a [`MemoryStore`]. Once injected it persists until cleared, the
/// way a failed disk stays failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFault {
    /// Every `append_batch` fails with an I/O error.
    AppendFails,
    /// Every `flush` fails with an I/O error.
    FlushFails,
}

/// A cloneable handle to one shared in-memory store: the test keeps a clone to inspect and
/// damage the store while the journal's writer owns another.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    visible: BTreeMap<Seq, Vec<u8>>,
    durable: BTreeMap<Seq, Vec<u8>>,
    unflushed: Vec<Op>,
    faults: Vec<StoreFault>,
    flush_count: u64,
    flush_delay: Duration,
}

#[derive(Debug)]
enum Op {
    Insert(Seq, Vec<u8>),
    RemoveThrough(Seq),
    RemoveAfter(Seq),
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// What would be left after a crash right now: a new, independent store holding only
    /// the flushed records.
    pub fn durable_image(&self) -> MemoryStore {
        let durable = self.lock().durable.clone();
        let inner = Inner {
            visible: durable.clone(),
            durable,
            ..Inner::default()
        };
        MemoryStore {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    /// Makes every later append or flush (per `fault`) fail.
    pub fn inject(&self, fault: StoreFault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Makes each flush take at least `delay`, like a slow disk.
    pub fn set_flush_delay(&self, delay: Duration) {
        self.lock().flush_delay = delay;
    }

    /// Flips the lowest bit of byte `index` of record `seq`, on the "disk" and in what
    /// readers see. Returns false if there is no such record or byte.
    pub fn flip_bit(&self, seq: Seq, index: usize) -> bool {
        self.damage(seq, |value| match value.get_mut(index) {
            Some(byte) => {
                *byte ^= 1;
                true
            }
            None => false,
        })
    }

    /// Cuts record `seq` to its first `len_bytes` bytes, as a write that stopped half way.
    pub fn cut_value(&self, seq: Seq, len_bytes: usize) -> bool {
        self.damage(seq, |value| {
            value.truncate(len_bytes);
            true
        })
    }

    /// Stores `value` under `seq` as if it had been flushed, bypassing the journal.
    pub fn put_raw(&self, seq: Seq, value: Vec<u8>) {
        let mut inner = self.lock();
        inner.visible.insert(seq, value.clone());
        inner.durable.insert(seq, value);
    }

    /// Deletes record `seq` as if the deletion had been flushed, bypassing the journal.
    pub fn delete_raw(&self, seq: Seq) {
        let mut inner = self.lock();
        inner.visible.remove(&seq);
        inner.durable.remove(&seq);
    }

    /// The value of record `seq` as readers see it.
    pub fn get(&self, seq: Seq) -> Option<Vec<u8>> {
        self.lock().visible.get(&seq).cloned()
    }

    /// The number of records readers see.
    pub fn len(&self) -> usize {
        self.lock().visible.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of successful flushes so far.
    pub fn flush_count(&self) -> u64 {
        self.lock().flush_count
    }

    fn damage(&self, seq: Seq, mut change: impl FnMut(&mut Vec<u8>) -> bool) -> bool {
        let mut inner = self.lock();
        let mut changed = false;
        if let Some(value) = inner.visible.get_mut(&seq) {
            changed |= change(value);
        }
        if let Some(value) = inner.durable.get_mut(&seq) {
            changed |= change(value);
        }
        changed
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn fail_if(&self, fault: StoreFault, what: &str) -> Result<(), JournalError> {
        if self.faults.contains(&fault) {
            return Err(JournalError::Store(format!(
                "memory store: injected {what} failure"
            )));
        }
        Ok(())
    }

    fn record(&mut self, op: Op) {
        apply(&mut self.visible, &op);
        self.unflushed.push(op);
    }
}

fn apply(map: &mut BTreeMap<Seq, Vec<u8>>, op: &Op) -> u64 {
    let before = map.len();
    match op {
        Op::Insert(seq, value) => {
            map.insert(*seq, value.clone());
        }
        Op::RemoveThrough(seq) => {
            let kept = match seq.checked_add(1) {
                Some(from) => map.split_off(&from),
                None => BTreeMap::new(),
            };
            *map = kept;
        }
        Op::RemoveAfter(seq) => {
            if let Some(from) = seq.checked_add(1) {
                map.split_off(&from);
            }
        }
    }
    before.abs_diff(map.len()) as u64
}

impl EventStore for MemoryStore {
    fn append_batch(&mut self, records: &[EncodedRecord]) -> Result<(), JournalError> {
        let mut inner = self.lock();
        inner.fail_if(StoreFault::AppendFails, "append")?;
        for record in records {
            inner.record(Op::Insert(record.seq, record.value.clone()));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), JournalError> {
        let delay = self.lock().flush_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut inner = self.lock();
        inner.fail_if(StoreFault::FlushFails, "flush")?;
        let ops = std::mem::take(&mut inner.unflushed);
        for op in &ops {
            apply(&mut inner.durable, op);
        }
        inner.flush_count += 1;
        Ok(())
    }

    fn iter_from(&self, from: Seq) -> StoreIter<'_> {
        let records: Vec<_> = self
            .lock()
            .visible
            .range(from..)
            .map(|(seq, value)| Ok((*seq, value.clone())))
            .collect();
        Box::new(records.into_iter())
    }

    fn remove_through(&mut self, seq: Seq) -> Result<u64, JournalError> {
        let mut inner = self.lock();
        inner.fail_if(StoreFault::AppendFails, "remove")?;
        let op = Op::RemoveThrough(seq);
        let removed = apply(&mut inner.visible, &op);
        inner.unflushed.push(op);
        Ok(removed)
    }

    fn remove_after(&mut self, seq: Seq) -> Result<u64, JournalError> {
        let mut inner = self.lock();
        inner.fail_if(StoreFault::AppendFails, "remove")?;
        let op = Op::RemoveAfter(seq);
        let removed = apply(&mut inner.visible, &op);
        inner.unflushed.push(op);
        Ok(removed)
    }

    fn first_seq(&self) -> Result<Option<Seq>, JournalError> {
        Ok(self.lock().visible.keys().next().copied())
    }

    fn last_seq(&self) -> Result<Option<Seq>, JournalError> {
        Ok(self.lock().visible.keys().next_back().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: Seq) -> EncodedRecord {
        EncodedRecord {
            seq,
            value: vec![seq as u8],
        }
    }

    #[test]
    fn only_flushed_writes_survive_a_crash() {
        let mut store = MemoryStore::new();
        store.append_batch(&[record(1), record(2)]).unwrap();
        store.flush().unwrap();
        store.append_batch(&[record(3)]).unwrap();
        store.remove_through(1).unwrap();
        assert_eq!(store.len(), 2);
        let image = store.durable_image();
        assert_eq!(image.first_seq().unwrap(), Some(1));
        assert_eq!(image.last_seq().unwrap(), Some(2));
        store.flush().unwrap();
        let image = store.durable_image();
        assert_eq!(image.first_seq().unwrap(), Some(2));
        assert_eq!(image.last_seq().unwrap(), Some(3));
    }

    #[test]
    fn removals_count_and_bound_correctly() {
        let mut store = MemoryStore::new();
        store
            .append_batch(&(1..=10).map(record).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(store.remove_through(3).unwrap(), 3);
        assert_eq!(store.remove_after(8).unwrap(), 2);
        assert_eq!(store.remove_after(u64::MAX).unwrap(), 0);
        let seqs: Vec<Seq> = store.iter_from(0).map(|r| r.unwrap().0).collect();
        assert_eq!(seqs, vec![4, 5, 6, 7, 8]);
    }

    #[test]
    fn injected_faults_fail_and_clear() {
        let mut store = MemoryStore::new();
        store.inject(StoreFault::FlushFails);
        store.append_batch(&[record(1)]).unwrap();
        assert!(store.flush().is_err());
        store.clear_faults();
        store.inject(StoreFault::AppendFails);
        assert!(store.append_batch(&[record(2)]).is_err());
        store.clear_faults();
        store.flush().unwrap();
        assert_eq!(store.durable_image().len(), 1);
    }
}
