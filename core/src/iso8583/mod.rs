//! ISO 8583:1987 ASCII codec: the layout of jPOS `ISO87APackager`, moov-io `spec87ascii` and
//! pyiso8583 `default_ascii` (field map and conventions: docs/iso8583.md).
//!
//! - [`parse`] reads a message in one pass, validating every field against the field table,
//!   and returns a [`Message`] whose fields are slices of the input: no copy, no allocation.
//!   Any malformed input is a [`ParseError`] naming the part at fault; nothing panics.
//! - [`salvage`] reads the MTI and STAN of a message that failed to parse, so the server can
//!   still answer `30` (format error).
//! - [`MessageBuilder`] holds validated field values and packs them into a `Vec<u8>` or
//!   `BytesMut` without per-field allocation; [`MessageBuilder::response_to`] starts a response.
//! - [`FrameDecoder`] and [`encode_frame`] handle the 2-byte length framing used on TCP.
//! - [`codes`] maps processing codes and POS entry modes to cardcore's transaction types and
//!   spending permissions.
//!
//! `Debug` output of messages masks the PAN and hides track data, expiry, PIN block, CVV2
//! and ICC data; errors never carry field content.

mod ascii;
pub mod codes;
mod error;
mod frame;
mod mti;
mod pack;
mod parse;
mod spec;

use std::fmt;

pub use ascii::{decode_hex, encode_hex, HexError};
pub use codes::{EntryMode, OriginalData, PosEntryMode, ProcessingCode, TransmissionTime};
pub use error::{ErrorKind, FieldError, Location, ParseError, ResponseError};
pub use frame::{encode_frame, FrameDecoder, FrameError, FRAME_HEADER_LEN, FRAME_MAX_LEN};
pub use mti::{MessageClass, Mti};
pub use pack::{MessageBuilder, PackBuffer, RESPONSE_ECHO_FIELDS};
pub use parse::{parse, salvage, Message, Salvage};
pub use spec::{defined_fields, field_spec, Content, FieldSpec, Length, FIELD_MAX};

/// The longest message cardcore parses or packs, in bytes. Real authorisations are a few
/// hundred bytes; this leaves room for large private fields while keeping buffers bounded.
pub const MESSAGE_MAX_LEN: usize = 8192;

/// The presence bit of field `field` (1..=128): field 1 is the top bit, as in the bitmaps.
#[inline]
pub(crate) fn field_bit(field: u8) -> u128 {
    debug_assert!((1..=128).contains(&field));
    1u128 << (128 - u32::from(field))
}

/// How `Debug` shows a field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Clear,
    /// First six and last four digits, as PCI DSS allows.
    MaskedPan,
    /// Length only.
    Hidden,
}

fn shown(field: u8) -> Shown {
    match field {
        2 => Shown::MaskedPan,
        // Expiry, extended PAN, track 3, track 2, track 1, DE 48 (CVV2), PIN block, ICC data,
        // account identifications.
        14 | 34 | 35 | 36 | 45 | 48 | 52 | 55 | 102 | 103 => Shown::Hidden,
        _ => Shown::Clear,
    }
}

struct FieldValue<'v>(u8, &'v [u8]);

impl fmt::Debug for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let FieldValue(field, value) = *self;
        // Parsed and built values are ASCII; "?" is only a fallback.
        let text = |bytes| std::str::from_utf8(bytes).unwrap_or("?");
        match shown(field) {
            Shown::Clear => write!(f, "{:?}", text(value)),
            Shown::MaskedPan if value.len() >= 13 => {
                f.write_str("\"")?;
                f.write_str(text(&value[..6]))?;
                for _ in 0..value.len() - 10 {
                    f.write_str("*")?;
                }
                f.write_str(text(&value[value.len() - 4..]))?;
                f.write_str("\"")
            }
            Shown::MaskedPan | Shown::Hidden => write!(f, "<{} chars hidden>", value.len()),
        }
    }
}

/// Writes `Name {"mti": 0100, 2: "411111******1111", 3: "000000", ...}` with sensitive fields
/// masked or hidden.
pub(crate) fn debug_fields<'v>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    mti: Mti,
    fields: impl Iterator<Item = (u8, &'v [u8])>,
) -> fmt::Result {
    f.write_str(name)?;
    f.write_str(" ")?;
    let mut map = f.debug_map();
    map.entry(&"mti", &format_args!("{mti}"));
    for (field, value) in fields {
        map.entry(&field, &FieldValue(field, value));
    }
    map.finish()
}
