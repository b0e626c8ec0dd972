//! One task per peer session: handshake, Hello, then a loop that reads frames, enforces the
//! peer's rate limits, answers pings, and writes what the manager queues for it.
//!
//! The task owns the socket and the Noise session; it talks to the PeerManager actor only by
//! messages, and reports every protocol violation so the manager can score and ban.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use spacetime::p2p::{Misbehavior, PeerId, PeerRateLimiter};
use spacetime::wire::{DisconnectReason, Hello, LocalHello, Message, Ping};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::manager::{PeerDown, PeerEvent, PeerManagerActor, PeerUp};
use crate::clock::Clock;
use crate::net::{HelloError, Role, Session, StaticKey, exchange_hello, handshake};

/// What the manager asks a peer task to do.
#[derive(Debug)]
pub enum Outgoing {
    /// Send a message.
    Send(Box<Message>),
    /// Send `Disconnect` with this reason and end the session.
    Disconnect(DisconnectReason),
}

/// The shortest interval between periodic messages a node sends one peer (pings, address
/// requests): the default limits allow one per second after a burst.
pub const MIN_PERIODIC_INTERVAL: Duration = Duration::from_secs(1);

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
            handshake: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle: Duration::from_secs(120),
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
    pub manager: Addr<PeerManagerActor>,
    pub clock: Arc<dyn Clock>,
    pub timeouts: Timeouts,
}

/// Runs a session to its end, then tells the manager.
pub(crate) async fn run(task: PeerTask, stream: TcpStream, outgoing: mpsc::Receiver<Outgoing>) {
    let manager = task.manager.clone();
    let id = task.id;
    let (reason, self_connection) = match open(&task, stream).await {
        Ok((session, theirs)) => (serve(task, session, theirs, outgoing).await, false),
        Err(ended) => ended,
    };
    // The session is over; the manager must hear of it even if its mailbox is busy.
    let mut down = PeerDown {
        id,
        reason,
        self_connection,
    };
    for _ in 0..100 {
        match manager.try_send(down) {
            Ok(()) => return,
            Err(actix::dev::SendError::Full(back)) => {
                down = back;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(actix::dev::SendError::Closed(_)) => return,
        }
    }
}

/// The Noise handshake and the Hello exchange. On failure, returns why, and whether the peer
/// turned out to be this node itself.
async fn open(task: &PeerTask, stream: TcpStream) -> Result<(Session, Hello), (String, bool)> {
    let timeout = task.timeouts.handshake;
    let mut session = match handshake(stream, &task.key, task.role, timeout).await {
        Ok(s) => s,
        Err(e) => {
            super::metrics::handshake_failed(&e);
            return Err((format!("handshake: {e}"), false));
        }
    };
    match exchange_hello(&mut session, &task.hello, &task.local, timeout).await {
        Ok(theirs) => Ok((session, theirs)),
        Err(e) => {
            super::metrics::hello_failed(&e);
            let own = matches!(e, HelloError::Refused(DisconnectReason::SelfConnection));
            Err((format!("hello: {e}"), own))
        }
    }
}

/// The open session's life; returns why it ended.
async fn serve(
    task: PeerTask,
    mut session: Session,
    theirs: Hello,
    mut outgoing: mpsc::Receiver<Outgoing>,
) -> String {
    let PeerTask {
        id,
        manager,
        clock,
        timeouts,
        ..
    } = task;
    if manager.try_send(PeerUp { id, hello: theirs }).is_err() {
        return "manager busy".into();
    }
    let report = |what: Misbehavior| {
        super::metrics::misbehaved(what);
        let _ = manager.try_send(PeerEvent::Misbehaved { id, what });
    };
    let mut reported = session.traffic();
    let mut limiter = PeerRateLimiter::new(clock.now_ms());
    // Never ping faster than peers' rate limits allow, or they would ban us.
    let mut ping = tokio::time::interval(timeouts.ping_interval.max(MIN_PERIODIC_INTERVAL));
    ping.tick().await;
    let mut last_heard = clock.now_ms();
    let mut pending_ping: Option<(u64, u64)> = None;
    loop {
        tokio::select! {
            received = session.recv_frame() => {
                let frame = match received {
                    Ok(f) => f,
                    Err(crate::net::TransportError::Frame(e)) => {
                        report(Misbehavior::MalformedMessage);
                        return format!("bad frame: {e}");
                    }
                    Err(e) => return e.to_string(),
                };
                let now = clock.now_ms();
                last_heard = now;
                super::metrics::received(frame.kind, frame.payload.len());
                if !limiter.admit(frame.kind, frame.payload.len(), now) {
                    report(Misbehavior::RateLimited);
                    continue;
                }
                let message = match frame.decode() {
                    Ok(m) => m,
                    Err(e) => {
                        report(Misbehavior::MalformedMessage);
                        return format!("bad message: {e}");
                    }
                };
                match message {
                    Message::Ping(p) => {
                        if let Err(e) = queue(&mut session, &Message::Pong(p)) {
                            return e.to_string();
                        }
                    }
                    Message::Pong(p) => match pending_ping.take() {
                        Some((nonce, sent)) if nonce == p.nonce => {
                            let _ = manager.try_send(PeerEvent::Latency { id, rtt_ms: now.saturating_sub(sent) });
                        }
                        other => {
                            pending_ping = other;
                            report(Misbehavior::UnexpectedMessage);
                        }
                    },
                    Message::Hello(_) => report(Misbehavior::UnexpectedMessage),
                    Message::Disconnect(d) => return format!("peer disconnected: {:?} {}", d.reason, d.detail),
                    other => {
                        // Peers can feed this path: never block, count what is dropped.
                        if manager.try_send(PeerEvent::Message { id, message: other }).is_err() {
                            super::metrics::dropped();
                            tracing::debug!(peer = id.0, "manager mailbox full, message dropped");
                        }
                    }
                }
            }
            command = outgoing.recv() => match command {
                Some(Outgoing::Send(m)) => {
                    if let Err(e) = queue(&mut session, &m) {
                        return e.to_string();
                    }
                    // Drain whatever else is ready, then write once.
                    while let Ok(next) = outgoing.try_recv() {
                        match next {
                            Outgoing::Send(m) => {
                                if let Err(e) = queue(&mut session, &m) {
                                    return e.to_string();
                                }
                            }
                            Outgoing::Disconnect(reason) => return disconnect(&mut session, reason).await,
                        }
                    }
                }
                Some(Outgoing::Disconnect(reason)) => return disconnect(&mut session, reason).await,
                None => return disconnect(&mut session, DisconnectReason::Shutdown).await,
            },
            _ = ping.tick() => {
                let now = clock.now_ms();
                if now.saturating_sub(last_heard) > timeouts.idle.as_millis() as u64 {
                    report(Misbehavior::Timeout);
                    return disconnect(&mut session, DisconnectReason::Timeout).await;
                }
                let nonce = now ^ id.0.rotate_left(32);
                pending_ping = Some((nonce, now));
                if let Err(e) = queue(&mut session, &Message::Ping(Ping { nonce })) {
                    return e.to_string();
                }
            }
        }
        // A peer that does not drain our writes for as long as it may stay silent is dropped:
        // without the bound, one that stops reading would stall this loop (and its timers)
        // and hold its slot forever.
        match tokio::time::timeout(timeouts.idle, session.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e.to_string(),
            Err(_) => {
                report(Misbehavior::Timeout);
                return "write timeout: the peer stopped reading".into();
            }
        }
        let now_traffic = session.traffic();
        super::metrics::traffic(
            now_traffic.bytes_in - reported.bytes_in,
            now_traffic.bytes_out - reported.bytes_out,
        );
        reported = now_traffic;
    }
}

/// Queues a message and counts it.
fn queue(session: &mut Session, message: &Message) -> Result<(), crate::net::TransportError> {
    let bytes = session.queue(message)?;
    super::metrics::sent(message.kind(), bytes);
    Ok(())
}

async fn disconnect(session: &mut crate::net::Session, reason: DisconnectReason) -> String {
    crate::net::refuse(session, reason, "").await;
    format!("disconnected: {reason:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use spacetime::p2p::rate_limit::default_limit;
    use spacetime::wire::MessageKind;

    /// Our own keepalive and peer exchange must stay within what peers allow by default, or
    /// honest nodes would score each other as flooders.
    #[test]
    fn our_periodic_messages_respect_default_limits() {
        for kind in [
            MessageKind::Ping,
            MessageKind::Pong,
            MessageKind::RequestPeers,
            MessageKind::PeerList,
        ] {
            let limit = default_limit(kind);
            assert!(limit.per_second >= 1, "{kind:?}");
            let fastest_allowed = Duration::from_millis(1000 / u64::from(limit.per_second));
            assert!(MIN_PERIODIC_INTERVAL >= fastest_allowed, "{kind:?}");
        }
    }
}
