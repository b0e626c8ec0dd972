//! Consensus attacks where timing matters (security issue 16; the core-level cases are in the
//! root crate's `tests/consensus_attacks.rs`).
//!
//! - Equivocation on the real network: one miner signs two blocks for the same parent and
//!   epoch; two rogue peers push one each to real nodes, in opposite orders; every node ends
//!   on the same block.
//! - Difficulty manipulation by a miner with 30-50 % of the space who withholds a private
//!   branch and stamps it as early or as late as the rules allow, on the model of
//!   `tests/difficulty.rs` (the real `next_target` and `Target::work`; floats only for the
//!   draws): the targets follow the space each branch really has, and the honest majority's
//!   branch keeps the most work.
//! - A long-range fork served by a peer: refused without downloading a body of it.
//! - Tip sniping: the tie rule (equal work, then the lower score) lets a sibling from a later
//!   epoch replace the tip; the model measures what a miner gains by doing so.

use std::time::Duration;

use spacetime::chain::{BlockDraft, ChainEvent};
use spacetime::difficulty::{AsertParams, next_target};
use spacetime::target::Work;
use spacetime::{Block, Genesis, GenesisConfig, NodeRng, Target, TimestampMs};
use spacetime_sim::blocks::{memory_chain, miner_for};
use spacetime_sim::{
    Flood, Lie, LinkParams, NodeSpec, Observed, RogueSpec, Sim, SimRng, after_tip_ms, mine_chain,
};

const NOW: u64 = u64::MAX / 2;

fn dev() -> Genesis {
    Genesis::builtin("dev").expect("dev genesis")
}

// ---------------------------------------------------------------------------------------
// Equivocation on the network
// ---------------------------------------------------------------------------------------

/// `base` plus two blocks by its own miner on its tip, for the same epoch with the same proof,
/// that differ only in their coinbase extra data.
fn equivocation(g: &Genesis, base: &[Block]) -> (Block, Block) {
    let mut chain = memory_chain(g).expect("chain");
    for b in base {
        chain.import(b.clone(), NOW).expect("base");
    }
    let miner = miner_for(g, 1);
    let tip = chain.tip().hash;
    let (context, proof, score) = miner.find_win(&chain, &tip, 0).expect("a win");
    let build = |extra: &[u8]| {
        chain
            .build_block(
                BlockDraft {
                    context,
                    timestamp_ms: context.min_timestamp_ms,
                    proof,
                    score,
                    transfers: Vec::new(),
                    payees: Vec::new(),
                    extra_data: extra.to_vec(),
                },
                miner.key(),
                &mut NodeRng::from_u64(5),
            )
            .expect("built")
    };
    (build(b"left"), build(b"right"))
}

/// The equivocating blocks a node's chain events name, in the order it saw them become its
/// tip.
fn tips_seen(sim: &Sim, node: usize, x: &Block, y: &Block) -> Vec<spacetime::Hash> {
    let ours = [x.hash(), y.hash()];
    sim.trace()
        .entries()
        .into_iter()
        .filter(|e| e.node == node)
        .filter_map(|e| match e.what {
            Observed::Chain(ChainEvent::NewTip { hash, .. }) => Some(hash),
            Observed::Chain(ChainEvent::Reorg { new_tip, .. }) => Some(new_tip),
            _ => None,
        })
        .filter(|h| ours.contains(h))
        .collect()
}

#[test]
fn equivocating_blocks_received_in_opposite_orders_converge_on_one_tip() {
    let g = dev();
    let base = mine_chain(&g, 10, 1).expect("base");
    let (x, y) = equivocation(&g, &base);
    assert_eq!(x.header.parent, y.header.parent);
    assert_eq!(x.header.epoch, y.header.epoch);
    assert_eq!(x.header.miner, y.header.miner);
    assert_eq!(x.header.score, y.header.score);
    // Equal work and equal score: the rule picks the lower hash.
    let winner = x.hash().min(y.hash());
    let with = |b: &Block| {
        let mut chain = base.clone();
        chain.push(b.clone());
        chain
    };
    let mut sim =
        Sim::starting_at(31, g.clone(), after_tip_ms(&g, std::slice::from_ref(&x))).expect("sim");
    // Nodes 0 and 1 hear of one block first each (a 5 ms link, the other 300 ms); node 2 only
    // through them.
    let nodes = sim.add_nodes(3, &NodeSpec::full());
    let once = Duration::from_secs(3_600);
    let rx = sim.add_rogue(RogueSpec::new(
        Lie::Flood {
            what: Flood::SameBlock,
            every: once,
        },
        with(&x),
    ));
    let ry = sim.add_rogue(RogueSpec::new(
        Lie::Flood {
            what: Flood::SameBlock,
            every: once,
        },
        with(&y),
    ));
    let fast = LinkParams::with_latency(Duration::from_millis(5));
    let slow = LinkParams::with_latency(Duration::from_millis(300));
    let (ip0, ip1, ipx, ipy) = (sim.ip(0), sim.ip(1), sim.ip(rx), sim.ip(ry));
    sim.net().set_link(ip0, ipx, fast);
    sim.net().set_link(ip0, ipy, slow);
    sim.net().set_link(ip1, ipy, fast);
    sim.net().set_link(ip1, ipx, slow);
    for &n in &nodes {
        sim.preload(n, &base).expect("preload");
    }
    sim.connect_edges(&[(0, rx), (0, ry), (1, rx), (1, ry), (0, 2), (1, 2)])
        .expect("edges");
    sim.start_all().expect("start");
    let converged = sim.run_until(Duration::from_secs(60), Duration::from_millis(100), |s| {
        nodes
            .iter()
            .all(|&n| s.tip(n).is_ok_and(|t| t.hash == winner))
    });
    assert!(converged, "every node on the lower-hash block");
    // Let everything settle: nobody moves off it.
    sim.run_for(Duration::from_secs(20));
    for &n in &nodes {
        let tip = sim.tip(n).expect("tip");
        assert_eq!((tip.hash, tip.height), (winner, 11), "node {n}");
    }
    // The two nodes really saw the blocks in opposite orders.
    let first = |n| tips_seen(&sim, n, &x, &y).first().copied();
    assert_eq!(first(0), Some(x.hash()), "{:?}", tips_seen(&sim, 0, &x, &y));
    assert_eq!(first(1), Some(y.hash()), "{:?}", tips_seen(&sim, 1, &x, &y));
    // The one that saw the loser first switched once, and nobody switched back.
    for n in nodes {
        let seen = tips_seen(&sim, n, &x, &y);
        assert_eq!(seen.last(), Some(&winner), "node {n}: {seen:?}");
        assert!(seen.len() <= 2, "node {n}: {seen:?}");
    }
}

/// A rogue serves, honestly, a chain from genesis with more work than the node's but forking
/// deeper than `max_reorg_depth` (a long-range fork, as from old keys or old plots). The node
/// keeps its tip, stores the headers without making them the best header, and never fetches
/// a body of a branch it would refuse to switch to.
#[test]
fn a_long_range_fork_served_by_a_peer_is_refused_without_downloading_it() {
    let mut config = GenesisConfig::builtin("dev").expect("dev");
    config.consensus.max_reorg_depth = 5;
    let g = Genesis::new(config).expect("genesis");
    let ours = mine_chain(&g, 20, 1).expect("ours");
    let theirs = mine_chain(&g, 40, 2).expect("theirs");
    assert!(spacetime_sim::chain_work(&theirs) > spacetime_sim::chain_work(&ours));
    let start = after_tip_ms(&g, &ours).max(after_tip_ms(&g, &theirs));
    let mut sim = Sim::starting_at(41, g.clone(), start).expect("sim");
    let node = sim.add_node(NodeSpec::full());
    sim.preload(node, &ours).expect("preload");
    let rogue = sim.add_rogue(RogueSpec::new(Lie::Honest, theirs.clone()));
    sim.connect_edges(&[(node, rogue)]).expect("edges");
    sim.start_all().expect("start");
    let served = sim.run_until(Duration::from_secs(30), Duration::from_millis(100), |s| {
        s.rogue(rogue).is_ok_and(|v| v.headers_served >= 40)
    });
    let view = sim.rogue(rogue).expect("rogue");
    assert!(
        served,
        "the node asked for the heavier chain's headers: {view:?}"
    );
    sim.run_for(Duration::from_secs(60));
    let tip = sim.tip(node).expect("tip");
    assert_eq!((tip.hash, tip.height), (ours[19].hash(), 20));
    let view = sim.rogue(rogue).expect("rogue");
    assert_eq!(
        view.blocks_served, 0,
        "no body of the refused branch: {view:?}"
    );
    let m = sim.metrics(node).expect("metrics");
    assert_eq!(
        m.gauge(spacetime_actors::sync::metrics::HEADER_HEIGHT),
        Some(20.0),
        "the best header is our tip"
    );
    println!(
        "long-range fork: phase {:?}, no progress for {:?} s, in IBD {:?}",
        m.gauge(spacetime_actors::sync::metrics::PHASE),
        m.gauge(spacetime_actors::sync::metrics::NO_PROGRESS),
        m.gauge(spacetime_actors::sync::metrics::IN_IBD),
    );
}

// ---------------------------------------------------------------------------------------
// Difficulty manipulation by a withholding miner (model)
// ---------------------------------------------------------------------------------------

/// Mining starts one day after the genesis time (the anchor is block 1).
const FIRST_EPOCH: u64 = 86_400;
/// Honest timestamps are the start of the epoch plus up to this many milliseconds.
const JITTER_MS: u64 = 20;

/// The `dev` network's timing and difficulty.
struct Net {
    genesis_ms: TimestampMs,
    epoch_ms: u64,
    drift_ms: u64,
    params: AsertParams,
    /// Eligible proofs per epoch of the whole network: one block per 2 s at the initial target.
    n0: f64,
}

impl Net {
    fn dev() -> Self {
        let config = GenesisConfig::builtin("dev").expect("dev");
        let params = AsertParams::from_genesis(&config);
        let q0 = fraction(params.initial_target);
        let p = config.network.epoch_ms as f64 / params.target_block_time_ms as f64;
        Self {
            genesis_ms: config.network.genesis_time_ms,
            epoch_ms: config.network.epoch_ms,
            drift_ms: config.network.max_future_drift_ms,
            n0: (1.0 - p).ln() / (-q0).ln_1p(),
            params,
        }
    }

    fn start(&self, epoch: u64) -> TimestampMs {
        self.genesis_ms + epoch * self.epoch_ms
    }

    fn epoch_of(&self, ts: TimestampMs) -> u64 {
        (ts - self.genesis_ms) / self.epoch_ms
    }

    /// log2(target / initial target) of the target at which `proofs` eligible proofs per
    /// epoch win half the epochs, one block per target block time: where ASERT settles a
    /// branch mined with that much space.
    fn settled_log2(&self, proofs: f64) -> f64 {
        let q = -(-std::f64::consts::LN_2 / proofs).exp_m1();
        (q / fraction(self.params.initial_target)).log2()
    }
}

/// `target / 2^256`: the chance that one uniformly random score meets it.
fn fraction(t: Target) -> f64 {
    t.0.iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b)) / 2f64.powi(256)
}

fn uniform(rng: &mut SimRng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// How a miner stamps its blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stamp {
    /// The start of the epoch plus a few milliseconds.
    Honest,
    /// The epoch's last millisecond: the chain looks slower, its targets grow.
    Latest,
    /// The earliest allowed: the epoch start (above the median of 11).
    Earliest,
}

/// One branch as the rules see it.
#[derive(Clone)]
struct Branch {
    /// Timestamps by height (0 = genesis).
    ts: Vec<TimestampMs>,
    targets: Vec<Target>,
    /// Miner of each block: true for the attacker.
    attacker: Vec<bool>,
    /// Scores of each block as a fraction of 2^256.
    scores: Vec<f64>,
    epochs: Vec<u64>,
    /// Cumulative work by height.
    works: Vec<Work>,
    /// The target of the next block (the real rule, recomputed at each push).
    next: Target,
}

impl Branch {
    fn new(net: &Net) -> Self {
        Self {
            ts: vec![net.genesis_ms],
            targets: vec![net.params.initial_target],
            attacker: vec![false],
            scores: vec![0.0],
            epochs: vec![FIRST_EPOCH - 1],
            works: vec![Work::ZERO],
            next: net.params.initial_target,
        }
    }

    fn height(&self) -> usize {
        self.ts.len() - 1
    }

    fn tip_epoch(&self) -> u64 {
        self.epochs[self.height()]
    }

    /// The real rule: the target of the next block.
    fn retarget(&mut self, net: &Net) {
        let h = self.height();
        let anchor = self.ts.get(1).copied().unwrap_or(0);
        self.next = next_target(&net.params, anchor, h as u64, self.ts[h]);
    }

    fn median(&self) -> TimestampMs {
        let from = self.ts.len().saturating_sub(11);
        let mut last = self.ts[from..].to_vec();
        last.sort_unstable();
        last[last.len() / 2]
    }

    fn stamp(&self, net: &Net, epoch: u64, stamp: Stamp, jitter: u64) -> TimestampMs {
        let start = net.start(epoch);
        match stamp {
            Stamp::Honest => start + jitter,
            Stamp::Latest => start + net.epoch_ms - 1,
            Stamp::Earliest => start.max(self.median() + 1),
        }
    }

    /// Appends a block after checking the epoch and timestamp rules; `now` is when the
    /// network sees it (the drift rule).
    fn push(&mut self, net: &Net, block: (u64, TimestampMs, bool, f64), now: TimestampMs) {
        let (epoch, ts, attacker, score) = block;
        assert!(epoch > self.tip_epoch(), "epoch must increase");
        assert_eq!(net.epoch_of(ts), epoch, "timestamp outside its epoch");
        assert!(ts > self.median(), "timestamp not above the median of 11");
        assert!(ts <= now + net.drift_ms, "timestamp beyond the drift");
        let target = self.next;
        assert!(score < fraction(target), "a block meets its target");
        let work = self.work().saturating_add(&target.work());
        self.works.push(work);
        self.targets.push(target);
        self.ts.push(ts);
        self.attacker.push(attacker);
        self.scores.push(score);
        self.epochs.push(epoch);
        self.retarget(net);
    }

    fn work(&self) -> Work {
        self.works[self.height()]
    }

    /// Replaces the tip by a sibling (same parent, so the same target and work).
    fn replace_tip(&mut self, net: &Net, block: (u64, TimestampMs, bool, f64), now: TimestampMs) {
        let target = self.targets[self.height()];
        self.ts.pop();
        self.targets.pop();
        self.attacker.pop();
        self.scores.pop();
        self.epochs.pop();
        self.works.pop();
        self.retarget(net);
        assert_eq!(self.next, target, "a sibling has the tip's target");
        self.push(net, block, now);
    }

    fn log2_targets(&self, from: usize) -> Vec<f64> {
        let t0 = fraction(self.targets[0]);
        self.targets[from..]
            .iter()
            .map(|t| (fraction(*t) / t0).log2())
            .collect()
    }
}

/// The best score of `proofs` uniformly random proofs (the minimum of that many uniforms).
fn best_score(rng: &mut SimRng, proofs: f64) -> f64 {
    1.0 - uniform(rng).powf(1.0 / proofs)
}

/// Blocks mined by everyone together before the attacker forks off.
const PREFIX: usize = 100;
/// Epochs the attacker withholds its branch (20 minutes, 20 half-lives of dev).
const WITHHOLD_EPOCHS: u64 = 1_200;
/// The attacker may release at any epoch from this many after the fork on...
const MIN_RELEASE: u64 = 20;
/// ... and a release from this many on reverts a long (about 150-block) branch.
const LONG_RELEASE: u64 = 300;
const RUNS: u64 = 12;

/// What a run of the withholding attack measured.
#[derive(Debug, Default)]
struct Withheld {
    /// Release points (epochs after the fork, over all runs) before [`LONG_RELEASE`] and from
    /// it on, and at how many of each the attacker's branch had more work than the honest one.
    short_points: u64,
    short_heavier: u64,
    long_points: u64,
    long_heavier: u64,
    /// Range of log2(target / t0) over each branch after the fork.
    honest: (f64, f64),
    private: (f64, f64),
    /// Mean log2(target / t0) of each branch's next target over the second half of the attack.
    honest_mean: f64,
    private_mean: f64,
}

fn fold_range(range: (f64, f64), values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold(range, |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}

/// The attacker with `share` of the space mines with everyone for [`PREFIX`] blocks, then on
/// a private branch for [`WITHHOLD_EPOCHS`] epochs, stamping it by `stamp`; the honest miners
/// (the rest of the space) go on with the public branch.
fn withhold(net: &Net, seed: u64, share: f64, stamp: Stamp) -> Withheld {
    let mut out = Withheld {
        honest: (f64::MAX, f64::MIN),
        private: (f64::MAX, f64::MIN),
        ..Withheld::default()
    };
    let t0 = fraction(net.params.initial_target);
    let mut master = SimRng::new(seed);
    for run in 0..RUNS {
        let mut rng = master.fork(run);
        let mut public = Branch::new(net);
        let mut epoch = FIRST_EPOCH - 1;
        while public.height() < PREFIX {
            epoch += 1;
            let best = best_score(&mut rng, net.n0);
            let jitter = rng.below(JITTER_MS);
            if best < fraction(public.next) {
                let ts = public.stamp(net, epoch, Stamp::Honest, jitter);
                public.push(net, (epoch, ts, false, best), net.start(epoch) + jitter);
            }
        }
        let fork = public.height() + 1;
        let mut private = public.clone();
        let (mut honest_sum, mut private_sum, mut count) = (0.0, 0.0, 0.0);
        for i in 1..=WITHHOLD_EPOCHS {
            epoch += 1;
            // The same three draws per epoch whatever happens, so strategies share the stream.
            let h = best_score(&mut rng, net.n0 * (1.0 - share));
            let a = best_score(&mut rng, net.n0 * share);
            let jitter = rng.below(JITTER_MS);
            let now = net.start(epoch) + jitter;
            if h < fraction(public.next) {
                let ts = public.stamp(net, epoch, Stamp::Honest, jitter);
                public.push(net, (epoch, ts, false, h), now);
            }
            if a < fraction(private.next) {
                let ts = private.stamp(net, epoch, stamp, jitter);
                // Checked against the earliest release time, the next epoch's start.
                private.push(net, (epoch, ts, true, a), net.start(epoch + 1));
            }
            let heavier = u64::from(private.work() > public.work());
            if i >= LONG_RELEASE {
                out.long_points += 1;
                out.long_heavier += heavier;
            } else if i >= MIN_RELEASE {
                out.short_points += 1;
                out.short_heavier += heavier;
            }
            if i > WITHHOLD_EPOCHS / 2 {
                count += 1.0;
                honest_sum += (fraction(public.next) / t0).log2();
                private_sum += (fraction(private.next) / t0).log2();
            }
        }
        out.honest = fold_range(out.honest, &public.log2_targets(fork));
        out.private = fold_range(out.private, &private.log2_targets(fork));
        out.honest_mean += honest_sum / count / RUNS as f64;
        out.private_mean += private_sum / count / RUNS as f64;
    }
    out
}

/// A miner with 30 % or 40 % of the space withholds a private branch and stamps it as late
/// (to look slow and so ease its targets) or as early as the rules allow.
///
/// Bounds asserted, and why:
/// - ASERT settles a branch where its own space wins half the epochs (one block per 2 s):
///   `settled_log2(space)`. A lie of `d` ms moves the next target by `2^(d / half_life)`, at
///   most `2^(999 / 60,000) = 2^0.017` within an epoch, and nothing accumulates (the schedule
///   is absolute). So over the second half of the attack the mean target of each branch is
///   its space's settled target within 0.1 (in log2: noise of 12 runs plus the lie), and no
///   target ever leaves the band from t0 to the settled target by more than 0.75 (45 s of
///   schedule error, several times the random walk's spread): lying buys no easier target
///   than the space it really has.
/// - Work: `E[work per epoch] = p(q) / q` with `p = 1 - (1 - q)^m`, at most `m` (the space)
///   whatever the target; at the settled targets the majority's branch gains work faster. A
///   release that reverts a long branch (300 epochs on, ~150 blocks) never has more work.
///   Short races are won sometimes (as in any longest-chain protocol: the deeper the
///   revert, the rarer): asserted under 2 % (30 %) and 4 % (40 %) of release points (measured 0.6-0.8 % and 0.8-1.2 %).
/// - With 50 % of the space neither side has an edge; only the target band is asserted.
#[test]
fn a_withholding_minority_cannot_outwork_the_majority_nor_push_the_target_past_its_space() {
    let net = Net::dev();
    let lie = (net.epoch_ms - 1) as f64 / net.params.half_life_ms as f64;
    for (i, (share, stamp, short_bound)) in [
        (0.3, Stamp::Latest, 0.02),
        (0.3, Stamp::Earliest, 0.02),
        (0.4, Stamp::Latest, 0.04),
        (0.4, Stamp::Earliest, 0.04),
        (0.5, Stamp::Latest, 1.0),
    ]
    .into_iter()
    .enumerate()
    {
        let w = withhold(&net, 40 + i as u64, share, stamp);
        let settled_h = net.settled_log2(net.n0 * (1.0 - share));
        let settled_a = net.settled_log2(net.n0 * share);
        println!(
            "{:.0} % withheld, stamped {stamp:?}: attacker heavier at {}/{} short and {}/{} \
             long release points; log2(target/t0) honest [{:.3}, {:.3}] mean {:.3} (settles \
             at {settled_h:.3}), private [{:.3}, {:.3}] mean {:.3} (settles at {settled_a:.3})",
            share * 100.0,
            w.short_heavier,
            w.short_points,
            w.long_heavier,
            w.long_points,
            w.honest.0,
            w.honest.1,
            w.honest_mean,
            w.private.0,
            w.private.1,
            w.private_mean,
        );
        for (name, (lo, hi), mean, settled) in [
            ("honest", w.honest, w.honest_mean, settled_h),
            ("private", w.private, w.private_mean, settled_a),
        ] {
            assert!(
                (mean - settled).abs() <= 0.1 + lie,
                "{share} {stamp:?} {name}: mean {mean} vs settled {settled}"
            );
            assert!(
                lo >= settled.min(0.0) - 0.75 && hi <= settled.max(0.0) + 0.75,
                "{share} {stamp:?} {name}: [{lo}, {hi}] vs settled {settled}"
            );
        }
        if share < 0.5 {
            assert_eq!(w.long_heavier, 0, "{share} {stamp:?}: a long revert won");
            let rate = w.short_heavier as f64 / w.short_points as f64;
            assert!(
                rate <= short_bound,
                "{share} {stamp:?}: short races won {rate}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tip sniping (model)
// ---------------------------------------------------------------------------------------

/// Blocks per sniping run.
const SNIPE_BLOCKS: usize = 3_000;

/// What a sniping run measured.
#[derive(Debug)]
struct Sniped {
    /// The attacker's share of the final chain's blocks.
    share_of_blocks: f64,
    /// Honest tips it replaced.
    snipes: u64,
    /// Range of log2(target / t0).
    targets: (f64, f64),
    /// Mean true time between blocks, ms.
    mean_block_ms: f64,
}

/// One public chain; the attacker (with `share` of the space) mines like everyone, stamps its
/// own blocks by `stamp`, and, when `snipe`, also scans the tip's parent in every epoch nobody
/// extends an honest tip: a sibling with a lower score than the tip has the same work and wins
/// the tie, so it replaces the tip for every node.
fn snipe_run(net: &Net, seed: u64, share: f64, stamp: Stamp, snipe: bool) -> Sniped {
    let mut rng = SimRng::new(seed);
    let mut chain = Branch::new(net);
    let mut epoch = FIRST_EPOCH - 1;
    let mut snipes = 0;
    let mut first_release = None;
    let mut last_release = 0;
    while chain.height() < SNIPE_BLOCKS {
        epoch += 1;
        // The same four draws per epoch whatever happens.
        let h = best_score(&mut rng, net.n0 * (1.0 - share));
        let a = best_score(&mut rng, net.n0 * share);
        let on_parent = best_score(&mut rng, net.n0 * share);
        let jitter = rng.below(JITTER_MS);
        let now = net.start(epoch) + jitter;
        let best = h.min(a);
        if best < fraction(chain.next) {
            let attacker = a < h;
            let ts = chain.stamp(
                net,
                epoch,
                if attacker { stamp } else { Stamp::Honest },
                jitter,
            );
            // A late stamp is released when it is no longer ahead of the clock.
            let release = now.max(ts.saturating_sub(net.drift_ms));
            chain.push(net, (epoch, ts, attacker, best), release);
            first_release.get_or_insert(release);
            last_release = release;
            continue;
        }
        let tip = chain.height();
        if snipe && tip > 1 && !chain.attacker[tip] && on_parent < chain.scores[tip] {
            let ts = chain.stamp(net, epoch, stamp, jitter);
            let release = now.max(ts.saturating_sub(net.drift_ms));
            chain.replace_tip(net, (epoch, ts, true, on_parent), release);
            snipes += 1;
            last_release = release;
        }
    }
    let attacker = chain.attacker[1..].iter().filter(|a| **a).count();
    Sniped {
        share_of_blocks: attacker as f64 / SNIPE_BLOCKS as f64,
        snipes,
        targets: fold_range((f64::MAX, f64::MIN), &chain.log2_targets(1)),
        mean_block_ms: (last_release - first_release.unwrap_or(0)) as f64
            / (SNIPE_BLOCKS - 1) as f64,
    }
}

/// Playing fair, with timestamps as early or as late as allowed, a miner's share of the blocks
/// is its share of the space: the best proof of an epoch wins, wherever the target is. The tie
/// rule (equal work, then the lower score, then the lower hash) lets it do better: a sibling
/// of an honest tip from a *later* epoch, with a lower score, has the same work (same parent,
/// same target) and takes the tip from every node (see `a_later_sibling_with_a_lower_score_
/// displaces_the_tip` in the root crate's tests). A miner that keeps scanning the tip's parent
/// until someone extends the tip gains measurably: 10 % of the space gets ~12 % of the
/// blocks, 30 % ~35 %, 40 % ~45 %, the honest miners losing the sniped blocks. This test
/// pins that figure (an open finding of issue 16, not a property to keep): the gain is
/// bounded above by 0.1 of the blocks because a snipe needs, before the tip is extended (about
/// one epoch in two), a proof scoring below the tip's (whose mean is about half the target).
/// The rate of the chain and its target band are unaffected.
#[test]
fn fair_mining_earns_the_space_share_and_tip_sniping_is_bounded() {
    let net = Net::dev();
    let target_ms = net.params.target_block_time_ms as f64;
    for (i, share) in [0.1, 0.3, 0.4].into_iter().enumerate() {
        let seed = 70 + i as u64;
        for stamp in [Stamp::Honest, Stamp::Latest, Stamp::Earliest] {
            let fair = snipe_run(&net, seed, share, stamp, false);
            println!("{:.0} % fair, stamped {stamp:?}: {fair:?}", share * 100.0);
            // 3,000 blocks: the share's standard deviation is under 0.009.
            assert!(
                (fair.share_of_blocks - share).abs() <= 0.03,
                "{share} {stamp:?}: {fair:?}"
            );
            assert_eq!(fair.snipes, 0);
        }
        let sniped = snipe_run(&net, seed, share, Stamp::Honest, true);
        println!("{:.0} % sniping: {sniped:?}", share * 100.0);
        let gain = sniped.share_of_blocks - share;
        assert!(gain > 0.01 && gain <= 0.1, "{share}: {sniped:?}");
        assert!(sniped.snipes > 0);
        assert!(
            (sniped.mean_block_ms / target_ms - 1.0).abs() < 0.02,
            "{sniped:?}"
        );
        assert!(
            sniped.targets.0 >= -2.0 && sniped.targets.1 <= 2.0,
            "{sniped:?}"
        );
    }
}
