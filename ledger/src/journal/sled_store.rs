//! The production store: one dedicated tree in a sled database.

use std::path::Path;
use std::time::{Duration, Instant};

use super::record::{seq_from_key, seq_key};
use super::store::{EncodedRecord, EventStore, StoreIter, StoredRecord};
use super::{JournalError, Seq};

/// The sled tree that holds the journal. A dedicated tree keeps the journal's key space
/// apart from anything else that may share the database later.
pub const JOURNAL_TREE: &str = "journal";

/// Keys removed per sled batch when truncating, so one removal never builds an unbounded
/// batch in memory.
const REMOVE_BATCH_MAX: usize = 4096;
/// How long `open` waits for sled's directory lock. sled releases the lock from its
/// background threads a moment after the last handle is dropped, so a reopen right after a
/// close (a restart in the same process, a recovery check followed by a new process) can
/// find it still held. A second live open still fails, after this wait.
pub const SLED_LOCK_WAIT: Duration = Duration::from_secs(2);
const SLED_LOCK_RETRY_PAUSE: Duration = Duration::from_millis(5);

/// The journal's records in sled.
///
/// Configured so that only our `flush()` makes data durable (`flush_every_ms(None)`: sled's
/// background flusher would otherwise fsync on its own schedule and blur the durability
/// contract), in `HighThroughput` mode (the journal is append-mostly; space is reclaimed by
/// prefix truncation), with a bounded page cache.
#[derive(Debug)]
pub struct SledStore {
    // The database handle is kept so the tree's database stays open as long as the store.
    _db: sled::Db,
    tree: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the sled database in `dir`.
    pub fn open(dir: &Path, cache_capacity_bytes: u64) -> Result<SledStore, JournalError> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput);
        let started = Instant::now();
        let db = loop {
            match config.open() {
                Err(error) if is_lock_busy(&error) && started.elapsed() < SLED_LOCK_WAIT => {
                    std::thread::sleep(SLED_LOCK_RETRY_PAUSE);
                }
                other => break other?,
            }
        };
        let tree = db.open_tree(JOURNAL_TREE)?;
        Ok(SledStore { _db: db, tree })
    }

    fn remove_keys(&self, keys: sled::Iter) -> Result<u64, JournalError> {
        let mut removed = 0_u64;
        let mut batch = sled::Batch::default();
        let mut batch_len = 0_usize;
        for key in keys.keys() {
            batch.remove(key?);
            batch_len += 1;
            if batch_len == REMOVE_BATCH_MAX {
                self.tree.apply_batch(std::mem::take(&mut batch))?;
                removed += batch_len as u64;
                batch_len = 0;
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(removed + batch_len as u64)
    }
}

impl EventStore for SledStore {
    fn append_batch(&mut self, records: &[EncodedRecord]) -> Result<(), JournalError> {
        // Plain inserts, not a `sled::Batch`: sled recovers single-key writes as a prefix
        // in write order (its own crash tests check exactly that), which is what the trait
        // asks for, while sealing a batch costs about 40 µs of CPU per call on this machine
        // against 5 µs per insert (docs/performance.md, "Journal"). With one record per
        // partition batch under light load, that seal was most of the journal's cost.
        for record in records {
            self.tree
                .insert(&seq_key(record.seq)[..], record.value.as_slice())?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), JournalError> {
        self.tree.flush()?;
        Ok(())
    }

    fn iter_from(&self, from: Seq) -> StoreIter<'_> {
        Box::new(self.tree.range(seq_key(from)..).map(stored_record))
    }

    fn remove_through(&mut self, seq: Seq) -> Result<u64, JournalError> {
        self.remove_keys(self.tree.range(..=seq_key(seq)))
    }

    fn remove_after(&mut self, seq: Seq) -> Result<u64, JournalError> {
        match seq.checked_add(1) {
            Some(from) => self.remove_keys(self.tree.range(seq_key(from)..)),
            None => Ok(0),
        }
    }

    fn first_seq(&self) -> Result<Option<Seq>, JournalError> {
        self.tree
            .first()?
            .map(|(key, _)| key_to_seq(&key))
            .transpose()
    }

    fn last_seq(&self) -> Result<Option<Seq>, JournalError> {
        self.tree
            .last()?
            .map(|(key, _)| key_to_seq(&key))
            .transpose()
    }
}

/// sled 0.34.7 (pinned) reports a held directory lock as an `Other` I/O error with this
/// message, not as `WouldBlock`.
fn is_lock_busy(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

fn stored_record(
    entry: Result<(sled::IVec, sled::IVec), sled::Error>,
) -> Result<StoredRecord, JournalError> {
    let (key, value) = entry?;
    Ok((key_to_seq(&key)?, value.to_vec()))
}

fn key_to_seq(key: &[u8]) -> Result<Seq, JournalError> {
    seq_from_key(key).ok_or_else(|| {
        JournalError::StoreCorrupt(format!(
            "journal tree holds a {}-byte key; every key is an 8-byte sequence number",
            key.len()
        ))
    })
}
