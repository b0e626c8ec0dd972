//! Time for the node: one injected clock on tokio's [`Instant`], so that Unix time, timers and
//! timeouts advance together. In production tokio's clock is the monotonic system clock; in the
//! simulator it is tokio's paused clock, which jumps to the next timer when every node is idle,
//! and the same code runs in virtual time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Now, in ms since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The node's clock: Unix milliseconds = a start time plus the time elapsed on tokio's clock
/// since then.
#[derive(Debug)]
pub struct NodeClock {
    start: Instant,
    start_unix_ms: AtomicU64,
}

impl NodeClock {
    /// A clock that reads `unix_ms` now (the simulator's start time, or a test's).
    pub fn starting_at(unix_ms: u64) -> Self {
        Self {
            start: Instant::now(),
            start_unix_ms: AtomicU64::new(unix_ms),
        }
    }

    /// A clock that starts at the operating system's time (production).
    pub fn system() -> Self {
        Self::starting_at(system_unix_ms())
    }

    /// Moves the clock to the operating system's time when they differ by more than
    /// `tolerance_ms` (an NTP step, a resume from suspend, during which the monotonic clock
    /// stood still); returns the step applied, in ms. Production only: the simulator never
    /// calls it.
    pub fn follow_system(&self, tolerance_ms: u64) -> i64 {
        let system = system_unix_ms();
        let ours = self.now_ms();
        let step = i128::from(system) - i128::from(ours);
        if step.unsigned_abs() <= u128::from(tolerance_ms) {
            return 0;
        }
        let start = self.start_unix_ms.load(Ordering::Relaxed);
        let moved = (i128::from(start) + step).clamp(0, i128::from(u64::MAX)) as u64;
        self.start_unix_ms.store(moved, Ordering::Relaxed);
        step.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

impl Clock for NodeClock {
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start_unix_ms
            .load(Ordering::Relaxed)
            .saturating_add(elapsed)
    }
}

/// The operating system's time in ms since the Unix epoch (0 for a clock before 1970).
fn system_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_system_clock_reads_the_operating_systems_time() {
        let clock = NodeClock::system();
        let os = system_unix_ms();
        assert!(clock.now_ms().abs_diff(os) < 1_000);
        assert_eq!(clock.follow_system(1_000), 0);
    }

    #[test]
    fn a_clock_far_from_the_system_follows_it() {
        let clock = NodeClock::starting_at(1_000);
        let step = clock.follow_system(1_000);
        assert!(step > 1_000_000, "{step}");
        assert!(clock.now_ms().abs_diff(system_unix_ms()) < 1_000);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn unix_time_advances_with_tokio_time() {
        let clock = NodeClock::starting_at(5_000);
        let before = clock.now_ms();
        assert!((5_000..5_100).contains(&before));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(clock.now_ms() >= before + 30);
    }
}
