//! Metrics of sync (`spacetime_sync_*`), through the `metrics` facade.

use spacetime::p2p::Misbehavior;
use spacetime::sync::{SyncPhase, SyncStatus};

/// Tip over target height, 0 to 1.
pub const PROGRESS: &str = "spacetime_sync_progress_ratio";
/// Recent blocks connected per second.
pub const BLOCKS_PER_SECOND: &str = "spacetime_sync_blocks_per_second";
/// Estimated seconds to the target height (0 when synced or unknown).
pub const ETA_SECONDS: &str = "spacetime_sync_eta_seconds";
/// The height sync is heading for: the best header or a peer's claimed height.
pub const TARGET_HEIGHT: &str = "spacetime_sync_target_height";
/// The best verified header's height.
pub const HEADER_HEIGHT: &str = "spacetime_sync_header_height";
/// 1 during initial block download.
pub const IN_IBD: &str = "spacetime_sync_in_ibd";
/// Phase: 0 idle, 1 headers, 2 blocks, 3 synced.
pub const PHASE: &str = "spacetime_sync_phase";
/// Block requests in flight.
pub const IN_FLIGHT: &str = "spacetime_sync_blocks_in_flight";
/// Peers sync knows.
pub const PEERS: &str = "spacetime_sync_peers";
/// Current stall timeout, seconds.
pub const STALL_TIMEOUT: &str = "spacetime_sync_stall_timeout_seconds";
/// Seconds peers have been ahead without the tip moving.
pub const NO_PROGRESS: &str = "spacetime_sync_no_progress_seconds";
/// Downloaded bodies waiting for import.
pub const BODIES_HELD: &str = "spacetime_sync_bodies_held";
/// Blocks received, by peer (node id prefix).
pub const BLOCKS_RECEIVED: &str = "spacetime_sync_blocks_received_total";
/// Headers received, by peer (node id prefix).
pub const HEADERS_RECEIVED: &str = "spacetime_sync_headers_received_total";
/// `GetHeaders` sent.
pub const HEADERS_REQUESTS: &str = "spacetime_sync_headers_requests_total";
/// Block hashes requested by `GetBlocks`.
pub const BLOCKS_REQUESTED: &str = "spacetime_sync_blocks_requested_total";
/// Hashes peers answered with `NotFound`.
pub const NOT_FOUND: &str = "spacetime_sync_not_found_total";
/// Downloaded blocks handed to ChainState, by commit mode (batch, single).
pub const BLOCKS_IMPORTED: &str = "spacetime_sync_blocks_imported_total";
/// Penalties sync gave, by misbehaviour.
pub const PENALTIES: &str = "spacetime_sync_penalties_total";
/// Peers dropped for stalling the download.
pub const STALLERS: &str = "spacetime_sync_stallers_dropped_total";
/// Blocks nobody asked for that were dropped (over the per-peer allowance).
pub const UNSOLICITED_DROPPED: &str = "spacetime_sync_unsolicited_dropped_total";

pub(crate) fn status(s: &SyncStatus, bodies: usize) {
    metrics::gauge!(PROGRESS).set(f64::from(s.permille) / 1000.0);
    metrics::gauge!(BLOCKS_PER_SECOND).set(s.blocks_per_sec);
    metrics::gauge!(ETA_SECONDS).set(s.eta_secs.unwrap_or(0) as f64);
    metrics::gauge!(TARGET_HEIGHT).set(s.target_height as f64);
    metrics::gauge!(HEADER_HEIGHT).set(s.header_height as f64);
    metrics::gauge!(IN_IBD).set(if s.in_ibd { 1.0 } else { 0.0 });
    let phase = match s.phase {
        SyncPhase::Idle => 0.0,
        SyncPhase::Headers => 1.0,
        SyncPhase::Blocks => 2.0,
        SyncPhase::Synced => 3.0,
    };
    metrics::gauge!(PHASE).set(phase);
    metrics::gauge!(IN_FLIGHT).set(s.in_flight as f64);
    metrics::gauge!(PEERS).set(s.peers as f64);
    metrics::gauge!(STALL_TIMEOUT).set(s.stall_timeout_ms as f64 / 1000.0);
    metrics::gauge!(NO_PROGRESS).set(s.no_progress_ms as f64 / 1000.0);
    bodies_held(bodies);
}

pub(crate) fn bodies_held(n: usize) {
    metrics::gauge!(BODIES_HELD).set(n as f64);
}

pub(crate) fn block_received(peer: String) {
    metrics::counter!(BLOCKS_RECEIVED, "peer" => peer).increment(1);
}

pub(crate) fn headers_received(peer: String, n: usize) {
    metrics::counter!(HEADERS_RECEIVED, "peer" => peer).increment(n as u64);
}

pub(crate) fn headers_requested() {
    metrics::counter!(HEADERS_REQUESTS).increment(1);
}

pub(crate) fn blocks_requested(n: usize) {
    metrics::counter!(BLOCKS_REQUESTED).increment(n as u64);
}

pub(crate) fn not_found(n: usize) {
    metrics::counter!(NOT_FOUND).increment(n as u64);
}

pub(crate) fn imported(n: usize, batch: bool) {
    let mode = if batch { "batch" } else { "single" };
    metrics::counter!(BLOCKS_IMPORTED, "mode" => mode).increment(n as u64);
}

pub(crate) fn penalized(what: Misbehavior) {
    metrics::counter!(PENALTIES, "kind" => crate::p2p::metrics::misbehaviour_label(what))
        .increment(1);
}

pub(crate) fn staller_dropped() {
    metrics::counter!(STALLERS).increment(1);
}

pub(crate) fn unsolicited_dropped() {
    metrics::counter!(UNSOLICITED_DROPPED).increment(1);
}
