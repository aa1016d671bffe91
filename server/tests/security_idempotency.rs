//! Retries change state once. On the ISO 8583 port: an authorisation, advice, single-message
//! request, reversal or clearing sent again (the same STAN, transmission time and acquirer;
//! or its repeat MTI 0101/0121/0221/0401/0421; or the same message on several connections at
//! once; or after a restart) gets the original answer and moves no more money. On the
//! management API: requests with the same `X-idempotence-uuid` (card orders, balances) get
//! the same answer and create one thing, sequentially, concurrently and across a restart.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use cardcore_core::iso8583::{MessageBuilder, Mti, OriginalData, ProcessingCode, TransmissionTime};
use cardcore_core::{Pan, ProfileId};
use cardcore_server::http::order_keys::ORDER_KEYS_FILE;
use cardcore_server::{Config, Role, Secret, Server, TokenConfig};
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FUNDS_MINOR: i64 = 100_000;
/// DE 7 and DE 32 of every message here (as `common::authorization` sends them).
const TRANSMISSION: &[u8; 10] = b"0115100000";
const ACQUIRER: u64 = 123_456;
/// Requests sent at once on separate connections.
const CONCURRENT_COPIES: usize = 6;

/// `(available, reserved, cash)` of the profile's EUR balance, in minor units.
async fn money(server: &Server, profile: ProfileId) -> (i64, i64, i64) {
    let service = Arc::clone(server.service());
    tokio::task::spawn_blocking(move || {
        let b = &service.engine().balances(profile).unwrap()[0];
        (
            b.available.amount_minor,
            b.reserved.amount_minor,
            b.cash.amount_minor,
        )
    })
    .await
    .unwrap()
}

async fn transaction_count(server: &Server, profile: ProfileId) -> usize {
    let service = Arc::clone(server.service());
    tokio::task::spawn_blocking(move || {
        let engine = service.engine();
        let card = engine.cards(profile).unwrap()[0].token;
        engine
            .card_transactions(profile, card, 0, 1_000)
            .unwrap()
            .len()
    })
    .await
    .unwrap()
}

/// `message` under another MTI (the MTI is its first four characters).
fn as_mti(mut message: Vec<u8>, mti: Mti) -> Vec<u8> {
    message[..4].copy_from_slice(mti.as_bytes());
    message
}

/// A clearing (0220) or reversal (0400/0420) of the authorisation with STAN `original`.
fn follow_up(
    mti: Mti,
    stan: u32,
    amount_minor: i64,
    original: u32,
    final_minor: Option<i64>,
) -> Vec<u8> {
    let time = TransmissionTime::from_digits(TRANSMISSION).unwrap();
    let mut b = MessageBuilder::new(mti);
    b.set_pan(&Pan::parse(PAN).unwrap()).unwrap();
    b.set_processing_code(ProcessingCode::new(ProcessingCode::PURCHASE))
        .unwrap();
    b.set_amount(eur(amount_minor)).unwrap();
    b.set_transmission_time(time).unwrap();
    b.set_stan(stan).unwrap();
    b.set_acquirer_id(ACQUIRER).unwrap();
    b.set_original_data(&OriginalData {
        mti_code: 100,
        stan: original,
        transmission_time: time,
        acquirer_id: ACQUIRER,
        forwarding_id: 0,
    })
    .unwrap();
    if let Some(final_minor) = final_minor {
        b.set_replacement_amount_minor(final_minor).unwrap();
    }
    b.to_vec()
}

/// Sends each message in turn and checks every answer is the first one.
async fn same_answer_each_time(client: &mut Client, messages: &[Vec<u8>]) -> Answer {
    let first = client.call(&messages[0]).await;
    for (n, message) in messages.iter().enumerate().skip(1) {
        let again = client.call(message).await;
        assert_eq!(again, first, "copy {n}");
    }
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_authorisations_advices_and_single_messages_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let profile = funded_card(server.service(), PAN, FUNDS_MINOR).await;
    let mut client = Client::connect(&server).await;

    let auth = authorization(PAN, 1, 1_000);
    let copies = [
        auth.clone(),
        auth.clone(),
        as_mti(auth, Mti::AuthorizationRequestRepeat),
    ];
    let answer = same_answer_each_time(&mut client, &copies).await;
    assert_eq!(answer.code, "00");
    assert!(answer.approval.is_some());
    assert_eq!(money(&server, profile).await, (99_000, 1_000, 100_000));

    let advice = as_mti(authorization(PAN, 2, 300), Mti::AuthorizationAdvice);
    let copies = [
        advice.clone(),
        advice.clone(),
        as_mti(advice, Mti::AuthorizationAdviceRepeat),
    ];
    assert_eq!(same_answer_each_time(&mut client, &copies).await.code, "00");
    assert_eq!(money(&server, profile).await, (98_700, 1_300, 100_000));

    let single = as_mti(authorization(PAN, 3, 200), Mti::FinancialRequest);
    let copies = [single.clone(), single];
    assert_eq!(same_answer_each_time(&mut client, &copies).await.code, "00");
    assert_eq!(money(&server, profile).await, (98_500, 1_300, 99_800));

    // A declined authorisation repeated: the same decline, one transaction recorded.
    let too_big = authorization(PAN, 4, 10_000_000);
    let declined = same_answer_each_time(&mut client, &[too_big.clone(), too_big]).await;
    assert_eq!(declined.code, "51");
    assert_eq!(transaction_count(&server, profile).await, 4);
    assert_eq!(money(&server, profile).await, (98_500, 1_300, 99_800));
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_reversals_and_clearings_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let profile = funded_card(server.service(), PAN, FUNDS_MINOR).await;
    let mut client = Client::connect(&server).await;
    assert_eq!(client.call(&authorization(PAN, 10, 1_000)).await.code, "00");
    assert_eq!(client.call(&authorization(PAN, 20, 1_000)).await.code, "00");

    // A partial reversal to 600, sent three ways: the hold is 600, not 200.
    let partial = follow_up(Mti::ReversalRequest, 11, 1_000, 10, Some(600));
    let copies = [
        partial.clone(),
        partial.clone(),
        as_mti(partial, Mti::ReversalRequestRepeat),
    ];
    assert_eq!(same_answer_each_time(&mut client, &copies).await.code, "00");
    assert_eq!(money(&server, profile).await, (98_400, 1_600, 100_000));

    // A full reversal advice, sent three ways: released once.
    let full = follow_up(Mti::ReversalAdvice, 12, 1_000, 10, Some(0));
    let copies = [
        full.clone(),
        full.clone(),
        as_mti(full, Mti::ReversalAdviceRepeat),
    ];
    assert_eq!(same_answer_each_time(&mut client, &copies).await.code, "00");
    assert_eq!(money(&server, profile).await, (99_000, 1_000, 100_000));

    // A clearing of 800 for the other authorisation, sent three ways: posted once.
    let clearing = follow_up(Mti::FinancialAdvice, 21, 800, 20, None);
    let copies = [
        clearing.clone(),
        clearing.clone(),
        as_mti(clearing, Mti::FinancialAdviceRepeat),
    ];
    assert_eq!(same_answer_each_time(&mut client, &copies).await.code, "00");
    assert_eq!(money(&server, profile).await, (99_200, 0, 99_200));

    // A new reversal or clearing (another STAN) of what is already final moves nothing.
    client
        .call(&follow_up(Mti::ReversalRequest, 13, 1_000, 10, Some(0)))
        .await;
    client
        .call(&follow_up(Mti::FinancialAdvice, 22, 800, 20, None))
        .await;
    assert_eq!(money(&server, profile).await, (99_200, 0, 99_200));
    assert_eq!(transaction_count(&server, profile).await, 2);
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_on_several_connections_at_once_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let profile = funded_card(server.service(), PAN, FUNDS_MINOR).await;
    let mut clients = Vec::new();
    for _ in 0..CONCURRENT_COPIES {
        clients.push(Client::connect(&server).await);
    }
    for (stan, message) in [
        (30, authorization(PAN, 30, 700)),
        (31, follow_up(Mti::FinancialAdvice, 31, 500, 30, None)),
    ] {
        let tasks: Vec<_> = clients
            .drain(..)
            .map(|mut client| {
                let message = message.clone();
                tokio::spawn(async move {
                    client.send(&message).await;
                    let answer = client.next().await.expect("an answer");
                    (client, answer)
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            let (client, answer) = task.await.unwrap();
            clients.push(client);
            answers.push(answer);
        }
        assert!(
            answers.iter().all(|a| a == &answers[0]),
            "STAN {stan}: {answers:?}"
        );
        assert_eq!(answers[0].code, "00", "STAN {stan}");
    }
    assert_eq!(money(&server, profile).await, (99_500, 0, 99_500));
    assert_eq!(transaction_count(&server, profile).await, 1);
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_recognised_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let profile = funded_card(server.service(), PAN, FUNDS_MINOR).await;
    let auth = authorization(PAN, 40, 1_000);
    let reversal = follow_up(Mti::ReversalRequest, 41, 1_000, 40, Some(400));
    let mut client = Client::connect(&server).await;
    let approved = client.call(&auth).await;
    let reversed = client.call(&reversal).await;
    drop(client);
    stop(server).await;

    let server = start(config(dir.path())).await;
    let mut client = Client::connect(&server).await;
    assert_eq!(client.call(&auth).await, approved);
    assert_eq!(client.call(&reversal).await, reversed);
    assert_eq!(money(&server, profile).await, (99_600, 400, 100_000));
    assert_eq!(transaction_count(&server, profile).await, 1);
    stop(server).await;
}

// ---------------------------------------------------------------------------------------------
// The management API.

const OPERATOR: &str = "operator-token";
const P1: &str = "profile-one-token";
const P2: &str = "profile-two-token";
const ORDERS_1: &str = "/v3/spend/profiles/1/card-orders";
const KEY_A: &str = "0b5e0000-0000-4000-8000-00000000000a";
const KEY_B: &str = "0b5e0000-0000-4000-8000-00000000000b";

fn api_config(dir: &Path) -> Config {
    let mut config = config(dir);
    config.sandbox = true;
    config.tokens = [
        (OPERATOR, Role::Operator),
        (P1, Role::Profile(ProfileId(1))),
        (P2, Role::Profile(ProfileId(2))),
    ]
    .into_iter()
    .map(|(token, role)| TokenConfig {
        token: Secret::new(token),
        role,
    })
    .collect();
    config
}

fn order_body(holder: &str) -> Value {
    json!({"program": "VISA_DEBIT_BUSINESS_UK_1_CARDS_API", "cardHolderName": holder,
        "address": {"firstLine": "1 Test Street", "city": "London", "postCode": "E1 6JJ",
        "country": "GB"}})
}

/// One HTTP/1.1 exchange on its own connection: the status and the JSON body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    );
    if let Some(key) = key {
        request.push_str(&format!("X-idempotence-uuid: {key}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(ANSWER_TIMEOUT, stream.read_to_end(&mut bytes))
        .await
        .expect("answered in time")
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    (status, json)
}

async fn order(server: &Server, token: &str, path: &str, key: &str, holder: &str) -> (u16, Value) {
    let body = order_body(holder);
    http(
        server.http_addr(),
        "POST",
        path,
        token,
        Some(key),
        Some(&body),
    )
    .await
}

async fn card_count(server: &Server, token: &str, profile: u64) -> u64 {
    let path = format!("/v3/spend/profiles/{profile}/cards");
    let (status, list) = http(server.http_addr(), "GET", &path, token, None, None).await;
    assert_eq!(status, 200, "{list}");
    list["totalCount"].as_u64().unwrap()
}

async fn sandbox_profiles(server: &Server) {
    for id in [1, 2] {
        let body = json!({"id": id});
        let (status, _) = http(
            server.http_addr(),
            "POST",
            "/v1/sandbox/profiles",
            OPERATOR,
            None,
            Some(&body),
        )
        .await;
        assert_eq!(status, 201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_order_retried_with_its_key_issues_one_card() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(api_config(dir.path())).await;
    sandbox_profiles(&server).await;

    let (status, first) = order(&server, P1, ORDERS_1, KEY_A, "Ada Lovelace").await;
    assert_eq!(status, 200, "{first}");
    // Retried, even with another body: the first order, no second card.
    for holder in ["Ada Lovelace", "Someone Else"] {
        let (status, again) = order(&server, P1, ORDERS_1, KEY_A, holder).await;
        assert_eq!(status, 200);
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["cardToken"], first["cardToken"]);
        assert_eq!(again["cardHolderName"], "Ada Lovelace");
    }
    assert_eq!(card_count(&server, P1, 1).await, 1);

    // Retries racing each other: one card between them.
    let tasks: Vec<_> = (0..CONCURRENT_COPIES)
        .map(|_| {
            let addr = server.http_addr();
            tokio::spawn(async move {
                let body = order_body("Grace Hopper");
                http(addr, "POST", ORDERS_1, P1, Some(KEY_B), Some(&body)).await
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        tokens.push(answer["cardToken"].clone());
    }
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    assert_ne!(tokens[0], first["cardToken"]);
    assert_eq!(card_count(&server, P1, 1).await, 2);

    // A key belongs to its profile: the same key elsewhere is another order.
    let orders_2 = "/v3/spend/profiles/2/card-orders";
    let (status, other) = order(&server, P2, orders_2, KEY_A, "Ada Lovelace").await;
    assert_eq!(status, 200);
    assert_ne!(other["cardToken"], first["cardToken"]);
    assert_eq!(card_count(&server, P2, 2).await, 1);
    assert_eq!(card_count(&server, P1, 1).await, 2);
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_order_key_is_remembered_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(api_config(dir.path())).await;
    sandbox_profiles(&server).await;
    let (status, first) = order(&server, P1, ORDERS_1, KEY_A, "Ada Lovelace").await;
    assert_eq!(status, 200, "{first}");
    stop(server).await;
    // KEY_B as a crash leaves it: recorded with the PAN drawn for it, no card issued yet.
    let keys_file = dir.path().join("state").join(ORDER_KEYS_FILE);
    let key_b = cardcore_core::CardToken::parse(KEY_B).unwrap().0;
    let mut text = std::fs::read_to_string(&keys_file).expect("the keys file");
    assert_eq!(text.lines().count(), 1, "{text}");
    text.push_str(&format!("v1 1 {key_b:032x} {:032x}\n", 0x5eed_u128));
    std::fs::write(&keys_file, text).unwrap();

    let server = start(api_config(dir.path())).await;
    let (status, again) = order(&server, P1, ORDERS_1, KEY_A, "Ada Lovelace").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["cardToken"], first["cardToken"]);
    assert_eq!(card_count(&server, P1, 1).await, 1);
    // The interrupted order is completed by its retry, once.
    let (status, b) = order(&server, P1, ORDERS_1, KEY_B, "Grace Hopper").await;
    assert_eq!(status, 200, "{b}");
    let (status, b_again) = order(&server, P1, ORDERS_1, KEY_B, "Grace Hopper").await;
    assert_eq!(status, 200, "{b_again}");
    assert_eq!(b_again["cardToken"], b["cardToken"]);
    assert_eq!(card_count(&server, P1, 1).await, 2);
    // A sandbox reset forgets the keys with everything else.
    let (status, _) = http(
        server.http_addr(),
        "POST",
        "/v1/sandbox/reset",
        OPERATOR,
        None,
        None,
    )
    .await;
    assert!((200..300).contains(&status));
    sandbox_profiles(&server).await;
    let (status, fresh) = order(&server, P1, ORDERS_1, KEY_A, "Ada Lovelace").await;
    assert_eq!(status, 200, "{fresh}");
    assert_ne!(fresh["cardToken"], first["cardToken"]);
    assert_eq!(card_count(&server, P1, 1).await, 1);
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_created_again_with_its_key_is_the_same_balance() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(api_config(dir.path())).await;
    sandbox_profiles(&server).await;
    let path = "/v4/profiles/1/balances";
    let body = json!({"currency": "GBP", "type": "STANDARD"});
    let addr = server.http_addr();
    let (status, first) = http(addr, "POST", path, P1, Some(KEY_A), Some(&body)).await;
    assert_eq!(status, 201, "{first}");
    let tasks: Vec<_> = (0..CONCURRENT_COPIES)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(
                async move { http(addr, "POST", path, P1, Some(KEY_A), Some(&body)).await },
            )
        })
        .collect();
    for task in tasks {
        let (status, again) = task.await.unwrap();
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["id"], first["id"]);
    }
    let (_, list) = http(
        addr,
        "GET",
        "/v4/profiles/1/balances?types=STANDARD",
        P1,
        None,
        None,
    )
    .await;
    let gbp = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["currency"] == "GBP")
        .count();
    assert_eq!(gbp, 1, "{list}");
    stop(server).await;
}
