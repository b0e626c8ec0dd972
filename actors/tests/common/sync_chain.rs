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
    // Below Linux's ephemeral range (32768 and up), so the nodes' own outbound connections
    // never take a port between its choice here and the node's bind; each process walks its
    // own stretch of the range.
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 64) * 190;
    for _ in 0..190 {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 190;
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
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
        Self::start_timed(
            net,
            data_dir,
            listen,
            peers,
            &["--no-mine"],
            &TimedLines::default(),
        )
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

// Relay between processes (`tests/relay_processes.rs`, `benches/relay.rs`): ten nodes of a
// genesis file with premined senders, two of them mining, in a sparse topology; per-block
// status lines stamped as the test reads them; a protocol client that submits transfers.

/// A node's stdout lines, each with the instant the test's reader thread read it.
pub type TimedLines = Arc<Mutex<Vec<(Instant, String)>>>;

impl NodeProc {
    /// Starts a node of `net` on `data_dir` like [`NodeProc::start`], but with `args` in place
    /// of `--no-mine` (`--mine`, `--no-mine`, `--outbound N`, ...); every stdout line is also
    /// appended to `timed` with the instant it was read (pass the same `timed` to a restart to
    /// keep one history).
    pub fn start_timed(
        net: &Net,
        data_dir: &Path,
        listen: Option<SocketAddr>,
        peers: &[SocketAddr],
        args: &[&str],
        timed: &TimedLines,
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
            .args(["--status-interval", "1"])
            .args(args)
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
        let timed_sink = timed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let now = Instant::now();
                timed_sink
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((now, line.clone()));
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

    /// [`NodeProc::diagnostics`] with the relay, mempool, mining and reorg metrics.
    pub fn relay_diagnostics(&self) -> String {
        let text = self.metrics_text();
        let relay: Vec<&str> = text
            .lines()
            .filter(|l| {
                !l.starts_with('#')
                    && [
                        "spacetime_relay_",
                        "spacetime_mempool_",
                        "spacetime_blocks_won",
                        "spacetime_chain_reorgs",
                    ]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        format!(
            "{}\nrelay metrics:\n  {}",
            self.diagnostics(),
            relay.join("\n  ")
        )
    }
}

/// A per-block status line: `height H | block HASH | transfers N | miner M[ | reorg]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLine {
    /// The tip's height.
    pub height: u64,
    /// The tip's hash (hex).
    pub hash: String,
    /// Transfers in the tip block.
    pub transfers: usize,
    /// The first 16 hex digits of the tip's miner key.
    pub miner: String,
    /// The tip came with a reorganisation.
    pub reorg: bool,
}

/// Parses a per-block status line (`None` for any other line).
pub fn block_line(line: &str) -> Option<BlockLine> {
    let mut parts = line.split(" | ");
    let height = parts.next()?.strip_prefix("height ")?.parse().ok()?;
    let hash = parts.next()?.strip_prefix("block ")?.to_owned();
    let transfers = parts.next()?.strip_prefix("transfers ")?.parse().ok()?;
    let miner = parts.next()?.strip_prefix("miner ")?.to_owned();
    let reorg = parts.next() == Some("reorg");
    Some(BlockLine {
        height,
        hash,
        transfers,
        miner,
        reorg,
    })
}

/// The per-block lines of `timed` read before `until` (all with `None`).
pub fn block_lines(timed: &TimedLines, until: Option<Instant>) -> Vec<(Instant, BlockLine)> {
    timed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(t, _)| until.is_none_or(|u| *t < u))
        .filter_map(|(t, l)| block_line(l).map(|b| (*t, b)))
        .collect()
}

/// Prepares `data_dir` for mining on `net` without `--dev` (which would make its own): a
/// miner key, an 8 MiB plot of it (`spacetime plot create`), and a `node.toml` turning mining
/// on with that plot and one scan thread (`--no-mine` still overrides it). The miner's key.
pub fn prepare_miner(net: &Net, data_dir: &Path) -> PublicKey {
    std::fs::create_dir_all(data_dir).expect("miner data directory");
    let key = Keypair::generate();
    let key_path = data_dir.join("miner.key");
    spacetime::keyfile::write_key_file(&key_path, &key, false).expect("write the miner key");
    let plots = data_dir.join("plots");
    std::fs::create_dir_all(&plots).expect("plot directory");
    let network: Vec<OsString> = match net {
        Net::Dev => vec!["--network".into(), "dev".into()],
        Net::File(_) => net.args(),
    };
    let o = Command::new(BIN)
        .args(["plot", "create", "--size", "8MiB", "--memory", "64MiB"])
        .args(["--threads", "1", "--quiet", "--dir"])
        .arg(&plots)
        .arg("--key")
        .arg(&key_path)
        .args(network)
        .output()
        .expect("spacetime plot create runs");
    assert!(
        o.status.success(),
        "plot create: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let toml = format!(
        "[mining]\nenabled = true\nkey_file = {:?}\n\n[plots]\ndirs = [{:?}]\n\n[plots.scan]\n\
         threads = 1\n",
        key_path.display().to_string(),
        plots.display().to_string()
    );
    std::fs::write(data_dir.join("node.toml"), toml).expect("write node.toml");
    key.public()
}

/// `spacetime chain export` of `data_dir`'s main chain (heights 1 to the tip), read back.
pub fn export_chain(net: &Net, data_dir: &Path) -> Vec<Block> {
    let file = data_dir.with_extension("export");
    let o = Command::new(BIN)
        .args(["chain", "export"])
        .args(net.args())
        .arg("--data-dir")
        .arg(data_dir)
        .arg(&file)
        .output()
        .expect("spacetime chain export runs");
    assert!(
        o.status.success(),
        "chain export of {}: {}\n{}",
        data_dir.display(),
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let f = File::open(&file).expect("open the exported block file");
    let mut r = spacetime_actors::chain::blockfile::BlockFileReader::new(BufReader::new(f))
        .expect("an exported block file");
    let mut blocks = Vec::new();
    while let Some(b) = r.next_block().expect("read an exported block") {
        blocks.push(b);
    }
    blocks
}

/// A peer in the test process speaking the node protocol: Noise XX, Hello, then messages
/// (a current-thread tokio runtime of its own).
pub struct PeerClient {
    rt: tokio::runtime::Runtime,
    session: spacetime_actors::net::Session,
    /// The node's Hello.
    pub hello: spacetime::wire::Hello,
}

impl PeerClient {
    /// Connects to the node listening on `addr` of `genesis`'s network and exchanges Hellos
    /// (claiming the genesis block as our tip).
    pub fn connect(addr: SocketAddr, genesis: &Genesis) -> Result<Self, String> {
        use spacetime::wire::{Hello, LocalHello, PROTOCOL_VERSION, capabilities};
        use spacetime_actors::net::{Role, StaticKey, exchange_hello, handshake};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let network_id = genesis.network_id;
        let (session, hello) = rt.block_on(async {
            let key = StaticKey::generate().map_err(|e| format!("client key: {e}"))?;
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect to {addr}: {e}"))?;
            let rng = spacetime::NodeRng::from_os().map_err(|e| format!("rng: {e}"))?;
            let mut session = handshake(stream, &key, Role::Initiator, Duration::from_secs(5), rng)
                .await
                .map_err(|e| format!("Noise handshake with {addr}: {e}"))?;
            let ours = Hello {
                protocol_version: PROTOCOL_VERSION,
                network_id,
                node_id: key.node_id(),
                best_height: 0,
                best_hash: network_id,
                cumulative_work: [0; 32],
                listen_port: 0,
                user_agent: spacetime::BoundedString::truncating("relay-test-client"),
                capabilities: capabilities::TX_RELAY,
                time_ms: unix_ms(),
            };
            let local = LocalHello {
                network_id,
                node_id: key.node_id(),
            };
            let hello = exchange_hello(&mut session, &ours, &local, Duration::from_secs(5))
                .await
                .map_err(|e| format!("Hello with {addr}: {e}"))?;
            Ok::<_, String>((session, hello))
        })?;
        Ok(Self { rt, session, hello })
    }

    /// Sends `transfers` as `Txs` messages of at most `MAX_TXS_PER_MESSAGE`, in order.
    pub fn send_transfers(&mut self, transfers: &[Transfer]) -> Result<(), String> {
        use spacetime::wire::{MAX_TXS_PER_MESSAGE, Message, Txs};
        let session = &mut self.session;
        self.rt.block_on(async {
            for chunk in transfers.chunks(MAX_TXS_PER_MESSAGE) {
                let transfers = spacetime::BoundedVec::try_from(chunk.to_vec())
                    .map_err(|e| format!("Txs bound: {e:?}"))?;
                session
                    .queue(&Message::Txs(Txs { transfers }))
                    .map_err(|e| format!("queue Txs: {e}"))?;
            }
            session.flush().await.map_err(|e| format!("send Txs: {e}"))
        })
    }

    /// Reads what the node sends for `time`, answering pings; how many messages came. Fails
    /// when the node ends the session.
    pub fn pump(&mut self, time: Duration) -> Result<usize, String> {
        use spacetime::wire::Message;
        let session = &mut self.session;
        self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + time;
            let mut n = 0;
            loop {
                let next = tokio::time::timeout_at(deadline, session.recv()).await;
                match next {
                    Err(_) => return Ok(n),
                    Ok(Ok(Message::Ping(p))) => {
                        n += 1;
                        session
                            .send(&Message::Pong(p))
                            .await
                            .map_err(|e| format!("send Pong: {e}"))?;
                    }
                    Ok(Ok(Message::Disconnect(d))) => {
                        return Err(format!(
                            "the node disconnected: {:?} {}",
                            d.reason, d.detail
                        ));
                    }
                    Ok(Ok(_)) => n += 1,
                    Ok(Err(e)) => return Err(format!("session ended: {e}")),
                }
            }
        })
    }

    /// Says goodbye (`Disconnect`) and closes the session.
    pub fn close(mut self) {
        let session = &mut self.session;
        self.rt.block_on(spacetime_actors::net::refuse(
            session,
            spacetime::wire::DisconnectReason::Shutdown,
            "done",
        ));
    }
}

/// Nodes of the relay network.
pub const RELAY_NODES: usize = 10;
/// The two mining nodes. They dial out and do not listen, so no other node's connections
/// depend on them and they can be restarted (without mining) where they were.
pub const RELAY_MINERS: [usize; 2] = [2, 7];
/// The non-mining node transfers are submitted at (two peers of its own).
pub const RELAY_SUBMIT: usize = 4;
/// The connections, dialler first: the ring 0-1-2-...-9-0 and the chords 0-5 and 3-8. Every
/// node has 2 or 3 peers; 2 to 7 are 4 hops apart.
pub const RELAY_EDGES: [(usize, usize); 12] = [
    (1, 0),
    (9, 0),
    (5, 0),
    (8, 9),
    (4, 5),
    (6, 5),
    (3, 8),
    (3, 4),
    (2, 1),
    (2, 3),
    (7, 6),
    (7, 8),
];
/// Start order: each node dials only nodes already listening, so its first dials (one per
/// outbound slot, `--outbound` = its edges) all connect and it dials no one else. Node 0, first,
/// has nobody to dial; its one slot (`--outbound` is at least 1) goes to some node it learns
/// of, at most one peer more for that node.
pub const RELAY_START: [usize; RELAY_NODES] = [0, 1, 9, 5, 8, 4, 6, 3, 2, 7];
/// Most peers any node may have (the test's client included).
pub const RELAY_MAX_PEERS: usize = 4;
/// Name of the connected-peers gauge (by direction).
pub const PEERS: &str = "spacetime_peers";

/// Hops between every pair of nodes over [`RELAY_EDGES`].
pub fn relay_hops() -> [[usize; RELAY_NODES]; RELAY_NODES] {
    let mut d = [[usize::MAX; RELAY_NODES]; RELAY_NODES];
    for (s, row) in d.iter_mut().enumerate() {
        row[s] = 0;
        let mut frontier = vec![s];
        while let Some(n) = frontier.first().copied() {
            frontier.remove(0);
            for &(a, b) in &RELAY_EDGES {
                let next = match (a == n, b == n) {
                    (true, _) => b,
                    (_, true) => a,
                    _ => continue,
                };
                if row[next] == usize::MAX {
                    row[next] = row[n] + 1;
                    frontier.push(next);
                }
            }
        }
    }
    d
}

/// The planned peers of node `i`.
pub fn relay_degree(i: usize) -> usize {
    RELAY_EDGES
        .iter()
        .filter(|&&(a, b)| a == i || b == i)
        .count()
}

/// Ten `spacetime node` processes of one genesis file (dev parameters, premined senders).
pub struct RelayNet {
    /// Where the data directories live.
    pub dir: PathBuf,
    /// The genesis file.
    pub net: Net,
    /// Its genesis.
    pub genesis: Genesis,
    /// The premined senders (10^9 units each).
    pub senders: Vec<Keypair>,
    /// The processes, by node (`None` while stopped).
    pub nodes: Vec<Option<NodeProc>>,
    /// Every stdout line of each node, across restarts.
    pub lines: Vec<TimedLines>,
    /// Where each node listens (`None` for the miners).
    pub listen: Vec<Option<SocketAddr>>,
    /// The miners' keys, by node.
    pub miner_keys: Vec<Option<PublicKey>>,
}

impl RelayNet {
    /// Writes the genesis file (the dev parameters with `senders` premined senders), prepares
    /// the miners and starts the ten nodes in [`RELAY_START`] order.
    pub fn start(dir: &Path, senders: usize) -> Result<Self, String> {
        let dev = GenesisConfig::builtin("dev").map_err(|e| e.to_string())?;
        let (mut config, keys) = premined(dev, senders);
        config.network.name = "relay".into();
        let genesis = Genesis::new(config.clone()).map_err(|e| e.to_string())?;
        let net = Net::write(&dir.join("relay.toml"), &config);
        let mut miner_keys = vec![None; RELAY_NODES];
        for &m in &RELAY_MINERS {
            miner_keys[m] = Some(prepare_miner(&net, &dir.join(format!("n{m}"))));
        }
        let listen: Vec<Option<SocketAddr>> = (0..RELAY_NODES)
            .map(|i| (!RELAY_MINERS.contains(&i)).then(free_addr))
            .collect();
        let mut me = RelayNet {
            dir: dir.to_owned(),
            net,
            genesis,
            senders: keys,
            nodes: (0..RELAY_NODES).map(|_| None).collect(),
            lines: (0..RELAY_NODES).map(|_| TimedLines::default()).collect(),
            listen,
            miner_keys,
        };
        for i in RELAY_START {
            me.spawn(i, RELAY_MINERS.contains(&i))?;
        }
        Ok(me)
    }

    /// Node `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("n{i}"))
    }

    /// Starts node `i` (mining or not) on its data directory, dialling its planned peers, and
    /// waits until it is up.
    pub fn spawn(&mut self, i: usize, mine: bool) -> Result<(), String> {
        let peers: Vec<SocketAddr> = RELAY_EDGES
            .iter()
            .filter(|&&(a, _)| a == i)
            .map(|&(_, b)| self.listen[b].ok_or(format!("node {b} does not listen")))
            .collect::<Result<_, _>>()?;
        let outbound = peers.len().max(1).to_string();
        let args = [
            if mine { "--mine" } else { "--no-mine" },
            "--outbound",
            &outbound,
        ];
        let node = NodeProc::start_timed(
            &self.net,
            &self.data_dir(i),
            self.listen[i],
            &peers,
            &args,
            &self.lines[i],
        );
        let up = match node.listen {
            Some(_) => "listening on",
            None => "node id ",
        };
        if !node.wait_line(up, Duration::from_secs(30)) {
            return Err(format!("node {i} did not start\n{}", node.diagnostics()));
        }
        self.nodes[i] = Some(node);
        Ok(())
    }

    /// Node `i`'s process (panics while it is stopped).
    pub fn node(&self, i: usize) -> &NodeProc {
        self.nodes[i]
            .as_ref()
            .unwrap_or_else(|| panic!("node {i} is not running"))
    }

    /// The running nodes.
    pub fn running(&self) -> impl Iterator<Item = (usize, &NodeProc)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    /// Each running node's connected peers (`spacetime_peers`, both directions).
    pub fn peer_counts(&self) -> Vec<Option<usize>> {
        self.nodes
            .iter()
            .map(|n| n.as_ref().and_then(|n| n.metric(PEERS)).map(|v| v as usize))
            .collect()
    }

    /// Waits until every running node has at least its planned peers; the counts.
    pub fn wait_connected(&self, limit: Duration) -> Result<Vec<Option<usize>>, String> {
        let ok = |c: &[Option<usize>]| {
            c.iter()
                .enumerate()
                .all(|(i, n)| self.nodes[i].is_none() || n.is_some_and(|n| n >= relay_degree(i)))
        };
        let start = Instant::now();
        loop {
            let counts = self.peer_counts();
            if ok(&counts) {
                return Ok(counts);
            }
            if start.elapsed() > limit {
                let late: Vec<String> = (0..RELAY_NODES)
                    .filter(|&i| {
                        self.nodes[i].is_some() && counts[i].is_none_or(|n| n < relay_degree(i))
                    })
                    .map(|i| format!("node {i}:\n{}", self.node(i).diagnostics()))
                    .collect();
                return Err(format!(
                    "peers {counts:?} after {:.0} s, want {:?}\n{}",
                    limit.as_secs_f64(),
                    (0..RELAY_NODES).map(relay_degree).collect::<Vec<_>>(),
                    late.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails unless every running node has at most [`RELAY_MAX_PEERS`] peers.
    pub fn check_peer_bound(&self) -> Result<Vec<Option<usize>>, String> {
        let counts = self.peer_counts();
        match counts
            .iter()
            .position(|n| n.is_some_and(|n| n > RELAY_MAX_PEERS))
        {
            Some(i) => Err(format!(
                "node {i} has more than {RELAY_MAX_PEERS} peers: {counts:?}\n{}",
                self.node(i).diagnostics()
            )),
            None => Ok(counts),
        }
    }

    /// Node `i`'s last per-block line.
    pub fn last_block(&self, i: usize) -> Option<BlockLine> {
        block_lines(&self.lines[i], None).pop().map(|(_, b)| b)
    }

    /// Stops the miners (SIGTERM; clean exits); when the first was signalled.
    pub fn stop_miners(&mut self) -> Result<Instant, String> {
        let at = Instant::now();
        for m in RELAY_MINERS {
            if let Some(node) = self.nodes[m].take() {
                let status = node.stop()?;
                if !status.success() {
                    return Err(format!("miner {m} exited with {status}"));
                }
            }
        }
        Ok(at)
    }

    /// Restarts the stopped miners without mining, with an empty address book so that they
    /// dial the same peers again.
    pub fn restart_miners_without_mining(&mut self) -> Result<(), String> {
        for m in RELAY_MINERS {
            if self.nodes[m].is_none() {
                let _ = std::fs::remove_file(self.data_dir(m).join("peers.dat"));
                self.spawn(m, false)?;
            }
        }
        Ok(())
    }

    /// Waits until every running node shows the same height and the listening ones the same
    /// tip hash in their last block line, unchanged for `steady`; that height.
    pub fn wait_converged(&self, limit: Duration, steady: Duration) -> Result<u64, String> {
        let start = Instant::now();
        let mut since: Option<(Instant, u64, String)> = None;
        loop {
            let heights: Vec<(usize, Option<u64>)> =
                self.running().map(|(i, n)| (i, n.height())).collect();
            let hashes: Vec<(usize, Option<String>)> = self
                .running()
                .filter(|(_, n)| n.listen.is_some())
                .map(|(i, _)| (i, self.last_block(i).map(|b| b.hash)))
                .collect();
            let one_height = heights
                .first()
                .and_then(|(_, h)| *h)
                .filter(|h| heights.iter().all(|(_, x)| *x == Some(*h)));
            let one_hash = hashes
                .first()
                .and_then(|(_, h)| h.clone())
                .filter(|h| hashes.iter().all(|(_, x)| x.as_ref() == Some(h)));
            match (one_height, one_hash) {
                (Some(h), Some(hash)) => match &since {
                    Some((t, h0, hash0)) if *h0 == h && *hash0 == hash => {
                        if t.elapsed() >= steady {
                            return Ok(h);
                        }
                    }
                    _ => since = Some((Instant::now(), h, hash)),
                },
                _ => since = None,
            }
            if start.elapsed() > limit {
                let diag: Vec<String> = self
                    .running()
                    .map(|(i, n)| format!("node {i}:\n{}", n.relay_diagnostics()))
                    .collect();
                return Err(format!(
                    "no common tip after {:.0} s: heights {heights:?}, tips {hashes:?}\n{}",
                    limit.as_secs_f64(),
                    diag.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops every running node (SIGTERM; clean exits).
    pub fn stop_all(&mut self) -> Result<(), String> {
        for (i, slot) in self.nodes.iter_mut().enumerate() {
            if let Some(node) = slot.take() {
                let status = node.stop()?;
                if !status.success() {
                    return Err(format!("node {i} exited with {status}"));
                }
            }
        }
        Ok(())
    }
}
