//! TCP framing: each message is preceded by its length as 2 bytes, big-endian, not counting
//! the 2 bytes themselves. A zero length is a keep-alive and carries no message.

use bytes::{Buf, Bytes, BytesMut};

use super::pack::PackBuffer;
use super::MESSAGE_MAX_LEN;

/// Bytes in the length prefix.
pub const FRAME_HEADER_LEN: usize = 2;
/// The longest message a frame may carry by default.
pub const FRAME_MAX_LEN: usize = MESSAGE_MAX_LEN;

const _: () = assert!(FRAME_MAX_LEN <= u16::MAX as usize);

/// Why a frame was refused. The connection cannot be trusted to be in step afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the maximum {max}")]
    TooLong { len: usize, max: usize },
}

/// Splits a byte stream into messages.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_len: usize,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder that accepts frames up to [`FRAME_MAX_LEN`].
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            max_len: FRAME_MAX_LEN,
        }
    }

    /// A decoder with a smaller limit (a larger one is capped at [`FRAME_MAX_LEN`]).
    pub fn with_max_len(max_len: usize) -> FrameDecoder {
        FrameDecoder {
            max_len: max_len.min(FRAME_MAX_LEN),
        }
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Takes the next complete message off the front of `buf`; `Ok(None)` until one has fully
    /// arrived. Keep-alives (zero-length frames) are consumed and skipped. On error `buf` is
    /// left as it was: the caller should close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        loop {
            let Some(header) = buf.get(..FRAME_HEADER_LEN) else {
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
            if len > self.max_len {
                return Err(FrameError::TooLong {
                    len,
                    max: self.max_len,
                });
            }
            if len == 0 {
                buf.advance(FRAME_HEADER_LEN);
                continue;
            }
            if buf.len() < FRAME_HEADER_LEN + len {
                // Make room for the rest once, rather than growing as it trickles in.
                buf.reserve(FRAME_HEADER_LEN + len - buf.len());
                return Ok(None);
            }
            buf.advance(FRAME_HEADER_LEN);
            return Ok(Some(buf.split_to(len).freeze()));
        }
    }
}

/// Appends `message` to `out` with its 2-byte length prefix.
pub fn encode_frame<B: PackBuffer>(message: &[u8], out: &mut B) -> Result<(), FrameError> {
    if message.len() > FRAME_MAX_LEN {
        return Err(FrameError::TooLong {
            len: message.len(),
            max: FRAME_MAX_LEN,
        });
    }
    let dst = out.append_zeroed(FRAME_HEADER_LEN + message.len());
    dst[..FRAME_HEADER_LEN].copy_from_slice(&(message.len() as u16).to_be_bytes());
    dst[FRAME_HEADER_LEN..].copy_from_slice(message);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_join() {
        let mut wire = Vec::new();
        encode_frame(b"0800ABC", &mut wire).unwrap();
        wire.extend_from_slice(&[0, 0]); // keep-alive
        encode_frame(b"0810", &mut wire).unwrap();
        assert_eq!(&wire[..2], &[0, 7]);
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        // Feed one byte at a time: partial frames must wait.
        for &b in &wire {
            buf.extend_from_slice(&[b]);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(
            frames,
            vec![Bytes::from_static(b"0800ABC"), Bytes::from_static(b"0810")]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_frames_are_refused_without_consuming() {
        let mut decoder = FrameDecoder::with_max_len(10);
        let mut buf = BytesMut::from(&[0u8, 11, b'x'][..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::TooLong { len: 11, max: 10 })
        );
        assert_eq!(buf.len(), 3);
        assert_eq!(
            FrameDecoder::with_max_len(usize::MAX).max_len(),
            FRAME_MAX_LEN
        );
        let big = vec![b'0'; FRAME_MAX_LEN + 1];
        assert!(encode_frame(&big, &mut Vec::new()).is_err());
    }
}
