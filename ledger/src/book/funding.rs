//! Decisions that move money on a transaction's behalf: holds, their growth and shrinking,
//! release, capture and single-message posting. The rules are in the
//! [book's documentation](super#funding-and-smart-conversion).

use cardcore_core::{Currency, Money, ProfileId, TxnId};
use rust_decimal::Decimal;

use super::event::{Captured, Excess, HoldPlaced, HoldResized, LedgerEvent, Posted, ReleaseCause};
use super::fx::{max_coverable, source_amount, FundingPrefs, FxQuote, FxRates};
use super::legs::{Leg, Legs};
use super::{positive, Balance, Book, BookError, OpenBalance, ProfileBook, CONVERSION_LEGS_MAX};

/// Whether funding may go past available funds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Checked,
    /// The network already approved (stand-in advice, clearing without a hold).
    Forced,
}

/// A balance smart conversion may take from.
struct Candidate {
    balance: Balance,
    quote: FxQuote,
    is_default: bool,
    /// Available, in the transaction currency's major units.
    value: Decimal,
}

impl Book {
    /// Holds `amount` for an approved authorisation. Refused with
    /// [`BookError::InsufficientFunds`] when the balances the card may use cannot cover it.
    pub fn plan_hold<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        profile: ProfileId,
        amount: Money,
        prefs: &FundingPrefs,
        rates: &R,
    ) -> Result<LedgerEvent, BookError> {
        self.place(txn, profile, amount, prefs, rates, Mode::Checked)
    }

    /// Holds `amount` for a stand-in advice: funded as far as possible like
    /// [`Book::plan_hold`], the rest past available funds on the transaction-currency
    /// balance (flagged).
    pub fn plan_forced_hold<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        profile: ProfileId,
        amount: Money,
        prefs: &FundingPrefs,
        rates: &R,
    ) -> Result<LedgerEvent, BookError> {
        self.place(txn, profile, amount, prefs, rates, Mode::Forced)
    }

    /// Grows a hold by `added` (incremental authorisation), funded like a new hold.
    pub fn plan_grow<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        added: Money,
        prefs: &FundingPrefs,
        rates: &R,
    ) -> Result<LedgerEvent, BookError> {
        self.grow(txn, added, prefs, rates, Mode::Checked)
    }

    /// Grows a hold by `added` for an incremental stand-in advice (flagged if past funds).
    pub fn plan_forced_grow<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        added: Money,
        prefs: &FundingPrefs,
        rates: &R,
    ) -> Result<LedgerEvent, BookError> {
        self.grow(txn, added, prefs, rates, Mode::Forced)
    }

    /// Shrinks a hold to `final_amount` (partial reversal). Zero releases it; above the
    /// hold is refused (grow it instead); equal changes nothing.
    pub fn plan_adjust_to(
        &self,
        txn: TxnId,
        final_amount: Money,
    ) -> Result<LedgerEvent, BookError> {
        let hold = self.holds.get(&txn).ok_or(BookError::UnknownHold(txn))?;
        same_currency("reversal", hold.currency, final_amount)?;
        not_negative("reversal amount", final_amount)?;
        if i128::from(final_amount.amount_minor) > hold.legs.covers_minor() {
            let held = hold.amount();
            return Err(BookError::AdjustAboveHold {
                txn,
                held,
                requested: final_amount,
            });
        }
        if final_amount.is_zero() {
            return Ok(LedgerEvent::HoldReleased {
                txn,
                cause: ReleaseCause::Reversed,
            });
        }
        let mut legs = hold.legs;
        shrink(&mut legs, hold.currency, final_amount.amount_minor)?;
        Ok(LedgerEvent::HoldResized(HoldResized {
            txn,
            legs,
            open: None,
            flagged: false,
        }))
    }

    /// Releases a hold in full (reversal to zero).
    pub fn plan_release(&self, txn: TxnId) -> Result<LedgerEvent, BookError> {
        self.release(txn, ReleaseCause::Reversed)
    }

    /// Releases a hold that was not cleared in time.
    pub fn plan_expire(&self, txn: TxnId) -> Result<LedgerEvent, BookError> {
        self.release(txn, ReleaseCause::Expired)
    }

    /// Clears a hold at `final_amount`. Below the hold, the hold shrinks (as in
    /// [`Book::plan_adjust_to`]) and the rest is posted at the rates fixed at authorisation.
    /// Above it, the whole hold is posted and the excess is taken from the
    /// transaction-currency balance even past available funds (flagged if it goes below
    /// zero); a profile without such a balance gets one opened at zero.
    pub fn plan_capture(&self, txn: TxnId, final_amount: Money) -> Result<LedgerEvent, BookError> {
        let hold = self.holds.get(&txn).ok_or(BookError::UnknownHold(txn))?;
        same_currency("clearing", hold.currency, final_amount)?;
        not_negative("clearing amount", final_amount)?;
        let currency = hold.currency;
        let over = i128::from(final_amount.amount_minor) - hold.legs.covers_minor();
        let captured = Captured {
            txn,
            currency,
            posted: hold.legs,
            excess: None,
            open: None,
            flagged: false,
        };
        // Built in place and edited there: the legs are copied once.
        let mut event = LedgerEvent::Captured(captured);
        let LedgerEvent::Captured(captured) = &mut event else {
            return Err(BookError::Overflow { what: "clearing" });
        };
        if over <= 0 {
            shrink(&mut captured.posted, currency, final_amount.amount_minor)?;
            return Ok(event);
        }
        let excess_minor =
            i64::try_from(over).map_err(|_| BookError::Overflow { what: "clearing" })?;
        let (balance, open) = self.balance_or_open(hold.profile, currency)?;
        let available = self.balances.get(&balance).map_or(0, |b| b.available_minor);
        captured.excess = Some(Excess {
            balance,
            amount: Money::new(excess_minor, currency),
        });
        captured.open = open;
        captured.flagged = available < excess_minor;
        Ok(event)
    }

    /// Posts `amount` at once for a single-message transaction (0200), funded like
    /// [`Book::plan_hold`].
    pub fn plan_post<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        profile: ProfileId,
        amount: Money,
        prefs: &FundingPrefs,
        rates: &R,
    ) -> Result<LedgerEvent, BookError> {
        self.post(txn, profile, amount, prefs, rates, Mode::Checked)
    }

    /// Posts `amount` at once even past available funds (flagged): a clearing whose hold
    /// has expired, funded like [`Book::plan_forced_hold`] at today's rates (the
    /// authorisation's rates went with the hold).
    pub fn plan_forced_post<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        profile: ProfileId,
        amount: Money,
        prefs: &FundingPrefs,
        rates: &R,
    ) -> Result<LedgerEvent, BookError> {
        self.post(txn, profile, amount, prefs, rates, Mode::Forced)
    }

    /// [`Book::plan_hold`], written into `out` (an [`Authorised`](super::Authorised)
    /// event's hold, say) instead of returned: a hold is a few hundred bytes, and the
    /// approval path does not copy it around. On a refusal `out` is left half-written.
    pub fn plan_hold_into<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        profile: ProfileId,
        amount: Money,
        prefs: &FundingPrefs,
        rates: &R,
        out: &mut HoldPlaced,
    ) -> Result<(), BookError> {
        self.place_into(txn, profile, amount, prefs, rates, Mode::Checked, out)
    }

    fn place<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        profile: ProfileId,
        amount: Money,
        prefs: &FundingPrefs,
        rates: &R,
        mode: Mode,
    ) -> Result<LedgerEvent, BookError> {
        let mut event = LedgerEvent::HoldPlaced(HoldPlaced::empty(txn, profile, amount.currency));
        if let LedgerEvent::HoldPlaced(placed) = &mut event {
            self.place_into(txn, profile, amount, prefs, rates, mode, placed)?;
        }
        Ok(event)
    }

    #[allow(clippy::too_many_arguments)]
    fn place_into<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        profile: ProfileId,
        amount: Money,
        prefs: &FundingPrefs,
        rates: &R,
        mode: Mode,
        out: &mut HoldPlaced,
    ) -> Result<(), BookError> {
        if self.holds.contains_key(&txn) {
            return Err(BookError::HoldExists(txn));
        }
        positive("hold amount", amount)?;
        // Field by field: the event is a few hundred bytes, and is written where it lies.
        out.txn = txn;
        out.profile = profile;
        out.currency = amount.currency;
        out.legs.clear();
        let (open, flagged) = self.fund(txn, profile, amount, &mut out.legs, prefs, rates, mode)?;
        out.open = open;
        out.flagged = flagged;
        Ok(())
    }

    fn grow<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        added: Money,
        prefs: &FundingPrefs,
        rates: &R,
        mode: Mode,
    ) -> Result<LedgerEvent, BookError> {
        let hold = self.holds.get(&txn).ok_or(BookError::UnknownHold(txn))?;
        same_currency("incremental authorisation", hold.currency, added)?;
        positive("incremental amount", added)?;
        if hold.legs.covers_minor() + i128::from(added.amount_minor) > i128::from(i64::MAX) {
            return Err(BookError::Overflow {
                what: "hold amount",
            });
        }
        let mut resized = HoldResized {
            txn,
            legs: hold.legs,
            open: None,
            flagged: false,
        };
        let (open, flagged) = self.fund(
            txn,
            hold.profile,
            added,
            &mut resized.legs,
            prefs,
            rates,
            mode,
        )?;
        resized.open = open;
        resized.flagged = flagged;
        Ok(LedgerEvent::HoldResized(resized))
    }

    fn release(&self, txn: TxnId, cause: ReleaseCause) -> Result<LedgerEvent, BookError> {
        if !self.holds.contains_key(&txn) {
            return Err(BookError::UnknownHold(txn));
        }
        Ok(LedgerEvent::HoldReleased { txn, cause })
    }

    fn post<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        profile: ProfileId,
        amount: Money,
        prefs: &FundingPrefs,
        rates: &R,
        mode: Mode,
    ) -> Result<LedgerEvent, BookError> {
        if self.holds.contains_key(&txn) {
            return Err(BookError::HoldExists(txn));
        }
        positive("posting amount", amount)?;
        let mut posted = Posted {
            txn,
            profile,
            currency: amount.currency,
            posted: Legs::new(),
            open: None,
            flagged: false,
        };
        let (open, flagged) =
            self.fund(txn, profile, amount, &mut posted.posted, prefs, rates, mode)?;
        posted.open = open;
        posted.flagged = flagged;
        Ok(LedgerEvent::Posted(posted))
    }

    /// Funds `need` by adding to `legs` (a new hold's empty legs, or a growing hold's);
    /// returns the balance to open first, if any, and whether it went past available funds.
    /// See the module documentation.
    #[allow(clippy::too_many_arguments)]
    fn fund<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        profile: ProfileId,
        need: Money,
        legs: &mut Legs,
        prefs: &FundingPrefs,
        rates: &R,
        mode: Mode,
    ) -> Result<(Option<OpenBalance>, bool), BookError> {
        let entry = self
            .profiles
            .get(&profile)
            .ok_or(BookError::UnknownProfile(profile))?;
        let currency = need.currency;
        let mut remaining = need.amount_minor;
        let own = entry.balances.iter().find(|(c, _)| *c == currency);
        let own = own.and_then(|(_, id)| self.balances.get(id));
        if let Some(b) = own {
            let take = remaining.min(b.available_minor.max(0));
            if take > 0 {
                add_own(legs, b.id, currency, take, txn)?;
                remaining -= take;
            }
        }
        if remaining > 0 && prefs.smart_conversion {
            let short = Money::new(remaining, currency);
            remaining = self.convert(txn, entry, short, legs, prefs, rates, mode)?;
        }
        if remaining == 0 {
            return Ok((None, false));
        }
        if mode == Mode::Checked {
            return Err(BookError::InsufficientFunds {
                txn,
                shortfall: Money::new(remaining, currency),
                smart_conversion_blocked: !prefs.smart_conversion,
            });
        }
        let (balance, open) = match own {
            Some(b) => (b.id, None),
            None => {
                let open = self.new_balance(profile, currency)?;
                (open.balance, Some(open))
            }
        };
        add_own(legs, balance, currency, remaining, txn)?;
        Ok((open, true))
    }

    /// Covers `short` from the profile's other balances; returns what is still short.
    #[allow(clippy::too_many_arguments)]
    fn convert<R: FxRates + ?Sized>(
        &self,
        txn: TxnId,
        entry: &ProfileBook,
        short: Money,
        legs: &mut Legs,
        prefs: &FundingPrefs,
        rates: &R,
        mode: Mode,
    ) -> Result<i64, BookError> {
        let mut remaining = short.amount_minor;
        for c in self.conversion_candidates(entry, short.currency, prefs, rates) {
            if remaining == 0 {
                break;
            }
            let need = Money::new(remaining, short.currency);
            let (covers, held, fee) =
                max_coverable(need, c.balance.currency, c.quote, c.balance.available_minor)?;
            if covers == 0 {
                continue;
            }
            let leg = Leg {
                balance: c.balance.id,
                currency: c.balance.currency,
                held_minor: held,
                fee_minor: fee,
                covers_minor: covers,
                rate: c.quote.rate,
                fee_ppm: c.quote.fee_ppm,
            };
            if !add_conversion(legs, leg, short.currency)? {
                match mode {
                    Mode::Checked => {
                        return Err(BookError::TooManyLegs {
                            txn,
                            max: CONVERSION_LEGS_MAX,
                        })
                    }
                    Mode::Forced => break,
                }
            }
            remaining -= covers;
        }
        Ok(remaining)
    }

    /// The other balances smart conversion may use, in the order it uses them.
    fn conversion_candidates<R: FxRates + ?Sized>(
        &self,
        entry: &ProfileBook,
        txn_currency: Currency,
        prefs: &FundingPrefs,
        rates: &R,
    ) -> Vec<Candidate> {
        let mut out = Vec::with_capacity(entry.balances.len());
        for (currency, id) in &entry.balances {
            if *currency == txn_currency {
                continue;
            }
            let Some(balance) = self.balances.get(id).filter(|b| b.available_minor > 0) else {
                continue;
            };
            let Some(quote) = rates
                .quote(txn_currency, *currency)
                .filter(FxQuote::is_usable)
            else {
                continue;
            };
            let value = balance.available().to_decimal().checked_div(quote.rate);
            out.push(Candidate {
                balance: *balance,
                quote,
                is_default: prefs.default_currency == Some(*currency),
                value: value.unwrap_or(Decimal::MAX),
            });
        }
        out.sort_by(|a, b| {
            (b.is_default.cmp(&a.is_default))
                .then(b.value.cmp(&a.value))
                .then(a.balance.id.cmp(&b.balance.id))
        });
        out
    }
}

/// Adds to the transaction-currency leg, or starts it.
fn add_own(
    legs: &mut Legs,
    balance: cardcore_core::BalanceId,
    currency: Currency,
    amount_minor: i64,
    txn: TxnId,
) -> Result<(), BookError> {
    let overflow = || BookError::Overflow {
        what: "hold amount",
    };
    if let Some(i) = legs.own_index(currency) {
        let leg = legs.get_mut(i);
        leg.held_minor = leg
            .held_minor
            .checked_add(amount_minor)
            .ok_or_else(overflow)?;
        leg.covers_minor = leg
            .covers_minor
            .checked_add(amount_minor)
            .ok_or_else(overflow)?;
        return Ok(());
    }
    legs.push(Leg::own(balance, currency, amount_minor))
        .map_err(|_| BookError::TooManyLegs {
            txn,
            max: CONVERSION_LEGS_MAX,
        })
}

/// Adds a conversion leg, merged into one on the same balance at the same rate and fee (the
/// merged leg is recomputed from what it covers, which never holds more than the two parts
/// did, since both roundings are upwards). `Ok(false)`: no slot left for another leg.
fn add_conversion(legs: &mut Legs, leg: Leg, txn_currency: Currency) -> Result<bool, BookError> {
    let same = |l: &Leg| l.balance == leg.balance && l.rate == leg.rate && l.fee_ppm == leg.fee_ppm;
    if let Some(i) = legs.iter().position(same) {
        let l = legs.get_mut(i);
        let covers_minor = l.covers_minor.checked_add(leg.covers_minor);
        let covers_minor = covers_minor.ok_or(BookError::Overflow {
            what: "conversion leg",
        })?;
        let covers = Money::new(covers_minor, txn_currency);
        let (held_minor, fee_minor) = source_amount(covers, l.currency, l.rate, l.fee_ppm)?;
        *l = Leg {
            covers_minor,
            held_minor,
            fee_minor,
            ..*l
        };
        return Ok(true);
    }
    if legs.conversion_count(txn_currency) >= CONVERSION_LEGS_MAX {
        return Ok(false);
    }
    Ok(legs.push(leg).is_ok())
}

/// Shrinks `legs` to cover `target_minor` (≤ what they cover): conversion legs first,
/// newest first, then the transaction-currency leg. Emptied legs are removed.
fn shrink(legs: &mut Legs, currency: Currency, target_minor: i64) -> Result<(), BookError> {
    let mut excess = legs.covers_minor() - i128::from(target_minor);
    let mut i = legs.len();
    while i > 0 && excess > 0 {
        i -= 1;
        let leg = legs.as_slice()[i];
        if leg.currency == currency {
            continue;
        }
        if i128::from(leg.covers_minor) <= excess {
            excess -= i128::from(leg.covers_minor);
            legs.remove(i);
            continue;
        }
        // 0 < excess < covers_minor, so the difference is a positive i64.
        let covers_minor = leg.covers_minor - excess as i64;
        let covers = Money::new(covers_minor, currency);
        let (held_minor, fee_minor) = source_amount(covers, leg.currency, leg.rate, leg.fee_ppm)?;
        *legs.get_mut(i) = Leg {
            covers_minor,
            held_minor,
            fee_minor,
            ..leg
        };
        excess = 0;
    }
    if excess <= 0 {
        return Ok(());
    }
    let overflow = BookError::Overflow {
        what: "shrinking a hold",
    };
    let i = legs.own_index(currency).ok_or(overflow.clone())?;
    let leg = legs.get_mut(i);
    let left = i64::try_from(i128::from(leg.covers_minor) - excess).map_err(|_| overflow)?;
    if left <= 0 {
        legs.remove(i);
    } else {
        leg.covers_minor = left;
        leg.held_minor = left;
    }
    Ok(())
}

fn same_currency(what: &'static str, expected: Currency, amount: Money) -> Result<(), BookError> {
    if amount.currency != expected {
        return Err(BookError::CurrencyMismatch {
            what,
            expected,
            got: amount.currency,
        });
    }
    Ok(())
}

fn not_negative(what: &'static str, amount: Money) -> Result<(), BookError> {
    if amount.is_negative() {
        return Err(BookError::NegativeAmount { what, amount });
    }
    Ok(())
}
