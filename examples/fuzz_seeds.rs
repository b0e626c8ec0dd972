//! Writes the seed corpora of the fuzz targets (`fuzz/seeds/<target>/`) from valid values, so
//! the fuzzers start from real encodings: `cargo run --example fuzz_seeds -- fuzz/seeds`.
//!
//! The session seeds open with a Hello the session target accepts: its network and node ids
//! are the target's fixed identities (`fuzz/src/lib.rs`).

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use spacetime::block::{Block, UnsignedHeader, tx_root};
use spacetime::keyfile::{encode_key_file, encode_node_key_file};
use spacetime::merkle::MerkleTree;
use spacetime::plot::{PlotHeader, PlotLayout, PlotShape};
use spacetime::state_tree::MemoryStore;
use spacetime::wire::{
    BlockAccepted, BlockAnnounce, CompactBlock, Disconnect, DisconnectReason, GetBlock, GetBlocks,
    GetHeaders, Headers, Hello, Message, NewChallenge, NotFound, PROTOCOL_VERSION, PeerAddr,
    PeerList, Ping, ProofSubmission, SendBlocks, TxIds, TxPoolRequest, Txs, encode_frame,
};
use spacetime::{
    Account, Amount, BoundedBytes, BoundedString, BoundedVec, ChainId, Coinbase, CoinbaseOutput,
    Hash, Keypair, NodeRng, ProofOfSpace, SigningDomain, StateTree, Target, Transfer,
    UnsignedTransfer, encode,
};

/// The session target's identities (`fuzz/src/lib.rs`).
const NETWORK_ID: Hash = Hash([0x11; 32]);
const REMOTE_NODE_ID: Hash = Hash([0x33; 32]);

/// Signature randomness fixed, so the seeds are the same on every run.
fn rng(nonce: u64) -> NodeRng {
    NodeRng::from_u64(0x5eed ^ nonce)
}

fn transfer(key: &Keypair, nonce: u64) -> Transfer {
    let unsigned = UnsignedTransfer {
        from: key.public(),
        to: Keypair::from_seed(&[9; 32]).public(),
        amount: Amount(1_000 + nonce),
        fee: Amount(10),
        nonce,
        chain_id: ChainId(42),
    };
    let signature = key.sign_with(SigningDomain::Tx, &encode(&unsigned), &mut rng(nonce));
    Transfer {
        unsigned,
        signature,
    }
}

fn block(miner: &Keypair, transfers: Vec<Transfer>) -> Block {
    let coinbase = Coinbase {
        height: 7,
        outputs: BoundedVec::try_from_vec(vec![CoinbaseOutput {
            to: miner.public(),
            amount: Amount(50_000),
        }])
        .expect("one output"),
        miner: miner.public(),
        extra_data: BoundedBytes::try_from_slice(b"seed").expect("short"),
    };
    let header = UnsignedHeader {
        version: spacetime::block::HEADER_VERSION,
        height: 7,
        parent: Hash([3; 32]),
        timestamp_ms: 1_700_000_000_000,
        epoch: 12,
        target: Target([0x0f; 32]),
        challenge: Hash([4; 32]),
        proof: ProofOfSpace {
            plot_seed: Hash([5; 32]),
            group: 77,
        },
        score: Hash([1; 32]),
        miner: miner.public(),
        tx_root: tx_root(&coinbase, &transfers),
        state_root: Hash([6; 32]),
    }
    .sign_with(miner, &mut rng(u64::MAX))
    .expect("the miner signs");
    Block {
        header,
        coinbase,
        transfers: BoundedVec::try_from_vec(transfers).expect("few transfers"),
    }
}

fn hello() -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        network_id: NETWORK_ID,
        node_id: REMOTE_NODE_ID,
        best_height: 7,
        best_hash: Hash([8; 32]),
        cumulative_work: [0; 32],
        listen_port: 9444,
        user_agent: BoundedString::truncating("spacetime/0.1.0"),
        capabilities: 7,
        time_ms: 1_700_000_000_000,
    }
}

/// Two hashes, in a vector of any bound.
fn two_hashes<const N: usize>() -> BoundedVec<Hash, N> {
    BoundedVec::try_from_vec(vec![Hash([1; 32]), Hash([2; 32])]).expect("two")
}

fn messages(miner: &Keypair, sender: &Keypair) -> Vec<Message> {
    let b = block(miner, vec![transfer(sender, 0), transfer(sender, 1)]);
    let proof = ProofOfSpace {
        plot_seed: Hash([5; 32]),
        group: 3,
    };
    vec![
        Message::Hello(hello()),
        Message::PeerList(PeerList {
            peers: BoundedVec::try_from_vec(vec![
                PeerAddr {
                    ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
                    port: 9444,
                    capabilities: 1,
                    last_seen_ms: 1_700_000_000_000,
                },
                PeerAddr {
                    ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
                    port: 1,
                    capabilities: 0,
                    last_seen_ms: 0,
                },
            ])
            .expect("two"),
        }),
        Message::RequestPeers,
        Message::GetHeaders(GetHeaders {
            locator: two_hashes(),
            stop: Hash::ZERO,
            max: 2000,
        }),
        Message::Headers(Headers {
            headers: BoundedVec::try_from_vec(vec![b.header.clone()]).expect("one"),
        }),
        Message::GetBlock(GetBlock { hash: b.hash() }),
        Message::Block(Box::new(b.clone())),
        Message::Ping(Ping { nonce: 99 }),
        Message::Pong(Ping { nonce: 99 }),
        Message::NewChallenge(NewChallenge {
            parent: Hash([1; 32]),
            height: 8,
            epoch: 13,
            challenge: Hash([2; 32]),
            target: Target::MAX,
        }),
        Message::ProofSubmission(ProofSubmission {
            challenge: Hash([2; 32]),
            proof,
            miner: miner.public(),
            score: Hash([3; 32]),
            signature: miner.sign_with(SigningDomain::Proof, b"seed", &mut rng(1 << 40)),
        }),
        Message::BlockProposal(Box::new(b.clone())),
        Message::BlockAccepted(BlockAccepted {
            hash: b.hash(),
            height: 7,
        }),
        Message::Tx(Box::new(transfer(sender, 2))),
        Message::TxPoolRequest(TxPoolRequest { max: 500 }),
        Message::Disconnect(Disconnect {
            reason: DisconnectReason::Shutdown,
            detail: BoundedString::truncating("bye"),
        }),
        Message::GetBlocks(GetBlocks {
            hashes: two_hashes(),
        }),
        Message::NotFound(NotFound {
            hashes: two_hashes(),
        }),
        Message::BlockAnnounce(BlockAnnounce {
            hash: b.hash(),
            height: 7,
            work: [1; 32],
        }),
        Message::TxInv(TxIds { ids: two_hashes() }),
        Message::GetTxs(TxIds { ids: two_hashes() }),
        Message::Txs(Txs {
            transfers: BoundedVec::try_from_vec(vec![transfer(sender, 3)]).expect("one"),
        }),
        Message::SendBlocks(SendBlocks { push: true }),
        Message::CompactBlock(Box::new(CompactBlock::of(&b))),
    ]
}

/// Writes `bytes` as `dir/<target>/<name>`.
fn put(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> io::Result<()> {
    let d = dir.join(target);
    fs::create_dir_all(&d)?;
    fs::write(d.join(name), bytes)
}

/// A session input: config bytes, then each frame fed in pieces of at most 255 bytes, with
/// timer ticks and node commands between them.
fn session_input(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![10, 120];
    for frame in frames {
        for piece in frame.chunks(255) {
            out.push(0);
            out.push(piece.len() as u8);
            out.extend_from_slice(piece);
        }
        // Timer due, a node command.
        out.extend_from_slice(&[5, 6]);
    }
    // Time passes by about a minute, then the node disconnects.
    out.extend_from_slice(&[4, 0x10, 0x0e, 7, 18]);
    out
}

fn main() -> io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/seeds".to_owned());
    let dir = Path::new(&dir);
    let miner = Keypair::from_seed(&[1; 32]);
    let sender = Keypair::from_seed(&[2; 32]);
    let all = messages(&miner, &sender);

    for m in &all {
        let name = m.kind().name();
        put(dir, "message", name, &encode(m))?;
    }
    let hello_bytes = encode(&Message::Hello(hello()));
    put(dir, "hello", "hello", &hello_bytes[1..])?;

    // Frames: one stream of every message, and a short one; cut as the first bytes say.
    let stream: Vec<u8> = all.iter().flat_map(encode_frame).collect();
    let mut framed = vec![3, 1, 7, 200];
    framed.extend_from_slice(&stream);
    put(dir, "frame", "all", &framed)?;
    let mut short = vec![0];
    short.extend(encode_frame(&Message::Ping(Ping { nonce: 1 })));
    short.extend(encode_frame(&Message::RequestPeers));
    put(dir, "frame", "short", &short)?;

    let b = block(&miner, vec![transfer(&sender, 0), transfer(&sender, 1)]);
    put(dir, "block", "block", &encode(&b))?;
    put(
        dir,
        "block",
        "empty_block",
        &encode(&block(&miner, Vec::new())),
    )?;
    put(dir, "block", "header", &encode(&b.header))?;
    put(dir, "block", "coinbase", &encode(&b.coinbase))?;
    put(dir, "transfer", "transfer", &encode(&transfer(&sender, 5)))?;

    // Proofs: a Merkle proof (mode 0), an honest tree (mode 128), a proof of space (mode 255).
    let leaves: Vec<Vec<u8>> = (0u8..5).map(|i| vec![i; 8]).collect();
    let tree = MerkleTree::from_leaves(&leaves);
    let merkle = tree.proof(3).expect("in range");
    let mut mode0 = vec![0];
    mode0.extend_from_slice(tree.root().as_bytes());
    mode0.extend_from_slice(spacetime::merkle::leaf_hash(&leaves[3]).as_bytes());
    mode0.extend(encode(&merkle));
    put(dir, "proof", "merkle", &mode0)?;
    put(
        dir,
        "proof",
        "honest_merkle",
        &[128, 5, 3, b'l', b'e', b'a', b'f'],
    )?;
    let mut space = vec![255, 0x12, 0x30];
    for fill in [1u8, 2, 5, 3] {
        space.extend_from_slice(&[fill; 32]);
    }
    space.extend_from_slice(&4u64.to_le_bytes());
    put(dir, "proof", "space", &space)?;

    // A plot header of a small plot, fresh and with a written segment.
    let layout = PlotLayout {
        shape: PlotShape {
            group_leaves_log2: 3,
            chain_window: 4,
            buckets: 3,
        },
        groups: 12,
        chunk_groups: 2,
    };
    let mut header = PlotHeader::new(miner.public(), Hash([5; 32]), layout).expect("valid");
    let mut bytes = vec![0];
    bytes.extend(header.encode());
    put(dir, "plot_header", "fresh", &bytes)?;
    header.segments[1] = Hash([9; 32]);
    header.complete = true;
    let mut bytes = vec![1];
    bytes.extend(header.encode());
    put(dir, "plot_header", "written", &bytes)?;

    let mut key = vec![0];
    key.extend_from_slice(&encode_key_file(&miner));
    put(dir, "key_file", "sr25519", &key)?;
    let mut node_key = vec![0];
    node_key.extend_from_slice(&encode_node_key_file(&[7; 32]));
    put(dir, "key_file", "node", &node_key)?;

    // State proofs of a small tree: a present account and an absent one.
    let mut state = StateTree::new(MemoryStore::new());
    let accounts: Vec<_> = (1u8..=6)
        .map(|i| {
            (
                Keypair::from_seed(&[i; 32]).public(),
                Account {
                    balance: Amount(u64::from(i) * 100),
                    nonce: u64::from(i),
                    immature: BoundedVec::new(),
                },
            )
        })
        .collect();
    let root = state
        .apply(0, accounts.clone())
        .map_err(|e| io::Error::other(e.to_string()))?;
    for (name, address) in [
        ("present", accounts[2].0),
        ("absent", Keypair::from_seed(&[42; 32]).public()),
    ] {
        let proof = state
            .prove(&address)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut bytes = root.as_bytes().to_vec();
        bytes.extend_from_slice(spacetime::state_tree::key_of(&address).as_bytes());
        bytes.extend(encode(&proof));
        put(dir, "state_proof", name, &bytes)?;
    }

    for network in spacetime::genesis::BUILTIN_NETWORKS {
        let text = fs::read_to_string(format!("networks/{network}.toml"))?;
        put(dir, "genesis", network, text.as_bytes())?;
    }

    put(dir, "node_config", "full", NODE_TOML.as_bytes())?;
    put(dir, "node_config", "empty", b"")?;

    // Peer store files: an address book, bans and ban history (the first byte picks the file).
    let mut book = spacetime::p2p::AddrBook::new();
    let mut bans = spacetime::p2p::BanList::default();
    let mut history = spacetime::p2p::BanHistory::default();
    let now = 1_700_000_000_000;
    for i in 1u8..=4 {
        let addr = std::net::SocketAddr::from(([203, 0, 113, i], 9444));
        book.add(addr, 1, now, now);
        bans.ban(addr.ip(), now + u64::from(i) * 60_000);
        history.record(addr.ip(), now);
    }
    book.connected(
        &std::net::SocketAddr::from(([203, 0, 113, 1], 9444)),
        1,
        now,
    );
    for (i, (name, bytes)) in [
        ("addr_book", encode(&book.snapshot())),
        ("bans", encode(&bans)),
        ("ban_history", encode(&history)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut seed = vec![i as u8];
        seed.extend(bytes);
        put(dir, "peer_store", name, &seed)?;
    }

    let mut frames = vec![encode_frame(&Message::Hello(hello()))];
    frames.extend(all.iter().skip(1).map(encode_frame));
    put(dir, "session", "every_message", &session_input(&frames))?;
    let ping = encode_frame(&Message::Ping(Ping { nonce: 5 }));
    put(
        dir,
        "session",
        "pings",
        &session_input(&[frames[0].clone(), ping.clone(), ping]),
    )?;
    Ok(())
}

/// Every section of the node configuration (`docs/node.md`).
const NODE_TOML: &str = r#"[network]
listen = "0.0.0.0:9444"
seeds = ["203.0.113.7:9444"]
outbound = 8
max_download_bytes_per_sec = 4194304
max_upload_bytes_per_sec = 1048576
trusted = ["10.0.0.5"]
trust_loopback = false

[telemetry]
metrics_addr = "127.0.0.1:9898"
log_format = "json"
status_interval_s = 10

[mining]
enabled = true
key_file = "miner.key"
extra_data = "my-pool"
payees = [{ address = "0101010101010101010101010101010101010101010101010101010101010101", weight = 1 }]

[plots]
dirs = ["/mnt/plots"]
direct_io = false
refresh_ms = 60000
[plots.scan]
strategy = "adaptive"
timeout_ms = 4000

[mempool]
max_bytes = 67108864
min_fee = 1
replace_bump_percent = 10
expiry_ms = 21600000
max_per_sender = 64

[sync]
max_pending_headers = 20000

[relay]
blocks = "push"
compact_blocks = true
high_bandwidth_peers = 1
transactions = "push"
queue_per_peer = 20000
peer_upload_bytes_per_sec = 0
upload_bytes_per_sec = 0
tx_batch_ms = 100
"#;
