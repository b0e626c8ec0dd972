//! The node's one source of randomness: a ChaCha20 generator seeded from the operating system
//! in production and from the run's seed in the simulator, so that a simulated network is a
//! pure function of its seed while a real node draws keys, nonces and jitter it cannot predict.
//!
//! Consumers never share one stream across actors: each takes its own child with
//! [`NodeRng::derive`] (a pure function of the root seed and a label, so the order in which
//! actors start changes nothing) and draws from it in its own, deterministic order.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

use crate::hash::{Hasher, tags};

/// Why the operating system gave no seed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RngError(String);

/// A seeded cryptographic generator (ChaCha20) with labelled children.
pub struct NodeRng {
    seed: [u8; 32],
    stream: ChaCha20Rng,
}

impl NodeRng {
    /// The generator of a 32-byte seed: the same seed gives the same bytes.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            seed,
            stream: ChaCha20Rng::from_seed(seed),
        }
    }

    /// A generator seeded from the operating system (production).
    pub fn from_os() -> Result<Self, RngError> {
        let mut seed = [0u8; 32];
        rand_core::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| RngError(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    /// The generator of a simulation seed (a 64-bit number is enough to name a run).
    pub fn from_u64(seed: u64) -> Self {
        let mut h = Hasher::new(tags::RNG_SEED);
        h.update(&seed.to_le_bytes());
        Self::from_seed(h.finalize().0)
    }

    /// An independent child generator for one consumer, a pure function of this generator's
    /// seed and `label` (use one label per consumer: the same label gives the same child).
    pub fn derive(&self, label: &str) -> NodeRng {
        let mut h = Hasher::new(tags::RNG_DERIVE);
        h.update(&self.seed).update(label.as_bytes());
        Self::from_seed(h.finalize().0)
    }

    /// 32 fresh bytes from the stream (a seed for a child, a key).
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.stream.fill_bytes(&mut out);
        out
    }

    /// A fresh child generator drawn from the stream (one per session, per handshake).
    pub fn split(&mut self) -> NodeRng {
        Self::from_seed(self.bytes32())
    }
}

impl core::fmt::Debug for NodeRng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never show the seed.
        f.write_str("NodeRng")
    }
}

impl RngCore for NodeRng {
    fn next_u32(&mut self) -> u32 {
        self.stream.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.stream.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.stream.fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.stream.try_fill_bytes(dest)
    }
}

impl CryptoRng for NodeRng {}

impl crate::p2p::Random for NodeRng {
    fn next_u64(&mut self) -> u64 {
        self.stream.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let mut a = NodeRng::from_u64(7);
        let mut b = NodeRng::from_u64(7);
        let mut c = NodeRng::from_u64(8);
        let (x, y, z) = (a.bytes32(), b.bytes32(), c.bytes32());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn derived_children_depend_on_label_not_on_draw_order() {
        let mut a = NodeRng::from_u64(1);
        let b = NodeRng::from_u64(1);
        let _ = a.bytes32();
        assert_eq!(a.derive("chain").bytes32(), b.derive("chain").bytes32());
        assert_ne!(b.derive("chain").bytes32(), b.derive("peers").bytes32());
    }

    #[test]
    fn split_children_differ_from_each_other() {
        let mut a = NodeRng::from_u64(3);
        let (mut x, mut y) = (a.split(), a.split());
        assert_ne!(x.bytes32(), y.bytes32());
    }

    #[test]
    fn os_seeded_generators_differ() {
        let mut a = NodeRng::from_os().unwrap();
        let mut b = NodeRng::from_os().unwrap();
        assert_ne!(a.bytes32(), b.bytes32());
    }
}
