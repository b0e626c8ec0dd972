//! Headers ahead of bodies (headers-first sync): verifying a batch of headers, holding a chain
//! that has less work than ours in memory, and storing header-only entries (consensus-critical).
//!
//! A batch is refused whole when any header breaks a rule, so a peer cannot get half a bad
//! chain stored. Headers are stored only once their chain has more work than the best chain
//! known (tip or best header): until then they wait in a [`PendingHeaders`] of bounded length,
//! as Bitcoin Core's headers presync holds a low-work chain, so a peer cannot fill the disk
//! with a cheap side chain. Header-only entries ahead of the bodies are bounded too
//! ([`MAX_HEADERS_AHEAD`]).

use super::Chain;
use super::error::{HeadersError, InvalidBlock};
use super::index::{IndexEntry, better};
use super::rules::{MEDIAN_TIME_SPAN, median_timestamp};
use super::store::{self, BlockRecord, BlockStatus};
use super::validate::{check_header_context, check_header_proof, check_header_structure};
use crate::block::BlockHeader;
use crate::genesis::GenesisConfig;
use crate::hash::Hash;
use crate::target::Work;
use crate::{Height, TimestampMs, encode};

/// Most header-only entries the chain stores ahead of its bodies; sync asks for more headers
/// once bodies have caught up.
pub const MAX_HEADERS_AHEAD: usize = 100_000;
/// Most headers of a chain with less work than ours held in memory for one peer.
pub const MAX_PENDING_HEADERS: usize = 20_000;

/// A block as sync sees it: hash, height and the cumulative work of the chain ending there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef {
    /// Its hash.
    pub hash: Hash,
    /// Its height.
    pub height: Height,
    /// Cumulative work up to it.
    pub work: Work,
}

/// Headers whose context-free rules (structure, proof of space, score, signature) passed:
/// only [`VerifiedHeaders::verify`] makes one, so the chain checks the rest without
/// repeating the costly part.
#[derive(Debug, Clone, Default)]
pub struct VerifiedHeaders {
    headers: Vec<(Hash, BlockHeader)>,
}

impl VerifiedHeaders {
    /// Checks each header's structure, proof, score and signature (no ancestor needed).
    pub fn verify(config: &GenesisConfig, headers: Vec<BlockHeader>) -> Result<Self, HeadersError> {
        let mut out = Vec::with_capacity(headers.len());
        for header in headers {
            let hash = header.hash();
            let invalid = |reason| HeadersError::Invalid { hash, reason };
            check_header_structure(&header, &hash, config).map_err(invalid)?;
            check_header_proof(&header, config).map_err(invalid)?;
            out.push((hash, header));
        }
        Ok(Self { headers: out })
    }

    /// Joins batches verified apart (in parallel), in order.
    pub fn concat(parts: Vec<VerifiedHeaders>) -> Self {
        Self {
            headers: parts.into_iter().flat_map(|p| p.headers).collect(),
        }
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The hash of the last header.
    pub fn last_hash(&self) -> Option<Hash> {
        self.headers.last().map(|(h, _)| *h)
    }
}

/// A verified header chain that does not have more work than ours yet, held in memory (one
/// per peer): it connects to a stored block and grows batch by batch until its work beats the
/// best known chain, when it is stored, or past its bound, when it is dropped.
#[derive(Debug, Clone)]
pub struct PendingHeaders {
    entries: Vec<(Hash, IndexEntry, BlockHeader)>,
    limit: usize,
}

impl Default for PendingHeaders {
    fn default() -> Self {
        Self::with_limit(MAX_PENDING_HEADERS)
    }
}

impl PendingHeaders {
    /// An empty chain bounded at `limit` headers.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            entries: Vec::new(),
            limit,
        }
    }

    /// Headers held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none are held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops the chain.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The end of the chain held.
    pub fn last(&self) -> Option<HeaderRef> {
        self.entries.last().map(|(hash, e, _)| HeaderRef {
            hash: *hash,
            height: e.height,
            work: e.work,
        })
    }

    fn find(&self, hash: &Hash) -> Option<usize> {
        self.entries.iter().rposition(|(h, _, _)| h == hash)
    }
}

/// What became of a batch of headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersOutcome {
    /// Stored as header-only entries (with the pending chain before them, if any); `last`
    /// ends the stored chain. `count` is 0 when every header was known.
    Stored {
        /// The last header of the batch.
        last: HeaderRef,
        /// Headers newly stored.
        count: usize,
    },
    /// Verified, but the chain does not have more work than ours: held in the pending chain.
    Pending {
        /// The last header of the batch.
        last: HeaderRef,
        /// Headers added to the pending chain.
        count: usize,
    },
}

impl Chain {
    /// The end of the best chain of verified headers (the tip when no header is ahead).
    pub fn best_header(&self) -> HeaderRef {
        self.header_ref(&self.best_header)
            .unwrap_or_else(|| self.tip_ref())
    }

    /// The tip as a [`HeaderRef`].
    pub fn tip_ref(&self) -> HeaderRef {
        let tip = self.tip();
        HeaderRef {
            hash: tip.hash,
            height: tip.height,
            work: tip.work,
        }
    }

    fn header_ref(&self, hash: &Hash) -> Option<HeaderRef> {
        self.index.get(hash).map(|e| HeaderRef {
            hash: *hash,
            height: e.height,
            work: e.work,
        })
    }

    /// Header-only entries stored.
    pub fn header_only_count(&self) -> usize {
        self.index.header_only_count()
    }

    /// Checks `batch` against its ancestors (stored blocks, then the `pending` chain) and
    /// stores it, with the pending chain, once the chain's work beats the best known chain;
    /// otherwise the batch joins `pending`. Headers already stored are skipped. A header that
    /// breaks a rule refuses the whole batch, and the pending chain is dropped with it.
    pub fn import_headers(
        &mut self,
        pending: &mut PendingHeaders,
        batch: VerifiedHeaders,
        now_ms: TimestampMs,
    ) -> Result<HeadersOutcome, HeadersError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let result = self.check_headers(pending, batch, now_ms);
            if result.is_err() {
                pending.clear();
            }
            result
        })
    }

    fn check_headers(
        &mut self,
        pending: &mut PendingHeaders,
        batch: VerifiedHeaders,
        now_ms: TimestampMs,
    ) -> Result<HeadersOutcome, HeadersError> {
        let config = &self.genesis.config;
        let mut headers = batch.headers.into_iter().enumerate().peekable();
        // The known prefix (a locator answer starts at the fork point).
        let mut last_known = None;
        while let Some((index, (hash, header))) = headers.peek() {
            let Some(entry) = self.index.get(hash) else {
                break;
            };
            if entry.status == BlockStatus::Invalid {
                return Err(HeadersError::Invalid {
                    hash: *hash,
                    reason: InvalidBlock::KnownInvalid { hash: *hash },
                });
            }
            if let Some(prev) = last_known
                && header.parent != prev
            {
                return Err(HeadersError::NotConnecting {
                    index: *index,
                    parent: header.parent,
                });
            }
            last_known = Some(*hash);
            headers.next();
        }
        let mut fresh: Vec<(Hash, IndexEntry, BlockHeader)> = Vec::new();
        for (index, (hash, header)) in headers {
            let parent_hash = header.parent;
            if let Some(prev) = last_known.take()
                && parent_hash != prev
            {
                return Err(HeadersError::NotConnecting {
                    index,
                    parent: parent_hash,
                });
            }
            let parent = if let Some((h, e, _)) = fresh.last() {
                if *h != parent_hash {
                    return Err(HeadersError::NotConnecting {
                        index,
                        parent: parent_hash,
                    });
                }
                e.clone()
            } else if let Some(at) = pending.find(&parent_hash) {
                // A continuation of the pending chain (a fork of it replaces its tail).
                pending.entries.truncate(at + 1);
                pending.entries[at].1.clone()
            } else if let Some(e) = self.index.get(&parent_hash) {
                // A chain from a stored block: whatever was pending is another chain.
                pending.clear();
                e.clone()
            } else {
                return Err(HeadersError::NotConnecting {
                    index,
                    parent: parent_hash,
                });
            };
            if parent.status == BlockStatus::Invalid {
                return Err(HeadersError::Invalid {
                    hash,
                    reason: InvalidBlock::InvalidAncestor {
                        ancestor: parent_hash,
                    },
                });
            }
            let median = self.median_before(pending, &fresh, &parent);
            check_header_context(&header, &parent, median, now_ms, config)
                .map_err(|reason| HeadersError::Invalid { hash, reason })?;
            let mut entry = parent.child(&header, parent_hash);
            entry.status = BlockStatus::HeaderOnly;
            fresh.push((hash, entry, header));
        }
        let Some((last_hash, last_entry, _)) = fresh.last() else {
            let last = last_known
                .and_then(|h| self.header_ref(&h))
                .unwrap_or_else(|| self.best_header());
            return Ok(HeadersOutcome::Stored { last, count: 0 });
        };
        let last = HeaderRef {
            hash: *last_hash,
            height: last_entry.height,
            work: last_entry.work,
        };
        let best = self.best_header();
        let best_entry = self.index.get(&best.hash).cloned();
        let beats = best_entry
            .as_ref()
            .is_none_or(|b| better((last_hash, last_entry), (&best.hash, b)));
        let count = fresh.len();
        if !beats {
            if pending.entries.len() + count > pending.limit {
                return Err(HeadersError::TooManyPending {
                    limit: pending.limit,
                });
            }
            pending.entries.extend(fresh);
            return Ok(HeadersOutcome::Pending { last, count });
        }
        let mut all = std::mem::take(&mut pending.entries);
        all.extend(fresh);
        if self.header_only_count() + all.len() > self.max_headers_ahead {
            return Err(HeadersError::Full {
                limit: self.max_headers_ahead,
            });
        }
        self.store_headers(&all)?;
        let stored = all.len();
        for (hash, entry, _) in all {
            self.index.insert(hash, entry);
        }
        // A chain that forks deeper than `max_reorg_depth` is stored (it has the work) but is
        // never what sync works towards: the chain would refuse to switch to it.
        if self.followable(&last.hash) {
            self.best_header = last.hash;
        }
        Ok(HeadersOutcome::Stored {
            last,
            count: stored,
        })
    }

    /// The median timestamp of `parent` and its ancestors, walking the batch being checked,
    /// then the pending chain, then the stored index.
    fn median_before(
        &self,
        pending: &PendingHeaders,
        fresh: &[(Hash, IndexEntry, BlockHeader)],
        parent: &IndexEntry,
    ) -> TimestampMs {
        let mut ts = [0u64; MEDIAN_TIME_SPAN];
        let mut n = 0;
        let mut cursor = Some(parent.clone());
        while let Some(entry) = cursor {
            if n == MEDIAN_TIME_SPAN {
                break;
            }
            ts[n] = entry.timestamp_ms;
            n += 1;
            if entry.height == 0 {
                break;
            }
            let up = entry.parent;
            cursor = fresh
                .iter()
                .rev()
                .find(|(h, _, _)| *h == up)
                .map(|(_, e, _)| e.clone())
                .or_else(|| pending.find(&up).map(|i| pending.entries[i].1.clone()))
                .or_else(|| self.index.get(&up).cloned());
        }
        median_timestamp(&ts[..n]).unwrap_or(0)
    }

    fn store_headers(&self, all: &[(Hash, IndexEntry, BlockHeader)]) -> Result<(), HeadersError> {
        let txn = self.db()?.begin_write().map_err(super::ChainError::from)?;
        {
            let mut blocks = txn
                .open_table(store::BLOCKS)
                .map_err(super::ChainError::from)?;
            for (hash, entry, header) in all {
                let record = BlockRecord {
                    header: header.clone(),
                    work: entry.work,
                    beacon: entry.beacon,
                    anchor_ms: entry.anchor_ms,
                    status: BlockStatus::HeaderOnly,
                };
                blocks
                    .insert(hash.0, encode(&record).as_slice())
                    .map_err(super::ChainError::from)?;
            }
        }
        txn.commit().map_err(super::ChainError::from)?;
        Ok(())
    }

    /// A locator along the best header chain: its end, then hashes at exponentially growing
    /// distances back to genesis.
    pub fn header_locator(&self) -> Vec<Hash> {
        let mut out = Vec::new();
        let mut cursor = self.best_header().hash;
        let Some(mut entry) = self.index.get(&cursor) else {
            return self.locator();
        };
        let mut step = 1u64;
        loop {
            out.push(cursor);
            if entry.height == 0 || out.len() >= crate::wire::MAX_LOCATOR_HASHES {
                break;
            }
            if out.len() >= 10 {
                step = step.saturating_mul(2);
            }
            let target = entry.height.saturating_sub(step);
            // Below the fork with the main chain, heights index the main chain directly.
            if self.is_main(&cursor)
                && let Some(h) = self.hash_at(target)
                && let Some(e) = self.index.get(&h)
            {
                cursor = h;
                entry = e;
                continue;
            }
            while entry.height > target {
                cursor = entry.parent;
                match self.index.get(&cursor) {
                    Some(e) => entry = e,
                    None => return out,
                }
            }
        }
        if out.last() != Some(&self.genesis.network_id) {
            if out.len() >= crate::wire::MAX_LOCATOR_HASHES {
                out.pop();
            }
            out.push(self.genesis.network_id);
        }
        out
    }

    /// The blocks of the best header chain whose bodies are missing, lowest first, at most
    /// `max`: from just above the last block with a body (the fork point with the main chain
    /// when the best headers are on another branch).
    pub fn missing_bodies(&self, max: usize) -> Vec<(Hash, Height)> {
        let mut out = Vec::new();
        let mut cursor = self.best_header;
        while let Some(e) = self.index.get(&cursor) {
            if e.status != BlockStatus::HeaderOnly {
                break;
            }
            out.push((cursor, e.height));
            cursor = e.parent;
        }
        out.reverse();
        out.truncate(max);
        out
    }

    /// Keeps the best header right after blocks joined or left: the tip when it is better, and
    /// a full search when the best header was marked invalid or its branch now forks deeper
    /// than `max_reorg_depth` below the tip.
    pub(super) fn refresh_best_header(&mut self) {
        let tip = self.tip_hash();
        match self.index.get(&self.best_header) {
            Some(b) if b.status != BlockStatus::Invalid && self.followable(&self.best_header) => {
                if let Some(t) = self.index.get(&tip)
                    && better((&tip, t), (&self.best_header, b))
                {
                    self.best_header = tip;
                }
            }
            _ => self.best_header = self.best_followable(),
        }
    }

    /// The best block that is not invalid when the chain could switch to it, else the tip.
    pub(super) fn best_followable(&self) -> Hash {
        match self.index.best_valid() {
            Some(best) if self.followable(&best) => best,
            _ => self.tip_hash(),
        }
    }

    /// True when switching to the branch of `hash` would revert at most `max_reorg_depth`
    /// blocks (the reorganisation rule): walks down from `hash` to the main chain, at most to
    /// `max_reorg_depth` blocks below the tip.
    pub(super) fn followable(&self, hash: &Hash) -> bool {
        let floor = self
            .height()
            .saturating_sub(self.genesis.config.consensus.max_reorg_depth);
        let mut cursor = *hash;
        loop {
            if self.is_main(&cursor) {
                return true;
            }
            match self.index.get(&cursor) {
                Some(e) if e.height > floor => cursor = e.parent,
                _ => return false,
            }
        }
    }
}
