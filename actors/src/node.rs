//! The running node: data directory, node identity, network layer, metrics endpoint, status
//! output and graceful shutdown, and the chain database behind the ChainState actor. Mempool and
//! mining join it as they land.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spacetime::Genesis;
use spacetime::p2p::{Direction, PeerManagerConfig};

use spacetime::chain::Chain;

use actix::Actor;
use spacetime::Keypair;
use spacetime::chain::ChainEvent;
use spacetime::mempool::MempoolConfig;

use crate::chain::{ChainNotification, ChainState, ChainStateHandle, GetBlock, GetTip, Subscribe};
use crate::clock::{Clock, SystemClock};
use crate::emission::EmissionActor;
use crate::mempool::{GetMempoolStats, MempoolActor, MempoolLinks};
use crate::miner::{CoinbasePolicy, MinerLinks, MinerLoop};
use crate::net::StaticKey;
use crate::p2p::{self, ChainTip, GetPeers, NetworkConfig, Shutdown};
use crate::plots::{
    CancelScan, GetPlotStats, PlotManager, PlotRequest, PlotsConfig, RefreshPlots, ScannerPool,
};

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
    /// Writing the status output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs a node until SIGINT or SIGTERM, writing status lines to `out`.
pub fn run(options: NodeOptions, out: &mut dyn Write) -> Result<(), NodeError> {
    create_data_dir(&options.data_dir)?;
    let key = StaticKey::load_or_create(&options.data_dir.join(NODE_KEY_FILE))?;
    let chain = Chain::open(
        &options.data_dir.join(CHAIN_DB_FILE),
        options.genesis.clone(),
    )?;
    let mut plots = options.plots.clone();
    let miner_key = match &options.mining {
        Some(m) => Some(prepare_mining(m, &options, &mut plots, out)?),
        None => None,
    };
    if let Some(addr) = options.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| NodeError::Metrics {
                addr,
                reason: e.to_string(),
            })?;
    }
    let network_name = options.genesis.config.network.name.clone();
    let network_id = options.genesis.network_id;
    writeln!(out, "spacetime node: network {network_name} ({network_id})")?;
    writeln!(out, "node id {}", key.node_id())?;
    writeln!(out, "data directory {}", options.data_dir.display())?;
    if let Some(addr) = options.metrics_addr {
        writeln!(out, "metrics on http://{addr}/metrics")?;
    }
    out.flush()?;
    let config = NetworkConfig {
        listen: options.listen,
        peers: PeerManagerConfig {
            outbound: options.outbound,
            seeds: options.peers.clone(),
            ..Default::default()
        },
        data_dir: Some(options.data_dir.clone()),
        ..NetworkConfig::default()
    };
    let start = chain.tip();
    let tip = ChainTip {
        height: start.height,
        hash: start.hash,
        work: start.work.0,
    };
    let system = actix_rt::System::new();
    system.block_on(async move {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let core = start_core(&options, chain, miner_key, &plots, clock.clone(), out).await?;
        let (chain, mempool, mining) = (core.chain, core.mempool, core.mining);
        let (events_tx, mut events) = tokio::sync::mpsc::channel(1024);
        let sink = EventSink(events_tx).start();
        chain.addr.do_send(Subscribe(sink.recipient()));
        let network = p2p::start(config, key, network_id, tip, clock).await?;
        if let Some(addr) = network.listening {
            writeln!(out, "listening on {addr}")?;
        }
        out.flush()?;
        let mut status = tokio::time::interval(options.status_interval);
        let refresh_every = Duration::from_millis(plots.refresh_ms.max(1_000));
        let mut refresh = tokio::time::interval(refresh_every);
        refresh.tick().await;
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| NodeError::Runtime(e.to_string()))?;
        let runtime = |e: actix::MailboxError| NodeError::Runtime(e.to_string());
        loop {
            tokio::select! {
                _ = status.tick() => {
                    let peers = network.manager.send(GetPeers).await.map_err(runtime)?;
                    let tip = chain.addr.send(GetTip).await.map_err(runtime)?;
                    let pool = mempool.send(GetMempoolStats).await.map_err(runtime)?;
                    let up: Vec<_> = peers.iter().filter(|p| p.node_id.is_some()).collect();
                    let inbound = up.iter().filter(|p| p.direction == Direction::Inbound).count();
                    writeln!(
                        out,
                        "height {} | peers {} (in {}, out {}) | mempool {}",
                        tip.height,
                        up.len(),
                        inbound,
                        up.len() - inbound,
                        pool.transfers
                    )?;
                    out.flush()?;
                }
                Some(event) = events.recv() => {
                    let tip = chain.addr.send(GetTip).await.map_err(runtime)?;
                    let block = chain.addr.send(GetBlock(tip.hash)).await.map_err(runtime)?.ok().flatten();
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
                _ = refresh.tick(), if mining.is_some() => {
                    if let Some((_, scanner)) = &mining {
                        let _ = scanner.send(RefreshPlots).await;
                    }
                }
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            }
        }
        writeln!(out, "shutting down")?;
        out.flush()?;
        // Stop mining first; a block being built is already queued at ChainState and is
        // committed before the database closes.
        if let Some((miner, scanner)) = mining {
            let _ = scanner.send(CancelScan).await;
            drop(miner);
        }
        // Says goodbye to peers and saves the address book and bans.
        let _ = network.manager.send(Shutdown).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Finishes the block in progress and closes the database.
        chain.stop().await;
        Ok::<(), NodeError>(())
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

/// Starts the node's actors on the current actix system (the daemon calls it; tests use it to
/// run a node in-process).
pub async fn start_core(
    options: &NodeOptions,
    chain: Chain,
    miner_key: Option<(Keypair, CoinbasePolicy)>,
    plots: &PlotsConfig,
    clock: Arc<dyn Clock>,
    out: &mut dyn Write,
) -> Result<NodeCore, NodeError> {
    let genesis = options.genesis.clone();
    let chain = ChainState::start_on_own_thread(chain, clock.clone());
    let emission = EmissionActor::new(genesis.emission.clone()).start();
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
            let scanner = ScannerPool::new(manager, plots.scan.clone()).start();
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

/// Loads (or in dev mode creates) the miner key and the dev plot.
pub fn prepare_mining(
    m: &MiningOptions,
    options: &NodeOptions,
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
            let k = Keypair::generate();
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
                seed: None,
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
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
