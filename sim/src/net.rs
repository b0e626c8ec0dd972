//! The simulated internet: listeners, dials and links between the hosts of one simulation.
//!
//! [`SimNet`] is shared by every node of a simulation; [`SimNet::transport`] gives each node
//! a [`SimTransport`] (the node's implementation of the [`Transport`] seam) bound to its IP
//! address.
//!
//! Every unordered pair of IP addresses has one [`LinkControl`], made on first use with the
//! net's default parameters, which steers all connections between the two hosts, those live
//! and those made later: a connection inherits the pair's current parameters, stalls and
//! partition. Its `Forward` direction runs from the lower address to the higher.
//!
//! A dial takes one round trip (the latencies of both directions; jitter and loss do not
//! apply to the handshake). Across a partition it never completes, like a SYN into the void:
//! the caller's timeout ends it, and dropping it leaves nothing behind. Without a listener,
//! or with the listener's backlog full, it fails with `ConnectionRefused` after the round
//! trip. A partition stalls live connections without resetting them: sessions must notice by
//! their own timeouts. Dials ignore stalls.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use spacetime_actors::net::{BoxFuture, BoxStream, Listener, Transport};
use tokio::sync::mpsc;

use crate::link::{self, Direction, DirectionStats, LinkControl, LinkParams, LinkStream};
use crate::rng::SimRng;

/// Connections a listener holds before it accepts them; beyond it, dials are refused.
pub const BACKLOG: usize = 128;

/// First ephemeral port of each host (dialers' source ports and listeners on port 0).
pub const FIRST_EPHEMERAL_PORT: u16 = 40_000;

/// Why a network operation was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// An address appears in more than one group of [`SimNet::partition_groups`].
    #[error("{0} is listed in more than one partition group")]
    InTwoGroups(IpAddr),
}

/// Counters of the whole network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Connections with a pump still running.
    pub live_connections: usize,
    /// Connections ever established.
    pub connections_opened: u64,
    /// Dials refused (no listener, or its backlog full).
    pub refused: u64,
    /// Bytes delivered, both directions of every connection.
    pub bytes_carried: u64,
    /// Segments delivered.
    pub segments: u64,
    /// Segments lost once and delivered late.
    pub retransmissions: u64,
    /// Listeners bound.
    pub listeners: usize,
}

/// What a dial hands to a listener: the acceptor's end and the dialer's address.
type Inbound = (LinkStream, SocketAddr);

/// A bound listener as the network sees it.
#[derive(Debug)]
struct Bound {
    /// Tells this listener from a later one bound to the same address.
    id: u64,
    backlog: mpsc::Sender<Inbound>,
}

/// Everything behind a [`SimNet`] handle.
#[derive(Debug)]
struct NetState {
    default: LinkParams,
    rng: SimRng,
    /// One control per unordered pair, keyed `(lower, higher)`.
    pairs: BTreeMap<(IpAddr, IpAddr), LinkControl>,
    listeners: BTreeMap<SocketAddr, Bound>,
    next_port: BTreeMap<IpAddr, u16>,
    next_listener: u64,
    opened: u64,
    refused: u64,
}

/// The pair key of `(from, to)` and the direction `from -> to` takes on its link.
fn orient(from: IpAddr, to: IpAddr) -> ((IpAddr, IpAddr), Direction) {
    if from <= to {
        ((from, to), Direction::Forward)
    } else {
        ((to, from), Direction::Backward)
    }
}

impl NetState {
    /// The control of the pair `{a, b}`, made with the default parameters on first use.
    fn pair(&mut self, a: IpAddr, b: IpAddr) -> &LinkControl {
        let (key, _) = orient(a, b);
        let default = self.default;
        self.pairs
            .entry(key)
            .or_insert_with(|| LinkControl::new(default))
    }

    /// The next free port of `ip`, counting up from [`FIRST_EPHEMERAL_PORT`] and wrapping.
    fn ephemeral_port(&mut self, ip: IpAddr) -> io::Result<u16> {
        let span = usize::from(u16::MAX - FIRST_EPHEMERAL_PORT) + 1;
        for _ in 0..span {
            let next = self.next_port.entry(ip).or_insert(FIRST_EPHEMERAL_PORT);
            let port = *next;
            *next = port.checked_add(1).unwrap_or(FIRST_EPHEMERAL_PORT);
            if !self.listeners.contains_key(&SocketAddr::new(ip, port)) {
                return Ok(port);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("no free port left on {ip}"),
        ))
    }
}

/// The simulated internet shared by the nodes of one simulation: a cheap, `Send + Sync`
/// handle; clones share the same network.
#[derive(Clone, Debug)]
pub struct SimNet {
    state: Arc<Mutex<NetState>>,
}

impl SimNet {
    /// A network whose link randomness derives from `seed`, with `default` parameters for
    /// every pair not configured otherwise.
    pub fn new(seed: u64, default: LinkParams) -> Self {
        Self {
            state: Arc::new(Mutex::new(NetState {
                default,
                rng: SimRng::new(seed),
                pairs: BTreeMap::new(),
                listeners: BTreeMap::new(),
                next_port: BTreeMap::new(),
                next_listener: 0,
                opened: 0,
                refused: 0,
            })),
        }
    }

    /// The transport of the node at `ip`: its dials leave from `ip`, its listeners bind there.
    pub fn transport(&self, ip: IpAddr) -> SimTransport {
        SimTransport {
            net: self.clone(),
            ip,
        }
    }

    /// Locks the state; a poisoned lock is recovered (the state stays consistent).
    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The parameters pairs get on first use.
    pub fn default_params(&self) -> LinkParams {
        self.lock().default
    }

    /// Sets the parameters of pairs not used or configured yet.
    pub fn set_default_params(&self, params: LinkParams) {
        self.lock().default = params;
    }

    /// The control of the pair `{a, b}`, for finer steering (its `Forward` runs from the
    /// lower address to the higher).
    pub fn link(&self, a: IpAddr, b: IpAddr) -> LinkControl {
        self.lock().pair(a, b).clone()
    }

    /// Sets both directions between `a` and `b`, for live and later connections.
    pub fn set_link(&self, a: IpAddr, b: IpAddr, params: LinkParams) {
        self.lock().pair(a, b).set_params(params);
    }

    /// Sets the direction `from -> to` only (asymmetric links).
    pub fn set_link_one_way(&self, from: IpAddr, to: IpAddr, params: LinkParams) {
        let (_, dir) = orient(from, to);
        self.lock().pair(from, to).set_params_one_way(dir, params);
    }

    /// The parameters of the direction `from -> to`.
    pub fn link_params(&self, from: IpAddr, to: IpAddr) -> LinkParams {
        let (_, dir) = orient(from, to);
        self.lock().pair(from, to).params(dir)
    }

    /// Partitions `a` from `b`: live connections stall, new dials hang.
    pub fn partition(&self, a: IpAddr, b: IpAddr) {
        self.lock().pair(a, b).cut();
    }

    /// Ends the partition of `a` from `b`.
    pub fn heal(&self, a: IpAddr, b: IpAddr) {
        self.lock().pair(a, b).heal();
    }

    /// Whether `a` and `b` are partitioned.
    pub fn is_partitioned(&self, a: IpAddr, b: IpAddr) -> bool {
        self.lock().pair(a, b).is_cut()
    }

    /// Partitions every address of each group from every address of the other groups;
    /// addresses in no group keep their links. Rejected if an address is in two groups.
    pub fn partition_groups(&self, groups: &[&[IpAddr]]) -> Result<(), NetError> {
        let mut group_of: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (g, members) in groups.iter().enumerate() {
            for &ip in *members {
                if group_of.insert(ip, g).is_some_and(|other| other != g) {
                    return Err(NetError::InTwoGroups(ip));
                }
            }
        }
        let mut state = self.lock();
        for (&a, &ga) in &group_of {
            for (&b, &gb) in group_of.range(a..) {
                if ga != gb {
                    state.pair(a, b).cut();
                }
            }
        }
        Ok(())
    }

    /// Ends every partition (stalls stay).
    pub fn heal_all(&self) {
        for control in self.lock().pairs.values() {
            control.heal();
        }
    }

    /// Resets every live connection between `a` and `b` (each end reads EOF, writes fail).
    pub fn reset(&self, a: IpAddr, b: IpAddr) {
        self.lock().pair(a, b).reset();
    }

    /// Stalls both directions between `a` and `b` (bytes wait; not a partition: dials work).
    pub fn stall(&self, a: IpAddr, b: IpAddr) {
        let state = &mut *self.lock();
        let control = state.pair(a, b);
        for dir in Direction::BOTH {
            control.stall(dir);
        }
    }

    /// Resumes both directions between `a` and `b`.
    pub fn resume(&self, a: IpAddr, b: IpAddr) {
        let state = &mut *self.lock();
        let control = state.pair(a, b);
        for dir in Direction::BOTH {
            control.resume(dir);
        }
    }

    /// Stalls the direction `from -> to` only.
    pub fn stall_one_way(&self, from: IpAddr, to: IpAddr) {
        let (_, dir) = orient(from, to);
        self.lock().pair(from, to).stall(dir);
    }

    /// Resumes the direction `from -> to`.
    pub fn resume_one_way(&self, from: IpAddr, to: IpAddr) {
        let (_, dir) = orient(from, to);
        self.lock().pair(from, to).resume(dir);
    }

    /// What the direction `from -> to` has carried.
    pub fn carried(&self, from: IpAddr, to: IpAddr) -> DirectionStats {
        let (_, dir) = orient(from, to);
        self.lock().pair(from, to).stats().direction(dir)
    }

    /// Counters of the whole network.
    pub fn stats(&self) -> NetStats {
        let state = self.lock();
        let mut stats = NetStats {
            connections_opened: state.opened,
            refused: state.refused,
            listeners: state.listeners.len(),
            ..NetStats::default()
        };
        for control in state.pairs.values() {
            let s = control.stats();
            stats.live_connections += s.live;
            stats.bytes_carried += s.bytes();
            stats.segments += s.forward.segments + s.backward.segments;
            stats.retransmissions += s.forward.retransmissions + s.backward.retransmissions;
        }
        stats
    }

    /// Binds a listener of the host `ip` (see [`SimTransport::bind`]).
    fn bind(&self, ip: IpAddr, addr: SocketAddr) -> io::Result<SimListener> {
        if !addr.ip().is_unspecified() && addr.ip() != ip {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{} is not this host's address {ip}", addr.ip()),
            ));
        }
        let mut state = self.lock();
        let port = match addr.port() {
            0 => state.ephemeral_port(ip)?,
            port => port,
        };
        let local = SocketAddr::new(ip, port);
        if state.listeners.contains_key(&local) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{local} is in use"),
            ));
        }
        let (backlog, inbound) = mpsc::channel(BACKLOG);
        let id = state.next_listener;
        state.next_listener += 1;
        state.listeners.insert(local, Bound { id, backlog });
        Ok(SimListener {
            net: self.clone(),
            local,
            id,
            inbound,
        })
    }

    /// Dials `to` from the host `from` (see the module documentation for the timing).
    async fn dial(&self, from: IpAddr, to: SocketAddr) -> io::Result<LinkStream> {
        let (control, round_trip) = {
            let mut state = self.lock();
            let (_, dir) = orient(from, to.ip());
            let control = state.pair(from, to.ip()).clone();
            let rtt = control.params(dir).latency + control.params(dir.reverse()).latency;
            (control, rtt)
        };
        if control.is_cut() {
            return std::future::pending().await;
        }
        tokio::time::sleep(round_trip).await;
        if control.is_cut() {
            return std::future::pending().await;
        }
        let mut state = self.lock();
        let refused = |state: &mut NetState, why: &str| {
            state.refused += 1;
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("{to} refused: {why}"),
            )
        };
        let Some(backlog) = state.listeners.get(&to).map(|b| b.backlog.clone()) else {
            return Err(refused(&mut state, "no listener"));
        };
        let permit = match backlog.try_reserve() {
            Ok(permit) => permit,
            Err(_) => return Err(refused(&mut state, "backlog full")),
        };
        let port = state.ephemeral_port(from)?;
        let stream = state.opened;
        let rng = state.rng.fork(stream);
        let (first, second) = link::connect(&control, rng).map_err(io::Error::other)?;
        state.opened += 1;
        // The first end writes Forward, from the lower address to the higher.
        let (dialer, acceptor) = match orient(from, to.ip()).1 {
            Direction::Forward => (first, second),
            Direction::Backward => (second, first),
        };
        permit.send((acceptor, SocketAddr::new(from, port)));
        Ok(dialer)
    }
}

/// A node's transport on a [`SimNet`]: dials leave from its address, listeners bind there.
#[derive(Clone, Debug)]
pub struct SimTransport {
    net: SimNet,
    ip: IpAddr,
}

impl SimTransport {
    /// This node's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The network this transport is on.
    pub fn net(&self) -> &SimNet {
        &self.net
    }

    /// Binds a listener at once: `addr` is this node's address or unspecified (meaning this
    /// node's), port 0 picks a free port; a bound address gives `AddrInUse`, another host's
    /// address `AddrNotAvailable`.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<SimListener> {
        self.net.bind(self.ip, addr)
    }
}

impl Transport for SimTransport {
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listener>>> {
        let bound = self.bind(addr);
        Box::pin(async move { bound.map(|l| Box::new(l) as Box<dyn Listener>) })
    }

    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>> {
        let net = self.net.clone();
        let from = self.ip;
        Box::pin(async move {
            let stream = net.dial(from, addr).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}

/// A listener on a [`SimNet`]; dropping it frees its address and refuses what it had not
/// accepted (those dialers read EOF).
#[derive(Debug)]
pub struct SimListener {
    net: SimNet,
    local: SocketAddr,
    id: u64,
    inbound: mpsc::Receiver<Inbound>,
}

impl SimListener {
    /// The next inbound connection and the dialer's address.
    pub async fn accept_link(&mut self) -> io::Result<(LinkStream, SocketAddr)> {
        self.inbound
            .recv()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "listener unbound"))
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        let mut state = self.net.lock();
        if state
            .listeners
            .get(&self.local)
            .is_some_and(|b| b.id == self.id)
        {
            state.listeners.remove(&self.local);
        }
    }
}

impl Listener for SimListener {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            let (stream, from) = self.accept_link().await?;
            Ok((Box::new(stream) as BoxStream, from))
        })
    }
}

#[cfg(test)]
mod tests;
