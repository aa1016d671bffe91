//! Parsers for the values of a scenario line's keys. Each returns a message that says what
//! was expected; the caller adds the line and the key. Messages echo what was written,
//! except for PANs, PINs, CVV2s and raw bytes, which they never repeat.

use std::str::FromStr;

use cardcore_core::{Currency, Expiry, Mcc, Pan, Timestamp};
use rust_decimal::Decimal;
use serde_json::Value;

use super::step::Name;
use super::target::{ClearPin, Cvv2};

/// How much of a written value an error message repeats, so a report line stays readable.
const ECHO_CHARS_MAX: usize = 40;
/// The largest `raw` message: what a 2-byte length frame can carry.
pub const RAW_MESSAGE_BYTES_MAX: usize = u16::MAX as usize;
/// The longest merchant name (DE 43 leaves 25 characters for it).
pub const MERCHANT_CHARS_MAX: usize = 25;

pub type ValueResult<T> = Result<T, String>;

/// How a JSON value is described in an error message.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A written value as an error message repeats it: quoted, and cut when long.
pub fn echo(text: &str) -> String {
    if text.chars().count() <= ECHO_CHARS_MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(ECHO_CHARS_MAX).collect();
        format!("{cut:?}...")
    }
}

pub fn string(value: &Value) -> ValueResult<&str> {
    value
        .as_str()
        .ok_or_else(|| format!("expected a string, got {}", kind_of(value)))
}

pub fn boolean(value: &Value) -> ValueResult<bool> {
    value
        .as_bool()
        .ok_or_else(|| format!("expected true or false, got {}", kind_of(value)))
}

/// A scenario name: a non-empty string, or an integer written as its decimal digits.
pub fn name(value: &Value) -> ValueResult<Name> {
    match value {
        Value::String(s) if s.trim().is_empty() => Err("a name must not be empty".to_owned()),
        Value::String(s) => Ok(Name(s.clone())),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Name(n.to_string())),
        Value::Number(_) => Err("a name is a string or a whole number".to_owned()),
        other => Err(format!(
            "expected a name (string or integer), got {}",
            kind_of(other)
        )),
    }
}

/// A decimal amount in major units, written as a string. JSON numbers are refused because
/// they pass through binary floating point in most JSON tools (`0.1` is not exact).
pub fn amount(value: &Value) -> ValueResult<Decimal> {
    match value {
        Value::String(s) => decimal(s),
        Value::Number(n) => Err(format!(
            "amounts are strings in major units, e.g. \"{n}\" instead of {n} (JSON numbers are \
             not exact)"
        )),
        other => Err(format!(
            "expected an amount string like \"10.50\", got {}",
            kind_of(other)
        )),
    }
}

/// Plain decimal notation only: an optional `-`, digits, and optionally `.` and digits.
fn decimal(text: &str) -> ValueResult<Decimal> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !plain(whole) || !plain(fraction) {
        return Err(format!(
            "{} is not a decimal amount like \"10.50\"",
            echo(text)
        ));
    }
    Decimal::from_str(text).map_err(|_| format!("{} is out of range", echo(text)))
}

/// A strictly positive decimal string (an exchange rate).
pub fn rate(value: &Value) -> ValueResult<Decimal> {
    let rate = amount(value)?;
    if rate <= Decimal::ZERO {
        return Err(format!("a rate must be above zero, got {rate}"));
    }
    Ok(rate)
}

/// A fee in percent: a decimal string from 0 up to, not including, 100.
pub fn percent(value: &Value) -> ValueResult<Decimal> {
    let p = amount(value)?;
    if p < Decimal::ZERO || p >= Decimal::ONE_HUNDRED {
        return Err(format!(
            "a fee in percent is at least 0 and below 100, got {p}"
        ));
    }
    Ok(p)
}

pub fn currency(value: &Value) -> ValueResult<Currency> {
    let code = string(value)?;
    Currency::from_alpha(code).map_err(|_| {
        format!(
            "{} is not an ISO 4217 currency code cardcore knows",
            echo(code)
        )
    })
}

/// `"90s"`, `"15m"`, `"36h"`, `"8d"`: a whole number and one unit, as milliseconds.
pub fn duration_ms(value: &Value) -> ValueResult<i64> {
    let text = string(value)?;
    let bad = || {
        format!(
            "{} is not a duration like \"90s\", \"15m\", \"36h\" or \"8d\"",
            echo(text)
        )
    };
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (count, unit) = text.split_at(split);
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    count
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .ok_or_else(|| format!("duration {} is too long", echo(text)))
}

pub fn timestamp(value: &Value) -> ValueResult<Timestamp> {
    let text = string(value)?;
    Timestamp::parse_rfc3339(text).ok_or_else(|| {
        format!(
            "{} is not an RFC 3339 time like \"2026-01-15T10:00:00Z\"",
            echo(text)
        )
    })
}

/// A PAN. The error says what is wrong but never repeats the digits.
pub fn pan(value: &Value) -> ValueResult<Pan> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("a PAN is a string of digits, got {}", kind_of(value)))?;
    Pan::parse(text).map_err(|e| e.to_string())
}

/// A PIN in clear (a string, so leading zeros survive). Never echoed.
pub fn pin(value: &Value) -> ValueResult<ClearPin> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("a PIN is a string of digits, got {}", kind_of(value)))?;
    ClearPin::parse(text).map_err(str::to_owned)
}

/// A CVV2 (a string, so leading zeros survive). Never echoed.
pub fn cvv2(value: &Value) -> ValueResult<Cvv2> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("a CVV2 is a string of digits, got {}", kind_of(value)))?;
    Cvv2::parse(text).map_err(str::to_owned)
}

pub fn expiry(value: &Value) -> ValueResult<Expiry> {
    let text = string(value)?;
    Expiry::parse(text).map_err(|_| format!("{} is not an expiry like \"2029-07\"", echo(text)))
}

/// An MCC: four digits as a string (`"0742"`), or an integer up to 9999.
pub fn mcc(value: &Value) -> ValueResult<Mcc> {
    match value {
        Value::String(s) => {
            Mcc::parse(s).ok_or_else(|| format!("{} is not a four-digit MCC", echo(s)))
        }
        Value::Number(n) => n
            .as_u64()
            .filter(|&v| v <= 9999)
            .map(|v| Mcc(v as u16))
            .ok_or_else(|| format!("{n} is not an MCC (0 to 9999)")),
        other => Err(format!(
            "expected an MCC like \"5411\", got {}",
            kind_of(other)
        )),
    }
}

/// A rule value: a string, or an integer taken as a four-digit MCC (`742` is `"0742"`).
pub fn rule_value(value: &Value) -> ValueResult<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) => mcc(value).map(|m| m.to_string()),
        other => Err(format!("a rule value is a string, got {}", kind_of(other))),
    }
}

/// One of a fixed set of upper-case words, parsed by `parse`.
pub fn word<T>(value: &Value, parse: fn(&str) -> Option<T>, allowed: &[&str]) -> ValueResult<T> {
    let text = string(value)?;
    parse(text).ok_or_else(|| format!("expected one of {}, got {}", allowed.join(", "), echo(text)))
}

/// A list, each item parsed by `item`; the message names the failing item's position.
pub fn list<T>(value: &Value, item: impl Fn(&Value) -> ValueResult<T>) -> ValueResult<Vec<T>> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("expected a list, got {}", kind_of(value)))?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| item(v).map_err(|e| format!("item {}: {e}", i + 1)))
        .collect()
}

/// A reason code of the card transaction reference, or `null` for "no reason".
pub fn reason(value: &Value) -> ValueResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if is_code(s) => Ok(Some(s.clone())),
        Value::String(s) => Err(format!(
            "{} is not a reason code like \"CARD_FROZEN\"",
            echo(s)
        )),
        other => Err(format!(
            "expected a reason code or null, got {}",
            kind_of(other)
        )),
    }
}

fn is_code(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// A field-39 response code: two letters or digits, as a string (`"00"`, `"N7"`).
pub fn response_code(value: &Value) -> ValueResult<String> {
    let text = value.as_str().ok_or_else(|| {
        format!(
            "a response code is a two-character string like \"51\", got {}",
            kind_of(value)
        )
    })?;
    if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "{} is not a two-character response code",
            echo(text)
        ));
    }
    Ok(text.to_owned())
}

/// An ISO 3166-1 alpha-2 country code (`"SG"`).
pub fn country(value: &Value) -> ValueResult<String> {
    let text = string(value)?;
    if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "{} is not a two-letter country code like \"SG\"",
            echo(text)
        ));
    }
    Ok(text.to_owned())
}

/// A merchant name: printable ASCII, 1 to 25 characters (what DE 43 carries).
pub fn merchant(value: &Value) -> ValueResult<String> {
    let text = string(value)?;
    if text.is_empty() || text.len() > MERCHANT_CHARS_MAX {
        return Err(format!(
            "a merchant name has 1 to {MERCHANT_CHARS_MAX} characters"
        ));
    }
    if !text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(format!(
            "{} has characters other than printable ASCII",
            echo(text)
        ));
    }
    Ok(text.to_owned())
}

/// A count: a whole number from 0 up.
pub fn count(value: &Value) -> ValueResult<u32> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("expected a whole number from 0, got {}", describe(value)))
}

fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => kind_of(other).to_owned(),
    }
}

/// Hex digits (either case) as bytes. The bytes may hold a PAN, so errors never echo them.
pub fn hex_bytes(value: &Value) -> ValueResult<Vec<u8>> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("expected a string of hex digits, got {}", kind_of(value)))?;
    if text.is_empty() || text.len() % 2 != 0 {
        return Err(format!(
            "expected an even, non-zero number of hex digits, got {}",
            text.len()
        ));
    }
    if text.len() / 2 > RAW_MESSAGE_BYTES_MAX {
        return Err(format!(
            "a raw message has at most {RAW_MESSAGE_BYTES_MAX} bytes"
        ));
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(format!("character {} is not a hex digit", 2 * i + 1)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_plain_decimal_strings() {
        assert_eq!(amount(&json!("10.50")).unwrap(), Decimal::new(1050, 2));
        assert_eq!(amount(&json!("-3")).unwrap(), Decimal::new(-3, 0));
        assert_eq!(amount(&json!("0")).unwrap(), Decimal::ZERO);
        for bad in ["", "1e3", "+5", "10.", ".5", "1,5", " 1", "abc", "--1"] {
            assert!(amount(&json!(bad)).is_err(), "{bad:?}");
        }
        let e = amount(&json!(10.5)).unwrap_err();
        assert!(e.contains("\"10.5\""), "{e}");
        assert!(amount(&json!("99999999999999999999999999999999")).is_err());
    }

    #[test]
    fn durations_have_one_unit() {
        let cases = [
            ("90s", 90_000),
            ("15m", 900_000),
            ("36h", 129_600_000),
            ("8d", 691_200_000),
        ];
        for (text, ms) in cases {
            assert_eq!(duration_ms(&json!(text)).unwrap(), ms, "{text}");
        }
        assert_eq!(duration_ms(&json!("0s")).unwrap(), 0);
        for bad in [
            "",
            "s",
            "10",
            "1.5h",
            "-1d",
            "1w",
            "1h30m",
            "10 s",
            "99999999999999999999d",
        ] {
            assert!(duration_ms(&json!(bad)).is_err(), "{bad:?}");
        }
        assert!(duration_ms(&json!(90)).is_err());
    }

    #[test]
    fn names_normalise_integers() {
        assert_eq!(name(&json!(1)).unwrap(), Name::from("1"));
        assert_eq!(name(&json!("1")).unwrap(), Name::from("1"));
        assert_eq!(name(&json!(-7)).unwrap(), Name::from("-7"));
        for bad in [
            json!(1.5),
            json!(""),
            json!(" "),
            json!(null),
            json!(true),
            json!([1]),
        ] {
            assert!(name(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_never_echoed() {
        let e = pan(&json!("4242424242424241")).unwrap_err();
        assert!(!e.contains("4242"), "{e}");
        let e = pin(&json!("12a4")).unwrap_err();
        assert!(!e.contains("12a4"), "{e}");
        let e = cvv2(&json!("98765")).unwrap_err();
        assert!(!e.contains("98765"), "{e}");
        let e = hex_bytes(&json!("30313g")).unwrap_err();
        assert!(!e.contains("30313g"), "{e}");
        assert!(format!("{:?}", pin(&json!("1234")).unwrap())
            .find("1234")
            .is_none());
    }

    #[test]
    fn small_values() {
        assert_eq!(mcc(&json!("0742")).unwrap(), Mcc(742));
        assert_eq!(mcc(&json!(5411)).unwrap(), Mcc(5411));
        assert!(mcc(&json!("541")).is_err());
        assert!(mcc(&json!(10000)).is_err());
        assert_eq!(rule_value(&json!(742)).unwrap(), "0742");
        assert_eq!(hex_bytes(&json!("0A0b")).unwrap(), vec![0x0a, 0x0b]);
        assert!(hex_bytes(&json!("abc")).is_err());
        assert_eq!(reason(&json!(null)).unwrap(), None);
        assert!(reason(&json!("card frozen")).is_err());
        assert!(response_code(&json!(51)).is_err());
        assert_eq!(response_code(&json!("N7")).unwrap(), "N7");
        assert!(rate(&json!("0")).is_err());
        assert!(percent(&json!("100")).is_err());
        assert_eq!(count(&json!(3)).unwrap(), 3);
        assert!(count(&json!(-1)).unwrap_err().contains("-1"));
        assert!(country(&json!("SGP")).is_err());
        assert!(echo(&"x".repeat(100)).ends_with("..."));
    }
}
