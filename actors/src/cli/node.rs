//! `spacetime node`: run a node.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use spacetime::Genesis;

use super::{CliError, NetworkArgs};
use crate::config::{LogFormat, NODE_CONFIG_FILE, NodeConfig};
use crate::miner::CoinbasePolicy;
use crate::node::{self, DEV_PLOT_BYTES, MiningOptions, NodeOptions};
use crate::p2p::BandwidthLimits;
use crate::p2p::bandwidth::MIN_RATE_BYTES_PER_SEC;

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
    /// Outbound connections to keep (1 to 32; default 8).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=32))]
    pub outbound: Option<u8>,
    /// Serve Prometheus metrics here (for example 127.0.0.1:9898).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// Seconds between periodic status lines (default 10; a line is also printed per block).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub status_interval: Option<u64>,
    /// The node configuration file (default: <data dir>/node.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub node_config: Option<PathBuf>,
    /// Mine (the default with --dev, or with `[mining] enabled = true`).
    #[arg(long, conflicts_with = "no_mine")]
    pub mine: bool,
    /// Do not mine, even with --dev.
    #[arg(long)]
    pub no_mine: bool,
    /// Log format on stderr (default plain, or `[telemetry] log_format`).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Most bytes per second read from all peers together: 0 (unlimited) or at least 64k;
    /// k, M, G multiply by 1024, 1024², 1024³ (overrides `[network]
    /// max_download_bytes_per_sec`).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = parse_rate)]
    pub max_download_rate: Option<u64>,
    /// Most bytes per second written to all peers together: 0 (unlimited) or at least 64k;
    /// k, M, G multiply by 1024, 1024², 1024³ (overrides `[network]
    /// max_upload_bytes_per_sec`).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = parse_rate)]
    pub max_upload_rate: Option<u64>,
}

/// Parses a rate in bytes per second: an integer, optionally followed by `k`, `M` or `G`
/// (either case; powers of 1024), that is 0 (unlimited) or at least 65536.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let unit: u64 = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                _ => return Err(format!("unknown suffix {c:?}: use k, M or G")),
            };
            (&text[..i], unit)
        }
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected bytes per second, such as 1048576, 500k, 2M or 1G".into());
    }
    let rate = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or("too large")?;
    if (1..MIN_RATE_BYTES_PER_SEC).contains(&rate) {
        return Err(format!(
            "{rate} bytes per second is below the minimum of {MIN_RATE_BYTES_PER_SEC} (64k); \
             0 means unlimited"
        ));
    }
    Ok(rate)
}

impl NodeArgs {
    fn genesis(&self) -> Result<Genesis, CliError> {
        Ok(if self.dev {
            Genesis::builtin("dev")?
        } else {
            self.network.load_genesis()?
        })
    }

    fn data_dir(&self, genesis: &Genesis) -> Result<PathBuf, CliError> {
        match &self.data_dir {
            Some(dir) => Ok(dir.clone()),
            None => default_data_dir(&genesis.config.network.name),
        }
    }

    fn config(&self, data_dir: &std::path::Path) -> Result<NodeConfig, CliError> {
        let (path, required) = match &self.node_config {
            Some(p) => (p.clone(), true),
            None => (data_dir.join(NODE_CONFIG_FILE), false),
        };
        match NodeConfig::load(&path)? {
            Some(c) => Ok(c),
            None if required => Err(CliError::ReadFile {
                path,
                error: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
            None => Ok(NodeConfig::default()),
        }
    }

    /// The log format this invocation asks for (flag, then configuration file), read before
    /// logging starts; an unreadable configuration is reported later by `run`.
    pub fn log_format(&self) -> LogFormat {
        if let Some(f) = self.log_format {
            return f;
        }
        self.genesis()
            .and_then(|g| self.data_dir(&g))
            .and_then(|d| self.config(&d))
            .map_or(LogFormat::Plain, |c| c.telemetry.log_format)
    }

    /// The bandwidth limits: the flags, then the configuration file.
    fn bandwidth(&self, config: &NodeConfig) -> BandwidthLimits {
        BandwidthLimits::new(
            self.max_download_rate
                .or(config.network.max_download_bytes_per_sec),
            self.max_upload_rate
                .or(config.network.max_upload_bytes_per_sec),
        )
    }
}

pub(super) fn run(args: NodeArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let genesis = args.genesis()?;
    let data_dir = args.data_dir(&genesis)?;
    let config = args.config(&data_dir)?;
    let listen = if args.no_listen || config.network.no_listen {
        None
    } else {
        Some(args.listen.or(config.network.listen).unwrap_or_else(|| {
            if args.dev {
                SocketAddr::from(([127, 0, 0, 1], DEFAULT_DEV_PORT))
            } else {
                SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
            }
        }))
    };
    let mut peers = config.network.seeds.clone();
    peers.extend(args.peers.iter().copied());
    let mine = !args.no_mine && (args.mine || args.dev || config.mining.enabled);
    let mining = mine.then(|| MiningOptions {
        key_file: config.mining.key_file.clone(),
        dev_plot_bytes: args.dev.then_some(DEV_PLOT_BYTES),
        coinbase: CoinbasePolicy {
            payees: config
                .mining
                .payees
                .iter()
                .map(|p| (p.address, p.weight))
                .collect(),
            extra_data: config.mining.extra_data.as_bytes().to_vec(),
        },
    });
    let bandwidth = args.bandwidth(&config);
    let options = NodeOptions {
        genesis,
        data_dir,
        listen,
        peers,
        outbound: usize::from(args.outbound.or(config.network.outbound).unwrap_or(8)),
        metrics_addr: args.metrics_addr.or(config.telemetry.metrics_addr),
        status_interval: Duration::from_secs(
            args.status_interval
                .unwrap_or(config.telemetry.status_interval_s),
        ),
        mining,
        plots: config.plots,
        mempool: config.mempool,
        timeouts: crate::p2p::Timeouts::default(),
        sync: config.sync.settings(),
        relay: config.relay.settings(),
        bandwidth,
        trust_loopback: config.network.trust_loopback.unwrap_or(args.dev),
        trusted: config.network.trusted,
    };
    Ok(node::run(options, out)?)
}

pub(super) fn default_data_dir(network: &str) -> Result<PathBuf, CliError> {
    let home = std::env::var_os("HOME").ok_or(CliError::NoHome)?;
    Ok(PathBuf::from(home).join(".spacetime").join(network))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn node_args(flags: &[&str]) -> Result<NodeArgs, clap::Error> {
        let cli = Cli::try_parse_from(["spacetime", "node"].iter().chain(flags))?;
        match cli.command {
            Command::Node(args) => Ok(args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rates_parse_with_binary_suffixes() {
        for (text, rate) in [
            ("0", 0),
            ("65536", 65_536),
            ("64k", 65_536),
            ("500K", 500 * 1024),
            ("2M", 2 << 20),
            ("2m", 2 << 20),
            ("1G", 1 << 30),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_rate(text), Ok(rate), "{text}");
        }
        for text in [
            "",
            "k",
            "1.5M",
            "-1",
            "+65536",
            "1T",
            "2 M",
            "65535",
            "63k",
            "1",
            "17179869184G",
        ] {
            assert!(parse_rate(text).is_err(), "{text}");
        }
    }

    #[test]
    fn flags_override_the_file_and_zero_lifts_a_limit() {
        let config = NodeConfig::from_toml(
            "[network]\nmax_download_bytes_per_sec = 1048576\nmax_upload_bytes_per_sec = 65536\n",
            std::path::Path::new("node.toml"),
        )
        .unwrap();
        let from_file = node_args(&[]).unwrap().bandwidth(&config);
        assert_eq!(from_file.download_bytes_per_sec, Some(1 << 20));
        assert_eq!(from_file.upload_bytes_per_sec, Some(65_536));

        let args = node_args(&["--max-download-rate", "2M", "--max-upload-rate", "0"]).unwrap();
        assert_eq!(args.max_download_rate, Some(2 << 20));
        assert_eq!(
            args.bandwidth(&config),
            BandwidthLimits {
                download_bytes_per_sec: Some(2 << 20),
                upload_bytes_per_sec: None,
            }
        );
        assert_eq!(
            node_args(&[]).unwrap().bandwidth(&NodeConfig::default()),
            BandwidthLimits::default()
        );
    }

    #[test]
    fn low_or_malformed_rates_are_refused_naming_the_flag() {
        for (flag, value) in [("--max-download-rate", "1000"), ("--max-upload-rate", "2X")] {
            let e = node_args(&[flag, value]).unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
            assert!(e.contains(value), "{e}");
        }
        let e = node_args(&["--max-upload-rate", "60k"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("minimum of 65536"), "{e}");
    }
}
