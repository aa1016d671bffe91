//! Parsing: one pass over the buffer, every field validated, nothing copied or allocated.

use std::fmt;

use super::ascii::{self, digits_value, first_outside, hex16_to_u64, prefix_value};
use super::codes::{OriginalData, PosEntryMode, ProcessingCode, TransmissionTime};
use super::error::{ErrorKind, Location, ParseError};
use super::spec::{field_spec, Check, Content, FieldSpec, Length};
use super::{debug_fields, field_bit, HexError, Mti, MESSAGE_MAX_LEN};
use crate::card::Expiry;
use crate::ids::TxnId;
use crate::rules::Mcc;

/// Length of the MTI and of one bitmap on the wire.
const MTI_LEN: usize = 4;
const BITMAP_LEN: usize = 16;

/// Where a field's value sits in the buffer. Offsets fit in u16 because messages are at most
/// [`MESSAGE_MAX_LEN`] bytes.
#[derive(Clone, Copy, Default)]
struct Span {
    start: u16,
    len: u16,
}

const _: () = assert!(MESSAGE_MAX_LEN <= u16::MAX as usize);

/// A parsed message: the MTI and every present field as a slice of the input.
#[derive(Clone)]
pub struct Message<'a> {
    buf: &'a [u8],
    mti: Mti,
    /// Field n present ⇔ bit `128 - n` set (field 1, the secondary bitmap, is the top bit).
    present: u128,
    /// Indexed by field number; entry 0 is unused.
    spans: [Span; 129],
}

/// Parses one message (without its TCP length prefix).
pub fn parse(buf: &[u8]) -> Result<Message<'_>, ParseError> {
    if buf.len() > MESSAGE_MAX_LEN {
        let kind = ErrorKind::MessageTooLong {
            len: buf.len(),
            max: MESSAGE_MAX_LEN,
        };
        return Err(ParseError::new(Location::Message, kind));
    }
    let mti = read_mti(buf)?;
    let (present, mut pos) = read_bitmaps(buf)?;
    // Filled in place: the spans are most of the message's size, not worth a second copy.
    let mut message = Message {
        buf,
        mti,
        present,
        spans: [Span::default(); 129],
    };
    // Walk the bitmaps one 64-bit half at a time: u64 bit tricks are cheaper than u128 ones.
    for (half, first_field) in [
        ((present >> 64) as u64 & !(1 << 63), 1u8),
        (present as u64, 65),
    ] {
        let mut pending = half;
        while pending != 0 {
            let offset = pending.leading_zeros();
            pending &= !((1u64 << 63) >> offset);
            let field = first_field + offset as u8;
            let at = |kind| ParseError::new(Location::Field(field), kind);
            let spec = field_spec(field).ok_or(at(ErrorKind::UndefinedField))?;
            let (start, len) = extent(buf, pos, spec).map_err(at)?;
            validate(spec, &buf[start..start + len]).map_err(at)?;
            message.spans[usize::from(field)] = Span {
                start: start as u16,
                len: len as u16,
            };
            pos = start + len;
        }
    }
    if pos != buf.len() {
        let kind = ErrorKind::TrailingBytes {
            count: buf.len() - pos,
        };
        return Err(ParseError::new(Location::Message, kind));
    }
    Ok(message)
}

/// What can be read from a message that failed to parse: enough for the server to answer
/// `30` (format error) to the right request.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Salvage {
    pub mti: Option<Mti>,
    /// DE 11, when the MTI, the bitmaps and every field before DE 11 are readable.
    pub stan: Option<u32>,
}

/// Reads the MTI and STAN of a message without requiring the rest to be valid.
pub fn salvage(buf: &[u8]) -> Salvage {
    let Ok(mti) = read_mti(buf) else {
        return Salvage::default();
    };
    Salvage {
        mti: Some(mti),
        stan: salvage_stan(buf),
    }
}

fn salvage_stan(buf: &[u8]) -> Option<u32> {
    const STAN: u8 = 11;
    let (present, mut pos) = read_bitmaps(buf).ok()?;
    if present & field_bit(STAN) == 0 {
        return None;
    }
    // Fields 2..=10 only need their lengths to be readable to be stepped over.
    for field in 2..STAN {
        if present & field_bit(field) != 0 {
            let (start, len) = extent(buf, pos, field_spec(field)?).ok()?;
            pos = start + len;
        }
    }
    let (start, len) = extent(buf, pos, field_spec(STAN)?).ok()?;
    let digits = &buf[start..start + len];
    first_outside(digits, ascii::N)
        .is_none()
        .then(|| digits_value(digits) as u32)
}

fn read_mti(buf: &[u8]) -> Result<Mti, ParseError> {
    let at = |kind| ParseError::new(Location::Mti, kind);
    let digits = buf.get(..MTI_LEN).ok_or(at(ErrorKind::Truncated {
        needed: MTI_LEN,
        available: buf.len(),
    }))?;
    if let Some(offset) = first_outside(digits, ascii::N) {
        return Err(at(ErrorKind::BadCharacter {
            offset,
            expected: "a digit",
        }));
    }
    let code = digits_value(digits) as u16;
    Mti::from_code(code).ok_or(at(ErrorKind::UnknownMti(code)))
}

/// Returns the presence bits of fields 1..=128 and the offset just after the bitmaps.
fn read_bitmaps(buf: &[u8]) -> Result<(u128, usize), ParseError> {
    let primary = read_bitmap(buf, MTI_LEN, Location::PrimaryBitmap)?;
    let mut present = u128::from(primary) << 64;
    let mut pos = MTI_LEN + BITMAP_LEN;
    if present & field_bit(1) != 0 {
        present |= u128::from(read_bitmap(buf, pos, Location::Field(1))?);
        pos += BITMAP_LEN;
    }
    Ok((present, pos))
}

fn read_bitmap(buf: &[u8], pos: usize, location: Location) -> Result<u64, ParseError> {
    let available = buf.len().saturating_sub(pos);
    let text: &[u8; BITMAP_LEN] = buf
        .get(pos..pos + BITMAP_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(ParseError::new(
            location,
            ErrorKind::Truncated {
                needed: BITMAP_LEN,
                available,
            },
        ))?;
    hex16_to_u64(text).map_err(|offset| {
        ParseError::new(
            location,
            ErrorKind::BadCharacter {
                offset,
                expected: "a hex digit",
            },
        )
    })
}

/// Where the value of a field starting at `pos` is: (start, len). Checks lengths only.
#[inline]
fn extent(buf: &[u8], pos: usize, spec: &FieldSpec) -> Result<(usize, usize), ErrorKind> {
    let available = buf.len() - pos;
    let (start, len) = match spec.length {
        Length::Fixed(n) => (pos, usize::from(n)),
        Length::LlVar(max) | Length::LllVar(max) => {
            let prefix_len = spec.length.prefix_len();
            let prefix = buf.get(pos..pos + prefix_len).ok_or(ErrorKind::Truncated {
                needed: prefix_len,
                available,
            })?;
            let len = prefix_value(prefix).ok_or(ErrorKind::BadLengthPrefix)?;
            if len > usize::from(max) {
                return Err(ErrorKind::TooLong {
                    len,
                    max: usize::from(max),
                });
            }
            (pos + prefix_len, len)
        }
    };
    if buf.len() - start < len {
        return Err(ErrorKind::Truncated {
            needed: len,
            available: buf.len() - start,
        });
    }
    Ok((start, len))
}

/// Checks a field value's characters and, for the fields that have one, its range.
/// Shared by the parser and the builder, so whatever one accepts the other does too.
#[inline(always)]
pub(crate) fn validate(spec: &FieldSpec, value: &[u8]) -> Result<(), ErrorKind> {
    if spec.plain {
        return match first_outside(value, spec.class_bit) {
            None => Ok(()),
            Some(offset) => Err(bad_character(spec.content, offset)),
        };
    }
    validate_special(spec, value)
}

#[cold]
fn bad_character(content: Content, offset: usize) -> ErrorKind {
    ErrorKind::BadCharacter {
        offset,
        expected: expected_text(content),
    }
}

/// Fields with a sign, hex parity or a range check.
fn validate_special(spec: &FieldSpec, value: &[u8]) -> Result<(), ErrorKind> {
    let (class_start, class_bytes) = match spec.content {
        Content::SignedAmount => {
            if !value.first().is_some_and(|&b| ascii::is_in(b, ascii::SIGN)) {
                return Err(ErrorKind::BadCharacter {
                    offset: 0,
                    expected: "C or D",
                });
            }
            (1, &value[1..])
        }
        _ => (0, value),
    };
    if let Some(offset) = first_outside(class_bytes, spec.class_bit) {
        return Err(bad_character(spec.content, class_start + offset));
    }
    if spec.content == Content::Binary && !value.len().is_multiple_of(2) {
        return Err(ErrorKind::OddHexLength { len: value.len() });
    }
    check_range(spec.check, value)
}

fn expected_text(content: Content) -> &'static str {
    match content {
        Content::Numeric | Content::SignedAmount => "a digit",
        Content::Alphanumeric => "a letter, digit or space",
        Content::AlphanumericSpecial => "printable ASCII",
        Content::Track => "a track character",
        Content::Binary => "a hex digit",
    }
}

/// Range checks on values already known to be digits where they need to be.
fn check_range(check: Check, value: &[u8]) -> Result<(), ErrorKind> {
    let two = |at: usize| (value[at] - b'0') * 10 + (value[at + 1] - b'0');
    let out_of_range = |what| Err(ErrorKind::OutOfRange { what });
    match check {
        Check::None => Ok(()),
        Check::MonthDayTime => match TransmissionTime::from_digits(value) {
            Some(t) if t.is_valid() => Ok(()),
            _ => out_of_range("MMDDhhmmss"),
        },
        Check::Time if two(0) > 23 || two(2) > 59 || two(4) > 59 => out_of_range("hhmmss"),
        Check::Time => Ok(()),
        Check::YearMonth if !(1..=12).contains(&two(2)) => out_of_range("YYMM month"),
        Check::YearMonth => Ok(()),
        Check::LeadingAmount => match first_outside(&value[..12], ascii::N) {
            Some(offset) => Err(ErrorKind::BadCharacter {
                offset,
                expected: "a digit",
            }),
            None => Ok(()),
        },
    }
}

impl<'a> Message<'a> {
    pub fn mti(&self) -> Mti {
        self.mti
    }

    /// The whole message as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Whether field `field` is present (field 1: a secondary bitmap was sent).
    pub fn has(&self, field: u8) -> bool {
        (1..=128).contains(&field) && self.present & field_bit(field) != 0
    }

    /// The raw value of a field as on the wire, without its length prefix. Binary fields are
    /// hex text. `None` when absent (and for field 1, which is not data).
    pub fn get(&self, field: u8) -> Option<&'a [u8]> {
        if field < 2 || !self.has(field) {
            return None;
        }
        let span = self.spans[usize::from(field)];
        let start = usize::from(span.start);
        self.buf.get(start..start + usize::from(span.len))
    }

    /// A field as text. Every field is ASCII once parsed, so this is `None` only when absent.
    pub fn get_str(&self, field: u8) -> Option<&'a str> {
        self.get(field).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The present data fields (2..=128) in order, with their raw values.
    pub fn fields(&self) -> impl Iterator<Item = (u8, &'a [u8])> + '_ {
        (2..=128u8).filter_map(move |f| self.get(f).map(|v| (f, v)))
    }

    /// The first of `required` that is absent, if any: for "missing mandatory field" checks.
    pub fn first_missing(&self, required: &[u8]) -> Option<u8> {
        required.iter().copied().find(|&f| f < 2 || !self.has(f))
    }

    /// The value of a numeric field (at most 19 digits, which every numeric field of at most
    /// 18 digits is; longer ones such as DE 90 have their own accessors).
    fn numeric(&self, field: u8) -> Option<u64> {
        self.get(field).filter(|v| v.len() <= 18).map(digits_value)
    }

    /// DE 2, the PAN digits. Never log them.
    pub fn pan_bytes(&self) -> Option<&'a [u8]> {
        self.get(2)
    }

    /// DE 3.
    pub fn processing_code(&self) -> Option<ProcessingCode> {
        self.get(3).and_then(ProcessingCode::from_digits)
    }

    /// DE 4 in minor units of the DE 49 currency (at most 12 digits, so it fits an i64).
    pub fn amount_minor(&self) -> Option<i64> {
        self.numeric(4).map(|v| v as i64)
    }

    /// DE 6, cardholder billing amount, in minor units of the DE 51 currency.
    pub fn billing_amount_minor(&self) -> Option<i64> {
        self.numeric(6).map(|v| v as i64)
    }

    /// DE 7.
    pub fn transmission_time(&self) -> Option<TransmissionTime> {
        self.get(7).and_then(TransmissionTime::from_digits)
    }

    /// DE 11.
    pub fn stan(&self) -> Option<u32> {
        self.numeric(11).map(|v| v as u32)
    }

    /// DE 14.
    pub fn expiry(&self) -> Option<Expiry> {
        self.get(14).and_then(|v| Expiry::from_yymm(v).ok())
    }

    /// DE 18.
    pub fn mcc(&self) -> Option<Mcc> {
        self.numeric(18).map(|v| Mcc(v as u16))
    }

    /// DE 22.
    pub fn pos_entry_mode(&self) -> Option<PosEntryMode> {
        self.get(22).and_then(PosEntryMode::from_digits)
    }

    /// DE 25 (`06` = pre-authorisation, see docs/iso8583.md).
    pub fn pos_condition_code(&self) -> Option<u8> {
        self.numeric(25).map(|v| v as u8)
    }

    /// DE 32, as a number (DE 90 carries it zero-filled, so compare numbers, not text).
    pub fn acquirer_id(&self) -> Option<u64> {
        self.numeric(32)
    }

    /// DE 33, as a number.
    pub fn forwarding_id(&self) -> Option<u64> {
        self.numeric(33)
    }

    /// DE 39.
    pub fn response_code(&self) -> Option<[u8; 2]> {
        self.get(39).and_then(|v| v.try_into().ok())
    }

    /// DE 49, ISO 4217 numeric (978 for EUR).
    pub fn currency_numeric(&self) -> Option<u16> {
        self.numeric(49).map(|v| v as u16)
    }

    /// DE 51, ISO 4217 numeric.
    pub fn billing_currency_numeric(&self) -> Option<u16> {
        self.numeric(51).map(|v| v as u16)
    }

    /// DE 52, the encrypted PIN block. Never log it.
    pub fn pin_block(&self) -> Option<[u8; 8]> {
        let mut block = [0u8; 8];
        let hex = self.get(52)?;
        super::ascii::decode_hex(hex, &mut block).ok()?;
        Some(block)
    }

    /// DE 48 subelement 92, CVV2 (see docs/iso8583.md). Never log it.
    pub fn cvv2(&self) -> Option<&'a [u8]> {
        subelement(self.get(48)?, 92)
    }

    /// DE 62, the issuer's transaction id that cardcore puts in its responses.
    /// `None` when absent or not a decimal number.
    pub fn issuer_txn_id(&self) -> Option<TxnId> {
        let v = self.get(62)?;
        if v.is_empty() {
            return None;
        }
        v.iter()
            .try_fold(0u64, |acc, &d| {
                let digit = d.wrapping_sub(b'0');
                (digit <= 9).then_some(())?;
                acc.checked_mul(10)?.checked_add(u64::from(digit))
            })
            .map(TxnId)
    }

    /// DE 70 (001 sign-on, 002 sign-off, 301 echo test).
    pub fn network_management_code(&self) -> Option<u16> {
        self.numeric(70).map(|v| v as u16)
    }

    /// DE 90.
    pub fn original_data(&self) -> Option<OriginalData> {
        self.get(90).and_then(OriginalData::from_digits)
    }

    /// DE 95, its first part: the actual transaction amount, in minor units (for a reversal,
    /// the amount the transaction ends at).
    pub fn replacement_amount_minor(&self) -> Option<i64> {
        self.get(95).map(|v| digits_value(&v[..12]) as i64)
    }

    /// Decodes a binary field's hex into `out`; `Ok(None)` when the field is absent.
    pub fn decode_binary<'b>(
        &self,
        field: u8,
        out: &'b mut [u8],
    ) -> Result<Option<&'b [u8]>, HexError> {
        match self.get(field) {
            Some(hex) => super::ascii::decode_hex(hex, out).map(Some),
            None => Ok(None),
        }
    }
}

/// The value of subelement `id` in a DE 48 made of `id (2 digits) length (2 digits) value`
/// groups; `None` if absent or if the field does not follow that layout.
fn subelement(data: &[u8], id: u8) -> Option<&[u8]> {
    let mut rest = data;
    while rest.len() >= 4 {
        let tag = prefix_value(&rest[..2])?;
        let len = prefix_value(&rest[2..4])?;
        let value = rest.get(4..4 + len)?;
        if tag == usize::from(id) {
            return Some(value);
        }
        rest = &rest[4 + len..];
    }
    None
}

impl fmt::Debug for Message<'_> {
    /// Shows every field but masks the PAN and hides track data, PIN block, CVV2 and ICC data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(f, "Message", self.mti, self.fields())
    }
}
