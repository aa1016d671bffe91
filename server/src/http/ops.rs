//! `GET /health` and `GET /metrics`: open to anyone who can reach the port (load balancers
//! and Prometheus scrapers carry no bearer token); they show no customer data.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::state::AppState;

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// 200 while the service is healthy, 503 while it stops or its journal has failed.
pub async fn health(State(state): State<AppState>) -> Response {
    let health = state.service().health();
    let status = if health.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.service().render_prometheus();
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], body).into_response()
}
