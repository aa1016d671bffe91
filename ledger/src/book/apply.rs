//! Applying events. Each event is checked against the state first (its holds, balances and
//! amounts must fit) and the new balance values are computed with checked arithmetic into
//! a small inline list; only then is anything written, so an event that does not fit
//! changes nothing. Nothing here allocates for a single-currency hold or capture.

use std::collections::hash_map::Entry;

use cardcore_core::{BalanceId, CardToken, Currency, Money, ProfileId, TimeZone, TxnId};
use rust_decimal::Decimal;

use super::event::{
    Authorised, Captured, Credit, CreditKind, HoldPlaced, HoldResized, LedgerEvent, Posted,
};
use super::fx::{source_amount, FEE_PPM_MAX};
use super::legs::{Leg, Legs};
use super::usage::{counters_after, AppliedWindows, CardUsage, Counted, TypeUsage, WindowCounter};
use super::usage_record::UsageRecord;
use super::{
    Balance, Book, BookError, CurrencyTotals, Hold, OpenBalance, ProfileBook, CONVERSION_LEGS_MAX,
    HOLD_LEGS_MAX, PROFILE_BALANCES_MAX,
};

/// Distinct balances one event can touch: a hold's old legs, its new legs and an excess.
const DELTAS_MAX: usize = 2 * HOLD_LEGS_MAX + 1;

/// A change to one balance.
///
/// Every field of an unused entry is zero (`currency` is `None`), so a new [`Deltas`]
/// compiles to a small memset: this runs twice per hold and capture.
#[derive(Clone, Copy, Debug)]
struct Delta {
    balance: BalanceId,
    /// The balance's currency, as the event says it.
    currency: Option<Currency>,
    cash_minor: i64,
    reserved_minor: i64,
}

/// The changes an event makes, one entry per balance.
struct Deltas {
    event: &'static str,
    len: usize,
    items: [Delta; DELTAS_MAX],
}

const NO_DELTA: Delta = Delta {
    balance: BalanceId(0),
    currency: None,
    cash_minor: 0,
    reserved_minor: 0,
};

impl Deltas {
    fn new(event: &'static str) -> Deltas {
        Deltas {
            event,
            len: 0,
            items: [NO_DELTA; DELTAS_MAX],
        }
    }

    fn add(
        &mut self,
        balance: BalanceId,
        currency: Currency,
        cash: i64,
        reserved: i64,
    ) -> Result<(), BookError> {
        let overflow = || BookError::Overflow {
            what: "balance change",
        };
        if let Some(e) = self.items[..self.len]
            .iter_mut()
            .find(|e| e.balance == balance)
        {
            if e.currency != Some(currency) {
                let why = format!("{balance} in two currencies");
                return Err(BookError::mismatch(self.event, why));
            }
            e.cash_minor = e.cash_minor.checked_add(cash).ok_or_else(overflow)?;
            e.reserved_minor = e
                .reserved_minor
                .checked_add(reserved)
                .ok_or_else(overflow)?;
            return Ok(());
        }
        let Some(slot) = self.items.get_mut(self.len) else {
            return Err(BookError::mismatch(self.event, "touches too many balances"));
        };
        *slot = Delta {
            balance,
            currency: Some(currency),
            cash_minor: cash,
            reserved_minor: reserved,
        };
        self.len += 1;
        Ok(())
    }

    /// Reserves (`+1`) or releases (`-1`) what the legs hold.
    fn hold(&mut self, legs: &Legs, sign: i64) -> Result<(), BookError> {
        for leg in legs {
            let reserved = leg.held_minor.checked_mul(sign);
            let reserved = reserved.ok_or(BookError::Overflow {
                what: "hold amount",
            })?;
            self.add(leg.balance, leg.currency, 0, reserved)?;
        }
        Ok(())
    }

    /// Takes what the legs hold out of cash.
    fn post(&mut self, legs: &Legs) -> Result<(), BookError> {
        for leg in legs {
            self.add(leg.balance, leg.currency, -leg.held_minor, 0)?;
        }
        Ok(())
    }
}

impl Book {
    /// Applies an event that a decision of this book produced (now, or before a restart).
    /// See the [module documentation](super) for the contract.
    pub fn apply(&mut self, event: &LedgerEvent) -> Result<(), BookError> {
        match event {
            LedgerEvent::ProfileOpened {
                profile,
                time_zone,
                usage_currency,
            } => self.apply_profile_opened(*profile, *time_zone, *usage_currency),
            LedgerEvent::TimeZoneChanged { profile, time_zone } => {
                let entry = self.profiles.get_mut(profile).ok_or_else(|| {
                    BookError::mismatch("TimeZoneChanged", format!("{profile} is not open"))
                })?;
                entry.time_zone = *time_zone;
                Ok(())
            }
            LedgerEvent::CardOpened {
                card,
                profile,
                usage_currency,
            } => self.apply_card_opened(*card, *profile, *usage_currency),
            LedgerEvent::BalanceOpened(open) => {
                self.check_open("BalanceOpened", Some(open), open.profile, open.currency)?;
                self.insert_balance(open);
                Ok(())
            }
            LedgerEvent::Credited(e) => self.apply_credited(e),
            LedgerEvent::HoldPlaced(e) => self.apply_hold_placed(e),
            LedgerEvent::Authorised(e) => self.apply_authorised(e),
            LedgerEvent::HoldResized(e) => self.apply_hold_resized(e),
            LedgerEvent::HoldReleased { txn, .. } => self.apply_hold_released(*txn),
            LedgerEvent::Captured(e) => self.apply_captured(e),
            LedgerEvent::Posted(e) => self.apply_posted(e),
            LedgerEvent::UsageAdded(e) => self.apply_usage_added(e),
            LedgerEvent::UsageGrown(e) => self.apply_usage_grown(e),
            LedgerEvent::UsageReleased(e) => self.apply_usage_released(e),
        }
    }

    fn apply_profile_opened(
        &mut self,
        profile: ProfileId,
        time_zone: TimeZone,
        usage_currency: Currency,
    ) -> Result<(), BookError> {
        if self.profiles.contains_key(&profile) {
            let why = format!("{profile} is already open");
            return Err(BookError::mismatch("ProfileOpened", why));
        }
        let usage = [TypeUsage::default(); 2];
        let entry = ProfileBook {
            time_zone,
            usage_currency,
            balances: Vec::new(),
            usage,
        };
        self.profiles.insert(profile, entry);
        Ok(())
    }

    fn apply_card_opened(
        &mut self,
        card: CardToken,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<(), BookError> {
        const EVENT: &str = "CardOpened";
        if self.cards.contains_key(&card) {
            return Err(BookError::mismatch(
                EVENT,
                format!("{card} is already open"),
            ));
        }
        if !self.profiles.contains_key(&profile) {
            return Err(BookError::mismatch(EVENT, format!("unknown {profile}")));
        }
        let usage = CardUsage {
            profile,
            currency,
            daily: WindowCounter::EMPTY,
            monthly: WindowCounter::EMPTY,
            lifetime_minor: 0,
        };
        self.cards.insert(card, usage);
        Ok(())
    }

    fn apply_credited(&mut self, e: &Credit) -> Result<(), BookError> {
        const EVENT: &str = "Credited";
        if e.amount.amount_minor <= 0 {
            return Err(BookError::mismatch(EVENT, "the amount is not positive"));
        }
        let owner = match (&e.open, self.balances.get(&e.balance)) {
            (Some(open), _) if open.balance == e.balance => open.profile,
            (None, Some(b)) => b.profile,
            _ => return Err(BookError::mismatch(EVENT, format!("unknown {}", e.balance))),
        };
        self.check_open(EVENT, e.open.as_ref(), owner, e.amount.currency)?;
        let mut deltas = Deltas::new(EVENT);
        deltas.add(e.balance, e.amount.currency, e.amount.amount_minor, 0)?;
        self.apply_deltas(&deltas, owner, e.open.as_ref(), false)?;
        let amount = i128::from(e.amount.amount_minor);
        let totals = self.totals_mut(e.amount.currency);
        match e.kind {
            CreditKind::TopUp => totals.top_ups_minor = totals.top_ups_minor.saturating_add(amount),
            CreditKind::Refund(_) => {
                totals.refunds_minor = totals.refunds_minor.saturating_add(amount)
            }
        }
        Ok(())
    }

    fn apply_hold_placed(&mut self, e: &HoldPlaced) -> Result<(), BookError> {
        const EVENT: &str = "HoldPlaced";
        if self.holds.contains_key(&e.txn) {
            return Err(BookError::mismatch(
                EVENT,
                format!("{} already has a hold", e.txn),
            ));
        }
        if !self.profiles.contains_key(&e.profile) {
            return Err(BookError::mismatch(EVENT, format!("unknown {}", e.profile)));
        }
        check_legs(EVENT, &e.legs, e.currency, false)?;
        self.check_open(EVENT, e.open.as_ref(), e.profile, e.currency)?;
        let mut deltas = Deltas::new(EVENT);
        deltas.hold(&e.legs, 1)?;
        self.apply_deltas(&deltas, e.profile, e.open.as_ref(), e.flagged)?;
        let hold = Hold {
            profile: e.profile,
            currency: e.currency,
            legs: e.legs,
            flagged: e.flagged,
        };
        self.holds.insert(e.txn, hold);
        Ok(())
    }

    /// Applies [`LedgerEvent::Authorised`] `e` (what [`Book::apply`] does with it), for a
    /// caller that holds the event without its enum: the hold and the usage of one
    /// approval, all or nothing. The usage is checked first, then the hold is checked and
    /// written, then the usage is written (which cannot fail).
    pub fn apply_authorised(&mut self, e: &Authorised) -> Result<(), BookError> {
        if e.hold.txn != e.usage.txn {
            let why = format!("hold of {} with usage of {}", e.hold.txn, e.usage.txn);
            return Err(BookError::mismatch("Authorised", why));
        }
        if let ([leg], None) = (e.hold.legs.as_slice(), e.hold.open) {
            if leg.currency == e.hold.currency {
                return self.apply_authorised_own(e, leg);
            }
        }
        let counted = self.usage_added_checked(&e.usage)?;
        self.apply_hold_placed(&e.hold)?;
        self.write_usage_added(&e.usage, counted);
        Ok(())
    }

    /// [`Book::apply_authorised`] for the usual shape, one leg on the transaction-currency
    /// balance and no balance to open: the same checks, with every table looked up once.
    fn apply_authorised_own(&mut self, e: &Authorised, leg: &Leg) -> Result<(), BookError> {
        const EVENT: &str = "Authorised";
        let (hold, usage) = (&e.hold, &e.usage);
        let bad = |why: &str| BookError::mismatch(EVENT, format!("{}: {why}", hold.txn));
        // What `check_legs` asks of a leg in the transaction currency.
        let own_ok = leg.covers_minor > 0
            && leg.held_minor == leg.covers_minor
            && leg.fee_minor == 0
            && is_one(leg.rate);
        if !own_ok {
            return Err(bad("malformed leg"));
        }
        let Entry::Vacant(hold_slot) = self.holds.entry(hold.txn) else {
            return Err(bad("already has a hold"));
        };
        let Entry::Vacant(usage_slot) = self.usage_records.entry(usage.txn) else {
            return Err(bad("usage already recorded"));
        };
        let card = self.cards.get_mut(&usage.card);
        let card = card.ok_or_else(|| bad("unknown card"))?;
        let profile = self.profiles.get_mut(&card.profile);
        let profile = profile.ok_or_else(|| bad("unknown profile"))?;
        let balance = self.balances.get_mut(&leg.balance);
        let balance = balance.ok_or_else(|| bad("unknown balance"))?;
        let type_usage = &mut profile.usage[usage.limit_type.index()];
        let counted = Counted {
            amounts: &usage.amounts,
            daily: usage.daily,
            monthly: usage.monthly,
            windows: AppliedWindows(AppliedWindows::ALL),
        };
        let (card_after, type_after) =
            counters_after(EVENT, usage.txn, card, type_usage, &counted)?;
        // The balance's owner is checked against the hold's profile; a balance's profile is
        // always open.
        let d = Delta {
            balance: leg.balance,
            currency: Some(leg.currency),
            cash_minor: 0,
            reserved_minor: leg.held_minor,
        };
        let balance_after = balance_after(balance, &d, hold.profile, hold.flagged, EVENT)?;
        *balance = balance_after;
        *card = card_after;
        *type_usage = type_after;
        hold_slot.insert(Hold {
            profile: hold.profile,
            currency: hold.currency,
            legs: hold.legs,
            flagged: hold.flagged,
        });
        usage_slot.insert(UsageRecord::new(
            usage.card,
            usage.limit_type,
            usage.currency,
            usage.amounts,
            usage.daily,
            usage.monthly,
        ));
        Ok(())
    }

    fn apply_hold_resized(&mut self, e: &HoldResized) -> Result<(), BookError> {
        const EVENT: &str = "HoldResized";
        let hold = self
            .holds
            .get(&e.txn)
            .ok_or_else(|| no_hold(EVENT, e.txn))?;
        let (profile, currency) = (hold.profile, hold.currency);
        check_legs(EVENT, &e.legs, currency, false)?;
        let mut deltas = Deltas::new(EVENT);
        deltas.hold(&hold.legs, -1)?;
        deltas.hold(&e.legs, 1)?;
        self.check_open(EVENT, e.open.as_ref(), profile, currency)?;
        self.apply_deltas(&deltas, profile, e.open.as_ref(), e.flagged)?;
        if let Some(h) = self.holds.get_mut(&e.txn) {
            h.legs = e.legs;
            h.flagged |= e.flagged;
        }
        Ok(())
    }

    fn apply_hold_released(&mut self, txn: TxnId) -> Result<(), BookError> {
        const EVENT: &str = "HoldReleased";
        let hold = self.holds.get(&txn).ok_or_else(|| no_hold(EVENT, txn))?;
        let profile = hold.profile;
        let mut deltas = Deltas::new(EVENT);
        deltas.hold(&hold.legs, -1)?;
        self.apply_deltas(&deltas, profile, None, false)?;
        self.holds.remove(&txn);
        Ok(())
    }

    fn apply_captured(&mut self, e: &Captured) -> Result<(), BookError> {
        const EVENT: &str = "Captured";
        let hold = self
            .holds
            .get(&e.txn)
            .ok_or_else(|| no_hold(EVENT, e.txn))?;
        let (profile, currency) = (hold.profile, hold.currency);
        if e.currency != currency {
            return Err(BookError::mismatch(EVENT, "not in the hold's currency"));
        }
        check_legs(EVENT, &e.posted, currency, true)?;
        let mut deltas = Deltas::new(EVENT);
        deltas.hold(&hold.legs, -1)?;
        deltas.post(&e.posted)?;
        if let Some(x) = e.excess {
            if x.amount.currency != currency || x.amount.amount_minor <= 0 {
                return Err(BookError::mismatch(
                    EVENT,
                    "the excess is not a positive amount",
                ));
            }
            deltas.add(x.balance, currency, -x.amount.amount_minor, 0)?;
        }
        self.check_open(EVENT, e.open.as_ref(), profile, currency)?;
        self.apply_deltas(&deltas, profile, e.open.as_ref(), e.flagged)?;
        self.add_postings(&e.posted);
        if let Some(x) = e.excess {
            let totals = self.totals_mut(currency);
            let amount = i128::from(x.amount.amount_minor);
            totals.postings_minor = totals.postings_minor.saturating_add(amount);
        }
        self.holds.remove(&e.txn);
        Ok(())
    }

    fn apply_posted(&mut self, e: &Posted) -> Result<(), BookError> {
        const EVENT: &str = "Posted";
        if self.holds.contains_key(&e.txn) {
            return Err(BookError::mismatch(
                EVENT,
                format!("{} has a live hold", e.txn),
            ));
        }
        if !self.profiles.contains_key(&e.profile) {
            return Err(BookError::mismatch(EVENT, format!("unknown {}", e.profile)));
        }
        check_legs(EVENT, &e.posted, e.currency, false)?;
        self.check_open(EVENT, e.open.as_ref(), e.profile, e.currency)?;
        let mut deltas = Deltas::new(EVENT);
        deltas.post(&e.posted)?;
        self.apply_deltas(&deltas, e.profile, e.open.as_ref(), e.flagged)?;
        self.add_postings(&e.posted);
        Ok(())
    }

    /// Checks a balance an event opens: unused id, known profile (the event's owner), no
    /// balance in that currency yet, room for one more.
    fn check_open(
        &self,
        event: &'static str,
        open: Option<&OpenBalance>,
        owner: ProfileId,
        currency: Currency,
    ) -> Result<(), BookError> {
        let Some(open) = open else { return Ok(()) };
        let bad =
            |why: &str| BookError::mismatch(event, format!("opening {}: {why}", open.balance));
        if open.profile != owner || open.currency != currency {
            return Err(bad("not the event's profile and currency"));
        }
        if self.balances.contains_key(&open.balance) {
            return Err(bad("the id is in use"));
        }
        let entry = self
            .profiles
            .get(&open.profile)
            .ok_or_else(|| bad("unknown profile"))?;
        if entry.balances.iter().any(|(c, _)| *c == open.currency) {
            return Err(bad("the profile has a balance in that currency"));
        }
        if entry.balances.len() >= PROFILE_BALANCES_MAX {
            return Err(bad("the profile has too many balances"));
        }
        Ok(())
    }

    /// Applies `deltas` to their balances (opening `open` first), all or nothing: every
    /// balance must belong to `owner`, be in the currency the event says, and neither
    /// overflow nor reserve below zero. A balance left below zero by a flagged event is
    /// marked overdrawn; one at zero or above is not.
    fn apply_deltas(
        &mut self,
        deltas: &Deltas,
        owner: ProfileId,
        open: Option<&OpenBalance>,
        flagged: bool,
    ) -> Result<(), BookError> {
        let items = &deltas.items[..deltas.len];
        if let ([d], None) = (items, open) {
            // One balance (a single-currency hold or capture): check and write in one
            // lookup; nothing is written unless the check passes.
            let b = self.balances.get_mut(&d.balance);
            let b = b.ok_or_else(|| mismatch(deltas.event, d, "unknown balance"))?;
            *b = balance_after(b, d, owner, flagged, deltas.event)?;
            return Ok(());
        }
        for d in items {
            let base = self.delta_base(d, open, deltas.event)?;
            balance_after(&base, d, owner, flagged, deltas.event)?;
        }
        if let Some(open) = open {
            self.insert_balance(open);
        }
        for d in items {
            if let Some(b) = self.balances.get_mut(&d.balance) {
                // Checked above: this cannot fail, and a failure would leave `b` as it is.
                *b = balance_after(b, d, owner, flagged, deltas.event).unwrap_or(*b);
            }
        }
        Ok(())
    }

    /// The balance a delta applies to: an existing one, or the one the event opens.
    fn delta_base(
        &self,
        d: &Delta,
        open: Option<&OpenBalance>,
        event: &'static str,
    ) -> Result<Balance, BookError> {
        match (self.balances.get(&d.balance), open) {
            (Some(b), _) => Ok(*b),
            (None, Some(o)) if o.balance == d.balance => Ok(Balance::opened(o)),
            (None, _) => Err(mismatch(event, d, "unknown balance")),
        }
    }

    /// Adds an empty balance; [`Book::check_open`] has been passed.
    fn insert_balance(&mut self, open: &OpenBalance) {
        if let Some(entry) = self.profiles.get_mut(&open.profile) {
            entry.balances.push((open.currency, open.balance));
        }
        self.balances.insert(open.balance, Balance::opened(open));
        let next = open.balance.0.saturating_add(self.balance_id_step);
        self.next_balance_id = self.next_balance_id.max(next);
    }

    fn add_postings(&mut self, legs: &Legs) {
        for leg in legs {
            let totals = self.totals_mut(leg.currency);
            totals.postings_minor = totals
                .postings_minor
                .saturating_add(i128::from(leg.held_minor));
        }
    }

    fn totals_mut(&mut self, currency: Currency) -> &mut CurrencyTotals {
        let i = match self.totals.binary_search_by(|t| t.currency.cmp(&currency)) {
            Ok(i) => i,
            Err(i) => {
                self.totals.insert(i, CurrencyTotals::zero(currency));
                i
            }
        };
        &mut self.totals[i]
    }
}

/// The balance after `d`, checked.
fn balance_after(
    b: &Balance,
    d: &Delta,
    owner: ProfileId,
    flagged: bool,
    event: &'static str,
) -> Result<Balance, BookError> {
    if b.profile != owner {
        return Err(mismatch(event, d, "belongs to another profile"));
    }
    if Some(b.currency) != d.currency {
        return Err(mismatch(event, d, "the event has it in another currency"));
    }
    let cash = b.cash_minor.checked_add(d.cash_minor);
    let reserved = b.reserved_minor.checked_add(d.reserved_minor);
    let change = d.cash_minor.checked_sub(d.reserved_minor);
    let available = change.and_then(|c| b.available_minor.checked_add(c));
    let (Some(cash_minor), Some(reserved_minor), Some(available_minor)) =
        (cash, reserved, available)
    else {
        return Err(BookError::Overflow { what: "balance" });
    };
    if reserved_minor < 0 {
        return Err(mismatch(event, d, "reserved would go below zero"));
    }
    let overdrawn = available_minor < 0 && (b.overdrawn || flagged);
    Ok(Balance {
        cash_minor,
        reserved_minor,
        available_minor,
        overdrawn,
        ..*b
    })
}

fn mismatch(event: &'static str, d: &Delta, why: &str) -> BookError {
    BookError::mismatch(event, format!("{}: {why}", d.balance))
}

fn no_hold(event: &'static str, txn: TxnId) -> BookError {
    BookError::mismatch(event, format!("{txn} has no hold"))
}

/// The shape of legs: positive amounts, a fee within the held amount, the transaction-
/// currency leg at rate 1 without fee, at most one of it, at most [`CONVERSION_LEGS_MAX`]
/// others, each holding exactly what its rate and fee give. `may_be_empty` for a clearing
/// at zero.
pub(crate) fn check_legs(
    event: &'static str,
    legs: &Legs,
    txn_currency: Currency,
    may_be_empty: bool,
) -> Result<(), BookError> {
    let bad = |why: String| Err(BookError::mismatch(event, why));
    if legs.is_empty() && !may_be_empty {
        return bad("no legs".to_owned());
    }
    let mut own = 0;
    for leg in legs {
        let amounts_ok = leg.covers_minor > 0 && leg.held_minor > 0;
        let shape_ok = if leg.currency == txn_currency {
            own += 1;
            leg.held_minor == leg.covers_minor && leg.fee_minor == 0 && is_one(leg.rate)
        } else {
            conversion_consistent(leg, txn_currency)
        };
        if !amounts_ok || !shape_ok {
            return bad(format!("malformed leg on {}", leg.balance));
        }
    }
    if own > 1 {
        return bad("two legs in the transaction currency".to_owned());
    }
    if legs.len() - own > CONVERSION_LEGS_MAX {
        return bad(format!("more than {CONVERSION_LEGS_MAX} conversion legs"));
    }
    Ok(())
}

/// The rate of a leg in the transaction currency. Decisions write `Decimal::ONE` itself, so
/// the cheap test on its parts nearly always decides; `1.0` and the like are accepted too.
fn is_one(rate: Decimal) -> bool {
    (rate.scale() == 0 && rate.mantissa() == 1) || rate == Decimal::ONE
}

/// A conversion leg holds exactly what covers its amount at its rate and fee (every
/// decision computes it so; a shrunk or merged leg is recomputed), with a usable rate.
fn conversion_consistent(leg: &Leg, txn_currency: Currency) -> bool {
    if leg.rate <= Decimal::ZERO || leg.fee_ppm > FEE_PPM_MAX || leg.fee_minor < 0 {
        return false;
    }
    let covers = Money::new(leg.covers_minor, txn_currency);
    source_amount(covers, leg.currency, leg.rate, leg.fee_ppm)
        .is_ok_and(|(held, fee)| held == leg.held_minor && fee == leg.fee_minor)
}
