//! The difficulty rule alone, simulated on the `dev` network's parameters: how fast ASERT
//! recovers the 2 s block time after the plotted space doubles or halves, and how far miners
//! who lie about timestamps (within the consensus rules) can move it.
//!
//! Model (floats are fine here, never in `src/`): time advances in epochs of `epoch_ms`. In
//! each epoch after the tip's, the network's best proof wins with probability
//! `1 - (1 - target / 2^256)^n`, where `n` (the eligible proofs per epoch) is proportional to
//! the total plotted space. The best proof is uniformly distributed over the space, so a miner
//! with a fraction `f` of the space owns the winning proof with probability `f`. Every winner
//! is published at once and everyone builds on it (no forks: the rule is under test, not fork
//! choice). Each block is checked against the timestamp rules: its epoch is above its
//! parent's, its timestamp lies in its epoch, above the median of the last 11 timestamps and
//! at most `max_future_drift_ms` ahead of the true time. The target of every block comes from
//! `spacetime::difficulty::next_target`.
//!
//! Run with `--nocapture` to see the figures quoted in `docs/difficulty.md`.

use spacetime::GenesisConfig;
use spacetime::difficulty::{AsertParams, next_target};
use spacetime::{Target, TimestampMs};
use spacetime_sim::SimRng;

/// Mining starts one day after the genesis time (the anchor is block 1, not genesis).
const FIRST_EPOCH: u64 = 86_400;
/// Honest timestamps are the start of the epoch plus up to this many milliseconds.
const JITTER_MS: u64 = 20;

/// How the owner of a winning proof stamps its block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stamp {
    /// Start of the current epoch plus a few milliseconds, released at once.
    Honest,
    /// The latest timestamp of the current epoch: its last millisecond (within the drift).
    Latest,
    /// The earliest allowed: the start of the epoch or just above the median of the last 11.
    Earliest,
    /// The furthest future epoch the drift admits, stamped as late as the drift allows. The
    /// challenge of a future epoch is known from the parent alone, so a miner can prepare a
    /// proof for it in advance; this maximises the timestamp lead (worst case for the rule).
    FutureEpoch,
}

/// Which epoch honest miners scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// Only the current epoch (the miner loop as designed: challenge, scan, block, per epoch).
    /// A tip stamped in a future epoch blocks them until that epoch has passed.
    CurrentEpoch,
    /// The current epoch, or when the tip lies in the future, the epoch after the tip as soon
    /// as it starts within the drift: they follow a future-stamped tip without waiting.
    CatchUp,
}

/// The `dev` network's timing parameters.
struct Net {
    genesis_ms: TimestampMs,
    epoch_ms: u64,
    drift_ms: u64,
    params: AsertParams,
}

impl Net {
    fn dev() -> Self {
        let config = GenesisConfig::builtin("dev").unwrap();
        assert_eq!(config.network.epoch_ms, 1_000);
        assert_eq!(config.network.target_block_time_ms, 2_000);
        assert_eq!(config.difficulty.half_life_ms, 60_000);
        assert_eq!(config.network.max_future_drift_ms, 900);
        Self {
            genesis_ms: config.network.genesis_time_ms,
            epoch_ms: config.network.epoch_ms,
            drift_ms: config.network.max_future_drift_ms,
            params: AsertParams::from_genesis(&config),
        }
    }

    fn epoch_start(&self, epoch: u64) -> TimestampMs {
        self.genesis_ms + epoch * self.epoch_ms
    }

    fn epoch_of(&self, ts: TimestampMs) -> u64 {
        (ts - self.genesis_ms) / self.epoch_ms
    }

    /// Eligible proofs per epoch that give exactly one block per target block time at the
    /// initial target: `p = epoch_ms / target_block_time_ms = 1/2` per epoch.
    fn equilibrium_proofs(&self) -> f64 {
        let q = target_fraction(self.params.initial_target);
        let p = self.epoch_ms as f64 / self.params.target_block_time_ms as f64;
        (1.0 - p).ln() / (-q).ln_1p()
    }
}

/// `target / 2^256` as a float.
fn target_fraction(t: Target) -> f64 {
    t.0.iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b)) / 2f64.powi(256)
}

/// A uniform float in `[0, 1)`.
fn uniform(rng: &mut SimRng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// One chain, from genesis: what the rules see and what really happened.
struct Chain<'a> {
    net: &'a Net,
    /// Block timestamps by height (index 0 = genesis).
    timestamps: Vec<TimestampMs>,
    /// True release times by height.
    released: Vec<TimestampMs>,
    /// Which blocks a liar stamped.
    lied: Vec<bool>,
    /// Targets by height.
    targets: Vec<Target>,
    tip_epoch: u64,
    /// The last epoch of true time whose draw has happened.
    clock_epoch: u64,
    /// The last epoch honest miners scanned on the current tip.
    scanned_epoch: u64,
    policy: Policy,
    /// Target of the next block and its per-epoch win probability for the current space.
    next: Target,
    win_p: f64,
    proofs: f64,
    /// Largest ratio between the target a lie produced and the honest one, as log2.
    max_lie_log2: f64,
}

impl<'a> Chain<'a> {
    fn new(net: &'a Net, proofs: f64, policy: Policy) -> Self {
        let mut chain = Self {
            net,
            timestamps: vec![net.genesis_ms],
            released: vec![net.genesis_ms],
            lied: vec![false],
            targets: vec![net.params.initial_target],
            tip_epoch: FIRST_EPOCH - 1,
            clock_epoch: FIRST_EPOCH - 1,
            scanned_epoch: FIRST_EPOCH - 1,
            policy,
            next: Target::ZERO,
            win_p: 0.0,
            proofs,
            max_lie_log2: 0.0,
        };
        chain.retarget();
        chain
    }

    fn height(&self) -> u64 {
        self.timestamps.len() as u64 - 1
    }

    fn set_proofs(&mut self, proofs: f64) {
        self.proofs = proofs;
        self.retarget();
    }

    /// The real rule, then the model's win probability for it.
    fn retarget(&mut self) {
        let h = self.height();
        let anchor = self.timestamps.get(1).copied().unwrap_or(0);
        self.next = next_target(&self.net.params, anchor, h, self.timestamps[h as usize]);
        let q = target_fraction(self.next);
        self.win_p = -(self.proofs * (-q).ln_1p()).exp_m1();
    }

    /// The median of the last 11 timestamps (fewer near genesis; upper median).
    fn median_time_past(&self) -> TimestampMs {
        let from = self.timestamps.len().saturating_sub(11);
        let mut last: Vec<_> = self.timestamps[from..].to_vec();
        last.sort_unstable();
        last[last.len() / 2]
    }

    /// Advances true time epoch by epoch until the next block; `liar` is the cheater's share
    /// of the space and its strategy.
    fn mine_block(&mut self, rng: &mut SimRng, liar: (f64, Stamp)) {
        let net = self.net;
        loop {
            self.clock_epoch += 1;
            let clock = self.clock_epoch;
            // Three draws per epoch whatever happens, so strategies do not shift the stream.
            let win = uniform(rng) < self.win_p;
            let liar_owns = uniform(rng) < liar.0;
            let jitter = rng.below(JITTER_MS);
            let now = net.epoch_start(clock) + jitter;
            let epoch = match self.policy {
                Policy::CurrentEpoch => clock,
                Policy::CatchUp => clock.max(self.scanned_epoch + 1),
            };
            if epoch <= self.tip_epoch || net.epoch_start(epoch) > now + net.drift_ms {
                continue;
            }
            self.scanned_epoch = epoch;
            if !win {
                continue;
            }
            let start = net.epoch_start(epoch);
            let honest = start + jitter;
            let strategy = if liar_owns { liar.1 } else { Stamp::Honest };
            let (block_epoch, ts) = match strategy {
                Stamp::Honest => (epoch, honest),
                Stamp::Latest => (epoch, (start + net.epoch_ms - 1).min(now + net.drift_ms)),
                Stamp::Earliest => (epoch, start.max(self.median_time_past() + 1)),
                Stamp::FutureEpoch => {
                    let far = net.epoch_of(now + net.drift_ms);
                    let far_end = net.epoch_start(far) + net.epoch_ms - 1;
                    (far, far_end.min(now + net.drift_ms))
                }
            };
            self.push(block_epoch, ts, now, honest);
            return;
        }
    }

    /// Checks the timestamp rules and appends the block, released at `now`; `honest` is the
    /// timestamp an honest miner would have used.
    fn push(&mut self, epoch: u64, ts: TimestampMs, now: TimestampMs, honest: TimestampMs) {
        let net = self.net;
        assert!(epoch > self.tip_epoch, "epoch must increase");
        assert_eq!(net.epoch_of(ts), epoch, "timestamp outside its epoch");
        assert!(
            ts > self.median_time_past(),
            "timestamp not above the median of 11"
        );
        assert!(
            ts <= now + net.drift_ms,
            "timestamp beyond the future drift"
        );
        let lied = ts != honest;
        if lied {
            // The lie moves only its child's target; compare with the honest stamp.
            let h = self.height() + 1;
            let anchor = self.timestamps.get(1).copied().unwrap_or(ts);
            let lie = next_target(&net.params, anchor, h, ts);
            let straight = next_target(&net.params, anchor, h, honest);
            let ratio = (target_fraction(lie) / target_fraction(straight))
                .log2()
                .abs();
            self.max_lie_log2 = self.max_lie_log2.max(ratio);
        }
        self.targets.push(self.next);
        self.timestamps.push(ts);
        self.released.push(now);
        self.lied.push(lied);
        self.tip_epoch = epoch;
        self.scanned_epoch = epoch;
        self.retarget();
    }

    /// Mean true time between blocks `from` and `to` (heights), in ms.
    fn mean_block_time(&self, from: u64, to: u64) -> f64 {
        (self.released[to as usize] - self.released[from as usize]) as f64 / (to - from) as f64
    }
}

/// Ensemble size and lengths of the space-change scenario.
const RUNS: usize = 300;
const CHANGE_AT: u64 = 200;
const AFTER: u64 = 300;
const WINDOW: u64 = 10;
/// The asserted recovery bound: five half-lives' worth of blocks (60 s / 2 s = 30 blocks each).
const RECOVERY_BOUND: u64 = 150;

/// Runs `RUNS` chains that switch from the equilibrium space to `factor` times it at block
/// `CHANGE_AT`, and returns the ensemble mean block time per block from the change on, in
/// windows of `WINDOW` blocks, plus the pre-change mean.
fn space_change(net: &Net, seed: u64, factor: f64) -> (f64, Vec<f64>) {
    let n0 = net.equilibrium_proofs();
    let mut master = SimRng::new(seed);
    let mut before = 0.0;
    let windows = (AFTER / WINDOW) as usize;
    let mut sums = vec![0.0; windows];
    for run in 0..RUNS {
        let mut rng = master.fork(run as u64);
        let mut chain = Chain::new(net, n0, Policy::CurrentEpoch);
        while chain.height() < CHANGE_AT {
            chain.mine_block(&mut rng, (0.0, Stamp::Honest));
        }
        chain.set_proofs(n0 * factor);
        while chain.height() < CHANGE_AT + AFTER {
            chain.mine_block(&mut rng, (0.0, Stamp::Honest));
        }
        // Skip the first 50 blocks: block 1 is the anchor, not a measured interval.
        before += chain.mean_block_time(50, CHANGE_AT);
        for (w, sum) in sums.iter_mut().enumerate() {
            let from = CHANGE_AT + w as u64 * WINDOW;
            *sum += chain.mean_block_time(from, from + WINDOW);
        }
    }
    let runs = RUNS as f64;
    (before / runs, sums.into_iter().map(|s| s / runs).collect())
}

/// Blocks after the change until the windowed mean enters, and stays in, `target +- 10 %`.
fn blocks_to_recover(windows: &[f64], target_ms: f64) -> Option<u64> {
    let ok = |m: &f64| (m / target_ms - 1.0).abs() <= 0.10;
    let last_bad = windows.iter().rposition(|m| !ok(m));
    match last_bad {
        None => Some(0),
        Some(i) if i + 1 < windows.len() => Some((i as u64 + 1) * WINDOW),
        Some(_) => None,
    }
}

#[test]
fn recovers_block_time_after_space_doubles_or_halves() {
    let net = Net::dev();
    let target_ms = net.params.target_block_time_ms as f64;
    for (factor, seed) in [(2.0, 1), (0.5, 2)] {
        let (before, windows) = space_change(&net, seed, factor);
        let recovered = blocks_to_recover(&windows, target_ms);
        let shown: Vec<String> = windows.iter().map(|m| format!("{m:.0}")).collect();
        println!(
            "space x{factor}: mean block time before {before:.0} ms; after the change, \
             per {WINDOW} blocks (mean of {RUNS} runs): {}; within 10 % from block {recovered:?}",
            shown.join(" ")
        );
        assert!(
            (before / target_ms - 1.0).abs() < 0.05,
            "not at equilibrium before the change: {before}"
        );
        // The change is visible at first, in the expected direction.
        if factor > 1.0 {
            assert!(windows[0] < 0.85 * target_ms);
        } else {
            assert!(windows[0] > 1.15 * target_ms);
        }
        let recovered = recovered.expect("never recovered");
        assert!(
            recovered <= RECOVERY_BOUND,
            "space x{factor}: recovered only after {recovered} blocks"
        );
    }
}

/// Blocks per constant-space run in the lying-miner scenario.
const LONG_RUN: u64 = 5_000;

/// What one constant-space run with a lying miner measured.
struct LongRun {
    /// Mean true block time over blocks 1..=LONG_RUN, ms.
    mean_ms: f64,
    /// Range and mean of log2(target / initial target) over all blocks.
    lo: f64,
    hi: f64,
    mean_log2: f64,
    /// Largest |log2| ratio between a lying block's child's target and the honest one.
    max_lie_log2: f64,
    /// Blocks whose timestamp differs from the honest one.
    lies: usize,
}

/// Runs `LONG_RUN` blocks at the equilibrium space with `liar` = (share, strategy).
fn long_run(net: &Net, seed: u64, policy: Policy, liar: (f64, Stamp)) -> LongRun {
    let t0 = target_fraction(net.params.initial_target);
    let mut rng = SimRng::new(seed);
    let mut chain = Chain::new(net, net.equilibrium_proofs(), policy);
    while chain.height() < LONG_RUN {
        chain.mine_block(&mut rng, liar);
    }
    let log2s: Vec<f64> = chain.targets[1..]
        .iter()
        .map(|t| (target_fraction(*t) / t0).log2())
        .collect();
    let (lo, hi) = log2s
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    let run = LongRun {
        mean_ms: chain.mean_block_time(1, LONG_RUN),
        lo,
        hi,
        mean_log2: log2s.iter().sum::<f64>() / log2s.len() as f64,
        max_lie_log2: chain.max_lie_log2,
        lies: chain.lied.iter().filter(|l| **l).count(),
    };
    println!(
        "{:?} with {:.0} % of the space, honest miners {policy:?}: {} blocks stamped; mean \
         block time {:.1} ms; target / initial in [2^{:.3}, 2^{:.3}], mean 2^{:.4}; largest \
         effect of one lie on its child's target 2^{:.4}",
        liar.1,
        liar.0 * 100.0,
        run.lies,
        run.mean_ms,
        run.lo,
        run.hi,
        run.mean_log2,
        run.max_lie_log2
    );
    run
}

#[test]
fn lying_timestamps_stay_within_the_rules_bound() {
    let net = Net::dev();
    let target_ms = net.params.target_block_time_ms as f64;
    let half_life = net.params.half_life_ms as f64;
    // Bound on the long-run rate, from ASERT's absolute schedule: the target after block N
    // is t0 * 2^(e / half_life) with e = ts(N) - ts(1) - T (N - 1) (to within 1/65536 of a
    // half-life and the cubic's 1.2e-4, together under 11 ms here). The target band asserted
    // below, [t0/4, 4 t0], gives |e| <= 2 half-lives. A timestamp lies between JITTER_MS
    // before and the drift after its true release time, so the true elapsed time is
    // T (N - 1) +- (2 half_life + drift + jitter + 11 ms): over 5,000 blocks, +-25 ms (1.25 %).
    let slack = 2.0 * half_life + (net.drift_ms + JITTER_MS + 11) as f64;
    let rate_bound = slack / (LONG_RUN - 1) as f64;
    println!("rate bound: {target_ms:.0} +- {rate_bound:.1} ms");
    let cases = [
        (Policy::CurrentEpoch, 0.0, Stamp::Honest),
        (Policy::CurrentEpoch, 0.3, Stamp::Latest),
        (Policy::CurrentEpoch, 0.5, Stamp::Latest),
        (Policy::CurrentEpoch, 0.3, Stamp::Earliest),
        (Policy::CurrentEpoch, 0.5, Stamp::Earliest),
        (Policy::CurrentEpoch, 0.1, Stamp::FutureEpoch),
        (Policy::CatchUp, 0.3, Stamp::FutureEpoch),
        (Policy::CatchUp, 0.5, Stamp::FutureEpoch),
    ];
    for (i, (policy, share, stamp)) in cases.into_iter().enumerate() {
        let run = long_run(&net, 100 + i as u64, policy, (share, stamp));
        assert!(
            run.lo >= -2.0 && run.hi <= 2.0,
            "{stamp:?} {share}: target left [t0/4, 4 t0]"
        );
        assert!(
            (run.mean_ms - target_ms).abs() <= rate_bound,
            "{stamp:?} {share}: mean block time {}",
            run.mean_ms
        );
        // A lie of d ms moves its child's target by 2^(d / half_life), never more: d is at most
        // the drift (0.9 s, 2^0.015), plus the cubic's error (1.7e-4 in log2) on either side.
        let max_lead = net.drift_ms as f64;
        assert!(run.max_lie_log2 <= max_lead / half_life + 4e-4);
        assert_eq!(run.lies > 0, share > 0.0);
    }
}

/// A block in a future epoch (allowed within the drift) shuts out the epochs before it for
/// miners that scan only the current epoch. With a drift of several epochs this stalled the
/// chain (a liar with share `f` made each block take `1 + f * drift / epoch_ms` epochs, and above
/// `f = 0.2` on the old 5 s dev drift the target saturated at `Target::MAX`). Genesis now
/// requires `max_future_drift_ms < epoch_ms`, so a block can claim at most the epoch about to
/// start: even liars with 30 % and 50 % of the space, against honest miners that only scan the
/// current epoch, leave the block time on schedule and the target in its band.
#[test]
fn future_epoch_claims_cannot_stall_miners_that_only_scan_the_current_epoch() {
    let net = Net::dev();
    assert!(net.drift_ms < net.epoch_ms);
    let target_ms = net.params.target_block_time_ms as f64;
    let half_life = net.params.half_life_ms as f64;
    let slack = 2.0 * half_life + (net.drift_ms + JITTER_MS + 11) as f64;
    let rate_bound = slack / (LONG_RUN - 1) as f64;
    for (i, share) in [0.3, 0.5].into_iter().enumerate() {
        let run = long_run(
            &net,
            200 + i as u64,
            Policy::CurrentEpoch,
            (share, Stamp::FutureEpoch),
        );
        assert!(
            (run.mean_ms - target_ms).abs() <= rate_bound,
            "{share}: mean block time {}",
            run.mean_ms
        );
        assert!(
            run.lo >= -2.0 && run.hi <= 2.0,
            "{share}: target left [t0/4, 4 t0]"
        );
    }
}

#[test]
fn simulation_is_deterministic() {
    let net = Net::dev();
    let run = || {
        let mut rng = SimRng::new(99);
        let mut chain = Chain::new(&net, net.equilibrium_proofs(), Policy::CurrentEpoch);
        while chain.height() < 300 {
            chain.mine_block(&mut rng, (0.5, Stamp::FutureEpoch));
        }
        (chain.timestamps, chain.targets)
    };
    assert_eq!(run(), run());
}
