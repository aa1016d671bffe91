//! What the traffic is made of: the kinds of message the generator sends and how often,
//! the amounts, merchants and card-data variants it draws.
//!
//! Every probability is an integer weight or a per-mille chance, drawn with [`Dice`], so a
//! seed always gives the same traffic.

use cardcore_core::{Currency, Mcc};

use super::zipf::Dice;

/// One kind of message the generator can send, the unit of [`TrafficMix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// 0100 purchase through any channel (chip, contactless, e-commerce, wallet,
    /// magstripe, manual entry), with variants: wrong PIN, wrong CVV2, wrong expiry, large
    /// amount, blocked MCC, another currency.
    Purchase,
    /// 0100 cash withdrawal at an ATM (PIN, sometimes wrong or missing).
    AtmWithdrawal,
    /// 0100 pre-authorisation (hotel, car rental), held 30 days.
    PreAuth,
    /// 0200 single-message purchase, posted at once.
    SingleMessage,
    /// 0120 stand-in advice: approved by the network already.
    StandIn,
    /// A refund: 0100 then cleared later (a credit on clearing), or 0200 credited at once.
    Refund,
    /// 0100 with DE 90 adding to an open authorisation.
    Incremental,
    /// 0220 clearing of an open authorisation: the same amount, lower or higher.
    Clearing,
    /// 0400 reversal to a lower final amount.
    PartialReversal,
    /// 0400 reversal to zero.
    FullReversal,
    /// A message sent before, again (sometimes with the repeat MTI).
    Duplicate,
    /// A frame whose message does not parse (bad bitmap, truncated, non-digit amount).
    Malformed,
    /// A purchase with a valid PAN no card has.
    UnknownCard,
    /// A purchase on a card that cannot pay: frozen, blocked, inactive, expired, or of a
    /// suspended or inactive profile.
    TroubledCard,
}

impl Action {
    pub const COUNT: usize = 14;
    pub const ALL: [Action; Action::COUNT] = [
        Action::Purchase,
        Action::AtmWithdrawal,
        Action::PreAuth,
        Action::SingleMessage,
        Action::StandIn,
        Action::Refund,
        Action::Incremental,
        Action::Clearing,
        Action::PartialReversal,
        Action::FullReversal,
        Action::Duplicate,
        Action::Malformed,
        Action::UnknownCard,
        Action::TroubledCard,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Purchase => "purchase",
            Action::AtmWithdrawal => "atm_withdrawal",
            Action::PreAuth => "pre_auth",
            Action::SingleMessage => "single_message",
            Action::StandIn => "stand_in_advice",
            Action::Refund => "refund",
            Action::Incremental => "incremental",
            Action::Clearing => "clearing",
            Action::PartialReversal => "partial_reversal",
            Action::FullReversal => "full_reversal",
            Action::Duplicate => "duplicate",
            Action::Malformed => "malformed",
            Action::UnknownCard => "unknown_card",
            Action::TroubledCard => "troubled_card",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// Whether the action acts on an earlier authorisation.
    pub fn is_follow_up(self) -> bool {
        matches!(
            self,
            Action::Incremental | Action::Clearing | Action::PartialReversal | Action::FullReversal
        )
    }
}

/// How often each [`Action`] is chosen, as integer weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficMix {
    weights: [u32; Action::COUNT],
}

impl Default for TrafficMix {
    /// Per thousand messages: 430 purchases, 300 clearings and the rest spread over the
    /// other kinds (docs/load.md has the table and the reasons).
    fn default() -> TrafficMix {
        let mut mix = TrafficMix {
            weights: [0; Action::COUNT],
        };
        for (action, weight) in [
            (Action::Purchase, 430),
            (Action::AtmWithdrawal, 60),
            (Action::PreAuth, 20),
            (Action::SingleMessage, 30),
            (Action::StandIn, 15),
            (Action::Refund, 20),
            (Action::Incremental, 25),
            (Action::Clearing, 300),
            (Action::PartialReversal, 20),
            (Action::FullReversal, 30),
            (Action::Duplicate, 20),
            (Action::Malformed, 5),
            (Action::UnknownCard, 5),
            (Action::TroubledCard, 20),
        ] {
            mix.set(action, weight);
        }
        mix
    }
}

impl TrafficMix {
    /// A mix of one kind only (tests, focused benchmarks).
    pub fn only(action: Action) -> TrafficMix {
        let mut mix = TrafficMix {
            weights: [0; Action::COUNT],
        };
        mix.set(action, 1);
        mix
    }

    pub fn weight(&self, action: Action) -> u32 {
        self.weights[action as usize]
    }

    pub fn set(&mut self, action: Action, weight: u32) -> &mut Self {
        self.weights[action as usize] = weight;
        self
    }

    /// Whether some action that starts a transaction has a weight: follow-ups, duplicates
    /// and malformed frames all fall back on a purchase when they have nothing to act on.
    pub fn is_usable(&self) -> bool {
        self.weights.iter().any(|&w| w > 0)
    }

    pub(crate) fn pick(&self, dice: &mut Dice) -> Action {
        dice.weighted(&self.weights)
            .map_or(Action::Purchase, |i| Action::ALL[i])
    }
}

/// A purchase amount in euro cents: mostly small, with a long tail.
pub(crate) fn purchase_eur_cents(dice: &mut Dice) -> i64 {
    const BUCKETS: [(u64, u64, u32); 5] = [
        (100, 999, 30),
        (1_000, 4_999, 40),
        (5_000, 19_999, 22),
        (20_000, 99_999, 7),
        (100_000, 300_000, 1),
    ];
    let weights: Vec<u32> = BUCKETS.iter().map(|b| b.2).collect();
    let (low, high, _) = BUCKETS[dice.weighted(&weights).unwrap_or(0)];
    dice.between(low, high) as i64
}

/// An amount meant to run into funds or limits: 800 to 5000 euros.
pub(crate) fn large_eur_cents(dice: &mut Dice) -> i64 {
    dice.between(80_000, 500_000) as i64
}

/// ATM amounts in euros before scaling to the card's currency.
pub(crate) const ATM_EUROS: [i64; 6] = [20, 50, 100, 150, 200, 300];

/// Where a purchase happens: DE 43 name/city, country, MCC.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Merchant {
    pub name: &'static str,
    pub mcc: Mcc,
}

pub(crate) const STORE_MERCHANTS: [Merchant; 6] = [
    Merchant {
        name: "FRESH MARKET/HIGH STREET",
        mcc: Mcc(5411),
    },
    Merchant {
        name: "CAFE CENTRAL/OLD TOWN",
        mcc: Mcc(5812),
    },
    Merchant {
        name: "FUEL STOP 24/RING ROAD",
        mcc: Mcc(5541),
    },
    Merchant {
        name: "CITY PHARMACY/MAIN SQUARE",
        mcc: Mcc(5912),
    },
    Merchant {
        name: "METRO TRANSIT/CENTRAL",
        mcc: Mcc(4111),
    },
    Merchant {
        name: "BOOK CORNER/UNIVERSITY",
        mcc: Mcc(5942),
    },
];

pub(crate) const ONLINE_MERCHANTS: [Merchant; 3] = [
    Merchant {
        name: "ONLINE STORE/WWW",
        mcc: Mcc(5999),
    },
    Merchant {
        name: "STREAMING PLUS/WWW",
        mcc: Mcc(4899),
    },
    Merchant {
        name: "ELECTRO SHOP/WWW",
        mcc: Mcc(5732),
    },
];

pub(crate) const PRE_AUTH_MERCHANTS: [Merchant; 2] = [
    Merchant {
        name: "GRAND HOTEL/RIVERSIDE",
        mcc: Mcc(7011),
    },
    Merchant {
        name: "RENT A CAR/AIRPORT",
        mcc: Mcc(7512),
    },
];

pub(crate) const ATM_MERCHANT: Merchant = Merchant {
    name: "BANK ATM/STATION",
    mcc: Mcc::ATM,
};

/// Categories the population's spend-control rules block.
pub(crate) const BLOCKED_MERCHANTS: [Merchant; 2] = [
    Merchant {
        name: "LUCKY CASINO/PIER",
        mcc: Mcc(7995),
    },
    Merchant {
        name: "MATCH MAKERS/WWW",
        mcc: Mcc(7273),
    },
];

/// The country a card's purchases mostly happen in, from its currency.
pub(crate) fn home_country(currency: Currency) -> &'static str {
    match currency.alpha() {
        "GBP" => "GB",
        "USD" => "US",
        "JPY" => "JP",
        "CHF" => "CH",
        "SGD" => "SG",
        "KWD" => "KW",
        _ => "DE",
    }
}

/// A currency no generated profile holds and no rate converts: purchases in it must be
/// declined.
pub(crate) const FOREIGN_CURRENCY: Currency = Currency::BRL;

/// Per-mille chances of the purchase variants and card-data details.
pub(crate) mod chance {
    /// A purchase for a large amount (funds and limit exhaustion).
    pub const LARGE_AMOUNT: u32 = 30;
    /// A purchase in a blocked merchant category.
    pub const BLOCKED_MCC: u32 = 10;
    /// The expiry in the message differs from the card's.
    pub const WRONG_EXPIRY: u32 = 10;
    /// A multi-currency profile's card pays in another of its balances' currencies.
    pub const OTHER_BALANCE_CURRENCY: u32 = 50;
    /// A multi-currency profile's card pays in a currency it holds no balance in.
    pub const FOREIGN_CURRENCY: u32 = 5;
    /// A PIN entered, it is wrong.
    pub const WRONG_PIN: u32 = 20;
    /// A CVV2 sent, it is wrong.
    pub const WRONG_CVV2: u32 = 20;
    /// A chip purchase verified by PIN.
    pub const CHIP_PIN: u32 = 800;
    /// A magstripe purchase verified by PIN.
    pub const MAGSTRIPE_PIN: u32 = 300;
    /// A card-not-present purchase with a CVV2.
    pub const ECOM_CVV2: u32 = 950;
    /// An ATM withdrawal without a PIN.
    pub const ATM_NO_PIN: u32 = 30;
    /// An ATM withdrawal with a wrong PIN.
    pub const ATM_WRONG_PIN: u32 = 30;
    /// A refund sent as 0200 (credited at once) rather than 0100 then clearing.
    pub const REFUND_SINGLE_MESSAGE: u32 = 300;
    /// A duplicate sent with the repeat MTI rather than byte for byte.
    pub const REPEAT_MTI: u32 = 500;
    /// A clearing for a lower amount than held.
    pub const CLEAR_LOWER: u32 = 250;
    /// A clearing for a higher amount than held.
    pub const CLEAR_HIGHER: u32 = 150;
}

/// Contactless purchases above this many euro cents ask for a PIN.
pub(crate) const CONTACTLESS_PIN_ABOVE_EUR_CENTS: i64 = 5_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip_and_count_matches() {
        for (i, action) in Action::ALL.into_iter().enumerate() {
            assert_eq!(action as usize, i);
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("nonsense"), None);
    }

    #[test]
    fn default_mix_sums_to_a_thousand_and_picks_by_weight() {
        let mix = TrafficMix::default();
        let total: u32 = Action::ALL.iter().map(|&a| mix.weight(a)).sum();
        assert_eq!(total, 1_000);
        let only = TrafficMix::only(Action::Clearing);
        let mut dice = Dice::new(4);
        assert!((0..100).all(|_| only.pick(&mut dice) == Action::Clearing));
        let mut none = TrafficMix::only(Action::Purchase);
        none.set(Action::Purchase, 0);
        assert!(!none.is_usable());
        assert_eq!(none.pick(&mut dice), Action::Purchase);
    }

    #[test]
    fn amounts_stay_in_their_ranges() {
        let mut dice = Dice::new(8);
        for _ in 0..1_000 {
            assert!((100..=300_000).contains(&purchase_eur_cents(&mut dice)));
            assert!((80_000..=500_000).contains(&large_eur_cents(&mut dice)));
        }
    }
}
