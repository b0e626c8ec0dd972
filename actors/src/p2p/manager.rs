//! The PeerManager actor: owns the peer manager state machine, the listener's inbound
//! connections, dialling through the node's transport, and one task per session. It persists
//! the address book and bans, and publishes peer events to subscribers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message as ActixMessage, MessageResult,
    Recipient,
};
use spacetime::p2p::{Action, Direction, PeerId, PeerManager, PeerManagerConfig, Random};
use spacetime::wire::{
    DisconnectReason, Hello, LocalHello, Message, PROTOCOL_VERSION, capabilities,
};
use spacetime::{BoundedString, Hash, Height, NodeRng};
use tokio::sync::mpsc;

use super::events::{CloseSender, Outgoing, PeerEvent, PeerNotification};
use super::peer::{self, PeerTask, Timeouts};
use super::store::{self, BAN_HISTORY_FILE, BANS_FILE, NODE_BANS_FILE, PEERS_FILE};

mod penalties;
mod sessions;
use crate::clock::Clock;
use crate::net::{BoxStream, Role, StaticKey, Transport};
use crate::seams::Seams;
use crate::spawn::Spawner;
pub use penalties::{DisconnectPeer, IsBanned, IsNodeBanned, PenalizePeer};

/// Messages a peer's outgoing queue holds before the peer counts as too slow: room for the
/// answers to two full `GetBlocks` (128 blocks each) and the node's own requests beside them.
const OUTGOING_QUEUE: usize = 512;
/// Messages the manager's mailbox holds; beyond it, peer messages are dropped and counted.
const MAILBOX: usize = 4096;
/// Longest a dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Addresses older than this are not gossiped.
const GOSSIP_MAX_AGE_MS: u64 = 3 * 60 * 60 * 1000;
/// How often the address book and bans are saved besides shutdown and bans (a crash loses at
/// most this much of what the node learned).
const PERSIST_INTERVAL_MS: u64 = 5 * 60 * 1000;

/// Settings of the network layer.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Where to accept connections (`None`: outbound only).
    pub listen: Option<SocketAddr>,
    /// Connection policy and seeds.
    pub peers: PeerManagerConfig,
    /// Where the address book and bans are kept (`None`: in memory only).
    pub data_dir: Option<PathBuf>,
    /// Session timing.
    pub timeouts: Timeouts,
    /// How often to dial, prune and persist.
    pub tick: Duration,
    /// While outbound slots are unfilled, ask one peer for addresses this often (at least 1 s).
    pub peer_exchange_interval: Duration,
    /// Our user agent.
    pub user_agent: String,
    /// Where sessions hand chain messages.
    pub routes: super::events::Routes,
    /// The node-wide bandwidth limits every session shares (`None`: unlimited).
    pub bandwidth: Option<Arc<super::Bandwidth>>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: None,
            peers: PeerManagerConfig::default(),
            data_dir: None,
            timeouts: Timeouts::default(),
            tick: Duration::from_secs(1),
            peer_exchange_interval: Duration::from_secs(30),
            user_agent: format!("spacetime/{}", env!("CARGO_PKG_VERSION")),
            routes: super::events::Routes::default(),
            bandwidth: None,
        }
    }
}

/// The tip we announce in `Hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTip {
    /// Height.
    pub height: Height,
    /// Block hash.
    pub hash: Hash,
    /// Cumulative work, big-endian.
    pub work: [u8; 32],
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// A running network layer.
#[derive(Debug, Clone)]
pub struct Network {
    /// The manager actor.
    pub manager: actix::Addr<PeerManagerActor>,
    /// The address actually listened on (port 0 in the config picks a free one).
    pub listening: Option<SocketAddr>,
    /// Our node id.
    pub node_id: Hash,
}

/// Starts the network layer on the current actix system, reaching peers through the seams'
/// transport.
pub async fn start(
    config: NetworkConfig,
    key: StaticKey,
    network_id: Hash,
    tip: ChainTip,
    seams: &Seams,
) -> Result<Network, NetworkError> {
    let mut listener = match config.listen {
        Some(addr) => Some(
            seams
                .transport
                .listen(addr)
                .await
                .map_err(|error| NetworkError::Bind { addr, error })?,
        ),
        None => None,
    };
    let listening = listener.as_ref().map(|l| l.local_addr());
    let (book, bans) = store::load_state(config.data_dir.as_deref());
    let node_id = key.node_id();
    let clock = seams.clock.clone();
    let mut core = PeerManager::new(config.peers.clone(), book, bans);
    if let Some(addr) = listening
        && !addr.ip().is_unspecified()
    {
        // Gossip will hand us our own address; never dial it.
        core.add_local_addr(addr);
    }
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let clock_now = clock.now_ms();
    let actor = PeerManagerActor {
        core,
        local: LocalHello {
            network_id,
            node_id,
        },
        key: Arc::new(key),
        tip,
        listen_port: listening.map_or(0, |a| a.port()),
        handles: BTreeMap::new(),
        clock,
        rng: seams.rng_for("peers"),
        transport: seams.transport.clone(),
        spawner: seams.spawner.clone(),
        config,
        stop: stop_tx,
        subscribers: Vec::new(),
        last_peer_exchange_ms: 0,
        last_persist_ms: clock_now,
    };
    let manager = actor.start();
    if let Some(mut listener) = listener.take() {
        let manager = manager.clone();
        actix_rt::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    // The manager stopped: release the port.
                    _ = stop_rx.changed() => return,
                    accepted = listener.accept() => match accepted {
                        // A full mailbox drops the connection: the peer may retry later.
                        Ok((stream, addr)) => drop(manager.try_send(Inbound { stream, addr })),
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            }
        });
    }
    Ok(Network {
        manager,
        listening,
        node_id,
    })
}

/// A live session as the manager sees it.
#[derive(Debug)]
struct PeerHandle {
    tx: mpsc::Sender<Outgoing>,
    /// Ends the session with a reason, whatever its queue holds.
    close: CloseSender,
    addr: SocketAddr,
    direction: Direction,
    hello: Option<Hello>,
    latency_ms: Option<u64>,
}

/// The PeerManager actor.
pub struct PeerManagerActor {
    core: PeerManager,
    config: NetworkConfig,
    key: Arc<StaticKey>,
    local: LocalHello,
    tip: ChainTip,
    listen_port: u16,
    handles: BTreeMap<PeerId, PeerHandle>,
    clock: Arc<dyn Clock>,
    /// Dial choices and each session's share of randomness.
    rng: NodeRng,
    transport: Arc<dyn Transport>,
    spawner: Spawner,
    /// Tells the accept loop to stop.
    stop: tokio::sync::watch::Sender<bool>,
    /// Who hears of peers connecting and leaving.
    subscribers: Vec<Recipient<PeerNotification>>,
    /// When we last asked a peer for addresses because slots were unfilled.
    last_peer_exchange_ms: u64,
    /// When the address book and bans were last saved.
    last_persist_ms: u64,
}

impl Actor for PeerManagerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(self.config.tick, |act, ctx| act.tick(ctx));
        let ctx_addr = ctx.address();
        // First dials at once rather than after one tick.
        let _ = ctx_addr.try_send(Tick);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let _ = self.stop.send(true);
        for handle in self.handles.values() {
            handle.close.close(DisconnectReason::Shutdown);
        }
        self.persist();
    }
}

impl PeerManagerActor {
    fn our_hello(&self) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            network_id: self.local.network_id,
            node_id: self.local.node_id,
            best_height: self.tip.height,
            best_hash: self.tip.hash,
            cumulative_work: self.tip.work,
            listen_port: self.listen_port,
            user_agent: BoundedString::truncating(&self.config.user_agent),
            capabilities: capabilities::FULL_NODE | capabilities::TX_RELAY,
            time_ms: self.clock.now_ms(),
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        if now.saturating_sub(self.last_persist_ms) >= PERSIST_INTERVAL_MS {
            self.persist_in_background();
        }
        for action in self.core.on_tick(now, &mut self.rng) {
            self.apply(action, ctx);
        }
        // Short of outbound peers: ask a random connected peer for more addresses.
        let (_, outbound) = self.core.counts();
        // RequestPeers is limited to one per second per peer: never ask faster.
        let interval = self
            .config
            .peer_exchange_interval
            .max(super::peer::MIN_PERIODIC_INTERVAL)
            .as_millis() as u64;
        if outbound < self.config.peers.outbound
            && now.saturating_sub(self.last_peer_exchange_ms) >= interval
        {
            let ready: Vec<PeerId> = self
                .handles
                .iter()
                .filter(|(_, h)| h.hello.is_some())
                .map(|(id, _)| *id)
                .collect();
            if !ready.is_empty() {
                let pick = ready[(self.rng.next_u64() % ready.len() as u64) as usize];
                self.send(pick, Message::RequestPeers);
                self.last_peer_exchange_ms = now;
            }
        }
    }

    fn apply(&mut self, action: Action, ctx: &mut Context<Self>) {
        match action {
            Action::Dial(addr) => {
                let me = ctx.address();
                let dial = self.transport.dial(addr);
                actix_rt::spawn(async move {
                    let result = tokio::time::timeout(DIAL_TIMEOUT, dial).await;
                    let message = match result {
                        Ok(Ok(stream)) => Dialed {
                            addr,
                            stream: Some(stream),
                        },
                        _ => Dialed { addr, stream: None },
                    };
                    let _ = me.try_send(message);
                });
            }
            Action::Disconnect(peer, reason) => self.disconnect(peer, reason),
        }
    }

    fn spawn_peer(
        &mut self,
        id: PeerId,
        stream: BoxStream,
        addr: SocketAddr,
        role: Role,
        ctx: &mut Context<Self>,
    ) {
        let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
        let (close, close_rx) = CloseSender::new();
        let reply = tx.downgrade();
        let direction = if role == Role::Initiator {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        self.handles.insert(
            id,
            PeerHandle {
                tx,
                close,
                addr,
                direction,
                hello: None,
                latency_ms: None,
            },
        );
        let task = PeerTask {
            id,
            role,
            key: self.key.clone(),
            local: self.local,
            hello: self.our_hello(),
            events: ctx.address().recipient(),
            clock: self.clock.clone(),
            timeouts: self.config.timeouts,
            rng: self.rng.split(),
            routes: self.config.routes.clone(),
            reply,
            bandwidth: self.config.bandwidth.clone(),
            close: close_rx,
        };
        actix_rt::spawn(peer::run(task, stream, rx));
    }

    fn send(&self, peer: PeerId, message: Message) {
        if let Some(handle) = self.handles.get(&peer)
            && handle
                .tx
                .try_send(Outgoing::Send(Box::new(message)))
                .is_err()
        {
            // A peer that cannot keep up with its queue is dropped rather than buffered forever.
            handle.close.close(DisconnectReason::Timeout);
        }
    }

    /// Ends a session, telling the peer `reason` (even when its queue is full).
    fn disconnect(&self, peer: PeerId, reason: DisconnectReason) {
        if let Some(handle) = self.handles.get(&peer) {
            handle.close.close(reason);
        }
    }

    /// Saves the address book and bans now, on this thread (at shutdown).
    fn persist(&self) {
        for (path, bytes) in self.snapshots() {
            if let Err(e) = store::save_bytes(&path, &bytes) {
                tracing::warn!("{e}");
            }
        }
    }

    /// Saves the address book and bans on a blocking thread: only the encoding runs here.
    fn persist_in_background(&mut self) {
        self.last_persist_ms = self.clock.now_ms();
        let files = self.snapshots();
        if files.is_empty() {
            return;
        }
        self.spawner.detach(move || {
            for (path, bytes) in files {
                if let Err(e) = store::save_bytes(&path, &bytes) {
                    tracing::warn!("{e}");
                }
            }
        });
    }

    fn publish(&mut self, event: PeerEvent) {
        self.subscribers.retain(|s| s.connected());
        for s in &self.subscribers {
            if s.try_send(PeerNotification(event.clone())).is_err() {
                super::metrics::dropped();
            }
        }
    }

    fn snapshots(&self) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let Some(dir) = &self.config.data_dir else {
            return Vec::new();
        };
        vec![
            (
                dir.join(PEERS_FILE),
                spacetime::encode(&self.core.book().snapshot()),
            ),
            (
                dir.join(BANS_FILE),
                spacetime::encode(self.core.bans().addresses()),
            ),
            (
                dir.join(BAN_HISTORY_FILE),
                spacetime::encode(self.core.bans().history()),
            ),
            (
                dir.join(NODE_BANS_FILE),
                spacetime::encode(self.core.bans().nodes()),
            ),
        ]
    }
}

/// An accepted connection.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub(crate) struct Inbound {
    stream: BoxStream,
    addr: SocketAddr,
}

impl Handler<Inbound> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        match self.core.on_inbound(msg.addr, self.clock.now_ms()) {
            Ok((id, actions)) => {
                for action in actions {
                    // Each is the eviction of a less useful inbound peer to make room.
                    super::metrics::evicted();
                    self.apply(action, ctx);
                }
                self.spawn_peer(id, msg.stream, msg.addr, Role::Responder, ctx);
            }
            Err(reason) => {
                super::metrics::refused(reason);
                tracing::debug!(addr = %msg.addr, ?reason, "inbound refused");
            }
        }
    }
}

/// A dial finished.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub(crate) struct Dialed {
    addr: SocketAddr,
    stream: Option<BoxStream>,
}

impl Handler<Dialed> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, msg: Dialed, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        match msg.stream {
            Some(stream) => {
                let id = self.core.on_dialed(msg.addr, now);
                self.spawn_peer(id, stream, msg.addr, Role::Initiator, ctx);
            }
            None => self.core.on_dial_failed(msg.addr, now),
        }
    }
}

/// Periodic work.
#[derive(ActixMessage)]
#[rtype(result = "()")]
struct Tick;

impl Handler<Tick> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, _: Tick, ctx: &mut Context<Self>) {
        self.tick(ctx);
    }
}

/// Receive every [`PeerEvent`] from now on.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct SubscribePeers(pub Recipient<PeerNotification>);

impl Handler<SubscribePeers> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, msg: SubscribePeers, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}

/// One connected peer, for status output and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSummary {
    /// Its address.
    pub addr: SocketAddr,
    /// Who connected.
    pub direction: Direction,
    /// Its node id, once it said Hello.
    pub node_id: Option<Hash>,
    /// Its user agent.
    pub user_agent: Option<String>,
    /// Its best height when it said Hello.
    pub best_height: Option<Height>,
    /// Last ping round trip.
    pub latency_ms: Option<u64>,
}

/// Asks for the connected peers.
#[derive(ActixMessage)]
#[rtype(result = "Vec<PeerSummary>")]
pub struct GetPeers;

impl Handler<GetPeers> for PeerManagerActor {
    type Result = MessageResult<GetPeers>;
    fn handle(&mut self, _: GetPeers, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.handles
                .values()
                .map(|h| PeerSummary {
                    addr: h.addr,
                    direction: h.direction,
                    node_id: h.hello.as_ref().map(|x| x.node_id),
                    user_agent: h.hello.as_ref().map(|x| x.user_agent.to_string()),
                    best_height: h.hello.as_ref().map(|x| x.best_height),
                    latency_ms: h.latency_ms,
                })
                .collect(),
        )
    }
}

/// Tells peers goodbye, saves the address book and bans, and stops.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Send a message to a peer (a full queue drops the peer as too slow).
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub struct SendToPeer {
    /// The session.
    pub peer: PeerId,
    /// The message.
    pub message: Message,
}

impl Handler<SendToPeer> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, msg: SendToPeer, _: &mut Context<Self>) {
        self.send(msg.peer, msg.message);
    }
}

/// The tip to announce in the `Hello` of new sessions.
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub struct UpdateTip(pub ChainTip);

impl Handler<UpdateTip> for PeerManagerActor {
    type Result = ();
    fn handle(&mut self, msg: UpdateTip, _: &mut Context<Self>) {
        self.tip = msg.0;
    }
}
