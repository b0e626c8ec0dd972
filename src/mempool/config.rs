//! Mempool policy: sizes, fees, replacement, expiry. Local policy, not consensus.

use crate::Amount;

/// Mempool policy, embedded in the node's TOML configuration as `[mempool]`.
///
/// Every field has a default, so `[mempool]` may name only the fields it changes; unknown fields
/// are refused so that a misspelt option is reported instead of silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Most encoded transfer bytes the pool holds; above it the lowest fee rates are evicted.
    pub max_bytes: usize,
    /// Smallest fee a transfer must pay, in smallest units.
    pub min_fee: Amount,
    /// How much more fee (in percent of the old fee) a replacement of the same sender and nonce
    /// must pay; it must also pay strictly more.
    pub replace_bump_percent: u64,
    /// A transfer that has waited longer than this (milliseconds) is dropped with the sender's
    /// later transfers.
    pub expiry_ms: u64,
    /// Most transfers queued for one sender (consecutive nonces from its account nonce).
    pub max_per_sender: usize,
}

impl MempoolConfig {
    /// Default of [`MempoolConfig::max_bytes`]: 64 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
    /// Default of [`MempoolConfig::min_fee`]: one unit.
    pub const DEFAULT_MIN_FEE: Amount = Amount(1);
    /// Default of [`MempoolConfig::replace_bump_percent`]: 10 %.
    pub const DEFAULT_REPLACE_BUMP_PERCENT: u64 = 10;
    /// Default of [`MempoolConfig::expiry_ms`]: six hours.
    pub const DEFAULT_EXPIRY_MS: u64 = 6 * 60 * 60 * 1000;
    /// Default of [`MempoolConfig::max_per_sender`]: 64 queued nonces.
    pub const DEFAULT_MAX_PER_SENDER: usize = 64;
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            min_fee: Self::DEFAULT_MIN_FEE,
            replace_bump_percent: Self::DEFAULT_REPLACE_BUMP_PERCENT,
            expiry_ms: Self::DEFAULT_EXPIRY_MS,
            max_per_sender: Self::DEFAULT_MAX_PER_SENDER,
        }
    }
}
