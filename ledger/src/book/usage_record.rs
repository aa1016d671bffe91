//! What one transaction counted in the limit windows, part by part.
//!
//! Each amount a transaction counts is a part: the first authorisation, each incremental
//! authorisation, and what a clearing counts above the authorised amount. A part keeps its
//! amount in the transaction currency and the minor units it counted in the card's and the
//! profile's counters, each in the counter's own currency, converted once, at the rate of the
//! moment it was counted.
//!
//! # Releases
//! A release (a reversal to a lower final amount, a clearing below the authorised amount, an
//! expiry) gives back from the newest part first. A part given back whole returns exactly the
//! minor units it counted; a part given back in part keeps, in each counter's currency, the
//! share of its counted amount that the kept transaction amount is of its transaction amount
//! (rounded to the nearest minor unit, halves away from zero). Nothing is converted again at
//! a later rate, so usage neither drifts nor goes below zero when rates move, and releasing
//! everything returns exactly what was counted.
//!
//! # Windows
//! The record keeps the daily and monthly windows of its newest part; each part says whether
//! it was counted in them. When a newer part is counted in other windows, the older parts
//! lose their marks: their windows have ended (engine time only moves forward), so a release
//! of them gives back to the lifetime counter and to the windows they still share with the
//! newest part only. A day that has rolled over therefore never gives back usage it did not
//! count.
//!
//! # Bound
//! A record has at most [`USAGE_PARTS_MAX`] parts. Marks fall in four classes (both windows,
//! the month only, the day only, neither), so a fifth part always finds two older parts of
//! one class: the oldest such pair is merged. They were counted in the same windows, so a
//! release of the merged part moves the same counters; only the split of a partial release
//! between the two becomes proportional instead of newest first.

use cardcore_core::{CardToken, Currency, LimitType};
use serde::{Deserialize, Serialize};

use super::usage::Window;

/// Parts one transaction's usage is kept in (see the module documentation for why four
/// always suffice).
pub const USAGE_PARTS_MAX: usize = 4;
/// Classes of window marks a part can have: in both windows, in one of them, in neither.
const MARK_CLASSES: usize = 4;
const _: () = assert!(USAGE_PARTS_MAX >= MARK_CLASSES);

/// One amount counted: in the transaction currency and in each counter's currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsageAmounts {
    /// In the transaction currency.
    pub txn_minor: i64,
    /// In the card's usage currency.
    pub card_minor: i64,
    /// In the profile's usage currency.
    pub profile_minor: i64,
}

impl UsageAmounts {
    pub const ZERO: UsageAmounts = UsageAmounts {
        txn_minor: 0,
        card_minor: 0,
        profile_minor: 0,
    };

    pub fn is_negative(&self) -> bool {
        self.txn_minor < 0 || self.card_minor < 0 || self.profile_minor < 0
    }

    fn checked_add(self, other: UsageAmounts) -> Option<UsageAmounts> {
        Some(UsageAmounts {
            txn_minor: self.txn_minor.checked_add(other.txn_minor)?,
            card_minor: self.card_minor.checked_add(other.card_minor)?,
            profile_minor: self.profile_minor.checked_add(other.profile_minor)?,
        })
    }
}

/// One counted amount and whether it was counted in the record's daily and monthly windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsagePart {
    pub amounts: UsageAmounts,
    pub in_daily: bool,
    pub in_monthly: bool,
}

/// What a transaction counted, part by part, so that later releases give back exactly that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub card: CardToken,
    pub limit_type: LimitType,
    /// The transaction currency.
    pub currency: Currency,
    /// The windows of the newest part.
    pub daily: Window,
    pub monthly: Window,
    len: u8,
    parts: [UsagePart; USAGE_PARTS_MAX],
}

/// What a release gives back to each counter, in the counter's currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub card_daily: i64,
    pub card_monthly: i64,
    pub card_lifetime: i64,
    pub profile_daily: i64,
    pub profile_monthly: i64,
}

impl UsageRecord {
    /// The record of a transaction's first counted amount.
    pub fn new(
        card: CardToken,
        limit_type: LimitType,
        currency: Currency,
        amounts: UsageAmounts,
        daily: Window,
        monthly: Window,
    ) -> UsageRecord {
        let mut parts = [UsagePart::default(); USAGE_PARTS_MAX];
        parts[0] = UsagePart {
            amounts,
            in_daily: true,
            in_monthly: true,
        };
        UsageRecord {
            card,
            limit_type,
            currency,
            daily,
            monthly,
            len: 1,
            parts,
        }
    }

    /// The parts, oldest first.
    pub fn parts(&self) -> &[UsagePart] {
        // A record read from a snapshot is checked before use; the bound keeps a damaged
        // length from reaching past the array regardless.
        &self.parts[..usize::from(self.len).min(USAGE_PARTS_MAX)]
    }

    /// What the transaction counts now, summed over its parts. Growth checks that every sum
    /// fits, so these do not overflow.
    pub fn counted(&self) -> UsageAmounts {
        self.parts()
            .iter()
            .try_fold(UsageAmounts::ZERO, |sum, p| sum.checked_add(p.amounts))
            .unwrap_or(UsageAmounts::ZERO)
    }

    /// Parts within the bound, none negative, and sums that fit.
    pub fn is_well_formed(&self) -> bool {
        let parts_ok = usize::from(self.len) <= USAGE_PARTS_MAX
            && self.len > 0
            && self.parts().iter().all(|p| !p.amounts.is_negative());
        let sums_fit = self
            .parts()
            .iter()
            .try_fold(UsageAmounts::ZERO, |sum, p| sum.checked_add(p.amounts))
            .is_some();
        parts_ok && sums_fit
    }

    /// The record after counting `amounts` in `daily` and `monthly`; `None` if a sum would
    /// overflow. Parts counted in other windows lose their marks (see the module
    /// documentation).
    pub(crate) fn with_added(
        &self,
        amounts: UsageAmounts,
        daily: Window,
        monthly: Window,
    ) -> Option<UsageRecord> {
        self.counted().checked_add(amounts)?;
        let len = usize::from(self.len).min(USAGE_PARTS_MAX);
        // One slot more than a record holds: the new part goes in before any merge.
        let mut parts = [UsagePart::default(); USAGE_PARTS_MAX + 1];
        parts[..len].copy_from_slice(&self.parts[..len]);
        for part in &mut parts[..len] {
            part.in_daily &= daily == self.daily;
            part.in_monthly &= monthly == self.monthly;
        }
        parts[len] = UsagePart {
            amounts,
            in_daily: true,
            in_monthly: true,
        };
        let mut len = len + 1;
        if len > USAGE_PARTS_MAX {
            len = merge_oldest_pair(&mut parts[..len])?;
        }
        let mut next = UsageRecord {
            daily,
            monthly,
            len: u8::try_from(len).ok()?,
            ..*self
        };
        next.parts.copy_from_slice(&parts[..USAGE_PARTS_MAX]);
        Some(next)
    }

    /// The record after releasing down to `txn_minor` in the transaction currency, newest
    /// part first, and what each counter gets back; `None` when `txn_minor` is negative or
    /// above what is counted.
    pub(crate) fn released_to(&self, txn_minor: i64) -> Option<(UsageRecord, Released)> {
        let counted = self.counted().txn_minor;
        if txn_minor < 0 || txn_minor > counted {
            return None;
        }
        let mut left = counted - txn_minor;
        let mut next = *self;
        let mut back = Released::default();
        let len = usize::from(next.len).min(USAGE_PARTS_MAX);
        for part in next.parts[..len].iter_mut().rev() {
            if left == 0 {
                break;
            }
            let taken = left.min(part.amounts.txn_minor);
            let kept = part.amounts.txn_minor - taken;
            let was = part.amounts;
            part.amounts = UsageAmounts {
                txn_minor: kept,
                card_minor: share(was.card_minor, kept, was.txn_minor),
                profile_minor: share(was.profile_minor, kept, was.txn_minor),
            };
            let card_back = was.card_minor - part.amounts.card_minor;
            let profile_back = was.profile_minor - part.amounts.profile_minor;
            back.add(part, card_back, profile_back);
            left -= taken;
        }
        Some((next, back))
    }
}

impl Released {
    /// Counts what `part` (after its release) gave back.
    fn add(&mut self, part: &UsagePart, card_minor: i64, profile_minor: i64) {
        self.card_lifetime += card_minor;
        if part.in_daily {
            self.card_daily += card_minor;
            self.profile_daily += profile_minor;
        }
        if part.in_monthly {
            self.card_monthly += card_minor;
            self.profile_monthly += profile_minor;
        }
    }
}

/// Merges the oldest two parts with the same marks into the older one's place and returns
/// the new length; `None` if no two parts share their marks or a sum overflows. With more
/// parts than [`MARK_CLASSES`], two always share.
fn merge_oldest_pair(parts: &mut [UsagePart]) -> Option<usize> {
    let marks = |p: &UsagePart| (p.in_daily, p.in_monthly);
    let (older, newer) = (0..parts.len()).find_map(|j| {
        let i = (0..j).find(|&i| marks(&parts[i]) == marks(&parts[j]))?;
        Some((i, j))
    })?;
    parts[older].amounts = parts[older].amounts.checked_add(parts[newer].amounts)?;
    parts.copy_within(newer + 1.., newer);
    let len = parts.len() - 1;
    parts[len] = UsagePart::default();
    Some(len)
}

/// `amount × kept / whole`, rounded to the nearest unit (halves away from zero), for
/// `0 ≤ kept ≤ whole`: the share of a counted amount a partly released part keeps. All of it
/// when nothing is released, none of it when everything is.
fn share(amount: i64, kept: i64, whole: i64) -> i64 {
    if kept >= whole || whole <= 0 {
        return amount;
    }
    if kept <= 0 {
        return 0;
    }
    let product = i128::from(amount) * i128::from(kept);
    let whole = i128::from(whole);
    let rounded = (2 * product + whole) / (2 * whole);
    // Between 0 and `amount`, since 0 < kept < whole and amount ≥ 0.
    i64::try_from(rounded).unwrap_or(amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcore_core::Timestamp;

    const DAY_1: Window = Window {
        start: Timestamp(0),
        end: Timestamp(100),
    };
    const DAY_2: Window = Window {
        start: Timestamp(100),
        end: Timestamp(200),
    };
    const MONTH: Window = Window {
        start: Timestamp(0),
        end: Timestamp(1_000),
    };

    fn amounts(txn_minor: i64, card_minor: i64) -> UsageAmounts {
        UsageAmounts {
            txn_minor,
            card_minor,
            profile_minor: card_minor,
        }
    }

    fn record(txn_minor: i64, card_minor: i64) -> UsageRecord {
        let a = amounts(txn_minor, card_minor);
        UsageRecord::new(
            CardToken(1),
            LimitType::Purchase,
            Currency::USD,
            a,
            DAY_1,
            MONTH,
        )
    }

    #[test]
    fn shares_round_to_the_nearest_unit() {
        let cases = [
            // (amount, kept, whole, share)
            (611, 1000, 1001, 610),
            (3333, 1000, 1001, 3330),
            (90, 40, 100, 36),
            (1, 1, 2, 1),
            (3, 1, 2, 2),
            (5, 0, 7, 0),
            (5, 7, 7, 5),
            (0, 3, 7, 0),
            (i64::MAX, i64::MAX - 1, i64::MAX, i64::MAX - 1),
        ];
        for (amount, kept, whole, expected) in cases {
            assert_eq!(
                share(amount, kept, whole),
                expected,
                "{amount} {kept}/{whole}"
            );
        }
    }

    #[test]
    fn releases_take_the_newest_part_first_and_only_its_windows() {
        let r = record(30_00, 27_00);
        let r = r.with_added(amounts(20_00, 10_00), DAY_2, MONTH).unwrap();
        assert_eq!(r.parts().len(), 2);
        assert!(!r.parts()[0].in_daily && r.parts()[0].in_monthly);
        // Down to 25.00: all 20.00 of day 2 (10.00 counted), then 5.00 of day 1 (4.50).
        let (after, back) = r.released_to(25_00).unwrap();
        let expected = Released {
            card_daily: 10_00,
            card_monthly: 14_50,
            card_lifetime: 14_50,
            profile_daily: 10_00,
            profile_monthly: 14_50,
        };
        assert_eq!(back, expected);
        assert_eq!(after.counted(), amounts(25_00, 22_50));
        // To zero: exactly what is left.
        let (after, back) = after.released_to(0).unwrap();
        assert_eq!(after.counted(), UsageAmounts::ZERO);
        assert_eq!(back.card_lifetime, 22_50);
        assert_eq!(back.card_daily, 0);
        assert!(after.released_to(1).is_none(), "above what is counted");
        assert!(r.released_to(-1).is_none());
    }

    #[test]
    fn a_fifth_part_merges_two_of_the_same_marks() {
        let mut r = record(1, 1);
        for day in 1..=6 {
            let daily = Window {
                start: Timestamp(day * 100),
                end: Timestamp(day * 100 + 100),
            };
            r = r.with_added(amounts(1, 1), daily, MONTH).unwrap();
            assert!(r.parts().len() <= USAGE_PARTS_MAX);
        }
        assert_eq!(r.counted(), amounts(7, 7));
        let (_, back) = r.released_to(0).unwrap();
        assert_eq!(back.card_monthly, 7);
        assert_eq!(
            back.card_daily, 1,
            "only the newest day's part is in today's window"
        );
        assert!(r.is_well_formed());
    }

    #[test]
    fn sums_that_would_overflow_are_refused() {
        let r = record(i64::MAX, 1);
        assert!(r.with_added(amounts(1, 1), DAY_1, MONTH).is_none());
    }
}
