//! The disk's floor under `sync` durability: how long one small append plus `fdatasync`
//! takes on the file system that holds a data directory, as a distribution.
//!
//! In `sync` mode an answer waits for the flush of the journal batch that holds its events,
//! so no end-to-end p99 can be lower than this p99 at the same rate. Run it on the data
//! directory's file system, while the machine is as busy as during the load run it anchors:
//!
//! ```text
//! cargo build --release -p cardcore-bench
//! target/release/fsync_latency --dir /path/on/the/data/disk --count 5000 --pause-us 500
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

/// The most appends one run makes: the latencies are kept in memory to sort.
const COUNT_MAX: usize = 10_000_000;

#[derive(Parser, Debug)]
#[command(about = "Latency of a small append plus fdatasync, as p50/p90/p99/p99.9/max")]
struct Args {
    /// A directory on the file system to measure (a scratch file is created and removed).
    #[arg(long)]
    dir: PathBuf,
    /// Appends, each followed by its own fdatasync.
    #[arg(long, default_value_t = 5_000)]
    count: usize,
    /// Bytes per append (a journal record of a few decisions is a few hundred bytes).
    #[arg(long, default_value_t = 300)]
    bytes: usize,
    /// Pause between appends, in microseconds: a journal under light load flushes now and
    /// then, not back to back.
    #[arg(long, default_value_t = 500)]
    pause_us: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        (1..=COUNT_MAX).contains(&args.count),
        "--count must be between 1 and {COUNT_MAX}"
    );
    let path = args
        .dir
        .join(format!("fsync-latency-{}.tmp", std::process::id()));
    let result = measure(&args, &path);
    // The scratch file goes whatever happened.
    let _ = std::fs::remove_file(&path);
    let mut latencies = result?;
    latencies.sort_unstable();
    print_summary(&args, &latencies);
    Ok(())
}

fn measure(args: &Args, path: &std::path::Path) -> anyhow::Result<Vec<Duration>> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let record = vec![0xA5_u8; args.bytes];
    let pause = Duration::from_micros(args.pause_us);
    let mut latencies = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        let started = Instant::now();
        file.write_all(&record).context("append failed")?;
        file.sync_data().context("fdatasync failed")?;
        latencies.push(started.elapsed());
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    Ok(latencies)
}

fn print_summary(args: &Args, sorted: &[Duration]) {
    let at = |q: f64| {
        let index = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
        sorted[index].as_micros()
    };
    println!(
        "{} appends of {} B + fdatasync in {} (pause {} us): p50 {} us, p90 {} us, \
         p99 {} us, p99.9 {} us, max {} us",
        sorted.len(),
        args.bytes,
        args.dir.display(),
        args.pause_us,
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        sorted[sorted.len() - 1].as_micros()
    );
}
