//! Known-answer vectors for consensus encodings and built-in network ids.
//!
//! These fail when a consensus-visible byte changes. If a change is intended, it is a protocol
//! change: update `docs/protocol.md` and these vectors in the same commit.

use spacetime::block::{HEADER_VERSION, ProofOfSpace, UnsignedHeader};
use spacetime::bytes::to_hex;
use spacetime::tx::{ChainId, CoinbaseOutput, UnsignedTransfer};
use spacetime::wire::{
    BlockAnnounce, CompactBlock, GetBlocks, Hello, Message, NotFound, PROTOCOL_VERSION, SendBlocks,
    TxIds, Txs, capabilities,
};
use spacetime::{
    Amount, BlockHeader, BoundedBytes, BoundedString, BoundedVec, Coinbase, Genesis, Hash,
    PublicKey, Signature, Target, Transfer, decode, encode,
};

#[test]
fn transfer_layout() {
    let tx = Transfer {
        unsigned: UnsignedTransfer {
            from: PublicKey([0x11; 32]),
            to: PublicKey([0x22; 32]),
            amount: Amount(300),
            fee: Amount(1),
            nonce: 0,
            chain_id: ChainId(0x0102_0304_0506_0708),
        },
        signature: Signature([0x33; 64]),
    };
    let expected = format!(
        "{}{}ac0201 00 888e98a8c0e0808101 {}",
        "11".repeat(32),
        "22".repeat(32),
        "33".repeat(64)
    )
    .replace(' ', "");
    assert_eq!(to_hex(&encode(&tx)), expected);
}

#[test]
fn coinbase_layout() {
    let cb = Coinbase {
        height: 1,
        outputs: BoundedVec::try_from_vec(vec![CoinbaseOutput {
            to: PublicKey([0xaa; 32]),
            amount: Amount(128),
        }])
        .expect("one output"),
        miner: PublicKey([0xbb; 32]),
        extra_data: BoundedBytes::try_from_slice(b"hi").expect("short"),
    };
    let expected =
        format!("01 01 {} 8001 {} 02 6869", "aa".repeat(32), "bb".repeat(32)).replace(' ', "");
    assert_eq!(to_hex(&encode(&cb)), expected);
}

fn sample_header() -> BlockHeader {
    BlockHeader {
        unsigned: UnsignedHeader {
            version: HEADER_VERSION,
            height: 2,
            parent: Hash([1; 32]),
            timestamp_ms: 3,
            epoch: 4,
            target: Target([5; 32]),
            challenge: Hash([6; 32]),
            proof: ProofOfSpace {
                plot_seed: Hash([7; 32]),
                group: 8,
            },
            score: Hash([9; 32]),
            miner: PublicKey([10; 32]),
            tx_root: Hash([11; 32]),
            state_root: Hash([12; 32]),
        },
        signature: Signature([13; 64]),
    }
}

#[test]
fn header_layout() {
    let header = sample_header();
    let h = |b: u8, n: usize| format!("{b:02x}").repeat(n);
    let expected = [
        "01".into(),
        "02".into(),
        h(1, 32),
        "03".into(),
        "04".into(),
        h(5, 32),
        h(6, 32),
        h(7, 32),
        "08".into(),
        h(9, 32),
        h(10, 32),
        h(11, 32),
        h(12, 32),
        h(13, 64),
    ]
    .concat();
    assert_eq!(to_hex(&encode(&header)), expected);
}

#[test]
fn hello_layout() {
    let hello = Message::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        network_id: Hash([0x01; 32]),
        node_id: Hash([0x02; 32]),
        best_height: 300,
        best_hash: Hash([0x03; 32]),
        cumulative_work: [0x04; 32],
        listen_port: 9444,
        user_agent: BoundedString::try_from_str("st/2").expect("short"),
        capabilities: capabilities::FULL_NODE | capabilities::TX_RELAY,
        time_ms: 1,
    });
    // Type 0, version 4, ids, height 300, tip, work, port 9444, "st/2", capabilities 5, time 1.
    let expected = format!(
        "00 04 {} {} ac02 {} {} e449 04 73742f32 05 01",
        "01".repeat(32),
        "02".repeat(32),
        "03".repeat(32),
        "04".repeat(32)
    )
    .replace(' ', "");
    assert_eq!(
        PROTOCOL_VERSION, 4,
        "a version bump updates this vector and the docs"
    );
    assert_eq!(to_hex(&encode(&hello)), expected);
}

#[test]
fn get_blocks_layout() {
    let m = Message::GetBlocks(GetBlocks {
        hashes: BoundedVec::try_from_vec(vec![Hash([0xaa; 32]), Hash([0xbb; 32])])
            .expect("two hashes"),
    });
    // Type 16, count 2, the hashes in request order.
    let expected = format!("10 02 {} {}", "aa".repeat(32), "bb".repeat(32)).replace(' ', "");
    let bytes = encode(&m);
    assert_eq!(to_hex(&bytes), expected);
    assert_eq!(decode::<Message>(&bytes), Ok(m));
}

#[test]
fn not_found_layout() {
    let m = Message::NotFound(NotFound {
        hashes: BoundedVec::try_from_vec(vec![Hash([0xcc; 32]), Hash([0xdd; 32])])
            .expect("two hashes"),
    });
    // Type 17, count 2, the missing hashes.
    let expected = format!("11 02 {} {}", "cc".repeat(32), "dd".repeat(32)).replace(' ', "");
    let bytes = encode(&m);
    assert_eq!(to_hex(&bytes), expected);
    assert_eq!(decode::<Message>(&bytes), Ok(m));
}

#[test]
fn relay_message_layouts() {
    let announce = Message::BlockAnnounce(BlockAnnounce {
        hash: Hash([0xaa; 32]),
        height: 300,
        work: [0x01; 32],
    });
    // Type 18, hash, height 300 (varint ac02), work.
    let expected = format!("12 {} ac02 {}", "aa".repeat(32), "01".repeat(32)).replace(' ', "");
    assert_eq!(to_hex(&encode(&announce)), expected);
    let inv = Message::TxInv(TxIds {
        ids: BoundedVec::try_from_vec(vec![Hash([0xbb; 32])]).expect("one id"),
    });
    // Type 19, count 1, the id; `GetTxs` (20) has the same body.
    assert_eq!(to_hex(&encode(&inv)), format!("1301{}", "bb".repeat(32)));
    let get = Message::GetTxs(TxIds {
        ids: BoundedVec::try_from_vec(vec![Hash([0xbb; 32])]).expect("one id"),
    });
    assert_eq!(to_hex(&encode(&get)), format!("1401{}", "bb".repeat(32)));
    // Type 21, count 0; type 22, push true.
    let txs = Message::Txs(Txs {
        transfers: BoundedVec::new(),
    });
    assert_eq!(to_hex(&encode(&txs)), "1500");
    let send = Message::SendBlocks(SendBlocks { push: true });
    assert_eq!(to_hex(&encode(&send)), "1601");
    // Type 23: the header, the coinbase, count 1, the transfer id.
    let coinbase = Coinbase {
        height: 2,
        outputs: BoundedVec::new(),
        miner: PublicKey([0xbb; 32]),
        extra_data: BoundedBytes::new(),
    };
    let compact = Message::CompactBlock(Box::new(CompactBlock {
        header: sample_header(),
        coinbase: coinbase.clone(),
        transfer_ids: BoundedVec::try_from_vec(vec![Hash([0xcc; 32])]).expect("one id"),
    }));
    let expected = format!(
        "17{}{}01{}",
        to_hex(&encode(&sample_header())),
        to_hex(&encode(&coinbase)),
        "cc".repeat(32)
    );
    assert_eq!(to_hex(&encode(&compact)), expected);
    for m in [announce, inv, get, txs, send, compact] {
        assert_eq!(decode::<Message>(&encode(&m)), Ok(m));
    }
}

#[test]
fn builtin_network_ids() {
    let dev = Genesis::builtin("dev").expect("dev");
    let testnet = Genesis::builtin("testnet").expect("testnet");
    assert_eq!(
        dev.network_id.to_string(),
        "3a615cf950b07f0de2105b6f3ba3f8739191c2466cb02443750d919849117767",
        "dev network id changed: a protocol change"
    );
    assert_eq!(
        testnet.network_id.to_string(),
        "6bbc11ac12bbb1ffbe0b53816aebdf40a136d8e1baa047118c8399327160bd1d",
        "testnet network id changed: a protocol change"
    );
}
