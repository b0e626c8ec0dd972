//! Exponential decay as an exact step function that halves every half-life.
//!
//! A half-life of `H` blocks is cut into `m = min(H, 256)` steps; step `i` of period `q` covers
//! local blocks `q*H + floor(i*H/m) .. q*H + floor((i+1)*H/m)` and pays `base[i] >> q`, where
//! `base[i] = floor(R * x_i / 2^64)` and `x_i` approximates `2^64 * 2^(-i/m)` in Q64 fixed
//! point. With `m = H` (half-lives up to 256 blocks) every block is its own step.
//!
//! Why steps: the reward must be a non-increasing integer per block and its running sum must
//! have an exact closed form. Within a period the steps are a fixed table, and every period is
//! the previous one shifted right by one bit, so the sum of `p` whole periods and of a partial
//! period are table look-ups (`prefix[q][i]`). The price is a relative error of at most
//! `2^(1/m) - 1` (0.27 % at `m = 256`) against the smooth curve `R * 2^(-t/H)`, plus two units
//! of rounding; `tests::error_against_the_real_exponential_is_bounded` checks the bound.
//!
//! Everything is integer arithmetic, so every platform computes the same table.

/// Most steps per half-life.
pub(crate) const MAX_STEPS: u64 = 256;
/// Periods after which every reward is zero (a `u64` shifted right 64 times).
const PERIODS: usize = 64;

/// A compiled stepped-exponential curve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExponentialCurve {
    /// Blocks per half-life, `H`.
    half_life: u64,
    /// Steps per half-life, `m`.
    steps: u64,
    /// `base[i]`: the reward of step `i` in period 0.
    base: Vec<u64>,
    /// `bounds[i] = floor(i * H / m)`, `i` in `0..=m`.
    bounds: Vec<u64>,
    /// `prefix[q * (m + 1) + i] = Σ_{j<i} len_j * (base[j] >> q)` for `q < 64`.
    prefix: Vec<u128>,
    /// `periods[q] = Σ_{p<q} prefix[p][m]`: the sum of the first `q` whole periods.
    periods: Vec<u128>,
}

/// `a * b / 2^64`, truncated.
#[inline]
fn mul_q64(a: u128, b: u128) -> u128 {
    (a * b) >> 64
}

/// `2^64 * c^n / 2^(64n)` with a truncating multiply per step (the sequence the table uses).
fn power_q64(c: u128, n: u64) -> u128 {
    let mut x: u128 = 1 << 64;
    for _ in 0..n {
        x = mul_q64(x, c);
    }
    x
}

impl ExponentialCurve {
    /// Builds the curve starting at `start_reward` with a half-life of `half_life` blocks (>= 1).
    pub(crate) fn new(start_reward: u64, half_life: u64) -> Self {
        let half_life = half_life.max(1);
        let steps = half_life.min(MAX_STEPS);
        // The per-step factor c ~ 2^64 * 2^(-1/m): the largest Q64 value whose m-th truncated
        // power does not exceed one half. Deterministic binary search over integers.
        let half: u128 = 1 << 63;
        let (mut lo, mut hi): (u128, u128) = (half, 1 << 64);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if power_q64(mid, steps) <= half {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let factor = lo;
        let mut base = Vec::with_capacity(steps as usize);
        let mut x: u128 = 1 << 64;
        for _ in 0..steps {
            // start_reward * x < 2^64 * 2^64 + 1: fits u128; the result is at most start_reward.
            base.push(((u128::from(start_reward) * x) >> 64) as u64);
            x = mul_q64(x, factor);
        }
        let bounds: Vec<u64> = (0..=steps)
            .map(|i| (u128::from(i) * u128::from(half_life) / u128::from(steps)) as u64)
            .collect();
        let width = steps as usize + 1;
        let mut prefix = Vec::with_capacity(PERIODS * width);
        let mut periods = Vec::with_capacity(PERIODS + 1);
        let mut total: u128 = 0;
        for q in 0..PERIODS {
            periods.push(total);
            let mut acc: u128 = 0;
            prefix.push(acc);
            for i in 0..steps as usize {
                let len = u128::from(bounds[i + 1] - bounds[i]);
                acc += len * u128::from(base[i] >> q);
                prefix.push(acc);
            }
            total += acc;
        }
        periods.push(total);
        Self {
            half_life,
            steps,
            base,
            bounds,
            prefix,
            periods,
        }
    }

    /// The step of in-period offset `r < H`: the largest `i` with `bounds[i] <= r`.
    #[inline]
    fn step_of(&self, r: u64) -> usize {
        // bounds[i] <= r  <=>  i * H < (r + 1) * m  <=>  i <= ((r + 1) * m - 1) / H.
        let i = (u128::from(r) + 1) * u128::from(self.steps) - 1;
        (i / u128::from(self.half_life)) as usize
    }

    /// The reward of local block `t`.
    #[inline]
    pub(crate) fn reward(&self, t: u64) -> u64 {
        let (q, r) = (t / self.half_life, t % self.half_life);
        if q >= PERIODS as u64 {
            return 0;
        }
        self.base.get(self.step_of(r)).map_or(0, |b| b >> q)
    }

    /// `Σ_{t<n} reward(t)`.
    pub(crate) fn sum(&self, n: u64) -> u128 {
        let (q, r) = (n / self.half_life, n % self.half_life);
        if q >= PERIODS as u64 {
            return self.periods[PERIODS];
        }
        let q = q as usize;
        let i = self.step_of(r);
        let width = self.steps as usize + 1;
        let before = self.prefix.get(q * width + i).copied().unwrap_or(0);
        let into_step = u128::from(r - self.bounds.get(i).copied().unwrap_or(0));
        let step_reward = self.base.get(i).map_or(0, |b| b >> q);
        self.periods[q] + before + into_step * u128::from(step_reward)
    }

    /// The first local block whose reward is below `floor` (`floor > 0`), by binary search over
    /// the non-increasing rewards.
    pub(crate) fn first_below(&self, floor: u64) -> Option<u64> {
        let end = self.half_life.checked_mul(PERIODS as u64)?;
        if self.reward(end.saturating_sub(1)) >= floor {
            return if floor == 0 { None } else { Some(end) };
        }
        let (mut lo, mut hi) = (0u64, end.saturating_sub(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.reward(mid) < floor {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_block_pays_the_start_reward_and_each_half_life_halves() {
        for h in [1u64, 2, 3, 10, 255, 256, 257, 1000, 2_100_000] {
            let c = ExponentialCurve::new(5_000_000_000, h);
            assert_eq!(c.reward(0), 5_000_000_000);
            for q in 1..10u64 {
                assert_eq!(c.reward(q * h), 5_000_000_000 >> q, "h {h} q {q}");
            }
        }
    }

    #[test]
    fn rewards_never_increase() {
        for h in [1u64, 7, 256, 300, 10_007] {
            let c = ExponentialCurve::new(u64::MAX, h);
            let mut prev = u64::MAX;
            for t in 0..(h * 3 + 50).min(40_000) {
                let r = c.reward(t);
                assert!(r <= prev, "h {h} t {t}: {r} > {prev}");
                prev = r;
            }
        }
    }

    #[test]
    fn sum_matches_naive() {
        for (start, h) in [
            (1000u64, 3u64),
            (5_000_000_000, 257),
            (u64::MAX, 1),
            (7, 600),
        ] {
            let c = ExponentialCurve::new(start, h);
            let mut acc = 0u128;
            for n in 0..(h * 5).min(5000) {
                assert_eq!(c.sum(n), acc, "start {start} h {h} n {n}");
                acc += u128::from(c.reward(n));
            }
        }
    }

    #[test]
    fn error_against_the_real_exponential_is_bounded() {
        // Floats only here, to measure the integer curve against the real function.
        for (start, h) in [
            (5_000_000_000u64, 2_100_000u64),
            (1u64 << 62, 1000),
            (1_000_000, 100),
        ] {
            let c = ExponentialCurve::new(start, h);
            let m = h.min(MAX_STEPS) as f64;
            let step_error = 2f64.powf(1.0 / m) - 1.0;
            for k in 0..2000u64 {
                let t = k * (h * 8 / 2000).max(1);
                let real = start as f64 * 2f64.powf(-(t as f64) / h as f64);
                let ours = c.reward(t) as f64;
                let bound = real * step_error * (1.0 + 1e-9) + 2.0 + real * 1e-12;
                assert!(
                    (ours - real).abs() <= bound,
                    "start {start} h {h} t {t}: {ours} vs {real}"
                );
            }
        }
    }

    #[test]
    fn first_below_matches_scan() {
        let c = ExponentialCurve::new(1000, 10);
        for floor in [1u64, 2, 500, 999, 1000, 1001] {
            let naive = (0..700u64).find(|&t| c.reward(t) < floor);
            assert_eq!(c.first_below(floor), naive, "floor {floor}");
        }
    }
}
