//! Serving peers from read transactions: headers by locator and blocks by hash, answered beside
//! the writer (redb serves readers while a write transaction is open), so requests never wait
//! behind the import queue. Each call reads one consistent snapshot of the committed chain.

use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase};

use super::error::ChainError;
use super::guard::Guard;
use super::store::{self, BlockBody, BlockRecord, BlockStatus};
use super::{MAX_HEADERS_PER_QUERY, Tip};
use crate::block::{Block, BlockHeader};
use crate::decode;
use crate::hash::Hash;

/// The database readers share with the writer: `None` while it is closed for a reopen.
#[derive(Clone, Default)]
pub(super) struct ReaderSlot(Arc<RwLock<Option<OpenDb>>>);

/// An open database and the guard of its handle.
type OpenDb = (Arc<Database>, Guard);

impl core::fmt::Debug for ReaderSlot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ReaderSlot")
    }
}

impl ReaderSlot {
    /// Puts the open database in the slot, or empties it.
    pub(super) fn set(&self, db: Option<OpenDb>) {
        // A reader that panicked holding the lock left the slot whole: carry on.
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = db;
    }

    fn get(&self) -> Option<OpenDb> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A cheap, cloneable read handle on the chain database.
#[derive(Clone)]
pub struct ChainReader {
    slot: ReaderSlot,
}

impl core::fmt::Debug for ChainReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ChainReader")
    }
}

impl ChainReader {
    pub(super) fn new(slot: ReaderSlot) -> Self {
        Self { slot }
    }

    /// The open database and its guard, or [`ChainError::Unavailable`] during a reopen.
    fn open(&self) -> Result<OpenDb, ChainError> {
        self.slot.get().ok_or_else(|| ChainError::Unavailable {
            path: "chain database".into(),
            detail: "it is closed while the node reopens it after a write failure".into(),
        })
    }

    /// The committed tip.
    pub fn tip(&self) -> Result<Tip, ChainError> {
        let (db, guard) = self.open()?;
        guard.run(|| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(store::META)?;
            let hash = meta
                .get(store::META_TIP)?
                .and_then(|v| <[u8; 32]>::try_from(v.value()).ok())
                .map(Hash)
                .ok_or_else(|| ChainError::Inconsistent("no tip recorded".into()))?;
            let blocks = txn.open_table(store::BLOCKS)?;
            let record = blocks
                .get(hash.0)?
                .map(|v| decode::<BlockRecord>(v.value()))
                .transpose()?
                .ok_or_else(|| ChainError::Inconsistent(format!("tip {hash} has no record")))?;
            Ok(Tip {
                hash,
                height: record.header.height,
                work: record.work,
                timestamp_ms: record.header.timestamp_ms,
            })
        })
    }

    /// Main-chain headers after the first locator hash on the main chain (genesis when none
    /// is), up to `stop` (included) or `max` headers (at most [`MAX_HEADERS_PER_QUERY`]).
    pub fn headers_after(
        &self,
        locator: &[Hash],
        stop: Option<&Hash>,
        max: usize,
    ) -> Result<Vec<BlockHeader>, ChainError> {
        let (db, guard) = self.open()?;
        guard.run(|| {
            let txn = db.begin_read()?;
            let blocks = txn.open_table(store::BLOCKS)?;
            let main = txn.open_table(store::MAIN_CHAIN)?;
            let mut start = 0;
            for hash in locator {
                let Some(record) = blocks.get(hash.0)? else {
                    continue;
                };
                let height = decode::<BlockRecord>(record.value())?.header.height;
                if main.get(height)?.map(|v| v.value()) == Some(hash.0) {
                    start = height;
                    break;
                }
            }
            let max = max.min(MAX_HEADERS_PER_QUERY);
            let mut out = Vec::with_capacity(max.min(256));
            for row in main.range(start.saturating_add(1)..)? {
                if out.len() >= max {
                    break;
                }
                let (_, hash) = row?;
                let hash = hash.value();
                let record = blocks.get(hash)?.ok_or_else(|| {
                    ChainError::Inconsistent("a main-chain block is missing".into())
                })?;
                out.push(decode::<BlockRecord>(record.value())?.header);
                if stop.is_some_and(|s| s.0 == hash) {
                    break;
                }
            }
            Ok(out)
        })
    }

    /// Stored blocks with their bodies, in the order asked; `None` for those not held (unknown,
    /// header-only, or invalid).
    pub fn blocks(&self, hashes: &[Hash]) -> Result<Vec<Option<Block>>, ChainError> {
        let (db, guard) = self.open()?;
        guard.run(|| {
            let txn = db.begin_read()?;
            let blocks = txn.open_table(store::BLOCKS)?;
            let bodies = txn.open_table(store::BODIES)?;
            let mut out = Vec::with_capacity(hashes.len());
            for hash in hashes {
                let Some(record) = blocks.get(hash.0)? else {
                    out.push(None);
                    continue;
                };
                let record = decode::<BlockRecord>(record.value())?;
                if matches!(
                    record.status,
                    BlockStatus::Invalid | BlockStatus::HeaderOnly
                ) {
                    out.push(None);
                    continue;
                }
                let block = match bodies.get(hash.0)? {
                    Some(body) => Some(decode::<BlockBody>(body.value())?.join(record.header)),
                    None => None,
                };
                out.push(block);
            }
            Ok(out)
        })
    }
}
