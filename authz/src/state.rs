//! What a partition knows besides the money: profiles, cards and transaction records.
//! Every field here changes only by applying an event (see [`crate::events`]).

use cardcore_core::decline::{Decline, ResponseCode};
use cardcore_core::pin::{Cvv2Value, PinVerificationValue};
use cardcore_core::{
    CardLimits, CardStatus, CardToken, CardType, Channel, Currency, Expiry, LimitType, MaskedPan,
    Mcc, Money, PanFingerprint, Permissions, ProfileId, ProfileLimit, ProfileStatus, TimeZone,
    Timestamp, TransactionState, TransactionType, TxnId,
};
use serde::{Deserialize, Serialize};

use crate::explain::Explanation;
use crate::request::{MessageKey, MessageKind, ShortText};

/// A customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub id: ProfileId,
    pub status: ProfileStatus,
    pub time_zone: TimeZone,
    /// Indexed by [`LimitType::index`].
    pub limits: [Option<ProfileLimit>; 2],
    pub created: Timestamp,
}

impl Profile {
    pub fn limit(&self, t: LimitType) -> Option<&ProfileLimit> {
        self.limits[t.index()].as_ref()
    }
}

/// A card as the issuer holds it. The PAN itself is not kept: only its keyed fingerprint
/// and the first six and last four digits.
///
/// A partition keeps one per card for as long as the card exists, so everything is inline
/// and small except what few cards have: limits live out of line. The serialised form (the
/// journal's `CardIssued`, snapshots) is the same as when the masked PAN was a `String` and
/// the limits were inline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Card {
    pub token: CardToken,
    pub profile: ProfileId,
    pub fingerprint: PanFingerprint,
    /// First six and last four digits, the rest masked.
    pub masked_pan: MaskedPan,
    pub status: CardStatus,
    pub expiry: Expiry,
    pub currency: Currency,
    pub card_type: CardType,
    pub smart_conversion: bool,
    pub permissions: Permissions,
    /// Boxed: most cards have none, and inline they would take 72 bytes of every card.
    pub limits: Option<Box<CardLimits>>,
    pub pin_tries: u8,
    pub pvv: Option<PinVerificationValue>,
    pub cvv2: Option<Cvv2Value>,
    pub issued: Timestamp,
    pub modified: Timestamp,
    /// The newest transaction of the card: the head of its list, newest first.
    pub last_txn: Option<TxnId>,
}

/// What one card record costs in a partition (see `crate::card_store`).
pub const CARD_RECORD_BYTES_MAX: usize = 176;
const _: () = assert!(std::mem::size_of::<Card>() <= CARD_RECORD_BYTES_MAX);

/// Marks on a transaction that an operator should see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnFlags {
    /// Recorded from a stand-in advice: approved by the network, past any check.
    pub stand_in: bool,
    /// Cleared for more than was held.
    pub over_cleared: bool,
    /// A pre-authorisation (hold kept 30 days).
    pub pre_auth: bool,
    /// Its hold expired before clearing.
    pub expired: bool,
}

/// A card transaction, as the reference's `CardTransaction` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    pub id: TxnId,
    pub profile: ProfileId,
    pub card: CardToken,
    pub txn_type: TransactionType,
    pub state: TransactionState,
    /// The message that created it.
    pub kind: MessageKind,
    pub key: MessageKey,
    pub rrn: ShortText<12>,
    /// The amount asked for, incremental authorisations included.
    pub requested: Money,
    /// What is currently authorised: the hold in the transaction currency.
    pub authorised: Money,
    /// The amount posted by clearing, once cleared.
    pub cleared: Option<Money>,
    pub mcc: Mcc,
    pub channel: Channel,
    pub merchant: ShortText<40>,
    pub country: ShortText<3>,
    pub response_code: ResponseCode,
    pub decline: Option<Decline>,
    pub approval_code: Option<[u8; 6]>,
    pub flags: TxnFlags,
    pub created: Timestamp,
    pub modified: Timestamp,
    /// When an uncleared hold is released.
    pub purge_time: Option<Timestamp>,
    pub explanation: Explanation,
    /// The card's transaction before this one: its transactions form a list, newest first,
    /// that needs no allocation to grow.
    pub previous_of_card: Option<TxnId>,
}

impl TxnRecord {
    pub fn approval_code_str(&self) -> Option<&str> {
        self.approval_code
            .as_ref()
            .and_then(|c| std::str::from_utf8(c).ok())
    }
}

/// The answer given to one network message, kept so a duplicate gets the very same answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub response_code: ResponseCode,
    /// Why, when declined (sent in DE 63 for the acquirer's diagnostics).
    pub decline: Option<Decline>,
    pub txn: Option<TxnId>,
    pub approval_code: Option<[u8; 6]>,
    pub approved_amount: Option<Money>,
}

impl Answer {
    /// The answer to the message that created `record`.
    pub fn of(record: &TxnRecord) -> Answer {
        let approved = record.response_code.is_approved();
        Answer {
            response_code: record.response_code,
            decline: record.decline,
            txn: Some(record.id),
            approval_code: record.approval_code,
            approved_amount: approved.then_some(record.authorised),
        }
    }
}
