//! The writer thread: the only code that writes to the store once the journal runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};

use super::handle::{DurableCallback, DurableNotice};
use super::metrics::Metrics;
use super::store::{EncodedRecord, EventStore};
use super::{Durability, JournalError, Seq, JOURNAL_UNFLUSHED_MAX, TRUNCATE_CHUNK_RECORDS};

/// Returned buffers kept for reuse by producers, so a steady stream of appends does not
/// allocate. Buffers larger than `RECYCLE_MAX_BYTES` are dropped instead of pinning memory.
pub(crate) const BUFFER_POOL_CAPACITY: usize = 8192;
const RECYCLE_MAX_BYTES: usize = 1024;
/// How many messages the writer takes from the queue between two looks at the clock.
const WINDOW_CHECK_EVERY: usize = 64;
/// In async mode, the writer takes the queue at most this often. Nobody waits for an async
/// write, so there is no reason to wake for each record: under light load that wake-up cost
/// more CPU than the write itself. The records waiting meanwhile are within the documented
/// loss window ("whatever was still queued for the writer").
pub(crate) const ASYNC_WRITE_INTERVAL: Duration = Duration::from_millis(1);

/// What producers send the writer.
#[derive(Debug)]
pub(crate) enum Msg {
    Record(EncodedRecord),
    /// Flush now even in async mode (for `sync()` and snapshots).
    Flush,
    /// Journal records up to this seq are covered by a kept snapshot and may go.
    TruncateThrough(Seq),
}

/// Where the writer stands, as seen by everyone else.
#[derive(Debug)]
pub(crate) enum Status {
    Running,
    Failed(String),
    Closed,
}

/// State shared between the writer and the journal handle.
pub(crate) struct Shared {
    pub(crate) durable_seq: AtomicU64,
    pub(crate) last_appended_seq: AtomicU64,
    /// Set once the writer has stopped, so appends fail fast instead of queueing events
    /// nobody will write. `status` says why.
    pub(crate) stopped: AtomicBool,
    pub(crate) status: Mutex<Status>,
    pub(crate) changed: Condvar,
    pub(crate) callbacks: RwLock<Vec<DurableCallback>>,
    pub(crate) metrics: Metrics,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("durable_seq", &self.durable_seq)
            .field("last_appended_seq", &self.last_appended_seq)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(durable_seq: Seq) -> Shared {
        Shared {
            durable_seq: AtomicU64::new(durable_seq),
            last_appended_seq: AtomicU64::new(durable_seq),
            stopped: AtomicBool::new(false),
            status: Mutex::new(Status::Running),
            changed: Condvar::new(),
            callbacks: RwLock::new(Vec::new()),
            metrics: Metrics::default(),
        }
    }

    pub(crate) fn lock_status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, seq: Seq) {
        let before = self.durable_seq.load(Ordering::Acquire);
        assert!(
            seq >= before,
            "durable watermark must not go back: {before} -> {seq}"
        );
        self.durable_seq.store(seq, Ordering::Release);
        // Taking the lock before notifying closes the gap between a waiter's check of the
        // watermark and its wait.
        drop(self.lock_status());
        self.changed.notify_all();
        self.notify(DurableNotice::Durable(seq));
    }

    pub(crate) fn finish(&self, outcome: Result<(), JournalError>) {
        let notice = {
            let mut status = self.lock_status();
            if !matches!(*status, Status::Running) {
                return;
            }
            self.stopped.store(true, Ordering::Release);
            match outcome {
                Ok(()) => {
                    *status = Status::Closed;
                    DurableNotice::Closed
                }
                Err(error) => {
                    tracing::error!(%error, "journal writer stopped");
                    *status = Status::Failed(error.to_string());
                    DurableNotice::Failed
                }
            }
        };
        self.changed.notify_all();
        self.notify(notice);
    }

    fn notify(&self, notice: DurableNotice) {
        let callbacks = self
            .callbacks
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for callback in callbacks.iter() {
            callback(notice);
        }
    }
}

/// Marks the journal failed if the writer thread unwinds, so waiters get an error instead of
/// waiting forever.
struct PanicGuard(Arc<Shared>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let reason = "journal writer thread panicked".to_string();
            self.0.finish(Err(JournalError::WriterFailed { reason }));
        }
    }
}

/// Everything the writer thread needs to start.
pub(crate) struct WriterSetup<S> {
    pub(crate) store: S,
    pub(crate) rx: Receiver<Msg>,
    pub(crate) pool_tx: Sender<Vec<u8>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) durability: Durability,
    pub(crate) batch_max: usize,
    pub(crate) batch_window: Duration,
    /// The last seq already in the store.
    pub(crate) last_written_seq: Seq,
    /// Records up to here are already gone from the store.
    pub(crate) truncated_through_seq: Seq,
    /// Records up to here may be removed (from the kept snapshots).
    pub(crate) truncate_target_seq: Seq,
}

struct Writer<S> {
    setup: WriterSetup<S>,
    batch: Vec<EncodedRecord>,
    last_queued_seq: Seq,
    unflushed_events: usize,
    unflushed_since: Option<Instant>,
    unflushed_removals: bool,
    flush_requested: bool,
}

enum Received {
    Msg(Msg),
    Idle,
    Closed,
}

/// The writer thread's body.
pub(crate) fn run<S: EventStore>(setup: WriterSetup<S>) {
    let shared = Arc::clone(&setup.shared);
    let _guard = PanicGuard(Arc::clone(&shared));
    let mut writer = Writer {
        batch: Vec::with_capacity(setup.batch_max),
        last_queued_seq: setup.last_written_seq,
        unflushed_events: 0,
        unflushed_since: None,
        unflushed_removals: false,
        flush_requested: false,
        setup,
    };
    let outcome = writer.run_loop();
    shared.finish(outcome);
}

impl<S: EventStore> Writer<S> {
    fn run_loop(&mut self) -> Result<(), JournalError> {
        loop {
            match self.receive() {
                Received::Msg(msg) => {
                    let started = Instant::now();
                    self.collect(msg);
                    let full = self.batch.len() >= self.setup.batch_max;
                    self.commit()?;
                    if !full {
                        self.pace(started);
                    }
                }
                Received::Idle => self.idle()?,
                Received::Closed => return self.finish(),
            }
        }
    }

    /// In async mode, lets records gather until `ASYNC_WRITE_INTERVAL` has passed since
    /// `started` (a full batch does not wait: the writer is behind).
    fn pace(&self, started: Instant) {
        if let Durability::Async { .. } = self.setup.durability {
            let rest = ASYNC_WRITE_INTERVAL.saturating_sub(started.elapsed());
            if !rest.is_zero() {
                std::thread::sleep(rest);
            }
        }
    }

    /// Blocks for the next message, unless there is a deadline flush or truncation to do.
    fn receive(&self) -> Received {
        let result = match self.idle_timeout() {
            None => self
                .setup
                .rx
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(timeout) => self.setup.rx.recv_timeout(timeout),
        };
        match result {
            Ok(msg) => Received::Msg(msg),
            Err(RecvTimeoutError::Timeout) => Received::Idle,
            Err(RecvTimeoutError::Disconnected) => Received::Closed,
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        if self.truncation_pending() {
            return Some(Duration::ZERO);
        }
        self.flush_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Takes `first` and whatever else is queued already, within the batch bounds.
    fn collect(&mut self, first: Msg) {
        self.accept(first);
        let started = Instant::now();
        let mut since_clock_check = 0_usize;
        while self.batch.len() < self.setup.batch_max {
            let Ok(msg) = self.setup.rx.try_recv() else {
                break;
            };
            self.accept(msg);
            since_clock_check += 1;
            if since_clock_check == WINDOW_CHECK_EVERY {
                since_clock_check = 0;
                if started.elapsed() >= self.setup.batch_window {
                    break;
                }
            }
        }
    }

    fn accept(&mut self, msg: Msg) {
        match msg {
            Msg::Record(record) => {
                // The producer mutex makes queue order seq order; a gap here is a bug.
                assert_eq!(
                    record.seq,
                    self.last_queued_seq + 1,
                    "journal queue out of order"
                );
                self.last_queued_seq = record.seq;
                self.batch.push(record);
            }
            Msg::Flush => self.flush_requested = true,
            Msg::TruncateThrough(seq) => {
                let target = &mut self.setup.truncate_target_seq;
                *target = (*target).max(seq);
            }
        }
    }

    /// Writes the collected batch, flushes if the mode says so, then truncates a chunk.
    fn commit(&mut self) -> Result<(), JournalError> {
        if !self.batch.is_empty() {
            self.write_batch()?;
        }
        if self.flush_due() {
            self.flush()?;
        }
        self.flush_requested = false;
        self.truncate_step()
    }

    fn write_batch(&mut self) -> Result<(), JournalError> {
        let first = self.batch[0].seq;
        let last = self.batch[self.batch.len() - 1].seq;
        assert_eq!(first, self.setup.last_written_seq + 1);
        assert_eq!(last - first + 1, self.batch.len() as u64);
        self.setup.store.append_batch(&self.batch)?;
        let bytes: usize = self.batch.iter().map(|r| r.value.len()).sum();
        self.setup
            .shared
            .metrics
            .record_batch(self.batch.len() as u64, bytes as u64);
        self.setup.last_written_seq = last;
        self.unflushed_events += self.batch.len();
        self.unflushed_since.get_or_insert_with(Instant::now);
        for record in self.batch.drain(..) {
            if record.value.capacity() <= RECYCLE_MAX_BYTES {
                // A full pool just means the buffer is freed instead.
                let _ = self.setup.pool_tx.try_send(record.value);
            }
        }
        Ok(())
    }

    fn flush_due(&self) -> bool {
        if self.unflushed_events == 0 {
            return self.flush_requested && self.unflushed_removals;
        }
        match self.setup.durability {
            Durability::Sync => true,
            Durability::Async { .. } => {
                self.flush_requested
                    || self.unflushed_events >= JOURNAL_UNFLUSHED_MAX
                    || self
                        .flush_deadline()
                        .is_some_and(|deadline| Instant::now() >= deadline)
            }
        }
    }

    /// In async mode, when the oldest unflushed write must be flushed.
    fn flush_deadline(&self) -> Option<Instant> {
        let Durability::Async { max_loss_ms } = self.setup.durability else {
            return None;
        };
        let since = self.unflushed_since?;
        Some(since + Duration::from_millis(max_loss_ms))
    }

    fn flush(&mut self) -> Result<(), JournalError> {
        let started = Instant::now();
        self.setup.store.flush()?;
        self.setup.shared.metrics.record_flush(started.elapsed());
        self.unflushed_events = 0;
        self.unflushed_since = None;
        self.unflushed_removals = false;
        self.setup.shared.publish(self.setup.last_written_seq);
        Ok(())
    }

    fn idle(&mut self) -> Result<(), JournalError> {
        if self
            .flush_deadline()
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            self.flush()?;
        }
        self.truncate_step()
    }

    fn truncation_pending(&self) -> bool {
        self.setup.truncated_through_seq < self.setup.truncate_target_seq
    }

    /// Removes one chunk of the journal prefix that a kept snapshot covers.
    fn truncate_step(&mut self) -> Result<(), JournalError> {
        if !self.truncation_pending() {
            return Ok(());
        }
        let through = self.setup.truncate_target_seq.min(
            self.setup
                .truncated_through_seq
                .saturating_add(TRUNCATE_CHUNK_RECORDS),
        );
        // Only records already durable are covered by a snapshot; removing anything newer
        // would be a bug in the snapshot path.
        assert!(through <= self.setup.shared.durable_seq.load(Ordering::Acquire));
        let removed = self.setup.store.remove_through(through)?;
        assert!(removed <= TRUNCATE_CHUNK_RECORDS);
        self.setup.shared.metrics.record_truncation(removed);
        self.setup.truncated_through_seq = through;
        self.unflushed_removals = true;
        Ok(())
    }

    /// The queue is closed and drained: make everything durable.
    fn finish(&mut self) -> Result<(), JournalError> {
        assert!(self.batch.is_empty());
        if self.unflushed_events > 0 || self.unflushed_removals {
            self.flush()?;
        }
        Ok(())
    }
}
