//! No PAN, PIN, PIN block or key leaves where it belongs. The `cardcore` binary runs with
//! `RUST_LOG=trace`; traffic with known PANs, PINs, CVV2s and PIN blocks goes through the
//! ISO 8583 port and the HTTP API, error paths included (bad Luhn, a PAN in the path, in the
//! query, in a malformed body, in an unknown field, in a bearer token, wrong PINs, unknown
//! cards, broken frames). Then its stderr, every file of its data directory (journal,
//! snapshots) and every HTTP answer are searched for each secret: as text, as upper- and
//! lower-case hex, and as raw bytes (a PAN also as a 64-bit number, either byte order).
//! Keys belong in the keys file only, and that file is mode 0600.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cardcore_core::iso8583::{parse, MessageBuilder, Mti};
use cardcore_core::pin::{
    encrypt_pin_block, pin_block_format0, Cvv2Key, Cvv2Value, Pin, PinVerificationKey,
    PinVerificationValue, ZonePinKey,
};
use cardcore_core::{Expiry, Pan};
use common::{authorization, authorization_with_pin};
use serde_json::{json, Value};

/// Test card numbers (Luhn-valid, never real). `UNKNOWN_PAN` is never issued.
const PAN: &str = "4000001234567899";
const PAN_2: &str = "4000009876543219";
const UNKNOWN_PAN: &str = "5105105105105100";
/// Twelve digits: distinctive enough that finding it anywhere means it leaked.
const PIN: &str = "739182640519";
const WRONG_PIN: &str = "261548093716";
const CVV2: &str = "847";
/// Keys given in the sandbox configuration, so the test knows what to look for.
const ZONE_PIN_KEY: &str = "3F1C8A52D9E07B46A1B2C3D4E5F60718";
const PIN_VERIFICATION_KEY: &str =
    "6B1E9F2C4A7D3E8B5C0F1A2D3B4C5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F";
const CVV2_KEY: &str = "9A8B7C6D5E4F30211203F4E5D6C7B8A99A8B7C6D5E4F30211203F4E5D6C7B8A9";
const PAN_KEY: &str = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
const OPERATOR_TOKEN: &str = "operator-token-for-the-secrets-test";
const PROFILE_TOKEN: &str = "profile-one-token-for-the-secrets-test";
/// How long the binary may take to start, and to stop after SIGTERM.
const START_WITHIN: Duration = Duration::from_secs(60);
const STOP_WITHIN: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn no_pan_pin_block_or_key_in_logs_journal_snapshots_or_answers() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = sandbox_config(dir.path(), &data_dir);
    let mut daemon = Daemon::start(&config);
    let mut answers = Vec::new();

    http_traffic(&daemon, &mut answers);
    iso_traffic(&daemon);
    // Enough records were written for a snapshot: wait for the task that writes it.
    wait_for(|| files_named(&data_dir, "snapshot").next().is_some());
    let log = daemon.stop();

    assert!(log.contains("listening"), "the log was captured:\n{log}");
    assert!(log.contains("answered 30"), "error paths were logged");
    let secrets = all_secrets();
    // The verification values are the engine's to store; they never go out.
    let outside_the_engine = [secrets.clone(), verification_values()].concat();
    assert_absent(&outside_the_engine, "stderr", log.as_bytes());
    for (index, answer) in answers.iter().enumerate() {
        let place = format!("HTTP answer {index}");
        assert_absent(&outside_the_engine, &place, answer.as_bytes());
    }
    let (mut masked_seen, mut pvv_seen) = (false, false);
    let pvv = verification_values();
    for file in files_under(&data_dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert_absent(&secrets, &file.display().to_string(), &bytes);
        masked_seen |= find(&bytes, masked(PAN).as_bytes()).is_some();
        pvv_seen |= pvv.iter().any(|v| find(&bytes, &v.bytes).is_some());
    }
    // The search reads the journal as stored: the masked PAN and the verification values,
    // which the engine keeps, are found there (so the values computed here are the ones the
    // engine computes, and the checks of stderr and answers above can fail).
    assert!(masked_seen, "the masked PAN is in the journal");
    assert!(pvv_seen, "the verification values are in the journal");
    // And it finds what is there: the configuration holds the keys in clear.
    let config_text = std::fs::read(&config).unwrap();
    for name in ["zone PIN key", "PAN key"] {
        let hex = secrets
            .iter()
            .find(|s| s.what == format!("{name} as upper-case hex"));
        assert!(find(&config_text, &hex.unwrap().bytes).is_some(), "{name}");
    }
}

/// First six and last four digits, as cards show them.
fn masked(pan: &str) -> String {
    let stars = "*".repeat(pan.len() - 10);
    format!("{}{stars}{}", &pan[..6], &pan[pan.len() - 4..])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn generated_keys_are_private_and_appear_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("cardcore.toml");
    let text = format!(
        "data_dir = {data:?}\niso_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\
         [[tokens]]\ntoken = \"{OPERATOR_TOKEN}\"\nrole = \"operator\"\n",
        data = data_dir.display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start(&config);
    let keys_file = data_dir.join("keys.toml");
    let keys = generated_keys(&keys_file);
    assert_eq!(keys.len(), 4, "four keys generated");
    // PIN blocks under the generated zone PIN key, for a card the service does not know.
    let zpk_hex = keys
        .iter()
        .find(|(name, _)| name == "zone_pin_key")
        .unwrap();
    let mut iso = IsoConn::connect(daemon.iso);
    for (stan, pin) in [(1, PIN), (2, WRONG_PIN)] {
        let message = authorization_with_pin(UNKNOWN_PAN, stan, 100, pin, &zpk_hex.1);
        assert_eq!(iso.call(&message), "14");
    }
    let (status, _) = http(daemon.http, "GET", "/health", None, None);
    assert_eq!(status, 200);
    let log = daemon.stop();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "keys file mode {:o}", mode & 0o777);
        assert!(!log.contains("readable by others"));
    }
    let mut secrets: Vec<Secret> = keys
        .iter()
        .flat_map(|(name, hex)| hex_secret(&format!("generated {name}"), hex))
        .collect();
    secrets.extend(pan_secrets("unknown PAN", UNKNOWN_PAN));
    assert_absent(&secrets, "stderr", log.as_bytes());
    let mut others = 0;
    for file in files_under(&data_dir).filter(|f| f != &keys_file) {
        assert_absent(
            &secrets,
            &file.display().to_string(),
            &std::fs::read(&file).unwrap(),
        );
        others += 1;
    }
    assert!(others > 0, "the journal was written beside the keys file");
}

/// HTTP: sandbox setup with secrets in bodies, simulated authorisations, clearing and
/// reversal, and every error path that could echo what it was given.
fn http_traffic(daemon: &Daemon, answers: &mut Vec<String>) {
    let mut call = |method: &str, path: &str, token: Option<&str>, body: Option<&str>| {
        let (status, text) = http(daemon.http, method, path, token, body);
        answers.push(text.clone());
        (status, text)
    };
    let op = Some(OPERATOR_TOKEN);
    let p1 = Some(PROFILE_TOKEN);
    assert_eq!(
        call("POST", "/v1/sandbox/profiles", op, Some(r#"{"id":1}"#)).0,
        201
    );
    let top_up = r#"{"amount":"100.00","currency":"EUR"}"#;
    assert_eq!(
        call("POST", "/v1/sandbox/profiles/1/top-up", op, Some(top_up)).0,
        200
    );
    let card = |pan: &str| {
        json!({"pan": pan, "pin": PIN, "cvv2": CVV2, "expiry": "2029-07", "currency": "EUR"})
            .to_string()
    };
    let (status, text) = call("POST", "/v1/sandbox/profiles/1/cards", op, Some(&card(PAN)));
    assert_eq!(status, 201, "{text}");
    let token = serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        "POST",
        "/v1/sandbox/profiles/1/cards",
        op,
        Some(&card(PAN_2)),
    );
    assert_eq!(status, 201);
    // The same PAN again, and a PAN that fails the Luhn check: refused.
    let (status, _) = call("POST", "/v1/sandbox/profiles/1/cards", op, Some(&card(PAN)));
    assert_eq!(status, 409);
    let bad_luhn = format!("{}0", &PAN[..PAN.len() - 1]);
    let (status, _) = call(
        "POST",
        "/v1/sandbox/profiles/1/cards",
        op,
        Some(&card(&bad_luhn)),
    );
    assert_eq!(status, 400);

    let sim = format!("/v2/simulation/spend/profiles/1/cards/{token}/transactions/authorisation");
    let auth = |pan: &str, pin: &str, cvv2: &str| {
        json!({"amount": {"value": 5, "currency": "EUR"}, "cardNumber": pan, "pin": pin,
            "cvv2": cvv2})
        .to_string()
    };
    let (status, approved) = call("POST", &sim, p1, Some(&auth(PAN, PIN, CVV2)));
    assert_eq!(status, 200, "{approved}");
    let approved: Value = serde_json::from_str(&approved).unwrap();
    assert_eq!(approved["reference"]["transaction"]["responseCode"], "00");
    for body in [
        auth(PAN, WRONG_PIN, CVV2),
        auth(PAN, PIN, "111"),
        auth(PAN_2, PIN, CVV2), // the PAN of another card than the path's
        auth(&bad_luhn, PIN, CVV2),
        format!(r#"{{"amount":{{"value":5,"currency":"EUR"}},"cardNumber":"{PAN}","#),
        format!(r#"{{"cardNumber":{PAN},"pin":{PIN}}}"#),
        format!(r#"{{"x{PAN}":1,"cardNumber":"{PAN}"}}"#),
        format!(
            r#"{{"amount":{{"value":5,"currency":"EUR"}},"cardNumber":"{PAN}","pos":"{PAN}"}}"#
        ),
        format!(
            r#"{{"amount":{{"value":5,"currency":"EUR"}},"cardNumber":"{PAN}","pin":"{PIN}x"}}"#
        ),
    ] {
        let (status, _) = call("POST", &sim, p1, Some(&body));
        assert!((200..500).contains(&status), "{status}");
    }
    let reference = approved["reference"].clone();
    for (kind, value) in [("reversal", 2), ("clearing", 3)] {
        let path = format!("/v1/simulation/spend/profiles/1/cards/{token}/transactions/{kind}");
        let body = json!({"amount": {"value": value, "currency": "EUR"}, "ref": reference,
            "cardNumber": PAN})
        .to_string();
        assert_eq!(call("POST", &path, p1, Some(&body)).0, 200);
    }
    // Every view of the card: none carries its secrets or their verification values.
    for path in [
        format!("/v3/spend/profiles/1/cards/{token}"),
        "/v3/spend/profiles/1/cards".to_owned(),
        format!("/v1/sandbox/profiles/1/cards/{token}"),
        format!("/v3/spend/profiles/1/cards/{token}/spending-permissions"),
        format!("/v4/spend/profiles/1/cards/{token}/transactions?fromCreationTime=2026-01-01T00:00:00Z&toCreationTime=2026-12-31T00:00:00Z"),
    ] {
        let (status, text) = call("GET", &path, op, None);
        assert_eq!(status, 200, "{path}: {text}");
    }
    // A PAN where a token, an id or a query value belongs, and as the bearer token itself.
    call(
        "GET",
        &format!("/v3/spend/profiles/1/cards/{PAN}"),
        p1,
        None,
    );
    call(
        "GET",
        &format!("/v4/profiles/{PAN}/balances?types=STANDARD"),
        p1,
        None,
    );
    call(
        "GET",
        &format!("/v3/spend/profiles/1/cards?pageSize={PAN}"),
        p1,
        None,
    );
    call(
        "GET",
        &format!("/v3/spend/profiles/1/cards/{PIN}"),
        Some(PAN),
        None,
    );
    call("GET", &format!("/{PAN}"), p1, None);
}

/// ISO 8583: authorisations with right and wrong PIN blocks and CVV2s, an unknown card, a
/// track 2 carrying the PAN, and broken frames that carry it.
fn iso_traffic(daemon: &Daemon) {
    let mut iso = IsoConn::connect(daemon.iso);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            authorization_with_pin(PAN, 101, 100, PIN, ZONE_PIN_KEY),
            "00",
        ),
        (
            authorization_with_pin(PAN, 102, 100, WRONG_PIN, ZONE_PIN_KEY),
            "55",
        ),
        (
            with_field(authorization(PAN_2, 103, 100), 48, &cvv2_field(CVV2)),
            "00",
        ),
        (
            with_field(authorization(PAN_2, 104, 100), 48, &cvv2_field("111")),
            "N7",
        ),
        (
            authorization_with_pin(UNKNOWN_PAN, 105, 100, PIN, ZONE_PIN_KEY),
            "14",
        ),
        (
            with_field(
                authorization(PAN, 106, 100),
                35,
                format!("{PAN}=29072011234").as_bytes(),
            ),
            "00",
        ),
        (
            broken(authorization_with_pin(PAN, 107, 100, PIN, ZONE_PIN_KEY)),
            "30",
        ),
        (broken(authorization(UNKNOWN_PAN, 108, 100)), "30"),
    ];
    for (message, code) in cases {
        assert_eq!(iso.call(&message), code);
    }
    // A PAN of 20 digits: the length prefix is refused, the connection goes on.
    let too_long = String::from_utf8(authorization(PAN, 109, 100))
        .unwrap()
        .replacen(&format!("16{PAN}"), &format!("20{PAN}1234"), 1);
    assert_eq!(iso.call(too_long.as_bytes()), "30");
}

/// `message` with one more field.
fn with_field(message: Vec<u8>, field: u8, value: &[u8]) -> Vec<u8> {
    let parsed = parse(&message).unwrap();
    let mut b = MessageBuilder::new(parsed.mti());
    for (number, content) in parsed.fields() {
        b.set(number, content).unwrap();
    }
    b.set(field, value).unwrap();
    b.to_vec()
}

/// DE 48 with the CVV2 in subelement 92.
fn cvv2_field(cvv2: &str) -> Vec<u8> {
    let mut b = MessageBuilder::new(Mti::AuthorizationRequest);
    b.set_cvv2(cvv2.as_bytes()).unwrap();
    let packed = b.to_vec();
    parse(&packed).unwrap().get(48).unwrap().to_vec()
}

/// The last byte of the message spoiled: the last field no longer parses.
fn broken(mut message: Vec<u8>) -> Vec<u8> {
    let last = message.len() - 1;
    message[last] = b'X';
    message
}

/// One thing that must not be found, in one encoding.
#[derive(Debug, Clone)]
struct Secret {
    what: String,
    bytes: Vec<u8>,
}

fn all_secrets() -> Vec<Secret> {
    let mut secrets = Vec::new();
    for (name, pan) in [("PAN", PAN), ("PAN 2", PAN_2), ("unknown PAN", UNKNOWN_PAN)] {
        secrets.extend(pan_secrets(name, pan));
    }
    for (name, pin) in [("PIN", PIN), ("wrong PIN", WRONG_PIN)] {
        secrets.push(Secret {
            what: name.to_owned(),
            bytes: pin.as_bytes().to_vec(),
        });
        for pan in [PAN, UNKNOWN_PAN] {
            let (pan, pin) = (Pan::parse(pan).unwrap(), Pin::parse(pin).unwrap());
            let zpk = ZonePinKey::from_hex(ZONE_PIN_KEY).unwrap();
            let clear = pin_block_format0(&pin, &pan);
            let encrypted = encrypt_pin_block(&zpk, &pan, &pin);
            secrets.extend(bytes_secret(&format!("{name} clear PIN block"), &clear));
            secrets.extend(bytes_secret(&format!("{name} PIN block"), &encrypted));
        }
    }
    for (name, key) in [
        ("zone PIN key", ZONE_PIN_KEY),
        ("PIN verification key", PIN_VERIFICATION_KEY),
        ("CVV2 key", CVV2_KEY),
        ("PAN key", PAN_KEY),
    ] {
        secrets.extend(hex_secret(name, key));
    }
    secrets
}

/// The PIN verification and CVV2 values of the cards: as bytes, hex and a JSON array (the
/// form `serde_json` would give a `[u8; 32]`).
fn verification_values() -> Vec<Secret> {
    let pvk = PinVerificationKey::from_hex(PIN_VERIFICATION_KEY).unwrap();
    let cvv2_key = Cvv2Key::from_hex(CVV2_KEY).unwrap();
    let expiry = Expiry::new(2029, 7).unwrap();
    let mut secrets = Vec::new();
    for pan in [PAN, PAN_2] {
        let pan = Pan::parse(pan).unwrap();
        let pvv = PinVerificationValue::compute(&pvk, &pan, &Pin::parse(PIN).unwrap());
        let cvv2 = Cvv2Value::compute(&cvv2_key, &pan, expiry, CVV2.as_bytes()).unwrap();
        for (name, value) in [("PVV", pvv.to_bytes()), ("CVV2 value", cvv2.to_bytes())] {
            secrets.extend(bytes_secret(name, &value));
            let array = value
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(",");
            secrets.push(Secret {
                what: format!("{name} as a JSON array"),
                bytes: format!("[{array}]").into_bytes(),
            });
        }
    }
    secrets
}

/// A PAN as digits and as a 64-bit number in either byte order.
fn pan_secrets(name: &str, pan: &str) -> Vec<Secret> {
    let number: u64 = pan.parse().unwrap();
    vec![
        Secret {
            what: format!("{name} digits"),
            bytes: pan.as_bytes().to_vec(),
        },
        Secret {
            what: format!("{name} as a little-endian number"),
            bytes: number.to_le_bytes().to_vec(),
        },
        Secret {
            what: format!("{name} as a big-endian number"),
            bytes: number.to_be_bytes().to_vec(),
        },
    ]
}

/// Bytes raw and as hex text in either case.
fn bytes_secret(name: &str, bytes: &[u8]) -> Vec<Secret> {
    let upper: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    let mut secrets = hex_secret(name, &upper);
    secrets.push(Secret {
        what: format!("{name} bytes"),
        bytes: bytes.to_vec(),
    });
    secrets
}

/// Hex text in either case, and the bytes it stands for.
fn hex_secret(name: &str, hex: &str) -> Vec<Secret> {
    let raw: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    vec![
        Secret {
            what: format!("{name} as upper-case hex"),
            bytes: hex.to_ascii_uppercase().into_bytes(),
        },
        Secret {
            what: format!("{name} as lower-case hex"),
            bytes: hex.to_ascii_lowercase().into_bytes(),
        },
        Secret {
            what: format!("{name} bytes"),
            bytes: raw,
        },
    ]
}

fn assert_absent(secrets: &[Secret], place: &str, haystack: &[u8]) {
    for secret in secrets {
        if let Some(at) = find(haystack, &secret.bytes) {
            let from = at.saturating_sub(80);
            let to = (at + secret.bytes.len() + 80).min(haystack.len());
            let context = String::from_utf8_lossy(&haystack[from..to]);
            panic!("{} found in {place} at byte {at}: …{context}…", secret.what);
        }
    }
}

fn sandbox_config(dir: &Path, data_dir: &Path) -> PathBuf {
    let path = dir.join("cardcore.toml");
    let text = format!(
        "data_dir = {data:?}\n\
         iso_listen = \"127.0.0.1:0\"\n\
         http_listen = \"127.0.0.1:0\"\n\
         sandbox = true\n\
         [journal]\n\
         snapshot_every_records = 4\n\
         [keys]\n\
         zone_pin_key = \"{ZONE_PIN_KEY}\"\n\
         pin_verification_key = \"{PIN_VERIFICATION_KEY}\"\n\
         cvv2_key = \"{CVV2_KEY}\"\n\
         pan_key = \"{PAN_KEY}\"\n\
         [[tokens]]\ntoken = \"{OPERATOR_TOKEN}\"\nrole = \"operator\"\n\
         [[tokens]]\ntoken = \"{PROFILE_TOKEN}\"\nrole = {{ profile = 1 }}\n",
        data = data_dir.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The keys file's entries, `(name, hex)`.
fn generated_keys(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("the keys file");
    let table: toml::Table = text.parse().expect("a TOML keys file");
    table
        .into_iter()
        .map(|(name, value)| (name, value.as_str().unwrap().to_owned()))
        .collect()
}

/// `cardcore serve` as a child process, its stderr collected as it is written.
struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    iso: SocketAddr,
    http: SocketAddr,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cardcore"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cardcore");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&String::from_utf8_lossy(&line));
                log.push('\n');
            }
        });
        let mut daemon = Daemon {
            child,
            log,
            reader: Some(reader),
            iso: SocketAddr::from(([0, 0, 0, 0], 0)),
            http: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let started = Instant::now();
        loop {
            let bound = listening(&daemon.log.lock().unwrap());
            if let Some((iso, http)) = bound {
                (daemon.iso, daemon.http) = (iso, http);
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "cardcore exited ({status}):\n{}",
                    daemon.log.lock().unwrap()
                );
            }
            assert!(started.elapsed() < START_WITHIN, "cardcore did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (a graceful shutdown), then the whole log.
    fn stop(&mut self) -> String {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > STOP_WITHIN {
                let _ = self.child.kill();
                panic!("cardcore did not stop after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let log = self.log.lock().unwrap().clone();
        assert!(status.success(), "cardcore exited with {status}:\n{log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The bound addresses from the `listening` log line.
fn listening(log: &str) -> Option<(SocketAddr, SocketAddr)> {
    let line = log.lines().find(|l| l.contains("listening"))?;
    let value = |key: &str| -> Option<SocketAddr> {
        let start = line.find(key)? + key.len();
        line[start..].split_whitespace().next()?.parse().ok()
    };
    Some((value("iso=")?, value("http=")?))
}

/// One HTTP/1.1 request on its own connection: the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// An ISO 8583 connection, one request at a time.
struct IsoConn {
    stream: TcpStream,
}

impl IsoConn {
    fn connect(addr: SocketAddr) -> IsoConn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        IsoConn { stream }
    }

    /// Sends one message; the answer's field 39.
    fn call(&mut self, message: &[u8]) -> String {
        let mut frame = (message.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(message);
        self.stream.write_all(&frame).unwrap();
        let mut header = [0u8; 2];
        self.stream.read_exact(&mut header).unwrap();
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(header))];
        self.stream.read_exact(&mut answer).unwrap();
        let answer = parse(&answer).expect("an answer that parses");
        answer
            .response_code()
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default()
    }
}

fn files_under(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files.into_iter()
}

fn files_named<'a>(dir: &Path, part: &'a str) -> impl Iterator<Item = PathBuf> + 'a {
    files_under(dir).filter(move |f| {
        f.file_name()
            .is_some_and(|n| n.to_string_lossy().contains(part))
    })
}

fn wait_for(condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < START_WITHIN, "condition not reached");
        std::thread::sleep(Duration::from_millis(50));
    }
}
