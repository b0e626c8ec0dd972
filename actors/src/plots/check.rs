//! `plot check`: header, every segment checksum, and a sample of leaves against the rules.

use std::path::{Path, PathBuf};

use spacetime::hash::{Hasher, tags};
use spacetime::plot::{PlotHeader, compute_leaf, segment_hasher};

use super::file::{PlotFile, PlotFileError};

/// What a check found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The file.
    pub path: PathBuf,
    /// Its header (valid, or the check would have failed earlier).
    pub header: PlotHeader,
    /// Segments whose checksum was verified.
    pub segments_checked: u64,
    /// Segments whose bytes do not match their checksum.
    pub bad_segments: Vec<u64>,
    /// Leaves recomputed from the rules.
    pub leaves_checked: u64,
    /// Sampled leaves that differ from the rules: (group, scoop).
    pub bad_leaves: Vec<(u64, u32)>,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.bad_segments.is_empty() && self.bad_leaves.is_empty()
    }
}

/// Checks a plot: the header (on open), every segment's checksum unless `quick`, and `samples`
/// leaves picked pseudo-randomly from `nonce`, recomputed from the rules.
pub fn check_plot(
    path: &Path,
    samples: u64,
    nonce: u64,
    quick: bool,
) -> Result<CheckReport, PlotFileError> {
    let plot = PlotFile::open(path, false)?;
    let layout = *plot.layout();
    let io = |error| PlotFileError::Io {
        path: path.to_owned(),
        error,
    };
    let mut report = CheckReport {
        path: path.to_owned(),
        header: plot.header().clone(),
        segments_checked: 0,
        bad_segments: Vec::new(),
        leaves_checked: 0,
        bad_leaves: Vec::new(),
    };
    if !quick {
        let mut buf = vec![0u8; 4 << 20];
        for i in 0..layout.segment_count() {
            let seg = layout.segment(i);
            let mut h = segment_hasher();
            let mut at = 0u64;
            while at < seg.len {
                let n = (seg.len - at).min(buf.len() as u64) as usize;
                plot.read_exact_at(&mut buf[..n], seg.offset + at)
                    .map_err(io)?;
                h.update(&buf[..n]);
                at += n as u64;
            }
            report.segments_checked += 1;
            if h.finalize() != plot.header().segments[i as usize] {
                report.bad_segments.push(i);
            }
        }
    }
    let g = layout.shape.group_leaves();
    for k in 0..samples {
        let mut h = Hasher::new(tags::PLOT_SEGMENT);
        h.update(plot.plot_id().as_bytes())
            .update(&nonce.to_le_bytes())
            .update(&k.to_le_bytes());
        let r = h.finalize().0;
        let mut a = [0u8; 8];
        a.copy_from_slice(&r[..8]);
        let group = u64::from_le_bytes(a) % layout.groups;
        a.copy_from_slice(&r[8..16]);
        let scoop = (u64::from_le_bytes(a) % g) as u32;
        let mut leaf = [0u8; 32];
        plot.read_exact_at(&mut leaf, layout.leaf_offset(group, scoop))
            .map_err(io)?;
        report.leaves_checked += 1;
        if leaf != compute_leaf(&layout.shape, &plot.plot_id(), group, scoop) {
            report.bad_leaves.push((group, scoop));
        }
    }
    Ok(report)
}
