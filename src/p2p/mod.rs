//! Peer policy as plain state machines: rate limits and misbehaviour scores.
//!
//! The node's Peer and PeerManager actors own these and feed them the clock; nothing here does
//! I/O or reads time itself.

pub mod rate_limit;
pub mod score;

pub use rate_limit::{PeerRateLimiter, RateLimit, TokenBucket};
pub use score::{BAN_THRESHOLD, Misbehavior, PeerScore, Verdict};
