//! Scenario replay: the public scenario format (`SCENARIO-FORMAT.md`, JSON Lines), parsed
//! into typed steps and replayed against a [`Target`], with a report of every unmet
//! expectation that ends in `N passed, M failed`.
//!
//! - [`parse`]: file text to [`Step`]s, a bad line becoming a [`ParseError`] in its place.
//! - [`runner`]: the [`Runner`] that maps scenario names to engine ids and counts
//!   expectations; [`traffic`] builds the ISO 8583 message descriptions it sends.
//! - [`target`]: the [`Target`] trait that an embedded engine or a TCP/HTTP client
//!   implements, and the message and answer types it speaks.
//! - [`expect`] and [`report`]: the checks and the report.
//!
//! ```no_run
//! # fn demo(target: &mut dyn cardcore_sim::scenario::Target) {
//! use cardcore_sim::scenario::replay_files;
//! let report = replay_files(target, &["scenarios/decline_basics.jsonl"]);
//! print!("{report}");
//! std::process::exit(if report.is_success() { 0 } else { 1 });
//! # }
//! ```

pub mod expect;
pub mod parse;
pub mod report;
pub mod runner;
pub mod step;
pub mod target;
pub mod traffic;
pub mod values;

pub use parse::{parse_line, OpFamily, OpName, ParseError, Scenario};
pub use report::{Failure, Problem, Report, StepOutcome};
pub use runner::{replay_files, Runner, SCENARIO_START};
pub use step::{Name, Step, StepKind};
pub use target::{
    BalanceView, CardMessage, CardRef, CardSetup, ClearPin, Cvv2, EntryMode, FxRate, LimitScope,
    MessageIds, MessageKind, OriginalRef, ProcessingType, ProfileLimitSetup, ProfileSetup,
    ProfileUpdate, RuleSetup, Target, TargetError, TrafficMessage, TrafficOutcome, TxnRef, TxnView,
};
