//! Why the mempool refused a transfer.

use crate::Amount;
use crate::crypto::SignatureError;
use crate::hash::Hash;
use crate::tx::{ChainId, TxError};

/// Why [`super::Mempool::add`] refused a transfer; one variant per rule, in the order checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The encoding is longer than any valid transfer.
    #[error("transfer of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The transfer is for another network.
    #[error("transfer is for chain {found}, this chain is {expected}")]
    WrongChain {
        /// This network's chain id.
        expected: ChainId,
        /// The transfer's chain id.
        found: ChainId,
    },
    /// A transfer of zero coins.
    #[error("transfer of zero coins")]
    ZeroAmount,
    /// `amount + fee` does not fit in 64 bits.
    #[error("transfer amount {amount} plus fee {fee} overflows")]
    AmountOverflow {
        /// The amount.
        amount: Amount,
        /// The fee.
        fee: Amount,
    },
    /// Another stateless defect of the transfer.
    #[error("malformed transfer: {0}")]
    Malformed(TxError),
    /// The fee is under the pool's minimum.
    #[error("fee {fee} is below the minimum of {min}")]
    FeeTooLow {
        /// The transfer's fee.
        fee: Amount,
        /// The pool's minimum fee.
        min: Amount,
    },
    /// The nonce was already used on chain.
    #[error("nonce {nonce} is below the account's next nonce {expected}")]
    NonceTooLow {
        /// The transfer's nonce.
        nonce: u64,
        /// The account's next nonce at the tip.
        expected: u64,
    },
    /// The nonce leaves a gap after the sender's queued transfers.
    #[error("nonce {nonce} leaves a gap: the sender's next nonce is {next}")]
    NonceGap {
        /// The transfer's nonce.
        nonce: u64,
        /// The next nonce after the sender's queued transfers.
        next: u64,
    },
    /// The sender already has the most queued transfers allowed.
    #[error("sender already has {queued} queued transfers, the limit is {max}")]
    TooManyFromSender {
        /// Transfers queued for the sender.
        queued: usize,
        /// The per-sender limit.
        max: usize,
    },
    /// The same transfer is already in the pool.
    #[error("transfer {id} is already in the pool")]
    Duplicate {
        /// Its id.
        id: Hash,
    },
    /// A replacement for the same sender and nonce does not pay enough more.
    #[error(
        "replacement of nonce {nonce} pays fee {fee}, at least {required} is required \
         (queued transfer pays {old_fee})"
    )]
    ReplacementFeeTooLow {
        /// The nonce both transfers use.
        nonce: u64,
        /// Fee of the queued transfer.
        old_fee: Amount,
        /// Fee of the replacement.
        fee: Amount,
        /// The smallest fee that would replace it (`u128` because it may exceed any amount).
        required: u128,
    },
    /// The mature balance does not cover this transfer after the sender's earlier queued ones.
    #[error(
        "insufficient balance: {needed} needed ({queued} for earlier queued transfers), \
         {mature} spendable"
    )]
    InsufficientBalance {
        /// `amount + fee` of this transfer and of the sender's queued transfers before it.
        needed: u128,
        /// The part of `needed` owed to the earlier queued transfers.
        queued: u128,
        /// The sender's mature balance at the tip.
        mature: Amount,
    },
    /// The replacement is affordable, but the sender's later queued transfers no longer are.
    #[error(
        "replacement leaves later queued transfers unaffordable: {needed} needed in total, \
         {mature} spendable"
    )]
    ReplacementUnaffordable {
        /// `amount + fee` of all the sender's queued transfers with the replacement.
        needed: u128,
        /// The sender's mature balance at the tip.
        mature: Amount,
    },
    /// The signature does not verify.
    #[error("bad transfer signature: {0}")]
    BadSignature(SignatureError),
    /// The pool is full and this transfer would be the first one evicted.
    #[error(
        "pool full ({bytes} of {max_bytes} bytes), fee rate too low: fee {fee} for {size} bytes \
         does not beat the lowest evictable transfer"
    )]
    PoolFull {
        /// The transfer's fee.
        fee: Amount,
        /// Its encoded size.
        size: usize,
        /// Bytes in the pool.
        bytes: usize,
        /// The pool's byte limit.
        max_bytes: usize,
    },
}

impl MempoolError {
    /// A short stable label, for metrics (`spacetime_mempool_rejected_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::WrongChain { .. } => "wrong_chain",
            Self::ZeroAmount => "zero_amount",
            Self::AmountOverflow { .. } => "amount_overflow",
            Self::Malformed(_) => "malformed",
            Self::FeeTooLow { .. } => "fee_too_low",
            Self::NonceTooLow { .. } => "nonce_too_low",
            Self::NonceGap { .. } => "nonce_gap",
            Self::TooManyFromSender { .. } => "too_many_from_sender",
            Self::Duplicate { .. } => "duplicate",
            Self::ReplacementFeeTooLow { .. } => "replacement_fee_too_low",
            Self::InsufficientBalance { .. } => "insufficient_balance",
            Self::ReplacementUnaffordable { .. } => "replacement_unaffordable",
            Self::BadSignature(_) => "bad_signature",
            Self::PoolFull { .. } => "pool_full",
        }
    }

    /// Maps a stateless or signature error of a transfer with `amount` and `fee`.
    pub(super) fn from_tx(error: TxError, amount: Amount, fee: Amount) -> Self {
        match error {
            TxError::WrongChain { expected, found } => Self::WrongChain { expected, found },
            TxError::ZeroAmount => Self::ZeroAmount,
            TxError::AmountOverflow => Self::AmountOverflow { amount, fee },
            TxError::Signature(e) => Self::BadSignature(e),
            other @ (TxError::WrongSigner { .. } | TxError::CoinbaseOverflow) => {
                Self::Malformed(other)
            }
        }
    }
}
