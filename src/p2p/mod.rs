//! Peer policy as plain state machines: the address book, bans (by node id or address), rate
//! limits, misbehaviour scores, the connection manager, one open session's rules (keepalive,
//! idle timeout, rate limiting, decoding) and the node-wide bandwidth throttle.
//!
//! The node's Peer and PeerManager actors own these and feed them the clock; nothing here does
//! I/O or reads time itself.

pub mod addr_book;
pub mod bans;
pub mod manager;
pub mod rate_limit;
pub mod score;
pub mod session;
pub mod throttle;

pub use addr_book::{AddrBook, AddrBookSnapshot, AddrInfo, NetGroup, Random};
pub use bans::{
    BAN_STEPS_MS, Ban, BanHistory, BanKind, BanList, Bans, CHURN_NODE_BANS, Expiring, NodeBans,
    STRIKE_MEMORY_MS, Strikes,
};
pub use manager::{
    Action, Direction, InboundRefusal, PeerId, PeerManager, PeerManagerConfig, PeerState, Sanction,
};
pub use rate_limit::{PeerRateLimiter, RateLimit, TokenBucket};
pub use score::{BAN_THRESHOLD, Misbehavior, PeerScore, Verdict};
pub use session::{
    MIN_PERIODIC_INTERVAL_MS, PeerSession, SessionAction, SessionConfig, SessionEnd,
};
pub use throttle::{ByteThrottle, MIN_BURST_BYTES};
