//! From ISO 8583 to the engine and back: which fields each message must carry, how they
//! become a [`Request`], and how an [`Answer`] becomes the response message.

use cardcore_core::iso8583::{
    Message, MessageBuilder, MessageClass, Mti, OriginalData, ResponseError, TransmissionTime,
};
use cardcore_core::{Currency, Money, Pan, TransactionType};

use cardcore_core::iso8583::{parse, salvage};

use crate::engine::Engine;
use crate::request::{Cvv2, MessageKey, MessageKind, Request, ShortText};
use crate::state::Answer;

/// What the engine makes of a message that parsed.
#[derive(Debug)]
pub enum Inbound {
    /// A request for the engine.
    Request(Request),
    /// 0800: answered by the transport with 0810 and `00`.
    NetworkManagement,
}

/// A message that parsed but cannot be acted on: answered with `30` (format error).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {problem}")]
pub struct WireError {
    pub field: u8,
    pub problem: &'static str,
}

fn missing(field: u8) -> WireError {
    WireError {
        field,
        problem: "missing",
    }
}

fn invalid(field: u8, problem: &'static str) -> WireError {
    WireError { field, problem }
}

/// DE 70 codes cardcore answers: sign-on, sign-off, echo test.
pub const NETWORK_MANAGEMENT_CODES: [u16; 3] = [1, 2, 301];

/// An 0800 must say what it is (DE 70): sign-on, sign-off or echo.
fn network_management(msg: &Message<'_>) -> Result<Inbound, WireError> {
    match msg.network_management_code() {
        None => Err(missing(70)),
        Some(code) if NETWORK_MANAGEMENT_CODES.contains(&code) => Ok(Inbound::NetworkManagement),
        Some(_) => Err(invalid(
            70,
            "not sign-on (001), sign-off (002) or echo (301)",
        )),
    }
}

/// Fields every request of a kind must carry, beyond the MTI.
fn required_fields(kind: MessageKind) -> &'static [u8] {
    match kind {
        MessageKind::Authorization | MessageKind::Advice | MessageKind::Financial => {
            &[2, 3, 4, 7, 11, 18, 22, 49]
        }
        MessageKind::Clearing | MessageKind::Reversal => &[2, 4, 7, 11, 49, 90],
    }
}

/// Reads a parsed message into a [`Request`].
pub fn inbound(msg: &Message<'_>) -> Result<Inbound, WireError> {
    let mti = msg.mti();
    let kind = match (mti.class(), mti.original()) {
        (MessageClass::NetworkManagement, Mti::NetworkManagementRequest) => {
            return network_management(msg)
        }
        (_, Mti::AuthorizationRequest) => MessageKind::Authorization,
        (_, Mti::AuthorizationAdvice) => MessageKind::Advice,
        (_, Mti::FinancialRequest) => MessageKind::Financial,
        (_, Mti::FinancialAdvice) => MessageKind::Clearing,
        (_, Mti::ReversalRequest | Mti::ReversalAdvice) => MessageKind::Reversal,
        _ => return Err(invalid(0, "message type is not a request cardcore handles")),
    };
    if let Some(field) = msg.first_missing(required_fields(kind)) {
        return Err(missing(field));
    }
    request(msg, kind, mti.is_repeat()).map(Inbound::Request)
}

fn request(msg: &Message<'_>, kind: MessageKind, repeat: bool) -> Result<Request, WireError> {
    let pan = msg
        .pan_bytes()
        .ok_or(missing(2))
        .and_then(|b| Pan::from_ascii(b).map_err(|_| invalid(2, "not a valid PAN")))?;
    let currency = msg
        .currency_numeric()
        .and_then(|n| Currency::from_numeric(n).ok())
        .ok_or(invalid(49, "unknown ISO 4217 currency"))?;
    let amount_minor = msg.amount_minor().ok_or(missing(4))?;
    let amount = Money::new(amount_minor, currency);
    let key = MessageKey {
        stan: msg.stan().ok_or(missing(11))?,
        transmission: transmission_number(msg.transmission_time().ok_or(missing(7))?),
        acquirer: msg.acquirer_id().unwrap_or(0),
    };
    let original = msg.original_data().map(original_key);
    let (channel, txn_type, mcc) = match kind {
        MessageKind::Clearing | MessageKind::Reversal => follow_up_details(msg),
        _ => purchase_details(msg)?,
    };
    Ok(Request {
        kind,
        repeat,
        key,
        pan,
        amount,
        txn_type,
        channel,
        mcc,
        pin_block: msg.pin_block(),
        cvv2: match msg.cvv2() {
            None => None,
            Some(c) => Some(Cvv2::from_ascii(c).ok_or(invalid(48, "CVV2 must be 3 or 4 digits"))?),
        },
        expiry: msg.expiry(),
        rrn: ShortText::new(msg.get(37).unwrap_or(b"")),
        merchant: ShortText::new(msg.get(43).unwrap_or(b"")),
        country: ShortText::new(msg.get(19).unwrap_or(b"")),
        original,
        final_amount_minor: msg.replacement_amount_minor(),
        pre_auth: msg.pos_condition_code() == Some(PRE_AUTH_CONDITION),
    })
}

/// DE 25 value of a pre-authorisation request.
pub const PRE_AUTH_CONDITION: u8 = 6;

type Details = (cardcore_core::Channel, TransactionType, cardcore_core::Mcc);

fn purchase_details(msg: &Message<'_>) -> Result<Details, WireError> {
    let channel = msg
        .pos_entry_mode()
        .and_then(|m| m.channel())
        .ok_or(invalid(22, "unknown POS entry mode"))?;
    let txn_type = msg
        .processing_code()
        .and_then(|p| p.transaction_type(channel))
        .ok_or(invalid(3, "unsupported processing code"))?;
    let mcc = msg.mcc().ok_or(invalid(18, "not a four-digit MCC"))?;
    Ok((channel, txn_type, mcc))
}

/// Follow-ups take their details from the original; these are placeholders the lifecycle
/// never reads for them.
fn follow_up_details(msg: &Message<'_>) -> Details {
    let channel = msg
        .pos_entry_mode()
        .and_then(|m| m.channel())
        .unwrap_or(cardcore_core::Channel::PosChip);
    let txn_type = msg
        .processing_code()
        .and_then(|p| p.transaction_type(channel))
        .unwrap_or(TransactionType::PosPurchase);
    (
        channel,
        txn_type,
        msg.mcc().unwrap_or(cardcore_core::Mcc(0)),
    )
}

fn transmission_number(t: TransmissionTime) -> u64 {
    t.to_digits()
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
}

/// The key of the message DE 90 refers to.
pub fn original_key(original: OriginalData) -> MessageKey {
    MessageKey {
        stan: original.stan,
        transmission: transmission_number(original.transmission_time),
        acquirer: original.acquirer_id,
    }
}

/// Builds the response to `msg` carrying `answer` into `out` (reused between messages).
pub fn respond(
    msg: &Message<'_>,
    answer: &Answer,
    out: &mut MessageBuilder,
) -> Result<(), ResponseError> {
    out.reset_as_response_to(msg)?;
    let code = answer.response_code.as_bytes();
    // Every value here is generated by the engine in the field's format.
    let _ = out.set_response_code(&code);
    if let Some(approval) = &answer.approval_code {
        let _ = out.set_approval_code(approval);
    }
    if let Some(txn) = answer.txn {
        let _ = out.set_issuer_txn_id(txn);
    }
    if let Some(decline) = answer.decline {
        let _ = out.set(
            DECLINE_REASON_FIELD,
            decline_reason_text(decline).as_bytes(),
        );
    }
    Ok(())
}

/// DE 63 of a declined response: the decline reason, and `/` and the detailed reason when
/// there is one, for the acquirer's diagnostics.
pub const DECLINE_REASON_FIELD: u8 = 63;

fn decline_reason_text(decline: cardcore_core::decline::Decline) -> String {
    match decline.detailed {
        None => decline.reason.code().to_owned(),
        Some(d) => format!("{}/{}", decline.reason.code(), d.code()),
    }
}

/// Reads DE 63 back: (reason, detailed reason).
pub fn decline_from_response(msg: &Message<'_>) -> Option<(String, Option<String>)> {
    let text = msg.get_str(DECLINE_REASON_FIELD)?;
    Some(match text.split_once('/') {
        Some((r, d)) => (r.to_owned(), Some(d.to_owned())),
        None => (text.to_owned(), None),
    })
}

/// The 0810 answer to a network management request.
pub fn respond_network_management(
    msg: &Message<'_>,
    out: &mut MessageBuilder,
) -> Result<(), ResponseError> {
    out.reset_as_response_to(msg)?;
    let _ = out.set_response_code(b"00");
    Ok(())
}

/// The `30` answer to a message that parsed but cannot be acted on.
pub fn respond_format_error(
    msg: &Message<'_>,
    out: &mut MessageBuilder,
) -> Result<(), ResponseError> {
    out.reset_as_response_to(msg)?;
    let _ = out.set_response_code(b"30");
    Ok(())
}

/// What to do with one inbound frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes (unframed) back.
    Message(Vec<u8>),
    /// The message could not even be read: close the connection.
    Close,
}

/// Handles one unframed message end to end and synchronously: parse, decide (waiting for
/// durability in `sync` mode), respond. The in-process simulator and embedders that do
/// their own I/O use this; the server does the same steps asynchronously.
pub fn process_message(engine: &Engine, bytes: &[u8]) -> Reply {
    // Longer than any frame the wire carries: a connection would have been closed.
    if bytes.len() > cardcore_core::iso8583::MESSAGE_MAX_LEN {
        return Reply::Close;
    }
    let mut out = MessageBuilder::new(Mti::NetworkManagementResponse);
    let msg = match parse(bytes) {
        Ok(msg) => msg,
        Err(_) => {
            return match out.reset_as_format_error(&salvage(bytes)) {
                Ok(()) => Reply::Message(out.to_vec()),
                Err(_) => Reply::Close,
            }
        }
    };
    let built = match inbound(&msg) {
        Ok(Inbound::NetworkManagement) => respond_network_management(&msg, &mut out),
        Err(_) => respond_format_error(&msg, &mut out),
        Ok(Inbound::Request(request)) => match engine.handle(request) {
            Ok(outcome) => respond(&msg, &outcome.answer, &mut out),
            Err(_) => {
                let failed = Answer {
                    response_code: cardcore_core::decline::ResponseCode::SYSTEM_ERROR,
                    decline: None,
                    txn: None,
                    approval_code: None,
                    approved_amount: None,
                };
                respond(&msg, &failed, &mut out)
            }
        },
    };
    match built {
        Ok(()) => Reply::Message(out.to_vec()),
        Err(_) => Reply::Close,
    }
}
