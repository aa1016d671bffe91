//! A ready partition for benchmarks, tests and examples: one profile with a balance and a
//! card, and requests for it. Built through the public operations, so what it measures is
//! what the engine does.

use std::sync::Arc;

use cardcore_core::pin::{Cvv2Key, PinVerificationKey, ZonePinKey};
use cardcore_core::{
    CardStatus, CardType, Channel, Currency, Expiry, Mcc, Money, Pan, PanKey, ProfileId,
    ProfileStatus, TimeZone, Timestamp, TransactionType,
};

use crate::app::{AppData, SharedAppData};
use crate::management::IssueCard;
use crate::partition::{Lifecycle, Partition, PartitionConfig};
use crate::pipeline::Keys;
use crate::request::{MessageKey, MessageKind, Request, ShortText};

/// The PAN of the fixture's card (a test number that passes the Luhn check).
pub const FIXTURE_PAN: &str = "4000001234567899";
/// When the fixture's clock starts: 2026-01-15T10:00:00Z.
pub const FIXTURE_START: Timestamp = Timestamp(1_768_471_200_000);

/// Keys for tests and benchmarks only.
pub fn test_keys() -> (Keys, PanKey) {
    let keys = Keys {
        zone_pin_key: ZonePinKey::new(
            *b"\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10",
        )
        .expect("a fixed, non-weak test key"),
        pin_verification_key: PinVerificationKey::new([7; 32]),
        cvv2_key: Cvv2Key::new([9; 32]),
    };
    (keys, PanKey::new([3; 16]))
}

/// A partition with profile 1, a balance of `funds` and one active card in its currency.
#[derive(Debug)]
pub struct Fixture {
    pub partition: Partition,
    pub profile: ProfileId,
    pub pan: Pan,
    next_stan: u32,
}

/// A partition of its own (index 0 of 1) with the test keys, default lifecycle and no
/// state: what the fixture starts from, and what measurements of bare state build on.
pub fn empty_partition(txn_capacity: usize) -> Partition {
    let (keys, pan_key) = test_keys();
    let config = PartitionConfig {
        index: 0,
        partitions: 1,
        keys,
        pan_key,
        lifecycle: Lifecycle::default(),
        txn_capacity,
    };
    Partition::new(config, Arc::new(SharedAppData::new(AppData::default())))
}

impl Fixture {
    pub fn new(funds: Money, txn_capacity: usize) -> Fixture {
        let mut partition = empty_partition(txn_capacity);
        let profile = ProfileId(1);
        let pan = Pan::parse(FIXTURE_PAN).expect("the fixture PAN is valid");
        let setup = |p: &mut Partition| -> Result<(), crate::EngineError> {
            p.create_profile(profile, ProfileStatus::Active, TimeZone::UTC, FIXTURE_START)?;
            p.top_up(profile, funds)?;
            p.issue_card(
                IssueCard {
                    profile,
                    pan,
                    pin: None,
                    cvv2: None,
                    expiry: Expiry::new(2030, 12).expect("valid expiry"),
                    status: CardStatus::Active,
                    currency: funds.currency,
                    card_type: CardType::Physical,
                    smart_conversion: true,
                    locked: Vec::new(),
                },
                FIXTURE_START,
            )?;
            Ok(())
        };
        setup(&mut partition).expect("the fixture sets up");
        partition.discard_pending();
        Fixture {
            partition,
            profile,
            pan,
            next_stan: 0,
        }
    }

    /// A contactless purchase authorisation with a fresh message key.
    pub fn purchase(&mut self, amount: Money) -> Request {
        self.next_stan = self.next_stan.wrapping_add(1);
        Request {
            kind: MessageKind::Authorization,
            repeat: false,
            key: MessageKey {
                stan: self.next_stan % 1_000_000,
                transmission: u64::from(self.next_stan / 1_000_000),
                acquirer: 400_001,
            },
            pan: self.pan,
            amount,
            txn_type: TransactionType::PosPurchase,
            channel: Channel::PosContactless,
            mcc: Mcc(5411),
            pin_block: None,
            cvv2: None,
            expiry: None,
            rrn: ShortText::new(b"000000000001"),
            merchant: ShortText::new(b"FIXTURE GROCER"),
            country: ShortText::new(b"GB"),
            original: None,
            final_amount_minor: None,
            pre_auth: false,
        }
    }

    /// A full reversal of `of`, with a fresh message key.
    pub fn reversal(&mut self, of: &Request) -> Request {
        let mut r = self.purchase(of.amount);
        r.kind = MessageKind::Reversal;
        r.original = Some(of.key);
        r.final_amount_minor = Some(0);
        r
    }
}

/// EUR minor units, for brevity in benchmarks.
pub fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}
