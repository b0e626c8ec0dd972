//! Relay figures of real nodes in virtual time (`docs/relay.md`):
//!
//! - `blocks`: 100 nodes on a random 8-regular graph of 50 ms +- 10 ms links, three miners, for
//!   each block relay mode (push to all, high-bandwidth with 3 or 1 pushers, compact or whole
//!   blocks; announce to all): propagation to every node as a ratio to its shortest-path bound
//!   (p50, p95, p99; goal p95 <= 1.5), whole block bodies received per block (goal <= 1.5) and
//!   compact blocks received per block;
//! - `txs`: 10,000 transfers submitted at one node of 10 reach all 10 mempools, for each
//!   transfer relay mode: virtual seconds, transfers/s of virtual time and of wall time.
//!
//! `cargo bench -p spacetime-sim --bench relay` runs the full sizes; `-- --smoke` a small one
//! that still checks every figure's own assertions (CI runs it).

use std::time::{Duration, Instant};

use spacetime::genesis::Allocation;
use spacetime::relay::{BlockRelay, RelayConfig, TxRelay};
use spacetime::{
    Amount, Genesis, GenesisConfig, Keypair, NodeRng, PublicKey, Transfer, UnsignedTransfer,
};
use spacetime_actors::mempool::{GetMempoolStats, SubmitTransfers};
use spacetime_sim::scenarios::{RelayFigures, RelayScenario};
use spacetime_sim::{LinkParams, NodeSpec, Sim, Topology};

struct Size {
    block_nodes: usize,
    block_virtual: Duration,
    senders: usize,
    per_sender: u64,
}

const FULL: Size = Size {
    block_nodes: 100,
    block_virtual: Duration::from_secs(60),
    senders: 200,
    per_sender: 50,
};

const SMOKE: Size = Size {
    block_nodes: 12,
    block_virtual: Duration::from_secs(15),
    senders: 20,
    per_sender: 10,
};

/// Transfers per second of the loaded rows.
const LOAD_TPS: u32 = 200;

fn block_modes() -> Vec<(&'static str, RelayConfig, u32)> {
    let mode = |blocks, k, compact_blocks| RelayConfig {
        blocks,
        high_bandwidth_peers: k,
        compact_blocks,
        ..RelayConfig::default()
    };
    vec![
        ("push compact to all", mode(BlockRelay::Push, 0, true), 0),
        ("push whole to all", mode(BlockRelay::Push, 0, false), 0),
        (
            "high-bandwidth k=3 compact",
            mode(BlockRelay::HighBandwidth, 3, true),
            0,
        ),
        (
            "high-bandwidth k=1 compact",
            mode(BlockRelay::HighBandwidth, 1, true),
            0,
        ),
        (
            "high-bandwidth k=1 whole",
            mode(BlockRelay::HighBandwidth, 1, false),
            0,
        ),
        ("announce to all", mode(BlockRelay::Announce, 0, false), 0),
        (
            "push compact, 200 tx/s",
            mode(BlockRelay::Push, 0, true),
            LOAD_TPS,
        ),
        (
            "push whole, 200 tx/s",
            mode(BlockRelay::Push, 0, false),
            LOAD_TPS,
        ),
    ]
}

fn blocks(size: &Size) -> Vec<(&'static str, RelayFigures, Duration)> {
    let mut rows = Vec::new();
    for (name, relay, load_tps) in block_modes() {
        let wall = Instant::now();
        let mut scenario = RelayScenario::new(21, size.block_nodes, size.block_virtual);
        scenario.relay = relay;
        scenario.load_tps = load_tps;
        let (_, f) = scenario.run().expect("scenario runs");
        let wall = wall.elapsed();
        assert!(f.one_tip, "{name}: every node ends on one tip: {f:?}");
        assert_eq!(
            f.missing, 0,
            "{name}: every block reaches every node: {f:?}"
        );
        assert!(f.measured > 0, "{name}: delays measured: {f:?}");
        rows.push((name, f, wall));
    }
    rows
}

struct TxRow {
    name: &'static str,
    transfers: usize,
    virtual_time: Duration,
    wall: Duration,
}

fn txs(size: &Size) -> Vec<TxRow> {
    let keys: Vec<Keypair> = (0..size.senders)
        .map(|i| Keypair::generate_with(&mut NodeRng::from_u64(1_000 + i as u64)))
        .collect();
    let mut config = GenesisConfig::builtin("dev").expect("dev genesis");
    config.network.name = "relay-bench".into();
    config.premine = keys
        .iter()
        .map(|k| Allocation {
            address: k.public(),
            amount: Amount(1_000_000_000),
        })
        .collect();
    let genesis = Genesis::new(config).expect("genesis");
    let to = PublicKey([0xb0; 32]);
    let transfers: Vec<Transfer> = keys
        .iter()
        .flat_map(|k| {
            let genesis = &genesis;
            (0..size.per_sender).map(move |nonce| {
                UnsignedTransfer {
                    from: k.public(),
                    to,
                    amount: Amount(1_000),
                    fee: Amount(10),
                    nonce,
                    chain_id: genesis.chain_id,
                }
                .sign(k)
                .expect("signed")
            })
        })
        .collect();
    let total = transfers.len();
    let mut rows = Vec::new();
    for (name, mode) in [("push", TxRelay::Push), ("announce", TxRelay::Announce)] {
        let mut sim = Sim::with_genesis(22, genesis.clone()).expect("simulator");
        sim.net().set_default_params(
            LinkParams::with_latency(Duration::from_millis(40)).jitter(Duration::from_millis(20)),
        );
        let spec = NodeSpec {
            relay: RelayConfig {
                txs: mode,
                ..RelayConfig::default()
            },
            ..NodeSpec::full()
        };
        sim.add_nodes(10, &spec);
        sim.connect(Topology::RandomRegular(8)).expect("topology");
        sim.start_all().expect("nodes start");
        sim.run_for(Duration::from_secs(3));
        let pool = sim.node(0).expect("node 0").mempool.clone();
        let wall = Instant::now();
        let start = sim.elapsed();
        for chunk in transfers.chunks(500) {
            let answers = sim
                .block_on(pool.send(SubmitTransfers(chunk.to_vec())))
                .expect("mempool answers")
                .expect("accounts read");
            assert!(answers.iter().all(Result::is_ok), "{name}: all admitted");
        }
        let reached = sim.run_until(Duration::from_secs(120), Duration::from_millis(20), |sim| {
            (0..10).all(|i| {
                let Some(pool) = sim.node(i).map(|n| n.mempool.clone()) else {
                    return false;
                };
                sim.block_on(pool.send(GetMempoolStats))
                    .is_ok_and(|s| s.transfers == total)
            })
        });
        if !reached {
            for i in 0..10 {
                let pool = sim.node(i).map(|n| n.mempool.clone()).expect("node");
                let n = sim
                    .block_on(pool.send(GetMempoolStats))
                    .map(|s| s.transfers);
                let m = sim.metrics(i).expect("metrics");
                let tx: Vec<_> = m
                    .labelled
                    .iter()
                    .filter(|(k, v)| {
                        **v > 0
                            && (k.contains("tx") || k.contains("misbeh") || k.contains("dropped"))
                    })
                    .collect();
                eprintln!("node {i}: {n:?} {tx:?}");
            }
        }
        assert!(reached, "{name}: every pool holds all {total} transfers");
        rows.push(TxRow {
            name,
            transfers: total,
            virtual_time: sim.elapsed() - start,
            wall: wall.elapsed(),
        });
    }
    rows
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let size = if smoke { &SMOKE } else { &FULL };
    let only = std::env::args()
        .skip(1)
        .find(|a| a == "blocks" || a == "txs");
    if only.as_deref() != Some("txs") {
        let rows = blocks(size);
        println!(
            "\nblock relay, {} nodes, {} s of mining (ratio = delay / shortest-path bound; goal p95 <= 1.5, bodies <= 1.5)",
            size.block_nodes,
            size.block_virtual.as_secs()
        );
        println!(
            "{:<30} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "mode",
            "height",
            "p50",
            "p95",
            "p99",
            "p50 ms",
            "p95 ms",
            "bound ms",
            "bodies",
            "compact",
            "KB/blk",
            "missed",
            "wall s"
        );
        for (name, f, wall) in &rows {
            println!(
                "{:<30} {:>6} {:>6.2} {:>6.2} {:>6.2} {:>8.0} {:>8.0} {:>8.0} {:>7.2} {:>7.2} {:>7.2} {:>7.3} {:>7.1}",
                name,
                f.height,
                f.ratio.p50,
                f.ratio.p95,
                f.ratio.p99,
                f.millis.p50,
                f.millis.p95,
                f.bound_ms.p95,
                f.bodies_per_block,
                f.compact_per_block,
                f.block_bytes_per_block / 1e3,
                f.compact_missed,
                wall.as_secs_f64()
            );
        }
    }
    if only.as_deref() != Some("blocks") {
        let rows = txs(size);
        println!(
            "\ntransfer relay, 10 nodes: all transfers submitted at node 0 reach all 10 pools"
        );
        println!(
            "{:<10} {:>9} {:>10} {:>14} {:>8} {:>12}",
            "mode", "transfers", "virtual s", "tx/s virtual", "wall s", "tx/s wall"
        );
        for r in &rows {
            let v = r.virtual_time.as_secs_f64();
            let w = r.wall.as_secs_f64();
            println!(
                "{:<10} {:>9} {:>10.2} {:>14.0} {:>8.2} {:>12.0}",
                r.name,
                r.transfers,
                v,
                r.transfers as f64 / v.max(1e-9),
                w,
                r.transfers as f64 / w.max(1e-9)
            );
        }
    }
}
