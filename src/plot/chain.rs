//! A group's hash chain and mixing pass.
//!
//! ```text
//! x_0 = H("plot-chain", plot_id || g as u64 LE)
//! x_i = H("plot-chain", x_(i-1) || x_j(i))                        for i = 1..=G
//!       j(i) = i - 1 - (u64 LE of the first 8 bytes of x_(i-1)) mod min(i, W)
//! leaf_s = H("plot-leaf", x_s || x_(s XOR G/2) || x_G)            for s = 0..G
//! ```
//!
//! Every step needs the one before it and one of the `W` before it, chosen by the data
//! (as in scrypt and Argon2d), so a chain can only be resumed from `W` consecutive stored values
//! and cannot be split into independent lanes. Every leaf needs the end of the chain `x_G` and
//! pairs an early position with a late one, so one leaf costs at least `G/2` steps even to an
//! attacker who keeps `x_G`.

use super::{Leaf, PlotShape};
use crate::hash::{Hash, Hasher, tags};

/// `x_0 = H("plot-chain", plot_id || group as u64 LE)`.
pub fn chain_start(plot_id: &Hash, group: u64) -> Leaf {
    let mut h = Hasher::new(tags::PLOT_CHAIN);
    h.update(plot_id.as_bytes()).update(&group.to_le_bytes());
    h.finalize().0
}

/// `j(i)`: the earlier position step `i` reads besides `i - 1`.
#[inline]
pub fn back_reference(i: usize, prev: &Leaf, window: usize) -> usize {
    let mut r = [0u8; 8];
    r.copy_from_slice(&prev[..8]);
    let span = i.min(window.max(1)) as u64;
    let r = u64::from_le_bytes(r);
    // Same value as `r % span`; a mask when span is a power of two (the common case).
    let offset = if span.is_power_of_two() {
        r & (span - 1)
    } else {
        r % span
    };
    i - 1 - offset as usize
}

#[inline]
fn step(base: &Hasher, prev: &Leaf, back: &Leaf) -> Leaf {
    let mut h = base.clone();
    h.update(prev).update(back);
    h.finalize().0
}

#[inline]
fn mix(base: &Hasher, a: &Leaf, b: &Leaf, end: &Leaf) -> Leaf {
    let mut h = base.clone();
    h.update(a).update(b).update(end);
    h.finalize().0
}

/// A reusable buffer holding one group's chain `x_0..=x_G` (what a plotter keeps per thread).
#[derive(Debug, Clone, Default)]
pub struct GroupChain {
    values: Vec<Leaf>,
}

impl GroupChain {
    /// An empty chain buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Computes the chain of `group` of the plot `plot_id`.
    pub fn compute(&mut self, shape: &PlotShape, plot_id: &Hash, group: u64) {
        let g = shape.group_leaves() as usize;
        let w = shape.chain_window.max(1) as usize;
        self.values.clear();
        self.values.reserve(g + 1);
        self.values.push(chain_start(plot_id, group));
        let base = Hasher::new(tags::PLOT_CHAIN);
        for i in 1..=g {
            let prev = &self.values[i - 1];
            let back = &self.values[back_reference(i, prev, w)];
            let next = step(&base, prev, back);
            self.values.push(next);
        }
    }

    /// Leaf `scoop` of the computed chain; `scoop` must be below `G`.
    pub fn leaf(&self, scoop: usize) -> Leaf {
        leaf_from_chain(&self.values, scoop)
    }

    /// Writes all `G` leaves of the computed chain into `out` (of length `G`).
    pub fn leaves_into(&self, out: &mut [Leaf]) {
        let base = Hasher::new(tags::PLOT_LEAF);
        let g = self.values.len().saturating_sub(1);
        let end = self.values[g];
        let half = g / 2;
        for (s, slot) in out.iter_mut().enumerate().take(g) {
            *slot = mix(&base, &self.values[s], &self.values[s ^ half], &end);
        }
    }

    /// The chain values `x_0..=x_G`.
    pub fn values(&self) -> &[Leaf] {
        &self.values
    }
}

/// Leaf `scoop` from a full chain `x_0..=x_G` (`chain.len() == G + 1`, `scoop < G`).
pub fn leaf_from_chain(chain: &[Leaf], scoop: usize) -> Leaf {
    let g = chain.len() - 1;
    let base = Hasher::new(tags::PLOT_LEAF);
    mix(&base, &chain[scoop], &chain[scoop ^ (g / 2)], &chain[g])
}

/// All `G` leaves of a group (allocates; plotters reuse a [`GroupChain`] instead).
pub fn compute_group(shape: &PlotShape, plot_id: &Hash, group: u64) -> Vec<Leaf> {
    let mut chain = GroupChain::new();
    chain.compute(shape, plot_id, group);
    let mut out = vec![[0u8; 32]; shape.group_leaves() as usize];
    chain.leaves_into(&mut out);
    out
}

/// One leaf, as the verifier computes it: the whole chain in a ring buffer of `W` values,
/// keeping only the two positions the leaf needs, then one mixing hash.
pub fn compute_leaf(shape: &PlotShape, plot_id: &Hash, group: u64, scoop: u32) -> Leaf {
    let g = shape.group_leaves() as usize;
    let w = shape.chain_window.max(1) as usize;
    let s = scoop as usize & (g - 1);
    let pair = s ^ (g / 2);
    let x0 = chain_start(plot_id, group);
    // A ring of R >= W slots (R a power of two, so the index is a mask) holds the last R values.
    let slots = w.next_power_of_two();
    let mask = slots - 1;
    let mut ring = vec![[0u8; 32]; slots];
    ring[0] = x0;
    let mut at_s = x0;
    let mut at_pair = x0;
    let mut prev = x0;
    let base = Hasher::new(tags::PLOT_CHAIN);
    for i in 1..=g {
        // j >= i - W >= i - R, and slot j & mask is next overwritten at step j + R > i - 1.
        let back = ring[back_reference(i, &prev, w) & mask];
        let next = step(&base, &prev, &back);
        ring[i & mask] = next;
        prev = next;
        if i == s {
            at_s = next;
        }
        if i == pair {
            at_pair = next;
        }
    }
    mix(&Hasher::new(tags::PLOT_LEAF), &at_s, &at_pair, &prev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash;

    fn shape(log2: u8, w: u32) -> PlotShape {
        PlotShape {
            group_leaves_log2: log2,
            chain_window: w,
            buckets: 4,
        }
    }

    #[test]
    fn chain_matches_the_written_rule() {
        let s = shape(3, 2);
        let id = Hash([5; 32]);
        let mut c = GroupChain::new();
        c.compute(&s, &id, 7);
        let mut start = id.0.to_vec();
        start.extend_from_slice(&7u64.to_le_bytes());
        let mut x = vec![hash(tags::PLOT_CHAIN, &start).0];
        for i in 1..=8usize {
            let r = u64::from_le_bytes(x[i - 1][..8].try_into().unwrap());
            let j = i - 1 - (r % i.min(2) as u64) as usize;
            let back = x[j];
            let mut d = x[i - 1].to_vec();
            d.extend_from_slice(&back);
            x.push(hash(tags::PLOT_CHAIN, &d).0);
        }
        assert_eq!(c.values(), &x[..]);
        let leaves = compute_group(&s, &id, 7);
        for (sc, leaf) in leaves.iter().enumerate() {
            let mut d = x[sc].to_vec();
            d.extend_from_slice(&x[sc ^ 4]);
            d.extend_from_slice(&x[8]);
            assert_eq!(*leaf, hash(tags::PLOT_LEAF, &d).0, "scoop {sc}");
        }
    }

    #[test]
    fn single_leaf_equals_full_group() {
        for (log2, w) in [(1, 1), (3, 8), (6, 32), (6, 1), (7, 5)] {
            let s = shape(log2, w);
            let id = Hash([log2; 32]);
            let all = compute_group(&s, &id, 3);
            for (sc, leaf) in all.iter().enumerate() {
                assert_eq!(
                    *leaf,
                    compute_leaf(&s, &id, 3, sc as u32),
                    "{log2} {w} {sc}"
                );
            }
        }
    }

    #[test]
    fn back_reference_stays_in_the_window_and_spreads() {
        let mut seen = [0u32; 8];
        for k in 0..4000u32 {
            let prev = hash(b"t", &k.to_le_bytes()).0;
            for (i, w) in [(1usize, 8usize), (5, 8), (100, 8), (100, 1), (9, 100)] {
                let j = back_reference(i, &prev, w);
                assert!(j < i && j + i.min(w) >= i, "i {i} w {w} j {j}");
            }
            seen[100 - 1 - back_reference(100, &prev, 8)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 350), "{seen:?}");
    }

    #[test]
    fn groups_and_windows_differ() {
        let s = shape(6, 32);
        let id = Hash([1; 32]);
        let a = compute_group(&s, &id, 0);
        assert_ne!(a, compute_group(&s, &id, 1));
        assert_ne!(a, compute_group(&shape(6, 31), &id, 0));
        let mut sorted = a.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len(), "leaves of a group are distinct");
    }
}
