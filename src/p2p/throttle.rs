//! A byte throttle: the token bucket behind the node-wide download and upload limits.
//!
//! Unlike [`TokenBucket`](super::TokenBucket), which refuses what it cannot admit, a
//! [`ByteThrottle`] always takes the bytes (the caller has already read or written them) and
//! answers how long the caller must pause so that the traffic averages out at the rate.

/// Smallest burst of a throttle: one Noise transport message (65,535 bytes) must fit in it.
pub const MIN_BURST_BYTES: u64 = 64 * 1024;

/// A byte token bucket that may go into debt, in milli-bytes so every rate refills exactly in
/// integers (a rate of `r` bytes/s adds `r` milli-bytes per ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteThrottle {
    /// Bytes per second, at least 1.
    rate: u64,
    /// Most milli-bytes the bucket holds: one second of traffic, at least [`MIN_BURST_BYTES`].
    capacity: i128,
    /// Current milli-bytes; negative is debt.
    level: i128,
    /// Time of the last refill, ms.
    last_ms: u64,
}

impl ByteThrottle {
    /// A full throttle of `bytes_per_sec` (a rate of 0 is taken as 1 byte/s).
    pub fn new(bytes_per_sec: u64, now_ms: u64) -> Self {
        let rate = bytes_per_sec.max(1);
        let capacity = i128::from(rate.max(MIN_BURST_BYTES)) * 1000;
        Self {
            rate,
            capacity,
            level: capacity,
            last_ms: now_ms,
        }
    }

    /// The configured rate, bytes per second.
    pub fn bytes_per_sec(&self) -> u64 {
        self.rate
    }

    /// The burst: bytes that pass at once from a full throttle.
    pub fn burst_bytes(&self) -> u64 {
        u64::try_from(self.capacity / 1000).unwrap_or(u64::MAX)
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = i128::from(now_ms.saturating_sub(self.last_ms));
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(i128::from(self.rate)))
            .min(self.capacity);
        // Time going backwards (a clock step) refills nothing and moves the reference.
        self.last_ms = now_ms;
    }

    /// Takes `bytes` (going into debt if need be) and returns the ms to wait before more I/O:
    /// 0 within budget, else the time until the debt is repaid.
    pub fn charge(&mut self, now_ms: u64, bytes: u64) -> u64 {
        self.refill(now_ms);
        self.level = self
            .level
            .saturating_sub(i128::from(bytes).saturating_mul(1000));
        self.wait_ms()
    }

    /// Ms until the debt is repaid at `now_ms`, taking nothing (0 when not in debt).
    pub fn wait_at(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        self.wait_ms()
    }

    fn wait_ms(&self) -> u64 {
        if self.level >= 0 {
            return 0;
        }
        let debt = self.level.unsigned_abs();
        let rate = u128::from(self.rate);
        u64::try_from(debt.div_ceil(rate)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    /// Charges `total` bytes in `chunk`-byte pieces, sleeping each returned wait; returns the
    /// sum of the waits and the time the last piece was charged.
    fn transfer(t: &mut ByteThrottle, start_ms: u64, total: u64, chunk: u64) -> (u64, u64) {
        let (mut now, mut waited, mut sent) = (start_ms, 0, 0);
        while sent < total {
            let n = chunk.min(total - sent);
            let wait = t.charge(now, n);
            sent += n;
            waited += wait;
            now += wait;
        }
        (waited, now)
    }

    #[test]
    fn steady_state_converges_on_the_rate() {
        // 10 MB at 1 MB/s: the first second's worth passes as the burst, the other 9 MB
        // take 9 s of waits (within a ms per piece of rounding).
        for chunk in [1_000, 16_384, 65_535, MB] {
            let mut t = ByteThrottle::new(MB, 5_000);
            let (waited, _) = transfer(&mut t, 5_000, 10 * MB, chunk);
            assert!((9_000..=9_010).contains(&waited), "chunk {chunk}: {waited}");
        }
        // Once the burst is spent, each further 60 MB takes 60 s, whatever the piece size.
        let mut t = ByteThrottle::new(MB, 0);
        let (_, start) = transfer(&mut t, 0, MB, 4096);
        let (waited, end) = transfer(&mut t, start, 60 * MB, 4096);
        assert_eq!(end - start, waited);
        assert!((60_000..=60_002).contains(&waited), "{waited}");
    }

    #[test]
    fn bursts_pass_then_debt_is_repaid_over_time() {
        let mut t = ByteThrottle::new(MB, 0);
        assert_eq!(t.burst_bytes(), MB);
        assert_eq!(t.charge(0, MB), 0, "one second of traffic at once");
        assert_eq!(t.charge(0, 1), 1, "one byte over: a ms of debt");
        assert_eq!(t.charge(0, 500_000 - 1), 500);
        // Waiting part of the debt leaves the rest.
        assert_eq!(t.wait_at(200), 300);
        assert_eq!(t.wait_at(500), 0);
        // A long pause refills only to the burst.
        assert_eq!(t.charge(1_000_000, MB), 0);
        assert_eq!(t.charge(1_000_000, 1), 1);
        // Slow rates still fit one Noise message at once.
        let mut slow = ByteThrottle::new(1_000, 0);
        assert_eq!(slow.burst_bytes(), MIN_BURST_BYTES);
        assert_eq!(slow.charge(0, 65_535), 0);
        assert_eq!(slow.charge(0, 1_001), 1_000);
    }

    #[test]
    fn traffic_under_the_rate_never_waits() {
        let mut t = ByteThrottle::new(MB, 0);
        // 900 kB/s in 9 kB pieces every 10 ms, for a minute.
        for i in 0..6_000u64 {
            assert_eq!(t.charge(i * 10, 9_000), 0, "piece {i}");
        }
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing() {
        let mut t = ByteThrottle::new(MB, 10_000);
        assert_eq!(t.charge(10_000, 2 * MB), 1_000);
        assert_eq!(t.wait_at(5_000), 1_000, "back 5 s: nothing refilled");
        // Time runs on from the new reading.
        assert_eq!(t.wait_at(5_600), 400);
        assert_eq!(t.wait_at(6_000), 0);
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let mut t = ByteThrottle::new(u64::MAX, 0);
        assert_eq!(t.burst_bytes(), u64::MAX);
        assert_eq!(t.charge(0, u64::MAX), 0);
        assert_eq!(t.charge(0, u64::MAX), 1000);
        assert_eq!(t.charge(u64::MAX, u64::MAX), 0);
        for _ in 0..10 {
            t.charge(u64::MAX, u64::MAX);
        }
        assert!(t.wait_at(u64::MAX) > 0);

        let mut slow = ByteThrottle::new(0, u64::MAX);
        assert_eq!(slow.bytes_per_sec(), 1);
        assert_eq!(slow.charge(u64::MAX, u64::MAX), u64::MAX, "wait saturates");
        for _ in 0..1_000 {
            assert_eq!(slow.charge(0, u64::MAX), u64::MAX);
        }
        assert_eq!(slow.charge(0, 0), u64::MAX, "no wrap");
    }
}
