//! The Gossip actor: routes peers' relay messages into the relay state machine
//! ([`spacetime::relay::RelayState`]) and carries out its actions. It holds what the state
//! machine only names: recent blocks, transfers, challenges, proofs and acceptances, so that
//! pushes, announcements and fetches can be answered before a block's body is even applied.
//!
//! Checks: a block's header goes to ChainState's precheck (the cheap rules), is relayed when it
//! passes, then imported whole; transfers go to the mempool in batches, and only what it admits
//! is relayed (its admission events, [`TxAdmitted`], drive the relay of every transfer, local or
//! not); a proof's signature is checked here.

pub mod metrics;
mod store;

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message as ActixMessage,
    MessageResult, Recipient, WrapFuture,
};
use spacetime::chain::{ImportError, Precheck};
use spacetime::mempool::MempoolError;
use spacetime::p2p::{Misbehavior, PeerId};
use spacetime::relay::{
    Delivery, ItemId, ItemKind, RelayAction, RelayConfig, RelayCounters, RelayInput, RelayState,
    Verdict,
};
use spacetime::target::Work;
use spacetime::wire::{
    BlockAnnounce, CompactBlock, GetBlock as WireGetBlock, MAX_TX_IDS_PER_MESSAGE,
    MAX_TXS_PER_MESSAGE, Message, SendBlocks, TxIds, TxPoolRequest, Txs,
};
use spacetime::{Block, BoundedVec, Hash, PublicKey, SigningDomain, Transfer};
use tokio::sync::mpsc;

use crate::chain::download::PrecheckBlock;
use crate::chain::{ChainNotification, GetBlock, GetTip, ImportBlock};
use crate::clock::Clock;
use crate::lifecycle::Stop;
use crate::mempool::{GetPending, SubmitTransfers, TxAdmitted};
use crate::p2p::{
    Outgoing, PeerChainMessage, PeerEvent, PeerNotification, PeerRequest, PenalizePeer, SendToPeer,
};
use crate::spawn::CostModel;
use crate::sync::RelayHint;
use store::ItemStore;

/// How often the state machine is ticked (transfer batches, fetch timeouts, metrics).
const TICK: Duration = Duration::from_millis(100);
/// Least time between two announcements of tips this node neither mined nor relayed (blocks
/// it synced): a syncing node tells its peers where it is a few times a second, far below
/// their `BlockAnnounce` rate limit, however fast it imports.
pub const SYNCED_TIP_ANNOUNCE_MS: u64 = 250;
/// Most pending transfers a new peer is asked for when its session opens.
pub const POOL_REQUEST_MAX: u32 = 10_000;

/// Who the Gossip actor talks to.
#[derive(Clone)]
pub struct GossipLinks {
    /// ChainState: cheap header checks.
    pub precheck: Recipient<PrecheckBlock>,
    /// ChainState: full import of relayed blocks.
    pub import: Recipient<ImportBlock>,
    /// ChainState: blocks of new tips.
    pub block: Recipient<GetBlock>,
    /// ChainState: the tip's height and work, for announcements.
    pub tip: Recipient<GetTip>,
    /// Mempool: admission of relayed transfers.
    pub submit: Recipient<SubmitTransfers>,
    /// Mempool: the pending pool, for `TxPoolRequest`.
    pub pending: Recipient<GetPending>,
    /// PeerManager: messages to peers.
    pub send: Recipient<SendToPeer>,
    /// PeerManager: penalties.
    pub penalize: Recipient<PenalizePeer>,
    /// Sync: what peers' chains hold.
    pub hints: Recipient<RelayHint>,
    /// Sync: relayed blocks that do not connect (imported as orphans).
    pub orphans: Recipient<PeerChainMessage>,
    /// ChainServer: `GetBlock` for blocks the relay no longer holds.
    pub server: Option<Recipient<PeerRequest>>,
}

/// A challenge, proof or acceptance the node relayed, told to local consumers (the remote-miner
/// gateway, tests).
#[derive(Debug, Clone, ActixMessage)]
#[rtype(result = "()")]
pub struct Relayed(pub Message);

/// Receive every [`Relayed`] item from now on.
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub struct SubscribeRelayed(pub Recipient<Relayed>);

/// Relay a `NewChallenge`, `ProofSubmission` or `BlockAccepted` this node produced.
#[derive(Debug, ActixMessage)]
#[rtype(result = "bool")]
pub struct RelayLocal(pub Message);

/// The relay's counters and queue sizes.
#[derive(Debug, ActixMessage)]
#[rtype(result = "RelayReport")]
pub struct GetRelayReport;

/// The answer to [`GetRelayReport`].
#[derive(Debug, Clone)]
pub struct RelayReport {
    /// What the state machine counted.
    pub counters: RelayCounters,
    /// Items queued to peers.
    pub queued: usize,
    /// Peers this node asked to push blocks.
    pub pushers: usize,
}

/// The actor.
pub struct GossipActor {
    sm: RelayState,
    clock: Arc<dyn Clock>,
    costs: CostModel,
    links: GossipLinks,
    store: ItemStore,
    /// This node's miner key: its own new tips are pushed, not only announced.
    miner: Option<PublicKey>,
    /// Transfers to hand the mempool together after the current input.
    tx_checks: Vec<Hash>,
    /// What the node knows of its own tip.
    tip: TipWatch,
    subscribers: Vec<Recipient<Relayed>>,
}

/// The node's tip as the relay follows it: chain events only say that it changed; one
/// query at a time reads the new tip, so a burst of events during sync costs one query and one
/// announcement.
#[derive(Debug, Default)]
struct TipWatch {
    /// Cumulative work of the tip: announced blocks with no more are not fetched.
    work: Work,
    /// The last tip acted on.
    hash: Option<Hash>,
    /// A query is out.
    in_flight: bool,
    /// The tip changed since the last query.
    dirty: bool,
    /// No synced tip is announced before this time (ms): the last one was just announced.
    next_ms: u64,
    /// A synced tip waiting for its announcement until `next_ms`.
    deferred: Option<Hash>,
}

/// The relay id of a challenge, proof or acceptance: the hash of its encoding.
pub fn item_id(message: &Message) -> Option<ItemId> {
    let kind = match message {
        Message::NewChallenge(_) => ItemKind::Challenge,
        Message::ProofSubmission(_) => ItemKind::Proof,
        Message::BlockAccepted(_) => ItemKind::Accepted,
        _ => return None,
    };
    Some(ItemId::new(
        kind,
        spacetime::hash::hash(b"relay-item", &spacetime::encode(message)),
    ))
}

impl GossipActor {
    /// A Gossip actor with `config`.
    pub fn new(
        config: RelayConfig,
        clock: Arc<dyn Clock>,
        costs: CostModel,
        links: GossipLinks,
        miner: Option<PublicKey>,
    ) -> Self {
        let now = clock.now_ms();
        Self {
            store: ItemStore::new(config.seen_capacity.clamp(1024, 200_000)),
            sm: RelayState::new(config, now),
            clock,
            costs,
            links,
            miner,
            tx_checks: Vec::new(),
            tip: TipWatch {
                dirty: true,
                ..TipWatch::default()
            },
            subscribers: Vec::new(),
        }
    }

    fn feed(&mut self, input: RelayInput, ctx: &mut Context<Self>) {
        self.feed_all(std::iter::once(input), ctx);
    }

    /// Feeds the inputs of one message together, so the state machine sends once after them.
    fn feed_all(&mut self, inputs: impl IntoIterator<Item = RelayInput>, ctx: &mut Context<Self>) {
        let actions = self.sm.handle_all(self.clock.now_ms(), inputs);
        for action in actions {
            self.apply(action, ctx);
        }
        self.submit_transfers(ctx);
    }

    fn send(&self, peer: PeerId, message: Message) {
        metrics::sent(message.kind().name());
        if self
            .links
            .send
            .try_send(SendToPeer { peer, message })
            .is_err()
        {
            metrics::dropped("manager_busy");
        }
    }

    fn apply(&mut self, action: RelayAction, ctx: &mut Context<Self>) {
        match action {
            RelayAction::Check { id, from } => self.check(id, from, ctx),
            RelayAction::Send { peer, id, delivery } => {
                let message = match (id.kind, delivery) {
                    (ItemKind::Block, Delivery::Push) if self.sm.config().compact_blocks => self
                        .store
                        .compact(&id.hash)
                        .map(|(c, _)| Message::CompactBlock(Box::new((*c).clone()))),
                    (ItemKind::Block, Delivery::Push) => self
                        .store
                        .block(&id.hash)
                        .map(|b| Message::BlockProposal(Box::new((*b).clone()))),
                    (ItemKind::Block, Delivery::Announce) => {
                        self.store.announce(&id.hash).map(|(height, work)| {
                            Message::BlockAnnounce(BlockAnnounce {
                                hash: id.hash,
                                height,
                                work: work.0,
                            })
                        })
                    }
                    _ => self.store.other(&id).cloned(),
                };
                match message {
                    Some(m) => self.send(peer, m),
                    None => metrics::dropped("evicted"),
                }
            }
            RelayAction::SendTxs {
                peer,
                ids,
                delivery,
            } => match delivery {
                Delivery::Push => {
                    let transfers: Vec<Transfer> = ids
                        .iter()
                        .filter_map(|h| self.store.tx(h).map(|t| (*t).clone()))
                        .take(MAX_TXS_PER_MESSAGE)
                        .collect();
                    if let Ok(transfers) = BoundedVec::try_from_vec(transfers) {
                        self.send(peer, Message::Txs(Txs { transfers }));
                    }
                }
                Delivery::Announce => {
                    for chunk in ids.chunks(MAX_TX_IDS_PER_MESSAGE) {
                        if let Ok(ids) = BoundedVec::try_from_vec(chunk.to_vec()) {
                            self.send(peer, Message::TxInv(TxIds { ids }));
                        }
                    }
                }
            },
            RelayAction::FetchBlock { peer, hash } => {
                self.send(peer, Message::GetBlock(WireGetBlock { hash }));
            }
            RelayAction::FetchTxs { peer, ids } => {
                if let Ok(ids) = BoundedVec::try_from_vec(ids) {
                    self.send(peer, Message::GetTxs(TxIds { ids }));
                }
            }
            RelayAction::SetPush { peer, push } => {
                self.send(peer, Message::SendBlocks(SendBlocks { push }));
            }
            RelayAction::Penalize { peer, what } => {
                metrics::penalized(what);
                let _ = self.links.penalize.try_send(PenalizePeer { peer, what });
            }
        }
    }

    /// Runs the check of a new item; the verdict comes back as `Checked`.
    fn check(&mut self, id: ItemId, from: PeerId, ctx: &mut Context<Self>) {
        match id.kind {
            ItemKind::Block => self.check_block(id, from, ctx),
            ItemKind::Tx => self.tx_checks.push(id.hash),
            ItemKind::Proof => {
                let verdict = match self.store.other(&id) {
                    Some(Message::ProofSubmission(p)) => {
                        match spacetime::crypto::verify(
                            SigningDomain::Proof,
                            &p.miner,
                            &p.signing_bytes(),
                            &p.signature,
                        ) {
                            Ok(()) => Verdict::Relay { bytes: 203 },
                            Err(_) => Verdict::Invalid(Misbehavior::InvalidBlock),
                        }
                    }
                    _ => Verdict::Later,
                };
                self.verdict_other(id, verdict, ctx);
            }
            ItemKind::Challenge | ItemKind::Accepted => {
                self.verdict_other(id, Verdict::Relay { bytes: 117 }, ctx);
            }
        }
    }

    fn verdict_other(&mut self, id: ItemId, verdict: Verdict, ctx: &mut Context<Self>) {
        if matches!(verdict, Verdict::Relay { .. })
            && let Some(m) = self.store.other(&id).cloned()
        {
            self.subscribers.retain(|s| s.connected());
            for s in &self.subscribers {
                let _ = s.try_send(Relayed(m.clone()));
            }
        }
        self.feed(RelayInput::Checked { id, verdict }, ctx);
    }

    fn check_block(&mut self, id: ItemId, from: PeerId, ctx: &mut Context<Self>) {
        let Some(block) = self.store.block(&id.hash) else {
            return self.feed(
                RelayInput::Checked {
                    id,
                    verdict: Verdict::Later,
                },
                ctx,
            );
        };
        let ask = self.links.precheck.send(PrecheckBlock(block.clone()));
        let delay = self.costs.header_check;
        ctx.spawn(
            async move {
                let result = ask.await;
                if !delay.is_zero() {
                    // The simulator's model of the proof check on this hop.
                    tokio::time::sleep(delay).await;
                }
                result
            }
            .into_actor(self)
            .map(move |result, act, ctx| {
                let bytes = act.push_bytes(&id.hash, &block);
                let verdict = match result {
                    Ok(Ok(Precheck::Valid { work, better })) => {
                        act.import(from, block.clone(), ctx);
                        if better {
                            act.store.set_announce(id.hash, block.header.height, work);
                            let _ = act.links.hints.try_send(RelayHint::Announced {
                                peer: from,
                                work,
                                height: block.header.height,
                            });
                            Verdict::Relay { bytes }
                        } else {
                            // Valid but losing to our tip: stored (a descendant may make its
                            // branch the best), not relayed.
                            Verdict::Ignore
                        }
                    }
                    Ok(Ok(Precheck::Known)) => Verdict::Ignore,
                    Ok(Ok(Precheck::ParentUnknown)) => {
                        let _ = act.links.hints.try_send(RelayHint::Ahead { peer: from });
                        let _ = act.links.orphans.try_send(PeerChainMessage {
                            peer: from,
                            message: Message::Block(Box::new((*block).clone())),
                        });
                        Verdict::Later
                    }
                    Ok(Err(reason)) => {
                        tracing::debug!(peer = from.0, %reason, "relayed block refused");
                        Verdict::Invalid(Misbehavior::InvalidBlock)
                    }
                    Err(_) => Verdict::Later,
                };
                act.feed(RelayInput::Checked { id, verdict }, ctx);
            }),
        );
    }

    /// The wire size of a held block's push, compact or whole, for pacing.
    fn push_bytes(&mut self, hash: &Hash, block: &Block) -> u32 {
        if self.sm.config().compact_blocks
            && let Some((_, bytes)) = self.store.compact(hash)
        {
            return bytes;
        }
        u32::try_from(spacetime::encoding::encoded_len(block)).unwrap_or(u32::MAX)
    }

    /// A compact block: rebuilt from the transfers this node holds and handled as a pushed
    /// block, or, when a transfer is missing, taken as an announcement so the whole block is
    /// fetched from the sender.
    fn on_compact(&mut self, peer: PeerId, compact: CompactBlock, ctx: &mut Context<Self>) {
        let hash = compact.header.hash();
        let id = ItemId::new(ItemKind::Block, hash);
        if self.sm.has_seen(&id) || self.store.block(&hash).is_some() {
            metrics::compact("known");
            return self.feed(RelayInput::Received { peer, id }, ctx);
        }
        match compact.rebuild(|h| self.store.tx(h).map(|t| (*t).clone())) {
            Ok(block) => {
                metrics::compact("rebuilt");
                // A wrong id list gives a body whose transfer root does not match the
                // header: the body check before relay refuses it and penalises the sender.
                self.store.put_block(hash, Arc::new(block));
                self.feed(RelayInput::Received { peer, id }, ctx);
            }
            Err(missing) => {
                metrics::compact("missed");
                tracing::debug!(peer = peer.0, %hash, missing = missing.len(), "compact block lacks transfers");
                self.feed(RelayInput::Announced { peer, id }, ctx);
            }
        }
    }

    fn import(&mut self, from: PeerId, block: Arc<Block>, ctx: &mut Context<Self>) {
        let hash = block.hash();
        let ask = self.links.import.send(ImportBlock((*block).clone()));
        ctx.spawn(ask.into_actor(self).map(move |result, act, ctx| {
            if let Ok(Err(ImportError::Invalid { .. } | ImportError::BodyMismatch { .. })) = result
            {
                tracing::debug!(peer = from.0, %hash, "relayed block failed full validation");
                act.feed(RelayInput::BodyInvalid { hash }, ctx);
            }
        }));
    }

    /// Hands the transfers received in the last input to the mempool in one batch.
    fn submit_transfers(&mut self, ctx: &mut Context<Self>) {
        if self.tx_checks.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.tx_checks);
        let (ids, transfers): (Vec<Hash>, Vec<Transfer>) = ids
            .into_iter()
            .filter_map(|h| self.store.tx(&h).map(|t| (h, (*t).clone())))
            .unzip();
        let ask = self.links.submit.send(SubmitTransfers(transfers));
        ctx.spawn(ask.into_actor(self).map(move |result, act, ctx| {
            let results = match result {
                Ok(Ok(r)) => r,
                _ => {
                    let later = ids.into_iter().map(|h| RelayInput::Checked {
                        id: ItemId::new(ItemKind::Tx, h),
                        verdict: Verdict::Later,
                    });
                    act.feed_all(later, ctx);
                    return;
                }
            };
            let mut checked = Vec::with_capacity(ids.len());
            for (h, r) in ids.into_iter().zip(results) {
                let id = ItemId::new(ItemKind::Tx, h);
                let verdict = match r {
                    // The admission event relays it; this only records the verdict.
                    Ok(_) => Verdict::Relay {
                        bytes: act.store.tx_bytes(&h),
                    },
                    Err(e) => tx_verdict(&e),
                };
                checked.push(RelayInput::Checked { id, verdict });
            }
            act.feed_all(checked, ctx);
        }));
    }

    fn on_message(
        &mut self,
        peer: PeerId,
        message: Message,
        reply: mpsc::Sender<Outgoing>,
        ctx: &mut Context<Self>,
    ) {
        metrics::received(message.kind().name());
        match message {
            Message::BlockProposal(block) => {
                let hash = block.hash();
                self.store.put_block(hash, Arc::new(*block));
                self.feed(
                    RelayInput::Received {
                        peer,
                        id: ItemId::new(ItemKind::Block, hash),
                    },
                    ctx,
                );
            }
            Message::CompactBlock(c) => self.on_compact(peer, *c, ctx),
            Message::BlockAnnounce(a) => {
                let id = ItemId::new(ItemKind::Block, a.hash);
                let work = Work(a.work);
                if work < self.tip.work {
                    // Less work than our tip: the peer has it, we need not fetch it. Equal
                    // work is fetched: fork choice breaks the tie by score, and a network
                    // whose branches grow one block an epoch each converges only so.
                    self.feed(RelayInput::PeerHas { peer, id }, ctx);
                    return;
                }
                if self.sm.has_seen(&id) {
                    // Known here, maybe still importing: Sync learns the peer's chain holds it.
                    let _ = self.links.hints.try_send(RelayHint::Announced {
                        peer,
                        work,
                        height: a.height,
                    });
                }
                self.feed(RelayInput::Announced { peer, id }, ctx);
            }
            Message::GetBlock(g) => match self.store.block(&g.hash) {
                Some(block) => {
                    let m = Message::BlockProposal(Box::new((*block).clone()));
                    if reply.try_send(Outgoing::Send(Box::new(m))).is_err() {
                        metrics::dropped("reply_full");
                    }
                    let id = ItemId::new(ItemKind::Block, g.hash);
                    self.feed(RelayInput::Served { peer, id }, ctx);
                }
                None => {
                    if let Some(server) = &self.links.server {
                        let _ = server.try_send(PeerRequest {
                            peer,
                            message: Message::GetBlock(g),
                            reply,
                        });
                    }
                }
            },
            Message::Tx(t) => self.on_transfers(peer, vec![*t], ctx),
            Message::Txs(t) => self.on_transfers(peer, t.transfers.into_vec(), ctx),
            Message::TxInv(inv) => {
                let inputs = inv
                    .ids
                    .into_vec()
                    .into_iter()
                    .map(|h| RelayInput::Announced {
                        peer,
                        id: ItemId::new(ItemKind::Tx, h),
                    });
                self.feed_all(inputs, ctx);
            }
            Message::GetTxs(get) => {
                let mut found = Vec::new();
                let mut served = Vec::new();
                for h in get.ids.into_vec() {
                    if let Some(t) = self.store.tx(&h) {
                        found.push((*t).clone());
                        served.push(RelayInput::Served {
                            peer,
                            id: ItemId::new(ItemKind::Tx, h),
                        });
                    }
                }
                self.feed_all(served, ctx);
                for chunk in found.chunks(MAX_TXS_PER_MESSAGE) {
                    if let Ok(transfers) = BoundedVec::try_from_vec(chunk.to_vec()) {
                        let m = Message::Txs(Txs { transfers });
                        if reply.try_send(Outgoing::Send(Box::new(m))).is_err() {
                            metrics::dropped("reply_full");
                        }
                    }
                }
            }
            Message::TxPoolRequest(r) => {
                let max = r.max.min(POOL_REQUEST_MAX) as usize;
                let ask = self.links.pending.send(GetPending { max });
                ctx.spawn(ask.into_actor(self).map(move |result, act, _| {
                    let Ok(pending) = result else { return };
                    let ids: Vec<Hash> = pending
                        .into_iter()
                        .map(|t| {
                            let id = t.id();
                            act.store.put_tx(id, Arc::new(t));
                            id
                        })
                        .collect();
                    for chunk in ids.chunks(MAX_TX_IDS_PER_MESSAGE) {
                        if let Ok(ids) = BoundedVec::try_from_vec(chunk.to_vec()) {
                            let m = Message::TxInv(TxIds { ids });
                            if reply.try_send(Outgoing::Send(Box::new(m))).is_err() {
                                metrics::dropped("reply_full");
                            }
                        }
                    }
                }));
            }
            Message::SendBlocks(s) => {
                self.feed(RelayInput::PeerWantsPush { peer, push: s.push }, ctx)
            }
            m @ (Message::NewChallenge(_)
            | Message::ProofSubmission(_)
            | Message::BlockAccepted(_)) => {
                if let Some(id) = item_id(&m) {
                    self.store.put_other(id, m);
                    self.feed(RelayInput::Received { peer, id }, ctx);
                }
            }
            _ => metrics::dropped("unexpected"),
        }
    }

    fn on_transfers(&mut self, peer: PeerId, transfers: Vec<Transfer>, ctx: &mut Context<Self>) {
        let mut inputs = Vec::with_capacity(transfers.len());
        for t in transfers {
            let id = t.id();
            self.store.put_tx(id, Arc::new(t));
            inputs.push(RelayInput::Received {
                peer,
                id: ItemId::new(ItemKind::Tx, id),
            });
        }
        // One mempool submission for the whole message.
        self.feed_all(inputs, ctx);
    }

    /// Reads the tip after a chain event (one query at a time). A new tip this node did not
    /// relay is announced, or pushed like a relayed block when this node mined it.
    fn refresh_tip(&mut self, ctx: &mut Context<Self>) {
        if self.tip.in_flight || !self.tip.dirty {
            return;
        }
        self.tip.in_flight = true;
        self.tip.dirty = false;
        let tip = self.links.tip.send(GetTip);
        let blocks = self.links.block.clone();
        ctx.spawn(
            async move {
                let tip = tip.await.ok()?;
                Some((tip, blocks))
            }
            .into_actor(self)
            .map(move |got, act, ctx| {
                let Some((tip, blocks)) = got else {
                    act.tip.in_flight = false;
                    return;
                };
                act.tip.work = tip.work;
                let id = ItemId::new(ItemKind::Block, tip.hash);
                if act.tip.hash == Some(tip.hash) || act.sm.has_seen(&id) {
                    act.tip.hash = Some(tip.hash);
                    act.tip.in_flight = false;
                    return act.refresh_tip(ctx);
                }
                act.tip.hash = Some(tip.hash);
                act.store.set_announce(tip.hash, tip.height, tip.work);
                let ask = blocks.send(GetBlock(tip.hash));
                ctx.spawn(ask.into_actor(act).map(move |block, act, ctx| {
                    act.tip.in_flight = false;
                    if let Ok(Ok(Some(block))) = block {
                        act.on_new_tip(id, block, ctx);
                    }
                    act.refresh_tip(ctx);
                }));
            }),
        );
    }

    fn on_new_tip(&mut self, id: ItemId, block: Block, ctx: &mut Context<Self>) {
        let own = self.miner.is_some_and(|m| m == block.header.miner);
        let block = Arc::new(block);
        self.store.put_block(id.hash, block.clone());
        let bytes = self.push_bytes(&id.hash, &block);
        let now = self.clock.now_ms();
        let input = if own {
            // Pushed at once, whatever was announced just before: it is the newer tip.
            self.tip.deferred = None;
            RelayInput::Local {
                id,
                bytes,
                again: false,
            }
        } else if now < self.tip.next_ms {
            // The tick announces it (or a newer synced tip) once the interval has passed.
            self.tip.deferred = Some(id.hash);
            return;
        } else {
            return self.announce_synced(id.hash, now, ctx);
        };
        self.feed(input, ctx);
    }

    /// Announces a tip this node synced, and holds the next one back for the interval.
    fn announce_synced(&mut self, hash: Hash, now: u64, ctx: &mut Context<Self>) {
        self.tip.next_ms = now + SYNCED_TIP_ANNOUNCE_MS;
        self.feed(RelayInput::NewTip { hash }, ctx);
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.refresh_tip(ctx);
        let now = self.clock.now_ms();
        if now >= self.tip.next_ms
            && let Some(hash) = self.tip.deferred.take()
            && self.tip.hash == Some(hash)
        {
            self.announce_synced(hash, now, ctx);
        }
        self.feed(RelayInput::Tick, ctx);
        metrics::export(self.sm.counters(), self.sm.queued(), self.sm.peer_count());
    }
}

/// What a mempool refusal says of the peer that relayed the transfer.
fn tx_verdict(e: &MempoolError) -> Verdict {
    match e {
        MempoolError::TooLarge { .. }
        | MempoolError::WrongChain { .. }
        | MempoolError::ZeroAmount
        | MempoolError::AmountOverflow { .. }
        | MempoolError::Malformed(_)
        | MempoolError::BadSignature(_) => Verdict::Invalid(Misbehavior::InvalidTransaction),
        MempoolError::Duplicate { .. } | MempoolError::NonceTooLow { .. } => Verdict::Ignore,
        _ => Verdict::Later,
    }
}

impl Actor for GossipActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Sessions feed this mailbox through `try_send`; beyond it messages are dropped and
        // counted (peers re-announce, sync polls).
        ctx.set_mailbox_capacity(8192);
        self.refresh_tip(ctx);
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
    }
}

impl Handler<PeerRequest> for GossipActor {
    type Result = ();
    fn handle(&mut self, msg: PeerRequest, ctx: &mut Context<Self>) {
        self.on_message(msg.peer, msg.message, msg.reply, ctx);
    }
}

impl Handler<PeerNotification> for GossipActor {
    type Result = ();
    fn handle(&mut self, msg: PeerNotification, ctx: &mut Context<Self>) {
        match msg.0 {
            PeerEvent::Connected { id, .. } => {
                self.feed(RelayInput::PeerUp { peer: id }, ctx);
                // A new peer tells us its pending pool (bounded); we fetch what we lack.
                self.send(
                    id,
                    Message::TxPoolRequest(TxPoolRequest {
                        max: POOL_REQUEST_MAX,
                    }),
                );
            }
            PeerEvent::Disconnected { id, .. } => self.feed(RelayInput::PeerDown { peer: id }, ctx),
            PeerEvent::Latency { .. } => {}
        }
    }
}

impl Handler<ChainNotification> for GossipActor {
    type Result = ();
    fn handle(&mut self, _: ChainNotification, ctx: &mut Context<Self>) {
        self.tip.dirty = true;
        self.refresh_tip(ctx);
    }
}

impl Handler<TxAdmitted> for GossipActor {
    type Result = ();
    fn handle(&mut self, msg: TxAdmitted, ctx: &mut Context<Self>) {
        let id = msg.transfer.id();
        let bytes = u32::try_from(spacetime::encode(&*msg.transfer).len()).unwrap_or(u32::MAX);
        self.store.put_tx(id, msg.transfer);
        let id = ItemId::new(ItemKind::Tx, id);
        self.feed(
            RelayInput::Local {
                id,
                bytes,
                again: msg.again,
            },
            ctx,
        );
    }
}

impl Handler<RelayLocal> for GossipActor {
    type Result = bool;
    fn handle(&mut self, msg: RelayLocal, ctx: &mut Context<Self>) -> bool {
        let Some(id) = item_id(&msg.0) else {
            return false;
        };
        let bytes = u32::try_from(spacetime::encode(&msg.0).len()).unwrap_or(u32::MAX);
        self.store.put_other(id, msg.0);
        self.feed(
            RelayInput::Local {
                id,
                bytes,
                again: false,
            },
            ctx,
        );
        true
    }
}

impl Handler<SubscribeRelayed> for GossipActor {
    type Result = ();
    fn handle(&mut self, msg: SubscribeRelayed, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}

impl Handler<GetRelayReport> for GossipActor {
    type Result = MessageResult<GetRelayReport>;
    fn handle(&mut self, _: GetRelayReport, _: &mut Context<Self>) -> Self::Result {
        MessageResult(RelayReport {
            counters: *self.sm.counters(),
            queued: self.sm.queued(),
            pushers: self.sm.pushers().len(),
        })
    }
}

impl Handler<Stop> for GossipActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
