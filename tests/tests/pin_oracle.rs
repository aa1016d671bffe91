//! Cross-checks cardcore's PIN blocks and its two-key 3DES against `iso8583_rs` (its
//! `crypto::pin` module, built on an older, separately compiled `des` crate).
//!
//! What the oracle can and cannot say:
//! - Its ISO-0 `verify_pin` decrypts a block and reads the PIN digits, so it confirms our
//!   encryption and the format-0 layout of our blocks.
//! - Its ISO-0 `generate_pin_block` pads with random hex digits instead of `F`, which ISO 9564-1
//!   format 0 does not allow, so our strict structure check refuses its blocks as `Padding`;
//!   the format, length and digits inside them are compared instead.
//! - Its ISO-2 blocks are deterministic (no PAN, `F` padding): an exact check of the cipher.
//! - It slices the PAN as `pan[len-13..len-1]` and so panics on a 12-digit PAN, which ISO
//!   9564-1 handles by zero-filling; every call is wrapped in `catch_unwind`.
//! - Its PIN functions do not read the `SPEC_FILE` message spec. It logs PINs and keys at debug
//!   level through `log`; no logger is installed here, so nothing is printed.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use cardcore_core::pan::luhn_check_digit;
use cardcore_core::pin::{
    decrypt_pin_block, encrypt_pin_block, Pin, PinBlockError, ZonePinKey, PIN_BLOCK_LEN,
};
use cardcore_core::Pan;
use iso8583_rs::crypto::pin::{generate_pin_block, verify_pin, PinFormat};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// Runs one oracle call; a panic inside it becomes `None`.
fn oracle<T>(call: impl FnOnce() -> T) -> Option<T> {
    silence_oracle_panics();
    panic::catch_unwind(AssertUnwindSafe(call)).ok()
}

/// The oracle's panics would print its arguments (PAN digits among them): they are expected
/// and caught, so the hook drops those and passes every other panic to the default hook.
fn silence_oracle_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let from_oracle = info
                .location()
                .is_some_and(|l| l.file().contains("iso8583_rs"));
            if !from_oracle {
                default(info);
            }
        }));
    });
}

fn oracle_verifies(pin: &str, block: &[u8; PIN_BLOCK_LEN], pan: &str, key: &[u8; 16]) -> bool {
    let outcome = oracle(|| verify_pin(&PinFormat::ISO0, pin, &block.to_vec(), pan, &key.to_vec()));
    match outcome {
        Some(Ok(verified)) => verified,
        Some(Err(e)) => panic!("iso8583_rs refused the block: {}", e.msg),
        None => panic!("iso8583_rs panicked verifying a well-formed block"),
    }
}

fn oracle_block(format: PinFormat, pin: &str, pan: &str, key: &[u8; 16]) -> [u8; PIN_BLOCK_LEN] {
    let outcome = oracle(|| generate_pin_block(&format, pin, pan, &key.to_vec()));
    match outcome {
        Some(Ok(block)) => block.try_into().expect("an 8-byte block"),
        Some(Err(e)) => panic!("iso8583_rs refused to build a block: {}", e.msg),
        None => panic!("iso8583_rs panicked building a block"),
    }
}

/// PANs of 13 to 19 digits: the oracle cannot take 12.
fn pan_strategy() -> impl Strategy<Value = String> {
    "[0-9]{12,18}".prop_map(|body| {
        let mut digits = body.into_bytes();
        digits.push(luhn_check_digit(&digits));
        String::from_utf8(digits).expect("ASCII digits")
    })
}

fn key_strategy() -> impl Strategy<Value = [u8; 16]> {
    any::<[u8; 16]>().prop_filter("halves must differ", |k| ZonePinKey::new(*k).is_ok())
}

/// Our clear format-0 PIN field for comparison: `0`, the length, the digits.
fn pin_field_prefix(pin: &str) -> String {
    format!("0{:X}{pin}", pin.len())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The format-0 PAN field, to strip it from a decrypted oracle block.
fn pan_field(pan: &str) -> [u8; PIN_BLOCK_LEN] {
    let body = &pan[..pan.len() - 1];
    let text = format!("0000{:0>12}", &body[body.len().saturating_sub(12)..]);
    std::array::from_fn(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x1508_3000_0052),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn oracle_accepts_our_blocks(
        pan in pan_strategy(),
        pin in "[0-9]{4,12}",
        other in "[0-9]{4,12}",
        key in key_strategy(),
    ) {
        let zpk = ZonePinKey::new(key).unwrap();
        let card = Pan::parse(&pan).unwrap();
        let block = encrypt_pin_block(&zpk, &card, &Pin::parse(&pin).unwrap());
        prop_assert!(oracle_verifies(&pin, &block, &pan, &key));
        prop_assert_eq!(oracle_verifies(&other, &block, &pan, &key), other == pin);
    }

    #[test]
    fn we_read_the_oracles_blocks(
        pan in pan_strategy(),
        pin in "[0-9]{4,12}",
        key in key_strategy(),
    ) {
        let zpk = ZonePinKey::new(key).unwrap();
        let card = Pan::parse(&pan).unwrap();
        let block = oracle_block(PinFormat::ISO0, &pin, &pan, &key);
        let clear = zpk.decrypt_block(block);
        let field = hex(&std::array::from_fn::<u8, 8, _>(|i| clear[i] ^ pan_field(&pan)[i]));
        prop_assert!(field.starts_with(&pin_field_prefix(&pin)), "{}", field.len());
        // Its random padding is not format 0; only an all-F draw passes our check.
        match decrypt_pin_block(&zpk, &card, &block) {
            Err(PinBlockError::Padding) => {}
            Ok(read) => prop_assert_eq!(read, Pin::parse(&pin).unwrap()),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn our_cipher_matches_the_oracles_on_format2(pin in "[0-9]{4,12}", key in key_strategy()) {
        let zpk = ZonePinKey::new(key).unwrap();
        let expected = oracle_block(PinFormat::ISO2, &pin, "4111111111111111", &key);
        let text = format!("2{:X}{pin:F<14}", pin.len());
        let clear: [u8; PIN_BLOCK_LEN] =
            std::array::from_fn(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap());
        prop_assert_eq!(zpk.encrypt_block(clear), expected);
        prop_assert_eq!(zpk.decrypt_block(expected), clear);
    }
}

#[test]
fn twelve_digit_pans_work_here_and_break_the_oracle() {
    let key = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32,
        0x10,
    ];
    let zpk = ZonePinKey::new(key).unwrap();
    let pan = "123456789007";
    let card = Pan::parse(pan).unwrap();
    let pin = Pin::parse("4321").unwrap();
    let block = encrypt_pin_block(&zpk, &card, &pin);
    assert_eq!(decrypt_pin_block(&zpk, &card, &block), Ok(pin));
    let outcome = oracle(|| {
        verify_pin(
            &PinFormat::ISO0,
            "4321",
            &block.to_vec(),
            pan,
            &key.to_vec(),
        )
    });
    assert!(
        outcome.is_none(),
        "iso8583_rs now handles 12-digit PANs: compare them too"
    );
}
