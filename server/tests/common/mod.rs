//! Shared helpers of the server tests: a service on ephemeral loopback ports, engine setup
//! through `Service`, and an ISO 8583 client over real TCP.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cardcore_authz::management::IssueCard;
use cardcore_core::iso8583::{
    parse, FrameDecoder, MessageBuilder, Mti, PosEntryMode, ProcessingCode, TransmissionTime,
};
use cardcore_core::{
    CardStatus, CardType, Currency, Expiry, Mcc, Money, Pan, ProfileId, ProfileStatus, TimeZone,
};
use cardcore_server::{Config, Server, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for an answer before calling it lost.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub const PAN: &str = "4111111111111111";
pub const OTHER_PAN: &str = "5555555555554444";

/// A configuration on ephemeral loopback ports in `dir`.
pub fn config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        iso_listen: "127.0.0.1:0".to_owned(),
        http_listen: "127.0.0.1:0".to_owned(),
        ..Config::default()
    }
}

/// Opens the service and starts both listeners (the HTTP side with the real router).
pub async fn start(config: Config) -> Server {
    let service = tokio::task::spawn_blocking(move || Service::open(config))
        .await
        .unwrap()
        .unwrap();
    let router = cardcore_server::http::router(Arc::clone(&service));
    Server::start(service, router).await.unwrap()
}

/// Stops the listeners and the engine.
pub async fn stop(server: Server) {
    let service = Arc::clone(server.service());
    server.shutdown().await.unwrap();
    service.close().await.unwrap();
}

pub fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::from_alpha("EUR").unwrap())
}

/// A profile with `funds_minor` EUR and an active card with `pan`.
pub async fn funded_card(service: &Arc<Service>, pan: &str, funds_minor: i64) -> ProfileId {
    funded_card_with_pin(service, pan, funds_minor, None).await
}

/// [`funded_card`] with a PIN.
pub async fn funded_card_with_pin(
    service: &Arc<Service>,
    pan: &str,
    funds_minor: i64,
    pin: Option<&str>,
) -> ProfileId {
    let service = Arc::clone(service);
    let pan = Pan::parse(pan).unwrap();
    let pin = pin.map(|p| cardcore_core::pin::Pin::parse(p).unwrap());
    tokio::task::spawn_blocking(move || {
        let engine = service.engine();
        let profile = engine
            .create_profile(None, ProfileStatus::Active, TimeZone::UTC)
            .unwrap();
        engine.open_balance(profile, eur(0).currency).unwrap();
        engine.top_up(profile, eur(funds_minor)).unwrap();
        engine
            .issue_card(IssueCard {
                profile,
                pan,
                pin,
                cvv2: None,
                expiry: Expiry::new(2030, 12).unwrap(),
                status: CardStatus::Active,
                currency: eur(0).currency,
                card_type: CardType::Virtual,
                smart_conversion: true,
                locked: Vec::new(),
            })
            .unwrap();
        profile
    })
    .await
    .unwrap()
}

/// The available EUR amount of a profile, in minor units.
pub async fn available_minor(service: &Arc<Service>, profile: ProfileId) -> i64 {
    let service = Arc::clone(service);
    tokio::task::spawn_blocking(move || {
        let balances = service.engine().balances(profile).unwrap();
        balances[0].available.amount_minor
    })
    .await
    .unwrap()
}

/// A chip purchase authorisation (0100) for `amount_minor` EUR.
pub fn authorization(pan: &str, stan: u32, amount_minor: i64) -> Vec<u8> {
    let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
    b.set_pan(&Pan::parse(pan).unwrap()).unwrap();
    b.set_processing_code(ProcessingCode::new(ProcessingCode::PURCHASE))
        .unwrap();
    b.set_amount(eur(amount_minor)).unwrap();
    b.set_transmission_time(TransmissionTime::from_digits(b"0115100000").unwrap())
        .unwrap();
    b.set_stan(stan).unwrap();
    b.set_mcc(Mcc(5999)).unwrap();
    b.set_pos_entry_mode(PosEntryMode::from_digits(b"051").unwrap())
        .unwrap();
    b.set_acquirer_id(123456).unwrap();
    b.to_vec()
}

/// [`authorization`] with DE 52: `pin` encrypted under `zone_pin_key_hex`.
pub fn authorization_with_pin(
    pan: &str,
    stan: u32,
    amount_minor: i64,
    pin: &str,
    zone_pin_key_hex: &str,
) -> Vec<u8> {
    use cardcore_core::pin::{encrypt_pin_block, Pin, ZonePinKey};
    let request = authorization(pan, stan, amount_minor);
    let parsed = parse(&request).unwrap();
    let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
    for (field, value) in parsed.fields() {
        b.set(field, value).unwrap();
    }
    let zpk = ZonePinKey::from_hex(zone_pin_key_hex).unwrap();
    let block = encrypt_pin_block(&zpk, &Pan::parse(pan).unwrap(), &Pin::parse(pin).unwrap());
    b.set_pin_block(&block).unwrap();
    b.to_vec()
}

/// An echo test (0800, DE 70 = 301).
pub fn echo(stan: u32) -> Vec<u8> {
    let mut b = MessageBuilder::new(Mti::NetworkManagementRequest);
    b.set_transmission_time(TransmissionTime::from_digits(b"0115100000").unwrap())
        .unwrap();
    b.set_stan(stan).unwrap();
    b.set_network_management_code(301).unwrap();
    b.to_vec()
}

/// A decoded response: the fields the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub mti: Mti,
    pub stan: Option<u32>,
    pub code: String,
    pub amount_minor: Option<i64>,
    pub approval: Option<String>,
    pub network_code: Option<u16>,
}

/// An ISO 8583 client over TCP.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl Client {
    pub async fn connect(server: &Server) -> Client {
        let stream = TcpStream::connect(server.iso_addr()).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(),
        }
    }

    /// Sends messages, each framed, in one write.
    pub async fn send_all(&mut self, messages: &[Vec<u8>]) {
        let mut wire = Vec::new();
        for m in messages {
            wire.extend_from_slice(&(m.len() as u16).to_be_bytes());
            wire.extend_from_slice(m);
        }
        self.stream.write_all(&wire).await.unwrap();
    }

    pub async fn send(&mut self, message: &[u8]) {
        self.send_all(&[message.to_vec()]).await;
    }

    /// Sends bytes as they are (for broken framing).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next response; `None` if the server closed the connection.
    pub async fn next(&mut self) -> Option<Answer> {
        tokio::time::timeout(ANSWER_TIMEOUT, self.next_frame())
            .await
            .expect("no answer in time")
            .map(|frame| decode(&frame))
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(frame);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    pub async fn call(&mut self, message: &[u8]) -> Answer {
        self.send(message).await;
        self.next()
            .await
            .expect("connection closed instead of answering")
    }

    /// Waits for the server to close the connection, failing if it answers instead.
    pub async fn expect_closed(&mut self, within: Duration) {
        let frame = tokio::time::timeout(within, self.next_frame())
            .await
            .expect("the connection was not closed in time");
        assert!(
            frame.is_none(),
            "expected the connection closed, got an answer"
        );
    }
}

pub fn decode(frame: &[u8]) -> Answer {
    let msg = parse(frame).expect("the server sent a message that does not parse");
    Answer {
        mti: msg.mti(),
        stan: msg.stan(),
        code: msg
            .response_code()
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default(),
        amount_minor: msg.amount_minor(),
        approval: msg.get_str(38).map(str::to_owned),
        network_code: msg.network_management_code(),
    }
}
