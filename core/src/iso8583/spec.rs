//! The field table: every data element of ISO 8583:1987 as laid out by the common ASCII
//! packagers (jPOS `ISO87APackager`, moov-io `spec87ascii`, pyiso8583 `default_ascii`).
//!
//! Lengths are counted on the wire, in characters. Binary fields travel as hex text, two
//! characters per byte, and their LLL prefix counts characters too, as pyiso8583
//! `default_ascii` and jPOS `IFA_LLLCHAR` do (DE 55 holds at most 255 bytes = 510 characters).

use std::fmt;

use super::ascii;

/// How long a field is on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Length {
    /// Exactly this many characters.
    Fixed(u16),
    /// A 2-digit ASCII length prefix, then at most this many characters.
    LlVar(u16),
    /// A 3-digit ASCII length prefix, then at most this many characters.
    LllVar(u16),
}

impl Length {
    /// The most characters the value may have.
    pub const fn max_len(self) -> usize {
        match self {
            Length::Fixed(n) | Length::LlVar(n) | Length::LllVar(n) => n as usize,
        }
    }

    /// Characters in the length prefix (0 for fixed fields).
    pub const fn prefix_len(self) -> usize {
        match self {
            Length::Fixed(_) => 0,
            Length::LlVar(_) => 2,
            Length::LllVar(_) => 3,
        }
    }
}

/// What characters a field may hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Content {
    /// `n`: digits.
    Numeric,
    /// `an`: letters, digits, space.
    Alphanumeric,
    /// `ans`: printable ASCII.
    AlphanumericSpecial,
    /// `z`: track 2/3 characters.
    Track,
    /// `b`: bytes, carried as uppercase (or, when parsing, lowercase) hex text.
    Binary,
    /// `x+n`: `C` or `D`, then digits.
    SignedAmount,
}

impl Content {
    /// The ISO 8583 abbreviation.
    pub fn abbreviation(self) -> &'static str {
        match self {
            Content::Numeric => "n",
            Content::Alphanumeric => "an",
            Content::AlphanumericSpecial => "ans",
            Content::Track => "z",
            Content::Binary => "b",
            Content::SignedAmount => "x+n",
        }
    }
}

/// Checks beyond the character class, for fields whose typed accessors promise a valid value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Check {
    None,
    /// DE 7: `MMDDhhmmss`.
    MonthDayTime,
    /// DE 12: `hhmmss`.
    Time,
    /// DE 14: `YYMM`.
    YearMonth,
    /// DE 95: the first 12 characters (actual transaction amount) are digits.
    LeadingAmount,
}

/// One data element's definition.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FieldSpec {
    pub number: u8,
    pub name: &'static str,
    pub length: Length,
    pub content: Content,
    pub(crate) check: Check,
    /// The bytes allowed in the value, as a class bit of [`ascii`] (precomputed: validation
    /// runs on every field of every message).
    pub(crate) class_bit: u8,
    /// The character class is the whole check: no sign, no hex parity, no range check.
    pub(crate) plain: bool,
}

const fn class_bit(content: Content) -> u8 {
    match content {
        Content::Numeric => ascii::N,
        Content::Alphanumeric => ascii::AN,
        Content::AlphanumericSpecial => ascii::ANS,
        Content::Track => ascii::Z,
        Content::Binary => ascii::HEX,
        // The sign is checked apart; the rest are digits.
        Content::SignedAmount => ascii::N,
    }
}

impl fmt::Display for FieldSpec {
    /// The format as the field map writes it: `n 12`, `LLVAR n..19`, `b 8 (16 hex)`,
    /// `LLLVAR b..255 (..510 hex)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = self.content.abbreviation();
        let binary = self.content == Content::Binary;
        let max = self.length.max_len();
        match (self.length, binary) {
            (Length::Fixed(_), false) => write!(f, "{class} {max}"),
            (Length::Fixed(_), true) => write!(f, "{class} {} ({max} hex)", max / 2),
            (Length::LlVar(_), false) => write!(f, "LLVAR {class}..{max}"),
            (Length::LlVar(_), true) => write!(f, "LLVAR {class}..{} (..{max} hex)", max / 2),
            (Length::LllVar(_), false) => write!(f, "LLLVAR {class}..{max}"),
            (Length::LllVar(_), true) => write!(f, "LLLVAR {class}..{} (..{max} hex)", max / 2),
        }
    }
}

/// The highest field number (the secondary bitmap's last bit).
pub const FIELD_MAX: u8 = 128;

/// The definition of `field`, or `None` for numbers outside 1..=128 and for DE 65.
///
/// DE 65 (the "extended bitmap" bit of the secondary bitmap) has no agreed ASCII layout: jPOS
/// packs it as 1 byte, pyiso8583 as 16 characters. cardcore refuses it rather than guess.
#[inline]
pub fn field_spec(field: u8) -> Option<&'static FieldSpec> {
    FIELDS.get(usize::from(field)).filter(|s| s.number != 0)
}

/// Every defined field, in number order (DE 1, the secondary bitmap, included).
pub fn defined_fields() -> impl Iterator<Item = &'static FieldSpec> {
    FIELDS.iter().filter(|s| s.number != 0)
}

use Content::{
    Alphanumeric as AN, AlphanumericSpecial as ANS, Binary as B, Numeric as N, SignedAmount as XN,
    Track as Z,
};
use Length::{Fixed, LlVar, LllVar};

const fn def(number: u8, name: &'static str, length: Length, content: Content) -> FieldSpec {
    checked(number, name, length, content, Check::None)
}

const fn checked(
    number: u8,
    name: &'static str,
    length: Length,
    content: Content,
    check: Check,
) -> FieldSpec {
    let plain =
        matches!(check, Check::None) && !matches!(content, Content::Binary | Content::SignedAmount);
    FieldSpec {
        number,
        name,
        length,
        content,
        check,
        class_bit: class_bit(content),
        plain,
    }
}

/// Marks a number with no definition (0 and 65).
const UNDEFINED: FieldSpec = def(0, "undefined", Fixed(0), N);

static FIELDS: [FieldSpec; 129] = [
    UNDEFINED,
    def(1, "Bitmap, secondary", Fixed(16), B),
    def(2, "Primary account number", LlVar(19), N),
    def(3, "Processing code", Fixed(6), N),
    def(4, "Amount, transaction", Fixed(12), N),
    def(5, "Amount, settlement", Fixed(12), N),
    def(6, "Amount, cardholder billing", Fixed(12), N),
    checked(
        7,
        "Transmission date and time",
        Fixed(10),
        N,
        Check::MonthDayTime,
    ),
    def(8, "Amount, cardholder billing fee", Fixed(8), N),
    def(9, "Conversion rate, settlement", Fixed(8), N),
    def(10, "Conversion rate, cardholder billing", Fixed(8), N),
    def(11, "System trace audit number", Fixed(6), N),
    checked(12, "Time, local transaction", Fixed(6), N, Check::Time),
    def(13, "Date, local transaction", Fixed(4), N),
    checked(14, "Date, expiration", Fixed(4), N, Check::YearMonth),
    def(15, "Date, settlement", Fixed(4), N),
    def(16, "Date, conversion", Fixed(4), N),
    def(17, "Date, capture", Fixed(4), N),
    def(18, "Merchant type", Fixed(4), N),
    def(19, "Acquiring institution country code", Fixed(3), N),
    def(20, "PAN extended, country code", Fixed(3), N),
    def(21, "Forwarding institution country code", Fixed(3), N),
    def(22, "Point of service entry mode", Fixed(3), N),
    def(23, "Card sequence number", Fixed(3), N),
    def(24, "Network international identifier", Fixed(3), N),
    def(25, "Point of service condition code", Fixed(2), N),
    def(26, "Point of service PIN capture code", Fixed(2), N),
    def(
        27,
        "Authorization identification response length",
        Fixed(1),
        N,
    ),
    def(28, "Amount, transaction fee", Fixed(9), XN),
    def(29, "Amount, settlement fee", Fixed(9), XN),
    def(30, "Amount, transaction processing fee", Fixed(9), XN),
    def(31, "Amount, settlement processing fee", Fixed(9), XN),
    def(
        32,
        "Acquiring institution identification code",
        LlVar(11),
        N,
    ),
    def(
        33,
        "Forwarding institution identification code",
        LlVar(11),
        N,
    ),
    def(34, "Primary account number, extended", LlVar(28), ANS),
    def(35, "Track 2 data", LlVar(37), Z),
    def(36, "Track 3 data", LllVar(104), Z),
    def(37, "Retrieval reference number", Fixed(12), AN),
    def(38, "Authorization identification response", Fixed(6), AN),
    def(39, "Response code", Fixed(2), AN),
    def(40, "Service restriction code", Fixed(3), AN),
    def(41, "Card acceptor terminal identification", Fixed(8), ANS),
    def(42, "Card acceptor identification code", Fixed(15), ANS),
    def(43, "Card acceptor name/location", Fixed(40), ANS),
    def(44, "Additional response data", LlVar(25), ANS),
    def(45, "Track 1 data", LlVar(76), ANS),
    def(46, "Additional data, ISO", LllVar(999), ANS),
    def(47, "Additional data, national", LllVar(999), ANS),
    def(48, "Additional data, private", LllVar(999), ANS),
    def(49, "Currency code, transaction", Fixed(3), N),
    def(50, "Currency code, settlement", Fixed(3), N),
    def(51, "Currency code, cardholder billing", Fixed(3), N),
    def(52, "Personal identification number data", Fixed(16), B),
    def(53, "Security related control information", Fixed(16), N),
    def(54, "Additional amounts", LllVar(120), AN),
    def(55, "ICC data", LllVar(510), B),
    def(56, "Reserved, ISO", LllVar(999), ANS),
    def(57, "Reserved, national", LllVar(999), ANS),
    def(58, "Reserved, national", LllVar(999), ANS),
    def(59, "Reserved, national", LllVar(999), ANS),
    def(60, "Reserved, national", LllVar(999), ANS),
    def(61, "Reserved, private", LllVar(999), ANS),
    def(
        62,
        "Issuer transaction id (reserved, private)",
        LllVar(999),
        ANS,
    ),
    def(63, "Reserved, private", LllVar(999), ANS),
    def(64, "Message authentication code", Fixed(16), B),
    UNDEFINED,
    def(66, "Settlement code", Fixed(1), N),
    def(67, "Extended payment code", Fixed(2), N),
    def(68, "Receiving institution country code", Fixed(3), N),
    def(69, "Settlement institution country code", Fixed(3), N),
    def(70, "Network management information code", Fixed(3), N),
    def(71, "Message number", Fixed(4), N),
    def(72, "Message number, last", Fixed(4), N),
    def(73, "Date, action", Fixed(6), N),
    def(74, "Credits, number", Fixed(10), N),
    def(75, "Credits, reversal number", Fixed(10), N),
    def(76, "Debits, number", Fixed(10), N),
    def(77, "Debits, reversal number", Fixed(10), N),
    def(78, "Transfer, number", Fixed(10), N),
    def(79, "Transfer, reversal number", Fixed(10), N),
    def(80, "Inquiries, number", Fixed(10), N),
    def(81, "Authorizations, number", Fixed(10), N),
    def(82, "Credits, processing fee amount", Fixed(12), N),
    def(83, "Credits, transaction fee amount", Fixed(12), N),
    def(84, "Debits, processing fee amount", Fixed(12), N),
    def(85, "Debits, transaction fee amount", Fixed(12), N),
    def(86, "Credits, amount", Fixed(16), N),
    def(87, "Credits, reversal amount", Fixed(16), N),
    def(88, "Debits, amount", Fixed(16), N),
    def(89, "Debits, reversal amount", Fixed(16), N),
    def(90, "Original data elements", Fixed(42), N),
    def(91, "File update code", Fixed(1), AN),
    def(92, "File security code", Fixed(2), AN),
    def(93, "Response indicator", Fixed(5), AN),
    def(94, "Service indicator", Fixed(7), AN),
    checked(
        95,
        "Replacement amounts",
        Fixed(42),
        AN,
        Check::LeadingAmount,
    ),
    def(96, "Message security code", Fixed(16), B),
    def(97, "Amount, net settlement", Fixed(17), XN),
    def(98, "Payee", Fixed(25), ANS),
    def(
        99,
        "Settlement institution identification code",
        LlVar(11),
        N,
    ),
    def(
        100,
        "Receiving institution identification code",
        LlVar(11),
        N,
    ),
    def(101, "File name", LlVar(17), ANS),
    def(102, "Account identification 1", LlVar(28), ANS),
    def(103, "Account identification 2", LlVar(28), ANS),
    def(104, "Transaction description", LllVar(100), ANS),
    def(105, "Reserved, ISO", LllVar(999), ANS),
    def(106, "Reserved, ISO", LllVar(999), ANS),
    def(107, "Reserved, ISO", LllVar(999), ANS),
    def(108, "Reserved, ISO", LllVar(999), ANS),
    def(109, "Reserved, ISO", LllVar(999), ANS),
    def(110, "Reserved, ISO", LllVar(999), ANS),
    def(111, "Reserved, ISO", LllVar(999), ANS),
    def(112, "Reserved, national", LllVar(999), ANS),
    def(113, "Reserved, national", LllVar(999), ANS),
    def(114, "Reserved, national", LllVar(999), ANS),
    def(115, "Reserved, national", LllVar(999), ANS),
    def(116, "Reserved, national", LllVar(999), ANS),
    def(117, "Reserved, national", LllVar(999), ANS),
    def(118, "Reserved, national", LllVar(999), ANS),
    def(119, "Reserved, national", LllVar(999), ANS),
    def(120, "Reserved, private", LllVar(999), ANS),
    def(121, "Reserved, private", LllVar(999), ANS),
    def(122, "Reserved, private", LllVar(999), ANS),
    def(123, "Reserved, private", LllVar(999), ANS),
    def(124, "Reserved, private", LllVar(999), ANS),
    def(125, "Reserved, private", LllVar(999), ANS),
    def(126, "Reserved, private", LllVar(999), ANS),
    def(127, "Reserved, private", LllVar(999), ANS),
    def(128, "Message authentication code, secondary", Fixed(16), B),
];

// The table is indexed by field number; a misplaced row would silently shift every field.
const _: () = {
    let mut i = 1;
    while i < FIELDS.len() {
        assert!(FIELDS[i].number as usize == i || (i == 65 && FIELDS[i].number == 0));
        // Binary fields hold whole bytes.
        if matches!(FIELDS[i].content, Content::Binary) {
            assert!(FIELDS[i].length.max_len().is_multiple_of(2));
        }
        // LL prefixes cannot express more than 99, LLL more than 999.
        match FIELDS[i].length {
            Length::LlVar(n) => assert!(n <= 99),
            Length::LllVar(n) => assert!(n <= 999),
            Length::Fixed(n) => assert!(n > 0 || i == 65),
        }
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_formats() {
        assert_eq!(field_spec(2).unwrap().to_string(), "LLVAR n..19");
        assert_eq!(field_spec(4).unwrap().to_string(), "n 12");
        assert_eq!(field_spec(52).unwrap().to_string(), "b 8 (16 hex)");
        assert_eq!(
            field_spec(55).unwrap().to_string(),
            "LLLVAR b..255 (..510 hex)"
        );
        assert_eq!(field_spec(28).unwrap().to_string(), "x+n 9");
        assert!(field_spec(0).is_none());
        assert!(field_spec(65).is_none());
        assert!(field_spec(129).is_none());
        assert_eq!(defined_fields().count(), 127);
    }
}
