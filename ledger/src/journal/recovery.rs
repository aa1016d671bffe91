//! Recovery: from the files on disk to the newest snapshot, the tail of events after it, and
//! a running journal that continues the sequence.

use std::fs;
use std::path::PathBuf;

use super::handle::{Journal, StartPoint};
use super::record::{self, is_torn_write, RECORD_HEADER_BYTES};
use super::snapshot::{
    fsync_dir, list_snapshots, read_snapshot_file, remove_temp_files, Snapshot, SNAPSHOTS_KEPT,
};
use super::store::{EventStore, StoreIter};
use super::{JournalConfig, JournalError, Seq, TORN_TAIL_MAX_RECORDS};

/// One event read back from the journal, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: Seq,
    /// The stored value: header, then payload.
    value: Vec<u8>,
}

impl Record {
    /// The event bytes as appended.
    pub fn payload(&self) -> &[u8] {
        &self.value[RECORD_HEADER_BYTES..]
    }

    pub fn into_payload(mut self) -> Vec<u8> {
        self.value.drain(..RECORD_HEADER_BYTES);
        self.value
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("seq", &self.seq)
            .field("len", &self.payload().len())
            .finish()
    }
}

/// The damaged records cut from the end of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub first_seq: Seq,
    pub last_seq: Seq,
    pub records: u64,
}

/// A snapshot recovery could not use and set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSnapshot {
    pub seq: Seq,
    /// Where the damaged file was moved (`*.bin.corrupt`).
    pub moved_to: PathBuf,
    pub problem: String,
}

/// What recovery found and did, for the log and for operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The seq of the snapshot recovery starts from, if any.
    pub snapshot_seq: Option<Seq>,
    /// Damaged newer snapshots replaced by an older one (and a longer replay).
    pub skipped_snapshots: Vec<SkippedSnapshot>,
    /// Damaged records cut from the end of the journal.
    pub torn_tail: Option<TornTail>,
    /// Temp files of interrupted snapshot writes, removed.
    pub removed_temp_files: Vec<PathBuf>,
    /// The seq the next append gets.
    pub next_seq: Seq,
}

/// A journal being recovered: read the snapshot and the tail, then [`start`](Self::start).
pub struct Recovery<S: EventStore> {
    store: S,
    config: JournalConfig,
    snapshot: Option<Snapshot>,
    kept_snapshot_seqs: Vec<Seq>,
    report: RecoveryReport,
    progress: TailProgress,
}

#[derive(Debug)]
struct TailProgress {
    next_expected_seq: Seq,
    state: TailState,
}

#[derive(Debug)]
enum TailState {
    Pending,
    Done,
    Failed(String),
}

impl<S: EventStore> std::fmt::Debug for Recovery<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovery")
            .field("report", &self.report)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl<S: EventStore> Recovery<S> {
    /// Recovers the journal held by `store`, with snapshots in `config.data_dir`.
    pub fn open(config: JournalConfig, mut store: S) -> Result<Recovery<S>, JournalError> {
        config.validate()?;
        let dir = &config.data_dir;
        fs::create_dir_all(dir).map_err(|e| JournalError::io("create data directory", dir, e))?;
        let removed_temp_files = remove_temp_files(dir)?;
        for path in &removed_temp_files {
            tracing::warn!(
                ?path,
                "removed the temp file of an interrupted snapshot write"
            );
        }
        let torn_tail = cut_torn_tail(&mut store)?;
        let (snapshot, skipped_snapshots) = load_snapshot(&config, &store)?;
        let snapshot_seq = snapshot.as_ref().map(|s| s.seq);
        let base_seq = snapshot_seq.unwrap_or(0);
        let last_seq = store.last_seq()?.unwrap_or(0);
        // Whatever the store recovered from its own log may not have been flushed by the
        // process that wrote it; make it durable before new events are built on it.
        store.flush()?;
        let kept_snapshot_seqs: Vec<Seq> = list_snapshots(dir)?.iter().map(|s| s.0).collect();
        let report = RecoveryReport {
            snapshot_seq,
            skipped_snapshots,
            torn_tail,
            removed_temp_files,
            next_seq: base_seq.max(last_seq) + 1,
        };
        tracing::info!(?report, "journal opened");
        let progress = TailProgress {
            next_expected_seq: base_seq + 1,
            state: TailState::Pending,
        };
        Ok(Recovery {
            store,
            config,
            snapshot,
            kept_snapshot_seqs,
            report,
            progress,
        })
    }

    /// The snapshot recovery starts from.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Takes the snapshot out, to hand its bytes over without a copy.
    pub fn take_snapshot(&mut self) -> Option<Snapshot> {
        self.snapshot.take()
    }

    pub fn report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The events after the snapshot, in seq order, each checked. Stops at the first error.
    /// Dropping it early and calling `tail` again continues where it stopped.
    pub fn tail(&mut self) -> Tail<'_> {
        let inner = self.store.iter_from(self.progress.next_expected_seq);
        Tail {
            inner,
            progress: &mut self.progress,
        }
    }

    /// Starts the writer after the last good record. Reads the rest of the tail first if the
    /// caller did not, because appending after a damaged record would bury it.
    pub fn start(mut self) -> Result<Journal, JournalError> {
        if let TailState::Pending = self.progress.state {
            for record in self.tail() {
                record?;
            }
        }
        if let TailState::Failed(reason) = &self.progress.state {
            return Err(JournalError::RecoveryIncomplete {
                reason: reason.clone(),
            });
        }
        // The tail ended where the open found the journal's end: nothing appeared or vanished.
        assert_eq!(self.progress.next_expected_seq, self.report.next_seq);
        let first_seq = self.store.first_seq()?;
        let start = StartPoint {
            next_seq: self.report.next_seq,
            truncated_through_seq: first_seq.map_or(self.report.next_seq - 1, |s| s - 1),
            truncate_target_seq: truncate_target(&self.kept_snapshot_seqs),
            newest_snapshot_seq: self.kept_snapshot_seqs.last().copied().unwrap_or(0),
        };
        Journal::start(self.store, &self.config, start)
    }
}

/// Events after the snapshot; see [`Recovery::tail`].
pub struct Tail<'a> {
    inner: StoreIter<'a>,
    progress: &'a mut TailProgress,
}

impl std::fmt::Debug for Tail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail")
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl Iterator for Tail<'_> {
    type Item = Result<Record, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !matches!(self.progress.state, TailState::Pending) {
            return None;
        }
        let checked = match self.inner.next() {
            None => {
                self.progress.state = TailState::Done;
                return None;
            }
            Some(Err(error)) => Err(error),
            Some(Ok((seq, value))) => check_record(self.progress.next_expected_seq, seq, value),
        };
        match &checked {
            Ok(record) => self.progress.next_expected_seq = record.seq + 1,
            Err(error) => {
                tracing::error!(%error, "journal replay stopped");
                self.progress.state = TailState::Failed(error.to_string());
            }
        }
        Some(checked)
    }
}

fn check_record(expected: Seq, seq: Seq, value: Vec<u8>) -> Result<Record, JournalError> {
    if seq != expected {
        return Err(JournalError::Gap {
            expected,
            found: seq,
        });
    }
    record::decode(seq, &value)?;
    Ok(Record { seq, value })
}

/// Records up to here may be truncated: the older of the kept snapshots, so the newer one
/// always has the older one (plus the journal) to fall back on.
fn truncate_target(kept_snapshot_seqs: &[Seq]) -> Seq {
    if kept_snapshot_seqs.len() >= SNAPSHOTS_KEPT {
        kept_snapshot_seqs[kept_snapshot_seqs.len() - SNAPSHOTS_KEPT]
    } else {
        0
    }
}

/// Finds a trailing run of records damaged the way an interrupted write damages them, and
/// removes it. Only the last `TORN_TAIL_MAX_RECORDS + 1` seqs are read.
fn cut_torn_tail<S: EventStore>(store: &mut S) -> Result<Option<TornTail>, JournalError> {
    let Some(last_seq) = store.last_seq()? else {
        return Ok(None);
    };
    let window_start = last_seq.saturating_sub(TORN_TAIL_MAX_RECORDS);
    let mut trailing_bad: Vec<Seq> = Vec::new();
    let mut first_bad_error = None;
    let mut good_seen = false;
    for stored in store.iter_from(window_start) {
        let (seq, value) = stored?;
        match record::decode(seq, &value) {
            Err(error) if is_torn_write(&error) => {
                if trailing_bad.is_empty() {
                    first_bad_error = Some(error);
                }
                trailing_bad.push(seq);
            }
            // A good record, or one of another version (not torn; replay reports it).
            _ => {
                trailing_bad.clear();
                first_bad_error = None;
                good_seen = true;
            }
        }
    }
    let (Some(&first_seq), Some(error)) = (trailing_bad.first(), first_bad_error) else {
        return Ok(None);
    };
    // Without a good record in the window, the damage may reach further back than one
    // interrupted write can: that is corruption, not a torn tail.
    let window_holds_start = store
        .first_seq()?
        .is_some_and(|first| first >= window_start);
    if !good_seen && !window_holds_start {
        return Err(error);
    }
    let removed = store.remove_after(first_seq - 1)?;
    assert_eq!(removed, trailing_bad.len() as u64);
    store.flush()?;
    let torn = TornTail {
        first_seq,
        last_seq,
        records: removed,
    };
    tracing::warn!(?torn, %error, "cut a torn tail from the journal");
    Ok(Some(torn))
}

/// The newest valid snapshot, falling back to an older one (or to none) only when the journal
/// still holds every event the damaged newer snapshots covered.
fn load_snapshot<S: EventStore>(
    config: &JournalConfig,
    store: &S,
) -> Result<(Option<Snapshot>, Vec<SkippedSnapshot>), JournalError> {
    let listed = list_snapshots(&config.data_dir)?;
    let mut damaged: Vec<(Seq, PathBuf, JournalError)> = Vec::new();
    let mut chosen = None;
    for (seq, path) in listed.into_iter().rev() {
        match read_snapshot_file(&path, seq) {
            Ok(snapshot) => {
                chosen = Some(snapshot);
                break;
            }
            Err(error) if error.is_corruption() => damaged.push((seq, path, error)),
            Err(error) => return Err(error),
        }
    }
    let Some((newest_damaged_seq, _, _)) = damaged.first() else {
        return Ok((chosen, vec![]));
    };
    let base_seq = chosen.as_ref().map_or(0, |s| s.seq);
    if !journal_covers(store, base_seq, *newest_damaged_seq)? {
        let (_, _, error) = damaged.swap_remove(0);
        return Err(error);
    }
    let skipped = set_aside(config, damaged)?;
    Ok((chosen, skipped))
}

/// True when the journal holds every seq from `base_seq + 1` through `through_seq`, as far
/// as its ends tell; replay checks the middle.
fn journal_covers<S: EventStore>(
    store: &S,
    base_seq: Seq,
    through_seq: Seq,
) -> Result<bool, JournalError> {
    let (Some(first), Some(last)) = (store.first_seq()?, store.last_seq()?) else {
        return Ok(false);
    };
    Ok(first <= base_seq + 1 && last >= through_seq)
}

/// Moves damaged snapshots out of the way (kept for inspection, never read again), so later
/// pruning and truncation only ever count good snapshots.
fn set_aside(
    config: &JournalConfig,
    damaged: Vec<(Seq, PathBuf, JournalError)>,
) -> Result<Vec<SkippedSnapshot>, JournalError> {
    let mut skipped = Vec::new();
    for (seq, path, error) in damaged {
        let mut moved_to = path.clone().into_os_string();
        moved_to.push(".corrupt");
        let moved_to = PathBuf::from(moved_to);
        fs::rename(&path, &moved_to)
            .map_err(|e| JournalError::io("set aside damaged snapshot", &path, e))?;
        tracing::warn!(%error, ?moved_to, "snapshot damaged; recovering from an older one");
        skipped.push(SkippedSnapshot {
            seq,
            moved_to,
            problem: error.to_string(),
        });
    }
    fsync_dir(&config.data_dir)?;
    Ok(skipped)
}
