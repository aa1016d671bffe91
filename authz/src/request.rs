//! The engine's view of a network message: every field the decision needs, typed and
//! validated, in a `Copy` value with no heap data. Built from a parsed ISO 8583 message by
//! [`crate::wire`]; built directly by embedders and benchmarks.

use cardcore_core::{Channel, Expiry, Mcc, Money, Pan, TransactionType};
use serde::{Deserialize, Serialize};

/// What a message asks the issuer to do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum MessageKind {
    /// 0100 (0101 repeat): authorisation; with `original` set, an incremental authorisation.
    Authorization,
    /// 0120 (0121 repeat): stand-in advice, already approved by the network.
    Advice,
    /// 0200: single-message financial request, decided and posted at once.
    Financial,
    /// 0220 (0221 repeat): clearing (presentment) of an earlier authorisation.
    Clearing,
    /// 0400/0420 (0401/0421 repeats): reversal to a final amount.
    Reversal,
}

impl MessageKind {
    pub const ALL: [MessageKind; 5] = [
        MessageKind::Authorization,
        MessageKind::Advice,
        MessageKind::Financial,
        MessageKind::Clearing,
        MessageKind::Reversal,
    ];
}

/// What identifies one message from the network: STAN (DE 11), transmission time (DE 7) and
/// acquirer (DE 32). A second message with the same key is a duplicate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct MessageKey {
    pub stan: u32,
    /// DE 7, MMDDhhmmss as a number.
    pub transmission: u64,
    /// DE 32, up to 11 digits.
    pub acquirer: u64,
}

/// Fixed-capacity text for merchant names and the like: no allocation per message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShortText<const N: usize> {
    #[serde(with = "serde_bytes_array")]
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> ShortText<N> {
    pub fn new(text: &[u8]) -> ShortText<N> {
        let trimmed = trim_ascii(text);
        let len = trimmed.len().min(N);
        let mut bytes = [b' '; N];
        bytes[..len].copy_from_slice(&trimmed[..len]);
        ShortText {
            bytes,
            len: len as u8,
        }
    }

    /// The text exactly as given (not trimmed); `None` if longer than `N`.
    pub fn exact(text: &[u8]) -> Option<ShortText<N>> {
        let len = u8::try_from(text.len())
            .ok()
            .filter(|l| usize::from(*l) <= N)?;
        let mut bytes = [b' '; N];
        bytes[..text.len()].copy_from_slice(text);
        Some(ShortText { bytes, len })
    }

    pub fn empty() -> ShortText<N> {
        ShortText {
            bytes: [b' '; N],
            len: 0,
        }
    }

    /// All `N` bytes: the text, then spaces.
    pub(crate) fn padded(&self) -> &[u8; N] {
        &self.bytes
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

impl<const N: usize> std::fmt::Debug for ShortText<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

fn trim_ascii(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &text[start..end]
}

mod serde_bytes_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let v: Vec<u8> = Vec::deserialize(d)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom("wrong length"))
    }
}

/// A card verification value 2 as sent (3 or 4 digits).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cvv2 {
    pub digits: [u8; 4],
    pub len: u8,
}

impl Cvv2 {
    pub fn from_ascii(text: &[u8]) -> Option<Cvv2> {
        if !(3..=4).contains(&text.len()) || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits = [0u8; 4];
        digits[..text.len()].copy_from_slice(text);
        Some(Cvv2 {
            digits,
            len: text.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Cvv2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cvv2(***)")
    }
}

/// A request from the network, typed.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub kind: MessageKind,
    /// A repeat MTI (0101, 0121, 0221, 0401, 0421): the network resends after a timeout.
    pub repeat: bool,
    pub key: MessageKey,
    pub pan: Pan,
    /// DE 4 in the transaction currency (DE 49). For a reversal: the original amount.
    pub amount: Money,
    pub txn_type: TransactionType,
    pub channel: Channel,
    pub mcc: Mcc,
    /// DE 52, the encrypted PIN block.
    pub pin_block: Option<[u8; 8]>,
    pub cvv2: Option<Cvv2>,
    /// DE 14, when sent.
    pub expiry: Option<Expiry>,
    /// DE 37.
    pub rrn: ShortText<12>,
    /// DE 43: merchant name and location.
    pub merchant: ShortText<40>,
    /// DE 19 or the country in DE 43, ISO 3166 alpha or numeric as sent.
    pub country: ShortText<3>,
    /// DE 90: the message this one refers to (clearing, reversal, incremental).
    pub original: Option<MessageKey>,
    /// DE 95 actual amount: the final amount a reversal asks for.
    pub final_amount_minor: Option<i64>,
    /// DE 25 = 06: a pre-authorisation, held for 30 days instead of 7.
    pub pre_auth: bool,
}
