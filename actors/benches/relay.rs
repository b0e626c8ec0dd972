//! Relay between ten real `spacetime node` processes over loopback TCP, in the topology of
//! `tests/relay_processes.rs` (a ring with chords 0-5 and 3-8, at most four peers each; nodes 2
//! and 7 mine, four hops apart). Each figure stands beside its ceiling, measured in the same
//! run:
//!
//! - block propagation: for each block of the final main chain, the time from its commit at
//!   the miner to its commit at the last of the other nine nodes, from the instants the
//!   benchmark read their per-block status lines (`height H | block HASH | ...`; a node that
//!   reached the block by a reorg or a later block counts from that line). p50, p95 and max
//!   over blocks; goal p95 < 100 ms. Ceiling: the one-hop time (the miner's commit to a
//!   direct neighbour's), and its median times the four hops to the farthest node.
//! - whole block bodies and compact blocks each node received per block mined
//!   (`spacetime_p2p_messages_received_total` by type), with relay duplicates and fetches.
//! - transfers: N transfers submitted at non-mining node 4 by a protocol client (Noise, Hello,
//!   `Txs`), timed until every node's `spacetime_mempool_transfers` (polled every 20 ms)
//!   holds them all, with the miners restarted without mining so that nothing is mined away;
//!   transfers/s end to end, beside the submitting node's own admission.
//!
//! `cargo bench --bench relay`: 60 s of mining, 10,000 transfers; `-- --smoke`: 8 s and 1,000;
//! `--mining-secs N` and `--transfers N` change the sizes. Exits non-zero when the nodes do not
//! end on one tip, too few blocks reach every node, a node has more than four peers, or the
//! transfers do not reach every pool within a minute.

#[path = "../tests/common/sync_chain.rs"]
mod sync_chain;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use spacetime::Transfer;
use sync_chain::{
    BlockLine, PeerClient, RELAY_MINERS, RELAY_NODES, RELAY_SUBMIT, RelayNet, block_lines,
    export_chain, metric_in, relay_hops, series_in, transfers_at,
};

/// Transfers each sender sends (below the mempool's 64 per sender).
const PER_SENDER: usize = 50;
/// Longest the transfers may take to reach every pool.
const TRANSFER_DEADLINE: Duration = Duration::from_secs(60);
/// Goal: p95 of the miner-to-last-node time.
const GOAL_P95_MS: f64 = 100.0;
/// Fewest blocks measured at every node for a valid run.
const MIN_BLOCKS: usize = 2;

/// Sizes of one invocation.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    mining: Duration,
    transfers: usize,
}

const FULL: Sizes = Sizes {
    mining: Duration::from_secs(60),
    transfers: 10_000,
};

const SMOKE: Sizes = Sizes {
    mining: Duration::from_secs(8),
    transfers: 1_000,
};

fn sizes(args: &[String]) -> Result<(Sizes, bool), String> {
    let smoke = args.iter().any(|a| a == "--smoke");
    let mut sizes = if smoke { SMOKE } else { FULL };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{a} takes a number"))
        };
        match a.as_str() {
            "--mining-secs" => sizes.mining = Duration::from_secs(value()?.max(1)),
            "--transfers" => sizes.transfers = value()?.max(1) as usize,
            _ => {}
        }
    }
    Ok((sizes, smoke))
}

/// Quantile `q` (0 to 1) of sorted `xs`, nearest rank.
fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    xs[rank - 1]
}

/// `p50 / p95 / max` of `xs` in ms.
fn spread(xs: &[f64]) -> (f64, f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    (
        quantile(&v, 0.5),
        quantile(&v, 0.95),
        v.last().copied().unwrap_or(f64::NAN),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What the block phase measured.
struct BlockFigures {
    /// Miner commit to last node commit, per block, ms.
    last: Vec<f64>,
    /// The same for blocks no node took only through a reorg or a descendant (every node's
    /// first commit at or above the block's height was the block itself).
    last_unraced: Vec<f64>,
    /// Miner commit to each direct neighbour's commit, ms.
    one_hop: Vec<f64>,
    /// Miner commit to each node's commit, by planned hops.
    by_hops: BTreeMap<usize, Vec<f64>>,
    /// Blocks of the final chain.
    final_blocks: usize,
    /// Of them, the ones whose miner printed its commit before the cutoff.
    with_miner_line: usize,
}

/// Per-block times from the status lines read before `cutoff` (the miners' stop), over the
/// final main chain `chain` (height, hash, miner node).
fn block_figures(net: &RelayNet, chain: &[(u64, String, usize)], cutoff: Instant) -> BlockFigures {
    let hops = relay_hops();
    let lines: Vec<Vec<(Instant, BlockLine)>> = (0..RELAY_NODES)
        .map(|i| block_lines(&net.lines[i], Some(cutoff)))
        .collect();
    let on_chain: BTreeSet<&str> = chain.iter().map(|(_, h, _)| h.as_str()).collect();
    let mut f = BlockFigures {
        last: Vec::new(),
        last_unraced: Vec::new(),
        one_hop: Vec::new(),
        by_hops: BTreeMap::new(),
        final_blocks: chain.len(),
        with_miner_line: 0,
    };
    for (height, hash, miner) in chain {
        // The miner's own line for this block.
        let Some(t0) = lines[*miner]
            .iter()
            .find(|(_, l)| l.hash == *hash)
            .map(|(t, _)| *t)
        else {
            // Mined after the cutoff, or its line was folded into a later one.
            continue;
        };
        f.with_miner_line += 1;
        // Whether some node first committed another block at this height or above (it took
        // this one only by a reorg or with a descendant: a race, not relay).
        let raced = (0..RELAY_NODES).filter(|n| n != miner).any(|n| {
            lines[n]
                .iter()
                .find(|(_, l)| l.height >= *height)
                .is_some_and(|(_, l)| l.hash != *hash)
        });
        // Each other node: its first line at this block or a descendant on the final chain.
        let times: Vec<(usize, Option<Instant>)> = (0..RELAY_NODES)
            .filter(|n| n != miner)
            .map(|n| {
                let t = lines[n]
                    .iter()
                    .find(|(_, l)| l.height >= *height && on_chain.contains(l.hash.as_str()))
                    .map(|(t, _)| *t);
                (n, t)
            })
            .collect();
        let delay = |t: Instant| ms(t.saturating_duration_since(t0));
        for &(n, t) in &times {
            if let Some(t) = t {
                f.by_hops.entry(hops[*miner][n]).or_default().push(delay(t));
                if hops[*miner][n] == 1 {
                    f.one_hop.push(delay(t));
                }
            }
        }
        if let Some(last) = times
            .iter()
            .map(|(_, t)| *t)
            .collect::<Option<Vec<Instant>>>()
            .and_then(|ts| ts.into_iter().max())
        {
            f.last.push(delay(last));
            if !raced {
                f.last_unraced.push(delay(last));
            }
        }
    }
    f
}

/// Relay counters of one node's metrics page.
struct BodyCounts {
    /// Whole blocks received (pushes, fetches and sync downloads).
    received: f64,
    /// Compact blocks received.
    compact: f64,
    duplicates: f64,
    fetched: f64,
    synced: f64,
}

fn body_counts(text: &str) -> BodyCounts {
    let block = |name: &str| series_in(text, name, "kind=\"block\"").unwrap_or(0.0);
    let messages = |kind: &str| {
        series_in(
            text,
            "spacetime_p2p_messages_received_total",
            &format!("type=\"{kind}\""),
        )
        .unwrap_or(0.0)
    };
    BodyCounts {
        received: messages("block_proposal") + messages("block"),
        compact: messages("compact_block"),
        duplicates: block("spacetime_relay_duplicates_total"),
        fetched: block("spacetime_relay_items_fetched_total"),
        synced: metric_in(text, "spacetime_sync_blocks_received_total").unwrap_or(0.0),
    }
}

/// What the transfer phase measured.
struct TransferFigures {
    n: usize,
    /// Since the first `Txs` was sent, when each node's pool held them all.
    arrivals: Vec<(usize, Option<Duration>)>,
}

impl TransferFigures {
    fn submit_secs(&self) -> Option<f64> {
        self.arrivals
            .iter()
            .find(|(i, _)| *i == RELAY_SUBMIT)
            .and_then(|(_, t)| *t)
            .map(|t| t.as_secs_f64())
    }

    fn all_secs(&self) -> Option<f64> {
        self.arrivals
            .iter()
            .map(|(_, t)| *t)
            .collect::<Option<Vec<Duration>>>()
            .and_then(|ts| ts.into_iter().max())
            .map(|t| t.as_secs_f64())
    }
}

/// Submits `n` transfers at [`RELAY_SUBMIT`] and times their arrival in every pool.
fn transfer_phase(net: &RelayNet, n: usize) -> Result<TransferFigures, String> {
    let chain_id = net.genesis.chain_id;
    let nonces = n.div_ceil(net.senders.len()) as u64;
    let transfers: Vec<Transfer> = (0..nonces)
        .flat_map(|i| transfers_at(&net.senders, chain_id, i))
        .take(n)
        .collect();
    let node = net.node(RELAY_SUBMIT);
    let addr = node.listen.ok_or("the submitting node does not listen")?;
    let mut client = PeerClient::connect(addr, &net.genesis)?;
    let want = n as f64;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let nodes: Vec<(usize, &sync_chain::NodeProc)> = net.running().collect();
    let t0 = Instant::now();
    let arrivals = std::thread::scope(|s| {
        let pollers: Vec<_> = nodes
            .iter()
            .map(|&(i, node)| {
                let done = &done;
                s.spawn(move || {
                    let arrived = loop {
                        if node
                            .metric("spacetime_mempool_transfers")
                            .is_some_and(|v| v >= want)
                        {
                            break Some(t0.elapsed());
                        }
                        if t0.elapsed() > TRANSFER_DEADLINE {
                            break None;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    };
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    (i, arrived)
                })
            })
            .collect();
        let sent = client.send_transfers(&transfers);
        // The client stays connected (answering pings) until every poller is done.
        while sent.is_ok() && done.load(std::sync::atomic::Ordering::SeqCst) < nodes.len() {
            if let Err(e) = client.pump(Duration::from_millis(50)) {
                eprintln!("transfer client: {e}");
                break;
            }
        }
        let arrivals: Vec<(usize, Option<Duration>)> = pollers
            .into_iter()
            .map(|p| p.join().unwrap_or((usize::MAX, None)))
            .collect();
        sent.map(|()| arrivals)
    })?;
    client.close();
    Ok(TransferFigures { n, arrivals })
}

/// Runs the benchmark; the failures.
fn run(args: &[String]) -> Result<Vec<String>, String> {
    let (sizes, smoke) = sizes(args)?;
    let mut failures = Vec::new();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let senders = sizes.transfers.div_ceil(PER_SENDER);
    let begun = Instant::now();
    let mut net = RelayNet::start(dir.path(), senders)?;
    let mining_from = Instant::now();
    let counts = net.wait_connected(Duration::from_secs(20))?;
    if let Err(e) = net.check_peer_bound() {
        failures.push(e.lines().next().unwrap_or("").to_owned());
    }
    eprintln!(
        "{RELAY_NODES} nodes up in {:.1} s, peers {counts:?}; mining for {} s",
        begun.elapsed().as_secs_f64(),
        sizes.mining.as_secs()
    );

    // Block phase.
    std::thread::sleep(sizes.mining.saturating_sub(mining_from.elapsed()));
    let peers_mining = net.check_peer_bound().unwrap_or_else(|e| {
        failures.push(e.lines().next().unwrap_or("").to_owned());
        net.peer_counts()
    });
    let won: Vec<(usize, f64)> = RELAY_MINERS
        .iter()
        .map(|&m| {
            let won = net.node(m).metric("spacetime_blocks_won_total");
            (m, won.unwrap_or(0.0))
        })
        .collect();
    let miner_bodies: Vec<(usize, BodyCounts)> = RELAY_MINERS
        .iter()
        .map(|&m| (m, body_counts(&net.node(m).metrics_text())))
        .collect();
    let cutoff = net.stop_miners()?;
    let mined_secs = mining_from.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let bodies: Vec<(usize, BodyCounts)> = net
        .running()
        .map(|(i, n)| (i, body_counts(&n.metrics_text())))
        .chain(miner_bodies)
        .collect();
    net.restart_miners_without_mining()?;
    let height = net.wait_converged(Duration::from_secs(60), Duration::from_secs(2))?;
    net.wait_connected(Duration::from_secs(20))?;

    // Transfer phase: nothing mines, every pool should end with all of them.
    let transfers = transfer_phase(&net, sizes.transfers)?;
    if transfers.all_secs().is_none() {
        failures.push(format!(
            "transfers: not in every pool within {} s: {:?}",
            TRANSFER_DEADLINE.as_secs(),
            transfers.arrivals
        ));
        for (i, t) in &transfers.arrivals {
            if t.is_none() {
                eprintln!("node {i}:\n{}", net.node(*i).relay_diagnostics());
            }
        }
    }
    net.stop_all()?;

    // One main chain everywhere.
    let chains: Vec<Vec<spacetime::Block>> = (0..RELAY_NODES)
        .map(|i| export_chain(&net.net, &net.data_dir(i)))
        .collect();
    let hashes: Vec<Vec<spacetime::Hash>> = chains
        .iter()
        .map(|c| c.iter().map(|b| b.hash()).collect())
        .collect();
    for (i, h) in hashes.iter().enumerate() {
        if *h != hashes[0] || h.len() as u64 != height {
            failures.push(format!(
                "node {i} ends on another chain: {} blocks, node 0 {}, converged height {height}",
                h.len(),
                hashes[0].len()
            ));
        }
    }
    let miner_of =
        |key: &spacetime::PublicKey| net.miner_keys.iter().position(|k| k.as_ref() == Some(key));
    let chain: Vec<(u64, String, usize)> = chains[0]
        .iter()
        .filter_map(|b| {
            miner_of(&b.header.miner).map(|m| (b.header.height, b.hash().to_string(), m))
        })
        .collect();
    let figures = block_figures(&net, &chain, cutoff);
    if figures.last.len() < MIN_BLOCKS {
        failures.push(format!(
            "blocks: only {} reached every node before the miners stopped (at least \
             {MIN_BLOCKS} wanted)",
            figures.last.len()
        ));
    }

    // Report.
    let total_won: f64 = won.iter().map(|(_, w)| w).sum();
    println!(
        "\nrelay between {RELAY_NODES} processes{} ({:.0} s of mining, {} transfers), in {:.0} s:",
        if smoke { ", smoke sizes" } else { "" },
        mined_secs,
        sizes.transfers,
        begun.elapsed().as_secs_f64()
    );
    println!(
        "blocks: {total_won} mined (by node: {won:?}), {} on the final chain of height \
         {height}, {} of them with the miner's commit line, {} seen by all {RELAY_NODES} nodes \
         before the miners stopped",
        figures.final_blocks,
        figures.with_miner_line,
        figures.last.len()
    );
    println!(
        "peers while mining: {peers_mining:?} (planned, with node 0's one free slot: at most 4)"
    );
    println!();
    println!(
        "{:<46} {:>8} {:>8} {:>8} {:>6}",
        "measure (ms)", "p50", "p95", "max", "n"
    );
    let row = |what: &str, xs: &[f64]| {
        let (p50, p95, max) = spread(xs);
        println!(
            "{what:<46} {p50:>8.1} {p95:>8.1} {max:>8.1} {:>6}",
            xs.len()
        );
    };
    row("block: miner commit -> last node commit", &figures.last);
    row(
        "  blocks no node took by a reorg or a descendant",
        &figures.last_unraced,
    );
    row(
        "ceiling: one hop (miner -> direct neighbour)",
        &figures.one_hop,
    );
    for (hops, xs) in &figures.by_hops {
        row(&format!("  miner -> node {hops} hop(s) away"), xs);
    }
    let max_hops = figures.by_hops.keys().max().copied().unwrap_or(0);
    let (hop50, _, _) = spread(&figures.one_hop);
    let (_, p95, _) = spread(&figures.last);
    let (_, p95_unraced, _) = spread(&figures.last_unraced);
    let verdict = |p: f64| if p < GOAL_P95_MS { "ok" } else { "ABOVE GOAL" };
    println!(
        "ceiling: one-hop p50 x {max_hops} hops = {:.1} ms; goal p95 < {GOAL_P95_MS:.0} ms: all \
         blocks {p95:.1} ms ({}), blocks not raced {p95_unraced:.1} ms ({}); {} of {} blocks \
         raced (the dev network lets both miners win most epochs: a node on the losing side \
         takes the winner with the next block, an epoch later)",
        hop50 * max_hops as f64,
        verdict(p95),
        verdict(p95_unraced),
        figures.last.len() - figures.last_unraced.len(),
        figures.last.len()
    );
    println!();
    println!("block bodies received per block mined (relay; sync downloads beside):");
    let mut per_block = Vec::new();
    let mut compact_per_block = Vec::new();
    for (i, b) in &bodies {
        // A miner receives only the other miner's blocks.
        let mined_by_others = total_won - won.iter().find(|(m, _)| m == i).map_or(0.0, |(_, w)| *w);
        let ratio = b.received / mined_by_others.max(1.0);
        per_block.push(ratio);
        compact_per_block.push(b.compact / mined_by_others.max(1.0));
        println!(
            "  node {i}: {:>4} whole / {mined_by_others:>4} mined elsewhere = {ratio:.2}, {} \
             compact; {} duplicates, {} fetched, {} by sync",
            b.received, b.compact, b.duplicates, b.fetched, b.synced
        );
    }
    let mean = per_block.iter().sum::<f64>() / per_block.len().max(1) as f64;
    let max = per_block.iter().copied().fold(0.0, f64::max);
    let compact = compact_per_block.iter().sum::<f64>() / compact_per_block.len().max(1) as f64;
    println!(
        "  mean {mean:.2}, max {max:.2} whole bodies per node per block; {compact:.2} compact \
         blocks (header, coinbase, transfer ids)"
    );
    println!();
    let rate = |secs: Option<f64>| secs.map_or(0.0, |s| transfers.n as f64 / s);
    let (submit, all) = (transfers.submit_secs(), transfers.all_secs());
    let fmt = |s: Option<f64>| s.map_or("-".to_owned(), |s| format!("{s:.2} s"));
    println!(
        "transfers: {} submitted at node {RELAY_SUBMIT}: all in every pool after {} = {:.0}/s \
         end to end; ceiling: node {RELAY_SUBMIT}'s own admission {} = {:.0}/s; ratio {:.2}",
        transfers.n,
        fmt(all),
        rate(all),
        fmt(submit),
        rate(submit),
        rate(all) / rate(submit).max(f64::MIN_POSITIVE)
    );
    let mut arrivals = transfers.arrivals.clone();
    arrivals.sort_by_key(|(i, _)| *i);
    let list: Vec<String> = arrivals
        .iter()
        .map(|(i, t)| format!("{i}: {}", fmt(t.map(|t| t.as_secs_f64()))))
        .collect();
    println!(
        "  by node (hops from node {RELAY_SUBMIT}: {:?}): {}",
        relay_hops()[RELAY_SUBMIT],
        list.join(", ")
    );
    for f in &failures {
        println!("FAILED {f}");
    }
    Ok(failures)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(failures) if failures.is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("relay bench FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
