//! The plotter: computes a plot segment by segment on all cores and streams it to disk with
//! bounded memory (two segment buffers), under a temporary name renamed only when complete.
//!
//! Crash safety: segment data is synced before its checksum enters the header, and the header
//! says "complete" only after every segment is written; the file keeps its `.plot.tmp` name
//! until then, so an interrupted run never leaves a file that looks valid. Running the same
//! command again resumes it (segments with a checksum are kept), `restart` deletes it first.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crossbeam_channel::bounded;
use spacetime::genesis::PlotParams;
use spacetime::plot::{
    LEAF_BYTES, Leaf, PlotHeader, PlotLayout, PlotShape, Segment, segment_hasher,
};
use spacetime::{Hash, PublicKey};

use super::file::{PLOT_EXTENSION, PlotFileError, TEMP_EXTENSION, read_header};
use super::lanes::{LANES, LaneBuffers, compute_groups};
use super::sys;

/// Groups a worker computes before handing them over for transposition.
const BATCH_GROUPS: u64 = 16;

/// Why plotting failed.
#[derive(Debug, thiserror::Error)]
pub enum PlotterError {
    /// The requested size holds fewer groups than the network's minimum plot.
    #[error("plot size {size} bytes is below the minimum of {min} bytes for this network")]
    TooSmall {
        /// Requested size.
        size: u64,
        /// Smallest plot in bytes.
        min: u64,
    },
    /// The requested size holds more groups than the network allows in one plot.
    #[error("plot size {size} bytes is above the maximum of {max} bytes for this network")]
    TooLarge {
        /// Requested size.
        size: u64,
        /// Largest plot in bytes.
        max: u64,
    },
    /// Not enough free disk space.
    #[error("not enough free space in {}: need {need} bytes, {available} available", .dir.display())]
    NoSpace {
        /// The plot directory.
        dir: PathBuf,
        /// Bytes still to reserve.
        need: u64,
        /// Bytes available.
        available: u64,
    },
    /// Another plotter is writing this plot.
    #[error("{} is being written by another plotter", .0.display())]
    Busy(PathBuf),
    /// A plot with this id already exists.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// A file or directory operation failed.
    #[error("{}: {error}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// An existing temporary plot could not be read.
    #[error(transparent)]
    Resume(#[from] PlotFileError),
    /// An unfinished plot's segments need more memory than the budget allows.
    #[error(
        "{} needs {need} bytes of segment buffers to resume, the memory budget is {memory}; raise --memory or start over with --restart",
        .path.display()
    )]
    ResumeMemory {
        /// The unfinished plot.
        path: PathBuf,
        /// Two segment buffers of its layout.
        need: u64,
        /// The budget asked for.
        memory: u64,
    },
}

/// What to plot.
#[derive(Debug, Clone)]
pub struct PlotRequest {
    /// Directory to write the plot into (must exist).
    pub dir: PathBuf,
    /// Approximate plot size in bytes (rounded down to whole groups, a multiple of `B`).
    pub size: u64,
    /// The network's plot parameters.
    pub params: PlotParams,
    /// The miner key the plot is bound to.
    pub miner: PublicKey,
    /// The plot seed; `None` draws one from the OS RNG.
    pub seed: Option<Hash>,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Memory budget for the two segment buffers, in bytes.
    pub memory: u64,
    /// Delete matching unfinished plots instead of resuming one.
    pub restart: bool,
}

/// Plotting progress, reported after every batch of groups.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Bytes of leaves computed in this run.
    pub done: u64,
    /// Bytes of leaves this run has to compute.
    pub total: u64,
    /// Time since this run started.
    pub elapsed: Duration,
}

/// A finished plot.
#[derive(Debug, Clone)]
pub struct PlotOutcome {
    /// The final path.
    pub path: PathBuf,
    /// Its header.
    pub header: PlotHeader,
    /// Segments kept from an interrupted run.
    pub resumed_segments: u64,
    /// Bytes of leaves computed by this run.
    pub computed: u64,
    /// Wall time of this run.
    pub elapsed: Duration,
}

/// The layout for a plot of about `size` bytes with a `memory` budget: `N` is rounded down to
/// a multiple of `B`; segments hold as many groups as half the budget allows.
pub fn plan(params: &PlotParams, size: u64, memory: u64) -> Result<PlotLayout, PlotterError> {
    let shape = PlotShape::from(params);
    let gb = shape.group_bytes();
    let b = u64::from(shape.buckets.max(1));
    let groups = size / gb / b * b;
    let min = params.min_groups.div_ceil(b) * b;
    if groups < min.max(b) {
        return Err(PlotterError::TooSmall {
            size,
            min: min.max(b).saturating_mul(gb),
        });
    }
    if groups > params.max_groups {
        return Err(PlotterError::TooLarge {
            size,
            max: params.max_groups.saturating_mul(gb),
        });
    }
    let per_bucket = groups / b;
    let chunk_groups = (memory / 2 / gb).clamp(1, per_bucket);
    let layout = PlotLayout {
        shape,
        groups,
        chunk_groups,
    };
    layout.validate().map_err(|_| PlotterError::TooLarge {
        size,
        max: params.max_groups.saturating_mul(gb),
    })?;
    Ok(layout)
}

/// Computes one segment into `out` (`segment.len` bytes, scoop-major) on `threads` threads.
/// `progress` is called with the number of groups finished so far.
pub fn compute_segment(
    shape: &PlotShape,
    plot_id: &Hash,
    segment: &Segment,
    threads: usize,
    out: &mut [u8],
    progress: &mut dyn FnMut(u64),
) {
    let g = shape.group_leaves() as usize;
    let k = segment.groups;
    let next = AtomicU64::new(0);
    let (tx, rx) = bounded::<(u64, Vec<Leaf>)>(threads.max(1) * 2);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                let mut bufs = LaneBuffers::default();
                let mut ids = Vec::with_capacity(LANES);
                loop {
                    let j0 = next.fetch_add(BATCH_GROUPS, Ordering::Relaxed);
                    if j0 >= k {
                        break;
                    }
                    let n = BATCH_GROUPS.min(k - j0) as usize;
                    let mut leaves = vec![[0u8; LEAF_BYTES]; n * g];
                    for (lane, out) in leaves.chunks_mut(LANES * g).enumerate() {
                        ids.clear();
                        ids.extend(
                            (0..out.len() / g).map(|t| {
                                segment.group(shape.buckets, j0 + (lane * LANES + t) as u64)
                            }),
                        );
                        compute_groups(shape, plot_id, &ids, &mut bufs, out);
                    }
                    if tx.send((j0, leaves)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut finished = 0u64;
        for (j0, leaves) in rx {
            let n = leaves.len() / g;
            for s in 0..g {
                let row = (s as u64 * k + j0) as usize * LEAF_BYTES;
                let dst = &mut out[row..row + n * LEAF_BYTES];
                for (t, slot) in dst.chunks_exact_mut(LEAF_BYTES).enumerate() {
                    slot.copy_from_slice(&leaves[t * g + s]);
                }
            }
            finished += n as u64;
            progress(finished);
        }
    });
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PlotterError + '_ {
    move |error| PlotterError::Io {
        path: path.to_owned(),
        error,
    }
}

fn write_header(file: &File, header: &PlotHeader, path: &Path) -> Result<(), PlotterError> {
    let mut bytes = header.encode();
    bytes.resize(header.layout.data_offset() as usize, 0);
    file.write_all_at(&bytes, 0).map_err(io_err(path))?;
    file.sync_data().map_err(io_err(path))
}

/// Unfinished plots in `dir` that a request would resume: same miner, shape and group count
/// (and seed, when the request names one).
fn resumable(
    req: &PlotRequest,
    layout: &PlotLayout,
) -> Result<Vec<(PathBuf, PlotHeader)>, PlotterError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&req.dir).map_err(io_err(&req.dir))?;
    for entry in entries {
        let path = entry.map_err(io_err(&req.dir))?.path();
        let is_tmp = path.extension().is_some_and(|e| e == TEMP_EXTENSION)
            && path
                .file_stem()
                .and_then(|s| Path::new(s).extension())
                .is_some_and(|e| e == PLOT_EXTENSION);
        // Only regular files: opening a FIFO would block.
        if !is_tmp || !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let Ok(header) = read_header(&file, &path) else {
            continue;
        };
        if header.miner == req.miner
            && header.layout.shape == layout.shape
            && header.layout.groups == layout.groups
            && req.seed.is_none_or(|s| s == header.seed)
        {
            found.push((path, header));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Paths of a plot: the final `<plot id>.plot` and the temporary `<plot id>.plot.tmp`.
pub fn plot_paths(dir: &Path, id: &Hash) -> (PathBuf, PathBuf) {
    let final_path = dir.join(format!("{id}.{PLOT_EXTENSION}"));
    let tmp = dir.join(format!("{id}.{PLOT_EXTENSION}.{TEMP_EXTENSION}"));
    (final_path, tmp)
}

/// Creates (or resumes) a plot; `progress` is called from this thread.
pub fn create_plot(
    req: &PlotRequest,
    progress: &mut dyn FnMut(Progress),
) -> Result<PlotOutcome, PlotterError> {
    let start = Instant::now();
    let layout = plan(&req.params, req.size, req.memory)?;
    let mut candidates = resumable(req, &layout)?;
    if req.restart {
        for (path, _) in candidates.drain(..) {
            let f = File::open(&path).map_err(io_err(&path))?;
            if !sys::try_lock_exclusive(&f) {
                return Err(PlotterError::Busy(path));
            }
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    let (mut header, tmp, fresh) = match candidates.into_iter().next() {
        Some((path, header)) => (header, path, false),
        None => {
            // Public (it is in the header) and only has to be unique: 32 bytes from the OS.
            let seed = match req.seed {
                Some(seed) => seed,
                None => Hash(spacetime::rng::os_bytes32().map_err(|e| PlotterError::Io {
                    path: req.dir.clone(),
                    error: std::io::Error::other(e),
                })?),
            };
            let header =
                PlotHeader::new(req.miner, seed, layout).map_err(|e| PlotterError::Io {
                    path: req.dir.clone(),
                    error: std::io::Error::other(e.to_string()),
                })?;
            let (_, tmp) = plot_paths(&req.dir, &header.plot_id());
            (header, tmp, true)
        }
    };
    let layout = header.layout;
    if !fresh {
        // The layout of an unfinished plot was planned with the budget of its first run.
        let need = (0..layout.segment_count())
            .map(|i| layout.segment(i).len)
            .max()
            .unwrap_or(0)
            .saturating_mul(2);
        if need > req.memory {
            return Err(PlotterError::ResumeMemory {
                path: tmp,
                need,
                memory: req.memory,
            });
        }
    }
    let id = header.plot_id();
    let (final_path, _) = plot_paths(&req.dir, &id);
    if final_path.exists() {
        return Err(PlotterError::Exists(final_path));
    }
    let file = if fresh {
        let available = sys::free_space(&req.dir).map_err(io_err(&req.dir))?;
        let need = layout.file_len();
        if need > available {
            return Err(PlotterError::NoSpace {
                dir: req.dir.clone(),
                need,
                available,
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        if !sys::try_lock_exclusive(&file) {
            return Err(PlotterError::Busy(tmp));
        }
        sys::reserve(&file, need).map_err(io_err(&tmp))?;
        write_header(&file, &header, &tmp)?;
        file
    } else {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        if !sys::try_lock_exclusive(&file) {
            return Err(PlotterError::Busy(tmp));
        }
        // Re-read the header under the lock: another plotter may have written more.
        let header_now = read_header(&file, &tmp)?;
        if header_now.plot_id() != header.plot_id() {
            return Err(PlotterError::Busy(tmp));
        }
        header = header_now;
        let len = file.metadata().map_err(io_err(&tmp))?.len();
        if len != layout.file_len() {
            file.set_len(layout.file_len()).map_err(io_err(&tmp))?;
        }
        file
    };

    let todo: Vec<u64> = (0..layout.segment_count())
        .filter(|&i| header.segments[i as usize] == Hash::ZERO)
        .collect();
    let resumed_segments = layout.segment_count() - todo.len() as u64;
    let gb = layout.shape.group_bytes();
    let total: u64 = todo.iter().map(|&i| layout.segment(i).len).sum();
    let max_seg = todo
        .iter()
        .map(|&i| layout.segment(i).len)
        .max()
        .unwrap_or(0) as usize;
    let threads = req.threads.max(1);
    let (work_tx, work_rx) = bounded::<(Segment, Vec<u8>)>(1);
    let (free_tx, free_rx) = bounded::<Vec<u8>>(2);
    for _ in 0..2.min(todo.len()) {
        let _ = free_tx.send(vec![0u8; max_seg]);
    }
    let written = std::thread::scope(|scope| -> Result<PlotHeader, PlotterError> {
        let file = &file;
        let tmp = &tmp;
        let mut hdr = header.clone();
        let writer = scope.spawn(move || -> Result<PlotHeader, PlotterError> {
            for (segment, buf) in work_rx {
                let data = &buf[..segment.len as usize];
                file.write_all_at(data, segment.offset)
                    .map_err(io_err(tmp))?;
                file.sync_data().map_err(io_err(tmp))?;
                let mut h = segment_hasher();
                h.update(data);
                hdr.segments[segment.index as usize] = h.finalize();
                write_header(file, &hdr, tmp)?;
                if free_tx.send(buf).is_err() {
                    break;
                }
            }
            Ok(hdr)
        });
        let mut done_before = 0u64;
        for &i in &todo {
            let segment = layout.segment(i);
            let Ok(mut buf) = free_rx.recv() else { break };
            let out = &mut buf[..segment.len as usize];
            compute_segment(&layout.shape, &id, &segment, threads, out, &mut |groups| {
                progress(Progress {
                    done: done_before + groups * gb,
                    total,
                    elapsed: start.elapsed(),
                });
            });
            done_before += segment.len;
            if work_tx.send((segment, buf)).is_err() {
                break;
            }
        }
        drop(work_tx);
        match writer.join() {
            Ok(r) => r,
            Err(_) => Err(PlotterError::Io {
                path: tmp.clone(),
                error: std::io::Error::other("plot writer thread panicked"),
            }),
        }
    })?;
    header = written;
    if header.segments.contains(&Hash::ZERO) {
        return Err(PlotterError::Io {
            path: tmp,
            error: std::io::Error::other("plotting stopped before every segment was written"),
        });
    }
    header.complete = true;
    write_header(&file, &header, &tmp)?;
    file.sync_all().map_err(io_err(&tmp))?;
    sys::drop_cache(&file);
    drop(file);
    std::fs::rename(&tmp, &final_path).map_err(io_err(&final_path))?;
    if let Ok(d) = File::open(&req.dir) {
        let _ = d.sync_all();
    }
    Ok(PlotOutcome {
        path: final_path,
        header,
        resumed_segments,
        computed: total,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plots::file::PlotFile;
    use spacetime::plot::{compute_group, compute_leaf};

    pub(crate) fn dev_params() -> PlotParams {
        spacetime::GenesisConfig::builtin("dev").unwrap().plot
    }

    fn request(dir: &Path, size: u64, seed: u8) -> PlotRequest {
        PlotRequest {
            dir: dir.to_owned(),
            size,
            params: dev_params(),
            miner: PublicKey([3; 32]),
            seed: Some(Hash([seed; 32])),
            threads: 2,
            memory: 64 << 10,
            restart: false,
        }
    }

    #[test]
    fn plan_rounds_and_bounds() {
        let p = dev_params();
        let shape = PlotShape::from(&p);
        let gb = shape.group_bytes();
        let b = u64::from(shape.buckets);
        let l = plan(&p, 1 << 20, 1 << 30).unwrap();
        assert_eq!(l.groups % b, 0);
        assert!(l.groups * gb <= 1 << 20);
        assert_eq!(l.chunk_groups, l.groups / b);
        let small = plan(&p, 1 << 20, 4 * gb).unwrap();
        assert_eq!(small.chunk_groups, 2);
        assert!(matches!(
            plan(&p, gb, 1 << 20),
            Err(PlotterError::TooSmall { .. })
        ));
    }

    #[test]
    fn segment_is_scoop_major_and_matches_the_rules() {
        let p = dev_params();
        let shape = PlotShape::from(&p);
        let layout = plan(&p, 256 << 10, 40 * shape.group_bytes()).unwrap();
        let id = Hash([1; 32]);
        let seg = layout.segment(layout.segment_count() - 1);
        let mut out = vec![0u8; seg.len as usize];
        compute_segment(&shape, &id, &seg, 3, &mut out, &mut |_| {});
        let g = shape.group_leaves() as usize;
        for j in [0, seg.groups / 2, seg.groups - 1] {
            let leaves = compute_group(&shape, &id, seg.group(shape.buckets, j));
            for s in [0usize, 1, g - 1] {
                let at = (s as u64 * seg.groups + j) as usize * 32;
                assert_eq!(&out[at..at + 32], &leaves[s][..]);
            }
        }
    }

    #[test]
    fn plots_are_deterministic_resumable_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let ra = request(&a, 512 << 10, 9);
        let out_a = create_plot(&ra, &mut |_| {}).unwrap();
        let mut rb = request(&b, 512 << 10, 9);
        rb.threads = 1;
        let out_b = create_plot(&rb, &mut |_| {}).unwrap();
        let bytes_a = std::fs::read(&out_a.path).unwrap();
        assert_eq!(
            bytes_a,
            std::fs::read(&out_b.path).unwrap(),
            "byte-identical plots"
        );
        assert!(out_a.header.layout.segment_count() > 4);

        // A plot's leaves are the rules' leaves.
        let plot = PlotFile::open(&out_a.path, false).unwrap();
        let layout = *plot.layout();
        for group in [0, 1, layout.groups - 1] {
            for scoop in [0u32, 17, 63] {
                let mut leaf = [0u8; 32];
                plot.read_exact_at(&mut leaf, layout.leaf_offset(group, scoop))
                    .unwrap();
                assert_eq!(
                    leaf,
                    compute_leaf(&layout.shape, &plot.plot_id(), group, scoop)
                );
            }
        }

        // Interrupt: turn the finished plot back into a temporary one with some segments
        // missing, then resume it: the result is identical again.
        let (final_b, tmp_b) = plot_paths(&b, &out_b.header.plot_id());
        let mut h = out_b.header.clone();
        h.complete = false;
        for i in [1usize, 3] {
            h.segments[i] = Hash::ZERO;
        }
        std::fs::rename(&final_b, &tmp_b).unwrap();
        let f = OpenOptions::new().write(true).open(&tmp_b).unwrap();
        f.write_all_at(&h.encode(), 0).unwrap();
        let seg = h.layout.segment(1);
        f.write_all_at(&vec![0u8; seg.len as usize], seg.offset)
            .unwrap();
        drop(f);
        assert!(
            PlotFile::open(&tmp_b, false).is_err(),
            "an unfinished plot never loads"
        );
        // Resuming keeps the first run's segment layout: a budget too small for it is refused
        // (not silently exceeded).
        let mut small = request(&b, 512 << 10, 9);
        small.memory = 1024;
        assert!(matches!(
            create_plot(&small, &mut |_| {}),
            Err(PlotterError::ResumeMemory { .. })
        ));
        let resumed = create_plot(&request(&b, 512 << 10, 9), &mut |_| {}).unwrap();
        assert_eq!(resumed.resumed_segments, h.layout.segment_count() - 2);
        assert_eq!(std::fs::read(&resumed.path).unwrap(), bytes_a);
        assert!(!tmp_b.exists());

        // The same plot again is refused; another seed is a new plot.
        assert!(matches!(
            create_plot(&request(&b, 512 << 10, 9), &mut |_| {}),
            Err(PlotterError::Exists(_))
        ));
    }

    #[test]
    fn a_plot_being_written_is_not_touched_by_a_second_plotter() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path(), 256 << 10, 4);
        let layout = plan(&req.params, req.size, req.memory).unwrap();
        let h = PlotHeader::new(req.miner, Hash([4; 32]), layout).unwrap();
        let (_, tmp) = plot_paths(dir.path(), &h.plot_id());
        std::fs::write(&tmp, h.encode()).unwrap();
        let holder = File::open(&tmp).unwrap();
        assert!(sys::try_lock_exclusive(&holder));
        assert!(matches!(
            create_plot(&req, &mut |_| {}),
            Err(PlotterError::Busy(_))
        ));
        let mut restart = req.clone();
        restart.restart = true;
        assert!(matches!(
            create_plot(&restart, &mut |_| {}),
            Err(PlotterError::Busy(_))
        ));
        assert!(tmp.exists());
        drop(holder);
        let out = create_plot(&req, &mut |_| {}).unwrap();
        assert_eq!(out.header.seed, Hash([4; 32]));
    }

    #[test]
    fn restart_discards_the_unfinished_plot() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path(), 256 << 10, 4);
        let layout = plan(&req.params, req.size, req.memory).unwrap();
        let h = PlotHeader::new(req.miner, Hash([4; 32]), layout).unwrap();
        let (_, tmp) = plot_paths(dir.path(), &h.plot_id());
        std::fs::write(&tmp, h.encode()).unwrap();
        let mut other = req.clone();
        other.seed = None;
        other.restart = true;
        let out = create_plot(&other, &mut |_| {}).unwrap();
        assert!(!tmp.exists());
        assert_ne!(out.header.seed, Hash([4; 32]));
    }

    #[test]
    fn refuses_when_the_disk_is_too_small() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path(), 0, 1);
        req.params.max_groups = u64::MAX;
        req.size = 1 << 62;
        req.memory = 1 << 62;
        assert!(matches!(
            create_plot(&req, &mut |_| {}),
            Err(PlotterError::NoSpace { .. })
        ));
    }
}
