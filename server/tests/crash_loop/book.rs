//! The client's own records, kept only from answers it actually read: the simulator's
//! [`ExpectedLedger`] (every balance to the minor unit) and a [`TxnBook`] (every
//! transaction the server named in an answer, with the state and amount it must have).
//!
//! Answers are applied in send order ([`Models::resolve`]): the server answers pipelined
//! requests in any order, but every message of one profile went out on one connection in
//! order, which is the order the engine applied them in.

use std::collections::{BTreeMap, HashMap};

use cardcore_core::iso8583::parse;
use cardcore_core::{Currency, Money, Timestamp, TransactionState, TxnId};
use cardcore_sim::load::matcher::{read_answer, AnswerSummary};
use cardcore_sim::load::{Effect, ExpectedLedger, HoldTtl, OpenMode};

use super::http::EngineTxn;

/// Problems listed in full in a failure message; further ones are only counted.
pub const PROBLEMS_KEPT_MAX: usize = 25;

/// What the client read in one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub summary: AnswerSummary,
    /// DE 62: the engine's transaction id.
    pub txn: Option<TxnId>,
    /// DE 38.
    pub approval_code: Option<Vec<u8>>,
}

impl Reply {
    pub fn read(bytes: &[u8]) -> Reply {
        let summary = read_answer(bytes);
        let (txn, approval_code) = match parse(bytes) {
            Ok(m) => (m.issuer_txn_id(), m.get(38).map(<[u8]>::to_vec)),
            Err(_) => (None, None),
        };
        Reply {
            summary,
            txn,
            approval_code,
        }
    }

    pub fn approved(&self) -> bool {
        self.summary.approved()
    }

    /// DE 39, DE 62 and DE 38: what a duplicate must answer again.
    pub fn describe(&self) -> String {
        let approval = self
            .approval_code
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let txn = self.txn.map(|t| t.to_string()).unwrap_or_default();
        format!(
            "DE 39 {} DE 62 {txn:?} DE 38 {approval:?}",
            self.summary.code_text()
        )
    }
}

/// Mismatches between what the client was told and what the server shows.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    pub count: u64,
    pub kept: Vec<String>,
}

impl Problems {
    pub fn push(&mut self, problem: String) {
        self.count += 1;
        if self.kept.len() < PROBLEMS_KEPT_MAX {
            self.kept.push(problem);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn report(&self) -> String {
        let mut out = format!("{} problem(s):\n", self.count);
        for p in &self.kept {
            out.push_str("  - ");
            out.push_str(p);
            out.push('\n');
        }
        out
    }
}

/// What one transaction must look like on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnExpect {
    pub state: TransactionState,
    pub currency: Currency,
    /// Asked for: the first amount plus approved increments.
    pub requested_minor: i64,
    /// Authorised now (the hold of a debit).
    pub authorised_minor: i64,
    /// Posted by clearing or by a single-message request.
    pub cleared_minor: Option<i64>,
    pub pre_auth: bool,
    /// When the engine releases the hold, if still in progress.
    pub expires_at: Timestamp,
}

impl TxnExpect {
    /// The amount the server shows for the transaction in its state (`current_amount` of
    /// the HTTP views): cleared when completed, authorised in progress, requested else.
    pub fn stands_at(&self) -> Money {
        let minor = match self.state {
            TransactionState::Completed => self.cleared_minor.unwrap_or(self.authorised_minor),
            TransactionState::InProgress => self.authorised_minor,
            _ => self.requested_minor,
        };
        Money::new(minor, self.currency)
    }
}

/// Counts of what the book took in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BookStats {
    pub approvals: u64,
    pub declines_recorded: u64,
    pub clearings_approved: u64,
    pub expired: u64,
}

/// Every transaction an answer named. See the module documentation.
#[derive(Debug)]
pub struct TxnBook {
    ttl: HoldTtl,
    now: Timestamp,
    /// The generator's transaction number → the engine's id, once an answer named it.
    by_generated: HashMap<u64, TxnId>,
    txns: BTreeMap<TxnId, TxnExpect>,
    pub stats: BookStats,
    pub problems: Problems,
}

impl TxnBook {
    pub fn new(now: Timestamp, ttl: HoldTtl) -> TxnBook {
        TxnBook {
            ttl,
            now,
            by_generated: HashMap::new(),
            txns: BTreeMap::new(),
            stats: BookStats::default(),
            problems: Problems::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// Transactions the client saw approved (every state but declined).
    pub fn approved_len(&self) -> usize {
        self.txns
            .values()
            .filter(|t| t.state != TransactionState::Declined)
            .count()
    }

    /// Overwrites one expectation: for the check that a wrong book is caught.
    pub fn replace(&mut self, id: TxnId, expect: TxnExpect) {
        self.txns.insert(id, expect);
    }

    pub fn iter(&self) -> impl Iterator<Item = (TxnId, TxnExpect)> + '_ {
        self.txns.iter().map(|(&id, &t)| (id, t))
    }

    /// Applies the answer to one message.
    pub fn apply(&mut self, effect: &Effect, reply: &Reply) {
        match *effect {
            Effect::Open {
                txn,
                amount,
                pre_auth,
                mode,
                ..
            } => self.open(txn, amount, pre_auth, mode, reply),
            Effect::Increment { txn, amount } if reply.approved() => {
                self.follow_up(txn, reply, "incremental", |t, now, ttl| {
                    increment(t, amount, now, ttl)
                })
            }
            Effect::Clear { txn, amount } if reply.approved() => {
                self.stats.clearings_approved += 1;
                self.follow_up(txn, reply, "clearing", |t, _, _| clear(t, amount))
            }
            Effect::Reverse { txn, final_amount } if reply.approved() => {
                self.follow_up(txn, reply, "reversal", |t, _, _| reverse(t, final_amount))
            }
            _ => {}
        }
    }

    /// The engine clock moves to `to`: holds that fall due are released.
    pub fn advance_clock(&mut self, to: Timestamp) {
        self.now = self.now.max(to);
        for t in self.txns.values_mut() {
            if t.state == TransactionState::InProgress && t.expires_at <= self.now {
                t.state = TransactionState::Cancelled;
                self.stats.expired += 1;
            }
        }
    }

    fn open(&mut self, txn: u64, amount: Money, pre_auth: bool, mode: OpenMode, reply: &Reply) {
        let approved = reply.approved();
        let Some(id) = reply.txn else {
            if approved {
                self.problems
                    .push(format!("an approval without DE 62 ({})", reply.describe()));
            }
            return;
        };
        let minor = amount.amount_minor;
        let state = match (approved, mode) {
            (false, _) => TransactionState::Declined,
            (true, OpenMode::Post) => TransactionState::Completed,
            (true, _) => TransactionState::InProgress,
        };
        let expect = TxnExpect {
            state,
            currency: amount.currency,
            requested_minor: minor,
            authorised_minor: minor,
            cleared_minor: (state == TransactionState::Completed).then_some(minor),
            pre_auth,
            expires_at: self.now.plus_ms(self.ttl_ms(pre_auth)),
        };
        if self.txns.insert(id, expect).is_some() {
            self.problems.push(format!(
                "transaction {id} was named by two new transactions"
            ));
        }
        self.by_generated.insert(txn, id);
        if approved {
            self.stats.approvals += 1;
        } else {
            self.stats.declines_recorded += 1;
        }
    }

    fn ttl_ms(&self, pre_auth: bool) -> i64 {
        if pre_auth {
            self.ttl.pre_auth_ms
        } else {
            self.ttl.hold_ms
        }
    }

    /// An approved follow-up: it must name the transaction its authorisation created, and
    /// the change must be one the transaction's state allows.
    fn follow_up(
        &mut self,
        txn: u64,
        reply: &Reply,
        what: &str,
        change: impl FnOnce(&mut TxnExpect, Timestamp, HoldTtl) -> Result<(), String>,
    ) {
        let Some(&id) = self.by_generated.get(&txn) else {
            self.problems.push(format!(
                "an approved {what} of an authorisation the client never saw approved ({})",
                reply.describe()
            ));
            return;
        };
        if reply.txn != Some(id) {
            self.problems.push(format!(
                "an approved {what} of transaction {id} answered {}",
                reply.describe()
            ));
        }
        let (now, ttl) = (self.now, self.ttl);
        let Some(t) = self.txns.get_mut(&id) else {
            return;
        };
        if let Err(why) = change(t, now, ttl) {
            self.problems
                .push(format!("an approved {what} of transaction {id}: {why}"));
        }
    }

    /// Compares the book with the server's transactions. Returns how many approved
    /// transactions were checked.
    pub fn compare(&mut self, engine: &BTreeMap<TxnId, EngineTxn>) -> u64 {
        let mut approved_checked = 0;
        for (&id, want) in &self.txns {
            let Some(got) = engine.get(&id) else {
                self.problems.push(format!(
                    "transaction {id} ({:?}, {}) is missing on the server",
                    want.state,
                    want.stands_at()
                ));
                continue;
            };
            if want.state != TransactionState::Declined {
                approved_checked += 1;
            }
            let amount_matters = want.state != TransactionState::Declined;
            if got.state != want.state || (amount_matters && got.amount != want.stands_at()) {
                self.problems.push(format!(
                    "transaction {id}: the client expects {:?} at {}, the server shows {:?} at {}",
                    want.state,
                    want.stands_at(),
                    got.state,
                    got.amount
                ));
            }
        }
        for (id, got) in engine {
            if !self.txns.contains_key(id) {
                self.problems.push(format!(
                    "transaction {id} ({:?}, {}) is on the server but no answer the client read named it",
                    got.state, got.amount
                ));
            }
        }
        approved_checked
    }
}

fn increment(t: &mut TxnExpect, amount: Money, now: Timestamp, ttl: HoldTtl) -> Result<(), String> {
    if t.state != TransactionState::InProgress || t.currency != amount.currency {
        return Err(format!("not possible in {:?}", t.state));
    }
    t.requested_minor += amount.amount_minor;
    t.authorised_minor += amount.amount_minor;
    // An incremental authorisation restarts the hold's lifetime.
    let ttl_ms = if t.pre_auth {
        ttl.pre_auth_ms
    } else {
        ttl.hold_ms
    };
    t.expires_at = now.plus_ms(ttl_ms);
    Ok(())
}

fn clear(t: &mut TxnExpect, amount: Money) -> Result<(), String> {
    match t.state {
        // A cancelled (reversed or expired) authorisation is still cleared.
        TransactionState::InProgress | TransactionState::Cancelled => {
            t.state = TransactionState::Completed;
            t.cleared_minor = Some(amount.amount_minor);
            Ok(())
        }
        TransactionState::Completed => Err("it was cleared already: a second posting".into()),
        other => Err(format!("not possible in {other:?}")),
    }
}

fn reverse(t: &mut TxnExpect, final_amount: Money) -> Result<(), String> {
    match t.state {
        // Approved, changes nothing.
        TransactionState::Cancelled => Ok(()),
        TransactionState::InProgress if final_amount.amount_minor <= t.authorised_minor => {
            t.authorised_minor = final_amount.amount_minor;
            if final_amount.amount_minor == 0 {
                t.state = TransactionState::Cancelled;
            }
            Ok(())
        }
        other => Err(format!("not possible in {other:?} for {final_amount}")),
    }
}

/// The expected ledger and the transaction book, fed in send order.
#[derive(Debug)]
pub struct Models {
    pub ledger: ExpectedLedger,
    pub book: TxnBook,
    /// The next seq to apply; answers to later ones wait in `ready`.
    next_seq: u64,
    ready: BTreeMap<u64, (Effect, Reply)>,
}

impl Models {
    pub fn new(ledger: ExpectedLedger, book: TxnBook) -> Models {
        Models {
            ledger,
            book,
            next_seq: 0,
            ready: BTreeMap::new(),
        }
    }

    /// Takes the answer to message `seq`; applies it and every answer it was holding back.
    pub fn resolve(&mut self, seq: u64, effect: Effect, reply: Reply) {
        self.ready.insert(seq, (effect, reply));
        while let Some((effect, reply)) = self.ready.remove(&self.next_seq) {
            self.ledger.apply(&effect, reply.approved());
            self.book.apply(&effect, &reply);
            self.next_seq += 1;
        }
    }

    pub fn now(&self) -> Timestamp {
        self.ledger.engine_now()
    }

    /// Both models' clocks move to `to`. Every answer must be applied first.
    pub fn advance_clock(&mut self, to: Timestamp) {
        assert!(self.ready.is_empty(), "a clock jump with answers held back");
        self.ledger.advance_clock(to);
        self.book.advance_clock(to);
    }
}
