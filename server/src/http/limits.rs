//! Spend limits: a profile's `PURCHASE` and `ATM_WITHDRAWAL` limits, and a card's
//! transaction, daily, monthly and lifetime limits.

use axum::extract::State;
use axum::Json;
use cardcore_authz::management::LimitChange;
use cardcore_core::{Currency, Granularity, LimitType, Money};
use serde::Deserialize;

use super::access::{param, CardAt, PathParams, ProfileAt};
use super::error::{ApiError, ApiResult};
use super::json::{AmountIn, JsonBody};
use super::state::AppState;
use super::views::{CardLimitsJson, ProfileLimitsJson};

pub async fn profile_get(
    State(state): State<AppState>,
    at: ProfileAt,
) -> ApiResult<Json<ProfileLimitsJson>> {
    let profile = at.profile;
    let limits = state.engine(move |e| e.profile_limits(profile)).await?;
    Ok(Json(ProfileLimitsJson::of(&limits)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileLimitBody {
    #[serde(rename = "type")]
    pub limit_type: LimitType,
    pub aggregate_window: AggregateWindowIn,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateWindowIn {
    pub daily: WindowIn,
    pub monthly: WindowIn,
}

/// One window of a `PATCH`: its value and, for the operator only, its maximum.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowIn {
    pub value: AmountIn,
    pub max: Option<AmountIn>,
}

/// `PATCH` profile limits: both daily and monthly, in one currency, within their maxima.
/// Maxima can be changed by the operator token only.
pub async fn profile_patch(
    State(state): State<AppState>,
    at: ProfileAt,
    JsonBody(body): JsonBody<ProfileLimitBody>,
) -> ApiResult<Json<ProfileLimitsJson>> {
    let window = &body.aggregate_window;
    let daily = window.daily.value.to_money("aggregateWindow.daily.value")?;
    let monthly = window
        .monthly
        .value
        .to_money("aggregateWindow.monthly.value")?;
    if monthly.currency != daily.currency {
        return Err(ApiError::invalid(
            "aggregateWindow.monthly.value.currency",
            "daily and monthly must be in one currency",
        ));
    }
    let max_daily = window_max(&window.daily, "daily", daily.currency)?;
    let max_monthly = window_max(&window.monthly, "monthly", daily.currency)?;
    if (max_daily.is_some() || max_monthly.is_some()) && !at.caller.is_operator() {
        return Err(ApiError::forbidden(
            "only the operator may change limit maxima",
        ));
    }
    let (profile, limit_type) = (at.profile, body.limit_type);
    let limits = state
        .run(move |e| {
            // A maximum not given keeps the current one; the engine resolves it.
            let max = (
                max_daily.map(|m| m.amount_minor),
                max_monthly.map(|m| m.amount_minor),
            );
            e.update_profile_limit(profile, limit_type, daily, monthly, max)?;
            Ok(e.profile_limits(profile)?)
        })
        .await?;
    Ok(Json(ProfileLimitsJson::of(&limits)))
}

fn window_max(window: &WindowIn, name: &str, currency: Currency) -> ApiResult<Option<Money>> {
    let Some(max) = &window.max else {
        return Ok(None);
    };
    let field = format!("aggregateWindow.{name}.max");
    let money = max.to_money(&field)?;
    if money.currency != currency {
        return Err(ApiError::invalid(
            format!("{field}.currency"),
            "must be the currency of the limit",
        ));
    }
    Ok(Some(money))
}

pub async fn card_get(
    State(state): State<AppState>,
    at: CardAt,
) -> ApiResult<Json<CardLimitsJson>> {
    let (profile, token) = (at.profile, at.token);
    let reports = state.engine(move |e| e.card_limits(profile, token)).await?;
    Ok(Json(CardLimitsJson::of(&reports)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardLimitsBody {
    pub transaction: Option<CardWindowIn>,
    pub daily: Option<CardWindowIn>,
    pub monthly: Option<CardWindowIn>,
    pub lifetime: Option<CardWindowIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardWindowIn {
    pub value: AmountIn,
}

/// `PATCH` card limits: creates or updates the granularities given, all in one currency,
/// and keeps the others.
pub async fn card_patch(
    State(state): State<AppState>,
    at: CardAt,
    JsonBody(body): JsonBody<CardLimitsBody>,
) -> ApiResult<Json<CardLimitsJson>> {
    let given = [
        (Granularity::Transaction, "transaction", &body.transaction),
        (Granularity::Daily, "daily", &body.daily),
        (Granularity::Monthly, "monthly", &body.monthly),
        (Granularity::Lifetime, "lifetime", &body.lifetime),
    ];
    let mut currency = None;
    let mut changes = Vec::with_capacity(given.len());
    for (granularity, name, window) in given {
        let Some(window) = window else { continue };
        let money = window.value.to_money(&format!("{name}.value"))?;
        if *currency.get_or_insert(money.currency) != money.currency {
            return Err(ApiError::invalid(
                format!("{name}.value.currency"),
                "all limits must be in one currency",
            ));
        }
        changes.push((granularity, LimitChange::Set(money.amount_minor)));
    }
    let currency =
        currency.ok_or_else(|| ApiError::invalid("transaction", "give at least one limit"))?;
    let (profile, token) = (at.profile, at.token);
    let reports = state
        .run(move |e| {
            e.update_card_limits(profile, token, currency, changes)?;
            Ok(e.card_limits(profile, token)?)
        })
        .await?;
    Ok(Json(CardLimitsJson::of(&reports)))
}

/// `DELETE .../spend-limits/{granularity}` (lower case, as in the reference).
pub async fn card_delete(
    State(state): State<AppState>,
    at: CardAt,
    PathParams(params): PathParams,
) -> ApiResult<Json<CardLimitsJson>> {
    let text = param(&params, "granularity")?;
    let granularity = Granularity::ALL
        .into_iter()
        .find(|g| g.as_str().to_ascii_lowercase() == text)
        .ok_or_else(|| {
            ApiError::invalid(
                "granularity",
                "expected transaction, daily, monthly or lifetime",
            )
        })?;
    let (profile, token) = (at.profile, at.token);
    let reports = state
        .run(move |e| {
            let card = e.card(profile, token)?;
            let currency = card.limits.map_or(card.currency, |l| l.currency);
            let change = vec![(granularity, LimitChange::Remove)];
            e.update_card_limits(profile, token, currency, change)?;
            Ok(e.card_limits(profile, token)?)
        })
        .await?;
    Ok(Json(CardLimitsJson::of(&reports)))
}
