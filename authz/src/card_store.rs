//! The cards of a partition: every card record once, in one `Vec`, found by token (the
//! management API, transactions) and by PAN fingerprint (every network message) through two
//! indexes of 4-byte slots.
//!
//! Two hash maps (token to card, fingerprint to token) kept each record in a bucket of a
//! table that is between 44 % and 87 % full, plus a second table of 32-byte buckets: about
//! 430 bytes per card at a million cards. Dense records and slot indexes cost the record
//! and 10 to 22 bytes (see `cardcore_ledger::book::DenseMap` for the trade). A card is never
//! removed: a purged card keeps its record and its transactions.

use std::ops::Index;

use cardcore_core::{CardToken, PanFingerprint};
use cardcore_ledger::book::SlotIndex;

use crate::state::Card;

/// Every card of a partition; see the [module documentation](self).
#[derive(Debug, Default)]
pub struct CardStore {
    cards: Vec<Card>,
    by_token: SlotIndex,
    by_pan: SlotIndex,
}

/// Why a card was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    Token(CardToken),
    Fingerprint,
}

impl std::fmt::Display for Duplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Duplicate::Token(token) => write!(f, "card {token} exists already"),
            // The fingerprint is not shown: it identifies a PAN.
            Duplicate::Fingerprint => f.write_str("a card with this PAN exists already"),
        }
    }
}

impl CardStore {
    /// The cards of a snapshot; refused if two share a token or a fingerprint.
    pub fn from_cards(cards: Vec<Card>) -> Result<CardStore, Duplicate> {
        let mut store = CardStore {
            cards: Vec::with_capacity(cards.len()),
            by_token: SlotIndex::with_capacity(cards.len()),
            by_pan: SlotIndex::with_capacity(cards.len()),
        };
        for card in cards {
            store.insert(card)?;
        }
        Ok(store)
    }

    pub fn len(&self) -> usize {
        self.cards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }

    fn slot(&self, token: &CardToken) -> Option<usize> {
        let cards = &self.cards;
        self.by_token.find(token, |slot| cards[slot].token)
    }

    pub fn get(&self, token: &CardToken) -> Option<&Card> {
        self.slot(token).map(|slot| &self.cards[slot])
    }

    pub fn get_mut(&mut self, token: &CardToken) -> Option<&mut Card> {
        let slot = self.slot(token)?;
        Some(&mut self.cards[slot])
    }

    /// The card with this PAN fingerprint: how a network message finds its card.
    pub fn by_fingerprint(&self, fingerprint: &PanFingerprint) -> Option<&Card> {
        let cards = &self.cards;
        let slot = self
            .by_pan
            .find(fingerprint, |slot| cards[slot].fingerprint)?;
        Some(&cards[slot])
    }

    /// Adds a card whose token and PAN are new; a duplicate changes nothing.
    pub fn insert(&mut self, card: Card) -> Result<(), Duplicate> {
        if self.slot(&card.token).is_some() {
            return Err(Duplicate::Token(card.token));
        }
        if self.by_fingerprint(&card.fingerprint).is_some() {
            return Err(Duplicate::Fingerprint);
        }
        let slot = self.cards.len();
        let (token, fingerprint) = (card.token, card.fingerprint);
        self.cards.push(card);
        let cards = &self.cards;
        self.by_token.insert(slot, &token, |s| cards[s].token);
        self.by_pan
            .insert(slot, &fingerprint, |s| cards[s].fingerprint);
        Ok(())
    }

    /// Cards in the order they were issued.
    pub fn values(&self) -> std::slice::Iter<'_, Card> {
        self.cards.iter()
    }

    /// Cards in the order they were issued, to update fields derived from others. The
    /// token and the PAN fingerprint are the indexes' keys: changing either breaks lookup.
    pub(crate) fn values_mut(&mut self) -> std::slice::IterMut<'_, Card> {
        self.cards.iter_mut()
    }
}

impl Index<&CardToken> for CardStore {
    type Output = Card;

    /// Panics when there is no such card: for callers that have just checked.
    fn index(&self, token: &CardToken) -> &Card {
        self.get(token).expect("the card was looked up before")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcore_core::pin::{Cvv2Value, PinVerificationValue};
    use cardcore_core::{
        CardLimits, CardStatus, CardType, Currency, Expiry, Granularity, Pan, Permissions,
        ProfileId, Timestamp, TxnId,
    };
    use serde::Serialize;

    fn card(n: u64) -> Card {
        let pan = Pan::parse("4000001234567899").unwrap();
        Card {
            token: CardToken(u128::from(n) << 70 | 5),
            profile: ProfileId(n / 2 + 1),
            fingerprint: PanFingerprint(u128::from(n) * 0x9E37_79B9 + 1),
            masked_pan: pan.masked(),
            status: CardStatus::Active,
            expiry: Expiry::new(2030, 12).unwrap(),
            currency: Currency::EUR,
            card_type: CardType::Physical,
            smart_conversion: true,
            permissions: Permissions::all_enabled(),
            limits: None,
            pin_tries: 0,
            pvv: Some(PinVerificationValue::from_bytes([7; 32])),
            cvv2: Some(Cvv2Value::from_bytes([9; 32])),
            issued: Timestamp(1_000),
            modified: Timestamp(2_000),
            last_txn: Some(TxnId(42)),
            expired_from: None,
        }
    }

    #[test]
    fn cards_are_found_by_token_and_fingerprint_and_never_twice() {
        let mut store = CardStore::default();
        for n in 0..5_000 {
            store.insert(card(n)).unwrap();
        }
        assert_eq!(store.len(), 5_000);
        let c = card(1_234);
        assert_eq!(store.get(&c.token).map(|x| x.profile), Some(c.profile));
        assert_eq!(store[&c.token].fingerprint, c.fingerprint);
        assert_eq!(
            store.by_fingerprint(&c.fingerprint).map(|x| x.token),
            Some(c.token)
        );
        assert!(store.get(&CardToken(3)).is_none());
        assert!(store.by_fingerprint(&PanFingerprint(0)).is_none());
        if let Some(x) = store.get_mut(&c.token) {
            x.pin_tries = 2;
        }
        assert_eq!(store[&c.token].pin_tries, 2);

        assert_eq!(store.insert(card(7)), Err(Duplicate::Token(card(7).token)));
        let mut same_pan = card(9_999);
        same_pan.fingerprint = card(7).fingerprint;
        assert_eq!(store.insert(same_pan), Err(Duplicate::Fingerprint));
        assert_eq!(store.len(), 5_000);
        let order: Vec<CardToken> = store.values().take(2).map(|x| x.token).collect();
        assert_eq!(order, [card(0).token, card(1).token], "issue order");

        let again = CardStore::from_cards(store.values().cloned().collect()).unwrap();
        assert_eq!(again.len(), store.len());
        assert!(CardStore::from_cards(vec![card(1), card(1)]).is_err());
    }

    /// The card record as it was serialised before it was made compact: journals and
    /// snapshots written then must read the same, and new ones must not differ.
    #[derive(Serialize)]
    struct CardAsWritten {
        token: CardToken,
        profile: ProfileId,
        fingerprint: PanFingerprint,
        masked_pan: String,
        status: CardStatus,
        expiry: Expiry,
        currency: Currency,
        card_type: CardType,
        smart_conversion: bool,
        permissions: Permissions,
        limits: Option<CardLimits>,
        pin_tries: u8,
        pvv: Option<PinVerificationValue>,
        cvv2: Option<Cvv2Value>,
        issued: Timestamp,
        modified: Timestamp,
        last_txn: Option<TxnId>,
    }

    #[test]
    fn the_serialised_card_is_unchanged() {
        let mut limits = CardLimits::none(Currency::GBP);
        limits.set(Granularity::Daily, Some(5_000));
        for limits in [None, Some(limits)] {
            let mut c = card(3);
            c.limits = limits.map(Box::new);
            let old = CardAsWritten {
                token: c.token,
                profile: c.profile,
                fingerprint: c.fingerprint,
                masked_pan: c.masked_pan.to_string(),
                status: c.status,
                expiry: c.expiry,
                currency: c.currency,
                card_type: c.card_type,
                smart_conversion: c.smart_conversion,
                permissions: c.permissions,
                limits,
                pin_tries: c.pin_tries,
                pvv: c.pvv,
                cvv2: c.cvv2,
                issued: c.issued,
                modified: c.modified,
                last_txn: c.last_txn,
            };
            let bytes = bincode::serialize(&old).unwrap();
            assert_eq!(bincode::serialize(&c).unwrap(), bytes);
            let back: Card = bincode::deserialize(&bytes).unwrap();
            assert_eq!(back.masked_pan, c.masked_pan);
            assert_eq!(back.limits, c.limits);
            assert_eq!(bincode::serialize(&back).unwrap(), bytes);
        }
    }
}
