//! The shared example scenarios and the scenario library, replayed against a real sandbox
//! server: traffic as ISO 8583 over TCP, setup and expectations through the management HTTP
//! API (SCENARIO-FORMAT.md "Targets"). Every expectation must hold, and each set must count
//! exactly what the in-process target counts: a scenario gives the same result on both.
//!
//! The server runs in this process on ephemeral loopback ports with a temporary data
//! directory, started the way `cardcore serve --sandbox --zone-pin-key HEX` starts it, with
//! the zone PIN key the simulator's keys derive.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cardcore_core::pin::ZonePinKey;
use cardcore_core::TimeZone;
use cardcore_core::{CardStatus, CardToken, Currency, Money, ProfileId, ProfileStatus, RuleId};
use cardcore_server::config::KeysConfig;
use cardcore_server::{Config, Role, Secret, Server, Service, TokenConfig};
use cardcore_sim::scenario::{
    replay_files, CardRef, ProfileSetup, Report, Target, TargetError, TrafficMessage,
    SCENARIO_START,
};
use cardcore_sim::targets::tcp::SANDBOX_ADMIN_TOKEN;
use cardcore_sim::targets::{InProcessTarget, SimKeys, TcpTarget};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// The seed the in-process scenario tests use, so both targets run with the same keys.
const SEED: &[u8] = b"scenario tests";
/// Threads serving the sandbox: the machine running the tests may have only two cores.
const SERVER_WORKER_THREADS: usize = 2;

/// A sandbox server on loopback, stopped when dropped.
struct Sandbox {
    runtime: Runtime,
    server: Option<Server>,
    _dir: TempDir,
}

impl Sandbox {
    fn start(keys: &SimKeys) -> Sandbox {
        Sandbox::start_in_mode(keys, true)
    }

    /// `sandbox: false` starts an ordinary server with the same operator token, which a
    /// scenario run must refuse to drive.
    fn start_in_mode(keys: &SimKeys, sandbox: bool) -> Sandbox {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            iso_listen: "127.0.0.1:0".to_owned(),
            http_listen: "127.0.0.1:0".to_owned(),
            sandbox,
            keys: KeysConfig {
                zone_pin_key: Some(Secret::new(zone_pin_key_hex(keys))),
                ..KeysConfig::default()
            },
            ..Config::default()
        };
        if !sandbox {
            config.tokens.push(TokenConfig {
                token: Secret::new(SANDBOX_ADMIN_TOKEN),
                role: Role::Operator,
            });
        }
        config.apply_sandbox_defaults();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(SERVER_WORKER_THREADS)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(async move {
            let service = tokio::task::spawn_blocking(move || Service::open(config))
                .await
                .expect("open task")
                .expect("the sandbox service opens");
            let router = cardcore_server::http::router(Arc::clone(&service));
            Server::start(service, router)
                .await
                .expect("the sandbox server starts")
        });
        Sandbox {
            runtime,
            server: Some(server),
            _dir: dir,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    fn target(&self, keys: &SimKeys) -> TcpTarget {
        let server = self.server();
        TcpTarget::connect(
            &format!("tcp://{}", server.iso_addr()),
            &format!("http://{}", server.http_addr()),
            SANDBOX_ADMIN_TOKEN,
            keys.clone(),
        )
        .expect("the target connects to the sandbox")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let service = Arc::clone(server.service());
            self.runtime.block_on(async move {
                let _ = server.shutdown().await;
                let _ = service.close().await;
            });
        }
    }
}

/// `cardcore serve --zone-pin-key` takes the key as 32 hex characters.
fn zone_pin_key_hex(keys: &SimKeys) -> String {
    let hex: String = keys
        .zone_pin_key_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    // The simulator encrypts under `zone_pin_key()`; the hex must be that very key.
    let given = ZonePinKey::from_hex(&hex).expect("a usable zone PIN key");
    assert_eq!(given.check_value(), keys.zone_pin_key().check_value());
    hex
}

fn scenario_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario in {}", dir.display());
    files
}

fn shared_scenarios() -> Vec<PathBuf> {
    scenario_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/scenarios"))
}

fn library_scenarios() -> Vec<PathBuf> {
    scenario_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"))
}

/// Replays `files` over TCP and in process; both must pass everything, with equal counts.
fn replay_on_both(files: &[PathBuf]) {
    let keys = SimKeys::from_seed(SEED);
    let sandbox = Sandbox::start(&keys);
    let mut tcp = sandbox.target(&keys);
    let over_tcp = replay_files(&mut tcp, files);
    println!("over TCP: {over_tcp}");
    assert!(over_tcp.is_success(), "over TCP: {over_tcp}");
    assert!(over_tcp.passed > 0, "no expectation ran: {over_tcp}");
    let in_process: Report = replay_files(&mut InProcessTarget::new(keys), files);
    assert_eq!(
        (over_tcp.passed, over_tcp.failed),
        (in_process.passed, in_process.failed),
        "the targets disagree; in process: {in_process}"
    );
}

#[test]
fn shared_examples_pass_over_tcp() {
    replay_on_both(&shared_scenarios());
}

#[test]
fn scenario_library_passes_over_tcp() {
    replay_on_both(&library_scenarios());
}

#[test]
fn a_wrong_token_address_or_mode_fails_at_connect() {
    let keys = SimKeys::from_seed(SEED);
    let sandbox = Sandbox::start(&keys);
    let server = sandbox.server();
    let iso = server.iso_addr().to_string();
    let http = format!("http://{}", server.http_addr());
    let ordinary = Sandbox::start_in_mode(&keys, false);
    let ordinary_http = format!("http://{}", ordinary.server().http_addr());
    let cases = [
        (
            iso.as_str(),
            ordinary_http.as_str(),
            SANDBOX_ADMIN_TOKEN,
            "HTTP 404",
        ),
        (
            "127.0.0.1:1",
            http.as_str(),
            SANDBOX_ADMIN_TOKEN,
            "ISO 8583 listener",
        ),
        (iso.as_str(), http.as_str(), "not-the-token", "HTTP 401"),
        (
            iso.as_str(),
            "https://127.0.0.1:1",
            SANDBOX_ADMIN_TOKEN,
            "http://",
        ),
        (iso.as_str(), http.as_str(), "two words", "printable"),
    ];
    for (iso, admin, token, needle) in cases {
        match TcpTarget::connect(iso, admin, token, keys.clone()) {
            Err(TargetError::Failed(message)) => {
                assert!(message.contains(needle), "{admin} {token}: {message}");
                // The well-known sandbox token is a word of the messages themselves.
                let secret = token != SANDBOX_ADMIN_TOKEN;
                assert!(
                    !(secret && message.contains(token)),
                    "the token is shown: {message}"
                );
            }
            other => panic!("{admin} {token}: expected a failure, got {other:?}"),
        }
    }
}

/// The engine's refusals arrive as `Refused` (what `expect_error` accepts) and change
/// nothing; a closed connection is an outcome, and the next message gets a new one.
#[test]
fn refusals_and_disconnects_mirror_the_in_process_target() {
    let keys = SimKeys::from_seed(SEED);
    let sandbox = Sandbox::start(&keys);
    let mut tcp = sandbox.target(&keys);
    let mut local = InProcessTarget::new(keys);
    for target in [&mut tcp as &mut dyn Target, &mut local] {
        check_refusals(target);
    }
}

fn check_refusals(target: &mut dyn Target) {
    target.reset(SCENARIO_START).expect("reset");
    let profile = target
        .create_profile(&ProfileSetup {
            timezone: TimeZone::UTC,
            status: ProfileStatus::Active,
        })
        .expect("profile");
    let eur = Currency::from_alpha("EUR").expect("EUR");
    target
        .top_up(profile, Money::new(10_000, eur))
        .expect("top-up");
    let unknown_card = CardRef {
        profile,
        token: CardToken(7),
    };
    let refused = [
        target.set_card_status(unknown_card, CardStatus::Frozen),
        target.delete_rule(RuleId(99)),
        target.top_up(ProfileId(999), Money::new(1, eur)),
    ];
    for (i, result) in refused.into_iter().enumerate() {
        assert!(
            matches!(result, Err(TargetError::Refused(_))),
            "case {i}: {result:?}"
        );
    }
    let balance = target.balance(profile, eur).expect("balance").expect("EUR");
    assert_eq!(balance.cash, Money::new(10_000, eur));
    assert_eq!(
        target.invariant_violations().expect("invariants"),
        Vec::<String>::new()
    );
    let closed = target
        .send(&TrafficMessage::Raw(b"not a message".to_vec()))
        .expect("an outcome");
    assert!(closed.disconnected, "{closed:?}");
    // An echo test: DE 7, DE 11 and DE 70 = 301.
    let echo = b"0800822000000000000004000000000000000115100000900007301".to_vec();
    let answered = target.send(&TrafficMessage::Raw(echo)).expect("an outcome");
    assert!(!answered.disconnected, "{answered:?}");
    assert_eq!(answered.response_code.as_deref(), Some("00"));
}

/// A population set up with many calls side by side ends as one set up call by call: every
/// profile funded with its own top-ups, every card issued to its own profile, nothing
/// twice, the ledger sound.
#[test]
fn a_population_set_up_side_by_side_is_complete_and_funded() {
    use cardcore_sim::load::{Population, PopulationConfig};
    let keys = SimKeys::from_seed(SEED);
    let sandbox = Sandbox::start(&keys);
    let mut tcp = sandbox.target(&keys);
    let population = Population::generate(PopulationConfig {
        cards: 400,
        seed: 7,
        start: SCENARIO_START,
    })
    .expect("a population");
    let mut last = (0, 0);
    let deployed = population
        .set_up(&mut tcp, 8, &mut |done, total| last = (done, total))
        .expect("the population is set up");
    assert_eq!(
        last,
        (population.setup_ops().len(), population.setup_ops().len())
    );
    assert_eq!(deployed.profiles.len(), population.profiles.len());
    assert_eq!(deployed.cards.len(), population.cards.len());
    let distinct: std::collections::BTreeSet<ProfileId> =
        deployed.profiles.iter().copied().collect();
    assert_eq!(distinct.len(), deployed.profiles.len(), "a profile twice");
    for (plan, &id) in population.profiles.iter().zip(&deployed.profiles) {
        for top_up in &plan.balances {
            let balance = tcp
                .balance(id, top_up.currency)
                .expect("the balance reads")
                .expect("the profile has the balance");
            assert_eq!(balance.available, *top_up, "{id}");
        }
    }
    for (plan, card) in population.cards.iter().zip(&deployed.cards) {
        assert_eq!(card.profile, deployed.profiles[plan.profile]);
        assert_eq!(tcp.pin_tries(*card).expect("the card reads"), 0);
    }
    assert_eq!(
        tcp.invariant_violations().expect("the check runs"),
        Vec::<String>::new()
    );
}
