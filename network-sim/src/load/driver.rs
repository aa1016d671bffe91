//! The transport seam of a load run: something that carries ISO 8583 requests to the engine
//! and brings the answers back, with the time each answer arrived.
//!
//! A driver only moves bytes. Pacing (open or closed loop), matching answers to requests,
//! latency, counting and the expected ledger live in the runner, so every driver gets the
//! same measurement. A driver has one or more *lanes* (TCP connections, or queues into an
//! embedded engine); the runner keeps every message of one profile on one lane, and a
//! driver must deliver the messages of a lane to the engine in the order they were sent.
//! That order is what lets the expected ledger apply answers in send order.
//!
//! An embedded engine needs only a few lines: parse the message, hand the request to the
//! engine, build the response in the reply callback and push it on a channel that
//! `next_event` reads (see `docs/load.md`, "Drivers").

use std::time::Instant;

use bytes::Bytes;

/// What a driver reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverEvent {
    /// One answer (a whole message, without the TCP length prefix).
    Answer {
        lane: usize,
        message: Bytes,
        /// When the answer was read, stamped as close to the wire as the driver can.
        received_at: Instant,
    },
    /// The lane is gone (connection closed or broken): requests still waiting on it will
    /// not be answered, and nothing more can be sent on it.
    Closed { lane: usize, reason: String },
}

/// Why a driver could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("lane {0} is closed")]
    LaneClosed(usize),
    #[error("no lane {0}")]
    NoSuchLane(usize),
    #[error("message of {0} bytes does not fit a frame")]
    TooLong(usize),
    #[error("the driver has stopped: {0}")]
    Stopped(String),
}

/// A transport for load traffic. See the module documentation.
pub trait LoadDriver {
    /// The number of lanes, at least 1.
    fn lanes(&self) -> usize;

    /// Queues one request on `lane`. May wait while the lane's queue is full (that is
    /// back-pressure, and open-loop latency counts it).
    fn send(&mut self, lane: usize, message: &[u8]) -> Result<(), DriverError>;

    /// The next event, waiting until `deadline` at most; `None` when nothing came.
    fn next_event(&mut self, deadline: Instant) -> Result<Option<DriverEvent>, DriverError>;
}
