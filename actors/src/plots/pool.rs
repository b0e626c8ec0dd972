//! The ScannerPool actor: owns the plot handles (a [`PlotManager`]) and the scanner threads
//! (a [`ScanPool`]), and scans the plots for a challenge without blocking its actix thread.
//!
//! - **One scan at a time.** A `Scan` that arrives while another runs (or waits to run)
//!   cancels it: the older caller gets `Err(ScanError::Cancelled)`, and the new scan starts
//!   only once the older one has returned, so no plot is ever scanned twice at once. A scan
//!   that had already covered every plot when it was cancelled still answers with its outcome.
//! - **Off the actix thread.** Scans run on the crossbeam pool and report through a
//!   `tokio::sync::oneshot`; refreshes run on tokio's blocking threads. Handlers only route.
//!   In the simulator ([`Spawner::Inline`]) both run inline on its one thread instead.
//! - **Recovery.** A plot whose scan fails (deleted, replaced, truncated, unreadable, or its
//!   winning leaf is not the rules' leaf) is dropped from mining with a warning naming the file
//!   and the reason, and listed in [`ScanOutcome::dropped`]; the other plots' result stands.
//!   Later refreshes leave the file out until it changes (length or modification time).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::fut::{self, ActorFutureExt};
use actix::{Actor, Context, Handler, Message, MessageResult, ResponseActFuture};
use spacetime::{Hash, Target};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::config::ScanConfig;
use super::manager::{Changes, PlotManager};
use super::metrics::{self as m, ScanResultKind};
use super::scan::{Candidate, PlotHandle, ScanJob, ScanPool, ScanReport};
use crate::spawn::Spawner;

/// Scans every plot for a challenge. A scan already running or waiting is cancelled (its
/// caller gets [`ScanError::Cancelled`]); this one starts once that one has returned.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<ScanOutcome, ScanError>")]
pub struct Scan {
    /// The epoch's challenge.
    pub challenge: Hash,
    /// The target a winning score must be under.
    pub target: Target,
    /// The epoch, echoed in the outcome.
    pub epoch: u64,
    /// Time the scan may take from now, in milliseconds (`None`: the configured `timeout_ms`).
    pub deadline_ms_from_now: Option<u64>,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// The epoch of the [`Scan`].
    pub epoch: u64,
    /// The lowest score read over the plots that scanned without error.
    pub best: Option<Candidate>,
    /// `best` meets the target: it makes a block.
    pub winning: bool,
    /// The deadline cut the scan of at least one plot short.
    pub timed_out: bool,
    /// Plots scanned without error (`dropped` holds the failed ones; a plot whose scanner
    /// thread died is in neither and stays in use).
    pub plots_scanned: usize,
    /// Leaves scored, over all plots.
    pub leaves_read: u64,
    /// Bytes read from disk, over all plots.
    pub bytes_read: u64,
    /// Wall time of the scan on the pool (waiting for a cancelled scan not included).
    pub elapsed: Duration,
    /// Plots whose scan failed, with the reason; they are no longer used for mining.
    pub dropped: Vec<(PathBuf, String)>,
}

/// Why a scan gave no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// A newer `Scan`, a `CancelScan` or shutdown ended it before it covered every plot.
    #[error("scan cancelled")]
    Cancelled,
    /// The scanner threads returned no result for any plot (they died); no plot is dropped.
    #[error("the scanner threads returned no result")]
    PoolFailed,
}

/// Rescans the plot directories (on a blocking thread): loads new plots, drops vanished or
/// changed ones.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<Changes, RefreshError>")]
pub struct RefreshPlots;

/// Why a refresh did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// Another refresh is running; try again later.
    #[error("a plot refresh is already running")]
    InProgress,
    /// The refresh panicked; the plots in use are unchanged.
    #[error("plot refresh failed: {0}")]
    Failed(String),
    /// The plot manager was lost (its refresh thread was shut down); no refresh is possible.
    #[error("the plot manager is unavailable")]
    Unavailable,
}

/// Asks for the size of the plot set used for mining.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "PlotStats")]
pub struct GetPlotStats;

/// The plot set used for mining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlotStats {
    /// Plots.
    pub plots: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Cancels the running (or waiting) scan, if any; answers whether there was one.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct CancelScan;

/// The latest scan: its cancel flag and the signal that it has returned.
#[derive(Debug)]
struct Running {
    id: u64,
    cancel: Arc<AtomicBool>,
    /// Resolves (sender dropped) once the scan's result has been handled by the actor.
    finished: oneshot::Receiver<()>,
}

/// Where the plot manager is.
#[derive(Debug)]
enum Slot {
    /// Here, ready for a refresh.
    Idle(PlotManager),
    /// On a blocking thread, refreshing.
    Refreshing,
    /// Lost with a refresh thread that never came back.
    Lost,
}

/// The ScannerPool actor. Start it with `ScannerPool::new(manager, config).start()`; the plot
/// set is the manager's plots as given (refresh the manager first, or send [`RefreshPlots`]).
#[derive(Debug)]
pub struct ScannerPool {
    manager: Slot,
    /// The plots used for mining (the manager's, minus drops not yet applied to it).
    plots: Vec<Arc<PlotHandle>>,
    /// Plots dropped while the manager was away refreshing.
    pending_drops: Vec<Arc<PlotHandle>>,
    pool: ScanPool,
    config: ScanConfig,
    running: Option<Running>,
    next_scan: u64,
    /// Plots and bytes last added to the gauges.
    reported: (usize, u64),
    /// Where refreshes run.
    spawner: Spawner,
}

impl ScannerPool {
    /// An actor scanning `manager`'s plots with `config` on `config.effective_threads()`
    /// scanner threads.
    pub fn new(manager: PlotManager, config: ScanConfig) -> Self {
        Self::with_spawner(manager, config, Spawner::Threads)
    }

    /// An actor whose scans and refreshes run where `spawner` says: on scanner and blocking
    /// threads, or inline (the simulator).
    pub fn with_spawner(manager: PlotManager, config: ScanConfig, spawner: Spawner) -> Self {
        let pool = if spawner.is_inline() {
            ScanPool::inline()
        } else {
            ScanPool::new(config.effective_threads())
        };
        Self {
            plots: manager.plots(),
            manager: Slot::Idle(manager),
            pending_drops: Vec::new(),
            pool,
            config,
            running: None,
            next_scan: 0,
            reported: (0, 0),
            spawner,
        }
    }

    /// The same actor on a given pool (tests).
    #[cfg(test)]
    pub(crate) fn with_pool(manager: PlotManager, config: ScanConfig, pool: ScanPool) -> Self {
        Self {
            pool,
            ..Self::new(manager, config)
        }
    }

    fn stats(&self) -> PlotStats {
        PlotStats {
            plots: self.plots.len(),
            bytes: self.plots.iter().map(|h| h.plot().size()).sum(),
        }
    }

    /// Moves the plot gauges to the current plot set.
    fn publish(&mut self) {
        let now = self.stats();
        m::plots_changed(
            now.plots as f64 - self.reported.0 as f64,
            now.bytes as f64 - self.reported.1 as f64,
        );
        self.reported = (now.plots, now.bytes);
    }

    /// Stops mining with `handle`; false when it was no longer in use.
    fn drop_plot(&mut self, handle: &Arc<PlotHandle>) -> bool {
        let before = self.plots.len();
        self.plots.retain(|h| !Arc::ptr_eq(h, handle));
        if self.plots.len() == before {
            return false;
        }
        match &mut self.manager {
            Slot::Idle(manager) => drop_from(manager, handle),
            Slot::Refreshing => self.pending_drops.push(handle.clone()),
            Slot::Lost => {}
        }
        true
    }

    /// Drops every plot whose scan failed; returns them with the reason.
    fn drop_failed(
        &mut self,
        plots: &[Arc<PlotHandle>],
        report: &ScanReport,
    ) -> Vec<(PathBuf, String)> {
        let mut dropped = Vec::new();
        for (i, (handle, scan)) in plots.iter().zip(&report.plots).enumerate() {
            let Some(error) = &scan.error else {
                continue;
            };
            let path = handle.plot().path();
            if report.lost.contains(&i) {
                // Not the plot's fault: it stays in use.
                tracing::warn!(plot = %path.display(), "no scan result for plot: {error}");
                continue;
            }
            let prefix = format!("{}: ", path.display());
            let reason = error.strip_prefix(&prefix).unwrap_or(error).to_owned();
            if self.drop_plot(handle) {
                tracing::warn!(plot = %path.display(), %reason, "plot dropped from mining");
                m::plot_dropped();
            }
            dropped.push((path.to_owned(), reason));
        }
        if !dropped.is_empty() {
            self.publish();
        }
        dropped
    }

    /// Handles the end of scan `id`.
    fn finish(
        &mut self,
        id: u64,
        epoch: u64,
        target: Target,
        result: Result<(Vec<Arc<PlotHandle>>, ScanReport), ScanError>,
    ) -> Result<ScanOutcome, ScanError> {
        if self.running.as_ref().is_some_and(|r| r.id == id) {
            self.running = None;
        }
        let (plots, report) = match result {
            Ok(done) => done,
            Err(e) => {
                m::scan_finished(match e {
                    ScanError::Cancelled => ScanResultKind::Cancelled,
                    ScanError::PoolFailed => ScanResultKind::Failed,
                });
                return Err(e);
            }
        };
        if !plots.is_empty() && report.lost.len() == plots.len() {
            tracing::error!("the scanner threads returned no result for any plot");
            m::scan_finished(ScanResultKind::Failed);
            return Err(ScanError::PoolFailed);
        }
        m::scan_time(report.elapsed.as_secs_f64());
        // Failures found by a cancelled scan are real: drop those plots all the same.
        let dropped = self.drop_failed(&plots, &report);
        if report.cancelled() {
            m::scan_finished(ScanResultKind::Cancelled);
            return Err(ScanError::Cancelled);
        }
        let good = || report.plots.iter().filter(|p| p.error.is_none());
        let best = good()
            .filter_map(|p| p.best)
            .min_by(|a, b| a.score.cmp(&b.score));
        let winning = best.is_some_and(|b| target.is_met_by(&b.score));
        let timed_out = report.timed_out();
        if let Some(b) = &best {
            m::best_score(&b.score, &target);
        }
        m::scan_finished(if winning {
            ScanResultKind::Won
        } else if timed_out {
            ScanResultKind::TimedOut
        } else {
            ScanResultKind::Lost
        });
        Ok(ScanOutcome {
            epoch,
            best,
            winning,
            timed_out,
            plots_scanned: good().count(),
            leaves_read: report.plots.iter().map(|p| p.leaves_read).sum(),
            bytes_read: report.plots.iter().map(|p| p.bytes_read).sum(),
            elapsed: report.elapsed,
            dropped,
        })
    }
}

/// Drops `handle` from `manager` if the manager still holds that very handle (a refresh may
/// have replaced the file at its path with a new plot).
fn drop_from(manager: &mut PlotManager, handle: &Arc<PlotHandle>) {
    let path = handle.plot().path();
    if manager.get(path).is_some_and(|h| Arc::ptr_eq(&h, handle)) {
        manager.drop_plot(path);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

impl Actor for ScannerPool {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.publish();
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // Let the scanner threads go at once: dropping the pool joins them.
        if let Some(running) = &self.running {
            running.cancel.store(true, Ordering::SeqCst);
        }
        m::plots_changed(-(self.reported.0 as f64), -(self.reported.1 as f64));
        self.reported = (0, 0);
    }
}

impl Handler<Scan> for ScannerPool {
    type Result = ResponseActFuture<Self, Result<ScanOutcome, ScanError>>;

    fn handle(&mut self, msg: Scan, _: &mut Context<Self>) -> Self::Result {
        let timeout = msg.deadline_ms_from_now.unwrap_or(self.config.timeout_ms);
        let job = ScanJob {
            challenge: msg.challenge,
            target: msg.target,
            deadline: Instant::now() + Duration::from_millis(timeout),
            config: self.config.clone(),
        };
        let (epoch, target) = (msg.epoch, msg.target);
        let id = self.next_scan;
        self.next_scan += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        let (finished_tx, finished_rx) = oneshot::channel::<()>();
        let previous = self
            .running
            .replace(Running {
                id,
                cancel: cancel.clone(),
                finished: finished_rx,
            })
            .map(|p| {
                p.cancel.store(true, Ordering::SeqCst);
                p.finished
            });
        let wait = async move {
            if let Some(finished) = previous {
                // Err just means the sender is gone: the previous scan is over either way.
                let _ = finished.await;
            }
        };
        let scan = fut::wrap_future::<_, Self>(wait)
            .then(move |(), act, _| {
                // Cancelled while waiting: never started.
                let started = (!cancel.load(Ordering::SeqCst)).then(|| {
                    let plots = act.plots.clone();
                    let (tx, rx) = oneshot::channel();
                    act.pool
                        .spawn_scan(plots.clone(), job, cancel, move |report| {
                            let _ = tx.send(report);
                        });
                    (plots, rx)
                });
                fut::wrap_future(async move {
                    let (plots, rx) = started.ok_or(ScanError::Cancelled)?;
                    let report = rx.await.map_err(|_| ScanError::PoolFailed)?;
                    Ok((plots, report))
                })
            })
            .map(move |result, act, _| {
                let outcome = act.finish(id, epoch, target, result);
                // Only now may the next scan start: this one's drops are applied.
                drop(finished_tx);
                outcome
            });
        Box::pin(scan)
    }
}

impl Handler<RefreshPlots> for ScannerPool {
    type Result = ResponseActFuture<Self, Result<Changes, RefreshError>>;

    fn handle(&mut self, _: RefreshPlots, _: &mut Context<Self>) -> Self::Result {
        let mut manager = match std::mem::replace(&mut self.manager, Slot::Refreshing) {
            Slot::Idle(manager) => manager,
            other => {
                let error = match other {
                    Slot::Refreshing => RefreshError::InProgress,
                    _ => RefreshError::Unavailable,
                };
                self.manager = other;
                return Box::pin(fut::ready(Err(error)));
            }
        };
        let work = self.spawner.run(move || {
            let changes =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| manager.refresh()));
            (manager, changes.map_err(|p| panic_message(p.as_ref())))
        });
        Box::pin(fut::wrap_future::<_, Self>(work).map(|joined, act, _| {
            let Ok((mut manager, changes)) = joined else {
                tracing::error!("the plot refresh thread was shut down; plots stay as they are");
                act.manager = Slot::Lost;
                act.pending_drops.clear();
                return Err(RefreshError::Unavailable);
            };
            for handle in std::mem::take(&mut act.pending_drops) {
                drop_from(&mut manager, &handle);
            }
            act.plots = manager.plots();
            act.manager = Slot::Idle(manager);
            act.publish();
            let changes = changes.map_err(RefreshError::Failed)?;
            for (path, reason) in &changes.failed {
                tracing::warn!(plot = %path.display(), %reason, "plot file refused");
            }
            if !changes.added.is_empty() || !changes.removed.is_empty() {
                tracing::info!(
                    added = changes.added.len(),
                    removed = changes.removed.len(),
                    plots = act.plots.len(),
                    "plots refreshed"
                );
            }
            Ok(changes)
        }))
    }
}

impl Handler<GetPlotStats> for ScannerPool {
    type Result = MessageResult<GetPlotStats>;

    fn handle(&mut self, _: GetPlotStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats())
    }
}

impl Handler<CancelScan> for ScannerPool {
    type Result = bool;

    fn handle(&mut self, _: CancelScan, _: &mut Context<Self>) -> bool {
        match &self.running {
            Some(running) => {
                running.cancel.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}

impl actix::Handler<crate::lifecycle::Stop> for ScannerPool {
    type Result = ();
    fn handle(&mut self, _: crate::lifecycle::Stop, ctx: &mut actix::Context<Self>) {
        actix::ActorContext::stop(ctx);
    }
}
