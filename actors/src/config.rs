//! The node configuration file (TOML), read from `<data dir>/node.toml` or `--node-config`;
//! command-line options override it. Every table and field is optional; unknown fields are
//! errors naming the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::p2p::BandwidthLimits;
use crate::p2p::bandwidth::MIN_RATE_BYTES_PER_SEC;
use crate::plots::PlotsConfig;

/// File name of the node configuration in the data directory.
pub const NODE_CONFIG_FILE: &str = "node.toml";
/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Most scanner threads a configuration may ask for (each is an OS thread with its own buffer).
pub const MAX_SCAN_THREADS: usize = 256;
/// Largest single plot read a configuration may ask for (one buffer per scanner thread).
pub const MAX_READ_SIZE: usize = 64 * 1024 * 1024;
/// Largest replace-by-fee bump a configuration may ask for, in percent.
pub const MAX_REPLACE_BUMP_PERCENT: u64 = 10_000;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Networking.
    pub network: NetworkSection,
    /// Metrics and logs.
    pub telemetry: TelemetrySection,
    /// Block production.
    pub mining: MiningSection,
    /// The miner's plots.
    pub plots: PlotsConfig,
    /// Pending transactions.
    pub mempool: spacetime::mempool::MempoolConfig,
    /// Headers-first sync.
    pub sync: SyncSection,
    /// Relay of blocks, transfers, challenges and proofs.
    pub relay: RelaySection,
}

/// Most peers a configuration may ask to push blocks (BIP152 uses 3).
pub const MAX_HIGH_BANDWIDTH_PEERS: usize = 8;

/// `[relay]` (`docs/relay.md` explains each choice and its measured cost)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySection {
    /// `push`, `announce` or `high_bandwidth` (absent: `push`).
    pub blocks: Option<spacetime::relay::BlockRelay>,
    /// Peers asked to push blocks in `high_bandwidth` mode (0 to 8; absent: 1).
    pub high_bandwidth_peers: Option<usize>,
    /// Push blocks compact, as header, coinbase and transfer ids (absent: true).
    pub compact_blocks: Option<bool>,
    /// `push` or `announce` (absent: `push`).
    pub transactions: Option<spacetime::relay::TxRelay>,
    /// Items queued to one peer before the oldest of the lowest class is dropped (100 to
    /// 1,000,000; absent: 20,000).
    pub queue_per_peer: Option<usize>,
    /// Relay bytes per second to one peer (absent or 0: unlimited; else at least 65536).
    pub peer_upload_bytes_per_sec: Option<u64>,
    /// Relay bytes per second to all peers together (absent or 0: unlimited; else at least
    /// 65536).
    pub upload_bytes_per_sec: Option<u64>,
    /// How long transfers wait to fill a batch, ms (0 to 10,000; absent: 100).
    pub tx_batch_ms: Option<u64>,
}

impl RelaySection {
    /// The node's relay settings.
    pub fn settings(&self) -> spacetime::relay::RelayConfig {
        let mut c = spacetime::relay::RelayConfig::default();
        if let Some(b) = self.blocks {
            c.blocks = b;
        }
        if let Some(n) = self.high_bandwidth_peers {
            c.high_bandwidth_peers = n;
        }
        if let Some(b) = self.compact_blocks {
            c.compact_blocks = b;
        }
        if let Some(t) = self.transactions {
            c.txs = t;
        }
        if let Some(n) = self.queue_per_peer {
            c.queue_per_peer = n;
        }
        if let Some(n) = self.peer_upload_bytes_per_sec {
            c.peer_upload_bytes_per_sec = n;
        }
        if let Some(n) = self.upload_bytes_per_sec {
            c.upload_bytes_per_sec = n;
        }
        if let Some(n) = self.tx_batch_ms {
            c.tx_batch_ms = n;
        }
        c
    }
}

/// `[sync]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// Most headers of a chain with less work than ours held in memory per peer (100 to
    /// 1,000,000; absent: 20,000).
    pub max_pending_headers: Option<usize>,
}

impl SyncSection {
    /// The node's sync settings.
    pub fn settings(&self) -> crate::sync::SyncSettings {
        let mut s = crate::sync::SyncSettings::default();
        if let Some(n) = self.max_pending_headers {
            s.max_pending_headers = n;
        }
        s
    }
}

/// `[network]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Where to accept peers (absent: the network's default; `listen = false` is not TOML, use
    /// `no_listen`).
    pub listen: Option<SocketAddr>,
    /// Accept no inbound connections.
    pub no_listen: bool,
    /// Seed peers, dialled beside those the node discovers.
    pub seeds: Vec<SocketAddr>,
    /// Outbound connections to keep (1 to 32; absent: 8).
    pub outbound: Option<u8>,
    /// Most bytes per second read from all peers together (absent or 0: unlimited; else at
    /// least 65536).
    pub max_download_bytes_per_sec: Option<u64>,
    /// Most bytes per second written to all peers together (absent or 0: unlimited; else at
    /// least 65536).
    pub max_upload_bytes_per_sec: Option<u64>,
    /// Addresses never banned: a misbehaving peer from one is only disconnected.
    pub trusted: Vec<std::net::IpAddr>,
    /// Trust every loopback address (absent: only with `--dev`).
    pub trust_loopback: Option<bool>,
}

impl NetworkSection {
    /// The bandwidth limits this section sets.
    pub fn bandwidth(&self) -> BandwidthLimits {
        BandwidthLimits::new(
            self.max_download_bytes_per_sec,
            self.max_upload_bytes_per_sec,
        )
    }
}

/// `[telemetry]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// Serve Prometheus metrics here (absent: no endpoint).
    pub metrics_addr: Option<SocketAddr>,
    /// Log format on stderr.
    pub log_format: LogFormat,
    /// Seconds between periodic status lines (a line is also printed per block).
    pub status_interval_s: u64,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        Self {
            metrics_addr: None,
            log_format: LogFormat::Plain,
            status_interval_s: 10,
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// `[mining]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiningSection {
    /// Mine blocks with the plots under `[plots]`.
    pub enabled: bool,
    /// The miner key file (relative paths are inside the data directory); created on first
    /// run in dev mode.
    pub key_file: PathBuf,
    /// Who the coinbase pays, by weight (empty: everything to the miner key).
    pub payees: Vec<Payee>,
    /// Coinbase extra data (at most 100 bytes).
    pub extra_data: String,
}

impl Default for MiningSection {
    fn default() -> Self {
        Self {
            enabled: false,
            key_file: PathBuf::from("miner.key"),
            payees: Vec::new(),
            extra_data: String::new(),
        }
    }
}

/// One share of the coinbase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payee {
    /// The recipient.
    pub address: spacetime::Address,
    /// Its weight among the payees.
    pub weight: u64,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read node configuration {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("node configuration {}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// A value is out of range.
    #[error("node configuration: {field} {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
}

impl NodeConfig {
    /// Parses a configuration from TOML text read from `path` (used in messages).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().replace('\n', " ").trim().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, ConfigError> {
        let text = match crate::textfile::read_text_limited(path, MAX_CONFIG_BYTES) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    error,
                });
            }
        };
        Self::from_toml(&text, path).map(Some)
    }

    /// Checks ranges serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(n) = self.network.outbound
            && !(1..=32).contains(&n)
        {
            return Err(ConfigError::Invalid {
                field: "network.outbound",
                message: format!("({n}) must be between 1 and 32"),
            });
        }
        for (field, rate) in [
            (
                "network.max_download_bytes_per_sec",
                self.network.max_download_bytes_per_sec,
            ),
            (
                "network.max_upload_bytes_per_sec",
                self.network.max_upload_bytes_per_sec,
            ),
            (
                "relay.peer_upload_bytes_per_sec",
                self.relay.peer_upload_bytes_per_sec,
            ),
            (
                "relay.upload_bytes_per_sec",
                self.relay.upload_bytes_per_sec,
            ),
        ] {
            if let Some(n) = rate
                && (1..MIN_RATE_BYTES_PER_SEC).contains(&n)
            {
                return Err(ConfigError::Invalid {
                    field,
                    message: format!(
                        "({n}) must be 0 (unlimited) or at least {MIN_RATE_BYTES_PER_SEC} bytes per second"
                    ),
                });
            }
        }
        if let Some(n) = self.sync.max_pending_headers
            && !(100..=1_000_000).contains(&n)
        {
            return Err(ConfigError::Invalid {
                field: "sync.max_pending_headers",
                message: format!("({n}) must be between 100 and 1000000"),
            });
        }
        let relay = &self.relay;
        for (field, value, range) in [
            (
                "relay.high_bandwidth_peers",
                relay.high_bandwidth_peers.map(|n| n as u64),
                0..=MAX_HIGH_BANDWIDTH_PEERS as u64,
            ),
            (
                "relay.queue_per_peer",
                relay.queue_per_peer.map(|n| n as u64),
                100..=1_000_000,
            ),
            ("relay.tx_batch_ms", relay.tx_batch_ms, 0..=10_000),
        ] {
            if let Some(n) = value
                && !range.contains(&n)
            {
                return Err(ConfigError::Invalid {
                    field,
                    message: format!(
                        "({n}) must be between {} and {}",
                        range.start(),
                        range.end()
                    ),
                });
            }
        }
        if !(1..=3600).contains(&self.telemetry.status_interval_s) {
            return Err(ConfigError::Invalid {
                field: "telemetry.status_interval_s",
                message: format!(
                    "({}) must be between 1 and 3600",
                    self.telemetry.status_interval_s
                ),
            });
        }
        let scan = &self.plots.scan;
        if scan.threads > MAX_SCAN_THREADS {
            return Err(ConfigError::Invalid {
                field: "plots.scan.threads",
                message: format!("({}) must be at most {MAX_SCAN_THREADS}", scan.threads),
            });
        }
        if scan.read_size > MAX_READ_SIZE {
            return Err(ConfigError::Invalid {
                field: "plots.scan.read_size",
                message: format!("({}) must be at most {MAX_READ_SIZE} bytes", scan.read_size),
            });
        }
        if self.mempool.replace_bump_percent > MAX_REPLACE_BUMP_PERCENT {
            return Err(ConfigError::Invalid {
                field: "mempool.replace_bump_percent",
                message: format!(
                    "({}) must be at most {MAX_REPLACE_BUMP_PERCENT}",
                    self.mempool.replace_bump_percent
                ),
            });
        }
        if self.mining.extra_data.len() > spacetime::limits::MAX_COINBASE_EXTRA_BYTES {
            return Err(ConfigError::Invalid {
                field: "mining.extra_data",
                message: format!(
                    "is {} bytes, at most {} are allowed",
                    self.mining.extra_data.len(),
                    spacetime::limits::MAX_COINBASE_EXTRA_BYTES
                ),
            });
        }
        if self.mining.payees.len() > spacetime::limits::MAX_COINBASE_OUTPUTS {
            return Err(ConfigError::Invalid {
                field: "mining.payees",
                message: format!(
                    "has {} entries, at most {} are allowed",
                    self.mining.payees.len(),
                    spacetime::limits::MAX_COINBASE_OUTPUTS
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default_and_fields_parse() {
        let p = Path::new("node.toml");
        assert_eq!(NodeConfig::from_toml("", p).unwrap(), NodeConfig::default());
        let c = NodeConfig::from_toml(
            r#"
[network]
listen = "127.0.0.1:19500"
seeds = ["127.0.0.1:19444"]
outbound = 4
[telemetry]
metrics_addr = "127.0.0.1:9898"
log_format = "json"
[mining]
enabled = true
extra_data = "pool"
payees = [{ address = "0101010101010101010101010101010101010101010101010101010101010101", weight = 3 }]
[plots]
dirs = ["/plots"]
"#,
            p,
        )
        .unwrap();
        assert_eq!(c.network.outbound, Some(4));
        assert_eq!(c.network.bandwidth(), BandwidthLimits::default());
        assert_eq!(c.telemetry.log_format, LogFormat::Json);
        assert!(c.mining.enabled);
        assert_eq!(c.mining.payees[0].weight, 3);
        assert_eq!(c.plots.dirs, vec![PathBuf::from("/plots")]);
    }

    #[test]
    fn bad_files_name_the_problem_in_one_line() {
        let p = Path::new("node.toml");
        for (text, needle) in [
            ("[network]\nlisten = 5\n", "listen"),
            ("[network]\nbogus = 1\n", "bogus"),
            ("[network]\noutbound = 0\n", "network.outbound"),
            (
                "[network]\nmax_download_bytes_per_sec = 65535\n",
                "network.max_download_bytes_per_sec",
            ),
            (
                "[network]\nmax_upload_bytes_per_sec = 1\n",
                "network.max_upload_bytes_per_sec",
            ),
            (
                "[network]\nmax_upload_bytes_per_sec = -1\n",
                "max_upload_bytes_per_sec",
            ),
            ("[telemetry]\nstatus_interval_s = 0\n", "status_interval_s"),
            ("[plots.scan]\nthreads = 100000\n", "plots.scan.threads"),
            (
                "[plots.scan]\nread_size = 18446744073709551615\n",
                "plots.scan.read_size",
            ),
            (
                "[mempool]\nreplace_bump_percent = 18446744073709551615\n",
                "replace_bump_percent",
            ),
            ("[mining]\nextra_data = \"", "node.toml"),
            ("[relay]\nblocks = \"flood\"\n", "blocks"),
            (
                "[relay]\nhigh_bandwidth_peers = 9\n",
                "relay.high_bandwidth_peers",
            ),
            ("[relay]\nqueue_per_peer = 10\n", "relay.queue_per_peer"),
            ("[relay]\ntx_batch_ms = 60000\n", "relay.tx_batch_ms"),
            (
                "[relay]\nupload_bytes_per_sec = 100\n",
                "relay.upload_bytes_per_sec",
            ),
        ] {
            let e = NodeConfig::from_toml(text, p).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let long = format!("[mining]\nextra_data = \"{}\"\n", "x".repeat(101));
        assert!(
            NodeConfig::from_toml(&long, p)
                .unwrap_err()
                .to_string()
                .contains("extra_data")
        );
    }

    #[test]
    fn relay_section_sets_the_relay_config() {
        let p = Path::new("node.toml");
        let c = NodeConfig::from_toml(
            r#"
[relay]
blocks = "announce"
high_bandwidth_peers = 3
compact_blocks = false
transactions = "announce"
queue_per_peer = 5000
peer_upload_bytes_per_sec = 0
upload_bytes_per_sec = 1000000
tx_batch_ms = 50
"#,
            p,
        )
        .unwrap();
        let r = c.relay.settings();
        assert_eq!(r.blocks, spacetime::relay::BlockRelay::Announce);
        assert_eq!(r.high_bandwidth_peers, 3);
        assert!(!r.compact_blocks);
        assert_eq!(r.txs, spacetime::relay::TxRelay::Announce);
        assert_eq!(r.queue_per_peer, 5000);
        assert_eq!(r.upload_bytes_per_sec, 1_000_000);
        assert_eq!(r.peer_upload_bytes_per_sec, 0);
        assert_eq!(r.tx_batch_ms, 50);
        assert_eq!(
            RelaySection::default().settings(),
            spacetime::relay::RelayConfig::default()
        );
    }

    #[test]
    fn bandwidth_limits_parse_with_zero_as_unlimited() {
        let p = Path::new("node.toml");
        let c = NodeConfig::from_toml(
            "[network]\nmax_download_bytes_per_sec = 65536\nmax_upload_bytes_per_sec = 0\n",
            p,
        )
        .unwrap();
        assert_eq!(c.network.max_download_bytes_per_sec, Some(65_536));
        assert_eq!(
            c.network.bandwidth(),
            BandwidthLimits {
                download_bytes_per_sec: Some(65_536),
                upload_bytes_per_sec: None,
            }
        );
        let c = NodeConfig::from_toml(
            "[network]\nmax_upload_bytes_per_sec = 18446744073709551615\n",
            p,
        )
        .unwrap();
        assert_eq!(c.network.bandwidth().upload_bytes_per_sec, Some(u64::MAX));
        let e = NodeConfig::from_toml("[network]\nmax_download_bytes_per_sec = 1000\n", p)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "node configuration: network.max_download_bytes_per_sec (1000) must be 0 \
             (unlimited) or at least 65536 bytes per second"
        );
    }
}
