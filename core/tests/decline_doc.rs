//! `docs/decline-reasons.md` is generated from the decline tables in `core/src/decline.rs`.
//! This test fails when the two drift; `UPDATE_DOCS=1` rewrites the file instead.

use std::path::PathBuf;

use cardcore_core::decline::decline_reasons_markdown;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/decline-reasons.md")
}

#[test]
fn decline_reasons_doc_matches_the_tables() {
    let generated = decline_reasons_markdown();
    let path = doc_path();
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write docs/decline-reasons.md");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let line = first_difference(&checked_in, &generated);
        panic!(
            "docs/decline-reasons.md differs from the decline tables (first at line {line}); \
             run `UPDATE_DOCS=1 cargo test -p cardcore-core --test decline_doc` and commit it"
        );
    }
}

#[test]
fn doc_lists_every_reason_with_its_code() {
    use cardcore_core::decline::{DeclineReason, DetailedDeclineReason};
    let doc = decline_reasons_markdown();
    for reason in DeclineReason::ALL {
        let row = format!("| `{}` | `{}` |", reason.code(), reason.field39().as_str());
        assert!(doc.contains(&row), "{row}");
    }
    for detailed in DetailedDeclineReason::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", detailed.code())),
            "{detailed}"
        );
    }
}

fn first_difference(a: &str, b: &str) -> usize {
    let mut lines = a.lines().zip(b.lines());
    let same = lines.position(|(x, y)| x != y);
    same.unwrap_or_else(|| a.lines().count().min(b.lines().count())) + 1
}
