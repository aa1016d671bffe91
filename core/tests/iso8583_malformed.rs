//! Table-driven malformed input: every case must be refused with an error that names the
//! part of the message at fault (and for the builder, must change nothing).

use cardcore_core::iso8583::{
    parse, salvage, ErrorKind, FieldError, Location, MessageBuilder, Mti, Salvage, MESSAGE_MAX_LEN,
};
use cardcore_core::{Currency, Money};

/// Builds raw wire bytes: the MTI, bitmaps computed from the field numbers, then each field's
/// wire text exactly as given (length prefix included), so tests can inject broken prefixes.
fn raw(mti: &str, fields: &[(u8, &str)]) -> Vec<u8> {
    let mut bits = 0u128;
    for &(n, _) in fields {
        bits |= 1u128 << (128 - u32::from(n));
    }
    if bits as u64 != 0 {
        bits |= 1u128 << 127;
    }
    let mut out = mti.as_bytes().to_vec();
    if bits as u64 != 0 {
        out.extend_from_slice(format!("{bits:032X}").as_bytes());
    } else {
        out.extend_from_slice(format!("{:016X}", (bits >> 64) as u64).as_bytes());
    }
    for &(_, text) in fields {
        out.extend_from_slice(text.as_bytes());
    }
    out
}

const PAN: (u8, &str) = (2, "164000001234567899");
const AMOUNT: (u8, &str) = (4, "000000001000");
const STAN: (u8, &str) = (11, "123456");

type KindCheck = fn(&ErrorKind) -> bool;

fn check(name: &str, bytes: &[u8], location: Location, kind: KindCheck) {
    match parse(bytes) {
        Ok(_) => panic!("{name}: parsed, expected an error at {location}"),
        Err(e) => {
            assert_eq!(e.location, location, "{name}: {e}");
            assert!(kind(&e.kind), "{name}: unexpected kind {:?}", e.kind);
            // The message names the place, and never echoes the PAN.
            let text = e.to_string();
            assert!(!text.contains("4000001234567899"), "{name}: {text}");
        }
    }
}

#[test]
fn the_valid_base_parses() {
    let bytes = raw("0100", &[PAN, AMOUNT, STAN]);
    let m = parse(&bytes).unwrap();
    assert_eq!(m.mti(), Mti::AuthorizationRequest);
    assert_eq!(m.amount_minor(), Some(1000));
}

#[test]
fn malformed_messages_name_the_field() {
    use ErrorKind::*;
    use Location::*;
    let long_message = {
        let mut m = raw("0100", &[PAN, AMOUNT, STAN]);
        m.resize(MESSAGE_MAX_LEN + 1, b'0');
        m
    };
    let cases: Vec<(&str, Vec<u8>, Location, KindCheck)> = vec![
        ("empty", vec![], Mti, |k| {
            *k == Truncated {
                needed: 4,
                available: 0,
            }
        }),
        ("short MTI", b"01".to_vec(), Mti, |k| {
            *k == Truncated {
                needed: 4,
                available: 2,
            }
        }),
        ("letter in MTI", b"01A0".to_vec(), Mti, |k| {
            matches!(k, BadCharacter { offset: 2, .. })
        }),
        ("unknown MTI", raw("0300", &[AMOUNT]), Mti, |k| {
            *k == UnknownMti(300)
        }),
        ("version 1993 MTI", raw("1100", &[AMOUNT]), Mti, |k| {
            *k == UnknownMti(1100)
        }),
        (
            "bitmap truncated",
            b"01007234".to_vec(),
            PrimaryBitmap,
            |k| {
                *k == Truncated {
                    needed: 16,
                    available: 4,
                }
            },
        ),
        (
            "bitmap not hex",
            b"01007G00000000000000".to_vec(),
            PrimaryBitmap,
            |k| matches!(k, BadCharacter { offset: 1, .. }),
        ),
        (
            "secondary bitmap truncated",
            b"0100C000000000000000000".to_vec(),
            Field(1),
            |k| {
                *k == Truncated {
                    needed: 16,
                    available: 3,
                }
            },
        ),
        (
            "secondary bitmap not hex",
            b"0100C00000000000000000000000000000z0".to_vec(),
            Field(1),
            |k| matches!(k, BadCharacter { offset: 14, .. }),
        ),
        (
            "letter in amount",
            raw("0100", &[(4, "0000000010A0")]),
            Field(4),
            |k| matches!(k, BadCharacter { offset: 10, .. }),
        ),
        (
            "space in STAN",
            raw("0100", &[AMOUNT, (11, "12 456")]),
            Field(11),
            |k| matches!(k, BadCharacter { offset: 2, .. }),
        ),
        (
            "amount truncated",
            raw("0100", &[(4, "00001")]),
            Field(4),
            |k| {
                *k == Truncated {
                    needed: 12,
                    available: 5,
                }
            },
        ),
        (
            "PAN prefix not digits",
            raw("0100", &[(2, "1A4000001234567899")]),
            Field(2),
            |k| *k == BadLengthPrefix,
        ),
        (
            "PAN prefix above 19",
            raw("0100", &[(2, "2040000012345678990000")]),
            Field(2),
            |k| *k == TooLong { len: 20, max: 19 },
        ),
        (
            "PAN shorter than its prefix",
            raw("0100", &[(2, "164000001234")]),
            Field(2),
            |k| {
                *k == Truncated {
                    needed: 16,
                    available: 10,
                }
            },
        ),
        ("PAN prefix cut", raw("0100", &[(2, "1")]), Field(2), |k| {
            *k == Truncated {
                needed: 2,
                available: 1,
            }
        }),
        (
            "non-digit in PAN",
            raw("0100", &[(2, "16400000123456789X")]),
            Field(2),
            |k| matches!(k, BadCharacter { offset: 15, .. }),
        ),
        (
            "LLL prefix cut",
            raw("0100", &[AMOUNT, (55, "01")]),
            Field(55),
            |k| {
                *k == Truncated {
                    needed: 3,
                    available: 2,
                }
            },
        ),
        (
            "ICC data above 255 bytes",
            raw("0100", &[(55, "512")]),
            Field(55),
            |k| *k == TooLong { len: 512, max: 510 },
        ),
        (
            "ICC data odd hex",
            raw("0100", &[(55, "0039F2")]),
            Field(55),
            |k| *k == OddHexLength { len: 3 },
        ),
        (
            "ICC data not hex",
            raw("0100", &[(55, "0049F2G")]),
            Field(55),
            |k| matches!(k, BadCharacter { offset: 3, .. }),
        ),
        (
            "PIN block not hex",
            raw("0100", &[(52, "0123456789ABCDEX")]),
            Field(52),
            |k| matches!(k, BadCharacter { offset: 15, .. }),
        ),
        (
            "undefined field 65",
            raw("0100", &[AMOUNT, (65, "0000000000000000")]),
            Field(65),
            |k| *k == UndefinedField,
        ),
        (
            "trailing bytes",
            [raw("0100", &[AMOUNT, STAN]), b"XYZ".to_vec()].concat(),
            Message,
            |k| *k == TrailingBytes { count: 3 },
        ),
        ("message too long", long_message, Message, |k| {
            *k == MessageTooLong {
                len: MESSAGE_MAX_LEN + 1,
                max: MESSAGE_MAX_LEN,
            }
        }),
        (
            "month 13 in DE 7",
            raw("0100", &[(7, "1301120000")]),
            Field(7),
            |k| matches!(k, OutOfRange { .. }),
        ),
        (
            "day 00 in DE 7",
            raw("0100", &[(7, "0100120000")]),
            Field(7),
            |k| matches!(k, OutOfRange { .. }),
        ),
        (
            "hour 24 in DE 12",
            raw("0100", &[(12, "240000")]),
            Field(12),
            |k| matches!(k, OutOfRange { .. }),
        ),
        (
            "month 00 in DE 14",
            raw("0100", &[(14, "2900")]),
            Field(14),
            |k| matches!(k, OutOfRange { .. }),
        ),
        (
            "DE 95 amount not digits",
            raw("0400", &[(95, &"A".repeat(42))]),
            Field(95),
            |k| matches!(k, BadCharacter { offset: 0, .. }),
        ),
        (
            "fee without sign",
            raw("0100", &[(28, "000000100")]),
            Field(28),
            |k| {
                matches!(
                    k,
                    BadCharacter {
                        offset: 0,
                        expected: "C or D"
                    }
                )
            },
        ),
        (
            "fee with letter",
            raw("0100", &[(28, "D0000001A")]),
            Field(28),
            |k| matches!(k, BadCharacter { offset: 8, .. }),
        ),
        (
            "caret in track 2",
            raw("0100", &[(35, "054000^")]),
            Field(35),
            |k| matches!(k, BadCharacter { offset: 4, .. }),
        ),
        (
            "non-ASCII merchant name",
            raw_with_byte(43, 0xC3),
            Field(43),
            |k| matches!(k, BadCharacter { offset: 0, .. }),
        ),
        (
            "dash in RRN",
            raw("0100", &[(37, "12345-789012")]),
            Field(37),
            |k| matches!(k, BadCharacter { offset: 5, .. }),
        ),
    ];
    for (name, bytes, location, kind) in cases {
        check(name, &bytes, location, kind);
    }
}

/// A message whose DE 43 starts with `byte` (which cannot be written into a `&str`).
fn raw_with_byte(field: u8, byte: u8) -> Vec<u8> {
    let mut bytes = raw("0100", &[(field, &"M".repeat(40))]);
    let at = bytes.len() - 40;
    bytes[at] = byte;
    bytes
}

#[test]
fn salvage_reads_what_it_can() {
    let s = |b: &[u8]| salvage(b);
    // The request is broken after DE 11: MTI and STAN survive.
    let broken_late = raw("0100", &[PAN, STAN, (49, "97X")]);
    assert!(parse(&broken_late).is_err());
    assert_eq!(
        s(&broken_late),
        Salvage {
            mti: Some(Mti::AuthorizationRequest),
            stan: Some(123456)
        }
    );
    // Broken before DE 11: the STAN cannot be located.
    let broken_early = raw("0200", &[(2, "XX"), STAN]);
    assert_eq!(
        s(&broken_early),
        Salvage {
            mti: Some(Mti::FinancialRequest),
            stan: None
        }
    );
    // A bad character in the PAN does not hide the STAN: only lengths matter before DE 11.
    let bad_pan = raw("0100", &[(2, "16400000123456789X"), STAN]);
    assert_eq!(s(&bad_pan).stan, Some(123456));
    // No STAN sent, a STAN that is not digits, a bitmap that is not hex, an unknown MTI.
    assert_eq!(s(&raw("0100", &[PAN])).stan, None);
    assert_eq!(s(&raw("0100", &[(11, "12345X")])).stan, None);
    assert_eq!(
        s(b"0100ZZZZZZZZZZZZZZZZ"),
        Salvage {
            mti: Some(Mti::AuthorizationRequest),
            stan: None
        }
    );
    assert_eq!(s(&raw("0300", &[STAN])), Salvage::default());
    assert_eq!(s(b""), Salvage::default());
}

type Action = Box<dyn Fn(&mut MessageBuilder) -> Result<(), FieldError>>;

fn setter(field: u8, value: &'static [u8]) -> Action {
    Box::new(move |b| b.set(field, value).map(|_| ()))
}

#[test]
fn the_builder_refuses_bad_values_and_changes_nothing() {
    use ErrorKind::*;
    let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
    b.set(2, b"4000001234567899")
        .unwrap()
        .set(4, b"000000001000")
        .unwrap();
    let before = b.to_vec();
    let eur = |minor| Money::new(minor, Currency::EUR);
    let cases: Vec<(&str, u8, Action, KindCheck)> = vec![
        ("field 0", 0, setter(0, b"1"), |k| *k == UndefinedField),
        ("field 1", 1, setter(1, b"0000000000000000"), |k| {
            *k == NotSettable
        }),
        ("field 65", 65, setter(65, b"0000000000000000"), |k| {
            *k == UndefinedField
        }),
        ("field 129", 129, setter(129, b"1"), |k| {
            *k == UndefinedField
        }),
        ("short amount", 4, setter(4, b"100"), |k| {
            *k == WrongLength {
                len: 3,
                expected: 12,
            }
        }),
        ("long PAN", 2, setter(2, &[b'4'; 20]), |k| {
            *k == TooLong { len: 20, max: 19 }
        }),
        ("letter in amount", 4, setter(4, b"00000000100A"), |k| {
            matches!(k, BadCharacter { offset: 11, .. })
        }),
        ("bad PIN hex", 52, setter(52, b"GGGGGGGGGGGGGGGG"), |k| {
            matches!(k, BadCharacter { offset: 0, .. })
        }),
        ("odd ICC hex", 55, setter(55, b"9F2"), |k| {
            *k == OddHexLength { len: 3 }
        }),
        (
            "long ICC data",
            55,
            Box::new(|b| b.set_binary(55, &[0u8; 256]).map(|_| ())),
            |k| *k == TooLong { len: 512, max: 510 },
        ),
        (
            "negative amount",
            4,
            Box::new(move |b| b.set_amount(eur(-1)).map(|_| ())),
            |k| matches!(k, OutOfRange { .. }),
        ),
        (
            "13-digit amount",
            4,
            Box::new(move |b| b.set_amount(eur(10i64.pow(12))).map(|_| ())),
            |k| matches!(k, OutOfRange { .. }),
        ),
        (
            "7-digit STAN",
            11,
            Box::new(|b| b.set_stan(1_000_000).map(|_| ())),
            |k| matches!(k, OutOfRange { .. }),
        ),
        (
            "2-digit CVV2",
            48,
            Box::new(|b| b.set_cvv2(b"12").map(|_| ())),
            |k| matches!(k, OutOfRange { .. }),
        ),
        ("month 13", 7, setter(7, b"1301000000"), |k| {
            matches!(k, OutOfRange { .. })
        }),
        (
            "negative replacement",
            95,
            Box::new(|b| b.set_replacement_amount_minor(-5).map(|_| ())),
            |k| matches!(k, OutOfRange { .. }),
        ),
    ];
    for (name, field, action, kind) in cases {
        let mut copy = b.clone();
        let err = action(&mut copy).expect_err(name);
        assert_eq!(err.field, field, "{name}: the error names the field");
        assert!(kind(&err.kind), "{name}: {err:?}");
        assert_eq!(
            copy.to_vec(),
            before,
            "{name}: a refused value changed the message"
        );
    }
}

#[test]
fn the_builder_keeps_messages_within_the_size_limit() {
    let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
    let big = [b'x'; 999];
    let mut refused = None;
    for field in [46u8, 47, 48, 56, 57, 58, 59, 60, 61, 62, 63] {
        let before = b.to_vec();
        if let Err(e) = b.set(field, &big) {
            assert_eq!(b.to_vec(), before, "a refused value changes nothing");
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("eleven 999-byte fields exceed the limit");
    assert!(
        matches!(
            e.kind,
            ErrorKind::MessageTooLong {
                max: MESSAGE_MAX_LEN,
                ..
            }
        ),
        "{e}"
    );
    assert!(b.packed_len() <= MESSAGE_MAX_LEN);
    assert!(parse(&b.to_vec()).is_ok());
}
