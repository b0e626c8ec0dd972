//! The plot file format: a checksummed header, then the leaves laid out bucket by bucket so that
//! a challenge's region is one long run per segment.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "SPTPLOT\0"
//!      8     4  format version (u32 LE) = 1
//!     12     4  state (u32 LE): 0 = being plotted, 1 = complete
//!     16     1  group_leaves_log2, then 3 zero bytes
//!     20     4  chain_window (u32 LE)
//!     24     4  buckets (u32 LE)
//!     28     4  zero
//!     32    32  miner public key
//!     64    32  plot seed
//!     96    32  plot id (recomputed and checked on load)
//!    128     8  groups N (u64 LE), a multiple of B
//!    136     8  chunk groups K (u64 LE)
//!    144     8  segment count S (u64 LE) = B * ceil(N / B / K)
//!    152  32*S  segment checksums H("plot-segment", segment bytes); zero = not written yet
//!     ..    32  header checksum H("plot-header", every byte above)
//!     ..        zero padding to the data offset, a multiple of 4096
//! ```
//!
//! Data: bucket `b` (groups `g` with `g mod B == b`, in order of `q = g / B`) occupies
//! `N/B * G * 32` bytes starting at `data_offset + b * N/B * G * 32`. It is cut into segments of
//! `K` groups (the last may be shorter); inside a segment of `k` groups the leaves are stored
//! scoop-major: leaf `s` of the segment's `j`-th group is at `(s * k + j) * 32`. A challenge's
//! region `(scoop, bucket)` is therefore one run of `k * 32` bytes per segment of the bucket.
//! This integrity data is local to the miner, not consensus.

use super::{LEAF_BYTES, PlotShape, plot_id};
use crate::crypto::PublicKey;
use crate::hash::{Hash, Hasher, tags};

/// The first 8 bytes of every plot file.
pub const PLOT_MAGIC: [u8; 8] = *b"SPTPLOT\0";
/// The plot file format version this software writes and reads.
pub const PLOT_FORMAT_VERSION: u32 = 1;
/// Bytes of the header before the segment checksums.
pub const HEADER_FIXED_BYTES: usize = 152;
/// Alignment of the data offset (and of every segment when `G * 32` is a multiple of it).
pub const DATA_ALIGN: u64 = 4096;
/// Most segments a header may list (a 32 MiB header).
pub const MAX_SEGMENTS: u64 = 1 << 20;

const STATE_PLOTTING: u32 = 0;
const STATE_COMPLETE: u32 = 1;

/// Why a plot file header (or file) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file does not start with the plot magic.
    #[error("not a Spacetime plot file (bad magic)")]
    NotAPlot,
    /// The format version is not one this software reads.
    #[error(
        "unsupported plot format version {0} (this software reads version {PLOT_FORMAT_VERSION})"
    )]
    UnsupportedVersion(u32),
    /// The file ends inside the header.
    #[error("truncated plot header: {have} bytes, need {needed}")]
    TruncatedHeader {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        have: u64,
    },
    /// The header checksum does not match: the header is damaged.
    #[error("plot header checksum mismatch (damaged header)")]
    Checksum,
    /// A header field has an impossible value.
    #[error("invalid plot header: {0}")]
    Invalid(&'static str),
    /// The recorded plot id is not the one its key, seed and parameters give.
    #[error("plot id mismatch: header has {recorded}, key and seed give {computed}")]
    PlotId {
        /// Id in the header.
        recorded: Hash,
        /// Id recomputed.
        computed: Hash,
    },
    /// The file is not as long as its header says (truncated or extended).
    #[error("plot file is {actual} bytes, its header says {expected}")]
    Length {
        /// Length from the header.
        expected: u64,
        /// Length on disk.
        actual: u64,
    },
    /// The plot was not finished.
    #[error("plot is incomplete (plotting was interrupted)")]
    Incomplete,
}

/// Where a plot's leaves are in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlotLayout {
    /// The plot's shape.
    pub shape: PlotShape,
    /// `N`, the number of groups (a multiple of `B`).
    pub groups: u64,
    /// `K`, the groups per segment.
    pub chunk_groups: u64,
}

/// One segment: `groups` consecutive groups of one bucket, stored scoop-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index in the header's checksum list: `bucket * chunks_per_bucket + chunk`.
    pub index: u64,
    /// The bucket.
    pub bucket: u32,
    /// `q` (= `g / B`) of the segment's first group.
    pub first_q: u64,
    /// Groups in the segment.
    pub groups: u64,
    /// Byte offset in the file.
    pub offset: u64,
    /// Length in bytes (`groups * G * 32`).
    pub len: u64,
}

impl Segment {
    /// The group index of the segment's `j`-th group.
    pub fn group(&self, buckets: u32, j: u64) -> u64 {
        (self.first_q + j) * u64::from(buckets) + u64::from(self.bucket)
    }
}

/// One sequential read of a challenge's region: leaf `i` of the run belongs to
/// `segment.group(B, i)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The segment holding the run.
    pub segment: Segment,
    /// Byte offset in the file.
    pub offset: u64,
    /// Length in bytes (`segment.groups * 32`).
    pub len: u64,
}

impl PlotLayout {
    /// Checks the layout: `N` a non-zero multiple of `B`, `K >= 1`, a bounded segment count and
    /// a file length that fits in a u64.
    pub fn validate(&self) -> Result<(), HeaderError> {
        if !self.shape.is_valid() {
            return Err(HeaderError::Invalid("plot parameters out of range"));
        }
        let b = u64::from(self.shape.buckets);
        if self.groups == 0 || !self.groups.is_multiple_of(b) {
            return Err(HeaderError::Invalid(
                "group count must be a non-zero multiple of the bucket count",
            ));
        }
        if self.chunk_groups == 0 {
            return Err(HeaderError::Invalid(
                "chunk size must be at least one group",
            ));
        }
        if self.segment_count() > MAX_SEGMENTS {
            return Err(HeaderError::Invalid("too many segments"));
        }
        if self
            .groups
            .checked_mul(self.shape.group_bytes())
            .and_then(|d| d.checked_add(self.data_offset()))
            .is_none()
        {
            return Err(HeaderError::Invalid("plot size overflows"));
        }
        Ok(())
    }

    /// Groups per bucket (`N / B`).
    pub fn groups_per_bucket(&self) -> u64 {
        self.groups / u64::from(self.shape.buckets.max(1))
    }

    /// Segments per bucket (`ceil(N / B / K)`).
    pub fn chunks_per_bucket(&self) -> u64 {
        self.groups_per_bucket().div_ceil(self.chunk_groups.max(1))
    }

    /// Total segments (`B * chunks_per_bucket`).
    pub fn segment_count(&self) -> u64 {
        u64::from(self.shape.buckets).saturating_mul(self.chunks_per_bucket())
    }

    /// Header length without padding.
    pub fn header_len(&self) -> u64 {
        HEADER_FIXED_BYTES as u64 + 32 * self.segment_count().min(MAX_SEGMENTS) + 32
    }

    /// Byte offset of the first leaf.
    pub fn data_offset(&self) -> u64 {
        self.header_len().div_ceil(DATA_ALIGN) * DATA_ALIGN
    }

    /// Bytes of leaves (`N * G * 32`).
    pub fn data_len(&self) -> u64 {
        self.groups.saturating_mul(self.shape.group_bytes())
    }

    /// The whole file's length.
    pub fn file_len(&self) -> u64 {
        self.data_offset().saturating_add(self.data_len())
    }

    /// Segment number `index` (`index < segment_count()`).
    pub fn segment(&self, index: u64) -> Segment {
        let chunks = self.chunks_per_bucket().max(1);
        let bucket = index / chunks;
        let chunk = index % chunks;
        self.segment_at(bucket as u32, chunk)
    }

    fn segment_at(&self, bucket: u32, chunk: u64) -> Segment {
        let per_bucket = self.groups_per_bucket();
        let first_q = chunk * self.chunk_groups;
        let groups = self.chunk_groups.min(per_bucket.saturating_sub(first_q));
        let gb = self.shape.group_bytes();
        Segment {
            index: u64::from(bucket) * self.chunks_per_bucket() + chunk,
            bucket,
            first_q,
            groups,
            offset: self.data_offset() + (u64::from(bucket) * per_bucket + first_q) * gb,
            len: groups * gb,
        }
    }

    /// The runs to read for `(scoop, bucket)`, in file order.
    pub fn region(&self, scoop: u32, bucket: u32) -> Vec<Run> {
        (0..self.chunks_per_bucket())
            .map(|chunk| {
                let segment = self.segment_at(bucket, chunk);
                Run {
                    segment,
                    offset: segment.offset + u64::from(scoop) * segment.groups * LEAF_BYTES as u64,
                    len: segment.groups * LEAF_BYTES as u64,
                }
            })
            .collect()
    }

    /// File offset of leaf `scoop` of `group` (`group < N`, `scoop < G`).
    pub fn leaf_offset(&self, group: u64, scoop: u32) -> u64 {
        let b = u64::from(self.shape.buckets.max(1));
        let q = group / b;
        let chunk = q / self.chunk_groups.max(1);
        let segment = self.segment_at((group % b) as u32, chunk);
        let j = q - segment.first_q;
        segment.offset + (u64::from(scoop) * segment.groups + j) * LEAF_BYTES as u64
    }
}

/// A plot file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotHeader {
    /// True once every segment is written.
    pub complete: bool,
    /// The miner key the plot belongs to.
    pub miner: PublicKey,
    /// The plot seed.
    pub seed: Hash,
    /// Where the leaves are.
    pub layout: PlotLayout,
    /// Checksum of every segment; zero for a segment not yet written.
    pub segments: Vec<Hash>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn bytes32_at(b: &[u8], at: usize) -> [u8; 32] {
    let mut a = [0u8; 32];
    a.copy_from_slice(&b[at..at + 32]);
    a
}

/// `H("plot-segment", bytes)`; large segments are hashed incrementally with
/// `Hasher::new(tags::PLOT_SEGMENT)`.
pub fn segment_checksum(bytes: &[u8]) -> Hash {
    crate::hash::hash(tags::PLOT_SEGMENT, bytes)
}

impl PlotHeader {
    /// A header for a new plot, every segment unwritten.
    pub fn new(miner: PublicKey, seed: Hash, layout: PlotLayout) -> Result<Self, HeaderError> {
        layout.validate()?;
        Ok(Self {
            complete: false,
            miner,
            seed,
            layout,
            segments: vec![Hash::ZERO; layout.segment_count() as usize],
        })
    }

    /// The plot id of this plot.
    pub fn plot_id(&self) -> Hash {
        plot_id(&self.layout.shape, &self.miner, &self.seed)
    }

    /// The header bytes (without the padding up to the data offset).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.layout.header_len() as usize);
        out.extend_from_slice(&PLOT_MAGIC);
        out.extend_from_slice(&PLOT_FORMAT_VERSION.to_le_bytes());
        let state = if self.complete {
            STATE_COMPLETE
        } else {
            STATE_PLOTTING
        };
        out.extend_from_slice(&state.to_le_bytes());
        out.extend_from_slice(&[self.layout.shape.group_leaves_log2, 0, 0, 0]);
        out.extend_from_slice(&self.layout.shape.chain_window.to_le_bytes());
        out.extend_from_slice(&self.layout.shape.buckets.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(self.miner.as_bytes());
        out.extend_from_slice(self.seed.as_bytes());
        out.extend_from_slice(self.plot_id().as_bytes());
        out.extend_from_slice(&self.layout.groups.to_le_bytes());
        out.extend_from_slice(&self.layout.chunk_groups.to_le_bytes());
        out.extend_from_slice(&(self.segments.len() as u64).to_le_bytes());
        for s in &self.segments {
            out.extend_from_slice(s.as_bytes());
        }
        let sum = crate::hash::hash(tags::PLOT_HEADER, &out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// How many header bytes to read, from the first [`HEADER_FIXED_BYTES`]: checks the
    /// magic, version and segment bound first, so a foreign file is refused early.
    pub fn encoded_len(prefix: &[u8]) -> Result<usize, HeaderError> {
        if prefix.len() < PLOT_MAGIC.len() || prefix[..8] != PLOT_MAGIC {
            return Err(HeaderError::NotAPlot);
        }
        if prefix.len() < HEADER_FIXED_BYTES {
            return Err(HeaderError::TruncatedHeader {
                needed: HEADER_FIXED_BYTES as u64,
                have: prefix.len() as u64,
            });
        }
        let version = u32_at(prefix, 8);
        if version != PLOT_FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let count = u64_at(prefix, 144);
        if count > MAX_SEGMENTS {
            return Err(HeaderError::Invalid("too many segments"));
        }
        Ok(HEADER_FIXED_BYTES + 32 * count as usize + 32)
    }

    /// Decodes and checks a header: magic, version, checksum, field values, plot id. An
    /// incomplete header decodes (for resuming); loaders check [`PlotHeader::complete`].
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        let len = Self::encoded_len(bytes)?;
        if bytes.len() < len {
            return Err(HeaderError::TruncatedHeader {
                needed: len as u64,
                have: bytes.len() as u64,
            });
        }
        let body = &bytes[..len - 32];
        if crate::hash::hash(tags::PLOT_HEADER, body).0 != bytes32_at(bytes, len - 32) {
            return Err(HeaderError::Checksum);
        }
        let complete = match u32_at(bytes, 12) {
            STATE_PLOTTING => false,
            STATE_COMPLETE => true,
            _ => return Err(HeaderError::Invalid("unknown state")),
        };
        if bytes[17..20] != [0, 0, 0] || bytes[28..32] != [0; 4] {
            return Err(HeaderError::Invalid("reserved bytes are not zero"));
        }
        let shape = PlotShape {
            group_leaves_log2: bytes[16],
            chain_window: u32_at(bytes, 20),
            buckets: u32_at(bytes, 24),
        };
        let layout = PlotLayout {
            shape,
            groups: u64_at(bytes, 128),
            chunk_groups: u64_at(bytes, 136),
        };
        layout.validate()?;
        let count = u64_at(bytes, 144);
        if count != layout.segment_count() {
            return Err(HeaderError::Invalid(
                "segment count does not match the layout",
            ));
        }
        let segments = (0..count as usize)
            .map(|i| Hash(bytes32_at(bytes, HEADER_FIXED_BYTES + 32 * i)))
            .collect();
        let header = Self {
            complete,
            miner: PublicKey(bytes32_at(bytes, 32)),
            seed: Hash(bytes32_at(bytes, 64)),
            layout,
            segments,
        };
        let recorded = Hash(bytes32_at(bytes, 96));
        let computed = header.plot_id();
        if recorded != computed {
            return Err(HeaderError::PlotId { recorded, computed });
        }
        Ok(header)
    }

    /// Checks that a file of `len` bytes holds exactly this plot.
    pub fn check_file_len(&self, len: u64) -> Result<(), HeaderError> {
        let expected = self.layout.file_len();
        if len != expected {
            return Err(HeaderError::Length {
                expected,
                actual: len,
            });
        }
        Ok(())
    }

    /// Fails unless the plot is complete.
    pub fn check_complete(&self) -> Result<(), HeaderError> {
        if !self.complete || self.segments.contains(&Hash::ZERO) {
            return Err(HeaderError::Incomplete);
        }
        Ok(())
    }
}

/// Incremental segment checksum (for segments too large to hold in memory at once).
pub fn segment_hasher() -> Hasher {
    Hasher::new(tags::PLOT_SEGMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(groups: u64, k: u64) -> PlotLayout {
        PlotLayout {
            shape: PlotShape {
                group_leaves_log2: 3,
                chain_window: 4,
                buckets: 3,
            },
            groups,
            chunk_groups: k,
        }
    }

    #[test]
    fn every_leaf_has_one_place_and_regions_cover_the_file() {
        let l = layout(3 * 7, 3); // 7 groups per bucket, chunks of 3, 3, 1
        l.validate().unwrap();
        assert_eq!(l.segment_count(), 9);
        let mut seen = std::collections::BTreeSet::new();
        for g in 0..l.groups {
            for s in 0..8u32 {
                let off = l.leaf_offset(g, s);
                assert!(off >= l.data_offset() && off + 32 <= l.file_len());
                assert_eq!((off - l.data_offset()) % 32, 0);
                assert!(seen.insert(off), "leaf ({g}, {s}) shares an offset");
            }
        }
        assert_eq!(seen.len() as u64 * 32, l.data_len());
        for b in 0..3 {
            for s in 0..8 {
                let runs = l.region(s, b);
                assert_eq!(runs.len(), 3);
                for run in &runs {
                    for i in 0..run.segment.groups {
                        let g = run.segment.group(3, i);
                        assert_eq!(g % 3, u64::from(b));
                        assert_eq!(l.leaf_offset(g, s), run.offset + 32 * i);
                    }
                }
                let total: u64 = runs.iter().map(|r| r.len).sum();
                assert_eq!(total, 7 * 32);
            }
        }
        // Segments tile the data area in order.
        let mut at = l.data_offset();
        for i in 0..l.segment_count() {
            let seg = l.segment(i);
            assert_eq!(seg.index, i);
            assert_eq!(seg.offset, at);
            at += seg.len;
        }
        assert_eq!(at, l.file_len());
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let l = layout(6, 2);
        let mut h = PlotHeader::new(PublicKey([1; 32]), Hash([2; 32]), l).unwrap();
        h.segments[1] = Hash([3; 32]);
        let bytes = h.encode();
        assert_eq!(bytes.len() as u64, l.header_len());
        assert_eq!(PlotHeader::decode(&bytes).unwrap(), h);
        assert_eq!(PlotHeader::check_complete(&h), Err(HeaderError::Incomplete));

        // Flip every byte in turn: each flip is refused.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(PlotHeader::decode(&b).is_err(), "byte {i}");
        }
        assert_eq!(
            PlotHeader::decode(b"hello world, not a plot"),
            Err(HeaderError::NotAPlot)
        );
        assert!(matches!(
            PlotHeader::decode(&bytes[..bytes.len() - 1]),
            Err(HeaderError::TruncatedHeader { .. })
        ));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert_eq!(
            PlotHeader::decode(&v2),
            Err(HeaderError::UnsupportedVersion(2))
        );
        assert!(matches!(
            h.check_file_len(l.file_len() - 1),
            Err(HeaderError::Length { .. })
        ));
        h.check_file_len(l.file_len()).unwrap();
    }

    #[test]
    fn layout_rejects_bad_values() {
        assert!(layout(7, 2).validate().is_err(), "not a multiple of B");
        assert!(layout(0, 2).validate().is_err());
        assert!(layout(6, 0).validate().is_err());
        assert!(layout(3 << 40, 1).validate().is_err(), "too many segments");
        assert!(
            layout(u64::MAX / 3 * 3, u64::MAX).validate().is_err(),
            "overflow"
        );
    }
}
