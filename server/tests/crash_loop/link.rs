//! The ISO 8583 side of the client: the simulator's pipelined [`TcpDriver`] with its
//! answer [`Matcher`], and the requests still waiting for an answer.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use cardcore_sim::load::matcher::Matcher;
use cardcore_sim::load::{DriverEvent, LoadDriver, PlannedMessage, TcpDriver};

use super::book::Reply;

/// Connections to the server; every message of one profile goes on the same one.
pub const LANES: usize = 4;

/// A request sent and not answered yet.
#[derive(Debug, Clone)]
pub struct Outstanding {
    /// The matching key: the message's seq for traffic, an index for duplicate probes.
    pub key: u64,
    pub lane: usize,
    pub message: PlannedMessage,
    pub sent_at: Instant,
}

impl Outstanding {
    pub fn new(key: u64, message: PlannedMessage) -> Outstanding {
        Outstanding {
            key,
            lane: lane_of(&message),
            message,
            sent_at: Instant::now(),
        }
    }
}

/// The lane the generator's lane key (the profile) maps to.
pub fn lane_of(message: &PlannedMessage) -> usize {
    (message.lane_key % LANES as u64) as usize
}

/// What the link reports.
#[derive(Debug)]
pub enum LinkEvent {
    Answered(Outstanding, Reply),
    /// An answer that matches no request waiting on its connection.
    Unmatched {
        lane: usize,
        reply: Reply,
    },
    Closed {
        lane: usize,
        reason: String,
    },
}

/// See the module documentation.
#[derive(Debug)]
pub struct Link {
    driver: TcpDriver,
    matcher: Matcher,
    waiting: BTreeMap<u64, Outstanding>,
}

impl Link {
    pub fn connect(iso: &str) -> anyhow::Result<Link> {
        let driver = TcpDriver::connect(iso, LANES).with_context(|| format!("connect to {iso}"))?;
        Ok(Link {
            driver,
            matcher: Matcher::new(LANES),
            waiting: BTreeMap::new(),
        })
    }

    pub fn send(&mut self, mut out: Outstanding) -> anyhow::Result<()> {
        let m = &out.message;
        self.driver
            .send(out.lane, &m.bytes)
            .with_context(|| format!("send on connection {}", out.lane))?;
        self.matcher
            .expect(out.lane, out.key, m.stan, m.transmission, m.answer_has_stan);
        out.sent_at = Instant::now();
        self.waiting.insert(out.key, out);
        Ok(())
    }

    /// The next answer or closed connection, waiting until `deadline` at most.
    pub fn next(&mut self, deadline: Instant) -> anyhow::Result<Option<LinkEvent>> {
        let event = self.driver.next_event(deadline).context("the TCP driver")?;
        Ok(event.map(|event| match event {
            DriverEvent::Answer { lane, message, .. } => {
                let reply = Reply::read(&message);
                let found = self.matcher.take(lane, &reply.summary);
                match found.and_then(|key| self.waiting.remove(&key)) {
                    Some(out) => LinkEvent::Answered(out, reply),
                    None => LinkEvent::Unmatched { lane, reply },
                }
            }
            DriverEvent::Closed { lane, reason } => LinkEvent::Closed { lane, reason },
        }))
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// When the longest-waiting request was sent.
    pub fn oldest_sent_at(&self) -> Option<Instant> {
        self.waiting.values().map(|o| o.sent_at).min()
    }

    /// The requests never answered, in key (send) order.
    pub fn into_unanswered(self) -> Vec<Outstanding> {
        self.waiting.into_values().collect()
    }
}
