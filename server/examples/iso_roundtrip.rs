//! Measures the ISO 8583 path end to end over loopback TCP: a server in this process (its own
//! temporary data directory, real sled journal), clients on the same runtime.
//!
//! ```text
//! cargo run --release -p cardcore-server --example iso_roundtrip -- [sync|async]
//! ```
//!
//! 1. Sequential: one connection, one request at a time: the round-trip latency of one
//!    authorisation, durability wait included in `sync` mode.
//! 2. Pipelined: several connections, each keeping a window of requests in flight:
//!    throughput, and the latency of each request under that load.
//!
//! Every request is an approved chip purchase on one of the cards; each has its own STAN.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cardcore_authz::management::IssueCard;
use cardcore_core::iso8583::{
    parse, FrameDecoder, MessageBuilder, Mti, PosEntryMode, ProcessingCode, TransmissionTime,
};
use cardcore_core::{
    CardStatus, CardType, Currency, Expiry, Mcc, Money, Pan, ProfileStatus, TimeZone,
};
use cardcore_server::config::DurabilityMode;
use cardcore_server::{Config, Server, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CARDS: u32 = 64;
const SEQUENTIAL_REQUESTS: u32 = 5_000;
const CONNECTIONS: u32 = 4;
const WINDOW: usize = 32;
const PIPELINED_PER_CONNECTION: u32 = 25_000;

fn main() -> anyhow::Result<()> {
    let mode = match std::env::args().nth(1).as_deref() {
        None | Some("sync") => DurabilityMode::Sync,
        Some("async") => DurabilityMode::Async,
        Some(other) => anyhow::bail!("mode must be sync or async, not {other}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(mode))
}

async fn run(mode: DurabilityMode) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        iso_listen: "127.0.0.1:0".into(),
        http_listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    config.durability.mode = mode;
    let service = tokio::task::spawn_blocking(move || Service::open(config)).await??;
    let pans = tokio::task::spawn_blocking({
        let service = Arc::clone(&service);
        move || setup(&service)
    })
    .await??;
    let server = Server::start(Arc::clone(&service), axum::Router::new()).await?;
    println!("mode {mode:?}, {CARDS} cards");

    let mut stream = connect(&server).await?;
    let mut latencies = Vec::new();
    for stan in 1..=SEQUENTIAL_REQUESTS {
        let pan = &pans[(stan % CARDS) as usize];
        let started = Instant::now();
        send(&mut stream, &[authorization(pan, stan)]).await?;
        read_answers(&mut stream, 1).await?;
        latencies.push(started.elapsed());
    }
    report("sequential, 1 connection", &mut latencies, None);

    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let stream = connect(&server).await?;
        tasks.push(tokio::spawn(pipelined(
            stream,
            pans.clone(),
            (c + 1) * 1_000_000,
        )));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let label = format!("pipelined, {CONNECTIONS} connections x window {WINDOW}");
    report(&label, &mut latencies, Some(elapsed));
    println!("{}", metrics_excerpt(&service.render_prometheus()));
    server.shutdown().await?;
    service.close().await?;
    Ok(())
}

/// Keeps `WINDOW` requests in flight on one connection; returns each one's latency.
async fn pipelined(
    mut stream: TcpStream,
    pans: Vec<Pan>,
    first_stan: u32,
) -> anyhow::Result<Vec<Duration>> {
    let mut sent_at = std::collections::HashMap::new();
    let mut latencies = Vec::with_capacity(PIPELINED_PER_CONNECTION as usize);
    let mut decoder = (FrameDecoder::new(), BytesMut::new());
    let mut next = 0;
    while latencies.len() < PIPELINED_PER_CONNECTION as usize {
        let mut batch = Vec::new();
        while next < PIPELINED_PER_CONNECTION && sent_at.len() + batch.len() < WINDOW {
            let stan = first_stan + next;
            batch.push(authorization(&pans[(next % CARDS) as usize], stan));
            sent_at.insert(stan, Instant::now());
            next += 1;
        }
        send(&mut stream, &batch).await?;
        for stan in read_some(&mut stream, &mut decoder).await? {
            let at = sent_at
                .remove(&stan)
                .ok_or_else(|| anyhow::anyhow!("stray STAN"))?;
            latencies.push(at.elapsed());
        }
    }
    Ok(latencies)
}

fn setup(service: &Service) -> anyhow::Result<Vec<Pan>> {
    let engine = service.engine();
    let eur = Currency::from_alpha("EUR")?;
    let mut pans = Vec::new();
    for i in 0..CARDS {
        let body = format!("400000{i:09}");
        let check = cardcore_core::pan::luhn_check_digit(body.as_bytes());
        let pan = Pan::parse(&format!("{body}{}", char::from(check)))?;
        let profile = engine.create_profile(None, ProfileStatus::Active, TimeZone::UTC)?;
        engine.open_balance(profile, eur)?;
        engine.top_up(profile, Money::new(1_000_000_000, eur))?;
        engine.issue_card(IssueCard {
            profile,
            pan,
            pin: None,
            cvv2: None,
            expiry: Expiry::new(2030, 12)?,
            status: CardStatus::Active,
            currency: eur,
            card_type: CardType::Virtual,
            smart_conversion: true,
            locked: Vec::new(),
        })?;
        pans.push(pan);
    }
    Ok(pans)
}

/// An approved-to-be chip purchase of 1.00 EUR; `stan` above 999 999 goes into the
/// acquirer id, so every request of a run has its own message key.
fn authorization(pan: &Pan, stan: u32) -> Vec<u8> {
    let eur = Currency::from_alpha("EUR").expect("EUR is in the table");
    let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
    b.set_pan(pan)
        .and_then(|b| b.set_processing_code(ProcessingCode::new(ProcessingCode::PURCHASE)))
        .and_then(|b| b.set_amount(Money::new(100, eur)))
        .and_then(|b| b.set_stan(stan % 1_000_000))
        .and_then(|b| b.set_mcc(Mcc(5999)))
        .and_then(|b| b.set_acquirer_id(u64::from(stan / 1_000_000) + 1))
        .and_then(|b| {
            b.set_transmission_time(TransmissionTime::from_digits(b"0115100000").expect("valid"))
        })
        .and_then(|b| b.set_pos_entry_mode(PosEntryMode::from_digits(b"051").expect("valid")))
        .expect("every field is valid");
    b.to_vec()
}

async fn connect(server: &Server) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(server.iso_addr()).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn send(stream: &mut TcpStream, messages: &[Vec<u8>]) -> anyhow::Result<()> {
    let mut wire = Vec::new();
    for m in messages {
        wire.extend_from_slice(&u16::try_from(m.len())?.to_be_bytes());
        wire.extend_from_slice(m);
    }
    stream.write_all(&wire).await?;
    Ok(())
}

async fn read_answers(stream: &mut TcpStream, count: usize) -> anyhow::Result<()> {
    let mut decoder = (FrameDecoder::new(), BytesMut::new());
    let mut got = 0;
    while got < count {
        got += read_some(stream, &mut decoder).await?.len();
    }
    Ok(())
}

/// Reads what has arrived and returns the (acquirer-qualified) STAN of each approval.
async fn read_some(
    stream: &mut TcpStream,
    (decoder, buf): &mut (FrameDecoder, BytesMut),
) -> anyhow::Result<Vec<u32>> {
    let mut stans = Vec::new();
    while stans.is_empty() {
        if stream.read_buf(buf).await? == 0 {
            anyhow::bail!("the server closed the connection");
        }
        while let Some(frame) = decoder.decode(buf)? {
            let msg = parse(&frame)?;
            anyhow::ensure!(msg.response_code() == Some(*b"00"), "not approved");
            let acquirer = msg.acquirer_id().unwrap_or(1) - 1;
            let stan = msg.stan().unwrap_or(0);
            stans.push(u32::try_from(acquirer)? * 1_000_000 + stan);
        }
    }
    Ok(stans)
}

fn report(label: &str, latencies: &mut [Duration], elapsed: Option<Duration>) {
    latencies.sort();
    let at = |q: usize| latencies[(latencies.len() * q / 1000).min(latencies.len() - 1)];
    let us = |d: Duration| d.as_micros();
    print!(
        "{label}: {} requests, latency us p50 {} p90 {} p99 {} p999 {} max {}",
        latencies.len(),
        us(at(500)),
        us(at(900)),
        us(at(990)),
        us(at(999)),
        us(latencies[latencies.len() - 1])
    );
    match elapsed {
        Some(e) => println!(
            ", {} requests/s",
            latencies.len() as u128 * 1_000_000 / e.as_micros().max(1)
        ),
        None => println!(),
    }
}

/// The lines of the metrics that explain the figures: batch sizes and flush latency.
fn metrics_excerpt(text: &str) -> String {
    text.lines()
        .filter(|l| {
            l.starts_with("cardcore_journal_batches_total")
                || l.starts_with("cardcore_journal_events_total")
                || l.starts_with("cardcore_journal_flush_latency_seconds_sum")
                || l.starts_with("cardcore_journal_flush_latency_seconds_count")
                || l.starts_with("cardcore_decision_latency_seconds_sum")
                || l.starts_with("cardcore_decision_latency_seconds_count")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
