//! The peer manager's decisions as a state machine: which connections to accept, whom to
//! dial, whom to evict or ban. The PeerManager actor owns one, feeds it events with the time,
//! and carries out the [`Action`]s it returns.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::Hash;
use crate::wire::DisconnectReason;

use super::addr_book::{AddrBook, NetGroup, Random};
use super::bans::{Ban, Bans};
use super::score::{Misbehavior, PeerScore, Verdict};

/// Most outbound connections a node may be configured for.
pub const MAX_OUTBOUND_LIMIT: usize = 32;

/// Connection policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerManagerConfig {
    /// Outbound connections to keep (default 8, at most 32).
    pub outbound: usize,
    /// Most inbound sessions (whose Hello was accepted).
    pub max_inbound: usize,
    /// Most inbound connections still in their handshake; they hold no session slot, and a
    /// newcomer beyond this many evicts one of them, so a slowloris cannot keep peers out.
    pub max_handshaking: usize,
    /// Most inbound connections from one IP address.
    pub max_inbound_per_ip: usize,
    /// Addresses dialled when the book has nothing better.
    pub seeds: Vec<SocketAddr>,
    /// Addresses the operator trusts: a misbehaving peer from one is disconnected, never
    /// banned (another node of the operator's must not lock the others out).
    pub trusted: Vec<IpAddr>,
    /// Trust every loopback address (the dev network's default: local nodes share 127.0.0.1).
    pub trust_loopback: bool,
}

impl Default for PeerManagerConfig {
    fn default() -> Self {
        Self {
            outbound: 8,
            max_inbound: 117,
            max_handshaking: 16,
            max_inbound_per_ip: 4,
            seeds: Vec::new(),
            trusted: Vec::new(),
            trust_loopback: false,
        }
    }
}

/// Why an inbound connection was refused before its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundRefusal {
    /// Its address is banned.
    Banned,
    /// Its address already holds `max_inbound_per_ip` inbound slots.
    IpLimit,
    /// Every inbound slot is taken and no peer may be evicted.
    Full,
}

impl InboundRefusal {
    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Banned => "banned",
            Self::IpLimit => "ip_limit",
            Self::Full => "full",
        }
    }
}

/// A connection's handle, assigned by the manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The peer connected to us.
    Inbound,
    /// We dialled the peer.
    Outbound,
}

/// What the manager knows of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    /// The peer's address (for outbound, the one dialled).
    pub addr: SocketAddr,
    /// Who opened it.
    pub direction: Direction,
    /// The node id, once its Hello was accepted.
    pub node_id: Option<Hash>,
    /// When the connection was opened, ms.
    pub connected_ms: u64,
    /// Smoothed round-trip time of pings, ms.
    pub latency_ms: Option<u64>,
    /// When it last sent us a valid new block, ms (0: never).
    pub last_block_ms: u64,
    /// Misbehaviour points.
    pub score: PeerScore,
    /// Where an inbound peer listens (its IP, the port its Hello told); outbound: `addr`.
    pub listen: Option<SocketAddr>,
}

/// What the actor should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open an outbound connection.
    Dial(SocketAddr),
    /// End a session, telling the peer why.
    Disconnect(PeerId, DisconnectReason),
}

/// A penalty that ended a session: the `Disconnect` to send, and what was banned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanction {
    /// The session to end.
    pub peer: PeerId,
    /// The reason sent in its `Disconnect`.
    pub reason: DisconnectReason,
    /// The bans issued: none for a trusted address, the node id for a fault inside a session
    /// (and its address too when it churns node ids), the address before the node id is known.
    pub bans: Vec<Ban>,
}

impl Sanction {
    /// The action that carries it out.
    pub fn action(&self) -> Action {
        Action::Disconnect(self.peer, self.reason)
    }
}

/// The peer manager state machine.
#[derive(Debug)]
pub struct PeerManager {
    config: PeerManagerConfig,
    book: AddrBook,
    bans: Bans,
    /// Handshake faults by address: all a fault before the Noise handshake completes proves.
    handshake_scores: BTreeMap<IpAddr, PeerScore>,
    peers: BTreeMap<PeerId, PeerState>,
    /// Outbound dials in flight.
    dialing: BTreeMap<SocketAddr, u64>,
    /// Addresses that reach this node itself: never dialled or stored.
    local: std::collections::BTreeSet<SocketAddr>,
    /// Listening addresses of banned node ids, not dialled until the given time (ms): the
    /// address is not banned (other nodes may share its IP), but dialling it only reaches the
    /// banned node again.
    avoid: BTreeMap<SocketAddr, u64>,
    next_id: u64,
}

/// How long a dial may stay in flight before another one replaces it.
const DIAL_TIMEOUT_MS: u64 = 10_000;
/// Most listening addresses of banned node ids remembered; the soonest to expire makes room.
pub const MAX_AVOIDED: usize = 1024;
/// Most addresses whose handshake faults are scored; the least suspect makes room.
pub const MAX_HANDSHAKE_SCORES: usize = 4096;

impl PeerManager {
    /// A manager with `config`, an address book and bans (restored from disk or empty).
    pub fn new(mut config: PeerManagerConfig, book: AddrBook, bans: Bans) -> Self {
        config.outbound = config.outbound.min(MAX_OUTBOUND_LIMIT);
        Self {
            config,
            book,
            bans,
            handshake_scores: BTreeMap::new(),
            peers: BTreeMap::new(),
            dialing: BTreeMap::new(),
            local: std::collections::BTreeSet::new(),
            avoid: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// Records an address that reaches this node (its listen address, or one a dial proved to be
    /// ourselves): it is forgotten and never dialled.
    pub fn add_local_addr(&mut self, addr: SocketAddr) {
        self.book.forget(&addr);
        self.local.insert(addr);
    }

    /// The address book (to persist it).
    pub fn book(&self) -> &AddrBook {
        &self.book
    }

    /// The bans by address and node id, with their histories (to persist them).
    pub fn bans(&self) -> &Bans {
        &self.bans
    }

    /// Every connection.
    pub fn peers(&self) -> impl Iterator<Item = (&PeerId, &PeerState)> {
        self.peers.iter()
    }

    /// Connections by direction: (inbound, outbound).
    pub fn counts(&self) -> (usize, usize) {
        let outbound = self
            .peers
            .values()
            .filter(|p| p.direction == Direction::Outbound)
            .count();
        (self.peers.len() - outbound, outbound)
    }

    fn new_id(&mut self) -> PeerId {
        let id = PeerId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Periodic work: dial until the outbound slots are full (dials in flight count).
    pub fn on_tick(&mut self, now_ms: u64, rng: &mut dyn Random) -> Vec<Action> {
        self.dialing
            .retain(|_, started| now_ms.saturating_sub(*started) < DIAL_TIMEOUT_MS);
        self.bans.prune(now_ms);
        self.handshake_scores.retain(|_, s| s.points(now_ms) > 0);
        let (_, outbound) = self.counts();
        let mut wanted = self
            .config
            .outbound
            .saturating_sub(outbound + self.dialing.len());
        let mut actions = Vec::new();
        while wanted > 0 {
            let Some(addr) = self.pick_dial(now_ms, rng) else {
                break;
            };
            self.dialing.insert(addr, now_ms);
            self.book.attempt(&addr, now_ms);
            actions.push(Action::Dial(addr));
            wanted -= 1;
        }
        actions
    }

    /// An address to dial: from the book, avoiding connected and in-flight addresses and, for
    /// routable addresses, network groups we already have an outbound connection in; else a
    /// seed.
    fn pick_dial(&self, now_ms: u64, rng: &mut dyn Random) -> Option<SocketAddr> {
        let busy = |addr: &SocketAddr| {
            self.dialing.contains_key(addr)
                || self.local.contains(addr)
                || self.bans.is_address_banned(&addr.ip(), now_ms)
                || self.avoid.get(addr).is_some_and(|until| *until > now_ms)
                || self.peers.values().any(|p| {
                    p.addr == *addr
                        || (p.direction == Direction::Outbound
                            && !matches!(NetGroup::of(addr), NetGroup::Local(_))
                            && NetGroup::of(&p.addr) == NetGroup::of(addr))
                })
        };
        self.book.select(now_ms, rng, &busy).or_else(|| {
            self.config
                .seeds
                .iter()
                .copied()
                .find(|s| !busy(s) && self.book.get(s).is_none_or(|i| i.retry_at_ms(0) <= now_ms))
        })
    }

    /// A dial failed.
    pub fn on_dial_failed(&mut self, addr: SocketAddr, now_ms: u64) {
        self.dialing.remove(&addr);
        if self.book.get(&addr).is_none() {
            // Seeds enter the book so their failures back off like any address.
            self.book.add(addr, 0, 0, now_ms);
        }
        self.book.failed(&addr, now_ms);
    }

    /// A dial connected (before the handshake): the session gets an id.
    pub fn on_dialed(&mut self, addr: SocketAddr, now_ms: u64) -> PeerId {
        self.dialing.remove(&addr);
        let id = self.new_id();
        self.peers
            .insert(id, PeerState::new(addr, Direction::Outbound, now_ms));
        id
    }

    /// A peer connected to us. Refuses banned IPs and IPs over their limit; when the handshake
    /// pool is full, evicts one handshake to make room. Session slots are taken only once the
    /// Hello is accepted ([`PeerManager::admit_inbound`]).
    pub fn on_inbound(
        &mut self,
        addr: SocketAddr,
        now_ms: u64,
    ) -> Result<(PeerId, Vec<Action>), InboundRefusal> {
        if self.bans.is_address_banned(&addr.ip(), now_ms) {
            return Err(InboundRefusal::Banned);
        }
        let same_ip = self
            .peers
            .values()
            .filter(|p| p.direction == Direction::Inbound && p.addr.ip() == addr.ip())
            .count();
        if same_ip >= self.config.max_inbound_per_ip {
            return Err(InboundRefusal::IpLimit);
        }
        let mut actions = Vec::new();
        let handshaking = self.handshaking();
        if handshaking >= self.config.max_handshaking {
            let Some(victim) = self.handshake_to_evict() else {
                return Err(InboundRefusal::Full);
            };
            self.peers.remove(&victim);
            actions.push(Action::Disconnect(victim, DisconnectReason::TooManyPeers));
        }
        let id = self.new_id();
        self.peers
            .insert(id, PeerState::new(addr, Direction::Inbound, now_ms));
        Ok((id, actions))
    }

    /// Inbound connections still in their handshake.
    pub fn handshaking(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.direction == Direction::Inbound && p.node_id.is_none())
            .count()
    }

    /// The handshake to drop for a newcomer: the oldest of the address group with the most
    /// handshakes in flight (a flood from one range loses its own first).
    fn handshake_to_evict(&self) -> Option<PeerId> {
        let mut per_group: BTreeMap<NetGroup, Vec<(PeerId, &PeerState)>> = BTreeMap::new();
        for (id, p) in &self.peers {
            if p.direction == Direction::Inbound && p.node_id.is_none() {
                per_group
                    .entry(Self::eviction_group(&p.addr))
                    .or_default()
                    .push((*id, p));
            }
        }
        let biggest = per_group.values().max_by_key(|v| v.len())?;
        biggest
            .iter()
            .min_by_key(|(id, p)| (p.connected_ms, id.0))
            .map(|(id, _)| *id)
    }

    /// An address's group for eviction: local addresses group by IP, so one host's many ports
    /// count as one.
    fn eviction_group(addr: &SocketAddr) -> NetGroup {
        match NetGroup::of(addr) {
            NetGroup::Local(a) => NetGroup::Local(SocketAddr::new(a.ip(), 0)),
            g => g,
        }
    }

    /// An inbound peer's Hello was accepted: it takes a session slot. When they are full, a
    /// less useful inbound session makes room (returned, to be disconnected), or, when every
    /// one is protected, the newcomer is refused.
    pub fn admit_inbound(&mut self, peer: PeerId) -> Result<Option<PeerId>, DisconnectReason> {
        if self
            .peers
            .get(&peer)
            .is_none_or(|p| p.direction != Direction::Inbound)
        {
            return Ok(None);
        }
        let established = self
            .peers
            .iter()
            .filter(|(id, p)| {
                **id != peer && p.direction == Direction::Inbound && p.node_id.is_some()
            })
            .count();
        if established < self.config.max_inbound {
            return Ok(None);
        }
        match self.eviction_candidate(peer) {
            Some(victim) => {
                self.peers.remove(&victim);
                Ok(Some(victim))
            }
            None => {
                self.peers.remove(&peer);
                Err(DisconnectReason::TooManyPeers)
            }
        }
    }

    /// The inbound peer to evict, if any may be: peers that recently gave us blocks, the
    /// fastest, and the longest connected are protected; among the rest, the youngest
    /// connection from the most represented network group goes (an attacker with one range
    /// cannot push out a diverse set).
    fn eviction_candidate(&self, newcomer: PeerId) -> Option<PeerId> {
        let mut candidates: Vec<(PeerId, &PeerState)> = self
            .peers
            .iter()
            .filter(|(id, p)| {
                **id != newcomer && p.direction == Direction::Inbound && p.node_id.is_some()
            })
            .map(|(id, p)| (*id, p))
            .collect();
        let protect = |candidates: &mut Vec<(PeerId, &PeerState)>,
                       n: usize,
                       key: &dyn Fn(&PeerState) -> u64| {
            candidates.sort_by_key(|(_, p)| key(p));
            let keep = candidates.len().saturating_sub(n);
            candidates.truncate(keep);
        };
        // Sorted ascending, the protected ones last, then cut.
        protect(&mut candidates, 4, &|p| p.last_block_ms);
        protect(&mut candidates, 4, &|p| {
            u64::MAX - p.latency_ms.unwrap_or(u64::MAX)
        });
        protect(&mut candidates, 4, &|p| u64::MAX - p.connected_ms);
        let mut per_group: BTreeMap<NetGroup, Vec<(PeerId, &PeerState)>> = BTreeMap::new();
        for (id, p) in candidates {
            per_group
                .entry(Self::eviction_group(&p.addr))
                .or_default()
                .push((id, p));
        }
        let biggest = per_group.values().max_by_key(|v| v.len())?;
        biggest
            .iter()
            .max_by_key(|(id, p)| (p.connected_ms, id.0))
            .map(|(id, _)| *id)
    }

    /// The Hello was accepted (the node id is that of the peer's proven Noise static key).
    /// Refuses a banned node id, whatever address it comes from, and a second connection to
    /// the same node (keeping the older one); the peer's address moves to the book's tried
    /// table if we dialled it.
    pub fn on_hello(
        &mut self,
        peer: PeerId,
        node_id: Hash,
        capabilities: u64,
        listen_port: u16,
        now_ms: u64,
    ) -> Result<(), DisconnectReason> {
        if self.bans.is_node_banned(&node_id, now_ms) && !self.is_trusted_peer(peer) {
            if let Some(state) = self.peers.remove(&peer)
                && state.direction == Direction::Outbound
            {
                let until = now_ms.saturating_add(crate::p2p::BAN_STEPS_MS[0]);
                self.avoid_dialling(state.addr, until);
            }
            return Err(DisconnectReason::Banned);
        }
        if self
            .peers
            .iter()
            .any(|(id, p)| *id != peer && p.node_id == Some(node_id))
        {
            self.peers.remove(&peer);
            return Err(DisconnectReason::DuplicateConnection);
        }
        let Some(state) = self.peers.get_mut(&peer) else {
            return Err(DisconnectReason::Shutdown);
        };
        state.node_id = Some(node_id);
        match state.direction {
            Direction::Outbound => self.book.connected(&state.addr, capabilities, now_ms),
            Direction::Inbound if listen_port != 0 => {
                // An inbound peer's listening address is worth remembering, not trying yet.
                let addr = SocketAddr::new(state.addr.ip(), listen_port);
                state.listen = Some(addr);
                self.book.add(addr, capabilities, now_ms, now_ms);
            }
            Direction::Inbound => {}
        }
        Ok(())
    }

    /// Stops dialling `addr` until `until_ms` and drops it from the book (peers may tell of
    /// it again; it stays skipped until then).
    fn avoid_dialling(&mut self, addr: SocketAddr, until_ms: u64) {
        if self.avoid.len() >= MAX_AVOIDED
            && !self.avoid.contains_key(&addr)
            && let Some((&soonest, _)) = self.avoid.iter().min_by_key(|(_, until)| **until)
        {
            self.avoid.remove(&soonest);
        }
        self.avoid.insert(addr, until_ms);
        self.book.forget(&addr);
    }

    /// A session ended.
    pub fn on_disconnected(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
    }

    /// Whether `ip` is trusted: never banned.
    pub fn is_trusted(&self, ip: &IpAddr) -> bool {
        (self.config.trust_loopback && ip.is_loopback()) || self.config.trusted.contains(ip)
    }

    fn is_trusted_peer(&self, peer: PeerId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| self.is_trusted(&p.addr.ip()))
    }

    /// A peer misbehaved; returns the sanction to carry out if it is now over the ban
    /// threshold. A fault inside a session (its Hello accepted) proves only that the holder of
    /// its node id misbehaved: the node id is banned, not the address other nodes may share.
    /// Before that, the address is all that is known: it is banned. A trusted address is
    /// disconnected, never banned.
    pub fn on_misbehavior(
        &mut self,
        peer: PeerId,
        what: Misbehavior,
        now_ms: u64,
    ) -> Option<Sanction> {
        let state = self.peers.get_mut(&peer)?;
        let Verdict::Ban { reason, .. } = state.score.record(what, now_ms) else {
            return None;
        };
        let (ip, node) = (state.addr.ip(), state.node_id);
        let listen = match state.direction {
            Direction::Outbound => Some(state.addr),
            Direction::Inbound => state.listen,
        };
        self.peers.remove(&peer);
        let bans = if self.is_trusted(&ip) {
            Vec::new()
        } else if let Some(node) = node {
            let bans = self.bans.ban_node(node, ip, now_ms);
            if let Some(addr) = listen {
                let lasts = bans.iter().map(|b| b.lasts_ms).max().unwrap_or(0);
                self.avoid_dialling(addr, now_ms.saturating_add(lasts));
            }
            bans
        } else {
            vec![self.bans.ban_address(ip, now_ms)]
        };
        Some(Sanction { peer, reason, bans })
    }

    /// An inbound connection failed its Noise handshake by its own fault (`what`: bytes that
    /// are no handshake, or no handshake in time); call before [`Self::on_disconnected`].
    /// Only the address is known, so the points go to the address, and decay: one failure (a
    /// port scan) costs nothing more, a flood of them bans the address (returned).
    pub fn on_handshake_fault(
        &mut self,
        peer: PeerId,
        what: Misbehavior,
        now_ms: u64,
    ) -> Option<Ban> {
        let state = self.peers.get(&peer)?;
        if state.direction != Direction::Inbound || state.node_id.is_some() {
            return None;
        }
        let ip = state.addr.ip();
        if self.is_trusted(&ip) {
            return None;
        }
        if self.handshake_scores.len() >= MAX_HANDSHAKE_SCORES
            && !self.handshake_scores.contains_key(&ip)
            && let Some((&least, _)) = self
                .handshake_scores
                .iter()
                .min_by_key(|(_, s)| s.points(now_ms))
        {
            self.handshake_scores.remove(&least);
        }
        let score = self.handshake_scores.entry(ip).or_default();
        match score.record(what, now_ms) {
            Verdict::Keep => None,
            Verdict::Ban { .. } => {
                self.handshake_scores.remove(&ip);
                Some(self.bans.ban_address(ip, now_ms))
            }
        }
    }

    /// Handshake fault points of `ip` now.
    pub fn handshake_points(&self, ip: &IpAddr, now_ms: u64) -> u32 {
        self.handshake_scores
            .get(ip)
            .map_or(0, |s| s.points(now_ms))
    }

    /// A peer measured a ping round trip.
    pub fn on_latency(&mut self, peer: PeerId, rtt_ms: u64) {
        if let Some(p) = self.peers.get_mut(&peer) {
            // Exponential moving average, weight 1/4 for the new sample.
            p.latency_ms = Some(p.latency_ms.map_or(rtt_ms, |old| (3 * old + rtt_ms) / 4));
        }
    }

    /// A peer gave us a valid new block.
    pub fn on_block_from(&mut self, peer: PeerId, now_ms: u64) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_block_ms = now_ms;
        }
    }

    /// Addresses gossiped by a peer.
    pub fn on_peer_list(&mut self, addrs: &[crate::wire::PeerAddr], now_ms: u64) {
        for a in addrs {
            let addr = SocketAddr::new(a.ip, a.port);
            if !self.local.contains(&addr) {
                self.book.add(addr, a.capabilities, a.last_seen_ms, now_ms);
            }
        }
    }
}

impl PeerState {
    fn new(addr: SocketAddr, direction: Direction, now_ms: u64) -> Self {
        Self {
            addr,
            direction,
            node_id: None,
            connected_ms: now_ms,
            latency_ms: None,
            last_block_ms: 0,
            score: PeerScore::default(),
            listen: None,
        }
    }
}

#[cfg(test)]
mod tests;
