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

    let prefs = FundingPrefs::SINGLE_CURRENCY;
    group.bench_function("hold_release", |b| {
        b.iter(|| {
            txn += 1;
            let hold = hot.plan_hold(
                TxnId(txn),
                ProfileId(1),
                black_box(amount),
                &prefs,
                &NoRates,
            );
            apply(&mut hot, hold.unwrap());
            run(&mut hot, |b| b.plan_release(TxnId(txn)));
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
    let mut book = Book::new();
    let profile = ProfileId(1);
    run(&mut book, |b| {
        b.open_profile(profile, TimeZone::UTC, Currency::EUR)
    });
    for currency in [Currency::EUR, Currency::GBP, Currency::USD] {
        run(&mut book, |b| b.open_balance(profile, currency));
    }
    let rates = FxTable::new()
        .with(
            Currency::EUR,
            Currency::GBP,
            Decimal::from_str("0.85").unwrap(),
            5_000,
        )
        .with(
            Currency::EUR,
            Currency::USD,
            Decimal::from_str("1.10").unwrap(),
            3_500,
        );
    let prefs = FundingPrefs::smart(Some(Currency::GBP));
    let amount = Money::new(30_00, Currency::EUR);
    let eur = book.balance_id(profile, Currency::EUR).unwrap();
    let gbp = book.balance_id(profile, Currency::GBP).unwrap();
    let usd = book.balance_id(profile, Currency::USD).unwrap();
    // EUR 10.00 and GBP 8.55 (10.00 EUR at 0.85 + 0.5 %) leave 10.00 EUR for USD: 3 legs.
    let refill = [
        Money::new(10_00, Currency::EUR),
        Money::new(8_55, Currency::GBP),
        Money::new(11_04, Currency::USD),
    ];
    for (id, amount) in [eur, gbp, usd].into_iter().zip(refill) {
        run(&mut book, |b| b.top_up(id, amount));
    }
    let mut txn = 0u64;
    group.bench_function("three_legs_hold_release", |b| {
        b.iter(|| {
            txn += 1;
            let hold = book.plan_hold(TxnId(txn), profile, black_box(amount), &prefs, &rates);
            apply(&mut book, hold.unwrap());
            run(&mut book, |b| b.plan_release(TxnId(txn)));
        })
    });
    // Capturing empties the sources, so each iteration also tops them up again (three
    // more decisions and applies, ~25 ns each in the single-currency bench).
    group.bench_function("three_legs_hold_capture_with_refill", |b| {
        b.iter(|| {
            txn += 1;
            let hold = book.plan_hold(TxnId(txn), profile, black_box(amount), &prefs, &rates);
            let hold = hold.unwrap();
            debug_assert!(matches!(&hold, LedgerEvent::HoldPlaced(h) if h.legs.len() == 3));
            apply(&mut book, hold);
            run(&mut book, |b| b.plan_capture(TxnId(txn), black_box(amount)));
            for (id, amount) in [eur, gbp, usd].into_iter().zip(refill) {
                run(&mut book, |b| b.top_up(id, amount));
            }
        })
    });
    book.check_invariants().expect("invariants after the bench");
    group.finish();
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
        card_amount: Money::new(1, Currency::EUR),
        profile_amount: Money::new(1, Currency::EUR),
    };
    run(&mut book, |b| b.plan_usage(&first, now));
    let key = UsageKey::Profile(ProfileId(1), LimitType::Purchase);
    group.bench_function("read_five_counters", |b| {
        b.iter(|| {
            let now = black_box(now);
            let card = UsageKey::Card(black_box(card));
            let mut sum = 0i64;
            for (k, g) in [
                (card, Granularity::Daily),
                (card, Granularity::Monthly),
                (card, Granularity::Lifetime),
                (key, Granularity::Daily),
                (key, Granularity::Monthly),
            ] {
                sum += book.usage(k, g, now).unwrap().amount_minor;
            }
            sum
        })
    });
    let mut txn = 0u64;
    group.bench_function("add_then_close", |b| {
        b.iter(|| {
            txn += 1;
            let charge = UsageCharge {
                txn: TxnId(txn),
                ..first
            };
            run(&mut book, |b| b.plan_usage(black_box(&charge), now));
            let one = Money::new(1, Currency::EUR);
            let close = book.plan_usage_adjust_to(TxnId(txn), one, one, UsageEnd::Close, now);
            apply(&mut book, close.unwrap());
        })
    });
    group.finish();
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

/// The hold + capture cycle timed in CPU time rather than wall-clock time, as a check on
/// criterion's figures when the machine is shared.
fn cpu_time_per_cycle() {
    let amount = Money::new(12_34, Currency::EUR);
    let cases: [(&str, u64); 2] = [("one_profile", 1), ("100k_profiles", PROFILES)];
    for (name, profiles) in cases {
        let mut book = book_with(profiles);
        let Some(start) = thread_cpu_ns() else {
            println!("ledger cpu time: /proc/thread-self/schedstat unavailable, not measured");
            return;
        };
        for n in 1..=CPU_TIME_ITERATIONS {
            let profile = ProfileId(n.wrapping_mul(7_919) % profiles + 1);
            hold_capture_cycle(&mut book, TxnId(n), black_box(profile), black_box(amount));
        }
        let spent = thread_cpu_ns().unwrap_or(start).saturating_sub(start);
        let tenths_ns = spent * 10 / CPU_TIME_ITERATIONS;
        let (whole, tenth) = (tenths_ns / 10, tenths_ns % 10);
        println!("ledger cpu time: hold + capture, {name}: {whole}.{tenth} ns per cycle");
    }
}

criterion_group!(benches, hold_capture, smart_conversion, usage);

fn main() {
    memory_per_profile();
    cpu_time_per_cycle();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
