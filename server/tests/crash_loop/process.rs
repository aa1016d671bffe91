//! The server under test as a child process: `cardcore serve --sandbox` on ephemeral
//! loopback ports, its bound addresses read from the `listening` log line, killed with
//! SIGKILL (`Child::kill` on unix).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Log lines kept for the failure message (the newest ones).
pub const LOG_LINES_KEPT: usize = 200;
/// How long a start (recovery included) may take before the run fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a start checks whether the child died before listening.
const START_POLL: Duration = Duration::from_millis(20);

/// `--durability`: what the server waits for before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Answers wait for their journal batch to be flushed: nothing answered is lost.
    Sync,
    /// Answers go first; the journal is flushed within `max_loss_ms`.
    Async { max_loss_ms: u64 },
}

impl Durability {
    fn args(self) -> Vec<String> {
        match self {
            Durability::Sync => vec!["--durability".into(), "sync".into()],
            Durability::Async { max_loss_ms } => vec![
                "--durability".into(),
                "async".into(),
                "--max-loss-ms".into(),
                max_loss_ms.to_string(),
            ],
        }
    }
}

/// How the server is started: what every start of one run shares.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub binary: String,
    pub data_dir: std::path::PathBuf,
    pub durability: Durability,
    /// A snapshot after this many journal records: small, so kills also land on and
    /// between snapshots, and recovery replays a tail after a snapshot.
    pub snapshot_every_records: u64,
}

/// A running (or killed) `cardcore serve`.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Filled by the log reader; shared so a failure can show what the server said.
    log: Arc<Mutex<LogTail>>,
    listening: mpsc::Receiver<(String, String)>,
    started_at: Instant,
}

/// The bound addresses, once the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    pub iso: String,
    pub http: String,
    /// From spawn to the `listening` line: recovery plus start.
    pub start_time: Duration,
}

/// The newest log lines, and what they told about snapshots.
#[derive(Debug, Default)]
struct LogTail {
    lines: VecDeque<String>,
    snapshots_written: u64,
}

impl ServerProcess {
    /// Starts the server on `options.data_dir`; returns at once (see [`Self::wait_listening`]).
    pub fn spawn(options: &ServeOptions) -> anyhow::Result<ServerProcess> {
        let mut child = Command::new(&options.binary)
            .arg("serve")
            .arg("--sandbox")
            .arg("--data-dir")
            .arg(&options.data_dir)
            .args([
                "--iso-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args(options.durability.args())
            .args(["--log-filter", "info"])
            .arg("--snapshot-every-records")
            .arg(options.snapshot_every_records.to_string())
            // The `listening` line is logged at info: a filter from the caller's
            // environment must not hide it.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {}", options.binary))?;
        let stderr = child.stderr.take().context("the child's stderr")?;
        let log = Arc::new(Mutex::new(LogTail::default()));
        let (tx, listening) = mpsc::channel();
        let reader_log = Arc::clone(&log);
        thread::Builder::new()
            .name("crash-loop-log".into())
            .spawn(move || read_log(stderr, &reader_log, &tx))
            .context("start the log reader")?;
        Ok(ServerProcess {
            child,
            log,
            listening,
            started_at: Instant::now(),
        })
    }

    /// Waits for the `listening` line. Fails if the child exits first or takes longer than
    /// [`START_TIMEOUT`].
    pub fn wait_listening(&mut self) -> anyhow::Result<Addresses> {
        let deadline = self.started_at + START_TIMEOUT;
        loop {
            match self.listening.recv_timeout(START_POLL) {
                Ok((iso, http)) => {
                    return Ok(Addresses {
                        iso,
                        http,
                        start_time: self.started_at.elapsed(),
                    })
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!(
                        "the server closed its log before listening\n{}",
                        self.log_tail()
                    )
                }
            }
            if let Some(status) = self.child.try_wait().context("poll the server")? {
                bail!(
                    "the server exited ({status}) before listening\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server did not listen within {START_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// SIGKILL, then reaps the child so its files and ports are released.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait().context("poll the server")?.is_some() {
            bail!(
                "the server had already exited before the kill\n{}",
                self.log_tail()
            );
        }
        self.child.kill().context("kill the server")?;
        self.child.wait().context("reap the server")?;
        Ok(())
    }

    /// Whether the process is still running (it must be, until it is killed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn snapshots_written(&self) -> u64 {
        self.lock_log().snapshots_written
    }

    /// The newest log lines, for a failure message. The server never logs a PAN, PIN or key.
    pub fn log_tail(&self) -> String {
        let log = self.lock_log();
        let mut out = format!("--- last {} server log lines ---\n", log.lines.len());
        for line in &log.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, LogTail> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // A failed run must not leave a server behind.
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads the child's stderr to its end: keeps the newest lines, counts snapshots, and
/// reports the bound addresses once.
fn read_log(stderr: ChildStderr, log: &Mutex<LogTail>, tx: &mpsc::Sender<(String, String)>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { return };
        if let Some(addresses) = listening_addresses(&line) {
            let _ = tx.send(addresses);
        }
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        if line.contains("snapshot written") {
            log.snapshots_written += 1;
        }
        if log.lines.len() == LOG_LINES_KEPT {
            log.lines.pop_front();
        }
        log.lines.push_back(line);
    }
}

/// `... listening iso=127.0.0.1:40001 http=127.0.0.1:40002` → the two addresses.
pub fn listening_addresses(line: &str) -> Option<(String, String)> {
    if !line.contains(" listening") {
        return None;
    }
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .map(str::to_owned)
    };
    Some((field("iso=")?, field("http=")?))
}
