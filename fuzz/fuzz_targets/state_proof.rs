//! State proofs: canonical decoding, verification never panics, and a proof whose only fault is
//! the root verifies against the root it computes (so the checks before the root are complete).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::StateProof;
use spacetime::state_tree::{ProofError, verify, verify_bytes};
use spacetime_fuzz::{Input, decode_canonical};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (Some(root), Some(key)) = (input.hash(), input.hash()) else {
        return;
    };
    let bytes = input.rest();
    let decoded = decode_canonical::<StateProof>(bytes);
    let from_bytes = verify_bytes(&root, &key, bytes);
    let Some(proof) = decoded else {
        assert!(matches!(from_bytes, Err(ProofError::Decode(_))));
        return;
    };
    let verdict = verify(&root, &key, &proof);
    assert_eq!(verdict, from_bytes);
    match verdict {
        Ok(account) => {
            assert_eq!(
                account.is_some(),
                matches!(proof.leaf, spacetime::state_tree::ProofLeaf::Account(_))
            );
        }
        Err(ProofError::RootMismatch { expected, computed }) => {
            assert_eq!(expected, root);
            assert_ne!(computed, root);
            let again = verify(&computed, &key, &proof);
            assert!(
                again.is_ok(),
                "only the root was wrong, yet against its own root: {again:?}"
            );
        }
        Err(_) => {}
    }
    if let Ok(depth) = proof.path_len() {
        assert!(depth <= spacetime::state_tree::MAX_PROOF_DEPTH);
    }
});
