//! The in-memory ledger of one partition: STANDARD balances per profile and currency,
//! holds keyed by transaction, postings, credits, and limit usage.
//!
//! # One writer, decide then apply
//! A [`Book`] is owned by one partition and used from one thread: there are no locks. Every
//! change happens in two steps:
//! 1. a decision (`open_*`, `top_up`, `plan_*`) takes `&self`, checks everything, and
//!    returns a [`LedgerEvent`] that records the outcome (amounts, balances, rates, fees,
//!    windows) or a [`BookError`] that names what is wrong. It changes nothing.
//! 2. [`Book::apply`] applies the event. The engine journals the event and applies it;
//!    recovery applies the journaled events again, in order, to a snapshot. `apply` never
//!    decides anything again (no FX rates, no clock), so replay rebuilds the same state
//!    ([`Book::state_hash`] is equal). It never fails for an event that its decision made
//!    on the same state; an event that does not fit (corrupt journal, applied twice) is
//!    refused with [`BookError::EventDoesNotApply`] and changes nothing.
//!
//! # The engine's calls
//! | message | book |
//! |---|---|
//! | profile created / card issued | [`Book::open_profile`], [`Book::open_card`] |
//! | balance created / topped up | [`Book::open_balance`], [`Book::top_up`] |
//! | authorisation approved (0100) | [`Book::plan_hold_into`] and [`Book::plan_usage_converted`], applied together as [`LedgerEvent::Authorised`] |
//! | stand-in advice (0120) | [`Book::plan_forced_hold`] and [`Book::plan_usage`] |
//! | incremental authorisation | [`Book::plan_grow`] (advice: [`Book::plan_forced_grow`]) and [`Book::plan_usage_grow`] in today's windows |
//! | partial reversal to A | [`Book::plan_adjust_to`] and [`Book::plan_usage_release_to`] |
//! | full reversal / expiry | [`Book::plan_release`] / [`Book::plan_expire`], usage released to 0 |
//! | clearing | [`Book::plan_capture`] and [`Book::plan_usage_release_to`] or, above the authorised amount, [`Book::plan_usage_grow`] (close) |
//! | clearing after expiry | [`Book::plan_forced_post`] and usage grown by the cleared amount |
//! | single message (0200) | [`Book::plan_post`] and [`Book::plan_usage`] |
//! | refund clearing | [`Book::plan_refund`] (no limits, no funds checks) |
//!
//! # Funding and smart conversion
//! A hold (or single-message posting) of amount A in the transaction currency T is funded:
//! 1. from the profile's balance in T, up to its available amount;
//! 2. if short and the card allows smart conversion ([`FundingPrefs`]): from the profile's
//!    other balances, the card's default currency first, then the others by descending
//!    available value (available converted into T at the quoted rate, fees not counted;
//!    ties by ascending balance id). Each source holds, in its own currency, what covers its
//!    part at the quoted rate plus fee ([`Leg`]; arithmetic and rounding in [`fx`]). A
//!    balance without a usable quote, or with nothing available, is skipped;
//! 3. if still short: refused with [`BookError::InsufficientFunds`] (which says whether
//!    smart conversion was blocked) — or, for a stand-in advice or forced post, the rest
//!    goes on the balance in T past its available funds, and the event is flagged.
//!
//! A hold has at most [`CONVERSION_LEGS_MAX`] legs on other balances (one slot of
//! [`HOLD_LEGS_MAX`] is kept for the leg in T); a growth on the same balance at the same
//! rate and fee merges into its leg. A plan that needs more legs is refused with
//! [`BookError::TooManyLegs`] (a forced one puts the rest on the balance in T instead).
//! Nothing is exchanged until clearing, at the rates fixed at authorisation.
//!
//! When the final amount ends lower (partial reversal, lower clearing), legs on other
//! balances shrink first, newest first, so the customer's own-currency money is kept
//! longest; a shrunk conversion leg is recomputed at its own rate and fee. The leg in T
//! shrinks last. A clearing above the hold posts the whole hold and takes the excess from
//! the balance in T.

//! # Negative available
//! Available goes below zero only through a flagged event: a stand-in advice or forced post
//! (the network already approved) or a clearing above its hold. The remainder lands on the
//! transaction-currency balance, which is opened at zero if the profile has none. Such a
//! balance is marked [`Balance::overdrawn`] until it is back at zero or above.
//!
//! # What the book does not know
//! Transaction states belong to the engine. A hold exists exactly while its transaction is
//! `IN_PROGRESS`; [`Book::live_hold_txns`] lets the engine check that side of the invariant.
//! Finished transactions are not kept: the engine records their [`LedgerEvent::debits`].

mod apply;
mod dense;
mod error;
mod event;
mod funding;
pub mod fx;
mod hasher;
mod invariants;
mod legs;
mod snapshot;
pub mod usage;
pub mod usage_record;

use cardcore_core::{BalanceId, CardToken, Currency, Money, ProfileId, TimeZone, TxnId};
use serde::{Deserialize, Serialize};

pub use error::BookError;
pub use event::{
    Authorised, Captured, Credit, CreditKind, Excess, HoldPlaced, HoldResized, LedgerEvent,
    OpenBalance, Posted, ReleaseCause, UsageAdded, UsageGrown, UsageReleased, DEBITS_MAX,
};
pub use fx::{FundingPrefs, FxQuote, FxRates, FxTable, NoRates, FEE_PPM_MAX};
pub use invariants::InvariantViolation;
pub use legs::{Debit, Leg, Legs};
pub use snapshot::{BookSnapshot, ProfileSnapshot, SNAPSHOT_VERSION};
pub use usage::{
    local_midnight, window_bounds, AppliedWindows, CardUsage, GrowIn, TypeUsage, UsageCharge,
    UsageEnd, UsageKey, Window, WindowCounter,
};
pub use usage_record::{Released, UsageAmounts, UsagePart, UsageRecord, USAGE_PARTS_MAX};

pub use dense::{DenseMap, SlotIndex, SLOTS_MAX};
pub use hasher::{IdHasher, IdMap};

/// Legs one hold may have (balances and rates it is spread over).
pub const HOLD_LEGS_MAX: usize = 4;
/// Legs on balances in other currencies than the transaction's; one slot is always left for
/// the transaction-currency leg, so a forced remainder always has a place.
pub const CONVERSION_LEGS_MAX: usize = HOLD_LEGS_MAX - 1;
/// Balances one profile may have (one per currency).
pub const PROFILE_BALANCES_MAX: usize = 64;

const _: () = assert!(HOLD_LEGS_MAX >= 2);
const _: () = assert!(CONVERSION_LEGS_MAX >= 1);

/// A STANDARD balance: `cash = available + reserved`, all in minor units of `currency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub id: BalanceId,
    pub profile: ProfileId,
    pub currency: Currency,
    /// Money on the balance.
    pub cash_minor: i64,
    /// Held for live transactions.
    pub reserved_minor: i64,
    /// What new transactions can use.
    pub available_minor: i64,
    /// Available went below zero through a flagged event and has not come back to zero.
    pub overdrawn: bool,
}

impl Balance {
    fn opened(open: &OpenBalance) -> Balance {
        Balance {
            id: open.balance,
            profile: open.profile,
            currency: open.currency,
            cash_minor: 0,
            reserved_minor: 0,
            available_minor: 0,
            overdrawn: false,
        }
    }

    pub fn cash(&self) -> Money {
        Money::new(self.cash_minor, self.currency)
    }

    pub fn reserved(&self) -> Money {
        Money::new(self.reserved_minor, self.currency)
    }

    pub fn available(&self) -> Money {
        Money::new(self.available_minor, self.currency)
    }
}

/// A live transaction's hold: `legs` on the profile's balances, together covering the
/// authorised amount in the transaction `currency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub profile: ProfileId,
    pub currency: Currency,
    pub legs: Legs,
    /// Some of it was held past available funds (stand-in advice).
    pub flagged: bool,
}

impl Hold {
    /// The amount held, in the transaction currency.
    pub fn amount(&self) -> Money {
        // Legs are bounded and each covers an i64, so the sum fits; saturate regardless.
        let covers = self.legs.covers_minor();
        let minor = i64::try_from(covers).unwrap_or(if covers < 0 { i64::MIN } else { i64::MAX });
        Money::new(minor, self.currency)
    }

    /// The lines the engine shows in the transaction's `debits` list while it is live.
    pub fn debits(&self) -> impl Iterator<Item = Debit> + '_ {
        self.legs.iter().map(|l| l.debit(self.currency))
    }
}

// Holds and events are copied on every authorisation: keep them within a few cache lines.
const _: () = assert!(std::mem::size_of::<Hold>() <= 256);
const _: () = assert!(std::mem::size_of::<LedgerEvent>() <= 448);

/// Money in and out of the book in one currency, since the book began: total cash of the
/// currency's balances = `top_ups + refunds − postings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotals {
    pub currency: Currency,
    pub top_ups_minor: i128,
    pub refunds_minor: i128,
    pub postings_minor: i128,
}

impl CurrencyTotals {
    fn zero(currency: Currency) -> CurrencyTotals {
        CurrencyTotals {
            currency,
            top_ups_minor: 0,
            refunds_minor: 0,
            postings_minor: 0,
        }
    }
}

/// What the book keeps per profile.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ProfileBook {
    time_zone: TimeZone,
    usage_currency: Currency,
    /// The profile's balances, in the order they were opened: few, so a scan is fastest.
    balances: Vec<(Currency, BalanceId)>,
    /// Indexed by `LimitType::index`.
    usage: [TypeUsage; 2],
}

/// The in-memory ledger of one partition. See the [module documentation](self).
#[derive(Debug)]
pub struct Book {
    profiles: IdMap<ProfileId, ProfileBook>,
    balances: IdMap<BalanceId, Balance>,
    holds: IdMap<TxnId, Hold>,
    /// Every card's usage counters, opened at issue: many, never removed, so kept densely.
    cards: DenseMap<CardToken, CardUsage>,
    usage_records: IdMap<TxnId, UsageRecord>,
    /// Sorted by currency; a partition sees few currencies, so a scan is fastest.
    totals: Vec<CurrencyTotals>,
    next_balance_id: u64,
    balance_id_step: u64,
}

impl Default for Book {
    fn default() -> Self {
        Book::new()
    }
}

impl Book {
    /// An empty book whose balance ids are 1, 2, 3, ...
    pub fn new() -> Book {
        Book::with_balance_ids(1, 1)
    }

    /// An empty book whose balance ids are `first`, `first + step`, ...: partitions that
    /// each own a residue class never hand out the same id (`first` = partition index + 1,
    /// `step` = partition count). A `step` of 0 is taken as 1.
    pub fn with_balance_ids(first: u64, step: u64) -> Book {
        Book {
            profiles: IdMap::default(),
            balances: IdMap::default(),
            holds: IdMap::default(),
            cards: DenseMap::default(),
            usage_records: IdMap::default(),
            totals: Vec::new(),
            next_balance_id: first,
            balance_id_step: step.max(1),
        }
    }

    /// Reserves room for `live` more transactions with a hold and limit usage and, when both
    /// tables are empty (a new book), writes to it once, so that recording one on the
    /// decision path neither grows a table nor waits for the operating system to map a fresh
    /// page. Costs start-up time and resident memory.
    pub fn reserve_txns(&mut self, live: usize) {
        self.holds.reserve(live);
        self.usage_records.reserve(live);
        if !self.holds.is_empty() || !self.usage_records.is_empty() {
            return;
        }
        let hold = Hold {
            profile: ProfileId(0),
            currency: Currency::EUR,
            legs: Legs::new(),
            flagged: false,
        };
        let usage = UsageRecord::new(
            CardToken(0),
            cardcore_core::LimitType::Purchase,
            Currency::EUR,
            UsageAmounts::ZERO,
            Window::EMPTY,
            Window::EMPTY,
        );
        // Within the reserved room: neither table grows, and clearing keeps the memory.
        for id in (0..live as u64).map(TxnId) {
            self.holds.insert(id, hold);
            self.usage_records.insert(id, usage);
        }
        self.holds.clear();
        self.usage_records.clear();
    }

    /// Opens a profile: the time zone its limit windows follow and the currency its
    /// profile-limit usage is counted in.
    pub fn open_profile(
        &self,
        profile: ProfileId,
        time_zone: TimeZone,
        usage_currency: Currency,
    ) -> Result<LedgerEvent, BookError> {
        if self.profiles.contains_key(&profile) {
            return Err(BookError::ProfileExists(profile));
        }
        Ok(LedgerEvent::ProfileOpened {
            profile,
            time_zone,
            usage_currency,
        })
    }

    /// Moves a profile's limit windows to another time zone: windows in progress run to
    /// their end (usage already counted stays where it was counted), the next ones follow
    /// the new zone.
    pub fn change_time_zone(
        &self,
        profile: ProfileId,
        time_zone: TimeZone,
    ) -> Result<LedgerEvent, BookError> {
        if !self.profiles.contains_key(&profile) {
            return Err(BookError::UnknownProfile(profile));
        }
        Ok(LedgerEvent::TimeZoneChanged { profile, time_zone })
    }

    /// Opens a card's usage counters (at issue, whether or not it has limits), counted in
    /// `usage_currency` (the currency of the card's limits).
    pub fn open_card(
        &self,
        card: CardToken,
        profile: ProfileId,
        usage_currency: Currency,
    ) -> Result<LedgerEvent, BookError> {
        if self.cards.contains_key(&card) {
            return Err(BookError::CardExists(card));
        }
        if !self.profiles.contains_key(&profile) {
            return Err(BookError::UnknownProfile(profile));
        }
        Ok(LedgerEvent::CardOpened {
            card,
            profile,
            usage_currency,
        })
    }

    /// Opens the profile's STANDARD balance in `currency`, empty.
    pub fn open_balance(
        &self,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<LedgerEvent, BookError> {
        Ok(LedgerEvent::BalanceOpened(
            self.new_balance(profile, currency)?,
        ))
    }

    /// Adds money to a balance.
    pub fn top_up(&self, balance: BalanceId, amount: Money) -> Result<LedgerEvent, BookError> {
        let b = self
            .balances
            .get(&balance)
            .ok_or(BookError::UnknownBalance(balance))?;
        if amount.currency != b.currency {
            let (expected, got) = (b.currency, amount.currency);
            return Err(BookError::CurrencyMismatch {
                what: "top-up",
                expected,
                got,
            });
        }
        positive("top-up", amount)?;
        Ok(LedgerEvent::Credited(Credit {
            balance,
            amount,
            kind: CreditKind::TopUp,
            open: None,
        }))
    }

    /// Credits a refund (on its clearing) to the profile's balance in the refund's
    /// currency, opening that balance if the profile has none. No limits or funds checks.
    pub fn plan_refund(
        &self,
        txn: TxnId,
        profile: ProfileId,
        amount: Money,
    ) -> Result<LedgerEvent, BookError> {
        positive("refund", amount)?;
        let (balance, open) = self.balance_or_open(profile, amount.currency)?;
        let kind = CreditKind::Refund(txn);
        Ok(LedgerEvent::Credited(Credit {
            balance,
            amount,
            kind,
            open,
        }))
    }

    pub fn balance(&self, id: BalanceId) -> Option<&Balance> {
        self.balances.get(&id)
    }

    /// The profile's balance in `currency`.
    pub fn balance_of(&self, profile: ProfileId, currency: Currency) -> Option<&Balance> {
        self.balance_id(profile, currency)
            .and_then(|id| self.balances.get(&id))
    }

    pub fn balance_id(&self, profile: ProfileId, currency: Currency) -> Option<BalanceId> {
        let entry = self.profiles.get(&profile)?;
        entry
            .balances
            .iter()
            .find(|(c, _)| *c == currency)
            .map(|(_, id)| *id)
    }

    /// The profile's balances, in the order they were opened.
    pub fn balances_of(&self, profile: ProfileId) -> impl Iterator<Item = &Balance> + '_ {
        let ids = self
            .profiles
            .get(&profile)
            .map(|p| p.balances.as_slice())
            .unwrap_or(&[]);
        ids.iter().filter_map(|(_, id)| self.balances.get(id))
    }

    /// The profile's balances by currency, in the order they were opened (empty for an
    /// unknown profile).
    pub fn balance_list(&self, profile: ProfileId) -> &[(Currency, BalanceId)] {
        self.profiles
            .get(&profile)
            .map(|p| p.balances.as_slice())
            .unwrap_or(&[])
    }

    /// The currencies the profile has a balance in.
    pub fn currencies_of(&self, profile: ProfileId) -> impl Iterator<Item = Currency> + '_ {
        let ids = self
            .profiles
            .get(&profile)
            .map(|p| p.balances.as_slice())
            .unwrap_or(&[]);
        ids.iter().map(|(c, _)| *c)
    }

    pub fn has_profile(&self, profile: ProfileId) -> bool {
        self.profiles.contains_key(&profile)
    }

    pub fn time_zone(&self, profile: ProfileId) -> Option<TimeZone> {
        self.profiles.get(&profile).map(|p| p.time_zone)
    }

    pub fn card_usage(&self, card: CardToken) -> Option<&CardUsage> {
        self.cards.get(&card)
    }

    pub fn hold(&self, txn: TxnId) -> Option<&Hold> {
        self.holds.get(&txn)
    }

    /// The transactions with a live hold, in no particular order: each must be
    /// `IN_PROGRESS` in the engine.
    pub fn live_hold_txns(&self) -> impl Iterator<Item = TxnId> + '_ {
        self.holds.keys().copied()
    }

    pub fn hold_count(&self) -> usize {
        self.holds.len()
    }

    /// Money in and out in `currency` since the book began.
    pub fn totals(&self, currency: Currency) -> CurrencyTotals {
        self.totals
            .iter()
            .find(|t| t.currency == currency)
            .copied()
            .unwrap_or_else(|| CurrencyTotals::zero(currency))
    }

    /// A new empty balance for (profile, currency), with the next id.
    fn new_balance(
        &self,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<OpenBalance, BookError> {
        let entry = self
            .profiles
            .get(&profile)
            .ok_or(BookError::UnknownProfile(profile))?;
        if let Some((_, balance)) = entry.balances.iter().find(|(c, _)| *c == currency) {
            return Err(BookError::BalanceExists {
                profile,
                currency,
                balance: *balance,
            });
        }
        if entry.balances.len() >= PROFILE_BALANCES_MAX {
            return Err(BookError::TooManyBalances {
                profile,
                max: PROFILE_BALANCES_MAX,
            });
        }
        let balance = BalanceId(self.next_balance_id);
        if self.balances.contains_key(&balance) {
            return Err(BookError::BalanceIdInUse(balance));
        }
        Ok(OpenBalance {
            balance,
            profile,
            currency,
        })
    }

    /// The profile's balance in `currency`, or one to open.
    fn balance_or_open(
        &self,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<(BalanceId, Option<OpenBalance>), BookError> {
        match self.balance_id(profile, currency) {
            Some(id) => Ok((id, None)),
            None => {
                let open = self.new_balance(profile, currency)?;
                Ok((open.balance, Some(open)))
            }
        }
    }
}

fn positive(what: &'static str, amount: Money) -> Result<(), BookError> {
    if amount.amount_minor <= 0 {
        return Err(BookError::NonPositiveAmount { what, amount });
    }
    Ok(())
}
