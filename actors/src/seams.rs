//! The node's seams to the outside world. The node reads time, draws randomness, runs blocking
//! work and reaches peers only through these, so the same assembly runs as `spacetime node`
//! (system clock, OS-seeded generator, threads, TCP) and inside the simulator (tokio's paused
//! clock, a generator seeded by the run, inline work, in-memory links).

use std::sync::Arc;

use spacetime::NodeRng;

use crate::clock::{Clock, NodeClock};
use crate::net::{TcpTransport, Transport};
use crate::spawn::Spawner;

/// Clock, randomness, CPU and transport of one node.
#[derive(Clone)]
pub struct Seams {
    /// The one clock everything reads.
    pub clock: Arc<dyn Clock>,
    /// The root of the node's generator: each consumer takes its own child with
    /// [`NodeRng::derive`] and a label of its own.
    pub rng: Arc<NodeRng>,
    /// Where blocking and CPU-heavy work runs.
    pub spawner: Spawner,
    /// How the node reaches peers.
    pub transport: Arc<dyn Transport>,
}

impl Seams {
    /// Production: the system clock, a generator seeded from the OS (whose key material comes
    /// from the OS on every draw), threads, TCP. The `spacetime` binary builds no other seams.
    pub fn production() -> Result<Self, spacetime::rng::RngError> {
        Ok(Self {
            clock: Arc::new(NodeClock::system()),
            rng: Arc::new(NodeRng::from_os()?),
            spawner: Spawner::Threads,
            transport: Arc::new(TcpTransport),
        })
    }

    /// A child generator for one consumer (see [`NodeRng::derive`]).
    pub fn rng_for(&self, label: &str) -> NodeRng {
        self.rng.derive(label)
    }
}

impl std::fmt::Debug for Seams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seams")
            .field("spawner", &self.spawner)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_keys_come_from_the_os() {
        let seams = Seams::production().unwrap();
        for label in ["node-key", "miner-key", "peers"] {
            assert_eq!(
                seams.rng_for(label).key_source(),
                spacetime::rng::KeySource::Os
            );
        }
        let (mut a, mut b) = (seams.rng_for("miner-key"), seams.rng_for("miner-key"));
        assert_ne!(a.key_bytes().unwrap(), b.key_bytes().unwrap());
    }
}
