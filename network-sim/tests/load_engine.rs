//! A load run against the real engine, embedded: the population is set up through the
//! in-process target, the traffic goes through `wire::process_message` (parse, decide,
//! respond) on the in-process driver's lanes, and at the end every balance the simulator
//! expects must be the engine's, to the minor unit, with the engine's invariants holding.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cardcore_authz::wire::{process_message, Reply};
use cardcore_core::{
    CardStatus, CardToken, Channel, Currency, Granularity, Money, ProfileId, RuleId, Timestamp,
};
use cardcore_sim::load::{
    run_load, ClockJumps, Handler, InProcessDriver, LoadConfig, LoadReport, Pacing, ProgressMode,
};
use cardcore_sim::scenario::*;
use cardcore_sim::targets::{InProcessTarget, SimKeys};

/// The in-process target shared between the runner (setup, clock, balances) and the
/// driver's lanes (traffic).
#[derive(Clone)]
struct Shared(Arc<Mutex<InProcessTarget>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, InProcessTarget> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handler(&self) -> Handler {
        let shared = self.clone();
        Arc::new(move |request: &[u8]| {
            let target = shared.lock();
            match process_message(target.engine().ok()?, request) {
                Reply::Message(answer) => Some(answer),
                Reply::Close => None,
            }
        })
    }
}

impl Target for Shared {
    fn reset(&mut self, now: Timestamp) -> Result<(), TargetError> {
        self.lock().reset(now)
    }
    fn set_clock(&mut self, now: Timestamp) -> Result<(), TargetError> {
        self.lock().set_clock(now)
    }
    fn advance_clock(&mut self, by_ms: i64) -> Result<(), TargetError> {
        self.lock().advance_clock(by_ms)
    }
    fn create_profile(&mut self, s: &ProfileSetup) -> Result<ProfileId, TargetError> {
        self.lock().create_profile(s)
    }
    fn update_profile(&mut self, p: ProfileId, u: &ProfileUpdate) -> Result<(), TargetError> {
        self.lock().update_profile(p, u)
    }
    fn top_up(&mut self, p: ProfileId, amount: Money) -> Result<(), TargetError> {
        self.lock().top_up(p, amount)
    }
    fn set_fx_rate(&mut self, rate: &FxRate) -> Result<(), TargetError> {
        self.lock().set_fx_rate(rate)
    }
    fn issue_card(&mut self, s: &CardSetup) -> Result<CardToken, TargetError> {
        self.lock().issue_card(s)
    }
    fn set_card_status(&mut self, c: CardRef, s: CardStatus) -> Result<(), TargetError> {
        self.lock().set_card_status(c, s)
    }
    fn set_permissions(&mut self, c: CardRef, ch: &[(Channel, bool)]) -> Result<(), TargetError> {
        self.lock().set_permissions(c, ch)
    }
    fn set_card_limits(
        &mut self,
        c: CardRef,
        v: &[(Granularity, Money)],
    ) -> Result<(), TargetError> {
        self.lock().set_card_limits(c, v)
    }
    fn delete_card_limits(&mut self, c: CardRef, w: &[Granularity]) -> Result<(), TargetError> {
        self.lock().delete_card_limits(c, w)
    }
    fn set_profile_limit(
        &mut self,
        p: ProfileId,
        l: &ProfileLimitSetup,
    ) -> Result<(), TargetError> {
        self.lock().set_profile_limit(p, l)
    }
    fn reset_pin_count(&mut self, c: CardRef) -> Result<(), TargetError> {
        self.lock().reset_pin_count(c)
    }
    fn create_rule(&mut self, s: &RuleSetup) -> Result<RuleId, TargetError> {
        self.lock().create_rule(s)
    }
    fn apply_rule(&mut self, r: RuleId) -> Result<(), TargetError> {
        self.lock().apply_rule(r)
    }
    fn unapply_rule(&mut self, r: RuleId) -> Result<(), TargetError> {
        self.lock().unapply_rule(r)
    }
    fn delete_rule(&mut self, r: RuleId) -> Result<(), TargetError> {
        self.lock().delete_rule(r)
    }
    fn send(&mut self, m: &TrafficMessage) -> Result<TrafficOutcome, TargetError> {
        self.lock().send(m)
    }
    fn balance(&mut self, p: ProfileId, c: Currency) -> Result<Option<BalanceView>, TargetError> {
        self.lock().balance(p, c)
    }
    fn transaction(&mut self, t: TxnRef) -> Result<TxnView, TargetError> {
        self.lock().transaction(t)
    }
    fn limit_usage(&mut self, s: LimitScope, w: Granularity) -> Result<Money, TargetError> {
        self.lock().limit_usage(s, w)
    }
    fn pin_tries(&mut self, c: CardRef) -> Result<u32, TargetError> {
        self.lock().pin_tries(c)
    }
    fn invariant_violations(&mut self) -> Result<Vec<String>, TargetError> {
        self.lock().invariant_violations()
    }
}

fn run(seed: u64, messages: u64, pacing: Pacing) -> LoadReport {
    let keys = SimKeys::from_seed(b"load test");
    let mut target = Shared(Arc::new(Mutex::new(
        InProcessTarget::new(keys.clone()).in_memory(),
    )));
    let mut driver = InProcessDriver::new(3, target.handler()).unwrap();
    let mut config = LoadConfig::new(600, seed, keys.zone_pin_key());
    config.messages = Some(messages);
    config.duration = Some(Duration::from_secs(120));
    config.pacing = pacing;
    config.progress = ProgressMode::Never;
    config.traffic.clock_jumps = Some(ClockJumps {
        every_messages: 2_000,
        by_ms: 8 * Timestamp::MS_PER_DAY,
    });
    run_load(&config, &mut target, &mut driver).unwrap()
}

#[test]
fn the_expected_ledger_matches_the_engine_to_the_minor_unit() {
    let r = run(42, 9_000, Pacing::ClosedLoop { concurrency: 24 });
    assert!(r.is_success(), "{r}");
    assert_eq!(r.reconciliation.difference_minor, 0);
    assert_eq!(r.ledger.applied.unexplained, 0, "{r}");
    assert_eq!(
        (r.answered, r.unanswered, r.unmatched_answers),
        (9_000, 0, 0),
        "{r}"
    );
    // The traffic exercised what it is for.
    let s = r.ledger.applied;
    assert!(
        s.holds > 1_000 && s.clearings > 500 && s.reversals > 50,
        "{r}"
    );
    assert!(
        s.expired > 0 && s.increments > 0 && s.posted > 0 && s.credited > 0,
        "{r}"
    );
    assert_eq!(r.ledger.clock_jumps, 4);
    for code in ["00", "14", "30", "51"] {
        assert!(r.by_response_code.contains_key(code), "no {code}: {r}");
    }
    for reason in [
        "INSUFFICIENT_FUNDS",
        "INCORRECT_PIN",
        "TRANSACTION_TYPE_NOT_SUPPORTED",
    ] {
        assert!(r.by_decline_reason.contains_key(reason), "no {reason}: {r}");
    }
}

#[test]
fn open_loop_against_the_engine_reconciles_too() {
    let r = run(7, 4_000, Pacing::OpenLoop { rate_per_s: 4_000 });
    assert!(r.is_success(), "{r}");
    assert_eq!(r.ledger.applied.unexplained, 0, "{r}");
    assert_eq!(r.answered, 4_000);
}

#[test]
fn other_seeds_reconcile_too() {
    for seed in [1, 2, 3] {
        let r = run(seed, 5_000, Pacing::ClosedLoop { concurrency: 8 });
        assert!(r.is_success(), "seed {seed}: {r}");
        assert_eq!(r.ledger.applied.unexplained, 0, "seed {seed}: {r}");
    }
}
