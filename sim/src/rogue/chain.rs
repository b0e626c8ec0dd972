//! What a rogue serves: its chain with its lie applied, and the answer to each request. Pure:
//! no IO, no clock, so every lie can be checked without a network.

use std::collections::BTreeMap;

use spacetime::target::Work;
use spacetime::wire::{GetHeaders, MAX_HEADERS_PER_MESSAGE};
use spacetime::{Block, BlockHeader, BoundedBytes, Genesis, Hash};

use super::{Lie, RogueSpec};
use crate::blocks::chain_work;

/// Headers [`Lie::NonConnecting`] leaves out after the locator point.
pub const NON_CONNECTING_SKIP: usize = 5;

/// Height [`Lie::OverclaimWork`] adds to its real height in `Hello` unless told otherwise.
pub const OVERCLAIM_HEIGHT: u64 = 1_000_000;

/// A header like `header` whose signature no longer verifies: the header rules fail at their
/// last step ([`InvalidBlock::HeaderSignature`](spacetime::chain::InvalidBlock)) and its hash
/// differs, everything else is the original's.
pub fn invalid_header(header: &BlockHeader) -> BlockHeader {
    let mut out = header.clone();
    // A bit of the nonce commitment: the signature no longer verifies (or no longer parses).
    out.signature.0[0] ^= 0x01;
    out
}

/// A block like `block` whose body no longer matches its header: the coinbase's extra data is
/// changed, so its transaction root differs from the header's.
pub fn bad_body(block: &Block) -> Block {
    let mut out = block.clone();
    let mut extra = out.coinbase.extra_data.to_vec();
    match extra.first_mut() {
        Some(b) => *b ^= 0xff,
        None => extra.push(0xba),
    }
    if let Ok(bytes) = BoundedBytes::try_from_slice(&extra) {
        out.coinbase.extra_data = bytes;
    }
    out
}

/// The chain a rogue serves, with its lie applied, and what its `Hello` claims.
#[derive(Debug, Clone)]
pub struct RogueChain {
    lie: Lie,
    genesis: Hash,
    /// Served headers; index `h - 1` is height `h`.
    headers: Vec<BlockHeader>,
    /// Served blocks by served hash (bodies as stored: [`Lie::BadBodies`] changes them as sent).
    blocks: BTreeMap<Hash, Block>,
    /// Height of each served hash, genesis included.
    heights: BTreeMap<Hash, u64>,
    claimed_height: u64,
    claimed_work: Work,
}

impl RogueChain {
    /// The chain `spec` serves on `genesis`.
    pub fn new(genesis: &Genesis, spec: &RogueSpec) -> Self {
        let mut headers = Vec::with_capacity(spec.chain.len());
        let mut blocks = BTreeMap::new();
        let mut heights = BTreeMap::new();
        heights.insert(genesis.network_id, 0);
        for block in &spec.chain {
            let mut block = block.clone();
            if let Lie::InvalidHeader { at } = spec.lie
                && block.header.height == at
            {
                block.header = invalid_header(&block.header);
            }
            let hash = block.hash();
            heights.insert(hash, block.header.height);
            headers.push(block.header.clone());
            blocks.insert(hash, block);
        }
        let height = spec.chain.last().map_or(0, |b| b.header.height);
        let work = chain_work(&spec.chain);
        let (claimed_height, claimed_work) = match spec.lie {
            Lie::OverclaimWork => (
                height.saturating_add(OVERCLAIM_HEIGHT),
                // 2^192 on top of the real work: more than any simulated chain reaches.
                work.saturating_add(&Work(overclaim_bytes())),
            ),
            _ => (height, work),
        };
        Self {
            lie: spec.lie,
            genesis: genesis.network_id,
            headers,
            blocks,
            heights,
            claimed_height: spec.claimed_height.unwrap_or(claimed_height),
            claimed_work: spec.claimed_work.unwrap_or(claimed_work),
        }
    }

    /// The lie it tells.
    pub fn lie(&self) -> Lie {
        self.lie
    }

    /// Height of its chain (0: genesis only).
    pub fn height(&self) -> u64 {
        self.headers.len() as u64
    }

    /// Hash of its tip as served.
    pub fn tip_hash(&self) -> Hash {
        self.headers.last().map_or(self.genesis, BlockHeader::hash)
    }

    /// The height its `Hello` claims.
    pub fn claimed_height(&self) -> u64 {
        self.claimed_height
    }

    /// The cumulative work its `Hello` claims.
    pub fn claimed_work(&self) -> Work {
        self.claimed_work
    }

    /// The headers it answers `request` with: those after the first locator hash on its chain
    /// (genesis when none is), up to `stop` or `max` (at most [`MAX_HEADERS_PER_MESSAGE`]), as
    /// [`Chain::headers_after`](spacetime::chain::Chain::headers_after) does; a
    /// [`Lie::NonConnecting`] rogue leaves out the first [`NON_CONNECTING_SKIP`].
    pub fn headers(&self, request: &GetHeaders) -> Vec<BlockHeader> {
        let start = request
            .locator
            .iter()
            .find_map(|h| self.heights.get(h).copied())
            .unwrap_or(0);
        let mut first = usize::try_from(start).unwrap_or(usize::MAX);
        if self.lie == Lie::NonConnecting {
            first = first.saturating_add(NON_CONNECTING_SKIP);
        }
        let max = usize::from(request.max).min(MAX_HEADERS_PER_MESSAGE);
        let mut out = Vec::new();
        for header in self.headers.iter().skip(first).take(max) {
            out.push(header.clone());
            if request.stop != Hash::ZERO && header.hash() == request.stop {
                break;
            }
        }
        out
    }

    /// The block it sends for `hash`, if it has it ([`Lie::BadBodies`]: with a changed body).
    pub fn block(&self, hash: &Hash) -> Option<Block> {
        let block = self.blocks.get(hash)?;
        Some(match self.lie {
            Lie::BadBodies => bad_body(block),
            _ => block.clone(),
        })
    }
}

fn overclaim_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[7] = 1;
    bytes
}
