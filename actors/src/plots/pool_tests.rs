//! ScannerPool actor tests on small dev plots.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::{Actor, Addr};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use spacetime::plot::PlotShape;
use spacetime::{Hash, Target};

use super::metrics as m;
use super::tests::{config, dev_params, make_plot};
use super::*;

/// Longest any single step of these tests may take before it counts as hung.
const PATIENCE: Duration = Duration::from_secs(30);

/// `n` small plots in a fresh directory (paths sorted), and a manager that loaded them.
fn setup(first_seed: u8, n: u8) -> (tempfile::TempDir, Vec<PathBuf>, PlotManager) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths: Vec<_> = (first_seed..first_seed + n)
        .map(|s| make_plot(dir.path(), s, 256 << 10, 8 * 2048))
        .collect();
    // The manager's order.
    paths.sort();
    let mut manager = PlotManager::new(
        vec![dir.path().to_owned()],
        PlotShape::from(&dev_params()),
        false,
    );
    assert_eq!(manager.refresh().added.len(), usize::from(n));
    (dir, paths, manager)
}

/// Full scans, every plot read to the end, 4 KiB reads, two threads.
fn full() -> ScanConfig {
    ScanConfig {
        threads: 2,
        read_size: 4096,
        ..config(ScanStrategy::Full)
    }
}

fn scan(challenge: u8, target: Target, epoch: u64) -> Scan {
    Scan {
        challenge: Hash([challenge; 32]),
        target,
        epoch,
        deadline_ms_from_now: None,
    }
}

/// The reference: the same scan done sequentially on the calling thread.
fn reference(plots: &[Arc<PlotHandle>], challenge: u8, target: Target) -> ScanReport {
    scan_sequential(plots, &ScanJob::new(Hash([challenge; 32]), target, full()))
}

/// Closes (`on`) or opens the test gate of `plots`; closing also restarts the arrival count.
fn hold(plots: &[Arc<PlotHandle>], on: bool) {
    for p in plots {
        if on {
            p.gate.arrivals.store(0, Ordering::SeqCst);
        }
        p.gate.hold.store(on, Ordering::SeqCst);
    }
}

/// Waits until a scan is at a read of one of `plots` (held there while the gate is closed).
async fn reached_a_read(plots: &[Arc<PlotHandle>]) {
    tokio::time::timeout(PATIENCE, async {
        while plots
            .iter()
            .all(|p| p.gate.arrivals.load(Ordering::SeqCst) == 0)
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap();
}

async fn stats(addr: &Addr<ScannerPool>) -> PlotStats {
    addr.send(GetPlotStats).await.unwrap()
}

#[actix_rt::test]
async fn scan_finds_the_sequential_best_and_stats_count_plots() {
    let (_dir, _paths, manager) = setup(50, 4);
    let plots = manager.plots();
    let bytes = manager.total_bytes();
    assert!(bytes > 0);
    let addr = ScannerPool::new(manager, full()).start();
    assert_eq!(stats(&addr).await, PlotStats { plots: 4, bytes });
    for c in 0..4u8 {
        let want = reference(&plots, c, Target::ZERO);
        let got = addr
            .send(scan(c, Target::ZERO, 100 + u64::from(c)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.epoch, 100 + u64::from(c));
        assert_eq!(got.best, want.best());
        assert!(got.best.is_some());
        assert!(!got.winning && !got.timed_out);
        assert_eq!(got.plots_scanned, 4);
        assert!(got.dropped.is_empty());
        let leaves: u64 = want.plots.iter().map(|p| p.leaves_read).sum();
        assert_eq!(got.leaves_read, leaves);
        assert!(got.bytes_read >= leaves * 32);
    }
    // Every score is under the easiest target: the best one wins.
    let got = addr.send(scan(9, Target::MAX, 7)).await.unwrap().unwrap();
    assert!(got.winning);
    assert_eq!(got.best, reference(&plots, 9, Target::MAX).best());
    // A deadline already past: nothing is read, nothing wins.
    let late = Scan {
        deadline_ms_from_now: Some(0),
        ..scan(9, Target::MAX, 8)
    };
    let got = addr.send(late).await.unwrap().unwrap();
    assert!(got.timed_out && !got.winning);
    assert_eq!((got.leaves_read, got.best), (0, None));
    // No scan left running.
    assert!(!addr.send(CancelScan).await.unwrap());
}

#[actix_rt::test]
async fn a_new_scan_cancels_the_running_one_and_starts_after_it() {
    let (_dir, _paths, manager) = setup(60, 3);
    let plots = manager.plots();
    let addr = ScannerPool::new(
        manager,
        ScanConfig {
            threads: 1,
            ..full()
        },
    )
    .start();
    // The first scan is held at its first read: it cannot finish on its own.
    hold(&plots, true);
    let first = addr.send(scan(1, Target::ZERO, 1));
    reached_a_read(&plots).await;
    let second = addr.send(scan(2, Target::ZERO, 2));
    let first = tokio::time::timeout(PATIENCE, first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, Err(ScanError::Cancelled));
    // The second started only after the first returned; release it.
    hold(&plots, false);
    let second = tokio::time::timeout(PATIENCE, second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.epoch, 2);
    assert_eq!(second.best, reference(&plots, 2, Target::ZERO).best());
    assert_eq!(second.plots_scanned, 3);
}

#[actix_rt::test]
async fn back_to_back_scans_end_cancelled_or_complete_and_the_last_is_right() {
    let (_dir, _paths, manager) = setup(65, 4);
    let plots = manager.plots();
    let addr = ScannerPool::new(manager, full()).start();
    let requests: Vec<_> = (0..4u8)
        .map(|c| addr.send(scan(c, Target::ZERO, u64::from(c))))
        .collect();
    let mut results = Vec::new();
    for r in requests {
        results.push(tokio::time::timeout(PATIENCE, r).await.unwrap().unwrap());
    }
    for (c, r) in results.iter().enumerate() {
        match r {
            // Either cancelled by the next one, or it had finished before: then it is right.
            Err(e) => assert_eq!(*e, ScanError::Cancelled),
            Ok(o) => assert_eq!(o.best, reference(&plots, c as u8, Target::ZERO).best()),
        }
    }
    // Nothing cancels the last one.
    let last = results.pop().unwrap().unwrap();
    assert_eq!(last.best, reference(&plots, 3, Target::ZERO).best());
}

#[actix_rt::test]
async fn the_actor_answers_during_a_scan_and_cancel_scan_ends_it() {
    let (_dir, _paths, manager) = setup(70, 2);
    let plots = manager.plots();
    let bytes = manager.total_bytes();
    let addr = ScannerPool::new(manager, full()).start();
    hold(&plots, true);
    let running = actix_rt::spawn(addr.send(scan(5, Target::ZERO, 5)));
    reached_a_read(&plots).await;
    // The scan is held: it cannot have finished, yet the actor answers.
    let answered = tokio::time::timeout(PATIENCE, stats(&addr)).await.unwrap();
    assert_eq!(answered, PlotStats { plots: 2, bytes });
    assert!(!running.is_finished());
    assert!(addr.send(CancelScan).await.unwrap());
    let result = tokio::time::timeout(PATIENCE, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(result, Err(ScanError::Cancelled));
    assert!(!addr.send(CancelScan).await.unwrap());
    // Released, the pool scans normally again.
    hold(&plots, false);
    let got = addr.send(scan(5, Target::ZERO, 6)).await.unwrap().unwrap();
    assert_eq!(got.best, reference(&plots, 5, Target::ZERO).best());
}

/// Replaces `path` with `bytes` through a rename (a new file at the same path).
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[actix_rt::test]
async fn failing_plots_are_dropped_with_a_reason_and_mining_goes_on() {
    let (_dir, paths, manager) = setup(80, 4);
    let plots = manager.plots();
    let one_plot = plots[0].plot().size();
    let addr = ScannerPool::new(manager, full()).start();
    assert_eq!(stats(&addr).await.plots, 4);
    // Between the refresh and the scan: one plot deleted, one truncated.
    let truncated_bytes = std::fs::read(&paths[1]).unwrap();
    std::fs::remove_file(&paths[0]).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&paths[1])
        .unwrap()
        .set_len(one_plot / 2)
        .unwrap();
    let got = addr.send(scan(3, Target::ZERO, 1)).await.unwrap().unwrap();
    assert_eq!(got.dropped.len(), 2, "{:?}", got.dropped);
    assert_eq!(got.dropped[0].0, paths[0]);
    assert!(got.dropped[0].1.contains("deleted"), "{}", got.dropped[0].1);
    assert_eq!(got.dropped[1].0, paths[1]);
    assert!(
        got.dropped[1].1.contains("truncated"),
        "{}",
        got.dropped[1].1
    );
    assert_eq!(got.plots_scanned, 2);
    assert_eq!(got.best, reference(&plots[2..], 3, Target::ZERO).best());
    assert_eq!(
        stats(&addr).await,
        PlotStats {
            plots: 2,
            bytes: 2 * one_plot
        }
    );
    // The next scan uses the two good plots only.
    let again = addr.send(scan(4, Target::ZERO, 2)).await.unwrap().unwrap();
    assert!(again.dropped.is_empty());
    assert_eq!(again.plots_scanned, 2);
    assert_eq!(again.best, reference(&plots[2..], 4, Target::ZERO).best());
    // A refresh leaves the truncated file out (nothing new to report) ...
    let changes = addr.send(RefreshPlots).await.unwrap().unwrap();
    assert_eq!(changes, Changes::default());
    assert_eq!(stats(&addr).await.plots, 2);
    // ... until it is replaced by a good file.
    replace(&paths[1], &truncated_bytes);
    let changes = addr.send(RefreshPlots).await.unwrap().unwrap();
    assert_eq!(changes.added, vec![paths[1].clone()]);
    assert_eq!(stats(&addr).await.plots, 3);
    let back = addr.send(scan(4, Target::ZERO, 3)).await.unwrap().unwrap();
    assert_eq!(back.plots_scanned, 3);
}

#[actix_rt::test]
async fn a_plot_whose_winning_leaf_is_damaged_is_dropped() {
    use std::os::unix::fs::FileExt;
    let (_dir, paths, manager) = setup(85, 3);
    let plots = manager.plots();
    let addr = ScannerPool::new(manager, full()).start();
    let challenge = 6;
    let honest = reference(&plots, challenge, Target::MAX);
    // Overwrite plot 0's best leaf with bytes that score better than every honest leaf.
    let victim = &honest.plots[0];
    let best = victim.best.unwrap();
    let forged = (0u32..)
        .map(|k| {
            let mut leaf = [0u8; 32];
            leaf[..4].copy_from_slice(&k.to_le_bytes());
            leaf
        })
        .find(|leaf| {
            spacetime::plot::score(&Hash([challenge; 32]), leaf) < honest.best().unwrap().score
        })
        .unwrap();
    let plot = plots[0].plot();
    let sel = spacetime::plot::select(
        &plot.layout().shape,
        &Hash([challenge; 32]),
        &victim.plot_id,
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&paths[0])
        .unwrap()
        .write_all_at(&forged, plot.layout().leaf_offset(best.group, sel.scoop))
        .unwrap();
    let got = addr
        .send(scan(challenge, Target::MAX, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.dropped.len(), 1, "{:?}", got.dropped);
    assert_eq!(got.dropped[0].0, paths[0]);
    assert!(got.dropped[0].1.contains("corrupt"), "{}", got.dropped[0].1);
    // The winner comes from the two honest plots.
    assert!(got.winning);
    assert_eq!(
        got.best,
        reference(&plots[1..], challenge, Target::MAX).best()
    );
    assert_eq!(stats(&addr).await.plots, 2);
    // The file opens fine, but a refresh does not bring it back while it is unchanged.
    assert!(PlotFile::open(&paths[0], false).is_ok());
    assert_eq!(
        addr.send(RefreshPlots).await.unwrap(),
        Ok(Changes::default())
    );
    assert_eq!(stats(&addr).await.plots, 2);
}

#[actix_rt::test]
async fn dead_scanner_threads_fail_the_scan_but_drop_no_plot() {
    let (_dir, _paths, manager) = setup(95, 2);
    let addr = ScannerPool::with_pool(manager, full(), ScanPool::without_threads()).start();
    let got = addr.send(scan(1, Target::MAX, 1)).await.unwrap();
    assert_eq!(got, Err(ScanError::PoolFailed));
    assert_eq!(stats(&addr).await.plots, 2);
}

#[actix_rt::test]
async fn refreshes_find_new_plots_and_do_not_overlap() {
    let (dir, _paths, manager) = setup(90, 1);
    let addr = ScannerPool::new(manager, full()).start();
    let added = make_plot(dir.path(), 91, 256 << 10, 8 * 2048);
    // Two refreshes at once: the second finds the first still running.
    let a = addr.send(RefreshPlots);
    let b = addr.send(RefreshPlots);
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.unwrap().added, vec![added]);
    assert_eq!(b, Err(RefreshError::InProgress));
    assert_eq!(stats(&addr).await.plots, 2);
    assert_eq!(
        addr.send(RefreshPlots).await.unwrap(),
        Ok(Changes::default())
    );
}

#[test]
fn scans_and_plots_are_measured() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (_dir, paths, manager) = setup(100, 3);
    let plots = manager.plots();
    let one_plot = plots[0].plot().size();
    let snapshot = ::metrics::with_local_recorder(&recorder, || {
        actix_rt::System::new().block_on(async {
            let addr = ScannerPool::new(manager, full()).start();
            assert_eq!(stats(&addr).await.plots, 3);
            assert!(addr.send(scan(1, Target::MAX, 1)).await.unwrap().is_ok());
            assert!(addr.send(scan(1, Target::ZERO, 2)).await.unwrap().is_ok());
            // A deadline already past: timed out.
            let late = Scan {
                deadline_ms_from_now: Some(0),
                ..scan(1, Target::ZERO, 3)
            };
            assert!(addr.send(late).await.unwrap().unwrap().timed_out);
            hold(&plots, true);
            let running = addr.send(scan(2, Target::ZERO, 4));
            reached_a_read(&plots).await;
            assert!(addr.send(CancelScan).await.unwrap());
            assert_eq!(running.await.unwrap(), Err(ScanError::Cancelled));
            hold(&plots, false);
            std::fs::remove_file(&paths[0]).unwrap();
            let got = addr.send(scan(1, Target::ZERO, 5)).await.unwrap().unwrap();
            assert_eq!(got.dropped.len(), 1);
            snapshotter.snapshot().into_vec()
        })
    });
    let find = |name: &str, label: Option<(&str, &str)>| {
        snapshot
            .iter()
            .filter(|(k, _, _, _)| k.key().name() == name)
            .filter(|(k, _, _, _)| {
                label.is_none_or(|(lk, lv)| {
                    k.key().labels().any(|l| l.key() == lk && l.value() == lv)
                })
            })
            .map(|(_, _, _, v)| v)
            .collect::<Vec<_>>()
    };
    let counter = |name: &str, label| match find(name, label).as_slice() {
        [DebugValue::Counter(c)] => *c,
        other => panic!("{name} {label:?}: {other:?}"),
    };
    let gauge = |name: &str| match find(name, None).as_slice() {
        [DebugValue::Gauge(g)] => g.into_inner(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(counter(m::SCANS, Some(("outcome", "won"))), 1);
    assert_eq!(counter(m::SCANS, Some(("outcome", "lost"))), 2);
    assert_eq!(counter(m::SCANS, Some(("outcome", "timed_out"))), 1);
    assert_eq!(counter(m::SCANS, Some(("outcome", "cancelled"))), 1);
    assert_eq!(counter(m::PROOFS_FOUND, None), 1);
    assert_eq!(counter(m::PLOTS_DROPPED, None), 1);
    // Three plots, then one dropped.
    assert_eq!(gauge(m::PLOTS), 2.0);
    assert_eq!(gauge(m::PLOT_BYTES), (2 * one_plot) as f64);
    // The last scan lost against target 0: its quality is below zero.
    assert!(gauge(m::BEST_SCORE_QUALITY) < 0.0);
    // Every scan that ran was timed (all five).
    match find(m::SCAN_SECONDS, None).as_slice() {
        [DebugValue::Histogram(h)] => assert_eq!(h.len(), 5, "{h:?}"),
        other => panic!("{other:?}"),
    }
}
