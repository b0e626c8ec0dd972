//! The Sync actor: routes peers' headers, blocks and `NotFound` into the headers-first sync
//! state machine ([`spacetime::sync::SyncState`]) and carries out its actions: requests to
//! peers through the PeerManager, header batches and downloaded bodies to ChainState,
//! penalties for lying peers.
//!
//! The actor holds what the state machine only names: the bodies downloaded and not yet
//! imported, and each peer's low-work header chain ([`PendingHeaders`]). Header proofs are
//! checked through the spawner before ChainState sees a batch (split across the cores in
//! production), so ChainState only checks links and context; header batches are processed
//! one at a time, in arrival order.

pub mod metrics;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message as ActixMessage,
    MessageResult, Recipient, WrapFuture,
};
use spacetime::chain::{
    HeaderRef, HeadersError, HeadersOutcome, ImportError, ImportStatus, PendingHeaders,
    VerifiedHeaders,
};
use spacetime::genesis::GenesisConfig;
use spacetime::p2p::{Misbehavior, PeerId};
use spacetime::sync::{
    BlockRef, BlockReport, HeadersReport, SyncAction, SyncConfig, SyncInput, SyncState, SyncStatus,
    SyncView as CoreView, SyncWarning,
};
use spacetime::target::Work;
use spacetime::wire::{
    DisconnectReason, GetBlocks, GetHeaders, MAX_HEADERS_PER_MESSAGE, MAX_LOCATOR_HASHES, Message,
};
use spacetime::{Block, BlockHeader, BoundedVec, Hash};

use crate::chain::ImportBlock;
use crate::chain::download::{GetSyncView, ImportBlocks, ImportHeaders, SyncView};
use crate::clock::Clock;
use crate::lifecycle::Stop;
use crate::p2p::{
    ChainTip, DisconnectPeer, PeerChainMessage, PeerEvent, PeerNotification, PenalizePeer,
    SendToPeer, UpdateTip,
};
use crate::spawn::Spawner;

/// How often the state machine is ticked.
const TICK: Duration = Duration::from_millis(500);
/// A best header older than this means the chain is far behind the network, however few
/// blocks are missing: downloaded blocks then commit in batches (as Bitcoin Core counts a tip
/// older than a day as initial block download).
const FAR_BEHIND_MS: u64 = 60 * 60 * 1000;

/// How sync runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// The state machine's tuning.
    pub config: SyncConfig,
    /// Most headers of a low-work chain held in memory per peer.
    pub max_pending_headers: usize,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            config: SyncConfig::default(),
            max_pending_headers: spacetime::chain::MAX_PENDING_HEADERS,
        }
    }
}

/// Who the Sync actor talks to.
#[derive(Clone)]
pub struct SyncLinks {
    /// ChainState: header batches.
    pub headers: Recipient<ImportHeaders>,
    /// ChainState: downloaded bodies.
    pub blocks: Recipient<ImportBlocks>,
    /// ChainState: blocks nobody asked for.
    pub block: Recipient<ImportBlock>,
    /// ChainState: where the chain stands.
    pub view: Recipient<GetSyncView>,
    /// PeerManager: requests to peers.
    pub send: Recipient<SendToPeer>,
    /// PeerManager: penalties.
    pub penalize: Recipient<PenalizePeer>,
    /// PeerManager: dropping stallers.
    pub disconnect: Recipient<DisconnectPeer>,
    /// PeerManager: the tip announced to new peers.
    pub tip: Recipient<UpdateTip>,
}

/// The actor.
pub struct SyncActor {
    sm: SyncState,
    settings: SyncSettings,
    clock: Arc<dyn Clock>,
    spawner: Spawner,
    config: Arc<GenesisConfig>,
    links: SyncLinks,
    /// Bodies downloaded and not yet imported, with who sent them.
    bodies: BTreeMap<Hash, (PeerId, Block)>,
    /// A block nobody asked for, held while the state machine decides.
    unsolicited: Option<(Hash, PeerId, Block)>,
    /// Each peer's low-work header chain.
    pending: BTreeMap<PeerId, PendingHeaders>,
    /// Header batches waiting for their turn.
    headers: VecDeque<(PeerId, Vec<BlockHeader>)>,
    headers_busy: bool,
    view: Option<SyncView>,
    view_busy: bool,
    view_again: bool,
    /// Imports finished so far: a view asked for before the last one finished is stale.
    imports_done: u64,
    /// Peers' labels for per-peer metrics.
    labels: BTreeMap<PeerId, String>,
    announced: Option<Hash>,
    started_ms: u64,
}

impl SyncActor {
    /// A Sync actor for a chain of `config`.
    pub fn new(
        settings: SyncSettings,
        config: GenesisConfig,
        clock: Arc<dyn Clock>,
        spawner: Spawner,
        links: SyncLinks,
    ) -> Self {
        let now = clock.now_ms();
        Self {
            sm: SyncState::new(settings.config.clone(), now),
            settings,
            clock,
            spawner,
            config: Arc::new(config),
            links,
            bodies: BTreeMap::new(),
            unsolicited: None,
            pending: BTreeMap::new(),
            headers: VecDeque::new(),
            headers_busy: false,
            view: None,
            view_busy: false,
            view_again: false,
            imports_done: 0,
            labels: BTreeMap::new(),
            announced: None,
            started_ms: now,
        }
    }

    fn feed(&mut self, input: SyncInput, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        let actions = self.sm.handle(now, input);
        for action in actions {
            self.apply(action, ctx);
        }
        // A block nobody asked for that the state machine did not take is dropped.
        if self.unsolicited.take().is_some() {
            metrics::unsolicited_dropped();
        }
    }

    fn apply(&mut self, action: SyncAction, ctx: &mut Context<Self>) {
        match action {
            SyncAction::RequestHeaders { peer, after } => {
                let mut locator: Vec<Hash> = after.into_iter().collect();
                if let Some(view) = &self.view {
                    locator.extend(view.locator.iter().copied());
                }
                locator.truncate(MAX_LOCATOR_HASHES);
                let message = Message::GetHeaders(GetHeaders {
                    locator: BoundedVec::try_from_vec(locator).unwrap_or_default(),
                    stop: Hash::ZERO,
                    max: MAX_HEADERS_PER_MESSAGE as u16,
                });
                metrics::headers_requested();
                let _ = self.links.send.try_send(SendToPeer { peer, message });
            }
            SyncAction::RequestBlocks { peer, hashes } => {
                metrics::blocks_requested(hashes.len());
                let Ok(hashes) = BoundedVec::try_from_vec(hashes) else {
                    return;
                };
                let message = Message::GetBlocks(GetBlocks { hashes });
                let _ = self.links.send.try_send(SendToPeer { peer, message });
            }
            SyncAction::Import { hashes, batch } => self.import(hashes, batch, ctx),
            SyncAction::ImportUnsolicited { peer, hash } => {
                if let Some((h, from, block)) = self.unsolicited.take() {
                    if h == hash && from == peer {
                        self.import_unsolicited(peer, block, ctx);
                    } else {
                        self.unsolicited = Some((h, from, block));
                    }
                } else if let Some((from, block)) = self.bodies.remove(&hash) {
                    self.import_unsolicited(from, block, ctx);
                }
            }
            SyncAction::RefreshView => self.refresh_view(ctx),
            SyncAction::Discard { hashes } => {
                for h in hashes {
                    self.bodies.remove(&h);
                }
            }
            SyncAction::Penalize { peer, what } => {
                metrics::penalized(what);
                let _ = self.links.penalize.try_send(PenalizePeer { peer, what });
            }
            SyncAction::Disconnect { peer } => {
                metrics::staller_dropped();
                tracing::info!(peer = peer.0, "dropping a peer that stalls the download");
                let _ = self.links.disconnect.try_send(DisconnectPeer {
                    peer,
                    reason: DisconnectReason::Timeout,
                });
            }
            SyncAction::Warn(SyncWarning::NoProgress {
                for_ms,
                peers_height,
                tip_height,
            }) => {
                tracing::warn!(
                    "no progress for {} min, peers at height {peers_height} (ours {tip_height}); check network/clock",
                    for_ms / 60_000
                );
            }
        }
    }

    fn refresh_view(&mut self, ctx: &mut Context<Self>) {
        if self.view_busy {
            self.view_again = true;
            return;
        }
        self.view_busy = true;
        let window = self.settings.config.window;
        let asked_at = self.imports_done;
        let ask = self.links.view.send(GetSyncView { window });
        ctx.spawn(ask.into_actor(self).map(move |result, act, ctx| {
            act.view_busy = false;
            match result {
                // ChainState answers in order: a view asked for before an import finished
                // still lists its blocks as missing.
                Ok(_) if asked_at != act.imports_done => act.view_again = true,
                Ok(view) => act.on_view(view, ctx),
                Err(_) => {}
            }
            if std::mem::take(&mut act.view_again) {
                act.refresh_view(ctx);
            }
        }));
    }

    fn on_view(&mut self, view: SyncView, ctx: &mut Context<Self>) {
        if self.announced != Some(view.tip.hash) {
            self.announced = Some(view.tip.hash);
            let _ = self.links.tip.try_send(UpdateTip(ChainTip {
                height: view.tip.height,
                hash: view.tip.hash,
                work: view.tip.work.0,
            }));
        }
        let core = CoreView {
            tip: block_ref(view.tip),
            best_header: block_ref(view.best_header),
            missing: view.missing.clone(),
        };
        self.view = Some(view);
        self.feed(SyncInput::View(core), ctx);
    }

    fn import(&mut self, hashes: Vec<Hash>, batch: bool, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        let batch = batch
            || self
                .view
                .as_ref()
                .is_some_and(|v| now.saturating_sub(v.best_header_timestamp_ms) > FAR_BEHIND_MS);
        let mut blocks = Vec::with_capacity(hashes.len());
        let mut senders = Vec::with_capacity(hashes.len());
        for h in &hashes {
            match self.bodies.remove(h) {
                Some((peer, block)) => {
                    senders.push((*h, peer));
                    blocks.push(block);
                }
                None => break,
            }
        }
        if blocks.is_empty() {
            self.feed(
                SyncInput::Imported {
                    results: Vec::new(),
                },
                ctx,
            );
            return;
        }
        let count = blocks.len();
        let ask = self.links.blocks.send(ImportBlocks { blocks, batch });
        ctx.spawn(ask.into_actor(self).map(move |result, act, ctx| {
            let results = match result {
                Ok(Ok(results)) => results
                    .into_iter()
                    .map(|(hash, r)| (hash, report(&r)))
                    .collect(),
                Ok(Err(e)) => {
                    // A write failure is ChainState's incident, logged there once.
                    if e.fault() == spacetime::chain::StorageFault::Write {
                        tracing::debug!("importing downloaded blocks: {e}");
                    } else {
                        tracing::error!("importing downloaded blocks: {e}");
                    }
                    senders
                        .iter()
                        .map(|(h, _)| (*h, BlockReport::Failed))
                        .collect()
                }
                Err(e) => {
                    tracing::error!("ChainState is gone: {e}");
                    senders
                        .iter()
                        .map(|(h, _)| (*h, BlockReport::Failed))
                        .collect()
                }
            };
            metrics::imported(count, batch);
            act.imports_done += 1;
            act.feed(SyncInput::Imported { results }, ctx);
            // The next import waits for a view of the chain after this one.
            act.refresh_view(ctx);
        }));
    }

    fn import_unsolicited(&mut self, peer: PeerId, block: Block, ctx: &mut Context<Self>) {
        let ask = self.links.block.send(ImportBlock(block));
        ctx.spawn(
            ask.into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok(Err(ImportError::Invalid { .. }))
                    | Ok(Err(ImportError::BodyMismatch { .. })) => {
                        act.apply(
                            SyncAction::Penalize {
                                peer,
                                what: Misbehavior::InvalidBlock,
                            },
                            ctx,
                        );
                    }
                    Ok(Ok(imported)) if !imported.events.is_empty() => act.refresh_view(ctx),
                    _ => {}
                }),
        );
    }

    fn on_message(&mut self, peer: PeerId, message: Message, ctx: &mut Context<Self>) {
        match message {
            Message::Headers(h) => {
                let headers = h.headers.into_vec();
                let count = headers.len();
                metrics::headers_received(self.label(peer), count);
                let expected = self.sm.expects_headers(peer);
                self.feed(SyncInput::HeadersReceived { peer, count }, ctx);
                if expected {
                    self.headers.push_back((peer, headers));
                    self.next_headers(ctx);
                }
            }
            Message::Block(block) => {
                let hash = block.hash();
                metrics::block_received(self.label(peer));
                if self.sm.is_expected_block(peer, &hash) {
                    self.bodies.insert(hash, (peer, *block));
                } else {
                    self.unsolicited = Some((hash, peer, *block));
                }
                self.feed(SyncInput::BlockReceived { peer, hash }, ctx);
                metrics::bodies_held(self.bodies.len());
            }
            Message::NotFound(n) => {
                let hashes = n.hashes.into_vec();
                metrics::not_found(hashes.len());
                self.feed(SyncInput::NotFound { peer, hashes }, ctx);
            }
            _ => {}
        }
    }

    /// Verifies the proofs of the next queued header batch through the spawner, then hands it
    /// to ChainState; one batch at a time.
    fn next_headers(&mut self, ctx: &mut Context<Self>) {
        if self.headers_busy {
            return;
        }
        let Some((peer, headers)) = self.headers.pop_front() else {
            return;
        };
        self.headers_busy = true;
        let batch_len = headers.len();
        let parts = if self.spawner.is_inline() {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let chunk = batch_len.div_ceil(parts).max(1);
        let mut work = Vec::new();
        let mut rest = headers;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk.min(rest.len()));
            let part = std::mem::replace(&mut rest, tail);
            let config = self.config.clone();
            work.push(
                self.spawner
                    .run(move || VerifiedHeaders::verify(&config, part)),
            );
        }
        let verify = async move {
            let mut parts = Vec::with_capacity(work.len());
            for w in work {
                parts.push(w.await);
            }
            parts
        };
        ctx.spawn(verify.into_actor(self).map(move |parts, act, ctx| {
            let mut verified = Vec::with_capacity(parts.len());
            for part in parts {
                match part {
                    Ok(Ok(v)) => verified.push(v),
                    Ok(Err(_)) => {
                        act.headers_done(peer, HeadersReport::Invalid, batch_len, ctx);
                        return;
                    }
                    Err(e) => {
                        tracing::error!("verifying headers: {e}");
                        act.headers_done(peer, HeadersReport::Full, batch_len, ctx);
                        return;
                    }
                }
            }
            let headers = VerifiedHeaders::concat(verified);
            let limit = act.settings.max_pending_headers;
            let pending = act
                .pending
                .remove(&peer)
                .unwrap_or_else(|| PendingHeaders::with_limit(limit));
            let ask = act.links.headers.send(ImportHeaders { headers, pending });
            ctx.spawn(ask.into_actor(act).map(move |result, act, ctx| {
                let report = match result {
                    Ok((pending, outcome)) => {
                        if !pending.is_empty() {
                            act.pending.insert(peer, pending);
                        }
                        headers_report(outcome)
                    }
                    Err(e) => {
                        tracing::error!("ChainState is gone: {e}");
                        HeadersReport::Full
                    }
                };
                act.headers_done(peer, report, batch_len, ctx);
            }));
        }));
    }

    fn headers_done(
        &mut self,
        peer: PeerId,
        report: HeadersReport,
        batch_len: usize,
        ctx: &mut Context<Self>,
    ) {
        self.headers_busy = false;
        self.feed(
            SyncInput::HeadersImported {
                peer,
                report,
                batch_len,
            },
            ctx,
        );
        if matches!(report, HeadersReport::Stored { count, .. } if count > 0) {
            self.refresh_view(ctx);
        }
        self.next_headers(ctx);
    }

    fn label(&self, peer: PeerId) -> String {
        self.labels
            .get(&peer)
            .cloned()
            .unwrap_or_else(|| peer.0.to_string())
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.feed(SyncInput::Tick, ctx);
        // The tip also moves by this node's own blocks: keep the view fresh.
        self.refresh_view(ctx);
        let status = self.sm.status(self.clock.now_ms());
        metrics::status(&status, self.bodies.len());
    }
}

fn block_ref(h: HeaderRef) -> BlockRef {
    BlockRef {
        hash: h.hash,
        height: h.height,
        work: h.work,
    }
}

fn headers_report(outcome: Result<HeadersOutcome, HeadersError>) -> HeadersReport {
    match outcome {
        Ok(HeadersOutcome::Stored { last, count }) => HeadersReport::Stored {
            last: block_ref(last),
            count,
        },
        Ok(HeadersOutcome::Pending { last, count }) => HeadersReport::Pending {
            last: block_ref(last),
            count,
        },
        Err(HeadersError::Invalid { .. }) => HeadersReport::Invalid,
        Err(HeadersError::NotConnecting { .. }) => HeadersReport::NotConnecting,
        Err(HeadersError::TooManyPending { .. }) => HeadersReport::TooManyPending,
        Err(HeadersError::Full { .. }) => HeadersReport::Full,
        Err(HeadersError::Chain(e)) => {
            tracing::error!("storing headers: {e}");
            HeadersReport::Full
        }
    }
}

fn report(result: &Result<ImportStatus, ImportError>) -> BlockReport {
    match result {
        Ok(_) => BlockReport::Connected,
        Err(ImportError::BodyMismatch { .. }) => BlockReport::BodyMismatch,
        Err(ImportError::Invalid { .. }) => BlockReport::Invalid,
        Err(ImportError::Chain(_)) => BlockReport::Failed,
    }
}

impl Actor for SyncActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Sessions feed this mailbox through `try_send`; beyond it messages are dropped and
        // counted, and the state machine re-requests what did not arrive.
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
        self.refresh_view(ctx);
    }
}

impl Handler<PeerChainMessage> for SyncActor {
    type Result = ();
    fn handle(&mut self, msg: PeerChainMessage, ctx: &mut Context<Self>) {
        self.on_message(msg.peer, msg.message, ctx);
    }
}

impl Handler<PeerNotification> for SyncActor {
    type Result = ();
    fn handle(&mut self, msg: PeerNotification, ctx: &mut Context<Self>) {
        match msg.0 {
            PeerEvent::Connected {
                id,
                node_id,
                best_height,
                work,
                ..
            } => {
                let hex = node_id.to_string();
                self.labels.insert(id, hex[..hex.len().min(16)].to_owned());
                self.feed(
                    SyncInput::PeerConnected {
                        peer: id,
                        work: Work(work),
                        height: best_height,
                    },
                    ctx,
                );
            }
            PeerEvent::Disconnected { id, .. } => {
                self.labels.remove(&id);
                self.pending.remove(&id);
                self.headers.retain(|(p, _)| *p != id);
                self.feed(SyncInput::PeerDisconnected { peer: id }, ctx);
            }
            PeerEvent::Latency { .. } => {}
        }
    }
}

/// What relay learned of a peer's chain.
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub enum RelayHint {
    /// The peer has a block with this cumulative work and height (it relayed or announced it).
    Announced {
        /// The peer.
        peer: PeerId,
        /// Cumulative work of its chain up to the block.
        work: Work,
        /// The block's height.
        height: spacetime::Height,
    },
    /// The peer relayed a block whose parent this node lacks: fetch its headers now.
    Ahead {
        /// The peer.
        peer: PeerId,
    },
}

impl Handler<RelayHint> for SyncActor {
    type Result = ();
    fn handle(&mut self, msg: RelayHint, ctx: &mut Context<Self>) {
        let input = match msg {
            RelayHint::Announced { peer, work, height } => {
                SyncInput::PeerAnnounced { peer, work, height }
            }
            RelayHint::Ahead { peer } => SyncInput::PeerAhead { peer },
        };
        self.feed(input, ctx);
    }
}

/// Where sync stands, for status lines.
#[derive(Debug, ActixMessage)]
#[rtype(result = "SyncReport")]
pub struct GetSyncStatus;

/// Sync's status and per-peer counters.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// The state machine's status.
    pub status: SyncStatus,
    /// Per peer (by label): blocks and headers received, blocks in flight.
    pub peers: Vec<(String, spacetime::sync::PeerSyncStats)>,
    /// Bodies held for import.
    pub bodies_held: usize,
    /// Milliseconds since the actor started.
    pub uptime_ms: u64,
}

impl Handler<GetSyncStatus> for SyncActor {
    type Result = MessageResult<GetSyncStatus>;
    fn handle(&mut self, _: GetSyncStatus, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now_ms();
        MessageResult(SyncReport {
            status: self.sm.status(now),
            peers: self
                .sm
                .peer_stats()
                .into_iter()
                .map(|(p, s)| (self.label(p), s))
                .collect(),
            bodies_held: self.bodies.len(),
            uptime_ms: now.saturating_sub(self.started_ms),
        })
    }
}

impl Handler<Stop> for SyncActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
