//! The reward curves of one schedule version, as functions of the local index `t`.
//!
//! `t` counts blocks from the start of the version's segment (0 = its first block). Every curve
//! has an O(1) or O(log n) `reward(t)` and an exact `sum(n) = Σ_{t<n} reward(t)` in closed form.
//! Intermediate sums are `u128`; the bounds that keep them from overflowing are noted inline.

use super::exponential::ExponentialCurve;

/// A compiled curve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Curve {
    /// `start >> (t / interval)`.
    Halving { start: u64, interval: u64 },
    /// `reward` for every `t`.
    Fixed { reward: u64 },
    /// `start - t * decrease`, never below zero.
    Linear { start: u64, decrease: u64 },
    /// Stepped exponential decay, halving exactly every half-life.
    Exponential(ExponentialCurve),
    /// Piecewise-constant rewards, floor already applied.
    Table(TableCurve),
}

impl Curve {
    /// The reward of local block `t` (before the floor).
    #[inline]
    pub(crate) fn reward(&self, t: u64) -> u64 {
        match self {
            Self::Halving { start, interval } => {
                let shift = t / interval;
                if shift >= 64 { 0 } else { start >> shift }
            }
            Self::Fixed { reward } => *reward,
            Self::Linear { start, decrease } => start.saturating_sub(t.saturating_mul(*decrease)),
            Self::Exponential(curve) => curve.reward(t),
            Self::Table(table) => table.reward(t),
        }
    }

    /// `Σ_{t<n} reward(t)`, exact.
    pub(crate) fn sum(&self, n: u64) -> u128 {
        match self {
            Self::Halving { start, interval } => {
                let (q, r) = (n / interval, n % interval);
                let tail = if q >= 64 { 0 } else { start >> q };
                // interval * halving_prefix(q) <= n * start < 2^128 when q < 64; when q >= 64 the
                // interval is below 2^58 and the prefix below 2^65.
                u128::from(*interval) * halving_prefix(*start, q) + u128::from(r) * u128::from(tail)
            }
            Self::Fixed { reward } => u128::from(n) * u128::from(*reward),
            Self::Linear { start, decrease } => linear_sum(*start, *decrease, n),
            Self::Exponential(curve) => curve.sum(n),
            Self::Table(table) => table.sum(n),
        }
    }

    /// The first `t` whose reward is below `floor`, for curves that never increase; `None`
    /// when the floor never engages (or is already applied, as for tables).
    pub(crate) fn floor_start(&self, floor: u64) -> Option<u64> {
        if floor == 0 {
            return None;
        }
        match self {
            Self::Halving { start, interval } => {
                // Smallest k with start >> k < floor; k <= 64 because start >> 64 is zero.
                let k = (0..64u64).find(|&k| start >> k < floor).unwrap_or(64);
                k.checked_mul(*interval)
            }
            Self::Fixed { reward } => (*reward < floor).then_some(0),
            Self::Linear { start, decrease } => {
                if *start < floor {
                    Some(0)
                } else if *decrease == 0 {
                    None
                } else {
                    // start - t * decrease < floor  <=>  t > (start - floor) / decrease.
                    ((start - floor) / decrease).checked_add(1)
                }
            }
            Self::Exponential(curve) => curve.first_below(floor),
            Self::Table(_) => None,
        }
    }
}

/// `Σ_{k<q} (start >> k)`, using `Σ_{k>=0} floor(x / 2^k) = 2x - popcount(x)`.
#[inline]
pub(crate) fn halving_prefix(start: u64, q: u64) -> u128 {
    let all = |x: u64| 2 * u128::from(x) - u128::from(x.count_ones());
    if q >= 64 {
        all(start)
    } else {
        all(start) - all(start >> q)
    }
}

/// `Σ_{t<n} max(start - t * decrease, 0)`.
fn linear_sum(start: u64, decrease: u64, n: u64) -> u128 {
    if decrease == 0 {
        return u128::from(n) * u128::from(start);
    }
    // Terms are positive for t < ceil(start / decrease).
    let positive = start.div_ceil(decrease);
    let m = u128::from(n.min(positive));
    // m * (m - 1) / 2 * decrease <= m * start < 2^128 because every counted term is positive.
    let triangle = if m == 0 { 0 } else { m * (m - 1) / 2 };
    m * u128::from(start) - triangle * u128::from(decrease)
}

/// A piecewise-constant curve: `rewards[k]` for `t` in `starts[k]..starts[k + 1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableCurve {
    /// Local start of each step, ascending, `starts[0] == 0`.
    starts: Vec<u64>,
    /// Reward of each step.
    rewards: Vec<u64>,
    /// `prefix[k]`: the sum of all steps before step `k`.
    prefix: Vec<u128>,
}

impl TableCurve {
    /// Builds a table from `(local start, reward)` steps; the first must start at 0.
    pub(crate) fn new(steps: Vec<(u64, u64)>) -> Self {
        let mut starts = Vec::with_capacity(steps.len());
        let mut rewards = Vec::with_capacity(steps.len());
        let mut prefix = Vec::with_capacity(steps.len());
        let mut total: u128 = 0;
        for (i, &(start, reward)) in steps.iter().enumerate() {
            if i > 0 {
                let len = u128::from(start - starts[i - 1]);
                total += len * u128::from(rewards[i - 1]);
            }
            starts.push(start);
            rewards.push(reward);
            prefix.push(total);
        }
        Self {
            starts,
            rewards,
            prefix,
        }
    }

    /// Index of the step containing `t`.
    #[inline]
    fn step(&self, t: u64) -> usize {
        self.starts.partition_point(|&s| s <= t).saturating_sub(1)
    }

    #[inline]
    fn reward(&self, t: u64) -> u64 {
        self.rewards.get(self.step(t)).copied().unwrap_or(0)
    }

    fn sum(&self, n: u64) -> u128 {
        let k = self.step(n);
        match (self.starts.get(k), self.rewards.get(k), self.prefix.get(k)) {
            (Some(&start), Some(&reward), Some(&before)) => {
                before + u128::from(n.saturating_sub(start)) * u128::from(reward)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(curve: &Curve, n: u64) -> u128 {
        (0..n).map(|t| u128::from(curve.reward(t))).sum()
    }

    #[test]
    fn halving_prefix_matches_loop() {
        for start in [
            0u64,
            1,
            2,
            3,
            5_000_000_000,
            u64::MAX,
            0x8000_0000_0000_0001,
        ] {
            let mut acc = 0u128;
            for q in 0..70u64 {
                assert_eq!(halving_prefix(start, q), acc, "start {start} q {q}");
                if q < 64 {
                    acc += u128::from(start >> q);
                }
            }
        }
    }

    #[test]
    fn sums_match_naive() {
        let curves = [
            Curve::Halving {
                start: 1000,
                interval: 7,
            },
            Curve::Halving {
                start: u64::MAX,
                interval: 1,
            },
            Curve::Fixed { reward: 13 },
            Curve::Linear {
                start: 100,
                decrease: 7,
            },
            Curve::Linear {
                start: 100,
                decrease: 0,
            },
            Curve::Linear {
                start: 100,
                decrease: 1000,
            },
            Curve::Table(TableCurve::new(vec![(0, 5), (3, 0), (10, 9), (11, 2)])),
        ];
        for c in &curves {
            for n in 0..300 {
                assert_eq!(c.sum(n), naive(c, n), "{c:?} n {n}");
            }
        }
    }

    #[test]
    fn floor_start_is_the_first_reward_below_the_floor() {
        let curves = [
            Curve::Halving {
                start: 1000,
                interval: 7,
            },
            Curve::Fixed { reward: 13 },
            Curve::Linear {
                start: 100,
                decrease: 7,
            },
            Curve::Linear {
                start: 100,
                decrease: 0,
            },
        ];
        for c in &curves {
            for floor in [0u64, 1, 13, 14, 50, 100, 101, 1000, 1001] {
                let naive = (0..2000u64).find(|&t| floor > 0 && c.reward(t) < floor);
                assert_eq!(c.floor_start(floor), naive, "{c:?} floor {floor}");
            }
        }
    }

    #[test]
    fn extreme_arguments_do_not_overflow() {
        let h = Curve::Halving {
            start: u64::MAX,
            interval: 1,
        };
        assert_eq!(h.sum(u64::MAX), 2 * u128::from(u64::MAX) - 64);
        let f = Curve::Fixed { reward: u64::MAX };
        assert_eq!(f.sum(u64::MAX), u128::from(u64::MAX) * u128::from(u64::MAX));
        let l = Curve::Linear {
            start: u64::MAX,
            decrease: 1,
        };
        assert_eq!(l.reward(u64::MAX), 0);
        let m = u128::from(u64::MAX);
        assert_eq!(l.sum(u64::MAX), m * m - m * (m - 1) / 2);
        assert_eq!(
            Curve::Halving {
                start: 1,
                interval: u64::MAX
            }
            .floor_start(2),
            Some(0)
        );
        assert_eq!(
            Curve::Halving {
                start: 4,
                interval: u64::MAX
            }
            .floor_start(2),
            None
        );
    }
}
