//! Hostile input on the ISO 8583 port: a corpus of malformed frames replayed case by case,
//! and clients that send garbage, oversized lengths, trickled partial frames, floods of
//! connections or pipelined requests they never read, while a well-behaved client keeps
//! being served and the ledger changes only by what that client sent.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cardcore_core::iso8583::Mti;
use cardcore_server::metrics::CloseReason;
use cardcore_server::{Config, Server};
use common::*;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The malformed-frame corpus, one JSON object a line.
const FRAME_CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/hostile/iso/frames.jsonl"
);
/// Funds of the bystander's card, in minor units.
const BYSTANDER_FUNDS_MINOR: i64 = 1_000_000;
/// Authorisations the bystander sends while the others attack, one at a time.
const BYSTANDER_MESSAGES: u32 = 60;
const BYSTANDER_AMOUNT_MINOR: i64 = 10;
/// The slowest answer the bystander may get under attack. The failure this guards against
/// is a server that stops answering; the bound is loose because the test machine is shared.
const BYSTANDER_LATENCY_MAX: Duration = Duration::from_secs(5);
/// How long a test waits for the server to close a connection it should close.
const CLOSE_WITHIN: Duration = Duration::from_secs(8);
/// A second loopback address (Linux routes all of 127/8 to loopback): the "other peer".
const OTHER_PEER_IP: &str = "127.0.0.2";

/// A configuration with short timeouts so that the slow attacks end within the test.
fn hostile_config(dir: &std::path::Path) -> Config {
    let mut config = config(dir);
    config.iso.idle_timeout_s = 2;
    config.iso.frame_timeout_s = 1;
    config.iso.max_connections = 32;
    config.iso.max_connections_per_peer = 24;
    config.iso.max_in_flight_per_connection = 16;
    config
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameCase {
    name: String,
    #[allow(dead_code)] // documentation for the reader of the corpus
    why: String,
    frame: Option<String>,
    frame_hex: Option<String>,
    wire_hex: Option<String>,
    #[serde(default = "one")]
    repeat: usize,
    answers: Vec<String>,
    stan: Option<u32>,
    then: Then,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Then {
    Open,
    Closed,
}

fn load_frame_corpus() -> Vec<FrameCase> {
    let text = std::fs::read_to_string(FRAME_CORPUS).expect("the frame corpus");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("corpus line {l}: {e}")))
        .collect()
}

impl FrameCase {
    /// The bytes to send: framed unless the case gives the wire bytes themselves.
    fn wire(&self) -> Vec<u8> {
        let one = match (&self.frame, &self.frame_hex, &self.wire_hex) {
            (Some(text), None, None) => framed(text.as_bytes()),
            (None, Some(hex), None) => framed(&unhex(hex)),
            (None, None, Some(hex)) => unhex(hex),
            _ => panic!("{}: exactly one of frame, frame_hex, wire_hex", self.name),
        };
        one.repeat(self.repeat)
    }
}

fn framed(message: &[u8]) -> Vec<u8> {
    let len = u16::try_from(message.len()).expect("a frame fits the 2-byte header");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_malformed_frame_corpus_is_answered_30_or_closes_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(hostile_config(dir.path())).await;
    let service = Arc::clone(server.service());
    // A funded card under another PAN: the corpus uses PAN, which the server does not know.
    let profile = funded_card(&service, OTHER_PAN, 50_000).await;
    let hash_before = state_hash(&server).await;
    let mut bystander = Client::connect(&server).await;
    let cases = load_frame_corpus();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());

    for (index, case) in cases.iter().enumerate() {
        let mut client = Client::connect(&server).await;
        client.send_raw(&case.wire()).await;
        for (n, code) in case.answers.iter().enumerate() {
            let answer = client
                .next()
                .await
                .unwrap_or_else(|| panic!("{}: closed before answer {n}", case.name));
            assert_eq!(&answer.code, code, "{}: answer {n}", case.name);
            assert!(answer.mti.is_response(), "{}", case.name);
            if let Some(stan) = case.stan {
                assert_eq!(answer.stan, Some(stan), "{}", case.name);
            }
        }
        match case.then {
            // Still in step: the next request is answered, and nothing came in between.
            Then::Open => {
                let stan = 900_000 + index as u32;
                let echo = client.call(&echo(stan)).await;
                assert_eq!(echo.mti, Mti::NetworkManagementResponse, "{}", case.name);
                assert_eq!((echo.code.as_str(), echo.stan), ("00", Some(stan)));
            }
            Then::Closed => client.expect_closed(CLOSE_WITHIN).await,
        }
        // Whatever one connection sent, the others go on.
        let stan = 800_000 + index as u32;
        assert_eq!(
            bystander.call(&echo(stan)).await.code,
            "00",
            "{}",
            case.name
        );
    }

    assert_eq!(
        state_hash(&server).await,
        hash_before,
        "no case changed state"
    );
    assert_eq!(available_minor(&service, profile).await, 50_000);
    assert_no_invariant_violations(&server).await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bystander_is_served_while_others_attack() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(hostile_config(dir.path())).await;
    let service = Arc::clone(server.service());
    let profile = funded_card(&service, PAN, BYSTANDER_FUNDS_MINOR).await;
    let iso = server.iso_addr();

    let attacks = vec![
        tokio::spawn(random_garbage(iso, 13)),
        tokio::spawn(oversized_lengths(iso)),
        tokio::spawn(slow_loris(iso, 4)),
        tokio::spawn(malformed_flood(iso, 1_500)),
        tokio::spawn(never_reads(iso, 4_000)),
        tokio::spawn(connection_churn(iso, 150)),
    ];
    let latencies = bystander(&server).await;
    for attack in attacks {
        attack.await.expect("the attack ran to its end");
    }

    let mut sorted = latencies.clone();
    sorted.sort();
    let slowest = sorted.last().copied().unwrap_or_default();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    eprintln!("bystander under attack: median {median:?}, slowest {slowest:?}");
    assert_eq!(latencies.len(), BYSTANDER_MESSAGES as usize);
    assert!(
        slowest < BYSTANDER_LATENCY_MAX,
        "slowest answer {slowest:?}"
    );
    let spent = i64::from(BYSTANDER_MESSAGES) * BYSTANDER_AMOUNT_MINOR;
    assert_eq!(
        available_minor(&service, profile).await,
        BYSTANDER_FUNDS_MINOR - spent,
        "only the bystander's authorisations moved money"
    );
    let metrics = service.metrics();
    assert_eq!(
        metrics.messages(Mti::AuthorizationRequest, *b"00"),
        u64::from(BYSTANDER_MESSAGES)
    );
    assert!(metrics.connections_closed(CloseReason::FrameTooLong) >= 2);
    assert!(metrics.connections_closed(CloseReason::SlowFrame) >= 4);
    wait_until(|| metrics.in_flight() == 0 && metrics.connections_open() == 0).await;
    assert_no_invariant_violations(&server).await;
    stop(server).await;
}

/// Authorisations one at a time over one connection; the latency of each.
async fn bystander(server: &Server) -> Vec<Duration> {
    let mut client = Client::connect(server).await;
    let mut latencies = Vec::new();
    for stan in 1..=BYSTANDER_MESSAGES {
        let started = Instant::now();
        let answer = client
            .call(&authorization(PAN, stan, BYSTANDER_AMOUNT_MINOR))
            .await;
        latencies.push(started.elapsed());
        assert_eq!((answer.code.as_str(), answer.stan), ("00", Some(stan)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies
}

/// Connections sending seeded random bytes; each must end closed (unreadable MTI, a length
/// past the limit, or a partial frame that never completes).
async fn random_garbage(iso: SocketAddr, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..8 {
        let len = rng.gen_range(1..4_096);
        let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let mut stream = TcpStream::connect(iso).await.unwrap();
        let _ = stream.write_all(&bytes).await;
        assert_closed_by_server(&mut stream).await;
    }
}

/// Length headers past the frame limit: the stream cannot be trusted, so it is closed.
async fn oversized_lengths(iso: SocketAddr) {
    for header in [[0xFF, 0xFF], [0x20, 0x01]] {
        let mut stream = TcpStream::connect(iso).await.unwrap();
        stream.write_all(&header).await.unwrap();
        let _ = stream.write_all(&[b'0'; 512]).await;
        assert_closed_by_server(&mut stream).await;
    }
}

/// Partial frames trickled a byte at a time, each byte well inside the idle timeout: the
/// frame deadline closes them.
async fn slow_loris(iso: SocketAddr, connections: usize) {
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(iso).await.unwrap();
            let started = Instant::now();
            stream.write_all(&200u16.to_be_bytes()).await.unwrap();
            let mut closed = false;
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if stream.write_all(b"0").await.is_err() || peer_closed(&mut stream).await {
                    closed = true;
                    break;
                }
            }
            assert!(closed, "a trickled frame kept its connection open");
            assert!(started.elapsed() < CLOSE_WITHIN, "{:?}", started.elapsed());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Malformed requests pipelined as fast as the socket takes them, answers read as they come:
/// every one is answered `30`, none is lost.
async fn malformed_flood(iso: SocketAddr, frames: usize) {
    let mut broken = authorization(PAN, 1, 100);
    let last = broken.len() - 1;
    broken[last] = b'X';
    let wire = framed(&broken).repeat(frames);
    let stream = TcpStream::connect(iso).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move { wr.write_all(&wire).await.map(|()| wr) });
    let mut decoder = cardcore_core::iso8583::FrameDecoder::new();
    let mut buf = bytes::BytesMut::new();
    let mut answered = 0;
    while answered < frames {
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            assert_eq!(decode(&frame).code, "30");
            answered += 1;
        }
        if answered == frames {
            break;
        }
        let read = tokio::time::timeout(ANSWER_TIMEOUT, rd.read_buf(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(n)) if n > 0),
            "answers stopped at {answered}"
        );
    }
    drop(writer.await.unwrap().unwrap());
}

/// Requests pipelined by a client that never reads: the server stops reading it once its
/// in-flight bound is taken (TCP flow control backs up to the sender), then closes it when
/// its answers cannot be written for the idle timeout.
async fn never_reads(iso: SocketAddr, frames: usize) {
    let wire = framed(&echo(1)).repeat(frames);
    let mut stream = TcpStream::connect(iso).await.unwrap();
    // The write may block for good once both sides' buffers are full: bound it.
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.write_all(&wire)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The server gave up on the connection: reading now finds its answers, then the end.
    let mut sink = Vec::new();
    let read = tokio::time::timeout(CLOSE_WITHIN, stream.read_to_end(&mut sink)).await;
    assert!(
        read.is_ok(),
        "the connection of a client that never reads stayed open"
    );
}

/// Connections opened and dropped at once, many at a time.
async fn connection_churn(iso: SocketAddr, connections: usize) {
    for _ in 0..connections {
        if let Ok(stream) = TcpStream::connect(iso).await {
            drop(stream);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_connections_leaves_room_for_another_peer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hostile_config(dir.path());
    config.iso.idle_timeout_s = 30;
    config.iso.max_connections = 8;
    config.iso.max_connections_per_peer = 5;
    let server = start(config).await;
    let other: IpAddr = OTHER_PEER_IP.parse().unwrap();

    // The flooding peer opens more connections than the whole bound.
    let mut flood = Vec::new();
    for _ in 0..12 {
        flood.push(connect_from(other, server.iso_addr()).await);
    }
    let metrics = Arc::clone(server.service().metrics());
    wait_until(|| metrics.connections_open() == 5 && metrics.connections_refused() == 7).await;
    let mut refused = 0;
    for stream in &mut flood {
        if peer_closed(stream).await {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 7,
        "past its bound, the peer's connections are closed at once"
    );

    // Another peer still gets in and is served, up to the remaining slots.
    let mut clients = Vec::new();
    for stan in 1..=3 {
        let mut client = Client::connect(&server).await;
        assert_eq!(client.call(&echo(stan)).await.code, "00");
        clients.push(client);
    }
    let mut over = Client::connect(&server).await;
    over.expect_closed(CLOSE_WITHIN).await;
    assert_eq!(metrics.connections_open(), 8);

    // The flood's slots come back when it goes.
    drop(flood);
    wait_until(|| metrics.connections_open() == 3).await;
    let mut again = connect_from(other, server.iso_addr()).await;
    again.write_all(&framed(&echo(9))).await.unwrap();
    let mut header = [0u8; 2];
    tokio::time::timeout(ANSWER_TIMEOUT, again.read_exact(&mut header))
        .await
        .expect("answered in time")
        .expect("the peer is admitted again");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_frame_is_cut_off_at_its_deadline_but_a_slow_answer_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hostile_config(dir.path());
    config.iso.idle_timeout_s = 30;
    config.iso.frame_timeout_s = 1;
    let server = start(config).await;
    let service = Arc::clone(server.service());
    funded_card(&service, PAN, 10_000).await;

    // Half a frame, then silence: closed after the frame timeout, long before idle.
    let mut client = Client::connect(&server).await;
    let whole = framed(&authorization(PAN, 1, 100));
    let started = Instant::now();
    client.send_raw(&whole[..whole.len() / 2]).await;
    client.expect_closed(CLOSE_WITHIN).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // A frame sent in pieces that arrives whole within the deadline is served, and a
    // connection that stays quiet between whole frames is not cut.
    let mut client = Client::connect(&server).await;
    for (stan, pause_ms) in [(2u32, 300u64), (3, 1_500)] {
        let whole = framed(&authorization(PAN, stan, 100));
        let (head, tail) = whole.split_at(whole.len() / 2);
        client.send_raw(head).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.send_raw(tail).await;
        assert_eq!(client.next().await.expect("answered").code, "00");
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
    let metrics = service.metrics();
    wait_until(|| metrics.connections_closed(CloseReason::SlowFrame) == 1).await;
    stop(server).await;
}

/// Connects to `addr` from the loopback address `ip`.
async fn connect_from(ip: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the server has closed `stream` (end of stream or reset within a short wait).
async fn peer_closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// Reads until the server closes the connection; fails if it does not within the bound.
async fn assert_closed_by_server(stream: &mut TcpStream) {
    let mut sink = Vec::new();
    let read = tokio::time::timeout(CLOSE_WITHIN, stream.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "the server kept a hostile connection open");
}

async fn state_hash(server: &Server) -> [u8; 32] {
    let service = Arc::clone(server.service());
    tokio::task::spawn_blocking(move || service.engine().state_hash().unwrap())
        .await
        .unwrap()
}

async fn assert_no_invariant_violations(server: &Server) {
    let service = Arc::clone(server.service());
    let violations = tokio::task::spawn_blocking(move || service.engine().invariant_violations())
        .await
        .unwrap()
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}

/// Polls `condition` until it holds (metrics change just after a connection closes).
async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + CLOSE_WITHIN;
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
