//! Crash test: a child process appends to a sled journal under load (sync mode, snapshots
//! every `SNAPSHOT_EVERY` events) and prints the durable watermark after every flush; the
//! parent kills it with SIGKILL at random points, recovers the journal, and checks that every
//! event the child reported durable is there, intact and contiguous, and that the snapshot
//! agrees with the events it covers. The same directory is reused across kills, so every run
//! also recovers from the previous crash and continues its sequence.
//!
//! The child is this same test binary, re-executed with `CARDCORE_CRASH_CHILD_DIR` set.
//! 20 kills by default; more with
//! `CARDCORE_CRASH_ITERATIONS=500 cargo test -p cardcore-ledger --test crash_journal`
//! and another sequence of kill points with `CARDCORE_CRASH_SEED=<u64>`.

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cardcore_ledger::journal::{DurableNotice, Journal, JournalConfig, Seq};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

const TEST_NAME: &str = "sigkill_at_random_points_loses_no_event_reported_durable";
const CHILD_DIR_ENV: &str = "CARDCORE_CRASH_CHILD_DIR";
const ITERATIONS_ENV: &str = "CARDCORE_CRASH_ITERATIONS";
const SEED_ENV: &str = "CARDCORE_CRASH_SEED";
const DEFAULT_ITERATIONS: u64 = 20;
const DEFAULT_SEED: u64 = 0x0C4A_5400_0001;
const SNAPSHOT_EVERY: Seq = 5_000;
/// The child stops by itself after this long, should the parent be gone.
const CHILD_MAX_RUN: Duration = Duration::from_secs(20);
/// How long the parent waits for a child to come up.
const CHILD_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Kill points, in milliseconds after the child is ready.
const KILL_AFTER_READY_MS_MAX: u64 = 150;

#[test]
fn sigkill_at_random_points_loses_no_event_reported_durable() {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        run_child(Path::new(&dir));
        return;
    }
    let iterations = env_u64(ITERATIONS_ENV).unwrap_or(DEFAULT_ITERATIONS);
    let seed = env_u64(SEED_ENV).unwrap_or(DEFAULT_SEED);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut reported_max = 0;
    let mut snapshots_seen = 0;
    for iteration in 0..iterations {
        let kill = KillPoint::pick(&mut rng);
        let reported = run_and_kill(dir.path(), kill);
        reported_max = reported_max.max(reported);
        let recovered = verify(dir.path());
        assert!(
            recovered.last_seq >= reported_max,
            "iteration {iteration} (seed {seed}, {kill:?}): child reported {reported_max} \
             durable, recovery found only {}",
            recovered.last_seq
        );
        snapshots_seen += u64::from(recovered.snapshot_seq.is_some());
    }
    assert!(
        reported_max > 0,
        "the child never reported anything durable"
    );
    eprintln!(
        "crash test: {iterations} kills (seed {seed}), {reported_max} events reported durable, \
         {snapshots_seen} recoveries started from a snapshot"
    );
}

/// When to kill the child.
#[derive(Clone, Copy, Debug)]
enum KillPoint {
    /// This long after it said it is ready (appending under load).
    AfterReady { ms: u64 },
    /// This long after spawning, ready or not (may hit recovery itself).
    AfterSpawn { ms: u64 },
}

impl KillPoint {
    fn pick(rng: &mut StdRng) -> KillPoint {
        if rng.gen_ratio(1, 5) {
            KillPoint::AfterSpawn {
                ms: rng.gen_range(0..=40),
            }
        } else {
            KillPoint::AfterReady {
                ms: rng.gen_range(1..=KILL_AFTER_READY_MS_MAX),
            }
        }
    }
}

/// Event `seq`'s payload: its seq, then filler of a seq-dependent length and value.
fn payload(seq: Seq) -> Vec<u8> {
    let mut bytes = seq.to_be_bytes().to_vec();
    bytes.extend(std::iter::repeat_n((seq as u8) ^ 0x5A, (seq % 61) as usize));
    bytes
}

/// The child's "engine state": how many events and a running checksum of all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct State {
    seq: Seq,
    digest: u32,
}

impl State {
    fn apply(&mut self, seq: Seq, payload: &[u8]) {
        assert_eq!(seq, self.seq + 1, "events must be applied in order");
        self.seq = seq;
        self.digest = crc32c::crc32c_append(self.digest, payload);
    }

    fn encode(&self) -> Vec<u8> {
        [
            self.seq.to_be_bytes().as_slice(),
            &self.digest.to_be_bytes(),
        ]
        .concat()
    }

    fn decode(bytes: &[u8]) -> State {
        assert_eq!(bytes.len(), 12, "snapshot body");
        let seq = Seq::from_be_bytes(bytes[..8].try_into().unwrap());
        let digest = u32::from_be_bytes(bytes[8..].try_into().unwrap());
        State { seq, digest }
    }

    /// The state after events 1..=seq, computed from scratch.
    fn expected(seq: Seq) -> State {
        let mut state = State::default();
        for s in 1..=seq {
            state.apply(s, &payload(s));
        }
        state
    }
}

/// Recovers `dir`, checking every record against the deterministic payloads, and returns
/// the state it rebuilt.
fn recover_state(dir: &Path) -> (State, Option<Seq>, Journal) {
    let mut recovery = Journal::recover(JournalConfig::new(dir)).expect("recovery");
    let snapshot_seq = recovery.snapshot().map(|s| s.seq);
    let mut state = match recovery.take_snapshot() {
        Some(snapshot) => {
            let state = State::decode(&snapshot.bytes);
            assert_eq!(state.seq, snapshot.seq);
            state
        }
        None => State::default(),
    };
    for record in recovery.tail() {
        let record = record.expect("a record reported durable must be intact");
        assert_eq!(
            record.payload(),
            payload(record.seq),
            "payload of {}",
            record.seq
        );
        state.apply(record.seq, record.payload());
    }
    (
        state,
        snapshot_seq,
        recovery.start().expect("start after recovery"),
    )
}

struct Recovered {
    last_seq: Seq,
    snapshot_seq: Option<Seq>,
}

fn verify(dir: &Path) -> Recovered {
    let (state, snapshot_seq, journal) = recover_state(dir);
    assert_eq!(
        state,
        State::expected(state.seq),
        "rebuilt state differs from the events"
    );
    journal.shutdown().unwrap();
    Recovered {
        last_seq: state.seq,
        snapshot_seq,
    }
}

/// Spawns the child, kills it at `kill`, and returns the highest seq it reported durable.
fn run_and_kill(dir: &Path, kill: KillPoint) -> Seq {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let spawned = Instant::now();
    let ready = Arc::new(AtomicBool::new(false));
    let reported = Arc::new(AtomicU64::new(0));
    let reader = {
        let stdout = child.stdout.take().unwrap();
        let (ready, reported) = (Arc::clone(&ready), Arc::clone(&reported));
        std::thread::spawn(move || read_reports(BufReader::new(stdout), &ready, &reported))
    };
    match kill {
        KillPoint::AfterSpawn { ms } => std::thread::sleep(Duration::from_millis(ms)),
        KillPoint::AfterReady { ms } => {
            while !ready.load(Ordering::Acquire) {
                assert!(
                    spawned.elapsed() < CHILD_READY_TIMEOUT,
                    "child never became ready"
                );
                assert_still_running(&mut child);
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
    assert_still_running(&mut child);
    child.kill().expect("SIGKILL the child");
    child.wait().unwrap();
    reader.join().unwrap();
    reported.load(Ordering::Acquire)
}

fn assert_still_running(child: &mut Child) {
    if let Some(status) = child.try_wait().unwrap() {
        panic!("child exited by itself ({status}); its stderr above says why");
    }
}

/// Reads the child's stdout to the end: `ready` once, then `durable <seq>` lines.
fn read_reports(stdout: impl BufRead, ready: &AtomicBool, reported: &AtomicU64) {
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        if line == "ready" {
            ready.store(true, Ordering::Release);
        } else if let Some(seq) = line.strip_prefix("durable ") {
            let seq: Seq = seq.parse().expect("durable line");
            let before = reported.fetch_max(seq, Ordering::AcqRel);
            assert!(
                seq >= before,
                "durable watermark went back: {before} -> {seq}"
            );
        }
    }
}

/// The child: recover, then append as fast as the journal takes events until killed.
fn run_child(dir: &Path) {
    let (mut state, _, journal) = recover_state(dir);
    journal.on_durable(Box::new(|notice| {
        if let DurableNotice::Durable(seq) = notice {
            let mut out = std::io::stdout().lock();
            // The parent gone means nobody is counting: stop.
            if writeln!(out, "durable {seq}")
                .and_then(|()| out.flush())
                .is_err()
            {
                std::process::exit(0);
            }
        }
    }));
    {
        // The leading newline ends the test harness's unterminated "test ... " line.
        let mut out = std::io::stdout().lock();
        writeln!(out, "\nready")
            .and_then(|()| out.flush())
            .expect("stdout");
    }
    let started = Instant::now();
    while started.elapsed() < CHILD_MAX_RUN {
        let seq = state.seq + 1;
        let event = payload(seq);
        assert_eq!(journal.append(&event).unwrap(), seq);
        state.apply(seq, &event);
        if seq % SNAPSHOT_EVERY == 0 {
            journal.write_snapshot(seq, &state.encode()).unwrap();
        }
    }
    journal.shutdown().unwrap();
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")),
    )
}
