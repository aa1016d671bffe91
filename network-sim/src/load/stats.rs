//! What a run measures: the latency histogram, throughput per second, the latency of each
//! interval of the run (a time series, so a drift over a long run shows), and counts by MTI,
//! action, response code and decline reason.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use serde::Serialize;

use super::matcher::{AnswerSummary, DISTINCT_REASONS_MAX, OTHER_REASON};
use super::mix::Action;
use super::report::Latency;

/// The largest latency recorded as it is (an hour, in microseconds); longer ones are
/// recorded as this.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Significant digits the histogram keeps (0.1% resolution).
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;
/// The longest run the per-second throughput timeline covers (a week).
pub const TIMELINE_SECONDS_MAX: usize = 7 * 24 * 3600;
/// The length of one interval of the latency time series unless the run says otherwise.
pub const REPORT_INTERVAL_DEFAULT: Duration = Duration::from_secs(10);
/// Intervals a run keeps (a week of 10-second intervals); answers after the last one are
/// counted in it.
pub const INTERVALS_MAX: usize = 7 * 24 * 360;

/// Counters and the histogram of one run.
#[derive(Debug, Clone)]
pub struct RunStats {
    pub latency_us: Histogram<u64>,
    /// Open loop: how late each request was sent after its scheduled time. Large values
    /// mean the load generator, not the engine, could not keep the rate.
    pub send_lag_us: Histogram<u64>,
    pub sent: u64,
    pub answered: u64,
    /// Sent, no answer within the response timeout (or the lane closed first).
    pub unanswered: u64,
    /// Not sent: the lane was closed.
    pub unsent: u64,
    /// Answers that matched no request waiting.
    pub unmatched_answers: u64,
    /// Answers that did not parse.
    pub unreadable_answers: u64,
    /// Declined answers without a DE 63 reason.
    pub declines_without_reason: u64,
    pub by_mti: BTreeMap<String, u64>,
    pub by_action: BTreeMap<String, u64>,
    pub by_response_code: BTreeMap<String, u64>,
    pub by_decline_reason: BTreeMap<String, u64>,
    pub by_detailed_decline_reason: BTreeMap<String, u64>,
    /// Answers received in each second of the run.
    pub answered_per_s: Vec<u64>,
    /// The latency time series: one entry per finished interval.
    pub intervals: Vec<IntervalStats>,
    /// The interval being filled: its latencies (reset when it closes) and its index.
    interval: Duration,
    interval_latency_us: Histogram<u64>,
    interval_index: u64,
    interval_answered: u64,
}

/// The answers of one interval of the run: those received from `start_s` (seconds since
/// the traffic started) to `end_s`, and their latency percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IntervalStats {
    pub start_s: f64,
    pub end_s: f64,
    pub answered: u64,
    pub latency_us: Latency,
}

impl Default for RunStats {
    fn default() -> RunStats {
        RunStats::new()
    }
}

impl RunStats {
    pub fn new() -> RunStats {
        RunStats::with_interval(REPORT_INTERVAL_DEFAULT)
    }

    /// Counters whose latency time series has one entry per `interval` (at least 1 ms).
    pub fn with_interval(interval: Duration) -> RunStats {
        let histogram = || {
            Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS)
                .expect("constant histogram bounds are valid")
        };
        RunStats {
            latency_us: histogram(),
            send_lag_us: histogram(),
            sent: 0,
            answered: 0,
            unanswered: 0,
            unsent: 0,
            unmatched_answers: 0,
            unreadable_answers: 0,
            declines_without_reason: 0,
            by_mti: BTreeMap::new(),
            by_action: BTreeMap::new(),
            by_response_code: BTreeMap::new(),
            by_decline_reason: BTreeMap::new(),
            by_detailed_decline_reason: BTreeMap::new(),
            answered_per_s: Vec::new(),
            intervals: Vec::new(),
            interval: interval.max(Duration::from_millis(1)),
            interval_latency_us: histogram(),
            interval_index: 0,
            interval_answered: 0,
        }
    }

    pub fn on_sent(&mut self, mti: &str, action: Action) {
        self.sent += 1;
        *self.by_mti.entry(mti.to_owned()).or_default() += 1;
        *self
            .by_action
            .entry(action.as_str().to_owned())
            .or_default() += 1;
    }

    /// An open-loop request sent `lag` after its scheduled time.
    pub fn on_send_lag(&mut self, lag: Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.send_lag_us.saturating_record(us.max(1));
    }

    /// An answer matched to its request: `latency` from the request's start (scheduled
    /// send time in open loop), `at` since the run started.
    pub fn on_answer(&mut self, answer: &AnswerSummary, latency: Duration, at: Duration) {
        self.answered += 1;
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        // Below the histogram's lowest value (1 µs) counts as 1 µs.
        self.latency_us.saturating_record(us.max(1));
        self.record_in_interval(us.max(1), at);
        if answer.unreadable {
            self.unreadable_answers += 1;
        }
        *self.by_response_code.entry(answer.code_text()).or_default() += 1;
        if !answer.approved() {
            match &answer.reason {
                Some(reason) => count_bounded(&mut self.by_decline_reason, reason),
                None => self.declines_without_reason += 1,
            }
            if let Some(detailed) = &answer.detailed_reason {
                count_bounded(&mut self.by_detailed_decline_reason, detailed);
            }
        }
        let second = at.as_secs() as usize;
        if second < TIMELINE_SECONDS_MAX {
            if self.answered_per_s.len() <= second {
                self.answered_per_s.resize(second + 1, 0);
            }
            self.answered_per_s[second] += 1;
        }
    }
}

impl RunStats {
    /// Counts a latency in the interval of `at`. Answers reach the runner nearly in time
    /// order; one that belongs to an interval already closed counts in the current one.
    fn record_in_interval(&mut self, us: u64, at: Duration) {
        let index = u64::try_from(at.as_nanos() / self.interval.as_nanos()).unwrap_or(u64::MAX);
        let last = INTERVALS_MAX as u64 - 1;
        let index = index.min(last);
        while self.interval_index < index {
            self.close_interval(None);
        }
        self.interval_latency_us.saturating_record(us);
        self.interval_answered += 1;
    }

    /// Closes the interval being filled (which ends at `end`, or after a whole interval),
    /// and starts the next one. Empty intervals are kept: a stall shows as a gap.
    fn close_interval(&mut self, end: Option<Duration>) {
        let index = u32::try_from(self.interval_index).unwrap_or(u32::MAX);
        let start = self.interval.saturating_mul(index);
        let end = end.unwrap_or(start + self.interval).max(start);
        self.intervals.push(IntervalStats {
            start_s: start.as_secs_f64(),
            end_s: end.as_secs_f64(),
            answered: self.interval_answered,
            latency_us: Latency::of(&self.interval_latency_us),
        });
        self.interval_latency_us.reset();
        self.interval_answered = 0;
        self.interval_index += 1;
    }

    /// Closes the intervals up to `end` (the end of the traffic, since its start): the last
    /// one is usually shorter than the others.
    pub fn finish_intervals(&mut self, end: Duration) {
        let index = u64::try_from(end.as_nanos() / self.interval.as_nanos()).unwrap_or(u64::MAX);
        let index = index.min(INTERVALS_MAX as u64 - 1);
        while self.interval_index < index {
            self.close_interval(None);
        }
        if self.interval_answered > 0 || self.intervals.is_empty() {
            self.close_interval(Some(end));
        }
    }
}

fn count_bounded(map: &mut BTreeMap<String, u64>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else if map.len() < DISTINCT_REASONS_MAX {
        map.insert(key.to_owned(), 1);
    } else {
        *map.entry(OTHER_REASON.to_owned()).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: &[u8; 2], reason: Option<&str>) -> AnswerSummary {
        AnswerSummary {
            response_code: Some(*code),
            reason: reason.map(str::to_owned),
            ..AnswerSummary::default()
        }
    }

    #[test]
    fn counts_codes_reasons_and_seconds() {
        let mut s = RunStats::new();
        s.on_sent("0100", Action::Purchase);
        s.on_sent("0100", Action::Purchase);
        s.on_sent("0220", Action::Clearing);
        s.on_answer(
            &answer(b"00", None),
            Duration::from_micros(80),
            Duration::from_millis(10),
        );
        s.on_answer(
            &answer(b"51", Some("INSUFFICIENT_FUNDS")),
            Duration::from_micros(120),
            Duration::from_millis(2_500),
        );
        s.on_answer(
            &answer(b"25", None),
            Duration::ZERO,
            Duration::from_millis(2_600),
        );
        assert_eq!(s.by_mti["0100"], 2);
        assert_eq!(s.by_action["clearing"], 1);
        assert_eq!(s.by_response_code["00"], 1);
        assert_eq!(s.by_decline_reason["INSUFFICIENT_FUNDS"], 1);
        assert_eq!(s.declines_without_reason, 1);
        assert_eq!(s.answered_per_s, vec![1, 0, 2]);
        assert_eq!(s.latency_us.len(), 3);
        assert_eq!(s.latency_us.min(), 1);
        assert!((119..=121).contains(&s.latency_us.max()));
    }

    #[test]
    fn each_interval_has_its_own_percentiles_and_a_stall_leaves_an_empty_one() {
        let mut s = RunStats::with_interval(Duration::from_secs(10));
        let ok = answer(b"00", None);
        // Interval 0: 100 answers at 100 µs; interval 1: nothing; interval 2: 99 answers at
        // 200 µs and one at 5 ms; then a partial interval 3 ending at 31.5 s.
        for i in 0..100 {
            s.on_answer(
                &ok,
                Duration::from_micros(100),
                Duration::from_millis(i * 50),
            );
        }
        for i in 0..100 {
            let latency = if i == 99 { 5_000 } else { 200 };
            let at = Duration::from_millis(20_000 + i * 50);
            s.on_answer(&ok, Duration::from_micros(latency), at);
        }
        s.on_answer(
            &ok,
            Duration::from_micros(300),
            Duration::from_millis(31_500),
        );
        s.finish_intervals(Duration::from_millis(31_500));
        let answered: Vec<u64> = s.intervals.iter().map(|i| i.answered).collect();
        assert_eq!(answered, [100, 0, 100, 1]);
        let starts: Vec<f64> = s.intervals.iter().map(|i| i.start_s).collect();
        assert_eq!(starts, [0.0, 10.0, 20.0, 30.0]);
        assert_eq!(s.intervals[3].end_s, 31.5);
        let near = |got: u64, want: u64| got.abs_diff(want) <= want / 100;
        assert!(near(s.intervals[0].latency_us.p99, 100));
        assert_eq!(s.intervals[1].latency_us, Latency::default());
        // The histogram was reset: interval 2 does not see interval 0's values.
        assert!(near(s.intervals[2].latency_us.p50, 200));
        assert!(near(s.intervals[2].latency_us.max, 5_000));
        assert!(near(s.intervals[2].latency_us.p99, 200));
        assert!(near(s.intervals[3].latency_us.p50, 300));
        // The whole-run histogram has them all.
        assert_eq!(s.latency_us.len(), 201);
    }

    #[test]
    fn a_late_answer_counts_in_the_current_interval_and_a_run_ends_on_a_boundary() {
        let mut s = RunStats::with_interval(Duration::from_secs(1));
        let ok = answer(b"00", None);
        s.on_answer(&ok, Duration::from_micros(10), Duration::from_millis(1_500));
        s.on_answer(&ok, Duration::from_micros(10), Duration::from_millis(900));
        s.finish_intervals(Duration::from_secs(2));
        let answered: Vec<u64> = s.intervals.iter().map(|i| i.answered).collect();
        assert_eq!(answered, [0, 2]);
        assert_eq!(s.intervals[1].end_s, 2.0);
        let mut empty = RunStats::with_interval(Duration::from_secs(1));
        empty.finish_intervals(Duration::ZERO);
        assert_eq!(empty.intervals.len(), 1);
        assert_eq!(empty.intervals[0].answered, 0);
    }

    #[test]
    fn reason_variety_is_bounded() {
        let mut map = BTreeMap::new();
        for i in 0..DISTINCT_REASONS_MAX + 10 {
            count_bounded(&mut map, &format!("R{i}"));
        }
        assert_eq!(map.len(), DISTINCT_REASONS_MAX + 1);
        assert_eq!(map[OTHER_REASON], 10);
    }
}
