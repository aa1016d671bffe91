//! Primary account numbers: valid by construction, masked whenever shown.
//!
//! A `Pan` keeps the digits only for as long as a request is being handled. What is stored
//! (in memory indexes, the journal, snapshots) is a [`PanFingerprint`], a keyed hash, plus
//! the masked form: the first six and last four digits, as PCI DSS allows.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a PAN was refused. It never echoes the digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PanError {
    #[error("PAN must have 12 to 19 digits, got {0}")]
    Length(usize),
    #[error("PAN must contain only digits")]
    NotDigits,
    #[error("PAN fails the Luhn check")]
    Luhn,
}

/// A primary account number of 12 to 19 digits that passes the Luhn check.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pan {
    digits: [u8; Pan::MAX_LEN],
    len: u8,
}

impl Pan {
    pub const MIN_LEN: usize = 12;
    pub const MAX_LEN: usize = 19;

    /// Validates ASCII digits: length, characters, Luhn check digit.
    pub fn from_ascii(text: &[u8]) -> Result<Pan, PanError> {
        if !(Pan::MIN_LEN..=Pan::MAX_LEN).contains(&text.len()) {
            return Err(PanError::Length(text.len()));
        }
        if !text.iter().all(u8::is_ascii_digit) {
            return Err(PanError::NotDigits);
        }
        if !luhn_valid(text) {
            return Err(PanError::Luhn);
        }
        let mut digits = [0u8; Pan::MAX_LEN];
        digits[..text.len()].copy_from_slice(text);
        Ok(Pan {
            digits,
            len: text.len() as u8,
        })
    }

    pub fn parse(text: &str) -> Result<Pan, PanError> {
        Pan::from_ascii(text.as_bytes())
    }

    /// The digits in clear, for packing into a message. Never log this.
    pub fn expose_digits(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// First six and last four digits, the rest as `*`.
    pub fn masked(&self) -> MaskedPan {
        let len = self.len();
        let mut out = MaskedPan {
            first6: [0; 6],
            last4: [0; 4],
            len: self.len,
        };
        out.first6.copy_from_slice(&self.digits[..6]);
        out.last4.copy_from_slice(&self.digits[len - 4..len]);
        out
    }

    pub fn last4(&self) -> &str {
        let len = self.len();
        std::str::from_utf8(&self.digits[len - 4..len]).unwrap_or("")
    }

    /// A keyed hash of the PAN: how cards are found without storing PANs in clear.
    /// SipHash-1-3 with a 128-bit output over the digits as one number (19 digits fit in 64
    /// bits) followed by the length, so that leading zeros count.
    pub fn fingerprint(&self, key: &PanKey) -> PanFingerprint {
        PanFingerprint(siphash13_128(key.k0, key.k1, self.value(), self.len))
    }

    /// The digits as a number.
    fn value(&self) -> u64 {
        self.digits[..self.len()]
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
    }
}

/// SipHash-1-3, 128-bit output, of the 9-byte message `word` (little-endian) then `last`:
/// one compression for the word, one for the final block, three finalisation rounds per
/// output half (the algorithm of Aumasson and Bernstein, specialised to this one length).
fn siphash13_128(k0: u64, k1: u64, word: u64, last: u8) -> u128 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d ^ 0xee,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    const MESSAGE_LEN_BYTES: u64 = 9;
    for m in [word, (MESSAGE_LEN_BYTES << 56) | u64::from(last)] {
        v[3] ^= m;
        sip_round(&mut v);
        v[0] ^= m;
    }
    v[2] ^= 0xee;
    for _ in 0..3 {
        sip_round(&mut v);
    }
    let low = v[0] ^ v[1] ^ v[2] ^ v[3];
    v[1] ^= 0xdd;
    for _ in 0..3 {
        sip_round(&mut v);
    }
    let high = v[0] ^ v[1] ^ v[2] ^ v[3];
    (u128::from(high) << 64) | u128::from(low)
}

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Computes the Luhn check digit for `body` (digits without the check digit).
pub fn luhn_check_digit(body: &[u8]) -> u8 {
    let mut sum = 0u32;
    for (i, d) in body.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    b'0' + ((10 - sum % 10) % 10) as u8
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.masked(), f)
    }
}

/// The masked form of a PAN (`424242******4242`), kept as what it shows: the first six and
/// last four digits and the length, eleven bytes that a card record holds inline (a card
/// keeps one for as long as it exists). Serialised as its text, as a `String` would be.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaskedPan {
    first6: [u8; 6],
    last4: [u8; 4],
    len: u8,
}

impl MaskedPan {
    /// Digits shown at each end.
    const SHOWN_FIRST: usize = 6;
    const SHOWN_LAST: usize = 4;

    /// Reads the text form back: 12 to 19 characters, six digits, `*`, four digits.
    pub fn parse(text: &str) -> Result<MaskedPan, PanError> {
        let bytes = text.as_bytes();
        let len = bytes.len();
        if !(Pan::MIN_LEN..=Pan::MAX_LEN).contains(&len) {
            return Err(PanError::Length(len));
        }
        let (first, rest) = bytes.split_at(MaskedPan::SHOWN_FIRST);
        let (middle, last) = rest.split_at(rest.len() - MaskedPan::SHOWN_LAST);
        let digits = first.iter().chain(last).all(u8::is_ascii_digit);
        if !digits || !middle.iter().all(|&b| b == b'*') {
            return Err(PanError::NotDigits);
        }
        let mut out = MaskedPan {
            first6: [0; 6],
            last4: [0; 4],
            len: len as u8,
        };
        out.first6.copy_from_slice(first);
        out.last4.copy_from_slice(last);
        Ok(out)
    }

    /// The first six digits (the issuer's identification number).
    pub fn first6(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.first6).unwrap_or("")
    }

    pub fn last4(&self) -> &str {
        std::str::from_utf8(&self.last4).unwrap_or("")
    }

    /// The length of the PAN, and so of the text form.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Display for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.first6())?;
        let hidden = self
            .len()
            .saturating_sub(MaskedPan::SHOWN_FIRST + MaskedPan::SHOWN_LAST);
        for _ in 0..hidden {
            f.write_str("*")?;
        }
        f.write_str(self.last4())
    }
}

impl fmt::Debug for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for MaskedPan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MaskedPan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        MaskedPan::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The secret key of PAN fingerprints. Its `Debug` never shows the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PanKey {
    k0: u64,
    k1: u64,
}

impl PanKey {
    pub fn new(key: [u8; 16]) -> PanKey {
        let (a, b) = key.split_at(8);
        PanKey {
            k0: u64::from_le_bytes(a.try_into().unwrap_or_default()),
            k1: u64::from_le_bytes(b.try_into().unwrap_or_default()),
        }
    }
}

impl fmt::Debug for PanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PanKey(..)")
    }
}

/// A keyed 128-bit hash of a PAN: the key of the card index and what the journal stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct PanFingerprint(pub u128);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_length_digits_and_luhn() {
        assert!(Pan::parse("4242424242424242").is_ok());
        assert!(Pan::parse("4000001234567899").is_ok());
        assert_eq!(Pan::parse("4242424242424241"), Err(PanError::Luhn));
        assert_eq!(Pan::parse("42424242424"), Err(PanError::Length(11)));
        assert_eq!(
            Pan::parse("42424242424242424242"),
            Err(PanError::Length(20))
        );
        assert_eq!(Pan::parse("4242-4242-4242-42"), Err(PanError::NotDigits));
    }

    #[test]
    fn check_digit_completes_a_valid_pan() {
        for body in ["424242424242424", "400000123456789", "50000000000"] {
            let mut full = body.as_bytes().to_vec();
            full.push(luhn_check_digit(body.as_bytes()));
            assert!(Pan::from_ascii(&full).is_ok(), "{body}");
        }
    }

    #[test]
    fn never_shows_the_middle_digits() {
        let pan = Pan::parse("4000001234567899").unwrap();
        assert_eq!(pan.to_string(), "400000******7899");
        assert_eq!(format!("{pan:?}"), "Pan(400000******7899)");
        assert_eq!(pan.last4(), "7899");
        assert_eq!(pan.expose_digits(), "4000001234567899");
    }

    #[test]
    fn masked_pans_read_back_from_their_text_and_serialise_as_it() {
        for digits in ["400000123456", "4000001234567899", "4000001234567890003"] {
            let mut full = digits.as_bytes()[..digits.len() - 1].to_vec();
            full.push(luhn_check_digit(&full));
            let masked = Pan::from_ascii(&full).unwrap().masked();
            let text = masked.to_string();
            assert_eq!(text.len(), full.len());
            assert_eq!(MaskedPan::parse(&text), Ok(masked));
            assert_eq!(masked.first6(), &text[..6]);
            assert_eq!(masked.last4(), &text[text.len() - 4..]);
            let as_string = bincode::serialize(&text).unwrap();
            assert_eq!(bincode::serialize(&masked).unwrap(), as_string);
            let back: MaskedPan = bincode::deserialize(&as_string).unwrap();
            assert_eq!(back, masked);
        }
        for bad in [
            "",
            "40000012345",
            "400000*****x7899",
            "40000a******7899",
            "400000***-**7899",
        ] {
            assert!(MaskedPan::parse(bad).is_err(), "{bad}");
        }
        assert!(std::mem::size_of::<MaskedPan>() <= 11);
    }

    #[test]
    fn siphash_matches_the_reference_implementation() {
        use siphasher::sip128::{Hasher128, SipHasher13};
        use std::hash::Hasher;
        for (k0, k1, word, last) in [
            (0u64, 0u64, 0u64, 0u8),
            (1, 2, 4_242_424_242_424_242, 16),
            (u64::MAX, 7, 99, 19),
        ] {
            let mut h = SipHasher13::new_with_keys(k0, k1);
            h.write(&word.to_le_bytes());
            h.write(&[last]);
            assert_eq!(siphash13_128(k0, k1, word, last), h.finish128().as_u128());
        }
    }

    #[test]
    fn fingerprints_depend_on_key_and_digits() {
        let a = Pan::parse("4242424242424242").unwrap();
        let b = Pan::parse("4000001234567899").unwrap();
        let k1 = PanKey::new([1; 16]);
        let k2 = PanKey::new([2; 16]);
        assert_eq!(a.fingerprint(&k1), a.fingerprint(&k1));
        assert_ne!(a.fingerprint(&k1), b.fingerprint(&k1));
        assert_ne!(a.fingerprint(&k1), a.fingerprint(&k2));
        assert_eq!(format!("{k1:?}"), "PanKey(..)");
    }
}
