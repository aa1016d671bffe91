//! Whole load runs against test doubles: a small ISO 8583 responder over real loopback TCP
//! (framing, pipelining, answers out of order, a stall, a closed connection) or behind the
//! in-process driver, and a target that records the setup and reports balances.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cardcore_core::iso8583::{encode_frame, parse, salvage, FrameDecoder, MessageBuilder};
use cardcore_core::pin::ZonePinKey;
use cardcore_core::{
    CardStatus, CardToken, Channel, Currency, Granularity, Money, ProfileId, RuleId, Timestamp,
};
use cardcore_sim::load::{
    drive_load, prepare_load, run_load, ClockJumps, InProcessDriver, LoadConfig, LoadReport,
    Pacing, ProgressMode, TcpDriver,
};
use cardcore_sim::scenario::*;

/// How the responder answers.
#[derive(Clone, Copy)]
struct Behaviour {
    /// DE 39 and DE 63 of every answer to a message that parses.
    code: &'static [u8; 2],
    reason: Option<&'static str>,
    /// Answer the frames of one read in reverse order.
    reverse: bool,
    /// Sleep this long before answering the n-th frame of a connection.
    stall: Option<(usize, Duration)>,
    /// Close connection 0 after this many frames.
    close_first_after: Option<usize>,
}

const DECLINE_ALL: Behaviour = Behaviour {
    code: b"51",
    reason: Some("INSUFFICIENT_FUNDS"),
    reverse: false,
    stall: None,
    close_first_after: None,
};

const APPROVE_ALL: Behaviour = Behaviour {
    code: b"00",
    reason: None,
    ..DECLINE_ALL
};

/// The answer a simple issuer would give: the echo fields, DE 39, DE 63; `30` with the
/// salvaged STAN for what does not parse.
fn answer(request: &[u8], b: Behaviour) -> Option<Vec<u8>> {
    let mut out = MessageBuilder::new(cardcore_core::iso8583::Mti::NetworkManagementResponse);
    match parse(request) {
        Ok(m) => {
            out.reset_as_response_to(&m).ok()?;
            out.set_response_code(b.code).ok()?;
            if let Some(reason) = b.reason {
                out.set_str(63, reason).ok()?;
            }
        }
        Err(_) => out.reset_as_format_error(&salvage(request)).ok()?,
    }
    Some(out.to_vec())
}

/// A responder on loopback serving `connections` connections.
fn responder(connections: usize, b: Behaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for index in 0..connections {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            std::thread::spawn(move || serve(stream, index, b));
        }
    });
    addr
}

fn serve(mut stream: TcpStream, index: usize, b: Behaviour) {
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut read = vec![0u8; 64 * 1024];
    let mut count = 0usize;
    loop {
        let n = match stream.read(&mut read) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&read[..n]);
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            frames.push(frame);
        }
        if b.reverse {
            frames.reverse();
        }
        let mut out = Vec::new();
        for frame in frames {
            count += 1;
            if index == 0 && b.close_first_after == Some(count) {
                return;
            }
            if let Some((at, pause)) = b.stall {
                if count == at {
                    std::thread::sleep(pause);
                }
            }
            if let Some(a) = answer(&frame, b) {
                encode_frame(&a, &mut out).unwrap();
            }
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// A target that records the setup, moves no money and reports the opening balances.
#[derive(Default)]
struct Bank {
    next_id: u64,
    opening: BTreeMap<(ProfileId, Currency), i64>,
    clock_moves: Vec<i64>,
    violations: Vec<String>,
    cards: usize,
    resets: usize,
}

impl Bank {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

impl Target for Bank {
    fn reset(&mut self, _: Timestamp) -> Result<(), TargetError> {
        self.resets += 1;
        Ok(())
    }
    fn set_clock(&mut self, _: Timestamp) -> Result<(), TargetError> {
        Ok(())
    }
    fn advance_clock(&mut self, by_ms: i64) -> Result<(), TargetError> {
        self.clock_moves.push(by_ms);
        Ok(())
    }
    fn create_profile(&mut self, _: &ProfileSetup) -> Result<ProfileId, TargetError> {
        Ok(ProfileId(1_000 + self.id()))
    }
    fn update_profile(&mut self, _: ProfileId, _: &ProfileUpdate) -> Result<(), TargetError> {
        Ok(())
    }
    fn top_up(&mut self, profile: ProfileId, amount: Money) -> Result<(), TargetError> {
        *self.opening.entry((profile, amount.currency)).or_default() += amount.amount_minor;
        Ok(())
    }
    fn set_fx_rate(&mut self, _: &FxRate) -> Result<(), TargetError> {
        Ok(())
    }
    fn issue_card(&mut self, _: &CardSetup) -> Result<CardToken, TargetError> {
        self.cards += 1;
        Ok(CardToken(u128::from(self.id())))
    }
    fn set_card_status(&mut self, _: CardRef, _: CardStatus) -> Result<(), TargetError> {
        Ok(())
    }
    fn set_permissions(&mut self, _: CardRef, _: &[(Channel, bool)]) -> Result<(), TargetError> {
        Ok(())
    }
    fn set_card_limits(
        &mut self,
        _: CardRef,
        _: &[(Granularity, Money)],
    ) -> Result<(), TargetError> {
        Ok(())
    }
    fn delete_card_limits(&mut self, _: CardRef, _: &[Granularity]) -> Result<(), TargetError> {
        Ok(())
    }
    fn set_profile_limit(
        &mut self,
        _: ProfileId,
        _: &ProfileLimitSetup,
    ) -> Result<(), TargetError> {
        Ok(())
    }
    fn reset_pin_count(&mut self, _: CardRef) -> Result<(), TargetError> {
        Ok(())
    }
    fn create_rule(&mut self, _: &RuleSetup) -> Result<RuleId, TargetError> {
        Ok(RuleId(self.id()))
    }
    fn apply_rule(&mut self, _: RuleId) -> Result<(), TargetError> {
        Ok(())
    }
    fn unapply_rule(&mut self, _: RuleId) -> Result<(), TargetError> {
        Ok(())
    }
    fn delete_rule(&mut self, _: RuleId) -> Result<(), TargetError> {
        Ok(())
    }
    fn send(&mut self, _: &TrafficMessage) -> Result<TrafficOutcome, TargetError> {
        Err(TargetError::Failed(
            "load traffic goes through the driver".into(),
        ))
    }
    fn balance(&mut self, p: ProfileId, c: Currency) -> Result<Option<BalanceView>, TargetError> {
        Ok(self.opening.get(&(p, c)).map(|&minor| BalanceView {
            available: Money::new(minor, c),
            reserved: Money::zero(c),
            cash: Money::new(minor, c),
        }))
    }
    fn transaction(&mut self, _: TxnRef) -> Result<TxnView, TargetError> {
        Err(TargetError::Failed("not kept".into()))
    }
    fn limit_usage(&mut self, _: LimitScope, _: Granularity) -> Result<Money, TargetError> {
        Err(TargetError::Failed("not kept".into()))
    }
    fn pin_tries(&mut self, _: CardRef) -> Result<u32, TargetError> {
        Ok(0)
    }
    fn invariant_violations(&mut self) -> Result<Vec<String>, TargetError> {
        Ok(self.violations.clone())
    }
}

fn config(messages: u64, pacing: Pacing) -> LoadConfig {
    let zpk = ZonePinKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
    let mut c = LoadConfig::new(300, 42, zpk);
    c.target_label = "test responder".into();
    c.messages = Some(messages);
    c.duration = Some(Duration::from_secs(60));
    c.pacing = pacing;
    c.progress = ProgressMode::Never;
    c.response_timeout = Duration::from_secs(2);
    c.traffic.clock_jumps = Some(ClockJumps {
        every_messages: 500,
        by_ms: 8 * Timestamp::MS_PER_DAY,
    });
    c
}

fn run_tcp(c: &LoadConfig, connections: usize, b: Behaviour, bank: &mut Bank) -> LoadReport {
    let addr = responder(connections, b);
    let mut driver = TcpDriver::connect(&addr.to_string(), connections).unwrap();
    run_load(c, bank, &mut driver).unwrap()
}

#[test]
fn declined_traffic_reconciles_with_the_opening_balances() {
    let mut bank = Bank::default();
    let c = config(1_500, Pacing::ClosedLoop { concurrency: 16 });
    let r = run_tcp(&c, 2, DECLINE_ALL, &mut bank);
    assert_eq!(r.messages, 1_500);
    assert_eq!(r.answered, 1_500);
    assert_eq!((r.unanswered, r.unsent, r.unmatched_answers), (0, 0, 0));
    // Every malformed frame got its `30`, including those whose STAN was unreadable.
    let malformed = r.by_action.get("malformed").copied().unwrap_or(0);
    assert!(malformed > 0);
    assert_eq!(
        r.by_response_code.get("30").copied().unwrap_or(0),
        malformed
    );
    assert_eq!(r.by_response_code["51"], 1_500 - malformed);
    assert_eq!(r.by_decline_reason["INSUFFICIENT_FUNDS"], 1_500 - malformed);
    assert!(r.reconciliation.ok, "{r}");
    assert_eq!(r.reconciliation.difference_minor, 0);
    assert!(r.reconciliation.balances_checked >= 150);
    assert!(r.invariants_ok);
    assert!(r.is_success());
    // Two jumps (before messages 500 and 1000), then a last call to release due holds.
    assert_eq!(r.ledger.clock_jumps, 2);
    assert_eq!(bank.clock_moves.len(), 3);
    assert!(bank.clock_moves[0] >= 8 * Timestamp::MS_PER_DAY);
    assert_eq!(bank.clock_moves[2], 0);
    assert_eq!((bank.resets, bank.cards), (1, 300));
    assert_eq!(r.by_mti.values().sum::<u64>(), 1_500);
    // The time series covers the run: every answer in one interval, the last ending with it.
    assert_eq!(r.intervals.iter().map(|i| i.answered).sum::<u64>(), 1_500);
    assert_eq!(r.intervals.last().map(|i| i.end_s), Some(r.duration_s));
    assert!(r.to_string().trim_end().ends_with("invariants: OK"));
}

#[test]
fn approvals_the_balances_do_not_show_fail_the_reconciliation() {
    // The simulator believes what it was told: every purchase approved and held. An engine
    // whose balances never moved is caught, to the minor unit.
    let mut bank = Bank::default();
    let c = config(600, Pacing::ClosedLoop { concurrency: 8 });
    let r = run_tcp(&c, 1, APPROVE_ALL, &mut bank);
    assert_eq!(r.answered, 600);
    assert!(!r.reconciliation.ok);
    assert!(r.reconciliation.difference_minor > 0);
    assert!(r.reconciliation.mismatch_count > 0);
    assert!(!r.reconciliation.mismatches.is_empty());
    assert!(r.ledger.applied.holds > 0);
    assert!(!r.is_success());
    assert!(r.verdict_line().starts_with("reconciliation: FAILED"));
}

#[test]
fn invariant_violations_fail_the_run() {
    let mut bank = Bank {
        violations: vec!["balance 3: cash != available + reserved".into()],
        ..Bank::default()
    };
    let c = config(200, Pacing::ClosedLoop { concurrency: 4 });
    let r = run_tcp(&c, 1, DECLINE_ALL, &mut bank);
    assert!(r.reconciliation.ok);
    assert!(!r.invariants_ok);
    assert!(!r.is_success());
    assert_eq!(r.invariant_violations.len(), 1);
}

#[test]
fn answers_out_of_order_on_pipelined_connections_are_matched() {
    let mut bank = Bank::default();
    let c = config(3_000, Pacing::ClosedLoop { concurrency: 64 });
    let b = Behaviour {
        reverse: true,
        ..DECLINE_ALL
    };
    let r = run_tcp(&c, 3, b, &mut bank);
    assert_eq!(r.answered, 3_000);
    assert_eq!((r.unanswered, r.unmatched_answers), (0, 0));
    assert!(r.reconciliation.ok);
}

#[test]
fn open_loop_latency_counts_a_stall_for_every_request_it_delayed() {
    // 1000 requests a second for 0.6 s; the responder stops for 200 ms at the 100th. About
    // 200 requests were due during the stall, and each waited for it: in open loop their
    // latency is measured from when they were due, so a tenth of all requests are slower
    // than 100 ms. A closed loop with one request in flight hides the same stall in one
    // sample.
    let stall = Behaviour {
        stall: Some((100, Duration::from_millis(200))),
        ..DECLINE_ALL
    };
    let mut c = config(600, Pacing::OpenLoop { rate_per_s: 1_000 });
    c.traffic.clock_jumps = None;
    let started = Instant::now();
    let open = run_tcp(&c, 1, stall, &mut Bank::default());
    assert_eq!(open.answered, 600);
    assert!(
        open.latency_us.max >= 150_000,
        "max {}",
        open.latency_us.max
    );
    assert!(open.latency_us.p90 >= 80_000, "p90 {}", open.latency_us.p90);
    assert!(
        open.duration_s >= 0.55,
        "the timetable spans 0.6 s: {}",
        open.duration_s
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(open.config.rate_per_s, Some(1_000));

    c.pacing = Pacing::ClosedLoop { concurrency: 1 };
    let closed = run_tcp(&c, 1, stall, &mut Bank::default());
    assert!(closed.latency_us.max >= 150_000);
    assert!(
        closed.latency_us.p90 < 50_000,
        "p90 {}",
        closed.latency_us.p90
    );
}

#[test]
fn a_connection_closed_by_the_server_ends_the_run_cleanly() {
    let b = Behaviour {
        close_first_after: Some(40),
        ..DECLINE_ALL
    };
    let mut bank = Bank::default();
    let mut c = config(400, Pacing::ClosedLoop { concurrency: 8 });
    c.traffic.clock_jumps = None;
    let started = Instant::now();
    let r = run_tcp(&c, 2, b, &mut bank);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(r.answered > 0);
    assert!(
        r.unsent > 0,
        "messages for the closed connection are not sent"
    );
    assert_eq!(r.answered + r.unanswered, r.messages);
    assert_eq!(r.messages + r.unsent, 400);
}

#[test]
fn the_in_process_driver_runs_the_same_traffic() {
    // In two steps, as an embedder whose driver needs what the setup created would do.
    let mut bank = Bank::default();
    let c = config(1_000, Pacing::OpenLoop { rate_per_s: 20_000 });
    let prepared = prepare_load(&c, &mut bank).unwrap();
    assert_eq!(prepared.deployed.cards.len(), 300);
    let handler: cardcore_sim::load::Handler =
        Arc::new(|request: &[u8]| answer(request, DECLINE_ALL));
    let mut driver = InProcessDriver::new(2, handler).unwrap();
    let r = drive_load(&c, prepared, &mut bank, &mut driver).unwrap();
    assert_eq!(r.answered, 1_000);
    assert!(r.reconciliation.ok);
    assert!(r.latency_us.max > 0);
}

#[test]
fn a_bad_configuration_is_refused_before_anything_is_sent() {
    let mut bank = Bank::default();
    let handler: cardcore_sim::load::Handler = Arc::new(|_: &[u8]| None);
    let mut driver = InProcessDriver::new(1, handler).unwrap();
    let mut c = config(10, Pacing::OpenLoop { rate_per_s: 0 });
    let e = run_load(&c, &mut bank, &mut driver).unwrap_err();
    assert!(e.to_string().contains("--rate"), "{e}");
    c.pacing = Pacing::ClosedLoop { concurrency: 1 };
    c.messages = None;
    c.duration = None;
    assert!(run_load(&c, &mut bank, &mut driver).is_err());
    c.messages = Some(10);
    c.cards = 0;
    assert!(run_load(&c, &mut bank, &mut driver)
        .unwrap_err()
        .to_string()
        .contains("--cards"));
    assert_eq!(bank.resets, 0, "nothing was set up");
}

#[test]
fn the_runner_and_the_tcp_driver_sustain_many_requests_in_flight() {
    // Prints what one runner thread and the TCP driver sustain against a trivial responder
    // on loopback: `cargo test --release -p cardcore-sim --test load_run sustain --
    // --nocapture` gives the figure in docs/performance.md.
    let mut bank = Bank::default();
    let mut c = config(30_000, Pacing::ClosedLoop { concurrency: 256 });
    c.cards = 5_000;
    c.traffic.clock_jumps = None;
    let r = run_tcp(&c, 4, DECLINE_ALL, &mut bank);
    eprintln!(
        "closed loop, 256 in flight, 4 connections: {:.0} answered/s, p50 {} us, p99 {} us, max {} us",
        r.throughput_per_s, r.latency_us.p50, r.latency_us.p99, r.latency_us.max
    );
    assert_eq!(r.answered, 30_000);
    assert_eq!((r.unanswered, r.unmatched_answers), (0, 0));
    assert!(r.reconciliation.ok);
}
