//! The checks a node applies to a peer's `Hello`.

use crate::Hash;
use crate::hash::{hash, tags};

use super::message::{DisconnectReason, Hello, MIN_PROTOCOL_VERSION};

/// The node id of a Noise static public key: `H(node-id, key)`.
pub fn node_id(noise_static_public_key: &[u8]) -> Hash {
    hash(tags::NODE_ID, noise_static_public_key)
}

/// What the local node knows when it judges a `Hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalHello {
    /// Our network id.
    pub network_id: Hash,
    /// Our node id.
    pub node_id: Hash,
}

/// Accepts or refuses a peer's `Hello`. `proven_node_id` is the node id of the static key the
/// Noise handshake authenticated; the `Hello` must claim exactly that id.
pub fn check_hello(
    local: &LocalHello,
    hello: &Hello,
    proven_node_id: &Hash,
) -> Result<(), DisconnectReason> {
    if hello.network_id != local.network_id {
        return Err(DisconnectReason::WrongNetwork);
    }
    if hello.protocol_version < MIN_PROTOCOL_VERSION {
        return Err(DisconnectReason::IncompatibleVersion);
    }
    if hello.node_id != *proven_node_id {
        return Err(DisconnectReason::ProtocolViolation);
    }
    if hello.node_id == local.node_id {
        return Err(DisconnectReason::SelfConnection);
    }
    Ok(())
}

/// The protocol version two peers speak: the lower of the two.
pub fn negotiated_version(ours: u32, theirs: u32) -> u32 {
    ours.min(theirs)
}
