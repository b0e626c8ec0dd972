//! The harness: a network of real nodes in one process, in virtual time.
//!
//! [`Sim::new`] builds one actix System on a current-thread tokio runtime whose clock is paused:
//! it jumps to the next timer whenever every task is idle, so an hour of a network passes in the
//! time its nodes take to compute. Each node is assembled by the daemon's own
//! [`spacetime_actors::node::start`], over the simulator's seams: a [`NodeClock`] on the paused
//! clock, a generator derived from the run's seed, inline work, a [`SimTransport`] of the shared
//! [`SimNet`], and a [`MemoryDisk`] for its chain, with its key, address book and plots in a
//! data directory of its own. A node can be stopped, crashed and started again with its data.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use spacetime::chain::{Chain, ChainStorage, ImportStatus, MemoryDisk, Tip};
use spacetime::{Block, Genesis, NodeRng};
use spacetime_actors::chain::{GetTip, Subscribe};
use spacetime_actors::clock::NodeClock;
use spacetime_actors::miner::CoinbasePolicy;
use spacetime_actors::node::{self, MiningOptions, NodeError, NodeOptions, RunningNode};
use spacetime_actors::p2p::{GetPeers, PeerSummary, SubscribePeers, Timeouts};
use spacetime_actors::seams::Seams;
use spacetime_actors::spawn::{CostModel, Spawner};
use spacetime_actors::sync::SyncSettings;
use tokio::time::Instant;

use crate::metrics::{MetricsView, NodeMetrics};
use crate::net::SimNet;
use crate::rng::SimRng;
use crate::rogue::RogueHost;
use crate::scope::NodeScope;
use crate::topology::{Topology, TopologyError};
use crate::trace::{Observer, Trace};
use crate::{LinkParams, SimTransport};

/// The port every simulated node listens on (each node has its own address).
pub const NODE_PORT: u16 = 9444;

/// How long a node may take to stop cleanly before it is dropped like a crash.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Why the simulator could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The runtime could not be built.
    #[error("cannot build the simulator's runtime: {0}")]
    Runtime(std::io::Error),
    /// The data directories could not be created.
    #[error("cannot create the simulator's data directory: {0}")]
    DataDir(std::io::Error),
    /// No node has this index.
    #[error("no node {0}")]
    NoSuchNode(usize),
    /// The node is not running.
    #[error("node {0} is not running")]
    NotRunning(usize),
    /// The node is already running.
    #[error("node {0} is already running")]
    AlreadyRunning(usize),
    /// The node did not start.
    #[error("node {index} did not start: {source}")]
    Start {
        /// The node.
        index: usize,
        /// Why.
        source: NodeError,
    },
    /// The node's start never finished (its task ended first).
    #[error("node {0} ended while starting")]
    Aborted(usize),
    /// A node's actor did not answer.
    #[error("node {index} did not answer: {detail}")]
    Mailbox {
        /// The node.
        index: usize,
        /// The mailbox error.
        detail: String,
    },
    /// The topology cannot be built.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The genesis configuration is invalid.
    #[error(transparent)]
    Genesis(#[from] spacetime::genesis::GenesisError),
    /// The index is a rogue peer's, not a node's.
    #[error("{0} is a rogue peer, not a node")]
    Rogue(usize),
    /// The index is a node's, not a rogue peer's.
    #[error("{0} is not a rogue peer")]
    NotRogue(usize),
    /// Blocks could not be preloaded into the node's chain.
    #[error("cannot preload node {index}: {detail}")]
    Preload {
        /// The node.
        index: usize,
        /// What failed.
        detail: String,
    },
}

/// What kind of node to add and how it runs.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Mine with a plot of `plot_bytes` created in the node's data directory.
    pub mining: bool,
    /// Size of the node's plot when mining.
    pub plot_bytes: u64,
    /// Outbound connections to keep.
    pub outbound: usize,
    /// Session timing.
    pub timeouts: Timeouts,
    /// The node's clock runs this far ahead of (positive) or behind the simulation's.
    pub clock_skew_ms: i64,
    /// Virtual time charged for heavy work.
    pub costs: CostModel,
    /// Headers-first sync tuning.
    pub sync: SyncSettings,
    /// Relay tuning.
    pub relay: spacetime::relay::RelayConfig,
}

impl NodeSpec {
    /// A full node that does not mine.
    pub fn full() -> Self {
        Self {
            mining: false,
            plot_bytes: 1 << 20,
            outbound: 8,
            timeouts: Timeouts::default(),
            clock_skew_ms: 0,
            costs: CostModel::DEV,
            sync: SyncSettings::default(),
            relay: spacetime::relay::RelayConfig::default(),
        }
    }

    /// A mining node with a 1 MiB dev plot.
    pub fn miner() -> Self {
        Self {
            mining: true,
            ..Self::full()
        }
    }
}

/// A node of the simulation, running or not, or a rogue peer in a node's slot.
pub(crate) struct SimNode {
    spec: NodeSpec,
    ip: IpAddr,
    data_dir: PathBuf,
    disk: MemoryDisk,
    pub(crate) metrics: Arc<NodeMetrics>,
    /// Node indices it dials at start (its seeds).
    seeds: Vec<usize>,
    running: Option<Running>,
    /// Times the node was started.
    starts: u64,
    /// Set when the slot is a rogue peer's (never started as a node).
    pub(crate) rogue: Option<RogueHost>,
}

/// A running node: its actors and the task that holds all of them.
struct Running {
    node: RunningNode,
    scope: tokio::task::JoinHandle<()>,
}

/// A simulated network of real nodes.
pub struct Sim {
    pub(crate) seed: u64,
    pub(crate) runner: actix_rt::SystemRunner,
    pub(crate) net: SimNet,
    pub(crate) genesis: Genesis,
    root: tempfile::TempDir,
    pub(crate) start: Instant,
    pub(crate) start_unix_ms: u64,
    pub(crate) nodes: Vec<SimNode>,
    trace: Trace,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A simulation of the built-in `dev` network with ideal links (set them on [`Sim::net`]).
    pub fn new(seed: u64) -> Result<Self, SimError> {
        Self::with_genesis(seed, Genesis::builtin("dev")?)
    }

    /// A simulation of `genesis`.
    pub fn with_genesis(seed: u64, genesis: Genesis) -> Result<Self, SimError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(SimError::Runtime)?;
        let runner = actix_rt::System::with_tokio_rt(move || runtime);
        let start = runner.block_on(async { Instant::now() });
        let root = tempfile::Builder::new()
            .prefix("spacetime-sim-")
            .tempdir()
            .map_err(SimError::DataDir)?;
        // The network starts a few epochs after its genesis, so the first blocks' timestamps
        // fall inside the epochs the rules expect.
        let start_unix_ms =
            genesis.config.network.genesis_time_ms + 10 * genesis.config.network.epoch_ms;
        Ok(Self {
            seed,
            runner,
            net: SimNet::new(seed, LinkParams::default()),
            genesis,
            root,
            start,
            start_unix_ms,
            nodes: Vec::new(),
            trace: Trace::default(),
        })
    }

    /// A simulation of `genesis` whose clock starts at `unix_ms` (after the last block of a
    /// pre-mined chain, so that none is in the nodes' future).
    pub fn starting_at(seed: u64, genesis: Genesis, unix_ms: u64) -> Result<Self, SimError> {
        let mut sim = Self::with_genesis(seed, genesis)?;
        sim.start_unix_ms = unix_ms;
        Ok(sim)
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The simulated internet: links, partitions, resets.
    pub fn net(&self) -> &SimNet {
        &self.net
    }

    /// The network the nodes run.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Adds a node (not started yet; see [`Sim::start_all`]); returns its index.
    pub fn add_node(&mut self, spec: NodeSpec) -> usize {
        let index = self.nodes.len();
        self.nodes.push(SimNode {
            spec,
            ip: ip_of(index),
            data_dir: self.root.path().join(format!("node-{index}")),
            disk: MemoryDisk::new(format!("node-{index}")),
            metrics: Arc::new(NodeMetrics::default()),
            seeds: Vec::new(),
            running: None,
            starts: 0,
            rogue: None,
        });
        index
    }

    /// Adds `n` nodes of one kind; returns their indices.
    pub fn add_nodes(&mut self, n: usize, spec: &NodeSpec) -> Vec<usize> {
        (0..n).map(|_| self.add_node(spec.clone())).collect()
    }

    /// Nodes added.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True before any node is added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Wires every node added so far in `topology`: for each edge, the lower node dials the
    /// higher at start. Nodes then discover others by peer exchange as real nodes do.
    pub fn connect(&mut self, topology: Topology) -> Result<(), SimError> {
        let mut rng = SimRng::new(self.seed).fork(0x7070);
        let edges = topology.edges(self.nodes.len(), &mut rng)?;
        self.connect_edges(&edges)
    }

    /// Adds seeds along `edges` (the first node dials the second).
    pub fn connect_edges(&mut self, edges: &[(usize, usize)]) -> Result<(), SimError> {
        for &(a, b) in edges {
            if b >= self.nodes.len() {
                return Err(SimError::NoSuchNode(b));
            }
            let node = self.nodes.get_mut(a).ok_or(SimError::NoSuchNode(a))?;
            if !node.seeds.contains(&b) {
                node.seeds.push(b);
            }
        }
        Ok(())
    }

    /// The nodes node `i` dials at start.
    pub fn seeds(&self, i: usize) -> &[usize] {
        self.nodes.get(i).map_or(&[], |n| n.seeds.as_slice())
    }

    /// Starts every node that is not running, in index order.
    pub fn start_all(&mut self) -> Result<(), SimError> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].running.is_none() && self.nodes[i].rogue.is_none() {
                self.start_node(i)?;
            }
        }
        Ok(())
    }

    /// Starts node `i` with the data it has (a new node, or one stopped or crashed before).
    pub fn start_node(&mut self, i: usize) -> Result<(), SimError> {
        let now_unix = self.now_unix_ms();
        let seeds: Vec<SocketAddr> = {
            let node = self.nodes.get(i).ok_or(SimError::NoSuchNode(i))?;
            node.seeds.iter().map(|&s| self.addr(s)).collect()
        };
        let node = self.nodes.get_mut(i).ok_or(SimError::NoSuchNode(i))?;
        if node.rogue.is_some() {
            return Err(SimError::Rogue(i));
        }
        if node.running.is_some() {
            return Err(SimError::AlreadyRunning(i));
        }
        node.starts += 1;
        let mut options = NodeOptions::new(self.genesis.clone(), node.data_dir.clone());
        options.listen = Some(SocketAddr::new(node.ip, NODE_PORT));
        options.peers = seeds;
        options.outbound = node.spec.outbound;
        options.timeouts = node.spec.timeouts;
        options.sync = node.spec.sync.clone();
        options.relay = node.spec.relay.clone();
        options.mining = node.spec.mining.then(|| MiningOptions {
            key_file: "miner.key".into(),
            dev_plot_bytes: Some(node.spec.plot_bytes),
            coinbase: CoinbasePolicy::default(),
        });
        let clock_start = i128::from(now_unix) + i128::from(node.spec.clock_skew_ms);
        let clock_start = clock_start.clamp(0, i128::from(u64::MAX)) as u64;
        let root = NodeRng::from_u64(self.seed).derive(&format!("node-{i}"));
        let transport: SimTransport = self.net.transport(node.ip);
        let storage = ChainStorage::Memory(node.disk.clone());
        let scope = NodeScope::new(
            node.metrics.clone(),
            tracing::info_span!("node", i, start = node.starts),
        );
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let costs = node.spec.costs;
        let make_seams = move || Seams {
            clock: Arc::new(NodeClock::starting_at(clock_start)),
            rng: Arc::new(root),
            spawner: Spawner::Inline(costs),
            transport: Arc::new(transport),
        };
        scope.spawn(async move {
            // Inside the node's scope: the clock anchors to the paused clock's now.
            let seams = make_seams();
            let result = node::start(&options, &seams, storage, &mut std::io::sink()).await;
            let _ = started_tx.send(result);
        });
        // The handle is the node, kept rather than awaited: aborting it drops every task of
        // the node at once (a crash).
        #[allow(clippy::async_yields_async)]
        let scope = self.runner.block_on(async move { actix_rt::spawn(scope) });
        let started = self.runner.block_on(started_rx);
        let running = match started {
            Ok(Ok(node)) => node,
            Ok(Err(source)) => {
                scope.abort();
                return Err(SimError::Start { index: i, source });
            }
            Err(_) => return Err(SimError::Aborted(i)),
        };
        let observer = Observer {
            node: i,
            start: self.start,
            trace: self.trace.clone(),
        };
        let chain = running.chain.addr.clone();
        let manager = running.network.manager.clone();
        self.runner.block_on(async move {
            let observer = observer.start();
            chain.do_send(Subscribe(observer.clone().recipient()));
            manager.do_send(SubscribePeers(observer.recipient()));
        });
        self.nodes[i].running = Some(Running {
            node: running,
            scope,
        });
        Ok(())
    }

    /// Imports `blocks` (in order; side branches allowed) into the chain of node `i`, which
    /// must not run, so that it starts at their tip. The blocks are checked by every rule at the
    /// simulation's current time: mine them in its past ([`Sim::starting_at`]).
    pub fn preload(&mut self, i: usize, blocks: &[Block]) -> Result<(), SimError> {
        let now = self.now_unix_ms();
        let node = self.nodes.get(i).ok_or(SimError::NoSuchNode(i))?;
        if node.rogue.is_some() {
            return Err(SimError::Rogue(i));
        }
        if node.running.is_some() {
            return Err(SimError::AlreadyRunning(i));
        }
        let failed = |detail: String| SimError::Preload { index: i, detail };
        let storage = ChainStorage::Memory(node.disk.clone());
        let mut chain =
            Chain::open_on(storage, self.genesis.clone()).map_err(|e| failed(e.to_string()))?;
        for block in blocks {
            let height = block.header.height;
            match chain.import(block.clone(), now) {
                Ok(i)
                    if !matches!(
                        i.status,
                        ImportStatus::Orphan | ImportStatus::ReorgFailed { .. }
                    ) => {}
                Ok(i) => return Err(failed(format!("block {height}: {:?}", i.status))),
                Err(e) => return Err(failed(format!("block {height}: {e}"))),
            }
        }
        Ok(())
    }

    /// Stops node `i` cleanly (mining, then the network with goodbyes, then the chain), as the
    /// daemon does on SIGTERM; its data stays for a restart.
    pub fn stop_node(&mut self, i: usize) -> Result<(), SimError> {
        let running = self.take_running(i)?;
        let Running { node, scope } = running;
        self.runner.block_on(async move {
            node.stop().await;
            // Whatever the node still runs ends with the grace period.
            if tokio::time::timeout(STOP_GRACE, async {
                while !scope.is_finished() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .is_err()
            {
                scope.abort();
            }
        });
        Ok(())
    }

    /// Crashes node `i`: every task of it is dropped at once, without shutdown; its disk keeps
    /// what was committed.
    pub fn crash_node(&mut self, i: usize) -> Result<(), SimError> {
        let running = self.take_running(i)?;
        running.scope.abort();
        drop(running.node);
        // Let the abort land and the other side of its links see the connections drop.
        self.runner
            .block_on(async { tokio::task::yield_now().await });
        Ok(())
    }

    fn take_running(&mut self, i: usize) -> Result<Running, SimError> {
        self.nodes
            .get_mut(i)
            .ok_or(SimError::NoSuchNode(i))?
            .running
            .take()
            .ok_or(SimError::NotRunning(i))
    }

    /// Runs the network for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.runner
            .block_on(async move { tokio::time::sleep(duration).await });
    }

    /// Runs until `done` holds (checked every `step` of virtual time) or `limit` has passed;
    /// returns whether it held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        step: Duration,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> bool {
        let end = self.elapsed() + limit;
        loop {
            if done(self) {
                return true;
            }
            if self.elapsed() >= end {
                return false;
            }
            self.run_for(step);
        }
    }

    /// Runs `future` on the simulation (the network runs meanwhile) and returns its output.
    pub fn block_on<F: Future>(&mut self, future: F) -> F::Output {
        self.runner.block_on(future)
    }

    /// Virtual time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        self.runner.block_on(async { self.start.elapsed() })
    }

    /// The simulation's Unix time now (nodes' clocks add their skew).
    pub fn now_unix_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start_unix_ms.saturating_add(elapsed)
    }

    /// The address of node `i` (each node has its own IP in its own /16, as on the internet).
    pub fn ip(&self, i: usize) -> IpAddr {
        ip_of(i)
    }

    /// Where node `i` listens.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(ip_of(i), NODE_PORT)
    }

    /// The running node `i` (its actors), if it runs.
    pub fn node(&self, i: usize) -> Option<&RunningNode> {
        self.nodes.get(i)?.running.as_ref().map(|r| &r.node)
    }

    /// True when node `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.node(i).is_some()
    }

    fn running(&self, i: usize) -> Result<&RunningNode, SimError> {
        let node = self.nodes.get(i).ok_or(SimError::NoSuchNode(i))?;
        node.running
            .as_ref()
            .map(|r| &r.node)
            .ok_or(SimError::NotRunning(i))
    }

    /// Node `i`'s chain tip.
    pub fn tip(&mut self, i: usize) -> Result<Tip, SimError> {
        let addr = self.running(i)?.chain.addr.clone();
        self.runner
            .block_on(addr.send(GetTip))
            .map_err(|e| SimError::Mailbox {
                index: i,
                detail: e.to_string(),
            })
    }

    /// Node `i`'s sessions (with and without a completed Hello).
    pub fn peers(&mut self, i: usize) -> Result<Vec<PeerSummary>, SimError> {
        let addr = self.running(i)?.network.manager.clone();
        self.runner
            .block_on(addr.send(GetPeers))
            .map_err(|e| SimError::Mailbox {
                index: i,
                detail: e.to_string(),
            })
    }

    /// Node `i`'s peers that completed their Hello.
    pub fn connected_peers(&mut self, i: usize) -> Result<Vec<PeerSummary>, SimError> {
        Ok(self
            .peers(i)?
            .into_iter()
            .filter(|p| p.node_id.is_some())
            .collect())
    }

    /// Who is connected to whom now, as adjacency lists by node index (rogues and stopped
    /// nodes have none of their own, but appear in their peers' lists).
    pub fn connection_graph(&mut self) -> Result<Vec<Vec<usize>>, SimError> {
        let index: std::collections::BTreeMap<IpAddr, usize> =
            (0..self.len()).map(|i| (self.ip(i), i)).collect();
        let mut graph = vec![Vec::new(); self.len()];
        for (i, adjacent) in graph.iter_mut().enumerate() {
            if !self.is_running(i) {
                continue;
            }
            for p in self.connected_peers(i)? {
                if let Some(&j) = index.get(&p.addr.ip()) {
                    adjacent.push(j);
                }
            }
            adjacent.sort_unstable();
            adjacent.dedup();
        }
        Ok(graph)
    }

    /// Everything node `i` recorded in its metrics (over all its starts).
    pub fn metrics(&self, i: usize) -> Result<MetricsView, SimError> {
        Ok(self
            .nodes
            .get(i)
            .ok_or(SimError::NoSuchNode(i))?
            .metrics
            .view())
    }

    /// The observations of the run so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }
}

/// Node `i`'s IPv4 address: `20.i.0.1` for the first 256 nodes, then `21.(i-256).0.1` and
/// so on, each in its own /16 network group.
fn ip_of(i: usize) -> IpAddr {
    let high = 20usize.saturating_add(i / 256).min(223);
    IpAddr::V4(Ipv4Addr::new(high as u8, (i % 256) as u8, 0, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_are_distinct_routable_and_in_their_own_groups() {
        use spacetime::p2p::NetGroup;
        let groups: std::collections::BTreeSet<_> = (0..600)
            .map(|i| NetGroup::of(&SocketAddr::new(ip_of(i), NODE_PORT)))
            .collect();
        assert_eq!(groups.len(), 600);
        assert!(groups.iter().all(|g| matches!(g, NetGroup::V4(_))));
    }
}
