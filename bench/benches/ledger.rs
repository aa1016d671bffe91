//! The in-memory ledger (`cardcore_ledger::book`) on the authorisation hot path: deciding
//! and applying holds and captures, smart conversion, and limit-usage counters; plus the
//! memory one profile costs.
//!
//! Every measured step is what the engine does per message: a decision (`plan_*`, `&self`)
//! and the `apply` of its event. Run with `cargo bench -p cardcore-bench --bench ledger`.

use std::hint::black_box;
use std::str::FromStr;

use cardcore_core::{
    CardToken, Currency, Granularity, LimitType, Money, ProfileId, TimeZone, Timestamp, TxnId,
};
use cardcore_ledger::book::{
    Book, BookError, FundingPrefs, FxTable, LedgerEvent, NoRates, UsageCharge, UsageEnd, UsageKey,
};
use criterion::{criterion_group, Criterion, Throughput};
use rust_decimal::Decimal;

/// Profiles in the "spread" benches and in the memory measurement.
const PROFILES: u64 = 100_000;
/// Enough money that the benches never run a balance dry.
const FLOAT_MINOR: i64 = i64::MAX / 4;

/// Decides with `decide` and applies the event, as the engine does per message.
fn run(book: &mut Book, decide: impl FnOnce(&Book) -> Result<LedgerEvent, BookError>) {
    let event = decide(book).expect("the book decides");
    apply(book, event);
}

fn apply(book: &mut Book, event: LedgerEvent) {
    book.apply(&event)
        .expect("an event the book decided applies");
}

/// A book with `profiles` profiles, each with an EUR and a GBP balance (topped up) and one
/// card; the card of profile `p` is `CardToken(p)`.
fn book_with(profiles: u64) -> Book {
    let mut book = Book::new();
    for p in 1..=profiles {
        let profile = ProfileId(p);
        run(&mut book, |b| {
            b.open_profile(profile, TimeZone::UTC, Currency::EUR)
        });
        for currency in [Currency::EUR, Currency::GBP] {
            let event = book.open_balance(profile, currency).unwrap();
            apply(&mut book, event);
            let id = book.balance_id(profile, currency).unwrap();
            run(&mut book, |b| {
                b.top_up(id, Money::new(FLOAT_MINOR, currency))
            });
        }
        let card = book
            .open_card(CardToken(u128::from(p)), profile, Currency::EUR)
            .unwrap();
        apply(&mut book, card);
    }
    book
}

/// One hold and its capture, as the engine runs them: the event is kept where the decision
/// put it (the engine also journals it by reference) and applied by reference.
fn hold_capture_cycle(book: &mut Book, txn: TxnId, profile: ProfileId, amount: Money) {
    let prefs = FundingPrefs::SINGLE_CURRENCY;
    let hold = book.plan_hold(txn, profile, amount, &prefs, &NoRates);
    book.apply(hold.as_ref().expect("funded")).expect("applies");
    let capture = book.plan_capture(txn, amount);
    book.apply(capture.as_ref().expect("held"))
        .expect("applies");
}

/// One hold and its release (a reversal to zero), as in [`hold_capture_cycle`].
fn hold_release_cycle(book: &mut Book, txn: TxnId, profile: ProfileId, amount: Money) {
    let prefs = FundingPrefs::SINGLE_CURRENCY;
    let hold = book.plan_hold(txn, profile, amount, &prefs, &NoRates);
    book.apply(hold.as_ref().expect("funded")).expect("applies");
    let release = book.plan_release(txn);
    book.apply(release.as_ref().expect("held"))
        .expect("applies");
}

/// Budget: 100 ns per operation, so 200 ns per hold + capture (each a decision and an
/// apply), single currency. Throughput counts two operations per iteration.
fn hold_capture(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger_hold_capture");
    group.throughput(Throughput::Elements(2));
    let amount = Money::new(12_34, Currency::EUR);

    let mut hot = book_with(1);
    let mut txn = 0u64;
    group.bench_function("one_profile", |b| {
        b.iter(|| {
            txn += 1;
            hold_capture_cycle(
                &mut hot,
                TxnId(txn),
                black_box(ProfileId(1)),
                black_box(amount),
            );
        })
    });

    let mut spread = book_with(PROFILES);
    let mut n = 0u64;
    group.bench_function("100k_profiles", |b| {
        b.iter(|| {
            n += 1;
            let profile = ProfileId(n.wrapping_mul(7_919) % PROFILES + 1);
            hold_capture_cycle(&mut spread, TxnId(n), black_box(profile), black_box(amount));
        })
    });

    group.bench_function("hold_release", |b| {
        b.iter(|| {
            txn += 1;
            hold_release_cycle(
                &mut hot,
                TxnId(txn),
                black_box(ProfileId(1)),
                black_box(amount),
            );
        })
    });
    hot.check_invariants().expect("invariants after the bench");
    spread
        .check_invariants()
        .expect("invariants after the bench");
    group.finish();
}

/// Budget: 2 µs per hold + release (or capture) funded from three balances: rates, fees
/// and the candidate sort run in decimals, and conversion is the uncommon path.
fn smart_conversion(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger_smart_conversion");
    group.throughput(Throughput::Elements(2));
    let mut s = ThreeCurrencies::new();
    let mut txn = 0u64;
    group.bench_function("three_legs_hold_release", |b| {
        b.iter(|| {
            txn += 1;
            s.hold_release(TxnId(txn));
        })
    });
    // Capturing empties the sources, so each iteration also tops them up again (three
    // more decisions and applies, ~25 ns each in the single-currency bench).
    group.bench_function("three_legs_hold_capture_with_refill", |b| {
        b.iter(|| {
            txn += 1;
            s.hold_capture_refill(TxnId(txn));
        })
    });
    let book = s.book;
    book.check_invariants().expect("invariants after the bench");
    group.finish();
}

/// A profile with EUR, GBP and USD balances, funded so that a 30.00 EUR hold with GBP as
/// the default currency takes three legs: EUR 10.00, GBP 8.55 (10.00 EUR at 0.85 plus
/// 0.5 %) and USD 11.04 (10.00 EUR at 1.10 plus 0.35 %).
struct ThreeCurrencies {
    book: Book,
    rates: FxTable,
    refill: [(cardcore_core::BalanceId, Money); 3],
}

impl ThreeCurrencies {
    const PROFILE: ProfileId = ProfileId(1);
    const AMOUNT: Money = Money::new(30_00, Currency::EUR);
    const PREFS: FundingPrefs = FundingPrefs {
        default_currency: Some(Currency::GBP),
        smart_conversion: true,
    };

    fn new() -> ThreeCurrencies {
        let mut book = Book::new();
        let profile = Self::PROFILE;
        run(&mut book, |b| {
            b.open_profile(profile, TimeZone::UTC, Currency::EUR)
        });
        let amounts = [
            Money::new(10_00, Currency::EUR),
            Money::new(8_55, Currency::GBP),
            Money::new(11_04, Currency::USD),
        ];
        let mut refill = [(cardcore_core::BalanceId(0), amounts[0]); 3];
        for (slot, amount) in refill.iter_mut().zip(amounts) {
            run(&mut book, |b| b.open_balance(profile, amount.currency));
            let id = book.balance_id(profile, amount.currency).expect("opened");
            run(&mut book, |b| b.top_up(id, amount));
            *slot = (id, amount);
        }
        let rate = |text: &str| Decimal::from_str(text).expect("a rate");
        let rates = FxTable::new()
            .with(Currency::EUR, Currency::GBP, rate("0.85"), 5_000)
            .with(Currency::EUR, Currency::USD, rate("1.10"), 3_500);
        ThreeCurrencies {
            book,
            rates,
            refill,
        }
    }

    fn hold(&mut self, txn: TxnId) {
        let (amount, prefs) = (black_box(Self::AMOUNT), &Self::PREFS);
        let hold = self
            .book
            .plan_hold(txn, Self::PROFILE, amount, prefs, &self.rates);
        let hold = hold.expect("funded");
        debug_assert!(matches!(&hold, LedgerEvent::HoldPlaced(h) if h.legs.len() == 3));
        self.book.apply(&hold).expect("applies");
    }

    fn hold_release(&mut self, txn: TxnId) {
        self.hold(txn);
        run(&mut self.book, |b| b.plan_release(txn));
    }

    fn hold_capture_refill(&mut self, txn: TxnId) {
        self.hold(txn);
        run(&mut self.book, |b| {
            b.plan_capture(txn, black_box(Self::AMOUNT))
        });
        for (id, amount) in self.refill {
            run(&mut self.book, |b| b.top_up(id, amount));
        }
    }
}

/// Budget: 100 ns to read the five counters the limit checks need (card daily, monthly,
/// lifetime; profile daily, monthly) and 300 ns to add an authorisation's usage and close
/// it at clearing (two decisions and two applies).
fn usage(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger_usage");
    let mut book = book_with(1);
    let card = CardToken(1);
    let now = Timestamp::parse_rfc3339("2026-05-01T10:00:00Z").unwrap();
    let first = UsageCharge {
        txn: TxnId(0),
        card,
        limit_type: LimitType::Purchase,
        amount: Money::new(1, Currency::EUR),
        card_amount: Money::new(1, Currency::EUR),
        profile_amount: Money::new(1, Currency::EUR),
    };
    run(&mut book, |b| b.plan_usage(&first, now));
    let key = UsageKey::Profile(ProfileId(1), LimitType::Purchase);
    group.bench_function("read_five_counters", |b| {
        b.iter(|| read_five_counters(&book, black_box(card), black_box(key), black_box(now)))
    });
    let mut txn = 0u64;
    group.bench_function("add_then_close", |b| {
        b.iter(|| {
            txn += 1;
            usage_add_then_close(&mut book, TxnId(txn), black_box(&first), now);
        })
    });
    group.finish();
}

/// What the limit checks read: card daily, monthly, lifetime; profile daily, monthly.
fn read_five_counters(book: &Book, card: CardToken, key: UsageKey, now: Timestamp) -> i64 {
    let card = UsageKey::Card(card);
    let mut sum = 0i64;
    for (k, g) in [
        (card, Granularity::Daily),
        (card, Granularity::Monthly),
        (card, Granularity::Lifetime),
        (key, Granularity::Daily),
        (key, Granularity::Monthly),
    ] {
        sum += book.usage(k, g, now).expect("a counter").amount_minor;
    }
    sum
}

/// An authorisation's usage added, then closed at clearing for the same amount.
fn usage_add_then_close(book: &mut Book, txn: TxnId, like: &UsageCharge, now: Timestamp) {
    let charge = UsageCharge { txn, ..*like };
    let added = book.plan_usage(&charge, now);
    book.apply(added.as_ref().expect("counted"))
        .expect("applies");
    let closed = book.plan_usage_release_to(txn, charge.amount, UsageEnd::Close, now);
    book.apply(closed.as_ref().expect("recorded"))
        .expect("applies");
}

/// Resident memory, from /proc (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    /// Linux x86-64 and aarch64 default page size.
    const PAGE_BYTES: u64 = 4096;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE_BYTES)
}

/// Target: at most 1 KiB per profile with two balances and one card's usage counters.
/// Measured as the growth of resident memory while building a book of [`PROFILES`]
/// profiles (the global allocator cannot be wrapped here: `unsafe` is forbidden).
fn memory_per_profile() {
    let Some(before) = resident_bytes() else {
        println!("ledger memory: /proc/self/statm unavailable, not measured");
        return;
    };
    let book = book_with(PROFILES);
    let after = resident_bytes().unwrap_or(before);
    let per_profile = after.saturating_sub(before) / PROFILES;
    println!(
        "ledger memory: {per_profile} bytes per profile (2 balances, 1 card's counters; \
         resident growth over {PROFILES} profiles)"
    );
    black_box(&book);
}

/// This thread's time on a CPU, in nanoseconds (Linux schedstat). Unlike wall-clock time it
/// does not grow while other processes hold the machine's cores.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Iterations per CPU-time measurement: long enough (~1 s) that scheduler noise is small.
const CPU_TIME_ITERATIONS: u64 = 2_000_000;

/// CPU time per iteration of `f`, in tenths of a nanosecond.
fn cpu_tenths_ns(mut f: impl FnMut(u64)) -> Option<u64> {
    let start = thread_cpu_ns()?;
    for n in 1..=CPU_TIME_ITERATIONS {
        f(n);
    }
    let spent = thread_cpu_ns()?.saturating_sub(start);
    Some(spent * 10 / CPU_TIME_ITERATIONS)
}

fn print_cpu_time(what: &str, tenths_ns: Option<u64>) {
    match tenths_ns {
        Some(t) => println!("ledger cpu time: {what}: {}.{} ns", t / 10, t % 10),
        None => println!("ledger cpu time: {what}: schedstat unavailable, not measured"),
    }
}

/// The hot paths timed in CPU time rather than wall-clock time, as a check on criterion's
/// figures when the machine is shared.
fn cpu_time_per_iteration() {
    let amount = Money::new(12_34, Currency::EUR);
    for (name, profiles) in [("one profile", 1), ("100k profiles", PROFILES)] {
        let mut book = book_with(profiles);
        let tenths = cpu_tenths_ns(|n| {
            let profile = ProfileId(n.wrapping_mul(7_919) % profiles + 1);
            hold_capture_cycle(&mut book, TxnId(n), black_box(profile), black_box(amount));
        });
        print_cpu_time(&format!("hold + capture, {name}"), tenths);
    }
    let mut book = book_with(1);
    let now = Timestamp::parse_rfc3339("2026-05-01T10:00:00Z").expect("a time");
    let one = Money::new(1, Currency::EUR);
    let like = UsageCharge {
        txn: TxnId(0),
        card: CardToken(1),
        limit_type: LimitType::Purchase,
        amount: one,
        card_amount: one,
        profile_amount: one,
    };
    let tenths = cpu_tenths_ns(|n| usage_add_then_close(&mut book, TxnId(n), &like, now));
    print_cpu_time("usage add + close", tenths);
    let key = UsageKey::Profile(ProfileId(1), LimitType::Purchase);
    let tenths = cpu_tenths_ns(|_| {
        black_box(read_five_counters(
            &book,
            black_box(CardToken(1)),
            key,
            black_box(now),
        ));
    });
    print_cpu_time("read five usage counters", tenths);
    let mut three = ThreeCurrencies::new();
    let tenths = cpu_tenths_ns(|n| three.hold_release(TxnId(n)));
    print_cpu_time("three-leg hold + release", tenths);
}

criterion_group!(benches, hold_capture, smart_conversion, usage);

fn main() {
    memory_per_profile();
    cpu_time_per_iteration();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
