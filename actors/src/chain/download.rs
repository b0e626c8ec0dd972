//! What the Sync actor asks of ChainState: store verified headers, import downloaded bodies
//! (in batches far from the tip), and report where the chain stands ([`SyncView`]).

use actix::{AsyncContext, Context, Handler, Message, WrapFuture};
use spacetime::chain::{
    ChainError, HeaderRef, HeadersError, HeadersOutcome, ImportError, ImportStatus, PendingHeaders,
    VerifiedHeaders,
};
use spacetime::{Block, Hash, Height};
use tokio::time::Instant;

use super::{ChainState, metrics};

/// Store a batch of verified headers (see `Chain::import_headers`); `pending` is the sending
/// peer's low-work chain, handed back updated.
#[derive(Debug, Message)]
#[rtype(result = "(PendingHeaders, Result<HeadersOutcome, HeadersError>)")]
pub struct ImportHeaders {
    /// The headers, their proofs checked.
    pub headers: VerifiedHeaders,
    /// The peer's pending chain.
    pub pending: PendingHeaders,
}

/// Import downloaded blocks in order; with `batch`, runs of consecutive blocks share one write
/// transaction (far from the tip), otherwise each block commits alone.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<(Hash, Result<ImportStatus, ImportError>)>, ChainError>")]
pub struct ImportBlocks {
    /// The blocks, lowest first.
    pub blocks: Vec<Block>,
    /// Commit consecutive blocks together.
    pub batch: bool,
}

/// Where the chain stands for sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncView {
    /// The tip.
    pub tip: HeaderRef,
    /// The end of the best verified header chain.
    pub best_header: HeaderRef,
    /// Blocks of the best header chain without a body, lowest first.
    pub missing: Vec<(Hash, Height)>,
    /// A locator along the best header chain.
    pub locator: Vec<Hash>,
    /// The best header's timestamp.
    pub best_header_timestamp_ms: u64,
}

/// Ask for a [`SyncView`] with at most `window` missing blocks.
#[derive(Debug, Message)]
#[rtype(result = "SyncView")]
pub struct GetSyncView {
    /// Most missing blocks listed.
    pub window: usize,
}

impl Handler<ImportHeaders> for ChainState {
    type Result = actix::MessageResult<ImportHeaders>;
    fn handle(&mut self, msg: ImportHeaders, ctx: &mut Context<Self>) -> Self::Result {
        let mut pending = msg.pending;
        let result = self
            .chain
            .import_headers(&mut pending, msg.headers, self.clock.now_ms());
        metrics::headers(&result);
        if let Err(spacetime::chain::HeadersError::Chain(e)) = &result {
            self.storage_error(e, ctx);
        }
        actix::MessageResult((pending, result))
    }
}

impl Handler<ImportBlocks> for ChainState {
    type Result = Result<Vec<(Hash, Result<ImportStatus, ImportError>)>, ChainError>;
    fn handle(&mut self, msg: ImportBlocks, ctx: &mut Context<Self>) -> Self::Result {
        let started = Instant::now();
        let transfers: usize = msg.blocks.iter().map(|b| b.transfers.len()).sum();
        let count = msg.blocks.len();
        let results = if msg.batch {
            self.chain
                .import_blocks(msg.blocks, self.clock.now_ms())
                .results
        } else {
            let now = self.clock.now_ms();
            msg.blocks
                .into_iter()
                .map(|b| (b.hash(), self.chain.import(b, now)))
                .collect()
        };
        let cost = self.costs.blocks(count, transfers);
        if !cost.is_zero() {
            ctx.wait(tokio::time::sleep(cost).into_actor(self));
        }
        let took = started.elapsed() / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(results.len());
        let mut last_event = None;
        for (hash, result) in results {
            match result {
                Ok(imported) => {
                    metrics::imported(&imported, took);
                    // Far behind, subscribers hear of the newest tip only (their mailboxes
                    // are small); a reorg is always told.
                    for event in imported.events {
                        if matches!(event, spacetime::chain::ChainEvent::Reorg { .. }) {
                            if let Some(e) = last_event.take() {
                                self.publish(&e);
                            }
                            self.publish(&event);
                        } else {
                            last_event = Some(event);
                        }
                    }
                    self.storage_ok();
                    out.push((hash, Ok(imported.status)));
                }
                Err(ImportError::Chain(e)) => {
                    self.storage_error(&e, ctx);
                    if let Some(e) = last_event.take() {
                        self.publish(&e);
                    }
                    return Err(e);
                }
                Err(e) => {
                    if let ImportError::Invalid { reason, .. }
                    | ImportError::BodyMismatch { reason, .. } = &e
                    {
                        metrics::rejected(reason);
                    }
                    out.push((hash, Err(e)));
                }
            }
        }
        if let Some(e) = last_event {
            self.publish(&e);
        }
        let tip = self.chain.tip();
        metrics::tip(tip.height, tip.timestamp_ms, self.chain.orphan_count());
        Ok(out)
    }
}

impl Handler<GetSyncView> for ChainState {
    type Result = actix::MessageResult<GetSyncView>;
    fn handle(&mut self, msg: GetSyncView, _: &mut Context<Self>) -> Self::Result {
        let best_header = self.chain.best_header();
        metrics::best_header(best_header.height, self.chain.header_only_count());
        let best_header_timestamp_ms = self
            .chain
            .index()
            .get(&best_header.hash)
            .map_or(0, |e| e.timestamp_ms);
        actix::MessageResult(SyncView {
            best_header_timestamp_ms,
            tip: self.chain.tip_ref(),
            best_header,
            missing: self.chain.missing_bodies(msg.window),
            locator: self.chain.header_locator(),
        })
    }
}

/// Run the cheap checks of a relayed block, storing nothing: its body matches its header
/// (transaction root, well-formed transfers) and its header passes every rule against its
/// parent (see `Chain::precheck`).
#[derive(Debug, Message)]
#[rtype(result = "Result<spacetime::chain::Precheck, spacetime::chain::InvalidBlock>")]
pub struct PrecheckBlock(pub std::sync::Arc<spacetime::Block>);

impl Handler<PrecheckBlock> for ChainState {
    type Result = Result<spacetime::chain::Precheck, spacetime::chain::InvalidBlock>;
    fn handle(&mut self, msg: PrecheckBlock, _: &mut Context<Self>) -> Self::Result {
        spacetime::chain::validate::check_body_structure(&msg.0, self.chain.genesis().chain_id)?;
        let hash = msg.0.hash();
        self.chain
            .precheck(&msg.0.header, &hash, self.clock.now_ms())
    }
}
