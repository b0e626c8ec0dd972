//! Deterministic in-process network simulator for Spacetime.
//!
//! The simulator runs the real node (its actix actors, Noise sessions and session rules) of
//! many nodes in one process, on one thread, in virtual time. This crate supplies the
//! network they talk over: [`SimNet`], the simulated internet, hands each node a
//! [`SimTransport`] (its implementation of the node's
//! [`Transport`](spacetime_actors::net::Transport) seam) whose connections are in-memory
//! [`link`]s with latency, jitter, bandwidth, loss, stalls, partitions and resets; [`topology`]
//! names the graphs nodes are wired in; [`SimRng`] is the seeded generator everything random
//! draws from. For sync scenarios, [`blocks`] mines chains outside virtual time (to preload
//! with [`Sim::preload`]) and [`rogue`] adds lying peers that speak the real protocol.
//!
//! # Determinism rules
//!
//! A run is a pure function of its seed: one seed, one run, bit for bit. To keep it so,
//! simulator code and the node code it runs must:
//!
//! - run on one actix System over a current-thread Tokio runtime with a paused clock:
//!   `actix_rt::System::with_tokio_rt(|| tokio::runtime::Builder::new_current_thread()
//!   .enable_time().start_paused(true).build())`. The paused clock jumps to the next timer
//!   whenever every task is idle, so waiting costs nothing;
//! - read time only from `tokio::time` (`Instant`, `sleep`, `sleep_until`, `timeout`), never
//!   `std::time::Instant`, `SystemTime` or any other wall clock;
//! - spawn tasks on that runtime (`tokio::spawn`, actix `spawn`), never threads,
//!   `spawn_blocking` or extra arbiters, and write `tokio::select!` as `biased;` (unbiased
//!   selection draws from a random seed);
//! - draw randomness only from a [`SimRng`] derived from the run's seed (never OS randomness,
//!   `rand::thread_rng`, or `HashMap`'s random hasher), using [`SimRng::fork`] to give each
//!   node and each link its own stream;
//! - never let iteration order of a `HashMap`/`HashSet` affect behaviour: use `BTreeMap`,
//!   `BTreeSet` or `Vec`;
//! - never depend on addresses, thread ids or other accidents of the process.
//!
//! Within those rules the runtime polls tasks in a fixed order, so the same inputs produce
//! the same interleaving, the same segment boundaries and the same draws.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocks;
pub mod link;
pub mod metrics;
pub mod net;
pub mod propagation;
pub mod rng;
pub mod rogue;
pub mod scenarios;
pub mod scope;
pub mod sim;
pub mod topology;
pub mod trace;

pub use blocks::{MineError, after_tip_ms, chain_work, extend_chain, mine_chain};
pub use link::{
    Direction, DirectionStats, LinkControl, LinkError, LinkParams, LinkStats, LinkStream, connect,
};
pub use metrics::{HistogramSummary, MetricsView, NodeMetrics};
pub use net::{NetError, NetStats, SimListener, SimNet, SimTransport};
pub use rng::SimRng;
pub use rogue::{Flood, Lie, RogueChain, RogueSpec, RogueView, SessionEnd, SessionEndReason};
pub use sim::{NODE_PORT, NodeSpec, Sim, SimError};
pub use topology::{Topology, TopologyError};
pub use trace::{Observed, Trace, TraceEntry};
