//! Spacetime protocol core: the rules of the chain as plain functions and types.
//!
//! This crate has no actors, no sockets and no wall clock: time is always an argument. Every
//! rule here is unit-tested beside its code and shared by the node, the simulator and tools.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod amount;
pub mod block;
pub mod bytes;
pub mod chain;
pub mod crypto;
pub mod difficulty;
pub mod emission;
pub mod encoding;
pub mod genesis;
pub mod hash;
pub mod keyfile;
pub mod limits;
pub mod mempool;
pub mod merkle;
pub mod miner;
pub mod p2p;
pub mod plot;
pub mod relay;
pub mod rng;
pub mod state_tree;
pub mod sync;
pub mod target;
pub mod tx;
pub mod u256;
pub mod wire;

pub use account::Account;
pub use amount::Amount;
pub use block::{Block, BlockHeader, ProofOfSpace, UnsignedHeader};
pub use crypto::{Address, Keypair, PublicKey, Signature, SigningDomain};
pub use encoding::{
    BoundedBytes, BoundedString, BoundedVec, Canonical, DecodeError, decode, encode,
};
pub use genesis::{Genesis, GenesisConfig};
pub use hash::Hash;
pub use rng::NodeRng;
pub use state_tree::{StateProof, StateTree};
pub use target::Target;
pub use tx::{ChainId, Coinbase, CoinbaseOutput, Transfer, UnsignedTransfer};

/// Block height: the genesis block is height 0.
pub type Height = u64;
/// Epoch number: `(timestamp_ms - genesis_ms) / epoch_ms`.
pub type Epoch = u64;
/// Milliseconds since the Unix epoch.
pub type TimestampMs = u64;
