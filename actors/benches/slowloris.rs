//! Connection exhaustion against a real `spacetime node` process on loopback: 200 source
//! addresses (127.0.0.2 ... 127.0.0.201; every loopback address reaches a node on 127.0.0.1)
//! open connections that never send a byte, then keep opening new ones every 5 ms (the
//! reconnect flood), holding the newest 250 open, while honest nodes connect.
//!
//! Figures, each beside its ceiling measured in the same run:
//! - seconds from an honest node's start until it has a session with the victim, under the
//!   flood (goal < 2 s), beside the same without the flood;
//! - established sessions dropped during the flood (goal 0): a node connected before the flood
//!   is polled every 20 ms and must never lose its session;
//! - the victim's resident memory (VmRSS, VmHWM) before and after the flood.
//!
//! The victim runs with `--dev`, so loopback is trusted: no flood connection is ever banned and
//! only the handshake pool (16 in flight, 5 s) and the inbound limits defend it, the hardest
//! case for them.
//!
//! `cargo bench --bench slowloris`: a 20 s flood; `-- --smoke`: 4 s. Exits non-zero when a goal
//! is missed.

#[path = "../tests/common/sync_chain.rs"]
mod sync_chain;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sync_chain::{Net, NodeProc, free_addr, wait_until};

const PEERS: &str = "spacetime_peers";
const SOURCES: u32 = 200;
const HELD: usize = 250;

/// Resident and peak resident memory of a process, KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts an honest node dialling `target`; the seconds until it has a session.
fn honest_connect(dir: &std::path::Path, target: SocketAddr) -> Option<f64> {
    let node = NodeProc::start(&Net::Dev, dir, None, &[target]);
    let ok = wait_until(Duration::from_secs(10), Duration::from_millis(10), || {
        node.metric(PEERS).is_some_and(|n| n >= 1.0)
    });
    let took = node.started.elapsed().as_secs_f64();
    let _ = node.stop();
    ok.then_some(took)
}

/// The flood: held connections from 200 addresses, then a new one every 5 ms.
fn flood(target: SocketAddr, on: Arc<AtomicBool>, opened: Arc<AtomicU64>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut held = std::collections::VecDeque::new();
        let mut n = 0u32;
        while on.load(Ordering::Relaxed) {
            let src = Ipv4Addr::new(127, 0, 0, 2 + (n % SOURCES) as u8);
            if let Ok(socket) = tokio::net::TcpSocket::new_v4()
                && socket.bind(SocketAddr::new(src.into(), 0)).is_ok()
                && let Ok(Ok(stream)) =
                    tokio::time::timeout(Duration::from_secs(1), socket.connect(target)).await
            {
                held.push_back(stream);
                if held.len() > HELD {
                    held.pop_front();
                }
                opened.fetch_add(1, Ordering::Relaxed);
            }
            n = n.wrapping_add(1);
            if n > SOURCES {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
}

fn main() -> ExitCode {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let flood_for = Duration::from_secs(if smoke { 4 } else { 20 });
    let dir = tempfile::tempdir().expect("temp dir");
    let listen = free_addr();
    let victim = NodeProc::start(&Net::Dev, &dir.path().join("victim"), Some(listen), &[]);
    assert!(
        victim.wait_line("listening on", Duration::from_secs(10)),
        "victim did not start: {}",
        victim.diagnostics()
    );
    let steady = NodeProc::start(&Net::Dev, &dir.path().join("steady"), None, &[listen]);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            steady.metric(PEERS) == Some(1.0)
        }),
        "the steady peer never connected: {}",
        steady.diagnostics()
    );
    let calm = honest_connect(&dir.path().join("calm"), listen).expect("connects without flood");
    let (rss_before, _) = rss_kib(victim.pid());

    let on = Arc::new(AtomicBool::new(true));
    let opened = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (on, opened) = (on.clone(), opened.clone());
        std::thread::spawn(move || flood(listen, on, opened))
    };
    std::thread::sleep(Duration::from_millis(500));
    let begun = Instant::now();
    let mut dropped_samples = 0u64;
    let mut samples = 0u64;
    let honest = {
        let honest_dir = dir.path().join("honest");
        let probe = std::thread::spawn(move || honest_connect(&honest_dir, listen));
        while begun.elapsed() < flood_for {
            samples += 1;
            if steady.metric(PEERS) != Some(1.0) {
                dropped_samples += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        probe.join().expect("probe thread")
    };
    let (rss_flood, hwm) = rss_kib(victim.pid());
    on.store(false, Ordering::Relaxed);
    let _ = flooder.join();
    let flood_connections = opened.load(Ordering::Relaxed);
    let text = victim.metrics_text();
    let evicted =
        sync_chain::metric_in(&text, "spacetime_p2p_inbound_evicted_total").unwrap_or(0.0);
    let refused =
        sync_chain::metric_in(&text, "spacetime_p2p_inbound_refused_total").unwrap_or(0.0);
    let timeouts =
        sync_chain::series_in(&text, "spacetime_p2p_handshake_failures_total", "timeout")
            .unwrap_or(0.0);
    let steady_ok = steady.metric(PEERS) == Some(1.0);

    println!(
        "flood: {flood_connections} connections from {SOURCES} loopback addresses over {:.0} s \
         (newest {HELD} held open)",
        flood_for.as_secs_f64()
    );
    println!(
        "victim: {evicted:.0} handshakes evicted, {refused:.0} connections refused, \
         {timeouts:.0} handshake timeouts"
    );
    match honest {
        Some(t) => println!(
            "honest session under the flood: {t:.3} s (goal < 2 s); without it: {calm:.3} s \
             ({:.1}x)",
            t / calm.max(1e-3)
        ),
        None => println!("honest session under the flood: none within 10 s"),
    }
    println!(
        "established sessions dropped: {} ({dropped_samples} of {samples} samples without the \
         session; goal 0)",
        u64::from(dropped_samples > 0 || !steady_ok)
    );
    println!(
        "victim memory: {} KiB resident before, {} KiB during the flood, peak {} KiB ({:+} KiB)",
        rss_before,
        rss_flood,
        hwm,
        rss_flood as i64 - rss_before as i64
    );
    let _ = steady.stop();
    let _ = victim.stop();
    let ok = honest.is_some_and(|t| t < 2.0) && dropped_samples == 0 && steady_ok;
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
