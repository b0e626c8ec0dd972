//! The wire protocol: messages, their size limits, framing, and the handshake checks.
//!
//! Sans-IO: bytes in, typed messages out. The transport (TCP + Noise) lives in the node crate;
//! `docs/protocol.md` documents every message and limit.

mod frame;
mod hello;
mod message;

pub use frame::{
    Frame, FrameDecoder, FrameError, LENGTH_PREFIX_BYTES, MAX_NOISE_PLAINTEXT, encode_frame,
    encode_frame_into,
};
pub use hello::{LocalHello, check_hello, negotiated_version, node_id};
pub use message::*;

#[cfg(test)]
mod tests;
