//! Real nodes on the simulator's network, in virtual time: mining and handshakes over slow
//! links, peer discovery, ping latency, a partition healed by the real reconnect code, and a
//! hundred nodes finding each other.

use std::time::{Duration, Instant};

use spacetime_actors::p2p::PeerEvent;
use spacetime_actors::p2p::metrics as p2p;
use spacetime_sim::{LinkParams, NodeSpec, Observed, Sim, Topology};

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn three_miners_on_a_line_of_50ms_links_mine_discover_each_other_and_measure_latency() {
    let wall = Instant::now();
    let mut sim = Sim::new(7).expect("simulator");
    sim.net()
        .set_default_params(LinkParams::with_latency(Duration::from_millis(50)));
    sim.add_nodes(3, &NodeSpec::miner());
    // 0 - 1 - 2: the ends only know the middle at start.
    sim.connect(Topology::Line).expect("line");
    sim.start_all().expect("nodes start");
    sim.run_for(Duration::from_secs(600));
    for i in 0..3 {
        let tip = sim.tip(i).expect("tip");
        // The dev network aims at a block per 2 s: 300 in 10 minutes, give or take.
        assert!(
            (150..=600).contains(&tip.height),
            "node {i} at height {}",
            tip.height
        );
        let peers = sim.connected_peers(i).expect("peers");
        assert_eq!(peers.len(), 2, "node {i}: {peers:?}");
        for p in &peers {
            // 50 ms each way; the ping's own processing takes no virtual time.
            let rtt = p.latency_ms.expect("a ping was answered");
            assert!(
                (100..=110).contains(&rtt),
                "node {i} measured {rtt} ms to {}",
                p.addr
            );
        }
        let m = sim.metrics(i).expect("metrics");
        assert_eq!(m.counter(p2p::HANDSHAKE_FAILURES), 0, "node {i}");
        let latency = m.histogram(p2p::LATENCY);
        assert!(latency.count >= 20, "node {i}: {} pings", latency.count);
        assert!(
            (0.100..=0.110).contains(&latency.mean()),
            "{}",
            latency.mean()
        );
        assert!(m.counter(spacetime_actors::miner::BLOCKS_WON) >= 150);
    }
    // The ends found each other by peer exchange: one dialled the other.
    let ends_met = sim
        .connected_peers(0)
        .expect("peers")
        .iter()
        .any(|p| p.addr.ip() == sim.ip(2));
    assert!(ends_met, "node 0 never met node 2");
    println!(
        "3 miners, 600 virtual s: {:.2} wall s ({:.0}x)",
        wall.elapsed().as_secs_f64(),
        600.0 / wall.elapsed().as_secs_f64()
    );
}

/// When node `node` last connected to or lost `peer_ip` per the trace, with the reason.
fn sessions_with(sim: &Sim, node: usize) -> Vec<(u64, bool, String)> {
    sim.trace()
        .entries()
        .into_iter()
        .filter(|e| e.node == node)
        .filter_map(|e| match e.what {
            Observed::Peer(PeerEvent::Connected { .. }) => Some((e.at_ms, true, String::new())),
            Observed::Peer(PeerEvent::Disconnected { reason, .. }) => {
                Some((e.at_ms, false, reason))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_partition_times_sessions_out_and_the_backoff_reconnects_them_after_it_heals() {
    let mut sim = Sim::new(11).expect("simulator");
    sim.net()
        .set_default_params(LinkParams::with_latency(Duration::from_millis(20)));
    sim.add_nodes(2, &NodeSpec::full());
    sim.connect_edges(&[(0, 1)]).expect("edge");
    sim.start_all().expect("nodes start");
    assert!(sim.run_until(10 * SECOND, SECOND / 10, |s| {
        s.connected_peers(0).is_ok_and(|p| p.len() == 1)
    }));
    let (a, b) = (sim.ip(0), sim.ip(1));
    let cut_ms = sim.elapsed().as_millis() as u64;
    sim.net().partition(a, b);
    // Nothing is reset: both sides only find out by their idle timeout (120 s, checked at
    // each 30 s ping tick).
    sim.run_for(100 * SECOND);
    assert_eq!(sim.connected_peers(0).expect("peers").len(), 1);
    assert_eq!(sim.connected_peers(1).expect("peers").len(), 1);
    sim.run_for(100 * SECOND);
    for node in 0..2 {
        assert!(
            sim.connected_peers(node).expect("peers").is_empty(),
            "node {node}"
        );
        let lost = sessions_with(&sim, node)
            .into_iter()
            .find(|(_, up, _)| !up)
            .expect("the session ended");
        let after = lost.0 - cut_ms;
        assert!(
            (120_000..=160_000).contains(&after),
            "node {node} lost its peer {after} ms after the cut"
        );
        assert!(lost.2.contains("Timeout"), "{}", lost.2);
        println!(
            "node {node} lost its peer {after} ms after the cut: {}",
            lost.2
        );
        let m = sim.metrics(node).expect("metrics");
        assert!(
            m.labelled
                .iter()
                .any(|(k, v)| k.starts_with(p2p::MISBEHAVIOUR) && k.contains("timeout") && *v >= 1),
            "{:?}",
            m.labelled
        );
    }
    // Node 0 keeps redialling node 1 with growing pauses; its dials vanish into the cut.
    sim.run_for(300 * SECOND);
    assert!(sim.connected_peers(0).expect("peers").is_empty());
    let heal_ms = sim.elapsed().as_millis() as u64;
    sim.net().heal(a, b);
    assert!(
        sim.run_until(700 * SECOND, SECOND, |s| {
            s.connected_peers(0).is_ok_and(|p| p.len() == 1)
        }),
        "the nodes never reconnected"
    );
    let back = sessions_with(&sim, 0)
        .into_iter()
        .rev()
        .find(|(_, up, _)| *up)
        .expect("reconnected");
    let waited = back.0 - heal_ms;
    // Not at once: the next dial waits for the address's backoff, at most 10 minutes (+25 %).
    assert!(
        waited > 0 && waited <= 750_000,
        "reconnected {waited} ms after the heal"
    );
    println!("reconnected {waited} ms after the heal");
    assert_eq!(sim.connected_peers(1).expect("peers").len(), 1);
}

#[test]
fn a_hundred_nodes_on_a_random_8_regular_graph_handshake_and_exchange_peers() {
    let wall = Instant::now();
    let n = 100;
    let mut sim = Sim::new(5).expect("simulator");
    sim.net().set_default_params(
        LinkParams::with_latency(Duration::from_millis(30)).jitter(Duration::from_millis(20)),
    );
    sim.add_nodes(n, &NodeSpec::full());
    sim.connect(Topology::RandomRegular(8)).expect("graph");
    sim.start_all().expect("nodes start");
    sim.run_for(Duration::from_secs(90));
    // Lower indices dial higher ones along the graph's edges: the last node dials nobody at
    // start, so every one of its outbound sessions was found through peer exchange.
    assert!(sim.seeds(n - 1).is_empty());
    for i in 0..n {
        let peers = sim.connected_peers(i).expect("peers");
        // Each node keeps 8 outbound sessions and accepts others' dials.
        assert!(peers.len() >= 8, "node {i} has {} peers", peers.len());
        let outbound = peers
            .iter()
            .filter(|p| p.direction == spacetime::p2p::Direction::Outbound)
            .count();
        assert_eq!(outbound, 8, "node {i}");
        let m = sim.metrics(i).expect("metrics");
        assert_eq!(m.counter(p2p::HANDSHAKE_FAILURES), 0, "node {i}");
        assert!(
            m.labelled
                .get(&format!("{}{{type=peer_list}}", p2p::MESSAGES_RECEIVED))
                .is_some_and(|v| *v >= 1),
            "node {i} received no address list"
        );
    }
    // Most nodes were given fewer than 8 addresses: they filled their slots from gossip.
    let short = (0..n).filter(|&i| sim.seeds(i).len() < 8).count();
    assert!(short > n / 2, "{short}");
    println!(
        "100 nodes, 90 virtual s: {:.2} wall s, {} live connections",
        wall.elapsed().as_secs_f64(),
        sim.net().stats().live_connections
    );
}

#[test]
fn a_node_stopped_or_crashed_starts_again_with_its_chain_and_its_identity() {
    let mut sim = Sim::new(3).expect("simulator");
    sim.add_nodes(2, &NodeSpec::miner());
    sim.connect_edges(&[(0, 1)]).expect("edge");
    sim.start_all().expect("nodes start");
    sim.run_for(30 * SECOND);
    let id = sim.node(0).expect("running").node_id();
    let before = sim.tip(0).expect("tip");
    assert!(before.height >= 5, "{}", before.height);
    let won_before = sim
        .metrics(0)
        .expect("metrics")
        .counter(spacetime_actors::miner::BLOCKS_WON);
    assert!(won_before >= 1);

    // A clean stop (every task of the node ends), then a start on the same data.
    let stopping = sim.elapsed();
    sim.stop_node(0).expect("stop");
    let took = sim.elapsed() - stopping;
    assert!(took < 10 * SECOND, "stopping took {took:?}");
    println!("stopping took {took:?} of virtual time");
    assert!(!sim.is_running(0));
    assert!(sim.tip(0).is_err());
    sim.run_for(5 * SECOND);
    sim.start_node(0).expect("restart");
    assert_eq!(
        sim.node(0).expect("running").node_id(),
        id,
        "a new identity"
    );
    let restarted = sim.tip(0).expect("tip");
    // Blocks committed while it stopped are kept too.
    assert!(restarted.height >= before.height, "the chain was not kept");
    let chain = sim.node(0).expect("running").chain.addr.clone();
    let kept = sim
        .block_on(chain.send(spacetime_actors::chain::GetBlockAt(before.height)))
        .expect("chain answers")
        .expect("chain reads")
        .expect("the block is there");
    assert_eq!(kept.hash(), before.hash);
    sim.run_for(20 * SECOND);
    let grown = sim.tip(0).expect("tip");
    assert!(grown.height > before.height, "mining did not go on");
    assert!(
        sim.run_until(60 * SECOND, SECOND, |s| s
            .connected_peers(0)
            .is_ok_and(|p| p.len() == 1)),
        "the restarted node did not reconnect"
    );

    // A crash: every task dropped at once; what was committed is still there.
    sim.crash_node(0).expect("crash");
    sim.start_node(0).expect("start after the crash");
    let after_crash = sim.tip(0).expect("tip");
    assert!(after_crash.height >= grown.height);
    assert_eq!(sim.node(0).expect("running").node_id(), id);
    // Its metrics span both lives (the two miners share one chain, so its height also counts
    // the other's blocks).
    let won = sim
        .metrics(0)
        .expect("metrics")
        .counter(spacetime_actors::miner::BLOCKS_WON);
    assert!(won >= won_before, "{won} < {won_before}");
}
