//! A solo miner over in-memory plots: mines blocks on a [`Chain`] without a disk or a clock.
//! The simulator, tests and benchmarks build chains with it.

use super::Chain;
use super::builder::{BlockDraft, BuildError, MiningContext};
use crate::block::{Block, ProofOfSpace};
use crate::crypto::{Address, Keypair};
use crate::genesis::PlotParams;
use crate::hash::Hash;
use crate::plot::MemoryPlot;
use crate::tx::Transfer;
use crate::{Epoch, NodeRng};

/// Most epochs [`SoloMiner::find_win`] tries before giving up.
pub const MAX_SEARCH_EPOCHS: u64 = 100_000;

/// A miner key with plots in memory.
#[derive(Debug)]
pub struct SoloMiner {
    key: Keypair,
    plots: Vec<MemoryPlot>,
}

impl SoloMiner {
    /// A miner with `plots` plots of `groups` groups each, their seeds derived from the key.
    pub fn new(params: &PlotParams, key: Keypair, plots: usize, groups: u64) -> Self {
        let miner = key.public();
        let plots = (0..plots as u64)
            .map(|i| {
                // Any seed works; this one is distinct per plot and reproducible.
                let mut seed = miner.0;
                for (s, b) in seed.iter_mut().zip(i.to_le_bytes()) {
                    *s ^= b;
                }
                let seed = Hash(seed);
                MemoryPlot::new(params, &miner, seed, groups)
            })
            .collect();
        Self { key, plots }
    }

    /// The miner key.
    pub fn key(&self) -> &Keypair {
        &self.key
    }

    /// The miner's address.
    pub fn address(&self) -> Address {
        self.key.public()
    }

    /// The best proof of all plots for `challenge`.
    pub fn best_proof(&self, challenge: &Hash) -> Option<(ProofOfSpace, Hash)> {
        self.plots
            .iter()
            .filter_map(|p| p.best_proof(challenge))
            .min_by_key(|(_, score)| *score)
    }

    /// The first epoch from `from` on (and after the parent's) in which this miner wins on
    /// `parent`, with the proof; `None` after [`MAX_SEARCH_EPOCHS`] epochs without a win.
    pub fn find_win(
        &self,
        chain: &Chain,
        parent: &Hash,
        from: Epoch,
    ) -> Option<(MiningContext, ProofOfSpace, Hash)> {
        let parent_epoch = chain.index().get(parent)?.epoch;
        let first = from.max(parent_epoch.checked_add(1)?);
        (first..first.saturating_add(MAX_SEARCH_EPOCHS)).find_map(|epoch| {
            let ctx = chain.mining_context(parent, epoch)?;
            let (proof, score) = self.best_proof(&ctx.challenge)?;
            ctx.target.is_met_by(&score).then_some((ctx, proof, score))
        })
    }

    /// Mines the next block on the tip with `transfers`, in the first winning epoch after the
    /// tip's, stamped with the earliest timestamp the rules allow.
    pub fn mine_next(&self, chain: &Chain, transfers: Vec<Transfer>) -> Result<Block, BuildError> {
        let tip = chain.tip().hash;
        let Some((context, proof, score)) = self.find_win(chain, &tip, 0) else {
            return Err(BuildError::Limit(
                "no winning proof within the search window",
            ));
        };
        chain.build_block(
            BlockDraft {
                context,
                timestamp_ms: context.min_timestamp_ms,
                proof,
                score,
                transfers,
                payees: Vec::new(),
                extra_data: Vec::new(),
            },
            &self.key,
            // Reproducible signatures: a witness stream per parent, from the key.
            &mut NodeRng::from_seed(self.key.seed()).derive(&tip.to_string()),
        )
    }
}
