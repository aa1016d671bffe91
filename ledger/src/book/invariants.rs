//! The ledger invariants, checkable at any time:
//! - every balance: `cash = available + reserved`; `reserved` = the sum of its live holds'
//!   legs; available below zero only if marked overdrawn by a flagged event;
//! - every hold: well-formed legs on balances of its own profile, in their currencies;
//! - every currency: total cash = top-ups + refunds − postings, to the minor unit;
//! - the indexes agree (each profile lists exactly its balances), and usage counters are
//!   not negative.
//!
//! The other half of "every hold belongs to an `IN_PROGRESS` transaction" is the engine's:
//! it checks [`Book::live_hold_txns`] against its transaction states.

use std::collections::BTreeMap;

use cardcore_core::{BalanceId, Currency, Money, ProfileId, TxnId};

use super::apply::check_legs;
use super::usage::WindowCounter;
use super::Book;

/// A broken invariant: a bug, or a corrupt snapshot. Names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantViolation {
    #[error("balance {balance}: cash {cash} != available {available} + reserved {reserved}")]
    CashNotAvailablePlusReserved {
        balance: BalanceId,
        cash: Money,
        available: Money,
        reserved: Money,
    },
    #[error("balance {balance}: reserved {reserved} but its live holds hold {held}")]
    ReservedNotSumOfHolds {
        balance: BalanceId,
        reserved: Money,
        held: i128,
    },
    #[error("balance {balance}: available {available} is below zero without a flagged event")]
    UnflaggedNegative {
        balance: BalanceId,
        available: Money,
    },
    #[error("balance {balance}: {what}")]
    MalformedBalance { balance: BalanceId, what: String },
    #[error("hold of {txn}: {what}")]
    MalformedHold { txn: TxnId, what: String },
    #[error(
        "{currency}: cash {cash} != top-ups {top_ups} + refunds {refunds} - postings {postings}"
    )]
    CashNotConserved {
        currency: Currency,
        cash: i128,
        top_ups: i128,
        refunds: i128,
        postings: i128,
    },
    #[error("profile {profile}: {what}")]
    MalformedProfile { profile: ProfileId, what: String },
    #[error("usage of {owner}: {what}")]
    MalformedUsage { owner: String, what: String },
}

impl Book {
    /// Checks every invariant; the first broken one is returned. Costs a pass over the
    /// whole book: for tests, recovery and on-demand audits, not the hot path.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.check_balances()?;
        let held = self.check_holds()?;
        self.check_reserved(&held)?;
        self.check_conservation()?;
        self.check_profiles()?;
        self.check_usage()
    }

    fn check_balances(&self) -> Result<(), InvariantViolation> {
        for (id, b) in &self.balances {
            if *id != b.id {
                let what = format!("stored under id {id}");
                return Err(InvariantViolation::MalformedBalance {
                    balance: b.id,
                    what,
                });
            }
            let sum = i128::from(b.available_minor) + i128::from(b.reserved_minor);
            if sum != i128::from(b.cash_minor) {
                return Err(InvariantViolation::CashNotAvailablePlusReserved {
                    balance: b.id,
                    cash: b.cash(),
                    available: b.available(),
                    reserved: b.reserved(),
                });
            }
            if b.available_minor < 0 && !b.overdrawn {
                let available = b.available();
                return Err(InvariantViolation::UnflaggedNegative {
                    balance: b.id,
                    available,
                });
            }
            if b.overdrawn && b.available_minor >= 0 {
                let what = "marked overdrawn but not below zero".to_owned();
                return Err(InvariantViolation::MalformedBalance {
                    balance: b.id,
                    what,
                });
            }
        }
        Ok(())
    }

    /// Checks each hold's legs and returns what the holds hold per balance.
    fn check_holds(&self) -> Result<BTreeMap<BalanceId, i128>, InvariantViolation> {
        let mut held: BTreeMap<BalanceId, i128> = BTreeMap::new();
        for (txn, hold) in &self.holds {
            let bad = |what: String| InvariantViolation::MalformedHold { txn: *txn, what };
            check_legs("hold", &hold.legs, hold.currency, false).map_err(|e| bad(e.to_string()))?;
            for leg in &hold.legs {
                let Some(b) = self.balances.get(&leg.balance) else {
                    return Err(bad(format!("leg on unknown balance {}", leg.balance)));
                };
                if b.profile != hold.profile || b.currency != leg.currency {
                    return Err(bad(format!(
                        "leg on {} of another profile or currency",
                        b.id
                    )));
                }
                *held.entry(leg.balance).or_default() += i128::from(leg.held_minor);
            }
        }
        Ok(held)
    }

    fn check_reserved(&self, held: &BTreeMap<BalanceId, i128>) -> Result<(), InvariantViolation> {
        for b in self.balances.values() {
            let h = held.get(&b.id).copied().unwrap_or(0);
            if h != i128::from(b.reserved_minor) {
                let reserved = b.reserved();
                return Err(InvariantViolation::ReservedNotSumOfHolds {
                    balance: b.id,
                    reserved,
                    held: h,
                });
            }
        }
        Ok(())
    }

    fn check_conservation(&self) -> Result<(), InvariantViolation> {
        let mut cash: BTreeMap<Currency, i128> = BTreeMap::new();
        for b in self.balances.values() {
            *cash.entry(b.currency).or_default() += i128::from(b.cash_minor);
        }
        let currencies: std::collections::BTreeSet<Currency> = cash
            .keys()
            .copied()
            .chain(self.totals.iter().map(|t| t.currency))
            .collect();
        for currency in currencies {
            let t = self.totals(currency);
            let total = cash.get(&currency).copied().unwrap_or(0);
            // Checked: a snapshot from outside may carry any totals.
            let expected = t.top_ups_minor.checked_add(t.refunds_minor);
            let expected = expected.and_then(|e| e.checked_sub(t.postings_minor));
            if expected != Some(total) {
                return Err(InvariantViolation::CashNotConserved {
                    currency,
                    cash: total,
                    top_ups: t.top_ups_minor,
                    refunds: t.refunds_minor,
                    postings: t.postings_minor,
                });
            }
        }
        Ok(())
    }

    fn check_profiles(&self) -> Result<(), InvariantViolation> {
        let mut listed = 0usize;
        for (id, p) in &self.profiles {
            let bad = |what: String| InvariantViolation::MalformedProfile { profile: *id, what };
            for (i, (currency, balance)) in p.balances.iter().enumerate() {
                let Some(b) = self.balances.get(balance) else {
                    return Err(bad(format!("lists unknown balance {balance}")));
                };
                if b.profile != *id || b.currency != *currency {
                    return Err(bad(format!(
                        "lists {balance} of another profile or currency"
                    )));
                }
                if p.balances[..i].iter().any(|(c, _)| c == currency) {
                    return Err(bad(format!("two {currency} balances")));
                }
            }
            listed += p.balances.len();
        }
        if listed != self.balances.len() {
            let what = format!(
                "{} balances, {listed} listed by profiles",
                self.balances.len()
            );
            return Err(InvariantViolation::MalformedBalance {
                balance: BalanceId(0),
                what,
            });
        }
        Ok(())
    }

    fn check_usage(&self) -> Result<(), InvariantViolation> {
        let bad = |owner: String, what: &str| InvariantViolation::MalformedUsage {
            owner,
            what: what.to_owned(),
        };
        let sane = |c: &WindowCounter| c.used_minor >= 0 && c.window.start <= c.window.end;
        for (token, card) in &self.cards {
            if !self.profiles.contains_key(&card.profile) {
                return Err(bad(token.to_string(), "belongs to an unknown profile"));
            }
            if !sane(&card.daily) || !sane(&card.monthly) || card.lifetime_minor < 0 {
                return Err(bad(token.to_string(), "negative usage or reversed window"));
            }
        }
        for (id, p) in &self.profiles {
            if p.usage.iter().any(|t| !sane(&t.daily) || !sane(&t.monthly)) {
                return Err(bad(id.to_string(), "negative usage or reversed window"));
            }
        }
        for (txn, r) in &self.usage_records {
            if !self.cards.contains_key(&r.card) || !r.is_well_formed() {
                return Err(bad(
                    txn.to_string(),
                    "record of an unknown card, negative, or with too many parts",
                ));
            }
        }
        Ok(())
    }
}
