//! The ChainServer actor: answers peers' `GetHeaders`, `GetBlocks` and `GetBlock` from read
//! transactions on the chain database, beside ChainState's writes, so a peer's request never
//! waits behind the import queue. Answers go straight into the asking session's outgoing
//! queue; when that queue is full the blocks that do not fit are named in `NotFound`, so the
//! peer asks again elsewhere or later and nothing is buffered without bound.

use actix::{Actor, ActorContext, Context, Handler, Message as ActixMessage};
use spacetime::BoundedVec;
use spacetime::Hash;
use spacetime::chain::ChainReader;
use spacetime::wire::{
    Headers, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS_PER_MESSAGE, Message, NotFound,
};

use crate::p2p::events::{Outgoing, PeerRequest};
use crate::spawn::{ActorThread, Spawner};

/// Requests served, by kind.
pub const REQUESTS_SERVED: &str = "spacetime_chain_requests_served_total";
/// Answers that did not fit the asking session's queue (named in `NotFound` instead, or lost).
pub const ANSWERS_DROPPED: &str = "spacetime_chain_answers_dropped_total";
/// Requests that failed on a database error.
pub const REQUESTS_FAILED: &str = "spacetime_chain_requests_failed_total";

/// The actor.
pub struct ChainServer {
    reader: ChainReader,
}

impl Actor for ChainServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Peers feed this mailbox through `try_send`: bounded, drops counted by the sessions.
        ctx.set_mailbox_capacity(1024);
    }
}

/// A running ChainServer and its thread, if it has its own.
pub struct ChainServerHandle {
    /// Its address.
    pub addr: actix::Addr<ChainServer>,
    thread: ActorThread,
}

impl ChainServerHandle {
    /// Stops the actor and its thread.
    pub async fn stop(self) {
        let _ = self.addr.send(StopServer).await;
        self.thread.join();
    }
}

impl ChainServer {
    /// Starts the server on `reader`: on its own arbiter in production, inline in the simulator.
    pub fn start(reader: ChainReader, spawner: &Spawner) -> ChainServerHandle {
        let (addr, thread) = spawner.start_actor(move || ChainServer { reader });
        ChainServerHandle { addr, thread }
    }

    fn serve(&self, request: PeerRequest) -> Result<(), spacetime::chain::ChainError> {
        let PeerRequest {
            peer,
            message,
            reply,
        } = request;
        let send = |m: Message| -> bool {
            if reply.try_send(Outgoing::Send(Box::new(m))).is_ok() {
                true
            } else {
                metrics::counter!(ANSWERS_DROPPED).increment(1);
                false
            }
        };
        match message {
            Message::GetHeaders(q) => {
                metrics::counter!(REQUESTS_SERVED, "kind" => "get_headers").increment(1);
                let max = usize::from(q.max).min(MAX_HEADERS_PER_MESSAGE);
                let stop = (q.stop != Hash::ZERO).then_some(q.stop);
                let headers = self.reader.headers_after(&q.locator, stop.as_ref(), max)?;
                let headers = BoundedVec::try_from_vec(headers).unwrap_or_default();
                send(Message::Headers(Headers { headers }));
            }
            Message::GetBlock(q) => {
                metrics::counter!(REQUESTS_SERVED, "kind" => "get_block").increment(1);
                self.answer_blocks(&[q.hash], &send)?;
            }
            Message::GetBlocks(q) => {
                metrics::counter!(REQUESTS_SERVED, "kind" => "get_blocks").increment(1);
                self.answer_blocks(&q.hashes, &send)?;
            }
            other => {
                tracing::debug!(
                    peer = peer.0,
                    kind = other.kind().name(),
                    "not a chain request"
                );
            }
        }
        Ok(())
    }

    /// Sends the blocks held, in order, then one `NotFound` for the rest (and for those the
    /// session's queue had no room for).
    fn answer_blocks(
        &self,
        hashes: &[Hash],
        send: &dyn Fn(Message) -> bool,
    ) -> Result<(), spacetime::chain::ChainError> {
        let blocks = self.reader.blocks(hashes)?;
        let mut missing = Vec::new();
        let mut full = false;
        for (hash, block) in hashes.iter().zip(blocks) {
            match block {
                Some(b) if !full => {
                    if !send(Message::Block(Box::new(b))) {
                        full = true;
                        missing.push(*hash);
                    }
                }
                _ => missing.push(*hash),
            }
        }
        if !missing.is_empty() {
            missing.truncate(MAX_BLOCKS_PER_REQUEST);
            let hashes = BoundedVec::try_from_vec(missing).unwrap_or_default();
            send(Message::NotFound(NotFound { hashes }));
        }
        Ok(())
    }
}

impl Handler<PeerRequest> for ChainServer {
    type Result = ();
    fn handle(&mut self, msg: PeerRequest, _: &mut Context<Self>) {
        if let Err(e) = self.serve(msg) {
            metrics::counter!(REQUESTS_FAILED).increment(1);
            tracing::warn!("serving a peer: {e}");
        }
    }
}

/// Stop the server.
#[derive(Debug, ActixMessage)]
#[rtype(result = "()")]
pub struct StopServer;

impl Handler<StopServer> for ChainServer {
    type Result = ();
    fn handle(&mut self, _: StopServer, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
