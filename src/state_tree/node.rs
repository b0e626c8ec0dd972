//! Stored nodes, tree metadata and undo records.

use serde::{Deserialize, Serialize};

use super::{EMPTY, bit, node_hash};
use crate::Height;
use crate::account::Account;
use crate::encoding::{BoundedVec, Canonical};
use crate::hash::Hash;

/// Where a branch node lives: the depth it splits at and the key bits above that depth.
///
/// A branch's position never changes while it exists: deleting a sibling subtree only shortens
/// the compressed edge above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeKey {
    /// The bit the branch splits on, `0..=255`.
    pub depth: u8,
    /// The first `depth` bits of every key below the branch; all later bits are zero.
    pub prefix: Hash,
}

impl core::hash::Hash for NodeKey {
    /// Hashes the depth and the first 128 prefix bits only: prefixes are bits of BLAKE2b
    /// outputs, and two branches at one depth that share 128 bits cost an attacker 2^128 work.
    /// (Hash maps only; equality still compares the whole key.)
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        let mut tail = [0u8; 8];
        head.copy_from_slice(&self.prefix.0[..8]);
        tail.copy_from_slice(&self.prefix.0[8..16]);
        state.write_u64(u64::from_le_bytes(head));
        state.write_u64(u64::from_le_bytes(tail) ^ u64::from(self.depth));
    }
}

impl NodeKey {
    /// The stored form: the depth byte, then the 32 prefix bytes.
    pub fn to_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.depth;
        out[1..].copy_from_slice(&self.prefix.0);
        out
    }

    /// Reads the stored form.
    pub fn from_bytes(bytes: &[u8; 33]) -> Self {
        let mut prefix = [0u8; 32];
        prefix.copy_from_slice(&bytes[1..]);
        Self {
            depth: bytes[0],
            prefix: Hash(prefix),
        }
    }
}

/// A non-empty child of a branch (or the root of a non-empty tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Child {
    /// A subtree holding exactly one account.
    Leaf {
        /// The account's key.
        key: Hash,
        /// Its leaf hash, `H(smt-leaf, key || value hash)`.
        hash: Hash,
    },
    /// A subtree holding two or more accounts, whose topmost split is a stored branch.
    Branch {
        /// The depth the branch splits at.
        depth: u8,
        /// The branch's key bits above `depth`, later bits zero.
        prefix: Hash,
        /// The branch's own hash, `H(smt-node, left || right)` at `depth` (before lifting).
        hash: Hash,
    },
}

impl Child {
    /// The hash of this subtree seen from a slot at `slot_depth` (its position in a full
    /// 256-level tree): a leaf is the same at any depth; a branch deeper than the slot is hashed
    /// up through the single-child levels in between, with an empty sibling at each.
    pub fn slot_hash(&self, slot_depth: usize) -> Hash {
        match self {
            Self::Leaf { hash, .. } => *hash,
            Self::Branch {
                depth,
                prefix,
                hash,
            } => lift(*hash, usize::from(*depth), slot_depth, prefix),
        }
    }

    /// The key (for a leaf) or the prefix (for a branch) that locates the subtree.
    pub fn path(&self) -> &Hash {
        match self {
            Self::Leaf { key, .. } => key,
            Self::Branch { prefix, .. } => prefix,
        }
    }
}

/// Hashes `hash`, a subtree at depth `from`, up to depth `to <= from` through single-child
/// levels whose other child is empty; the side at each level comes from `path`.
pub(super) fn lift(mut hash: Hash, from: usize, to: usize, path: &Hash) -> Hash {
    for level in (to..from).rev() {
        hash = if bit(path, level) {
            node_hash(&EMPTY, &hash)
        } else {
            node_hash(&hash, &EMPTY)
        };
    }
    hash
}

/// A stored branch node: both children are non-empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Branch {
    /// The child whose keys have bit `depth` clear.
    pub left: Child,
    /// The child whose keys have bit `depth` set.
    pub right: Child,
}

impl Branch {
    /// The branch's own hash when it splits at `depth`.
    pub fn hash(&self, depth: usize) -> Hash {
        node_hash(
            &self.left.slot_hash(depth + 1),
            &self.right.slot_hash(depth + 1),
        )
    }

    /// The child on `key`'s side of a split at `depth`, and the other one.
    pub fn sides(&self, key: &Hash, depth: usize) -> (&Child, &Child) {
        if bit(key, depth) {
            (&self.right, &self.left)
        } else {
            (&self.left, &self.right)
        }
    }
}

impl Canonical for Branch {
    const NAME: &'static str = "state tree branch";
    /// Two children of a variant byte, a depth byte and two hashes at most.
    const MAX_ENCODED_LEN: usize = 2 * (1 + 1 + 2 * Hash::LEN);
}

/// The tree's current state: its root, height and how far back it can roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The root subtree, `None` for an empty tree.
    pub root: Option<Child>,
    /// Height of the last block applied.
    pub height: Height,
    /// The lowest height [`rollback`](super::StateTree::rollback) can return to.
    pub floor: Height,
}

impl Meta {
    /// The state root.
    pub fn root_hash(&self) -> Hash {
        self.root.map_or(EMPTY, |child| child.slot_hash(0))
    }
}

impl Canonical for Meta {
    const NAME: &'static str = "state tree metadata";
    const MAX_ENCODED_LEN: usize = 1 + Branch::MAX_ENCODED_LEN / 2 + 10 + 10;
}

/// One write undone by rolling back: the value a slot held before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UndoEntry {
    /// A branch node's earlier value (`None`: it did not exist).
    Branch {
        /// Where the branch lives.
        depth: u8,
        /// Its prefix.
        prefix: Hash,
        /// What it held before.
        old: Option<Branch>,
    },
    /// An account's earlier value (`None`: it did not exist).
    Leaf {
        /// The account's key.
        key: Hash,
        /// What it held before.
        old: Option<Account>,
    },
}

/// The most writes one block may undo-log: a block changes at most a few tens of thousands of
/// accounts, each touching at most 257 nodes. Local storage bound, not consensus.
pub const MAX_UNDO_ENTRIES: usize = 1 << 24;

/// Everything needed to undo one block: the earlier metadata and the earlier value of every
/// slot the block wrote, in write order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoLog {
    /// The metadata before the block.
    pub meta: Meta,
    /// Earlier values, in the order they were overwritten.
    pub entries: BoundedVec<UndoEntry, MAX_UNDO_ENTRIES>,
}

/// The larger of an encoded branch and an encoded account.
const MAX_OLD_VALUE_LEN: usize = if Branch::MAX_ENCODED_LEN > Account::MAX_ENCODED_LEN {
    Branch::MAX_ENCODED_LEN
} else {
    Account::MAX_ENCODED_LEN
};

impl Canonical for UndoLog {
    const NAME: &'static str = "state tree undo log";
    const MAX_ENCODED_LEN: usize =
        Meta::MAX_ENCODED_LEN + 4 + MAX_UNDO_ENTRIES * (1 + 1 + Hash::LEN + 1 + MAX_OLD_VALUE_LEN);
}

impl UndoEntry {
    /// The undo entry of a branch write at `key`.
    pub fn branch(key: NodeKey, old: Option<Branch>) -> Self {
        Self::Branch {
            depth: key.depth,
            prefix: key.prefix,
            old,
        }
    }
}
