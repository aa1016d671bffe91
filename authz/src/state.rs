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
    /// The first instant the card is past its expiry in a time zone (the profile's), and
    /// that zone: the expiry check's date arithmetic done once instead of per message.
    /// Derived by `apply` and snapshot loading, never stored; `None` (or another zone than
    /// the profile's) sends the check to the date arithmetic.
    #[serde(skip)]
    pub expired_from: Option<(TimeZone, Timestamp)>,
}

impl Card {
    /// Works out [`Card::expired_from`] for `tz`.
    pub(crate) fn derive_expired_from(&mut self, tz: TimeZone) {
        self.expired_from = expired_from(self.expiry, tz).map(|at| (tz, at));
    }
}

/// The first instant the card is past `expiry` in `tz`: local midnight starting the month
/// after its expiry month (a card is valid through the last day of that month).
pub fn expired_from(expiry: Expiry, tz: TimeZone) -> Option<Timestamp> {
    let (year, month) = (i32::from(expiry.year), u32::from(expiry.month));
    let (year, month) = if month == 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month + 1)
    };
    let first = chrono::NaiveDate::from_ymd_opt(year, month, 1)?;
    cardcore_ledger::book::local_midnight(tz, first)
}

/// What one card record costs in a partition (see `crate::card_store`): 176 bytes of card,
/// 16 for the expiry instant worked out in the profile's zone.
pub const CARD_RECORD_BYTES_MAX: usize = 192;
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
    /// A record of nothing, to write reserved memory with before it is used.
    pub(crate) fn placeholder() -> TxnRecord {
        let zero = Money::zero(Currency::EUR);
        TxnRecord {
            id: TxnId(0),
            profile: ProfileId(0),
            card: CardToken(0),
            txn_type: TransactionType::PosPurchase,
            state: TransactionState::Declined,
            kind: MessageKind::Authorization,
            key: MessageKey {
                stan: 0,
                transmission: 0,
                acquirer: 0,
            },
            rrn: ShortText::empty(),
            requested: zero,
            authorised: zero,
            cleared: None,
            mcc: Mcc(0),
            channel: Channel::PosChip,
            merchant: ShortText::empty(),
            country: ShortText::empty(),
            response_code: ResponseCode::APPROVED,
            decline: None,
            approval_code: None,
            flags: TxnFlags::default(),
            created: Timestamp(0),
            modified: Timestamp(0),
            purge_time: None,
            explanation: Explanation::new(),
            previous_of_card: None,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The precomputed instant agrees with the date arithmetic it replaces, on both sides
    /// of it, in zones ahead of and behind UTC and across DST changes.
    #[test]
    fn expired_from_agrees_with_the_local_date() {
        let zones = [
            "UTC",
            "Asia/Tokyo",
            "America/New_York",
            "Pacific/Kiritimati",
            "America/Santiago",
            "Europe/Madrid",
        ];
        let expiries = [(2026, 2), (2026, 3), (2026, 10), (2026, 12), (2099, 12)];
        for zone in zones {
            let tz = TimeZone::parse(zone).expect("a known zone");
            for (year, month) in expiries {
                let expiry = Expiry::new(year, month).expect("a valid expiry");
                let Some(from) = expired_from(expiry, tz) else {
                    panic!("{zone} {expiry}: no instant");
                };
                for (at, passed) in [(from.0 - 1, false), (from.0, true), (from.0 + 1, true)] {
                    let local = Timestamp(at).to_datetime().with_timezone(&tz.0);
                    assert_eq!(
                        expiry.has_passed(local.date_naive()),
                        passed,
                        "{zone} {expiry} at {local}"
                    );
                }
            }
        }
    }
}
