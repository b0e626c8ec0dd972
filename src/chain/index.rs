//! The block index in memory: every stored block's header facts, the tree of branches, and fork
//! choice.

use std::collections::HashMap;

use super::rules::{MEDIAN_TIME_SPAN, median_timestamp};
use super::store::{BlockRecord, BlockStatus};
use crate::difficulty::{AsertParams, next_target};
use crate::genesis::GenesisConfig;
use crate::hash::Hash;
use crate::target::{Target, Work};
use crate::{Epoch, Height, TimestampMs};

/// What the chain keeps in memory about a stored block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Height.
    pub height: Height,
    /// Parent hash.
    pub parent: Hash,
    /// Header timestamp.
    pub timestamp_ms: TimestampMs,
    /// Header epoch.
    pub epoch: Epoch,
    /// The target the block met.
    pub target: Target,
    /// The proof's score.
    pub score: Hash,
    /// The block's beacon.
    pub beacon: Hash,
    /// Timestamp of block 1 of this branch (the difficulty anchor).
    pub anchor_ms: TimestampMs,
    /// Cumulative work of the chain ending here.
    pub work: Work,
    /// Validation status.
    pub status: BlockStatus,
}

impl IndexEntry {
    /// The entry of a stored record.
    pub fn from_record(record: &BlockRecord) -> Self {
        let h = &record.header;
        Self {
            height: h.height,
            parent: h.parent,
            timestamp_ms: h.timestamp_ms,
            epoch: h.epoch,
            target: h.target,
            score: h.score,
            beacon: record.beacon,
            anchor_ms: record.anchor_ms,
            work: record.work,
            status: record.status,
        }
    }
}

impl IndexEntry {
    /// The entry of a child with `header` (beacon, difficulty anchor and cumulative work follow
    /// from this block's), status [`BlockStatus::Stored`].
    pub fn child(&self, header: &crate::block::UnsignedHeader, parent: Hash) -> Self {
        Self {
            height: header.height,
            parent,
            timestamp_ms: header.timestamp_ms,
            epoch: header.epoch,
            target: header.target,
            score: header.score,
            beacon: super::rules::beacon(&self.beacon, &header.score),
            anchor_ms: if header.height == 1 {
                header.timestamp_ms
            } else {
                self.anchor_ms
            },
            work: self.work.saturating_add(&header.target.work()),
            status: BlockStatus::Stored,
        }
    }

    /// The challenge a child of this block must answer in `epoch`.
    pub fn child_challenge(&self, epoch: Epoch) -> Hash {
        super::rules::challenge(&self.beacon, epoch)
    }

    /// The difficulty target of a child of this block (ASERT from this block's timestamp and
    /// its branch's anchor).
    pub fn child_target(&self, config: &GenesisConfig) -> Target {
        next_target(
            &AsertParams::from_genesis(config),
            self.anchor_ms,
            self.height,
            self.timestamp_ms,
        )
    }
}

/// True when the chain ending at `a` beats the chain ending at `b`: more cumulative work; on
/// equal work the lower tip score, then the lower tip hash.
pub fn better(a: (&Hash, &IndexEntry), b: (&Hash, &IndexEntry)) -> bool {
    (core::cmp::Reverse(a.1.work), a.1.score, a.0) < (core::cmp::Reverse(b.1.work), b.1.score, b.0)
}

/// All stored blocks by hash, with child links.
#[derive(Debug, Default)]
pub struct BlockIndex {
    entries: HashMap<Hash, IndexEntry>,
    children: HashMap<Hash, Vec<Hash>>,
    /// Entries of status [`BlockStatus::HeaderOnly`], kept as entries change.
    header_only: usize,
}

impl BlockIndex {
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `hash`.
    pub fn get(&self, hash: &Hash) -> Option<&IndexEntry> {
        self.entries.get(hash)
    }

    /// Adds a block (replacing an entry of the same hash).
    pub fn insert(&mut self, hash: Hash, entry: IndexEntry) {
        let parent = entry.parent;
        let adds = entry.status == BlockStatus::HeaderOnly;
        match self.entries.insert(hash, entry) {
            Some(old) => {
                if old.status == BlockStatus::HeaderOnly {
                    self.header_only -= 1;
                }
            }
            None => self.children.entry(parent).or_default().push(hash),
        }
        if adds {
            self.header_only += 1;
        }
    }

    /// Sets the status of a block.
    pub fn set_status(&mut self, hash: &Hash, status: BlockStatus) {
        if let Some(e) = self.entries.get_mut(hash) {
            if e.status == BlockStatus::HeaderOnly {
                self.header_only -= 1;
            }
            if status == BlockStatus::HeaderOnly {
                self.header_only += 1;
            }
            e.status = status;
        }
    }

    /// Entries whose body is not stored yet (status [`BlockStatus::HeaderOnly`]).
    pub fn header_only_count(&self) -> usize {
        self.header_only
    }

    /// The blocks whose parent is `hash`.
    pub fn children(&self, hash: &Hash) -> &[Hash] {
        self.children.get(hash).map_or(&[], Vec::as_slice)
    }

    /// `hash` and every block descending from it.
    pub fn subtree(&self, hash: &Hash) -> Vec<Hash> {
        let mut out = vec![*hash];
        let mut i = 0;
        while let Some(h) = out.get(i).copied() {
            out.extend_from_slice(self.children(&h));
            i += 1;
        }
        out
    }

    /// The median timestamp of `tip` and its ancestors, up to [`MEDIAN_TIME_SPAN`] blocks.
    pub fn median_time_past(&self, tip: &Hash) -> Option<TimestampMs> {
        let mut ts = [0u64; MEDIAN_TIME_SPAN];
        let mut n = 0;
        let mut cursor = self.entries.get(tip);
        while let Some(e) = cursor {
            if n == MEDIAN_TIME_SPAN {
                break;
            }
            ts[n] = e.timestamp_ms;
            n += 1;
            if e.height == 0 {
                break;
            }
            cursor = self.entries.get(&e.parent);
        }
        median_timestamp(&ts[..n])
    }

    /// The ancestor of `hash` at `height` (itself at its own height).
    pub fn ancestor(&self, hash: &Hash, height: Height) -> Option<Hash> {
        let mut h = *hash;
        let mut e = self.entries.get(&h)?;
        while e.height > height {
            h = e.parent;
            e = self.entries.get(&h)?;
        }
        (e.height == height).then_some(h)
    }

    /// The last common ancestor of `a` and `b`.
    pub fn fork_point(&self, a: &Hash, b: &Hash) -> Option<Hash> {
        let ea = self.entries.get(a)?;
        let eb = self.entries.get(b)?;
        let low = ea.height.min(eb.height);
        let mut x = self.ancestor(a, low)?;
        let mut y = self.ancestor(b, low)?;
        while x != y {
            x = self.entries.get(&x)?.parent;
            y = self.entries.get(&y)?.parent;
        }
        Some(x)
    }

    /// The blocks from just above `ancestor` up to `tip`, in ascending height. `None` when
    /// `ancestor` is not an ancestor of `tip`.
    pub fn path(&self, ancestor: &Hash, tip: &Hash) -> Option<Vec<Hash>> {
        let low = self.entries.get(ancestor)?.height;
        let mut out = Vec::new();
        let mut h = *tip;
        loop {
            let e = self.entries.get(&h)?;
            if e.height == low {
                break;
            }
            out.push(h);
            h = e.parent;
        }
        if h != *ancestor {
            return None;
        }
        out.reverse();
        Some(out)
    }

    /// The best block that is not invalid, by [`better`].
    pub fn best_valid(&self) -> Option<Hash> {
        self.entries
            .iter()
            .filter(|(_, e)| e.status != BlockStatus::Invalid)
            .reduce(|a, b| if better(b, a) { b } else { a })
            .map(|(h, _)| *h)
    }

    /// Iterates over all entries.
    pub fn iter(&self) -> impl Iterator<Item = (&Hash, &IndexEntry)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(height: Height, parent: Hash, work: u8, score: u8) -> IndexEntry {
        let mut w = [0u8; 32];
        w[31] = work;
        IndexEntry {
            height,
            parent,
            timestamp_ms: 1_000 + height * 10,
            epoch: height,
            target: Target::MAX,
            score: Hash([score; 32]),
            beacon: Hash::ZERO,
            anchor_ms: 0,
            work: Work(w),
            status: BlockStatus::Valid,
        }
    }

    fn h(n: u8) -> Hash {
        Hash([n; 32])
    }

    #[test]
    fn fork_point_path_and_subtree() {
        // 0 - 1 - 2 - 3
        //      \- 4 - 5
        let mut idx = BlockIndex::default();
        idx.insert(h(0), entry(0, Hash::ZERO, 0, 0));
        idx.insert(h(1), entry(1, h(0), 1, 0));
        idx.insert(h(2), entry(2, h(1), 2, 0));
        idx.insert(h(3), entry(3, h(2), 3, 0));
        idx.insert(h(4), entry(2, h(1), 2, 0));
        idx.insert(h(5), entry(3, h(4), 3, 0));
        assert_eq!(idx.fork_point(&h(3), &h(5)), Some(h(1)));
        assert_eq!(idx.fork_point(&h(3), &h(2)), Some(h(2)));
        assert_eq!(idx.path(&h(1), &h(5)), Some(vec![h(4), h(5)]));
        assert_eq!(idx.path(&h(2), &h(5)), None);
        let mut sub = idx.subtree(&h(1));
        sub.sort();
        assert_eq!(sub, vec![h(1), h(2), h(3), h(4), h(5)]);
        assert_eq!(idx.ancestor(&h(5), 1), Some(h(1)));
        assert_eq!(idx.ancestor(&h(5), 4), None);
    }

    #[test]
    fn fork_choice_prefers_work_then_score_then_hash() {
        let a = entry(5, Hash::ZERO, 10, 9);
        let b = entry(5, Hash::ZERO, 11, 9);
        assert!(better((&h(1), &b), (&h(2), &a)));
        let c = entry(5, Hash::ZERO, 10, 3);
        assert!(better((&h(3), &c), (&h(1), &a)));
        assert!(better((&h(1), &a), (&h(2), &a)));
        assert!(!better((&h(2), &a), (&h(1), &a)));
        assert!(!better((&h(1), &a), (&h(1), &a)));
    }

    #[test]
    fn median_time_walks_eleven_ancestors() {
        let mut idx = BlockIndex::default();
        let mut parent = Hash::ZERO;
        for i in 0..20u8 {
            idx.insert(h(i), entry(u64::from(i), parent, i, 0));
            parent = h(i);
        }
        // Blocks 9..=19 have timestamps 1090..=1190: median 1140.
        assert_eq!(idx.median_time_past(&h(19)), Some(1_140));
        assert_eq!(idx.median_time_past(&h(0)), Some(1_000));
        assert_eq!(idx.median_time_past(&h(2)), Some(1_010));
    }
}
