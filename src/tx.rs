//! Transactions: signed transfers between accounts, and the coinbase that pays the miner.

use core::ops::Deref;

use crate::crypto::{self, Address, Keypair, PublicKey, Signature, SignatureError, SigningDomain};
use crate::encoding::{BoundedBytes, BoundedVec, Canonical, encode};
use crate::hash::{Hash, tags};
use crate::limits::{
    MAX_COINBASE_BYTES, MAX_COINBASE_EXTRA_BYTES, MAX_COINBASE_OUTPUTS, MAX_TRANSFER_BYTES,
};
use crate::{Amount, Height};

/// Identifies the chain a transfer is valid on, so it cannot be replayed on another network.
///
/// It is the first 8 bytes (big-endian) of the network id, the genesis block hash, so two
/// networks with different genesis configurations have different chain ids with overwhelming
/// probability and nobody has to allocate them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ChainId(pub u64);

impl ChainId {
    /// The chain id of the network whose genesis hash is `network_id`.
    pub fn from_network_id(network_id: &Hash) -> Self {
        let mut first = [0u8; 8];
        first.copy_from_slice(&network_id.0[..8]);
        Self(u64::from_be_bytes(first))
    }
}

impl core::fmt::Display for ChainId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a transaction is malformed, independent of chain state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The key used to sign is not the sender's.
    #[error("signing key {key} is not the sender {from}")]
    WrongSigner {
        /// The key that tried to sign.
        key: PublicKey,
        /// The transfer's sender.
        from: Address,
    },
    /// The transfer is for another network.
    #[error("transfer is for chain {found}, this chain is {expected}")]
    WrongChain {
        /// This network's chain id.
        expected: ChainId,
        /// The transfer's chain id.
        found: ChainId,
    },
    /// `amount + fee` does not fit in 64 bits.
    #[error("transfer amount plus fee overflows")]
    AmountOverflow,
    /// The coinbase outputs add up to more than 64 bits.
    #[error("coinbase outputs overflow")]
    CoinbaseOverflow,
    /// A transfer of zero coins.
    #[error("transfer of zero coins")]
    ZeroAmount,
    /// The signature does not verify.
    #[error("bad transfer signature: {0}")]
    Signature(#[from] SignatureError),
}

/// The signed part of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnsignedTransfer {
    /// The paying account; it signs.
    pub from: Address,
    /// The receiving account.
    pub to: Address,
    /// Coins moved to `to`.
    pub amount: Amount,
    /// Coins paid to the miner of the including block.
    pub fee: Amount,
    /// The sender's transaction count before this one; each nonce is used exactly once.
    pub nonce: u64,
    /// The network this transfer is valid on.
    pub chain_id: ChainId,
}

impl UnsignedTransfer {
    /// Signs the transfer; `key` must be the sender's.
    pub fn sign(self, key: &Keypair) -> Result<Transfer, TxError> {
        if key.public() != self.from {
            return Err(TxError::WrongSigner {
                key: key.public(),
                from: self.from,
            });
        }
        let signature = key.sign(SigningDomain::Tx, &encode(&self));
        Ok(Transfer {
            unsigned: self,
            signature,
        })
    }

    /// `amount + fee`: what the sender's balance must cover.
    pub fn total_debit(&self) -> Result<Amount, TxError> {
        self.amount
            .checked_add(self.fee)
            .ok_or(TxError::AmountOverflow)
    }
}

/// A signed transfer of coins from one account to another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transfer {
    /// The signed fields.
    pub unsigned: UnsignedTransfer,
    /// The sender's signature over the encoding of `unsigned`, in the `Tx` domain.
    pub signature: Signature,
}

impl Deref for Transfer {
    type Target = UnsignedTransfer;
    fn deref(&self) -> &UnsignedTransfer {
        &self.unsigned
    }
}

impl Canonical for Transfer {
    const NAME: &'static str = "transfer";
    const MAX_ENCODED_LEN: usize = MAX_TRANSFER_BYTES;
}

impl Transfer {
    /// The transaction id: the hash of the whole signed transfer.
    pub fn id(&self) -> Hash {
        crate::encoding::hash_encoded(tags::TRANSFER_ID, self)
    }

    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        encode(&self.unsigned)
    }

    /// Verifies the signature alone (blocks batch-verify instead; see [`crypto::verify_batch`]).
    pub fn verify_signature(&self) -> Result<(), TxError> {
        crypto::verify(
            SigningDomain::Tx,
            &self.from,
            &self.signing_bytes(),
            &self.signature,
        )?;
        Ok(())
    }

    /// Checks what can be checked without chain state or signatures: chain id, a non-zero
    /// amount, and that `amount + fee` does not overflow.
    pub fn check_well_formed(&self, chain_id: ChainId) -> Result<(), TxError> {
        if self.chain_id != chain_id {
            return Err(TxError::WrongChain {
                expected: chain_id,
                found: self.chain_id,
            });
        }
        if self.amount == Amount::ZERO {
            return Err(TxError::ZeroAmount);
        }
        self.total_debit().map(|_| ())
    }
}

/// One payment of a coinbase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoinbaseOutput {
    /// Recipient.
    pub to: Address,
    /// Coins created for the recipient.
    pub amount: Amount,
}

/// The first transaction of every block: creates the block reward plus fees.
///
/// It carries no signature of its own; the header signature by `miner` covers it through the
/// transaction root. Its credits mature after the genesis `coinbase_maturity` blocks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coinbase {
    /// Height of the block; makes every coinbase unique.
    pub height: Height,
    /// Payments (reward splits between miner, pool, funds).
    pub outputs: BoundedVec<CoinbaseOutput, MAX_COINBASE_OUTPUTS>,
    /// The block producer; must equal the header's miner key.
    pub miner: PublicKey,
    /// Free-form data of at most 100 bytes (pool tags, extra nonce).
    pub extra_data: BoundedBytes<MAX_COINBASE_EXTRA_BYTES>,
}

impl Canonical for Coinbase {
    const NAME: &'static str = "coinbase";
    const MAX_ENCODED_LEN: usize = MAX_COINBASE_BYTES;
}

impl Coinbase {
    /// The transaction id.
    pub fn id(&self) -> Hash {
        crate::encoding::hash_encoded(tags::COINBASE_ID, self)
    }

    /// The sum of the outputs.
    pub fn total_output(&self) -> Result<Amount, TxError> {
        Amount::try_sum(self.outputs.iter().map(|o| o.amount))
            .map_err(|_| TxError::CoinbaseOverflow)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode;
    use crate::encoding::DecodeError;
    use proptest::prelude::*;

    pub(crate) fn transfer(key: &Keypair, nonce: u64) -> Transfer {
        UnsignedTransfer {
            from: key.public(),
            to: PublicKey([7; 32]),
            amount: Amount(1_000),
            fee: Amount(10),
            nonce,
            chain_id: ChainId(42),
        }
        .sign(key)
        .unwrap()
    }

    pub(crate) fn coinbase(miner: PublicKey) -> Coinbase {
        Coinbase {
            height: 5,
            outputs: BoundedVec::try_from_vec(vec![
                CoinbaseOutput {
                    to: miner,
                    amount: Amount(900),
                },
                CoinbaseOutput {
                    to: PublicKey([3; 32]),
                    amount: Amount(100),
                },
            ])
            .unwrap(),
            miner,
            extra_data: BoundedBytes::try_from_slice(b"pool").unwrap(),
        }
    }

    #[test]
    fn transfer_signs_verifies_and_round_trips() {
        let key = Keypair::generate();
        let tx = transfer(&key, 3);
        tx.verify_signature().unwrap();
        tx.check_well_formed(ChainId(42)).unwrap();
        let bytes = encode(&tx);
        assert!(bytes.len() <= MAX_TRANSFER_BYTES);
        assert_eq!(decode::<Transfer>(&bytes).unwrap(), tx);
        assert_eq!(decode::<Transfer>(&bytes).unwrap().id(), tx.id());
    }

    #[test]
    fn tampering_breaks_the_signature_and_changes_the_id() {
        let key = Keypair::generate();
        let tx = transfer(&key, 0);
        let mut bad = tx.clone();
        bad.unsigned.amount = Amount(1_001);
        assert!(matches!(bad.verify_signature(), Err(TxError::Signature(_))));
        assert_ne!(bad.id(), tx.id());
    }

    #[test]
    fn only_the_sender_signs() {
        let key = Keypair::generate();
        let other = Keypair::generate();
        let unsigned = transfer(&key, 0).unsigned;
        assert!(matches!(
            unsigned.sign(&other),
            Err(TxError::WrongSigner { .. })
        ));
    }

    #[test]
    fn well_formedness() {
        let key = Keypair::generate();
        let tx = transfer(&key, 0);
        assert!(matches!(
            tx.check_well_formed(ChainId(1)),
            Err(TxError::WrongChain { .. })
        ));
        let mut zero = tx.clone();
        zero.unsigned.amount = Amount::ZERO;
        assert_eq!(
            zero.check_well_formed(ChainId(42)),
            Err(TxError::ZeroAmount)
        );
        let mut huge = tx;
        huge.unsigned.amount = Amount::MAX;
        assert_eq!(
            huge.check_well_formed(ChainId(42)),
            Err(TxError::AmountOverflow)
        );
    }

    #[test]
    fn largest_transfer_fits_its_limit() {
        let key = Keypair::generate();
        let mut tx = transfer(&key, u64::MAX);
        tx.unsigned.amount = Amount::MAX;
        tx.unsigned.fee = Amount::MAX;
        tx.unsigned.chain_id = ChainId(u64::MAX);
        assert_eq!(encode(&tx).len(), MAX_TRANSFER_BYTES);
    }

    #[test]
    fn coinbase_round_trip_ids_and_totals() {
        let cb = coinbase(PublicKey([1; 32]));
        let bytes = encode(&cb);
        assert_eq!(decode::<Coinbase>(&bytes).unwrap(), cb);
        assert_eq!(cb.total_output(), Ok(Amount(1_000)));
        // Ids of the two kinds live in different domains.
        assert_ne!(cb.id(), crate::hash::hash(tags::TRANSFER_ID, &bytes));
        let mut big = cb.clone();
        big.outputs = BoundedVec::try_from_vec(vec![
            CoinbaseOutput {
                to: PublicKey([1; 32]),
                amount: Amount::MAX,
            },
            CoinbaseOutput {
                to: PublicKey([1; 32]),
                amount: Amount(1),
            },
        ])
        .unwrap();
        assert_eq!(big.total_output(), Err(TxError::CoinbaseOverflow));
    }

    #[test]
    fn coinbase_extra_data_over_100_bytes_is_rejected() {
        let mut bytes = encode(&Coinbase {
            extra_data: BoundedBytes::new(),
            ..coinbase(PublicKey([1; 32]))
        });
        // Replace the trailing empty extra data (length 0) with 101 bytes.
        assert_eq!(bytes.pop(), Some(0));
        bytes.push(101);
        bytes.extend_from_slice(&[0u8; 101]);
        assert!(matches!(
            decode::<Coinbase>(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(BoundedBytes::<MAX_COINBASE_EXTRA_BYTES>::try_from_slice(&[0; 101]).is_err());
    }

    #[test]
    fn largest_coinbase_fits_its_limit() {
        let out = CoinbaseOutput {
            to: PublicKey([1; 32]),
            amount: Amount::MAX,
        };
        let cb = Coinbase {
            height: u64::MAX,
            outputs: BoundedVec::try_from_vec(vec![out; MAX_COINBASE_OUTPUTS]).unwrap(),
            miner: PublicKey([2; 32]),
            extra_data: BoundedBytes::try_from_slice(&[9; MAX_COINBASE_EXTRA_BYTES]).unwrap(),
        };
        let bytes = encode(&cb);
        assert_eq!(bytes.len(), MAX_COINBASE_BYTES);
        assert_eq!(decode::<Coinbase>(&bytes).unwrap(), cb);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode::<Transfer>(&bytes);
            let _ = decode::<Coinbase>(&bytes);
        }

        #[test]
        fn chain_id_is_prefix_of_network_id(bytes: [u8; 32]) {
            let id = ChainId::from_network_id(&Hash(bytes));
            let prefix = id.0.to_be_bytes();
            prop_assert_eq!(&prefix[..], &bytes[..8]);
        }
    }
}
