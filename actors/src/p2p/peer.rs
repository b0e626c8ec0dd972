//! One task per peer session: the handshake and Hello, then a thin driver of the session's
//! rules ([`PeerSession`]): it reads frames, sleeps until the session's next timeout, writes
//! what the session and the manager queue, and reports to the manager.
//!
//! The task owns the byte stream and the Noise session; it talks to the PeerManager only
//! through a `Recipient` of [`SessionEvent`]s, and reports every protocol violation so the
//! manager can score and ban.

use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use spacetime::NodeRng;
use spacetime::p2p::{
    MIN_PERIODIC_INTERVAL_MS, Misbehavior, PeerId, PeerSession, SessionAction, SessionConfig,
};
use spacetime::wire::{DisconnectReason, Hello, LocalHello, Message};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::events::{CloseReceiver, Outgoing, PeerChainMessage, PeerRequest, Routes, SessionEvent};
use crate::clock::Clock;
use crate::net::{
    BoxStream, HelloError, Role, Session, StaticKey, TransportError, exchange_hello, handshake,
};

/// The shortest interval between periodic messages a node sends one peer (pings, address
/// requests): the default limits allow one per second after a burst.
pub const MIN_PERIODIC_INTERVAL: Duration = Duration::from_millis(MIN_PERIODIC_INTERVAL_MS);

/// Timing of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Noise handshake and Hello exchange together.
    pub handshake: Duration,
    /// Interval between pings (at least [`MIN_PERIODIC_INTERVAL`]).
    pub ping_interval: Duration,
    /// A peer silent for this long is dropped.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            // Noise XX and Hello take about two round trips: seconds even across the world,
            // and a connection that sits in the handshake pool longer is not an honest one.
            handshake: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            idle: Duration::from_secs(120),
        }
    }
}

impl Timeouts {
    /// The session rules' timing.
    fn session(&self) -> SessionConfig {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        SessionConfig {
            ping_interval_ms: ms(self.ping_interval),
            idle_ms: ms(self.idle),
        }
    }
}

/// Everything a peer task needs.
pub(crate) struct PeerTask {
    pub id: PeerId,
    pub role: Role,
    pub key: Arc<StaticKey>,
    pub local: LocalHello,
    pub hello: Hello,
    pub events: Recipient<SessionEvent>,
    pub clock: Arc<dyn Clock>,
    pub timeouts: Timeouts,
    /// This session's share of the node's generator (the handshake's ephemeral key).
    pub rng: NodeRng,
    /// Where chain messages go.
    pub routes: Routes,
    /// This session's own outgoing queue, for answers (weak: the manager's handle owns it).
    pub reply: mpsc::WeakSender<Outgoing>,
    /// The node-wide bandwidth limits.
    pub bandwidth: Option<Arc<super::Bandwidth>>,
    /// The manager's signal to end the session with a reason.
    pub close: CloseReceiver,
}

/// Runs a session to its end, then tells the manager.
pub(crate) async fn run(
    mut task: PeerTask,
    stream: BoxStream,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    let events = task.events.clone();
    let id = task.id;
    let mut close = task.close.clone();
    // The manager may end a connection still in its handshake (evicted from the handshake
    // pool); messages queued meanwhile are sent once the session is open.
    let mut early = Vec::new();
    let opened = {
        let open = open(&task, stream);
        tokio::pin!(open);
        loop {
            tokio::select! {
                biased;
                opened = &mut open => break opened,
                _ = close.changed() => {
                    let reason = *close.borrow();
                    break Err(Ended::new(format!("closed during the handshake: {reason:?}")));
                }
                command = outgoing.recv() => match command {
                    Some(Outgoing::Send(m)) => early.push(*m),
                    None => break Err(Ended::new("closed during the handshake".into())),
                },
            }
        }
    };
    // The close signal seen during the handshake stays seen: serve checks its value first.
    task.close = close;
    let ended = match opened {
        Ok((session, theirs)) => Ended::new(serve(task, session, theirs, outgoing, early).await),
        Err(ended) => ended,
    };
    // The session is over; the manager must hear of it even if its mailbox is busy.
    let mut down = SessionEvent::Down {
        id,
        reason: ended.reason,
        self_connection: ended.self_connection,
        handshake_fault: ended.fault,
    };
    for _ in 0..100 {
        match events.try_send(down) {
            Ok(()) => return,
            Err(actix::dev::SendError::Full(back)) => {
                down = back;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(actix::dev::SendError::Closed(_)) => return,
        }
    }
}

/// Why a session ended, as the manager hears it.
struct Ended {
    /// For logs.
    reason: String,
    /// The peer turned out to be this node itself.
    self_connection: bool,
    /// The peer's fault that failed the Noise handshake.
    fault: Option<Misbehavior>,
}

impl Ended {
    fn new(reason: String) -> Self {
        Self {
            reason,
            self_connection: false,
            fault: None,
        }
    }
}

/// The Noise handshake and the Hello exchange. On failure, returns why, whether the peer
/// turned out to be this node itself, and whether the handshake failed by the peer's fault.
async fn open(task: &PeerTask, stream: BoxStream) -> Result<(Session, Hello), Ended> {
    let timeout = task.timeouts.handshake;
    // A split keeps the node's key source: the ephemeral key comes from the OS on a real node.
    let rng = task.rng.derive("noise").split();
    let mut session = match handshake(stream, &task.key, task.role, timeout, rng).await {
        Ok(s) => s,
        Err(e) => {
            super::metrics::handshake_failed(&e);
            // Bytes that are no Noise handshake, or none in time: the peer's doing (a closed
            // or broken connection may be the network's).
            let fault = match e {
                TransportError::Noise(_) | TransportError::Frame(_) => {
                    Some(Misbehavior::MalformedHandshake)
                }
                TransportError::HandshakeTimeout => Some(Misbehavior::HandshakeTimeout),
                TransportError::Closed | TransportError::Io(_) | TransportError::Random(_) => None,
            };
            return Err(Ended {
                fault,
                ..Ended::new(format!("handshake: {e}"))
            });
        }
    };
    match exchange_hello(&mut session, &task.hello, &task.local, timeout).await {
        Ok(theirs) => Ok((session, theirs)),
        Err(e) => {
            super::metrics::hello_failed(&e);
            let own = matches!(e, HelloError::Refused(DisconnectReason::SelfConnection));
            Err(Ended {
                self_connection: own,
                ..Ended::new(format!("hello: {e}"))
            })
        }
    }
}

/// The open session's life; returns why it ended.
async fn serve(
    task: PeerTask,
    mut session: Session,
    theirs: Hello,
    mut outgoing: mpsc::Receiver<Outgoing>,
    early: Vec<Message>,
) -> String {
    let PeerTask {
        id,
        events,
        clock,
        timeouts,
        routes,
        reply,
        bandwidth,
        mut close,
        ..
    } = task;
    let deliver = Deliver {
        id,
        events: &events,
        routes: &routes,
        reply: &reply,
    };
    if events
        .try_send(SessionEvent::Up { id, hello: theirs })
        .is_err()
    {
        return "manager busy".into();
    }
    let mut rules = PeerSession::new(clock.now_ms(), timeouts.session(), id.0);
    for m in early {
        rules.send(m);
    }
    // Asked to close while the Hello was on its way (a banned node id): the peer is told why.
    if let Some(reason) = *close.borrow_and_update() {
        rules.disconnect(reason);
    }
    let write_bound = Duration::from_millis(rules.config().idle_ms);
    let mut reported = session.traffic();
    let timer = tokio::time::sleep_until(deadline(&rules, clock.as_ref()));
    tokio::pin!(timer);
    loop {
        // Timers first, then our own queue, then the peer: a flood of incoming frames can
        // never starve keepalive, timeouts or the manager's commands. Biased: deterministic.
        tokio::select! {
            biased;
            () = &mut timer => rules.on_timeout(clock.now_ms()),
            // The manager ends the session (a ban, an eviction, shutdown): before anything
            // queued, so a full queue cannot hold the Disconnect up.
            _ = close.changed() => {
                rules.disconnect(close.borrow().unwrap_or(DisconnectReason::Shutdown));
            }
            command = outgoing.recv() => match command {
                Some(Outgoing::Send(m)) => {
                    rules.send(*m);
                    // Take whatever else is ready too, then write once.
                    while let Ok(Outgoing::Send(m)) = outgoing.try_recv() {
                        rules.send(*m);
                    }
                }
                None => rules.disconnect(DisconnectReason::Shutdown),
            },
            received = session.recv_frame() => match received {
                Ok(frame) => {
                    super::metrics::received(frame.kind, frame.payload.len());
                    if let Some(b) = &bandwidth {
                        b.downloaded(frame.payload.len() as u64).await;
                    }
                    rules.on_frame(clock.now_ms(), &frame);
                }
                Err(TransportError::Frame(e)) => rules.on_bad_frame(e),
                Err(e) => return e.to_string(),
            },
        }
        if let Some(ended) = carry_out(&mut rules, &mut session, &deliver).await {
            return ended;
        }
        // A peer that does not drain our writes for as long as it may stay silent is dropped:
        // without the bound, one that stops reading would stall this loop (and its timers)
        // and hold its slot forever.
        match tokio::time::timeout(write_bound, session.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e.to_string(),
            Err(_) => {
                rules.on_write_stalled();
                if let Some(ended) = carry_out(&mut rules, &mut session, &deliver).await {
                    return ended;
                }
            }
        }
        let now_traffic = session.traffic();
        super::metrics::traffic(
            now_traffic.bytes_in - reported.bytes_in,
            now_traffic.bytes_out - reported.bytes_out,
        );
        if let Some(b) = &bandwidth {
            b.uploaded(now_traffic.bytes_out - reported.bytes_out).await;
        }
        reported = now_traffic;
        timer.as_mut().reset(deadline(&rules, clock.as_ref()));
    }
}

/// When the session's rules next want a timeout, on tokio's clock.
fn deadline(rules: &PeerSession, clock: &dyn Clock) -> Instant {
    let wait = rules.next_timeout_ms().saturating_sub(clock.now_ms());
    // A closed session wants none; a day stands for never without overflowing the clock.
    Instant::now() + Duration::from_millis(wait.min(86_400_000))
}

/// Where a session's messages for the node go.
struct Deliver<'a> {
    id: PeerId,
    events: &'a Recipient<SessionEvent>,
    routes: &'a Routes,
    reply: &'a mpsc::WeakSender<Outgoing>,
}

impl Deliver<'_> {
    /// Hands a message to its owner: chain requests to the ChainServer, headers and blocks to
    /// Sync, the rest to the manager. Peers can feed this path: never block, count drops.
    fn message(&self, message: Message) {
        let id = self.id;
        if let Some(relay) = &self.routes.relay
            && is_relay_message(&message)
        {
            let Some(reply) = self.reply.upgrade() else {
                return;
            };
            if relay
                .try_send(PeerRequest {
                    peer: id,
                    message,
                    reply,
                })
                .is_err()
            {
                super::metrics::dropped();
                tracing::debug!(peer = id.0, "relay mailbox full, message dropped");
            }
            return;
        }
        let sent = match (&message, &self.routes.requests, &self.routes.sync) {
            (
                Message::GetHeaders(_) | Message::GetBlocks(_) | Message::GetBlock(_),
                Some(to),
                _,
            ) => {
                let Some(reply) = self.reply.upgrade() else {
                    return;
                };
                to.try_send(PeerRequest {
                    peer: id,
                    message,
                    reply,
                })
                .is_ok()
            }
            (Message::Headers(_) | Message::Block(_) | Message::NotFound(_), _, Some(to)) => {
                to.try_send(PeerChainMessage { peer: id, message }).is_ok()
            }
            _ => self
                .events
                .try_send(SessionEvent::Message { id, message })
                .is_ok(),
        };
        if !sent {
            super::metrics::dropped();
            tracing::debug!(peer = id.0, "mailbox full, message dropped");
        }
    }
}

/// Whether the Gossip actor handles `message`.
fn is_relay_message(message: &Message) -> bool {
    matches!(
        message,
        Message::BlockProposal(_)
            | Message::CompactBlock(_)
            | Message::BlockAnnounce(_)
            | Message::GetBlock(_)
            | Message::Tx(_)
            | Message::Txs(_)
            | Message::TxInv(_)
            | Message::GetTxs(_)
            | Message::TxPoolRequest(_)
            | Message::SendBlocks(_)
            | Message::NewChallenge(_)
            | Message::ProofSubmission(_)
            | Message::BlockAccepted(_)
    )
}

/// Carries out the rules' actions; returns why the session ended if it did.
async fn carry_out(
    rules: &mut PeerSession,
    session: &mut Session,
    deliver: &Deliver<'_>,
) -> Option<String> {
    let (events, id) = (deliver.events, deliver.id);
    while let Some(action) = rules.poll() {
        match action {
            SessionAction::Send(m) => match session.queue(&m) {
                Ok(bytes) => super::metrics::sent(m.kind(), bytes),
                Err(e) => return Some(e.to_string()),
            },
            SessionAction::Deliver(message) => deliver.message(message),
            SessionAction::Misbehaved(what) => report(events, id, what),
            SessionAction::Latency { rtt_ms } => {
                let _ = events.try_send(SessionEvent::Latency { id, rtt_ms });
            }
            SessionAction::Close(end) => {
                // The farewell goes out after whatever was queued before it.
                if let Some(reason) = end.farewell() {
                    crate::net::refuse(session, reason, "").await;
                }
                return Some(end.to_string());
            }
        }
    }
    None
}

fn report(events: &Recipient<SessionEvent>, id: PeerId, what: Misbehavior) {
    super::metrics::misbehaved(what);
    let _ = events.try_send(SessionEvent::Misbehaved { id, what });
}
