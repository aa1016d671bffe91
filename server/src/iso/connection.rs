//! One ISO 8583 connection: the reader side, and what it hands the writer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cardcore_authz::wire::{inbound, Inbound};
use cardcore_authz::{EngineError, Outcome, Request};
use cardcore_core::iso8583::{parse, salvage, FrameDecoder, Salvage, FRAME_HEADER_LEN};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use super::{stopped, writer};
use crate::metrics::{CloseReason, Metrics};
use crate::Service;

/// Bytes read from the socket at a time. The read buffer never holds more than one partial
/// frame plus one chunk.
pub(crate) const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Serves one connection until the peer closes it, it idles out, it sends something that
/// cannot be framed, or the server shuts down; every message read is answered first.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    service: &Arc<Service>,
    shutdown: watch::Receiver<bool>,
) -> CloseReason {
    let iso = service.config().iso;
    let (rd, wr) = stream.into_split();
    // Every queued completion holds an in-flight permit, so the channel never holds more
    // than `max_in_flight` and a send from a partition thread never finds it full.
    let (tx, rx) = mpsc::channel(iso.max_in_flight_per_connection);
    let writer = tokio::spawn(writer::run(wr, rx, Arc::clone(service), peer));
    let mut reader = Reader {
        rd,
        buf: BytesMut::with_capacity(READ_CHUNK_BYTES),
        decoder: FrameDecoder::with_max_len(iso.max_frame_bytes),
        tx,
        in_flight: Arc::new(Semaphore::new(iso.max_in_flight_per_connection)),
        max_in_flight: iso.max_in_flight_per_connection,
        idle_timeout: iso.idle_timeout(),
        frame_timeout: iso.frame_timeout(),
        partial_since: None,
        service: Arc::clone(service),
        shutdown,
        peer,
    };
    let reason = reader.run().await;
    // The reader's sender goes now; the writer ends once every in-flight answer is out.
    drop(reader);
    match writer.await {
        Ok(Ok(())) => reason,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "writing to the ISO 8583 connection failed");
            CloseReason::Io
        }
        Err(error) => {
            tracing::error!(%peer, %error, "ISO 8583 writer task failed");
            CloseReason::Io
        }
    }
}

/// A message on its way out, with its in-flight permit.
pub(crate) struct Completion {
    /// The request as received (parsed again by the writer: parsing borrows, and the
    /// request outlives the reader's buffer).
    pub(crate) frame: Bytes,
    /// When the frame was taken for processing.
    pub(crate) started: Instant,
    /// The engine generation that decided it (see `DurableState`).
    pub(crate) generation: u64,
    pub(crate) reply: Reply,
    pub(crate) ticket: Ticket,
}

/// What to answer.
pub(crate) enum Reply {
    Engine(Result<Outcome, EngineError>),
    /// 0800: 0810 with `00`.
    NetworkManagement,
    /// Parsed, but not usable: `30`.
    FormatError,
    /// Did not parse; the MTI (and maybe the STAN) could be read: `30`.
    Salvaged(Salvage),
}

/// One in-flight slot: the permit goes back, and the gauge down, when the answer is written
/// (or dropped with its connection).
pub(crate) struct Ticket {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Ticket {
    fn new(permit: OwnedSemaphorePermit, metrics: &Arc<Metrics>) -> Ticket {
        metrics.in_flight_add();
        Ticket {
            _permit: permit,
            metrics: Arc::clone(metrics),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.metrics.in_flight_done();
    }
}

/// The engine's reply callback. If the engine drops it without calling it (a partition
/// that stopped), the request is still answered, with an error the writer turns into `96`.
struct PendingReply {
    tx: mpsc::Sender<Completion>,
    parts: Option<(Bytes, Instant, u64, Ticket)>,
}

impl PendingReply {
    fn complete(mut self, outcome: Result<Outcome, EngineError>) {
        self.send(outcome);
    }

    fn send(&mut self, outcome: Result<Outcome, EngineError>) {
        if let Some((frame, started, generation, ticket)) = self.parts.take() {
            let completion = Completion {
                frame,
                started,
                generation,
                reply: Reply::Engine(outcome),
                ticket,
            };
            // Full cannot happen (see `serve`); closed means the connection is gone and the
            // answer has nowhere to go.
            let _ = self.tx.try_send(completion);
        }
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        let stopped = EngineError::Unavailable("the engine stopped before answering".into());
        self.send(Err(stopped));
    }
}

struct Reader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    decoder: FrameDecoder,
    tx: mpsc::Sender<Completion>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    idle_timeout: Duration,
    frame_timeout: Duration,
    /// When the reader began waiting for the rest of the partial frame in `buf`. Only time
    /// spent waiting on the socket counts: the clock restarts with each complete frame, so
    /// time the reader spends held back by its own in-flight bound is never held against
    /// the peer.
    partial_since: Option<Instant>,
    service: Arc<Service>,
    shutdown: watch::Receiver<bool>,
    peer: SocketAddr,
}

impl Reader {
    async fn run(&mut self) -> CloseReason {
        loop {
            // Take every complete frame already buffered before reading more.
            loop {
                match self.decoder.decode(&mut self.buf) {
                    Ok(Some(frame)) => {
                        self.partial_since = None;
                        if let Err(reason) = self.take_frame(frame).await {
                            return reason;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(peer = %self.peer, %error, "closing ISO 8583 connection");
                        return CloseReason::FrameTooLong;
                    }
                }
            }
            if let Err(reason) = self.read_more().await {
                return reason;
            }
        }
    }

    /// Reads at least one byte; the error says why the connection should end.
    async fn read_more(&mut self) -> Result<(), CloseReason> {
        let room = READ_CHUNK_BYTES.min(self.decoder.max_len() + FRAME_HEADER_LEN);
        self.buf.reserve(room);
        if !self.buf.is_empty() {
            self.partial_since.get_or_insert_with(Instant::now);
        }
        loop {
            let wait = self.read_wait();
            let read = tokio::select! {
                biased;
                () = stopped(&mut self.shutdown) => return Err(CloseReason::Shutdown),
                () = self.tx.closed() => return Err(CloseReason::Io),
                read = tokio::time::timeout(wait, self.rd.read_buf(&mut self.buf)) => read,
            };
            match read {
                Ok(Ok(0)) => return Err(CloseReason::Peer),
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(error)) => {
                    tracing::debug!(peer = %self.peer, %error, "reading the ISO 8583 connection failed");
                    return Err(CloseReason::Io);
                }
                Err(_) if self.frame_overdue() => {
                    tracing::warn!(peer = %self.peer, "a frame did not arrive whole in time: closing the connection");
                    return Err(CloseReason::SlowFrame);
                }
                // Quiet, but answers are still on their way: not idle yet.
                Err(_) if self.in_flight.available_permits() < self.max_in_flight => {}
                Err(_) => return Err(CloseReason::Idle),
            }
        }
    }

    /// How long the next read may wait: the idle timeout, or less when a partial frame's
    /// deadline comes first.
    fn read_wait(&self) -> Duration {
        match self.partial_since {
            Some(since) => self
                .frame_timeout
                .saturating_sub(since.elapsed())
                .min(self.idle_timeout),
            None => self.idle_timeout,
        }
    }

    fn frame_overdue(&self) -> bool {
        self.partial_since
            .is_some_and(|since| since.elapsed() >= self.frame_timeout)
    }

    /// Waits for an in-flight slot (back-pressure), then answers or submits the frame.
    async fn take_frame(&mut self, frame: Bytes) -> Result<(), CloseReason> {
        let permit = tokio::select! {
            biased;
            permit = Arc::clone(&self.in_flight).acquire_owned() => {
                permit.map_err(|_| CloseReason::Io)?
            }
            () = self.tx.closed() => return Err(CloseReason::Io),
        };
        let ticket = Ticket::new(permit, self.service.metrics());
        let started = Instant::now();
        match parse(&frame) {
            Ok(msg) => match inbound(&msg) {
                Ok(Inbound::Request(request)) => {
                    self.submit(request, frame.clone(), started, ticket);
                    Ok(())
                }
                Ok(Inbound::NetworkManagement) => {
                    self.reply(frame.clone(), started, Reply::NetworkManagement, ticket)
                }
                Err(problem) if msg.mti().response().is_some() => {
                    tracing::debug!(peer = %self.peer, %problem, "answering 30");
                    self.reply(frame.clone(), started, Reply::FormatError, ticket)
                }
                Err(problem) => {
                    self.service.metrics().unanswerable();
                    tracing::debug!(peer = %self.peer, mti = %msg.mti(), %problem, "no answer to send");
                    Ok(())
                }
            },
            Err(error) => self.malformed(frame, started, ticket, error),
        }
    }

    fn malformed(
        &mut self,
        frame: Bytes,
        started: Instant,
        ticket: Ticket,
        error: cardcore_core::iso8583::ParseError,
    ) -> Result<(), CloseReason> {
        let salvaged = salvage(&frame);
        match salvaged.mti {
            Some(mti) if mti.response().is_some() => {
                tracing::debug!(peer = %self.peer, %error, "malformed message answered 30");
                self.reply(frame, started, Reply::Salvaged(salvaged), ticket)
            }
            Some(mti) => {
                self.service.metrics().unanswerable();
                tracing::debug!(peer = %self.peer, %mti, %error, "malformed response ignored");
                Ok(())
            }
            None => {
                self.service.metrics().frame_unreadable();
                tracing::warn!(peer = %self.peer, %error, "unreadable frame: closing the connection");
                Err(CloseReason::Unreadable)
            }
        }
    }

    fn reply(
        &self,
        frame: Bytes,
        started: Instant,
        reply: Reply,
        ticket: Ticket,
    ) -> Result<(), CloseReason> {
        let completion = Completion {
            frame,
            started,
            generation: 0,
            reply,
            ticket,
        };
        self.tx.try_send(completion).map_err(|_| CloseReason::Io)
    }

    fn submit(&self, request: Request, frame: Bytes, started: Instant, ticket: Ticket) {
        let live = self.service.live();
        let pending = PendingReply {
            tx: self.tx.clone(),
            parts: Some((frame, started, live.generation(), ticket)),
        };
        live.engine()
            .submit(request, move |outcome| pending.complete(outcome));
    }
}
