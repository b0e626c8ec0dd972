//! Relay of real nodes in virtual time: blocks mined anywhere reach every node about once per
//! node, transfers submitted anywhere are mined elsewhere, floods and invalid blocks are cut
//! off, reorged transfers come back, and challenges, proofs and acceptances reach everyone.

use std::time::Duration;

use spacetime::genesis::Allocation;
use spacetime::{
    Amount, Genesis, GenesisConfig, Keypair, NodeRng, PublicKey, Transfer, UnsignedTransfer,
};
use spacetime_actors::chain::GetAccount;
use spacetime_actors::mempool::{GetMempoolStats, SubmitTransfers};
use spacetime_actors::p2p::metrics as p2p_metrics;
use spacetime_sim::propagation::hops;
use spacetime_sim::scenarios::RelayScenario;
use spacetime_sim::{Flood, Lie, NodeSpec, RogueSpec, SessionEndReason, Sim, Topology, mine_chain};

#[test]
fn ten_nodes_three_miners_every_block_reaches_every_node_about_once() {
    let scenario = RelayScenario::new(15, 10, Duration::from_secs(120));
    let (_, f) = scenario.run().expect("run");
    eprintln!("10 nodes: {f:?}");
    assert!(f.one_tip, "{f:?}");
    assert!(f.height >= 30, "{f:?}");
    assert_eq!(f.missing, 0, "{f:?}");
    assert!(f.bodies_per_block <= 1.5, "{f:?}");
}

#[test]
fn hundred_nodes_three_miners_every_block_reaches_every_node() {
    let scenario = RelayScenario::new(16, 100, Duration::from_secs(20));
    let (_, f) = scenario.run().expect("run");
    eprintln!("100 nodes: {f:?}");
    assert!(f.one_tip, "{f:?}");
    assert!(f.height >= 5, "{f:?}");
    assert_eq!(f.missing, 0, "{f:?}");
    assert!(f.mean_degree >= 7.5, "{f:?}");
    // Compact pushes: whole bodies only where a compact block lacked a transfer.
    assert!(f.bodies_per_block <= 1.5, "{f:?}");
    assert!(f.compact_per_block >= 1.0, "{f:?}");
    // The goal, p95 within 1.5 times the shortest-path bound (the bench measures
    // longer runs).
    assert!(f.ratio.p95 <= 1.5, "{f:?}");
}

#[test]
fn under_a_transfer_load_compact_blocks_rebuild_from_the_pools() {
    let mut scenario = RelayScenario::new(23, 10, Duration::from_secs(15));
    scenario.load_tps = 100;
    let (_, f) = scenario.run().expect("run");
    eprintln!("10 nodes, 100 tx/s: {f:?}");
    assert!(f.one_tip, "{f:?}");
    assert_eq!(f.missing, 0, "{f:?}");
    // Blocks carry the load (15 s at 100 tx/s, the last few seconds still pending) ...
    assert!(f.transfers_mined >= 500, "{f:?}");
    // ... and its transfers travel ahead of each block, so the pools rebuild (nearly) all.
    assert!(f.compact_missed <= 0.05, "{f:?}");
    assert!(f.bodies_per_block <= 1.5, "{f:?}");
    assert!(f.ratio.p95 <= 1.5, "{f:?}");
}

/// A premine for `alice` on a dev network of its own.
fn funded(alice: &Keypair) -> Genesis {
    let mut config = GenesisConfig::builtin("dev").expect("dev");
    config.network.name = "relay-test".into();
    config.premine = vec![Allocation {
        address: alice.public(),
        amount: Amount(1_000_000),
    }];
    Genesis::new(config).expect("genesis")
}

fn transfer(
    genesis: &Genesis,
    alice: &Keypair,
    to: PublicKey,
    nonce: u64,
    amount: u64,
) -> Transfer {
    UnsignedTransfer {
        from: alice.public(),
        to,
        amount: Amount(amount),
        fee: Amount(10),
        nonce,
        chain_id: genesis.chain_id,
    }
    .sign(alice)
    .expect("signed")
}

fn balance(sim: &mut Sim, i: usize, who: PublicKey) -> u64 {
    let Some(chain) = sim.node(i).map(|n| n.chain.addr.clone()) else {
        return 0;
    };
    match sim.block_on(chain.send(GetAccount(who))) {
        Ok(Ok(a)) => a.mature.0 + a.immature.0,
        _ => 0,
    }
}

fn pooled(sim: &mut Sim, i: usize) -> usize {
    let Some(pool) = sim.node(i).map(|n| n.mempool.clone()) else {
        return 0;
    };
    sim.block_on(pool.send(GetMempoolStats))
        .map(|s| s.transfers)
        .unwrap_or(0)
}

#[test]
fn a_transfer_submitted_three_hops_from_the_only_miner_is_mined() {
    let alice = Keypair::generate_with(&mut NodeRng::from_u64(1));
    let bob = PublicKey([0xb0; 32]);
    let genesis = funded(&alice);
    let mut sim = Sim::with_genesis(17, genesis.clone()).expect("sim");
    sim.add_nodes(3, &NodeSpec::full());
    sim.add_node(NodeSpec::miner());
    sim.connect(Topology::Line).expect("line");
    sim.start_all().expect("start");
    sim.run_for(Duration::from_secs(3));
    let pool = sim.node(0).expect("node 0").mempool.clone();
    let admitted = sim.block_on(pool.send(SubmitTransfers(vec![
        transfer(&genesis, &alice, bob, 0, 1_000),
        transfer(&genesis, &alice, bob, 1, 2_000),
    ])));
    let all = matches!(&admitted, Ok(Ok(each)) if each.iter().all(Result::is_ok));
    assert!(all, "{admitted:?}");
    let mined = sim.run_until(Duration::from_secs(20), Duration::from_millis(100), |sim| {
        (0..4).all(|i| balance(sim, i, bob) == 3_000)
    });
    assert!(mined, "the transfers are mined and reach every node");
    // The network really is a line: the miner is three hops from the submitter.
    let graph = sim.connection_graph().expect("graph");
    assert_eq!(hops(&graph, 0)[3], Some(3), "{graph:?}");
    for i in 0..4 {
        assert_eq!(
            pooled(&mut sim, i),
            0,
            "node {i}'s pool is empty once mined"
        );
    }
}

/// Four honest nodes in a ring (the first mining) and a rogue that floods from its `Hello`
/// on; node 1 dials it, the others may learn its address from their peers and dial it too.
fn flooded(seed: u64, what: Flood, every: Duration) -> (Sim, usize) {
    let alice = Keypair::generate_with(&mut NodeRng::from_u64(2));
    let g = funded(&alice);
    let rogue_chain = mine_chain(&g, 2, 99).expect("rogue chain");
    let mut sim = Sim::with_genesis(seed, g).expect("sim");
    sim.add_node(NodeSpec::miner());
    sim.add_nodes(3, &NodeSpec::full());
    let rogue = sim.add_rogue(RogueSpec::new(Lie::Flood { what, every }, rogue_chain));
    sim.connect_edges(&[(0, 1), (1, 2), (2, 3), (3, 0), (1, rogue)])
        .expect("edges");
    sim.start_all().expect("start");
    (sim, rogue)
}

/// Misbehaviour of `kind` counted by the honest nodes.
fn misbehaved(sim: &mut Sim, kind: &str) -> u64 {
    misbehaved_at(sim, 0..4, kind)
}

/// Misbehaviour of `kind` counted by `nodes`.
fn misbehaved_at(sim: &mut Sim, nodes: std::ops::Range<usize>, kind: &str) -> u64 {
    nodes
        .map(|i| {
            let m = sim.metrics(i).expect("metrics");
            m.labelled
                .get(&format!("{}{{kind={kind}}}", p2p_metrics::MISBEHAVIOUR))
                .copied()
                .unwrap_or(0)
        })
        .sum()
}

/// Every node that met the flooding rogue cut it off, penalising it as `kind`, and never took
/// it back, while the honest nodes kept mining one chain.
fn cut_off(what: Flood, every: Duration, kind: &str) {
    let (mut sim, rogue) = flooded(18, what, every);
    let cut = sim.run_until(Duration::from_secs(30), Duration::from_millis(100), |sim| {
        sim.rogue(rogue)
            .is_ok_and(|v| v.sessions > 0 && v.open == 0 && v.ended.len() as u64 == v.sessions)
    });
    let view = sim.rogue(rogue).expect("rogue");
    assert!(cut, "{what:?}: the flooding peer is cut off: {view:?}");
    assert!(
        misbehaved(&mut sim, kind) > 0,
        "{what:?} penalised as {kind}"
    );
    let at = sim.tip(0).expect("tip").height;
    sim.run_for(Duration::from_secs(10));
    // A node that dialed the rogue only now cuts it off too.
    let all_cut = sim.run_until(Duration::from_secs(5), Duration::from_millis(100), |sim| {
        sim.rogue(rogue).is_ok_and(|v| v.open == 0)
    });
    let view = sim.rogue(rogue).expect("rogue");
    assert!(
        all_cut,
        "{what:?}: every session with the rogue ends: {view:?}"
    );
    let mut by_node = std::collections::BTreeMap::new();
    for end in &view.ended {
        *by_node.entry(end.node_id).or_insert(0) += 1;
        assert!(
            !matches!(
                end.reason,
                SessionEndReason::Closed | SessionEndReason::Transport(_)
            ),
            "{what:?}: cut off with a reason: {view:?}"
        );
    }
    assert!(
        by_node.values().all(|n| *n == 1),
        "{what:?}: no node takes the rogue back: {view:?}"
    );
    let tips: Vec<_> = (0..4).map(|i| sim.tip(i).expect("tip")).collect();
    assert!(
        tips[0].height >= at + 5,
        "{what:?}: mining goes on: {tips:?}"
    );
    assert!(
        tips.iter().all(|t| t.height + 1 >= tips[0].height),
        "{what:?}: honest nodes keep up: {tips:?}"
    );
}

#[test]
fn a_peer_repeating_one_block_is_cut_off() {
    cut_off(
        Flood::SameBlock,
        Duration::from_millis(100),
        "repeated_item",
    );
}

#[test]
fn a_peer_relaying_invalid_headers_is_cut_off() {
    cut_off(
        Flood::InvalidHeader,
        Duration::from_millis(500),
        "invalid_block",
    );
}

#[test]
fn a_peer_relaying_a_block_with_a_bad_body_is_cut_off() {
    cut_off(Flood::BadBody, Duration::from_millis(500), "invalid_block");
}

#[test]
fn a_peer_sending_a_compact_block_that_rebuilds_wrong_is_cut_off() {
    cut_off(
        Flood::BadCompact,
        Duration::from_millis(500),
        "invalid_block",
    );
}

#[test]
fn a_peer_announcing_faster_than_its_limit_is_cut_off() {
    cut_off(
        Flood::Announcements,
        Duration::from_millis(1),
        "rate_limited",
    );
}

#[test]
fn a_peer_relaying_badly_signed_transfers_is_cut_off() {
    cut_off(
        Flood::BadTransfers,
        Duration::from_millis(50),
        "invalid_transaction",
    );
}

fn reorgs(sim: &mut Sim, i: usize) -> u64 {
    sim.metrics(i)
        .expect("metrics")
        .counter(spacetime_actors::chain::metrics::REORGS)
}

#[test]
fn a_transfer_reorged_out_returns_to_the_pools_and_is_mined_on_the_winning_chain() {
    let alice = Keypair::generate_with(&mut NodeRng::from_u64(3));
    let bob = PublicKey([0xb1; 32]);
    let genesis = funded(&alice);
    let mut sim = Sim::with_genesis(19, genesis.clone()).expect("sim");
    // Side A: miner 0 and node 1; side B: miner 2 and node 3; a ring across both.
    sim.add_node(NodeSpec::miner());
    sim.add_node(NodeSpec::full());
    sim.add_node(NodeSpec::miner());
    sim.add_node(NodeSpec::full());
    sim.connect_edges(&[(0, 1), (1, 2), (2, 3), (3, 0)])
        .expect("edges");
    sim.start_all().expect("start");
    sim.run_for(Duration::from_secs(3));
    let (a, b) = ([sim.ip(0), sim.ip(1)], [sim.ip(2), sim.ip(3)]);
    sim.net().partition_groups(&[&a, &b]).expect("partition");
    let pool = sim.node(1).expect("node 1").mempool.clone();
    let admitted = sim.block_on(pool.send(SubmitTransfers(vec![transfer(
        &genesis, &alice, bob, 0, 4_000,
    )])));
    assert!(
        matches!(&admitted, Ok(Ok(each)) if each.iter().all(Result::is_ok)),
        "{admitted:?}"
    );
    let mined_on_a = sim.run_until(Duration::from_secs(20), Duration::from_millis(100), |sim| {
        balance(sim, 0, bob) == 4_000 && balance(sim, 1, bob) == 4_000
    });
    assert!(mined_on_a, "side A mines the transfer");
    // Side A stops mining, side B outgrows it without ever seeing the transfer.
    let (miner, _) = sim.node(0).and_then(|n| n.mining.clone()).expect("miner 0");
    sim.block_on(miner.send(spacetime_actors::lifecycle::Stop))
        .expect("miner stops");
    let a_tip = sim.tip(0).expect("tip").height;
    let outgrown = sim.run_until(Duration::from_secs(60), Duration::from_millis(200), |sim| {
        sim.tip(2).is_ok_and(|t| t.height >= a_tip + 5)
    });
    assert!(outgrown, "side B outgrows side A");
    for i in [2, 3] {
        assert_eq!(balance(&mut sim, i, bob), 0, "node {i} never saw it");
        assert_eq!(pooled(&mut sim, i), 0, "node {i} never saw it");
    }
    let reorgs_before = reorgs(&mut sim, 0) + reorgs(&mut sim, 1);
    sim.net().heal_all();
    // Side A reorgs onto B's chain; the transfer goes back to its pools, is relayed across
    // and mined by the only miner left, on B's side.
    let settled = sim.run_until(Duration::from_secs(90), Duration::from_millis(200), |sim| {
        let tips: Vec<_> = (0..4).filter_map(|i| sim.tip(i).ok()).collect();
        tips.len() == 4
            && tips.windows(2).all(|w| w[0].hash == w[1].hash)
            && (0..4).all(|i| balance(sim, i, bob) == 4_000)
    });
    let tips: Vec<_> = (0..4).map(|i| sim.tip(i).expect("tip")).collect();
    assert!(settled, "one tip holding the transfer: {tips:?}");
    assert!(
        reorgs(&mut sim, 0) + reorgs(&mut sim, 1) > reorgs_before,
        "side A reorganised"
    );
    assert!(tips[0].height > a_tip + 5, "{tips:?}");
    for i in 0..4 {
        assert_eq!(
            pooled(&mut sim, i),
            0,
            "node {i}'s pool is empty once mined"
        );
    }
}

/// Collects what a node's Gossip actor relayed.
struct Collector(std::sync::Arc<std::sync::Mutex<Vec<spacetime::wire::Message>>>);

impl actix::Actor for Collector {
    type Context = actix::Context<Self>;
}

impl actix::Handler<spacetime_actors::relay::Relayed> for Collector {
    type Result = ();
    fn handle(&mut self, msg: spacetime_actors::relay::Relayed, _: &mut actix::Context<Self>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(msg.0);
    }
}

#[test]
fn challenges_proofs_and_acceptances_reach_every_node_once() {
    use actix::Actor;
    use spacetime::block::ProofOfSpace;
    use spacetime::wire::{BlockAccepted, Message, NewChallenge, ProofSubmission};
    use spacetime::{Hash, SigningDomain};
    use spacetime_actors::relay::{RelayLocal, SubscribeRelayed};

    let mut sim = Sim::new(20).expect("sim");
    sim.add_nodes(8, &NodeSpec::full());
    sim.connect(Topology::RandomRegular(3)).expect("topology");
    sim.start_all().expect("start");
    sim.run_for(Duration::from_secs(3));
    let mut seen = Vec::new();
    for i in 1..8 {
        let gossip = sim.node(i).expect("node").gossip.clone();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = got.clone();
        sim.block_on(async move {
            let c = Collector(sink).start();
            gossip.do_send(SubscribeRelayed(c.recipient()));
        });
        seen.push(got);
    }
    let key = Keypair::generate_with(&mut NodeRng::from_u64(4));
    let mut items = Vec::new();
    for n in 0..5u8 {
        let challenge = Hash([n; 32]);
        items.push(Message::NewChallenge(NewChallenge {
            parent: Hash([0xa0 + n; 32]),
            height: u64::from(n) + 1,
            epoch: u64::from(n) + 1,
            challenge,
            target: spacetime::Target::MAX,
        }));
        let mut proof = ProofSubmission {
            challenge,
            proof: ProofOfSpace {
                plot_seed: Hash([0xc0 + n; 32]),
                group: u64::from(n),
            },
            miner: key.public(),
            score: Hash([0xd0 + n; 32]),
            signature: spacetime::Signature([0; 64]),
        };
        proof.signature = key.sign(SigningDomain::Proof, &proof.signing_bytes());
        items.push(Message::ProofSubmission(proof));
        items.push(Message::BlockAccepted(BlockAccepted {
            hash: Hash([0xe0 + n; 32]),
            height: u64::from(n) + 1,
        }));
    }
    // A proof with a bad signature is refused and goes nowhere.
    let mut forged = match &items[1] {
        Message::ProofSubmission(p) => p.clone(),
        _ => unreachable!("the second item is a proof"),
    };
    forged.score = Hash([0xff; 32]);
    let gossip = sim.node(0).expect("node 0").gossip.clone();
    for m in items.iter().cloned() {
        assert!(
            sim.block_on(gossip.send(RelayLocal(m)))
                .expect("gossip answers")
        );
    }
    sim.run_until(Duration::from_secs(10), Duration::from_millis(100), |_| {
        seen.iter()
            .all(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len() >= items.len())
    });
    sim.run_for(Duration::from_secs(2));
    for (i, s) in seen.iter().enumerate() {
        let got = s.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            got.len(),
            items.len(),
            "node {}: each item once: {got:?}",
            i + 1
        );
        for m in &items {
            assert!(got.contains(m), "node {} lacks {m:?}", i + 1);
        }
    }
    // A forged proof, relayed unchecked by node 0 as its own, is refused by its neighbours,
    // which penalise node 0 for it, and reaches no consumer.
    let before = misbehaved_at(&mut sim, 0..8, "invalid_block");
    assert!(
        sim.block_on(gossip.send(RelayLocal(Message::ProofSubmission(forged.clone()))))
            .expect("gossip answers")
    );
    sim.run_for(Duration::from_secs(3));
    for (i, s) in seen.iter().enumerate() {
        let got = s.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            !got.contains(&Message::ProofSubmission(forged.clone())),
            "node {} took the forged proof",
            i + 1
        );
    }
    assert!(misbehaved_at(&mut sim, 0..8, "invalid_block") > before);
}
