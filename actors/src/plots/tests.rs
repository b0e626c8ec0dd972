//! Scanning, manager and check tests on small dev plots.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use spacetime::genesis::PlotParams;
use spacetime::plot::{PlotShape, compute_leaf, group_bucket, score, select};
use spacetime::{Hash, PublicKey, Target};

use super::*;

pub(super) fn dev_params() -> PlotParams {
    spacetime::GenesisConfig::builtin("dev").unwrap().plot
}

pub(super) fn make_plot(dir: &Path, seed: u8, size: u64, memory: u64) -> PathBuf {
    let req = PlotRequest {
        dir: dir.to_owned(),
        size,
        params: dev_params(),
        miner: PublicKey([5; 32]),
        seed: Some(Hash([seed; 32])),
        threads: 2,
        memory,
        restart: false,
    };
    create_plot(&req, &mut |_| {}).unwrap().path
}

pub(super) fn handle(path: &Path) -> Arc<PlotHandle> {
    Arc::new(PlotHandle::new(PlotFile::open(path, false).unwrap()))
}

pub(super) fn config(strategy: ScanStrategy) -> ScanConfig {
    ScanConfig {
        strategy,
        stop_on_win: false,
        timeout_ms: 60_000,
        read_size: 8192,
        ..ScanConfig::default()
    }
}

/// The true best score of a plot for a challenge, from the rules alone.
fn true_best(plot: &PlotFile, challenge: &Hash) -> (u64, Hash) {
    let l = *plot.layout();
    let sel = select(&l.shape, challenge, &plot.plot_id());
    (0..l.groups)
        .filter(|g| group_bucket(&l.shape, *g) == sel.bucket)
        .map(|g| {
            let leaf = compute_leaf(&l.shape, &plot.plot_id(), g, sel.scoop);
            (g, score(challenge, &leaf))
        })
        .min_by_key(|(_, s)| *s)
        .unwrap()
}

#[test]
fn full_scan_finds_the_true_minimum_and_sampling_reports_only_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB plot, segments of 16 groups: several runs per region.
    let path = make_plot(dir.path(), 1, 1 << 20, 32 * 2048);
    let h = handle(&path);
    for c in 0..6u8 {
        let challenge = Hash([c; 32]);
        let (group, best) = true_best(h.plot(), &challenge);
        let job = ScanJob::new(challenge, Target::ZERO, config(ScanStrategy::Full));
        let r = scan_plot(&h, &job, &AtomicBool::new(false));
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(r.leaves_read, r.region_leaves);
        let cand = r.best.unwrap();
        assert_eq!((cand.group, cand.score), (group, best));

        let mut cfg = config(ScanStrategy::Sampling);
        cfg.sample_leaves = 20;
        let job = ScanJob::new(challenge, Target::ZERO, cfg);
        let s = scan_plot(&h, &job, &AtomicBool::new(false));
        assert_eq!(s.mode, ScanMode::Sampled(20));
        assert!(
            s.leaves_read >= 20 && s.leaves_read < s.region_leaves,
            "{}",
            s.leaves_read
        );
        let cand = s.best.unwrap();
        let sel = select(&h.plot().layout().shape, &challenge, &h.plot().plot_id());
        let leaf = compute_leaf(
            &h.plot().layout().shape,
            &h.plot().plot_id(),
            cand.group,
            sel.scoop,
        );
        assert_eq!(cand.leaf, leaf, "sampling reports a leaf it read");
        assert_eq!(cand.score, score(&challenge, &leaf));
        assert!(cand.score >= best);
    }
}

#[test]
fn proofs_from_a_real_plot_verify_and_tampering_fails() {
    use spacetime::plot::{ProofError, verify_proof};
    let dir = tempfile::tempdir().unwrap();
    let h = handle(&make_plot(dir.path(), 6, 512 << 10, 1 << 20));
    let params = dev_params();
    let miner = h.plot().header().miner;
    for c in 0..4u8 {
        let challenge = Hash([c; 32]);
        let job = ScanJob::new(challenge, Target::MAX, config(ScanStrategy::Full));
        let best = scan_plot(&h, &job, &AtomicBool::new(false)).best.unwrap();
        let proof = best.proof();
        verify_proof(
            &params,
            &miner,
            &challenge,
            &proof,
            &best.score,
            &Target::MAX,
        )
        .unwrap();
        let next_in_bucket = spacetime::ProofOfSpace {
            group: proof.group + 4,
            ..proof
        };
        assert!(matches!(
            verify_proof(
                &params,
                &miner,
                &challenge,
                &next_in_bucket,
                &best.score,
                &Target::MAX
            ),
            Err(ProofError::ScoreMismatch { .. })
        ));
        let other_bucket = spacetime::ProofOfSpace {
            group: proof.group + 1,
            ..proof
        };
        assert!(matches!(
            verify_proof(
                &params,
                &miner,
                &challenge,
                &other_bucket,
                &best.score,
                &Target::MAX
            ),
            Err(ProofError::WrongBucket { .. })
        ));
        let other_miner = PublicKey([0xee; 32]);
        assert!(
            verify_proof(
                &params,
                &other_miner,
                &challenge,
                &proof,
                &best.score,
                &Target::MAX
            )
            .is_err()
        );
        assert!(matches!(
            verify_proof(
                &params,
                &miner,
                &challenge,
                &proof,
                &best.score,
                &Target(best.score.0)
            ),
            Err(ProofError::TargetNotMet { .. })
        ));
    }
}

#[test]
fn adaptive_samples_when_time_is_short() {
    let dir = tempfile::tempdir().unwrap();
    let h = handle(&make_plot(dir.path(), 2, 1 << 20, 1 << 20));
    let mut cfg = config(ScanStrategy::Adaptive);
    cfg.assumed_read_rate = 1_000_000_000;
    let job = ScanJob::new(Hash([1; 32]), Target::ZERO, cfg.clone());
    assert_eq!(
        scan_plot(&h, &job, &AtomicBool::new(false)).mode,
        ScanMode::Full
    );
    // Force a tiny measured rate: the plan becomes a sample.
    let fresh = handle(h.plot().path());
    cfg.assumed_read_rate = 1_000;
    cfg.timeout_ms = 1_000;
    let job = ScanJob::new(Hash([1; 32]), Target::ZERO, cfg);
    let r = scan_plot(&fresh, &job, &AtomicBool::new(false));
    assert!(matches!(r.mode, ScanMode::Sampled(_)), "{:?}", r.mode);
    assert!(r.leaves_read < r.region_leaves);
}

#[test]
fn early_termination_and_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let h = handle(&make_plot(dir.path(), 3, 1 << 20, 1 << 20));
    let mut cfg = config(ScanStrategy::Full);
    cfg.stop_on_win = true;
    let job = ScanJob::new(Hash([2; 32]), Target::MAX, cfg.clone());
    let stop = AtomicBool::new(false);
    let r = scan_plot(&h, &job, &stop);
    assert!(r.stopped_early);
    assert_eq!(r.leaves_read, 1);
    assert!(stop.load(Ordering::Relaxed));
    // Another plot of the same scan stops at once.
    let r2 = scan_plot(&h, &job, &stop);
    assert!(r2.stopped_early && r2.leaves_read == 0);

    let mut late = ScanJob::new(Hash([2; 32]), Target::ZERO, cfg);
    late.deadline = tokio::time::Instant::now() - Duration::from_millis(1);
    let r = scan_plot(&h, &late, &AtomicBool::new(false));
    assert!(r.timed_out);
    assert_eq!(r.leaves_read, 0);
}

#[test]
fn pool_equals_sequential() {
    let dir = tempfile::tempdir().unwrap();
    let plots: Vec<_> = (10..15u8)
        .map(|s| handle(&make_plot(dir.path(), s, 256 << 10, 8 * 2048)))
        .collect();
    let pool = ScanPool::new(3);
    for c in 0..4u8 {
        let job = ScanJob::new(Hash([c; 32]), Target::ZERO, config(ScanStrategy::Full));
        let par = pool.scan(&plots, &job);
        let seq = scan_sequential(&plots, &job);
        assert_eq!(par.plots.len(), 5);
        for (a, b) in par.plots.iter().zip(&seq.plots) {
            assert_eq!(a.plot_id, b.plot_id);
            assert_eq!(a.best, b.best);
            assert_eq!(a.leaves_read, b.leaves_read);
        }
        assert_eq!(par.best(), seq.best());
    }
}

#[test]
fn damaged_leaf_is_not_reported_and_check_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_plot(dir.path(), 4, 256 << 10, 1 << 20);
    assert!(check_plot(&path, 50, 1, false).unwrap().is_ok());
    let challenge = Hash([7; 32]);
    let h = handle(&path);
    // Every score wins: the best one is verified against the rules before it is reported.
    let job = ScanJob::new(challenge, Target::MAX, config(ScanStrategy::Full));
    let best = scan_plot(&h, &job, &AtomicBool::new(false)).best.unwrap();
    let layout = *h.plot().layout();
    let sel = select(&layout.shape, &challenge, &h.plot().plot_id());
    // Overwrite the best leaf with bytes that score even better: a damaged leaf that would
    // win. The scanner must recompute it and refuse it instead of reporting a false proof.
    let forged = (0u32..)
        .map(|k| {
            let mut leaf = [0u8; 32];
            leaf[..4].copy_from_slice(&k.to_le_bytes());
            leaf
        })
        .find(|leaf| score(&challenge, leaf) < best.score)
        .unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&forged, layout.leaf_offset(best.group, sel.scoop))
        .unwrap();
    let r = scan_plot(&h, &job, &AtomicBool::new(false));
    assert!(r.best.is_none());
    assert!(r.error.unwrap().contains("corrupt"));
    let report = check_plot(&path, 0, 1, false).unwrap();
    assert_eq!(report.bad_segments.len(), 1);
    // Damage half of the leaves: 100 sampled leaves miss all of them with probability 2^-100.
    let half = layout.data_len() / 2;
    f.write_all_at(&vec![0u8; half as usize], layout.data_offset())
        .unwrap();
    let report = check_plot(&path, 100, 2, true).unwrap();
    assert_eq!(report.segments_checked, 0, "quick mode reads no segment");
    assert!(!report.bad_leaves.is_empty() && report.bad_leaves.len() < 100);
    assert!(!report.is_ok());
}

#[test]
fn manager_discovers_recursively_skips_bad_files_and_tracks_changes() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    let p1 = make_plot(dir.path(), 20, 256 << 10, 1 << 20);
    let p2 = make_plot(&nested, 21, 256 << 10, 1 << 20);
    // Foreign, truncated and header-damaged files.
    std::fs::write(dir.path().join("foreign.plot"), b"definitely not a plot").unwrap();
    let bytes = std::fs::read(&p1).unwrap();
    std::fs::write(nested.join("truncated.plot"), &bytes[..bytes.len() - 32]).unwrap();
    let mut damaged = bytes.clone();
    damaged[100] ^= 1;
    std::fs::write(nested.join("damaged.plot"), &damaged).unwrap();
    std::fs::write(nested.join("ignored.plot.tmp"), &bytes).unwrap();

    let shape = PlotShape::from(&dev_params());
    let mut m = PlotManager::new(vec![dir.path().to_owned()], shape, false);
    let c = m.refresh();
    assert_eq!(c.added, vec![p1.clone(), p2.clone()]);
    assert_eq!(c.failed.len(), 3, "{:?}", c.failed);
    assert_eq!(m.total_bytes(), 2 * bytes.len() as u64);
    // Failures are reported once; nothing changed.
    assert_eq!(m.refresh(), Changes::default());

    // Add one, remove one.
    let p3 = make_plot(&nested, 22, 256 << 10, 1 << 20);
    std::fs::remove_file(&p1).unwrap();
    let c = m.refresh();
    assert_eq!(c.added, vec![p3]);
    assert_eq!(c.removed, vec![p1]);
    assert_eq!(m.len(), 2);

    // A scan over the manager's plots goes on beside a plot that becomes unreadable.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p2)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let job = ScanJob::new(Hash([1; 32]), Target::ZERO, config(ScanStrategy::Full));
    let report = ScanPool::new(2).scan(&m.plots(), &job);
    assert_eq!(report.plots.iter().filter(|p| p.error.is_some()).count(), 1);
    assert!(report.best().is_some());
    // And the next refresh drops it.
    let c = m.refresh();
    assert_eq!(c.removed.len(), 1);
    assert_eq!(c.failed.len(), 1);

    // A plot of other parameters is refused with a reason.
    let mut other = PlotManager::new(
        vec![dir.path().to_owned()],
        PlotShape {
            buckets: 8,
            ..shape
        },
        false,
    );
    let c = other.refresh();
    assert!(c.added.is_empty());
    assert!(
        c.failed
            .iter()
            .any(|(_, e)| e.contains("not this network's"))
    );
}

#[test]
fn scan_with_stop_cancels_and_tells_cancel_from_win() {
    let dir = tempfile::tempdir().unwrap();
    let plots: Vec<_> = (30..33u8)
        .map(|s| handle(&make_plot(dir.path(), s, 256 << 10, 8 * 2048)))
        .collect();
    let pool = ScanPool::new(2);
    let mut cfg = config(ScanStrategy::Full);
    cfg.read_size = 4096;
    let job = ScanJob::new(Hash([3; 32]), Target::ZERO, cfg.clone());

    // A stop flag set beforehand: nothing is read, every plot reports `cancelled`.
    let r = pool.scan_with_stop(&plots, &job, Arc::new(AtomicBool::new(true)));
    assert_eq!(r.plots.len(), 3);
    assert!(r.cancelled());
    for p in &r.plots {
        assert!(p.cancelled && !p.stopped_early && p.error.is_none());
        assert_eq!((p.leaves_read, p.bytes_read), (0, 0));
    }
    assert_eq!(r.best(), None);

    // Stopped in the middle: the scan is held before a read, then cancelled.
    for p in &plots {
        p.gate.hold.store(true, Ordering::SeqCst);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let r = std::thread::scope(|s| {
        let running = s.spawn(|| pool.scan_with_stop(&plots, &job, stop.clone()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while plots
            .iter()
            .all(|p| p.gate.arrivals.load(Ordering::SeqCst) == 0)
        {
            assert!(Instant::now() < deadline, "scan never reached a read");
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::SeqCst);
        running.join().unwrap()
    });
    assert!(r.cancelled());
    assert!(r.plots.iter().all(|p| p.cancelled && !p.stopped_early));
    // Held before their first read, or not started: nothing was read.
    assert!(
        r.plots
            .iter()
            .all(|p| p.leaves_read == 0 && p.region_leaves > 0)
    );
    for p in &plots {
        p.gate.hold.store(false, Ordering::SeqCst);
    }

    // A win is `stopped_early`, not `cancelled`; an unset flag changes nothing.
    cfg.stop_on_win = true;
    let win = ScanJob::new(Hash([3; 32]), Target::MAX, cfg);
    let r = pool.scan_with_stop(&plots, &win, Arc::new(AtomicBool::new(false)));
    assert!(!r.cancelled());
    assert!(r.plots.iter().any(|p| p.stopped_early));
    assert!(r.best().is_some());
    let full = pool.scan(&plots, &job);
    assert!(!full.cancelled());
    assert_eq!(full.best(), scan_sequential(&plots, &job).best());
}

#[test]
fn pool_reports_no_plots_at_once_and_lost_tasks() {
    let pool = ScanPool::new(1);
    let job = ScanJob::new(Hash([1; 32]), Target::MAX, config(ScanStrategy::Full));
    let r = pool.scan(&[], &job);
    assert!(r.plots.is_empty() && r.lost.is_empty());
    assert_eq!(r.best(), None);
    // No thread to take the tasks: every plot is reported lost, with an error.
    let dir = tempfile::tempdir().unwrap();
    let plots = vec![handle(&make_plot(dir.path(), 45, 256 << 10, 1 << 20))];
    let r = ScanPool::without_threads().scan(&plots, &job);
    assert_eq!(r.lost, vec![0]);
    assert!(r.plots[0].error.is_some() && r.best().is_none());
}

#[test]
fn dropped_plot_stays_out_until_its_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = make_plot(dir.path(), 40, 256 << 10, 1 << 20);
    let p2 = make_plot(dir.path(), 41, 256 << 10, 1 << 20);
    let shape = PlotShape::from(&dev_params());
    let mut m = PlotManager::new(vec![dir.path().to_owned()], shape, false);
    assert_eq!(m.refresh().added.len(), 2);
    assert!(m.get(&p1).is_some());
    // Dropped (say, a corrupt leaf): the unchanged file is not loaded again.
    assert!(m.drop_plot(&p1));
    assert!(!m.drop_plot(&p1));
    assert!(m.get(&p1).is_none());
    assert_eq!(m.len(), 1);
    assert_eq!(m.refresh(), Changes::default());
    // Replaced by a good copy (new inode, new modification time): loaded again.
    let bytes = std::fs::read(&p1).unwrap();
    let tmp = dir.path().join("copy.tmp");
    std::fs::write(&tmp, &bytes).unwrap();
    std::fs::rename(&tmp, &p1).unwrap();
    let c = m.refresh();
    assert_eq!(c.added, vec![p1.clone()]);
    assert_eq!(m.len(), 2);
    // A deleted plot is simply gone; a new file at its path is loaded.
    assert!(m.drop_plot(&p2));
    let bytes = std::fs::read(&p2).unwrap();
    std::fs::remove_file(&p2).unwrap();
    assert_eq!(m.refresh(), Changes::default());
    std::fs::write(&p2, &bytes).unwrap();
    assert_eq!(m.refresh().added, vec![p2]);
}

#[test]
fn a_fifo_named_like_a_plot_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("trap.plot");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Opening a FIFO for reading would block until a writer comes; it must be refused.
    let err = PlotFile::open(&fifo, false).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
    let mut manager = PlotManager::new(
        vec![dir.path().to_owned()],
        PlotShape::from(&dev_params()),
        false,
    );
    let changes = manager.refresh();
    assert_eq!(changes.failed.len(), 1);
    assert!(manager.is_empty());
}
