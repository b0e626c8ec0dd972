//! Stopping actors in order: the node's shutdown sends [`Stop`] to each actor that has no
//! shutdown of its own, so that a node in the simulator (where the process lives on) ends
//! completely, as the daemon's does when its process exits.

use actix::Message;

/// Stops the receiving actor once the message is handled.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Stop;
