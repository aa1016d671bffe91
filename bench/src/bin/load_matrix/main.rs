//! The load matrix: `cardcore serve` and `cardcore sim load` run as two processes over
//! loopback TCP, one fresh server and data directory per run, so every figure is end to end
//! (framing, TCP, the engine, the journal's fsync, the answer) and reproducible from the
//! command line. See bench/load/README.md.
//!
//! - `matrix`: closed-loop throughput and latency for every durability × partitions × cards
//!   cell, with the server's CPU time per message and its resident memory before the traffic.
//! - `max-rate`: per cell, the highest open-loop rate whose p99 stays under a bound.
//! - `recovery`: time to reopen a data directory whose journal holds about a million events.
//! - `soak`: one long open-loop run at a fixed rate, as a time series of latency, memory and
//!   CPU per message, with a verdict on whether p99 and memory stayed flat (`soak.rs`).
//!
//! Each run writes its files under `OUT/runs/NAME/` (the server's log and `/metrics`, the
//! simulator's report) and appends one JSON line to `OUT/results.jsonl`; each command ends
//! with a Markdown table in `OUT/<command>.md`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

mod soak;

/// How often a run samples the server's metrics, CPU time and memory.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);
/// How long a server may take to answer `/health` after it was started (recovery included).
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a starting server is asked for `/health`: the resolution of a recovery time.
const START_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How long a stopping server may take to flush and exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for one management API answer (`/health`, `/metrics`).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `/health` or `/metrics` answer read.
const HTTP_BODY_BYTES_MAX: u64 = 1 << 20;
/// A probe of `max-rate` must answer at least this share of the rate asked, in percent: below
/// it the generator or the server fell behind and the p99 would flatter the run.
const RATE_KEPT_PERCENT_MIN: f64 = 95.0;
/// `max-rate` stops bisecting when the bracket is narrower than this share of its top.
const RATE_BRACKET_PERCENT_MIN: u64 = 5;
/// The lowest rate `max-rate` tries before it gives up on a cell.
const RATE_FLOOR_PER_S: u64 = 250;

#[derive(Debug, Parser)]
#[command(
    name = "load_matrix",
    about = "cardcore end-to-end load matrix over loopback TCP"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Closed-loop throughput and latency for every cell of the matrix.
    Matrix(MatrixArgs),
    /// The highest open-loop rate whose p99 stays under --p99-max-us, per cell.
    MaxRate(MaxRateArgs),
    /// Time to reopen a data directory whose journal holds the events of --messages.
    Recovery(RecoveryArgs),
    /// Resident memory per card of a partition holding --cards cards, in this process.
    Memory(MemoryArgs),
    /// One long open-loop run at --rate: latency, memory and CPU per --interval-s.
    Soak(soak::SoakArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// The `cardcore` binary (build it with `cargo build --release -p cardcore-server`).
    #[arg(long, default_value = "target/release/cardcore")]
    cardcore: PathBuf,
    /// Where runs, results.jsonl and the tables go.
    #[arg(long)]
    out: PathBuf,
    /// Seed of population and traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// TCP connections of the load generator.
    #[arg(long, default_value_t = 4)]
    connections: u64,
    /// More `cardcore serve` flags, e.g. `--serve-arg=--batch-window-us=200`.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

#[derive(Debug, Args)]
struct MatrixArgs {
    #[command(flatten)]
    common: Common,
    /// Traffic per run, in seconds.
    #[arg(long, default_value_t = 15)]
    duration_s: u64,
    #[arg(long, value_delimiter = ',', default_value = "sync,async")]
    durability: Vec<Durability>,
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    partitions: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    cards: Vec<u64>,
    /// Requests in flight (closed loop).
    #[arg(long, default_value_t = 256)]
    concurrency: u64,
}

#[derive(Debug, Args)]
struct MaxRateArgs {
    #[command(flatten)]
    common: Common,
    /// Traffic per probe, in seconds.
    #[arg(long, default_value_t = 15)]
    duration_s: u64,
    #[arg(long, value_delimiter = ',', default_value = "sync,async")]
    durability: Vec<Durability>,
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    partitions: Vec<usize>,
    #[arg(long, default_value_t = 10_000)]
    cards: u64,
    /// The latency bound: a rate passes when its p99 is at most this.
    #[arg(long, default_value_t = 2_000)]
    p99_max_us: u64,
    /// The first rate tried; doubled while it passes, halved while it fails.
    #[arg(long, default_value_t = 4_000)]
    start_rate: u64,
    /// Bisection probes after the first pass and fail bracket the answer.
    #[arg(long, default_value_t = 4)]
    bisections: u32,
}

#[derive(Debug, Args)]
struct RecoveryArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 2)]
    partitions: usize,
    #[arg(long, default_value_t = 10_000)]
    cards: u64,
    /// Messages sent before the restart (about one journal event each).
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Requests in flight while the journal is filled.
    #[arg(long, default_value_t = 256)]
    concurrency: u64,
}

#[derive(Debug, Args)]
struct MemoryArgs {
    /// Cards issued, two per profile as in the load population.
    #[arg(long, default_value_t = 1_000_000)]
    cards: u64,
    /// Authorisations approved on one card afterwards, in a partition of their own (0: none).
    #[arg(long, default_value_t = 1_000_000)]
    transactions: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Durability {
    Sync,
    Async,
}

impl Durability {
    fn as_str(self) -> &'static str {
        match self {
            Durability::Sync => "sync",
            Durability::Async => "async",
        }
    }
}

/// One configuration of the server and the population.
#[derive(Debug, Clone, Copy)]
struct Cell {
    durability: Durability,
    partitions: usize,
    cards: u64,
}

/// How the generator paces its requests.
#[derive(Debug, Clone, Copy)]
enum Pacing {
    Closed { concurrency: u64 },
    Open { rate_per_s: u64 },
}

impl Pacing {
    fn flags(self) -> [String; 2] {
        match self {
            Pacing::Closed { concurrency } => ["--concurrency".into(), concurrency.to_string()],
            Pacing::Open { rate_per_s } => ["--rate".into(), rate_per_s.to_string()],
        }
    }

    fn label(self) -> String {
        match self {
            Pacing::Closed { concurrency } => format!("c{concurrency}"),
            Pacing::Open { rate_per_s } => format!("r{rate_per_s}"),
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Matrix(args) => matrix(&args),
        Cmd::MaxRate(args) => max_rate(&args),
        Cmd::Recovery(args) => recovery(&args),
        Cmd::Memory(args) => {
            memory::run(args.cards)?;
            memory::run_transactions(args.transactions)
        }
        Cmd::Soak(args) => soak::run(&args),
    }
}

fn cells(durability: &[Durability], partitions: &[usize], cards: &[u64]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &cards in cards {
        for &durability in durability {
            for &partitions in partitions {
                cells.push(Cell {
                    durability,
                    partitions,
                    cards,
                });
            }
        }
    }
    cells
}

fn matrix(args: &MatrixArgs) -> Result<()> {
    let c = &args.common;
    fs::create_dir_all(&c.out).with_context(|| format!("create {}", c.out.display()))?;
    let pacing = Pacing::Closed {
        concurrency: args.concurrency,
    };
    let mut rows = Vec::new();
    for cell in cells(&args.durability, &args.partitions, &args.cards) {
        let run = run_cell(
            c,
            &RunSpec::new(cell, pacing, Traffic::Seconds(args.duration_s)),
        )?;
        eprintln!("{}", row_of(&run));
        rows.push(run);
    }
    write_table(&c.out.join("matrix.md"), &rows)
}

/// What a run sends: for a time, or a number of messages.
#[derive(Debug, Clone, Copy)]
enum Traffic {
    Seconds(u64),
    Messages(u64),
}

/// What one run is: the server's cell, the generator's pacing and traffic, and flags added
/// to either command line.
#[derive(Debug, Clone)]
struct RunSpec {
    cell: Cell,
    pacing: Pacing,
    traffic: Traffic,
    extra_serve: Vec<String>,
    extra_load: Vec<String>,
}

impl RunSpec {
    fn new(cell: Cell, pacing: Pacing, traffic: Traffic) -> RunSpec {
        RunSpec {
            cell,
            pacing,
            traffic,
            extra_serve: Vec::new(),
            extra_load: Vec::new(),
        }
    }

    /// `sync-p1-10000-r8000`: the run's folder under `OUT/runs/`.
    fn name(&self) -> String {
        let cell = self.cell;
        format!(
            "{}-p{}-{}-{}",
            cell.durability.as_str(),
            cell.partitions,
            cell.cards,
            self.pacing.label()
        )
    }
}

/// Everything one run produced, before it is summarised.
struct RunOutput {
    name: String,
    dir: PathBuf,
    status: ExitStatus,
    /// The driver's samples, every [`SAMPLE_INTERVAL`] while the generator ran.
    samples: Vec<Sample>,
    wall_s: f64,
    /// The generator's `report.json`.
    report: Value,
    /// The server's `/metrics` just before it was stopped.
    metrics: String,
    rss_empty_kib: u64,
    server_start_s: f64,
    serve_args: Vec<String>,
    loadavg_before: f64,
}

/// Starts a fresh server for `spec`, runs the generator against it, stops it, and returns
/// everything measured, also appended to `results.jsonl`.
fn run_cell(c: &Common, spec: &RunSpec) -> Result<Value> {
    let run = run_once(c, spec)?;
    let result = summary_of(&run, spec);
    append_line(&c.out.join("results.jsonl"), &result)?;
    Ok(result)
}

/// Starts a fresh server for `spec`, runs the generator against it and stops it.
fn run_once(c: &Common, spec: &RunSpec) -> Result<RunOutput> {
    let name = spec.name();
    let dir = c.out.join("runs").join(&name);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    fs::create_dir_all(&dir)?;
    let loadavg_before = loadavg();
    let mut serve_args = c.serve_args.clone();
    serve_args.extend_from_slice(&spec.extra_serve);
    let mut server = Server::start(&c.cardcore, &dir, spec.cell, &serve_args)?;
    let measured = drive(c, &server, spec, &dir);
    let metrics = server.metrics().unwrap_or_default();
    fs::write(dir.join("metrics.txt"), &metrics)?;
    server.stop()?;
    let (status, samples, wall_s) = measured?;
    let report = read_report(&dir)?;
    Ok(RunOutput {
        name,
        dir,
        status,
        samples,
        wall_s,
        report,
        metrics,
        rss_empty_kib: server.rss_empty_kib,
        server_start_s: server.start_s,
        serve_args,
        loadavg_before,
    })
}

/// The run's figures: the generator's report, plus what the samples and `/metrics` say.
fn summary_of(run: &RunOutput, spec: &RunSpec) -> Value {
    let mut result = summarise(&run.report, &run.samples, &run.metrics, run.rss_empty_kib);
    let cell = spec.cell;
    let extra = json!({
        "name": run.name, "durability": cell.durability.as_str(), "partitions": cell.partitions,
        "cards": cell.cards, "pacing": spec.pacing.label(), "load_exit_ok": run.status.success(),
        "wall_s": run.wall_s, "loadavg_before": run.loadavg_before, "loadavg_after": loadavg(),
        "serve_args": run.serve_args, "server_start_s": run.server_start_s,
    });
    merge(&mut result, extra);
    result
}

/// Runs `cardcore sim load` against `server` and samples both processes until it exits.
fn drive(
    c: &Common,
    server: &Server,
    spec: &RunSpec,
    dir: &Path,
) -> Result<(ExitStatus, Vec<Sample>, f64)> {
    let mut cmd = Command::new(&c.cardcore);
    cmd.args(["sim", "load", "--target"])
        .arg(format!("tcp://{}", server.iso_addr))
        .arg("--admin")
        .arg(format!("http://{}", server.http_addr))
        .args(["--cards", &spec.cell.cards.to_string()])
        .args(["--seed", &c.seed.to_string()])
        .args(["--connections", &c.connections.to_string()])
        .args(spec.pacing.flags())
        .arg("--report-dir")
        .arg(dir.join("report"))
        .args(&spec.extra_load);
    match spec.traffic {
        Traffic::Seconds(s) => cmd.args(["--duration", &format!("{s}s")]),
        Traffic::Messages(n) => cmd.args(["--messages", &n.to_string()]),
    };
    fs::write(dir.join("load.cmd"), format!("{cmd:?}\n"))?;
    cmd.stdout(File::create(dir.join("load.out"))?)
        .stderr(File::create(dir.join("load.err"))?);
    let started = Instant::now();
    let mut child = cmd.spawn().context("start cardcore sim load")?;
    let mut samples = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        samples.push(server.sample(started, child.id()));
        thread::sleep(SAMPLE_INTERVAL);
    };
    Ok((status, samples, started.elapsed().as_secs_f64()))
}

/// What one sampling tick saw.
#[derive(Debug, Clone, Default)]
struct Sample {
    t_s: f64,
    /// ISO 8583 messages the server has answered (every MTI and code).
    messages: f64,
    /// The journal's counters: events, batches (one flush each) and seconds spent flushing.
    journal_events: f64,
    journal_batches: f64,
    journal_flush_s: f64,
    server_cpu_s: f64,
    load_cpu_s: f64,
    server_rss_kib: u64,
    /// The server's threads by id: role (`partition-0` and `partition-1` are both
    /// `partition`) and CPU time in seconds: where a message's cost goes.
    server_threads: BTreeMap<u32, (String, f64)>,
}

/// A `cardcore serve` process on loopback ports of its own.
struct Server {
    child: Child,
    iso_addr: String,
    http_addr: String,
    rss_empty_kib: u64,
    start_s: f64,
    ticks_per_s: f64,
}

impl Server {
    fn start(binary: &Path, dir: &Path, cell: Cell, extra: &[String]) -> Result<Server> {
        let data = dir.join("data");
        Server::start_on(binary, dir, &data, cell, extra, "serve")
    }

    /// Starts `cardcore serve` on `data` and waits for `/health`; `log` names its log files.
    fn start_on(
        binary: &Path,
        dir: &Path,
        data: &Path,
        cell: Cell,
        extra: &[String],
        log: &str,
    ) -> Result<Server> {
        let (iso_addr, http_addr) = (free_addr()?, free_addr()?);
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--sandbox", "--log-filter", "info", "--data-dir"])
            .arg(data)
            .args(["--iso-listen", &iso_addr, "--http-listen", &http_addr])
            .args(["--partitions", &cell.partitions.to_string()])
            .args(["--durability", cell.durability.as_str()])
            .args(extra);
        fs::write(dir.join(format!("{log}.cmd")), format!("{cmd:?}\n"))?;
        cmd.stdin(Stdio::null())
            .stdout(File::create(dir.join(format!("{log}.out")))?)
            .stderr(File::create(dir.join(format!("{log}.err")))?);
        let started = Instant::now();
        let child = cmd.spawn().context("start cardcore serve")?;
        let mut server = Server {
            child,
            iso_addr,
            http_addr,
            rss_empty_kib: 0,
            start_s: 0.0,
            ticks_per_s: clock_ticks_per_s(),
        };
        server.wait_healthy(started)?;
        server.start_s = started.elapsed().as_secs_f64();
        server.rss_empty_kib = rss_kib(server.child.id()).unwrap_or(0);
        Ok(server)
    }

    fn wait_healthy(&mut self, started: Instant) -> Result<()> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("cardcore serve exited before it was healthy: {status}");
            }
            if let Ok((200, _)) = http_get(&self.http_addr, "/health") {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                self.child.kill().ok();
                bail!("cardcore serve not healthy after {START_TIMEOUT:?}");
            }
            thread::sleep(START_POLL_INTERVAL);
        }
    }

    fn metrics(&self) -> Result<String> {
        match http_get(&self.http_addr, "/metrics")? {
            (200, body) => Ok(body),
            (status, _) => bail!("/metrics answered {status}"),
        }
    }

    fn sample(&self, started: Instant, load_pid: u32) -> Sample {
        let metrics = self.metrics().unwrap_or_default();
        let get = |name: &str| metric(&metrics, name).unwrap_or(f64::NAN);
        Sample {
            t_s: started.elapsed().as_secs_f64(),
            messages: metric_sum(&metrics, "cardcore_iso_messages_total{"),
            journal_events: get("cardcore_journal_events_total"),
            journal_batches: get("cardcore_journal_batches_total"),
            journal_flush_s: get("cardcore_journal_flush_latency_seconds_sum"),
            server_cpu_s: cpu_ticks(self.child.id()).unwrap_or(0) as f64 / self.ticks_per_s,
            load_cpu_s: cpu_ticks(load_pid).unwrap_or(0) as f64 / self.ticks_per_s,
            server_rss_kib: rss_kib(self.child.id()).unwrap_or(0),
            server_threads: threads_cpu_s(self.child.id(), self.ticks_per_s),
        }
    }

    /// SIGTERM (the server flushes its journal and exits), then a kill after
    /// [`STOP_TIMEOUT`].
    fn stop(&mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("run kill")?;
        let asked = Instant::now();
        while asked.elapsed() < STOP_TIMEOUT {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            thread::sleep(START_POLL_INTERVAL);
        }
        self.child.kill().ok();
        self.child.wait()?;
        bail!("cardcore serve did not stop within {STOP_TIMEOUT:?}; killed")
    }
}

/// A loopback address nobody listens on now.
fn free_addr() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.to_string())
}

/// A plain HTTP/1.1 GET with `Connection: close`: status and body (no chunked bodies).
fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.take(HTTP_BODY_BYTES_MAX).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("an HTTP answer without a header end")?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!("{path}: chunked answers are not read");
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("an HTTP answer without a status")?;
    Ok((status, body.to_owned()))
}

/// The sum of every Prometheus sample whose line starts with `prefix`.
fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The value of the unlabelled sample `name`.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// User + system CPU time of a process, in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> Option<u64> {
    ticks_of_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime of a `/proc/.../stat` line.
fn ticks_of_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time and role of every thread of `pid`, by thread id. A role is the thread name
/// without a trailing `-N` or digits.
fn threads_cpu_s(pid: u32, ticks_per_s: f64) -> BTreeMap<u32, (String, f64)> {
    let mut threads = BTreeMap::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let Some(ticks) = ticks_of_stat(&stat) else {
            continue;
        };
        let name = fs::read_to_string(path.join("comm")).unwrap_or_default();
        threads.insert(tid, (role_of(name.trim()), ticks as f64 / ticks_per_s));
    }
    threads
}

/// `partition-3` → `partition`, `sled-io-12` → `sled-io`, `cardcore` → `cardcore`.
fn role_of(thread_name: &str) -> String {
    let trimmed = thread_name.trim_end_matches(|c: char| c.is_ascii_digit());
    trimmed.strip_suffix('-').unwrap_or(trimmed).to_owned()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The 1-minute load average.
fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn read_report(dir: &Path) -> Result<Value> {
    let path = dir.join("report").join("report.json");
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "read {} (see {})",
            path.display(),
            dir.join("load.err").display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))
}

/// The traffic window: from the last sample before the first answer to the first sample
/// that saw the final count, as a slice of the samples. CPU time and messages over it give
/// the cost per message.
fn traffic_window(samples: &[Sample]) -> Option<&[Sample]> {
    let first = samples.iter().position(|s| s.messages > 0.0)?;
    let total = samples.iter().map(|s| s.messages).fold(0.0, f64::max);
    let last = samples.iter().position(|s| s.messages >= total)?;
    Some(&samples[first.saturating_sub(1)..=last])
}

/// The run's figures: the generator's report, plus what the samples and `/metrics` say.
fn summarise(report: &Value, samples: &[Sample], metrics: &str, rss_empty_kib: u64) -> Value {
    let mut out = json!({
        "messages": report["messages"], "answered": report["answered"],
        "unanswered": report["unanswered"], "throughput_per_s": report["throughput_per_s"],
        "latency_us": report["latency_us"], "send_lag_us": report["send_lag_us"],
        "reconciliation_ok": report["reconciliation"]["ok"],
        "invariants_ok": report["invariants_ok"], "clock_jumps": report["ledger"]["clock_jumps"],
        "server_rss_empty_kib": rss_empty_kib,
    });
    if let Some(window) = traffic_window(samples) {
        let (a, b) = (&window[0], &window[window.len() - 1]);
        let n = (b.messages - a.messages).max(1.0);
        merge(
            &mut out,
            json!({
                "setup_s": a.t_s, "window_s": b.t_s - a.t_s, "window_messages": n,
                "server_cpu_us_per_msg": (b.server_cpu_s - a.server_cpu_s) * 1e6 / n,
                "load_cpu_us_per_msg": (b.load_cpu_s - a.load_cpu_s) * 1e6 / n,
                "server_rss_before_traffic_kib": a.server_rss_kib,
                "server_rss_after_traffic_kib": b.server_rss_kib,
                "server_cpu_us_per_msg_by_thread": per_thread(window, n),
            }),
        );
        merge(&mut out, window_journal(a, b, n));
    }
    merge(&mut out, journal_figures(metrics));
    out
}

/// CPU µs per message of each thread role over the window. Threads come and go (tokio's
/// blocking pool): each thread counts from its time at the window's start (0 if it started
/// later) to the last time a sample in the window saw it.
fn per_thread(window: &[Sample], messages: f64) -> Value {
    let Some(first) = window.first() else {
        return Value::Null;
    };
    let mut last_seen: BTreeMap<u32, (String, f64)> = BTreeMap::new();
    for sample in window {
        last_seen.extend(sample.server_threads.clone());
    }
    let mut by_role: BTreeMap<String, f64> = BTreeMap::new();
    for (tid, (role, end_s)) in last_seen {
        let start_s = first.server_threads.get(&tid).map_or(0.0, |(_, s)| *s);
        *by_role.entry(role).or_insert(0.0) += end_s - start_s;
    }
    let out = by_role
        .into_iter()
        .map(|(role, s)| (role, json!((s * 1e6 / messages * 10.0).round() / 10.0)))
        .collect();
    Value::Object(out)
}

/// The journal over the traffic window (setup writes one event per management call, which
/// would hide the traffic's batching).
fn window_journal(a: &Sample, b: &Sample, messages: f64) -> Value {
    let events = b.journal_events - a.journal_events;
    let batches = b.journal_batches - a.journal_batches;
    json!({
        "window_events_per_msg": events / messages,
        "window_events_per_batch": events / batches,
        "window_flush_ms_mean": (b.journal_flush_s - a.journal_flush_s) * 1e3 / batches,
    })
}

/// The journal over the server's life (setup included), and the ISO path's own histograms.
fn journal_figures(metrics: &str) -> Value {
    let get = |name: &str| metric(metrics, name).unwrap_or(f64::NAN);
    let batches = get("cardcore_journal_batches_total");
    let events = get("cardcore_journal_events_total");
    let flush_s = get("cardcore_journal_flush_latency_seconds_sum");
    let decision_s = get("cardcore_decision_latency_seconds_sum");
    let decisions = get("cardcore_decision_latency_seconds_count");
    let wait_s = get("cardcore_durability_wait_seconds_sum");
    let waits = get("cardcore_durability_wait_seconds_count");
    json!({
        "journal_events": events, "journal_batches": batches,
        "events_per_batch": events / batches, "flush_ms_mean": flush_s * 1e3 / batches,
        "flush_ms_max": get("cardcore_journal_flush_latency_max_seconds") * 1e3,
        "decision_us_mean": decision_s * 1e6 / decisions,
        "durability_wait_us_mean": wait_s * 1e6 / waits,
    })
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn append_line(path: &Path, value: &Value) -> Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(file, "{value}")?;
    Ok(())
}

const TABLE_HEAD: &str = "| run | msgs/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/msg | \
io / partition / journal / sled µs | generator CPU µs/msg | events/batch | setup s | \
RSS before traffic MiB | load avg | ok |\n\
|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";

fn row_of(r: &Value) -> String {
    let f = |v: &Value, digits: usize| match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "-".to_owned(),
    };
    let lat = &r["latency_us"];
    let ok = r["load_exit_ok"].as_bool() == Some(true) && r["unanswered"].as_u64() == Some(0);
    let rss_mib = r["server_rss_before_traffic_kib"]
        .as_f64()
        .map(|k| k / 1024.0);
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}–{} | {} |",
        r["name"].as_str().unwrap_or("?"),
        f(&r["throughput_per_s"], 0),
        lat["p50"],
        lat["p99"],
        lat["p999"],
        f(&r["server_cpu_us_per_msg"], 1),
        thread_split(&r["server_cpu_us_per_msg_by_thread"]),
        f(&r["load_cpu_us_per_msg"], 1),
        f(&r["window_events_per_batch"], 1),
        f(&r["setup_s"], 1),
        rss_mib.map_or("-".to_owned(), |m| format!("{m:.0}")),
        f(&r["loadavg_before"], 1),
        f(&r["loadavg_after"], 1),
        if ok { "yes" } else { "NO" },
    )
}

/// The CPU µs per message of the four thread roles that do a message's work.
fn thread_split(by_thread: &Value) -> String {
    let roles = ["cardcore-io", "partition", "journal-writer", "sled-io"];
    let parts: Vec<String> = roles
        .iter()
        .map(|role| match by_thread[*role].as_f64() {
            Some(us) => format!("{us:.1}"),
            None => "-".to_owned(),
        })
        .collect();
    parts.join(" / ")
}

fn write_table(path: &Path, rows: &[Value]) -> Result<()> {
    let mut text = String::from(TABLE_HEAD);
    for row in rows {
        text.push_str(&row_of(row));
        text.push('\n');
    }
    fs::write(path, &text).with_context(|| format!("write {}", path.display()))?;
    print!("{text}");
    Ok(())
}

fn max_rate(args: &MaxRateArgs) -> Result<()> {
    let c = &args.common;
    fs::create_dir_all(&c.out)?;
    let mut lines = vec![format!(
        "| cell | highest rate with p99 ≤ {} µs | its p99 µs | lowest failing rate | its p99 µs |",
        args.p99_max_us
    )];
    lines.push("|---|---|---|---|---|".to_owned());
    let cell_list = cells(&args.durability, &args.partitions, &[args.cards]);
    for cell in cell_list {
        let (pass, fail) = search_rate(args, cell)?;
        let show = |run: &Option<Value>| match run {
            Some(r) => (
                r["config_rate"].to_string(),
                r["latency_us"]["p99"].to_string(),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let ((pr, pp), (fr, fp)) = (show(&pass), show(&fail));
        let name = format!(
            "{}-p{}-{}",
            cell.durability.as_str(),
            cell.partitions,
            cell.cards
        );
        lines.push(format!("| {name} | {pr} | {pp} | {fr} | {fp} |"));
        eprintln!("{}", lines.last().map_or("", String::as_str));
    }
    let text = lines.join("\n") + "\n";
    fs::write(c.out.join("max-rate.md"), &text)?;
    print!("{text}");
    Ok(())
}

/// Doubles (or halves) the rate until a pass and a fail bracket the answer, then bisects.
fn search_rate(args: &MaxRateArgs, cell: Cell) -> Result<(Option<Value>, Option<Value>)> {
    let (mut pass, mut fail): (Option<Value>, Option<Value>) = (None, None);
    let mut rate = args.start_rate.max(RATE_FLOOR_PER_S);
    loop {
        let run = probe(args, cell, rate)?;
        let passed = run["passed"].as_bool() == Some(true);
        if passed {
            pass = Some(run);
            if fail.is_some() {
                break;
            }
            rate *= 2;
        } else {
            fail = Some(run);
            if pass.is_some() || rate / 2 < RATE_FLOOR_PER_S {
                break;
            }
            rate /= 2;
        }
    }
    for _ in 0..args.bisections {
        let (Some(lo), Some(hi)) = (rate_of(&pass), rate_of(&fail)) else {
            break;
        };
        if hi - lo <= hi * RATE_BRACKET_PERCENT_MIN / 100 {
            break;
        }
        let run = probe(args, cell, (lo + hi) / 2)?;
        if run["passed"].as_bool() == Some(true) {
            pass = Some(run);
        } else {
            fail = Some(run);
        }
    }
    Ok((pass, fail))
}

fn rate_of(run: &Option<Value>) -> Option<u64> {
    run.as_ref()?["config_rate"].as_u64()
}

/// One open-loop run at `rate_per_s`; it passes when everything was answered, the ledger
/// reconciled, the rate was kept and the p99 is within the bound.
fn probe(args: &MaxRateArgs, cell: Cell, rate_per_s: u64) -> Result<Value> {
    let c = &args.common;
    let pacing = Pacing::Open { rate_per_s };
    let spec = RunSpec::new(cell, pacing, Traffic::Seconds(args.duration_s));
    let mut run = run_cell(c, &spec)?;
    let kept = run["throughput_per_s"].as_f64().unwrap_or(0.0) * 100.0 / rate_per_s as f64;
    let p99 = run["latency_us"]["p99"].as_u64().unwrap_or(u64::MAX);
    let passed = run["load_exit_ok"].as_bool() == Some(true)
        && run["unanswered"].as_u64() == Some(0)
        && kept >= RATE_KEPT_PERCENT_MIN
        && p99 <= args.p99_max_us;
    merge(
        &mut run,
        json!({"config_rate": rate_per_s, "rate_kept_percent": kept, "passed": passed}),
    );
    eprintln!(
        "{} rate {rate_per_s}/s: p99 {p99} µs, kept {kept:.1}%, {}",
        run["name"].as_str().unwrap_or("?"),
        if passed { "pass" } else { "fail" }
    );
    append_line(&c.out.join("probes.jsonl"), &run)?;
    Ok(run)
}

/// Fills a journal (async durability, no snapshots, so every event stays in the journal),
/// stops the server cleanly, and times a restart on the same data directory until
/// `/health` answers; the restart's log says what was replayed.
fn recovery(args: &RecoveryArgs) -> Result<()> {
    let c = &args.common;
    fs::create_dir_all(&c.out)?;
    let cell = Cell {
        durability: Durability::Async,
        partitions: args.partitions,
        cards: args.cards,
    };
    let pacing = Pacing::Closed {
        concurrency: args.concurrency,
    };
    let no_snapshots = ["--snapshot-every-records".to_owned(), "0".to_owned()];
    let mut spec = RunSpec::new(cell, pacing, Traffic::Messages(args.messages));
    spec.extra_serve = no_snapshots.to_vec();
    let fill = run_cell(c, &spec)?;
    let name = fill["name"]
        .as_str()
        .context("the fill run's name")?
        .to_owned();
    let dir = c.out.join("runs").join(&name);
    let mut serve_args = c.serve_args.clone();
    serve_args.extend_from_slice(&no_snapshots);
    let load_before = loadavg();
    let mut server = Server::start_on(
        &c.cardcore,
        &dir,
        &dir.join("data"),
        cell,
        &serve_args,
        "restart",
    )?;
    let metrics = server.metrics()?;
    server.stop()?;
    let events = fill["journal_events"].as_f64().unwrap_or(f64::NAN);
    let result = json!({
        "name": format!("{name}-restart"), "journal_events_written": events,
        "restart_to_healthy_s": server.start_s, "empty_start_s": fill["server_start_s"],
        "events_per_s": events / server.start_s, "rss_after_restart_kib": server.rss_empty_kib,
        "restart_journal_appended_seq": metric(&metrics, "cardcore_journal_appended_seq"),
        "loadavg_before": load_before, "loadavg_after": loadavg(),
    });
    append_line(&c.out.join("results.jsonl"), &result)?;
    let text = format!(
        "| journal events | restart to healthy | empty start | events/s | load avg |\n\
         |---|---|---|---|---|\n| {events} | {:.3} s | {} s | {:.0} | {load_before:.1} |\n",
        server.start_s,
        fill["server_start_s"],
        events / server.start_s
    );
    fs::write(c.out.join("recovery.md"), &text)?;
    print!("{text}");
    Ok(())
}

mod memory {
    //! What a card costs in memory: the growth of this process's resident set while one
    //! partition takes `cards` cards (two per profile; every profile with a EUR balance, half
    //! with a GBP one too; every card with a PIN verification value and a CVV2 value), plus
    //! the engine's card routes ([`CardOwners`]) filled the same way. Resident memory, not
    //! requested bytes: the allocator's overhead and hash-table slack count, as they do in a
    //! server. The headline is a card's own cost (record, usage counters, route), without
    //! the profile it shares with another card. And what a transaction costs: see
    //! [`run_transactions`].

    use std::hint::black_box;
    use std::time::Instant;

    use anyhow::{Context, Result};
    use cardcore_authz::engine::CardOwners;
    use cardcore_authz::fixture::{empty_partition, eur, Fixture, FIXTURE_START};
    use cardcore_authz::management::IssueCard;
    use cardcore_authz::Partition;
    use cardcore_core::pin::Pin;
    use cardcore_core::{
        CardStatus, CardType, Currency, Expiry, Money, Pan, PanFingerprint, ProfileId,
        ProfileStatus, TimeZone,
    };

    /// The opening balance of every profile, in minor units.
    const FUNDS_MINOR: i64 = 100_000;
    /// Transactions a partition reserves room for up front: the server's default
    /// (`txn_capacity`).
    const TXN_CAPACITY: usize = 1024;

    pub fn run(cards: u64) -> Result<()> {
        let profiles = cards.div_ceil(2);
        let started = Instant::now();
        // Filled before the first reading, so this list's own pages count in none of them.
        let none = (PanFingerprint(0), ProfileId(0));
        let mut issued = vec![none; usize::try_from(cards)?];
        let rss0 = rss()?;
        let mut p = empty_partition(1024);
        for profile in 1..=profiles {
            open_profile(&mut p, ProfileId(profile))?;
        }
        let rss1 = rss()?;
        for (card, slot) in (0..cards).zip(issued.iter_mut()) {
            let c = p.issue_card(issue(ProfileId(card / 2 + 1), card)?, FIXTURE_START)?;
            p.discard_pending();
            *slot = (c.fingerprint, c.profile);
        }
        let rss2 = rss()?;
        let mut routes = CardOwners::default();
        for &(fingerprint, profile) in &issued {
            routes.insert(fingerprint, profile);
        }
        let rss3 = rss()?;
        black_box((&p, &routes));
        let per = |from: u64, to: u64, n: u64| (to.saturating_sub(from) * 1024) as f64 / n as f64;
        println!(
            "memory: {cards} cards, {profiles} profiles ({:.2} s): resident set {rss0} KiB -> \
             {rss3} KiB\n  \
             per card, without its profile (card record, usage counters, route): {:.0} B\n  \
             per profile (profile, EUR balance, GBP on every second): {:.0} B\n  \
             per card in the partition (card record, usage counters): {:.0} B\n  \
             per card in the engine's route (PAN fingerprint to profile): {:.0} B\n  \
             per card, all of it (profiles shared by two cards): {:.0} B\n  \
             size_of::<Card>() = {} B",
            started.elapsed().as_secs_f64(),
            per(rss1, rss3, cards),
            per(rss0, rss1, profiles),
            per(rss1, rss2, cards),
            per(rss2, rss3, cards),
            per(rss0, rss3, cards),
            std::mem::size_of::<cardcore_authz::Card>(),
        );
        Ok(())
    }

    /// What the history of transactions costs: the growth of this process's resident set
    /// while a partition approves `transactions` authorisations of one card. The partition
    /// keeps every transaction's record, the answer and the transaction of every network
    /// message (for duplicates and follow-ups) and a place in the expiry queue; the hash
    /// tables double as they fill, as in a server (1,024 transactions reserved up front).
    pub fn run_transactions(transactions: u64) -> Result<()> {
        if transactions == 0 {
            return Ok(());
        }
        let funds = eur(i64::try_from(transactions)?.saturating_mul(100));
        let mut f = Fixture::new(funds, TXN_CAPACITY);
        let started = Instant::now();
        let rss0 = rss()?;
        let mut approved = 0u64;
        for _ in 0..transactions {
            let request = f.purchase(eur(1));
            let answer = f.partition.handle(&request, FIXTURE_START);
            approved += u64::from(answer.response_code.is_approved());
            black_box(f.partition.take_encoded());
        }
        let rss1 = rss()?;
        black_box(&f);
        println!(
            "memory: {transactions} authorisations on one card, {approved} approved ({:.2} s): \
             resident set {rss0} KiB -> {rss1} KiB\n  per transaction: {:.0} B\n  \
             size_of::<TxnRecord>() = {} B, size_of::<Answer>() = {} B, \
             size_of::<MessageKey>() = {} B",
            started.elapsed().as_secs_f64(),
            (rss1.saturating_sub(rss0) * 1024) as f64 / transactions as f64,
            std::mem::size_of::<cardcore_authz::TxnRecord>(),
            std::mem::size_of::<cardcore_authz::Answer>(),
            std::mem::size_of::<cardcore_authz::MessageKey>(),
        );
        Ok(())
    }

    fn rss() -> Result<u64> {
        super::rss_kib(std::process::id()).context("read /proc/self/status")
    }

    fn open_profile(p: &mut Partition, profile: ProfileId) -> Result<()> {
        p.create_profile(profile, ProfileStatus::Active, TimeZone::UTC, FIXTURE_START)?;
        p.top_up(
            profile,
            Money {
                amount_minor: FUNDS_MINOR,
                currency: Currency::EUR,
            },
        )?;
        if profile.0.is_multiple_of(2) {
            p.top_up(
                profile,
                Money {
                    amount_minor: FUNDS_MINOR,
                    currency: Currency::GBP,
                },
            )?;
        }
        p.discard_pending();
        Ok(())
    }

    fn issue(profile: ProfileId, card: u64) -> Result<IssueCard> {
        Ok(IssueCard {
            profile,
            pan: pan_of(card)?,
            pin: Some(Pin::parse("1234")?),
            cvv2: Some("123".to_owned()),
            expiry: Expiry::new(2030, 12)?,
            status: CardStatus::Active,
            currency: Currency::EUR,
            card_type: if card % 5 < 2 {
                CardType::Virtual
            } else {
                CardType::Physical
            },
            smart_conversion: true,
            locked: Vec::new(),
        })
    }

    /// `400000`, nine digits of `card`, and the Luhn check digit.
    pub fn pan_of(card: u64) -> Result<Pan> {
        let body = format!("400000{:09}", card % 1_000_000_000);
        let sum: u32 = body
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                match i % 2 {
                    0 if d * 2 > 9 => d * 2 - 9,
                    0 => d * 2,
                    _ => d,
                }
            })
            .sum();
        let check = (10 - sum % 10) % 10;
        Ok(Pan::parse(&format!("{body}{check}"))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# HELP x\n\
        cardcore_iso_messages_total{mti=\"0100\",code=\"00\"} 10\n\
        cardcore_iso_messages_total{mti=\"0220\",code=\"25\"} 5\n\
        cardcore_journal_events_total 42\n\
        cardcore_journal_events_total_other 7\n";

    #[test]
    fn metrics_are_read_by_exact_name_and_summed_by_prefix() {
        assert_eq!(metric_sum(METRICS, "cardcore_iso_messages_total{"), 15.0);
        assert_eq!(metric(METRICS, "cardcore_journal_events_total"), Some(42.0));
        assert_eq!(metric(METRICS, "cardcore_journal_batches_total"), None);
    }

    fn sample(t_s: f64, messages: f64, server_cpu_s: f64) -> Sample {
        Sample {
            t_s,
            messages,
            server_cpu_s,
            ..Sample::default()
        }
    }

    #[test]
    fn the_traffic_window_runs_from_before_the_first_answer_to_the_final_count() {
        let samples = [
            sample(0.0, 0.0, 0.0),
            sample(1.0, 0.0, 0.5),
            sample(2.0, 100.0, 1.0),
            sample(3.0, 300.0, 2.0),
            sample(4.0, 300.0, 2.1),
        ];
        let window = traffic_window(&samples).unwrap();
        let (a, b) = (&window[0], &window[window.len() - 1]);
        assert_eq!((a.t_s, b.t_s), (1.0, 3.0));
        assert_eq!(b.server_cpu_s - a.server_cpu_s, 1.5);
        assert_eq!(b.messages - a.messages, 300.0);
        assert!(traffic_window(&samples[..2]).is_none());
    }

    #[test]
    fn cells_cover_every_combination_cards_outermost() {
        let all = cells(&[Durability::Sync, Durability::Async], &[1, 2], &[10, 20]);
        assert_eq!(all.len(), 8);
        assert_eq!(all[0].cards, 10);
        assert_eq!(all[7].cards, 20);
        assert_eq!(all[2].durability, Durability::Async);
    }

    #[test]
    fn journal_batching_is_counted_over_the_window_only() {
        let mut a = sample(1.0, 0.0, 0.0);
        (a.journal_events, a.journal_batches, a.journal_flush_s) = (1000.0, 1000.0, 1.0);
        let mut b = sample(2.0, 100.0, 0.0);
        (b.journal_events, b.journal_batches, b.journal_flush_s) = (1200.0, 1010.0, 1.02);
        let w = window_journal(&a, &b, 100.0);
        assert_eq!(w["window_events_per_msg"], 2.0);
        assert_eq!(w["window_events_per_batch"], 20.0);
        assert!((w["window_flush_ms_mean"].as_f64().unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn generated_pans_pass_the_luhn_check_and_differ() {
        let a = memory::pan_of(0).unwrap();
        let b = memory::pan_of(999_999).unwrap();
        assert_ne!(a.expose_digits(), b.expose_digits());
        assert_eq!(a.expose_digits().len(), 16);
    }

    #[test]
    fn a_thread_that_ends_in_the_window_keeps_its_time_and_a_new_one_counts_from_zero() {
        let thread = |role: &str, cpu_s: f64| (role.to_owned(), cpu_s);
        let mut a = sample(0.0, 0.0, 0.0);
        a.server_threads = BTreeMap::from([(1, thread("io", 1.0)), (2, thread("io", 5.0))]);
        let mut m = sample(1.0, 50.0, 0.0);
        m.server_threads = BTreeMap::from([(1, thread("io", 1.5)), (2, thread("io", 5.25))]);
        let mut b = sample(2.0, 100.0, 0.0);
        b.server_threads = BTreeMap::from([(1, thread("io", 2.0)), (3, thread("part", 0.5))]);
        let by_role = per_thread(&[a, m, b], 100.0);
        // io: thread 1 ran 1.0 s, thread 2 ran 0.25 s before it ended; part: 0.5 s.
        assert_eq!(by_role["io"], 12_500.0);
        assert_eq!(by_role["part"], 5_000.0);
    }

    #[test]
    fn threads_are_grouped_by_role() {
        assert_eq!(role_of("partition-12"), "partition");
        assert_eq!(role_of("sled-io-3"), "sled-io");
        assert_eq!(role_of("journal-writer"), "journal-writer");
        assert_eq!(role_of("cardcore"), "cardcore");
    }

    #[test]
    fn the_cpu_time_of_this_process_is_readable() {
        let ticks = cpu_ticks(std::process::id());
        assert!(ticks.is_some());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
