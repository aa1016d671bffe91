//! The TCP driver: K connections to a cardcore server, each framed with the 2-byte
//! big-endian length, pipelined (requests go out without waiting for answers).
//!
//! Each connection has a writer task that drains its queue into one buffered write per
//! wake-up (so a burst of requests costs one system call) and a reader task that splits the
//! stream into frames and stamps each answer with the time it was decoded. Both run on a
//! small tokio runtime owned by the driver; the runner talks to it through bounded queues,
//! so it stays synchronous.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cardcore_core::iso8583::{encode_frame, FrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use super::driver::{DriverError, DriverEvent, LoadDriver};

/// The most connections one driver opens.
pub const CONNECTIONS_MAX: usize = 1_024;
/// Framed requests waiting for a connection's writer.
pub const LANE_QUEUE_CAPACITY: usize = 4_096;
/// Answers waiting for the runner, all connections together.
pub const EVENT_QUEUE_CAPACITY: usize = 65_536;
const READ_BUFFER_BYTES: usize = 64 * 1024;
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// How long a reader waits before offering an answer again when the runner is behind.
const EVENT_QUEUE_RETRY: Duration = Duration::from_millis(1);
/// How long `connect` waits for each connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// See the module documentation.
#[derive(Debug)]
pub struct TcpDriver {
    /// `None` once dropped: the runtime is shut down without waiting for blocked reads.
    runtime: Option<Runtime>,
    /// `None` for a lane whose writer has stopped.
    lanes: Vec<Option<mpsc::Sender<Vec<u8>>>>,
    events: std_mpsc::Receiver<DriverEvent>,
}

impl TcpDriver {
    /// Opens `connections` connections to `addr` (`host:port`).
    pub fn connect(addr: &str, connections: usize) -> Result<TcpDriver, DriverError> {
        if connections == 0 || connections > CONNECTIONS_MAX {
            return Err(DriverError::Connect(format!(
                "--connections must be 1 to {CONNECTIONS_MAX}, got {connections}"
            )));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("load-tcp")
            .enable_all()
            .build()
            .map_err(|e| DriverError::Connect(format!("cannot start the I/O runtime: {e}")))?;
        let (events_tx, events) = std_mpsc::sync_channel(EVENT_QUEUE_CAPACITY);
        let mut lanes = Vec::with_capacity(connections);
        for lane in 0..connections {
            let stream = runtime.block_on(async {
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
            });
            let stream = match stream {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(DriverError::Connect(format!("{addr}: {e}"))),
                Err(_) => return Err(DriverError::Connect(format!("{addr}: timed out"))),
            };
            // Requests are small and latency is what is measured.
            stream
                .set_nodelay(true)
                .map_err(|e| DriverError::Connect(format!("{addr}: {e}")))?;
            let (read, write) = stream.into_split();
            let (tx, rx) = mpsc::channel(LANE_QUEUE_CAPACITY);
            runtime.spawn(write_lane(lane, rx, write, events_tx.clone()));
            runtime.spawn(read_lane(lane, read, events_tx.clone()));
            lanes.push(Some(tx));
        }
        Ok(TcpDriver {
            runtime: Some(runtime),
            lanes,
            events,
        })
    }
}

impl LoadDriver for TcpDriver {
    fn lanes(&self) -> usize {
        self.lanes.len()
    }

    fn send(&mut self, lane: usize, message: &[u8]) -> Result<(), DriverError> {
        let slot = self
            .lanes
            .get_mut(lane)
            .ok_or(DriverError::NoSuchLane(lane))?;
        let tx = slot.as_ref().ok_or(DriverError::LaneClosed(lane))?;
        let mut frame = Vec::with_capacity(message.len() + 2);
        encode_frame(message, &mut frame).map_err(|_| DriverError::TooLong(message.len()))?;
        let sent = match tx.try_send(frame) {
            Ok(()) => Ok(()),
            // The writer is behind: wait for room (this thread is not in the runtime).
            Err(mpsc::error::TrySendError::Full(frame)) => tx.blocking_send(frame).map_err(|_| ()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        };
        sent.map_err(|()| {
            *slot = None;
            DriverError::LaneClosed(lane)
        })
    }

    fn next_event(&mut self, deadline: Instant) -> Result<Option<DriverEvent>, DriverError> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(wait) {
            Ok(event) => {
                if let DriverEvent::Closed { lane, .. } = &event {
                    if let Some(slot) = self.lanes.get_mut(*lane) {
                        *slot = None;
                    }
                }
                Ok(Some(event))
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(DriverError::Stopped(
                "every connection task has ended".into(),
            )),
        }
    }
}

impl Drop for TcpDriver {
    fn drop(&mut self) {
        // Closing the queues ends the writers; readers blocked on a socket are dropped
        // with the runtime.
        self.lanes.clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn write_lane(
    lane: usize,
    mut rx: mpsc::Receiver<Vec<u8>>,
    write: OwnedWriteHalf,
    events: std_mpsc::SyncSender<DriverEvent>,
) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write);
    while let Some(frame) = rx.recv().await {
        let mut result = out.write_all(&frame).await;
        // Whatever is already queued goes out with it; the queue bounds the batch.
        while let (Ok(()), Ok(more)) = (&result, rx.try_recv()) {
            result = out.write_all(&more).await;
        }
        if let Err(e) = result.and(out.flush().await) {
            let reason = format!("write failed: {e}");
            push(&events, DriverEvent::Closed { lane, reason }).await;
            return;
        }
    }
    // The driver closed the queue: finish the stream politely.
    let _ = out.shutdown().await;
}

async fn read_lane(
    lane: usize,
    mut read: OwnedReadHalf,
    events: std_mpsc::SyncSender<DriverEvent>,
) {
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    let mut decoder = FrameDecoder::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(message)) => {
                let received_at = Instant::now();
                let answer = DriverEvent::Answer {
                    lane,
                    message,
                    received_at,
                };
                if !push(&events, answer).await {
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                let reason = format!("bad frame from the server: {e}");
                push(&events, DriverEvent::Closed { lane, reason }).await;
                return;
            }
        }
        let reason = match read.read_buf(&mut buf).await {
            Ok(0) => "closed by the server".to_owned(),
            Ok(_) => continue,
            Err(e) => format!("read failed: {e}"),
        };
        push(&events, DriverEvent::Closed { lane, reason }).await;
        return;
    }
}

/// Offers an event to the runner, waiting while its queue is full; false once the driver
/// is gone.
async fn push(events: &std_mpsc::SyncSender<DriverEvent>, mut event: DriverEvent) -> bool {
    loop {
        match events.try_send(event) {
            Ok(()) => return true,
            Err(std_mpsc::TrySendError::Full(back)) => {
                event = back;
                tokio::time::sleep(EVENT_QUEUE_RETRY).await;
            }
            Err(std_mpsc::TrySendError::Disconnected(_)) => return false,
        }
    }
}
