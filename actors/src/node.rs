//! The node: its assembly from the chain, mempool, emission, mining and network actors over the
//! node's seams ([`Seams`]), and the daemon around it (`spacetime node`: metrics endpoint,
//! status lines, signals, graceful shutdown).
//!
//! [`start`] is the one assembly: the daemon calls it with the production seams, the
//! simulator with its own (virtual clock, seeded generator, inline work, in-memory links, a
//! memory disk), so no actor has a second implementation.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use spacetime::chain::{Chain, ChainEvent, ChainStorage};
use spacetime::mempool::MempoolConfig;
use spacetime::p2p::{Direction, PeerManagerConfig};
use spacetime::{Genesis, Hash, Keypair, PublicKey};

use crate::chain::health::{StorageAlert, StorageStatus, SubscribeStorage};
use crate::chain::server::{ChainServer, ChainServerHandle};
use crate::chain::{ChainNotification, ChainState, ChainStateHandle, GetBlock, GetTip, Subscribe};
use crate::clock::NodeClock;
use crate::emission::EmissionActor;
use crate::lifecycle::Stop;
use crate::mempool::{GetMempoolStats, MempoolActor, MempoolLinks, SubscribeTxs};
use crate::miner::{CoinbasePolicy, MinerLinks, MinerLoop};
use crate::net::StaticKey;
use crate::p2p::{
    self, ChainTip, GetPeers, Network, NetworkConfig, Routes, Shutdown, SubscribePeers, Timeouts,
};
use crate::plots::{
    CancelScan, GetPlotStats, PlotManager, PlotRequest, PlotsConfig, RefreshPlots, ScannerPool,
};
use crate::relay::{GossipActor, GossipLinks};
use crate::seams::Seams;
use crate::sync::{GetSyncStatus, SyncActor, SyncLinks, SyncReport, SyncSettings};

/// File name of the chain database in the data directory.
pub const CHAIN_DB_FILE: &str = "chain.redb";

/// File name of the node's Noise static key in the data directory.
pub const NODE_KEY_FILE: &str = "node.key";

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The network.
    pub genesis: Genesis,
    /// Where the node keeps its key, address book and bans.
    pub data_dir: PathBuf,
    /// Where to accept peers (`None`: outbound only).
    pub listen: Option<SocketAddr>,
    /// Peers to connect to, beside those the node discovers.
    pub peers: Vec<SocketAddr>,
    /// Outbound connections to keep.
    pub outbound: usize,
    /// Where to serve Prometheus metrics (`None`: no endpoint).
    pub metrics_addr: Option<SocketAddr>,
    /// How often to print a status line.
    pub status_interval: Duration,
    /// Block production (`None`: the node does not mine).
    pub mining: Option<MiningOptions>,
    /// The plots to mine with.
    pub plots: PlotsConfig,
    /// The mempool's policy.
    pub mempool: MempoolConfig,
    /// Session timing (handshake, pings, idle timeout).
    pub timeouts: Timeouts,
    /// Headers-first sync tuning.
    pub sync: SyncSettings,
    /// Node-wide download and upload limits (default: unlimited).
    pub bandwidth: p2p::BandwidthLimits,
    /// How blocks, transfers, challenges and proofs are relayed.
    pub relay: spacetime::relay::RelayConfig,
    /// Addresses never banned.
    pub trusted: Vec<std::net::IpAddr>,
    /// Loopback addresses are never banned (dev networks of several local nodes).
    pub trust_loopback: bool,
}

impl NodeOptions {
    /// A node of `genesis` keeping its data in `data_dir`, with the defaults of every other
    /// option: no listener, no peers, 8 outbound slots, no metrics endpoint, no mining.
    pub fn new(genesis: Genesis, data_dir: PathBuf) -> Self {
        Self {
            genesis,
            data_dir,
            listen: None,
            peers: Vec::new(),
            outbound: PeerManagerConfig::default().outbound,
            metrics_addr: None,
            status_interval: Duration::from_secs(10),
            mining: None,
            plots: PlotsConfig::default(),
            mempool: MempoolConfig::default(),
            timeouts: Timeouts::default(),
            sync: SyncSettings::default(),
            bandwidth: p2p::BandwidthLimits::default(),
            relay: spacetime::relay::RelayConfig::default(),
            trusted: Vec::new(),
            trust_loopback: false,
        }
    }
}

/// How the node mines.
#[derive(Debug, Clone)]
pub struct MiningOptions {
    /// The miner key file.
    pub key_file: PathBuf,
    /// Create the key, and a plot of `dev_plot_bytes` in `<data dir>/plots`, when missing
    /// (dev mode).
    pub dev_plot_bytes: Option<u64>,
    /// Coinbase payees and extra data.
    pub coinbase: CoinbasePolicy,
}

/// Size of the plot `node --dev` creates on first run.
pub const DEV_PLOT_BYTES: u64 = 8 * 1024 * 1024;
/// Directory of the dev plot inside the data directory.
pub const DEV_PLOT_DIR: &str = "plots";

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory could not be created.
    #[error("cannot create data directory {}: {error}", .path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The node key could not be read or created.
    #[error(transparent)]
    NodeKey(#[from] spacetime::keyfile::KeyFileError),
    /// The metrics endpoint could not start.
    #[error("cannot serve metrics on {addr}: {reason}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// The chain database could not be opened.
    #[error(transparent)]
    Chain(#[from] spacetime::chain::ChainError),
    /// The miner key could not be read or created.
    #[error("miner key {}: {error}", .path.display())]
    MinerKey {
        /// The key file.
        path: PathBuf,
        /// What failed.
        error: spacetime::keyfile::KeyFileError,
    },
    /// The dev plot could not be created.
    #[error("cannot create the dev plot: {0}")]
    DevPlot(#[from] crate::plots::PlotterError),
    /// The network layer could not start.
    #[error(transparent)]
    Network(#[from] p2p::NetworkError),
    /// The async runtime failed.
    #[error("runtime: {0}")]
    Runtime(String),
    /// The chain database was found damaged while the node ran: it stopped.
    #[error("stopped: {0}")]
    ChainDamaged(String),
    /// The operating system gave no randomness.
    #[error(transparent)]
    Random(#[from] spacetime::rng::RngError),
    /// Writing the status output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs a node until SIGINT or SIGTERM, writing status lines to `out`.
pub fn run(options: NodeOptions, out: &mut dyn Write) -> Result<(), NodeError> {
    let system = actix_rt::System::new();
    system.block_on(async move {
        // Inside the runtime: the clock's start instant is tokio's.
        let clock = Arc::new(NodeClock::system());
        let mut seams = Seams::production()?;
        seams.clock = clock.clone();
        if let Some(addr) = options.metrics_addr {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .with_http_listener(addr)
                .install()
                .map_err(|e| NodeError::Metrics {
                    addr,
                    reason: e.to_string(),
                })?;
        }
        let storage = ChainStorage::File(options.data_dir.join(CHAIN_DB_FILE));
        let node = start(&options, &seams, storage, out).await?;
        if let Some(addr) = options.metrics_addr {
            writeln!(out, "metrics on http://{addr}/metrics")?;
        }
        if let Some(addr) = node.network.listening {
            writeln!(out, "listening on {addr}")?;
        }
        out.flush()?;
        let (events_tx, mut events) = tokio::sync::mpsc::channel(1024);
        let sink = EventSink(events_tx).start();
        node.chain.addr.do_send(Subscribe(sink.recipient()));
        let (storage_tx, mut storage) = tokio::sync::mpsc::channel(16);
        let storage_sink = StorageSink(storage_tx).start();
        node.chain.addr.do_send(SubscribeStorage(storage_sink.recipient()));
        let mut fatal = None;
        let mut status = tokio::time::interval(options.status_interval);
        let refresh_every = Duration::from_millis(options.plots.refresh_ms.max(1_000));
        let mut refresh = tokio::time::interval(refresh_every);
        refresh.tick().await;
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| NodeError::Runtime(e.to_string()))?;
        let runtime = |e: actix::MailboxError| NodeError::Runtime(e.to_string());
        let mut progress = Progress::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        let mut bar_tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                biased;
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
                Some(status) = storage.recv() => {
                    // A damaged database: stop rather than run on a chain that cannot be
                    // trusted (the error, with the way out, is logged by ChainState too).
                    if let StorageStatus::Damaged { error } = status {
                        fatal = Some(error);
                        break;
                    }
                }
                Some(event) = events.recv() => {
                    // While far behind, blocks arrive by the hundred: the status line and the
                    // progress bar tell the story instead of one line each.
                    if progress.catching_up && !matches!(event, ChainEvent::Reorg { .. }) {
                        continue;
                    }
                    let tip = node.chain.addr.send(GetTip).await.map_err(runtime)?;
                    let block = node.chain.addr.send(GetBlock(tip.hash)).await.map_err(runtime)?.ok().flatten();
                    let transfers = block.as_ref().map_or(0, |b| b.transfers.len());
                    let miner = block.as_ref().map(|b| b.header.miner.to_string()).unwrap_or_default();
                    let reorg = matches!(event, ChainEvent::Reorg { .. });
                    writeln!(
                        out,
                        "height {} | block {} | transfers {} | miner {}{}",
                        tip.height,
                        tip.hash,
                        transfers,
                        &miner[..miner.len().min(16)],
                        if reorg { " | reorg" } else { "" }
                    )?;
                    out.flush()?;
                }
                _ = status.tick() => {
                    let step = clock.follow_system(CLOCK_STEP_TOLERANCE_MS);
                    if step != 0 {
                        tracing::warn!(step_ms = step, "the system clock stepped; the node's clock follows it");
                    }
                    let peers = node.network.manager.send(GetPeers).await.map_err(runtime)?;
                    let tip = node.chain.addr.send(GetTip).await.map_err(runtime)?;
                    let pool = node.mempool.send(GetMempoolStats).await.map_err(runtime)?;
                    let sync = node.sync.send(GetSyncStatus).await.map_err(runtime)?;
                    let up: Vec<_> = peers.iter().filter(|p| p.node_id.is_some()).collect();
                    let inbound = up.iter().filter(|p| p.direction == Direction::Inbound).count();
                    progress.update(&sync);
                    writeln!(
                        out,
                        "height {} | peers {} (in {}, out {}) | mempool {}{}",
                        tip.height,
                        up.len(),
                        inbound,
                        up.len() - inbound,
                        pool.transfers,
                        sync_fragment(&sync)
                    )?;
                    out.flush()?;
                }
                _ = bar_tick.tick(), if progress.bar.is_some() => {
                    let sync = node.sync.send(GetSyncStatus).await.map_err(runtime)?;
                    progress.update(&sync);
                }
                _ = refresh.tick(), if node.mining.is_some() => {
                    if let Some((_, scanner)) = &node.mining {
                        let _ = scanner.send(RefreshPlots).await;
                    }
                }
            }
        }
        writeln!(out, "shutting down")?;
        out.flush()?;
        node.stop().await;
        match fatal {
            Some(error) => Err(NodeError::ChainDamaged(error)),
            None => Ok::<(), NodeError>(()),
        }
    })
}

/// The sync part of a status line: empty once synced.
fn sync_fragment(report: &SyncReport) -> String {
    let s = &report.status;
    if !catching_up(report) {
        return String::new();
    }
    let eta = s
        .eta_secs
        .map_or_else(|| "unknown".to_owned(), format_duration);
    format!(
        " | sync {}.{}% ({}/{}) | {:.0} blocks/s | eta {}",
        s.permille / 10,
        s.permille % 10,
        s.tip_height,
        s.target_height,
        s.blocks_per_sec,
        eta
    )
}

/// Far enough behind (more than 32 blocks) that per-block lines give way to progress.
fn catching_up(report: &SyncReport) -> bool {
    let s = &report.status;
    s.in_ibd && s.target_height > s.tip_height.saturating_add(CATCHING_UP_BLOCKS)
}

/// Blocks behind the target at which the node counts as catching up.
const CATCHING_UP_BLOCKS: u64 = 32;

/// `1h02m`, `3m20s`, `45s`.
fn format_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// The progress bar on a terminal's stderr while the node catches up, and whether it is.
struct Progress {
    terminal: bool,
    bar: Option<indicatif::ProgressBar>,
    catching_up: bool,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            bar: None,
            catching_up: false,
        }
    }

    fn update(&mut self, report: &SyncReport) {
        let s = &report.status;
        self.catching_up = catching_up(report);
        if !self.terminal {
            return;
        }
        if !self.catching_up {
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(s.target_height);
            let style = indicatif::ProgressStyle::with_template(
                "syncing {bar:40} {pos}/{len} blocks {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        bar.set_length(s.target_height);
        bar.set_position(s.tip_height);
        let eta = s
            .eta_secs
            .map_or_else(String::new, |e| format!(", eta {}", format_duration(e)));
        bar.set_message(format!("{:.0} blocks/s{eta}", s.blocks_per_sec));
    }
}

/// How far the system clock may drift from the node's before the node follows it.
const CLOCK_STEP_TOLERANCE_MS: u64 = 1_000;

/// A running node: its actors and what it is known by.
pub struct RunningNode {
    /// ChainState.
    pub chain: ChainStateHandle,
    /// Mempool.
    pub mempool: actix::Addr<MempoolActor>,
    /// Emission.
    pub emission: actix::Addr<EmissionActor>,
    /// MinerLoop and ScannerPool, when mining.
    pub mining: Option<(actix::Addr<MinerLoop>, actix::Addr<ScannerPool>)>,
    /// The network layer.
    pub network: Network,
    /// Sync.
    pub sync: actix::Addr<SyncActor>,
    /// Gossip (relay).
    pub gossip: actix::Addr<GossipActor>,
    /// ChainServer (answers peers' chain requests).
    pub server: ChainServerHandle,
    /// The miner's public key, when mining.
    pub miner: Option<PublicKey>,
}

impl RunningNode {
    /// The node id (from its Noise static key).
    pub fn node_id(&self) -> Hash {
        self.network.node_id
    }

    /// Stops the node cleanly: mining first (a block being built is already queued at
    /// ChainState and is committed), then the network (goodbye to peers, address book and
    /// bans saved), then the chain (the database closes).
    pub async fn stop(self) {
        if let Some((miner, scanner)) = self.mining {
            let _ = miner.send(Stop).await;
            let _ = scanner.send(CancelScan).await;
            let _ = scanner.send(Stop).await;
        }
        let _ = self.network.manager.send(Shutdown).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = self.sync.send(Stop).await;
        let _ = self.gossip.send(Stop).await;
        self.server.stop().await;
        let _ = self.mempool.send(Stop).await;
        let _ = self.emission.send(Stop).await;
        self.chain.stop().await;
    }
}

/// Assembles and starts a node on the current actix system: data directory, node key, the
/// chain on `storage`, the core actors, mining when configured, and the network, all over
/// `seams`. Writes what it set up to `out`.
pub async fn start(
    options: &NodeOptions,
    seams: &Seams,
    storage: ChainStorage,
    out: &mut dyn Write,
) -> Result<RunningNode, NodeError> {
    create_data_dir(&options.data_dir)?;
    let key = StaticKey::load_or_create(
        &options.data_dir.join(NODE_KEY_FILE),
        &mut seams.rng_for("node-key"),
    )?;
    let chain = Chain::open_on(storage, options.genesis.clone())?;
    if chain.opened().repaired {
        tracing::warn!(
            "chain database {} failed its integrity check and was rolled back to its last good commit; sync fetches the newest blocks again",
            chain.storage().describe()
        );
    }
    let mut plots = options.plots.clone();
    let miner_key = match &options.mining {
        Some(m) => Some(prepare_mining(m, options, seams, &mut plots, out)?),
        None => None,
    };
    let miner = miner_key.as_ref().map(|(k, _)| k.public());
    let network_name = options.genesis.config.network.name.clone();
    let network_id = options.genesis.network_id;
    writeln!(out, "spacetime node: network {network_name} ({network_id})")?;
    writeln!(out, "node id {}", key.node_id())?;
    writeln!(out, "data directory {}", options.data_dir.display())?;
    out.flush()?;
    let start_tip = chain.tip();
    let tip = ChainTip {
        height: start_tip.height,
        hash: start_tip.hash,
        work: start_tip.work.0,
    };
    let server = ChainServer::start(chain.reader(), &seams.spawner);
    let core = start_core(options, chain, miner_key, &plots, seams, out).await?;
    // Sync exists before the network (sessions route to it) and starts once the network does.
    let sync_ctx = actix::Context::<SyncActor>::new();
    let sync_addr = actix::AsyncContext::address(&sync_ctx);
    let gossip_ctx = actix::Context::<GossipActor>::new();
    let gossip_addr = actix::AsyncContext::address(&gossip_ctx);
    let config = NetworkConfig {
        listen: options.listen,
        peers: PeerManagerConfig {
            outbound: options.outbound,
            seeds: options.peers.clone(),
            trusted: options.trusted.clone(),
            trust_loopback: options.trust_loopback,
            ..Default::default()
        },
        data_dir: Some(options.data_dir.clone()),
        timeouts: options.timeouts,
        routes: Routes {
            requests: Some(server.addr.clone().recipient()),
            sync: Some(sync_addr.clone().recipient()),
            relay: Some(gossip_addr.clone().recipient()),
        },
        bandwidth: (options.bandwidth != p2p::BandwidthLimits::default())
            .then(|| p2p::Bandwidth::new(options.bandwidth, seams.clock.clone())),
        ..NetworkConfig::default()
    };
    let network = match p2p::start(config, key, network_id, tip, seams).await {
        Ok(network) => network,
        Err(e) => {
            // The actors already running stop before the runtime goes: dropped unstopped,
            // they would start their timers outside it.
            server.stop().await;
            core.stop().await;
            return Err(e.into());
        }
    };
    let chain_addr = &core.chain.addr;
    let sync = sync_ctx.run(SyncActor::new(
        options.sync.clone(),
        options.genesis.config.clone(),
        seams.clock.clone(),
        seams.spawner.clone(),
        SyncLinks {
            headers: chain_addr.clone().recipient(),
            blocks: chain_addr.clone().recipient(),
            block: chain_addr.clone().recipient(),
            view: chain_addr.clone().recipient(),
            send: network.manager.clone().recipient(),
            penalize: network.manager.clone().recipient(),
            disconnect: network.manager.clone().recipient(),
            tip: network.manager.clone().recipient(),
        },
    ));
    network
        .manager
        .do_send(SubscribePeers(sync.clone().recipient()));
    let gossip = gossip_ctx.run(GossipActor::new(
        options.relay.clone(),
        seams.clock.clone(),
        seams.spawner.costs(),
        GossipLinks {
            precheck: chain_addr.clone().recipient(),
            import: chain_addr.clone().recipient(),
            block: chain_addr.clone().recipient(),
            tip: chain_addr.clone().recipient(),
            submit: core.mempool.clone().recipient(),
            pending: core.mempool.clone().recipient(),
            send: network.manager.clone().recipient(),
            penalize: network.manager.clone().recipient(),
            hints: sync.clone().recipient(),
            orphans: sync.clone().recipient(),
            server: Some(server.addr.clone().recipient()),
        },
        miner,
    ));
    network
        .manager
        .do_send(SubscribePeers(gossip.clone().recipient()));
    chain_addr.do_send(Subscribe(gossip.clone().recipient()));
    core.mempool
        .do_send(SubscribeTxs(gossip.clone().recipient()));
    Ok(RunningNode {
        chain: core.chain,
        mempool: core.mempool,
        emission: core.emission,
        mining: core.mining,
        network,
        sync,
        gossip,
        server,
        miner,
    })
}

/// The node's actors apart from the network: ChainState, Emission, Mempool and, when mining,
/// ScannerPool and MinerLoop, wired to each other.
pub struct NodeCore {
    /// ChainState.
    pub chain: ChainStateHandle,
    /// Mempool.
    pub mempool: actix::Addr<MempoolActor>,
    /// Emission.
    pub emission: actix::Addr<EmissionActor>,
    /// MinerLoop and ScannerPool, when mining.
    pub mining: Option<(actix::Addr<MinerLoop>, actix::Addr<ScannerPool>)>,
}

impl NodeCore {
    /// Stops the core actors in the order [`RunningNode::stop`] does.
    pub async fn stop(self) {
        if let Some((miner, scanner)) = self.mining {
            let _ = miner.send(Stop).await;
            let _ = scanner.send(CancelScan).await;
            let _ = scanner.send(Stop).await;
        }
        let _ = self.mempool.send(Stop).await;
        let _ = self.emission.send(Stop).await;
        self.chain.stop().await;
    }
}

/// Starts the node's actors apart from the network on the current actix system (part of
/// [`start`]; tests use it to run a node's core in-process).
pub async fn start_core(
    options: &NodeOptions,
    chain: Chain,
    miner_key: Option<(Keypair, CoinbasePolicy)>,
    plots: &PlotsConfig,
    seams: &Seams,
    out: &mut dyn Write,
) -> Result<NodeCore, NodeError> {
    let genesis = options.genesis.clone();
    let clock = seams.clock.clone();
    let chain = ChainState::start(chain, clock.clone(), seams.rng_for("chain"), &seams.spawner);
    let emission = EmissionActor::new(genesis.emission.clone()).start();
    chain.addr.do_send(Subscribe(emission.clone().recipient()));
    let mempool = MempoolActor::new(
        options.mempool.clone(),
        genesis.chain_id,
        clock.clone(),
        MempoolLinks {
            accounts: chain.addr.clone().recipient(),
            blocks: chain.addr.clone().recipient(),
        },
    )
    .start();
    chain.addr.do_send(Subscribe(mempool.clone().recipient()));
    let mining = match miner_key {
        Some((key, coinbase)) => {
            let shape = spacetime::plot::PlotShape::from(&genesis.config.plot);
            let manager = PlotManager::from_config(plots, shape);
            let scanner =
                ScannerPool::with_spawner(manager, plots.scan.clone(), seams.spawner.clone())
                    .start();
            let _ = scanner.send(RefreshPlots).await;
            let stats = scanner.send(GetPlotStats).await.ok();
            if let Some(s) = stats {
                writeln!(
                    out,
                    "mining with {} plots ({} bytes) as {}",
                    s.plots,
                    s.bytes,
                    key.public()
                )?;
            }
            let miner = MinerLoop::new(
                genesis.config.network.clone(),
                clock.clone(),
                Arc::new(key),
                coinbase,
                MinerLinks {
                    context: chain.addr.clone().recipient(),
                    tip: chain.addr.clone().recipient(),
                    build: chain.addr.clone().recipient(),
                    scan: scanner.clone().recipient(),
                    cancel: scanner.clone().recipient(),
                    template: Some(mempool.clone().recipient()),
                },
            )
            .start();
            chain.addr.do_send(Subscribe(miner.clone().recipient()));
            Some((miner, scanner))
        }
        None => None,
    };
    Ok(NodeCore {
        chain,
        mempool,
        emission,
        mining,
    })
}

/// Forwards chain events to the node's status loop.
struct EventSink(tokio::sync::mpsc::Sender<ChainEvent>);

impl actix::Actor for EventSink {
    type Context = actix::Context<Self>;
}

impl actix::Handler<ChainNotification> for EventSink {
    type Result = ();
    fn handle(&mut self, msg: ChainNotification, _: &mut actix::Context<Self>) {
        // A full channel only delays status lines; the next event prints the tip anyway.
        let _ = self.0.try_send(msg.0);
    }
}

/// Forwards ChainState's storage alerts to the daemon's loop.
struct StorageSink(tokio::sync::mpsc::Sender<StorageStatus>);

impl actix::Actor for StorageSink {
    type Context = actix::Context<Self>;
}

impl actix::Handler<StorageAlert> for StorageSink {
    type Result = ();
    fn handle(&mut self, msg: StorageAlert, _: &mut actix::Context<Self>) {
        let _ = self.0.try_send(msg.0);
    }
}

/// Loads (or in dev mode creates) the miner key and the dev plot.
pub fn prepare_mining(
    m: &MiningOptions,
    options: &NodeOptions,
    seams: &Seams,
    plots: &mut PlotsConfig,
    out: &mut dyn Write,
) -> Result<(Keypair, CoinbasePolicy), NodeError> {
    let key_path = if m.key_file.is_absolute() {
        m.key_file.clone()
    } else {
        options.data_dir.join(&m.key_file)
    };
    let key_err = |error| NodeError::MinerKey {
        path: key_path.clone(),
        error,
    };
    let key = match spacetime::keyfile::read_key_file(&key_path) {
        Ok(k) => k,
        Err(_) if m.dev_plot_bytes.is_some() && !key_path.exists() => {
            // From the OS on a real node (its generator's key source), from the seed in the sim.
            let k = Keypair::generate_from(&mut seams.rng_for("miner-key"))?;
            spacetime::keyfile::write_key_file(&key_path, &k, false).map_err(key_err)?;
            writeln!(out, "created miner key {}", key_path.display())?;
            k
        }
        Err(e) => return Err(key_err(e)),
    };
    if let Some(size) = m.dev_plot_bytes {
        let dir = options.data_dir.join(DEV_PLOT_DIR);
        std::fs::create_dir_all(&dir).map_err(|error| NodeError::DataDir {
            path: dir.clone(),
            error,
        })?;
        if crate::plots::discover(&dir).is_empty() {
            writeln!(
                out,
                "creating a {} MiB dev plot in {}",
                size >> 20,
                dir.display()
            )?;
            out.flush()?;
            let req = PlotRequest {
                dir: dir.clone(),
                size,
                params: options.genesis.config.plot.clone(),
                miner: key.public(),
                seed: Some(Hash(seams.rng_for("dev-plot").bytes32())),
                // The simulator's thread plots alone: no worker threads beside it.
                threads: if seams.spawner.is_inline() {
                    1
                } else {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                },
                memory: 64 * 1024 * 1024,
                restart: false,
            };
            crate::plots::create_plot(&req, &mut |_| {})?;
        }
        if !plots.dirs.contains(&dir) {
            plots.dirs.push(dir);
        }
    }
    Ok((key, m.coinbase.clone()))
}

fn create_data_dir(path: &std::path::Path) -> Result<(), NodeError> {
    let err = |error| NodeError::DataDir {
        path: path.to_owned(),
        error,
    };
    std::fs::create_dir_all(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Keys live here: owner only.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}
