//! The difficulty target: a 256-bit big-endian threshold that a proof's score must stay under.

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
}
