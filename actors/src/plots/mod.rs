//! Plots on disk: the plotter, plot files, the plot manager, checks, and scanning.
//!
//! The rules (leaves, selection, scores, proofs, the file header) are the protocol core's
//! `spacetime::plot`; this module only does the I/O and the threads around them.

pub mod check;
pub mod config;
pub mod file;
pub mod lanes;
pub mod manager;
pub mod plotter;
pub mod scan;
pub mod score;
pub mod sys;

#[cfg(test)]
mod tests;

pub use check::{CheckReport, check_plot};
pub use config::{PlotsConfig, ScanConfig, ScanStrategy};
pub use file::{PlotFile, PlotFileError};
pub use manager::{Changes, PlotManager, discover};
pub use plotter::{PlotOutcome, PlotRequest, PlotterError, Progress, create_plot, plan};
pub use scan::{
    Candidate, PlotHandle, PlotScan, ScanJob, ScanMode, ScanPool, ScanReport, scan_plot,
    scan_sequential,
};
