//! Building and packing messages.
//!
//! A [`MessageBuilder`] keeps every field value, validated, in one byte arena that survives
//! [`MessageBuilder::reset`], so a builder reused per connection packs without allocating.

use std::fmt;

use bytes::BytesMut;

use super::ascii::{encode_hex, u64_to_hex16, write_decimal, write_padded};
use super::codes::{OriginalData, PosEntryMode, ProcessingCode, TransmissionTime};
use super::error::{ErrorKind, FieldError, ResponseError};
use super::parse::{validate, Message, Salvage};
use super::spec::{field_spec, FieldSpec, Length};
use super::{debug_fields, field_bit, Mti, MESSAGE_MAX_LEN};
use crate::card::Expiry;
use crate::ids::TxnId;
use crate::money::Money;
use crate::pan::Pan;
use crate::rules::Mcc;

/// The fields a response copies from its request when the request has them: the ones
/// acquirers match responses on (2, 3, 4, 7, 11, 32, 37, 41, 42), amounts and currencies,
/// dates, institution codes, network management code, and the original data of reversals.
/// Never echoed: expiry, track data, PIN block, CVV2 and ICC data.
pub const RESPONSE_ECHO_FIELDS: [u8; 21] = [
    2, 3, 4, 6, 7, 11, 12, 13, 19, 25, 32, 33, 37, 41, 42, 49, 51, 70, 90, 95, 100,
];

/// Arena capacity a new builder starts with: a typical authorisation with room to spare.
const ARENA_INITIAL_CAPACITY: usize = 512;
/// Replacing fields leaves dead bytes in the arena; past this size it is compacted, which
/// bounds the arena at `ARENA_COMPACT_AT + largest field`.
const ARENA_COMPACT_AT: usize = 2 * MESSAGE_MAX_LEN;
const FIELD_VALUE_MAX: usize = 999;
/// The longest fixed numeric field (DE 90, n 42).
const NUMERIC_FIXED_MAX: usize = 42;
const _: () = assert!(ARENA_COMPACT_AT + FIELD_VALUE_MAX <= u16::MAX as usize);

/// Where a field's value sits in the arena.
#[derive(Clone, Copy, Default)]
struct Span {
    start: u16,
    len: u16,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        usize::from(self.start)..usize::from(self.start) + usize::from(self.len)
    }
}

/// An outgoing message: an MTI and validated field values, packed on demand.
#[derive(Clone)]
pub struct MessageBuilder {
    mti: Mti,
    /// Field n set ⇔ bit `128 - n`. Bit 1 is never set here: it is computed when packing.
    present: u128,
    spans: [Span; 129],
    arena: Vec<u8>,
    /// Sum over set fields of length prefix + value, as packed.
    fields_len: usize,
}

/// Where packed bytes can go: `Vec<u8>` and `BytesMut`.
pub trait PackBuffer: sealed::Sealed {
    /// Grows the buffer by `n` bytes and returns them for writing.
    fn append_zeroed(&mut self, n: usize) -> &mut [u8];
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for Vec<u8> {}
    impl Sealed for bytes::BytesMut {}
}

impl PackBuffer for Vec<u8> {
    fn append_zeroed(&mut self, n: usize) -> &mut [u8] {
        let start = self.len();
        self.resize(start + n, 0);
        &mut self[start..]
    }
}

impl PackBuffer for BytesMut {
    fn append_zeroed(&mut self, n: usize) -> &mut [u8] {
        let start = self.len();
        self.resize(start + n, 0);
        &mut self[start..]
    }
}

impl MessageBuilder {
    pub fn new(mti: Mti) -> MessageBuilder {
        MessageBuilder {
            mti,
            present: 0,
            spans: [Span::default(); 129],
            arena: Vec::with_capacity(ARENA_INITIAL_CAPACITY),
            fields_len: 0,
        }
    }

    /// Clears every field and sets the MTI, keeping the arena's memory.
    pub fn reset(&mut self, mti: Mti) {
        self.mti = mti;
        self.present = 0;
        self.arena.clear();
        self.fields_len = 0;
    }

    pub fn mti(&self) -> Mti {
        self.mti
    }

    pub fn set_mti(&mut self, mti: Mti) -> &mut Self {
        self.mti = mti;
        self
    }

    /// Whether field `field` is set (field 1: a field above 64 is set).
    pub fn has(&self, field: u8) -> bool {
        match field {
            1 => self.present & (u128::from(u64::MAX)) != 0,
            2..=128 => self.present & field_bit(field) != 0,
            _ => false,
        }
    }

    /// A field's value as it will be packed (without length prefix).
    pub fn get(&self, field: u8) -> Option<&[u8]> {
        if field < 2 || !self.has(field) {
            return None;
        }
        self.arena.get(self.spans[usize::from(field)].range())
    }

    /// Sets a field from its wire form (binary fields as hex text), checked against the field
    /// table exactly as the parser checks it. On error nothing changes.
    pub fn set(&mut self, field: u8, value: &[u8]) -> Result<&mut Self, FieldError> {
        let spec = settable_spec(field)?;
        let at = |kind| FieldError::new(field, kind);
        check_length(spec, value.len()).map_err(at)?;
        validate(spec, value).map_err(at)?;
        self.store(spec, value)?;
        Ok(self)
    }

    /// [`MessageBuilder::set`] from text.
    pub fn set_str(&mut self, field: u8, value: &str) -> Result<&mut Self, FieldError> {
        self.set(field, value.as_bytes())
    }

    /// Unsets a field; returns whether it was set.
    pub fn remove(&mut self, field: u8) -> bool {
        if field < 2 || !self.has(field) {
            return false;
        }
        if let Some(spec) = field_spec(field) {
            self.fields_len -= encoded_len(spec, self.spans[usize::from(field)].len.into());
        }
        self.present &= !field_bit(field);
        true
    }

    /// Sets a numeric field from a number: zero-padded for fixed fields, plain digits for
    /// LLVAR ones.
    pub fn set_numeric(&mut self, field: u8, value: u64) -> Result<&mut Self, FieldError> {
        let spec = settable_spec(field)?;
        let mut buf = [0u8; NUMERIC_FIXED_MAX];
        let len = match spec.length {
            Length::Fixed(n) => {
                let n = usize::from(n).min(NUMERIC_FIXED_MAX);
                if !write_padded(value, &mut buf[..n]) {
                    let kind = ErrorKind::OutOfRange {
                        what: "number for the field's length",
                    };
                    return Err(FieldError::new(field, kind));
                }
                n
            }
            Length::LlVar(_) | Length::LllVar(_) => {
                let mut decimal = [0u8; 20];
                let digits = write_decimal(value, &mut decimal);
                buf[..digits.len()].copy_from_slice(digits);
                digits.len()
            }
        };
        self.set(field, &buf[..len])
    }

    /// Sets a binary field from bytes (packed as uppercase hex).
    pub fn set_binary(&mut self, field: u8, bytes: &[u8]) -> Result<&mut Self, FieldError> {
        let spec = settable_spec(field)?;
        check_length(spec, bytes.len() * 2).map_err(|kind| FieldError::new(field, kind))?;
        let mut hex = [0u8; FIELD_VALUE_MAX + 1];
        let text = encode_hex(bytes, &mut hex).map_err(|_| {
            FieldError::new(
                field,
                ErrorKind::TooLong {
                    len: bytes.len() * 2,
                    max: FIELD_VALUE_MAX,
                },
            )
        })?;
        let text_len = text.len();
        self.set(field, &hex[..text_len])
    }

    /// DE 2. The digits are not kept anywhere else and never shown by `Debug`.
    pub fn set_pan(&mut self, pan: &Pan) -> Result<&mut Self, FieldError> {
        self.set(2, pan.expose_digits().as_bytes())
    }

    /// DE 3.
    pub fn set_processing_code(&mut self, code: ProcessingCode) -> Result<&mut Self, FieldError> {
        self.set(3, &code.to_digits())
    }

    /// DE 4 and DE 49: the transaction amount and its currency.
    pub fn set_amount(&mut self, amount: Money) -> Result<&mut Self, FieldError> {
        self.set_money(4, 49, amount)
    }

    /// DE 6 and DE 51: the cardholder billing amount and its currency.
    pub fn set_billing_amount(&mut self, amount: Money) -> Result<&mut Self, FieldError> {
        self.set_money(6, 51, amount)
    }

    fn set_money(
        &mut self,
        amount_field: u8,
        currency_field: u8,
        amount: Money,
    ) -> Result<&mut Self, FieldError> {
        let minor = u64::try_from(amount.amount_minor).map_err(|_| {
            FieldError::new(
                amount_field,
                ErrorKind::OutOfRange {
                    what: "negative amount",
                },
            )
        })?;
        // Check both before setting either, so a refused call changes nothing.
        let mut digits = [0u8; 12];
        if !write_padded(minor, &mut digits) {
            let kind = ErrorKind::OutOfRange {
                what: "amount above 12 digits",
            };
            return Err(FieldError::new(amount_field, kind));
        }
        self.set(amount_field, &digits)?;
        self.set_numeric(currency_field, u64::from(amount.currency.numeric()))
    }

    /// DE 7.
    pub fn set_transmission_time(&mut self, t: TransmissionTime) -> Result<&mut Self, FieldError> {
        self.set(7, &t.to_digits())
    }

    /// DE 11.
    pub fn set_stan(&mut self, stan: u32) -> Result<&mut Self, FieldError> {
        self.set_numeric(11, u64::from(stan))
    }

    /// DE 14. Never shown by `Debug`.
    pub fn set_expiry(&mut self, expiry: Expiry) -> Result<&mut Self, FieldError> {
        self.set(14, &expiry.to_yymm())
    }

    /// DE 18.
    pub fn set_mcc(&mut self, mcc: Mcc) -> Result<&mut Self, FieldError> {
        self.set_numeric(18, u64::from(mcc.0))
    }

    /// DE 22.
    pub fn set_pos_entry_mode(&mut self, mode: PosEntryMode) -> Result<&mut Self, FieldError> {
        self.set(22, &mode.to_digits())
    }

    /// DE 25 (`06` = pre-authorisation).
    pub fn set_pos_condition_code(&mut self, code: u8) -> Result<&mut Self, FieldError> {
        self.set_numeric(25, u64::from(code))
    }

    /// DE 32.
    pub fn set_acquirer_id(&mut self, id: u64) -> Result<&mut Self, FieldError> {
        self.set_numeric(32, id)
    }

    /// DE 38.
    pub fn set_approval_code(&mut self, code: &[u8; 6]) -> Result<&mut Self, FieldError> {
        self.set(38, code)
    }

    /// DE 39.
    pub fn set_response_code(&mut self, code: &[u8; 2]) -> Result<&mut Self, FieldError> {
        self.set(39, code)
    }

    /// DE 48 as subelement 92 (CVV2, 3 or 4 digits). Replaces any other DE 48 content.
    pub fn set_cvv2(&mut self, cvv2: &[u8]) -> Result<&mut Self, FieldError> {
        if !(3..=4).contains(&cvv2.len()) || !cvv2.iter().all(u8::is_ascii_digit) {
            return Err(FieldError::new(
                48,
                ErrorKind::OutOfRange {
                    what: "CVV2 (3 or 4 digits)",
                },
            ));
        }
        let mut value = [b'9', b'2', b'0', b'0' + cvv2.len() as u8, 0, 0, 0, 0];
        value[4..4 + cvv2.len()].copy_from_slice(cvv2);
        self.set(48, &value[..4 + cvv2.len()])
    }

    /// DE 52 from the encrypted PIN block. Never shown by `Debug`.
    pub fn set_pin_block(&mut self, block: &[u8; 8]) -> Result<&mut Self, FieldError> {
        self.set_binary(52, block)
    }

    /// DE 62, the issuer's transaction id, in decimal.
    pub fn set_issuer_txn_id(&mut self, id: TxnId) -> Result<&mut Self, FieldError> {
        let mut buf = [0u8; 20];
        let digits_len = write_decimal(id.0, &mut buf).len();
        let start = buf.len() - digits_len;
        self.set(62, &buf[start..])
    }

    /// DE 70 (001 sign-on, 002 sign-off, 301 echo test).
    pub fn set_network_management_code(&mut self, code: u16) -> Result<&mut Self, FieldError> {
        self.set_numeric(70, u64::from(code))
    }

    /// DE 90.
    pub fn set_original_data(&mut self, original: &OriginalData) -> Result<&mut Self, FieldError> {
        let digits = original.to_digits().ok_or(FieldError::new(
            90,
            ErrorKind::OutOfRange {
                what: "a part with more digits than its slot",
            },
        ))?;
        self.set(90, &digits)
    }

    /// DE 95 with the actual transaction amount (the amount a reversal leaves); the other
    /// replacement amounts are zero.
    pub fn set_replacement_amount_minor(
        &mut self,
        amount_minor: i64,
    ) -> Result<&mut Self, FieldError> {
        let mut value = [b'0'; 42];
        let fits = u64::try_from(amount_minor).is_ok_and(|v| write_padded(v, &mut value[..12]));
        if !fits {
            let kind = ErrorKind::OutOfRange {
                what: "amount (0 to 12 digits)",
            };
            return Err(FieldError::new(95, kind));
        }
        self.set(95, &value)
    }

    /// Starts the response to `request`: MTI + 10, and the [`RESPONSE_ECHO_FIELDS`] the request
    /// carries. The caller adds DE 39 (and DE 38, DE 62 ...).
    pub fn response_to(request: &Message<'_>) -> Result<MessageBuilder, ResponseError> {
        let mut builder = MessageBuilder::new(request.mti());
        builder.reset_as_response_to(request)?;
        Ok(builder)
    }

    /// [`MessageBuilder::response_to`] into this builder, reusing its memory.
    pub fn reset_as_response_to(&mut self, request: &Message<'_>) -> Result<(), ResponseError> {
        let mti = request.mti();
        let response = mti.response().ok_or(ResponseError::NoResponse(mti))?;
        self.reset(response);
        for field in RESPONSE_ECHO_FIELDS {
            if let (Some(value), Some(spec)) = (request.get(field), field_spec(field)) {
                // The request was validated when parsed and is no longer than a message, so
                // its fields are valid here too and cannot overflow.
                let stored = self.store(spec, value);
                debug_assert!(stored.is_ok());
            }
        }
        Ok(())
    }

    /// A `30` (format error) answer to a message that could not be parsed: the response MTI,
    /// the STAN when it was readable, DE 39 = `30`.
    pub fn reset_as_format_error(&mut self, salvage: &Salvage) -> Result<(), ResponseError> {
        let mti = salvage.mti.ok_or(ResponseError::MtiUnreadable)?;
        let response = mti.response().ok_or(ResponseError::NoResponse(mti))?;
        self.reset(response);
        if let Some(stan) = salvage.stan {
            let stored = self.set_stan(stan);
            debug_assert!(stored.is_ok(), "a salvaged STAN has 6 digits");
        }
        let stored = self.set_response_code(b"30");
        debug_assert!(stored.is_ok());
        Ok(())
    }

    /// The number of bytes [`MessageBuilder::pack_into`] writes.
    pub fn packed_len(&self) -> usize {
        4 + if self.has(1) { 32 } else { 16 } + self.fields_len
    }

    /// Appends the packed message to `out`; returns its length.
    pub fn pack_into<B: PackBuffer>(&self, out: &mut B) -> usize {
        let len = self.packed_len();
        self.write(out.append_zeroed(len));
        len
    }

    /// Appends the message framed for TCP (2-byte big-endian length first); returns the
    /// number of bytes appended.
    pub fn pack_frame_into<B: PackBuffer>(&self, out: &mut B) -> usize {
        let len = self.packed_len();
        // set() keeps every message within MESSAGE_MAX_LEN, which fits the 2-byte prefix.
        let dst = out.append_zeroed(super::frame::FRAME_HEADER_LEN + len);
        dst[..2].copy_from_slice(&(len as u16).to_be_bytes());
        self.write(&mut dst[2..]);
        2 + len
    }

    /// The packed message in a new vector (allocates; for tests and tools).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.packed_len());
        self.pack_into(&mut out);
        out
    }

    fn write(&self, dst: &mut [u8]) {
        debug_assert_eq!(dst.len(), self.packed_len());
        dst[..4].copy_from_slice(self.mti.as_bytes());
        let secondary = self.present as u64;
        let primary = (self.present >> 64) as u64 | if secondary != 0 { 1 << 63 } else { 0 };
        let mut pos = 4;
        let bitmaps = if secondary != 0 { 2 } else { 1 };
        for bitmap in [primary, secondary].into_iter().take(bitmaps) {
            let mut hex = [0u8; 16];
            u64_to_hex16(bitmap, &mut hex);
            dst[pos..pos + 16].copy_from_slice(&hex);
            pos += 16;
        }
        let mut pending = self.present;
        while pending != 0 {
            let field = pending.leading_zeros() as u8 + 1;
            pending &= !field_bit(field);
            let Some(spec) = field_spec(field) else {
                continue;
            };
            let value = &self.arena[self.spans[usize::from(field)].range()];
            let prefix_len = spec.length.prefix_len();
            write_padded(value.len() as u64, &mut dst[pos..pos + prefix_len]);
            pos += prefix_len;
            dst[pos..pos + value.len()].copy_from_slice(value);
            pos += value.len();
        }
        debug_assert_eq!(pos, dst.len());
    }

    /// Stores a value already checked against `spec`.
    fn store(&mut self, spec: &FieldSpec, value: &[u8]) -> Result<(), FieldError> {
        let field = spec.number;
        let slot = usize::from(field);
        let old_len = if self.has(field) {
            encoded_len(spec, self.spans[slot].len.into())
        } else {
            0
        };
        let fields_len = self.fields_len - old_len + encoded_len(spec, value.len());
        let secondary = self.has(1) || field > 64;
        let packed_len = 4 + if secondary { 32 } else { 16 } + fields_len;
        if packed_len > MESSAGE_MAX_LEN {
            let kind = ErrorKind::MessageTooLong {
                len: packed_len,
                max: MESSAGE_MAX_LEN,
            };
            return Err(FieldError::new(field, kind));
        }
        let old = self.spans[slot];
        if self.has(field) && value.len() <= usize::from(old.len) {
            // Overwrite in place: no dead bytes.
            let start = usize::from(old.start);
            self.arena[start..start + value.len()].copy_from_slice(value);
        } else {
            if self.arena.len() + value.len() > ARENA_COMPACT_AT {
                self.present &= !field_bit(field);
                self.compact();
            }
            let start = self.arena.len();
            self.arena.extend_from_slice(value);
            self.spans[slot].start = start as u16;
        }
        self.spans[slot].len = value.len() as u16;
        self.present |= field_bit(field);
        self.fields_len = fields_len;
        Ok(())
    }

    /// Moves the live values to the front of the arena, in arena order, dropping dead bytes.
    fn compact(&mut self) {
        let mut order = [0u8; 128];
        let mut count = 0;
        for field in 2..=128u8 {
            if self.has(field) {
                order[count] = field;
                count += 1;
            }
        }
        let order = &mut order[..count];
        order.sort_unstable_by_key(|&f| self.spans[usize::from(f)].start);
        let mut write = 0usize;
        for &field in order.iter() {
            let span = self.spans[usize::from(field)];
            // Sorted by start, so `write` never passes the value being moved.
            self.arena.copy_within(span.range(), write);
            self.spans[usize::from(field)].start = write as u16;
            write += usize::from(span.len);
        }
        self.arena.truncate(write);
    }
}

fn settable_spec(field: u8) -> Result<&'static FieldSpec, FieldError> {
    if field == 1 {
        return Err(FieldError::new(field, ErrorKind::NotSettable));
    }
    field_spec(field).ok_or(FieldError::new(field, ErrorKind::UndefinedField))
}

fn check_length(spec: &FieldSpec, len: usize) -> Result<(), ErrorKind> {
    match spec.length {
        Length::Fixed(n) if len != usize::from(n) => Err(ErrorKind::WrongLength {
            len,
            expected: usize::from(n),
        }),
        Length::LlVar(max) | Length::LllVar(max) if len > usize::from(max) => {
            Err(ErrorKind::TooLong {
                len,
                max: usize::from(max),
            })
        }
        _ => Ok(()),
    }
}

fn encoded_len(spec: &FieldSpec, value_len: usize) -> usize {
    spec.length.prefix_len() + value_len
}

impl fmt::Debug for MessageBuilder {
    /// Shows every field but masks the PAN and hides track data, PIN block, CVV2 and ICC data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = (2..=128u8).filter_map(|n| self.get(n).map(|v| (n, v)));
        debug_fields(f, "MessageBuilder", self.mti, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_fields_keeps_the_arena_bounded() {
        let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
        b.set(4, b"000000000100").unwrap();
        let mut peak = 0;
        for round in 0..5000usize {
            // Ever-changing lengths defeat the in-place overwrite, leaving dead bytes behind.
            let len = 1 + (round * 7) % 999;
            b.set(48, &vec![b'a' + (round % 26) as u8; len]).unwrap();
            b.set(61, &vec![b'z'; 999 - len]).unwrap();
            peak = peak.max(b.arena.len());
            assert_eq!(b.get(48).map(<[u8]>::len), Some(len));
            assert_eq!(b.get(61).map(<[u8]>::len), Some(999 - len));
        }
        assert!(peak <= ARENA_COMPACT_AT + FIELD_VALUE_MAX, "arena peaked at {peak}");
        assert!(peak > ARENA_COMPACT_AT / 2, "the test did exercise compaction ({peak})");
        assert_eq!(b.get(4), Some(&b"000000000100"[..]));
        let packed = b.to_vec();
        let parsed = super::super::parse(&packed).unwrap();
        assert_eq!(parsed.get(48), b.get(48));
        assert_eq!(parsed.get(61), b.get(61));
    }
}
