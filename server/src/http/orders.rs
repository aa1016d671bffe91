//! Card orders: enough to issue a card (create, get, list, and the programs on offer).
//!
//! An order is fulfilled at once: the card is generated with a fresh PAN under this
//! issuer's BIN, which is never shown (the masked PAN is). A virtual card is `ACTIVE` and its
//! order `COMPLETED`; a physical card starts `INACTIVE` (order `CARD_DETAILS_CREATED`) until
//! the status API activates it. The order id is derived from the card token, so every card
//! is also an order and ids survive restarts. The holder's name, phone and address are not
//! kept by the engine: they live in memory (see [`super::state::OrderMemory`]). An order
//! retried with its `X-idempotence-uuid` answers with the card of the first, even after a
//! restart or when the retries race (see [`super::order_keys`]).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use cardcore_authz::management::{IssueCard, LimitChange};
use cardcore_authz::{Card, Engine, EngineError};
use cardcore_core::pan::luhn_check_digit;
use cardcore_core::{
    CardOrderId, CardStatus, CardToken, CardType, Expiry, Granularity, Money, Pan, ProfileId,
};
use chrono::Datelike;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::access::{PathParams, ProfileAt, QueryMap};
use super::cards::page;
use super::error::{ApiError, ApiResult};
use super::json::{Amount, JsonBody, Number};
use super::order_keys::OrderKeys;
use super::state::{AppState, OrderDetails};
use super::views::{program_named, program_of, ProgramJson, ISSUER_CLIENT_ID, PROGRAMS};

/// The issuer BIN of cards generated for orders.
pub const ORDER_BIN: &str = "400010";
/// Digits of a generated PAN: BIN, account number, check digit.
pub const ORDER_PAN_LEN: usize = 16;
/// Fresh PANs tried before giving up when the generated ones are taken.
pub const PAN_ATTEMPTS_MAX: usize = 8;
/// Years a generated card is valid for.
pub const CARD_VALIDITY_YEARS: u16 = 3;
/// The reference's bound on the embossed name.
pub const EMBOSSED_NAME_MAX: usize = 22;
/// A bound on free-text fields.
pub const TEXT_FIELD_MAX: usize = 200;
/// Page size of order lists when none is given.
pub const ORDER_PAGE_SIZE_DEFAULT: u64 = 10;
/// The header carrying the idempotency key.
pub const IDEMPOTENCE_HEADER: &str = "X-idempotence-uuid";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderBody {
    pub program: String,
    pub card_holder_name: String,
    pub embossed_name: Option<String>,
    pub phone_number: Option<String>,
    pub address: serde_json::Map<String, serde_json::Value>,
    pub delivery_option: Option<DeliveryOption>,
    pub lifetime_limit: Option<Amount>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryOption {
    PostalServiceStandard,
    PostalServiceWithTracking,
    KioskCollection,
}

/// The reference's `CardOrder`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardOrderJson {
    pub id: CardOrderId,
    pub profile_id: ProfileId,
    pub client_id: &'static str,
    pub card_program: ProgramJson,
    pub address: Option<serde_json::Value>,
    pub card_token: CardToken,
    pub replacement_details: Option<serde_json::Value>,
    pub card_type: &'static str,
    pub status: &'static str,
    pub card_holder_name: Option<String>,
    pub phone_number: Option<String>,
    pub lifetime_limit: Option<Number>,
    pub delivery_option: Option<String>,
    pub creation_time: String,
    pub modification_time: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardOrderList {
    pub total_count: usize,
    pub card_orders: Vec<CardOrderJson>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    pub card_programs: Vec<ProgramJson>,
}

/// The order id of a card: the token's last 48 bits, with bit 48 set so it is never 0 and
/// stays exact in a JSON double.
pub fn order_id(token: CardToken) -> CardOrderId {
    CardOrderId(((token.0 & 0xFFFF_FFFF_FFFF) as u64) | (1 << 48))
}

fn order_json(card: &Card, details: OrderDetails) -> CardOrderJson {
    let program = program_of(card.card_type);
    CardOrderJson {
        id: order_id(card.token),
        profile_id: card.profile,
        client_id: ISSUER_CLIENT_ID,
        card_program: ProgramJson::of(program, card.currency),
        address: details.address,
        card_token: card.token,
        replacement_details: None,
        card_type: match card.card_type {
            CardType::Virtual => "VIRTUAL",
            CardType::Physical => "PHYSICAL",
        },
        status: match card.status {
            CardStatus::Inactive => "CARD_DETAILS_CREATED",
            _ => "COMPLETED",
        },
        card_holder_name: details.card_holder_name,
        phone_number: details.phone_number,
        lifetime_limit: details.lifetime_limit.map(Number),
        delivery_option: details.delivery_option,
        creation_time: card.issued.to_rfc3339(),
        modification_time: card.modified.to_rfc3339(),
    }
}

pub async fn availability(_at: ProfileAt) -> Json<Availability> {
    let card_programs = PROGRAMS
        .iter()
        .map(|p| ProgramJson::of(*p, p.default_currency))
        .collect();
    Json(Availability { card_programs })
}

pub async fn list(
    State(state): State<AppState>,
    at: ProfileAt,
    query: QueryMap,
) -> ApiResult<Json<CardOrderList>> {
    let (skip, take) = page(&query, ORDER_PAGE_SIZE_DEFAULT)?;
    let profile = at.profile;
    let cards = state.engine(move |e| e.cards(profile)).await?;
    let card_orders = cards
        .iter()
        .skip(skip)
        .take(take)
        .map(|card| order_json(card, state.orders(|o| o.details(card.token))))
        .collect();
    Ok(Json(CardOrderList {
        total_count: cards.len(),
        card_orders,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    at: ProfileAt,
    PathParams(params): PathParams,
) -> ApiResult<Json<CardOrderJson>> {
    let id = CardOrderId(super::access::id_param(&params, "cardOrderId")?);
    let profile = at.profile;
    let cards = state.engine(move |e| e.cards(profile)).await?;
    let card = cards
        .iter()
        .find(|c| order_id(c.token) == id)
        .ok_or_else(|| ApiError::not_found("cardOrderId", format!("card order {id} not found")))?;
    Ok(Json(order_json(
        card,
        state.orders(|o| o.details(card.token)),
    )))
}

/// What a valid order body asks for.
#[derive(Debug)]
struct Order {
    program: super::views::Program,
    lifetime_limit: Option<Money>,
    details: OrderDetails,
}

fn validate(body: OrderBody) -> ApiResult<Order> {
    let program = program_named(&body.program)
        .ok_or_else(|| ApiError::invalid("program", "unknown card program"))?;
    text_field("cardHolderName", &body.card_holder_name, TEXT_FIELD_MAX)?;
    if let Some(name) = &body.embossed_name {
        text_field("embossedName", name, EMBOSSED_NAME_MAX)?;
    }
    if let Some(phone) = &body.phone_number {
        let digits = phone.strip_prefix('+').unwrap_or("");
        if !(4..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "phoneNumber",
                "expected + and the country code",
            ));
        }
    }
    let lifetime_limit = body
        .lifetime_limit
        .map(|a| a.to_money("lifetimeLimit", program.default_currency))
        .transpose()?;
    let delivery_option = body
        .delivery_option
        .map(|d| {
            serde_json::to_value(d)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        })
        .unwrap_or_default();
    Ok(Order {
        program,
        lifetime_limit,
        details: OrderDetails {
            card_holder_name: Some(body.card_holder_name),
            phone_number: body.phone_number,
            address: Some(serde_json::Value::Object(body.address)),
            delivery_option,
            lifetime_limit: lifetime_limit.map(Money::to_decimal),
        },
    })
}

fn text_field(field: &str, text: &str, max: usize) -> ApiResult<()> {
    if text.trim().is_empty() || text.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("expected 1 to {max} characters"),
        ));
    }
    Ok(())
}

/// The idempotency key: a UUID, as a number.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<u128> {
    let value = headers
        .get(IDEMPOTENCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::invalid(IDEMPOTENCE_HEADER, "required header"))?;
    CardToken::parse(value)
        .map(|uuid| uuid.0)
        .map_err(|_| ApiError::invalid(IDEMPOTENCE_HEADER, "expected a UUID"))
}

/// `POST .../card-orders`. A repeated idempotency key answers with the first order.
pub async fn create(
    State(state): State<AppState>,
    at: ProfileAt,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OrderBody>,
) -> ApiResult<(StatusCode, Json<CardOrderJson>)> {
    let key = idempotency_key(&headers)?;
    let order = validate(body)?;
    let profile = at.profile;
    let (program, limit) = (order.program, order.lifetime_limit);
    let card = state
        .run_order(move |engine, keys| card_for_order(engine, keys, profile, key, program, limit))
        .await?;
    // A retry shows the first order's details; after a restart, which forgot them, its own.
    let details = state.orders(|o| {
        if !o.has_details(card.token) {
            o.remember(card.token, order.details);
        }
        o.details(card.token)
    });
    Ok((StatusCode::OK, Json(order_json(&card, details))))
}

/// The card of the order with `key`: the one already issued for it, or a new one.
fn card_for_order(
    engine: &Engine,
    keys: &mut OrderKeys,
    profile: ProfileId,
    key: u128,
    program: super::views::Program,
    lifetime_limit: Option<Money>,
) -> ApiResult<Card> {
    engine.profile(profile)?;
    if let Some(fingerprint) = keys.get(profile, key) {
        let issued = engine.cards(profile)?;
        if let Some(card) = issued.into_iter().find(|c| c.fingerprint == fingerprint) {
            return Ok(card);
        }
        // Recorded, but the first attempt stopped before the card was issued: issue now.
    }
    issue_for_order(engine, keys, profile, key, program, lifetime_limit)
}

/// Issues a card with a fresh PAN, recording the key with the PAN's fingerprint first.
fn issue_for_order(
    engine: &Engine,
    keys: &mut OrderKeys,
    profile: ProfileId,
    key: u128,
    program: super::views::Program,
    lifetime_limit: Option<Money>,
) -> ApiResult<Card> {
    let today = engine.now().to_datetime();
    let expiry = Expiry::new(
        today.year() as u16 + CARD_VALIDITY_YEARS,
        today.month() as u8,
    )
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let mut last_error = None;
    for _ in 0..PAN_ATTEMPTS_MAX {
        let pan = fresh_pan()?;
        let fingerprint = pan.fingerprint(&engine.config().pan_key);
        if engine.owner_of_pan(fingerprint).is_some() {
            last_error = Some("a card with this PAN already exists".to_owned());
            continue;
        }
        keys.record(profile, key, fingerprint).map_err(|e| {
            ApiError::unavailable(format!("the idempotency key cannot be recorded: {e}"))
        })?;
        let issue = IssueCard {
            profile,
            pan,
            pin: None,
            cvv2: None,
            expiry,
            status: match program.card_type {
                CardType::Virtual => CardStatus::Active,
                CardType::Physical => CardStatus::Inactive,
            },
            currency: program.default_currency,
            card_type: program.card_type,
            smart_conversion: true,
            locked: Vec::new(),
        };
        match engine.issue_card(issue) {
            Ok(card) => return with_lifetime_limit(engine, card, lifetime_limit),
            // The generated PAN was taken meanwhile: draw another.
            Err(EngineError::Conflict(message)) => last_error = Some(message),
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::unavailable(format!(
        "no free card number after {PAN_ATTEMPTS_MAX} attempts: {}",
        last_error.unwrap_or_default()
    )))
}

fn with_lifetime_limit(engine: &Engine, card: Card, limit: Option<Money>) -> ApiResult<Card> {
    let Some(limit) = limit else {
        return Ok(card);
    };
    let change = vec![(Granularity::Lifetime, LimitChange::Set(limit.amount_minor))];
    engine.update_card_limits(card.profile, card.token, limit.currency, change)?;
    Ok(engine.card(card.profile, card.token)?)
}

/// A random PAN under [`ORDER_BIN`] with a valid Luhn check digit.
fn fresh_pan() -> ApiResult<Pan> {
    let mut rng = rand::thread_rng();
    let mut digits = Vec::with_capacity(ORDER_PAN_LEN);
    digits.extend_from_slice(ORDER_BIN.as_bytes());
    while digits.len() < ORDER_PAN_LEN - 1 {
        digits.push(b'0' + rng.gen_range(0..10u8));
    }
    digits.push(luhn_check_digit(&digits));
    Pan::from_ascii(&digits).map_err(|e| ApiError::unavailable(format!("card number: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_pans_are_valid_and_under_the_bin() {
        for _ in 0..100 {
            let pan = fresh_pan().unwrap();
            assert_eq!(pan.len(), ORDER_PAN_LEN);
            assert!(pan.expose_digits().starts_with(ORDER_BIN));
            assert!(Pan::parse(pan.expose_digits()).is_ok());
        }
    }

    #[test]
    fn order_ids_are_positive_and_exact_in_json() {
        for token in [
            0u128,
            1,
            u128::MAX,
            0xca0c_8154_1e14_4464_a1ce_dcea_7dc3_de52,
        ] {
            let id = order_id(CardToken(token)).0;
            assert!(id > 0);
            assert!(id < (1 << 53));
        }
    }
}
