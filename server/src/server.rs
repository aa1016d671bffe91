//! Starting and stopping the listeners around a [`Service`].
//!
//! Graceful shutdown, in order: the service reports `stopping`; both listeners stop
//! accepting; ISO 8583 connections stop reading and answer what is in flight (within
//! `iso.shutdown_grace_s`); the HTTP server finishes its requests; then
//! [`Service::close`] flushes the journal and stops the engine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ServiceError;
use crate::iso::{stopped, IsoListener};
use crate::Service;

/// How often the maintenance task looks whether a snapshot is due.
pub const SNAPSHOT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The running listeners.
#[derive(Debug)]
pub struct Server {
    service: Arc<Service>,
    http_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    iso: IsoListener,
    http: JoinHandle<std::io::Result<()>>,
    maintenance: JoinHandle<()>,
    expiry: JoinHandle<()>,
}

impl Server {
    /// Binds the ISO 8583 and HTTP listeners from the service's configuration and starts
    /// serving; `http` is the management API's router.
    pub async fn start(service: Arc<Service>, http: axum::Router) -> Result<Server, ServiceError> {
        let config = service.config();
        let iso_listener = bind(&config.iso_listen, "iso_listen").await?;
        let http_listener = bind(&config.http_listen, "http_listen").await?;
        let http_addr = local_addr(&http_listener)?;
        let (shutdown, rx) = watch::channel(false);
        let iso = IsoListener::spawn(iso_listener, Arc::clone(&service), rx.clone())
            .map_err(|e| ServiceError::io("start the ISO 8583 listener", e))?;
        let http = tokio::spawn(crate::http::serve::serve(
            http_listener,
            http,
            config.http,
            Arc::clone(service.metrics()),
            rx.clone(),
        ));
        let maintenance = tokio::spawn(snapshot_when_due(Arc::clone(&service), rx.clone()));
        let expiry = tokio::spawn(expire_holds_periodically(Arc::clone(&service), rx));
        tracing::info!(iso = %iso.local_addr(), http = %http_addr, "listening");
        Ok(Server {
            service,
            http_addr,
            shutdown,
            iso,
            http,
            maintenance,
            expiry,
        })
    }

    /// Where the ISO 8583 listener is bound (the actual port when configured with 0).
    pub fn iso_addr(&self) -> SocketAddr {
        self.iso.local_addr()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Stops accepting, lets in-flight messages finish, and stops the HTTP server. The
    /// engine keeps running: call [`Service::close`] next.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        self.service.begin_shutdown();
        self.shutdown.send_replace(true);
        let grace = self.service.config().iso.shutdown_grace();
        if !self.iso.drain(grace).await {
            tracing::warn!(
                ?grace,
                "ISO 8583 connections still open after the grace period"
            );
        }
        let _ = self.maintenance.await;
        let _ = self.expiry.await;
        match tokio::time::timeout(grace, self.http).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(ServiceError::io("serve HTTP", e)),
            Ok(Err(e)) => Err(ServiceError::io("HTTP task", std::io::Error::other(e))),
            Err(_) => {
                tracing::warn!(?grace, "HTTP requests still running after the grace period");
                Ok(())
            }
        }
    }
}

async fn bind(addr: &str, field: &str) -> Result<TcpListener, ServiceError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ServiceError::io(format!("bind {field} {addr}"), e))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, ServiceError> {
    listener
        .local_addr()
        .map_err(|e| ServiceError::io("read the bound address", e))
}

/// Writes a snapshot whenever `journal.snapshot_every_records` records were appended since
/// the last one. Authorisations reach the engine through `Engine::submit`, which leaves
/// snapshot scheduling to its caller; this task is that caller.
/// How often holds past their purge time are released on partitions that see no traffic
/// (a partition also releases them before each message it handles).
const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

async fn expire_holds_periodically(service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            () = tokio::time::sleep(EXPIRY_SWEEP_INTERVAL) => {}
        }
        let engine = Arc::clone(service.live().engine());
        match tokio::task::spawn_blocking(move || engine.expire_holds()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "hold expiry sweep failed"),
            Err(error) => tracing::error!(%error, "hold expiry task failed"),
        }
    }
}

async fn snapshot_when_due(service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    let every = service.config().journal.snapshot_every_records;
    if every == 0 {
        return;
    }
    let mut last = (u64::MAX, 0u64); // (generation, seq) of the last snapshot
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            () = tokio::time::sleep(SNAPSHOT_CHECK_INTERVAL) => {}
        }
        let live = service.live();
        let Some(appended) = live.engine().journal().map(|j| j.last_appended_seq()) else {
            continue;
        };
        if last.0 != live.generation() {
            last = (live.generation(), appended);
            continue;
        }
        if appended.saturating_sub(last.1) < every {
            continue;
        }
        let engine = Arc::clone(live.engine());
        drop(live);
        match tokio::task::spawn_blocking(move || engine.snapshot()).await {
            Ok(Ok(seq)) => {
                last.1 = seq;
                tracing::info!(seq, "snapshot written");
            }
            Ok(Err(error)) => tracing::warn!(%error, "snapshot failed"),
            Err(error) => tracing::error!(%error, "snapshot task failed"),
        }
    }
}
