//! The stateless block rules, in the order they are checked (cheapest first).
//!
//! 1. [`check_structure`]: size, version, height, coinbase height and miner, checkpoints.
//! 2. (the chain: parent known and valid)
//! 3. [`check_header`]: height, epoch and timestamp, challenge, target ([`check_header_context`]),
//!    then proof, score, signature ([`check_header_proof`]).
//! 4. [`check_body`]: transaction root, well-formed transfers, batched signatures.
//! 5. (the chain: [`super::transition::apply_block`] for nonces, balances, maturity and the
//!    coinbase amount, then the state root)

use super::error::InvalidBlock;
use super::index::IndexEntry;
use super::rules::epoch_of;
use crate::TimestampMs;
use crate::block::{Block, BlockHeader, HEADER_VERSION};
use crate::crypto::{self, SignedMessage, SigningDomain};
use crate::encoding::encoded_len;
use crate::genesis::GenesisConfig;
use crate::hash::Hash;
use crate::limits::MAX_BLOCK_BYTES;
use crate::plot::{ProofError, proof_score};
use crate::tx::ChainId;

/// Size, version and the structure of the coinbase; `hash` is the block's hash.
pub fn check_structure(
    block: &Block,
    hash: &Hash,
    config: &GenesisConfig,
) -> Result<(), InvalidBlock> {
    let size = encoded_len(block);
    if size > MAX_BLOCK_BYTES {
        return Err(InvalidBlock::TooLarge {
            size,
            max: MAX_BLOCK_BYTES,
        });
    }
    let header = &block.header;
    check_header_structure(header, hash, config)?;
    if block.coinbase.height != header.height {
        return Err(InvalidBlock::CoinbaseHeight {
            coinbase: block.coinbase.height,
            header: header.height,
        });
    }
    if block.coinbase.miner != header.miner {
        return Err(InvalidBlock::CoinbaseMiner {
            coinbase: block.coinbase.miner,
            header: header.miner,
        });
    }
    Ok(())
}

/// The header rules that need nothing else: version, height above genesis, checkpoints.
pub fn check_header_structure(
    header: &BlockHeader,
    hash: &Hash,
    config: &GenesisConfig,
) -> Result<(), InvalidBlock> {
    if header.version != HEADER_VERSION {
        return Err(InvalidBlock::Version {
            found: header.version,
            expected: HEADER_VERSION,
        });
    }
    if header.height == 0 {
        return Err(InvalidBlock::GenesisHeight);
    }
    if let Some(cp) = config
        .checkpoints
        .iter()
        .find(|c| c.height == header.height)
        && cp.hash != *hash
    {
        return Err(InvalidBlock::Checkpoint {
            height: cp.height,
            expected: cp.hash,
            found: *hash,
        });
    }
    Ok(())
}

/// The header rules against its parent: `median_ms` is the median timestamp of the parent and
/// its ancestors (11 blocks), `now_ms` the local clock. [`check_header_context`] then
/// [`check_header_proof`].
pub fn check_header(
    header: &BlockHeader,
    parent: &IndexEntry,
    median_ms: TimestampMs,
    now_ms: TimestampMs,
    config: &GenesisConfig,
) -> Result<(), InvalidBlock> {
    check_header_context(header, parent, median_ms, now_ms, config)?;
    check_header_proof(header, config)
}

/// The header rules that need the parent: height, epoch and timestamp, challenge, target.
pub fn check_header_context(
    header: &BlockHeader,
    parent: &IndexEntry,
    median_ms: TimestampMs,
    now_ms: TimestampMs,
    config: &GenesisConfig,
) -> Result<(), InvalidBlock> {
    let expected_height = parent.height.saturating_add(1);
    if header.height != expected_height {
        return Err(InvalidBlock::Height {
            expected: expected_height,
            found: header.height,
        });
    }
    if header.epoch <= parent.epoch {
        return Err(InvalidBlock::EpochNotAfterParent {
            epoch: header.epoch,
            parent_epoch: parent.epoch,
        });
    }
    if epoch_of(&config.network, header.timestamp_ms) != Some(header.epoch) {
        return Err(InvalidBlock::TimestampOutsideEpoch {
            timestamp_ms: header.timestamp_ms,
            epoch: header.epoch,
        });
    }
    if header.timestamp_ms <= median_ms {
        return Err(InvalidBlock::TimestampNotAboveMedian {
            timestamp_ms: header.timestamp_ms,
            median_ms,
        });
    }
    let limit_ms = now_ms.saturating_add(config.network.max_future_drift_ms);
    if header.timestamp_ms > limit_ms {
        return Err(InvalidBlock::TimestampTooFarAhead {
            timestamp_ms: header.timestamp_ms,
            limit_ms,
        });
    }
    let expected = parent.child_challenge(header.epoch);
    if header.challenge != expected {
        return Err(InvalidBlock::Challenge {
            expected,
            found: header.challenge,
        });
    }
    let expected = parent.child_target(config);
    if header.target != expected {
        return Err(InvalidBlock::Target {
            expected,
            found: header.target,
        });
    }
    Ok(())
}

/// The costly header rules that need no ancestor: the proof of space and its score, the score
/// under the header's own target, the signature. Headers-first sync runs these in parallel
/// ahead of [`check_header_context`].
pub fn check_header_proof(
    header: &BlockHeader,
    config: &GenesisConfig,
) -> Result<(), InvalidBlock> {
    let computed = proof_score(
        &config.plot,
        &header.miner,
        &header.challenge,
        &header.proof,
    )
    .map_err(InvalidBlock::Proof)?;
    if computed != header.score {
        return Err(InvalidBlock::Proof(ProofError::ScoreMismatch {
            claimed: header.score,
            computed,
        }));
    }
    if !header.target.is_met_by(&header.score) {
        return Err(InvalidBlock::ScoreAboveTarget {
            score: header.score,
            target: header.target,
        });
    }
    header
        .verify_signature()
        .map_err(|_| InvalidBlock::HeaderSignature)
}

/// The body rules that need no state: the transaction root, well-formed transfers for this
/// chain, and every transfer signature (verified as one batch). Returns the transaction ids.
pub fn check_body(block: &Block, chain_id: ChainId) -> Result<Vec<Hash>, InvalidBlock> {
    let ids = check_body_structure(block, chain_id)?;
    verify_transfer_signatures(block)?;
    Ok(ids)
}

/// [`check_body`] without the signatures: the transaction root and well-formed transfers.
/// Returns the transaction ids in block order (coinbase first), hashed once for the root and
/// the transaction index.
pub fn check_body_structure(block: &Block, chain_id: ChainId) -> Result<Vec<Hash>, InvalidBlock> {
    let ids: Vec<Hash> = block.tx_ids().collect();
    let computed = crate::block::tx_root_of_ids(ids.iter().copied());
    if computed != block.header.tx_root {
        return Err(InvalidBlock::TxRoot {
            header: block.header.tx_root,
            computed,
        });
    }
    for (index, tx) in block.transfers.iter().enumerate() {
        tx.check_well_formed(chain_id)
            .map_err(|error| InvalidBlock::Transfer { index, error })?;
    }
    Ok(ids)
}

/// Batch-verifies the signatures of a block's transfers.
pub fn verify_transfer_signatures(block: &Block) -> Result<(), InvalidBlock> {
    if block.transfers.is_empty() {
        return Ok(());
    }
    let messages: Vec<Vec<u8>> = block.transfers.iter().map(|t| t.signing_bytes()).collect();
    let items: Vec<SignedMessage<'_>> = block
        .transfers
        .iter()
        .zip(&messages)
        .map(|(t, m)| SignedMessage {
            key: &t.from,
            message: m,
            signature: &t.signature,
        })
        .collect();
    crypto::verify_batch(SigningDomain::Tx, &items).map_err(|e| match e {
        crypto::SignatureError::BatchItem { index } => InvalidBlock::TransferSignature { index },
        _ => InvalidBlock::TransferSignature { index: 0 },
    })
}
