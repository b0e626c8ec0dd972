//! Lying peers: hosts of the simulated internet that speak the real protocol (the real Noise
//! handshake and `Hello` of [`spacetime_actors::net`]) and answer requests from a chain of
//! their own, with one [`Lie`] told consistently.
//!
//! A rogue is added with [`Sim::add_rogue`]: it takes a node index, so it has an address
//! ([`Sim::addr`]) and listens there at once, on the simulator's runtime, in a scope of its own
//! (like a node's, with its own metrics). It never dials: nodes reach it as a seed
//! (`sim.connect_edges(&[(victim, rogue)])` before the victim starts) or by peer exchange. It
//! accepts any number of sessions, answers `Ping`, `RequestPeers` (an empty list),
//! `GetHeaders`, `GetBlock` and `GetBlocks`, counts everything it receives, and records how
//! each session ended ([`Sim::rogue`]). It stops with the simulation or [`Sim::stop_rogue`].
//! Node operations (start, stop, tip, peers) refuse a rogue's index with [`SimError::Rogue`].

mod chain;
mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use spacetime::target::Work;
use spacetime::wire::{DisconnectReason, MessageKind};
use spacetime::{Block, Hash, NodeRng};
use spacetime_actors::net::StaticKey;

pub use chain::{NON_CONNECTING_SKIP, OVERCLAIM_HEIGHT, RogueChain, bad_body, invalid_header};

use crate::scope::NodeScope;
use crate::sim::{NODE_PORT, NodeSpec, Sim, SimError};

/// How a rogue lies; everything it does not lie about it serves truthfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// Serves its chain truthfully: headers by locator, blocks by hash, `NotFound` otherwise.
    Honest,
    /// The header at height `at` carries a broken signature (so its hash differs too); every
    /// other header and block is the original.
    InvalidHeader {
        /// The height of the altered header.
        at: u64,
    },
    /// Answers `GetHeaders` without the first [`NON_CONNECTING_SKIP`] headers after the locator
    /// point, so the first header's parent is unknown to the asker.
    NonConnecting,
    /// Honest headers, but every block it sends has a changed coinbase (see [`bad_body`]).
    BadBodies,
    /// Honest headers; never answers `GetBlock`/`GetBlocks` (still answers pings).
    Withhold,
    /// Answers `GetBlock`/`GetBlocks` only after `delay` (pings and headers at once).
    Slow {
        /// How long each block answer waits.
        delay: Duration,
    },
    /// Its `Hello` claims [`OVERCLAIM_HEIGHT`] more blocks and 2^192 more work than its chain
    /// has (unless [`RogueSpec`] overrides them); serves its real chain honestly.
    OverclaimWork,
    /// Serves a valid chain with less work than the victim's (the chain given), whenever asked:
    /// honest about a chain not worth following.
    LowWorkChain,
    /// Serves its chain honestly and, from its `Hello` on, pushes `what` unasked every
    /// `every` (a relay flood).
    Flood {
        /// What it pushes.
        what: Flood,
        /// How often.
        every: Duration,
    },
}

/// What a flooding rogue ([`Lie::Flood`]) pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    /// Its chain's tip block, the same one every time (a repeat after the first).
    SameBlock,
    /// Its tip with a broken header signature (see [`invalid_header`]): fails the cheap checks.
    InvalidHeader,
    /// Its tip with a body that does not match the header (see [`bad_body`]): passes the cheap
    /// checks, is relayed, and fails full validation.
    BadBody,
    /// A `CompactBlock` of its tip whose coinbase does not match the header (see [`bad_body`]):
    /// the rebuilt body fails the body check before relay.
    BadCompact,
    /// A `TxInv` of one new random id each time: items faster than the message's rate limit.
    Announcements,
    /// A `Txs` of one new transfer with a bad signature each time, claimed to spend from the
    /// genesis premine's first account when there is one.
    BadTransfers,
}

/// A rogue peer to add.
#[derive(Debug, Clone)]
pub struct RogueSpec {
    /// Its lie.
    pub lie: Lie,
    /// Its chain: the blocks after genesis, in order.
    pub chain: Vec<Block>,
    /// The best height its `Hello` claims (default: its chain's, or the overclaim).
    pub claimed_height: Option<u64>,
    /// The cumulative work its `Hello` claims (default: its chain's, or the overclaim).
    pub claimed_work: Option<Work>,
}

impl RogueSpec {
    /// A rogue telling `lie` about `chain`, claiming what the lie implies.
    pub fn new(lie: Lie, chain: Vec<Block>) -> Self {
        Self {
            lie,
            chain,
            claimed_height: None,
            claimed_work: None,
        }
    }
}

/// Why one of a rogue's sessions ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEndReason {
    /// The Noise handshake failed.
    Handshake(String),
    /// The `Hello` exchange failed (the peer refused us, or we it).
    Hello(String),
    /// The peer sent `Disconnect`.
    Disconnected {
        /// Its reason.
        reason: DisconnectReason,
        /// Its detail text.
        detail: String,
    },
    /// The peer closed the connection without a `Disconnect`.
    Closed,
    /// The connection failed.
    Transport(String),
    /// The peer sent a frame that does not decode.
    Malformed(String),
    /// The peer did not read our answers for two minutes.
    WriteStalled,
}

/// One ended session of a rogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    /// The peer's address.
    pub peer: SocketAddr,
    /// Its node id, once the handshake proved it.
    pub node_id: Option<Hash>,
    /// Virtual ms since the simulation started.
    pub at_ms: u64,
    /// Why.
    pub reason: SessionEndReason,
}

/// What a rogue has seen and done so far, over all its sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RogueView {
    /// Why it could not listen, if it could not.
    pub listen_error: Option<String>,
    /// Connections accepted.
    pub accepted: u64,
    /// Sessions whose `Hello` exchange completed.
    pub sessions: u64,
    /// Sessions open now (`Hello` done, not ended).
    pub open: u64,
    /// Messages received, by kind (all sessions; the peer's `Hello` included).
    pub received: BTreeMap<MessageKind, u64>,
    /// Headers sent.
    pub headers_served: u64,
    /// Blocks sent.
    pub blocks_served: u64,
    /// Hashes answered with `NotFound`.
    pub not_found: u64,
    /// Block hashes asked for and never answered ([`Lie::Withhold`]).
    pub withheld: u64,
    /// Sessions that ended, in order.
    pub ended: Vec<SessionEnd>,
}

impl RogueView {
    /// Messages of `kind` received.
    pub fn requests(&self, kind: MessageKind) -> u64 {
        self.received.get(&kind).copied().unwrap_or(0)
    }

    /// The reasons of the `Disconnect`s peers sent, in order.
    pub fn disconnects(&self) -> Vec<DisconnectReason> {
        self.ended
            .iter()
            .filter_map(|e| match e.reason {
                SessionEndReason::Disconnected { reason, .. } => Some(reason),
                _ => None,
            })
            .collect()
    }
}

/// A rogue's counters, shared by its tasks and the simulator.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters(Arc<Mutex<RogueView>>);

impl Counters {
    // A task that panicked mid-update left counters, not invariants: read on.
    fn lock(&self) -> MutexGuard<'_, RogueView> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the counters.
    fn update(&self, f: impl FnOnce(&mut RogueView)) {
        f(&mut self.lock());
    }

    /// A copy of the counters.
    fn view(&self) -> RogueView {
        self.lock().clone()
    }
}

/// The simulator's handle of a rogue.
#[derive(Debug)]
pub(crate) struct RogueHost {
    counters: Counters,
    /// The task holding all of the rogue's tasks, until it is stopped.
    scope: Option<tokio::task::JoinHandle<()>>,
}

impl Sim {
    /// Adds a rogue peer at a new node index (see the [module docs](crate::rogue)); it listens
    /// on [`Sim::addr`] of that index at once. Returns the index. The index counts in
    /// [`Sim::len`] and in [`Sim::connect`]'s topologies like a node's, but only ever accepts.
    pub fn add_rogue(&mut self, spec: RogueSpec) -> usize {
        let index = self.add_node(NodeSpec::full());
        let counters = Counters::default();
        let root = NodeRng::from_u64(self.seed).derive(&format!("rogue-{index}"));
        let addr = SocketAddr::new(self.ip(index), NODE_PORT);
        let mut scope = None;
        match self.net.transport(addr.ip()).bind(addr) {
            Ok(listener) => {
                let rogue = session::Rogue {
                    chain: RogueChain::new(&self.genesis, &spec),
                    // A function of the run's seed, like every simulated key.
                    key: StaticKey::from_private(root.derive("node-key").bytes32()),
                    network_id: self.genesis.network_id,
                    chain_id: self.genesis.chain_id,
                    funded: self.genesis.config.premine.first().map(|a| a.address),
                    counters: counters.clone(),
                    start: self.start,
                    start_unix_ms: self.start_unix_ms,
                };
                let Some(node) = self.nodes.get(index) else {
                    return index;
                };
                let tasks = NodeScope::new(
                    node.metrics.clone(),
                    tracing::info_span!("rogue", i = index),
                );
                tasks.spawn(session::listen(rogue, listener, root.derive("sessions")));
                #[allow(clippy::async_yields_async)]
                let handle = self.runner.block_on(async move { actix_rt::spawn(tasks) });
                scope = Some(handle);
            }
            Err(e) => counters.update(|v| v.listen_error = Some(e.to_string())),
        }
        if let Some(node) = self.nodes.get_mut(index) {
            node.rogue = Some(RogueHost { counters, scope });
        }
        index
    }

    /// What rogue `i` has seen and done so far.
    pub fn rogue(&self, i: usize) -> Result<RogueView, SimError> {
        let node = self.nodes.get(i).ok_or(SimError::NoSuchNode(i))?;
        let host = node.rogue.as_ref().ok_or(SimError::NotRogue(i))?;
        Ok(host.counters.view())
    }

    /// Stops rogue `i`: its listener and every session drop at once (peers see a reset). Its
    /// counters stay readable.
    pub fn stop_rogue(&mut self, i: usize) -> Result<(), SimError> {
        let node = self.nodes.get_mut(i).ok_or(SimError::NoSuchNode(i))?;
        let host = node.rogue.as_mut().ok_or(SimError::NotRogue(i))?;
        if let Some(scope) = host.scope.take() {
            scope.abort();
        }
        self.runner
            .block_on(async { tokio::task::yield_now().await });
        Ok(())
    }

    /// True when index `i` is a rogue peer.
    pub fn is_rogue(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.rogue.is_some())
    }
}
