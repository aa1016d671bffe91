//! Damaged records, torn tails, gaps and failing stores: loud where data would be wrong,
//! quiet and reported where an interrupted write left a torn tail.

use std::sync::{Arc, Mutex};

use cardcore_ledger::journal::record::{encode_into, RECORD_VERSION};
use cardcore_ledger::journal::{
    DurableNotice, Journal, JournalConfig, JournalError, MemoryStore, Recovery, Seq, StoreFault,
    TornTail, TORN_TAIL_MAX_RECORDS,
};

fn payload(seq: Seq) -> Vec<u8> {
    format!("event {seq}").into_bytes()
}

fn value(seq: Seq) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(seq, &payload(seq), &mut out);
    out
}

/// A store holding good records 1..=count, as if flushed by an earlier run.
fn store_with(count: Seq) -> MemoryStore {
    let store = MemoryStore::new();
    for seq in 1..=count {
        store.put_raw(seq, value(seq));
    }
    store
}

/// A record with a valid checksum in a format version this build does not know.
fn future_version_value(seq: Seq) -> Vec<u8> {
    let version = RECORD_VERSION + 1;
    let body = payload(seq);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[version]), &seq.to_be_bytes());
    let crc = crc32c::crc32c_append(crc, &body);
    [vec![version], crc.to_be_bytes().to_vec(), body].concat()
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    FlipPayloadBit,
    FlipChecksumBit,
    FlipVersionBit,
    CutShort,
    FutureVersion,
}

fn damage(store: &MemoryStore, seq: Seq, how: Damage) {
    let done = match how {
        Damage::FlipPayloadBit => store.flip_bit(seq, 7),
        Damage::FlipChecksumBit => store.flip_bit(seq, 2),
        Damage::FlipVersionBit => store.flip_bit(seq, 0),
        Damage::CutShort => store.cut_value(seq, 3),
        Damage::FutureVersion => {
            store.put_raw(seq, future_version_value(seq));
            true
        }
    };
    assert!(done, "{how:?} on {seq}");
}

#[test]
fn a_damaged_record_in_the_middle_stops_recovery_and_names_its_seq() {
    let cases = [
        (Damage::FlipPayloadBit, "CRC32C mismatch"),
        (Damage::FlipChecksumBit, "CRC32C mismatch"),
        (Damage::FlipVersionBit, "CRC32C mismatch"),
        (Damage::CutShort, "shorter than the 5-byte header"),
        (Damage::FutureVersion, "format version 2"),
    ];
    for (how, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(100);
        damage(&store, 50, how);
        let mut recovery = Recovery::open(JournalConfig::new(dir.path()), store.clone()).unwrap();
        assert_eq!(recovery.report().torn_tail, None, "{how:?}");
        let mut replayed = Vec::new();
        let mut failure = None;
        for record in recovery.tail() {
            match record {
                Ok(record) => replayed.push(record.seq),
                Err(error) => failure = Some(error),
            }
        }
        assert_eq!(replayed, (1..50).collect::<Vec<_>>(), "{how:?}");
        let error = failure.expect("recovery must stop at the damaged record");
        assert!(error.is_corruption(), "{how:?}: {error}");
        let text = error.to_string();
        assert!(text.contains("record 50"), "{how:?}: {text}");
        assert!(text.contains(says), "{how:?}: {text}");
        let refused = recovery.start().unwrap_err();
        assert!(
            matches!(refused, JournalError::RecoveryIncomplete { .. }),
            "{refused}"
        );
        assert_eq!(
            store.len(),
            100,
            "{how:?}: recovery must not change a damaged journal"
        );
    }
}

#[test]
fn start_without_reading_the_tail_still_refuses_a_damaged_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(10);
    damage(&store, 4, Damage::FlipPayloadBit);
    let recovery = Recovery::open(JournalConfig::new(dir.path()), store).unwrap();
    let error = recovery.start().unwrap_err();
    assert!(
        matches!(error, JournalError::Corrupt { seq: 4, .. }),
        "{error}"
    );
}

#[test]
fn a_torn_tail_is_cut_reported_and_the_sequence_resumes_after_it() {
    // (records, damaged trailing seqs, how)
    let cases: &[(Seq, &[Seq], Damage)] = &[
        (20, &[20], Damage::CutShort),
        (20, &[20], Damage::FlipPayloadBit),
        (20, &[18, 19, 20], Damage::FlipChecksumBit),
        (3, &[1, 2, 3], Damage::CutShort),
    ];
    for &(records, torn, how) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(records);
        for &seq in torn {
            damage(&store, seq, how);
        }
        let config = JournalConfig::new(dir.path());
        let mut recovery = Recovery::open(config.clone(), store.clone()).unwrap();
        let first_torn = torn[0];
        let expected_tail = TornTail {
            first_seq: first_torn,
            last_seq: records,
            records: torn.len() as u64,
        };
        assert_eq!(recovery.report().torn_tail, Some(expected_tail), "{how:?}");
        assert_eq!(recovery.report().next_seq, first_torn);
        let seqs: Vec<Seq> = recovery.tail().map(|r| r.unwrap().seq).collect();
        assert_eq!(seqs, (1..first_torn).collect::<Vec<_>>());
        let journal = recovery.start().unwrap();
        assert_eq!(journal.append(b"after the cut").unwrap(), first_torn);
        journal.shutdown().unwrap();
        drop(journal);
        // The cut is durable and the next open finds a clean journal.
        let mut again = Recovery::open(config, store.durable_image()).unwrap();
        assert_eq!(again.report().torn_tail, None);
        let last = again.tail().map(|r| r.unwrap()).last().unwrap();
        assert_eq!(
            (last.seq, last.payload()),
            (first_torn, &b"after the cut"[..])
        );
    }
}

#[test]
fn damage_longer_than_any_torn_write_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let records = TORN_TAIL_MAX_RECORDS + 2;
    let store = store_with(records);
    for seq in 2..=records {
        damage(&store, seq, Damage::FlipPayloadBit);
    }
    let error = Recovery::open(JournalConfig::new(dir.path()), store.clone()).unwrap_err();
    assert!(error.is_corruption(), "{error}");
    assert!(
        matches!(error, JournalError::Corrupt { seq: 2, .. }),
        "{error}"
    );
    assert_eq!(store.len() as u64, records);
}

#[test]
fn a_missing_record_is_a_gap() {
    let cases: &[(Seq, &[Seq], Seq, Seq)] =
        &[(10, &[5], 5, 6), (10, &[1], 1, 2), (10, &[3, 4, 5], 3, 6)];
    for &(records, missing, expected, found) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(records);
        for &seq in missing {
            store.delete_raw(seq);
        }
        let mut recovery = Recovery::open(JournalConfig::new(dir.path()), store).unwrap();
        let error = recovery.tail().find_map(Result::err).unwrap();
        assert!(
            matches!(error, JournalError::Gap { expected: e, found: f } if e == expected && f == found),
            "{missing:?}: {error}"
        );
        assert!(error.is_corruption());
    }
}

#[test]
fn a_failing_store_stops_the_writer_and_every_waiter_hears_it() {
    for fault in [StoreFault::AppendFails, StoreFault::FlushFails] {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::new();
        let journal = Recovery::open(JournalConfig::new(dir.path()), store.clone())
            .unwrap()
            .start()
            .unwrap();
        let notices = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&notices);
        journal.on_durable(Box::new(move |notice| sink.lock().unwrap().push(notice)));
        for seq in 1..=10 {
            journal.append(&payload(seq)).unwrap();
        }
        journal.wait_durable(10).unwrap();
        store.inject(fault);
        let seq = journal.append(b"doomed").unwrap();
        let error = journal.wait_durable(seq).unwrap_err();
        assert!(
            matches!(error, JournalError::WriterFailed { .. }),
            "{fault:?}: {error}"
        );
        assert!(error.to_string().contains("injected"), "{error}");
        assert!(!error.is_corruption());
        assert_eq!(journal.durable_seq(), 10);
        assert!(journal.fatal_error().is_some());
        // The writer is gone: appends fail (at the latest once the queue is seen closed).
        let later = (0..1000).find_map(|_| journal.append(b"later").err());
        assert!(
            matches!(later, Some(JournalError::WriterFailed { .. })),
            "{later:?}"
        );
        assert!(matches!(
            journal.shutdown(),
            Err(JournalError::WriterFailed { .. })
        ));
        assert_eq!(notices.lock().unwrap().last(), Some(&DurableNotice::Failed));
        // What the watermark called durable is exactly what survives.
        assert_eq!(store.durable_image().len(), 10, "{fault:?}");
    }
}

#[test]
fn sled_refuses_a_second_open_of_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig::new(dir.path());
    let journal = Journal::recover(config.clone()).unwrap().start().unwrap();
    let error = Journal::recover(config).unwrap_err();
    assert!(matches!(error, JournalError::Store(_)), "{error}");
    journal.shutdown().unwrap();
}
