//! JSON at the edge: the body extractor that names the field at fault, exact decimal
//! amounts (never through `f64`), and secrets (PAN, PIN, CVV2) that no error message echoes.

use std::str::FromStr;

use axum::async_trait;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use cardcore_core::{Currency, Money, MoneyError};
use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::error::{ApiError, ApiResult};

/// The largest request body accepted: every body of this API is small.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// The longest a request body may take to arrive once its head has: a client trickling a
/// body would otherwise hold its connection and a handler forever.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A JSON body, parsed strictly: a wrong type, an unknown enum value, a missing or unknown
/// field is a 400 whose `ref` names the field (`permissions[1].type`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

#[async_trait]
impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(kind) = req.headers().get(header::CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or("");
            if !kind.starts_with("application/json") {
                return Err(ApiError {
                    status: axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code: "unsupported_media_type",
                    detail: "the body must be application/json".into(),
                    field: Some("Content-Type".into()),
                });
            }
        }
        let bytes = tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(req, state))
            .await
            .map_err(|_| ApiError {
                status: axum::http::StatusCode::REQUEST_TIMEOUT,
                code: "request_timeout",
                detail: format!("the body did not arrive within {BODY_READ_TIMEOUT:?}"),
                field: None,
            })?
            .map_err(body_read_error)?;
        parse_body(&bytes).map(JsonBody)
    }
}

/// A body that could not be read: 413 past [`BODY_BYTES_MAX`], else 400.
fn body_read_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError {
            status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            detail: format!("the body is larger than {BODY_BYTES_MAX} bytes"),
            field: None,
        };
    }
    ApiError::malformed(format!("cannot read the body: {e}"))
}

/// Parses a whole body into `T`, naming the field of the first problem.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(ApiError::malformed("a JSON body is required"));
    };
    // Every body of this API is an object. serde would also fill a struct from an array,
    // by position, which no client means.
    if *first != b'{' {
        return Err(ApiError::malformed("the body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end()
        .map_err(|e| ApiError::malformed(format!("malformed JSON: {e}")))?;
    Ok(value)
}

fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::malformed(format!("malformed JSON: {inner}"));
    }
    let message = strip_position(&inner.to_string());
    let field = if path == "." || path.is_empty() {
        quoted_field(&message)
    } else {
        Some(path)
    };
    match field {
        Some(field) => ApiError::invalid(field, message),
        None => ApiError::malformed(message),
    }
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The field named in "missing field `x`", "unknown field `x`" or "duplicate field `x`"
/// (errors at the root). Other messages quote a value, not a field ("invalid type: integer
/// `5`"), and name none.
fn quoted_field(message: &str) -> Option<String> {
    let rest = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))?;
    let len = rest.find('`')?;
    Some(rest[..len].to_owned())
}

/// A decimal amount as the reference sends it: a JSON number (`10.5`), read from its text
/// so that no digit is lost. A string holding a decimal (`"10.50"`) is accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        parse_decimal_text(raw.get())
            .map(Amount)
            .ok_or_else(|| D::Error::custom("expected a decimal number"))
    }
}

/// Reads a JSON number or a JSON string holding one, exactly.
pub fn parse_decimal_text(raw: &str) -> Option<Decimal> {
    let raw = raw.trim();
    let text = match raw.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => raw,
    };
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !valid {
        return None;
    }
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str_exact(text).ok()
    }
}

impl Amount {
    /// The amount in `currency`, refusing negatives and more decimals than it has.
    pub fn to_money(self, field: &str, currency: Currency) -> ApiResult<Money> {
        if self.0.is_sign_negative() && !self.0.is_zero() {
            return Err(ApiError::invalid(field, "must not be negative"));
        }
        Money::from_decimal(self.0, currency).map_err(|e| money_error(field, e))
    }
}

fn money_error(field: &str, e: MoneyError) -> ApiError {
    match e {
        MoneyError::TooPrecise {
            currency, exponent, ..
        } => ApiError::invalid(
            field,
            format!("{currency} amounts have at most {exponent} decimal places"),
        ),
        other => ApiError::invalid(field, other.to_string()),
    }
}

/// `{ "value": 10.5, "currency": "EUR" }` (simulation and balance bodies).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueIn {
    pub value: Amount,
    pub currency: Currency,
}

impl ValueIn {
    pub fn to_money(&self, field: &str) -> ApiResult<Money> {
        self.value
            .to_money(&format!("{field}.value"), self.currency)
    }
}

/// `{ "amount": 100, "currency": "GBP" }` (spend-limit bodies).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountIn {
    pub amount: Amount,
    pub currency: Currency,
}

impl AmountIn {
    pub fn to_money(&self, field: &str) -> ApiResult<Money> {
        self.amount
            .to_money(&format!("{field}.amount"), self.currency)
    }
}

/// A decimal written as a JSON number with its exact digits (`10.50`, `0.001`, `1000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number(pub Decimal);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// `{ "amount": 10.50, "currency": "EUR" }` in responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AmountOut {
    pub amount: Number,
    pub currency: Currency,
}

impl From<Money> for AmountOut {
    fn from(m: Money) -> AmountOut {
        AmountOut {
            amount: Number(m.to_decimal()),
            currency: m.currency,
        }
    }
}

/// `{ "value": 10.50, "currency": "EUR" }` in responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ValueOut {
    pub value: Number,
    pub currency: Currency,
}

impl From<Money> for ValueOut {
    fn from(m: Money) -> ValueOut {
        ValueOut {
            value: Number(m.to_decimal()),
            currency: m.currency,
        }
    }
}

/// A string of digits that must never be shown: a PAN, a PIN or a CVV2. Its errors say
/// what is wrong without repeating the value, and its `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDigits(String);

impl SecretDigits {
    /// The digits, to build a message or a card from. Never log them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretDigits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigits(..)")
    }
}

impl<'de> Deserialize<'de> for SecretDigits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as raw JSON so that a wrong type never produces an error quoting the value.
        let raw = Box::<RawValue>::deserialize(d)?;
        let text = raw.get().trim();
        let digits = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| D::Error::custom("expected a string of digits"))?;
        Ok(SecretDigits(digits.to_owned()))
    }
}

/// An id the reference sends as a string (`"ruleId": "123"`); an integer is accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdText(pub u64);

impl<'de> Deserialize<'de> for IdText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let text = raw.get().trim();
        let digits = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        u64::from_str(digits)
            .ok()
            .filter(|id| *id > 0)
            .map(IdText)
            .ok_or_else(|| D::Error::custom("expected a positive integer id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn decimal_text_is_read_exactly() {
        let cases: &[(&str, Option<&str>)] = &[
            ("10.5", Some("10.5")),
            ("10.50", Some("10.50")),
            ("\"10.50\"", Some("10.50")),
            ("0.1", Some("0.1")),
            ("1e2", Some("100")),
            ("-3", Some("-3")),
            ("12345678901234567.89", Some("12345678901234567.89")),
            ("true", None),
            ("null", None),
            ("\"ten\"", None),
            ("[1]", None),
            ("\"\"", None),
        ];
        for &(raw, expected) in cases {
            assert_eq!(parse_decimal_text(raw), expected.map(dec), "{raw}");
        }
    }

    #[test]
    fn amounts_refuse_negative_and_over_precise_values() {
        let cases: &[(&str, Currency, Option<i64>)] = &[
            ("10.5", Currency::EUR, Some(1050)),
            ("10.505", Currency::EUR, None),
            ("1.5", Currency::JPY, None),
            ("1000", Currency::JPY, Some(1000)),
            ("0.001", Currency::KWD, Some(1)),
            ("-1", Currency::EUR, None),
            ("0", Currency::EUR, Some(0)),
        ];
        for &(text, currency, expected) in cases {
            let got = Amount(dec(text)).to_money("amount", currency).ok();
            assert_eq!(got.map(|m| m.amount_minor), expected, "{text} {currency}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Probe {
        #[allow(dead_code)]
        amount: ValueIn,
        #[allow(dead_code)]
        pan: SecretDigits,
    }

    #[test]
    fn body_errors_name_the_field_and_never_echo_secrets() {
        let pan = "4000001234567899";
        let cases: &[(String, Option<&str>)] = &[
            (
                format!(r#"{{"amount":{{"value":1,"currency":"EUR"}},"pan":"{pan}"}}"#),
                None,
            ),
            (
                format!(r#"{{"amount":{{"value":true,"currency":"EUR"}},"pan":"{pan}"}}"#),
                Some("amount.value"),
            ),
            (
                format!(r#"{{"amount":{{"value":1,"currency":"XXX"}},"pan":"{pan}"}}"#),
                Some("amount.currency"),
            ),
            (
                format!(r#"{{"amount":{{"value":1,"currency":"EUR"}},"pan":{pan}}}"#),
                Some("pan"),
            ),
            (r#"{"pan":"1234"}"#.to_owned(), Some("amount")),
            (
                format!(r#"{{"amount":{{"value":1,"currency":"EUR"}},"pan":"{pan}","x":1}}"#),
                Some("x"),
            ),
        ];
        for (body, field) in cases {
            let result = parse_body::<Probe>(body.as_bytes());
            match field {
                None => assert!(result.is_ok(), "{body}: {result:?}"),
                Some(field) => {
                    let e = result.expect_err(body);
                    assert_eq!(e.field.as_deref(), Some(*field), "{body}: {e:?}");
                    assert!(!e.detail.contains(pan), "{body}: {e:?}");
                }
            }
        }
        for bad in ["", "{", "[1,2", "{} x"] {
            let e = parse_body::<Probe>(bad.as_bytes()).expect_err(bad);
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
        // Not an object: refused whole, with no field to blame (a quoted value is not one).
        let positional = format!(r#"[{{"value":1,"currency":"EUR"}},"{pan}"]"#);
        for bad in ["12345", "\"amount\"", "null", "[]", &positional] {
            let e = parse_body::<Probe>(bad.as_bytes()).expect_err(bad);
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(e.field, None, "{bad}: {e:?}");
        }
        let twice =
            r#"{"amount":{"value":1,"currency":"EUR"},"amount":{"value":2,"currency":"EUR"}}"#;
        let e = parse_body::<Probe>(twice.as_bytes()).expect_err(twice);
        assert_eq!(e.field.as_deref(), Some("amount"), "{e:?}");
    }

    #[test]
    fn numbers_are_written_with_their_exact_digits() {
        let out = AmountOut::from(Money::new(1050, Currency::EUR));
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"amount":10.50,"currency":"EUR"}"#
        );
        let out = ValueOut::from(Money::new(1, Currency::KWD));
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"value":0.001,"currency":"KWD"}"#
        );
    }
}
