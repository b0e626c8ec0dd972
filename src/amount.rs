//! Amounts of coin in smallest units, with checked arithmetic only.

use core::fmt;

/// An amount of coin in smallest units. There is deliberately no `Add`/`Sub`: every operation is
/// checked, and overflow is an error the caller must handle (in consensus, it invalidates a block).
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Amount(pub u64);

/// An amount operation overflowed or underflowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount arithmetic overflow")]
pub struct AmountOverflow;

impl Amount {
    /// Zero coins.
    pub const ZERO: Self = Self(0);
    /// The largest representable amount.
    pub const MAX: Self = Self(u64::MAX);

    /// The amount in smallest units.
    pub const fn units(self) -> u64 {
        self.0
    }

    /// `self + rhs`, or `None` on overflow.
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        match self.0.checked_add(rhs.0) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// `self - rhs`, or `None` if `rhs > self`.
    pub const fn checked_sub(self, rhs: Self) -> Option<Self> {
        match self.0.checked_sub(rhs.0) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// `self * n`, or `None` on overflow.
    pub const fn checked_mul(self, n: u64) -> Option<Self> {
        match self.0.checked_mul(n) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// `self + rhs` as a `Result`, for `?` chains.
    pub fn try_add(self, rhs: Self) -> Result<Self, AmountOverflow> {
        self.checked_add(rhs).ok_or(AmountOverflow)
    }

    /// `self - rhs` as a `Result`, for `?` chains.
    pub fn try_sub(self, rhs: Self) -> Result<Self, AmountOverflow> {
        self.checked_sub(rhs).ok_or(AmountOverflow)
    }

    /// The checked sum of `amounts`.
    pub fn try_sum<I: IntoIterator<Item = Self>>(amounts: I) -> Result<Self, AmountOverflow> {
        amounts.into_iter().try_fold(Self::ZERO, Self::try_add)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_ops() {
        assert_eq!(Amount(2).checked_add(Amount(3)), Some(Amount(5)));
        assert_eq!(Amount::MAX.checked_add(Amount(1)), None);
        assert_eq!(Amount(2).checked_sub(Amount(3)), None);
        assert_eq!(Amount(u64::MAX / 2 + 1).checked_mul(2), None);
        assert_eq!(Amount::try_sum([Amount(1), Amount(2)]), Ok(Amount(3)));
        assert_eq!(
            Amount::try_sum([Amount::MAX, Amount(1)]),
            Err(AmountOverflow)
        );
    }
}
