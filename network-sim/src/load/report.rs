//! The report of a load run: `report.json` (the keys of the contract in
//! SCENARIO-FORMAT.md, "Load generation and its report", plus extras), a text rendering
//! for the terminal that ends with the reconciliation verdict, and the SVG plot.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::ledger::{Amounts, LedgerStats, Reconciliation};
use super::stats::{IntervalStats, RunStats};
use super::svg;

/// Mismatches the text rendering lists (report.json keeps more).
const MISMATCHES_SHOWN_MAX: usize = 10;
/// Invariant violations a report lists in full.
pub const VIOLATIONS_KEPT_MAX: usize = 50;
/// Ticks per half distance when the percentile curve is sampled from the histogram.
const CURVE_TICKS_PER_HALF: u32 = 5;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    /// The percentiles of a histogram (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One point of the percentile curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PercentilePoint {
    /// 0 to 100.
    pub percentile: f64,
    pub latency_us: u64,
}

/// How the run was set up, without any key or card data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigSummary {
    pub target: String,
    pub cards: usize,
    pub profiles: usize,
    /// `open_loop` or `closed_loop`.
    pub pacing: String,
    pub rate_per_s: Option<u64>,
    pub concurrency: Option<usize>,
    pub connections: usize,
    pub messages_limit: Option<u64>,
    pub duration_limit_s: Option<f64>,
    pub zipf_exponent: f64,
    pub sim_ms_per_message: i64,
    pub clock_jump_every_messages: Option<u64>,
    pub clock_jump_ms: Option<i64>,
    pub response_timeout_ms: u64,
    /// The length of one entry of `intervals`.
    pub report_interval_s: f64,
}

/// The report. The first nine fields are the contract; the rest are extras.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// Requests sent, all MTIs.
    pub messages: u64,
    pub duration_s: f64,
    /// Answered requests per second.
    pub throughput_per_s: f64,
    pub latency_us: Latency,
    pub by_response_code: BTreeMap<String, u64>,
    pub by_decline_reason: BTreeMap<String, u64>,
    pub reconciliation: Reconciliation,
    pub invariants_ok: bool,

    pub seed: u64,
    pub config: ConfigSummary,
    /// Open loop: how late requests left after their scheduled time (all zero in closed
    /// loop). When this approaches the latency, the generator was the bottleneck.
    pub send_lag_us: Latency,
    pub by_mti: BTreeMap<String, u64>,
    pub by_action: BTreeMap<String, u64>,
    pub by_detailed_decline_reason: BTreeMap<String, u64>,
    pub answered: u64,
    pub unanswered: u64,
    pub unsent: u64,
    pub unmatched_answers: u64,
    pub unreadable_answers: u64,
    pub declines_without_reason: u64,
    pub invariant_violations: Vec<String>,
    pub ledger: LedgerSummary,
    /// Answers per second over the run.
    pub throughput_timeline_per_s: Vec<u64>,
    pub latency_percentiles: Vec<PercentilePoint>,
    /// The latency time series: answers and percentiles of each interval of
    /// `config.report_interval_s` since the traffic started (the last one may be shorter).
    pub intervals: Vec<IntervalStats>,
}

/// What the expected ledger went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerSummary {
    #[serde(flatten)]
    pub applied: LedgerStats,
    pub open_at_end: usize,
    pub clock_jumps: u64,
    /// The engine clock at the end (RFC 3339).
    pub engine_clock_end: String,
}

/// Everything a report is made from.
#[derive(Debug)]
pub struct ReportInputs {
    pub seed: u64,
    pub config: ConfigSummary,
    pub stats: RunStats,
    pub duration_s: f64,
    pub reconciliation: Reconciliation,
    pub invariant_violations: Vec<String>,
    pub ledger: LedgerSummary,
}

impl LoadReport {
    pub fn new(inputs: ReportInputs) -> LoadReport {
        let ReportInputs {
            seed,
            config,
            stats,
            duration_s,
            reconciliation,
            mut invariant_violations,
            ledger,
        } = inputs;
        let h = &stats.latency_us;
        let latency_us = Latency::of(h);
        let latency_percentiles = h
            .iter_quantiles(CURVE_TICKS_PER_HALF)
            .map(|v| PercentilePoint {
                percentile: v.quantile_iterated_to() * 100.0,
                latency_us: h.highest_equivalent(v.value_iterated_to()),
            })
            .collect();
        let invariants_ok = invariant_violations.is_empty();
        invariant_violations.truncate(VIOLATIONS_KEPT_MAX);
        let throughput_per_s = if duration_s > 0.0 {
            stats.answered as f64 / duration_s
        } else {
            0.0
        };
        LoadReport {
            messages: stats.sent,
            duration_s,
            throughput_per_s,
            latency_us,
            by_response_code: stats.by_response_code,
            by_decline_reason: stats.by_decline_reason,
            reconciliation,
            invariants_ok,
            seed,
            config,
            send_lag_us: Latency::of(&stats.send_lag_us),
            by_mti: stats.by_mti,
            by_action: stats.by_action,
            by_detailed_decline_reason: stats.by_detailed_decline_reason,
            answered: stats.answered,
            unanswered: stats.unanswered,
            unsent: stats.unsent,
            unmatched_answers: stats.unmatched_answers,
            unreadable_answers: stats.unreadable_answers,
            declines_without_reason: stats.declines_without_reason,
            invariant_violations,
            ledger,
            throughput_timeline_per_s: stats.answered_per_s,
            latency_percentiles,
            intervals: stats.intervals,
        }
    }

    /// The run passes when every balance reconciles and the engine's invariants hold.
    pub fn is_success(&self) -> bool {
        self.reconciliation.ok && self.invariants_ok
    }

    pub fn to_json(&self) -> String {
        // Every field is a plain number, string, map with string keys or list.
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// Writes `report.json` and `latency.svg` into `dir` (created if missing); returns the
    /// paths written.
    pub fn write_to_dir(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let json = dir.join("report.json");
        std::fs::write(&json, self.to_json())?;
        let plot = dir.join("latency.svg");
        std::fs::write(&plot, svg::latency_plot(self))?;
        Ok(vec![json, plot])
    }

    /// The last line of the text rendering.
    pub fn verdict_line(&self) -> String {
        let r = &self.reconciliation;
        let reconciliation = if r.ok {
            format!(
                "reconciliation: OK, {} balances match to the minor unit",
                group(r.balances_checked as u64)
            )
        } else {
            format!(
                "reconciliation: FAILED, {} of {} balances differ by {} minor units in total",
                group(r.mismatch_count as u64),
                group(r.balances_checked as u64),
                group(r.difference_minor)
            )
        };
        let invariants = if self.invariants_ok { "OK" } else { "FAILED" };
        format!("{reconciliation}; invariants: {invariants}")
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let pacing = match (c.rate_per_s, c.concurrency) {
            (Some(rate), _) => format!("open loop at {}/s", group(rate)),
            (None, Some(n)) => format!("closed loop, {n} in flight"),
            (None, None) => c.pacing.clone(),
        };
        writeln!(
            f,
            "load: {} messages in {:.1} s, {} answered/s ({pacing}, {} connections, {} cards, seed {})",
            group(self.messages),
            self.duration_s,
            group(self.throughput_per_s.round() as u64),
            c.connections,
            group(c.cards as u64),
            self.seed
        )?;
        let l = &self.latency_us;
        writeln!(
            f,
            "latency (µs): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            group(l.p50),
            group(l.p90),
            group(l.p99),
            group(l.p999),
            group(l.max)
        )?;
        if c.rate_per_s.is_some() {
            let g = &self.send_lag_us;
            writeln!(
                f,
                "sent behind the timetable (µs): p50 {}  p99 {}  max {}",
                group(g.p50),
                group(g.p99),
                group(g.max)
            )?;
        }
        counts(f, "by MTI", &self.by_mti, self.messages)?;
        counts(f, "by action", &self.by_action, self.messages)?;
        counts(f, "by response code", &self.by_response_code, self.answered)?;
        counts(
            f,
            "by decline reason",
            &self.by_decline_reason,
            self.answered,
        )?;
        counts(
            f,
            "by detailed decline reason",
            &self.by_detailed_decline_reason,
            self.answered,
        )?;
        writeln!(
            f,
            "answered {}, unanswered {}, unsent {}, unmatched answers {}, unreadable answers {}",
            group(self.answered),
            group(self.unanswered),
            group(self.unsent),
            group(self.unmatched_answers),
            group(self.unreadable_answers)
        )?;
        self.fmt_ledger(f)?;
        self.fmt_problems(f)?;
        writeln!(f, "{}", self.verdict_line())
    }
}

impl LoadReport {
    /// The first mismatches and every invariant violation kept.
    fn fmt_problems(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self
            .reconciliation
            .mismatches
            .iter()
            .take(MISMATCHES_SHOWN_MAX);
        for m in shown {
            let engine = match m.actual {
                Some(a) => amounts(a),
                None => "no balance".to_owned(),
            };
            writeln!(
                f,
                "  profile {} {}: expected {}, engine {} (differs by {})",
                m.profile,
                m.currency,
                amounts(m.expected),
                engine,
                group(m.difference_minor)
            )?;
        }
        let hidden = self
            .reconciliation
            .mismatch_count
            .saturating_sub(MISMATCHES_SHOWN_MAX);
        if hidden > 0 {
            writeln!(
                f,
                "  ... and {} more (report.json lists up to 50)",
                group(hidden as u64)
            )?;
        }
        for v in &self.invariant_violations {
            writeln!(f, "  invariant violated: {v}")?;
        }
        Ok(())
    }

    fn fmt_ledger(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.ledger.applied;
        writeln!(
            f,
            "expected ledger: {} holds, {} increments, {} clearings, {} reversals, {} posted, \
             {} credited, {} expired, {} open at the end, {} clock jumps",
            group(s.holds),
            group(s.increments),
            group(s.clearings),
            group(s.reversals),
            group(s.posted),
            group(s.credited),
            group(s.expired),
            group(self.ledger.open_at_end as u64),
            self.ledger.clock_jumps
        )?;
        if s.unexplained > 0 {
            writeln!(
                f,
                "  {} approvals the simulator could not place on an open authorisation",
                group(s.unexplained)
            )?;
        }
        Ok(())
    }
}

/// `available A, reserved R, cash C` in minor units.
fn amounts(a: Amounts) -> String {
    format!(
        "available {}, reserved {}, cash {}",
        a.available, a.reserved, a.cash
    )
}

/// `label: KEY n (p%)  KEY n (p%) ...`, largest first; nothing when empty.
fn counts(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    map: &BTreeMap<String, u64>,
    total: u64,
) -> fmt::Result {
    if map.is_empty() {
        return Ok(());
    }
    let mut entries: Vec<(&String, &u64)> = map.iter().collect();
    entries.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    write!(f, "{label}:")?;
    for (i, (key, &n)) in entries.into_iter().enumerate() {
        let percent = if total > 0 {
            n as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        let gap = if i == 0 { " " } else { "  " };
        write!(f, "{gap}{key} {} ({percent:.1}%)", group(n))?;
    }
    writeln!(f)
}

/// 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::load::matcher::AnswerSummary;
    use crate::load::mix::Action;
    use std::time::Duration;

    pub(crate) fn sample() -> LoadReport {
        let mut stats = RunStats::with_interval(Duration::from_secs(1));
        for i in 0..1_000u64 {
            stats.on_sent("0100", Action::Purchase);
            let code = if i % 10 == 0 { *b"51" } else { *b"00" };
            let answer = AnswerSummary {
                response_code: Some(code),
                reason: (i % 10 == 0).then(|| "INSUFFICIENT_FUNDS".to_owned()),
                ..AnswerSummary::default()
            };
            stats.on_answer(
                &answer,
                Duration::from_micros(50 + i),
                Duration::from_millis(i * 2),
            );
        }
        stats.finish_intervals(Duration::from_millis(1_998));
        LoadReport::new(ReportInputs {
            seed: 42,
            config: ConfigSummary {
                target: "in-process".into(),
                cards: 100,
                profiles: 50,
                pacing: "open_loop".into(),
                rate_per_s: Some(500),
                concurrency: None,
                connections: 2,
                messages_limit: Some(1_000),
                duration_limit_s: None,
                zipf_exponent: 0.8,
                sim_ms_per_message: 10,
                clock_jump_every_messages: None,
                clock_jump_ms: None,
                response_timeout_ms: 5_000,
                report_interval_s: 1.0,
            },
            stats,
            duration_s: 2.0,
            reconciliation: Reconciliation {
                ok: true,
                balances_checked: 75,
                ..Reconciliation::default()
            },
            invariant_violations: Vec::new(),
            ledger: LedgerSummary {
                applied: LedgerStats::default(),
                open_at_end: 3,
                clock_jumps: 0,
                engine_clock_end: "2026-01-15T10:00:00.000Z".into(),
            },
        })
    }

    #[test]
    fn json_has_the_contract_keys_with_their_types() {
        let report = sample();
        let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(v["messages"], 1_000);
        assert!(v["duration_s"].is_f64());
        assert_eq!(v["throughput_per_s"], 500.0);
        for key in ["p50", "p90", "p99", "p999", "max"] {
            assert!(v["latency_us"][key].is_u64(), "latency_us.{key}");
        }
        assert_eq!(v["latency_us"]["max"], 1_049);
        assert!((548..=551).contains(&v["latency_us"]["p50"].as_u64().unwrap()));
        assert_eq!(v["by_response_code"]["00"], 900);
        assert_eq!(v["by_response_code"]["51"], 100);
        assert_eq!(v["by_decline_reason"]["INSUFFICIENT_FUNDS"], 100);
        assert_eq!(v["reconciliation"]["ok"], true);
        assert_eq!(v["reconciliation"]["difference_minor"], 0);
        assert_eq!(v["invariants_ok"], true);
        assert_eq!(v["seed"], 42);
        assert_eq!(v["by_mti"]["0100"], 1_000);
        assert_eq!(v["config"]["rate_per_s"], 500);
        assert_eq!(v["throughput_timeline_per_s"].as_array().unwrap().len(), 2);
        assert_eq!(v["ledger"]["open_at_end"], 3);
        let intervals = v["intervals"].as_array().unwrap();
        assert_eq!(intervals.len(), 2);
        assert_eq!(intervals[1]["start_s"], 1.0);
        assert_eq!(intervals[1]["answered"], 500);
        // The second second's answers took 550 to 1,049 µs.
        assert!(intervals[1]["latency_us"]["p50"].as_u64().unwrap() > 549);
        assert_eq!(v["config"]["report_interval_s"], 1.0);
        let curve = v["latency_percentiles"].as_array().unwrap();
        assert!(curve.len() > 10);
        assert_eq!(curve.last().unwrap()["percentile"], 100.0);
    }

    #[test]
    fn text_ends_with_the_verdict() {
        let mut report = sample();
        let text = report.to_string();
        assert!(text.starts_with("load: 1,000 messages in 2.0 s, 500 answered/s"));
        assert!(text.contains("00 900 (90.0%)"));
        assert!(text
            .trim_end()
            .ends_with("reconciliation: OK, 75 balances match to the minor unit; invariants: OK"));
        assert!(report.is_success());
        report.reconciliation.ok = false;
        report.reconciliation.mismatch_count = 2;
        report.reconciliation.difference_minor = 1_234;
        report.invariants_ok = false;
        assert!(!report.is_success());
        assert_eq!(
            report.verdict_line(),
            "reconciliation: FAILED, 2 of 75 balances differ by 1,234 minor units in total; \
             invariants: FAILED"
        );
    }

    #[test]
    fn writes_json_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let paths = sample().write_to_dir(&dir.path().join("out")).unwrap();
        assert_eq!(paths.len(), 2);
        let json = std::fs::read_to_string(&paths[0]).unwrap();
        assert!(json.contains("\"throughput_per_s\""));
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(svg.starts_with("<svg"));
    }

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
