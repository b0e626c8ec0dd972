//! Plot system figures at testnet parameters, side by side in one run:
//!
//! - plotting rate (MB/s) on one core and on all cores, against the raw BLAKE2b bound for the
//!   two hashes per leaf the rules need (one chain step, one mixing hash);
//! - end-to-end `create_plot` of a bench plot (all cores, disk included);
//! - scan of one challenge's region with the page cache dropped, against a plain read of the
//!   same bytes;
//! - full scan against sampling: time and the quality of the best score found.
//!
//! Run: `cargo bench -p spacetime-actors --bench plots`. The bench plot (default 4 GiB, set
//! `SPACETIME_BENCH_PLOT_GIB`) is written to a temporary directory (`SPACETIME_BENCH_DIR`, else
//! the system temp dir) and deleted afterwards.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spacetime::hash::{Hash, hash, tags};
use spacetime::plot::{PlotShape, plot_id, select};
use spacetime::{GenesisConfig, PublicKey, Target};
use spacetime_actors::plots::plotter::compute_segment;
use spacetime_actors::plots::{
    PlotFile, PlotHandle, PlotRequest, ScanConfig, ScanJob, ScanMode, ScanStrategy, create_plot,
    scan_plot, sys,
};

fn testnet_shape() -> (spacetime::genesis::PlotParams, PlotShape) {
    let params = GenesisConfig::builtin("testnet").unwrap().plot;
    let shape = PlotShape::from(&params);
    (params, shape)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn plotting(c: &mut Criterion) {
    let (params, shape) = testnet_shape();
    let id = plot_id(&shape, &PublicKey([1; 32]), &Hash([2; 32]));
    let layout =
        spacetime_actors::plots::plan(&params, 1 << 30, 64 * shape.group_bytes() * 2).unwrap();
    let seg = layout.segment(0);
    let mut out = vec![0u8; seg.len as usize];
    let mut g = c.benchmark_group("plotting_testnet");
    g.throughput(Throughput::Bytes(seg.len));
    g.bench_function("raw_bound_blake2b_64B_x2_per_leaf", |b| {
        // Two hashes of 64 bytes per 32-byte leaf: the bound the rules allow.
        let data = [7u8; 64];
        b.iter(|| {
            for _ in 0..seg.len / 32 {
                black_box(hash(tags::PLOT_CHAIN, black_box(&data)));
                black_box(hash(tags::PLOT_LEAF, black_box(&data)));
            }
        })
    });
    g.bench_function("raw_bound_simd_many_x2_per_leaf", |b| {
        // The same two hashes per leaf through the multi-lane BLAKE2b the plotter uses.
        use blake2b_simd::many::{HashManyJob, hash_many};
        let mut params = blake2b_simd::Params::new();
        params.hash_length(32);
        let input = [7u8; 75];
        b.iter(|| {
            for _ in 0..seg.len / 32 * 2 / 16 {
                let mut jobs: Vec<HashManyJob> = (0..16)
                    .map(|_| HashManyJob::new(&params, black_box(&input)))
                    .collect();
                hash_many(jobs.iter_mut());
                black_box(jobs[0].to_hash());
            }
        })
    });
    g.bench_function("segment_1_thread", |b| {
        b.iter(|| compute_segment(&shape, &id, &seg, 1, &mut out, &mut |_| {}))
    });
    let n = cores();
    g.bench_function(format!("segment_{n}_threads"), |b| {
        b.iter(|| compute_segment(&shape, &id, &seg, n, &mut out, &mut |_| {}))
    });
    g.finish();
}

/// Evicts the plot's pages from the page cache (`POSIX_FADV_DONTNEED` on clean pages), so the
/// next read goes to the disk, without disturbing other processes' caches.
fn drop_caches(file: &std::fs::File) {
    sys::drop_cache(file);
}

struct BenchPlot {
    _dir: tempfile::TempDir,
    handle: Arc<PlotHandle>,
}

fn bench_plot() -> BenchPlot {
    let gib: u64 = std::env::var("SPACETIME_BENCH_PLOT_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let base = std::env::var_os("SPACETIME_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let (params, _) = testnet_shape();
    let req = PlotRequest {
        dir: dir.path().to_owned(),
        size: gib << 30,
        params,
        miner: PublicKey([9; 32]),
        seed: Some(Hash([8; 32])),
        threads: cores(),
        memory: 1 << 30,
        restart: false,
    };
    let out = create_plot(&req, &mut |_| {}).unwrap();
    let secs = out.elapsed.as_secs_f64();
    eprintln!(
        "create_plot: {} bytes of leaves in {:.1} s = {:.1} MB/s on {} threads (disk included)",
        out.computed,
        secs,
        out.computed as f64 / secs / 1e6,
        cores()
    );
    let handle = Arc::new(PlotHandle::new(PlotFile::open(&out.path, false).unwrap()));
    BenchPlot { _dir: dir, handle }
}

fn plain_read(path: &Path, runs: &[(u64, u64)], buf: &mut [u8]) -> u64 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    let mut total = 0;
    for &(off, len) in runs {
        let mut at = 0;
        while at < len {
            let n = (len - at).min(buf.len() as u64) as usize;
            f.read_exact_at(&mut buf[..n], off + at).unwrap();
            at += n as u64;
        }
        total += len;
    }
    total
}

fn scanning(c: &mut Criterion) {
    let bp = bench_plot();
    let h = bp.handle.clone();
    let plot = h.plot();
    let layout = *plot.layout();
    let challenges: Vec<Hash> = (0..64u32)
        .map(|i| hash(b"bench", &i.to_le_bytes()))
        .collect();
    let full = ScanConfig {
        strategy: ScanStrategy::Full,
        stop_on_win: false,
        timeout_ms: 60_000,
        ..ScanConfig::default()
    };
    let region: Vec<Vec<(u64, u64)>> = challenges
        .iter()
        .map(|ch| {
            let sel = select(&layout.shape, ch, &plot.plot_id());
            layout
                .region(sel.scoop, sel.bucket)
                .iter()
                .map(|r| (r.offset, r.len))
                .collect()
        })
        .collect();
    let region_bytes: u64 = region[0].iter().map(|r| r.1).sum();
    eprintln!(
        "bench plot: {} bytes, region {} bytes in {} run(s)",
        plot.size(),
        region_bytes,
        region[0].len()
    );

    let mut g = c.benchmark_group("scan_one_region_cold");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(region_bytes));
    let mut scan_time = Duration::ZERO;
    let mut read_time = Duration::ZERO;
    let mut scans = 0u32;
    let mut reads = 0u32;
    g.bench_function("scanner_full", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for i in 0..iters {
                let ch = challenges[i as usize % challenges.len()];
                drop_caches(plot.file());
                let job = ScanJob::new(ch, Target::ZERO, full.clone());
                let start = Instant::now();
                let r = scan_plot(&h, &job, &AtomicBool::new(false));
                t += start.elapsed();
                assert!(r.error.is_none() && r.leaves_read == r.region_leaves);
            }
            scan_time += t;
            scans += iters as u32;
            t
        })
    });
    let direct = PlotHandle::new(PlotFile::open(plot.path(), true).unwrap());
    g.bench_function("scanner_full_o_direct", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for i in 0..iters {
                let ch = challenges[i as usize % challenges.len()];
                drop_caches(plot.file());
                let job = ScanJob::new(ch, Target::ZERO, full.clone());
                let start = Instant::now();
                let r = scan_plot(&direct, &job, &AtomicBool::new(false));
                t += start.elapsed();
                assert!(r.error.is_none() && r.leaves_read == r.region_leaves);
            }
            t
        })
    });
    let mut buf = vec![0u8; 4 << 20];
    g.bench_function("plain_pread_same_bytes", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for i in 0..iters {
                drop_caches(plot.file());
                let start = Instant::now();
                black_box(plain_read(
                    plot.path(),
                    &region[i as usize % region.len()],
                    &mut buf,
                ));
                t += start.elapsed();
            }
            read_time += t;
            reads += iters as u32;
            t
        })
    });
    g.finish();
    let per_scan = scan_time / scans.max(1);
    let per_read = read_time / reads.max(1);
    eprintln!(
        "cold region (criterion means): scanner {per_scan:?} vs plain read {per_read:?}: ratio {:.2}",
        per_read.as_secs_f64() / per_scan.as_secs_f64()
    );
    // Paired: each challenge's region read cold by the scanner and by a plain pread, in
    // alternating order, so both see the same disk conditions.
    let mut pairs = Vec::new();
    for round in 0..3 {
        for (i, ch) in challenges.iter().enumerate() {
            let job = ScanJob::new(*ch, Target::ZERO, full.clone());
            let scan = || {
                drop_caches(plot.file());
                let start = Instant::now();
                let r = scan_plot(&h, &job, &AtomicBool::new(false));
                assert!(r.error.is_none());
                start.elapsed()
            };
            let mut read = || {
                drop_caches(plot.file());
                let start = Instant::now();
                black_box(plain_read(plot.path(), &region[i], &mut buf));
                start.elapsed()
            };
            let (s, r) = if (i + round) % 2 == 0 {
                let s = scan();
                (s, read())
            } else {
                let r = read();
                (scan(), r)
            };
            pairs.push((s, r));
        }
    }
    let mut scans: Vec<Duration> = pairs.iter().map(|p| p.0).collect();
    let mut reads: Vec<Duration> = pairs.iter().map(|p| p.1).collect();
    scans.sort();
    reads.sort();
    let (ms, mr) = (scans[scans.len() / 2], reads[reads.len() / 2]);
    eprintln!(
        "cold region (paired, {} regions): median scanner {ms:?} vs plain read {mr:?}: ratio {:.2}",
        pairs.len(),
        mr.as_secs_f64() / ms.as_secs_f64()
    );

    // Full scan against sampling one eighth of the region (warm cache: CPU cost and quality).
    let mut g = c.benchmark_group("strategy_warm");
    g.throughput(Throughput::Bytes(region_bytes));
    let sample = ScanConfig {
        strategy: ScanStrategy::Sampling,
        sample_leaves: (layout.groups_per_bucket() / 8).max(1),
        ..full.clone()
    };
    for (name, cfg) in [("full", &full), ("sampling_one_eighth", &sample)] {
        g.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                i += 1;
                let job = ScanJob::new(challenges[i % challenges.len()], Target::ZERO, cfg.clone());
                scan_plot(&h, &job, &AtomicBool::new(false))
            })
        });
    }
    g.finish();
    // Quality: the rank of sampling's best among all the region's scores, over the challenges.
    let mut ranks = Vec::new();
    let mut hits = 0;
    for ch in &challenges {
        let f = scan_plot(
            &h,
            &ScanJob::new(*ch, Target::ZERO, full.clone()),
            &AtomicBool::new(false),
        );
        let s = scan_plot(
            &h,
            &ScanJob::new(*ch, Target::ZERO, sample.clone()),
            &AtomicBool::new(false),
        );
        assert!(matches!(s.mode, ScanMode::Sampled(_)));
        let (fb, sb) = (f.best.unwrap().score, s.best.unwrap().score);
        if fb == sb {
            hits += 1;
        }
        // Expected rank of a score among n uniform scores is score / 2^256 * n.
        let top = u64::from_be_bytes(sb.0[..8].try_into().unwrap()) as f64 / 2f64.powi(64);
        ranks.push(top * f.region_leaves as f64);
        let _ = fb;
    }
    ranks.sort_by(f64::total_cmp);
    eprintln!(
        "sampling 1/8: found the full scan's best in {hits}/{} challenges; median rank of its best {:.1} (full scan: rank ~1)",
        challenges.len(),
        ranks[ranks.len() / 2]
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = plotting, scanning
}
criterion_main!(benches);
