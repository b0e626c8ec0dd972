//! The state tree: a sparse Merkle tree over all accounts, committed in every header
//! (consensus-critical).
//!
//! # The tree
//!
//! Conceptually a full binary tree of depth 256. An account with address `a` sits at the leaf
//! whose path is its *state key* `k = H(smt-key, a)`, read from the most significant bit of
//! byte 0 (bit 0: 0 goes left, 1 goes right). Hashes, all domain-separated BLAKE2b-256
//! ([`crate::hash`]), of a subtree `T`:
//!
//! - `T` holds no account: [`EMPTY`], the all-zero hash;
//! - `T` holds exactly one account `(k, v)`: its leaf hash
//!   `H(smt-leaf, k || H(smt-value, encode(v)))`, whatever the depth of `T` ([`leaf_hash`],
//!   [`value_hash`]);
//! - `T` holds two or more accounts: `H(smt-node, hash(left) || hash(right))` ([`node_hash`]).
//!
//! The state root is the hash of the whole tree. A lone account is thus "lifted" to the root
//! of the largest subtree that holds nothing else, so a tree of `n` random keys is about
//! `log2(n)` levels deep, not 256. An account equal to [`Account::default`] is no account.
//!
//! # Storage
//!
//! Only *branch* nodes (subtrees whose two children are both non-empty) are stored: `n`
//! accounts give exactly `n - 1` branches. Single-child chains between branches are compressed
//! into the edge: a [`Child`] names the depth and prefix of the next branch below, and its
//! hash is recomputed through the chain ([`Child::slot_hash`]) only where the chain is
//! non-empty, which random keys make rare. Branches are keyed by position
//! ([`NodeKey`]: split depth and key prefix), accounts by state key. Every block's writes are
//! undo-logged under its height, so [`StateTree::rollback`] restores the exact earlier root, and
//! [`StateTree::prune`] drops logs older than the reorg limit. Storage sits behind
//! [`NodeStore`], with a [`MemoryStore`] and a redb implementation ([`RedbStore`]).
//!
//! # Updates
//!
//! [`StateTree::apply`] takes a block's changed accounts, sorts them by key, and walks the tree
//! once from the root, descending only into subtrees that hold a changed key; every other
//! subtree keeps its stored hash. A block of `m` changes on a tree of `n` accounts costs about
//! `m * (log2(n) - log2(m) + 1)` node hashes.
//!
//! # Proofs
//!
//! A [`StateProof`] is the path from the root to the slot where the key's leaf is or would be:
//! a bitmap of which sibling hashes are non-empty, those siblings only, and what the slot holds
//! (the account, nothing, or another account whose key shares the path). [`verify`] needs only
//! a header's state root and the proof.

mod node;
mod proof;
mod redb_store;
mod store;
mod update;

#[cfg(test)]
mod tests;

pub use node::{Branch, Child, MAX_UNDO_ENTRIES, Meta, NodeKey, UndoEntry, UndoLog};
pub use proof::{
    MAX_PROOF_DEPTH, ProofError, ProofLeaf, StateProof, verify, verify_address, verify_bytes,
};
pub use redb_store::{BRANCHES, LEAVES, META, RedbReader, RedbStore, UNDO};
pub use store::{MemoryStore, NodeReader, NodeStore, StoreError};

use crate::Height;
use crate::account::Account;
use crate::crypto::Address;
use crate::encoding::hash_encoded;
use crate::hash::{Hash, Hasher, tags};

/// The hash of an empty subtree, and the root of an empty tree.
pub const EMPTY: Hash = Hash::ZERO;

/// The state key of an address: `H(smt-key, address)`.
pub fn key_of(address: &Address) -> Hash {
    crate::hash::hash(tags::SMT_KEY, &address.0)
}

/// The hash of an account's canonical encoding: `H(smt-value, encode(account))`.
pub fn value_hash(account: &Account) -> Hash {
    hash_encoded(tags::SMT_VALUE, account)
}

/// A leaf: `H(smt-leaf, key || value_hash)`.
#[inline]
pub fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    let mut h = Hasher::new(tags::SMT_LEAF);
    h.update(&key.0).update(&value_hash.0);
    h.finalize()
}

/// An inner node: `H(smt-node, left || right)`, an empty child being [`EMPTY`].
#[inline]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Hasher::new(tags::SMT_NODE);
    h.update(&left.0).update(&right.0);
    h.finalize()
}

/// Bit `i` (0..256) of `key`, most significant bit of byte 0 first.
#[inline]
pub(crate) fn bit(key: &Hash, i: usize) -> bool {
    (key.0[i / 8] >> (7 - i % 8)) & 1 == 1
}

/// The number of leading bits `a` and `b` share, `0..=256`.
#[inline]
pub(crate) fn common_prefix(a: &Hash, b: &Hash) -> usize {
    for (i, (x, y)) in a.0.chunks_exact(8).zip(b.0.chunks_exact(8)).enumerate() {
        let mut xa = [0u8; 8];
        let mut ya = [0u8; 8];
        xa.copy_from_slice(x);
        ya.copy_from_slice(y);
        let diff = u64::from_be_bytes(xa) ^ u64::from_be_bytes(ya);
        if diff != 0 {
            return i * 64 + diff.leading_zeros() as usize;
        }
    }
    256
}

/// The first `depth` bits of `key`, later bits cleared.
#[inline]
pub(crate) fn prefix(key: &Hash, depth: usize) -> Hash {
    let mut out = Hash::ZERO;
    let full = depth / 8;
    out.0[..full].copy_from_slice(&key.0[..full]);
    if !depth.is_multiple_of(8) {
        out.0[full] = key.0[full] & (0xffu8 << (8 - depth % 8));
    }
    out
}

/// Why a state tree operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The node store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Blocks must be applied at consecutive heights.
    #[error("block height {got} does not follow the state tree's height {current}")]
    HeightNotNext {
        /// Height of the last block applied.
        current: Height,
        /// Height of the block offered.
        got: Height,
    },
    /// Rollback to a height the tree cannot reach.
    #[error("cannot roll back to height {target}: the state tree can return to {floor}..={height}")]
    RollbackOutOfRange {
        /// The requested height.
        target: Height,
        /// The lowest height still undo-logged.
        floor: Height,
        /// The current height.
        height: Height,
    },
    /// Rollback or pruning before any block was applied.
    #[error("the state tree holds no block yet")]
    NoState,
    /// The stored nodes contradict each other (damaged database or a bug).
    #[error("state tree database is inconsistent: {0}")]
    Inconsistent(String),
    /// One block changed more slots than an undo log may hold.
    #[error("a block's undo log of {entries} writes exceeds the limit of {max}")]
    UndoTooLarge {
        /// Writes the block made.
        entries: usize,
        /// The limit, [`MAX_UNDO_ENTRIES`].
        max: usize,
    },
}

/// The state tree over a node store: reads with any [`NodeReader`], updates with a
/// [`NodeStore`].
#[derive(Debug, Clone, Default)]
pub struct StateTree<S> {
    store: S,
}

impl<S> StateTree<S> {
    /// The tree kept in `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }
}

impl<S: NodeReader> StateTree<S> {
    /// The current metadata (root, height, rollback floor), `None` before the first block.
    pub fn meta(&self) -> Result<Option<Meta>, TreeError> {
        Ok(self.store.meta()?)
    }

    /// The state root: [`EMPTY`] for an empty tree.
    pub fn root(&self) -> Result<Hash, TreeError> {
        Ok(self.store.meta()?.map_or(EMPTY, |m| m.root_hash()))
    }

    /// Height of the last block applied, `None` before the first.
    pub fn height(&self) -> Result<Option<Height>, TreeError> {
        Ok(self.store.meta()?.map(|m| m.height))
    }

    /// The account of `address`, `None` when it holds nothing.
    pub fn get(&self, address: &Address) -> Result<Option<Account>, TreeError> {
        self.get_key(&key_of(address))
    }

    /// The account under the state key `key`.
    pub fn get_key(&self, key: &Hash) -> Result<Option<Account>, TreeError> {
        Ok(self.store.leaf(key)?)
    }

    /// A proof of the account of `address`, or of its absence, against [`root`](Self::root).
    pub fn prove(&self, address: &Address) -> Result<StateProof, TreeError> {
        self.prove_key(&key_of(address))
    }
}
