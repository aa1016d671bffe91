//! Legs: the parts of one transaction's hold (or posting), one per balance and rate.
//!
//! A hold in the transaction currency has one leg with rate 1 and no fee ("own leg"). With
//! smart conversion, the shortfall is held on other balances, each leg in that balance's own
//! currency, recording the transaction-currency amount it covers and the rate and fee fixed
//! at authorisation. Legs live in a fixed inline array so that a hold never allocates.

use std::fmt;

use cardcore_core::{BalanceId, Currency, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{CONVERSION_LEGS_MAX, HOLD_LEGS_MAX};

/// One part of a hold or posting: `held_minor` on `balance` (in its `currency`, fee
/// included) covering `covers_minor` of the transaction currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Leg {
    pub balance: BalanceId,
    /// The balance's currency: what `held_minor` and `fee_minor` are counted in.
    pub currency: Currency,
    /// Held (or posted) on the balance: the converted amount plus the fee.
    pub held_minor: i64,
    /// The conversion fee, part of `held_minor`.
    pub fee_minor: i64,
    /// The amount of the transaction currency this leg pays for.
    pub covers_minor: i64,
    /// 1 unit of the transaction currency = `rate` units of `currency` (1 for the own leg).
    #[serde(with = "cardcore_core::money::decimal_serde")]
    pub rate: Decimal,
    /// Fee in parts per million of the converted amount (0 for the own leg).
    pub fee_ppm: u32,
}

impl Leg {
    /// An unused slot. Its bytes are all zero (the first currency of the table, a zero
    /// rate), so that a new [`Legs`] is a memset rather than a copy of a constant: it is
    /// made once per hold.
    fn empty() -> Leg {
        Leg {
            balance: BalanceId(0),
            currency: Currency::all().next().unwrap_or(Currency::EUR),
            held_minor: 0,
            fee_minor: 0,
            covers_minor: 0,
            rate: Decimal::ZERO,
            fee_ppm: 0,
        }
    }

    /// A leg in the transaction currency itself: no conversion, no fee.
    pub fn own(balance: BalanceId, currency: Currency, amount_minor: i64) -> Leg {
        Leg {
            balance,
            currency,
            held_minor: amount_minor,
            fee_minor: 0,
            covers_minor: amount_minor,
            rate: Decimal::ONE,
            fee_ppm: 0,
        }
    }

    /// The line the engine shows in a transaction's `debits` list.
    pub fn debit(&self, txn_currency: Currency) -> Debit {
        Debit {
            balance: self.balance,
            amount: Money::new(self.held_minor, self.currency),
            covers: Money::new(self.covers_minor, txn_currency),
            rate: self.rate,
            fee: Money::new(self.fee_minor, self.currency),
        }
    }
}

/// One money movement of a transaction, as the reference's `debits` list shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Debit {
    pub balance: BalanceId,
    /// Taken from the balance, in its currency, fee included.
    pub amount: Money,
    /// What it pays for, in the transaction currency.
    pub covers: Money,
    /// 1 unit of the transaction currency = `rate` units of the balance's currency.
    #[serde(with = "cardcore_core::money::decimal_serde")]
    pub rate: Decimal,
    pub fee: Money,
}

/// Why a leg could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LegsFull;

/// Up to [`HOLD_LEGS_MAX`] legs, inline, in the order they were added (oldest first).
#[derive(Clone, Copy)]
pub struct Legs {
    len: u8,
    items: [Leg; HOLD_LEGS_MAX],
}

const _: () = assert!(HOLD_LEGS_MAX <= u8::MAX as usize);

impl Legs {
    pub fn new() -> Legs {
        Legs {
            len: 0,
            items: [Leg::empty(); HOLD_LEGS_MAX],
        }
    }

    /// Legs holding `items`, in that order; `None` for more than [`HOLD_LEGS_MAX`].
    pub fn from_slice(items: &[Leg]) -> Option<Legs> {
        let mut legs = Legs::new();
        for leg in items {
            legs.push(*leg).ok()?;
        }
        Some(legs)
    }

    pub fn as_slice(&self) -> &[Leg] {
        &self.items[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Leg> {
        self.as_slice().iter()
    }

    /// The sum of what the legs cover, in the transaction currency.
    pub fn covers_minor(&self) -> i128 {
        self.iter().map(|l| i128::from(l.covers_minor)).sum()
    }

    /// How many legs are on balances in another currency than `txn_currency`.
    pub fn conversion_count(&self, txn_currency: Currency) -> usize {
        self.iter().filter(|l| l.currency != txn_currency).count()
    }

    /// The index of the leg in the transaction currency, if any.
    pub fn own_index(&self, txn_currency: Currency) -> Option<usize> {
        self.iter().position(|l| l.currency == txn_currency)
    }

    /// Removes every leg. The slots keep their old contents, which nothing reads: every
    /// use of legs looks at the first `len` only.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> &mut Leg {
        &mut self.items[..usize::from(self.len)][index]
    }

    pub(crate) fn push(&mut self, leg: Leg) -> Result<(), LegsFull> {
        let slot = self.items.get_mut(usize::from(self.len)).ok_or(LegsFull)?;
        *slot = leg;
        self.len += 1;
        Ok(())
    }

    /// Removes the leg at `index`, keeping the order of the others.
    pub(crate) fn remove(&mut self, index: usize) {
        let len = usize::from(self.len);
        if index >= len {
            return;
        }
        self.items.copy_within(index + 1..len, index);
        self.items[len - 1] = Leg::empty();
        self.len -= 1;
    }
}

impl Default for Legs {
    fn default() -> Self {
        Legs::new()
    }
}

impl PartialEq for Legs {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Legs {}

impl fmt::Debug for Legs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<'a> IntoIterator for &'a Legs {
    type Item = &'a Leg;
    type IntoIter = std::slice::Iter<'a, Leg>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for Legs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for Legs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<Leg>::deserialize(d)?;
        let mut legs = Legs::new();
        for leg in items {
            legs.push(leg).map_err(|_| {
                serde::de::Error::custom(format!("a hold has at most {HOLD_LEGS_MAX} legs"))
            })?;
        }
        Ok(legs)
    }
}

// One slot must stay free for the own leg, however many conversion legs a hold has, so a
// stand-in or over-clearing can always put the forced remainder on it.
const _: () = assert!(CONVERSION_LEGS_MAX < HOLD_LEGS_MAX);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_remove_and_compare_only_live_legs() {
        let mut legs = Legs::new();
        for i in 0..HOLD_LEGS_MAX {
            legs.push(Leg::own(BalanceId(i as u64), Currency::EUR, 10))
                .unwrap();
        }
        assert_eq!(
            legs.push(Leg::own(BalanceId(9), Currency::EUR, 1)),
            Err(LegsFull)
        );
        legs.remove(1);
        let ids: Vec<u64> = legs.iter().map(|l| l.balance.0).collect();
        assert_eq!(ids, [0, 2, 3]);
        let mut other = Legs::new();
        for id in [0, 2, 3] {
            other
                .push(Leg::own(BalanceId(id), Currency::EUR, 10))
                .unwrap();
        }
        assert_eq!(legs, other);
        legs.remove(7);
        assert_eq!(legs.len(), 3);
    }
}
