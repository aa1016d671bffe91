//! Profile isolation on every route of the management API, generated from
//! `http::route_table`: each route is called with profile B's token on profile A's real
//! resources (card, transaction, balance, card order), with B's own profile id and A's
//! resource ids, with an application token, a wrong token and no token. Every one of those
//! is refused (404 naming the path parameter, 403 for the wrong kind of token, 401 without a
//! valid token) and changes nothing (the engine's state hash is unchanged). The same requests
//! from A's own token then succeed, which proves the refusals came from the access checks and
//! not from a request that was wrong anyway.
//!
//! A route added to the table without a request below fails this test until one is added.

mod http_support;

use cardcore_server::http::{self, Audience, RouteSpec};
use http_support::*;
use serde_json::{json, Value};

/// Profile A is profile 1 (token P1); profile B is profile 2 (token P2).
const A: u64 = 1;
const B: u64 = 2;
const IDEMPOTENCY_KEY: &str = "5ec0c0de-0000-4000-8000-000000000001";
const OTHER_CLIENT_ID: &str = "client-2";

/// Real ids of A's resources, and of a spend-control rule.
#[derive(Debug, Clone)]
struct Ids {
    card_a: String,
    txn_a: u64,
    balance_a: u64,
    order_a: u64,
    rule: u64,
}

/// One request: where, with what body and headers.
#[derive(Debug, Clone)]
struct Call {
    method: &'static str,
    path: String,
    body: Option<Value>,
    idempotency_key: bool,
}

impl Call {
    async fn send(&self, server: &TestServer, token: Option<&str>) -> Reply {
        let body = self.body.as_ref().map(Value::to_string);
        let key = [("X-idempotence-uuid", IDEMPOTENCY_KEY)];
        let headers: &[(&str, &str)] = if self.idempotency_key { &key } else { &[] };
        server
            .raw(self.method, &self.path, token, body.as_deref(), headers)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_other_profiles_and_other_kinds_of_token() {
    let server = TestServer::start(true).await;
    let ids = fixture(&server).await;
    let routes = http::route_table(true);
    let before = state_hash(&server).await;

    let mut checked = 0;
    for spec in &routes {
        match spec.audience {
            Audience::Open => check_open(&server, spec).await,
            Audience::Profile => check_profile_route(&server, spec, &ids).await,
            Audience::Application => check_application_route(&server, spec, &ids).await,
            Audience::Sandbox => check_sandbox_route(&server, spec, &ids).await,
        }
        assert_eq!(
            state_hash(&server).await,
            before,
            "{} {}: a refused request changed state",
            spec.method,
            spec.path
        );
        checked += 1;
    }
    assert_eq!(checked, routes.len());

    // The owners' requests go through: the refusals above were the access checks.
    for spec in &routes {
        let call = match spec.audience {
            Audience::Profile => request(spec, A, &ids),
            Audience::Application => request(spec, A, &ids),
            Audience::Open | Audience::Sandbox => continue,
        };
        let token = if spec.audience == Audience::Profile {
            P1
        } else {
            APP
        };
        let reply = call.send(&server, Some(token)).await;
        assert!(
            (200..300).contains(&reply.status),
            "{} {}: the owner got {}: {}",
            spec.method,
            call.path,
            reply.status,
            reply.text
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_that_exists_and_one_that_does_not_are_refused_alike() {
    let server = TestServer::start(true).await;
    fixture(&server).await;
    // B cannot tell whether profile 1 (exists) or 99 (does not) is there.
    for path in [
        "/v3/spend/profiles/{p}/cards",
        "/v4/profiles/{p}/balances?types=STANDARD",
        "/v4/spend/profiles/{p}/spend-limits",
    ] {
        let existing = server.get(&path.replace("{p}", "1"), P2).await;
        let missing = server.get(&path.replace("{p}", "99"), P2).await;
        assert_eq!(existing.status, 404, "{path}");
        assert_eq!(missing.status, 404, "{path}");
        let shape = |r: &Reply| {
            let body = r.json();
            (body["code"].clone(), body["errors"][0]["ref"].clone())
        };
        assert_eq!(shape(&existing), shape(&missing), "{path}");
    }
    server.stop().await;
}

/// A with a card, money, a transaction, a card order; B with a card; a spend-control rule.
async fn fixture(server: &TestServer) -> Ids {
    sandbox_profile(server, A).await;
    sandbox_profile(server, B).await;
    sandbox_top_up(server, A, "100.00", "EUR").await;
    sandbox_top_up(server, B, "100.00", "EUR").await;
    let card_a = sandbox_card(server, A, PAN, json!({})).await;
    sandbox_card(server, B, PAN_2, json!({})).await;
    let auth =
        format!("/v2/simulation/spend/profiles/{A}/cards/{card_a}/transactions/authorisation");
    let body = json!({"amount": {"value": 10, "currency": "EUR"}, "cardNumber": PAN, "pin": PIN});
    let answer = server.post(&auth, P1, body).await.expect(200);
    let txn_a = answer["reference"]["transaction"]["transactionId"]
        .as_u64()
        .expect("A's transaction");
    let balances = server
        .get(&format!("/v4/profiles/{A}/balances?types=STANDARD"), P1)
        .await
        .expect(200);
    let balance_a = balances[0]["id"].as_u64().expect("A's balance");
    let order = Call {
        method: "POST",
        path: format!("/v3/spend/profiles/{A}/card-orders"),
        body: Some(order_body()),
        idempotency_key: true,
    }
    .send(server, Some(P1))
    .await
    .expect(200);
    let order_a = order["id"].as_u64().expect("A's card order");
    let rules = format!("/v3/spend/applications/{CLIENT_ID}/spend-controls/rules");
    let rule = server.post(&rules, APP, rule_body()).await.expect(200);
    let rule = rule["id"].as_u64().expect("a rule id");
    Ids {
        card_a,
        txn_a,
        balance_a,
        order_a,
        rule,
    }
}

async fn check_open(server: &TestServer, spec: &RouteSpec) {
    let reply = server.call(spec.method, spec.path, None, None).await;
    assert_eq!(reply.status, 200, "{} {}", spec.method, spec.path);
}

async fn check_profile_route(server: &TestServer, spec: &RouteSpec, ids: &Ids) {
    let on_a = request(spec, A, ids);
    let what = format!("{} {}", spec.method, spec.path);
    on_a.send(server, None)
        .await
        .expect_error(401, "Authorization");
    on_a.send(server, Some("not-a-token"))
        .await
        .expect_error(401, "Authorization");
    let app = on_a.send(server, Some(APP)).await;
    assert_eq!(app.status, 403, "{what}: application token: {}", app.text);
    on_a.send(server, Some(P2))
        .await
        .expect_error(404, "profileId");
    // B on its own profile, naming A's card, transaction, balance or order.
    if let Some(field) = resource_param(spec) {
        let on_b = request(spec, B, ids);
        let reply = on_b.send(server, Some(P2)).await;
        assert_eq!(reply.status, 404, "{what} as B: {}", reply.text);
        assert_eq!(
            reply.json()["errors"][0]["ref"],
            field,
            "{what}: {}",
            reply.text
        );
    }
}

async fn check_application_route(server: &TestServer, spec: &RouteSpec, ids: &Ids) {
    let call = request(spec, A, ids);
    let what = format!("{} {}", spec.method, spec.path);
    call.send(server, None)
        .await
        .expect_error(401, "Authorization");
    for profile_token in [P1, P2] {
        let reply = call.send(server, Some(profile_token)).await;
        assert_eq!(reply.status, 403, "{what}: profile token: {}", reply.text);
    }
    let mut other = call.clone();
    other.path = other.path.replace(CLIENT_ID, OTHER_CLIENT_ID);
    other
        .send(server, Some(APP))
        .await
        .expect_error(404, "clientId");
}

async fn check_sandbox_route(server: &TestServer, spec: &RouteSpec, ids: &Ids) {
    let call = request(spec, A, ids);
    let what = format!("{} {}", spec.method, spec.path);
    call.send(server, None)
        .await
        .expect_error(401, "Authorization");
    for token in [P1, P2, APP] {
        let reply = call.send(server, Some(token)).await;
        assert_eq!(reply.status, 403, "{what}: {}", reply.text);
    }
}

/// The path parameter, besides the profile, that names one of the profile's resources.
fn resource_param(spec: &RouteSpec) -> Option<&'static str> {
    if spec.path == "/v1/simulation/balance/topup" {
        return Some("balanceId");
    }
    ["cardToken", "transactionId", "balanceId", "cardOrderId"]
        .into_iter()
        .find(|name| spec.path.contains(&format!("{{{name}}}")))
}

/// The route's request on `profile`'s path, always naming A's resources.
fn request(spec: &RouteSpec, profile: u64, ids: &Ids) -> Call {
    let path = spec
        .path
        .replace("{profileId}", &profile.to_string())
        .replace("{cardToken}", &ids.card_a)
        .replace("{transactionId}", &ids.txn_a.to_string())
        .replace("{balanceId}", &ids.balance_a.to_string())
        .replace("{cardOrderId}", &ids.order_a.to_string())
        .replace("{granularity}", "daily")
        .replace("{clientId}", CLIENT_ID)
        .replace("{ruleId}", &ids.rule.to_string());
    assert!(
        !path.contains('{'),
        "{}: a path parameter without a value",
        spec.path
    );
    let (query, body) = query_and_body(spec, profile, ids);
    Call {
        method: spec.method,
        path: format!("{path}{query}"),
        body,
        idempotency_key: matches!(
            (spec.method, spec.path),
            ("POST", "/v3/spend/profiles/{profileId}/card-orders")
                | ("POST", "/v4/profiles/{profileId}/balances")
        ),
    }
}

/// A valid query and body for each route: a request that would succeed for its owner.
fn query_and_body(spec: &RouteSpec, profile: u64, ids: &Ids) -> (&'static str, Option<Value>) {
    let euros = |v: u32| json!({"value": v, "currency": "EUR"});
    let reference = json!({"transaction": {"stan": "000001", "transactionStartTime": 0,
        "transactionId": ids.txn_a}});
    let body = match (spec.method, spec.path) {
        ("GET", "/v4/profiles/{profileId}/balances") => return ("?types=STANDARD", None),
        ("GET", "/v4/spend/profiles/{profileId}/cards/{cardToken}/transactions") => {
            return (
                "?fromCreationTime=2026-01-01T00:00:00Z&toCreationTime=2026-12-31T00:00:00Z",
                None,
            )
        }
        (m, _) if m == "GET" || m == "DELETE" => return ("", None),
        ("POST", "/v3/spend/profiles/{profileId}/card-orders") => order_body(),
        ("PUT", "/v3/spend/profiles/{profileId}/cards/{cardToken}/status") => {
            json!({"status": "ACTIVE"})
        }
        ("POST", "/v3/spend/profiles/{profileId}/cards/{cardToken}/reset-pin-count") => {
            return ("", None)
        }
        ("PATCH", "/v4/spend/profiles/{profileId}/cards/{cardToken}/spending-permissions") => {
            json!({"permissions": [{"type": "ECOM", "isEnabled": true}]})
        }
        ("PATCH", "/v4/spend/profiles/{profileId}/spend-limits") => {
            json!({"type": "PURCHASE", "aggregateWindow": {
                "daily": {"value": {"amount": 200, "currency": "EUR"}},
                "monthly": {"value": {"amount": 1000, "currency": "EUR"}}}})
        }
        ("PATCH", "/v4/spend/profiles/{profileId}/cards/{cardToken}/spend-limits") => {
            json!({"daily": {"value": {"amount": 50, "currency": "EUR"}}})
        }
        ("POST", "/v3/spend/applications/{clientId}/spend-controls/rules") => rule_body(),
        ("POST", "/v3/spend/applications/{clientId}/spend-controls/rules/apply")
        | ("POST", "/v3/spend/applications/{clientId}/spend-controls/rules/unapply") => {
            json!({"ruleId": ids.rule.to_string()})
        }
        ("POST", "/v4/profiles/{profileId}/balances") => {
            json!({"currency": "EUR", "type": "STANDARD"})
        }
        ("POST", "/v1/simulation/balance/topup") => {
            json!({"profileId": profile, "balanceId": ids.balance_a, "currency": "EUR", "amount": 1})
        }
        ("POST", p) if p.ends_with("/transactions/authorisation") => {
            json!({"amount": euros(1), "cardNumber": PAN, "pin": PIN})
        }
        ("POST", p) if p.ends_with("/transactions/clearing") => {
            json!({"amount": euros(10), "ref": reference, "cardNumber": PAN})
        }
        ("POST", p) if p.ends_with("/transactions/reversal") => {
            json!({"amount": euros(0), "ref": reference, "cardNumber": PAN})
        }
        ("PUT", "/v1/sandbox/clock") => json!({"now": "2026-01-15T10:00:00Z"}),
        ("POST", "/v1/sandbox/clock/advance") => json!({"byMs": 1}),
        ("PUT", "/v1/sandbox/fx-rates") => json!({"from": "EUR", "to": "GBP", "rate": "0.85"}),
        ("POST", "/v1/sandbox/profiles") => json!({"id": 3}),
        ("PATCH", "/v1/sandbox/profiles/{profileId}") => json!({"status": "ACTIVE"}),
        ("POST", "/v1/sandbox/profiles/{profileId}/top-up") => {
            json!({"amount": "1.00", "currency": "EUR"})
        }
        ("POST", "/v1/sandbox/profiles/{profileId}/cards") => {
            json!({"pan": "4000005555555559", "expiry": "2029-07", "currency": "EUR"})
        }
        ("PUT", "/v1/sandbox/profiles/{profileId}/cards/{cardToken}/status") => {
            json!({"status": "ACTIVE"})
        }
        ("POST", "/v1/sandbox/reset") => return ("", None),
        (method, path) => panic!("{method} {path}: add a valid request to this test"),
    };
    ("", Some(body))
}

fn order_body() -> Value {
    json!({"program": "VISA_DEBIT_BUSINESS_UK_1_CARDS_API", "cardHolderName": "A Holder",
        "address": {"firstLine": "1 Test Street", "city": "London", "postCode": "E1 6JJ",
        "country": "GB"}})
}

fn rule_body() -> Value {
    json!({"type": "MCC", "operation": "BLOCK", "description": "isolation test",
        "values": ["7995"]})
}

async fn state_hash(server: &TestServer) -> Value {
    server
        .get("/v1/sandbox/state-hash", OPERATOR)
        .await
        .expect(200)["stateHash"]
        .clone()
}
