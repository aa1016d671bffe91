//! The book's operations one by one, in currencies of exponent 0 (JPY), 2 (EUR) and 3 (KWD).

// Amounts are written major_minor (`12_50` is 12.50 EUR, `1_234` is 1.234 KWD): that reads
// better than clippy's thousands grouping here.
#![allow(clippy::inconsistent_digit_grouping, clippy::mistyped_literal_suffixes)]

use cardcore_core::{BalanceId, Currency, Money, ProfileId, TimeZone, TxnId};
use cardcore_ledger::book::{
    Book, BookError, CreditKind, FundingPrefs, LedgerEvent, NoRates, ReleaseCause,
};

const P: ProfileId = ProfileId(1);

fn jpy(minor: i64) -> Money {
    Money::new(minor, Currency::JPY)
}
fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}
fn kwd(minor: i64) -> Money {
    Money::new(minor, Currency::KWD)
}

/// A book and every event applied to it, checked after each step.
struct Ledger {
    book: Book,
    log: Vec<LedgerEvent>,
}

impl Ledger {
    fn new() -> Ledger {
        let mut l = Ledger {
            book: Book::new(),
            log: Vec::new(),
        };
        l.run(l.book.open_profile(P, TimeZone::UTC, Currency::EUR));
        l
    }

    /// A profile with one topped-up balance.
    fn with(amount: Money) -> (Ledger, BalanceId) {
        let mut l = Ledger::new();
        let id = l.open(amount.currency);
        l.run(l.book.top_up(id, amount));
        (l, id)
    }

    fn open(&mut self, currency: Currency) -> BalanceId {
        match self.run(self.book.open_balance(P, currency)) {
            LedgerEvent::BalanceOpened(o) => o.balance,
            other => panic!("expected BalanceOpened, got {other:?}"),
        }
    }

    fn run(&mut self, decided: Result<LedgerEvent, BookError>) -> LedgerEvent {
        let event = decided.unwrap_or_else(|e| panic!("refused: {e}"));
        self.book
            .apply(&event)
            .unwrap_or_else(|e| panic!("apply failed: {e}"));
        self.book
            .check_invariants()
            .unwrap_or_else(|e| panic!("after {event:?}: {e}"));
        self.log.push(event.clone());
        event
    }

    fn hold(&mut self, txn: u64, amount: Money) -> LedgerEvent {
        self.run(self.book.plan_hold(
            TxnId(txn),
            P,
            amount,
            &FundingPrefs::SINGLE_CURRENCY,
            &NoRates,
        ))
    }

    /// (available, reserved, cash) in minor units.
    fn balance(&self, currency: Currency) -> (i64, i64, i64) {
        let b = self.book.balance_of(P, currency).expect("balance");
        (b.available_minor, b.reserved_minor, b.cash_minor)
    }

    fn replayed(&self) -> Book {
        let mut book = Book::new();
        for e in &self.log {
            book.apply(e).unwrap();
        }
        book
    }
}

#[test]
fn balances_open_once_per_currency_and_take_top_ups() {
    let (mut l, id) = Ledger::with(jpy(10_000));
    assert_eq!(l.balance(Currency::JPY), (10_000, 0, 10_000));
    assert!(matches!(
        l.book.open_balance(P, Currency::JPY),
        Err(BookError::BalanceExists { balance, .. }) if balance == id
    ));
    assert_eq!(
        l.book.open_balance(ProfileId(9), Currency::JPY),
        Err(BookError::UnknownProfile(ProfileId(9)))
    );
    assert!(matches!(
        l.book.top_up(id, eur(5)),
        Err(BookError::CurrencyMismatch { .. })
    ));
    assert!(matches!(
        l.book.top_up(id, jpy(0)),
        Err(BookError::NonPositiveAmount { .. })
    ));
    assert!(matches!(
        l.book.top_up(id, jpy(-1)),
        Err(BookError::NonPositiveAmount { .. })
    ));
    assert_eq!(
        l.book.top_up(BalanceId(77), jpy(1)),
        Err(BookError::UnknownBalance(BalanceId(77)))
    );
    assert_eq!(
        l.book.open_profile(P, TimeZone::UTC, Currency::EUR),
        Err(BookError::ProfileExists(P))
    );
    let k = l.open(Currency::KWD);
    l.run(l.book.top_up(k, kwd(1_234)));
    assert_eq!(
        l.book.currencies_of(P).collect::<Vec<_>>(),
        [Currency::JPY, Currency::KWD]
    );
    assert_eq!(l.book.totals(Currency::KWD).top_ups_minor, 1_234);
}

#[test]
fn balance_ids_follow_the_partition_id_space() {
    let mut book = Book::with_balance_ids(3, 4);
    let e = book.open_profile(P, TimeZone::UTC, Currency::EUR).unwrap();
    book.apply(&e).unwrap();
    let mut ids = Vec::new();
    for c in [Currency::EUR, Currency::JPY, Currency::KWD] {
        let e = book.open_balance(P, c).unwrap();
        book.apply(&e).unwrap();
        ids.push(book.balance_id(P, c).unwrap().0);
    }
    assert_eq!(ids, [3, 7, 11]);
}

#[test]
fn jpy_hold_then_capture_at_the_same_amount() {
    let (mut l, _) = Ledger::with(jpy(10_000));
    l.hold(1, jpy(2_500));
    assert_eq!(l.balance(Currency::JPY), (7_500, 2_500, 10_000));
    assert_eq!(l.book.live_hold_txns().collect::<Vec<_>>(), [TxnId(1)]);
    let e = l.run(l.book.plan_capture(TxnId(1), jpy(2_500)));
    assert!(!e.is_flagged());
    assert_eq!(l.balance(Currency::JPY), (7_500, 0, 7_500));
    assert_eq!(l.book.totals(Currency::JPY).postings_minor, 2_500);
    assert_eq!(l.book.hold_count(), 0);
    let debits: Vec<_> = e.debits().collect();
    assert_eq!(debits.len(), 1);
    assert_eq!(debits[0].amount, jpy(2_500));
    assert_eq!(debits[0].fee, jpy(0));
}

#[test]
fn eur_hold_grows_shrinks_and_clears_lower() {
    let (mut l, _) = Ledger::with(eur(100_00));
    l.hold(1, eur(40_00));
    let prefs = FundingPrefs::SINGLE_CURRENCY;
    l.run(l.book.plan_grow(TxnId(1), eur(10_00), &prefs, &NoRates));
    assert_eq!(l.balance(Currency::EUR), (50_00, 50_00, 100_00));
    assert_eq!(l.book.hold(TxnId(1)).unwrap().amount(), eur(50_00));
    assert_eq!(
        l.book.hold(TxnId(1)).unwrap().legs.len(),
        1,
        "the own leg grows in place"
    );
    l.run(l.book.plan_adjust_to(TxnId(1), eur(30_00)));
    assert_eq!(l.balance(Currency::EUR), (70_00, 30_00, 100_00));
    l.run(l.book.plan_capture(TxnId(1), eur(25_00)));
    assert_eq!(l.balance(Currency::EUR), (75_00, 0, 75_00));
}

#[test]
fn kwd_clearing_above_the_hold_within_funds_is_not_flagged() {
    let (mut l, _) = Ledger::with(kwd(5_000));
    l.hold(1, kwd(1_234));
    let e = l.run(l.book.plan_capture(TxnId(1), kwd(1_500)));
    assert!(!e.is_flagged());
    assert_eq!(l.balance(Currency::KWD), (3_500, 0, 3_500));
    let amounts: Vec<Money> = e.debits().map(|d| d.amount).collect();
    assert_eq!(amounts, [kwd(1_234), kwd(266)]);
}

#[test]
fn over_clearing_goes_negative_flagged_until_topped_up() {
    let (mut l, id) = Ledger::with(eur(10_00));
    l.hold(1, eur(10_00));
    let e = l.run(l.book.plan_capture(TxnId(1), eur(12_00)));
    assert!(e.is_flagged());
    assert_eq!(l.balance(Currency::EUR), (-2_00, 0, -2_00));
    assert!(l.book.balance(id).unwrap().overdrawn);
    // Nothing more can be held on a negative balance.
    let refused = l.book.plan_hold(
        TxnId(2),
        P,
        eur(1),
        &FundingPrefs::SINGLE_CURRENCY,
        &NoRates,
    );
    let shortfall = match refused {
        Err(BookError::InsufficientFunds { shortfall, .. }) => Some(shortfall),
        _ => None,
    };
    assert_eq!(shortfall, Some(eur(1)));
    l.run(l.book.top_up(id, eur(5_00)));
    assert_eq!(l.balance(Currency::EUR), (3_00, 0, 3_00));
    assert!(!l.book.balance(id).unwrap().overdrawn);
}

#[test]
fn insufficient_funds_names_the_shortfall_and_changes_nothing() {
    let (l, _) = Ledger::with(eur(10_00));
    let before = l.book.state_hash();
    let single = l.book.plan_hold(
        TxnId(1),
        P,
        eur(12_50),
        &FundingPrefs::SINGLE_CURRENCY,
        &NoRates,
    );
    assert_eq!(
        single,
        Err(BookError::InsufficientFunds {
            txn: TxnId(1),
            shortfall: eur(2_50),
            smart_conversion_blocked: true
        })
    );
    let smart = l.book.plan_hold(
        TxnId(1),
        P,
        eur(12_50),
        &FundingPrefs::smart(None),
        &NoRates,
    );
    assert!(matches!(
        smart,
        Err(BookError::InsufficientFunds {
            smart_conversion_blocked: false,
            ..
        })
    ));
    assert_eq!(l.book.state_hash(), before);
}

#[test]
fn stand_in_hold_goes_past_funds_flagged_and_release_restores() {
    let (mut l, id) = Ledger::with(eur(5_00));
    let prefs = FundingPrefs::SINGLE_CURRENCY;
    let e = l.run(
        l.book
            .plan_forced_hold(TxnId(1), P, eur(8_00), &prefs, &NoRates),
    );
    assert!(e.is_flagged());
    assert_eq!(l.balance(Currency::EUR), (-3_00, 8_00, 5_00));
    assert!(l.book.hold(TxnId(1)).unwrap().flagged);
    assert!(l.book.balance(id).unwrap().overdrawn);
    let e = l.run(l.book.plan_release(TxnId(1)));
    assert_eq!(
        e,
        LedgerEvent::HoldReleased {
            txn: TxnId(1),
            cause: ReleaseCause::Reversed
        }
    );
    assert_eq!(l.balance(Currency::EUR), (5_00, 0, 5_00));
    assert!(!l.book.balance(id).unwrap().overdrawn);
}

#[test]
fn stand_in_within_funds_is_not_flagged() {
    let (mut l, _) = Ledger::with(eur(5_00));
    let prefs = FundingPrefs::SINGLE_CURRENCY;
    let e = l.run(
        l.book
            .plan_forced_hold(TxnId(1), P, eur(4_00), &prefs, &NoRates),
    );
    assert!(!e.is_flagged());
}

#[test]
fn stand_in_in_a_currency_without_balance_opens_one() {
    let mut l = Ledger::new();
    let prefs = FundingPrefs::SINGLE_CURRENCY;
    let e = l.run(
        l.book
            .plan_forced_hold(TxnId(1), P, jpy(700), &prefs, &NoRates),
    );
    let opened = e.opened().expect("a JPY balance is opened");
    assert_eq!(opened.currency, Currency::JPY);
    assert_eq!(l.balance(Currency::JPY), (-700, 700, 0));
    l.run(l.book.plan_capture(TxnId(1), jpy(700)));
    assert_eq!(l.balance(Currency::JPY), (-700, 0, -700));
}

#[test]
fn expiry_releases_and_adjustments_check_their_bounds() {
    let (mut l, _) = Ledger::with(kwd(9_999));
    l.hold(1, kwd(2_000));
    assert!(matches!(
        l.book.plan_adjust_to(TxnId(1), kwd(2_001)),
        Err(BookError::AdjustAboveHold { requested, .. }) if requested == kwd(2_001)
    ));
    assert!(matches!(
        l.book.plan_adjust_to(TxnId(1), kwd(-1)),
        Err(BookError::NegativeAmount { .. })
    ));
    assert!(matches!(
        l.book.plan_adjust_to(TxnId(1), eur(1)),
        Err(BookError::CurrencyMismatch { .. })
    ));
    let same = l.run(l.book.plan_adjust_to(TxnId(1), kwd(2_000)));
    assert!(matches!(same, LedgerEvent::HoldResized(_)));
    assert_eq!(l.balance(Currency::KWD), (7_999, 2_000, 9_999));
    let zero = l.book.plan_adjust_to(TxnId(1), kwd(0)).unwrap();
    assert_eq!(
        zero,
        LedgerEvent::HoldReleased {
            txn: TxnId(1),
            cause: ReleaseCause::Reversed
        }
    );
    let e = l.run(l.book.plan_expire(TxnId(1)));
    assert_eq!(
        e,
        LedgerEvent::HoldReleased {
            txn: TxnId(1),
            cause: ReleaseCause::Expired
        }
    );
    assert_eq!(l.balance(Currency::KWD), (9_999, 0, 9_999));
    assert_eq!(
        l.book.plan_expire(TxnId(1)),
        Err(BookError::UnknownHold(TxnId(1)))
    );
    assert_eq!(
        l.book.plan_capture(TxnId(1), kwd(1)),
        Err(BookError::UnknownHold(TxnId(1)))
    );
}

#[test]
fn holds_are_keyed_by_transaction() {
    let (mut l, _) = Ledger::with(eur(100_00));
    l.hold(1, eur(10_00));
    let prefs = FundingPrefs::SINGLE_CURRENCY;
    assert_eq!(
        l.book.plan_hold(TxnId(1), P, eur(1), &prefs, &NoRates),
        Err(BookError::HoldExists(TxnId(1)))
    );
    assert_eq!(
        l.book.plan_post(TxnId(1), P, eur(1), &prefs, &NoRates),
        Err(BookError::HoldExists(TxnId(1)))
    );
    assert!(matches!(
        l.book.plan_hold(TxnId(2), P, eur(0), &prefs, &NoRates),
        Err(BookError::NonPositiveAmount { .. })
    ));
    assert!(matches!(
        l.book.plan_grow(TxnId(1), jpy(5), &prefs, &NoRates),
        Err(BookError::CurrencyMismatch { .. })
    ));
    assert_eq!(
        l.book.plan_grow(TxnId(9), eur(5), &prefs, &NoRates),
        Err(BookError::UnknownHold(TxnId(9)))
    );
    assert!(matches!(
        l.book.plan_capture(TxnId(1), eur(-5)),
        Err(BookError::NegativeAmount { .. })
    ));
}

#[test]
fn clearing_at_zero_releases_everything_and_posts_nothing() {
    let (mut l, _) = Ledger::with(eur(20_00));
    l.hold(1, eur(10_00));
    let e = l.run(l.book.plan_capture(TxnId(1), eur(0)));
    assert_eq!(e.debits().count(), 0);
    assert_eq!(l.balance(Currency::EUR), (20_00, 0, 20_00));
}

#[test]
fn single_message_posts_at_once() {
    let (mut l, _) = Ledger::with(jpy(3_000));
    let prefs = FundingPrefs::SINGLE_CURRENCY;
    l.run(l.book.plan_post(TxnId(5), P, jpy(1_200), &prefs, &NoRates));
    assert_eq!(l.balance(Currency::JPY), (1_800, 0, 1_800));
    assert_eq!(l.book.hold(TxnId(5)), None);
    assert!(matches!(
        l.book.plan_post(TxnId(6), P, jpy(1_801), &prefs, &NoRates),
        Err(BookError::InsufficientFunds { .. })
    ));
    // A clearing whose hold expired is posted even past funds, flagged.
    let e = l.run(
        l.book
            .plan_forced_post(TxnId(6), P, jpy(2_000), &prefs, &NoRates),
    );
    assert!(e.is_flagged());
    assert_eq!(l.balance(Currency::JPY), (-200, 0, -200));
    assert_eq!(l.book.totals(Currency::JPY).postings_minor, 3_200);
}

#[test]
fn refunds_credit_and_open_a_balance_when_needed() {
    let (mut l, _) = Ledger::with(eur(1_00));
    let e = l.run(l.book.plan_refund(TxnId(8), P, eur(2_50)));
    assert_eq!(e.credit().map(|(_, m)| m), Some(eur(2_50)));
    assert!(matches!(e, LedgerEvent::Credited(c) if c.kind == CreditKind::Refund(TxnId(8))));
    assert_eq!(l.balance(Currency::EUR), (3_50, 0, 3_50));
    let e = l.run(l.book.plan_refund(TxnId(9), P, kwd(1)));
    assert!(e.opened().is_some());
    assert_eq!(l.balance(Currency::KWD), (1, 0, 1));
    assert_eq!(l.book.totals(Currency::EUR).refunds_minor, 2_50);
    assert!(matches!(
        l.book.plan_refund(TxnId(9), P, kwd(0)),
        Err(BookError::NonPositiveAmount { .. })
    ));
    assert_eq!(
        l.book.plan_refund(TxnId(9), ProfileId(4), kwd(5)),
        Err(BookError::UnknownProfile(ProfileId(4)))
    );
}

#[test]
fn an_event_that_does_not_fit_is_refused_and_changes_nothing() {
    let (mut l, _) = Ledger::with(eur(10_00));
    let placed = l.hold(1, eur(4_00));
    let before = l.book.state_hash();
    assert!(matches!(
        l.book.apply(&placed),
        Err(BookError::EventDoesNotApply { .. })
    ));
    let capture = l.book.plan_capture(TxnId(1), eur(4_00)).unwrap();
    l.run(Ok(capture.clone()));
    let after = l.book.state_hash();
    assert_ne!(before, after);
    assert!(matches!(
        l.book.apply(&capture),
        Err(BookError::EventDoesNotApply { .. })
    ));
    assert_eq!(l.book.state_hash(), after);
    // Another partition's book has never heard of the profile.
    let mut other = Book::new();
    assert!(matches!(
        other.apply(&placed),
        Err(BookError::EventDoesNotApply { .. })
    ));
    assert_eq!(other.state_hash(), Book::new().state_hash());
}

#[test]
fn a_tampered_event_is_refused_whole() {
    let (mut l, _) = Ledger::with(eur(10_00));
    let mut placed = match l.book.plan_hold(
        TxnId(1),
        P,
        eur(4_00),
        &FundingPrefs::SINGLE_CURRENCY,
        &NoRates,
    ) {
        Ok(LedgerEvent::HoldPlaced(h)) => h,
        other => panic!("{other:?}"),
    };
    let before = l.book.state_hash();
    let mut cases = Vec::new();
    let mut wrong_currency = placed;
    wrong_currency.currency = Currency::JPY;
    cases.push(wrong_currency);
    let mut other_profile = placed;
    other_profile.profile = ProfileId(2);
    cases.push(other_profile);
    let mut empty = placed;
    empty.legs = Default::default();
    cases.push(empty);
    for case in cases {
        let result = l.book.apply(&LedgerEvent::HoldPlaced(case));
        assert!(
            matches!(result, Err(BookError::EventDoesNotApply { .. })),
            "{case:?}"
        );
        assert_eq!(l.book.state_hash(), before);
    }
    placed.flagged = false;
    l.run(Ok(LedgerEvent::HoldPlaced(placed)));
}

#[test]
fn replay_and_snapshots_rebuild_the_same_state() {
    let (mut l, id) = Ledger::with(eur(50_00));
    let k = l.open(Currency::KWD);
    l.run(l.book.top_up(k, kwd(3_000)));
    l.hold(1, eur(20_00));
    l.hold(2, eur(5_00));
    l.run(l.book.plan_capture(TxnId(1), eur(21_00)));
    l.run(l.book.plan_refund(TxnId(3), P, jpy(90)));
    l.run(l.book.top_up(id, eur(1)));
    let hash = l.book.state_hash();
    assert_eq!(l.replayed().state_hash(), hash);

    let json = serde_json::to_string(&l.book).unwrap();
    let from_json: Book = serde_json::from_str(&json).unwrap();
    assert_eq!(from_json.state_hash(), hash);
    let bytes = bincode::serialize(&l.book).unwrap();
    let from_bincode: Book = bincode::deserialize(&bytes).unwrap();
    assert_eq!(from_bincode.state_hash(), hash);
    assert_eq!(
        bincode::serialize(&from_bincode).unwrap(),
        bytes,
        "canonical bytes"
    );

    // The restored book goes on exactly like the original.
    let mut restored = from_bincode;
    let e = restored.plan_capture(TxnId(2), eur(5_00)).unwrap();
    assert_eq!(e, l.book.plan_capture(TxnId(2), eur(5_00)).unwrap());
    restored.apply(&e).unwrap();
    l.run(Ok(e));
    assert_eq!(restored.state_hash(), l.book.state_hash());
}

#[test]
fn a_corrupt_snapshot_is_refused() {
    let (mut l, _) = Ledger::with(eur(50_00));
    l.hold(1, eur(20_00));
    let good = l.book.to_snapshot();
    assert!(Book::from_snapshot(good.clone()).is_ok());

    let mut cash = good.clone();
    cash.balances[0].cash_minor += 1;
    let err = Book::from_snapshot(cash).unwrap_err();
    assert!(err.contains("cash"), "{err}");

    let mut lost_hold = good.clone();
    lost_hold.holds.clear();
    let err = Book::from_snapshot(lost_hold).unwrap_err();
    assert!(err.contains("reserved"), "{err}");

    let mut totals = good.clone();
    totals.totals[0].top_ups_minor -= 1;
    assert!(Book::from_snapshot(totals).unwrap_err().contains("top-ups"));

    let mut extreme = good.clone();
    extreme.totals[0].top_ups_minor = i128::MAX;
    extreme.totals[0].refunds_minor = i128::MAX;
    assert!(Book::from_snapshot(extreme)
        .unwrap_err()
        .contains("top-ups"));

    let mut version = good;
    version.version = 99;
    assert!(Book::from_snapshot(version)
        .unwrap_err()
        .contains("version"));
}

#[test]
fn json_events_round_trip() {
    let (mut l, _) = Ledger::with(kwd(9_000));
    l.hold(1, kwd(1_001));
    l.run(l.book.plan_capture(TxnId(1), kwd(999)));
    for e in &l.log {
        let json = serde_json::to_string(e).unwrap();
        let back: LedgerEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, e);
        let bytes = bincode::serialize(e).unwrap();
        let back: LedgerEvent = bincode::deserialize(&bytes).unwrap();
        assert_eq!(&back, e);
    }
}
