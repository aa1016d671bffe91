//! The `cardcore` command line: `serve`, `demo`, `sim replay`, `sim load`.
//!
//! Every configuration field has a `serve` flag; a flag overrides the file given with
//! `--config`, which overrides the defaults. Keys and tokens given as flags show in the
//! process list: prefer the configuration file (mode 0600) outside tests.

use std::path::PathBuf;

use cardcore_sim::load::stats::REPORT_INTERVAL_DEFAULT;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, DurabilityMode, Role, Secret, TokenConfig};
use crate::error::ServiceError;

#[derive(Debug, Parser)]
#[command(
    name = "cardcore",
    version,
    about = "cardcore: a card-issuing processing core"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: ISO 8583 over TCP and the management HTTP API.
    Serve(Box<ServeArgs>),
    /// Start a sandbox with sample data and show a few transactions.
    Demo(DemoArgs),
    /// The network simulator.
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// A TOML configuration file; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Holds the keys file, the journal and the snapshots [default: cardcore-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// ISO 8583 listen address [default: 127.0.0.1:8583].
    #[arg(long, value_name = "HOST:PORT")]
    pub iso_listen: Option<String>,
    /// Management HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, value_name = "HOST:PORT")]
    pub http_listen: Option<String>,
    /// Sandbox mode: manual clock from 2026-01-15T10:00:00Z, reset and clock endpoints,
    /// published test keys.
    #[arg(long)]
    pub sandbox: bool,
    /// An operator token (default `sandbox` in sandbox mode).
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// A management API token: TOKEN=profile:ID, TOKEN=application:CLIENT_ID or
    /// TOKEN=operator. Repeatable.
    // Parsed in `into_config`, not by clap: clap's errors would repeat the token.
    #[arg(long = "token", value_name = "TOKEN=ROLE")]
    pub tokens: Vec<String>,
    /// Engine partitions, 1..=64; fixed for the life of a data directory [default: 2].
    #[arg(long, value_name = "N")]
    pub partitions: Option<usize>,
    /// Transactions each partition reserves room for up front.
    #[arg(long, value_name = "N")]
    pub txn_capacity: Option<usize>,
    /// Log filter in RUST_LOG syntax, used when RUST_LOG is not set [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log_filter: Option<String>,
    /// `sync`: answers wait for their journal batch to be flushed [default: sync].
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
    /// Async durability: the longest an answered event may stay unflushed.
    #[arg(long, value_name = "MS")]
    pub max_loss_ms: Option<u64>,
    /// Most events per journal batch [default: 4096].
    #[arg(long, value_name = "N")]
    pub batch_max: Option<usize>,
    /// Longest the journal writer collects one batch [default: 1000].
    #[arg(long, value_name = "US")]
    pub batch_window_us: Option<u64>,
    /// Events that may wait for the journal writer [default: 65536].
    #[arg(long, value_name = "N")]
    pub journal_queue_capacity: Option<usize>,
    /// The sled page cache [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    pub cache_capacity_bytes: Option<u64>,
    /// A snapshot after this many journal records (0: never).
    #[arg(long, value_name = "N")]
    pub snapshot_every_records: Option<u64>,
    /// ISO 8583 connections served at once [default: 128].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// ISO 8583 connections one IP address may hold at once [default: 64].
    #[arg(long, value_name = "N")]
    pub max_connections_per_peer: Option<usize>,
    /// Messages in flight per connection before reading pauses [default: 64].
    #[arg(long, value_name = "N")]
    pub max_in_flight_per_connection: Option<usize>,
    /// A quiet connection is closed after this long [default: 300].
    #[arg(long, value_name = "S")]
    pub idle_timeout_s: Option<u64>,
    /// A frame must arrive whole this long after its first byte [default: 10].
    #[arg(long, value_name = "S")]
    pub frame_timeout_s: Option<u64>,
    /// Longest ISO 8583 frame accepted, 64..=8192 [default: 8192].
    #[arg(long, value_name = "BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Management API connections one IP address may hold at once [default: 64].
    #[arg(long, value_name = "N")]
    pub http_max_connections_per_peer: Option<usize>,
    /// How long shutdown waits for in-flight messages [default: 10].
    #[arg(long, value_name = "S")]
    pub shutdown_grace_s: Option<u64>,
    /// Uncleared holds are released after this long [default: 7].
    #[arg(long, value_name = "DAYS")]
    pub hold_ttl_days: Option<u32>,
    /// The same for pre-authorisations [default: 30].
    #[arg(long, value_name = "DAYS")]
    pub pre_auth_hold_ttl_days: Option<u32>,
    /// Profile limit maxima when a PATCH gives none, in minor units
    /// [defaults: purchase 3000000, ATM 400000].
    #[arg(long, value_name = "MINOR")]
    pub purchase_daily_max_minor: Option<i64>,
    #[arg(long, value_name = "MINOR")]
    pub purchase_monthly_max_minor: Option<i64>,
    #[arg(long, value_name = "MINOR")]
    pub atm_daily_max_minor: Option<i64>,
    #[arg(long, value_name = "MINOR")]
    pub atm_monthly_max_minor: Option<i64>,
    /// Zone PIN key, 32 hex characters.
    #[arg(long, value_name = "HEX")]
    pub zone_pin_key: Option<String>,
    /// PIN verification key, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    pub pin_verification_key: Option<String>,
    /// CVV2 key, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    pub cvv2_key: Option<String>,
    /// PAN fingerprint key, 32 hex characters.
    #[arg(long, value_name = "HEX")]
    pub pan_key: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    Sync,
    Async,
}

impl ServeArgs {
    /// The configuration: defaults, then the file, then the flags, then sandbox defaults.
    pub fn into_config(mut self) -> Result<Config, ServiceError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let tokens = std::mem::take(&mut self.tokens);
        for (i, text) in tokens.iter().enumerate() {
            let token = parse_token(text).map_err(|problem| ServiceError::Config {
                field: format!("--token (occurrence {})", i + 1),
                problem,
            })?;
            config.tokens.push(token);
        }
        self.apply_to(&mut config);
        config.apply_sandbox_defaults();
        Ok(config)
    }

    fn apply_to(self, c: &mut Config) {
        set(&mut c.data_dir, self.data_dir);
        set(&mut c.iso_listen, self.iso_listen);
        set(&mut c.http_listen, self.http_listen);
        c.sandbox |= self.sandbox;
        set(&mut c.partitions, self.partitions);
        set(&mut c.txn_capacity, self.txn_capacity);
        set(&mut c.log_filter, self.log_filter);
        set(
            &mut c.durability.mode,
            self.durability.map(DurabilityArg::mode),
        );
        set(&mut c.durability.max_loss_ms, self.max_loss_ms);
        set(&mut c.journal.batch_max, self.batch_max);
        set(&mut c.journal.batch_window_us, self.batch_window_us);
        set(&mut c.journal.queue_capacity, self.journal_queue_capacity);
        set(
            &mut c.journal.cache_capacity_bytes,
            self.cache_capacity_bytes,
        );
        set(
            &mut c.journal.snapshot_every_records,
            self.snapshot_every_records,
        );
        set(&mut c.iso.max_connections, self.max_connections);
        set(
            &mut c.iso.max_in_flight_per_connection,
            self.max_in_flight_per_connection,
        );
        set(
            &mut c.iso.max_connections_per_peer,
            self.max_connections_per_peer,
        );
        set(&mut c.iso.idle_timeout_s, self.idle_timeout_s);
        set(&mut c.iso.frame_timeout_s, self.frame_timeout_s);
        set(&mut c.iso.max_frame_bytes, self.max_frame_bytes);
        set(&mut c.iso.shutdown_grace_s, self.shutdown_grace_s);
        set(
            &mut c.http.max_connections_per_peer,
            self.http_max_connections_per_peer,
        );
        set(&mut c.lifecycle.hold_ttl_days, self.hold_ttl_days);
        set(
            &mut c.lifecycle.pre_auth_hold_ttl_days,
            self.pre_auth_hold_ttl_days,
        );
        let m = &mut c.profile_limit_max;
        set(&mut m.purchase_daily_minor, self.purchase_daily_max_minor);
        set(
            &mut m.purchase_monthly_minor,
            self.purchase_monthly_max_minor,
        );
        set(&mut m.atm_daily_minor, self.atm_daily_max_minor);
        set(&mut m.atm_monthly_minor, self.atm_monthly_max_minor);
        let secret = |value: Option<String>| value.map(Secret::new);
        set_some(&mut c.keys.zone_pin_key, secret(self.zone_pin_key));
        set_some(
            &mut c.keys.pin_verification_key,
            secret(self.pin_verification_key),
        );
        set_some(&mut c.keys.cvv2_key, secret(self.cvv2_key));
        set_some(&mut c.keys.pan_key, secret(self.pan_key));
        if let Some(token) = self.admin_token {
            c.tokens.push(TokenConfig {
                token: Secret::new(token),
                role: Role::Operator,
            });
        }
    }
}

impl DurabilityArg {
    fn mode(self) -> DurabilityMode {
        match self {
            DurabilityArg::Sync => DurabilityMode::Sync,
            DurabilityArg::Async => DurabilityMode::Async,
        }
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

fn set_some<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

/// `TOKEN=ROLE`; the error never repeats the token.
fn parse_token(text: &str) -> Result<TokenConfig, String> {
    let (token, role) = text
        .rsplit_once('=')
        .ok_or("expected TOKEN=ROLE, e.g. TOKEN=profile:42")?;
    if token.is_empty() {
        return Err("the token before '=' is empty".to_owned());
    }
    Ok(TokenConfig {
        token: Secret::new(token),
        role: Role::parse(role)?,
    })
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its state [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How long to send traffic.
    #[arg(long, default_value = "20s", value_name = "DURATION")]
    pub duration: String,
    /// Cards in the synthetic population.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub cards: u64,
    /// Seed of the population and the traffic.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Where `report.json` and `latency.svg` are written.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Replay scenario files and report expectations met and not met.
    Replay(ReplayArgs),
    /// Generate synthetic traffic and write a report.
    Load(LoadArgs),
}

/// Where the simulator sends its traffic (SCENARIO-FORMAT.md, "Targets").
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// `in-process`, or `tcp://HOST:PORT` of a server started with `serve --sandbox`.
    #[arg(long, default_value = "in-process", value_name = "TARGET")]
    pub target: String,
    /// The management API of a TCP target: `http://HOST:PORT`.
    #[arg(long, value_name = "URL")]
    pub admin: Option<String>,
    /// The operator token of a TCP target (default `sandbox`).
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Scenario files; each starts from an empty engine.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Cards in the synthetic population.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub cards: u64,
    /// Seed of the population and the traffic: the same seed, the same messages (over TCP
    /// with `--setup-concurrency` above 1 the engine may number profiles and cards in
    /// another order).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// How long to send, e.g. `20s`, `2m`.
    #[arg(long, value_name = "DURATION", conflicts_with = "messages")]
    pub duration: Option<String>,
    /// How many messages to send.
    #[arg(long, value_name = "N")]
    pub messages: Option<u64>,
    /// Open loop: messages per second, latency measured from each scheduled send time.
    #[arg(long, value_name = "R", conflicts_with = "concurrency")]
    pub rate: Option<u64>,
    /// Closed loop: requests kept in flight.
    #[arg(long, value_name = "C")]
    pub concurrency: Option<u64>,
    /// TCP connections to a TCP target.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub connections: u64,
    /// Management API calls in flight at once while a TCP target's population is set up.
    #[arg(long, default_value_t = cardcore_sim::load::population::SETUP_CONCURRENCY_DEFAULT as u64, value_name = "N")]
    pub setup_concurrency: u64,
    /// Where `report.json` and `latency.svg` are written (nothing is written without it).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// The length of one interval of the report's latency time series (`intervals`).
    #[arg(long, default_value_t = REPORT_INTERVAL_DEFAULT.as_secs(), value_name = "S")]
    pub report_interval_s: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn serve(args: &[&str]) -> ServeArgs {
        let mut argv = vec!["cardcore", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(args) => *args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sandbox_flags_of_the_scenario_format_parse() {
        let config = serve(&[
            "--sandbox",
            "--data-dir",
            "/tmp/x",
            "--iso-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--admin-token",
            "T",
        ])
        .into_config()
        .unwrap();
        assert!(config.sandbox);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.iso_listen, "127.0.0.1:0");
        assert_eq!(
            config.tokens.len(),
            1,
            "no default token next to an explicit one"
        );
        assert_eq!(config.tokens[0].token.expose(), "T");
        assert_eq!(config.tokens[0].role, Role::Operator);
        let config = serve(&["--sandbox"]).into_config().unwrap();
        assert_eq!(config.tokens[0].token.expose(), "sandbox");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cardcore.toml");
        std::fs::write(
            &path,
            "partitions = 4\n[iso]\nidle_timeout_s = 9\nmax_connections = 3\n",
        )
        .unwrap();
        let config = serve(&[
            "--config",
            path.to_str().unwrap(),
            "--partitions",
            "8",
            "--durability",
            "async",
            "--max-loss-ms",
            "5",
            "--token",
            "abc=profile:7",
            "--pan-key",
            "00112233445566778899AABBCCDDEEFF",
            "--http-max-connections-per-peer",
            "16",
        ])
        .into_config()
        .unwrap();
        assert_eq!(config.partitions, 8);
        assert_eq!(config.iso.idle_timeout_s, 9);
        assert_eq!(config.iso.max_connections, 3);
        assert_eq!(config.http.max_connections_per_peer, 16);
        assert_eq!(config.durability.mode, DurabilityMode::Async);
        assert_eq!(config.durability.max_loss_ms, 5);
        assert_eq!(
            config.tokens[0].role,
            Role::Profile(cardcore_core::ProfileId(7))
        );
        assert!(config.keys.pan_key.is_some());
        config.validate().unwrap();
    }

    #[test]
    fn bad_tokens_are_refused_without_echoing_them() {
        for bad in ["s3cret", "=operator", "s3cret=admin", "s3cret=profile:0"] {
            let error = serve(&["--token", bad])
                .into_config()
                .unwrap_err()
                .to_string();
            assert!(error.contains("--token"), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn sim_commands_take_their_documented_options() {
        let cli = Cli::try_parse_from([
            "cardcore",
            "sim",
            "load",
            "--target",
            "tcp://127.0.0.1:8583",
            "--admin",
            "http://127.0.0.1:8080",
            "--cards",
            "100",
            "--seed",
            "7",
            "--duration",
            "20s",
            "--rate",
            "1000",
            "--connections",
            "4",
            "--report-dir",
            "out",
            "--report-interval-s",
            "30",
        ])
        .unwrap();
        let Command::Sim(SimCommand::Load(load)) = cli.command else {
            panic!("not sim load");
        };
        assert_eq!((load.cards, load.seed, load.connections), (100, 7, 4));
        assert_eq!(load.rate, Some(1000));
        assert_eq!(load.report_interval_s, 30);
        let cli = Cli::try_parse_from(["cardcore", "sim", "replay", "a.jsonl", "b.jsonl"]).unwrap();
        let Command::Sim(SimCommand::Replay(replay)) = cli.command else {
            panic!("not sim replay");
        };
        assert_eq!(replay.files.len(), 2);
        assert_eq!(replay.target.target, "in-process");
        assert!(Cli::try_parse_from(["cardcore", "sim", "replay"]).is_err());
        let both = [
            "cardcore",
            "sim",
            "load",
            "--rate",
            "1",
            "--concurrency",
            "1",
            "--report-dir",
            "x",
        ];
        assert!(Cli::try_parse_from(both).is_err());
    }
}
