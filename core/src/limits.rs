//! Spend limits: per card (transaction, daily, monthly, lifetime) and per profile and type
//! (`PURCHASE`, `ATM_WITHDRAWAL`; daily and monthly, each under a maximum).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

/// A window over which usage is counted and a limit applies.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Granularity {
    Transaction,
    Daily,
    Monthly,
    Lifetime,
}

impl Granularity {
    pub const ALL: [Granularity; 4] = [
        Granularity::Transaction,
        Granularity::Daily,
        Granularity::Monthly,
        Granularity::Lifetime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Transaction => "TRANSACTION",
            Granularity::Daily => "DAILY",
            Granularity::Monthly => "MONTHLY",
            Granularity::Lifetime => "LIFETIME",
        }
    }

    /// Accepts the API's upper-case form and the scenario format's lower-case one.
    pub fn parse(text: &str) -> Option<Granularity> {
        Granularity::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two kinds of profile limit. `PURCHASE` combines every non-cash channel.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LimitType {
    Purchase,
    AtmWithdrawal,
}

impl LimitType {
    pub const ALL: [LimitType; 2] = [LimitType::Purchase, LimitType::AtmWithdrawal];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitType::Purchase => "PURCHASE",
            LimitType::AtmWithdrawal => "ATM_WITHDRAWAL",
        }
    }

    pub fn parse(text: &str) -> Option<LimitType> {
        LimitType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for LimitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card's limits, all in one currency; `None` is "no limit".
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CardLimits {
    pub currency: Currency,
    /// Minor units of `currency`, indexed by [`Granularity`].
    pub values_minor: [Option<i64>; 4],
}

impl CardLimits {
    pub fn none(currency: Currency) -> CardLimits {
        CardLimits {
            currency,
            values_minor: [None; 4],
        }
    }

    pub fn get(&self, g: Granularity) -> Option<Money> {
        self.values_minor[g as usize].map(|v| Money::new(v, self.currency))
    }

    pub fn set(&mut self, g: Granularity, value_minor: Option<i64>) {
        self.values_minor[g as usize] = value_minor;
    }

    pub fn is_empty(&self) -> bool {
        self.values_minor.iter().all(Option::is_none)
    }
}

/// A profile's limit of one type: daily and monthly values, each at most its maximum.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProfileLimit {
    pub currency: Currency,
    pub daily_minor: i64,
    pub monthly_minor: i64,
    pub max_daily_minor: i64,
    pub max_monthly_minor: i64,
}

/// Why a limit change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{field} must not be negative")]
    Negative { field: &'static str },
    #[error("{field} {value} exceeds its maximum {max}")]
    AboveMax {
        field: &'static str,
        value: Money,
        max: Money,
    },
}

impl ProfileLimit {
    /// Checks the values against their maxima. A daily value may equal the monthly one (the
    /// reference's own example sets both to 200 GBP).
    pub fn validate(&self) -> Result<(), LimitError> {
        let m = |v| Money::new(v, self.currency);
        for (field, v) in [
            ("daily", self.daily_minor),
            ("monthly", self.monthly_minor),
            ("maxDaily", self.max_daily_minor),
            ("maxMonthly", self.max_monthly_minor),
        ] {
            if v < 0 {
                return Err(LimitError::Negative { field });
            }
        }
        if self.daily_minor > self.max_daily_minor {
            return Err(LimitError::AboveMax {
                field: "daily",
                value: m(self.daily_minor),
                max: m(self.max_daily_minor),
            });
        }
        if self.monthly_minor > self.max_monthly_minor {
            return Err(LimitError::AboveMax {
                field: "monthly",
                value: m(self.monthly_minor),
                max: m(self.max_monthly_minor),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_limits_stay_under_their_maxima() {
        let ok = ProfileLimit {
            currency: Currency::GBP,
            daily_minor: 10_000,
            monthly_minor: 100_000,
            max_daily_minor: 20_000,
            max_monthly_minor: 200_000,
        };
        assert!(ok.validate().is_ok());
        let too_high = ProfileLimit {
            daily_minor: 30_000,
            ..ok
        };
        assert!(matches!(
            too_high.validate(),
            Err(LimitError::AboveMax { field: "daily", .. })
        ));
        let negative = ProfileLimit {
            monthly_minor: -1,
            ..ok
        };
        assert!(matches!(
            negative.validate(),
            Err(LimitError::Negative { field: "monthly" })
        ));
    }

    #[test]
    fn card_limits_by_granularity() {
        let mut l = CardLimits::none(Currency::EUR);
        assert!(l.is_empty());
        l.set(Granularity::Daily, Some(5000));
        assert_eq!(
            l.get(Granularity::Daily),
            Some(Money::new(5000, Currency::EUR))
        );
        assert_eq!(l.get(Granularity::Lifetime), None);
        assert_eq!(Granularity::parse("daily"), Some(Granularity::Daily));
        assert_eq!(Granularity::parse("LIFETIME"), Some(Granularity::Lifetime));
        assert_eq!(
            LimitType::parse("ATM_WITHDRAWAL"),
            Some(LimitType::AtmWithdrawal)
        );
    }
}
