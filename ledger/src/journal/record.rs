//! The on-disk form of one journal record.
//!
//! key   = seq as u64 big-endian (8 bytes), so the store's key order is seq order;
//! value = version (1 byte) | CRC32C (4 bytes, big-endian) | payload.
//!
//! The checksum covers the version byte, the seq (big-endian) and the payload. Covering the
//! seq means a value that ends up under the wrong key is caught, not only flipped bits.

use std::fmt;

use super::{JournalError, Seq};

/// The record format this build writes and reads.
pub const RECORD_VERSION: u8 = 1;
/// Version byte plus checksum.
pub const RECORD_HEADER_BYTES: usize = 5;
/// The largest payload one event may carry. Events are small (an outcome and its deltas);
/// anything near this bound is a bug in the caller, and the bound keeps one record from
/// pinning an unbounded buffer in the queue.
pub const RECORD_PAYLOAD_MAX_BYTES: usize = 1 << 20;

/// What is wrong with a record that fails its checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordProblem {
    /// The value is shorter than the record header.
    TooShort { len_bytes: usize },
    /// The stored checksum does not match the record's contents.
    ChecksumMismatch { stored: u32, computed: u32 },
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordProblem::TooShort { len_bytes } => write!(
                f,
                "value is {len_bytes} bytes, shorter than the {RECORD_HEADER_BYTES}-byte header"
            ),
            RecordProblem::ChecksumMismatch { stored, computed } => {
                write!(
                    f,
                    "CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
        }
    }
}

/// The store key for `seq`.
pub fn seq_key(seq: Seq) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The sequence number in a store key, if the key has the right length.
pub fn seq_from_key(key: &[u8]) -> Option<Seq> {
    let bytes: [u8; 8] = key.try_into().ok()?;
    Some(Seq::from_be_bytes(bytes))
}

/// Writes the record value for (`seq`, `payload`) into `out`, replacing its contents.
/// The caller checks the payload bound first; this is asserted because a longer payload
/// here means a check was skipped.
pub fn encode_into(seq: Seq, payload: &[u8], out: &mut Vec<u8>) {
    assert!(payload.len() <= RECORD_PAYLOAD_MAX_BYTES);
    out.clear();
    out.reserve(RECORD_HEADER_BYTES + payload.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&checksum(RECORD_VERSION, seq, payload).to_be_bytes());
    out.extend_from_slice(payload);
    assert_eq!(out.len(), RECORD_HEADER_BYTES + payload.len());
}

/// Checks a record read back from the store and returns its payload.
///
/// The checksum is checked before the version, so a damaged version byte reads as
/// corruption, and `UnsupportedVersion` only ever means "written by another format".
pub fn decode(seq: Seq, value: &[u8]) -> Result<&[u8], JournalError> {
    if value.len() < RECORD_HEADER_BYTES {
        let problem = RecordProblem::TooShort {
            len_bytes: value.len(),
        };
        return Err(JournalError::Corrupt { seq, problem });
    }
    let version = value[0];
    let stored = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    let payload = &value[RECORD_HEADER_BYTES..];
    let computed = checksum(version, seq, payload);
    if stored != computed {
        let problem = RecordProblem::ChecksumMismatch { stored, computed };
        return Err(JournalError::Corrupt { seq, problem });
    }
    if version != RECORD_VERSION {
        return Err(JournalError::UnsupportedVersion {
            seq,
            version,
            supported: RECORD_VERSION,
        });
    }
    Ok(payload)
}

/// True for the damage a write cut short leaves behind (a short value, a checksum that does
/// not match): what a torn tail is made of. A well-formed record of another version is not.
pub fn is_torn_write(error: &JournalError) -> bool {
    matches!(
        error,
        JournalError::Corrupt {
            problem: RecordProblem::TooShort { .. } | RecordProblem::ChecksumMismatch { .. },
            ..
        }
    )
}

fn checksum(version: u8, seq: Seq, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&[version]);
    let crc = crc32c::crc32c_append(crc, &seq.to_be_bytes());
    crc32c::crc32c_append(crc, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(seq: Seq, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(seq, payload, &mut out);
        out
    }

    #[test]
    fn round_trip_keeps_payload() {
        for (seq, payload) in [(1, &b""[..]), (7, b"x"), (u64::MAX, b"an event payload")] {
            let value = encoded(seq, payload);
            assert_eq!(value[0], RECORD_VERSION);
            assert_eq!(decode(seq, &value).unwrap(), payload);
        }
    }

    #[test]
    fn key_is_big_endian_and_orders_like_seq() {
        assert_eq!(seq_key(1), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(seq_key(255) < seq_key(256));
        assert_eq!(seq_from_key(&seq_key(0xDEAD_BEEF)), Some(0xDEAD_BEEF));
        assert_eq!(seq_from_key(b"short"), None);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let value = encoded(42, b"payload");
        for byte in 0..value.len() {
            for bit in 0..8 {
                let mut damaged = value.clone();
                damaged[byte] ^= 1 << bit;
                let error = decode(42, &damaged).unwrap_err();
                assert!(is_torn_write(&error), "byte {byte} bit {bit}: {error}");
            }
        }
    }

    #[test]
    fn value_under_another_key_is_detected() {
        let value = encoded(42, b"payload");
        let error = decode(43, &value).unwrap_err();
        assert!(
            matches!(error, JournalError::Corrupt { seq: 43, .. }),
            "{error}"
        );
    }

    #[test]
    fn short_value_is_torn() {
        for len in 0..RECORD_HEADER_BYTES {
            let value = encoded(9, b"p");
            let error = decode(9, &value[..len]).unwrap_err();
            assert!(is_torn_write(&error));
            assert!(error.to_string().contains("record 9"), "{error}");
        }
    }

    #[test]
    fn other_version_with_good_checksum_is_not_torn() {
        let mut value = vec![2];
        value.extend_from_slice(&checksum(2, 5, b"future").to_be_bytes());
        value.extend_from_slice(b"future");
        let error = decode(5, &value).unwrap_err();
        assert!(matches!(
            error,
            JournalError::UnsupportedVersion {
                seq: 5,
                version: 2,
                ..
            }
        ));
        assert!(!is_torn_write(&error));
        assert!(error.is_corruption());
    }
}
