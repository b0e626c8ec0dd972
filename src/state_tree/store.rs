//! Node storage: the traits the tree runs on and an in-memory implementation.

use std::collections::{BTreeMap, HashMap};

use super::node::{Branch, Meta, NodeKey, UndoLog};
use crate::Height;
use crate::account::Account;
use crate::encoding::DecodeError;
use crate::hash::Hash;

/// Why the node store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("state tree database error: {0}")]
    Database(#[from] redb::Error),
    /// A stored record does not decode: the database is damaged or was written by other
    /// software.
    #[error("state tree database holds a corrupt record: {0}")]
    Corrupt(#[from] DecodeError),
}

/// Read access to the tree's nodes, accounts, metadata and undo logs.
pub trait NodeReader {
    /// The branch node at `key`.
    fn branch(&self, key: &NodeKey) -> Result<Option<Branch>, StoreError>;
    /// The account stored under the state key `key`.
    fn leaf(&self, key: &Hash) -> Result<Option<Account>, StoreError>;
    /// The tree metadata, `None` before the first block is applied.
    fn meta(&self) -> Result<Option<Meta>, StoreError>;
    /// The undo log of the block at `height`.
    fn undo(&self, height: Height) -> Result<Option<UndoLog>, StoreError>;
}

/// Write access on top of [`NodeReader`].
///
/// The tree writes through one of these inside a single database transaction; if an operation
/// returns an error, the store may hold part of it and the transaction must be dropped.
pub trait NodeStore: NodeReader {
    /// Stores (`Some`) or deletes (`None`) the branch at `key`.
    fn put_branch(&mut self, key: NodeKey, branch: Option<Branch>) -> Result<(), StoreError>;
    /// Stores or deletes the account under `key`; returns the earlier value.
    fn put_leaf(
        &mut self,
        key: Hash,
        account: Option<Account>,
    ) -> Result<Option<Account>, StoreError>;
    /// Replaces the metadata.
    fn put_meta(&mut self, meta: &Meta) -> Result<(), StoreError>;
    /// Stores (`Some`) or deletes (`None`) the undo log of the block at `height`.
    fn put_undo(&mut self, height: Height, log: Option<UndoLog>) -> Result<(), StoreError>;
    /// Deletes the undo logs of every height up to and including `height`.
    fn remove_undo_through(&mut self, height: Height) -> Result<(), StoreError>;
}

/// A store in memory, for tests, the simulator and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    branches: HashMap<NodeKey, Branch>,
    leaves: HashMap<Hash, Account>,
    meta: Option<Meta>,
    undo: BTreeMap<Height, UndoLog>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored branch nodes.
    pub fn branch_count(&self) -> usize {
        self.branches.len()
    }

    /// Number of stored accounts.
    pub fn leaf_count(&self) -> usize {
        self.leaves.len()
    }

    /// Number of stored undo logs.
    pub fn undo_count(&self) -> usize {
        self.undo.len()
    }
}

impl NodeReader for MemoryStore {
    fn branch(&self, key: &NodeKey) -> Result<Option<Branch>, StoreError> {
        Ok(self.branches.get(key).copied())
    }

    fn leaf(&self, key: &Hash) -> Result<Option<Account>, StoreError> {
        Ok(self.leaves.get(key).cloned())
    }

    fn meta(&self) -> Result<Option<Meta>, StoreError> {
        Ok(self.meta)
    }

    fn undo(&self, height: Height) -> Result<Option<UndoLog>, StoreError> {
        Ok(self.undo.get(&height).cloned())
    }
}

impl NodeStore for MemoryStore {
    fn put_branch(&mut self, key: NodeKey, branch: Option<Branch>) -> Result<(), StoreError> {
        match branch {
            Some(b) => self.branches.insert(key, b),
            None => self.branches.remove(&key),
        };
        Ok(())
    }

    fn put_leaf(
        &mut self,
        key: Hash,
        account: Option<Account>,
    ) -> Result<Option<Account>, StoreError> {
        Ok(match account {
            Some(a) => self.leaves.insert(key, a),
            None => self.leaves.remove(&key),
        })
    }

    fn put_meta(&mut self, meta: &Meta) -> Result<(), StoreError> {
        self.meta = Some(*meta);
        Ok(())
    }

    fn put_undo(&mut self, height: Height, log: Option<UndoLog>) -> Result<(), StoreError> {
        match log {
            Some(log) => self.undo.insert(height, log),
            None => self.undo.remove(&height),
        };
        Ok(())
    }

    fn remove_undo_through(&mut self, height: Height) -> Result<(), StoreError> {
        self.undo = match height.checked_add(1) {
            Some(next) => self.undo.split_off(&next),
            None => BTreeMap::new(),
        };
        Ok(())
    }
}

impl<S: NodeReader + ?Sized> NodeReader for &S {
    fn branch(&self, key: &NodeKey) -> Result<Option<Branch>, StoreError> {
        (**self).branch(key)
    }
    fn leaf(&self, key: &Hash) -> Result<Option<Account>, StoreError> {
        (**self).leaf(key)
    }
    fn meta(&self) -> Result<Option<Meta>, StoreError> {
        (**self).meta()
    }
    fn undo(&self, height: Height) -> Result<Option<UndoLog>, StoreError> {
        (**self).undo(height)
    }
}

impl<S: NodeReader + ?Sized> NodeReader for &mut S {
    fn branch(&self, key: &NodeKey) -> Result<Option<Branch>, StoreError> {
        (**self).branch(key)
    }
    fn leaf(&self, key: &Hash) -> Result<Option<Account>, StoreError> {
        (**self).leaf(key)
    }
    fn meta(&self) -> Result<Option<Meta>, StoreError> {
        (**self).meta()
    }
    fn undo(&self, height: Height) -> Result<Option<UndoLog>, StoreError> {
        (**self).undo(height)
    }
}

impl<S: NodeStore + ?Sized> NodeStore for &mut S {
    fn put_branch(&mut self, key: NodeKey, branch: Option<Branch>) -> Result<(), StoreError> {
        (**self).put_branch(key, branch)
    }
    fn put_leaf(
        &mut self,
        key: Hash,
        account: Option<Account>,
    ) -> Result<Option<Account>, StoreError> {
        (**self).put_leaf(key, account)
    }
    fn put_meta(&mut self, meta: &Meta) -> Result<(), StoreError> {
        (**self).put_meta(meta)
    }
    fn put_undo(&mut self, height: Height, log: Option<UndoLog>) -> Result<(), StoreError> {
        (**self).put_undo(height, log)
    }
    fn remove_undo_through(&mut self, height: Height) -> Result<(), StoreError> {
        (**self).remove_undo_through(height)
    }
}
