//! JSON Lines to typed steps.
//!
//! Every line is parsed on its own: a bad line becomes a [`ParseError`] in its place and the
//! lines after it still parse, so replay can report it and go on. A line is checked in this
//! order: valid UTF-8 and JSON (an object, no key given twice), a known `op`, no key the op
//! does not take (before anything else, so a misspelt key is reported as such rather than as
//! a missing one), then every key's value.

use std::fmt;
use std::path::Path;

use cardcore_core::{
    CardStatus, CardType, Channel, Granularity, LimitType, ProfileStatus, RuleOperation, RuleType,
    TimeZone, TransactionState,
};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::step::*;
use super::target::{EntryMode, ProcessingType};
use super::values::{self as v, ValueResult};

/// The longest line read; longer ones are refused whole (a `raw` message at its largest
/// is 131,070 hex digits, so this leaves room for it).
pub const LINE_BYTES_MAX: usize = 256 * 1024;
const _: () = assert!(LINE_BYTES_MAX > 2 * v::RAW_MESSAGE_BYTES_MAX + 1024);

/// A scenario file, parsed line by line.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// How reports name the file (the path as given).
    pub name: String,
    /// One entry per step line, in file order; comments and blank lines are left out.
    pub lines: Vec<Result<Step, ParseError>>,
}

impl Scenario {
    /// Parses the text of a scenario file; never fails as a whole.
    pub fn parse(name: &str, text: &[u8]) -> Scenario {
        let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        let lines = text
            .split(|&b| b == b'\n')
            .enumerate()
            .filter_map(|(i, raw)| parse_line(i + 1, raw))
            .collect();
        Scenario {
            name: name.to_owned(),
            lines,
        }
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> std::io::Result<Scenario> {
        let text = std::fs::read(path)?;
        Ok(Scenario::parse(&path.display().to_string(), &text))
    }

    /// The steps that parsed.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.lines.iter().filter_map(|l| l.as_ref().ok())
    }

    /// The lines that did not.
    pub fn errors(&self) -> impl Iterator<Item = &ParseError> {
        self.lines.iter().filter_map(|l| l.as_ref().err())
    }
}

/// Why a line is not a step. `key` names the offending key (`expect.state` when nested).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub key: Option<String>,
    pub message: String,
}

impl ParseError {
    /// The message with the key, without the line (a report puts `FILE:LINE:` before it).
    pub fn detail(&self) -> String {
        match &self.key {
            Some(key) => format!("key \"{key}\": {}", self.message),
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.detail())
    }
}

impl std::error::Error for ParseError {}

/// Parses one physical line: `None` for a blank line or a comment.
pub fn parse_line(line: usize, raw: &[u8]) -> Option<Result<Step, ParseError>> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let start = raw.iter().position(|b| !b.is_ascii_whitespace())?;
    if raw[start] == b'#' {
        return None;
    }
    let at_line = |e: FieldError| ParseError {
        line,
        key: e.key,
        message: e.message,
    };
    Some(
        parse_object(raw)
            .and_then(parse_step)
            .map(|kind| Step { line, kind })
            .map_err(at_line),
    )
}

/// An error before the line number is known.
#[derive(Debug)]
struct FieldError {
    key: Option<String>,
    message: String,
}

impl FieldError {
    fn line(message: impl Into<String>) -> FieldError {
        FieldError {
            key: None,
            message: message.into(),
        }
    }

    fn key(key: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

type FieldResult<T> = Result<T, FieldError>;

fn parse_object(raw: &[u8]) -> FieldResult<Map<String, Value>> {
    if raw.len() > LINE_BYTES_MAX {
        return Err(FieldError::line(format!(
            "line is longer than {LINE_BYTES_MAX} bytes"
        )));
    }
    let text = std::str::from_utf8(raw).map_err(|_| FieldError::line("line is not valid UTF-8"))?;
    let StrictValue(value) =
        serde_json::from_str(text).map_err(|e| FieldError::line(format!("invalid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(FieldError::line(format!(
            "a step is a JSON object, got {}",
            v::kind_of(&other)
        ))),
    }
}

/// Every op of the format, with the keys it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpName {
    Clock,
    Profile,
    Balance,
    Fx,
    Card,
    CardStatus,
    Permissions,
    CardLimits,
    ProfileLimits,
    Rule,
    ApplyRule,
    UnapplyRule,
    DeleteRule,
    ResetPinCount,
    Auth,
    Incremental,
    Advice,
    Clear,
    Reverse,
    Duplicate,
    Raw,
    ExpectBalance,
    ExpectTxn,
    ExpectLimitUsage,
    ExpectPinTries,
    ExpectInvariants,
}

const AUTH_KEYS: &[&str] = &[
    "txn",
    "card",
    "amount",
    "currency",
    "type",
    "entry",
    "mcc",
    "pin",
    "cvv2",
    "expiry",
    "merchant",
    "country",
    "pre_auth",
    "single_message",
];

/// The three families of ops: setup, traffic and expectation steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpFamily {
    Setup,
    Traffic,
    Expect,
}

impl OpName {
    pub const ALL: [OpName; 26] = [
        OpName::Clock,
        OpName::Profile,
        OpName::Balance,
        OpName::Fx,
        OpName::Card,
        OpName::CardStatus,
        OpName::Permissions,
        OpName::CardLimits,
        OpName::ProfileLimits,
        OpName::Rule,
        OpName::ApplyRule,
        OpName::UnapplyRule,
        OpName::DeleteRule,
        OpName::ResetPinCount,
        OpName::Auth,
        OpName::Incremental,
        OpName::Advice,
        OpName::Clear,
        OpName::Reverse,
        OpName::Duplicate,
        OpName::Raw,
        OpName::ExpectBalance,
        OpName::ExpectTxn,
        OpName::ExpectLimitUsage,
        OpName::ExpectPinTries,
        OpName::ExpectInvariants,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OpName::Clock => "clock",
            OpName::Profile => "profile",
            OpName::Balance => "balance",
            OpName::Fx => "fx",
            OpName::Card => "card",
            OpName::CardStatus => "card_status",
            OpName::Permissions => "permissions",
            OpName::CardLimits => "card_limits",
            OpName::ProfileLimits => "profile_limits",
            OpName::Rule => "rule",
            OpName::ApplyRule => "apply_rule",
            OpName::UnapplyRule => "unapply_rule",
            OpName::DeleteRule => "delete_rule",
            OpName::ResetPinCount => "reset_pin_count",
            OpName::Auth => "auth",
            OpName::Incremental => "incremental",
            OpName::Advice => "advice",
            OpName::Clear => "clear",
            OpName::Reverse => "reverse",
            OpName::Duplicate => "duplicate",
            OpName::Raw => "raw",
            OpName::ExpectBalance => "expect_balance",
            OpName::ExpectTxn => "expect_txn",
            OpName::ExpectLimitUsage => "expect_limit_usage",
            OpName::ExpectPinTries => "expect_pin_tries",
            OpName::ExpectInvariants => "expect_invariants",
        }
    }

    pub fn parse(text: &str) -> Option<OpName> {
        OpName::ALL.into_iter().find(|op| op.as_str() == text)
    }

    /// The keys of the format for this op, besides `op` itself and the expectation key
    /// ([`OpName::expectation_key`]).
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            OpName::Clock => &["set", "advance"],
            OpName::Profile => &["profile", "timezone", "status"],
            OpName::Balance => &["profile", "currency", "amount"],
            OpName::Fx => &["from", "to", "rate", "fee_percent"],
            OpName::Card => &[
                "profile",
                "card",
                "pan",
                "pin",
                "cvv2",
                "expiry",
                "status",
                "currency",
                "type",
                "smart_conversion",
                "locked",
            ],
            OpName::CardStatus => &["card", "status"],
            OpName::Permissions => &["card", "set"],
            OpName::CardLimits => &[
                "card",
                "currency",
                "transaction",
                "daily",
                "monthly",
                "lifetime",
                "delete",
            ],
            OpName::ProfileLimits => &[
                "profile",
                "type",
                "currency",
                "daily",
                "monthly",
                "max_daily",
                "max_monthly",
            ],
            OpName::Rule => &["rule", "type", "operation", "values", "description"],
            OpName::ApplyRule | OpName::UnapplyRule | OpName::DeleteRule => &["rule"],
            OpName::ResetPinCount => &["card"],
            OpName::Auth | OpName::Advice => AUTH_KEYS,
            OpName::Incremental => &["txn", "ref", "amount", "currency"],
            OpName::Clear | OpName::Reverse => &["ref", "amount", "currency"],
            OpName::Duplicate => &["of"],
            OpName::Raw => &["hex"],
            OpName::ExpectBalance => &["profile", "currency", "available", "reserved", "cash"],
            OpName::ExpectTxn => &[
                "txn",
                "state",
                "declineReason",
                "detailedDeclineReason",
                "amount",
                "currency",
            ],
            OpName::ExpectLimitUsage => &["card", "profile", "type", "window", "usage"],
            OpName::ExpectPinTries => &["card", "count"],
            OpName::ExpectInvariants => &[],
        }
    }

    /// Which family the op belongs to; the family decides its expectation key.
    pub fn family(self) -> OpFamily {
        use OpName::*;
        match self {
            Auth | Incremental | Advice | Clear | Reverse | Duplicate | Raw => OpFamily::Traffic,
            ExpectBalance | ExpectTxn | ExpectLimitUsage | ExpectPinTries | ExpectInvariants => {
                OpFamily::Expect
            }
            _ => OpFamily::Setup,
        }
    }

    /// `expect_error` on setup steps, `expect` on traffic steps, nothing on `expect_*`.
    pub fn expectation_key(self) -> Option<&'static str> {
        match self.family() {
            OpFamily::Setup => Some("expect_error"),
            OpFamily::Traffic => Some("expect"),
            OpFamily::Expect => None,
        }
    }

    fn takes(self, key: &str) -> bool {
        key == "op" || self.keys().contains(&key) || self.expectation_key() == Some(key)
    }
}

impl fmt::Display for OpName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn parse_step(mut map: Map<String, Value>) -> FieldResult<StepKind> {
    let op_value = map
        .remove("op")
        .ok_or_else(|| FieldError::line("missing key \"op\""))?;
    let op_text = v::string(&op_value).map_err(|e| FieldError::key("op", e))?;
    let op = OpName::parse(op_text)
        .ok_or_else(|| FieldError::key("op", format!("unknown op {}", v::echo(op_text))))?;
    if let Some(key) = map.keys().find(|k| !op.takes(k)) {
        return Err(FieldError::key(key, unknown_key_message(op)));
    }
    let mut fields = Fields {
        op,
        map,
        prefix: "",
    };
    let kind = match op.family() {
        OpFamily::Traffic => {
            let expect = fields
                .opt("expect", Ok)?
                .map(parse_traffic_expect)
                .transpose()?;
            StepKind::Traffic {
                op: parse_traffic(op, &mut fields)?,
                expect,
            }
        }
        OpFamily::Setup => {
            let expect_error = fields.opt("expect_error", by_ref(v::boolean))?;
            StepKind::Setup {
                op: parse_setup(op, &mut fields)?,
                expect_error,
            }
        }
        OpFamily::Expect => StepKind::Expect(parse_expect(op, &mut fields)?),
    };
    // Every key was checked against the op's list above; one left unread would be a key
    // this parser forgot, and it must not pass unnoticed either.
    match fields.map.keys().next() {
        Some(key) => Err(FieldError::key(
            key,
            format!("key not handled for op \"{op}\""),
        )),
        None => Ok(kind),
    }
}

fn unknown_key_message(op: OpName) -> String {
    let mut keys: Vec<&str> = op.keys().to_vec();
    keys.extend(op.expectation_key());
    if keys.is_empty() {
        format!("unknown key: op \"{op}\" takes no other key")
    } else {
        format!("unknown key for op \"{op}\" (it takes {})", keys.join(", "))
    }
}

/// The keys of one JSON object, taken one by one.
struct Fields<'p> {
    op: OpName,
    map: Map<String, Value>,
    /// Put before key names in errors (`expect.`), for nested objects.
    prefix: &'p str,
}

impl Fields<'_> {
    fn opt<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(Value) -> ValueResult<T>,
    ) -> FieldResult<Option<T>> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(value) => parse(value).map(Some).map_err(|e| self.error(key, e)),
        }
    }

    fn req<T>(&mut self, key: &str, parse: impl FnOnce(Value) -> ValueResult<T>) -> FieldResult<T> {
        match self.opt(key, parse)? {
            Some(value) => Ok(value),
            None => Err(self.error(key, format!("missing key for op \"{}\"", self.op))),
        }
    }

    fn error(&self, key: &str, message: String) -> FieldError {
        FieldError::key(&format!("{}{key}", self.prefix), message)
    }
}

/// Adapts a `&Value` parser to the owned values [`Fields`] hands out.
fn by_ref<T>(parse: impl Fn(&Value) -> ValueResult<T>) -> impl Fn(Value) -> ValueResult<T> {
    move |value| parse(&value)
}

fn card_status(value: &Value) -> ValueResult<CardStatus> {
    let names: Vec<&str> = CardStatus::ALL.iter().map(|s| s.as_str()).collect();
    v::word(value, CardStatus::parse, &names)
}

fn channel(value: &Value) -> ValueResult<Channel> {
    let names: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
    v::word(value, Channel::parse, &names)
}

fn granularity(value: &Value) -> ValueResult<Granularity> {
    v::word(
        value,
        Granularity::parse,
        &["transaction", "daily", "monthly", "lifetime"],
    )
}

fn limit_type(value: &Value) -> ValueResult<LimitType> {
    v::word(value, LimitType::parse, &["PURCHASE", "ATM_WITHDRAWAL"])
}

fn txn_state(value: &Value) -> ValueResult<TransactionState> {
    let names: Vec<&str> = TransactionState::ALL.iter().map(|s| s.as_str()).collect();
    v::word(value, TransactionState::parse, &names)
}

fn parse_setup(op: OpName, f: &mut Fields) -> FieldResult<SetupOp> {
    let name = by_ref(v::name);
    Ok(match op {
        OpName::Clock => SetupOp::Clock(parse_clock(f)?),
        OpName::Profile => SetupOp::Profile(ProfileStep {
            profile: f.req("profile", &name)?,
            timezone: f.opt("timezone", by_ref(timezone))?,
            status: f.opt("status", by_ref(profile_status))?,
        }),
        OpName::Balance => SetupOp::Balance {
            profile: f.req("profile", &name)?,
            currency: f.req("currency", by_ref(v::currency))?,
            amount: f.req("amount", by_ref(v::amount))?,
        },
        OpName::Fx => SetupOp::Fx(parse_fx(f)?),
        OpName::Card => SetupOp::Card(Box::new(parse_card(f)?)),
        OpName::CardStatus => SetupOp::CardStatus {
            card: f.req("card", &name)?,
            status: f.req("status", by_ref(card_status))?,
        },
        OpName::Permissions => SetupOp::Permissions {
            card: f.req("card", &name)?,
            set: f.req("set", by_ref(permission_changes))?,
        },
        OpName::CardLimits => SetupOp::CardLimits(parse_card_limits(f)?),
        OpName::ProfileLimits => SetupOp::ProfileLimits(parse_profile_limits(f)?),
        OpName::Rule => SetupOp::Rule(parse_rule(f)?),
        OpName::ApplyRule => SetupOp::ApplyRule {
            rule: f.req("rule", &name)?,
        },
        OpName::UnapplyRule => SetupOp::UnapplyRule {
            rule: f.req("rule", &name)?,
        },
        OpName::DeleteRule => SetupOp::DeleteRule {
            rule: f.req("rule", &name)?,
        },
        OpName::ResetPinCount => SetupOp::ResetPinCount {
            card: f.req("card", &name)?,
        },
        _ => unreachable!("{op} is not a setup op"),
    })
}

fn timezone(value: &Value) -> ValueResult<TimeZone> {
    let text = v::string(value)?;
    TimeZone::parse(text).map_err(|_| format!("{} is not an IANA time zone", v::echo(text)))
}

fn profile_status(value: &Value) -> ValueResult<ProfileStatus> {
    v::word(
        value,
        ProfileStatus::parse,
        &["ACTIVE", "INACTIVE", "SUSPENDED"],
    )
}

fn parse_clock(f: &mut Fields) -> FieldResult<ClockChange> {
    let set = f.opt("set", by_ref(v::timestamp))?;
    let advance = f.opt("advance", by_ref(v::duration_ms))?;
    match (set, advance) {
        (Some(t), None) => Ok(ClockChange::Set(t)),
        (None, Some(ms)) => Ok(ClockChange::AdvanceMs(ms)),
        (Some(_), Some(_)) => Err(FieldError::key(
            "advance",
            "give either set or advance, not both",
        )),
        (None, None) => Err(FieldError::line("op \"clock\" needs set or advance")),
    }
}

fn parse_fx(f: &mut Fields) -> FieldResult<FxStep> {
    let from = f.req("from", by_ref(v::currency))?;
    let to = f.req("to", by_ref(v::currency))?;
    if from == to {
        return Err(FieldError::key(
            "to",
            format!("from and to are both {from}"),
        ));
    }
    Ok(FxStep {
        from,
        to,
        rate: f.req("rate", by_ref(v::rate))?,
        fee_percent: f
            .opt("fee_percent", by_ref(v::percent))?
            .unwrap_or_default(),
    })
}

fn parse_card(f: &mut Fields) -> FieldResult<CardStep> {
    let card_type = |value: &Value| {
        v::word(
            value,
            |t| match t {
                "VIRTUAL" => Some(CardType::Virtual),
                "PHYSICAL" => Some(CardType::Physical),
                _ => None,
            },
            &["VIRTUAL", "PHYSICAL"],
        )
    };
    Ok(CardStep {
        profile: f.req("profile", by_ref(v::name))?,
        card: f.req("card", by_ref(v::name))?,
        pan: f.req("pan", by_ref(v::pan))?,
        pin: f.opt("pin", by_ref(v::pin))?,
        cvv2: f.opt("cvv2", by_ref(v::cvv2))?,
        expiry: f.opt("expiry", by_ref(v::expiry))?,
        status: f
            .opt("status", by_ref(card_status))?
            .unwrap_or(CardStatus::Active),
        currency: f.opt("currency", by_ref(v::currency))?,
        card_type: f.opt("type", by_ref(card_type))?,
        smart_conversion: f
            .opt("smart_conversion", by_ref(v::boolean))?
            .unwrap_or(true),
        locked: f
            .opt("locked", by_ref(|l| v::list(l, channel)))?
            .unwrap_or_default(),
    })
}

/// `{"ECOM": false, ...}`: at least one permission, each named once (JSON forbids repeats
/// here as everywhere).
fn permission_changes(value: &Value) -> ValueResult<Vec<(Channel, bool)>> {
    let map = value.as_object().ok_or_else(|| {
        format!(
            "expected an object like {{\"ECOM\": false}}, got {}",
            v::kind_of(value)
        )
    })?;
    if map.is_empty() {
        return Err("name at least one permission".to_owned());
    }
    map.iter()
        .map(|(name, on)| {
            let channel = channel(&Value::String(name.clone()))?;
            let on = v::boolean(on).map_err(|e| format!("{name}: {e}"))?;
            Ok((channel, on))
        })
        .collect()
}

fn parse_card_limits(f: &mut Fields) -> FieldResult<CardLimitsStep> {
    let card = f.req("card", by_ref(v::name))?;
    let mut values = Vec::new();
    for g in Granularity::ALL {
        let key = g.as_str().to_ascii_lowercase();
        if let Some(amount) = f.opt(&key, by_ref(v::amount))? {
            values.push((g, amount));
        }
    }
    let delete = f.opt("delete", by_ref(|l| v::list(l, granularity)))?;
    let currency = f.opt("currency", by_ref(v::currency))?;
    match (delete, values.is_empty()) {
        (Some(_), false) => Err(FieldError::key(
            "delete",
            "give limit values or delete, not both",
        )),
        (Some(which), true) if which.is_empty() => {
            Err(FieldError::key("delete", "name at least one granularity"))
        }
        // The currency is allowed with delete (as an API call would carry it) but unused.
        (Some(which), true) => Ok(CardLimitsStep::Delete { card, which }),
        (None, true) => Err(FieldError::line(
            "op \"card_limits\" needs transaction, daily, monthly or lifetime, or delete",
        )),
        (None, false) => {
            let currency = currency
                .ok_or_else(|| FieldError::key("currency", "missing key for op \"card_limits\""))?;
            Ok(CardLimitsStep::Set {
                card,
                currency,
                values,
            })
        }
    }
}

fn parse_profile_limits(f: &mut Fields) -> FieldResult<ProfileLimitsStep> {
    Ok(ProfileLimitsStep {
        profile: f.req("profile", by_ref(v::name))?,
        limit_type: f.req("type", by_ref(limit_type))?,
        currency: f.req("currency", by_ref(v::currency))?,
        daily: f.req("daily", by_ref(v::amount))?,
        monthly: f.req("monthly", by_ref(v::amount))?,
        max_daily: f.opt("max_daily", by_ref(v::amount))?,
        max_monthly: f.opt("max_monthly", by_ref(v::amount))?,
    })
}

fn parse_rule(f: &mut Fields) -> FieldResult<RuleStep> {
    let rule_type = |value: &Value| {
        v::word(
            value,
            |t| match t {
                "MCC" => Some(RuleType::Mcc),
                "CURRENCY" => Some(RuleType::Currency),
                _ => None,
            },
            &["MCC", "CURRENCY"],
        )
    };
    let operation = |value: &Value| {
        v::word(
            value,
            |t| match t {
                "ALLOW" => Some(RuleOperation::Allow),
                "BLOCK" => Some(RuleOperation::Block),
                _ => None,
            },
            &["ALLOW", "BLOCK"],
        )
    };
    Ok(RuleStep {
        rule: f.req("rule", by_ref(v::name))?,
        rule_type: f.req("type", by_ref(rule_type))?,
        operation: f.req("operation", by_ref(operation))?,
        values: f.req("values", by_ref(|l| v::list(l, v::rule_value)))?,
        description: f.opt("description", by_ref(|d| v::string(d).map(str::to_owned)))?,
    })
}

fn parse_traffic(op: OpName, f: &mut Fields) -> FieldResult<TrafficOp> {
    let name = by_ref(v::name);
    Ok(match op {
        OpName::Auth => TrafficOp::Auth(Box::new(parse_auth(f)?)),
        OpName::Advice => {
            let step = parse_auth(f)?;
            if step.single_message {
                // 0120 is the advice; a single-message advice (0220) is how cardcore
                // receives clearings, so the combination has no meaning here.
                return Err(FieldError::key(
                    "single_message",
                    "an advice cannot be single_message",
                ));
            }
            TrafficOp::Advice(Box::new(step))
        }
        OpName::Incremental => TrafficOp::Incremental {
            txn: f.req("txn", &name)?,
            of: f.req("ref", &name)?,
            amount: f.req("amount", by_ref(v::amount))?,
            currency: f.req("currency", by_ref(v::currency))?,
        },
        OpName::Clear => TrafficOp::Clear {
            of: f.req("ref", &name)?,
            amount: f.req("amount", by_ref(v::amount))?,
            currency: f.req("currency", by_ref(v::currency))?,
        },
        OpName::Reverse => TrafficOp::Reverse {
            of: f.req("ref", &name)?,
            amount: f.req("amount", by_ref(v::amount))?,
            currency: f.req("currency", by_ref(v::currency))?,
        },
        OpName::Duplicate => TrafficOp::Duplicate {
            of: f.req("of", &name)?,
        },
        OpName::Raw => TrafficOp::Raw {
            bytes: RawBytes(f.req("hex", by_ref(v::hex_bytes))?),
        },
        _ => unreachable!("{op} is not a traffic op"),
    })
}

fn parse_auth(f: &mut Fields) -> FieldResult<AuthStep> {
    let processing = |value: &Value| {
        v::word(
            value,
            ProcessingType::parse,
            &["PURCHASE", "CASH_WITHDRAWAL", "REFUND"],
        )
    };
    let entry = |value: &Value| {
        v::word(
            value,
            EntryMode::parse,
            &[
                "CHIP",
                "CONTACTLESS",
                "MAGSTRIPE",
                "ECOM",
                "WALLET",
                "MANUAL",
            ],
        )
    };
    let step = AuthStep {
        txn: f.req("txn", by_ref(v::name))?,
        card: f.req("card", by_ref(v::name))?,
        amount: f.req("amount", by_ref(v::amount))?,
        currency: f.req("currency", by_ref(v::currency))?,
        processing: f
            .opt("type", by_ref(processing))?
            .unwrap_or(ProcessingType::Purchase),
        entry: f.opt("entry", by_ref(entry))?.unwrap_or(EntryMode::Chip),
        mcc: f.opt("mcc", by_ref(v::mcc))?.unwrap_or(DEFAULT_MCC),
        pin: f.opt("pin", by_ref(v::pin))?,
        cvv2: f.opt("cvv2", by_ref(v::cvv2))?,
        expiry: f.opt("expiry", by_ref(v::expiry))?,
        merchant: f.opt("merchant", by_ref(v::merchant))?,
        country: f.opt("country", by_ref(v::country))?,
        pre_auth: f.opt("pre_auth", by_ref(v::boolean))?.unwrap_or(false),
        single_message: f
            .opt("single_message", by_ref(v::boolean))?
            .unwrap_or(false),
    };
    if step.pre_auth && step.single_message {
        return Err(FieldError::key(
            "single_message",
            "a single-message (0200) transaction cannot be a pre-authorisation",
        ));
    }
    Ok(step)
}

/// The format's default MCC: 5999, miscellaneous retail.
pub const DEFAULT_MCC: cardcore_core::Mcc = cardcore_core::Mcc(5999);

fn parse_traffic_expect(value: Value) -> FieldResult<TrafficExpect> {
    let map = match value {
        Value::Object(map) => map,
        other => {
            let message = format!("expected an object, got {}", v::kind_of(&other));
            return Err(FieldError::key("expect", message));
        }
    };
    const KEYS: &[&str] = &[
        "approved",
        "responseCode",
        "declineReason",
        "detailedDeclineReason",
        "state",
        "approvedAmount",
        "disconnect",
    ];
    if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        let message = format!("unknown key in expect (it takes {})", KEYS.join(", "));
        return Err(FieldError::key(&format!("expect.{key}"), message));
    }
    // Every key of `expect` is optional, so the op named here never reaches a message.
    let mut f = Fields {
        op: OpName::Auth,
        map,
        prefix: "expect.",
    };
    Ok(TrafficExpect {
        approved: f.opt("approved", by_ref(v::boolean))?,
        response_code: f.opt("responseCode", by_ref(v::response_code))?,
        decline_reason: f.opt("declineReason", by_ref(v::reason))?,
        detailed_decline_reason: f.opt("detailedDeclineReason", by_ref(v::reason))?,
        state: f.opt("state", by_ref(txn_state))?,
        approved_amount: f.opt("approvedAmount", by_ref(v::amount))?,
        disconnect: f.opt("disconnect", by_ref(v::boolean))?,
    })
}

fn parse_expect(op: OpName, f: &mut Fields) -> FieldResult<ExpectOp> {
    let name = by_ref(v::name);
    Ok(match op {
        OpName::ExpectBalance => {
            let e = BalanceExpect {
                profile: f.req("profile", &name)?,
                currency: f.req("currency", by_ref(v::currency))?,
                available: f.opt("available", by_ref(v::amount))?,
                reserved: f.opt("reserved", by_ref(v::amount))?,
                cash: f.opt("cash", by_ref(v::amount))?,
            };
            if e.available.is_none() && e.reserved.is_none() && e.cash.is_none() {
                return Err(nothing_to_check(op, "available, reserved or cash"));
            }
            ExpectOp::Balance(e)
        }
        OpName::ExpectTxn => ExpectOp::Txn(parse_expect_txn(f)?),
        OpName::ExpectLimitUsage => ExpectOp::LimitUsage(parse_expect_usage(f)?),
        OpName::ExpectPinTries => ExpectOp::PinTries {
            card: f.req("card", &name)?,
            count: f.req("count", by_ref(v::count))?,
        },
        OpName::ExpectInvariants => ExpectOp::Invariants,
        _ => unreachable!("{op} is not an expectation op"),
    })
}

fn nothing_to_check(op: OpName, keys: &str) -> FieldError {
    FieldError::line(format!("op \"{op}\" needs at least one of {keys}"))
}

fn parse_expect_txn(f: &mut Fields) -> FieldResult<TxnExpect> {
    let e = TxnExpect {
        txn: f.req("txn", by_ref(v::name))?,
        state: f.opt("state", by_ref(txn_state))?,
        decline_reason: f.opt("declineReason", by_ref(v::reason))?,
        detailed_decline_reason: f.opt("detailedDeclineReason", by_ref(v::reason))?,
        amount: f.opt("amount", by_ref(v::amount))?,
        currency: f.opt("currency", by_ref(v::currency))?,
    };
    let nothing = e.state.is_none()
        && e.decline_reason.is_none()
        && e.detailed_decline_reason.is_none()
        && e.amount.is_none()
        && e.currency.is_none();
    if nothing {
        let keys = "state, declineReason, detailedDeclineReason, amount or currency";
        return Err(nothing_to_check(OpName::ExpectTxn, keys));
    }
    Ok(e)
}

fn parse_expect_usage(f: &mut Fields) -> FieldResult<LimitUsageExpect> {
    let card = f.opt("card", by_ref(v::name))?;
    let profile = f.opt("profile", by_ref(v::name))?;
    let limit_type = f.opt("type", by_ref(limit_type))?;
    let scope = match (card, profile, limit_type) {
        (Some(card), None, None) => UsageScope::Card(card),
        (None, Some(profile), Some(t)) => UsageScope::Profile(profile, t),
        (Some(_), Some(_), _) => {
            return Err(FieldError::key("profile", "give card or profile, not both"))
        }
        (Some(_), None, Some(_)) => {
            return Err(FieldError::key(
                "type",
                "type goes with profile, not with card",
            ))
        }
        (None, Some(_), None) => {
            return Err(FieldError::key(
                "type",
                "missing key: profile limits need a type",
            ))
        }
        (None, None, _) => {
            return Err(FieldError::key("card", "missing key: give card or profile"))
        }
    };
    Ok(LimitUsageExpect {
        scope,
        window: f.req("window", by_ref(granularity))?,
        usage: f.req("usage", by_ref(v::amount))?,
    })
}

/// A JSON value read like `serde_json::Value`, except that an object naming the same key
/// twice is an error: keeping only the last one would silently ignore the first.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "key {key:?} is given twice"
                )));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}
