//! Balances (create, list, get) and the simulated balance top-up.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use cardcore_core::{BalanceId, Currency, ProfileId};
use serde::{Deserialize, Serialize};

use super::access::{id_param, Authed, PathParams, ProfileAt, QueryMap};
use super::error::{ApiError, ApiResult};
use super::json::{Amount, JsonBody, Number};
use super::state::AppState;
use super::views::BalanceJson;

/// The header the reference requires on balance creation.
pub const IDEMPOTENCE_HEADER: &str = "X-idempotence-uuid";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BalanceType {
    Standard,
    Savings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub currency: Currency,
    #[serde(rename = "type")]
    pub kind: BalanceType,
    pub name: Option<String>,
}

/// `POST /v4/profiles/{profileId}/balances`: opens the STANDARD balance in a currency (201).
/// There is one per currency: asking again answers the existing balance (200), which also
/// makes a retry with the same idempotency key safe.
pub async fn create(
    State(state): State<AppState>,
    at: ProfileAt,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<BalanceJson>)> {
    let key = headers
        .get(IDEMPOTENCE_HEADER)
        .ok_or_else(|| ApiError::invalid(IDEMPOTENCE_HEADER, "required header"))?;
    let valid_key = key
        .to_str()
        .ok()
        .is_some_and(|k| cardcore_core::CardToken::parse(k).is_ok());
    if !valid_key {
        return Err(ApiError::invalid(IDEMPOTENCE_HEADER, "expected a UUID"));
    }
    if body.kind == BalanceType::Savings {
        return Err(ApiError::invalid(
            "type",
            "only STANDARD balances are supported",
        ));
    }
    let (profile, currency) = (at.profile, body.currency);
    let (existed, view) = state
        .run(move |e| {
            let existed = e.balances(profile)?.iter().any(|b| b.currency == currency);
            Ok((existed, e.open_balance(profile, currency)?))
        })
        .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(BalanceJson::of(&view))))
}

/// `GET /v4/profiles/{profileId}/balances?types=STANDARD`.
pub async fn list(
    State(state): State<AppState>,
    at: ProfileAt,
    query: QueryMap,
) -> ApiResult<Json<Vec<BalanceJson>>> {
    let types = query.required("types")?;
    let mut standard = false;
    for kind in types.split(',') {
        match kind.trim() {
            "STANDARD" => standard = true,
            "SAVINGS" => {}
            _ => {
                return Err(ApiError::invalid(
                    "types",
                    "expected STANDARD and/or SAVINGS, comma-separated",
                ))
            }
        }
    }
    let profile = at.profile;
    let views = state.engine(move |e| e.balances(profile)).await?;
    let shown = if standard { views } else { Vec::new() };
    Ok(Json(shown.iter().map(BalanceJson::of).collect()))
}

pub async fn get(
    State(state): State<AppState>,
    at: ProfileAt,
    PathParams(params): PathParams,
) -> ApiResult<Json<BalanceJson>> {
    let id = BalanceId(id_param(&params, "balanceId")?);
    let profile = at.profile;
    let views = state.engine(move |e| e.balances(profile)).await?;
    let view = views
        .iter()
        .find(|b| b.id == id)
        .ok_or_else(|| ApiError::not_found("balanceId", format!("balance {id} not found")))?;
    Ok(Json(BalanceJson::of(view)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopUpBody {
    pub profile_id: u64,
    pub balance_id: u64,
    pub currency: Currency,
    pub amount: Amount,
    pub channel: Option<TopUpChannel>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TopUpChannel {
    Transfer,
    Card,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopUpResult {
    pub state: &'static str,
    pub balances_after: Vec<BalanceAfter>,
}

#[derive(Debug, Serialize)]
pub struct BalanceAfter {
    pub id: u64,
    pub value: Number,
    pub currency: Currency,
}

/// `POST /v1/simulation/balance/topup`: credits a balance of the caller's profile.
pub async fn top_up(
    State(state): State<AppState>,
    Authed(caller): Authed,
    JsonBody(body): JsonBody<TopUpBody>,
) -> ApiResult<Json<TopUpResult>> {
    let profile = ProfileId(body.profile_id);
    caller.reach_profile(profile)?;
    let amount = body.amount.to_money("amount", body.currency)?;
    if amount.is_zero() {
        return Err(ApiError::invalid("amount", "must be positive"));
    }
    let balance_id = BalanceId(body.balance_id);
    let view = state
        .run(move |e| {
            let balances = e.balances(profile)?;
            let balance = balances
                .iter()
                .find(|b| b.id == balance_id)
                .ok_or_else(|| {
                    ApiError::not_found("balanceId", format!("balance {balance_id} not found"))
                })?;
            if balance.currency != amount.currency {
                return Err(ApiError::invalid(
                    "currency",
                    format!("the balance is in {}", balance.currency),
                ));
            }
            Ok(e.top_up(profile, amount)?)
        })
        .await?;
    Ok(Json(TopUpResult {
        state: "COMPLETED",
        balances_after: vec![BalanceAfter {
            id: view.id.0,
            value: Number(view.available.to_decimal()),
            currency: view.currency,
        }],
    }))
}
