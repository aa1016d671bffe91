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
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

/// The checks that ran, in order, which one decided, and the values it compared. Kept small
/// and `Copy` (it travels with every transaction record and every journal event): a bit per
/// check that ran, the deciding check, and what that check saw. When every check passed,
/// `seen` holds what the last check saw.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    ran: u32,
    failed: Option<Check>,
    seen: Seen,
}

const _: () = assert!(Check::ALL.len() <= 32);

impl Explanation {
    pub fn new() -> Explanation {
        Explanation {
            ran: 0,
            failed: None,
            seen: Seen::None,
        }
    }

    /// Records a check. The first failing check is the deciding one; later lines (there
    /// are none in the pipeline) would not replace it.
    pub fn push(&mut self, check: Check, passed: bool, seen: Seen) {
        self.ran |= 1 << (check as u32);
        if self.failed.is_some() {
            return;
        }
        if !passed {
            self.failed = Some(check);
        }
        self.seen = seen;
    }

    /// The bits of the checks that ran, the deciding check and what it saw: the journal's
    /// form (see `codec`).
    pub(crate) fn parts(&self) -> (u32, Option<Check>, Seen) {
        (self.ran, self.failed, self.seen)
    }

    /// An explanation from [`Explanation::parts`]; `None` when a bit names no check.
    pub(crate) fn from_parts(ran: u32, failed: Option<Check>, seen: Seen) -> Option<Explanation> {
        let known = u32::MAX
            .checked_shr(32 - Check::ALL.len() as u32)
            .unwrap_or(u32::MAX);
        (ran & !known == 0).then_some(Explanation { ran, failed, seen })
    }

    pub fn ran(&self, check: Check) -> bool {
        self.ran & (1 << (check as u32)) != 0
    }

    /// The checks that ran, in precedence order; only the deciding (or last) one carries
    /// what it saw.
    pub fn lines(&self) -> Vec<CheckLine> {
        let last = Check::ALL.iter().rev().find(|c| self.ran(**c)).copied();
        let shown = self.failed.or(last);
        Check::ALL
            .iter()
            .filter(|c| self.ran(**c))
            .map(|&check| CheckLine {
                check,
                passed: Some(check) != self.failed,
                seen: if Some(check) == shown {
                    self.seen
                } else {
                    Seen::None
                },
            })
            .collect()
    }

    /// The check that declined, with what it saw.
    pub fn deciding(&self) -> Option<CheckLine> {
        self.failed.map(|check| CheckLine {
            check,
            passed: false,
            seen: self.seen,
        })
    }
}

impl Check {
    /// Every check, in precedence order.
    pub const ALL: [Check; 17] = [
        Check::CardStatus,
        Check::ProfileStatus,
        Check::ExpiryDate,
        Check::Cvv2,
        Check::Permission,
        Check::Pin,
        Check::Currency,
        Check::SpendControls,
        Check::CardTransactionLimit,
        Check::CardDailyLimit,
        Check::CardMonthlyLimit,
        Check::CardLifetimeLimit,
        Check::ProfileDailyLimit,
        Check::ProfileMonthlyLimit,
        Check::Funds,
        Check::StandIn,
        Check::Original,
    ];
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
        let lines = e.lines();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].passed);
        assert_eq!(lines[1].seen, seen);
        let json = serde_json::to_string(&lines).unwrap();
        assert!(json.contains("CARD_DAILY_LIMIT"), "{json}");
        let bytes = bincode::serialize(&e).unwrap();
        assert_eq!(bincode::deserialize::<Explanation>(&bytes).unwrap(), e);
    }
}
