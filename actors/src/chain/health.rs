//! What ChainState does when its database fails.
//!
//! - A write failure (disk full, I/O error): redb refuses every operation after one until the
//!   database is reopened. ChainState closes it, logs one error, and stops importing and
//!   mining (imports return [`ChainError::Unavailable`], the miner gets no mining context);
//!   it reopens the database with backoff (1 s doubling to [`MAX_BACKOFF`]) and resumes by
//!   itself once the reopen and the next import succeed. Nothing committed is lost: each block
//!   commits whole or not at all, and the reopen reads the index again from the file.
//! - Damage (a page failing its checksum, a record that does not decode, a storage-engine
//!   panic caught at the boundary): reopening will not help. ChainState closes the database,
//!   logs the error with the way out, and tells [`StorageAlert`] subscribers: the daemon stops
//!   with that error rather than run on a chain it cannot trust.

use std::time::Duration;

use actix::{AsyncContext, Context, Handler, Message, Recipient};
use spacetime::chain::{ChainError, StorageFault};
use tokio::time::Instant;

use super::{ChainState, metrics};

/// First wait before reopening after a write failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between reopen attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Write failures closer together than this are one incident: one error line, then warnings.
pub const INCIDENT_GAP: Duration = Duration::from_secs(600);

/// The database's state, for subscribers and status queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageStatus {
    /// Reads and writes work.
    Healthy,
    /// Writes failed; the database is closed and reopened with backoff.
    Unwritable {
        /// The failure that stopped it.
        error: String,
    },
    /// The file is damaged; the node must stop and the operator recover it.
    Damaged {
        /// The error, with the way out.
        error: String,
    },
}

/// A change of [`StorageStatus`], delivered to subscribers.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct StorageAlert(pub StorageStatus);

/// Receive every [`StorageAlert`] from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SubscribeStorage(pub Recipient<StorageAlert>);

/// The current [`StorageStatus`].
#[derive(Debug, Message)]
#[rtype(result = "StorageStatus")]
pub struct GetStorageStatus;

/// ChainState's record of its database's health.
#[derive(Debug)]
pub struct StorageHealth {
    status: StorageStatus,
    /// When writes first failed, for the log line that reports the recovery.
    since: Option<Instant>,
    /// The last write failure.
    last_failure: Option<Instant>,
    /// The wait before the next reopen attempt.
    backoff: Duration,
    /// A reopen is scheduled.
    reopen_pending: bool,
    subscribers: Vec<Recipient<StorageAlert>>,
}

impl Default for StorageHealth {
    fn default() -> Self {
        Self {
            status: StorageStatus::Healthy,
            since: None,
            last_failure: None,
            backoff: FIRST_BACKOFF,
            reopen_pending: false,
            subscribers: Vec::new(),
        }
    }
}

impl StorageHealth {
    /// The current status.
    pub fn status(&self) -> &StorageStatus {
        &self.status
    }
}

impl ChainState {
    /// Looks at a database error from any handler: a write failure closes the database and
    /// schedules its reopen, damage closes it for good; anything else is only logged.
    pub(crate) fn storage_error(&mut self, e: &ChainError, ctx: &mut Context<Self>) {
        match e.fault() {
            StorageFault::Write => {
                if matches!(e, ChainError::Unavailable { .. }) {
                    // Already closed: the reopen is on its way.
                    return;
                }
                metrics::write_failure();
                // One error per incident: a disk that lets a block through now and then
                // between failures is the same incident.
                let now = Instant::now();
                let first = self
                    .health
                    .last_failure
                    .is_none_or(|t| now.duration_since(t) > INCIDENT_GAP);
                self.health.last_failure = Some(now);
                self.chain.close();
                metrics::storage_status(1);
                if first {
                    tracing::error!(
                        path = %self.chain.storage().describe(),
                        "chain database cannot be written: {e}. Importing and mining are stopped; \
                         the database is reopened every {} s at most until writes succeed",
                        MAX_BACKOFF.as_secs()
                    );
                    self.health.since = Some(now);
                } else {
                    tracing::warn!("chain database still cannot be written: {e}");
                }
                self.set_status(StorageStatus::Unwritable {
                    error: e.to_string(),
                });
                self.schedule_reopen(ctx);
            }
            StorageFault::Damage => {
                if matches!(self.health.status, StorageStatus::Damaged { .. }) {
                    return;
                }
                self.chain.close();
                metrics::storage_status(2);
                tracing::error!("{e}");
                self.set_status(StorageStatus::Damaged {
                    error: e.to_string(),
                });
            }
            StorageFault::Other => tracing::error!("chain database: {e}"),
        }
    }

    /// After a successful write: a chain that had stopped writing is healthy again.
    pub(crate) fn storage_ok(&mut self) {
        if matches!(self.health.status, StorageStatus::Unwritable { .. }) {
            let stalled = self.health.since.map_or(0, |s| s.elapsed().as_secs());
            tracing::info!(
                "chain database writes succeed again after {stalled} s; importing and mining resume"
            );
            self.health.backoff = FIRST_BACKOFF;
            metrics::storage_status(0);
            self.set_status(StorageStatus::Healthy);
        }
    }

    fn set_status(&mut self, status: StorageStatus) {
        if self.health.status == status {
            return;
        }
        self.health.status = status.clone();
        self.health.subscribers.retain(|s| s.connected());
        for s in &self.health.subscribers {
            let _ = s.try_send(StorageAlert(status.clone()));
        }
    }

    fn schedule_reopen(&mut self, ctx: &mut Context<Self>) {
        if self.health.reopen_pending {
            return;
        }
        self.health.reopen_pending = true;
        let wait = self.health.backoff;
        self.health.backoff = (wait * 2).min(MAX_BACKOFF);
        ctx.run_later(wait, |act, ctx| {
            act.health.reopen_pending = false;
            act.try_reopen(ctx);
        });
    }

    fn try_reopen(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.health.status, StorageStatus::Unwritable { .. }) {
            return;
        }
        match self.chain.reopen() {
            Ok(report) => {
                metrics::reopened(true);
                if report.repaired {
                    tracing::warn!(
                        "chain database was repaired on reopen: rolled back to its last good commit"
                    );
                }
                let tip = self.chain.tip();
                tracing::info!(
                    "chain database reopened at height {}; imports are tried again",
                    tip.height
                );
                metrics::tip(tip.height, tip.timestamp_ms, self.chain.orphan_count());
                match self.chain.check_writable() {
                    Ok(()) => self.storage_ok(),
                    Err(e) => self.storage_error(&e, ctx),
                }
            }
            Err(e) => {
                metrics::reopened(false);
                match e.fault() {
                    StorageFault::Damage => self.storage_error(&e, ctx),
                    _ => {
                        tracing::debug!("chain database reopen failed: {e}");
                        self.schedule_reopen(ctx);
                    }
                }
            }
        }
    }
}

impl Handler<SubscribeStorage> for ChainState {
    type Result = ();
    fn handle(&mut self, msg: SubscribeStorage, _: &mut Context<Self>) {
        self.health.subscribers.push(msg.0);
    }
}

impl Handler<GetStorageStatus> for ChainState {
    type Result = actix::MessageResult<GetStorageStatus>;
    fn handle(&mut self, _: GetStorageStatus, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.health.status.clone())
    }
}
