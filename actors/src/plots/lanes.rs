//! Plotting several groups at once: their chains advance in lockstep, one multi-lane BLAKE2b
//! call (`blake2b_simd::many`, AVX2 where available) per step, and the mixing pass hashes many
//! leaves per call. The output is exactly `spacetime::plot::compute_group`'s (tested).

use blake2b_simd::many::{HashManyJob, hash_many};
use spacetime::Hash;
use spacetime::hash::tags;
use spacetime::plot::{Leaf, PlotShape, back_reference, chain_start};

/// Groups computed in lockstep (AVX2 has four 64-bit lanes; eight keeps two batches in flight).
pub const LANES: usize = 8;
const STEP_PREFIX: usize = 1 + 10;
const STEP_INPUT: usize = STEP_PREFIX + 64;
const MIX_PREFIX: usize = 1 + 9;
const MIX_INPUT: usize = MIX_PREFIX + 96;
const MIX_BATCH: usize = 16;

fn params() -> blake2b_simd::Params {
    let mut p = blake2b_simd::Params::new();
    p.hash_length(32);
    p
}

fn to_leaf(job: &HashManyJob) -> Leaf {
    let mut leaf = [0u8; 32];
    leaf.copy_from_slice(job.to_hash().as_bytes());
    leaf
}

/// Reusable per-thread buffers for [`compute_groups`].
#[derive(Debug, Default)]
pub struct LaneBuffers {
    chains: Vec<Vec<Leaf>>,
}

/// Computes the leaves of `groups` into `out` (group-major: `G` leaves of the first group, then
/// the next...; `out.len() == groups.len() * G`), [`LANES`] groups per multi-lane pass.
pub fn compute_groups(
    shape: &PlotShape,
    plot_id: &Hash,
    groups: &[u64],
    bufs: &mut LaneBuffers,
    out: &mut [Leaf],
) {
    let g = shape.group_leaves() as usize;
    for (lanes, out) in groups.chunks(LANES).zip(out.chunks_mut(LANES * g)) {
        compute_lanes(shape, plot_id, lanes, bufs, out);
    }
}

/// [`compute_groups`] for at most [`LANES`] groups; the hash inputs and jobs live on the stack.
fn compute_lanes(
    shape: &PlotShape,
    plot_id: &Hash,
    groups: &[u64],
    bufs: &mut LaneBuffers,
    out: &mut [Leaf],
) {
    debug_assert!(groups.len() <= LANES);
    debug_assert_eq!(tags::PLOT_CHAIN.len(), 10);
    debug_assert_eq!(tags::PLOT_LEAF.len(), 9);
    let g = shape.group_leaves() as usize;
    let w = shape.chain_window.max(1) as usize;
    let n = groups.len();
    let params = params();
    bufs.chains.resize_with(n.max(bufs.chains.len()), Vec::new);
    for (chain, &group) in bufs.chains.iter_mut().zip(groups) {
        chain.clear();
        chain.reserve(g + 1);
        chain.push(chain_start(plot_id, group));
    }
    let chains = &mut bufs.chains[..n];
    let mut inputs = [[0u8; STEP_INPUT]; LANES];
    for input in &mut inputs[..n] {
        input[0] = 10;
        input[1..STEP_PREFIX].copy_from_slice(tags::PLOT_CHAIN);
    }
    for i in 1..=g {
        for (input, chain) in inputs[..n].iter_mut().zip(chains.iter()) {
            let prev = &chain[i - 1];
            input[STEP_PREFIX..STEP_PREFIX + 32].copy_from_slice(prev);
            input[STEP_PREFIX + 32..].copy_from_slice(&chain[back_reference(i, prev, w)]);
        }
        let mut jobs: [HashManyJob; LANES] =
            core::array::from_fn(|k| HashManyJob::new(&params, &inputs[k]));
        hash_many(jobs[..n].iter_mut());
        for (chain, job) in chains.iter_mut().zip(&jobs[..n]) {
            chain.push(to_leaf(job));
        }
    }
    let half = g / 2;
    let mut mix = [[0u8; MIX_INPUT]; MIX_BATCH];
    for input in &mut mix {
        input[0] = 9;
        input[1..MIX_PREFIX].copy_from_slice(tags::PLOT_LEAF);
    }
    for (chain, leaves) in chains.iter().zip(out.chunks_exact_mut(g)) {
        let end = chain[g];
        for (b, batch) in leaves.chunks_mut(MIX_BATCH).enumerate() {
            for (k, input) in mix.iter_mut().enumerate().take(batch.len()) {
                let s = b * MIX_BATCH + k;
                input[MIX_PREFIX..MIX_PREFIX + 32].copy_from_slice(&chain[s]);
                input[MIX_PREFIX + 32..MIX_PREFIX + 64].copy_from_slice(&chain[s ^ half]);
                input[MIX_PREFIX + 64..].copy_from_slice(&end);
            }
            let m = batch.len();
            let mut jobs: [HashManyJob; MIX_BATCH] =
                core::array::from_fn(|k| HashManyJob::new(&params, &mix[k]));
            hash_many(jobs[..m].iter_mut());
            for (slot, job) in batch.iter_mut().zip(&jobs[..m]) {
                *slot = to_leaf(job);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spacetime::plot::compute_group;

    #[test]
    fn lanes_equal_the_reference_rules() {
        let mut bufs = LaneBuffers::default();
        for (log2, w) in [(1u8, 1u32), (3, 2), (6, 64), (6, 5), (7, 128)] {
            let shape = PlotShape {
                group_leaves_log2: log2,
                chain_window: w,
                buckets: 3,
            };
            let id = Hash([log2; 32]);
            let g = shape.group_leaves() as usize;
            for groups in [
                &[0u64][..],
                &[5, 9, 1_000_000],
                &[1, 2, 3, 4, 5, 6, 7, 8],
                // More than one pass of LANES groups.
                &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            ] {
                let mut out = vec![[0u8; 32]; groups.len() * g];
                compute_groups(&shape, &id, groups, &mut bufs, &mut out);
                for (k, &grp) in groups.iter().enumerate() {
                    assert_eq!(
                        &out[k * g..(k + 1) * g],
                        &compute_group(&shape, &id, grp)[..],
                        "G=2^{log2} W={w} group {grp}"
                    );
                }
            }
        }
    }
}
