//! Limit usage: windows in the profile's time zone (midnight, month end, DST changes),
//! adjustments by reversals, clearings and expiry, and replay without the clock.

// Amounts are written major_minor (`12_50` is 12.50 EUR, `1_234` is 1.234 KWD): that reads
// better than clippy's thousands grouping here.
#![allow(clippy::inconsistent_digit_grouping, clippy::mistyped_literal_suffixes)]

use cardcore_core::{
    CardToken, Currency, Granularity, LimitType, Money, ProfileId, TimeZone, Timestamp, TxnId,
};
use cardcore_ledger::book::{
    window_bounds, Book, BookError, GrowIn, LedgerEvent, UsageCharge, UsageEnd, UsageKey, Window,
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
            amount: sgd(minor),
            card_amount: sgd(minor),
            profile_amount: sgd(minor),
        };
        self.run(self.book.plan_usage(&charge, at(now)));
    }

    /// Sets a card-`CARD` purchase's usage to `minor`: released down to it, or grown in the
    /// authorisation's windows (a clearing above, or after expiry).
    fn adjust(&mut self, txn: u64, minor: i64, end: UsageEnd, now: &str) {
        let counted = self.book.usage_record(TxnId(txn)).unwrap().counted();
        let decided = if minor > counted.txn_minor {
            let more = minor - counted.txn_minor;
            let charge = UsageCharge {
                txn: TxnId(txn),
                card: CARD,
                limit_type: LimitType::Purchase,
                amount: sgd(more),
                card_amount: sgd(more),
                profile_amount: sgd(more),
            };
            self.book
                .plan_usage_grow(&charge, GrowIn::Authorised, end, at(now))
        } else {
            self.book
                .plan_usage_release_to(TxnId(txn), sgd(minor), end, at(now))
        };
        self.run(decided);
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
        amount: sgd(1),
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
        .plan_usage_release_to(TxnId(5), sgd(1), UsageEnd::Keep, now);
    assert_eq!(adjust, Err(BookError::UnknownUsage(TxnId(5))));
    let above = l
        .book
        .plan_usage_release_to(TxnId(1), sgd(2), UsageEnd::Keep, now);
    assert!(matches!(above, Err(BookError::ReleaseAboveUsage { .. })));
    let grow = l
        .book
        .plan_usage_grow(&good, GrowIn::Current, UsageEnd::Keep, now);
    assert!(grow.is_ok());
    let other_card = UsageCharge {
        card: OTHER_CARD,
        ..good
    };
    assert_eq!(
        l.book
            .plan_usage_grow(&other_card, GrowIn::Current, UsageEnd::Keep, now),
        Err(BookError::UsageMismatch(TxnId(1)))
    );
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

/// One move of a transaction's usage, for the table-driven tests below.
#[derive(Clone, Copy, Debug)]
enum Move {
    /// A new transaction: (txn, transaction-currency minor, minor counted in SGD).
    Auth(u64, i64, i64),
    /// An incremental authorisation, counted in today's windows.
    Increment(u64, i64, i64),
    /// Released down to this transaction-currency amount (kept open).
    ReleaseTo(u64, i64),
    /// Released down to this amount and closed (a clearing below or at the amount).
    CloseAt(u64, i64),
}

impl Ledger {
    /// A transaction in USD counted in SGD at whatever rate the caller used.
    fn usd_charge(txn: u64, usd_minor: i64, sgd_minor: i64) -> UsageCharge {
        UsageCharge {
            txn: TxnId(txn),
            card: CARD,
            limit_type: LimitType::Purchase,
            amount: Money::new(usd_minor, Currency::USD),
            card_amount: sgd(sgd_minor),
            profile_amount: sgd(sgd_minor),
        }
    }

    fn make(&mut self, m: Move, now: &str) {
        let now = at(now);
        let usd = |minor| Money::new(minor, Currency::USD);
        let decided = match m {
            Move::Auth(txn, usd_minor, sgd_minor) => self
                .book
                .plan_usage(&Ledger::usd_charge(txn, usd_minor, sgd_minor), now),
            Move::Increment(txn, usd_minor, sgd_minor) => self.book.plan_usage_grow(
                &Ledger::usd_charge(txn, usd_minor, sgd_minor),
                GrowIn::Current,
                UsageEnd::Keep,
                now,
            ),
            Move::ReleaseTo(txn, minor) => {
                self.book
                    .plan_usage_release_to(TxnId(txn), usd(minor), UsageEnd::Keep, now)
            }
            Move::CloseAt(txn, minor) => {
                self.book
                    .plan_usage_release_to(TxnId(txn), usd(minor), UsageEnd::Close, now)
            }
        };
        self.run(decided);
    }
}

/// Runs `moves` (each at its instant) and checks the five counters after each: card daily,
/// monthly, lifetime; profile daily, monthly.
fn check_moves(zone: &str, moves: &[(Move, &str, [i64; 5])]) {
    let mut l = Ledger::new(zone);
    for (i, &(m, now, expected)) in moves.iter().enumerate() {
        l.make(m, now);
        assert_eq!(l.usage(now), expected, "step {i}: {m:?} at {now}");
    }
    let mut replayed = Book::new();
    for e in &l.log {
        replayed.apply(e).unwrap();
    }
    assert_eq!(replayed.state_hash(), l.book.state_hash(), "replay");
}

#[test]
fn an_increment_after_local_midnight_counts_in_the_new_day() {
    // Tokyo is UTC+9: 14:30Z is 23:30 on 15 January there, 15:30Z is 00:30 on the 16th.
    check_moves(
        "Asia/Tokyo",
        &[
            (Move::Auth(1, 30_00, 30_00), "2026-01-15T14:30:00Z", {
                [30_00, 30_00, 30_00, 30_00, 30_00]
            }),
            // The next day there: the increment counts today only.
            (Move::Increment(1, 20_00, 20_00), "2026-01-15T15:30:00Z", {
                [20_00, 50_00, 50_00, 20_00, 50_00]
            }),
            (Move::Auth(2, 5_00, 5_00), "2026-01-15T16:00:00Z", {
                [25_00, 55_00, 55_00, 25_00, 55_00]
            }),
            // Down to 25.00: today's 20.00 first, then 5.00 of yesterday's 30.00, which
            // today's window never counted.
            (Move::ReleaseTo(1, 25_00), "2026-01-15T17:00:00Z", {
                [5_00, 30_00, 30_00, 5_00, 30_00]
            }),
            // The day after: transaction 2 (counted yesterday) released in full gives back
            // to the month and the lifetime only.
            (Move::Auth(3, 1_00, 1_00), "2026-01-16T15:30:00Z", {
                [1_00, 31_00, 31_00, 1_00, 31_00]
            }),
            (Move::CloseAt(2, 0), "2026-01-16T15:31:00Z", {
                [1_00, 26_00, 26_00, 1_00, 26_00]
            }),
            (Move::CloseAt(1, 0), "2026-01-16T15:32:00Z", {
                [1_00, 1_00, 1_00, 1_00, 1_00]
            }),
        ],
    );
}

#[test]
fn an_increment_in_a_new_month_counts_in_it() {
    // Madrid is UTC+1 in winter: 22:50Z on 31 January is 23:50 there, 23:10Z is 00:10 on
    // 1 February.
    check_moves(
        "Europe/Madrid",
        &[
            (Move::Auth(1, 100_00, 100_00), "2026-01-31T22:50:00Z", {
                [100_00, 100_00, 100_00, 100_00, 100_00]
            }),
            (Move::Increment(1, 40_00, 40_00), "2026-01-31T23:10:00Z", {
                [40_00, 40_00, 140_00, 40_00, 40_00]
            }),
            (Move::ReleaseTo(1, 90_00), "2026-02-01T09:00:00Z", {
                [0, 0, 90_00, 0, 0]
            }),
            (Move::CloseAt(1, 0), "2026-02-01T09:00:00Z", [0, 0, 0, 0, 0]),
        ],
    );
}

#[test]
fn releases_give_back_exactly_what_was_counted_whatever_the_rate() {
    // USD transactions counted in SGD at the rate of their moment: 1.35, then 1.20, then
    // 1.50. Releases never convert again: they give back the SGD each part counted, newest
    // first, and a part released in part keeps its share (nearest cent).
    check_moves(
        "UTC",
        &[
            (Move::Auth(1, 100_00, 135_00), "2026-03-02T10:00:00Z", {
                [135_00, 135_00, 135_00, 135_00, 135_00]
            }),
            (Move::Increment(1, 10_00, 12_00), "2026-03-02T11:00:00Z", {
                [147_00, 147_00, 147_00, 147_00, 147_00]
            }),
            // Down to 33.33 USD: the increment's 12.00 SGD, then 66.67 of the 100.00 USD,
            // which keeps 33.33 / 100.00 of 135.00 = 44.9955 → 45.00 SGD.
            (Move::ReleaseTo(1, 33_33), "2026-03-02T12:00:00Z", {
                [45_00, 45_00, 45_00, 45_00, 45_00]
            }),
            (Move::Auth(2, 10_00, 15_00), "2026-03-02T12:00:00Z", {
                [60_00, 60_00, 60_00, 60_00, 60_00]
            }),
            (Move::ReleaseTo(1, 1), "2026-03-02T13:00:00Z", {
                [15_01, 15_01, 15_01, 15_01, 15_01]
            }),
            // To zero: exactly what is left, so nothing drifts.
            (Move::CloseAt(1, 0), "2026-03-02T14:00:00Z", {
                [15_00, 15_00, 15_00, 15_00, 15_00]
            }),
            (Move::CloseAt(2, 0), "2026-03-02T14:00:00Z", [0, 0, 0, 0, 0]),
        ],
    );
}

#[test]
fn many_increments_on_many_days_stay_within_the_bound() {
    // Eight days of increments: the record merges parts counted in the same windows, and
    // releasing everything still gives back exactly what was counted.
    let mut l = Ledger::new("UTC");
    l.make(Move::Auth(1, 10_00, 13_00), "2026-04-01T10:00:00Z");
    for day in 2..=9 {
        let now = format!("2026-04-0{day}T10:00:00Z");
        l.make(Move::Increment(1, 10_00, 11_00 + day), &now);
        let record = l.book.usage_record(TxnId(1)).unwrap();
        assert!(record.parts().len() <= cardcore_ledger::book::USAGE_PARTS_MAX);
    }
    let counted: i64 = 13_00 + (2..=9).map(|d| 11_00 + d).sum::<i64>();
    assert_eq!(l.usage("2026-04-09T10:00:00Z")[2], counted);
    assert_eq!(l.usage("2026-04-09T10:00:00Z")[0], 11_09);
    // 90.00 USD counted; down to 75.00: the newest 10.00 (today's 11.09 SGD) and half of
    // the day before's (5.54 of its 11.08 SGD, which today's window never counted).
    l.make(Move::ReleaseTo(1, 75_00), "2026-04-09T11:00:00Z");
    let usage = l.usage("2026-04-09T11:00:00Z");
    assert_eq!((usage[0], usage[2]), (0, counted - 11_09 - 5_54));
    l.make(Move::CloseAt(1, 0), "2026-04-09T12:00:00Z");
    assert_eq!(l.usage("2026-04-09T12:00:00Z"), [0, 0, 0, 0, 0]);
}
