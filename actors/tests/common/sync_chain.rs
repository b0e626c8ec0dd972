//! Shared by `tests/sync_processes.rs` and `benches/sync.rs`: chains mined in-process (a
//! [`SoloMiner`] on a memory disk), block and genesis files, and real `spacetime` processes
//! (`chain import`, `chain tip`, `node`) driven over loopback through their metrics endpoints
//! and status lines.

// The test and the benchmark each use a subset of these helpers.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spacetime::chain::{Chain, ChainStorage, MemoryDisk, SoloMiner};
use spacetime::genesis::Allocation;
use spacetime::{Amount, Block, ChainId, Genesis, GenesisConfig, Keypair, PublicKey, Transfer};
use spacetime::{UnsignedTransfer, encoding};
use spacetime_actors::chain::blockfile::BlockFileWriter;

/// The `spacetime` binary of this build.
pub const BIN: &str = env!("CARGO_BIN_EXE_spacetime");

/// Name of the chain height gauge.
pub const HEIGHT: &str = "spacetime_chain_height";

/// Which network a process runs on.
#[derive(Debug, Clone)]
pub enum Net {
    /// The built-in dev network (`--dev`).
    Dev,
    /// A genesis configuration file (`--config FILE`).
    File(PathBuf),
}

impl Net {
    /// Writes `config` as a genesis file at `path` (checking it reads back as the same
    /// network) and names it.
    pub fn write(path: &Path, config: &GenesisConfig) -> Net {
        let text = config.to_toml_string();
        let want = Genesis::new(config.clone())
            .expect("valid genesis")
            .network_id;
        let back = Genesis::from_toml_str(&text).expect("genesis file parses");
        assert_eq!(back.network_id, want, "genesis file round trip");
        std::fs::write(path, text).expect("write genesis file");
        Net::File(path.to_owned())
    }

    /// The command-line arguments choosing this network.
    pub fn args(&self) -> Vec<OsString> {
        match self {
            Net::Dev => vec!["--dev".into()],
            Net::File(p) => vec!["--config".into(), p.into()],
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Mines `n` blocks on `genesis` with one in-memory plot, block `i` (from 0) carrying
/// `transfers(i)`; each is stamped with the earliest timestamp the rules allow (successive
/// epochs after the genesis time). Panics if the chain would end in the future.
pub fn mine(
    genesis: &Genesis,
    n: u64,
    mut transfers: impl FnMut(u64) -> Vec<Transfer>,
) -> Vec<Block> {
    let storage = ChainStorage::Memory(MemoryDisk::new("miner"));
    let mut chain = Chain::open_on(storage, genesis.clone()).expect("chain on a memory disk");
    let miner = SoloMiner::new(&genesis.config.plot, Keypair::generate(), 1, 64);
    let now = unix_ms();
    let blocks: Vec<Block> = (0..n)
        .map(|i| {
            let b = miner.mine_next(&chain, transfers(i)).expect("mined");
            chain.import(b.clone(), now).expect("own block imports");
            b
        })
        .collect();
    if let Some(last) = blocks.last() {
        assert!(
            last.header.timestamp_ms < now,
            "the mined chain ends in the future ({} > {now})",
            last.header.timestamp_ms
        );
    }
    blocks
}

/// The dev genesis with `n` premined senders of 10^9 units each, and their keys.
pub fn premined(mut config: GenesisConfig, n: usize) -> (GenesisConfig, Vec<Keypair>) {
    let senders: Vec<Keypair> = (0..n).map(|_| Keypair::generate()).collect();
    config.premine = senders
        .iter()
        .map(|k| Allocation {
            address: k.public(),
            amount: Amount(1_000_000_000),
        })
        .collect();
    (config, senders)
}

/// One transfer from each sender to a fresh recipient, for block `i` (from 0: the nonce).
pub fn transfers_at(senders: &[Keypair], chain_id: ChainId, i: u64) -> Vec<Transfer> {
    senders
        .iter()
        .enumerate()
        .map(|(s, k)| {
            let mut to = [0u8; 32];
            to[..8].copy_from_slice(&i.to_le_bytes());
            to[8..16].copy_from_slice(&(s as u64).to_le_bytes());
            UnsignedTransfer {
                from: k.public(),
                to: PublicKey(to),
                amount: Amount(1_000),
                fee: Amount(1),
                nonce: i,
                chain_id,
            }
            .sign(k)
            .expect("signs")
        })
        .collect()
}

/// Writes `blocks` as a block file; returns its size in bytes.
pub fn write_block_file(path: &Path, blocks: &[Block]) -> u64 {
    let f = File::create(path).expect("create block file");
    let mut w = BlockFileWriter::new(std::io::BufWriter::new(f)).expect("block file");
    for b in blocks {
        w.write(b).expect("write block");
    }
    w.finish().expect("flush block file");
    blocks
        .iter()
        .map(|b| encoding::encoded_len(b) as u64 + 4)
        .sum::<u64>()
        + 8
}

/// A free loopback address (bound and released).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// Runs `spacetime chain import` of `file` into `data_dir`; returns how long the process took.
/// Panics unless it succeeds and ends on height `height`.
pub fn import(net: &Net, data_dir: &Path, file: &Path, height: u64) -> Duration {
    let started = Instant::now();
    let o = Command::new(BIN)
        .args(["chain", "import"])
        .args(net.args())
        .arg("--data-dir")
        .arg(data_dir)
        .arg(file)
        .output()
        .expect("spacetime chain import runs");
    let took = started.elapsed();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains(&format!("tip height {height} ")),
        "chain import: {}\n{out}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    took
}

/// `spacetime chain tip` of `data_dir`: height and hash.
pub fn chain_tip(net: &Net, data_dir: &Path) -> (u64, String) {
    let o = Command::new(BIN)
        .args(["chain", "tip"])
        .args(net.args())
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("spacetime chain tip runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "chain tip: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    let height = field("height").parse().expect("a height");
    (height, field("hash"))
}

/// A value of the Prometheus text `text`: the sum of every series of `name` (any labels).
pub fn metric_in(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let series = line.split([' ', '{']).next().unwrap_or("");
        if series != name {
            continue;
        }
        if let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// The value of the one series of `name` whose labels contain `label` (such as
/// `status="extended"`).
pub fn series_in(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') && rest.contains(label))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A `spacetime node --no-mine` process; killed (SIGKILL) if dropped while running.
pub struct NodeProc {
    child: Child,
    /// Its metrics endpoint.
    pub metrics: SocketAddr,
    /// Where it accepts peers.
    pub listen: Option<SocketAddr>,
    /// When it was spawned.
    pub started: Instant,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: PathBuf,
    running: bool,
}

impl NodeProc {
    /// Starts a node of `net` on `data_dir`, listening on `listen` (or not at all), connecting to
    /// `peers`, with status lines every second; its log goes to `<data_dir>.log`.
    pub fn start(
        net: &Net,
        data_dir: &Path,
        listen: Option<SocketAddr>,
        peers: &[SocketAddr],
    ) -> Self {
        let metrics = free_addr();
        let stderr = data_dir.with_extension("log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&stderr)
            .expect("node log file");
        let mut cmd = Command::new(BIN);
        cmd.arg("node")
            .args(net.args())
            .args(["--no-mine", "--status-interval", "1"])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--metrics-addr")
            .arg(metrics.to_string())
            .stdout(Stdio::piped())
            .stderr(log);
        match listen {
            Some(a) => cmd.arg("--listen").arg(a.to_string()),
            None => cmd.arg("--no-listen"),
        };
        for p in peers {
            cmd.arg("--peer").arg(p.to_string());
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spacetime node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        NodeProc {
            child,
            metrics,
            listen,
            started,
            lines,
            stderr,
            running: true,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its status lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True once a status line contains `needle`.
    pub fn saw(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|l| l.contains(needle))
    }

    /// Waits up to `limit` for a status line containing `needle`.
    pub fn wait_line(&self, needle: &str, limit: Duration) -> bool {
        wait_until(limit, Duration::from_millis(50), || self.saw(needle))
    }

    /// The metrics page (empty while the endpoint is not up).
    pub fn metrics_text(&self) -> String {
        let Ok(mut s) = TcpStream::connect_timeout(&self.metrics, Duration::from_secs(1)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ =
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    }

    /// One metric (summed over its labels), if the endpoint shows it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        metric_in(&self.metrics_text(), name)
    }

    /// The chain height from the metrics endpoint.
    pub fn height(&self) -> Option<u64> {
        self.metric(HEIGHT).map(|h| h as u64)
    }

    /// Peak resident set (`VmHWM`), KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The last status lines, the end of the log and the sync metrics, for failure messages.
    pub fn diagnostics(&self) -> String {
        let lines = self.lines();
        let tail = &lines[lines.len().saturating_sub(12)..];
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let log_lines: Vec<&str> = log.lines().collect();
        let log_tail = &log_lines[log_lines.len().saturating_sub(20)..];
        let text = self.metrics_text();
        let metrics: Vec<&str> = text
            .lines()
            .filter(|l| {
                !l.starts_with('#')
                    && (l.starts_with("spacetime_sync_")
                        || l.starts_with(HEIGHT)
                        || l.starts_with("spacetime_peers")
                        || l.starts_with("spacetime_blocks_"))
            })
            .collect();
        format!(
            "status lines:\n  {}\nlog:\n  {}\nmetrics:\n  {}",
            tail.join("\n  "),
            log_tail.join("\n  "),
            metrics.join("\n  ")
        )
    }

    /// Polls the height every `poll` until it reaches `target`; fails after `limit`, or when it
    /// has not moved for `stall`. Returns every height seen, with when (since spawn).
    pub fn wait_height(
        &self,
        target: u64,
        poll: Duration,
        limit: Duration,
        stall: Duration,
    ) -> Result<Vec<(Duration, u64)>, String> {
        let start = Instant::now();
        let mut seen: Vec<(Duration, u64)> = Vec::new();
        let mut moved = Instant::now();
        loop {
            if let Some(h) = self.height() {
                if seen.last().is_none_or(|&(_, last)| last != h) {
                    moved = Instant::now();
                    seen.push((self.started.elapsed(), h));
                }
                if h >= target {
                    return Ok(seen);
                }
            }
            let last = seen.last().map_or(0, |&(_, h)| h);
            if start.elapsed() > limit || moved.elapsed() > stall {
                return Err(format!(
                    "height {last} of {target} after {:.1} s ({:.1} s without progress)\n{}",
                    start.elapsed().as_secs_f64(),
                    moved.elapsed().as_secs_f64(),
                    self.diagnostics()
                ));
            }
            std::thread::sleep(poll);
        }
    }

    /// SIGKILL, and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.running = false;
    }

    /// SIGTERM, then waits (up to 20 s) for it to exit; the exit status.
    pub fn stop(mut self) -> Result<ExitStatus, String> {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.is_ok_and(|s| s.success()) {
            return Err(format!("kill -TERM {pid} failed"));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.running = false;
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => return Err(format!("node {pid} did not stop on SIGTERM in 20 s")),
                Err(e) => return Err(format!("waiting for node {pid}: {e}")),
            }
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if self.running {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `ok` every `every` until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, every: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return true;
        }
        std::thread::sleep(every);
    }
    ok()
}
