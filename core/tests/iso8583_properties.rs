//! Property tests of the ISO 8583 codec: random valid messages survive pack → parse
//! unchanged, and no input whatsoever makes the parser, the salvager or the frame decoder
//! panic.

use bytes::BytesMut;
use cardcore_core::iso8583::{
    defined_fields, field_spec, parse, salvage, Content, ErrorKind, FieldSpec, FrameDecoder,
    Length, Message, MessageBuilder, Mti,
};
use proptest::prelude::*;
use proptest::sample::select;

const DIGITS: &[u8] = b"0123456789";
const TRACK: &[u8] = b"0123456789:;<=>?D";
const HEX: &[u8] = b"0123456789ABCDEFabcdef";

fn alphanumeric() -> Vec<u8> {
    (b'0'..=b'9')
        .chain(b'A'..=b'Z')
        .chain(b'a'..=b'z')
        .chain([b' '])
        .collect()
}

fn printable() -> Vec<u8> {
    (0x20..=0x7E).collect()
}

/// `len` characters drawn from `alphabet`.
fn text(alphabet: Vec<u8>, len: impl Strategy<Value = usize> + 'static) -> BoxedStrategy<Vec<u8>> {
    len.prop_flat_map(move |n| proptest::collection::vec(select(alphabet.clone()), n))
        .boxed()
}

fn two_digits(lo: u8, hi: u8) -> impl Strategy<Value = Vec<u8>> {
    (lo..=hi).prop_map(|v| format!("{v:02}").into_bytes())
}

/// A valid value for `spec`: the right characters, a legal length (biased towards short
/// values and the maximum), and for range-checked fields a valid value.
fn value(spec: &'static FieldSpec) -> BoxedStrategy<Vec<u8>> {
    match spec.number {
        7 => (
            two_digits(1, 12),
            two_digits(1, 31),
            two_digits(0, 23),
            two_digits(0, 59),
        )
            .prop_flat_map(|(mo, d, h, mi)| {
                two_digits(0, 59).prop_map(move |s| [&mo[..], &d, &h, &mi, &s].concat())
            })
            .boxed(),
        12 => (two_digits(0, 23), two_digits(0, 59), two_digits(0, 59))
            .prop_map(|(h, m, s)| [h, m, s].concat())
            .boxed(),
        14 => (two_digits(0, 99), two_digits(1, 12))
            .prop_map(|(y, m)| [y, m].concat())
            .boxed(),
        95 => (
            text(DIGITS.to_vec(), Just(12)),
            text(alphanumeric(), Just(30)),
        )
            .prop_map(|(a, b)| [a, b].concat())
            .boxed(),
        _ => generic_value(spec),
    }
}

fn generic_value(spec: &'static FieldSpec) -> BoxedStrategy<Vec<u8>> {
    let max = spec.length.max_len();
    let len: BoxedStrategy<usize> = match spec.length {
        Length::Fixed(_) => Just(max).boxed(),
        _ => prop_oneof![0..=max.min(24), Just(max), 0..=max].boxed(),
    };
    match spec.content {
        Content::Numeric => text(DIGITS.to_vec(), len),
        Content::Alphanumeric => text(alphanumeric(), len),
        Content::AlphanumericSpecial => text(printable(), len),
        Content::Track => text(TRACK.to_vec(), len),
        // Whole bytes: an even number of hex characters.
        Content::Binary => text(HEX.to_vec(), len.prop_map(|n| n & !1)),
        Content::SignedAmount => (select(b"CD".to_vec()), text(DIGITS.to_vec(), Just(max - 1)))
            .prop_map(|(sign, digits)| [vec![sign], digits].concat())
            .boxed(),
    }
}

/// An MTI and a random subset of fields with valid values.
fn message() -> impl Strategy<Value = (Mti, Vec<(u8, Vec<u8>)>)> {
    let numbers: Vec<u8> = defined_fields()
        .map(|s| s.number)
        .filter(|&n| n != 1)
        .collect();
    (
        select(Mti::ALL.to_vec()),
        proptest::sample::subsequence(numbers, 0..=30),
    )
        .prop_flat_map(|(mti, chosen)| {
            let values: Vec<_> = chosen
                .into_iter()
                .map(|n| {
                    let spec = field_spec(n).expect("defined");
                    value(spec).prop_map(move |v| (n, v))
                })
                .collect();
            (Just(mti), values)
        })
}

/// Builds the message; fields that would take it past the size limit are left out, and the
/// refusal must say exactly that.
fn build(mti: Mti, fields: &[(u8, Vec<u8>)]) -> MessageBuilder {
    let mut builder = MessageBuilder::new(mti);
    for (n, v) in fields {
        if let Err(e) = builder.set(*n, v) {
            assert!(
                matches!(e.kind, ErrorKind::MessageTooLong { .. }),
                "field {n}: {e}"
            );
            assert_eq!(e.field, *n);
        }
    }
    builder
}

/// Re-packs a parsed message through the builder.
fn repack(message: &Message<'_>) -> Vec<u8> {
    let mut builder = MessageBuilder::new(message.mti());
    for (n, v) in message.fields() {
        builder.set(n, v).expect("a parsed field is valid");
    }
    builder.to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn valid_messages_round_trip((mti, fields) in message()) {
        let builder = build(mti, &fields);
        let bytes = builder.to_vec();
        prop_assert_eq!(bytes.len(), builder.packed_len());
        let parsed = parse(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.mti(), mti);
        for n in 1..=128u8 {
            prop_assert_eq!(parsed.get(n), builder.get(n), "field {}", n);
            prop_assert_eq!(parsed.has(n), builder.has(n), "presence of field {}", n);
        }
        // Lowercase hex is accepted but packed in uppercase; otherwise packing is exact.
        let canonical = repack(&parsed);
        prop_assert_eq!(canonical.len(), bytes.len());
        prop_assert_eq!(canonical.to_ascii_uppercase(), bytes.to_ascii_uppercase());
        let s = salvage(&bytes);
        prop_assert_eq!(s.mti, Some(mti));
        prop_assert_eq!(s.stan, parsed.stan());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_no_panic(&bytes);
    }

    #[test]
    fn random_bodies_after_a_valid_header_never_panic(
        mti in select(Mti::ALL.to_vec()),
        bitmaps in any::<u128>(),
        body in proptest::collection::vec(select(b"0123456789ABCDEF =CD".to_vec()), 0..400),
    ) {
        let bytes = [mti.as_bytes().as_slice(), format!("{bitmaps:032X}").as_bytes(), &body]
            .concat();
        check_no_panic(&bytes);
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        (mti, fields) in message(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let mut bytes = build(mti, &fields).to_vec();
        for (at, byte, op) in edits {
            let at = at % (bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        check_no_panic(&bytes);
    }
}

/// Parses, salvages and frame-decodes `bytes`; whatever parses must re-pack to a message that
/// parses to the same fields.
fn check_no_panic(bytes: &[u8]) {
    if let Ok(message) = parse(bytes) {
        let canonical = repack(&message);
        let again = parse(&canonical).expect("a re-packed message parses");
        assert_eq!(again.mti(), message.mti());
        for n in 2..=128u8 {
            assert_eq!(
                again.get(n).map(<[u8]>::to_ascii_uppercase),
                message.get(n).map(<[u8]>::to_ascii_uppercase)
            );
        }
        let _ = format!("{message:?}");
    }
    let _ = salvage(bytes);
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let _ = parse(&frame);
    }
}
