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
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::{Instant, sleep, timeout};

    const MS: Duration = Duration::from_millis(1);
    const PORT: u16 = 9000;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    fn at(n: u8) -> SocketAddr {
        SocketAddr::new(ip(n), PORT)
    }

    /// Dials `to` from `from` and accepts on `listener`: (dialer's end, acceptor's end, from).
    async fn connect(
        net: &SimNet,
        from: u8,
        listener: &mut Box<dyn Listener>,
    ) -> (BoxStream, BoxStream, SocketAddr) {
        let dial = net.transport(ip(from)).dial(listener.local_addr());
        let (dialed, accepted) = tokio::join!(dial, listener.accept());
        let (inbound, addr) = accepted.unwrap();
        (dialed.unwrap(), inbound, addr)
    }

    async fn listen(net: &SimNet, n: u8) -> Box<dyn Listener> {
        net.transport(ip(n)).listen(at(n)).await.unwrap()
    }

    /// Whether `stream` yields a byte within `wait`.
    async fn readable_within(stream: &mut BoxStream, wait: Duration) -> bool {
        let mut byte = [0u8; 1];
        timeout(wait, stream.read_exact(&mut byte)).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn dial_without_listener_is_refused_after_a_round_trip() {
        let net = SimNet::new(1, LinkParams::with_latency(25 * MS));
        let start = Instant::now();
        let err = net.transport(ip(1)).dial(at(2)).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(start.elapsed(), 50 * MS);
        assert_eq!(net.stats().refused, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn accept_yields_the_dialers_address_and_bytes_flow() {
        let net = SimNet::new(1, LinkParams::with_latency(10 * MS));
        let mut listener = listen(&net, 2).await;
        let start = Instant::now();
        let (mut out, mut inb, from) = connect(&net, 1, &mut listener).await;
        assert_eq!(start.elapsed(), 20 * MS);
        assert_eq!(from, SocketAddr::new(ip(1), FIRST_EPHEMERAL_PORT));
        out.write_all(b"ping").await.unwrap();
        inb.write_all(b"pong").await.unwrap();
        let mut buf = [0u8; 4];
        inb.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        out.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");

        let (_out2, _in2, from2) = connect(&net, 1, &mut listener).await;
        assert_eq!(from2, SocketAddr::new(ip(1), FIRST_EPHEMERAL_PORT + 1));
        // Ports count per host.
        let (_out3, _in3, from3) = connect(&net, 3, &mut listener).await;
        assert_eq!(from3, SocketAddr::new(ip(3), FIRST_EPHEMERAL_PORT));

        let stats = net.stats();
        assert_eq!(stats.live_connections, 3);
        assert_eq!(stats.connections_opened, 3);
        assert_eq!(stats.bytes_carried, 8);
        assert_eq!(net.carried(ip(1), ip(2)).bytes, 4);
        assert_eq!(net.carried(ip(2), ip(1)).bytes, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn listen_rules_addr_in_use_free_ports_and_unbinding() {
        let net = SimNet::new(1, LinkParams::default());
        let t = net.transport(ip(1));
        let first = t.listen(at(1)).await.unwrap();
        assert_eq!(first.local_addr(), at(1));
        let err = t.listen(at(1)).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        // Another host may use the same port.
        assert!(net.transport(ip(2)).listen(at(2)).await.is_ok());
        // Unspecified means this host; port 0 picks a free one.
        let any = t.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
        assert_eq!(
            any.local_addr(),
            SocketAddr::new(ip(1), FIRST_EPHEMERAL_PORT)
        );
        let err = t.listen(at(3)).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable);
        assert_eq!(net.stats().listeners, 2);
        drop(first);
        assert_eq!(net.stats().listeners, 1);
        let err = net.transport(ip(2)).dial(at(1)).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(t.listen(at(1)).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn dial_hangs_across_a_partition_and_a_new_one_succeeds_after_heal() {
        let net = SimNet::new(1, LinkParams::with_latency(10 * MS));
        let mut listener = listen(&net, 2).await;
        net.partition(ip(1), ip(2));
        assert!(net.is_partitioned(ip(2), ip(1)));
        let dial = net.transport(ip(1)).dial(at(2));
        assert!(timeout(Duration::from_secs(3600), dial).await.is_err());
        // Nothing reached the listener, nothing is left running.
        assert!(timeout(MS, listener.accept()).await.is_err());
        assert_eq!(net.stats().live_connections, 0);
        // A partition cut during the handshake also swallows it.
        let dial = tokio::spawn(net.transport(ip(3)).dial(at(2)));
        sleep(5 * MS).await;
        net.partition(ip(3), ip(2));
        sleep(Duration::from_secs(60)).await;
        assert!(!dial.is_finished());
        dial.abort();

        net.heal(ip(1), ip(2));
        let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
        out.write_all(b"hi").await.unwrap();
        assert!(readable_within(&mut inb, 11 * MS).await);
    }

    #[tokio::test(start_paused = true)]
    async fn partition_stalls_live_connections_without_resetting_them() {
        let net = SimNet::new(1, LinkParams::with_latency(10 * MS));
        let mut listener = listen(&net, 2).await;
        let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
        net.partition(ip(1), ip(2));
        out.write_all(b"a").await.unwrap();
        inb.write_all(b"b").await.unwrap();
        assert!(!readable_within(&mut inb, Duration::from_secs(600)).await);
        assert!(!readable_within(&mut out, Duration::from_secs(1)).await);
        assert_eq!(net.stats().live_connections, 1);
        net.heal_all();
        assert!(readable_within(&mut inb, MS).await);
        assert!(readable_within(&mut out, MS).await);
    }

    #[tokio::test(start_paused = true)]
    async fn partition_groups_cut_between_groups_only() {
        let net = SimNet::new(1, LinkParams::with_latency(MS));
        let mut listener = listen(&net, 1).await;
        net.partition_groups(&[&[ip(1), ip(2)], &[ip(3), ip(4)]])
            .unwrap();
        assert!(net.is_partitioned(ip(1), ip(3)));
        assert!(net.is_partitioned(ip(4), ip(2)));
        assert!(!net.is_partitioned(ip(3), ip(4)));
        assert!(!net.is_partitioned(ip(1), ip(5)));
        let (_o, _i, from) = connect(&net, 2, &mut listener).await;
        assert_eq!(from.ip(), ip(2));
        let dial = net.transport(ip(3)).dial(at(1));
        assert!(timeout(Duration::from_secs(60), dial).await.is_err());
        net.heal_all();
        let (_o, _i, from) = connect(&net, 3, &mut listener).await;
        assert_eq!(from.ip(), ip(3));
        assert_eq!(
            net.partition_groups(&[&[ip(1)], &[ip(2), ip(1)]]),
            Err(NetError::InTwoGroups(ip(1)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reset_ends_live_connections_of_the_pair_only() {
        let net = SimNet::new(1, LinkParams::with_latency(5 * MS));
        let mut listener = listen(&net, 2).await;
        let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
        let (mut other_out, mut other_in, _) = connect(&net, 3, &mut listener).await;
        net.reset(ip(2), ip(1));
        sleep(MS).await;
        let mut buf = Vec::new();
        assert_eq!(out.read_to_end(&mut buf).await.unwrap(), 0);
        assert_eq!(inb.read_to_end(&mut buf).await.unwrap(), 0);
        assert!(out.write_all(b"x").await.is_err());
        other_out.write_all(b"y").await.unwrap();
        assert!(readable_within(&mut other_in, 6 * MS).await);
        assert_eq!(net.stats().live_connections, 1);
        let (mut again, mut again_in, _) = connect(&net, 1, &mut listener).await;
        again.write_all(b"z").await.unwrap();
        assert!(readable_within(&mut again_in, 6 * MS).await);
    }

    #[tokio::test(start_paused = true)]
    async fn asymmetric_links_and_pair_state_apply_to_later_connections() {
        let net = SimNet::new(1, LinkParams::default());
        // Configured before any connection exists, and from the higher address's side.
        net.set_link_one_way(ip(2), ip(1), LinkParams::with_latency(40 * MS));
        net.set_link_one_way(ip(1), ip(2), LinkParams::with_latency(10 * MS));
        assert_eq!(net.link_params(ip(2), ip(1)).latency, 40 * MS);
        let mut listener = listen(&net, 2).await;
        let start = Instant::now();
        let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
        assert_eq!(start.elapsed(), 50 * MS);
        let start = Instant::now();
        out.write_all(b"a").await.unwrap();
        assert!(readable_within(&mut inb, 11 * MS).await);
        assert!(start.elapsed() >= 10 * MS);
        let start = Instant::now();
        inb.write_all(b"b").await.unwrap();
        assert!(!readable_within(&mut out, 39 * MS).await);
        assert!(readable_within(&mut out, 2 * MS).await);
        assert!(start.elapsed() >= 40 * MS);

        // A stalled pair stalls connections made afterwards; dials still complete.
        net.stall(ip(1), ip(2));
        let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
        out.write_all(b"c").await.unwrap();
        assert!(!readable_within(&mut inb, Duration::from_secs(1)).await);
        net.resume(ip(1), ip(2));
        assert!(readable_within(&mut inb, MS).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_backlog_refuses_dials_and_an_unbound_listener_drops_its_queue() {
        let net = SimNet::new(1, LinkParams::default());
        let listener = listen(&net, 2).await;
        let t = net.transport(ip(1));
        let mut dialed = Vec::new();
        for _ in 0..BACKLOG {
            dialed.push(t.dial(at(2)).await.unwrap());
        }
        let err = t.dial(at(2)).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        drop(listener);
        sleep(MS).await;
        let mut buf = Vec::new();
        assert_eq!(dialed[0].read_to_end(&mut buf).await.unwrap(), 0);
        dialed.clear();
        sleep(MS).await;
        assert_eq!(net.stats().live_connections, 0);
    }

    #[test]
    fn works_inside_a_local_set_on_a_paused_runtime_as_under_actix() {
        // The shape of `actix_rt::System::with_tokio_rt`: a current-thread runtime with a
        // paused clock, tasks spawned locally.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let elapsed = local.block_on(&runtime, async {
            let net = SimNet::new(3, LinkParams::with_latency(Duration::from_secs(1)));
            let mut listener = listen(&net, 2).await;
            let start = Instant::now();
            let server = tokio::task::spawn_local(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4];
                stream.read_exact(&mut buf).await.unwrap();
                stream.write_all(&buf).await.unwrap();
                stream
            });
            let mut client = net.transport(ip(1)).dial(at(2)).await.unwrap();
            client.write_all(b"echo").await.unwrap();
            let mut buf = [0u8; 4];
            client.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"echo");
            drop(server.await.unwrap());
            start.elapsed()
        });
        // Handshake round trip, then one more: 4 s of virtual time, no real waiting.
        assert_eq!(elapsed, Duration::from_secs(4));
    }

    /// Bytes and arrival times of a lossy, jittery exchange between two hosts.
    async fn run(seed: u64) -> Vec<(u8, Duration)> {
        let params = LinkParams::with_latency(10 * MS)
            .jitter(20 * MS)
            .loss(200_000);
        let net = SimNet::new(seed, params);
        let mut listener = listen(&net, 2).await;
        let (mut out, mut inb, _) = connect(&net, 1, &mut listener).await;
        let start = Instant::now();
        let writer = tokio::spawn(async move {
            for i in 0..50u8 {
                out.write_all(&[i]).await.unwrap();
                sleep(3 * MS).await;
            }
            out
        });
        let mut seen = Vec::new();
        for _ in 0..50 {
            let mut b = [0u8; 1];
            inb.read_exact(&mut b).await.unwrap();
            seen.push((b[0], start.elapsed()));
        }
        drop(writer.await.unwrap());
        seen
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_is_a_function_of_the_seed() {
        let first = run(7).await;
        assert!(
            first
                .iter()
                .enumerate()
                .all(|(i, (b, _))| usize::from(*b) == i)
        );
        assert_eq!(first, run(7).await);
        assert_ne!(first, run(8).await);
    }
}
