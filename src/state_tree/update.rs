//! Batch updates, rollback and pruning.

use super::node::{Branch, Child, MAX_UNDO_ENTRIES, Meta, NodeKey, UndoEntry, UndoLog};
use super::store::{NodeReader, NodeStore};
use super::{StateTree, TreeError, bit, common_prefix, key_of, leaf_hash, prefix, value_hash};
use crate::Height;
use crate::account::Account;
use crate::crypto::Address;
use crate::encoding::BoundedVec;
use crate::hash::Hash;

/// One changed key: its new leaf hash, or `None` when the account goes away.
#[derive(Debug, Clone, Copy)]
struct Change {
    key: Hash,
    leaf: Option<Hash>,
}

/// Rewrites the subtrees a batch touches, writing branches as it goes.
///
/// Every position is read (if it held a branch) before it is written, and written at most once
/// per batch: a branch keeps its position for life, and new branches only appear where the old
/// tree had none. So writing in place is safe, and the old value recorded for the undo log is
/// the one read.
struct Updater<'a, S: ?Sized> {
    store: &'a mut S,
    /// Earlier values of the branches written, when the block is undo-logged.
    undo: Option<Vec<UndoEntry>>,
}

impl<S: NodeStore + ?Sized> Updater<'_, S> {
    /// The new content of a slot at `depth` that held `slot`, after `changes` (sorted by key,
    /// distinct, all sharing the slot's first `depth` bits).
    fn update(
        &mut self,
        slot: Option<Child>,
        depth: usize,
        changes: &[Change],
    ) -> Result<Option<Child>, TreeError> {
        let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
            return Ok(slot);
        };
        match slot {
            None => self.build_from_changes(depth, changes),
            Some(Child::Leaf { key, hash }) => {
                // Merge the lone account with the changes; a change to it replaces it.
                let mut items = Vec::with_capacity(changes.len() + 1);
                let mut placed = false;
                for change in changes {
                    if !placed && key <= change.key {
                        placed = true;
                        if key < change.key {
                            items.push((key, hash));
                        }
                    }
                    if let Some(leaf) = change.leaf {
                        items.push((change.key, leaf));
                    }
                }
                if !placed {
                    items.push((key, hash));
                }
                self.build(depth, &items)
            }
            Some(
                child @ Child::Branch {
                    depth: split,
                    prefix: path,
                    ..
                },
            ) => {
                let split = usize::from(split);
                let shared = common_prefix(&path, &first.key)
                    .min(common_prefix(&path, &last.key))
                    .min(split);
                if shared == split {
                    return self.update_branch(child, split, path, changes);
                }
                // Some changes leave the compressed edge above the branch at bit `shared`: a
                // new branch splits there.
                let at = changes.partition_point(|c| !bit(&c.key, shared));
                let (zeros, ones) = changes.split_at(at);
                let side = bit(&path, shared);
                let (same, other) = if side { (ones, zeros) } else { (zeros, ones) };
                let same = self.update(Some(child), shared + 1, same)?;
                let other = self.build_from_changes(shared + 1, other)?;
                match (same, other) {
                    (Some(s), Some(o)) => {
                        let (left, right) = if side { (o, s) } else { (s, o) };
                        self.put(shared, prefix(&path, shared), None, left, right)
                            .map(Some)
                    }
                    (one, other) => Ok(one.or(other)),
                }
            }
        }
    }

    /// Applies `changes`, which all lie under the branch `child` at `split`, to its children.
    fn update_branch(
        &mut self,
        child: Child,
        split: usize,
        path: Hash,
        changes: &[Change],
    ) -> Result<Option<Child>, TreeError> {
        let key = NodeKey {
            depth: split as u8,
            prefix: path,
        };
        let node = self.store.branch(&key)?.ok_or_else(|| {
            TreeError::Inconsistent(format!(
                "branch at depth {split} prefix {path} is referenced but missing"
            ))
        })?;
        let at = changes.partition_point(|c| !bit(&c.key, split));
        let left = self.update(Some(node.left), split + 1, &changes[..at])?;
        let right = self.update(Some(node.right), split + 1, &changes[at..])?;
        match (left, right) {
            (Some(l), Some(r)) if l == node.left && r == node.right => Ok(Some(child)),
            (Some(l), Some(r)) => self.put(split, path, Some(node), l, r).map(Some),
            (one, other) => {
                // One side emptied: the branch goes, the other side moves up the edge.
                self.write(key, Some(node), None)?;
                Ok(one.or(other))
            }
        }
    }

    /// A subtree at `depth` holding the accounts that `changes` insert.
    fn build_from_changes(
        &mut self,
        depth: usize,
        changes: &[Change],
    ) -> Result<Option<Child>, TreeError> {
        let items: Vec<(Hash, Hash)> = changes
            .iter()
            .filter_map(|c| c.leaf.map(|leaf| (c.key, leaf)))
            .collect();
        self.build(depth, &items)
    }

    /// A subtree at `depth` holding `items` (key, leaf hash), sorted by distinct keys.
    fn build(&mut self, depth: usize, items: &[(Hash, Hash)]) -> Result<Option<Child>, TreeError> {
        match items {
            [] => Ok(None),
            [(key, hash)] => Ok(Some(Child::Leaf {
                key: *key,
                hash: *hash,
            })),
            [(first, _), .., (last, _)] => {
                // Distinct keys differ somewhere, so the split is below 256.
                let split = common_prefix(first, last).max(depth);
                debug_assert!(split < 256, "build needs distinct keys");
                let at = items.partition_point(|(k, _)| !bit(k, split));
                let left = self.build(split + 1, &items[..at])?;
                let right = self.build(split + 1, &items[at..])?;
                match (left, right) {
                    (Some(l), Some(r)) => {
                        self.put(split, prefix(first, split), None, l, r).map(Some)
                    }
                    (one, other) => Ok(one.or(other)),
                }
            }
        }
    }

    /// Writes the branch at `split` over `left` and `right` (replacing `old`) and returns it as
    /// a child.
    fn put(
        &mut self,
        split: usize,
        path: Hash,
        old: Option<Branch>,
        left: Child,
        right: Child,
    ) -> Result<Child, TreeError> {
        let branch = Branch { left, right };
        let hash = branch.hash(split);
        // Splits happen where two distinct keys differ: always below 256.
        let depth = split as u8;
        let key = NodeKey {
            depth,
            prefix: path,
        };
        self.write(key, old, Some(branch))?;
        Ok(Child::Branch {
            depth,
            prefix: path,
            hash,
        })
    }

    /// Writes a branch and logs the value it replaces.
    fn write(
        &mut self,
        key: NodeKey,
        old: Option<Branch>,
        new: Option<Branch>,
    ) -> Result<(), TreeError> {
        self.store.put_branch(key, new)?;
        if let Some(undo) = &mut self.undo {
            undo.push(UndoEntry::branch(key, old));
        }
        Ok(())
    }
}

impl<S: NodeStore> StateTree<S> {
    /// Applies the block at `height`: every `(address, account)` pair sets that account's new
    /// state ([`Account::default`] removes it). Returns the new state root.
    ///
    /// The first block applied to an empty store may have any height and is not undo-logged
    /// (it is the genesis state); later blocks must follow at consecutive heights.
    pub fn apply(
        &mut self,
        height: Height,
        changes: impl IntoIterator<Item = (Address, Account)>,
    ) -> Result<Hash, TreeError> {
        let keyed = changes
            .into_iter()
            .map(|(address, account)| (key_of(&address), account))
            .collect();
        self.apply_keyed(height, keyed)
    }

    /// [`apply`](Self::apply) with state keys instead of addresses. When a key appears more
    /// than once, the last entry wins.
    pub fn apply_keyed(
        &mut self,
        height: Height,
        mut changes: Vec<(Hash, Account)>,
    ) -> Result<Hash, TreeError> {
        let before = self.store.meta()?;
        if let Some(meta) = &before
            && meta.height.checked_add(1) != Some(height)
        {
            return Err(TreeError::HeightNotNext {
                current: meta.height,
                got: height,
            });
        }
        // Stable sort, then keep the last entry of each run of equal keys.
        changes.sort_by_key(|c| c.0);
        let mut deduped: Vec<(Hash, Account)> = Vec::with_capacity(changes.len());
        for (key, account) in changes {
            match deduped.last_mut() {
                Some(last) if last.0 == key => last.1 = account,
                _ => deduped.push((key, account)),
            }
        }
        let batch: Vec<Change> = deduped
            .iter()
            .map(|(key, account)| Change {
                key: *key,
                leaf: (!account.is_empty()).then(|| leaf_hash(key, &value_hash(account))),
            })
            .collect();

        let logging = before.is_some();
        let mut updater = Updater {
            store: &mut self.store,
            // About a dozen branch writes per change on large trees.
            undo: logging.then(|| Vec::with_capacity(batch.len() * 16 + 16)),
        };
        let root = updater.update(before.and_then(|m| m.root), 0, &batch)?;
        let mut undo = updater.undo.unwrap_or_default();
        for (key, account) in deduped {
            let new = (!account.is_empty()).then_some(account);
            let old = self.store.put_leaf(key, new.clone())?;
            if logging && old != new {
                undo.push(UndoEntry::Leaf { key, old });
            }
        }
        let meta = Meta {
            root,
            height,
            floor: before.map_or(height, |m| m.floor),
        };
        if let Some(before) = before {
            let entries = undo.len();
            let entries = BoundedVec::try_from_vec(undo).map_err(|_| TreeError::UndoTooLarge {
                entries,
                max: MAX_UNDO_ENTRIES,
            })?;
            self.store.put_undo(
                height,
                Some(UndoLog {
                    meta: before,
                    entries,
                }),
            )?;
        }
        self.store.put_meta(&meta)?;
        Ok(meta.root_hash())
    }

    /// Undoes every block above `target`, restoring the exact tree (and root) the tree had at
    /// `target`. Returns that root.
    pub fn rollback(&mut self, target: Height) -> Result<Hash, TreeError> {
        let meta = self.store.meta()?.ok_or(TreeError::NoState)?;
        if target > meta.height || target < meta.floor {
            return Err(TreeError::RollbackOutOfRange {
                target,
                floor: meta.floor,
                height: meta.height,
            });
        }
        let mut current = meta;
        for height in (target + 1..=meta.height).rev() {
            let log = self.store.undo(height)?.ok_or_else(|| {
                TreeError::Inconsistent(format!("undo log of height {height} is missing"))
            })?;
            for entry in log.entries.into_inner().into_iter().rev() {
                match entry {
                    UndoEntry::Branch { depth, prefix, old } => {
                        self.store.put_branch(NodeKey { depth, prefix }, old)?;
                    }
                    UndoEntry::Leaf { key, old } => {
                        self.store.put_leaf(key, old)?;
                    }
                }
            }
            self.store.put_undo(height, None)?;
            current = Meta {
                floor: log.meta.floor.max(meta.floor),
                ..log.meta
            };
        }
        self.store.put_meta(&current)?;
        Ok(current.root_hash())
    }

    /// Forgets how to roll back below `below`: drops the undo logs that only such a rollback
    /// would need. The chain calls it with `tip_height - max_reorg_depth`.
    pub fn prune(&mut self, below: Height) -> Result<(), TreeError> {
        let meta = self.store.meta()?.ok_or(TreeError::NoState)?;
        let floor = below.min(meta.height);
        if floor <= meta.floor {
            return Ok(());
        }
        self.store.remove_undo_through(floor)?;
        self.store.put_meta(&Meta { floor, ..meta })?;
        Ok(())
    }
}
