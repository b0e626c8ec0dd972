//! A peer's relay queue: three priority classes, bounded in count, drops counted by the caller.
//!
//! Blocks and challenges go first, proofs and acceptances next, transactions last. When the
//! queue is full, a new item displaces the oldest item of a lower class; if none is lower, the
//! new item is the one dropped, so a transaction flood can never push out a block.

use std::collections::{BTreeMap, VecDeque};

use super::{Class, ItemId};

/// How an item goes to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The item itself.
    Push,
    /// Its id only; the peer fetches it if it wants it.
    Announce,
}

/// One queued item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// The item.
    pub id: ItemId,
    /// Push or announce.
    pub delivery: Delivery,
    /// Bytes it costs on the wire (for pacing).
    pub bytes: u32,
}

/// A peer's queue; see the module docs.
#[derive(Debug, Clone)]
pub struct PeerQueue {
    capacity: usize,
    classes: [VecDeque<Queued>; 3],
    /// How many times each id is queued, so `contains` and `remove` of an absent id are cheap.
    ids: BTreeMap<ItemId, usize>,
}

impl PeerQueue {
    /// An empty queue of at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            classes: Default::default(),
            ids: BTreeMap::new(),
        }
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.classes.iter().map(VecDeque::len).sum()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.classes.iter().all(VecDeque::is_empty)
    }

    /// Queues `item`; returns the item dropped to stay within the bound, if any.
    pub fn push(&mut self, item: Queued) -> Option<Queued> {
        let class = item.id.kind.class() as usize;
        let mut dropped = None;
        if self.len() >= self.capacity {
            // The lowest class below the new item's loses its oldest entry.
            let victim = (class + 1..3).rev().find(|c| !self.classes[*c].is_empty());
            match victim {
                Some(c) => dropped = self.classes[c].pop_front(),
                None => return Some(item),
            }
        }
        if let Some(d) = &dropped {
            self.forget(&d.id);
        }
        *self.ids.entry(item.id).or_insert(0) += 1;
        self.classes[class].push_back(item);
        dropped
    }

    fn forget(&mut self, id: &ItemId) {
        if let Some(n) = self.ids.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                self.ids.remove(id);
            }
        }
    }

    /// The next item to send, highest class first, without taking it.
    pub fn peek(&self) -> Option<&Queued> {
        self.classes.iter().find_map(VecDeque::front)
    }

    /// Takes the next item, highest class first.
    pub fn pop(&mut self) -> Option<Queued> {
        let item = self.classes.iter_mut().find_map(VecDeque::pop_front)?;
        self.forget(&item.id);
        Some(item)
    }

    /// Takes the oldest item of `class`.
    pub fn pop_class(&mut self, class: Class) -> Option<Queued> {
        let item = self.classes[class as usize].pop_front()?;
        self.forget(&item.id);
        Some(item)
    }

    /// Whether `id` is queued.
    pub fn contains(&self, id: &ItemId) -> bool {
        self.ids.contains_key(id)
    }

    /// The bytes of the first `n` items of `class` (all of them if fewer).
    pub fn front_bytes(&self, class: Class, n: usize) -> u64 {
        self.classes[class as usize]
            .iter()
            .take(n)
            .map(|q| u64::from(q.bytes))
            .sum()
    }

    /// Items queued in `class`.
    pub fn class_len(&self, class: Class) -> usize {
        self.classes[class as usize].len()
    }

    /// Drops everything queued for `id`.
    pub fn remove(&mut self, id: &ItemId) {
        if self.ids.remove(id).is_none() {
            return;
        }
        for c in &mut self.classes {
            c.retain(|q| q.id != *id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;
    use crate::relay::ItemKind;

    fn q(kind: ItemKind, n: u8) -> Queued {
        Queued {
            id: ItemId::new(kind, Hash([n; 32])),
            delivery: Delivery::Push,
            bytes: 100,
        }
    }

    #[test]
    fn higher_classes_go_first_in_arrival_order() {
        let mut queue = PeerQueue::new(10);
        queue.push(q(ItemKind::Tx, 1));
        queue.push(q(ItemKind::Proof, 2));
        queue.push(q(ItemKind::Block, 3));
        queue.push(q(ItemKind::Challenge, 4));
        queue.push(q(ItemKind::Tx, 5));
        let order: Vec<u8> = std::iter::from_fn(|| queue.pop())
            .map(|i| i.id.hash.0[0])
            .collect();
        assert_eq!(order, [3, 4, 2, 1, 5]);
    }

    #[test]
    fn a_full_queue_drops_low_classes_never_blocks() {
        let mut queue = PeerQueue::new(3);
        for n in 0..3 {
            assert_eq!(queue.push(q(ItemKind::Tx, n)), None);
        }
        // A fourth transaction is dropped itself; a block displaces the oldest transaction.
        assert_eq!(
            queue.push(q(ItemKind::Tx, 9)).map(|d| d.id.hash.0[0]),
            Some(9)
        );
        assert_eq!(
            queue.push(q(ItemKind::Block, 7)).map(|d| d.id.hash.0[0]),
            Some(0)
        );
        assert_eq!(
            queue.push(q(ItemKind::Proof, 8)).map(|d| d.id.hash.0[0]),
            Some(1)
        );
        assert_eq!(queue.class_len(Class::High), 1);
        assert_eq!(queue.len(), 3);
        // Blocks fill the queue; then a block is refused rather than another block evicted.
        queue.push(q(ItemKind::Block, 10));
        queue.push(q(ItemKind::Block, 11));
        assert_eq!(
            queue.push(q(ItemKind::Block, 12)).map(|d| d.id.hash.0[0]),
            Some(12)
        );
        assert_eq!(queue.peek().map(|i| i.id.hash.0[0]), Some(7));
        queue.remove(&ItemId::new(ItemKind::Block, Hash([7; 32])));
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn membership_follows_pushes_pops_drops_and_removals() {
        let id = |kind, n| ItemId::new(kind, Hash([n; 32]));
        let mut queue = PeerQueue::new(3);
        queue.push(q(ItemKind::Tx, 1));
        queue.push(q(ItemKind::Tx, 2));
        queue.push(q(ItemKind::Proof, 3));
        assert!(queue.contains(&id(ItemKind::Tx, 1)));
        assert_eq!(queue.front_bytes(Class::Low, 1), 100);
        assert_eq!(queue.front_bytes(Class::Low, 10), 200);
        // A block displaces tx 1; a refused block is not a member.
        queue.push(q(ItemKind::Block, 4));
        assert!(!queue.contains(&id(ItemKind::Tx, 1)));
        assert_eq!(
            queue.push(q(ItemKind::Block, 5)).map(|d| d.id.hash.0[0]),
            Some(2)
        );
        assert_eq!(
            queue.push(q(ItemKind::Block, 6)).map(|d| d.id.hash.0[0]),
            Some(3)
        );
        assert_eq!(
            queue.push(q(ItemKind::Block, 7)).map(|d| d.id.hash.0[0]),
            Some(7)
        );
        assert!(!queue.contains(&id(ItemKind::Block, 7)));
        assert_eq!(queue.pop().map(|i| i.id.hash.0[0]), Some(4));
        assert!(!queue.contains(&id(ItemKind::Block, 4)));
        queue.remove(&id(ItemKind::Block, 5));
        queue.remove(&id(ItemKind::Block, 9));
        assert!(!queue.contains(&id(ItemKind::Block, 5)));
        assert!(queue.contains(&id(ItemKind::Block, 6)));
        assert_eq!(queue.len(), 1);
    }
}
