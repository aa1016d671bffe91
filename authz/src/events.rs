//! The partition's events: immutable outcomes, journaled in order and applied the same way
//! live and on replay. A decision is made once; replay applies what it decided and never
//! decides again (it looks at no clock, rate or rule).

use cardcore_core::{
    CardLimits, CardStatus, CardToken, LimitType, Permissions, ProfileId, ProfileLimit,
    ProfileStatus, TimeZone, Timestamp,
};
use cardcore_ledger::book::LedgerEvent;
use serde::{Deserialize, Serialize};

use crate::app::AppData;
use crate::request::MessageKey;
use crate::state::{Answer, Card, Profile, TxnRecord};

/// One change to a partition's state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum EngineEvent {
    ProfileCreated(Profile),
    ProfileChanged {
        profile: ProfileId,
        status: ProfileStatus,
        time_zone: TimeZone,
    },
    ProfileLimitSet {
        profile: ProfileId,
        limit_type: LimitType,
        limit: Option<ProfileLimit>,
    },
    CardIssued(Box<Card>),
    CardStatusChanged {
        card: CardToken,
        status: CardStatus,
        at: Timestamp,
    },
    PermissionsChanged {
        card: CardToken,
        permissions: Permissions,
        at: Timestamp,
    },
    CardLimitsSet {
        card: CardToken,
        limits: Option<CardLimits>,
        at: Timestamp,
    },
    PinTriesSet {
        card: CardToken,
        count: u8,
    },
    /// A transaction created or changed: the whole record (it holds no heap data).
    Txn(Box<TxnRecord>),
    /// The answer given to a network message, for duplicates.
    Answered {
        key: MessageKey,
        answer: Answer,
    },
    Ledger(LedgerEvent),
}

/// A change to the application-wide data (rules, FX rates): the new version whole, which is
/// small and keeps replay trivially exact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEvent {
    pub data: AppData,
}

/// What one journal record holds: the events of one command, for one profile's partition
/// or for the application data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum JournalEntry {
    Partition {
        profile: ProfileId,
        events: Vec<EngineEvent>,
    },
    App(AppEvent),
}

/// Why a journal record could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("journal record does not decode: {0}")]
pub struct DecodeError(#[from] bincode::Error);

/// Encodes the events of a partition command into `out` (cleared first): a reusable buffer,
/// so the hot path does not allocate once it has grown.
pub fn encode_partition(
    profile: ProfileId,
    events: &[EngineEvent],
    out: &mut Vec<u8>,
) -> Result<(), bincode::Error> {
    out.clear();
    #[derive(Serialize)]
    enum Borrowed<'a> {
        Partition {
            profile: ProfileId,
            events: &'a [EngineEvent],
        },
    }
    bincode::serialize_into(out, &Borrowed::Partition { profile, events })
}

pub fn encode_app(event: &AppEvent) -> Result<Vec<u8>, bincode::Error> {
    bincode::serialize(&JournalEntry::App(event.clone()))
}

pub fn decode(bytes: &[u8]) -> Result<JournalEntry, DecodeError> {
    Ok(bincode::deserialize(bytes)?)
}
