//! Figures of the simulator running real nodes (`docs/simulation.md`):
//!
//! - `miners`: 3 mining dev nodes on a line of 50 ms links for 1 virtual hour: the ratio of
//!   virtual to wall time (goal: at least 500x on the 2-core reference machine);
//! - `idle100`: 100 nodes in a random 8-regular topology, idle for 10 virtual minutes: wall
//!   time and peak memory.
//!
//! Each scenario runs in a process of its own (this binary re-runs itself), so each peak
//! memory figure is that scenario's alone. `cargo bench -p spacetime-sim --bench simulation`
//! runs both at full size; `-- --smoke` runs both at a tiny size (CI runs that to keep the
//! benchmark's own checks honest); `-- miners` or `-- idle100` runs one.

use std::process::Command;
use std::time::{Duration, Instant};

use spacetime_sim::{LinkParams, NodeSpec, Sim, Topology};

struct Size {
    miners_virtual: Duration,
    idle_nodes: usize,
    idle_virtual: Duration,
}

const FULL: Size = Size {
    miners_virtual: Duration::from_secs(3600),
    idle_nodes: 100,
    idle_virtual: Duration::from_secs(600),
};

const SMOKE: Size = Size {
    miners_virtual: Duration::from_secs(60),
    idle_nodes: 12,
    idle_virtual: Duration::from_secs(60),
};

/// The process's peak resident memory, from /proc (Linux).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn miners(size: &Size) {
    let wall = Instant::now();
    let mut sim = Sim::new(1).expect("simulator");
    sim.net()
        .set_default_params(LinkParams::with_latency(Duration::from_millis(50)));
    sim.add_nodes(3, &NodeSpec::miner());
    sim.connect(Topology::Line).expect("line");
    sim.start_all().expect("nodes start");
    let setup = wall.elapsed();
    let run = Instant::now();
    sim.run_for(size.miners_virtual);
    let ran = run.elapsed();
    let mut heights = Vec::new();
    for i in 0..3 {
        let tip = sim.tip(i).expect("tip");
        let peers = sim.connected_peers(i).expect("peers").len();
        assert!(tip.height > 0, "node {i} mined nothing");
        assert_eq!(peers, 2, "node {i} is not connected to both others");
        heights.push(tip.height);
    }
    let ratio = size.miners_virtual.as_secs_f64() / ran.as_secs_f64();
    println!(
        "miners: 3 mining dev nodes, line of 50 ms links, {:.0} virtual s in {:.3} wall s \
         (setup {:.3} s): {ratio:.0}x virtual/wall (goal >= 500x, ratio to goal {:.2}); \
         heights {heights:?}, {} trace events, peak RSS {} MiB",
        size.miners_virtual.as_secs_f64(),
        ran.as_secs_f64(),
        setup.as_secs_f64(),
        ratio / 500.0,
        sim.trace().len(),
        peak_rss_bytes().unwrap_or(0) >> 20,
    );
}

fn idle(size: &Size) {
    let wall = Instant::now();
    let n = size.idle_nodes;
    let mut sim = Sim::new(2).expect("simulator");
    sim.net()
        .set_default_params(LinkParams::with_latency(Duration::from_millis(50)));
    sim.add_nodes(n, &NodeSpec::full());
    sim.connect(Topology::RandomRegular(8.min(n - 1) & !1))
        .expect("random regular graph");
    sim.start_all().expect("nodes start");
    let setup = wall.elapsed();
    let run = Instant::now();
    sim.run_for(size.idle_virtual);
    let ran = run.elapsed();
    let mut min_peers = usize::MAX;
    for i in 0..n {
        min_peers = min_peers.min(sim.connected_peers(i).expect("peers").len());
    }
    assert!(
        min_peers >= 8.min(n - 1),
        "a node has only {min_peers} peers"
    );
    let sessions = sim.net().stats().live_connections;
    println!(
        "idle{n}: {n} idle nodes, random 8-regular, 50 ms links, {:.0} virtual s in {:.3} wall s \
         (setup {:.3} s, {:.0}x virtual/wall); {sessions} live connections, fewest peers \
         {min_peers}; peak RSS {} MiB ({} KiB per node)",
        size.idle_virtual.as_secs_f64(),
        ran.as_secs_f64(),
        setup.as_secs_f64(),
        size.idle_virtual.as_secs_f64() / ran.as_secs_f64(),
        peak_rss_bytes().unwrap_or(0) >> 20,
        peak_rss_bytes().unwrap_or(0) / 1024 / n as u64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let size = if smoke { &SMOKE } else { &FULL };
    let chosen: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| matches!(*a, "miners" | "idle100"))
        .collect();
    match chosen.as_slice() {
        ["miners"] => miners(size),
        ["idle100"] => idle(size),
        _ => {
            // Each scenario in its own process, for its own peak memory.
            let me = std::env::current_exe().expect("own path");
            for scenario in ["miners", "idle100"] {
                let mut cmd = Command::new(&me);
                cmd.arg(scenario);
                if smoke {
                    cmd.arg("--smoke");
                }
                let status = cmd.status().expect("benchmark process");
                assert!(status.success(), "{scenario} failed");
            }
        }
    }
}
