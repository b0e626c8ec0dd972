//! Proof verification: recompute the one leaf a proof names and its score.

use super::{PlotShape, compute_leaf, group_bucket, plot_id, score, select};
use crate::block::ProofOfSpace;
use crate::crypto::PublicKey;
use crate::genesis::PlotParams;
use crate::hash::Hash;
use crate::target::Target;

/// Why a proof of space is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The group index is beyond the largest plot the network allows.
    #[error("proof group {group} is out of range (plots hold fewer than {max} groups)")]
    GroupOutOfRange {
        /// The claimed group.
        group: u64,
        /// `max_groups` of the network.
        max: u64,
    },
    /// The group is not in the bucket the challenge made eligible for this plot.
    #[error(
        "proof group {group} is in bucket {group_bucket}, the challenge selects bucket {eligible}"
    )]
    WrongBucket {
        /// The claimed group.
        group: u64,
        /// Its bucket.
        group_bucket: u32,
        /// The bucket the challenge selects.
        eligible: u32,
    },
    /// The header's score is not the score of the proof's leaf.
    #[error("score mismatch: header has {claimed}, the proof gives {computed}")]
    ScoreMismatch {
        /// Score in the header.
        claimed: Hash,
        /// Score recomputed from the proof.
        computed: Hash,
    },
    /// The score does not meet the target.
    #[error("score {score} does not meet target {target}")]
    TargetNotMet {
        /// The proof's score.
        score: Hash,
        /// The target.
        target: Target,
    },
}

/// The score of a proof, after the checks that need no chain (range, bucket).
///
/// Cost: three hashes plus one group chain (`G` steps) and one mixing hash; the chain is kept
/// in a ring buffer of `W` values.
pub fn proof_score(
    params: &PlotParams,
    miner: &PublicKey,
    challenge: &Hash,
    proof: &ProofOfSpace,
) -> Result<Hash, ProofError> {
    if proof.group >= params.max_groups {
        return Err(ProofError::GroupOutOfRange {
            group: proof.group,
            max: params.max_groups,
        });
    }
    let shape = PlotShape::from(params);
    let id = plot_id(&shape, miner, &proof.plot_seed);
    let sel = select(&shape, challenge, &id);
    let bucket = group_bucket(&shape, proof.group);
    if bucket != sel.bucket {
        return Err(ProofError::WrongBucket {
            group: proof.group,
            group_bucket: bucket,
            eligible: sel.bucket,
        });
    }
    let leaf = compute_leaf(&shape, &id, proof.group, sel.scoop);
    Ok(score(challenge, &leaf))
}

/// Verifies a header's proof: the proof's score must equal `claimed_score` and meet `target`.
pub fn verify_proof(
    params: &PlotParams,
    miner: &PublicKey,
    challenge: &Hash,
    proof: &ProofOfSpace,
    claimed_score: &Hash,
    target: &Target,
) -> Result<(), ProofError> {
    let computed = proof_score(params, miner, challenge, proof)?;
    if computed != *claimed_score {
        return Err(ProofError::ScoreMismatch {
            claimed: *claimed_score,
            computed,
        });
    }
    if !target.is_met_by(&computed) {
        return Err(ProofError::TargetNotMet {
            score: computed,
            target: *target,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::{compute_group, group_bucket};

    fn params() -> PlotParams {
        PlotParams {
            group_leaves_log2: 6,
            chain_window: 32,
            buckets: 4,
            min_groups: 16,
            max_groups: 1 << 32,
        }
    }

    /// The best eligible group of a small in-memory plot, as a miner would find it.
    fn best(p: &PlotParams, miner: &PublicKey, seed: &Hash, challenge: &Hash) -> (u64, Hash) {
        let shape = PlotShape::from(p);
        let id = plot_id(&shape, miner, seed);
        let sel = select(&shape, challenge, &id);
        (0..64u64)
            .filter(|g| group_bucket(&shape, *g) == sel.bucket)
            .map(|g| {
                let leaves = compute_group(&shape, &id, g);
                (g, score(challenge, &leaves[sel.scoop as usize]))
            })
            .min_by_key(|(_, s)| *s)
            .unwrap()
    }

    #[test]
    fn honest_proof_verifies_and_every_tampered_field_fails() {
        let p = params();
        let miner = PublicKey([7; 32]);
        let seed = Hash([8; 32]);
        let challenge = Hash([9; 32]);
        let (group, sc) = best(&p, &miner, &seed, &challenge);
        let proof = ProofOfSpace {
            plot_seed: seed,
            group,
        };
        verify_proof(&p, &miner, &challenge, &proof, &sc, &Target::MAX).unwrap();

        // Target just at the score: not met (strictly below wins).
        let at = Target(sc.0);
        assert!(matches!(
            verify_proof(&p, &miner, &challenge, &proof, &sc, &at),
            Err(ProofError::TargetNotMet { .. })
        ));
        // Wrong claimed score.
        let mut bad = sc;
        bad.0[31] ^= 1;
        assert!(matches!(
            verify_proof(&p, &miner, &challenge, &proof, &bad, &Target::MAX),
            Err(ProofError::ScoreMismatch { .. })
        ));
        // Another group of the same bucket: different leaf, different score.
        let other = ProofOfSpace {
            group: group + 4,
            ..proof
        };
        assert!(matches!(
            verify_proof(&p, &miner, &challenge, &other, &sc, &Target::MAX),
            Err(ProofError::ScoreMismatch { .. })
        ));
        // A group of another bucket.
        let wrong_bucket = ProofOfSpace {
            group: group + 1,
            ..proof
        };
        assert!(matches!(
            verify_proof(&p, &miner, &challenge, &wrong_bucket, &sc, &Target::MAX),
            Err(ProofError::WrongBucket { .. })
        ));
        // Out of range.
        let far = ProofOfSpace {
            group: p.max_groups,
            ..proof
        };
        assert!(matches!(
            verify_proof(&p, &miner, &challenge, &far, &sc, &Target::MAX),
            Err(ProofError::GroupOutOfRange { .. })
        ));
        // Another seed, miner or challenge: the selection or the leaf changes.
        let reseeded = ProofOfSpace {
            plot_seed: Hash([1; 32]),
            ..proof
        };
        assert!(verify_proof(&p, &miner, &challenge, &reseeded, &sc, &Target::MAX).is_err());
        assert!(
            verify_proof(
                &p,
                &PublicKey([6; 32]),
                &challenge,
                &proof,
                &sc,
                &Target::MAX
            )
            .is_err()
        );
        assert!(verify_proof(&p, &miner, &Hash([1; 32]), &proof, &sc, &Target::MAX).is_err());
        // Other plot parameters.
        let mut q = p.clone();
        q.chain_window = 31;
        assert!(verify_proof(&q, &miner, &challenge, &proof, &sc, &Target::MAX).is_err());
    }
}
