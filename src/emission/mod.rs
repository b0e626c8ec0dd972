//! Emission: the block reward at every height and the supply it adds up to.
//!
//! All integer, all deterministic; `docs/emission.md` has the formulas and worked examples.
//!
//! # Rules
//!
//! - Block 0 (genesis) pays nothing; the premine exists from genesis. Block `h >= 1` of a
//!   segment pays `max(curve(t), floor)` where `t` counts the segment's blocks from 0. The first
//!   schedule's segment starts at block 1, so block 1 pays `initial_reward`; a later schedule's
//!   segment starts at its activation height.
//! - A later Halving, ExponentialDecay or LinearDecay schedule starts from the reward the
//!   previous curve would have paid at the activation height (continuity). Fixed and CustomTable
//!   schedules state their own rewards; heights a table does not cover pay the floor.
//! - Uncapped supply `U(h) = premine + Σ_{1<=i<=h} reward(i)`. With a cap, the supply is
//!   `min(U(h), cap)`: the block that reaches the cap is paid only what is left below it, and
//!   every later block pays zero.
//! - `cumulative_supply(h)` is computed in closed form, never by summing blocks; the tests check
//!   that it equals the sum of `block_reward` over every height.

mod config;
mod curve;
mod exponential;

pub use config::{EmissionConfig, Schedule, ScheduleVersion, TableRange};

use crate::{Amount, Height};
use curve::{Curve, TableCurve};

/// Why an emission configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {reason}")]
pub struct EmissionError {
    /// Dotted path of the offending field.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> EmissionError {
    EmissionError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// One schedule version's stretch of heights.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    /// First height of the segment.
    start: Height,
    /// Number of heights in it (the last segment runs to `u64::MAX`).
    len: u64,
    /// The curve, indexed from the segment's first block.
    curve: Curve,
    /// First local index paying the floor instead of the curve, if any.
    floor_from: Option<u64>,
    /// `curve.sum(floor_from)`, cached.
    sum_before_floor: u128,
    /// Uncapped supply after the block before `start`.
    supply_before: u128,
}

/// A compiled emission schedule: answers reward and supply queries in O(1) or O(log n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    segments: Vec<Segment>,
    floor: u64,
    premine: u64,
    cap: Option<u64>,
    /// First height whose uncapped supply reaches the cap.
    cap_height: Option<Height>,
    /// What the block at `cap_height` is paid.
    cap_reward: u64,
    /// The supply approached as the height grows: the cap, or the uncapped total.
    limit: u64,
}

impl Emission {
    /// Compiles `config` with `premine` already in existence; refuses schedules whose supply
    /// would not fit in a `u64` at some height.
    pub fn new(config: &EmissionConfig, premine: Amount) -> Result<Self, EmissionError> {
        let floor = config.floor.units();
        if floor > config.initial_reward.units() {
            return Err(invalid(
                "emission.floor",
                "must not exceed emission.initial_reward",
            ));
        }
        let premine = premine.units();
        if let Some(cap) = config.cap
            && premine > cap.units()
        {
            return Err(invalid(
                "emission.cap",
                format!("({cap}) is below the premine ({premine})"),
            ));
        }
        let Some(first) = config.schedules.first() else {
            return Err(invalid(
                "emission.schedules",
                "must list at least one schedule",
            ));
        };
        if first.activation_height != 0 {
            return Err(invalid(
                "emission.schedules[0].activation_height",
                "must be 0",
            ));
        }
        for (i, pair) in config.schedules.windows(2).enumerate() {
            if pair[1].activation_height <= pair[0].activation_height {
                return Err(invalid(
                    format!("emission.schedules[{}].activation_height", i + 1),
                    "must be greater than the previous schedule's",
                ));
            }
        }
        let mut segments: Vec<Segment> = Vec::with_capacity(config.schedules.len());
        let mut start_reward = config.initial_reward.units();
        let mut supply: u128 = u128::from(premine);
        for (i, version) in config.schedules.iter().enumerate() {
            let field = |name: &str| format!("emission.schedules[{i}].{name}");
            let start = version.activation_height.max(1);
            // Segments cover start..next activation; the last one runs through u64::MAX.
            let len = match config.schedules.get(i + 1) {
                Some(next) => next.activation_height.saturating_sub(start),
                None => u64::MAX - start + 1,
            };
            if let Some(prev) = segments.last() {
                // Continuity: start where the previous curve would have been.
                start_reward = prev.curve.reward(start - prev.start);
            }
            let span = (version.activation_height, start, len);
            let curve = compile(&version.schedule, start_reward, span, floor, &field)?;
            let floor_from = curve.floor_start(floor).filter(|&f| f < len);
            let sum_before_floor = floor_from.map_or(0, |f| curve.sum(f));
            let segment = Segment {
                start,
                len,
                curve,
                floor_from,
                sum_before_floor,
                supply_before: supply,
            };
            supply = supply.saturating_add(segment.sum(len, floor));
            if len > 0 {
                segments.push(segment);
            }
        }
        let cap = config.cap.map(Amount::units);
        let total = supply;
        let mut emission = Self {
            segments,
            floor,
            premine,
            cap,
            cap_height: None,
            cap_reward: 0,
            limit: 0,
        };
        if cap.is_none() && total > u128::from(u64::MAX) {
            let height = emission.first_height_reaching(u128::from(u64::MAX) + 1);
            return Err(invalid(
                "emission",
                format!(
                    "total supply exceeds the u64 range at height {height}; set emission.cap \
                     or choose a schedule that converges"
                ),
            ));
        }
        // At most the cap (a u64) or, uncapped, checked against u64::MAX just above.
        emission.limit = cap.map_or(total, |c| total.min(u128::from(c))) as u64;
        if let Some(c) = cap
            && total >= u128::from(c)
        {
            let h = emission.first_height_reaching(u128::from(c));
            let before = if h == 0 {
                u128::from(c)
            } else {
                emission.uncapped(h - 1)
            };
            emission.cap_height = Some(h);
            emission.cap_reward = (u128::from(c) - before) as u64;
        }
        Ok(emission)
    }

    /// The reward a block at `height` may claim (before fees). Zero for genesis and after the cap.
    #[inline]
    pub fn block_reward(&self, height: Height) -> Amount {
        if height == 0 {
            return Amount::ZERO;
        }
        if let Some(cap_height) = self.cap_height {
            if height > cap_height {
                return Amount::ZERO;
            }
            if height == cap_height {
                return Amount(self.cap_reward);
            }
        }
        match self.segment(height) {
            Some(s) => Amount(s.curve.reward(height - s.start).max(self.floor)),
            None => Amount::ZERO,
        }
    }

    /// Total coins in existence after the block at `height`: the premine plus every reward up
    /// to and including that block.
    #[inline]
    pub fn cumulative_supply(&self, height: Height) -> Amount {
        let uncapped = self.uncapped(height);
        let capped = match self.cap {
            Some(cap) => uncapped.min(u128::from(cap)),
            None => uncapped,
        };
        // Validated in `new`: the supply never leaves the u64 range.
        Amount(capped.min(u128::from(u64::MAX)) as u64)
    }

    /// The supply approached as the height grows: the cap if it is reached, else the total the
    /// schedule converges to.
    pub fn supply_limit(&self) -> Amount {
        Amount(self.limit)
    }

    /// The emission cap, if any.
    pub fn cap(&self) -> Option<Amount> {
        self.cap.map(Amount)
    }

    /// The premine included in every supply figure.
    pub fn premine(&self) -> Amount {
        Amount(self.premine)
    }

    /// The height of the block that reaches the cap, if the schedule ever does.
    pub fn cap_height(&self) -> Option<Height> {
        self.cap_height
    }

    /// The first height of each schedule version (the first version's segment starts at 1).
    pub fn activation_heights(&self) -> impl Iterator<Item = Height> + '_ {
        self.segments.iter().map(|s| s.start)
    }

    /// The lowest height whose cumulative supply is at least `amount`, if any.
    pub fn height_reaching(&self, amount: Amount) -> Option<Height> {
        (u128::from(amount.units()) <= u128::from(self.limit))
            .then(|| self.first_height_reaching(u128::from(amount.units())))
    }

    #[inline]
    fn segment(&self, height: Height) -> Option<&Segment> {
        self.segments.iter().rev().find(|s| s.start <= height)
    }

    /// Uncapped supply after block `height`.
    fn uncapped(&self, height: Height) -> u128 {
        match self.segment(height) {
            Some(s) => s
                .supply_before
                .saturating_add(s.sum(height - s.start + 1, self.floor)),
            None => u128::from(self.premine),
        }
    }

    /// Smallest height with `uncapped(h) >= target` (`u64::MAX` if none), by binary search over
    /// the non-decreasing supply.
    fn first_height_reaching(&self, target: u128) -> Height {
        let (mut lo, mut hi) = (0u64, u64::MAX);
        if self.uncapped(hi) < target {
            return u64::MAX;
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.uncapped(mid) >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }
}

impl Segment {
    /// `Σ_{t<n} max(curve(t), floor)`.
    #[inline]
    fn sum(&self, n: u64, floor: u64) -> u128 {
        match self.floor_from {
            Some(f) if n > f => self
                .sum_before_floor
                .saturating_add(u128::from(n - f) * u128::from(floor)),
            _ => self.curve.sum(n),
        }
    }
}

/// Compiles one schedule version into a curve over its segment `start..start + len`.
///
/// `span` is (activation height, first height, number of heights): the first version is
/// activated at 0 but its segment starts at block 1, so a table range may start at 0 there.
fn compile(
    schedule: &Schedule,
    start_reward: u64,
    span: (Height, Height, u64),
    floor: u64,
    field: &dyn Fn(&str) -> String,
) -> Result<Curve, EmissionError> {
    let (activation, start, len) = span;
    Ok(match schedule {
        Schedule::Halving { interval: 0 } => {
            return Err(invalid(field("interval"), "must be at least 1"));
        }
        Schedule::Halving { interval } => Curve::Halving {
            start: start_reward,
            interval: *interval,
        },
        Schedule::ExponentialDecay {
            half_life_blocks: 0,
        } => {
            return Err(invalid(field("half_life_blocks"), "must be at least 1"));
        }
        Schedule::ExponentialDecay { half_life_blocks } => Curve::Exponential(
            exponential::ExponentialCurve::new(start_reward, *half_life_blocks),
        ),
        Schedule::LinearDecay { decrease_per_block } => Curve::Linear {
            start: start_reward,
            decrease: decrease_per_block.units(),
        },
        Schedule::Fixed { reward } => Curve::Fixed {
            reward: reward.units(),
        },
        Schedule::CustomTable { ranges } => {
            // Exclusive end as u128: the last segment ends after u64::MAX.
            let end = u128::from(start) + u128::from(len);
            let mut steps: Vec<(u64, u64)> = Vec::with_capacity(2 * ranges.len() + 1);
            let mut lower = activation;
            let mut cursor = start;
            for (j, r) in ranges.iter().enumerate() {
                let name = field(&format!("ranges[{j}]"));
                if r.start >= r.end {
                    return Err(invalid(name, "must have start < end"));
                }
                if r.start < lower {
                    return Err(invalid(
                        name,
                        "overlaps the previous range or starts before the schedule's activation",
                    ));
                }
                if u128::from(r.end) > end {
                    return Err(invalid(name, "ends after the next schedule's activation"));
                }
                lower = r.end;
                let range_start = r.start.max(start);
                if range_start >= r.end {
                    continue;
                }
                if range_start > cursor {
                    steps.push((cursor - start, floor));
                }
                steps.push((range_start - start, r.reward.units().max(floor)));
                cursor = r.end;
            }
            if u128::from(cursor) < end || steps.is_empty() {
                steps.push((cursor - start, floor));
            }
            Curve::Table(TableCurve::new(steps))
        }
    })
}

#[cfg(test)]
mod tests;
