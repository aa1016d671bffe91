//! Limit usage: what a card and a profile have spent, per window.
//!
//! - Per card: daily, monthly and lifetime counters (the `TRANSACTION` granularity looks at
//!   one amount and has no counter), in the currency given when the card was opened.
//! - Per profile and [`LimitType`]: daily and monthly counters, in the profile's usage
//!   currency.
//!
//! The engine converts amounts into each counter's currency before calling the book.
//!
//! # Windows
//! A daily window runs from local midnight to the next local midnight in the profile's time
//! zone; a monthly one from local midnight on the 1st to the 1st of the next month. Both are
//! half-open `[start, end)` in UTC milliseconds, so a day across a DST change lasts 23 or 25
//! hours. Where midnight does not exist (a zone that springs forward at 00:00), the day
//! starts at the first local time that does. Each counter keeps the window its usage
//! belongs to, so reading usage is two integer compares; a stale window reads as zero.
//!
//! # Adjustments
//! Usage counts the amount authorised in the window, adjusted by later reversals and
//! clearings of the same transaction. The book keeps, per transaction, a
//! [`UsageRecord`]: each amount counted (the authorisation, each incremental authorisation)
//! with the minor units it counted in each counter and whether it is in the newest windows.
//! - An incremental authorisation counts in the windows current when it is decided, not in
//!   the original authorisation's.
//! - A release (lower final amount, expiry) gives back exactly what was counted, newest part
//!   first, never re-converted at a later rate; it moves a window's counter only while that
//!   window is still current (the lifetime counter always moves).
//! - An amount counted above the authorisations (a clearing above them, or after the hold
//!   expired) counts in the windows of the newest authorisation, where those are still the
//!   counters' windows.
//!
//! Expiry releases everything and keeps the record, so a clearing that arrives later counts
//! again in the authorisation's windows if they are still current.

use std::fmt;

use cardcore_core::{
    CardToken, Currency, Granularity, LimitType, Money, ProfileId, TimeZone, Timestamp, TxnId,
};
use chrono::{Datelike, Duration, NaiveDate, TimeZone as _};
use serde::{Deserialize, Serialize};

use super::error::BookError;
use super::event::{LedgerEvent, UsageAdded, UsageGrown, UsageReleased};
use super::usage_record::{UsageAmounts, UsageRecord};
use super::Book;

/// Local midnight may fall in a DST gap: look for the first valid local time in 15-minute
/// steps, up to 3 hours (no zone has had a longer gap at midnight).
const MIDNIGHT_SEARCH_STEPS: i64 = 12;
const MIDNIGHT_SEARCH_STEP_MINUTES: i64 = 15;

/// A half-open interval `[start, end)` of engine time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    /// Contains nothing: a counter that has never counted.
    pub const EMPTY: Window = Window {
        start: Timestamp(i64::MIN),
        end: Timestamp(i64::MIN),
    };
    pub const LIFETIME: Window = Window {
        start: Timestamp(i64::MIN),
        end: Timestamp(i64::MAX),
    };

    pub fn contains(&self, now: Timestamp) -> bool {
        self.start <= now && now < self.end
    }

    /// The last millisecond of the window (the reference's `resetAt`).
    pub fn last_instant(&self) -> Timestamp {
        Timestamp(self.end.0.saturating_sub(1))
    }
}

/// Usage in one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCounter {
    pub window: Window,
    pub used_minor: i64,
}

impl WindowCounter {
    pub const EMPTY: WindowCounter = WindowCounter {
        window: Window::EMPTY,
        used_minor: 0,
    };

    /// Usage at `now`: zero once the window has ended.
    pub fn used_at(&self, now: Timestamp) -> i64 {
        if self.window.contains(now) {
            self.used_minor
        } else {
            0
        }
    }

    /// The counter after adding `amount_minor` in `window`: a newer window starts afresh; an
    /// older one (only after the clock went back) is not counted. A newer window is one that
    /// ends later: after a time-zone change it may begin before the old one ended.
    fn added(self, window: Window, amount_minor: i64) -> Option<WindowCounter> {
        if self.window == window {
            let used_minor = self.used_minor.checked_add(amount_minor)?;
            Some(WindowCounter { window, used_minor })
        } else if window.end > self.window.end {
            Some(WindowCounter {
                window,
                used_minor: amount_minor,
            })
        } else {
            Some(self)
        }
    }
}

impl Default for WindowCounter {
    fn default() -> Self {
        WindowCounter::EMPTY
    }
}

/// A card's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardUsage {
    pub profile: ProfileId,
    pub currency: Currency,
    pub daily: WindowCounter,
    pub monthly: WindowCounter,
    pub lifetime_minor: i64,
}

/// A profile's counters for one [`LimitType`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeUsage {
    pub daily: WindowCounter,
    pub monthly: WindowCounter,
}

/// Whose usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UsageKey {
    Card(CardToken),
    Profile(ProfileId, LimitType),
}

impl fmt::Display for UsageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageKey::Card(card) => write!(f, "card {card}"),
            UsageKey::Profile(profile, t) => write!(f, "profile {profile} {t}"),
        }
    }
}

/// An amount to count for a transaction, converted by the engine into each counter's
/// currency at the rate of the moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageCharge {
    pub txn: TxnId,
    pub card: CardToken,
    pub limit_type: LimitType,
    /// In the transaction currency.
    pub amount: Money,
    pub card_amount: Money,
    pub profile_amount: Money,
}

/// Whether a transaction's usage may still change after an adjustment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageEnd {
    /// Keep the record: a partial reversal, or an expiry (a late clearing may follow).
    Keep,
    /// Forget the record: the transaction is final (cleared, or reversed to zero).
    Close,
}

/// The windows an amount added to a transaction's usage counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrowIn {
    /// The windows current now: an incremental authorisation.
    Current,
    /// The windows of the transaction's newest authorisation: what a clearing counts above
    /// the authorised amount, or after the hold expired.
    Authorised,
}

/// Which windowed counters a release moves (a bit set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppliedWindows(pub u8);

impl AppliedWindows {
    pub const CARD_DAILY: u8 = 1;
    pub const CARD_MONTHLY: u8 = 2;
    pub const PROFILE_DAILY: u8 = 4;
    pub const PROFILE_MONTHLY: u8 = 8;
    pub const ALL: u8 = 15;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn set_if(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        }
    }
}

/// The window of `granularity` that contains `now` in `tz`: `None` for `TRANSACTION` (no
/// window) and for instants out of the calendar's range.
pub fn window_bounds(tz: TimeZone, granularity: Granularity, now: Timestamp) -> Option<Window> {
    let local = now.to_datetime().with_timezone(&tz.0).date_naive();
    let (first, next) = match granularity {
        Granularity::Transaction => return None,
        Granularity::Lifetime => return Some(Window::LIFETIME),
        Granularity::Daily => (local, local.succ_opt()?),
        Granularity::Monthly => {
            let first = local.with_day(1)?;
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year().checked_add(1)?, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
            };
            (first, next)
        }
    };
    Some(Window {
        start: local_midnight(tz, first)?,
        end: local_midnight(tz, next)?,
    })
}

/// The instant local midnight begins `date` in `tz` (the first valid local time after it
/// when midnight falls in a DST gap; the earlier one when it is ambiguous): the first instant
/// whose local date in `tz` is `date`.
pub fn local_midnight(tz: TimeZone, date: NaiveDate) -> Option<Timestamp> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    (0..=MIDNIGHT_SEARCH_STEPS).find_map(|step| {
        let local =
            midnight.checked_add_signed(Duration::minutes(step * MIDNIGHT_SEARCH_STEP_MINUTES))?;
        tz.0.from_local_datetime(&local)
            .earliest()
            .map(|t| Timestamp::from_datetime(t.to_utc()))
    })
}

impl Book {
    /// Records a new transaction's usage in the windows current at `now`. Usage is counted
    /// whether or not a limit is set. Hot path: unless a window has just ended, this is a
    /// few integer compares.
    pub fn plan_usage(
        &self,
        charge: &UsageCharge,
        now: Timestamp,
    ) -> Result<LedgerEvent, BookError> {
        self.plan_usage_added(charge, now)
            .map(LedgerEvent::UsageAdded)
    }

    /// [`Book::plan_usage`], for an event that carries it with others
    /// ([`LedgerEvent::Authorised`]).
    pub fn plan_usage_added(
        &self,
        charge: &UsageCharge,
        now: Timestamp,
    ) -> Result<UsageAdded, BookError> {
        if self.usage_records.contains_key(&charge.txn) {
            return Err(BookError::UsageExists(charge.txn));
        }
        let (amounts, daily, monthly) = self.charge_in_windows(charge, now)?;
        Ok(UsageAdded {
            txn: charge.txn,
            card: charge.card,
            limit_type: charge.limit_type,
            currency: charge.amount.currency,
            amounts,
            daily,
            monthly,
        })
    }

    /// [`Book::plan_usage_added`] for `amount` in the transaction currency, which `convert`
    /// turns into each counter's currency: the card and the profile are looked up once.
    pub fn plan_usage_converted(
        &self,
        txn: TxnId,
        card: CardToken,
        limit_type: LimitType,
        amount: Money,
        convert: impl Fn(Money, Currency) -> Money,
        now: Timestamp,
    ) -> Result<UsageAdded, BookError> {
        if self.usage_records.contains_key(&txn) {
            return Err(BookError::UsageExists(txn));
        }
        let in_currency = |currency: Currency| {
            if amount.currency == currency {
                amount
            } else {
                convert(amount, currency)
            }
        };
        let in_counters =
            |card: Currency, profile: Currency| (in_currency(card), in_currency(profile));
        let (amounts, daily, monthly) =
            self.counted_in_windows(card, limit_type, amount, in_counters, now)?;
        Ok(UsageAdded {
            txn,
            card,
            limit_type,
            currency: amount.currency,
            amounts,
            daily,
            monthly,
        })
    }

    /// Adds to an open transaction's usage: an incremental authorisation counts in the
    /// windows current at `now` ([`GrowIn::Current`]), an amount cleared above the
    /// authorisations in the newest authorisation's windows ([`GrowIn::Authorised`]).
    pub fn plan_usage_grow(
        &self,
        charge: &UsageCharge,
        grow_in: GrowIn,
        end: UsageEnd,
        now: Timestamp,
    ) -> Result<LedgerEvent, BookError> {
        let record = self
            .usage_records
            .get(&charge.txn)
            .ok_or(BookError::UnknownUsage(charge.txn))?;
        if record.card != charge.card || record.limit_type != charge.limit_type {
            return Err(BookError::UsageMismatch(charge.txn));
        }
        check_usage_amount("transaction usage", charge.amount, record.currency)?;
        let (amounts, daily, monthly, windows) = match grow_in {
            GrowIn::Current => {
                let (amounts, daily, monthly) = self.charge_in_windows(charge, now)?;
                (amounts, daily, monthly, AppliedWindows(AppliedWindows::ALL))
            }
            GrowIn::Authorised => {
                let (amounts, _, _) = self.charge_in_windows(charge, now)?;
                let windows = self.current_windows(record, now)?;
                (amounts, record.daily, record.monthly, windows)
            }
        };
        Ok(LedgerEvent::UsageGrown(UsageGrown {
            txn: charge.txn,
            amounts,
            daily,
            monthly,
            windows,
            close: end == UsageEnd::Close,
        }))
    }

    /// Releases a transaction's usage down to `amount` in the transaction currency (a
    /// partial reversal, a clearing below the authorised amount, an expiry, a full reversal):
    /// newest part first, exactly what each part counted (see [`UsageRecord`]). Windows
    /// that have ended since keep what they counted. With `amount` equal to what is counted,
    /// nothing moves ([`UsageEnd::Close`] then just forgets the record).
    pub fn plan_usage_release_to(
        &self,
        txn: TxnId,
        amount: Money,
        end: UsageEnd,
        now: Timestamp,
    ) -> Result<LedgerEvent, BookError> {
        let record = self
            .usage_records
            .get(&txn)
            .ok_or(BookError::UnknownUsage(txn))?;
        check_usage_amount("transaction usage", amount, record.currency)?;
        let counted = record.counted().txn_minor;
        if amount.amount_minor > counted {
            return Err(BookError::ReleaseAboveUsage {
                txn,
                counted: Money::new(counted, record.currency),
                requested: amount,
            });
        }
        let windows = self.current_windows(record, now)?;
        Ok(LedgerEvent::UsageReleased(UsageReleased {
            txn,
            txn_minor: amount.amount_minor,
            windows,
            close: end == UsageEnd::Close,
        }))
    }

    /// Usage of `key` in the `window` that contains `now`, in the counter's currency.
    pub fn usage(
        &self,
        key: UsageKey,
        window: Granularity,
        now: Timestamp,
    ) -> Result<Money, BookError> {
        let no_counter = || BookError::NoCounter {
            key: key.to_string(),
            window,
        };
        match key {
            UsageKey::Card(token) => {
                let card = self
                    .cards
                    .get(&token)
                    .ok_or(BookError::UnknownCard(token))?;
                let used = match window {
                    Granularity::Daily => card.daily.used_at(now),
                    Granularity::Monthly => card.monthly.used_at(now),
                    Granularity::Lifetime => card.lifetime_minor,
                    Granularity::Transaction => return Err(no_counter()),
                };
                Ok(Money::new(used, card.currency))
            }
            UsageKey::Profile(id, limit_type) => {
                let profile = self
                    .profiles
                    .get(&id)
                    .ok_or(BookError::UnknownProfile(id))?;
                let counters = &profile.usage[limit_type.index()];
                let used = match window {
                    Granularity::Daily => counters.daily.used_at(now),
                    Granularity::Monthly => counters.monthly.used_at(now),
                    Granularity::Transaction | Granularity::Lifetime => return Err(no_counter()),
                };
                Ok(Money::new(used, profile.usage_currency))
            }
        }
    }

    /// The currencies the card's and the profile's usage of `card` are counted in.
    pub fn usage_currencies(&self, card: CardToken) -> Option<(Currency, Currency)> {
        let usage = self.cards.get(&card)?;
        let profile = self.profiles.get(&usage.profile)?;
        Some((usage.currency, profile.usage_currency))
    }

    /// The last instant of the `window` containing `now` for `key` (the reference's
    /// `resetAt`); `None` for windows that never reset (lifetime, transaction).
    pub fn reset_at(
        &self,
        key: UsageKey,
        window: Granularity,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, BookError> {
        let profile_id = match key {
            UsageKey::Card(token) => {
                self.cards
                    .get(&token)
                    .ok_or(BookError::UnknownCard(token))?
                    .profile
            }
            UsageKey::Profile(id, _) => id,
        };
        let profile = self
            .profiles
            .get(&profile_id)
            .ok_or(BookError::UnknownProfile(profile_id))?;
        if !matches!(window, Granularity::Daily | Granularity::Monthly) {
            return Ok(None);
        }
        Ok(window_bounds(profile.time_zone, window, now).map(|w| w.last_instant()))
    }

    /// What a transaction's usage record holds, while it is open.
    pub fn usage_record(&self, txn: TxnId) -> Option<&UsageRecord> {
        self.usage_records.get(&txn)
    }

    /// The counters whose window is still the one `record`'s newest part was counted in, and
    /// still current at `now`: those a release gives back to, or a clearing above the
    /// authorised amount counts in.
    fn current_windows(
        &self,
        record: &UsageRecord,
        now: Timestamp,
    ) -> Result<AppliedWindows, BookError> {
        let card = self
            .cards
            .get(&record.card)
            .ok_or(BookError::UnknownCard(record.card))?;
        let profile = self
            .profiles
            .get(&card.profile)
            .ok_or(BookError::UnknownProfile(card.profile))?;
        let counters = &profile.usage[record.limit_type.index()];
        let current = |c: &WindowCounter, w: Window| c.window == w && w.contains(now);
        let mut windows = AppliedWindows::default();
        let bits = [
            (AppliedWindows::CARD_DAILY, &card.daily, record.daily),
            (AppliedWindows::CARD_MONTHLY, &card.monthly, record.monthly),
            (AppliedWindows::PROFILE_DAILY, &counters.daily, record.daily),
            (
                AppliedWindows::PROFILE_MONTHLY,
                &counters.monthly,
                record.monthly,
            ),
        ];
        for (bit, counter, window) in bits {
            windows.set_if(bit, current(counter, window));
        }
        Ok(windows)
    }

    /// [`Book::counted_in_windows`] for a charge converted by the caller.
    fn charge_in_windows(
        &self,
        charge: &UsageCharge,
        now: Timestamp,
    ) -> Result<(UsageAmounts, Window, Window), BookError> {
        let amounts = |_: Currency, _: Currency| (charge.card_amount, charge.profile_amount);
        self.counted_in_windows(charge.card, charge.limit_type, charge.amount, amounts, now)
    }

    /// Checks `amount` and what `in_counters` makes of it in the card's and the profile's
    /// usage currencies (given in that order) against `card`'s counters, and finds the
    /// windows current at `now`: the card and its profile are looked up once.
    fn counted_in_windows(
        &self,
        card: CardToken,
        limit_type: LimitType,
        amount: Money,
        in_counters: impl FnOnce(Currency, Currency) -> (Money, Money),
        now: Timestamp,
    ) -> Result<(UsageAmounts, Window, Window), BookError> {
        let usage = self.cards.get(&card).ok_or(BookError::UnknownCard(card))?;
        let profile = self
            .profiles
            .get(&usage.profile)
            .ok_or(BookError::UnknownProfile(usage.profile))?;
        check_usage_amount("transaction usage", amount, amount.currency)?;
        let (card_amount, profile_amount) = in_counters(usage.currency, profile.usage_currency);
        check_usage_amount("card usage", card_amount, usage.currency)?;
        check_usage_amount("profile usage", profile_amount, profile.usage_currency)?;
        let amounts = UsageAmounts {
            txn_minor: amount.amount_minor,
            card_minor: card_amount.amount_minor,
            profile_minor: profile_amount.amount_minor,
        };
        let counters = &profile.usage[limit_type.index()];
        let tz = profile.time_zone;
        let daily = current_window(&[usage.daily, counters.daily], tz, Granularity::Daily, now)?;
        let monthly = current_window(
            &[usage.monthly, counters.monthly],
            tz,
            Granularity::Monthly,
            now,
        )?;
        Ok((amounts, daily, monthly))
    }

    pub(crate) fn apply_usage_added(&mut self, e: &UsageAdded) -> Result<(), BookError> {
        let counted = self.usage_added_checked(e)?;
        self.write_usage_added(e, counted);
        Ok(())
    }

    /// The card's and the profile's counters after `e`, checked; nothing is written.
    pub(crate) fn usage_added_checked(
        &self,
        e: &UsageAdded,
    ) -> Result<(CardUsage, TypeUsage), BookError> {
        const EVENT: &str = "UsageAdded";
        if self.usage_records.contains_key(&e.txn) {
            let why = format!("{}: usage already recorded", e.txn);
            return Err(BookError::mismatch(EVENT, why));
        }
        let counted = Counted {
            amounts: &e.amounts,
            daily: e.daily,
            monthly: e.monthly,
            windows: AppliedWindows(AppliedWindows::ALL),
        };
        self.added_usage(EVENT, e.txn, e.card, e.limit_type, &counted)
    }

    /// Writes what [`Book::usage_added_checked`] worked out for `e`.
    pub(crate) fn write_usage_added(&mut self, e: &UsageAdded, counted: (CardUsage, TypeUsage)) {
        let (card, counters) = counted;
        self.write_usage(e.card, card, e.limit_type, counters);
        let record = UsageRecord::new(
            e.card,
            e.limit_type,
            e.currency,
            e.amounts,
            e.daily,
            e.monthly,
        );
        self.usage_records.insert(e.txn, record);
    }

    pub(crate) fn apply_usage_grown(&mut self, e: &UsageGrown) -> Result<(), BookError> {
        const EVENT: &str = "UsageGrown";
        let bad = |why: &str| BookError::mismatch(EVENT, format!("{}: {why}", e.txn));
        let record = *self
            .usage_records
            .get(&e.txn)
            .ok_or_else(|| bad("no usage recorded"))?;
        let counted = Counted {
            amounts: &e.amounts,
            daily: e.daily,
            monthly: e.monthly,
            windows: e.windows,
        };
        let (card, counters) =
            self.added_usage(EVENT, e.txn, record.card, record.limit_type, &counted)?;
        let after = record
            .with_added(e.amounts, e.daily, e.monthly)
            .ok_or_else(|| bad("the transaction's usage overflows"))?;
        self.write_usage(record.card, card, record.limit_type, counters);
        self.keep_or_close(e.txn, after, e.close);
        Ok(())
    }

    pub(crate) fn apply_usage_released(&mut self, e: &UsageReleased) -> Result<(), BookError> {
        let (after, card, counters) = self.released_usage(e)?;
        self.write_usage(after.card, card, after.limit_type, counters);
        self.keep_or_close(e.txn, after, e.close);
        Ok(())
    }

    fn keep_or_close(&mut self, txn: TxnId, record: UsageRecord, close: bool) {
        if close {
            self.usage_records.remove(&txn);
        } else if let Some(r) = self.usage_records.get_mut(&txn) {
            *r = record;
        }
    }

    /// The card's and the profile's counters after counting `c`, checked; nothing is
    /// written.
    fn added_usage(
        &self,
        event: &'static str,
        txn: TxnId,
        card: CardToken,
        limit_type: LimitType,
        c: &Counted<'_>,
    ) -> Result<(CardUsage, TypeUsage), BookError> {
        let bad = |why: &str| BookError::mismatch(event, format!("{txn}: {why}"));
        let usage = self.cards.get(&card).ok_or_else(|| bad("unknown card"))?;
        let profile = self
            .profiles
            .get(&usage.profile)
            .ok_or_else(|| bad("unknown profile"))?;
        counters_after(event, txn, usage, &profile.usage[limit_type.index()], c)
    }

    /// The record, the card's and the profile's counters after `e`, checked; nothing is
    /// written.
    fn released_usage(
        &self,
        e: &UsageReleased,
    ) -> Result<(UsageRecord, CardUsage, TypeUsage), BookError> {
        let bad = |why: &str| BookError::mismatch("UsageReleased", format!("{}: {why}", e.txn));
        if e.windows.0 & !AppliedWindows::ALL != 0 {
            return Err(bad("unknown window"));
        }
        let record = self
            .usage_records
            .get(&e.txn)
            .ok_or_else(|| bad("no usage recorded"))?;
        let (after, back) = record
            .released_to(e.txn_minor)
            .ok_or_else(|| bad("the amount is negative or above what is counted"))?;
        let card = self
            .cards
            .get(&record.card)
            .ok_or_else(|| bad("unknown card"))?;
        let profile = self
            .profiles
            .get(&card.profile)
            .ok_or_else(|| bad("unknown profile"))?;
        let t = profile.usage[record.limit_type.index()];
        let moved = |c: WindowCounter, bit: u8, w: Window, back: i64| -> Result<_, BookError> {
            if !e.windows.has(bit) {
                return Ok(c);
            }
            if c.window != w {
                return Err(bad("the recorded window is not the counter's"));
            }
            let used_minor = c.used_minor.checked_sub(back).filter(|u| *u >= 0);
            let used_minor = used_minor.ok_or_else(|| bad("usage below zero"))?;
            Ok(WindowCounter {
                window: w,
                used_minor,
            })
        };
        let lifetime = card
            .lifetime_minor
            .checked_sub(back.card_lifetime)
            .filter(|l| *l >= 0);
        let (daily, monthly) = (record.daily, record.monthly);
        let card_after = CardUsage {
            daily: moved(
                card.daily,
                AppliedWindows::CARD_DAILY,
                daily,
                back.card_daily,
            )?,
            monthly: moved(
                card.monthly,
                AppliedWindows::CARD_MONTHLY,
                monthly,
                back.card_monthly,
            )?,
            lifetime_minor: lifetime.ok_or_else(|| bad("lifetime usage below zero"))?,
            ..*card
        };
        let counters = TypeUsage {
            daily: moved(
                t.daily,
                AppliedWindows::PROFILE_DAILY,
                daily,
                back.profile_daily,
            )?,
            monthly: moved(
                t.monthly,
                AppliedWindows::PROFILE_MONTHLY,
                monthly,
                back.profile_monthly,
            )?,
        };
        Ok((after, card_after, counters))
    }

    fn write_usage(
        &mut self,
        token: CardToken,
        card: CardUsage,
        limit_type: LimitType,
        counters: TypeUsage,
    ) {
        if let Some(profile) = self.profiles.get_mut(&card.profile) {
            profile.usage[limit_type.index()] = counters;
        }
        if let Some(slot) = self.cards.get_mut(&token) {
            *slot = card;
        }
    }
}

/// An amount to count, where, and in which counters.
pub(crate) struct Counted<'a> {
    pub(crate) amounts: &'a UsageAmounts,
    pub(crate) daily: Window,
    pub(crate) monthly: Window,
    pub(crate) windows: AppliedWindows,
}

/// A card's counters (`card`) and its profile's counters of the transaction's limit type
/// (`t`) after counting `c`, checked. The lifetime counter always counts; each windowed
/// counter only if its bit is in `c.windows` (and keeps a newer window it is already in).
pub(crate) fn counters_after(
    event: &'static str,
    txn: TxnId,
    card: &CardUsage,
    t: &TypeUsage,
    c: &Counted<'_>,
) -> Result<(CardUsage, TypeUsage), BookError> {
    let bad = |why: &str| BookError::mismatch(event, format!("{txn}: {why}"));
    let (amounts, daily, monthly) = (c.amounts, c.daily, c.monthly);
    if amounts.is_negative() || c.windows.0 & !AppliedWindows::ALL != 0 {
        return Err(bad("negative amount or unknown window"));
    }
    if daily.start >= daily.end || monthly.start >= monthly.end {
        return Err(bad("empty window"));
    }
    let overflow = || BookError::Overflow {
        what: "usage counter",
    };
    let (card_minor, profile_minor) = (amounts.card_minor, amounts.profile_minor);
    let add = |counter: WindowCounter, bit: u8, window: Window, minor: i64| {
        if c.windows.has(bit) {
            counter.added(window, minor).ok_or_else(overflow)
        } else {
            Ok(counter)
        }
    };
    let card_after = CardUsage {
        daily: add(card.daily, AppliedWindows::CARD_DAILY, daily, card_minor)?,
        monthly: add(
            card.monthly,
            AppliedWindows::CARD_MONTHLY,
            monthly,
            card_minor,
        )?,
        lifetime_minor: card
            .lifetime_minor
            .checked_add(card_minor)
            .ok_or_else(overflow)?,
        ..*card
    };
    let counters = TypeUsage {
        daily: add(t.daily, AppliedWindows::PROFILE_DAILY, daily, profile_minor)?,
        monthly: add(
            t.monthly,
            AppliedWindows::PROFILE_MONTHLY,
            monthly,
            profile_minor,
        )?,
    };
    Ok((card_after, counters))
}

fn check_usage_amount(
    what: &'static str,
    amount: Money,
    currency: Currency,
) -> Result<(), BookError> {
    if amount.currency != currency {
        return Err(BookError::CurrencyMismatch {
            what,
            expected: currency,
            got: amount.currency,
        });
    }
    if amount.is_negative() {
        return Err(BookError::NegativeAmount { what, amount });
    }
    Ok(())
}

/// The window containing `now`: a counter's cached one if current (the hot path), else
/// computed from the time zone.
fn current_window(
    counters: &[WindowCounter],
    tz: TimeZone,
    granularity: Granularity,
    now: Timestamp,
) -> Result<Window, BookError> {
    if let Some(c) = counters.iter().find(|c| c.window.contains(now)) {
        return Ok(c.window);
    }
    window_bounds(tz, granularity, now).ok_or(BookError::Overflow {
        what: "time out of calendar range",
    })
}
