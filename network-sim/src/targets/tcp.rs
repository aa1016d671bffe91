//! The TCP target: a running `cardcore serve --sandbox`, driven the way an acquirer and an
//! operator drive it. Traffic goes as ISO 8583 over one persistent TCP connection (each
//! message framed by a 2-byte big-endian length), built by [`super::iso::build`] so that
//! both targets send the same bytes; setup and expectations go through the management HTTP
//! API with the operator token, on the routes docs/http-api.md ("Sandbox") maps to each
//! [`Target`] method.
//!
//! PIN blocks are encrypted under the zone PIN key that [`SimKeys`] derives, so the server
//! must run with that key: `cardcore serve --sandbox --zone-pin-key HEX`, where `HEX` is
//! `SimKeys::zone_pin_key_bytes()` in hex. With another key every PIN is wrong.
//!
//! Refusals mirror the in-process target: what the engine refuses as invalid, unknown or
//! conflicting (HTTP 400, 404, 409) is [`TargetError::Refused`]; anything else that is not a
//! success (401 or 403: a wrong token; 404 for an unknown route: not a sandbox; 5xx; I/O)
//! is [`TargetError::Failed`].
//!
//! The ISO connection: one message at a time, and the answer is the next frame whose STAN
//! is the request's. A server that closes the connection, or does not answer within the
//! answer timeout, gives a `disconnected` outcome; the connection is then dropped (a late
//! answer must never be taken for the next message's) and the next message opens a new one.
//! Before each message the connection is checked, so one the server closed while idle is
//! replaced instead of being reported as a disconnect.
//!
//! The HTTP client is a small HTTP/1.1 client over a plain socket with one request per
//! connection (`Connection: close`): the end of an answer is the end of its connection, and
//! a request is never sent twice, so a POST the server may have carried out is never
//! repeated by a retry on a stale kept-alive connection.
//!
//! The clients that [`Target::fork`] makes for setting a population up keep their
//! connection open between calls instead: a million cards are millions of calls, and a
//! connection per call cost about as much as the call. They still never send a request
//! twice: a kept connection that the server has closed is noticed before sending (and a new
//! one opened); one that fails after sending is an error, as any failed call.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use cardcore_core::iso8583::{parse, salvage, FRAME_HEADER_LEN, FRAME_MAX_LEN};
use cardcore_core::pin::ZonePinKey;
use cardcore_core::{
    CardStatus, CardToken, CardType, Channel, Currency, Granularity, LimitType, Money, ProfileId,
    ProfileStatus, RuleId, RuleOperation, RuleType, TimeZone, Timestamp, TransactionState,
};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::iso::{build, read_answer};
use super::keys::SimKeys;
use crate::scenario::{
    BalanceView, CardRef, CardSetup, FxRate, LimitScope, ProfileLimitSetup, ProfileSetup,
    ProfileUpdate, RuleSetup, Target, TargetError, TrafficMessage, TrafficOutcome, TxnRef, TxnView,
};

/// How long a message waits for its answer before the connection counts as dropped.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a connection (ISO or HTTP) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one HTTP read or write may block.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest HTTP answer read; every answer of the routes used here is far smaller.
pub const HTTP_RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// Bytes read from a kept-alive HTTP connection at a time.
const HTTP_READ_CHUNK_BYTES: usize = 8 * 1024;
/// Answers with another STAN skipped while waiting for one message's answer.
pub const STALE_ANSWERS_MAX: usize = 16;
/// The application id on the spend-control routes. The operator token reaches every
/// application, and one engine holds one application's rules.
pub const SPEND_CONTROLS_CLIENT_ID: &str = "cardcore";
/// The operator token a sandbox server accepts unless given another.
pub const SANDBOX_ADMIN_TOKEN: &str = "sandbox";

const _: () = assert!(FRAME_MAX_LEN <= u16::MAX as usize);

/// A running sandbox server: ISO 8583 over TCP plus the management HTTP API.
pub struct TcpTarget {
    zpk: ZonePinKey,
    iso: IsoLink,
    admin: AdminApi,
}

impl std::fmt::Debug for TcpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTarget")
            .field("iso", &self.iso.target)
            .field("admin", &self.admin.url)
            .finish_non_exhaustive()
    }
}

fn failed(e: impl std::fmt::Display) -> TargetError {
    TargetError::Failed(e.to_string())
}

/// The words of an error, without its kind.
fn reason(e: TargetError) -> String {
    match e {
        TargetError::Refused(m) | TargetError::Failed(m) => m,
    }
}

impl TcpTarget {
    /// Connects to a server started with `--sandbox`: `iso_addr` is `HOST:PORT` (or
    /// `tcp://HOST:PORT`) of its ISO 8583 listener, `admin_url` is `http://HOST:PORT` of its
    /// management API, `admin_token` its operator token. Fails at once, with the reason, when
    /// either cannot be reached, the server is not in sandbox mode, or the token is wrong.
    pub fn connect(
        iso_addr: &str,
        admin_url: &str,
        admin_token: &str,
        keys: SimKeys,
    ) -> Result<TcpTarget, TargetError> {
        let admin = AdminApi::new(admin_url, admin_token)?;
        admin.get::<ClockOut>("/v1/sandbox/clock").map_err(|e| {
            failed(format!(
                "{admin_url} does not serve the sandbox API: {}",
                reason(e)
            ))
        })?;
        let mut iso = IsoLink::new(iso_addr, ANSWER_TIMEOUT)?;
        iso.open()?;
        Ok(TcpTarget {
            zpk: keys.zone_pin_key(),
            iso,
            admin,
        })
    }

    /// Waits `timeout` for each answer instead of [`ANSWER_TIMEOUT`].
    pub fn with_answer_timeout(mut self, timeout: Duration) -> TcpTarget {
        self.iso.answer_timeout = timeout;
        self
    }
}

fn card_path(card: CardRef) -> String {
    format!("/v3/spend/profiles/{}/cards/{}", card.profile, card.token)
}

fn card_path_v4(card: CardRef) -> String {
    format!("/v4/spend/profiles/{}/cards/{}", card.profile, card.token)
}

fn sandbox_card_path(card: CardRef) -> String {
    format!("/v1/sandbox/profiles/{}/cards/{}", card.profile, card.token)
}

fn rules_path() -> String {
    format!("/v3/spend/applications/{SPEND_CONTROLS_CLIENT_ID}/spend-controls/rules")
}

/// The lower-case name the limit routes take (`daily`).
fn window_name(window: Granularity) -> String {
    window.as_str().to_ascii_lowercase()
}

/// The clock the server answered with must be the one asked for: a server whose clock
/// cannot be set would make every time-based expectation meaningless.
fn check_clock(answer: &ClockOut, wanted: Timestamp) -> Result<(), TargetError> {
    if Timestamp::parse_rfc3339(&answer.now) == Some(wanted) {
        return Ok(());
    }
    Err(failed(format!(
        "the server's clock reads {} after being set to {}",
        answer.now,
        wanted.to_rfc3339()
    )))
}

impl Target for TcpTarget {
    fn reset(&mut self, now: Timestamp) -> Result<(), TargetError> {
        let body = NowBody {
            now: now.to_rfc3339(),
        };
        let answer: ClockOut = self.admin.send("POST", "/v1/sandbox/reset", &body)?;
        check_clock(&answer, now)
    }

    fn set_clock(&mut self, now: Timestamp) -> Result<(), TargetError> {
        let body = NowBody {
            now: now.to_rfc3339(),
        };
        let answer: ClockOut = self.admin.send("PUT", "/v1/sandbox/clock", &body)?;
        check_clock(&answer, now)
    }

    fn advance_clock(&mut self, by_ms: i64) -> Result<(), TargetError> {
        let body = AdvanceBody { by_ms };
        self.admin
            .send_unit("POST", "/v1/sandbox/clock/advance", Some(&body))
    }

    fn create_profile(&mut self, setup: &ProfileSetup) -> Result<ProfileId, TargetError> {
        let body = ProfileBody {
            status: Some(setup.status),
            time_zone: Some(setup.timezone),
        };
        let created: IdOut = self.admin.send("POST", "/v1/sandbox/profiles", &body)?;
        Ok(ProfileId(created.id))
    }

    fn update_profile(
        &mut self,
        profile: ProfileId,
        update: &ProfileUpdate,
    ) -> Result<(), TargetError> {
        let body = ProfileBody {
            status: update.status,
            time_zone: update.timezone,
        };
        let path = format!("/v1/sandbox/profiles/{profile}");
        self.admin.send_unit("PATCH", &path, Some(&body))
    }

    fn top_up(&mut self, profile: ProfileId, amount: Money) -> Result<(), TargetError> {
        let body = AmountBody::of(amount);
        let path = format!("/v1/sandbox/profiles/{profile}/top-up");
        self.admin.send_unit("POST", &path, Some(&body))
    }

    fn set_fx_rate(&mut self, rate: &FxRate) -> Result<(), TargetError> {
        let body = FxBody {
            from: rate.from,
            to: rate.to,
            rate: Exact(rate.rate),
            fee_percent: Exact(rate.fee_percent),
        };
        self.admin
            .send_unit("PUT", "/v1/sandbox/fx-rates", Some(&body))
    }

    fn issue_card(&mut self, setup: &CardSetup) -> Result<CardToken, TargetError> {
        let body = CardBody {
            pan: setup.pan.expose_digits(),
            pin: setup.pin.as_ref().map(|p| p.expose_digits()),
            cvv2: setup.cvv2.as_ref().map(|c| c.expose_digits()),
            expiry: format!("{:04}-{:02}", setup.expiry.year, setup.expiry.month),
            status: setup.status,
            currency: setup.currency,
            card_type: setup.card_type,
            smart_conversion: setup.smart_conversion,
            locked: &setup.locked,
        };
        let path = format!("/v1/sandbox/profiles/{}/cards", setup.profile);
        let card: IssuedCardOut = self.admin.send("POST", &path, &body)?;
        Ok(card.token)
    }

    fn set_card_status(&mut self, card: CardRef, status: CardStatus) -> Result<(), TargetError> {
        let path = format!("{}/status", card_path(card));
        self.admin
            .send_unit("PUT", &path, Some(&StatusBody { status }))
    }

    fn set_permissions(
        &mut self,
        card: CardRef,
        changes: &[(Channel, bool)],
    ) -> Result<(), TargetError> {
        if changes.is_empty() {
            // The API refuses an empty bulk update; the engine takes it as a no-op on a card
            // that exists, which is what is checked here.
            let path = format!("{}/spending-permissions", card_path(card));
            return self.admin.get::<serde::de::IgnoredAny>(&path).map(|_| ());
        }
        let body = PermissionsBody {
            permissions: changes
                .iter()
                .map(|&(channel, is_enabled)| PermissionChange {
                    channel,
                    is_enabled,
                })
                .collect(),
        };
        let path = format!("{}/spending-permissions", card_path_v4(card));
        self.admin.send_unit("PATCH", &path, Some(&body))
    }

    fn set_card_limits(
        &mut self,
        card: CardRef,
        values: &[(Granularity, Money)],
    ) -> Result<(), TargetError> {
        let Some(currency) = values.first().map(|(_, m)| m.currency) else {
            return Ok(());
        };
        if values.iter().any(|(_, m)| m.currency != currency) {
            return Err(TargetError::Refused(
                "card limits must share one currency".into(),
            ));
        }
        let body = CardLimitsBody::of(values);
        let path = format!("{}/spend-limits", card_path_v4(card));
        self.admin.send_unit("PATCH", &path, Some(&body))
    }

    fn delete_card_limits(
        &mut self,
        card: CardRef,
        which: &[Granularity],
    ) -> Result<(), TargetError> {
        let path = format!("{}/spend-limits", card_path_v4(card));
        let current: CardLimitsOut = self.admin.get(&path)?;
        if !current.any_set() {
            return Ok(());
        }
        // One granularity per request; removing one cannot be refused once the card is
        // known, so the update is still all or nothing.
        let mut done = Vec::with_capacity(which.len());
        for &granularity in which {
            if done.contains(&granularity) {
                continue;
            }
            let one = format!("{path}/{}", window_name(granularity));
            self.admin.send_unit::<()>("DELETE", &one, None)?;
            done.push(granularity);
        }
        Ok(())
    }

    fn set_profile_limit(
        &mut self,
        profile: ProfileId,
        limit: &ProfileLimitSetup,
    ) -> Result<(), TargetError> {
        let body = ProfileLimitBody {
            limit_type: limit.limit_type,
            aggregate_window: AggregateWindowBody {
                daily: WindowBody::of(limit.daily, limit.max_daily),
                monthly: WindowBody::of(limit.monthly, limit.max_monthly),
            },
        };
        let path = format!("/v4/spend/profiles/{profile}/spend-limits");
        self.admin.send_unit("PATCH", &path, Some(&body))
    }

    fn reset_pin_count(&mut self, card: CardRef) -> Result<(), TargetError> {
        let path = format!("{}/reset-pin-count", card_path(card));
        self.admin.send_unit::<()>("POST", &path, None)
    }

    fn create_rule(&mut self, setup: &RuleSetup) -> Result<RuleId, TargetError> {
        let body = RuleBody {
            rule_type: setup.rule_type,
            operation: setup.operation,
            description: &setup.description,
            values: &setup.values,
        };
        let rule: IdOut = self.admin.send("POST", &rules_path(), &body)?;
        Ok(RuleId(rule.id))
    }

    fn apply_rule(&mut self, rule: RuleId) -> Result<(), TargetError> {
        let path = format!("{}/apply", rules_path());
        self.admin
            .send_unit("POST", &path, Some(&RuleRefBody::of(rule)))
    }

    fn unapply_rule(&mut self, rule: RuleId) -> Result<(), TargetError> {
        let path = format!("{}/unapply", rules_path());
        self.admin
            .send_unit("POST", &path, Some(&RuleRefBody::of(rule)))
    }

    fn delete_rule(&mut self, rule: RuleId) -> Result<(), TargetError> {
        let path = format!("{}/{}", rules_path(), rule.0);
        self.admin.send_unit::<()>("DELETE", &path, None)
    }

    fn send(&mut self, message: &TrafficMessage) -> Result<TrafficOutcome, TargetError> {
        let (bytes, stan) = match message {
            TrafficMessage::Raw(bytes) => (bytes.clone(), salvage(bytes).stan),
            TrafficMessage::Card(m) => (build(m, &self.zpk).map_err(failed)?, Some(m.ids.stan)),
        };
        Ok(match self.iso.exchange(&bytes, stan)? {
            Some(answer) => read_answer(&answer),
            None => TrafficOutcome {
                disconnected: true,
                ..TrafficOutcome::default()
            },
        })
    }

    fn balance(
        &mut self,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<Option<BalanceView>, TargetError> {
        let path = format!("/v4/profiles/{profile}/balances?types=STANDARD");
        let balances: Vec<BalanceOut> = self.admin.get(&path)?;
        balances
            .iter()
            .find(|b| b.currency == currency)
            .map(BalanceOut::view)
            .transpose()
    }

    fn transaction(&mut self, txn: TxnRef) -> Result<TxnView, TargetError> {
        let path = format!("/v1/sandbox/transactions/{}", txn.id);
        let out: TxnOut = self.admin.get(&path)?;
        Ok(TxnView {
            state: out.state,
            decline_reason: out.decline_reason,
            detailed_decline_reason: out.detailed_decline_reason,
            amount: out.amount.money()?,
        })
    }

    fn limit_usage(
        &mut self,
        scope: LimitScope,
        window: Granularity,
    ) -> Result<Money, TargetError> {
        let window = window_name(window);
        let path = match scope {
            LimitScope::Card(card) => {
                format!("{}/limit-usage?window={window}", sandbox_card_path(card))
            }
            LimitScope::Profile(profile, limit_type) => format!(
                "/v1/sandbox/profiles/{profile}/limit-usage?type={}&window={window}",
                limit_type.as_str()
            ),
        };
        let out: UsageOut = self.admin.get(&path)?;
        out.usage.money()
    }

    fn pin_tries(&mut self, card: CardRef) -> Result<u32, TargetError> {
        let out: SandboxCardOut = self.admin.get(&sandbox_card_path(card))?;
        Ok(out.pin_tries)
    }

    fn invariant_violations(&mut self) -> Result<Vec<String>, TargetError> {
        let out: InvariantsOut = self.admin.get("/v1/sandbox/invariants")?;
        Ok(out.violations)
    }

    /// A client of the same server: the same API and token, and an ISO connection that is
    /// opened only if it sends a message. Every HTTP call has its own connection anyway.
    fn fork(&self) -> Option<Box<dyn Target + Send>> {
        let iso = IsoLink {
            target: self.iso.target.clone(),
            addrs: self.iso.addrs.clone(),
            stream: None,
            answer_timeout: self.iso.answer_timeout,
        };
        Some(Box::new(TcpTarget {
            zpk: self.zpk.clone(),
            iso,
            admin: self.admin.kept_alive(),
        }))
    }
}

// ---------------------------------------------------------------------------------------
// Request bodies, as docs/http-api.md gives them. Amounts are JSON numbers with their exact
// digits, as the reference sends them.

/// A decimal written as a JSON number with its exact digits (`10.50`), never through `f64`.
struct Exact(Decimal);

impl Serialize for Exact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

#[derive(Serialize)]
struct NowBody {
    now: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdvanceBody {
    by_ms: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<ProfileStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_zone: Option<TimeZone>,
}

/// `{amount, currency}`: the sandbox top-up and every spend-limit value.
#[derive(Serialize)]
struct AmountBody {
    amount: Exact,
    currency: Currency,
}

impl AmountBody {
    fn of(money: Money) -> AmountBody {
        AmountBody {
            amount: Exact(money.to_decimal()),
            currency: money.currency,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FxBody {
    from: Currency,
    to: Currency,
    rate: Exact,
    fee_percent: Exact,
}

/// The card as the issuer holds it. It carries the PAN, PIN and CVV2 in clear, so it has
/// no `Debug` and never appears in an error.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CardBody<'a> {
    pan: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cvv2: Option<&'a str>,
    expiry: String,
    status: CardStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<Currency>,
    #[serde(rename = "type")]
    card_type: CardType,
    smart_conversion: bool,
    locked: &'a [Channel],
}

#[derive(Serialize)]
struct StatusBody {
    status: CardStatus,
}

#[derive(Serialize)]
struct PermissionsBody {
    permissions: Vec<PermissionChange>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PermissionChange {
    #[serde(rename = "type")]
    channel: Channel,
    is_enabled: bool,
}

#[derive(Serialize)]
struct CardWindowBody {
    value: AmountBody,
}

#[derive(Serialize, Default)]
struct CardLimitsBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction: Option<CardWindowBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    daily: Option<CardWindowBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    monthly: Option<CardWindowBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifetime: Option<CardWindowBody>,
}

impl CardLimitsBody {
    /// A granularity given twice takes its last value, as the engine applies changes in
    /// order.
    fn of(values: &[(Granularity, Money)]) -> CardLimitsBody {
        let mut body = CardLimitsBody::default();
        for &(granularity, money) in values {
            let window = Some(CardWindowBody {
                value: AmountBody::of(money),
            });
            match granularity {
                Granularity::Transaction => body.transaction = window,
                Granularity::Daily => body.daily = window,
                Granularity::Monthly => body.monthly = window,
                Granularity::Lifetime => body.lifetime = window,
            }
        }
        body
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileLimitBody {
    #[serde(rename = "type")]
    limit_type: LimitType,
    aggregate_window: AggregateWindowBody,
}

#[derive(Serialize)]
struct AggregateWindowBody {
    daily: WindowBody,
    monthly: WindowBody,
}

/// One profile-limit window; `max` (operator only) is sent only when the scenario gives it.
#[derive(Serialize)]
struct WindowBody {
    value: AmountBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<AmountBody>,
}

impl WindowBody {
    fn of(value: Money, max: Option<Money>) -> WindowBody {
        WindowBody {
            value: AmountBody::of(value),
            max: max.map(AmountBody::of),
        }
    }
}

#[derive(Serialize)]
struct RuleBody<'a> {
    #[serde(rename = "type")]
    rule_type: RuleType,
    operation: RuleOperation,
    description: &'a str,
    values: &'a [String],
}

/// `{"ruleId": "123"}`: a string, as in the reference.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleRefBody {
    rule_id: String,
}

impl RuleRefBody {
    fn of(rule: RuleId) -> RuleRefBody {
        RuleRefBody {
            rule_id: rule.0.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Answers: only the fields this target reads; the others are ignored.

/// A JSON number read from its text, so that no digit is lost on the way to [`Money`].
struct ExactIn(Decimal);

impl<'de> Deserialize<'de> for ExactIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let text = raw.get().trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        let exact = if text.contains(['e', 'E']) {
            Decimal::from_scientific(text)
        } else {
            Decimal::from_str_exact(text)
        };
        exact
            .map(ExactIn)
            .map_err(|_| serde::de::Error::custom("expected a decimal number"))
    }
}

fn money_of(amount: &ExactIn, currency: Currency) -> Result<Money, TargetError> {
    Money::from_decimal(amount.0, currency).map_err(|e| {
        failed(format!(
            "the server answered an amount that is not money: {e}"
        ))
    })
}

/// `{amount, currency}` in answers.
#[derive(Deserialize)]
struct AmountOut {
    amount: ExactIn,
    currency: Currency,
}

impl AmountOut {
    fn money(&self) -> Result<Money, TargetError> {
        money_of(&self.amount, self.currency)
    }
}

/// `{value, currency}` in balance answers.
#[derive(Deserialize)]
struct ValueOut {
    value: ExactIn,
    currency: Currency,
}

impl ValueOut {
    fn money(&self) -> Result<Money, TargetError> {
        money_of(&self.value, self.currency)
    }
}

#[derive(Deserialize)]
struct ClockOut {
    now: String,
}

/// A created profile or rule.
#[derive(Deserialize)]
struct IdOut {
    id: u64,
}

#[derive(Deserialize)]
struct IssuedCardOut {
    token: CardToken,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SandboxCardOut {
    pin_tries: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BalanceOut {
    currency: Currency,
    amount: ValueOut,
    reserved_amount: ValueOut,
    cash_amount: ValueOut,
}

impl BalanceOut {
    fn view(&self) -> Result<BalanceView, TargetError> {
        Ok(BalanceView {
            available: self.amount.money()?,
            reserved: self.reserved_amount.money()?,
            cash: self.cash_amount.money()?,
        })
    }
}

/// A card's limits: each granularity `null` when not set.
#[derive(Deserialize)]
struct CardLimitsOut {
    transaction: Option<serde::de::IgnoredAny>,
    daily: Option<serde::de::IgnoredAny>,
    monthly: Option<serde::de::IgnoredAny>,
    lifetime: Option<serde::de::IgnoredAny>,
}

impl CardLimitsOut {
    fn any_set(&self) -> bool {
        self.transaction.is_some()
            || self.daily.is_some()
            || self.monthly.is_some()
            || self.lifetime.is_some()
    }
}

#[derive(Deserialize)]
struct UsageOut {
    usage: AmountOut,
}

#[derive(Deserialize)]
struct InvariantsOut {
    violations: Vec<String>,
}

/// The sandbox's transaction: `amount` is what it stands at, computed by the server as the
/// in-process target's `txn_view` does.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TxnOut {
    state: TransactionState,
    decline_reason: Option<String>,
    detailed_decline_reason: Option<String>,
    amount: AmountOut,
}

/// The API's error shape: `detail`, and `errors[0].ref` naming the field at fault.
#[derive(Deserialize, Default)]
struct ErrorOut {
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<FieldErrorOut>,
}

#[derive(Deserialize)]
struct FieldErrorOut {
    #[serde(rename = "ref", default)]
    field: String,
}

// ---------------------------------------------------------------------------------------
// The management API over HTTP/1.1.

/// The management API at one base URL, called with the operator token.
struct AdminApi {
    /// As given, for messages.
    url: String,
    /// `HOST:PORT`, the `Host` header.
    authority: String,
    addrs: Vec<SocketAddr>,
    /// A path prefix the API is served under (`""` at the root).
    base_path: String,
    /// Never shown: not in `Debug`, errors or logs.
    token: String,
    /// `Some` when calls share one connection (see the module documentation): the open
    /// connection, if any.
    kept: Option<RefCell<Option<TcpStream>>>,
}

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpReply {
    status: u16,
    body: Vec<u8>,
}

impl AdminApi {
    fn new(url: &str, token: &str) -> Result<AdminApi, TargetError> {
        let (authority, base_path) = split_http_url(url)?;
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(failed(
                "the admin token must be printable ASCII without spaces",
            ));
        }
        let addrs = resolve(&authority)?;
        Ok(AdminApi {
            url: url.to_owned(),
            authority,
            addrs,
            base_path,
            token: token.to_owned(),
            kept: None,
        })
    }

    /// The same API, called over one connection kept open between calls.
    fn kept_alive(&self) -> AdminApi {
        AdminApi {
            url: self.url.clone(),
            authority: self.authority.clone(),
            addrs: self.addrs.clone(),
            base_path: self.base_path.clone(),
            token: self.token.clone(),
            kept: Some(RefCell::new(None)),
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, TargetError> {
        let reply = self.call("GET", path, None)?;
        decode(path, &reply.body)
    }

    fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, TargetError> {
        let json = serde_json::to_vec(body).map_err(failed)?;
        let reply = self.call(method, path, Some(&json))?;
        decode(path, &reply.body)
    }

    /// A call whose answer is not needed beyond its status.
    fn send_unit<B: Serialize>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), TargetError> {
        let json = body.map(serde_json::to_vec).transpose().map_err(failed)?;
        self.call(method, path, json.as_deref()).map(|_| ())
    }

    /// One request; any answer but a 2xx is an error (see [`refusal`]).
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpReply, TargetError> {
        let reply = self
            .exchange(method, path, body)
            .map_err(|e| failed(format!("{method} {path} at {}: {e}", self.url)))?;
        if (200..300).contains(&reply.status) {
            Ok(reply)
        } else {
            Err(refusal(method, path, &reply))
        }
    }

    fn exchange(&self, method: &str, path: &str, body: Option<&[u8]>) -> io::Result<HttpReply> {
        let wire = self.request(method, path, body.unwrap_or_default());
        if let Some(kept) = &self.kept {
            return exchange_kept(&self.addrs, kept, &wire);
        }
        let mut stream = connect_http(&self.addrs)?;
        stream.write_all(&wire)?;
        let mut bytes = Vec::new();
        let limit = HTTP_RESPONSE_BYTES_MAX as u64 + 1;
        stream.take(limit).read_to_end(&mut bytes)?;
        if bytes.len() > HTTP_RESPONSE_BYTES_MAX {
            return Err(too_long());
        }
        HttpReply::parse(&bytes).map_err(io::Error::other)
    }

    /// The request's bytes: `Connection: close` unless the connection is kept.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
        let connection = if self.kept.is_some() {
            "keep-alive"
        } else {
            "close"
        };
        let mut wire = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: {connection}\r\n\
             Accept: application/json\r\nAuthorization: Bearer {}\r\n",
            self.base_path, self.authority, self.token
        );
        if !body.is_empty() {
            wire.push_str("Content-Type: application/json\r\n");
        }
        wire.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut wire = wire.into_bytes();
        wire.extend_from_slice(body);
        wire
    }
}

fn too_long() -> io::Error {
    io::Error::other(format!(
        "the answer is longer than {HTTP_RESPONSE_BYTES_MAX} bytes"
    ))
}

fn connect_http(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let stream = connect_any(addrs)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One call on the kept connection: a closed one is replaced before sending, never after;
/// the connection is kept for the next call only if the answer ended where it said and the
/// server did not ask to close.
fn exchange_kept(
    addrs: &[SocketAddr],
    kept: &RefCell<Option<TcpStream>>,
    wire: &[u8],
) -> io::Result<HttpReply> {
    let reusable = kept.borrow_mut().take().filter(still_open);
    let mut stream = match reusable {
        Some(stream) => stream,
        None => connect_http(addrs)?,
    };
    stream.write_all(wire)?;
    let (reply, keep) = read_one_reply(&mut stream)?;
    if keep {
        *kept.borrow_mut() = Some(stream);
    }
    Ok(reply)
}

/// Reads exactly one answer from a connection that stays open: the head, then the body by
/// `Content-Length` or chunks. Whether the connection may carry another call comes with it.
fn read_one_reply(stream: &mut TcpStream) -> io::Result<(HttpReply, bool)> {
    let mut bytes = Vec::with_capacity(HTTP_READ_CHUNK_BYTES);
    let mut chunk = [0u8; HTTP_READ_CHUNK_BYTES];
    loop {
        if let Some(end) = answer_end(&bytes).map_err(io::Error::other)? {
            let reply = HttpReply::parse(&bytes[..end]).map_err(io::Error::other)?;
            let keep = end == bytes.len() && !asks_to_close(&bytes[..end]);
            return Ok((reply, keep));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            // Only an answer without a length ends with its connection.
            return HttpReply::parse(&bytes)
                .map(|reply| (reply, false))
                .map_err(|e| io::Error::other(format!("the connection closed: {e}")));
        }
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() > HTTP_RESPONSE_BYTES_MAX {
            return Err(too_long());
        }
    }
}

/// Where a whole answer ends in `bytes`, once it is all there; `None` while more is due
/// (or the answer has no length and ends with its connection).
fn answer_end(bytes: &[u8]) -> Result<Option<usize>, String> {
    let Some(split) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&bytes[..split]).map_err(|_| "the head is not UTF-8")?;
    let body_start = split + 4;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Ok(chunked_end(&bytes[body_start..]).map(|n| body_start + n));
    }
    match header("content-length") {
        Some(v) => {
            let n: usize = v.parse().map_err(|_| "a bad Content-Length")?;
            Ok((bytes.len() >= body_start + n).then_some(body_start + n))
        }
        None => Ok(None),
    }
}

/// The length of a complete chunked body (through its last, empty chunk), if all there.
fn chunked_end(raw: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let eol = raw[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(&raw[at..at + eol]).ok()?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        at += eol + 2;
        if size == 0 {
            // No trailers are sent to this client: the body ends with an empty line.
            return raw
                .get(at..at + 2)
                .filter(|e| *e == b"\r\n")
                .map(|_| at + 2);
        }
        at = at.checked_add(size)?.checked_add(2)?;
        if at > raw.len() {
            return None;
        }
    }
}

fn asks_to_close(answer: &[u8]) -> bool {
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    String::from_utf8_lossy(&answer[..head_end])
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .any(|(n, v)| {
            n.trim().eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close")
        })
}

fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, TargetError> {
    serde_json::from_slice(body).map_err(|e| failed(format!("unexpected answer from {path}: {e}")))
}

/// Maps a non-2xx answer the way the in-process target maps engine errors: the engine's
/// refusals (400, 404, 409) are `Refused`; a missing route, a wrong token and server errors
/// are failures of the target itself.
fn refusal(method: &str, path: &str, reply: &HttpReply) -> TargetError {
    let error: ErrorOut = serde_json::from_slice(&reply.body).unwrap_or_default();
    let field = error.errors.first().map(|e| e.field.as_str());
    let mut what = format!("{method} {path}: HTTP {}", reply.status);
    if !error.detail.is_empty() {
        what.push_str(&format!(": {}", error.detail));
    }
    if let Some(field) = field.filter(|f| !f.is_empty()) {
        what.push_str(&format!(" ({field})"));
    }
    match reply.status {
        404 if field == Some("path") => TargetError::Failed(what),
        400 | 404 | 409 => TargetError::Refused(what),
        _ => TargetError::Failed(what),
    }
}

/// `http://HOST:PORT[/prefix]` into its authority and path prefix (without a trailing `/`).
fn split_http_url(url: &str) -> Result<(String, String), TargetError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        failed(format!(
            "the admin URL must be http://HOST:PORT, got {url:?}"
        ))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains(['@', '?', '#']) || path.contains(['?', '#']) {
        return Err(failed(format!(
            "the admin URL must be http://HOST:PORT, got {url:?}"
        )));
    }
    Ok((authority.to_owned(), path.trim_end_matches('/').to_owned()))
}

fn resolve(authority: &str) -> Result<Vec<SocketAddr>, TargetError> {
    let addrs: Vec<SocketAddr> = authority
        .to_socket_addrs()
        .map_err(|e| failed(format!("cannot resolve {authority}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(failed(format!("{authority} resolves to no address")));
    }
    Ok(addrs)
}

/// Connects to the first address that accepts.
fn connect_any(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl HttpReply {
    /// Parses a whole answer: the status line, the headers, and the body by
    /// `Content-Length`, chunked encoding, or (failing both) up to the end of the stream.
    fn parse(bytes: &[u8]) -> Result<HttpReply, String> {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("the answer has no complete head")?;
        let head = std::str::from_utf8(&bytes[..split]).map_err(|_| "the head is not UTF-8")?;
        let raw_body = &bytes[split + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|s| s.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
        let mut chunked = false;
        let mut length = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| "a bad Content-Length")?);
            }
        }
        let body = match (chunked, length) {
            (true, _) => dechunk(raw_body)?,
            (false, Some(n)) => raw_body
                .get(..n)
                .ok_or("the body is shorter than its Content-Length")?
                .to_vec(),
            (false, None) => raw_body.to_vec(),
        };
        Ok(HttpReply { status, body })
    }
}

/// Joins the chunks of a chunked body.
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::with_capacity(raw.len());
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk without its size line")?;
        let size_line = std::str::from_utf8(&raw[..eol]).map_err(|_| "a bad chunk size")?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| "a bad chunk size")?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = raw.get(..size).ok_or("a chunk cut short")?;
        body.extend_from_slice(chunk);
        raw = raw
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or("a chunk without its line end")?;
    }
}

// ---------------------------------------------------------------------------------------
// The ISO 8583 connection.

/// One persistent connection to the ISO 8583 listener, replaced when it is lost.
struct IsoLink {
    /// `HOST:PORT`, for messages.
    target: String,
    addrs: Vec<SocketAddr>,
    stream: Option<TcpStream>,
    answer_timeout: Duration,
}

impl IsoLink {
    fn new(addr: &str, answer_timeout: Duration) -> Result<IsoLink, TargetError> {
        let target = addr
            .strip_prefix("tcp://")
            .unwrap_or(addr)
            .trim_end_matches('/');
        Ok(IsoLink {
            target: target.to_owned(),
            addrs: resolve(target)?,
            stream: None,
            answer_timeout,
        })
    }

    /// Opens the connection now, so that an unreachable listener is reported at once.
    fn open(&mut self) -> Result<(), TargetError> {
        let stream = self.usable_stream()?;
        self.stream = Some(stream);
        Ok(())
    }

    /// The open connection if the server has not closed it, else a new one.
    fn usable_stream(&mut self) -> Result<TcpStream, TargetError> {
        if let Some(stream) = self.stream.take() {
            if still_open(&stream) {
                return Ok(stream);
            }
        }
        let stream = connect_any(&self.addrs).map_err(|e| {
            failed(format!(
                "cannot connect to the ISO 8583 listener at {}: {e}",
                self.target
            ))
        })?;
        stream.set_nodelay(true).map_err(failed)?;
        // Loopback or LAN writes of one small frame do not block; a peer that stops reading
        // altogether is reported rather than waited on forever.
        stream
            .set_write_timeout(Some(ANSWER_TIMEOUT))
            .map_err(failed)?;
        Ok(stream)
    }

    /// Sends one message and waits for the answer whose STAN is `stan` (any answer when
    /// the message has none). `None`: the server closed the connection or did not answer
    /// in time, or the message is too long to frame; the connection is dropped.
    fn exchange(
        &mut self,
        message: &[u8],
        stan: Option<u32>,
    ) -> Result<Option<Vec<u8>>, TargetError> {
        let Ok(len) = u16::try_from(message.len()) else {
            return Ok(None);
        };
        let mut stream = self.usable_stream()?;
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + message.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(message);
        if stream.write_all(&frame).is_err() {
            return Ok(None);
        }
        let deadline = Instant::now() + self.answer_timeout;
        for _ in 0..=STALE_ANSWERS_MAX {
            let Some(answer) = read_frame(&mut stream, deadline) else {
                return Ok(None);
            };
            if stan_matches(stan, &answer) {
                self.stream = Some(stream);
                return Ok(Some(answer));
            }
        }
        Err(failed(format!(
            "{} answers in a row from {} matched no request",
            STALE_ANSWERS_MAX + 1,
            self.target
        )))
    }
}

/// Whether the server still holds the connection open with nothing unread on it. Unread
/// bytes mean the stream is out of step with the requests; it is replaced too.
fn still_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut probe = [0u8; 1];
    let idle = matches!(stream.peek(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).is_ok() && idle
}

/// The next frame, or `None` when the stream ends, fails, breaks the framing or stays quiet
/// past `deadline`.
fn read_frame(stream: &mut TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    if !fill(stream, &mut header, deadline) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes(header));
    if len > FRAME_MAX_LEN {
        return None;
    }
    let mut body = vec![0u8; len];
    fill(stream, &mut body, deadline).then_some(body)
}

/// Reads exactly `buf.len()` bytes by `deadline`.
fn fill(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> bool {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return false,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// An answer belongs to a request when their STANs agree, or when either has none (an
/// answer to a message too broken to carry one).
fn stan_matches(expected: Option<u32>, answer: &[u8]) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let seen = match parse(answer) {
        Ok(message) => message.stan(),
        Err(_) => salvage(answer).stan,
    };
    !matches!(seen, Some(stan) if stan != expected)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use cardcore_core::iso8583::{MessageBuilder, Mti};

    use super::*;

    #[test]
    fn admin_urls_split_into_authority_and_prefix() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("http://127.0.0.1:8080", Some(("127.0.0.1:8080", ""))),
            ("http://127.0.0.1:8080/", Some(("127.0.0.1:8080", ""))),
            ("http://localhost:80/api/", Some(("localhost:80", "/api"))),
            ("https://127.0.0.1:8080", None),
            ("127.0.0.1:8080", None),
            ("http://", None),
            ("http://user@host:1", None),
            ("http://host:1/?q", None),
        ];
        for &(url, expected) in cases {
            let got = split_http_url(url).ok();
            let expected = expected.map(|(a, p)| (a.to_owned(), p.to_owned()));
            assert_eq!(got, expected, "{url}");
        }
    }

    /// Raw answer bytes and the status and body they hold, if they parse.
    type HttpCase = (&'static [u8], Option<(u16, &'static [u8])>);

    #[test]
    fn http_answers_parse_by_length_chunks_or_end() {
        let cases: &[HttpCase] = &[
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
                Some((200, b"{}")),
            ),
            (
                b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}trailing",
                Some((201, b"{}")),
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n",
                Some((200, b"{\"a\":1}")),
            ),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", Some((200, b"until the end"))),
            (b"HTTP/1.1 409 Conflict\r\ncontent-length: 0\r\n\r\n", Some((409, b""))),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}", None),
            (b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n{}", None),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\nab", None),
            (b"SMTP 220 hello\r\n\r\n", None),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2", None),
        ];
        for &(bytes, expected) in cases {
            let got = HttpReply::parse(bytes).map(|r| (r.status, r.body)).ok();
            let expected = expected.map(|(s, b)| (s, b.to_vec()));
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn a_kept_connection_reads_one_answer_to_its_end() {
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", Some(40)),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}next",
                Some(40),
            ),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{", None),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n", None),
            (chunked, Some(chunked.len())),
            (&chunked[..chunked.len() - 2], None),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", None),
        ];
        for &(bytes, end) in cases {
            let got = answer_end(bytes).unwrap();
            assert_eq!(got, end, "{}", String::from_utf8_lossy(bytes));
        }
        assert!(answer_end(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(asks_to_close(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
        ));
        assert!(!asks_to_close(
            b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\n\r\n"
        ));
    }

    #[test]
    fn refusals_are_the_engines_and_failures_the_rest() {
        let error = |status: u16, field: &str| {
            HttpReply {
            status,
            body: format!(
                r#"{{"status":{status},"detail":"why","errors":[{{"code":"c","detail":"why","ref":"{field}"}}]}}"#
            )
            .into_bytes(),
        }
        };
        let refused = |e: &TargetError| matches!(e, TargetError::Refused(_));
        let cases = [
            (error(400, "amount.value"), true),
            (error(404, "cardToken"), true),
            (error(409, "status"), true),
            (error(404, "path"), false),
            (error(401, "Authorization"), false),
            (error(403, ""), false),
            (error(503, ""), false),
            (
                HttpReply {
                    status: 500,
                    body: b"not json".to_vec(),
                },
                false,
            ),
        ];
        for (reply, expected) in cases {
            let e = refusal("PUT", "/x", &reply);
            assert_eq!(refused(&e), expected, "{e}");
            assert!(e.to_string().contains(&reply.status.to_string()), "{e}");
        }
        let e = refusal("PUT", "/x", &error(400, "amount.value"));
        assert_eq!(
            e.to_string(),
            "refused: PUT /x: HTTP 400: why (amount.value)"
        );
    }

    /// What a fake ISO 8583 server does with one accepted connection.
    #[derive(Debug, Clone)]
    enum Peer {
        /// Closes it before anything is sent.
        CloseAtOnce,
        /// Reads one frame and answers nothing until the client goes away.
        Silent,
        /// Reads one frame and closes.
        CloseAfterRead,
        /// Reads one frame and answers one frame per STAN, in order.
        Answer(Vec<u32>),
    }

    /// Serves `peers.len()` connections, the n-th as `peers[n]`.
    fn fake_server(peers: Vec<Peer>) -> (String, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let handle = thread::spawn(move || {
            let mut served = Vec::new();
            for peer in peers {
                let (stream, _) = listener.accept().expect("accept");
                served.push(thread::spawn(move || serve_one(stream, peer)));
            }
            for one in served {
                one.join().expect("peer thread");
            }
        });
        (addr, handle)
    }

    fn serve_one(mut stream: TcpStream, peer: Peer) {
        let far = Instant::now() + Duration::from_secs(10);
        if matches!(peer, Peer::CloseAtOnce) {
            return;
        }
        read_frame(&mut stream, far).expect("a request frame");
        match peer {
            Peer::CloseAtOnce | Peer::CloseAfterRead => {}
            Peer::Silent => while read_frame(&mut stream, far).is_some() {},
            Peer::Answer(stans) => {
                for stan in stans {
                    let answer = answer_with_stan(stan);
                    let mut frame = (answer.len() as u16).to_be_bytes().to_vec();
                    frame.extend_from_slice(&answer);
                    stream.write_all(&frame).expect("answer");
                }
                while read_frame(&mut stream, far).is_some() {}
            }
        }
    }

    fn answer_with_stan(stan: u32) -> Vec<u8> {
        let mut b = MessageBuilder::new(Mti::AuthorizationResponse);
        b.set_stan(stan).expect("stan");
        b.set_response_code(b"05").expect("code");
        b.to_vec()
    }

    fn stan_of(answer: &[u8]) -> Option<u32> {
        parse(answer).ok().and_then(|m| m.stan())
    }

    fn link(addr: &str) -> IsoLink {
        IsoLink::new(&format!("tcp://{addr}"), Duration::from_millis(300)).expect("link")
    }

    #[test]
    fn the_answer_is_the_one_with_the_requests_stan() {
        let (addr, server) = fake_server(vec![Peer::Answer(vec![5, 6, 7])]);
        let mut iso = link(&addr);
        let answer = iso.exchange(b"request", Some(7)).expect("no failure");
        assert_eq!(answer.as_deref().and_then(stan_of), Some(7));
        drop(iso);
        server.join().expect("server");
    }

    #[test]
    fn too_many_answers_of_other_messages_fail_the_target() {
        let stale = vec![1; STALE_ANSWERS_MAX + 1];
        let (addr, server) = fake_server(vec![Peer::Answer(stale)]);
        let mut iso = link(&addr);
        let result = iso.exchange(b"request", Some(2));
        assert!(matches!(result, Err(TargetError::Failed(_))), "{result:?}");
        drop(iso);
        server.join().expect("server");
    }

    #[test]
    fn silence_and_closes_are_disconnects_and_the_next_message_reconnects() {
        let peers = vec![Peer::Silent, Peer::CloseAfterRead, Peer::Answer(vec![3])];
        let (addr, server) = fake_server(peers);
        let mut iso = link(&addr);
        let started = Instant::now();
        assert_eq!(iso.exchange(b"one", Some(1)).expect("outcome"), None);
        assert!(started.elapsed() >= iso.answer_timeout);
        assert_eq!(iso.exchange(b"two", Some(2)).expect("outcome"), None);
        let third = iso.exchange(b"three", Some(3)).expect("outcome");
        assert_eq!(third.as_deref().and_then(stan_of), Some(3));
        drop(iso);
        server.join().expect("server");
    }

    #[test]
    fn a_connection_closed_while_idle_is_replaced_before_sending() {
        let (addr, server) = fake_server(vec![Peer::CloseAtOnce, Peer::Answer(vec![9])]);
        let mut iso = link(&addr);
        iso.open().expect("open");
        // Wait until the close has arrived, as it would during a long idle spell.
        let deadline = Instant::now() + Duration::from_secs(5);
        while iso.stream.as_ref().is_some_and(still_open) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let answer = iso.exchange(b"request", Some(9)).expect("outcome");
        assert_eq!(answer.as_deref().and_then(stan_of), Some(9));
        drop(iso);
        server.join().expect("server");
    }

    #[test]
    fn a_message_too_long_to_frame_is_not_sent() {
        let (addr, server) = fake_server(vec![Peer::Answer(vec![1])]);
        let mut iso = link(&addr);
        let huge = vec![b'0'; usize::from(u16::MAX) + 1];
        assert_eq!(iso.exchange(&huge, None).expect("outcome"), None);
        let answer = iso.exchange(b"small", Some(1)).expect("outcome");
        assert_eq!(answer.as_deref().and_then(stan_of), Some(1));
        drop(iso);
        server.join().expect("server");
    }

    #[test]
    fn amounts_are_read_and_written_with_their_exact_digits() {
        let eur = Currency::from_alpha("EUR").expect("EUR");
        let body = serde_json::to_string(&AmountBody::of(Money::new(1050, eur))).expect("json");
        assert_eq!(body, r#"{"amount":10.50,"currency":"EUR"}"#);
        let cases: &[(&str, Option<i64>)] = &[
            (r#"{"amount":10.50,"currency":"EUR"}"#, Some(1050)),
            (r#"{"amount":-0.01,"currency":"EUR"}"#, Some(-1)),
            (r#"{"amount":"7.5","currency":"EUR"}"#, Some(750)),
            (
                r#"{"amount":92233720368547758.07,"currency":"EUR"}"#,
                Some(i64::MAX),
            ),
            (r#"{"amount":0.001,"currency":"EUR"}"#, None),
        ];
        for &(json, expected) in cases {
            let out: AmountOut = serde_json::from_str(json).expect(json);
            assert_eq!(out.money().ok().map(|m| m.amount_minor), expected, "{json}");
        }
    }
}
