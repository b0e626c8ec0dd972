//! The pool's entries and per-sender queues, and the primitive operations that keep every
//! index (ids, eviction candidates, expiry order, byte count) in step with the queues.

use core::cmp::{Ordering, Reverse};
use std::collections::VecDeque;

use super::Mempool;
use crate::Amount;
use crate::crypto::Address;
use crate::hash::Hash;
use crate::tx::Transfer;

/// A fee per encoded byte, compared exactly: `a/b < c/d` as `a*d < c*b` in 128 bits.
#[derive(Debug, Clone, Copy)]
pub(super) struct FeeRate {
    pub(super) fee: u64,
    pub(super) size: u64,
}

impl Ord for FeeRate {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.fee) * u128::from(other.size))
            .cmp(&(u128::from(other.fee) * u128::from(self.size)))
    }
}

impl PartialOrd for FeeRate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for FeeRate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for FeeRate {}

/// A queued transfer with what the pool derived from it once.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) tx: Transfer,
    pub(super) id: Hash,
    pub(super) size: usize,
    /// `amount + fee`.
    pub(super) debit: Amount,
    pub(super) added_ms: u64,
    /// Admission order, unique: breaks every tie.
    pub(super) seq: u64,
}

impl Entry {
    pub(super) fn rate(&self) -> FeeRate {
        FeeRate {
            fee: self.tx.fee.units(),
            size: self.size as u64,
        }
    }

    pub(super) fn debit(&self) -> u128 {
        u128::from(self.debit.units())
    }
}

/// One sender's transfers, nonces `base, base + 1, ...` without gaps.
#[derive(Debug, Clone)]
pub(super) struct Queue {
    pub(super) base: u64,
    pub(super) entries: VecDeque<Entry>,
    /// Sum of the entries' debits (exact: a sum of `u64`s in 128 bits cannot overflow here).
    pub(super) total: u128,
}

impl Queue {
    /// The nonce after the last queued one (2^64 when the queue ends at `u64::MAX`).
    pub(super) fn next(&self) -> u128 {
        u128::from(self.base) + self.entries.len() as u128
    }

    pub(super) fn position(&self, nonce: u64) -> Option<usize> {
        let index = usize::try_from(nonce.checked_sub(self.base)?).ok()?;
        (index < self.entries.len()).then_some(index)
    }
}

/// Eviction key of a sender's last transfer: lowest fee rate first, newest first among equals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Tail {
    pub(super) rate: FeeRate,
    pub(super) newest: Reverse<u64>,
    pub(super) sender: Address,
}

impl Tail {
    pub(super) fn of(sender: Address, entry: &Entry) -> Self {
        Self {
            rate: entry.rate(),
            newest: Reverse(entry.seq),
            sender,
        }
    }
}

impl Mempool {
    fn index(&mut self, sender: Address, entry: &Entry) {
        self.ids.insert(entry.id, (sender, entry.tx.nonce));
        self.by_time
            .insert((entry.added_ms, entry.seq), (sender, entry.tx.nonce));
        self.bytes += entry.size;
    }

    fn unindex(&mut self, entry: &Entry) {
        self.ids.remove(&entry.id);
        self.by_time.remove(&(entry.added_ms, entry.seq));
        self.bytes = self.bytes.saturating_sub(entry.size);
    }

    /// Appends `entry` to the sender's queue; its nonce must be the queue's next.
    pub(super) fn push_back(&mut self, sender: Address, entry: Entry) {
        self.index(sender, &entry);
        // Most senders have one pending transfer: start with room for exactly one.
        let queue = self.senders.entry(sender).or_insert_with(|| Queue {
            base: entry.tx.nonce,
            entries: VecDeque::with_capacity(1),
            total: 0,
        });
        if let Some(last) = queue.entries.back() {
            self.tails.remove(&Tail::of(sender, last));
        }
        self.tails.insert(Tail::of(sender, &entry));
        queue.total += entry.debit();
        queue.entries.push_back(entry);
    }

    /// Removes the sender's last transfer.
    pub(super) fn pop_back(&mut self, sender: &Address) -> Option<Entry> {
        let queue = self.senders.get_mut(sender)?;
        let entry = queue.entries.pop_back()?;
        self.tails.remove(&Tail::of(*sender, &entry));
        queue.total = queue.total.saturating_sub(entry.debit());
        if let Some(last) = queue.entries.back() {
            self.tails.insert(Tail::of(*sender, last));
        } else {
            self.senders.remove(sender);
        }
        self.unindex(&entry);
        Some(entry)
    }

    /// Removes the sender's first transfer.
    pub(super) fn pop_front(&mut self, sender: &Address) -> Option<Entry> {
        let queue = self.senders.get_mut(sender)?;
        let entry = queue.entries.pop_front()?;
        queue.total = queue.total.saturating_sub(entry.debit());
        if queue.entries.is_empty() {
            self.tails.remove(&Tail::of(*sender, &entry));
            self.senders.remove(sender);
        } else {
            queue.base = queue.base.saturating_add(1);
        }
        self.unindex(&entry);
        Some(entry)
    }

    /// Puts `entry` in place of the sender's transfer at `index` (same nonce); returns it.
    pub(super) fn replace(&mut self, sender: Address, index: usize, entry: Entry) -> Option<Entry> {
        let queue = self.senders.get_mut(&sender)?;
        let is_last = index + 1 == queue.entries.len();
        let slot = queue.entries.get_mut(index)?;
        let old = core::mem::replace(slot, entry);
        queue.total = queue.total.saturating_sub(old.debit()) + slot.debit();
        if is_last {
            self.tails.remove(&Tail::of(sender, &old));
            self.tails.insert(Tail::of(sender, slot));
        }
        self.ids.insert(slot.id, (sender, slot.tx.nonce));
        self.by_time
            .insert((slot.added_ms, slot.seq), (sender, slot.tx.nonce));
        self.bytes += slot.size;
        self.unindex(&old);
        Some(old)
    }

    /// Removes the sender's transfers from position `keep` on, last first.
    pub(super) fn truncate(&mut self, sender: &Address, keep: usize, removed: &mut Vec<Hash>) {
        while self
            .senders
            .get(sender)
            .is_some_and(|q| q.entries.len() > keep)
        {
            match self.pop_back(sender) {
                Some(entry) => removed.push(entry.id),
                None => break,
            }
        }
    }

    /// Takes the sender's whole queue out of the pool and its indexes.
    pub(super) fn detach(&mut self, sender: &Address) -> VecDeque<Entry> {
        let Some(queue) = self.senders.remove(sender) else {
            return VecDeque::new();
        };
        if let Some(last) = queue.entries.back() {
            self.tails.remove(&Tail::of(*sender, last));
        }
        for entry in &queue.entries {
            self.unindex(entry);
        }
        queue.entries
    }
}
