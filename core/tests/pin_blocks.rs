//! Known-answer tests of ISO 9564 format-0 PIN blocks and of two-key 3DES, and the refusal of
//! malformed blocks. The encrypted vectors were cross-checked with OpenSSL:
//! `printf <block bytes> | openssl enc -des-ede-ecb -K <key hex> -nopad | xxd -p`.

use cardcore_core::pin::{
    decrypt_pin_block, encrypt_pin_block, parse_pin_block_format0, pin_block_format0, KeyError,
    Pin, PinBlockError, PinError, ZonePinKey,
};
use cardcore_core::Pan;

/// The double-length test key of ANSI X9.24 examples; its check value 08D7B4 is quoted by
/// HSM vendors.
const TEST_KEY: &str = "0123456789ABCDEFFEDCBA9876543210";
/// The key of iso8583_rs's own tests, which publish one encrypted block under it.
const ISO8583_RS_KEY: &str = "e0f4543f3e2a2c5ffc7e5e5a222e3e4d";

fn hex8(text: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn pan(text: &str) -> Pan {
    Pan::parse(text).unwrap()
}

fn pin(text: &str) -> Pin {
    Pin::parse(text).unwrap()
}

/// The format-0 PAN field, written independently of the library: `0000` and the 12 digits
/// before the check digit, zero-filled on the left.
fn pan_field(pan: &str) -> [u8; 8] {
    let body = &pan[..pan.len() - 1];
    let twelve = format!("{:0>12}", &body[body.len().saturating_sub(12)..]);
    hex8(&format!("0000{twelve}"))
}

fn xor(a: [u8; 8], b: [u8; 8]) -> [u8; 8] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

#[test]
fn clear_format0_blocks() {
    let cases = [
        ("1234", "4111111111111111", "041225EEEEEEEEEE"),
        ("1234", "4000001234567899", "041234FEDCBA9876"),
        ("0000", "0000000000000", "040000FFFFFFFFFF"),
        ("123456789012", "0000000000000", "0C123456789012FF"),
        ("98765", "4242424242424242", "0598527BDBDBDBDB"),
    ];
    for (pin_text, pan_text, expected) in cases {
        let pan = pan(pan_text);
        let clear = pin_block_format0(&pin(pin_text), &pan);
        assert_eq!(clear, hex8(expected), "{pan_text}");
        assert_eq!(parse_pin_block_format0(&pan, &clear), Ok(pin(pin_text)));
    }
}

#[test]
fn two_key_3des_known_answers() {
    let key = ZonePinKey::from_hex(TEST_KEY).unwrap();
    assert_eq!(key.check_value(), [0x08, 0xD7, 0xB4]);
    assert_eq!(key.encrypt_block([0; 8]), hex8("08D7B4FB629D0885"));
    assert_eq!(key.decrypt_block(hex8("08D7B4FB629D0885")), [0; 8]);
    let cases = [
        (TEST_KEY, "041234FEDCBA9876", "7886F2179A0694B3"),
        (TEST_KEY, "041225EEEEEEEEEE", "2A3D408A1977DDE9"),
        (ISO8583_RS_KEY, "041225EEEEEEEEEE", "6042012526A9C2E0"),
        // iso8583_rs publishes this one: ISO format 2, PIN 8976.
        (ISO8583_RS_KEY, "248976FFFFFFFFFF", "795E511357332491"),
    ];
    for (key_hex, clear, encrypted) in cases {
        let key = ZonePinKey::from_hex(key_hex).unwrap();
        assert_eq!(key.encrypt_block(hex8(clear)), hex8(encrypted), "{clear}");
        assert_eq!(
            key.decrypt_block(hex8(encrypted)),
            hex8(clear),
            "{encrypted}"
        );
    }
}

#[test]
fn encrypted_format0_known_answers() {
    let key = ZonePinKey::from_hex(TEST_KEY).unwrap();
    let pan = pan("4000001234567899");
    let block = encrypt_pin_block(&key, &pan, &pin("1234"));
    assert_eq!(block, hex8("7886F2179A0694B3"));
    assert_eq!(decrypt_pin_block(&key, &pan, &block), Ok(pin("1234")));
    let other = ZonePinKey::from_hex(ISO8583_RS_KEY).unwrap();
    let pan = self::pan("4111111111111111");
    assert_eq!(
        encrypt_pin_block(&other, &pan, &pin("1234")),
        hex8("6042012526A9C2E0")
    );
}

#[test]
fn malformed_blocks_are_refused_by_name() {
    let key = ZonePinKey::from_hex(TEST_KEY).unwrap();
    let pan_text = "5412345678901232";
    let pan = pan(pan_text);
    let cases = [
        ("147395FFFFFFFFFF", PinBlockError::Format(1)),
        ("347395FFFFFFFFFF", PinBlockError::Format(3)),
        ("F47395FFFFFFFFFF", PinBlockError::Format(15)),
        ("037395FFFFFFFFFF", PinBlockError::Length(3)),
        ("00FFFFFFFFFFFFFF", PinBlockError::Length(0)),
        ("0D7395739573957F", PinBlockError::Length(13)),
        ("04739AFFFFFFFFFF", PinBlockError::NotDigits),
        ("047F95FFFFFFFFFF", PinBlockError::NotDigits),
        ("0473950FFFFFFFFF", PinBlockError::Padding),
        ("047395FFFFFFFFFE", PinBlockError::Padding),
        ("05739500FFFFFFFF", PinBlockError::Padding),
    ];
    for (field, expected) in cases {
        let clear = xor(hex8(field), pan_field(pan_text));
        assert_eq!(
            parse_pin_block_format0(&pan, &clear),
            Err(expected),
            "{field}"
        );
        let block = key.encrypt_block(clear);
        let err = decrypt_pin_block(&key, &pan, &block).unwrap_err();
        assert_eq!(err, expected, "{field}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("7395") && !shown.contains("739"), "{shown}");
    }
}

#[test]
fn the_pan_is_part_of_the_block() {
    let key = ZonePinKey::from_hex(TEST_KEY).unwrap();
    let block = encrypt_pin_block(&key, &pan("4111111111111111"), &pin("1234"));
    // The same block read against another card: the PAN field differs, so the PIN field is
    // garbled, which the structure check or the PIN comparison catches.
    let other = decrypt_pin_block(&key, &pan("4000001234567899"), &block);
    assert_ne!(other, Ok(pin("1234")));
}

#[test]
fn pins_are_checked_and_never_shown() {
    assert_eq!(Pin::parse("123"), Err(PinError::Length(3)));
    assert_eq!(Pin::parse("1234567890123"), Err(PinError::Length(13)));
    assert_eq!(Pin::parse("12a4"), Err(PinError::NotDigits));
    // Non-ASCII digits: twelve bytes, so the length passes and the characters do not.
    assert_eq!(Pin::parse("１２３４"), Err(PinError::NotDigits));
    assert_eq!(Pin::parse(" 1234"), Err(PinError::NotDigits));
    let secret = pin("7395");
    assert_eq!(format!("{secret:?}"), "Pin(****)");
    assert_eq!(secret.digit_count(), 4);
    for err in [PinError::Length(3), PinError::NotDigits] {
        assert!(!err.to_string().contains("7395"));
    }
    assert_eq!(pin("0000"), pin("0000"));
    assert_ne!(pin("0000"), pin("00000"));
    assert_ne!(pin("1234"), pin("1235"));
}

#[test]
fn zone_pin_keys_are_checked_and_never_shown() {
    assert_eq!(
        ZonePinKey::from_hex("0123").unwrap_err(),
        KeyError::HexLength {
            expected: 32,
            got: 4
        }
    );
    assert_eq!(
        ZonePinKey::from_hex("0123456789ABCDEFFEDCBA987654321G").unwrap_err(),
        KeyError::NotHex
    );
    // Equal halves, and halves equal but for the parity bits: single DES in disguise.
    for single in [
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789ABCDEF0022446688AACCEE",
    ] {
        assert_eq!(
            ZonePinKey::from_hex(single).unwrap_err(),
            KeyError::EqualHalves,
            "{single}"
        );
    }
    let key = ZonePinKey::from_hex(TEST_KEY).unwrap();
    let shown = format!("{key:?}");
    assert_eq!(shown, "ZonePinKey(..)");
    for err in [KeyError::NotHex, KeyError::EqualHalves] {
        assert!(!err.to_string().to_ascii_uppercase().contains("0123456789"));
    }
}
