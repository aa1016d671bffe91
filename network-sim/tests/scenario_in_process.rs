//! The shared example scenarios and the scenario library, replayed against an embedded
//! engine: every expectation must hold.

use std::path::{Path, PathBuf};

use cardcore_sim::scenario::replay_files;
use cardcore_sim::targets::{InProcessTarget, SimKeys};

fn shared_scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

fn library_scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn replay(files: &[PathBuf]) {
    let mut target = InProcessTarget::new(SimKeys::from_seed(b"scenario tests"));
    let report = replay_files(&mut target, files);
    println!("{report}");
    assert!(report.is_success(), "{report}");
    assert!(report.passed > 0, "no expectation ran: {report}");
}

#[test]
fn shared_examples_pass() {
    let files = shared_scenarios();
    assert!(!files.is_empty(), "the shared scenarios are missing");
    replay(&files);
}

#[test]
fn scenario_library_passes() {
    let files = library_scenarios();
    if files.is_empty() {
        return;
    }
    replay(&files);
}
