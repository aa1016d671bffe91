//! The simulator's own ledger: what every balance must hold given the opening top-ups and
//! what the engine *answered*, and the end-of-run reconciliation against the engine.
//!
//! The model does not decide anything: approvals and declines come from the answers. It
//! only applies the engine's documented money rules (DESIGN.md, "Transactions and their
//! states" and step 12) to the approved messages, in the order each profile's messages
//! were sent:
//! - an approved authorisation (0100) holds its amount: available down, reserved up; a
//!   refund (credit) authorisation holds nothing;
//! - a stand-in advice (0120) holds the same way, whatever the funds (available may go
//!   below zero);
//! - a single-message request (0200) posts at once: cash and available down, or up for a
//!   refund;
//! - an incremental authorisation grows the hold and restarts its expiry;
//! - a clearing releases the hold and posts the cleared amount, lower or higher than the
//!   hold; a clearing of a cancelled (reversed or expired) authorisation posts all the
//!   same; a refund's clearing credits;
//! - a reversal shrinks the hold to the final amount; to zero it cancels; reversing a
//!   cancelled authorisation changes nothing;
//! - a hold not cleared `hold_ms` (7 days; 30 for pre-authorisations) after its last
//!   authorisation is released when the engine clock passes that time.
//!
//! Every amount lands on the balance in the message's own currency: the generator keeps
//! every transaction in a currency the profile holds, and cards of multi-currency
//! profiles do not convert (see [`super::population`]).

use std::collections::{BTreeMap, HashMap};

use cardcore_core::{Currency, Money, ProfileId, Timestamp};
use serde::Serialize;

use super::generator::{Effect, OpenMode};
use super::population::Population;
use crate::scenario::{BalanceView, TargetError};

/// Mismatches a [`Reconciliation`] lists in full; the rest are only counted.
pub const MISMATCHES_KEPT_MAX: usize = 50;

/// How long the engine keeps an uncleared hold (its `Lifecycle` configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HoldTtl {
    pub hold_ms: i64,
    pub pre_auth_ms: i64,
}

impl Default for HoldTtl {
    /// 7 days, 30 for pre-authorisations (DESIGN.md).
    fn default() -> HoldTtl {
        HoldTtl {
            hold_ms: 7 * Timestamp::MS_PER_DAY,
            pre_auth_ms: 30 * Timestamp::MS_PER_DAY,
        }
    }
}

/// A balance in minor units of its currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Amounts {
    pub available: i64,
    pub reserved: i64,
    pub cash: i64,
}

impl From<BalanceView> for Amounts {
    fn from(v: BalanceView) -> Amounts {
        Amounts {
            available: v.available.amount_minor,
            reserved: v.reserved.amount_minor,
            cash: v.cash.amount_minor,
        }
    }
}

/// What the model applied, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LedgerStats {
    pub holds: u64,
    pub posted: u64,
    pub credited: u64,
    pub increments: u64,
    pub clearings: u64,
    pub reversals: u64,
    pub expired: u64,
    /// Approvals the model cannot place: a follow-up approved for a transaction it holds
    /// no open authorisation for. Any of these means the model and the engine disagree.
    pub unexplained: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnState {
    InProgress,
    Cancelled,
}

/// A transaction the model must remember: one that is open or cancelled (a cancelled one
/// may still be cleared). Completed and declined ones are forgotten.
#[derive(Debug, Clone, Copy)]
struct ModelTxn {
    profile: u32,
    currency: Currency,
    /// The hold in minor units (0 for a credit).
    hold: i64,
    credit: bool,
    pre_auth: bool,
    state: TxnState,
    /// When the engine releases the hold.
    expires_at: Timestamp,
}

/// The expected ledger. See the module documentation.
#[derive(Debug, Clone)]
pub struct ExpectedLedger {
    balances: BTreeMap<(u32, Currency), Amounts>,
    txns: HashMap<u64, ModelTxn>,
    engine_now: Timestamp,
    ttl: HoldTtl,
    stats: LedgerStats,
}

impl ExpectedLedger {
    /// The opening position: every balance of the population topped up, nothing held, the
    /// engine clock at the population's start.
    pub fn new(population: &Population, ttl: HoldTtl) -> ExpectedLedger {
        let mut ledger = ExpectedLedger::empty(population.config.start, ttl);
        for (i, profile) in population.profiles.iter().enumerate() {
            for &amount in &profile.balances {
                ledger.top_up(i as u32, amount);
            }
        }
        ledger
    }

    pub fn empty(engine_now: Timestamp, ttl: HoldTtl) -> ExpectedLedger {
        ExpectedLedger {
            balances: BTreeMap::new(),
            txns: HashMap::new(),
            engine_now,
            ttl,
            stats: LedgerStats::default(),
        }
    }

    /// Opens the balance if needed and adds `amount` to it.
    pub fn top_up(&mut self, profile: u32, amount: Money) {
        let b = self.balances.entry((profile, amount.currency)).or_default();
        b.cash = b.cash.saturating_add(amount.amount_minor);
        b.available = b.available.saturating_add(amount.amount_minor);
    }

    pub fn balance(&self, profile: u32, currency: Currency) -> Option<Amounts> {
        self.balances.get(&(profile, currency)).copied()
    }

    /// Every balance the model knows, by (profile index, currency).
    pub fn balances(&self) -> impl Iterator<Item = ((u32, Currency), Amounts)> + '_ {
        self.balances.iter().map(|(&k, &v)| (k, v))
    }

    /// Overwrites a balance: for tests that check the reconciliation itself.
    pub fn set_balance(&mut self, profile: u32, currency: Currency, amounts: Amounts) {
        self.balances.insert((profile, currency), amounts);
    }

    pub fn stats(&self) -> LedgerStats {
        self.stats
    }

    pub fn engine_now(&self) -> Timestamp {
        self.engine_now
    }

    /// Transactions still open (authorised, not cleared, not cancelled).
    pub fn open_transactions(&self) -> usize {
        self.txns
            .values()
            .filter(|t| t.state == TxnState::InProgress)
            .count()
    }

    /// Applies the answer to one message. `approved` is DE 39 = `00`; anything else
    /// changes nothing, as the engine documents for declines and refused follow-ups.
    pub fn apply(&mut self, effect: &Effect, approved: bool) {
        if !approved {
            return;
        }
        match *effect {
            Effect::Open {
                txn,
                profile,
                amount,
                credit,
                pre_auth,
                mode,
            } => self.open(txn, profile, amount, credit, pre_auth, mode),
            Effect::Increment { txn, amount } => self.increment(txn, amount),
            Effect::Clear { txn, amount } => self.clear(txn, amount),
            Effect::Reverse { txn, final_amount } => self.reverse(txn, final_amount),
            Effect::Nothing => {}
        }
    }

    /// The engine clock moves to `to`: every hold whose time has come is released and its
    /// transaction cancelled, as the engine does before it handles anything later.
    pub fn advance_clock(&mut self, to: Timestamp) {
        self.engine_now = self.engine_now.max(to);
        let now = self.engine_now;
        let mut due: Vec<u64> = self
            .txns
            .iter()
            .filter(|(_, t)| t.state == TxnState::InProgress && t.expires_at <= now)
            .map(|(&id, _)| id)
            .collect();
        // Sums do not depend on the order, but a fixed order keeps runs easy to compare.
        due.sort_unstable();
        for id in due {
            if let Some(t) = self.txns.get_mut(&id) {
                t.state = TxnState::Cancelled;
                let (profile, currency, hold) = (t.profile, t.currency, t.hold);
                t.hold = 0;
                self.release(profile, currency, hold);
                self.stats.expired += 1;
            }
        }
    }

    fn open(
        &mut self,
        txn: u64,
        profile: u32,
        amount: Money,
        credit: bool,
        pre_auth: bool,
        mode: OpenMode,
    ) {
        let currency = amount.currency;
        let minor = amount.amount_minor;
        if mode == OpenMode::Post {
            if credit {
                self.post(profile, currency, -minor);
                self.stats.credited += 1;
            } else {
                self.post(profile, currency, minor);
                self.stats.posted += 1;
            }
            return;
        }
        let hold = if credit { 0 } else { minor };
        self.hold(profile, currency, hold);
        self.stats.holds += 1;
        self.txns.insert(
            txn,
            ModelTxn {
                profile,
                currency,
                hold,
                credit,
                pre_auth,
                state: TxnState::InProgress,
                expires_at: self.engine_now.plus_ms(self.ttl_ms(pre_auth)),
            },
        );
    }

    fn ttl_ms(&self, pre_auth: bool) -> i64 {
        if pre_auth {
            self.ttl.pre_auth_ms
        } else {
            self.ttl.hold_ms
        }
    }

    fn increment(&mut self, txn: u64, amount: Money) {
        let (now, ttl) = (self.engine_now, self.ttl);
        let Some(t) = self.txns.get_mut(&txn) else {
            self.stats.unexplained += 1;
            return;
        };
        if t.state != TxnState::InProgress || t.credit || t.currency != amount.currency {
            self.stats.unexplained += 1;
            return;
        }
        t.hold = t.hold.saturating_add(amount.amount_minor);
        t.expires_at = now.plus_ms(if t.pre_auth {
            ttl.pre_auth_ms
        } else {
            ttl.hold_ms
        });
        let (profile, currency) = (t.profile, t.currency);
        self.hold(profile, currency, amount.amount_minor);
        self.stats.increments += 1;
    }

    fn clear(&mut self, txn: u64, amount: Money) {
        let Some(t) = self.txns.remove(&txn) else {
            self.stats.unexplained += 1;
            return;
        };
        if t.currency != amount.currency {
            self.stats.unexplained += 1;
            self.txns.insert(txn, t);
            return;
        }
        if t.credit {
            self.post(t.profile, t.currency, -amount.amount_minor);
        } else {
            // A cancelled transaction holds nothing any more; a live one gives its hold
            // back before the cleared amount is posted.
            self.release(t.profile, t.currency, t.hold);
            self.post(t.profile, t.currency, amount.amount_minor);
        }
        self.stats.clearings += 1;
    }

    fn reverse(&mut self, txn: u64, final_amount: Money) {
        let Some(t) = self.txns.get_mut(&txn) else {
            self.stats.unexplained += 1;
            return;
        };
        if t.state == TxnState::Cancelled {
            // Approved, changes nothing.
            self.stats.reversals += 1;
            return;
        }
        let final_minor = final_amount.amount_minor;
        if t.currency != final_amount.currency
            || final_minor < 0
            || (!t.credit && final_minor > t.hold)
        {
            self.stats.unexplained += 1;
            return;
        }
        let released = if t.credit { 0 } else { t.hold - final_minor };
        if !t.credit {
            t.hold = final_minor;
        }
        if final_minor == 0 {
            t.state = TxnState::Cancelled;
        }
        let (profile, currency) = (t.profile, t.currency);
        self.release(profile, currency, released);
        self.stats.reversals += 1;
    }

    fn balance_mut(&mut self, profile: u32, currency: Currency) -> &mut Amounts {
        self.balances.entry((profile, currency)).or_default()
    }

    fn hold(&mut self, profile: u32, currency: Currency, minor: i64) {
        let b = self.balance_mut(profile, currency);
        b.available = b.available.saturating_sub(minor);
        b.reserved = b.reserved.saturating_add(minor);
    }

    fn release(&mut self, profile: u32, currency: Currency, minor: i64) {
        self.hold(profile, currency, -minor);
    }

    /// Takes `minor` out of the balance (a negative amount puts it in).
    fn post(&mut self, profile: u32, currency: Currency, minor: i64) {
        let b = self.balance_mut(profile, currency);
        b.available = b.available.saturating_sub(minor);
        b.cash = b.cash.saturating_sub(minor);
    }
}

/// The end-of-run comparison of the expected ledger with the engine's balances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Every balance matches to the minor unit.
    pub ok: bool,
    /// Sum over all balances of |available| + |reserved| + |cash| differences, each in its
    /// balance's minor units.
    pub difference_minor: u64,
    pub balances_checked: usize,
    pub mismatch_count: usize,
    /// The first [`MISMATCHES_KEPT_MAX`] mismatches, in (profile, currency) order.
    pub mismatches: Vec<BalanceMismatch>,
}

/// One balance that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceMismatch {
    pub profile: u64,
    pub currency: String,
    pub expected: Amounts,
    /// `None` when the engine has no balance in that currency.
    pub actual: Option<Amounts>,
    pub difference_minor: u64,
}

/// Compares every balance of `expected` with the engine's. `profiles` maps population
/// indices to engine ids; `actual` reads one balance (from the engine or the management
/// API).
pub fn reconcile(
    expected: &ExpectedLedger,
    profiles: &[ProfileId],
    actual: &mut dyn FnMut(ProfileId, Currency) -> Result<Option<BalanceView>, TargetError>,
) -> Result<Reconciliation, TargetError> {
    let mut result = Reconciliation::default();
    for ((index, currency), want) in expected.balances() {
        let profile = *profiles.get(index as usize).ok_or_else(|| {
            TargetError::Failed(format!("profile index {index} was never set up"))
        })?;
        let seen = actual(profile, currency)?.map(Amounts::from);
        result.balances_checked += 1;
        let difference = difference_minor(want, seen);
        // An empty expected balance matches a balance the engine never opened.
        if difference == 0 {
            continue;
        }
        result.mismatch_count += 1;
        result.difference_minor = result.difference_minor.saturating_add(difference);
        if result.mismatches.len() < MISMATCHES_KEPT_MAX {
            result.mismatches.push(BalanceMismatch {
                profile: profile.0,
                currency: currency.alpha().to_owned(),
                expected: want,
                actual: seen,
                difference_minor: difference,
            });
        }
    }
    result.ok = result.mismatch_count == 0;
    Ok(result)
}

/// A missing balance differs by everything the model expected in it.
fn difference_minor(want: Amounts, seen: Option<Amounts>) -> u64 {
    let seen = seen.unwrap_or_default();
    want.available
        .abs_diff(seen.available)
        .saturating_add(want.reserved.abs_diff(seen.reserved))
        .saturating_add(want.cash.abs_diff(seen.cash))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u32 = 0;
    const EUR: Currency = Currency::EUR;
    const START: Timestamp = Timestamp(1_768_471_200_000);

    fn eur(minor: i64) -> Money {
        Money::new(minor, EUR)
    }

    fn ledger() -> ExpectedLedger {
        let mut l = ExpectedLedger::empty(START, HoldTtl::default());
        l.top_up(P, eur(10_000));
        l
    }

    fn open(txn: u64, minor: i64, mode: OpenMode) -> Effect {
        Effect::Open {
            txn,
            profile: P,
            amount: eur(minor),
            credit: false,
            pre_auth: false,
            mode,
        }
    }

    fn refund(txn: u64, minor: i64, mode: OpenMode) -> Effect {
        Effect::Open {
            txn,
            profile: P,
            amount: eur(minor),
            credit: true,
            pre_auth: false,
            mode,
        }
    }

    /// (available, reserved, cash)
    fn check(l: &ExpectedLedger, want: (i64, i64, i64)) {
        let b = l.balance(P, EUR).unwrap();
        assert_eq!((b.available, b.reserved, b.cash), want);
    }

    /// The example of SCENARIO-FORMAT.md: hold 40, reverse to 30, clear 30.
    #[test]
    fn hold_partial_reversal_and_clearing() {
        let mut l = ledger();
        l.apply(&open(1, 4_000, OpenMode::Hold), true);
        check(&l, (6_000, 4_000, 10_000));
        l.apply(
            &Effect::Reverse {
                txn: 1,
                final_amount: eur(3_000),
            },
            true,
        );
        check(&l, (7_000, 3_000, 10_000));
        l.apply(
            &Effect::Clear {
                txn: 1,
                amount: eur(3_000),
            },
            true,
        );
        check(&l, (7_000, 0, 7_000));
        assert_eq!(l.open_transactions(), 0);
        assert_eq!(l.stats().unexplained, 0);
    }

    #[test]
    fn clearings_lower_and_higher_than_the_hold() {
        let mut l = ledger();
        l.apply(&open(1, 4_000, OpenMode::Hold), true);
        l.apply(
            &Effect::Clear {
                txn: 1,
                amount: eur(3_500),
            },
            true,
        );
        check(&l, (6_500, 0, 6_500));
        l.apply(&open(2, 1_000, OpenMode::Hold), true);
        l.apply(
            &Effect::Clear {
                txn: 2,
                amount: eur(1_200),
            },
            true,
        );
        check(&l, (5_300, 0, 5_300));
    }

    #[test]
    fn declines_and_refused_follow_ups_change_nothing() {
        let mut l = ledger();
        l.apply(&open(1, 4_000, OpenMode::Hold), false);
        l.apply(
            &Effect::Clear {
                txn: 1,
                amount: eur(4_000),
            },
            false,
        );
        l.apply(&Effect::Nothing, true);
        check(&l, (10_000, 0, 10_000));
        assert_eq!(l.stats(), LedgerStats::default());
    }

    #[test]
    fn an_approval_the_model_cannot_place_is_counted() {
        let mut l = ledger();
        l.apply(
            &Effect::Clear {
                txn: 9,
                amount: eur(100),
            },
            true,
        );
        l.apply(
            &Effect::Increment {
                txn: 9,
                amount: eur(100),
            },
            true,
        );
        l.apply(&open(1, 1_000, OpenMode::Hold), true);
        l.apply(
            &Effect::Reverse {
                txn: 1,
                final_amount: eur(2_000),
            },
            true,
        );
        assert_eq!(l.stats().unexplained, 3);
        check(&l, (9_000, 1_000, 10_000));
    }

    #[test]
    fn single_message_posts_and_refunds_credit() {
        let mut l = ledger();
        l.apply(&open(1, 2_500, OpenMode::Post), true);
        check(&l, (7_500, 0, 7_500));
        l.apply(&refund(2, 500, OpenMode::Post), true);
        check(&l, (8_000, 0, 8_000));
        // A refund authorisation holds nothing; its clearing credits.
        l.apply(&refund(3, 700, OpenMode::Hold), true);
        check(&l, (8_000, 0, 8_000));
        l.apply(
            &Effect::Clear {
                txn: 3,
                amount: eur(700),
            },
            true,
        );
        check(&l, (8_700, 0, 8_700));
    }

    #[test]
    fn stand_in_advice_holds_past_the_funds() {
        let mut l = ledger();
        l.apply(&open(1, 12_000, OpenMode::StandIn), true);
        check(&l, (-2_000, 12_000, 10_000));
    }

    #[test]
    fn incremental_grows_the_hold_and_restarts_expiry() {
        let mut l = ledger();
        l.apply(&open(1, 1_000, OpenMode::Hold), true);
        l.advance_clock(START.plus_ms(6 * Timestamp::MS_PER_DAY));
        l.apply(
            &Effect::Increment {
                txn: 1,
                amount: eur(500),
            },
            true,
        );
        check(&l, (8_500, 1_500, 10_000));
        // Seven days after the first authorisation, but not after the increment.
        l.advance_clock(START.plus_ms(8 * Timestamp::MS_PER_DAY));
        check(&l, (8_500, 1_500, 10_000));
        l.advance_clock(START.plus_ms(13 * Timestamp::MS_PER_DAY));
        check(&l, (10_000, 0, 10_000));
        assert_eq!(l.stats().expired, 1);
    }

    #[test]
    fn expiry_after_seven_days_and_thirty_for_pre_auth() {
        let mut l = ledger();
        l.apply(&open(1, 1_000, OpenMode::Hold), true);
        l.apply(
            &Effect::Open {
                txn: 2,
                profile: P,
                amount: eur(2_000),
                credit: false,
                pre_auth: true,
                mode: OpenMode::Hold,
            },
            true,
        );
        l.advance_clock(START.plus_ms(7 * Timestamp::MS_PER_DAY - 1));
        check(&l, (7_000, 3_000, 10_000));
        l.advance_clock(START.plus_ms(7 * Timestamp::MS_PER_DAY));
        check(&l, (8_000, 2_000, 10_000));
        l.advance_clock(START.plus_ms(30 * Timestamp::MS_PER_DAY));
        check(&l, (10_000, 0, 10_000));
        // A clearing after expiry still posts; a reversal of an expired one changes nothing.
        l.apply(
            &Effect::Reverse {
                txn: 2,
                final_amount: eur(0),
            },
            true,
        );
        l.apply(
            &Effect::Clear {
                txn: 1,
                amount: eur(1_000),
            },
            true,
        );
        check(&l, (9_000, 0, 9_000));
        assert_eq!(l.stats().unexplained, 0);
    }

    #[test]
    fn full_reversal_cancels_and_a_later_clearing_posts() {
        let mut l = ledger();
        l.apply(&open(1, 3_000, OpenMode::Hold), true);
        l.apply(
            &Effect::Reverse {
                txn: 1,
                final_amount: eur(0),
            },
            true,
        );
        check(&l, (10_000, 0, 10_000));
        l.apply(
            &Effect::Reverse {
                txn: 1,
                final_amount: eur(0),
            },
            true,
        );
        check(&l, (10_000, 0, 10_000));
        l.apply(
            &Effect::Clear {
                txn: 1,
                amount: eur(3_000),
            },
            true,
        );
        check(&l, (7_000, 0, 7_000));
        // Completed: a second clearing cannot be placed.
        l.apply(
            &Effect::Clear {
                txn: 1,
                amount: eur(3_000),
            },
            true,
        );
        assert_eq!(l.stats().unexplained, 1);
    }

    fn view(available: i64, reserved: i64, cash: i64) -> BalanceView {
        BalanceView {
            available: eur(available),
            reserved: eur(reserved),
            cash: eur(cash),
        }
    }

    #[test]
    fn reconciliation_matches_a_faithful_engine() {
        let mut l = ledger();
        l.apply(&open(1, 4_000, OpenMode::Hold), true);
        let ids = [ProfileId(77)];
        let mut engine = |p: ProfileId, c: Currency| {
            assert_eq!((p, c), (ProfileId(77), EUR));
            Ok(Some(view(6_000, 4_000, 10_000)))
        };
        let r = reconcile(&l, &ids, &mut engine).unwrap();
        assert!(r.ok);
        assert_eq!(r.difference_minor, 0);
        assert_eq!(r.balances_checked, 1);
        assert!(r.mismatches.is_empty());
    }

    #[test]
    fn reconciliation_catches_one_minor_unit() {
        let mut l = ledger();
        l.apply(&open(1, 4_000, OpenMode::Hold), true);
        // The deliberate error: the model believes in one cent more cash than there is.
        l.set_balance(
            P,
            EUR,
            Amounts {
                available: 6_000,
                reserved: 4_000,
                cash: 10_001,
            },
        );
        let mut engine = |_: ProfileId, _: Currency| Ok(Some(view(6_000, 4_000, 10_000)));
        let r = reconcile(&l, &[ProfileId(77)], &mut engine).unwrap();
        assert!(!r.ok);
        assert_eq!(r.difference_minor, 1);
        assert_eq!(r.mismatch_count, 1);
        let m = &r.mismatches[0];
        assert_eq!((m.profile, m.currency.as_str()), (77, "EUR"));
        assert_eq!(m.actual.unwrap().cash, 10_000);
        assert_eq!(m.expected.cash, 10_001);
    }

    #[test]
    fn reconciliation_reports_missing_balances_and_failed_reads() {
        let l = ledger();
        let mut none = |_: ProfileId, _: Currency| Ok(None);
        let r = reconcile(&l, &[ProfileId(1)], &mut none).unwrap();
        assert!(!r.ok);
        assert_eq!(r.difference_minor, 20_000);
        assert_eq!(r.mismatches[0].actual, None);
        let mut empty = ExpectedLedger::empty(START, HoldTtl::default());
        empty.set_balance(P, Currency::BRL, Amounts::default());
        assert!(reconcile(&empty, &[ProfileId(1)], &mut none).unwrap().ok);
        let mut failing = |_: ProfileId, _: Currency| Err(TargetError::Failed("down".into()));
        assert!(reconcile(&l, &[ProfileId(1)], &mut failing).is_err());
        let mut fine = |_: ProfileId, _: Currency| Ok(Some(view(10_000, 0, 10_000)));
        assert!(
            reconcile(&l, &[], &mut fine).is_err(),
            "an unmapped profile is an error"
        );
    }
}
