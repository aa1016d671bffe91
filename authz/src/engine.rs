//! The embeddable engine: partitions on their own threads, fed by bounded queues, sharing one
//! journal; the application data published by atomic swap; recovery on open.
//!
//! A caller that wants the raw decision speed can own a [`Partition`] directly (the
//! benchmarks do); everyone else goes through [`Engine`], which routes each request to the
//! partition that owns the card's profile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use cardcore_core::{CardToken, Clock, PanFingerprint, PanKey, ProfileId, Timestamp};
use cardcore_ledger::book::DenseMap;
use cardcore_ledger::journal::{Journal, JournalConfig, Recovery, Seq, SledStore};
use crossbeam::channel::{self, Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::app::{AppData, SharedAppData};
use crate::error::EngineError;
use crate::events::{decode, encode_app, AppEvent, JournalEntry};
use crate::management::ProfileLimitMax;
use crate::partition::{Lifecycle, Partition, PartitionConfig};
use crate::pipeline::Keys;
use crate::request::Request;
use crate::snapshot::PartitionImage;
use crate::state::Answer;

/// Commands waiting for one partition; a full queue makes callers wait (back-pressure).
pub const PARTITION_QUEUE_CAPACITY: usize = 16_384;
/// The most partitions an engine runs.
pub const PARTITIONS_MAX: usize = 64;

const _: () = assert!(PARTITIONS_MAX <= u32::MAX as usize);

/// How to build an engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub partitions: usize,
    pub keys: Keys,
    pub pan_key: PanKey,
    pub lifecycle: Lifecycle,
    /// Maxima of profile limits when a `PATCH` gives none, per limit type
    /// (`PURCHASE`, `ATM_WITHDRAWAL`), in minor units of the limit's currency.
    pub profile_limit_max: [ProfileLimitMax; 2],
    /// Room reserved per partition for transactions.
    pub txn_capacity: usize,
    /// `None`: state in memory only (tests, benchmarks, the in-process simulator).
    pub journal: Option<JournalConfig>,
    /// A snapshot is written after this many journal records (0: never automatically).
    pub snapshot_every_records: u64,
}

impl EngineConfig {
    /// A configuration with these keys and the defaults for everything else: one partition,
    /// no journal (state in memory), 7- and 30-day holds, and profile-limit maxima of
    /// 30 000.00 for purchases and 4 000.00 for ATM withdrawals (the reference's example).
    pub fn new(keys: Keys, pan_key: PanKey) -> EngineConfig {
        EngineConfig {
            partitions: 1,
            keys,
            pan_key,
            lifecycle: Lifecycle::default(),
            profile_limit_max: [
                ProfileLimitMax {
                    daily_minor: 3_000_000,
                    monthly_minor: 3_000_000,
                },
                ProfileLimitMax {
                    daily_minor: 400_000,
                    monthly_minor: 400_000,
                },
            ],
            txn_capacity: 1024,
            journal: None,
            snapshot_every_records: 0,
        }
    }
}

/// What a request came back with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub answer: Answer,
    /// The journal record holding this decision's events; 0 if it changed nothing. In `sync`
    /// durability the answer must not be released before this seq is durable.
    pub seq: Seq,
}

/// What a job leaves for the end of its batch: called with the seq of the journal record that
/// holds the batch's events (0 when the batch changed nothing), or the journal's error.
type Completion = Box<dyn FnOnce(Result<Seq, EngineError>) + Send>;
/// Work for a partition thread.
type Job = Box<dyn FnOnce(&mut Partition) -> Option<Completion> + Send>;

/// Commands a partition runs before it journals what they did as one record. Under load the
/// queue holds many; one record (one CRC, one sled insert) then carries them all, and their
/// answers are released together once it is durable.
pub const JOURNAL_COALESCE_MAX: usize = 256;
/// A batch stops taking commands once its record is this large, well inside the journal's
/// record limit (a command adds at most a few hundred KiB, when it expires holds).
pub const JOURNAL_COALESCE_MAX_BYTES: usize = 256 * 1024;
const _: () =
    assert!(JOURNAL_COALESCE_MAX_BYTES * 3 <= cardcore_ledger::journal::RECORD_PAYLOAD_MAX_BYTES);

struct PartitionHandle {
    tx: Sender<Job>,
    thread: Option<JoinHandle<()>>,
}

/// The engine.
pub struct Engine {
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    app: Arc<SharedAppData>,
    /// Serialises changes of the application data with their journal append.
    app_writer: Mutex<()>,
    journal: Option<Arc<Journal>>,
    partitions: Vec<PartitionHandle>,
    /// Which profile owns each card: how a message finds its partition.
    card_owner: Arc<RwLock<CardOwners>>,
    next_profile: AtomicU64,
    records_since_snapshot: AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("partitions", &self.partitions.len())
            .field("journal", &self.journal.is_some())
            .finish()
    }
}

/// The engine's one route per card: PAN fingerprint to the profile that owns the card.
/// Fingerprints are keyed hashes that no outside party can choose, so the fast id hash is
/// safe here; entries are never removed, so they are kept densely (about 42 bytes a card).
/// A card token is routed by asking the partitions (operator calls only).
pub type CardOwners = DenseMap<PanFingerprint, ProfileId>;

/// The state of the whole engine in a snapshot.
#[derive(Serialize, Deserialize)]
struct EngineImage {
    app: AppData,
    next_profile: u64,
    partitions: Vec<PartitionImage>,
}

impl Engine {
    /// Opens the engine: recovers the journal (if configured), rebuilds every partition
    /// from the snapshot and the journal tail, and starts the partition threads.
    pub fn open(config: EngineConfig, clock: Arc<dyn Clock>) -> Result<Engine, EngineError> {
        if config.partitions == 0 || config.partitions > PARTITIONS_MAX {
            return Err(EngineError::invalid(
                "partitions",
                format!("must be 1..={PARTITIONS_MAX}"),
            ));
        }
        let app = Arc::new(SharedAppData::new(AppData::default()));
        let mut partitions: Vec<Partition> = (0..config.partitions)
            .map(|i| Partition::new(partition_config(&config, i), Arc::clone(&app)))
            .collect();
        let mut next_profile = 1;
        let journal = match &config.journal {
            None => None,
            Some(jc) => {
                let j = recover(jc.clone(), &app, &mut partitions, &mut next_profile)?;
                Some(Arc::new(j))
            }
        };
        let card_owner = owner_index(&partitions);
        let handles = partitions
            .into_iter()
            .map(|p| spawn_partition(p, journal.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Engine {
            config,
            clock,
            app,
            app_writer: Mutex::new(()),
            journal,
            partitions: handles,
            card_owner: Arc::new(RwLock::new(card_owner)),
            next_profile: AtomicU64::new(next_profile),
            records_since_snapshot: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// The partition that owns a profile.
    pub fn partition_of(&self, profile: ProfileId) -> usize {
        (profile.0 % self.partitions.len() as u64) as usize
    }

    /// The profile that owns the card with this PAN fingerprint.
    pub fn owner_of_pan(&self, fp: PanFingerprint) -> Option<ProfileId> {
        self.card_owner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&fp)
            .copied()
    }

    /// The profile that owns the card with this token, asked of every partition: tokens
    /// are not routed (a route per card costs memory on every card, and only operator calls
    /// come without the profile).
    pub fn owner_of_card(&self, token: CardToken) -> Option<ProfileId> {
        let owners = self
            .on_each_partition(move |p| p.card(token).map(|c| c.profile))
            .ok()?;
        owners.into_iter().flatten().next()
    }

    /// Runs `job` on the partition that owns `profile` and waits for its result. The
    /// partition's events are journaled before the result comes back; see [`Outcome::seq`].
    pub fn on_partition<T: Send + 'static>(
        &self,
        profile: ProfileId,
        job: impl FnOnce(&mut Partition) -> T + Send + 'static,
    ) -> Result<(T, Seq), EngineError> {
        let index = self.partition_of(profile);
        self.on_partition_index(index, job)
    }

    fn on_partition_index<T: Send + 'static>(
        &self,
        index: usize,
        job: impl FnOnce(&mut Partition) -> T + Send + 'static,
    ) -> Result<(T, Seq), EngineError> {
        let (tx, rx) = channel::bounded(1);
        let wrapped: Job = Box::new(move |p: &mut Partition| {
            let value = job(p);
            let done: Completion = Box::new(move |seq| {
                // The caller may have gone away; nothing to do then.
                let _ = tx.send((value, seq));
            });
            Some(done)
        });
        self.partitions[index]
            .tx
            .send(wrapped)
            .map_err(|_| EngineError::Unavailable("partition stopped".into()))?;
        let (value, seq) = rx
            .recv()
            .map_err(|_| EngineError::Unavailable("partition stopped".into()))?;
        let seq = seq?;
        self.after_write(seq)?;
        Ok((value, seq))
    }

    /// Hands a request to its partition and calls `reply` with the outcome on the partition
    /// thread. Does not wait for durability: the caller holds the answer until
    /// [`Outcome::seq`] is durable (see [`Engine::wait_durable`]).
    pub fn submit(
        &self,
        request: Request,
        reply: impl FnOnce(Result<Outcome, EngineError>) + Send + 'static,
    ) {
        let fp = request.pan.fingerprint(&self.config.pan_key);
        // An unknown card is answered here: no partition owns it.
        let Some(profile) = self.owner_of_pan(fp) else {
            let answer = Partition::bare_answer(cardcore_core::decline::ResponseCode::UNKNOWN_CARD);
            reply(Ok(Outcome { answer, seq: 0 }));
            return;
        };
        let clock = Arc::clone(&self.clock);
        let mut reply = ReplyOnce(Some(reply));
        let job: Job = Box::new(move |p: &mut Partition| {
            let answer = p.handle(&request, clock.now());
            let done: Completion =
                Box::new(move |seq| reply.send(seq.map(|seq| Outcome { answer, seq })));
            Some(done)
        });
        let index = self.partition_of(profile);
        // A job that never runs (the partition has stopped) is dropped, and dropping it
        // answers `Unavailable` through `ReplyOnce`.
        let _ = self.partitions[index].tx.send(job);
    }

    /// Handles a request and waits for its outcome (and, in `sync` durability, for its
    /// events to be durable).
    pub fn handle(&self, request: Request) -> Result<Outcome, EngineError> {
        let (tx, rx) = channel::bounded(1);
        self.submit(request, move |outcome| {
            let _ = tx.send(outcome);
        });
        let outcome = rx
            .recv()
            .map_err(|_| EngineError::Unavailable("partition stopped".into()))??;
        self.after_write(outcome.seq)?;
        Ok(outcome)
    }

    /// Waits until `seq` is durable when the journal is in `sync` mode.
    pub fn wait_durable(&self, seq: Seq) -> Result<(), EngineError> {
        match &self.journal {
            Some(j) if seq > 0 && j.durability() == cardcore_ledger::journal::Durability::Sync => j
                .wait_durable(seq)
                .map_err(|e| EngineError::Journal(e.to_string())),
            _ => Ok(()),
        }
    }

    fn after_write(&self, seq: Seq) -> Result<(), EngineError> {
        if seq == 0 {
            return Ok(());
        }
        self.wait_durable(seq)?;
        let every = self.config.snapshot_every_records;
        if every > 0 && self.records_since_snapshot.fetch_add(1, Ordering::Relaxed) + 1 >= every {
            self.records_since_snapshot.store(0, Ordering::Relaxed);
            self.snapshot()?;
        }
        Ok(())
    }

    /// Allocates a profile id.
    pub fn next_profile_id(&self) -> ProfileId {
        ProfileId(self.next_profile.fetch_add(1, Ordering::SeqCst))
    }

    /// Makes sure later allocated ids do not collide with one chosen by the caller.
    pub fn reserve_profile_id(&self, id: ProfileId) {
        self.next_profile.fetch_max(id.0 + 1, Ordering::SeqCst);
    }

    /// Records that a card now exists, so messages for it find their partition.
    pub fn index_card(&self, fp: PanFingerprint, profile: ProfileId) {
        self.card_owner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(fp, profile);
    }

    pub fn app(&self) -> Arc<AppData> {
        self.app.snapshot()
    }

    /// Changes the application data (rules, rates) and journals the new version. `change`
    /// validates and may refuse; nothing changes then.
    pub fn update_app<T>(
        &self,
        change: impl FnOnce(&mut AppData) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let _guard = self
            .app_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next = AppData::clone(&self.app.snapshot());
        let value = change(&mut next)?;
        if let Some(journal) = &self.journal {
            let bytes = encode_app(&AppEvent { data: next.clone() })
                .map_err(|e| EngineError::Journal(e.to_string()))?;
            let seq = journal
                .append(&bytes)
                .map_err(|e| EngineError::Journal(e.to_string()))?;
            self.app.update(|d| *d = next);
            self.wait_durable(seq)?;
        } else {
            self.app.update(|d| *d = next);
        }
        Ok(value)
    }

    /// Runs `job` on every partition in turn and collects the results.
    pub fn on_each_partition<T: Send + 'static>(
        &self,
        job: impl Fn(&mut Partition) -> T + Send + Sync + 'static,
    ) -> Result<Vec<T>, EngineError> {
        let job = Arc::new(job);
        (0..self.partitions.len())
            .map(|i| {
                let job = Arc::clone(&job);
                self.on_partition_index(i, move |p| job(p)).map(|(v, _)| v)
            })
            .collect()
    }

    /// Writes a snapshot of the whole engine and lets the journal drop what it covers.
    ///
    /// Every partition is stopped at a barrier while the others serialise, so the snapshot
    /// is one consistent cut: no partition appends while the journal's last seq is read.
    pub fn snapshot(&self) -> Result<Seq, EngineError> {
        let Some(journal) = self.journal.clone() else {
            return Ok(0);
        };
        let _app = self
            .app_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = self.partitions.len();
        let barrier = Arc::new(Barrier::new(n + 1));
        let release = Arc::new(Barrier::new(n + 1));
        let (tx, rx) = channel::bounded(n);
        for (i, handle) in self.partitions.iter().enumerate() {
            let (barrier, release, tx) = (Arc::clone(&barrier), Arc::clone(&release), tx.clone());
            let journal = Arc::clone(&journal);
            let job: Job = Box::new(move |p: &mut Partition| {
                // What earlier commands of this batch did must be in the journal before the
                // cut, or replay would apply it twice (once from the snapshot, once after).
                if let Err(e) = journal_pending(p, Some(&journal)) {
                    tracing::error!(error = %e, "journal failed before a snapshot");
                }
                let image = PartitionImage::of(p);
                let _ = tx.send((i, image));
                barrier.wait();
                release.wait();
                None
            });
            handle
                .tx
                .send(job)
                .map_err(|_| EngineError::Unavailable("partition stopped".into()))?;
        }
        barrier.wait();
        let seq = journal.last_appended_seq();
        let mut images: Vec<(usize, PartitionImage)> = rx.try_iter().collect();
        release.wait();
        images.sort_by_key(|(i, _)| *i);
        let image = EngineImage {
            app: AppData::clone(&self.app.snapshot()),
            next_profile: self.next_profile.load(Ordering::SeqCst),
            partitions: images.into_iter().map(|(_, p)| p).collect(),
        };
        let bytes = bincode::serialize(&image).map_err(|e| EngineError::Journal(e.to_string()))?;
        journal
            .write_snapshot(seq, &bytes)
            .map_err(|e| EngineError::Journal(e.to_string()))?;
        Ok(seq)
    }

    /// Stops the partitions after the work queued so far, then flushes the journal.
    pub fn shutdown(&mut self) -> Result<(), EngineError> {
        for handle in &mut self.partitions {
            let (tx, _) = channel::bounded(0);
            // Replacing the sender closes the queue: the thread drains it and ends.
            drop(std::mem::replace(&mut handle.tx, tx));
            if let Some(thread) = handle.thread.take() {
                let _ = thread.join();
            }
        }
        if let Some(j) = &self.journal {
            j.shutdown()
                .map_err(|e| EngineError::Journal(e.to_string()))?;
        }
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A reply callback that is called exactly once: with the outcome, or with `Unavailable`
/// if the job carrying it is dropped without running.
struct ReplyOnce<F: FnOnce(Result<Outcome, EngineError>)>(Option<F>);

impl<F: FnOnce(Result<Outcome, EngineError>)> ReplyOnce<F> {
    fn send(&mut self, outcome: Result<Outcome, EngineError>) {
        if let Some(reply) = self.0.take() {
            reply(outcome);
        }
    }
}

impl<F: FnOnce(Result<Outcome, EngineError>)> Drop for ReplyOnce<F> {
    fn drop(&mut self) {
        self.send(Err(EngineError::Unavailable("partition stopped".into())));
    }
}

fn partition_config(config: &EngineConfig, index: usize) -> PartitionConfig {
    PartitionConfig {
        index: index as u32,
        partitions: config.partitions as u32,
        keys: config.keys.clone(),
        pan_key: config.pan_key,
        lifecycle: config.lifecycle,
        txn_capacity: config.txn_capacity,
    }
}

/// Appends the partition's pending events to the journal, returning their seq (0: none).
fn journal_pending(p: &mut Partition, journal: Option<&Journal>) -> Result<Seq, EngineError> {
    let Some(bytes) = p.take_encoded() else {
        return Ok(0);
    };
    let seq = match journal {
        None => 0,
        Some(j) => j
            .append(bytes)
            .map_err(|e| EngineError::Journal(e.to_string()))?,
    };
    p.last_journaled = p.last_journaled.max(seq);
    Ok(seq)
}

/// Runs the jobs already queued, up to the coalescing bounds, journals what they did as one
/// record, then completes them all with that record's seq.
fn run_batch(
    partition: &mut Partition,
    first: Job,
    rx: &Receiver<Job>,
    journal: Option<&Journal>,
    done: &mut Vec<Completion>,
) {
    let before = partition.last_journaled;
    done.extend(first(partition));
    while done.len() < JOURNAL_COALESCE_MAX
        && partition.pending_record_len() < JOURNAL_COALESCE_MAX_BYTES
    {
        match rx.try_recv() {
            Ok(job) => done.extend(job(partition)),
            Err(_) => break,
        }
    }
    let seq = journal_pending(partition, journal).map(|_| {
        // Every command of the batch waits for the batch's last record: one may have been
        // journaled early (before a snapshot), none later than this.
        let last = partition.last_journaled;
        if last > before {
            last
        } else {
            0
        }
    });
    for complete in done.drain(..) {
        complete(seq.clone());
    }
}

fn spawn_partition(
    partition: Partition,
    journal: Option<Arc<Journal>>,
) -> Result<PartitionHandle, EngineError> {
    let (tx, rx): (Sender<Job>, Receiver<Job>) = channel::bounded(PARTITION_QUEUE_CAPACITY);
    let name = format!("partition-{}", partition.index());
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let mut partition = partition;
            let mut done: Vec<Completion> = Vec::with_capacity(JOURNAL_COALESCE_MAX);
            while let Ok(first) = rx.recv() {
                run_batch(&mut partition, first, &rx, journal.as_deref(), &mut done);
            }
        })
        .map_err(|e| EngineError::Unavailable(format!("cannot start partition thread: {e}")))?;
    Ok(PartitionHandle {
        tx,
        thread: Some(thread),
    })
}

fn owner_index(partitions: &[Partition]) -> CardOwners {
    let cards = partitions.iter().map(|p| p.cards().len()).sum();
    let mut by_pan = CardOwners::with_capacity(cards);
    for card in partitions.iter().flat_map(|p| p.cards()) {
        by_pan.insert(card.fingerprint, card.profile);
    }
    by_pan
}

/// Loads the snapshot and replays the journal tail into the partitions.
fn recover(
    config: JournalConfig,
    app: &SharedAppData,
    partitions: &mut [Partition],
    next_profile: &mut u64,
) -> Result<Journal, EngineError> {
    let journal_err =
        |e: cardcore_ledger::journal::JournalError| EngineError::Journal(e.to_string());
    let mut recovery = Journal::recover(config).map_err(journal_err)?;
    if let Some(snapshot) = recovery.take_snapshot() {
        let image: EngineImage = bincode::deserialize(&snapshot.bytes)
            .map_err(|e| EngineError::Journal(format!("snapshot does not decode: {e}")))?;
        if image.partitions.len() != partitions.len() {
            return Err(EngineError::invalid(
                "partitions",
                format!(
                    "the data directory was written with {} partitions; start with the same number",
                    image.partitions.len()
                ),
            ));
        }
        app.update(|d| *d = image.app);
        *next_profile = image.next_profile;
        for (p, img) in partitions.iter_mut().zip(image.partitions) {
            img.restore_into(p)
                .map_err(|e| EngineError::Journal(format!("snapshot: {e}")))?;
        }
    }
    let started = std::time::Instant::now();
    let replayed = replay_tail(&mut recovery, app, partitions, next_profile)?;
    tracing::info!(
        records = replayed.records,
        events = replayed.events,
        seconds = started.elapsed().as_secs_f64(),
        "journal tail replayed"
    );
    recovery.start().map_err(journal_err)
}

/// Decoded partition events waiting for their partition's replay thread.
const REPLAY_QUEUE_RECORDS: usize = 1024;

#[derive(Default)]
struct Replayed {
    records: u64,
    events: u64,
}

/// Replays the tail: this thread reads and decodes the records in seq order and hands each
/// partition's events to a thread of its own, which applies them in that same order.
/// Partitions share no state, and applying an event reads nothing outside its partition,
/// so each one sees exactly the sequence it saw live; the application data stays on this
/// thread. On two cores this about halves a long replay (docs/performance.md).
fn replay_tail(
    recovery: &mut Recovery<SledStore>,
    app: &SharedAppData,
    partitions: &mut [Partition],
    next_profile: &mut u64,
) -> Result<Replayed, EngineError> {
    let n = partitions.len() as u64;
    std::thread::scope(|scope| {
        let mut queues = Vec::with_capacity(partitions.len());
        let mut appliers = Vec::with_capacity(partitions.len());
        for p in partitions.iter_mut() {
            let (tx, rx) =
                channel::bounded::<Vec<crate::events::EngineEvent>>(REPLAY_QUEUE_RECORDS);
            queues.push(tx);
            appliers.push(scope.spawn(move || {
                let mut events = 0_u64;
                for batch in rx {
                    for event in &batch {
                        p.apply(event);
                    }
                    events += batch.len() as u64;
                }
                events
            }));
        }
        let mut replayed = Replayed::default();
        let read = (|| {
            for record in recovery.tail() {
                let record = record.map_err(|e| EngineError::Journal(e.to_string()))?;
                replayed.records += 1;
                match decode(record.payload()).map_err(|e| EngineError::Journal(e.to_string()))? {
                    JournalEntry::App(event) => {
                        app.update(|d| *d = event.data);
                    }
                    JournalEntry::Partition { profile, events } => {
                        *next_profile = (*next_profile).max(profile.0 + 1);
                        // A closed queue means its thread panicked; the join below says so.
                        let _ = queues[(profile.0 % n) as usize].send(events);
                    }
                }
            }
            Ok(())
        })();
        drop(queues);
        for applier in appliers {
            match applier.join() {
                Ok(events) => replayed.events += events,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        read.map(|()| replayed)
    })
}
