//! Synthetic traffic (`cardcore sim load`): a seeded population and message mix, sent
//! through a driver at a fixed rate (open loop) or concurrency (closed loop), with a report
//! of throughput, latency, answers by code and reason, and an end-of-run reconciliation of
//! the simulator's expected ledger against the engine's balances.
//!
//! - [`population`]: profiles, balances, cards, limits, rules and FX rates, set up through
//!   the scenario [`crate::scenario::Target`] as a list of [`SetupOp`]s.
//! - [`generator`]: the seeded [`TrafficGenerator`] (Zipf card popularity from [`zipf`],
//!   the message mix of [`mix`], ISO 8583 bytes from [`encode`]).
//! - [`ledger`]: the [`ExpectedLedger`] and [`reconcile`].
//! - [`driver`]: the [`LoadDriver`] seam; [`tcp`]: the TCP driver; [`in_process`]: lanes
//!   of worker threads around an embedded engine's handler.
//! - [`runner`]: [`run_load`] (or [`prepare_load`] then [`drive_load`]), pacing, matching
//!   ([`matcher`]) and counting ([`stats`]).
//! - [`report`]: [`LoadReport`] (`report.json`, text), [`svg`]: the latency plot;
//!   [`progress`]: the terminal progress bar.
//!
//! ```no_run
//! # fn demo(target: &mut dyn cardcore_sim::scenario::Target) -> Result<(), Box<dyn std::error::Error>> {
//! use cardcore_core::pin::ZonePinKey;
//! use cardcore_sim::load::{run_load, LoadConfig, Pacing, TcpDriver};
//! let zpk = ZonePinKey::from_hex("0123456789ABCDEFFEDCBA9876543210")?;
//! let mut config = LoadConfig::new(10_000, 42, zpk);
//! config.pacing = Pacing::OpenLoop { rate_per_s: 5_000 };
//! let mut driver = TcpDriver::connect("127.0.0.1:8583", 4)?;
//! let report = run_load(&config, target, &mut driver)?;
//! report.write_to_dir(std::path::Path::new("load-report"))?;
//! print!("{report}");
//! # Ok(()) }
//! ```

pub mod driver;
pub mod encode;
pub mod generator;
pub mod in_process;
pub mod ledger;
pub mod matcher;
pub mod mix;
pub mod population;
pub mod progress;
pub mod report;
pub mod runner;
pub mod stats;
pub mod svg;
pub mod tcp;
pub mod zipf;

pub use driver::{DriverError, DriverEvent, LoadDriver};
pub use encode::{corrupt, Encoder, Malformation};
pub use generator::{
    ClockJumps, Effect, OpenMode, PlannedMessage, TrafficConfig, TrafficEvent, TrafficGenerator,
};
pub use in_process::{Handler, InProcessDriver};
pub use ledger::{reconcile, Amounts, ExpectedLedger, HoldTtl, Reconciliation};
pub use mix::{Action, TrafficMix};
pub use population::{Deployed, Population, PopulationConfig, SetupOp};
pub use progress::ProgressMode;
pub use report::{LoadReport, PercentilePoint};
pub use runner::{drive_load, prepare_load, run_load, LoadConfig, LoadError, Pacing, PreparedLoad};
pub use tcp::TcpDriver;
pub use zipf::{Dice, Zipf};
