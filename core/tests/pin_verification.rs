//! PIN and CVV2 verification values, and the constant-time comparison they rest on.

use cardcore_core::pin::{
    constant_time_eq, encrypt_pin_block, Cvv2Error, Cvv2Key, Cvv2Value, KeyError, Pin,
    PinBlockError, PinVerificationKey, PinVerificationValue, ZonePinKey,
};
use cardcore_core::{Expiry, Pan};

fn pan(text: &str) -> Pan {
    Pan::parse(text).unwrap()
}

fn pin(text: &str) -> Pin {
    Pin::parse(text).unwrap()
}

fn pvk() -> PinVerificationKey {
    PinVerificationKey::new([0x42; 32])
}

#[test]
fn constant_time_eq_compares_contents_and_lengths() {
    let cases: [(&[u8], &[u8], bool); 8] = [
        (b"", b"", true),
        (b"abc", b"abc", true),
        (b"abc", b"abd", false),
        (b"abc", b"xbc", false),
        (b"abc", b"ab", false),
        (b"ab", b"abc", false),
        (b"", b"a", false),
        (&[0u8; 32], &[0u8; 32], true),
    ];
    for (a, b, expected) in cases {
        assert_eq!(constant_time_eq(a, b), expected, "{a:?} {b:?}");
    }
    // A difference anywhere is found, first byte or last.
    let base = [7u8; 64];
    for i in 0..base.len() {
        let mut changed = base;
        changed[i] ^= 1;
        assert!(!constant_time_eq(&base, &changed), "byte {i}");
    }
}

#[test]
fn pin_verification_value_is_bound_to_key_card_and_pin() {
    let card = pan("4000001234567899");
    let pvv = PinVerificationValue::compute(&pvk(), &card, &pin("2580"));
    assert!(pvv.verify(&pvk(), &card, &pin("2580")));
    assert!(!pvv.verify(&pvk(), &card, &pin("2581")));
    assert!(!pvv.verify(&pvk(), &card, &pin("25800")));
    assert!(!pvv.verify(&pvk(), &pan("4111111111111111"), &pin("2580")));
    assert!(!pvv.verify(&PinVerificationKey::new([0x43; 32]), &card, &pin("2580")));
    // Equal PINs on two cards give unrelated values.
    let other = PinVerificationValue::compute(&pvk(), &pan("4111111111111111"), &pin("2580"));
    assert_ne!(pvv, other);
    assert_eq!(
        pvv,
        PinVerificationValue::compute(&pvk(), &card, &pin("2580"))
    );
    assert_eq!(PinVerificationValue::from_bytes(pvv.to_bytes()), pvv);
}

#[test]
fn verification_value_is_stored_but_never_shown() {
    let card = pan("4000001234567899");
    let pvv = PinVerificationValue::compute(&pvk(), &card, &pin("2580"));
    assert_eq!(format!("{pvv:?}"), "Pvv(..)");
    assert_eq!(format!("{:?}", pvk()), "PinVerificationKey(..)");
    let json = serde_json::to_string(&pvv).unwrap();
    assert!(!json.contains("2580"));
    let back: PinVerificationValue = serde_json::from_str(&json).unwrap();
    assert_eq!(back, pvv);
    assert!(back.verify(&pvk(), &card, &pin("2580")));
}

#[test]
fn verify_block_runs_the_whole_pin_check() {
    let zpk = ZonePinKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
    let card = pan("5412345678901232");
    let pvv = PinVerificationValue::compute(&pvk(), &card, &pin("8520"));
    let right = encrypt_pin_block(&zpk, &card, &pin("8520"));
    let wrong = encrypt_pin_block(&zpk, &card, &pin("8521"));
    assert_eq!(pvv.verify_block(&zpk, &pvk(), &card, &right), Ok(true));
    assert_eq!(pvv.verify_block(&zpk, &pvk(), &card, &wrong), Ok(false));
    // A block that is not format 0 under this key is a structure error, not a verdict.
    let format1 = zpk.encrypt_block([0x14, 0x85, 0x20, 0x12, 0x34, 0x56, 0x78, 0x9A]);
    assert_eq!(
        pvv.verify_block(&zpk, &pvk(), &card, &format1),
        Err(PinBlockError::Format(1))
    );
}

#[test]
fn cvv2_value_is_bound_to_key_card_expiry_and_digits() {
    let key = Cvv2Key::new([0x17; 32]);
    let card = pan("4000001234567899");
    let expiry = Expiry::new(2029, 7).unwrap();
    let value = Cvv2Value::compute(&key, &card, expiry, b"123").unwrap();
    assert!(value.verify(&key, &card, expiry, b"123"));
    assert!(!value.verify(&key, &card, expiry, b"124"));
    assert!(!value.verify(&key, &card, expiry, b"1230"));
    assert!(!value.verify(&key, &card, Expiry::new(2029, 8).unwrap(), b"123"));
    assert!(!value.verify(&key, &pan("4111111111111111"), expiry, b"123"));
    assert!(!value.verify(&Cvv2Key::new([0x18; 32]), &card, expiry, b"123"));
    let amex_style = Cvv2Value::compute(&key, &card, expiry, b"1234").unwrap();
    assert!(amex_style.verify(&key, &card, expiry, b"1234"));
    assert_eq!(format!("{value:?}"), "Cvv2Value(..)");
    assert_eq!(format!("{key:?}"), "Cvv2Key(..)");
    assert_eq!(Cvv2Value::from_bytes(value.to_bytes()), value);
}

#[test]
fn malformed_cvv2_is_refused_and_never_matches() {
    let key = Cvv2Key::new([0x17; 32]);
    let card = pan("4000001234567899");
    let expiry = Expiry::new(2029, 7).unwrap();
    let value = Cvv2Value::compute(&key, &card, expiry, b"123").unwrap();
    for bad in [&b""[..], b"12", b"12345", b"12a", b"12 "] {
        assert_eq!(
            Cvv2Value::compute(&key, &card, expiry, bad),
            Err(Cvv2Error),
            "{bad:?}"
        );
        assert!(!value.verify(&key, &card, expiry, bad), "{bad:?}");
    }
    assert_eq!(Cvv2Error.to_string(), "CVV2 must be 3 or 4 digits");
}

#[test]
fn pin_and_cvv2_values_differ_even_under_one_key_and_input() {
    // The domain tags keep a PIN value and a CVV2 value apart.
    let bytes = [0x33; 32];
    let card = pan("4000001234567899");
    let pvv = PinVerificationValue::compute(&PinVerificationKey::new(bytes), &card, &pin("1234"));
    let expiry = Expiry::new(2030, 1).unwrap();
    let cvv = Cvv2Value::compute(&Cvv2Key::new(bytes), &card, expiry, b"1234").unwrap();
    assert_ne!(pvv.to_bytes(), cvv.to_bytes());
}

#[test]
fn mac_keys_parse_from_hex() {
    let hex = "42".repeat(32);
    let parsed = PinVerificationKey::from_hex(&hex).unwrap();
    let card = pan("4000001234567899");
    let pvv = PinVerificationValue::compute(&pvk(), &card, &pin("2580"));
    assert!(pvv.verify(&parsed, &card, &pin("2580")));
    assert_eq!(
        Cvv2Key::from_hex("42").unwrap_err(),
        KeyError::HexLength {
            expected: 64,
            got: 2
        }
    );
    assert_eq!(
        PinVerificationKey::from_hex(&"zz".repeat(32)).unwrap_err(),
        KeyError::NotHex
    );
}
