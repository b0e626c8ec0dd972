//! The chain: block storage in redb, validation, fork choice, reorganisation and queries
//! (consensus-critical).
//!
//! [`Chain`] owns the database. It is a plain struct with no actor or clock: the node's
//! ChainState actor owns one and passes the local time to [`Chain::import`]. Every block, and
//! every reorganisation, commits in one redb write transaction, so a crash leaves either the
//! state before or the state after, never half a block.
//!
//! Blocks go through the rules of [`validate`] cheapest first. A block whose parent is unknown
//! waits in a bounded [`OrphanPool`]. A block that passes the header and stateless body rules is
//! stored; if it extends the tip it is connected at once (state rules, state root) and becomes
//! the tip; if its branch has more work than the tip, the chain reorganises: the state tree rolls
//! back to the fork point with its undo logs and the new branch is connected block by block.
//! When a block of the new branch breaks a state rule, the transaction is dropped, the chain
//! stays at the old tip, and that block and its descendants are marked invalid. Reorganisations
//! deeper than the genesis `max_reorg_depth` are refused.

mod batch;
mod builder;
pub mod check;
pub mod disk;
pub mod error;
pub mod guard;
pub mod headers;
mod import;
pub mod index;
pub mod orphans;
mod precheck;
pub mod reader;
pub mod rules;
mod solo;
pub mod store;
pub mod transition;
pub mod validate;

#[cfg(test)]
mod headers_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Builder, Database, DatabaseError, ReadableDatabase, ReadableTable, TableError};

pub use batch::{BatchImported, BlockResults};
pub use builder::{BlockDraft, BuildError, MiningContext};
pub use check::CheckReport;
pub use disk::{ChainStorage, MemoryDisk};
pub use error::{ChainError, HeadersError, ImportError, InvalidBlock, StorageFault};
pub use guard::Guard;
pub use headers::{
    HeaderRef, HeadersOutcome, MAX_HEADERS_AHEAD, MAX_PENDING_HEADERS, PendingHeaders,
    VerifiedHeaders,
};
pub use index::{BlockIndex, IndexEntry};
pub use orphans::OrphanPool;
pub use precheck::Precheck;
pub use reader::ChainReader;
use reader::ReaderSlot;
pub use solo::SoloMiner;
pub use store::{BlockBody, BlockRecord, BlockStatus, SCHEMA_VERSION};

use crate::account::Account;
use crate::block::{Block, BlockHeader};
use crate::crypto::Address;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::state_tree::{RedbReader, RedbStore, StateProof, StateTree};
use crate::target::Work;
use crate::{Amount, Height, TimestampMs, decode, encode};

/// Most headers one locator query returns.
pub const MAX_HEADERS_PER_QUERY: usize = 2_000;

/// The current best block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Its hash.
    pub hash: Hash,
    /// Its height.
    pub height: Height,
    /// Cumulative work of the main chain.
    pub work: Work,
    /// Its timestamp.
    pub timestamp_ms: TimestampMs,
}

/// A change of the main chain, for subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// A block extended the main chain.
    NewTip {
        /// The new tip.
        hash: Hash,
        /// Its height.
        height: Height,
    },
    /// The main chain switched branches.
    Reorg {
        /// The tip before.
        old_tip: Hash,
        /// The tip after.
        new_tip: Hash,
        /// Height of the last block both branches share.
        fork_height: Height,
        /// Blocks that left the main chain, highest first.
        disconnected: Vec<Hash>,
        /// Blocks that joined it, lowest first.
        connected: Vec<Hash>,
    },
}

/// What importing a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportStatus {
    /// It became the tip, on top of the previous one.
    Extended,
    /// Its branch became the main chain.
    Reorganized,
    /// It was stored on a branch with less work than the main chain.
    SideBranch,
    /// Its parent is unknown: it waits in the orphan pool.
    Orphan,
    /// It was known already.
    Duplicate,
    /// Its branch has more work, but switching would revert more than `max_reorg_depth`
    /// blocks; it stays stored on the side.
    ReorgTooDeep {
        /// Blocks the switch would have reverted.
        depth: u64,
    },
    /// Its branch had more work, but a block of it broke a state rule: the chain stayed at the
    /// old tip and marked that block and its descendants invalid.
    ReorgFailed {
        /// The block that failed.
        block: Hash,
        /// The rule it broke.
        reason: InvalidBlock,
    },
}

/// The result of [`Chain::import`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The block's hash.
    pub hash: Hash,
    /// What happened to it.
    pub status: ImportStatus,
    /// Main-chain changes, in order (the block's own and those of orphans it released).
    pub events: Vec<ChainEvent>,
    /// Orphans released by this block that turned out invalid.
    pub rejected_orphans: Vec<(Hash, InvalidBlock)>,
}

/// An account as the chain sees it at its tip, with a proof against the tip's state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    /// Spendable balance at the tip.
    pub mature: Amount,
    /// Coinbase credits not spendable yet.
    pub immature: Amount,
    /// The next nonce the account must use.
    pub nonce: u64,
    /// The account as stored (credits not yet folded in by a block).
    pub stored: Option<Account>,
    /// Proof of `stored` (or of its absence) against `state_root`.
    pub proof: StateProof,
    /// The state root of the tip.
    pub state_root: Hash,
    /// The tip height the figures are for.
    pub height: Height,
}

/// One row of the supply audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupplyRow {
    /// Height.
    pub height: Height,
    /// Coins in existence after the main-chain block at `height`, as issued.
    pub issued: Amount,
    /// What the emission schedule allows by then (premine included).
    pub scheduled: Amount,
}

impl SupplyRow {
    /// `scheduled - issued`: rewards left unclaimed and fees burnt (never negative on a valid
    /// chain).
    pub fn shortfall(&self) -> i128 {
        i128::from(self.scheduled.0) - i128::from(self.issued.0)
    }
}

/// What [`Chain::open_on`] found about an existing database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// redb's integrity check ran (every open of an existing database).
    pub checked: bool,
    /// The check found pages that fail their checksum and rolled the file back to its last
    /// good commit: the newest blocks may be gone (sync fetches them again).
    pub repaired: bool,
}

/// The chain database and its in-memory index.
pub struct Chain {
    /// The database; `None` while closed after a write failure.
    db: Option<Arc<Database>>,
    /// Catches storage-engine panics; poisoned, it keeps the database untouched.
    guard: Guard,
    /// Where the database lives, to reopen it.
    storage: ChainStorage,
    /// The handle readers share, swapped when the database is reopened.
    readers: ReaderSlot,
    /// What the open found.
    opened: OpenReport,
    path: PathBuf,
    genesis: Genesis,
    index: BlockIndex,
    main: Vec<Hash>,
    orphans: OrphanPool,
    parallel_signatures: bool,
    /// End of the best verified header chain.
    best_header: Hash,
    max_headers_ahead: usize,
}

impl core::fmt::Debug for Chain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chain")
            .field("path", &self.path)
            .field("height", &self.height())
            .field("blocks", &self.index.len())
            .finish()
    }
}

impl Chain {
    /// Opens the chain database at `path`, creating it with the genesis state when the file does
    /// not exist. A database of another schema version or network, a damaged file, or one held
    /// by another process is refused before anything is written.
    pub fn open(path: &Path, genesis: Genesis) -> Result<Self, ChainError> {
        Self::open_on(ChainStorage::File(path.to_path_buf()), genesis)
    }

    /// Opens the chain database on `storage` (a file, or the simulator's memory disk) by the
    /// same rules as [`Chain::open`]: an existing database is checked read-only first, then
    /// redb's integrity check verifies the checksum of every committed page (a file altered
    /// since redb wrote it is refused or rolled back to its last good commit, see
    /// [`OpenReport`]), then the chain's own records are checked against each other. A panic of
    /// the storage engine on a damaged file is returned as [`ChainError::Corrupt`].
    pub fn open_on(storage: ChainStorage, genesis: Genesis) -> Result<Self, ChainError> {
        let guard = Guard::new(storage.describe());
        guard
            .clone()
            .run(|| Self::open_guarded(storage, genesis, guard, ReaderSlot::default()))
    }

    fn open_guarded(
        storage: ChainStorage,
        genesis: Genesis,
        guard: Guard,
        readers: ReaderSlot,
    ) -> Result<Self, ChainError> {
        let shown = storage.describe();
        let network = genesis.network_id;
        let mut created = false;
        let (mut db, path) = match &storage {
            ChainStorage::File(path) => {
                let db = if path.exists() {
                    match Builder::new().open_read_only(path) {
                        Ok(ro) => check_meta(&ro, &shown, &network)?,
                        // Left open by a crash: redb recovers it below; checked again after.
                        Err(DatabaseError::RepairAborted) => {}
                        Err(e) => return Err(open_error(e, &shown)),
                    }
                    let db = Database::open(path).map_err(|e| open_error(e, &shown))?;
                    check_meta(&db, &shown, &network)?;
                    db
                } else {
                    created = true;
                    Database::create(path).map_err(|e| open_error(e, &shown))?
                };
                (db, path.clone())
            }
            ChainStorage::Memory(disk) => {
                created = disk.is_empty();
                if !created {
                    match Builder::new().open_read_only_with_backend(disk.clone()) {
                        Ok(ro) => check_meta(&ro, &shown, &network)?,
                        Err(DatabaseError::RepairAborted) => {}
                        Err(e) => return Err(open_error(e, &shown)),
                    }
                }
                let db = Builder::new()
                    .create_with_backend(disk.clone())
                    .map_err(|e| open_error(e, &shown))?;
                check_meta(&db, &shown, &network)?;
                (db, PathBuf::from(&shown))
            }
        };
        let mut opened = OpenReport::default();
        if !created {
            opened.repaired = !db.check_integrity().map_err(|e| open_error(e, &shown))?;
            opened.checked = true;
            // A repair rolls back to the last commit whose pages check: read the meta again.
            check_meta(&db, &shown, &network)?;
        }
        let best_header = genesis.network_id;
        let db = Arc::new(db);
        let mut chain = Self {
            db: Some(db.clone()),
            guard: guard.clone(),
            storage,
            readers,
            opened,
            path,
            genesis,
            index: BlockIndex::default(),
            main: Vec::new(),
            orphans: OrphanPool::default(),
            parallel_signatures: false,
            best_header,
            max_headers_ahead: MAX_HEADERS_AHEAD,
        };
        if !chain.is_initialised()? {
            chain.initialise()?;
        }
        chain.upgrade_schema()?;
        chain.load()?;
        chain.best_header = chain.best_followable();
        chain.readers.set(Some((db, guard)));
        Ok(chain)
    }

    /// What the open found: whether the integrity check ran and whether it repaired the file.
    pub fn opened(&self) -> OpenReport {
        self.opened
    }

    /// Where the database lives.
    pub fn storage(&self) -> &ChainStorage {
        &self.storage
    }

    /// The storage guard of this handle (poisoned once the storage engine panicked).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Closes the database after a write failure (redb refuses every operation after an I/O
    /// error until it is reopened). The in-memory index stays, so the tip is still known; every
    /// database access returns [`ChainError::Unavailable`] until [`Chain::reopen`] succeeds.
    pub fn close(&mut self) {
        self.readers.set(None);
        self.db = None;
    }

    /// True while the database is closed.
    pub fn is_closed(&self) -> bool {
        self.db.is_none()
    }

    /// Closes the database if open, then opens it again from its storage by the rules of
    /// [`Chain::open_on`]: the index is read again from what was committed, so nothing
    /// committed is lost (what failed to commit was never there). On failure the chain stays
    /// closed, to be reopened later; readers get [`ChainError::Unavailable`] meanwhile.
    pub fn reopen(&mut self) -> Result<OpenReport, ChainError> {
        self.close();
        let guard = Guard::new(self.storage.describe());
        let reopened = guard.clone().run(|| {
            Self::open_guarded(
                self.storage.clone(),
                self.genesis.clone(),
                guard,
                self.readers.clone(),
            )
        })?;
        let (parallel, ahead) = (self.parallel_signatures, self.max_headers_ahead);
        *self = reopened;
        self.parallel_signatures = parallel;
        self.max_headers_ahead = ahead;
        Ok(self.opened)
    }

    /// Commits an empty write transaction: whether the database takes writes (after a reopen).
    pub fn check_writable(&self) -> Result<(), ChainError> {
        let guard = self.guard.clone();
        guard.run(|| {
            self.db()?.begin_write()?.commit()?;
            Ok(())
        })
    }

    /// The open database, or [`ChainError::Unavailable`] while closed.
    fn db(&self) -> Result<&Database, ChainError> {
        self.db.as_deref().ok_or_else(|| ChainError::Unavailable {
            path: self.storage.describe(),
            detail: "it was closed after a write failure and is not reopened yet".into(),
        })
    }

    /// Lets blocks that extend the tip verify their transfer signatures on a scoped second
    /// thread while the state applies (off by default: the core spawns no thread unless the
    /// node asks; the simulator keeps everything on one thread). Results are identical.
    pub fn set_parallel_signatures(&mut self, on: bool) {
        self.parallel_signatures = on;
    }

    /// Sets the bound on header-only entries (tests; the default is [`MAX_HEADERS_AHEAD`]).
    pub fn set_max_headers_ahead(&mut self, limit: usize) {
        self.max_headers_ahead = limit;
    }

    /// A read handle that serves peers from read transactions beside the writer; it follows
    /// the chain across [`Chain::reopen`].
    pub fn reader(&self) -> ChainReader {
        ChainReader::new(self.readers.clone())
    }

    /// The genesis this chain runs on.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current best block.
    pub fn tip(&self) -> Tip {
        let hash = self.tip_hash();
        let (height, work, timestamp_ms) = self
            .index
            .get(&hash)
            .map_or((0, Work::ZERO, 0), |e| (e.height, e.work, e.timestamp_ms));
        Tip {
            hash,
            height,
            work,
            timestamp_ms,
        }
    }

    /// Height of the tip.
    pub fn height(&self) -> Height {
        self.main.len().saturating_sub(1) as Height
    }

    fn tip_hash(&self) -> Hash {
        self.main.last().copied().unwrap_or(self.genesis.network_id)
    }

    /// The in-memory block index.
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// Number of blocks waiting for their parent.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// The main-chain block hash at `height`.
    pub fn hash_at(&self, height: Height) -> Option<Hash> {
        self.main.get(usize::try_from(height).ok()?).copied()
    }

    /// True when `hash` is on the main chain.
    pub fn is_main(&self, hash: &Hash) -> bool {
        self.index
            .get(hash)
            .is_some_and(|e| self.hash_at(e.height) == Some(*hash))
    }

    /// The stored record of a block.
    pub fn record(&self, hash: &Hash) -> Result<Option<BlockRecord>, ChainError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let txn = self.db()?.begin_read()?;
            let table = txn.open_table(store::BLOCKS)?;
            let record = match table.get(hash.0)? {
                Some(v) => Some(decode::<BlockRecord>(v.value())?),
                None => None,
            };
            Ok(record)
        })
    }

    /// The header of a stored block.
    pub fn header(&self, hash: &Hash) -> Result<Option<BlockHeader>, ChainError> {
        Ok(self.record(hash)?.map(|r| r.header))
    }

    /// A stored block with its body (`None` for unknown blocks and invalid ones).
    pub fn block(&self, hash: &Hash) -> Result<Option<Block>, ChainError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let txn = self.db()?.begin_read()?;
            let blocks = txn.open_table(store::BLOCKS)?;
            let bodies = txn.open_table(store::BODIES)?;
            let Some(record) = blocks.get(hash.0)? else {
                return Ok(None);
            };
            let record = decode::<BlockRecord>(record.value())?;
            let Some(body) = bodies.get(hash.0)? else {
                return Ok(None);
            };
            Ok(Some(decode::<BlockBody>(body.value())?.join(record.header)))
        })
    }

    /// The main-chain block at `height`.
    pub fn block_at(&self, height: Height) -> Result<Option<Block>, ChainError> {
        match self.hash_at(height) {
            Some(h) => self.block(&h),
            None => Ok(None),
        }
    }

    /// A locator for the main chain: the tip, then hashes at exponentially growing distances
    /// back to genesis (Bitcoin's shape: ten steps of one, then doubling).
    pub fn locator(&self) -> Vec<Hash> {
        let mut out = Vec::new();
        let mut height = self.height();
        let mut step = 1u64;
        loop {
            if let Some(h) = self.hash_at(height) {
                out.push(h);
            }
            if height == 0 {
                break;
            }
            if out.len() >= 10 {
                step = step.saturating_mul(2);
            }
            height = height.saturating_sub(step);
        }
        out
    }

    /// Main-chain headers after the first locator hash found on the main chain (genesis when
    /// none is), up to `stop` (included) or `max` headers (at most [`MAX_HEADERS_PER_QUERY`]).
    pub fn headers_after(
        &self,
        locator: &[Hash],
        stop: Option<&Hash>,
        max: usize,
    ) -> Result<Vec<BlockHeader>, ChainError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let start = locator
                .iter()
                .find_map(|h| self.is_main(h).then(|| self.index.get(h).map(|e| e.height)))
                .flatten()
                .unwrap_or(0);
            let max = max.min(MAX_HEADERS_PER_QUERY);
            let txn = self.db()?.begin_read()?;
            let blocks = txn.open_table(store::BLOCKS)?;
            let mut out = Vec::with_capacity(max.min(self.main.len()));
            let mut height = start + 1;
            while out.len() < max {
                let Some(hash) = self.hash_at(height) else {
                    break;
                };
                let record = blocks.get(hash.0)?.ok_or_else(|| {
                    ChainError::Inconsistent(format!("main block {hash} missing"))
                })?;
                out.push(decode::<BlockRecord>(record.value())?.header);
                if stop == Some(&hash) {
                    break;
                }
                height += 1;
            }
            Ok(out)
        })
    }

    /// The account of `address` at the tip, mature and immature apart, with its state proof.
    pub fn account(&self, address: &Address) -> Result<AccountState, ChainError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let txn = self.db()?.begin_read()?;
            let tree = StateTree::new(RedbReader::open(&txn)?);
            let stored = tree.get(address)?;
            let proof = tree.prove(address)?;
            let state_root = tree.root()?;
            let height = self.height();
            let view = transition::account_at(
                stored.clone().unwrap_or_default(),
                height,
                self.genesis.config.consensus.coinbase_maturity,
            );
            Ok(AccountState {
                mature: view.balance,
                immature: view.immature_total().unwrap_or(Amount::MAX),
                nonce: view.nonce,
                stored,
                proof,
                state_root,
                height,
            })
        })
    }

    /// Mature balance and next nonce of each address at the tip, in one read transaction (no
    /// proofs: for the mempool's admission checks).
    pub fn account_snapshots(
        &self,
        addresses: &[Address],
    ) -> Result<Vec<(Amount, u64)>, ChainError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let txn = self.db()?.begin_read()?;
            let tree = StateTree::new(RedbReader::open(&txn)?);
            let height = self.height();
            let maturity = self.genesis.config.consensus.coinbase_maturity;
            addresses
                .iter()
                .map(|a| {
                    let view =
                        transition::account_at(tree.get(a)?.unwrap_or_default(), height, maturity);
                    Ok((view.balance, view.nonce))
                })
                .collect()
        })
    }

    /// Where a main-chain transaction is: block hash and position (0 is the coinbase).
    pub fn tx_location(&self, id: &Hash) -> Result<Option<(Hash, u32)>, ChainError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let txn = self.db()?.begin_read()?;
            let table = txn.open_table(store::TX_INDEX)?;
            Ok(table
                .get(id.0)?
                .map(|v| store::parse_tx_location(&v.value())))
        })
    }

    /// Coins in existence after the main-chain block at `height`.
    pub fn supply_at(&self, height: Height) -> Result<Option<Amount>, ChainError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let txn = self.db()?.begin_read()?;
            let table = txn.open_table(store::SUPPLY)?;
            Ok(table.get(height)?.map(|v| Amount(v.value())))
        })
    }

    /// The supply audit of heights `from..=to` (clipped to the tip): issued against scheduled.
    pub fn supply_audit(&self, from: Height, to: Height) -> Result<Vec<SupplyRow>, ChainError> {
        let guard = self.guard.clone();
        guard.run(|| {
            let to = to.min(self.height());
            if from > to {
                return Ok(Vec::new());
            }
            let txn = self.db()?.begin_read()?;
            let table = txn.open_table(store::SUPPLY)?;
            let mut rows = Vec::new();
            for entry in table.range(from..=to)? {
                let (h, v) = entry?;
                let height = h.value();
                rows.push(SupplyRow {
                    height,
                    issued: Amount(v.value()),
                    scheduled: self.genesis.emission.cumulative_supply(height),
                });
            }
            Ok(rows)
        })
    }

    fn is_initialised(&self) -> Result<bool, ChainError> {
        let txn = self.db()?.begin_read()?;
        match txn.open_table(store::META) {
            Ok(_) => Ok(true),
            Err(TableError::TableDoesNotExist(_)) => {
                if txn.list_tables()?.next().is_some() {
                    return Err(ChainError::Damaged {
                        path: self.path.display().to_string(),
                        detail: "it holds tables but no chain metadata".into(),
                    });
                }
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Moves an older database to [`SCHEMA_VERSION`] (version 1 differs only in never holding
    /// header-only records: the number changes, nothing else).
    fn upgrade_schema(&mut self) -> Result<(), ChainError> {
        let version = {
            let txn = self.db()?.begin_read()?;
            let meta = txn.open_table(store::META)?;
            meta.get(store::META_SCHEMA)?
                .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
                .map(u32::from_le_bytes)
        };
        if version == Some(SCHEMA_VERSION) {
            return Ok(());
        }
        let txn = self.db()?.begin_write()?;
        txn.open_table(store::META)?
            .insert(store::META_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Writes the genesis block and state in one transaction.
    fn initialise(&mut self) -> Result<(), ChainError> {
        let g = &self.genesis;
        let hash = g.network_id;
        let record = BlockRecord {
            header: g.block.header.clone(),
            work: Work::ZERO,
            beacon: rules::genesis_beacon(&g.block.header),
            anchor_ms: 0,
            status: BlockStatus::Valid,
        };
        let (_, body) = BlockBody::split(g.block.clone());
        let txn = self.db()?.begin_write()?;
        {
            let mut meta = txn.open_table(store::META)?;
            meta.insert(store::META_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())?;
            meta.insert(store::META_NETWORK, hash.0.as_slice())?;
            meta.insert(store::META_TIP, hash.0.as_slice())?;
            txn.open_table(store::BLOCKS)?
                .insert(hash.0, encode(&record).as_slice())?;
            txn.open_table(store::BODIES)?
                .insert(hash.0, encode(&body).as_slice())?;
            txn.open_table(store::MAIN_CHAIN)?.insert(0, hash.0)?;
            txn.open_table(store::SUPPLY)?
                .insert(0, g.config.premine_total().0)?;
            txn.open_table(store::TX_INDEX)?
                .insert(g.block.coinbase.id().0, store::tx_location(&hash, 0))?;
            let mut tree = StateTree::new(RedbStore::open(&txn)?);
            tree.apply(
                0,
                g.config
                    .premine
                    .iter()
                    .map(|a| (a.address, Account::new(a.amount, 0))),
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Reads the block index and the main chain into memory and checks they agree.
    fn load(&mut self) -> Result<(), ChainError> {
        let txn = self.db()?.begin_read()?;
        let blocks = txn.open_table(store::BLOCKS)?;
        for row in blocks.iter()? {
            let (k, v) = row?;
            let record = decode::<BlockRecord>(v.value())?;
            self.index
                .insert(Hash(k.value()), IndexEntry::from_record(&record));
        }
        let main = txn.open_table(store::MAIN_CHAIN)?;
        for (expected, row) in main.iter()?.enumerate() {
            let (h, hash) = row?;
            if h.value() != expected as u64 {
                return Err(ChainError::Inconsistent(format!(
                    "main chain skips from height {} to {}",
                    expected.saturating_sub(1),
                    h.value()
                )));
            }
            self.main.push(Hash(hash.value()));
        }
        let meta = txn.open_table(store::META)?;
        let tip = meta
            .get(store::META_TIP)?
            .and_then(|v| <[u8; 32]>::try_from(v.value()).ok())
            .map(Hash)
            .ok_or_else(|| ChainError::Inconsistent("no tip recorded".into()))?;
        if self.main.last() != Some(&tip) || self.main.first() != Some(&self.genesis.network_id) {
            return Err(ChainError::Inconsistent(format!(
                "recorded tip {tip} is not the end of the main chain"
            )));
        }
        let tree = StateTree::new(RedbReader::open(&txn)?);
        let tree_height = tree.height()?;
        if tree_height != Some(self.height()) {
            return Err(ChainError::Inconsistent(format!(
                "state tree is at height {tree_height:?}, the tip at {}",
                self.height()
            )));
        }
        let tip_entry = self
            .index
            .get(&tip)
            .ok_or_else(|| ChainError::Inconsistent(format!("tip {tip} has no record")))?;
        if tip_entry.height != self.height() {
            return Err(ChainError::Inconsistent(format!(
                "tip {tip} has height {}, the main chain {}",
                tip_entry.height,
                self.height()
            )));
        }
        if self.height() > 0 {
            let header = self
                .header(&tip)?
                .ok_or_else(|| ChainError::Inconsistent(format!("tip {tip} has no header")))?;
            let root = tree.root()?;
            if header.state_root != root {
                return Err(ChainError::Inconsistent(format!(
                    "state root {root} differs from the tip header's {}",
                    header.state_root
                )));
            }
        }
        Ok(())
    }
}

/// Checks the schema version and network of a database before anything is written.
fn check_meta(db: &impl ReadableDatabase, path: &str, network: &Hash) -> Result<(), ChainError> {
    let damaged = |detail: String| ChainError::Damaged {
        path: path.to_owned(),
        detail,
    };
    let txn = db.begin_read().map_err(|e| damaged(e.to_string()))?;
    let meta = match txn.open_table(store::META) {
        Ok(t) => t,
        // A file created but never initialised (a crash before the first commit) is empty.
        Err(TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(damaged(e.to_string())),
    };
    let read = |key: &str| -> Result<Option<Vec<u8>>, ChainError> {
        Ok(meta
            .get(key)
            .map_err(|e| damaged(e.to_string()))?
            .map(|v| v.value().to_vec()))
    };
    let version = read(store::META_SCHEMA)?
        .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| damaged("no schema version".into()))?;
    if !(store::MIN_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&version) {
        return Err(ChainError::SchemaVersion {
            path: path.to_owned(),
            found: version,
            expected: SCHEMA_VERSION,
        });
    }
    let found = read(store::META_NETWORK)?
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
        .map(Hash)
        .ok_or_else(|| damaged("no network id".into()))?;
    if found != *network {
        return Err(ChainError::WrongNetwork {
            path: path.to_owned(),
            found,
            expected: *network,
        });
    }
    Ok(())
}

fn open_error(e: DatabaseError, path: &str) -> ChainError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => ChainError::Locked {
            path: path.to_owned(),
        },
        DatabaseError::Storage(redb::StorageError::Io(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            ChainError::Open {
                path: path.to_owned(),
                source: redb::Error::Io(io),
            }
        }
        // Writing failed (a full disk, an I/O error): the file may be fine.
        DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData =>
        {
            ChainError::Open {
                path: path.to_owned(),
                source: redb::Error::Io(io),
            }
        }
        other => ChainError::Damaged {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}
