//! End to end over real TCP and HTTP: every management endpoint, the authorisation,
//! clearing and reversal flow through the simulation endpoints, access control, and bad
//! input refused with a JSON error that names the field and changes nothing.

mod http_support;

use http_support::*;
use serde_json::{json, Value};

const CARDS_1: &str = "/v3/spend/profiles/1/cards";

fn card_path(profile: u64, token: &str) -> String {
    format!("/v3/spend/profiles/{profile}/cards/{token}")
}

/// Profile 1 with 100.00 EUR and a card; profile 2 with a card of its own.
async fn two_profiles(server: &TestServer) -> (String, String) {
    sandbox_profile(server, 1).await;
    sandbox_profile(server, 2).await;
    sandbox_top_up(server, 1, "100.00", "EUR").await;
    let c1 = sandbox_card(server, 1, PAN, json!({})).await;
    let c2 = sandbox_card(server, 2, PAN_2, json!({})).await;
    (c1, c2)
}

async fn balance_of(server: &TestServer, profile: u64, token: &str) -> Value {
    let path = format!("/v4/profiles/{profile}/balances?types=STANDARD");
    let list = server.get(&path, token).await.expect(200);
    list[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorisation_clearing_and_reversal_through_the_simulation_endpoints() {
    let server = TestServer::start(true).await;
    let (c1, _) = two_profiles(&server).await;
    let auth_path =
        format!("/v2/simulation/spend/profiles/1/cards/{c1}/transactions/authorisation");
    let auth = json!({
        "pos": "CHIP_AND_PIN", "transactionType": "GOODS_AND_SERVICES",
        "amount": {"value": 40.5, "currency": "EUR"}, "mcc": 5411,
        "cardNumber": PAN, "pin": PIN
    });
    let answer = server.post(&auth_path, P1, auth.clone()).await.expect(200);
    assert_eq!(answer["error"], Value::Null, "{answer}");
    let reference = answer["reference"].clone();
    let txn = &reference["transaction"];
    assert_eq!(txn["responseCode"], "00");
    assert_eq!(txn["requestMti"], "0100");
    assert_eq!(
        txn["authorizationIdResponse"].as_str().map(str::len),
        Some(6)
    );
    assert!(
        !answer.to_string().contains(PAN),
        "the PAN is never answered"
    );
    let id = txn["transactionId"].as_u64().expect("a transaction id");

    let balance = balance_of(&server, 1, P1).await;
    assert_eq!(balance["amount"]["value"], json!(59.50));
    assert_eq!(balance["reservedAmount"]["value"], json!(40.50));

    // A partial reversal to 30.00, then a clearing of 30.00.
    let reversal_path = format!("/v1/simulation/spend/profiles/1/cards/{c1}/transactions/reversal");
    let reversal = json!({"amount": {"value": 30, "currency": "EUR"},
        "transactionType": "GOODS_AND_SERVICES", "ref": reference, "cardNumber": PAN});
    let answer = server.post(&reversal_path, P1, reversal).await.expect(200);
    assert_eq!(answer["error"], Value::Null, "{answer}");
    assert_eq!(answer["reference"]["transaction"]["requestMti"], "0400");

    let clearing_path = format!("/v1/simulation/spend/profiles/1/cards/{c1}/transactions/clearing");
    let clearing = json!({"amount": {"value": 30, "currency": "EUR"},
        "ref": reference, "cardNumber": PAN});
    let answer = server.post(&clearing_path, P1, clearing).await.expect(200);
    assert_eq!(answer["error"], Value::Null, "{answer}");

    let got = server
        .get(&format!("/v4/spend/profiles/1/cards/transactions/{id}"), P1)
        .await
        .expect(200);
    assert_eq!(got["state"], "COMPLETED", "{got}");
    assert_eq!(
        got["transactionAmount"],
        json!({"amount": 30.00, "currency": "EUR"})
    );
    assert_eq!(got["merchant"]["category"]["code"], "5411");
    assert_eq!(got["debits"][0]["debitedAmount"]["amount"], json!(30.00));
    // The explanation lists the checks that ran, in precedence order, all passed.
    let lines = got["explanation"].as_array().expect("an explanation");
    assert_eq!(lines[0]["check"], "CARD_STATUS", "{got}");
    assert_eq!(lines.last().unwrap()["check"], "FUNDS", "{got}");
    assert!(lines.iter().all(|l| l["passed"] == true), "{got}");
    let balance = balance_of(&server, 1, P1).await;
    assert_eq!(balance["amount"]["value"], json!(70.00));
    assert_eq!(balance["reservedAmount"]["value"], json!(0.00));
    assert_eq!(balance["cashAmount"]["value"], json!(70.00));

    // A wrong PIN is a decline with its reason; the PIN counter shows it.
    let wrong =
        json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": PAN, "pin": "9999"});
    let answer = server.post(&auth_path, P1, wrong).await.expect(200);
    assert_eq!(answer["reference"]["transaction"]["responseCode"], "55");
    assert_eq!(
        answer["reference"]["transaction"]["declineReason"],
        "INCORRECT_PIN"
    );
    assert!(answer["error"].as_str().unwrap().contains("INCORRECT_PIN"));
    let card = server
        .get(&format!("/v1/sandbox/profiles/1/cards/{c1}"), OPERATOR)
        .await
        .expect(200);
    assert_eq!(card["pinTries"], 1);
    server
        .call(
            "POST",
            &format!("{}/reset-pin-count", card_path(1, &c1)),
            Some(P1),
            None,
        )
        .await
        .expect(200);
    let card = server
        .get(&format!("/v1/sandbox/profiles/1/cards/{c1}"), OPERATOR)
        .await
        .expect(200);
    assert_eq!(card["pinTries"], 0);

    // Too little money: declined for insufficient funds, nothing held.
    let big = json!({"amount": {"value": 500, "currency": "EUR"}, "cardNumber": PAN, "pin": PIN});
    let answer = server.post(&auth_path, P1, big).await.expect(200);
    assert_eq!(
        answer["reference"]["transaction"]["declineReason"],
        "INSUFFICIENT_FUNDS"
    );
    assert_eq!(
        balance_of(&server, 1, P1).await["reservedAmount"]["value"],
        json!(0.00)
    );

    // The card's list, newest first, paged by lastId.
    let list_path = format!(
        "/v4/spend/profiles/1/cards/{c1}/transactions?fromCreationTime=2026-01-01T00:00:00Z&toCreationTime=2026-12-31T00:00:00Z&pageSize=10"
    );
    let list = server.get(&list_path, P1).await.expect(200);
    let ids: Vec<u64> = list["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{list}");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(list["transactions"][0].get("debits").is_none());
    let next = server
        .get(&format!("{list_path}&lastId={}", ids[0]), P1)
        .await
        .expect(200);
    assert_eq!(next["transactions"].as_array().unwrap().len(), 2);
    let simulated = server
        .get(
            &format!("/v2/simulation/spend/profiles/1/cards/{c1}/transactions?limit=2"),
            P1,
        )
        .await
        .expect(200);
    assert_eq!(simulated.as_array().unwrap().len(), 2);
    assert_eq!(simulated[0]["transactionId"], ids[0]);

    // The clearing of a transaction nobody authorised is answered 25 and changes nothing.
    let mut unknown = reference_of_stan(&reference, "999998");
    unknown["transaction"]["transactionId"] = Value::Null;
    let clearing =
        json!({"amount": {"value": 5, "currency": "EUR"}, "ref": unknown, "cardNumber": PAN});
    let answer = server.post(&clearing_path, P1, clearing).await.expect(200);
    assert_eq!(answer["reference"]["transaction"]["responseCode"], "25");
    assert_eq!(
        balance_of(&server, 1, P1).await["cashAmount"]["value"],
        json!(70.00)
    );
    server.stop().await;
}

fn reference_of_stan(reference: &Value, stan: &str) -> Value {
    let mut r = reference.clone();
    r["transaction"]["stan"] = json!(stan);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_control_by_token() {
    let server = TestServer::start(true).await;
    let (c1, c2) = two_profiles(&server).await;
    // No token, a wrong token, a malformed header: 401 with a JSON error.
    let none = server.call("GET", CARDS_1, None, None).await;
    none.expect_error(401, "Authorization");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    server
        .get(CARDS_1, "not-a-token")
        .await
        .expect_error(401, "Authorization");
    let basic = server
        .raw(
            "GET",
            CARDS_1,
            None,
            None,
            &[("Authorization", "Basic abc")],
        )
        .await;
    basic.expect_error(401, "Authorization");
    // A profile token reaches its own profile only: the other's resources are not found.
    server.get(CARDS_1, P1).await.expect(200);
    server.get(CARDS_1, P2).await.expect_error(404, "profileId");
    server
        .get(&card_path(2, &c2), P1)
        .await
        .expect_error(404, "profileId");
    // A profile's own path with another profile's card: the card is not found.
    server
        .get(&card_path(1, &c2), P1)
        .await
        .expect_error(404, "cardToken");
    let topup = json!({"profileId": 2, "balanceId": 1, "currency": "EUR", "amount": 5});
    server
        .post("/v1/simulation/balance/topup", P1, topup)
        .await
        .expect_error(404, "profileId");
    // An application token manages spend controls and nothing of profiles.
    server.get(CARDS_1, APP).await.expect(403);
    let rules = format!("/v3/spend/applications/{CLIENT_ID}/spend-controls/rules");
    server.get(&rules, APP).await.expect(200);
    server.get(&rules, P1).await.expect(403);
    server
        .get("/v3/spend/applications/client-2/spend-controls/rules", APP)
        .await
        .expect_error(404, "clientId");
    // The operator reaches everything; sandbox endpoints are the operator's only.
    server.get(&card_path(1, &c1), OPERATOR).await.expect(200);
    server.get(&rules, OPERATOR).await.expect(200);
    server.get("/v1/sandbox/clock", P1).await.expect(403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_status_and_permissions() {
    let server = TestServer::start(true).await;
    let (c1, _) = two_profiles(&server).await;
    let locked = sandbox_card(
        &server,
        1,
        "4000005555555557",
        json!({"locked": ["POS_MAGSTRIPE"], "type": "PHYSICAL"}),
    )
    .await;
    let list = server.get(CARDS_1, P1).await.expect(200);
    assert_eq!(list["totalCount"], 2);
    let card = server.get(&card_path(1, &c1), P1).await.expect(200);
    assert_eq!(card["status"]["value"], "ACTIVE");
    assert_eq!(card["lastFourDigits"], "7899");
    assert_eq!(card["bankIdentificationNumber"], "400000");
    assert_eq!(card["maskedPan"], "400000******7899");
    assert_eq!(card["expiryDate"], "2029-07-31T23:59:59.999Z");
    assert!(!card.to_string().contains(PAN));
    server
        .get(&format!("{CARDS_1}?pageSize=5"), P1)
        .await
        .expect_error(400, "pageSize");

    // Status: FROZEN and back, unknown and unsettable values refused, BLOCKED final.
    let status = format!("{}/status", card_path(1, &c1));
    let frozen = server
        .put(&status, P1, json!({"status": "FROZEN"}))
        .await
        .expect(200);
    assert_eq!(frozen["status"]["value"], "FROZEN");
    server
        .put(&status, P1, json!({"status": "ACTIVE"}))
        .await
        .expect(200);
    server
        .put(&status, P1, json!({"status": "PURGED"}))
        .await
        .expect_error(400, "status");
    server
        .put(&status, P1, json!({"status": "SLEEPING"}))
        .await
        .expect_error(400, "status");
    server
        .put(&status, P1, json!({"status": "BLOCKED"}))
        .await
        .expect(200);
    server
        .put(&status, P1, json!({"status": "ACTIVE"}))
        .await
        .expect_error(409, "status");

    // Permissions: read (v3), bulk update (v4) all or nothing.
    let read = format!("{}/spending-permissions", card_path(1, &locked));
    let write = format!("/v4/spend/profiles/1/cards/{locked}/spending-permissions");
    let perms = server.get(&read, P1).await.expect(200);
    let magstripe = perms["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "POS_MAGSTRIPE")
        .cloned()
        .unwrap();
    assert_eq!(
        magstripe,
        json!({"type": "POS_MAGSTRIPE", "isEnabled": false, "isLocked": true})
    );
    let off = json!({"permissions": [{"type": "ECOM", "isEnabled": false}]});
    server.patch(&write, P1, off).await.expect(200);
    let refused = json!({"permissions": [{"type": "ATM_WITHDRAWAL", "isEnabled": false},
        {"type": "POS_MAGSTRIPE", "isEnabled": true}]});
    server
        .patch(&write, P1, refused)
        .await
        .expect_error(409, "permissions");
    let unknown = json!({"permissions": [{"type": "TELEPATHY", "isEnabled": true}]});
    server
        .patch(&write, P1, unknown)
        .await
        .expect_error(400, "permissions[0].type");
    let perms = server.get(&read, P1).await.expect(200);
    let enabled = |name: &str| {
        perms["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["type"] == name)
            .map(|p| p["isEnabled"].clone())
            .unwrap()
    };
    assert_eq!(enabled("ECOM"), json!(false));
    assert_eq!(
        enabled("ATM_WITHDRAWAL"),
        json!(true),
        "a refused update changes nothing"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_limits_of_profiles_and_cards() {
    let server = TestServer::start(true).await;
    let (c1, _) = two_profiles(&server).await;
    let profile_limits = "/v4/spend/profiles/1/spend-limits";
    let body = json!({"type": "PURCHASE", "aggregateWindow": {
        "daily": {"value": {"amount": 200, "currency": "EUR"}},
        "monthly": {"value": {"amount": 1000, "currency": "EUR"}}}});
    let got = server.patch(profile_limits, P1, body).await.expect(200);
    let purchase = got["spendLimits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["type"] == "PURCHASE")
        .cloned()
        .unwrap();
    assert_eq!(
        purchase["aggregateWindow"]["daily"]["value"]["amount"],
        json!(200.00)
    );
    assert!(purchase["aggregateWindow"]["daily"]["resetAt"].is_string());
    // Above the maximum, mixed currencies, a maximum from a profile token: refused.
    let too_high = json!({"type": "PURCHASE", "aggregateWindow": {
        "daily": {"value": {"amount": 99999999, "currency": "EUR"}},
        "monthly": {"value": {"amount": 1000, "currency": "EUR"}}}});
    server
        .patch(profile_limits, P1, too_high)
        .await
        .expect_error(400, "daily");
    let mixed = json!({"type": "PURCHASE", "aggregateWindow": {
        "daily": {"value": {"amount": 20, "currency": "EUR"}},
        "monthly": {"value": {"amount": 100, "currency": "GBP"}}}});
    server
        .patch(profile_limits, P1, mixed)
        .await
        .expect_error(400, "aggregateWindow.monthly.value.currency");
    let with_max = json!({"type": "ATM_WITHDRAWAL", "aggregateWindow": {
        "daily": {"value": {"amount": 20, "currency": "EUR"}, "max": {"amount": 50, "currency": "EUR"}},
        "monthly": {"value": {"amount": 100, "currency": "EUR"}}}});
    server
        .patch(profile_limits, P1, with_max.clone())
        .await
        .expect(403);
    let got = server
        .patch(profile_limits, OPERATOR, with_max)
        .await
        .expect(200);
    assert!(got.to_string().contains("ATM_WITHDRAWAL"));
    let read = server.get(profile_limits, P1).await.expect(200);
    assert_eq!(read["spendLimits"].as_array().unwrap().len(), 2);

    // Card limits: set two, read, delete one by granularity.
    let card_limits = format!("/v4/spend/profiles/1/cards/{c1}/spend-limits");
    let set = json!({"daily": {"value": {"amount": 50, "currency": "EUR"}},
        "transaction": {"value": {"amount": 25.5, "currency": "EUR"}}});
    let got = server.patch(&card_limits, P1, set).await.expect(200);
    assert_eq!(
        got["transaction"]["value"],
        json!({"amount": 25.50, "currency": "EUR"})
    );
    assert_eq!(got["monthly"], Value::Null);
    let over_precise = json!({"daily": {"value": {"amount": 50.001, "currency": "EUR"}}});
    server
        .patch(&card_limits, P1, over_precise)
        .await
        .expect_error(400, "daily.value.amount");
    let negative = json!({"daily": {"value": {"amount": -5, "currency": "EUR"}}});
    server
        .patch(&card_limits, P1, negative)
        .await
        .expect_error(400, "daily.value.amount");
    let got = server
        .delete(&format!("{card_limits}/transaction"), P1)
        .await
        .expect(200);
    assert_eq!(got["transaction"], Value::Null);
    assert_eq!(got["daily"]["value"]["amount"], json!(50.00));
    server
        .delete(&format!("{card_limits}/weekly"), P1)
        .await
        .expect_error(400, "granularity");
    let read = server.get(&card_limits, P1).await.expect(200);
    assert_eq!(
        read["daily"]["value"]["amount"],
        json!(50.00),
        "refusals changed nothing"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_control_rules() {
    let server = TestServer::start(true).await;
    let (c1, _) = two_profiles(&server).await;
    let rules = format!("/v3/spend/applications/{CLIENT_ID}/spend-controls/rules");
    let rule = json!({"type": "MCC", "operation": "BLOCK", "description": "no gambling",
        "values": ["7995", "7801"]});
    let created = server.post(&rules, APP, rule).await.expect(200);
    let id = created["id"].as_u64().unwrap();
    assert_eq!(created["values"], json!(["7801", "7995"]));
    let bad = json!({"type": "MCC", "operation": "BLOCK", "values": ["79"]});
    server
        .post(&rules, APP, bad)
        .await
        .expect_error(400, "values");
    let bad = json!({"type": "COLOUR", "operation": "BLOCK", "values": ["1"]});
    server
        .post(&rules, APP, bad)
        .await
        .expect_error(400, "type");
    assert_eq!(
        server
            .get(&rules, APP)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let apply = format!("{rules}/apply");
    server
        .post(&apply, APP, json!({"ruleId": id.to_string()}))
        .await
        .expect(200);
    server
        .post(&apply, APP, json!({"ruleId": "12345"}))
        .await
        .expect_error(404, "ruleId");
    let applied = server
        .get(&format!("{rules}/applied"), APP)
        .await
        .expect(200);
    assert_eq!(applied, json!([{"ruleId": id}]));

    // An applied rule declines a matching authorisation.
    let auth_path =
        format!("/v2/simulation/spend/profiles/1/cards/{c1}/transactions/authorisation");
    let auth = json!({"amount": {"value": 5, "currency": "EUR"}, "mcc": 7995, "cardNumber": PAN, "pin": PIN});
    let answer = server.post(&auth_path, P1, auth).await.expect(200);
    assert_eq!(
        answer["reference"]["transaction"]["declineReason"],
        "TRANSACTION_TYPE_NOT_SUPPORTED"
    );

    // Deleting an applied rule is refused; unapplied, it goes.
    let one = format!("{rules}/{id}");
    server.delete(&one, APP).await.expect_error(409, "ruleId");
    server
        .post(&format!("{rules}/unapply"), APP, json!({"ruleId": id}))
        .await
        .expect(200);
    server.delete(&one, APP).await.expect(200);
    server.delete(&one, APP).await.expect_error(404, "ruleId");
    assert_eq!(server.get(&rules, APP).await.expect(200), json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_and_top_up() {
    let server = TestServer::start(true).await;
    sandbox_profile(&server, 1).await;
    let balances = "/v4/profiles/1/balances";
    let key = [("X-idempotence-uuid", "054064c9-e01e-49fb-8fd9-b0990b9442f4")];
    let body = r#"{"currency":"GBP","type":"STANDARD"}"#;
    let created = server
        .raw("POST", balances, Some(P1), Some(body), &key)
        .await
        .expect(201);
    let id = created["id"].as_u64().unwrap();
    assert_eq!(created["amount"], json!({"value": 0.00, "currency": "GBP"}));
    // Again: the same balance, 200.
    let again = server
        .raw("POST", balances, Some(P1), Some(body), &key)
        .await
        .expect(200);
    assert_eq!(again["id"], id);
    server
        .raw("POST", balances, Some(P1), Some(body), &[])
        .await
        .expect_error(400, "X-idempotence-uuid");
    let savings = r#"{"currency":"GBP","type":"SAVINGS","name":"jar"}"#;
    server
        .raw("POST", balances, Some(P1), Some(savings), &key)
        .await
        .expect_error(400, "type");
    server.get(balances, P1).await.expect_error(400, "types");

    let topup = "/v1/simulation/balance/topup";
    let body = json!({"profileId": 1, "balanceId": id, "currency": "GBP", "amount": 100.25, "channel": "TRANSFER"});
    let result = server.post(topup, P1, body).await.expect(200);
    assert_eq!(result["state"], "COMPLETED");
    assert_eq!(result["balancesAfter"][0]["value"], json!(100.25));
    for (body, field) in [
        (
            json!({"profileId": 1, "balanceId": id, "currency": "GBP", "amount": 1.001}),
            "amount",
        ),
        (
            json!({"profileId": 1, "balanceId": id, "currency": "GBP", "amount": -1}),
            "amount",
        ),
        (
            json!({"profileId": 1, "balanceId": id, "currency": "GBP", "amount": "x"}),
            "amount",
        ),
        (
            json!({"profileId": 1, "balanceId": id, "currency": "EUR", "amount": 1}),
            "currency",
        ),
        (
            json!({"profileId": 1, "balanceId": id, "currency": "GBP"}),
            "amount",
        ),
        (
            json!({"profileId": 1, "balanceId": id, "currency": "GBP", "amount": 1, "x": 1}),
            "x",
        ),
    ] {
        server.post(topup, P1, body).await.expect_error(400, field);
    }
    let unknown = json!({"profileId": 1, "balanceId": 999, "currency": "GBP", "amount": 1});
    server
        .post(topup, P1, unknown)
        .await
        .expect_error(404, "balanceId");
    let malformed = server
        .raw("POST", topup, Some(P1), Some("{\"profileId\": 1,"), &[])
        .await;
    assert_eq!(malformed.expect(400)["code"], "malformed_request");

    let one = server
        .get(&format!("{balances}/{id}"), P1)
        .await
        .expect(200);
    assert_eq!(
        one["amount"]["value"],
        json!(100.25),
        "refused top-ups changed nothing"
    );
    server
        .get(&format!("{balances}/424242"), P1)
        .await
        .expect_error(404, "balanceId");
    let list = server
        .get(&format!("{balances}?types=STANDARD,SAVINGS"), P1)
        .await
        .expect(200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_orders_issue_cards() {
    let server = TestServer::start(true).await;
    sandbox_profile(&server, 1).await;
    let orders = "/v3/spend/profiles/1/card-orders";
    let key = [("X-idempotence-uuid", "7a1f0000-0000-4000-8000-000000000001")];
    let body = json!({"program": "VISA_DEBIT_BUSINESS_UK_1_PHYSICAL_CARDS_API",
        "cardHolderName": "Ada Lovelace", "phoneNumber": "+441234567890",
        "address": {"firstLine": "1 Test Street", "city": "London", "postCode": "E1 6JJ", "country": "GB"},
        "lifetimeLimit": 500})
    .to_string();
    let order = server
        .raw("POST", orders, Some(P1), Some(&body), &key)
        .await
        .expect(200);
    assert_eq!(order["status"], "CARD_DETAILS_CREATED");
    assert_eq!(order["cardType"], "PHYSICAL");
    assert_eq!(order["cardHolderName"], "Ada Lovelace");
    let token = order["cardToken"].as_str().unwrap().to_owned();
    // The same key: the same order, no second card.
    let again = server
        .raw("POST", orders, Some(P1), Some(&body), &key)
        .await
        .expect(200);
    assert_eq!(again["id"], order["id"]);
    let list = server.get(orders, P1).await.expect(200);
    assert_eq!(list["totalCount"], 1);
    let id = order["id"].as_u64().unwrap();
    let got = server.get(&format!("{orders}/{id}"), P1).await.expect(200);
    assert_eq!(got["cardToken"], token.as_str());
    server
        .get(&format!("{orders}/77"), P1)
        .await
        .expect_error(404, "cardOrderId");
    let programs = server
        .get(&format!("{orders}/availability"), P1)
        .await
        .expect(200);
    assert_eq!(programs["cardPrograms"].as_array().unwrap().len(), 2);

    // The card exists, inactive until activated, with the ordered lifetime limit.
    let card = server.get(&card_path(1, &token), P1).await.expect(200);
    assert_eq!(card["status"]["value"], "INACTIVE");
    assert_eq!(card["cardHolderName"], "Ada Lovelace");
    let status = format!("{}/status", card_path(1, &token));
    server
        .put(&status, P1, json!({"status": "ACTIVE"}))
        .await
        .expect(200);
    let got = server.get(&format!("{orders}/{id}"), P1).await.expect(200);
    assert_eq!(got["status"], "COMPLETED");
    let limits = server
        .get(
            &format!("/v4/spend/profiles/1/cards/{token}/spend-limits"),
            P1,
        )
        .await
        .expect(200);
    assert_eq!(
        limits["lifetime"]["value"],
        json!({"amount": 500.00, "currency": "GBP"})
    );

    // Refusals: unknown program, missing field, no key; none creates a card.
    let key2 = [("X-idempotence-uuid", "7a1f0000-0000-4000-8000-000000000002")];
    let bad = json!({"program": "GOLD", "cardHolderName": "A", "address": {}}).to_string();
    server
        .raw("POST", orders, Some(P1), Some(&bad), &key2)
        .await
        .expect_error(400, "program");
    let bad = json!({"program": "VISA_DEBIT_BUSINESS_UK_1_CARDS_API", "address": {}}).to_string();
    server
        .raw("POST", orders, Some(P1), Some(&bad), &key2)
        .await
        .expect_error(400, "cardHolderName");
    server
        .raw("POST", orders, Some(P1), Some(&body), &[])
        .await
        .expect_error(400, "X-idempotence-uuid");
    assert_eq!(server.get(orders, P1).await.expect(200)["totalCount"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_simulation_input_is_refused_without_a_trace() {
    let server = TestServer::start(true).await;
    let (c1, c2) = two_profiles(&server).await;
    let auth_path =
        format!("/v2/simulation/spend/profiles/1/cards/{c1}/transactions/authorisation");
    let cases = [
        (
            json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": PAN_2}),
            "cardNumber",
        ),
        (
            json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": "4000001234567890"}),
            "cardNumber",
        ),
        (
            json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": 4000001234567899u64}),
            "cardNumber",
        ),
        (
            json!({"amount": {"value": 1.234, "currency": "EUR"}, "cardNumber": PAN}),
            "amount.value",
        ),
        (
            json!({"amount": {"value": 1, "currency": "ZZZ"}, "cardNumber": PAN}),
            "amount.currency",
        ),
        (
            json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": PAN, "pos": "TELEPATHY"}),
            "pos",
        ),
        (
            json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": PAN, "mcc": 123456}),
            "mcc",
        ),
        (
            json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": PAN, "pin": "12"}),
            "pin",
        ),
        (
            json!({"amount": {"value": 1, "currency": "EUR"}}),
            "cardNumber",
        ),
    ];
    for (body, field) in cases {
        let reply = server.post(&auth_path, P1, body).await;
        reply.expect_error(400, field);
        assert!(!reply.text.contains("4000001234567899"), "{}", reply.text);
        assert!(!reply.text.contains("4000001234567890"), "{}", reply.text);
    }
    // Another profile's card through this profile's path: not found.
    let other = format!("/v2/simulation/spend/profiles/1/cards/{c2}/transactions/authorisation");
    let body = json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": PAN_2});
    server
        .post(&other, P1, body)
        .await
        .expect_error(404, "cardToken");
    // Nothing was recorded and nothing held.
    let list = server
        .get(
            &format!("/v2/simulation/spend/profiles/1/cards/{c1}/transactions"),
            P1,
        )
        .await
        .expect(200);
    assert_eq!(list, json!([]));
    assert_eq!(
        balance_of(&server, 1, P1).await["reservedAmount"]["value"],
        json!(0.00)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_unknown_paths() {
    let server = TestServer::start(false).await;
    let health = server.call("GET", "/health", None, None).await.expect(200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["sandbox"], false);
    let metrics = server.call("GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        metrics.text.contains("cardcore_http_responses_total"),
        "{}",
        metrics.text
    );
    let missing = server.get("/v9/nothing/here", P1).await;
    missing.expect_error(404, "path");
    // Sandbox endpoints do not exist outside sandbox mode, whatever the token.
    server
        .get("/v1/sandbox/clock", OPERATOR)
        .await
        .expect_error(404, "path");
    server.stop().await;
}
