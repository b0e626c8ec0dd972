//! Deterministic in-process network simulator for Spacetime.
//!
//! Simulated nodes are plain state machines driven by `handle(now, input)`;
//! this crate supplies what drives them: virtual time ([`SimTime`]), a
//! discrete-event queue ([`Scheduler`]), a seeded generator ([`SimRng`]) and a
//! faulty network ([`Network`]) that drops, delays, duplicates and corrupts
//! messages and can be partitioned and healed.
//!
//! # Determinism rules
//!
//! A run is a pure function of its seed: one seed, one run, bit for bit. To
//! keep it so, simulator code and the node logic it drives must:
//!
//! - read time only from the [`Scheduler`] (never `std::time` or any wall clock);
//! - draw randomness only from a [`SimRng`] derived from the run's seed (never
//!   OS randomness, `rand::thread_rng`, or `HashMap`'s random hasher), using
//!   [`SimRng::fork`] to give each node its own stream;
//! - never let iteration order of a `HashMap`/`HashSet` affect behaviour: use
//!   `BTreeMap`, `BTreeSet` or `Vec`;
//! - never depend on threads, addresses or other scheduling accidents.
//!
//! Events due at the same virtual time are processed in the order they were
//! scheduled, and every queue is bounded.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod link;
pub mod rng;
pub mod scheduler;

pub use clock::SimTime;
pub use link::{ALWAYS, Delivery, LinkError, LinkModel, NEVER, Network, NodeIndex, Probability};
pub use rng::SimRng;
pub use scheduler::{ScheduleError, Scheduler};
