//! The journal's hand-written layout for the events of the decision path (transaction
//! records, answers, approvals' holds and usage): random values encode and decode back to
//! themselves, mixed with events in bincode; random bytes and damaged records are refused
//! with an error, never a panic.

use cardcore_authz::events::{decode, EngineEvent, JournalEntry, RecordWriter};
use cardcore_authz::explain::{Check, Explanation, Seen};
use cardcore_authz::request::ShortText;
use cardcore_authz::state::{Answer, TxnFlags, TxnRecord};
use cardcore_authz::{MessageKey, MessageKind};
use cardcore_core::decline::{Decline, DeclineReason, DetailedDeclineReason, ResponseCode};
use cardcore_core::{
    BalanceId, CardStatus, CardToken, Channel, Currency, LimitType, Mcc, Money, ProfileId,
    ProfileStatus, RuleId, Timestamp, TransactionState, TransactionType, TxnId,
};
use cardcore_ledger::book::{
    Authorised, HoldPlaced, LedgerEvent, Leg, Legs, OpenBalance, UsageAdded, UsageAmounts, Window,
    HOLD_LEGS_MAX,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rust_decimal::Decimal;

/// Random cases per property.
const CASES: u32 = 512;
/// Random byte strings fed to the decoder.
const FUZZ_CASES: u32 = 8192;
/// Events per random record.
const EVENTS_MAX: usize = 6;

fn one_of<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    (0..all.len()).prop_map(move |i| all[i])
}

fn currency() -> impl Strategy<Value = Currency> {
    let all: Vec<Currency> = Currency::all().collect();
    (0..all.len()).prop_map(move |i| all[i])
}

fn money() -> impl Strategy<Value = Money> {
    (any::<i64>(), currency()).prop_map(|(minor, c)| Money::new(minor, c))
}

fn text<const N: usize>() -> impl Strategy<Value = ShortText<N>> {
    prop::collection::vec(0x20u8..0x7f, 0..N + 4).prop_map(|bytes| ShortText::new(&bytes))
}

fn seen() -> impl Strategy<Value = Seen> {
    prop_oneof![
        Just(Seen::None),
        one_of(&CardStatus::ALL).prop_map(|status| Seen::CardStatus { status }),
        one_of(&ProfileStatus::ALL).prop_map(|status| Seen::ProfileStatus { status }),
        (any::<bool>(), any::<bool>()).prop_map(|(card_expired, message_matches)| {
            Seen::Expiry {
                card_expired,
                message_matches,
            }
        }),
        (one_of(&Channel::ALL), any::<bool>())
            .prop_map(|(channel, enabled)| Seen::Channel { channel, enabled }),
        (any::<u8>(), any::<bool>(), any::<Option<bool>>()).prop_map(
            |(tries_before, pin_given, pin_ok)| Seen::PinTries {
                tries_before,
                pin_given,
                pin_ok,
            }
        ),
        any::<u64>().prop_map(|r| Seen::Rule { rule: RuleId(r) }),
        (money(), money(), money()).prop_map(|(limit, usage, amount)| Seen::Limit {
            limit,
            usage,
            amount,
        }),
        (money(), money()).prop_map(|(available, needed)| Seen::Funds { available, needed }),
        money().prop_map(|amount| Seen::Amount { amount }),
    ]
}

fn explanation() -> impl Strategy<Value = Explanation> {
    let line = (one_of(&Check::ALL), any::<bool>(), seen());
    prop::collection::vec(line, 0..6).prop_map(|lines| {
        let mut e = Explanation::new();
        for (check, passed, seen) in lines {
            e.push(check, passed, seen);
        }
        e
    })
}

fn decline() -> impl Strategy<Value = Decline> {
    let detailed = prop::option::of(one_of(&DetailedDeclineReason::ALL));
    (one_of(&DeclineReason::ALL), detailed)
        .prop_map(|(reason, detailed)| Decline { reason, detailed })
}

fn code<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    prop::array::uniform(prop_oneof![b'0'..=b'9', b'A'..=b'Z'])
}

fn response_code() -> impl Strategy<Value = ResponseCode> {
    code::<2>().prop_map(|b| ResponseCode::from_bytes(b).expect("letters and digits"))
}

fn key() -> impl Strategy<Value = MessageKey> {
    (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(stan, transmission, acquirer)| {
        MessageKey {
            stan,
            transmission,
            acquirer,
        }
    })
}

fn flags() -> impl Strategy<Value = TxnFlags> {
    any::<[bool; 4]>().prop_map(|[stand_in, over_cleared, pre_auth, expired]| TxnFlags {
        stand_in,
        over_cleared,
        pre_auth,
        expired,
    })
}

fn record() -> impl Strategy<Value = TxnRecord> {
    let ids = (
        any::<u64>(),
        any::<u64>(),
        any::<u128>(),
        one_of(&TransactionType::ALL),
        one_of(&TransactionState::ALL),
        one_of(&MessageKind::ALL),
        key(),
        text::<12>(),
    );
    let money_part = (
        money(),
        money(),
        prop::option::of(money()),
        any::<u16>(),
        one_of(&Channel::ALL),
        text::<40>(),
        text::<3>(),
    );
    let outcome = (
        response_code(),
        prop::option::of(decline()),
        prop::option::of(code::<6>()),
        flags(),
        any::<i64>(),
        any::<i64>(),
        prop::option::of(any::<i64>()),
        (explanation(), prop::option::of(any::<u64>())),
    );
    (ids, money_part, outcome).prop_map(|(ids, money_part, outcome)| {
        let (id, profile, card, txn_type, state, kind, key, rrn) = ids;
        let (requested, authorised, cleared, mcc, channel, merchant, country) = money_part;
        let (response_code, decline, approval_code, flags, created, modified, purge, rest) =
            outcome;
        let (explanation, previous) = rest;
        TxnRecord {
            id: TxnId(id),
            profile: ProfileId(profile),
            card: CardToken(card),
            txn_type,
            state,
            kind,
            key,
            rrn,
            requested,
            authorised,
            cleared,
            mcc: Mcc(mcc),
            channel,
            merchant,
            country,
            response_code,
            decline,
            approval_code,
            flags,
            created: Timestamp(created),
            modified: Timestamp(modified),
            purge_time: purge.map(Timestamp),
            explanation,
            previous_of_card: previous.map(TxnId),
        }
    })
}

fn answer() -> impl Strategy<Value = Answer> {
    (
        response_code(),
        prop::option::of(decline()),
        prop::option::of(any::<u64>()),
        prop::option::of(code::<6>()),
        prop::option::of(money()),
    )
        .prop_map(
            |(response_code, decline, txn, approval_code, approved_amount)| Answer {
                response_code,
                decline,
                txn: txn.map(TxnId),
                approval_code,
                approved_amount,
            },
        )
}

fn leg() -> impl Strategy<Value = Leg> {
    (
        (
            any::<u64>(),
            currency(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
        ),
        (any::<i64>(), 0u32..=28, any::<u32>()),
    )
        .prop_map(
            |((balance, currency, held, fee, covers), (mantissa, scale, ppm))| Leg {
                balance: BalanceId(balance),
                currency,
                held_minor: held,
                fee_minor: fee,
                covers_minor: covers,
                rate: Decimal::new(mantissa, scale),
                fee_ppm: ppm,
            },
        )
}

fn window() -> impl Strategy<Value = Window> {
    (any::<i64>(), any::<i64>()).prop_map(|(start, end)| Window {
        start: Timestamp(start),
        end: Timestamp(end),
    })
}

fn authorised() -> impl Strategy<Value = Authorised> {
    let open = prop::option::of((any::<u64>(), any::<u64>(), currency()).prop_map(
        |(balance, profile, currency)| OpenBalance {
            balance: BalanceId(balance),
            profile: ProfileId(profile),
            currency,
        },
    ));
    let hold = (
        any::<u64>(),
        any::<u64>(),
        currency(),
        prop::collection::vec(leg(), 0..=HOLD_LEGS_MAX),
        open,
        any::<bool>(),
    )
        .prop_map(|(txn, profile, currency, legs, open, flagged)| HoldPlaced {
            txn: TxnId(txn),
            profile: ProfileId(profile),
            currency,
            legs: Legs::from_slice(&legs).expect("within the bound"),
            open,
            flagged,
        });
    let usage = (
        (
            any::<u64>(),
            any::<u128>(),
            one_of(&LimitType::ALL),
            currency(),
        ),
        any::<[i64; 3]>(),
        window(),
        window(),
    )
        .prop_map(
            |((txn, card, limit_type, currency), amounts, daily, monthly)| UsageAdded {
                txn: TxnId(txn),
                card: CardToken(card),
                limit_type,
                currency,
                amounts: UsageAmounts {
                    txn_minor: amounts[0],
                    card_minor: amounts[1],
                    profile_minor: amounts[2],
                },
                daily,
                monthly,
            },
        );
    (hold, usage).prop_map(|(hold, usage)| Authorised { hold, usage })
}

/// An event of the decision path, or one that stays in bincode.
fn event() -> impl Strategy<Value = EngineEvent> {
    prop_oneof![
        record().prop_map(EngineEvent::Txn),
        (key(), answer()).prop_map(|(key, answer)| EngineEvent::Answered { key, answer }),
        authorised().prop_map(|e| EngineEvent::Ledger(LedgerEvent::Authorised(e))),
        (any::<u128>(), any::<u8>()).prop_map(|(card, count)| EngineEvent::PinTriesSet {
            card: CardToken(card),
            count,
        }),
    ]
}

/// Events have no `PartialEq`: compare the kinds this test makes.
fn same(a: &EngineEvent, b: &EngineEvent) -> bool {
    match (a, b) {
        (EngineEvent::Txn(x), EngineEvent::Txn(y)) => x == y,
        (
            EngineEvent::Answered { key, answer },
            EngineEvent::Answered {
                key: key2,
                answer: answer2,
            },
        ) => key == key2 && answer == answer2,
        (EngineEvent::Ledger(x), EngineEvent::Ledger(y)) => x == y,
        (
            EngineEvent::PinTriesSet { card, count },
            EngineEvent::PinTriesSet {
                card: card2,
                count: count2,
            },
        ) => card == card2 && count == count2,
        _ => false,
    }
}

fn encode(profile: u64, events: &[EngineEvent]) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(64);
    for e in events {
        w.push(ProfileId(profile), e);
    }
    w.finish().expect("events were pushed").to_vec()
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

#[test]
fn records_round_trip() {
    let records = (any::<u64>(), prop::collection::vec(event(), 1..=EVENTS_MAX));
    run(CASES, records, |(profile, events)| {
        let bytes = encode(profile, &events);
        let decoded = decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let JournalEntry::Partition {
            profile: back,
            events: back_events,
        } = decoded
        else {
            return Err(TestCaseError::fail("not a partition record"));
        };
        prop_assert_eq!(back, ProfileId(profile));
        prop_assert_eq!(back_events.len(), events.len());
        for (a, b) in events.iter().zip(&back_events) {
            prop_assert!(same(a, b), "{:?} came back as {:?}", a, b);
        }
        Ok(())
    });
}

#[test]
fn random_bytes_are_refused_without_panicking() {
    let bytes = prop::collection::vec(any::<u8>(), 0..600);
    // Random bytes, and random bytes behind a well-formed partition header.
    let headed = (
        any::<u64>(),
        1u32..8,
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(profile, count, body)| {
            let mut out = vec![3u8];
            out.extend_from_slice(&profile.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend(body);
            out
        });
    run(FUZZ_CASES, prop_oneof![bytes, headed], |bytes| {
        let _ = decode(&bytes);
        Ok(())
    });
}

#[test]
fn damaged_records_are_refused_or_read_without_panicking() {
    let damage = (
        any::<u64>(),
        prop::collection::vec(event(), 1..=EVENTS_MAX),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        any::<prop::sample::Index>(),
    );
    run(CASES, damage, |(profile, events, flips, cut)| {
        let bytes = encode(profile, &events);
        let mut flipped = bytes.clone();
        for (at, byte) in flips {
            let i = at.index(flipped.len());
            flipped[i] ^= byte | 1;
        }
        let _ = decode(&flipped);
        let cut = cut.index(bytes.len());
        prop_assert!(
            decode(&bytes[..cut]).is_err(),
            "a record cut at {} read",
            cut
        );
        Ok(())
    });
}

#[test]
fn refusals_name_the_event_and_field() {
    let txn = TxnRecord {
        id: TxnId(1),
        profile: ProfileId(2),
        card: CardToken(3),
        txn_type: TransactionType::PosPurchase,
        state: TransactionState::InProgress,
        kind: MessageKind::Authorization,
        key: MessageKey {
            stan: 1,
            transmission: 2,
            acquirer: 3,
        },
        rrn: ShortText::new(b"000000000001"),
        requested: Money::new(100, Currency::EUR),
        authorised: Money::new(100, Currency::EUR),
        cleared: None,
        mcc: Mcc(5411),
        channel: Channel::PosChip,
        merchant: ShortText::new(b"SHOP"),
        country: ShortText::new(b"GB"),
        response_code: ResponseCode::APPROVED,
        decline: None,
        approval_code: Some(*b"ABC123"),
        flags: TxnFlags::default(),
        created: Timestamp(0),
        modified: Timestamp(0),
        purge_time: None,
        explanation: Explanation::new(),
        previous_of_card: None,
    };
    let bytes = encode(2, &[EngineEvent::Txn(txn)]);
    // Header (13 bytes), kind (1), id, profile, card (32): the transaction type's byte.
    let txn_type_at = 13 + 1 + 32;
    let mut bad = bytes.clone();
    bad[txn_type_at] = 200;
    let error = decode(&bad)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("Txn") && error.contains("txn_type"),
        "{error}"
    );
    let mut bad = bytes.clone();
    bad[13] = 99;
    let error = decode(&bad)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("unknown event kind"), "{error}");
    assert!(decode(&bytes).is_ok());
}
