//! One open peer session's protocol rules as a sans-IO state machine: keepalive pings and
//! latency, the idle timeout, per-peer rate limits, decoding, and what reaches the node.
//!
//! In the style of quinn-proto: the driver (the node's Peer task, or the simulator) owns the
//! socket, the Noise session and the clock. It feeds [`PeerSession`] what happened (a frame
//! arrived, the byte stream broke, the timer fired) with the current time in milliseconds,
//! sleeps until [`PeerSession::next_timeout_ms`], and carries out every [`SessionAction`] it
//! takes from [`PeerSession::poll`]. Nothing here does I/O, reads a clock or counts metrics.
//!
//! The session starts once the Noise handshake and the Hello exchange are done; those happen
//! before it and are the driver's.

use std::collections::VecDeque;
use std::fmt;

use crate::BoundedString;
use crate::wire::{
    DisconnectReason, Frame, FrameError, MAX_DISCONNECT_DETAIL_BYTES, Message, Ping,
};

use super::rate_limit::PeerRateLimiter;
use super::score::Misbehavior;

/// The shortest interval, in ms, between periodic messages a node sends one peer (pings,
/// address requests): peers' default rate limits allow one such message per second after a
/// burst, so anything faster would get an honest node scored as a flooder and banned.
pub const MIN_PERIODIC_INTERVAL_MS: u64 = 1000;

/// Timing of an open session, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Interval between pings; raised to [`MIN_PERIODIC_INTERVAL_MS`] if below it.
    pub ping_interval_ms: u64,
    /// A peer silent for longer than this is dropped (checked at each ping tick).
    pub idle_ms: u64,
}

impl Default for SessionConfig {
    /// The node's defaults: a ping every 30 s, a peer silent for 2 min is dropped.
    fn default() -> Self {
        Self {
            ping_interval_ms: 30_000,
            idle_ms: 120_000,
        }
    }
}

/// Why a session ended, carried by [`SessionAction::Close`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The peer sent `Disconnect`; nothing is to be sent back.
    PeerDisconnected {
        /// The peer's reason.
        reason: DisconnectReason,
        /// The peer's detail, for logs.
        detail: BoundedString<MAX_DISCONNECT_DETAIL_BYTES>,
    },
    /// We end the session: the driver must send the peer `Disconnect` with this reason (see
    /// [`SessionEnd::farewell`]) before closing the connection.
    Disconnected {
        /// The reason to send.
        reason: DisconnectReason,
    },
    /// The byte stream was not a valid sequence of frames: nothing more can be read, but our
    /// direction of the session is intact, so the peer is told `ProtocolViolation`.
    BadFrame(FrameError),
    /// A frame's payload did not decode as a canonical message: the peer is told
    /// `ProtocolViolation`.
    BadMessage(FrameError),
    /// The peer stopped reading our writes for as long as it may stay silent; nothing can be
    /// sent back.
    WriteStalled,
}

impl SessionEnd {
    /// The `Disconnect` the driver must send the peer before closing, if any: every end of
    /// ours that can still reach the peer names its reason.
    pub fn farewell(&self) -> Option<DisconnectReason> {
        match self {
            Self::Disconnected { reason } => Some(*reason),
            Self::BadFrame(_) | Self::BadMessage(_) => Some(DisconnectReason::ProtocolViolation),
            Self::PeerDisconnected { .. } | Self::WriteStalled => None,
        }
    }
}

impl fmt::Display for SessionEnd {
    /// The line logged and handed to the peer manager as the reason the session ended.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerDisconnected { reason, detail } => {
                write!(f, "peer disconnected: {reason:?} {detail}")
            }
            Self::Disconnected { reason } => write!(f, "disconnected: {reason:?}"),
            Self::BadFrame(e) => write!(f, "bad frame: {e}"),
            Self::BadMessage(e) => write!(f, "bad message: {e}"),
            Self::WriteStalled => f.write_str("write timeout: the peer stopped reading"),
        }
    }
}

/// What the driver must do, taken in order from [`PeerSession::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAction {
    /// Write this message to the peer.
    Send(Message),
    /// Hand this message to the node (the peer manager routes it).
    Deliver(Message),
    /// Report the peer's misbehaviour to the peer manager (which scores and bans).
    Misbehaved(Misbehavior),
    /// A ping was answered: report the round-trip time to the peer manager.
    Latency {
        /// Round-trip time, ms.
        rtt_ms: u64,
    },
    /// The session is over: always the last action; every later input is ignored.
    Close(SessionEnd),
}

/// The state of one open peer session; see the module documentation for how to drive it.
#[derive(Debug, Clone)]
pub struct PeerSession {
    /// Ping interval (clamped) and idle limit.
    config: SessionConfig,
    /// Mixed into ping nonces so that sessions opened in the same millisecond differ.
    nonce_salt: u64,
    /// What the peer may send.
    limiter: PeerRateLimiter,
    /// When the peer last sent a frame, ms.
    last_heard_ms: u64,
    /// The ping awaiting its pong: (nonce, sent at ms).
    pending_ping: Option<(u64, u64)>,
    /// When the next ping tick is due, ms.
    next_tick_ms: u64,
    /// Outputs not yet polled; reused across calls.
    actions: VecDeque<SessionAction>,
    /// Set once `Close` was queued.
    closed: bool,
}

impl PeerSession {
    /// A session opened at `now_ms` (right after the Hello exchange); `nonce_salt` makes its
    /// ping nonces differ from other sessions' (the node passes the peer's id).
    pub fn new(now_ms: u64, config: SessionConfig, nonce_salt: u64) -> Self {
        let config = SessionConfig {
            ping_interval_ms: config.ping_interval_ms.max(MIN_PERIODIC_INTERVAL_MS),
            ..config
        };
        Self {
            config,
            nonce_salt,
            limiter: PeerRateLimiter::new(now_ms),
            last_heard_ms: now_ms,
            pending_ping: None,
            // The first ping goes out one interval after the session opens.
            next_tick_ms: now_ms.saturating_add(config.ping_interval_ms),
            actions: VecDeque::new(),
            closed: false,
        }
    }

    /// The configuration in force (ping interval already clamped).
    pub fn config(&self) -> SessionConfig {
        self.config
    }

    /// True once the session queued its `Close`; inputs are then ignored.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// A complete frame arrived from the peer at `now_ms`.
    pub fn on_frame(&mut self, now_ms: u64, frame: &Frame) {
        if self.closed {
            return;
        }
        self.last_heard_ms = now_ms;
        if !self.limiter.admit(frame.kind, frame.payload.len(), now_ms) {
            // Over the limit: penalise and drop the frame unread; the session goes on.
            self.push(SessionAction::Misbehaved(Misbehavior::RateLimited));
            return;
        }
        let message = match frame.decode() {
            Ok(m) => m,
            Err(e) => {
                self.push(SessionAction::Misbehaved(Misbehavior::MalformedMessage));
                self.close(SessionEnd::BadMessage(e));
                return;
            }
        };
        match message {
            Message::Ping(p) => self.push(SessionAction::Send(Message::Pong(p))),
            Message::Pong(p) => match self.pending_ping.take() {
                Some((nonce, sent_ms)) if nonce == p.nonce => {
                    self.push(SessionAction::Latency {
                        rtt_ms: now_ms.saturating_sub(sent_ms),
                    });
                }
                other => {
                    // Not the answer we wait for: keep waiting for it.
                    self.pending_ping = other;
                    self.push(SessionAction::Misbehaved(Misbehavior::UnexpectedMessage));
                }
            },
            // Hello belongs to the exchange before the session.
            Message::Hello(_) => {
                self.push(SessionAction::Misbehaved(Misbehavior::UnexpectedMessage));
            }
            Message::Disconnect(d) => self.close(SessionEnd::PeerDisconnected {
                reason: d.reason,
                detail: d.detail,
            }),
            other => self.push(SessionAction::Deliver(other)),
        }
    }

    /// The peer's byte stream is not a valid sequence of frames (the frame decoder failed).
    pub fn on_bad_frame(&mut self, error: FrameError) {
        if self.closed {
            return;
        }
        self.push(SessionAction::Misbehaved(Misbehavior::MalformedMessage));
        self.close(SessionEnd::BadFrame(error));
    }

    /// The timer fired at `now_ms`: at a ping tick, drop a peer silent for longer than the
    /// idle limit, else ping it. Calls before [`next_timeout_ms`](Self::next_timeout_ms) do
    /// nothing; ticks missed by a late call are skipped, not sent in a burst (two pings in a
    /// row would make an honest peer's first pong look unexpected).
    pub fn on_timeout(&mut self, now_ms: u64) {
        if self.closed || now_ms < self.next_tick_ms {
            return;
        }
        let interval = self.config.ping_interval_ms;
        let missed = (now_ms - self.next_tick_ms) / interval;
        self.next_tick_ms = self
            .next_tick_ms
            .saturating_add(missed.saturating_add(1).saturating_mul(interval));
        if now_ms.saturating_sub(self.last_heard_ms) > self.config.idle_ms {
            self.push(SessionAction::Misbehaved(Misbehavior::Timeout));
            self.close(SessionEnd::Disconnected {
                reason: DisconnectReason::Timeout,
            });
            return;
        }
        let nonce = now_ms ^ self.nonce_salt.rotate_left(32);
        self.pending_ping = Some((nonce, now_ms));
        self.push(SessionAction::Send(Message::Ping(Ping { nonce })));
    }

    /// When [`on_timeout`](Self::on_timeout) must next be called, ms; `u64::MAX` once closed.
    pub fn next_timeout_ms(&self) -> u64 {
        if self.closed {
            u64::MAX
        } else {
            self.next_tick_ms
        }
    }

    /// The node wants `message` sent to the peer; queued behind earlier actions so that every
    /// write goes through [`poll`](Self::poll) in order and nothing is sent after `Close`.
    pub fn send(&mut self, message: Message) {
        if self.closed {
            return;
        }
        self.push(SessionAction::Send(message));
    }

    /// The node ends the session (its manager asked, or it shuts down): the driver sends the
    /// peer `Disconnect` with `reason` and closes.
    pub fn disconnect(&mut self, reason: DisconnectReason) {
        if self.closed {
            return;
        }
        self.close(SessionEnd::Disconnected { reason });
    }

    /// The peer has not drained our writes for the idle limit (the driver bounds each flush by
    /// [`SessionConfig::idle_ms`]): without this, a peer that stops reading would stall the
    /// session and hold its slot forever.
    pub fn on_write_stalled(&mut self) {
        if self.closed {
            return;
        }
        self.push(SessionAction::Misbehaved(Misbehavior::Timeout));
        self.close(SessionEnd::WriteStalled);
    }

    /// The next action for the driver, oldest first; `None` when there is nothing to do.
    pub fn poll(&mut self) -> Option<SessionAction> {
        self.actions.pop_front()
    }

    fn push(&mut self, action: SessionAction) {
        self.actions.push_back(action);
    }

    /// Queues the final action; nothing is accepted after it.
    fn close(&mut self, end: SessionEnd) {
        self.push(SessionAction::Close(end));
        self.closed = true;
        self.pending_ping = None;
    }
}

#[cfg(test)]
mod tests;
