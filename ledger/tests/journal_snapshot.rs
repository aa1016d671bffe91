//! Snapshots: written durably, pruned to the newest two, journal truncated behind them, and
//! recovery from the newest good one.

use std::path::Path;
use std::time::{Duration, Instant};

use cardcore_ledger::journal::snapshot::snapshot_file_name;
use cardcore_ledger::journal::{
    EventStore, Journal, JournalConfig, JournalError, MemoryStore, Recovery, Seq,
};

fn payload(seq: Seq) -> Vec<u8> {
    format!("event {seq}").into_bytes()
}

fn state(seq: Seq) -> Vec<u8> {
    format!("state after {seq}").into_bytes()
}

fn append_through(journal: &Journal, last: Seq) {
    while journal.last_appended_seq() < last {
        let seq = journal.last_appended_seq() + 1;
        assert_eq!(journal.append(&payload(seq)).unwrap(), seq);
    }
}

fn wait_for_truncation(journal: &Journal, records: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal.metrics().records_truncated < records {
        assert!(
            Instant::now() < deadline,
            "truncation stalled: {:?}",
            journal.metrics()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(journal.metrics().records_truncated, records);
}

fn snapshot_seqs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("snapshot-"))
        .collect();
    names.sort();
    names
}

#[test]
fn snapshots_truncate_behind_the_older_kept_one_and_recovery_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let config = JournalConfig::new(dir.path());
    let journal = Recovery::open(config.clone(), store.clone())
        .unwrap()
        .start()
        .unwrap();
    append_through(&journal, 1000);
    journal.write_snapshot(400, &state(400)).unwrap();
    // One snapshot: the journal stays whole, so a damaged snapshot can fall back to replay.
    append_through(&journal, 1200);
    assert_eq!(journal.metrics().records_truncated, 0);
    journal.write_snapshot(800, &state(800)).unwrap();
    wait_for_truncation(&journal, 400);
    journal.write_snapshot(1200, &state(1200)).unwrap();
    wait_for_truncation(&journal, 800);
    assert_eq!(
        snapshot_seqs(dir.path()),
        vec![snapshot_file_name(800), snapshot_file_name(1200)]
    );
    append_through(&journal, 1300);
    assert_eq!(journal.metrics().snapshots_written, 3);
    journal.shutdown().unwrap();
    drop(journal);

    let image = store.durable_image();
    assert_eq!(image.first_seq().unwrap(), Some(801));
    let mut recovery = Recovery::open(config, image).unwrap();
    let snapshot = recovery.take_snapshot().unwrap();
    assert_eq!((snapshot.seq, snapshot.bytes), (1200, state(1200)));
    let tail: Vec<(Seq, Vec<u8>)> = recovery
        .tail()
        .map(|r| r.map(|r| (r.seq, r.into_payload())).unwrap())
        .collect();
    assert_eq!(
        tail,
        (1201..=1300).map(|s| (s, payload(s))).collect::<Vec<_>>()
    );
    let journal = recovery.start().unwrap();
    assert_eq!(journal.append(b"next").unwrap(), 1301);
    let error = journal.write_snapshot(1200, b"again").unwrap_err();
    assert!(matches!(
        error,
        JournalError::SnapshotNotNewer {
            seq: 1200,
            newest: 1200
        }
    ));
}

#[test]
fn sled_snapshot_and_restart_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig::new(dir.path());
    let journal = Journal::recover(config.clone()).unwrap().start().unwrap();
    append_through(&journal, 3000);
    journal.write_snapshot(1000, &state(1000)).unwrap();
    journal.write_snapshot(2500, &state(2500)).unwrap();
    wait_for_truncation(&journal, 1000);
    journal.shutdown().unwrap();
    drop(journal);

    let mut recovery = Journal::recover(config).unwrap();
    assert_eq!(recovery.report().snapshot_seq, Some(2500));
    assert_eq!(recovery.snapshot().unwrap().bytes, state(2500));
    let seqs: Vec<Seq> = recovery.tail().map(|r| r.unwrap().seq).collect();
    assert_eq!(seqs, (2501..=3000).collect::<Vec<_>>());
    let journal = recovery.start().unwrap();
    assert_eq!(journal.append(b"x").unwrap(), 3001);
}

/// Writes journal 1..=last with snapshots at `snapshots`, then shuts down.
fn build(dir: &Path, last: Seq, snapshots: &[Seq]) -> MemoryStore {
    let store = MemoryStore::new();
    let journal = Recovery::open(JournalConfig::new(dir), store.clone())
        .unwrap()
        .start()
        .unwrap();
    append_through(&journal, last);
    for &seq in snapshots {
        journal.write_snapshot(seq, &state(seq)).unwrap();
    }
    let truncated = if snapshots.len() >= 2 {
        snapshots[snapshots.len() - 2]
    } else {
        0
    };
    wait_for_truncation(&journal, truncated);
    journal.shutdown().unwrap();
    store
}

fn damage_snapshot(dir: &Path, seq: Seq) {
    let path = dir.join(snapshot_file_name(seq));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older_one_with_a_longer_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = build(dir.path(), 600, &[200, 500]);
    damage_snapshot(dir.path(), 500);
    let mut recovery = Recovery::open(JournalConfig::new(dir.path()), store).unwrap();
    let report = recovery.report().clone();
    assert_eq!(report.snapshot_seq, Some(200));
    assert_eq!(report.skipped_snapshots.len(), 1);
    assert_eq!(report.skipped_snapshots[0].seq, 500);
    assert!(
        report.skipped_snapshots[0].problem.contains("CRC32C"),
        "{report:?}"
    );
    assert!(report.skipped_snapshots[0].moved_to.exists());
    assert_eq!(recovery.snapshot().unwrap().bytes, state(200));
    let seqs: Vec<Seq> = recovery.tail().map(|r| r.unwrap().seq).collect();
    assert_eq!(seqs, (201..=600).collect::<Vec<_>>());
    assert_eq!(
        snapshot_seqs(dir.path()).len(),
        2,
        "the good one and the set-aside one"
    );
    let journal = recovery.start().unwrap();
    // The set-aside file no longer counts: the next snapshot is measured against 200.
    journal.write_snapshot(600, &state(600)).unwrap();
}

#[test]
fn a_damaged_only_snapshot_falls_back_to_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = build(dir.path(), 300, &[250]);
    damage_snapshot(dir.path(), 250);
    let mut recovery = Recovery::open(JournalConfig::new(dir.path()), store).unwrap();
    assert_eq!(recovery.report().snapshot_seq, None);
    assert_eq!(recovery.report().skipped_snapshots[0].seq, 250);
    let seqs: Vec<Seq> = recovery.tail().map(|r| r.unwrap().seq).collect();
    assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
}

#[test]
fn a_damaged_snapshot_the_journal_cannot_replace_is_a_loud_error() {
    // (journal end, snapshots written, snapshots damaged, named in the error)
    let cases: &[(Seq, &[Seq], &[Seq], Seq)] = &[
        (600, &[200, 500], &[200, 500], 500),
        (900, &[200, 500, 800], &[800, 500], 800),
    ];
    for &(last, written, damaged, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = build(dir.path(), last, written);
        for &seq in damaged {
            damage_snapshot(dir.path(), seq);
        }
        let error = Recovery::open(JournalConfig::new(dir.path()), store).unwrap_err();
        assert!(
            matches!(error, JournalError::SnapshotCorrupt { .. }),
            "{error}"
        );
        assert!(error.is_corruption());
        assert!(
            error.to_string().contains(&snapshot_file_name(named)),
            "{error}"
        );
        // Nothing was moved or deleted: an operator sees the files as they were.
        let names = snapshot_seqs(dir.path());
        assert!(names.iter().all(|n| n.ends_with(".bin")), "{names:?}");
    }
}

#[test]
fn an_interrupted_snapshot_write_leaves_a_temp_file_that_recovery_removes() {
    let dir = tempfile::tempdir().unwrap();
    let store = build(dir.path(), 50, &[40]);
    let temp = dir.path().join("snapshot-00000000000000000050.bin.tmp");
    std::fs::write(&temp, b"half a snapshot").unwrap();
    let recovery = Recovery::open(JournalConfig::new(dir.path()), store).unwrap();
    assert_eq!(recovery.report().removed_temp_files, vec![temp.clone()]);
    assert!(!temp.exists());
    assert_eq!(recovery.report().snapshot_seq, Some(40));
}
