//! Importing runs of consecutive blocks in one write transaction (sync far behind the network,
//! `spacetime chain import`): one fsync for up to [`MAX_BATCH`] blocks instead of one each.
//!
//! A run is the longest prefix of the input in which each block extends the one before it,
//! starting at the tip. It commits whole or not at all: when any block of it breaks a rule,
//! the transaction is dropped and the run is imported again block by block, so the blocks
//! before the bad one are kept and the bad one is marked as [`Chain::import`] marks it. Blocks
//! outside a run (side branches, orphans, known blocks) go through [`Chain::import`] alone.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::error::{ChainError, ImportError, InvalidBlock};
use super::index::IndexEntry;
use super::store::{self, BlockBody, BlockStatus};
use super::validate::{
    check_body_structure, check_header, check_structure, verify_transfer_signatures,
};
use super::{Chain, ChainEvent, ImportStatus, Imported};
use crate::block::Block;
use crate::hash::Hash;
use crate::{TimestampMs, encode};

/// Most blocks one write transaction commits.
pub const MAX_BATCH: usize = 512;

/// Each block's hash and import result, in input order.
pub type BlockResults = Vec<(Hash, Result<Imported, ImportError>)>;

/// What [`Chain::import_blocks`] did, block by block in input order.
#[derive(Debug, Default)]
pub struct BatchImported {
    /// Each block's hash and result.
    pub results: BlockResults,
    /// Write transactions committed for runs (0 when every block went alone).
    pub batches: usize,
}

/// A block of a run, checked up to its state.
struct Prepared {
    hash: Hash,
    block: Block,
    ids: Vec<Hash>,
    entry: IndexEntry,
}

impl Chain {
    /// Imports `blocks` in order, committing runs of consecutive blocks on the tip together
    /// (see the module documentation). A database failure stops the import and is returned for
    /// the block it happened at; the blocks after it are not tried.
    pub fn import_blocks(&mut self, blocks: Vec<Block>, now_ms: TimestampMs) -> BatchImported {
        let mut out = BatchImported::default();
        let mut rest = blocks.into_iter().peekable();
        while rest.peek().is_some() {
            let mut run = Vec::new();
            let mut parent = self.tip_hash();
            while run.len() < MAX_BATCH
                && let Some(block) = rest.peek()
                && block.header.parent == parent
                && self
                    .index
                    .get(&block.hash())
                    .is_none_or(|e| e.status == BlockStatus::HeaderOnly)
            {
                parent = block.hash();
                run.extend(rest.next());
            }
            if run.len() > 1 {
                let first = run.first().map(Block::hash).unwrap_or_default();
                let guard = self.guard.clone();
                let committed = guard
                    .run(|| Ok::<_, ChainError>(self.commit_run(run, now_ms)))
                    .unwrap_or_else(|e| Err(RunFailed::Chain(first, Box::new(e))));
                match committed {
                    Ok(results) => {
                        out.batches += 1;
                        out.results.extend(results);
                    }
                    Err(RunFailed::Retry(run)) => {
                        if !self.import_each(run, now_ms, &mut out.results) {
                            return out;
                        }
                    }
                    Err(RunFailed::Chain(hash, e)) => {
                        out.results.push((hash, Err(ImportError::Chain(*e))));
                        return out;
                    }
                }
                continue;
            }
            if !self.import_each(run.into_iter().chain(rest.next()), now_ms, &mut out.results) {
                return out;
            }
        }
        out
    }

    /// Imports `blocks` one by one through [`Chain::import`]; false when the database failed
    /// (the blocks after that one are not tried).
    fn import_each(
        &mut self,
        blocks: impl IntoIterator<Item = Block>,
        now_ms: TimestampMs,
        results: &mut BlockResults,
    ) -> bool {
        for block in blocks {
            let hash = block.hash();
            let result = self.import(block, now_ms);
            let failed = matches!(result, Err(ImportError::Chain(_)));
            results.push((hash, result));
            if failed {
                return false;
            }
        }
        true
    }

    /// Checks and connects a run of blocks on the tip in one transaction.
    fn commit_run(
        &mut self,
        run: Vec<Block>,
        now_ms: TimestampMs,
    ) -> Result<BlockResults, RunFailed> {
        let config = &self.genesis.config;
        let chain_id = self.genesis.chain_id;
        let mut prepared: Vec<Prepared> = Vec::with_capacity(run.len());
        let mut parent_hash = self.tip_hash();
        let Some(mut parent) = self.index.get(&parent_hash).cloned() else {
            return Err(RunFailed::Retry(run));
        };
        let mut recent: Vec<TimestampMs> = Vec::new();
        let mut blocks = run.into_iter();
        while let Some(block) = blocks.next() {
            let hash = block.hash();
            let checked = match self.index.get(&hash) {
                // The transaction root is checked with the body below; a mismatch sends the
                // run down the single path, which tells it from an invalid block.
                Some(e) => check_structure(&block, &hash, config).map(|()| e.clone()),
                None => check_structure(&block, &hash, config).and_then(|()| {
                    let median = self.median_with(&parent_hash, &recent);
                    check_header(&block.header, &parent, median, now_ms, config)
                        .map(|()| parent.child(&block.header, parent_hash))
                }),
            };
            let ids =
                checked.and_then(|e| check_body_structure(&block, chain_id).map(|ids| (e, ids)));
            let Ok((entry, ids)) = ids else {
                let mut back: Vec<Block> = prepared.into_iter().map(|p| p.block).collect();
                back.push(block);
                back.extend(blocks);
                return Err(RunFailed::Retry(back));
            };
            recent.push(block.header.timestamp_ms);
            parent_hash = hash;
            parent = entry.clone();
            prepared.push(Prepared {
                hash,
                block,
                ids,
                entry,
            });
        }
        let first = prepared.first().map_or(Hash::ZERO, |p| p.hash);
        let chain_err = |e: ChainError| RunFailed::Chain(first, Box::new(e));
        let txn = self
            .db()
            .map_err(chain_err)?
            .begin_write()
            .map_err(|e| chain_err(e.into()))?;
        let (connected, signatures) = if self.parallel_signatures {
            verify_while(&prepared, || self.connect_all(&txn, &prepared))
        } else {
            let signatures = prepared
                .iter()
                .try_for_each(|p| verify_transfer_signatures(&p.block));
            let connected = match signatures {
                Ok(()) => self.connect_all(&txn, &prepared),
                Err(_) => Ok(false),
            };
            (connected, signatures)
        };
        let connected = connected.map_err(chain_err)?;
        if !connected || signatures.is_err() {
            txn.abort().map_err(|e| chain_err(e.into()))?;
            return Err(RunFailed::Retry(
                prepared.into_iter().map(|p| p.block).collect(),
            ));
        }
        let last = prepared.last().map_or(first, |p| p.hash);
        {
            let write = || -> Result<(), ChainError> {
                let mut bodies = txn.open_table(store::BODIES)?;
                for p in &prepared {
                    let body = BlockBody {
                        coinbase: p.block.coinbase.clone(),
                        transfers: p.block.transfers.clone(),
                    };
                    bodies.insert(p.hash.0, encode(&body).as_slice())?;
                }
                txn.open_table(store::META)?
                    .insert(store::META_TIP, last.0.as_slice())?;
                Ok(())
            };
            write().map_err(chain_err)?;
        }
        txn.commit().map_err(|e| chain_err(e.into()))?;
        let mut results = Vec::with_capacity(prepared.len());
        for p in prepared {
            let mut entry = p.entry;
            entry.status = BlockStatus::Valid;
            let height = entry.height;
            self.index.insert(p.hash, entry);
            self.main.push(p.hash);
            results.push((
                p.hash,
                Ok(Imported {
                    hash: p.hash,
                    status: ImportStatus::Extended,
                    events: vec![ChainEvent::NewTip {
                        hash: p.hash,
                        height,
                    }],
                    rejected_orphans: Vec::new(),
                }),
            ));
        }
        self.refresh_best_header();
        // Orphans waiting on the new tip go through the single path.
        let released = self.orphans.take_children(&last);
        for (hash, block) in released {
            let result = self.import(block, now_ms);
            results.push((hash, result));
        }
        Ok(results)
    }

    /// Applies every prepared block in `txn`; `Ok(false)` when one breaks a state rule.
    fn connect_all(
        &self,
        txn: &redb::WriteTransaction,
        prepared: &[Prepared],
    ) -> Result<bool, ChainError> {
        for p in prepared {
            match self.connect(txn, &p.hash, &p.block, &p.ids, &p.entry) {
                Ok(()) => {}
                Err(super::import::ConnectError::Invalid(_)) => return Ok(false),
                Err(super::import::ConnectError::Chain(e)) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The median time past of `parent`, whose last ancestors (oldest first) are `recent`
    /// (blocks of the run not in the index yet) followed by the index.
    fn median_with(&self, parent: &Hash, recent: &[TimestampMs]) -> TimestampMs {
        use super::rules::{MEDIAN_TIME_SPAN, median_timestamp};
        if recent.is_empty() {
            return self.index.median_time_past(parent).unwrap_or(0);
        }
        let mut ts: Vec<TimestampMs> = recent
            .iter()
            .rev()
            .take(MEDIAN_TIME_SPAN)
            .copied()
            .collect();
        if ts.len() < MEDIAN_TIME_SPAN {
            // The run's first block's parent is the tip: continue from it.
            let mut cursor = self.index.get(&self.tip_hash());
            while let Some(e) = cursor {
                if ts.len() == MEDIAN_TIME_SPAN {
                    break;
                }
                ts.push(e.timestamp_ms);
                if e.height == 0 {
                    break;
                }
                cursor = self.index.get(&e.parent);
            }
        }
        median_timestamp(&ts).unwrap_or(0)
    }
}

/// Why a run was not committed.
enum RunFailed {
    /// A block of it broke a rule: import its blocks one by one.
    Retry(Vec<Block>),
    /// The database failed at the run starting with this block.
    Chain(Hash, Box<ChainError>),
}

/// Verifies the transfer signatures of `prepared` on a second thread while `apply` runs on
/// this one; the calling thread joins the verification once `apply` is done, taking blocks
/// from the same counter, so both cores stay busy whichever part is longer.
fn verify_while<R>(
    prepared: &[Prepared],
    apply: impl FnOnce() -> R,
) -> (R, Result<(), InvalidBlock>) {
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<(usize, InvalidBlock)>> = Mutex::new(None);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(p) = prepared.get(i) else {
                return;
            };
            if let Err(bad) = verify_transfer_signatures(&p.block) {
                let mut slot = failed.lock().unwrap_or_else(|e| e.into_inner());
                if slot.as_ref().is_none_or(|(j, _)| i < *j) {
                    *slot = Some((i, bad));
                }
                return;
            }
        }
    };
    let applied = std::thread::scope(|scope| {
        let helper = scope.spawn(work);
        let applied = apply();
        work();
        let _ = helper.join();
        applied
    });
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    (applied, failed.map_or(Ok(()), |(_, bad)| Err(bad)))
}
