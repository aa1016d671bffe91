//! Card transactions: their types and states, as in the reference's `CardTransaction`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The transaction types of the reference.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionType {
    AccountCredit,
    AccountFunding,
    CashAdvance,
    CashWithdrawal,
    Chargeback,
    CreditTransaction,
    EcomPurchase,
    PosPurchase,
    Refund,
}

impl TransactionType {
    pub const ALL: [TransactionType; 9] = [
        TransactionType::AccountCredit,
        TransactionType::AccountFunding,
        TransactionType::CashAdvance,
        TransactionType::CashWithdrawal,
        TransactionType::Chargeback,
        TransactionType::CreditTransaction,
        TransactionType::EcomPurchase,
        TransactionType::PosPurchase,
        TransactionType::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransactionType::AccountCredit => "ACCOUNT_CREDIT",
            TransactionType::AccountFunding => "ACCOUNT_FUNDING",
            TransactionType::CashAdvance => "CASH_ADVANCE",
            TransactionType::CashWithdrawal => "CASH_WITHDRAWAL",
            TransactionType::Chargeback => "CHARGEBACK",
            TransactionType::CreditTransaction => "CREDIT_TRANSACTION",
            TransactionType::EcomPurchase => "ECOM_PURCHASE",
            TransactionType::PosPurchase => "POS_PURCHASE",
            TransactionType::Refund => "REFUND",
        }
    }

    pub fn parse(text: &str) -> Option<TransactionType> {
        TransactionType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
    }

    /// Cash leaves through ATM withdrawal permissions and `ATM_WITHDRAWAL` profile limits.
    pub fn is_cash(self) -> bool {
        matches!(
            self,
            TransactionType::CashWithdrawal | TransactionType::CashAdvance
        )
    }

    /// Money comes in: no limits or funds checks, a credit on clearing.
    pub fn is_credit(self) -> bool {
        matches!(
            self,
            TransactionType::Refund
                | TransactionType::AccountCredit
                | TransactionType::CreditTransaction
        )
    }
}

impl fmt::Display for TransactionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transaction states of the reference.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionState {
    InProgress,
    Completed,
    Declined,
    Cancelled,
    Unknown,
}

impl TransactionState {
    pub const ALL: [TransactionState; 5] = [
        TransactionState::InProgress,
        TransactionState::Completed,
        TransactionState::Declined,
        TransactionState::Cancelled,
        TransactionState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransactionState::InProgress => "IN_PROGRESS",
            TransactionState::Completed => "COMPLETED",
            TransactionState::Declined => "DECLINED",
            TransactionState::Cancelled => "CANCELLED",
            TransactionState::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(text: &str) -> Option<TransactionState> {
        TransactionState::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_reference() {
        for t in TransactionType::ALL {
            assert_eq!(TransactionType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        for s in TransactionState::ALL {
            assert_eq!(TransactionState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!(TransactionType::CashWithdrawal.is_cash());
        assert!(TransactionType::Refund.is_credit());
        assert!(!TransactionType::PosPurchase.is_credit());
    }
}
