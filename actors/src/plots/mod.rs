//! Plots on disk: the plotter, plot files, the plot manager, checks, scanning, and the
//! ScannerPool actor.
//!
//! The rules (leaves, selection, scores, proofs, the file header) are the protocol core's
//! `spacetime::plot`; this module only does the I/O and the threads around them.

pub mod check;
pub mod config;
pub mod file;
pub mod lanes;
pub mod manager;
pub mod metrics;
pub mod plotter;
pub mod pool;
pub mod scan;
pub mod score;
pub mod sys;

#[cfg(test)]
mod pool_tests;
#[cfg(test)]
mod tests;

pub use check::{CheckReport, check_plot};
pub use config::{PlotsConfig, ScanConfig, ScanStrategy};
pub use file::{PlotFile, PlotFileError};
pub use manager::{Changes, PlotManager, discover};
pub use plotter::{PlotOutcome, PlotRequest, PlotterError, Progress, create_plot, plan};
pub use pool::{
    CancelScan, GetPlotStats, PlotStats, RefreshError, RefreshPlots, Scan, ScanError, ScanOutcome,
    ScannerPool,
};
pub use scan::{
    Candidate, PlotHandle, PlotScan, ScanJob, ScanMode, ScanPool, ScanReport, scan_plot,
    scan_plot_cancellable, scan_sequential,
};
