//! The traffic generator: a seeded, endless sequence of ISO 8583 messages on a
//! [`Population`], with the meaning of each one for the expected ledger.
//!
//! The sequence depends only on the population, the [`TrafficConfig`] and the seed, never
//! on the engine's answers: the same seed gives the same bytes, which is what makes a run
//! reproducible and lets two targets be compared. Follow-ups therefore act on what was
//! *sent*: a clearing may refer to an authorisation that was declined, and is answered `25`
//! like on a real network.
//!
//! Identifiers are deterministic: STANs count 1..=999999 and wrap, DE 7 comes from a
//! simulated clock that moves `sim_ms_per_message` per message (so STAN + DE 7 never repeat
//! within a run), the RRN is built from both, DE 32 is the scenario acquirer. Each message
//! carries a lane key (its profile) so a driver can keep every message of one profile on
//! one connection, in order.

use std::collections::VecDeque;

use cardcore_core::iso8583::{Mti, TransmissionTime};
use cardcore_core::pin::ZonePinKey;
use cardcore_core::{Currency, Expiry, Money, Timestamp};

use super::encode::{corrupt, mti_of, repeat_of, EncodeError, Encoder, Malformation};
use super::mix::{self, chance, Action, Merchant, TrafficMix};
use super::population::{card_pan, scaled, Population, UNKNOWN_BIN};
use super::zipf::{Dice, Zipf, ZipfError};
use crate::scenario::traffic::{message_ids, STAN_MAX};
use crate::scenario::{
    CardMessage, ClearPin, Cvv2, EntryMode, MessageKind, OriginalRef, ProcessingType,
};

/// Open authorisations the generator remembers for follow-ups; past this the oldest is
/// left alone (its hold will expire).
pub const OPEN_TXNS_MAX: usize = 200_000;
/// Recent messages kept for duplicates.
pub const RECENT_MAX: usize = 4_096;
/// A follow-up picks among this many of the least recently used open authorisations.
const FOLLOW_UP_CHOICES: usize = 8;

/// How the traffic is shaped.
#[derive(Debug, Clone)]
pub struct TrafficConfig {
    pub seed: u64,
    pub mix: TrafficMix,
    /// Zipf exponent of card popularity (0 uniform, 1 classic).
    pub zipf_exponent: f64,
    /// How far the simulated clock (DE 7) moves per message.
    pub sim_ms_per_message: i64,
    /// Jumps of the engine clock that make holds expire; `None` for none.
    pub clock_jumps: Option<ClockJumps>,
    /// Messages that must pass between two messages on one transaction.
    pub follow_up_min_gap: u64,
    /// The zone PIN key the target decrypts DE 52 with.
    pub zone_pin_key: ZonePinKey,
}

/// Every `every_messages` messages the clock jumps forward by `by_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockJumps {
    pub every_messages: u64,
    pub by_ms: i64,
}

impl TrafficConfig {
    /// The default shape: [`TrafficMix::default`], Zipf 0.8, 10 ms of simulated time per
    /// message, an 8-day jump every 20 000 messages, follow-ups at least 100 messages after
    /// the message before them.
    pub fn new(seed: u64, zone_pin_key: ZonePinKey) -> TrafficConfig {
        TrafficConfig {
            seed,
            mix: TrafficMix::default(),
            zipf_exponent: 0.8,
            sim_ms_per_message: 10,
            clock_jumps: Some(ClockJumps {
                every_messages: 20_000,
                by_ms: 8 * Timestamp::MS_PER_DAY,
            }),
            follow_up_min_gap: 100,
            zone_pin_key,
        }
    }
}

/// Why a generator could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeneratorError {
    #[error("card popularity: {0}")]
    Zipf(#[from] ZipfError),
    #[error("the traffic mix gives every kind of message a weight of zero")]
    EmptyMix,
    #[error("sim_ms_per_message must be 1 to 1000, got {0}")]
    SimStep(i64),
    #[error("clock jumps need every_messages >= 1 and by_ms >= 1")]
    ClockJumps,
    #[error("the population has no card that can pay")]
    NoUsableCard,
}

/// What the generator produces next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficEvent {
    Message(PlannedMessage),
    /// Every message sent so far must be answered before the engine clock moves to `to`.
    ClockJump {
        to: Timestamp,
    },
}

/// One message to send and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMessage {
    /// 0 for the first message of a run, then 1, 2 ...
    pub seq: u64,
    /// The ISO 8583 message, without the TCP length prefix.
    pub bytes: Vec<u8>,
    /// Messages with the same lane key must reach the engine in order (the profile index).
    pub lane_key: u64,
    pub mti: Mti,
    /// DE 11 and DE 7 of the message, to match its answer.
    pub stan: u32,
    pub transmission: [u8; 10],
    /// False when the answer cannot carry the STAN (a frame whose bitmap is unreadable).
    pub answer_has_stan: bool,
    pub action: Action,
    pub effect: Effect,
}

/// What an approval of a message does to the expected ledger. Transactions are numbered by
/// the generator (`txn`), profiles by their index in the population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A new transaction.
    Open {
        txn: u64,
        profile: u32,
        amount: Money,
        credit: bool,
        pre_auth: bool,
        mode: OpenMode,
    },
    /// Adds `amount` to the authorisation.
    Increment { txn: u64, amount: Money },
    /// Clears the transaction for `amount`.
    Clear { txn: u64, amount: Money },
    /// Reverses the transaction to `final_amount`.
    Reverse { txn: u64, final_amount: Money },
    /// Changes nothing even when approved: duplicates, malformed frames, unknown cards.
    Nothing,
}

/// How a new transaction takes its money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// 0100: a hold (none for a credit).
    Hold,
    /// 0200: posted at once.
    Post,
    /// 0120: a hold whatever the funds.
    StandIn,
}

/// A card as the generator uses it.
#[derive(Debug, Clone)]
struct GenCard {
    profile: u32,
    pan: cardcore_core::Pan,
    pin: ClearPin,
    cvv2: Cvv2,
    expiry: Expiry,
    currency: Currency,
    /// The profile's balance currencies, when it has more than one (its cards do not
    /// convert, so they may pay in any of them).
    other_currencies: Vec<Currency>,
}

/// An authorisation the generator may follow up.
#[derive(Debug, Clone)]
struct OpenTxn {
    txn: u64,
    profile: u32,
    root: Box<CardMessage>,
    /// What was asked for so far: the original amount, increments, partial reversals.
    authorised_minor: i64,
    credit: bool,
    /// The seq of the last message about this transaction.
    touched: u64,
}

/// A message kept for duplicates.
#[derive(Debug, Clone)]
struct Recent {
    seq: u64,
    bytes: Vec<u8>,
    mti: Mti,
    lane_key: u64,
    stan: u32,
    transmission: [u8; 10],
}

/// What a builder made, before the common bookkeeping.
struct Built {
    bytes: Vec<u8>,
    lane_key: u64,
    mti: Mti,
    stan: u32,
    transmission: [u8; 10],
    answer_has_stan: bool,
    effect: Effect,
    /// Kept for duplicates.
    remember: bool,
}

/// The generator. See the module documentation.
#[derive(Debug)]
pub struct TrafficGenerator {
    config: TrafficConfig,
    dice: Dice,
    cards: Vec<GenCard>,
    /// Card indices in popularity order, for the Zipf draw.
    popular: Vec<usize>,
    troubled: Vec<usize>,
    zipf: Zipf,
    encoder: Encoder,
    open: VecDeque<OpenTxn>,
    recent: VecDeque<Recent>,
    seq: u64,
    next_txn: u64,
    stan: u32,
    clock: Timestamp,
    jump_done_for: Option<u64>,
}

impl TrafficGenerator {
    pub fn new(population: &Population, config: TrafficConfig) -> Result<Self, GeneratorError> {
        if !config.mix.is_usable() {
            return Err(GeneratorError::EmptyMix);
        }
        if !(1..=1_000).contains(&config.sim_ms_per_message) {
            return Err(GeneratorError::SimStep(config.sim_ms_per_message));
        }
        if let Some(j) = config.clock_jumps {
            if j.every_messages == 0 || j.by_ms < 1 {
                return Err(GeneratorError::ClockJumps);
            }
        }
        let mut dice = Dice::derived(config.seed, 2);
        let start = population.config.start;
        let (mut popular, troubled): (Vec<usize>, Vec<usize>) =
            (0..population.cards.len()).partition(|&c| population.card_is_usable(c, start));
        if popular.is_empty() {
            return Err(GeneratorError::NoUsableCard);
        }
        // Which cards are popular is itself drawn from the seed.
        dice.shuffle(&mut popular);
        let zipf = Zipf::new(popular.len(), config.zipf_exponent)?;
        Ok(TrafficGenerator {
            cards: gen_cards(population),
            popular,
            troubled,
            zipf,
            encoder: Encoder::new(config.zone_pin_key.clone()),
            open: VecDeque::new(),
            recent: VecDeque::new(),
            seq: 0,
            next_txn: 0,
            stan: 0,
            clock: start,
            jump_done_for: None,
            dice,
            config,
        })
    }

    /// The simulated clock: DE 7 of the next message.
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// Messages produced so far.
    pub fn messages(&self) -> u64 {
        self.seq
    }

    /// The next message, or a clock jump before it.
    pub fn next_event(&mut self) -> Result<TrafficEvent, EncodeError> {
        if let Some(jumps) = self.config.clock_jumps {
            let due = self.seq > 0 && self.seq.is_multiple_of(jumps.every_messages);
            if due && self.jump_done_for != Some(self.seq) {
                self.jump_done_for = Some(self.seq);
                self.clock = self.clock.plus_ms(jumps.by_ms);
                return Ok(TrafficEvent::ClockJump { to: self.clock });
            }
        }
        let action = self.config.mix.pick(&mut self.dice);
        let (action, built) = self.build(action)?;
        let planned = PlannedMessage {
            seq: self.seq,
            lane_key: built.lane_key,
            mti: built.mti,
            stan: built.stan,
            transmission: built.transmission,
            answer_has_stan: built.answer_has_stan,
            action,
            effect: built.effect,
            bytes: built.bytes,
        };
        if built.remember {
            self.remember(&planned);
        }
        self.seq += 1;
        self.clock = self.clock.plus_ms(self.config.sim_ms_per_message);
        Ok(TrafficEvent::Message(planned))
    }

    /// Builds `action`, or a purchase when it has nothing to act on.
    fn build(&mut self, action: Action) -> Result<(Action, Built), EncodeError> {
        let built = match action {
            Action::Incremental
            | Action::Clearing
            | Action::PartialReversal
            | Action::FullReversal => self.follow_up(action)?,
            Action::Duplicate => self.duplicate(),
            Action::Malformed => Some(self.malformed()?),
            Action::UnknownCard => Some(self.unknown_card()?),
            Action::TroubledCard => self.troubled_card()?,
            _ => Some(self.new_transaction(action)?),
        };
        match built {
            Some(built) => Ok((action, built)),
            None => Ok((Action::Purchase, self.new_transaction(Action::Purchase)?)),
        }
    }

    fn remember(&mut self, planned: &PlannedMessage) {
        if self.recent.len() == RECENT_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            seq: planned.seq,
            bytes: planned.bytes.clone(),
            mti: planned.mti,
            lane_key: planned.lane_key,
            stan: planned.stan,
            transmission: planned.transmission,
        });
    }

    fn next_ids(&mut self) -> crate::scenario::MessageIds {
        self.stan = if self.stan >= STAN_MAX {
            1
        } else {
            self.stan + 1
        };
        message_ids(self.stan, self.clock)
    }

    fn popular_card(&mut self) -> usize {
        self.popular[self.zipf.sample(&mut self.dice)]
    }

    /// Encodes a card message and wraps it with its matching keys.
    fn encoded(
        &mut self,
        message: &CardMessage,
        lane_key: u64,
        effect: Effect,
    ) -> Result<Built, EncodeError> {
        let bytes = self.encoder.encode(message)?;
        Ok(Built {
            bytes,
            lane_key,
            mti: mti_of(message.kind, false),
            stan: message.ids.stan,
            transmission: TransmissionTime::from_timestamp(message.ids.transmission_time)
                .to_digits(),
            answer_has_stan: true,
            effect,
            remember: true,
        })
    }
}

fn gen_cards(population: &Population) -> Vec<GenCard> {
    population
        .cards
        .iter()
        .map(|c| {
            let profile = &population.profiles[c.profile];
            let other_currencies = if profile.balances.len() > 1 {
                profile
                    .currencies()
                    .filter(|&cur| cur != c.currency)
                    .collect()
            } else {
                Vec::new()
            };
            GenCard {
                profile: c.profile as u32,
                pan: c.pan,
                pin: c.pin.clone(),
                cvv2: c.cvv2.clone(),
                expiry: c.expiry,
                currency: c.currency,
                other_currencies,
            }
        })
        .collect()
}

/// What a new transaction looks like before it gets its ids.
struct Draft {
    kind: MessageKind,
    card: usize,
    amount: Money,
    processing: ProcessingType,
    entry: EntryMode,
    merchant: Merchant,
    pin: Option<ClearPin>,
    cvv2: Option<Cvv2>,
    expiry: Expiry,
    /// A decline is what this message is for (wrong PIN, blocked MCC ...): do not follow
    /// it up.
    meant_to_fail: bool,
}

impl TrafficGenerator {
    fn new_transaction(&mut self, action: Action) -> Result<Built, EncodeError> {
        let card = self.popular_card();
        let draft = match action {
            Action::AtmWithdrawal => self.atm_draft(card),
            Action::PreAuth => self.pre_auth_draft(card),
            Action::SingleMessage => self.single_message_draft(card),
            Action::StandIn => self.stand_in_draft(card),
            Action::Refund => self.refund_draft(card),
            _ => self.purchase_draft(card),
        };
        self.send_draft(draft)
    }

    fn troubled_card(&mut self) -> Result<Option<Built>, EncodeError> {
        if self.troubled.is_empty() {
            return Ok(None);
        }
        let card = self.troubled[self.dice.index(self.troubled.len())];
        let mut draft = self.purchase_draft(card);
        draft.meant_to_fail = true;
        self.send_draft(draft).map(Some)
    }

    /// Gives a draft its ids, encodes it and, unless it is meant to fail, keeps it open
    /// for follow-ups.
    fn send_draft(&mut self, d: Draft) -> Result<Built, EncodeError> {
        let (pan, currency, profile) = {
            let c = &self.cards[d.card];
            (c.pan, c.currency, c.profile)
        };
        let message = CardMessage {
            kind: d.kind,
            pan,
            amount: d.amount,
            processing: d.processing,
            entry: d.entry,
            mcc: d.merchant.mcc,
            pin: d.pin,
            cvv2: d.cvv2,
            expiry: d.expiry,
            merchant: d.merchant.name.to_owned(),
            country: mix::home_country(currency).to_owned(),
            ids: self.next_ids(),
            original: None,
        };
        let txn = self.next_txn;
        self.next_txn += 1;
        let credit = d.processing == ProcessingType::Refund;
        let (mode, pre_auth) = match d.kind {
            MessageKind::Financial => (OpenMode::Post, false),
            MessageKind::Advice { pre_auth } => (OpenMode::StandIn, pre_auth),
            MessageKind::Authorization { pre_auth } => (OpenMode::Hold, pre_auth),
            _ => (OpenMode::Hold, false),
        };
        let effect = Effect::Open {
            txn,
            profile,
            amount: d.amount,
            credit,
            pre_auth,
            mode,
        };
        let built = self.encoded(&message, u64::from(profile), effect)?;
        if mode != OpenMode::Post && !d.meant_to_fail {
            self.keep_open(OpenTxn {
                txn,
                profile,
                authorised_minor: d.amount.amount_minor,
                credit,
                touched: self.seq,
                root: Box::new(message),
            });
        }
        Ok(built)
    }

    fn keep_open(&mut self, txn: OpenTxn) {
        if self.open.len() == OPEN_TXNS_MAX {
            // Left to expire.
            self.open.pop_front();
        }
        self.open.push_back(txn);
    }
}

/// Drafts of each kind of new transaction.
impl TrafficGenerator {
    fn purchase_draft(&mut self, card: usize) -> Draft {
        let entry = match self.dice.below(100) {
            0..=34 => EntryMode::Chip,
            35..=64 => EntryMode::Contactless,
            65..=89 => EntryMode::Ecom,
            90..=95 => EntryMode::Wallet,
            96..=98 => EntryMode::Magstripe,
            _ => EntryMode::Manual,
        };
        let mut eur_cents = mix::purchase_eur_cents(&mut self.dice);
        let mut meant_to_fail = false;
        if self.dice.chance(chance::LARGE_AMOUNT) {
            eur_cents = mix::large_eur_cents(&mut self.dice);
        }
        let card_present = !matches!(entry, EntryMode::Ecom | EntryMode::Manual);
        let mut merchant = if card_present {
            mix::STORE_MERCHANTS[self.dice.index(mix::STORE_MERCHANTS.len())]
        } else {
            mix::ONLINE_MERCHANTS[self.dice.index(mix::ONLINE_MERCHANTS.len())]
        };
        if self.dice.chance(chance::BLOCKED_MCC) {
            merchant = mix::BLOCKED_MERCHANTS[self.dice.index(mix::BLOCKED_MERCHANTS.len())];
            meant_to_fail = true;
        }
        let (currency, foreign) = self.purchase_currency(card);
        meant_to_fail |= foreign;
        let (pin, cvv2, wrong) = self.verification(card, entry, eur_cents);
        let (expiry, wrong_expiry) = self.message_expiry(card);
        Draft {
            kind: MessageKind::Authorization { pre_auth: false },
            card,
            amount: scaled(currency, eur_cents).max_one_minor(),
            processing: ProcessingType::Purchase,
            entry,
            merchant,
            pin,
            cvv2,
            expiry,
            meant_to_fail: meant_to_fail || wrong || wrong_expiry,
        }
    }

    fn atm_draft(&mut self, card: usize) -> Draft {
        let c = &self.cards[card];
        let euros = mix::ATM_EUROS[self.dice.index(mix::ATM_EUROS.len())];
        let amount = whole_units(scaled(c.currency, euros * 100));
        let (pin, wrong) = if self.dice.chance(chance::ATM_NO_PIN) {
            (None, true)
        } else if self.dice.chance(chance::ATM_WRONG_PIN) {
            (Some(wrong_pin(&c.pin)), true)
        } else {
            (Some(c.pin.clone()), false)
        };
        Draft {
            kind: MessageKind::Authorization { pre_auth: false },
            card,
            amount,
            processing: ProcessingType::CashWithdrawal,
            entry: EntryMode::Chip,
            merchant: mix::ATM_MERCHANT,
            pin,
            cvv2: None,
            expiry: c.expiry,
            meant_to_fail: wrong,
        }
    }

    fn pre_auth_draft(&mut self, card: usize) -> Draft {
        let c = &self.cards[card];
        let eur_cents = self.dice.between(10_000, 80_000) as i64;
        let merchant = mix::PRE_AUTH_MERCHANTS[self.dice.index(mix::PRE_AUTH_MERCHANTS.len())];
        let online = self.dice.chance(300);
        let (entry, pin, cvv2) = if online {
            (EntryMode::Ecom, None, Some(c.cvv2.clone()))
        } else {
            (EntryMode::Chip, Some(c.pin.clone()), None)
        };
        Draft {
            kind: MessageKind::Authorization { pre_auth: true },
            card,
            amount: scaled(c.currency, eur_cents),
            processing: ProcessingType::Purchase,
            entry,
            merchant,
            pin,
            cvv2,
            expiry: c.expiry,
            meant_to_fail: false,
        }
    }

    fn single_message_draft(&mut self, card: usize) -> Draft {
        let c = &self.cards[card];
        let eur_cents = self.dice.between(300, 15_000) as i64;
        Draft {
            kind: MessageKind::Financial,
            card,
            amount: scaled(c.currency, eur_cents).max_one_minor(),
            processing: ProcessingType::Purchase,
            entry: EntryMode::Chip,
            merchant: mix::STORE_MERCHANTS[0],
            pin: Some(c.pin.clone()),
            cvv2: None,
            expiry: c.expiry,
            meant_to_fail: false,
        }
    }

    fn stand_in_draft(&mut self, card: usize) -> Draft {
        let c = &self.cards[card];
        let eur_cents = self.dice.between(300, 10_000) as i64;
        Draft {
            kind: MessageKind::Advice { pre_auth: false },
            card,
            amount: scaled(c.currency, eur_cents).max_one_minor(),
            processing: ProcessingType::Purchase,
            entry: EntryMode::Contactless,
            merchant: mix::STORE_MERCHANTS[self.dice.index(mix::STORE_MERCHANTS.len())],
            pin: None,
            cvv2: None,
            expiry: c.expiry,
            meant_to_fail: false,
        }
    }

    fn refund_draft(&mut self, card: usize) -> Draft {
        let c = &self.cards[card];
        let eur_cents = self.dice.between(500, 20_000) as i64;
        let kind = if self.dice.chance(chance::REFUND_SINGLE_MESSAGE) {
            MessageKind::Financial
        } else {
            MessageKind::Authorization { pre_auth: false }
        };
        Draft {
            kind,
            card,
            amount: scaled(c.currency, eur_cents).max_one_minor(),
            processing: ProcessingType::Refund,
            entry: EntryMode::Ecom,
            merchant: mix::ONLINE_MERCHANTS[self.dice.index(mix::ONLINE_MERCHANTS.len())],
            pin: None,
            cvv2: None,
            expiry: c.expiry,
            meant_to_fail: false,
        }
    }

    /// The card's currency, sometimes another balance of a multi-currency profile, rarely
    /// a currency the profile does not hold (then `true`: meant to be declined).
    fn purchase_currency(&mut self, card: usize) -> (Currency, bool) {
        let c = &self.cards[card];
        if c.other_currencies.is_empty() {
            return (c.currency, false);
        }
        if self.dice.chance(chance::FOREIGN_CURRENCY) {
            return (mix::FOREIGN_CURRENCY, true);
        }
        if self.dice.chance(chance::OTHER_BALANCE_CURRENCY) {
            let i = self.dice.index(c.other_currencies.len());
            return (c.other_currencies[i], false);
        }
        (c.currency, false)
    }

    /// PIN and CVV2 for a purchase through `entry`; `true` when one of them is wrong.
    fn verification(
        &mut self,
        card: usize,
        entry: EntryMode,
        eur_cents: i64,
    ) -> (Option<ClearPin>, Option<Cvv2>, bool) {
        let c = &self.cards[card];
        let wants_pin = match entry {
            EntryMode::Chip => self.dice.chance(chance::CHIP_PIN),
            EntryMode::Contactless => eur_cents > mix::CONTACTLESS_PIN_ABOVE_EUR_CENTS,
            EntryMode::Magstripe => self.dice.chance(chance::MAGSTRIPE_PIN),
            EntryMode::Ecom | EntryMode::Manual | EntryMode::Wallet => false,
        };
        let wants_cvv2 = matches!(entry, EntryMode::Ecom | EntryMode::Manual)
            && self.dice.chance(chance::ECOM_CVV2);
        let mut wrong = false;
        let pin = wants_pin.then(|| {
            if self.dice.chance(chance::WRONG_PIN) {
                wrong = true;
                wrong_pin(&c.pin)
            } else {
                c.pin.clone()
            }
        });
        let cvv2 = wants_cvv2.then(|| {
            if self.dice.chance(chance::WRONG_CVV2) {
                wrong = true;
                wrong_cvv2(&c.cvv2)
            } else {
                c.cvv2.clone()
            }
        });
        (pin, cvv2, wrong)
    }

    /// The card's expiry, or now and then a year later (declined as a wrong expiry).
    fn message_expiry(&mut self, card: usize) -> (Expiry, bool) {
        let expiry = self.cards[card].expiry;
        if !self.dice.chance(chance::WRONG_EXPIRY) {
            return (expiry, false);
        }
        let later = Expiry::new(expiry.year.saturating_add(1), expiry.month);
        match later {
            Ok(later) => (later, true),
            Err(_) => (expiry, false),
        }
    }
}

/// Follow-ups, duplicates, malformed frames and unknown cards.
impl TrafficGenerator {
    /// Takes one of the least recently used open authorisations that is old enough.
    fn take_open(&mut self) -> Option<OpenTxn> {
        let gap = self.config.follow_up_min_gap;
        let eligible = self
            .open
            .iter()
            .take(FOLLOW_UP_CHOICES)
            .take_while(|t| t.touched + gap <= self.seq)
            .count();
        if eligible == 0 {
            return None;
        }
        let pick = self.dice.index(eligible);
        self.open.swap(0, pick);
        self.open.pop_front()
    }

    fn follow_up(&mut self, action: Action) -> Result<Option<Built>, EncodeError> {
        let Some(mut open) = self.take_open() else {
            return Ok(None);
        };
        // A refund is only ever cleared.
        let action = if open.credit {
            Action::Clearing
        } else {
            action
        };
        let currency = open.root.amount.currency;
        let authorised = open.authorised_minor;
        let (kind, amount_minor, keep) = match action {
            Action::Incremental => {
                let added = (authorised * self.dice.between(10, 30) as i64 / 100).max(1);
                open.authorised_minor += added;
                (MessageKind::Incremental, added, true)
            }
            Action::PartialReversal if authorised > 1 => {
                let left =
                    (authorised * self.dice.between(30, 90) as i64 / 100).clamp(1, authorised - 1);
                open.authorised_minor = left;
                (MessageKind::Reversal, left, true)
            }
            Action::PartialReversal | Action::FullReversal => (MessageKind::Reversal, 0, false),
            _ => (
                MessageKind::Clearing,
                self.clearing_amount(authorised),
                false,
            ),
        };
        let amount = Money::new(amount_minor, currency);
        let message = self.follow_up_message(&open.root, kind, amount);
        let effect = match kind {
            MessageKind::Incremental => Effect::Increment {
                txn: open.txn,
                amount,
            },
            MessageKind::Reversal => Effect::Reverse {
                txn: open.txn,
                final_amount: amount,
            },
            _ => Effect::Clear {
                txn: open.txn,
                amount,
            },
        };
        let built = self.encoded(&message, u64::from(open.profile), effect)?;
        if keep {
            open.touched = self.seq;
            self.keep_open(open);
        }
        Ok(Some(built))
    }

    fn clearing_amount(&mut self, authorised: i64) -> i64 {
        let roll = self.dice.below(1000) as u32;
        let percent = if roll < chance::CLEAR_LOWER {
            self.dice.between(70, 99) as i64
        } else if roll < chance::CLEAR_LOWER + chance::CLEAR_HIGHER {
            self.dice.between(101, 120) as i64
        } else {
            100
        };
        (authorised * percent / 100).max(1)
    }

    /// Same card, merchant and channel as the root; no PIN or CVV2; the root's ids in DE 90.
    fn follow_up_message(
        &mut self,
        root: &CardMessage,
        kind: MessageKind,
        amount: Money,
    ) -> CardMessage {
        CardMessage {
            kind,
            amount,
            pin: None,
            cvv2: None,
            ids: self.next_ids(),
            original: Some(OriginalRef {
                kind: root.kind,
                ids: root.ids.clone(),
                amount: root.amount,
                approval_code: None,
                transaction_id: None,
            }),
            ..root.clone()
        }
    }

    /// An earlier message again, byte for byte or with the repeat MTI. It keeps the
    /// original's STAN and DE 7, so its answer matches like the original's.
    fn duplicate(&mut self) -> Option<Built> {
        let gap = self.config.follow_up_min_gap;
        let eligible = self
            .recent
            .iter()
            .take_while(|r| r.seq + gap <= self.seq)
            .count();
        if eligible == 0 {
            return None;
        }
        let r = &self.recent[self.dice.index(eligible)];
        let mut bytes = r.bytes.clone();
        let mut mti = r.mti;
        if let Some(repeat) = repeat_of(r.mti) {
            if self.dice.chance(chance::REPEAT_MTI) {
                bytes[..4].copy_from_slice(repeat.as_bytes());
                mti = repeat;
            }
        }
        Some(Built {
            bytes,
            lane_key: r.lane_key,
            mti,
            stan: r.stan,
            transmission: r.transmission,
            answer_has_stan: true,
            effect: Effect::Nothing,
            remember: false,
        })
    }

    fn malformed(&mut self) -> Result<Built, EncodeError> {
        let card = self.popular_card();
        let draft = self.purchase_draft(card);
        let (pan, currency, profile) = {
            let c = &self.cards[card];
            (c.pan, c.currency, c.profile)
        };
        let message = CardMessage {
            kind: draft.kind,
            pan,
            amount: draft.amount,
            processing: draft.processing,
            entry: draft.entry,
            mcc: draft.merchant.mcc,
            pin: draft.pin,
            cvv2: draft.cvv2,
            expiry: draft.expiry,
            merchant: draft.merchant.name.to_owned(),
            country: mix::home_country(currency).to_owned(),
            ids: self.next_ids(),
            original: None,
        };
        let mut built = self.encoded(&message, u64::from(profile), Effect::Nothing)?;
        let how = Malformation::ALL[self.dice.index(Malformation::ALL.len())];
        // A message the encoder built always parses and has DE 4.
        if let Ok(bad) = corrupt(&built.bytes, how) {
            built.bytes = bad;
            built.answer_has_stan = how.keeps_stan();
        }
        built.remember = false;
        Ok(built)
    }

    fn unknown_card(&mut self) -> Result<Built, EncodeError> {
        let index = self.dice.below(1_000_000_000);
        let pan =
            card_pan(UNKNOWN_BIN, index, self.config.seed).expect("UNKNOWN_BIN is six digits");
        let card = self.popular_card();
        let mut draft = self.purchase_draft(card);
        draft.pin = None;
        draft.cvv2 = None;
        let message = CardMessage {
            kind: draft.kind,
            pan,
            amount: draft.amount,
            processing: draft.processing,
            entry: draft.entry,
            mcc: draft.merchant.mcc,
            pin: None,
            cvv2: None,
            expiry: draft.expiry,
            merchant: draft.merchant.name.to_owned(),
            country: "GB".to_owned(),
            ids: self.next_ids(),
            original: None,
        };
        // No profile owns the card: any lane will do.
        let lane_key = self.dice.next_u64();
        self.encoded(&message, lane_key, Effect::Nothing)
    }
}

/// A PIN of the same length with the last digit changed.
fn wrong_pin(pin: &ClearPin) -> ClearPin {
    let wrong = bump_last_digit(pin.expose_digits());
    ClearPin::parse(&wrong).unwrap_or_else(|_| pin.clone())
}

fn wrong_cvv2(cvv2: &Cvv2) -> Cvv2 {
    let wrong = bump_last_digit(cvv2.expose_digits());
    Cvv2::parse(&wrong).unwrap_or_else(|_| cvv2.clone())
}

fn bump_last_digit(digits: &str) -> String {
    let mut bytes = digits.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last = b'0' + (*last - b'0' + 1) % 10;
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// Rounds down to a whole number of major units, keeping at least one.
fn whole_units(amount: Money) -> Money {
    let unit = 10i64.pow(u32::from(amount.currency.exponent()));
    Money::new((amount.amount_minor / unit).max(1) * unit, amount.currency)
}

trait AtLeastOneMinor {
    fn max_one_minor(self) -> Money;
}

impl AtLeastOneMinor for Money {
    /// Scaling can round a tiny amount down to zero; a purchase is never for nothing.
    fn max_one_minor(self) -> Money {
        Money::new(self.amount_minor.max(1), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        let pin = ClearPin::parse("1239").unwrap();
        assert_eq!(wrong_pin(&pin).expose_digits(), "1230");
        assert_eq!(
            wrong_cvv2(&Cvv2::parse("555").unwrap()).expose_digits(),
            "556"
        );
        assert_eq!(
            whole_units(Money::new(6_600, Currency::KWD)),
            Money::new(6_000, Currency::KWD)
        );
        assert_eq!(
            whole_units(Money::new(50, Currency::EUR)),
            Money::new(100, Currency::EUR)
        );
        assert_eq!(
            whole_units(Money::new(3_217, Currency::JPY)).amount_minor,
            3_217
        );
    }
}
