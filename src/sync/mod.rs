//! Headers-first sync as a sans-IO state machine: how a node that starts empty, or comes back
//! after a week offline, catches up with its peers (after Bitcoin Core's net_processing).
//!
//! The sync actor feeds [`SyncInput`]s (peer claims from `Hello` and announcements, network
//! answers, import results, a fresh [`SyncView`] of the chain after every import, a `Tick` every
//! ~500 ms) into [`SyncState::handle`] with the time, and carries out the [`SyncAction`]s.
//!
//! *Headers.* While a peer claims more cumulative work than our best header (initial block
//! download), one `GetHeaders` is in flight node-wide, to the peer with the most claimed work
//! that has not shown it yet. A full batch (2000) asks it again; a short one means it has shown
//! its chain, and a peer that showed less work than it claimed is penalized `UnprovenWork` and
//! no longer believed. Once no peer claims more, one peer (round robin) is polled every
//! `poll_interval_ms` so the node follows the network without relay.
//!
//! *Bodies.* The chain reports up to `window` (1024) header-only blocks above the tip. They
//! are spread over every peer whose height reaches them, `request_batch` (128, the wire limit)
//! per request, at most `per_peer_in_flight` (256) per peer, refilled at half so a fast peer
//! never idles. Bodies that continue the tip go to one outstanding `Import` (at most
//! `max_import`), in a batch transaction when far behind. The window bounds memory: nothing
//! beyond it is requested, kept in flight or held as a body.
//!
//! *Stalls.* When the window cannot move because its lowest block is in flight from a slow
//! peer while another peer sits idle, the slow one is dropped after the stall timeout (2 s,
//! doubled per stall up to 64 s so a slow network does not drop everyone, decayed by x0.85 per
//! connected block). An unanswered request is re-requested elsewhere after `block_timeout_ms`.
//!
//! Unasked `Headers`: [`SyncState::expects_headers`] is false; the actor still reports
//! `HeadersReceived` (and does not import the batch), which answers `Penalize UnexpectedMessage`,
//! except for the one late answer of a peer whose request already timed out.

pub mod progress;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::Height;
use crate::hash::Hash;
use crate::p2p::{Misbehavior, PeerId};
use crate::target::Work;
use crate::wire::{MAX_BLOCKS_PER_REQUEST, MAX_HEADERS_PER_MESSAGE};

pub use progress::ProgressMeter;

fn penalize(peer: PeerId, what: Misbehavior) -> SyncAction {
    SyncAction::Penalize { peer, what }
}

/// Unsolicited blocks imported per peer per second; more are discarded.
pub const UNSOLICITED_PER_SEC: u32 = 3;

/// A block on the chain: its hash, height and the cumulative work up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// The block hash.
    pub hash: Hash,
    /// Its height.
    pub height: Height,
    /// Cumulative chain work up to and including it.
    pub work: Work,
}

/// What the chain reports, fresh after every import and header import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncView {
    /// The last block with its state applied.
    pub tip: BlockRef,
    /// End of the best verified header chain (`== tip` when none is ahead).
    pub best_header: BlockRef,
    /// Header-only blocks on the best header chain from `tip + 1` upward, ascending height, at
    /// most `window` of them.
    pub missing: Vec<(Hash, Height)>,
}

impl SyncView {
    fn gap(&self) -> u64 {
        self.best_header.height.saturating_sub(self.tip.height)
    }
}

/// What became of one `Headers` batch the actor imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersReport {
    /// Verified and stored (or all already known; an empty batch reports our best header, 0).
    Stored {
        /// The batch's last header.
        last: BlockRef,
        /// Headers that were new.
        count: usize,
    },
    /// Verified, but its chain does not have more work than ours yet: held in memory.
    Pending {
        /// The batch's last header.
        last: BlockRef,
        /// Headers that were new.
        count: usize,
    },
    /// A header broke a consensus rule.
    Invalid,
    /// The first header's parent is unknown or the batch is not a chain.
    NotConnecting,
    /// A low-work chain exceeded the pending bound.
    TooManyPending,
    /// Header storage ahead of the tip is at its bound: not the peer's fault.
    Full,
}

/// The outcome of importing one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReport {
    /// Connected to the chain.
    Connected,
    /// The body does not match its header: the sender lied, the header stays good.
    BodyMismatch,
    /// The block broke a state rule.
    Invalid,
    /// A local error (storage): nobody's fault.
    Failed,
}

/// Something the actor tells the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncInput {
    /// A peer's `Hello`.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Cumulative work it claims.
        work: Work,
        /// Height it claims.
        height: Height,
    },
    /// A later announcement of a peer's chain.
    PeerAnnounced {
        /// The peer.
        peer: PeerId,
        /// Cumulative work it claims.
        work: Work,
        /// Height it claims.
        height: Height,
    },
    /// A peer relayed a block whose parent we do not have: ask it for headers now rather than
    /// at the next poll.
    PeerAhead {
        /// The peer.
        peer: PeerId,
    },
    /// A peer's session ended.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A fresh view of the chain.
    View(SyncView),
    /// A `Headers` message arrived (before verification).
    HeadersReceived {
        /// The sender.
        peer: PeerId,
        /// Headers in it.
        count: usize,
    },
    /// The actor imported a `Headers` batch.
    HeadersImported {
        /// The sender.
        peer: PeerId,
        /// What became of it.
        report: HeadersReport,
        /// Headers in the message.
        batch_len: usize,
    },
    /// A block body arrived (stored by the actor when [`SyncState::is_expected_block`]).
    BlockReceived {
        /// The sender.
        peer: PeerId,
        /// The block hash.
        hash: Hash,
    },
    /// A peer does not have these requested blocks.
    NotFound {
        /// The sender.
        peer: PeerId,
        /// The blocks it lacks.
        hashes: Vec<Hash>,
    },
    /// The answer to the last `Import`, in order (may stop early after a failure).
    Imported {
        /// Each block's outcome.
        results: Vec<(Hash, BlockReport)>,
    },
    /// Time passed (every ~500 ms).
    Tick,
}

/// Something the actor should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAction {
    /// Send `GetHeaders`.
    RequestHeaders {
        /// To whom.
        peer: PeerId,
        /// `None`: a locator from our best header; `Some(h)`: continue a pending chain after `h`.
        after: Option<Hash>,
    },
    /// Send `GetBlocks`.
    RequestBlocks {
        /// To whom.
        peer: PeerId,
        /// At most `request_batch` hashes, ascending height.
        hashes: Vec<Hash>,
    },
    /// Import stored bodies, contiguous from `tip + 1`, in order; answer with `Imported`.
    Import {
        /// The blocks.
        hashes: Vec<Hash>,
        /// Commit many blocks per transaction (far from the best header).
        batch: bool,
    },
    /// Import a block nobody asked for on its own (no `Imported` answer expected).
    ImportUnsolicited {
        /// The sender.
        peer: PeerId,
        /// The block.
        hash: Hash,
    },
    /// Send a fresh `View`.
    RefreshView,
    /// Bodies that may be dropped (bad, or no longer wanted).
    Discard {
        /// The blocks.
        hashes: Vec<Hash>,
    },
    /// Score a misbehaviour.
    Penalize {
        /// The peer.
        peer: PeerId,
        /// What it did.
        what: Misbehavior,
    },
    /// Drop a staller (no ban).
    Disconnect {
        /// The peer.
        peer: PeerId,
    },
    /// Tell the operator.
    Warn(SyncWarning),
}

/// Conditions worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncWarning {
    /// Peers are ahead but the tip has not moved.
    NoProgress {
        /// For how long, ms.
        for_ms: u64,
        /// The height we are trying to reach.
        peers_height: Height,
        /// Our tip.
        tip_height: Height,
    },
}

/// Tuning; see the module docs for why these values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// Most header-only blocks above the tip considered for download.
    pub window: usize,
    /// Most block requests in flight to one peer.
    pub per_peer_in_flight: usize,
    /// Most hashes per `RequestBlocks` (capped at the wire limit).
    pub request_batch: usize,
    /// Initial stall timeout, ms.
    pub stall_timeout_ms: u64,
    /// Cap of the stall timeout, ms.
    pub max_stall_timeout_ms: u64,
    /// A peer that delivers nothing this long while blocks are in flight times out, ms.
    pub block_timeout_ms: u64,
    /// A headers request unanswered this long times out, ms.
    pub headers_timeout_ms: u64,
    /// Interval of the headers poll while no peer claims more work, ms.
    pub poll_interval_ms: u64,
    /// `Import` uses batch transactions when the best header is more than this far ahead.
    pub batch_distance: u64,
    /// Most hashes in one `Import`.
    pub max_import: usize,
    /// Warn when peers are ahead and the tip has not moved this long, ms.
    pub no_progress_warn_ms: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            window: 1024,
            per_peer_in_flight: 256,
            request_batch: 128,
            stall_timeout_ms: 2_000,
            max_stall_timeout_ms: 64_000,
            block_timeout_ms: 20_000,
            headers_timeout_ms: 30_000,
            poll_interval_ms: 10_000,
            batch_distance: 32,
            max_import: 512,
            no_progress_warn_ms: 300_000,
        }
    }
}

/// Broad sync phase, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPhase {
    /// No view or no peers.
    Idle,
    /// A peer claims more work than our best header.
    Headers,
    /// Headers are ahead of the tip: downloading bodies.
    Blocks,
    /// Caught up.
    Synced,
}

/// A snapshot for status displays and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncStatus {
    /// Broad phase.
    pub phase: SyncPhase,
    /// Our tip's height.
    pub tip_height: Height,
    /// Our best header's height.
    pub header_height: Height,
    /// `max(best header, peers' claimed heights)`.
    pub target_height: Height,
    /// Tip over target in 1/1000 (1000 when synced).
    pub permille: u32,
    /// Recent blocks per second (display only).
    pub blocks_per_sec: f64,
    /// Estimated seconds to the target.
    pub eta_secs: Option<u64>,
    /// Block requests in flight.
    pub in_flight: usize,
    /// Connected peers.
    pub peers: usize,
    /// Current stall timeout, ms.
    pub stall_timeout_ms: u64,
    /// How long peers have been ahead without the tip moving, ms.
    pub no_progress_ms: u64,
    /// Initial block download: a peer claims more work, or the tip is far behind the headers.
    pub in_ibd: bool,
}

/// Per-peer counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerSyncStats {
    /// Block bodies received.
    pub blocks_received: u64,
    /// Headers received.
    pub headers_received: u64,
    /// Block requests in flight.
    pub in_flight: usize,
}

#[derive(Debug, Clone)]
struct Peer {
    claimed_work: Work,
    claimed_height: Height,
    shown_work: Work,
    shown_height: Height,
    /// Its claims are no longer believed (unproven work, invalid headers).
    discredited: bool,
    /// Told to disconnect; waiting for `PeerDisconnected`.
    gone: bool,
    headers_failures: u32,
    /// Its headers request timed out: one late answer is dropped without a penalty.
    late_headers: bool,
    in_flight: usize,
    /// Last block or `NotFound` from it, ms.
    last_answer_ms: u64,
    /// Blocks not to ask it for until the given time (`NotFound`, timed out).
    avoid: BTreeMap<Hash, u64>,
    stats: PeerSyncStats,
    unsolicited_since_ms: u64,
    unsolicited: u32,
}

impl Peer {
    fn new(now_ms: u64) -> Self {
        Self {
            claimed_work: Work::ZERO,
            claimed_height: 0,
            shown_work: Work::ZERO,
            shown_height: 0,
            discredited: false,
            gone: false,
            headers_failures: 0,
            late_headers: false,
            in_flight: 0,
            last_answer_ms: now_ms,
            avoid: BTreeMap::new(),
            stats: PeerSyncStats::default(),
            unsolicited_since_ms: now_ms,
            unsolicited: 0,
        }
    }

    /// The height it can serve blocks up to.
    fn height(&self) -> Height {
        if self.discredited {
            self.shown_height
        } else {
            self.claimed_height.max(self.shown_height)
        }
    }

    /// Work it claims and we still believe.
    fn credible_work(&self) -> Work {
        if self.discredited || self.gone {
            Work::ZERO
        } else {
            self.claimed_work
        }
    }

    fn can_serve(&self, hash: &Hash, height: Height, now_ms: u64) -> bool {
        !self.gone
            && self.height() >= height
            && self.avoid.get(hash).is_none_or(|until| now_ms >= *until)
    }

    fn allow_unsolicited(&mut self, now_ms: u64) -> bool {
        if now_ms.saturating_sub(self.unsolicited_since_ms) >= 1_000 {
            self.unsolicited_since_ms = now_ms;
            self.unsolicited = 0;
        }
        self.unsolicited += 1;
        self.unsolicited <= UNSOLICITED_PER_SEC
    }
}

#[derive(Debug, Clone, Copy)]
struct BlockRequest {
    peer: PeerId,
    sent_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct HeadersRequest {
    peer: PeerId,
    sent_ms: u64,
    /// `HeadersReceived` came: verification is under way, the timeout no longer runs.
    answered: bool,
}

/// The sync state machine; see the module docs.
#[derive(Debug)]
pub struct SyncState {
    config: SyncConfig,
    peers: BTreeMap<PeerId, Peer>,
    view: Option<SyncView>,
    /// The hashes of `view.missing`.
    window: BTreeSet<Hash>,
    headers: Option<HeadersRequest>,
    /// Headers paused by `Full` at this gap; resumed when it halves.
    paused_gap: Option<u64>,
    in_flight: BTreeMap<Hash, BlockRequest>,
    /// Bodies the actor holds, by who delivered them, until imported.
    received: BTreeMap<Hash, PeerId>,
    importing: Option<Vec<Hash>>,
    stall_timeout_ms: u64,
    stalling_since_ms: Option<u64>,
    last_poll_ms: u64,
    poll_cursor: Option<PeerId>,
    /// A peer to ask for headers at once (it relayed a block we cannot connect).
    poll_now: Option<PeerId>,
    /// Last time the tip moved or nobody was ahead.
    progress_ms: u64,
    last_warn_ms: Option<u64>,
    meter: ProgressMeter,
}

impl SyncState {
    /// A machine with no peers; feed it a `View` first.
    pub fn new(mut config: SyncConfig, now_ms: u64) -> Self {
        config.request_batch = config.request_batch.clamp(1, MAX_BLOCKS_PER_REQUEST);
        config.per_peer_in_flight = config.per_peer_in_flight.max(1);
        Self {
            stall_timeout_ms: config.stall_timeout_ms,
            config,
            peers: BTreeMap::new(),
            view: None,
            window: BTreeSet::new(),
            headers: None,
            paused_gap: None,
            in_flight: BTreeMap::new(),
            received: BTreeMap::new(),
            importing: None,
            stalling_since_ms: None,
            last_poll_ms: now_ms,
            poll_cursor: None,
            poll_now: None,
            progress_ms: now_ms,
            last_warn_ms: None,
            meter: ProgressMeter::new(),
        }
    }

    /// Handles one input and returns what to do, in order.
    pub fn handle(&mut self, now_ms: u64, input: SyncInput) -> Vec<SyncAction> {
        let mut out = Vec::new();
        match input {
            SyncInput::PeerConnected { peer, work, height } => {
                let p = self.peers.entry(peer).or_insert_with(|| Peer::new(now_ms));
                p.claimed_work = work;
                p.claimed_height = height;
            }
            SyncInput::PeerAnnounced { peer, work, height } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.claimed_work = p.claimed_work.max(work);
                    p.claimed_height = p.claimed_height.max(height);
                }
            }
            SyncInput::PeerAhead { peer } => {
                if self
                    .peers
                    .get(&peer)
                    .is_some_and(|p| !p.gone && !p.discredited)
                {
                    self.poll_now = Some(peer);
                    self.poll(now_ms, &mut out);
                }
            }
            SyncInput::PeerDisconnected { peer } => {
                if self.poll_now == Some(peer) {
                    self.poll_now = None;
                }
                self.release_peer(peer, None);
                self.peers.remove(&peer);
                if self.headers.is_some_and(|r| r.peer == peer) {
                    self.headers = None;
                }
            }
            SyncInput::View(view) => self.on_view(now_ms, view, &mut out),
            SyncInput::HeadersReceived { peer, count } => {
                self.on_headers_received(peer, count, &mut out);
            }
            SyncInput::HeadersImported {
                peer,
                report,
                batch_len,
            } => self.on_headers_imported(now_ms, peer, report, batch_len, &mut out),
            SyncInput::BlockReceived { peer, hash } => self.on_block(now_ms, peer, hash, &mut out),
            SyncInput::NotFound { peer, hashes } => {
                let until = now_ms.saturating_add(self.config.block_timeout_ms);
                for hash in hashes {
                    if self.in_flight.get(&hash).is_some_and(|r| r.peer == peer) {
                        self.release(&hash);
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.avoid.insert(hash, until);
                        }
                    }
                }
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.last_answer_ms = now_ms;
                }
            }
            SyncInput::Imported { results } => self.on_imported(now_ms, results, &mut out),
            SyncInput::Tick => self.on_tick(now_ms, &mut out),
        }
        if self.view.is_some() {
            self.request_headers(now_ms, &mut out);
            self.assign_blocks(now_ms, &mut out);
            self.start_import(&mut out);
        }
        if !self.behind() {
            self.progress_ms = now_ms;
            self.last_warn_ms = None;
        }
        out
    }

    /// Whether a body from `peer` is wanted (in the window, not yet held): the actor stores it
    /// only then. Any peer's copy is taken; a bad one is caught at import and costs the sender.
    pub fn is_expected_block(&self, peer: PeerId, hash: &Hash) -> bool {
        self.peers.contains_key(&peer) && !self.received.contains_key(hash) && self.in_window(hash)
    }

    /// Whether a `Headers` answer from `peer` is awaited.
    pub fn expects_headers(&self, peer: PeerId) -> bool {
        self.headers.is_some_and(|r| r.peer == peer && !r.answered)
    }

    /// A snapshot for display.
    pub fn status(&self, now_ms: u64) -> SyncStatus {
        let (tip, best) = self.tip_and_best();
        let target = self.target_height();
        let phase = if self.view.is_none() || !self.peers.values().any(|p| !p.gone) {
            SyncPhase::Idle
        } else if self.headers_needed() {
            SyncPhase::Headers
        } else if best.height > tip.height {
            SyncPhase::Blocks
        } else {
            SyncPhase::Synced
        };
        let permille = if phase == SyncPhase::Synced || tip.height >= target {
            1000
        } else {
            u32::try_from(u128::from(tip.height) * 1000 / u128::from(target)).unwrap_or(1000)
        };
        SyncStatus {
            phase,
            tip_height: tip.height,
            header_height: best.height,
            target_height: target,
            permille,
            blocks_per_sec: self.meter.blocks_per_sec(now_ms),
            eta_secs: self.meter.eta_secs(now_ms, target),
            in_flight: self.in_flight.len(),
            peers: self.peers.values().filter(|p| !p.gone).count(),
            stall_timeout_ms: self.stall_timeout_ms,
            no_progress_ms: if self.behind() {
                now_ms.saturating_sub(self.progress_ms)
            } else {
                0
            },
            in_ibd: self.headers_needed()
                || best.height.saturating_sub(tip.height) > self.config.batch_distance,
        }
    }

    /// Counters per peer, by peer id.
    pub fn peer_stats(&self) -> Vec<(PeerId, PeerSyncStats)> {
        self.peers
            .iter()
            .map(|(id, p)| {
                (
                    *id,
                    PeerSyncStats {
                        in_flight: p.in_flight,
                        ..p.stats
                    },
                )
            })
            .collect()
    }

    fn tip_and_best(&self) -> (BlockRef, BlockRef) {
        let zero = BlockRef {
            hash: Hash::ZERO,
            height: 0,
            work: Work::ZERO,
        };
        self.view
            .as_ref()
            .map_or((zero, zero), |v| (v.tip, v.best_header))
    }

    fn target_height(&self) -> Height {
        let peers = self.peers.values().filter(|p| !p.gone).map(Peer::height);
        peers.fold(self.tip_and_best().1.height, Height::max)
    }

    /// A believed peer claims more work than our best header and has not shown it.
    fn headers_needed(&self) -> bool {
        self.headers_candidate().is_some()
    }

    fn headers_candidate(&self) -> Option<PeerId> {
        let best = self.tip_and_best().1.work;
        self.peers
            .iter()
            .filter(|(_, p)| p.credible_work() > best && p.credible_work() > p.shown_work)
            .min_by_key(|(id, p)| (p.headers_failures, Reverse(p.claimed_work), **id))
            .map(|(id, _)| *id)
    }

    /// Someone (a believed peer or our own headers) has more work than our tip.
    fn behind(&self) -> bool {
        let (tip, best) = self.tip_and_best();
        best.work > tip.work || self.peers.values().any(|p| p.credible_work() > tip.work)
    }

    fn in_window(&self, hash: &Hash) -> bool {
        self.window.contains(hash)
    }

    /// Takes a block request back into the pool.
    fn release(&mut self, hash: &Hash) {
        if let Some(r) = self.in_flight.remove(hash)
            && let Some(p) = self.peers.get_mut(&r.peer)
        {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
    }

    /// Takes all of `peer`'s requests back; `avoid_until` marks them not to ask it again soon.
    fn release_peer(&mut self, peer: PeerId, avoid_until: Option<u64>) {
        let hashes: Vec<Hash> = self
            .in_flight
            .iter()
            .filter(|(_, r)| r.peer == peer)
            .map(|(h, _)| *h)
            .collect();
        for hash in hashes {
            self.release(&hash);
            if let Some(until) = avoid_until
                && let Some(p) = self.peers.get_mut(&peer)
            {
                p.avoid.insert(hash, until);
            }
        }
    }

    fn on_view(&mut self, now_ms: u64, mut view: SyncView, out: &mut Vec<SyncAction>) {
        view.missing.truncate(self.config.window);
        if let Some(paused) = self.paused_gap
            && (view.gap() == 0 || view.gap().saturating_mul(2) < paused)
        {
            self.paused_gap = None;
        }
        if self.view.as_ref().is_none_or(|v| v.tip != view.tip) {
            self.progress_ms = now_ms;
            self.last_warn_ms = None;
            self.meter.feed(now_ms, view.tip.height);
        }
        let wanted: BTreeSet<Hash> = view.missing.iter().map(|(h, _)| *h).collect();
        let stale: Vec<Hash> = self
            .in_flight
            .keys()
            .filter(|h| !wanted.contains(h))
            .copied()
            .collect();
        for hash in &stale {
            self.release(hash);
        }
        let importing: BTreeSet<Hash> = self.importing.iter().flatten().copied().collect();
        let drop: Vec<Hash> = self
            .received
            .keys()
            .filter(|h| !wanted.contains(h) && !importing.contains(h))
            .copied()
            .collect();
        for hash in &drop {
            self.received.remove(hash);
        }
        if !drop.is_empty() {
            out.push(SyncAction::Discard { hashes: drop });
        }
        for p in self.peers.values_mut() {
            p.avoid
                .retain(|h, until| wanted.contains(h) && *until > now_ms);
        }
        self.window = wanted;
        self.view = Some(view);
    }

    fn on_headers_received(&mut self, peer: PeerId, count: usize, out: &mut Vec<SyncAction>) {
        if let Some(r) = self.headers.as_mut()
            && r.peer == peer
            && !r.answered
        {
            r.answered = true;
            if let Some(p) = self.peers.get_mut(&peer) {
                p.stats.headers_received += count as u64;
            }
            return;
        }
        match self.peers.get_mut(&peer) {
            Some(p) if p.late_headers => p.late_headers = false,
            _ => out.push(penalize(peer, Misbehavior::UnexpectedMessage)),
        }
    }

    fn on_headers_imported(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        report: HeadersReport,
        batch_len: usize,
        out: &mut Vec<SyncAction>,
    ) {
        if self.headers.is_none_or(|r| r.peer != peer) {
            return;
        }
        self.headers = None;
        let (_, best) = self.tip_and_best();
        let gap = self.view.as_ref().map_or(0, SyncView::gap);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        match report {
            HeadersReport::Stored { last, count } | HeadersReport::Pending { last, count } => {
                let advanced = last.height > p.shown_height;
                p.shown_work = p.shown_work.max(last.work);
                p.shown_height = p.shown_height.max(last.height);
                if batch_len >= MAX_HEADERS_PER_MESSAGE && advanced {
                    // Continue after the batch's last header: the view (and its locator) may
                    // not show the batch just stored yet.
                    return self.ask_headers(now_ms, peer, Some(last.hash), out);
                }
                // A short batch: the peer has shown its whole chain.
                if count == 0 {
                    p.shown_work = p.shown_work.max(best.work);
                }
                if p.shown_work < p.claimed_work && !p.discredited {
                    p.discredited = true;
                    out.push(penalize(peer, Misbehavior::UnprovenWork));
                }
            }
            HeadersReport::Invalid => {
                p.discredited = true;
                out.push(penalize(peer, Misbehavior::InvalidBlock));
            }
            HeadersReport::NotConnecting => {
                p.headers_failures += 1;
                out.push(penalize(peer, Misbehavior::NonConnectingHeaders));
            }
            HeadersReport::TooManyPending => {
                p.discredited = true;
                out.push(penalize(peer, Misbehavior::UnprovenWork));
            }
            HeadersReport::Full => self.paused_gap = Some(gap),
        }
    }

    fn on_block(&mut self, now_ms: u64, peer: PeerId, hash: Hash, out: &mut Vec<SyncAction>) {
        if self.received.contains_key(&hash) {
            return; // a second copy: the first one stays
        }
        let wanted = self.in_window(&hash);
        if wanted && self.peers.contains_key(&peer) {
            self.release(&hash);
            self.received.insert(hash, peer);
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            out.push(SyncAction::Discard { hashes: vec![hash] });
            return;
        };
        if wanted {
            p.stats.blocks_received += 1;
            p.last_answer_ms = now_ms;
        } else if p.allow_unsolicited(now_ms) {
            out.push(SyncAction::ImportUnsolicited { peer, hash });
        } else {
            out.push(SyncAction::Discard { hashes: vec![hash] });
        }
    }

    fn on_imported(
        &mut self,
        now_ms: u64,
        results: Vec<(Hash, BlockReport)>,
        out: &mut Vec<SyncAction>,
    ) {
        self.importing = None;
        let mut discard = Vec::new();
        let mut connected = BTreeSet::new();
        for (hash, report) in results {
            let sender = self.received.remove(&hash);
            match report {
                BlockReport::Connected => {
                    connected.insert(hash);
                    if self.stalling_since_ms.is_none() {
                        let decayed = self.stall_timeout_ms.saturating_mul(85) / 100;
                        self.stall_timeout_ms = decayed.max(self.config.stall_timeout_ms);
                    }
                    continue;
                }
                BlockReport::BodyMismatch | BlockReport::Invalid => {
                    if let Some(peer) = sender {
                        out.push(penalize(peer, Misbehavior::InvalidBlock));
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.discredited = true;
                            let until = now_ms.saturating_add(self.config.block_timeout_ms);
                            p.avoid.insert(hash, until);
                        }
                    }
                }
                BlockReport::Failed => {}
            }
            discard.push(hash);
        }
        // Until the next view, the blocks just connected are no longer missing: never ask for
        // them again.
        if !connected.is_empty() {
            if let Some(view) = self.view.as_mut() {
                view.missing.retain(|(h, _)| !connected.contains(h));
            }
            self.window.retain(|h| !connected.contains(h));
        }
        if !discard.is_empty() {
            out.push(SyncAction::Discard { hashes: discard });
            out.push(SyncAction::RefreshView);
        }
    }

    fn on_tick(&mut self, now_ms: u64, out: &mut Vec<SyncAction>) {
        if self.view.is_none() {
            out.push(SyncAction::RefreshView);
            return;
        }
        if let Some(r) = self.headers
            && !r.answered
            && now_ms.saturating_sub(r.sent_ms) >= self.config.headers_timeout_ms
        {
            self.headers = None;
            if let Some(p) = self.peers.get_mut(&r.peer) {
                p.headers_failures += 1;
                p.late_headers = true;
            }
            out.push(penalize(r.peer, Misbehavior::Timeout));
        }
        self.check_block_timeouts(now_ms, out);
        self.check_stall(now_ms, out);
        self.poll(now_ms, out);
        if self.behind() {
            let for_ms = now_ms.saturating_sub(self.progress_ms);
            let interval = self.config.no_progress_warn_ms;
            if for_ms >= interval
                && self
                    .last_warn_ms
                    .is_none_or(|w| now_ms.saturating_sub(w) >= interval)
            {
                self.last_warn_ms = Some(now_ms);
                out.push(SyncAction::Warn(SyncWarning::NoProgress {
                    for_ms,
                    peers_height: self.target_height(),
                    tip_height: self.tip_and_best().0.height,
                }));
            }
        }
    }

    /// A peer with blocks in flight that has answered nothing for `block_timeout_ms` loses
    /// all of them to other peers.
    fn check_block_timeouts(&mut self, now_ms: u64, out: &mut Vec<SyncAction>) {
        let mut oldest: BTreeMap<PeerId, u64> = BTreeMap::new();
        for r in self.in_flight.values() {
            let e = oldest.entry(r.peer).or_insert(r.sent_ms);
            *e = (*e).min(r.sent_ms);
        }
        for (peer, sent_ms) in oldest {
            let last = self.peers.get(&peer).map_or(0, |p| p.last_answer_ms);
            if now_ms.saturating_sub(sent_ms.max(last)) >= self.config.block_timeout_ms {
                out.push(penalize(peer, Misbehavior::Timeout));
                let until = now_ms.saturating_add(self.config.block_timeout_ms);
                self.release_peer(peer, Some(until));
            }
        }
    }

    /// Bitcoin Core's staller rule: the window's lowest block holds everything up while
    /// another peer could take work.
    fn check_stall(&mut self, now_ms: u64, out: &mut Vec<SyncAction>) {
        let Some(view) = self.view.as_ref() else {
            return;
        };
        let first = view
            .missing
            .iter()
            .find(|(h, _)| !self.received.contains_key(h));
        let stalled = first.and_then(|(hash, height)| {
            let r = self.in_flight.get(hash)?;
            let blocked = view
                .missing
                .iter()
                .all(|(h, _)| self.in_flight.contains_key(h) || self.received.contains_key(h));
            let other = self.peers.iter().any(|(id, p)| {
                *id != r.peer
                    && !p.gone
                    && p.in_flight < self.config.per_peer_in_flight
                    && p.height() >= *height
            });
            (blocked && other).then_some(*r)
        });
        let Some(r) = stalled else {
            self.stalling_since_ms = None;
            return;
        };
        let since = *self.stalling_since_ms.get_or_insert(now_ms);
        if now_ms.saturating_sub(r.sent_ms.max(since)) < self.stall_timeout_ms {
            return;
        }
        self.stalling_since_ms = None;
        self.stall_timeout_ms = self
            .stall_timeout_ms
            .saturating_mul(2)
            .min(self.config.max_stall_timeout_ms);
        self.release_peer(r.peer, None);
        if let Some(p) = self.peers.get_mut(&r.peer) {
            p.gone = true;
        }
        if self.headers.is_some_and(|h| h.peer == r.peer) {
            self.headers = None;
        }
        out.push(SyncAction::Disconnect { peer: r.peer });
    }

    /// While no peer claims more work, asks one peer per interval, round robin, or at once the
    /// peer that relayed a block we could not connect.
    fn poll(&mut self, now_ms: u64, out: &mut Vec<SyncAction>) {
        if self.headers.is_some() || self.paused_gap.is_some() || self.headers_needed() {
            return;
        }
        if let Some(peer) = self.poll_now.take() {
            self.last_poll_ms = now_ms;
            return self.ask_headers(now_ms, peer, None, out);
        }
        if now_ms.saturating_sub(self.last_poll_ms) < self.config.poll_interval_ms {
            return;
        }
        let usable = |(id, p): (&PeerId, &Peer)| (!p.gone && !p.discredited).then_some(*id);
        let after = self.poll_cursor.map_or(0, |c| c.0.saturating_add(1));
        let next = self.peers.range(PeerId(after)..).find_map(usable);
        let Some(peer) = next.or_else(|| self.peers.iter().find_map(usable)) else {
            return;
        };
        self.last_poll_ms = now_ms;
        self.poll_cursor = Some(peer);
        self.ask_headers(now_ms, peer, None, out);
    }

    fn ask_headers(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        after: Option<Hash>,
        out: &mut Vec<SyncAction>,
    ) {
        self.headers = Some(HeadersRequest {
            peer,
            sent_ms: now_ms,
            answered: false,
        });
        out.push(SyncAction::RequestHeaders { peer, after });
    }

    /// In initial block download, the one headers request goes to the best candidate.
    fn request_headers(&mut self, now_ms: u64, out: &mut Vec<SyncAction>) {
        if self.headers.is_some() || self.paused_gap.is_some() {
            return;
        }
        if let Some(peer) = self.headers_candidate() {
            self.ask_headers(now_ms, peer, None, out);
        }
    }

    /// Spreads the unrequested window over the peers that want work, one chunk per peer per
    /// round, lowest heights first.
    fn assign_blocks(&mut self, now_ms: u64, out: &mut Vec<SyncAction>) {
        let Some(view) = self.view.as_ref() else {
            return;
        };
        let mut todo: Vec<(Hash, Height)> = view
            .missing
            .iter()
            .filter(|(h, _)| !self.in_flight.contains_key(h) && !self.received.contains_key(h))
            .copied()
            .collect();
        let per_peer = self.config.per_peer_in_flight;
        let wanting: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.gone && p.in_flight <= per_peer / 2)
            .map(|(id, _)| *id)
            .collect();
        while !todo.is_empty() {
            let mut assigned = false;
            for id in &wanting {
                let Some(p) = self.peers.get_mut(id) else {
                    continue;
                };
                let room = per_peer
                    .saturating_sub(p.in_flight)
                    .min(self.config.request_batch);
                let mut chunk = Vec::new();
                todo.retain(|&(hash, height)| {
                    let take = chunk.len() < room && p.can_serve(&hash, height, now_ms);
                    if take {
                        chunk.push(hash);
                    }
                    !take
                });
                if chunk.is_empty() {
                    continue;
                }
                assigned = true;
                p.in_flight += chunk.len();
                for hash in &chunk {
                    let request = BlockRequest {
                        peer: *id,
                        sent_ms: now_ms,
                    };
                    self.in_flight.insert(*hash, request);
                }
                out.push(SyncAction::RequestBlocks {
                    peer: *id,
                    hashes: chunk,
                });
            }
            if !assigned {
                break;
            }
        }
    }

    /// One `Import` at a time, of the held bodies that continue the tip.
    fn start_import(&mut self, out: &mut Vec<SyncAction>) {
        let Some(view) = self.view.as_ref() else {
            return;
        };
        if self.importing.is_some() {
            return;
        }
        let hashes: Vec<Hash> = view
            .missing
            .iter()
            .take_while(|(h, _)| self.received.contains_key(h))
            .take(self.config.max_import)
            .map(|(h, _)| *h)
            .collect();
        if hashes.is_empty() {
            return;
        }
        let batch = view.gap() > self.config.batch_distance;
        self.importing = Some(hashes.clone());
        out.push(SyncAction::Import { hashes, batch });
    }
}
