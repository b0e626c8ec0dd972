//! What a simulation observed, in order: every chain event (new tip, reorg) and peer event
//! (connected, disconnected, ping latency) of every node, stamped with the virtual time. Two
//! runs of one seed give the same trace; its [`Trace::digest`] says so in 32 bytes.

use std::cell::RefCell;
use std::rc::Rc;

use actix::{Actor, Context, Handler};
use spacetime::Hash;
use spacetime::chain::ChainEvent;
use spacetime::hash::Hasher;
use spacetime_actors::chain::ChainNotification;
use spacetime_actors::p2p::{PeerEvent, PeerNotification};
use tokio::time::Instant;

/// Something a node did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A chain event.
    Chain(ChainEvent),
    /// A peer event.
    Peer(PeerEvent),
}

/// One observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// Virtual milliseconds since the simulation started.
    pub at_ms: u64,
    /// The node.
    pub node: usize,
    /// What happened.
    pub what: Observed,
}

impl TraceEntry {
    /// A digest of the entry (its time, node and event).
    pub fn digest(&self) -> Hash {
        let mut h = Hasher::new(b"sim-trace-entry");
        h.update(&self.at_ms.to_le_bytes())
            .update(&(self.node as u64).to_le_bytes())
            .update(format!("{:?}", self.what).as_bytes());
        h.finalize()
    }
}

/// The observations of a run, shared by the observers of every node.
#[derive(Debug, Clone, Default)]
pub struct Trace(Rc<RefCell<Vec<TraceEntry>>>);

impl Trace {
    /// Every entry so far, in order.
    pub fn entries(&self) -> Vec<TraceEntry> {
        self.0.borrow().clone()
    }

    /// Entries so far.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    /// True when nothing was observed yet.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    /// One digest of the whole sequence: equal for equal runs.
    pub fn digest(&self) -> Hash {
        let mut h = Hasher::new(b"sim-trace");
        for entry in self.0.borrow().iter() {
            h.update(&entry.digest().0);
        }
        h.finalize()
    }

    fn push(&self, entry: TraceEntry) {
        self.0.borrow_mut().push(entry);
    }
}

/// Records one node's chain and peer events into the trace.
pub(crate) struct Observer {
    pub node: usize,
    pub start: Instant,
    pub trace: Trace,
}

impl Observer {
    fn record(&self, what: Observed) {
        let at_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.trace.push(TraceEntry {
            at_ms,
            node: self.node,
            what,
        });
    }
}

impl Actor for Observer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Nodes publish with try_send: a deep mailbox loses nothing between two polls.
        ctx.set_mailbox_capacity(1 << 16);
    }
}

impl Handler<ChainNotification> for Observer {
    type Result = ();
    fn handle(&mut self, msg: ChainNotification, _: &mut Context<Self>) {
        self.record(Observed::Chain(msg.0));
    }
}

impl Handler<PeerNotification> for Observer {
    type Result = ();
    fn handle(&mut self, msg: PeerNotification, _: &mut Context<Self>) {
        self.record(Observed::Peer(msg.0));
    }
}
