//! The in-process target: an embedded engine on a fresh temporary data directory, driven
//! with real ISO 8583 bytes through the same parse-decide-respond path as the server.

use std::sync::Arc;

use cardcore_authz::management::{IssueCard, LimitChange};
use cardcore_authz::wire::{process_message, Reply};
use cardcore_authz::{Engine, EngineConfig, EngineError};
use cardcore_core::pin::Pin;
use cardcore_core::{
    Channel, Currency, Granularity, ManualClock, Money, ProfileId, RuleId, Timestamp,
    TransactionState,
};
use cardcore_ledger::journal::JournalConfig;
use tempfile::TempDir;

use super::iso::{build, read_answer};
use super::keys::SimKeys;
use crate::scenario::{
    BalanceView, CardRef, CardSetup, FxRate, LimitScope, ProfileLimitSetup, ProfileSetup,
    ProfileUpdate, RuleSetup, Target, TargetError, TrafficMessage, TrafficOutcome, TxnRef, TxnView,
};

/// An engine of its own per scenario file, journaled to a temporary directory.
pub struct InProcessTarget {
    keys: SimKeys,
    clock: Arc<ManualClock>,
    engine: Option<Arc<Engine>>,
    data_dir: Option<TempDir>,
    /// Journal to disk (the default) or keep everything in memory.
    durable: bool,
}

impl std::fmt::Debug for InProcessTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessTarget")
            .field("durable", &self.durable)
            .finish()
    }
}

fn failed(e: impl std::fmt::Display) -> TargetError {
    TargetError::Failed(e.to_string())
}

/// A management refusal is what `expect_error` looks for; anything else is a failure.
fn engine_error(e: EngineError) -> TargetError {
    match e {
        EngineError::NotFound { .. } | EngineError::Invalid { .. } | EngineError::Conflict(_) => {
            TargetError::Refused(e.to_string())
        }
        other => TargetError::Failed(other.to_string()),
    }
}

impl InProcessTarget {
    pub fn new(keys: SimKeys) -> InProcessTarget {
        InProcessTarget {
            keys,
            clock: Arc::new(ManualClock::new(Timestamp(0))),
            engine: None,
            data_dir: None,
            durable: true,
        }
    }

    /// Keeps state in memory only (no journal): for property tests that run many files.
    pub fn in_memory(mut self) -> InProcessTarget {
        self.durable = false;
        self
    }

    pub fn engine(&self) -> Result<&Engine, TargetError> {
        self.engine
            .as_deref()
            .ok_or_else(|| failed("no scenario started"))
    }

    /// The engine of the current run, to share with a load driver's threads.
    pub fn shared_engine(&self) -> Result<Arc<Engine>, TargetError> {
        self.engine
            .clone()
            .ok_or_else(|| failed("no scenario started"))
    }

    fn config(&self, dir: Option<&TempDir>) -> EngineConfig {
        let mut config = EngineConfig::new(self.keys.engine_keys(), self.keys.pan_key());
        config.journal = dir.map(|d| JournalConfig::new(d.path()));
        config
    }
}

impl Target for InProcessTarget {
    fn reset(&mut self, now: Timestamp) -> Result<(), TargetError> {
        if let Some(old) = self.engine.take() {
            // Shut down now if nothing else holds the engine; otherwise the last holder's
            // drop does it.
            if let Ok(mut old) = Arc::try_unwrap(old) {
                old.shutdown().map_err(failed)?;
            }
        }
        self.data_dir = None;
        let dir = if self.durable {
            Some(TempDir::new().map_err(failed)?)
        } else {
            None
        };
        self.clock = Arc::new(ManualClock::new(now));
        let config = self.config(dir.as_ref());
        self.engine = Some(Arc::new(
            Engine::open(config, self.clock.clone()).map_err(failed)?,
        ));
        self.data_dir = dir;
        Ok(())
    }

    fn set_clock(&mut self, now: Timestamp) -> Result<(), TargetError> {
        self.clock.set(now);
        self.engine()?.expire_holds().map_err(failed)
    }

    fn advance_clock(&mut self, by_ms: i64) -> Result<(), TargetError> {
        self.clock.advance_ms(by_ms);
        self.engine()?.expire_holds().map_err(failed)
    }

    fn create_profile(&mut self, setup: &ProfileSetup) -> Result<ProfileId, TargetError> {
        self.engine()?
            .create_profile(None, setup.status, setup.timezone)
            .map_err(engine_error)
    }

    fn update_profile(
        &mut self,
        profile: ProfileId,
        update: &ProfileUpdate,
    ) -> Result<(), TargetError> {
        self.engine()?
            .update_profile(profile, update.status, update.timezone)
            .map(|_| ())
            .map_err(engine_error)
    }

    fn top_up(&mut self, profile: ProfileId, amount: Money) -> Result<(), TargetError> {
        let engine = self.engine()?;
        if amount.is_zero() {
            return engine
                .open_balance(profile, amount.currency)
                .map(|_| ())
                .map_err(engine_error);
        }
        engine
            .top_up(profile, amount)
            .map(|_| ())
            .map_err(engine_error)
    }

    fn set_fx_rate(&mut self, rate: &FxRate) -> Result<(), TargetError> {
        self.engine()?
            .set_fx_rate(rate.from, rate.to, rate.rate, rate.fee_percent)
            .map_err(engine_error)
    }

    fn issue_card(&mut self, setup: &CardSetup) -> Result<cardcore_core::CardToken, TargetError> {
        let engine = self.engine()?;
        let currency = match setup.currency {
            Some(c) => c,
            None => default_currency(engine, setup.profile)?,
        };
        let pin = match &setup.pin {
            Some(p) => Some(
                Pin::parse(p.expose_digits()).map_err(|e| TargetError::Refused(e.to_string()))?,
            ),
            None => None,
        };
        let issue = IssueCard {
            profile: setup.profile,
            pan: setup.pan,
            pin,
            cvv2: setup.cvv2.as_ref().map(|c| c.expose_digits().to_owned()),
            expiry: setup.expiry,
            status: setup.status,
            currency,
            card_type: setup.card_type,
            smart_conversion: setup.smart_conversion,
            locked: setup.locked.clone(),
        };
        engine
            .issue_card(issue)
            .map(|c| c.token)
            .map_err(engine_error)
    }

    fn set_card_status(
        &mut self,
        card: CardRef,
        status: cardcore_core::CardStatus,
    ) -> Result<(), TargetError> {
        self.engine()?
            .change_card_status(card.profile, card.token, status)
            .map(|_| ())
            .map_err(engine_error)
    }

    fn set_permissions(
        &mut self,
        card: CardRef,
        changes: &[(Channel, bool)],
    ) -> Result<(), TargetError> {
        self.engine()?
            .update_permissions(card.profile, card.token, changes.to_vec())
            .map(|_| ())
            .map_err(engine_error)
    }

    fn set_card_limits(
        &mut self,
        card: CardRef,
        values: &[(Granularity, Money)],
    ) -> Result<(), TargetError> {
        let Some(currency) = values.first().map(|(_, m)| m.currency) else {
            return Ok(());
        };
        if values.iter().any(|(_, m)| m.currency != currency) {
            return Err(TargetError::Refused(
                "card limits must share one currency".into(),
            ));
        }
        let changes = values
            .iter()
            .map(|(g, m)| (*g, LimitChange::Set(m.amount_minor)))
            .collect();
        self.engine()?
            .update_card_limits(card.profile, card.token, currency, changes)
            .map_err(engine_error)
    }

    fn delete_card_limits(
        &mut self,
        card: CardRef,
        which: &[Granularity],
    ) -> Result<(), TargetError> {
        let engine = self.engine()?;
        let current = engine
            .card(card.profile, card.token)
            .map_err(engine_error)?;
        let Some(limits) = current.limits else {
            return Ok(());
        };
        let changes = which.iter().map(|g| (*g, LimitChange::Remove)).collect();
        engine
            .update_card_limits(card.profile, card.token, limits.currency, changes)
            .map_err(engine_error)
    }

    fn set_profile_limit(
        &mut self,
        profile: ProfileId,
        limit: &ProfileLimitSetup,
    ) -> Result<(), TargetError> {
        // A maximum not given keeps the current one, as the management API does.
        let max = (
            limit.max_daily.map(|m| m.amount_minor),
            limit.max_monthly.map(|m| m.amount_minor),
        );
        self.engine()?
            .update_profile_limit(profile, limit.limit_type, limit.daily, limit.monthly, max)
            .map(|_| ())
            .map_err(engine_error)
    }

    fn reset_pin_count(&mut self, card: CardRef) -> Result<(), TargetError> {
        self.engine()?
            .reset_pin_count(card.profile, card.token)
            .map(|_| ())
            .map_err(engine_error)
    }

    fn create_rule(&mut self, setup: &RuleSetup) -> Result<RuleId, TargetError> {
        self.engine()?
            .create_rule(
                setup.rule_type,
                setup.operation,
                setup.description.clone(),
                &setup.values,
            )
            .map(|r| r.id)
            .map_err(engine_error)
    }

    fn apply_rule(&mut self, rule: RuleId) -> Result<(), TargetError> {
        self.engine()?
            .apply_rule(rule)
            .map(|_| ())
            .map_err(engine_error)
    }

    fn unapply_rule(&mut self, rule: RuleId) -> Result<(), TargetError> {
        self.engine()?
            .unapply_rule(rule)
            .map(|_| ())
            .map_err(engine_error)
    }

    fn delete_rule(&mut self, rule: RuleId) -> Result<(), TargetError> {
        self.engine()?
            .delete_rule(rule)
            .map(|_| ())
            .map_err(engine_error)
    }

    fn send(&mut self, message: &TrafficMessage) -> Result<TrafficOutcome, TargetError> {
        let bytes = match message {
            TrafficMessage::Raw(bytes) => bytes.clone(),
            TrafficMessage::Card(m) => build(m, &self.keys.zone_pin_key()).map_err(failed)?,
        };
        match process_message(self.engine()?, &bytes) {
            Reply::Message(answer) => Ok(read_answer(&answer)),
            Reply::Close => Ok(TrafficOutcome {
                disconnected: true,
                ..TrafficOutcome::default()
            }),
        }
    }

    fn balance(
        &mut self,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<Option<BalanceView>, TargetError> {
        let balances = self.engine()?.balances(profile).map_err(engine_error)?;
        Ok(balances
            .into_iter()
            .find(|b| b.currency == currency)
            .map(|b| BalanceView {
                available: b.available,
                reserved: b.reserved,
                cash: b.cash,
            }))
    }

    fn transaction(&mut self, txn: TxnRef) -> Result<TxnView, TargetError> {
        let (record, _) = self
            .engine()?
            .transaction_any(txn.id)
            .map_err(engine_error)?;
        Ok(txn_view(&record))
    }

    fn limit_usage(
        &mut self,
        scope: LimitScope,
        window: Granularity,
    ) -> Result<Money, TargetError> {
        let engine = self.engine()?;
        match scope {
            LimitScope::Card(card) => engine.card_usage(card.profile, card.token, window),
            LimitScope::Profile(profile, t) => engine.profile_usage(profile, t, window),
        }
        .map_err(engine_error)
    }

    fn pin_tries(&mut self, card: CardRef) -> Result<u32, TargetError> {
        let card = self
            .engine()?
            .card(card.profile, card.token)
            .map_err(engine_error)?;
        Ok(u32::from(card.pin_tries))
    }

    fn invariant_violations(&mut self) -> Result<Vec<String>, TargetError> {
        self.engine()?.invariant_violations().map_err(failed)
    }
}

/// A card issued without a currency takes the profile's first balance currency, else EUR.
fn default_currency(engine: &Engine, profile: ProfileId) -> Result<Currency, TargetError> {
    let balances = engine.balances(profile).map_err(engine_error)?;
    Ok(balances.first().map_or(Currency::EUR, |b| b.currency))
}

/// A transaction as expectations see it. `amount` is what the transaction stands at: the
/// cleared amount once `COMPLETED`, the authorised amount while `IN_PROGRESS`, and the
/// amount asked for when `DECLINED` or `CANCELLED`.
pub fn txn_view(record: &cardcore_authz::TxnRecord) -> TxnView {
    let amount = match record.state {
        TransactionState::Completed => record.cleared.unwrap_or(record.authorised),
        TransactionState::InProgress => record.authorised,
        _ => record.requested,
    };
    TxnView {
        state: record.state,
        decline_reason: record.decline.map(|d| d.reason.code().to_owned()),
        detailed_decline_reason: record
            .decline
            .and_then(|d| d.detailed)
            .map(|d| d.code().to_owned()),
        amount,
    }
}
