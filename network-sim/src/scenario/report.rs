//! What a replay found: expectations met and not met, and a line for every unmet one.
//!
//! The rendered report lists each problem as `FILE:LINE: expected X, saw Y` (or
//! `FILE:LINE: <message>` for a step that could not run), and its last line is always
//! `N passed, M failed`.

use std::fmt;

/// The most problems a report keeps for printing; the counts stay exact past it. A broken
/// scenario of a million lines should not produce a million-line report.
pub const FAILURES_KEPT_MAX: usize = 10_000;

/// The result of replaying one or more files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub passed: u64,
    pub failed: u64,
    /// The problems in replay order, at most [`FAILURES_KEPT_MAX`].
    pub failures: Vec<Failure>,
    /// Problems found past [`FAILURES_KEPT_MAX`], counted but not kept.
    pub failures_dropped: u64,
}

/// One unmet expectation, or one reason a step could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub file: String,
    /// `None` when the problem concerns the whole file (it could not be read).
    pub line: Option<usize>,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `expected` and `saw` are already worded: `state IN_PROGRESS` and `DECLINED`.
    Mismatch { expected: String, saw: String },
    /// The step could not be carried out (bad line, unknown name, the target failed).
    Error(String),
}

impl Problem {
    pub fn mismatch(expected: impl Into<String>, saw: impl Into<String>) -> Problem {
        Problem::Mismatch {
            expected: expected.into(),
            saw: saw.into(),
        }
    }
}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// It ran and carried no expectation: not counted.
    Unchecked,
    /// Its one expectation was met.
    Passed,
    /// Its one expectation was not met, or it could not run; every problem is listed.
    Failed(Vec<Problem>),
}

impl Report {
    /// Counts one step's outcome: a failed step counts once however many problems it has.
    pub fn record(&mut self, file: &str, line: Option<usize>, outcome: StepOutcome) {
        match outcome {
            StepOutcome::Unchecked => {}
            StepOutcome::Passed => self.passed += 1,
            StepOutcome::Failed(problems) => {
                self.failed += 1;
                for problem in problems {
                    self.keep(Failure {
                        file: file.to_owned(),
                        line,
                        problem,
                    });
                }
            }
        }
    }

    fn keep(&mut self, failure: Failure) {
        if self.failures.len() < FAILURES_KEPT_MAX {
            self.failures.push(failure);
        } else {
            self.failures_dropped += 1;
        }
    }

    /// Adds another file's report to this one.
    pub fn merge(&mut self, other: Report) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.failures_dropped += other.failures_dropped;
        for failure in other.failures {
            self.keep(failure);
        }
    }

    /// True when every expectation was met (the process should exit 0).
    pub fn is_success(&self) -> bool {
        self.failed == 0
    }

    /// The closing line: `N passed, M failed`.
    pub fn summary_line(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in &self.failures {
            writeln!(f, "{failure}")?;
        }
        if self.failures_dropped > 0 {
            writeln!(
                f,
                "... and {} more problems not shown",
                self.failures_dropped
            )?;
        }
        writeln!(f, "{}", self.summary_line())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        match &self.problem {
            Problem::Mismatch { expected, saw } => write!(f, "expected {expected}, saw {saw}"),
            Problem::Error(message) => f.write_str(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_steps_and_lists_problems() {
        let mut r = Report::default();
        r.record("a.jsonl", Some(3), StepOutcome::Passed);
        r.record("a.jsonl", Some(4), StepOutcome::Unchecked);
        let two = vec![
            Problem::mismatch("state IN_PROGRESS", "DECLINED"),
            Problem::mismatch("responseCode 00", "51"),
        ];
        r.record("a.jsonl", Some(5), StepOutcome::Failed(two));
        r.record(
            "a.jsonl",
            None,
            StepOutcome::Failed(vec![Problem::Error("cannot read".into())]),
        );
        assert_eq!((r.passed, r.failed), (1, 2));
        assert_eq!(
            r.to_string(),
            "a.jsonl:5: expected state IN_PROGRESS, saw DECLINED\n\
             a.jsonl:5: expected responseCode 00, saw 51\n\
             a.jsonl: cannot read\n\
             1 passed, 2 failed\n"
        );
        assert!(!r.is_success());
    }

    #[test]
    fn keeps_a_bounded_number_of_problems() {
        let mut r = Report::default();
        for line in 0..FAILURES_KEPT_MAX + 5 {
            r.record(
                "f",
                Some(line),
                StepOutcome::Failed(vec![Problem::Error("x".into())]),
            );
        }
        let mut total = Report::default();
        total.merge(r);
        assert_eq!(total.failures.len(), FAILURES_KEPT_MAX);
        assert_eq!(total.failures_dropped, 5);
        assert_eq!(total.failed, FAILURES_KEPT_MAX as u64 + 5);
        assert!(total
            .to_string()
            .ends_with("and 5 more problems not shown\n0 passed, 10005 failed\n"));
    }
}
