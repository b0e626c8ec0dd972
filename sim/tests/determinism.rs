//! A scripted ~10,000-event run over random faulty links: the trace must be a
//! pure function of the seed.

use spacetime_sim::{Delivery, LinkModel, Network, NodeIndex, Scheduler, SimRng, SimTime};

const NODES: u32 = 8;
const EVENTS: usize = 10_000;

enum Event {
    Tick(NodeIndex),
    Deliver(Delivery),
    Partition,
    Heal,
}

/// What the run observed, in order.
#[derive(Debug, PartialEq, Eq)]
enum Trace {
    Tick {
        at: u64,
        node: u32,
        to: u32,
        copies: usize,
    },
    Deliver {
        at: u64,
        from: u32,
        to: u32,
        bytes: Vec<u8>,
        corrupted: bool,
    },
    Partition(u64),
    Heal(u64),
}

/// Fault counters, to prove the run exercised every fault.
#[derive(Debug, Default)]
struct Stats {
    sent: usize,
    delivered: usize,
    duplicated: usize,
    corrupted: usize,
    blocked: usize,
}

fn send(
    net: &Network,
    sched: &mut Scheduler<Event>,
    rng: &mut SimRng,
    stats: &mut Stats,
    (from, to): (NodeIndex, NodeIndex),
    bytes: &[u8],
) -> usize {
    let deliveries = net.transmit(from, to, bytes, sched.now(), rng);
    stats.sent += 1;
    stats.duplicated += usize::from(deliveries.len() == 2);
    if !net.can_reach(from, to) {
        assert!(deliveries.is_empty(), "partition leaked {from} -> {to}");
        stats.blocked += 1;
    }
    let n = deliveries.len();
    for d in deliveries {
        sched
            .schedule_at(d.at, Event::Deliver(d))
            .expect("queue bound");
    }
    n
}

fn run(seed: u64) -> (Vec<Trace>, Stats) {
    let mut master = SimRng::new(seed);
    let mut net_rng = master.fork(u64::MAX);
    let mut node_rngs: Vec<SimRng> = (0..NODES).map(|i| master.fork(u64::from(i))).collect();
    let mut net = Network::new(LinkModel::ideal(50)).unwrap();
    for a in 0..NODES {
        for b in 0..NODES {
            let model = LinkModel {
                latency_ms: 1 + master.below(200),
                jitter_ms: master.below(100),
                drop: (master.below(20) as u32, 100),
                duplicate: (master.below(10) as u32, 100),
                corrupt: (master.below(5) as u32, 100),
            };
            net.set_link(NodeIndex(a), NodeIndex(b), model).unwrap();
        }
    }
    let mut sched = Scheduler::new(EVENTS);
    for i in 0..NODES {
        sched
            .schedule_at(SimTime(master.below(100)), Event::Tick(NodeIndex(i)))
            .unwrap();
    }
    sched
        .schedule_at(SimTime::from_secs(10), Event::Partition)
        .unwrap();
    sched
        .schedule_at(SimTime::from_secs(20), Event::Heal)
        .unwrap();

    let (mut trace, mut stats) = (Vec::with_capacity(EVENTS), Stats::default());
    while trace.len() < EVENTS {
        let (now, event) = sched.pop().expect("ticks keep the run alive");
        let at = now.as_millis();
        match event {
            Event::Tick(node) => {
                let rng = &mut node_rngs[node.0 as usize];
                let to = NodeIndex(rng.below(u64::from(NODES)) as u32);
                let payload = rng.next_u64().to_le_bytes();
                let next = 50 + rng.below(100);
                let copies = send(
                    &net,
                    &mut sched,
                    &mut net_rng,
                    &mut stats,
                    (node, to),
                    &payload,
                );
                sched.schedule_in(next, Event::Tick(node)).unwrap();
                trace.push(Trace::Tick {
                    at,
                    node: node.0,
                    to: to.0,
                    copies,
                });
            }
            Event::Deliver(d) => {
                stats.delivered += 1;
                stats.corrupted += usize::from(d.corrupted);
                let rng = &mut node_rngs[d.to.0 as usize];
                if rng.chance(1, 2) {
                    // Gossip it on, stamped with the forwarder.
                    let to = NodeIndex(rng.below(u64::from(NODES)) as u32);
                    let mut fwd = d.bytes.clone();
                    fwd.push(d.to.0 as u8);
                    fwd.truncate(32);
                    send(&net, &mut sched, &mut net_rng, &mut stats, (d.to, to), &fwd);
                }
                trace.push(Trace::Deliver {
                    at,
                    from: d.from.0,
                    to: d.to.0,
                    bytes: d.bytes,
                    corrupted: d.corrupted,
                });
            }
            Event::Partition => {
                let (left, right) = ([0, 1, 2, 3].map(NodeIndex), [4, 5, 6, 7].map(NodeIndex));
                net.partition(&[&left, &right]).unwrap();
                trace.push(Trace::Partition(at));
            }
            Event::Heal => {
                net.heal();
                trace.push(Trace::Heal(at));
            }
        }
    }
    (trace, stats)
}

#[test]
fn same_seed_gives_identical_trace() {
    let (a, stats) = run(0x5eed);
    let (b, _) = run(0x5eed);
    assert_eq!(a.len(), EVENTS);
    assert!(a == b, "same seed diverged");
    // The run is long enough to cross the partition window and hit every fault.
    assert!(a.contains(&Trace::Partition(10_000)) && a.contains(&Trace::Heal(20_000)));
    assert!(
        a.windows(2).all(|w| time(&w[0]) <= time(&w[1])),
        "time never runs backwards"
    );
    assert!(
        stats.delivered < stats.sent + stats.duplicated,
        "some messages dropped: {stats:?}"
    );
    assert!(
        stats.duplicated > 0 && stats.corrupted > 0 && stats.blocked > 0,
        "{stats:?}"
    );
}

#[test]
fn different_seeds_give_different_traces() {
    let (a, _) = run(1);
    let (b, _) = run(2);
    assert_ne!(a, b);
}

fn time(t: &Trace) -> u64 {
    match *t {
        Trace::Tick { at, .. }
        | Trace::Deliver { at, .. }
        | Trace::Partition(at)
        | Trace::Heal(at) => at,
    }
}
