//! `spacetime node`: run a node.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use spacetime::Genesis;

use super::{CliError, NetworkArgs};
use crate::node::{self, NodeOptions};

/// The default P2P port of real networks.
pub const DEFAULT_PORT: u16 = 9444;
/// The default P2P port of the dev network (on loopback).
pub const DEFAULT_DEV_PORT: u16 = 19444;

/// Options of `spacetime node`.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// Run on the built-in dev network, listening on loopback only.
    #[arg(long, conflicts_with_all = ["network", "config"])]
    pub dev: bool,
    /// Which network (ignored with --dev).
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Data directory (default: ~/.spacetime/<network>).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where to accept peers (default: 0.0.0.0:9444, or 127.0.0.1:19444 with --dev).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// Do not accept inbound connections.
    #[arg(long, conflicts_with = "listen")]
    pub no_listen: bool,
    /// A peer to connect to (repeatable).
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<SocketAddr>,
    /// Outbound connections to keep (1 to 32).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=32))]
    pub outbound: u8,
    /// Serve Prometheus metrics here (for example 127.0.0.1:9898).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// Seconds between status lines.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub status_interval: u64,
}

pub(super) fn run(args: NodeArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let genesis = if args.dev {
        Genesis::builtin("dev")?
    } else {
        Genesis::new(args.network.load()?)?
    };
    let name = genesis.config.network.name.clone();
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir(&name)?,
    };
    let listen = if args.no_listen {
        None
    } else {
        Some(args.listen.unwrap_or_else(|| {
            if args.dev {
                SocketAddr::from(([127, 0, 0, 1], DEFAULT_DEV_PORT))
            } else {
                SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
            }
        }))
    };
    let options = NodeOptions {
        genesis,
        data_dir,
        listen,
        peers: args.peers,
        outbound: usize::from(args.outbound),
        metrics_addr: args.metrics_addr,
        status_interval: Duration::from_secs(args.status_interval),
    };
    Ok(node::run(options, out)?)
}

pub(super) fn default_data_dir(network: &str) -> Result<PathBuf, CliError> {
    let home = std::env::var_os("HOME").ok_or(CliError::NoHome)?;
    Ok(PathBuf::from(home).join(".spacetime").join(network))
}
