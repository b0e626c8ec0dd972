//! The Spacetime node: actors, transport, configuration, metrics, and the `spacetime` binary.
//!
//! The protocol rules live in the `spacetime` crate; this crate wires them to the outside world.
//! Today it holds the command-line interface, the Noise transport and the network layer.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chain;
pub mod cli;
pub mod clock;
pub mod config;
pub mod emission;
pub mod lifecycle;
pub mod mempool;
pub mod miner;
pub mod net;
pub mod node;
pub mod p2p;
pub mod plots;
pub mod relay;
pub mod seams;
pub mod spawn;
pub mod sync;
pub mod textfile;
