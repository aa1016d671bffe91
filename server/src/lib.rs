//! The cardcore service: `cardcore serve`.
//!
//! - [`cli`]: the `cardcore` command line (`serve`, `demo`, `sim replay`, `sim load`).
//! - [`config`]: the TOML configuration with command-line overrides, and its bounds.
//! - [`keys`]: key material, generated into the data directory on first start.
//! - [`service`]: [`Service`], what the ISO 8583 listener and the management HTTP API share:
//!   the engine (swappable for sandbox resets), the clock, metrics, tokens, durability.
//! - [`metrics`]: counters and histograms, rendered for `GET /metrics`.
//! - [`iso`]: the ISO 8583 listener (TCP, framing, pipelining, back-pressure).
//! - `peers`: open connections per peer address, for both listeners' per-address bounds.
//! - [`http`]: the management HTTP API (`http::router`).
//! - [`logging`]: `tracing` setup.
//! - [`server`]: [`Server`], both listeners around a service, and graceful shutdown.
//!
//! Only this crate knows TCP and HTTP; the engine (`cardcore_authz`) knows neither.

pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod iso;
pub mod keys;
pub mod logging;
pub mod metrics;
mod peers;
pub mod server;
pub mod service;
pub mod sim;

pub use config::{Config, Role, Secret, TokenConfig};
pub use error::ServiceError;
pub use metrics::Metrics;
pub use server::Server;
pub use service::{DurableState, Health, Service};
