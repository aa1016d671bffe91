//! The ISO 8583 listener over real TCP: round trips, pipelining, network management,
//! malformed input, bounds and timeouts.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cardcore_core::iso8583::Mti;
use cardcore_server::metrics::CloseReason;
use common::*;

#[tokio::test]
async fn an_authorisation_is_approved_and_holds_the_amount() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let service = Arc::clone(server.service());
    let profile = funded_card(&service, PAN, 10_000).await;
    let mut client = Client::connect(&server).await;

    let answer = client.call(&authorization(PAN, 1, 2_500)).await;

    assert_eq!(answer.mti, Mti::AuthorizationResponse);
    assert_eq!(answer.code, "00");
    assert_eq!(answer.stan, Some(1));
    assert_eq!(answer.amount_minor, Some(2_500));
    assert_eq!(answer.approval.as_deref().map(str::len), Some(6));
    assert_eq!(available_minor(&service, profile).await, 7_500);
    let metrics = service.metrics();
    assert_eq!(metrics.messages(Mti::AuthorizationRequest, *b"00"), 1);
    assert_eq!(metrics.decision_latency().count(), 1);
    let text = service.render_prometheus();
    assert!(text.contains("cardcore_iso_messages_total{mti=\"0100\",code=\"00\"} 1\n"));
    assert!(text.contains("cardcore_journal_flush_latency_seconds_count"));
    stop(server).await;
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_and_matched_by_stan() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Fewer slots than requests: the reader must wait for answers, not drop requests.
    config.iso.max_in_flight_per_connection = 8;
    let server = start(config).await;
    let service = Arc::clone(server.service());
    let profile = funded_card(&service, PAN, 1_000_000).await;
    let mut client = Client::connect(&server).await;
    // Requests for an unknown card (14, decided without a partition) mixed with approvals
    // (00, decided on a partition and held for durability) come back in another order.
    let requests: Vec<(u32, &str, i64)> = (1..=60u32)
        .map(|stan| {
            let pan = if stan % 3 == 0 { OTHER_PAN } else { PAN };
            (stan, pan, i64::from(stan) * 10)
        })
        .collect();
    let frames: Vec<Vec<u8>> = requests
        .iter()
        .map(|&(stan, pan, amount)| authorization(pan, stan, amount))
        .collect();

    client.send_all(&frames).await;
    let mut answers = HashMap::new();
    for _ in 0..requests.len() {
        let answer = client.next().await.expect("an answer per request");
        let stan = answer.stan.expect("the STAN is echoed");
        assert!(
            answers.insert(stan, answer).is_none(),
            "STAN {stan} answered twice"
        );
    }

    let mut approved_minor = 0;
    for (stan, pan, amount) in requests {
        let answer = &answers[&stan];
        assert_eq!(answer.amount_minor, Some(amount), "STAN {stan}");
        let expected = if pan == PAN { "00" } else { "14" };
        assert_eq!(answer.code, expected, "STAN {stan}");
        if pan == PAN {
            approved_minor += amount;
        }
    }
    assert_eq!(
        available_minor(&service, profile).await,
        1_000_000 - approved_minor
    );
    assert_eq!(service.metrics().in_flight(), 0);
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_pipelining_at_once_are_all_answered() {
    const CONNECTIONS: u32 = 6;
    const PER_CONNECTION: u32 = 150;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.iso.max_in_flight_per_connection = 16;
    let server = start(config).await;
    let service = Arc::clone(server.service());
    let pans: Vec<String> = (0..CONNECTIONS).map(test_pan).collect();
    let mut profiles = Vec::new();
    for pan in &pans {
        profiles.push(funded_card(&service, pan, 1_000_000).await);
    }
    let mut tasks = Vec::new();
    // STAN, transmission time and acquirer identify a message network-wide: every
    // connection gets its own STANs, or the engine would rightly see duplicates.
    for (index, pan) in (0u32..).zip(pans) {
        let mut client = Client::connect(&server).await;
        tasks.push(tokio::spawn(async move {
            let stans = index * 1_000 + 1..=index * 1_000 + PER_CONNECTION;
            let frames: Vec<Vec<u8>> = stans.map(|stan| authorization(&pan, stan, 100)).collect();
            client.send_all(&frames).await;
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..PER_CONNECTION {
                let answer = client.next().await.expect("an answer per request");
                assert_eq!(answer.code, "00");
                assert!(seen.insert(answer.stan.unwrap()), "answered twice");
            }
            seen.len()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), PER_CONNECTION as usize);
    }
    for profile in profiles {
        let spent = i64::from(PER_CONNECTION) * 100;
        assert_eq!(available_minor(&service, profile).await, 1_000_000 - spent);
    }
    let approved = service
        .metrics()
        .messages(Mti::AuthorizationRequest, *b"00");
    assert_eq!(approved, u64::from(CONNECTIONS * PER_CONNECTION));
    stop(server).await;
}

/// A valid (Luhn) 16-digit PAN per index.
fn test_pan(index: u32) -> String {
    let body = format!("411111{index:09}");
    let check = cardcore_core::pan::luhn_check_digit(body.as_bytes());
    format!("{body}{}", char::from(check))
}

#[tokio::test]
async fn network_management_is_answered_0810_00() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = Client::connect(&server).await;
    for (stan, code) in [(7, 301), (8, 1), (9, 2)] {
        let mut msg = echo(stan);
        // DE 70 is the last field: replace echo (301) by sign-on (001) or sign-off (002).
        let at = msg.len() - 3;
        msg[at..].copy_from_slice(format!("{code:03}").as_bytes());

        let answer = client.call(&msg).await;

        assert_eq!(answer.mti, Mti::NetworkManagementResponse);
        assert_eq!(answer.code, "00");
        assert_eq!(answer.stan, Some(stan));
        assert_eq!(answer.network_code, Some(code));
    }
    let metrics = server.service().metrics();
    assert_eq!(metrics.messages(Mti::NetworkManagementRequest, *b"00"), 3);
    stop(server).await;
}

#[tokio::test]
async fn malformed_messages_get_30_and_unreadable_ones_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut bystander = Client::connect(&server).await;
    let mut client = Client::connect(&server).await;
    assert_eq!(bystander.call(&echo(1)).await.code, "00");

    // Readable MTI and STAN, broken field after them: 30 with the STAN.
    let mut broken = authorization(PAN, 42, 100);
    let last = broken.len() - 1;
    broken[last] = b'X';
    let answer = client.call(&broken).await;
    assert_eq!(
        (answer.mti, answer.code.as_str()),
        (Mti::AuthorizationResponse, "30")
    );
    assert_eq!(answer.stan, Some(42));

    // Parses, but a mandatory field (DE 22) is missing: 30 as well.
    let mut b = cardcore_core::iso8583::MessageBuilder::new(Mti::AuthorizationRequest);
    let full = authorization(PAN, 43, 100);
    let parsed = cardcore_core::iso8583::parse(&full).unwrap();
    for (field, value) in parsed.fields() {
        if field != 22 {
            b.set(field, value).unwrap();
        }
    }
    let answer = client.call(&b.to_vec()).await;
    assert_eq!((answer.code.as_str(), answer.stan), ("30", Some(43)));

    // The connection still works after both.
    assert_eq!(client.call(&echo(2)).await.code, "00");

    // No readable MTI: nothing to answer with, so the connection is closed...
    client.send(b"HELLO, IS THIS THE ISSUER?").await;
    client.expect_closed(Duration::from_secs(5)).await;
    // ...and everyone else is still served.
    assert_eq!(bystander.call(&echo(3)).await.code, "00");
    let metrics = server.service().metrics();
    assert_eq!(metrics.messages(Mti::AuthorizationRequest, *b"30"), 2);
    stop(server).await;
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.iso.max_frame_bytes = 256;
    let server = start(config).await;
    let mut client = Client::connect(&server).await;
    assert_eq!(client.call(&echo(1)).await.code, "00");

    let mut frame = 1_000u16.to_be_bytes().to_vec();
    frame.extend_from_slice(&[b'0'; 1_000]);
    client.send_raw(&frame).await;

    client.expect_closed(Duration::from_secs(5)).await;
    wait_until(|| {
        server
            .service()
            .metrics()
            .connections_closed(CloseReason::FrameTooLong)
            == 1
    })
    .await;
    stop(server).await;
}

#[tokio::test]
async fn connections_past_the_bound_are_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.iso.max_connections = 2;
    let server = start(config).await;
    let mut first = Client::connect(&server).await;
    let mut second = Client::connect(&server).await;
    assert_eq!(first.call(&echo(1)).await.code, "00");
    assert_eq!(second.call(&echo(2)).await.code, "00");

    let mut third = Client::connect(&server).await;
    third.expect_closed(Duration::from_secs(5)).await;
    assert_eq!(server.service().metrics().connections_refused(), 1);
    assert_eq!(first.call(&echo(3)).await.code, "00");

    // A freed slot is taken by the next connection.
    drop(first);
    wait_until(|| server.service().metrics().connections_open() == 1).await;
    let mut fourth = Client::connect(&server).await;
    assert_eq!(fourth.call(&echo(4)).await.code, "00");
    stop(server).await;
}

#[tokio::test]
async fn quiet_connections_are_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.iso.idle_timeout_s = 1;
    let server = start(config).await;
    let mut client = Client::connect(&server).await;
    assert_eq!(client.call(&echo(1)).await.code, "00");
    let started = std::time::Instant::now();

    client.expect_closed(Duration::from_secs(5)).await;

    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    wait_until(|| {
        server
            .service()
            .metrics()
            .connections_closed(CloseReason::Idle)
            == 1
    })
    .await;
    stop(server).await;
}

#[tokio::test]
async fn shutdown_answers_what_was_read_then_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let service = Arc::clone(server.service());
    funded_card(&service, PAN, 100_000).await;
    let mut client = Client::connect(&server).await;
    let frames: Vec<Vec<u8>> = (1..=20).map(|stan| authorization(PAN, stan, 10)).collect();
    client.send_all(&frames).await;
    // Every request read before the shutdown is answered, then the connection closes.
    let first = client.next().await.expect("the first answer");
    assert_eq!(first.code, "00");

    let stopping = tokio::spawn(server.shutdown());
    let mut answered = 1;
    while let Some(answer) = client.next().await {
        assert_eq!(answer.code, "00");
        answered += 1;
    }
    stopping.await.unwrap().unwrap();
    let approved = service
        .metrics()
        .messages(Mti::AuthorizationRequest, *b"00");
    assert_eq!(approved, answered, "every decision made was written");
    assert!(!service.health().is_ok());
    service.close().await.unwrap();
}

/// Polls `condition` until it holds (metrics are updated just after a connection closes).
async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
