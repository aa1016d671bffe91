//! Smart conversion: funding from several balances at fixed rates and fees, the order of
//! sources, fee rounding, shrinking order, and clearing above a converted hold.

// Amounts are written major_minor (`12_50` is 12.50 EUR, `1_234` is 1.234 KWD): that reads
// better than clippy's thousands grouping here.
#![allow(clippy::inconsistent_digit_grouping, clippy::mistyped_literal_suffixes)]

use std::str::FromStr;

use cardcore_core::{Currency, Money, ProfileId, TimeZone, TxnId};
use cardcore_ledger::book::{
    Book, BookError, FundingPrefs, FxTable, LedgerEvent, Leg, CONVERSION_LEGS_MAX,
};
use rust_decimal::Decimal;

const P: ProfileId = ProfileId(7);
const T: TxnId = TxnId(1);

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn m(minor: i64, c: Currency) -> Money {
    Money::new(minor, c)
}

/// 1 EUR = 0.85 GBP (0.5 % fee), 1 EUR = 1.10 USD (0.35 % fee).
fn rates() -> FxTable {
    FxTable::new()
        .with(Currency::EUR, Currency::GBP, dec("0.85"), 5_000)
        .with(Currency::EUR, Currency::USD, dec("1.10"), 3_500)
}

struct Ledger {
    book: Book,
    log: Vec<LedgerEvent>,
}

impl Ledger {
    /// A profile with these balances (opened in this order).
    fn with(balances: &[Money]) -> Ledger {
        let mut l = Ledger {
            book: Book::new(),
            log: Vec::new(),
        };
        l.run(l.book.open_profile(P, TimeZone::UTC, Currency::EUR));
        for amount in balances {
            l.run(l.book.open_balance(P, amount.currency));
            let id = l.book.balance_id(P, amount.currency).unwrap();
            if amount.amount_minor > 0 {
                l.run(l.book.top_up(id, *amount));
            }
        }
        l
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
        let mut replayed = Book::new();
        for e in &self.log {
            replayed.apply(e).unwrap();
        }
        assert_eq!(
            replayed.state_hash(),
            self.book.state_hash(),
            "replay differs"
        );
        event
    }

    fn hold(&mut self, amount: Money, prefs: FundingPrefs) -> LedgerEvent {
        self.run(self.book.plan_hold(T, P, amount, &prefs, &rates()))
    }

    /// (currency, covers, held, fee) per leg of the hold.
    fn legs(&self) -> Vec<(Currency, i64, i64, i64)> {
        let hold = self.book.hold(T).expect("a hold");
        hold.legs
            .iter()
            .map(|l| (l.currency, l.covers_minor, l.held_minor, l.fee_minor))
            .collect()
    }

    /// (available, reserved, cash) in minor units.
    fn balance(&self, currency: Currency) -> (i64, i64, i64) {
        let b = self.book.balance_of(P, currency).expect("balance");
        (b.available_minor, b.reserved_minor, b.cash_minor)
    }
}

fn three_currencies() -> Ledger {
    Ledger::with(&[
        m(10_00, Currency::EUR),
        m(50_00, Currency::GBP),
        m(100_00, Currency::USD),
    ])
}

#[test]
fn eur_funded_from_eur_then_the_default_gbp_then_usd() {
    let mut l = three_currencies();
    l.hold(
        m(80_00, Currency::EUR),
        FundingPrefs::smart(Some(Currency::GBP)),
    );
    // EUR 10.00; GBP can cover 58.52 EUR: ceil(58.52 × 0.85) = 49.75 + fee 0.25 = 50.00;
    // USD covers the last 11.48 EUR: ceil(12.628) = 12.63 + ceil(0.0442) 0.05 = 12.68.
    assert_eq!(
        l.legs(),
        [
            (Currency::EUR, 10_00, 10_00, 0),
            (Currency::GBP, 58_52, 50_00, 25),
            (Currency::USD, 11_48, 12_68, 5),
        ]
    );
    assert_eq!(l.balance(Currency::EUR), (0, 10_00, 10_00));
    assert_eq!(l.balance(Currency::GBP), (0, 50_00, 50_00));
    assert_eq!(l.balance(Currency::USD), (87_32, 12_68, 100_00));
    assert_eq!(l.book.hold(T).unwrap().amount(), m(80_00, Currency::EUR));
    let debits: Vec<_> = l.book.hold(T).unwrap().debits().collect();
    assert_eq!(debits[1].amount, m(50_00, Currency::GBP));
    assert_eq!(debits[1].covers, m(58_52, Currency::EUR));
    assert_eq!(debits[1].rate, dec("0.85"));
    assert_eq!(debits[1].fee, m(25, Currency::GBP));
}

#[test]
fn without_a_default_the_larger_value_goes_first() {
    // USD 100.00 is worth 90.91 EUR, GBP 50.00 is worth 58.82 EUR: USD first.
    let mut l = three_currencies();
    l.hold(m(30_00, Currency::EUR), FundingPrefs::smart(None));
    // 20.00 EUR from USD: 22.00 + ceil(0.077) 0.08.
    assert_eq!(
        l.legs(),
        [
            (Currency::EUR, 10_00, 10_00, 0),
            (Currency::USD, 20_00, 22_08, 8)
        ]
    );
    // The default currency wins over value.
    let mut l = three_currencies();
    l.hold(
        m(30_00, Currency::EUR),
        FundingPrefs::smart(Some(Currency::GBP)),
    );
    assert_eq!(l.legs()[1].0, Currency::GBP);
}

#[test]
fn blocked_smart_conversion_is_named_in_the_refusal() {
    let l = three_currencies();
    let refused = l.book.plan_hold(
        T,
        P,
        m(30_00, Currency::EUR),
        &FundingPrefs::SINGLE_CURRENCY,
        &rates(),
    );
    assert_eq!(
        refused,
        Err(BookError::InsufficientFunds {
            txn: T,
            shortfall: m(20_00, Currency::EUR),
            smart_conversion_blocked: true,
        })
    );
    // With conversion allowed but every balance used up, it is a plain shortfall.
    let refused = l.book.plan_hold(
        T,
        P,
        m(200_00, Currency::EUR),
        &FundingPrefs::smart(None),
        &rates(),
    );
    assert!(matches!(
        refused,
        Err(BookError::InsufficientFunds {
            smart_conversion_blocked: false,
            ..
        })
    ));
}

#[test]
fn balances_without_a_quote_are_skipped() {
    let mut l = Ledger::with(&[
        m(0, Currency::EUR),
        m(1_000, Currency::JPY),
        m(50_00, Currency::GBP),
    ]);
    l.hold(
        m(10_00, Currency::EUR),
        FundingPrefs::smart(Some(Currency::JPY)),
    );
    assert_eq!(l.legs(), [(Currency::GBP, 10_00, 8_55, 5)]);
    assert_eq!(l.balance(Currency::JPY), (1_000, 0, 1_000));
}

#[test]
fn fees_round_up_across_exponents() {
    // A JPY transaction funded from EUR: 1 000 JPY at 0.0061 = 6.10 EUR, 1 % fee 0.061 → 0.07.
    // The same from KWD: 1 000 JPY at 0.002 = 2.000 KWD, 0.25 % fee 0.005 KWD exactly.
    let table = FxTable::new()
        .with(Currency::JPY, Currency::EUR, dec("0.0061"), 10_000)
        .with(Currency::JPY, Currency::KWD, dec("0.002"), 2_500);
    let mut l = Ledger::with(&[m(20_00, Currency::EUR), m(10_000, Currency::KWD)]);
    let prefs = FundingPrefs::smart(Some(Currency::EUR));
    l.run(
        l.book
            .plan_hold(T, P, m(1_000, Currency::JPY), &prefs, &table),
    );
    assert_eq!(l.legs(), [(Currency::EUR, 1_000, 6_17, 7)]);
    let prefs = FundingPrefs::smart(Some(Currency::KWD));
    l.run(
        l.book
            .plan_hold(TxnId(2), P, m(1_000, Currency::JPY), &prefs, &table),
    );
    let hold = l.book.hold(TxnId(2)).unwrap();
    assert_eq!(hold.legs.as_slice()[0].held_minor, 2_005);
    assert_eq!(hold.legs.as_slice()[0].fee_minor, 5);
    // 1 JPY at 0.0061 EUR is 0.0061: rounded up to one cent, plus a one-cent fee.
    l.run(l.book.plan_hold(
        TxnId(3),
        P,
        m(1, Currency::JPY),
        &FundingPrefs::smart(Some(Currency::EUR)),
        &table,
    ));
    assert_eq!(
        l.book.hold(TxnId(3)).unwrap().legs.as_slice()[0].held_minor,
        2
    );
}

#[test]
fn shrinking_takes_other_currencies_first_newest_first() {
    let mut l = three_currencies();
    l.hold(
        m(80_00, Currency::EUR),
        FundingPrefs::smart(Some(Currency::GBP)),
    );
    l.run(l.book.plan_adjust_to(T, m(75_00, Currency::EUR)));
    // USD (newest) 11.48 → 6.48 EUR: ceil(7.128) 7.13 + ceil(0.024955) 0.03.
    assert_eq!(l.legs()[2], (Currency::USD, 6_48, 7_16, 3));
    l.run(l.book.plan_adjust_to(T, m(50_00, Currency::EUR)));
    // USD gone, GBP 58.52 → 40.00 EUR: 34.00 + 0.17.
    assert_eq!(
        l.legs(),
        [
            (Currency::EUR, 10_00, 10_00, 0),
            (Currency::GBP, 40_00, 34_17, 17)
        ]
    );
    assert_eq!(l.balance(Currency::USD), (100_00, 0, 100_00));
    l.run(l.book.plan_adjust_to(T, m(5_00, Currency::EUR)));
    assert_eq!(l.legs(), [(Currency::EUR, 5_00, 5_00, 0)]);
    assert_eq!(l.balance(Currency::GBP), (50_00, 0, 50_00));
    assert_eq!(l.balance(Currency::EUR), (5_00, 5_00, 10_00));
    l.run(l.book.plan_release(T));
    assert_eq!(l.balance(Currency::EUR), (10_00, 0, 10_00));
}

#[test]
fn a_lower_clearing_posts_at_the_authorisation_rates() {
    let mut l = three_currencies();
    l.hold(
        m(80_00, Currency::EUR),
        FundingPrefs::smart(Some(Currency::GBP)),
    );
    // Later rates do not matter: the legs carry theirs.
    let e = l.run(l.book.plan_capture(T, m(60_00, Currency::EUR)));
    let lines: Vec<_> = e.debits().map(|d| (d.amount, d.covers, d.fee)).collect();
    // USD released; GBP 58.52 → 50.00 EUR: 42.50 + ceil(0.2125) 0.22.
    assert_eq!(
        lines,
        [
            (
                m(10_00, Currency::EUR),
                m(10_00, Currency::EUR),
                m(0, Currency::EUR)
            ),
            (
                m(42_72, Currency::GBP),
                m(50_00, Currency::EUR),
                m(22, Currency::GBP)
            ),
        ]
    );
    assert_eq!(l.balance(Currency::GBP), (7_28, 0, 7_28));
    assert_eq!(l.balance(Currency::USD), (100_00, 0, 100_00));
    assert_eq!(l.book.totals(Currency::GBP).postings_minor, 42_72);
}

#[test]
fn a_higher_clearing_takes_the_excess_from_the_transaction_currency_flagged() {
    let mut l = three_currencies();
    l.hold(
        m(80_00, Currency::EUR),
        FundingPrefs::smart(Some(Currency::GBP)),
    );
    let e = l.run(l.book.plan_capture(T, m(85_00, Currency::EUR)));
    assert!(e.is_flagged());
    assert_eq!(l.balance(Currency::EUR), (-5_00, 0, -5_00));
    assert_eq!(l.balance(Currency::GBP), (0, 0, 0));
    assert_eq!(l.balance(Currency::USD), (87_32, 0, 87_32));
}

#[test]
fn over_clearing_without_a_transaction_currency_balance_opens_one() {
    let mut l = Ledger::with(&[m(50_00, Currency::GBP)]);
    l.hold(m(10_00, Currency::EUR), FundingPrefs::smart(None));
    assert_eq!(l.legs(), [(Currency::GBP, 10_00, 8_55, 5)]);
    let e = l.run(l.book.plan_capture(T, m(12_00, Currency::EUR)));
    assert!(e.is_flagged());
    assert!(e.opened().is_some());
    assert_eq!(l.balance(Currency::EUR), (-2_00, 0, -2_00));
    assert_eq!(l.balance(Currency::GBP), (41_45, 0, 41_45));
}

#[test]
fn a_growth_at_the_same_rate_merges_into_its_leg() {
    let mut l = Ledger::with(&[m(0, Currency::EUR), m(50_00, Currency::GBP)]);
    let prefs = FundingPrefs::smart(None);
    l.hold(m(10_00, Currency::EUR), prefs);
    assert_eq!(l.legs(), [(Currency::GBP, 10_00, 8_55, 5)]);
    l.run(
        l.book
            .plan_grow(T, m(5_00, Currency::EUR), &prefs, &rates()),
    );
    // Recomputed on 15.00 EUR: 12.75 + ceil(0.06375) 0.07 (the parts would hold 12.83).
    assert_eq!(l.legs(), [(Currency::GBP, 15_00, 12_82, 7)]);
    // At a new rate it is a new leg.
    let newer = FxTable::new().with(Currency::EUR, Currency::GBP, dec("0.86"), 5_000);
    l.run(l.book.plan_grow(T, m(1_00, Currency::EUR), &prefs, &newer));
    assert_eq!(l.legs().len(), 2);
    assert_eq!(l.legs()[1], (Currency::GBP, 1_00, 87, 1));
}

#[test]
fn a_plan_needing_too_many_legs_is_refused_but_a_stand_in_is_not() {
    let others = [Currency::GBP, Currency::USD, Currency::CHF, Currency::SGD];
    let mut balances = vec![m(0, Currency::EUR)];
    balances.extend(others.iter().map(|c| m(1_00, *c)));
    let mut table = FxTable::new();
    for c in others {
        table = table.with(Currency::EUR, c, dec("1"), 0);
    }
    let mut l = Ledger::with(&balances);
    let prefs = FundingPrefs::smart(None);
    let refused = l
        .book
        .plan_hold(T, P, m(4_00, Currency::EUR), &prefs, &table);
    assert_eq!(
        refused,
        Err(BookError::TooManyLegs {
            txn: T,
            max: CONVERSION_LEGS_MAX
        })
    );
    // Three legs are fine.
    let ok = l
        .book
        .plan_hold(T, P, m(3_00, Currency::EUR), &prefs, &table)
        .unwrap();
    assert!(matches!(&ok, LedgerEvent::HoldPlaced(h) if h.legs.len() == 3));
    // A stand-in takes three and puts the rest on EUR, past its funds.
    let e = l.run(
        l.book
            .plan_forced_hold(T, P, m(4_00, Currency::EUR), &prefs, &table),
    );
    assert!(e.is_flagged());
    let own: Vec<Leg> = l
        .book
        .hold(T)
        .unwrap()
        .legs
        .iter()
        .filter(|x| x.currency == Currency::EUR)
        .copied()
        .collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].held_minor, 1_00);
    assert_eq!(l.balance(Currency::EUR), (-1_00, 1_00, 0));
}

#[test]
fn a_single_message_can_be_converted_too() {
    let mut l = three_currencies();
    let prefs = FundingPrefs::smart(Some(Currency::USD));
    let e = l.run(
        l.book
            .plan_post(T, P, m(15_00, Currency::EUR), &prefs, &rates()),
    );
    // 5.00 EUR from USD: 5.50 + ceil(0.01925) 0.02.
    assert_eq!(l.balance(Currency::USD), (94_48, 0, 94_48));
    assert_eq!(l.balance(Currency::EUR), (0, 0, 0));
    assert_eq!(e.debits().count(), 2);
}
