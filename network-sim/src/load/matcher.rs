//! Pairing answers with requests on pipelined lanes, and reading what an answer says.
//!
//! Requests on one lane are matched by STAN (DE 11) and transmission time (DE 7), the key
//! acquirers use. Two requests in flight can share the key only when one duplicates the
//! other; the engine answers them in order, so the oldest is taken first. A format-error
//! answer to a frame whose bitmap was unreadable carries no STAN: it goes to the oldest
//! such frame on its lane.

use std::collections::{HashMap, VecDeque};

use cardcore_core::iso8583::{parse, salvage, Mti};

/// Decline reasons kept apart in the counts; further distinct ones are counted as
/// [`OTHER_REASON`] (the server decides what DE 63 holds, so its variety is bounded here).
pub const DISTINCT_REASONS_MAX: usize = 256;
/// The longest DE 63 reason counted as it is.
pub const REASON_LEN_MAX: usize = 64;
pub const OTHER_REASON: &str = "(other)";

/// What an answer says, as far as it can be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerSummary {
    pub mti: Option<Mti>,
    pub stan: Option<u32>,
    pub transmission: Option<[u8; 10]>,
    /// DE 39.
    pub response_code: Option<[u8; 2]>,
    /// DE 63 before the `/`: the decline reason.
    pub reason: Option<String>,
    /// DE 63 after the `/`: the detailed decline reason.
    pub detailed_reason: Option<String>,
    /// The answer did not parse (MTI and STAN were salvaged where possible).
    pub unreadable: bool,
}

impl AnswerSummary {
    pub fn approved(&self) -> bool {
        self.response_code == Some(*b"00")
    }

    /// DE 39 as text, `"??"` when absent or unreadable.
    pub fn code_text(&self) -> String {
        match self.response_code {
            Some(code) if code.iter().all(u8::is_ascii_alphanumeric) => {
                String::from_utf8_lossy(&code).into_owned()
            }
            _ => "??".to_owned(),
        }
    }
}

/// Reads an answer. Never fails: what cannot be read is left `None`.
pub fn read_answer(bytes: &[u8]) -> AnswerSummary {
    let Ok(m) = parse(bytes) else {
        let s = salvage(bytes);
        return AnswerSummary {
            mti: s.mti,
            stan: s.stan,
            unreadable: true,
            ..AnswerSummary::default()
        };
    };
    let transmission = m.get(7).and_then(|t| <[u8; 10]>::try_from(t).ok());
    let (reason, detailed_reason) = match m.get(63).and_then(|r| std::str::from_utf8(r).ok()) {
        Some(text) => split_reason(text),
        None => (None, None),
    };
    AnswerSummary {
        mti: Some(m.mti()),
        stan: m.stan(),
        transmission,
        response_code: m.response_code(),
        reason,
        detailed_reason,
        unreadable: false,
    }
}

/// `REASON` or `REASON/DETAILED_REASON`; over-long parts are cut.
fn split_reason(text: &str) -> (Option<String>, Option<String>) {
    let clean = |s: &str| -> Option<String> {
        let s = s.trim();
        (!s.is_empty()).then(|| s.chars().take(REASON_LEN_MAX).collect())
    };
    match text.split_once('/') {
        Some((reason, detailed)) => (clean(reason), clean(detailed)),
        None => (clean(text), None),
    }
}

/// Requests waiting for answers, per lane.
#[derive(Debug, Default)]
pub struct Matcher {
    lanes: Vec<LaneWaiting>,
}

#[derive(Debug, Default)]
struct LaneWaiting {
    /// By STAN: (seq, DE 7) in send order.
    by_stan: HashMap<u32, VecDeque<(u64, [u8; 10])>>,
    /// Requests whose answer cannot carry a STAN, in send order.
    unkeyed: VecDeque<u64>,
}

impl Matcher {
    pub fn new(lanes: usize) -> Matcher {
        Matcher {
            lanes: (0..lanes).map(|_| LaneWaiting::default()).collect(),
        }
    }

    /// Records request `seq` on `lane`.
    pub fn expect(
        &mut self,
        lane: usize,
        seq: u64,
        stan: u32,
        transmission: [u8; 10],
        keyed: bool,
    ) {
        let Some(l) = self.lanes.get_mut(lane) else {
            return;
        };
        if keyed {
            l.by_stan
                .entry(stan)
                .or_default()
                .push_back((seq, transmission));
        } else {
            l.unkeyed.push_back(seq);
        }
    }

    /// The request an answer on `lane` belongs to, taken out of the waiting set.
    pub fn take(&mut self, lane: usize, answer: &AnswerSummary) -> Option<u64> {
        let l = self.lanes.get_mut(lane)?;
        if let Some(stan) = answer.stan {
            if let Some(waiting) = l.by_stan.get_mut(&stan) {
                let at = match answer.transmission {
                    Some(t) => waiting.iter().position(|&(_, sent)| sent == t),
                    None => (!waiting.is_empty()).then_some(0),
                };
                if let Some(at) = at {
                    let seq = waiting.remove(at).map(|(seq, _)| seq);
                    if waiting.is_empty() {
                        l.by_stan.remove(&stan);
                    }
                    return seq;
                }
            }
        }
        // Only a format error can answer a frame whose STAN was unreadable.
        let format_error = answer.response_code == Some(*b"30") || answer.unreadable;
        if format_error {
            return l.unkeyed.pop_front();
        }
        None
    }

    /// Drops a request that will not be answered (timed out).
    pub fn forget(&mut self, lane: usize, seq: u64, stan: u32) {
        let Some(l) = self.lanes.get_mut(lane) else {
            return;
        };
        if let Some(waiting) = l.by_stan.get_mut(&stan) {
            waiting.retain(|&(s, _)| s != seq);
            if waiting.is_empty() {
                l.by_stan.remove(&stan);
            }
        }
        l.unkeyed.retain(|&s| s != seq);
    }

    /// Drops everything waiting on a lane that closed.
    pub fn clear_lane(&mut self, lane: usize) {
        if let Some(l) = self.lanes.get_mut(lane) {
            *l = LaneWaiting::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcore_core::iso8583::MessageBuilder;

    const T1: [u8; 10] = *b"0115100000";
    const T2: [u8; 10] = *b"0115100001";

    fn answer(stan: Option<u32>, t: Option<[u8; 10]>, code: &[u8; 2]) -> AnswerSummary {
        AnswerSummary {
            stan,
            transmission: t,
            response_code: Some(*code),
            ..AnswerSummary::default()
        }
    }

    #[test]
    fn matches_by_stan_and_time_in_any_order() {
        let mut m = Matcher::new(2);
        m.expect(0, 10, 5, T1, true);
        m.expect(0, 11, 5, T2, true);
        m.expect(1, 12, 6, T1, true);
        assert_eq!(m.take(0, &answer(Some(5), Some(T2), b"00")), Some(11));
        assert_eq!(m.take(1, &answer(Some(6), Some(T1), b"00")), Some(12));
        assert_eq!(m.take(0, &answer(Some(5), Some(T1), b"00")), Some(10));
        assert_eq!(m.take(0, &answer(Some(5), Some(T1), b"00")), None);
        assert_eq!(m.take(9, &answer(Some(5), Some(T1), b"00")), None);
    }

    #[test]
    fn duplicates_are_answered_oldest_first() {
        let mut m = Matcher::new(1);
        m.expect(0, 1, 7, T1, true);
        m.expect(0, 2, 7, T1, true);
        assert_eq!(m.take(0, &answer(Some(7), Some(T1), b"00")), Some(1));
        assert_eq!(m.take(0, &answer(Some(7), None, b"30")), Some(2));
    }

    #[test]
    fn format_errors_without_stan_go_to_unkeyed_frames() {
        let mut m = Matcher::new(1);
        m.expect(0, 1, 7, T1, true);
        m.expect(0, 2, 8, T1, false);
        m.expect(0, 3, 9, T1, false);
        assert_eq!(m.take(0, &answer(None, None, b"00")), None);
        assert_eq!(m.take(0, &answer(None, None, b"30")), Some(2));
        m.forget(0, 3, 9);
        assert_eq!(m.take(0, &answer(None, None, b"30")), None);
        m.clear_lane(0);
        assert_eq!(m.take(0, &answer(Some(7), Some(T1), b"00")), None);
    }

    #[test]
    fn reads_code_and_reasons() {
        let mut b = MessageBuilder::new(Mti::AuthorizationResponse);
        b.set_stan(42).unwrap();
        b.set_str(7, "0115100000").unwrap();
        b.set_response_code(b"51").unwrap();
        b.set_str(
            63,
            "INSUFFICIENT_FUNDS/INSUFFICIENT_FUNDS_FOR_BLOCKED_SMART_CONVERSION",
        )
        .unwrap();
        let a = read_answer(&b.to_vec());
        assert_eq!(a.stan, Some(42));
        assert_eq!(a.transmission, Some(T1));
        assert_eq!(a.code_text(), "51");
        assert!(!a.approved());
        assert_eq!(a.reason.as_deref(), Some("INSUFFICIENT_FUNDS"));
        assert_eq!(
            a.detailed_reason.as_deref(),
            Some("INSUFFICIENT_FUNDS_FOR_BLOCKED_SMART_CONVERSION")
        );
        let bad = read_answer(b"0110ZZZZ");
        assert!(bad.unreadable);
        assert_eq!(bad.mti, Some(Mti::AuthorizationResponse));
        assert_eq!(bad.code_text(), "??");
        assert_eq!(
            split_reason("CARD_FROZEN"),
            (Some("CARD_FROZEN".into()), None)
        );
        assert_eq!(split_reason(" "), (None, None));
    }
}
