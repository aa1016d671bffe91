//! Differential test of the ISO 8583 codec against the `iso8583_rs` crate: it decodes the
//! messages cardcore packs, cardcore parses the messages it assembles, and both must see the
//! same MTI and the same bytes in every field.
//!
//! iso8583_rs reads its layout from the YAML file named by `SPEC_FILE` (set in
//! `.cargo/config.toml` to `tests/data/iso8583_rs_spec.yaml`). That spec matches cardcore's
//! wire field for field, with binary fields compared as the hex text both put on the wire.
//! The bitmaps are the one part it cannot match: iso8583_rs always reads and writes them as
//! 8 raw bytes each, whatever the spec says, where cardcore (like jPOS ISO87APackager and
//! pyiso8583 default_ascii) sends 16 hex characters. Messages are converted between the two
//! bitmap forms when they cross over; everything after the bitmaps is compared as is.
//!
//! iso8583_rs panics on input it does not expect, so every call into it is wrapped in
//! `catch_unwind` and a panic fails the comparison with a message instead of the test binary.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cardcore_core::iso8583::{
    decode_hex, defined_fields, encode_hex, field_spec, parse, Content, ErrorKind, FieldSpec,
    Length, MessageBuilder, Mti,
};
use iso8583_rs::iso8583::iso_spec;
use proptest::prelude::*;
use proptest::sample::select;

type Fields = BTreeMap<u8, Vec<u8>>;

/// The MTI and fields iso8583_rs finds in cardcore's wire bytes.
fn oracle_decode(wire: &[u8]) -> Result<(String, Fields), String> {
    let mut data = bitmaps_hex_to_binary(wire)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let spec = iso_spec::spec("");
        let message = spec.parse(&mut data).map_err(|e| e.msg)?;
        let mti = message
            .fd_map
            .get("message_type")
            .ok_or("no message_type")?;
        let mut fields = Fields::new();
        for n in (2..=128u8).filter(|&n| n != 65) {
            if message.bmp.is_on(u32::from(n)) {
                let value = message.fd_map.get(&format!("de{n:03}"));
                fields.insert(n, value.ok_or(format!("field {n} on but missing"))?.clone());
            }
        }
        Ok((String::from_utf8_lossy(mti).into_owned(), fields))
    }));
    outcome.map_err(|_| "iso8583_rs panicked while parsing".to_string())?
}

/// The wire bytes iso8583_rs assembles for a message, with its bitmaps turned into hex.
fn oracle_assemble(mti: &str, fields: &Fields) -> Result<Vec<u8>, String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let spec = iso_spec::spec("");
        let segment = spec.get_message_from_header(mti).map_err(|e| e.msg)?;
        let mut message = iso_spec::new_msg(spec, segment);
        message.set("message_type", mti).map_err(|e| e.msg)?;
        for (&n, value) in fields {
            let text = std::str::from_utf8(value).map_err(|e| e.to_string())?;
            message.set_on(u32::from(n), text).map_err(|e| e.msg)?;
        }
        message.assemble().map_err(|e| e.msg)
    }));
    let binary = outcome.map_err(|_| "iso8583_rs panicked while assembling".to_string())??;
    bitmaps_binary_to_hex(&binary)
}

/// MTI, then each 16-hex-character bitmap as 8 bytes, then the fields unchanged.
fn bitmaps_hex_to_binary(wire: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = wire.get(..4).ok_or("no MTI")?.to_vec();
    let mut pos = 4;
    loop {
        let mut bitmap = [0u8; 8];
        let hex = wire.get(pos..pos + 16).ok_or("bitmap cut short")?;
        decode_hex(hex, &mut bitmap).map_err(|e| e.to_string())?;
        out.extend_from_slice(&bitmap);
        pos += 16;
        // Bit 1 announces the secondary bitmap; cardcore has no tertiary one.
        if pos > 20 || bitmap[0] & 0x80 == 0 {
            break;
        }
    }
    out.extend_from_slice(&wire[pos..]);
    Ok(out)
}

/// The inverse of [`bitmaps_hex_to_binary`].
fn bitmaps_binary_to_hex(binary: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = binary.get(..4).ok_or("no MTI")?.to_vec();
    let mut pos = 4;
    loop {
        let bitmap = binary.get(pos..pos + 8).ok_or("bitmap cut short")?;
        let mut hex = [0u8; 16];
        encode_hex(bitmap, &mut hex).map_err(|e| e.to_string())?;
        out.extend_from_slice(&hex);
        pos += 8;
        if pos > 12 || bitmap[0] & 0x80 == 0 {
            break;
        }
    }
    out.extend_from_slice(&binary[pos..]);
    Ok(out)
}

/// Packs with cardcore, decodes with both, and compares; then assembles the same fields with
/// iso8583_rs and checks cardcore parses exactly them.
fn cross_check(mti: Mti, fields: &Fields) -> Result<(), String> {
    let mut builder = MessageBuilder::new(mti);
    for (&n, value) in fields {
        builder.set(n, value).map_err(|e| e.to_string())?;
    }
    let wire = builder.to_vec();
    let ours = parse(&wire).map_err(|e| e.to_string())?;
    let ours: Fields = ours.fields().map(|(n, v)| (n, v.to_vec())).collect();
    if &ours != fields {
        return Err("cardcore does not read back what it packed".into());
    }
    let (their_mti, theirs) = oracle_decode(&wire)?;
    if their_mti != mti.as_str() {
        return Err(format!(
            "MTI: iso8583_rs read {their_mti}, cardcore packed {mti}"
        ));
    }
    compare("iso8583_rs decoding cardcore's message", &ours, &theirs)?;
    let assembled = oracle_assemble(mti.as_str(), fields)?;
    let parsed = parse(&assembled).map_err(|e| format!("cardcore parsing iso8583_rs: {e}"))?;
    if parsed.mti() != mti {
        return Err(format!(
            "MTI: cardcore read {}, iso8583_rs wrote {mti}",
            parsed.mti()
        ));
    }
    let parsed: Fields = parsed.fields().map(|(n, v)| (n, v.to_vec())).collect();
    compare("cardcore parsing iso8583_rs's message", fields, &parsed)?;
    if assembled != wire {
        return Err("the two packers disagree on the bytes".into());
    }
    Ok(())
}

fn compare(what: &str, expected: &Fields, actual: &Fields) -> Result<(), String> {
    for n in expected.keys().chain(actual.keys()) {
        let (e, a) = (expected.get(n), actual.get(n));
        if e != a {
            // Lengths only: field values may be card data.
            let len = |v: Option<&Vec<u8>>| v.map(Vec::len);
            return Err(format!(
                "{what}: field {n} differs (lengths {:?} vs {:?})",
                len(e),
                len(a)
            ));
        }
    }
    Ok(())
}

/// A valid value of `len` characters for `spec` (for fixed fields, `len` is ignored).
fn sample_value(spec: &FieldSpec, len: usize) -> Vec<u8> {
    let len = match spec.length {
        Length::Fixed(n) => usize::from(n),
        _ => len.min(spec.length.max_len()),
    };
    match spec.number {
        7 => return b"1231235959".to_vec(),
        12 => return b"235959".to_vec(),
        14 => return b"2912".to_vec(),
        95 => return [&b"000000001000"[..], &[b'A'; 30]].concat(),
        _ => {}
    }
    match spec.content {
        Content::Numeric => (0..len).map(|i| b'0' + (i % 10) as u8).collect(),
        Content::Alphanumeric => (0..len).map(|i| b"AZaz09 "[i % 7]).collect(),
        Content::AlphanumericSpecial => (0..len).map(|i| 0x20 + (i % 95) as u8).collect(),
        Content::Track => (0..len).map(|i| b"0123456789:;<=>?D"[i % 17]).collect(),
        Content::Binary => (0..len & !1).map(|i| b"0123456789ABCDEF"[i % 16]).collect(),
        Content::SignedAmount => [&b"D"[..], &vec![b'7'; len - 1]].concat(),
    }
}

fn data_fields() -> impl Iterator<Item = &'static FieldSpec> {
    defined_fields().filter(|s| s.number != 1)
}

#[test]
fn a_typical_authorisation_matches() {
    let fields: Fields = [
        (2, &b"4000001234567899"[..]),
        (3, b"000000"),
        (4, b"000000004000"),
        (7, b"1121101530"),
        (11, b"000042"),
        (12, b"111530"),
        (14, b"2907"),
        (18, b"5411"),
        (22, b"051"),
        (25, b"00"),
        (32, b"430010"),
        (37, b"632510000042"),
        (41, b"TERMID01"),
        (42, b"CARD ACCEPTOR  "),
        (43, b"ACME GROCERIES           BERLIN       DE"),
        (48, b"9203789"),
        (49, b"978"),
        (52, b"041234FFEDCBA987"),
        (55, b"9F2602ABCD"),
    ]
    .into_iter()
    .map(|(n, v)| (n, v.to_vec()))
    .collect();
    cross_check(Mti::AuthorizationRequest, &fields).unwrap();
}

#[test]
fn every_field_at_once_matches() {
    // Every field with a short value (LLLVARs at full length would pass the size limit).
    let fields: Fields = data_fields()
        .map(|s| (s.number, sample_value(s, 3)))
        .collect();
    assert_eq!(fields.len(), 126);
    cross_check(Mti::FinancialAdvice, &fields).unwrap();
}

#[test]
fn every_variable_field_at_its_bounds_matches() {
    for spec in data_fields().filter(|s| !matches!(s.length, Length::Fixed(_))) {
        for len in [0, 1, spec.length.max_len()] {
            let fields: Fields = [
                (11, b"000001".to_vec()),
                (spec.number, sample_value(spec, len)),
            ]
            .into_iter()
            .collect();
            cross_check(Mti::ReversalAdvice, &fields)
                .unwrap_or_else(|e| panic!("field {} length {len}: {e}", spec.number));
        }
    }
}

#[test]
fn every_mti_matches() {
    let fields: Fields = [(11, b"000001".to_vec()), (70, b"301".to_vec())]
        .into_iter()
        .collect();
    for mti in Mti::ALL {
        cross_check(mti, &fields).unwrap_or_else(|e| panic!("{mti}: {e}"));
    }
}

#[test]
fn both_refuse_truncated_messages() {
    let mut builder = MessageBuilder::new(Mti::AuthorizationRequest);
    for spec in data_fields().filter(|s| [2, 4, 11, 35, 55, 90, 102].contains(&s.number)) {
        builder.set(spec.number, &sample_value(spec, 8)).unwrap();
    }
    let wire = builder.to_vec();
    // Cut anywhere after the bitmaps (cutting a bitmap itself changes its form on the way over).
    for cut in 36..wire.len() {
        assert!(
            parse(&wire[..cut]).is_err(),
            "cardcore accepted a cut at {cut}"
        );
        assert!(
            oracle_decode(&wire[..cut]).is_err(),
            "iso8583_rs accepted a cut at {cut}"
        );
    }
}

#[test]
fn the_spec_file_defines_every_field() {
    let path = std::env::var("SPEC_FILE").expect("SPEC_FILE is set by .cargo/config.toml");
    let yaml = std::fs::read_to_string(&path).expect("the spec file");
    for spec in data_fields() {
        assert!(
            yaml.contains(&format!("position: {}\n", spec.number)),
            "field {}",
            spec.number
        );
    }
    assert!(!yaml.contains("position: 65\n"));
    // Field numbers cardcore refuses are not defined there either.
    assert!(matches!(
        MessageBuilder::new(Mti::AuthorizationRequest)
            .set(65, b"0")
            .unwrap_err()
            .kind,
        ErrorKind::UndefinedField
    ));
    assert!(field_spec(65).is_none());
}

/// Random valid messages: an MTI and a random subset of fields with random valid values.
fn message() -> impl Strategy<Value = (Mti, Fields)> {
    let numbers: Vec<u8> = data_fields().map(|s| s.number).collect();
    let field = (select(numbers), 0usize..=120, any::<u64>()).prop_map(|(n, len, salt)| {
        let spec = field_spec(n).expect("defined");
        let mut value = sample_value(spec, len);
        // Vary the characters while keeping the class: rotate within the value.
        if !value.is_empty() && ![7, 12, 14, 28, 29, 30, 31, 95, 97].contains(&n) {
            let k = (salt as usize) % value.len();
            value.rotate_left(k);
        }
        (n, value)
    });
    (
        select(Mti::ALL.to_vec()),
        proptest::collection::btree_map(any::<u8>(), field, 0..=30),
    )
        .prop_map(|(mti, entries)| (mti, entries.into_values().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_messages_match((mti, fields) in message()) {
        cross_check(mti, &fields).map_err(TestCaseError::fail)?;
    }
}
