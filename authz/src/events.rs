//! The partition's events: immutable outcomes, journaled in order and applied the same way
//! live and on replay. A decision is made once; replay applies what it decided and never
//! decides again (it looks at no clock, rate or rule).

use cardcore_core::{
    CardLimits, CardStatus, CardToken, LimitType, Permissions, ProfileId, ProfileLimit,
    ProfileStatus, TimeZone, Timestamp,
};
use cardcore_ledger::book::{Authorised, LedgerEvent};
use serde::{Deserialize, Serialize};

use crate::app::AppData;
use crate::codec::{Answered, In, Layout, Out};
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
    Txn(TxnRecord),
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
pub enum DecodeError {
    #[error("journal record does not decode: {0}")]
    Bincode(#[from] bincode::Error),
    #[error("journal record is malformed: {0}")]
    Malformed(&'static str),
    #[error("journal record is malformed: {event} event, {field}: {why}")]
    Field {
        event: &'static str,
        field: &'static str,
        why: &'static str,
    },
    #[error(
        "journal record holds partition events in format {tag}, which this build does not \
         read (it reads format {TAG_PARTITION})"
    )]
    UnsupportedFormat { tag: u8 },
}

/// The first byte of a journal record: what follows. A partition record's tag is also the
/// format of its events, bumped whenever their encoding changes, so a journal written by
/// another build is refused by name instead of being misread.
const TAG_APP: u8 = 1;
const TAG_PARTITION: u8 = 3;
/// Partition records of earlier formats: 0 (limit usage kept one window per transaction),
/// 2 (every event in bincode).
const TAG_PARTITION_FORMATS_OLD: [u8; 2] = [0, 2];

/// The first byte of each event in a partition record: how the rest is laid out. The
/// events of the decision path have a hand-written layout (see `codec`); the others are in
/// bincode.
const KIND_BINCODE: u8 = 0;
const KIND_TXN: u8 = 1;
const KIND_ANSWERED: u8 = 2;
const KIND_AUTHORISED: u8 = 3;
/// Tag, profile (u64 little-endian), event count (u32 little-endian).
pub const PARTITION_HEADER_LEN: usize = 1 + 8 + 4;

/// Builds one partition record as its events are emitted: a header, then each event
/// encoded as it happens, so a command's events are written once and never copied into a
/// list first. The buffer is reused between commands.
#[derive(Debug)]
pub struct RecordWriter {
    buf: Vec<u8>,
    count: u32,
}

impl RecordWriter {
    pub fn with_capacity(capacity: usize) -> RecordWriter {
        RecordWriter {
            buf: Vec::with_capacity(capacity),
            count: 0,
        }
    }

    /// Appends an event; the first one of a record writes the header for `profile`.
    pub fn push(&mut self, profile: ProfileId, event: &EngineEvent) {
        match event {
            EngineEvent::Txn(record) => self.push_txn(profile, record),
            EngineEvent::Answered { key, answer } => {
                let answered = Answered {
                    key: *key,
                    answer: *answer,
                };
                self.push_laid_out(profile, KIND_ANSWERED, &answered);
            }
            EngineEvent::Ledger(LedgerEvent::Authorised(e)) => self.push_authorised(profile, e),
            other => {
                self.start(profile);
                self.buf.push(KIND_BINCODE);
                // Plain data always encodes into a Vec; a failure would be a bug in a
                // Serialize impl, and journaling a partial record would be worse than
                // stopping.
                bincode::serialize_into(&mut self.buf, other).expect("engine events always encode");
                self.count += 1;
            }
        }
    }

    /// Appends [`LedgerEvent::Authorised`] `approval`.
    pub fn push_authorised(&mut self, profile: ProfileId, approval: &Authorised) {
        self.push_laid_out(profile, KIND_AUTHORISED, approval);
    }

    /// Appends [`EngineEvent::Txn`] of `record`.
    pub fn push_txn(&mut self, profile: ProfileId, record: &TxnRecord) {
        self.push_laid_out(profile, KIND_TXN, record);
    }

    /// Appends an event of kind `kind` in its hand-written layout, written in place.
    fn push_laid_out<T: Layout>(&mut self, profile: ProfileId, kind: u8, value: &T) {
        self.start(profile);
        let start = self.buf.len();
        self.buf.resize(start + 1 + T::MAX_LEN, 0);
        self.buf[start] = kind;
        // A slice of exactly the room the value may take: its length is a constant, so the
        // writes at constant offsets need no bounds checks.
        let mut out = Out::new(&mut self.buf[start + 1..start + 1 + T::MAX_LEN]);
        value.put(&mut out);
        let len = out.len();
        self.buf.truncate(start + 1 + len);
        self.count += 1;
    }

    /// Writes the record's header before its first event.
    fn start(&mut self, profile: ProfileId) {
        if self.count == 0 {
            self.buf.clear();
            self.buf.push(TAG_PARTITION);
            self.buf.extend_from_slice(&profile.0.to_le_bytes());
            self.buf.extend_from_slice(&0u32.to_le_bytes());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes written since the last `finish` (0 when no event was pushed).
    pub fn len(&self) -> usize {
        if self.count == 0 {
            0
        } else {
            self.buf.len()
        }
    }

    /// Closes the record and returns its bytes; `None` if no event was pushed.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.count == 0 {
            return None;
        }
        self.buf[9..PARTITION_HEADER_LEN].copy_from_slice(&self.count.to_le_bytes());
        self.count = 0;
        Some(&self.buf)
    }

    /// Drops the events pushed since the last `finish`.
    pub fn discard(&mut self) {
        self.count = 0;
        self.buf.clear();
    }
}

pub fn encode_app(event: &AppEvent) -> Result<Vec<u8>, bincode::Error> {
    let mut out = vec![TAG_APP];
    bincode::serialize_into(&mut out, event)?;
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<JournalEntry, DecodeError> {
    let (&tag, rest) = bytes
        .split_first()
        .ok_or(DecodeError::Malformed("empty record"))?;
    match tag {
        TAG_APP => Ok(JournalEntry::App(bincode::deserialize(rest)?)),
        TAG_PARTITION => decode_partition(rest),
        tag if TAG_PARTITION_FORMATS_OLD.contains(&tag) => {
            Err(DecodeError::UnsupportedFormat { tag })
        }
        _ => Err(DecodeError::Malformed("unknown record tag")),
    }
}

fn decode_partition(rest: &[u8]) -> Result<JournalEntry, DecodeError> {
    if rest.len() < PARTITION_HEADER_LEN - 1 {
        return Err(DecodeError::Malformed("truncated header"));
    }
    let (profile, rest) = rest.split_at(8);
    let (count, mut events_bytes) = rest.split_at(4);
    let profile = ProfileId(u64::from_le_bytes(profile.try_into().unwrap_or_default()));
    let count = u32::from_le_bytes(count.try_into().unwrap_or_default());
    // The count is checked against what the bytes can hold before reserving anything.
    if count as usize > events_bytes.len() {
        return Err(DecodeError::Malformed("event count exceeds the record"));
    }
    let mut events = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (event, rest) = decode_event(events_bytes)?;
        events.push(event);
        events_bytes = rest;
    }
    if !events_bytes.is_empty() {
        return Err(DecodeError::Malformed("trailing bytes after the events"));
    }
    Ok(JournalEntry::Partition { profile, events })
}

/// One event of a partition record, and the bytes after it.
fn decode_event(bytes: &[u8]) -> Result<(EngineEvent, &[u8]), DecodeError> {
    let (&kind, rest) = bytes
        .split_first()
        .ok_or(DecodeError::Malformed("truncated event"))?;
    match kind {
        KIND_BINCODE => {
            let mut rest = rest;
            let event = bincode::deserialize_from(&mut rest)?;
            Ok((event, rest))
        }
        KIND_TXN => {
            let mut inp = In::new(rest, "Txn");
            let record = TxnRecord::read(&mut inp, "record")?;
            Ok((EngineEvent::Txn(record), inp.rest()))
        }
        KIND_ANSWERED => {
            let mut inp = In::new(rest, "Answered");
            let Answered { key, answer } = Answered::read(&mut inp, "answer")?;
            Ok((EngineEvent::Answered { key, answer }, inp.rest()))
        }
        KIND_AUTHORISED => {
            let mut inp = In::new(rest, "Authorised");
            let e = Authorised::read(&mut inp, "authorised")?;
            Ok((EngineEvent::Ledger(LedgerEvent::Authorised(e)), inp.rest()))
        }
        _ => Err(DecodeError::Malformed("unknown event kind")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcore_core::{CardToken, TimeZone};

    #[test]
    fn records_round_trip_and_refuse_damage() {
        let mut w = RecordWriter::with_capacity(64);
        assert!(w.finish().is_none());
        let events = [
            EngineEvent::PinTriesSet {
                card: CardToken(7),
                count: 2,
            },
            EngineEvent::ProfileChanged {
                profile: ProfileId(3),
                status: cardcore_core::ProfileStatus::Active,
                time_zone: TimeZone::UTC,
            },
        ];
        for e in &events {
            w.push(ProfileId(3), e);
        }
        let bytes = w.finish().unwrap().to_vec();
        let JournalEntry::Partition {
            profile,
            events: back,
        } = decode(&bytes).unwrap()
        else {
            panic!("a partition record");
        };
        assert_eq!(profile, ProfileId(3));
        assert_eq!(back.len(), 2);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err(), "truncated");
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err(), "trailing byte");
        assert!(decode(&[9]).is_err(), "unknown tag");
        assert!(decode(&[]).is_err(), "empty");
        let mut older = bytes.clone();
        older[0] = 0;
        let refused = decode(&older).unwrap_err();
        assert!(
            matches!(refused, DecodeError::UnsupportedFormat { tag: 0 }),
            "{refused}"
        );
        assert!(refused.to_string().contains("format 0"), "{refused}");
    }
}
