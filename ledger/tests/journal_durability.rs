//! What survives a crash in each durability mode, checked against the store's durable image
//! (exactly what a power cut would leave).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cardcore_ledger::journal::{
    Durability, EventStore, Journal, JournalConfig, MemoryStore, Recovery, Seq,
    JOURNAL_UNFLUSHED_MAX,
};

fn payload(seq: Seq) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

fn start(dir: &std::path::Path, durability: Durability, store: &MemoryStore) -> Journal {
    let mut config = JournalConfig::new(dir);
    config.durability = durability;
    Recovery::open(config, store.clone())
        .unwrap()
        .start()
        .unwrap()
}

/// Recovers `image` and checks it holds 1..=n contiguously with the right payloads;
/// returns n.
fn recovered_prefix(dir: &std::path::Path, image: MemoryStore) -> Seq {
    let mut recovery = Recovery::open(JournalConfig::new(dir), image).unwrap();
    let mut last = 0;
    for record in recovery.tail() {
        let record = record.unwrap();
        assert_eq!(record.payload(), payload(record.seq));
        last = record.seq;
    }
    last
}

fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "{what} took longer than {limit:?}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    started.elapsed()
}

/// Appends from a background thread while the test takes crash images.
fn crash_images_hold_every_reported_event(durability: Durability) {
    const EVENTS: Seq = 20_000;
    const IMAGES: usize = 20;
    let data = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let journal = Arc::new(start(data.path(), durability, &store));
    let producer = {
        let journal = Arc::clone(&journal);
        std::thread::spawn(move || {
            for seq in 1..=EVENTS {
                assert_eq!(journal.append(&payload(seq)).unwrap(), seq);
                if seq % 1000 == 0 {
                    // Pace the producer so the images land all along the run.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    let mut reported_nonzero = 0;
    for _ in 0..IMAGES {
        let reported = journal.durable_seq();
        let image = store.durable_image();
        let recovery_dir = tempfile::tempdir().unwrap();
        let survived = recovered_prefix(recovery_dir.path(), image);
        assert!(
            survived >= reported,
            "{durability:?}: reported {reported}, survived {survived}"
        );
        reported_nonzero += usize::from(reported > 0);
        std::thread::sleep(Duration::from_millis(2));
    }
    producer.join().unwrap();
    journal.shutdown().unwrap();
    assert_eq!(journal.durable_seq(), EVENTS);
    assert!(reported_nonzero > 0);
}

#[test]
fn sync_mode_never_loses_an_event_reported_durable() {
    crash_images_hold_every_reported_event(Durability::Sync);
}

#[test]
fn async_mode_never_loses_an_event_the_watermark_reported() {
    crash_images_hold_every_reported_event(Durability::Async { max_loss_ms: 5 });
}

#[test]
fn async_mode_flushes_on_the_timer_without_anyone_waiting() {
    let data = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let max_loss_ms = 30;
    let journal = start(data.path(), Durability::Async { max_loss_ms }, &store);
    // One event a millisecond: sync mode would flush each one; async mode gathers ~30.
    let events = 150;
    let started = Instant::now();
    for seq in 1..=events {
        journal.append(&payload(seq)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = wait_until("the timer flush", Duration::from_secs(5), || {
        journal.durable_seq() == events
    });
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let metrics = journal.metrics();
    assert_eq!(metrics.events_written, events);
    // At most one flush per loss window, plus the last one.
    assert!(
        metrics.flushes <= elapsed_ms / max_loss_ms + 2,
        "{metrics:?} in {elapsed_ms} ms"
    );
    assert!(metrics.flushes >= 2, "{metrics:?}");
    assert!(metrics.batches_written > metrics.flushes * 3, "{metrics:?}");
    assert_eq!(store.durable_image().len() as u64, events);
    // The last event waited for the timer, not longer than the window plus scheduling.
    assert!(
        took < Duration::from_millis(max_loss_ms) + Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn async_mode_bounds_unflushed_events_by_count_too() {
    let data = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    // A timer so long it never fires during the test: only the count bound can flush.
    let journal = start(
        data.path(),
        Durability::Async {
            max_loss_ms: 60_000,
        },
        &store,
    );
    let events = (JOURNAL_UNFLUSHED_MAX + 1000) as Seq;
    for seq in 1..=events {
        journal.append(&payload(seq)).unwrap();
    }
    wait_until("the count-bound flush", Duration::from_secs(20), || {
        journal.durable_seq() >= JOURNAL_UNFLUSHED_MAX as Seq
    });
    let image = store.durable_image();
    let flushed = image.last_seq().unwrap().unwrap();
    assert!(flushed >= JOURNAL_UNFLUSHED_MAX as Seq);
    assert!(events - flushed < JOURNAL_UNFLUSHED_MAX as Seq);
}

#[test]
fn sync_and_snapshots_flush_at_once_in_async_mode() {
    let data = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let journal = start(
        data.path(),
        Durability::Async {
            max_loss_ms: 60_000,
        },
        &store,
    );
    for seq in 1..=10 {
        journal.append(&payload(seq)).unwrap();
    }
    let started = Instant::now();
    assert_eq!(journal.sync().unwrap(), 10);
    assert_eq!(store.durable_image().len(), 10);
    for seq in 11..=20 {
        journal.append(&payload(seq)).unwrap();
    }
    journal.write_snapshot(20, b"state").unwrap();
    assert_eq!(journal.durable_seq(), 20);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The loss window is what it says: events after the last flush are not in the image.
    journal.append(&payload(21)).unwrap();
    assert_eq!(store.durable_image().len(), 20);
    journal.shutdown().unwrap();
    assert_eq!(store.durable_image().len(), 21);
}
