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

use crate::chain::{ChainState, GetTip};
use crate::clock::SystemClock;
use crate::net::StaticKey;
use crate::p2p::{self, ChainTip, GetPeers, NetworkConfig, Shutdown};

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
}

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
        let clock = Arc::new(SystemClock);
        let chain = ChainState::start_on_own_thread(chain, clock.clone());
        let network = p2p::start(config, key, network_id, tip, clock).await?;
        if let Some(addr) = network.listening {
            writeln!(out, "listening on {addr}")?;
        }
        out.flush()?;
        let mut status = tokio::time::interval(options.status_interval);
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| NodeError::Runtime(e.to_string()))?;
        loop {
            tokio::select! {
                _ = status.tick() => {
                    let peers = network.manager.send(GetPeers).await.map_err(|e| NodeError::Runtime(e.to_string()))?;
                    let tip = chain.addr.send(GetTip).await.map_err(|e| NodeError::Runtime(e.to_string()))?;
                    let up: Vec<_> = peers.iter().filter(|p| p.node_id.is_some()).collect();
                    let inbound = up.iter().filter(|p| p.direction == Direction::Inbound).count();
                    writeln!(
                        out,
                        "height {} | peers {} (in {}, out {})",
                        tip.height,
                        up.len(),
                        inbound,
                        up.len() - inbound
                    )?;
                    out.flush()?;
                }
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            }
        }
        writeln!(out, "shutting down")?;
        out.flush()?;
        // Says goodbye to peers and saves the address book and bans.
        let _ = network.manager.send(Shutdown).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Finishes the block in progress and closes the database.
        chain.stop().await;
        Ok::<(), NodeError>(())
    })
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
