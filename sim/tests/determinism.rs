//! The simulator replays a network of real nodes from its seed: same seed, same run, bit for
//! bit; another seed, another run. Two runs happen in one process, so anything that leaks
//! process state into a node (a HashMap's random order, the OS generator, the wall clock)
//! would show up as a difference.

use std::time::Duration;

use spacetime::Hash;
use spacetime_sim::{LinkParams, NodeSpec, Observed, Sim, Topology};

/// What a run produced: every node's tip, and every (time, node, event) digest in order.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    tips: Vec<(u64, Hash)>,
    entries: Vec<Hash>,
    digest: Hash,
    blocks: usize,
    sessions: usize,
}

fn run(seed: u64) -> Run {
    let mut sim = Sim::new(seed).expect("simulator");
    // Jitter and loss draw from the run's seed too.
    sim.net().set_default_params(
        LinkParams::with_latency(Duration::from_millis(40))
            .jitter(Duration::from_millis(10))
            .loss(20_000),
    );
    sim.add_nodes(3, &NodeSpec::miner());
    sim.add_nodes(2, &NodeSpec::full());
    sim.connect(Topology::Ring).expect("ring");
    sim.start_all().expect("nodes start");
    sim.run_for(Duration::from_secs(120));
    let tips = (0..sim.len())
        .map(|i| {
            let tip = sim.tip(i).expect("tip");
            (tip.height, tip.hash)
        })
        .collect();
    let trace = sim.trace().entries();
    let blocks = trace
        .iter()
        .filter(|e| matches!(e.what, Observed::Chain(_)))
        .count();
    let sessions = trace
        .iter()
        .filter(|e| {
            matches!(
                e.what,
                Observed::Peer(spacetime_actors::p2p::PeerEvent::Connected { .. })
            )
        })
        .count();
    Run {
        tips,
        entries: trace.iter().map(|e| e.digest()).collect(),
        digest: sim.trace().digest(),
        blocks,
        sessions,
    }
}

#[test]
fn the_same_seed_replays_the_same_network_and_another_seed_does_not() {
    let first = run(42);
    // The run did something worth comparing: blocks on every miner, sessions between nodes.
    assert!(
        first.tips[..3].iter().all(|(h, _)| *h >= 20),
        "{:?}",
        first.tips
    );
    assert!(first.blocks >= 60, "{} chain events", first.blocks);
    assert!(first.sessions >= 10, "{} sessions", first.sessions);
    let again = run(42);
    assert_eq!(
        first.tips, again.tips,
        "tips differ between two runs of one seed"
    );
    assert_eq!(first.entries.len(), again.entries.len());
    if let Some(i) = (0..first.entries.len()).find(|&i| first.entries[i] != again.entries[i]) {
        panic!(
            "the runs diverge at trace entry {i} of {}",
            first.entries.len()
        );
    }
    assert_eq!(first.digest, again.digest);

    let other = run(43);
    assert_ne!(other.digest, first.digest);
    assert_ne!(other.tips, first.tips, "another seed mined the same blocks");
}
