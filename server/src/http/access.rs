//! Extractors that authenticate the caller and check what the path names, in that order: no
//! valid token is a 401 before anything else is looked at; a malformed path id is a 400; a
//! profile the caller may not reach is a 404 (or 403 for the wrong kind of token).

use std::collections::HashMap;

use axum::async_trait;
use axum::extract::{FromRequestParts, Query, RawPathParams};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cardcore_core::{CardToken, ProfileId};

use super::auth::{authenticate, Caller};
use super::error::ApiError;
use super::state::AppState;

/// Any authenticated caller.
#[derive(Debug, Clone)]
pub struct Authed(pub Caller);

#[async_trait]
impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).map(|v| v.as_bytes());
        authenticate(header, &state.service().config().tokens).map(Authed)
    }
}

/// A request on `{profileId}` by a caller who may reach it.
#[derive(Debug, Clone)]
pub struct ProfileAt {
    pub caller: Caller,
    pub profile: ProfileId,
}

#[async_trait]
impl FromRequestParts<AppState> for ProfileAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authed(caller) = Authed::from_request_parts(parts, state).await?;
        let params = path_params(parts, state).await?;
        let profile = profile_param(&params)?;
        caller.reach_profile(profile)?;
        Ok(ProfileAt { caller, profile })
    }
}

/// A request on `{profileId}/cards/{cardToken}`.
#[derive(Debug, Clone)]
pub struct CardAt {
    pub caller: Caller,
    pub profile: ProfileId,
    pub token: CardToken,
}

#[async_trait]
impl FromRequestParts<AppState> for CardAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authed(caller) = Authed::from_request_parts(parts, state).await?;
        let params = path_params(parts, state).await?;
        let profile = profile_param(&params)?;
        caller.reach_profile(profile)?;
        let token = card_param(&params)?;
        Ok(CardAt {
            caller,
            profile,
            token,
        })
    }
}

/// A spend-controls request on `{clientId}` by that application (or the operator).
#[derive(Debug, Clone)]
pub struct AppAt {
    pub caller: Caller,
}

#[async_trait]
impl FromRequestParts<AppState> for AppAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authed(caller) = Authed::from_request_parts(parts, state).await?;
        let params = path_params(parts, state).await?;
        let client_id = param(&params, "clientId")?;
        caller.reach_application(client_id)?;
        Ok(AppAt { caller })
    }
}

/// A sandbox request: sandbox mode and the operator token.
#[derive(Debug, Clone)]
pub struct Operator;

#[async_trait]
impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authed(caller) = Authed::from_request_parts(parts, state).await?;
        if !state.service().sandbox() {
            return Err(ApiError::not_found(
                "path",
                "sandbox endpoints exist only in sandbox mode",
            ));
        }
        if !caller.is_operator() {
            return Err(ApiError::forbidden(
                "sandbox endpoints need the operator token",
            ));
        }
        Ok(Operator)
    }
}

/// The path parameters, for handlers that need more than the profile and card.
#[derive(Debug, Clone)]
pub struct PathParams(pub Params);

#[async_trait]
impl FromRequestParts<AppState> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        path_params(parts, state).await.map(PathParams)
    }
}

/// Query parameters by name; each handler parses the ones it knows, with errors that name
/// the parameter. Parameters it does not know are ignored.
#[derive(Debug, Clone, Default)]
pub struct QueryMap(pub HashMap<String, String>);

#[async_trait]
impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(map)| QueryMap(map))
            .map_err(|_| ApiError::malformed("the query string is malformed"))
    }
}

impl QueryMap {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::invalid(name, "required query parameter"))
    }

    /// An integer in `range`, or `default` when absent.
    pub fn int_in(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> Result<u64, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        text.parse::<u64>()
            .ok()
            .filter(|v| range.contains(v))
            .ok_or_else(|| {
                let (lo, hi) = (range.start(), range.end());
                ApiError::invalid(name, format!("expected an integer from {lo} to {hi}"))
            })
    }
}

pub type Params = Vec<(String, String)>;

pub async fn path_params(parts: &mut Parts, state: &AppState) -> Result<Params, ApiError> {
    let raw = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::malformed("the path parameters cannot be read"))?;
    Ok(raw
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

pub fn param<'a>(params: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::invalid(name, "missing path parameter"))
}

/// A positive 64-bit id from the path.
pub fn id_param(params: &Params, name: &str) -> Result<u64, ApiError> {
    param(params, name)?
        .parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid(name, "expected a positive integer"))
}

pub fn profile_param(params: &Params) -> Result<ProfileId, ApiError> {
    id_param(params, "profileId").map(ProfileId)
}

pub fn card_param(params: &Params) -> Result<CardToken, ApiError> {
    // The error does not repeat the value: a client could have put a PAN there.
    CardToken::parse(param(params, "cardToken")?)
        .map_err(|_| ApiError::invalid("cardToken", "expected a card token (a UUID)"))
}
