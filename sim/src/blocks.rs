//! Pre-mined chains for scenarios: blocks mined outside virtual time by a [`SoloMiner`] on an
//! in-memory chain, to preload into nodes ([`Sim::preload`](crate::Sim::preload)) or to hand to
//! a rogue peer ([`RogueSpec`](crate::RogueSpec)).
//!
//! A chain is a pure function of the genesis and the seed: the miner key is derived from the
//! seed and signatures are reproducible. Blocks are mined at successive winning epochs from the
//! genesis time (each stamped with the earliest timestamp its epoch allows), so a chain of `n`
//! dev blocks spans about `2n` seconds after genesis: start the simulation after its last
//! timestamp ([`Sim::starting_at`](crate::Sim::starting_at), [`after_tip_ms`]).

use spacetime::chain::{
    BuildError, Chain, ChainError, ChainStorage, ImportStatus, MemoryDisk, SoloMiner,
};
use spacetime::target::Work;
use spacetime::{Block, Genesis, Keypair, NodeRng};

/// Plots of the miner that mines pre-mined chains.
const PLOTS: usize = 1;
/// Groups per plot (the size the chain's own tests mine with).
const GROUPS: u64 = 64;
/// The import time: far enough ahead that the drift rule never refuses a mined block.
const FAR_FUTURE_MS: u64 = u64::MAX / 2;

/// Why a chain could not be mined.
#[derive(Debug, thiserror::Error)]
pub enum MineError {
    /// The in-memory chain could not be opened.
    #[error("cannot open the in-memory chain: {0}")]
    Open(#[from] ChainError),
    /// A block of the base did not extend the chain built so far.
    #[error("base block {index} does not extend the chain: {detail}")]
    Base {
        /// Its position in the base.
        index: usize,
        /// What the import did instead.
        detail: String,
    },
    /// No block could be built on the tip.
    #[error("cannot mine block {height}: {source}")]
    Build {
        /// The height it would have had.
        height: u64,
        /// Why.
        source: BuildError,
    },
    /// A mined block did not import (a bug of the miner or the rules).
    #[error("mined block {height} does not import: {detail}")]
    Import {
        /// Its height.
        height: u64,
        /// What the import did instead.
        detail: String,
    },
}

/// The miner of `seed`: its key is derived from the seed, never from the OS.
pub fn miner_for(genesis: &Genesis, seed: u64) -> SoloMiner {
    let key_seed = NodeRng::from_u64(seed).derive("sim-chain-miner").bytes32();
    SoloMiner::new(
        &genesis.config.plot,
        Keypair::from_seed(&key_seed),
        PLOTS,
        GROUPS,
    )
}

/// Mines `n` valid blocks on `genesis` (heights 1..=n), deterministically for `seed`.
pub fn mine_chain(genesis: &Genesis, n: u64, seed: u64) -> Result<Vec<Block>, MineError> {
    extend_chain(genesis, &[], n, seed)
}

/// Mines `n` blocks on top of `base` (blocks after genesis, in order) and returns only the new
/// ones. A fork: pass a prefix of another chain and a different seed.
pub fn extend_chain(
    genesis: &Genesis,
    base: &[Block],
    n: u64,
    seed: u64,
) -> Result<Vec<Block>, MineError> {
    let mut chain = memory_chain(genesis)?;
    for (index, block) in base.iter().enumerate() {
        extend(&mut chain, block).map_err(|detail| MineError::Base { index, detail })?;
    }
    let miner = miner_for(genesis, seed);
    let mut out = Vec::new();
    for _ in 0..n {
        let height = chain.height().saturating_add(1);
        let block = miner
            .mine_next(&chain, Vec::new())
            .map_err(|source| MineError::Build { height, source })?;
        extend(&mut chain, &block).map_err(|detail| MineError::Import { height, detail })?;
        out.push(block);
    }
    Ok(out)
}

/// A fresh chain of `genesis` on a memory disk of its own.
pub fn memory_chain(genesis: &Genesis) -> Result<Chain, ChainError> {
    Chain::open_on(
        ChainStorage::Memory(MemoryDisk::new("sim-mined")),
        genesis.clone(),
    )
}

/// Cumulative work of `blocks` (a chain after genesis, whose own work is zero).
pub fn chain_work(blocks: &[Block]) -> Work {
    blocks
        .iter()
        .fold(Work::ZERO, |w, b| w.saturating_add(&b.header.target.work()))
}

/// A Unix time one minute after the last block of `blocks` (the genesis time for none): a
/// start time for [`Sim::starting_at`](crate::Sim::starting_at) at which the whole chain lies
/// in the past.
pub fn after_tip_ms(genesis: &Genesis, blocks: &[Block]) -> u64 {
    blocks
        .last()
        .map_or(genesis.config.network.genesis_time_ms, |b| {
            b.header.timestamp_ms
        })
        .saturating_add(60_000)
}

/// Imports `block`, which must become the new tip; otherwise says what happened instead.
fn extend(chain: &mut Chain, block: &Block) -> Result<(), String> {
    match chain.import(block.clone(), FAR_FUTURE_MS) {
        Ok(i) if i.status == ImportStatus::Extended => Ok(()),
        Ok(i) => Err(format!("{:?}", i.status)),
        Err(e) => Err(e.to_string()),
    }
}
