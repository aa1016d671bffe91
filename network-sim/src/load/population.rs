//! The synthetic population a load run works on: profiles with balances in one to three
//! currencies, cards with varied statuses, expiries, permissions and limits, profile limits,
//! a few spend-control rules and the FX rates between the currencies used.
//!
//! A [`Population`] is a pure function of its seed and size. It is set up through the
//! scenario [`Target`] trait as a list of [`SetupOp`]s, so the embedded engine and a
//! running server's management API receive exactly the same operations.
//!
//! Through a server's API, one call at a time, a million cards (about 2.5 million calls)
//! took over ten minutes. A target that can open more clients ([`Target::fork`]) is set
//! up with up to `concurrency` calls in flight, in three phases: the engine-wide operations
//! (reset, rates, rules) one by one; then the profiles, each one's creation, top-ups and
//! limits in order on one client; then the cards, each one's issue, permissions and limits
//! in order. A phase starts when the one before has finished, so a card's profile exists
//! and is funded before the card is issued. Ids are the engine's: with calls side by side,
//! which profile gets which id may change from run to run.
//!
//! Money stays exact: every balance is a whole number of minor units, every card spends in
//! one of its profile's balance currencies, and the cards of a profile that holds more than
//! one balance have smart conversion switched off. An approval then moves exactly one
//! balance by exactly the message amount, which is what lets the simulator predict every
//! balance to the minor unit (see `docs/load.md`, "Why no conversion").

use cardcore_core::{
    CardStatus, CardType, Channel, Currency, Expiry, Granularity, LimitType, Money, Pan, ProfileId,
    ProfileStatus, RuleId, RuleOperation, RuleType, TimeZone, Timestamp,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::Datelike;
use rust_decimal::Decimal;

use super::zipf::Dice;
use crate::scenario::{
    CardRef, CardSetup, ClearPin, Cvv2, FxRate, ProfileLimitSetup, ProfileSetup, RuleSetup, Target,
    TargetError,
};

/// The most cards a population may hold.
pub const CARDS_MAX: usize = 1_000_000;
/// The issuer BIN of every generated card (a Visa test range).
pub const TEST_BIN: &str = "400000";
/// A BIN no generated card uses: PANs from it are valid but unknown to the engine.
pub const UNKNOWN_BIN: &str = "400099";
/// A multiplier coprime to 10^9: account number `i * ACCOUNT_STRIDE mod 10^9` is unique
/// for every card index below 10^9.
const ACCOUNT_STRIDE: u64 = 387_420_489; // 3^18
const ACCOUNT_MODULUS: u64 = 1_000_000_000;
const _: () = assert!(CARDS_MAX as u64 <= ACCOUNT_MODULUS);

/// Setup calls in flight at once on a target that can open more clients, unless told
/// otherwise: enough to keep a server's partitions and journal busy over loopback.
pub const SETUP_CONCURRENCY_DEFAULT: usize = 32;
/// The most setup calls in flight that a run may ask for (each is a client connection of
/// its own; a server serves 1024 HTTP connections at most).
pub const SETUP_CONCURRENCY_MAX: usize = 256;
/// How often progress is reported while calls run side by side.
const SETUP_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// The currencies of the population and what one euro is worth in each, in minor units.
/// Amounts are drawn in euro cents and scaled by this table, so a "50 euro" purchase is
/// about 50 EUR, 43 GBP, 8000 JPY or 16.500 KWD (three decimals).
pub const CURRENCIES: [(Currency, i64); 7] = [
    (Currency::EUR, 100),
    (Currency::GBP, 85),
    (Currency::USD, 108),
    (Currency::JPY, 160),
    (Currency::CHF, 95),
    (Currency::SGD, 145),
    (Currency::KWD, 330),
];
/// How often each currency is a profile's home currency (same order as [`CURRENCIES`]).
const HOME_CURRENCY_WEIGHTS: [u32; 7] = [35, 25, 20, 5, 5, 5, 5];
/// Fee on every conversion the engine makes with the population's rates.
const FX_FEE_PERCENT: &str = "0.5";
/// Decimal places of the generated FX rates.
const FX_RATE_SCALE: u32 = 6;

const TIME_ZONES: [&str; 6] = [
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Asia/Singapore",
    "Australia/Sydney",
];

/// `amount_eur_cents` worth of `currency`, in its minor units (rounded down).
pub fn scaled(currency: Currency, amount_eur_cents: i64) -> Money {
    let per_eur = CURRENCIES
        .iter()
        .find(|(c, _)| *c == currency)
        .map_or(100, |(_, m)| *m);
    Money::new(amount_eur_cents.saturating_mul(per_eur) / 100, currency)
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopulationConfig {
    pub cards: usize,
    pub seed: u64,
    /// The engine clock when the run starts: expiries are drawn around it.
    pub start: Timestamp,
}

/// Everything a load run sets up before sending traffic.
#[derive(Debug, Clone)]
pub struct Population {
    pub config: PopulationConfig,
    pub profiles: Vec<ProfilePlan>,
    pub cards: Vec<CardPlan>,
    pub rules: Vec<RulePlan>,
    pub fx_rates: Vec<FxRate>,
}

/// One profile: its status, time zone, opening balances and limits.
#[derive(Debug, Clone)]
pub struct ProfilePlan {
    pub setup: ProfileSetup,
    /// The opening top-up of each balance, one per currency; the first is the home currency.
    pub balances: Vec<Money>,
    pub limits: Vec<ProfileLimitSetup>,
}

impl ProfilePlan {
    pub fn currencies(&self) -> impl Iterator<Item = Currency> + '_ {
        self.balances.iter().map(|m| m.currency)
    }
}

/// One card as the issuer holds it. The PIN and CVV2 are test data, never shown.
#[derive(Debug, Clone)]
pub struct CardPlan {
    pub profile: usize,
    pub pan: Pan,
    pub pin: ClearPin,
    pub cvv2: Cvv2,
    pub expiry: Expiry,
    pub status: CardStatus,
    pub card_type: CardType,
    pub currency: Currency,
    pub smart_conversion: bool,
    /// Disabled for good at issuance.
    pub locked: Vec<Channel>,
    /// Disabled through the permissions API after issuance.
    pub disabled: Vec<Channel>,
    /// Card limits in the card's currency; empty for none.
    pub limits: Vec<(Granularity, Money)>,
}

/// A spend-control rule and whether it is applied.
#[derive(Debug, Clone)]
pub struct RulePlan {
    pub setup: RuleSetup,
    pub applied: bool,
}

/// One step of setting a population up, in the order [`Population::setup_ops`] lists them.
/// Indices refer to the population's own lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOp {
    /// Start from an empty engine whose clock reads `now`.
    Reset {
        now: Timestamp,
    },
    Fx(FxRate),
    Rule {
        rule: usize,
    },
    ApplyRule {
        rule: usize,
    },
    Profile {
        profile: usize,
    },
    TopUp {
        profile: usize,
        amount: Money,
    },
    ProfileLimit {
        profile: usize,
        limit: ProfileLimitSetup,
    },
    Card {
        card: usize,
    },
    DisablePermissions {
        card: usize,
    },
    CardLimits {
        card: usize,
    },
}

/// The engine's ids for what was set up, indexed like the population's lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployed {
    pub profiles: Vec<ProfileId>,
    pub cards: Vec<CardRef>,
    pub rules: Vec<RuleId>,
}

/// A setup operation the target did not carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting up the population failed at operation {index} ({op}): {error}")]
pub struct SetupError {
    pub index: usize,
    /// What the operation was, without any card data.
    pub op: String,
    pub error: TargetError,
}

/// Why a population could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PopulationError {
    #[error("--cards must be 1 to {CARDS_MAX}, got {0}")]
    Cards(usize),
    #[error("the start time must lie in {START_YEARS:?}, got {0}")]
    Start(Timestamp),
}

/// Years a run may start in: card expiries are drawn up to four years either side, and
/// an expiry must lie within 2000-2099.
pub const START_YEARS: std::ops::RangeInclusive<i32> = 2005..=2090;

impl Population {
    /// About `cards / 2` profiles share `cards` cards; the same config always gives the same
    /// population.
    pub fn generate(config: PopulationConfig) -> Result<Population, PopulationError> {
        if config.cards == 0 || config.cards > CARDS_MAX {
            return Err(PopulationError::Cards(config.cards));
        }
        if !START_YEARS.contains(&config.start.to_datetime().year()) {
            return Err(PopulationError::Start(config.start));
        }
        let mut dice = Dice::derived(config.seed, 1);
        let profile_count = (config.cards / 2).max(1);
        let profiles: Vec<ProfilePlan> = (0..profile_count)
            .map(|_| generate_profile(&mut dice))
            .collect();
        let cards = (0..config.cards)
            .map(|i| {
                let profile = if i < profile_count {
                    i
                } else {
                    dice.index(profile_count)
                };
                generate_card(&mut dice, &config, i, profile, &profiles[profile])
            })
            .collect();
        Ok(Population {
            config,
            profiles,
            cards,
            rules: standard_rules(),
            fx_rates: fx_rates(),
        })
    }

    /// Whether a message on this card can pass the card and profile checks at `now`:
    /// active, not expired, its profile active. The traffic generator sends most messages
    /// on such cards and a measured share on the others.
    pub fn card_is_usable(&self, card: usize, now: Timestamp) -> bool {
        let plan = &self.cards[card];
        let today = now.to_datetime().date_naive();
        plan.status == CardStatus::Active
            && !plan.expiry.has_passed(today)
            && self.profiles[plan.profile].setup.status == ProfileStatus::Active
    }

    /// Every operation that sets the population up, in order.
    pub fn setup_ops(&self) -> Vec<SetupOp> {
        let mut ops = vec![SetupOp::Reset {
            now: self.config.start,
        }];
        ops.extend(self.fx_rates.iter().cloned().map(SetupOp::Fx));
        for (rule, plan) in self.rules.iter().enumerate() {
            ops.push(SetupOp::Rule { rule });
            if plan.applied {
                ops.push(SetupOp::ApplyRule { rule });
            }
        }
        for (profile, plan) in self.profiles.iter().enumerate() {
            ops.push(SetupOp::Profile { profile });
            ops.extend(
                plan.balances
                    .iter()
                    .map(|&amount| SetupOp::TopUp { profile, amount }),
            );
            ops.extend(plan.limits.iter().map(|limit| SetupOp::ProfileLimit {
                profile,
                limit: limit.clone(),
            }));
        }
        for (card, plan) in self.cards.iter().enumerate() {
            ops.push(SetupOp::Card { card });
            if !plan.disabled.is_empty() {
                ops.push(SetupOp::DisablePermissions { card });
            }
            if !plan.limits.is_empty() {
                ops.push(SetupOp::CardLimits { card });
            }
        }
        ops
    }

    /// Carries out [`Population::setup_ops`] on `target`, stopping at the first refusal,
    /// with up to `concurrency` calls in flight when the target can open more clients (see
    /// the module documentation). `progress` is called with (done, total).
    pub fn set_up(
        &self,
        target: &mut dyn Target,
        concurrency: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Deployed, SetupError> {
        let ops = self.setup_ops();
        let placed = Mutex::new(Placed::new(self));
        let units = units_of(&ops);
        let global_end = units.first().map_or(ops.len(), |u| u.start);
        for (index, op) in ops[..global_end].iter().enumerate() {
            self.apply(op, target, &placed)
                .map_err(|error| setup_error(index, op, error))?;
            progress(index + 1, ops.len());
        }
        let mut clients = clients_of(target, concurrency);
        let mut done = global_end;
        for phase in [Phase::Profiles, Phase::Cards] {
            let phase_units: Vec<Unit> =
                units.iter().copied().filter(|u| u.phase == phase).collect();
            done = if clients.is_empty() {
                self.run_in_turn(&ops, &phase_units, target, &placed, done, progress)?
            } else {
                let run = Concurrent {
                    ops: &ops,
                    units: &phase_units,
                    placed: &placed,
                    done_before: done,
                };
                self.run_side_by_side(&run, &mut clients, progress)?
            };
        }
        let placed = placed.into_inner().unwrap_or_else(PoisonError::into_inner);
        Ok(placed.deployed())
    }

    /// One unit after the other on the one target.
    fn run_in_turn(
        &self,
        ops: &[SetupOp],
        units: &[Unit],
        target: &mut dyn Target,
        placed: &Mutex<Placed>,
        mut done: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<usize, SetupError> {
        for unit in units {
            for (index, op) in (unit.start..unit.end).zip(&ops[unit.start..unit.end]) {
                self.apply(op, target, placed)
                    .map_err(|error| setup_error(index, op, error))?;
                done += 1;
                progress(done, ops.len());
            }
        }
        Ok(done)
    }

    /// The units of one phase on every client, each client taking the next unit when it
    /// is free; the first refusal stops the others after their current call.
    fn run_side_by_side(
        &self,
        run: &Concurrent<'_>,
        clients: &mut [Box<dyn Target + Send>],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<usize, SetupError> {
        let client_count = clients.len();
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(run.done_before);
        let finished = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let failure: Mutex<Option<SetupError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for client in clients.iter_mut() {
                let (next, done, finished) = (&next, &done, &finished);
                let (stop, failure) = (&stop, &failure);
                scope.spawn(move || {
                    if let Err(e) = self.client_loop(run, client.as_mut(), next, done, stop) {
                        stop.store(true, Ordering::Relaxed);
                        keep_first(failure, e);
                    }
                    finished.fetch_add(1, Ordering::Release);
                });
            }
            while finished.load(Ordering::Acquire) < client_count {
                progress(done.load(Ordering::Relaxed), run.ops.len());
                std::thread::sleep(SETUP_PROGRESS_INTERVAL);
            }
        });
        let done = done.into_inner();
        progress(done, run.ops.len());
        match failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// What one client does: take units until none is left or another client failed.
    fn client_loop(
        &self,
        run: &Concurrent<'_>,
        client: &mut dyn Target,
        next: &AtomicUsize,
        done: &AtomicUsize,
        stop: &AtomicBool,
    ) -> Result<(), SetupError> {
        while !stop.load(Ordering::Relaxed) {
            let Some(unit) = run.units.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return Ok(());
            };
            for index in unit.start..unit.end {
                let op = &run.ops[index];
                self.apply(op, client, run.placed)
                    .map_err(|error| setup_error(index, op, error))?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn apply(
        &self,
        op: &SetupOp,
        target: &mut dyn Target,
        placed: &Mutex<Placed>,
    ) -> Result<(), TargetError> {
        let missing = |what: &str| TargetError::Failed(format!("{what} was not set up first"));
        // The lock is never held across a call to the target.
        let placed_now = || placed.lock().unwrap_or_else(PoisonError::into_inner);
        match op {
            SetupOp::Reset { now } => target.reset(*now),
            SetupOp::Fx(rate) => target.set_fx_rate(rate),
            SetupOp::Rule { rule } => {
                let id = target.create_rule(&self.rules[*rule].setup)?;
                placed_now().rules[*rule] = Some(id);
                Ok(())
            }
            SetupOp::ApplyRule { rule } => {
                let id = placed_now().rules[*rule].ok_or_else(|| missing("the rule"))?;
                target.apply_rule(id)
            }
            SetupOp::Profile { profile } => {
                let id = target.create_profile(&self.profiles[*profile].setup)?;
                placed_now().profiles[*profile] = Some(id);
                Ok(())
            }
            SetupOp::TopUp { profile, amount } => {
                let id = placed_now().profiles[*profile].ok_or_else(|| missing("the profile"))?;
                target.top_up(id, *amount)
            }
            SetupOp::ProfileLimit { profile, limit } => {
                let id = placed_now().profiles[*profile].ok_or_else(|| missing("the profile"))?;
                target.set_profile_limit(id, limit)
            }
            SetupOp::Card { card } => {
                let plan = &self.cards[*card];
                let profile = placed_now().profiles[plan.profile]
                    .ok_or_else(|| missing("the card's profile"))?;
                let token = target.issue_card(&card_setup(plan, profile))?;
                placed_now().cards[*card] = Some(CardRef { profile, token });
                Ok(())
            }
            SetupOp::DisablePermissions { card } => {
                let card_ref = placed_now().cards[*card].ok_or_else(|| missing("the card"))?;
                let changes: Vec<(Channel, bool)> = self.cards[*card]
                    .disabled
                    .iter()
                    .map(|&c| (c, false))
                    .collect();
                target.set_permissions(card_ref, &changes)
            }
            SetupOp::CardLimits { card } => {
                let card_ref = placed_now().cards[*card].ok_or_else(|| missing("the card"))?;
                target.set_card_limits(card_ref, &self.cards[*card].limits)
            }
        }
    }
}

/// Which phase of the setup a unit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Profiles,
    Cards,
}

/// The operations of one profile or one card: `ops[start..end]`, run in order on one client.
#[derive(Debug, Clone, Copy)]
struct Unit {
    phase: Phase,
    start: usize,
    end: usize,
}

/// One phase run side by side.
struct Concurrent<'a> {
    ops: &'a [SetupOp],
    units: &'a [Unit],
    placed: &'a Mutex<Placed>,
    /// Operations done before the phase began (for progress).
    done_before: usize,
}

/// A unit begins at each profile or card creation and runs to the next; what comes before
/// the first one (reset, rates, rules) belongs to no unit.
fn units_of(ops: &[SetupOp]) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let phase = match op {
            SetupOp::Profile { .. } => Some(Phase::Profiles),
            SetupOp::Card { .. } => Some(Phase::Cards),
            _ => None,
        };
        if let Some(phase) = phase {
            units.push(Unit {
                phase,
                start: index,
                end: index + 1,
            });
        } else if let Some(last) = units.last_mut() {
            last.end = index + 1;
        }
    }
    units
}

/// Clients for running setup calls side by side: none when one is asked for or the target
/// cannot open more (then everything runs on the target itself).
fn clients_of(target: &dyn Target, concurrency: usize) -> Vec<Box<dyn Target + Send>> {
    let wanted = concurrency.clamp(1, SETUP_CONCURRENCY_MAX);
    if wanted == 1 {
        return Vec::new();
    }
    (0..wanted).map_while(|_| target.fork()).collect()
}

fn setup_error(index: usize, op: &SetupOp, error: TargetError) -> SetupError {
    SetupError {
        index,
        op: describe(op),
        error,
    }
}

/// Keeps the refusal of the earliest operation when several clients fail.
fn keep_first(slot: &Mutex<Option<SetupError>>, error: SetupError) {
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if slot.as_ref().is_none_or(|kept| error.index < kept.index) {
        *slot = Some(error);
    }
}

/// The engine's ids of what has been set up so far, by the population's indices.
#[derive(Debug)]
struct Placed {
    profiles: Vec<Option<ProfileId>>,
    cards: Vec<Option<CardRef>>,
    rules: Vec<Option<RuleId>>,
}

impl Placed {
    fn new(population: &Population) -> Placed {
        Placed {
            profiles: vec![None; population.profiles.len()],
            cards: vec![None; population.cards.len()],
            rules: vec![None; population.rules.len()],
        }
    }

    /// Everything set up, in the population's order (a setup that succeeded placed all).
    fn deployed(self) -> Deployed {
        Deployed {
            profiles: self.profiles.into_iter().flatten().collect(),
            cards: self.cards.into_iter().flatten().collect(),
            rules: self.rules.into_iter().flatten().collect(),
        }
    }
}

fn card_setup(plan: &CardPlan, profile: ProfileId) -> CardSetup {
    CardSetup {
        profile,
        pan: plan.pan,
        pin: Some(plan.pin.clone()),
        cvv2: Some(plan.cvv2.clone()),
        expiry: plan.expiry,
        status: plan.status,
        currency: Some(plan.currency),
        card_type: plan.card_type,
        smart_conversion: plan.smart_conversion,
        locked: plan.locked.clone(),
    }
}

/// A one-line description of an operation for error messages: indices, never card data.
fn describe(op: &SetupOp) -> String {
    match op {
        SetupOp::Reset { now } => format!("reset at {now}"),
        SetupOp::Fx(r) => format!("fx {} to {}", r.from, r.to),
        SetupOp::Rule { rule } => format!("create rule {rule}"),
        SetupOp::ApplyRule { rule } => format!("apply rule {rule}"),
        SetupOp::Profile { profile } => format!("create profile {profile}"),
        SetupOp::TopUp { profile, amount } => format!("top up profile {profile} by {amount}"),
        SetupOp::ProfileLimit { profile, limit } => {
            format!("{} limit of profile {profile}", limit.limit_type)
        }
        SetupOp::Card { card } => format!("issue card {card}"),
        SetupOp::DisablePermissions { card } => format!("permissions of card {card}"),
        SetupOp::CardLimits { card } => format!("limits of card {card}"),
    }
}

fn generate_profile(dice: &mut Dice) -> ProfilePlan {
    let timezone = if dice.chance(300) {
        TimeZone::parse(TIME_ZONES[dice.index(TIME_ZONES.len())]).unwrap_or_default()
    } else {
        TimeZone::UTC
    };
    let status = match dice.below(1000) {
        0..=9 => ProfileStatus::Suspended,
        10..=14 => ProfileStatus::Inactive,
        _ => ProfileStatus::Active,
    };
    let home = dice.weighted(&HOME_CURRENCY_WEIGHTS).unwrap_or(0);
    let balance_count = match dice.below(100) {
        0..=29 => 1,
        30..=74 => 2,
        _ => 3,
    };
    let mut currencies = vec![home];
    while currencies.len() < balance_count {
        let other = dice.index(CURRENCIES.len());
        if !currencies.contains(&other) {
            currencies.push(other);
        }
    }
    let balances = currencies
        .iter()
        .enumerate()
        .map(|(i, &c)| scaled(CURRENCIES[c].0, opening_eur_cents(dice, i == 0)))
        .collect();
    let limits = profile_limits(dice, CURRENCIES[home].0);
    ProfilePlan {
        setup: ProfileSetup { timezone, status },
        balances,
        limits,
    }
}

/// Most home balances hold a few thousand euros; one in twenty is nearly empty, so funds
/// run out on some cards early in a run.
fn opening_eur_cents(dice: &mut Dice, home: bool) -> i64 {
    let euros = if home && dice.chance(50) {
        dice.between(5, 60)
    } else if home {
        dice.between(500, 8_000)
    } else {
        dice.between(100, 2_000)
    };
    euros as i64 * 100 + dice.below(100) as i64
}

fn profile_limits(dice: &mut Dice, currency: Currency) -> Vec<ProfileLimitSetup> {
    let mut limits = Vec::new();
    let limit = |limit_type, daily_eur: i64, monthly_eur: i64| ProfileLimitSetup {
        limit_type,
        daily: scaled(currency, daily_eur * 100),
        monthly: scaled(currency, monthly_eur * 100),
        max_daily: Some(scaled(currency, 2 * daily_eur * 100)),
        max_monthly: Some(scaled(currency, 2 * monthly_eur * 100)),
    };
    if dice.chance(250) {
        limits.push(limit(LimitType::Purchase, 1_500, 6_000));
    }
    if dice.chance(250) {
        limits.push(limit(LimitType::AtmWithdrawal, 300, 1_200));
    }
    limits
}

fn generate_card(
    dice: &mut Dice,
    config: &PopulationConfig,
    index: usize,
    profile: usize,
    plan: &ProfilePlan,
) -> CardPlan {
    let currency = if plan.balances.len() > 1 && dice.chance(200) {
        plan.balances[1 + dice.index(plan.balances.len() - 1)].currency
    } else {
        plan.balances[0].currency
    };
    let statuses = [
        (CardStatus::Active, 950),
        (CardStatus::Frozen, 20),
        (CardStatus::Blocked, 10),
        (CardStatus::Inactive, 10),
        (CardStatus::Expired, 5),
        (CardStatus::PartnerSuspended, 5),
    ];
    let weights: Vec<u32> = statuses.iter().map(|s| s.1).collect();
    let status = statuses[dice.weighted(&weights).unwrap_or(0)].0;
    CardPlan {
        profile,
        pan: card_pan(TEST_BIN, index as u64, config.seed).expect("the test BIN is six digits"),
        pin: ClearPin::parse(&digits(dice, 4)).expect("four digits are a valid PIN"),
        cvv2: Cvv2::parse(&digits(dice, 3)).expect("three digits are a valid CVV2"),
        expiry: card_expiry(dice, config.start),
        status,
        card_type: if dice.chance(400) {
            CardType::Virtual
        } else {
            CardType::Physical
        },
        currency,
        // With one balance there is nothing to convert from; with more, conversion would
        // make the expected ledger depend on rates and rounding (see the module comment).
        smart_conversion: plan.balances.len() == 1,
        locked: if dice.chance(50) {
            vec![Channel::PosMagstripe]
        } else {
            Vec::new()
        },
        disabled: disabled_channels(dice),
        limits: card_limits(dice, currency),
    }
}

fn digits(dice: &mut Dice, count: usize) -> String {
    (0..count)
        .map(|_| char::from(b'0' + dice.below(10) as u8))
        .collect()
}

/// A 16-digit PAN: the BIN (six digits), a 9-digit account number unique per index, the
/// Luhn digit. Refused when the BIN is not six digits.
pub fn card_pan(bin: &str, index: u64, seed: u64) -> Result<Pan, cardcore_core::pan::PanError> {
    if bin.len() != 6 {
        return Err(cardcore_core::pan::PanError::Length(bin.len() + 10));
    }
    let offset = seed % ACCOUNT_MODULUS;
    let account = (index % ACCOUNT_MODULUS * ACCOUNT_STRIDE + offset) % ACCOUNT_MODULUS;
    let mut text = format!("{bin}{account:09}");
    let check = cardcore_core::pan::luhn_check_digit(text.as_bytes());
    text.push(char::from(check));
    Pan::parse(&text)
}

/// Mostly one to four years ahead; one card in thirty already past its month.
fn card_expiry(dice: &mut Dice, start: Timestamp) -> Expiry {
    let today = start.to_datetime().date_naive();
    let months_now = today.year() * 12 + today.month0() as i32;
    let months = if dice.chance(33) {
        months_now - 1 - dice.below(12) as i32
    } else {
        months_now + 1 + dice.below(48) as i32
    };
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    Expiry::new(year as u16, month as u8).expect("START_YEARS keeps expiries within 2000-2099")
}

fn disabled_channels(dice: &mut Dice) -> Vec<Channel> {
    if !dice.chance(100) {
        return Vec::new();
    }
    let choices = [
        Channel::Ecom,
        Channel::PosContactless,
        Channel::AtmWithdrawal,
        Channel::MobileWallets,
    ];
    vec![choices[dice.index(choices.len())]]
}

fn card_limits(dice: &mut Dice, currency: Currency) -> Vec<(Granularity, Money)> {
    if !dice.chance(200) {
        return Vec::new();
    }
    let mut limits = vec![
        (Granularity::Transaction, scaled(currency, 40_000)),
        (Granularity::Daily, scaled(currency, 100_000)),
        (Granularity::Monthly, scaled(currency, 400_000)),
    ];
    if dice.chance(300) {
        limits.push((Granularity::Lifetime, scaled(currency, 2_000_000)));
    }
    limits
}

/// Gambling and two other categories blocked for every card, and one rule created but
/// left unapplied (it would refuse every currency outside the population's).
fn standard_rules() -> Vec<RulePlan> {
    let rule = |rule_type, operation, values: &[&str], description: &str, applied| RulePlan {
        setup: RuleSetup {
            rule_type,
            operation,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            description: description.to_owned(),
        },
        applied,
    };
    let currencies: Vec<&str> = CURRENCIES.iter().map(|(c, _)| c.alpha()).collect();
    vec![
        rule(
            RuleType::Mcc,
            RuleOperation::Block,
            &["7995"],
            "no gambling",
            true,
        ),
        rule(
            RuleType::Mcc,
            RuleOperation::Block,
            &["5967", "7273"],
            "no direct marketing or dating",
            true,
        ),
        rule(
            RuleType::Currency,
            RuleOperation::Allow,
            &currencies,
            "population currencies only (not applied)",
            false,
        ),
    ]
}

/// A rate for every ordered pair of the population's currencies, from the table's values.
fn fx_rates() -> Vec<FxRate> {
    let fee: Decimal = FX_FEE_PERCENT.parse().unwrap_or_default();
    let major = |(currency, per_eur_minor): (Currency, i64)| {
        Decimal::from(per_eur_minor) / Decimal::from(10i64.pow(u32::from(currency.exponent())))
    };
    let mut rates = Vec::new();
    for &from in &CURRENCIES {
        for &to in &CURRENCIES {
            if from.0 == to.0 {
                continue;
            }
            rates.push(FxRate {
                from: from.0,
                to: to.0,
                rate: (major(to) / major(from)).round_dp(FX_RATE_SCALE),
                fee_percent: fee,
            });
        }
    }
    rates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SCENARIO_START;

    fn population(cards: usize, seed: u64) -> Population {
        Population::generate(PopulationConfig {
            cards,
            seed,
            start: SCENARIO_START,
        })
        .unwrap()
    }

    #[test]
    fn same_seed_same_population() {
        let a = population(300, 5);
        let b = population(300, 5);
        assert_eq!(a.setup_ops(), b.setup_ops());
        let pans = |p: &Population| p.cards.iter().map(|c| c.pan).collect::<Vec<_>>();
        assert_eq!(pans(&a), pans(&b));
        assert_ne!(pans(&a), pans(&population(300, 6)));
    }

    #[test]
    fn pans_are_unique_luhn_valid_and_in_the_test_bin() {
        let p = population(2_000, 1);
        let mut seen = std::collections::BTreeSet::new();
        for card in &p.cards {
            let digits = card.pan.expose_digits();
            assert!(digits.starts_with(TEST_BIN));
            assert_eq!(digits.len(), 16);
            assert!(seen.insert(digits.to_owned()), "duplicate PAN");
        }
        let unknown = card_pan(UNKNOWN_BIN, 3, 1).unwrap();
        assert!(unknown.expose_digits().starts_with(UNKNOWN_BIN));
        assert!(card_pan("4000", 3, 1).is_err());
        assert!(card_pan("40000x", 3, 1).is_err());
    }

    #[test]
    fn shape_of_a_population() {
        let p = population(4_000, 2);
        assert_eq!(p.profiles.len(), 2_000);
        // Every profile has a card, every card spends in one of its profile's currencies,
        // and only single-balance profiles' cards convert.
        let mut has_card = vec![false; p.profiles.len()];
        for card in &p.cards {
            has_card[card.profile] = true;
            let profile = &p.profiles[card.profile];
            assert!(profile.currencies().any(|c| c == card.currency));
            assert_eq!(card.smart_conversion, profile.balances.len() == 1);
        }
        assert!(has_card.iter().all(|&h| h));
        let usable = (0..p.cards.len())
            .filter(|&c| p.card_is_usable(c, SCENARIO_START))
            .count();
        assert!((3_500..3_900).contains(&usable), "usable cards: {usable}");
        let multi = p.profiles.iter().filter(|x| x.balances.len() > 1).count();
        assert!(
            (1_200..1_600).contains(&multi),
            "multi-currency profiles: {multi}"
        );
        assert!(p.cards.iter().any(|c| !c.limits.is_empty()));
        assert!(p.cards.iter().any(|c| !c.disabled.is_empty()));
        assert!(p.profiles.iter().any(|x| !x.limits.is_empty()));
        assert!(p.profiles.iter().any(|x| x.setup.timezone != TimeZone::UTC));
    }

    #[test]
    fn scaled_amounts_and_rates() {
        assert_eq!(
            scaled(Currency::EUR, 5_000),
            Money::new(5_000, Currency::EUR)
        );
        assert_eq!(
            scaled(Currency::JPY, 5_000),
            Money::new(8_000, Currency::JPY)
        );
        assert_eq!(
            scaled(Currency::KWD, 5_000),
            Money::new(16_500, Currency::KWD)
        );
        let rates = fx_rates();
        assert_eq!(rates.len(), 42);
        let eur_jpy = rates
            .iter()
            .find(|r| r.from == Currency::EUR && r.to == Currency::JPY)
            .unwrap();
        assert_eq!(eur_jpy.rate, Decimal::from(160));
    }

    #[test]
    fn setup_ops_order_and_refusal() {
        let p = population(10, 3);
        let ops = p.setup_ops();
        assert_eq!(
            ops[0],
            SetupOp::Reset {
                now: SCENARIO_START
            }
        );
        let first_card = ops.iter().position(|o| matches!(o, SetupOp::Card { .. }));
        let last_profile = ops
            .iter()
            .rposition(|o| matches!(o, SetupOp::Profile { .. }));
        assert!(last_profile < first_card, "profiles come before cards");
        assert_eq!(
            ops.iter()
                .filter(|o| matches!(o, SetupOp::Card { .. }))
                .count(),
            10
        );
        assert!(describe(&SetupOp::Card { card: 4 }).ends_with("card 4"));
    }
}
