//! Networking: the transport seam (TCP, or the simulator's in-memory links), Noise sessions on
//! top of it, and the Hello exchange.

mod hello;
mod noise;
mod transport;

pub use hello::{DISCONNECT_SEND_TIMEOUT, HelloError, exchange_hello, refuse};
pub use noise::{
    MAX_NOISE_MESSAGE, NOISE_PARAMS, PROLOGUE, Role, Session, StaticKey, Traffic, TransportError,
    handshake,
};
pub use transport::{BoxFuture, BoxStream, Listener, Stream, TcpTransport, Transport};

#[cfg(test)]
mod tests;
