//! The node-wide bandwidth limits: one [`ByteThrottle`] per direction, shared by every peer
//! session of a node. A session reports the bytes it read or wrote and sleeps (tokio time, so
//! the simulator's virtual clock applies) for as long as the node is over its rate.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use spacetime::p2p::{ByteThrottle, MIN_BURST_BYTES};

use crate::clock::Clock;

/// Time sessions spent waiting on the bandwidth limit, in ms, by direction.
pub const THROTTLED_MS: &str = "spacetime_net_throttled_ms_total";
/// The configured limit in bytes per second, by direction (0: unlimited).
pub const BANDWIDTH_LIMIT: &str = "spacetime_net_bandwidth_limit_bytes_per_second";
/// Smallest limit the configuration and the command line accept, bytes per second (one Noise
/// message per second).
pub const MIN_RATE_BYTES_PER_SEC: u64 = MIN_BURST_BYTES;

/// The node's bandwidth limits (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BandwidthLimits {
    /// Most bytes per second read from all peers together.
    pub download_bytes_per_sec: Option<u64>,
    /// Most bytes per second written to all peers together.
    pub upload_bytes_per_sec: Option<u64>,
}

impl BandwidthLimits {
    /// Limits from configured values, where absent and 0 both mean unlimited.
    pub fn new(download: Option<u64>, upload: Option<u64>) -> Self {
        Self {
            download_bytes_per_sec: download.filter(|&n| n > 0),
            upload_bytes_per_sec: upload.filter(|&n| n > 0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Flow {
    Download,
    Upload,
}

impl Flow {
    const fn label(self) -> &'static str {
        match self {
            Flow::Download => "download",
            Flow::Upload => "upload",
        }
    }
}

/// The throttles of one node, shared by its sessions.
pub struct Bandwidth {
    limits: BandwidthLimits,
    clock: Arc<dyn Clock>,
    download: Option<Mutex<ByteThrottle>>,
    upload: Option<Mutex<ByteThrottle>>,
}

impl std::fmt::Debug for Bandwidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bandwidth")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Bandwidth {
    /// Throttles for `limits`, full at the clock's now; sets the limit gauges.
    pub fn new(limits: BandwidthLimits, clock: Arc<dyn Clock>) -> Arc<Self> {
        let now = clock.now_ms();
        let throttle = |limit: Option<u64>, flow: Flow| {
            // A gauge holds one value, not a sum: the limit is the node's, not per session.
            metrics::gauge!(BANDWIDTH_LIMIT, "direction" => flow.label())
                .set(limit.unwrap_or(0) as f64);
            limit.map(|rate| Mutex::new(ByteThrottle::new(rate, now)))
        };
        Arc::new(Self {
            limits,
            download: throttle(limits.download_bytes_per_sec, Flow::Download),
            upload: throttle(limits.upload_bytes_per_sec, Flow::Upload),
            clock,
        })
    }

    /// The limits this was made with.
    pub fn limits(&self) -> BandwidthLimits {
        self.limits
    }

    /// `bytes` were read from a peer: waits while the node is over its download rate.
    pub async fn downloaded(&self, bytes: u64) {
        self.pause(Flow::Download, bytes).await;
    }

    /// `bytes` were written to a peer: waits while the node is over its upload rate.
    pub async fn uploaded(&self, bytes: u64) {
        self.pause(Flow::Upload, bytes).await;
    }

    async fn pause(&self, flow: Flow, bytes: u64) {
        let wait = self.charge(flow, bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Charges `bytes` and returns the wait (recorded in [`THROTTLED_MS`]); the lock is held
    /// for the charge only.
    fn charge(&self, flow: Flow, bytes: u64) -> Duration {
        let throttle = match flow {
            Flow::Download => &self.download,
            Flow::Upload => &self.upload,
        };
        let Some(throttle) = throttle else {
            return Duration::ZERO;
        };
        let now = self.clock.now_ms();
        let wait_ms = throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .charge(now, bytes);
        if wait_ms > 0 {
            metrics::counter!(THROTTLED_MS, "direction" => flow.label()).increment(wait_ms);
        }
        Duration::from_millis(wait_ms)
    }
}

#[cfg(test)]
mod tests;
