//! The authorisation engine's hot paths.
//!
//! - `decision/approve`: a full-pipeline approval on a warm partition, called directly:
//!   every check, the hold, the usage, the transaction record, and the events encoded for
//!   the journal. Budget: p50 ≤ 250 ns, p99 ≤ 1 µs.
//! - `decision/decline_funds`: a decline at the last check (insufficient funds), so every
//!   check runs. Budget: as the approval.
//! - `decision/via_queue`: an approval handed to the partition thread over its queue and
//!   answered back, from another thread (no journal). Budget: ≤ 20 µs; it is bounded by two
//!   thread wake-ups, not by the decision.
//!
//! After the criterion groups, the per-decision latency distribution of the direct approval
//! is printed (HdrHistogram over individually timed decisions), since criterion reports
//! means of batches, not percentiles of single decisions.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cardcore_authz::fixture::{eur, test_keys, Fixture, FIXTURE_PAN, FIXTURE_START};
use cardcore_authz::management::IssueCard;
use cardcore_authz::{Engine, EngineConfig, Request};
use cardcore_core::{
    CardStatus, CardType, Currency, Expiry, ManualClock, Pan, ProfileStatus, TimeZone,
};
use criterion::{criterion_group, Criterion};

/// Decisions per fresh partition: bounds the memory a long run takes.
const CHUNK: u64 = 50_000;

fn warm(funds_minor: i64) -> Fixture {
    let mut f = Fixture::new(eur(funds_minor), (CHUNK as usize) + 1024);
    // A few decisions first, so the code and tables are warm.
    for _ in 0..256 {
        let r = f.purchase(eur(1));
        black_box(f.partition.handle(&r, FIXTURE_START));
        let _ = f.partition.take_encoded();
    }
    f
}

/// Times `iters` decisions of `amount`, on fresh partitions of at most `CHUNK` decisions.
fn run_decisions(iters: u64, funds_minor: i64, amount_minor: i64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let mut f = warm(funds_minor);
        let requests: Vec<Request> = (0..n).map(|_| f.purchase(eur(amount_minor))).collect();
        let start = Instant::now();
        for r in &requests {
            black_box(f.partition.handle(black_box(r), FIXTURE_START));
            black_box(f.partition.take_encoded());
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

fn decision(c: &mut Criterion) {
    let mut g = c.benchmark_group("decision");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("approve", |b| {
        b.iter_custom(|n| run_decisions(n, i64::MAX / 4, 1_00))
    });
    g.bench_function("decline_funds", |b| {
        b.iter_custom(|n| run_decisions(n, 50, 1_00))
    });
    g.bench_function("via_queue", |b| {
        let (engine, mut requests) = queue_engine();
        b.iter(|| {
            let r = requests.next_request();
            black_box(engine.handle(r).expect("the engine answers"))
        })
    });
    g.finish();
}

/// An engine with one partition thread and no journal, and a source of fresh requests.
fn queue_engine() -> (Engine, Fixture) {
    let (keys, pan_key) = test_keys();
    let mut config = EngineConfig::new(keys, pan_key);
    config.txn_capacity = 1 << 20;
    let clock = Arc::new(ManualClock::new(FIXTURE_START));
    let engine = Engine::open(config, clock).expect("engine opens");
    let profile = engine
        .create_profile(None, ProfileStatus::Active, TimeZone::UTC)
        .expect("profile");
    engine.top_up(profile, eur(i64::MAX / 4)).expect("top-up");
    let pan = Pan::parse(FIXTURE_PAN).expect("valid");
    engine
        .issue_card(IssueCard {
            profile,
            pan,
            pin: None,
            cvv2: None,
            expiry: Expiry::new(2030, 12).expect("valid"),
            status: CardStatus::Active,
            currency: Currency::EUR,
            card_type: CardType::Physical,
            smart_conversion: true,
            locked: Vec::new(),
        })
        .expect("card");
    // The fixture only makes requests here: same PAN, fresh keys.
    (engine, Fixture::new(eur(1), 16))
}

trait NextRequest {
    fn next_request(&mut self) -> Request;
}

impl NextRequest for Fixture {
    fn next_request(&mut self) -> Request {
        self.purchase(eur(1_00))
    }
}

/// Per-decision latency of the direct approval: p50, p99, p99.9, max.
fn approve_distribution() {
    const DECISIONS: u64 = 1_000_000;
    let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    let mut left = DECISIONS;
    while left > 0 {
        let n = left.min(CHUNK);
        let mut f = warm(i64::MAX / 4);
        let requests: Vec<Request> = (0..n).map(|_| f.purchase(eur(1_00))).collect();
        for r in &requests {
            let start = Instant::now();
            black_box(f.partition.handle(black_box(r), FIXTURE_START));
            black_box(f.partition.take_encoded());
            let ns = start.elapsed().as_nanos() as u64;
            let _ = hist.record(ns.max(1));
        }
        left -= n;
    }
    println!(
        "decision/approve per decision over {DECISIONS} decisions (timer included): \
         p50 {} ns, p90 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.90),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
    let timer = timer_overhead_ns();
    println!("  (an empty timed section costs p50 {timer} ns on this machine)");
}

fn timer_overhead_ns() -> u64 {
    let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..100_000 {
        let start = Instant::now();
        let ns = black_box(start).elapsed().as_nanos() as u64;
        let _ = hist.record(ns.max(1));
    }
    hist.value_at_quantile(0.5)
}

criterion_group!(benches, decision);

fn main() {
    benches();
    approve_distribution();
    Criterion::default().configure_from_args().final_summary();
}
