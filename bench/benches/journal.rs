//! Journal benchmarks: durable appends with group commit, the raw sled anchor they are
//! measured against, append latency, and recovery (replay) speed. All on a temp directory
//! on the machine's real disk: fsync is the cost being measured.
//!
//! Run: `cargo bench -p cardcore-bench --bench journal`

use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cardcore_ledger::journal::{Durability, Journal, JournalConfig, MetricsSnapshot, Seq};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Events per measured iteration of the throughput benches.
const EVENTS_PER_ITER: u64 = 20_000;
/// A typical event: an outcome with its money and usage deltas encodes to about this.
const PAYLOAD_BYTES: usize = 64;
/// Events in the journal the recovery bench replays.
const REPLAY_EVENTS: u64 = 1_000_000;
/// Payload of the replayed events: small, so the bench measures per-record cost.
const REPLAY_PAYLOAD_BYTES: usize = 16;

fn open(dir: &Path, durability: Durability) -> Journal {
    let mut config = JournalConfig::new(dir);
    config.durability = durability;
    Journal::recover(config).unwrap().start().unwrap()
}

fn print_batching(label: &str, before: &MetricsSnapshot, after: &MetricsSnapshot) {
    let batches = after.batches_written - before.batches_written;
    let events = after.events_written - before.events_written;
    let flushes = after.flushes - before.flushes;
    let flush_us = after.flush_latency_us_sum - before.flush_latency_us_sum;
    if batches > 0 && flushes > 0 {
        eprintln!(
            "{label}: {events} events in {batches} batches ({} per batch), {flushes} flushes, \
             mean flush {} us, max flush {} us",
            events / batches,
            flush_us / flushes,
            after.flush_latency_us_max
        );
    }
}

/// Budget: at least 80k events/s durable in sync mode (one producer and two), i.e. the
/// throughput a partition sees when every approval waits for its batch's fsync.
fn sync_durable_throughput(c: &mut Criterion) {
    let payload = vec![0xA5_u8; PAYLOAD_BYTES];
    let mut group = c.benchmark_group("journal_sync_durable");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(EVENTS_PER_ITER));
    for producers in [1_u64, 2] {
        // A fresh journal per case, so neither inherits the other's tree size.
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(open(dir.path(), Durability::Sync));
        let before = journal.metrics();
        group.bench_with_input(
            BenchmarkId::new("producers", producers),
            &producers,
            |b, &n| b.iter(|| append_until_durable(&journal, n, &payload)),
        );
        print_batching(
            &format!("sync, {producers} producer(s)"),
            &before,
            &journal.metrics(),
        );
    }
    group.finish();
}

fn append_until_durable(journal: &Arc<Journal>, producers: u64, payload: &[u8]) {
    let per_producer = EVENTS_PER_ITER / producers;
    let last = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..producers)
            .map(|_| {
                scope.spawn(|| {
                    let mut last: Seq = 0;
                    for _ in 0..per_producer {
                        last = last.max(journal.append(black_box(payload)).unwrap());
                    }
                    last
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    });
    journal.wait_durable(last).unwrap();
}

/// The anchors: sled alone with the journal's sled settings, one `flush` per batch of
/// records written either as one `apply_batch` (`sled_raw_batch_flush`) or as plain
/// inserts, as the journal writes them (`sled_raw_insert_flush`). What group commit should
/// approach; no budget of their own.
fn raw_sled_anchor(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(64 << 20)
        .flush_every_ms(None)
        .mode(sled::Mode::HighThroughput)
        .open()
        .unwrap();
    let tree = db.open_tree("journal").unwrap();
    let value = vec![0xA5_u8; PAYLOAD_BYTES + 5];
    let mut next_key: u64 = 0;
    for as_batch in [true, false] {
        let name = if as_batch {
            "sled_raw_batch_flush"
        } else {
            "sled_raw_insert_flush"
        };
        let mut group = c.benchmark_group(name);
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(8));
        for batch_records in [1_u64, 64, 256, 1024] {
            group.throughput(Throughput::Elements(batch_records));
            group.bench_with_input(
                BenchmarkId::new("records_per_batch", batch_records),
                &batch_records,
                |b, &n| {
                    b.iter(|| {
                        let keys = (0..n).map(|_| {
                            next_key += 1;
                            next_key.to_be_bytes()
                        });
                        if as_batch {
                            let mut batch = sled::Batch::default();
                            keys.for_each(|key| batch.insert(&key[..], value.as_slice()));
                            tree.apply_batch(batch).unwrap();
                        } else {
                            for key in keys {
                                tree.insert(&key[..], value.as_slice()).unwrap();
                            }
                        }
                        tree.flush().unwrap();
                    })
                },
            );
        }
        group.finish();
    }
}

/// Budget: `append` (seq, CRC, enqueue) under 2 us; a lone event durable within one flush
/// (about the disk's fsync time) when the journal is idle.
fn append_latency(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path(), Durability::Sync);
    let payload = vec![0xA5_u8; PAYLOAD_BYTES];
    let mut group = c.benchmark_group("journal_append_latency");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("enqueue", |b| {
        b.iter_custom(|iters| {
            // Time only the appends; let the writer drain outside the measurement so the
            // queue never fills and the figure is the producer's own cost.
            let mut spent = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let chunk = left.min(1_000);
                let started = Instant::now();
                let mut last = 0;
                for _ in 0..chunk {
                    last = journal.append(black_box(&payload)).unwrap();
                }
                spent += started.elapsed();
                journal.wait_durable(last).unwrap();
                left -= chunk;
            }
            spent
        })
    });
    let before = journal.metrics();
    group.bench_function("lone_event_until_durable", |b| {
        b.iter(|| {
            let seq = journal.append(black_box(&payload)).unwrap();
            journal.wait_durable(seq).unwrap();
        })
    });
    print_batching("lone events", &before, &journal.metrics());
    group.finish();
}

/// A journal of `REPLAY_EVENTS` small events, written once per bench process.
fn replay_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let journal = open(dir.path(), Durability::Async { max_loss_ms: 100 });
        let payload = vec![0x5A_u8; REPLAY_PAYLOAD_BYTES];
        for _ in 0..REPLAY_EVENTS {
            journal.append(&payload).unwrap();
        }
        journal.shutdown().unwrap();
        eprintln!(
            "replay setup: {REPLAY_EVENTS} events written in {:?}",
            started.elapsed()
        );
        dir
    })
    .path()
}

/// Budget: at least 500k events/s replayed (open, cut-tail check, read and check every
/// record in order), so a million-event tail recovers in about 2 s.
fn recovery_replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_recovery");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(REPLAY_EVENTS));
    group.bench_function("replay_1M_16B", |b| {
        // Written here, not above: a filtered-out run skips the setup too.
        let dir = replay_dir();
        b.iter(|| {
            let mut recovery = Journal::recover(JournalConfig::new(dir)).unwrap();
            let mut bytes = 0_usize;
            let mut count = 0_u64;
            for record in recovery.tail() {
                bytes += black_box(record.unwrap().payload()).len();
                count += 1;
            }
            assert_eq!(count, REPLAY_EVENTS);
            assert_eq!(bytes, REPLAY_EVENTS as usize * REPLAY_PAYLOAD_BYTES);
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    sync_durable_throughput,
    raw_sled_anchor,
    append_latency,
    recovery_replay
);
criterion_main!(benches);
