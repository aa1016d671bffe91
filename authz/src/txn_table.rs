//! The partition's transactions, by id, in a vector.
//!
//! A partition hands out transaction ids in order from its first one
//! (`partition × TXN_ID_STRIDE + 1`), records every id it hands out, and forgets none, so a
//! transaction's place is its id minus the first: finding one is an index, not a hash, and
//! recording one is a push.

use cardcore_core::TxnId;

use crate::state::TxnRecord;

/// Transactions by id; see the [module documentation](self).
#[derive(Debug)]
pub struct TxnTable {
    first: u64,
    records: Vec<TxnRecord>,
}

/// A record that would leave a hole in the table: its id is past the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotNext {
    pub id: TxnId,
    pub next: TxnId,
}

impl TxnTable {
    /// A table for ids from `first` on, with room for `capacity` records, written to once
    /// so that recording one takes no page fault (see [`TxnRecord::placeholder`]).
    pub fn with_capacity(first: u64, capacity: usize) -> TxnTable {
        let mut records = Vec::with_capacity(capacity);
        records.resize(capacity, TxnRecord::placeholder());
        // Truncating keeps the memory, now mapped.
        records.clear();
        TxnTable { first, records }
    }

    fn place(&self, id: TxnId) -> Option<usize> {
        usize::try_from(id.0.checked_sub(self.first)?).ok()
    }

    pub fn get(&self, id: &TxnId) -> Option<&TxnRecord> {
        self.records.get(self.place(*id)?)
    }

    /// Records a transaction: replaces the record with its id, or adds it when its id is the
    /// next one. Any other id is refused and changes nothing.
    pub fn insert(&mut self, record: TxnRecord) -> Result<(), NotNext> {
        let next = TxnId(self.first.saturating_add(self.records.len() as u64));
        match self.place(record.id) {
            Some(i) if i < self.records.len() => self.records[i] = record,
            Some(i) if i == self.records.len() => self.records.push(record),
            _ => {
                return Err(NotNext {
                    id: record.id,
                    next,
                })
            }
        }
        Ok(())
    }

    /// Every transaction, in id order.
    pub fn values(&self) -> std::slice::Iter<'_, TxnRecord> {
        self.records.iter()
    }

    pub fn clear(&mut self) {
        self.records.clear();
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
