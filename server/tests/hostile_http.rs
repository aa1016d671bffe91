//! Hostile input on the management API: a corpus of malformed requests replayed one by one
//! (each refused with its status and a JSON error naming the field, none changing state),
//! oversized and deeply nested bodies, oversized heads, and clients that send partial
//! requests or open many connections while another client keeps being served; one address
//! is held to its own connection bound.

mod http_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use cardcore_server::config::DEFAULT_HTTP_MAX_CONNECTIONS_PER_PEER;
use cardcore_server::http::json::BODY_READ_TIMEOUT;
use cardcore_server::http::serve::{HTTP_CONNECTIONS_MAX, HTTP_HEAD_BYTES_MAX, HTTP_HEAD_TIMEOUT};
use cardcore_server::metrics::Refusal;
use http_support::*;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const REQUEST_CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/hostile/http/requests.jsonl"
);
/// The idempotency key card orders and balances carry unless a case says otherwise.
const DEFAULT_KEY: &str = "0b5e0000-0000-4000-8000-0000000000a1";
/// Loopback addresses other than the well-behaved client's 127.0.0.1 (Linux routes all of
/// 127/8 to loopback): the crowd's.
const CROWD_IPS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(127, 0, 0, 2),
    Ipv4Addr::new(127, 0, 0, 3),
    Ipv4Addr::new(127, 0, 0, 4),
    Ipv4Addr::new(127, 0, 0, 5),
];
const REQUEST_HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestCase {
    name: String,
    route: String,
    body: Option<String>,
    body_hex: Option<String>,
    content_type: Option<String>,
    #[serde(default = "default_key")]
    idempotency_key: Option<String>,
    token: Option<String>,
    authorization: Option<String>,
    status: u16,
    #[serde(rename = "ref")]
    field: Option<String>,
}

fn default_key() -> Option<String> {
    Some(DEFAULT_KEY.to_owned())
}

/// Ids the corpus refers to.
struct Fixture {
    card: String,
    balance: u64,
}

async fn fixture(server: &TestServer) -> Fixture {
    sandbox_profile(server, 1).await;
    sandbox_profile(server, 2).await;
    sandbox_top_up(server, 1, "100.00", "EUR").await;
    let card = sandbox_card(server, 1, PAN, json!({})).await;
    sandbox_card(server, 2, PAN_2, json!({})).await;
    let auth = format!("/v2/simulation/spend/profiles/1/cards/{card}/transactions/authorisation");
    let body = json!({"amount": {"value": 10, "currency": "EUR"}, "cardNumber": PAN, "pin": PIN});
    server.post(&auth, P1, body).await.expect(200);
    let balances = server
        .get("/v4/profiles/1/balances?types=STANDARD", P1)
        .await
        .expect(200);
    let balance = balances[0]["id"].as_u64().unwrap();
    Fixture { card, balance }
}

impl RequestCase {
    fn request(&self, fixture: &Fixture, addr: SocketAddr) -> Vec<u8> {
        let (method, path) = self.route.split_once(' ').expect("METHOD path");
        let path = path
            .replace("{card}", &fixture.card)
            .replace("{client}", CLIENT_ID);
        let body = match (&self.body, &self.body_hex) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(hex)) => unhex(hex),
            (None, None) => Vec::new(),
            _ => panic!("{}: body or body_hex, not both", self.name),
        };
        let body = replace_bytes(&body, b"{balance}", fixture.balance.to_string().as_bytes());
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        match (&self.authorization, &self.token) {
            (Some(header), _) => head.push_str(&format!("Authorization: {header}\r\n")),
            (None, Some(token)) => head.push_str(&format!("Authorization: Bearer {token}\r\n")),
            (None, None) => head.push_str(&format!(
                "Authorization: Bearer {}\r\n",
                owner(path.as_str())
            )),
        }
        if let Some(key) = &self.idempotency_key {
            head.push_str(&format!("X-idempotence-uuid: {key}\r\n"));
        }
        let kind = self.content_type.as_deref().unwrap_or("application/json");
        if !body.is_empty() || method != "GET" {
            head.push_str(&format!("Content-Type: {kind}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        [head.into_bytes(), body].concat()
    }
}

/// The token of whoever owns a path: the application, the operator, or profile 1.
fn owner(path: &str) -> &'static str {
    if path.starts_with("/v3/spend/applications/") {
        APP
    } else if path.starts_with("/v1/sandbox/") {
        OPERATOR
    } else {
        P1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_malformed_request_corpus_is_refused_field_by_field_and_changes_nothing() {
    let server = TestServer::start(true).await;
    let fixture = fixture(&server).await;
    let text = std::fs::read_to_string(REQUEST_CORPUS).unwrap();
    let cases: Vec<RequestCase> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let before = state_hash(&server).await;

    let mut wrong = Vec::new();
    for case in &cases {
        let (status, body) = exchange(server.http, &case.request(&fixture, server.http)).await;
        if let Err(problem) = check_refusal(case, status, &body) {
            wrong.push(format!("{}: {problem}\n    {body}", case.name));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cases:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    assert_eq!(
        state_hash(&server).await,
        before,
        "a refused request changed state"
    );
    let list = server
        .get("/v3/spend/profiles/1/cards", P1)
        .await
        .expect(200);
    assert_eq!(list["totalCount"], 1, "no card order went through");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_deeply_nested_input_is_refused_whole() {
    let server = TestServer::start(true).await;
    let fixture = fixture(&server).await;
    let before = state_hash(&server).await;
    let auth = format!(
        "/v2/simulation/spend/profiles/1/cards/{}/transactions/authorisation",
        fixture.card
    );
    let nested = format!(
        "{{\"amount\":{}{}}}",
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    let long_name = format!(
        "{{\"amount\":{{\"value\":5,\"currency\":\"EUR\"}},\"cardNumber\":\"{PAN}\",\"merchantName\":\"{}\"}}",
        "A".repeat(60_000)
    );
    let over_limit = format!("{{\"pad\":\"{}\"}}", "x".repeat(200_000));
    for (name, body, status) in [
        ("nested 30000 deep", nested, 400),
        ("60 KB merchant name", long_name, 400),
        ("200 KB body", over_limit, 413),
    ] {
        let reply = server.raw("POST", &auth, Some(P1), Some(&body), &[]).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text);
        assert_error_shape(&reply.json(), status, name);
    }
    // A head past the bound, whether in one header or in the path: 431, the server goes on.
    let huge_header = "h".repeat(2 * HTTP_HEAD_BYTES_MAX);
    let reply = server
        .raw("GET", "/health", None, None, &[("X-Padding", &huge_header)])
        .await;
    assert_eq!(reply.status, 431);
    let long_path = format!(
        "/v3/spend/profiles/1/cards/{}",
        "1".repeat(2 * HTTP_HEAD_BYTES_MAX)
    );
    let reply = server.raw("GET", &long_path, Some(P1), None, &[]).await;
    assert_eq!(reply.status, 431);
    assert_eq!(state_hash(&server).await, before);
    server.get("/health", OPERATOR).await.expect(200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bystander_is_served_while_others_stall_and_flood_connections() {
    let server = TestServer::start(true).await;
    fixture(&server).await;
    let addr = server.http;
    // Partial heads, partial bodies, and a crowd of idle connections, from addresses other
    // than the bystander's, each under its own bound.
    let crowd = |n: usize| IpAddr::V4(CROWD_IPS[n % CROWD_IPS.len()]);
    const _: () = assert!(220 / CROWD_IPS.len() <= DEFAULT_HTTP_MAX_CONNECTIONS_PER_PEER);
    let mut stalled = Vec::new();
    for n in 0..20 {
        let mut stream = connect_from(crowd(n), addr).await;
        let partial = if n % 2 == 0 {
            "GET /v3/spend/profiles/1/cards HTTP/1.1\r\nHost: x\r\nAuthor".to_owned()
        } else {
            format!("POST /v1/sandbox/profiles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\":")
        };
        stream.write_all(partial.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    for n in 20..220 {
        stalled.push(connect_from(crowd(n), addr).await);
    }
    let started = Instant::now();
    for _ in 0..20 {
        server
            .get("/v3/spend/profiles/1/cards", P1)
            .await
            .expect(200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_heads_bodies_and_idle_connections_are_cut_off() {
    let server = TestServer::start(true).await;
    let addr = server.http;
    let slack = Duration::from_secs(5);
    let started = Instant::now();
    // A head that never ends, a connection that never says anything, and a body that never
    // arrives; all at once, so the test waits for the longest only.
    let head = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        closed_within(&mut stream, HTTP_HEAD_TIMEOUT + slack).await
    });
    let idle = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        closed_within(&mut stream, HTTP_HEAD_TIMEOUT + slack).await
    });
    let body = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /v1/sandbox/profiles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\":"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(BODY_READ_TIMEOUT + slack, stream.read_to_end(&mut answer));
        read.await.expect("answered in time").expect("read");
        String::from_utf8_lossy(&answer).into_owned()
    });
    for (name, task) in [("stalled head", head), ("idle connection", idle)] {
        let took = task.await.unwrap();
        assert!(
            took >= HTTP_HEAD_TIMEOUT - Duration::from_secs(1),
            "{name}: {took:?}"
        );
    }
    let answer = body.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= BODY_READ_TIMEOUT);
    // Nothing of the stalled body was acted on.
    server
        .get("/v1/sandbox/profiles/1", OPERATOR)
        .await
        .expect(404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_bound_are_closed_at_once() {
    // One address may take every slot here.
    let server = TestServer::start_with(true, |c| {
        c.http.max_connections_per_peer = HTTP_CONNECTIONS_MAX;
    })
    .await;
    let addr = server.http;
    let mut held = Vec::with_capacity(HTTP_CONNECTIONS_MAX);
    for _ in 0..HTTP_CONNECTIONS_MAX {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Each held connection is in service once it answers; then the bound is full.
    let (last, rest) = held.split_last_mut().unwrap();
    for stream in std::iter::once(last).chain(rest.iter_mut().take(3)) {
        assert_in_service(stream).await;
    }
    // From another address, so only the listener's own bound stands in the way.
    let mut over = connect_from(IpAddr::V4(CROWD_IPS[0]), addr).await;
    let _ = over.write_all(REQUEST_HEALTH).await;
    let took = closed_within(&mut over, Duration::from_secs(3)).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    let metrics = server.service.metrics();
    assert_eq!(
        metrics.http_connections_refused(Refusal::ConnectionBound),
        1
    );
    assert_eq!(metrics.http_connections_refused(Refusal::PeerBound), 0);
    // Slots come back as connections go.
    held.truncate(HTTP_CONNECTIONS_MAX - 10);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no slot came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_at_its_bound_does_not_keep_another_from_being_served() {
    let server = TestServer::start(true).await;
    let addr = server.http;
    let greedy = IpAddr::V4(CROWD_IPS[0]);
    let mut held = Vec::with_capacity(DEFAULT_HTTP_MAX_CONNECTIONS_PER_PEER);
    for _ in 0..DEFAULT_HTTP_MAX_CONNECTIONS_PER_PEER {
        held.push(connect_from(greedy, addr).await);
    }
    // Connections are admitted in order: once the last answers, all of them are counted.
    assert_in_service(held.last_mut().unwrap()).await;

    // The greedy address's next connection is closed at once...
    let mut over = connect_from(greedy, addr).await;
    let _ = over.write_all(REQUEST_HEALTH).await;
    let took = closed_within(&mut over, Duration::from_secs(3)).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    let metrics = server.service.metrics();
    assert_eq!(metrics.http_connections_refused(Refusal::PeerBound), 1);
    assert_eq!(
        metrics.http_connections_refused(Refusal::ConnectionBound),
        0
    );

    // ...while another address gets in, several connections at once, and is served.
    let mut others = Vec::new();
    for _ in 0..8 {
        others.push(connect_from(IpAddr::V4(CROWD_IPS[1]), addr).await);
    }
    for stream in &mut others {
        assert_in_service(stream).await;
    }
    server.get("/health", OPERATOR).await.expect(200);
    sandbox_profile(&server, 1).await;
    server
        .get("/v3/spend/profiles/1/cards", P1)
        .await
        .expect(200);

    // A slot of the greedy address comes back when one of its connections goes.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = connect_from(greedy, addr).await;
        let request = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the address's slot did not come back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop((held, others));
    server.stop().await;
}

/// Connects to `addr` from the loopback address `ip`.
async fn connect_from(ip: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Sends `GET /health` on a kept-alive connection and reads the status line: the
/// connection was admitted and is served (once per connection: the rest of the answer is
/// left unread).
async fn assert_in_service(stream: &mut TcpStream) {
    stream.write_all(REQUEST_HEALTH).await.unwrap();
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).await.unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
}

/// Waits until the server closes `stream` (anything it sends first is read and dropped);
/// how long that took. Fails if it stays open past `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "the connection stayed open for {within:?}");
    started.elapsed()
}

/// Whether an answer is the refusal the case expects.
fn check_refusal(case: &RequestCase, status: u16, body: &str) -> Result<(), String> {
    if status != case.status {
        return Err(format!("status {status}, expected {}", case.status));
    }
    let error: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    for key in ["type", "title", "code", "detail"] {
        if !error[key].is_string() {
            return Err(format!("no {key}"));
        }
    }
    if error["status"] != status {
        return Err("the body's status differs".to_owned());
    }
    let field = error["errors"][0]["ref"].as_str();
    if field != case.field.as_deref() {
        return Err(format!("ref {field:?}, expected {:?}", case.field));
    }
    if body.contains(PAN) {
        return Err("the PAN is echoed".to_owned());
    }
    Ok(())
}

/// Sends raw request bytes on a new connection; the status and the body text.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(REQUEST_TIMEOUT, stream.read_to_end(&mut bytes))
        .await
        .expect("answered in time")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_owned())
}

fn assert_error_shape(error: &Value, status: u16, name: &str) {
    assert_eq!(error["status"], status, "{name}: {error}");
    for key in ["type", "title", "code", "detail"] {
        assert!(error[key].is_string(), "{name}: no {key}: {error}");
    }
}

async fn state_hash(server: &TestServer) -> Value {
    server
        .get("/v1/sandbox/state-hash", OPERATOR)
        .await
        .expect(200)["stateHash"]
        .clone()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}
