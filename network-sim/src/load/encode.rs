//! From a [`CardMessage`] (the scenario seam's full description of a message) to the ISO
//! 8583 bytes sent on the wire, and the ways the load generator spoils some of them.
//!
//! Messages are built by [`crate::targets::iso::build`], the same builder scenario replay
//! uses for both targets, so a load run and a scenario send identical messages for
//! identical steps. What the generator relies on (tested below): DE 11 and DE 7 as
//! assigned, DE 90 on follow-ups, DE 4 = original amount and DE 95 = final amount on
//! reversals, DE 52 from the clear PIN under the zone PIN key.

use cardcore_core::iso8583::{parse, Mti};
use cardcore_core::pin::ZonePinKey;

use crate::scenario::{CardMessage, MessageKind};
use crate::targets::iso::{build, BuildError};

/// A message that could not be built. The error names the field, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Builds messages under one zone PIN key.
#[derive(Debug, Clone)]
pub struct Encoder {
    zone_pin_key: ZonePinKey,
}

impl Encoder {
    pub fn new(zone_pin_key: ZonePinKey) -> Encoder {
        Encoder { zone_pin_key }
    }

    /// The bytes of `message` (without the TCP length prefix).
    pub fn encode(&self, message: &CardMessage) -> Result<Vec<u8>, EncodeError> {
        Ok(build(message, &self.zone_pin_key)?)
    }
}

/// The MTI of a message kind; `repeat` picks the repeat form where one exists (a 0200 has
/// none in ISO 8583:1987 and is resent as it is).
pub fn mti_of(kind: MessageKind, repeat: bool) -> Mti {
    match (kind, repeat) {
        (MessageKind::Authorization { .. } | MessageKind::Incremental, false) => {
            Mti::AuthorizationRequest
        }
        (MessageKind::Authorization { .. } | MessageKind::Incremental, true) => {
            Mti::AuthorizationRequestRepeat
        }
        (MessageKind::Financial, _) => Mti::FinancialRequest,
        (MessageKind::Advice { .. }, false) => Mti::AuthorizationAdvice,
        (MessageKind::Advice { .. }, true) => Mti::AuthorizationAdviceRepeat,
        (MessageKind::Clearing, false) => Mti::FinancialAdvice,
        (MessageKind::Clearing, true) => Mti::FinancialAdviceRepeat,
        (MessageKind::Reversal, false) => Mti::ReversalRequest,
        (MessageKind::Reversal, true) => Mti::ReversalRequestRepeat,
    }
}

/// The repeat MTI of a message that has one.
pub fn repeat_of(mti: Mti) -> Option<Mti> {
    match mti {
        Mti::AuthorizationRequest => Some(Mti::AuthorizationRequestRepeat),
        Mti::AuthorizationAdvice => Some(Mti::AuthorizationAdviceRepeat),
        Mti::FinancialAdvice => Some(Mti::FinancialAdviceRepeat),
        Mti::ReversalRequest => Some(Mti::ReversalRequestRepeat),
        _ => None,
    }
}

/// How a malformed frame is spoilt. Each keeps the MTI readable, so the engine answers
/// `30` rather than closing the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Malformation {
    /// A character outside 0-9A-F in the primary bitmap: the STAN cannot be found either,
    /// so the answer carries none.
    BadBitmap,
    /// The last bytes cut off, inside the last field; the STAN stays readable.
    Truncated,
    /// A letter in DE 4.
    NonDigitAmount,
}

impl Malformation {
    pub const ALL: [Malformation; 3] = [
        Malformation::BadBitmap,
        Malformation::Truncated,
        Malformation::NonDigitAmount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Malformation::BadBitmap => "bad_bitmap",
            Malformation::Truncated => "truncated",
            Malformation::NonDigitAmount => "non_digit_amount",
        }
    }

    /// Whether the `30` answer can carry the request's STAN.
    pub fn keeps_stan(self) -> bool {
        self != Malformation::BadBitmap
    }
}

/// Bytes removed from the end of a truncated message: fewer than the 40 characters of the
/// DE 43 that always follows the STAN, so the STAN stays readable.
const TRUNCATED_BYTES: usize = 7;
const DE43_LEN: usize = 40;
const _: () = assert!(TRUNCATED_BYTES < DE43_LEN);

/// Why a message could not be spoilt on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CorruptError {
    #[error("only a well-formed message can be spoilt on purpose")]
    NotWellFormed,
    #[error("the message has no DE 4 to spoil")]
    NoAmount,
}

/// Spoils a well-formed message built by [`Encoder::encode`]. Refused when the message does
/// not parse or, for [`Malformation::NonDigitAmount`], lacks DE 4.
pub fn corrupt(message: &[u8], how: Malformation) -> Result<Vec<u8>, CorruptError> {
    let parsed = parse(message).map_err(|_| CorruptError::NotWellFormed)?;
    let mut out = message.to_vec();
    match how {
        Malformation::BadBitmap => {
            // The first bitmap character after the MTI.
            out[4] = b'G';
        }
        Malformation::Truncated => {
            out.truncate(out.len().saturating_sub(TRUNCATED_BYTES));
        }
        Malformation::NonDigitAmount => {
            let amount = parsed.get(4).ok_or(CorruptError::NoAmount)?;
            // The field is a slice of `message`: its offset is the distance between them.
            let offset = amount.as_ptr() as usize - message.as_ptr() as usize;
            out[offset + amount.len() / 2] = b'X';
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::traffic::message_ids;
    use crate::scenario::{ClearPin, Cvv2, EntryMode, OriginalRef, ProcessingType, SCENARIO_START};
    use cardcore_core::iso8583::{salvage, EntryMode as WireEntryMode, TransmissionTime};
    use cardcore_core::pin::decrypt_pin_block;
    use cardcore_core::{Currency, Expiry, Mcc, Money, Pan};

    fn key() -> ZonePinKey {
        ZonePinKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap()
    }

    fn purchase() -> CardMessage {
        CardMessage {
            kind: MessageKind::Authorization { pre_auth: true },
            pan: Pan::parse("4000001234567899").unwrap(),
            amount: Money::new(4_250, Currency::EUR),
            processing: ProcessingType::Purchase,
            entry: EntryMode::Chip,
            mcc: Mcc(5411),
            pin: Some(ClearPin::parse("1234").unwrap()),
            cvv2: Some(Cvv2::parse("123").unwrap()),
            expiry: Expiry::new(2029, 7).unwrap(),
            merchant: "CORNER SHOP/LONDON".into(),
            country: "GB".into(),
            ids: message_ids(17, SCENARIO_START),
            original: None,
        }
    }

    #[test]
    fn an_authorisation_carries_what_the_generator_relies_on() {
        let bytes = Encoder::new(key()).encode(&purchase()).unwrap();
        let m = parse(&bytes).unwrap();
        assert_eq!(m.mti(), mti_of(purchase().kind, false));
        assert_eq!(m.amount_minor(), Some(4_250));
        assert_eq!(m.currency_numeric(), Some(978));
        assert_eq!(m.stan(), Some(17));
        assert_eq!(m.get(7), Some(&b"0115100000"[..]));
        assert_eq!(m.mcc(), Some(Mcc(5411)));
        let entry = m.pos_entry_mode().and_then(|p| p.entry_mode());
        assert_eq!(entry, Some(WireEntryMode::Chip));
        assert_eq!(m.pos_condition_code(), Some(6));
        assert_eq!(m.acquirer_id(), Some(400_001));
        assert_eq!(m.cvv2(), Some(&b"123"[..]));
        assert_eq!(m.get(43).map(<[u8]>::len), Some(DE43_LEN));
        let block = m.pin_block().unwrap();
        assert!(decrypt_pin_block(&key(), &purchase().pan, &block).is_ok());
        assert!(m.original_data().is_none());
    }

    #[test]
    fn a_reversal_carries_the_original_and_the_final_amount() {
        let original = purchase();
        let reversal = CardMessage {
            kind: MessageKind::Reversal,
            amount: Money::new(1_000, Currency::EUR),
            pin: None,
            cvv2: None,
            ids: message_ids(18, SCENARIO_START.plus_ms(2_000)),
            original: Some(OriginalRef {
                kind: original.kind,
                ids: original.ids.clone(),
                amount: original.amount,
                approval_code: None,
                transaction_id: None,
            }),
            ..original.clone()
        };
        let bytes = Encoder::new(key()).encode(&reversal).unwrap();
        let m = parse(&bytes).unwrap();
        assert_eq!(m.mti(), Mti::ReversalRequest);
        assert_eq!(m.amount_minor(), Some(4_250));
        assert_eq!(m.replacement_amount_minor(), Some(1_000));
        let od = m.original_data().unwrap();
        assert_eq!((od.mti_code, od.stan, od.acquirer_id), (100, 17, 400_001));
        assert_eq!(
            od.transmission_time,
            TransmissionTime::from_timestamp(SCENARIO_START)
        );
        assert!(m.pin_block().is_none());
    }

    #[test]
    fn malformations_fail_to_parse_but_keep_the_mti() {
        let good = Encoder::new(key()).encode(&purchase()).unwrap();
        for how in Malformation::ALL {
            let bad = corrupt(&good, how).unwrap();
            assert!(parse(&bad).is_err(), "{how:?} still parses");
            let s = salvage(&bad);
            assert_eq!(s.mti, Some(Mti::AuthorizationRequest), "{how:?}");
            let stan = if how.keeps_stan() { Some(17) } else { None };
            assert_eq!(s.stan, stan, "{how:?}");
        }
        assert_eq!(
            corrupt(b"0100", Malformation::Truncated),
            Err(CorruptError::NotWellFormed)
        );
    }

    #[test]
    fn repeat_mtis() {
        for kind in [
            MessageKind::Authorization { pre_auth: false },
            MessageKind::Advice { pre_auth: false },
            MessageKind::Clearing,
            MessageKind::Reversal,
        ] {
            let repeat = repeat_of(mti_of(kind, false));
            assert_eq!(repeat, Some(mti_of(kind, true)));
            assert!(repeat.unwrap().is_repeat());
        }
        assert_eq!(repeat_of(Mti::FinancialRequest), None);
    }
}
