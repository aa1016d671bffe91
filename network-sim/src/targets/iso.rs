//! Scenario messages as ISO 8583: what both targets send, byte for byte, and how they read
//! the answer.

use cardcore_core::iso8583::{
    parse, Message, MessageBuilder, Mti, OriginalData, ProcessingCode, TransmissionTime,
};
use cardcore_core::pin::{encrypt_pin_block, Pin, ZonePinKey};
use cardcore_core::{Currency, Money, TxnId};
use chrono::Timelike;

use crate::scenario::{CardMessage, MessageKind, ProcessingType, TrafficOutcome};

/// DE 25 of a pre-authorisation.
const PRE_AUTH_CONDITION: u8 = 6;
/// DE 41 and DE 42 of scenario traffic.
const TERMINAL_ID: &str = "SIMTERM1";
const MERCHANT_ID: &str = "CARDCORESIM0001";

/// Why a message could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build the ISO 8583 message: {0}")]
pub struct BuildError(pub String);

fn err(e: impl std::fmt::Display) -> BuildError {
    BuildError(e.to_string())
}

fn mti(kind: MessageKind) -> Mti {
    match kind {
        MessageKind::Authorization { .. } | MessageKind::Incremental => Mti::AuthorizationRequest,
        MessageKind::Financial => Mti::FinancialRequest,
        MessageKind::Advice { .. } => Mti::AuthorizationAdvice,
        MessageKind::Clearing => Mti::FinancialAdvice,
        MessageKind::Reversal => Mti::ReversalRequest,
    }
}

fn processing(p: ProcessingType) -> ProcessingCode {
    ProcessingCode::new(match p {
        ProcessingType::Purchase => ProcessingCode::PURCHASE,
        ProcessingType::CashWithdrawal => ProcessingCode::CASH_WITHDRAWAL,
        ProcessingType::Refund => ProcessingCode::REFUND,
    })
}

fn acquirer(id: &str) -> Result<u64, BuildError> {
    id.parse()
        .map_err(|_| BuildError(format!("acquirer id {id:?} is not numeric")))
}

/// Builds the message for a scenario step. The clear PIN becomes a format-0 PIN block under
/// `zpk`.
pub fn build(message: &CardMessage, zpk: &ZonePinKey) -> Result<Vec<u8>, BuildError> {
    let mut b = MessageBuilder::new(mti(message.kind));
    let ids = &message.ids;
    let local = ids.transmission_time.to_datetime();
    let hhmmss = u64::from(local.hour() * 10_000 + local.minute() * 100 + local.second());
    b.set_pan(&message.pan).map_err(err)?;
    b.set_processing_code(processing(message.processing))
        .map_err(err)?;
    b.set_amount(message.amount).map_err(err)?;
    b.set_transmission_time(TransmissionTime::from_timestamp(ids.transmission_time))
        .map_err(err)?;
    b.set_stan(ids.stan).map_err(err)?;
    b.set_numeric(12, hhmmss).map_err(err)?;
    b.set_expiry(message.expiry).map_err(err)?;
    b.set_mcc(message.mcc).map_err(err)?;
    b.set_pos_entry_mode(message.entry.pos_entry_mode())
        .map_err(err)?;
    let pre_auth = matches!(
        message.kind,
        MessageKind::Authorization { pre_auth: true } | MessageKind::Advice { pre_auth: true }
    );
    b.set_pos_condition_code(if pre_auth { PRE_AUTH_CONDITION } else { 0 })
        .map_err(err)?;
    b.set_acquirer_id(acquirer(&ids.acquirer_id)?)
        .map_err(err)?;
    b.set_str(37, &ids.rrn).map_err(err)?;
    b.set_str(41, TERMINAL_ID).map_err(err)?;
    b.set_str(42, MERCHANT_ID).map_err(err)?;
    b.set_str(43, &merchant_field(&message.merchant, &message.country))
        .map_err(err)?;
    if let Some(cvv2) = &message.cvv2 {
        b.set_cvv2(cvv2.expose_digits().as_bytes()).map_err(err)?;
    }
    if let Some(pin) = &message.pin {
        let pin = Pin::parse(pin.expose_digits()).map_err(err)?;
        b.set_pin_block(&encrypt_pin_block(zpk, &message.pan, &pin))
            .map_err(err)?;
    }
    set_original(&mut b, message)?;
    Ok(b.to_vec())
}

/// DE 43: name (padded to 38) and the two-letter country, 40 characters in all.
fn merchant_field(merchant: &str, country: &str) -> String {
    let name: String = merchant
        .chars()
        .filter(|c| c.is_ascii() && !c.is_control())
        .take(38)
        .collect();
    let country: String = country
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(2)
        .collect();
    format!("{name:<38}{country:>2}")
}

fn set_original(b: &mut MessageBuilder, message: &CardMessage) -> Result<(), BuildError> {
    let Some(original) = &message.original else {
        return Ok(());
    };
    let data = OriginalData {
        mti_code: mti(original.kind).code(),
        stan: original.ids.stan,
        transmission_time: TransmissionTime::from_timestamp(original.ids.transmission_time),
        acquirer_id: acquirer(&original.ids.acquirer_id)?,
        forwarding_id: 0,
    };
    b.set_original_data(&data).map_err(err)?;
    if message.kind == MessageKind::Reversal {
        // A reversal carries the original amount in DE 4 and the final amount in DE 95.
        b.set_amount(original.amount).map_err(err)?;
        b.set_replacement_amount_minor(message.amount.amount_minor)
            .map_err(err)?;
    }
    Ok(())
}

/// Reads an answer: DE 39, DE 38, DE 62 (the issuer's transaction id) and DE 4.
pub fn read_answer(bytes: &[u8]) -> TrafficOutcome {
    let Ok(msg) = parse(bytes) else {
        return TrafficOutcome {
            disconnected: true,
            ..TrafficOutcome::default()
        };
    };
    outcome_of(&msg)
}

fn outcome_of(msg: &Message<'_>) -> TrafficOutcome {
    let response_code = msg
        .response_code()
        .map(|c| String::from_utf8_lossy(&c).into_owned());
    let approved = response_code.as_deref() == Some("00");
    let currency = msg
        .currency_numeric()
        .and_then(|n| Currency::from_numeric(n).ok());
    let approved_amount = match (approved, msg.amount_minor(), currency) {
        (true, Some(minor), Some(ccy)) => Some(Money::new(minor, ccy)),
        _ => None,
    };
    TrafficOutcome {
        response_code,
        approved,
        approved_amount,
        approval_code: msg.get_str(38).map(str::to_owned),
        transaction_id: msg.issuer_txn_id().map(|id: TxnId| id),
        disconnected: false,
    }
}
