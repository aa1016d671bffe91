//! cardcore authorisation engine: the decision pipeline, the transaction lifecycle, and the
//! embeddable [`Engine`].
//!
//! - [`Partition`] is the single-threaded owner of a set of profiles: it decides, records
//!   and moves money with no locks. Benchmarks and embedders that own a partition call it
//!   directly.
//! - [`Engine`] runs partitions on their own threads behind bounded queues, journals every
//!   change, recovers on open, and exposes the management operations.
//! - [`wire`] turns ISO 8583 messages into [`Request`]s and answers into responses.
#![deny(clippy::float_arithmetic)]

pub mod api;
pub mod app;
pub mod card_store;
mod codec;
pub mod controls;
pub mod engine;
pub mod error;
pub mod events;
pub mod explain;
pub mod fixture;
pub mod funds;
pub mod lifecycle;
pub mod management;
pub mod partition;
pub mod pipeline;
pub mod request;
pub mod snapshot;
pub mod state;
pub mod txn_table;
pub mod wire;

pub use engine::{Engine, EngineConfig, Outcome};
pub use error::EngineError;
pub use partition::{Partition, PartitionConfig};
pub use request::{MessageKey, MessageKind, Request};
pub use state::{Answer, Card, Profile, TxnRecord};
