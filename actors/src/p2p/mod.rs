//! The network layer of the node: the PeerManager actor, one task per peer session, and the
//! persistence of the address book and bans. Policy lives in `spacetime::p2p`.

mod manager;
pub mod metrics;
mod peer;
pub mod store;

pub use manager::{
    ChainTip, GetPeers, IsBanned, Network, NetworkConfig, NetworkError, PeerManagerActor,
    PeerSummary, Shutdown, start,
};
pub use peer::{MIN_PERIODIC_INTERVAL, Outgoing, Timeouts};
