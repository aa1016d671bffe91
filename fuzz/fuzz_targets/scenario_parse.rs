//! Fuzzes the scenario parser (JSON Lines to typed steps): no input may panic, a file parses
//! the same way twice and the same way line by line, every line that is not blank or a
//! comment gives exactly one step or one error, and errors name a line that exists.
#![no_main]

use cardcore_sim::scenario::{parse_line, Scenario};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scenario = Scenario::parse("fuzz.jsonl", data);
    assert_eq!(
        scenario,
        Scenario::parse("fuzz.jsonl", data),
        "parsing is deterministic"
    );
    check_line_by_line(&scenario, data);
    for error in scenario.errors() {
        // Reports print these; formatting must not panic either.
        let _ = error.to_string();
        let _ = error.detail();
    }
    for step in scenario.steps() {
        let _ = format!("{step:?}");
    }
});

/// `Scenario::parse` is `parse_line` over the lines after an optional byte-order mark.
fn check_line_by_line(scenario: &Scenario, data: &[u8]) {
    let text = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let lines = text.split(|&b| b == b'\n').count();
    let mut parsed = scenario.lines.iter();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let Some(alone) = parse_line(index + 1, raw) else {
            continue;
        };
        let in_file = parsed.next().expect("one entry per step line");
        assert_eq!(in_file, &alone, "line {}", index + 1);
        let line = match &alone {
            Ok(step) => step.line,
            Err(error) => error.line,
        };
        assert_eq!(line, index + 1);
        assert!(line <= lines);
    }
    assert!(parsed.next().is_none(), "no entry without a line");
}
