//! Headers-first sync in the simulator: real nodes, virtual time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use spacetime::sync::SyncConfig;
use spacetime::wire::MessageKind;
use spacetime::{Block, Genesis};
use spacetime_actors::chain::metrics as chain_metrics;
use spacetime_actors::p2p::metrics as p2p_metrics;
use spacetime_actors::sync::SyncSettings;
use spacetime_actors::sync::metrics as sync_metrics;
use spacetime_sim::{
    Lie, LinkParams, MetricsView, NodeSpec, RogueSpec, RogueView, Sim, after_tip_ms, chain_work,
    extend_chain, mine_chain,
};

const SECOND: Duration = Duration::from_secs(1);

/// About 100 dev blocks a second, 50 ms each way.
fn slow_link() -> LinkParams {
    LinkParams {
        bandwidth: 40_000,
        ..LinkParams::with_latency(Duration::from_millis(50))
    }
}

fn dev() -> Genesis {
    Genesis::builtin("dev").expect("dev genesis")
}

fn height(sim: &mut Sim, i: usize) -> u64 {
    sim.tip(i).map_or(0, |t| t.height)
}

fn synced(sim: &mut Sim, i: usize, height: u64) -> bool {
    sim.tip(i).map(|t| t.height >= height).unwrap_or(false)
}

/// Runs until `done` or `limit`, noting node `i`'s height whenever it changed: `(virtual ms,
/// height)`, for failure messages.
fn run_logged(
    sim: &mut Sim,
    i: usize,
    limit: Duration,
    step: Duration,
    mut done: impl FnMut(&mut Sim) -> bool,
) -> (bool, Vec<(u128, u64)>) {
    let mut log: Vec<(u128, u64)> = Vec::new();
    let ok = sim.run_until(limit, step, |s| {
        let h = height(s, i);
        if log.last().is_none_or(|(_, last)| *last != h) {
            log.push((s.elapsed().as_millis(), h));
        }
        done(s)
    });
    (ok, log)
}

/// A labelled counter's values: `(labels, value)` of every label set of `name`.
fn labelled(view: &MetricsView, name: &str) -> Vec<(String, u64)> {
    let prefix = format!("{name}{{");
    view.labelled
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix(&prefix)?.trim_end_matches('}').to_owned(),
                *v,
            ))
        })
        .collect()
}

/// A counter's value for `kind`.
fn kind(view: &MetricsView, name: &str, kind: &str) -> u64 {
    let key = format!("{name}{{kind={kind}}}");
    view.labelled.get(&key).copied().unwrap_or(0)
}

/// What sync and the peer manager said about misbehaving peers, for failure messages.
fn penalties(view: &MetricsView) -> String {
    format!(
        "sync {:?}, p2p {:?}, bans {:?}, stallers {}",
        labelled(view, sync_metrics::PENALTIES),
        labelled(view, p2p_metrics::MISBEHAVIOUR),
        labelled(view, p2p_metrics::BANS),
        view.counter(sync_metrics::STALLERS),
    )
}

/// A simulation of `dev` starting after the last block of `chain`, with `sources` full nodes
/// preloaded with it and one empty node (the last index) that dials them all.
fn sources_and_fresh(
    seed: u64,
    chain: &[Block],
    sources: usize,
    fresh: NodeSpec,
) -> (Sim, Vec<usize>, usize) {
    let g = dev();
    let mut sim = Sim::starting_at(seed, g.clone(), after_tip_ms(&g, chain)).expect("sim");
    let src = sim.add_nodes(sources, &NodeSpec::full());
    let fresh = sim.add_node(fresh);
    for &s in &src {
        sim.preload(s, chain).expect("preload");
    }
    let edges: Vec<(usize, usize)> = src.iter().map(|&s| (fresh, s)).collect();
    sim.connect_edges(&edges).expect("edges");
    (sim, src, fresh)
}

#[test]
fn an_empty_node_syncs_from_one_source() {
    let g = dev();
    let blocks = mine_chain(&g, 600, 1).expect("mined");
    let mut sim = Sim::starting_at(7, g.clone(), after_tip_ms(&g, &blocks)).expect("sim");
    let source = sim.add_node(NodeSpec::full());
    let fresh = sim.add_node(NodeSpec::full());
    sim.preload(source, &blocks).expect("preload");
    sim.connect_edges(&[(fresh, source)]).expect("edges");
    sim.start_all().expect("start");
    let done = sim.run_until(300 * SECOND, SECOND, |s| synced(s, fresh, 600));
    let tip = sim.tip(fresh).expect("tip");
    assert!(
        done,
        "fresh node at height {} after {:?}",
        tip.height,
        sim.elapsed()
    );
    assert_eq!(tip.hash, blocks[599].hash());
    eprintln!("synced 600 blocks in {:?} virtual", sim.elapsed());
}

#[test]
fn ten_thousand_blocks_from_one_source() {
    let wall = Instant::now();
    let blocks = mine_chain(&dev(), 10_000, 11).expect("mined");
    eprintln!("mined 10000 in {:?} wall", wall.elapsed());
    let (mut sim, src, fresh) = sources_and_fresh(11, &blocks, 1, NodeSpec::full());
    let internet = LinkParams::with_latency(Duration::from_millis(50));
    sim.net().set_link(sim.ip(src[0]), sim.ip(fresh), internet);
    sim.start_all().expect("start");
    let t0 = sim.elapsed();
    let wall = Instant::now();
    let (done, log) = run_logged(&mut sim, fresh, 600 * SECOND, SECOND, |s| {
        synced(s, fresh, 10_000)
    });
    let m = sim.metrics(fresh).expect("metrics");
    let tip = sim.tip(fresh).expect("tip");
    assert!(
        done,
        "fresh node at {} (heights {log:?}); {}",
        tip.height,
        penalties(&m)
    );
    assert_eq!(tip.hash, blocks[9_999].hash());
    assert_eq!(m.counter(sync_metrics::PENALTIES), 0, "{}", penalties(&m));
    eprintln!(
        "synced 10000 blocks in {:?} virtual, {:?} wall",
        sim.elapsed() - t0,
        wall.elapsed()
    );
}

#[test]
fn download_is_spread_over_three_sources() {
    let blocks = mine_chain(&dev(), 3_000, 12).expect("mined");
    let (mut sim, _, fresh) = sources_and_fresh(12, &blocks, 3, NodeSpec::full());
    sim.start_all().expect("start");
    let (done, log) = run_logged(&mut sim, fresh, 600 * SECOND, SECOND, |s| {
        synced(s, fresh, 3_000)
    });
    let m = sim.metrics(fresh).expect("metrics");
    let tip = sim.tip(fresh).expect("tip");
    assert!(
        done,
        "fresh node at {} (heights {log:?}); {}",
        tip.height,
        penalties(&m)
    );
    assert_eq!(tip.hash, blocks[2_999].hash());
    let per_peer = labelled(&m, sync_metrics::BLOCKS_RECEIVED);
    let total: u64 = per_peer.iter().map(|(_, n)| n).sum();
    eprintln!("{:?}: {per_peer:?}; {}", sim.elapsed(), penalties(&m));
    assert_eq!(per_peer.len(), 3, "{per_peer:?}");
    for (peer, n) in &per_peer {
        assert!(
            n * 100 >= total * 15,
            "{peer} delivered {n} of {total}: {per_peer:?}"
        );
    }
}

#[test]
fn downloads_each_block_about_once() {
    let blocks = mine_chain(&dev(), 1_500, 13).expect("mined");
    let (mut sim, _, fresh) = sources_and_fresh(13, &blocks, 2, NodeSpec::full());
    sim.start_all().expect("start");
    let (done, log) = run_logged(&mut sim, fresh, 300 * SECOND, SECOND, |s| {
        synced(s, fresh, 1_500)
    });
    assert!(done, "heights {log:?}");
    let m = sim.metrics(fresh).expect("metrics");
    let received = m.counter(sync_metrics::BLOCKS_RECEIVED);
    let requested = m.counter(sync_metrics::BLOCKS_REQUESTED);
    let duplicate = m
        .labelled
        .get(&format!(
            "{}{{status=duplicate}}",
            chain_metrics::BLOCKS_IMPORTED
        ))
        .copied()
        .unwrap_or(0);
    eprintln!("requested {requested}, received {received}, imported again {duplicate}");
    assert!(
        received <= 1_650,
        "received {received} bodies for 1500 blocks"
    );
}

#[test]
fn a_fresh_node_follows_a_miner_that_keeps_mining() {
    let g = dev();
    let blocks = mine_chain(&g, 1_500, 14).expect("mined");
    let mut sim = Sim::starting_at(14, g.clone(), after_tip_ms(&g, &blocks)).expect("sim");
    let miner = sim.add_node(NodeSpec::miner());
    let fresh = sim.add_node(NodeSpec::full());
    sim.preload(miner, &blocks).expect("preload");
    sim.connect_edges(&[(fresh, miner)]).expect("edges");
    sim.start_all().expect("start");
    // Catch up: the miner's tip of a moment ago.
    let (done, log) = run_logged(&mut sim, fresh, 120 * SECOND, SECOND, |s| {
        let target = height(s, miner);
        target > 1_500 && synced(s, fresh, target)
    });
    assert!(
        done,
        "fresh heights {log:?}, miner at {}",
        height(&mut sim, miner)
    );
    let caught_up = sim.elapsed();
    // Then follow: every block the miner has is the fresh node's within a poll interval.
    let mut reached: Vec<(u64, Duration)> = Vec::new(); // miner height, when
    let mut lags: Vec<Duration> = Vec::new();
    let mut pending: Vec<(u64, Duration)> = Vec::new();
    let mut mined = BTreeMap::new(); // height -> the miner's hash
    let mut followed = Vec::new(); // the fresh node's tips
    for _ in 0..120 {
        sim.run_for(SECOND / 2);
        let now = sim.elapsed();
        let tip = sim.tip(miner).expect("tip");
        let m = tip.height;
        mined.insert(m, tip.hash);
        if reached.last().is_none_or(|(h, _)| *h < m) {
            reached.push((m, now));
            pending.push((m, now));
        }
        let ours = sim.tip(fresh).expect("tip");
        let f = ours.height;
        followed.push((f, ours.hash));
        pending.retain(|(h, at)| {
            let keep = *h > f;
            if !keep {
                lags.push(now - *at);
            }
            keep
        });
    }
    let max_lag = lags.iter().max().copied().unwrap_or_default();
    eprintln!(
        "caught up at {caught_up:?}; miner {} -> {}; max lag {max_lag:?}",
        reached.first().map_or(0, |r| r.0),
        reached.last().map_or(0, |r| r.0)
    );
    assert!(reached.len() >= 10, "the miner mined {reached:?}");
    assert!(max_lag <= 12 * SECOND, "lags {lags:?}");
    for (h, at) in &pending {
        assert!(
            sim.elapsed() - *at <= 12 * SECOND,
            "block {h} of {at:?} still missing"
        );
    }
    // The fresh node follows the miner's chain, not merely its height.
    let seen: Vec<bool> = followed
        .iter()
        .filter_map(|(h, hash)| mined.get(h).map(|m| m == hash))
        .collect();
    assert!(
        seen.len() >= 10 && seen.iter().all(|same| *same),
        "{seen:?}"
    );
}

/// A victim that dials a rogue (`spec`) and `sources` honest nodes preloaded with `honest`.
struct RogueCase {
    sim: Sim,
    honest: Vec<usize>,
    rogue: usize,
    victim: usize,
}

impl RogueCase {
    fn new(seed: u64, honest: &[Block], spec: RogueSpec) -> Self {
        Self::build(seed, honest, 1, &[], spec, SyncSettings::default())
    }

    /// The victim starts with `victim_chain` and syncs by `sync`.
    fn build(
        seed: u64,
        honest: &[Block],
        sources: usize,
        victim_chain: &[Block],
        spec: RogueSpec,
        sync: SyncSettings,
    ) -> Self {
        let g = dev();
        let start = after_tip_ms(&g, honest).max(after_tip_ms(&g, &spec.chain));
        let mut sim = Sim::starting_at(seed, g, start).expect("sim");
        let victim = sim.add_node(NodeSpec {
            sync,
            ..NodeSpec::full()
        });
        let rogue = sim.add_rogue(spec);
        let hs = sim.add_nodes(sources, &NodeSpec::full());
        sim.preload(victim, victim_chain).expect("preload");
        let mut edges = vec![(victim, rogue)];
        for &h in &hs {
            sim.preload(h, honest).expect("preload");
            edges.push((victim, h));
        }
        sim.connect_edges(&edges).expect("edges");
        sim.start_all().expect("start");
        Self {
            sim,
            honest: hs,
            rogue,
            victim,
        }
    }

    /// Runs until the victim is on `tip`, with its honest peers, and `done` holds (or
    /// `limit`); asserts it did.
    fn settle(
        &mut self,
        tip: &Block,
        limit: Duration,
        done: impl Fn(&MetricsView, &RogueView) -> bool,
    ) {
        let (victim, rogue) = (self.victim, self.rogue);
        let honest: Vec<_> = self.honest.iter().map(|&h| self.sim.ip(h)).collect();
        let hash = tip.hash();
        let (ok, log) = run_logged(&mut self.sim, victim, limit, SECOND / 2, |s| {
            let on_tip = s.tip(victim).is_ok_and(|t| t.hash == hash);
            let peers = s.connected_peers(victim).expect("peers");
            let kept = honest
                .iter()
                .all(|ip| peers.iter().any(|p| p.addr.ip() == *ip));
            let m = s.metrics(victim).expect("metrics");
            on_tip && kept && done(&m, &s.rogue(rogue).expect("rogue"))
        });
        let (m, view) = (self.metrics(), self.rogue());
        let height = tip.header.height;
        let peers = self.sim.connected_peers(victim).expect("peers");
        let why = penalties(&m);
        assert!(
            ok,
            "victim {log:?}, want {hash} at {height}; {why}; peers {peers:?}; rogue {view:?}"
        );
        let ended: Vec<_> = view.ended.iter().map(|e| &e.reason).collect();
        eprintln!(
            "settled at {:?}: {why}; rogue ended {ended:?}",
            self.sim.elapsed()
        );
    }

    fn metrics(&self) -> MetricsView {
        self.sim.metrics(self.victim).expect("metrics")
    }

    fn rogue(&self) -> RogueView {
        self.sim.rogue(self.rogue).expect("rogue")
    }
}

fn penalised(m: &MetricsView, what: &str) -> bool {
    kind(m, sync_metrics::PENALTIES, what) + kind(m, p2p_metrics::MISBEHAVIOUR, what) > 0
}

/// Dropped as a staller or timed out.
fn stalled(m: &MetricsView) -> bool {
    m.counter(sync_metrics::STALLERS) > 0 || penalised(m, "timeout")
}

/// `chain` and `n` more blocks of another miner on top.
fn longer(chain: &[Block], n: u64, seed: u64) -> Vec<Block> {
    let mut out = chain.to_vec();
    out.extend(extend_chain(&dev(), chain, n, seed).expect("extension"));
    out
}

#[test]
fn a_staller_among_two_honest_sources_is_dropped() {
    let chain = mine_chain(&dev(), 1_500, 15).expect("mined");
    let spec = RogueSpec::new(Lie::Withhold, chain.clone());
    let settings = SyncSettings::default();
    let mut case = RogueCase::build(15, &chain, 2, &[], spec, settings);
    case.settle(&chain[1_499], 300 * SECOND, |m, v| {
        stalled(m) && !v.ended.is_empty()
    });
    assert!(case.rogue().withheld > 0, "never asked: {:?}", case.rogue());
}

#[test]
fn invalid_headers_are_penalised() {
    let honest = mine_chain(&dev(), 600, 16).expect("mined");
    // More work than the honest chain, so the victim asks it; height 610 is broken.
    let lying = longer(&honest, 50, 17);
    let spec = RogueSpec::new(Lie::InvalidHeader { at: 610 }, lying);
    let mut case = RogueCase::new(16, &honest, spec);
    case.settle(&honest[599], 120 * SECOND, |m, v| {
        penalised(m, "invalid_block") && !v.ended.is_empty()
    });
}

#[test]
fn non_connecting_headers_are_penalised() {
    let honest = mine_chain(&dev(), 600, 18).expect("mined");
    // A valid heavier chain, so the victim asks for it, never sent so that it connects. The
    // victim starts on the honest tip: its locator then always ends where the rogue skips.
    let lying = longer(&honest, 50, 19);
    let spec = RogueSpec::new(Lie::NonConnecting, lying);
    let settings = SyncSettings::default();
    let mut case = RogueCase::build(18, &honest, 1, &honest, spec, settings);
    case.settle(&honest[599], 120 * SECOND, |m, v| {
        penalised(m, "non_connecting_headers") && !v.ended.is_empty()
    });
}

#[test]
fn bad_bodies_are_penalised() {
    let honest = mine_chain(&dev(), 600, 20).expect("mined");
    let mut case = RogueCase::new(20, &honest, RogueSpec::new(Lie::BadBodies, honest.clone()));
    case.settle(&honest[599], 120 * SECOND, |m, v| {
        penalised(m, "invalid_block") && !v.ended.is_empty()
    });
}

#[test]
fn withheld_blocks_are_fetched_elsewhere() {
    let honest = mine_chain(&dev(), 600, 21).expect("mined");
    let mut case = RogueCase::new(21, &honest, RogueSpec::new(Lie::Withhold, honest.clone()));
    case.settle(&honest[599], 120 * SECOND, |m, v| {
        stalled(m) && !v.ended.is_empty()
    });
    assert!(case.rogue().withheld > 0);
}

#[test]
fn very_slow_blocks_are_fetched_elsewhere() {
    let honest = mine_chain(&dev(), 600, 22).expect("mined");
    let spec = RogueSpec::new(Lie::Slow { delay: 60 * SECOND }, honest.clone());
    let mut case = RogueCase::new(22, &honest, spec);
    case.settle(&honest[599], 120 * SECOND, |m, v| {
        stalled(m) && !v.ended.is_empty()
    });
    assert!(case.rogue().requests(MessageKind::GetBlocks) > 0);
}

#[test]
fn overclaimed_work_is_penalised() {
    let honest = mine_chain(&dev(), 600, 23).expect("mined");
    let spec = RogueSpec::new(Lie::OverclaimWork, honest.clone());
    let mut case = RogueCase::new(23, &honest, spec);
    case.settle(&honest[599], 120 * SECOND, |m, _| {
        penalised(m, "unproven_work")
    });
    assert!(case.rogue().requests(MessageKind::GetHeaders) > 0);
}
#[test]
fn a_low_work_header_chain_is_never_stored() {
    let g = dev();
    let honest = mine_chain(&g, 800, 24).expect("mined");
    // A valid fork from height 50, 400 headers long: less work than the victim's 600 blocks.
    let mut fork = honest[..50].to_vec();
    fork.extend(extend_chain(&g, &fork, 400, 25).expect("fork"));
    assert!(chain_work(&fork) < chain_work(&honest[..600]));
    let settings = SyncSettings {
        max_pending_headers: 100,
        ..SyncSettings::default()
    };
    let spec = RogueSpec::new(Lie::LowWorkChain, fork);
    let mut case = RogueCase::build(24, &honest, 1, &honest[..600], spec, settings);
    // The rogue is only ever polled, once the victim follows the honest chain.
    case.settle(&honest[799], 120 * SECOND, |m, _| {
        penalised(m, "unproven_work")
    });
    let m = case.metrics();
    assert_eq!(m.gauge(chain_metrics::HEADER_ONLY), Some(0.0));
    assert_eq!(m.gauge(chain_metrics::HEADER_HEIGHT), Some(800.0));
    assert_eq!(m.counter(chain_metrics::REORGS), 0);
    assert!(case.rogue().headers_served >= 400, "{:?}", case.rogue());
}

#[test]
fn a_partition_during_sync_heals() {
    let blocks = mine_chain(&dev(), 1_800, 26).expect("mined");
    // A narrow window over a slow link: the download takes a while and stops with the link.
    let config = SyncConfig {
        window: 256,
        ..SyncConfig::default()
    };
    let spec = NodeSpec {
        sync: SyncSettings {
            config,
            ..SyncSettings::default()
        },
        ..NodeSpec::full()
    };
    let (mut sim, src, fresh) = sources_and_fresh(26, &blocks, 1, spec);
    let (a, b) = (sim.ip(fresh), sim.ip(src[0]));
    sim.net().set_link(a, b, slow_link());
    sim.start_all().expect("start");
    let (ok, log) = run_logged(&mut sim, fresh, 120 * SECOND, SECOND / 5, |s| {
        synced(s, fresh, 900)
    });
    assert!(ok, "{log:?}");
    sim.net().partition(a, b);
    let cut = height(&mut sim, fresh);
    sim.run_for(5 * SECOND);
    let settled = height(&mut sim, fresh);
    // Longer than the idle timeout (120 s): the sessions end and the node dials again.
    let (_, during) = run_logged(&mut sim, fresh, 150 * SECOND, SECOND, |_| false);
    let now = height(&mut sim, fresh);
    eprintln!("partitioned at {cut}, {settled} after 5 s, {during:?} then");
    assert!(now < 1_800 && now == settled, "{cut} {settled} {during:?}");
    sim.net().heal(a, b);
    let healed = sim.elapsed();
    let (ok, log) = run_logged(&mut sim, fresh, 300 * SECOND, SECOND, |s| {
        synced(s, fresh, 1_800)
    });
    let m = sim.metrics(fresh).expect("metrics");
    assert!(ok, "after heal {log:?}; {}", penalties(&m));
    assert_eq!(sim.tip(fresh).expect("tip").hash, blocks[1_799].hash());
    eprintln!(
        "healed at {healed:?}, synced at {:?}; {}",
        sim.elapsed(),
        penalties(&m)
    );
}

#[test]
fn a_heavier_fork_arriving_mid_sync_wins() {
    let g = dev();
    let x = mine_chain(&g, 1_500, 27).expect("mined");
    // B forks X 50 blocks below its tip (within the dev max_reorg_depth of 100).
    let mut y = x[..1_450].to_vec();
    y.extend(extend_chain(&g, &y, 150, 28).expect("fork"));
    assert!(chain_work(&y) > chain_work(&x));
    let start = after_tip_ms(&g, &x).max(after_tip_ms(&g, &y));
    let mut sim = Sim::starting_at(27, g, start).expect("sim");
    let a = sim.add_node(NodeSpec::full());
    let fresh = sim.add_node(NodeSpec::full());
    let b = sim.add_node(NodeSpec::full());
    sim.preload(a, &x).expect("preload");
    sim.preload(b, &y).expect("preload");
    // A slow link to A, so that B comes while the fresh node is still downloading X.
    sim.net().set_link(sim.ip(a), sim.ip(fresh), slow_link());
    sim.connect_edges(&[(fresh, a), (b, fresh)]).expect("edges");
    sim.start_node(a).expect("start");
    sim.start_node(fresh).expect("start");
    let (ok, log) = run_logged(&mut sim, fresh, 120 * SECOND, SECOND / 10, |s| {
        synced(s, fresh, 1_455)
    });
    let at = height(&mut sim, fresh);
    assert!(ok && at < 1_500, "not mid-sync: {log:?}");
    sim.start_node(b).expect("start");
    let hash = y[1_599].hash();
    let (ok, log) = run_logged(&mut sim, fresh, 300 * SECOND, SECOND / 2, |s| {
        s.tip(fresh).is_ok_and(|t| t.hash == hash)
    });
    let m = sim.metrics(fresh).expect("metrics");
    assert!(ok, "B connected at {at}; then {log:?}; {}", penalties(&m));
    let reorgs = m.counter(chain_metrics::REORGS);
    let reverted = m.counter(chain_metrics::REORG_BLOCKS);
    eprintln!("B connected at height {at}; reorgs {reorgs}, reverted {reverted}");
    assert!(reorgs >= 1 && reverted >= at - 1_450, "{reorgs} {reverted}");
}
