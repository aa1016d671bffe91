//! The replay runner: walks a scenario's steps against a [`Target`], keeps the scenario's
//! names mapped to the engine's ids, and counts expectations.
//!
//! What counts as one expectation: each traffic step that carries `expect`, each setup step
//! that carries `expect_error`, each `expect_*` step, and each line that cannot run at all.
//! A step passes when everything in it holds; a failed step lists every unmet key but counts
//! once. A step with nothing to check that runs fine is not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cardcore_core::{
    CardType, Currency, Expiry, Money, Pan, ProfileId, ProfileStatus, RuleId, TimeZone, Timestamp,
    TxnId,
};
use chrono::Datelike;
use rust_decimal::Decimal;

use super::expect::{self, BalanceAmounts};
use super::parse::Scenario;
use super::report::{Problem, Report, StepOutcome};
use super::step::*;
use super::target::*;

/// Every file starts from an empty engine at 2026-01-15T10:00:00Z.
pub const SCENARIO_START: Timestamp = Timestamp(1_768_471_200_000);
/// A card issued without `expiry` expires this many years after the scenario clock's month.
pub const DEFAULT_CARD_VALIDITY_YEARS: u16 = 3;

/// Replays scenario files against one target.
#[allow(missing_debug_implementations)] // holds a `dyn Target`, which need not be `Debug`
pub struct Runner<'t> {
    pub(super) target: &'t mut dyn Target,
    pub(super) state: ReplayState,
}

/// What one file's replay has learnt so far. A new file starts from nothing.
#[derive(Debug)]
pub(super) struct ReplayState {
    pub(super) profiles: BTreeMap<Name, ProfileId>,
    pub(super) cards: BTreeMap<Name, CardInfo>,
    pub(super) txns: BTreeMap<Name, TxnRecord>,
    pub(super) rules: BTreeMap<Name, RuleId>,
    /// Rates the scenario gave explicitly; their inverses are never overwritten.
    pub(super) fx_given: BTreeSet<(Currency, Currency)>,
    /// The scenario clock, moved only by `clock` steps that the target accepted.
    pub(super) clock: Timestamp,
    /// The last STAN assigned.
    pub(super) stan: u32,
}

/// A card the scenario issued.
#[derive(Debug, Clone, Copy)]
pub(super) struct CardInfo {
    pub(super) card: CardRef,
    pub(super) pan: Pan,
    pub(super) expiry: Expiry,
}

/// A message a scenario named with `txn`, kept to build its follow-ups and duplicates.
#[derive(Debug, Clone)]
pub(super) struct TxnRecord {
    pub(super) card: CardRef,
    pub(super) message: CardMessage,
    pub(super) approval_code: Option<String>,
    /// The engine's transaction, when one was recorded.
    pub(super) txn_id: Option<TxnId>,
    /// The authorisation follow-ups refer to: the record itself, or for an incremental
    /// authorisation the authorisation it adds to.
    pub(super) root: Name,
}

/// Why a step did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StepError {
    /// The scenario asks for what cannot be expressed (an unknown name, an amount with more
    /// decimals than its currency). Never satisfies `expect_error`.
    Scenario(String),
    /// The target's own error.
    Target(TargetError),
}

impl From<TargetError> for StepError {
    fn from(e: TargetError) -> StepError {
        StepError::Target(e)
    }
}

impl StepError {
    fn message(&self) -> String {
        match self {
            StepError::Scenario(m) => m.clone(),
            StepError::Target(e) => e.to_string(),
        }
    }

    pub(super) fn into_outcome(self) -> StepOutcome {
        StepOutcome::Failed(vec![Problem::Error(self.message())])
    }
}

pub(super) type StepResult<T> = Result<T, StepError>;

/// Replays every file, each from an empty engine, and adds up the results. A file that
/// cannot be read is one failure.
pub fn replay_files<P: AsRef<Path>>(target: &mut dyn Target, paths: &[P]) -> Report {
    let mut runner = Runner::new(target);
    let mut report = Report::default();
    for path in paths {
        let path = path.as_ref();
        match Scenario::load(path) {
            Ok(scenario) => report.merge(runner.run(&scenario)),
            Err(e) => {
                let problem = Problem::Error(format!("cannot read the file: {e}"));
                let name = path.display().to_string();
                report.record(&name, None, StepOutcome::Failed(vec![problem]));
            }
        }
    }
    report
}

impl<'t> Runner<'t> {
    pub fn new(target: &'t mut dyn Target) -> Runner<'t> {
        Runner {
            target,
            state: ReplayState::new(),
        }
    }

    /// Replays one file from an empty engine at [`SCENARIO_START`]; a line that fails goes
    /// into the report and replay goes on with the next one.
    pub fn run(&mut self, scenario: &Scenario) -> Report {
        let mut report = Report::default();
        self.state = ReplayState::new();
        if let Err(e) = self.target.reset(SCENARIO_START) {
            let problem = Problem::Error(format!("cannot start the file: {e}"));
            report.record(&scenario.name, None, StepOutcome::Failed(vec![problem]));
            return report;
        }
        for line in &scenario.lines {
            match line {
                Ok(step) => {
                    let outcome = self.step(&step.kind);
                    report.record(&scenario.name, Some(step.line), outcome);
                }
                Err(e) => {
                    let outcome = StepOutcome::Failed(vec![Problem::Error(e.detail())]);
                    report.record(&scenario.name, Some(e.line), outcome);
                }
            }
        }
        report
    }

    fn step(&mut self, kind: &StepKind) -> StepOutcome {
        match kind {
            StepKind::Setup { op, expect_error } => {
                let result = self.setup(op);
                setup_outcome(result, *expect_error)
            }
            StepKind::Traffic { op, expect } => self.traffic(op, expect.as_ref()),
            StepKind::Expect(op) => match self.expectation(op) {
                Ok(problems) if problems.is_empty() => StepOutcome::Passed,
                Ok(problems) => StepOutcome::Failed(problems),
                Err(e) => e.into_outcome(),
            },
        }
    }

    fn setup(&mut self, op: &SetupOp) -> StepResult<()> {
        match op {
            SetupOp::Clock(change) => self.clock(*change),
            SetupOp::Profile(p) => self.profile(p),
            SetupOp::Balance {
                profile,
                currency,
                amount,
            } => {
                let profile = self.profile_id(profile)?;
                let amount = money(*amount, *currency)?;
                Ok(self.target.top_up(profile, amount)?)
            }
            SetupOp::Fx(fx) => self.fx(fx),
            SetupOp::Card(card) => self.card(card),
            SetupOp::CardStatus { card, status } => {
                let card = self.card_info(card)?.card;
                Ok(self.target.set_card_status(card, *status)?)
            }
            SetupOp::Permissions { card, set } => {
                let card = self.card_info(card)?.card;
                Ok(self.target.set_permissions(card, set)?)
            }
            SetupOp::CardLimits(limits) => self.card_limits(limits),
            SetupOp::ProfileLimits(limits) => self.profile_limits(limits),
            SetupOp::Rule(rule) => self.rule(rule),
            SetupOp::ApplyRule { rule } => Ok(self.target.apply_rule(self.rule_id(rule)?)?),
            SetupOp::UnapplyRule { rule } => Ok(self.target.unapply_rule(self.rule_id(rule)?)?),
            SetupOp::DeleteRule { rule } => Ok(self.target.delete_rule(self.rule_id(rule)?)?),
            SetupOp::ResetPinCount { card } => {
                let card = self.card_info(card)?.card;
                Ok(self.target.reset_pin_count(card)?)
            }
        }
    }

    fn clock(&mut self, change: ClockChange) -> StepResult<()> {
        match change {
            ClockChange::Set(t) => {
                self.target.set_clock(t)?;
                self.state.clock = t;
            }
            ClockChange::AdvanceMs(ms) => {
                self.target.advance_clock(ms)?;
                self.state.clock = self.state.clock.plus_ms(ms);
            }
        }
        Ok(())
    }

    /// Creates the profile, or updates only what the step gives.
    fn profile(&mut self, p: &ProfileStep) -> StepResult<()> {
        if let Some(&id) = self.state.profiles.get(&p.profile) {
            let update = ProfileUpdate {
                timezone: p.timezone,
                status: p.status,
            };
            return Ok(self.target.update_profile(id, &update)?);
        }
        let setup = ProfileSetup {
            timezone: p.timezone.unwrap_or(TimeZone::UTC),
            status: p.status.unwrap_or(ProfileStatus::Active),
        };
        let id = self.target.create_profile(&setup)?;
        self.state.profiles.insert(p.profile.clone(), id);
        Ok(())
    }

    /// Sets the rate, and its inverse unless the scenario gave that one itself.
    fn fx(&mut self, fx: &FxStep) -> StepResult<()> {
        let rate = FxRate {
            from: fx.from,
            to: fx.to,
            rate: fx.rate,
            fee_percent: fx.fee_percent,
        };
        self.target.set_fx_rate(&rate)?;
        self.state.fx_given.insert((fx.from, fx.to));
        if self.state.fx_given.contains(&(fx.to, fx.from)) {
            return Ok(());
        }
        let inverse = Decimal::ONE
            .checked_div(fx.rate)
            .ok_or_else(|| StepError::Scenario(format!("rate {} has no inverse", fx.rate)))?;
        let inverse = FxRate {
            from: fx.to,
            to: fx.from,
            rate: inverse.normalize(),
            fee_percent: fx.fee_percent,
        };
        Ok(self.target.set_fx_rate(&inverse)?)
    }

    fn card(&mut self, c: &CardStep) -> StepResult<()> {
        if self.state.cards.contains_key(&c.card) {
            return Err(StepError::Scenario(format!(
                "card {} is already issued",
                c.card
            )));
        }
        let profile = self.profile_id(&c.profile)?;
        let expiry = c.expiry.unwrap_or_else(|| default_expiry(self.state.clock));
        let setup = CardSetup {
            profile,
            pan: c.pan,
            pin: c.pin.clone(),
            cvv2: c.cvv2.clone(),
            expiry,
            status: c.status,
            currency: c.currency,
            card_type: c.card_type.unwrap_or(CardType::Physical),
            smart_conversion: c.smart_conversion,
            locked: c.locked.clone(),
        };
        let token = self.target.issue_card(&setup)?;
        let card = CardRef { profile, token };
        self.state.cards.insert(
            c.card.clone(),
            CardInfo {
                card,
                pan: c.pan,
                expiry,
            },
        );
        Ok(())
    }

    fn card_limits(&mut self, limits: &CardLimitsStep) -> StepResult<()> {
        match limits {
            CardLimitsStep::Set {
                card,
                currency,
                values,
            } => {
                let card = self.card_info(card)?.card;
                let values = values
                    .iter()
                    .map(|&(g, amount)| Ok((g, money(amount, *currency)?)))
                    .collect::<StepResult<Vec<_>>>()?;
                Ok(self.target.set_card_limits(card, &values)?)
            }
            CardLimitsStep::Delete { card, which } => {
                let card = self.card_info(card)?.card;
                Ok(self.target.delete_card_limits(card, which)?)
            }
        }
    }

    fn profile_limits(&mut self, l: &ProfileLimitsStep) -> StepResult<()> {
        let profile = self.profile_id(&l.profile)?;
        let optional = |amount: Option<Decimal>| amount.map(|a| money(a, l.currency)).transpose();
        let limit = ProfileLimitSetup {
            limit_type: l.limit_type,
            daily: money(l.daily, l.currency)?,
            monthly: money(l.monthly, l.currency)?,
            max_daily: optional(l.max_daily)?,
            max_monthly: optional(l.max_monthly)?,
        };
        Ok(self.target.set_profile_limit(profile, &limit)?)
    }

    fn rule(&mut self, r: &RuleStep) -> StepResult<()> {
        if self.state.rules.contains_key(&r.rule) {
            return Err(StepError::Scenario(format!(
                "rule {} is already created",
                r.rule
            )));
        }
        let setup = RuleSetup {
            rule_type: r.rule_type,
            operation: r.operation,
            values: r.values.clone(),
            description: r.description.clone().unwrap_or_default(),
        };
        let id = self.target.create_rule(&setup)?;
        self.state.rules.insert(r.rule.clone(), id);
        Ok(())
    }

    /// Runs an `expect_*` step and returns its unmet keys.
    fn expectation(&mut self, op: &ExpectOp) -> StepResult<Vec<Problem>> {
        match op {
            ExpectOp::Balance(b) => {
                let profile = self.profile_id(&b.profile)?;
                let exact =
                    |amount: Option<Decimal>| amount.map(|a| money(a, b.currency)).transpose();
                let amounts = BalanceAmounts {
                    currency: b.currency,
                    available: exact(b.available)?,
                    reserved: exact(b.reserved)?,
                    cash: exact(b.cash)?,
                };
                let saw = self.target.balance(profile, b.currency)?;
                Ok(expect::check_balance(&amounts, saw))
            }
            ExpectOp::Txn(t) => {
                let record = self.txn_record(&t.txn)?;
                let view = match record.txn_id {
                    Some(id) => Some(self.target.transaction(TxnRef {
                        id,
                        card: Some(record.card),
                    })?),
                    None => None,
                };
                Ok(expect::check_txn(t, view.as_ref()))
            }
            ExpectOp::LimitUsage(u) => {
                let scope = match &u.scope {
                    UsageScope::Card(card) => LimitScope::Card(self.card_info(card)?.card),
                    UsageScope::Profile(p, t) => LimitScope::Profile(self.profile_id(p)?, *t),
                };
                let saw = self.target.limit_usage(scope, u.window)?;
                let window = u.window.as_str().to_ascii_lowercase();
                Ok(expect::check_usage(u.usage, &window, saw))
            }
            ExpectOp::PinTries { card, count } => {
                let card = self.card_info(card)?.card;
                Ok(expect::check_pin_tries(
                    *count,
                    self.target.pin_tries(card)?,
                ))
            }
            ExpectOp::Invariants => Ok(expect::check_invariants(
                self.target.invariant_violations()?,
            )),
        }
    }

    pub(super) fn profile_id(&self, name: &Name) -> StepResult<ProfileId> {
        self.state
            .profiles
            .get(name)
            .copied()
            .ok_or_else(|| unknown("profile", name))
    }

    pub(super) fn card_info(&self, name: &Name) -> StepResult<CardInfo> {
        self.state
            .cards
            .get(name)
            .copied()
            .ok_or_else(|| unknown("card", name))
    }

    pub(super) fn txn_record(&self, name: &Name) -> StepResult<TxnRecord> {
        self.state
            .txns
            .get(name)
            .cloned()
            .ok_or_else(|| unknown("txn", name))
    }

    fn rule_id(&self, name: &Name) -> StepResult<RuleId> {
        self.state
            .rules
            .get(name)
            .copied()
            .ok_or_else(|| unknown("rule", name))
    }
}

impl ReplayState {
    fn new() -> ReplayState {
        ReplayState {
            profiles: BTreeMap::new(),
            cards: BTreeMap::new(),
            txns: BTreeMap::new(),
            rules: BTreeMap::new(),
            fx_given: BTreeSet::new(),
            clock: SCENARIO_START,
            stan: 0,
        }
    }
}

/// A setup step's outcome: `expect_error: true` is met only by the engine refusing it.
fn setup_outcome(result: StepResult<()>, expect_error: Option<bool>) -> StepOutcome {
    match (result, expect_error) {
        (Ok(()), None) => StepOutcome::Unchecked,
        (Ok(()), Some(false)) => StepOutcome::Passed,
        (Ok(()), Some(true)) => StepOutcome::Failed(vec![Problem::mismatch("an error", "success")]),
        (Err(StepError::Target(TargetError::Refused(_))), Some(true)) => StepOutcome::Passed,
        (Err(e @ StepError::Target(TargetError::Refused(_))), Some(false)) => {
            StepOutcome::Failed(vec![Problem::mismatch("success", e.message())])
        }
        (Err(e), _) => e.into_outcome(),
    }
}

fn unknown(what: &str, name: &Name) -> StepError {
    StepError::Scenario(format!("unknown {what} {name}: no earlier step creates it"))
}

/// An amount made exact in its currency, or the reason it cannot be.
pub(super) fn money(amount: Decimal, currency: Currency) -> StepResult<Money> {
    Money::from_decimal(amount, currency).map_err(|e| StepError::Scenario(e.to_string()))
}

/// The expiry of a card issued without one: the clock's month, a few years on.
fn default_expiry(clock: Timestamp) -> Expiry {
    let date = clock.to_datetime();
    let year = u16::try_from(date.year())
        .unwrap_or(2000)
        .saturating_add(DEFAULT_CARD_VALIDITY_YEARS);
    let month = date.month() as u8;
    // `Expiry` covers 2000-2099; a clock set outside that gets the nearest valid year.
    Expiry::new(year.clamp(2000, 2099), month).unwrap_or(Expiry {
        year: 2099,
        month: 12,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_is_the_documented_instant() {
        assert_eq!(
            Timestamp::parse_rfc3339("2026-01-15T10:00:00Z"),
            Some(SCENARIO_START)
        );
        assert_eq!(
            default_expiry(SCENARIO_START),
            Expiry::parse("2029-01").unwrap()
        );
        let far = Timestamp::parse_rfc3339("2099-06-01T00:00:00Z").unwrap();
        assert_eq!(default_expiry(far), Expiry::parse("2099-06").unwrap());
    }

    #[test]
    fn expect_error_is_met_only_by_a_refusal() {
        let refused = || Err(StepError::Target(TargetError::Refused("no".into())));
        let failed = || Err(StepError::Target(TargetError::Failed("down".into())));
        let scenario = || Err(StepError::Scenario("unknown card".into()));
        assert_eq!(setup_outcome(refused(), Some(true)), StepOutcome::Passed);
        assert_eq!(setup_outcome(Ok(()), None), StepOutcome::Unchecked);
        assert_eq!(setup_outcome(Ok(()), Some(false)), StepOutcome::Passed);
        for (result, expect) in [
            (Ok(()), Some(true)),
            (refused(), None),
            (refused(), Some(false)),
            (failed(), Some(true)),
            (scenario(), Some(true)),
        ] {
            let outcome = setup_outcome(result.clone(), expect);
            assert!(
                matches!(outcome, StepOutcome::Failed(_)),
                "{result:?} {expect:?}"
            );
        }
    }
}
