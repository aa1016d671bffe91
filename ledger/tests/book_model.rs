//! Model-based tests: random operations against the book and against a tiny reference
//! model, with restarts (replay of every event so far, JSON and bincode snapshots) in the
//! middle, checking invariants and equality after every step.
//!
//! - `single_currency_matches_the_model`: one EUR balance; the model predicts every
//!   amount, refusal and flag.
//! - `multi_currency_conserves_money`: EUR, GBP and JPY balances with smart conversion at
//!   random rates and fees; checks invariants, hold amounts and conservation per currency
//!   (from the events' own debits and credits) after every step, and replay at random
//!   points and at the end.

use std::collections::BTreeMap;

use cardcore_core::{Currency, Money, ProfileId, TimeZone, TxnId};
use cardcore_ledger::book::{Book, BookError, FundingPrefs, FxTable, LedgerEvent, NoRates};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rust_decimal::Decimal;

const P: ProfileId = ProfileId(42);
/// Holds use transaction ids below this; posts and refunds get fresh ids above it.
const HOLD_TXNS: u64 = 6;

#[derive(Clone, Copy, Debug)]
enum Restart {
    Replay,
    Json,
    Bincode,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    TopUp(i64),
    Hold(u64, i64),
    ForcedHold(u64, i64),
    Grow(u64, i64),
    ForcedGrow(u64, i64),
    AdjustTo(u64, i64),
    Capture(u64, i64),
    Release(u64),
    Expire(u64),
    Refund(i64),
    Post(i64),
    ForcedPost(i64),
}

/// One step of a test: an operation, or a restart of the book.
#[derive(Clone, Copy, Debug)]
enum Step {
    Op(Op),
    Restart(Restart),
}

fn op() -> impl Strategy<Value = Op> {
    let txn = 0..HOLD_TXNS;
    let amount = 1..3_000i64;
    prop_oneof![
        3 => (1..5_000i64).prop_map(Op::TopUp),
        4 => (txn.clone(), amount.clone()).prop_map(|(t, a)| Op::Hold(t, a)),
        1 => (txn.clone(), amount.clone()).prop_map(|(t, a)| Op::ForcedHold(t, a)),
        2 => (txn.clone(), amount.clone()).prop_map(|(t, a)| Op::Grow(t, a)),
        1 => (txn.clone(), amount.clone()).prop_map(|(t, a)| Op::ForcedGrow(t, a)),
        2 => (txn.clone(), 0..4_000i64).prop_map(|(t, a)| Op::AdjustTo(t, a)),
        3 => (txn.clone(), 0..4_000i64).prop_map(|(t, a)| Op::Capture(t, a)),
        1 => txn.clone().prop_map(Op::Release),
        1 => txn.prop_map(Op::Expire),
        1 => amount.clone().prop_map(Op::Refund),
        1 => amount.clone().prop_map(Op::Post),
        1 => amount.prop_map(Op::ForcedPost),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let restart = prop_oneof![
        Just(Restart::Replay),
        Just(Restart::Json),
        Just(Restart::Bincode)
    ];
    prop_oneof![12 => op().prop_map(Step::Op), 1 => restart.prop_map(Step::Restart)]
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x6361_7264),
        ..Config::default()
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

/// The book under test, its event log, and restarts.
struct Subject {
    book: Book,
    log: Vec<LedgerEvent>,
    next_txn: u64,
}

impl Subject {
    fn new(currencies: &[Currency]) -> Subject {
        let mut s = Subject {
            book: Book::new(),
            log: Vec::new(),
            next_txn: 1_000,
        };
        s.exec(s.book.open_profile(P, TimeZone::UTC, Currency::EUR))
            .unwrap();
        for c in currencies {
            s.exec(s.book.open_balance(P, *c)).unwrap();
        }
        s
    }

    /// Applies a decided event (and checks the invariants); passes a refusal through.
    fn exec(&mut self, decided: Result<LedgerEvent, BookError>) -> Result<LedgerEvent, BookError> {
        let event = decided?;
        self.book
            .apply(&event)
            .unwrap_or_else(|e| panic!("apply {event:?}: {e}"));
        self.book
            .check_invariants()
            .unwrap_or_else(|e| panic!("after {event:?}: {e}"));
        self.log.push(event.clone());
        Ok(event)
    }

    fn fresh_txn(&mut self) -> TxnId {
        self.next_txn += 1;
        TxnId(self.next_txn)
    }

    fn restart(&mut self, how: Restart) {
        let before = self.book.state_hash();
        self.book = match how {
            Restart::Replay => {
                let mut book = Book::new();
                for e in &self.log {
                    book.apply(e).unwrap();
                }
                book
            }
            Restart::Json => {
                serde_json::from_str(&serde_json::to_string(&self.book).unwrap()).unwrap()
            }
            Restart::Bincode => {
                bincode::deserialize(&bincode::serialize(&self.book).unwrap()).unwrap()
            }
        };
        assert_eq!(self.book.state_hash(), before, "{how:?} changed the state");
    }
}

/// The reference: one balance, holds by transaction, totals.
#[derive(Default, Debug)]
struct Model {
    cash: i64,
    holds: BTreeMap<u64, i64>,
    top_ups: i64,
    refunds: i64,
    postings: i64,
}

/// What the model expects of one step: an error, or success and whether it is flagged.
#[derive(Debug, PartialEq)]
enum Expect {
    Ok { flagged: bool },
    Insufficient { shortfall: i64 },
    HoldExists,
    UnknownHold,
    AboveHold,
}

impl Model {
    fn available(&self) -> i64 {
        self.cash - self.holds.values().sum::<i64>()
    }

    /// Predicts and performs `op` on the model.
    fn step(&mut self, op: Op) -> Expect {
        let available = self.available();
        let flagged = |amount: i64| Expect::Ok {
            flagged: amount > available,
        };
        match op {
            Op::TopUp(a) => {
                self.cash += a;
                self.top_ups += a;
                Expect::Ok { flagged: false }
            }
            Op::Refund(a) => {
                self.cash += a;
                self.refunds += a;
                Expect::Ok { flagged: false }
            }
            Op::Hold(t, _) | Op::ForcedHold(t, _) if self.holds.contains_key(&t) => {
                Expect::HoldExists
            }
            Op::Hold(_, a) | Op::Grow(_, a) | Op::Post(a) if a > available => {
                if let Op::Grow(t, _) = op {
                    if !self.holds.contains_key(&t) {
                        return Expect::UnknownHold;
                    }
                }
                Expect::Insufficient {
                    shortfall: a - available.max(0),
                }
            }
            Op::Hold(t, a) | Op::ForcedHold(t, a) => {
                self.holds.insert(t, a);
                flagged(a)
            }
            Op::Grow(t, _)
            | Op::ForcedGrow(t, _)
            | Op::AdjustTo(t, _)
            | Op::Capture(t, _)
            | Op::Release(t)
            | Op::Expire(t)
                if !self.holds.contains_key(&t) =>
            {
                Expect::UnknownHold
            }
            Op::Grow(t, a) | Op::ForcedGrow(t, a) => {
                *self.holds.entry(t).or_default() += a;
                flagged(a)
            }
            Op::AdjustTo(t, to) => {
                let held = self.holds[&t];
                if to > held {
                    return Expect::AboveHold;
                }
                if to == 0 {
                    self.holds.remove(&t);
                } else {
                    self.holds.insert(t, to);
                }
                Expect::Ok { flagged: false }
            }
            Op::Capture(t, to) => {
                let held = self.holds.remove(&t).unwrap_or(0);
                self.cash -= to;
                self.postings += to;
                Expect::Ok {
                    flagged: to > held && available - (to - held) < 0,
                }
            }
            Op::Release(t) | Op::Expire(t) => {
                self.holds.remove(&t);
                Expect::Ok { flagged: false }
            }
            Op::Post(a) | Op::ForcedPost(a) => {
                self.cash -= a;
                self.postings += a;
                flagged(a)
            }
        }
    }
}

/// Runs `op` on the single-currency book.
fn run_single(s: &mut Subject, op: Op) -> Result<LedgerEvent, BookError> {
    let prefs = FundingPrefs::SINGLE_CURRENCY;
    let decided = match op {
        Op::TopUp(a) => s
            .book
            .top_up(s.book.balance_id(P, Currency::EUR).unwrap(), eur(a)),
        Op::Hold(t, a) => s.book.plan_hold(TxnId(t), P, eur(a), &prefs, &NoRates),
        Op::ForcedHold(t, a) => s
            .book
            .plan_forced_hold(TxnId(t), P, eur(a), &prefs, &NoRates),
        Op::Grow(t, a) => s.book.plan_grow(TxnId(t), eur(a), &prefs, &NoRates),
        Op::ForcedGrow(t, a) => s.book.plan_forced_grow(TxnId(t), eur(a), &prefs, &NoRates),
        Op::AdjustTo(t, a) => s.book.plan_adjust_to(TxnId(t), eur(a)),
        Op::Capture(t, a) => s.book.plan_capture(TxnId(t), eur(a)),
        Op::Release(t) => s.book.plan_release(TxnId(t)),
        Op::Expire(t) => s.book.plan_expire(TxnId(t)),
        Op::Refund(a) => {
            let txn = s.fresh_txn();
            s.book.plan_refund(txn, P, eur(a))
        }
        Op::Post(a) => {
            let txn = s.fresh_txn();
            s.book.plan_post(txn, P, eur(a), &prefs, &NoRates)
        }
        Op::ForcedPost(a) => {
            let txn = s.fresh_txn();
            s.book.plan_forced_post(txn, P, eur(a), &prefs, &NoRates)
        }
    };
    s.exec(decided)
}

fn observed(result: &Result<LedgerEvent, BookError>, op: Op) -> Expect {
    match result {
        Ok(e) => Expect::Ok {
            flagged: e.is_flagged(),
        },
        Err(BookError::InsufficientFunds { shortfall, .. }) => Expect::Insufficient {
            shortfall: shortfall.amount_minor,
        },
        Err(BookError::HoldExists(_)) => Expect::HoldExists,
        Err(BookError::UnknownHold(_)) => Expect::UnknownHold,
        Err(BookError::AdjustAboveHold { .. }) => Expect::AboveHold,
        Err(other) => panic!("unexpected refusal of {op:?}: {other}"),
    }
}

fn check_against(s: &Subject, model: &Model, op: Step) {
    let b = s.book.balance_of(P, Currency::EUR).unwrap();
    let reserved: i64 = model.holds.values().sum();
    assert_eq!(
        (b.cash_minor, b.reserved_minor, b.available_minor),
        (model.cash, reserved, model.available()),
        "balance after {op:?}"
    );
    assert_eq!(
        b.overdrawn,
        b.available_minor < 0,
        "overdrawn flag after {op:?}"
    );
    assert_eq!(s.book.hold_count(), model.holds.len());
    for (txn, amount) in &model.holds {
        assert_eq!(
            s.book.hold(TxnId(*txn)).map(|h| h.amount()),
            Some(eur(*amount))
        );
    }
    let t = s.book.totals(Currency::EUR);
    assert_eq!(
        (t.top_ups_minor, t.refunds_minor, t.postings_minor),
        (
            i128::from(model.top_ups),
            i128::from(model.refunds),
            i128::from(model.postings)
        )
    );
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn single_currency_matches_the_model(steps in prop::collection::vec(step(), 1..60)) {
        let mut s = Subject::new(&[Currency::EUR]);
        let mut model = Model::default();
        for step in steps {
            match step {
                Step::Restart(how) => s.restart(how),
                Step::Op(op) => {
                    let expected = model.step(op);
                    let result = run_single(&mut s, op);
                    prop_assert_eq!(observed(&result, op), expected, "{:?}", op);
                }
            }
            check_against(&s, &model, step);
        }
        s.restart(Restart::Replay);
    }
}

/// Random rates between the three currencies, with fees up to 2 %.
fn rate_table() -> impl Strategy<Value = FxTable> {
    let rate = (1u32..400_000).prop_map(|r| Decimal::new(i64::from(r), 4));
    (
        rate.clone(),
        rate.clone(),
        rate,
        0u32..20_000,
        0u32..20_000,
        0u32..20_000,
    )
        .prop_map(|(eur_gbp, eur_jpy, gbp_jpy, f1, f2, f3)| {
            FxTable::new()
                .with(Currency::EUR, Currency::GBP, eur_gbp, f1)
                .with(
                    Currency::EUR,
                    Currency::JPY,
                    eur_jpy * Decimal::from(100),
                    f2,
                )
                .with(
                    Currency::GBP,
                    Currency::JPY,
                    gbp_jpy * Decimal::from(100),
                    f3,
                )
        })
}

const CURRENCIES: [Currency; 3] = [Currency::EUR, Currency::GBP, Currency::JPY];

#[derive(Clone, Copy, Debug)]
struct MultiOp {
    op: Op,
    currency: usize,
    prefs: FundingPrefs,
}

#[derive(Clone, Copy, Debug)]
enum MultiStep {
    Op(MultiOp),
    Restart(Restart),
}

fn multi_step() -> impl Strategy<Value = MultiStep> {
    let prefs = prop_oneof![
        Just(FundingPrefs::SINGLE_CURRENCY),
        Just(FundingPrefs::smart(None)),
        (0..3usize).prop_map(|i| FundingPrefs::smart(Some(CURRENCIES[i]))),
    ];
    let op = (op(), 0..3usize, prefs).prop_map(|(op, currency, prefs)| MultiOp {
        op,
        currency,
        prefs,
    });
    let restart = prop_oneof![
        Just(Restart::Replay),
        Just(Restart::Json),
        Just(Restart::Bincode)
    ];
    prop_oneof![12 => op.prop_map(MultiStep::Op), 1 => restart.prop_map(MultiStep::Restart)]
}

/// Runs `op` in its currency; amounts of holds already placed follow their own currency.
fn run_multi(s: &mut Subject, m: MultiOp, rates: &FxTable) -> Result<LedgerEvent, BookError> {
    let c = CURRENCIES[m.currency];
    let money = |a: i64| Money::new(a, c);
    let held_currency = |s: &Subject, t: u64| s.book.hold(TxnId(t)).map_or(c, |h| h.currency);
    let decided = match m.op {
        Op::TopUp(a) => s.book.top_up(s.book.balance_id(P, c).unwrap(), money(a)),
        Op::Hold(t, a) => s.book.plan_hold(TxnId(t), P, money(a), &m.prefs, rates),
        Op::ForcedHold(t, a) => s
            .book
            .plan_forced_hold(TxnId(t), P, money(a), &m.prefs, rates),
        Op::Grow(t, a) => {
            let amount = Money::new(a, held_currency(s, t));
            s.book.plan_grow(TxnId(t), amount, &m.prefs, rates)
        }
        Op::ForcedGrow(t, a) => {
            let amount = Money::new(a, held_currency(s, t));
            s.book.plan_forced_grow(TxnId(t), amount, &m.prefs, rates)
        }
        Op::AdjustTo(t, a) => s
            .book
            .plan_adjust_to(TxnId(t), Money::new(a, held_currency(s, t))),
        Op::Capture(t, a) => s
            .book
            .plan_capture(TxnId(t), Money::new(a, held_currency(s, t))),
        Op::Release(t) => s.book.plan_release(TxnId(t)),
        Op::Expire(t) => s.book.plan_expire(TxnId(t)),
        Op::Refund(a) => {
            let txn = s.fresh_txn();
            s.book.plan_refund(txn, P, money(a))
        }
        Op::Post(a) => {
            let txn = s.fresh_txn();
            s.book.plan_post(txn, P, money(a), &m.prefs, rates)
        }
        Op::ForcedPost(a) => {
            let txn = s.fresh_txn();
            s.book.plan_forced_post(txn, P, money(a), &m.prefs, rates)
        }
    };
    s.exec(decided)
}

/// What the events say went in and out, per currency, and what each hold should cover.
#[derive(Default)]
struct Seen {
    cash: BTreeMap<Currency, i128>,
    holds: BTreeMap<TxnId, Money>,
}

impl Seen {
    /// Records an event just applied to `book`.
    fn record(&mut self, book: &Book, event: &LedgerEvent) {
        if let Some((_, amount)) = event.credit() {
            *self.cash.entry(amount.currency).or_default() += i128::from(amount.amount_minor);
        }
        for d in event.debits() {
            *self.cash.entry(d.amount.currency).or_default() -= i128::from(d.amount.amount_minor);
        }
        match event {
            LedgerEvent::HoldPlaced(h) => {
                let covers = h.legs.covers_minor() as i64;
                self.holds.insert(h.txn, Money::new(covers, h.currency));
            }
            LedgerEvent::HoldResized(h) => {
                let currency = book.hold(h.txn).map_or(Currency::EUR, |x| x.currency);
                self.holds
                    .insert(h.txn, Money::new(h.legs.covers_minor() as i64, currency));
            }
            LedgerEvent::HoldReleased { txn, .. } => {
                self.holds.remove(txn);
            }
            LedgerEvent::Captured(c) => {
                self.holds.remove(&c.txn);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn multi_currency_conserves_money(
        rates in rate_table(),
        steps in prop::collection::vec(multi_step(), 1..80),
    ) {
        let mut s = Subject::new(&CURRENCIES);
        let mut seen = Seen::default();
        for step in steps {
            let m = match step {
                MultiStep::Restart(how) => {
                    s.restart(how);
                    continue;
                }
                MultiStep::Op(m) => m,
            };
            let before = s.book.state_hash();
            match run_multi(&mut s, m, &rates) {
                Ok(event) => {
                    seen.record(&s.book, &event);
                    let forced = matches!(
                        m.op,
                        Op::ForcedHold(..)
                            | Op::ForcedGrow(..)
                            | Op::ForcedPost(_)
                            | Op::Capture(..)
                    );
                    prop_assert!(forced || !event.is_flagged(), "{:?} flagged {:?}", m, event);
                }
                Err(e) => {
                    prop_assert_eq!(s.book.state_hash(), before, "refused ({}) yet changed", e);
                }
            }
            for c in CURRENCIES {
                let cash: i128 = s.book.balances_of(P)
                    .filter(|b| b.currency == c)
                    .map(|b| i128::from(b.cash_minor))
                    .sum();
                prop_assert_eq!(cash, seen.cash.get(&c).copied().unwrap_or(0), "{} cash", c);
            }
            prop_assert_eq!(s.book.hold_count(), seen.holds.len());
            for (txn, amount) in &seen.holds {
                prop_assert_eq!(s.book.hold(*txn).map(|h| h.amount()), Some(*amount));
            }
        }
        let hash = s.book.state_hash();
        s.restart(Restart::Replay);
        prop_assert_eq!(s.book.state_hash(), hash);
    }
}
