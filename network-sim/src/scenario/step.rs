//! The steps of a scenario as typed values: what a parsed line means, before anything runs.
//!
//! Amounts stay `Decimal` in major units here because their currency is sometimes known only
//! when the step runs (an `expect_txn` amount is in the transaction's currency); the runner
//! turns them into [`Money`](cardcore_core::Money) exactly, or refuses them.

use std::fmt;

use cardcore_core::{
    CardStatus, CardType, Channel, Currency, Expiry, Granularity, LimitType, Mcc, Pan,
    ProfileStatus, RuleOperation, RuleType, TimeZone, Timestamp, TransactionState,
};
use rust_decimal::Decimal;

use super::target::{ClearPin, Cvv2, EntryMode, ProcessingType};

/// One line of a scenario that holds a step (comments and blank lines are not steps).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based line number in the file.
    pub line: usize,
    pub kind: StepKind,
}

/// The three families of steps, each with its own kind of expectation.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Sets the engine up; `expect_error` (when given) is one expectation.
    Setup {
        op: SetupOp,
        expect_error: Option<bool>,
    },
    /// Sends one ISO 8583 message; `expect` (when given) is one expectation.
    Traffic {
        op: TrafficOp,
        expect: Option<TrafficExpect>,
    },
    /// Reads the engine's state; always one expectation.
    Expect(ExpectOp),
}

/// A scenario's own name for a profile, card, transaction or rule. Strings and integers are
/// both accepted and normalised to text, so `1` and `"1"` name the same thing.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(pub String);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({:?})", self.0)
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Name {
        Name(text.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetupOp {
    Clock(ClockChange),
    Profile(ProfileStep),
    Balance {
        profile: Name,
        currency: Currency,
        amount: Decimal,
    },
    Fx(FxStep),
    Card(Box<CardStep>),
    CardStatus {
        card: Name,
        status: CardStatus,
    },
    Permissions {
        card: Name,
        set: Vec<(Channel, bool)>,
    },
    CardLimits(CardLimitsStep),
    ProfileLimits(ProfileLimitsStep),
    Rule(RuleStep),
    ApplyRule {
        rule: Name,
    },
    UnapplyRule {
        rule: Name,
    },
    DeleteRule {
        rule: Name,
    },
    ResetPinCount {
        card: Name,
    },
}

/// `clock`: exactly one of `set` and `advance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockChange {
    Set(Timestamp),
    AdvanceMs(i64),
}

/// `profile`: unset keys keep their value on update and take their default on creation.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileStep {
    pub profile: Name,
    pub timezone: Option<TimeZone>,
    pub status: Option<ProfileStatus>,
}

/// `fx`: 1 `from` = `rate` `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct FxStep {
    pub from: Currency,
    pub to: Currency,
    pub rate: Decimal,
    pub fee_percent: Decimal,
}

/// `card`: a card issued as it is on the issuer's side. The PIN and CVV2 are test data.
#[derive(Debug, Clone, PartialEq)]
pub struct CardStep {
    pub profile: Name,
    pub card: Name,
    pub pan: Pan,
    pub pin: Option<ClearPin>,
    pub cvv2: Option<Cvv2>,
    pub expiry: Option<Expiry>,
    pub status: CardStatus,
    pub currency: Option<Currency>,
    pub card_type: Option<CardType>,
    pub smart_conversion: bool,
    pub locked: Vec<Channel>,
}

/// `card_limits`: set some granularities, or delete some.
#[derive(Debug, Clone, PartialEq)]
pub enum CardLimitsStep {
    Set {
        card: Name,
        currency: Currency,
        values: Vec<(Granularity, Decimal)>,
    },
    Delete {
        card: Name,
        which: Vec<Granularity>,
    },
}

/// `profile_limits` for one type.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileLimitsStep {
    pub profile: Name,
    pub limit_type: LimitType,
    pub currency: Currency,
    pub daily: Decimal,
    pub monthly: Decimal,
    pub max_daily: Option<Decimal>,
    pub max_monthly: Option<Decimal>,
}

/// `rule`: values are kept as text; the engine validates them against the rule's type.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStep {
    pub rule: Name,
    pub rule_type: RuleType,
    pub operation: RuleOperation,
    pub values: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrafficOp {
    /// `auth` (0100, or 0200 with `single_message`).
    Auth(Box<AuthStep>),
    /// `advice` (0120): the network already approved.
    Advice(Box<AuthStep>),
    Incremental {
        txn: Name,
        of: Name,
        amount: Decimal,
        currency: Currency,
    },
    Clear {
        of: Name,
        amount: Decimal,
        currency: Currency,
    },
    /// `amount` is the intended final amount (`0` = full reversal).
    Reverse {
        of: Name,
        amount: Decimal,
        currency: Currency,
    },
    Duplicate {
        of: Name,
    },
    Raw {
        bytes: RawBytes,
    },
}

/// The keys shared by `auth` and `advice`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthStep {
    pub txn: Name,
    pub card: Name,
    pub amount: Decimal,
    pub currency: Currency,
    pub processing: ProcessingType,
    pub entry: EntryMode,
    pub mcc: Mcc,
    pub pin: Option<ClearPin>,
    pub cvv2: Option<Cvv2>,
    pub expiry: Option<Expiry>,
    pub merchant: Option<String>,
    pub country: Option<String>,
    pub pre_auth: bool,
    pub single_message: bool,
}

/// The bytes of a `raw` step. They may hold a PAN, so `Debug` shows only their length.
#[derive(Clone, PartialEq, Eq)]
pub struct RawBytes(pub Vec<u8>);

impl fmt::Debug for RawBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawBytes({} bytes)", self.0.len())
    }
}

/// `expect` on a traffic step. For the two reasons, `Some(None)` is the JSON `null`: the
/// transaction must have no reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficExpect {
    pub approved: Option<bool>,
    pub response_code: Option<String>,
    pub decline_reason: Option<Option<String>>,
    pub detailed_decline_reason: Option<Option<String>>,
    pub state: Option<TransactionState>,
    pub approved_amount: Option<Decimal>,
    pub disconnect: Option<bool>,
}

impl TrafficExpect {
    /// Whether checking it needs the transaction record, not just the answer on the wire.
    pub fn needs_transaction(&self) -> bool {
        self.state.is_some()
            || self.decline_reason.is_some()
            || self.detailed_decline_reason.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExpectOp {
    Balance(BalanceExpect),
    Txn(TxnExpect),
    LimitUsage(LimitUsageExpect),
    PinTries { card: Name, count: u32 },
    Invariants,
}

/// `expect_balance`: at least one of the three amounts, in the line's currency.
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceExpect {
    pub profile: Name,
    pub currency: Currency,
    pub available: Option<Decimal>,
    pub reserved: Option<Decimal>,
    pub cash: Option<Decimal>,
}

/// `expect_txn`: at least one key besides `txn`; `amount` is in the transaction's currency.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnExpect {
    pub txn: Name,
    pub state: Option<TransactionState>,
    pub decline_reason: Option<Option<String>>,
    pub detailed_decline_reason: Option<Option<String>>,
    pub amount: Option<Decimal>,
    pub currency: Option<Currency>,
}

/// `expect_limit_usage`: `usage` is in the currency the engine tracks that usage in.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitUsageExpect {
    pub scope: UsageScope,
    pub window: Granularity,
    pub usage: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UsageScope {
    Card(Name),
    Profile(Name, LimitType),
}
