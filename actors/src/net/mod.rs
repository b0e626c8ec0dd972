//! Networking: TCP with Noise sessions, and the Hello exchange on top.

mod hello;
mod noise;

pub use hello::{HelloError, exchange_hello, refuse};
pub use noise::{
    MAX_NOISE_MESSAGE, NOISE_PARAMS, PROLOGUE, Role, Session, StaticKey, Traffic, TransportError,
    handshake,
};

#[cfg(test)]
mod tests;
