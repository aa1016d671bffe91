//! The `cardcore` binary end to end: scenario replay and the demo, as a user runs them.

use std::path::PathBuf;
use std::process::Command;

fn cardcore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cardcore"))
}

fn shared_scenarios() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

#[test]
fn replay_passes_the_shared_scenarios_and_says_so() {
    let out = cardcore()
        .args(["sim", "replay"])
        .args(shared_scenarios())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with("passed, 0 failed"), "{stdout}");
}

#[test]
fn replay_fails_with_the_line_of_an_unmet_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.jsonl");
    let text = concat!(
        "{\"op\":\"profile\",\"profile\":1}\n",
        "{\"op\":\"balance\",\"profile\":1,\"currency\":\"EUR\",\"amount\":\"10.00\"}\n",
        "{\"op\":\"expect_balance\",\"profile\":1,\"currency\":\"EUR\",\"available\":\"11.00\"}\n",
    );
    std::fs::write(&file, text).unwrap();
    let out = cardcore()
        .args(["sim", "replay"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains(":3"), "names line 3: {stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or_default()
            .ends_with("0 passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn demo_runs_traffic_over_tcp_and_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let out = cardcore()
        .args(["demo", "--duration", "2s", "--cards", "300", "--report-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reconciliation: OK"), "{stdout}");
    let report = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(json["reconciliation"]["ok"], true);
    assert_eq!(json["invariants_ok"], true);
    assert!(json["messages"].as_u64().unwrap() > 0);
}
