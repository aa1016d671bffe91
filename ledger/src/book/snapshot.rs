//! Snapshots and the state hash.
//!
//! A [`Book`] serializes (serde) as a [`BookSnapshot`]: every map as a list sorted by key,
//! so the same state always gives the same bytes whatever the hash maps' order. Loading a
//! snapshot rebuilds the indexes and checks every invariant: a corrupt snapshot is refused,
//! never half-loaded. [`Book::state_hash`] is SHA-256 over the bincode form of the
//! snapshot, so two books have the same hash exactly when they hold the same state.

use cardcore_core::{BalanceId, CardToken, Currency, ProfileId, TimeZone, TxnId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::usage::{CardUsage, TypeUsage};
use super::usage_record::UsageRecord;
use super::{Balance, Book, CurrencyTotals, Hold, ProfileBook};

/// The format version, bumped when the snapshot's shape changes.
pub const SNAPSHOT_VERSION: u32 = 2;

/// A profile's own data in a snapshot (its balances are in [`BookSnapshot::balances`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSnapshot {
    pub profile: ProfileId,
    pub time_zone: TimeZone,
    pub usage_currency: Currency,
    pub usage: [TypeUsage; 2],
}

/// Everything a book holds, each list sorted by key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSnapshot {
    pub version: u32,
    pub next_balance_id: u64,
    pub balance_id_step: u64,
    pub profiles: Vec<ProfileSnapshot>,
    pub balances: Vec<Balance>,
    pub holds: Vec<(TxnId, Hold)>,
    pub cards: Vec<(CardToken, CardUsage)>,
    pub usage_records: Vec<(TxnId, UsageRecord)>,
    pub totals: Vec<CurrencyTotals>,
}

impl Book {
    /// The book as a snapshot, in canonical (sorted) order.
    pub fn to_snapshot(&self) -> BookSnapshot {
        let mut profiles: Vec<ProfileSnapshot> = self
            .profiles
            .iter()
            .map(|(id, p)| ProfileSnapshot {
                profile: *id,
                time_zone: p.time_zone,
                usage_currency: p.usage_currency,
                usage: p.usage,
            })
            .collect();
        profiles.sort_unstable_by_key(|p| p.profile);
        let mut balances: Vec<Balance> = self.balances.values().copied().collect();
        balances.sort_unstable_by_key(|b| b.id);
        BookSnapshot {
            version: SNAPSHOT_VERSION,
            next_balance_id: self.next_balance_id,
            balance_id_step: self.balance_id_step,
            profiles,
            balances,
            holds: sorted(self.holds.iter()),
            cards: sorted(self.cards.iter()),
            usage_records: sorted(self.usage_records.iter()),
            totals: self.totals.clone(),
        }
    }

    /// Rebuilds a book from a snapshot, refusing one whose invariants do not hold.
    pub fn from_snapshot(s: BookSnapshot) -> Result<Book, String> {
        if s.version != SNAPSHOT_VERSION {
            return Err(format!(
                "snapshot version {} (expected {SNAPSHOT_VERSION})",
                s.version
            ));
        }
        let mut book = Book::with_balance_ids(s.next_balance_id, s.balance_id_step);
        for p in s.profiles {
            let entry = ProfileBook {
                time_zone: p.time_zone,
                usage_currency: p.usage_currency,
                balances: Vec::new(),
                usage: p.usage,
            };
            if book.profiles.insert(p.profile, entry).is_some() {
                return Err(format!("profile {} twice", p.profile));
            }
        }
        // Balances are sorted by id, which is the order they were opened in.
        for b in s.balances {
            let Some(entry) = book.profiles.get_mut(&b.profile) else {
                return Err(format!("balance {} of unknown profile {}", b.id, b.profile));
            };
            entry.balances.push((b.currency, b.id));
            if book.balances.insert(b.id, b).is_some() {
                return Err(format!("balance {} twice", b.id));
            }
        }
        book.holds = unique(s.holds, "hold")?;
        book.cards = unique_dense(s.cards, "card")?;
        book.usage_records = unique(s.usage_records, "usage record")?;
        let mut totals = s.totals;
        totals.sort_by_key(|t| t.currency);
        totals.dedup_by_key(|t| t.currency);
        book.totals = totals;
        book.check_invariants().map_err(|e| e.to_string())?;
        if let Some(max) = book.balances.keys().map(|id: &BalanceId| id.0).max() {
            if book.next_balance_id <= max {
                return Err(format!(
                    "next balance id {} is in use",
                    book.next_balance_id
                ));
            }
        }
        Ok(book)
    }

    /// A deterministic digest of everything the book holds: equal books, equal hashes.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        // Writing into a hasher cannot fail, and every field serializes in bincode.
        if let Err(e) = bincode::serialize_into(&mut hasher, &self.to_snapshot()) {
            hasher.update(e.to_string().as_bytes());
        }
        hasher.finalize().into()
    }
}

impl Serialize for Book {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_snapshot().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Book {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let snapshot = BookSnapshot::deserialize(d)?;
        Book::from_snapshot(snapshot).map_err(serde::de::Error::custom)
    }
}

fn sorted<'a, K: Ord + Copy + 'a, V: Copy + 'a>(
    items: impl Iterator<Item = (&'a K, &'a V)>,
) -> Vec<(K, V)> {
    let mut out: Vec<(K, V)> = items.map(|(k, v)| (*k, *v)).collect();
    out.sort_unstable_by_key(|(k, _)| *k);
    out
}

fn unique_dense<K, V>(items: Vec<(K, V)>, what: &str) -> Result<super::DenseMap<K, V>, String>
where
    K: std::hash::Hash + Eq + Copy + std::fmt::Debug,
{
    let mut map = super::DenseMap::with_capacity(items.len());
    for (k, v) in items {
        if map.insert(k, v).is_some() {
            return Err(format!("{what} {k:?} twice"));
        }
    }
    Ok(map)
}

fn unique<K, V>(items: Vec<(K, V)>, what: &str) -> Result<super::hasher::IdMap<K, V>, String>
where
    K: std::hash::Hash + Eq + std::fmt::Debug,
{
    let mut map = super::hasher::IdMap::default();
    map.reserve(items.len());
    for (k, v) in items {
        if map.contains_key(&k) {
            return Err(format!("{what} {k:?} twice"));
        }
        map.insert(k, v);
    }
    Ok(map)
}
