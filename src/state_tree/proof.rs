//! Compressed proofs of membership and absence, and their pure verification.

use serde::{Deserialize, Serialize};

use super::node::Child;
use super::store::NodeReader;
use super::{
    EMPTY, StateTree, TreeError, bit, common_prefix, key_of, leaf_hash, node_hash, value_hash,
};
use crate::account::Account;
use crate::crypto::Address;
use crate::encoding::{BoundedBytes, BoundedVec, Canonical, DecodeError, decode};
use crate::hash::Hash;

/// The deepest a proof can reach: one level per key bit.
pub const MAX_PROOF_DEPTH: usize = 256;

/// What the proof's path ends at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProofLeaf {
    /// Nothing: the key is absent.
    Empty,
    /// Another account, whose key shares the path: the key is absent.
    Other {
        /// The other account's state key.
        key: Hash,
        /// The hash of its encoding.
        value_hash: Hash,
    },
    /// The key's account: the key is present.
    Account(Account),
}

/// A proof that a key holds an account, or holds none, under a state root.
///
/// Encoding: `bitmap` (varint length, at most 32 bytes), `siblings` (varint count, 32 bytes
/// each), `leaf` (variant byte: 0 empty, 1 other key and value hash, 2 the account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProof {
    /// Bit `i` (most significant bit of byte 0 first) is set when the sibling of the path at
    /// depth `i` is non-empty. The path is as long as the last set bit plus one, so the bitmap
    /// never ends with a zero byte.
    pub bitmap: BoundedBytes<32>,
    /// The non-empty siblings, from the root down.
    pub siblings: BoundedVec<Hash, MAX_PROOF_DEPTH>,
    /// What the path ends at.
    pub leaf: ProofLeaf,
}

impl Canonical for StateProof {
    const NAME: &'static str = "state proof";
    /// Bitmap, up to 256 siblings, and the largest leaf: an account or a key and a hash.
    const MAX_ENCODED_LEN: usize = 1
        + 32
        + 2
        + MAX_PROOF_DEPTH * Hash::LEN
        + 1
        + if Account::MAX_ENCODED_LEN > 2 * Hash::LEN {
            Account::MAX_ENCODED_LEN
        } else {
            2 * Hash::LEN
        };
}

/// Why a state proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The bitmap ends with a zero byte (its length must follow from its last set bit).
    #[error("proof bitmap ends with a zero byte")]
    BitmapPadding,
    /// The number of siblings differs from the number of bits set in the bitmap.
    #[error("proof has {given} sibling hashes where its bitmap marks {marked}")]
    SiblingCount {
        /// Bits set in the bitmap.
        marked: usize,
        /// Siblings given.
        given: usize,
    },
    /// A sibling marked non-empty is the empty hash.
    #[error("proof sibling at depth {depth} is marked non-empty but is the empty hash")]
    EmptySibling {
        /// Depth of the sibling.
        depth: usize,
    },
    /// The account given is empty, and empty accounts are never stored.
    #[error("proof holds an empty account, which the tree never stores")]
    EmptyAccount,
    /// The "other" account of an absence proof has the queried key.
    #[error("absence proof names the queried key itself as the other account")]
    OtherIsKey,
    /// The "other" account's key does not follow the proof's path.
    #[error(
        "the other account's key leaves the path at bit {shared}, above the slot at depth {depth}"
    )]
    OtherOffPath {
        /// Bits the other key shares with the queried key.
        shared: usize,
        /// Depth of the slot the proof ends at.
        depth: usize,
    },
    /// The proof is well-formed but leads to another root.
    #[error("proof does not lead to the state root {expected} (it gives {computed})")]
    RootMismatch {
        /// The trusted root.
        expected: Hash,
        /// The root the proof hashes to.
        computed: Hash,
    },
}

impl StateProof {
    /// The depth of the slot the path ends at, from the bitmap.
    pub fn path_len(&self) -> Result<usize, ProofError> {
        match self.bitmap.last() {
            None => Ok(0),
            Some(0) => Err(ProofError::BitmapPadding),
            Some(last) => Ok(8 * (self.bitmap.len() - 1) + 8 - last.trailing_zeros() as usize),
        }
    }

    /// Whether the sibling at `depth` is marked non-empty.
    fn marked(&self, depth: usize) -> bool {
        self.bitmap
            .get(depth / 8)
            .is_some_and(|byte| (byte >> (7 - depth % 8)) & 1 == 1)
    }
}

/// Checks `proof` for the state key `key` against a trusted state `root`: the key's account
/// when the proof shows one, `None` when it shows the key absent.
///
/// Pure and allocation-free apart from the returned account: a light client needs nothing but
/// a header's `state_root`.
pub fn verify(root: &Hash, key: &Hash, proof: &StateProof) -> Result<Option<Account>, ProofError> {
    let depth = proof.path_len()?;
    let marked: usize = proof.bitmap.iter().map(|b| b.count_ones() as usize).sum();
    if marked != proof.siblings.len() {
        return Err(ProofError::SiblingCount {
            marked,
            given: proof.siblings.len(),
        });
    }
    let (mut hash, account) = match &proof.leaf {
        ProofLeaf::Empty => (EMPTY, None),
        ProofLeaf::Other {
            key: other,
            value_hash,
        } => {
            if other == key {
                return Err(ProofError::OtherIsKey);
            }
            let shared = common_prefix(other, key);
            if shared < depth {
                return Err(ProofError::OtherOffPath { shared, depth });
            }
            (leaf_hash(other, value_hash), None)
        }
        ProofLeaf::Account(account) => {
            if account.is_empty() {
                return Err(ProofError::EmptyAccount);
            }
            (leaf_hash(key, &value_hash(account)), Some(account))
        }
    };
    let mut siblings = proof.siblings.iter().rev();
    for level in (0..depth).rev() {
        let sibling = if proof.marked(level) {
            match siblings.next() {
                Some(s) if *s == EMPTY => return Err(ProofError::EmptySibling { depth: level }),
                Some(s) => s,
                // The count was checked against the bitmap above.
                None => &EMPTY,
            }
        } else {
            &EMPTY
        };
        hash = if bit(key, level) {
            node_hash(sibling, &hash)
        } else {
            node_hash(&hash, sibling)
        };
    }
    if hash != *root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            computed: hash,
        });
    }
    Ok(account.cloned())
}

/// [`verify`] for an address rather than a state key.
pub fn verify_address(
    root: &Hash,
    address: &Address,
    proof: &StateProof,
) -> Result<Option<Account>, ProofError> {
    verify(root, &key_of(address), proof)
}

/// Decodes `bytes` as a [`StateProof`] (bounded before allocating) and [`verify`]s it.
pub fn verify_bytes(root: &Hash, key: &Hash, bytes: &[u8]) -> Result<Option<Account>, ProofError> {
    verify(root, key, &decode::<StateProof>(bytes)?)
}

impl<S: NodeReader> StateTree<S> {
    /// A proof for the state key `key` against [`root`](Self::root).
    pub fn prove_key(&self, key: &Hash) -> Result<StateProof, TreeError> {
        let mut bitmap = [0u8; 32];
        let mut siblings = Vec::new();
        let mut mark = |depth: usize, sibling: Hash| {
            bitmap[depth / 8] |= 0x80 >> (depth % 8);
            siblings.push(sibling);
        };
        let mut slot = self.store.meta()?.and_then(|m| m.root);
        let mut depth = 0;
        let leaf = loop {
            match slot {
                None => break ProofLeaf::Empty,
                Some(Child::Leaf { key: other, .. }) => {
                    let account = self.store.leaf(&other)?.ok_or_else(|| {
                        TreeError::Inconsistent(format!(
                            "account {other} is in the tree but missing"
                        ))
                    })?;
                    break if other == *key {
                        ProofLeaf::Account(account)
                    } else {
                        ProofLeaf::Other {
                            key: other,
                            value_hash: value_hash(&account),
                        }
                    };
                }
                Some(
                    child @ Child::Branch {
                        depth: split,
                        prefix,
                        ..
                    },
                ) => {
                    let split = usize::from(split);
                    let shared = common_prefix(key, &prefix).min(split);
                    if shared < split {
                        // The key leaves the compressed edge: its side is empty there.
                        mark(shared, child.slot_hash(shared + 1));
                        depth = shared + 1;
                        break ProofLeaf::Empty;
                    }
                    let node = self
                        .store
                        .branch(&super::node::NodeKey {
                            depth: split as u8,
                            prefix,
                        })?
                        .ok_or_else(|| {
                            TreeError::Inconsistent(format!(
                                "branch at depth {split} prefix {prefix} is referenced but missing"
                            ))
                        })?;
                    let (mine, other) = node.sides(key, split);
                    mark(split, other.slot_hash(split + 1));
                    slot = Some(*mine);
                    depth = split + 1;
                }
            }
        };
        let bitmap = BoundedBytes::try_from_slice(&bitmap[..depth.div_ceil(8)])
            .map_err(|e| TreeError::Inconsistent(e.to_string()))?;
        let siblings = BoundedVec::try_from_vec(siblings)
            .map_err(|e| TreeError::Inconsistent(e.to_string()))?;
        Ok(StateProof {
            bitmap,
            siblings,
            leaf,
        })
    }
}
