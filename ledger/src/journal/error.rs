//! The journal's one error type.

use std::path::PathBuf;

use super::record::RecordProblem;
use super::Seq;

/// Everything the journal can fail with.
///
/// Three families, kept apart on purpose (see [`JournalError::is_corruption`]):
/// - the data on disk is damaged (`Corrupt`, `UnsupportedVersion`, `Gap`, `SnapshotCorrupt`,
///   `StoreCorrupt`):
///   recovery stops and an operator has to look, because replaying past it would rebuild a
///   wrong ledger;
/// - the environment failed (`Io`, `Store`, `WriterFailed`): the disk or the store said no;
/// - the caller asked for something that cannot be done (`Closed`, `NotAppended`,
///   `PayloadTooLarge`, `SnapshotNotNewer`, `InvalidConfig`, `RecoveryIncomplete`).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A record in the journal fails its checks and is not part of a torn tail.
    #[error("journal record {seq} is corrupt: {problem}")]
    Corrupt { seq: Seq, problem: RecordProblem },

    /// A record's checksum is right but it was written in a format this build cannot read.
    #[error(
        "journal record {seq} has format version {version}, this build reads version {supported}"
    )]
    UnsupportedVersion {
        seq: Seq,
        version: u8,
        supported: u8,
    },

    /// Records are missing: the journal jumps from `expected` to `found`.
    #[error("journal is missing records: expected seq {expected}, found {found}")]
    Gap { expected: Seq, found: Seq },

    /// A snapshot file fails its checks and no usable older snapshot can stand in.
    #[error("snapshot {path:?} is corrupt: {problem}")]
    SnapshotCorrupt { path: PathBuf, problem: String },

    /// A file-system operation on the data directory failed.
    #[error("{action} {path:?}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The event store found its own files damaged (sled's checksums on its log).
    #[error("journal store reports corruption: {0}")]
    StoreCorrupt(String),

    /// The event store failed (for sled: an I/O error, an unsupported use, a bug).
    #[error("journal store: {0}")]
    Store(String),

    /// The writer thread hit an error earlier and stopped; nothing after `durable_seq` is
    /// durable and no further append is accepted.
    #[error("journal writer stopped after an error: {reason}")]
    WriterFailed { reason: String },

    /// The journal was shut down.
    #[error("journal is shut down")]
    Closed,

    /// A wait or snapshot named a sequence number that was never handed out.
    #[error("seq {seq} was never appended (last appended: {last_appended})")]
    NotAppended { seq: Seq, last_appended: Seq },

    /// An event payload is larger than a record may hold.
    #[error("event payload of {len_bytes} bytes exceeds the {max_bytes}-byte limit")]
    PayloadTooLarge { len_bytes: usize, max_bytes: usize },

    /// A snapshot must cover more events than the newest one already written.
    #[error("snapshot at seq {seq} is not newer than the existing snapshot at seq {newest}")]
    SnapshotNotNewer { seq: Seq, newest: Seq },

    /// A configuration value is out of range.
    #[error("invalid journal configuration: {field}: {problem}")]
    InvalidConfig {
        field: &'static str,
        problem: String,
    },

    /// Replay of the tail stopped at an error, so the journal cannot be appended to.
    #[error("recovery did not complete: {reason}")]
    RecoveryIncomplete { reason: String },
}

impl JournalError {
    /// True when the data on disk is damaged, as opposed to an I/O failure or a caller error.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            JournalError::Corrupt { .. }
                | JournalError::UnsupportedVersion { .. }
                | JournalError::Gap { .. }
                | JournalError::SnapshotCorrupt { .. }
                | JournalError::StoreCorrupt(_)
        )
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        JournalError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<sled::Error> for JournalError {
    fn from(error: sled::Error) -> Self {
        match error {
            sled::Error::Corruption { .. } => JournalError::StoreCorrupt(format!("sled: {error}")),
            other => JournalError::Store(format!("sled: {other}")),
        }
    }
}
