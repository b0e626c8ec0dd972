//! The peer-to-peer messages and the size limit of each.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::block::ProofOfSpace;
use crate::encoding::{BoundedString, BoundedVec, Canonical};
use crate::limits::{
    MAX_BLOCK_BYTES, MAX_COINBASE_BYTES, MAX_HEADER_BYTES, MAX_TRANSFER_BYTES,
    MAX_TRANSFERS_PER_BLOCK,
};
use crate::{
    Block, BlockHeader, Coinbase, Epoch, Hash, Height, PublicKey, Signature, Target, Transfer,
};

/// The protocol version this software speaks (3 added the relay messages `BlockAnnounce`,
/// `TxInv`, `GetTxs`, `Txs` and `SendBlocks`; 4 adds `CompactBlock`).
pub const PROTOCOL_VERSION: u32 = 4;
/// The oldest protocol version it still accepts: an older node would take the relay messages
/// it lacks for protocol violations.
pub const MIN_PROTOCOL_VERSION: u32 = 4;
/// Most headers in one `Headers` message.
pub const MAX_HEADERS_PER_MESSAGE: usize = 2000;
/// Most addresses in one `PeerList` message.
pub const MAX_PEERS_PER_MESSAGE: usize = 1000;
/// Most hashes in a block locator.
pub const MAX_LOCATOR_HASHES: usize = 64;
/// Most block hashes in one `GetBlocks` or `NotFound`, so one request stays a bounded batch.
pub const MAX_BLOCKS_PER_REQUEST: usize = 128;
/// Most transaction ids in one `TxInv` or `GetTxs`.
pub const MAX_TX_IDS_PER_MESSAGE: usize = 1000;
/// Most transfers in one `Txs`.
pub const MAX_TXS_PER_MESSAGE: usize = 500;
/// Longest user agent string, in bytes.
pub const MAX_USER_AGENT_BYTES: usize = 256;
/// Longest human-readable disconnect detail, in bytes.
pub const MAX_DISCONNECT_DETAIL_BYTES: usize = 256;

/// Capability bits announced in `Hello`.
pub mod capabilities {
    /// Serves full blocks and headers (a full node).
    pub const FULL_NODE: u64 = 1;
    /// Accepts proof submissions from remote miners.
    pub const MINER_GATEWAY: u64 = 1 << 1;
    /// Relays transactions.
    pub const TX_RELAY: u64 = 1 << 2;
}

/// The first message on every session, sent by both sides as soon as the Noise handshake ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's protocol version.
    pub protocol_version: u32,
    /// The genesis hash of the sender's network.
    pub network_id: Hash,
    /// `H(node-id, Noise static public key)`; must match the key the handshake proved.
    pub node_id: Hash,
    /// Height of the sender's best chain.
    pub best_height: Height,
    /// Hash of its tip.
    pub best_hash: Hash,
    /// Cumulative work of its best chain, a 256-bit big-endian integer.
    pub cumulative_work: [u8; 32],
    /// The port it accepts connections on (0: not listening).
    pub listen_port: u16,
    /// Software name and version, for logs.
    pub user_agent: BoundedString<MAX_USER_AGENT_BYTES>,
    /// Capability bits ([`capabilities`]).
    pub capabilities: u64,
    /// The sender's clock, ms since the Unix epoch.
    pub time_ms: u64,
}

/// A peer address as gossiped between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerAddr {
    /// IPv4 or IPv6 address.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
    /// Capability bits the peer announced.
    pub capabilities: u64,
    /// When the sender last heard from it, ms since the Unix epoch.
    pub last_seen_ms: u64,
}

/// Known addresses, answering `RequestPeers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerList {
    /// The addresses.
    pub peers: BoundedVec<PeerAddr, MAX_PEERS_PER_MESSAGE>,
}

/// Asks for headers following the first locator hash the receiver knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetHeaders {
    /// Hashes from the sender's tip backwards, densely then exponentially spaced.
    pub locator: BoundedVec<Hash, MAX_LOCATOR_HASHES>,
    /// Stop after this hash (zero: no stop).
    pub stop: Hash,
    /// At most this many headers (capped at [`MAX_HEADERS_PER_MESSAGE`]).
    pub max: u16,
}

/// Consecutive headers, answering `GetHeaders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headers {
    /// Headers in chain order.
    pub headers: BoundedVec<BlockHeader, MAX_HEADERS_PER_MESSAGE>,
}

/// Asks for a full block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetBlock {
    /// The block's hash.
    pub hash: Hash,
}

/// Asks for full blocks by hash, for bulk download during sync.
///
/// The peer answers with one `Block` per block it has, in request order, then one `NotFound`
/// listing the hashes it does not have, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetBlocks {
    /// The blocks wanted, in the order they should be sent.
    pub hashes: BoundedVec<Hash, MAX_BLOCKS_PER_REQUEST>,
}

/// The hashes of a `GetBlocks` the peer does not have, sent after the blocks it does have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotFound {
    /// The missing blocks, in request order.
    pub hashes: BoundedVec<Hash, MAX_BLOCKS_PER_REQUEST>,
}

/// Keepalive probe and answer; the nonce pairs them and measures latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Echoed in the `Pong`.
    pub nonce: u64,
}

/// A node tells its remote miners the challenge of an epoch on its tip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChallenge {
    /// The tip the challenge builds on.
    pub parent: Hash,
    /// Height of the block to be won.
    pub height: Height,
    /// The epoch.
    pub epoch: Epoch,
    /// `H(challenge, beacon(parent) || epoch)`.
    pub challenge: Hash,
    /// The target a proof's score must be under.
    pub target: Target,
}

/// A remote miner submits a winning proof to its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofSubmission {
    /// The challenge answered.
    pub challenge: Hash,
    /// The proof.
    pub proof: ProofOfSpace,
    /// The plot owner.
    pub miner: PublicKey,
    /// The proof's score.
    pub score: Hash,
    /// The miner's signature over the fields above, in the `Proof` domain.
    pub signature: Signature,
}

/// A node announces that it validated and accepted a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAccepted {
    /// The block's hash.
    pub hash: Hash,
    /// Its height.
    pub height: Height,
}

/// Asks for pending transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxPoolRequest {
    /// At most this many.
    pub max: u32,
}

/// A node tells a peer of a block on its best chain: the block it just relayed or its new tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAnnounce {
    /// The block's hash.
    pub hash: Hash,
    /// Its height.
    pub height: Height,
    /// Cumulative work of the chain ending at it, a 256-bit big-endian integer.
    pub work: [u8; 32],
}

/// Transaction ids: announced (`TxInv`) or asked for (`GetTxs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxIds {
    /// The ids.
    pub ids: BoundedVec<Hash, MAX_TX_IDS_PER_MESSAGE>,
}

/// Transfers, pushed in a batch or answering `GetTxs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txs {
    /// The transfers.
    pub transfers: BoundedVec<Transfer, MAX_TXS_PER_MESSAGE>,
}

/// Asks a peer to push new blocks whole (`push`) or only announce them (BIP152's high- and
/// low-bandwidth modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendBlocks {
    /// Push whole blocks rather than announcing them.
    pub push: bool,
}

/// A new block without its transfers' bodies: the header, the coinbase and the ids of the
/// transfers in block order. The receiver rebuilds the block from the transfers it already
/// holds (relay keeps the mempool's in step), so a push costs 32 bytes per transfer instead of
/// the transfer (BIP152's compact blocks, with full ids: no short-id collisions to handle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    /// The block's header.
    pub header: BlockHeader,
    /// Its coinbase.
    pub coinbase: Coinbase,
    /// [`Transfer::id`] of each transfer, in block order.
    pub transfer_ids: BoundedVec<Hash, MAX_TRANSFERS_PER_BLOCK>,
}

impl CompactBlock {
    /// The compact form of `block`.
    pub fn of(block: &Block) -> Self {
        let ids: Vec<Hash> = block.transfers.iter().map(Transfer::id).collect();
        Self {
            header: block.header.clone(),
            coinbase: block.coinbase.clone(),
            // A block holds at most as many transfers as the id list admits.
            transfer_ids: BoundedVec::try_from_vec(ids).unwrap_or_default(),
        }
    }

    /// The block, when `lookup` knows every transfer; otherwise the ids it lacks.
    pub fn rebuild(
        &self,
        mut lookup: impl FnMut(&Hash) -> Option<Transfer>,
    ) -> Result<Block, Vec<Hash>> {
        let mut transfers = Vec::with_capacity(self.transfer_ids.len());
        let mut missing = Vec::new();
        for id in self.transfer_ids.iter() {
            match lookup(id) {
                Some(t) => transfers.push(t),
                None => missing.push(*id),
            }
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        // As many transfers as ids, which the bound admits.
        let transfers = BoundedVec::try_from_vec(transfers).map_err(|_| Vec::new())?;
        Ok(Block {
            header: self.header.clone(),
            coinbase: self.coinbase.clone(),
            transfers,
        })
    }
}

/// Why a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisconnectReason {
    /// The peer is on another network (genesis hash).
    WrongNetwork,
    /// No common protocol version.
    IncompatibleVersion,
    /// The peer is this node.
    SelfConnection,
    /// Already connected to this node id.
    DuplicateConnection,
    /// The peer is banned.
    Banned,
    /// No free connection slot.
    TooManyPeers,
    /// The peer broke the protocol (bad frame, bad message, wrong order).
    ProtocolViolation,
    /// The peer sent more than its rate limits allow.
    RateLimited,
    /// The peer stopped answering.
    Timeout,
    /// The node is shutting down.
    Shutdown,
}

/// The last message of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    /// Why.
    pub reason: DisconnectReason,
    /// Details for the peer's logs.
    pub detail: BoundedString<MAX_DISCONNECT_DETAIL_BYTES>,
}

/// Every message of the protocol. The variant index is the message type on the wire; never
/// reorder or remove variants, only append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Handshake (type 0).
    Hello(Hello),
    /// Known addresses (1).
    PeerList(PeerList),
    /// Asks for addresses (2).
    RequestPeers,
    /// Asks for headers (3).
    GetHeaders(GetHeaders),
    /// Headers (4).
    Headers(Headers),
    /// Asks for a block (5).
    GetBlock(GetBlock),
    /// A block, answering `GetBlock` or `GetBlocks` (6).
    Block(Box<Block>),
    /// Keepalive probe (7).
    Ping(Ping),
    /// Keepalive answer (8).
    Pong(Ping),
    /// A challenge for remote miners (9).
    NewChallenge(NewChallenge),
    /// A winning proof from a remote miner (10).
    ProofSubmission(ProofSubmission),
    /// A newly mined block, relayed (11).
    BlockProposal(Box<Block>),
    /// A block was accepted (12).
    BlockAccepted(BlockAccepted),
    /// A transaction, relayed (13).
    Tx(Box<Transfer>),
    /// Asks for pending transactions (14).
    TxPoolRequest(TxPoolRequest),
    /// The session ends (15).
    Disconnect(Disconnect),
    /// Asks for up to 128 blocks by hash (16).
    GetBlocks(GetBlocks),
    /// The requested blocks the peer does not have, answering `GetBlocks` (17).
    NotFound(NotFound),
    /// A block on the sender's best chain, by hash, height and work (18).
    BlockAnnounce(BlockAnnounce),
    /// Ids of transactions the sender's mempool admitted (19).
    TxInv(TxIds),
    /// Asks for transactions by id (20).
    GetTxs(TxIds),
    /// Transfers, pushed or answering `GetTxs` (21).
    Txs(Txs),
    /// Asks the peer to push or announce new blocks (22).
    SendBlocks(SendBlocks),
    /// A newly mined block in compact form, relayed (23).
    CompactBlock(Box<CompactBlock>),
}

/// The type of a message: its first byte on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MessageKind {
    /// `Hello`.
    Hello = 0,
    /// `PeerList`.
    PeerList = 1,
    /// `RequestPeers`.
    RequestPeers = 2,
    /// `GetHeaders`.
    GetHeaders = 3,
    /// `Headers`.
    Headers = 4,
    /// `GetBlock`.
    GetBlock = 5,
    /// `Block`.
    Block = 6,
    /// `Ping`.
    Ping = 7,
    /// `Pong`.
    Pong = 8,
    /// `NewChallenge`.
    NewChallenge = 9,
    /// `ProofSubmission`.
    ProofSubmission = 10,
    /// `BlockProposal`.
    BlockProposal = 11,
    /// `BlockAccepted`.
    BlockAccepted = 12,
    /// `Tx`.
    Tx = 13,
    /// `TxPoolRequest`.
    TxPoolRequest = 14,
    /// `Disconnect`.
    Disconnect = 15,
    /// `GetBlocks`.
    GetBlocks = 16,
    /// `NotFound`.
    NotFound = 17,
    /// `BlockAnnounce`.
    BlockAnnounce = 18,
    /// `TxInv`.
    TxInv = 19,
    /// `GetTxs`.
    GetTxs = 20,
    /// `Txs`.
    Txs = 21,
    /// `SendBlocks`.
    SendBlocks = 22,
    /// `CompactBlock`.
    CompactBlock = 23,
}

/// Largest encoded peer address: IPv6 tag and bytes, port, two varints.
const PEER_ADDR_MAX: usize = 1 + 16 + 3 + 10 + 10;
/// Largest encoded `Hello` payload (tag included).
const HELLO_MAX: usize = 1 + 5 + 32 + 32 + 10 + 32 + 32 + 3 + (2 + MAX_USER_AGENT_BYTES) + 10 + 10;

impl MessageKind {
    /// Every kind, in tag order.
    pub const ALL: [Self; 24] = [
        Self::Hello,
        Self::PeerList,
        Self::RequestPeers,
        Self::GetHeaders,
        Self::Headers,
        Self::GetBlock,
        Self::Block,
        Self::Ping,
        Self::Pong,
        Self::NewChallenge,
        Self::ProofSubmission,
        Self::BlockProposal,
        Self::BlockAccepted,
        Self::Tx,
        Self::TxPoolRequest,
        Self::Disconnect,
        Self::GetBlocks,
        Self::NotFound,
        Self::BlockAnnounce,
        Self::TxInv,
        Self::GetTxs,
        Self::Txs,
        Self::SendBlocks,
        Self::CompactBlock,
    ];

    /// The kind with wire tag `tag`, if any.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.get(usize::from(tag)).copied()
    }

    /// The wire tag.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// A stable lowercase name, for logs and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::PeerList => "peer_list",
            Self::RequestPeers => "request_peers",
            Self::GetHeaders => "get_headers",
            Self::Headers => "headers",
            Self::GetBlock => "get_block",
            Self::Block => "block",
            Self::Ping => "ping",
            Self::Pong => "pong",
            Self::NewChallenge => "new_challenge",
            Self::ProofSubmission => "proof_submission",
            Self::BlockProposal => "block_proposal",
            Self::BlockAccepted => "block_accepted",
            Self::Tx => "tx",
            Self::TxPoolRequest => "tx_pool_request",
            Self::Disconnect => "disconnect",
            Self::GetBlocks => "get_blocks",
            Self::NotFound => "not_found",
            Self::BlockAnnounce => "block_announce",
            Self::TxInv => "tx_inv",
            Self::GetTxs => "get_txs",
            Self::Txs => "txs",
            Self::SendBlocks => "send_blocks",
            Self::CompactBlock => "compact_block",
        }
    }

    /// The largest valid payload of this kind (tag included), checked before allocating.
    pub const fn max_len(self) -> usize {
        match self {
            Self::Hello => HELLO_MAX,
            Self::PeerList => 1 + 2 + MAX_PEERS_PER_MESSAGE * PEER_ADDR_MAX,
            Self::RequestPeers => 1,
            Self::GetHeaders => 1 + 1 + MAX_LOCATOR_HASHES * 32 + 32 + 3,
            Self::Headers => 1 + 2 + MAX_HEADERS_PER_MESSAGE * MAX_HEADER_BYTES,
            Self::GetBlock => 1 + 32,
            Self::Block | Self::BlockProposal => 1 + MAX_BLOCK_BYTES,
            Self::Ping | Self::Pong => 1 + 10,
            Self::NewChallenge => 1 + 32 + 10 + 10 + 32 + 32,
            Self::ProofSubmission => 1 + 32 + (32 + 10) + 32 + 32 + 64,
            Self::BlockAccepted => 1 + 32 + 10,
            Self::Tx => 1 + MAX_TRANSFER_BYTES,
            Self::TxPoolRequest => 1 + 5,
            Self::Disconnect => 1 + 1 + 2 + MAX_DISCONNECT_DETAIL_BYTES,
            // Tag, a 2-byte count (128 needs two varint bytes), the hashes.
            Self::GetBlocks | Self::NotFound => 1 + 2 + MAX_BLOCKS_PER_REQUEST * 32,
            Self::BlockAnnounce => 1 + 32 + 10 + 32,
            // Tag, a 2-byte count (1000 needs two varint bytes), the ids.
            Self::TxInv | Self::GetTxs => 1 + 2 + MAX_TX_IDS_PER_MESSAGE * 32,
            Self::Txs => 1 + 2 + MAX_TXS_PER_MESSAGE * MAX_TRANSFER_BYTES,
            Self::SendBlocks => 1 + 1,
            // Tag, header, coinbase, a 2-byte count (12,000 needs two varint bytes), the ids.
            Self::CompactBlock => {
                1 + MAX_HEADER_BYTES + MAX_COINBASE_BYTES + 2 + MAX_TRANSFERS_PER_BLOCK * 32
            }
        }
    }
}

impl Message {
    /// This message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Hello(_) => MessageKind::Hello,
            Self::PeerList(_) => MessageKind::PeerList,
            Self::RequestPeers => MessageKind::RequestPeers,
            Self::GetHeaders(_) => MessageKind::GetHeaders,
            Self::Headers(_) => MessageKind::Headers,
            Self::GetBlock(_) => MessageKind::GetBlock,
            Self::Block(_) => MessageKind::Block,
            Self::Ping(_) => MessageKind::Ping,
            Self::Pong(_) => MessageKind::Pong,
            Self::NewChallenge(_) => MessageKind::NewChallenge,
            Self::ProofSubmission(_) => MessageKind::ProofSubmission,
            Self::BlockProposal(_) => MessageKind::BlockProposal,
            Self::BlockAccepted(_) => MessageKind::BlockAccepted,
            Self::Tx(_) => MessageKind::Tx,
            Self::TxPoolRequest(_) => MessageKind::TxPoolRequest,
            Self::Disconnect(_) => MessageKind::Disconnect,
            Self::GetBlocks(_) => MessageKind::GetBlocks,
            Self::NotFound(_) => MessageKind::NotFound,
            Self::BlockAnnounce(_) => MessageKind::BlockAnnounce,
            Self::TxInv(_) => MessageKind::TxInv,
            Self::GetTxs(_) => MessageKind::GetTxs,
            Self::Txs(_) => MessageKind::Txs,
            Self::SendBlocks(_) => MessageKind::SendBlocks,
            Self::CompactBlock(_) => MessageKind::CompactBlock,
        }
    }
}

impl Canonical for Message {
    const NAME: &'static str = "message";
    const MAX_ENCODED_LEN: usize = 1 + MAX_BLOCK_BYTES;
}

impl ProofSubmission {
    /// The bytes the miner signs: every field but the signature.
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::encode(&(&self.challenge, &self.proof, &self.miner, &self.score))
    }
}
