//! Metrics of mining (the `ScannerPool` actor), through the `metrics` facade (exported by the
//! node's Prometheus endpoint). The plot gauges move by increments, so several pools in one
//! process (tests, the simulator) add up instead of overwriting each other.

use spacetime::{Hash, Target};

/// Wall time of scans that ran (won, lost, timed out or cancelled mid-way).
pub const SCAN_SECONDS: &str = "spacetime_scan_seconds";
/// Scans answered, by outcome (`won`, `lost`, `timed_out`, `cancelled`, `failed`).
pub const SCANS: &str = "spacetime_scans_total";
/// Scans whose best score met the target.
pub const PROOFS_FOUND: &str = "spacetime_proofs_found_total";
/// `log2(target) - log2(best score)` of the last finished scan, in bits: above 0 the scan won.
pub const BEST_SCORE_QUALITY: &str = "spacetime_best_score_quality";
/// Bytes of the plots used for mining.
pub const PLOT_BYTES: &str = "spacetime_plot_bytes";
/// Plots used for mining.
pub const PLOTS: &str = "spacetime_plots";
/// Plots dropped from mining because their scan failed.
pub const PLOTS_DROPPED: &str = "spacetime_plots_dropped_total";

/// How a scan ended, as reported in [`SCANS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanResultKind {
    /// The best score met the target.
    Won,
    /// Every plot was covered (as planned) and no score met the target.
    Lost,
    /// The deadline cut the scan short and no score met the target.
    TimedOut,
    /// A newer scan or a `CancelScan` ended it.
    Cancelled,
    /// The scanner threads returned no report.
    Failed,
}

impl ScanResultKind {
    const fn label(self) -> &'static str {
        match self {
            Self::Won => "won",
            Self::Lost => "lost",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// A 256-bit big-endian number as a float (rounded; enough for a logarithm).
fn to_f64(bytes: &[u8; 32]) -> f64 {
    bytes.iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b))
}

/// `log2(target) - log2(score)` in bits (a zero value counts as 1): how far under the target
/// the score is. Above 0 the score wins (up to rounding right at the target), `+3` means 8
/// times under the target, `-5` means 32 times over it.
pub fn score_quality(score: &Hash, target: &Target) -> f64 {
    to_f64(&target.0).max(1.0).log2() - to_f64(&score.0).max(1.0).log2()
}

/// A scan ended.
pub(crate) fn scan_finished(kind: ScanResultKind) {
    metrics::counter!(SCANS, "outcome" => kind.label()).increment(1);
    if kind == ScanResultKind::Won {
        metrics::counter!(PROOFS_FOUND).increment(1);
    }
}

/// A scan that ran took `seconds`.
pub(crate) fn scan_time(seconds: f64) {
    metrics::histogram!(SCAN_SECONDS).record(seconds);
}

/// The best score of a finished scan.
pub(crate) fn best_score(score: &Hash, target: &Target) {
    metrics::gauge!(BEST_SCORE_QUALITY).set(score_quality(score, target));
}

/// The plot set changed by `plots` plots and `bytes` bytes (negative: fewer).
pub(crate) fn plots_changed(plots: f64, bytes: f64) {
    if plots != 0.0 {
        metrics::gauge!(PLOTS).increment(plots);
    }
    if bytes != 0.0 {
        metrics::gauge!(PLOT_BYTES).increment(bytes);
    }
}

/// A plot was dropped from mining.
pub(crate) fn plot_dropped() {
    metrics::counter!(PLOTS_DROPPED).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_is_the_margin_in_bits() {
        let target = Target::from_leading_zero_bits(8);
        let mut score = Hash([0; 32]);
        score.0[3] = 1; // 2^224: 2^24 times under 2^248.
        assert!((score_quality(&score, &target) - 24.0).abs() < 1e-9);
        let mut over = Hash([0; 32]);
        over.0[0] = 0x04; // 2^250: 4 times over 2^248.
        assert!((score_quality(&over, &target) + 2.0).abs() < 1e-9);
        assert!(score_quality(&Hash([0; 32]), &Target::MAX) > 255.0);
    }
}
