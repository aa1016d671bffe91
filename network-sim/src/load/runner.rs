//! A load run from start to report: set the population up through the [`Target`], send the
//! generated traffic through a [`LoadDriver`] at the chosen pace, match answers, keep the
//! expected ledger, then reconcile it with the engine and check the engine's invariants.
//!
//! Pacing:
//! - *Open loop* (`rate_per_s`): request `i` is due at `start + i / rate`, whatever the
//!   answers do. Its latency is measured from that scheduled time, not from when it could
//!   actually be sent, so a stall of the system under test shows up in every request it
//!   delayed (no coordinated omission; recording the scheduled time is the correction, so
//!   HdrHistogram's `record_correct` is not applied on top).
//! - *Closed loop* (`concurrency`): at most C requests in flight; latency from the send.
//!
//! Clock jumps are barriers: the runner stops sending, waits for every answer, applies
//! them, then moves the engine clock (through [`Target::advance_clock`]) and the expected
//! ledger's clock together, and resumes; the open-loop timetable restarts after the
//! barrier so the pause is not counted as latency.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use cardcore_core::pin::ZonePinKey;
use cardcore_core::Timestamp;

use super::driver::{DriverError, DriverEvent, LoadDriver};
use super::encode::EncodeError;
use super::generator::{
    Effect, GeneratorError, PlannedMessage, TrafficConfig, TrafficEvent, TrafficGenerator,
};
use super::ledger::{reconcile, ExpectedLedger, HoldTtl};
use super::matcher::{read_answer, Matcher};
use super::population::{
    Deployed, Population, PopulationConfig, PopulationError, SetupError, SETUP_CONCURRENCY_DEFAULT,
    SETUP_CONCURRENCY_MAX,
};
use super::progress::{Progress, ProgressMode};
use super::report::{ConfigSummary, LedgerSummary, LoadReport, ReportInputs};
use super::stats::{RunStats, REPORT_INTERVAL_DEFAULT};
use crate::scenario::{Target, TargetError, SCENARIO_START};

/// Requests sent but not yet applied to the expected ledger (in flight, or answered and
/// waiting for an earlier one): past this the runner stops sending until answers catch up.
pub const WINDOW_MAX: usize = 65_536;
/// Answers handled in a row before the runner checks whether a send is due.
const RECEIVE_BATCH_MAX: usize = 256;
/// How long the runner sleeps at most when it has nothing scheduled.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// The most requests a closed loop keeps in flight.
pub const CONCURRENCY_MAX: usize = WINDOW_MAX;
/// The fastest open-loop rate accepted (messages per second).
pub const RATE_MAX_PER_S: u64 = 10_000_000;

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// A fixed timetable of `rate_per_s` requests per second.
    OpenLoop { rate_per_s: u64 },
    /// `concurrency` requests in flight at all times.
    ClosedLoop { concurrency: usize },
}

/// Everything a run needs besides the target and the driver.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// How the report names the target (`in-process`, `tcp://...`).
    pub target_label: String,
    pub cards: usize,
    pub seed: u64,
    /// Stop after this many requests...
    pub messages: Option<u64>,
    /// ...or after this long, whichever comes first.
    pub duration: Option<Duration>,
    pub pacing: Pacing,
    /// The traffic's shape; its `seed` is replaced by `seed` above.
    pub traffic: TrafficConfig,
    /// The engine's hold lifetimes (its `Lifecycle` configuration).
    pub hold_ttl: HoldTtl,
    /// The engine clock when the run starts.
    pub start: Timestamp,
    /// A request not answered within this is counted unanswered.
    pub response_timeout: Duration,
    /// The length of one interval of the report's latency time series.
    pub report_interval: Duration,
    pub progress: ProgressMode,
    /// Setup calls in flight at once, on a target that can open more clients.
    pub setup_concurrency: usize,
}

impl LoadConfig {
    /// Defaults: 20 s, closed loop with 64 in flight, the default traffic shape, the engine's
    /// default hold lifetimes, the scenario start time, 5 s response timeout, 10 s report
    /// intervals.
    pub fn new(cards: usize, seed: u64, zone_pin_key: ZonePinKey) -> LoadConfig {
        LoadConfig {
            target_label: "in-process".to_owned(),
            cards,
            seed,
            messages: None,
            duration: Some(Duration::from_secs(20)),
            pacing: Pacing::ClosedLoop { concurrency: 64 },
            traffic: TrafficConfig::new(seed, zone_pin_key),
            hold_ttl: HoldTtl::default(),
            start: SCENARIO_START,
            response_timeout: Duration::from_secs(5),
            report_interval: REPORT_INTERVAL_DEFAULT,
            progress: ProgressMode::Auto,
            setup_concurrency: SETUP_CONCURRENCY_DEFAULT,
        }
    }

    /// Refuses a configuration that cannot run, naming the option at fault.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: String| Err(LoadError::Config(m));
        if self.messages.is_none() && self.duration.is_none() {
            return bad("give --duration or --messages (or both)".into());
        }
        if self.messages == Some(0) || self.duration == Some(Duration::ZERO) {
            return bad("--duration and --messages must be above zero".into());
        }
        match self.pacing {
            Pacing::OpenLoop { rate_per_s } if !(1..=RATE_MAX_PER_S).contains(&rate_per_s) => bad(
                format!("--rate must be 1 to {RATE_MAX_PER_S}, got {rate_per_s}"),
            ),
            Pacing::ClosedLoop { concurrency } if !(1..=CONCURRENCY_MAX).contains(&concurrency) => {
                bad(format!(
                    "--concurrency must be 1 to {CONCURRENCY_MAX}, got {concurrency}"
                ))
            }
            _ if self.response_timeout.is_zero() => {
                bad("the response timeout must be above zero".into())
            }
            _ if self.report_interval < Duration::from_secs(1) => {
                bad("--report-interval-s must be at least 1".into())
            }
            _ if !(1..=SETUP_CONCURRENCY_MAX).contains(&self.setup_concurrency) => bad(format!(
                "--setup-concurrency must be 1 to {SETUP_CONCURRENCY_MAX}, got {}",
                self.setup_concurrency
            )),
            _ => Ok(()),
        }
    }
}

/// Why a run could not be carried out (as opposed to a run that found problems, which is a
/// report whose verdict fails).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Population(#[from] PopulationError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    #[error("building a message: {0}")]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("{what}: {error}")]
    Target {
        what: &'static str,
        error: TargetError,
    },
}

/// Runs a whole load test: [`prepare_load`] then [`drive_load`]. See the module
/// documentation.
pub fn run_load(
    config: &LoadConfig,
    target: &mut dyn Target,
    driver: &mut dyn LoadDriver,
) -> Result<LoadReport, LoadError> {
    let prepared = prepare_load(config, target)?;
    drive_load(config, prepared, target, driver)
}

/// A population set up on the target, ready for traffic.
#[derive(Debug)]
pub struct PreparedLoad {
    pub population: Population,
    pub deployed: Deployed,
}

/// Checks the configuration, generates the population and sets it up on `target` (which
/// starts from an empty engine). An embedder whose driver needs the engine the target has
/// just created builds the driver after this.
pub fn prepare_load(
    config: &LoadConfig,
    target: &mut dyn Target,
) -> Result<PreparedLoad, LoadError> {
    config.validate()?;
    let population = Population::generate(PopulationConfig {
        cards: config.cards,
        seed: config.seed,
        start: config.start,
    })?;
    let deployed = set_up(config, &population, target)?;
    Ok(PreparedLoad {
        population,
        deployed,
    })
}

/// Sends the traffic through `driver`, then reconciles and checks the invariants.
pub fn drive_load(
    config: &LoadConfig,
    prepared: PreparedLoad,
    target: &mut dyn Target,
    driver: &mut dyn LoadDriver,
) -> Result<LoadReport, LoadError> {
    if driver.lanes() == 0 {
        return Err(LoadError::Config("the driver has no connection".into()));
    }
    let PreparedLoad {
        population,
        deployed,
    } = prepared;
    // One seed names the whole run: population and traffic.
    let mut traffic = config.traffic.clone();
    traffic.seed = config.seed;
    let generator = TrafficGenerator::new(&population, traffic)?;
    let ledger = ExpectedLedger::new(&population, config.hold_ttl);
    let mut session = Session::new(config, target, driver, generator, ledger);
    session.run()?;
    let Session {
        stats,
        ledger,
        clock_jumps,
        started,
        last_answer_at,
        ..
    } = session;
    if clock_jumps > 0 {
        // Lets the target release holds that fell due at the last jump on partitions that
        // saw no message since.
        target.advance_clock(0).map_err(|error| LoadError::Target {
            what: "moving the engine clock",
            error,
        })?;
    }
    let mut read = |p, c| target.balance(p, c);
    let reconciliation =
        reconcile(&ledger, &deployed.profiles, &mut read).map_err(|error| LoadError::Target {
            what: "reading balances for the reconciliation",
            error,
        })?;
    let invariant_violations =
        target
            .invariant_violations()
            .map_err(|error| LoadError::Target {
                what: "running the engine's invariant check",
                error,
            })?;
    let duration = last_answer_at.unwrap_or(started).duration_since(started);
    let mut stats = stats;
    stats.finish_intervals(duration);
    Ok(LoadReport::new(ReportInputs {
        seed: config.seed,
        config: summary(config, &population, driver.lanes()),
        stats,
        duration_s: duration.as_secs_f64(),
        reconciliation,
        invariant_violations,
        ledger: LedgerSummary {
            applied: ledger.stats(),
            open_at_end: ledger.open_transactions(),
            clock_jumps,
            engine_clock_end: ledger.engine_now().to_rfc3339(),
        },
    }))
}

/// Sets the population up, with a progress bar of its own (a large population through the
/// management API takes a while).
fn set_up(
    config: &LoadConfig,
    population: &Population,
    target: &mut dyn Target,
) -> Result<Deployed, LoadError> {
    let mut bar = Progress::new(config.progress, population.setup_ops().len() as u64, false);
    let deployed = population.set_up(target, config.setup_concurrency, &mut |done, _| {
        bar.update(done as u64, || "setting up the population".to_owned());
    })?;
    bar.finish();
    Ok(deployed)
}

fn summary(config: &LoadConfig, population: &Population, connections: usize) -> ConfigSummary {
    let (pacing, rate_per_s, concurrency) = match config.pacing {
        Pacing::OpenLoop { rate_per_s } => ("open_loop", Some(rate_per_s), None),
        Pacing::ClosedLoop { concurrency } => ("closed_loop", None, Some(concurrency)),
    };
    let jumps = config.traffic.clock_jumps;
    ConfigSummary {
        target: config.target_label.clone(),
        cards: population.cards.len(),
        profiles: population.profiles.len(),
        pacing: pacing.to_owned(),
        rate_per_s,
        concurrency,
        connections,
        messages_limit: config.messages,
        duration_limit_s: config.duration.map(|d| d.as_secs_f64()),
        zipf_exponent: config.traffic.zipf_exponent,
        sim_ms_per_message: config.traffic.sim_ms_per_message,
        clock_jump_every_messages: jumps.map(|j| j.every_messages),
        clock_jump_ms: jumps.map(|j| j.by_ms),
        response_timeout_ms: u64::try_from(config.response_timeout.as_millis()).unwrap_or(u64::MAX),
        report_interval_s: config.report_interval.as_secs_f64(),
    }
}

/// A request waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    lane: usize,
    /// Latency is measured from here: the scheduled time (open loop) or the send.
    started: Instant,
    stan: u32,
    effect: Effect,
}

/// Resolutions waiting for an earlier request, so the ledger sees them in send order.
#[derive(Debug, Default)]
struct InOrder {
    next: u64,
    ready: BTreeMap<u64, (Effect, bool)>,
}

impl InOrder {
    fn resolve(&mut self, seq: u64, effect: Effect, approved: bool, ledger: &mut ExpectedLedger) {
        self.ready.insert(seq, (effect, approved));
        while let Some((effect, approved)) = self.ready.remove(&self.next) {
            ledger.apply(&effect, approved);
            self.next += 1;
        }
    }

    fn waiting(&self) -> usize {
        self.ready.len()
    }
}

/// The state of the traffic phase.
struct Session<'a> {
    config: &'a LoadConfig,
    target: &'a mut dyn Target,
    driver: &'a mut dyn LoadDriver,
    generator: TrafficGenerator,
    ledger: ExpectedLedger,
    stats: RunStats,
    in_flight: HashMap<u64, InFlight>,
    matcher: Matcher,
    order: InOrder,
    /// (deadline, seq) in send order.
    deadlines: VecDeque<(Instant, u64)>,
    /// Generated, not yet sent (waiting for its time or for a barrier).
    pending: Option<TrafficEvent>,
    /// Requests taken from the generator (sent or not).
    issued: u64,
    closed_lanes: Vec<bool>,
    started: Instant,
    /// Open loop: request `base` is due at `origin`, the next ones every 1/rate after.
    origin: Instant,
    base: u64,
    done_sending: bool,
    engine_clock: Timestamp,
    clock_jumps: u64,
    last_answer_at: Option<Instant>,
    progress: Progress,
}

impl<'a> Session<'a> {
    fn new(
        config: &'a LoadConfig,
        target: &'a mut dyn Target,
        driver: &'a mut dyn LoadDriver,
        generator: TrafficGenerator,
        ledger: ExpectedLedger,
    ) -> Session<'a> {
        let lanes = driver.lanes();
        let (total, by_time) = match (config.messages, config.duration) {
            (Some(n), _) => (n, false),
            (None, Some(d)) => (d.as_secs().max(1), true),
            (None, None) => (0, false),
        };
        let now = Instant::now();
        Session {
            config,
            target,
            driver,
            generator,
            ledger,
            stats: RunStats::with_interval(config.report_interval),
            in_flight: HashMap::new(),
            matcher: Matcher::new(lanes),
            order: InOrder::default(),
            deadlines: VecDeque::new(),
            pending: None,
            issued: 0,
            closed_lanes: vec![false; lanes],
            started: now,
            origin: now,
            base: 0,
            done_sending: false,
            engine_clock: config.start,
            clock_jumps: 0,
            last_answer_at: None,
            progress: Progress::new(config.progress, total, by_time),
        }
    }

    fn run(&mut self) -> Result<(), LoadError> {
        self.started = Instant::now();
        self.origin = self.started;
        loop {
            self.send_due()?;
            if self.done_sending && self.in_flight.is_empty() {
                break;
            }
            let deadline = self.wait_deadline();
            self.receive_until(deadline)?;
            self.expire_timeouts();
            self.show_progress();
        }
        self.progress.finish();
        Ok(())
    }

    /// Sends every request the pacing allows now; carries out a due clock jump.
    fn send_due(&mut self) -> Result<(), LoadError> {
        while !self.done_sending {
            if self.stop_reached() {
                self.done_sending = true;
                break;
            }
            if self.window_full() {
                break;
            }
            let now = Instant::now();
            if let Pacing::OpenLoop { .. } = self.config.pacing {
                if now < self.scheduled(self.issued) {
                    break;
                }
            }
            let event = match self.pending.take() {
                Some(event) => event,
                None => self.generator.next_event()?,
            };
            match event {
                TrafficEvent::ClockJump { to } if !self.in_flight.is_empty() => {
                    self.pending = Some(TrafficEvent::ClockJump { to });
                    break;
                }
                TrafficEvent::ClockJump { to } => self.jump(to)?,
                TrafficEvent::Message(m) => self.send(m, now),
            }
        }
        Ok(())
    }

    fn stop_reached(&self) -> bool {
        let by_count = self.config.messages.is_some_and(|n| self.issued >= n);
        let by_time = self
            .config
            .duration
            .is_some_and(|d| self.started.elapsed() >= d);
        by_count || by_time
    }

    fn window_full(&self) -> bool {
        let limit = match self.config.pacing {
            Pacing::OpenLoop { .. } => WINDOW_MAX,
            Pacing::ClosedLoop { concurrency } => concurrency.min(WINDOW_MAX),
        };
        self.in_flight.len() >= limit || self.in_flight.len() + self.order.waiting() >= WINDOW_MAX
    }

    /// When request `i` is due in open loop.
    fn scheduled(&self, i: u64) -> Instant {
        let Pacing::OpenLoop { rate_per_s } = self.config.pacing else {
            return self.origin;
        };
        let nanos =
            u128::from(i.saturating_sub(self.base)) * 1_000_000_000 / u128::from(rate_per_s);
        self.origin + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn send(&mut self, m: PlannedMessage, now: Instant) {
        let seq = m.seq;
        let started = match self.config.pacing {
            Pacing::OpenLoop { .. } => {
                let due = self.scheduled(self.issued);
                self.stats.on_send_lag(now.saturating_duration_since(due));
                due
            }
            Pacing::ClosedLoop { .. } => now,
        };
        self.issued += 1;
        let lane = (m.lane_key % self.closed_lanes.len() as u64) as usize;
        let sent = !self.closed_lanes[lane] && self.driver.send(lane, &m.bytes).is_ok();
        if !sent {
            self.closed_lanes[lane] = true;
            self.stats.unsent += 1;
            self.order.resolve(seq, m.effect, false, &mut self.ledger);
            return;
        }
        self.stats.on_sent(m.mti.as_str(), m.action);
        self.matcher
            .expect(lane, seq, m.stan, m.transmission, m.answer_has_stan);
        self.deadlines
            .push_back((now + self.config.response_timeout, seq));
        self.in_flight.insert(
            seq,
            InFlight {
                lane,
                started,
                stan: m.stan,
                effect: m.effect,
            },
        );
    }

    /// The barrier: everything answered and applied; both clocks move to `to`.
    fn jump(&mut self, to: Timestamp) -> Result<(), LoadError> {
        let by_ms = (to.0 - self.engine_clock.0).max(0);
        self.target
            .advance_clock(by_ms)
            .map_err(|error| LoadError::Target {
                what: "moving the engine clock for hold expiry",
                error,
            })?;
        self.engine_clock = to;
        self.ledger.advance_clock(to);
        self.clock_jumps += 1;
        // The timetable starts again now: the barrier is not the engine's latency.
        self.base = self.issued;
        self.origin = Instant::now();
        Ok(())
    }

    fn wait_deadline(&self) -> Instant {
        let now = Instant::now();
        let idle = now + IDLE_POLL;
        let open = matches!(self.config.pacing, Pacing::OpenLoop { .. });
        if open && !self.done_sending && self.pending.is_none() && !self.window_full() {
            return self.scheduled(self.issued).min(idle).max(now);
        }
        match self.deadlines.front() {
            Some(&(deadline, _)) => deadline.min(idle).max(now),
            None => idle,
        }
    }

    fn receive_until(&mut self, deadline: Instant) -> Result<(), LoadError> {
        let mut until = deadline;
        for _ in 0..RECEIVE_BATCH_MAX {
            let Some(event) = self.driver.next_event(until)? else {
                return Ok(());
            };
            match event {
                DriverEvent::Answer {
                    lane,
                    message,
                    received_at,
                } => self.on_answer(lane, &message, received_at),
                DriverEvent::Closed { lane, .. } => self.on_closed(lane),
            }
            // After the first event, take only what is already there.
            until = Instant::now();
            if self.send_is_due() {
                return Ok(());
            }
        }
        Ok(())
    }

    fn send_is_due(&self) -> bool {
        match self.config.pacing {
            Pacing::OpenLoop { .. } => {
                !self.done_sending && Instant::now() >= self.scheduled(self.issued)
            }
            Pacing::ClosedLoop { concurrency } => self.in_flight.len() < concurrency,
        }
    }

    fn on_answer(&mut self, lane: usize, message: &[u8], received_at: Instant) {
        let answer = read_answer(message);
        let Some(seq) = self.matcher.take(lane, &answer) else {
            self.stats.unmatched_answers += 1;
            return;
        };
        let Some(request) = self.in_flight.remove(&seq) else {
            self.stats.unmatched_answers += 1;
            return;
        };
        let latency = received_at.saturating_duration_since(request.started);
        let at = received_at.saturating_duration_since(self.started);
        self.stats.on_answer(&answer, latency, at);
        self.last_answer_at = Some(
            self.last_answer_at
                .map_or(received_at, |t| t.max(received_at)),
        );
        self.order
            .resolve(seq, request.effect, answer.approved(), &mut self.ledger);
    }

    /// Everything waiting on the lane is lost; later sends on it are counted unsent.
    fn on_closed(&mut self, lane: usize) {
        if let Some(closed) = self.closed_lanes.get_mut(lane) {
            *closed = true;
        }
        self.matcher.clear_lane(lane);
        let mut lost: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.lane == lane)
            .map(|(&seq, _)| seq)
            .collect();
        lost.sort_unstable();
        for seq in lost {
            self.give_up(seq);
        }
    }

    fn expire_timeouts(&mut self) {
        let now = Instant::now();
        while let Some(&(deadline, seq)) = self.deadlines.front() {
            if !self.in_flight.contains_key(&seq) {
                self.deadlines.pop_front();
                continue;
            }
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if let Some(f) = self.in_flight.get(&seq) {
                let (lane, stan) = (f.lane, f.stan);
                self.matcher.forget(lane, seq, stan);
            }
            self.give_up(seq);
        }
    }

    /// A request that will not be answered: the ledger treats it as declined (what the
    /// engine did with it is unknown, so a reconciliation after one may not match).
    fn give_up(&mut self, seq: u64) {
        if let Some(f) = self.in_flight.remove(&seq) {
            self.stats.unanswered += 1;
            self.order.resolve(seq, f.effect, false, &mut self.ledger);
        }
    }

    fn show_progress(&mut self) {
        let position = match (self.config.messages, self.config.duration) {
            (Some(_), _) => self.issued,
            _ => self.started.elapsed().as_secs(),
        };
        let (answered, in_flight) = (self.stats.answered, self.in_flight.len());
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        self.progress.update(position, || {
            format!(
                "{answered} answered, {:.0}/s, {in_flight} in flight",
                answered as f64 / elapsed
            )
        });
    }
}
