//! Shared by the HTTP tests: a real server on ephemeral loopback ports, and a small HTTP/1.1
//! client over a plain TCP socket (one request per connection), so the tests exercise the
//! bytes on the wire and nothing in between.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cardcore_core::ProfileId;
use cardcore_server::http;
use cardcore_server::server::Server;
use cardcore_server::{Config, Role, Secret, Service, TokenConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The operator token sandbox mode accepts by default.
pub const OPERATOR: &str = "sandbox";
/// Profile tokens: profile 1 and profile 2.
pub const P1: &str = "token-of-profile-one";
pub const P2: &str = "token-of-profile-two";
/// An application token for client id `client-1`.
pub const APP: &str = "token-of-client-one";
pub const CLIENT_ID: &str = "client-1";
/// The longest a test waits for one HTTP exchange.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest response a test reads.
pub const RESPONSE_BYTES_MAX: usize = 4 * 1024 * 1024;

pub struct TestServer {
    pub server: Option<Server>,
    pub http: SocketAddr,
    pub iso: SocketAddr,
    pub service: Arc<Service>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with a fresh data directory, listening on loopback port 0, with the test
    /// tokens configured.
    pub async fn start(sandbox: bool) -> TestServer {
        TestServer::start_with(sandbox, |_| {}).await
    }

    /// [`TestServer::start`] with the configuration changed by `configure` first.
    pub async fn start_with(sandbox: bool, configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            iso_listen: "127.0.0.1:0".to_owned(),
            http_listen: "127.0.0.1:0".to_owned(),
            sandbox,
            ..Config::default()
        };
        config.tokens = vec![
            token(P1, Role::Profile(ProfileId(1))),
            token(P2, Role::Profile(ProfileId(2))),
            token(APP, Role::Application(CLIENT_ID.to_owned())),
        ];
        if !sandbox {
            // Outside sandbox mode the operator token must be configured explicitly.
            config.tokens.push(token(OPERATOR, Role::Operator));
        }
        config.apply_sandbox_defaults();
        configure(&mut config);
        let service = tokio::task::spawn_blocking(move || Service::open(config))
            .await
            .expect("open task")
            .expect("service opens");
        let router = http::router(Arc::clone(&service));
        let server = Server::start(Arc::clone(&service), router)
            .await
            .expect("server starts");
        TestServer {
            http: server.http_addr(),
            iso: server.iso_addr(),
            server: Some(server),
            service,
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let body = body.map(Value::to_string);
        self.raw(method, path, token, body.as_deref(), &[]).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call("POST", path, Some(token), Some(&body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call("PUT", path, Some(token), Some(&body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call("PATCH", path, Some(token), Some(&body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call("DELETE", path, Some(token), None).await
    }

    /// Sends one request with an exact body text and extra headers.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.http
        );
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let exchange = async {
            let mut stream = TcpStream::connect(self.http).await.expect("connect");
            stream.write_all(request.as_bytes()).await.expect("send");
            let mut bytes = Vec::new();
            stream
                .take(RESPONSE_BYTES_MAX as u64)
                .read_to_end(&mut bytes)
                .await
                .expect("read");
            bytes
        };
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .expect("the server answers in time");
        Reply::parse(&bytes)
    }
}

fn token(text: &str, role: Role) -> TokenConfig {
    TokenConfig {
        token: Secret::new(text),
        role,
    }
}

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    fn parse(bytes: &[u8]) -> Reply {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
        let raw_body = &bytes[split + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(raw_body)
        } else {
            raw_body.to_vec()
        };
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts the status and returns the JSON body (or `Null` when empty).
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        if self.text.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts an error: the status, and that `errors[0].ref` names `field`.
    pub fn expect_error(&self, status: u16, field: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(body["status"], status, "{body}");
        assert_eq!(body["errors"][0]["ref"], field, "{body}");
        body
    }
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&bytes[..end]);
        let size = usize::from_str_radix(size_text.trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&bytes[start..start + size]);
        bytes = &bytes[start + size + 2..];
    }
}

/// Test data: a Visa test PAN and friends, never anything real.
pub const PAN: &str = "4000001234567899";
pub const PAN_2: &str = "4000009876543219";
pub const PIN: &str = "1234";
pub const CVV2: &str = "123";

/// Creates profile `id` through the sandbox API.
pub async fn sandbox_profile(server: &TestServer, id: u64) {
    server
        .post(
            "/v1/sandbox/profiles",
            OPERATOR,
            serde_json::json!({"id": id}),
        )
        .await
        .expect(201);
}

/// Issues a card with a known PAN through the sandbox API; returns its token.
pub async fn sandbox_card(server: &TestServer, profile: u64, pan: &str, extra: Value) -> String {
    let mut body = serde_json::json!({
        "pan": pan, "pin": PIN, "cvv2": CVV2, "expiry": "2029-07", "currency": "EUR"
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let path = format!("/v1/sandbox/profiles/{profile}/cards");
    let card = server.post(&path, OPERATOR, body).await.expect(201);
    card["token"].as_str().expect("a token").to_owned()
}

/// Tops a profile up through the sandbox API.
pub async fn sandbox_top_up(server: &TestServer, profile: u64, amount: &str, currency: &str) {
    let path = format!("/v1/sandbox/profiles/{profile}/top-up");
    let body = serde_json::json!({"amount": amount, "currency": currency});
    server.post(&path, OPERATOR, body).await.expect(200);
}
