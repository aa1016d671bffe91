//! The crash loop itself: set a population up on a fresh server, then round after round
//! send generated traffic, SIGKILL the server at a random moment, restart it on the same
//! data directory, settle what was in flight, and check the server against the client's
//! own records.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cardcore_core::{Timestamp, TxnId};
use cardcore_server::keys::SANDBOX_ZONE_PIN_KEY_HEX;
use cardcore_sim::load::{
    reconcile, ClockJumps, Deployed, Dice, Effect, ExpectedLedger, HoldTtl, Population,
    PopulationConfig, TrafficConfig, TrafficEvent, TrafficGenerator,
};
use cardcore_sim::scenario::{Target, SCENARIO_START};
use cardcore_sim::targets::{SimKeys, TcpTarget};

use super::book::{Models, Problems, Reply, TxnBook};
use super::counts::Counts;
use super::http::{self, EngineTxn};
use super::link::{Link, LinkEvent, Outstanding};
use super::process::{Addresses, Durability, ServeOptions, ServerProcess};

/// The sandbox operator token.
pub const ADMIN_TOKEN: &str = "sandbox";
/// Requests in flight during traffic at most, and the pace they are sent at. The pace
/// keeps the simulated months short and the funds from running dry over a long run; a
/// crash loop is about what survives a kill, not about throughput.
pub const CONCURRENCY: usize = 32;
pub const RATE_PER_S: u64 = 1_000;
/// A kill lands this long after the traffic of a round started (uniform between the two).
/// The server looks for a due snapshot every second, so rounds past two seconds or so
/// write snapshots, and some kills land during one.
pub const KILL_AFTER_MS_MIN: u64 = 100;
pub const KILL_AFTER_MS_MAX: u64 = 4_000;
/// How often a kill comes right after a burst of [`CONCURRENCY`] requests (per mille), and
/// how soon after: then the kill lands while requests are being decided, journaled and
/// answered, which a kill at a uniform moment of a paced stream seldom does.
pub const BURST_KILL_PER_MILLE: u32 = 500;
pub const BURST_KILL_DELAY_US_MAX: u64 = 3_000;
/// How often a restart is itself killed while starting (per mille), and how soon.
pub const START_KILL_PER_MILLE: u32 = 250;
pub const START_KILL_WITHIN_MS: u64 = 300;
/// Every this many rounds, and after the last, the server is also killed while idle and
/// its state hash compared across the restart.
pub const IDLE_KILL_EVERY_ROUNDS: u64 = 5;
/// A request not answered within this while the server runs fails the run.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long answers already on their way are still read after a kill.
pub const DRAIN_AFTER_KILL: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(2);
/// Answered requests remembered for duplicate probes, and how many are sent after a
/// restart: clearings first (a clearing posted twice is the costly mistake), then others.
pub const RECENT_ANSWERED_MAX: usize = 512;
pub const PROBE_CLEARINGS_MAX: usize = 48;
pub const PROBE_OTHERS_MAX: usize = 16;
/// Hold expiry in the traffic: the engine clock jumps 8 days every this many messages.
pub const CLOCK_JUMP_EVERY_MESSAGES: u64 = 5_000;
pub const CLOCK_JUMP_MS: i64 = 8 * Timestamp::MS_PER_DAY;
/// Small, so that kills land between, during and soon after snapshots.
pub const SNAPSHOT_EVERY_RECORDS: u64 = 1_000;

const _: () = assert!(KILL_AFTER_MS_MIN < KILL_AFTER_MS_MAX);
const _: () = assert!(PROBE_CLEARINGS_MAX + PROBE_OTHERS_MAX <= RECENT_ANSWERED_MAX);

/// What a run is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Kills under load; the run has at least this many restarts.
    pub kills: u64,
    pub seed: u64,
    pub cards: usize,
    /// `Sync` for the real test; `Async` shows the loop catches answers that were lost.
    pub durability: Durability,
    /// `--snapshot-every-records` ([`SNAPSHOT_EVERY_RECORDS`] for the real test).
    pub snapshot_every_records: u64,
}

/// An answered request, kept to be sent again after a restart.
#[derive(Debug, Clone)]
struct Answered {
    out: Outstanding,
    reply: Reply,
}

/// The running crash loop. See the module documentation.
pub struct Harness {
    settings: Settings,
    options: ServeOptions,
    server: ServerProcess,
    addresses: Addresses,
    target: TcpTarget,
    deployed: Deployed,
    generator: TrafficGenerator,
    /// An event taken from the generator and not carried out yet (a clock jump waiting
    /// for the answers before it).
    pending: Option<TrafficEvent>,
    models: Models,
    recent: VecDeque<Answered>,
    problems: Problems,
    dice: Dice,
    pub counts: Counts,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("settings", &self.settings)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// Starts a server on an empty `data_dir` and sets the population up over HTTP.
    pub fn start(settings: Settings, binary: &str, data_dir: &Path) -> anyhow::Result<Harness> {
        let options = ServeOptions {
            binary: binary.to_owned(),
            data_dir: data_dir.to_path_buf(),
            durability: settings.durability,
            snapshot_every_records: settings.snapshot_every_records,
        };
        let setup_started = Instant::now();
        let mut server = ServerProcess::spawn(&options)?;
        let addresses = server.wait_listening()?;
        let mut target = connect_target(&addresses)?;
        let population = Population::generate(PopulationConfig {
            cards: settings.cards,
            seed: settings.seed,
            start: SCENARIO_START,
        })?;
        let deployed = population.set_up(&mut target, 1, &mut |_, _| {})?;
        let keys = sandbox_keys()?;
        let mut traffic = TrafficConfig::new(settings.seed, keys.zone_pin_key());
        traffic.clock_jumps = Some(ClockJumps {
            every_messages: CLOCK_JUMP_EVERY_MESSAGES,
            by_ms: CLOCK_JUMP_MS,
        });
        let generator = TrafficGenerator::new(&population, traffic)?;
        let ttl = HoldTtl::default();
        let models = Models::new(
            ExpectedLedger::new(&population, ttl),
            TxnBook::new(population.config.start, ttl),
        );
        Ok(Harness {
            settings,
            options,
            server,
            addresses,
            target,
            deployed,
            generator,
            pending: None,
            models,
            recent: VecDeque::with_capacity(RECENT_ANSWERED_MAX),
            problems: Problems::default(),
            dice: Dice::derived(settings.seed, 0xC0FFEE),
            counts: Counts {
                setup_time: setup_started.elapsed(),
                ..Counts::default()
            },
        })
    }

    /// Every round: traffic, kill, restart, settle, check. Stops at the first round whose
    /// checks find a problem.
    pub fn run(&mut self) -> anyhow::Result<()> {
        for round in 1..=self.settings.kills {
            let kill_after_ms = self.dice.between(KILL_AFTER_MS_MIN, KILL_AFTER_MS_MAX);
            let kill_at = Instant::now() + Duration::from_millis(kill_after_ms);
            let t = Instant::now();
            let unknown = self.traffic_until_kill(kill_at)?;
            self.counts.traffic_time += t.elapsed();
            let t = Instant::now();
            self.restart()?;
            self.counts.restart_time += t.elapsed();
            let t = Instant::now();
            self.resolve_unknown(unknown)?;
            self.probe_duplicates()?;
            self.counts.settle_time += t.elapsed();
            let t = Instant::now();
            self.check().with_context(|| {
                format!("round {round}: after the kill {kill_after_ms} ms into traffic")
            })?;
            self.counts.check_time += t.elapsed();
            if round % IDLE_KILL_EVERY_ROUNDS == 0 || round == self.settings.kills {
                self.idle_kill()
                    .with_context(|| format!("round {round}: the kill while idle"))?;
            }
        }
        self.finish_counts()
    }

    fn finish_counts(&mut self) -> anyhow::Result<()> {
        // Every request got an answer in the end: before a kill or by its resend after.
        if self.counts.answers_read != self.counts.messages_sent {
            bail!(
                "{} requests sent, {} answers applied",
                self.counts.messages_sent,
                self.counts.answers_read
            );
        }
        self.refresh_counts();
        self.counts.snapshots_written += self.server.snapshots_written();
        Ok(())
    }

    /// Copies what the transaction book counted into the counts.
    fn refresh_counts(&mut self) {
        let stats = self.models.book.stats;
        self.counts.approvals_read = stats.approvals;
        self.counts.clearings_approved = stats.clearings_approved;
        self.counts.transactions_final = self.models.book.len() as u64;
        self.counts.approved_final = self.models.book.approved_len() as u64;
    }

    /// Sends traffic at [`RATE_PER_S`] (at most [`CONCURRENCY`] in flight) until `kill_at`,
    /// SIGKILLs the server, reads the answers already on their way, and returns the
    /// requests whose outcome the client never read.
    fn traffic_until_kill(&mut self, kill_at: Instant) -> anyhow::Result<Vec<Outstanding>> {
        let mut link = Link::connect(&self.addresses.iso)?;
        let started = Instant::now();
        let mut sent = 0u64;
        while Instant::now() < kill_at {
            let due = started.elapsed().as_millis() as u64 * RATE_PER_S / 1_000;
            sent += self.fill(&mut link, due.saturating_sub(sent))?;
            let deadline = kill_at.min(Instant::now() + POLL);
            match link.next(deadline)? {
                Some(LinkEvent::Closed { lane, reason }) => bail!(
                    "connection {lane} closed before the kill: {reason}\n{}",
                    self.server.log_tail()
                ),
                Some(event) => self.on_event(event),
                None => {}
            }
            if link
                .oldest_sent_at()
                .is_some_and(|t| t.elapsed() > ANSWER_TIMEOUT)
            {
                bail!("a request was not answered within {ANSWER_TIMEOUT:?}");
            }
        }
        if self.dice.chance(BURST_KILL_PER_MILLE) {
            self.fill(&mut link, CONCURRENCY as u64)?;
            let delay_us = self.dice.between(0, BURST_KILL_DELAY_US_MAX);
            std::thread::sleep(Duration::from_micros(delay_us));
            self.counts.kills_after_burst += 1;
        }
        self.server.kill()?;
        self.counts.kills_under_load += 1;
        self.drain_after_kill(&mut link)?;
        let unknown = link.into_unanswered();
        self.counts.in_flight_at_kill += unknown.len() as u64;
        Ok(unknown)
    }

    /// Sends up to `budget` requests, keeping at most [`CONCURRENCY`] in flight; carries
    /// out a clock jump once everything before it is answered. Returns how many were sent.
    fn fill(&mut self, link: &mut Link, budget: u64) -> anyhow::Result<u64> {
        let mut sent = 0;
        while sent < budget && link.waiting() < CONCURRENCY {
            let event = match self.pending.take() {
                Some(event) => event,
                None => self.generator.next_event()?,
            };
            match event {
                TrafficEvent::ClockJump { .. } if link.waiting() > 0 => {
                    self.pending = Some(event);
                    break;
                }
                TrafficEvent::ClockJump { to } => self.jump(to)?,
                TrafficEvent::Message(m) => {
                    link.send(Outstanding::new(m.seq, m))?;
                    self.counts.messages_sent += 1;
                    sent += 1;
                }
            }
        }
        Ok(sent)
    }

    fn jump(&mut self, to: Timestamp) -> anyhow::Result<()> {
        self.target
            .set_clock(to)
            .context("move the engine clock for hold expiry")?;
        self.models.advance_clock(to);
        self.counts.clock_jumps += 1;
        Ok(())
    }

    fn on_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Answered(out, reply) => self.apply_answer(out, reply),
            LinkEvent::Unmatched { lane, reply } => self.problems.push(format!(
                "an answer on connection {lane} matches no request: {}",
                reply.describe()
            )),
            LinkEvent::Closed { .. } => {}
        }
    }

    fn apply_answer(&mut self, out: Outstanding, reply: Reply) {
        self.counts.answers_read += 1;
        if matches!(out.message.effect, Effect::Open { .. }) && !reply.approved() {
            let reason = reply
                .summary
                .reason
                .clone()
                .unwrap_or_else(|| reply.summary.code_text());
            *self.counts.declines_by_reason.entry(reason).or_default() += 1;
        }
        if !matches!(out.message.effect, Effect::Nothing) {
            if self.recent.len() == RECENT_ANSWERED_MAX {
                self.recent.pop_front();
            }
            self.recent.push_back(Answered {
                out: out.clone(),
                reply: reply.clone(),
            });
        }
        self.models.resolve(out.key, out.message.effect, reply);
    }

    /// Reads the answers the server sent before it died, until every connection closed
    /// (or [`DRAIN_AFTER_KILL`]).
    fn drain_after_kill(&mut self, link: &mut Link) -> anyhow::Result<()> {
        let deadline = Instant::now() + DRAIN_AFTER_KILL;
        let mut closed = [false; super::link::LANES];
        while Instant::now() < deadline && !closed.iter().all(|&c| c) {
            match link.next(deadline)? {
                Some(LinkEvent::Closed { lane, .. }) => closed[lane] = true,
                Some(LinkEvent::Answered(out, reply)) => {
                    self.counts.answers_after_kill += 1;
                    self.apply_answer(out, reply);
                }
                Some(event) => self.on_event(event),
                None => {}
            }
        }
        Ok(())
    }
}

/// Restarts, settling what was in flight, duplicate probes.
impl Harness {
    /// Starts the server again on the same data directory (sometimes killing a first
    /// attempt while it starts) and puts the sandbox clock back where the client's models
    /// have it: a sandbox starts at its epoch, a production server reads the system clock.
    fn restart(&mut self) -> anyhow::Result<()> {
        self.counts.snapshots_written += self.server.snapshots_written();
        if self.dice.chance(START_KILL_PER_MILLE) {
            let mut starting = ServerProcess::spawn(&self.options)?;
            let wait_ms = self.dice.between(0, START_KILL_WITHIN_MS);
            std::thread::sleep(Duration::from_millis(wait_ms));
            starting.kill()?;
            self.counts.kills_at_start += 1;
        }
        let mut server = ServerProcess::spawn(&self.options)?;
        let addresses = server.wait_listening()?;
        self.counts.start_times.push(addresses.start_time);
        self.server = server;
        self.target = connect_target(&addresses)?;
        self.addresses = addresses;
        self.target
            .set_clock(self.models.now())
            .context("put the sandbox clock back")?;
        Ok(())
    }

    /// Sends every request whose answer was lost again, byte for byte (same STAN, DE 7 and
    /// acquirer): the engine answers a message it recorded with its first answer and
    /// decides one it never recorded, so either way the answer is the outcome.
    fn resolve_unknown(&mut self, unknown: Vec<Outstanding>) -> anyhow::Result<()> {
        let records_before = self.appended_seq()?;
        let answered = self.exchange(unknown)?;
        self.counts.resend_records_added += self.appended_seq()?.saturating_sub(records_before);
        for (out, reply) in answered {
            self.counts.in_flight_resolved += 1;
            if reply.approved() && !matches!(out.message.effect, Effect::Nothing) {
                self.counts.in_flight_approved += 1;
            }
            self.apply_answer(out, reply);
        }
        Ok(())
    }

    /// The journal's last appended seq, from `GET /health`.
    fn appended_seq(&self) -> anyhow::Result<u64> {
        let health: HealthIn = http::get_json(&self.addresses.http, ADMIN_TOKEN, "/health")?;
        Ok(health.last_appended_seq)
    }

    /// Sends recently answered requests again: each must get its first answer back (DE 39,
    /// DE 62, DE 38) and change nothing, which the reconciliation then confirms.
    fn probe_duplicates(&mut self) -> anyhow::Result<()> {
        let recent = std::mem::take(&mut self.recent);
        let (clearings, others): (Vec<Answered>, Vec<Answered>) = recent
            .into_iter()
            .partition(|a| matches!(a.out.message.effect, Effect::Clear { .. }));
        let chosen: Vec<Answered> = clearings
            .into_iter()
            .rev()
            .take(PROBE_CLEARINGS_MAX)
            .chain(others.into_iter().rev().take(PROBE_OTHERS_MAX))
            .collect();
        let batch = chosen
            .iter()
            .enumerate()
            .map(|(i, a)| Outstanding::new(i as u64, a.out.message.clone()))
            .collect();
        for (out, reply) in self.exchange(batch)? {
            let first = &chosen[out.key as usize];
            let same = first.reply.summary.response_code == reply.summary.response_code
                && first.reply.txn == reply.txn
                && first.reply.approval_code == reply.approval_code;
            if !same {
                self.problems.push(format!(
                    "a duplicate of an answered {} (STAN {}) after restart got {}, first {}",
                    first.out.message.action.as_str(),
                    first.out.message.stan,
                    reply.describe(),
                    first.reply.describe()
                ));
            }
            self.counts.duplicate_probes += 1;
            if matches!(first.out.message.effect, Effect::Clear { .. }) {
                self.counts.duplicate_probe_clearings += 1;
            }
        }
        Ok(())
    }

    /// Sends `batch` on a new link and waits for every answer.
    fn exchange(&mut self, batch: Vec<Outstanding>) -> anyhow::Result<Vec<(Outstanding, Reply)>> {
        let mut answered = Vec::with_capacity(batch.len());
        if batch.is_empty() {
            return Ok(answered);
        }
        let mut link = Link::connect(&self.addresses.iso)?;
        for out in batch {
            link.send(out)?;
        }
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        while link.waiting() > 0 {
            if Instant::now() >= deadline {
                bail!("{} requests unanswered after the restart", link.waiting());
            }
            match link.next(deadline)? {
                Some(LinkEvent::Answered(out, reply)) => answered.push((out, reply)),
                Some(LinkEvent::Closed { lane, reason }) => bail!(
                    "connection {lane} closed after the restart: {reason}\n{}",
                    self.server.log_tail()
                ),
                Some(event) => self.on_event(event),
                None => {}
            }
        }
        Ok(answered)
    }

    /// Kills the server with nothing in flight: the state it recovers must hash the same.
    fn idle_kill(&mut self) -> anyhow::Result<()> {
        let before = http::state_hash(&self.addresses.http, ADMIN_TOKEN)?;
        self.server.kill()?;
        self.counts.kills_idle += 1;
        self.restart()?;
        let after = http::state_hash(&self.addresses.http, ADMIN_TOKEN)?;
        if before != after {
            bail!("the state hash was {before} before an idle kill and {after} after");
        }
        self.check()
    }
}

/// The checks after every restart.
impl Harness {
    /// The server against the client's records: balances reconcile to the minor unit,
    /// the invariants hold, every transaction an answer named is there in the state and at
    /// the amount the answers imply, and no other transaction is.
    pub fn check(&mut self) -> anyhow::Result<()> {
        let unexplained = self.models.ledger.stats().unexplained;
        if unexplained > 0 {
            self.problems.push(format!(
                "{unexplained} approvals the expected ledger cannot place (a follow-up approved twice or on a transaction that was not open)"
            ));
        }
        self.reconcile_balances()?;
        let violations = self.target.invariant_violations()?;
        self.counts.invariant_checks += 1;
        for v in violations {
            self.problems.push(format!("invariant: {v}"));
        }
        let engine = self.engine_transactions()?;
        let approved = self.models.book.compare(&engine);
        self.counts.approvals_checked += approved;
        self.counts.declines_checked += self.models.book.len() as u64 - approved;
        self.fail_on_problems()
    }

    fn reconcile_balances(&mut self) -> anyhow::Result<()> {
        let target = &mut self.target;
        let mut read = |p, c| target.balance(p, c);
        let r = reconcile(&self.models.ledger, &self.deployed.profiles, &mut read)
            .context("read the balances")?;
        self.counts.reconciliations += 1;
        self.counts.balances_reconciled += r.balances_checked as u64;
        for m in &r.mismatches {
            self.problems.push(format!(
                "balance of profile {} in {}: the client expects {:?}, the server has {:?}",
                m.profile, m.currency, m.expected, m.actual
            ));
        }
        Ok(())
    }

    /// Every transaction of every card of the population, by id.
    fn engine_transactions(&mut self) -> anyhow::Result<BTreeMap<TxnId, EngineTxn>> {
        let mut all = BTreeMap::new();
        for &card in &self.deployed.cards {
            for t in http::card_transactions(&self.addresses.http, ADMIN_TOKEN, card)? {
                if all.insert(t.id, t).is_some() {
                    self.problems
                        .push(format!("transaction {} is listed under two cards", t.id));
                }
            }
        }
        Ok(all)
    }

    fn fail_on_problems(&mut self) -> anyhow::Result<()> {
        if self.problems.is_empty() && self.models.book.problems.is_empty() {
            return Ok(());
        }
        self.refresh_counts();
        let book = &self.models.book.problems;
        bail!(
            "the server does not match what the client was answered\n{}{}\ncounts so far:\n{}",
            self.problems.report(),
            book.report(),
            self.counts
        )
    }

    /// Shows the checks can fail: one approved transaction expected one minor unit higher,
    /// and one balance one minor unit off, must each be reported.
    pub fn prove_checks_can_fail(&mut self) -> anyhow::Result<()> {
        let engine = self.engine_transactions()?;
        let (id, mut expect) = self
            .models
            .book
            .iter()
            .find(|(_, t)| t.state == cardcore_core::TransactionState::InProgress)
            .context("no transaction in progress to alter")?;
        let problems_before = self.models.book.problems.count;
        expect.authorised_minor += 1;
        self.models.book.replace(id, expect);
        self.models.book.compare(&engine);
        if self.models.book.problems.count != problems_before + 1 {
            bail!("a transaction one minor unit off went unnoticed");
        }
        let mut ledger = self.models.ledger.clone();
        let ((profile, currency), mut amounts) =
            ledger.balances().next().context("no balance to alter")?;
        amounts.cash += 1;
        ledger.set_balance(profile, currency, amounts);
        let target = &mut self.target;
        let mut read = |p, c| target.balance(p, c);
        let r = reconcile(&ledger, &self.deployed.profiles, &mut read)?;
        if r.ok || r.difference_minor != 1 {
            bail!("a balance one minor unit off went unnoticed: {r:?}");
        }
        Ok(())
    }
}

/// The part of `GET /health` read here.
#[derive(serde::Deserialize)]
struct HealthIn {
    last_appended_seq: u64,
}

fn sandbox_keys() -> anyhow::Result<SimKeys> {
    SimKeys::with_zone_pin_key_hex(SANDBOX_ZONE_PIN_KEY_HEX)
        .map_err(|e| anyhow::anyhow!("the sandbox zone PIN key: {e}"))
}

fn connect_target(addresses: &Addresses) -> anyhow::Result<TcpTarget> {
    let admin = format!("http://{}", addresses.http);
    TcpTarget::connect(&addresses.iso, &admin, ADMIN_TOKEN, sandbox_keys()?)
        .map_err(|e| anyhow::anyhow!("connect to the restarted server: {e}"))
}
