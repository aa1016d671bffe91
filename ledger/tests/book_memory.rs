//! Memory per profile: at most 1 KiB for a profile with two balances and one card's usage
//! counters. Measured as resident-memory growth (Linux `/proc/self/statm`) while building
//! a book of many profiles; `unsafe` is forbidden, so no counting global allocator. This
//! file holds a single test so that nothing else allocates in the process meanwhile.

#![cfg(target_os = "linux")]

use cardcore_core::{CardToken, Currency, Money, ProfileId, TimeZone};
use cardcore_ledger::book::{Book, BookError, LedgerEvent};

const PROFILES: u64 = 50_000;
const PROFILE_BYTES_MAX: u64 = 1024;
/// The page size of Linux on x86-64 and (by default) aarch64.
const PAGE_BYTES: u64 = 4096;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok());
    pages.expect("resident pages") * PAGE_BYTES
}

/// Decides with `decide` and applies the event.
fn run(book: &mut Book, decide: impl FnOnce(&Book) -> Result<LedgerEvent, BookError>) {
    let event = decide(book).expect("decided");
    book.apply(&event).expect("applied");
}

#[test]
fn a_profile_with_two_balances_and_a_card_fits_in_1_kib() {
    let before = resident_bytes();
    let mut book = Book::new();
    for p in 1..=PROFILES {
        let profile = ProfileId(p);
        run(&mut book, |b| {
            b.open_profile(profile, TimeZone::UTC, Currency::EUR)
        });
        for currency in [Currency::EUR, Currency::GBP] {
            run(&mut book, |b| b.open_balance(profile, currency));
            let id = book.balance_id(profile, currency).expect("opened");
            run(&mut book, |b| b.top_up(id, Money::new(10_000, currency)));
        }
        run(&mut book, |b| {
            b.open_card(CardToken(u128::from(p)), profile, Currency::EUR)
        });
    }
    let per_profile = resident_bytes().saturating_sub(before) / PROFILES;
    println!("{per_profile} bytes per profile");
    assert!(
        per_profile <= PROFILE_BYTES_MAX,
        "{per_profile} bytes per profile"
    );
    book.check_invariants().expect("invariants");
}
