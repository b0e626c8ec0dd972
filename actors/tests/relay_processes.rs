//! Relay between ten real `spacetime node` processes over loopback TCP, in a sparse topology
//! (a ring with two chords, at most four peers each; see `RELAY_EDGES`): two of them mine,
//! transfers submitted at a non-mining node, by a protocol client in the test process, reach
//! the miners and are included in blocks, and once the miners stop (SIGTERM, then restarted
//! without mining) all ten end on one tip: the same main chain, holding every transfer.

#![cfg(unix)]

#[path = "common/sync_chain.rs"]
mod sync_chain;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use spacetime::{Hash, Transfer};
use sync_chain::{
    PeerClient, RELAY_MAX_PEERS, RELAY_MINERS, RELAY_NODES, RELAY_SUBMIT, RelayNet, export_chain,
    transfers_at, wait_until,
};

/// Premined senders; each sends `PER_WAVE` transfers (consecutive nonces) per wave.
const SENDERS: usize = 6;
const PER_WAVE: u64 = 10;
/// Mining lasts at least this long, and until every pool is empty or `MINING_MAX`.
const MINING_MIN: Duration = Duration::from_secs(60);
const MINING_MAX: Duration = Duration::from_secs(75);
/// Between the two waves of transfers.
const WAVE_GAP: Duration = Duration::from_secs(6);

#[test]
fn ten_processes_relay_blocks_and_transfers_to_one_tip() {
    let begun = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut net = RelayNet::start(dir.path(), SENDERS).unwrap_or_else(|e| panic!("{e}"));
    let mining_from = Instant::now();
    let started = begun.elapsed();
    let counts = net
        .wait_connected(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    net.check_peer_bound().unwrap_or_else(|e| panic!("{e}"));
    let connected = begun.elapsed();

    // Blocks reach the submitting node, which does not mine.
    let submit = net.node(RELAY_SUBMIT);
    submit
        .wait_height(
            2,
            Duration::from_millis(50),
            Duration::from_secs(20),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("no blocks reached node {RELAY_SUBMIT}: {e}"));
    let addr = submit.listen.expect("the submitting node listens");
    let chain_id = net.genesis.chain_id;
    let wave = |w: u64| -> Vec<Transfer> {
        (w * PER_WAVE..(w + 1) * PER_WAVE)
            .flat_map(|nonce| transfers_at(&net.senders, chain_id, nonce))
            .collect()
    };
    let mut sent: Vec<Transfer> = Vec::new();
    for w in 0..2u64 {
        if w > 0 {
            std::thread::sleep(WAVE_GAP);
        }
        let transfers = wave(w);
        let mut client = PeerClient::connect(addr, &net.genesis)
            .unwrap_or_else(|e| panic!("client: {e}\n{}", submit.relay_diagnostics()));
        assert_eq!(client.hello.network_id, net.genesis.network_id);
        client
            .send_transfers(&transfers)
            .unwrap_or_else(|e| panic!("wave {w}: {e}\n{}", submit.relay_diagnostics()));
        sent.extend(transfers);
        let want = sent.len() as f64;
        let admitted = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            let _ = client.pump(Duration::from_millis(20));
            submit
                .metric("spacetime_mempool_admitted_total")
                .is_some_and(|n| n >= want)
        });
        assert!(
            admitted,
            "node {RELAY_SUBMIT} admitted fewer than {want} transfers\n{}",
            submit.relay_diagnostics()
        );
        // With the client connected the bound still holds.
        net.check_peer_bound().unwrap_or_else(|e| panic!("{e}"));
        client.close();
    }
    let submitted = begun.elapsed();

    // Mining goes on until the pools are empty (everything mined) or the time is up.
    let drained = wait_until(MINING_MAX, Duration::from_millis(200), || {
        mining_from.elapsed() >= MINING_MIN
            && net
                .running()
                .all(|(_, n)| n.metric("spacetime_mempool_transfers") == Some(0.0))
    });
    let pools: Vec<(usize, Option<f64>)> = net
        .running()
        .map(|(i, n)| (i, n.metric("spacetime_mempool_transfers")))
        .collect();
    let admitted: Vec<(usize, Option<f64>)> = net
        .running()
        .map(|(i, n)| (i, n.metric("spacetime_mempool_admitted_total")))
        .collect();
    let won: Vec<(usize, Option<f64>)> = RELAY_MINERS
        .iter()
        .map(|&m| (m, net.node(m).metric("spacetime_blocks_won_total")))
        .collect();
    let final_counts = net.check_peer_bound().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        drained,
        "transfers still pending after {:.0} s of mining: pools {pools:?}\n{}",
        mining_from.elapsed().as_secs_f64(),
        net.node(RELAY_MINERS[0]).relay_diagnostics()
    );
    let mined_for = mining_from.elapsed();

    // The miners stop; restarted without mining, they and everyone else agree on one tip.
    net.stop_miners().unwrap_or_else(|e| panic!("{e}"));
    net.restart_miners_without_mining()
        .unwrap_or_else(|e| panic!("{e}"));
    let height = net
        .wait_converged(Duration::from_secs(30), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("{e}"));
    let converged = begun.elapsed();
    net.stop_all().unwrap_or_else(|e| panic!("{e}"));

    // Every node holds the same main chain, and every transfer is in it.
    let chains: Vec<Vec<spacetime::Block>> = (0..RELAY_NODES)
        .map(|i| export_chain(&net.net, &net.data_dir(i)))
        .collect();
    let hashes = |c: &[spacetime::Block]| c.iter().map(|b| b.hash()).collect::<Vec<Hash>>();
    let reference = hashes(&chains[0]);
    assert_eq!(
        reference.len() as u64,
        height,
        "node 0 exported {} blocks, reported height {height}",
        reference.len()
    );
    for (i, c) in chains.iter().enumerate() {
        let h = hashes(c);
        if h != reference {
            let first = h.iter().zip(&reference).position(|(a, b)| a != b);
            panic!(
                "node {i} holds another chain than node 0: {} blocks against {}, first \
                 difference at height {:?}",
                h.len(),
                reference.len(),
                first.map(|p| p + 1)
            );
        }
    }
    let want: BTreeSet<Hash> = sent.iter().map(Transfer::id).collect();
    for (i, c) in chains.iter().enumerate() {
        let have: BTreeSet<Hash> = c
            .iter()
            .flat_map(|b| b.transfers.iter().map(Transfer::id))
            .collect();
        let missing = want.difference(&have).count();
        assert_eq!(
            missing,
            0,
            "node {i}'s chain lacks {missing} of the {} transfers",
            want.len()
        );
    }
    let with_transfers: Vec<u64> = chains[0]
        .iter()
        .filter(|b| !b.transfers.is_empty())
        .map(|b| b.header.height)
        .collect();
    let miners_of_them: BTreeSet<String> = chains[0]
        .iter()
        .filter(|b| !b.transfers.is_empty())
        .map(|b| b.header.miner.to_string())
        .collect();
    let wall = begun.elapsed();
    eprintln!(
        "{RELAY_NODES} nodes up at {:.1} s, connected at {:.1} s (peers {counts:?}, at the end \
         {final_counts:?}, at most {RELAY_MAX_PEERS}); {} transfers submitted at node \
         {RELAY_SUBMIT} by {:.1} s; mined {:.1} s (blocks won {won:?}); pools {pools:?}, \
         admitted {admitted:?}; converged on height {height} at {:.1} s; transfers in blocks \
         {with_transfers:?} of {} miner(s); wall {:.1} s",
        started.as_secs_f64(),
        connected.as_secs_f64(),
        sent.len(),
        submitted.as_secs_f64(),
        mined_for.as_secs_f64(),
        converged.as_secs_f64(),
        miners_of_them.len(),
        wall.as_secs_f64()
    );
}
