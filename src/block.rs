//! Blocks and block headers.

use core::ops::Deref;

use crate::crypto::{self, Keypair, PublicKey, Signature, SignatureError, SigningDomain};
use crate::encoding::{BoundedVec, Canonical, encode};
use crate::hash::{Hash, tags};
use crate::limits::{MAX_BLOCK_BYTES, MAX_HEADER_BYTES, MAX_TRANSFERS_PER_BLOCK};
use crate::merkle::MerkleBuilder;
use crate::target::Target;
use crate::tx::{Coinbase, Transfer};
use crate::{Epoch, Height, TimestampMs};

/// The header version this software produces and accepts.
pub const HEADER_VERSION: u32 = 1;

/// A proof of space: which plot and which group of it holds the winning leaf.
///
/// The plot is identified by the header's miner key, this seed and the genesis plot parameters;
/// the verifier recomputes the group's leaves, so no Merkle path is needed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct ProofOfSpace {
    /// The plot's seed, chosen by the miner when plotting.
    pub plot_seed: Hash,
    /// Index of the group whose leaf at the challenge's scoop wins.
    pub group: u64,
}

/// Why a block or header is malformed, independent of chain state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The key used to sign is not the header's miner key.
    #[error("signing key {key} is not the block's miner {miner}")]
    WrongSigner {
        /// The key that tried to sign.
        key: PublicKey,
        /// The header's miner.
        miner: PublicKey,
    },
    /// The header signature does not verify.
    #[error("bad header signature: {0}")]
    Signature(#[from] SignatureError),
    /// The transaction root in the header does not match the body.
    #[error("transaction root mismatch: header has {header}, body gives {computed}")]
    TxRoot {
        /// Root in the header.
        header: Hash,
        /// Root computed from the body.
        computed: Hash,
    },
    /// The block encodes to more than the size limit.
    #[error("block of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// Every header field except the signature; the miner signs its encoding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnsignedHeader {
    /// Header format version, [`HEADER_VERSION`].
    pub version: u32,
    /// Height: the parent's plus one.
    pub height: Height,
    /// Hash of the parent block.
    pub parent: Hash,
    /// Milliseconds since the Unix epoch; inside `epoch`.
    pub timestamp_ms: TimestampMs,
    /// The epoch the block was won in.
    pub epoch: Epoch,
    /// The difficulty target this block had to meet.
    pub target: Target,
    /// The challenge of `epoch` on top of `parent`.
    pub challenge: Hash,
    /// The proof of space answering the challenge.
    pub proof: ProofOfSpace,
    /// The proof's score; wins when below `target`.
    pub score: Hash,
    /// The miner: owner of the plot and signer of the header.
    pub miner: PublicKey,
    /// Merkle root of the transaction ids, coinbase first.
    pub tx_root: Hash,
    /// Root of the account state after this block.
    pub state_root: Hash,
}

impl UnsignedHeader {
    /// Signs the header with the miner's key.
    pub fn sign(self, key: &Keypair) -> Result<BlockHeader, BlockError> {
        self.check_signer(key)?;
        let signature = key.sign(SigningDomain::Block, &encode(&self));
        Ok(BlockHeader {
            unsigned: self,
            signature,
        })
    }

    /// Signs the header with the miner's key and witness randomness from `rng` (the node's).
    pub fn sign_with<R: rand_core::RngCore + rand_core::CryptoRng>(
        self,
        key: &Keypair,
        rng: &mut R,
    ) -> Result<BlockHeader, BlockError> {
        self.check_signer(key)?;
        let signature = key.sign_with(SigningDomain::Block, &encode(&self), rng);
        Ok(BlockHeader {
            unsigned: self,
            signature,
        })
    }

    fn check_signer(&self, key: &Keypair) -> Result<(), BlockError> {
        if key.public() != self.miner {
            return Err(BlockError::WrongSigner {
                key: key.public(),
                miner: self.miner,
            });
        }
        Ok(())
    }
}

/// A signed block header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockHeader {
    /// The signed fields.
    pub unsigned: UnsignedHeader,
    /// The miner's signature over the encoding of `unsigned`, in the `Block` domain.
    pub signature: Signature,
}

impl Deref for BlockHeader {
    type Target = UnsignedHeader;
    fn deref(&self) -> &UnsignedHeader {
        &self.unsigned
    }
}

impl Canonical for BlockHeader {
    const NAME: &'static str = "block header";
    const MAX_ENCODED_LEN: usize = MAX_HEADER_BYTES;
}

impl BlockHeader {
    /// The block hash: the hash of the whole signed header, which commits to the body through
    /// the transaction root.
    pub fn hash(&self) -> Hash {
        crate::encoding::hash_encoded(tags::BLOCK_HASH, self)
    }

    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        encode(&self.unsigned)
    }

    /// Verifies the miner's signature.
    pub fn verify_signature(&self) -> Result<(), BlockError> {
        crypto::verify(
            SigningDomain::Block,
            &self.miner,
            &self.signing_bytes(),
            &self.signature,
        )?;
        Ok(())
    }
}

/// A block: header, coinbase, and transfers.
///
/// The coinbase is a field of its own, so "the coinbase is the first transaction and the only
/// one" holds by construction: no encoding of a block can have two or none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The coinbase, transaction 0.
    pub coinbase: Coinbase,
    /// Transfers, transactions 1..
    pub transfers: BoundedVec<Transfer, MAX_TRANSFERS_PER_BLOCK>,
}

impl Canonical for Block {
    const NAME: &'static str = "block";
    const MAX_ENCODED_LEN: usize = MAX_BLOCK_BYTES;
}

impl Block {
    /// The block hash (the header's).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Transaction ids in block order, coinbase first.
    pub fn tx_ids(&self) -> impl Iterator<Item = Hash> + '_ {
        core::iter::once(self.coinbase.id()).chain(self.transfers.iter().map(Transfer::id))
    }

    /// The transaction root of this body.
    pub fn compute_tx_root(&self) -> Hash {
        tx_root_of_ids(self.tx_ids())
    }

    /// Checks the header's transaction root against the body.
    pub fn check_tx_root(&self) -> Result<(), BlockError> {
        let computed = self.compute_tx_root();
        if computed != self.header.tx_root {
            return Err(BlockError::TxRoot {
                header: self.header.tx_root,
                computed,
            });
        }
        Ok(())
    }

    /// Checks the encoded size against [`MAX_BLOCK_BYTES`] (decoded blocks always pass; this
    /// guards blocks assembled locally).
    pub fn check_size(&self) -> Result<(), BlockError> {
        let size = crate::encoding::encoded_len(self);
        if size > MAX_BLOCK_BYTES {
            return Err(BlockError::TooLarge {
                size,
                max: MAX_BLOCK_BYTES,
            });
        }
        Ok(())
    }
}

/// The Merkle root of the transaction ids of a body, coinbase first.
pub fn tx_root(coinbase: &Coinbase, transfers: &[Transfer]) -> Hash {
    tx_root_of_ids(core::iter::once(coinbase.id()).chain(transfers.iter().map(Transfer::id)))
}

/// The transaction root from transaction ids already computed, in block order (the one
/// definition of the rule; streaming, no allocation).
pub fn tx_root_of_ids(ids: impl IntoIterator<Item = Hash>) -> Hash {
    let mut builder = MerkleBuilder::new();
    for id in ids {
        builder.push(id.as_bytes());
    }
    builder.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode;
    use crate::tx::tests::{coinbase, transfer};
    use proptest::prelude::*;

    fn header(miner: PublicKey) -> UnsignedHeader {
        UnsignedHeader {
            version: HEADER_VERSION,
            height: 7,
            parent: Hash([1; 32]),
            timestamp_ms: 1_700_000_000_000,
            epoch: 99,
            target: Target::from_leading_zero_bits(10),
            challenge: Hash([2; 32]),
            proof: ProofOfSpace {
                plot_seed: Hash([3; 32]),
                group: 12_345,
            },
            score: Hash([4; 32]),
            miner,
            tx_root: Hash::ZERO,
            state_root: Hash([5; 32]),
        }
    }

    pub(crate) fn block(key: &Keypair, transfers: usize) -> Block {
        let sender = Keypair::generate();
        let cb = coinbase(key.public());
        let txs: Vec<Transfer> = (0..transfers as u64)
            .map(|n| transfer(&sender, n))
            .collect();
        let mut unsigned = header(key.public());
        unsigned.tx_root = tx_root(&cb, &txs);
        Block {
            header: unsigned.sign(key).unwrap(),
            coinbase: cb,
            transfers: BoundedVec::try_from_vec(txs).unwrap(),
        }
    }

    #[test]
    fn header_signs_verifies_and_round_trips() {
        let key = Keypair::generate();
        let h = header(key.public()).sign(&key).unwrap();
        h.verify_signature().unwrap();
        let bytes = encode(&h);
        assert!(bytes.len() <= MAX_HEADER_BYTES);
        let back = decode::<BlockHeader>(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.hash(), h.hash());
        assert_eq!(h.hash(), crate::hash::hash(tags::BLOCK_HASH, &bytes));
    }

    #[test]
    fn every_field_is_signed() {
        let key = Keypair::generate();
        let h = header(key.public()).sign(&key).unwrap();
        let mut variants = Vec::new();
        let mut v = h.clone();
        v.unsigned.height += 1;
        variants.push(v);
        let mut v = h.clone();
        v.unsigned.proof.group += 1;
        variants.push(v);
        let mut v = h.clone();
        v.unsigned.state_root.0[31] ^= 1;
        variants.push(v);
        let mut v = h.clone();
        v.unsigned.target.0[31] ^= 1;
        variants.push(v);
        for v in variants {
            assert!(v.verify_signature().is_err());
            assert_ne!(v.hash(), h.hash());
        }
        let other = Keypair::generate();
        assert!(matches!(
            header(key.public()).sign(&other),
            Err(BlockError::WrongSigner { .. })
        ));
    }

    #[test]
    fn largest_header_fits_its_limit() {
        let key = Keypair::generate();
        let mut u = header(key.public());
        u.version = u32::MAX;
        u.height = u64::MAX;
        u.timestamp_ms = u64::MAX;
        u.epoch = u64::MAX;
        u.proof.group = u64::MAX;
        let h = u.sign(&key).unwrap();
        assert_eq!(encode(&h).len(), MAX_HEADER_BYTES);
    }

    #[test]
    fn block_round_trip_and_tx_root() {
        let key = Keypair::generate();
        let b = block(&key, 5);
        b.check_tx_root().unwrap();
        b.check_size().unwrap();
        let bytes = encode(&b);
        assert_eq!(decode::<Block>(&bytes).unwrap(), b);
        assert_eq!(b.tx_ids().count(), 6);
        assert_eq!(
            b.compute_tx_root(),
            crate::merkle::merkle_root(&b.tx_ids().collect::<Vec<_>>())
        );
        // Dropping, reordering or changing a transfer changes the root.
        let mut dropped = b.clone();
        dropped.transfers = BoundedVec::try_from_vec(b.transfers[1..].to_vec()).unwrap();
        assert!(matches!(
            dropped.check_tx_root(),
            Err(BlockError::TxRoot { .. })
        ));
        let mut swapped = b.transfers.to_vec();
        swapped.swap(0, 1);
        let mut reordered = b.clone();
        reordered.transfers = BoundedVec::try_from_vec(swapped).unwrap();
        assert!(reordered.check_tx_root().is_err());
        let mut cb = b.clone();
        cb.coinbase.height += 1;
        assert!(cb.check_tx_root().is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode::<BlockHeader>(&bytes);
            let _ = decode::<Block>(&bytes);
        }

        #[test]
        fn corrupted_header_bytes_never_verify(pos in 0usize..300, bit in 0u8..8) {
            let key = Keypair::generate();
            let h = header(key.public()).sign(&key).unwrap();
            let mut bytes = encode(&h);
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            if let Ok(back) = decode::<BlockHeader>(&bytes) {
                prop_assert!(back.verify_signature().is_err());
            }
        }
    }
}
