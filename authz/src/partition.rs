//! A partition: the single-threaded owner of a set of profiles, with their cards, balances,
//! holds, limit usage and transactions. It applies commands in order, with no locks; every
//! change is an event that is applied here and handed to the journal.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cardcore_core::decline::ResponseCode;
use cardcore_core::{
    CardToken, PanFingerprint, PanKey, ProfileId, Timestamp, TransactionState, TxnId,
};
use cardcore_ledger::book::{Book, LedgerEvent};

use crate::app::SharedAppData;
use crate::events::{encode_partition, EngineEvent};
use crate::pipeline::Keys;
use crate::request::MessageKey;
use crate::state::{Answer, Card, Profile, TxnRecord};

/// Hold lifetimes and other settings of the transaction lifecycle.
#[derive(Clone, Copy, Debug)]
pub struct Lifecycle {
    /// An uncleared hold is released after this long (7 days).
    pub hold_ttl_ms: i64,
    /// The same for pre-authorisations (30 days).
    pub pre_auth_hold_ttl_ms: i64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            hold_ttl_ms: 7 * Timestamp::MS_PER_DAY,
            pre_auth_hold_ttl_ms: 30 * Timestamp::MS_PER_DAY,
        }
    }
}

/// What a partition was built with.
#[derive(Clone, Debug)]
pub struct PartitionConfig {
    pub index: u32,
    /// How many partitions the engine runs (for ids unique across partitions).
    pub partitions: u32,
    pub keys: Keys,
    pub pan_key: PanKey,
    pub lifecycle: Lifecycle,
    /// Room reserved up front for transactions, so that recording one does not reallocate.
    pub txn_capacity: usize,
}

/// Transaction ids carry their partition: `partition * TXN_ID_STRIDE + n`.
pub const TXN_ID_STRIDE: u64 = 1_000_000_000_000;

/// The state of one partition.
#[derive(Debug)]
pub struct Partition {
    pub(crate) config: PartitionConfig,
    pub(crate) app: Arc<SharedAppData>,
    pub(crate) profiles: HashMap<ProfileId, Profile>,
    pub(crate) cards: HashMap<CardToken, Card>,
    pub(crate) card_by_pan: HashMap<PanFingerprint, CardToken>,
    /// Transactions of each card, oldest first.
    pub(crate) card_txns: HashMap<CardToken, Vec<TxnId>>,
    pub(crate) txns: HashMap<TxnId, TxnRecord>,
    /// The transaction each network message created or referred to (for DE 90 matching).
    pub(crate) txn_by_key: HashMap<MessageKey, TxnId>,
    /// The answer to each network message (for duplicates).
    pub(crate) answers: HashMap<MessageKey, Answer>,
    /// Uncleared holds by purge time.
    pub(crate) expiries: BTreeSet<(Timestamp, TxnId)>,
    pub(crate) book: Book,
    /// What finished transactions moved for good (debits and refund credits).
    pub(crate) postings: HashMap<TxnId, crate::funds::TxnMoney>,
    pub(crate) next_txn: u64,
    pub(crate) next_card: u64,
    /// Events of the command in progress.
    pub(crate) pending: Vec<EngineEvent>,
    /// The profile the pending events belong to.
    pub(crate) pending_profile: ProfileId,
    /// The encoded pending events, reused between commands.
    pub(crate) encoded: Vec<u8>,
}

impl Partition {
    pub fn new(config: PartitionConfig, app: Arc<SharedAppData>) -> Partition {
        let capacity = config.txn_capacity;
        // Balance ids are unique across partitions: each partition takes one residue class.
        let book =
            Book::with_balance_ids(u64::from(config.index) + 1, u64::from(config.partitions));
        Partition {
            next_txn: u64::from(config.index) * TXN_ID_STRIDE + 1,
            next_card: 1,
            config,
            app,
            profiles: HashMap::new(),
            cards: HashMap::new(),
            card_by_pan: HashMap::new(),
            card_txns: HashMap::new(),
            txns: HashMap::with_capacity(capacity),
            txn_by_key: HashMap::with_capacity(capacity),
            answers: HashMap::with_capacity(capacity),
            expiries: BTreeSet::new(),
            book,
            postings: HashMap::new(),
            pending: Vec::with_capacity(16),
            pending_profile: ProfileId(0),
            encoded: Vec::with_capacity(4096),
        }
    }

    pub fn index(&self) -> u32 {
        self.config.index
    }

    /// Applies an event and queues it for the journal.
    pub(crate) fn emit(&mut self, event: EngineEvent) {
        self.apply(&event);
        self.pending.push(event);
    }

    /// Takes the events of the command just handled, encoded for the journal; `None` when the
    /// command changed nothing.
    pub fn take_encoded(&mut self) -> Option<&[u8]> {
        if self.pending.is_empty() {
            return None;
        }
        let result = encode_partition(self.pending_profile, &self.pending, &mut self.encoded);
        self.pending.clear();
        // Encoding plain data into a Vec cannot fail; if it ever did, losing durability
        // silently would be worse than stopping.
        result.expect("engine events always encode");
        Some(&self.encoded)
    }

    /// Drops the events of the command just handled without journaling them (replay).
    pub fn discard_pending(&mut self) {
        self.pending.clear();
    }

    /// Applies one event: the only way state changes, live and on replay.
    pub fn apply(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::ProfileCreated(p) => {
                self.pending_profile = p.id;
                self.profiles.insert(p.id, p.clone());
            }
            EngineEvent::ProfileChanged {
                profile,
                status,
                time_zone,
            } => {
                if let Some(p) = self.profiles.get_mut(profile) {
                    p.status = *status;
                    p.time_zone = *time_zone;
                }
            }
            EngineEvent::ProfileLimitSet {
                profile,
                limit_type,
                limit,
            } => {
                if let Some(p) = self.profiles.get_mut(profile) {
                    p.limits[limit_type.index()] = *limit;
                }
            }
            EngineEvent::CardIssued(card) => self.apply_card_issued(card),
            EngineEvent::CardStatusChanged { card, status, at } => {
                self.with_card(card, *at, |c| c.status = *status);
            }
            EngineEvent::PermissionsChanged {
                card,
                permissions,
                at,
            } => {
                self.with_card(card, *at, |c| c.permissions = *permissions);
            }
            EngineEvent::CardLimitsSet { card, limits, at } => {
                self.with_card(card, *at, |c| c.limits = *limits);
            }
            EngineEvent::PinTriesSet { card, count } => {
                if let Some(c) = self.cards.get_mut(card) {
                    c.pin_tries = *count;
                }
            }
            EngineEvent::Txn(record) => self.apply_txn(record),
            EngineEvent::Answered { key, answer } => {
                self.answers.insert(*key, *answer);
                if let Some(txn) = answer.txn {
                    self.txn_by_key.entry(*key).or_insert(txn);
                }
            }
            EngineEvent::Ledger(e) => self.apply_ledger(e),
        }
    }

    fn apply_ledger(&mut self, event: &LedgerEvent) {
        match self.book.apply(event) {
            Ok(()) => self.note_postings(event),
            // Only a corrupt journal or a bug gets here; the book changed nothing.
            Err(e) => tracing::error!(error = %e, "ledger event does not apply"),
        }
    }

    fn with_card(&mut self, token: &CardToken, at: Timestamp, change: impl FnOnce(&mut Card)) {
        if let Some(c) = self.cards.get_mut(token) {
            change(c);
            c.modified = at;
        }
    }

    fn apply_card_issued(&mut self, card: &Card) {
        self.card_by_pan.insert(card.fingerprint, card.token);
        self.cards.insert(card.token, card.clone());
        self.card_txns.entry(card.token).or_default();
        self.next_card += 1;
    }

    fn apply_txn(&mut self, record: &TxnRecord) {
        let id = record.id;
        if let Some(old) = self.txns.get(&id) {
            if let Some(t) = old.purge_time {
                self.expiries.remove(&(t, id));
            }
        } else {
            self.card_txns.entry(record.card).or_default().push(id);
            self.txn_by_key.insert(record.key, id);
            self.next_txn = self.next_txn.max(id.0 + 1);
        }
        if record.state == TransactionState::InProgress {
            if let Some(t) = record.purge_time {
                self.expiries.insert((t, id));
            }
        }
        self.txns.insert(id, *record);
    }

    /// Allocates the next transaction id (applied by the `Txn` event that records it).
    pub(crate) fn peek_txn_id(&self) -> TxnId {
        TxnId(self.next_txn)
    }

    pub fn profile(&self, id: ProfileId) -> Option<&Profile> {
        self.profiles.get(&id)
    }

    pub fn card(&self, token: CardToken) -> Option<&Card> {
        self.cards.get(&token)
    }

    pub fn card_by_fingerprint(&self, fp: PanFingerprint) -> Option<&Card> {
        self.card_by_pan.get(&fp).and_then(|t| self.cards.get(t))
    }

    pub fn txn(&self, id: TxnId) -> Option<&TxnRecord> {
        self.txns.get(&id)
    }

    pub fn book(&self) -> &Book {
        &self.book
    }

    /// Transactions of a card, newest first, `offset` skipped, at most `limit`.
    pub fn card_transactions(
        &self,
        token: CardToken,
        offset: usize,
        limit: usize,
    ) -> Vec<&TxnRecord> {
        self.card_txns
            .get(&token)
            .map(|ids| {
                ids.iter()
                    .rev()
                    .skip(offset)
                    .take(limit)
                    .filter_map(|id| self.txns.get(id))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    pub fn cards(&self) -> impl Iterator<Item = &Card> {
        self.cards.values()
    }

    pub fn transactions(&self) -> impl Iterator<Item = &TxnRecord> {
        self.txns.values()
    }

    /// Records the answer to a message, so a duplicate gets it again.
    pub(crate) fn answer(&mut self, key: MessageKey, answer: Answer) -> Answer {
        self.emit(EngineEvent::Answered { key, answer });
        answer
    }

    /// An answer that changes nothing and records no transaction.
    pub(crate) fn bare_answer(code: ResponseCode) -> Answer {
        Answer {
            response_code: code,
            decline: None,
            txn: None,
            approval_code: None,
            approved_amount: None,
        }
    }
}

/// Builds an approval code: six characters from the transaction id, so replay reproduces it
/// and two transactions of a partition never share one within 36^6 approvals.
pub fn approval_code(id: TxnId) -> [u8; 6] {
    const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    // A multiplicative permutation of the id space modulo 36^6 spreads consecutive ids.
    const SPACE: u64 = 36u64.pow(6);
    const MULTIPLIER: u64 = 1_299_709; // prime, coprime with 36
    let mut n = (id.0 % SPACE) * MULTIPLIER % SPACE;
    let mut code = [b'0'; 6];
    for slot in code.iter_mut().rev() {
        *slot = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    code
}
