//! The network layer of the node: the PeerManager actor, one task per peer session, and the
//! persistence of the address book and bans. Policy lives in `spacetime::p2p`.

pub mod events;
mod manager;
pub mod metrics;
mod peer;
pub mod store;

pub use events::{Outgoing, PeerEvent, PeerNotification};
pub use manager::{
    ChainTip, GetPeers, IsBanned, Network, NetworkConfig, NetworkError, PeerManagerActor,
    PeerSummary, Shutdown, SubscribePeers, start,
};
pub use peer::{MIN_PERIODIC_INTERVAL, Timeouts};
