//! Model-based test: random appends, waits, snapshots, crashes and clean restarts against the
//! journal on the memory store, and against a model that is just the list of payloads.
//! After every crash the recovered journal must be a prefix of the model that holds at least
//! everything reported durable; after every restart it must be the whole model.

use std::path::Path;

use cardcore_ledger::journal::{Journal, JournalConfig, MemoryStore, Recovery, Seq};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<u8>),
    WaitDurable,
    Snapshot,
    Crash,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Append),
        1 => Just(Op::WaitDurable),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Crash),
        1 => Just(Op::Restart),
    ]
}

/// The engine state a snapshot at `seq` stands for: a checksum of every payload up to it.
fn state(model: &[Vec<u8>], seq: Seq) -> Vec<u8> {
    let digest = model[..seq as usize]
        .iter()
        .fold(0, |crc, p| crc32c::crc32c_append(crc, p));
    [seq.to_be_bytes().as_slice(), &digest.to_be_bytes()].concat()
}

/// Recovers `store`, checks it against the model, and returns the journal and how many
/// events it holds.
fn recover(dir: &Path, store: MemoryStore, model: &[Vec<u8>]) -> (Journal, Seq) {
    let mut recovery = Recovery::open(JournalConfig::new(dir), store).unwrap();
    let mut last = 0;
    if let Some(snapshot) = recovery.take_snapshot() {
        assert_eq!(snapshot.bytes, state(model, snapshot.seq));
        last = snapshot.seq;
    }
    for record in recovery.tail() {
        let record = record.unwrap();
        assert_eq!(record.payload(), model[record.seq as usize - 1].as_slice());
        last = record.seq;
    }
    (recovery.start().unwrap(), last)
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MemoryStore::new();
    let mut model: Vec<Vec<u8>> = Vec::new();
    let (mut journal, _) = recover(dir.path(), store.clone(), &model);
    let mut newest_snapshot = 0;
    for op in ops {
        match op {
            Op::Append(payload) => {
                assert_eq!(journal.append(&payload).unwrap(), model.len() as Seq + 1);
                model.push(payload);
            }
            Op::WaitDurable => journal.wait_durable(model.len() as Seq).unwrap(),
            Op::Snapshot => {
                let seq = model.len() as Seq;
                if seq > newest_snapshot {
                    journal.write_snapshot(seq, &state(&model, seq)).unwrap();
                    newest_snapshot = seq;
                }
            }
            Op::Crash => {
                let reported = journal.durable_seq();
                let image = store.durable_image();
                drop(journal);
                store = image;
                let (recovered, last) = recover(dir.path(), store.clone(), &model);
                assert!(
                    last >= reported,
                    "reported {reported} durable, recovered {last}"
                );
                model.truncate(last as usize);
                journal = recovered;
            }
            Op::Restart => {
                journal.shutdown().unwrap();
                drop(journal);
                let (recovered, last) = recover(dir.path(), store.clone(), &model);
                assert_eq!(last, model.len() as Seq);
                journal = recovered;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn journal_matches_the_model_across_crashes_and_restarts(
        ops in proptest::collection::vec(op(), 1..120)
    ) {
        run(ops);
    }
}
