//! The state tree's redb tables, opened inside a transaction the storage layer owns.
//!
//! The chain's storage layer commits a block, its indexes, its tip and its state tree changes in
//! one write transaction: it opens a [`RedbStore`] on that transaction, applies the block through
//! a [`StateTree`](super::StateTree), drops the tree and commits. Queries open a [`RedbReader`] on
//! a read transaction. Records are the canonical encodings of the node types; a record that does
//! not decode is reported as [`StoreError::Corrupt`].
//!
//! | table | key | value |
//! |---|---|---|
//! | [`BRANCHES`] | depth byte, then 32-byte prefix | encoded [`Branch`] |
//! | [`LEAVES`] | 32-byte state key | encoded [`Account`] |
//! | [`META`] | `0` | encoded [`Meta`] |
//! | [`UNDO`] | block height | encoded [`UndoLog`] |

use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, TableError,
    WriteTransaction,
};

use super::node::{Branch, Meta, NodeKey, UndoLog};
use super::store::{NodeReader, NodeStore, StoreError};
use crate::Height;
use crate::account::Account;
use crate::encoding::{Canonical, decode, encode};
use crate::hash::Hash;

/// Branch nodes by position.
pub const BRANCHES: TableDefinition<'static, [u8; 33], &'static [u8]> =
    TableDefinition::new("state_tree_branches");
/// Accounts by state key.
pub const LEAVES: TableDefinition<'static, [u8; 32], &'static [u8]> =
    TableDefinition::new("state_tree_leaves");
/// The tree metadata, one row.
pub const META: TableDefinition<'static, u8, &'static [u8]> =
    TableDefinition::new("state_tree_meta");
/// Undo logs by block height.
pub const UNDO: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("state_tree_undo");

/// The key of the single metadata row.
const META_KEY: u8 = 0;

fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Database(e.into())
}

fn read<K: redb::Key + 'static, T: Canonical>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: K::SelfType<'_>,
) -> Result<Option<T>, StoreError> {
    match table.get(key).map_err(db)? {
        Some(guard) => Ok(Some(decode::<T>(guard.value())?)),
        None => Ok(None),
    }
}

/// The state tree's tables in a write transaction.
pub struct RedbStore<'txn> {
    branches: Table<'txn, [u8; 33], &'static [u8]>,
    leaves: Table<'txn, [u8; 32], &'static [u8]>,
    meta: Table<'txn, u8, &'static [u8]>,
    undo: Table<'txn, u64, &'static [u8]>,
}

impl<'txn> RedbStore<'txn> {
    /// Opens (creating if needed) the state tree's tables in `txn`.
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            branches: txn.open_table(BRANCHES).map_err(db)?,
            leaves: txn.open_table(LEAVES).map_err(db)?,
            meta: txn.open_table(META).map_err(db)?,
            undo: txn.open_table(UNDO).map_err(db)?,
        })
    }
}

impl NodeReader for RedbStore<'_> {
    fn branch(&self, key: &NodeKey) -> Result<Option<Branch>, StoreError> {
        read(&self.branches, key.to_bytes())
    }
    fn leaf(&self, key: &Hash) -> Result<Option<Account>, StoreError> {
        read(&self.leaves, key.0)
    }
    fn meta(&self) -> Result<Option<Meta>, StoreError> {
        read(&self.meta, META_KEY)
    }
    fn undo(&self, height: Height) -> Result<Option<UndoLog>, StoreError> {
        read(&self.undo, height)
    }
}

impl NodeStore for RedbStore<'_> {
    fn put_branch(&mut self, key: NodeKey, branch: Option<Branch>) -> Result<(), StoreError> {
        let key = key.to_bytes();
        match branch {
            Some(b) => self.branches.insert(key, encode(&b).as_slice()).map(drop),
            None => self.branches.remove(key).map(drop),
        }
        .map_err(db)
    }

    fn put_leaf(
        &mut self,
        key: Hash,
        account: Option<Account>,
    ) -> Result<Option<Account>, StoreError> {
        let old = match account {
            Some(a) => self.leaves.insert(key.0, encode(&a).as_slice()),
            None => self.leaves.remove(key.0),
        }
        .map_err(db)?;
        Ok(match old {
            Some(guard) => Some(decode::<Account>(guard.value())?),
            None => None,
        })
    }

    fn put_meta(&mut self, meta: &Meta) -> Result<(), StoreError> {
        self.meta
            .insert(META_KEY, encode(meta).as_slice())
            .map_err(db)?;
        Ok(())
    }

    fn put_undo(&mut self, height: Height, log: Option<UndoLog>) -> Result<(), StoreError> {
        match log {
            Some(log) => self.undo.insert(height, encode(&log).as_slice()).map(drop),
            None => self.undo.remove(height).map(drop),
        }
        .map_err(db)
    }

    fn remove_undo_through(&mut self, height: Height) -> Result<(), StoreError> {
        self.undo.retain_in(..=height, |_, _| false).map_err(db)
    }
}

/// The state tree's tables in a read transaction. Before the first write transaction created
/// them, it reads as an empty tree.
pub struct RedbReader {
    tables: Option<ReadTables>,
}

struct ReadTables {
    branches: ReadOnlyTable<[u8; 33], &'static [u8]>,
    leaves: ReadOnlyTable<[u8; 32], &'static [u8]>,
    meta: ReadOnlyTable<u8, &'static [u8]>,
    undo: ReadOnlyTable<u64, &'static [u8]>,
}

impl RedbReader {
    /// Opens the state tree's tables in `txn`.
    pub fn open(txn: &ReadTransaction) -> Result<Self, StoreError> {
        let open = || -> Result<ReadTables, TableError> {
            Ok(ReadTables {
                branches: txn.open_table(BRANCHES)?,
                leaves: txn.open_table(LEAVES)?,
                meta: txn.open_table(META)?,
                undo: txn.open_table(UNDO)?,
            })
        };
        match open() {
            Ok(tables) => Ok(Self {
                tables: Some(tables),
            }),
            Err(TableError::TableDoesNotExist(_)) => Ok(Self { tables: None }),
            Err(e) => Err(db(e)),
        }
    }
}

impl NodeReader for RedbReader {
    fn branch(&self, key: &NodeKey) -> Result<Option<Branch>, StoreError> {
        match &self.tables {
            Some(t) => read(&t.branches, key.to_bytes()),
            None => Ok(None),
        }
    }
    fn leaf(&self, key: &Hash) -> Result<Option<Account>, StoreError> {
        match &self.tables {
            Some(t) => read(&t.leaves, key.0),
            None => Ok(None),
        }
    }
    fn meta(&self) -> Result<Option<Meta>, StoreError> {
        match &self.tables {
            Some(t) => read(&t.meta, META_KEY),
            None => Ok(None),
        }
    }
    fn undo(&self, height: Height) -> Result<Option<UndoLog>, StoreError> {
        match &self.tables {
            Some(t) => read(&t.undo, height),
            None => Ok(None),
        }
    }
}
