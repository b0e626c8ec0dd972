//! Blocks, headers and coinbases: canonical decoding, and the stateless checks a node runs on a
//! decoded block (transaction root, size, compact form) never panic and agree with each other.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use spacetime::limits::MAX_BLOCK_BYTES;
use spacetime::wire::CompactBlock;
use spacetime::{Block, BlockHeader, Coinbase, Transfer, encode};
use spacetime_fuzz::decode_canonical;

fuzz_target!(|data: &[u8]| {
    if let Some(header) = decode_canonical::<BlockHeader>(data) {
        let _ = header.hash();
        assert_eq!(header.signing_bytes(), encode(&header.unsigned));
    }
    if let Some(coinbase) = decode_canonical::<Coinbase>(data) {
        let _ = coinbase.total_output();
        let _ = coinbase.id();
    }
    let Some(block) = decode_canonical::<Block>(data) else {
        return;
    };
    assert!(data.len() <= MAX_BLOCK_BYTES);
    assert!(
        block.check_size().is_ok(),
        "a decoded block is within the size limit"
    );
    let root = block.compute_tx_root();
    assert_eq!(block.check_tx_root().is_ok(), root == block.header.tx_root);
    assert_eq!(block.tx_ids().count(), block.transfers.len() + 1);
    assert_eq!(block.hash(), block.header.hash());
    // The compact form rebuilds the block from the transfers it names, and names what is missing.
    let compact = CompactBlock::of(&block);
    let pool: HashMap<_, Transfer> = block
        .transfers
        .iter()
        .map(|t| (t.id(), t.clone()))
        .collect();
    let rebuilt = compact.rebuild(|id| pool.get(id).cloned());
    assert_eq!(rebuilt.as_ref(), Ok(&block));
    if !block.transfers.is_empty() {
        let missing = compact.rebuild(|_| None).err().unwrap_or_default();
        assert_eq!(missing.len(), block.transfers.len());
    }
});
