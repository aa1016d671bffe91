//! Spend-control rules: `MCC` or `CURRENCY`, `ALLOW` or `BLOCK`. A transaction passes only
//! if it satisfies every applied rule.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::RuleId;
use crate::money::Currency;

/// What a rule looks at.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleType {
    Mcc,
    Currency,
}

/// Whether the listed values are the only ones allowed, or the ones refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleOperation {
    Allow,
    Block,
}

/// A merchant category code (ISO 18245), four digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mcc(pub u16);

impl Mcc {
    pub const ATM: Mcc = Mcc(6011);
    pub const MANUAL_CASH: Mcc = Mcc(6010);

    /// Parses exactly four ASCII digits.
    pub fn from_ascii(digits: &[u8]) -> Option<Mcc> {
        if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(Mcc(digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))))
    }

    pub fn parse(text: &str) -> Option<Mcc> {
        Mcc::from_ascii(text.as_bytes())
    }
}

impl fmt::Display for Mcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl fmt::Debug for Mcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mcc({self})")
    }
}

/// The values of a rule, parsed once when the rule is created and kept sorted so that a
/// check is a binary search with no allocation.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum RuleValues {
    Mcc(Vec<Mcc>),
    Currency(Vec<Currency>),
}

/// A spend-control rule, scoped to the application.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Rule {
    pub id: RuleId,
    pub operation: RuleOperation,
    pub description: String,
    pub values: RuleValues,
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("values must not be empty")]
    Empty,
    #[error("value {0:?} is not a four-digit MCC")]
    BadMcc(String),
    #[error("value {0:?} is not an ISO 4217 currency code in upper case, such as \"EUR\"")]
    BadCurrency(String),
}

impl Rule {
    /// Builds a rule from the API's strings, refusing any value that does not parse.
    pub fn new(
        id: RuleId,
        rule_type: RuleType,
        operation: RuleOperation,
        description: String,
        values: &[String],
    ) -> Result<Rule, RuleError> {
        if values.is_empty() {
            return Err(RuleError::Empty);
        }
        let values = match rule_type {
            RuleType::Mcc => {
                let mut mccs = values
                    .iter()
                    .map(|v| Mcc::parse(v).ok_or_else(|| RuleError::BadMcc(v.clone())))
                    .collect::<Result<Vec<_>, _>>()?;
                mccs.sort_unstable();
                mccs.dedup();
                RuleValues::Mcc(mccs)
            }
            RuleType::Currency => {
                let mut ccys = values
                    .iter()
                    .map(|v| Currency::from_code(v).map_err(|_| RuleError::BadCurrency(v.clone())))
                    .collect::<Result<Vec<_>, _>>()?;
                ccys.sort_unstable();
                ccys.dedup();
                RuleValues::Currency(ccys)
            }
        };
        Ok(Rule {
            id,
            operation,
            description,
            values,
        })
    }

    pub fn rule_type(&self) -> RuleType {
        match self.values {
            RuleValues::Mcc(_) => RuleType::Mcc,
            RuleValues::Currency(_) => RuleType::Currency,
        }
    }

    /// The values as the API shows them.
    pub fn value_strings(&self) -> Vec<String> {
        match &self.values {
            RuleValues::Mcc(v) => v.iter().map(Mcc::to_string).collect(),
            RuleValues::Currency(v) => v.iter().map(|c| c.alpha().to_owned()).collect(),
        }
    }

    /// Whether a transaction with this MCC and currency passes the rule.
    pub fn passes(&self, mcc: Mcc, currency: Currency) -> bool {
        let listed = match &self.values {
            RuleValues::Mcc(v) => v.binary_search(&mcc).is_ok(),
            RuleValues::Currency(v) => v.binary_search(&currency).is_ok(),
        };
        match self.operation {
            RuleOperation::Allow => listed,
            RuleOperation::Block => !listed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn allow_and_block_rules() {
        let block = Rule::new(
            RuleId(1),
            RuleType::Mcc,
            RuleOperation::Block,
            "no gambling".into(),
            &strings(&["7995", "5933"]),
        )
        .unwrap();
        assert!(!block.passes(Mcc(7995), Currency::EUR));
        assert!(block.passes(Mcc(5411), Currency::EUR));
        let allow = Rule::new(
            RuleId(2),
            RuleType::Currency,
            RuleOperation::Allow,
            String::new(),
            &strings(&["EUR", "GBP"]),
        )
        .unwrap();
        assert!(allow.passes(Mcc(5411), Currency::GBP));
        assert!(!allow.passes(Mcc(5411), Currency::USD));
        let mut shown = allow.value_strings();
        shown.sort();
        assert_eq!(shown, strings(&["EUR", "GBP"]));
    }

    #[test]
    fn bad_values_are_named() {
        let r = Rule::new(
            RuleId(1),
            RuleType::Mcc,
            RuleOperation::Block,
            "".into(),
            &strings(&["54a1"]),
        );
        assert_eq!(r, Err(RuleError::BadMcc("54a1".into())));
        let r = Rule::new(
            RuleId(1),
            RuleType::Currency,
            RuleOperation::Allow,
            "".into(),
            &strings(&["EURO"]),
        );
        assert_eq!(r, Err(RuleError::BadCurrency("EURO".into())));
        let r = Rule::new(
            RuleId(1),
            RuleType::Currency,
            RuleOperation::Allow,
            "".into(),
            &strings(&["eur"]),
        );
        assert_eq!(r, Err(RuleError::BadCurrency("eur".into())));
        let r = Rule::new(
            RuleId(1),
            RuleType::Mcc,
            RuleOperation::Allow,
            "".into(),
            &[],
        );
        assert_eq!(r, Err(RuleError::Empty));
        assert_eq!(Mcc::parse("0742"), Some(Mcc(742)));
        assert_eq!(Mcc(742).to_string(), "0742");
    }
}
