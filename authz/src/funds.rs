//! Where the lifecycle meets the ledger: funding plans, postings, credits and limit usage,
//! each decided by the [`Book`](cardcore_ledger::book::Book) and recorded as a ledger event.

use cardcore_core::{
    BalanceId, CardToken, Currency, Granularity, LimitType, Money, ProfileId, Timestamp,
    TransactionType,
};
use cardcore_ledger::book::{
    Authorised, BookError, CreditKind, Debit, FundingPrefs, FxQuote, FxRates, GrowIn, HoldPlaced,
    LedgerEvent, UsageCharge, UsageEnd, UsageKey,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::app::AppData;
use crate::error::EngineError;
use crate::events::EngineEvent;
use crate::partition::Partition;
use crate::pipeline::{limit_type_of_type, UsageView};
use crate::state::{Card, Profile, TxnRecord};

/// Not enough money: what the card could use, and whether conversion was ruled out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FundsShort {
    pub shortfall: Money,
    pub smart_conversion_blocked: bool,
}

/// How an approved amount is funded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Funding {
    /// A new hold (0100).
    Hold,
    /// A hold grown by an incremental authorisation.
    Grow,
    /// Posted at once (0200).
    Post,
}

impl FxRates for AppData {
    fn quote(&self, from: Currency, to: Currency) -> Option<FxQuote> {
        let rate = self.rate(from, to)?;
        // Percent to parts per million: 0.35 % = 3500 ppm. Finer fees are rounded up.
        let ppm = (rate.fee_percent * Decimal::from(10_000)).ceil().to_u32()?;
        Some(FxQuote::new(rate.rate, ppm))
    }
}

/// A balance as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BalanceView {
    pub id: BalanceId,
    pub profile: ProfileId,
    pub currency: Currency,
    pub available: Money,
    pub reserved: Money,
    pub cash: Money,
    pub overdrawn: bool,
}

/// Where a transaction's money went: the reference's `debits` and `credits`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMoney {
    /// Live holds (while `IN_PROGRESS`) or postings (once `COMPLETED`).
    pub debits: Vec<Debit>,
    pub credits: Vec<(BalanceId, Money)>,
    /// The debits are holds, not postings.
    pub held: bool,
}

/// One limit with its usage, as the reference's limit objects show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub granularity: Granularity,
    pub value: Option<Money>,
    pub max: Option<Money>,
    pub usage: Money,
    pub reset_at: Option<Timestamp>,
}

fn prefs(card: &Card) -> FundingPrefs {
    if card.smart_conversion {
        FundingPrefs::smart(Some(card.currency))
    } else {
        FundingPrefs::SINGLE_CURRENCY
    }
}

fn short(error: BookError, currency: Currency) -> FundsShort {
    match error {
        BookError::InsufficientFunds {
            shortfall,
            smart_conversion_blocked,
            ..
        } => FundsShort {
            shortfall,
            smart_conversion_blocked,
        },
        // Anything else the book refuses (too many legs, overflow) cannot be funded either.
        _ => FundsShort {
            shortfall: Money::zero(currency),
            smart_conversion_blocked: false,
        },
    }
}

impl Partition {
    /// Plans the funding of an approval without changing anything: the event to emit if
    /// the transaction is approved, or why it cannot be funded.
    pub(crate) fn plan_funding(
        &self,
        card: &Card,
        record: &TxnRecord,
        amount: Money,
        funding: Funding,
        app: &AppData,
    ) -> Result<LedgerEvent, FundsShort> {
        let prefs = prefs(card);
        let rates: &AppData = app;
        let planned = match funding {
            Funding::Hold => self
                .book
                .plan_hold(record.id, record.profile, amount, &prefs, rates),
            Funding::Grow => self.book.plan_grow(record.id, amount, &prefs, rates),
            Funding::Post => self
                .book
                .plan_post(record.id, record.profile, amount, &prefs, rates),
        };
        planned.map_err(|e| short(e, amount.currency))
    }

    /// Emits a ledger event decided by the book. A book that refuses its own decision is a
    /// bug; it is logged loudly and the event is not applied.
    pub(crate) fn emit_ledger(&mut self, planned: Result<LedgerEvent, BookError>, what: &str) {
        match planned {
            Ok(event) => self.emit(EngineEvent::Ledger(event)),
            Err(e) => {
                self.refused_changes += 1;
                tracing::error!(error = %e, what, "ledger refused a planned change");
            }
        }
    }

    /// A stand-in hold: funded as far as possible, the rest past available (flagged).
    pub(crate) fn funds_forced_hold(&mut self, record: &TxnRecord, amount: Money) {
        let Some(card) = self.cards.get(&record.card) else {
            return;
        };
        let app = self.app.load();
        let rates: &AppData = &app;
        let planned =
            self.book
                .plan_forced_hold(record.id, record.profile, amount, &prefs(card), rates);
        self.emit_ledger(planned, "stand-in hold");
    }

    /// A clearing whose hold is gone (expired or reversed): posted at today's rates, past
    /// available funds if need be.
    pub(crate) fn funds_forced_post(&mut self, record: &TxnRecord, amount: Money) {
        let Some(card) = self.cards.get(&record.card) else {
            return;
        };
        let app = self.app.load();
        let rates: &AppData = &app;
        let planned =
            self.book
                .plan_forced_post(record.id, record.profile, amount, &prefs(card), rates);
        self.emit_ledger(planned, "late clearing");
    }

    pub(crate) fn funds_credit(&mut self, record: &TxnRecord, amount: Money) {
        if amount.is_zero() {
            return;
        }
        let planned = self.book.plan_refund(record.id, record.profile, amount);
        self.emit_ledger(planned, "refund credit");
    }

    pub(crate) fn funds_capture(&mut self, record: &TxnRecord, amount: Money) {
        let planned = self.book.plan_capture(record.id, amount);
        self.emit_ledger(planned, "clearing");
    }

    pub(crate) fn funds_adjust(&mut self, record: &TxnRecord, final_amount: Money) {
        let planned = self.book.plan_adjust_to(record.id, final_amount);
        self.emit_ledger(planned, "partial reversal");
    }

    pub(crate) fn funds_release(&mut self, record: &TxnRecord, expired: bool) {
        if self.book.hold(record.id).is_none() {
            return;
        }
        let planned = if expired {
            self.book.plan_expire(record.id)
        } else {
            self.book.plan_release(record.id)
        };
        self.emit_ledger(planned, "release");
    }

    /// Converts a transaction amount into a usage counter's currency at the rate of the
    /// moment; it is counted once and released as counted. Without a rate the amount cannot
    /// be counted: the limit check already refused such a transaction when a limit applies,
    /// so this only loses usage nobody limits.
    fn usage_amount(&self, amount: Money, currency: Currency) -> Money {
        if amount.currency == currency {
            return amount;
        }
        let app = self.app.load();
        app.rate(amount.currency, currency)
            .and_then(|r| amount.convert(currency, r.rate).ok())
            .unwrap_or(Money::zero(currency))
    }

    /// What counting `amount` of `record` means for its card's and profile's counters.
    fn usage_charge(&self, record: &TxnRecord, amount: Money) -> Option<UsageCharge> {
        let (card_ccy, profile_ccy) = self.book.usage_currencies(record.card)?;
        Some(UsageCharge {
            txn: record.id,
            card: record.card,
            limit_type: limit_type_of_type(record.txn_type),
            amount,
            card_amount: self.usage_amount(amount, card_ccy),
            profile_amount: self.usage_amount(amount, profile_ccy),
        })
    }

    /// Counts a new transaction's approved amount in the card's and the profile's limit
    /// windows.
    pub(crate) fn usage_add(&mut self, record: &TxnRecord, amount: Money, now: Timestamp) {
        let Some(charge) = self.usage_charge(record, amount) else {
            return;
        };
        let planned = self.book.plan_usage(&charge, now);
        self.emit_ledger(planned, "usage");
    }

    /// Records an approved authorisation's hold, planned into `approval`, and counts its
    /// amount in the limit windows: one event for both.
    pub(crate) fn hold_and_count(
        &mut self,
        record: &TxnRecord,
        approval: &mut Authorised,
        amount: Money,
        now: Timestamp,
    ) {
        let convert = |m: Money, c: Currency| self.usage_amount(m, c);
        let limit_type = limit_type_of_type(record.txn_type);
        let planned = self.book.plan_usage_converted(
            record.id,
            record.card,
            limit_type,
            amount,
            convert,
            now,
        );
        match planned {
            Ok(usage) => {
                approval.usage = usage;
                self.emit_authorised(approval);
            }
            // A refusal is a bug (every issued card has counters): it is counted and logged,
            // and the hold stands on its own.
            Err(refused) => {
                self.emit(EngineEvent::Ledger(LedgerEvent::HoldPlaced(approval.hold)));
                self.emit_ledger(Err(refused), "usage");
            }
        }
    }

    /// Plans a new hold of `amount` for `record` into `out`, or says why it cannot be
    /// funded.
    pub(crate) fn plan_hold_into(
        &self,
        card: &Card,
        record: &TxnRecord,
        amount: Money,
        app: &AppData,
        out: &mut HoldPlaced,
    ) -> Result<(), FundsShort> {
        let rates: &AppData = app;
        self.book
            .plan_hold_into(record.id, record.profile, amount, &prefs(card), rates, out)
            .map_err(|e| short(e, amount.currency))
    }

    /// Counts what an incremental authorisation adds, in the windows current now.
    pub(crate) fn usage_grow(&mut self, record: &TxnRecord, added: Money, now: Timestamp) {
        if self.book.usage_record(record.id).is_none() {
            return self.usage_add(record, added, now);
        }
        let Some(charge) = self.usage_charge(record, added) else {
            return;
        };
        let planned = self
            .book
            .plan_usage_grow(&charge, GrowIn::Current, UsageEnd::Keep, now);
        self.emit_ledger(planned, "usage growth");
    }

    /// Sets a transaction's counted usage to `amount` (in the transaction currency): what is
    /// above it is given back as it was counted; what is beyond what was counted (a clearing
    /// above the authorised amount, or after the hold expired) counts in the windows of the
    /// newest authorisation.
    pub(crate) fn usage_set(
        &mut self,
        record: &TxnRecord,
        amount: Money,
        end: UsageEnd,
        now: Timestamp,
    ) {
        let Some(counted) = self.book.usage_record(record.id).map(|r| r.counted()) else {
            if amount.is_zero() {
                return;
            }
            // Its usage was closed (a reversal to zero) and money moves after all: count
            // it afresh in today's windows.
            self.usage_add(record, amount, now);
            if end == UsageEnd::Close {
                let planned = self.book.plan_usage_release_to(record.id, amount, end, now);
                self.emit_ledger(planned, "usage close");
            }
            return;
        };
        let above = amount
            .amount_minor
            .checked_sub(counted.txn_minor)
            .unwrap_or(0);
        if above == 0 && end == UsageEnd::Keep {
            return;
        }
        let planned = if above > 0 {
            let Some(charge) = self.usage_charge(record, Money::new(above, amount.currency)) else {
                return;
            };
            self.book
                .plan_usage_grow(&charge, GrowIn::Authorised, end, now)
        } else {
            self.book.plan_usage_release_to(record.id, amount, end, now)
        };
        self.emit_ledger(planned, "usage adjustment");
    }

    /// Sets a transaction's usage to its final amount and forgets it: it will not change.
    pub(crate) fn usage_close(&mut self, record: &TxnRecord, amount: Money, now: Timestamp) {
        self.usage_set(record, amount, UsageEnd::Close, now);
    }

    /// Opens the profile in the book the first time it needs one, counting its profile-limit
    /// usage in `currency` (its first balance's, card's or limit's currency).
    pub(crate) fn ensure_book_profile(&mut self, profile: ProfileId, currency: Currency) {
        if self.book.has_profile(profile) {
            return;
        }
        let Some(tz) = self.profiles.get(&profile).map(|p| p.time_zone) else {
            return;
        };
        let planned = self.book.open_profile(profile, tz, currency);
        self.emit_ledger(planned, "open profile");
    }

    pub(crate) fn open_card_usage(
        &mut self,
        card: CardToken,
        profile: ProfileId,
        currency: Currency,
    ) {
        self.ensure_book_profile(profile, currency);
        let planned = self.book.open_card(card, profile, currency);
        self.emit_ledger(planned, "open card usage");
    }

    pub fn balance_view(
        &self,
        profile: ProfileId,
        id: BalanceId,
    ) -> Result<BalanceView, EngineError> {
        let b = self
            .book
            .balance(id)
            .filter(|b| b.profile == profile)
            .ok_or_else(|| EngineError::not_found("balance", id))?;
        Ok(BalanceView {
            id: b.id,
            profile: b.profile,
            currency: b.currency,
            available: b.available(),
            reserved: b.reserved(),
            cash: b.cash(),
            overdrawn: b.overdrawn,
        })
    }

    pub fn balance_views(&self, profile: ProfileId) -> Result<Vec<BalanceView>, EngineError> {
        self.profiles
            .get(&profile)
            .ok_or_else(|| EngineError::not_found("profile", profile))?;
        let ids: Vec<BalanceId> = self.book.balances_of(profile).map(|b| b.id).collect();
        ids.into_iter()
            .map(|id| self.balance_view(profile, id))
            .collect()
    }

    /// The debits and credits of a transaction.
    pub fn txn_money(&self, record: &TxnRecord) -> TxnMoney {
        if let Some(hold) = self.book.hold(record.id) {
            return TxnMoney {
                debits: hold.debits().collect(),
                credits: Vec::new(),
                held: true,
            };
        }
        self.postings.get(&record.id).cloned().unwrap_or_default()
    }

    /// Records what a ledger event moved for good, for [`Partition::txn_money`].
    pub(crate) fn note_postings(&mut self, event: &LedgerEvent) {
        // Only captures, posts and refund credits move money for good; holds, usage and
        // top-ups are not a transaction's debits.
        let credit = match event {
            LedgerEvent::Captured(_) | LedgerEvent::Posted(_) => None,
            LedgerEvent::Credited(c) if matches!(c.kind, CreditKind::Refund(_)) => event.credit(),
            _ => return,
        };
        let Some(txn) = event.txn() else { return };
        let entry = self.postings.entry(txn).or_default();
        entry.debits.extend(event.debits());
        entry.credits.extend(credit);
    }

    /// Every invariant of the partition: the book's own, and that holds and transaction
    /// states agree.
    pub fn invariant_violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Err(v) = self.book.check_invariants() {
            found.push(format!("partition {}: {v}", self.index()));
        }
        if self.refused_changes > 0 {
            found.push(format!(
                "partition {}: {} changes the engine decided were refused",
                self.index(),
                self.refused_changes
            ));
        }
        for txn in self.book.live_hold_txns() {
            match self.txns.get(&txn) {
                Some(t) if t.state == cardcore_core::TransactionState::InProgress => {}
                Some(t) => found.push(format!(
                    "hold of {txn} belongs to a {} transaction",
                    t.state
                )),
                None => found.push(format!("hold of {txn} belongs to no transaction")),
            }
        }
        found
    }

    /// Card limits with usage and reset times.
    pub fn card_limit_report(
        &self,
        profile: ProfileId,
        token: CardToken,
        now: Timestamp,
    ) -> Result<Vec<UsageReport>, EngineError> {
        let card = self.card_of(profile, token)?;
        let mut out = Vec::new();
        for g in Granularity::ALL {
            let value = card.limits.as_ref().and_then(|l| l.get(g));
            let usage = match g {
                Granularity::Transaction => Money::zero(card.currency),
                _ => self
                    .book
                    .usage(UsageKey::Card(token), g, now)
                    .unwrap_or(Money::zero(card.currency)),
            };
            let reset_at = self
                .book
                .reset_at(UsageKey::Card(token), g, now)
                .ok()
                .flatten();
            out.push(UsageReport {
                granularity: g,
                value,
                max: None,
                usage,
                reset_at,
            });
        }
        Ok(out)
    }

    /// Profile limits of both types with usage and reset times.
    pub fn profile_limit_report(
        &self,
        profile: ProfileId,
        now: Timestamp,
    ) -> Result<Vec<(LimitType, Vec<UsageReport>)>, EngineError> {
        let p = self
            .profiles
            .get(&profile)
            .ok_or_else(|| EngineError::not_found("profile", profile))?;
        let mut out = Vec::new();
        for t in LimitType::ALL {
            let limit = p.limit(t);
            let mut windows = Vec::new();
            for (g, value, max) in [
                (
                    Granularity::Daily,
                    limit.map(|l| l.daily_minor),
                    limit.map(|l| l.max_daily_minor),
                ),
                (
                    Granularity::Monthly,
                    limit.map(|l| l.monthly_minor),
                    limit.map(|l| l.max_monthly_minor),
                ),
            ] {
                let key = UsageKey::Profile(profile, t);
                let usage = self.book.usage(key, g, now).ok();
                let currency = limit
                    .map(|l| l.currency)
                    .or(usage.map(|u| u.currency))
                    .unwrap_or(Currency::EUR);
                let reset_at = self.book.reset_at(key, g, now).ok().flatten();
                windows.push(UsageReport {
                    granularity: g,
                    value: value.map(|v| Money::new(v, currency)),
                    max: max.map(|v| Money::new(v, currency)),
                    usage: usage.unwrap_or(Money::zero(currency)),
                    reset_at,
                });
            }
            out.push((t, windows));
        }
        Ok(out)
    }

    /// Limit usage of a card in a window (for expectations and operators).
    pub fn card_usage(
        &self,
        token: CardToken,
        window: Granularity,
        now: Timestamp,
    ) -> Option<Money> {
        self.book.usage(UsageKey::Card(token), window, now).ok()
    }

    pub fn profile_usage(
        &self,
        profile: ProfileId,
        t: LimitType,
        window: Granularity,
        now: Timestamp,
    ) -> Option<Money> {
        self.book
            .usage(UsageKey::Profile(profile, t), window, now)
            .ok()
    }
}

impl UsageView for Partition {
    fn card_usage(&self, card: &Card, window: Granularity, now: Timestamp) -> Option<Money> {
        self.book
            .usage(UsageKey::Card(card.token), window, now)
            .ok()
    }

    fn profile_usage(
        &self,
        profile: &Profile,
        limit_type: LimitType,
        window: Granularity,
        now: Timestamp,
    ) -> Option<Money> {
        self.book
            .usage(UsageKey::Profile(profile.id, limit_type), window, now)
            .ok()
    }
}

/// Which limit type a transaction type counts against.
pub fn limit_type_for(t: TransactionType) -> LimitType {
    limit_type_of_type(t)
}
