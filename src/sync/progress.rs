//! Download rate and ETA for display. Floating point is fine here: nothing in this file
//! feeds a decision of the state machine, let alone consensus.

use crate::Height;

/// Time constant of the moving average, ms: samples older than a few of these hardly count.
const TAU_MS: f64 = 10_000.0;

/// An exponentially weighted blocks-per-second estimate over the last ~10 s.
#[derive(Debug, Clone, Default)]
pub struct ProgressMeter {
    last: Option<(u64, Height)>,
    rate: f64,
}

impl ProgressMeter {
    /// A meter with no samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the tip was at `height` at `now_ms`. A lower height (a reorg) restarts
    /// the baseline without counting negative progress.
    pub fn feed(&mut self, now_ms: u64, height: Height) {
        let Some((last_ms, last_height)) = self.last else {
            self.last = Some((now_ms, height));
            return;
        };
        if now_ms <= last_ms {
            // Same instant: keep the older timestamp so the blocks count in the next interval.
            if height < last_height {
                self.last = Some((last_ms, height));
            }
            return;
        }
        let dt = (now_ms - last_ms) as f64;
        let blocks = height.saturating_sub(last_height) as f64;
        let instant = blocks * 1000.0 / dt;
        let alpha = 1.0 - (-dt / TAU_MS).exp();
        self.rate += alpha * (instant - self.rate);
        self.last = Some((now_ms, height));
    }

    /// Blocks per second at `now_ms`: the average, decayed for the time since the last sample
    /// as if no block had come since.
    pub fn blocks_per_sec(&self, now_ms: u64) -> f64 {
        match self.last {
            Some((last_ms, _)) => {
                let idle = now_ms.saturating_sub(last_ms) as f64;
                self.rate * (-idle / TAU_MS).exp()
            }
            None => 0.0,
        }
    }

    /// Seconds until the tip reaches `target` at the current rate; `None` while the rate is
    /// too low to say, `Some(0)` when already there.
    pub fn eta_secs(&self, now_ms: u64, target: Height) -> Option<u64> {
        let (_, height) = self.last?;
        if height >= target {
            return Some(0);
        }
        let rate = self.blocks_per_sec(now_ms);
        if rate < 0.01 {
            return None;
        }
        let secs = (target - height) as f64 / rate;
        // `as` saturates for out-of-range floats.
        Some(secs.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_converges_and_gives_an_eta() {
        let mut m = ProgressMeter::new();
        assert_eq!(m.blocks_per_sec(0), 0.0);
        assert_eq!(m.eta_secs(0, 100), None);
        for i in 0..=120u64 {
            m.feed(i * 500, i * 50); // 100 blocks/s
        }
        let rate = m.blocks_per_sec(60_000);
        assert!((rate - 100.0).abs() < 1.0, "{rate}");
        assert_eq!(m.eta_secs(60_000, 6_000 + 1_000), Some(10));
        assert_eq!(m.eta_secs(60_000, 10), Some(0));
    }

    #[test]
    fn idle_time_decays_the_rate_and_reorgs_do_not_go_negative() {
        let mut m = ProgressMeter::new();
        for i in 0..=40u64 {
            m.feed(i * 500, i * 10);
        }
        let busy = m.blocks_per_sec(20_000);
        assert!(m.blocks_per_sec(50_000) < busy / 10.0);
        m.feed(21_000, 5);
        assert!(m.blocks_per_sec(21_000) >= 0.0);
        m.feed(21_000, 3);
        m.feed(22_000, 13);
        assert!(m.blocks_per_sec(22_000) > 0.0);
        assert_eq!(m.eta_secs(400_000, 1_000), None);
    }
}
