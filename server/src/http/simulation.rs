//! The simulation endpoints: balance top-up, and card authorisation, clearing and reversal.
//!
//! A simulated card message is a real ISO 8583 message: it is built with the codec's
//! `MessageBuilder` (a PIN becomes an ISO 9564 format-0 block under the zone PIN key), then
//! parsed, decided and answered by `wire::process_message`, the same steps the TCP port
//! takes. The answer is read back from the response message.
//!
//! The `reference` returned by an authorisation identifies the message the way a network
//! would (STAN, transmission time, acquirer): a clearing or reversal sends it back in `ref`
//! and the engine matches it through DE 90. The PAN is never put in a reference; clearing
//! and reversal take it again in `cardNumber` (or `ref.transaction.card.pan`).

use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::State;
use axum::Json;
use cardcore_authz::wire::{self, Reply};
use cardcore_authz::Engine;
use cardcore_core::iso8583::{
    self, EntryMode, MessageBuilder, Mti, OriginalData, ProcessingCode, TransmissionTime,
};
use cardcore_core::pin::{encrypt_pin_block, Pin};
use cardcore_core::{CardStatus, CardToken, Currency, Expiry, Mcc, Money, Pan, ProfileId, TxnId};
use chrono::{Datelike, Timelike};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::access::CardAt;
use super::error::{ApiError, ApiResult};
use super::json::{Amount, JsonBody, Number, SecretDigits, ValueIn, ValueOut};
use super::state::AppState;
use super::views::SCHEME;

/// DE 32 of simulated messages: the acquiring institution of the reference's examples.
pub const SIM_ACQUIRER_ID: u64 = 430_010;
/// DE 33 of simulated messages.
pub const SIM_FORWARDING_ID: u64 = 400_050;
/// DE 41.
pub const SIM_TERMINAL_ID: &str = "TERMID01";
/// DE 42.
pub const SIM_ACCEPTOR_ID: &str = "CARD ACCEPTOR";
/// DE 43 name when the body gives none.
pub const SIM_MERCHANT_NAME: &str = "SIMULATED MERCHANT";
/// DE 43 country when the body gives none.
pub const SIM_COUNTRY: &str = "GB";
/// DE 18 when the body gives no `mcc`.
pub const SIM_DEFAULT_MCC: u16 = 5999;
/// The largest STAN: DE 11 has six digits.
pub const STAN_MAX: u32 = 999_999;
/// DE 25 of a pre-authorisation.
const PRE_AUTH_CONDITION: u8 = 6;
/// The longest merchant name DE 43 carries (two characters are left for the country).
const MERCHANT_NAME_MAX: usize = 38;

/// STANs for simulated messages. The count starts at a random point so that a restarted
/// server does not repeat the STANs of messages it sent in the same second before.
#[derive(Debug)]
pub struct StanCounter(AtomicU32);

impl StanCounter {
    pub fn new() -> StanCounter {
        StanCounter(AtomicU32::new(rand::random::<u32>() % STAN_MAX + 1))
    }

    /// The next STAN, 1..=999999, wrapping.
    pub fn next(&self) -> u32 {
        let previous = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(if s >= STAN_MAX { 1 } else { s + 1 })
            })
            .unwrap_or(1);
        previous.clamp(1, STAN_MAX)
    }
}

impl Default for StanCounter {
    fn default() -> StanCounter {
        StanCounter::new()
    }
}

/// How the card is presented (`pos`). The reference names the first two; the others let a
/// simulation use every entry mode the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Pos {
    ChipAndPin,
    #[serde(rename = "E_COMMERCE_NO_3DS")]
    ECommerceNo3ds,
    Contactless,
    Magstripe,
    MobileWallet,
    ManualEntry,
}

impl Pos {
    fn entry_mode(self) -> EntryMode {
        match self {
            Pos::ChipAndPin => EntryMode::Chip,
            Pos::ECommerceNo3ds => EntryMode::Ecom,
            Pos::Contactless => EntryMode::Contactless,
            Pos::Magstripe => EntryMode::Magstripe,
            Pos::MobileWallet => EntryMode::Wallet,
            Pos::ManualEntry => EntryMode::Manual,
        }
    }
}

/// `transactionType` of a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimType {
    GoodsAndServices,
    CashWithdrawal,
    Refund,
}

impl SimType {
    fn processing(self) -> ProcessingCode {
        ProcessingCode::new(match self {
            SimType::GoodsAndServices => ProcessingCode::PURCHASE,
            SimType::CashWithdrawal => ProcessingCode::CASH_WITHDRAWAL,
            SimType::Refund => ProcessingCode::REFUND,
        })
    }
}

/// The body of a simulated authorisation. `pin`, `cvv2`, `expiryDate`, `merchantName`,
/// `merchantCountry` and `preAuth` are cardcore's additions (the reference's sandbox knows
/// the card's secrets itself; this one never stores them).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorisationBody {
    #[serde(default = "default_pos")]
    pub pos: Pos,
    #[serde(default = "default_type")]
    pub transaction_type: SimType,
    pub amount: ValueIn,
    pub mcc: Option<u16>,
    pub card_number: SecretDigits,
    pub pin: Option<SecretDigits>,
    pub cvv2: Option<SecretDigits>,
    /// `YYYY-MM`; the card's own expiry when absent.
    pub expiry_date: Option<String>,
    pub merchant_name: Option<String>,
    pub merchant_country: Option<String>,
    #[serde(default)]
    pub pre_auth: bool,
}

fn default_pos() -> Pos {
    Pos::ChipAndPin
}

fn default_type() -> SimType {
    SimType::GoodsAndServices
}

/// The body of a simulated clearing or reversal.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FollowUpBody {
    pub amount: ValueIn,
    #[serde(default = "default_type")]
    pub transaction_type: SimType,
    #[serde(rename = "ref")]
    pub reference: RefIn,
    pub card_number: Option<SecretDigits>,
}

/// A reference as an authorisation returned it. Only what identifies the original message
/// is read; everything else a client copies along is ignored.
#[derive(Debug, Deserialize)]
pub struct RefIn {
    pub transaction: RefTransactionIn,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefTransactionIn {
    pub stan: String,
    /// Seconds since the epoch (the reference's form).
    pub transaction_start_time: Option<Amount>,
    /// DE 7 of the original, `MMDDhhmmss` (cardcore's addition; preferred when present).
    pub transmission_time: Option<String>,
    #[serde(default = "default_request_mti")]
    pub request_mti: String,
    pub acquirer: Option<RefAcquirerIn>,
    pub card: Option<RefCardIn>,
    pub transaction_id: Option<u64>,
}

fn default_request_mti() -> String {
    "0100".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefAcquirerIn {
    pub institution_id: Option<String>,
    pub forwarding_institution_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RefCardIn {
    pub pan: Option<SecretDigits>,
}

/// The answer to a simulated card message.
#[derive(Debug, Serialize)]
pub struct SimResponse {
    pub reference: RefOut,
    /// `null` when approved; otherwise the response code and the decline reason.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RefOut {
    pub transaction: RefTransactionOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefTransactionOut {
    pub acquirer: AcquirerOut,
    pub card: CardRefOut,
    pub pos: PosOut,
    pub transaction_type: SimType,
    pub amount: ValueOut,
    pub transaction_start_time: Number,
    pub transmission_time: String,
    pub stan: String,
    pub retrieval_reference_num: String,
    pub request_mti: String,
    pub authorization_id_response: Option<String>,
    pub response_code: Option<String>,
    pub approved: bool,
    pub transaction_id: Option<TxnId>,
    pub decline_reason: Option<String>,
    pub detailed_decline_reason: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcquirerOut {
    pub institution_id: String,
    pub name: String,
    pub merchant_category_code: u16,
    pub country: String,
    pub acceptor_terminal_id: &'static str,
    pub acceptor_id_code: &'static str,
    pub forwarding_institution_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardRefOut {
    pub token: CardToken,
    pub scheme_name: &'static str,
    pub masked_pan: String,
    pub expiration: [u16; 2],
    pub profile_id: ProfileId,
    pub card_status: CardStatus,
    pub currencies: Vec<Currency>,
}

#[derive(Debug, Serialize)]
pub struct PosOut {
    #[serde(rename = "type")]
    pub kind: Pos,
}

/// One simulated message, fully specified.
#[derive(Debug)]
struct SimMessage {
    mti: Mti,
    pan: Pan,
    amount: Money,
    processing: ProcessingCode,
    entry: EntryMode,
    mcc: Mcc,
    pin: Option<Pin>,
    cvv2: Option<SecretDigits>,
    expiry: Expiry,
    merchant: String,
    country: String,
    pre_auth: bool,
    original: Option<OriginalData>,
    /// DE 95 of a reversal.
    final_amount: Option<Money>,
}

/// What came back, read from the response message.
#[derive(Debug, Default)]
struct SimAnswer {
    response_code: Option<String>,
    approval_code: Option<String>,
    txn: Option<TxnId>,
    decline: Option<(String, Option<String>)>,
}

/// The identifiers of one sent message.
#[derive(Debug, Clone, Copy)]
struct SentIds {
    stan: u32,
    sent_at: cardcore_core::Timestamp,
}

pub async fn authorisation(
    State(state): State<AppState>,
    at: CardAt,
    JsonBody(body): JsonBody<AuthorisationBody>,
) -> ApiResult<Json<SimResponse>> {
    let pan = parse_pan(&body.card_number, "cardNumber")?;
    let amount = body.amount.to_money("amount")?;
    let mcc = sim_mcc(body.mcc)?;
    let pin = parse_pin(body.pin.as_ref())?;
    let cvv2 = check_cvv2(body.cvv2)?;
    let expiry = body
        .expiry_date
        .as_deref()
        .map(|e| Expiry::parse(e).map_err(|_| ApiError::invalid("expiryDate", "expected YYYY-MM")))
        .transpose()?;
    let merchant = merchant_name(body.merchant_name.as_deref())?;
    let country = merchant_country(body.merchant_country.as_deref())?;
    let (pos, sim_type, pre_auth) = (body.pos, body.transaction_type, body.pre_auth);
    let stan = state.stans().next();
    state
        .run(move |engine| {
            let card = matching_card(engine, &at, &pan)?;
            let message = SimMessage {
                mti: Mti::AuthorizationRequest,
                pan,
                amount,
                processing: sim_type.processing(),
                entry: pos.entry_mode(),
                mcc,
                pin,
                cvv2,
                expiry: expiry.unwrap_or(card.expiry),
                merchant,
                country: country.clone(),
                pre_auth,
                original: None,
                final_amount: None,
            };
            let ids = SentIds {
                stan,
                sent_at: engine.now(),
            };
            let answer = exchange(engine, &message, ids)?;
            Ok(respond(&card, &message, ids, answer, pos, sim_type))
        })
        .await
        .map(Json)
}

pub async fn clearing(
    State(state): State<AppState>,
    at: CardAt,
    JsonBody(body): JsonBody<FollowUpBody>,
) -> ApiResult<Json<SimResponse>> {
    follow_up(state, at, body, Mti::FinancialAdvice).await
}

pub async fn reversal(
    State(state): State<AppState>,
    at: CardAt,
    JsonBody(body): JsonBody<FollowUpBody>,
) -> ApiResult<Json<SimResponse>> {
    follow_up(state, at, body, Mti::ReversalRequest).await
}

async fn follow_up(
    state: AppState,
    at: CardAt,
    body: FollowUpBody,
    mti: Mti,
) -> ApiResult<Json<SimResponse>> {
    let secret = body
        .card_number
        .as_ref()
        .or_else(|| body.reference.transaction.card.as_ref()?.pan.as_ref())
        .ok_or_else(|| ApiError::invalid("cardNumber", "the card number is required"))?;
    let pan = parse_pan(secret, "cardNumber")?;
    let amount = body.amount.to_money("amount")?;
    let original = original_data(&body.reference.transaction)?;
    let original_txn = body.reference.transaction.transaction_id;
    let sim_type = body.transaction_type;
    let stan = state.stans().next();
    state
        .run(move |engine| {
            let card = matching_card(engine, &at, &pan)?;
            let message = follow_up_message(engine, &at, mti, pan, amount, original, original_txn);
            let message = SimMessage {
                processing: sim_type.processing(),
                expiry: card.expiry,
                ..message
            };
            let ids = SentIds {
                stan,
                sent_at: engine.now(),
            };
            let answer = exchange(engine, &message, ids)?;
            Ok(respond(
                &card,
                &message,
                ids,
                answer,
                Pos::ChipAndPin,
                sim_type,
            ))
        })
        .await
        .map(Json)
}

/// A clearing (0220) or reversal (0400) of `original`. A reversal carries the original
/// amount in DE 4 and the final amount in DE 95, as networks send it.
fn follow_up_message(
    engine: &Engine,
    at: &CardAt,
    mti: Mti,
    pan: Pan,
    amount: Money,
    original: OriginalData,
    original_txn: Option<u64>,
) -> SimMessage {
    let reversal = mti == Mti::ReversalRequest;
    let original_amount = original_txn
        .filter(|_| reversal)
        .and_then(|id| engine.transaction(at.profile, TxnId(id)).ok())
        .map(|(record, _)| record.requested)
        .filter(|requested| requested.currency == amount.currency);
    SimMessage {
        mti,
        pan,
        amount: original_amount.unwrap_or(amount),
        processing: ProcessingCode::new(ProcessingCode::PURCHASE),
        entry: EntryMode::Chip,
        mcc: Mcc(SIM_DEFAULT_MCC),
        pin: None,
        cvv2: None,
        expiry: Expiry {
            year: 2000,
            month: 1,
        },
        merchant: SIM_MERCHANT_NAME.to_owned(),
        country: SIM_COUNTRY.to_owned(),
        pre_auth: false,
        original: Some(original),
        final_amount: reversal.then_some(amount),
    }
}

/// The card at the path, which must be the card the PAN belongs to.
fn matching_card(engine: &Engine, at: &CardAt, pan: &Pan) -> ApiResult<cardcore_authz::Card> {
    let card = engine.card(at.profile, at.token)?;
    if pan.fingerprint(&engine.config().pan_key) != card.fingerprint {
        return Err(ApiError::invalid(
            "cardNumber",
            "the card number is not the number of the card in the path",
        ));
    }
    Ok(card)
}

/// Builds the message, runs it through the engine's message path and reads the answer.
fn exchange(engine: &Engine, message: &SimMessage, ids: SentIds) -> ApiResult<SimAnswer> {
    let bytes = build(engine, message, ids)?;
    match wire::process_message(engine, &bytes) {
        Reply::Message(response) => Ok(read_answer(&response)),
        Reply::Close => Err(ApiError::unavailable(
            "the engine could not answer the simulated message",
        )),
    }
}

fn build(engine: &Engine, m: &SimMessage, ids: SentIds) -> ApiResult<Vec<u8>> {
    let bug = |e: iso8583::FieldError| ApiError::invalid("amount", format!("cannot be sent: {e}"));
    let mut b = MessageBuilder::new(m.mti);
    let time = TransmissionTime::from_timestamp(ids.sent_at);
    b.set_pan(&m.pan).map_err(bug)?;
    b.set_processing_code(m.processing).map_err(bug)?;
    b.set_amount(m.amount).map_err(bug)?;
    b.set_transmission_time(time).map_err(bug)?;
    b.set_stan(ids.stan).map_err(bug)?;
    b.set_expiry(m.expiry).map_err(bug)?;
    b.set_mcc(m.mcc).map_err(bug)?;
    b.set_pos_entry_mode(m.entry.pos_entry_mode())
        .map_err(bug)?;
    let condition = if m.pre_auth { PRE_AUTH_CONDITION } else { 0 };
    b.set_pos_condition_code(condition).map_err(bug)?;
    b.set_acquirer_id(SIM_ACQUIRER_ID).map_err(bug)?;
    b.set_numeric(33, SIM_FORWARDING_ID).map_err(bug)?;
    b.set_str(37, &rrn(ids)).map_err(bug)?;
    b.set_str(41, SIM_TERMINAL_ID).map_err(bug)?;
    b.set_str(42, &format!("{SIM_ACCEPTOR_ID:<15}"))
        .map_err(bug)?;
    b.set_str(43, &format!("{:<38}{:>2}", m.merchant, m.country))
        .map_err(bug)?;
    if let Some(cvv2) = &m.cvv2 {
        b.set_cvv2(cvv2.expose().as_bytes()).map_err(bug)?;
    }
    if let Some(pin) = &m.pin {
        let zpk = &engine.config().keys.zone_pin_key;
        b.set_pin_block(&encrypt_pin_block(zpk, &m.pan, pin))
            .map_err(bug)?;
    }
    if let Some(original) = &m.original {
        b.set_original_data(original)
            .map_err(|e| ApiError::invalid("ref.transaction", format!("cannot be sent: {e}")))?;
    }
    if let Some(final_amount) = m.final_amount {
        b.set_replacement_amount_minor(final_amount.amount_minor)
            .map_err(bug)?;
    }
    Ok(b.to_vec())
}

/// DE 37: `YDDDhh` and the STAN, the common retrieval reference layout.
fn rrn(ids: SentIds) -> String {
    let t = ids.sent_at.to_datetime();
    format!(
        "{}{:03}{:02}{:06}",
        t.year().rem_euclid(10),
        t.ordinal(),
        t.hour(),
        ids.stan
    )
}

fn read_answer(bytes: &[u8]) -> SimAnswer {
    let Ok(msg) = iso8583::parse(bytes) else {
        return SimAnswer::default();
    };
    SimAnswer {
        response_code: msg
            .response_code()
            .map(|c| String::from_utf8_lossy(&c).into_owned()),
        approval_code: msg.get_str(38).map(str::to_owned),
        txn: msg.issuer_txn_id(),
        decline: wire::decline_from_response(&msg),
    }
}

fn respond(
    card: &cardcore_authz::Card,
    m: &SimMessage,
    ids: SentIds,
    answer: SimAnswer,
    pos: Pos,
    sim_type: SimType,
) -> SimResponse {
    let approved = answer.response_code.as_deref() == Some("00");
    let error = (!approved).then(|| describe_refusal(&answer));
    let (decline_reason, detailed_decline_reason) = match answer.decline {
        Some((reason, detailed)) => (Some(reason), detailed),
        None => (None, None),
    };
    let transaction = RefTransactionOut {
        acquirer: AcquirerOut {
            institution_id: SIM_ACQUIRER_ID.to_string(),
            name: m.merchant.clone(),
            merchant_category_code: m.mcc.0,
            country: m.country.clone(),
            acceptor_terminal_id: SIM_TERMINAL_ID,
            acceptor_id_code: SIM_ACCEPTOR_ID,
            forwarding_institution_id: SIM_FORWARDING_ID.to_string(),
        },
        card: CardRefOut {
            token: card.token,
            scheme_name: SCHEME,
            masked_pan: card.masked_pan.to_string(),
            expiration: [card.expiry.year, u16::from(card.expiry.month)],
            profile_id: card.profile,
            card_status: card.status,
            currencies: vec![card.currency],
        },
        pos: PosOut { kind: pos },
        transaction_type: sim_type,
        amount: m.final_amount.unwrap_or(m.amount).into(),
        transaction_start_time: Number(Decimal::new(ids.sent_at.0, 3)),
        transmission_time: digits_text(&TransmissionTime::from_timestamp(ids.sent_at).to_digits()),
        stan: format!("{:06}", ids.stan),
        retrieval_reference_num: rrn(ids),
        request_mti: m.mti.as_str().to_owned(),
        authorization_id_response: answer.approval_code,
        response_code: answer.response_code,
        approved,
        transaction_id: answer.txn,
        decline_reason,
        detailed_decline_reason,
    };
    SimResponse {
        reference: RefOut { transaction },
        error,
    }
}

fn describe_refusal(answer: &SimAnswer) -> String {
    let code = answer.response_code.as_deref().unwrap_or("none");
    match &answer.decline {
        Some((reason, Some(detailed))) => format!("declined ({code}): {reason} / {detailed}"),
        Some((reason, None)) => format!("declined ({code}): {reason}"),
        None => format!("refused with response code {code}"),
    }
}

fn digits_text(digits: &[u8]) -> String {
    String::from_utf8_lossy(digits).into_owned()
}

/// DE 90 of a follow-up, from the reference the authorisation returned.
fn original_data(t: &RefTransactionIn) -> ApiResult<OriginalData> {
    let stan = t
        .stan
        .parse::<u32>()
        .ok()
        .filter(|s| (1..=STAN_MAX).contains(s))
        .ok_or_else(|| ApiError::invalid("ref.transaction.stan", "expected 1 to 6 digits"))?;
    let transmission_time = match (&t.transmission_time, &t.transaction_start_time) {
        (Some(text), _) => TransmissionTime::from_digits(text.as_bytes()).ok_or_else(|| {
            ApiError::invalid("ref.transaction.transmissionTime", "expected MMDDhhmmss")
        })?,
        (None, Some(seconds)) => start_time(seconds.0)?,
        (None, None) => {
            return Err(ApiError::invalid(
                "ref.transaction.transactionStartTime",
                "the original's start time is required",
            ))
        }
    };
    let mti_code = Mti::from_bytes(t.request_mti.as_bytes())
        .filter(|m| matches!(m, Mti::AuthorizationRequest | Mti::FinancialRequest))
        .ok_or_else(|| ApiError::invalid("ref.transaction.requestMti", "expected 0100 or 0200"))?
        .code();
    let acquirer = t.acquirer.as_ref();
    Ok(OriginalData {
        mti_code,
        stan,
        transmission_time,
        acquirer_id: id_digits(
            acquirer.and_then(|a| a.institution_id.as_deref()),
            SIM_ACQUIRER_ID,
            "ref.transaction.acquirer.institutionId",
        )?,
        forwarding_id: id_digits(
            acquirer.and_then(|a| a.forwarding_institution_id.as_deref()),
            SIM_FORWARDING_ID,
            "ref.transaction.acquirer.forwardingInstitutionId",
        )?,
    })
}

fn start_time(seconds: Decimal) -> ApiResult<TransmissionTime> {
    let ms = (seconds * Decimal::from(1000))
        .trunc()
        .to_i64()
        .filter(|ms| *ms >= 0)
        .ok_or_else(|| ApiError::invalid("ref.transaction.transactionStartTime", "out of range"))?;
    Ok(TransmissionTime::from_timestamp(cardcore_core::Timestamp(
        ms,
    )))
}

/// An institution id of up to 11 digits (DE 32/33).
fn id_digits(text: Option<&str>, default: u64, field: &str) -> ApiResult<u64> {
    match text {
        None => Ok(default),
        Some(t) if !t.is_empty() && t.len() <= 11 && t.bytes().all(|b| b.is_ascii_digit()) => t
            .parse()
            .map_err(|_| ApiError::invalid(field, "expected up to 11 digits")),
        Some(_) => Err(ApiError::invalid(field, "expected up to 11 digits")),
    }
}

pub fn parse_pan(secret: &SecretDigits, field: &str) -> ApiResult<Pan> {
    // The error names what is wrong (length, Luhn) and never the digits.
    Pan::parse(secret.expose()).map_err(|e| ApiError::invalid(field, e.to_string()))
}

pub fn parse_pin(secret: Option<&SecretDigits>) -> ApiResult<Option<Pin>> {
    secret
        .map(|p| {
            Pin::parse(p.expose()).map_err(|_| ApiError::invalid("pin", "expected 4 to 12 digits"))
        })
        .transpose()
}

pub fn check_cvv2(secret: Option<SecretDigits>) -> ApiResult<Option<SecretDigits>> {
    match secret {
        Some(c) if !(3..=4).contains(&c.expose().len()) => {
            Err(ApiError::invalid("cvv2", "expected 3 or 4 digits"))
        }
        other => Ok(other),
    }
}

fn sim_mcc(mcc: Option<u16>) -> ApiResult<Mcc> {
    match mcc.unwrap_or(SIM_DEFAULT_MCC) {
        m if m <= 9999 => Ok(Mcc(m)),
        _ => Err(ApiError::invalid(
            "mcc",
            "expected a four-digit merchant category code",
        )),
    }
}

fn merchant_name(name: Option<&str>) -> ApiResult<String> {
    let name = name.unwrap_or(SIM_MERCHANT_NAME);
    if name.len() > MERCHANT_NAME_MAX || !name.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(ApiError::invalid(
            "merchantName",
            format!("expected at most {MERCHANT_NAME_MAX} printable ASCII characters"),
        ));
    }
    Ok(name.to_owned())
}

fn merchant_country(country: Option<&str>) -> ApiResult<String> {
    let country = country.unwrap_or(SIM_COUNTRY);
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "merchantCountry",
            "expected an ISO 3166-1 alpha-2 code",
        ));
    }
    Ok(country.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stans_stay_in_range_and_wrap() {
        let counter = StanCounter(AtomicU32::new(STAN_MAX - 1));
        let seen: Vec<u32> = (0..4).map(|_| counter.next()).collect();
        assert_eq!(seen, [STAN_MAX - 1, STAN_MAX, 1, 2]);
        let fresh = StanCounter::new();
        assert!((1..=STAN_MAX).contains(&fresh.next()));
    }

    #[test]
    fn pos_values_are_the_reference_names() {
        let cases = [
            ("CHIP_AND_PIN", Pos::ChipAndPin),
            ("E_COMMERCE_NO_3DS", Pos::ECommerceNo3ds),
            ("CONTACTLESS", Pos::Contactless),
            ("MOBILE_WALLET", Pos::MobileWallet),
        ];
        for (text, pos) in cases {
            let parsed: Pos = serde_json::from_str(&format!("\"{text}\"")).unwrap();
            assert_eq!(parsed, pos);
        }
        assert!(serde_json::from_str::<Pos>("\"E_COMMERCE_NO3DS\"").is_err());
    }

    #[test]
    fn rrn_is_twelve_characters() {
        let ids = SentIds {
            stan: 42,
            sent_at: cardcore_core::Timestamp::parse_rfc3339("2026-01-15T10:00:00Z").unwrap(),
        };
        assert_eq!(rrn(ids), "601510000042");
    }

    #[test]
    fn start_time_round_trips_to_the_transmission_time() {
        let t = cardcore_core::Timestamp::parse_rfc3339("2026-01-15T10:00:07.250Z").unwrap();
        let seconds = Decimal::new(t.0, 3);
        assert_eq!(
            start_time(seconds).unwrap(),
            TransmissionTime::from_timestamp(t)
        );
        assert!(start_time(Decimal::from(-1)).is_err());
    }
}
