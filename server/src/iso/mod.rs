//! The ISO 8583 listener: TCP, 2-byte length framing, many connections, pipelined requests.
//!
//! Each connection has a reader task and a writer task:
//!
//! ```text
//! socket ─► reader: FrameDecoder ─► parse ─► wire::inbound ─► Engine::submit ──┐
//!              │ (0800, format errors: answered without the engine)            │ partition
//!              └──────────────► bounded channel ◄── reply on the partition ◄────┘ thread
//!                                     │
//!                               writer: build the response; in sync mode hold it until
//!                               its journal seq is durable; write as soon as ready
//! ```
//!
//! Answers go out in the order they become ready, not the order requests came in: the
//! acquirer matches them by STAN (and the other echoed fields).
//!
//! Bounds: at most `iso.max_connections` connections, and at most
//! `iso.max_connections_per_peer` from one IP address, so one peer flooding connections
//! leaves room for the others (one more is accepted, logged and closed at once); at most `iso.max_in_flight_per_connection` messages in flight per
//! connection: when they are all taken the reader stops reading, so a fast sender is slowed
//! by TCP flow control instead of filling memory; frames longer than `iso.max_frame_bytes`
//! close the connection, and so does a frame that has not arrived whole `iso.frame_timeout_s`
//! after its first byte (a peer trickling bytes to hold a slot); a connection with nothing to read and nothing in flight for
//! `iso.idle_timeout_s` is closed, and so is one that does not read its answers for as long.
//!
//! A frame that does not parse is answered `30` when its MTI can be read (with the STAN when
//! that can be read too); otherwise that connection alone is closed. A message that parses
//! but lacks what its type needs is answered `30` as well.

mod connection;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::peers::PeerCounts;
use crate::Service;

/// After a failed `accept` (out of file descriptors, say), wait this long before the next,
/// rather than spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// A running ISO 8583 listener.
#[derive(Debug)]
pub struct IsoListener {
    local_addr: SocketAddr,
    accept_task: JoinHandle<()>,
    /// One permit per connection slot: all of them free means no connection is open.
    slots: Arc<Semaphore>,
    max_connections: usize,
}

impl IsoListener {
    /// Starts accepting on `listener` until `shutdown` turns true.
    pub fn spawn(
        listener: TcpListener,
        service: Arc<Service>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<IsoListener> {
        let local_addr = listener.local_addr()?;
        let iso = service.config().iso;
        let max_connections = iso.max_connections;
        let slots = Slots {
            all: Arc::new(Semaphore::new(max_connections)),
            peers: Arc::new(PeerCounts::new(iso.max_connections_per_peer)),
        };
        let all_slots = Arc::clone(&slots.all);
        let accept_task = tokio::spawn(accept_loop(listener, service, slots, shutdown));
        Ok(IsoListener {
            local_addr,
            accept_task,
            slots: all_slots,
            max_connections,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// After shutdown was signalled: waits for the accept loop to stop and for every
    /// connection to answer its in-flight messages and close, at most `grace`. Returns
    /// whether everything finished in time.
    pub async fn drain(self, grace: Duration) -> bool {
        let all_slots = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        let finished = async {
            let _ = self.accept_task.await;
            let _ = self.slots.acquire_many(all_slots).await;
        };
        tokio::time::timeout(grace, finished).await.is_ok()
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What admits a connection: a free slot, and room under its peer's bound.
struct Slots {
    all: Arc<Semaphore>,
    peers: Arc<PeerCounts>,
}

async fn accept_loop(
    listener: TcpListener,
    service: Arc<Service>,
    slots: Slots,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => admit(stream, peer, &service, &slots, &shutdown),
            Err(error) => {
                tracing::warn!(%error, "accepting an ISO 8583 connection failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
    tracing::info!("ISO 8583 listener stopped accepting");
}

/// Serves the connection if its peer is under its bound and a slot is free; otherwise
/// closes it at once, with a log line.
fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    service: &Arc<Service>,
    slots: &Slots,
    shutdown: &watch::Receiver<bool>,
) {
    let metrics = service.metrics();
    let Some(peer_slot) = slots.peers.try_take(peer.ip()) else {
        metrics.connection_refused();
        let max = slots.peers.max_per_peer();
        tracing::warn!(%peer, max, "ISO 8583 connection refused: this peer's connection bound reached");
        drop(stream);
        return;
    };
    let Ok(slot) = Arc::clone(&slots.all).try_acquire_owned() else {
        metrics.connection_refused();
        let max = service.config().iso.max_connections;
        tracing::warn!(%peer, max, "ISO 8583 connection refused: connection bound reached");
        drop(stream);
        return;
    };
    // Answers are small and latency matters more than packet count.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot disable Nagle's algorithm");
    }
    metrics.connection_opened();
    tracing::debug!(%peer, "ISO 8583 connection opened");
    let service = Arc::clone(service);
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let reason = connection::serve(stream, peer, &service, shutdown).await;
        service.metrics().connection_closed(reason);
        tracing::debug!(%peer, reason = reason.as_str(), "ISO 8583 connection closed");
        drop(slot);
        drop(peer_slot);
    });
}
