//! Application framing inside a Noise session: `u32` big-endian length, then the payload,
//! whose first byte is the message type.
//!
//! The receiver reads the length and the type byte before anything else, checks the length
//! against that type's limit, and only then starts buffering the payload, growing the buffer as
//! bytes arrive so a peer that announces a large frame and stalls costs little memory. Frames
//! are carried across Noise transport messages of at most [`MAX_NOISE_PLAINTEXT`] bytes; the
//! decoder is a byte stream, so how frames are cut into Noise messages does not matter.

use crate::encoding::{DecodeError, decode, encode_into};

use super::message::{Message, MessageKind};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;
/// Largest plaintext of one Noise transport message: 65535 bytes minus the 16-byte AEAD tag.
pub const MAX_NOISE_PLAINTEXT: usize = 65535 - 16;
/// Initial buffer for a payload; it grows as bytes arrive.
const INITIAL_PAYLOAD_CAPACITY: usize = 64 * 1024;

/// Why a peer's byte stream is not a valid sequence of frames. Any of these is a protocol
/// violation: the session ends and the peer is penalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame of length zero (it would have no type byte).
    #[error("empty frame")]
    Empty,
    /// The type byte names no message.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// The announced length exceeds the limit of the message's type.
    #[error("{kind} frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The message type's name.
        kind: &'static str,
        /// The announced length.
        len: usize,
        /// The type's limit.
        max: usize,
    },
    /// The payload is not a canonical message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Appends the frame of `message` to `out`.
pub fn encode_frame_into(message: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_PREFIX_BYTES]);
    encode_into(message, out);
    // Payloads are bounded by MAX_BLOCK_BYTES + 1, far below u32::MAX.
    let len = (out.len() - start - LENGTH_PREFIX_BYTES) as u32;
    out[start..start + LENGTH_PREFIX_BYTES].copy_from_slice(&len.to_be_bytes());
}

/// The frame of `message`.
pub fn encode_frame(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame_into(message, &mut out);
    out
}

/// One complete frame: its message type and payload (type byte included), not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message type.
    pub kind: MessageKind,
    /// The payload, starting with the type byte.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Decodes the payload; a payload that is not a canonical message of its type is an error.
    pub fn decode(&self) -> Result<Message, FrameError> {
        let message: Message = decode(&self.payload)?;
        debug_assert_eq!(message.kind(), self.kind);
        Ok(message)
    }
}

/// Splits a byte stream into complete frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Length prefix and type byte of the frame being read.
    header: [u8; LENGTH_PREFIX_BYTES + 1],
    /// How much of `header` is filled.
    header_len: usize,
    /// The payload being read, once the header checked out: (type, length, bytes so far).
    body: Option<(MessageKind, usize, Vec<u8>)>,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; every frame they complete is appended to `out`. After an error the stream
    /// is unusable and the session must end.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        loop {
            match &mut self.body {
                None => {
                    if data.is_empty() {
                        return Ok(());
                    }
                    let take = (self.header.len() - self.header_len).min(data.len());
                    self.header[self.header_len..self.header_len + take]
                        .copy_from_slice(&data[..take]);
                    self.header_len += take;
                    data = &data[take..];
                    if self.header_len == self.header.len() {
                        self.start_body()?;
                    }
                }
                Some((kind, len, buf)) if buf.len() == *len => {
                    let kind = *kind;
                    let payload = core::mem::take(buf);
                    self.body = None;
                    self.header_len = 0;
                    out.push(Frame { kind, payload });
                }
                Some((_, len, buf)) => {
                    if data.is_empty() {
                        return Ok(());
                    }
                    let take = (*len - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                }
            }
        }
    }

    /// Validates a complete header and starts the payload with its type byte.
    fn start_body(&mut self) -> Result<(), FrameError> {
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        prefix.copy_from_slice(&self.header[..LENGTH_PREFIX_BYTES]);
        let len = u32::from_be_bytes(prefix) as usize;
        if len == 0 {
            return Err(FrameError::Empty);
        }
        let tag = self.header[LENGTH_PREFIX_BYTES];
        let kind = MessageKind::from_tag(tag).ok_or(FrameError::UnknownType(tag))?;
        if len > kind.max_len() {
            return Err(FrameError::TooLarge {
                kind: kind.name(),
                len,
                max: kind.max_len(),
            });
        }
        let mut buf = Vec::with_capacity(len.min(INITIAL_PAYLOAD_CAPACITY));
        buf.push(tag);
        self.body = Some((kind, len, buf));
        Ok(())
    }

    /// Feeds bytes and decodes every frame they complete into `out`.
    pub fn push_messages(&mut self, data: &[u8], out: &mut Vec<Message>) -> Result<(), FrameError> {
        let mut frames = Vec::new();
        self.push(data, &mut frames)?;
        for frame in &frames {
            out.push(frame.decode()?);
        }
        Ok(())
    }

    /// True between frames (nothing buffered).
    pub fn is_idle(&self) -> bool {
        self.header_len == 0 && self.body.is_none()
    }
}
