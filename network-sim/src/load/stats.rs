//! What a run measures: the latency histogram, throughput per second, and counts by MTI,
//! action, response code and decline reason.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::matcher::{AnswerSummary, DISTINCT_REASONS_MAX, OTHER_REASON};
use super::mix::Action;

/// The largest latency recorded as it is (an hour, in microseconds); longer ones are
/// recorded as this.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Significant digits the histogram keeps (0.1% resolution).
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;
/// The longest run the per-second throughput timeline covers (a week).
pub const TIMELINE_SECONDS_MAX: usize = 7 * 24 * 3600;

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
}

impl Default for RunStats {
    fn default() -> RunStats {
        RunStats::new()
    }
}

impl RunStats {
    pub fn new() -> RunStats {
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
    fn reason_variety_is_bounded() {
        let mut map = BTreeMap::new();
        for i in 0..DISTINCT_REASONS_MAX + 10 {
            count_bounded(&mut map, &format!("R{i}"));
        }
        assert_eq!(map.len(), DISTINCT_REASONS_MAX + 1);
        assert_eq!(map[OTHER_REASON], 10);
    }
}
