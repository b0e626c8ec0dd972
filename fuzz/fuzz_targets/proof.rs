//! Proofs: Merkle inclusion proofs (canonical decoding, verification never panics, honest
//! proofs verify and a changed leaf does not) and proofs of space (the verifier's checks agree
//! with the score it computes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::genesis::PlotParams;
use spacetime::merkle::{
    MerkleError, MerkleProof, MerkleTree, leaf_hash, verify_proof, verify_proof_for_hash,
};
use spacetime::plot::{ProofError, proof_score, verify_proof as verify_space_proof};
use spacetime::{ProofOfSpace, PublicKey, Target};
use spacetime_fuzz::{Input, decode_canonical};

fn merkle(mut input: Input<'_>) {
    let (Some(root), Some(leaf)) = (input.hash(), input.hash()) else {
        return;
    };
    let bytes = input.rest();
    let Some(proof) = decode_canonical::<MerkleProof>(bytes) else {
        return;
    };
    match verify_proof_for_hash(&root, &leaf, &proof) {
        Ok(()) => assert!(proof.leaf_index < proof.leaf_count),
        Err(MerkleError::IndexOutOfRange { index, count }) => assert!(index >= count),
        Err(MerkleError::PathLength { expected, found }) => {
            assert_ne!(expected, found);
            assert_eq!(found, proof.siblings.len());
        }
        Err(MerkleError::RootMismatch) => {}
    }
}

fn honest_merkle(mut input: Input<'_>) {
    let (Some(n), Some(i)) = (input.byte(), input.byte()) else {
        return;
    };
    let count = usize::from(n % 48) + 1;
    let index = usize::from(i) % count;
    let leaf_data = input.rest();
    let leaves: Vec<Vec<u8>> = (0..count)
        .map(|k| {
            let mut leaf = leaf_data.to_vec();
            leaf.push(k as u8);
            leaf
        })
        .collect();
    let tree = MerkleTree::from_leaves(&leaves);
    let proof = tree.proof(index as u64).expect("index in range");
    let bytes = spacetime::encode(&proof);
    assert_eq!(
        decode_canonical::<MerkleProof>(&bytes).as_ref(),
        Some(&proof)
    );
    assert_eq!(verify_proof(&tree.root(), &leaves[index], &proof), Ok(()));
    let other = (index + 1) % count;
    if other != index {
        assert!(verify_proof(&tree.root(), &leaves[other], &proof).is_err());
    }
    assert!(verify_proof_for_hash(&tree.root(), &leaf_hash(b"not a leaf"), &proof).is_err());
    assert!(tree.proof(count as u64).is_none());
}

fn space(mut input: Input<'_>) {
    let (Some(shape), Some(miner), Some(challenge), Some(seed), Some(claimed)) = (
        input.u16(),
        input.hash(),
        input.hash(),
        input.hash(),
        input.hash(),
    ) else {
        return;
    };
    let Some(group) = input.take(8) else { return };
    let mut g = [0u8; 8];
    g.copy_from_slice(group);
    // Small groups keep one verification cheap; every other parameter comes from the input.
    let params = PlotParams {
        group_leaves_log2: 1 + (shape & 0x7) as u8,
        chain_window: 1 + u32::from((shape >> 3) & 0x1),
        buckets: 1 + u32::from((shape >> 4) & 0xff),
        min_groups: 1,
        max_groups: 1 + u64::from(shape >> 12) * 1000,
    };
    let miner = PublicKey(miner.0);
    let proof = ProofOfSpace {
        plot_seed: seed,
        group: u64::from_le_bytes(g),
    };
    let verdict = verify_space_proof(&params, &miner, &challenge, &proof, &claimed, &Target::MAX);
    match proof_score(&params, &miner, &challenge, &proof) {
        Ok(score) => {
            assert_eq!(proof_score(&params, &miner, &challenge, &proof), Ok(score));
            let honest =
                verify_space_proof(&params, &miner, &challenge, &proof, &score, &Target::MAX);
            assert!(matches!(
                honest,
                Ok(()) | Err(ProofError::TargetNotMet { .. })
            ));
            if claimed != score {
                assert!(matches!(verdict, Err(ProofError::ScoreMismatch { .. })));
            } else {
                assert_eq!(verdict, honest);
            }
            assert!(matches!(
                verify_space_proof(
                    &params,
                    &miner,
                    &challenge,
                    &proof,
                    &score,
                    &Target(score.0)
                ),
                Err(ProofError::TargetNotMet { .. })
            ));
        }
        Err(e) => {
            assert!(
                proof.group >= params.max_groups || matches!(e, ProofError::WrongBucket { .. })
            );
            assert_eq!(verdict, Err(e));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    match input.byte() {
        Some(0..=127) => merkle(input),
        Some(128..=191) => honest_merkle(input),
        Some(_) => space(input),
        None => {}
    }
});
