//! Why a decision came out as it did: every check that ran, in order, with the values it
//! compared, kept with the transaction so an operator can answer "why was this declined"
//! without reading code. It holds no PAN, PIN or key: only statuses, ids and amounts.

use cardcore_core::{CardStatus, Channel, Money, ProfileStatus, RuleId};
use serde::{Deserialize, Serialize};

/// The checks of the pipeline, in precedence order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Check {
    CardStatus,
    ProfileStatus,
    ExpiryDate,
    Cvv2,
    Permission,
    Pin,
    Currency,
    SpendControls,
    CardTransactionLimit,
    CardDailyLimit,
    CardMonthlyLimit,
    CardLifetimeLimit,
    ProfileDailyLimit,
    ProfileMonthlyLimit,
    Funds,
    /// A stand-in advice: the network approved; the issuer records it whatever the checks.
    StandIn,
    /// A follow-up message (clearing, reversal) matched to its original.
    Original,
}

/// What a check saw.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Seen {
    None,
    CardStatus {
        status: CardStatus,
    },
    ProfileStatus {
        status: ProfileStatus,
    },
    Expiry {
        card_expired: bool,
        message_matches: bool,
    },
    Channel {
        channel: Channel,
        enabled: bool,
    },
    PinTries {
        tries_before: u8,
        pin_given: bool,
        pin_ok: Option<bool>,
    },
    Rule {
        rule: RuleId,
    },
    Limit {
        limit: Money,
        usage: Money,
        amount: Money,
    },
    Funds {
        available: Money,
        needed: Money,
    },
    Amount {
        amount: Money,
    },
}

/// One line of an explanation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CheckLine {
    pub check: Check,
    pub passed: bool,
    pub seen: Seen,
}

/// The checks that ran, in order; the last failing one decided.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Explanation {
    lines: [CheckLine; Explanation::LINES_MAX],
    len: u8,
}

impl Explanation {
    /// One line per check of the pipeline, and room for the stand-in and original lines.
    pub const LINES_MAX: usize = 18;

    pub fn new() -> Explanation {
        let blank = CheckLine {
            check: Check::Original,
            passed: true,
            seen: Seen::None,
        };
        Explanation {
            lines: [blank; Explanation::LINES_MAX],
            len: 0,
        }
    }

    /// Records a check; beyond the bound the line is dropped (the bound covers every check
    /// the pipeline has, so this never happens in practice).
    pub fn push(&mut self, check: Check, passed: bool, seen: Seen) {
        if let Some(slot) = self.lines.get_mut(usize::from(self.len)) {
            *slot = CheckLine {
                check,
                passed,
                seen,
            };
            self.len += 1;
        }
    }

    pub fn lines(&self) -> &[CheckLine] {
        &self.lines[..usize::from(self.len)]
    }

    /// The check that declined, if any.
    pub fn deciding(&self) -> Option<&CheckLine> {
        self.lines().iter().find(|l| !l.passed)
    }
}

impl Default for Explanation {
    fn default() -> Self {
        Explanation::new()
    }
}

impl std::fmt::Debug for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.lines()).finish()
    }
}

impl Serialize for Explanation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.lines())
    }
}

impl<'de> Deserialize<'de> for Explanation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines: Vec<CheckLine> = Vec::deserialize(d)?;
        if lines.len() > Explanation::LINES_MAX {
            return Err(serde::de::Error::custom("explanation has too many lines"));
        }
        let mut e = Explanation::new();
        for l in lines {
            e.push(l.check, l.passed, l.seen);
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcore_core::Currency;

    #[test]
    fn the_first_failing_check_decides() {
        let mut e = Explanation::new();
        e.push(
            Check::CardStatus,
            true,
            Seen::CardStatus {
                status: CardStatus::Active,
            },
        );
        let limit = Money::new(1000, Currency::GBP);
        let seen = Seen::Limit {
            limit,
            usage: Money::new(900, Currency::GBP),
            amount: limit,
        };
        e.push(Check::CardDailyLimit, false, seen);
        assert_eq!(e.deciding().map(|l| l.check), Some(Check::CardDailyLimit));
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("CARD_DAILY_LIMIT"), "{json}");
        let back: Explanation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }
}
