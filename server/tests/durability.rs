//! Durability over real TCP: answers wait for their journal batch in `sync` mode and do not
//! in `async` mode; state survives a restart on the same data directory; a sandbox reset
//! starts from nothing.

mod common;

use std::sync::Arc;

use cardcore_core::iso8583::Mti;
use cardcore_server::config::DurabilityMode;
use cardcore_server::service::{FIRST_STATE_DIR, SANDBOX_EPOCH};
use common::*;

/// Sends authorisations one at a time and, as each answer arrives, compares the journal's
/// durable watermark with its last appended seq. Only this client writes, so the last
/// appended record is the answer's own: `durable >= appended` means it was durable before
/// it was answered. Returns how many answers arrived before their events were durable.
async fn answers_ahead_of_durability(mode: DurabilityMode, max_loss_ms: u64) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.durability.mode = mode;
    config.durability.max_loss_ms = max_loss_ms;
    let server = start(config).await;
    let service = Arc::clone(server.service());
    funded_card(&service, PAN, 1_000_000).await;
    let journal_of = |service: &Arc<cardcore_server::Service>| {
        Arc::clone(
            service
                .engine()
                .journal()
                .expect("the server always journals"),
        )
    };
    let mut ahead = 0;
    let mut client = Client::connect(&server).await;
    for stan in 1..=20 {
        let answer = client.call(&authorization(PAN, stan, 100)).await;
        let journal = journal_of(&service);
        let (durable, appended) = (journal.durable_seq(), journal.last_appended_seq());
        assert_eq!(answer.code, "00");
        if durable < appended {
            ahead += 1;
        }
    }
    stop(server).await;
    ahead
}

#[tokio::test]
async fn sync_mode_never_answers_before_the_batch_is_durable() {
    assert_eq!(
        answers_ahead_of_durability(DurabilityMode::Sync, 10).await,
        0
    );
}

#[tokio::test]
async fn async_mode_answers_before_the_flush() {
    // With a 5 s loss window the journal flushes long after the answers: this shows the
    // sync test above would see an answer that did not wait.
    let ahead = answers_ahead_of_durability(DurabilityMode::Async, 5_000).await;
    assert!(ahead > 0, "async answers should not wait for the flush");
}

#[tokio::test]
async fn sync_mode_counts_the_durability_wait() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let service = Arc::clone(server.service());
    funded_card(&service, PAN, 10_000).await;
    let mut client = Client::connect(&server).await;
    let frames: Vec<Vec<u8>> = (1..=10).map(|stan| authorization(PAN, stan, 100)).collect();
    client.send_all(&frames).await;
    for _ in 0..10 {
        assert_eq!(client.next().await.unwrap().code, "00");
    }
    let metrics = service.metrics();
    let decided = metrics.decision_latency().count();
    let waited = metrics.durability_wait().count();
    assert_eq!(decided, 10);
    assert!(waited <= decided, "{waited} waits for {decided} decisions");
    let state = service.durable_state();
    let journal = Arc::clone(service.engine().journal().unwrap());
    assert!(state.seq <= journal.durable_seq());
    assert!(!state.failed);
    stop(server).await;
}

#[tokio::test]
async fn a_restart_on_the_same_data_directory_keeps_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let service = Arc::clone(server.service());
    let profile = funded_card(&service, PAN, 10_000).await;
    let mut client = Client::connect(&server).await;
    let first = client.call(&authorization(PAN, 1, 3_000)).await;
    assert_eq!(first.code, "00");
    drop(client);
    drop(service);
    stop(server).await;
    let keys_before = std::fs::read(dir.path().join("keys.toml")).unwrap();

    let server = start(config(dir.path())).await;
    let service = Arc::clone(server.service());
    assert_eq!(
        available_minor(&service, profile).await,
        7_000,
        "the hold survived"
    );
    let mut client = Client::connect(&server).await;
    // The card is still found (same generated PAN key) and the funds still count.
    assert_eq!(client.call(&authorization(PAN, 2, 7_000)).await.code, "00");
    assert_eq!(client.call(&authorization(PAN, 3, 1)).await.code, "51");
    assert_eq!(
        std::fs::read(dir.path().join("keys.toml")).unwrap(),
        keys_before
    );
    stop(server).await;
}

#[tokio::test]
async fn a_sandbox_reset_starts_from_an_empty_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.sandbox = true;
    let server = start(config.clone()).await;
    let service = Arc::clone(server.service());
    funded_card(&service, PAN, 10_000).await;
    service.manual_clock().unwrap().advance_ms(86_400_000);
    let mut client = Client::connect(&server).await;
    assert_eq!(client.call(&authorization(PAN, 1, 100)).await.code, "00");

    service.reset().await.unwrap();

    // The same connection now reaches the new engine: the card is gone.
    assert_eq!(client.call(&authorization(PAN, 2, 100)).await.code, "14");
    let epoch = cardcore_core::Timestamp::parse_rfc3339(SANDBOX_EPOCH).unwrap();
    assert_eq!(service.clock().now(), epoch);
    assert_eq!(service.health().generation, 1);
    assert!(
        !dir.path().join(FIRST_STATE_DIR).exists(),
        "the old state is deleted"
    );
    let profile = funded_card(&service, PAN, 500).await;
    assert_eq!(client.call(&authorization(PAN, 3, 400)).await.code, "00");
    assert_eq!(
        service
            .metrics()
            .messages(Mti::AuthorizationRequest, *b"14"),
        1
    );
    drop(client);
    drop(service);
    stop(server).await;

    // A restart finds the state of the last reset.
    let server = start(config).await;
    let service = Arc::clone(server.service());
    assert_eq!(available_minor(&service, profile).await, 100);
    drop(service);
    stop(server).await;
}

#[tokio::test]
async fn a_sandbox_checks_pins_under_the_published_zone_pin_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.sandbox = true;
    let server = start(config).await;
    let service = Arc::clone(server.service());
    funded_card_with_pin(&service, PAN, 10_000, Some("4321")).await;
    let zpk = cardcore_server::keys::SANDBOX_ZONE_PIN_KEY_HEX;
    let mut client = Client::connect(&server).await;

    let right = client
        .call(&authorization_with_pin(PAN, 1, 100, "4321", zpk))
        .await;
    let wrong = client
        .call(&authorization_with_pin(PAN, 2, 100, "1234", zpk))
        .await;

    assert_eq!(right.code, "00");
    assert_eq!(wrong.code, "55");
    stop(server).await;
}

#[tokio::test]
async fn reset_is_refused_outside_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let error = server.service().reset().await.unwrap_err();
    assert!(
        matches!(error, cardcore_server::ServiceError::NotSandbox),
        "{error}"
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sandbox_clock_resumes_from_the_recovered_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.sandbox = true;
    let server = common::start(config.clone()).await;
    let service = Arc::clone(server.service());
    let clock = service
        .manual_clock()
        .expect("a sandbox has a manual clock");
    clock.advance_ms(3 * cardcore_core::Timestamp::MS_PER_DAY);
    let later = cardcore_core::Clock::now(clock);
    common::funded_card(&service, common::PAN, 10_000).await;
    let mut client = common::Client::connect(&server).await;
    let answer = client
        .call(&common::authorization(common::PAN, 1, 1_000))
        .await;
    assert_eq!(answer.code, "00");
    drop(client);
    // The service (and its engine, which holds the journal's lock) goes with the last handle.
    drop(service);
    common::stop(server).await;

    let server = common::start(config).await;
    let resumed = cardcore_core::Clock::now(server.service().manual_clock().unwrap());
    assert!(
        resumed >= later,
        "the clock ran backwards over the restart: {resumed} < {later}"
    );
    common::stop(server).await;
}
