//! cardcore domain types: money and currencies, ids, PANs, cards, profiles, limits,
//! spend-control rules, transactions, decline reasons, PIN blocks, and the ISO 8583 codec.
//!
//! Nothing here does I/O. Everything that can be refused is refused by construction with an
//! error that names what is wrong.
#![deny(clippy::float_arithmetic)]

pub mod card;
pub mod decline;
pub mod ids;
pub mod iso8583;
pub mod limits;
pub mod money;
pub mod pan;
pub mod pin;
pub mod profile;
pub mod rules;
pub mod time;
pub mod txn;

pub use card::{CardStatus, CardType, Channel, Expiry, Permissions};
pub use ids::{BalanceId, CardOrderId, CardToken, ProfileId, RuleId, TxnId};
pub use limits::{CardLimits, Granularity, LimitType, ProfileLimit};
pub use money::{Currency, Money, MoneyError};
pub use pan::{MaskedPan, Pan, PanFingerprint, PanKey};
pub use profile::{ProfileStatus, TimeZone};
pub use rules::{Mcc, Rule, RuleOperation, RuleType};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use txn::{TransactionState, TransactionType};
