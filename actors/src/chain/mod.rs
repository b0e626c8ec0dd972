//! The ChainState actor: owns the chain database on its own thread, imports blocks, answers
//! queries and publishes NewTip / Reorg events.
//!
//! The rules are in [`spacetime::chain::Chain`]; this actor only routes messages to it. In
//! production it runs on a dedicated arbiter (its own thread), so block validation, batch
//! signature checks and redb commits never block the arbiters that run the network; in the
//! simulator it runs inline ([`Spawner`]) and each import is charged its modelled virtual cost.
//! Block bytes from peers are decoded here too ([`ImportBlockBytes`]), off the network threads.

pub mod blockfile;
pub mod download;
pub mod health;
pub mod metrics;
pub mod server;

use std::sync::Arc;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, Recipient, WrapFuture};
use spacetime::chain::{
    AccountState, BlockDraft, BuildError, Chain, ChainError, ChainEvent, ImportError, Imported,
    MiningContext, SupplyRow, Tip,
};
use spacetime::{
    Address, Block, BlockHeader, DecodeError, Epoch, Hash, Height, Keypair, NodeRng, decode,
};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::spawn::{ActorThread, CostModel, Spawner};

/// A chain event delivered to subscribers.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ChainNotification(pub ChainEvent);

/// Import a decoded block.
#[derive(Debug, Message)]
#[rtype(result = "Result<Imported, ImportError>")]
pub struct ImportBlock(pub Block);

/// Decode and import a block received as bytes (from a peer).
#[derive(Debug, Message)]
#[rtype(result = "Result<Imported, ImportBytesError>")]
pub struct ImportBlockBytes(pub Vec<u8>);

/// Why block bytes were not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportBytesError {
    /// The bytes are not a block.
    #[error("block does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// The block was refused.
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// The current tip.
#[derive(Debug, Message)]
#[rtype(result = "Tip")]
pub struct GetTip;

/// Main-chain headers after a locator (see [`Chain::headers_after`]).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<BlockHeader>, ChainError>")]
pub struct GetHeaders {
    /// Block hashes, newest first.
    pub locator: Vec<Hash>,
    /// Stop after this block.
    pub stop: Option<Hash>,
    /// Most headers wanted.
    pub max: usize,
}

/// A block by hash.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Block>, ChainError>")]
pub struct GetBlock(pub Hash);

/// A main-chain block by height.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Block>, ChainError>")]
pub struct GetBlockAt(pub Height);

/// An account with its state proof.
#[derive(Debug, Message)]
#[rtype(result = "Result<AccountState, ChainError>")]
pub struct GetAccount(pub Address);

/// Mature balance and next nonce of several accounts at the tip (no proofs).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<(spacetime::Amount, u64)>, ChainError>")]
pub struct GetAccountSnapshots(pub Vec<Address>);

/// The supply audit of a height range.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<SupplyRow>, ChainError>")]
pub struct GetSupply {
    /// First height.
    pub from: Height,
    /// Last height (clipped to the tip).
    pub to: Height,
}

/// Receive every NewTip and Reorg event from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<ChainNotification>);

/// The challenge, target and timestamp range of a block on the current tip in `epoch` (`None`
/// when the epoch is not after the tip's).
#[derive(Debug, Message)]
#[rtype(result = "Option<MiningContext>")]
pub struct GetMiningContext {
    /// The epoch to mine in.
    pub epoch: Epoch,
}

/// Build and sign a block on the tip from a draft (see [`Chain::build_block`]), then import it.
/// The key stays with the miner; it is lent for the signature.
#[derive(Debug, Message)]
#[rtype(result = "Result<MinedBlock, MineError>")]
pub struct BuildAndImport {
    /// The miner's choices.
    pub draft: BlockDraft,
    /// The miner key.
    pub key: Arc<Keypair>,
}

/// A block this node built and committed.
#[derive(Debug, Clone)]
pub struct MinedBlock {
    /// The block.
    pub block: Block,
    /// The import result.
    pub imported: Imported,
}

/// Why a mined block was not committed.
#[derive(Debug, thiserror::Error)]
pub enum MineError {
    /// The block could not be built (stale parent, invalid transfers, database).
    #[error("cannot build the block: {0}")]
    Build(#[from] BuildError),
    /// The built block was refused (a bug: it was built by the same rules).
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Stop the actor, closing the database.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopChain;

/// The actor.
pub struct ChainState {
    chain: Chain,
    clock: Arc<dyn Clock>,
    /// Witness randomness for the blocks this node signs.
    rng: NodeRng,
    /// Virtual time charged per import (zero outside the simulator).
    costs: CostModel,
    subscribers: Vec<Recipient<ChainNotification>>,
    /// The database's health: write failures and damage.
    health: health::StorageHealth,
}

impl Actor for ChainState {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        let tip = self.chain.tip();
        metrics::tip(tip.height, tip.timestamp_ms, self.chain.orphan_count());
    }
}

/// A running ChainState actor and the thread it runs on, if it has its own.
pub struct ChainStateHandle {
    /// Its address.
    pub addr: actix::Addr<ChainState>,
    thread: ActorThread,
}

impl ChainStateHandle {
    /// Stops the actor (closing the database cleanly) and its thread.
    pub async fn stop(self) {
        let _ = self.addr.send(StopChain).await;
        self.thread.join();
    }
}

impl ChainState {
    /// Starts the actor owning `chain`: on a new arbiter thread in production (with the
    /// parallel signature check), inline on the current arbiter in the simulator.
    pub fn start(
        mut chain: Chain,
        clock: Arc<dyn Clock>,
        rng: NodeRng,
        spawner: &Spawner,
    ) -> ChainStateHandle {
        let costs = spawner.costs();
        let make = move |chain| ChainState {
            chain,
            clock,
            rng,
            costs,
            subscribers: Vec::new(),
            health: health::StorageHealth::default(),
        };
        // On its own thread it may use a second one for signatures; inline it stays on one.
        chain.set_parallel_signatures(!spawner.is_inline());
        let (addr, thread) = spawner.start_actor(move || make(chain));
        ChainStateHandle { addr, thread }
    }

    /// Starts the actor on a new arbiter thread, owning `chain` (tools and tests).
    pub fn start_on_own_thread(
        chain: Chain,
        clock: Arc<dyn Clock>,
        rng: NodeRng,
    ) -> ChainStateHandle {
        Self::start(chain, clock, rng, &Spawner::Threads)
    }

    fn import(&mut self, block: Block, ctx: &mut Context<Self>) -> Result<Imported, ImportError> {
        let started = Instant::now();
        let cost = self.costs.block(block.transfers.len());
        let result = self.chain.import(block, self.clock.now_ms());
        if !cost.is_zero() {
            // The simulator's model of a busy CPU: nothing else is handled meanwhile.
            ctx.wait(tokio::time::sleep(cost).into_actor(self));
        }
        match &result {
            Ok(imported) => {
                self.storage_ok();
                metrics::imported(imported, started.elapsed());
                for event in &imported.events {
                    self.publish(event);
                }
            }
            Err(ImportError::Invalid { reason, .. })
            | Err(ImportError::BodyMismatch { reason, .. }) => metrics::rejected(reason),
            Err(ImportError::Chain(e)) => self.storage_error(e, ctx),
        }
        let tip = self.chain.tip();
        metrics::tip(tip.height, tip.timestamp_ms, self.chain.orphan_count());
        result
    }

    /// Passes a query's result through, looking at its database error if any.
    fn observe<T>(
        &mut self,
        result: Result<T, ChainError>,
        ctx: &mut Context<Self>,
    ) -> Result<T, ChainError> {
        if let Err(e) = &result {
            self.storage_error(e, ctx);
        }
        result
    }

    pub(crate) fn publish(&mut self, event: &ChainEvent) {
        self.subscribers.retain(|s| s.connected());
        for s in &self.subscribers {
            if s.try_send(ChainNotification(event.clone())).is_err() {
                metrics::event_dropped();
            }
        }
    }
}

impl Handler<ImportBlock> for ChainState {
    type Result = Result<Imported, ImportError>;
    fn handle(&mut self, msg: ImportBlock, ctx: &mut Context<Self>) -> Self::Result {
        self.import(msg.0, ctx)
    }
}

impl Handler<ImportBlockBytes> for ChainState {
    type Result = Result<Imported, ImportBytesError>;
    fn handle(&mut self, msg: ImportBlockBytes, ctx: &mut Context<Self>) -> Self::Result {
        let block = decode::<Block>(&msg.0)?;
        Ok(self.import(block, ctx)?)
    }
}

impl Handler<GetTip> for ChainState {
    type Result = actix::MessageResult<GetTip>;
    fn handle(&mut self, _: GetTip, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.chain.tip())
    }
}

impl Handler<GetHeaders> for ChainState {
    type Result = Result<Vec<BlockHeader>, ChainError>;
    fn handle(&mut self, msg: GetHeaders, ctx: &mut Context<Self>) -> Self::Result {
        let result = self
            .chain
            .headers_after(&msg.locator, msg.stop.as_ref(), msg.max);
        self.observe(result, ctx)
    }
}

impl Handler<GetBlock> for ChainState {
    type Result = Result<Option<Block>, ChainError>;
    fn handle(&mut self, msg: GetBlock, ctx: &mut Context<Self>) -> Self::Result {
        let result = self.chain.block(&msg.0);
        self.observe(result, ctx)
    }
}

impl Handler<GetBlockAt> for ChainState {
    type Result = Result<Option<Block>, ChainError>;
    fn handle(&mut self, msg: GetBlockAt, ctx: &mut Context<Self>) -> Self::Result {
        let result = self.chain.block_at(msg.0);
        self.observe(result, ctx)
    }
}

impl Handler<GetAccount> for ChainState {
    type Result = Result<AccountState, ChainError>;
    fn handle(&mut self, msg: GetAccount, ctx: &mut Context<Self>) -> Self::Result {
        let result = self.chain.account(&msg.0);
        self.observe(result, ctx)
    }
}

impl Handler<GetAccountSnapshots> for ChainState {
    type Result = Result<Vec<(spacetime::Amount, u64)>, ChainError>;
    fn handle(&mut self, msg: GetAccountSnapshots, ctx: &mut Context<Self>) -> Self::Result {
        let result = self.chain.account_snapshots(&msg.0);
        self.observe(result, ctx)
    }
}

impl Handler<GetSupply> for ChainState {
    type Result = Result<Vec<SupplyRow>, ChainError>;
    fn handle(&mut self, msg: GetSupply, ctx: &mut Context<Self>) -> Self::Result {
        let result = self.chain.supply_audit(msg.from, msg.to);
        self.observe(result, ctx)
    }
}

impl Handler<Subscribe> for ChainState {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}

impl Handler<GetMiningContext> for ChainState {
    type Result = Option<MiningContext>;
    fn handle(&mut self, msg: GetMiningContext, _: &mut Context<Self>) -> Self::Result {
        // No mining on a database that cannot take the block.
        if self.chain.is_closed() {
            return None;
        }
        self.chain.mining_context(&self.chain.tip().hash, msg.epoch)
    }
}

impl Handler<BuildAndImport> for ChainState {
    type Result = Result<MinedBlock, MineError>;
    fn handle(&mut self, msg: BuildAndImport, ctx: &mut Context<Self>) -> Self::Result {
        let mut draft = msg.draft;
        // A template can lag the tip by an event: drop the transfers the tip no longer accepts
        // (each try names the first bad one) rather than lose the block.
        let block = loop {
            match self
                .chain
                .build_block(draft.clone(), &msg.key, &mut self.rng)
            {
                Ok(block) => break block,
                Err(BuildError::Invalid(reason)) if !draft.transfers.is_empty() => {
                    match transfer_index(&reason) {
                        Some(i) if i < draft.transfers.len() => {
                            tracing::debug!("dropping transfer {i} from the template: {reason}");
                            draft.transfers.remove(i);
                        }
                        _ => draft.transfers.clear(),
                    }
                }
                Err(BuildError::Chain(e)) => {
                    self.storage_error(&e, ctx);
                    return Err(BuildError::Chain(e).into());
                }
                Err(e) => return Err(e.into()),
            }
        };
        let imported = self.import(block.clone(), ctx)?;
        Ok(MinedBlock { block, imported })
    }
}

/// The transfer a state rule names, if any.
fn transfer_index(reason: &spacetime::chain::InvalidBlock) -> Option<usize> {
    use spacetime::chain::InvalidBlock as I;
    match reason {
        I::Transfer { index, .. }
        | I::TransferSignature { index }
        | I::Nonce { index, .. }
        | I::InsufficientBalance { index, .. }
        | I::Overflow { index } => Some(*index),
        _ => None,
    }
}

impl Handler<StopChain> for ChainState {
    type Result = ();
    fn handle(&mut self, _: StopChain, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
