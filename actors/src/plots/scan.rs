//! Scanning plots for a challenge: full, sampling and adaptive strategies, aligned large
//! sequential reads with read-ahead hints, early termination, a timeout, cancellation, and a
//! crossbeam pool that scans many plots in parallel.

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded, unbounded};
use spacetime::plot::{LEAF_BYTES, Leaf, Run, compute_leaf, select};
use spacetime::{Hash, Target};
// Tokio's clock: the system's monotonic clock on scanner threads, the simulator's virtual
// clock when a scan runs inline there.
use tokio::time::Instant;

use super::config::{ScanConfig, ScanStrategy};
use super::file::{PlotFile, read_full_at};
use super::score::BatchScorer;
use super::sys::{self, AlignedBuf};

const ALIGN: u64 = 4096;
/// Runs of a region requested from the kernel ahead of the one being read.
const READ_AHEAD_RUNS: usize = 4;

/// A plot open for scanning, with its measured read rate (for the adaptive strategy).
#[derive(Debug)]
pub struct PlotHandle {
    plot: PlotFile,
    /// Bytes per second measured by earlier scans; 0 = not measured yet.
    rate: AtomicU64,
    /// Test hook: holds scans of this plot before each read.
    #[cfg(test)]
    pub(crate) gate: TestGate,
}

/// Test hook: while `hold` is set, a scan of the plot waits before each read until it is
/// cancelled or released, so tests can catch a scan in the middle without timing guesses.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct TestGate {
    /// Scans wait while this is set.
    pub(crate) hold: AtomicBool,
    /// Times a scan reached the gate (one per read, held or not).
    pub(crate) arrivals: AtomicU64,
}

#[cfg(test)]
impl TestGate {
    fn pass(&self, cancel: &AtomicBool) {
        self.arrivals.fetch_add(1, Ordering::SeqCst);
        while self.hold.load(Ordering::SeqCst) && !cancel.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl PlotHandle {
    /// Wraps an open plot.
    pub fn new(plot: PlotFile) -> Self {
        // Regions are short runs far apart: no kernel read-ahead past them; the scanner asks
        // for exactly the runs it will read (`will_need`).
        sys::random_access(plot.file());
        Self {
            plot,
            rate: AtomicU64::new(0),
            #[cfg(test)]
            gate: TestGate::default(),
        }
    }

    /// The plot file.
    pub fn plot(&self) -> &PlotFile {
        &self.plot
    }

    /// The measured read rate in bytes per second (0 before the first scan).
    pub fn measured_rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    fn record_rate(&self, bytes: u64, elapsed: Duration) {
        if bytes < 64 << 10 || elapsed.is_zero() {
            return;
        }
        let measured = (bytes as f64 / elapsed.as_secs_f64()) as u64;
        let old = self.rate.load(Ordering::Relaxed);
        let new = if old == 0 {
            measured
        } else {
            (old + measured) / 2
        };
        self.rate.store(new, Ordering::Relaxed);
    }
}

/// One challenge to scan for.
#[derive(Debug, Clone)]
pub struct ScanJob {
    /// The epoch's challenge.
    pub challenge: Hash,
    /// The target a winning score must be under.
    pub target: Target,
    /// When the scan must have finished.
    pub deadline: Instant,
    /// Strategy and parameters.
    pub config: ScanConfig,
}

impl ScanJob {
    /// A job whose deadline is `config.timeout_ms` from now.
    pub fn new(challenge: Hash, target: Target, config: ScanConfig) -> Self {
        let deadline = Instant::now() + Duration::from_millis(config.timeout_ms);
        Self {
            challenge,
            target,
            deadline,
            config,
        }
    }
}

/// The best leaf a scan read in one plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The plot's seed (for the proof).
    pub seed: Hash,
    /// The group (for the proof).
    pub group: u64,
    /// The leaf as read.
    pub leaf: Leaf,
    /// Its score.
    pub score: Hash,
}

impl Candidate {
    /// The proof of space for a block header.
    pub fn proof(&self) -> spacetime::ProofOfSpace {
        spacetime::ProofOfSpace {
            plot_seed: self.seed,
            group: self.group,
        }
    }
}

/// How much of the region a scan planned to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// Every eligible leaf.
    Full,
    /// At most this many leaves.
    Sampled(u64),
}

/// The result of scanning one plot.
#[derive(Debug, Clone)]
pub struct PlotScan {
    /// The plot's id.
    pub plot_id: Hash,
    /// Best leaf read (lowest score), if any.
    pub best: Option<Candidate>,
    /// The plan.
    pub mode: ScanMode,
    /// Leaves in the challenge's region.
    pub region_leaves: u64,
    /// Leaves scored.
    pub leaves_read: u64,
    /// Bytes read from disk (alignment included).
    pub bytes_read: u64,
    /// Time spent.
    pub elapsed: Duration,
    /// Stopped because a score met the target (here or in another plot).
    pub stopped_early: bool,
    /// Stopped at the deadline.
    pub timed_out: bool,
    /// Stopped because the scan was cancelled (a newer challenge, shutdown): what was read is
    /// reported, but the plot's region was not covered.
    pub cancelled: bool,
    /// Set when the plot could not be read or its best leaf is not the rules' leaf; the plot
    /// is skipped, the scan of the others goes on.
    pub error: Option<String>,
}

impl PlotScan {
    fn empty(plot_id: Hash, mode: ScanMode, region_leaves: u64) -> Self {
        Self {
            plot_id,
            best: None,
            mode,
            region_leaves,
            leaves_read: 0,
            bytes_read: 0,
            elapsed: Duration::ZERO,
            stopped_early: false,
            timed_out: false,
            cancelled: false,
            error: None,
        }
    }

    /// A plot whose scan produced no result (its task never ran or did not finish).
    fn failed(plot_id: Hash, reason: &str) -> Self {
        Self {
            error: Some(reason.to_owned()),
            ..Self::empty(plot_id, ScanMode::Full, 0)
        }
    }
}

/// Leaf ranges `[start, end)` to read in each run.
fn plan_ranges(runs: &[Run], limit: Option<u64>, challenge: &Hash) -> Vec<(u64, u64)> {
    let total: u64 = runs.iter().map(|r| r.segment.groups).sum();
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&challenge.0[16..24]);
    let salt = u64::from_le_bytes(salt);
    runs.iter()
        .enumerate()
        .map(|(i, r)| {
            let n = r.segment.groups;
            match limit {
                Some(limit) if limit < total => {
                    let k = (u128::from(n) * u128::from(limit)).div_ceil(u128::from(total.max(1)))
                        as u64;
                    let k = k.min(n);
                    let start = salt
                        .wrapping_add(i as u64)
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        % (n - k + 1);
                    (start, start + k)
                }
                _ => (0, n),
            }
        })
        .collect()
}

/// Scans one plot. `stop` is shared by every plot of the same scan (early termination).
pub fn scan_plot(handle: &PlotHandle, job: &ScanJob, stop: &AtomicBool) -> PlotScan {
    scan_plot_cancellable(handle, job, stop, &AtomicBool::new(false))
}

/// Checks that the open file is still the plot that was loaded: not deleted or replaced (the
/// handle then reads an unlinked file) and not truncated.
fn check_file(plot: &PlotFile) -> Result<(), String> {
    let meta = plot
        .file()
        .metadata()
        .map_err(|e| format!("{}: cannot stat: {e}", plot.path().display()))?;
    if meta.nlink() == 0 {
        return Err(format!(
            "{}: file was deleted or replaced",
            plot.path().display()
        ));
    }
    if meta.len() < plot.size() {
        return Err(format!(
            "{}: file was truncated ({} of {} bytes)",
            plot.path().display(),
            meta.len(),
            plot.size()
        ));
    }
    Ok(())
}

/// Scans one plot like [`scan_plot`], and also ends as soon as `cancel` is set (checked
/// before every read, at most `read_size` bytes apart); the result is then marked
/// `cancelled`. `stop` is the scan's own early-termination flag (set by a win), `cancel`
/// comes from whoever started the scan.
pub fn scan_plot_cancellable(
    handle: &PlotHandle,
    job: &ScanJob,
    stop: &AtomicBool,
    cancel: &AtomicBool,
) -> PlotScan {
    let start = Instant::now();
    let plot = handle.plot();
    let layout = *plot.layout();
    let cfg = &job.config;
    let sel = select(&layout.shape, &job.challenge, &plot.plot_id());
    let runs = layout.region(sel.scoop, sel.bucket);
    let region_leaves = layout.groups_per_bucket();
    let mode = match cfg.strategy {
        ScanStrategy::Full => ScanMode::Full,
        ScanStrategy::Sampling if cfg.sample_leaves >= region_leaves => ScanMode::Full,
        ScanStrategy::Sampling => ScanMode::Sampled(cfg.sample_leaves.max(1)),
        ScanStrategy::Adaptive => {
            let rate = match handle.measured_rate() {
                0 => cfg.assumed_read_rate,
                r => r,
            };
            let left = job.deadline.saturating_duration_since(start).as_secs_f64();
            let budget =
                (rate as f64 * left * f64::from(cfg.adaptive_margin_percent) / 100.0) as u64;
            // Alignment can add up to 8 KiB per run.
            let full_bytes = region_leaves * LEAF_BYTES as u64 + runs.len() as u64 * 2 * ALIGN;
            if budget >= full_bytes {
                ScanMode::Full
            } else {
                ScanMode::Sampled((budget / LEAF_BYTES as u64).max(1))
            }
        }
    };
    let limit = match mode {
        ScanMode::Full => None,
        ScanMode::Sampled(n) => Some(n),
    };
    let ranges = plan_ranges(&runs, limit, &job.challenge);
    let mut out = PlotScan::empty(plot.plot_id(), mode, region_leaves);
    if cancel.load(Ordering::Relaxed) {
        out.cancelled = true;
        out.elapsed = start.elapsed();
        return out;
    }
    if let Err(e) = check_file(plot) {
        out.error = Some(e);
        out.elapsed = start.elapsed();
        return out;
    }
    let scorer = BatchScorer::new(&job.challenge);
    let read_size = cfg.aligned_read_size();
    let mut buf = AlignedBuf::new(read_size, ALIGN as usize);
    let spans: Vec<(u64, u64)> = runs
        .iter()
        .zip(&ranges)
        .map(|(r, &(a, b))| (r.offset + a * 32, (b - a) * 32))
        .collect();
    'runs: for (i, run) in runs.iter().enumerate() {
        let (off, len) = spans[i];
        if len == 0 {
            continue;
        }
        // Keep READ_AHEAD_RUNS runs requested ahead of the one being read: the kernel fetches
        // them while this one is scored.
        let ahead = if i == 0 {
            0..READ_AHEAD_RUNS
        } else {
            i + READ_AHEAD_RUNS - 1..i + READ_AHEAD_RUNS
        };
        for &(o, l) in spans
            .get(ahead.start.min(spans.len())..ahead.end.min(spans.len()))
            .unwrap_or(&[])
        {
            sys::will_need(plot.file(), o, l);
        }
        let aligned_start = off / ALIGN * ALIGN;
        let end = off + len;
        let mut pos = aligned_start;
        while pos < end {
            #[cfg(test)]
            handle.gate.pass(cancel);
            if cancel.load(Ordering::Relaxed) {
                out.cancelled = true;
                break 'runs;
            }
            if stop.load(Ordering::Relaxed) {
                out.stopped_early = true;
                break 'runs;
            }
            if Instant::now() >= job.deadline {
                out.timed_out = true;
                break 'runs;
            }
            let want = (end.div_ceil(ALIGN) * ALIGN - pos).min(read_size as u64) as usize;
            let got = match read_full_at(plot.file(), &mut buf.as_mut_slice()[..want], pos) {
                Ok(n) => n as u64,
                Err(e) => {
                    out.error = Some(format!("{}: read failed: {e}", plot.path().display()));
                    break 'runs;
                }
            };
            out.bytes_read += got;
            let lo = off.max(pos);
            let hi = end.min(pos + got);
            if hi < end.min(pos + want as u64) {
                out.error = Some(format!("{}: file ends early", plot.path().display()));
                break 'runs;
            }
            let bytes = &buf.as_slice()[(lo - pos) as usize..(hi - pos) as usize];
            let first = (lo - run.offset) / 32;
            let mut won = false;
            let best = &mut out.best;
            out.leaves_read += scorer.score_all(bytes, |t, sc| {
                if best.is_none_or(|b| sc < b.score) {
                    let mut leaf = [0u8; LEAF_BYTES];
                    leaf.copy_from_slice(&bytes[t * LEAF_BYTES..(t + 1) * LEAF_BYTES]);
                    *best = Some(Candidate {
                        seed: plot.header().seed,
                        group: run.segment.group(layout.shape.buckets, first + t as u64),
                        leaf,
                        score: sc,
                    });
                }
                won = cfg.stop_on_win && job.target.is_met_by(&sc);
                !won
            }) as u64;
            if won {
                stop.store(true, Ordering::Relaxed);
                out.stopped_early = true;
                break 'runs;
            }
            pos += want as u64;
        }
    }
    out.elapsed = start.elapsed();
    handle.record_rate(out.bytes_read, out.elapsed);
    if cfg.verify_best
        && let Some(best) = out.best
        && job.target.is_met_by(&best.score)
    {
        let expected = compute_leaf(&layout.shape, &plot.plot_id(), best.group, sel.scoop);
        if expected != best.leaf {
            out.error = Some(format!(
                "{}: damaged leaf (group {}, scoop {}): the plot is corrupt",
                plot.path().display(),
                best.group,
                sel.scoop
            ));
            out.best = None;
        }
    }
    out
}

/// The results of scanning many plots.
#[derive(Debug, Clone)]
pub struct ScanReport {
    /// One result per plot, in the order the plots were given.
    pub plots: Vec<PlotScan>,
    /// Indices (into `plots`) of plots whose task gave no result: a scanner thread died or no
    /// thread was left to take it. Their entries carry an error that says nothing about the
    /// plot itself.
    pub lost: Vec<usize>,
    /// Wall time of the whole scan.
    pub elapsed: Duration,
}

impl ScanReport {
    /// True when the scan was cancelled before it covered every plot.
    pub fn cancelled(&self) -> bool {
        self.plots.iter().any(|p| p.cancelled)
    }

    /// True when the deadline cut the scan of some plot short.
    pub fn timed_out(&self) -> bool {
        self.plots.iter().any(|p| p.timed_out)
    }

    /// The best candidate over all plots.
    pub fn best(&self) -> Option<Candidate> {
        self.plots
            .iter()
            .filter_map(|p| p.best)
            .min_by(|a, b| a.score.cmp(&b.score))
    }
}

/// Scans plots one after another on the calling thread (the reference for the pool).
pub fn scan_sequential(plots: &[Arc<PlotHandle>], job: &ScanJob) -> ScanReport {
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let plots = plots.iter().map(|p| scan_plot(p, job, &stop)).collect();
    ScanReport {
        plots,
        lost: Vec::new(),
        elapsed: start.elapsed(),
    }
}

/// The error of a plot whose task gave no result.
const NO_RESULT: &str = "scanner thread failed";

type Task = Box<dyn FnOnce() + Send + 'static>;
type Done = Box<dyn FnOnce(ScanReport) + Send + 'static>;

/// Gathers the per-plot results of one scan. Every task of the scan holds it; the last one to
/// let go (the scan is over: every plot returned, or its task was lost) builds the report and
/// hands it to `done`, so nobody has to wait on a thread for it.
struct Collector {
    slots: Vec<OnceLock<PlotScan>>,
    ids: Vec<Hash>,
    start: Instant,
    /// Only taken in `drop` (through `&mut`); the mutex just makes the collector `Sync`.
    done: Mutex<Option<Done>>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let done = match self.done.get_mut() {
            Ok(done) => done.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(done) = done else {
            return;
        };
        let mut lost = Vec::new();
        let plots = std::mem::take(&mut self.slots)
            .into_iter()
            .zip(&self.ids)
            .enumerate()
            .map(|(i, (slot, id))| {
                slot.into_inner().unwrap_or_else(|| {
                    lost.push(i);
                    PlotScan::failed(*id, NO_RESULT)
                })
            })
            .collect();
        done(ScanReport {
            plots,
            lost,
            elapsed: self.start.elapsed(),
        });
    }
}

/// A fixed pool of scanner threads fed through a crossbeam channel. Plots are shared
/// read-only (`Arc<PlotHandle>`, positioned reads); each task owns its buffers, and results
/// come back through a per-scan collector, so nothing is shared mutably but atomics (stop and
/// cancel flags, rate) and each plot's write-once result slot.
///
/// The pool itself does not serialise scans: two scans submitted at once share the threads and
/// may read the same plot at the same time (harmless, but twice the disk load). The
/// `ScannerPool` actor runs one scan at a time: it cancels the previous scan and starts the
/// next only after the previous one has returned.
#[derive(Debug)]
pub struct ScanPool {
    tasks: Option<Sender<Task>>,
    workers: Vec<JoinHandle<()>>,
    /// Scans run on the caller's thread (the simulator's [`ScanPool::inline`]).
    inline: bool,
}

impl ScanPool {
    /// Starts `threads` workers (at least one).
    pub fn new(threads: usize) -> Self {
        let (tx, rx) = unbounded::<Task>();
        let workers = (0..threads.max(1))
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("plot-scan-{i}"))
                    .spawn(move || {
                        for task in rx {
                            task();
                        }
                    })
            })
            .filter_map(Result::ok)
            .collect();
        Self {
            tasks: Some(tx),
            workers,
            inline: false,
        }
    }

    /// A pool without threads that scans on the caller's thread, plot after plot, before
    /// [`Self::spawn_scan`] returns (the simulator: no work may run outside its one thread).
    pub fn inline() -> Self {
        Self {
            tasks: None,
            workers: Vec::new(),
            inline: true,
        }
    }

    /// A pool without threads, as if every worker had died (tests the lost-task path).
    #[cfg(test)]
    pub(crate) fn without_threads() -> Self {
        Self {
            tasks: None,
            workers: Vec::new(),
            inline: false,
        }
    }

    /// Worker threads running.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Queues a scan of every plot for `job` and returns at once. `done` gets the report (one
    /// result per plot, in the order given) on whichever thread lets go of the scan last: the
    /// worker that finishes last, or the caller when every task ended before this returned
    /// (no plots, no task queued, or very fast plots); it must not block. Setting
    /// `cancel` ends every plot's scan of this job before its next read (marked `cancelled`);
    /// plots whose task had not started yet return at once.
    pub fn spawn_scan(
        &self,
        plots: Vec<Arc<PlotHandle>>,
        job: ScanJob,
        cancel: Arc<AtomicBool>,
        done: impl FnOnce(ScanReport) + Send + 'static,
    ) {
        let collector = Arc::new(Collector {
            slots: plots.iter().map(|_| OnceLock::new()).collect(),
            ids: plots.iter().map(|p| p.plot().plot_id()).collect(),
            start: Instant::now(),
            done: Mutex::new(Some(Box::new(done))),
        });
        // The scan's own early-termination flag (a win), apart from `cancel`.
        let stop = Arc::new(AtomicBool::new(false));
        let job = Arc::new(job);
        for (i, plot) in plots.into_iter().enumerate() {
            let (job, stop, cancel, collector) =
                (job.clone(), stop.clone(), cancel.clone(), collector.clone());
            let task: Task = Box::new(move || {
                let result = scan_plot_cancellable(&plot, &job, &stop, &cancel);
                if let Some(slot) = collector.slots.get(i) {
                    let _ = slot.set(result);
                }
            });
            // A task that cannot be queued is dropped with its share of the collector: the
            // plot is reported as failed.
            if self.inline {
                task();
            } else if let Some(tasks) = &self.tasks {
                let _ = tasks.send(task);
            }
        }
    }

    /// Scans every plot for `job` on the pool and waits for all results; setting `stop` (from
    /// another thread) cancels the scan: every plot's scan ends before its next read and is
    /// marked `cancelled` (see [`ScanReport::cancelled`]), apart from `stopped_early`, which
    /// means a score met the target.
    pub fn scan_with_stop(
        &self,
        plots: &[Arc<PlotHandle>],
        job: &ScanJob,
        stop: Arc<AtomicBool>,
    ) -> ScanReport {
        let start = Instant::now();
        let (tx, rx) = bounded::<ScanReport>(1);
        self.spawn_scan(plots.to_vec(), job.clone(), stop, move |report| {
            let _ = tx.send(report);
        });
        rx.recv().unwrap_or_else(|_| ScanReport {
            plots: plots
                .iter()
                .map(|p| PlotScan::failed(p.plot().plot_id(), NO_RESULT))
                .collect(),
            lost: (0..plots.len()).collect(),
            elapsed: start.elapsed(),
        })
    }

    /// Scans every plot for `job` on the pool and waits for all results.
    pub fn scan(&self, plots: &[Arc<PlotHandle>], job: &ScanJob) -> ScanReport {
        self.scan_with_stop(plots, job, Arc::new(AtomicBool::new(false)))
    }
}

impl Drop for ScanPool {
    fn drop(&mut self) {
        self.tasks = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
