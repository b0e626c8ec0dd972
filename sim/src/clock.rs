//! Virtual time: the only clock a simulated node ever sees.

use std::fmt;

/// A point in virtual time, in milliseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);

    /// The time `ms` milliseconds after the start.
    pub const fn from_millis(ms: u64) -> Self {
        SimTime(ms)
    }

    /// The time `s` seconds after the start, saturating at the end of time.
    pub const fn from_secs(s: u64) -> Self {
        SimTime(s.saturating_mul(1000))
    }

    /// Milliseconds since the start.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + ms`, or `None` on overflow.
    pub const fn checked_add(self, ms: u64) -> Option<Self> {
        match self.0.checked_add(ms) {
            Some(t) => Some(SimTime(t)),
            None => None,
        }
    }

    /// `self + ms`, saturating at `u64::MAX` milliseconds.
    pub const fn saturating_add(self, ms: u64) -> Self {
        SimTime(self.0.saturating_add(ms))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}
