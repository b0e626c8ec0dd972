//! The genesis configuration: every consensus parameter of a network, as TOML.

use serde::{Deserialize, Serialize};

use crate::emission::{Emission, EmissionConfig};
use crate::limits::{MAX_CHECKPOINTS, MAX_NETWORK_NAME_BYTES, MAX_PREMINE_ALLOCATIONS};
use crate::{Address, Amount, Hash, Height, Target, TimestampMs};

/// Why a genesis configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The text is not valid TOML for this format (syntax, types, unknown or missing fields).
    #[error("invalid genesis config: {0}")]
    Parse(String),
    /// A field has a value the protocol cannot run with.
    #[error("invalid genesis config: `{field}` {reason}")]
    Invalid {
        /// Dotted path of the field, e.g. `network.epoch_ms`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No built-in network has this name.
    #[error("unknown network `{0}` (built-in networks: dev, testnet)")]
    UnknownNetwork(String),
}

/// A one-line description of a TOML error: the line number, the line itself, and the message.
fn parse_error(text: &str, e: &toml::de::Error) -> GenesisError {
    let message = e.message().trim();
    let Some(span) = e.span() else {
        return GenesisError::Parse(message.to_owned());
    };
    let start = span.start.min(text.len());
    let line_no = text.as_bytes()[..start]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    let shown: String = line.chars().take(80).collect();
    GenesisError::Parse(format!("line {line_no} (`{shown}`): {message}"))
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> GenesisError {
    GenesisError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A network's genesis configuration. Its hash is committed in the genesis block, so changing
/// any field makes a different network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisConfig {
    /// Identity and timing.
    pub network: NetworkParams,
    /// Fork choice and maturity rules.
    pub consensus: ConsensusParams,
    /// Difficulty adjustment.
    pub difficulty: DifficultyParams,
    /// Plot format and proof-of-space parameters.
    pub plot: PlotParams,
    /// Block reward schedule.
    pub emission: EmissionConfig,
    /// Coins that exist from genesis, spendable at once.
    #[serde(default)]
    pub premine: Vec<Allocation>,
    /// Known-good blocks; a chain that disagrees at a checkpoint height is refused.
    #[serde(default)]
    pub checkpoints: Vec<Checkpoint>,
}

/// Network identity and timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkParams {
    /// Short lowercase name (`dev`, `testnet`, ...).
    pub name: String,
    /// Start of epoch 0, in milliseconds since the Unix epoch.
    pub genesis_time_ms: TimestampMs,
    /// Length of an epoch in milliseconds; at most one block per epoch.
    pub epoch_ms: u64,
    /// The block interval the difficulty adjustment aims for; at least one epoch.
    pub target_block_time_ms: u64,
    /// How far ahead of the local clock a block's timestamp may be; less than one epoch, so a
    /// block can claim at most the epoch about to start.
    pub max_future_drift_ms: u64,
}

/// Fork choice and maturity rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    /// Deepest reorganisation a node accepts.
    pub max_reorg_depth: u64,
    /// Blocks before a coinbase credit becomes spendable.
    pub coinbase_maturity: u64,
}

/// The difficulty adjustment algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifficultyAlgorithm {
    /// ASERT (aserti3-2d style): exponential in the schedule error, anchored at block 1.
    Asert,
}

/// Difficulty adjustment parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DifficultyParams {
    /// The algorithm.
    pub algorithm: DifficultyAlgorithm,
    /// Target of the first blocks.
    pub initial_target: Target,
    /// Time ahead of (behind) schedule that halves (doubles) the target.
    pub half_life_ms: u64,
}

/// Plot parameters (see `docs/plots.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotParams {
    /// log2 of G, the number of 32-byte leaves a group yields.
    pub group_leaves_log2: u8,
    /// W: each step of a group's hash chain reads the step before it and one of the `W`
    /// steps before it, picked by the data.
    pub chain_window: u32,
    /// B: a challenge makes only one bucket of groups in B eligible.
    pub buckets: u32,
    /// Smallest plot, in groups.
    pub min_groups: u64,
    /// Largest plot, in groups.
    pub max_groups: u64,
}

/// Coins credited to an address at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// Recipient.
    pub address: Address,
    /// Amount in smallest units.
    pub amount: Amount,
}

/// A block every valid chain of the network contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Height of the block.
    pub height: Height,
    /// Its hash.
    pub hash: Hash,
}

/// Largest accepted genesis TOML text, so a huge file is refused before parsing.
pub const MAX_GENESIS_TOML_BYTES: usize = 4 * 1024 * 1024;

impl GenesisConfig {
    /// Parses and validates a TOML genesis configuration.
    pub fn from_toml_str(text: &str) -> Result<Self, GenesisError> {
        let config = Self::parse_toml(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses without validating, for callers that validate next ([`crate::Genesis::new`]
    /// does, compiling the emission schedule once).
    pub(crate) fn parse_toml(text: &str) -> Result<Self, GenesisError> {
        if text.len() > MAX_GENESIS_TOML_BYTES {
            return Err(GenesisError::Parse(format!(
                "{} bytes exceeds the limit of {MAX_GENESIS_TOML_BYTES}",
                text.len()
            )));
        }
        toml::from_str(text).map_err(|e| parse_error(text, &e))
    }

    /// The configuration as TOML text.
    pub fn to_toml_string(&self) -> String {
        match toml::to_string(self) {
            Ok(s) => s,
            Err(e) => unreachable!("genesis config always serializes to TOML: {e}"),
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), GenesisError> {
        self.compile_emission().map(|_| ())
    }

    /// Validates every field and returns the compiled emission schedule, so callers that need
    /// the schedule compile it once.
    pub fn compile_emission(&self) -> Result<Emission, GenesisError> {
        self.validate_network()?;
        self.validate_consensus()?;
        self.validate_plot()?;
        self.validate_premine()?;
        self.validate_checkpoints()?;
        self.validate_emission()
    }

    fn validate_network(&self) -> Result<(), GenesisError> {
        let n = &self.network;
        if n.name.is_empty() || n.name.len() > MAX_NETWORK_NAME_BYTES {
            return Err(invalid(
                "network.name",
                format!("must be 1 to {MAX_NETWORK_NAME_BYTES} bytes"),
            ));
        }
        if !n
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "network.name",
                "may contain only a-z, 0-9, '-' and '_'",
            ));
        }
        if n.epoch_ms == 0 {
            return Err(invalid("network.epoch_ms", "must be greater than zero"));
        }
        if n.target_block_time_ms < n.epoch_ms {
            return Err(invalid(
                "network.target_block_time_ms",
                format!(
                    "({}) must be at least one epoch ({} ms)",
                    n.target_block_time_ms, n.epoch_ms
                ),
            ));
        }
        // A drift of an epoch or more would let a block claim an epoch that has not started,
        // choosing among several future challenges and shutting out the epochs in between.
        if n.max_future_drift_ms >= n.epoch_ms {
            return Err(invalid(
                "network.max_future_drift_ms",
                format!(
                    "({}) must be less than one epoch ({} ms)",
                    n.max_future_drift_ms, n.epoch_ms
                ),
            ));
        }
        Ok(())
    }

    fn validate_consensus(&self) -> Result<(), GenesisError> {
        if self.consensus.max_reorg_depth == 0 {
            return Err(invalid("consensus.max_reorg_depth", "must be at least 1"));
        }
        let max_maturity = crate::limits::MAX_IMMATURE_CREDITS as u64;
        if self.consensus.coinbase_maturity > max_maturity {
            // An account holds at most one immature credit per height of the maturity window.
            return Err(invalid(
                "consensus.coinbase_maturity",
                format!("must be at most {max_maturity} blocks"),
            ));
        }
        let d = &self.difficulty;
        if d.initial_target == Target::ZERO {
            return Err(invalid(
                "difficulty.initial_target",
                "must be greater than zero",
            ));
        }
        if d.half_life_ms < self.network.target_block_time_ms {
            return Err(invalid(
                "difficulty.half_life_ms",
                "must be at least one target block time",
            ));
        }
        Ok(())
    }

    fn validate_plot(&self) -> Result<(), GenesisError> {
        let p = &self.plot;
        if !(1..=24).contains(&p.group_leaves_log2) {
            return Err(invalid(
                "plot.group_leaves_log2",
                "must be between 1 and 24",
            ));
        }
        if p.chain_window == 0 || u64::from(p.chain_window) > 1u64 << p.group_leaves_log2 {
            return Err(invalid(
                "plot.chain_window",
                "must be between 1 and the group size",
            ));
        }
        if p.buckets == 0 {
            return Err(invalid("plot.buckets", "must be at least 1"));
        }
        if p.min_groups == 0 || p.min_groups > p.max_groups {
            return Err(invalid(
                "plot.min_groups",
                "must be at least 1 and at most plot.max_groups",
            ));
        }
        Ok(())
    }

    /// Compiles the emission schedule, which checks every rule of `docs/emission.md`
    /// (ordering, ranges, floor, and that the supply fits in a u64 at every height).
    fn validate_emission(&self) -> Result<Emission, GenesisError> {
        let max = crate::limits::MAX_SCHEDULE_VERSIONS;
        if self.emission.schedules.len() > max {
            return Err(invalid(
                "emission.schedules",
                format!("has more than {max} versions"),
            ));
        }
        Emission::new(&self.emission, self.premine_total()).map_err(|e| invalid(e.field, e.reason))
    }

    fn validate_premine(&self) -> Result<(), GenesisError> {
        if self.premine.len() > MAX_PREMINE_ALLOCATIONS {
            return Err(invalid(
                "premine",
                format!("has more than {MAX_PREMINE_ALLOCATIONS} allocations"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut total = Amount::ZERO;
        for (i, a) in self.premine.iter().enumerate() {
            if a.amount == Amount::ZERO {
                return Err(invalid(
                    format!("premine[{i}].amount"),
                    "must be greater than zero",
                ));
            }
            if !seen.insert(a.address) {
                return Err(invalid(format!("premine[{i}].address"), "appears twice"));
            }
            total = total.checked_add(a.amount).ok_or_else(|| {
                invalid(
                    format!("premine[{i}].amount"),
                    "makes the premine total overflow",
                )
            })?;
        }
        if let Some(cap) = self.emission.cap
            && total > cap
        {
            return Err(invalid(
                "premine",
                format!("total {total} exceeds emission.cap {cap}"),
            ));
        }
        Ok(())
    }

    fn validate_checkpoints(&self) -> Result<(), GenesisError> {
        if self.checkpoints.len() > MAX_CHECKPOINTS {
            return Err(invalid(
                "checkpoints",
                format!("has more than {MAX_CHECKPOINTS} entries"),
            ));
        }
        let mut previous = 0;
        for (i, c) in self.checkpoints.iter().enumerate() {
            if c.height <= previous {
                return Err(invalid(
                    format!("checkpoints[{i}].height"),
                    "must be above 0 and above the previous checkpoint",
                ));
            }
            previous = c.height;
        }
        Ok(())
    }

    /// The premine total (validated configs never overflow).
    pub fn premine_total(&self) -> Amount {
        Amount::try_sum(self.premine.iter().map(|a| a.amount)).unwrap_or(Amount::MAX)
    }
}
