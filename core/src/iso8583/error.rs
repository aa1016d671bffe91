//! Codec errors. They name the part of the message that is wrong and never carry field
//! content (a field may be a PAN, track data or a PIN block).

use std::fmt;

use super::spec::field_spec;

/// Where in a message a problem is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Location {
    /// The message as a whole (too long, bytes after the last field).
    Message,
    Mti,
    PrimaryBitmap,
    /// A data element; field 1 is the secondary bitmap.
    Field(u8),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Location::Message => f.write_str("message"),
            Location::Mti => f.write_str("MTI"),
            Location::PrimaryBitmap => f.write_str("primary bitmap"),
            Location::Field(n) => match field_spec(n) {
                Some(spec) => write!(f, "field {n} ({})", spec.name),
                None => write!(f, "field {n}"),
            },
        }
    }
}

/// What is wrong.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ErrorKind {
    /// The data ends before this part does.
    Truncated { needed: usize, available: usize },
    /// A character outside the part's character set, at this offset within the part.
    BadCharacter {
        offset: usize,
        expected: &'static str,
    },
    /// A length prefix that is not all digits.
    BadLengthPrefix,
    /// A length prefix (or value) above the field's maximum.
    TooLong { len: usize, max: usize },
    /// The whole message would exceed [`super::MESSAGE_MAX_LEN`].
    MessageTooLong { len: usize, max: usize },
    /// A fixed-length field given a value of another length.
    WrongLength { len: usize, expected: usize },
    /// Binary data as hex text with an odd number of characters.
    OddHexLength { len: usize },
    /// Well-formed characters that do not make a valid value (month 13, minute 75 ...).
    OutOfRange { what: &'static str },
    /// The bitmap names a field with no definition.
    UndefinedField,
    /// The MTI is four digits but not a message type cardcore handles.
    UnknownMti(u16),
    /// Bytes left after the last field the bitmaps name.
    TrailingBytes { count: usize },
    /// The field is computed by the codec (the secondary bitmap) and cannot be set.
    NotSettable,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} left")
            }
            ErrorKind::BadCharacter { offset, expected } => {
                write!(f, "character at offset {offset} is not {expected}")
            }
            ErrorKind::BadLengthPrefix => f.write_str("length prefix is not all digits"),
            ErrorKind::TooLong { len, max } => write!(f, "length {len} exceeds the maximum {max}"),
            ErrorKind::MessageTooLong { len, max } => {
                write!(f, "message length {len} exceeds the maximum {max}")
            }
            ErrorKind::WrongLength { len, expected } => {
                write!(f, "length {len}, the field is exactly {expected}")
            }
            ErrorKind::OddHexLength { len } => {
                write!(f, "binary data has an odd number of hex characters ({len})")
            }
            ErrorKind::OutOfRange { what } => write!(f, "{what} out of range"),
            ErrorKind::UndefinedField => f.write_str("field is not defined"),
            ErrorKind::UnknownMti(code) => write!(f, "unknown message type {code:04}"),
            ErrorKind::TrailingBytes { count } => write!(f, "{count} bytes after the last field"),
            ErrorKind::NotSettable => f.write_str("field is computed by the codec"),
        }
    }
}

/// Why a message could not be parsed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
#[error("ISO 8583 {location}: {kind}")]
pub struct ParseError {
    pub location: Location,
    pub kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn new(location: Location, kind: ErrorKind) -> ParseError {
        ParseError { location, kind }
    }

    /// The field at fault, if the problem is in a field (1 = secondary bitmap).
    pub fn field(&self) -> Option<u8> {
        match self.location {
            Location::Field(n) => Some(n),
            _ => None,
        }
    }
}

/// Why a field value was refused by the builder.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
#[error("ISO 8583 field {field}: {kind}")]
pub struct FieldError {
    pub field: u8,
    pub kind: ErrorKind,
}

impl FieldError {
    pub(crate) fn new(field: u8, kind: ErrorKind) -> FieldError {
        FieldError { field, kind }
    }
}

/// Why a response could not be built.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("message type {0} is itself a response and has none")]
    NoResponse(super::Mti),
    #[error("the message type could not be read")]
    MtiUnreadable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field() {
        let e = ParseError::new(
            Location::Field(4),
            ErrorKind::BadCharacter {
                offset: 3,
                expected: "a digit",
            },
        );
        assert_eq!(
            e.to_string(),
            "ISO 8583 field 4 (Amount, transaction): character at offset 3 is not a digit"
        );
        assert_eq!(e.field(), Some(4));
        let e = ParseError::new(Location::Mti, ErrorKind::UnknownMti(300));
        assert_eq!(e.to_string(), "ISO 8583 MTI: unknown message type 0300");
        assert_eq!(e.field(), None);
        let e = ParseError::new(Location::Field(65), ErrorKind::UndefinedField);
        assert_eq!(e.to_string(), "ISO 8583 field 65: field is not defined");
    }
}
