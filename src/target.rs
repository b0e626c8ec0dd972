//! The difficulty target: a 256-bit big-endian threshold that a proof's score must stay under,
//! and the chain work a block of a given target represents.

use crate::u256::U256;

crate::fixed_bytes!(
    /// A 256-bit unsigned integer, big-endian. A block is eligible when `score < target`;
    /// a larger target is easier. Byte-wise ordering equals numeric ordering.
    Target,
    32
);

impl Target {
    /// The easiest possible target (every score but `2^256 - 1` wins).
    pub const MAX: Self = Self([0xff; 32]);

    /// True when a proof with this `score` wins against this target.
    pub fn is_met_by(&self, score: &crate::Hash) -> bool {
        score.0 < self.0
    }

    /// The target `2^256 / 2^bits` (a score has `bits` leading zero bits with probability
    /// `2^-bits`); `bits` above 255 saturate to the hardest non-zero target.
    pub fn from_leading_zero_bits(bits: u32) -> Self {
        let bits = bits.min(255) as usize;
        let mut out = [0u8; 32];
        if bits == 0 {
            return Self::MAX;
        }
        // 2^(256 - bits): a single set bit.
        let bit = 256 - bits;
        out[31 - bit / 8] = 1 << (bit % 8);
        Self(out)
    }

    /// The target as a number.
    pub fn to_u256(&self) -> U256 {
        U256::from_be_bytes(self.0)
    }

    /// The target with numeric value `value`.
    pub fn from_u256(value: U256) -> Self {
        Self(value.to_be_bytes())
    }

    /// The expected number of proofs (scores) needed to meet this target:
    /// `floor(2^256 / (target + 1))`, the work a block of this target adds to its chain.
    ///
    /// Target 0 (which no score can meet) would give `2^256`, which does not fit: it saturates
    /// to [`Work::MAX`]. Every non-zero target gives an exact answer, at least 1 (for
    /// [`Target::MAX`]); a smaller target never gives less work.
    pub fn work(&self) -> Work {
        let t = self.to_u256();
        if t == U256::MAX {
            // t + 1 = 2^256 does not fit; 2^256 / 2^256 = 1.
            return Work::from_u256(U256::ONE);
        }
        // floor(2^256 / (t + 1)) = floor((2^256 - 1 - t) / (t + 1)) + 1, since
        // 2^256 = (!t) + (t + 1). Here t + 1 cannot overflow and is never zero.
        let divisor = t.saturating_add(U256::ONE);
        let quotient = match (!t).div_rem(&divisor) {
            Some((q, _)) => q,
            None => return Work::MAX,
        };
        // Only t == 0 makes the sum reach 2^256; it saturates.
        Work::from_u256(quotient.saturating_add(U256::ONE))
    }
}

crate::fixed_bytes!(
    /// Chain work: a 256-bit unsigned integer, big-endian, so byte order is numeric order.
    /// A block's work is [`Target::work`]; a chain's cumulative work is the sum over its blocks.
    Work,
    32
);

impl Work {
    /// The largest representable work, `2^256 - 1`; sums saturate here.
    pub const MAX: Self = Self([0xff; 32]);

    /// The work as a number.
    pub fn to_u256(&self) -> U256 {
        U256::from_be_bytes(self.0)
    }

    /// The work with numeric value `value`.
    pub fn from_u256(value: U256) -> Self {
        Self(value.to_be_bytes())
    }

    /// `self + rhs`, or `None` when the sum reaches `2^256`.
    pub fn checked_add(&self, rhs: &Self) -> Option<Self> {
        self.to_u256()
            .checked_add(rhs.to_u256())
            .map(Self::from_u256)
    }

    /// `self + rhs`, saturating at [`Work::MAX`]. Cumulative chain work uses this: reaching
    /// `2^256` would take more than `2^255` blocks even at the easiest target (each block adds
    /// at least 1, and at most `2^256 - 1` only for target 0), so saturation is unreachable in
    /// practice and, being monotone, never reorders two chains that have not both saturated.
    pub fn saturating_add(&self, rhs: &Self) -> Self {
        Self::from_u256(self.to_u256().saturating_add(rhs.to_u256()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;

    #[test]
    fn comparison_is_numeric() {
        let t = Target::from_leading_zero_bits(8);
        assert_eq!(t.to_string(), format!("01{}", "0".repeat(62)));
        let mut below = [0u8; 32];
        below[0] = 0x00;
        below[1] = 0xff;
        assert!(t.is_met_by(&Hash(below)));
        let mut at = [0u8; 32];
        at[0] = 0x01;
        assert!(!t.is_met_by(&Hash(at)));
        assert!(Target::MAX.is_met_by(&Hash([0xfe; 32])));
        assert!(!Target::MAX.is_met_by(&Hash([0xff; 32])));
        assert_eq!(Target::from_leading_zero_bits(0), Target::MAX);
        assert_eq!(Target::from_leading_zero_bits(255).0[31], 2);
        assert_eq!(
            Target::from_leading_zero_bits(1000),
            Target::from_leading_zero_bits(255)
        );
    }

    fn pow2(k: u32) -> U256 {
        U256::ONE << k
    }

    fn work_of(t: U256) -> U256 {
        Target::from_u256(t).work().to_u256()
    }

    #[test]
    fn target_u256_round_trip() {
        let t = Target::from_leading_zero_bits(8);
        assert_eq!(t.to_u256(), pow2(248));
        assert_eq!(Target::from_u256(pow2(248)), t);
        assert_eq!(Target::MAX.to_u256(), U256::MAX);
        assert_eq!(Target::from_u256(U256::ZERO), Target::ZERO);
    }

    #[test]
    fn work_known_answers() {
        // The extremes: target MAX needs one proof; target 0 saturates.
        assert_eq!(Target::MAX.work().to_u256(), U256::ONE);
        assert_eq!(Target::ZERO.work(), Work::MAX);
        // Target 1: 2^256 / 2 = 2^255. Target 2: floor(2^256 / 3) = 0x5555…5.
        assert_eq!(work_of(U256::ONE), pow2(255));
        assert_eq!(work_of(U256::from_u64(2)), U256::from_be_bytes([0x55; 32]));
        // Target 2^k - 1: exactly 2^(256 - k).
        for k in [1u32, 8, 64, 128, 200, 255] {
            let t = pow2(k).checked_sub(U256::ONE).unwrap();
            assert_eq!(work_of(t), pow2(256 - k), "target 2^{k} - 1");
        }
        // Target 2^(256 - k), one above: floor(2^256 / (2^(256-k) + 1)) = 2^k - 1 for k <= 128,
        // since (2^k - 1)(2^(256-k) + 1) = 2^256 + 2^k - 2^(256-k) - 1 < 2^256 < 2^k (2^(256-k) + 1).
        for k in [1u32, 4, 32, 64, 100, 127, 128] {
            let expected = pow2(k).checked_sub(U256::ONE).unwrap();
            assert_eq!(
                Target::from_leading_zero_bits(k).work().to_u256(),
                expected,
                "k = {k}"
            );
        }
        // The dev network's initial target 2^252: 15 proofs per block (one in 16 wins).
        assert_eq!(
            Target::from_leading_zero_bits(4).work().to_u256(),
            U256::from_u64(15)
        );
    }

    #[test]
    fn work_is_monotone_in_the_target() {
        // Increasing targets: 0, 1, 2, then 2^k - 1, 2^k, 2^k + 1 for each k, then MAX.
        let mut targets = vec![U256::ZERO, U256::ONE, U256::from_u64(2)];
        for k in 2..256 {
            targets.push(pow2(k).checked_sub(U256::ONE).unwrap());
            targets.push(pow2(k));
            targets.push(pow2(k).checked_add(U256::ONE).unwrap());
        }
        targets.push(U256::MAX);
        for pair in targets.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(work_of(pair[0]) >= work_of(pair[1]), "{:?}", pair);
        }
    }

    #[test]
    fn work_sums() {
        let one = Work::from_u256(U256::ONE);
        assert_eq!(Work::ZERO.checked_add(&one), Some(one));
        assert_eq!(Work::MAX.checked_add(&one), None);
        assert_eq!(Work::MAX.saturating_add(&one), Work::MAX);
        let a = Target::from_leading_zero_bits(4).work();
        assert_eq!(a.saturating_add(&a).to_u256(), U256::from_u64(30));
        // Byte order is numeric order.
        assert!(Work::from_u256(pow2(64)) > Work::from_u256(U256::from_u64(u64::MAX)));
    }

    #[test]
    fn work_encodes_as_32_raw_bytes_or_hex() {
        let w = Target::from_leading_zero_bits(4).work();
        let bytes = postcard::to_allocvec(&w).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(bytes[31], 15);
        assert_eq!(postcard::from_bytes::<Work>(&bytes).unwrap(), w);
        assert_eq!(w.to_string(), format!("{}0f", "0".repeat(62)));
    }

    proptest::proptest! {
        #[test]
        fn work_matches_definition(bytes in proptest::prelude::any::<[u8; 32]>(), shift in 0u32..256) {
            // floor(2^256 / (t + 1)) is the unique w with w (t + 1) <= 2^256 < (w + 1)(t + 1).
            let t = U256::from_be_bytes(bytes) >> shift;
            proptest::prop_assume!(t != U256::MAX && !t.is_zero());
            let w = work_of(t);
            let d = t.checked_add(U256::ONE).unwrap();
            // w (t + 1) <= 2^256  <=>  w <= (2^256 - 1) / (t + 1) rounded down, or w (t+1) == 2^256.
            let (q, r) = U256::MAX.div_rem(&d).unwrap();
            let expected = if r == t { q.checked_add(U256::ONE).unwrap() } else { q };
            proptest::prop_assert_eq!(w, expected);
        }

        #[test]
        fn smaller_target_never_less_work(a in proptest::prelude::any::<[u8; 32]>(), b in proptest::prelude::any::<[u8; 32]>()) {
            let (a, b) = (Target(a), Target(b));
            let (easy, hard) = if a > b { (a, b) } else { (b, a) };
            proptest::prop_assert!(hard.work() >= easy.work());
        }
    }
}
