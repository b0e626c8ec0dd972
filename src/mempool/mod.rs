//! The transaction pool: admission, nonce chains per sender, fee order, eviction, expiry,
//! revalidation after the chain moves, and block templates.
//!
//! [`Mempool`] is a plain struct with no clock, thread or I/O: the node's Mempool actor owns
//! one, passes the local time to [`Mempool::add`] and [`Mempool::expire`], and reads accounts
//! at the chain tip through an [`AccountSource`]. The rules are in `docs/mempool.md`.
//!
//! Each sender has a queue of transfers with consecutive nonces starting at its account nonce
//! (no gaps are admitted), whose `amount + fee` add up to at most its mature balance. Only the
//! last transfer of a queue can be evicted, so eviction never leaves a gap; the candidates are
//! kept ordered by fee rate (fee per encoded byte, compared exactly by cross-multiplication).
//! Every operation is deterministic: ties are broken by admission order, never by hash-map
//! iteration order, so the simulator replays a run exactly.

mod config;
mod error;
mod queue;
mod template;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use config::MempoolConfig;
pub use error::MempoolError;
use queue::{Entry, Queue, Tail};

use crate::Amount;
use crate::chain::AccountState;
use crate::crypto::Address;
use crate::encoding::encoded_len;
use crate::hash::Hash;
use crate::limits::MAX_TRANSFER_BYTES;
use crate::tx::{ChainId, Transfer};

/// The smallest encoded transfer: two keys, four one-byte varints and a signature.
pub const MIN_TRANSFER_BYTES: usize = 32 + 32 + 4 + 64;

/// What the pool needs to know of an account: as of the chain tip, spendable (mature) balance
/// and next nonce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountSnapshot {
    /// Spendable balance at the tip (immature coinbase credits excluded).
    pub mature: Amount,
    /// The nonce the account's next transfer must use.
    pub nonce: u64,
}

impl From<&AccountState> for AccountSnapshot {
    fn from(state: &AccountState) -> Self {
        Self {
            mature: state.mature,
            nonce: state.nonce,
        }
    }
}

/// Where the pool reads accounts as of the chain tip; closures `Fn(&Address) -> AccountSnapshot`
/// implement it. An unknown account is `AccountSnapshot::default()` (no coins, nonce 0).
pub trait AccountSource {
    /// The account of `address` at the tip.
    fn account(&self, address: &Address) -> AccountSnapshot;
}

impl<F: Fn(&Address) -> AccountSnapshot> AccountSource for F {
    fn account(&self, address: &Address) -> AccountSnapshot {
        self(address)
    }
}

/// What an admission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The admitted transfer's id.
    pub id: Hash,
    /// The transfer of the same sender and nonce it replaced, if any.
    pub replaced: Option<Hash>,
    /// Other transfers this admission removed: evicted to stay under the byte limit, or stale
    /// transfers of the same sender (nonce used on chain, no longer affordable) found on the way.
    pub evicted: Vec<Hash>,
}

/// The pending transfers of a node, with the rules that admit, order and drop them.
#[derive(Clone)]
pub struct Mempool {
    config: MempoolConfig,
    chain_id: ChainId,
    senders: HashMap<Address, Queue>,
    /// Transfer id -> (sender, nonce).
    ids: HashMap<Hash, (Address, u64)>,
    /// The last transfer of every sender: the eviction candidates.
    tails: BTreeSet<Tail>,
    /// (admission time, seq) -> (sender, nonce): the expiry order.
    by_time: BTreeMap<(u64, u64), (Address, u64)>,
    bytes: usize,
    next_seq: u64,
}

impl core::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mempool")
            .field("chain_id", &self.chain_id)
            .field("transfers", &self.len())
            .field("senders", &self.senders.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Mempool {
    /// An empty pool for the network `chain_id`.
    pub fn new(config: MempoolConfig, chain_id: ChainId) -> Self {
        Self {
            config,
            chain_id,
            senders: HashMap::new(),
            ids: HashMap::new(),
            tails: BTreeSet::new(),
            by_time: BTreeMap::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    /// The pool's policy.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Number of pending transfers.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no transfer is pending.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Encoded bytes of all pending transfers (what `max_bytes` limits).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of senders with pending transfers.
    pub fn sender_count(&self) -> usize {
        self.senders.len()
    }

    /// The senders with pending transfers, sorted.
    pub fn senders(&self) -> Vec<Address> {
        let mut senders: Vec<Address> = self.senders.keys().copied().collect();
        senders.sort_unstable();
        senders
    }

    /// True when the transfer with id `id` is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.ids.contains_key(id)
    }

    /// The pending transfer with id `id`.
    pub fn get(&self, id: &Hash) -> Option<&Transfer> {
        let (sender, nonce) = self.ids.get(id)?;
        let queue = self.senders.get(sender)?;
        Some(&queue.entries.get(queue.position(*nonce)?)?.tx)
    }

    /// The nonce a wallet should give its next transfer: after the account's pending ones.
    pub fn pending_nonce(&self, address: &Address, accounts: &impl AccountSource) -> u64 {
        let account = accounts.account(address);
        match self.senders.get(address) {
            Some(queue) if queue.base <= account.nonce => u64::try_from(queue.next())
                .unwrap_or(u64::MAX)
                .max(account.nonce),
            _ => account.nonce,
        }
    }

    /// Admits `tx`, received at `now_ms`, or says which rule refused it.
    ///
    /// Checks, cheapest first: size, chain id, non-zero amount, `amount + fee` fits, minimum
    /// fee, nonce not used on chain, no gap after the sender's queued transfers, per-sender
    /// limit, duplicate, replacement fee, balance, signature; then makes room under the byte
    /// limit by evicting the lowest fee rates, refusing `tx` if it would be the one evicted.
    pub fn add(
        &mut self,
        tx: Transfer,
        now_ms: u64,
        accounts: &impl AccountSource,
    ) -> Result<Admitted, MempoolError> {
        let (size, debit) = self.check_stateless(&tx)?;
        let sender = tx.from;
        let account = accounts.account(&sender);
        let mature = u128::from(account.mature.units());
        let mut evicted = Vec::new();
        // The pool should already match the tip (update_chain); if the accounts moved on
        // first, bring this sender's queue up to date before judging its new transfer.
        if self
            .senders
            .get(&sender)
            .is_some_and(|q| q.base != account.nonce || q.total > mature)
        {
            self.revalidate_sender(&sender, account, &mut evicted);
        }
        let nonce = tx.nonce;
        if nonce < account.nonce {
            return Err(MempoolError::NonceTooLow {
                nonce,
                expected: account.nonce,
            });
        }
        let queue = self.senders.get(&sender);
        let position = queue.and_then(|q| q.position(nonce));
        if position.is_none() {
            let (queued, next) = queue.map_or((0, u128::from(account.nonce)), |q| {
                (q.entries.len(), q.next())
            });
            if u128::from(nonce) > next {
                return Err(MempoolError::NonceGap {
                    nonce,
                    next: u64::try_from(next).unwrap_or(u64::MAX),
                });
            }
            if queued >= self.config.max_per_sender {
                return Err(MempoolError::TooManyFromSender {
                    queued,
                    max: self.config.max_per_sender,
                });
            }
        }
        let id = tx.id();
        if self.ids.contains_key(&id) {
            return Err(MempoolError::Duplicate { id });
        }
        let new_debit = u128::from(debit.units());
        match (queue, position) {
            (Some(queue), Some(index)) => {
                let old = &queue.entries[index];
                let required = self.replacement_fee(old.tx.fee);
                if u128::from(tx.fee.units()) < required {
                    return Err(MempoolError::ReplacementFeeTooLow {
                        nonce,
                        old_fee: old.tx.fee,
                        fee: tx.fee,
                        required,
                    });
                }
                let total = queue.total.saturating_sub(old.debit()) + new_debit;
                if total > mature {
                    let before: u128 = queue.entries.iter().take(index).map(Entry::debit).sum();
                    if before + new_debit > mature {
                        return Err(MempoolError::InsufficientBalance {
                            needed: before + new_debit,
                            queued: before,
                            mature: account.mature,
                        });
                    }
                    return Err(MempoolError::ReplacementUnaffordable {
                        needed: total,
                        mature: account.mature,
                    });
                }
            }
            _ => {
                let queued = queue.map_or(0, |q| q.total);
                if queued + new_debit > mature {
                    return Err(MempoolError::InsufficientBalance {
                        needed: queued + new_debit,
                        queued,
                        mature: account.mature,
                    });
                }
            }
        }
        tx.verify_signature()
            .map_err(|e| MempoolError::from_tx(e, tx.amount, tx.fee))?;

        let fee = tx.fee;
        let seq = self.take_seq();
        let entry = Entry {
            tx,
            id,
            size,
            debit,
            added_ms: now_ms,
            seq,
        };
        let replaced = match position {
            Some(index) => self.replace(sender, index, entry),
            None => {
                self.push_back(sender, entry);
                None
            }
        };
        match self.evict_to_fit(Some(seq)) {
            Some(more) => evicted.extend(more),
            None => {
                // Undo the insertion; the evictions were undone already.
                match (position, replaced) {
                    (Some(index), Some(old)) => {
                        self.replace(sender, index, old);
                    }
                    _ => {
                        self.pop_back(&sender);
                    }
                }
                return Err(MempoolError::PoolFull {
                    fee,
                    size,
                    bytes: self.bytes,
                    max_bytes: self.config.max_bytes,
                });
            }
        }
        Ok(Admitted {
            id,
            replaced: replaced.map(|e| e.id),
            evicted,
        })
    }

    /// Follows the chain after a NewTip or Reorg; `accounts` must already show the new tip.
    ///
    /// `included` are the transfers of the blocks that joined the main chain, `reverted` those
    /// of the blocks that left it. Reverted transfers go back into the pool when they still
    /// pass the stateless checks and the minimum fee (their signatures were checked in their
    /// block), ahead of the sender's queued ones. Then every sender concerned (the senders of
    /// both lists, and the recipients of reverted transfers, which may have lost coins) is
    /// revalidated: transfers whose nonce is now used are dropped, a queue that no longer starts
    /// at the account nonce is dropped, and a queue is cut at its first unaffordable transfer.
    /// Returns the ids removed, in a deterministic order.
    pub fn update_chain(
        &mut self,
        included: &[Transfer],
        reverted: &[Transfer],
        now_ms: u64,
        accounts: &impl AccountSource,
    ) -> Vec<Hash> {
        let mut removed = Vec::new();
        let mut touched: Vec<Address> = Vec::with_capacity(included.len() + 2 * reverted.len());
        touched.extend(included.iter().map(|t| t.from));
        touched.extend(reverted.iter().flat_map(|t| [t.from, t.to]));
        touched.sort_unstable();
        touched.dedup();
        let mut back: Vec<(&Transfer, usize, Amount)> = reverted
            .iter()
            .filter_map(|t| {
                let (size, debit) = self.check_stateless(t).ok()?;
                Some((t, size, debit))
            })
            .collect();
        back.sort_by_key(|(t, ..)| (t.from, t.nonce));
        let mut rest = &back[..];
        for sender in &touched {
            let start = rest.partition_point(|(t, ..)| t.from < *sender);
            let run = rest[start..].partition_point(|(t, ..)| t.from == *sender);
            let (mine, after) = rest[start..].split_at(run);
            rest = after;
            let account = accounts.account(sender);
            if mine.is_empty() {
                self.revalidate_sender(sender, account, &mut removed);
            } else {
                self.merge_reverted(*sender, account, mine, now_ms, &mut removed);
            }
        }
        if let Some(more) = self.evict_to_fit(None) {
            removed.extend(more);
        }
        removed
    }

    /// Revalidates every sender against `accounts`, as [`Mempool::update_chain`] does for the
    /// senders it touches; for a restart or a reorg whose transfers are not at hand.
    pub fn revalidate(&mut self, accounts: &impl AccountSource) -> Vec<Hash> {
        let mut senders: Vec<Address> = self.senders.keys().copied().collect();
        senders.sort_unstable();
        let mut removed = Vec::new();
        for sender in &senders {
            let account = accounts.account(sender);
            self.revalidate_sender(sender, account, &mut removed);
        }
        removed
    }

    /// Drops the transfers admitted more than `expiry_ms` before `now_ms`, with the sender's
    /// later transfers (which cannot be mined without them). Returns the ids removed.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Hash> {
        let mut removed = Vec::new();
        let Some(cutoff) = now_ms.checked_sub(self.config.expiry_ms) else {
            return removed;
        };
        while let Some((&(added_ms, _), _)) = self.by_time.first_key_value() {
            if added_ms >= cutoff {
                break;
            }
            let Some((_, (sender, nonce))) = self.by_time.pop_first() else {
                break;
            };
            if let Some(index) = self.senders.get(&sender).and_then(|q| q.position(nonce)) {
                self.truncate(&sender, index, &mut removed);
            }
        }
        removed
    }

    /// Size, chain id, amount, overflow and minimum fee; returns the size and `amount + fee`.
    fn check_stateless(&self, tx: &Transfer) -> Result<(usize, Amount), MempoolError> {
        let size = encoded_len(tx);
        if size > MAX_TRANSFER_BYTES {
            return Err(MempoolError::TooLarge {
                size,
                max: MAX_TRANSFER_BYTES,
            });
        }
        let stateless = |e| MempoolError::from_tx(e, tx.amount, tx.fee);
        tx.check_well_formed(self.chain_id).map_err(stateless)?;
        let debit = tx.total_debit().map_err(stateless)?;
        if tx.fee < self.config.min_fee {
            return Err(MempoolError::FeeTooLow {
                fee: tx.fee,
                min: self.config.min_fee,
            });
        }
        Ok((size, debit))
    }

    /// The smallest fee that replaces a queued transfer paying `old`: the bump, and at least
    /// one unit more.
    fn replacement_fee(&self, old: Amount) -> u128 {
        let old = u128::from(old.units());
        let bumped = old * (100 + u128::from(self.config.replace_bump_percent)) / 100;
        bumped.max(old + 1)
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Drops the sender's transfers whose nonce is used, all of them if the queue no longer
    /// starts at the account nonce, and those from the first unaffordable one on.
    fn revalidate_sender(
        &mut self,
        sender: &Address,
        account: AccountSnapshot,
        removed: &mut Vec<Hash>,
    ) {
        while self
            .senders
            .get(sender)
            .is_some_and(|q| q.base < account.nonce)
        {
            match self.pop_front(sender) {
                Some(entry) => removed.push(entry.id),
                None => break,
            }
        }
        let Some(queue) = self.senders.get(sender) else {
            return;
        };
        let keep = if queue.base > account.nonce {
            0
        } else {
            let mature = u128::from(account.mature.units());
            let mut sum = 0u128;
            let affordable = queue
                .entries
                .iter()
                .take_while(|e| {
                    sum += e.debit();
                    sum <= mature
                })
                .count();
            affordable.min(self.config.max_per_sender)
        };
        self.truncate(sender, keep, removed);
    }

    /// Rebuilds a sender's queue from the account nonce, taking each nonce from the queued
    /// transfers or else from `reverted` (sorted by nonce, stateless checks passed).
    fn merge_reverted(
        &mut self,
        sender: Address,
        account: AccountSnapshot,
        reverted: &[(&Transfer, usize, Amount)],
        now_ms: u64,
        removed: &mut Vec<Hash>,
    ) {
        let mut queued = self.detach(&sender).into_iter().peekable();
        let mut reverted = reverted.iter().peekable();
        let mature = u128::from(account.mature.units());
        let mut next = u128::from(account.nonce);
        let mut sum = 0u128;
        let mut count = 0usize;
        loop {
            while let Some(e) = queued.next_if(|e| u128::from(e.tx.nonce) < next) {
                removed.push(e.id);
            }
            while reverted
                .next_if(|(t, ..)| u128::from(t.nonce) < next)
                .is_some()
            {}
            let (entry, was_queued) =
                if let Some(e) = queued.next_if(|e| u128::from(e.tx.nonce) == next) {
                    (e, true)
                } else if let Some(&&(tx, size, debit)) = reverted.peek() {
                    if u128::from(tx.nonce) != next {
                        break;
                    }
                    reverted.next();
                    let seq = self.take_seq();
                    let entry = Entry {
                        tx: tx.clone(),
                        id: tx.id(),
                        size,
                        debit,
                        added_ms: now_ms,
                        seq,
                    };
                    (entry, false)
                } else {
                    break;
                };
            sum += entry.debit();
            if count >= self.config.max_per_sender || sum > mature {
                if was_queued {
                    removed.push(entry.id);
                }
                break;
            }
            count += 1;
            next += 1;
            self.push_back(sender, entry);
        }
        removed.extend(queued.map(|e| e.id));
    }

    /// Evicts senders' last transfers, lowest fee rate first, until the pool fits `max_bytes`.
    /// If the transfer admitted with `protect` would be evicted, undoes the evictions and
    /// returns `None`.
    fn evict_to_fit(&mut self, protect: Option<u64>) -> Option<Vec<Hash>> {
        let mut evicted: Vec<(Address, Entry)> = Vec::new();
        while self.bytes > self.config.max_bytes {
            let Some(&tail) = self.tails.first() else {
                break;
            };
            if Some(tail.newest.0) == protect {
                while let Some((sender, entry)) = evicted.pop() {
                    self.push_back(sender, entry);
                }
                return None;
            }
            match self.pop_back(&tail.sender) {
                Some(entry) => evicted.push((tail.sender, entry)),
                None => {
                    self.tails.remove(&tail);
                }
            }
        }
        Some(evicted.into_iter().map(|(_, e)| e.id).collect())
    }
}
