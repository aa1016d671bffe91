//! Sandbox endpoints (`--sandbox` only, operator token only): what a scenario run needs
//! that the reference has no endpoint for. Reset, the clock, FX rates, profiles, issuing a
//! card as the issuer holds it (with its PAN, PIN and CVV2, which are never echoed), setting
//! any card status, limit usage, PIN tries, the invariant check, the state hash, and any
//! transaction by id.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cardcore_authz::management::IssueCard;
use cardcore_authz::{Card, Engine, Profile};
use cardcore_core::{
    CardStatus, CardToken, CardType, Channel, Currency, Expiry, Granularity, LimitType, Money,
    Permissions, ProfileId, ProfileStatus, TimeZone, Timestamp, TxnId,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::access::{id_param, CardAt, Operator, PathParams, ProfileAt, QueryMap};
use super::error::{ApiError, ApiResult};
use super::json::{parse_body, Amount, AmountOut, JsonBody, Number, SecretDigits};
use super::simulation::{check_cvv2, parse_pan, parse_pin};
use super::state::AppState;
use super::views::{current_amount, expiry_date, PermissionsJson, TransactionJson};

#[derive(Debug, Serialize)]
pub struct ClockJson {
    pub now: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// Where the clock starts (RFC 3339); the sandbox epoch when absent.
    pub now: Option<String>,
}

fn parse_time(field: &str, text: &str) -> ApiResult<Timestamp> {
    Timestamp::parse_rfc3339(text)
        .ok_or_else(|| ApiError::invalid(field, "expected an RFC 3339 date-time"))
}

fn clock_of(state: &AppState) -> ApiResult<&cardcore_core::ManualClock> {
    state
        .service()
        .manual_clock()
        .ok_or_else(|| ApiError::unavailable("the clock is not settable outside sandbox mode"))
}

/// `POST /v1/sandbox/reset`: an empty engine; the body (optional) may set the clock.
pub async fn reset(
    State(state): State<AppState>,
    _op: Operator,
    body: Bytes,
) -> ApiResult<Json<ClockJson>> {
    let body: ResetBody = if body.iter().all(u8::is_ascii_whitespace) {
        ResetBody::default()
    } else {
        parse_body(&body)?
    };
    let now = body
        .now
        .as_deref()
        .map(|t| parse_time("now", t))
        .transpose()?;
    state
        .service()
        .reset()
        .await
        .map_err(|e| ApiError::unavailable(format!("reset failed: {e}")))?;
    state.orders(|o| o.clear());
    if let Some(now) = now {
        clock_of(&state)?.set(now);
    }
    Ok(Json(ClockJson {
        now: state.service().clock().now().to_rfc3339(),
    }))
}

pub async fn clock_get(State(state): State<AppState>, _op: Operator) -> Json<ClockJson> {
    Json(ClockJson {
        now: state.service().clock().now().to_rfc3339(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSet {
    pub now: String,
}

/// `PUT /v1/sandbox/clock`: sets the engine clock, then releases holds that are now due.
pub async fn clock_set(
    State(state): State<AppState>,
    _op: Operator,
    JsonBody(body): JsonBody<ClockSet>,
) -> ApiResult<Json<ClockJson>> {
    let now = parse_time("now", &body.now)?;
    clock_of(&state)?.set(now);
    after_clock_move(&state).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClockAdvance {
    pub by_ms: i64,
}

/// `POST /v1/sandbox/clock/advance`: moves the clock forward by `byMs` (not negative).
pub async fn clock_advance(
    State(state): State<AppState>,
    _op: Operator,
    JsonBody(body): JsonBody<ClockAdvance>,
) -> ApiResult<Json<ClockJson>> {
    if body.by_ms < 0 {
        return Err(ApiError::invalid("byMs", "must not be negative"));
    }
    clock_of(&state)?.advance_ms(body.by_ms);
    after_clock_move(&state).await
}

async fn after_clock_move(state: &AppState) -> ApiResult<Json<ClockJson>> {
    state.engine(|e| e.expire_holds()).await?;
    Ok(Json(ClockJson {
        now: state.service().clock().now().to_rfc3339(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FxRateBody {
    pub from: Currency,
    pub to: Currency,
    pub rate: Amount,
    pub fee_percent: Option<Amount>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FxRateJson {
    pub from: Currency,
    pub to: Currency,
    pub rate: Number,
    pub fee_percent: Number,
    /// Derived from the opposite rate, not set itself.
    pub implied: bool,
}

/// `PUT /v1/sandbox/fx-rates`: 1 `from` = `rate` `to`, with `feePercent` on conversions.
pub async fn fx_set(
    State(state): State<AppState>,
    _op: Operator,
    JsonBody(body): JsonBody<FxRateBody>,
) -> ApiResult<Json<Vec<FxRateJson>>> {
    let fee = body.fee_percent.map_or(Decimal::ZERO, |f| f.0);
    let (from, to, rate) = (body.from, body.to, body.rate.0);
    state
        .run(move |e| {
            e.set_fx_rate(from, to, rate, fee)
                .map_err(|err| fx_field(err.into()))?;
            Ok(rates_of(e))
        })
        .await
        .map(Json)
}

fn fx_field(mut e: ApiError) -> ApiError {
    if e.field.as_deref() == Some("fee_percent") {
        e.field = Some("feePercent".into());
    }
    e
}

pub async fn fx_list(
    State(state): State<AppState>,
    _op: Operator,
) -> ApiResult<Json<Vec<FxRateJson>>> {
    state.run(|e| Ok(rates_of(e))).await.map(Json)
}

fn rates_of(engine: &Engine) -> Vec<FxRateJson> {
    engine
        .app()
        .fx
        .iter()
        .map(|((from, to), rate)| FxRateJson {
            from: *from,
            to: *to,
            rate: Number(rate.rate),
            fee_percent: Number(rate.fee_percent),
            implied: rate.implied,
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileBody {
    pub id: Option<u64>,
    pub status: Option<ProfileStatus>,
    pub time_zone: Option<TimeZone>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileJson {
    pub id: ProfileId,
    pub status: ProfileStatus,
    pub time_zone: TimeZone,
    pub creation_time: String,
}

impl ProfileJson {
    fn of(p: &Profile) -> ProfileJson {
        ProfileJson {
            id: p.id,
            status: p.status,
            time_zone: p.time_zone,
            creation_time: p.created.to_rfc3339(),
        }
    }
}

/// `POST /v1/sandbox/profiles`: a profile with the given (or a new) id.
pub async fn profile_create(
    State(state): State<AppState>,
    _op: Operator,
    JsonBody(body): JsonBody<ProfileBody>,
) -> ApiResult<(StatusCode, Json<ProfileJson>)> {
    if body.id == Some(0) {
        return Err(ApiError::invalid("id", "must be positive"));
    }
    let status = body.status.unwrap_or(ProfileStatus::Active);
    let zone = body.time_zone.unwrap_or_default();
    let id = body.id.map(ProfileId);
    let profile = state
        .run(move |e| {
            let id = e.create_profile(id, status, zone)?;
            Ok(e.profile(id)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(ProfileJson::of(&profile))))
}

pub async fn profile_get(
    State(state): State<AppState>,
    _op: Operator,
    at: ProfileAt,
) -> ApiResult<Json<ProfileJson>> {
    let id = at.profile;
    let profile = state.engine(move |e| e.profile(id)).await?;
    Ok(Json(ProfileJson::of(&profile)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfilePatch {
    pub status: Option<ProfileStatus>,
    pub time_zone: Option<TimeZone>,
}

/// `PATCH /v1/sandbox/profiles/{profileId}`: changes what is given.
pub async fn profile_patch(
    State(state): State<AppState>,
    _op: Operator,
    at: ProfileAt,
    JsonBody(body): JsonBody<ProfilePatch>,
) -> ApiResult<Json<ProfileJson>> {
    let id = at.profile;
    let profile = state
        .engine(move |e| e.update_profile(id, body.status, body.time_zone))
        .await?;
    Ok(Json(ProfileJson::of(&profile)))
}

/// A card as the issuer holds it. `pan`, `pin` and `cvv2` are read, used and dropped:
/// never stored in clear, logged or answered.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardBody {
    pub pan: SecretDigits,
    pub pin: Option<SecretDigits>,
    pub cvv2: Option<SecretDigits>,
    /// `YYYY-MM`; may be in the past.
    pub expiry: String,
    #[serde(default = "active")]
    pub status: CardStatus,
    /// The profile's first balance currency (EUR without one) when absent.
    pub currency: Option<Currency>,
    #[serde(rename = "type", default = "virtual_card")]
    pub card_type: CardType,
    #[serde(default = "yes")]
    pub smart_conversion: bool,
    #[serde(default)]
    pub locked: Vec<Channel>,
}

fn active() -> CardStatus {
    CardStatus::Active
}

fn virtual_card() -> CardType {
    CardType::Virtual
}

fn yes() -> bool {
    true
}

/// A card with what the sandbox may read: status, PIN tries, permissions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxCardJson {
    pub token: CardToken,
    pub profile_id: ProfileId,
    pub masked_pan: String,
    pub status: CardStatus,
    pub expiry: String,
    pub expiry_date: String,
    pub currency: Currency,
    #[serde(rename = "type")]
    pub card_type: CardType,
    pub smart_conversion: bool,
    pub pin_tries: u8,
    pub permissions: Vec<super::views::PermissionJson>,
    pub creation_time: String,
}

impl SandboxCardJson {
    fn of(card: &Card) -> SandboxCardJson {
        SandboxCardJson {
            token: card.token,
            profile_id: card.profile,
            masked_pan: card.masked_pan.to_string(),
            status: card.status,
            expiry: format!("{:04}-{:02}", card.expiry.year, card.expiry.month),
            expiry_date: expiry_date(card.expiry),
            currency: card.currency,
            card_type: card.card_type,
            smart_conversion: card.smart_conversion,
            pin_tries: card.pin_tries,
            permissions: permissions_of(card.permissions),
            creation_time: card.issued.to_rfc3339(),
        }
    }
}

fn permissions_of(p: Permissions) -> Vec<super::views::PermissionJson> {
    PermissionsJson::of(p).permissions
}

/// `POST /v1/sandbox/profiles/{profileId}/cards`.
pub async fn card_issue(
    State(state): State<AppState>,
    _op: Operator,
    at: ProfileAt,
    JsonBody(body): JsonBody<CardBody>,
) -> ApiResult<(StatusCode, Json<SandboxCardJson>)> {
    let pan = parse_pan(&body.pan, "pan")?;
    let pin = parse_pin(body.pin.as_ref())?;
    let cvv2 = check_cvv2(body.cvv2)?;
    let expiry =
        Expiry::parse(&body.expiry).map_err(|_| ApiError::invalid("expiry", "expected YYYY-MM"))?;
    let profile = at.profile;
    let card = state
        .run(move |e| {
            let currency = match body.currency {
                Some(c) => c,
                None => e
                    .balances(profile)?
                    .first()
                    .map_or(Currency::EUR, |b| b.currency),
            };
            let issue = IssueCard {
                profile,
                pan,
                pin,
                cvv2: cvv2.map(|c| c.expose().to_owned()),
                expiry,
                status: body.status,
                currency,
                card_type: body.card_type,
                smart_conversion: body.smart_conversion,
                locked: body.locked,
            };
            Ok(e.issue_card(issue)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(SandboxCardJson::of(&card))))
}

pub async fn card_get(
    State(state): State<AppState>,
    _op: Operator,
    at: CardAt,
) -> ApiResult<Json<SandboxCardJson>> {
    let (profile, token) = (at.profile, at.token);
    let card = state.engine(move |e| e.card(profile, token)).await?;
    Ok(Json(SandboxCardJson::of(&card)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceStatus {
    pub status: CardStatus,
}

/// `PUT /v1/sandbox/profiles/{profileId}/cards/{cardToken}/status`: any of the seven
/// statuses, past the status API's rules (the issuer's own systems).
pub async fn card_force_status(
    State(state): State<AppState>,
    _op: Operator,
    at: CardAt,
    JsonBody(body): JsonBody<ForceStatus>,
) -> ApiResult<Json<SandboxCardJson>> {
    let (profile, token, status) = (at.profile, at.token, body.status);
    let card = state
        .run(move |e| {
            e.card(profile, token)?;
            e.force_card_status(token, status)?;
            Ok(e.card(profile, token)?)
        })
        .await?;
    Ok(Json(SandboxCardJson::of(&card)))
}

#[derive(Debug, Serialize)]
pub struct UsageJson {
    pub window: Granularity,
    pub usage: AmountOut,
}

fn window_param(query: &QueryMap) -> ApiResult<Granularity> {
    let text = query.required("window")?;
    Granularity::parse(text).ok_or_else(|| {
        ApiError::invalid("window", "expected transaction, daily, monthly or lifetime")
    })
}

/// `GET .../cards/{cardToken}/limit-usage?window=daily`.
pub async fn card_usage(
    State(state): State<AppState>,
    _op: Operator,
    at: CardAt,
    query: QueryMap,
) -> ApiResult<Json<UsageJson>> {
    let window = window_param(&query)?;
    let (profile, token) = (at.profile, at.token);
    let usage = state
        .engine(move |e| e.card_usage(profile, token, window))
        .await?;
    Ok(Json(UsageJson {
        window,
        usage: usage.into(),
    }))
}

/// `GET /v1/sandbox/profiles/{profileId}/limit-usage?type=PURCHASE&window=daily`.
pub async fn profile_usage(
    State(state): State<AppState>,
    _op: Operator,
    at: ProfileAt,
    query: QueryMap,
) -> ApiResult<Json<UsageJson>> {
    let window = window_param(&query)?;
    let limit_type = LimitType::parse(query.required("type")?)
        .ok_or_else(|| ApiError::invalid("type", "expected PURCHASE or ATM_WITHDRAWAL"))?;
    let profile = at.profile;
    let usage = state
        .engine(move |e| e.profile_usage(profile, limit_type, window))
        .await?;
    Ok(Json(UsageJson {
        window,
        usage: usage.into(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    pub amount: Amount,
    pub currency: Currency,
}

/// `POST /v1/sandbox/profiles/{profileId}/top-up`: opens the STANDARD balance in the
/// currency if missing, then credits `amount` (zero only opens it).
pub async fn top_up(
    State(state): State<AppState>,
    _op: Operator,
    at: ProfileAt,
    JsonBody(body): JsonBody<TopUpBody>,
) -> ApiResult<Json<super::views::BalanceJson>> {
    let amount = body.amount.to_money("amount", body.currency)?;
    let profile = at.profile;
    let view = state
        .engine(move |e| {
            if amount.is_zero() {
                e.open_balance(profile, amount.currency)
            } else {
                e.top_up(profile, amount)
            }
        })
        .await?;
    Ok(Json(super::views::BalanceJson::of(&view)))
}

#[derive(Debug, Serialize)]
pub struct InvariantsJson {
    pub ok: bool,
    pub violations: Vec<String>,
}

pub async fn invariants(
    State(state): State<AppState>,
    _op: Operator,
) -> ApiResult<Json<InvariantsJson>> {
    let violations = state.engine(|e| e.invariant_violations()).await?;
    Ok(Json(InvariantsJson {
        ok: violations.is_empty(),
        violations,
    }))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateHashJson {
    pub state_hash: String,
}

pub async fn state_hash(
    State(state): State<AppState>,
    _op: Operator,
) -> ApiResult<Json<StateHashJson>> {
    let hash = state.engine(|e| e.state_hash()).await?;
    let state_hash = hash.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Json(StateHashJson { state_hash }))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxTransactionJson {
    pub profile_id: ProfileId,
    /// What the transaction stands at: cleared, authorised, or asked for (by state).
    pub amount: AmountOut,
    pub requested_amount: AmountOut,
    #[serde(flatten)]
    pub transaction: TransactionJson,
}

/// `GET /v1/sandbox/transactions/{transactionId}`: any profile's transaction.
pub async fn transaction(
    State(state): State<AppState>,
    _op: Operator,
    PathParams(params): PathParams,
) -> ApiResult<Json<SandboxTransactionJson>> {
    let id = TxnId(id_param(&params, "transactionId")?);
    let (record, money) = state.engine(move |e| e.transaction_any(id)).await?;
    let amount: Money = current_amount(&record);
    Ok(Json(SandboxTransactionJson {
        profile_id: record.profile,
        amount: amount.into(),
        requested_amount: record.requested.into(),
        transaction: TransactionJson::of(&record, Some(&money)),
    }))
}
