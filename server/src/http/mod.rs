//! The management HTTP API, shaped like the reference (the Wise card API): card orders,
//! cards, spending permissions, spend limits, spend-control rules, card transactions,
//! balances and the simulation endpoints; in sandbox mode, the sandbox endpoints a scenario
//! run needs. `docs/http-api.md` describes it and `docs/openapi.json` documents every route
//! of [`route_table`] (a test keeps the two equal).
//!
//! - [`access`]: bearer-token authentication ([`auth`]) and path checks, as extractors.
//! - [`json`]: strict bodies whose errors name the field; exact decimal amounts.
//! - [`error`]: the one JSON error shape.
//! - [`views`]: the reference's resources, built from the engine's records.
//! - one module per resource family; [`simulation`] builds real ISO 8583 messages.
//!
//! Every engine call runs on a blocking thread ([`state::AppState::run`]): the engine waits
//! for its partition and, in `sync` mode, for the journal.

pub mod access;
pub mod auth;
pub mod balances;
pub mod cards;
pub mod controls;
pub mod error;
pub mod json;
pub mod limits;
pub mod ops;
pub mod order_keys;
pub mod orders;
pub mod sandbox;
pub mod serve;
pub mod simulation;
pub mod state;
pub mod transactions;
pub mod views;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;

use crate::Service;
use error::ApiError;
use json::BODY_BYTES_MAX;
use state::AppState;

/// Who a route is for (documentation and tests; the handlers' extractors enforce it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// No token: health and metrics.
    Open,
    /// A profile token for that profile, or the operator.
    Profile,
    /// An application token for that client id, or the operator.
    Application,
    /// Sandbox mode and the operator token.
    Sandbox,
}

/// One served route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: &'static str,
    /// In OpenAPI form: `/v3/spend/profiles/{profileId}/cards`.
    pub path: &'static str,
    pub audience: Audience,
}

/// The router of the management API. Sandbox routes exist only in sandbox mode.
pub fn router(service: Arc<Service>) -> Router {
    let sandbox = service.sandbox();
    let state = AppState::new(service);
    let mut router = Router::new();
    for (spec, handler) in routes() {
        if spec.audience == Audience::Sandbox && !sandbox {
            continue;
        }
        router = router.route(&axum_path(spec.path), handler);
    }
    router
        .fallback(unknown_path)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

/// Every route served in a mode, as `(method, path)`.
pub fn route_table(sandbox: bool) -> Vec<RouteSpec> {
    routes()
        .into_iter()
        .map(|(spec, _)| spec)
        .filter(|spec| sandbox || spec.audience != Audience::Sandbox)
        .collect()
}

/// `{name}` (OpenAPI) to `:name` (axum).
fn axum_path(path: &str) -> String {
    path.split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!(":{name}"),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

async fn unknown_path() -> ApiError {
    ApiError::not_found("path", "no such endpoint")
}

/// Counts every answer by status class and traces it at debug level. The trace names the
/// route template, never the request's own path (a client could have put a PAN there), and
/// never a header (tokens).
async fn count_responses(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |p| p.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.service().metrics().record_http_response(status);
    tracing::debug!(%method, %route, status, took_us = started.elapsed().as_micros() as u64, "http");
    response.into_response()
}

type Handler = MethodRouter<AppState>;

fn spec(method: &'static str, path: &'static str, audience: Audience) -> RouteSpec {
    RouteSpec {
        method,
        path,
        audience,
    }
}

fn routes() -> Vec<(RouteSpec, Handler)> {
    let mut all = ops_routes();
    all.extend(card_routes());
    all.extend(limit_and_rule_routes());
    all.extend(money_routes());
    all.extend(simulation_routes());
    all.extend(sandbox_routes());
    all
}

fn ops_routes() -> Vec<(RouteSpec, Handler)> {
    use Audience::Open;
    vec![
        (spec("GET", "/health", Open), get(ops::health)),
        (spec("GET", "/metrics", Open), get(ops::metrics)),
    ]
}

fn card_routes() -> Vec<(RouteSpec, Handler)> {
    use Audience::Profile as P;
    const CARD: &str = "/v3/spend/profiles/{profileId}/cards/{cardToken}";
    vec![
        (
            spec("POST", "/v3/spend/profiles/{profileId}/card-orders", P),
            post(orders::create),
        ),
        (
            spec("GET", "/v3/spend/profiles/{profileId}/card-orders", P),
            get(orders::list),
        ),
        (
            spec(
                "GET",
                "/v3/spend/profiles/{profileId}/card-orders/availability",
                P,
            ),
            get(orders::availability),
        ),
        (
            spec(
                "GET",
                "/v3/spend/profiles/{profileId}/card-orders/{cardOrderId}",
                P,
            ),
            get(orders::get),
        ),
        (
            spec("GET", "/v3/spend/profiles/{profileId}/cards", P),
            get(cards::list),
        ),
        (spec("GET", CARD, P), get(cards::get)),
        (
            spec(
                "PUT",
                "/v3/spend/profiles/{profileId}/cards/{cardToken}/status",
                P,
            ),
            put(cards::set_status),
        ),
        (
            spec(
                "POST",
                "/v3/spend/profiles/{profileId}/cards/{cardToken}/reset-pin-count",
                P,
            ),
            post(cards::reset_pin_count),
        ),
        (
            spec(
                "GET",
                "/v3/spend/profiles/{profileId}/cards/{cardToken}/spending-permissions",
                P,
            ),
            get(cards::permissions),
        ),
        (
            spec(
                "PATCH",
                "/v4/spend/profiles/{profileId}/cards/{cardToken}/spending-permissions",
                P,
            ),
            patch(cards::update_permissions),
        ),
        (
            spec(
                "GET",
                "/v4/spend/profiles/{profileId}/cards/transactions/{transactionId}",
                P,
            ),
            get(transactions::get),
        ),
        (
            spec(
                "GET",
                "/v4/spend/profiles/{profileId}/cards/{cardToken}/transactions",
                P,
            ),
            get(transactions::list),
        ),
    ]
}

fn limit_and_rule_routes() -> Vec<(RouteSpec, Handler)> {
    use Audience::{Application as A, Profile as P};
    const RULES: &str = "/v3/spend/applications/{clientId}/spend-controls/rules";
    vec![
        (
            spec("GET", "/v4/spend/profiles/{profileId}/spend-limits", P),
            get(limits::profile_get),
        ),
        (
            spec("PATCH", "/v4/spend/profiles/{profileId}/spend-limits", P),
            patch(limits::profile_patch),
        ),
        (
            spec(
                "GET",
                "/v4/spend/profiles/{profileId}/cards/{cardToken}/spend-limits",
                P,
            ),
            get(limits::card_get),
        ),
        (
            spec(
                "PATCH",
                "/v4/spend/profiles/{profileId}/cards/{cardToken}/spend-limits",
                P,
            ),
            patch(limits::card_patch),
        ),
        (
            spec(
                "DELETE",
                "/v4/spend/profiles/{profileId}/cards/{cardToken}/spend-limits/{granularity}",
                P,
            ),
            delete(limits::card_delete),
        ),
        (spec("POST", RULES, A), post(controls::create)),
        (spec("GET", RULES, A), get(controls::list)),
        (
            spec(
                "POST",
                "/v3/spend/applications/{clientId}/spend-controls/rules/apply",
                A,
            ),
            post(controls::apply),
        ),
        (
            spec(
                "POST",
                "/v3/spend/applications/{clientId}/spend-controls/rules/unapply",
                A,
            ),
            post(controls::unapply),
        ),
        (
            spec(
                "GET",
                "/v3/spend/applications/{clientId}/spend-controls/rules/applied",
                A,
            ),
            get(controls::applied),
        ),
        (
            spec(
                "DELETE",
                "/v3/spend/applications/{clientId}/spend-controls/rules/{ruleId}",
                A,
            ),
            delete(controls::delete),
        ),
    ]
}

fn money_routes() -> Vec<(RouteSpec, Handler)> {
    use Audience::Profile as P;
    vec![
        (
            spec("POST", "/v4/profiles/{profileId}/balances", P),
            post(balances::create),
        ),
        (
            spec("GET", "/v4/profiles/{profileId}/balances", P),
            get(balances::list),
        ),
        (
            spec("GET", "/v4/profiles/{profileId}/balances/{balanceId}", P),
            get(balances::get),
        ),
        (
            spec("POST", "/v1/simulation/balance/topup", P),
            post(balances::top_up),
        ),
    ]
}

fn simulation_routes() -> Vec<(RouteSpec, Handler)> {
    use Audience::Profile as P;
    vec![
        (
            spec(
                "POST",
                "/v2/simulation/spend/profiles/{profileId}/cards/{cardToken}/transactions/authorisation",
                P,
            ),
            post(simulation::authorisation),
        ),
        (
            spec(
                "POST",
                "/v1/simulation/spend/profiles/{profileId}/cards/{cardToken}/transactions/clearing",
                P,
            ),
            post(simulation::clearing),
        ),
        (
            spec(
                "POST",
                "/v1/simulation/spend/profiles/{profileId}/cards/{cardToken}/transactions/reversal",
                P,
            ),
            post(simulation::reversal),
        ),
        (
            spec(
                "GET",
                "/v2/simulation/spend/profiles/{profileId}/cards/{cardToken}/transactions",
                P,
            ),
            get(transactions::simulated),
        ),
    ]
}

fn sandbox_routes() -> Vec<(RouteSpec, Handler)> {
    use Audience::Sandbox as S;
    const CARD: &str = "/v1/sandbox/profiles/{profileId}/cards/{cardToken}";
    vec![
        (spec("POST", "/v1/sandbox/reset", S), post(sandbox::reset)),
        (spec("GET", "/v1/sandbox/clock", S), get(sandbox::clock_get)),
        (spec("PUT", "/v1/sandbox/clock", S), put(sandbox::clock_set)),
        (
            spec("POST", "/v1/sandbox/clock/advance", S),
            post(sandbox::clock_advance),
        ),
        (
            spec("GET", "/v1/sandbox/fx-rates", S),
            get(sandbox::fx_list),
        ),
        (spec("PUT", "/v1/sandbox/fx-rates", S), put(sandbox::fx_set)),
        (
            spec("POST", "/v1/sandbox/profiles", S),
            post(sandbox::profile_create),
        ),
        (
            spec("GET", "/v1/sandbox/profiles/{profileId}", S),
            get(sandbox::profile_get),
        ),
        (
            spec("PATCH", "/v1/sandbox/profiles/{profileId}", S),
            patch(sandbox::profile_patch),
        ),
        (
            spec("POST", "/v1/sandbox/profiles/{profileId}/top-up", S),
            post(sandbox::top_up),
        ),
        (
            spec("GET", "/v1/sandbox/profiles/{profileId}/limit-usage", S),
            get(sandbox::profile_usage),
        ),
        (
            spec("POST", "/v1/sandbox/profiles/{profileId}/cards", S),
            post(sandbox::card_issue),
        ),
        (spec("GET", CARD, S), get(sandbox::card_get)),
        (
            spec(
                "PUT",
                "/v1/sandbox/profiles/{profileId}/cards/{cardToken}/status",
                S,
            ),
            put(sandbox::card_force_status),
        ),
        (
            spec(
                "GET",
                "/v1/sandbox/profiles/{profileId}/cards/{cardToken}/limit-usage",
                S,
            ),
            get(sandbox::card_usage),
        ),
        (
            spec("GET", "/v1/sandbox/invariants", S),
            get(sandbox::invariants),
        ),
        (
            spec("GET", "/v1/sandbox/state-hash", S),
            get(sandbox::state_hash),
        ),
        (
            spec("GET", "/v1/sandbox/transactions/{transactionId}", S),
            get(sandbox::transaction),
        ),
    ]
}

/// The HTTP method of a spec, for tests that drive every route.
pub fn method_of(spec: &RouteSpec) -> Method {
    Method::from_bytes(spec.method.as_bytes()).unwrap_or(Method::GET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_convert_to_axum_form() {
        assert_eq!(
            axum_path("/v3/spend/profiles/{profileId}/cards/{cardToken}"),
            "/v3/spend/profiles/:profileId/cards/:cardToken"
        );
        assert_eq!(axum_path("/health"), "/health");
    }

    #[test]
    fn every_route_is_listed_once() {
        let table = route_table(true);
        for (i, a) in table.iter().enumerate() {
            for b in &table[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
        assert!(route_table(false)
            .iter()
            .all(|s| s.audience != Audience::Sandbox));
        assert!(route_table(true).len() > route_table(false).len());
    }
}
