//! What the Gossip actor holds for the relay: recent blocks (with the height and work to
//! announce them), transfers and the other relayed messages, each bounded, oldest dropped first.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use spacetime::relay::ItemId;
use spacetime::target::Work;
use spacetime::wire::{CompactBlock, Message};
use spacetime::{Block, Hash, Height, Transfer};

/// Recent blocks held for pushes and `GetBlock` answers.
const BLOCKS: usize = 64;
/// Challenges, proofs and acceptances held.
const OTHERS: usize = 4096;

/// A bounded map, oldest insert dropped first.
struct Fifo<K: Ord + Copy, V> {
    cap: usize,
    map: BTreeMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Ord + Copy, V> Fifo<K, V> {
    fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            map: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }

    fn put(&mut self, k: K, v: V) {
        if self.map.insert(k, v).is_some() {
            return;
        }
        self.order.push_back(k);
        while self.map.len() > self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }
}

/// See the module docs.
pub(crate) struct ItemStore {
    blocks: Fifo<Hash, Arc<Block>>,
    /// Compact forms of held blocks, built once (their transfer ids cost a hash each).
    compacts: Fifo<Hash, (Arc<CompactBlock>, u32)>,
    announces: Fifo<Hash, (Height, Work)>,
    txs: Fifo<Hash, (Arc<Transfer>, u32)>,
    others: Fifo<ItemId, Message>,
}

impl ItemStore {
    /// A store holding up to `txs` transfers.
    pub(crate) fn new(txs: usize) -> Self {
        Self {
            blocks: Fifo::new(BLOCKS),
            compacts: Fifo::new(BLOCKS),
            announces: Fifo::new(BLOCKS * 4),
            txs: Fifo::new(txs),
            others: Fifo::new(OTHERS),
        }
    }

    pub(crate) fn put_block(&mut self, hash: Hash, block: Arc<Block>) {
        if self.blocks.get(&hash).is_none() {
            self.blocks.put(hash, block);
        }
    }

    pub(crate) fn block(&self, hash: &Hash) -> Option<Arc<Block>> {
        self.blocks.get(hash).cloned()
    }

    /// The compact form of a held block and its encoded size, built on first use.
    pub(crate) fn compact(&mut self, hash: &Hash) -> Option<(Arc<CompactBlock>, u32)> {
        if let Some(c) = self.compacts.get(hash) {
            return Some(c.clone());
        }
        let block = self.blocks.get(hash)?;
        let compact = CompactBlock::of(block);
        let bytes = u32::try_from(spacetime::encoding::encoded_len(&compact)).unwrap_or(u32::MAX);
        let entry = (Arc::new(compact), bytes);
        self.compacts.put(*hash, entry.clone());
        Some(entry)
    }

    /// Records the height and work a block is announced with.
    pub(crate) fn set_announce(&mut self, hash: Hash, height: Height, work: Work) {
        self.announces.put(hash, (height, work));
    }

    pub(crate) fn announce(&self, hash: &Hash) -> Option<(Height, Work)> {
        self.announces.get(hash).copied()
    }

    pub(crate) fn put_tx(&mut self, id: Hash, tx: Arc<Transfer>) {
        if self.txs.get(&id).is_none() {
            let bytes = u32::try_from(spacetime::encode(&*tx).len()).unwrap_or(u32::MAX);
            self.txs.put(id, (tx, bytes));
        }
    }

    pub(crate) fn tx(&self, id: &Hash) -> Option<Arc<Transfer>> {
        self.txs.get(id).map(|(t, _)| t.clone())
    }

    pub(crate) fn tx_bytes(&self, id: &Hash) -> u32 {
        self.txs.get(id).map_or(0, |(_, b)| *b)
    }

    pub(crate) fn put_other(&mut self, id: ItemId, m: Message) {
        self.others.put(id, m);
    }

    pub(crate) fn other(&self, id: &ItemId) -> Option<&Message> {
        self.others.get(id)
    }
}
