//! The load generator: the same seed gives the same bytes, every message is one the codec
//! reads, follow-ups act on earlier messages, and the mix contains what the issue asks for.

use std::collections::{BTreeMap, HashMap};

use cardcore_core::iso8583::{parse, salvage, Mti};
use cardcore_core::pin::ZonePinKey;
use cardcore_core::Timestamp;
use cardcore_sim::load::{
    Action, ClockJumps, Effect, OpenMode, Population, PopulationConfig, TrafficConfig,
    TrafficEvent, TrafficGenerator, TrafficMix,
};
use cardcore_sim::scenario::SCENARIO_START;

fn zpk() -> ZonePinKey {
    ZonePinKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap()
}

fn population(cards: usize, seed: u64) -> Population {
    Population::generate(PopulationConfig {
        cards,
        seed,
        start: SCENARIO_START,
    })
    .unwrap()
}

fn events(seed: u64, count: usize, config: impl FnOnce(&mut TrafficConfig)) -> Vec<TrafficEvent> {
    let mut traffic = TrafficConfig::new(seed, zpk());
    config(&mut traffic);
    let mut generator = TrafficGenerator::new(&population(500, seed), traffic).unwrap();
    (0..count)
        .map(|_| generator.next_event().unwrap())
        .collect()
}

fn messages(events: &[TrafficEvent]) -> Vec<&cardcore_sim::load::PlannedMessage> {
    events
        .iter()
        .filter_map(|e| match e {
            TrafficEvent::Message(m) => Some(m),
            TrafficEvent::ClockJump { .. } => None,
        })
        .collect()
}

#[test]
fn same_seed_gives_the_same_byte_sequence() {
    let a = events(42, 5_000, |_| {});
    let b = events(42, 5_000, |_| {});
    assert_eq!(a, b);
    let bytes = |e: &[TrafficEvent]| -> Vec<Vec<u8>> {
        messages(e).into_iter().map(|m| m.bytes.clone()).collect()
    };
    assert_eq!(bytes(&a), bytes(&b));
    let c = events(43, 5_000, |_| {});
    assert_ne!(bytes(&a), bytes(&c), "another seed, other traffic");
}

#[test]
fn every_message_is_readable_and_keyed_as_announced() {
    let all = events(7, 20_000, |_| {});
    let mut malformed = 0;
    for m in messages(&all) {
        match parse(&m.bytes) {
            Ok(parsed) => {
                assert_ne!(m.action, Action::Malformed);
                assert_eq!(parsed.mti(), m.mti);
                assert_eq!(parsed.stan(), Some(m.stan));
                assert_eq!(parsed.get(7), Some(&m.transmission[..]));
                assert!(m.answer_has_stan);
            }
            Err(_) => {
                assert_eq!(
                    m.action,
                    Action::Malformed,
                    "only malformed frames fail to parse"
                );
                malformed += 1;
                let s = salvage(&m.bytes);
                assert_eq!(s.mti, Some(m.mti), "the MTI stays readable");
                if m.answer_has_stan {
                    assert_eq!(s.stan, Some(m.stan));
                }
            }
        }
    }
    assert!(malformed > 20, "about 5 in 1000 are malformed: {malformed}");
}

#[test]
fn follow_ups_refer_to_earlier_messages_of_the_same_card() {
    let all = events(9, 20_000, |_| {});
    // (STAN, DE 7) of every message sent so far, with its PAN and seq.
    let mut sent: HashMap<(u32, [u8; 10]), (Vec<u8>, u64)> = HashMap::new();
    let mut follow_ups = 0;
    for m in messages(&all) {
        let Ok(parsed) = parse(&m.bytes) else {
            continue;
        };
        let pan = parsed.pan_bytes().unwrap().to_vec();
        if let Some(original) = parsed.original_data() {
            follow_ups += 1;
            let key = (original.stan, original.transmission_time.to_digits());
            let (original_pan, original_seq) =
                sent.get(&key).expect("DE 90 names a message sent before");
            assert_eq!(original_pan, &pan);
            assert!(
                m.seq >= original_seq + 100,
                "follow-ups keep their distance"
            );
            if m.action == Action::Duplicate {
                assert_eq!(m.effect, Effect::Nothing, "a duplicate changes nothing");
            } else {
                assert!(matches!(
                    m.effect,
                    Effect::Clear { .. } | Effect::Reverse { .. } | Effect::Increment { .. }
                ));
            }
        }
        if m.action != Action::Duplicate {
            sent.insert((m.stan, m.transmission), (pan, m.seq));
        }
    }
    assert!(follow_ups > 5_000, "follow-ups: {follow_ups}");
}

#[test]
fn the_mix_has_every_kind_and_keeps_transactions_in_held_currencies() {
    let p = population(500, 11);
    let mut generator = TrafficGenerator::new(&p, TrafficConfig::new(11, zpk())).unwrap();
    let mut by_action: BTreeMap<Action, u32> = BTreeMap::new();
    let mut by_mti: BTreeMap<Mti, u32> = BTreeMap::new();
    let mut foreign = 0;
    for _ in 0..30_000 {
        let TrafficEvent::Message(m) = generator.next_event().unwrap() else {
            continue;
        };
        *by_action.entry(m.action).or_default() += 1;
        *by_mti.entry(m.mti).or_default() += 1;
        if let Effect::Open {
            profile,
            amount,
            mode,
            ..
        } = m.effect
        {
            let profile = &p.profiles[profile as usize];
            if !profile.currencies().any(|c| c == amount.currency) {
                // Only ever a purchase meant to be declined, on a card that cannot convert.
                foreign += 1;
                assert_eq!(mode, OpenMode::Hold);
                assert!(profile.balances.len() > 1);
            }
            assert!(amount.amount_minor > 0);
        }
    }
    for action in Action::ALL {
        assert!(
            by_action.get(&action).copied().unwrap_or(0) > 0,
            "{action:?} never sent"
        );
    }
    for mti in [
        Mti::AuthorizationRequest,
        Mti::AuthorizationRequestRepeat,
        Mti::AuthorizationAdvice,
        Mti::FinancialRequest,
        Mti::FinancialAdvice,
        Mti::ReversalRequest,
    ] {
        assert!(by_mti.contains_key(&mti), "{mti} never sent");
    }
    assert!(
        foreign > 0 && foreign < 100,
        "foreign-currency purchases: {foreign}"
    );
    let purchases = by_action[&Action::Purchase];
    assert!(
        (11_000..15_000).contains(&purchases),
        "purchases: {purchases}"
    );
}

#[test]
fn clock_jumps_come_on_time_and_move_de7() {
    let all = events(3, 1_003, |t| {
        t.clock_jumps = Some(ClockJumps {
            every_messages: 250,
            by_ms: 8 * Timestamp::MS_PER_DAY,
        });
        t.sim_ms_per_message = 10;
    });
    let jumps: Vec<(usize, Timestamp)> = all
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            TrafficEvent::ClockJump { to } => Some((i, *to)),
            TrafficEvent::Message(_) => None,
        })
        .collect();
    assert_eq!(jumps.len(), 3);
    // 250 messages, then the jump, then 250 more ...
    assert_eq!(jumps[0].0, 250);
    assert_eq!(jumps[1].0, 501);
    let expected = SCENARIO_START.plus_ms(250 * 10 + 8 * Timestamp::MS_PER_DAY);
    assert_eq!(jumps[0].1, expected);
    let TrafficEvent::Message(after) = &all[251] else {
        panic!("a message follows a jump");
    };
    // 2026-01-15T10:00:02.5 plus eight days.
    assert_eq!(
        &after.transmission, b"0123100002",
        "DE 7 is the jumped clock"
    );
    let none = events(3, 1_000, |t| t.clock_jumps = None);
    assert!(none.iter().all(|e| matches!(e, TrafficEvent::Message(_))));
}

#[test]
fn a_mix_of_follow_ups_alone_falls_back_on_purchases() {
    let all = events(5, 300, |t| t.mix = TrafficMix::only(Action::Clearing));
    let first = messages(&all);
    // Nothing is old enough to clear for the first 100 messages.
    assert!(first[..100].iter().all(|m| m.action == Action::Purchase));
    assert!(first[100..].iter().any(|m| m.action == Action::Clearing));
}

#[test]
fn a_bad_configuration_is_refused() {
    let p = population(10, 1);
    let mut t = TrafficConfig::new(1, zpk());
    let mut empty = TrafficMix::only(Action::Purchase);
    empty.set(Action::Purchase, 0);
    t.mix = empty;
    assert!(TrafficGenerator::new(&p, t).is_err());
    let mut t = TrafficConfig::new(1, zpk());
    t.sim_ms_per_message = 0;
    assert!(TrafficGenerator::new(&p, t).is_err());
    let mut t = TrafficConfig::new(1, zpk());
    t.zipf_exponent = f64::NAN;
    assert!(TrafficGenerator::new(&p, t).is_err());
}

#[test]
fn a_large_population_and_its_traffic_are_generated_quickly() {
    // Prints the generator's own rate: `cargo test --release -p cardcore-sim --test
    // load_generator large -- --nocapture` gives the figure in docs/performance.md.
    let started = std::time::Instant::now();
    let p = population(100_000, 1);
    let population_s = started.elapsed().as_secs_f64();
    let mut traffic = TrafficConfig::new(1, zpk());
    traffic.clock_jumps = None;
    let mut generator = TrafficGenerator::new(&p, traffic).unwrap();
    let started = std::time::Instant::now();
    let count: u32 = 50_000;
    let mut bytes = 0usize;
    for _ in 0..count {
        match generator.next_event().unwrap() {
            TrafficEvent::Message(m) => bytes += m.bytes.len(),
            TrafficEvent::ClockJump { .. } => panic!("no jumps were asked for"),
        }
    }
    let rate = f64::from(count) / started.elapsed().as_secs_f64();
    eprintln!(
        "100,000 cards generated in {population_s:.2} s; {count} messages ({} bytes) at {rate:.0} messages/s",
        bytes
    );
    assert_eq!(generator.messages(), u64::from(count));
    assert!(
        bytes > 100 * count as usize,
        "messages are real ISO 8583 messages"
    );
}
