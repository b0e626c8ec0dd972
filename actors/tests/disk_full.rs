//! A real `spacetime node` process whose data directory is a small real tmpfs: it syncs until
//! the disk is full, then stops importing with one error line and a metric while it keeps
//! running; once the operator makes room (the tmpfs is grown), it resumes by itself and ends
//! on the source's tip, with nothing it had committed lost. Needs root for `mount` (CI runs as
//! root).

#![cfg(target_os = "linux")]

#[path = "common/sync_chain.rs"]
mod sync_chain;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use spacetime::Genesis;
use sync_chain::{Net, NodeProc, chain_tip, free_addr, import, mine, write_block_file};

const BLOCKS: u64 = 1_500;
const STATUS: &str = "spacetime_chain_storage_status";

/// A tmpfs mounted on a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            o.status.success(),
            "this test mounts a tmpfs and needs root: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Self(dir.to_owned())
    }

    fn resize(&self, bytes: u64) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.0)
            .output()
            .expect("mount runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn wait(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ok()
}

#[test]
fn a_node_on_a_full_disk_stops_importing_and_resumes_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = Genesis::builtin("dev").unwrap();
    let blocks = mine(&genesis, BLOCKS, |_| Vec::new());
    let file = dir.path().join("blocks.bin");
    write_block_file(&file, &blocks);
    let net = Net::Dev;
    let src_dir = dir.path().join("source");
    import(&net, &src_dir, &file, BLOCKS);
    let full_size = std::fs::metadata(src_dir.join("chain.redb")).unwrap().len();
    let source = NodeProc::start(&net, &src_dir, Some(free_addr()), &[]);
    assert!(
        source.wait_line("listening on", Duration::from_secs(10)),
        "{}",
        source.diagnostics()
    );

    // Room for about two thirds of the chain.
    let small = (full_size * 2 / 3).max(256 * 1024);
    let b_dir = dir.path().join("b");
    let disk = Tmpfs::mount(&b_dir, small);
    let b = NodeProc::start(&net, &b_dir, None, &[source.listen.unwrap()]);
    assert!(
        wait(Duration::from_secs(30), || b.metric(STATUS) == Some(1.0)),
        "the disk never filled: {}",
        b.diagnostics()
    );
    // Stuck short of the tip (a block may squeeze through when a reopen frees a page), the
    // process alive, one error line for the incident.
    std::thread::sleep(Duration::from_secs(3));
    let stuck = b.height().unwrap_or(0);
    assert!(
        stuck < BLOCKS,
        "height {stuck}: the disk never stopped the sync"
    );
    assert!(
        b.metric("spacetime_chain_write_failures_total")
            .unwrap_or(0.0)
            >= 1.0
    );
    let log = std::fs::read_to_string(b_dir.with_extension("log")).unwrap();
    let errors = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("cannot be written"))
        .count();
    assert_eq!(
        errors, 1,
        "one error line for the incident, not one per try:\n{log}"
    );

    // The operator makes room: it resumes by itself and finishes the sync.
    disk.resize(full_size * 4);
    b.wait_height(
        BLOCKS,
        Duration::from_millis(50),
        Duration::from_secs(60),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("after space returned: {e}"));
    assert_eq!(b.metric(STATUS), Some(0.0), "{}", b.diagnostics());
    let status = b.stop().expect("stops on SIGTERM");
    assert!(status.success(), "{status}");
    let (height, hash) = chain_tip(&net, &b_dir);
    assert_eq!(height, BLOCKS);
    assert_eq!(hash, blocks.last().unwrap().hash().to_string());
    source.stop().expect("source stops");
}
