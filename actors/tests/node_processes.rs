//! Two `spacetime node --dev` processes on one machine: they connect, say Hello, show each
//! other in their status lines and in `spacetime_peers` on their metrics endpoints, and stop
//! cleanly on SIGTERM, keeping their identity and address book.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node process, killed if the test ends early.
struct Node {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Node {
    fn start(
        data: &Path,
        listen: SocketAddr,
        metrics: SocketAddr,
        peer: Option<SocketAddr>,
    ) -> Node {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spacetime"));
        cmd.args(["node", "--dev", "--status-interval", "1"])
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--metrics-addr")
            .arg(metrics.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(p) = peer {
            cmd.arg("--peer").arg(p.to_string());
        }
        let mut child = cmd.spawn().expect("node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Node { child, lines }
    }

    fn saw(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    fn line_starting(&self, prefix: &str) -> Option<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "node did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn metrics(addr: SocketAddr) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ok()
}

#[test]
fn two_dev_nodes_connect_report_and_stop_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let (a_listen, b_listen, a_metrics, b_metrics) =
        (free_addr(), free_addr(), free_addr(), free_addr());
    let a = Node::start(&a_dir, a_listen, a_metrics, None);
    assert!(
        wait_until(Duration::from_secs(10), || a.saw("listening on")),
        "a did not start"
    );
    let b = Node::start(&b_dir, b_listen, b_metrics, Some(a_listen));

    assert!(
        wait_until(Duration::from_secs(20), || a.saw("peers 1 (in 1, out 0)")
            && b.saw("peers 1 (in 0, out 1)")),
        "status lines: a {:?}, b {:?}",
        a.lines.lock().unwrap(),
        b.lines.lock().unwrap()
    );
    assert!(wait_until(Duration::from_secs(10), || metrics(a_metrics)
        .contains("spacetime_peers{direction=\"inbound\"} 1")));
    assert!(wait_until(Duration::from_secs(10), || metrics(b_metrics)
        .contains("spacetime_peers{direction=\"outbound\"} 1")));

    // `--dev` mines: a status line per block, and the mining and chain metrics.
    assert!(
        wait_until(Duration::from_secs(30), || a.saw("height 3 | block ")),
        "a mined no blocks: {:?}",
        a.lines.lock().unwrap()
    );
    let text = metrics(a_metrics);
    for name in [
        "spacetime_chain_height",
        "spacetime_chain_tip_timestamp_seconds",
        "spacetime_blocks_imported_total",
        "spacetime_block_import_seconds",
        "spacetime_mempool_transfers",
        "spacetime_mempool_bytes",
        "spacetime_scan_seconds",
        "spacetime_proofs_found_total",
        "spacetime_blocks_won_total",
        "spacetime_best_score_quality",
        "spacetime_plot_bytes",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }

    // A second node on a running node's data directory is refused with a clear message.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_spacetime"))
        .args(["node", "--dev", "--no-mine", "--no-listen", "--data-dir"])
        .arg(&a_dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("locked by another running process"), "{err}");

    let b_id = b.line_starting("node id ").unwrap();
    assert!(b.stop().success(), "b exit status");
    assert!(a.stop().success(), "a exit status");
    // Identity and address book persist in the data directory.
    assert!(b_dir.join("node.key").exists() && b_dir.join("peers.dat").exists());
    let again = Node::start(&b_dir, b_listen, b_metrics, None);
    assert!(wait_until(Duration::from_secs(10), || again
        .line_starting("node id ")
        .is_some()));
    assert_eq!(again.line_starting("node id "), Some(b_id));
    // The chain survives the restart: mining continues above the old tip.
    let old = a_dir.join("chain.redb");
    assert!(old.exists());
    let again_a = Node::start(&a_dir, a_listen, a_metrics, None);
    assert!(
        wait_until(Duration::from_secs(30), || again_a.saw("height 4 | block ")),
        "{:?}",
        again_a.lines.lock().unwrap()
    );
    let first_block = again_a
        .lines
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| {
            l.strip_prefix("height ")
                .filter(|r| r.contains("| block "))
                .and_then(|r| r.split(' ').next())
                .and_then(|h| h.parse::<u64>().ok())
        })
        .unwrap();
    assert!(first_block >= 4, "restarted at height {first_block}");
}
