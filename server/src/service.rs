//! The running service: what the ISO 8583 listener and the management HTTP API share.
//!
//! [`Service`] owns the engine, the clock, the metrics registry, the tokens and the
//! durability watermark the ISO path waits on. It is shared as `Arc<Service>`.
//!
//! # The engine can be swapped (sandbox reset)
//!
//! The engine sits behind an atomic pointer ([`ArcSwap`]). A request takes the current
//! engine once ([`Service::engine`]) and uses it to the end, so it sees either the old or the
//! new engine, never a mix. A reset opens a fresh engine in a new state directory, records
//! that directory in `DATA_DIR/CURRENT` (written to a temporary file and renamed), swaps the
//! engine in, then waits for requests still holding the old one, shuts it down (which
//! flushes its journal) and deletes its directory.
//!
//! ```text
//! DATA_DIR/keys.toml          the keys (see crate::keys), kept across resets
//! DATA_DIR/CURRENT            the name of the current state directory (absent: "state")
//! DATA_DIR/state[-N]/         the engine's journal (sled) and snapshots
//! ```
//!
//! # Durability watermark
//!
//! Each engine's journal reports every flush through `Journal::on_durable`; the service
//! forwards it into one `tokio::sync::watch` channel holding [`DurableState`]. The state
//! carries the engine's generation, so an answer decided by an engine that a reset has since
//! replaced is released (its state was discarded on purpose) instead of waiting forever.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use cardcore_authz::partition::Lifecycle;
use cardcore_authz::{management::ProfileLimitMax, Engine, EngineConfig};
use cardcore_core::{Clock, ManualClock, SystemClock, Timestamp};
use cardcore_ledger::journal::{DurableNotice, Seq};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::sync::watch;

use crate::config::{Config, DurabilityMode, Role};
use crate::error::ServiceError;
use crate::keys;
use crate::metrics::{render_journal, JournalView, Metrics};

/// Where a sandbox's clock starts, and goes back to on reset.
pub const SANDBOX_EPOCH: &str = "2026-01-15T10:00:00Z";
/// The file naming the current state directory.
pub const STATE_POINTER_FILE: &str = "CURRENT";
/// The state directory of a data directory that was never reset.
pub const FIRST_STATE_DIR: &str = "state";
/// How long a reset or a shutdown waits for requests still using the old engine.
pub const ENGINE_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How often that wait looks again.
const ENGINE_DRAIN_POLL: Duration = Duration::from_millis(1);

/// How far the current engine's journal is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableState {
    /// Which engine: 0 at start, one more after each reset.
    pub generation: u64,
    /// Every event up to this seq is durable.
    pub seq: Seq,
    /// The journal writer failed: nothing more will become durable.
    pub failed: bool,
}

/// The current engine and where it keeps its state.
#[derive(Debug)]
pub struct Live {
    engine: Arc<Engine>,
    generation: u64,
    state_dir: PathBuf,
}

impl Live {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Where this engine keeps its journal and snapshots (and the server its card-order
    /// keys, which go with the engine's state).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

/// The service shared by the ISO listener and the HTTP API.
pub struct Service {
    config: Config,
    /// The engine configuration without its journal: each state directory adds its own.
    engine_config: EngineConfig,
    clock: Arc<dyn Clock>,
    manual_clock: Option<Arc<ManualClock>>,
    live: ArcSwap<Live>,
    durable: Arc<watch::Sender<DurableState>>,
    metrics: Arc<Metrics>,
    started: Instant,
    reset_lock: tokio::sync::Mutex<()>,
    stopping: AtomicBool,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("sandbox", &self.config.sandbox)
            .field("generation", &self.live.load().generation)
            .finish_non_exhaustive()
    }
}

/// What `GET /health` reports.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Health {
    /// `ok`, `stopping` (graceful shutdown under way) or `failing` (the journal failed: no
    /// change can be made durable).
    pub status: &'static str,
    pub sandbox: bool,
    /// The engine's clock (the manual clock in sandbox mode), RFC 3339.
    pub engine_time: String,
    pub uptime_s: u64,
    pub partitions: usize,
    /// `sync` or `async`.
    pub durability: &'static str,
    pub durable_seq: u64,
    pub last_appended_seq: u64,
    pub journal_error: Option<String>,
    pub iso_connections: u64,
    pub iso_in_flight: u64,
    /// Sandbox resets since start.
    pub generation: u64,
}

impl Health {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

impl Service {
    /// Validates the configuration, loads (or generates) the keys, recovers the engine from
    /// the data directory and starts it. Blocking: recovery reads the journal.
    pub fn open(config: Config) -> Result<Arc<Service>, ServiceError> {
        config.validate()?;
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            ServiceError::io(format!("create data directory {}", data_dir.display()), e)
        })?;
        let keys = if config.sandbox {
            tracing::info!("sandbox: keys not configured are the published sandbox test keys");
            keys::sandbox_keys(&config.keys)?
        } else {
            keys::load_or_generate(&data_dir, &config.keys)?
        };
        let engine_config = engine_config(&config, keys);
        let (clock, manual_clock) = make_clock(config.sandbox);
        let state_name = read_state_pointer(&data_dir)?;
        remove_stale_state_dirs(&data_dir, &state_name);
        let state_dir = data_dir.join(&state_name);
        let engine = open_engine(&config, &engine_config, &state_dir, Arc::clone(&clock))?;
        resume_manual_clock(manual_clock.as_deref(), &engine);
        let metrics = Arc::new(Metrics::new());
        let durable = Arc::new(watch::Sender::new(DurableState {
            generation: 0,
            seq: 0,
            failed: false,
        }));
        bridge_durability(&engine, 0, &durable, &metrics);
        tracing::info!(
            data_dir = %data_dir.display(),
            state = %state_name,
            partitions = config.partitions,
            durability = ?config.durability.mode,
            sandbox = config.sandbox,
            "engine open"
        );
        let live = Live {
            engine: Arc::new(engine),
            generation: 0,
            state_dir,
        };
        Ok(Arc::new(Service {
            config,
            engine_config,
            clock,
            manual_clock,
            live: ArcSwap::from_pointee(live),
            durable,
            metrics,
            started: Instant::now(),
            reset_lock: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
        }))
    }

    /// The current engine. Hold it for one request, not longer: a sandbox reset waits for
    /// the old engine to be let go.
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.live.load().engine)
    }

    /// The current engine with its generation (the ISO path needs both).
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// The engine's clock: the system clock, or in sandbox mode the manual clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The clock to set or advance: sandbox mode only.
    pub fn manual_clock(&self) -> Option<&ManualClock> {
        self.manual_clock.as_deref()
    }

    pub fn sandbox(&self) -> bool {
        self.config.sandbox
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Whether answers wait for their events to be durable (`sync` mode).
    pub fn answers_wait_for_durability(&self) -> bool {
        self.config.durability.mode == DurabilityMode::Sync
    }

    /// The durability watermark of the current engine.
    pub fn durable_state(&self) -> DurableState {
        *self.durable.borrow()
    }

    /// A receiver that wakes at every change of [`Service::durable_state`].
    pub fn subscribe_durable(&self) -> watch::Receiver<DurableState> {
        self.durable.subscribe()
    }

    /// The role of a bearer token, if it is one of the configured tokens. Every configured
    /// token is compared, in constant time per token, so timing does not tell which matched.
    pub fn role_of(&self, token: &str) -> Option<&Role> {
        let mut found = None;
        for candidate in &self.config.tokens {
            let equal: bool = candidate
                .token
                .expose()
                .as_bytes()
                .ct_eq(token.as_bytes())
                .into();
            if equal && found.is_none() {
                found = Some(&candidate.role);
            }
        }
        found
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// What `GET /health` shows.
    pub fn health(&self) -> Health {
        let live = self.live.load();
        let journal = live.engine.journal();
        let journal_error = journal.and_then(|j| j.fatal_error());
        let status = match (&journal_error, self.is_stopping()) {
            (Some(_), _) => "failing",
            (None, true) => "stopping",
            (None, false) => "ok",
        };
        Health {
            status,
            sandbox: self.config.sandbox,
            engine_time: self.clock.now().to_rfc3339(),
            uptime_s: self.started.elapsed().as_secs(),
            partitions: live.engine.partition_count(),
            durability: match self.config.durability.mode {
                DurabilityMode::Sync => "sync",
                DurabilityMode::Async => "async",
            },
            durable_seq: journal.map_or(0, |j| j.durable_seq()),
            last_appended_seq: journal.map_or(0, |j| j.last_appended_seq()),
            journal_error,
            iso_connections: self.metrics.connections_open(),
            iso_in_flight: self.metrics.in_flight(),
            generation: live.generation,
        }
    }

    /// The `GET /metrics` body: Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.metrics.render(&mut out);
        let live = self.live.load();
        if let Some(journal) = live.engine.journal() {
            let view = JournalView {
                metrics: journal.metrics(),
                durable_seq: journal.durable_seq(),
                last_appended_seq: journal.last_appended_seq(),
                queue_len: journal.queue_len(),
                failed: journal.fatal_error().is_some(),
            };
            render_journal(&mut out, &view);
        }
        let uptime = self.started.elapsed().as_secs();
        out.push_str("# HELP cardcore_uptime_seconds Seconds since the service started.\n");
        out.push_str("# TYPE cardcore_uptime_seconds gauge\n");
        out.push_str(&format!("cardcore_uptime_seconds {uptime}\n"));
        out.push_str("# HELP cardcore_engine_generation Sandbox resets since start.\n");
        out.push_str("# TYPE cardcore_engine_generation gauge\n");
        out.push_str(&format!("cardcore_engine_generation {}\n", live.generation));
        out
    }

    /// Sandbox only: replaces the engine with an empty one, sets the clock back to
    /// [`SANDBOX_EPOCH`], then shuts the old engine down and deletes its state. Requests in
    /// flight finish on the old engine; later ones go to the new one. Keys are kept.
    pub async fn reset(&self) -> Result<(), ServiceError> {
        if !self.config.sandbox {
            return Err(ServiceError::NotSandbox);
        }
        if self.is_stopping() {
            return Err(ServiceError::ShuttingDown);
        }
        let _one_reset_at_a_time = self.reset_lock.lock().await;
        let old = self.live.load_full();
        let generation = old.generation + 1;
        let state_name = format!("{FIRST_STATE_DIR}-{generation}");
        let state_dir = self.config.data_dir.join(&state_name);
        let (config, engine_config, clock) = (
            self.config.clone(),
            self.engine_config.clone(),
            Arc::clone(&self.clock),
        );
        let dir = state_dir.clone();
        let engine = tokio::task::spawn_blocking(move || {
            remove_dir_if_present(&dir)?;
            let engine = open_engine(&config, &engine_config, &dir, clock)?;
            write_state_pointer(&config.data_dir, &state_name)?;
            Ok::<Engine, ServiceError>(engine)
        })
        .await
        .map_err(|e| ServiceError::io("open the new engine", std::io::Error::other(e)))??;
        if let Some(clock) = &self.manual_clock {
            clock.set(sandbox_epoch());
        }
        let seq = engine.journal().map_or(0, |j| j.durable_seq());
        self.durable.send_replace(DurableState {
            generation,
            seq,
            failed: false,
        });
        bridge_durability(&engine, generation, &self.durable, &self.metrics);
        self.live.store(Arc::new(Live {
            engine: Arc::new(engine),
            generation,
            state_dir,
        }));
        tracing::info!(generation, "sandbox reset: new engine in place");
        tokio::task::spawn_blocking(move || retire(old, true))
            .await
            .map_err(|e| ServiceError::io("retire the old engine", std::io::Error::other(e)))?
    }

    /// Marks the service as stopping (health says so) without stopping anything yet.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Flushes the journal and stops the engine. Call after the listeners have stopped and
    /// their in-flight messages are answered. If something still holds the service, the
    /// journal is flushed and the engine stops when the last holder lets go.
    pub async fn close(self: Arc<Service>) -> Result<(), ServiceError> {
        self.begin_shutdown();
        tokio::task::spawn_blocking(move || {
            let live = self.live.load_full();
            if let Some(journal) = live.engine.journal() {
                journal
                    .sync()
                    .map_err(|e| ServiceError::Engine(cardcore_authz::EngineError::Journal(e.to_string())))?;
            }
            drop(live);
            match Arc::try_unwrap(self) {
                Ok(service) => retire(service.live.into_inner(), false),
                Err(_) => {
                    tracing::warn!("service still referenced at shutdown; journal flushed, engine stops with the last reference");
                    Ok(())
                }
            }
        })
        .await
        .map_err(|e| ServiceError::io("shut the engine down", std::io::Error::other(e)))?
    }
}

/// Waits (bounded) until nothing else holds `live`, shuts its engine down, and with
/// `delete` removes its state directory.
fn retire(mut live: Arc<Live>, delete: bool) -> Result<(), ServiceError> {
    let deadline = Instant::now() + ENGINE_DRAIN_TIMEOUT;
    let (engine, state_dir) = loop {
        match Arc::try_unwrap(live) {
            Ok(inner) => match Arc::try_unwrap(inner.engine) {
                Ok(engine) => break (engine, inner.state_dir),
                Err(engine) => live = Arc::new(Live { engine, ..inner }),
            },
            Err(still_shared) => live = still_shared,
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                "engine still in use after {ENGINE_DRAIN_TIMEOUT:?}; it stops when released"
            );
            return Ok(());
        }
        std::thread::sleep(ENGINE_DRAIN_POLL);
    };
    let mut engine = engine;
    engine.shutdown()?;
    drop(engine);
    if delete {
        remove_dir_if_present(&state_dir)?;
    }
    Ok(())
}

fn engine_config(config: &Config, keys: keys::KeyMaterial) -> EngineConfig {
    let mut engine = EngineConfig::new(keys.keys, keys.pan_key);
    engine.partitions = config.partitions;
    engine.txn_capacity = config.txn_capacity;
    engine.snapshot_every_records = config.journal.snapshot_every_records;
    engine.lifecycle = Lifecycle {
        hold_ttl_ms: i64::from(config.lifecycle.hold_ttl_days) * Timestamp::MS_PER_DAY,
        pre_auth_hold_ttl_ms: i64::from(config.lifecycle.pre_auth_hold_ttl_days)
            * Timestamp::MS_PER_DAY,
    };
    let m = &config.profile_limit_max;
    engine.profile_limit_max = [
        ProfileLimitMax {
            daily_minor: m.purchase_daily_minor,
            monthly_minor: m.purchase_monthly_minor,
        },
        ProfileLimitMax {
            daily_minor: m.atm_daily_minor,
            monthly_minor: m.atm_monthly_minor,
        },
    ];
    engine
}

fn open_engine(
    config: &Config,
    engine_config: &EngineConfig,
    state_dir: &Path,
    clock: Arc<dyn Clock>,
) -> Result<Engine, ServiceError> {
    let mut engine_config = engine_config.clone();
    engine_config.journal = Some(config.journal_config(state_dir.to_path_buf()));
    Ok(Engine::open(engine_config, clock)?)
}

pub(crate) fn sandbox_epoch() -> Timestamp {
    // A constant that parses; checked by the tests.
    Timestamp::parse_rfc3339(SANDBOX_EPOCH).unwrap_or(Timestamp(0))
}

/// A sandbox's manual clock is not saved: after a restart it resumes from the latest time
/// the recovered state carries, so engine time never runs backwards over a restart.
fn resume_manual_clock(clock: Option<&ManualClock>, engine: &Engine) {
    let Some(clock) = clock else { return };
    match engine.latest_time() {
        Ok(Some(latest)) if latest > clock.now() => {
            tracing::info!(clock = %latest, "sandbox clock resumes from the recovered state");
            clock.set(latest);
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not read the recovered state's latest time"),
    }
}

fn make_clock(sandbox: bool) -> (Arc<dyn Clock>, Option<Arc<ManualClock>>) {
    if sandbox {
        let manual = Arc::new(ManualClock::new(sandbox_epoch()));
        (Arc::clone(&manual) as Arc<dyn Clock>, Some(manual))
    } else {
        (Arc::new(SystemClock), None)
    }
}

/// Forwards the journal's durability notices into the service's watch channel, for this
/// generation only, and counts events per flush.
fn bridge_durability(
    engine: &Engine,
    generation: u64,
    durable: &Arc<watch::Sender<DurableState>>,
    metrics: &Arc<Metrics>,
) {
    let Some(journal) = engine.journal() else {
        return;
    };
    let advance = move |tx: &watch::Sender<DurableState>, seq: Seq| {
        tx.send_if_modified(|s| {
            let newer = s.generation == generation && s.seq < seq;
            if newer {
                s.seq = seq;
            }
            newer
        })
    };
    let (tx, metrics) = (Arc::clone(durable), Arc::clone(metrics));
    let last_seq = AtomicU64::new(journal.durable_seq());
    journal.on_durable(Box::new(move |notice| match notice {
        DurableNotice::Durable(seq) => {
            let before = last_seq.swap(seq, Ordering::Relaxed);
            if seq > before {
                metrics.record_flush_events(seq - before);
            }
            advance(&tx, seq);
        }
        DurableNotice::Failed => {
            tx.send_if_modified(|s| {
                let change = s.generation == generation && !s.failed;
                s.failed |= change;
                change
            });
        }
        DurableNotice::Closed => {}
    }));
    // A flush may have landed between reading the watermark and registering the callback.
    advance(durable, journal.durable_seq());
}

fn read_state_pointer(data_dir: &Path) -> Result<String, ServiceError> {
    let path = data_dir.join(STATE_POINTER_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let name = text.trim();
            if is_state_dir_name(name) {
                Ok(name.to_owned())
            } else {
                Err(ServiceError::Config {
                    field: path.display().to_string(),
                    problem: "does not name a state directory".to_owned(),
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FIRST_STATE_DIR.to_owned()),
        Err(e) => Err(ServiceError::io(format!("read {}", path.display()), e)),
    }
}

/// `state` or `state-<digits>`.
fn is_state_dir_name(name: &str) -> bool {
    match name.strip_prefix(FIRST_STATE_DIR) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('-')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

fn write_state_pointer(data_dir: &Path, name: &str) -> Result<(), ServiceError> {
    use std::io::Write;
    let path = data_dir.join(STATE_POINTER_FILE);
    let tmp = data_dir.join(format!("{STATE_POINTER_FILE}.tmp"));
    let io = |what: &str, e| ServiceError::io(format!("{what} {}", tmp.display()), e);
    let mut file = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    file.write_all(format!("{name}\n").as_bytes())
        .map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("flush", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io("rename", e))?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ServiceError::io(format!("flush {}", data_dir.display()), e))
}

/// Removes state directories a reset left behind (a crash between switching to the new
/// one and deleting the old one). Only names of the form `state[-N]` are touched.
fn remove_stale_state_dirs(data_dir: &Path, current: &str) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name != current && is_state_dir_name(name) && entry.path().is_dir() {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::info!(dir = name, "removed the state of a replaced engine"),
                Err(error) => tracing::warn!(dir = name, %error, "cannot remove old state"),
            }
        }
    }
}

fn remove_dir_if_present(dir: &Path) -> Result<(), ServiceError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ServiceError::io(format!("remove {}", dir.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_epoch_parses() {
        assert_eq!(sandbox_epoch().to_rfc3339(), "2026-01-15T10:00:00.000Z");
    }

    #[test]
    fn state_dir_names() {
        for good in ["state", "state-1", "state-42"] {
            assert!(is_state_dir_name(good), "{good}");
        }
        for bad in [
            "",
            "state-",
            "state-x",
            "states",
            "journal",
            "state-1/..",
            "../state",
        ] {
            assert!(!is_state_dir_name(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_map_to_roles() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            sandbox: true,
            ..Config::default()
        };
        config.tokens.push(crate::config::TokenConfig {
            token: crate::config::Secret::new("p-token"),
            role: Role::Profile(cardcore_core::ProfileId(9)),
        });
        config.apply_sandbox_defaults();
        let service = Service::open(config).unwrap();
        assert_eq!(
            service.role_of("p-token"),
            Some(&Role::Profile(cardcore_core::ProfileId(9)))
        );
        assert_eq!(service.role_of("sandbox"), Some(&Role::Operator));
        assert_eq!(service.role_of("p-toke"), None);
        assert_eq!(service.role_of(""), None);
        assert_eq!(service.clock().now(), sandbox_epoch());
        let health = service.health();
        assert!(health.is_ok(), "{health:?}");
        assert_eq!(health.durability, "sync");
        assert_eq!(health.engine_time, "2026-01-15T10:00:00.000Z");
    }
}
