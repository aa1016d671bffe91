//! The HTTP listener: HTTP/1.1 connections (hyper) with the bounds `axum::serve` does not
//! set.
//!
//! `axum::serve` accepts every connection, sets no timer (so hyper's header read timeout
//! never runs) and lets a request head grow to hyper's default of about 400 KB. A client
//! could hold any number of connections open by never finishing a request head, each with
//! its buffer. Here:
//!
//! - at most [`HTTP_CONNECTIONS_MAX`] connections are served at once, and at most
//!   `http.max_connections_per_peer` from one IP address, so one client opening connections
//!   without end leaves room for the others; one more is accepted, logged, counted in
//!   `cardcore_http_connections_refused_total{reason}` and closed at once;
//! - a request head must arrive whole within [`HTTP_HEAD_TIMEOUT`] of when the connection
//!   starts waiting for it, which also closes keep-alive connections idle for as long;
//! - a request head may hold at most [`HTTP_HEAD_BYTES_MAX`] bytes (431 past it);
//! - a body must arrive within `json::BODY_READ_TIMEOUT` (see [`super::json`]).
//!
//! On shutdown, accepting stops and every open connection finishes its request in progress,
//! then closes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::config::HttpSettings;
use crate::iso::stopped;
use crate::metrics::{Metrics, Refusal};
use crate::peers::PeerCounts;

/// HTTP connections served at once.
pub const HTTP_CONNECTIONS_MAX: usize = 1_024;
/// The longest a request head may take to arrive, counted from when the connection starts
/// waiting for it.
pub const HTTP_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers). hyper refuses less than 8 KiB.
pub const HTTP_HEAD_BYTES_MAX: usize = 64 * 1024;
/// After a failed `accept` (out of file descriptors, say), wait this long before the next.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(10);

const _: () = assert!(HTTP_HEAD_BYTES_MAX >= 8 * 1024);

/// Serves `router` on `listener` until `shutdown` turns true, then lets the open
/// connections finish (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: HttpSettings,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(HTTP_CONNECTIONS_MAX));
    let peers = Arc::new(PeerCounts::new(settings.max_connections_per_peer));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP_HEAD_TIMEOUT)
        .max_buf_size(HTTP_HEAD_BYTES_MAX);
    loop {
        let accepted = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting an HTTP connection failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let Some(peer_slot) = peers.try_take(peer.ip()) else {
            metrics.http_connection_refused(Refusal::PeerBound);
            let max = peers.max_per_peer();
            tracing::warn!(%peer, max, "HTTP connection refused: this peer's connection bound reached");
            drop(stream);
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics.http_connection_refused(Refusal::ConnectionBound);
            tracing::warn!(%peer, max = HTTP_CONNECTIONS_MAX, "HTTP connection refused: connection bound reached");
            drop(stream);
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot disable Nagle's algorithm");
        }
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "HTTP connection ended with an error");
            }
            drop(slot);
            drop(peer_slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
