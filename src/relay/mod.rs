//! Relay (gossip) as a sans-IO state machine: how blocks, transactions, challenges and proofs
//! reach every node fast and cross each link about once (after rust-libp2p's gossipsub and
//! Bitcoin Core's BIP152 high-bandwidth relay).
//!
//! The Gossip actor feeds [`RelayInput`]s with the time into [`RelayState::handle`] and carries
//! out the [`RelayAction`]s; it holds the items themselves, the state machine only their ids.
//!
//! *Dedup.* A bounded seen-cache remembers every item the node has met, and who sent it first;
//! each peer has a bounded known inventory (what it sent or announced us, what we sent it), so
//! nobody is sent what it has; a peer that turns out to have an item still queued for it (it
//! sent, announced or fetched it meanwhile) is not sent it. A peer that sends the same block,
//! challenge, proof or acceptance whole twice is penalised `RepeatedItem`; a transfer sent
//! twice is only counted, since honest nodes relay the transfers a reorg put back in their pool
//! again. Sending what it announced (answering our fetch) is no repeat, even if another peer's
//! copy came first. A block announced with less work than our tip is not fetched
//! ([`RelayInput::PeerHas`]).
//!
//! *Checks first.* A new item is checked before it goes anywhere ([`RelayAction::Check`]):
//! the cheap rules for a block (its body matches its header, and [`crate::chain::Precheck`]
//! on the header), mempool admission for a
//! transfer, the signature for a proof. Only a [`Verdict::Relay`] relays it; an invalid item
//! penalises the peer that sent it, and a refused one (low fee, full pool, unknown parent) is
//! dropped without blame. Only the first verdict on a pending check counts. A block whose body
//! later fails full validation penalises its sender too ([`RelayInput::BodyInvalid`]), below a
//! ban: an honest peer forwards such a block as well.
//!
//! *Blocks* are pushed to every peer that lacks them ([`BlockRelay::Push`], the default; the
//! actor sends them compact when `compact_blocks` is set, which it is by default), or pushed to
//! the peers that asked for pushes (`SendBlocks`) and announced to the others
//! ([`BlockRelay::HighBandwidth`]; each node asks the `high_bandwidth_peers` that most recently
//! delivered new blocks first), or announced to all ([`BlockRelay::Announce`]). An announced block is fetched
//! at once from the first announcer, from the next after `fetch_timeout_ms` (or at once when
//! the first disconnects). At most `seen_capacity` fetches are in flight; announcements beyond
//! that are not fetched.
//!
//! *Transfers* are batched per peer for `tx_batch_ms` and sent as one `Txs` (push) or `TxInv`
//! (announce, the peer fetches what it lacks with `GetTxs`); a full batch goes at once.
//!
//! *Queues.* Each peer has a bounded queue in three classes (blocks and challenges, proofs and
//! acceptances, transfers, which wait in it for their batch); a full queue drops the lowest
//! class first. Sends are paced by a per-peer and a node-wide upload rate; what waits stays
//! queued. The peers take turns going first, so a node-wide rate is shared by all of them.
//! Every drop is counted.

mod inventory;
mod queue;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::hash::Hash;
use crate::p2p::{ByteThrottle, Misbehavior, PeerId};
use crate::wire::{MAX_TX_IDS_PER_MESSAGE, MAX_TXS_PER_MESSAGE};

pub use inventory::BoundedMap;
pub use queue::{Delivery, PeerQueue, Queued};

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    /// A block (by block hash).
    Block,
    /// A `NewChallenge` (by the hash of its encoding).
    Challenge,
    /// A `ProofSubmission` (by the hash of its encoding).
    Proof,
    /// A `BlockAccepted` (by the hash of its encoding).
    Accepted,
    /// A transfer (by transaction id).
    Tx,
}

impl ItemKind {
    /// Every kind, in order.
    pub const ALL: [Self; 5] = [
        Self::Block,
        Self::Challenge,
        Self::Proof,
        Self::Accepted,
        Self::Tx,
    ];

    /// The queue class: blocks and challenges first, proofs next, transfers last.
    pub const fn class(self) -> Class {
        match self {
            Self::Block | Self::Challenge => Class::High,
            Self::Proof | Self::Accepted => Class::Medium,
            Self::Tx => Class::Low,
        }
    }

    /// A stable lowercase name, for logs and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Challenge => "challenge",
            Self::Proof => "proof",
            Self::Accepted => "accepted",
            Self::Tx => "tx",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// A queue priority class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Blocks and challenges.
    High = 0,
    /// Proofs and acceptances.
    Medium = 1,
    /// Transfers.
    Low = 2,
}

/// An item's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId {
    /// What it is.
    pub kind: ItemKind,
    /// Its hash.
    pub hash: Hash,
}

impl ItemId {
    /// The id of a `kind` item with `hash`.
    pub const fn new(kind: ItemKind, hash: Hash) -> Self {
        Self { kind, hash }
    }
}

/// How blocks are relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockRelay {
    /// Blocks (compact or whole) to every peer that does not have them.
    Push,
    /// `BlockAnnounce` to every peer; peers fetch.
    Announce,
    /// Blocks to the peers that asked (`SendBlocks`), announcements to the rest.
    HighBandwidth,
}

/// How transfers are relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxRelay {
    /// Batches of transfers (`Txs`).
    Push,
    /// Batches of ids (`TxInv`); peers fetch the ones they lack.
    Announce,
}

/// Tuning; `docs/relay.md` says why these values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// How blocks travel.
    pub blocks: BlockRelay,
    /// Peers asked to push whole blocks to this node in `HighBandwidth` mode.
    pub high_bandwidth_peers: usize,
    /// Pushed blocks travel compact (header, coinbase and transfer ids; the receiver rebuilds
    /// the body from the transfers it holds and fetches the whole block when it lacks one).
    pub compact_blocks: bool,
    /// How transfers travel.
    pub txs: TxRelay,
    /// Item ids the seen-cache holds.
    pub seen_capacity: usize,
    /// Item ids each peer's known inventory holds.
    pub known_per_peer: usize,
    /// Items each peer's queue holds.
    pub queue_per_peer: usize,
    /// Relay bytes per second to one peer (0: unlimited).
    pub peer_upload_bytes_per_sec: u64,
    /// Relay bytes per second to all peers together (0: unlimited).
    pub upload_bytes_per_sec: u64,
    /// How long transfers wait to fill a batch, ms.
    pub tx_batch_ms: u64,
    /// An unanswered fetch goes to the next announcer after this long, ms.
    pub fetch_timeout_ms: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            blocks: BlockRelay::Push,
            high_bandwidth_peers: 1,
            compact_blocks: true,
            txs: TxRelay::Push,
            seen_capacity: 200_000,
            known_per_peer: 20_000,
            queue_per_peer: 20_000,
            peer_upload_bytes_per_sec: 0,
            upload_bytes_per_sec: 0,
            tx_batch_ms: 100,
            fetch_timeout_ms: 2_000,
        }
    }
}

/// The node's judgement of an item after its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Good: relay it; `bytes` is its encoded size.
    Relay {
        /// Encoded size.
        bytes: u32,
    },
    /// Not relayed, nobody's fault, and never will be (already known, fee too low).
    Ignore,
    /// Not relayed now, nobody's fault, but it may pass later (parent unknown, a nonce gap,
    /// pool full): forgotten, so the next copy is checked again.
    Later,
    /// Broke a rule: the sender is penalised.
    Invalid(Misbehavior),
}

/// Something the actor tells the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayInput {
    /// A session opened.
    PeerUp {
        /// The peer.
        peer: PeerId,
    },
    /// A session ended.
    PeerDown {
        /// The peer.
        peer: PeerId,
    },
    /// A peer sent an item itself (pushed, or answering a fetch).
    Received {
        /// The sender.
        peer: PeerId,
        /// The item.
        id: ItemId,
    },
    /// A peer announced an item it has.
    Announced {
        /// The announcer.
        peer: PeerId,
        /// The item.
        id: ItemId,
    },
    /// The check asked for by [`RelayAction::Check`] is done (a verdict on an item not
    /// waiting for one is ignored).
    Checked {
        /// The item.
        id: ItemId,
        /// Its verdict.
        verdict: Verdict,
    },
    /// An item of this node (mined, submitted, admitted by its pool): relay it to every peer
    /// that does not have it. `again` forgets who had it (a transfer back from a reorg); a
    /// peer it is still queued for gets it once.
    Local {
        /// The item.
        id: ItemId,
        /// Encoded size.
        bytes: u32,
        /// Relay even to peers that had it.
        again: bool,
    },
    /// Our tip moved to this block: announce it to peers that do not know it.
    NewTip {
        /// The block.
        hash: Hash,
    },
    /// A relayed block failed its full validation: its sender pays.
    BodyInvalid {
        /// The block.
        hash: Hash,
    },
    /// A peer asked us to push (or stop pushing) whole blocks.
    PeerWantsPush {
        /// The peer.
        peer: PeerId,
        /// Push or announce.
        push: bool,
    },
    /// A peer told us of an item we do not want (a block with less work than our tip):
    /// it has it, so it is never sent the item, and nothing is fetched.
    PeerHas {
        /// The peer.
        peer: PeerId,
        /// The item.
        id: ItemId,
    },
    /// A peer fetched an item from us: it has it now.
    Served {
        /// The peer.
        peer: PeerId,
        /// The item.
        id: ItemId,
    },
    /// Time passed (every `tx_batch_ms` or so).
    Tick,
}

/// Something the actor should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayAction {
    /// Check a new item (see the module docs) and answer with `Checked`.
    Check {
        /// The item.
        id: ItemId,
        /// Who sent it.
        from: PeerId,
    },
    /// Send one block, challenge, proof or acceptance, or announce a block.
    Send {
        /// To whom.
        peer: PeerId,
        /// The item.
        id: ItemId,
        /// Whole or announced.
        delivery: Delivery,
    },
    /// Send a batch of transfers (`Txs`) or of their ids (`TxInv`).
    SendTxs {
        /// To whom.
        peer: PeerId,
        /// The transaction ids.
        ids: Vec<Hash>,
        /// Transfers or ids.
        delivery: Delivery,
    },
    /// Ask a peer for a block (`GetBlock`).
    FetchBlock {
        /// The announcer.
        peer: PeerId,
        /// The block.
        hash: Hash,
    },
    /// Ask a peer for transfers (`GetTxs`).
    FetchTxs {
        /// The announcer.
        peer: PeerId,
        /// The ids.
        ids: Vec<Hash>,
    },
    /// Ask a peer to push whole blocks, or to announce them (`SendBlocks`).
    SetPush {
        /// The peer.
        peer: PeerId,
        /// Push or announce.
        push: bool,
    },
    /// Score a misbehaviour.
    Penalize {
        /// The peer.
        peer: PeerId,
        /// What it did.
        what: Misbehavior,
    },
}

/// Counters of what the relay did, by [`ItemKind`] index (see [`RelayCounters::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayCounters {
    /// Items received whole.
    pub received: [u64; 5],
    /// Items received whole that the node already had.
    pub duplicates: [u64; 5],
    /// Announcements received.
    pub announced: [u64; 5],
    /// Items relayed (checked good or local).
    pub relayed: [u64; 5],
    /// Items sent whole to peers.
    pub pushed: [u64; 5],
    /// Announcements sent to peers.
    pub announcements: [u64; 5],
    /// Items fetched from announcers.
    pub fetched: [u64; 5],
    /// Items dropped from full peer queues.
    pub queue_dropped: [u64; 5],
    /// Items refused by their check (invalid or ignored).
    pub refused: [u64; 5],
    /// Items sent twice by the same peer.
    pub repeats: u64,
    /// Fetches that timed out.
    pub fetch_timeouts: u64,
}

impl RelayCounters {
    /// The entry of `kind` in one of the arrays.
    pub fn of(array: &[u64; 5], kind: ItemKind) -> u64 {
        array[kind.index()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// The peer sent it to us whole (sending it again is a repeat).
    FromPeer,
    /// The peer announced it (sending it whole later, answering a fetch, is no repeat).
    Announced,
    /// We sent, announced or queued it to the peer, or it fetched it.
    ToPeer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Checking,
    Relayed,
    Refused,
}

#[derive(Debug, Clone, Copy)]
struct SeenEntry {
    from: Option<PeerId>,
    state: Seen,
}

#[derive(Debug, Clone)]
struct Fetch {
    peer: PeerId,
    sent_ms: u64,
    /// Other peers that announced it, to ask next.
    others: Vec<PeerId>,
}

/// Most announcers remembered per fetch.
const MAX_ANNOUNCERS: usize = 8;
/// Credit scale for choosing high-bandwidth peers (one first delivery = `CREDIT`).
const CREDIT: u64 = 1000;
/// Least time between two reviews of the high-bandwidth peers while every slot is filled: with
/// several blocks competing each epoch the ranking changes often, and each change costs the
/// peers a `SendBlocks` (rate-limited to one a second).
pub const PUSHER_REVIEW_MS: u64 = 10_000;

#[derive(Debug, Clone)]
struct Peer {
    known: BoundedMap<Known>,
    queue: PeerQueue,
    /// It asked us to push whole blocks.
    wants_push: bool,
    /// Recent first deliveries of new blocks, decayed.
    credit: u64,
    throttle: Option<ByteThrottle>,
    /// When the oldest transfer waiting in the queue for a batch joined.
    tx_since_ms: u64,
    /// Transfers to fetch from it, sent once per `handle`.
    tx_fetch: Vec<Hash>,
}

impl Peer {
    /// The peer has `id` (it sent, announced or fetched it): it is never sent it now.
    fn has(&mut self, id: ItemId, how: Known) {
        let before = self.known.get(&id).copied();
        if before == Some(Known::ToPeer) {
            // Maybe still queued for it: it needs it no longer.
            self.queue.remove(&id);
        }
        // Whole from the peer is remembered over anything else, for the repeat check.
        if how == Known::FromPeer || before != Some(Known::FromPeer) {
            self.known.insert(id, how);
        }
    }
}

/// The relay state machine; see the module docs.
#[derive(Debug)]
pub struct RelayState {
    config: RelayConfig,
    seen: BoundedMap<SeenEntry>,
    peers: BTreeMap<PeerId, Peer>,
    fetches: BTreeMap<ItemId, Fetch>,
    /// Peers we asked to push blocks (`HighBandwidth`).
    pushers: BTreeSet<PeerId>,
    throttle: Option<ByteThrottle>,
    /// The last peer a flush sent to: the next flush starts after it, so a node-wide cap is
    /// shared fairly.
    last_sent: Option<PeerId>,
    /// No review of the high-bandwidth peers before this time unless a slot is free.
    next_review_ms: u64,
    counters: RelayCounters,
}

impl RelayState {
    /// A machine with no peers.
    pub fn new(config: RelayConfig, now_ms: u64) -> Self {
        let throttle = (config.upload_bytes_per_sec > 0)
            .then(|| ByteThrottle::new(config.upload_bytes_per_sec, now_ms));
        Self {
            seen: BoundedMap::new(config.seen_capacity),
            config,
            peers: BTreeMap::new(),
            fetches: BTreeMap::new(),
            pushers: BTreeSet::new(),
            throttle,
            last_sent: None,
            next_review_ms: 0,
            counters: RelayCounters::default(),
        }
    }

    /// The tuning.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// What the relay did so far.
    pub fn counters(&self) -> &RelayCounters {
        &self.counters
    }

    /// Items queued to all peers (transfers waiting for their batch included).
    pub fn queued(&self) -> usize {
        self.peers.values().map(|p| p.queue.len()).sum()
    }

    /// Ids in the seen-cache.
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Whether the node has met `id` (checked, relayed or refused).
    pub fn has_seen(&self, id: &ItemId) -> bool {
        self.seen.contains(id)
    }

    /// Whether `peer` is known to have `id`.
    pub fn peer_knows(&self, peer: PeerId, id: &ItemId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.known.contains(id))
    }

    /// The peers this node asked to push blocks.
    pub fn pushers(&self) -> Vec<PeerId> {
        self.pushers.iter().copied().collect()
    }

    /// Handles one input and returns what to do, in order.
    pub fn handle(&mut self, now_ms: u64, input: RelayInput) -> Vec<RelayAction> {
        self.handle_all(now_ms, std::iter::once(input))
    }

    /// Handles the inputs of one message (the ids of a `TxInv`, the transfers a `GetTxs`
    /// served) and sends once after all of them, so the fetches they cause leave as one
    /// `GetTxs` per peer, not one per id.
    pub fn handle_all(
        &mut self,
        now_ms: u64,
        inputs: impl IntoIterator<Item = RelayInput>,
    ) -> Vec<RelayAction> {
        let mut out = Vec::new();
        for input in inputs {
            self.apply_input(now_ms, input, &mut out);
        }
        self.flush(now_ms, &mut out);
        out
    }

    fn apply_input(&mut self, now_ms: u64, input: RelayInput, out: &mut Vec<RelayAction>) {
        match input {
            RelayInput::PeerUp { peer } => {
                let throttle = (self.config.peer_upload_bytes_per_sec > 0)
                    .then(|| ByteThrottle::new(self.config.peer_upload_bytes_per_sec, now_ms));
                self.peers.insert(
                    peer,
                    Peer {
                        known: BoundedMap::new(self.config.known_per_peer),
                        queue: PeerQueue::new(self.config.queue_per_peer),
                        wants_push: false,
                        credit: 0,
                        throttle,
                        tx_since_ms: now_ms,
                        tx_fetch: Vec::new(),
                    },
                );
                self.choose_pushers(now_ms, out);
            }
            RelayInput::PeerDown { peer } => {
                self.peers.remove(&peer);
                self.pushers.remove(&peer);
                let orphaned: Vec<ItemId> = self
                    .fetches
                    .iter_mut()
                    .filter_map(|(id, f)| {
                        f.others.retain(|p| *p != peer);
                        (f.peer == peer).then_some(*id)
                    })
                    .collect();
                for id in orphaned {
                    self.refetch(now_ms, id, out);
                }
                self.choose_pushers(now_ms, out);
            }
            RelayInput::Received { peer, id } => self.on_received(peer, id, out),
            RelayInput::Announced { peer, id } => self.on_announced(now_ms, peer, id, out),
            RelayInput::Checked { id, verdict } => self.on_checked(now_ms, id, verdict, out),
            RelayInput::Local { id, bytes, again } => {
                if again {
                    for p in self.peers.values_mut() {
                        // What is still queued for a peer stays so, and is not queued twice.
                        if !p.queue.contains(&id) {
                            p.known.remove(&id);
                        }
                    }
                }
                // We have it: no need to fetch it.
                self.fetches.remove(&id);
                let state = self.seen.get(&id).map(|e| e.state);
                if again || state != Some(Seen::Relayed) {
                    let from = self.seen.get(&id).and_then(|e| e.from);
                    self.seen.insert(
                        id,
                        SeenEntry {
                            from,
                            state: Seen::Relayed,
                        },
                    );
                    self.relay(now_ms, id, bytes, true);
                }
            }
            RelayInput::NewTip { hash } => {
                let id = ItemId::new(ItemKind::Block, hash);
                for p in self.peers.values_mut() {
                    if !p.known.contains(&id) {
                        Self::enqueue(
                            p,
                            &mut self.counters,
                            now_ms,
                            id,
                            Delivery::Announce,
                            ANNOUNCE_BYTES,
                        );
                    }
                }
            }
            RelayInput::BodyInvalid { hash } => {
                let id = ItemId::new(ItemKind::Block, hash);
                if let Some(from) = self.seen.get(&id).and_then(|e| e.from) {
                    out.push(RelayAction::Penalize {
                        peer: from,
                        what: Misbehavior::InvalidRelayedBlock,
                    });
                }
            }
            RelayInput::PeerWantsPush { peer, push } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.wants_push = push;
                }
            }
            RelayInput::Served { peer, id } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.has(id, Known::ToPeer);
                }
            }
            RelayInput::PeerHas { peer, id } => {
                self.counters.announced[id.kind.index()] += 1;
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.has(id, Known::Announced);
                }
            }
            RelayInput::Tick => self.on_tick(now_ms, out),
        }
    }

    fn on_received(&mut self, peer: PeerId, id: ItemId, out: &mut Vec<RelayAction>) {
        self.counters.received[id.kind.index()] += 1;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.known.get(&id) == Some(&Known::FromPeer) && self.seen.contains(&id) {
            self.counters.repeats += 1;
            // Honest nodes send a transfer again after a reorg put it back in their pool,
            // possibly before our own reorg: only counted, as a duplicate costs one lookup
            // and the session's rate limits bound the flood. Nothing else is ever resent.
            if id.kind == ItemKind::Tx {
                self.counters.duplicates[id.kind.index()] += 1;
            } else {
                out.push(RelayAction::Penalize {
                    peer,
                    what: Misbehavior::RepeatedItem,
                });
            }
            return;
        }
        p.has(id, Known::FromPeer);
        self.fetches.remove(&id);
        if self.seen.contains(&id) {
            self.counters.duplicates[id.kind.index()] += 1;
            return;
        }
        self.seen.insert(
            id,
            SeenEntry {
                from: Some(peer),
                state: Seen::Checking,
            },
        );
        out.push(RelayAction::Check { id, from: peer });
    }

    fn on_announced(&mut self, now_ms: u64, peer: PeerId, id: ItemId, out: &mut Vec<RelayAction>) {
        self.counters.announced[id.kind.index()] += 1;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.has(id, Known::Announced);
        if self.seen.contains(&id) {
            return;
        }
        if let Some(f) = self.fetches.get_mut(&id) {
            if f.peer != peer && !f.others.contains(&peer) && f.others.len() < MAX_ANNOUNCERS {
                f.others.push(peer);
            }
            return;
        }
        if self.fetches.len() >= self.config.seen_capacity {
            // As many fetches in flight as the seen-cache holds: a flood of announcements is
            // not remembered. An honest announcer announces again, or pushes.
            return;
        }
        match id.kind {
            ItemKind::Block => out.push(RelayAction::FetchBlock {
                peer,
                hash: id.hash,
            }),
            ItemKind::Tx => p.tx_fetch.push(id.hash),
            // Challenges, proofs and acceptances are always pushed: nothing to fetch.
            _ => return,
        }
        self.counters.fetched[id.kind.index()] += 1;
        self.fetches.insert(
            id,
            Fetch {
                peer,
                sent_ms: now_ms,
                others: Vec::new(),
            },
        );
    }

    fn on_checked(
        &mut self,
        now_ms: u64,
        id: ItemId,
        verdict: Verdict,
        out: &mut Vec<RelayAction>,
    ) {
        let Some(entry) = self.seen.get(&id).copied() else {
            return;
        };
        // Only the verdict of a pending check counts: a stray or second one (the item went
        // out as local meanwhile, or was judged already) changes nothing and blames nobody.
        if entry.state != Seen::Checking {
            return;
        }
        match verdict {
            Verdict::Relay { bytes } => {
                self.seen.insert(
                    id,
                    SeenEntry {
                        from: entry.from,
                        state: Seen::Relayed,
                    },
                );
                if id.kind == ItemKind::Block
                    && let Some(from) = entry.from
                {
                    self.credit(now_ms, from, out);
                }
                self.relay(now_ms, id, bytes, false);
            }
            Verdict::Later => {
                // It may pass once something else arrives (its parent, the sender's earlier
                // transfer): the next copy is checked again.
                self.counters.refused[id.kind.index()] += 1;
                self.seen.remove(&id);
            }
            Verdict::Ignore | Verdict::Invalid(_) => {
                self.counters.refused[id.kind.index()] += 1;
                self.seen.insert(
                    id,
                    SeenEntry {
                        from: entry.from,
                        state: Seen::Refused,
                    },
                );
                if let (Verdict::Invalid(what), Some(peer)) = (verdict, entry.from) {
                    out.push(RelayAction::Penalize { peer, what });
                }
            }
        }
    }

    /// Queues `id` for every peer that does not have it. A block this node produced (`local`)
    /// is pushed to every peer in `HighBandwidth` mode: none of them can have it yet, so a push
    /// saves each a round trip and costs no duplicate.
    fn relay(&mut self, now_ms: u64, id: ItemId, bytes: u32, local: bool) {
        self.counters.relayed[id.kind.index()] += 1;
        let mode = self.config.blocks;
        let txs = self.config.txs;
        for p in self.peers.values_mut() {
            if p.known.contains(&id) {
                continue;
            }
            let delivery = match id.kind {
                ItemKind::Block => match mode {
                    BlockRelay::Push => Delivery::Push,
                    BlockRelay::Announce => Delivery::Announce,
                    BlockRelay::HighBandwidth if p.wants_push || local => Delivery::Push,
                    BlockRelay::HighBandwidth => Delivery::Announce,
                },
                ItemKind::Tx => match txs {
                    TxRelay::Push => Delivery::Push,
                    TxRelay::Announce => Delivery::Announce,
                },
                _ => Delivery::Push,
            };
            let cost = if delivery == Delivery::Announce {
                ANNOUNCE_BYTES
            } else {
                bytes
            };
            Self::enqueue(p, &mut self.counters, now_ms, id, delivery, cost);
        }
    }

    fn enqueue(
        p: &mut Peer,
        counters: &mut RelayCounters,
        now_ms: u64,
        id: ItemId,
        delivery: Delivery,
        bytes: u32,
    ) {
        // Marked known at once: the item is on its way and never queued twice.
        p.known.insert(id, Known::ToPeer);
        if id.kind == ItemKind::Tx && p.queue.class_len(Class::Low) == 0 {
            // A new batch starts waiting.
            p.tx_since_ms = now_ms;
        }
        if let Some(dropped) = p.queue.push(Queued {
            id,
            delivery,
            bytes,
        }) {
            counters.queue_dropped[dropped.id.kind.index()] += 1;
            // It never left: the peer does not have it.
            p.known.remove(&dropped.id);
        }
    }

    /// A peer delivered a new block first: it climbs the high-bandwidth ranking.
    fn credit(&mut self, now_ms: u64, from: PeerId, out: &mut Vec<RelayAction>) {
        for (id, p) in &mut self.peers {
            p.credit = p.credit * 7 / 8;
            if *id == from {
                p.credit += CREDIT;
            }
        }
        self.choose_pushers(now_ms, out);
    }

    /// In `HighBandwidth` mode, asks the best-ranked peers to push and the rest to announce.
    fn choose_pushers(&mut self, now_ms: u64, out: &mut Vec<RelayAction>) {
        if self.config.blocks != BlockRelay::HighBandwidth {
            return;
        }
        let wanted = self.config.high_bandwidth_peers.min(self.peers.len());
        if self.pushers.len() >= wanted && now_ms < self.next_review_ms {
            return;
        }
        self.next_review_ms = now_ms.saturating_add(PUSHER_REVIEW_MS);
        let mut ranked: Vec<(PeerId, u64, bool)> = self
            .peers
            .iter()
            .map(|(id, p)| (*id, p.credit, self.pushers.contains(id)))
            .collect();
        // Most credit first; on a tie the current choice stays (no flapping), then lower ids.
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        let chosen: BTreeSet<PeerId> = ranked
            .iter()
            .take(self.config.high_bandwidth_peers)
            .map(|r| r.0)
            .collect();
        for peer in self.pushers.difference(&chosen) {
            if self.peers.contains_key(peer) {
                out.push(RelayAction::SetPush {
                    peer: *peer,
                    push: false,
                });
            }
        }
        for peer in chosen.difference(&self.pushers) {
            out.push(RelayAction::SetPush {
                peer: *peer,
                push: true,
            });
        }
        self.pushers = chosen;
    }

    fn refetch(&mut self, now_ms: u64, id: ItemId, out: &mut Vec<RelayAction>) {
        let Some(mut f) = self.fetches.remove(&id) else {
            return;
        };
        if self.seen.contains(&id) {
            return;
        }
        while !f.others.is_empty() {
            let next = f.others.remove(0);
            let Some(p) = self.peers.get_mut(&next) else {
                continue;
            };
            match id.kind {
                ItemKind::Block => out.push(RelayAction::FetchBlock {
                    peer: next,
                    hash: id.hash,
                }),
                _ => p.tx_fetch.push(id.hash),
            }
            self.counters.fetched[id.kind.index()] += 1;
            f.peer = next;
            f.sent_ms = now_ms;
            self.fetches.insert(id, f);
            return;
        }
    }

    fn on_tick(&mut self, now_ms: u64, out: &mut Vec<RelayAction>) {
        let timeout = self.config.fetch_timeout_ms;
        let late: Vec<ItemId> = self
            .fetches
            .iter()
            .filter(|(_, f)| now_ms.saturating_sub(f.sent_ms) >= timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.counters.fetch_timeouts += 1;
            self.refetch(now_ms, id, out);
        }
    }

    /// Sends what the queues and rates allow: every block-class item at once, transfers in
    /// batches once they are full or `tx_batch_ms` old. The peers take turns going first: a
    /// flush starts after the last peer the previous one sent to, so a node-wide cap reaches
    /// every peer.
    fn flush(&mut self, now_ms: u64, out: &mut Vec<RelayAction>) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        let start = self
            .last_sent
            .map_or(0, |last| ids.partition_point(|p| *p <= last) % ids.len());
        let txs = self.config.txs;
        let limit = Self::batch_limit(txs);
        let batch_ms = self.config.tx_batch_ms;
        let compact = self.config.compact_blocks;
        for &peer in ids[start..].iter().chain(&ids[..start]) {
            let Some(p) = self.peers.get_mut(&peer) else {
                continue;
            };
            if !p.tx_fetch.is_empty() {
                for chunk in std::mem::take(&mut p.tx_fetch).chunks(MAX_TX_IDS_PER_MESSAGE) {
                    out.push(RelayAction::FetchTxs {
                        peer,
                        ids: chunk.to_vec(),
                    });
                }
            }
            let mut sent = false;
            while let Some(next) = p.queue.peek().copied() {
                if next.id.kind == ItemKind::Tx {
                    // Transfers (the lowest class, so nothing else waits) wait in the queue,
                    // within its bound, until their batch is full or old enough; the batch is
                    // paced as a whole.
                    let waiting = p.queue.class_len(Class::Low);
                    let due = waiting >= limit || now_ms.saturating_sub(p.tx_since_ms) >= batch_ms;
                    if !due
                        || !Self::send_batch(
                            &mut self.counters,
                            &mut self.throttle,
                            p,
                            peer,
                            now_ms,
                            txs,
                            out,
                        )
                    {
                        break;
                    }
                    sent = true;
                    continue;
                }
                if !Self::allow(
                    &mut self.throttle,
                    &mut p.throttle,
                    now_ms,
                    u64::from(next.bytes),
                ) {
                    break;
                }
                if compact && next.id.kind == ItemKind::Block && next.delivery == Delivery::Push {
                    // The transfers waiting for their batch go first, so the peer holds the
                    // transfers of the block it rebuilds from the compact push that follows
                    // (the link keeps the order). One batch at most, and only if the rates
                    // allow: a backlog of transfers never holds a block back.
                    if p.queue.class_len(Class::Low) > 0 {
                        Self::send_batch(
                            &mut self.counters,
                            &mut self.throttle,
                            p,
                            peer,
                            now_ms,
                            txs,
                            out,
                        );
                    }
                }
                p.queue.pop();
                match next.delivery {
                    Delivery::Push => self.counters.pushed[next.id.kind.index()] += 1,
                    Delivery::Announce => self.counters.announcements[next.id.kind.index()] += 1,
                }
                out.push(RelayAction::Send {
                    peer,
                    id: next.id,
                    delivery: next.delivery,
                });
                sent = true;
            }
            if sent {
                self.last_sent = Some(peer);
            }
        }
    }

    /// Most transfers (or ids) in one batch.
    const fn batch_limit(txs: TxRelay) -> usize {
        match txs {
            TxRelay::Push => MAX_TXS_PER_MESSAGE,
            TxRelay::Announce => MAX_TX_IDS_PER_MESSAGE,
        }
    }

    /// Sends the oldest of `p`'s queued transfers, as many as a message takes, as one batch if
    /// the rates allow; returns whether it went.
    fn send_batch(
        counters: &mut RelayCounters,
        global: &mut Option<ByteThrottle>,
        p: &mut Peer,
        peer: PeerId,
        now_ms: u64,
        txs: TxRelay,
        out: &mut Vec<RelayAction>,
    ) -> bool {
        let limit = Self::batch_limit(txs);
        let delivery = match txs {
            TxRelay::Push => Delivery::Push,
            TxRelay::Announce => Delivery::Announce,
        };
        let bytes = p.queue.front_bytes(Class::Low, limit);
        if !Self::allow(global, &mut p.throttle, now_ms, bytes) {
            return false;
        }
        let ids: Vec<Hash> = std::iter::from_fn(|| p.queue.pop_class(Class::Low))
            .take(limit)
            .map(|q| q.id.hash)
            .collect();
        // What is left starts a new batch.
        p.tx_since_ms = now_ms;
        let counter = match delivery {
            Delivery::Push => &mut counters.pushed,
            Delivery::Announce => &mut counters.announcements,
        };
        counter[ItemKind::Tx.index()] += ids.len() as u64;
        out.push(RelayAction::SendTxs {
            peer,
            ids,
            delivery,
        });
        true
    }

    /// Whether the node-wide and the peer's upload rates allow `bytes` now (charging both).
    fn allow(
        global: &mut Option<ByteThrottle>,
        peer: &mut Option<ByteThrottle>,
        now_ms: u64,
        bytes: u64,
    ) -> bool {
        let waiting = global.as_mut().is_some_and(|t| t.wait_at(now_ms) > 0)
            || peer.as_mut().is_some_and(|t| t.wait_at(now_ms) > 0);
        if waiting {
            return false;
        }
        if let Some(t) = global.as_mut() {
            t.charge(now_ms, bytes);
        }
        if let Some(t) = peer.as_mut() {
            t.charge(now_ms, bytes);
        }
        true
    }
}

/// Wire bytes of a `BlockAnnounce`, for pacing.
const ANNOUNCE_BYTES: u32 = 75;
