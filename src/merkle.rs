//! Binary Merkle trees: block transaction roots and inclusion proofs (consensus-critical).
//!
//! # Rules
//!
//! Every hash is a domain-separated BLAKE2b-256 from [`crate::hash`]:
//!
//! - **leaf**: `hash(MERKLE_LEAF, leaf_bytes)` ([`leaf_hash`]);
//! - **inner node**: `hash_parts(MERKLE_NODE, &[left, right])` over the two 32-byte child
//!   hashes ([`node_hash`]);
//! - **tree hash** `MTH`: of the empty list `hash(MERKLE_EMPTY, b"")`, of one leaf that leaf's
//!   hash, of more leaves as below;
//! - **root**: `hash_parts(MERKLE_ROOT, &[n as 8 little-endian bytes, MTH])` ([`commit_count`]),
//!   so the root commits to the leaf count `n` as well as to the leaves.
//!
//! The tree hash is the Merkle Tree Hash of RFC 6962 / RFC 9162 section 2.1.1. For `n > 1` leaves
//! `D[0..n]`, let `k` be the largest power of two smaller than `n`; then
//! `MTH(D[0..n]) = node(MTH(D[0..k]), MTH(D[k..n]))`. Built level by level, this is: hash
//! adjacent pairs left to right, and carry an unpaired last node up to the next level
//! *unchanged*. The odd node is never duplicated.
//!
//! # Why two leaf lists never share a root
//!
//! Bitcoin pairs an odd last node with a copy of itself, so `[a, b, c]` and `[a, b, c, c]` have
//! the same root (CVE-2012-2459), and it hashes leaves and inner nodes identically, so a 64-byte
//! leaf can pose as an inner node. Neither is possible here: the tree shape is a function of the
//! leaf count alone, distinct counts give distinct shapes, leaves, inner nodes and the empty
//! tree live in three separate hash domains, and the root commits to the count besides. Walking down two trees with equal roots, every
//! step either matches (same domain, same children) or exhibits a BLAKE2b collision, so equal
//! roots mean equal leaf lists.
//!
//! # Building
//!
//! [`merkle_root`] and [`MerkleBuilder`] compute a root in one streaming pass with `O(log n)`
//! memory and no heap allocation. [`MerkleTree`] keeps every level so it can hand out
//! [`MerkleProof`]s.
//!
//! # Proofs
//!
//! A [`MerkleProof`] is the RFC 9162 section 2.1.3.1 inclusion path: the sibling hashes from
//! the leaf up to the root, skipping levels where the node is carried up without a sibling.
//! [`verify_proof`] runs the RFC 9162 section 2.1.3.2 algorithm, which also rejects a path whose
//! length is wrong for `(leaf_index, leaf_count)`.
//!
//! A proof authenticates the leaf, its index and the leaf count against the root. In plain
//! RFC 9162 the count is not authenticated (Certificate Transparency takes it from a signed tree
//! head): the proof of leaf 0 of a 3-leaf tree also verifies with a count of 4, because both
//! paths hash the siblings in the same order. Our headers carry no transaction count, so the
//! root binds it instead, and a light client learns the exact position of a transaction.
//! [`verify_proof_for_hash`] trusts its caller that `leaf_hash` really is a leaf hash (computed
//! with [`leaf_hash`]); [`verify_proof`] hashes the leaf itself.

use crate::encoding::{BoundedVec, Canonical};
use crate::hash::{Hash, Hasher, tags};

/// The most sibling hashes a proof can hold: the depth of a tree of `u64::MAX` leaves.
pub const MAX_PROOF_DEPTH: usize = 64;

/// The hash of one leaf: `hash(MERKLE_LEAF, leaf)`.
#[inline]
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Hasher::new(tags::MERKLE_LEAF);
    h.update(leaf);
    h.finalize()
}

/// The hash of an inner node: `hash_parts(MERKLE_NODE, &[left, right])`.
#[inline]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Hasher::new(tags::MERKLE_NODE);
    h.update(&left.0).update(&right.0);
    h.finalize()
}

/// The tree hash of the empty list: `hash(MERKLE_EMPTY, b"")`.
fn empty_tree_hash() -> Hash {
    Hasher::new(tags::MERKLE_EMPTY).finalize()
}

/// The root of the empty list.
pub fn empty_root() -> Hash {
    commit_count(0, &empty_tree_hash())
}

/// The root of a tree of `count` leaves whose RFC 6962 tree hash is `tree_hash`.
#[inline]
pub fn commit_count(count: u64, tree_hash: &Hash) -> Hash {
    let mut h = Hasher::new(tags::MERKLE_ROOT);
    h.update(&count.to_le_bytes()).update(&tree_hash.0);
    h.finalize()
}

/// The Merkle root of `leaves` (see the module documentation for the rules).
pub fn merkle_root<L: AsRef<[u8]>>(leaves: &[L]) -> Hash {
    let mut builder = MerkleBuilder::new();
    for leaf in leaves {
        builder.push(leaf.as_ref());
    }
    builder.finish()
}

/// A streaming Merkle root computation in `O(log n)` memory with no heap allocation.
///
/// It keeps a binary counter of perfect subtrees: after `n` leaves, `stack` holds the roots of
/// the perfect subtrees given by the set bits of `n`, largest (leftmost) first. Pushing a leaf
/// merges equal-sized subtrees like a carry; [`finish`](Self::finish) folds the remaining roots
/// from the right, which is exactly the RFC 6962 shape.
#[derive(Clone, Debug)]
pub struct MerkleBuilder {
    /// Perfect-subtree roots, largest first; the first `count.count_ones()` entries are live.
    stack: [Hash; MAX_PROOF_DEPTH],
    /// Leaves pushed so far.
    count: u64,
}

impl MerkleBuilder {
    /// An empty builder.
    pub const fn new() -> Self {
        Self {
            stack: [Hash::ZERO; MAX_PROOF_DEPTH],
            count: 0,
        }
    }

    /// Appends a leaf given as its bytes.
    #[inline]
    pub fn push(&mut self, leaf: &[u8]) {
        self.push_leaf_hash(leaf_hash(leaf));
    }

    /// Appends a leaf given as its already-computed [`leaf_hash`].
    ///
    /// A builder holds at most `u64::MAX` leaves; no real input comes near that.
    #[inline]
    pub fn push_leaf_hash(&mut self, leaf_hash: Hash) {
        let mut node = leaf_hash;
        let mut carry = self.count;
        // One live entry per set bit of `count`. The pushed leaf merges with one entry per
        // trailing one bit, so `top` never underflows and ends at most 63 (`count` < u64::MAX
        // has a zero bit above its trailing ones).
        let mut top = self.count.count_ones() as usize;
        while carry & 1 == 1 {
            top -= 1;
            node = node_hash(&self.stack[top], &node);
            carry >>= 1;
        }
        self.stack[top] = node;
        self.count += 1;
    }

    /// The number of leaves pushed so far.
    pub const fn len(&self) -> u64 {
        self.count
    }

    /// True when no leaf has been pushed.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The Merkle root of the leaves pushed.
    pub fn finish(self) -> Hash {
        let live = self.count.count_ones() as usize;
        let mut roots = self.stack[..live].iter().rev();
        let tree_hash = match roots.next() {
            None => empty_tree_hash(),
            Some(&smallest) => roots.fold(smallest, |right, left| node_hash(left, &right)),
        };
        commit_count(self.count, &tree_hash)
    }
}

impl Default for MerkleBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// A Merkle tree with every level kept, for producing inclusion proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` holds the leaf hashes; each next level pairs up the previous one, carrying an
    /// unpaired last node up unchanged; the last level holds the root (or nothing when empty).
    levels: Vec<Vec<Hash>>,
    /// The root, cached.
    root: Hash,
}

impl MerkleTree {
    /// Builds the tree of `leaves`, hashing each with [`leaf_hash`].
    pub fn from_leaves<L: AsRef<[u8]>>(leaves: &[L]) -> Self {
        Self::from_leaf_hashes(leaves.iter().map(|leaf| leaf_hash(leaf.as_ref())).collect())
    }

    /// Builds the tree over already-computed leaf hashes.
    pub fn from_leaf_hashes(leaf_hashes: Vec<Hash>) -> Self {
        let mut levels = Vec::new();
        let mut current = leaf_hashes;
        while current.len() > 1 {
            let (pairs, odd) = current.as_chunks::<2>();
            let mut next = Vec::with_capacity(pairs.len() + odd.len());
            next.extend(pairs.iter().map(|[left, right]| node_hash(left, right)));
            next.extend_from_slice(odd);
            levels.push(core::mem::replace(&mut current, next));
        }
        let tree_hash = current.first().copied().unwrap_or_else(empty_tree_hash);
        let count = levels.first().map_or(current.len(), Vec::len) as u64;
        let root = commit_count(count, &tree_hash);
        levels.push(current);
        Self { levels, root }
    }

    /// The Merkle root.
    pub const fn root(&self) -> Hash {
        self.root
    }

    /// The number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// True when the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inclusion proof of leaf `index`, or `None` when `index` is out of range.
    pub fn proof(&self, index: u64) -> Option<MerkleProof> {
        let leaf_count = self.len();
        if index >= leaf_count {
            return None;
        }
        let mut position = usize::try_from(index).ok()?;
        let mut siblings = Vec::with_capacity(self.levels.len());
        for level in &self.levels {
            // An odd position always has a left sibling; an even one has a right sibling unless
            // it is the unpaired last node, which is carried up without one.
            if let Some(sibling) = level.get(position ^ 1) {
                siblings.push(*sibling);
            }
            position /= 2;
        }
        Some(MerkleProof {
            leaf_index: index,
            leaf_count,
            siblings: BoundedVec::try_from_vec(siblings).ok()?,
        })
    }
}

/// An inclusion proof: the RFC 9162 audit path of one leaf, sibling hashes from the bottom up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf, from 0.
    pub leaf_index: u64,
    /// Number of leaves in the tree; verifiers must check it against a trusted count.
    pub leaf_count: u64,
    /// Sibling hashes from the leaf's level up to just below the root.
    pub siblings: BoundedVec<Hash, MAX_PROOF_DEPTH>,
}

impl Canonical for MerkleProof {
    const NAME: &'static str = "merkle proof";
    /// Two varint `u64`s, a one-byte length and up to 64 hashes.
    const MAX_ENCODED_LEN: usize = 10 + 10 + 1 + MAX_PROOF_DEPTH * Hash::LEN;
}

/// Why an inclusion proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The leaf index is not below the leaf count.
    #[error("leaf index {index} is out of range for a tree of {count} leaves")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed leaf count.
        count: u64,
    },
    /// The proof has the wrong number of sibling hashes for its index and count.
    #[error("proof has {found} sibling hashes where its index and leaf count need {expected}")]
    PathLength {
        /// Siblings a proof for this index and count must have.
        expected: usize,
        /// Siblings the proof has.
        found: usize,
    },
    /// The proof is well-formed but does not lead to the expected root.
    #[error("proof does not lead to the expected Merkle root")]
    RootMismatch,
}

/// Checks that `leaf` (its bytes) is included under `root` as described by `proof`.
pub fn verify_proof(root: &Hash, leaf: &[u8], proof: &MerkleProof) -> Result<(), MerkleError> {
    verify_proof_for_hash(root, &leaf_hash(leaf), proof)
}

/// Checks that the leaf with hash `leaf_hash` is included under `root` as described by `proof`.
///
/// The caller must know `leaf_hash` to be a [`leaf_hash`] and `proof.leaf_count` to be the true
/// count (see the module documentation).
pub fn verify_proof_for_hash(
    root: &Hash,
    leaf_hash: &Hash,
    proof: &MerkleProof,
) -> Result<(), MerkleError> {
    let MerkleProof {
        leaf_index: index,
        leaf_count: count,
        siblings,
    } = proof;
    let (index, count) = (*index, *count);
    // RFC 9162 section 2.1.3.2, step by step.
    if index >= count {
        return Err(MerkleError::IndexOutOfRange { index, count });
    }
    let path_length_error = || MerkleError::PathLength {
        expected: expected_path_len(index, count),
        found: siblings.len(),
    };
    let (mut fnode, mut snode) = (index, count - 1);
    let mut r = *leaf_hash;
    for p in siblings.iter() {
        if snode == 0 {
            return Err(path_length_error());
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            // The last node of a level without a sibling is carried up until it is a right
            // child.
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(path_length_error());
    }
    if commit_count(count, &r) != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// The number of siblings on the path of leaf `index` in a tree of `count` leaves
/// (requires `index < count`).
fn expected_path_len(index: u64, count: u64) -> usize {
    let (mut position, mut last) = (index, count.saturating_sub(1));
    let mut len = 0;
    while last != 0 {
        // A node has a sibling unless it is the unpaired last node of its level.
        if position & 1 == 1 || position < last {
            len += 1;
        }
        position >>= 1;
        last >>= 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{decode, encode};
    use crate::hash::{hash, hash_parts};
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// The RFC 6962 recursive definition, written independently of the code under test.
    fn reference_tree_hash<L: AsRef<[u8]>>(leaves: &[L]) -> Hash {
        match leaves {
            [] => hash(tags::MERKLE_EMPTY, b""),
            [leaf] => hash(tags::MERKLE_LEAF, leaf.as_ref()),
            _ => {
                let k = split_point(leaves.len());
                let left = reference_tree_hash(&leaves[..k]);
                let right = reference_tree_hash(&leaves[k..]);
                hash_parts(tags::MERKLE_NODE, &[&left.0, &right.0])
            }
        }
    }

    /// The root: the count bound to the tree hash.
    fn reference_root<L: AsRef<[u8]>>(leaves: &[L]) -> Hash {
        let count = (leaves.len() as u64).to_le_bytes();
        hash_parts(tags::MERKLE_ROOT, &[&count, &reference_tree_hash(leaves).0])
    }

    /// RFC 9162 section 2.1.3.1 `PATH(m, D[n])`, written recursively.
    fn reference_path<L: AsRef<[u8]>>(m: usize, leaves: &[L]) -> Vec<Hash> {
        if leaves.len() <= 1 {
            return Vec::new();
        }
        let k = split_point(leaves.len());
        if m < k {
            let mut path = reference_path(m, &leaves[..k]);
            path.push(reference_tree_hash(&leaves[k..]));
            path
        } else {
            let mut path = reference_path(m - k, &leaves[k..]);
            path.push(reference_tree_hash(&leaves[..k]));
            path
        }
    }

    /// The largest power of two strictly below `n` (for `n > 1`).
    fn split_point(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// For each sibling on the path of leaf `index` of `count`: true when it is a left sibling.
    /// Derived from the level-by-level shape, not from the RFC verification loop.
    fn sides(index: u64, count: u64) -> Vec<bool> {
        let (mut position, mut len) = (index, count);
        let mut out = Vec::new();
        while len > 1 {
            if position % 2 == 1 {
                out.push(true);
            } else if position + 1 < len {
                out.push(false);
            }
            position /= 2;
            len = len.div_ceil(2);
        }
        out
    }

    fn distinct_leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
    }

    fn all_roots_agree<L: AsRef<[u8]>>(leaves: &[L]) -> Hash {
        let expected = reference_root(leaves);
        assert_eq!(
            merkle_root(leaves),
            expected,
            "merkle_root, n = {}",
            leaves.len()
        );
        let tree = MerkleTree::from_leaves(leaves);
        assert_eq!(tree.root(), expected, "MerkleTree, n = {}", leaves.len());
        assert_eq!(tree.len(), leaves.len() as u64);
        let hashes: Vec<Hash> = leaves
            .iter()
            .map(|l| hash(tags::MERKLE_LEAF, l.as_ref()))
            .collect();
        assert_eq!(
            MerkleTree::from_leaf_hashes(hashes.clone()).root(),
            expected
        );
        let mut builder = MerkleBuilder::default();
        for h in &hashes {
            builder.push_leaf_hash(*h);
        }
        assert_eq!(builder.len(), leaves.len() as u64);
        assert_eq!(builder.is_empty(), leaves.is_empty());
        assert_eq!(
            builder.finish(),
            expected,
            "push_leaf_hash, n = {}",
            leaves.len()
        );
        expected
    }

    #[test]
    fn known_answers() {
        // Computed independently with Python's hashlib.blake2b(digest_size=32): the tag length
        // byte, the tag, the data; root = H(merkle-root, count as u64 LE || RFC 6962 MTH).
        let cases: [(Vec<Vec<u8>>, &str); 5] = [
            (
                vec![],
                "c53c2fd420a80e16e33a06c6f01f6b9a653269889ce47311a642cfed9e8d97a8",
            ),
            (
                vec![vec![]],
                "879998a0637b9e8829fcac5c46981fb8ef843e981dae4bfa34e64a4200e64472",
            ),
            (
                vec![b"a".to_vec()],
                "abad030f2f94f1c4eb33ae35c261466e60f998adba8b3638e50627b8c4bb1a6b",
            ),
            (
                vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
                "83c9d4d12c24ced9139f463e339f43fbcdf59f3bbb36ff1637a78bea42f33cde",
            ),
            (
                (0u8..7).map(|i| vec![i]).collect(),
                "1dacbea38c572972675543cb0fad1a3e42ebc305991b088bea23d191519917b1",
            ),
        ];
        for (leaves, hex) in cases {
            assert_eq!(all_roots_agree(&leaves).to_string(), hex, "{leaves:?}");
        }
    }

    #[test]
    fn primitives_follow_the_rules() {
        let (a, b) = (hash(b"x", b"1"), hash(b"x", b"2"));
        assert_eq!(
            node_hash(&a, &b),
            hash_parts(tags::MERKLE_NODE, &[&a.0, &b.0])
        );
        assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
        assert_eq!(leaf_hash(b"abc"), hash(tags::MERKLE_LEAF, b"abc"));
        let empty = hash(tags::MERKLE_EMPTY, b"");
        assert_eq!(
            empty_root(),
            hash_parts(tags::MERKLE_ROOT, &[&[0; 8], &empty.0])
        );
        assert_eq!(merkle_root::<&[u8]>(&[]), empty_root());
        let one = leaf_hash(b"abc");
        assert_eq!(
            merkle_root(&[b"abc"]),
            hash_parts(tags::MERKLE_ROOT, &[&[1, 0, 0, 0, 0, 0, 0, 0], &one.0])
        );
        assert_eq!(
            commit_count(2, &one),
            hash_parts(tags::MERKLE_ROOT, &[&2u64.to_le_bytes(), &one.0])
        );
    }

    #[test]
    fn matches_reference_for_small_trees() {
        for n in 0..=70 {
            all_roots_agree(&distinct_leaves(n));
        }
    }

    #[test]
    fn matches_reference_around_powers_of_two() {
        for shift in 7..=11 {
            let p = 1usize << shift;
            for n in [p - 1, p, p + 1, p + 3] {
                all_roots_agree(&distinct_leaves(n));
            }
        }
    }

    #[test]
    fn duplicate_last_leaf_changes_the_root() {
        // CVE-2012-2459: Bitcoin gives [a, b, c] and [a, b, c, c] the same root.
        assert_ne!(
            merkle_root(&["a", "b", "c"]),
            merkle_root(&["a", "b", "c", "c"])
        );
        for n in 1..=40 {
            let mut leaves = distinct_leaves(n);
            let root = merkle_root(&leaves);
            let last = leaves[n - 1].clone();
            leaves.push(last);
            assert_ne!(merkle_root(&leaves), root, "n = {n}");
            // Duplicating the last pair as well (the level-1 variant of the attack).
            if n >= 2 && n % 2 == 0 {
                let mut doubled = distinct_leaves(n);
                doubled.extend_from_slice(&distinct_leaves(n)[n - 2..]);
                assert_ne!(merkle_root(&doubled), root, "n = {n}");
            }
        }
    }

    #[test]
    fn every_small_list_has_its_own_root() {
        let mut roots = HashSet::new();
        let mut lists = 0;
        for len in 0..=6u32 {
            for bits in 0..(1u32 << len) {
                let leaves: Vec<&str> = (0..len)
                    .map(|i| if bits >> i & 1 == 1 { "b" } else { "a" })
                    .collect();
                roots.insert(merkle_root(&leaves));
                lists += 1;
            }
        }
        assert_eq!(lists, 127);
        assert_eq!(roots.len(), lists, "two leaf lists share a root");
    }

    #[test]
    fn leaves_cannot_pose_as_inner_nodes() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        // A 64-byte leaf equal to the concatenation of two child hashes.
        let mut forged = a.0.to_vec();
        forged.extend_from_slice(&b.0);
        assert_ne!(merkle_root(&[&forged]), merkle_root(&["a", "b"]));
        assert_ne!(
            merkle_root(&[forged.as_slice(), b"c"]),
            merkle_root(&[&b"a"[..], b"b", b"c"])
        );
        // And the empty root is not the hash of an empty leaf.
        assert_ne!(merkle_root::<&[u8]>(&[]), merkle_root(&[b""]));
    }

    fn flip(h: &Hash) -> Hash {
        let mut out = *h;
        out.0[7] ^= 0x10;
        out
    }

    #[test]
    fn every_proof_verifies_and_matches_the_rfc_path() {
        for n in 1..=40usize {
            let leaves = distinct_leaves(n);
            let tree = MerkleTree::from_leaves(&leaves);
            let root = tree.root();
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = tree.proof(i as u64).expect("index in range");
                assert_eq!(proof.leaf_index, i as u64);
                assert_eq!(proof.leaf_count, n as u64);
                assert_eq!(
                    &proof.siblings[..],
                    &reference_path(i, &leaves)[..],
                    "n={n} i={i}"
                );
                assert_eq!(proof.siblings.len(), expected_path_len(i as u64, n as u64));
                assert_eq!(verify_proof(&root, leaf, &proof), Ok(()), "n={n} i={i}");
                assert_eq!(
                    verify_proof_for_hash(&root, &leaf_hash(leaf), &proof),
                    Ok(())
                );
            }
            assert_eq!(tree.proof(n as u64), None);
            assert_eq!(tree.proof(u64::MAX), None);
        }
    }

    #[test]
    fn tampered_proofs_fail_with_the_right_error() {
        for n in 1..=40u64 {
            let leaves = distinct_leaves(n as usize);
            let tree = MerkleTree::from_leaves(&leaves);
            let root = tree.root();
            for i in 0..n {
                let leaf = &leaves[i as usize];
                let proof = tree.proof(i).expect("index in range");
                let len = proof.siblings.len();

                assert_eq!(
                    verify_proof(&flip(&root), leaf, &proof),
                    Err(MerkleError::RootMismatch)
                );
                assert_eq!(
                    verify_proof(&root, b"other", &proof),
                    Err(MerkleError::RootMismatch)
                );

                for j in 0..len {
                    let mut bad = proof.clone();
                    let mut siblings = bad.siblings.into_inner();
                    siblings[j] = flip(&siblings[j]);
                    bad.siblings = BoundedVec::try_from_vec(siblings).expect("same length");
                    assert_eq!(
                        verify_proof(&root, leaf, &bad),
                        Err(MerkleError::RootMismatch)
                    );
                }

                let mut shorter = proof.siblings.to_vec();
                if shorter.pop().is_some() {
                    let bad = MerkleProof {
                        siblings: BoundedVec::try_from_vec(shorter).expect("bound"),
                        ..proof.clone()
                    };
                    let want = MerkleError::PathLength {
                        expected: len,
                        found: len - 1,
                    };
                    assert_eq!(verify_proof(&root, leaf, &bad), Err(want));
                }
                for extra in [Hash::ZERO, root] {
                    let mut longer = proof.siblings.to_vec();
                    longer.push(extra);
                    let bad = MerkleProof {
                        siblings: BoundedVec::try_from_vec(longer).expect("bound"),
                        ..proof.clone()
                    };
                    let want = MerkleError::PathLength {
                        expected: len,
                        found: len + 1,
                    };
                    assert_eq!(verify_proof(&root, leaf, &bad), Err(want));
                }

                for other in (0..n + 3).chain([u64::MAX]).filter(|&o| o != i) {
                    let bad = MerkleProof {
                        leaf_index: other,
                        ..proof.clone()
                    };
                    let want = if other >= n {
                        MerkleError::IndexOutOfRange {
                            index: other,
                            count: n,
                        }
                    } else if expected_path_len(other, n) != len {
                        MerkleError::PathLength {
                            expected: expected_path_len(other, n),
                            found: len,
                        }
                    } else {
                        MerkleError::RootMismatch
                    };
                    assert_eq!(
                        verify_proof(&root, leaf, &bad),
                        Err(want),
                        "n={n} i={i} o={other}"
                    );
                }

                for other in (0..2 * n + 3).chain([u64::MAX]).filter(|&o| o != n) {
                    let bad = MerkleProof {
                        leaf_count: other,
                        ..proof.clone()
                    };
                    let want = if i >= other {
                        Err(MerkleError::IndexOutOfRange {
                            index: i,
                            count: other,
                        })
                    } else if expected_path_len(i, other) != len {
                        Err(MerkleError::PathLength {
                            expected: expected_path_len(i, other),
                            found: len,
                        })
                    } else {
                        // Even where the sibling order matches, the root binds the count.
                        Err(MerkleError::RootMismatch)
                    };
                    assert_eq!(
                        verify_proof(&root, leaf, &bad),
                        want,
                        "n={n} i={i} c={other}"
                    );
                }
            }
        }
    }

    #[test]
    fn leaf_count_is_bound_by_the_root() {
        // In plain RFC 9162 this lying count verifies, because leaf 0 of 3 and of 4 leaves
        // have the same sibling order; the count commitment refuses it.
        let tree = MerkleTree::from_leaves(&["a", "b", "c"]);
        let proof = tree.proof(0).expect("in range");
        assert_eq!(sides(0, 3), sides(0, 4));
        let lying = MerkleProof {
            leaf_count: 4,
            ..proof
        };
        assert_eq!(
            verify_proof(&tree.root(), b"a", &lying),
            Err(MerkleError::RootMismatch)
        );
    }

    #[test]
    fn empty_tree_has_no_proofs() {
        let tree = MerkleTree::from_leaves::<&[u8]>(&[]);
        assert!(tree.is_empty());
        assert_eq!(tree.root(), empty_root());
        assert_eq!(tree.proof(0), None);
        let proof = MerkleProof {
            leaf_index: 0,
            leaf_count: 0,
            siblings: BoundedVec::new(),
        };
        assert_eq!(
            verify_proof(&empty_root(), b"", &proof),
            Err(MerkleError::IndexOutOfRange { index: 0, count: 0 })
        );
    }

    #[test]
    fn encoding_limits() {
        let full = MerkleProof {
            leaf_index: u64::MAX - 1,
            leaf_count: u64::MAX,
            siblings: BoundedVec::try_from_vec(vec![Hash([0xab; 32]); MAX_PROOF_DEPTH])
                .expect("bound"),
        };
        let bytes = encode(&full);
        assert_eq!(bytes.len(), MerkleProof::MAX_ENCODED_LEN);
        assert_eq!(decode::<MerkleProof>(&bytes), Ok(full));
        // 65 siblings with small varints: refused.
        let mut over = vec![0u8, 1, 65];
        over.extend(std::iter::repeat_n(0u8, 65 * 32));
        assert!(decode::<MerkleProof>(&over).is_err());
        // Overlong varint for the index: refused as non-canonical.
        assert!(decode::<MerkleProof>(&[0x80, 0x00, 1, 0]).is_err());
        assert!(decode::<MerkleProof>(&[0, 1, 0]).is_ok());
    }

    #[test]
    fn error_messages_read_well() {
        let e = MerkleError::IndexOutOfRange { index: 5, count: 3 };
        assert_eq!(
            e.to_string(),
            "leaf index 5 is out of range for a tree of 3 leaves"
        );
        let e = MerkleError::PathLength {
            expected: 2,
            found: 3,
        };
        assert_eq!(
            e.to_string(),
            "proof has 3 sibling hashes where its index and leaf count need 2"
        );
    }

    fn arb_proof() -> impl Strategy<Value = MerkleProof> {
        (
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(any::<[u8; 32]>(), 0..=MAX_PROOF_DEPTH),
        )
            .prop_map(|(leaf_index, leaf_count, siblings)| MerkleProof {
                leaf_index,
                leaf_count,
                siblings: BoundedVec::try_from_vec(siblings.into_iter().map(Hash).collect())
                    .unwrap_or_default(),
            })
    }

    proptest! {
        #[test]
        fn random_lists_match_reference(
            leaves in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..160),
            pick in any::<prop::sample::Index>(),
        ) {
            let root = all_roots_agree(&leaves);
            if !leaves.is_empty() {
                let i = pick.index(leaves.len());
                let proof = MerkleTree::from_leaves(&leaves).proof(i as u64).expect("in range");
                prop_assert_eq!(&proof.siblings[..], &reference_path(i, &leaves)[..]);
                prop_assert_eq!(verify_proof(&root, &leaves[i], &proof), Ok(()));
            }
        }

        #[test]
        fn verifier_checks_path_length_for_any_count(proof in arb_proof(), root: [u8; 32]) {
            let (index, count) = (proof.leaf_index, proof.leaf_count);
            let result = verify_proof(&Hash(root), b"leaf", &proof);
            if index >= count {
                prop_assert_eq!(result, Err(MerkleError::IndexOutOfRange { index, count }));
            } else if expected_path_len(index, count) != proof.siblings.len() {
                prop_assert_eq!(result, Err(MerkleError::PathLength {
                    expected: expected_path_len(index, count),
                    found: proof.siblings.len(),
                }));
            } else {
                prop_assert_eq!(result, Err(MerkleError::RootMismatch));
            }
        }

        #[test]
        fn path_length_matches_shape(count in 1u64.., pick: u64) {
            let index = pick % count;
            prop_assert_eq!(expected_path_len(index, count), sides(index, count).len());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2200)) {
            if let Ok(proof) = decode::<MerkleProof>(&bytes) {
                prop_assert_eq!(encode(&proof), bytes);
            }
        }

        #[test]
        fn mutated_encodings_never_panic(proof in arb_proof(), at: prop::sample::Index, byte: u8) {
            let mut bytes = encode(&proof);
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(decoded) = decode::<MerkleProof>(&bytes) {
                prop_assert_eq!(encode(&decoded), bytes);
            }
        }

        #[test]
        fn proofs_round_trip(proof in arb_proof()) {
            let bytes = encode(&proof);
            prop_assert!(bytes.len() <= MerkleProof::MAX_ENCODED_LEN);
            prop_assert_eq!(decode::<MerkleProof>(&bytes), Ok(proof));
        }
    }
}
