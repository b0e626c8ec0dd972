//! Metrics of the network layer, through the `metrics` facade (exported by the node's
//! Prometheus endpoint). Gauges move by increments, so several nodes in one process (tests, the
//! simulator) add up instead of overwriting each other.

use spacetime::p2p::{Direction, Misbehavior};
use spacetime::wire::MessageKind;

use crate::net::{HelloError, TransportError};

/// Connected peers (Hello accepted), by direction.
pub const PEERS: &str = "spacetime_peers";
/// Messages received, by type.
pub const MESSAGES_RECEIVED: &str = "spacetime_p2p_messages_received_total";
/// Messages sent, by type.
pub const MESSAGES_SENT: &str = "spacetime_p2p_messages_sent_total";
/// Frame bytes received, by message type.
pub const MESSAGE_BYTES_RECEIVED: &str = "spacetime_p2p_message_received_bytes_total";
/// Frame bytes sent, by message type.
pub const MESSAGE_BYTES_SENT: &str = "spacetime_p2p_message_sent_bytes_total";
/// Inbound connections refused before their handshake, by reason.
pub const INBOUND_REFUSED: &str = "spacetime_p2p_inbound_refused_total";
/// Inbound peers evicted to make room for a new one.
pub const INBOUND_EVICTED: &str = "spacetime_p2p_inbound_evicted_total";
/// Bytes read from peer sockets.
pub const BYTES_RECEIVED: &str = "spacetime_p2p_received_bytes_total";
/// Bytes written to peer sockets.
pub const BYTES_SENT: &str = "spacetime_p2p_sent_bytes_total";
/// Sessions that failed before their Hello was accepted, by reason.
pub const HANDSHAKE_FAILURES: &str = "spacetime_p2p_handshake_failures_total";
/// Protocol violations, by kind.
pub const MISBEHAVIOUR: &str = "spacetime_p2p_misbehaviour_total";
/// Bans issued, by kind (address, node).
pub const BANS: &str = "spacetime_p2p_bans_total";
/// Peer messages dropped because the node was busy.
pub const DROPPED: &str = "spacetime_p2p_dropped_messages_total";
/// Ping round-trip times.
pub const LATENCY: &str = "spacetime_p2p_ping_latency_seconds";

const fn direction_label(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

/// A peer's Hello was accepted.
pub(crate) fn peer_up(direction: Direction) {
    metrics::gauge!(PEERS, "direction" => direction_label(direction)).increment(1.0);
}

/// A peer whose Hello had been accepted left.
pub(crate) fn peer_down(direction: Direction) {
    metrics::gauge!(PEERS, "direction" => direction_label(direction)).decrement(1.0);
}

/// A message of `bytes` payload bytes arrived.
pub(crate) fn received(kind: MessageKind, bytes: usize) {
    metrics::counter!(MESSAGES_RECEIVED, "type" => kind.name()).increment(1);
    metrics::counter!(MESSAGE_BYTES_RECEIVED, "type" => kind.name()).increment(bytes as u64);
}

/// A message of `bytes` frame bytes was queued for sending.
pub(crate) fn sent(kind: MessageKind, bytes: usize) {
    metrics::counter!(MESSAGES_SENT, "type" => kind.name()).increment(1);
    metrics::counter!(MESSAGE_BYTES_SENT, "type" => kind.name()).increment(bytes as u64);
}

/// Socket traffic since the last report.
pub(crate) fn traffic(bytes_in: u64, bytes_out: u64) {
    if bytes_in > 0 {
        metrics::counter!(BYTES_RECEIVED).increment(bytes_in);
    }
    if bytes_out > 0 {
        metrics::counter!(BYTES_SENT).increment(bytes_out);
    }
}

/// The Noise handshake failed.
pub(crate) fn handshake_failed(error: &TransportError) {
    let reason = match error {
        TransportError::HandshakeTimeout => "timeout",
        TransportError::Closed => "closed",
        TransportError::Io(_) => "io",
        TransportError::Noise(_) => "noise",
        TransportError::Frame(_) => "frame",
        TransportError::Random(_) => "random",
    };
    metrics::counter!(HANDSHAKE_FAILURES, "reason" => reason).increment(1);
}

/// The Hello exchange failed.
pub(crate) fn hello_failed(error: &HelloError) {
    let reason = match error {
        HelloError::Refused(r) | HelloError::PeerDisconnected { reason: r, .. } => match r {
            spacetime::wire::DisconnectReason::WrongNetwork => "wrong_network",
            spacetime::wire::DisconnectReason::IncompatibleVersion => "incompatible_version",
            spacetime::wire::DisconnectReason::SelfConnection => "self_connection",
            spacetime::wire::DisconnectReason::ProtocolViolation => "protocol_violation",
            _ => "refused",
        },
        HelloError::NoHello(_) => "no_hello",
        HelloError::Timeout => "timeout",
        HelloError::Transport(_) => "transport",
    };
    metrics::counter!(HANDSHAKE_FAILURES, "reason" => reason).increment(1);
}

/// A peer misbehaved.
pub(crate) fn misbehaved(what: Misbehavior) {
    metrics::counter!(MISBEHAVIOUR, "kind" => misbehaviour_label(what)).increment(1);
}

/// The metrics label of a misbehaviour.
pub(crate) fn misbehaviour_label(what: Misbehavior) -> &'static str {
    match what {
        Misbehavior::MalformedMessage => "malformed_message",
        Misbehavior::RateLimited => "rate_limited",
        Misbehavior::UnexpectedMessage => "unexpected_message",
        Misbehavior::InvalidBlock => "invalid_block",
        Misbehavior::InvalidTransaction => "invalid_transaction",
        Misbehavior::NonConnectingHeaders => "non_connecting_headers",
        Misbehavior::Timeout => "timeout",
        Misbehavior::UnprovenWork => "unproven_work",
        Misbehavior::RepeatedItem => "repeated_item",
        Misbehavior::InvalidRelayedBlock => "invalid_relayed_block",
        Misbehavior::MalformedHandshake => "malformed_handshake",
        Misbehavior::HandshakeTimeout => "handshake_timeout",
    }
}

/// A peer was banned: its node id or its address.
pub(crate) fn banned(kind: spacetime::p2p::BanKind) {
    metrics::counter!(BANS, "kind" => kind.label()).increment(1);
}

/// A session was refused at its Hello because its node id is banned.
pub(crate) fn refused_banned_node() {
    metrics::counter!(HANDSHAKE_FAILURES, "reason" => "banned_node").increment(1);
}

/// A peer message was dropped.
pub(crate) fn dropped() {
    metrics::counter!(DROPPED).increment(1);
}

/// A ping round trip.
pub(crate) fn latency(rtt_ms: u64) {
    metrics::histogram!(LATENCY).record(rtt_ms as f64 / 1000.0);
}

/// An inbound connection was refused.
pub(crate) fn refused(why: spacetime::p2p::InboundRefusal) {
    metrics::counter!(INBOUND_REFUSED, "reason" => why.label()).increment(1);
}

/// An inbound peer was evicted for a newcomer.
pub(crate) fn evicted() {
    metrics::counter!(INBOUND_EVICTED).increment(1);
}
