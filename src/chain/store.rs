//! The chain's redb schema: tables, stored records, and the schema version.
//!
//! | table | key | value |
//! |---|---|---|
//! | [`META`] | name | schema version (u32 LE), network id, tip hash |
//! | [`BLOCKS`] | block hash | [`BlockRecord`]: header, cumulative work, beacon, status |
//! | [`BODIES`] | block hash | [`BlockBody`]: coinbase and transfers |
//! | [`MAIN_CHAIN`] | height | hash of the main-chain block at that height |
//! | [`TX_INDEX`] | transaction id | block hash (32 bytes) and position (u32 LE) |
//! | [`SUPPLY`] | height | coins in existence after the main-chain block at that height |
//! | state tree tables | see [`crate::state_tree::RedbStore`] | accounts, nodes, undo logs |
//!
//! Records of status [`BlockStatus::HeaderOnly`] are headers verified ahead of their bodies
//! (headers-first sync): they have no row in [`BODIES`] until the body arrives.
//!
//! The state tree's per-block undo logs are the chain's undo records: with the block bodies
//! (which name every transaction and output) they are all a reorg needs to revert a block.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::block::BlockHeader;
use crate::encoding::{BoundedVec, Canonical};
use crate::hash::Hash;
use crate::limits::{MAX_BLOCK_BYTES, MAX_HEADER_BYTES, MAX_TRANSFERS_PER_BLOCK};
use crate::target::Work;
use crate::tx::{Coinbase, Transfer};
use crate::{Block, TimestampMs};

/// The schema version this software writes (2: adds [`BlockStatus::HeaderOnly`]).
pub const SCHEMA_VERSION: u32 = 2;
/// The oldest schema version this software opens; older databases are upgraded in place (a
/// version-1 database differs only in never holding header-only records).
pub const MIN_SCHEMA_VERSION: u32 = 1;

/// Named metadata rows.
pub const META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("chain_meta");
/// Block records by hash: every block that passed the header rules, on any branch.
pub const BLOCKS: TableDefinition<'static, [u8; 32], &'static [u8]> =
    TableDefinition::new("chain_blocks");
/// Block bodies by hash.
pub const BODIES: TableDefinition<'static, [u8; 32], &'static [u8]> =
    TableDefinition::new("chain_bodies");
/// The main chain: height to block hash.
pub const MAIN_CHAIN: TableDefinition<'static, u64, [u8; 32]> = TableDefinition::new("chain_main");
/// Where each main-chain transaction is: id to block hash and position (0 is the coinbase).
pub const TX_INDEX: TableDefinition<'static, [u8; 32], [u8; 36]> =
    TableDefinition::new("chain_tx_index");
/// Coins in existence after each main-chain block.
pub const SUPPLY: TableDefinition<'static, u64, u64> = TableDefinition::new("chain_supply");

/// Metadata key of the schema version.
pub const META_SCHEMA: &str = "schema_version";
/// Metadata key of the network id.
pub const META_NETWORK: &str = "network_id";
/// Metadata key of the tip hash.
pub const META_TIP: &str = "tip";

/// Where a stored block stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockStatus {
    /// Header rules and stateless body rules passed; the state rules are checked when the block
    /// joins the main chain.
    Stored,
    /// The block passed every rule when it joined the main chain (it may have left it since).
    Valid,
    /// The block or an ancestor broke a rule; its body is dropped.
    Invalid,
    /// Only the header is stored: it passed every header rule (links, epoch and timestamp,
    /// target, challenge, proof, score, signature) and its body has not been downloaded yet.
    HeaderOnly,
}

/// What the chain stores about a block besides its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// The header.
    pub header: BlockHeader,
    /// Cumulative work of the chain ending with this block.
    pub work: Work,
    /// The block's beacon (see [`super::rules::beacon`]).
    pub beacon: Hash,
    /// Timestamp of block 1 of this block's branch: the difficulty anchor (0 for genesis).
    pub anchor_ms: TimestampMs,
    /// Validation status.
    pub status: BlockStatus,
}

impl Canonical for BlockRecord {
    const NAME: &'static str = "block record";
    const MAX_ENCODED_LEN: usize = MAX_HEADER_BYTES + 32 + 32 + 10 + 1;
}

/// A block without its header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockBody {
    /// The coinbase.
    pub coinbase: Coinbase,
    /// The transfers.
    pub transfers: BoundedVec<Transfer, MAX_TRANSFERS_PER_BLOCK>,
}

impl Canonical for BlockBody {
    const NAME: &'static str = "block body";
    const MAX_ENCODED_LEN: usize = MAX_BLOCK_BYTES;
}

impl BlockBody {
    /// Splits a block into header and body.
    pub fn split(block: Block) -> (BlockHeader, BlockBody) {
        (
            block.header,
            BlockBody {
                coinbase: block.coinbase,
                transfers: block.transfers,
            },
        )
    }

    /// Joins a header and its body.
    pub fn join(self, header: BlockHeader) -> Block {
        Block {
            header,
            coinbase: self.coinbase,
            transfers: self.transfers,
        }
    }
}

/// Encodes a transaction location: block hash then position (u32 little-endian).
pub fn tx_location(block: &Hash, position: u32) -> [u8; 36] {
    let mut out = [0u8; 36];
    out[..32].copy_from_slice(&block.0);
    out[32..].copy_from_slice(&position.to_le_bytes());
    out
}

/// Decodes [`tx_location`].
pub fn parse_tx_location(bytes: &[u8; 36]) -> (Hash, u32) {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes[..32]);
    let mut pos = [0u8; 4];
    pos.copy_from_slice(&bytes[32..]);
    (Hash(hash), u32::from_le_bytes(pos))
}
