//! Headers-first sync between real `spacetime node` processes over loopback TCP: a node killed
//! (SIGKILL) halfway through a 2,400-block download resumes from what it stored, without
//! downloading from genesis again, and ends on the source's tip; a node started late catches
//! up too; everything stops cleanly on SIGTERM.

#![cfg(unix)]

#[path = "common/sync_chain.rs"]
mod sync_chain;

use std::time::{Duration, Instant};

use spacetime::Genesis;
use sync_chain::{Net, NodeProc, chain_tip, free_addr, import, mine, write_block_file};

const BLOCKS: u64 = 2_400;
/// The sync window: what a node may request beyond what it still needs.
const WINDOW: u64 = 1_024;
const POLL: Duration = Duration::from_millis(20);
const STALL: Duration = Duration::from_secs(15);

#[test]
fn killed_sync_resumes_from_disk_and_late_node_catches_up() {
    let begun = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let genesis = Genesis::builtin("dev").unwrap();
    let blocks = mine(&genesis, BLOCKS, |_| Vec::new());
    let tip_hash = blocks.last().unwrap().hash().to_string();
    let file = dir.path().join("blocks.bin");
    write_block_file(&file, &blocks);
    let mined = begun.elapsed();

    let net = Net::Dev;
    let (src_dir, b_dir, c_dir) = (
        dir.path().join("source"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    import(&net, &src_dir, &file, BLOCKS);
    let source = NodeProc::start(&net, &src_dir, Some(free_addr()), &[]);
    assert!(
        source.wait_line("listening on", Duration::from_secs(10)),
        "source did not start: {}",
        source.diagnostics()
    );
    let src_addr = source.listen.unwrap();
    let prepared = begun.elapsed();

    // A fresh node syncs until about halfway, then is killed.
    let b = NodeProc::start(&net, &b_dir, None, &[src_addr]);
    let seen = b
        .wait_height(BLOCKS / 2, POLL, Duration::from_secs(30), STALL)
        .unwrap_or_else(|e| panic!("first run of b: {e}"));
    let before_kill = seen.last().unwrap().1;
    let first_run = download_stats(&b.metrics_text());
    b.kill();
    let (on_disk, _) = chain_tip(&net, &b_dir);
    assert!(
        on_disk > 0 && on_disk >= before_kill,
        "b reported height {before_kill} but kept {on_disk}"
    );
    assert!(on_disk < BLOCKS, "b finished before it was killed");

    // Restarted on the same directory, it goes on from there.
    let b = NodeProc::start(&net, &b_dir, Some(free_addr()), &[src_addr]);
    let seen = b
        .wait_height(BLOCKS, POLL, Duration::from_secs(30), STALL)
        .unwrap_or_else(|e| panic!("second run of b: {e}"));
    let first = seen.first().unwrap().1;
    assert!(first >= on_disk, "b restarted at {first}, below {on_disk}");
    assert!(
        seen.windows(2).all(|w| w[0].1 <= w[1].1),
        "b's height went back: {seen:?}"
    );
    // It connected only what it lacked (nothing from genesis again) and asked for far fewer
    // blocks than a download from genesis would.
    let text = b.metrics_text();
    let count = |name: &str| sync_chain::metric_in(&text, name).unwrap_or(0.0) as u64;
    let requested = count("spacetime_sync_blocks_requested_total");
    let extended = sync_chain::series_in(
        &text,
        "spacetime_blocks_imported_total",
        "status=\"extended\"",
    );
    assert!(
        extended == Some((BLOCKS - on_disk) as f64) && requested < BLOCKS + WINDOW,
        "b's second run, resuming at {on_disk}: {requested} blocks requested\n{}",
        b.diagnostics()
    );
    let second_run = download_stats(&text);
    let b_addr = b.listen.unwrap();
    let resumed = begun.elapsed();

    // A node started late catches up from both.
    let c = NodeProc::start(&net, &c_dir, None, &[src_addr, b_addr]);
    c.wait_height(BLOCKS, POLL, Duration::from_secs(30), STALL)
        .unwrap_or_else(|e| panic!("c: {e}"));
    let late = begun.elapsed();

    for (name, node) in [("c", c), ("b", b), ("source", source)] {
        let status = node.stop().unwrap();
        assert!(status.success(), "{name} exited with {status}");
    }
    for d in [&src_dir, &b_dir, &c_dir] {
        assert_eq!(
            chain_tip(&net, d),
            (BLOCKS, tip_hash.clone()),
            "{}",
            d.display()
        );
    }
    eprintln!(
        "mined {BLOCKS} in {:.1} s, source up at {:.1} s, b killed at {before_kill} \
         ({first_run}; kept {on_disk}), resumed and done at {:.1} s ({second_run}), \
         c done at {:.1} s, all stopped at {:.1} s",
        mined.as_secs_f64(),
        prepared.as_secs_f64(),
        resumed.as_secs_f64(),
        late.as_secs_f64(),
        begun.elapsed().as_secs_f64()
    );
}

/// What a node downloaded and imported, from its metrics page.
fn download_stats(text: &str) -> String {
    let count = |name: &str| sync_chain::metric_in(text, name).unwrap_or(0.0);
    let imported = |status: &str| {
        let label = format!("status=\"{status}\"");
        sync_chain::series_in(text, "spacetime_blocks_imported_total", &label).unwrap_or(0.0)
    };
    format!(
        "{} requested, {} received, {} extended, {} duplicate, {} unsolicited dropped",
        count("spacetime_sync_blocks_requested_total"),
        count("spacetime_sync_blocks_received_total"),
        imported("extended"),
        imported("duplicate"),
        count("spacetime_sync_unsolicited_dropped_total"),
    )
}
