//! Byte-level helpers: character classes, hex and decimal digits.
//!
//! Validation runs on every byte of every field of every message, so a character class is one
//! lookup in a 256-entry table instead of a chain of range comparisons.

/// Content classes, one bit each in [`CLASS_TABLE`]: a byte's entry holds the bit of every
/// class it belongs to, so a whole field is valid when the AND of its bytes' entries keeps the
/// class bit.
/// `n`: ASCII digits.
pub(crate) const N: u8 = 1 << 0;
/// `an`: letters, digits and space (space padding is everyday practice in `an` fields such as
/// the approval code).
pub(crate) const AN: u8 = 1 << 1;
/// `ans`: printable ASCII, 0x20..=0x7E.
pub(crate) const ANS: u8 = 1 << 2;
/// `z`: magnetic-stripe track characters: `0`-`9`, `:;<=>?` (ISO 7811) and `D`, which some
/// acquirers use as the track 2 field separator instead of `=`.
pub(crate) const Z: u8 = 1 << 3;
/// `b` carried as text: hex digits, either case.
pub(crate) const HEX: u8 = 1 << 4;
/// The sign of an `x+n` amount: `C` (credit) or `D` (debit).
pub(crate) const SIGN: u8 = 1 << 5;

static CLASS_TABLE: [u8; 256] = build_class_table();

const fn build_class_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let mut bits = 0u8;
        if c.is_ascii_digit() {
            bits |= N | AN | Z | HEX;
        }
        if c.is_ascii_alphabetic() || c == b' ' {
            bits |= AN;
        }
        if c >= 0x20 && c <= 0x7E {
            bits |= ANS;
        }
        if (c >= b':' && c <= b'?') || c == b'D' {
            bits |= Z;
        }
        if (c >= b'A' && c <= b'F') || (c >= b'a' && c <= b'f') {
            bits |= HEX;
        }
        if c == b'C' || c == b'D' {
            bits |= SIGN;
        }
        table[b] = bits;
        b += 1;
    }
    table
}

/// Nibble value of a hex digit, or `INVALID_NIBBLE`.
const INVALID_NIBBLE: u8 = 0xFF;
static NIBBLE_TABLE: [u8; 256] = build_nibble_table();

const fn build_nibble_table() -> [u8; 256] {
    let mut table = [INVALID_NIBBLE; 256];
    let mut i = 0u8;
    while i < 10 {
        table[(b'0' + i) as usize] = i;
        i += 1;
    }
    let mut i = 0u8;
    while i < 6 {
        table[(b'A' + i) as usize] = 10 + i;
        table[(b'a' + i) as usize] = 10 + i;
        i += 1;
    }
    table
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The offset of the first byte of `bytes` outside `class` (one of the class bits), if any.
#[inline(always)]
pub(crate) fn first_outside(bytes: &[u8], class: u8) -> Option<usize> {
    // The common case (every byte valid) is checked without early exits, eight bytes at a
    // time for the two classes most bytes belong to; only a failing field pays for finding
    // the offset.
    let valid = match class {
        N => all_digits(bytes),
        ANS => all_printable(bytes),
        _ => all_in_table(bytes, class),
    };
    if valid {
        return None;
    }
    bytes
        .iter()
        .position(|&b| CLASS_TABLE[usize::from(b)] & class == 0)
}

#[inline(always)]
fn all_in_table(bytes: &[u8], class: u8) -> bool {
    bytes
        .iter()
        .fold(0xFF, |acc, &b| acc & CLASS_TABLE[usize::from(b)])
        & class
        != 0
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
/// `0` in every byte's high nibble.
const DIGIT_HIGH_NIBBLES: u64 = 0x3030_3030_3030_3030;
const SIX_EACH: u64 = 0x0606_0606_0606_0606;
/// 0x20, the lowest printable byte, in every byte.
const PRINTABLE_LOW: u64 = 0x2020_2020_2020_2020;
/// 127 - 0x7E (the highest printable byte) in every byte: adding it sets the top bit of
/// exactly the bytes above 0x7E.
const PRINTABLE_HIGH_COMPLEMENT: u64 = 0x0101_0101_0101_0101;

#[inline(always)]
fn load8(chunk: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    u64::from_le_bytes(word)
}

/// Every byte is `0`-`9`: its high nibble is 3, and adding 6 keeps it 3 (which rules out
/// `:` to `?`). The addition cannot carry into the next byte once every high nibble is 3,
/// and when one is not the first test has already failed.
#[inline(always)]
fn all_digits(bytes: &[u8]) -> bool {
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    let bad = chunks.fold(0u64, |bad, chunk| {
        let x = load8(chunk);
        let high = (x & HIGH_NIBBLES) ^ DIGIT_HIGH_NIBBLES;
        let high_after_six = (x.wrapping_add(SIX_EACH) & HIGH_NIBBLES) ^ DIGIT_HIGH_NIBBLES;
        bad | high | high_after_six
    });
    bad == 0 && all_in_table(tail, N)
}

/// Every byte is in 0x20..=0x7E: no byte below 0x20 and none above 0x7E, with the classic
/// exact "has a byte less than / more than" word tests.
#[inline(always)]
fn all_printable(bytes: &[u8]) -> bool {
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    let bad = chunks.fold(0u64, |bad, chunk| {
        let x = load8(chunk);
        let below = x.wrapping_sub(PRINTABLE_LOW) & !x & HIGH_BITS;
        let above = (x.wrapping_add(PRINTABLE_HIGH_COMPLEMENT) | x) & HIGH_BITS;
        bad | below | above
    });
    bad == 0 && all_in_table(tail, ANS)
}

/// Whether `b` belongs to `class`.
#[inline]
pub(crate) fn is_in(b: u8, class: u8) -> bool {
    CLASS_TABLE[usize::from(b)] & class != 0
}

/// Decodes 16 hex digits into a u64 (most significant digit first).
/// Returns the offset of the first bad digit on failure.
#[inline]
pub(crate) fn hex16_to_u64(digits: &[u8; 16]) -> Result<u64, usize> {
    let mut value = 0u64;
    let mut bad = 0u8;
    for &d in digits {
        let nibble = NIBBLE_TABLE[usize::from(d)];
        bad |= nibble;
        value = (value << 4) | u64::from(nibble & 0x0F);
    }
    if bad == INVALID_NIBBLE {
        return Err(digits
            .iter()
            .position(|&d| NIBBLE_TABLE[usize::from(d)] == INVALID_NIBBLE)
            .unwrap_or(0));
    }
    Ok(value)
}

/// Writes a u64 as 16 uppercase hex digits.
#[inline]
pub(crate) fn u64_to_hex16(value: u64, out: &mut [u8; 16]) {
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 60 - 4 * i;
        *slot = UPPER_HEX[((value >> shift) & 0xF) as usize];
    }
}

/// Why hex text could not be decoded into bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("hex text has an odd number of characters ({0})")]
    OddLength(usize),
    #[error("character {0} is not a hex digit")]
    BadDigit(usize),
    #[error("output buffer holds {available} bytes, {needed} needed")]
    BufferTooSmall { needed: usize, available: usize },
}

/// Decodes hex text (either case) into the front of `out`; returns the decoded bytes.
pub fn decode_hex<'b>(hex: &[u8], out: &'b mut [u8]) -> Result<&'b [u8], HexError> {
    if !hex.len().is_multiple_of(2) {
        return Err(HexError::OddLength(hex.len()));
    }
    let needed = hex.len() / 2;
    if out.len() < needed {
        return Err(HexError::BufferTooSmall {
            needed,
            available: out.len(),
        });
    }
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let hi = NIBBLE_TABLE[usize::from(pair[0])];
        let lo = NIBBLE_TABLE[usize::from(pair[1])];
        if hi == INVALID_NIBBLE {
            return Err(HexError::BadDigit(2 * i));
        }
        if lo == INVALID_NIBBLE {
            return Err(HexError::BadDigit(2 * i + 1));
        }
        out[i] = (hi << 4) | lo;
    }
    Ok(&out[..needed])
}

/// Encodes bytes as uppercase hex into the front of `out`; returns the text written.
pub fn encode_hex<'b>(bytes: &[u8], out: &'b mut [u8]) -> Result<&'b [u8], HexError> {
    let needed = bytes.len() * 2;
    if out.len() < needed {
        return Err(HexError::BufferTooSmall {
            needed,
            available: out.len(),
        });
    }
    for (i, &b) in bytes.iter().enumerate() {
        out[2 * i] = UPPER_HEX[usize::from(b >> 4)];
        out[2 * i + 1] = UPPER_HEX[usize::from(b & 0x0F)];
    }
    Ok(&out[..needed])
}

/// The value of ASCII digits already known to be digits (at most 19 of them, so no overflow).
#[inline]
pub(crate) fn digits_value(digits: &[u8]) -> u64 {
    debug_assert!(digits.len() <= 19);
    digits
        .iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d.wrapping_sub(b'0')))
}

/// Parses a length prefix of 2 or 3 ASCII digits; `None` if any is not a digit.
#[inline]
pub(crate) fn prefix_value(digits: &[u8]) -> Option<usize> {
    let mut value = 0usize;
    for &d in digits {
        let v = d.wrapping_sub(b'0');
        if v > 9 {
            return None;
        }
        value = value * 10 + usize::from(v);
    }
    Some(value)
}

/// Writes `value` as exactly `out.len()` zero-padded decimal digits.
/// Returns false (and leaves `out` unspecified) when the value has more digits than that.
#[inline]
pub(crate) fn write_padded(mut value: u64, out: &mut [u8]) -> bool {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    value == 0
}

/// Writes `value` in decimal without padding into `buf`; returns the digits.
pub(crate) fn write_decimal(value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    let mut v = value;
    loop {
        start -= 1;
        buf[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(first_outside(b"0123456789", N), None);
        assert_eq!(first_outside(b"01a3", N), Some(2));
        assert_eq!(first_outside(b"4000=2907D", Z), None);
        assert_eq!(first_outside(b"4000^", Z), Some(4));
        assert_eq!(first_outside(b"AB cd 09", AN), None);
        assert_eq!(first_outside(b"AB-", AN), Some(2));
        assert_eq!(first_outside(b"~ !", ANS), None);
        assert_eq!(first_outside(b"\x7F", ANS), Some(0));
        assert_eq!(first_outside(b"\xC3\xA9", ANS), Some(0));
        assert_eq!(first_outside(b"09afAF", HEX), None);
        assert_eq!(first_outside(b"09afAg", HEX), Some(5));
        assert_eq!(first_outside(b"", N), None);
        assert!(is_in(b'C', SIGN) && is_in(b'D', SIGN) && !is_in(b'0', SIGN));
    }

    #[test]
    fn word_checks_agree_with_the_table() {
        // Every byte value in every position of a word, among otherwise valid bytes.
        for class in [N, ANS] {
            let good = if class == N { b'7' } else { b'~' };
            for len in [8usize, 9, 16, 23] {
                for at in 0..len {
                    for b in 0..=255u8 {
                        let mut bytes = vec![good; len];
                        bytes[at] = b;
                        let expected = bytes
                            .iter()
                            .position(|&x| CLASS_TABLE[usize::from(x)] & class == 0);
                        assert_eq!(
                            first_outside(&bytes, class),
                            expected,
                            "class {class} byte {b:#x} at {at}/{len}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn hex_round_trip() {
        let mut text = [0u8; 16];
        u64_to_hex16(0xF23C_4481_28E0_9A10, &mut text);
        assert_eq!(&text, b"F23C448128E09A10");
        assert_eq!(hex16_to_u64(&text), Ok(0xF23C_4481_28E0_9A10));
        assert_eq!(hex16_to_u64(b"f23c448128e09a10"), Ok(0xF23C_4481_28E0_9A10));
        assert_eq!(hex16_to_u64(b"F23C4481G8E09A10"), Err(8));
        let mut bytes = [0u8; 4];
        assert_eq!(decode_hex(b"0aFf", &mut bytes), Ok(&[0x0A, 0xFF][..]));
        assert_eq!(decode_hex(b"0aF", &mut bytes), Err(HexError::OddLength(3)));
        assert_eq!(decode_hex(b"0x", &mut bytes), Err(HexError::BadDigit(1)));
        assert_eq!(
            decode_hex(b"0011223344", &mut bytes),
            Err(HexError::BufferTooSmall {
                needed: 5,
                available: 4
            })
        );
        let mut out = [0u8; 4];
        assert_eq!(encode_hex(&[0x0A, 0xFF], &mut out), Ok(&b"0AFF"[..]));
    }

    #[test]
    fn decimal() {
        assert_eq!(prefix_value(b"019"), Some(19));
        assert_eq!(prefix_value(b"1a"), None);
        let mut out = [0u8; 6];
        assert!(write_padded(42, &mut out));
        assert_eq!(&out, b"000042");
        assert!(!write_padded(1_000_000, &mut out));
        let mut buf = [0u8; 20];
        assert_eq!(write_decimal(0, &mut buf), b"0");
        assert_eq!(write_decimal(u64::MAX, &mut buf), b"18446744073709551615");
        assert_eq!(digits_value(b"000000012345"), 12345);
    }
}
