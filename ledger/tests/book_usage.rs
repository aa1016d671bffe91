//! Limit usage: windows in the profile's time zone (midnight, month end, DST changes),
//! adjustments by reversals, clearings and expiry, and replay without the clock.

// Amounts are written major_minor (`12_50` is 12.50 EUR, `1_234` is 1.234 KWD): that reads
// better than clippy's thousands grouping here.
#![allow(clippy::inconsistent_digit_grouping, clippy::mistyped_literal_suffixes)]

use cardcore_core::{
    CardToken, Currency, Granularity, LimitType, Money, ProfileId, TimeZone, Timestamp, TxnId,
};
use cardcore_ledger::book::{
    window_bounds, Book, BookError, LedgerEvent, UsageCharge, UsageEnd, UsageKey, Window,
};

const P: ProfileId = ProfileId(3);
const CARD: CardToken = CardToken(0xca0c_8154);
const OTHER_CARD: CardToken = CardToken(0xbeef);

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap_or_else(|| panic!("bad time {text}"))
}

fn sgd(minor: i64) -> Money {
    Money::new(minor, Currency::SGD)
}

fn tz(name: &str) -> TimeZone {
    TimeZone::parse(name).unwrap()
}

struct Ledger {
    book: Book,
    log: Vec<LedgerEvent>,
}

impl Ledger {
    /// A profile in `zone` counting in SGD, with two cards.
    fn new(zone: &str) -> Ledger {
        let mut l = Ledger {
            book: Book::new(),
            log: Vec::new(),
        };
        l.run(l.book.open_profile(P, tz(zone), Currency::SGD));
        l.run(l.book.open_card(CARD, P, Currency::SGD));
        l.run(l.book.open_card(OTHER_CARD, P, Currency::SGD));
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
        event
    }

    fn charge(&mut self, txn: u64, card: CardToken, t: LimitType, minor: i64, now: &str) {
        let charge = UsageCharge {
            txn: TxnId(txn),
            card,
            limit_type: t,
            card_amount: sgd(minor),
            profile_amount: sgd(minor),
        };
        self.run(self.book.plan_usage(&charge, at(now)));
    }

    fn adjust(&mut self, txn: u64, minor: i64, end: UsageEnd, now: &str) {
        self.run(
            self.book
                .plan_usage_adjust_to(TxnId(txn), sgd(minor), sgd(minor), end, at(now)),
        );
    }

    /// Card daily, monthly, lifetime; profile PURCHASE daily, monthly.
    fn usage(&self, now: &str) -> [i64; 5] {
        let now = at(now);
        let card = |g| {
            self.book
                .usage(UsageKey::Card(CARD), g, now)
                .unwrap()
                .amount_minor
        };
        let key = UsageKey::Profile(P, LimitType::Purchase);
        let profile = |g| self.book.usage(key, g, now).unwrap().amount_minor;
        [
            card(Granularity::Daily),
            card(Granularity::Monthly),
            card(Granularity::Lifetime),
            profile(Granularity::Daily),
            profile(Granularity::Monthly),
        ]
    }
}

fn window(zone: &str, g: Granularity, now: &str) -> (String, String) {
    let w = window_bounds(tz(zone), g, at(now)).unwrap();
    (w.start.to_rfc3339(), w.end.to_rfc3339())
}

#[test]
fn windows_follow_the_profile_time_zone() {
    let cases: &[(&str, Granularity, &str, &str, &str)] = &[
        // Singapore is UTC+8 all year: its days start at 16:00 UTC.
        (
            "Asia/Singapore",
            Granularity::Daily,
            "2026-01-15T15:59:59Z",
            "2026-01-14T16:00:00.000Z",
            "2026-01-15T16:00:00.000Z",
        ),
        (
            "Asia/Singapore",
            Granularity::Daily,
            "2026-01-15T16:00:00Z",
            "2026-01-15T16:00:00.000Z",
            "2026-01-16T16:00:00.000Z",
        ),
        (
            "Asia/Singapore",
            Granularity::Monthly,
            "2026-01-31T15:59:59Z",
            "2025-12-31T16:00:00.000Z",
            "2026-01-31T16:00:00.000Z",
        ),
        (
            "Asia/Singapore",
            Granularity::Monthly,
            "2026-12-31T16:00:00Z",
            "2026-12-31T16:00:00.000Z",
            "2027-01-31T16:00:00.000Z",
        ),
        // New York springs forward on 2026-03-08 (a 23-hour day) and falls back on 11-01 (25).
        (
            "America/New_York",
            Granularity::Daily,
            "2026-03-08T12:00:00Z",
            "2026-03-08T05:00:00.000Z",
            "2026-03-09T04:00:00.000Z",
        ),
        (
            "America/New_York",
            Granularity::Daily,
            "2026-11-01T12:00:00Z",
            "2026-11-01T04:00:00.000Z",
            "2026-11-02T05:00:00.000Z",
        ),
        (
            "America/New_York",
            Granularity::Monthly,
            "2026-03-20T00:00:00Z",
            "2026-03-01T05:00:00.000Z",
            "2026-04-01T04:00:00.000Z",
        ),
        // Santiago sprang forward at midnight on 2023-09-03: that day began at 01:00 local.
        (
            "America/Santiago",
            Granularity::Daily,
            "2023-09-03T12:00:00Z",
            "2023-09-03T04:00:00.000Z",
            "2023-09-04T03:00:00.000Z",
        ),
        (
            "America/Santiago",
            Granularity::Daily,
            "2023-09-02T12:00:00Z",
            "2023-09-02T04:00:00.000Z",
            "2023-09-03T04:00:00.000Z",
        ),
        (
            "UTC",
            Granularity::Monthly,
            "2024-02-29T23:59:59Z",
            "2024-02-01T00:00:00.000Z",
            "2024-03-01T00:00:00.000Z",
        ),
    ];
    for &(zone, g, now, start, end) in cases {
        assert_eq!(
            window(zone, g, now),
            (start.to_owned(), end.to_owned()),
            "{zone} {g} {now}"
        );
    }
    assert_eq!(
        window_bounds(
            TimeZone::UTC,
            Granularity::Transaction,
            at("2026-01-01T00:00:00Z")
        ),
        None
    );
    assert_eq!(
        window_bounds(
            TimeZone::UTC,
            Granularity::Lifetime,
            at("2026-01-01T00:00:00Z")
        ),
        Some(Window::LIFETIME)
    );
}

#[test]
fn instants_at_the_ends_of_time_do_not_panic() {
    for zone in ["UTC", "Pacific/Kiritimati", "America/New_York"] {
        for now in [i64::MIN, i64::MAX, 0, 8_210_298_412_799_999] {
            for g in [Granularity::Daily, Granularity::Monthly] {
                if let Some(w) = window_bounds(tz(zone), g, Timestamp(now)) {
                    assert!(w.start < w.end, "{zone} {g} {now}");
                }
            }
        }
    }
}

#[test]
fn reset_at_is_the_last_instant_of_the_window() {
    // The reference's example: a London profile's July window resets at 22:59:59.999… UTC.
    let l = Ledger::new("Europe/London");
    let key = UsageKey::Profile(P, LimitType::Purchase);
    let now = at("2023-07-15T10:00:00Z");
    let monthly = l
        .book
        .reset_at(key, Granularity::Monthly, now)
        .unwrap()
        .unwrap();
    assert_eq!(monthly.to_rfc3339(), "2023-07-31T22:59:59.999Z");
    let daily = l
        .book
        .reset_at(UsageKey::Card(CARD), Granularity::Daily, now)
        .unwrap()
        .unwrap();
    assert_eq!(daily.to_rfc3339(), "2023-07-15T22:59:59.999Z");
    assert_eq!(l.book.reset_at(key, Granularity::Lifetime, now), Ok(None));
    assert!(l
        .book
        .reset_at(UsageKey::Card(CardToken(1)), Granularity::Daily, now)
        .is_err());
}

#[test]
fn usage_resets_at_local_midnight_and_month_end_in_singapore() {
    let mut l = Ledger::new("Asia/Singapore");
    l.charge(1, CARD, LimitType::Purchase, 100_00, "2026-01-31T15:00:00Z");
    assert_eq!(
        l.usage("2026-01-31T15:59:59.999Z"),
        [100_00, 100_00, 100_00, 100_00, 100_00]
    );
    // 00:00 on 1 February in Singapore: a new day and a new month; lifetime goes on.
    assert_eq!(l.usage("2026-01-31T16:00:00Z"), [0, 0, 100_00, 0, 0]);
    l.charge(2, CARD, LimitType::Purchase, 30_00, "2026-01-31T16:00:00Z");
    assert_eq!(
        l.usage("2026-01-31T16:00:01Z"),
        [30_00, 30_00, 130_00, 30_00, 30_00]
    );
    // The next day in the same month.
    l.charge(3, CARD, LimitType::Purchase, 5_00, "2026-02-01T16:30:00Z");
    assert_eq!(
        l.usage("2026-02-01T16:30:00Z"),
        [5_00, 35_00, 135_00, 5_00, 35_00]
    );
}

#[test]
fn a_23_hour_day_in_new_york() {
    let mut l = Ledger::new("America/New_York");
    // 23:30 on 7 March (EST) and 00:30 on 8 March (EST, before the jump at 02:00).
    l.charge(1, CARD, LimitType::Purchase, 10_00, "2026-03-08T04:30:00Z");
    l.charge(2, CARD, LimitType::Purchase, 20_00, "2026-03-08T05:30:00Z");
    assert_eq!(l.usage("2026-03-08T05:30:00Z")[0], 20_00);
    // 23:59 EDT on 8 March is 03:59 UTC on the 9th: still the same local day.
    assert_eq!(l.usage("2026-03-09T03:59:00Z")[0], 20_00);
    assert_eq!(l.usage("2026-03-09T04:00:00Z")[0], 0);
    assert_eq!(l.usage("2026-03-09T04:00:00Z")[1], 30_00);
}

#[test]
fn profile_counters_are_per_type_and_shared_by_cards() {
    let mut l = Ledger::new("UTC");
    l.charge(1, CARD, LimitType::Purchase, 10_00, "2026-05-01T10:00:00Z");
    l.charge(
        2,
        OTHER_CARD,
        LimitType::Purchase,
        7_00,
        "2026-05-01T11:00:00Z",
    );
    l.charge(
        3,
        OTHER_CARD,
        LimitType::AtmWithdrawal,
        50_00,
        "2026-05-01T12:00:00Z",
    );
    let now = at("2026-05-01T12:00:00Z");
    let purchase = UsageKey::Profile(P, LimitType::Purchase);
    let atm = UsageKey::Profile(P, LimitType::AtmWithdrawal);
    assert_eq!(
        l.book.usage(purchase, Granularity::Daily, now),
        Ok(sgd(17_00))
    );
    assert_eq!(l.book.usage(atm, Granularity::Monthly, now), Ok(sgd(50_00)));
    assert_eq!(
        l.book.usage(UsageKey::Card(CARD), Granularity::Daily, now),
        Ok(sgd(10_00))
    );
    assert_eq!(
        l.book
            .usage(UsageKey::Card(OTHER_CARD), Granularity::Daily, now),
        Ok(sgd(57_00))
    );
}

#[test]
fn reversals_and_clearings_adjust_only_current_windows() {
    let mut l = Ledger::new("UTC");
    l.charge(1, CARD, LimitType::Purchase, 100_00, "2026-05-10T10:00:00Z");
    l.adjust(1, 60_00, UsageEnd::Keep, "2026-05-10T11:00:00Z");
    assert_eq!(
        l.usage("2026-05-10T11:00:00Z"),
        [60_00, 60_00, 60_00, 60_00, 60_00]
    );
    // Cleared higher the next day: yesterday's window is over, this month's is not.
    l.charge(2, CARD, LimitType::Purchase, 1_00, "2026-05-11T09:00:00Z");
    l.adjust(1, 80_00, UsageEnd::Close, "2026-05-11T10:00:00Z");
    assert_eq!(
        l.usage("2026-05-11T10:00:00Z"),
        [1_00, 81_00, 81_00, 1_00, 81_00]
    );
    assert!(l.book.usage_record(TxnId(1)).is_none());
    // Cleared in the next month: only lifetime moves.
    l.adjust(2, 3_00, UsageEnd::Close, "2026-06-01T00:00:00Z");
    assert_eq!(l.usage("2026-06-01T00:00:00Z"), [0, 0, 83_00, 0, 0]);
    assert_eq!(l.usage("2026-05-31T23:59:59Z")[1], 81_00);
}

#[test]
fn expiry_releases_usage_and_a_late_clearing_counts_again() {
    let mut l = Ledger::new("UTC");
    l.charge(1, CARD, LimitType::Purchase, 50_00, "2026-05-01T10:00:00Z");
    l.charge(2, CARD, LimitType::Purchase, 20_00, "2026-05-01T10:00:00Z");
    l.adjust(1, 0, UsageEnd::Keep, "2026-05-08T10:00:00Z");
    l.adjust(2, 0, UsageEnd::Keep, "2026-05-08T10:00:00Z");
    assert_eq!(l.usage("2026-05-08T10:00:00Z"), [0, 0, 0, 0, 0]);
    assert!(l.book.usage_record(TxnId(1)).is_some());
    // Transaction 1 clears within the authorisation's month: counted there again.
    l.adjust(1, 45_00, UsageEnd::Close, "2026-05-20T10:00:00Z");
    assert_eq!(l.usage("2026-05-20T10:00:00Z"), [0, 45_00, 45_00, 0, 45_00]);
    // Transaction 2 clears a month later: the window is gone, only lifetime counts it.
    l.adjust(2, 20_00, UsageEnd::Close, "2026-06-02T10:00:00Z");
    assert_eq!(l.usage("2026-06-02T10:00:00Z"), [0, 0, 65_00, 0, 0]);
}

#[test]
fn bad_usage_input_is_refused_and_names_the_problem() {
    let l = Ledger::new("UTC");
    let now = at("2026-05-01T10:00:00Z");
    let good = UsageCharge {
        txn: TxnId(1),
        card: CARD,
        limit_type: LimitType::Purchase,
        card_amount: sgd(1),
        profile_amount: sgd(1),
    };
    let cases: Vec<(UsageCharge, &str)> = vec![
        (
            UsageCharge {
                card: CardToken(99),
                ..good
            },
            "unknown card",
        ),
        (
            UsageCharge {
                card_amount: Money::new(1, Currency::EUR),
                ..good
            },
            "card usage: expected SGD, got EUR",
        ),
        (
            UsageCharge {
                profile_amount: sgd(-1),
                ..good
            },
            "profile usage must not be negative",
        ),
    ];
    for (charge, expected) in cases {
        let err = l.book.plan_usage(&charge, now).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    let mut l = l;
    l.run(l.book.plan_usage(&good, now));
    assert_eq!(
        l.book.plan_usage(&good, now),
        Err(BookError::UsageExists(TxnId(1)))
    );
    let adjust = l
        .book
        .plan_usage_adjust_to(TxnId(5), sgd(1), sgd(1), UsageEnd::Keep, now);
    assert_eq!(adjust, Err(BookError::UnknownUsage(TxnId(5))));
    let no_counter = l
        .book
        .usage(UsageKey::Card(CARD), Granularity::Transaction, now);
    assert!(matches!(no_counter, Err(BookError::NoCounter { .. })));
    let key = UsageKey::Profile(P, LimitType::Purchase);
    assert!(matches!(
        l.book.usage(key, Granularity::Lifetime, now),
        Err(BookError::NoCounter { .. })
    ));
    assert_eq!(
        l.book.open_card(CARD, P, Currency::SGD),
        Err(BookError::CardExists(CARD))
    );
    assert_eq!(
        l.book.open_card(CardToken(5), ProfileId(8), Currency::SGD),
        Err(BookError::UnknownProfile(ProfileId(8)))
    );
}

#[test]
fn replay_needs_no_clock() {
    let mut l = Ledger::new("America/New_York");
    l.charge(1, CARD, LimitType::Purchase, 10_00, "2026-10-31T12:00:00Z");
    l.charge(
        2,
        CARD,
        LimitType::AtmWithdrawal,
        20_00,
        "2026-11-01T12:00:00Z",
    );
    l.adjust(1, 4_00, UsageEnd::Keep, "2026-11-01T13:00:00Z");
    l.charge(
        3,
        OTHER_CARD,
        LimitType::Purchase,
        1_00,
        "2026-11-02T06:00:00Z",
    );
    let mut replayed = Book::new();
    for e in &l.log {
        replayed.apply(e).unwrap();
    }
    assert_eq!(replayed.state_hash(), l.book.state_hash());
    let json = serde_json::to_string(&l.book).unwrap();
    let restored: Book = serde_json::from_str(&json).unwrap();
    assert_eq!(restored.state_hash(), l.book.state_hash());
    // Applying a usage event twice is refused.
    let last = l.log.last().unwrap().clone();
    assert!(matches!(
        l.book.apply(&last),
        Err(BookError::EventDoesNotApply { .. })
    ));
}
