//! The node's one source of randomness: a ChaCha20 generator seeded from the operating system
//! in production and from the run's seed in the simulator, so that a simulated network is a
//! pure function of its seed while a real node draws keys, nonces and jitter it cannot predict.
//!
//! Consumers never share one stream across actors: each takes its own child with
//! [`NodeRng::derive`] (a pure function of the root seed and a label, so the order in which
//! actors start changes nothing) and draws from it in its own, deterministic order.
//!
//! # Keys
//!
//! Key material (long-term keys, Noise ephemeral keys) is drawn with [`NodeRng::key_bytes`],
//! never from the stream directly. A generator made by [`NodeRng::from_os`], and every child of
//! it, answers [`NodeRng::key_bytes`] from the operating system's RNG, so no key of a real node
//! is a function of the in-memory root seed: a leaked seed reveals no key, and two keys drawn
//! from children of the same seed differ. Only a generator made from a given seed
//! ([`NodeRng::from_seed`], [`NodeRng::from_u64`]: the simulator and tests) draws keys from its
//! stream, so that a simulated run is still a pure function of its seed. The `spacetime` binary
//! makes its generator with [`NodeRng::from_os`] only (see docs/crypto.md).

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::Zeroize;

use crate::hash::{Hasher, tags};

/// Why the operating system gave no seed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RngError(String);

/// Where a generator draws key material from (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The operating system's RNG, on every draw (production).
    Os,
    /// The generator's own stream (the simulator and tests: reproducible keys).
    Stream,
}

/// 32 bytes from the operating system's RNG.
pub fn os_bytes32() -> Result<[u8; 32], RngError> {
    let mut out = [0u8; 32];
    rand_core::OsRng
        .try_fill_bytes(&mut out)
        .map_err(|e| RngError(e.to_string()))?;
    Ok(out)
}

/// A seeded cryptographic generator (ChaCha20) with labelled children. Its seed is wiped on
/// drop and never shown by `Debug`.
pub struct NodeRng {
    seed: [u8; 32],
    stream: ChaCha20Rng,
    keys: KeySource,
}

impl NodeRng {
    /// The generator of a 32-byte seed: the same seed gives the same bytes, keys included
    /// (for the simulator and tests; a real node uses [`NodeRng::from_os`]).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self::with_keys(seed, KeySource::Stream)
    }

    fn with_keys(seed: [u8; 32], keys: KeySource) -> Self {
        Self {
            seed,
            stream: ChaCha20Rng::from_seed(seed),
            keys,
        }
    }

    /// A generator seeded from the operating system whose keys, and its children's, come from
    /// the operating system on every draw (production).
    pub fn from_os() -> Result<Self, RngError> {
        let mut seed = os_bytes32()?;
        let rng = Self::with_keys(seed, KeySource::Os);
        seed.zeroize();
        Ok(rng)
    }

    /// Where this generator's key material comes from.
    pub fn key_source(&self) -> KeySource {
        self.keys
    }

    /// Fills `dest` with key material: from the operating system for a generator of
    /// [`NodeRng::from_os`] and its children, from the stream otherwise.
    pub fn try_fill_key(&mut self, dest: &mut [u8]) -> Result<(), RngError> {
        match self.keys {
            KeySource::Os => rand_core::OsRng
                .try_fill_bytes(dest)
                .map_err(|e| RngError(e.to_string())),
            KeySource::Stream => {
                self.stream.fill_bytes(dest);
                Ok(())
            }
        }
    }

    /// 32 bytes of key material (a secret key seed); see [`NodeRng::try_fill_key`].
    pub fn key_bytes(&mut self) -> Result<[u8; 32], RngError> {
        let mut out = [0u8; 32];
        self.try_fill_key(&mut out)?;
        Ok(out)
    }

    /// The generator of a simulation seed (a 64-bit number is enough to name a run).
    pub fn from_u64(seed: u64) -> Self {
        let mut h = Hasher::new(tags::RNG_SEED);
        h.update(&seed.to_le_bytes());
        Self::from_seed(h.finalize().0)
    }

    /// An independent child generator for one consumer, a pure function of this generator's
    /// seed and `label` (use one label per consumer: the same label gives the same child).
    /// The child keeps this generator's [`KeySource`].
    pub fn derive(&self, label: &str) -> NodeRng {
        let mut h = Hasher::new(tags::RNG_DERIVE);
        h.update(&self.seed).update(label.as_bytes());
        Self::with_keys(h.finalize().0, self.keys)
    }

    /// 32 fresh bytes from the stream (a seed for a child, a nonce, a plot seed; never a key:
    /// see [`NodeRng::key_bytes`]).
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.stream.fill_bytes(&mut out);
        out
    }

    /// A fresh child generator drawn from the stream (one per session, per handshake); it
    /// keeps this generator's [`KeySource`].
    pub fn split(&mut self) -> NodeRng {
        let mut seed = self.bytes32();
        let child = Self::with_keys(seed, self.keys);
        seed.zeroize();
        child
    }
}

impl Drop for NodeRng {
    fn drop(&mut self) {
        // The seed names every child's stream; the ChaCha state itself is rand_chacha's.
        self.seed.zeroize();
    }
}

impl core::fmt::Debug for NodeRng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never show the seed.
        write!(f, "NodeRng(keys: {:?})", self.keys)
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
    fn os_generators_draw_keys_from_the_os_even_from_one_seed() {
        let root = NodeRng::from_os().unwrap();
        let (mut a, mut b) = (root.derive("node-key"), root.derive("node-key"));
        assert_eq!(a.key_source(), KeySource::Os);
        // The same seed gives the same stream, but not the same keys.
        assert_eq!(a.bytes32(), b.bytes32());
        assert_ne!(a.key_bytes().unwrap(), b.key_bytes().unwrap());
        let (mut x, mut y) = (a.split(), b.split());
        assert_eq!(x.key_source(), KeySource::Os);
        assert_eq!(x.bytes32(), y.bytes32());
        assert_ne!(x.key_bytes().unwrap(), y.key_bytes().unwrap());
    }

    #[test]
    fn seeded_generators_draw_keys_from_the_stream() {
        let root = NodeRng::from_u64(9);
        let (mut a, mut b) = (root.derive("node-key"), root.derive("node-key"));
        assert_eq!(a.key_source(), KeySource::Stream);
        let key = a.key_bytes().unwrap();
        assert_eq!(key, b.key_bytes().unwrap());
        // Keys are the stream's bytes, as before keys had their own source.
        assert_eq!(key, root.derive("node-key").bytes32());
        assert_eq!(a.split().key_source(), KeySource::Stream);
    }

    #[test]
    fn debug_shows_no_seed() {
        let rng = NodeRng::from_seed([0xab; 32]);
        let shown = format!("{rng:?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn os_seeded_generators_differ() {
        let mut a = NodeRng::from_os().unwrap();
        let mut b = NodeRng::from_os().unwrap();
        assert_ne!(a.bytes32(), b.bytes32());
    }
}
