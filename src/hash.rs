//! BLAKE2b-256 with mandatory domain separation.
//!
//! Every hash in the protocol is `BLAKE2b-256(len(tag) || tag || data)` where `tag` is a short
//! ASCII string from [`tags`] and `len(tag)` is one byte. Two uses with different tags can never
//! produce the same preimage, so a value hashed for one purpose cannot be replayed as another.

use blake2::Digest;
use blake2::digest::consts::U32;

crate::fixed_bytes!(
    /// A 32-byte BLAKE2b-256 digest: block hashes, transaction ids, Merkle roots, challenges.
    Hash,
    32
);

/// The domain tags of every hash the protocol computes, in one place.
pub mod tags {
    /// Merkle tree leaf.
    pub const MERKLE_LEAF: &[u8] = b"merkle-leaf";
    /// Merkle tree inner node.
    pub const MERKLE_NODE: &[u8] = b"merkle-node";
    /// Merkle tree hash of an empty list.
    pub const MERKLE_EMPTY: &[u8] = b"merkle-empty";
    /// Merkle root: the leaf count bound to the tree hash.
    pub const MERKLE_ROOT: &[u8] = b"merkle-root";
    /// Transfer transaction id.
    pub const TRANSFER_ID: &[u8] = b"transfer-id";
    /// Coinbase transaction id.
    pub const COINBASE_ID: &[u8] = b"coinbase-id";
    /// Block hash (the hash of the full signed header).
    pub const BLOCK_HASH: &[u8] = b"block-hash";
    /// Genesis configuration commitment.
    pub const GENESIS_CONFIG: &[u8] = b"genesis-config";
    /// Key file checksum.
    pub const KEY_FILE: &[u8] = b"key-file";
    /// Node id from a Noise static key.
    pub const NODE_ID: &[u8] = b"node-id";
    /// Epoch challenge.
    pub const CHALLENGE: &[u8] = b"challenge";
    /// Randomness beacon.
    pub const BEACON: &[u8] = b"beacon";
    /// Proof score.
    pub const SCORE: &[u8] = b"score";
    /// Plot identity.
    pub const PLOT_ID: &[u8] = b"plot-id";
    /// Start of a plot group's hash chain.
    pub const PLOT_CHAIN: &[u8] = b"plot-chain";
    /// Scoop and bucket selection.
    pub const SCOOP: &[u8] = b"scoop";
    /// State tree key of an account: the hash of its address.
    pub const SMT_KEY: &[u8] = b"smt-key";
    /// State tree value: the canonical encoding of an account.
    pub const SMT_VALUE: &[u8] = b"smt-value";
    /// State tree leaf: key || value hash.
    pub const SMT_LEAF: &[u8] = b"smt-leaf";
    /// State tree inner node: left child hash || right child hash.
    pub const SMT_NODE: &[u8] = b"smt-node";
    /// A plot leaf: the mixing pass over a group's chain.
    pub const PLOT_LEAF: &[u8] = b"plot-leaf";
    /// Plot file header checksum (local, not consensus).
    pub const PLOT_HEADER: &[u8] = b"plot-header";
    /// Plot file segment checksum (local, not consensus).
    pub const PLOT_SEGMENT: &[u8] = b"plot-segment";
    /// Per-address retry jitter of the address book (local, not consensus).
    pub const ADDR_JITTER: &[u8] = b"addr-jitter";
    /// The root seed of a simulated node's generator from a run's seed (local, not consensus).
    pub const RNG_SEED: &[u8] = b"rng-seed";
    /// A labelled child of a node's generator (local, not consensus).
    pub const RNG_DERIVE: &[u8] = b"rng-derive";
}

type Blake2b256 = blake2::Blake2b<U32>;

/// An incremental domain-separated BLAKE2b-256 hasher.
#[derive(Clone)]
pub struct Hasher(Blake2b256);

impl Hasher {
    /// Starts a hash in the domain `tag` (at most 255 bytes; protocol tags are short constants).
    pub fn new(tag: &[u8]) -> Self {
        debug_assert!(tag.len() <= usize::from(u8::MAX), "domain tag too long");
        let mut inner = Blake2b256::new();
        inner.update([tag.len() as u8]);
        inner.update(tag);
        Self(inner)
    }

    /// Feeds bytes. Callers concatenate only fixed-width or length-prefixed parts.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    /// Finishes the hash.
    pub fn finalize(self) -> Hash {
        Hash(self.0.finalize().into())
    }
}

/// `BLAKE2b-256` of `data` in the domain `tag`.
pub fn hash(tag: &[u8], data: &[u8]) -> Hash {
    let mut h = Hasher::new(tag);
    h.update(data);
    h.finalize()
}

/// `BLAKE2b-256` of the concatenation of `parts` in the domain `tag`.
pub fn hash_parts(tag: &[u8], parts: &[&[u8]]) -> Hash {
    let mut h = Hasher::new(tag);
    for part in parts {
        h.update(part);
    }
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_plain_blake2b_with_tag_prefix() {
        // Known answer: BLAKE2b-256 of the empty string, as published in RFC 7693 test tools.
        let plain: [u8; 32] = Blake2b256::digest(b"").into();
        assert_eq!(
            crate::bytes::to_hex(&plain),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
        let mut prefixed = vec![3u8];
        prefixed.extend_from_slice(b"tag");
        prefixed.extend_from_slice(b"data");
        let expected: [u8; 32] = Blake2b256::digest(&prefixed).into();
        assert_eq!(hash(b"tag", b"data"), Hash(expected));
    }

    #[test]
    fn domains_separate() {
        assert_ne!(hash(b"a", b"bc"), hash(b"ab", b"c"));
        assert_ne!(hash(tags::MERKLE_LEAF, b"x"), hash(tags::MERKLE_NODE, b"x"));
    }

    #[test]
    fn parts_equal_concatenation() {
        assert_eq!(hash_parts(b"t", &[b"ab", b"cd"]), hash(b"t", b"abcd"));
        let mut h = Hasher::new(b"t");
        h.update(b"a").update(b"bcd");
        assert_eq!(h.finalize(), hash(b"t", b"abcd"));
    }
}
