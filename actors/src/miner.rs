//! The MinerLoop actor: follows the tip and the clock, scans each epoch's challenge with the
//! ScannerPool, and builds, signs and imports a block when a proof wins.
//!
//! The decisions are the core's [`MinerState`]; this actor routes its actions: it asks
//! ChainState for the epoch's challenge and target, ScannerPool for the best proof, the Mempool
//! for a template, and ChainState again to build and import the block. It ticks ten times per
//! epoch, and follows tip changes through ChainState's events.

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, ResponseActFuture, WrapFuture,
};
use spacetime::chain::rules::epoch_of;
use spacetime::chain::{BlockDraft, MiningContext, Tip};
use spacetime::genesis::NetworkParams;
use spacetime::limits::{MAX_BLOCK_BYTES, MAX_TRANSFERS_PER_BLOCK};
use spacetime::miner::{MinerAction, MinerInput, MinerState, MinerTip};
use spacetime::{Address, Epoch, Hash, Keypair};
use tokio::time::Instant;

use crate::chain::{BuildAndImport, ChainNotification, GetMiningContext, GetTip};
use crate::clock::Clock;
use crate::mempool::GetTemplate;
use crate::plots::{CancelScan, Scan, ScanError};

/// Blocks won and built by this node.
pub const BLOCKS_WON: &str = "spacetime_blocks_won_total";
/// Time from a winning scan result to the block committed locally.
pub const WIN_TO_COMMIT_SECONDS: &str = "spacetime_block_win_to_commit_seconds";
/// Blocks this node won but could not commit.
pub const BLOCKS_FAILED: &str = "spacetime_blocks_build_failed_total";

/// Room kept in a block for the header and the coinbase.
const BLOCK_OVERHEAD: usize = 16 * 1024;

/// Where the miner sends its requests.
pub struct MinerLinks {
    /// ChainState: the epoch's challenge and target.
    pub context: Recipient<GetMiningContext>,
    /// ChainState: the tip.
    pub tip: Recipient<GetTip>,
    /// ChainState: build and import.
    pub build: Recipient<BuildAndImport>,
    /// ScannerPool: scan.
    pub scan: Recipient<Scan>,
    /// ScannerPool: cancel.
    pub cancel: Recipient<CancelScan>,
    /// Mempool: block templates (`None`: empty blocks).
    pub template: Option<Recipient<GetTemplate>>,
}

/// The miner's choices for its coinbase.
#[derive(Debug, Clone, Default)]
pub struct CoinbasePolicy {
    /// Payees by weight (empty: the miner key).
    pub payees: Vec<(Address, u64)>,
    /// Coinbase extra data.
    pub extra_data: Vec<u8>,
}

/// The actor.
pub struct MinerLoop {
    state: MinerState,
    network: NetworkParams,
    clock: Arc<dyn Clock>,
    key: Arc<Keypair>,
    coinbase: CoinbasePolicy,
    links: MinerLinks,
    /// The context of the scan running, for building a block from its result.
    context: Option<MiningContext>,
}

impl MinerLoop {
    /// A miner with `key` for the network, sending its requests to `links`.
    pub fn new(
        network: NetworkParams,
        clock: Arc<dyn Clock>,
        key: Arc<Keypair>,
        coinbase: CoinbasePolicy,
        links: MinerLinks,
    ) -> Self {
        Self {
            state: MinerState::new(network.clone()),
            network,
            clock,
            key,
            coinbase,
            links,
            context: None,
        }
    }

    fn feed(&mut self, input: MinerInput, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        for action in self.state.handle(now, input) {
            match action {
                MinerAction::Scan { tip, epoch } => self.start_scan(tip, epoch, ctx),
                MinerAction::CancelScan => {
                    self.context = None;
                    let _ = self.links.cancel.try_send(CancelScan);
                }
                MinerAction::Build {
                    tip,
                    epoch,
                    proof,
                    score,
                } => self.build(tip, epoch, proof, score, ctx),
            }
        }
    }

    fn start_scan(&mut self, tip: Hash, epoch: Epoch, ctx: &mut Context<Self>) {
        let context = self.links.context.clone();
        let scan = self.links.scan.clone();
        let network = self.network.clone();
        let now = self.clock.now_ms();
        let fut = async move {
            let mc = context
                .send(GetMiningContext { epoch })
                .await
                .ok()
                .flatten()
                .filter(|mc| mc.parent == tip)?;
            // The scan may use the rest of the epoch.
            let deadline = spacetime::chain::rules::epoch_start(&network, epoch.saturating_add(1))
                .map(|end| end.saturating_sub(now).max(network.epoch_ms / 2));
            let outcome = scan
                .send(Scan {
                    challenge: mc.challenge,
                    target: mc.target,
                    epoch,
                    deadline_ms_from_now: deadline,
                })
                .await
                .ok()?;
            Some((mc, outcome))
        };
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            let input = match result {
                Some((mc, Ok(outcome))) => {
                    let win = outcome
                        .best
                        .filter(|_| outcome.winning)
                        .map(|c| (c.proof(), c.score));
                    if win.is_some() {
                        act.context = Some(mc);
                    }
                    MinerInput::ScanDone { tip, epoch, win }
                }
                Some((_, Err(ScanError::Cancelled))) | Some((_, Err(_))) | None => {
                    MinerInput::ScanFailed { tip, epoch }
                }
            };
            act.feed(input, ctx);
        }));
    }

    fn build(
        &mut self,
        tip: Hash,
        epoch: Epoch,
        proof: spacetime::ProofOfSpace,
        score: Hash,
        ctx: &mut Context<Self>,
    ) {
        let found = Instant::now();
        let Some(context) = self
            .context
            .take()
            .filter(|c| c.parent == tip && c.epoch == epoch)
        else {
            self.feed(MinerInput::BlockDone, ctx);
            return;
        };
        let now = self.clock.now_ms();
        let timestamp_ms = now.clamp(context.min_timestamp_ms, context.max_timestamp_ms);
        let template = self.links.template.clone();
        let build = self.links.build.clone();
        let key = self.key.clone();
        let coinbase = self.coinbase.clone();
        let fut = async move {
            let transfers = match template {
                Some(t) => t
                    .send(GetTemplate {
                        max_count: MAX_TRANSFERS_PER_BLOCK,
                        max_bytes: MAX_BLOCK_BYTES - BLOCK_OVERHEAD,
                    })
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let draft = BlockDraft {
                context,
                timestamp_ms,
                proof,
                score,
                transfers,
                payees: coinbase.payees,
                extra_data: coinbase.extra_data,
            };
            build.send(BuildAndImport { draft, key }).await
        };
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            match result {
                Ok(Ok(mined)) => {
                    metrics::counter!(BLOCKS_WON).increment(1);
                    metrics::histogram!(WIN_TO_COMMIT_SECONDS)
                        .record(found.elapsed().as_secs_f64());
                    tracing::info!(
                        height = mined.block.header.height,
                        hash = %mined.block.hash(),
                        transfers = mined.block.transfers.len(),
                        "mined a block"
                    );
                }
                Ok(Err(e)) => {
                    metrics::counter!(BLOCKS_FAILED).increment(1);
                    tracing::warn!("won epoch {epoch} but could not commit the block: {e}");
                }
                Err(e) => {
                    metrics::counter!(BLOCKS_FAILED).increment(1);
                    tracing::warn!("chain state unavailable: {e}");
                }
            }
            act.feed(MinerInput::BlockDone, ctx);
        }));
    }

    /// Asks ChainState for the tip and feeds it to the state machine.
    fn follow_tip(&self) -> impl actix::ActorFuture<Self, Output = ()> + 'static {
        let tip = self.links.tip.clone();
        async move { tip.send(GetTip).await.ok() }
            .into_actor(self)
            .map(|tip, act, ctx| {
                if let Some(tip) = tip {
                    let t = act.tip_of(&tip);
                    act.feed(MinerInput::NewTip(t), ctx);
                }
            })
    }

    fn tip_of(&self, tip: &Tip) -> MinerTip {
        MinerTip {
            hash: tip.hash,
            height: tip.height,
            epoch: epoch_of(&self.network, tip.timestamp_ms).unwrap_or(0),
        }
    }
}

impl Actor for MinerLoop {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let tick = Duration::from_millis((self.network.epoch_ms / 10).max(10));
        ctx.run_interval(tick, |act, ctx| act.feed(MinerInput::Tick, ctx));
        ctx.spawn(self.follow_tip());
    }
}

impl Handler<ChainNotification> for MinerLoop {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: ChainNotification, _: &mut Context<Self>) -> Self::Result {
        // The event names the tip; its timestamp (for the epoch) comes with GetTip.
        Box::pin(self.follow_tip())
    }
}

impl actix::Handler<crate::lifecycle::Stop> for MinerLoop {
    type Result = ();
    fn handle(&mut self, _: crate::lifecycle::Stop, ctx: &mut actix::Context<Self>) {
        actix::ActorContext::stop(ctx);
    }
}
