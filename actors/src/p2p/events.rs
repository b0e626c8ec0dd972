//! The messages between a session task and the PeerManager, and the peer events the manager
//! publishes to the rest of the node. Both sides depend on this module; neither on the other.

use std::net::SocketAddr;

use actix::{Message as ActixMessage, Recipient};
use spacetime::Hash;
use spacetime::p2p::{Direction, Misbehavior, PeerId};
use spacetime::wire::{DisconnectReason, Hello, Message};
use tokio::sync::mpsc;

/// What the manager and the node's actors queue for a session task. Ending a session goes
/// through the task's close signal instead, which a full queue cannot hold up.
#[derive(Debug)]
pub enum Outgoing {
    /// Send a message.
    Send(Box<Message>),
}

/// Ends a session: the task sends `Disconnect` with the reason and closes; the first reason
/// given wins. Checked before the task's queue, so it is never lost behind a full one.
#[derive(Debug)]
pub struct CloseSender(tokio::sync::watch::Sender<Option<DisconnectReason>>);

/// The task's side of [`CloseSender`].
pub type CloseReceiver = tokio::sync::watch::Receiver<Option<DisconnectReason>>;

impl CloseSender {
    /// A close signal and the task's receiver of it.
    pub fn new() -> (Self, CloseReceiver) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        (Self(tx), rx)
    }

    /// Asks the task to end the session, telling the peer `reason`.
    pub fn close(&self, reason: DisconnectReason) {
        self.0.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
    }
}

/// What a session task reports to the manager.
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub enum SessionEvent {
    /// The handshake and Hello exchange completed.
    Up {
        /// The session.
        id: PeerId,
        /// The peer's Hello.
        hello: Hello,
    },
    /// The session ended (sent even when the mailbox is busy: the task retries).
    Down {
        /// The session.
        id: PeerId,
        /// Why, for logs.
        reason: String,
        /// The session reached this node itself.
        self_connection: bool,
        /// The peer's fault that failed the Noise handshake (garbage, no handshake in time).
        handshake_fault: Option<Misbehavior>,
    },
    /// A message for the node.
    Message {
        /// The session.
        id: PeerId,
        /// The message.
        message: Message,
    },
    /// A protocol violation.
    Misbehaved {
        /// The session.
        id: PeerId,
        /// What it did.
        what: Misbehavior,
    },
    /// A ping round trip.
    Latency {
        /// The session.
        id: PeerId,
        /// Round-trip time, ms.
        rtt_ms: u64,
    },
}

/// A peer event the PeerManager publishes to subscribers (the simulator's observers today;
/// sync and relay next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A session completed its handshake and Hello and was accepted.
    Connected {
        /// The session.
        id: PeerId,
        /// The peer's node id.
        node_id: Hash,
        /// Its address.
        addr: SocketAddr,
        /// Who connected.
        direction: Direction,
        /// Its best height when it said Hello.
        best_height: u64,
        /// Its best block when it said Hello.
        best_hash: Hash,
        /// The cumulative work of its chain when it said Hello (big-endian).
        work: [u8; 32],
    },
    /// An accepted session ended.
    Disconnected {
        /// The session.
        id: PeerId,
        /// The peer's node id.
        node_id: Hash,
        /// Why, for logs.
        reason: String,
    },
    /// A peer measured a ping round trip.
    Latency {
        /// The session.
        id: PeerId,
        /// Round-trip time, ms.
        rtt_ms: u64,
    },
}

/// A [`PeerEvent`] delivered to a subscriber.
#[derive(Debug, Clone, ActixMessage)]
#[rtype(result = "()")]
pub struct PeerNotification(pub PeerEvent);

/// A peer's request for chain data (`GetHeaders`, `GetBlocks`, `GetBlock`), with the session's
/// outgoing queue for the answer.
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub struct PeerRequest {
    /// The session.
    pub peer: PeerId,
    /// The request.
    pub message: Message,
    /// Where the answer goes.
    pub reply: mpsc::Sender<Outgoing>,
}

/// A chain message from a peer for the Sync actor (`Headers`, `Block`, `NotFound`).
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub struct PeerChainMessage {
    /// The session.
    pub peer: PeerId,
    /// The message.
    pub message: Message,
}

/// Where sessions hand chain messages, straight to their owners (unset: to the PeerManager,
/// which counts and drops them).
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Chain requests: the ChainServer.
    pub requests: Option<Recipient<PeerRequest>>,
    /// Headers, blocks and `NotFound`: the Sync actor.
    pub sync: Option<Recipient<PeerChainMessage>>,
    /// Relayed items (blocks, transfers, challenges, proofs, acceptances), their
    /// announcements and fetches (`GetBlock` included), `TxPoolRequest` and `SendBlocks`: the
    /// Gossip actor, which answers through the session's queue.
    pub relay: Option<Recipient<PeerRequest>>,
}
