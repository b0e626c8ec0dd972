//! Token buckets: per-peer limits on messages by type and on bytes.

use crate::wire::MessageKind;

/// A token bucket in milli-tokens, so slow refill rates stay exact in integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Most tokens it holds (the burst), in milli-tokens.
    capacity: u64,
    /// Milli-tokens added per millisecond equals tokens per second.
    per_second: u64,
    /// Current milli-tokens.
    level: u64,
    /// Time of the last refill, ms.
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket holding `burst` tokens, refilled at `per_second` tokens per second.
    pub fn new(burst: u32, per_second: u32, now_ms: u64) -> Self {
        let capacity = u64::from(burst) * 1000;
        Self {
            capacity,
            per_second: u64::from(per_second),
            level: capacity,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.per_second))
            .min(self.capacity);
        // Time going backwards (a clock step) refills nothing and moves the reference.
        self.last_ms = now_ms;
    }

    /// Takes `n` tokens if available; a refused take takes nothing.
    pub fn try_take(&mut self, n: u64, now_ms: u64) -> bool {
        self.refill(now_ms);
        let cost = n.saturating_mul(1000);
        if cost <= self.level {
            self.level -= cost;
            true
        } else {
            false
        }
    }

    /// Whole tokens available at `now_ms`.
    pub fn available(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        self.level / 1000
    }
}

/// Limits for one message type: burst and sustained rate, in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages allowed at once.
    pub burst: u32,
    /// Messages per second sustained.
    pub per_second: u32,
}

/// The default per-peer limit of each message type. Generous for honest traffic (a syncing
/// peer's headers and blocks, a busy mempool's transactions), tight for what is cheap to send
/// and costly to answer.
///
/// `Block` allows 16,384 at once and 16,384 per second: a node syncing small blocks from one
/// peer receives thousands per second (measured near 8,000 on loopback) and must not score it
/// as a flooder; the byte bucket ([`DEFAULT_BYTE_BURST`], [`DEFAULT_BYTES_PER_SECOND`]) already
/// bounds the bandwidth a peer can spend on blocks, and sync imports at most a few blocks per
/// second that it did not ask for. `GetBlocks` and `NotFound` allow 256 at once and 256 per
/// second: each names up to [`MAX_BLOCKS_PER_REQUEST`] blocks, so they cover more than the
/// `Block` limit admits, while bounding the requests one peer can make.
/// `GetHeaders` and `Headers` stay at 20 and 10 per second (each `Headers` carries up to 2,000).
///
/// [`MAX_BLOCKS_PER_REQUEST`]: crate::wire::MAX_BLOCKS_PER_REQUEST
pub const fn default_limit(kind: MessageKind) -> RateLimit {
    let (burst, per_second) = match kind {
        MessageKind::Hello => (1, 0),
        MessageKind::PeerList => (2, 1),
        MessageKind::RequestPeers => (2, 1),
        MessageKind::GetHeaders => (20, 10),
        MessageKind::Headers => (20, 10),
        MessageKind::GetBlock => (500, 200),
        MessageKind::Block => (16_384, 16_384),
        MessageKind::Ping | MessageKind::Pong => (5, 1),
        MessageKind::NewChallenge => (10, 2),
        MessageKind::ProofSubmission => (50, 10),
        MessageKind::BlockProposal => (20, 5),
        MessageKind::BlockAccepted => (50, 10),
        MessageKind::Tx => (2000, 500),
        MessageKind::TxPoolRequest => (2, 1),
        MessageKind::Disconnect => (1, 0),
        MessageKind::GetBlocks => (256, 256),
        MessageKind::NotFound => (256, 256),
        MessageKind::BlockAnnounce => (100, 50),
        MessageKind::TxInv | MessageKind::GetTxs | MessageKind::Txs => (100, 50),
        MessageKind::SendBlocks => (5, 1),
        MessageKind::CompactBlock => (20, 5),
    };
    RateLimit { burst, per_second }
}

/// Bytes per second a peer may send sustained (after a burst of [`DEFAULT_BYTE_BURST`]).
pub const DEFAULT_BYTES_PER_SECOND: u32 = 16 * 1024 * 1024;
/// Bytes a peer may send at once.
pub const DEFAULT_BYTE_BURST: u32 = 64 * 1024 * 1024;

/// What a peer may send: one bucket per message type and one for bytes.
#[derive(Debug, Clone)]
pub struct PeerRateLimiter {
    messages: [TokenBucket; MessageKind::ALL.len()],
    bytes: TokenBucket,
}

impl PeerRateLimiter {
    /// The default limits, full at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self::with_limits(
            default_limit,
            DEFAULT_BYTE_BURST,
            DEFAULT_BYTES_PER_SECOND,
            now_ms,
        )
    }

    /// Custom limits.
    pub fn with_limits(
        limit: impl Fn(MessageKind) -> RateLimit,
        byte_burst: u32,
        bytes_per_second: u32,
        now_ms: u64,
    ) -> Self {
        let messages = MessageKind::ALL.map(|kind| {
            let l = limit(kind);
            TokenBucket::new(l.burst, l.per_second, now_ms)
        });
        Self {
            messages,
            bytes: TokenBucket::new(byte_burst, bytes_per_second, now_ms),
        }
    }

    /// Charges one message of `kind` and `size` bytes; false when the peer is over a limit.
    pub fn admit(&mut self, kind: MessageKind, size: usize, now_ms: u64) -> bool {
        let bucket = &mut self.messages[usize::from(kind.tag())];
        bucket.try_take(1, now_ms) && self.bytes.try_take(size as u64, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bursts_then_refills_at_its_rate() {
        let mut b = TokenBucket::new(3, 2, 1000);
        assert!(b.try_take(1, 1000));
        assert!(b.try_take(2, 1000));
        assert!(!b.try_take(1, 1000));
        // 2 per second: one token after 500 ms, not before.
        assert!(!b.try_take(1, 1499));
        assert!(b.try_take(1, 1500));
        // Refill never exceeds the burst.
        assert_eq!(b.available(1_000_000), 3);
        // A clock going backwards refills nothing.
        assert!(b.try_take(3, 1_000_000));
        assert_eq!(b.available(10), 0);
        assert_eq!(b.available(510), 1);
    }

    #[test]
    fn zero_rate_is_a_one_off_allowance() {
        let mut b = TokenBucket::new(1, 0, 0);
        assert!(b.try_take(1, 0));
        assert!(!b.try_take(1, u64::MAX));
    }

    #[test]
    fn default_limits_admit_a_fast_sync_from_one_peer() {
        // 10,000 blocks of 400 bytes per second for 10 s (a loopback sync of empty blocks),
        // with the requests that asked for them (128 blocks each) and a `NotFound` per
        // request: nothing is refused.
        let mut l = PeerRateLimiter::new(0);
        for second in 0..10u64 {
            for i in 0..10_000u64 {
                let now = second * 1000 + i / 10;
                assert!(l.admit(MessageKind::Block, 400, now), "block {second}.{i}");
                if i % 128 == 0 {
                    assert!(l.admit(MessageKind::GetBlocks, 4099, now), "request");
                    assert!(l.admit(MessageKind::NotFound, 35, now), "not found");
                }
            }
        }
        // Bursts: 256 requests at once, then the 257th is refused.
        let mut l = PeerRateLimiter::new(0);
        for _ in 0..256 {
            assert!(l.admit(MessageKind::GetBlocks, 4099, 0));
        }
        assert!(!l.admit(MessageKind::GetBlocks, 4099, 0));
        assert_eq!(default_limit(MessageKind::Block).burst, 16_384);
        assert_eq!(
            default_limit(MessageKind::Headers),
            RateLimit {
                burst: 20,
                per_second: 10
            }
        );
        assert_eq!(
            default_limit(MessageKind::GetHeaders),
            RateLimit {
                burst: 20,
                per_second: 10
            }
        );
    }

    #[test]
    fn limiter_charges_messages_and_bytes() {
        let mut l = PeerRateLimiter::with_limits(
            |_| RateLimit {
                burst: 2,
                per_second: 1,
            },
            100,
            10,
            0,
        );
        assert!(l.admit(MessageKind::Tx, 10, 0));
        assert!(l.admit(MessageKind::Tx, 10, 0));
        assert!(!l.admit(MessageKind::Tx, 10, 0), "message burst");
        assert!(
            l.admit(MessageKind::Ping, 10, 0),
            "other types have their own bucket"
        );
        assert!(!l.admit(MessageKind::Block, 1000, 0), "byte burst");
        let mut d = PeerRateLimiter::new(0);
        assert!(d.admit(MessageKind::Hello, 100, 0));
        assert!(
            !d.admit(MessageKind::Hello, 100, 60_000),
            "one Hello per session"
        );
    }
}
