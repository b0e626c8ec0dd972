//! Why a block is refused, and why the chain database failed.

use crate::crypto::Address;
use crate::hash::Hash;
use crate::state_tree::{StoreError, TreeError};
use crate::target::Target;
use crate::tx::TxError;
use crate::{Amount, Epoch, Height, TimestampMs};

/// Why a block is invalid: each consensus rule has its own variant, in the order the rules are
/// checked (cheapest first). A peer that sends such a block is penalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBlock {
    /// The block encodes to more bytes than a block may have.
    #[error("block of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// [`crate::limits::MAX_BLOCK_BYTES`].
        max: usize,
    },
    /// The header version is not one this software accepts.
    #[error("header version {found} is not supported (expected {expected})")]
    Version {
        /// The header's version.
        found: u32,
        /// [`crate::block::HEADER_VERSION`].
        expected: u32,
    },
    /// Only the configuration creates block 0.
    #[error("a block of height 0 cannot be imported: the genesis block is built in")]
    GenesisHeight,
    /// The coinbase names another height than the header.
    #[error("coinbase height {coinbase} differs from the header height {header}")]
    CoinbaseHeight {
        /// Height in the coinbase.
        coinbase: Height,
        /// Height in the header.
        header: Height,
    },
    /// The coinbase miner key is not the header's.
    #[error("coinbase miner {coinbase} differs from the header miner {header}")]
    CoinbaseMiner {
        /// Miner in the coinbase.
        coinbase: Address,
        /// Miner in the header.
        header: Address,
    },
    /// The block contradicts a checkpoint of the genesis configuration.
    #[error(
        "block at checkpoint height {height} has hash {found}, the checkpoint requires {expected}"
    )]
    Checkpoint {
        /// The checkpoint height.
        height: Height,
        /// The checkpoint hash.
        expected: Hash,
        /// This block's hash.
        found: Hash,
    },
    /// The block was refused before (it or an ancestor broke a rule).
    #[error("block {hash} is known to be invalid")]
    KnownInvalid {
        /// The block.
        hash: Hash,
    },
    /// An ancestor of the block is invalid.
    #[error("ancestor {ancestor} of the block is invalid")]
    InvalidAncestor {
        /// The invalid ancestor (the parent or the first invalid block above it).
        ancestor: Hash,
    },
    /// The height is not the parent's plus one.
    #[error("height {found} does not follow the parent's height (expected {expected})")]
    Height {
        /// Parent height plus one.
        expected: Height,
        /// The header's height.
        found: Height,
    },
    /// The epoch is not after the parent's.
    #[error("epoch {epoch} is not after the parent's epoch {parent_epoch}")]
    EpochNotAfterParent {
        /// The header's epoch.
        epoch: Epoch,
        /// The parent's epoch.
        parent_epoch: Epoch,
    },
    /// The timestamp lies outside the header's epoch.
    #[error("timestamp {timestamp_ms} is outside epoch {epoch}")]
    TimestampOutsideEpoch {
        /// The header's timestamp.
        timestamp_ms: TimestampMs,
        /// The header's epoch.
        epoch: Epoch,
    },
    /// The timestamp is not above the median of the last 11 blocks.
    #[error("timestamp {timestamp_ms} is not above the median {median_ms} of the last 11 blocks")]
    TimestampNotAboveMedian {
        /// The header's timestamp.
        timestamp_ms: TimestampMs,
        /// The median.
        median_ms: TimestampMs,
    },
    /// The timestamp is too far ahead of the local clock.
    #[error(
        "timestamp {timestamp_ms} is more than the allowed drift ahead of now (limit {limit_ms})"
    )]
    TimestampTooFarAhead {
        /// The header's timestamp.
        timestamp_ms: TimestampMs,
        /// Local time plus the allowed drift.
        limit_ms: TimestampMs,
    },
    /// The challenge is not the one the parent and epoch determine.
    #[error("challenge {found} is not the challenge {expected} of this parent and epoch")]
    Challenge {
        /// The recomputed challenge.
        expected: Hash,
        /// The header's challenge.
        found: Hash,
    },
    /// The target is not the one the difficulty rule gives.
    #[error("target {found} is not the difficulty target {expected}")]
    Target {
        /// The recomputed target.
        expected: Target,
        /// The header's target.
        found: Target,
    },
    /// The proof of space does not verify (range, bucket or score).
    #[error("proof of space: {0}")]
    Proof(crate::plot::ProofError),
    /// The proof's score does not meet the target.
    #[error("score {score} does not meet the target {target}")]
    ScoreAboveTarget {
        /// The score.
        score: Hash,
        /// The target.
        target: Target,
    },
    /// The header signature does not verify against the miner key.
    #[error("header signature does not verify")]
    HeaderSignature,
    /// The transaction root does not match the body.
    #[error("transaction root mismatch: header has {header}, body gives {computed}")]
    TxRoot {
        /// Root in the header.
        header: Hash,
        /// Root of the body.
        computed: Hash,
    },
    /// A transfer is malformed (wrong chain, zero amount, overflowing amount plus fee).
    #[error("transfer {index}: {error}")]
    Transfer {
        /// Position among the block's transfers (0 is the first transfer after the coinbase).
        index: usize,
        /// The problem.
        error: TxError,
    },
    /// A transfer's signature does not verify.
    #[error("transfer {index}: bad signature")]
    TransferSignature {
        /// Position among the block's transfers.
        index: usize,
    },
    /// A transfer's nonce is not the sender's next nonce.
    #[error("transfer {index}: nonce {found}, the sender's next nonce is {expected}")]
    Nonce {
        /// Position among the block's transfers.
        index: usize,
        /// The sender's next nonce.
        expected: u64,
        /// The transfer's nonce.
        found: u64,
    },
    /// The sender cannot pay amount plus fee from its mature balance.
    #[error(
        "transfer {index}: needs {needed}, the sender has {available} spendable ({immature} immature)"
    )]
    InsufficientBalance {
        /// Position among the block's transfers.
        index: usize,
        /// Amount plus fee.
        needed: Amount,
        /// The sender's mature balance.
        available: Amount,
        /// The sender's immature coinbase credits, not spendable yet.
        immature: Amount,
    },
    /// A balance, a nonce or the fee total overflowed.
    #[error("transfer {index}: a balance, nonce or fee sum overflows")]
    Overflow {
        /// Position among the block's transfers.
        index: usize,
    },
    /// The coinbase outputs overflow 64 bits.
    #[error("coinbase outputs overflow")]
    CoinbaseOverflow,
    /// The coinbase pays more than the reward plus the fees.
    #[error("coinbase pays {outputs}, the reward plus fees allow {allowed}")]
    CoinbaseTooLarge {
        /// The sum of the outputs.
        outputs: Amount,
        /// Reward at this height plus the block's fees.
        allowed: Amount,
    },
    /// A coinbase output cannot be credited (the account holds too many immature credits, or
    /// its credits overflow).
    #[error("coinbase output to {address} cannot be credited: {reason}")]
    CoinbaseCredit {
        /// The recipient.
        address: Address,
        /// Why.
        reason: String,
    },
    /// The state root does not match the state after the block.
    #[error("state root mismatch: header has {header}, the block gives {computed}")]
    StateRoot {
        /// Root in the header.
        header: Hash,
        /// Root after applying the block.
        computed: Hash,
    },
}

impl InvalidBlock {
    /// A short stable label for metrics and logs (`spacetime_blocks_rejected_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Version { .. } => "version",
            Self::GenesisHeight => "genesis_height",
            Self::CoinbaseHeight { .. } => "coinbase_height",
            Self::CoinbaseMiner { .. } => "coinbase_miner",
            Self::Checkpoint { .. } => "checkpoint",
            Self::KnownInvalid { .. } => "known_invalid",
            Self::InvalidAncestor { .. } => "invalid_ancestor",
            Self::Height { .. } => "height",
            Self::EpochNotAfterParent { .. } => "epoch",
            Self::TimestampOutsideEpoch { .. } => "timestamp_epoch",
            Self::TimestampNotAboveMedian { .. } => "timestamp_median",
            Self::TimestampTooFarAhead { .. } => "timestamp_future",
            Self::Challenge { .. } => "challenge",
            Self::Target { .. } => "target",
            Self::Proof(_) => "proof",
            Self::ScoreAboveTarget { .. } => "score",
            Self::HeaderSignature => "header_signature",
            Self::TxRoot { .. } => "tx_root",
            Self::Transfer { .. } => "transfer",
            Self::TransferSignature { .. } => "transfer_signature",
            Self::Nonce { .. } => "nonce",
            Self::InsufficientBalance { .. } => "balance",
            Self::Overflow { .. } => "overflow",
            Self::CoinbaseOverflow => "coinbase_overflow",
            Self::CoinbaseTooLarge { .. } => "coinbase_amount",
            Self::CoinbaseCredit { .. } => "coinbase_credit",
            Self::StateRoot { .. } => "state_root",
        }
    }
}

/// Why the chain database failed: not the block's fault.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The database file could not be opened or read.
    #[error("chain database {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// The cause.
        source: redb::Error,
    },
    /// Another process (a running node) holds the database.
    #[error(
        "chain database {path} is locked by another running process (is a node already running on this data directory?)"
    )]
    Locked {
        /// The file.
        path: String,
    },
    /// The database was written by a different schema version.
    #[error(
        "chain database {path} has schema version {found}, this software reads version {expected}; nothing was changed"
    )]
    SchemaVersion {
        /// The file.
        path: String,
        /// Version in the file.
        found: u32,
        /// Version this software writes.
        expected: u32,
    },
    /// The database belongs to another network.
    #[error(
        "chain database {path} belongs to network {found}, not {expected}; nothing was changed"
    )]
    WrongNetwork {
        /// The file.
        path: String,
        /// The network id in the file.
        found: Hash,
        /// The network id of the configured genesis.
        expected: Hash,
    },
    /// The file is not a chain database or is damaged.
    #[error(
        "chain database {path} is damaged or not a Spacetime database: {detail}; nothing was changed"
    )]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The database was found damaged while in use: a page fails its checksum, a record does
    /// not decode, or the storage engine stopped on bytes it did not write.
    #[error(
        "chain database {path} is damaged: {detail}. Stop the node, run `spacetime chain check`, and recover as docs/chain.md says (move the file aside and sync again; keys, plots and the address book are kept)"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// The database is being reopened after a write failure; try again later.
    #[error("chain database {path} is not available: {detail}")]
    Unavailable {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// A database operation failed.
    #[error("chain database error: {0}")]
    Database(#[from] redb::Error),
    /// The state tree failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Stored records contradict each other.
    #[error("chain database is inconsistent: {0}")]
    Inconsistent(String),
}

/// What a database failure means for the node that saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// Writing failed (disk full, I/O error): nothing half-written is committed; the database
    /// is to be reopened and writes retried.
    Write,
    /// The file is damaged: reopening will not help; the operator must recover it.
    Damage,
    /// Anything else (a lock held by another process, a bug).
    Other,
}

impl ChainError {
    /// Classifies the failure: a write failure, damage, or something else.
    pub fn fault(&self) -> StorageFault {
        match self {
            Self::Corrupt { .. } | Self::Inconsistent(_) | Self::Damaged { .. } => {
                StorageFault::Damage
            }
            Self::Unavailable { .. } => StorageFault::Write,
            Self::Open {
                source: redb::Error::Io(io),
                ..
            } if !matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
            {
                StorageFault::Write
            }
            Self::Database(e) | Self::Tree(TreeError::Store(StoreError::Database(e))) => {
                redb_fault(e)
            }
            Self::Tree(TreeError::Store(StoreError::Corrupt(_))) => StorageFault::Damage,
            _ => StorageFault::Other,
        }
    }
}

/// What a redb error means: I/O is a write failure, a checksum mismatch is damage.
fn redb_fault(e: &redb::Error) -> StorageFault {
    match e {
        redb::Error::Io(_) | redb::Error::PreviousIo => StorageFault::Write,
        redb::Error::Corrupted(_) => StorageFault::Damage,
        _ => StorageFault::Other,
    }
}

impl From<StoreError> for ChainError {
    fn from(e: StoreError) -> Self {
        Self::Tree(TreeError::Store(e))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for ChainError {
            fn from(e: $t) -> Self {
                Self::Database(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

impl From<crate::encoding::DecodeError> for ChainError {
    fn from(e: crate::encoding::DecodeError) -> Self {
        Self::Inconsistent(format!("a stored record does not decode: {e}"))
    }
}

/// Why a block was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The block breaks a consensus rule.
    #[error("invalid block {hash}: {reason}")]
    Invalid {
        /// The block's hash.
        hash: Hash,
        /// The rule it breaks.
        reason: InvalidBlock,
    },
    /// The body does not match the stored, verified header (its transaction root differs): the
    /// header stays good and the block is to be fetched elsewhere; the sender lied.
    #[error("block {hash} has a body that does not match its header: {reason}")]
    BodyMismatch {
        /// The block's hash.
        hash: Hash,
        /// How it differs.
        reason: InvalidBlock,
    },
    /// The database failed; the block may be valid.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// Why a batch of headers was refused as a whole (nothing of it is stored).
#[derive(Debug, thiserror::Error)]
pub enum HeadersError {
    /// A header breaks a consensus rule.
    #[error("invalid header {hash}: {reason}")]
    Invalid {
        /// The header's hash.
        hash: Hash,
        /// The rule it breaks.
        reason: InvalidBlock,
    },
    /// The first header's parent is unknown, or a header does not follow the one before it.
    #[error("headers do not connect: the parent {parent} of header {index} is not known")]
    NotConnecting {
        /// Position of the header in the batch.
        index: usize,
        /// The parent it names.
        parent: Hash,
    },
    /// A chain with less work than ours grew past the bound on headers held in memory.
    #[error("more than {limit} headers of a chain with less work than ours")]
    TooManyPending {
        /// The bound.
        limit: usize,
    },
    /// Header-only storage ahead of the tip is at its bound: no fault of the sender.
    #[error("{limit} headers are stored ahead of the bodies already")]
    Full {
        /// The bound.
        limit: usize,
    },
    /// The database failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

impl From<redb::Error> for HeadersError {
    fn from(e: redb::Error) -> Self {
        Self::Chain(ChainError::Database(e))
    }
}

impl From<TreeError> for ImportError {
    fn from(e: TreeError) -> Self {
        Self::Chain(ChainError::Tree(e))
    }
}

impl From<redb::Error> for ImportError {
    fn from(e: redb::Error) -> Self {
        Self::Chain(ChainError::Database(e))
    }
}
