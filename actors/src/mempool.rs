//! The Mempool actor: owns the pending transfers ([`spacetime::mempool::Mempool`]), admits
//! submissions against the tip's accounts, follows NewTip/Reorg events, and hands block
//! templates to the miner.
//!
//! Account state lives with ChainState on another thread; the actor asks it for the accounts a
//! step needs (`GetAccountSnapshots`) and finishes the step when the answer arrives. Steps run
//! one at a time (`ctx.wait`), so the pool never sees two steps interleaved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
    ResponseActFuture, WrapFuture,
};
use spacetime::chain::{ChainError, ChainEvent};
use spacetime::mempool::{AccountSnapshot, Admitted, Mempool, MempoolConfig, MempoolError};
use spacetime::{Address, Amount, Block, ChainId, Hash, Transfer};

use crate::chain::{ChainNotification, GetAccountSnapshots, GetBlock};
use crate::clock::Clock;

/// Pending transfers.
pub const TRANSFERS: &str = "spacetime_mempool_transfers";
/// Encoded bytes of pending transfers.
pub const BYTES: &str = "spacetime_mempool_bytes";
/// Transfers admitted.
pub const ADMITTED: &str = "spacetime_mempool_admitted_total";
/// Transfers refused, by reason.
pub const REJECTED: &str = "spacetime_mempool_rejected_total";
/// Transfers removed after admission (included, evicted, expired, invalidated).
pub const REMOVED: &str = "spacetime_mempool_removed_total";

/// Submit a transfer.
#[derive(Debug, Message)]
#[rtype(result = "Result<Admitted, SubmitError>")]
pub struct SubmitTransfer(pub Transfer);

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The pool refused it.
    #[error(transparent)]
    Refused(#[from] MempoolError),
    /// The chain could not be asked for the sender's account.
    #[error("chain state unavailable: {0}")]
    Chain(String),
}

/// A block template: transfers by fee rate in nonce order.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Transfer>")]
pub struct GetTemplate {
    /// Most transfers.
    pub max_count: usize,
    /// Most encoded bytes.
    pub max_bytes: usize,
}

/// Pool size.
#[derive(Debug, Message)]
#[rtype(result = "MempoolStats")]
pub struct GetMempoolStats;

/// The answer to [`GetMempoolStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolStats {
    /// Pending transfers.
    pub transfers: usize,
    /// Their encoded bytes.
    pub bytes: usize,
}

/// Where the actor asks ChainState.
pub struct MempoolLinks {
    /// Accounts at the tip.
    pub accounts: Recipient<GetAccountSnapshots>,
    /// Blocks of tip changes.
    pub blocks: Recipient<GetBlock>,
}

/// The actor.
pub struct MempoolActor {
    pool: Mempool,
    clock: Arc<dyn Clock>,
    links: MempoolLinks,
}

impl MempoolActor {
    /// A pool with `config` for the network `chain_id`.
    pub fn new(
        config: MempoolConfig,
        chain_id: ChainId,
        clock: Arc<dyn Clock>,
        links: MempoolLinks,
    ) -> Self {
        Self {
            pool: Mempool::new(config, chain_id),
            clock,
            links,
        }
    }

    fn gauges(&self) {
        metrics::gauge!(TRANSFERS).set(self.pool.len() as f64);
        metrics::gauge!(BYTES).set(self.pool.bytes() as f64);
    }
}

/// Accounts fetched for one step; an address not fetched reads as empty, so every step fetches
/// all the addresses it touches.
fn source(map: HashMap<Address, AccountSnapshot>) -> impl Fn(&Address) -> AccountSnapshot {
    move |a| map.get(a).copied().unwrap_or_default()
}

async fn fetch(
    accounts: &Recipient<GetAccountSnapshots>,
    addresses: Vec<Address>,
) -> Result<HashMap<Address, AccountSnapshot>, String> {
    let answers: Result<Vec<(Amount, u64)>, ChainError> = accounts
        .send(GetAccountSnapshots(addresses.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let answers = answers.map_err(|e| e.to_string())?;
    Ok(addresses
        .into_iter()
        .zip(answers)
        .map(|(a, (mature, nonce))| (a, AccountSnapshot { mature, nonce }))
        .collect())
}

impl Actor for MempoolActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = Duration::from_secs(60);
        ctx.run_interval(every, |act, _| {
            let gone = act.pool.expire(act.clock.now_ms());
            metrics::counter!(REMOVED).increment(gone.len() as u64);
            act.gauges();
        });
        self.gauges();
    }
}

impl Handler<SubmitTransfer> for MempoolActor {
    type Result = ResponseActFuture<Self, Result<Admitted, SubmitError>>;
    fn handle(&mut self, msg: SubmitTransfer, _: &mut Context<Self>) -> Self::Result {
        let accounts = self.links.accounts.clone();
        let sender = msg.0.from;
        Box::pin(
            async move { fetch(&accounts, vec![sender]).await }
                .into_actor(self)
                .map(move |fetched, act, _| {
                    let map = fetched.map_err(SubmitError::Chain)?;
                    let result = act.pool.add(msg.0, act.clock.now_ms(), &source(map));
                    match &result {
                        Ok(a) => {
                            metrics::counter!(ADMITTED).increment(1);
                            metrics::counter!(REMOVED).increment(a.evicted.len() as u64);
                        }
                        Err(e) => {
                            metrics::counter!(REJECTED, "reason" => e.reason()).increment(1);
                        }
                    }
                    act.gauges();
                    Ok(result?)
                }),
        )
    }
}

impl Handler<GetTemplate> for MempoolActor {
    type Result = MessageResult<GetTemplate>;
    fn handle(&mut self, msg: GetTemplate, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.pool.template(msg.max_count, msg.max_bytes))
    }
}

impl Handler<GetMempoolStats> for MempoolActor {
    type Result = MessageResult<GetMempoolStats>;
    fn handle(&mut self, _: GetMempoolStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(MempoolStats {
            transfers: self.pool.len(),
            bytes: self.pool.bytes(),
        })
    }
}

impl Handler<ChainNotification> for MempoolActor {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, msg: ChainNotification, _: &mut Context<Self>) -> Self::Result {
        let (connected, disconnected, reorg): (Vec<Hash>, Vec<Hash>, bool) = match msg.0 {
            ChainEvent::NewTip { hash, .. } => (vec![hash], Vec::new(), false),
            ChainEvent::Reorg {
                connected,
                disconnected,
                ..
            } => (connected, disconnected, true),
        };
        let blocks = self.links.blocks.clone();
        let accounts = self.links.accounts.clone();
        let pool_senders = if reorg {
            self.pool.senders()
        } else {
            Vec::new()
        };
        Box::pin(
            async move {
                let get = |hashes: Vec<Hash>| {
                    let blocks = blocks.clone();
                    async move {
                        let mut out: Vec<Transfer> = Vec::new();
                        for h in hashes {
                            let block: Option<Block> = blocks.send(GetBlock(h)).await.ok()?.ok()?;
                            out.extend(block?.transfers.into_inner());
                        }
                        Some(out)
                    }
                };
                let included = get(connected).await?;
                let reverted = get(disconnected).await?;
                let mut addresses: Vec<Address> = pool_senders;
                addresses.extend(included.iter().map(|t| t.from));
                addresses.extend(reverted.iter().flat_map(|t| [t.from, t.to]));
                addresses.sort_unstable();
                addresses.dedup();
                let map = fetch(&accounts, addresses).await.ok()?;
                Some((included, reverted, map))
            }
            .into_actor(self)
            .map(move |fetched, act, _| {
                let Some((included, reverted, map)) = fetched else {
                    tracing::warn!(
                        "mempool could not follow a tip change: chain state unavailable"
                    );
                    return;
                };
                let accounts = source(map);
                let now = act.clock.now_ms();
                let mut removed = act.pool.update_chain(&included, &reverted, now, &accounts);
                if reorg {
                    // Coinbase credits can turn immature again on a reorg.
                    removed.extend(act.pool.revalidate(&accounts));
                }
                metrics::counter!(REMOVED).increment(removed.len() as u64);
                act.gauges();
            }),
        )
    }
}
