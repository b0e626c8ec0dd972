//! Sync between real processes: a fresh `spacetime node --no-mine --peer <source>` downloads a
//! chain from a running source node over loopback TCP, timed from its spawn until its
//! `spacetime_chain_height` (polled every 20 ms) reaches the source's tip. Each figure stands
//! beside its ceiling, measured in the same run:
//!
//! - `empty`: 10,000 empty dev blocks; ceiling `spacetime chain import` of the same block file
//!   into a fresh data directory (the process timed). Goals: >= 2,000 blocks/s, ratio >= 0.9,
//!   the syncing node's peak RSS (`VmHWM`) < 256 MiB.
//! - `testnet`: 3,000 empty blocks with testnet's plot parameters (a genesis file given to both
//!   processes); ceiling as above. Goal >= 1,500 blocks/s.
//! - `full`: 20 blocks of 4,000 transfers from premined senders; transfers/s, beside raw
//!   `verify_batch` of the same signatures on one thread. Goal ratio >= 0.7.
//!
//! Medians of 3 runs. `cargo bench --bench sync`; `-- --smoke` runs a few hundred blocks once;
//! `--empty N`, `--testnet N`, `--full-blocks N`, `--transfers N` and `--runs N` change the
//! sizes. Exits non-zero when a sync does not finish within the deadline.

#[path = "../tests/common/sync_chain.rs"]
mod sync_chain;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use spacetime::crypto::{SignedMessage, SigningDomain, verify_batch};
use spacetime::{Block, Genesis, GenesisConfig};
use sync_chain::{
    Net, NodeProc, free_addr, import, mine, premined, transfers_at, write_block_file,
};

const POLL: Duration = Duration::from_millis(20);
/// Longest a sync may take.
const DEADLINE: Duration = Duration::from_secs(300);
/// Longest the height may stand still during a sync.
const STALL: Duration = Duration::from_secs(60);
const MIB: f64 = 1024.0 * 1024.0;

/// Sizes of one invocation.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    runs: usize,
    empty: u64,
    testnet: u64,
    full_blocks: u64,
    full_transfers: usize,
}

const FULL: Sizes = Sizes {
    runs: 3,
    empty: 10_000,
    testnet: 3_000,
    full_blocks: 20,
    full_transfers: 4_000,
};

const SMOKE: Sizes = Sizes {
    runs: 1,
    empty: 300,
    testnet: 200,
    full_blocks: 3,
    full_transfers: 1_000,
};

/// One measured figure beside its ceiling.
#[derive(Clone)]
struct Row {
    case: &'static str,
    what: String,
    /// Seconds per run.
    runs: Vec<f64>,
    /// Units done per run (blocks or transfers).
    amount: f64,
    unit: &'static str,
    ceiling: String,
    ceiling_runs: Vec<f64>,
    ceiling_amount: f64,
    goal_rate: Option<f64>,
    goal_ratio: Option<f64>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.amount / median(&self.runs)
    }

    fn ceiling_rate(&self) -> f64 {
        self.ceiling_amount / median(&self.ceiling_runs)
    }

    fn ratio(&self) -> f64 {
        self.rate() / self.ceiling_rate()
    }

    fn verdict(&self) -> &'static str {
        let rate_ok = self.goal_rate.is_none_or(|g| self.rate() >= g);
        let ratio_ok = self.goal_ratio.is_none_or(|g| self.ratio() >= g);
        match (
            self.goal_rate.is_some() || self.goal_ratio.is_some(),
            rate_ok && ratio_ok,
        ) {
            (false, _) => "-",
            (true, true) => "ok",
            (true, false) => "BELOW GOAL",
        }
    }

    fn goal(&self) -> String {
        let mut parts = Vec::new();
        if let Some(g) = self.goal_rate {
            parts.push(format!(">= {g:.0}/s"));
        }
        if let Some(g) = self.goal_ratio {
            parts.push(format!("ratio >= {g:.1}"));
        }
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(", ")
        }
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// What one sync run measured.
struct SyncRun {
    secs: f64,
    /// From the first `Headers` the node received (process started, chain open, peer
    /// connected) to the last block: the sync itself.
    from_headers_secs: f64,
    peak_rss_kib: u64,
    stats: String,
}

/// The chain of one case, written to disk, imported `runs` times (the ceiling), with a source
/// node running on the first import's data directory.
struct Prepared {
    net: Net,
    blocks: Vec<Block>,
    import_secs: Vec<f64>,
    source: NodeProc,
}

fn prepare(
    dir: &Path,
    name: &str,
    config: GenesisConfig,
    blocks: Vec<Block>,
    runs: usize,
) -> Result<Prepared, String> {
    let net = match config == GenesisConfig::builtin("dev").map_err(|e| e.to_string())? {
        true => Net::Dev,
        false => Net::write(&dir.join(format!("{name}.toml")), &config),
    };
    let file = dir.join(format!("{name}.blocks"));
    let bytes = write_block_file(&file, &blocks);
    eprintln!(
        "{name}: {} blocks, {:.1} MiB block file",
        blocks.len(),
        bytes as f64 / MIB
    );
    let n = blocks.len() as u64;
    let import_secs: Vec<f64> = (0..runs)
        .map(|i| import(&net, &dir.join(format!("{name}-import-{i}")), &file, n).as_secs_f64())
        .collect();
    let source = NodeProc::start(
        &net,
        &dir.join(format!("{name}-import-0")),
        Some(free_addr()),
        &[],
    );
    if !source.wait_line("listening on", Duration::from_secs(30)) {
        return Err(format!(
            "{name}: the source did not start\n{}",
            source.diagnostics()
        ));
    }
    Ok(Prepared {
        net,
        blocks,
        import_secs,
        source,
    })
}

/// One fresh node syncing from `p.source`, timed from spawn to the source's tip height.
fn sync_once(dir: &Path, name: &str, run: usize, p: &Prepared) -> Result<SyncRun, String> {
    let src = p.source.listen.ok_or("the source does not listen")?;
    let data = dir.join(format!("{name}-sync-{run}"));
    let node = NodeProc::start(&p.net, &data, None, &[src]);
    let target = p.blocks.len() as u64;
    let mut first_headers = None;
    let mut last_move = Instant::now();
    let mut last_height = 0;
    let secs = loop {
        let text = node.metrics_text();
        let now = node.started.elapsed();
        if first_headers.is_none()
            && sync_chain::metric_in(&text, "spacetime_sync_headers_received_total")
                .is_some_and(|v| v > 0.0)
        {
            first_headers = Some(now);
        }
        let h = sync_chain::metric_in(&text, "spacetime_chain_height").map_or(0, |h| h as u64);
        if h >= target {
            break now.as_secs_f64();
        }
        if h != last_height {
            last_height = h;
            last_move = Instant::now();
        }
        if now > DEADLINE || last_move.elapsed() > STALL {
            return Err(format!(
                "{name} run {run}: sync did not finish: height {h} of {target}\n{}",
                node.diagnostics()
            ));
        }
        std::thread::sleep(POLL);
    };
    let from_headers_secs = first_headers.map_or(secs, |t| secs - t.as_secs_f64());
    let peak_rss_kib = node.peak_rss_kib().unwrap_or(0);
    let stats = download_stats(&node.metrics_text());
    let status = node.stop()?;
    if !status.success() {
        return Err(format!("{name} run {run}: the node exited with {status}"));
    }
    let (height, hash) = sync_chain::chain_tip(&p.net, &data);
    let want = p
        .blocks
        .last()
        .map(|b| b.hash().to_string())
        .unwrap_or_default();
    if height != target || hash != want {
        return Err(format!(
            "{name} run {run}: ended on {height} {hash}, not {target} {want}"
        ));
    }
    eprintln!("{name} run {run}: {secs:.2} s, peak RSS {peak_rss_kib} KiB; {stats}");
    Ok(SyncRun {
        secs,
        from_headers_secs,
        peak_rss_kib,
        stats,
    })
}

fn download_stats(text: &str) -> String {
    let count = |name: &str| sync_chain::metric_in(text, name).unwrap_or(0.0);
    let duplicate = sync_chain::series_in(
        text,
        "spacetime_blocks_imported_total",
        "status=\"duplicate\"",
    )
    .unwrap_or(0.0);
    format!(
        "{} blocks requested, {} received, {} imported twice, {} unsolicited dropped",
        count("spacetime_sync_blocks_requested_total"),
        count("spacetime_sync_blocks_received_total"),
        duplicate,
        count("spacetime_sync_unsolicited_dropped_total"),
    )
}

/// Syncs `runs` times and stops the source.
fn sync_runs(
    dir: &Path,
    name: &str,
    runs: usize,
    p: Prepared,
) -> Result<(Vec<SyncRun>, Prepared), String> {
    let out = (0..runs)
        .map(|i| sync_once(dir, name, i, &p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((out, p))
}

fn stop_source(name: &str, p: Prepared) -> Result<Vec<Block>, String> {
    let status = p.source.stop()?;
    if !status.success() {
        return Err(format!("{name}: the source exited with {status}"));
    }
    Ok(p.blocks)
}

/// `empty` or `testnet`: empty blocks, blocks/s beside `chain import`.
fn empty_case(
    dir: &Path,
    name: &'static str,
    config: GenesisConfig,
    n: u64,
    sizes: &Sizes,
    goal_rate: f64,
    goal_ratio: Option<f64>,
) -> Outcome {
    let started = Instant::now();
    let genesis = Genesis::new(config.clone()).map_err(|e| e.to_string())?;
    let blocks = mine(&genesis, n, |_| Vec::new());
    eprintln!(
        "{name}: mined {n} blocks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let p = prepare(dir, name, config, blocks, sizes.runs)?;
    let import_secs = p.import_secs.clone();
    let (runs, p) = sync_runs(dir, name, sizes.runs, p)?;
    stop_source(name, p)?;
    let row = Row {
        case: name,
        what: format!("sync {n} blocks"),
        runs: runs.iter().map(|r| r.secs).collect(),
        amount: n as f64,
        unit: "blocks",
        ceiling: "chain import".into(),
        ceiling_runs: import_secs,
        ceiling_amount: n as f64,
        goal_rate: Some(goal_rate),
        goal_ratio,
    };
    // The same sync without the node's start (process, chain open, connection).
    let steady = Row {
        what: format!("sync {n}, from headers"),
        runs: runs.iter().map(|r| r.from_headers_secs).collect(),
        goal_rate: None,
        goal_ratio: None,
        ..row.clone()
    };
    Ok((vec![row, steady], runs))
}

/// `full`: blocks of transfers, transfers/s beside `verify_batch` (and `chain import`).
fn full_case(dir: &Path, sizes: &Sizes) -> Outcome {
    let name = "full";
    let dev = GenesisConfig::builtin("dev").map_err(|e| e.to_string())?;
    let (config, senders) = premined(dev, sizes.full_transfers);
    let genesis = Genesis::new(config.clone()).map_err(|e| e.to_string())?;
    let chain_id = genesis.chain_id;
    let started = Instant::now();
    let blocks = mine(&genesis, sizes.full_blocks, |i| {
        transfers_at(&senders, chain_id, i)
    });
    let transfers: usize = blocks.iter().map(|b| b.transfers.len()).sum();
    eprintln!(
        "{name}: mined {} blocks of {} transfers in {:.1} s",
        blocks.len(),
        sizes.full_transfers,
        started.elapsed().as_secs_f64()
    );
    let p = prepare(dir, name, config, blocks, sizes.runs)?;
    let import_secs = p.import_secs.clone();
    let (runs, p) = sync_runs(dir, name, sizes.runs, p)?;
    let blocks = stop_source(name, p)?;
    let verify: Vec<f64> = (0..sizes.runs)
        .map(|_| verify_all(&blocks))
        .collect::<Result<_, _>>()?;
    let sync_secs: Vec<f64> = runs.iter().map(|r| r.secs).collect();
    let from_headers: Vec<f64> = runs.iter().map(|r| r.from_headers_secs).collect();
    let rows = vec![
        Row {
            case: name,
            what: format!("sync {transfers} transfers"),
            runs: sync_secs.clone(),
            amount: transfers as f64,
            unit: "transfers",
            ceiling: "verify_batch, 1 thread".into(),
            ceiling_runs: verify.clone(),
            ceiling_amount: transfers as f64,
            goal_rate: None,
            goal_ratio: None,
        },
        // Transfers/s during the sync: from the first headers (the node started, opened its
        // chain with the 4,000 premined accounts, and connected) to the last block.
        Row {
            case: name,
            what: "sync, from headers".into(),
            runs: from_headers,
            amount: transfers as f64,
            unit: "transfers",
            ceiling: "verify_batch, 1 thread".into(),
            ceiling_runs: verify,
            ceiling_amount: transfers as f64,
            goal_rate: None,
            goal_ratio: Some(0.7),
        },
        Row {
            case: name,
            what: format!("sync {transfers} transfers"),
            runs: sync_secs,
            amount: transfers as f64,
            unit: "transfers",
            ceiling: "chain import".into(),
            ceiling_runs: import_secs,
            ceiling_amount: transfers as f64,
            goal_rate: None,
            goal_ratio: None,
        },
    ];
    Ok((rows, runs))
}

/// Seconds `verify_batch` takes over every block's transfer signatures (one batch per block).
fn verify_all(blocks: &[Block]) -> Result<f64, String> {
    let messages: Vec<Vec<Vec<u8>>> = blocks
        .iter()
        .map(|b| b.transfers.iter().map(|t| t.signing_bytes()).collect())
        .collect();
    let started = Instant::now();
    for (b, msgs) in blocks.iter().zip(&messages) {
        let items: Vec<SignedMessage<'_>> = b
            .transfers
            .iter()
            .zip(msgs)
            .map(|(t, m)| SignedMessage {
                key: &t.from,
                message: m,
                signature: &t.signature,
            })
            .collect();
        verify_batch(SigningDomain::Tx, &items).map_err(|e| format!("verify_batch: {e:?}"))?;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn secs_list(xs: &[f64]) -> String {
    xs.iter()
        .map(|s| format!("{s:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_table(rows: &[Row], rss: &[(&str, f64)]) {
    println!();
    println!(
        "{:<8} {:<26} {:>18} {:>16} {:<22} {:>18} {:>16} {:>6}  {:<24} verdict",
        "case", "measure", "runs (s)", "rate/s", "ceiling", "runs (s)", "rate/s", "ratio", "goal"
    );
    for r in rows {
        println!(
            "{:<8} {:<26} {:>18} {:>16} {:<22} {:>18} {:>16} {:>6.2}  {:<24} {}",
            r.case,
            r.what,
            secs_list(&r.runs),
            format!("{:.0} {}", r.rate(), r.unit),
            r.ceiling,
            secs_list(&r.ceiling_runs),
            format!("{:.0} {}", r.ceiling_rate(), r.unit),
            r.ratio(),
            r.goal(),
            r.verdict()
        );
    }
    println!();
    for (case, mib) in rss {
        let goal = if *case == "empty" {
            if *mib < 256.0 {
                "ok (goal < 256 MiB)"
            } else {
                "ABOVE GOAL (< 256 MiB)"
            }
        } else {
            "-"
        };
        println!("{case:<8} peak RSS of the syncing node (median): {mib:.1} MiB  {goal}");
    }
}

/// The sizes the command line asks for.
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
            "--empty" => sizes.empty = value()?,
            "--testnet" => sizes.testnet = value()?,
            "--full-blocks" => sizes.full_blocks = value()?,
            "--transfers" => sizes.full_transfers = value()? as usize,
            "--runs" => sizes.runs = value()?.max(1) as usize,
            _ => {}
        }
    }
    Ok((sizes, smoke))
}

/// What one case produced.
type Outcome = Result<(Vec<Row>, Vec<SyncRun>), String>;

/// A case to run, by name.
type Case<'a> = (&'static str, Box<dyn FnOnce() -> Outcome + 'a>);

/// Runs every case (a failed one does not stop the others) and prints what was measured; the
/// failures.
fn run(args: &[String]) -> Result<Vec<String>, String> {
    let (sizes, smoke) = sizes(args)?;
    let sizes = &sizes;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dev = GenesisConfig::builtin("dev").map_err(|e| e.to_string())?;
    let mut testnet_plots = dev.clone();
    testnet_plots.plot = GenesisConfig::builtin("testnet")
        .map_err(|e| e.to_string())?
        .plot;
    let d = dir.path();
    let cases: Vec<Case<'_>> = vec![
        (
            "empty",
            Box::new(|| empty_case(d, "empty", dev, sizes.empty, sizes, 2_000.0, Some(0.9))),
        ),
        (
            "testnet",
            Box::new(|| {
                empty_case(
                    d,
                    "testnet",
                    testnet_plots,
                    sizes.testnet,
                    sizes,
                    1_500.0,
                    None,
                )
            }),
        ),
        ("full", Box::new(|| full_case(d, sizes))),
    ];

    let mut rows = Vec::new();
    let mut rss = Vec::new();
    let mut stats = Vec::new();
    let mut failures = Vec::new();
    for (case, f) in cases {
        match f() {
            Ok((case_rows, runs)) => {
                rows.extend(case_rows);
                let kib: Vec<f64> = runs.iter().map(|r| r.peak_rss_kib as f64).collect();
                rss.push((case, median(&kib) / 1024.0));
                stats.push((case, runs));
            }
            Err(e) => {
                eprintln!("{case} FAILED: {e}");
                failures.push(format!("{case}: {}", e.lines().next().unwrap_or("")));
            }
        }
    }

    println!(
        "\nsync between processes{} (medians of {} run{}):",
        if smoke { ", smoke sizes" } else { "" },
        sizes.runs,
        if sizes.runs == 1 { "" } else { "s" }
    );
    print_table(&rows, &rss);
    println!();
    for (case, runs) in &stats {
        for (i, r) in runs.iter().enumerate() {
            println!("{case:<8} run {i}: {}", r.stats);
        }
    }
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
            eprintln!("sync bench FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
