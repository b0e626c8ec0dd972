//! Importing blocks: validation, storage, connection, fork choice and reorganisation.

use redb::{ReadableTable, WriteTransaction};

use super::error::{ChainError, ImportError, InvalidBlock};
use super::index::{IndexEntry, better};
use super::store::{self, BlockBody, BlockRecord, BlockStatus};
use super::transition::{BlockEffects, TransitionError, apply_block};
use super::validate::{
    check_body, check_body_structure, check_header, check_structure, verify_transfer_signatures,
};
use super::{Chain, ChainEvent, ImportStatus, Imported};
use crate::block::Block;
use crate::encoding::encoded_len;
use crate::hash::Hash;
use crate::state_tree::{RedbStore, StateTree, TreeError};
use crate::{Height, TimestampMs, encode};

/// Blocks with at least this many transfers verify signatures on a second thread while the
/// state applies; below it the thread costs more than it saves.
const PARALLEL_SIGNATURES_FROM: usize = 64;

/// Why connecting a block failed.
pub(super) enum ConnectError {
    Invalid(InvalidBlock),
    Chain(ChainError),
}

impl<E: Into<ChainError>> From<E> for ConnectError {
    fn from(e: E) -> Self {
        Self::Chain(e.into())
    }
}

/// The check that a body belongs to its (already verified) header: the transaction root.
pub(super) fn check_body_matches(block: &Block) -> Result<(), InvalidBlock> {
    let computed = crate::block::tx_root_of_ids(block.tx_ids());
    if computed != block.header.tx_root {
        return Err(InvalidBlock::TxRoot {
            header: block.header.tx_root,
            computed,
        });
    }
    Ok(())
}

impl Chain {
    /// Validates and imports `block`, received at local time `now_ms`.
    ///
    /// Returns what became of it; an [`ImportError::Invalid`] names the rule it breaks (the
    /// sender deserves a penalty), an [`ImportError::Chain`] is a local database failure.
    pub fn import(&mut self, block: Block, now_ms: TimestampMs) -> Result<Imported, ImportError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let result = self.import_one(block, now_ms);
            self.refresh_best_header();
            result
        })
    }

    fn import_one(&mut self, block: Block, now_ms: TimestampMs) -> Result<Imported, ImportError> {
        let hash = block.hash();
        let invalid = |reason| ImportError::Invalid { hash, reason };
        let mut header_checked = false;
        if let Some(entry) = self.index.get(&hash) {
            match entry.status {
                BlockStatus::Invalid => return Err(invalid(InvalidBlock::KnownInvalid { hash })),
                BlockStatus::HeaderOnly => {
                    check_body_matches(&block)
                        .map_err(|reason| ImportError::BodyMismatch { hash, reason })?;
                    header_checked = true;
                }
                BlockStatus::Stored | BlockStatus::Valid => {
                    return Ok(self.outcome(hash, ImportStatus::Duplicate));
                }
            }
        }
        if self.orphans.contains(&hash) {
            return Ok(self.outcome(hash, ImportStatus::Duplicate));
        }
        check_structure(&block, &hash, &self.genesis.config).map_err(invalid)?;
        let parent_has_body = self
            .index
            .get(&block.header.parent)
            .is_some_and(|p| p.status != BlockStatus::HeaderOnly);
        if !parent_has_body {
            let size = encoded_len(&block);
            self.orphans.insert(hash, block, size);
            return Ok(self.outcome(hash, ImportStatus::Orphan));
        }
        let mut events = Vec::new();
        let status = self
            .accept(hash, block, now_ms, header_checked, &mut events)
            .map_err(|e| match e {
                ConnectError::Invalid(reason) => invalid(reason),
                ConnectError::Chain(c) => ImportError::Chain(c),
            })?;
        let mut rejected_orphans = Vec::new();
        let mut queue = vec![hash];
        while let Some(parent) = queue.pop() {
            for (child, block) in self.orphans.take_children(&parent) {
                let checked = self
                    .index
                    .get(&child)
                    .is_some_and(|e| e.status == BlockStatus::HeaderOnly);
                if checked && let Err(reason) = check_body_matches(&block) {
                    rejected_orphans.push((child, reason));
                    continue;
                }
                match self.accept(child, block, now_ms, checked, &mut events) {
                    Ok(_) => queue.push(child),
                    Err(ConnectError::Invalid(reason)) => rejected_orphans.push((child, reason)),
                    Err(ConnectError::Chain(e)) => return Err(e.into()),
                }
            }
        }
        Ok(Imported {
            hash,
            status,
            events,
            rejected_orphans,
        })
    }

    fn outcome(&self, hash: Hash, status: ImportStatus) -> Imported {
        Imported {
            hash,
            status,
            events: Vec::new(),
            rejected_orphans: Vec::new(),
        }
    }

    /// Checks a block whose parent is known, stores it, and updates the main chain.
    fn accept(
        &mut self,
        hash: Hash,
        block: Block,
        now_ms: TimestampMs,
        header_checked: bool,
        events: &mut Vec<ChainEvent>,
    ) -> Result<ImportStatus, ConnectError> {
        let parent_hash = block.header.parent;
        let parent =
            self.index.get(&parent_hash).cloned().ok_or_else(|| {
                ChainError::Inconsistent(format!("parent {parent_hash} vanished"))
            })?;
        if parent.status == BlockStatus::Invalid {
            return Err(ConnectError::Invalid(InvalidBlock::InvalidAncestor {
                ancestor: parent_hash,
            }));
        }
        if !header_checked {
            let median = self.index.median_time_past(&parent_hash).unwrap_or(0);
            check_header(&block.header, &parent, median, now_ms, &self.genesis.config)
                .map_err(ConnectError::Invalid)?;
        }

        let entry = parent.child(&block.header, parent_hash);
        let tip = self.tip_hash();
        if parent_hash == tip {
            let ids = check_body_structure(&block, self.genesis.chain_id)
                .map_err(ConnectError::Invalid)?;
            return self.extend(hash, block, &ids, entry, events);
        }
        check_body(&block, self.genesis.chain_id).map_err(ConnectError::Invalid)?;
        self.store_side(hash, &block, &entry)?;
        let heavier = self
            .index
            .get(&tip)
            .is_some_and(|t| better((&hash, &entry), (&tip, t)));
        self.index.insert(hash, entry);
        if heavier {
            return self.reorganise(hash, events);
        }
        Ok(ImportStatus::SideBranch)
    }

    fn record_of(block: &Block, entry: &IndexEntry, status: BlockStatus) -> BlockRecord {
        BlockRecord {
            header: block.header.clone(),
            work: entry.work,
            beacon: entry.beacon,
            anchor_ms: entry.anchor_ms,
            status,
        }
    }

    /// Stores a block off the main chain (header rules passed, state rules pending).
    fn store_side(
        &mut self,
        hash: Hash,
        block: &Block,
        entry: &IndexEntry,
    ) -> Result<(), ChainError> {
        let txn = self.db()?.begin_write()?;
        {
            let record = Self::record_of(block, entry, BlockStatus::Stored);
            txn.open_table(store::BLOCKS)?
                .insert(hash.0, encode(&record).as_slice())?;
            let body = BlockBody {
                coinbase: block.coinbase.clone(),
                transfers: block.transfers.clone(),
            };
            txn.open_table(store::BODIES)?
                .insert(hash.0, encode(&body).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Connects a block on top of the tip: stores it, applies it and moves the tip, in one
    /// transaction. On a rule failure nothing is written but the block's invalid mark.
    ///
    /// The transfer signatures are verified here; with [`Chain::set_parallel_signatures`], on a
    /// second thread while this one applies the state, for blocks with enough transfers to pay
    /// for the thread. A bad signature wins over any state error, as if it had been checked
    /// first.
    fn extend(
        &mut self,
        hash: Hash,
        block: Block,
        ids: &[Hash],
        mut entry: IndexEntry,
        events: &mut Vec<ChainEvent>,
    ) -> Result<ImportStatus, ConnectError> {
        let height = entry.height;
        let txn = self.db()?.begin_write()?;
        let connected =
            if self.parallel_signatures && block.transfers.len() >= PARALLEL_SIGNATURES_FROM {
                std::thread::scope(|scope| {
                    let signatures = scope.spawn(|| verify_transfer_signatures(&block));
                    let connected = self.connect(&txn, &hash, &block, ids, &entry);
                    match signatures.join() {
                        Ok(Ok(())) => connected,
                        Ok(Err(bad)) => Err(ConnectError::Invalid(bad)),
                        Err(_) => Err(ChainError::Inconsistent(
                            "signature verification thread panicked".into(),
                        )
                        .into()),
                    }
                })
            } else {
                verify_transfer_signatures(&block)
                    .map_err(ConnectError::Invalid)
                    .and_then(|()| self.connect(&txn, &hash, &block, ids, &entry))
            };
        match connected {
            Ok(()) => {}
            Err(ConnectError::Invalid(reason)) => {
                txn.abort()?;
                entry.status = BlockStatus::Invalid;
                self.store_invalid(hash, &block, &entry)?;
                return Err(ConnectError::Invalid(reason));
            }
            Err(e) => return Err(e),
        }
        {
            let (_, body) = BlockBody::split(block);
            txn.open_table(store::BODIES)?
                .insert(hash.0, encode(&body).as_slice())?;
            txn.open_table(store::META)?
                .insert(store::META_TIP, hash.0.as_slice())?;
        }
        txn.commit()?;
        entry.status = BlockStatus::Valid;
        self.index.insert(hash, entry);
        self.main.push(hash);
        events.push(ChainEvent::NewTip { hash, height });
        Ok(ImportStatus::Extended)
    }

    /// Records a block that broke a state rule, without its body.
    fn store_invalid(
        &mut self,
        hash: Hash,
        block: &Block,
        entry: &IndexEntry,
    ) -> Result<(), ChainError> {
        let txn = self.db()?.begin_write()?;
        {
            let record = Self::record_of(block, entry, BlockStatus::Invalid);
            txn.open_table(store::BLOCKS)?
                .insert(hash.0, encode(&record).as_slice())?;
        }
        txn.commit()?;
        self.index.insert(hash, entry.clone());
        Ok(())
    }

    /// Applies `block` (whose parent is the state tree's current block) inside `txn`: the state
    /// transition, the state root check, the main-chain, transaction and supply indexes, and
    /// the block record with status valid.
    /// Applies the state transition of `block` to `tree`; returns its effects and the new
    /// state root. The caller commits (a connected block) or drops the transaction (a block
    /// being built).
    pub(super) fn apply_state(
        &self,
        tree: &mut StateTree<RedbStore<'_>>,
        block: &Block,
    ) -> Result<(BlockEffects, Hash), TransitionError<TreeError>> {
        let height = block.header.height;
        let maturity = self.genesis.config.consensus.coinbase_maturity;
        let reward = self.genesis.emission.block_reward(height);
        let effects = apply_block(block, height, maturity, reward, |a| tree.get(a))?;
        let root = tree
            .apply(height, effects.changes.iter().cloned())
            .map_err(TransitionError::Source)?;
        Ok((effects, root))
    }

    pub(super) fn connect(
        &self,
        txn: &WriteTransaction,
        hash: &Hash,
        block: &Block,
        ids: &[Hash],
        entry: &IndexEntry,
    ) -> Result<(), ConnectError> {
        let height = entry.height;
        let effects = {
            let mut tree = StateTree::new(RedbStore::open(txn)?);
            let (effects, root) = self.apply_state(&mut tree, block).map_err(|e| match e {
                TransitionError::Invalid(i) => ConnectError::Invalid(i),
                TransitionError::Source(e) => ConnectError::Chain(e.into()),
            })?;
            if root != block.header.state_root {
                return Err(ConnectError::Invalid(InvalidBlock::StateRoot {
                    header: block.header.state_root,
                    computed: root,
                }));
            }
            tree.prune(height.saturating_sub(self.genesis.config.consensus.max_reorg_depth))?;
            effects
        };
        {
            let mut tx_index = txn.open_table(store::TX_INDEX)?;
            for (position, id) in ids.iter().enumerate() {
                let position = u32::try_from(position).map_err(|_| {
                    ChainError::Inconsistent("more transactions than positions".into())
                })?;
                tx_index.insert(id.0, store::tx_location(hash, position))?;
            }
        }
        txn.open_table(store::MAIN_CHAIN)?.insert(height, hash.0)?;
        {
            let mut supply = txn.open_table(store::SUPPLY)?;
            let before = supply.get(height - 1)?.map(|v| v.value()).ok_or_else(|| {
                ChainError::Inconsistent(format!("no supply recorded at height {}", height - 1))
            })?;
            // Fees move existing coins: only the outputs beyond them are new.
            let after = before
                .checked_add(effects.coinbase_total.0)
                .and_then(|s| s.checked_sub(effects.fees.0))
                .ok_or(ConnectError::Invalid(InvalidBlock::CoinbaseOverflow))?;
            supply.insert(height, after)?;
        }
        let record = Self::record_of(block, entry, BlockStatus::Valid);
        txn.open_table(store::BLOCKS)?
            .insert(hash.0, encode(&record).as_slice())?;
        Ok(())
    }

    /// Reverts the main chain's blocks above `height` inside `txn` (indexes and state).
    fn disconnect_to(&self, txn: &WriteTransaction, height: Height) -> Result<(), ChainError> {
        let mut tree = StateTree::new(RedbStore::open(txn)?);
        tree.rollback(height).map_err(|e| match e {
            TreeError::RollbackOutOfRange { .. } => {
                ChainError::Inconsistent(format!("cannot revert to height {height}: {e}"))
            }
            other => ChainError::Tree(other),
        })?;
        drop(tree);
        let mut main = txn.open_table(store::MAIN_CHAIN)?;
        let mut supply = txn.open_table(store::SUPPLY)?;
        let mut tx_index = txn.open_table(store::TX_INDEX)?;
        let bodies = txn.open_table(store::BODIES)?;
        for h in (height + 1..=self.height()).rev() {
            let Some(hash) = self.hash_at(h) else {
                continue;
            };
            let body = bodies
                .get(hash.0)?
                .map(|v| crate::decode::<BlockBody>(v.value()))
                .transpose()?
                .ok_or_else(|| ChainError::Inconsistent(format!("body of {hash} missing")))?;
            tx_index.remove(body.coinbase.id().0)?;
            for tx in body.transfers.iter() {
                tx_index.remove(tx.id().0)?;
            }
            main.remove(h)?;
            supply.remove(h)?;
        }
        Ok(())
    }

    /// Switches the main chain to end at `new_tip`, all in one transaction.
    fn reorganise(
        &mut self,
        new_tip: Hash,
        events: &mut Vec<ChainEvent>,
    ) -> Result<ImportStatus, ConnectError> {
        let old_tip = self.tip_hash();
        let fork = self
            .index
            .fork_point(&old_tip, &new_tip)
            .ok_or_else(|| ChainError::Inconsistent(format!("{new_tip} shares no ancestor")))?;
        let fork_height = self.index.get(&fork).map_or(0, |e| e.height);
        let depth = self.height() - fork_height;
        if depth > self.genesis.config.consensus.max_reorg_depth {
            return Ok(ImportStatus::ReorgTooDeep { depth });
        }
        let path = self
            .index
            .path(&fork, &new_tip)
            .ok_or_else(|| ChainError::Inconsistent(format!("no path to {new_tip}")))?;
        let disconnected: Vec<Hash> = (fork_height + 1..=self.height())
            .rev()
            .filter_map(|h| self.hash_at(h))
            .collect();

        let txn = self.db()?.begin_write()?;
        self.disconnect_to(&txn, fork_height)?;
        for hash in &path {
            let block = self
                .block(hash)?
                .ok_or_else(|| ChainError::Inconsistent(format!("body of {hash} missing")))?;
            let entry = self
                .index
                .get(hash)
                .cloned()
                .ok_or_else(|| ChainError::Inconsistent(format!("{hash} has no entry")))?;
            let ids: Vec<Hash> = block.tx_ids().collect();
            match self.connect(&txn, hash, &block, &ids, &entry) {
                Ok(()) => {}
                Err(ConnectError::Invalid(reason)) => {
                    txn.abort()?;
                    self.mark_invalid(hash)?;
                    return Ok(ImportStatus::ReorgFailed {
                        block: *hash,
                        reason,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        txn.open_table(store::META)?
            .insert(store::META_TIP, new_tip.0.as_slice())?;
        txn.commit()?;

        self.main.truncate(fork_height as usize + 1);
        for hash in &path {
            self.index.set_status(hash, BlockStatus::Valid);
            self.main.push(*hash);
        }
        events.push(ChainEvent::Reorg {
            old_tip,
            new_tip,
            fork_height,
            disconnected,
            connected: path,
        });
        Ok(ImportStatus::Reorganized)
    }

    /// Marks `hash` and every descendant invalid and drops their bodies.
    fn mark_invalid(&mut self, hash: &Hash) -> Result<(), ChainError> {
        let doomed = self.index.subtree(hash);
        let txn = self.db()?.begin_write()?;
        {
            let mut blocks = txn.open_table(store::BLOCKS)?;
            let mut bodies = txn.open_table(store::BODIES)?;
            for h in &doomed {
                let record = blocks
                    .get(h.0)?
                    .map(|v| crate::decode::<BlockRecord>(v.value()))
                    .transpose()?;
                if let Some(mut record) = record {
                    record.status = BlockStatus::Invalid;
                    blocks.insert(h.0, encode(&record).as_slice())?;
                }
                bodies.remove(h.0)?;
            }
        }
        txn.commit()?;
        for h in &doomed {
            self.index.set_status(h, BlockStatus::Invalid);
        }
        Ok(())
    }
}
