//! Cards: list, get, status, PIN counter reset, spending permissions.

use axum::extract::State;
use axum::Json;
use cardcore_core::{CardStatus, Channel};
use serde::{Deserialize, Serialize};

use super::access::{CardAt, ProfileAt, QueryMap};
use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use super::state::AppState;
use super::views::{CardJson, PermissionsJson};

/// Page sizes the reference allows for card lists.
pub const CARD_PAGE_SIZE_MIN: u64 = 10;
pub const CARD_PAGE_SIZE_MAX: u64 = 100;
pub const CARD_PAGE_SIZE_DEFAULT: u64 = 10;
/// The most permission changes one bulk update may carry (one per channel, plus repeats).
pub const PERMISSION_CHANGES_MAX: usize = 32;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardList {
    pub cards: Vec<CardJson>,
    pub total_count: usize,
}

/// A page of a list: `(skip, take)` from `pageNumber` and `pageSize`.
pub fn page(query: &QueryMap, size_default: u64) -> ApiResult<(usize, usize)> {
    let size = query.int_in(
        "pageSize",
        CARD_PAGE_SIZE_MIN..=CARD_PAGE_SIZE_MAX,
        size_default,
    )?;
    let number = query.int_in("pageNumber", 1..=u64::from(u32::MAX), 1)?;
    let skip = (number - 1).saturating_mul(size);
    Ok((usize::try_from(skip).unwrap_or(usize::MAX), size as usize))
}

pub async fn list(
    State(state): State<AppState>,
    at: ProfileAt,
    query: QueryMap,
) -> ApiResult<Json<CardList>> {
    let (skip, take) = page(&query, CARD_PAGE_SIZE_DEFAULT)?;
    let profile = at.profile;
    let cards = state.engine(move |e| e.cards(profile)).await?;
    let total_count = cards.len();
    let page: Vec<CardJson> = cards
        .iter()
        .skip(skip)
        .take(take)
        .map(|card| CardJson::of(card, state.orders(|o| o.details(card.token).holder())))
        .collect();
    Ok(Json(CardList {
        cards: page,
        total_count,
    }))
}

pub async fn get(State(state): State<AppState>, at: CardAt) -> ApiResult<Json<CardJson>> {
    let (profile, token) = (at.profile, at.token);
    let card = state.engine(move |e| e.card(profile, token)).await?;
    let holder = state.orders(|o| o.details(token).holder());
    Ok(Json(CardJson::of(&card, holder)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    pub status: CardStatus,
}

/// `PUT .../status`: `ACTIVE`, `FROZEN` or `BLOCKED`; `BLOCKED` is final.
pub async fn set_status(
    State(state): State<AppState>,
    at: CardAt,
    JsonBody(body): JsonBody<StatusBody>,
) -> ApiResult<Json<CardJson>> {
    if !matches!(
        body.status,
        CardStatus::Active | CardStatus::Frozen | CardStatus::Blocked
    ) {
        return Err(ApiError::invalid(
            "status",
            "the status API sets only ACTIVE, FROZEN or BLOCKED",
        ));
    }
    let (profile, token, status) = (at.profile, at.token, body.status);
    let card = state
        .run(move |e| {
            e.change_card_status(profile, token, status)
                .map_err(|err| status_conflict(err.into()))
        })
        .await?;
    let holder = state.orders(|o| o.details(token).holder());
    Ok(Json(CardJson::of(&card, holder)))
}

fn status_conflict(mut e: ApiError) -> ApiError {
    if e.status == axum::http::StatusCode::CONFLICT {
        e.field = Some("status".into());
    }
    e
}

/// `POST .../reset-pin-count`: 200 with no body, as the reference answers.
pub async fn reset_pin_count(State(state): State<AppState>, at: CardAt) -> ApiResult<()> {
    let (profile, token) = (at.profile, at.token);
    state
        .engine(move |e| e.reset_pin_count(profile, token))
        .await?;
    Ok(())
}

pub async fn permissions(
    State(state): State<AppState>,
    at: CardAt,
) -> ApiResult<Json<PermissionsJson>> {
    let (profile, token) = (at.profile, at.token);
    let card = state.engine(move |e| e.card(profile, token)).await?;
    Ok(Json(PermissionsJson::of(card.permissions)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsBody {
    pub permissions: Vec<PermissionChange>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionChange {
    #[serde(rename = "type")]
    pub channel: Channel,
    pub is_enabled: bool,
}

/// `PATCH` (v4) bulk update, all or nothing: enabling a locked permission refuses it all.
/// Answers with the permissions as they now are.
pub async fn update_permissions(
    State(state): State<AppState>,
    at: CardAt,
    JsonBody(body): JsonBody<PermissionsBody>,
) -> ApiResult<Json<PermissionsJson>> {
    if body.permissions.is_empty() {
        return Err(ApiError::invalid("permissions", "must not be empty"));
    }
    if body.permissions.len() > PERMISSION_CHANGES_MAX {
        return Err(ApiError::invalid(
            "permissions",
            format!("at most {PERMISSION_CHANGES_MAX} changes"),
        ));
    }
    let changes: Vec<(Channel, bool)> = body
        .permissions
        .iter()
        .map(|p| (p.channel, p.is_enabled))
        .collect();
    let (profile, token) = (at.profile, at.token);
    let permissions = state
        .run(move |e| {
            e.update_permissions(profile, token, changes)
                .map_err(|err| {
                    let mut api = ApiError::from(err);
                    if api.status == axum::http::StatusCode::CONFLICT {
                        api.field = Some("permissions".into());
                    }
                    api
                })
        })
        .await?;
    Ok(Json(PermissionsJson::of(permissions)))
}
