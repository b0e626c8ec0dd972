//! The network layer of the node: the PeerManager actor, one task per peer session, and the
//! persistence of the address book and bans. Policy lives in `spacetime::p2p`.

pub mod bandwidth;
pub mod events;
mod manager;
pub mod metrics;
mod peer;
pub mod store;

pub use bandwidth::{Bandwidth, BandwidthLimits};
pub use events::{Outgoing, PeerChainMessage, PeerEvent, PeerNotification, PeerRequest, Routes};
pub use manager::{
    ChainTip, DisconnectPeer, GetPeers, IsBanned, IsNodeBanned, Network, NetworkConfig,
    NetworkError, PeerManagerActor, PeerSummary, PenalizePeer, SendToPeer, Shutdown,
    SubscribePeers, UpdateTip, start,
};
pub use peer::{MIN_PERIODIC_INTERVAL, Timeouts};
