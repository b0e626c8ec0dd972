//! Metrics of the chain, through the `metrics` facade.

use std::time::Duration;

use spacetime::chain::{ImportStatus, Imported, InvalidBlock};

/// Height of the main chain's tip.
pub const HEIGHT: &str = "spacetime_chain_height";
/// Timestamp of the tip, in seconds since the Unix epoch (tip age = now - this).
pub const TIP_TIMESTAMP: &str = "spacetime_chain_tip_timestamp_seconds";
/// Blocks imported, by outcome (extended, reorganized, side_branch, orphan, duplicate, ...).
pub const BLOCKS_IMPORTED: &str = "spacetime_blocks_imported_total";
/// Blocks rejected, by the rule they broke.
pub const BLOCKS_REJECTED: &str = "spacetime_blocks_rejected_total";
/// Time to validate and commit one block.
pub const IMPORT_SECONDS: &str = "spacetime_block_import_seconds";
/// Reorganisations of the main chain.
pub const REORGS: &str = "spacetime_chain_reorgs_total";
/// Blocks reverted by reorganisations.
pub const REORG_BLOCKS: &str = "spacetime_chain_reorg_reverted_blocks_total";
/// Blocks waiting for their parent.
pub const ORPHANS: &str = "spacetime_chain_orphan_blocks";
/// Height of the best verified header chain (ahead of the tip while syncing).
pub const HEADER_HEIGHT: &str = "spacetime_chain_header_height";
/// Header-only entries stored (headers whose bodies are not downloaded yet).
pub const HEADER_ONLY: &str = "spacetime_chain_header_only_blocks";
/// Header batches, by outcome (stored, pending, invalid, not_connecting, too_many_pending, full).
pub const HEADER_BATCHES: &str = "spacetime_chain_header_batches_total";
/// Headers newly stored.
pub const HEADERS_STORED: &str = "spacetime_chain_headers_stored_total";
/// The chain database's state: 0 healthy, 1 unwritable (writes failed; reopening with
/// backoff), 2 damaged (the node stops; the operator recovers the file).
pub const STORAGE_STATUS: &str = "spacetime_chain_storage_status";
/// Database writes that failed (disk full, I/O error).
pub const WRITE_FAILURES: &str = "spacetime_chain_write_failures_total";
/// Reopens of the database after a write failure, by result (ok, failed).
pub const REOPENS: &str = "spacetime_chain_reopens_total";
/// Chain events not delivered because a subscriber's mailbox was full.
pub const EVENTS_DROPPED: &str = "spacetime_chain_events_dropped_total";

fn status_label(status: &ImportStatus) -> &'static str {
    match status {
        ImportStatus::Extended => "extended",
        ImportStatus::Reorganized => "reorganized",
        ImportStatus::SideBranch => "side_branch",
        ImportStatus::Orphan => "orphan",
        ImportStatus::Duplicate => "duplicate",
        ImportStatus::ReorgTooDeep { .. } => "reorg_too_deep",
        ImportStatus::ReorgFailed { .. } => "reorg_failed",
    }
}

/// A block was imported.
pub(crate) fn imported(imported: &Imported, took: Duration) {
    metrics::counter!(BLOCKS_IMPORTED, "status" => status_label(&imported.status)).increment(1);
    metrics::histogram!(IMPORT_SECONDS).record(took.as_secs_f64());
    if let ImportStatus::ReorgFailed { reason, .. } = &imported.status {
        rejected(reason);
    }
    for (_, reason) in &imported.rejected_orphans {
        rejected(reason);
    }
    for event in &imported.events {
        if let spacetime::chain::ChainEvent::Reorg { disconnected, .. } = event {
            metrics::counter!(REORGS).increment(1);
            metrics::counter!(REORG_BLOCKS).increment(disconnected.len() as u64);
        }
    }
}

/// A block broke a rule.
pub(crate) fn rejected(reason: &InvalidBlock) {
    metrics::counter!(BLOCKS_REJECTED, "reason" => reason.reason()).increment(1);
}

/// The tip and the orphan pool after an import.
pub(crate) fn tip(height: u64, timestamp_ms: u64, orphans: usize) {
    metrics::gauge!(HEIGHT).set(height as f64);
    metrics::gauge!(TIP_TIMESTAMP).set(timestamp_ms as f64 / 1000.0);
    metrics::gauge!(ORPHANS).set(orphans as f64);
}

/// An event could not be delivered.
pub(crate) fn event_dropped() {
    metrics::counter!(EVENTS_DROPPED).increment(1);
}

/// A batch of headers was offered.
pub(crate) fn headers(
    result: &Result<spacetime::chain::HeadersOutcome, spacetime::chain::HeadersError>,
) {
    use spacetime::chain::{HeadersError as E, HeadersOutcome as O};
    let label = match result {
        Ok(O::Stored { count, .. }) => {
            metrics::counter!(HEADERS_STORED).increment(*count as u64);
            "stored"
        }
        Ok(O::Pending { .. }) => "pending",
        Err(E::Invalid { reason, .. }) => {
            rejected(reason);
            "invalid"
        }
        Err(E::NotConnecting { .. }) => "not_connecting",
        Err(E::TooManyPending { .. }) => "too_many_pending",
        Err(E::Full { .. }) => "full",
        Err(E::Chain(_)) => "error",
    };
    metrics::counter!(HEADER_BATCHES, "outcome" => label).increment(1);
}

/// The best header chain.
pub(crate) fn best_header(height: u64, header_only: usize) {
    metrics::gauge!(HEADER_HEIGHT).set(height as f64);
    metrics::gauge!(HEADER_ONLY).set(header_only as f64);
}

/// A write to the database failed.
pub(crate) fn write_failure() {
    metrics::counter!(WRITE_FAILURES).increment(1);
}

/// The database's state (see [`STORAGE_STATUS`]).
pub(crate) fn storage_status(code: u8) {
    metrics::gauge!(STORAGE_STATUS).set(f64::from(code));
}

/// A reopen after a write failure was tried.
pub(crate) fn reopened(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    metrics::counter!(REOPENS, "result" => result).increment(1);
}
