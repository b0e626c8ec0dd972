//! Proof of space: plot identity, group chains, challenge selection, scores, proofs, and the
//! plot file format. The rules and their parameters are explained in `docs/plots.md`.
//!
//! A plot of `N` groups belongs to a miner key and a seed. Group `g` yields `G` leaves of 32
//! bytes from one hash chain (each step depending on the previous step and the step `W` back)
//! followed by a mixing pass. A challenge picks a scoop in `[0, G)` and a bucket in `[0, B)` per
//! plot; groups with `g mod B == bucket` are eligible and only their leaf at the scoop is read.

mod chain;
mod format;
mod memory;
mod verify;

pub use chain::{
    GroupChain, back_reference, chain_start, compute_group, compute_leaf, leaf_from_chain,
};
pub use format::{
    DATA_ALIGN, HEADER_FIXED_BYTES, HeaderError, MAX_SEGMENTS, PLOT_FORMAT_VERSION, PLOT_MAGIC,
    PlotHeader, PlotLayout, Run, Segment, segment_checksum, segment_hasher,
};
pub use memory::MemoryPlot;
pub use verify::{ProofError, proof_score, verify_proof};

use crate::crypto::PublicKey;
use crate::genesis::PlotParams;
use crate::hash::{Hash, Hasher, tags};

/// Bytes in one leaf.
pub const LEAF_BYTES: usize = 32;

/// A leaf: 32 bytes of a group.
pub type Leaf = [u8; LEAF_BYTES];

/// The parameters that shape a plot's content (the genesis `PlotParams` without the size
/// bounds). A plot file records them; a plot is valid on every network with the same shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlotShape {
    /// log2 of `G`, the leaves per group.
    pub group_leaves_log2: u8,
    /// `W`: each chain step depends on the step `W` positions back.
    pub chain_window: u32,
    /// `B`: the number of buckets.
    pub buckets: u32,
}

impl From<&PlotParams> for PlotShape {
    fn from(p: &PlotParams) -> Self {
        Self {
            group_leaves_log2: p.group_leaves_log2,
            chain_window: p.chain_window,
            buckets: p.buckets,
        }
    }
}

impl PlotShape {
    /// `G`: leaves per group.
    pub const fn group_leaves(&self) -> u64 {
        1u64 << self.group_leaves_log2
    }

    /// Bytes of one group's leaves (`G * 32`).
    pub const fn group_bytes(&self) -> u64 {
        self.group_leaves() * LEAF_BYTES as u64
    }

    /// True when the shape satisfies the same bounds as the genesis validation.
    pub fn is_valid(&self) -> bool {
        (1..=24).contains(&self.group_leaves_log2)
            && self.chain_window >= 1
            && u64::from(self.chain_window) <= self.group_leaves()
            && self.buckets >= 1
    }
}

/// `plot_id = H("plot-id", miner || seed || G_log2 (1 byte) || W (u32 LE) || B (u32 LE))`.
pub fn plot_id(shape: &PlotShape, miner: &PublicKey, seed: &Hash) -> Hash {
    let mut h = Hasher::new(tags::PLOT_ID);
    h.update(miner.as_bytes())
        .update(seed.as_bytes())
        .update(&[shape.group_leaves_log2])
        .update(&shape.chain_window.to_le_bytes())
        .update(&shape.buckets.to_le_bytes());
    h.finalize()
}

/// What a challenge selects in one plot: the scoop read in each eligible group, and the
/// bucket of eligible groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selection {
    /// Leaf index in `[0, G)`.
    pub scoop: u32,
    /// Bucket in `[0, B)`: groups with `g mod B == bucket` are eligible.
    pub bucket: u32,
}

/// `h = H("scoop", challenge || plot_id)`; scoop = first 8 bytes of `h` (u64 LE) mod `G`,
/// bucket = next 8 bytes (u64 LE) mod `B`.
pub fn select(shape: &PlotShape, challenge: &Hash, plot_id: &Hash) -> Selection {
    let mut hasher = Hasher::new(tags::SCOOP);
    hasher
        .update(challenge.as_bytes())
        .update(plot_id.as_bytes());
    let h = hasher.finalize();
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&h.0[0..8]);
    b.copy_from_slice(&h.0[8..16]);
    let scoop = u64::from_le_bytes(a) & (shape.group_leaves() - 1);
    let bucket = u64::from_le_bytes(b) % u64::from(shape.buckets.max(1));
    // Both fit: scoop < 2^24 and bucket < B <= u32::MAX.
    Selection {
        scoop: scoop as u32,
        bucket: bucket as u32,
    }
}

/// The bucket of group `g`: `g mod B`.
pub fn group_bucket(shape: &PlotShape, group: u64) -> u32 {
    (group % u64::from(shape.buckets.max(1))) as u32
}

/// `score = H("score", challenge || leaf)`, compared with the target as a big-endian integer.
pub fn score(challenge: &Hash, leaf: &Leaf) -> Hash {
    let mut h = Hasher::new(tags::SCORE);
    h.update(challenge.as_bytes()).update(leaf);
    h.finalize()
}

/// Scores many leaves against one challenge: the tag and challenge are absorbed once.
#[derive(Clone)]
pub struct Scorer(Hasher);

impl Scorer {
    /// A scorer for `challenge`.
    pub fn new(challenge: &Hash) -> Self {
        let mut h = Hasher::new(tags::SCORE);
        h.update(challenge.as_bytes());
        Self(h)
    }

    /// `score(challenge, leaf)`.
    pub fn score(&self, leaf: &Leaf) -> Hash {
        let mut h = self.0.clone();
        h.update(leaf);
        h.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn dev_shape() -> PlotShape {
        PlotShape {
            group_leaves_log2: 6,
            chain_window: 32,
            buckets: 4,
        }
    }

    #[test]
    fn plot_id_binds_every_input() {
        let s = dev_shape();
        let k = PublicKey([1; 32]);
        let seed = Hash([2; 32]);
        let base = plot_id(&s, &k, &seed);
        assert_ne!(base, plot_id(&s, &PublicKey([3; 32]), &seed));
        assert_ne!(base, plot_id(&s, &k, &Hash([3; 32])));
        for other in [
            PlotShape {
                group_leaves_log2: 7,
                ..s
            },
            PlotShape {
                chain_window: 31,
                ..s
            },
            PlotShape { buckets: 5, ..s },
        ] {
            assert_ne!(base, plot_id(&other, &k, &seed));
        }
    }

    #[test]
    fn selection_is_in_range_and_spread() {
        let s = PlotShape {
            group_leaves_log2: 6,
            chain_window: 32,
            buckets: 5,
        };
        let id = Hash([9; 32]);
        let mut scoops = [0u32; 64];
        let mut buckets = [0u32; 5];
        for i in 0..2000u32 {
            let mut c = [0u8; 32];
            c[..4].copy_from_slice(&i.to_le_bytes());
            let sel = select(&s, &Hash(c), &id);
            scoops[sel.scoop as usize] += 1;
            buckets[sel.bucket as usize] += 1;
        }
        assert!(scoops.iter().all(|&n| n > 5), "{scoops:?}");
        assert!(buckets.iter().all(|&n| n > 300), "{buckets:?}");
    }

    #[test]
    fn score_depends_on_challenge_and_leaf() {
        let a = score(&Hash([1; 32]), &[2; 32]);
        assert_ne!(a, score(&Hash([1; 32]), &[3; 32]));
        assert_ne!(a, score(&Hash([4; 32]), &[2; 32]));
        let mut data = [0u8; 64];
        data[..32].copy_from_slice(&[1; 32]);
        data[32..].copy_from_slice(&[2; 32]);
        assert_eq!(a, crate::hash::hash(tags::SCORE, &data));
        assert_eq!(Scorer::new(&Hash([1; 32])).score(&[2; 32]), a);
    }

    #[test]
    fn bucket_is_group_mod_b() {
        let s = PlotShape {
            buckets: 50,
            ..dev_shape()
        };
        assert_eq!(group_bucket(&s, 0), 0);
        assert_eq!(group_bucket(&s, 51), 1);
        assert_eq!(group_bucket(&s, u64::MAX), (u64::MAX % 50) as u32);
    }

    #[test]
    fn shape_validity() {
        assert!(dev_shape().is_valid());
        assert!(
            !PlotShape {
                chain_window: 65,
                ..dev_shape()
            }
            .is_valid()
        );
        assert!(
            !PlotShape {
                buckets: 0,
                ..dev_shape()
            }
            .is_valid()
        );
        assert!(
            !PlotShape {
                group_leaves_log2: 0,
                ..dev_shape()
            }
            .is_valid()
        );
    }
}
