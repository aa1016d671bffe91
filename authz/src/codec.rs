//! The journal's hand-written binary layout for the events of the decision path: the
//! transaction record, the answer to a follow-up, and an approval's hold and usage.
//!
//! Every field is little-endian at a place fixed by the fields before it. Integers and ids
//! take their width; a currency is its ISO 4217 numeric code (u16); an enum is one byte, its
//! position in the type's `ALL` list; `Option<T>` is a byte (0 none, 1 some) followed by
//! `T`'s bytes, zero when none; a short text is its length and its bytes, padded with spaces
//! to its capacity; a decimal rate is its 16-byte form. The one variable part is a hold's legs: a
//! count, then that many legs.
//!
//! Encoding writes straight into the record buffer and cannot fail. Decoding is strict: it
//! checks every length, enum code, presence byte and padding, and names the event and
//! field that does not fit ([`DecodeError::Field`]); it never panics, whatever the bytes.

use cardcore_core::decline::{Decline, DeclineReason, DetailedDeclineReason, ResponseCode};
use cardcore_core::{
    BalanceId, CardStatus, CardToken, Channel, Currency, LimitType, Mcc, Money, ProfileId,
    ProfileStatus, RuleId, Timestamp, TransactionState, TransactionType, TxnId,
};
use cardcore_ledger::book::{
    Authorised, HoldPlaced, Leg, Legs, OpenBalance, UsageAdded, UsageAmounts, Window, HOLD_LEGS_MAX,
};
use rust_decimal::Decimal;

use crate::events::DecodeError;
use crate::explain::{Check, Explanation, Seen};
use crate::request::{MessageKey, MessageKind, ShortText};
use crate::state::{Answer, TxnFlags, TxnRecord};

/// A value with a binary layout of at most `MAX_LEN` bytes.
pub(crate) trait Layout: Sized {
    /// The most bytes the value takes.
    const MAX_LEN: usize;
    fn put(&self, out: &mut Out<'_>);
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError>;
}

/// Writes fields one after another into a zeroed slice that is long enough.
pub(crate) struct Out<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> Out<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Out<'a> {
        Out { buf, at: 0 }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.at
    }

    #[inline(always)]
    fn bytes(&mut self, bytes: &[u8]) {
        // The caller sized the slice for `MAX_LEN`; a bug that overruns it stops here
        // rather than writing a record that would not decode.
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    /// Leaves `n` bytes as they are (zero): the room of an absent value.
    #[inline(always)]
    fn skip(&mut self, n: usize) {
        self.at += n;
    }
}

/// Reads fields one after another, checking each.
pub(crate) struct In<'a> {
    bytes: &'a [u8],
    event: &'static str,
}

impl<'a> In<'a> {
    pub(crate) fn new(bytes: &'a [u8], event: &'static str) -> In<'a> {
        In { bytes, event }
    }

    /// What is left after the fields read so far.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    fn fail(&self, field: &'static str, why: &'static str) -> DecodeError {
        DecodeError::Field {
            event: self.event,
            field,
            why,
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let Some((head, rest)) = self.bytes.split_first_chunk::<N>() else {
            return Err(self.fail(field, "truncated"));
        };
        self.bytes = rest;
        Ok(*head)
    }

    /// `n` bytes that must all be zero (the room of an absent value, or padding).
    fn zeros(&mut self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        if self.bytes.len() < n {
            return Err(self.fail(field, "truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        if head.iter().any(|b| *b != 0) {
            return Err(self.fail(field, "non-zero padding"));
        }
        self.bytes = rest;
        Ok(())
    }
}

macro_rules! int_layout {
    ($($t:ty),*) => {$(
        impl Layout for $t {
            const MAX_LEN: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn put(&self, out: &mut Out<'_>) {
                out.bytes(&self.to_le_bytes());
            }
            fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(inp.array(field)?))
            }
        }
    )*};
}

int_layout!(u8, u16, u32, u64, i64, u128);

impl Layout for bool {
    const MAX_LEN: usize = 1;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        u8::from(*self).put(out);
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        match u8::read(inp, field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(inp.fail(field, "not a boolean")),
        }
    }
}

impl<T: Layout> Layout for Option<T> {
    const MAX_LEN: usize = 1 + T::MAX_LEN;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        match self {
            Some(v) => {
                true.put(out);
                let start = out.at;
                v.put(out);
                out.skip(T::MAX_LEN - (out.at - start));
            }
            None => {
                false.put(out);
                out.skip(T::MAX_LEN);
            }
        }
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        if !bool::read(inp, field)? {
            inp.zeros(T::MAX_LEN, field)?;
            return Ok(None);
        }
        let before = inp.bytes.len();
        let v = T::read(inp, field)?;
        inp.zeros(T::MAX_LEN - (before - inp.bytes.len()), field)?;
        Ok(Some(v))
    }
}

impl<const N: usize> Layout for [u8; N] {
    const MAX_LEN: usize = N;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        out.bytes(self);
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        inp.array(field)
    }
}

macro_rules! id_layout {
    ($($t:ident: $inner:ty),*) => {$(
        impl Layout for $t {
            const MAX_LEN: usize = <$inner as Layout>::MAX_LEN;
            #[inline(always)]
            fn put(&self, out: &mut Out<'_>) {
                self.0.put(out);
            }
            fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
                Ok($t(<$inner>::read(inp, field)?))
            }
        }
    )*};
}

id_layout!(
    TxnId: u64,
    ProfileId: u64,
    BalanceId: u64,
    RuleId: u64,
    CardToken: u128,
    Timestamp: i64,
    Mcc: u16
);

/// Enums are their position in the type's `ALL` list; the declaration order is the code
/// order (checked by a test), so encoding is a cast.
macro_rules! enum_layout {
    ($($t:ty => $all:expr),*) => {$(
        impl Layout for $t {
            const MAX_LEN: usize = 1;
            #[inline(always)]
            fn put(&self, out: &mut Out<'_>) {
                (*self as u8).put(out);
            }
            fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
                let code = u8::read(inp, field)?;
                $all.get(usize::from(code))
                    .copied()
                    .ok_or_else(|| inp.fail(field, "unknown code"))
            }
        }
    )*};
}

enum_layout!(
    TransactionType => TransactionType::ALL,
    TransactionState => TransactionState::ALL,
    MessageKind => MessageKind::ALL,
    Channel => Channel::ALL,
    CardStatus => CardStatus::ALL,
    ProfileStatus => ProfileStatus::ALL,
    DeclineReason => DeclineReason::ALL,
    DetailedDeclineReason => DetailedDeclineReason::ALL,
    LimitType => LimitType::ALL,
    Check => Check::ALL
);

impl Layout for Currency {
    const MAX_LEN: usize = 2;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.numeric().put(out);
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let numeric = u16::read(inp, field)?;
        Currency::from_numeric(numeric).map_err(|_| inp.fail(field, "unknown currency"))
    }
}

impl Layout for Money {
    const MAX_LEN: usize = 8 + 2;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.amount_minor.put(out);
        self.currency.put(out);
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let amount_minor = i64::read(inp, field)?;
        Ok(Money::new(amount_minor, Currency::read(inp, field)?))
    }
}

impl Layout for Decimal {
    const MAX_LEN: usize = 16;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        out.bytes(&self.serialize());
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        /// The sign bit and the scale byte: the only flag bits a decimal uses.
        const FLAG_BITS: u32 = 0x80FF_0000;
        const SCALE_MAX: u32 = 28;
        let bytes: [u8; 16] = inp.array(field)?;
        let flags = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if flags & !FLAG_BITS != 0 || (flags >> 16) & 0xFF > SCALE_MAX {
            return Err(inp.fail(field, "not a decimal"));
        }
        Ok(Decimal::deserialize(bytes))
    }
}

impl Layout for ResponseCode {
    const MAX_LEN: usize = 2;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        out.bytes(&self.as_bytes());
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let bytes = inp.array(field)?;
        ResponseCode::from_bytes(bytes).map_err(|_| inp.fail(field, "not a response code"))
    }
}

impl Layout for Decline {
    const MAX_LEN: usize = 2;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.reason.put(out);
        // No detailed reason is written as a code no reason has.
        self.detailed.map_or(u8::MAX, |d| d as u8).put(out);
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let reason = DeclineReason::read(inp, field)?;
        let code = u8::read(inp, field)?;
        if code == u8::MAX {
            return Ok(Decline::new(reason));
        }
        let detailed = DetailedDeclineReason::ALL
            .get(usize::from(code))
            .copied()
            .ok_or_else(|| inp.fail(field, "unknown detailed reason"))?;
        Ok(Decline::with_detail(reason, detailed))
    }
}

impl<const N: usize> Layout for ShortText<N> {
    const MAX_LEN: usize = 1 + N;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        // A short text holds at most N ≤ 255 bytes.
        (self.as_bytes().len() as u8).put(out);
        // All N bytes, spaces after the text: a copy of known size.
        out.bytes(self.padded());
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let len = usize::from(u8::read(inp, field)?);
        if len > N {
            return Err(inp.fail(field, "text longer than its room"));
        }
        let bytes: [u8; N] = inp.array(field)?;
        let (text, padding) = bytes.split_at(len);
        if padding.iter().any(|b| *b != b' ') {
            return Err(inp.fail(field, "padding other than spaces"));
        }
        ShortText::exact(text).ok_or_else(|| inp.fail(field, "text longer than its room"))
    }
}

impl Layout for MessageKey {
    const MAX_LEN: usize = 4 + 8 + 8;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.stan.put(out);
        self.transmission.put(out);
        self.acquirer.put(out);
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(MessageKey {
            stan: u32::read(inp, field)?,
            transmission: u64::read(inp, field)?,
            acquirer: u64::read(inp, field)?,
        })
    }
}

impl Layout for TxnFlags {
    const MAX_LEN: usize = 1;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        let bits = u8::from(self.stand_in)
            | u8::from(self.over_cleared) << 1
            | u8::from(self.pre_auth) << 2
            | u8::from(self.expired) << 3;
        bits.put(out);
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        const FLAG_BITS: u8 = 0b1111;
        let bits = u8::read(inp, field)?;
        if bits & !FLAG_BITS != 0 {
            return Err(inp.fail(field, "unknown flag"));
        }
        Ok(TxnFlags {
            stand_in: bits & 1 != 0,
            over_cleared: bits & 2 != 0,
            pre_auth: bits & 4 != 0,
            expired: bits & 8 != 0,
        })
    }
}

/// The room of the largest [`Seen`]: three amounts.
const SEEN_ROOM: usize = 3 * Money::MAX_LEN;

impl Layout for Seen {
    const MAX_LEN: usize = 1 + SEEN_ROOM;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        let start = out.at;
        match *self {
            Seen::None => 0u8.put(out),
            Seen::CardStatus { status } => {
                1u8.put(out);
                status.put(out);
            }
            Seen::ProfileStatus { status } => {
                2u8.put(out);
                status.put(out);
            }
            Seen::Expiry {
                card_expired,
                message_matches,
            } => {
                3u8.put(out);
                card_expired.put(out);
                message_matches.put(out);
            }
            Seen::Channel { channel, enabled } => {
                4u8.put(out);
                channel.put(out);
                enabled.put(out);
            }
            Seen::PinTries {
                tries_before,
                pin_given,
                pin_ok,
            } => {
                5u8.put(out);
                tries_before.put(out);
                pin_given.put(out);
                pin_ok.put(out);
            }
            Seen::Rule { rule } => {
                6u8.put(out);
                rule.put(out);
            }
            Seen::Limit {
                limit,
                usage,
                amount,
            } => {
                7u8.put(out);
                limit.put(out);
                usage.put(out);
                amount.put(out);
            }
            Seen::Funds { available, needed } => {
                8u8.put(out);
                available.put(out);
                needed.put(out);
            }
            Seen::Amount { amount } => {
                9u8.put(out);
                amount.put(out);
            }
        }
        out.skip(Seen::MAX_LEN - (out.at - start));
    }

    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let before = inp.bytes.len();
        let seen = match u8::read(inp, field)? {
            0 => Seen::None,
            1 => Seen::CardStatus {
                status: CardStatus::read(inp, field)?,
            },
            2 => Seen::ProfileStatus {
                status: ProfileStatus::read(inp, field)?,
            },
            3 => Seen::Expiry {
                card_expired: bool::read(inp, field)?,
                message_matches: bool::read(inp, field)?,
            },
            4 => Seen::Channel {
                channel: Channel::read(inp, field)?,
                enabled: bool::read(inp, field)?,
            },
            5 => Seen::PinTries {
                tries_before: u8::read(inp, field)?,
                pin_given: bool::read(inp, field)?,
                pin_ok: Option::read(inp, field)?,
            },
            6 => Seen::Rule {
                rule: RuleId::read(inp, field)?,
            },
            7 => Seen::Limit {
                limit: Money::read(inp, field)?,
                usage: Money::read(inp, field)?,
                amount: Money::read(inp, field)?,
            },
            8 => Seen::Funds {
                available: Money::read(inp, field)?,
                needed: Money::read(inp, field)?,
            },
            9 => Seen::Amount {
                amount: Money::read(inp, field)?,
            },
            _ => return Err(inp.fail(field, "unknown code")),
        };
        inp.zeros(Seen::MAX_LEN - (before - inp.bytes.len()), field)?;
        Ok(seen)
    }
}

impl Layout for Explanation {
    const MAX_LEN: usize = 4 + 2 + Seen::MAX_LEN;
    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        let (ran, failed, seen) = self.parts();
        ran.put(out);
        failed.put(out);
        seen.put(out);
    }
    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let ran = u32::read(inp, field)?;
        let failed = Option::<Check>::read(inp, field)?;
        let seen = Seen::read(inp, field)?;
        Explanation::from_parts(ran, failed, seen).ok_or_else(|| inp.fail(field, "unknown check"))
    }
}

impl Layout for TxnRecord {
    const MAX_LEN: usize = 8 * 2
        + 16
        + 3
        + MessageKey::MAX_LEN
        + ShortText::<12>::MAX_LEN
        + 2 * Money::MAX_LEN
        + Option::<Money>::MAX_LEN
        + 2
        + 1
        + ShortText::<40>::MAX_LEN
        + ShortText::<3>::MAX_LEN
        + 2
        + Option::<Decline>::MAX_LEN
        + Option::<[u8; 6]>::MAX_LEN
        + 1
        + 2 * 8
        + Option::<Timestamp>::MAX_LEN
        + Explanation::MAX_LEN
        + Option::<TxnId>::MAX_LEN;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.id.put(out);
        self.profile.put(out);
        self.card.put(out);
        self.txn_type.put(out);
        self.state.put(out);
        self.kind.put(out);
        self.key.put(out);
        self.rrn.put(out);
        self.requested.put(out);
        self.authorised.put(out);
        self.cleared.put(out);
        self.mcc.put(out);
        self.channel.put(out);
        self.merchant.put(out);
        self.country.put(out);
        self.response_code.put(out);
        self.decline.put(out);
        self.approval_code.put(out);
        self.flags.put(out);
        self.created.put(out);
        self.modified.put(out);
        self.purge_time.put(out);
        self.explanation.put(out);
        self.previous_of_card.put(out);
    }

    fn read(inp: &mut In<'_>, _: &'static str) -> Result<Self, DecodeError> {
        let record = TxnRecord {
            id: TxnId::read(inp, "id")?,
            profile: ProfileId::read(inp, "profile")?,
            card: CardToken::read(inp, "card")?,
            txn_type: TransactionType::read(inp, "txn_type")?,
            state: TransactionState::read(inp, "state")?,
            kind: MessageKind::read(inp, "kind")?,
            key: MessageKey::read(inp, "key")?,
            rrn: ShortText::read(inp, "rrn")?,
            requested: Money::read(inp, "requested")?,
            authorised: Money::read(inp, "authorised")?,
            cleared: Option::read(inp, "cleared")?,
            mcc: Mcc::read(inp, "mcc")?,
            channel: Channel::read(inp, "channel")?,
            merchant: ShortText::read(inp, "merchant")?,
            country: ShortText::read(inp, "country")?,
            response_code: ResponseCode::read(inp, "response_code")?,
            decline: Option::read(inp, "decline")?,
            approval_code: Option::read(inp, "approval_code")?,
            flags: TxnFlags::read(inp, "flags")?,
            created: Timestamp::read(inp, "created")?,
            modified: Timestamp::read(inp, "modified")?,
            purge_time: Option::read(inp, "purge_time")?,
            explanation: Explanation::read(inp, "explanation")?,
            previous_of_card: Option::read(inp, "previous_of_card")?,
        };
        if let Some(code) = record.approval_code {
            if !code.iter().all(u8::is_ascii_alphanumeric) {
                return Err(inp.fail("approval_code", "not letters and digits"));
            }
        }
        Ok(record)
    }
}

impl Layout for Answer {
    const MAX_LEN: usize = 2
        + Option::<Decline>::MAX_LEN
        + Option::<TxnId>::MAX_LEN
        + Option::<[u8; 6]>::MAX_LEN
        + Option::<Money>::MAX_LEN;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.response_code.put(out);
        self.decline.put(out);
        self.txn.put(out);
        self.approval_code.put(out);
        self.approved_amount.put(out);
    }

    fn read(inp: &mut In<'_>, _: &'static str) -> Result<Self, DecodeError> {
        Ok(Answer {
            response_code: ResponseCode::read(inp, "response_code")?,
            decline: Option::read(inp, "decline")?,
            txn: Option::read(inp, "txn")?,
            approval_code: Option::read(inp, "approval_code")?,
            approved_amount: Option::read(inp, "approved_amount")?,
        })
    }
}

/// The answer to a follow-up message, for duplicates.
pub(crate) struct Answered {
    pub key: MessageKey,
    pub answer: Answer,
}

impl Layout for Answered {
    const MAX_LEN: usize = MessageKey::MAX_LEN + Answer::MAX_LEN;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.key.put(out);
        self.answer.put(out);
    }

    fn read(inp: &mut In<'_>, _: &'static str) -> Result<Self, DecodeError> {
        Ok(Answered {
            key: MessageKey::read(inp, "key")?,
            answer: Answer::read(inp, "answer")?,
        })
    }
}

impl Layout for Leg {
    const MAX_LEN: usize = 8 + 2 + 3 * 8 + 16 + 4;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.balance.put(out);
        self.currency.put(out);
        self.held_minor.put(out);
        self.fee_minor.put(out);
        self.covers_minor.put(out);
        self.rate.put(out);
        self.fee_ppm.put(out);
    }

    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(Leg {
            balance: BalanceId::read(inp, field)?,
            currency: Currency::read(inp, field)?,
            held_minor: i64::read(inp, field)?,
            fee_minor: i64::read(inp, field)?,
            covers_minor: i64::read(inp, field)?,
            rate: Decimal::read(inp, field)?,
            fee_ppm: u32::read(inp, field)?,
        })
    }
}

/// A count, then that many legs: the one variable-length part of the layout.
impl Layout for Legs {
    const MAX_LEN: usize = 1 + HOLD_LEGS_MAX * Leg::MAX_LEN;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        // At most HOLD_LEGS_MAX legs, which fits a byte (checked where it is defined).
        (self.len() as u8).put(out);
        for leg in self {
            leg.put(out);
        }
    }

    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let count = usize::from(u8::read(inp, field)?);
        if count > HOLD_LEGS_MAX {
            return Err(inp.fail(field, "too many legs"));
        }
        let mut items = [Leg::own(BalanceId(0), Currency::EUR, 0); HOLD_LEGS_MAX];
        for slot in &mut items[..count] {
            *slot = Leg::read(inp, field)?;
        }
        Legs::from_slice(&items[..count]).ok_or_else(|| inp.fail(field, "too many legs"))
    }
}

impl Layout for OpenBalance {
    const MAX_LEN: usize = 8 + 8 + 2;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.balance.put(out);
        self.profile.put(out);
        self.currency.put(out);
    }

    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(OpenBalance {
            balance: BalanceId::read(inp, field)?,
            profile: ProfileId::read(inp, field)?,
            currency: Currency::read(inp, field)?,
        })
    }
}

impl Layout for Window {
    const MAX_LEN: usize = 2 * 8;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.start.put(out);
        self.end.put(out);
    }

    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(Window {
            start: Timestamp::read(inp, field)?,
            end: Timestamp::read(inp, field)?,
        })
    }
}

impl Layout for UsageAmounts {
    const MAX_LEN: usize = 3 * 8;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.txn_minor.put(out);
        self.card_minor.put(out);
        self.profile_minor.put(out);
    }

    fn read(inp: &mut In<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(UsageAmounts {
            txn_minor: i64::read(inp, field)?,
            card_minor: i64::read(inp, field)?,
            profile_minor: i64::read(inp, field)?,
        })
    }
}

impl Layout for UsageAdded {
    const MAX_LEN: usize = 8 + 16 + 1 + 2 + UsageAmounts::MAX_LEN + 2 * Window::MAX_LEN;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        self.txn.put(out);
        self.card.put(out);
        self.limit_type.put(out);
        self.currency.put(out);
        self.amounts.put(out);
        self.daily.put(out);
        self.monthly.put(out);
    }

    fn read(inp: &mut In<'_>, _: &'static str) -> Result<Self, DecodeError> {
        Ok(UsageAdded {
            txn: TxnId::read(inp, "usage.txn")?,
            card: CardToken::read(inp, "usage.card")?,
            limit_type: LimitType::read(inp, "usage.limit_type")?,
            currency: Currency::read(inp, "usage.currency")?,
            amounts: UsageAmounts::read(inp, "usage.amounts")?,
            daily: Window::read(inp, "usage.daily")?,
            monthly: Window::read(inp, "usage.monthly")?,
        })
    }
}

/// The hold's fixed fields, the usage, then the hold's legs: everything but the legs sits at
/// a fixed offset.
impl Layout for Authorised {
    const MAX_LEN: usize =
        8 + 8 + 2 + Option::<OpenBalance>::MAX_LEN + 1 + UsageAdded::MAX_LEN + Legs::MAX_LEN;

    #[inline(always)]
    fn put(&self, out: &mut Out<'_>) {
        let hold = &self.hold;
        hold.txn.put(out);
        hold.profile.put(out);
        hold.currency.put(out);
        hold.open.put(out);
        hold.flagged.put(out);
        self.usage.put(out);
        hold.legs.put(out);
    }

    fn read(inp: &mut In<'_>, _: &'static str) -> Result<Self, DecodeError> {
        let txn = TxnId::read(inp, "hold.txn")?;
        let profile = ProfileId::read(inp, "hold.profile")?;
        let currency = Currency::read(inp, "hold.currency")?;
        let open = Option::read(inp, "hold.open")?;
        let flagged = bool::read(inp, "hold.flagged")?;
        let usage = UsageAdded::read(inp, "usage")?;
        let legs = Legs::read(inp, "hold.legs")?;
        let hold = HoldPlaced {
            txn,
            profile,
            currency,
            legs,
            open,
            flagged,
        };
        Ok(Authorised { hold, usage })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enum codes are positions in `ALL`, written by casting: the two must agree.
    #[test]
    fn enum_codes_are_positions_in_all() {
        fn check<T: Copy + std::fmt::Debug>(all: &[T], code: impl Fn(T) -> u8) {
            for (i, v) in all.iter().enumerate() {
                assert_eq!(usize::from(code(*v)), i, "{v:?}");
            }
            assert!(all.len() < usize::from(u8::MAX), "one byte, 0xFF kept free");
        }
        check(&TransactionType::ALL, |v| v as u8);
        check(&TransactionState::ALL, |v| v as u8);
        check(&MessageKind::ALL, |v| v as u8);
        check(&Channel::ALL, |v| v as u8);
        check(&CardStatus::ALL, |v| v as u8);
        check(&ProfileStatus::ALL, |v| v as u8);
        check(&DeclineReason::ALL, |v| v as u8);
        check(&DetailedDeclineReason::ALL, |v| v as u8);
        check(&LimitType::ALL, |v| v as u8);
        check(&Check::ALL, |v| v as u8);
    }
}
