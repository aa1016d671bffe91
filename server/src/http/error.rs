//! The API's errors: one JSON shape for every 4xx and 5xx, shaped like the reference's
//! validation errors (`type`, `title`, `status`, `code`, `detail`, and `errors[]` whose `ref`
//! names the field at fault).
//!
//! Nothing here ever echoes a full PAN: every detail passes through [`scrub`], which masks
//! any run of digits long enough to be one.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cardcore_authz::EngineError;
use serde::Serialize;

/// A refused request. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Machine-readable: `invalid_value`, `not_found`, `conflict`, ...
    pub code: &'static str,
    pub detail: String,
    /// The field, query parameter, path parameter or header at fault, as the API spells it
    /// (`amount.value`, `permissions[1].type`, `cardToken`).
    pub field: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 400: the request is malformed or a value is wrong.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_value",
            detail: detail.into(),
            field: Some(field.into()),
        }
    }

    /// 400 without a single field to blame (a body that is not JSON at all).
    pub fn malformed(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "malformed_request",
            detail: detail.into(),
            field: None,
        }
    }

    /// 404: the thing named by `field` does not exist, or is not the caller's to see.
    pub fn not_found(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            detail: detail.into(),
            field: Some(field.into()),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            detail: detail.into(),
            field: Some("Authorization".into()),
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            detail: detail.into(),
            field: None,
        }
    }

    /// 409: well-formed, but the current state does not allow it.
    pub fn conflict(field: Option<&str>, detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            detail: detail.into(),
            field: field.map(str::to_owned),
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            detail: detail.into(),
            field: None,
        }
    }

    /// Maps an engine refusal. `NotFound` names the path parameter of the kind of thing
    /// that was missing.
    pub fn from_engine(e: EngineError) -> ApiError {
        match e {
            EngineError::NotFound { what, id } => {
                ApiError::not_found(param_of(what), format!("{what} {id} not found"))
            }
            EngineError::Invalid { field, message } => ApiError::invalid(field, message),
            EngineError::Conflict(message) => ApiError::conflict(None, message),
            EngineError::Journal(message) => ApiError::unavailable(format!("journal: {message}")),
            EngineError::Unavailable(message) => ApiError::unavailable(message),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        ApiError::from_engine(e)
    }
}

/// The API's name for an engine id kind.
fn param_of(what: &str) -> String {
    match what {
        "profile" => "profileId",
        "card" => "cardToken",
        "transaction" => "transactionId",
        "rule" => "ruleId",
        "balance" => "balanceId",
        other => other,
    }
    .to_owned()
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    code: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError<'a>>,
}

#[derive(Serialize)]
struct FieldError<'a> {
    code: &'a str,
    detail: &'a str,
    #[serde(rename = "ref")]
    field: &'a str,
}

fn kind_and_title(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("/errors/types/validation", "Validation Error"),
        StatusCode::UNAUTHORIZED => ("/errors/types/authentication", "Unauthorized"),
        StatusCode::FORBIDDEN => ("/errors/types/access", "Forbidden"),
        StatusCode::NOT_FOUND => ("/errors/types/not-found", "Not Found"),
        StatusCode::CONFLICT => ("/errors/types/conflict", "Conflict"),
        s if s.is_client_error() => ("/errors/types/validation", "Validation Error"),
        _ => ("/errors/types/server", "Service Unavailable"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = scrub(&self.detail);
        // A field path can hold a key the client chose (an unknown field), so it is
        // scrubbed like the detail.
        let field = self.field.as_deref().map(scrub);
        let (kind, title) = kind_and_title(self.status);
        let errors = match &field {
            Some(field) => vec![FieldError {
                code: self.code,
                detail: &detail,
                field,
            }],
            None => Vec::new(),
        };
        let body = Body {
            kind,
            title,
            status: self.status.as_u16(),
            code: self.code,
            detail: &detail,
            errors,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Digits in a row from which a run could be a PAN (the shortest PANs have 12).
pub const PAN_LIKE_DIGITS_MIN: usize = 12;

/// Masks every run of [`PAN_LIKE_DIGITS_MIN`] or more digits, so that no error message can
/// carry a card number, whatever a client put where.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= PAN_LIKE_DIGITS_MIN {
            out.push_str("[digits removed]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_masks_pan_like_runs_only() {
        let cases = [
            (
                "invalid 4000001234567899 here",
                "invalid [digits removed] here",
            ),
            ("amount 10.50 EUR", "amount 10.50 EUR"),
            ("stan 123456", "stan 123456"),
            ("400000123456", "[digits removed]"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub(input), expected, "{input}");
        }
    }

    #[test]
    fn a_field_named_by_the_client_is_scrubbed_too() {
        let error = ApiError::invalid("x4000001234567899", "unknown field `x4000001234567899`");
        let response = error.into_response();
        let body = body_text(response);
        assert!(!body.contains("4000001234567899"), "{body}");
        assert!(body.contains("\"ref\":\"x[digits removed]\""), "{body}");
    }

    fn body_text(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn engine_errors_map_to_statuses_and_fields() {
        let cases = [
            (
                EngineError::not_found("card", "x"),
                StatusCode::NOT_FOUND,
                Some("cardToken"),
            ),
            (
                EngineError::invalid("daily", "too high"),
                StatusCode::BAD_REQUEST,
                Some("daily"),
            ),
            (
                EngineError::Conflict("final".into()),
                StatusCode::CONFLICT,
                None,
            ),
            (
                EngineError::Unavailable("stopped".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            ),
        ];
        for (error, status, field) in cases {
            let api = ApiError::from_engine(error);
            assert_eq!(api.status, status);
            assert_eq!(api.field.as_deref(), field);
        }
    }
}
