//! A small unsigned 256-bit integer for targets, chain work and the difficulty rule.
//!
//! Only what consensus needs: checked and saturating addition, subtraction, shifts, a widening
//! multiplication by a `u64` and long division. Every operation is integer-only and total:
//! overflow is reported through `Option` or saturates, never wraps silently, never panics.
//!
//! Formatting: [`Display`](core::fmt::Display) prints the number in decimal (like the primitive
//! integers); [`LowerHex`](core::fmt::LowerHex) prints minimal lowercase hex (`{:#x}` adds `0x`);
//! [`Debug`](core::fmt::Debug) prints `U256(0x…)` in hex, the form most useful for targets.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{BitAnd, BitOr, Not, Shl, Shr};

/// An unsigned 256-bit integer: four 64-bit limbs, least significant limb first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct U256([u64; 4]);

impl U256 {
    /// Zero.
    pub const ZERO: Self = Self([0; 4]);
    /// One.
    pub const ONE: Self = Self([1, 0, 0, 0]);
    /// `2^256 - 1`.
    pub const MAX: Self = Self([u64::MAX; 4]);
    /// Number of bits.
    pub const BITS: u32 = 256;

    /// The value `v`.
    pub const fn from_u64(v: u64) -> Self {
        Self([v, 0, 0, 0])
    }

    /// The value `v`.
    pub const fn from_u128(v: u128) -> Self {
        Self([v as u64, (v >> 64) as u64, 0, 0])
    }

    /// The value as a `u128`, or `None` when it does not fit.
    pub const fn to_u128(&self) -> Option<u128> {
        if self.0[2] != 0 || self.0[3] != 0 {
            return None;
        }
        Some(((self.0[1] as u128) << 64) | self.0[0] as u128)
    }

    /// The value of 32 big-endian bytes.
    pub fn from_be_bytes(bytes: [u8; 32]) -> Self {
        let mut limbs = [0u64; 4];
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            limbs[3 - i] = u64::from_be_bytes(word);
        }
        Self(limbs)
    }

    /// The value as 32 big-endian bytes.
    pub fn to_be_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&self.0[3 - i].to_be_bytes());
        }
        out
    }

    /// True for zero.
    pub const fn is_zero(&self) -> bool {
        self.0[0] == 0 && self.0[1] == 0 && self.0[2] == 0 && self.0[3] == 0
    }

    /// `self + rhs` and whether it wrapped around `2^256`.
    pub const fn overflowing_add(self, rhs: Self) -> (Self, bool) {
        let mut out = [0u64; 4];
        let mut carry = false;
        let mut i = 0;
        while i < 4 {
            let (s1, c1) = self.0[i].overflowing_add(rhs.0[i]);
            let (s2, c2) = s1.overflowing_add(carry as u64);
            out[i] = s2;
            carry = c1 || c2;
            i += 1;
        }
        (Self(out), carry)
    }

    /// `self - rhs` and whether it wrapped below zero.
    pub const fn overflowing_sub(self, rhs: Self) -> (Self, bool) {
        let mut out = [0u64; 4];
        let mut borrow = false;
        let mut i = 0;
        while i < 4 {
            let (d1, b1) = self.0[i].overflowing_sub(rhs.0[i]);
            let (d2, b2) = d1.overflowing_sub(borrow as u64);
            out[i] = d2;
            borrow = b1 || b2;
            i += 1;
        }
        (Self(out), borrow)
    }

    /// `self + rhs`, or `None` when the sum is `2^256` or more.
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        match self.overflowing_add(rhs) {
            (sum, false) => Some(sum),
            (_, true) => None,
        }
    }

    /// `self + rhs`, saturating at [`U256::MAX`].
    pub const fn saturating_add(self, rhs: Self) -> Self {
        match self.overflowing_add(rhs) {
            (sum, false) => sum,
            (_, true) => Self::MAX,
        }
    }

    /// `self - rhs`, or `None` when `rhs > self`.
    pub const fn checked_sub(self, rhs: Self) -> Option<Self> {
        match self.overflowing_sub(rhs) {
            (diff, false) => Some(diff),
            (_, true) => None,
        }
    }

    /// The full product `self * rhs` as (low 256 bits, high 64 bits): the exact value is
    /// `low + high * 2^256`.
    pub const fn mul_u64(self, rhs: u64) -> (Self, u64) {
        let mut out = [0u64; 4];
        let mut carry: u64 = 0;
        let mut i = 0;
        while i < 4 {
            // (2^64 - 1)^2 + (2^64 - 1) < 2^128: no overflow.
            let wide = (self.0[i] as u128) * (rhs as u128) + carry as u128;
            out[i] = wide as u64;
            carry = (wide >> 64) as u64;
            i += 1;
        }
        (Self(out), carry)
    }

    /// `self * rhs`, or `None` when the product does not fit in 256 bits.
    pub const fn checked_mul_u64(self, rhs: u64) -> Option<Self> {
        match self.mul_u64(rhs) {
            (low, 0) => Some(low),
            _ => None,
        }
    }

    /// Quotient and remainder of `self / divisor` (the quotient rounds down), or `None` when
    /// `divisor` is zero.
    pub fn div_rem(&self, divisor: &Self) -> Option<(Self, Self)> {
        if divisor.is_zero() {
            return None;
        }
        if self < divisor {
            return Some((Self::ZERO, *self));
        }
        // Shift-subtract long division, from the highest set bit of the dividend down.
        let mut quotient = Self::ZERO;
        let mut remainder = Self::ZERO;
        for bit in (0..self.bits()).rev() {
            // The remainder stays below the divisor, so doubling it loses at most the bit that
            // `carry` keeps; with that bit set, the true value exceeds the divisor.
            let carry = remainder.bit(255);
            remainder = (remainder << 1) | Self::from_u64(u64::from(self.bit(bit)));
            if carry || remainder >= *divisor {
                // Wraps exactly once when `carry` is set: the true difference is below 2^256.
                remainder = remainder.overflowing_sub(*divisor).0;
                quotient.0[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
        Some((quotient, remainder))
    }

    /// Bit `n` (0 = least significant); false for `n >= 256`.
    pub const fn bit(&self, n: u32) -> bool {
        n < 256 && (self.0[(n / 64) as usize] >> (n % 64)) & 1 == 1
    }

    /// Number of leading zero bits (256 for zero).
    pub const fn leading_zeros(&self) -> u32 {
        let mut i = 4;
        while i > 0 {
            i -= 1;
            if self.0[i] != 0 {
                return (3 - i as u32) * 64 + self.0[i].leading_zeros();
            }
        }
        256
    }

    /// Number of significant bits: the position of the highest set bit plus one (0 for zero).
    pub const fn bits(&self) -> u32 {
        256 - self.leading_zeros()
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &Self) -> Ordering {
        // Most significant limb first.
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Shl<u32> for U256 {
    type Output = Self;

    /// Shifts left by `bits`, dropping the bits shifted out; `bits >= 256` gives zero.
    fn shl(self, bits: u32) -> Self {
        if bits >= 256 {
            return Self::ZERO;
        }
        let limbs = (bits / 64) as usize;
        let rem = bits % 64;
        let mut out = [0u64; 4];
        for (i, slot) in out.iter_mut().enumerate().skip(limbs) {
            let src = i - limbs;
            *slot = self.0[src] << rem;
            if rem > 0 && src > 0 {
                *slot |= self.0[src - 1] >> (64 - rem);
            }
        }
        Self(out)
    }
}

impl Shr<u32> for U256 {
    type Output = Self;

    /// Shifts right by `bits` (rounding down); `bits >= 256` gives zero.
    fn shr(self, bits: u32) -> Self {
        if bits >= 256 {
            return Self::ZERO;
        }
        let limbs = (bits / 64) as usize;
        let rem = bits % 64;
        let mut out = [0u64; 4];
        for (i, slot) in out.iter_mut().enumerate().take(4 - limbs) {
            let src = i + limbs;
            *slot = self.0[src] >> rem;
            if rem > 0 && src + 1 < 4 {
                *slot |= self.0[src + 1] << (64 - rem);
            }
        }
        Self(out)
    }
}

impl Not for U256 {
    type Output = Self;

    /// Bitwise complement: `2^256 - 1 - self`.
    fn not(self) -> Self {
        Self(self.0.map(|limb| !limb))
    }
}

impl BitOr for U256 {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self([
            self.0[0] | rhs.0[0],
            self.0[1] | rhs.0[1],
            self.0[2] | rhs.0[2],
            self.0[3] | rhs.0[3],
        ])
    }
}

impl BitAnd for U256 {
    type Output = Self;

    fn bitand(self, rhs: Self) -> Self {
        Self([
            self.0[0] & rhs.0[0],
            self.0[1] & rhs.0[1],
            self.0[2] & rhs.0[2],
            self.0[3] & rhs.0[3],
        ])
    }
}

impl From<u64> for U256 {
    fn from(v: u64) -> Self {
        Self::from_u64(v)
    }
}

impl From<u128> for U256 {
    fn from(v: u128) -> Self {
        Self::from_u128(v)
    }
}

impl fmt::Display for U256 {
    /// Decimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 10^19 is the largest power of ten below 2^64; at most 78 decimal digits = 5 chunks.
        const CHUNK: u64 = 10_000_000_000_000_000_000;
        let mut chunks = [0u64; 5];
        let mut n = 0;
        let mut rest = *self;
        loop {
            let (q, r) = rest.div_rem_u64(CHUNK);
            chunks[n] = r;
            n += 1;
            rest = q;
            if rest.is_zero() {
                break;
            }
        }
        let mut text = String::with_capacity(78);
        text.push_str(&chunks[n - 1].to_string());
        for chunk in chunks[..n - 1].iter().rev() {
            text.push_str(&format!("{chunk:019}"));
        }
        f.pad_integral(true, "", &text)
    }
}

impl fmt::LowerHex for U256 {
    /// Minimal lowercase hex; `{:#x}` adds the `0x` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(64);
        let mut started = false;
        for limb in self.0.iter().rev() {
            if started {
                text.push_str(&format!("{limb:016x}"));
            } else if *limb != 0 {
                text.push_str(&format!("{limb:x}"));
                started = true;
            }
        }
        if !started {
            text.push('0');
        }
        f.pad_integral(true, "0x", &text)
    }
}

impl fmt::Debug for U256 {
    /// `U256(0x…)`, minimal hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U256({self:#x})")
    }
}

impl U256 {
    /// Quotient and remainder of division by a non-zero `u64` (private: used by `Display`).
    fn div_rem_u64(&self, divisor: u64) -> (Self, u64) {
        debug_assert!(divisor != 0);
        let mut out = [0u64; 4];
        let mut rem: u64 = 0;
        for i in (0..4).rev() {
            let cur = (u128::from(rem) << 64) | u128::from(self.0[i]);
            // rem < divisor, so the quotient digit fits in a u64.
            out[i] = (cur / u128::from(divisor)) as u64;
            rem = (cur % u128::from(divisor)) as u64;
        }
        (Self(out), rem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pow2(k: u32) -> U256 {
        U256::ONE << k
    }

    fn add(a: U256, b: U256) -> U256 {
        a.checked_add(b).unwrap()
    }

    fn sub(a: U256, b: U256) -> U256 {
        a.checked_sub(b).unwrap()
    }

    fn n(v: u64) -> U256 {
        U256::from_u64(v)
    }

    /// Independent reference: the full 512-bit schoolbook product, least significant limb first.
    fn mul_full(a: U256, b: U256) -> [u64; 8] {
        let mut out = [0u64; 8];
        for i in 0..4 {
            let mut carry = 0u128;
            for j in 0..4 {
                let cur = u128::from(a.0[i]) * u128::from(b.0[j]) + u128::from(out[i + j]) + carry;
                out[i + j] = cur as u64;
                carry = cur >> 64;
            }
            out[i + 4] = carry as u64;
        }
        out
    }

    #[test]
    fn constants_and_bytes() {
        assert_eq!(U256::ZERO.to_be_bytes(), [0; 32]);
        assert_eq!(U256::MAX.to_be_bytes(), [0xff; 32]);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(U256::ONE.to_be_bytes(), one);
        assert_eq!(U256::from_be_bytes(one), U256::ONE);
        let bytes: [u8; 32] = core::array::from_fn(|i| i as u8 + 1);
        let v = U256::from_be_bytes(bytes);
        assert_eq!(v.to_be_bytes(), bytes);
        assert_eq!(
            format!("{v:x}"),
            "102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
        );
        assert_eq!((v >> 192).to_u128(), Some(0x0102_0304_0506_0708));
    }

    #[test]
    fn carries_cross_every_limb() {
        let low_ones = U256::from_u128(u128::MAX);
        assert_eq!(low_ones.checked_add(U256::ONE), Some(pow2(128)));
        assert_eq!(sub(pow2(192), n(1)).checked_add(U256::ONE), Some(pow2(192)));
        assert_eq!(U256::MAX.checked_add(U256::ONE), None);
        assert_eq!(U256::MAX.saturating_add(U256::ONE), U256::MAX);
        assert_eq!(U256::MAX.checked_add(U256::ZERO), Some(U256::MAX));
        assert_eq!(pow2(255).checked_add(pow2(255)), None);
        assert_eq!(pow2(192).checked_sub(U256::ONE), Some(sub(pow2(192), n(1))));
        assert_eq!(U256::ZERO.checked_sub(U256::ONE), None);
        assert_eq!(U256::MAX.checked_sub(U256::MAX), Some(U256::ZERO));
        assert_eq!(U256::ZERO.overflowing_sub(U256::ONE), (U256::MAX, true));
        assert_eq!(!U256::ZERO, U256::MAX);
    }

    #[test]
    fn shifts_at_the_edges() {
        let v = U256::from_be_bytes(core::array::from_fn(|i| 0x80 | i as u8));
        for k in [0u32, 1, 63, 64, 65, 127, 128, 191, 192, 255] {
            assert_eq!((U256::ONE << k).bits(), k + 1, "1 << {k}");
            assert_eq!((U256::ONE << k) >> k, U256::ONE, "round trip {k}");
            assert_eq!((U256::MAX >> k).leading_zeros(), k);
            assert_eq!((U256::MAX << k) >> k, U256::MAX >> k);
            // Shifting by k equals k shifts by one.
            let mut step = v;
            for _ in 0..k {
                step = step << 1;
            }
            assert_eq!(v << k, step);
        }
        assert_eq!(v << 0, v);
        assert_eq!(v >> 0, v);
        assert_eq!(v << 256, U256::ZERO);
        assert_eq!(v >> 256, U256::ZERO);
        assert_eq!(U256::MAX << 300, U256::ZERO);
        assert_eq!(U256::MAX >> u32::MAX, U256::ZERO);
        assert_eq!(U256::MAX >> 255, U256::ONE);
        assert_eq!(U256::MAX << 255, pow2(255));
        assert_eq!(U256::MAX >> 64, U256([u64::MAX, u64::MAX, u64::MAX, 0]));
        assert_eq!(U256::MAX << 64, U256([0, u64::MAX, u64::MAX, u64::MAX]));
        assert_eq!(U256::MAX >> 63, U256([u64::MAX, u64::MAX, u64::MAX, 1]));
    }

    #[test]
    fn bits_and_leading_zeros() {
        assert_eq!(U256::ZERO.leading_zeros(), 256);
        assert_eq!(U256::ZERO.bits(), 0);
        assert_eq!(U256::ONE.bits(), 1);
        assert_eq!(U256::MAX.leading_zeros(), 0);
        assert_eq!(U256::MAX.bits(), 256);
        assert_eq!(pow2(64).leading_zeros(), 191);
        assert!(U256::MAX.bit(255) && !U256::MAX.bit(256) && !U256::ONE.bit(1));
    }

    #[test]
    fn ordering_is_numeric() {
        assert!(U256::ZERO < U256::ONE);
        assert!(pow2(64) > U256::from_u64(u64::MAX));
        assert!(pow2(255) > add(pow2(254), pow2(253)));
        assert!(U256::MAX > pow2(255));
        assert_eq!(pow2(100).cmp(&pow2(100)), Ordering::Equal);
    }

    #[test]
    fn multiplication_widens() {
        assert_eq!(U256::MAX.mul_u64(0), (U256::ZERO, 0));
        assert_eq!(U256::MAX.mul_u64(1), (U256::MAX, 0));
        // (2^256 - 1) * (2^64 - 1) = 2^320 - 2^256 - 2^64 + 1.
        let (low, high) = U256::MAX.mul_u64(u64::MAX);
        assert_eq!(high, u64::MAX - 1);
        assert_eq!(low, add(sub(U256::MAX, pow2(64)), n(2)));
        assert_eq!(pow2(255).mul_u64(2), (U256::ZERO, 1));
        assert_eq!(pow2(255).checked_mul_u64(2), None);
        assert_eq!(pow2(254).checked_mul_u64(2), Some(pow2(255)));
        assert_eq!(pow2(64).mul_u64(1 << 63), (pow2(127), 0));
    }

    #[test]
    fn division_edge_cases() {
        assert_eq!(U256::ONE.div_rem(&U256::ZERO), None);
        assert_eq!(U256::MAX.div_rem(&U256::ONE), Some((U256::MAX, U256::ZERO)));
        assert_eq!(U256::MAX.div_rem(&U256::MAX), Some((U256::ONE, U256::ZERO)));
        assert_eq!(
            U256::MAX.div_rem(&pow2(255)),
            Some((U256::ONE, sub(pow2(255), n(1))))
        );
        // A divisor with the top bit set exercises the carry out of the remainder.
        let d = add(pow2(255), n(1));
        assert_eq!(
            U256::MAX.div_rem(&d),
            Some((U256::ONE, sub(pow2(255), n(2))))
        );
        assert_eq!(
            U256::from_u64(5).div_rem(&U256::from_u64(7)),
            Some((U256::ZERO, U256::from_u64(5)))
        );
        // (2^256 - 1) / 3 = 0x5555…5 exactly.
        let third = U256::from_be_bytes([0x55; 32]);
        assert_eq!(
            U256::MAX.div_rem(&U256::from_u64(3)),
            Some((third, U256::ZERO))
        );
        // (2^256 - 1) / (2^128 + 1) = 2^128 - 1, remainder 0.
        let d = add(pow2(128), n(1));
        assert_eq!(
            U256::MAX.div_rem(&d),
            Some((sub(pow2(128), n(1)), U256::ZERO))
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(U256::ZERO.to_string(), "0");
        assert_eq!(U256::from_u64(1234).to_string(), "1234");
        assert_eq!(
            U256::MAX.to_string(),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
        assert_eq!(pow2(64).to_string(), "18446744073709551616");
        assert_eq!(
            pow2(128).to_string(),
            "340282366920938463463374607431768211456"
        );
        assert_eq!(format!("{:x}", U256::ZERO), "0");
        assert_eq!(format!("{:#x}", pow2(64)), "0x10000000000000000");
        assert_eq!(format!("{:?}", U256::from_u64(255)), "U256(0xff)");
        assert_eq!(format!("{:>6}", U256::from_u64(42)), "    42");
    }

    proptest! {
        #[test]
        fn bytes_round_trip(bytes in any::<[u8; 32]>()) {
            prop_assert_eq!(U256::from_be_bytes(bytes).to_be_bytes(), bytes);
        }

        #[test]
        fn order_matches_big_endian_bytes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            prop_assert_eq!(U256::from_be_bytes(a).cmp(&U256::from_be_bytes(b)), a.cmp(&b));
        }

        #[test]
        fn add_sub_match_u128(a in any::<u128>(), b in any::<u128>()) {
            let (x, y) = (U256::from(a), U256::from(b));
            let sum = x.checked_add(y).unwrap();
            match a.checked_add(b) {
                Some(s) => prop_assert_eq!(sum.to_u128(), Some(s)),
                None => {
                    prop_assert_eq!(sum.to_u128(), None);
                    prop_assert_eq!(sum >> 128, U256::ONE);
                    prop_assert_eq!((sum << 128 >> 128).to_u128(), Some(a.wrapping_add(b)));
                }
            }
            prop_assert_eq!(x.checked_sub(y).and_then(|d| d.to_u128()), a.checked_sub(b));
            prop_assert_eq!(sum.checked_sub(y), Some(x));
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
        }

        #[test]
        fn shifts_match_u128(a in any::<u128>(), k in 0u32..128) {
            let x = U256::from(a);
            prop_assert_eq!((x >> k).to_u128(), Some(a >> k));
            prop_assert_eq!(((x << k) << 128 >> 128).to_u128(), Some(a << k));
            prop_assert_eq!((x << k) >> k, x);
            prop_assert_eq!(x.leading_zeros(), 128 + a.leading_zeros());
        }

        #[test]
        fn mul_div_match_u128(a in any::<u64>(), b in any::<u64>(), c in any::<u128>(), d in 1u128..) {
            let (low, high) = U256::from_u64(a).mul_u64(b);
            prop_assert_eq!(high, 0);
            prop_assert_eq!(low.to_u128(), Some(u128::from(a) * u128::from(b)));
            let (q, r) = U256::from(c).div_rem(&U256::from(d)).unwrap();
            prop_assert_eq!(q.to_u128(), Some(c / d));
            prop_assert_eq!(r.to_u128(), Some(c % d));
            prop_assert_eq!(U256::from(c).to_string(), c.to_string());
            prop_assert_eq!(format!("{:x}", U256::from(c)), format!("{c:x}"));
        }

        #[test]
        fn wide_division_reconstructs(n in any::<[u8; 32]>(), d in any::<[u8; 32]>(), shift in 0u32..256) {
            let n = U256::from_be_bytes(n);
            let d = U256::from_be_bytes(d) >> shift;
            match n.div_rem(&d) {
                Some((q, r)) => {
                    prop_assert!(r < d);
                    // n == q * d + r exactly, with nothing above 2^256.
                    let product = mul_full(q, d);
                    prop_assert_eq!(&product[4..], &[0u64; 4]);
                    let low = U256([product[0], product[1], product[2], product[3]]);
                    prop_assert_eq!(low.checked_add(r), Some(n));
                }
                None => prop_assert!(d.is_zero()),
            }
        }

        #[test]
        fn wide_mul_matches_schoolbook(a in any::<[u8; 32]>(), b in any::<u64>()) {
            let x = U256::from_be_bytes(a);
            let (low, high) = x.mul_u64(b);
            let product = mul_full(x, U256::from_u64(b));
            prop_assert_eq!(low, U256([product[0], product[1], product[2], product[3]]));
            prop_assert_eq!(high, product[4]);
            prop_assert_eq!(&product[5..], &[0u64; 3]);
            prop_assert_eq!(x.checked_mul_u64(b).is_some(), high == 0);
        }
    }
}
