//! Blocks whose parent is not known yet, waiting in a bounded pool.

use std::collections::{HashMap, VecDeque};

use crate::Block;
use crate::hash::Hash;

/// Most blocks the pool holds.
pub const MAX_ORPHANS: usize = 256;
/// Most bytes (of block encodings) the pool holds.
pub const MAX_ORPHAN_BYTES: usize = 32 * 1024 * 1024;

/// A bounded pool of orphan blocks: the oldest leave first when it is full.
#[derive(Debug)]
pub struct OrphanPool {
    blocks: HashMap<Hash, (Block, usize)>,
    by_parent: HashMap<Hash, Vec<Hash>>,
    order: VecDeque<Hash>,
    bytes: usize,
    max_blocks: usize,
    max_bytes: usize,
}

impl Default for OrphanPool {
    fn default() -> Self {
        Self::new(MAX_ORPHANS, MAX_ORPHAN_BYTES)
    }
}

impl OrphanPool {
    /// An empty pool with the given bounds.
    pub fn new(max_blocks: usize, max_bytes: usize) -> Self {
        Self {
            blocks: HashMap::new(),
            by_parent: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_blocks,
            max_bytes,
        }
    }

    /// Number of orphans held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True when no orphan is held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when `hash` waits in the pool.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Adds an orphan of `size` encoded bytes, evicting the oldest as needed; returns how many
    /// were evicted. A block larger than the whole pool is not kept.
    pub fn insert(&mut self, hash: Hash, block: Block, size: usize) -> usize {
        if self.blocks.contains_key(&hash) || size > self.max_bytes || self.max_blocks == 0 {
            return 0;
        }
        let mut evicted = 0;
        while self.blocks.len() >= self.max_blocks || self.bytes + size > self.max_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if self.remove(&old).is_some() {
                evicted += 1;
            }
        }
        self.by_parent
            .entry(block.header.parent)
            .or_default()
            .push(hash);
        self.blocks.insert(hash, (block, size));
        self.order.push_back(hash);
        self.bytes += size;
        evicted
    }

    fn remove(&mut self, hash: &Hash) -> Option<Block> {
        let (block, size) = self.blocks.remove(hash)?;
        self.bytes -= size;
        if let Some(siblings) = self.by_parent.get_mut(&block.header.parent) {
            siblings.retain(|h| h != hash);
            if siblings.is_empty() {
                self.by_parent.remove(&block.header.parent);
            }
        }
        Some(block)
    }

    /// Removes and returns the orphans whose parent is `parent`.
    pub fn take_children(&mut self, parent: &Hash) -> Vec<(Hash, Block)> {
        let Some(hashes) = self.by_parent.remove(parent) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(hashes.len());
        for hash in hashes {
            if let Some((block, size)) = self.blocks.remove(&hash) {
                self.bytes -= size;
                self.order.retain(|h| *h != hash);
                out.push((hash, block));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;
    use crate::block::tests::block;

    fn orphan(parent: u8) -> (Hash, Block) {
        let mut b = block(&Keypair::generate(), 0);
        b.header.unsigned.parent = Hash([parent; 32]);
        (b.hash(), b)
    }

    #[test]
    fn bounded_by_count_and_bytes_oldest_first() {
        let mut pool = OrphanPool::new(3, 1_000);
        let blocks: Vec<_> = (0..4).map(orphan).collect();
        for (h, b) in &blocks[..3] {
            assert_eq!(pool.insert(*h, b.clone(), 100), 0);
        }
        assert_eq!(pool.insert(blocks[3].0, blocks[3].1.clone(), 100), 1);
        assert!(!pool.contains(&blocks[0].0));
        assert_eq!(pool.len(), 3);
        // Bytes: a 950-byte block pushes out everything older until it fits.
        let (h, b) = orphan(9);
        assert_eq!(pool.insert(h, b, 950), 3);
        assert_eq!(pool.bytes(), 950);
        let (h, b) = orphan(10);
        assert_eq!(pool.insert(h, b, 5_000), 0);
        assert!(!pool.contains(&h));
    }

    #[test]
    fn children_are_taken_once() {
        let mut pool = OrphanPool::default();
        let (a, ba) = orphan(1);
        let (b, bb) = orphan(1);
        let (c, bc) = orphan(2);
        pool.insert(a, ba, 10);
        pool.insert(b, bb, 10);
        pool.insert(c, bc, 10);
        let kids = pool.take_children(&Hash([1; 32]));
        assert_eq!(kids.len(), 2);
        assert!(pool.take_children(&Hash([1; 32])).is_empty());
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.bytes(), 10);
    }
}
