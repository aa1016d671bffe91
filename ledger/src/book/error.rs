//! The book's one error type. A decision that is refused returns one of these and changes
//! nothing; so does an event that does not fit the state it is applied to.

use cardcore_core::{
    BalanceId, CardToken, Currency, Granularity, Money, MoneyError, ProfileId, TxnId,
};

/// Why a decision or an event was refused. Every variant names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error("unknown profile {0}")]
    UnknownProfile(ProfileId),
    #[error("profile {0} is already open")]
    ProfileExists(ProfileId),
    #[error("unknown balance {0}")]
    UnknownBalance(BalanceId),
    #[error("profile {profile} already has a {currency} balance ({balance})")]
    BalanceExists {
        profile: ProfileId,
        currency: Currency,
        balance: BalanceId,
    },
    #[error("balance id {0} is already in use")]
    BalanceIdInUse(BalanceId),
    #[error("profile {profile} already has {max} balances")]
    TooManyBalances { profile: ProfileId, max: usize },
    #[error("unknown card {0}")]
    UnknownCard(CardToken),
    #[error("card {0} is already open")]
    CardExists(CardToken),
    #[error("transaction {0} already has a hold")]
    HoldExists(TxnId),
    #[error("transaction {0} has no hold")]
    UnknownHold(TxnId),
    #[error("transaction {0} already has limit usage recorded")]
    UsageExists(TxnId),
    #[error("transaction {0} has no limit usage recorded")]
    UnknownUsage(TxnId),
    #[error("transaction {0}: the usage record is for another card or limit type")]
    UsageMismatch(TxnId),
    #[error("{txn}: usage cannot be released to {requested}, above the {counted} counted")]
    ReleaseAboveUsage {
        txn: TxnId,
        counted: Money,
        requested: Money,
    },
    #[error("{what} must be positive, got {amount}")]
    NonPositiveAmount { what: &'static str, amount: Money },
    #[error("{what} must not be negative, got {amount}")]
    NegativeAmount { what: &'static str, amount: Money },
    #[error("{what}: expected {expected}, got {got}")]
    CurrencyMismatch {
        what: &'static str,
        expected: Currency,
        got: Currency,
    },
    /// Not enough money across the balances the card may use. `smart_conversion_blocked`
    /// says that conversion from other balances was disabled for the card (the engine maps
    /// it to `INSUFFICIENT_FUNDS_FOR_BLOCKED_SMART_CONVERSION`).
    #[error(
        "insufficient funds for {txn}: {shortfall} short{}",
        if *smart_conversion_blocked { " (smart conversion disabled for the card)" } else { "" }
    )]
    InsufficientFunds {
        txn: TxnId,
        shortfall: Money,
        smart_conversion_blocked: bool,
    },
    /// Funding would need more holds on other balances than a hold can carry.
    #[error("funding {txn} needs more than {max} legs on other balances")]
    TooManyLegs { txn: TxnId, max: usize },
    #[error("{txn}: the final amount {requested} is above the hold {held}; grow the hold instead")]
    AdjustAboveHold {
        txn: TxnId,
        held: Money,
        requested: Money,
    },
    #[error("no {window} usage counter is kept for {key}")]
    NoCounter { key: String, window: Granularity },
    #[error("amount arithmetic overflowed: {what}")]
    Overflow { what: &'static str },
    #[error("currency conversion failed: {0}")]
    Conversion(#[from] MoneyError),
    /// An event that does not fit the state it is applied to: a corrupt journal or a bug
    /// (an event applied twice, or to another partition's book). Nothing was changed.
    #[error("{event} event does not apply: {why}")]
    EventDoesNotApply { event: &'static str, why: String },
}

impl BookError {
    pub(crate) fn mismatch(event: &'static str, why: impl Into<String>) -> BookError {
        BookError::EventDoesNotApply {
            event,
            why: why.into(),
        }
    }
}
