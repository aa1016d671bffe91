//! The replay runner against a recording test double: expectation counting, the report,
//! name-to-id mapping, message construction, and replay going on after a bad line.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use cardcore_core::{
    CardStatus, CardToken, Channel, Currency, Granularity, Money, ProfileId, RuleId, Timestamp,
    TransactionState, TxnId,
};
use cardcore_sim::scenario::report::Problem;
use cardcore_sim::scenario::traffic::{DEFAULT_COUNTRY, DEFAULT_MERCHANT, SCENARIO_ACQUIRER_ID};
use cardcore_sim::scenario::*;

/// A target that records every call as a line of text, answers sends from a script (or
/// approves in full when the script is empty) and reads back what a test put in it.
#[derive(Default)]
struct Fake {
    log: Vec<String>,
    sent: Vec<TrafficMessage>,
    script: VecDeque<TrafficOutcome>,
    txns: BTreeMap<TxnId, TxnView>,
    balances: BTreeMap<(ProfileId, Currency), BalanceView>,
    pin_tries: u32,
    violations: Vec<String>,
    fail_reset: bool,
    fail_transaction_reads: bool,
    refuse_reactivation: bool,
    next_id: u64,
}

impl Fake {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn note(&mut self, line: String) -> Result<(), TargetError> {
        self.log.push(line);
        Ok(())
    }

    /// Approves in full; a follow-up acts on its original, anything else is a new txn.
    fn approve(&mut self, message: &CardMessage) -> TrafficOutcome {
        let id = match &message.original {
            Some(original) => original.transaction_id,
            None => Some(TxnId(900 + self.id())),
        };
        if let (Some(id), None) = (id, &message.original) {
            let view = TxnView {
                state: TransactionState::InProgress,
                decline_reason: None,
                detailed_decline_reason: None,
                amount: message.amount,
            };
            self.txns.insert(id, view);
        }
        TrafficOutcome {
            response_code: Some("00".into()),
            approved: true,
            approved_amount: Some(message.amount),
            approval_code: Some(format!("A{:05}", self.next_id)),
            transaction_id: id,
            disconnected: false,
        }
    }
}

impl Target for Fake {
    fn reset(&mut self, now: Timestamp) -> Result<(), TargetError> {
        if self.fail_reset {
            return Err(TargetError::Failed("connection refused".into()));
        }
        self.note(format!("reset {now}"))
    }

    fn set_clock(&mut self, now: Timestamp) -> Result<(), TargetError> {
        self.note(format!("set_clock {now}"))
    }

    fn advance_clock(&mut self, by_ms: i64) -> Result<(), TargetError> {
        self.note(format!("advance_clock {by_ms}"))
    }

    fn create_profile(&mut self, setup: &ProfileSetup) -> Result<ProfileId, TargetError> {
        let id = ProfileId(100 + self.id());
        self.note(format!(
            "create_profile {:?} {} -> {id}",
            setup.timezone, setup.status
        ))?;
        Ok(id)
    }

    fn update_profile(&mut self, id: ProfileId, u: &ProfileUpdate) -> Result<(), TargetError> {
        self.note(format!(
            "update_profile {id} {:?} {:?}",
            u.timezone, u.status
        ))
    }

    fn top_up(&mut self, profile: ProfileId, amount: Money) -> Result<(), TargetError> {
        self.note(format!("top_up {profile} {amount}"))
    }

    fn set_fx_rate(&mut self, r: &FxRate) -> Result<(), TargetError> {
        self.note(format!(
            "fx {}->{} {} fee {}",
            r.from, r.to, r.rate, r.fee_percent
        ))
    }

    fn issue_card(&mut self, s: &CardSetup) -> Result<CardToken, TargetError> {
        let token = CardToken(u128::from(self.id()));
        self.note(format!(
            "issue_card {} {} {} {:?} {:?} {:?} smart={} locked={:?} -> {token}",
            s.profile,
            s.pan,
            s.expiry,
            s.status,
            s.currency,
            s.card_type,
            s.smart_conversion,
            s.locked
        ))?;
        Ok(token)
    }

    /// May refuse to reactivate, standing in for the engine's status rules.
    fn set_card_status(&mut self, card: CardRef, status: CardStatus) -> Result<(), TargetError> {
        if self.refuse_reactivation && status == CardStatus::Active {
            return Err(TargetError::Refused(
                "card is BLOCKED, which is final".into(),
            ));
        }
        self.note(format!(
            "card_status {} {} {status}",
            card.profile, card.token
        ))
    }

    fn set_permissions(&mut self, card: CardRef, c: &[(Channel, bool)]) -> Result<(), TargetError> {
        self.note(format!("permissions {} {} {c:?}", card.profile, card.token))
    }

    fn set_card_limits(
        &mut self,
        card: CardRef,
        values: &[(Granularity, Money)],
    ) -> Result<(), TargetError> {
        self.note(format!("card_limits {} {values:?}", card.token))
    }

    fn delete_card_limits(&mut self, card: CardRef, w: &[Granularity]) -> Result<(), TargetError> {
        self.note(format!("delete_card_limits {} {w:?}", card.token))
    }

    fn set_profile_limit(
        &mut self,
        profile: ProfileId,
        l: &ProfileLimitSetup,
    ) -> Result<(), TargetError> {
        self.note(format!("profile_limit {profile} {l:?}"))
    }

    fn reset_pin_count(&mut self, card: CardRef) -> Result<(), TargetError> {
        self.note(format!("reset_pin_count {}", card.token))
    }

    fn create_rule(&mut self, s: &RuleSetup) -> Result<RuleId, TargetError> {
        let id = RuleId(500 + self.id());
        self.note(format!(
            "create_rule {:?} {:?} {:?} -> {id}",
            s.rule_type, s.operation, s.values
        ))?;
        Ok(id)
    }

    fn apply_rule(&mut self, rule: RuleId) -> Result<(), TargetError> {
        self.note(format!("apply_rule {rule}"))
    }

    fn unapply_rule(&mut self, rule: RuleId) -> Result<(), TargetError> {
        self.note(format!("unapply_rule {rule}"))
    }

    fn delete_rule(&mut self, rule: RuleId) -> Result<(), TargetError> {
        self.note(format!("delete_rule {rule}"))
    }

    fn send(&mut self, message: &TrafficMessage) -> Result<TrafficOutcome, TargetError> {
        self.sent.push(message.clone());
        let outcome = match (self.script.pop_front(), message) {
            (Some(scripted), _) => scripted,
            (None, TrafficMessage::Card(m)) => self.approve(m),
            (None, TrafficMessage::Raw(_)) => TrafficOutcome {
                disconnected: true,
                ..TrafficOutcome::default()
            },
        };
        self.log
            .push(format!("send -> {:?}", outcome.response_code));
        Ok(outcome)
    }

    fn balance(
        &mut self,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<Option<BalanceView>, TargetError> {
        Ok(self.balances.get(&(profile, currency)).copied())
    }

    fn transaction(&mut self, txn: TxnRef) -> Result<TxnView, TargetError> {
        self.log.push(format!(
            "transaction {} card={:?}",
            txn.id,
            txn.card.map(|c| c.token)
        ));
        if self.fail_transaction_reads {
            return Err(TargetError::Failed("HTTP 500".into()));
        }
        self.txns
            .get(&txn.id)
            .cloned()
            .ok_or_else(|| TargetError::Refused("404".into()))
    }

    fn limit_usage(&mut self, scope: LimitScope, w: Granularity) -> Result<Money, TargetError> {
        self.log.push(format!("limit_usage {scope:?} {w}"));
        Ok(Money::new(1500, Currency::GBP))
    }

    fn pin_tries(&mut self, card: CardRef) -> Result<u32, TargetError> {
        self.log.push(format!("pin_tries {}", card.token));
        Ok(self.pin_tries)
    }

    fn invariant_violations(&mut self) -> Result<Vec<String>, TargetError> {
        Ok(self.violations.clone())
    }
}

fn replay(fake: &mut Fake, text: &str) -> Report {
    let scenario = Scenario::parse("t.jsonl", text.as_bytes());
    Runner::new(fake).run(&scenario)
}

fn card_messages(fake: &Fake) -> Vec<&CardMessage> {
    fake.sent
        .iter()
        .filter_map(|m| match m {
            TrafficMessage::Card(c) => Some(&**c),
            TrafficMessage::Raw(_) => None,
        })
        .collect()
}

const SETUP: &str = r#"{"op":"profile","profile":1}
{"op":"balance","profile":1,"currency":"EUR","amount":"100.00"}
{"op":"card","profile":1,"card":"c1","pan":"4000001234567899","pin":"9817","cvv2":"123","expiry":"2029-07","currency":"EUR"}
"#;

#[test]
fn expectations_are_counted_per_step_and_replay_goes_on() {
    let mut fake = Fake {
        refuse_reactivation: true,
        ..Fake::default()
    };
    let text = format!(
        "{SETUP}{}",
        r#"{"op":"auth","txn":"t1","card":"c1","amount":"40.00","currency":"EUR","expect":{"approved":true,"responseCode":"00","state":"IN_PROGRESS","approvedAmount":"40"}}
{"op":"auth","txn":"t2","card":"c1","amount":"5.00","currency":"EUR"}
{"op":"auth","txn":"t3","card":"c1","amount":"5.00","currency":"EUR","expect":{"approved":false,"declineReason":"INSUFFICIENT_FUNDS"}}
this is not json
{"op":"auth","txn":"t4","card":"nope","amount":"1","currency":"EUR"}
{"op":"card_status","card":"c1","status":"FROZEN"}
{"op":"card_status","card":"c1","status":"ACTIVE","expect_error":true}
{"op":"expect_balance","profile":1,"currency":"EUR","available":"60.00"}
{"op":"expect_pin_tries","card":"c1","count":1}
{"op":"delete_rule","rule":"r1","expect_error":true}
{"op":"card_status","card":"c1","status":"ACTIVE"}
{"op":"card_status","card":"c1","status":"BLOCKED","expect_error":true}
"#
    );
    let profile = ProfileId(101);
    let sixty = Money::new(6000, Currency::EUR);
    let view = BalanceView {
        available: sixty,
        reserved: sixty,
        cash: sixty,
    };
    fake.balances.insert((profile, Currency::EUR), view);
    let report = replay(&mut fake, &text);
    assert_eq!(
        report.to_string(),
        "t.jsonl:6: expected approved false, saw true\n\
         t.jsonl:6: expected declineReason INSUFFICIENT_FUNDS, saw none\n\
         t.jsonl:7: invalid JSON: expected ident at line 1 column 2\n\
         t.jsonl:8: unknown card \"nope\": no earlier step creates it\n\
         t.jsonl:12: expected PIN tries 1, saw 0\n\
         t.jsonl:13: unknown rule \"r1\": no earlier step creates it\n\
         t.jsonl:14: refused: card is BLOCKED, which is final\n\
         t.jsonl:15: expected an error, saw success\n\
         3 passed, 7 failed\n"
    );
    assert_eq!((report.passed, report.failed), (3, 7));
    assert!(!report.is_success());
    assert!(fake
        .log
        .iter()
        .any(|l| l.starts_with("card_status 101 ") && l.ends_with("FROZEN")));
    assert!(
        fake.log.last().unwrap().ends_with("BLOCKED"),
        "the last line still ran"
    );
    assert_eq!(card_messages(&fake).len(), 3, "t4 was never sent");
}

#[test]
fn a_clean_run_ends_with_zero_failed() {
    let mut fake = Fake::default();
    let text = format!(
        "{SETUP}{}",
        r#"{"op":"auth","txn":"t1","card":"c1","amount":"1","currency":"EUR","expect":{"approved":true,"declineReason":null,"detailedDeclineReason":null}}
{"op":"expect_txn","txn":"t1","state":"IN_PROGRESS","amount":"1.00","currency":"EUR"}
{"op":"expect_invariants"}
"#
    );
    let report = replay(&mut fake, &text);
    assert_eq!(report.to_string(), "3 passed, 0 failed\n");
    assert!(report.is_success());
}

#[test]
fn names_map_to_the_engines_ids() {
    let mut fake = Fake::default();
    let text = r#"{"op":"profile","profile":1}
{"op":"profile","profile":"p2","timezone":"Europe/London","status":"SUSPENDED"}
{"op":"profile","profile":"1","status":"INACTIVE"}
{"op":"card","profile":"p2","card":7,"pan":"4242424242424242","type":"VIRTUAL","smart_conversion":false,"locked":["ATM_WITHDRAWAL"]}
{"op":"card","profile":1,"card":"7b","pan":"4000001234567899"}
{"op":"card_status","card":"7","status":"FROZEN"}
{"op":"permissions","card":7,"set":{"ECOM":false,"POS_CHIP":true}}
{"op":"card_limits","card":"7b","currency":"GBP","daily":"10","lifetime":"0.5"}
{"op":"card_limits","card":"7b","delete":["daily"]}
{"op":"profile_limits","profile":"p2","type":"ATM_WITHDRAWAL","currency":"GBP","daily":"50","monthly":"500","max_daily":"100"}
{"op":"rule","rule":1,"type":"MCC","operation":"BLOCK","values":["7995",5933]}
{"op":"apply_rule","rule":"1"}
{"op":"unapply_rule","rule":1}
{"op":"delete_rule","rule":1}
{"op":"reset_pin_count","card":"7"}
{"op":"expect_limit_usage","card":"7b","window":"daily","usage":"15"}
{"op":"expect_limit_usage","profile":"p2","type":"PURCHASE","window":"monthly","usage":"15.00"}
"#;
    let report = replay(&mut fake, text);
    assert_eq!(report.to_string(), "2 passed, 0 failed\n");
    let expected = [
        "reset 2026-01-15T10:00:00.000Z",
        "create_profile UTC ACTIVE -> 101",
        "create_profile Europe/London SUSPENDED -> 102",
        "update_profile 101 None Some(Inactive)",
        "issue_card 102 424242******4242 2029-01 Active None Virtual smart=false \
         locked=[AtmWithdrawal] -> 00000000-0000-0000-0000-000000000003",
        "issue_card 101 400000******7899 2029-01 Active None Physical smart=true locked=[] \
         -> 00000000-0000-0000-0000-000000000004",
        "card_status 102 00000000-0000-0000-0000-000000000003 FROZEN",
        "permissions 102 00000000-0000-0000-0000-000000000003 [(Ecom, false), (PosChip, true)]",
        "card_limits 00000000-0000-0000-0000-000000000004 [(Daily, 10.00 GBP), (Lifetime, 0.50 GBP)]",
        "delete_card_limits 00000000-0000-0000-0000-000000000004 [Daily]",
        "profile_limit 102 ProfileLimitSetup { limit_type: AtmWithdrawal, daily: 50.00 GBP, \
         monthly: 500.00 GBP, max_daily: Some(100.00 GBP), max_monthly: None }",
        "create_rule Mcc Block [\"7995\", \"5933\"] -> 505",
        "apply_rule 505",
        "unapply_rule 505",
        "delete_rule 505",
        "reset_pin_count 00000000-0000-0000-0000-000000000003",
        "limit_usage Card(CardRef { profile: ProfileId(101), token: \
         CardToken(00000000-0000-0000-0000-000000000004) }) DAILY",
        "limit_usage Profile(ProfileId(102), Purchase) MONTHLY",
    ];
    assert_eq!(fake.log, expected);
}

#[test]
fn follow_ups_carry_the_original_and_duplicates_repeat_it() {
    let mut fake = Fake::default();
    let text = format!(
        "{SETUP}{}",
        r#"{"op":"auth","txn":"t1","card":"c1","amount":"40.00","currency":"EUR","pin":"9817","cvv2":"123","mcc":"5411","entry":"CONTACTLESS","merchant":"CORNER SHOP","country":"FR"}
{"op":"incremental","txn":"t2","ref":"t1","amount":"5.00","currency":"EUR"}
{"op":"clear","ref":"t2","amount":"45.00","currency":"EUR","expect":{"state":"IN_PROGRESS"}}
{"op":"reverse","ref":"t1","amount":"0","currency":"EUR"}
{"op":"duplicate","of":"t1","expect":{"approved":true}}
"#
    );
    let report = replay(&mut fake, &text);
    assert_eq!(report.to_string(), "2 passed, 0 failed\n");
    let m = card_messages(&fake);
    assert_eq!(m.len(), 5);
    let auth = m[0];
    assert_eq!(auth.kind, MessageKind::Authorization { pre_auth: false });
    assert_eq!(auth.amount, Money::new(4000, Currency::EUR));
    assert_eq!(auth.pin.as_ref().map(ClearPin::expose_digits), Some("9817"));
    assert_eq!(auth.cvv2.as_ref().map(Cvv2::expose_digits), Some("123"));
    assert_eq!((auth.mcc.0, auth.entry), (5411, EntryMode::Contactless));
    assert_eq!(
        (auth.merchant.as_str(), auth.country.as_str()),
        ("CORNER SHOP", "FR")
    );
    assert_eq!(auth.expiry.to_string(), "2029-07", "the card's own expiry");
    assert_eq!(auth.ids.stan, 1);
    assert_eq!(auth.ids.acquirer_id, SCENARIO_ACQUIRER_ID);
    assert!(auth.original.is_none());

    let original_id = Some(TxnId(903));
    for (i, kind, minor) in [
        (1, MessageKind::Incremental, 500),
        (2, MessageKind::Clearing, 4500),
        (3, MessageKind::Reversal, 0),
    ] {
        let f = m[i];
        assert_eq!(f.kind, kind);
        assert_eq!(f.amount.amount_minor, minor);
        assert_eq!(f.ids.stan, i as u32 + 1, "each message has its own STAN");
        assert_ne!(f.ids.rrn, auth.ids.rrn);
        assert_eq!(
            (f.pan, f.expiry, f.mcc, f.entry),
            (auth.pan, auth.expiry, auth.mcc, auth.entry)
        );
        assert_eq!(f.merchant, auth.merchant);
        assert!(
            f.pin.is_none() && f.cvv2.is_none(),
            "follow-ups carry no PIN or CVV2"
        );
        let original = f.original.as_ref().expect("the original");
        assert_eq!(
            original.ids, auth.ids,
            "clear of t2 refers to t1, the authorisation"
        );
        assert_eq!(original.kind, auth.kind);
        assert_eq!(original.amount, auth.amount);
        assert_eq!(original.transaction_id, original_id);
        assert_eq!(original.approval_code.as_deref(), Some("A00003"));
    }
    assert_eq!(m[4], auth, "a duplicate is the very same message");
    let reads: Vec<&String> = fake
        .log
        .iter()
        .filter(|l| l.starts_with("transaction"))
        .collect();
    assert_eq!(
        reads,
        ["transaction 903 card=Some(CardToken(00000000-0000-0000-0000-000000000002))"]
    );
}

#[test]
fn message_kinds_and_steps_that_cannot_be_sent() {
    let mut fake = Fake::default();
    let text = format!(
        "{SETUP}{}",
        r#"{"op":"auth","txn":"t1","card":"c1","amount":"40.00","currency":"EUR"}
{"op":"advice","txn":"t3","card":"c1","amount":"2","currency":"EUR","pre_auth":true,"type":"CASH_WITHDRAWAL"}
{"op":"auth","txn":"t4","card":"c1","amount":"3","currency":"EUR","single_message":true,"type":"REFUND","expiry":"2030-01"}
{"op":"raw","hex":"30313030","expect":{"disconnect":true}}
{"op":"duplicate","of":"t9"}
{"op":"incremental","txn":"t1","ref":"t1","amount":"1","currency":"EUR"}
{"op":"auth","txn":"t5","card":"c1","amount":"1.001","currency":"EUR"}
{"op":"clear","ref":"t1","amount":"-1","currency":"EUR"}
"#
    );
    let report = replay(&mut fake, &text);
    assert_eq!(
        report.to_string(),
        "t.jsonl:8: unknown txn \"t9\": no earlier step creates it\n\
         t.jsonl:9: txn \"t1\" is already used: every auth, advice and incremental needs its \
         own name\n\
         t.jsonl:10: amount 1.001 has more decimal places than EUR allows (2)\n\
         t.jsonl:11: amount -1 is negative; messages carry amounts of 0 or more\n\
         1 passed, 4 failed\n"
    );
    let m = card_messages(&fake);
    assert_eq!(m.len(), 3, "nothing is sent for a step that cannot run");
    let advice = m[1];
    assert_eq!(advice.kind, MessageKind::Advice { pre_auth: true });
    assert_eq!(advice.kind.mti(), "0120");
    assert_eq!(advice.processing, ProcessingType::CashWithdrawal);
    assert_eq!(
        (advice.merchant.as_str(), advice.country.as_str()),
        (DEFAULT_MERCHANT, DEFAULT_COUNTRY)
    );
    let single = m[2];
    assert_eq!(
        (single.kind, single.kind.mti()),
        (MessageKind::Financial, "0200")
    );
    assert_eq!(single.processing.processing_code(), "20");
    assert_eq!(
        single.expiry.to_string(),
        "2030-01",
        "the step's expiry wins"
    );
    assert_eq!(
        fake.sent.last(),
        Some(&TrafficMessage::Raw(b"0100".to_vec()))
    );
}

#[test]
fn states_read_from_the_transaction_and_missing_ones_are_named() {
    let mut fake = Fake::default();
    let declined_without_txn = TrafficOutcome {
        response_code: Some("30".into()),
        ..TrafficOutcome::default()
    };
    fake.script.push_back(declined_without_txn);
    let text = format!(
        "{SETUP}{}",
        r#"{"op":"auth","txn":"t1","card":"c1","amount":"1","currency":"EUR","expect":{"responseCode":"30","state":"DECLINED"}}
{"op":"expect_txn","txn":"t1","declineReason":"CARD_FROZEN"}
{"op":"auth","txn":"t2","card":"c1","amount":"1","currency":"EUR","expect":{"state":"IN_PROGRESS"}}
"#
    );
    let report = replay(&mut fake, &text);
    assert_eq!(
        report.to_string(),
        "t.jsonl:4: expected state DECLINED, saw no transaction recorded\n\
         t.jsonl:5: expected declineReason CARD_FROZEN, saw no transaction recorded\n\
         1 passed, 2 failed\n"
    );
    fake.fail_transaction_reads = true;
    let report = replay(&mut fake, &text);
    assert!(
        report
            .to_string()
            .contains("t.jsonl:6: target failed: HTTP 500\n"),
        "{report}"
    );
}

#[test]
fn fx_inverses_are_implied_until_given() {
    let mut fake = Fake::default();
    let text = r#"{"op":"fx","from":"EUR","to":"USD","rate":"1.25","fee_percent":"0.5"}
{"op":"fx","from":"USD","to":"EUR","rate":"0.79"}
{"op":"fx","from":"EUR","to":"USD","rate":"1.3"}
{"op":"fx","from":"GBP","to":"JPY","rate":"3"}
"#;
    replay(&mut fake, text);
    assert_eq!(
        fake.log[1..],
        [
            "fx EUR->USD 1.25 fee 0.5",
            "fx USD->EUR 0.8 fee 0.5",
            "fx USD->EUR 0.79 fee 0",
            "fx EUR->USD 1.3 fee 0",
            "fx GBP->JPY 3 fee 0",
            "fx JPY->GBP 0.3333333333333333333333333333 fee 0",
        ]
    );
}

#[test]
fn the_clock_drives_transmission_times_and_default_expiry() {
    let mut fake = Fake::default();
    let text = r#"{"op":"profile","profile":1}
{"op":"clock","advance":"36h"}
{"op":"card","profile":1,"card":"c","pan":"4242424242424242"}
{"op":"auth","txn":"a","card":"c","amount":"1","currency":"EUR"}
{"op":"clock","set":"2027-03-01T00:00:05+01:00"}
{"op":"auth","txn":"b","card":"c","amount":"1","currency":"EUR"}
"#;
    assert_eq!(replay(&mut fake, text).to_string(), "0 passed, 0 failed\n");
    let m = card_messages(&fake);
    let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    assert_eq!(m[0].ids.transmission_time, at("2026-01-16T22:00:00Z"));
    assert_eq!(m[0].ids.rrn, "601622000001");
    assert_eq!(m[0].expiry.to_string(), "2029-01");
    assert_eq!(m[1].ids.transmission_time, at("2027-02-28T23:00:05Z"));
    assert_eq!(m[1].ids.rrn, "705923000002");
    assert!(fake.log.contains(&"advance_clock 129600000".to_owned()));
}

#[test]
fn each_file_starts_afresh_and_unreadable_files_fail() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    std::fs::write(&first, format!("{SETUP}{{\"op\":\"expect_invariants\"}}\n")).unwrap();
    std::fs::write(
        &second,
        "{\"op\":\"expect_pin_tries\",\"card\":\"c1\",\"count\":0}\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.jsonl");
    let mut fake = Fake::default();
    let report = replay_files(&mut fake, &[&first, &second, &missing]);
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "{}:1: unknown card \"c1\": no earlier step creates it",
            second.display()
        )
    );
    assert!(lines[1].starts_with(&format!("{}: cannot read the file: ", missing.display())));
    assert_eq!(lines[2], "1 passed, 2 failed");
    assert_eq!(
        fake.log.iter().filter(|l| l.starts_with("reset ")).count(),
        2
    );

    let mut down = Fake {
        fail_reset: true,
        ..Fake::default()
    };
    let report = replay_files(&mut down, &[&first]);
    assert_eq!(
        report.to_string(),
        format!(
            "{}: cannot start the file: target failed: connection refused\n0 passed, 1 failed\n",
            first.display()
        )
    );
    assert!(down.sent.is_empty() && down.log.is_empty(), "nothing ran");
}

#[test]
fn invariant_violations_are_each_listed() {
    let mut fake = Fake {
        violations: vec![
            "balance 3 EUR: cash != available + reserved".into(),
            "hold 9 orphaned".into(),
        ],
        ..Fake::default()
    };
    let report = replay(&mut fake, "{\"op\":\"expect_invariants\"}\n");
    assert_eq!(
        report.to_string(),
        "t.jsonl:1: expected ledger invariants to hold, saw violation: balance 3 EUR: cash != \
         available + reserved\n\
         t.jsonl:1: expected ledger invariants to hold, saw violation: hold 9 orphaned\n\
         0 passed, 1 failed\n"
    );
}

/// The shared examples against a target that approves everything: every expectation step is
/// counted once, every name resolves, and only answers differ from what is expected.
#[test]
fn the_shared_examples_run_every_step() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/scenarios");
    for (file, expectations) in [
        ("decline_basics.jsonl", 11),
        ("reference_examples.jsonl", 15),
    ] {
        let mut fake = Fake::default();
        let report = replay_files(&mut fake, &[root.join(file)]);
        assert_eq!(
            report.passed + report.failed,
            expectations,
            "{file}: {report}"
        );
        for failure in &report.failures {
            assert!(
                matches!(failure.problem, Problem::Mismatch { .. }),
                "{failure}"
            );
        }
        let text = report.to_string();
        assert!(!text.contains("4242424242424242"), "no PAN in a report");
    }
}
