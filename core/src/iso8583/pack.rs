//! Building and packing messages.
//!
//! A [`MessageBuilder`] keeps its fields, validated, in one byte arena laid out exactly as they
//! go on the wire: in field order, each with its length prefix, nothing in between. Packing is
//! then the MTI, the bitmaps and one copy. The arena survives [`MessageBuilder::reset`], so a
//! builder reused per connection packs without allocating.

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
const FIELD_VALUE_MAX: usize = 999;
/// The longest fixed numeric field (DE 90, n 42).
const NUMERIC_FIXED_MAX: usize = 42;
/// MTI and primary bitmap; the secondary bitmap adds `BITMAP_LEN`.
const HEADER_LEN: usize = 4 + BITMAP_LEN;
const BITMAP_LEN: usize = 16;
// Arena offsets are u16: the arena never holds more than a message.
const _: () = assert!(MESSAGE_MAX_LEN <= u16::MAX as usize);

/// Where a field's value (after its length prefix) sits in the arena.
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
    /// The set fields exactly as packed: in field order, length prefix then value.
    arena: Vec<u8>,
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
        }
    }

    /// Clears every field and sets the MTI, keeping the arena's memory.
    pub fn reset(&mut self, mti: Mti) {
        self.mti = mti;
        self.present = 0;
        self.arena.clear();
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
        let Some(spec) = field_spec(field).filter(|_| field >= 2 && self.has(field)) else {
            return false;
        };
        let (start, old_len) = self.encoded_range(spec);
        self.splice(start, old_len, 0, field);
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
        HEADER_LEN + if self.has(1) { BITMAP_LEN } else { 0 } + self.arena.len()
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
        let mut hex = [0u8; BITMAP_LEN];
        u64_to_hex16(primary, &mut hex);
        dst[4..HEADER_LEN].copy_from_slice(&hex);
        let mut pos = HEADER_LEN;
        if secondary != 0 {
            u64_to_hex16(secondary, &mut hex);
            dst[pos..pos + BITMAP_LEN].copy_from_slice(&hex);
            pos += BITMAP_LEN;
        }
        dst[pos..].copy_from_slice(&self.arena);
    }

    /// Stores a value already checked against `spec`, in field order in the arena.
    fn store(&mut self, spec: &FieldSpec, value: &[u8]) -> Result<(), FieldError> {
        let field = spec.number;
        let prefix_len = spec.length.prefix_len();
        let (start, old_len) = self.encoded_range(spec);
        let new_len = prefix_len + value.len();
        let secondary = self.has(1) || field > 64;
        let packed_len = HEADER_LEN
            + if secondary { BITMAP_LEN } else { 0 }
            + (self.arena.len() - old_len + new_len);
        if packed_len > MESSAGE_MAX_LEN {
            let kind = ErrorKind::MessageTooLong {
                len: packed_len,
                max: MESSAGE_MAX_LEN,
            };
            return Err(FieldError::new(field, kind));
        }
        self.splice(start, old_len, new_len, field);
        let slot = &mut self.arena[start..start + new_len];
        write_padded(value.len() as u64, &mut slot[..prefix_len]);
        slot[prefix_len..].copy_from_slice(value);
        self.spans[usize::from(field)] = Span {
            start: (start + prefix_len) as u16,
            len: value.len() as u16,
        };
        self.present |= field_bit(field);
        Ok(())
    }

    /// Where `spec`'s field is, or would go, in the arena: (start, encoded length), the length
    /// being 0 when it is not set.
    fn encoded_range(&self, spec: &FieldSpec) -> (usize, usize) {
        let prefix_len = spec.length.prefix_len();
        let field = spec.number;
        if self.has(field) {
            let span = self.spans[usize::from(field)];
            return (
                usize::from(span.start) - prefix_len,
                prefix_len + usize::from(span.len),
            );
        }
        // Before the first set field above it, or at the end.
        let above = self.present & (field_bit(field) - 1);
        if above == 0 {
            return (self.arena.len(), 0);
        }
        let next = above.leading_zeros() as u8 + 1;
        let next_prefix = field_spec(next).map_or(0, |s| s.length.prefix_len());
        (
            usize::from(self.spans[usize::from(next)].start) - next_prefix,
            0,
        )
    }

    /// Resizes the arena slot at `start` from `old_len` to `new_len` bytes, moving the fields
    /// after it (those above `field`) and their spans. Setting fields in order only appends.
    fn splice(&mut self, start: usize, old_len: usize, new_len: usize, field: u8) {
        if old_len == new_len {
            return;
        }
        let tail = start + old_len..self.arena.len();
        if new_len > old_len {
            self.arena.resize(self.arena.len() + new_len - old_len, 0);
            self.arena.copy_within(tail, start + new_len);
        } else {
            self.arena.copy_within(tail, start + new_len);
            self.arena.truncate(self.arena.len() - (old_len - new_len));
        }
        let mut above = self.present & (field_bit(field) - 1);
        while above != 0 {
            let next = above.leading_zeros() as u8 + 1;
            above &= !field_bit(next);
            let span = &mut self.spans[usize::from(next)];
            span.start = (usize::from(span.start) + new_len - old_len) as u16;
        }
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
    fn the_arena_is_the_packed_fields_whatever_the_order_of_sets() {
        let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
        let mut in_order = MessageBuilder::new(Mti::AuthorizationRequest);
        for round in 0..3000usize {
            // Out of order, replacements with other lengths, removals.
            let len = 1 + (round * 7) % 999;
            b.set(61, &vec![b'z'; 999 - len]).unwrap();
            b.set(48, &vec![b'a' + (round % 26) as u8; len]).unwrap();
            b.set(4, b"000000000100").unwrap();
            b.set(2, &b"4000001234567899123"[..12 + round % 8]).unwrap();
            if round % 3 == 0 {
                b.remove(48);
            }
            b.set(100, b"1234").unwrap();
            assert_eq!(b.arena.len() + HEADER_LEN + BITMAP_LEN, b.packed_len());
        }
        in_order.set(2, b.get(2).unwrap()).unwrap();
        in_order.set(4, b.get(4).unwrap()).unwrap();
        if let Some(v) = b.get(48) {
            in_order.set(48, v).unwrap();
        }
        in_order.set(61, b.get(61).unwrap()).unwrap();
        in_order.set(100, b.get(100).unwrap()).unwrap();
        assert_eq!(b.to_vec(), in_order.to_vec());
        let packed = b.to_vec();
        let parsed = super::super::parse(&packed).unwrap();
        for field in [2, 4, 48, 61, 100] {
            assert_eq!(parsed.get(field), b.get(field), "field {field}");
        }
    }
}
