//! A partition's state as one serialisable image: for snapshots, and for the state hash that
//! proves a replay rebuilt exactly what was there before.

use cardcore_ledger::book::{Book, BookSnapshot};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::card_store::CardStore;
use crate::partition::Partition;
use crate::request::MessageKey;
use crate::state::{Answer, Card, Profile, TxnRecord};

/// Everything a partition holds, in a deterministic order (sorted by id), so two equal
/// states serialise to equal bytes.
#[derive(Debug, Serialize, Deserialize)]
pub struct PartitionImage {
    profiles: Vec<Profile>,
    cards: Vec<Card>,
    txns: Vec<TxnRecord>,
    answers: Vec<(MessageKey, Answer)>,
    next_txn: u64,
    next_card: u64,
    postings: Vec<(cardcore_core::TxnId, crate::funds::TxnMoney)>,
    book: BookSnapshot,
}

impl PartitionImage {
    pub fn of(p: &Partition) -> PartitionImage {
        let mut profiles: Vec<Profile> = p.profiles.values().cloned().collect();
        profiles.sort_by_key(|x| x.id);
        let mut cards: Vec<Card> = p.cards.values().cloned().collect();
        cards.sort_by_key(|c| c.token);
        let mut txns: Vec<TxnRecord> = p.txns.values().copied().collect();
        txns.sort_by_key(|t| t.id);
        let mut answers: Vec<(MessageKey, Answer)> =
            p.answers.iter().map(|(k, a)| (*k, *a)).collect();
        answers.sort_by_key(|(k, _)| *k);
        PartitionImage {
            profiles,
            cards,
            txns,
            answers,
            next_txn: p.next_txn,
            next_card: p.next_card,
            postings: {
                let mut v: Vec<_> = p.postings.iter().map(|(k, m)| (*k, m.clone())).collect();
                v.sort_by_key(|(k, _)| *k);
                v
            },
            book: p.book.to_snapshot(),
        }
    }

    /// Replaces the partition's state with this image and rebuilds the indexes. A book
    /// image that does not hold together, or two cards with one token or PAN, are refused
    /// and nothing changes.
    pub fn restore_into(self, p: &mut Partition) -> Result<(), String> {
        let cards = CardStore::from_cards(self.cards).map_err(|e| e.to_string())?;
        p.book = Book::from_snapshot(self.book.clone())?;
        p.book.reserve_txns(p.config.txn_capacity);
        p.postings = self.postings.into_iter().collect();
        p.profiles = self.profiles.into_iter().map(|x| (x.id, x)).collect();
        p.cards = cards;
        p.derive_expiries(|_| true);
        p.txns.clear();
        p.expiries.clear();
        for record in &self.txns {
            if let (Some(at), cardcore_core::TransactionState::InProgress) =
                (record.purge_time, record.state)
            {
                p.expiries.push(std::cmp::Reverse((at, record.id)));
            }
            p.txns
                .insert(*record)
                .map_err(|h| format!("transaction {} where {} was next", h.id, h.next))?;
        }
        // Refilled, not replaced: the table keeps the room reserved for it.
        p.answers.clear();
        p.answers.extend(self.answers);
        p.next_txn = self.next_txn;
        p.next_card = self.next_card;
        Ok(())
    }

    /// A hash of the whole state: equal states, equal hashes, whatever order things were
    /// inserted in.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        let without_book = (
            &self.profiles,
            &self.cards,
            &self.txns,
            &self.answers,
            self.next_txn,
            self.next_card,
        );
        // Plain data always serialises.
        hasher.update(bincode::serialize(&without_book).unwrap_or_default());
        hasher.update(bincode::serialize(&self.postings).unwrap_or_default());
        match Book::from_snapshot(self.book.clone()) {
            Ok(book) => hasher.update(book.state_hash()),
            Err(e) => hasher.update(e.as_bytes()),
        }
        hasher.finalize().into()
    }
}
