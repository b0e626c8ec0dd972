//! Assembling a block on the tip: the mining context of an epoch, the coinbase, the state root
//! and the signature.

use super::Chain;
use super::error::{ChainError, InvalidBlock};
use super::rules::epoch_start;
use super::transition::TransitionError;
use crate::block::{Block, BlockHeader, HEADER_VERSION, ProofOfSpace, UnsignedHeader, tx_root};
use crate::crypto::{Address, Keypair};
use crate::encoding::{BoundedBytes, BoundedVec};
use crate::hash::Hash;
use crate::limits::{MAX_COINBASE_EXTRA_BYTES, MAX_COINBASE_OUTPUTS, MAX_TRANSFERS_PER_BLOCK};
use crate::state_tree::{RedbStore, StateTree};
use crate::target::Target;
use crate::tx::{Coinbase, CoinbaseOutput, Transfer};
use crate::{Amount, Epoch, Height, NodeRng, TimestampMs};

/// What a block on a given parent in a given epoch must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MiningContext {
    /// The parent block.
    pub parent: Hash,
    /// The new block's height.
    pub height: Height,
    /// The epoch.
    pub epoch: Epoch,
    /// The challenge of that epoch on that parent.
    pub challenge: Hash,
    /// The target the score must be under.
    pub target: Target,
    /// The earliest timestamp allowed: inside the epoch and above the median of 11.
    pub min_timestamp_ms: TimestampMs,
    /// The last millisecond of the epoch.
    pub max_timestamp_ms: TimestampMs,
}

/// The miner's choices for a block.
#[derive(Debug, Clone)]
pub struct BlockDraft {
    /// From [`Chain::mining_context`].
    pub context: MiningContext,
    /// Inside `context`'s timestamp range.
    pub timestamp_ms: TimestampMs,
    /// The winning proof.
    pub proof: ProofOfSpace,
    /// Its score.
    pub score: Hash,
    /// Transfers in block order (valid on the tip, nonces in order).
    pub transfers: Vec<Transfer>,
    /// Who the coinbase pays and in what proportion; empty pays everything to the miner.
    pub payees: Vec<(Address, u64)>,
    /// Coinbase extra data (at most 100 bytes).
    pub extra_data: Vec<u8>,
}

/// Why a block could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Blocks are built on the tip only (the state root needs the tip's state).
    #[error("block parent {parent} is not the tip {tip}")]
    NotTip {
        /// The draft's parent.
        parent: Hash,
        /// The tip.
        tip: Hash,
    },
    /// The draft breaks a rule (bad transfers, timestamp outside the context, too much data).
    #[error("the drafted block would be invalid: {0}")]
    Invalid(InvalidBlock),
    /// The draft does not fit the block limits.
    #[error("the drafted block exceeds a limit: {0}")]
    Limit(&'static str),
    /// The database failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

impl Chain {
    /// The challenge, target and timestamp range of a block on `parent` in `epoch`; `None` when
    /// the parent is unknown or invalid, or the epoch is not after the parent's.
    pub fn mining_context(&self, parent: &Hash, epoch: Epoch) -> Option<MiningContext> {
        let p = self.index.get(parent)?;
        if p.status == super::BlockStatus::Invalid || epoch <= p.epoch {
            return None;
        }
        let network = &self.genesis.config.network;
        let start = epoch_start(network, epoch)?;
        let end = epoch_start(network, epoch.checked_add(1)?)?.checked_sub(1)?;
        let median = self.index.median_time_past(parent).unwrap_or(0);
        Some(MiningContext {
            parent: *parent,
            height: p.height.checked_add(1)?,
            epoch,
            challenge: p.child_challenge(epoch),
            target: p.child_target(&self.genesis.config),
            min_timestamp_ms: start.max(median.saturating_add(1)),
            max_timestamp_ms: end,
        })
    }

    /// Builds and signs a block from `draft` on the tip: the coinbase pays the reward plus the
    /// fees to the payees, and the state root is computed by applying the block in a write
    /// transaction that is then dropped. The signature's witness randomness comes from `rng`
    /// (the node's generator).
    pub fn build_block(
        &self,
        draft: BlockDraft,
        key: &Keypair,
        rng: &mut NodeRng,
    ) -> Result<Block, BuildError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let ctx = draft.context;
            let tip = self.tip_hash();
            if ctx.parent != tip {
                return Err(BuildError::NotTip {
                    parent: ctx.parent,
                    tip,
                });
            }
            let height = ctx.height;
            let fees = Amount::try_sum(draft.transfers.iter().map(|t| t.fee))
                .map_err(|_| BuildError::Invalid(InvalidBlock::CoinbaseOverflow))?;
            let total = self
                .genesis
                .emission
                .block_reward(height)
                .checked_add(fees)
                .ok_or(BuildError::Invalid(InvalidBlock::CoinbaseOverflow))?;
            let coinbase = Coinbase {
                height,
                outputs: BoundedVec::try_from_vec(split_outputs(total, &draft.payees, key))
                    .map_err(|_| BuildError::Limit("coinbase outputs"))?,
                miner: key.public(),
                extra_data: BoundedBytes::<MAX_COINBASE_EXTRA_BYTES>::try_from_slice(
                    &draft.extra_data,
                )
                .map_err(|_| BuildError::Limit("coinbase extra data"))?,
            };
            if draft.transfers.len() > MAX_TRANSFERS_PER_BLOCK {
                return Err(BuildError::Limit("transfers per block"));
            }
            let mut unsigned = UnsignedHeader {
                version: HEADER_VERSION,
                height,
                parent: ctx.parent,
                timestamp_ms: draft.timestamp_ms,
                epoch: ctx.epoch,
                target: ctx.target,
                challenge: ctx.challenge,
                proof: draft.proof,
                score: draft.score,
                miner: key.public(),
                tx_root: tx_root(&coinbase, &draft.transfers),
                state_root: Hash::ZERO,
            };
            let mut block = Block {
                header: BlockHeader {
                    unsigned: unsigned.clone(),
                    signature: crate::Signature::ZERO,
                },
                coinbase,
                transfers: BoundedVec::try_from_vec(draft.transfers)
                    .map_err(|_| BuildError::Limit("transfers per block"))?,
            };
            unsigned.state_root = self.state_root_after(&block)?;
            block.header = unsigned
                .sign_with(key, rng)
                .map_err(|_| BuildError::Limit("signing key is not the miner"))?;
            block
                .check_size()
                .map_err(|_| BuildError::Limit("block size"))?;
            Ok(block)
        })
    }

    /// The state root after applying `block` on the tip (nothing is written).
    fn state_root_after(&self, block: &Block) -> Result<Hash, BuildError> {
        let txn = self.db()?.begin_write().map_err(ChainError::from)?;
        let root = {
            let mut tree = StateTree::new(RedbStore::open(&txn).map_err(ChainError::from)?);
            let (_, root) = self.apply_state(&mut tree, block).map_err(|e| match e {
                TransitionError::Invalid(i) => BuildError::Invalid(i),
                TransitionError::Source(e) => BuildError::Chain(e.into()),
            })?;
            root
        };
        txn.abort().map_err(ChainError::from)?;
        Ok(root)
    }
}

/// Splits `total` among payees by weight (the remainder of the integer division goes to the
/// first); no payees, or zero weights, pay everything to the miner. Zero amounts are left out.
fn split_outputs(total: Amount, payees: &[(Address, u64)], key: &Keypair) -> Vec<CoinbaseOutput> {
    let weight_sum: u128 = payees.iter().map(|(_, w)| u128::from(*w)).sum();
    if payees.is_empty() || weight_sum == 0 || total == Amount::ZERO {
        return if total == Amount::ZERO {
            Vec::new()
        } else {
            vec![CoinbaseOutput {
                to: key.public(),
                amount: total,
            }]
        };
    }
    let mut outputs: Vec<CoinbaseOutput> = payees
        .iter()
        .take(MAX_COINBASE_OUTPUTS)
        .map(|(to, w)| CoinbaseOutput {
            to: *to,
            // weight / sum <= 1, so the share fits in u64.
            amount: Amount((u128::from(total.0) * u128::from(*w) / weight_sum) as u64),
        })
        .collect();
    let paid: u64 = outputs.iter().map(|o| o.amount.0).sum();
    if let Some(first) = outputs.first_mut() {
        first.amount = Amount(first.amount.0 + (total.0 - paid));
    }
    outputs.retain(|o| o.amount != Amount::ZERO);
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PublicKey;

    #[test]
    fn outputs_split_by_weight_and_sum_to_the_total() {
        let key = Keypair::generate();
        let a = PublicKey([1; 32]);
        let b = PublicKey([2; 32]);
        let out = split_outputs(Amount(1_001), &[(a, 1), (b, 1)], &key);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].amount, Amount(501));
        assert_eq!(out[1].amount, Amount(500));
        let out = split_outputs(Amount(10), &[], &key);
        assert_eq!(out[0].to, key.public());
        assert!(split_outputs(Amount::ZERO, &[(a, 1)], &key).is_empty());
        let out = split_outputs(Amount(u64::MAX), &[(a, u64::MAX), (b, 1)], &key);
        assert_eq!(
            out.iter().map(|o| u128::from(o.amount.0)).sum::<u128>(),
            u128::from(u64::MAX)
        );
    }
}
