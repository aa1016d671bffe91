//! The scenario parser against the shared example files and a table of malformed lines.

use std::path::PathBuf;

use cardcore_core::{Currency, Mcc, TransactionState};
use cardcore_sim::scenario::parse::parse_line;
use cardcore_sim::scenario::step::{SetupOp, StepKind, TrafficOp};
use cardcore_sim::scenario::{EntryMode, Name, OpName, ProcessingType, Scenario};
use rust_decimal::Decimal;

/// The shared examples live beside the repository (`../shared` from its root).
fn shared_scenario(file: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/scenarios");
    root.join(file)
}

fn load(file: &str) -> Scenario {
    let path = shared_scenario(file);
    Scenario::load(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn the_shared_examples_parse_completely() {
    for (file, steps) in [
        ("decline_basics.jsonl", 18),
        ("reference_examples.jsonl", 18),
    ] {
        let scenario = load(file);
        let errors: Vec<String> = scenario.errors().map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
        assert_eq!(scenario.steps().count(), steps, "{file}");
    }
}

#[test]
fn the_reference_example_reads_as_written() {
    let scenario = load("reference_examples.jsonl");
    let first_auth = scenario
        .steps()
        .find_map(|s| match &s.kind {
            StepKind::Traffic {
                op: TrafficOp::Auth(a),
                expect,
            } => Some((s.line, a, expect)),
            _ => None,
        })
        .expect("an auth step");
    let (line, auth, expect) = first_auth;
    assert_eq!(line, 7, "comments count as lines");
    assert_eq!(auth.txn, Name::from("pos"));
    assert_eq!(auth.card, Name::from("visa"));
    assert_eq!(auth.amount, Decimal::new(10, 0));
    assert_eq!(auth.currency, Currency::SGD);
    assert_eq!(auth.mcc, Mcc(5499));
    assert_eq!(auth.entry, EntryMode::Chip);
    assert_eq!(auth.processing, ProcessingType::Purchase);
    assert_eq!(auth.pin.as_ref().map(|p| p.expose_digits()), Some("1234"));
    assert!(auth.cvv2.is_none() && !auth.pre_auth && !auth.single_message);
    let expect = expect.as_ref().expect("an expect");
    assert_eq!(expect.approved, Some(true));
    assert_eq!(expect.response_code.as_deref(), Some("00"));
    assert_eq!(expect.state, Some(TransactionState::InProgress));
    assert_eq!(expect.decline_reason, None, "not given is not null");

    let profile = scenario.steps().next().expect("a first step");
    match &profile.kind {
        StepKind::Setup {
            op: SetupOp::Profile(p),
            expect_error: None,
        } => {
            assert_eq!(p.profile, Name::from("2"), "integer ids become text");
            assert_eq!(p.timezone.map(|t| t.name()), Some("Asia/Singapore"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn parsed_steps_never_show_secrets() {
    let scenario = load("decline_basics.jsonl");
    let shown = format!("{scenario:?}");
    assert!(!shown.contains("4242424242424242"), "the PAN is masked");
    assert!(shown.contains("424242******4242"));
    assert!(!shown.contains("4321"), "the PIN is hidden");
}

/// Each malformed line and the whole message it must produce (as line 7).
const MALFORMED: &[(&str, &str)] = &[
    (r#"{"op":"fly"}"#, r#"line 7: key "op": unknown op "fly""#),
    (r#"{"txn":"t1"}"#, r#"line 7: missing key "op""#),
    (
        r#"{"op":7}"#,
        r#"line 7: key "op": expected a string, got a number"#,
    ),
    (
        r#"{"op":"balance","profile":1,"currency":"EUR","amout":"1.00"}"#,
        r#"line 7: key "amout": unknown key for op "balance" (it takes profile, currency, amount, expect_error)"#,
    ),
    (
        r#"{"op":"balance","profile":1,"currency":"EUR","amount":"ten"}"#,
        r#"line 7: key "amount": "ten" is not a decimal amount like "10.50""#,
    ),
    (
        r#"{"op":"balance","profile":1,"currency":"EUR","amount":10.5}"#,
        r#"line 7: key "amount": amounts are strings in major units, e.g. "10.5" instead of 10.5 (JSON numbers are not exact)"#,
    ),
    (
        r#"{"op":"balance","profile":1,"currency":"EURO","amount":"1"}"#,
        r#"line 7: key "currency": "EURO" is not an ISO 4217 currency code cardcore knows"#,
    ),
    (
        r#"{"op":"clock","advance":"3 days"}"#,
        r#"line 7: key "advance": "3 days" is not a duration like "90s", "15m", "36h" or "8d""#,
    ),
    (
        r#"{"op":"clock","set":"2026-01-15 10:00"}"#,
        r#"line 7: key "set": "2026-01-15 10:00" is not an RFC 3339 time like "2026-01-15T10:00:00Z""#,
    ),
    (
        r#"{"op":"clock","set":"2026-01-15T10:00:00Z","advance":"1d"}"#,
        r#"line 7: key "advance": give either set or advance, not both"#,
    ),
    (
        r#"{"op":"clock"}"#,
        r#"line 7: op "clock" needs set or advance"#,
    ),
    (
        r#"{"op":"auth","txn":"t","card":"c","currency":"EUR"}"#,
        r#"line 7: key "amount": missing key for op "auth""#,
    ),
    (r#"[1,2]"#, r#"line 7: a step is a JSON object, got a list"#),
    (
        r#"{"op":"profile","profile":1,"profile":2}"#,
        r#"line 7: invalid JSON: key "profile" is given twice at line 1 column 37"#,
    ),
    (
        r#"{"op":"auth","txn":"t","card":"c","amount":"1","currency":"EUR","expect":{"status":"DECLINED"}}"#,
        r#"line 7: key "expect.status": unknown key in expect (it takes approved, responseCode, declineReason, detailedDeclineReason, state, approvedAmount, disconnect)"#,
    ),
    (
        r#"{"op":"auth","txn":"t","card":"c","amount":"1","currency":"EUR","expect":{"state":"DONE"}}"#,
        r#"line 7: key "expect.state": expected one of IN_PROGRESS, COMPLETED, DECLINED, CANCELLED, UNKNOWN, got "DONE""#,
    ),
    (
        r#"{"op":"auth","txn":"t","card":"c","amount":"1","currency":"EUR","expect":{"responseCode":51}}"#,
        r#"line 7: key "expect.responseCode": a response code is a two-character string like "51", got a number"#,
    ),
    (
        r#"{"op":"auth","txn":"t","card":"c","amount":"1","currency":"EUR","expect_error":true}"#,
        r#"line 7: key "expect_error": unknown key for op "auth" (it takes txn, card, amount, currency, type, entry, mcc, pin, cvv2, expiry, merchant, country, pre_auth, single_message, expect)"#,
    ),
    (
        r#"{"op":"card_status","card":"c","status":"FROZEN","expect_error":"yes"}"#,
        r#"line 7: key "expect_error": expected true or false, got a string"#,
    ),
    (
        r#"{"op":"card_status","card":"c","status":"STOLEN"}"#,
        r#"line 7: key "status": expected one of ACTIVE, INACTIVE, FROZEN, BLOCKED, PURGED, EXPIRED, PARTNER_SUSPENDED, got "STOLEN""#,
    ),
    (
        r#"{"op":"card","profile":1,"card":"c","pan":"4242424242424241"}"#,
        r#"line 7: key "pan": PAN fails the Luhn check"#,
    ),
    (
        r#"{"op":"card","profile":1,"card":"c","pan":"4242424242424242","pin":"12"}"#,
        r#"line 7: key "pin": a PIN has 4 to 12 digits"#,
    ),
    (
        r#"{"op":"card","profile":1,"card":"c","pan":"4242424242424242","locked":["ATM"]}"#,
        r#"line 7: key "locked": item 1: expected one of ECOM, POS_CHIP, POS_MAGSTRIPE, POS_CONTACTLESS, ATM_WITHDRAWAL, MOBILE_WALLETS, got "ATM""#,
    ),
    (
        r#"{"op":"permissions","card":"c","set":{"ECOM":"off"}}"#,
        r#"line 7: key "set": ECOM: expected true or false, got a string"#,
    ),
    (
        r#"{"op":"card_limits","card":"c","currency":"EUR","daily":"5","delete":["monthly"]}"#,
        r#"line 7: key "delete": give limit values or delete, not both"#,
    ),
    (
        r#"{"op":"card_limits","card":"c","daily":"5"}"#,
        r#"line 7: key "currency": missing key for op "card_limits""#,
    ),
    (
        r#"{"op":"fx","from":"EUR","to":"EUR","rate":"1"}"#,
        r#"line 7: key "to": from and to are both EUR"#,
    ),
    (
        r#"{"op":"fx","from":"EUR","to":"USD","rate":"-1.1"}"#,
        r#"line 7: key "rate": a rate must be above zero, got -1.1"#,
    ),
    (
        r#"{"op":"advice","txn":"t","card":"c","amount":"1","currency":"EUR","single_message":true}"#,
        r#"line 7: key "single_message": an advice cannot be single_message"#,
    ),
    (
        r#"{"op":"raw","hex":"0100zz"}"#,
        r#"line 7: key "hex": character 5 is not a hex digit"#,
    ),
    (
        r#"{"op":"expect_invariants","profile":1}"#,
        r#"line 7: key "profile": unknown key: op "expect_invariants" takes no other key"#,
    ),
    (
        r#"{"op":"expect_limit_usage","card":"c","profile":1,"type":"PURCHASE","window":"daily","usage":"1"}"#,
        r#"line 7: key "profile": give card or profile, not both"#,
    ),
    (
        r#"{"op":"expect_limit_usage","card":"c","window":"weekly","usage":"1"}"#,
        r#"line 7: key "window": expected one of transaction, daily, monthly, lifetime, got "weekly""#,
    ),
    (
        r#"{"op":"expect_balance","profile":1,"currency":"EUR"}"#,
        r#"line 7: op "expect_balance" needs at least one of available, reserved or cash"#,
    ),
    (
        r#"{"op":"expect_txn","txn":"t","detailedDeclineReason":"ecom disabled"}"#,
        r#"line 7: key "detailedDeclineReason": "ecom disabled" is not a reason code like "CARD_FROZEN""#,
    ),
    (
        r#"{"op":"expect_pin_tries","card":"c","count":-1}"#,
        r#"line 7: key "count": expected a whole number from 0, got -1"#,
    ),
    (
        r#"{"op":"profile","profile":1.5}"#,
        r#"line 7: key "profile": a name is a string or a whole number"#,
    ),
];

#[test]
fn malformed_lines_name_the_line_and_the_key() {
    for &(line, expected) in MALFORMED {
        let got = match parse_line(7, line.as_bytes()) {
            Some(Err(e)) => e.to_string(),
            Some(Ok(step)) => format!("parsed: {step:?}"),
            None => "skipped".to_owned(),
        };
        assert_eq!(got, expected, "for {line}");
    }
}

#[test]
fn bad_json_is_reported_with_serde_position() {
    let e = parse_line(3, br#"{"op":"auth","#).unwrap().unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(e.key, None);
    assert!(
        e.message.starts_with("invalid JSON: EOF while parsing"),
        "{e}"
    );
    let e = parse_line(4, b"{\"op\":\"profile\",\"profile\":\"\xff\"}")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.to_string(), "line 4: line is not valid UTF-8");
}

#[test]
fn a_secret_in_a_bad_line_is_not_repeated() {
    let line = br#"{"op":"card","profile":1,"card":"c","pan":"4242424242424241","pin":"9817"}"#;
    let e = parse_line(1, line).unwrap().unwrap_err().to_string();
    assert!(!e.contains("424242"), "{e}");
    let line = br#"{"op":"card","profile":1,"card":"c","pan":"4242424242424242","pin":"98x7"}"#;
    let e = parse_line(1, line).unwrap().unwrap_err().to_string();
    assert!(!e.contains("98x7") && !e.contains("424242"), "{e}");
}

#[test]
fn comments_blank_lines_and_line_endings() {
    for skipped in [
        "",
        "   ",
        "# a comment",
        "   # indented comment",
        "\t",
        "#{\"op\":\"fly\"}",
    ] {
        assert!(parse_line(1, skipped.as_bytes()).is_none(), "{skipped:?}");
    }
    let text = "\u{feff}# title\r\n{\"op\":\"profile\",\"profile\":1}\r\n\r\n{\"op\":\"nope\"}\n\
                {\"op\":\"expect_invariants\"}";
    let scenario = Scenario::parse("t.jsonl", text.as_bytes());
    let lines: Vec<(usize, bool)> = scenario
        .lines
        .iter()
        .map(|l| match l {
            Ok(step) => (step.line, true),
            Err(e) => (e.line, false),
        })
        .collect();
    assert_eq!(lines, [(2, true), (4, false), (5, true)]);
}

#[test]
fn defaults_and_accepted_forms() {
    let step = |text: &str| parse_line(1, text.as_bytes()).unwrap().unwrap().kind;
    let auth =
        step(r#"{"op":"auth","txn":1,"card":"c","amount":"0.5","currency":"eur","mcc":742}"#);
    let StepKind::Traffic {
        op: TrafficOp::Auth(a),
        expect: None,
    } = auth
    else {
        panic!("{auth:?}")
    };
    assert_eq!(
        (a.txn.0.as_str(), a.mcc, a.currency),
        ("1", Mcc(742), Currency::EUR)
    );
    assert_eq!(
        (a.entry, a.processing),
        (EntryMode::Chip, ProcessingType::Purchase)
    );
    let usage = step(r#"{"op":"expect_limit_usage","card":"c","window":"DAILY","usage":"0"}"#);
    assert!(matches!(usage, StepKind::Expect(_)));
    let delete = step(r#"{"op":"card_limits","card":"c","currency":"GBP","delete":["daily"]}"#);
    assert!(matches!(
        delete,
        StepKind::Setup {
            op: SetupOp::CardLimits(_),
            ..
        }
    ));
    let null_reason = step(r#"{"op":"expect_txn","txn":"t","detailedDeclineReason":null}"#);
    let StepKind::Expect(cardcore_sim::scenario::step::ExpectOp::Txn(t)) = null_reason else {
        panic!("{null_reason:?}")
    };
    assert_eq!(
        t.detailed_decline_reason,
        Some(None),
        "null means: no reason"
    );
}

#[test]
fn every_op_is_known_by_its_name() {
    for op in OpName::ALL {
        assert_eq!(OpName::parse(op.as_str()), Some(op));
    }
    assert_eq!(OpName::ALL.len(), 26);
}
