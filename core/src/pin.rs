//! PINs: ISO 9564-1 format-0 PIN blocks under a zone PIN key, and keyed verification values
//! for PINs and CVV2s.
//!
//! Field 52 of a PIN transaction carries the PIN block encrypted under the zone PIN key shared
//! with the acquiring network, a double-length 3DES key (DES-EDE2). The engine decrypts the
//! block, checks its structure, and compares a keyed hash of (PAN, PIN) with the PIN
//! verification value stored at issuance, in constant time. The PIN itself is never stored.
//! CVV2s are kept the same way: a keyed hash of (PAN, expiry, CVV2).
//!
//! Everything on the decision path works on fixed arrays and does not allocate. No error and
//! no `Debug` output shows a PIN digit, a PIN block or a key, and nothing here logs.

use std::fmt;

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::TdesEde2;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::card::Expiry;
use crate::pan::Pan;

/// The shortest PIN ISO 9564 allows.
pub const PIN_MIN_DIGITS: usize = 4;
/// The longest PIN ISO 9564 allows.
pub const PIN_MAX_DIGITS: usize = 12;
/// A PIN block is one DES block.
pub const PIN_BLOCK_LEN: usize = 8;

const NIBBLES_PER_BLOCK: usize = PIN_BLOCK_LEN * 2;
// The format nibble, the length nibble and the digits must fit in one block.
const _: () = assert!(2 + PIN_MAX_DIGITS <= NIBBLES_PER_BLOCK);
// The length nibble holds at most 15.
const _: () = assert!(PIN_MAX_DIGITS <= 0xF);

/// A personal identification number of 4 to 12 digits. `Debug` shows `Pin(****)`; the digits
/// are zeroed when the value is dropped, and comparing two PINs takes constant time.
#[derive(Clone)]
pub struct Pin {
    digits: [u8; PIN_MAX_DIGITS],
    len: u8,
}

/// Why a PIN was refused. It never echoes the digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("PIN must have 4 to 12 digits, got {0}")]
    Length(usize),
    #[error("PIN must contain only digits 0-9")]
    NotDigits,
}

impl Pin {
    pub fn parse(text: &str) -> Result<Pin, PinError> {
        Pin::from_ascii(text.as_bytes())
    }

    /// Validates ASCII digits.
    pub fn from_ascii(text: &[u8]) -> Result<Pin, PinError> {
        if !(PIN_MIN_DIGITS..=PIN_MAX_DIGITS).contains(&text.len()) {
            return Err(PinError::Length(text.len()));
        }
        if !text.iter().all(u8::is_ascii_digit) {
            return Err(PinError::NotDigits);
        }
        let mut digits = [0u8; PIN_MAX_DIGITS];
        digits[..text.len()].copy_from_slice(text);
        Ok(Pin {
            digits,
            len: text.len() as u8,
        })
    }

    pub fn digit_count(&self) -> usize {
        usize::from(self.len)
    }

    fn ascii(&self) -> &[u8] {
        &self.digits[..self.digit_count()]
    }
}

impl PartialEq for Pin {
    fn eq(&self, other: &Pin) -> bool {
        constant_time_eq(self.ascii(), other.ascii())
    }
}

impl Eq for Pin {}

impl Drop for Pin {
    fn drop(&mut self) {
        wipe(&mut self.digits);
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

/// A zone PIN key: the double-length 3DES key (DES-EDE2) under which field 52 travels.
/// `Debug` never shows it. The key schedule is computed once, when the key is loaded.
#[derive(Clone)]
pub struct ZonePinKey {
    cipher: TdesEde2,
}

/// Why a key was refused. It never echoes the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key must be {expected} hex characters, got {got}")]
    HexLength { expected: usize, got: usize },
    #[error("key must contain only hex characters 0-9, a-f, A-F")]
    NotHex,
    #[error("the two halves of a double-length key must differ: equal halves are single DES")]
    EqualHalves,
}

impl ZonePinKey {
    pub const LEN: usize = 16;

    /// Refuses a key whose halves are equal apart from the parity bits, which DES ignores:
    /// such a key is single DES in disguise.
    pub fn new(key: [u8; ZonePinKey::LEN]) -> Result<ZonePinKey, KeyError> {
        let mut key = key;
        let (left, right) = key.split_at(8);
        if left.iter().zip(right).all(|(l, r)| l & 0xFE == r & 0xFE) {
            wipe(&mut key);
            return Err(KeyError::EqualHalves);
        }
        let cipher = TdesEde2::new(&GenericArray::from(key));
        wipe(&mut key);
        Ok(ZonePinKey { cipher })
    }

    /// Parses 32 hex characters, as keys are exchanged in clear components or under test.
    pub fn from_hex(text: &str) -> Result<ZonePinKey, KeyError> {
        let mut key = decode_hex::<{ ZonePinKey::LEN }>(text)?;
        let result = ZonePinKey::new(key);
        wipe(&mut key);
        result
    }

    /// The key check value: the first three bytes of a zero block encrypted under the key,
    /// which operators compare to confirm a key was loaded right without seeing it.
    pub fn check_value(&self) -> [u8; 3] {
        let block = self.encrypt_block([0; PIN_BLOCK_LEN]);
        [block[0], block[1], block[2]]
    }

    /// Encrypts one block (ECB, as PIN blocks are).
    pub fn encrypt_block(&self, block: [u8; PIN_BLOCK_LEN]) -> [u8; PIN_BLOCK_LEN] {
        let mut data = GenericArray::from(block);
        self.cipher.encrypt_block(&mut data);
        data.into()
    }

    /// Decrypts one block (ECB, as PIN blocks are).
    pub fn decrypt_block(&self, block: [u8; PIN_BLOCK_LEN]) -> [u8; PIN_BLOCK_LEN] {
        let mut data = GenericArray::from(block);
        self.cipher.decrypt_block(&mut data);
        data.into()
    }
}

impl fmt::Debug for ZonePinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ZonePinKey(..)")
    }
}

/// Why a decrypted PIN block was refused. It names the structural fault and never a digit.
/// A block encrypted under another key usually fails here; on the wire every one of these
/// should be answered like a wrong PIN, so the answer does not tell a prober which check
/// failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinBlockError {
    #[error("PIN block format {0} is not supported: field 52 must hold ISO 9564 format 0")]
    Format(u8),
    #[error("PIN block gives a PIN length of {0}, outside 4 to 12")]
    Length(u8),
    #[error("PIN block has a non-decimal nibble among the PIN digits")]
    NotDigits,
    #[error("PIN block padding is not all F")]
    Padding,
}

/// The clear ISO 9564 format-0 block: `0 | length | PIN digits | F padding` XOR
/// `0000 | the 12 rightmost PAN digits excluding the check digit`.
pub fn pin_block_format0(pin: &Pin, pan: &Pan) -> [u8; PIN_BLOCK_LEN] {
    let mut field = pin_field(pin);
    let block = xor(&field, &pan_field(pan.expose_digits().as_bytes()));
    wipe(&mut field);
    block
}

/// The format-0 block for `pin`, encrypted under the zone PIN key: what field 52 carries.
pub fn encrypt_pin_block(zpk: &ZonePinKey, pan: &Pan, pin: &Pin) -> [u8; PIN_BLOCK_LEN] {
    let mut clear = pin_block_format0(pin, pan);
    let block = zpk.encrypt_block(clear);
    wipe(&mut clear);
    block
}

/// Decrypts field 52 and checks the format-0 structure: format nibble 0, length 4 to 12,
/// decimal digits, padding all F.
pub fn decrypt_pin_block(
    zpk: &ZonePinKey,
    pan: &Pan,
    block: &[u8; PIN_BLOCK_LEN],
) -> Result<Pin, PinBlockError> {
    let mut clear = zpk.decrypt_block(*block);
    let pin = parse_pin_block_format0(pan, &clear);
    wipe(&mut clear);
    pin
}

/// Reads the PIN out of a clear format-0 block: the inverse of [`pin_block_format0`].
pub fn parse_pin_block_format0(
    pan: &Pan,
    clear: &[u8; PIN_BLOCK_LEN],
) -> Result<Pin, PinBlockError> {
    let mut field = xor(clear, &pan_field(pan.expose_digits().as_bytes()));
    let mut nibbles = unpack(&field);
    let pin = pin_from_nibbles(&nibbles);
    wipe(&mut field);
    wipe(&mut nibbles);
    pin
}

/// Secret bytes of a keyed hash (HMAC-SHA256). `Debug` never shows them.
pub const MAC_KEY_LEN: usize = 32;

/// The key of PIN verification values. Kept apart from [`Cvv2Key`] by type, so one key
/// serves one purpose; each value also hashes its own domain tag.
#[derive(Clone)]
pub struct PinVerificationKey(MacKey);

impl PinVerificationKey {
    pub fn new(key: [u8; MAC_KEY_LEN]) -> PinVerificationKey {
        PinVerificationKey(MacKey::new(key))
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<PinVerificationKey, KeyError> {
        Ok(PinVerificationKey(MacKey::from_hex(text)?))
    }
}

impl fmt::Debug for PinVerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinVerificationKey(..)")
    }
}

/// What is stored instead of a PIN: HMAC-SHA256 under the PIN verification key of the PAN
/// digits and the PIN. Binding the PAN ties the value to one card, so equal PINs on two cards
/// give unrelated values. `Debug` shows `Pvv(..)`; equality takes constant time.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct PinVerificationValue([u8; 32]);

impl PinVerificationValue {
    /// At issuance or PIN change: the value to store for `pin` on the card `pan`.
    pub fn compute(pvk: &PinVerificationKey, pan: &Pan, pin: &Pin) -> PinVerificationValue {
        let pan = pan.expose_digits().as_bytes();
        PinVerificationValue(pvk.0.mac(&[
            PVV_DOMAIN,
            &[pan.len() as u8],
            pan,
            &[pin.len],
            pin.ascii(),
        ]))
    }

    /// Whether `pin` is the card's PIN, compared in constant time.
    pub fn verify(&self, pvk: &PinVerificationKey, pan: &Pan, pin: &Pin) -> bool {
        let candidate = PinVerificationValue::compute(pvk, pan, pin);
        constant_time_eq(&self.0, &candidate.0)
    }

    /// The whole check of a PIN transaction: decrypt field 52, check the block, compare.
    pub fn verify_block(
        &self,
        zpk: &ZonePinKey,
        pvk: &PinVerificationKey,
        pan: &Pan,
        block: &[u8; PIN_BLOCK_LEN],
    ) -> Result<bool, PinBlockError> {
        let pin = decrypt_pin_block(zpk, pan, block)?;
        Ok(self.verify(pvk, pan, &pin))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> PinVerificationValue {
        PinVerificationValue(bytes)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl PartialEq for PinVerificationValue {
    fn eq(&self, other: &PinVerificationValue) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for PinVerificationValue {}

impl fmt::Debug for PinVerificationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pvv(..)")
    }
}

/// The key of CVV2 values; see [`PinVerificationKey`] for why it is a type of its own.
#[derive(Clone)]
pub struct Cvv2Key(MacKey);

impl Cvv2Key {
    pub fn new(key: [u8; MAC_KEY_LEN]) -> Cvv2Key {
        Cvv2Key(MacKey::new(key))
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Cvv2Key, KeyError> {
        Ok(Cvv2Key(MacKey::from_hex(text)?))
    }
}

impl fmt::Debug for Cvv2Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvv2Key(..)")
    }
}

/// Why a CVV2 was refused. It never echoes the digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("CVV2 must be 3 or 4 digits")]
pub struct Cvv2Error;

/// What is stored instead of a CVV2: HMAC-SHA256 under the CVV2 key of the PAN digits, the
/// expiry month and the CVV2 (3 or 4 ASCII digits). `Debug` shows `Cvv2Value(..)`; equality
/// takes constant time.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct Cvv2Value([u8; 32]);

impl Cvv2Value {
    pub fn compute(
        key: &Cvv2Key,
        pan: &Pan,
        expiry: Expiry,
        cvv2: &[u8],
    ) -> Result<Cvv2Value, Cvv2Error> {
        if !(3..=4).contains(&cvv2.len()) || !cvv2.iter().all(u8::is_ascii_digit) {
            return Err(Cvv2Error);
        }
        let pan = pan.expose_digits().as_bytes();
        Ok(Cvv2Value(key.0.mac(&[
            CVV2_DOMAIN,
            &[pan.len() as u8],
            pan,
            &expiry.year.to_be_bytes(),
            &[expiry.month],
            &[cvv2.len() as u8],
            cvv2,
        ])))
    }

    /// Whether `cvv2` is the card's, compared in constant time. A malformed CVV2 is wrong.
    pub fn verify(&self, key: &Cvv2Key, pan: &Pan, expiry: Expiry, cvv2: &[u8]) -> bool {
        match Cvv2Value::compute(key, pan, expiry, cvv2) {
            Ok(candidate) => constant_time_eq(&self.0, &candidate.0),
            Err(Cvv2Error) => false,
        }
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Cvv2Value {
        Cvv2Value(bytes)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl PartialEq for Cvv2Value {
    fn eq(&self, other: &Cvv2Value) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for Cvv2Value {}

impl fmt::Debug for Cvv2Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvv2Value(..)")
    }
}

/// Compares two byte strings in time that depends on their lengths only, never on where they
/// differ: for CVV2s, tokens and verification values. Lengths are not secret.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Domain tags keep a PIN value and a CVV2 value apart even under one key.
const PVV_DOMAIN: &[u8] = b"cardcore pvv v1\0";
const CVV2_DOMAIN: &[u8] = b"cardcore cvv2 v1\0";

/// HMAC-SHA256 with the key absorbed once: each use clones the keyed state (fixed-size, no
/// allocation) instead of hashing the key again.
#[derive(Clone)]
struct MacKey(Hmac<Sha256>);

/// SHA-256's block size: HMAC pads a shorter key with zeros to this length.
const SHA256_BLOCK_LEN: usize = 64;
const _: () = assert!(MAC_KEY_LEN <= SHA256_BLOCK_LEN);

impl MacKey {
    fn new(key: [u8; MAC_KEY_LEN]) -> MacKey {
        // RFC 2104 zero-pads a key shorter than the block, so the padded key gives the very
        // same HMAC, and the block-sized constructor cannot fail.
        let mut padded = [0u8; SHA256_BLOCK_LEN];
        padded[..MAC_KEY_LEN].copy_from_slice(&key);
        let mac = <Hmac<Sha256> as KeyInit>::new(&GenericArray::from(padded));
        wipe(&mut padded);
        MacKey(mac)
    }

    fn from_hex(text: &str) -> Result<MacKey, KeyError> {
        let mut key = decode_hex::<MAC_KEY_LEN>(text)?;
        let mac = MacKey::new(key);
        wipe(&mut key);
        Ok(mac)
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// The PIN field of format 0 as 16 nibbles packed in 8 bytes.
fn pin_field(pin: &Pin) -> [u8; PIN_BLOCK_LEN] {
    let mut nibbles = [0xFu8; NIBBLES_PER_BLOCK];
    nibbles[0] = 0;
    nibbles[1] = pin.len;
    for (slot, digit) in nibbles[2..].iter_mut().zip(pin.ascii()) {
        *slot = digit & 0x0F;
    }
    let field = pack(&nibbles);
    wipe(&mut nibbles);
    field
}

/// The PAN field of format 0: four zero nibbles, then the 12 rightmost PAN digits without the
/// check digit; a shorter PAN is right-justified and zero-filled on the left (ISO 9564-1).
fn pan_field(pan_digits: &[u8]) -> [u8; PIN_BLOCK_LEN] {
    const PAN_DIGITS_USED: usize = 12;
    let mut nibbles = [0u8; NIBBLES_PER_BLOCK];
    let body = &pan_digits[..pan_digits.len().saturating_sub(1)];
    let used = body.len().min(PAN_DIGITS_USED);
    let from = &body[body.len() - used..];
    for (slot, digit) in nibbles[NIBBLES_PER_BLOCK - used..].iter_mut().zip(from) {
        *slot = digit & 0x0F;
    }
    pack(&nibbles)
}

/// Checks the clear PIN field. Every nibble is examined whatever the outcome, so the time
/// taken does not point at the first bad position.
fn pin_from_nibbles(nibbles: &[u8; NIBBLES_PER_BLOCK]) -> Result<Pin, PinBlockError> {
    let format = nibbles[0];
    let len = nibbles[1];
    let mut bad_digit = 0u8;
    let mut bad_padding = 0u8;
    for (i, &nibble) in nibbles[2..].iter().enumerate() {
        let in_pin = u8::from(i < usize::from(len));
        bad_digit |= in_pin & u8::from(nibble > 9);
        bad_padding |= (1 - in_pin) & u8::from(nibble != 0xF);
    }
    if format != 0 {
        return Err(PinBlockError::Format(format));
    }
    if !(PIN_MIN_DIGITS..=PIN_MAX_DIGITS).contains(&usize::from(len)) {
        return Err(PinBlockError::Length(len));
    }
    if bad_digit != 0 {
        return Err(PinBlockError::NotDigits);
    }
    if bad_padding != 0 {
        return Err(PinBlockError::Padding);
    }
    let mut digits = [0u8; PIN_MAX_DIGITS];
    for (slot, nibble) in digits.iter_mut().zip(&nibbles[2..2 + usize::from(len)]) {
        *slot = b'0' + nibble;
    }
    Ok(Pin { digits, len })
}

fn pack(nibbles: &[u8; NIBBLES_PER_BLOCK]) -> [u8; PIN_BLOCK_LEN] {
    let mut out = [0u8; PIN_BLOCK_LEN];
    for (byte, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        *byte = (pair[0] << 4) | pair[1];
    }
    out
}

fn unpack(bytes: &[u8; PIN_BLOCK_LEN]) -> [u8; NIBBLES_PER_BLOCK] {
    let mut out = [0u8; NIBBLES_PER_BLOCK];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = byte >> 4;
        pair[1] = byte & 0x0F;
    }
    out
}

fn xor(a: &[u8; PIN_BLOCK_LEN], b: &[u8; PIN_BLOCK_LEN]) -> [u8; PIN_BLOCK_LEN] {
    let mut out = [0u8; PIN_BLOCK_LEN];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

fn decode_hex<const N: usize>(text: &str) -> Result<[u8; N], KeyError> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return Err(KeyError::HexLength {
            expected: 2 * N,
            got: text.len(),
        });
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(high), Some(low)) => *byte = (high << 4) | low,
            _ => {
                wipe(&mut out);
                return Err(KeyError::NotHex);
            }
        }
    }
    Ok(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Overwrites secret bytes. `black_box` keeps the compiler from dropping the writes as dead
/// stores; without `unsafe` (volatile writes) or a new dependency this is the best effort.
fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> [u8; PIN_BLOCK_LEN] {
        decode_hex::<PIN_BLOCK_LEN>(text).unwrap()
    }

    #[test]
    fn pan_field_takes_twelve_digits_before_the_check_digit() {
        // The worked example of ISO 9564-1 format 0 found in most textbooks; its PAN fails
        // the Luhn check, so it is fed to the helper directly.
        assert_eq!(pan_field(b"43219876543210987"), hex("0000987654321098"));
        assert_eq!(pan_field(b"4111111111111111"), hex("0000111111111111"));
        assert_eq!(pan_field(b"4000001234567899"), hex("0000000123456789"));
        // A 12-digit PAN has 11 digits before its check digit: zero-filled on the left.
        assert_eq!(pan_field(b"123456789012"), hex("0000012345678901"));
    }

    #[test]
    fn textbook_format0_example() {
        let pin = Pin::parse("1234").unwrap();
        let field = pin_field(&pin);
        assert_eq!(field, hex("041234FFFFFFFFFF"));
        assert_eq!(
            xor(&field, &pan_field(b"43219876543210987")),
            hex("0412AC89ABCDEF67")
        );
    }

    #[test]
    fn nibble_packing_round_trips() {
        let bytes = hex("0123456789ABCDEF");
        let nibbles = unpack(&bytes);
        assert_eq!(
            nibbles,
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
        assert_eq!(pack(&nibbles), bytes);
    }

    #[test]
    fn padded_mac_key_equals_the_plain_hmac_key() {
        let key = [0x5Au8; MAC_KEY_LEN];
        let mut plain = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        plain.update(b"message");
        let expected: [u8; 32] = plain.finalize().into_bytes().into();
        assert_eq!(MacKey::new(key).mac(&[b"mess", b"age"]), expected);
    }

    #[test]
    fn hmac_sha256_known_answer() {
        // RFC 4231 test case 2 uses a 4-byte key ("Jefe"); zero-padding it to 32 bytes gives
        // the same HMAC, which checks the padding argument against a published vector.
        let mut key = [0u8; MAC_KEY_LEN];
        key[..4].copy_from_slice(b"Jefe");
        let mac = MacKey::new(key).mac(&[b"what do ya want ", b"for nothing?"]);
        let expected =
            decode_hex::<32>("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
                .unwrap();
        assert_eq!(mac, expected);
    }

    #[test]
    fn hex_keys_are_checked() {
        assert_eq!(
            decode_hex::<2>("abc"),
            Err(KeyError::HexLength {
                expected: 4,
                got: 3
            })
        );
        assert_eq!(decode_hex::<2>("abcg"), Err(KeyError::NotHex));
        assert_eq!(decode_hex::<2>("aBcD"), Ok([0xAB, 0xCD]));
    }
}
