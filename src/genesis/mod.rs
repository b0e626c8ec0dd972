//! Genesis: the configuration of a network, its built-in instances, and the genesis block.
//!
//! The genesis block is a pure function of the configuration. Its header's `challenge` field
//! holds the configuration hash, so the network id (the genesis block hash) commits to every
//! consensus parameter, premine and checkpoint: two nodes agree on the network id only if they
//! agree on all of them.

mod config;

pub use config::{
    Allocation, Checkpoint, ConsensusParams, DifficultyAlgorithm, DifficultyParams, GenesisConfig,
    GenesisError, MAX_GENESIS_TOML_BYTES, NetworkParams, PlotParams,
};
// The emission configuration types live in `crate::emission`; re-exported so their
// `genesis::` paths (part of the crate's public API) keep working.
pub use crate::emission::{EmissionConfig, Schedule, ScheduleVersion, TableRange};

use crate::block::{Block, BlockHeader, HEADER_VERSION, ProofOfSpace, UnsignedHeader, tx_root};
use crate::emission::Emission;
use crate::encoding::{BoundedBytes, BoundedVec, hash_encoded};
use crate::hash::{Hash, tags};
use crate::tx::{ChainId, Coinbase};
use crate::{PublicKey, Signature};

/// Names of the networks built into the binary.
pub const BUILTIN_NETWORKS: [&str; 2] = ["dev", "testnet"];

const DEV_TOML: &str = include_str!("../../networks/dev.toml");
const TESTNET_TOML: &str = include_str!("../../networks/testnet.toml");

impl GenesisConfig {
    /// The configuration of a built-in network (`dev` or `testnet`).
    pub fn builtin(name: &str) -> Result<Self, GenesisError> {
        match name {
            "dev" => Self::from_toml_str(DEV_TOML),
            "testnet" => Self::from_toml_str(TESTNET_TOML),
            other => Err(GenesisError::UnknownNetwork(other.to_owned())),
        }
    }

    /// The hash committing to every field of the configuration.
    pub fn config_hash(&self) -> Hash {
        hash_encoded(tags::GENESIS_CONFIG, self)
    }
}

/// A validated configuration with its genesis block and the identifiers derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// The configuration.
    pub config: GenesisConfig,
    /// Block 0.
    pub block: Block,
    /// The network id: the hash of block 0.
    pub network_id: Hash,
    /// The chain id transfers must carry.
    pub chain_id: ChainId,
    /// The compiled emission schedule.
    pub emission: Emission,
}

impl Genesis {
    /// Validates `config` and builds its genesis block.
    pub fn new(config: GenesisConfig) -> Result<Self, GenesisError> {
        let emission = config.compile_emission()?;
        let block = genesis_block(&config);
        let network_id = block.hash();
        let chain_id = ChainId::from_network_id(&network_id);
        Ok(Self {
            config,
            block,
            network_id,
            chain_id,
            emission,
        })
    }

    /// The genesis of a built-in network.
    pub fn builtin(name: &str) -> Result<Self, GenesisError> {
        match name {
            "dev" => Self::from_toml_str(DEV_TOML),
            "testnet" => Self::from_toml_str(TESTNET_TOML),
            other => Err(GenesisError::UnknownNetwork(other.to_owned())),
        }
    }

    /// Parses and validates a genesis configuration (validation and the emission schedule
    /// run once).
    pub fn from_toml_str(text: &str) -> Result<Self, GenesisError> {
        Self::new(GenesisConfig::parse_toml(text)?)
    }
}

/// Builds block 0 of the network described by `config`.
///
/// Fixed by rule, since no miner produces it: miner key, proof, score and signature are zero,
/// the state root is zero (the genesis state, the premine, is defined by the configuration the
/// header commits to), and the coinbase pays nothing and carries the network name.
pub fn genesis_block(config: &GenesisConfig) -> Block {
    let name = config.network.name.as_bytes();
    let extra = &name[..name
        .len()
        .min(BoundedBytes::<{ crate::limits::MAX_COINBASE_EXTRA_BYTES }>::BOUND)];
    let coinbase = Coinbase {
        height: 0,
        outputs: BoundedVec::new(),
        miner: PublicKey::ZERO,
        extra_data: BoundedBytes::try_from_slice(extra).unwrap_or_default(),
    };
    let unsigned = UnsignedHeader {
        version: HEADER_VERSION,
        height: 0,
        parent: Hash::ZERO,
        timestamp_ms: config.network.genesis_time_ms,
        epoch: 0,
        target: config.difficulty.initial_target,
        challenge: config.config_hash(),
        proof: ProofOfSpace::default(),
        score: Hash::ZERO,
        miner: PublicKey::ZERO,
        tx_root: tx_root(&coinbase, &[]),
        state_root: Hash::ZERO,
    };
    Block {
        header: BlockHeader {
            unsigned,
            signature: Signature::ZERO,
        },
        coinbase,
        transfers: BoundedVec::new(),
    }
}

#[cfg(test)]
mod tests;
