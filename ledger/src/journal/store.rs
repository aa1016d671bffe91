//! The storage seam: what the journal needs from the thing that keeps its records.
//!
//! The journal encodes and checks records itself; a store only keeps opaque values under
//! u64 keys, in key order, and makes them durable on `flush`. That keeps a test store
//! ([`MemoryStore`](super::MemoryStore)) and a later replicated store as small as sled's.

use super::{JournalError, Seq};

/// One encoded record on its way to the store: the value is already version | CRC | payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRecord {
    pub seq: Seq,
    pub value: Vec<u8>,
}

/// A (seq, value) pair read back from the store, not yet checked.
pub type StoredRecord = (Seq, Vec<u8>);

/// Records read back from the store, in ascending seq order.
pub type StoreIter<'a> = Box<dyn Iterator<Item = Result<StoredRecord, JournalError>> + 'a>;

/// Where the journal keeps its records.
///
/// Owned by exactly one thread at a time (the writer, or recovery before the writer
/// starts), hence `Send` and `&mut self` for writes.
pub trait EventStore: Send + 'static {
    /// Writes the records, which arrive in ascending, contiguous seq order. The write need
    /// not be durable before [`flush`](EventStore::flush), and one call need not be atomic,
    /// but writes must survive a crash in order: afterwards the store holds every record up
    /// to some seq and none after it (a prefix), or the damage is confined to records that
    /// then fail their checksum (a torn tail). Each record is a whole unit of state change,
    /// so a prefix of a call is the state of a crash a moment earlier; nothing was reported
    /// durable before the flush that follows the call.
    fn append_batch(&mut self, records: &[EncodedRecord]) -> Result<(), JournalError>;

    /// Makes every earlier write durable (fsync or its equivalent).
    fn flush(&mut self) -> Result<(), JournalError>;

    /// Records with seq >= `from`, in ascending seq order.
    fn iter_from(&self, from: Seq) -> StoreIter<'_>;

    /// Removes every record with seq <= `seq` (prefix truncation after a snapshot).
    /// Returns how many were removed. Durable at the next flush.
    fn remove_through(&mut self, seq: Seq) -> Result<u64, JournalError>;

    /// Removes every record with seq > `seq` (cutting a torn tail during recovery).
    /// Returns how many were removed. Durable at the next flush.
    fn remove_after(&mut self, seq: Seq) -> Result<u64, JournalError>;

    /// The smallest seq held, if any.
    fn first_seq(&self) -> Result<Option<Seq>, JournalError>;

    /// The largest seq held, if any.
    fn last_seq(&self) -> Result<Option<Seq>, JournalError>;
}
