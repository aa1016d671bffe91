//! Fuzzes the ISO 8583 parser, the salvager and the frame decoder: no input may panic, and
//! whatever parses must re-pack to a message that parses to the same fields.
#![no_main]

use bytes::BytesMut;
use cardcore_core::iso8583::{parse, salvage, FrameDecoder, Message, MessageBuilder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_message(data);
    let _ = salvage(data);
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        check_message(&frame);
    }
});

fn check_message(data: &[u8]) {
    let Ok(message) = parse(data) else { return };
    let repacked = repack(&message);
    let again = parse(&repacked).expect("a re-packed message parses");
    assert_eq!(again.mti(), message.mti());
    for field in 2..=128u8 {
        // Lowercase hex is accepted and packed in uppercase.
        let upper = |m: &Message<'_>| m.get(field).map(<[u8]>::to_ascii_uppercase);
        assert_eq!(upper(&again), upper(&message), "field {field}");
    }
    let _ = format!("{message:?}");
}

fn repack(message: &Message<'_>) -> Vec<u8> {
    let mut builder = MessageBuilder::new(message.mti());
    for (field, value) in message.fields() {
        builder.set(field, value).expect("a parsed field is valid");
    }
    builder.to_vec()
}
