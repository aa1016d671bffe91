//! `cardcore sim replay`, `cardcore sim load` and `cardcore demo`: the network simulator
//! (crate `cardcore-sim`) driven from the command line, against an embedded engine or a
//! running server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use cardcore_authz::wire::{process_message, Reply};
use cardcore_sim::load::{
    drive_load, prepare_load, Handler, InProcessDriver, LoadConfig, LoadDriver, LoadReport, Pacing,
    TcpDriver,
};
use cardcore_sim::scenario::{replay_files, Report, Target};
use cardcore_sim::targets::{InProcessTarget, SimKeys, TcpTarget};

use crate::cli::{LoadArgs, ReplayArgs, TargetArgs};
use crate::keys::SANDBOX_ZONE_PIN_KEY_HEX;

/// The seed of the in-process simulator's own keys (test keys of an engine it owns).
const IN_PROCESS_KEY_SEED: &[u8] = b"cardcore simulator";
/// The operator token of a sandbox server unless `--admin-token` says otherwise.
pub const DEFAULT_ADMIN_TOKEN: &str = "sandbox";

/// Where the simulator sends its traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    InProcess,
    Tcp {
        iso: String,
        admin: String,
        token: String,
    },
}

impl Destination {
    pub fn from_args(args: &TargetArgs) -> anyhow::Result<Destination> {
        if args.target == "in-process" {
            return Ok(Destination::InProcess);
        }
        let Some(iso) = args.target.strip_prefix("tcp://") else {
            bail!(
                "--target must be `in-process` or `tcp://HOST:PORT`, got {:?}",
                args.target
            );
        };
        let Some(admin) = args.admin.clone() else {
            bail!("--target tcp://... needs --admin http://HOST:PORT (the management API)");
        };
        let token = args
            .admin_token
            .clone()
            .unwrap_or_else(|| DEFAULT_ADMIN_TOKEN.to_owned());
        Ok(Destination::Tcp {
            iso: iso.to_owned(),
            admin,
            token,
        })
    }

    fn label(&self) -> String {
        match self {
            Destination::InProcess => "in-process".to_owned(),
            Destination::Tcp { iso, .. } => format!("tcp://{iso}"),
        }
    }
}

/// Keys for a sandbox server: the published sandbox zone PIN key, so PIN blocks decrypt.
fn sandbox_keys() -> anyhow::Result<SimKeys> {
    SimKeys::with_zone_pin_key_hex(SANDBOX_ZONE_PIN_KEY_HEX).context("the sandbox zone PIN key")
}

fn tcp_target(iso: &str, admin: &str, token: &str) -> anyhow::Result<TcpTarget> {
    TcpTarget::connect(iso, admin, token, sandbox_keys()?)
        .with_context(|| format!("connect to tcp://{iso} and {admin}"))
}

/// `cardcore sim replay`: every file from an empty engine; the report ends with
/// `N passed, M failed`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<bool> {
    let report = match Destination::from_args(&args.target)? {
        Destination::InProcess => {
            let mut target = InProcessTarget::new(SimKeys::from_seed(IN_PROCESS_KEY_SEED));
            replay_files(&mut target, &args.files)
        }
        Destination::Tcp { iso, admin, token } => {
            let mut target = tcp_target(&iso, &admin, &token)?;
            replay_files(&mut target, &args.files)
        }
    };
    print!("{report}");
    Ok(report_ok(&report))
}

fn report_ok(report: &Report) -> bool {
    report.is_success()
}

/// The options of a load run, checked.
pub fn load_config(args: &LoadArgs, keys: &SimKeys, label: String) -> anyhow::Result<LoadConfig> {
    let cards = usize::try_from(args.cards).context("--cards")?;
    let mut config = LoadConfig::new(cards, args.seed, keys.zone_pin_key());
    config.target_label = label;
    config.messages = args.messages;
    config.setup_concurrency =
        usize::try_from(args.setup_concurrency).context("--setup-concurrency")?;
    config.duration = match (&args.duration, args.messages) {
        (Some(text), _) => Some(parse_duration(text)?),
        (None, Some(_)) => None,
        (None, None) => config.duration,
    };
    config.pacing = match (args.rate, args.concurrency) {
        (Some(rate_per_s), _) => Pacing::OpenLoop { rate_per_s },
        (None, Some(c)) => Pacing::ClosedLoop {
            concurrency: usize::try_from(c)?,
        },
        (None, None) => config.pacing,
    };
    config.report_interval = Duration::from_secs(args.report_interval_s);
    config.validate()?;
    Ok(config)
}

/// `20s`, `2m`, `1h`: whole seconds, minutes or hours.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .with_context(|| format!("duration {text:?}: expected e.g. 20s"))?;
    let seconds = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => bail!("duration {text:?}: the unit must be s, m or h"),
    };
    Ok(Duration::from_secs(seconds))
}

/// `cardcore sim load`: generated traffic, its report printed and written to `--report-dir`.
pub fn load(args: LoadArgs) -> anyhow::Result<bool> {
    let destination = Destination::from_args(&args.target)?;
    let connections = usize::try_from(args.connections).context("--connections")?;
    let report = match &destination {
        Destination::InProcess => {
            let keys = SimKeys::from_seed(IN_PROCESS_KEY_SEED);
            let config = load_config(&args, &keys, destination.label())?;
            let mut target = InProcessTarget::new(keys);
            run_in_process(&config, &mut target, connections)?
        }
        Destination::Tcp { iso, admin, token } => {
            let keys = sandbox_keys()?;
            let config = load_config(&args, &keys, destination.label())?;
            let mut target = tcp_target(iso, admin, token)?;
            run_over_tcp(&config, &mut target, iso, connections)?
        }
    };
    finish_report(&report, args.report_dir.as_deref())
}

/// Prints the report, writes it if asked, and says whether the run reconciled.
pub fn finish_report(report: &LoadReport, dir: Option<&Path>) -> anyhow::Result<bool> {
    println!("{report}");
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let written = report
            .write_to_dir(dir)
            .with_context(|| format!("write to {}", dir.display()))?;
        for path in written {
            println!("wrote {}", path.display());
        }
    }
    Ok(report.is_success())
}

/// Load against an engine of the simulator's own: lanes call the same parse-decide-respond
/// path as the server, without the network.
pub fn run_in_process(
    config: &LoadConfig,
    target: &mut InProcessTarget,
    lanes: usize,
) -> anyhow::Result<LoadReport> {
    let prepared = prepare_load(config, target)?;
    let engine = target.shared_engine()?;
    let handler: Handler = Arc::new(move |bytes: &[u8]| match process_message(&engine, bytes) {
        Reply::Message(answer) => Some(answer),
        Reply::Close => None,
    });
    let mut driver = InProcessDriver::new(lanes, handler)?;
    Ok(drive_load(config, prepared, target, &mut driver)?)
}

/// Load against a running sandbox server: setup and checks over HTTP, traffic over TCP.
pub fn run_over_tcp(
    config: &LoadConfig,
    target: &mut dyn Target,
    iso: &str,
    connections: usize,
) -> anyhow::Result<LoadReport> {
    let prepared = prepare_load(config, target)?;
    let mut driver = TcpDriver::connect(iso, connections)?;
    let driver: &mut dyn LoadDriver = &mut driver;
    Ok(drive_load(config, prepared, target, driver)?)
}

/// Where `cardcore demo` keeps its state: the given folder, or a temporary one removed at
/// the end.
pub fn demo_dir(given: Option<PathBuf>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match given {
        Some(dir) => Ok((dir, None)),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("cardcore-demo-")
                .tempdir()?;
            Ok((temp.path().to_path_buf(), Some(temp)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_destinations_parse() {
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("2w").is_err());
        assert!(parse_duration("s").is_err());
        let args = |target: &str, admin: Option<&str>| TargetArgs {
            target: target.to_owned(),
            admin: admin.map(str::to_owned),
            admin_token: None,
        };
        assert_eq!(
            Destination::from_args(&args("in-process", None)).unwrap(),
            Destination::InProcess
        );
        assert!(Destination::from_args(&args("tcp://127.0.0.1:1", None)).is_err());
        assert!(Destination::from_args(&args("udp://x", None)).is_err());
        let tcp = Destination::from_args(&args("tcp://127.0.0.1:1", Some("http://127.0.0.1:2")));
        assert_eq!(
            tcp.unwrap(),
            Destination::Tcp {
                iso: "127.0.0.1:1".into(),
                admin: "http://127.0.0.1:2".into(),
                token: DEFAULT_ADMIN_TOKEN.into()
            }
        );
    }
}
