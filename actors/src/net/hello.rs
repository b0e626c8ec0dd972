//! The Hello exchange that opens every session.

use std::time::Duration;

use spacetime::BoundedString;
use spacetime::wire::{Disconnect, DisconnectReason, Hello, LocalHello, Message, check_hello};

use super::noise::{Session, TransportError};

/// Why the Hello exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// We refused the peer (and told it why).
    #[error("refused peer: {0:?}")]
    Refused(DisconnectReason),
    /// The peer refused us.
    #[error("peer disconnected: {reason:?} ({detail})")]
    PeerDisconnected {
        /// The peer's reason.
        reason: DisconnectReason,
        /// The peer's detail text.
        detail: String,
    },
    /// The first message was not a Hello.
    #[error("peer sent {0} before Hello")]
    NoHello(&'static str),
    /// No Hello in time.
    #[error("no Hello within the handshake timeout")]
    Timeout,
}

/// Sends our Hello at once, then reads and checks the peer's. On refusal the peer is sent a
/// `Disconnect` with the reason before the error is returned.
pub async fn exchange_hello(
    session: &mut Session,
    ours: &Hello,
    local: &LocalHello,
    timeout: Duration,
) -> Result<Hello, HelloError> {
    session.send(&Message::Hello(ours.clone())).await?;
    let first = tokio::time::timeout(timeout, session.recv())
        .await
        .map_err(|_| HelloError::Timeout)??;
    let hello = match first {
        Message::Hello(h) => h,
        Message::Disconnect(d) => {
            return Err(HelloError::PeerDisconnected {
                reason: d.reason,
                detail: d.detail.to_string(),
            });
        }
        other => {
            refuse(
                session,
                DisconnectReason::ProtocolViolation,
                "expected Hello",
            )
            .await;
            return Err(HelloError::NoHello(other.kind().name()));
        }
    };
    if let Err(reason) = check_hello(local, &hello, &session.remote_node_id()) {
        refuse(session, reason, "hello refused").await;
        return Err(HelloError::Refused(reason));
    }
    Ok(hello)
}

/// Best-effort `Disconnect` before dropping a session.
pub async fn refuse(session: &mut Session, reason: DisconnectReason, detail: &str) {
    let message = Message::Disconnect(Disconnect {
        reason,
        detail: BoundedString::truncating(detail),
    });
    // A courtesy: a peer that does not read gets no more than this much of our time.
    let _ = tokio::time::timeout(DISCONNECT_SEND_TIMEOUT, session.send(&message)).await;
}

/// How long sending a Disconnect may take before the session is dropped without it.
pub const DISCONNECT_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
