//! Seeded deterministic pseudo-random numbers, implemented in-crate so a
//! dependency bump can never change a simulation run.

/// Golden-ratio increment of splitmix64.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Finalizer of splitmix64 (Steele, Lea, Flood, "Fast splittable
/// pseudorandom number generators", OOPSLA 2014; constants from Vigna's
/// public-domain `splitmix64.c`). A bijection on `u64`.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One step of splitmix64: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN_GAMMA);
    mix64(*state)
}

/// Deterministic PRNG: xoshiro256** 1.0 (Blackman and Vigna, "Scrambled
/// linear pseudorandom number generators", 2018; reference `xoshiro256starstar.c`
/// at <https://prng.di.unimi.it/>), its 256-bit state filled from splitmix64
/// as the authors recommend. Not cryptographic; for simulation only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRng {
    s: [u64; 4],
}

impl SimRng {
    /// Seeds the generator: the state is the first four splitmix64 outputs of `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        // Four consecutive splitmix64 outputs are outputs of a bijection on four
        // distinct inputs, so the all-zero state (a fixed point) is unreachable.
        Self {
            s: [(); 4].map(|()| splitmix64(&mut sm)),
        }
    }

    /// Builds a generator from a raw state (for the reference test vector).
    #[cfg(test)]
    fn from_state(s: [u64; 4]) -> Self {
        Self { s }
    }

    /// Returns the next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Returns a uniform value in `0..n`, without modulo bias (Lemire,
    /// "Fast random integer generation in an interval", TOMACS 2019).
    ///
    /// # Panics
    /// If `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "SimRng::below(0): empty range");
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            // Reject the low products that would over-represent some results.
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Returns `true` with probability `numer / denom` (clamped to 1), in
    /// integer arithmetic. Always draws from the stream, whatever the
    /// probability, so tuning one probability does not shift later draws.
    ///
    /// # Panics
    /// If `denom == 0`.
    pub fn chance(&mut self, numer: u32, denom: u32) -> bool {
        assert!(denom > 0, "SimRng::chance: zero denominator");
        self.below(u64::from(denom)) < u64::from(numer)
    }

    /// Derives an independent generator for `stream` (e.g. one per node),
    /// advancing `self` by one draw. Distinct streams forked at the same point
    /// get distinct seeds.
    pub fn fork(&mut self, stream: u64) -> SimRng {
        SimRng::new(self.next_u64() ^ mix64(stream.wrapping_add(GOLDEN_GAMMA)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_published_outputs() {
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(&mut s), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(splitmix64(&mut s), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn xoshiro256starstar_matches_reference_vector() {
        // Reference implementation outputs for state {1, 2, 3, 4}.
        let expected = [
            11520,
            0,
            1509978240,
            1215971899390074240,
            1216172134540287360,
            607988272756665600,
            16172922978634559625,
            8476171486693032832,
            10595114339597558777,
            2904607092377533576,
        ];
        let mut rng = SimRng::from_state([1, 2, 3, 4]);
        for e in expected {
            assert_eq!(rng.next_u64(), e);
        }
    }

    #[test]
    fn seeding_through_splitmix64_matches_other_implementations() {
        // xoshiro256** seeded with four splitmix64(42) outputs, as published
        // by independent implementations of the same construction.
        let mut rng = SimRng::new(42);
        assert_eq!(rng.next_u64(), 1546998764402558742);
        assert_eq!(rng.next_u64(), 6990951692964543102);
        assert_eq!(rng.next_u64(), 12544586762248559009);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut rng = SimRng::new(7);
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            buckets[rng.below(10) as usize] += 1;
        }
        // Expected 1000 per bucket, standard deviation 30: 200 is > 6 sigma.
        for (i, &b) in buckets.iter().enumerate() {
            assert!((800..=1200).contains(&b), "bucket {i} got {b}: {buckets:?}");
        }
        assert!((0..1000).all(|_| rng.below(1) == 0));
        assert!((0..1000).all(|_| rng.below(3) < 3));
    }

    #[test]
    fn below_rejects_biased_products_for_large_ranges() {
        // For n = 3 * 2^62, a bare multiply-shift maps two of every four
        // inputs to multiples of 3, so they would appear half the time
        // instead of a third: 3000 of 6000 draws rather than 2000 +/- 37.
        let n = 3u64 << 62;
        let mut rng = SimRng::new(11);
        let multiples = (0..6000).filter(|_| rng.below(n).is_multiple_of(3)).count();
        assert!((1800..=2200).contains(&multiples), "{multiples}");
    }

    #[test]
    #[should_panic(expected = "empty range")]
    fn below_zero_panics() {
        SimRng::new(0).below(0);
    }

    #[test]
    fn chance_extremes_are_exact_and_half_is_plausible() {
        let mut rng = SimRng::new(3);
        for _ in 0..10_000 {
            assert!(!rng.chance(0, 1));
            assert!(!rng.chance(0, u32::MAX));
            assert!(rng.chance(1, 1));
            assert!(rng.chance(u32::MAX, u32::MAX));
            assert!(rng.chance(7, 3));
        }
        let hits = (0..10_000).filter(|_| rng.chance(1, 2)).count();
        assert!((4700..=5300).contains(&hits), "{hits}");
    }

    #[test]
    fn chance_consumes_one_draw_whatever_the_probability() {
        let (mut a, mut b) = (SimRng::new(5), SimRng::new(5));
        a.chance(0, 10);
        b.chance(10, 10);
        assert_eq!(a, b);
    }

    #[test]
    fn fork_is_deterministic_and_streams_differ() {
        let (mut p1, mut p2) = (SimRng::new(9), SimRng::new(9));
        let (mut a, mut b) = (p1.clone().fork(0), p1.fork(1));
        assert_ne!(a.next_u64(), b.next_u64());
        assert_eq!(p2.fork(1).next_u64(), SimRng::new(9).fork(1).next_u64());
        // Forking advanced both parents identically, away from a fresh generator.
        assert_eq!(p1, p2);
        assert_ne!(p1, SimRng::new(9));
        // A child's stream is not the parent's continuation.
        assert_ne!(p2.clone().fork(0).next_u64(), p2.next_u64());
    }
}
