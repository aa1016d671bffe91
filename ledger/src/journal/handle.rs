//! The running journal: what producers, waiters and the snapshot path call.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crossbeam::channel::{self, Receiver, Sender};

use super::metrics::MetricsSnapshot;
use super::record::{self, RECORD_PAYLOAD_MAX_BYTES};
use super::snapshot::{prune_snapshots, write_snapshot_file, SNAPSHOTS_KEPT};
use super::store::{EncodedRecord, EventStore};
use super::writer::{self, Msg, Shared, Status, WriterSetup, BUFFER_POOL_CAPACITY};
use super::{Durability, JournalConfig, JournalError, Seq};

/// What the writer tells [`Journal::on_durable`] callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurableNotice {
    /// Every event up to and including this seq is durable.
    Durable(Seq),
    /// The writer stopped after an error ([`Journal::fatal_error`] says which); nothing more
    /// will become durable.
    Failed,
    /// The journal was shut down cleanly; everything appended is durable.
    Closed,
}

/// A callback run by the writer thread after each flush. It must be quick, must not panic
/// and must not call the journal's blocking methods (it runs on the thread they wait for).
pub type DurableCallback = Box<dyn Fn(DurableNotice) + Send + Sync>;

/// The durable journal, shared by every partition (`Arc<Journal>`). Created by
/// [`Recovery::start`](super::Recovery::start).
pub struct Journal {
    producer: Mutex<Option<Producer>>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    snapshots: Mutex<SnapshotState>,
    durability: Durability,
}

/// The seq counter and the queue's sending end, kept together under one mutex so that
/// queue order is seq order.
struct Producer {
    tx: Sender<Msg>,
    next_seq: Seq,
    pool_rx: Receiver<Vec<u8>>,
}

struct SnapshotState {
    dir: PathBuf,
    newest_seq: Seq,
}

/// Where recovery left things, for starting the writer.
#[derive(Debug)]
pub(crate) struct StartPoint {
    pub(crate) next_seq: Seq,
    pub(crate) truncated_through_seq: Seq,
    pub(crate) truncate_target_seq: Seq,
    pub(crate) newest_snapshot_seq: Seq,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("durability", &self.durability)
            .field("durable_seq", &self.durable_seq())
            .field("last_appended_seq", &self.last_appended_seq())
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens the journal in `config.data_dir` with the sled store and recovers it.
    pub fn recover(
        config: JournalConfig,
    ) -> Result<super::Recovery<super::SledStore>, JournalError> {
        config.validate()?;
        let store = super::SledStore::open(&config.sled_dir(), config.cache_capacity_bytes)?;
        super::Recovery::open(config, store)
    }

    /// Appends one event and returns its seq. Never waits for the disk; blocks only while the
    /// writer's queue is full.
    pub fn append(&self, payload: &[u8]) -> Result<Seq, JournalError> {
        if payload.len() > RECORD_PAYLOAD_MAX_BYTES {
            let max_bytes = RECORD_PAYLOAD_MAX_BYTES;
            return Err(JournalError::PayloadTooLarge {
                len_bytes: payload.len(),
                max_bytes,
            });
        }
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(self.stopped_error());
        }
        let mut guard = self.lock_producer();
        let producer = guard.as_mut().ok_or_else(|| self.stopped_error())?;
        let seq = producer.next_seq;
        let mut value = producer.pool_rx.try_recv().unwrap_or_default();
        record::encode_into(seq, payload, &mut value);
        let record = EncodedRecord { seq, value };
        producer
            .tx
            .send(Msg::Record(record))
            .map_err(|_| self.stopped_error())?;
        producer.next_seq = seq + 1;
        self.shared.last_appended_seq.store(seq, Ordering::Release);
        Ok(seq)
    }

    /// Every event up to this seq is durable (0: none since the journal was created).
    pub fn durable_seq(&self) -> Seq {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// The seq of the last event appended.
    pub fn last_appended_seq(&self) -> Seq {
        self.shared.last_appended_seq.load(Ordering::Acquire)
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Blocks until `seq` is durable. Errors if the writer failed or was shut down first,
    /// or if `seq` was never appended (that wait would never end).
    pub fn wait_durable(&self, seq: Seq) -> Result<(), JournalError> {
        let last_appended = self.last_appended_seq();
        if seq > last_appended {
            return Err(JournalError::NotAppended { seq, last_appended });
        }
        let mut status = self.shared.lock_status();
        loop {
            if self.durable_seq() >= seq {
                return Ok(());
            }
            match &*status {
                Status::Running => {}
                Status::Failed(reason) => {
                    return Err(JournalError::WriterFailed {
                        reason: reason.clone(),
                    })
                }
                Status::Closed => return Err(JournalError::Closed),
            }
            status = self
                .shared
                .changed
                .wait(status)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Flushes everything appended so far (even in async mode), waits, and returns the seq
    /// that is now durable.
    pub fn sync(&self) -> Result<Seq, JournalError> {
        let seq = {
            let mut guard = self.lock_producer();
            let producer = guard.as_mut().ok_or_else(|| self.stopped_error())?;
            producer
                .tx
                .send(Msg::Flush)
                .map_err(|_| self.stopped_error())?;
            producer.next_seq - 1
        };
        self.wait_durable(seq)?;
        Ok(seq)
    }

    /// Registers a callback for every later [`DurableNotice`]. For async code: the server
    /// forwards these into its runtime (e.g. a watch channel).
    pub fn on_durable(&self, callback: DurableCallback) {
        let mut callbacks = self
            .shared
            .callbacks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        callbacks.push(callback);
    }

    /// Writes a snapshot of the state after event `seq`, then lets the writer truncate the
    /// journal up to the older kept snapshot. Waits until `seq` is durable first: a snapshot
    /// must never cover events the journal could still lose.
    pub fn write_snapshot(&self, seq: Seq, bytes: &[u8]) -> Result<PathBuf, JournalError> {
        let last_appended = self.last_appended_seq();
        if seq == 0 || seq > last_appended {
            return Err(JournalError::NotAppended { seq, last_appended });
        }
        let mut snapshots = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seq <= snapshots.newest_seq {
            return Err(JournalError::SnapshotNotNewer {
                seq,
                newest: snapshots.newest_seq,
            });
        }
        if self.durable_seq() < seq {
            self.send_control(Msg::Flush)?;
            self.wait_durable(seq)?;
        }
        let path = write_snapshot_file(&snapshots.dir, seq, bytes)?;
        snapshots.newest_seq = seq;
        self.shared.metrics.record_snapshot();
        let kept = prune_snapshots(&snapshots.dir, SNAPSHOTS_KEPT)?;
        assert_eq!(kept.last(), Some(&seq));
        if kept.len() == SNAPSHOTS_KEPT {
            self.send_control(Msg::TruncateThrough(kept[0]))?;
        }
        Ok(path)
    }

    /// The writer's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// Events waiting for the writer.
    pub fn queue_len(&self) -> usize {
        self.lock_producer().as_ref().map_or(0, |p| p.tx.len())
    }

    /// Why the writer stopped, if it failed.
    pub fn fatal_error(&self) -> Option<String> {
        match &*self.shared.lock_status() {
            Status::Failed(reason) => Some(reason.clone()),
            Status::Running | Status::Closed => None,
        }
    }

    /// Stops accepting appends, lets the writer drain the queue and flush, and joins it.
    /// Safe to call more than once; `Drop` calls it too.
    pub fn shutdown(&self) -> Result<(), JournalError> {
        drop(self.lock_producer().take());
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                let reason = "journal writer thread panicked".to_string();
                return Err(JournalError::WriterFailed { reason });
            }
        }
        match &*self.shared.lock_status() {
            Status::Failed(reason) => Err(JournalError::WriterFailed {
                reason: reason.clone(),
            }),
            Status::Running | Status::Closed => Ok(()),
        }
    }

    pub(crate) fn start<S: EventStore>(
        store: S,
        config: &JournalConfig,
        start: StartPoint,
    ) -> Result<Journal, JournalError> {
        let last_written_seq = start.next_seq - 1;
        let shared = Arc::new(Shared::new(last_written_seq));
        let (tx, rx) = channel::bounded(config.queue_capacity);
        let (pool_tx, pool_rx) = channel::bounded(BUFFER_POOL_CAPACITY);
        let setup = WriterSetup {
            store,
            rx,
            pool_tx,
            shared: Arc::clone(&shared),
            durability: config.durability,
            batch_max: config.batch_max,
            batch_window: config.batch_window,
            last_written_seq,
            truncated_through_seq: start.truncated_through_seq,
            truncate_target_seq: start.truncate_target_seq,
        };
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer::run(setup))
            .map_err(|e| JournalError::io("spawn writer thread for", &config.data_dir, e))?;
        let producer = Producer {
            tx,
            next_seq: start.next_seq,
            pool_rx,
        };
        let snapshots = SnapshotState {
            dir: config.data_dir.clone(),
            newest_seq: start.newest_snapshot_seq,
        };
        Ok(Journal {
            producer: Mutex::new(Some(producer)),
            shared,
            writer: Mutex::new(Some(handle)),
            snapshots: Mutex::new(snapshots),
            durability: config.durability,
        })
    }

    fn send_control(&self, msg: Msg) -> Result<(), JournalError> {
        let guard = self.lock_producer();
        let producer = guard.as_ref().ok_or_else(|| self.stopped_error())?;
        producer.tx.send(msg).map_err(|_| self.stopped_error())
    }

    fn lock_producer(&self) -> MutexGuard<'_, Option<Producer>> {
        self.producer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error for "the writer is gone": its failure if it failed, else `Closed`.
    fn stopped_error(&self) -> JournalError {
        match self.fatal_error() {
            Some(reason) => JournalError::WriterFailed { reason },
            None => JournalError::Closed,
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::error!(%error, "journal shutdown on drop");
        }
    }
}
