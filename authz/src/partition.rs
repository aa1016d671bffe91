//! A partition: the single-threaded owner of a set of profiles, with their cards, balances,
//! holds, limit usage and transactions. It applies commands in order, with no locks; every
//! change is an event that is applied here and handed to the journal.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use cardcore_core::decline::ResponseCode;
use cardcore_core::{
    CardToken, PanFingerprint, PanKey, ProfileId, Timestamp, TransactionState, TxnId,
};
use cardcore_ledger::book::{Authorised, Book, IdMap, LedgerEvent};

use crate::app::{AppData, SharedAppData};
use crate::card_store::CardStore;
use crate::events::{EngineEvent, RecordWriter};
use crate::pipeline::Keys;
use crate::request::MessageKey;
use crate::state::{Answer, Card, Profile, TxnRecord};
use crate::txn_table::TxnTable;

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
    /// The room is written to once at start, so that recording one takes no page fault
    /// either: resident memory grows by about 1.4 KiB per reserved transaction.
    pub txn_capacity: usize,
}

/// Maps keyed by what the network sends (STAN, transmission time, acquirer) use a
/// flooding-resistant keyed hash; maps keyed by the engine's own ids use the fast [`IdMap`].
pub type NetworkMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// Transaction ids carry their partition: `partition * TXN_ID_STRIDE + n`.
pub const TXN_ID_STRIDE: u64 = 1_000_000_000_000;

/// The state of one partition.
#[derive(Debug)]
pub struct Partition {
    pub(crate) config: PartitionConfig,
    pub(crate) app: Arc<SharedAppData>,
    /// The application data version this partition decided with last, and that version:
    /// loaded again only when a new one is published.
    app_seen: (u64, Arc<AppData>),
    pub(crate) profiles: IdMap<ProfileId, Profile>,
    /// Found by token and by PAN fingerprint.
    pub(crate) cards: CardStore,
    pub(crate) txns: TxnTable,
    /// The answer to each network message (for duplicates), which also names the
    /// transaction the message created or referred to (for DE 90 matching).
    pub(crate) answers: NetworkMap<MessageKey, Answer>,
    /// Uncleared holds by purge time, earliest first. Entries are only added; stale ones
    /// are skipped when they come up (see `expire_due`), so recording one never removes.
    pub(crate) expiries: BinaryHeap<Reverse<(Timestamp, TxnId)>>,
    pub(crate) book: Book,
    /// What finished transactions moved for good (debits and refund credits).
    pub(crate) postings: IdMap<TxnId, crate::funds::TxnMoney>,
    pub(crate) next_txn: u64,
    pub(crate) next_card: u64,
    /// The profile the pending events belong to (any profile of this partition routes
    /// the record back here on replay).
    pub(crate) pending_profile: ProfileId,
    /// The journal record of the commands in progress, encoded as events are emitted.
    pub(crate) record: RecordWriter,
    /// The seq of the last journal record this partition appended (0: none yet).
    pub(crate) last_journaled: u64,
    /// Changes refused since the partition was built (a decision the book would not plan,
    /// an event it would not apply, a transaction id out of order): each one is a bug or a
    /// corrupt journal, reported as a broken invariant. Not part of the state: replay
    /// refuses the same events again.
    pub(crate) refused_changes: u64,
}

impl Partition {
    pub fn new(config: PartitionConfig, app: Arc<SharedAppData>) -> Partition {
        let capacity = config.txn_capacity;
        // Balance ids are unique across partitions: each partition takes one residue class.
        let mut book =
            Book::with_balance_ids(u64::from(config.index) + 1, u64::from(config.partitions));
        book.reserve_txns(capacity);
        let app_seen = (app.version(), app.snapshot());
        let first_txn = u64::from(config.index) * TXN_ID_STRIDE + 1;
        let mut answers = NetworkMap::with_capacity_and_hasher(capacity, Default::default());
        let mut expiries = BinaryHeap::with_capacity(capacity);
        touch_reserved(&mut answers, &mut expiries, capacity);
        Partition {
            app_seen,
            next_txn: first_txn,
            next_card: 1,
            config,
            app,
            profiles: IdMap::default(),
            cards: CardStore::default(),
            txns: TxnTable::with_capacity(first_txn, capacity),
            answers,
            expiries,
            book,
            postings: IdMap::default(),
            pending_profile: ProfileId(0),
            record: RecordWriter::with_capacity(4096),
            last_journaled: 0,
            refused_changes: 0,
        }
    }

    /// The current application data: the version kept from the last message unless a newer
    /// one was published since.
    pub(crate) fn app_data(&mut self) -> Arc<AppData> {
        let version = self.app.version();
        if version != self.app_seen.0 {
            self.app_seen = (version, self.app.snapshot());
        }
        Arc::clone(&self.app_seen.1)
    }

    pub fn index(&self) -> u32 {
        self.config.index
    }

    /// Applies an event and adds it to the command's journal record.
    pub(crate) fn emit(&mut self, event: EngineEvent) {
        self.apply(&event);
        self.record.push(self.pending_profile, &event);
    }

    /// [`Partition::emit`] of [`EngineEvent::Txn`], without copying the record into an event.
    pub(crate) fn emit_txn(&mut self, record: &TxnRecord) {
        self.apply_txn(record);
        self.record.push_txn(self.pending_profile, record);
    }

    /// [`Partition::emit`] of [`LedgerEvent::Authorised`], without copying it into an event.
    pub(crate) fn emit_authorised(&mut self, approval: &Authorised) {
        match self.book.apply_authorised(approval) {
            // An approval moves nothing for good: there are no postings to note.
            Ok(()) => {}
            Err(e) => self.refused_event(&e),
        }
        self.record.push_authorised(self.pending_profile, approval);
    }

    /// Takes the events of the command just handled, encoded for the journal; `None` when the
    /// command changed nothing.
    pub fn take_encoded(&mut self) -> Option<&[u8]> {
        self.record.finish()
    }

    /// Bytes of journal record written since the last `take_encoded`.
    pub fn pending_record_len(&self) -> usize {
        self.record.len()
    }

    /// Drops the events of the command just handled without journaling them.
    pub fn discard_pending(&mut self) {
        self.record.discard();
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
                let mut zone_moved = false;
                if let Some(p) = self.profiles.get_mut(profile) {
                    zone_moved = p.time_zone != *time_zone;
                    p.status = *status;
                    p.time_zone = *time_zone;
                }
                if zone_moved {
                    // A pass over the partition's cards, for a rare management change.
                    self.derive_expiries(|c| c.profile == *profile);
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
                self.with_card(card, *at, |c| c.limits = limits.map(Box::new));
            }
            EngineEvent::PinTriesSet { card, count } => {
                if let Some(c) = self.cards.get_mut(card) {
                    c.pin_tries = *count;
                }
            }
            EngineEvent::Txn(record) => self.apply_txn(record),
            EngineEvent::Answered { key, answer } => {
                self.answers.insert(*key, *answer);
            }
            EngineEvent::Ledger(e) => self.apply_ledger(e),
        }
    }

    fn apply_ledger(&mut self, event: &LedgerEvent) {
        match self.book.apply(event) {
            Ok(()) => self.note_postings(event),
            Err(e) => self.refused_event(&e),
        }
    }

    /// Only a corrupt journal or a bug gets here; the book changed nothing.
    fn refused_event(&mut self, e: &cardcore_ledger::book::BookError) {
        self.refused_changes += 1;
        tracing::error!(error = %e, "ledger event does not apply");
    }

    fn with_card(&mut self, token: &CardToken, at: Timestamp, change: impl FnOnce(&mut Card)) {
        if let Some(c) = self.cards.get_mut(token) {
            change(c);
            c.modified = at;
        }
    }

    fn apply_card_issued(&mut self, card: &Card) {
        let mut card = card.clone();
        if let Some(p) = self.profiles.get(&card.profile) {
            card.derive_expired_from(p.time_zone);
        }
        // Only a corrupt journal or a bug issues a card twice; the first one stays.
        if let Err(e) = self.cards.insert(card) {
            tracing::error!(error = %e, "card issue does not apply");
        }
        self.next_card += 1;
    }

    /// Works out again when the cards `which` selects expire, in their profile's zone (after
    /// a zone change, or a snapshot load).
    pub(crate) fn derive_expiries(&mut self, which: impl Fn(&Card) -> bool) {
        let zones = &self.profiles;
        for card in self.cards.values_mut().filter(|c| which(c)) {
            if let Some(p) = zones.get(&card.profile) {
                card.derive_expired_from(p.time_zone);
            }
        }
    }

    fn apply_txn(&mut self, record: &TxnRecord) {
        let id = record.id;
        let old_purge = match self.txns.get(&id) {
            Some(old) => old.purge_time,
            None => {
                if let Some(card) = self.cards.get_mut(&record.card) {
                    card.last_txn = Some(id);
                }
                self.answers.insert(record.key, Answer::of(record));
                self.next_txn = self.next_txn.max(id.0 + 1);
                None
            }
        };
        if record.state == TransactionState::InProgress && record.purge_time != old_purge {
            if let Some(t) = record.purge_time {
                self.expiries.push(Reverse((t, id)));
            }
        }
        if let Err(hole) = self.txns.insert(*record) {
            // Only a corrupt journal gets here: ids are handed out in order.
            self.refused_changes += 1;
            tracing::error!(id = %hole.id, next = %hole.next, "transaction id out of order");
        }
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
        self.cards.by_fingerprint(&fp)
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
        let mut next = self.cards.get(&token).and_then(|c| c.last_txn);
        let newest_first = std::iter::from_fn(|| {
            let record = self.txns.get(&next?)?;
            next = record.previous_of_card;
            Some(record)
        });
        newest_first.skip(offset).take(limit).collect()
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    /// Cards in the order they were issued.
    pub fn cards(&self) -> std::slice::Iter<'_, Card> {
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

/// Writes to the room reserved for `capacity` answers and expiries once, so that recording
/// one takes no page fault; both are left empty, their memory kept.
fn touch_reserved(
    answers: &mut NetworkMap<MessageKey, Answer>,
    expiries: &mut BinaryHeap<Reverse<(Timestamp, TxnId)>>,
    capacity: usize,
) {
    let answer = Partition::bare_answer(ResponseCode::APPROVED);
    for n in 0..capacity as u64 {
        let key = MessageKey {
            stan: 0,
            transmission: n,
            acquirer: 0,
        };
        answers.insert(key, answer);
        expiries.push(Reverse((Timestamp(0), TxnId(n))));
    }
    answers.clear();
    expiries.clear();
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
