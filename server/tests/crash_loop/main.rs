//! Crash loop: `cardcore serve --sandbox` (this package's binary) under generated load,
//! killed with SIGKILL at random moments and restarted on the same data directory. After
//! every restart the client's own records, kept only from the answers it read, are checked
//! against the server: every approval is there with its hold (or in the state the later
//! answers put it in), no clearing is posted twice, the balances reconcile to the minor
//! unit and the invariants hold. See docs/operations.md, "Crash loop".
//!
//! ```text
//! cargo test -p cardcore-server --test crash_loop -- --nocapture
//! CARDCORE_CRASH_LOOP_KILLS=50 cargo test --release -p cardcore-server --test crash_loop -- --nocapture
//! ```
//!
//! Environment: `CARDCORE_CRASH_LOOP_KILLS` (kills under load, default
//! [`DEFAULT_KILLS`]), `CARDCORE_CRASH_LOOP_SEED` (population, traffic and kill delays),
//! `CARDCORE_CRASH_LOOP_CARDS` (population size). The moment a kill lands depends on
//! timing, so a seed repeats the traffic and the delays, not the exact kill points.

mod book;
mod counts;
mod harness;
mod http;
mod link;
mod process;

use std::time::Instant;

use anyhow::Context;
use harness::{Harness, Settings};
use process::Durability;

/// Kills under load in a default (CI) run; the full run sets 50 or more.
pub const DEFAULT_KILLS: u64 = 5;
pub const DEFAULT_SEED: u64 = 20_261_121;
pub const DEFAULT_CARDS: usize = 200;
/// The loss window of the server that answers before its journal is durable: longer than
/// its whole run, so a kill loses what it answered.
const LOSSY_MAX_LOSS_MS: u64 = 60_000;

#[test]
fn approvals_survive_sigkill_and_restart() {
    let settings = settings_from_env().unwrap();
    let dir = data_dir();
    let started = Instant::now();
    match run(settings, dir.path()) {
        Ok(harness) => {
            println!(
                "crash loop, seed {}, {} cards, {:.1} s:\n{}",
                settings.seed,
                settings.cards,
                started.elapsed().as_secs_f64(),
                harness.counts
            );
            assert!(harness.counts.kills_under_load >= settings.kills);
        }
        Err(error) => {
            // Kept for the post-mortem: the journal and snapshots as the last kill left them.
            let kept = dir.keep();
            panic!(
                "crash loop failed (seed {}, {} cards; data directory kept at {}):\n{error:#}",
                settings.seed,
                settings.cards,
                kept.display()
            );
        }
    }
}

/// The loop must fail against a server that answers before its journal is durable: in
/// `async` mode with a loss window longer than the run and no snapshot (a snapshot flushes
/// the journal), a kill loses everything the server answered, and the checks after the
/// restart say so.
#[test]
fn a_server_that_answers_before_its_journal_is_durable_fails_the_loop() {
    let settings = Settings {
        kills: 1,
        seed: DEFAULT_SEED,
        cards: 50,
        durability: Durability::Async {
            max_loss_ms: LOSSY_MAX_LOSS_MS,
        },
        snapshot_every_records: 0,
    };
    let dir = data_dir();
    let error = match run(settings, dir.path()) {
        Ok(harness) => panic!("a lossy server passed the crash loop:\n{}", harness.counts),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("does not match what the client was answered"),
        "{error}"
    );
    println!("the lossy server failed the loop, as it must:\n{error}");
}

/// Sets up, runs every round, then shows the checks can fail.
fn run(settings: Settings, dir: &std::path::Path) -> anyhow::Result<Harness> {
    let mut harness = Harness::start(settings, env!("CARGO_BIN_EXE_cardcore"), dir)?;
    harness.run()?;
    harness.prove_checks_can_fail()?;
    Ok(harness)
}

fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cardcore-crash-loop-")
        .tempdir()
        .unwrap()
}

fn settings_from_env() -> anyhow::Result<Settings> {
    Ok(Settings {
        kills: env_or("CARDCORE_CRASH_LOOP_KILLS", DEFAULT_KILLS)?,
        seed: env_or("CARDCORE_CRASH_LOOP_SEED", DEFAULT_SEED)?,
        cards: env_or("CARDCORE_CRASH_LOOP_CARDS", DEFAULT_CARDS)?,
        durability: Durability::Sync,
        snapshot_every_records: harness::SNAPSHOT_EVERY_RECORDS,
    })
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{name}={text:?} is not a number")),
        Err(_) => Ok(default),
    }
}

#[test]
fn the_listening_line_gives_both_addresses() {
    let line = "2026-01-15T10:00:00.000Z  INFO cardcore_server::server: listening \
                iso=127.0.0.1:40001 http=127.0.0.1:40002";
    assert_eq!(
        process::listening_addresses(line),
        Some(("127.0.0.1:40001".to_owned(), "127.0.0.1:40002".to_owned()))
    );
    assert_eq!(process::listening_addresses("INFO engine open"), None);
    assert_eq!(
        process::listening_addresses("INFO listening iso=127.0.0.1:1"),
        None
    );
}
