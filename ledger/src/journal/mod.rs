//! The durable journal: every state change as an immutable event in sled, group-committed by
//! one writer thread, plus snapshots and recovery.
//!
//! The journal is payload-agnostic: it stores opaque event bytes. The engine encodes its
//! events (ledger money movements, management changes) and decodes them on replay.
//!
//! # Flow
//!
//! ```text
//! let mut recovery = Journal::recover(JournalConfig::new(dir))?; // sled store
//! if let Some(snapshot) = recovery.take_snapshot() { /* load snapshot.bytes */ }
//! for record in recovery.tail() { let record = record?; /* apply record.payload() */ }
//! let journal = recovery.start()?;           // the writer thread starts here
//! let seq = journal.append(&event_bytes)?;   // never waits for the disk
//! journal.wait_durable(seq)?;                 // or on_durable(..) from async code
//! journal.write_snapshot(seq, &state)?;       // now and then, bounds recovery time
//! ```
//!
//! # Records and sequence numbers
//!
//! One global sequence, starting at 1, with no gaps: recovery checks contiguity, and a
//! single counter keeps "replay in seq order" equal to "replay in the order decisions were
//! made". Key = seq big-endian; value = version | CRC32C | payload (see [`record`]).
//!
//! Several producers (one per partition) share the journal. Assigning the seq and putting
//! the event on the writer's queue happen under one mutex, so the queue (and so the store)
//! is always in seq order. The critical section is a counter increment, a CRC of a small
//! payload and a channel push; per-partition journals would avoid it but would need a merge
//! order on replay, which is exactly what one sequence gives for free.
//!
//! # Group commit
//!
//! The writer takes the first queued event, then whatever else is already queued, up to
//! `batch_max` events or `batch_window` of collecting; writes them to the store in order;
//! flushes once; publishes the durable watermark ([`Journal::durable_seq`]); wakes
//! [`Journal::wait_durable`] callers and runs [`Journal::on_durable`] callbacks. In sync
//! mode it never sleeps waiting for more events: while one flush runs, the next batch piles
//! up in the queue, so batches grow with load by themselves and a lone event is flushed at
//! once. In async mode, where nobody waits, it takes the queue at most once per
//! `ASYNC_WRITE_INTERVAL` (1 ms) instead of waking for every record.
//! A full queue (`queue_capacity`) blocks `append`: that is the back-pressure.
//!
//! # Durability modes and the loss window
//!
//! - [`Durability::Sync`] (default): every batch is flushed before its events are reported
//!   durable. An event that [`Journal::wait_durable`] (or a callback) reported durable
//!   survives a crash or power cut. Nothing reported durable is ever lost.
//! - [`Durability::Async { max_loss_ms }`](Durability::Async): batches are written to sled at
//!   once but flushed only when the oldest unflushed batch is `max_loss_ms` old, when
//!   [`JOURNAL_UNFLUSHED_MAX`] events are unflushed, on [`Journal::sync`], on a snapshot, or
//!   at shutdown. Callers do not wait; the watermark still tells what is durable.
//!   On a crash (process or power), the events that may be lost are those not yet flushed;
//!   sled keeps unflushed writes in its own in-process buffers, so a killed process can lose
//!   them as well as a power cut can. That is: the events written to sled in the last
//!   `max_loss_ms` plus the duration of one flush (and never more than
//!   `JOURNAL_UNFLUSHED_MAX` + `batch_max` of them), plus whatever was still queued for the
//!   writer (at most `queue_capacity`; the queue only fills when the disk cannot keep up).
//!   Everything at or below [`Journal::durable_seq`] survives. The events lost always form a
//!   suffix: recovery never sees event n+1 without event n.
//!
//! # Snapshots and truncation
//!
//! [`Journal::write_snapshot`] waits until its seq is durable, writes the snapshot file
//! (temp file, fsync, rename, fsync directory; see [`snapshot`]), keeps the newest
//! [`SNAPSHOTS_KEPT`] files, and has the writer remove journal records up to the *older* of
//! the kept snapshots, in chunks of [`TRUNCATE_CHUNK_RECORDS`] between batches. Keeping the
//! journal back to the older snapshot costs one snapshot interval of extra records and buys
//! a fallback: if the newest snapshot turns out damaged, recovery uses the older one and
//! replays more, with a warning, and moves the damaged file aside as
//! `snapshot-<seq>.bin.corrupt`. If no usable snapshot plus journal covers the damaged
//! snapshot's events, recovery fails loudly with [`JournalError::SnapshotCorrupt`].
//!
//! # Recovery
//!
//! [`Journal::recover`] (or [`Recovery::open`] with any store):
//! 1. removes temp files of a snapshot write that a crash interrupted;
//! 2. cuts a torn tail: if the last records fail their checksum (and at most
//!    [`TORN_TAIL_MAX_RECORDS`] of them, what one interrupted write can damage), they are
//!    removed with a warning and reported in [`RecoveryReport::torn_tail`]. They were never
//!    reported durable. A longer run of damage is not a torn write and is an error;
//! 3. loads the newest valid snapshot (see above);
//! 4. [`Recovery::tail`] yields every record after the snapshot in order, checking
//!    contiguity ([`JournalError::Gap`]) and each record ([`JournalError::Corrupt`] names
//!    the seq and the problem). A bad record in the middle stops recovery: replaying past
//!    it would rebuild a wrong ledger;
//! 5. [`Recovery::start`] resumes the sequence after the last good record.
//!
//! # Data directory
//!
//! ```text
//! <data_dir>/journal/                              sled database (tree "journal")
//! <data_dir>/snapshot-<seq, 20 digits>.bin          the newest SNAPSHOTS_KEPT snapshots
//! <data_dir>/snapshot-<seq, 20 digits>.bin.tmp      a snapshot being written (removed on open)
//! <data_dir>/snapshot-<seq, 20 digits>.bin.corrupt  a damaged snapshot set aside by recovery
//! ```
//!
//! # Testing
//!
//! [`MemoryStore`] stands in for sled and can lose unflushed writes, damage records and fail
//! on demand. The crash test (`ledger/tests/crash_journal.rs`) kills a child process that
//! appends under load with SIGKILL at random points and checks every event it reported
//! durable. It runs 20 kills by default; for a longer run:
//!
//! ```text
//! CARDCORE_CRASH_ITERATIONS=500 cargo test -p cardcore-ledger --test crash_journal
//! ```
//! (`CARDCORE_CRASH_SEED=<u64>` picks another sequence of kill points.)

use std::path::PathBuf;
use std::time::Duration;

mod error;
mod handle;
mod memory_store;
mod metrics;
pub mod record;
mod recovery;
mod sled_store;
pub mod snapshot;
mod store;
mod writer;

pub use error::JournalError;
pub use handle::{DurableCallback, DurableNotice, Journal};
pub use memory_store::{MemoryStore, StoreFault};
pub use metrics::{
    flush_bucket_bound_us, MetricsSnapshot, FLUSH_HISTOGRAM_BUCKETS, FLUSH_HISTOGRAM_FIRST_BOUND_US,
};
pub use record::{RecordProblem, RECORD_PAYLOAD_MAX_BYTES};
pub use recovery::{Record, Recovery, RecoveryReport, SkippedSnapshot, Tail, TornTail};
pub use sled_store::{SledStore, JOURNAL_TREE, SLED_LOCK_WAIT};
pub use snapshot::{Snapshot, SNAPSHOTS_KEPT};
pub use store::{EncodedRecord, EventStore, StoreIter, StoredRecord};

/// A journal sequence number. The first event is 1; 0 means "nothing".
pub type Seq = u64;

/// The most events the writer applies and flushes as one batch.
pub const JOURNAL_BATCH_MAX: usize = 4096;
/// The longest the writer keeps collecting one batch before writing it.
pub const JOURNAL_BATCH_WINDOW: Duration = Duration::from_millis(1);
/// The upper bound for a configured batch window: longer would only add latency.
pub const JOURNAL_BATCH_WINDOW_MAX: Duration = Duration::from_millis(100);
/// Events queued between producers and the writer; a full queue blocks producers.
pub const JOURNAL_QUEUE_CAPACITY: usize = 65_536;
/// In async mode, the most events written but not yet flushed before the writer flushes
/// regardless of the time bound.
pub const JOURNAL_UNFLUSHED_MAX: usize = 65_536;
/// The most trailing damaged records recovery treats as a torn tail: everything that can be
/// written but unflushed at once (see the async bound above) and no more.
pub const TORN_TAIL_MAX_RECORDS: u64 = (JOURNAL_UNFLUSHED_MAX + JOURNAL_BATCH_MAX) as u64;
/// Journal records removed per step of prefix truncation, so truncation never holds up a
/// batch for long.
pub const TRUNCATE_CHUNK_RECORDS: u64 = 4096;
/// The upper bound for `Durability::Async { max_loss_ms }`.
pub const ASYNC_MAX_LOSS_MS_MAX: u64 = 60_000;
/// The default sled page cache.
pub const JOURNAL_CACHE_CAPACITY_BYTES: u64 = 64 << 20;
/// The smallest sled page cache accepted.
pub const JOURNAL_CACHE_CAPACITY_MIN_BYTES: u64 = 1 << 20;

const _: () = assert!(JOURNAL_BATCH_MAX <= JOURNAL_UNFLUSHED_MAX);
const _: () = assert!(JOURNAL_BATCH_MAX <= JOURNAL_QUEUE_CAPACITY);
const _: () = assert!(TRUNCATE_CHUNK_RECORDS > 0);
const _: () = assert!(TORN_TAIL_MAX_RECORDS >= JOURNAL_BATCH_MAX as u64);

/// When an event counts as durable; see the module docs for the loss window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Each batch is flushed before its events are reported durable.
    #[default]
    Sync,
    /// Batches are flushed at least every `max_loss_ms`; callers do not wait.
    Async { max_loss_ms: u64 },
}

/// How to open a journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// Holds the sled database (`journal/`) and the snapshot files.
    pub data_dir: PathBuf,
    pub durability: Durability,
    /// The most events per batch (1..=`JOURNAL_BATCH_MAX`).
    pub batch_max: usize,
    /// The longest the writer collects one batch (at most `JOURNAL_BATCH_WINDOW_MAX`).
    pub batch_window: Duration,
    /// Events that may wait for the writer (1..=`JOURNAL_QUEUE_CAPACITY`).
    pub queue_capacity: usize,
    /// The sled page cache.
    pub cache_capacity_bytes: u64,
}

impl JournalConfig {
    /// The defaults: sync durability, the named bounds above.
    pub fn new(data_dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            data_dir: data_dir.into(),
            durability: Durability::Sync,
            batch_max: JOURNAL_BATCH_MAX,
            batch_window: JOURNAL_BATCH_WINDOW,
            queue_capacity: JOURNAL_QUEUE_CAPACITY,
            cache_capacity_bytes: JOURNAL_CACHE_CAPACITY_BYTES,
        }
    }

    /// Where the sled database lives.
    pub fn sled_dir(&self) -> PathBuf {
        self.data_dir.join("journal")
    }

    /// Checks every field against its bound.
    pub fn validate(&self) -> Result<(), JournalError> {
        let invalid = |field, problem: String| Err(JournalError::InvalidConfig { field, problem });
        if !(1..=JOURNAL_BATCH_MAX).contains(&self.batch_max) {
            return invalid("batch_max", format!("must be 1..={JOURNAL_BATCH_MAX}"));
        }
        if self.batch_window > JOURNAL_BATCH_WINDOW_MAX {
            return invalid(
                "batch_window",
                format!("must be at most {JOURNAL_BATCH_WINDOW_MAX:?}"),
            );
        }
        if !(1..=JOURNAL_QUEUE_CAPACITY).contains(&self.queue_capacity) {
            return invalid(
                "queue_capacity",
                format!("must be 1..={JOURNAL_QUEUE_CAPACITY}"),
            );
        }
        if self.cache_capacity_bytes < JOURNAL_CACHE_CAPACITY_MIN_BYTES {
            let problem = format!("must be at least {JOURNAL_CACHE_CAPACITY_MIN_BYTES}");
            return invalid("cache_capacity_bytes", problem);
        }
        if let Durability::Async { max_loss_ms } = self.durability {
            if !(1..=ASYNC_MAX_LOSS_MS_MAX).contains(&max_loss_ms) {
                let problem = format!("must be 1..={ASYNC_MAX_LOSS_MS_MAX}");
                return invalid("durability.max_loss_ms", problem);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_bound_is_checked() {
        let good = JournalConfig::new("/tmp/x");
        good.validate().unwrap();
        type Change = Box<dyn Fn(&mut JournalConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            ("batch_max", Box::new(|c| c.batch_max = 0)),
            (
                "batch_max",
                Box::new(|c| c.batch_max = JOURNAL_BATCH_MAX + 1),
            ),
            (
                "batch_window",
                Box::new(|c| c.batch_window = Duration::from_secs(1)),
            ),
            ("queue_capacity", Box::new(|c| c.queue_capacity = 0)),
            (
                "cache_capacity_bytes",
                Box::new(|c| c.cache_capacity_bytes = 1),
            ),
            (
                "durability.max_loss_ms",
                Box::new(|c| c.durability = Durability::Async { max_loss_ms: 0 }),
            ),
            (
                "durability.max_loss_ms",
                Box::new(|c| {
                    c.durability = Durability::Async {
                        max_loss_ms: 3_600_000,
                    }
                }),
            ),
        ];
        for (field, change) in cases {
            let mut config = good.clone();
            change(&mut config);
            match config.validate() {
                Err(JournalError::InvalidConfig { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{field}: expected InvalidConfig, got {other:?}"),
            }
        }
    }
}
