//! Misbehaviour scoring: peers that break the protocol accumulate points and are banned.

use crate::wire::DisconnectReason;

/// Things a peer can do wrong, each with a penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehavior {
    /// A frame or message that does not decode.
    MalformedMessage,
    /// A message over its rate limit.
    RateLimited,
    /// A message out of order (before `Hello`, a second `Hello`, an unasked answer).
    UnexpectedMessage,
    /// A header or block that fails validation.
    InvalidBlock,
    /// A transaction that fails validation.
    InvalidTransaction,
    /// Headers that do not connect or are not in order.
    NonConnectingHeaders,
    /// No answer in time.
    Timeout,
    /// Claimed more chain work (in `Hello` or an announcement) than its headers showed.
    UnprovenWork,
    /// Sent the same relayed item twice (honest peers never do: they remember what we have).
    RepeatedItem,
    /// Relayed a block that passed the cheap checks and then failed full validation. An honest
    /// peer relays such a block too (it forwards before it applies the body, as BIP152's
    /// high-bandwidth mode does), so this is not a ban at once: making one costs an epoch won.
    InvalidRelayedBlock,
    /// Sent bytes that are not a Noise handshake (before the node id is proven: charged to the
    /// address). One is a port scan or a client of another protocol; a stream of them a flood.
    MalformedHandshake,
    /// Held a handshake slot without finishing the Noise handshake in time (charged to the
    /// address).
    HandshakeTimeout,
}

impl Misbehavior {
    /// Points added to the peer's score.
    pub const fn penalty(self) -> u32 {
        match self {
            Self::MalformedMessage | Self::InvalidBlock => BAN_THRESHOLD,
            Self::UnexpectedMessage => 20,
            Self::NonConnectingHeaders => 20,
            Self::UnprovenWork => 50,
            Self::InvalidRelayedBlock => 25,
            Self::InvalidTransaction => 10,
            Self::RateLimited | Self::RepeatedItem => 10,
            Self::MalformedHandshake => 25,
            Self::HandshakeTimeout => 10,
            Self::Timeout => 5,
        }
    }

    /// The reason given when this ends the session.
    pub const fn disconnect_reason(self) -> DisconnectReason {
        match self {
            Self::RateLimited => DisconnectReason::RateLimited,
            Self::Timeout | Self::HandshakeTimeout => DisconnectReason::Timeout,
            _ => DisconnectReason::ProtocolViolation,
        }
    }
}

/// Score at which a peer is banned.
pub const BAN_THRESHOLD: u32 = 100;
/// How long a ban lasts.
pub const DEFAULT_BAN_MS: u64 = 24 * 60 * 60 * 1000;

/// What to do with a peer after a penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the session.
    Keep,
    /// Disconnect and ban the peer until the given time (ms since the Unix epoch).
    Ban {
        /// When the ban ends.
        until_ms: u64,
        /// The reason sent in `Disconnect`.
        reason: DisconnectReason,
    },
}

/// A peer's misbehaviour score; it decays by one point per minute of good behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerScore {
    points: u32,
    last_ms: u64,
}

/// Milliseconds for one point of decay.
const DECAY_MS_PER_POINT: u64 = 60_000;

impl PeerScore {
    /// Current points after decay.
    pub fn points(&self, now_ms: u64) -> u32 {
        let decay = now_ms.saturating_sub(self.last_ms) / DECAY_MS_PER_POINT;
        self.points
            .saturating_sub(u32::try_from(decay).unwrap_or(u32::MAX))
    }

    /// Records a misbehaviour and says what to do.
    pub fn record(&mut self, what: Misbehavior, now_ms: u64) -> Verdict {
        self.points = self.points(now_ms).saturating_add(what.penalty());
        self.last_ms = now_ms;
        if self.points >= BAN_THRESHOLD {
            Verdict::Ban {
                until_ms: now_ms.saturating_add(DEFAULT_BAN_MS),
                reason: what.disconnect_reason(),
            }
        } else {
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_bans_at_once_floods_after_a_while() {
        let mut s = PeerScore::default();
        assert!(matches!(
            s.record(Misbehavior::MalformedMessage, 0),
            Verdict::Ban {
                reason: DisconnectReason::ProtocolViolation,
                ..
            }
        ));
        let mut s = PeerScore::default();
        for _ in 0..9 {
            assert_eq!(s.record(Misbehavior::RateLimited, 0), Verdict::Keep);
        }
        assert_eq!(
            s.record(Misbehavior::RateLimited, 0),
            Verdict::Ban {
                until_ms: DEFAULT_BAN_MS,
                reason: DisconnectReason::RateLimited
            }
        );
    }

    #[test]
    fn unproven_work_bans_on_the_second_offence() {
        let mut s = PeerScore::default();
        assert_eq!(Misbehavior::UnprovenWork.penalty(), 50);
        assert_eq!(s.record(Misbehavior::UnprovenWork, 0), Verdict::Keep);
        assert_eq!(
            s.record(Misbehavior::UnprovenWork, 0),
            Verdict::Ban {
                until_ms: DEFAULT_BAN_MS,
                reason: DisconnectReason::ProtocolViolation
            }
        );
    }

    #[test]
    fn good_behaviour_decays_the_score() {
        let mut s = PeerScore::default();
        s.record(Misbehavior::UnexpectedMessage, 0);
        assert_eq!(s.points(0), 20);
        assert_eq!(s.points(10 * 60_000), 10);
        assert_eq!(s.points(u64::MAX), 0);
        // Spread out, the same offences never add up to a ban.
        for i in 0..100u64 {
            assert_eq!(
                s.record(Misbehavior::Timeout, i * 5 * 60_000),
                Verdict::Keep
            );
        }
    }
}
