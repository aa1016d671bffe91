//! A small HTTP/1.1 client for the management API routes the scenario target does not
//! offer: a card's transaction list and the state hash. One request per connection
//! (`Connection: close`), so the end of the answer is the end of the connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use cardcore_core::{Currency, Money, TransactionState, TxnId};
use cardcore_sim::scenario::CardRef;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

/// How long one connect, read or write may block.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read (a page of 100 transactions is far smaller).
pub const RESPONSE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Transactions per page of a card's list: the most the API gives.
pub const PAGE_SIZE: usize = 100;
/// Creation times of every transaction a run makes lie in this window.
const LIST_FROM: &str = "2000-01-01T00:00:00Z";
const LIST_TO: &str = "2099-12-31T23:59:59Z";

/// A transaction as the server has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineTxn {
    pub id: TxnId,
    pub state: TransactionState,
    /// What it stands at: cleared, authorised, or asked for (by state).
    pub amount: Money,
}

/// Every transaction of `card`, newest first, read page by page.
pub fn card_transactions(http: &str, token: &str, card: CardRef) -> anyhow::Result<Vec<EngineTxn>> {
    let mut all = Vec::new();
    let mut last_id: Option<TxnId> = None;
    loop {
        let mut path = format!(
            "/v4/spend/profiles/{}/cards/{}/transactions?fromCreationTime={LIST_FROM}\
             &toCreationTime={LIST_TO}&pageSize={PAGE_SIZE}",
            card.profile, card.token
        );
        if let Some(last) = last_id {
            path.push_str(&format!("&lastId={last}"));
        }
        let page: TxnListIn = get_json(http, token, &path)?;
        let full = page.transactions.len() == PAGE_SIZE;
        for t in page.transactions {
            let txn = t.engine_txn()?;
            last_id = Some(txn.id);
            all.push(txn);
        }
        if !full {
            return Ok(all);
        }
    }
}

/// `GET /v1/sandbox/state-hash`: the engine's state hash, hex.
pub fn state_hash(http: &str, token: &str) -> anyhow::Result<String> {
    let out: StateHashIn = get_json(http, token, "/v1/sandbox/state-hash")?;
    Ok(out.state_hash)
}

/// GETs `path` and reads a 200 answer as `T`.
pub fn get_json<T: DeserializeOwned>(http: &str, token: &str, path: &str) -> anyhow::Result<T> {
    let (status, body) = get(http, token, path)?;
    if status != 200 {
        bail!(
            "GET {path}: HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    serde_json::from_slice(&body).with_context(|| format!("GET {path}: unexpected body"))
}

fn get(http: &str, token: &str, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let addr = http.parse().with_context(|| format!("address {http}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)
        .with_context(|| format!("connect to {http}"))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream
        .take(RESPONSE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut raw)
        .with_context(|| format!("GET {path}: read the answer"))?;
    if raw.len() > RESPONSE_BYTES_MAX {
        bail!("GET {path}: the answer exceeds {RESPONSE_BYTES_MAX} bytes");
    }
    split_response(&raw).with_context(|| format!("GET {path}"))
}

/// Status and body of a whole HTTP/1.1 answer (a chunked body is decoded).
fn split_response(raw: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).context("headers are not UTF-8")?;
    let body = &raw[end + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .context("no status code")?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk without its size line")?;
        let size_text = std::str::from_utf8(&body[..line_end])?;
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).context("a chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            bail!("a chunk cut short");
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[derive(Deserialize)]
struct TxnListIn {
    transactions: Vec<TxnIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TxnIn {
    id: TxnId,
    state: TransactionState,
    transaction_amount: AmountIn,
}

impl TxnIn {
    fn engine_txn(&self) -> anyhow::Result<EngineTxn> {
        Ok(EngineTxn {
            id: self.id,
            state: self.state,
            amount: self.transaction_amount.money()?,
        })
    }
}

/// `{amount, currency}`, the amount read from its exact digits, never through `f64`.
#[derive(Deserialize)]
struct AmountIn {
    amount: Box<RawValue>,
    currency: Currency,
}

impl AmountIn {
    fn money(&self) -> anyhow::Result<Money> {
        let text = self.amount.get().trim().trim_matches('"');
        let exact = Decimal::from_str_exact(text)
            .with_context(|| format!("amount {text:?} is not a decimal"))?;
        Money::from_decimal(exact, self.currency)
            .map_err(|e| anyhow::anyhow!("amount {text} {}: {e}", self.currency.alpha()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateHashIn {
    state_hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(split_response(plain).unwrap(), (200, b"{}".to_vec()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(split_response(chunked).unwrap(), (404, b"abcde".to_vec()));
        assert!(split_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(dechunk(b"5\r\nab").is_err());
    }
}
