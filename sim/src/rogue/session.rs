//! A rogue's tasks: the accept loop and one task per session (handshake, `Hello`, then answers
//! from its [`RogueChain`]). Everything runs in the rogue's scope on the simulator's thread;
//! nothing a peer sends can panic it, and every end is recorded.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use spacetime::wire::{
    GetHeaders, Headers, Hello, LocalHello, Message, MessageKind, NotFound, PROTOCOL_VERSION,
    PeerList, capabilities,
};
use spacetime::wire::{TxIds, Txs};
use spacetime::{Amount, BoundedString, BoundedVec, Hash, Keypair, NodeRng, UnsignedTransfer};
use spacetime_actors::net::{Role, Session, StaticKey, TransportError, exchange_hello, handshake};
use tokio::time::Instant;

use super::{Counters, Flood, Lie, RogueChain, SessionEnd, SessionEndReason};
use crate::link::LinkStream;
use crate::net::SimListener;
use crate::sim::NODE_PORT;

/// Noise handshake and `Hello` exchange together (the node's default).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that does not read our answers for this long is dropped (the node's idle timeout).
pub(crate) const WRITE_BOUND: Duration = Duration::from_secs(120);
/// Far enough ahead to mean never, without overflowing the clock.
const NEVER: Duration = Duration::from_secs(365 * 86_400);

/// Everything a rogue's sessions share.
pub(crate) struct Rogue {
    pub chain: RogueChain,
    pub key: StaticKey,
    pub network_id: Hash,
    pub chain_id: spacetime::ChainId,
    /// A funded account (the genesis premine's first), which bad transfers claim to spend
    /// from, so that they reach the signature check.
    pub funded: Option<spacetime::Address>,
    pub counters: Counters,
    /// The simulation's start, and its Unix time then (the rogue's clock).
    pub start: Instant,
    pub start_unix_ms: u64,
}

impl Rogue {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn hello(&self) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            network_id: self.network_id,
            node_id: self.key.node_id(),
            best_height: self.chain.claimed_height(),
            best_hash: self.chain.tip_hash(),
            cumulative_work: self.chain.claimed_work().0,
            listen_port: NODE_PORT,
            user_agent: BoundedString::truncating(&format!(
                "spacetime-sim-rogue ({:?})",
                self.chain.lie()
            )),
            capabilities: capabilities::FULL_NODE,
            time_ms: self.start_unix_ms.saturating_add(self.elapsed_ms()),
        }
    }

    fn end(&self, peer: SocketAddr, node_id: Option<Hash>, reason: SessionEndReason) {
        let at_ms = self.elapsed_ms();
        self.counters.update(|v| {
            v.ended.push(SessionEnd {
                peer,
                node_id,
                at_ms,
                reason,
            });
        });
    }
}

/// Accepts connections until the listener fails or the rogue is dropped.
pub(crate) async fn listen(rogue: Rogue, mut listener: SimListener, mut rng: NodeRng) {
    let rogue = Rc::new(rogue);
    loop {
        match listener.accept_link().await {
            Ok((stream, peer)) => {
                rogue.counters.update(|v| v.accepted += 1);
                let session_rng = rng.split();
                drop(tokio::task::spawn_local(serve(
                    rogue.clone(),
                    stream,
                    peer,
                    session_rng,
                )));
            }
            Err(e) => {
                rogue
                    .counters
                    .update(|v| v.listen_error = Some(e.to_string()));
                return;
            }
        }
    }
}

/// One session, from the handshake to its end.
async fn serve(rogue: Rc<Rogue>, stream: LinkStream, peer: SocketAddr, rng: NodeRng) {
    let noise = NodeRng::from_seed(rng.derive("noise").bytes32());
    let mut session = match handshake(
        stream,
        &rogue.key,
        Role::Responder,
        HANDSHAKE_TIMEOUT,
        noise,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return rogue.end(peer, None, SessionEndReason::Handshake(e.to_string())),
    };
    let node_id = Some(session.remote_node_id());
    let local = LocalHello {
        network_id: rogue.network_id,
        node_id: rogue.key.node_id(),
    };
    if let Err(e) = exchange_hello(&mut session, &rogue.hello(), &local, HANDSHAKE_TIMEOUT).await {
        return rogue.end(peer, node_id, SessionEndReason::Hello(e.to_string()));
    }
    rogue.counters.update(|v| {
        v.sessions += 1;
        v.open += 1;
        *v.received.entry(MessageKind::Hello).or_default() += 1;
    });
    let reason = answer(&rogue, &mut session, rng.derive("flood")).await;
    rogue.counters.update(|v| v.open = v.open.saturating_sub(1));
    rogue.end(peer, node_id, reason);
}

/// Answers requests until the session ends; returns why it did.
async fn answer(rogue: &Rogue, session: &mut Session, mut rng: NodeRng) -> SessionEndReason {
    // Block answers held back by `Lie::Slow`, due in order (one delay for all).
    let mut held: VecDeque<(Instant, Vec<Message>)> = VecDeque::new();
    let flood = match rogue.chain.lie() {
        Lie::Flood { what, every } => Some((what, every.max(Duration::from_millis(1)))),
        _ => None,
    };
    let mut next_flood = Instant::now();
    let mut flooded: u64 = 0;
    loop {
        let due = held.front().map(|(at, _)| *at);
        let timer = async move {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let flood_timer = async move {
            match flood {
                Some(_) => tokio::time::sleep_until(next_flood).await,
                None => std::future::pending().await,
            }
        };
        let mut out = Vec::new();
        tokio::select! {
            biased;
            () = flood_timer => {
                if let Some((what, every)) = flood {
                    out.extend(flood_message(rogue, what, flooded, &mut rng));
                    flooded += 1;
                    next_flood += every;
                }
            }
            () = timer => {
                if let Some((_, messages)) = held.pop_front() {
                    out = messages;
                }
            }
            received = session.recv() => match received {
                Ok(message) => {
                    let kind = message.kind();
                    rogue.counters.update(|v| *v.received.entry(kind).or_default() += 1);
                    match respond(rogue, message) {
                        Respond::Now(messages) => out = messages,
                        Respond::After(delay, messages) => {
                            // A delay past the clock's range stands for never.
                            let now = Instant::now();
                            let at = now.checked_add(delay).unwrap_or(now + NEVER);
                            held.push_back((at, messages));
                        }
                        Respond::End(reason) => return reason,
                    }
                }
                Err(TransportError::Closed) => return SessionEndReason::Closed,
                Err(TransportError::Frame(e)) => return SessionEndReason::Malformed(e.to_string()),
                Err(e) => return SessionEndReason::Transport(e.to_string()),
            },
        }
        for message in &out {
            if let Err(e) = session.queue(message) {
                return SessionEndReason::Transport(e.to_string());
            }
            count_sent(rogue, message);
        }
        match tokio::time::timeout(WRITE_BOUND, session.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return SessionEndReason::Transport(e.to_string()),
            Err(_) => return SessionEndReason::WriteStalled,
        }
    }
}

/// What to do about one message.
enum Respond {
    /// Send these now (possibly nothing).
    Now(Vec<Message>),
    /// Send these after the delay.
    After(Duration, Vec<Message>),
    /// The session is over.
    End(SessionEndReason),
}

fn respond(rogue: &Rogue, message: Message) -> Respond {
    let chain = &rogue.chain;
    match message {
        Message::Ping(p) => Respond::Now(vec![Message::Pong(p)]),
        Message::RequestPeers => Respond::Now(vec![Message::PeerList(PeerList {
            peers: BoundedVec::default(),
        })]),
        Message::GetHeaders(request) => Respond::Now(vec![headers(chain, &request)]),
        Message::GetBlock(request) => blocks(rogue, &[request.hash]),
        Message::GetBlocks(request) => blocks(rogue, &request.hashes),
        Message::Disconnect(d) => Respond::End(SessionEndReason::Disconnected {
            reason: d.reason,
            detail: d.detail.to_string(),
        }),
        _ => Respond::Now(Vec::new()),
    }
}

fn headers(chain: &RogueChain, request: &GetHeaders) -> Message {
    let headers = BoundedVec::try_from_vec(chain.headers(request)).unwrap_or_default();
    Message::Headers(Headers { headers })
}

/// The answer to a request for `hashes`: each block it has in order, then one `NotFound`.
fn blocks(rogue: &Rogue, hashes: &[Hash]) -> Respond {
    let lie = rogue.chain.lie();
    if lie == Lie::Withhold {
        let n = hashes.len() as u64;
        rogue.counters.update(|v| v.withheld += n);
        return Respond::Now(Vec::new());
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for hash in hashes {
        match rogue.chain.block(hash) {
            Some(block) => out.push(Message::Block(Box::new(block))),
            None => missing.push(*hash),
        }
    }
    if !missing.is_empty() {
        // At most as many as asked for, which the request's own bound limits.
        let hashes = BoundedVec::try_from_vec(missing).unwrap_or_default();
        out.push(Message::NotFound(NotFound { hashes }));
    }
    match lie {
        Lie::Slow { delay } => Respond::After(delay, out),
        _ => Respond::Now(out),
    }
}

/// The `n`th unasked message of a flood.
fn flood_message(rogue: &Rogue, what: Flood, n: u64, rng: &mut NodeRng) -> Option<Message> {
    let tip = || rogue.chain.block(&rogue.chain.tip_hash());
    Some(match what {
        Flood::SameBlock => Message::BlockProposal(Box::new(tip()?)),
        Flood::InvalidHeader => {
            let mut block = tip()?;
            block.header = super::invalid_header(&block.header);
            Message::BlockProposal(Box::new(block))
        }
        Flood::BadBody => Message::BlockProposal(Box::new(super::bad_body(&tip()?))),
        Flood::BadCompact => Message::CompactBlock(Box::new(spacetime::wire::CompactBlock::of(
            &super::bad_body(&tip()?),
        ))),
        Flood::Announcements => Message::TxInv(TxIds {
            ids: BoundedVec::try_from_vec(vec![Hash(rng.bytes32())]).ok()?,
        }),
        Flood::BadTransfers => {
            let key = Keypair::generate_with(rng);
            let other = Keypair::generate_with(rng);
            let unsigned = UnsignedTransfer {
                from: key.public(),
                to: other.public(),
                amount: Amount(1),
                // Enough for any pool, at the funded account's next nonce: only the signature
                // is wrong.
                fee: Amount(1_000),
                nonce: if rogue.funded.is_some() { 0 } else { n },
                chain_id: rogue.chain_id,
            };
            // Then claimed to come from another sender (a funded one when the genesis has
            // one): the signature does not verify.
            let mut transfer = unsigned.sign(&key).ok()?;
            transfer.unsigned.from = rogue.funded.unwrap_or(other.public());
            Message::Txs(Txs {
                transfers: BoundedVec::try_from_vec(vec![transfer]).ok()?,
            })
        }
    })
}

fn count_sent(rogue: &Rogue, message: &Message) {
    match message {
        Message::Headers(h) => {
            let n = h.headers.len() as u64;
            rogue.counters.update(|v| v.headers_served += n);
        }
        Message::Block(_) => rogue.counters.update(|v| v.blocks_served += 1),
        Message::NotFound(nf) => {
            let n = nf.hashes.len() as u64;
            rogue.counters.update(|v| v.not_found += n);
        }
        _ => {}
    }
}
