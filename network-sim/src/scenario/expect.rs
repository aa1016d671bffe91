//! Expectations checked against what a target answered: pure functions, one problem per
//! unmet key, worded for `expected X, saw Y`.

use cardcore_core::{Currency, Money};
use rust_decimal::Decimal;

use super::report::Problem;
use super::step::{TrafficExpect, TxnExpect};
use super::target::{BalanceView, TrafficOutcome, TxnView};

/// What is shown when a transaction the expectation needs was never recorded.
const NO_TRANSACTION: &str = "no transaction recorded";

/// Checks a traffic step's `expect`. `txn` is the transaction the step created or acted on,
/// read after the step; it is only consulted for the keys that need it.
pub fn check_traffic(
    expect: &TrafficExpect,
    outcome: &TrafficOutcome,
    txn: Option<&TxnView>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(approved) = expect.approved {
        same(&mut problems, "approved", approved, outcome.approved);
    }
    if let Some(code) = &expect.response_code {
        let saw = outcome.response_code.as_deref().unwrap_or("no answer");
        if code != saw {
            problems.push(Problem::mismatch(format!("responseCode {code}"), saw));
        }
    }
    if let Some(amount) = expect.approved_amount {
        let equal = outcome
            .approved_amount
            .is_some_and(|m| m.to_decimal() == amount);
        if !equal {
            let saw = outcome
                .approved_amount
                .map_or("none".to_owned(), |m| m.to_string());
            problems.push(Problem::mismatch(format!("approvedAmount {amount}"), saw));
        }
    }
    if let Some(disconnect) = expect.disconnect {
        same(
            &mut problems,
            "disconnect",
            disconnect,
            outcome.disconnected,
        );
    }
    check_record(
        &mut problems,
        txn,
        expect.state.map(|s| s.as_str()),
        expect.decline_reason.as_ref(),
        expect.detailed_decline_reason.as_ref(),
    );
    problems
}

/// Checks an `expect_txn` step against the transaction (`None`: none was recorded).
pub fn check_txn(expect: &TxnExpect, txn: Option<&TxnView>) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_record(
        &mut problems,
        txn,
        expect.state.map(|s| s.as_str()),
        expect.decline_reason.as_ref(),
        expect.detailed_decline_reason.as_ref(),
    );
    if let Some(amount) = expect.amount {
        match txn {
            Some(t) if t.amount.to_decimal() == amount => {}
            Some(t) => problems.push(Problem::mismatch(
                format!("amount {amount} {}", t.amount.currency),
                t.amount.to_string(),
            )),
            None => problems.push(Problem::mismatch(
                format!("amount {amount}"),
                NO_TRANSACTION,
            )),
        }
    }
    if let Some(currency) = expect.currency {
        match txn {
            Some(t) => same(&mut problems, "currency", currency, t.amount.currency),
            None => problems.push(Problem::mismatch(
                format!("currency {currency}"),
                NO_TRANSACTION,
            )),
        }
    }
    problems
}

/// The keys shared by `expect` and `expect_txn` that read the transaction record.
fn check_record(
    problems: &mut Vec<Problem>,
    txn: Option<&TxnView>,
    state: Option<&str>,
    reason: Option<&Option<String>>,
    detailed: Option<&Option<String>>,
) {
    let Some(txn) = txn else {
        let keys = [
            state.map(|s| format!("state {s}")),
            reason.map(|r| format!("declineReason {}", reason_text(r.as_deref()))),
            detailed.map(|r| format!("detailedDeclineReason {}", reason_text(r.as_deref()))),
        ];
        for expected in keys.into_iter().flatten() {
            problems.push(Problem::mismatch(expected, NO_TRANSACTION));
        }
        return;
    };
    if let Some(state) = state {
        same(problems, "state", state, txn.state.as_str());
    }
    if let Some(reason) = reason {
        let (want, saw) = (
            reason_text(reason.as_deref()),
            reason_text(txn.decline_reason.as_deref()),
        );
        same(problems, "declineReason", want, saw);
    }
    if let Some(detailed) = detailed {
        let want = reason_text(detailed.as_deref());
        let saw = reason_text(txn.detailed_decline_reason.as_deref());
        same(problems, "detailedDeclineReason", want, saw);
    }
}

fn reason_text(reason: Option<&str>) -> &str {
    reason.unwrap_or("none")
}

/// The amounts of an `expect_balance`, already made exact in the balance's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceAmounts {
    pub currency: Currency,
    pub available: Option<Money>,
    pub reserved: Option<Money>,
    pub cash: Option<Money>,
}

/// Checks an `expect_balance` step (`saw` is `None` when the profile has no such balance).
pub fn check_balance(expected: &BalanceAmounts, saw: Option<BalanceView>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let pairs = [
        ("available", expected.available, saw.map(|b| b.available)),
        ("reserved", expected.reserved, saw.map(|b| b.reserved)),
        ("cash", expected.cash, saw.map(|b| b.cash)),
    ];
    for (key, want, got) in pairs {
        let Some(want) = want else { continue };
        match got {
            Some(got) => same(&mut problems, key, want, got),
            None => problems.push(Problem::mismatch(
                format!("{key} {want}"),
                format!("no {} balance", expected.currency),
            )),
        }
    }
    problems
}

/// Checks an `expect_limit_usage` step: the usage in whatever currency the engine counts it.
pub fn check_usage(expected: Decimal, window: &str, saw: Money) -> Vec<Problem> {
    if saw.to_decimal() == expected {
        return Vec::new();
    }
    vec![Problem::mismatch(
        format!("{window} usage {expected} {}", saw.currency),
        saw.to_string(),
    )]
}

/// Checks an `expect_pin_tries` step.
pub fn check_pin_tries(expected: u32, saw: u32) -> Vec<Problem> {
    let mut problems = Vec::new();
    same(&mut problems, "PIN tries", expected, saw);
    problems
}

/// Checks an `expect_invariants` step; every violation is its own problem.
pub fn check_invariants(violations: Vec<String>) -> Vec<Problem> {
    violations
        .into_iter()
        .map(|v| Problem::mismatch("ledger invariants to hold", format!("violation: {v}")))
        .collect()
}

fn same<T: PartialEq + std::fmt::Display>(problems: &mut Vec<Problem>, key: &str, want: T, got: T) {
    if want != got {
        problems.push(Problem::mismatch(format!("{key} {want}"), got.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcore_core::TransactionState;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    fn text(problems: &[Problem]) -> Vec<String> {
        problems
            .iter()
            .map(|p| match p {
                Problem::Mismatch { expected, saw } => format!("expected {expected}, saw {saw}"),
                Problem::Error(e) => e.clone(),
            })
            .collect()
    }

    #[test]
    fn traffic_expectations_name_each_unmet_key() {
        let expect = TrafficExpect {
            approved: Some(true),
            response_code: Some("00".into()),
            decline_reason: Some(None),
            detailed_decline_reason: Some(Some("ECOM_DISABLED".into())),
            state: Some(TransactionState::InProgress),
            approved_amount: Some(Decimal::new(40, 0)),
            disconnect: Some(false),
        };
        let outcome = TrafficOutcome {
            response_code: Some("57".into()),
            transaction_id: None,
            ..TrafficOutcome::default()
        };
        let txn = TxnView {
            state: TransactionState::Declined,
            decline_reason: Some("PAYMENT_METHOD_NOT_ALLOWED".into()),
            detailed_decline_reason: None,
            amount: eur(4000),
        };
        assert_eq!(
            text(&check_traffic(&expect, &outcome, Some(&txn))),
            [
                "expected approved true, saw false",
                "expected responseCode 00, saw 57",
                "expected approvedAmount 40, saw none",
                "expected state IN_PROGRESS, saw DECLINED",
                "expected declineReason none, saw PAYMENT_METHOD_NOT_ALLOWED",
                "expected detailedDeclineReason ECOM_DISABLED, saw none",
            ]
        );
        let met = TrafficOutcome {
            response_code: Some("00".into()),
            approved: true,
            approved_amount: Some(eur(4000)),
            ..TrafficOutcome::default()
        };
        let only_wire = TrafficExpect {
            state: None,
            decline_reason: None,
            detailed_decline_reason: None,
            ..expect
        };
        assert!(
            check_traffic(&only_wire, &met, None).is_empty(),
            "40 equals 40.00"
        );
    }

    #[test]
    fn a_missing_transaction_is_shown_as_such() {
        let expect = TxnExpect {
            txn: "t".into(),
            state: Some(TransactionState::Completed),
            decline_reason: None,
            detailed_decline_reason: None,
            amount: Some(Decimal::new(1, 0)),
            currency: None,
        };
        assert_eq!(
            text(&check_txn(&expect, None)),
            [
                "expected state COMPLETED, saw no transaction recorded",
                "expected amount 1, saw no transaction recorded"
            ]
        );
    }

    #[test]
    fn balances_compare_exact_money() {
        let expected = BalanceAmounts {
            currency: Currency::EUR,
            available: Some(eur(6000)),
            reserved: None,
            cash: Some(eur(10000)),
        };
        let saw = BalanceView {
            available: eur(5999),
            reserved: eur(4001),
            cash: eur(10000),
        };
        assert_eq!(
            text(&check_balance(&expected, Some(saw))),
            ["expected available 60.00 EUR, saw 59.99 EUR"]
        );
        assert_eq!(
            text(&check_balance(&expected, None)),
            [
                "expected available 60.00 EUR, saw no EUR balance",
                "expected cash 100.00 EUR, saw no EUR balance"
            ]
        );
        assert_eq!(
            text(&check_usage(Decimal::new(5, 0), "DAILY", eur(500))),
            Vec::<String>::new()
        );
        assert_eq!(
            text(&check_usage(Decimal::new(5, 0), "DAILY", eur(501))),
            ["expected DAILY usage 5 EUR, saw 5.01 EUR"]
        );
    }
}
