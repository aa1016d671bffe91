//! Ledger events: the immutable outcome of one decision, which is all that
//! [`Book::apply`](super::Book::apply) needs. Events are what the journal stores and what
//! recovery replays; they carry every amount, id, rate and window already decided, so
//! applying one never looks at FX rates or the clock.

use cardcore_core::{BalanceId, CardToken, Currency, LimitType, Money, ProfileId, TimeZone, TxnId};
use serde::{Deserialize, Serialize};

use super::legs::{Debit, Leg, Legs};
use super::usage::{AppliedWindows, Window};
use super::usage_record::UsageAmounts;
use super::HOLD_LEGS_MAX;

/// One change to the book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerEvent {
    /// A profile's time zone (for limit windows) and the currency its usage is counted in.
    ProfileOpened {
        profile: ProfileId,
        time_zone: TimeZone,
        usage_currency: Currency,
    },
    /// A profile's time zone changed: limit windows in progress run to their end, the next
    /// ones follow the new zone.
    TimeZoneChanged {
        profile: ProfileId,
        time_zone: TimeZone,
    },
    /// A card whose limit usage is counted from now on, in `usage_currency`.
    CardOpened {
        card: CardToken,
        profile: ProfileId,
        usage_currency: Currency,
    },
    /// A STANDARD balance with nothing in it.
    BalanceOpened(OpenBalance),
    /// Money in: a top-up, or a refund on clearing.
    Credited(Credit),
    /// A transaction's hold on one or more balances.
    HoldPlaced(HoldPlaced),
    /// An approved authorisation: its hold and its limit usage together.
    Authorised(Authorised),
    /// A hold grown (incremental authorisation) or shrunk (partial reversal): `legs` is the
    /// whole new set.
    HoldResized(HoldResized),
    /// A hold released in full: reversal to zero or expiry.
    HoldReleased { txn: TxnId, cause: ReleaseCause },
    /// A hold released and the final amount posted.
    Captured(Captured),
    /// A single-message transaction (or a clearing without a hold), posted at once.
    Posted(Posted),
    /// Limit usage of a new transaction, in the windows current at the time.
    UsageAdded(UsageAdded),
    /// More limit usage for a transaction: an incremental authorisation, or a clearing above
    /// what was authorised.
    UsageGrown(UsageGrown),
    /// Limit usage of a transaction given back down to a final amount (reversal, clearing,
    /// expiry).
    UsageReleased(UsageReleased),
}

/// A balance opened on the way, by a decision that needs one that does not exist yet (a
/// refund, a stand-in advice or an over-clearing in a currency the profile has no balance
/// in). The balance starts at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpenBalance {
    pub balance: BalanceId,
    pub profile: ProfileId,
    pub currency: Currency,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CreditKind {
    TopUp,
    Refund(TxnId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    pub balance: BalanceId,
    pub amount: Money,
    pub kind: CreditKind,
    /// Opened first (then `open.balance == balance`).
    pub open: Option<OpenBalance>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldPlaced {
    pub txn: TxnId,
    pub profile: ProfileId,
    /// The transaction currency.
    pub currency: Currency,
    pub legs: Legs,
    /// A balance in the transaction currency opened first (stand-in advice only).
    pub open: Option<OpenBalance>,
    /// Held past available funds: a stand-in advice the network already approved.
    pub flagged: bool,
}

/// An approved authorisation's hold and the limit usage it counts, applied together: one
/// event per approval. `hold.txn` and `usage.txn` are the same transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorised {
    pub hold: HoldPlaced,
    pub usage: UsageAdded,
}

impl Authorised {
    /// An event to plan into (see [`Book::plan_hold_into`](super::Book::plan_hold_into)):
    /// no legs, no usage, for `txn`.
    pub fn empty(txn: TxnId, profile: ProfileId, currency: Currency) -> Authorised {
        Authorised {
            hold: HoldPlaced::empty(txn, profile, currency),
            usage: UsageAdded {
                txn,
                card: CardToken(0),
                limit_type: LimitType::Purchase,
                currency,
                amounts: UsageAmounts::ZERO,
                daily: Window::EMPTY,
                monthly: Window::EMPTY,
            },
        }
    }
}

impl HoldPlaced {
    /// A hold of nothing yet, to fund.
    pub fn empty(txn: TxnId, profile: ProfileId, currency: Currency) -> HoldPlaced {
        HoldPlaced {
            txn,
            profile,
            currency,
            legs: Legs::new(),
            open: None,
            flagged: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldResized {
    pub txn: TxnId,
    pub legs: Legs,
    pub open: Option<OpenBalance>,
    pub flagged: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReleaseCause {
    /// A reversal to zero (the transaction is `CANCELLED`).
    Reversed,
    /// The hold was not cleared in time (the transaction is `CANCELLED`).
    Expired,
}

/// The amount of a clearing above its hold, taken from the transaction-currency balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Excess {
    pub balance: BalanceId,
    pub amount: Money,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    pub txn: TxnId,
    /// The transaction currency.
    pub currency: Currency,
    /// What is posted from the hold's legs: all of them when the clearing is at or above the
    /// hold, shrunk (other currencies first, newest first) when it is below.
    pub posted: Legs,
    pub excess: Option<Excess>,
    pub open: Option<OpenBalance>,
    /// The excess took available funds below zero.
    pub flagged: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    pub txn: TxnId,
    pub profile: ProfileId,
    pub currency: Currency,
    pub posted: Legs,
    pub open: Option<OpenBalance>,
    /// Posted past available funds (a forced post).
    pub flagged: bool,
}

/// The usage of a new transaction `txn`: `amounts.card_minor` counted in the card's
/// counters (daily, monthly, lifetime), `amounts.profile_minor` in the profile's counters of
/// `limit_type` (daily, monthly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageAdded {
    pub txn: TxnId,
    pub card: CardToken,
    pub limit_type: LimitType,
    /// The transaction currency (of `amounts.txn_minor`).
    pub currency: Currency,
    pub amounts: UsageAmounts,
    /// The daily and monthly windows current when it was decided.
    pub daily: Window,
    pub monthly: Window,
}

/// More usage for `txn`, counted like [`UsageAdded`] in `daily` and `monthly`: the windows
/// current at an incremental authorisation, or those of the newest authorisation for a
/// clearing above it. Only the counters in `windows` count it (all of them for an
/// incremental authorisation; for a clearing, those whose window is still that one and
/// current), and a counter keeps a newer window it is already in. The card's lifetime counter
/// always counts. `close` forgets the transaction's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageGrown {
    pub txn: TxnId,
    pub amounts: UsageAmounts,
    pub daily: Window,
    pub monthly: Window,
    pub windows: AppliedWindows,
    pub close: bool,
}

/// The usage of `txn` given back down to `txn_minor` in the transaction currency, newest
/// part first, exactly what each part counted ([`UsageRecord`](super::UsageRecord)). Each
/// counter in `windows` moves by what its parts give back; the others (whose window has ended
/// since) do not. The card's lifetime counter always moves. `close` forgets the transaction's
/// record (it will not change again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReleased {
    pub txn: TxnId,
    pub txn_minor: i64,
    pub windows: AppliedWindows,
    pub close: bool,
}

/// At most every leg plus an excess.
pub const DEBITS_MAX: usize = HOLD_LEGS_MAX + 1;

impl LedgerEvent {
    /// A short name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            LedgerEvent::ProfileOpened { .. } => "ProfileOpened",
            LedgerEvent::TimeZoneChanged { .. } => "TimeZoneChanged",
            LedgerEvent::CardOpened { .. } => "CardOpened",
            LedgerEvent::BalanceOpened(_) => "BalanceOpened",
            LedgerEvent::Credited(_) => "Credited",
            LedgerEvent::HoldPlaced(_) => "HoldPlaced",
            LedgerEvent::Authorised(_) => "Authorised",
            LedgerEvent::HoldResized(_) => "HoldResized",
            LedgerEvent::HoldReleased { .. } => "HoldReleased",
            LedgerEvent::Captured(_) => "Captured",
            LedgerEvent::Posted(_) => "Posted",
            LedgerEvent::UsageAdded(_) => "UsageAdded",
            LedgerEvent::UsageGrown(_) => "UsageGrown",
            LedgerEvent::UsageReleased(_) => "UsageReleased",
        }
    }

    /// The transaction the event belongs to, if any.
    pub fn txn(&self) -> Option<TxnId> {
        match self {
            LedgerEvent::ProfileOpened { .. }
            | LedgerEvent::TimeZoneChanged { .. }
            | LedgerEvent::CardOpened { .. }
            | LedgerEvent::BalanceOpened(_) => None,
            LedgerEvent::Credited(c) => match c.kind {
                CreditKind::TopUp => None,
                CreditKind::Refund(txn) => Some(txn),
            },
            LedgerEvent::HoldPlaced(e) => Some(e.txn),
            LedgerEvent::Authorised(e) => Some(e.hold.txn),
            LedgerEvent::HoldResized(e) => Some(e.txn),
            LedgerEvent::HoldReleased { txn, .. } => Some(*txn),
            LedgerEvent::Captured(e) => Some(e.txn),
            LedgerEvent::Posted(e) => Some(e.txn),
            LedgerEvent::UsageAdded(e) => Some(e.txn),
            LedgerEvent::UsageGrown(e) => Some(e.txn),
            LedgerEvent::UsageReleased(e) => Some(e.txn),
        }
    }

    /// Whether money went past available funds: a stand-in advice, a forced post or an
    /// over-clearing. The engine marks the transaction.
    pub fn is_flagged(&self) -> bool {
        match self {
            LedgerEvent::HoldPlaced(e) => e.flagged,
            LedgerEvent::Authorised(e) => e.hold.flagged,
            LedgerEvent::HoldResized(e) => e.flagged,
            LedgerEvent::Captured(e) => e.flagged,
            LedgerEvent::Posted(e) => e.flagged,
            _ => false,
        }
    }

    /// The balance this event opened, if any.
    pub fn opened(&self) -> Option<OpenBalance> {
        match self {
            LedgerEvent::BalanceOpened(o) => Some(*o),
            LedgerEvent::Credited(e) => e.open,
            LedgerEvent::HoldPlaced(e) => e.open,
            LedgerEvent::Authorised(e) => e.hold.open,
            LedgerEvent::HoldResized(e) => e.open,
            LedgerEvent::Captured(e) => e.open,
            LedgerEvent::Posted(e) => e.open,
            _ => None,
        }
    }

    /// The money that left balances for good (a capture or a post), one line per balance
    /// and rate, as the reference's `debits` list shows it. Empty for other events. For a
    /// live hold, see [`Hold::debits`](super::Hold::debits).
    pub fn debits(&self) -> impl Iterator<Item = Debit> {
        let mut lines = [None; DEBITS_MAX];
        let (legs, excess, txn_currency) = match self {
            LedgerEvent::Captured(e) => (e.posted.as_slice(), e.excess, e.currency),
            LedgerEvent::Posted(e) => (e.posted.as_slice(), None, e.currency),
            _ => (&[][..], None, Currency::EUR),
        };
        let excess_leg =
            excess.map(|x| Leg::own(x.balance, x.amount.currency, x.amount.amount_minor));
        for (slot, leg) in lines.iter_mut().zip(legs.iter().chain(excess_leg.iter())) {
            *slot = Some(leg.debit(txn_currency));
        }
        lines.into_iter().flatten()
    }

    /// The money that came in, for a credit.
    pub fn credit(&self) -> Option<(BalanceId, Money)> {
        match self {
            LedgerEvent::Credited(c) => Some((c.balance, c.amount)),
            _ => None,
        }
    }
}
