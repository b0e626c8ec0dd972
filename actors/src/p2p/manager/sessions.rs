//! The PeerManager's handling of what its sessions report: a session up (Hello accepted or
//! refused), down, misbehaving, measuring latency, or carrying a message for the node.

use actix::{Context, Handler};
use spacetime::BoundedVec;
use spacetime::p2p::{Direction, PeerId};
use spacetime::wire::{DisconnectReason, Hello, Message, PeerAddr, PeerList};

use super::{GOSSIP_MAX_AGE_MS, PeerManagerActor};
use crate::p2p::events::{PeerEvent, SessionEvent};

impl Handler<SessionEvent> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, event: SessionEvent, _: &mut Context<Self>) {
        match event {
            SessionEvent::Up { id, hello } => self.on_up(id, hello),
            SessionEvent::Down {
                id,
                reason,
                self_connection,
                handshake_fault,
            } => {
                if let Some(what) = handshake_fault {
                    self.handshake_fault(id, what);
                }
                self.on_down(id, reason, self_connection);
            }
            SessionEvent::Misbehaved { id, what } => self.penalize(id, what),
            SessionEvent::Latency { id, rtt_ms } => {
                crate::p2p::metrics::latency(rtt_ms);
                self.core.on_latency(id, rtt_ms);
                if let Some(h) = self.handles.get_mut(&id) {
                    h.latency_ms = Some(rtt_ms);
                }
                self.publish(PeerEvent::Latency { id, rtt_ms });
            }
            SessionEvent::Message { id, message } => self.on_message(id, message),
        }
    }
}

impl PeerManagerActor {
    /// A session completed its handshake and Hello.
    fn on_up(&mut self, id: PeerId, hello: Hello) {
        let now = self.clock.now_ms();
        let admitted = self
            .core
            .on_hello(
                id,
                hello.node_id,
                hello.capabilities,
                hello.listen_port,
                now,
            )
            .and_then(|()| self.core.admit_inbound(id));
        match admitted {
            Ok(evicted) => {
                if let Some(victim) = evicted {
                    // A less useful inbound session makes room for this one.
                    crate::p2p::metrics::evicted();
                    self.disconnect(victim, DisconnectReason::TooManyPeers);
                }
                let Some(handle) = self.handles.get_mut(&id) else {
                    return;
                };
                crate::p2p::metrics::peer_up(handle.direction);
                let event = PeerEvent::Connected {
                    id,
                    node_id: hello.node_id,
                    addr: handle.addr,
                    direction: handle.direction,
                    best_height: hello.best_height,
                    best_hash: hello.best_hash,
                    work: hello.cumulative_work,
                };
                handle.hello = Some(hello);
                self.publish(event);
                // Learn addresses from every new peer.
                self.send(id, Message::RequestPeers);
            }
            Err(reason) => {
                if reason == DisconnectReason::Banned {
                    // Its node id is banned, whatever address it came from.
                    crate::p2p::metrics::refused_banned_node();
                    tracing::debug!(peer = id.0, node = %hello.node_id, "banned node refused");
                }
                self.disconnect(id, reason);
            }
        }
    }

    /// A session ended.
    fn on_down(&mut self, id: PeerId, reason: String, self_connection: bool) {
        let Some(handle) = self.handles.remove(&id) else {
            return;
        };
        tracing::debug!(peer = id.0, addr = %handle.addr, %reason, "session ended");
        if let Some(hello) = &handle.hello {
            crate::p2p::metrics::peer_down(handle.direction);
            self.publish(PeerEvent::Disconnected {
                id,
                node_id: hello.node_id,
                reason,
            });
        }
        let now = self.clock.now_ms();
        if self_connection && handle.direction == Direction::Outbound {
            // The address we dialled is ourselves: never again.
            self.core.add_local_addr(handle.addr);
        } else if handle.hello.is_none() && handle.direction == Direction::Outbound {
            self.core.on_dial_failed(handle.addr, now);
        }
        self.core.on_disconnected(id);
    }

    /// A message from a peer.
    fn on_message(&mut self, id: PeerId, message: Message) {
        let now = self.clock.now_ms();
        match message {
            Message::RequestPeers => {
                let peers: Vec<PeerAddr> = self
                    .core
                    .book()
                    .gossip(
                        now,
                        GOSSIP_MAX_AGE_MS,
                        spacetime::wire::MAX_PEERS_PER_MESSAGE,
                    )
                    .into_iter()
                    .map(|i| PeerAddr {
                        ip: i.addr.ip(),
                        port: i.addr.port(),
                        capabilities: i.capabilities,
                        last_seen_ms: i.last_seen_ms,
                    })
                    .collect();
                let list = PeerList {
                    peers: BoundedVec::try_from_vec(peers).unwrap_or_default(),
                };
                self.send(id, Message::PeerList(list));
            }
            Message::PeerList(list) => self.core.on_peer_list(&list.peers, now),
            other => {
                // Chain and mempool messages go to their actors once those exist.
                crate::p2p::metrics::dropped();
                tracing::trace!(peer = id.0, kind = other.kind().name(), "no subscriber");
            }
        }
    }
}
