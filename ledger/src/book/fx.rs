//! FX rates for smart conversion, and the arithmetic of one conversion leg.
//!
//! # Direction of a quote
//! [`FxRates::quote`]`(from, to)` answers "1 unit of `from` = `rate` units of `to`", plus a
//! fee in parts per million. To cover a shortfall in the transaction currency T from a
//! balance in currency B, the book asks for `quote(T, B)`: the price in B of one unit of T.
//!
//! # Who inverts a rate
//! The book never inverts a rate: it uses what `quote` answers. [`FxTable`] (usable by the
//! engine and by tests) answers the reverse pair with `1 / rate` and the same fee when only
//! the other direction is configured; an engine's own implementation must do the same if
//! it wants inverse rates.
//!
//! # Rounding
//! - The converted amount is [`Money::convert_to_cover`]: rounded up to B's minor unit, so
//!   the source always covers the shortfall in full.
//! - The fee is `converted × fee_ppm / 1 000 000`, rounded up to B's minor unit, computed in
//!   integers. The leg holds `converted + fee`.

use std::collections::BTreeMap;

use cardcore_core::{Currency, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::BookError;

/// A quote is refused if its fee is above 100 %: that is a configuration error.
pub const FEE_PPM_MAX: u32 = 1_000_000;

const PPM_PER_UNIT: i128 = 1_000_000;

/// A rate and fee for one currency pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxQuote {
    /// 1 unit of `from` = `rate` units of `to`.
    #[serde(with = "cardcore_core::money::decimal_serde")]
    pub rate: Decimal,
    /// The conversion fee in parts per million of the converted amount (0.35 % = 3500).
    pub fee_ppm: u32,
}

impl FxQuote {
    pub fn new(rate: Decimal, fee_ppm: u32) -> FxQuote {
        FxQuote { rate, fee_ppm }
    }

    /// A quote the book can use: a positive rate and a fee of at most [`FEE_PPM_MAX`].
    pub fn is_usable(&self) -> bool {
        self.rate > Decimal::ZERO && self.fee_ppm <= FEE_PPM_MAX
    }
}

/// Where the book reads FX rates when it plans a smart conversion. Only decisions call it;
/// replaying events never does (the rate is in the event).
pub trait FxRates {
    /// 1 unit of `from` = `rate` units of `to`; `None` when the pair is not quoted.
    fn quote(&self, from: Currency, to: Currency) -> Option<FxQuote>;
}

impl<T: FxRates + ?Sized> FxRates for &T {
    fn quote(&self, from: Currency, to: Currency) -> Option<FxQuote> {
        (**self).quote(from, to)
    }
}

/// No rates at all: only the transaction-currency balance can fund a transaction.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRates;

impl FxRates for NoRates {
    fn quote(&self, _from: Currency, _to: Currency) -> Option<FxQuote> {
        None
    }
}

/// A table of quotes; the reverse of a configured pair is implied as `1 / rate` with the
/// same fee, unless the reverse is configured too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxTable {
    quotes: BTreeMap<(Currency, Currency), FxQuote>,
}

impl FxTable {
    pub fn new() -> FxTable {
        FxTable::default()
    }

    /// Sets the quote `from` → `to`.
    pub fn set(&mut self, from: Currency, to: Currency, quote: FxQuote) {
        self.quotes.insert((from, to), quote);
    }

    /// Builder form of [`FxTable::set`].
    pub fn with(mut self, from: Currency, to: Currency, rate: Decimal, fee_ppm: u32) -> FxTable {
        self.set(from, to, FxQuote::new(rate, fee_ppm));
        self
    }
}

impl FxRates for FxTable {
    fn quote(&self, from: Currency, to: Currency) -> Option<FxQuote> {
        if let Some(q) = self.quotes.get(&(from, to)) {
            return Some(*q);
        }
        let reverse = self.quotes.get(&(to, from))?;
        let rate = Decimal::ONE.checked_div(reverse.rate)?;
        Some(FxQuote {
            rate,
            fee_ppm: reverse.fee_ppm,
        })
    }
}

/// How a card may be funded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingPrefs {
    /// The card's default currency: the first balance converted from.
    pub default_currency: Option<Currency>,
    /// Whether other balances may be converted from at all.
    pub smart_conversion: bool,
}

impl FundingPrefs {
    /// Only the transaction-currency balance.
    pub const SINGLE_CURRENCY: FundingPrefs = FundingPrefs {
        default_currency: None,
        smart_conversion: false,
    };

    pub fn smart(default_currency: Option<Currency>) -> FundingPrefs {
        FundingPrefs {
            default_currency,
            smart_conversion: true,
        }
    }
}

/// What a source balance in `source` must hold to cover `covers` at `rate` and `fee_ppm`:
/// `(held_minor, fee_minor)`, fee included in `held_minor`.
pub(crate) fn source_amount(
    covers: Money,
    source: Currency,
    rate: Decimal,
    fee_ppm: u32,
) -> Result<(i64, i64), BookError> {
    let converted = covers.convert_to_cover(source, rate)?.amount_minor;
    let fee = fee_minor(converted, fee_ppm)?;
    let held = converted.checked_add(fee).ok_or(BookError::Overflow {
        what: "held amount",
    })?;
    Ok((held, fee))
}

/// `converted × fee_ppm / 1e6`, rounded up (for a non-negative `converted`).
fn fee_minor(converted_minor: i64, fee_ppm: u32) -> Result<i64, BookError> {
    let scaled = i128::from(converted_minor) * i128::from(fee_ppm);
    let fee = (scaled + PPM_PER_UNIT - 1).div_euclid(PPM_PER_UNIT);
    i64::try_from(fee).map_err(|_| BookError::Overflow {
        what: "conversion fee",
    })
}

/// The largest `c ≤ need` of the transaction currency that a balance with `available_minor`
/// of `source` can cover, with what it must hold: `(c, held_minor, fee_minor)`.
///
/// The held amount never decreases as `c` grows (both roundings are upwards), so a binary
/// search finds the largest `c`; it runs only when the balance cannot cover all of `need`.
pub(crate) fn max_coverable(
    need: Money,
    source: Currency,
    quote: FxQuote,
    available_minor: i64,
) -> Result<(i64, i64, i64), BookError> {
    let at = |c: i64| {
        source_amount(
            Money::new(c, need.currency),
            source,
            quote.rate,
            quote.fee_ppm,
        )
    };
    let (held, fee) = at(need.amount_minor)?;
    if held <= available_minor {
        return Ok((need.amount_minor, held, fee));
    }
    // Invariant: at(lo) fits (lo = 0 holds nothing), at(hi) does not.
    let (mut lo, mut hi) = (0i64, need.amount_minor);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if at(mid)?.0 <= available_minor {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        return Ok((0, 0, 0));
    }
    let (held, fee) = at(lo)?;
    Ok((lo, held, fee))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn fee_rounds_up_to_the_minor_unit() {
        // 10.00 EUR at 0.85 GBP = 8.50 GBP; 0.5 % fee = 0.0425 → 0.05 GBP.
        let covers = Money::new(1000, Currency::EUR);
        assert_eq!(
            source_amount(covers, Currency::GBP, dec("0.85"), 5000).unwrap(),
            (855, 5)
        );
        // No fee, exact conversion.
        assert_eq!(
            source_amount(covers, Currency::GBP, dec("0.85"), 0).unwrap(),
            (850, 0)
        );
        // 1 JPY at 0.0061 EUR = 0.0061 → 0.01 EUR (rounded up), fee on 1 cent → 1 cent.
        let yen = Money::new(1, Currency::JPY);
        assert_eq!(
            source_amount(yen, Currency::EUR, dec("0.0061"), 1).unwrap(),
            (2, 1)
        );
    }

    #[test]
    fn max_coverable_is_the_largest_fitting_amount() {
        let quote = FxQuote::new(dec("0.85"), 5000);
        let need = Money::new(1000, Currency::EUR);
        assert_eq!(
            max_coverable(need, Currency::GBP, quote, 10_000).unwrap(),
            (1000, 855, 5)
        );
        let (c, held, _) = max_coverable(need, Currency::GBP, quote, 500).unwrap();
        assert!(held <= 500);
        let next = source_amount(
            Money::new(c + 1, Currency::EUR),
            Currency::GBP,
            quote.rate,
            5000,
        );
        assert!(next.unwrap().0 > 500);
        assert_eq!(
            max_coverable(need, Currency::GBP, quote, 0).unwrap(),
            (0, 0, 0)
        );
    }

    #[test]
    fn the_table_implies_the_reverse_rate() {
        let table = FxTable::new().with(Currency::EUR, Currency::USD, dec("1.25"), 3000);
        assert_eq!(
            table.quote(Currency::EUR, Currency::USD).unwrap().rate,
            dec("1.25")
        );
        let reverse = table.quote(Currency::USD, Currency::EUR).unwrap();
        assert_eq!(reverse.rate, dec("0.8"));
        assert_eq!(reverse.fee_ppm, 3000);
        assert!(table.quote(Currency::USD, Currency::GBP).is_none());
        assert!(NoRates.quote(Currency::USD, Currency::EUR).is_none());
    }
}
