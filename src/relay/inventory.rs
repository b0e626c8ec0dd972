//! Bounded sets of item ids: the node's seen-cache and each peer's known inventory.
//!
//! Both forget their oldest entries first once full, so a flood of new ids costs a bounded
//! amount of memory and evicts only what is old enough to have finished propagating.

use std::collections::{BTreeMap, VecDeque};

use super::ItemId;

/// A set of at most `capacity` ids with a value each, forgetting the oldest insert first.
#[derive(Debug, Clone)]
pub struct BoundedMap<V> {
    capacity: usize,
    entries: BTreeMap<ItemId, V>,
    order: VecDeque<ItemId>,
}

impl<V> BoundedMap<V> {
    /// An empty map holding at most `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Ids held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: &ItemId) -> bool {
        self.entries.contains_key(id)
    }

    /// The value of `id`.
    pub fn get(&self, id: &ItemId) -> Option<&V> {
        self.entries.get(id)
    }

    /// The value of `id`, to change it.
    pub fn get_mut(&mut self, id: &ItemId) -> Option<&mut V> {
        self.entries.get_mut(id)
    }

    /// Inserts or replaces `id`; returns how many old ids were forgotten to make room.
    pub fn insert(&mut self, id: ItemId, value: V) -> usize {
        if let Some(v) = self.entries.get_mut(&id) {
            *v = value;
            return 0;
        }
        let mut evicted = 0;
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    if self.entries.remove(&old).is_some() {
                        evicted += 1;
                    }
                }
                None => break,
            }
        }
        self.entries.insert(id, value);
        self.order.push_back(id);
        evicted
    }

    /// Forgets `id`.
    pub fn remove(&mut self, id: &ItemId) -> Option<V> {
        let v = self.entries.remove(id)?;
        // The order entry goes stale and is skipped when it comes up; compact when mostly stale.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|i| entries.contains_key(i));
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;
    use crate::relay::ItemKind;

    fn id(n: u8) -> ItemId {
        ItemId::new(ItemKind::Tx, Hash([n; 32]))
    }

    #[test]
    fn forgets_the_oldest_first_and_stays_bounded() {
        let mut m = BoundedMap::new(3);
        for n in 0..3 {
            assert_eq!(m.insert(id(n), n), 0);
        }
        assert_eq!(m.insert(id(1), 10), 0, "replacing keeps the size");
        assert_eq!(m.insert(id(3), 3), 1);
        assert!(!m.contains(&id(0)));
        assert_eq!(m.get(&id(1)), Some(&10));
        assert_eq!(m.len(), 3);
        for n in 4..200 {
            m.insert(id(n), n);
        }
        assert_eq!(m.len(), 3);
        assert!(m.contains(&id(199)) && !m.contains(&id(196)));
    }

    #[test]
    fn removal_leaves_room_and_the_order_compacts() {
        let mut m = BoundedMap::new(1000);
        for round in 0..20u8 {
            for n in 0..100u8 {
                let i = ItemId::new(
                    ItemKind::Block,
                    Hash([
                        round, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                        0, 0, 0, 0, 0, 0, 0, 0,
                    ]),
                );
                m.insert(i, ());
                m.remove(&i);
            }
        }
        assert!(m.is_empty());
        assert!(m.order.len() <= 64 + 1);
    }
}
