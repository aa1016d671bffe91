//! The service configuration: a TOML file (`--config FILE`) whose every field a command-line
//! flag can override (see [`crate::cli::ServeArgs`]), with defaults that let `cardcore serve`
//! alone start on loopback with a data directory under the current folder.
//!
//! ```toml
//! data_dir = "cardcore-data"
//! iso_listen = "127.0.0.1:8583"
//! http_listen = "127.0.0.1:8080"
//! partitions = 2
//!
//! [durability]
//! mode = "sync"          # or "async", answering before the flush
//! max_loss_ms = 10       # async only: the longest an answered event may stay unflushed
//!
//! [keys]                 # any key left out is generated into DATA_DIR/keys.toml
//! zone_pin_key = "0123456789ABCDEFFEDCBA9876543210"
//!
//! [[tokens]]
//! token = "a-long-random-string"
//! role = { profile = 42 }    # or { application = "client-1" } or "operator"
//! ```
//!
//! Secrets (keys, tokens) are wrapped in [`Secret`], whose `Debug` never shows them, so a
//! configuration can be logged whole.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use cardcore_authz::engine::{PARTITIONS_MAX, PARTITION_QUEUE_CAPACITY};
use cardcore_core::iso8583::FRAME_MAX_LEN;
use cardcore_core::ProfileId;
use cardcore_ledger::journal::{
    Durability, JournalConfig, JournalError, JOURNAL_BATCH_MAX, JOURNAL_CACHE_CAPACITY_BYTES,
    JOURNAL_QUEUE_CAPACITY,
};
use serde::Deserialize;

use crate::error::ServiceError;
use crate::http::serve::HTTP_CONNECTIONS_MAX;

/// Where the ISO 8583 listener binds by default: loopback, the customary port.
pub const DEFAULT_ISO_LISTEN: &str = "127.0.0.1:8583";
/// Where the HTTP listener binds by default.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
/// The data directory by default, relative to the current folder.
pub const DEFAULT_DATA_DIR: &str = "cardcore-data";
/// The operator token sandbox mode accepts when none is given.
pub const SANDBOX_DEFAULT_ADMIN_TOKEN: &str = "sandbox";
/// Connections served at once by default; one more is accepted and closed.
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;
/// Messages one connection may have in flight by default; past it the server stops reading
/// that connection until answers go out.
pub const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;
/// Every message in flight can sit in one partition's queue at worst. Half the queue is kept
/// for management calls, so the ISO path never blocks a runtime thread on a full queue.
pub const IN_FLIGHT_TOTAL_MAX: usize = PARTITION_QUEUE_CAPACITY / 2;
/// A connection with nothing to read and nothing in flight for this long is closed.
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 300;
/// A frame must arrive whole within this long of its first byte by default: an 8 KiB
/// frame takes milliseconds, so only a peer trickling bytes to hold its slot comes near.
pub const DEFAULT_FRAME_TIMEOUT_S: u64 = 10;
/// Connections one peer address may hold at once by default: half the default bound, so a
/// peer that floods connections leaves room for the others.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = DEFAULT_MAX_CONNECTIONS / 2;
/// Management API connections one peer address may hold at once by default: a client that
/// opens connections without end takes this many of the listener's slots
/// ([`HTTP_CONNECTIONS_MAX`]), not all of them. A reverse proxy in front of the API is one
/// address: raise the bound there.
pub const DEFAULT_HTTP_MAX_CONNECTIONS_PER_PEER: usize = 64;
/// How long a graceful shutdown waits for connections to finish their in-flight messages.
pub const DEFAULT_SHUTDOWN_GRACE_S: u64 = 10;
/// A snapshot is written after this many journal records by default.
pub const DEFAULT_SNAPSHOT_EVERY_RECORDS: u64 = 100_000;
/// The async loss window by default.
pub const DEFAULT_ASYNC_MAX_LOSS_MS: u64 = 10;
/// Transactions each partition reserves room for up front by default.
pub const DEFAULT_TXN_CAPACITY: usize = 1024;
/// The smallest frame limit accepted: an MTI, a bitmap and a few fields.
pub const MIN_FRAME_BYTES: usize = 64;

const _: () =
    assert!(DEFAULT_MAX_CONNECTIONS * DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION <= IN_FLIGHT_TOTAL_MAX);
const _: () = assert!(MIN_FRAME_BYTES <= FRAME_MAX_LEN);
const _: () = assert!(DEFAULT_MAX_CONNECTIONS_PER_PEER >= 1);
const _: () = assert!(DEFAULT_MAX_CONNECTIONS_PER_PEER < DEFAULT_MAX_CONNECTIONS);
const _: () = assert!(DEFAULT_FRAME_TIMEOUT_S <= DEFAULT_IDLE_TIMEOUT_S);
const _: () = assert!(DEFAULT_HTTP_MAX_CONNECTIONS_PER_PEER >= 1);
const _: () = assert!(DEFAULT_HTTP_MAX_CONNECTIONS_PER_PEER < HTTP_CONNECTIONS_MAX);

/// Everything `cardcore serve` runs with.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Holds `keys.toml`, the journal and the snapshots.
    pub data_dir: PathBuf,
    /// `HOST:PORT` of the ISO 8583 listener (port 0: any free port).
    pub iso_listen: String,
    /// `HOST:PORT` of the management HTTP listener (port 0: any free port).
    pub http_listen: String,
    /// Sandbox: a manual clock starting at 2026-01-15T10:00:00Z, reset and clock endpoints, a
    /// default operator token. Never on by default.
    pub sandbox: bool,
    /// The engine's partitions; a data directory must be reopened with the same number.
    pub partitions: usize,
    /// Transactions each partition reserves room for up front.
    pub txn_capacity: usize,
    /// The tracing filter (`RUST_LOG` syntax) when `RUST_LOG` is not set.
    pub log_filter: String,
    pub durability: DurabilityConfig,
    pub journal: JournalSettings,
    pub iso: IsoSettings,
    pub http: HttpSettings,
    pub lifecycle: LifecycleSettings,
    pub profile_limit_max: ProfileLimitMaxSettings,
    pub keys: KeysConfig,
    /// Bearer tokens of the management API and what each may do.
    pub tokens: Vec<TokenConfig>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            iso_listen: DEFAULT_ISO_LISTEN.to_owned(),
            http_listen: DEFAULT_HTTP_LISTEN.to_owned(),
            sandbox: false,
            partitions: 2,
            txn_capacity: DEFAULT_TXN_CAPACITY,
            log_filter: "info".to_owned(),
            durability: DurabilityConfig::default(),
            journal: JournalSettings::default(),
            iso: IsoSettings::default(),
            http: HttpSettings::default(),
            lifecycle: LifecycleSettings::default(),
            profile_limit_max: ProfileLimitMaxSettings::default(),
            keys: KeysConfig::default(),
            tokens: Vec::new(),
        }
    }
}

/// When an answer may leave: after its events are flushed (`sync`) or at once (`async`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityMode {
    #[default]
    Sync,
    Async,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DurabilityConfig {
    pub mode: DurabilityMode,
    /// Async only: batches are flushed at least this often.
    pub max_loss_ms: u64,
}

impl Default for DurabilityConfig {
    fn default() -> DurabilityConfig {
        DurabilityConfig {
            mode: DurabilityMode::Sync,
            max_loss_ms: DEFAULT_ASYNC_MAX_LOSS_MS,
        }
    }
}

impl DurabilityConfig {
    pub fn to_journal(self) -> Durability {
        match self.mode {
            DurabilityMode::Sync => Durability::Sync,
            DurabilityMode::Async => Durability::Async {
                max_loss_ms: self.max_loss_ms,
            },
        }
    }
}

/// Group commit and snapshot settings (see `cardcore_ledger::journal`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct JournalSettings {
    pub batch_max: usize,
    pub batch_window_us: u64,
    pub queue_capacity: usize,
    pub cache_capacity_bytes: u64,
    /// A snapshot after this many journal records (0: never automatically).
    pub snapshot_every_records: u64,
}

impl Default for JournalSettings {
    fn default() -> JournalSettings {
        JournalSettings {
            batch_max: JOURNAL_BATCH_MAX,
            batch_window_us: 1_000,
            queue_capacity: JOURNAL_QUEUE_CAPACITY,
            cache_capacity_bytes: JOURNAL_CACHE_CAPACITY_BYTES,
            snapshot_every_records: DEFAULT_SNAPSHOT_EVERY_RECORDS,
        }
    }
}

/// Bounds of the ISO 8583 listener.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct IsoSettings {
    pub max_connections: usize,
    /// Connections from one IP address at once; past it that address's new connections are
    /// closed at once while others are still admitted.
    pub max_connections_per_peer: usize,
    pub max_in_flight_per_connection: usize,
    pub idle_timeout_s: u64,
    /// A frame that has not arrived whole this long after its first byte closes the
    /// connection (slow senders would otherwise hold a slot by trickling bytes).
    pub frame_timeout_s: u64,
    pub max_frame_bytes: usize,
    pub shutdown_grace_s: u64,
}

impl Default for IsoSettings {
    fn default() -> IsoSettings {
        IsoSettings {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
            idle_timeout_s: DEFAULT_IDLE_TIMEOUT_S,
            frame_timeout_s: DEFAULT_FRAME_TIMEOUT_S,
            max_frame_bytes: FRAME_MAX_LEN,
            shutdown_grace_s: DEFAULT_SHUTDOWN_GRACE_S,
        }
    }
}

impl IsoSettings {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_s)
    }

    pub fn frame_timeout(&self) -> Duration {
        Duration::from_secs(self.frame_timeout_s)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_s)
    }
}

/// Bounds of the management HTTP listener that a deployment may change (the others are
/// constants of `http::serve` and `http::json`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Connections from one IP address at once; past it that address's new connections are
    /// closed at once while others are still admitted.
    pub max_connections_per_peer: usize,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            max_connections_per_peer: DEFAULT_HTTP_MAX_CONNECTIONS_PER_PEER,
        }
    }
}

/// Hold lifetimes, in days.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    pub hold_ttl_days: u32,
    pub pre_auth_hold_ttl_days: u32,
}

impl Default for LifecycleSettings {
    fn default() -> LifecycleSettings {
        LifecycleSettings {
            hold_ttl_days: 7,
            pre_auth_hold_ttl_days: 30,
        }
    }
}

/// The most a profile limit may be raised to when a `PATCH` names no maximum, in minor units
/// of the limit's currency. The defaults are the reference's example (30 000.00 / 4 000.00).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileLimitMaxSettings {
    pub purchase_daily_minor: i64,
    pub purchase_monthly_minor: i64,
    pub atm_daily_minor: i64,
    pub atm_monthly_minor: i64,
}

impl Default for ProfileLimitMaxSettings {
    fn default() -> ProfileLimitMaxSettings {
        ProfileLimitMaxSettings {
            purchase_daily_minor: 3_000_000,
            purchase_monthly_minor: 3_000_000,
            atm_daily_minor: 400_000,
            atm_monthly_minor: 400_000,
        }
    }
}

/// Keys given in the configuration, as hex. Those left out come from `DATA_DIR/keys.toml`,
/// generated on first start (see [`crate::keys`]).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Double-length 3DES zone PIN key: 32 hex characters.
    pub zone_pin_key: Option<Secret>,
    /// PIN verification key: 64 hex characters.
    pub pin_verification_key: Option<Secret>,
    /// CVV2 key: 64 hex characters.
    pub cvv2_key: Option<Secret>,
    /// PAN fingerprint key: 32 hex characters. Changing it makes existing cards unfindable.
    pub pan_key: Option<Secret>,
}

/// A secret string: a key or a token. `Debug` and `Display` never show it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: for parsing keys and comparing tokens, never for output.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One bearer token of the management API.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub token: Secret,
    pub role: Role,
}

/// What a token may do.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A profile token: sees and manages only this profile.
    Profile(ProfileId),
    /// An application (client-credentials) token: manages the spend controls of this client.
    Application(String),
    /// Acts on every profile and, in sandbox mode, on the sandbox endpoints.
    Operator,
}

impl Role {
    /// Parses the command-line form: `profile:42`, `application:client-1`, `operator`.
    pub fn parse(text: &str) -> Result<Role, String> {
        match text.split_once(':') {
            None if text == "operator" => Ok(Role::Operator),
            Some(("profile", id)) => match id.parse::<u64>() {
                Ok(id) if id > 0 => Ok(Role::Profile(ProfileId(id))),
                _ => Err(format!("profile id must be a positive integer, got {id:?}")),
            },
            Some(("application", client)) if !client.is_empty() => {
                Ok(Role::Application(client.to_owned()))
            }
            _ => Err("role must be profile:ID, application:CLIENT_ID or operator".to_owned()),
        }
    }
}

impl Config {
    /// Reads a TOML file. Unknown keys are errors that name the key.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ServiceError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServiceError::io(format!("read config file {}", path.display()), e))?;
        Config::from_toml(&text).map_err(|problem| ServiceError::Config {
            field: path.display().to_string(),
            problem,
        })
    }

    /// Parses TOML text; the error is the parser's message, which names the key and line.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// Adds the sandbox's default operator token when sandbox mode has no operator token.
    pub fn apply_sandbox_defaults(&mut self) {
        let has_operator = self.tokens.iter().any(|t| t.role == Role::Operator);
        if self.sandbox && !has_operator {
            self.tokens.push(TokenConfig {
                token: Secret::new(SANDBOX_DEFAULT_ADMIN_TOKEN),
                role: Role::Operator,
            });
        }
    }

    /// Checks every field against its bound; the error names the field.
    pub fn validate(&self) -> Result<(), ServiceError> {
        if !(1..=PARTITIONS_MAX).contains(&self.partitions) {
            return invalid("partitions", format!("must be 1..={PARTITIONS_MAX}"));
        }
        if self.txn_capacity == 0 {
            return invalid("txn_capacity", "must be positive".to_owned());
        }
        self.iso.validate()?;
        if !(1..=HTTP_CONNECTIONS_MAX).contains(&self.http.max_connections_per_peer) {
            let problem = format!("must be 1..={HTTP_CONNECTIONS_MAX}");
            return invalid("http.max_connections_per_peer", problem);
        }
        self.validate_lifecycle()?;
        self.validate_tokens()?;
        self.journal_config(self.data_dir.clone())
            .validate()
            .map_err(journal_field_error)
    }

    fn validate_lifecycle(&self) -> Result<(), ServiceError> {
        if self.lifecycle.hold_ttl_days == 0 {
            return invalid("lifecycle.hold_ttl_days", "must be positive".to_owned());
        }
        if self.lifecycle.pre_auth_hold_ttl_days == 0 {
            return invalid(
                "lifecycle.pre_auth_hold_ttl_days",
                "must be positive".to_owned(),
            );
        }
        let m = &self.profile_limit_max;
        let values = [
            (
                "profile_limit_max.purchase_daily_minor",
                m.purchase_daily_minor,
            ),
            (
                "profile_limit_max.purchase_monthly_minor",
                m.purchase_monthly_minor,
            ),
            ("profile_limit_max.atm_daily_minor", m.atm_daily_minor),
            ("profile_limit_max.atm_monthly_minor", m.atm_monthly_minor),
        ];
        match values.iter().find(|(_, v)| *v < 0) {
            Some((field, _)) => invalid(field, "must not be negative".to_owned()),
            None => Ok(()),
        }
    }

    fn validate_tokens(&self) -> Result<(), ServiceError> {
        for (i, token) in self.tokens.iter().enumerate() {
            if token.token.expose().is_empty() {
                return invalid(
                    &format!("tokens[{i}].token"),
                    "must not be empty".to_owned(),
                );
            }
            if let Role::Profile(ProfileId(0)) = token.role {
                return invalid(
                    &format!("tokens[{i}].role"),
                    "profile id must be positive".into(),
                );
            }
            if self.tokens[..i].iter().any(|t| t.token == token.token) {
                return invalid(&format!("tokens[{i}].token"), "appears twice".to_owned());
            }
        }
        Ok(())
    }

    /// The journal configuration for a state directory.
    pub fn journal_config(&self, state_dir: PathBuf) -> JournalConfig {
        JournalConfig {
            data_dir: state_dir,
            durability: self.durability.to_journal(),
            batch_max: self.journal.batch_max,
            batch_window: Duration::from_micros(self.journal.batch_window_us),
            queue_capacity: self.journal.queue_capacity,
            cache_capacity_bytes: self.journal.cache_capacity_bytes,
        }
    }
}

impl IsoSettings {
    fn validate(&self) -> Result<(), ServiceError> {
        if self.max_connections == 0 {
            return invalid("iso.max_connections", "must be positive".to_owned());
        }
        if self.max_in_flight_per_connection == 0 {
            return invalid(
                "iso.max_in_flight_per_connection",
                "must be positive".to_owned(),
            );
        }
        let total = self
            .max_connections
            .saturating_mul(self.max_in_flight_per_connection);
        if total > IN_FLIGHT_TOTAL_MAX {
            let problem = format!(
                "iso.max_connections x iso.max_in_flight_per_connection is {total}; \
                 at most {IN_FLIGHT_TOTAL_MAX} messages may be in flight"
            );
            return invalid("iso.max_in_flight_per_connection", problem);
        }
        if self.max_connections_per_peer == 0 {
            return invalid(
                "iso.max_connections_per_peer",
                "must be positive".to_owned(),
            );
        }
        if self.idle_timeout_s == 0 {
            return invalid("iso.idle_timeout_s", "must be positive".to_owned());
        }
        if self.frame_timeout_s == 0 {
            return invalid("iso.frame_timeout_s", "must be positive".to_owned());
        }
        if !(MIN_FRAME_BYTES..=FRAME_MAX_LEN).contains(&self.max_frame_bytes) {
            let problem = format!("must be {MIN_FRAME_BYTES}..={FRAME_MAX_LEN}");
            return invalid("iso.max_frame_bytes", problem);
        }
        Ok(())
    }
}

fn invalid(field: &str, problem: String) -> Result<(), ServiceError> {
    Err(ServiceError::Config {
        field: field.to_owned(),
        problem,
    })
}

/// Maps the journal's field names to the configuration's.
fn journal_field_error(error: JournalError) -> ServiceError {
    match error {
        JournalError::InvalidConfig { field, problem } => {
            let field = match field {
                "durability.max_loss_ms" => "durability.max_loss_ms".to_owned(),
                "batch_window" => "journal.batch_window_us".to_owned(),
                other => format!("journal.{other}"),
            };
            ServiceError::Config { field, problem }
        }
        other => ServiceError::Config {
            field: "journal".to_owned(),
            problem: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_on_loopback() {
        let config = Config::default();
        config.validate().unwrap();
        assert!(config.iso_listen.starts_with("127.0.0.1:"));
        assert!(config.http_listen.starts_with("127.0.0.1:"));
        assert_eq!(config.durability.mode, DurabilityMode::Sync);
        assert!(!config.sandbox);
        assert!(config.tokens.is_empty());
    }

    #[test]
    fn toml_sets_nested_fields_and_roles() {
        let text = r#"
            data_dir = "/var/lib/cardcore"
            partitions = 4
            [durability]
            mode = "async"
            max_loss_ms = 25
            [iso]
            max_connections = 10
            [http]
            max_connections_per_peer = 8
            [keys]
            pan_key = "00112233445566778899AABBCCDDEEFF"
            [[tokens]]
            token = "t1"
            role = { profile = 42 }
            [[tokens]]
            token = "t2"
            role = { application = "client-1" }
            [[tokens]]
            token = "t3"
            role = "operator"
        "#;
        let config = Config::from_toml(text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.partitions, 4);
        assert_eq!(
            config.durability.to_journal(),
            Durability::Async { max_loss_ms: 25 }
        );
        assert_eq!(config.iso.max_connections, 10);
        assert_eq!(config.iso.max_in_flight_per_connection, 64);
        assert_eq!(config.http.max_connections_per_peer, 8);
        let roles: Vec<&Role> = config.tokens.iter().map(|t| &t.role).collect();
        assert_eq!(
            roles,
            [
                &Role::Profile(ProfileId(42)),
                &Role::Application("client-1".into()),
                &Role::Operator
            ]
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("00112233"), "keys must not show in Debug");
        assert!(!shown.contains("\"t1\""), "tokens must not show in Debug");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = Config::from_toml("partitons = 3").unwrap_err();
        assert!(error.contains("partitons"), "{error}");
        let error = Config::from_toml("[iso]\nmax_conns = 3").unwrap_err();
        assert!(error.contains("max_conns"), "{error}");
    }

    #[test]
    fn each_bound_names_its_field() {
        type Change = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Change)> = vec![
            ("partitions", Box::new(|c| c.partitions = 0)),
            (
                "partitions",
                Box::new(|c| c.partitions = PARTITIONS_MAX + 1),
            ),
            ("txn_capacity", Box::new(|c| c.txn_capacity = 0)),
            (
                "iso.max_connections",
                Box::new(|c| c.iso.max_connections = 0),
            ),
            (
                "iso.max_in_flight_per_connection",
                Box::new(|c| c.iso.max_in_flight_per_connection = 0),
            ),
            (
                "iso.max_in_flight_per_connection",
                Box::new(|c| c.iso.max_connections = IN_FLIGHT_TOTAL_MAX),
            ),
            ("iso.idle_timeout_s", Box::new(|c| c.iso.idle_timeout_s = 0)),
            (
                "iso.frame_timeout_s",
                Box::new(|c| c.iso.frame_timeout_s = 0),
            ),
            (
                "iso.max_connections_per_peer",
                Box::new(|c| c.iso.max_connections_per_peer = 0),
            ),
            (
                "http.max_connections_per_peer",
                Box::new(|c| c.http.max_connections_per_peer = 0),
            ),
            (
                "http.max_connections_per_peer",
                Box::new(|c| c.http.max_connections_per_peer = HTTP_CONNECTIONS_MAX + 1),
            ),
            (
                "iso.max_frame_bytes",
                Box::new(|c| c.iso.max_frame_bytes = 10),
            ),
            (
                "iso.max_frame_bytes",
                Box::new(|c| c.iso.max_frame_bytes = FRAME_MAX_LEN + 1),
            ),
            (
                "lifecycle.hold_ttl_days",
                Box::new(|c| c.lifecycle.hold_ttl_days = 0),
            ),
            (
                "profile_limit_max.atm_daily_minor",
                Box::new(|c| c.profile_limit_max.atm_daily_minor = -1),
            ),
            ("journal.batch_max", Box::new(|c| c.journal.batch_max = 0)),
            (
                "journal.batch_window_us",
                Box::new(|c| c.journal.batch_window_us = 10_000_000),
            ),
            (
                "journal.queue_capacity",
                Box::new(|c| c.journal.queue_capacity = 0),
            ),
            (
                "durability.max_loss_ms",
                Box::new(|c| {
                    c.durability.mode = DurabilityMode::Async;
                    c.durability.max_loss_ms = 0;
                }),
            ),
            (
                "tokens[0].token",
                Box::new(|c| c.tokens.push(token("", Role::Operator))),
            ),
            (
                "tokens[1].token",
                Box::new(|c| {
                    c.tokens.push(token("same", Role::Operator));
                    c.tokens.push(token("same", Role::Profile(ProfileId(1))));
                }),
            ),
            (
                "tokens[0].role",
                Box::new(|c| c.tokens.push(token("x", Role::Profile(ProfileId(0))))),
            ),
        ];
        for (field, change) in cases {
            let mut config = Config::default();
            change(&mut config);
            match config.validate() {
                Err(ServiceError::Config { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{field}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn roles_parse_from_the_command_line_form() {
        assert_eq!(Role::parse("operator"), Ok(Role::Operator));
        assert_eq!(Role::parse("profile:7"), Ok(Role::Profile(ProfileId(7))));
        assert_eq!(
            Role::parse("application:c"),
            Ok(Role::Application("c".into()))
        );
        for bad in [
            "",
            "profile:0",
            "profile:x",
            "application:",
            "admin",
            "operator:1",
        ] {
            assert!(Role::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sandbox_gets_a_default_operator_token_only_when_it_has_none() {
        let mut config = Config {
            sandbox: true,
            ..Config::default()
        };
        config.apply_sandbox_defaults();
        assert_eq!(
            config.tokens,
            [token(SANDBOX_DEFAULT_ADMIN_TOKEN, Role::Operator)]
        );
        let mut config = Config {
            sandbox: true,
            ..Config::default()
        };
        config.tokens.push(token("mine", Role::Operator));
        config.apply_sandbox_defaults();
        assert_eq!(config.tokens.len(), 1);
        let mut config = Config::default();
        config.apply_sandbox_defaults();
        assert!(config.tokens.is_empty());
    }

    fn token(value: &str, role: Role) -> TokenConfig {
        TokenConfig {
            token: Secret::new(value),
            role,
        }
    }
}
