//! The PeerManager's penalties: scoring misbehaviour found by sessions and by the node's
//! actors, carrying out the core's sanctions (a warn line, a `Disconnect` naming the reason,
//! the bans counted by kind and saved), and answering ban queries.

use actix::{Context, Handler, Message as ActixMessage};
use spacetime::Hash;
use spacetime::p2p::{BanKind, Misbehavior, PeerId};
use spacetime::wire::DisconnectReason;

use super::PeerManagerActor;

/// Asks whether an IP is banned.
#[derive(ActixMessage)]
#[rtype(result = "bool")]
pub struct IsBanned(pub std::net::IpAddr);

impl Handler<IsBanned> for PeerManagerActor {
    type Result = bool;
    fn handle(&mut self, msg: IsBanned, _: &mut Context<Self>) -> bool {
        self.core
            .bans()
            .is_address_banned(&msg.0, self.clock.now_ms())
    }
}

/// Asks whether a node id is banned.
#[derive(ActixMessage)]
#[rtype(result = "bool")]
pub struct IsNodeBanned(pub Hash);

impl Handler<IsNodeBanned> for PeerManagerActor {
    type Result = bool;
    fn handle(&mut self, msg: IsNodeBanned, _: &mut Context<Self>) -> bool {
        self.core.bans().is_node_banned(&msg.0, self.clock.now_ms())
    }
}

/// Score a peer's misbehaviour found outside its session (by Sync: invalid headers or
/// bodies, unproven work, timeouts); enough of it bans the peer.
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub struct PenalizePeer {
    /// The session.
    pub peer: PeerId,
    /// What it did.
    pub what: Misbehavior,
}

impl Handler<PenalizePeer> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, msg: PenalizePeer, _: &mut Context<Self>) {
        crate::p2p::metrics::misbehaved(msg.what);
        self.penalize(msg.peer, msg.what);
    }
}

impl PeerManagerActor {
    /// Scores a peer's misbehaviour, logged at warn with its address, node id and what was
    /// banned; a sanction ends the session with a `Disconnect` naming the reason.
    pub(crate) fn penalize(&mut self, peer: PeerId, what: Misbehavior) {
        let (addr, node) = self.handles.get(&peer).map_or((None, None), |h| {
            (
                Some(h.addr),
                h.hello.as_ref().map(|hello| hello.node_id.to_string()),
            )
        });
        let sanction = self.core.on_misbehavior(peer, what, self.clock.now_ms());
        let banned = |kind| {
            sanction
                .as_ref()
                .and_then(|s| s.bans.iter().find(|b| b.kind == kind))
                .map(|b| b.lasts_ms / 1000)
        };
        tracing::warn!(
            peer = peer.0,
            addr = ?addr,
            node = node.as_deref().unwrap_or("-"),
            ?what,
            points = what.penalty(),
            disconnected = ?sanction.as_ref().map(|s| s.reason),
            node_banned_s = banned(BanKind::Node),
            address_banned_s = banned(BanKind::Address),
            "peer misbehaved"
        );
        let Some(sanction) = sanction else {
            return;
        };
        for ban in &sanction.bans {
            crate::p2p::metrics::banned(ban.kind);
        }
        self.disconnect(sanction.peer, sanction.reason);
        if !sanction.bans.is_empty() {
            self.persist_in_background();
        }
    }
}

impl PeerManagerActor {
    /// Scores the fault of an inbound connection that failed its Noise handshake against its
    /// address: logged at debug (one is a port scan), at warn when it bans the address.
    pub(crate) fn handshake_fault(&mut self, peer: PeerId, what: Misbehavior) {
        crate::p2p::metrics::misbehaved(what);
        let addr = self.handles.get(&peer).map(|h| h.addr);
        match self
            .core
            .on_handshake_fault(peer, what, self.clock.now_ms())
        {
            None => tracing::debug!(peer = peer.0, addr = ?addr, ?what, "handshake fault"),
            Some(ban) => {
                tracing::warn!(
                    peer = peer.0,
                    addr = ?addr,
                    ?what,
                    address_banned_s = ban.lasts_ms / 1000,
                    "handshake faults: address banned"
                );
                crate::p2p::metrics::banned(ban.kind);
                self.persist_in_background();
            }
        }
    }
}

/// End a session without a ban (a peer that stalls the download).
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub struct DisconnectPeer {
    /// The session.
    pub peer: PeerId,
    /// The reason sent.
    pub reason: DisconnectReason,
}

impl Handler<DisconnectPeer> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, msg: DisconnectPeer, _: &mut Context<Self>) {
        self.disconnect(msg.peer, msg.reason);
    }
}
