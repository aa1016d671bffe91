//! A driver for an engine in the same process: one worker thread per lane, each handing
//! its lane's requests, in order, to a handler that returns the answer bytes.
//!
//! The handler is where the engine plugs in; with `cardcore_authz` it is three lines:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use cardcore_authz::wire::{process_message, Reply};
//! # use cardcore_sim::load::{Handler, InProcessDriver};
//! # fn demo(engine: Arc<cardcore_authz::Engine>) -> Result<(), Box<dyn std::error::Error>> {
//! let handler: Handler = Arc::new(move |bytes: &[u8]| match process_message(&engine, bytes) {
//!     Reply::Message(answer) => Some(answer),
//!     Reply::Close => None,
//! });
//! let driver = InProcessDriver::new(4, handler)?;
//! # Ok(()) }
//! ```
//!
//! The answer is stamped when the handler returns, so latency covers parsing, the
//! decision, durability (in `sync` mode) and building the response, as on the server.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;

use super::driver::{DriverError, DriverEvent, LoadDriver};

/// Answers one request (without the TCP length prefix); `None` closes the lane, as a
/// server closes a connection on a message it cannot read at all.
pub type Handler = Arc<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// The most lanes (worker threads) one driver starts.
pub const LANES_MAX: usize = 256;
/// Requests waiting for one lane's worker.
pub const LANE_QUEUE_CAPACITY: usize = 4_096;
/// Answers waiting for the runner, all lanes together.
pub const EVENT_QUEUE_CAPACITY: usize = 65_536;

/// See the module documentation.
pub struct InProcessDriver {
    /// `None` for a lane whose worker has stopped.
    lanes: Vec<Option<SyncSender<Vec<u8>>>>,
    /// `None` once dropped, so workers blocked on a full queue see it close.
    events: Option<Receiver<DriverEvent>>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for InProcessDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessDriver")
            .field("lanes", &self.lanes.len())
            .finish()
    }
}

impl InProcessDriver {
    pub fn new(lanes: usize, handler: Handler) -> Result<InProcessDriver, DriverError> {
        if lanes == 0 || lanes > LANES_MAX {
            return Err(DriverError::Connect(format!(
                "--connections must be 1 to {LANES_MAX}, got {lanes}"
            )));
        }
        let (events_tx, events) = mpsc::sync_channel(EVENT_QUEUE_CAPACITY);
        let mut senders = Vec::with_capacity(lanes);
        let mut workers = Vec::with_capacity(lanes);
        for lane in 0..lanes {
            let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(LANE_QUEUE_CAPACITY);
            let (handler, events_tx) = (Arc::clone(&handler), events_tx.clone());
            let worker = std::thread::Builder::new()
                .name(format!("load-lane-{lane}"))
                .spawn(move || serve_lane(lane, &rx, handler.as_ref(), &events_tx))
                .map_err(|e| DriverError::Connect(format!("cannot start a lane thread: {e}")))?;
            senders.push(Some(tx));
            workers.push(worker);
        }
        Ok(InProcessDriver {
            lanes: senders,
            events: Some(events),
            workers,
        })
    }
}

fn serve_lane(
    lane: usize,
    requests: &Receiver<Vec<u8>>,
    handler: &(dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync),
    events: &SyncSender<DriverEvent>,
) {
    for request in requests {
        let event = match handler(&request) {
            Some(answer) => DriverEvent::Answer {
                lane,
                message: Bytes::from(answer),
                received_at: Instant::now(),
            },
            None => DriverEvent::Closed {
                lane,
                reason: "the engine could not read a message".into(),
            },
        };
        let closed = matches!(event, DriverEvent::Closed { .. });
        if events.send(event).is_err() || closed {
            return;
        }
    }
}

impl LoadDriver for InProcessDriver {
    fn lanes(&self) -> usize {
        self.lanes.len()
    }

    fn send(&mut self, lane: usize, message: &[u8]) -> Result<(), DriverError> {
        let slot = self
            .lanes
            .get_mut(lane)
            .ok_or(DriverError::NoSuchLane(lane))?;
        let tx = slot.as_ref().ok_or(DriverError::LaneClosed(lane))?;
        if tx.send(message.to_vec()).is_err() {
            *slot = None;
            return Err(DriverError::LaneClosed(lane));
        }
        Ok(())
    }

    fn next_event(&mut self, deadline: Instant) -> Result<Option<DriverEvent>, DriverError> {
        let events = self
            .events
            .as_ref()
            .ok_or_else(|| DriverError::Stopped("the driver was dropped".into()))?;
        let wait = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(wait) {
            Ok(event) => {
                if let DriverEvent::Closed { lane, .. } = &event {
                    if let Some(slot) = self.lanes.get_mut(*lane) {
                        *slot = None;
                    }
                }
                Ok(Some(event))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(DriverError::Stopped("every lane has ended".into()))
            }
        }
    }
}

impl Drop for InProcessDriver {
    fn drop(&mut self) {
        // Closing the request queues ends the loops; closing the event queue frees a
        // worker blocked on a full one.
        self.lanes.clear();
        self.events = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn echo() -> Handler {
        Arc::new(|bytes: &[u8]| (bytes != b"close").then(|| bytes.to_vec()))
    }

    fn next(d: &mut InProcessDriver) -> DriverEvent {
        d.next_event(Instant::now() + Duration::from_secs(5))
            .unwrap()
            .expect("an event within 5 s")
    }

    #[test]
    fn answers_each_lane_in_order() {
        let mut d = InProcessDriver::new(2, echo()).unwrap();
        assert_eq!(d.lanes(), 2);
        for i in 0..100u8 {
            d.send(usize::from(i % 2), &[i]).unwrap();
        }
        let mut seen = [Vec::new(), Vec::new()];
        for _ in 0..100 {
            match next(&mut d) {
                DriverEvent::Answer { lane, message, .. } => seen[lane].push(message[0]),
                DriverEvent::Closed { .. } => panic!("no lane closes"),
            }
        }
        let evens: Vec<u8> = (0..100).step_by(2).collect();
        let odds: Vec<u8> = (1..100).step_by(2).collect();
        assert_eq!(seen, [evens, odds]);
        assert_eq!(d.next_event(Instant::now()).unwrap(), None);
    }

    #[test]
    fn a_lane_closes_alone() {
        let mut d = InProcessDriver::new(2, echo()).unwrap();
        d.send(0, b"close").unwrap();
        assert!(matches!(next(&mut d), DriverEvent::Closed { lane: 0, .. }));
        assert_eq!(d.send(0, b"x"), Err(DriverError::LaneClosed(0)));
        d.send(1, b"y").unwrap();
        assert!(matches!(next(&mut d), DriverEvent::Answer { lane: 1, .. }));
        assert_eq!(d.send(7, b"z"), Err(DriverError::NoSuchLane(7)));
        assert!(InProcessDriver::new(0, echo()).is_err());
    }
}
