//! Block templates: the pending transfers a miner should include, best fee rate first.

use core::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::queue::{Entry, FeeRate, Queue};
use super::{MIN_TRANSFER_BYTES, Mempool};
use crate::tx::Transfer;

/// The next transfer of one sender, as a heap item: highest fee rate first, then oldest.
struct Candidate<'a> {
    rate: FeeRate,
    older: Reverse<u64>,
    queue: &'a Queue,
    index: usize,
}

impl<'a> Candidate<'a> {
    fn new(queue: &'a Queue, index: usize, entry: &Entry) -> Self {
        Self {
            rate: entry.rate(),
            older: Reverse(entry.seq),
            queue,
            index,
        }
    }
}

impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.rate, self.older).cmp(&(other.rate, other.older))
    }
}

impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate<'_> {}

impl Mempool {
    /// A block template: at most `max_count` transfers of at most `max_bytes` encoded bytes,
    /// in block order.
    ///
    /// Greedy by fee rate over a heap of every sender's next transfer: a transfer enters only
    /// after its sender's previous nonce, so each sender's transfers appear in nonce order from
    /// its account nonce without gaps. A transfer that does not fit the bytes left closes its
    /// sender for this template (its later nonces cannot go without it); smaller transfers of
    /// other senders may still fill the space. The pool must be up to date with the tip
    /// ([`Mempool::update_chain`]).
    pub fn template(&self, max_count: usize, max_bytes: usize) -> Vec<Transfer> {
        let max_count = max_count.min(self.len());
        let mut out = Vec::with_capacity(max_count);
        if max_count == 0 || max_bytes < MIN_TRANSFER_BYTES {
            return out;
        }
        let mut heap: BinaryHeap<Candidate<'_>> = self
            .senders
            .values()
            .filter_map(|q| q.entries.front().map(|e| Candidate::new(q, 0, e)))
            .collect();
        let mut room = max_bytes;
        while out.len() < max_count && room >= MIN_TRANSFER_BYTES {
            let Some(candidate) = heap.pop() else {
                break;
            };
            let Some(entry) = candidate.queue.entries.get(candidate.index) else {
                continue;
            };
            if entry.size > room {
                continue;
            }
            room -= entry.size;
            out.push(entry.tx.clone());
            let index = candidate.index + 1;
            if let Some(next) = candidate.queue.entries.get(index) {
                heap.push(Candidate::new(candidate.queue, index, next));
            }
        }
        out
    }
}
