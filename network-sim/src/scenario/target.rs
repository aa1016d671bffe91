//! The seam between the replay runner and what it drives: an embedded engine or a running
//! server (ISO 8583 over TCP plus the management HTTP API).
//!
//! The runner resolves every scenario name to an engine id, fills in every default and
//! assigns every message identifier before calling a [`Target`], so two targets given the
//! same scenario receive identical calls and identical messages. A target only translates.
//!
//! PANs, PINs and CVV2s from scenario files are test data, but they are handled like real
//! ones: a [`Pan`] shows itself masked, [`ClearPin`] and [`Cvv2`] show nothing, and nothing
//! in a report contains them. Only a target may expose them, to build a message.

use std::fmt;

use cardcore_core::{
    CardStatus, CardToken, CardType, Channel, Currency, Expiry, Granularity, LimitType, Mcc, Money,
    Pan, ProfileId, ProfileStatus, RuleId, RuleOperation, RuleType, TimeZone, Timestamp,
    TransactionState, TxnId,
};
use rust_decimal::Decimal;

/// What the runner drives. Object-safe and synchronous: a TCP target runs its own small
/// async runtime inside. Every method that changes state either does all of it or, on
/// [`TargetError::Refused`], none of it.
pub trait Target {
    /// Starts a scenario file: an empty engine whose clock reads `now`.
    fn reset(&mut self, now: Timestamp) -> Result<(), TargetError>;
    fn set_clock(&mut self, now: Timestamp) -> Result<(), TargetError>;
    /// Moves the clock forward; `by_ms` is never negative.
    fn advance_clock(&mut self, by_ms: i64) -> Result<(), TargetError>;

    fn create_profile(&mut self, setup: &ProfileSetup) -> Result<ProfileId, TargetError>;
    /// Changes only what is `Some`.
    fn update_profile(
        &mut self,
        profile: ProfileId,
        update: &ProfileUpdate,
    ) -> Result<(), TargetError>;
    /// Opens the STANDARD balance in `amount.currency` if missing, then tops it up (a
    /// simulation top-up; a zero amount only opens the balance).
    fn top_up(&mut self, profile: ProfileId, amount: Money) -> Result<(), TargetError>;
    /// Sets one directed rate. The runner derives implied inverses itself.
    fn set_fx_rate(&mut self, rate: &FxRate) -> Result<(), TargetError>;

    fn issue_card(&mut self, setup: &CardSetup) -> Result<CardToken, TargetError>;
    /// Through the same rules as the management API's card status endpoint.
    fn set_card_status(&mut self, card: CardRef, status: CardStatus) -> Result<(), TargetError>;
    /// A bulk update, all or nothing.
    fn set_permissions(
        &mut self,
        card: CardRef,
        changes: &[(Channel, bool)],
    ) -> Result<(), TargetError>;
    /// Sets the given granularities (all amounts in one currency) and keeps the others.
    fn set_card_limits(
        &mut self,
        card: CardRef,
        values: &[(Granularity, Money)],
    ) -> Result<(), TargetError>;
    fn delete_card_limits(
        &mut self,
        card: CardRef,
        which: &[Granularity],
    ) -> Result<(), TargetError>;
    fn set_profile_limit(
        &mut self,
        profile: ProfileId,
        limit: &ProfileLimitSetup,
    ) -> Result<(), TargetError>;
    fn reset_pin_count(&mut self, card: CardRef) -> Result<(), TargetError>;

    /// Creates a spend-control rule, not yet applied.
    fn create_rule(&mut self, setup: &RuleSetup) -> Result<RuleId, TargetError>;
    fn apply_rule(&mut self, rule: RuleId) -> Result<(), TargetError>;
    fn unapply_rule(&mut self, rule: RuleId) -> Result<(), TargetError>;
    fn delete_rule(&mut self, rule: RuleId) -> Result<(), TargetError>;

    /// Sends one message and waits for its answer. A closed connection or a message the
    /// engine could not even frame is an outcome (`disconnected`), not an error; an error
    /// means the target itself failed.
    fn send(&mut self, message: &TrafficMessage) -> Result<TrafficOutcome, TargetError>;

    /// The balance in `currency`, or `None` when the profile has none in it.
    fn balance(
        &mut self,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<Option<BalanceView>, TargetError>;
    fn transaction(&mut self, txn: TxnRef) -> Result<TxnView, TargetError>;
    /// Usage counted in `window`, in the currency the engine tracks it in.
    fn limit_usage(&mut self, scope: LimitScope, window: Granularity)
        -> Result<Money, TargetError>;
    fn pin_tries(&mut self, card: CardRef) -> Result<u32, TargetError>;
    /// Runs the ledger's own invariant check; an empty list means it holds.
    fn invariant_violations(&mut self) -> Result<Vec<String>, TargetError>;

    /// Another client of the same engine, with connections of its own, so that setup calls
    /// can run side by side; `None` (the default) when the target cannot be shared so.
    fn fork(&self) -> Option<Box<dyn Target + Send>> {
        None
    }
}

/// Why a target call did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The engine refused the request as invalid and changed nothing (an API 4xx). This is
    /// the only error that satisfies `expect_error`.
    #[error("refused: {0}")]
    Refused(String),
    /// The request could not be carried out: I/O, protocol, or an internal error.
    #[error("target failed: {0}")]
    Failed(String),
}

/// A card as the management API addresses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardRef {
    pub profile: ProfileId,
    pub token: CardToken,
}

/// A transaction to read. `card` is known for every transaction a scenario named; it is
/// `None` only for a transaction created by a `raw` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxnRef {
    pub id: TxnId,
    pub card: Option<CardRef>,
}

/// Whose limit usage to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitScope {
    Card(CardRef),
    Profile(ProfileId, LimitType),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSetup {
    pub timezone: TimeZone,
    pub status: ProfileStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub timezone: Option<TimeZone>,
    pub status: Option<ProfileStatus>,
}

/// 1 `from` = `rate` `to`, plus `fee_percent` on conversions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxRate {
    pub from: Currency,
    pub to: Currency,
    pub rate: Decimal,
    pub fee_percent: Decimal,
}

/// A card as the issuer holds it. `expiry` and `card_type` have their defaults filled in by
/// the runner; `currency` stays `None` when the scenario gives none (the engine's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSetup {
    pub profile: ProfileId,
    pub pan: Pan,
    pub pin: Option<ClearPin>,
    pub cvv2: Option<Cvv2>,
    pub expiry: Expiry,
    pub status: CardStatus,
    pub currency: Option<Currency>,
    pub card_type: CardType,
    pub smart_conversion: bool,
    /// Disabled and not enableable; every other permission starts enabled.
    pub locked: Vec<Channel>,
}

/// One profile limit type; a `None` maximum leaves the engine's current maximum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileLimitSetup {
    pub limit_type: LimitType,
    pub daily: Money,
    pub monthly: Money,
    pub max_daily: Option<Money>,
    pub max_monthly: Option<Money>,
}

/// A rule as the spend-controls API takes it; the values are validated by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetup {
    pub rule_type: RuleType,
    pub operation: RuleOperation,
    pub values: Vec<String>,
    pub description: String,
}

/// A message to send: a fully specified card message, or bytes sent as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficMessage {
    Card(Box<CardMessage>),
    /// One message's bytes, without the 2-byte length frame (a TCP target adds it).
    Raw(Vec<u8>),
}

/// Everything a codec needs to build one ISO 8583 message; nothing is left to a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardMessage {
    pub kind: MessageKind,
    pub pan: Pan,
    /// DE 4 and DE 49. For a reversal this is the intended final amount (`0` = full); for
    /// an incremental authorisation the amount added; for a clearing the cleared amount.
    pub amount: Money,
    /// DE 3, positions 1-2.
    pub processing: ProcessingType,
    /// DE 22.
    pub entry: EntryMode,
    /// DE 18.
    pub mcc: Mcc,
    /// In clear: the target builds the ISO 9564 format-0 PIN block (DE 52).
    pub pin: Option<ClearPin>,
    pub cvv2: Option<Cvv2>,
    /// DE 14.
    pub expiry: Expiry,
    /// DE 43 name.
    pub merchant: String,
    /// DE 43 country, ISO 3166-1 alpha-2.
    pub country: String,
    pub ids: MessageIds,
    /// For incremental authorisations, clearings and reversals: the authorisation they
    /// refer to (DE 90 and the engine's own id).
    pub original: Option<OriginalRef>,
}

/// The identifiers the runner assigns to every message it builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageIds {
    /// DE 11, 1..=999999.
    pub stan: u32,
    /// DE 7 (sent as MMDDhhmmss UTC): the scenario clock when the message was built.
    pub transmission_time: Timestamp,
    /// DE 37, 12 characters.
    pub rrn: String,
    /// DE 32.
    pub acquirer_id: String,
}

/// The authorisation a follow-up message refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRef {
    pub kind: MessageKind,
    pub ids: MessageIds,
    /// The original authorisation's own amount (DE 4 of that message).
    pub amount: Money,
    /// DE 38 of the original's answer, when it was approved.
    pub approval_code: Option<String>,
    /// The engine's id of the original transaction, when one was recorded.
    pub transaction_id: Option<TxnId>,
}

/// Which message a [`CardMessage`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// 0100.
    Authorization { pre_auth: bool },
    /// 0200: decided and posted at once.
    Financial,
    /// 0120: stand-in advice.
    Advice { pre_auth: bool },
    /// 0100 adding to an earlier authorisation.
    Incremental,
    /// 0220.
    Clearing,
    /// 0400.
    Reversal,
}

impl MessageKind {
    pub fn mti(self) -> &'static str {
        match self {
            MessageKind::Authorization { .. } | MessageKind::Incremental => "0100",
            MessageKind::Financial => "0200",
            MessageKind::Advice { .. } => "0120",
            MessageKind::Clearing => "0220",
            MessageKind::Reversal => "0400",
        }
    }
}

/// The scenario's `type` of a card transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessingType {
    Purchase,
    CashWithdrawal,
    Refund,
}

impl ProcessingType {
    pub const ALL: [ProcessingType; 3] = [
        ProcessingType::Purchase,
        ProcessingType::CashWithdrawal,
        ProcessingType::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingType::Purchase => "PURCHASE",
            ProcessingType::CashWithdrawal => "CASH_WITHDRAWAL",
            ProcessingType::Refund => "REFUND",
        }
    }

    pub fn parse(text: &str) -> Option<ProcessingType> {
        ProcessingType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// DE 3 positions 1-2 (ISO 8583:1987 transaction type codes).
    pub fn processing_code(self) -> &'static str {
        match self {
            ProcessingType::Purchase => "00",
            ProcessingType::CashWithdrawal => "01",
            ProcessingType::Refund => "20",
        }
    }
}

/// How the card was presented: the ISO 8583 codec's entry modes (DE 22), with the scenario
/// format's names (`CHIP`, `CONTACTLESS`, `MAGSTRIPE`, `ECOM`, `WALLET`, `MANUAL`).
pub use cardcore_core::iso8583::EntryMode;

/// What came back for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficOutcome {
    /// DE 39; `None` when no answer came.
    pub response_code: Option<String>,
    pub approved: bool,
    pub approved_amount: Option<Money>,
    /// DE 38.
    pub approval_code: Option<String>,
    /// The engine's id of the transaction the message created or acted on; `None` when
    /// none was recorded (a format error, an unknown PAN).
    pub transaction_id: Option<TxnId>,
    /// The target closed the connection instead of answering.
    pub disconnected: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceView {
    pub available: Money,
    pub reserved: Money,
    pub cash: Money,
}

/// A transaction as the management API shows it. Reasons are the reference's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnView {
    pub state: TransactionState,
    pub decline_reason: Option<String>,
    pub detailed_decline_reason: Option<String>,
    /// The transaction amount and currency.
    pub amount: Money,
}

/// A PIN in clear, 4 to 12 digits. Test data from a scenario; never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct ClearPin(String);

impl ClearPin {
    pub const MIN_DIGITS: usize = 4;
    pub const MAX_DIGITS: usize = 12;

    /// Refuses anything but 4 to 12 ASCII digits; the error never echoes the input.
    pub fn parse(text: &str) -> Result<ClearPin, &'static str> {
        if !(ClearPin::MIN_DIGITS..=ClearPin::MAX_DIGITS).contains(&text.len()) {
            return Err("a PIN has 4 to 12 digits");
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err("a PIN has only digits");
        }
        Ok(ClearPin(text.to_owned()))
    }

    /// The digits, for building a PIN block. Never log this.
    pub fn expose_digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClearPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClearPin(..)")
    }
}

/// A card verification value (CVV2/CVC2), 3 or 4 digits. Never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvv2(String);

impl Cvv2 {
    /// Refuses anything but 3 or 4 ASCII digits; the error never echoes the input.
    pub fn parse(text: &str) -> Result<Cvv2, &'static str> {
        if !(3..=4).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err("a CVV2 has 3 or 4 digits");
        }
        Ok(Cvv2(text.to_owned()))
    }

    /// The digits, for packing into a message. Never log this.
    pub fn expose_digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cvv2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvv2(..)")
    }
}
