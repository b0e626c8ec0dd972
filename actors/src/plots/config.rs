//! Scanning configuration (the `[scan]` table the node configuration will embed).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The miner's plots: where they are, how they are read, how they are scanned (the `[plots]`
/// table of the node configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlotsConfig {
    /// Directories searched recursively for `*.plot` files.
    pub dirs: Vec<PathBuf>,
    /// Open plots with `O_DIRECT`: reads bypass the page cache.
    pub direct_io: bool,
    /// How often the plot manager looks for added and removed plots, in milliseconds.
    pub refresh_ms: u64,
    /// Scanning strategy and parameters.
    pub scan: ScanConfig,
}

/// How much of a challenge's region a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanStrategy {
    /// Read every eligible leaf: finds the plot's best score.
    Full,
    /// Read at most `sample_leaves` leaves per plot (for slow disks).
    Sampling,
    /// Per plot: full when the measured read rate allows it in the time left, else sampling
    /// sized to the time left.
    Adaptive,
}

/// Scanning parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// The strategy.
    pub strategy: ScanStrategy,
    /// Sampling: most leaves read per plot and challenge.
    pub sample_leaves: u64,
    /// Stop scanning (all plots) once a score meets the target.
    pub stop_on_win: bool,
    /// A scan gives up after this many milliseconds and reports what it read.
    pub timeout_ms: u64,
    /// Scanner threads; 0 means one per core.
    pub threads: usize,
    /// Largest single read in bytes (rounded to 4 KiB; reads are 4 KiB aligned).
    pub read_size: usize,
    /// Adaptive: the share of the time left (percent) that a plan may use.
    pub adaptive_margin_percent: u32,
    /// Adaptive: read rate (bytes/s) assumed for a plot before it is measured.
    pub assumed_read_rate: u64,
    /// Recompute a plot's best leaf from the rules when it meets the target, and drop it if
    /// the file disagrees (a damaged leaf must not become a block): one proof verification
    /// per winning plot.
    pub verify_best: bool,
}

impl Default for PlotsConfig {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            direct_io: false,
            refresh_ms: 60_000,
            scan: ScanConfig::default(),
        }
    }
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            strategy: ScanStrategy::Adaptive,
            sample_leaves: 1 << 16,
            stop_on_win: true,
            timeout_ms: 4_000,
            threads: 0,
            read_size: 1 << 20,
            adaptive_margin_percent: 80,
            assumed_read_rate: 100_000_000,
            verify_best: true,
        }
    }
}

impl ScanConfig {
    /// Threads to use: `threads`, or the number of cores when 0.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// The read size rounded to a whole number of 4 KiB pages (at least one).
    pub fn aligned_read_size(&self) -> usize {
        self.read_size.div_ceil(4096).max(1) * 4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_config_from_toml() {
        let c: PlotsConfig = toml::from_str(
            "dirs = [\"/a\", \"/b/c\"]\nrefresh_ms = 30000\n[scan]\nstrategy = \"full\"\n",
        )
        .unwrap();
        assert_eq!(c.dirs, vec![PathBuf::from("/a"), PathBuf::from("/b/c")]);
        assert_eq!(c.scan.strategy, ScanStrategy::Full);
        assert!(!c.direct_io);
        assert_eq!(PlotsConfig::default().refresh_ms, 60_000);
        assert!(toml::from_str::<PlotsConfig>("[scan]\nbogus = 1\n").is_err());
    }

    #[test]
    fn toml_round_trip_and_defaults() {
        let c: ScanConfig =
            toml::from_str("strategy = \"sampling\"\nsample_leaves = 10\n").unwrap();
        assert_eq!(c.strategy, ScanStrategy::Sampling);
        assert_eq!(c.sample_leaves, 10);
        assert_eq!(c.timeout_ms, ScanConfig::default().timeout_ms);
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<ScanConfig>(&text).unwrap(), c);
        assert!(toml::from_str::<ScanConfig>("strategy = \"fast\"").is_err());
        assert!(toml::from_str::<ScanConfig>("unknown = 1").is_err());
        assert_eq!(ScanConfig { read_size: 1, ..c }.aligned_read_size(), 4096);
    }
}
