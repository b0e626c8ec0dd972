//! The difficulty rule: ASERT (aserti3-2d), recomputed every block.
//!
//! The target of a block is an exponential function of how far its parent's timestamp lies
//! ahead of or behind an absolute schedule that starts at a fixed anchor block:
//!
//! ```text
//! target(h + 1) = initial_target * 2^((ts(h) - ts(1) - target_block_time * (h - 1)) / half_life)
//! ```
//!
//! In Spacetime a larger target is easier (a proof wins when `score < target`, as in Bitcoin):
//! blocks slower than the schedule give a positive exponent and a larger target.
//!
//! # Decisions
//!
//! - **Algorithm.** The integer approximation of Bitcoin Cash's aserti3-2d: the exponent is a
//!   16.16 fixed-point number of half-lives; `2^frac` of its fractional part is the cubic
//!   `65536 + ((195766423245049 f + 971821376 f^2 + 5127 f^3 + 2^47) >> 48)` (exact at whole
//!   half-lives, monotone, relative error below 1.2e-4 in between); the integer part is a shift.
//! - **Anchor: block 1**, not genesis. A network's genesis time can lie months before its
//!   first block (above all the `dev` network); measured from genesis the schedule error would
//!   be enormous and the target would sit at its maximum for a long time. Block 1 is the first
//!   mined block, so its timestamp starts the schedule. Blocks 1 and 2 use `initial_target`,
//!   which is also the anchor target (`next_target` returns it unchanged on schedule).
//! - **Rounding.** The exponent is computed in `i128` and divided by the half-life rounding
//!   toward negative infinity (Euclidean division with a positive divisor), so it is monotone in
//!   the timestamp with no double-wide step at zero (aserti3-2d's C++ division truncates toward
//!   zero instead). The integer part is the arithmetic shift `exponent >> 16` (a floor). The
//!   product `anchor_target * factor` is formed exactly (up to 273 bits), shifted by
//!   `integer_part - 16` and rounded down, then clamped to `[1, Target::MAX]`. Out-of-range
//!   inputs saturate instead of overflowing; saturation is monotone too.
//! - **Time deltas may be negative.** Nothing assumes the parent's timestamp is at or after the
//!   anchor's.
//!
//! The timestamp rules this relies on (epoch binding, median of 11, future drift) and the
//! simulation results are in `docs/difficulty.md`.

use crate::genesis::GenesisConfig;
use crate::target::Target;
use crate::u256::U256;
use crate::{Height, TimestampMs};

/// Fixed-point scale of the exponent: 16 fractional bits, one half-life = 65536.
const RADIX_BITS: u32 = 16;
/// One half-life in exponent units.
const RADIX: i128 = 1 << RADIX_BITS;

/// Inputs the difficulty rule needs from the genesis configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsertParams {
    /// Target of blocks 1 and 2, and the anchor target of the schedule.
    pub initial_target: Target,
    /// The scheduled time between blocks.
    pub target_block_time_ms: u64,
    /// Time ahead of (behind) schedule that halves (doubles) the target. Genesis validation
    /// keeps it positive; a zero here is treated as 1 ms.
    pub half_life_ms: u64,
}

impl AsertParams {
    /// Reads the parameters from a genesis configuration.
    pub fn from_genesis(config: &GenesisConfig) -> Self {
        Self {
            initial_target: config.difficulty.initial_target,
            target_block_time_ms: config.network.target_block_time_ms,
            half_life_ms: config.difficulty.half_life_ms,
        }
    }
}

/// The target of the block at `parent_height + 1`. `anchor_timestamp_ms` is the timestamp of
/// block 1 (ignored while `parent_height <= 1`: blocks 1 and 2 use `initial_target`).
///
/// The result is never zero and never above [`Target::MAX`]; it does not decrease when
/// `parent_timestamp_ms` grows and does not increase when `parent_height` grows.
pub fn next_target(
    params: &AsertParams,
    anchor_timestamp_ms: TimestampMs,
    parent_height: Height,
    parent_timestamp_ms: TimestampMs,
) -> Target {
    if parent_height <= 1 {
        // On schedule by definition. A zero initial target (rejected by genesis validation)
        // still yields a target that some score can meet.
        return Target::from_u256(clamp_min_one(params.initial_target.to_u256()));
    }
    let exponent = schedule_exponent(
        params,
        anchor_timestamp_ms,
        parent_height,
        parent_timestamp_ms,
    );
    target_for_exponent(params.initial_target.to_u256(), exponent)
}

/// The exponent in 1/65536 half-lives: `floor(schedule_error_ms * 65536 / half_life_ms)`,
/// where the schedule error is the parent's time since the anchor minus
/// `target_block_time_ms * (parent_height - 1)`. Saturates at the `i128` range.
fn schedule_exponent(
    params: &AsertParams,
    anchor_timestamp_ms: TimestampMs,
    parent_height: Height,
    parent_timestamp_ms: TimestampMs,
) -> i128 {
    let elapsed = i128::from(parent_timestamp_ms) - i128::from(anchor_timestamp_ms);
    // parent_height >= 1 here; u64 * u64 can exceed i128::MAX only in absurd inputs.
    let blocks_since_anchor = parent_height.saturating_sub(1);
    let scheduled = i128::from(params.target_block_time_ms)
        .checked_mul(i128::from(blocks_since_anchor))
        .unwrap_or(i128::MAX);
    let error = elapsed.saturating_sub(scheduled);
    error
        .saturating_mul(RADIX)
        .div_euclid(i128::from(params.half_life_ms.max(1)))
}

/// `2^(frac / 65536)` in 16.16 fixed point for `frac` in `[0, 65536)`: aserti3-2d's cubic.
/// Returns a value in `[65536, 131071]`, exact (65536) at `frac == 0`, non-decreasing.
fn pow2_frac(frac: u64) -> u64 {
    let f = u128::from(frac & 0xffff);
    let poly = 195_766_423_245_049 * f + 971_821_376 * f * f + 5_127 * f * f * f + (1 << 47);
    // poly < 2^64 for f < 2^16, so the shifted value is below 2^16.
    65_536 + (poly >> 48) as u64
}

/// `anchor * 2^(exponent / 65536)` rounded down as described in the module docs, clamped to
/// `[1, Target::MAX]`.
fn target_for_exponent(anchor: U256, exponent: i128) -> Target {
    let anchor = clamp_min_one(anchor);
    // Floor division by 65536 and the matching non-negative remainder.
    let shifts = exponent >> RADIX_BITS;
    let frac = (exponent & (RADIX - 1)) as u64;
    // anchor >= 1 and factor >= 2^16: with shifts >= 256 the value is >= 2^256 (saturates);
    // anchor < 2^256 and factor < 2^17: with shifts <= -273 it rounds to 0 (clamps to 1).
    if shifts >= 256 {
        return Target::MAX;
    }
    if shifts <= -273 {
        return Target::from_u256(U256::ONE);
    }
    let (low, high) = anchor.mul_u64(pow2_frac(frac));
    // The exact product is low + high * 2^256; the target is floor(product * 2^(shifts - 16)).
    // shifts lies in (-273, 256) here, so the conversion cannot fail.
    let net = i32::try_from(shifts).unwrap_or(0) - RADIX_BITS as i32;
    let value = if net >= 0 {
        let net = net.unsigned_abs();
        if high != 0 || low.leading_zeros() < net {
            None
        } else {
            Some(low << net)
        }
    } else {
        shr_wide(low, high, net.unsigned_abs())
    };
    match value {
        Some(v) => Target::from_u256(clamp_min_one(v)),
        None => Target::MAX,
    }
}

/// `floor((low + high * 2^256) / 2^k)` for `k >= 1`, or `None` when it does not fit in 256 bits.
fn shr_wide(low: U256, high: u64, k: u32) -> Option<U256> {
    if k >= 320 {
        return Some(U256::ZERO);
    }
    if k >= 256 {
        return Some(U256::from_u64(high >> (k - 256)));
    }
    if k < 64 && high >> k != 0 {
        return None;
    }
    // Bits of `high` land at 256 - k and up; for k < 64 the ones shifted past bit 255 are zero.
    Some((low >> k) | (U256::from_u64(high) << (256 - k)))
}

/// `v`, or 1 when `v` is zero: the hardest target a score can still meet.
fn clamp_min_one(v: U256) -> U256 {
    if v.is_zero() { U256::ONE } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANCHOR_TS: TimestampMs = 1_767_225_600_000 + 86_400_000;

    fn dev() -> AsertParams {
        AsertParams::from_genesis(&GenesisConfig::builtin("dev").unwrap())
    }

    fn pow2(k: u32) -> U256 {
        U256::ONE << k
    }

    /// The target after `blocks` blocks since block 1 with the parent `offset_ms` off schedule.
    fn target_at(params: &AsertParams, parent_height: Height, offset_ms: i64) -> Target {
        let on_schedule = ANCHOR_TS + params.target_block_time_ms * (parent_height - 1);
        let ts = on_schedule.checked_add_signed(offset_ms).unwrap();
        next_target(params, ANCHOR_TS, parent_height, ts)
    }

    fn to_f64(t: Target) -> f64 {
        t.0.iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b))
    }

    #[test]
    fn params_come_from_genesis() {
        let p = dev();
        assert_eq!(p.initial_target, Target::from_leading_zero_bits(4));
        assert_eq!(p.target_block_time_ms, 2_000);
        assert_eq!(p.half_life_ms, 60_000);
    }

    #[test]
    fn first_blocks_use_the_initial_target() {
        let p = dev();
        for ts in [0, ANCHOR_TS - 1_000_000, ANCHOR_TS, u64::MAX] {
            // Block 1 (parent = genesis) and block 2 (parent = block 1) whatever the timestamps.
            assert_eq!(
                next_target(&p, ts, 0, ts.wrapping_add(12_345)),
                p.initial_target
            );
            assert_eq!(next_target(&p, ANCHOR_TS, 0, ts), p.initial_target);
            assert_eq!(next_target(&p, ANCHOR_TS, 1, ts), p.initial_target);
        }
        let zero = AsertParams {
            initial_target: Target::ZERO,
            ..p
        };
        assert_eq!(next_target(&zero, 0, 0, 0), Target::from_u256(U256::ONE));
    }

    #[test]
    fn on_schedule_keeps_the_initial_target() {
        let p = dev();
        for h in [2, 3, 10, 1_000, 1_000_000_000] {
            assert_eq!(target_at(&p, h, 0), p.initial_target, "height {h}");
        }
        // One millisecond off schedule already moves it: -1 ms is exponent -2 (floor of
        // -1.09), +1 ms is exponent +1.
        assert!(target_at(&p, 50, -1) < p.initial_target);
        assert_eq!(target_at(&p, 50, 0), p.initial_target);
        assert!(target_at(&p, 50, 1) > p.initial_target);
    }

    #[test]
    fn whole_half_lives_double_and_halve_exactly() {
        let p = dev();
        let t0 = p.initial_target.to_u256();
        let half_life = p.half_life_ms as i64;
        for (k, expect) in [
            (1, t0 << 1),
            (2, t0 << 2),
            (-1, t0 >> 1),
            (-2, t0 >> 2),
            (-10, t0 >> 10),
        ] {
            assert_eq!(target_at(&p, 100, k * half_life).to_u256(), expect, "{k}");
        }
    }

    #[test]
    fn factor_polynomial_known_answers() {
        assert_eq!(pow2_frac(0), 65_536);
        // sqrt(2) * 65536 = 92681.9; the cubic gives 92674 (relative error 8.5e-5).
        assert_eq!(pow2_frac(16_384), 77_938);
        assert_eq!(pow2_frac(32_768), 92_674);
        assert_eq!(pow2_frac(49_152), 110_225);
        // 2^(65535/65536) * 65536 = 131070.6; one step below the next whole shift (131072).
        assert_eq!(pow2_frac(65_535), 131_071);
        let mut previous = 0;
        let mut worst = 0.0f64;
        for frac in 0..65_536u64 {
            let factor = pow2_frac(frac);
            assert!(factor >= previous, "monotone at {frac}");
            previous = factor;
            let exact = 65_536.0 * (frac as f64 / 65_536.0).exp2();
            worst = worst.max((factor as f64 / exact - 1.0).abs());
        }
        assert!(worst < 1.2e-4, "worst relative error {worst}");
    }

    #[test]
    fn fractional_exponents_track_the_exponential() {
        let p = dev();
        let t0 = to_f64(p.initial_target);
        for offset in [-90_000i64, -45_000, -1_000, 777, 30_000, 59_999, 123_456] {
            let got = to_f64(target_at(&p, 1_000, offset));
            let exact = t0 * (offset as f64 / p.half_life_ms as f64).exp2();
            let rel = (got / exact - 1.0).abs();
            assert!(rel < 1.3e-4, "offset {offset}: relative error {rel}");
        }
    }

    #[test]
    fn saturates_at_both_ends() {
        let p = dev();
        // 2^252 doubles four times to reach 2^256: the fourth half-life saturates.
        assert_eq!(
            target_at(&p, 10, 3 * 60_000).to_u256(),
            pow2(255),
            "three half-lives behind"
        );
        let just_below = target_at(&p, 10, 4 * 60_000 - 1);
        assert!(just_below < Target::MAX && just_below.to_u256() > pow2(255));
        assert_eq!(target_at(&p, 10, 4 * 60_000), Target::MAX);
        assert_eq!(next_target(&p, 0, 2, u64::MAX), Target::MAX);
        // 252 half-lives ahead leave 1; beyond that the target stays at the minimum 1.
        let ahead = |hl: i64| target_at(&p, 1_000_000, -hl * 60_000).to_u256();
        assert_eq!(ahead(252), U256::ONE);
        assert_eq!(ahead(251), U256::from_u64(2));
        assert_eq!(ahead(253), U256::ONE);
        assert_eq!(ahead(1_000), U256::ONE);
        assert_eq!(
            next_target(&p, u64::MAX, u64::MAX, 0),
            Target::from_u256(U256::ONE)
        );
        // Maximal anchor: any positive exponent saturates, negative ones stay exact.
        let easy = AsertParams {
            initial_target: Target::MAX,
            ..p
        };
        assert_eq!(target_at(&easy, 10, 1), Target::MAX);
        assert_eq!(target_at(&easy, 10, -60_000).to_u256(), U256::MAX >> 1);
        // A zero half-life behaves as 1 ms instead of dividing by zero.
        let instant = AsertParams {
            half_life_ms: 0,
            ..p
        };
        assert_eq!(
            target_at(&instant, 10, 1).to_u256(),
            p.initial_target.to_u256() << 1
        );
    }

    #[test]
    fn exact_wide_product_near_the_top() {
        // The anchor times the factor exceeds 2^256 before the final shift right by 16: the
        // result must still be exact, not saturated.
        let anchor = U256::MAX >> 1;
        let t = target_for_exponent(anchor, 32_768).to_u256();
        let (low, high) = anchor.mul_u64(92_674);
        assert_ne!(high, 0);
        assert_eq!(t, (low >> 16) | (U256::from_u64(high) << 240));
        assert!(t > anchor);
        let t = target_for_exponent(U256::MAX, -65_536 + 65_535).to_u256();
        let (low, high) = U256::MAX.mul_u64(131_071);
        assert_eq!(t, (low >> 17) | (U256::from_u64(high) << 239));
        assert_eq!(shr_wide(U256::MAX, u64::MAX, 320), Some(U256::ZERO));
        assert_eq!(
            shr_wide(U256::MAX, u64::MAX, 300),
            Some(U256::from_u64(u64::MAX >> 44))
        );
        assert_eq!(shr_wide(U256::ZERO, 1, 1), Some(pow2(255)));
        assert_eq!(shr_wide(U256::ZERO, 2, 1), None);
    }

    #[test]
    fn monotone_in_the_parent_timestamp() {
        let p = dev();
        let mut previous = Target::from_u256(U256::ONE);
        // Steps of 7 ms from 300 s ahead of schedule to 300 s behind, for several heights.
        for h in [2, 3, 50, 10_000] {
            let mut offset = -300_000i64;
            while offset <= 300_000 {
                let t = target_at(&p, h, offset);
                assert!(t >= previous, "height {h} offset {offset}");
                assert!(t != Target::ZERO);
                previous = t;
                offset += 7;
            }
            previous = Target::from_u256(U256::ONE);
        }
        // A later parent height (same timestamp) means more blocks were due: never easier.
        let ts = ANCHOR_TS + 500_000;
        let mut previous = Target::MAX;
        for h in 2..600 {
            let t = next_target(&p, ANCHOR_TS, h, ts);
            assert!(t <= previous, "height {h}");
            previous = t;
        }
    }

    #[test]
    fn negative_deltas_before_the_anchor() {
        let p = dev();
        // Parent stamped 60 s before block 1 at height 2: one half-life plus one block ahead.
        let t = next_target(&p, ANCHOR_TS, 2, ANCHOR_TS - 60_000).to_u256();
        let expect =
            target_for_exponent(p.initial_target.to_u256(), -(62_000 * 65_536) / 60_000 - 1);
        assert_eq!(t, expect.to_u256());
        assert!(t < p.initial_target.to_u256() >> 1);
        // Floor, not truncation: -1 ms ahead is exponent -2 (-1.09 rounded down), +1 ms is +1.
        assert_eq!(
            schedule_exponent(&p, ANCHOR_TS, 2, ANCHOR_TS + 2_000 - 1),
            -2
        );
        assert_eq!(
            schedule_exponent(&p, ANCHOR_TS, 2, ANCHOR_TS + 2_000 + 1),
            1
        );
        assert_eq!(schedule_exponent(&p, ANCHOR_TS, 2, ANCHOR_TS + 2_000), 0);
    }

    #[test]
    fn deterministic_and_never_zero() {
        let p = dev();
        let hard = AsertParams {
            initial_target: Target::from_u256(U256::ONE),
            ..p
        };
        let mut x: u64 = 0x1234_5678;
        for _ in 0..2_000 {
            // A fixed xorshift sequence of inputs, including wild ones.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let h = x % 5_000_000;
            // Near the schedule (within +-100 s) and anywhere at all.
            let near = (ANCHOR_TS + 2_000 * h + x % 200_000).saturating_sub(100_000);
            for ts in [near, x.rotate_left(17)] {
                for params in [&p, &hard] {
                    let a = next_target(params, ANCHOR_TS, h, ts);
                    assert_eq!(a, next_target(params, ANCHOR_TS, h, ts));
                    assert_ne!(a, Target::ZERO);
                }
            }
        }
    }
}
