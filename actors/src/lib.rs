//! The Spacetime node: actors, transport, configuration, metrics, and the `spacetime` binary.
//!
//! The protocol rules live in the `spacetime` crate; this crate wires them to the outside world.
//! Today it holds the command-line interface; the actors arrive with the node.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod net;
