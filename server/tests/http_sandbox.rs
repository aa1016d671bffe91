//! The sandbox endpoints over real TCP and HTTP: what a scenario run against a server does
//! through the management API (reset, clock, FX rates, profiles, cards with known secrets,
//! any status, usage, PIN tries, invariants, state hash, any transaction).

mod http_support;

use http_support::*;
use serde_json::{json, Value};

async fn authorise(server: &TestServer, profile: u64, card: &str, body: Value) -> Value {
    let path =
        format!("/v2/simulation/spend/profiles/{profile}/cards/{card}/transactions/authorisation");
    server.post(&path, OPERATOR, body).await.expect(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_reset_and_profiles() {
    let server = TestServer::start(true).await;
    let clock = server.get("/v1/sandbox/clock", OPERATOR).await.expect(200);
    assert_eq!(clock["now"], "2026-01-15T10:00:00.000Z");
    let set = json!({"now": "2026-03-01T00:00:00Z"});
    let clock = server
        .put("/v1/sandbox/clock", OPERATOR, set)
        .await
        .expect(200);
    assert_eq!(clock["now"], "2026-03-01T00:00:00.000Z");
    let advance = json!({"byMs": 90_000});
    let clock = server
        .post("/v1/sandbox/clock/advance", OPERATOR, advance)
        .await
        .expect(200);
    assert_eq!(clock["now"], "2026-03-01T00:01:30.000Z");
    server
        .post("/v1/sandbox/clock/advance", OPERATOR, json!({"byMs": -1}))
        .await
        .expect_error(400, "byMs");
    server
        .put("/v1/sandbox/clock", OPERATOR, json!({"now": "yesterday"}))
        .await
        .expect_error(400, "now");

    // Profiles: chosen or allocated ids, status and time zone, updates.
    let p = server
        .post(
            "/v1/sandbox/profiles",
            OPERATOR,
            json!({"id": 7, "timeZone": "Asia/Singapore"}),
        )
        .await
        .expect(201);
    assert_eq!(
        p,
        json!({"id": 7, "status": "ACTIVE", "timeZone": "Asia/Singapore",
        "creationTime": "2026-03-01T00:01:30.000Z"})
    );
    let next = server
        .post("/v1/sandbox/profiles", OPERATOR, json!({}))
        .await
        .expect(201);
    assert_eq!(next["id"], 8);
    server
        .post("/v1/sandbox/profiles", OPERATOR, json!({"id": 7}))
        .await
        .expect(409);
    server
        .post(
            "/v1/sandbox/profiles",
            OPERATOR,
            json!({"timeZone": "Mars/Olympus"}),
        )
        .await
        .expect_error(400, "timeZone");
    let changed = server
        .patch(
            "/v1/sandbox/profiles/7",
            OPERATOR,
            json!({"status": "SUSPENDED"}),
        )
        .await
        .expect(200);
    assert_eq!(changed["status"], "SUSPENDED");
    assert_eq!(changed["timeZone"], "Asia/Singapore");
    server
        .patch(
            "/v1/sandbox/profiles/7",
            OPERATOR,
            json!({"status": "HAPPY"}),
        )
        .await
        .expect_error(400, "status");
    server
        .get("/v1/sandbox/profiles/99", OPERATOR)
        .await
        .expect_error(404, "profileId");

    // Reset: everything gone, the clock where the body says.
    let reset = json!({"now": "2026-01-15T10:00:00Z"});
    let clock = server
        .post("/v1/sandbox/reset", OPERATOR, reset)
        .await
        .expect(200);
    assert_eq!(clock["now"], "2026-01-15T10:00:00.000Z");
    server
        .get("/v1/sandbox/profiles/7", OPERATOR)
        .await
        .expect_error(404, "profileId");
    let empty = server
        .call("POST", "/v1/sandbox/reset", Some(OPERATOR), None)
        .await;
    empty.expect(200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_with_secrets_status_usage_and_pin_tries() {
    let server = TestServer::start(true).await;
    sandbox_profile(&server, 1).await;
    sandbox_top_up(&server, 1, "50.00", "EUR").await;
    let issue = json!({"pan": PAN, "pin": PIN, "cvv2": CVV2, "expiry": "2029-07",
        "status": "ACTIVE", "currency": "EUR", "type": "VIRTUAL", "smartConversion": false,
        "locked": ["ATM_WITHDRAWAL"]});
    let reply = server
        .post("/v1/sandbox/profiles/1/cards", OPERATOR, issue.clone())
        .await;
    let card = reply.expect(201);
    for secret in [PAN, "\"1234\"", "\"123\""] {
        assert!(!reply.text.contains(secret), "{}", reply.text);
    }
    assert_eq!(card["maskedPan"], "400000******7899");
    assert_eq!(card["smartConversion"], false);
    assert_eq!(card["pinTries"], 0);
    let token = card["token"].as_str().unwrap().to_owned();
    // The same PAN again is a conflict; a malformed PIN, PAN or expiry is named.
    server
        .post("/v1/sandbox/profiles/1/cards", OPERATOR, issue)
        .await
        .expect(409);
    for (field, value, reference) in [
        ("pin", json!("12a4"), "pin"),
        ("pan", json!("4000001234567890"), "pan"),
        ("expiry", json!("07/29"), "expiry"),
        ("status", json!("LOST"), "status"),
        ("locked", json!(["NFC"]), "locked[0]"),
    ] {
        let mut body = json!({"pan": PAN_2, "expiry": "2029-07"});
        body[field] = value;
        server
            .post("/v1/sandbox/profiles/1/cards", OPERATOR, body)
            .await
            .expect_error(400, reference);
    }

    // Two wrong PINs, then a right one: the tries go 1, 2, 0.
    let wrong =
        json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": PAN, "pin": "4321"});
    let right = json!({"amount": {"value": 10, "currency": "EUR"}, "cardNumber": PAN, "pin": PIN});
    let card_path = format!("/v1/sandbox/profiles/1/cards/{token}");
    for expected in [1, 2] {
        authorise(&server, 1, &token, wrong.clone()).await;
        let card = server.get(&card_path, OPERATOR).await.expect(200);
        assert_eq!(card["pinTries"], expected);
    }
    let answer = authorise(&server, 1, &token, right).await;
    let txn = answer["reference"]["transaction"]["transactionId"]
        .as_u64()
        .unwrap();
    assert_eq!(
        server.get(&card_path, OPERATOR).await.expect(200)["pinTries"],
        0
    );

    // Usage: the card's daily window and the profile's purchase window count 10.00.
    let usage = server
        .get(&format!("{card_path}/limit-usage?window=daily"), OPERATOR)
        .await
        .expect(200);
    assert_eq!(usage["usage"], json!({"amount": 10.00, "currency": "EUR"}));
    let usage = server
        .get(
            "/v1/sandbox/profiles/1/limit-usage?type=PURCHASE&window=monthly",
            OPERATOR,
        )
        .await
        .expect(200);
    assert_eq!(usage["usage"]["amount"], json!(10.00));
    server
        .get(&format!("{card_path}/limit-usage?window=weekly"), OPERATOR)
        .await
        .expect_error(400, "window");
    server
        .get("/v1/sandbox/profiles/1/limit-usage?window=daily", OPERATOR)
        .await
        .expect_error(400, "type");

    // Any transaction by id, with what a scenario expects.
    let got = server
        .get(&format!("/v1/sandbox/transactions/{txn}"), OPERATOR)
        .await
        .expect(200);
    assert_eq!(got["state"], "IN_PROGRESS");
    assert_eq!(got["profileId"], 1);
    assert_eq!(got["amount"], json!({"amount": 10.00, "currency": "EUR"}));
    assert_eq!(got["declineReason"], Value::Null);
    server
        .get("/v1/sandbox/transactions/5", OPERATOR)
        .await
        .expect_error(404, "transactionId");

    // Any status, past the status API's rules; the public status API still refuses.
    let forced = server
        .put(
            &format!("{card_path}/status"),
            OPERATOR,
            json!({"status": "PARTNER_SUSPENDED"}),
        )
        .await
        .expect(200);
    assert_eq!(forced["status"], "PARTNER_SUSPENDED");
    let answer = authorise(
        &server,
        1,
        &token,
        json!({"amount": {"value": 1, "currency": "EUR"}, "cardNumber": PAN}),
    )
    .await;
    assert_eq!(
        answer["reference"]["transaction"]["declineReason"],
        "CARD_PARTNER_SUSPENDED"
    );
    let public = format!("/v3/spend/profiles/1/cards/{token}/status");
    server
        .put(&public, OPERATOR, json!({"status": "ACTIVE"}))
        .await
        .expect_error(409, "status");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fx_rates_invariants_and_state_hash() {
    let server = TestServer::start(true).await;
    sandbox_profile(&server, 1).await;
    sandbox_top_up(&server, 1, "100.00", "GBP").await;
    let set = json!({"from": "GBP", "to": "EUR", "rate": 1.1712345, "feePercent": 0.35});
    let rates = server
        .put("/v1/sandbox/fx-rates", OPERATOR, set)
        .await
        .expect(200);
    let direct = rates
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["from"] == "GBP" && r["to"] == "EUR")
        .cloned()
        .unwrap();
    assert_eq!(direct["rate"], json!(1.1712345), "rates keep every digit");
    assert_eq!(direct["implied"], false);
    let listed = server
        .get("/v1/sandbox/fx-rates", OPERATOR)
        .await
        .expect(200);
    assert_eq!(listed, rates);
    for (body, field) in [
        (json!({"from": "GBP", "to": "GBP", "rate": 1}), "to"),
        (json!({"from": "GBP", "to": "EUR", "rate": 0}), "rate"),
        (
            json!({"from": "GBP", "to": "EUR", "rate": 1, "feePercent": 100}),
            "feePercent",
        ),
        (json!({"from": "GBP", "to": "EUR", "rate": "one"}), "rate"),
        (json!({"from": "XXX", "to": "EUR", "rate": 1}), "from"),
    ] {
        server
            .put("/v1/sandbox/fx-rates", OPERATOR, body)
            .await
            .expect_error(400, field);
    }

    // A EUR purchase on a GBP balance converts; the ledger stays sound.
    let token = sandbox_card(&server, 1, PAN, json!({"currency": "GBP"})).await;
    let answer = authorise(
        &server,
        1,
        &token,
        json!({"amount": {"value": 11.71, "currency": "EUR"}, "cardNumber": PAN, "pin": PIN}),
    )
    .await;
    assert_eq!(
        answer["reference"]["transaction"]["responseCode"], "00",
        "{answer}"
    );
    let invariants = server
        .get("/v1/sandbox/invariants", OPERATOR)
        .await
        .expect(200);
    assert_eq!(invariants, json!({"ok": true, "violations": []}));
    let hash = server
        .get("/v1/sandbox/state-hash", OPERATOR)
        .await
        .expect(200);
    let hash = hash["stateHash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64);
    let again = server
        .get("/v1/sandbox/state-hash", OPERATOR)
        .await
        .expect(200);
    assert_eq!(again["stateHash"], hash.as_str(), "reading changes nothing");
    sandbox_top_up(&server, 1, "1", "GBP").await;
    let moved = server
        .get("/v1/sandbox/state-hash", OPERATOR)
        .await
        .expect(200);
    assert_ne!(moved["stateHash"], hash.as_str());
    server.stop().await;
}
