//! A realistic authorisation through the codec: typed setters, typed accessors, responses,
//! format-error answers, the entry-mode and processing-code conventions, redacted `Debug`,
//! and the field map in docs/iso8583.md against the field table.

use cardcore_core::iso8583::{
    defined_fields, field_spec, parse, salvage, EntryMode, Message, MessageBuilder, Mti,
    OriginalData, PosEntryMode, ProcessingCode, ResponseError, TransmissionTime,
    RESPONSE_ECHO_FIELDS,
};
use cardcore_core::{
    Channel, Currency, Expiry, Mcc, Money, Pan, Timestamp, TransactionType, TxnId,
};

const PAN: &str = "4000001234567899";
const PIN_BLOCK: [u8; 8] = [0x04, 0x12, 0x34, 0xFF, 0xED, 0xCB, 0xA9, 0x87];
const ICC: [u8; 6] = [0x9F, 0x26, 0x02, 0xAB, 0xCD, 0x00];

fn authorisation() -> MessageBuilder {
    let now = Timestamp::parse_rfc3339("2026-11-21T10:15:30Z").unwrap();
    let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
    b.set_pan(&Pan::parse(PAN).unwrap())
        .and_then(|b| b.set_processing_code(ProcessingCode::new(ProcessingCode::PURCHASE)))
        .and_then(|b| b.set_amount(Money::new(4000, Currency::EUR)))
        .and_then(|b| b.set_billing_amount(Money::new(3500, Currency::GBP)))
        .and_then(|b| b.set_transmission_time(TransmissionTime::from_timestamp(now)))
        .and_then(|b| b.set_stan(42))
        .and_then(|b| b.set(12, b"111530"))
        .and_then(|b| b.set_expiry(Expiry::parse("2029-07").unwrap()))
        .and_then(|b| b.set_mcc(Mcc(5411)))
        .and_then(|b| b.set_pos_entry_mode(EntryMode::Chip.pos_entry_mode()))
        .and_then(|b| b.set_pos_condition_code(0))
        .and_then(|b| b.set_acquirer_id(430010))
        .and_then(|b| b.set(37, b"632510000042"))
        .and_then(|b| b.set(41, b"TERMID01"))
        .and_then(|b| b.set(42, b"CARD ACCEPTOR  "))
        .and_then(|b| b.set(43, b"ACME GROCERIES           BERLIN       DE"))
        .and_then(|b| b.set_cvv2(b"789"))
        .and_then(|b| b.set_pin_block(&PIN_BLOCK))
        .and_then(|b| b.set_binary(55, &ICC))
        .expect("valid values");
    b
}

#[test]
fn typed_accessors_read_what_typed_setters_wrote() {
    let bytes = authorisation().to_vec();
    let m = parse(&bytes).unwrap();
    assert_eq!(m.mti(), Mti::AuthorizationRequest);
    assert_eq!(m.pan_bytes(), Some(PAN.as_bytes()));
    assert_eq!(
        m.processing_code().unwrap().transaction,
        ProcessingCode::PURCHASE
    );
    assert_eq!(m.amount_minor(), Some(4000));
    assert_eq!(m.currency_numeric(), Some(978));
    assert_eq!(m.billing_amount_minor(), Some(3500));
    assert_eq!(m.billing_currency_numeric(), Some(826));
    let t = m.transmission_time().unwrap();
    assert_eq!(
        (t.month, t.day, t.hour, t.minute, t.second),
        (11, 21, 10, 15, 30)
    );
    assert_eq!(m.stan(), Some(42));
    assert_eq!(m.get(11), Some(&b"000042"[..]));
    assert_eq!(m.expiry(), Some(Expiry::parse("2029-07").unwrap()));
    assert_eq!(m.mcc(), Some(Mcc(5411)));
    let mode = m.pos_entry_mode().unwrap();
    assert_eq!(mode.entry_mode(), Some(EntryMode::Chip));
    assert_eq!(mode.channel(), Some(Channel::PosChip));
    assert_eq!(m.pos_condition_code(), Some(0));
    assert_eq!(m.acquirer_id(), Some(430010));
    assert_eq!(m.get_str(41), Some("TERMID01"));
    assert_eq!(m.cvv2(), Some(&b"789"[..]));
    assert_eq!(m.pin_block(), Some(PIN_BLOCK));
    let mut icc = [0u8; 255];
    assert_eq!(m.decode_binary(55, &mut icc).unwrap(), Some(&ICC[..]));
    assert_eq!(m.decode_binary(53, &mut icc).unwrap(), None);
    assert!(!m.has(1), "no field above 64, no secondary bitmap");
    assert_eq!(m.first_missing(&[2, 3, 4, 7, 11, 49]), None);
    assert_eq!(m.first_missing(&[2, 90, 95]), Some(90));
    assert_eq!(m.fields().count(), 21);
}

#[test]
fn responses_echo_the_matching_fields_and_nothing_secret() {
    let bytes = authorisation().to_vec();
    let request = parse(&bytes).unwrap();
    let mut response = MessageBuilder::response_to(&request).unwrap();
    response
        .set_response_code(b"00")
        .and_then(|r| r.set_approval_code(b"A1B2C3"))
        .and_then(|r| r.set_issuer_txn_id(TxnId(9_007_199_254_740_993)))
        .unwrap();
    let packed = response.to_vec();
    let r = parse(&packed).unwrap();
    assert_eq!(r.mti(), Mti::AuthorizationResponse);
    for field in RESPONSE_ECHO_FIELDS {
        assert_eq!(r.get(field), request.get(field), "field {field}");
    }
    for secret in [14, 35, 48, 52, 55] {
        assert!(!r.has(secret), "field {secret} must not be echoed");
    }
    assert_eq!(r.response_code(), Some(*b"00"));
    assert_eq!(r.get(38), Some(&b"A1B2C3"[..]));
    assert_eq!(r.issuer_txn_id(), Some(TxnId(9_007_199_254_740_993)));
    assert_eq!(r.get(62), Some(&b"9007199254740993"[..]));
    // A response has no response.
    assert_eq!(
        MessageBuilder::response_to(&r).unwrap_err(),
        ResponseError::NoResponse(Mti::AuthorizationResponse)
    );
    // Reusing a builder for the next response keeps nothing from the last one.
    let mut reused = response.clone();
    let echo = b"0800822000000000000004000000000000001121101530000001301";
    reused.reset_as_response_to(&parse(echo).unwrap()).unwrap();
    assert_eq!(reused.to_vec(), [&b"0810"[..], &echo[4..]].concat());
}

#[test]
fn the_issuer_transaction_id_reads_back_only_when_it_is_a_number() {
    let with_62 = |value: &[u8]| {
        let mut b = MessageBuilder::new(Mti::AuthorizationResponse);
        b.set(62, value).unwrap();
        b.to_vec()
    };
    let read = |bytes: &[u8]| parse(bytes).unwrap().issuer_txn_id();
    assert_eq!(read(&with_62(b"0")), Some(TxnId(0)));
    assert_eq!(
        read(&with_62(b"18446744073709551615")),
        Some(TxnId(u64::MAX))
    );
    assert_eq!(read(&with_62(b"18446744073709551616")), None);
    assert_eq!(read(&with_62(b"12AB")), None);
    assert_eq!(read(&with_62(b"")), None);
}

#[test]
fn a_format_error_answers_the_readable_mti_and_stan() {
    let mut bytes = authorisation().to_vec();
    let len = bytes.len();
    bytes[len - 3] = b'Z'; // inside the ICC data hex
    assert!(parse(&bytes).is_err());
    let s = salvage(&bytes);
    let mut answer = MessageBuilder::new(Mti::NetworkManagementResponse);
    answer.reset_as_format_error(&s).unwrap();
    let r = parse(&answer.to_vec())
        .unwrap()
        .fields()
        .map(|(f, v)| (f, v.to_vec()))
        .collect::<Vec<_>>();
    assert_eq!(r, vec![(11, b"000042".to_vec()), (39, b"30".to_vec())]);
    assert_eq!(answer.mti(), Mti::AuthorizationResponse);
    assert_eq!(
        answer.reset_as_format_error(&salvage(b"XXXX")),
        Err(ResponseError::MtiUnreadable)
    );
}

#[test]
fn reversal_fields_round_trip() {
    let original = OriginalData {
        mti_code: Mti::AuthorizationRequest.code(),
        stan: 42,
        transmission_time: TransmissionTime {
            month: 11,
            day: 21,
            hour: 10,
            minute: 15,
            second: 30,
        },
        acquirer_id: 430010,
        forwarding_id: 400050,
    };
    let mut b = MessageBuilder::new(Mti::ReversalRequest);
    b.set_original_data(&original)
        .unwrap()
        .set_replacement_amount_minor(1000)
        .unwrap();
    let bytes = b.to_vec();
    let m = parse(&bytes).unwrap();
    assert!(m.has(1), "fields above 64 need the secondary bitmap");
    assert_eq!(m.original_data(), Some(original));
    assert_eq!(
        Mti::from_code(m.original_data().unwrap().mti_code),
        Some(Mti::AuthorizationRequest)
    );
    assert_eq!(m.replacement_amount_minor(), Some(1000));
    assert_eq!(&m.get(95).unwrap()[..12], b"000000001000");
}

#[test]
fn entry_modes_map_to_permissions() {
    let cases: &[(&[u8; 3], Option<EntryMode>, Option<Channel>)] = &[
        (b"051", Some(EntryMode::Chip), Some(Channel::PosChip)),
        (b"951", Some(EntryMode::Chip), Some(Channel::PosChip)),
        (
            b"071",
            Some(EntryMode::Contactless),
            Some(Channel::PosContactless),
        ),
        (
            b"911",
            Some(EntryMode::Contactless),
            Some(Channel::PosContactless),
        ),
        (
            b"021",
            Some(EntryMode::Magstripe),
            Some(Channel::PosMagstripe),
        ),
        (
            b"901",
            Some(EntryMode::Magstripe),
            Some(Channel::PosMagstripe),
        ),
        (
            b"801",
            Some(EntryMode::Magstripe),
            Some(Channel::PosMagstripe),
        ),
        (b"812", Some(EntryMode::Ecom), Some(Channel::Ecom)),
        (b"102", Some(EntryMode::Ecom), Some(Channel::Ecom)),
        (b"012", Some(EntryMode::Manual), Some(Channel::Ecom)),
        (
            b"961",
            Some(EntryMode::Wallet),
            Some(Channel::MobileWallets),
        ),
        (b"000", None, None),
        (b"031", None, None),
    ];
    for &(digits, mode, channel) in cases {
        let pem = PosEntryMode::from_digits(digits).unwrap();
        assert_eq!(pem.entry_mode(), mode, "{:?}", std::str::from_utf8(digits));
        assert_eq!(pem.channel(), channel);
        assert_eq!(&pem.to_digits(), digits);
    }
    for mode in EntryMode::ALL {
        let sent = mode.pos_entry_mode();
        assert_eq!(
            sent.entry_mode(),
            Some(mode),
            "the simulator's value maps back"
        );
        assert_eq!(EntryMode::parse(mode.as_str()), Some(mode));
    }
    assert_eq!(EntryMode::Wallet.pos_entry_mode().to_digits(), *b"961");
}

#[test]
fn processing_codes_map_to_transaction_types() {
    use TransactionType::*;
    let cases = [
        (0, Channel::PosChip, Some(PosPurchase)),
        (0, Channel::MobileWallets, Some(PosPurchase)),
        (0, Channel::Ecom, Some(EcomPurchase)),
        (9, Channel::PosContactless, Some(PosPurchase)),
        (1, Channel::PosChip, Some(CashWithdrawal)),
        (10, Channel::Ecom, Some(AccountFunding)),
        (17, Channel::PosChip, Some(CashAdvance)),
        (20, Channel::PosChip, Some(Refund)),
        (21, Channel::PosChip, Some(AccountCredit)),
        (26, Channel::Ecom, Some(CreditTransaction)),
        (28, Channel::Ecom, Some(CreditTransaction)),
        (30, Channel::PosChip, None),
    ];
    for (code, channel, expected) in cases {
        let pc = ProcessingCode::new(code);
        assert_eq!(
            pc.transaction_type(channel),
            expected,
            "{code:02} via {channel}"
        );
    }
    for t in TransactionType::ALL {
        if let Some(pc) = ProcessingCode::for_transaction_type(t) {
            let channel = if t == EcomPurchase {
                Channel::Ecom
            } else {
                Channel::PosChip
            };
            assert_eq!(pc.transaction_type(channel), Some(t), "{t}");
        }
    }
    assert!(TransactionType::ALL
        .iter()
        .filter(|t| ProcessingCode::for_transaction_type(**t).is_none())
        .eq([&Chargeback]));
}

#[test]
fn debug_output_hides_card_secrets() {
    let builder = authorisation();
    let bytes = builder.to_vec();
    let message = parse(&bytes).unwrap();
    for shown in [format!("{builder:?}"), format!("{message:?}")] {
        assert!(shown.contains("400000******7899"), "{shown}");
        assert!(!shown.contains(PAN), "{shown}");
        assert!(
            !shown.contains("041234FFEDCBA987"),
            "PIN block shown: {shown}"
        );
        assert!(!shown.contains("9203789"), "CVV2 shown: {shown}");
        assert!(!shown.contains("2907"), "expiry shown: {shown}");
        assert!(shown.contains("TERMID01"), "{shown}");
        assert!(shown.contains("0100"), "{shown}");
    }
}

#[test]
fn removing_fields_updates_bitmaps() {
    let mut b = authorisation();
    let without = b.to_vec();
    b.set_network_management_code(301).unwrap();
    assert!(b.has(1) && b.has(70));
    assert!(parse(&b.to_vec()).unwrap().has(1));
    assert!(b.remove(70));
    assert!(!b.remove(70) && !b.remove(1) && !b.remove(0));
    assert!(!b.has(1));
    assert_eq!(b.to_vec(), without);
}

#[test]
fn a_reused_builder_keeps_the_latest_values() {
    const DIGITS_19: &[u8] = b"4000001234567899123";
    let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
    // Replacing a field many times with ever longer values must not grow without bound.
    for round in 0..2000usize {
        let len = 1 + round % 999;
        b.set(48, &vec![b'x'; len]).unwrap();
        b.set(2, &DIGITS_19[..12 + round % 8]).unwrap();
    }
    let m_bytes = b.to_vec();
    let m: Message<'_> = parse(&m_bytes).unwrap();
    assert_eq!(m.get(48).map(<[u8]>::len), Some(1 + 1999 % 999));
    assert_eq!(m.get(2), Some(&DIGITS_19[..12 + 1999 % 8]));
    b.reset(Mti::NetworkManagementRequest);
    assert_eq!(b.to_vec(), b"08000000000000000000");
}

/// Every defined field has exactly one row in docs/iso8583.md's field map, and the row's name
/// and format are the table's.
#[test]
fn the_documented_field_map_matches_the_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/iso8583.md");
    let doc = std::fs::read_to_string(path).expect("docs/iso8583.md");
    let section = doc
        .split("\n## Field map")
        .nth(1)
        .expect("a Field map section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut seen = std::collections::BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(number) = cells.get(1).and_then(|c| c.parse::<u8>().ok()) else {
            continue;
        };
        let spec = field_spec(number).unwrap_or_else(|| panic!("row for undefined field {number}"));
        assert_eq!(cells[2], spec.name, "name of field {number}");
        assert_eq!(cells[3], spec.to_string(), "format of field {number}");
        assert!(
            seen.insert(number, ()).is_none(),
            "field {number} listed twice"
        );
    }
    let defined: Vec<u8> = defined_fields().map(|s| s.number).collect();
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), defined);
}
