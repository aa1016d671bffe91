//! Money: an integer count of minor units and an ISO 4217 currency.
//!
//! Amounts never pass through floating point. Decimals (`rust_decimal`) appear only at the
//! edges (JSON, scenario files, FX rates) and are converted with the rules below.
//!
//! # Rounding rules
//! - Parsing a decimal amount ([`Money::from_decimal`]) never rounds: an amount with more
//!   fractional digits than the currency's exponent is an error (`"10.001"` EUR is refused).
//! - Converting between currencies ([`Money::convert`]) multiplies by the rate and rounds to
//!   the target's minor unit *half away from zero* (banker's rounding would make the
//!   customer-visible amount depend on parity, which no card scheme does).
//! - Covering a shortfall from another balance ([`Money::convert_to_cover`]) rounds *up*
//!   (away from zero), so the converted amount always covers the shortfall in full and the
//!   issuer never funds a fraction of a minor unit.

use std::fmt;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// An ISO 4217 currency. It is an index into cardcore's currency table, so reading its code
/// or exponent on the hot path is one array access; on the wire and on disk it is always the
/// numeric code (ISO 8583 DE 49/51) or the alphabetic code (JSON), never the index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(u8);

struct CurrencyInfo {
    alpha: &'static str,
    numeric: u16,
    exponent: u8,
}

const fn info(alpha: &'static str, numeric: u16, exponent: u8) -> CurrencyInfo {
    CurrencyInfo {
        alpha,
        numeric,
        exponent,
    }
}

/// The currencies cardcore knows, with the exponents of ISO 4217 (JPY 0, EUR 2, KWD 3 ...).
static CURRENCIES: &[CurrencyInfo] = &[
    info("ALL", 8, 2),
    info("DZD", 12, 2),
    info("ARS", 32, 2),
    info("AUD", 36, 2),
    info("BHD", 48, 3),
    info("BDT", 50, 2),
    info("BOB", 68, 2),
    info("BWP", 72, 2),
    info("CAD", 124, 2),
    info("LKR", 144, 2),
    info("CLP", 152, 0),
    info("CNY", 156, 2),
    info("COP", 170, 2),
    info("CRC", 188, 2),
    info("CZK", 203, 2),
    info("DKK", 208, 2),
    info("DOP", 214, 2),
    info("EGP", 818, 2),
    info("FJD", 242, 2),
    info("GEL", 981, 2),
    info("GHS", 936, 2),
    info("GTQ", 320, 2),
    info("HKD", 344, 2),
    info("HUF", 348, 2),
    info("ISK", 352, 0),
    info("INR", 356, 2),
    info("IDR", 360, 2),
    info("IQD", 368, 3),
    info("ILS", 376, 2),
    info("JPY", 392, 0),
    info("KZT", 398, 2),
    info("JOD", 400, 3),
    info("KES", 404, 2),
    info("KRW", 410, 0),
    info("KWD", 414, 3),
    info("LBP", 422, 2),
    info("LYD", 434, 3),
    info("MYR", 458, 2),
    info("MUR", 480, 2),
    info("MXN", 484, 2),
    info("MAD", 504, 2),
    info("NPR", 524, 2),
    info("NZD", 554, 2),
    info("NGN", 566, 2),
    info("NOK", 578, 2),
    info("OMR", 512, 3),
    info("PKR", 586, 2),
    info("PYG", 600, 0),
    info("PEN", 604, 2),
    info("PHP", 608, 2),
    info("QAR", 634, 2),
    info("RUB", 643, 2),
    info("SAR", 682, 2),
    info("SGD", 702, 2),
    info("VND", 704, 0),
    info("ZAR", 710, 2),
    info("SEK", 752, 2),
    info("CHF", 756, 2),
    info("THB", 764, 2),
    info("AED", 784, 2),
    info("TND", 788, 3),
    info("UGX", 800, 0),
    info("UAH", 980, 2),
    info("GBP", 826, 2),
    info("TZS", 834, 2),
    info("USD", 840, 2),
    info("UYU", 858, 2),
    info("UZS", 860, 2),
    info("TWD", 901, 2),
    info("RON", 946, 2),
    info("TRY", 949, 2),
    info("XAF", 950, 0),
    info("XOF", 952, 0),
    info("ZMW", 967, 2),
    info("BRL", 986, 2),
    info("EUR", 978, 2),
    info("PLN", 985, 2),
    info("BGN", 975, 2),
];

const _: () = assert!(CURRENCIES.len() <= u8::MAX as usize);

/// The table index of a numeric code, usable in constants.
const fn index_of(numeric: u16) -> Option<u8> {
    let mut i = 0;
    while i < CURRENCIES.len() {
        if CURRENCIES[i].numeric == numeric {
            return Some(i as u8);
        }
        i += 1;
    }
    None
}

const fn known(numeric: u16) -> Currency {
    match index_of(numeric) {
        Some(i) => Currency(i),
        None => panic!("currency missing from the table"),
    }
}

/// Why a currency code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("unknown ISO 4217 currency code {0:?}")]
    UnknownAlpha(String),
    #[error("unknown ISO 4217 numeric currency code {0}")]
    UnknownNumeric(u16),
    #[error("currency codes are written in upper case, as in ISO 4217: {upper} rather than {0:?}", upper = .0.to_ascii_uppercase())]
    NotUpperCase(String),
}

impl Currency {
    pub const EUR: Currency = known(978);
    pub const GBP: Currency = known(826);
    pub const USD: Currency = known(840);
    pub const JPY: Currency = known(392);
    pub const KWD: Currency = known(414);
    pub const SGD: Currency = known(702);
    pub const CHF: Currency = known(756);
    pub const BRL: Currency = known(986);

    /// The currency with this ISO 4217 numeric code (as in ISO 8583 DE 49).
    pub fn from_numeric(numeric: u16) -> Result<Currency, CurrencyError> {
        index_of(numeric)
            .map(Currency)
            .ok_or(CurrencyError::UnknownNumeric(numeric))
    }

    /// The currency with this three-letter code (`"EUR"`), case-insensitive.
    pub fn from_alpha(alpha: &str) -> Result<Currency, CurrencyError> {
        CURRENCIES
            .iter()
            .position(|c| c.alpha.eq_ignore_ascii_case(alpha))
            .map(|i| Currency(i as u8))
            .ok_or_else(|| CurrencyError::UnknownAlpha(alpha.to_owned()))
    }

    /// The currency with this three-letter code as ISO 4217 writes it, in upper case
    /// (`"EUR"`; `"eur"` is refused): the form JSON carries.
    pub fn from_code(code: &str) -> Result<Currency, CurrencyError> {
        let currency = Currency::from_alpha(code)?;
        if currency.alpha() != code {
            return Err(CurrencyError::NotUpperCase(code.to_owned()));
        }
        Ok(currency)
    }

    pub fn numeric(self) -> u16 {
        self.info().numeric
    }

    fn info(self) -> &'static CurrencyInfo {
        &CURRENCIES[usize::from(self.0)]
    }

    pub fn alpha(self) -> &'static str {
        self.info().alpha
    }

    /// Number of fractional digits of the minor unit (JPY 0, EUR 2, KWD 3).
    pub fn exponent(self) -> u8 {
        self.info().exponent
    }

    /// Every currency cardcore knows.
    pub fn all() -> impl Iterator<Item = Currency> {
        (0..CURRENCIES.len()).map(|i| Currency(i as u8))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha())
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_alpha(s)
    }
}

/// JSON carries the alphabetic code in upper case (a payments API that took `"eur"` would
/// let clients get away with a form the standard does not have); binary formats (the
/// journal) the ISO numeric code.
impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(self.alpha())
        } else {
            s.serialize_u16(self.numeric())
        }
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            let numeric = u16::deserialize(d)?;
            return Currency::from_numeric(numeric).map_err(serde::de::Error::custom);
        }
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::from_code(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde for a `Decimal` rate: the exact decimal text in human-readable formats (JSON never
/// sees a float), and its 16-byte binary form in binary formats (the journal). Use with
/// `#[serde(with = "cardcore_core::money::decimal_serde")]`.
pub mod decimal_serde {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            rust_decimal::serde::str::serialize(d, s)
        } else {
            s.serialize_bytes(&d.serialize())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        if d.is_human_readable() {
            return rust_decimal::serde::str::deserialize(d);
        }
        // Owned: readers (replay streams records) cannot lend bytes.
        let bytes = Vec::<u8>::deserialize(d)?;
        let bytes: [u8; 16] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a decimal is 16 bytes"))?;
        Ok(Decimal::deserialize(bytes))
    }
}

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {amount} has more decimal places than {currency} allows ({exponent})")]
    TooPrecise {
        amount: String,
        currency: Currency,
        exponent: u8,
    },
    #[error("amount {0} is out of range")]
    OutOfRange(String),
    #[error("currency mismatch: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("arithmetic overflow")]
    Overflow,
    #[error("amount must not be negative: {0}")]
    Negative(String),
    #[error("invalid decimal amount {0:?}")]
    Invalid(String),
}

/// An amount of money: integer minor units of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(amount_minor: i64, currency: Currency) -> Money {
        Money {
            amount_minor,
            currency,
        }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money {
            amount_minor: 0,
            currency,
        }
    }

    pub fn is_zero(self) -> bool {
        self.amount_minor == 0
    }

    pub fn is_negative(self) -> bool {
        self.amount_minor < 0
    }

    /// Parses a decimal in major units (`"10.50"`) exactly; see the module's rounding rules.
    pub fn parse(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let amount =
            Decimal::from_str(text.trim()).map_err(|_| MoneyError::Invalid(text.to_owned()))?;
        Money::from_decimal(amount, currency)
    }

    /// Converts a decimal in major units exactly; more decimals than the currency has is an
    /// error, never a silent rounding.
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let exponent = currency.exponent();
        let normalized = amount.normalize();
        if normalized.scale() > u32::from(exponent) {
            return Err(MoneyError::TooPrecise {
                amount: amount.to_string(),
                currency,
                exponent,
            });
        }
        let minor = normalized
            .checked_mul(Decimal::from(10_i64.pow(u32::from(exponent))))
            .and_then(|m| m.to_i64())
            .ok_or_else(|| MoneyError::OutOfRange(amount.to_string()))?;
        Ok(Money::new(minor, currency))
    }

    /// The amount in major units as an exact decimal (`1050` EUR → `10.50`).
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.amount_minor, u32::from(self.currency.exponent()))
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|m| Money::new(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_sub(other.amount_minor)
            .map(|m| Money::new(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    /// Converts into `target` at `rate` (1 unit of `self.currency` = `rate` units of
    /// `target`), rounding half away from zero to the target's minor unit.
    pub fn convert(self, target: Currency, rate: Decimal) -> Result<Money, MoneyError> {
        self.convert_with(target, rate, RoundingStrategy::MidpointAwayFromZero)
    }

    /// Converts into `target` at `rate`, rounding up (away from zero), so that the result
    /// covers `self` in full. Used to fund a shortfall from another balance.
    pub fn convert_to_cover(self, target: Currency, rate: Decimal) -> Result<Money, MoneyError> {
        self.convert_with(target, rate, RoundingStrategy::AwayFromZero)
    }

    fn convert_with(
        self,
        target: Currency,
        rate: Decimal,
        strategy: RoundingStrategy,
    ) -> Result<Money, MoneyError> {
        if self.currency == target {
            return Ok(self);
        }
        let converted = self
            .to_decimal()
            .checked_mul(rate)
            .ok_or(MoneyError::Overflow)?
            .round_dp_with_strategy(u32::from(target.exponent()), strategy);
        Money::from_decimal(converted, target)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn the_table_is_consistent() {
        let mut numerics: Vec<u16> = CURRENCIES.iter().map(|c| c.numeric).collect();
        numerics.sort_unstable();
        numerics.dedup();
        assert_eq!(numerics.len(), CURRENCIES.len(), "duplicate numeric code");
        for c in CURRENCIES {
            assert_eq!(c.alpha.len(), 3);
            assert!(c.exponent <= 3);
            assert_eq!(Currency::from_alpha(c.alpha).unwrap().numeric(), c.numeric);
        }
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::EUR.exponent(), 2);
        assert_eq!(Currency::KWD.exponent(), 3);
        assert_eq!(Currency::from_alpha("BHD").unwrap().exponent(), 3);
        assert_eq!(Currency::from_numeric(978).unwrap(), Currency::EUR);
        assert!(Currency::from_numeric(999).is_err());
        assert!(Currency::from_alpha("XXX").is_err());
    }

    #[test]
    fn parses_exactly_or_refuses() {
        let cases: &[(&str, Currency, Option<i64>)] = &[
            ("10.50", Currency::EUR, Some(1050)),
            ("10.5", Currency::EUR, Some(1050)),
            ("10", Currency::EUR, Some(1000)),
            ("10.00", Currency::JPY, Some(10)),
            ("1000", Currency::JPY, Some(1000)),
            ("1.5", Currency::JPY, None),
            ("1.234", Currency::KWD, Some(1234)),
            ("1.2345", Currency::KWD, None),
            ("10.001", Currency::EUR, None),
            ("abc", Currency::EUR, None),
            ("", Currency::EUR, None),
            ("-3.00", Currency::EUR, Some(-300)),
            ("99999999999999999999999", Currency::EUR, None),
        ];
        for &(text, currency, expected) in cases {
            let got = Money::parse(text, currency).ok().map(|m| m.amount_minor);
            assert_eq!(got, expected, "{text} {currency}");
        }
    }

    #[test]
    fn decimal_round_trip() {
        for (minor, ccy) in [
            (1050, Currency::EUR),
            (7, Currency::JPY),
            (1, Currency::KWD),
        ] {
            let m = Money::new(minor, ccy);
            assert_eq!(Money::from_decimal(m.to_decimal(), ccy).unwrap(), m);
        }
        assert_eq!(Money::new(1050, Currency::EUR).to_string(), "10.50 EUR");
        assert_eq!(Money::new(1, Currency::KWD).to_string(), "0.001 KWD");
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::new(i64::MAX, Currency::EUR);
        assert_eq!(
            a.checked_add(Money::new(1, Currency::EUR)),
            Err(MoneyError::Overflow)
        );
        assert!(matches!(
            a.checked_add(Money::new(1, Currency::GBP)),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        let b = Money::new(500, Currency::EUR).checked_sub(Money::new(700, Currency::EUR));
        assert_eq!(b.unwrap().amount_minor, -200);
    }

    #[test]
    fn conversion_rounds_as_documented() {
        // 10.00 EUR at 1.005 → 10.05 USD exactly
        let m = Money::new(1000, Currency::EUR);
        assert_eq!(
            m.convert(Currency::USD, dec("1.005")).unwrap().amount_minor,
            1005
        );
        // 0.05 EUR at 0.5 → 0.025 → half away from zero 0.03, cover also 0.03
        let m = Money::new(5, Currency::EUR);
        assert_eq!(
            m.convert(Currency::USD, dec("0.5")).unwrap().amount_minor,
            3
        );
        // 0.01 EUR at 0.3 → 0.003: nearest 0.00, cover 0.01
        let m = Money::new(1, Currency::EUR);
        assert_eq!(
            m.convert(Currency::USD, dec("0.3")).unwrap().amount_minor,
            0
        );
        assert_eq!(
            m.convert_to_cover(Currency::USD, dec("0.3"))
                .unwrap()
                .amount_minor,
            1
        );
        // EUR → JPY and → KWD use the target exponent
        let m = Money::new(1234, Currency::EUR);
        assert_eq!(
            m.convert(Currency::JPY, dec("161.5")).unwrap().amount_minor,
            1993
        );
        assert_eq!(
            m.convert(Currency::KWD, dec("0.3321"))
                .unwrap()
                .amount_minor,
            4098
        );
        // same currency is the identity
        assert_eq!(m.convert(Currency::EUR, dec("2")).unwrap(), m);
    }

    #[test]
    fn serde_uses_alpha_codes() {
        let json = serde_json::to_string(&Currency::JPY).unwrap();
        assert_eq!(json, "\"JPY\"");
        let back: Currency = serde_json::from_str("\"KWD\"").unwrap();
        assert_eq!(back, Currency::KWD);
        assert!(serde_json::from_str::<Currency>("\"ZZZ\"").is_err());
        let lower = serde_json::from_str::<Currency>("\"kwd\"").unwrap_err();
        assert!(
            lower.to_string().contains("KWD rather than \"kwd\""),
            "{lower}"
        );
        assert!(serde_json::from_str::<Currency>("\"Kwd\"").is_err());
        // Text formats of the project's own (scenario files) may still read any case.
        assert_eq!(Currency::from_alpha("kwd"), Ok(Currency::KWD));
        assert_eq!(
            Currency::from_code("kwd"),
            Err(CurrencyError::NotUpperCase("kwd".into()))
        );
    }
}
