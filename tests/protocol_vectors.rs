//! Known-answer vectors for consensus encodings and built-in network ids.
//!
//! These fail when a consensus-visible byte changes. If a change is intended, it is a protocol
//! change: update `docs/protocol.md` and these vectors in the same commit.

use spacetime::block::{HEADER_VERSION, ProofOfSpace, UnsignedHeader};
use spacetime::bytes::to_hex;
use spacetime::tx::{ChainId, CoinbaseOutput, UnsignedTransfer};
use spacetime::{
    Amount, BlockHeader, BoundedBytes, BoundedVec, Coinbase, Genesis, Hash, PublicKey, Signature,
    Target, Transfer, encode,
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

#[test]
fn header_layout() {
    let header = BlockHeader {
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
    };
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
