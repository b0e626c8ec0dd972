//! The Mempool actor: owns the pending transfers ([`spacetime::mempool::Mempool`]), admits
//! submissions against the tip's accounts, follows NewTip/Reorg events, and hands block
//! templates to the miner.
//!
//! Account state lives with ChainState on another thread; the actor asks it for the accounts a
//! step needs (`GetAccountSnapshots`, and `GetBlock` for a tip change) and finishes the step
//! when the answers arrive. The two handlers whose step awaits ChainState ([`SubmitTransfer`]
//! and [`ChainNotification`]) return [`AtomicResponse`], which actix runs with `ctx.wait`:
//! until the step has finished, the actor handles no other message and polls none of its other
//! futures (the expiry timer included). So steps run one at a time, in mailbox order, the pool
//! never sees two steps interleaved, and every step reads accounts fetched after the previous
//! step changed the pool (an admission cannot apply a snapshot taken before a tip update that
//! finished in the meantime). The other handlers answer at once and touch the pool only
//! between steps.
//!
//! The price of that order: while a step waits for ChainState, templates and stats wait too,
//! and messages queue in the mailbox (ChainState's `try_send` of an event fails, and is
//! counted, when that queue is full). ChainState never waits on this actor, so no cycle forms.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, AtomicResponse, Context, Handler, Message, MessageResult,
    Recipient, WrapFuture,
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
/// Admissions not told to a subscriber whose mailbox was full.
pub const PUBLISH_DROPPED: &str = "spacetime_mempool_publish_dropped_total";

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

/// Submit several transfers at once, in order (transfers relayed by peers): one account fetch
/// for all of them. Each gets its own answer.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Result<Admitted, MempoolError>>, SubmitError>")]
pub struct SubmitTransfers(pub Vec<Transfer>);

/// A transfer the pool admitted, told to subscribers (the Gossip actor relays it).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct TxAdmitted {
    /// The transfer.
    pub transfer: Arc<Transfer>,
    /// Back in the pool after a reorg took its block away: relay it even to peers that had it.
    pub again: bool,
}

/// Receive every [`TxAdmitted`] from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SubscribeTxs(pub Recipient<TxAdmitted>);

/// The pending transfers best mined first (fee rate, then nonce order), at most `max`: what a
/// new peer asks for with `TxPoolRequest`.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Transfer>")]
pub struct GetPending {
    /// Most transfers.
    pub max: usize,
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
    subscribers: Vec<Recipient<TxAdmitted>>,
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
            subscribers: Vec::new(),
        }
    }

    fn publish(&mut self, transfer: &Transfer, again: bool) {
        if self.subscribers.is_empty() {
            return;
        }
        let transfer = Arc::new(transfer.clone());
        self.subscribers.retain(|s| s.connected());
        for s in &self.subscribers {
            if s.try_send(TxAdmitted {
                transfer: transfer.clone(),
                again,
            })
            .is_err()
            {
                metrics::counter!(PUBLISH_DROPPED).increment(1);
            }
        }
    }

    /// Admits one transfer against fetched accounts, with metrics and the announcement.
    fn admit(
        &mut self,
        transfer: Transfer,
        accounts: &impl spacetime::mempool::AccountSource,
    ) -> Result<Admitted, MempoolError> {
        let copy = (!self.subscribers.is_empty()).then(|| transfer.clone());
        let result = self.pool.add(transfer, self.clock.now_ms(), accounts);
        match &result {
            Ok(a) => {
                metrics::counter!(ADMITTED).increment(1);
                metrics::counter!(REMOVED).increment(a.evicted.len() as u64);
                if let Some(t) = copy {
                    self.publish(&t, false);
                }
            }
            Err(e) => {
                metrics::counter!(REJECTED, "reason" => e.reason()).increment(1);
            }
        }
        result
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
    // Atomic: the pool must not change between the account fetch and the admission.
    type Result = AtomicResponse<Self, Result<Admitted, SubmitError>>;
    fn handle(&mut self, msg: SubmitTransfer, _: &mut Context<Self>) -> Self::Result {
        let accounts = self.links.accounts.clone();
        let sender = msg.0.from;
        AtomicResponse::new(Box::pin(
            async move { fetch(&accounts, vec![sender]).await }
                .into_actor(self)
                .map(move |fetched, act, _| {
                    let map = fetched.map_err(SubmitError::Chain)?;
                    let result = act.admit(msg.0, &source(map));
                    act.gauges();
                    Ok(result?)
                }),
        ))
    }
}

impl Handler<SubmitTransfers> for MempoolActor {
    // Atomic for the same reason as `SubmitTransfer`.
    type Result = AtomicResponse<Self, Result<Vec<Result<Admitted, MempoolError>>, SubmitError>>;
    fn handle(&mut self, msg: SubmitTransfers, _: &mut Context<Self>) -> Self::Result {
        let accounts = self.links.accounts.clone();
        let mut senders: Vec<Address> = msg.0.iter().map(|t| t.from).collect();
        senders.sort_unstable();
        senders.dedup();
        AtomicResponse::new(Box::pin(
            async move { fetch(&accounts, senders).await }
                .into_actor(self)
                .map(move |fetched, act, _| {
                    let map = fetched.map_err(SubmitError::Chain)?;
                    let accounts = source(map);
                    let results = msg.0.into_iter().map(|t| act.admit(t, &accounts)).collect();
                    act.gauges();
                    Ok(results)
                }),
        ))
    }
}

impl Handler<SubscribeTxs> for MempoolActor {
    type Result = ();
    fn handle(&mut self, msg: SubscribeTxs, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}

impl Handler<GetPending> for MempoolActor {
    type Result = MessageResult<GetPending>;
    fn handle(&mut self, msg: GetPending, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.pool.template(msg.max, usize::MAX))
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
    // Atomic: the senders read here, the fetched accounts and the update must all belong to
    // one pool state, with no admission in between.
    type Result = AtomicResponse<Self, ()>;
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
        AtomicResponse::new(Box::pin(
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
                // Transfers back from the branch that left the main chain are relayed again.
                for t in &reverted {
                    if act.pool.contains(&t.id()) {
                        act.publish(t, true);
                    }
                }
                metrics::counter!(REMOVED).increment(removed.len() as u64);
                act.gauges();
            }),
        ))
    }
}

impl actix::Handler<crate::lifecycle::Stop> for MempoolActor {
    type Result = ();
    fn handle(&mut self, _: crate::lifecycle::Stop, ctx: &mut actix::Context<Self>) {
        actix::ActorContext::stop(ctx);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use actix::ResponseFuture;
    use spacetime::block::{HEADER_VERSION, tx_root};
    use spacetime::encoding::BoundedVec;
    use spacetime::{
        Coinbase, Keypair, ProofOfSpace, PublicKey, Target, UnsignedHeader, UnsignedTransfer,
    };
    use tokio::sync::oneshot;

    use super::*;

    const CHAIN: ChainId = ChainId(42);

    struct FixedClock;

    impl Clock for FixedClock {
        fn now_ms(&self) -> u64 {
            1_700_000_000_000
        }
    }

    /// What the fake ChainState knows: accounts (mature, nonce) and blocks at its tip.
    #[derive(Default)]
    struct Tip {
        accounts: HashMap<Address, (Amount, u64)>,
        blocks: HashMap<Hash, Block>,
    }

    /// Answers like ChainState, from a [`Tip`] the test changes. The first account query reads
    /// the tip when it arrives, tells the test, and is answered only when the test opens the
    /// gate: a reply still in flight while the chain moves on.
    struct FakeChain {
        tip: Arc<Mutex<Tip>>,
        gate: Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>,
    }

    impl Actor for FakeChain {
        type Context = Context<Self>;
    }

    impl Handler<GetAccountSnapshots> for FakeChain {
        type Result = ResponseFuture<Result<Vec<(Amount, u64)>, ChainError>>;
        fn handle(&mut self, msg: GetAccountSnapshots, _: &mut Context<Self>) -> Self::Result {
            let answer: Vec<(Amount, u64)> = {
                let tip = self.tip.lock().unwrap();
                msg.0
                    .iter()
                    .map(|a| tip.accounts.get(a).copied().unwrap_or_default())
                    .collect()
            };
            let gate = self.gate.take();
            Box::pin(async move {
                if let Some((asked, open)) = gate {
                    asked.send(()).unwrap();
                    open.await.unwrap();
                }
                Ok(answer)
            })
        }
    }

    impl Handler<GetBlock> for FakeChain {
        type Result = Result<Option<Block>, ChainError>;
        fn handle(&mut self, msg: GetBlock, _: &mut Context<Self>) -> Self::Result {
            Ok(self.tip.lock().unwrap().blocks.get(&msg.0).cloned())
        }
    }

    /// A block at height 1 by `miner` with `transfers` (only its body matters here).
    fn block_with(miner: &Keypair, transfers: Vec<Transfer>) -> Block {
        let coinbase = Coinbase {
            height: 1,
            outputs: BoundedVec::new(),
            miner: miner.public(),
            extra_data: Default::default(),
        };
        let header = UnsignedHeader {
            version: HEADER_VERSION,
            height: 1,
            parent: Hash::ZERO,
            timestamp_ms: 1_700_000_000_000,
            epoch: 1,
            target: Target::from_leading_zero_bits(1),
            challenge: Hash::ZERO,
            proof: ProofOfSpace::default(),
            score: Hash::ZERO,
            miner: miner.public(),
            tx_root: tx_root(&coinbase, &transfers),
            state_root: Hash::ZERO,
        };
        Block {
            header: header.sign(miner).unwrap(),
            coinbase,
            transfers: BoundedVec::try_from_vec(transfers).unwrap(),
        }
    }

    /// Alice's nonce-0 transfer is submitted; ChainState reads her account (nonce 0), but before
    /// that answer reaches the pool, a block including the very transfer becomes the tip (nonce
    /// 1). The tip update must not run in between: it would find nothing to remove, and the
    /// admission would then put the already-included transfer into the pool for good.
    #[actix_rt::test]
    async fn a_tip_update_waits_for_an_admission_in_flight() {
        let alice = Keypair::from_seed(&[1; 32]);
        let miner = Keypair::from_seed(&[2; 32]);
        let tx = UnsignedTransfer {
            from: alice.public(),
            to: PublicKey([7; 32]),
            amount: Amount(1_000),
            fee: Amount(10),
            nonce: 0,
            chain_id: CHAIN,
        }
        .sign(&alice)
        .unwrap();
        let block = block_with(&miner, vec![tx.clone()]);
        let hash = block.hash();

        let tip = Arc::new(Mutex::new(Tip::default()));
        tip.lock()
            .unwrap()
            .accounts
            .insert(alice.public(), (Amount(1_000_000), 0));
        let (asked_tx, asked) = oneshot::channel();
        let (open, open_rx) = oneshot::channel();
        let chain = FakeChain {
            tip: tip.clone(),
            gate: Some((asked_tx, open_rx)),
        }
        .start();
        let links = MempoolLinks {
            accounts: chain.clone().recipient(),
            blocks: chain.recipient(),
        };
        let mempool =
            MempoolActor::new(MempoolConfig::default(), CHAIN, Arc::new(FixedClock), links).start();

        // The submission's account query has been read (nonce 0); its answer is held back.
        let submitted = mempool.send(SubmitTransfer(tx.clone()));
        asked.await.unwrap();

        // Meanwhile ChainState imports the block: alice's transfer is spent, her nonce is 1.
        {
            let mut tip = tip.lock().unwrap();
            tip.accounts
                .insert(alice.public(), (Amount(1_000_000 - 1_010), 1));
            tip.blocks.insert(hash, block);
        }
        let mut followed =
            Box::pin(mempool.send(ChainNotification(ChainEvent::NewTip { hash, height: 1 })));
        // Give the tip update every chance to run ahead of the held answer (every other answer
        // comes at once); a serialised actor does not start it before the admission is done.
        let mut ran_ahead = false;
        for _ in 0..100 {
            tokio::select! {
                biased;
                done = &mut followed => {
                    done.unwrap();
                    ran_ahead = true;
                    break;
                }
                () = tokio::task::yield_now() => {}
            }
        }

        open.send(()).unwrap();
        let admitted = submitted.await.unwrap().unwrap();
        assert_eq!(admitted.id, tx.id());
        if !ran_ahead {
            followed.await.unwrap();
        }

        let template = mempool
            .send(GetTemplate {
                max_count: 10,
                max_bytes: 1 << 20,
            })
            .await
            .unwrap();
        let stale: Vec<Hash> = template.iter().map(Transfer::id).collect();
        assert!(
            stale.is_empty(),
            "the pool holds transfers the tip already includes: {stale:?}"
        );
        let stats = mempool.send(GetMempoolStats).await.unwrap();
        assert_eq!(
            stats,
            MempoolStats {
                transfers: 0,
                bytes: 0
            }
        );
        assert!(
            !ran_ahead,
            "the tip update ran while an admission waited for its accounts"
        );
    }
}
