//! A plot held in memory: the real leaves of a small plot, for the simulator, tests and
//! benchmarks that mine without a disk.

use super::{Leaf, PlotShape, Scorer, compute_group, plot_id, select};
use crate::block::ProofOfSpace;
use crate::crypto::PublicKey;
use crate::genesis::PlotParams;
use crate::hash::Hash;

/// Every leaf of a plot of `groups` groups, computed with the plot rules and kept in RAM
/// (`groups * G * 32` bytes).
#[derive(Debug, Clone)]
pub struct MemoryPlot {
    shape: PlotShape,
    seed: Hash,
    id: Hash,
    groups: u64,
    leaves: Vec<Leaf>,
}

impl MemoryPlot {
    /// Computes the plot of `miner` with `seed` and `groups` groups.
    pub fn new(params: &PlotParams, miner: &PublicKey, seed: Hash, groups: u64) -> Self {
        let shape = PlotShape::from(params);
        let id = plot_id(&shape, miner, &seed);
        let per_group = shape.group_leaves() as usize;
        let mut leaves = Vec::with_capacity(groups as usize * per_group);
        for g in 0..groups {
            leaves.extend_from_slice(&compute_group(&shape, &id, g));
        }
        Self {
            shape,
            seed,
            id,
            groups,
            leaves,
        }
    }

    /// The plot id.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// The plot seed.
    pub fn seed(&self) -> Hash {
        self.seed
    }

    /// Number of groups.
    pub fn groups(&self) -> u64 {
        self.groups
    }

    /// The best (lowest-score) proof this plot holds for `challenge`, with its score: the
    /// challenge's scoop of every group in the eligible bucket.
    pub fn best_proof(&self, challenge: &Hash) -> Option<(ProofOfSpace, Hash)> {
        let sel = select(&self.shape, challenge, &self.id);
        let scorer = Scorer::new(challenge);
        let g_leaves = self.shape.group_leaves();
        let step = u64::from(self.shape.buckets.max(1));
        (u64::from(sel.bucket)..self.groups)
            .step_by(step as usize)
            .map(|g| {
                let leaf = &self.leaves[(g * g_leaves + u64::from(sel.scoop)) as usize];
                (g, scorer.score(leaf))
            })
            .min_by_key(|(_, s)| *s)
            .map(|(group, score)| {
                (
                    ProofOfSpace {
                        plot_seed: self.seed,
                        group,
                    },
                    score,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::proof_score;

    #[test]
    fn best_proof_verifies_and_is_the_minimum() {
        let params = crate::GenesisConfig::builtin("dev").unwrap().plot;
        let miner = PublicKey([5; 32]);
        let plot = MemoryPlot::new(&params, &miner, Hash([1; 32]), 32);
        for i in 0..20u8 {
            let challenge = Hash([i; 32]);
            let (proof, score) = plot.best_proof(&challenge).unwrap();
            assert_eq!(proof_score(&params, &miner, &challenge, &proof), Ok(score));
            // No eligible group scores lower.
            for g in 0..32 {
                let other = ProofOfSpace {
                    plot_seed: plot.seed(),
                    group: g,
                };
                if let Ok(s) = proof_score(&params, &miner, &challenge, &other) {
                    assert!(s >= score);
                }
            }
        }
    }
}
