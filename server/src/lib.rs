//! The cardcore service: `cardcore serve`.
//!
//! - [`config`]: the TOML configuration with command-line overrides, and its bounds.
//! - [`keys`]: key material, generated into the data directory on first start.
//! - [`service`]: [`Service`], what the ISO 8583 listener and the management HTTP API share:
//!   the engine (swappable for sandbox resets), the clock, metrics, tokens, durability.
//! - [`metrics`]: counters and histograms, rendered for `GET /metrics`.
//!
//! Only this crate knows TCP and HTTP; the engine (`cardcore_authz`) knows neither.

pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod service;

pub use config::{Config, Role, Secret, TokenConfig};
pub use error::ServiceError;
pub use metrics::Metrics;
pub use service::{DurableState, Health, Service};
