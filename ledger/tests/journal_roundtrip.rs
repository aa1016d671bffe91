//! Append, recover, resume: the journal's normal life, on sled and on the memory store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardcore_ledger::journal::{
    DurableNotice, EventStore, Journal, JournalConfig, JournalError, MemoryStore, Recovery, Seq,
    RECORD_PAYLOAD_MAX_BYTES,
};

fn payload(seq: Seq) -> Vec<u8> {
    // Varying lengths, content tied to the seq so a misplaced record shows.
    let mut bytes = seq.to_be_bytes().to_vec();
    bytes.extend(std::iter::repeat_n((seq % 251) as u8, (seq % 40) as usize));
    bytes
}

fn replay<S: EventStore>(recovery: &mut Recovery<S>) -> Vec<(Seq, Vec<u8>)> {
    recovery
        .tail()
        .map(|r| r.map(|r| (r.seq, r.into_payload())).unwrap())
        .collect()
}

#[test]
fn sled_round_trip_and_restart_resumes_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig::new(dir.path());
    let mut recovery = Journal::recover(config.clone()).unwrap();
    assert!(recovery.snapshot().is_none());
    assert!(replay(&mut recovery).is_empty());
    assert_eq!(recovery.report().next_seq, 1);
    let journal = recovery.start().unwrap();
    for expected in 1..=500 {
        assert_eq!(journal.append(&payload(expected)).unwrap(), expected);
    }
    journal.wait_durable(500).unwrap();
    assert_eq!(journal.durable_seq(), 500);
    journal.shutdown().unwrap();
    drop(journal);

    let mut recovery = Journal::recover(config.clone()).unwrap();
    let replayed = replay(&mut recovery);
    let expected: Vec<_> = (1..=500).map(|seq| (seq, payload(seq))).collect();
    assert_eq!(replayed, expected);
    assert_eq!(recovery.report().next_seq, 501);
    let journal = recovery.start().unwrap();
    assert_eq!(journal.durable_seq(), 500);
    assert_eq!(journal.append(b"after restart").unwrap(), 501);
    journal.shutdown().unwrap();
    drop(journal);

    let mut recovery = Journal::recover(config).unwrap();
    let replayed = replay(&mut recovery);
    assert_eq!(replayed.len(), 501);
    assert_eq!(replayed[500], (501, b"after restart".to_vec()));
}

#[test]
fn memory_store_round_trip_and_drop_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let config = JournalConfig::new(dir.path());
    let journal = Recovery::open(config.clone(), store.clone())
        .unwrap()
        .start()
        .unwrap();
    for seq in 1..=100 {
        journal.append(&payload(seq)).unwrap();
    }
    // Drop alone must drain the queue and flush: nothing is waited on here.
    drop(journal);
    let image = store.durable_image();
    let mut recovery = Recovery::open(config, image).unwrap();
    assert_eq!(
        replay(&mut recovery),
        (1..=100).map(|s| (s, payload(s))).collect::<Vec<_>>()
    );
}

#[test]
fn partial_tail_read_continues_and_start_validates_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let config = JournalConfig::new(dir.path());
    let journal = Recovery::open(config.clone(), store.clone())
        .unwrap()
        .start()
        .unwrap();
    for seq in 1..=20 {
        journal.append(&payload(seq)).unwrap();
    }
    journal.shutdown().unwrap();
    drop(journal);
    let mut recovery = Recovery::open(config, store).unwrap();
    let first: Vec<Seq> = recovery.tail().take(5).map(|r| r.unwrap().seq).collect();
    assert_eq!(first, vec![1, 2, 3, 4, 5]);
    let rest: Vec<Seq> = recovery.tail().map(|r| r.unwrap().seq).collect();
    assert_eq!(rest, (6..=20).collect::<Vec<_>>());
    let journal = recovery.start().unwrap();
    assert_eq!(journal.append(b"x").unwrap(), 21);
}

#[test]
fn concurrent_producers_keep_store_order_equal_to_seq_order() {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let config = JournalConfig::new(dir.path());
    let journal = Arc::new(
        Recovery::open(config.clone(), store.clone())
            .unwrap()
            .start()
            .unwrap(),
    );
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let journal = Arc::clone(&journal);
            std::thread::spawn(move || {
                let mut assigned = Vec::new();
                for counter in 0..PER_PRODUCER {
                    let event = [producer.to_be_bytes(), counter.to_be_bytes()].concat();
                    assigned.push((journal.append(&event).unwrap(), event));
                }
                assigned
            })
        })
        .collect();
    let mut assigned: Vec<(Seq, Vec<u8>)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assigned.sort();
    journal.shutdown().unwrap();
    let mut recovery = Recovery::open(config, store).unwrap();
    let replayed = replay(&mut recovery);
    assert_eq!(replayed.len() as u64, PRODUCERS * PER_PRODUCER);
    // Each event sits under the seq its append returned, and each producer's events are in
    // the order it appended them.
    assert_eq!(replayed, assigned);
    for producer in 0..PRODUCERS {
        let counters: Vec<u64> = replayed
            .iter()
            .filter(|(_, e)| e[..8] == producer.to_be_bytes())
            .map(|(_, e)| u64::from_be_bytes(e[8..].try_into().unwrap()))
            .collect();
        assert_eq!(counters, (0..PER_PRODUCER).collect::<Vec<_>>());
    }
}

#[test]
fn group_commit_carries_many_events_per_flush_when_the_disk_is_slow() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    store.set_flush_delay(Duration::from_millis(2));
    let config = JournalConfig::new(dir.path());
    let journal = Recovery::open(config, store.clone())
        .unwrap()
        .start()
        .unwrap();
    let events = 5_000;
    for seq in 1..=events {
        journal.append(&payload(seq)).unwrap();
    }
    journal.wait_durable(events).unwrap();
    let metrics = journal.metrics();
    assert_eq!(metrics.events_written, events);
    assert_eq!(metrics.flushes, metrics.batches_written);
    // Recovery flushes once before the writer starts.
    assert_eq!(metrics.flushes + 1, store.flush_count());
    // 5000 flushes of 2 ms would take 10 s; batching is what makes this fast.
    assert!(metrics.flushes < events / 10, "{metrics:?}");
    assert!(
        metrics.flush_latency_us_sum >= metrics.flushes * 2_000,
        "{metrics:?}"
    );
    assert_eq!(
        metrics.flush_latency_histogram.iter().sum::<u64>(),
        metrics.flushes
    );
}

#[test]
fn a_lone_event_is_flushed_without_waiting_for_company() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::recover(JournalConfig::new(dir.path()))
        .unwrap()
        .start()
        .unwrap();
    for round in 1..=20 {
        let seq = journal.append(b"lone").unwrap();
        assert_eq!(seq, round);
        journal.wait_durable(seq).unwrap();
    }
    let metrics = journal.metrics();
    assert_eq!(metrics.batches_written, 20);
    assert_eq!(metrics.last_batch_events, 1);
}

#[test]
fn callbacks_hear_every_flush_in_order_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let journal = Recovery::open(JournalConfig::new(dir.path()), store)
        .unwrap()
        .start()
        .unwrap();
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    journal.on_durable(Box::new(move |notice| sink.lock().unwrap().push(notice)));
    for seq in 1..=300 {
        journal.append(&payload(seq)).unwrap();
    }
    journal.shutdown().unwrap();
    let notices = notices.lock().unwrap().clone();
    assert_eq!(notices.last(), Some(&DurableNotice::Closed));
    let seqs: Vec<Seq> = notices
        .iter()
        .filter_map(|n| match n {
            DurableNotice::Durable(seq) => Some(*seq),
            _ => None,
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs.last(), Some(&300));
}

#[test]
fn caller_errors_name_the_problem_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let journal = Recovery::open(JournalConfig::new(dir.path()), store.clone())
        .unwrap()
        .start()
        .unwrap();
    let too_big = vec![0_u8; RECORD_PAYLOAD_MAX_BYTES + 1];
    let error = journal.append(&too_big).unwrap_err();
    assert!(
        matches!(error, JournalError::PayloadTooLarge { .. }),
        "{error}"
    );
    let error = journal.wait_durable(1).unwrap_err();
    assert!(
        matches!(
            error,
            JournalError::NotAppended {
                seq: 1,
                last_appended: 0
            }
        ),
        "{error}"
    );
    let error = journal.write_snapshot(1, b"state").unwrap_err();
    assert!(matches!(error, JournalError::NotAppended { .. }), "{error}");
    assert_eq!(journal.append(b"ok").unwrap(), 1);
    journal.shutdown().unwrap();
    assert_eq!(store.len(), 1);
    assert!(matches!(
        journal.append(b"late").unwrap_err(),
        JournalError::Closed
    ));
    assert!(matches!(journal.sync().unwrap_err(), JournalError::Closed));
    journal.shutdown().unwrap();
}

#[test]
fn back_pressure_blocks_producers_but_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    store.set_flush_delay(Duration::from_millis(1));
    let mut config = JournalConfig::new(dir.path());
    config.queue_capacity = 4;
    config.batch_max = 2;
    let journal = Recovery::open(config, store.clone())
        .unwrap()
        .start()
        .unwrap();
    let max_queue = AtomicU64::new(0);
    for seq in 1..=200 {
        journal.append(&payload(seq)).unwrap();
        max_queue.fetch_max(journal.queue_len() as u64, Ordering::Relaxed);
    }
    journal.wait_durable(200).unwrap();
    assert!(max_queue.load(Ordering::Relaxed) <= 4);
    assert!(journal.metrics().last_batch_events <= 2);
    assert_eq!(store.len(), 200);
}
