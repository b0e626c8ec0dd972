//! The CPU seam: where blocking and CPU-heavy work runs.
//!
//! In production, blocking work (file writes, plot refreshes) runs on tokio's blocking pool,
//! ChainState on a thread of its own, and scans on the scanner threads, so the actix threads
//! that run the network never wait. In the simulator everything runs inline on the one
//! simulator thread: tokio's paused clock only jumps ahead when that thread is idle, so virtual
//! time can never pass while work is still being done elsewhere. Work whose duration matters
//! to the protocol's timing is then charged as an explicit virtual delay ([`CostModel`]).

use std::future::Future;
use std::time::Duration;

/// Virtual time charged for heavy work in the simulator, where it otherwise takes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CostModel {
    /// Checking and committing one block (proof of space, signatures, state, commit).
    pub block_import: Duration,
    /// Each transfer of a block on top of that (its signature and state change).
    pub per_transfer: Duration,
    /// The cheap checks of a relayed block's header (proof of space, signature) before it is
    /// forwarded.
    pub header_check: Duration,
}

impl CostModel {
    /// Figures of the `dev` network on the 2-core reference machine (`docs/simulation.md`):
    /// about 1 ms to verify and commit a block, 15 us per transfer signature in a batch.
    pub const DEV: CostModel = CostModel {
        block_import: Duration::from_millis(1),
        per_transfer: Duration::from_micros(15),
        header_check: Duration::from_micros(500),
    };

    /// The time importing `blocks` blocks holding `transfers` transfers in all is charged.
    pub fn blocks(&self, blocks: usize, transfers: usize) -> Duration {
        let b = u32::try_from(blocks).unwrap_or(u32::MAX);
        let t = u32::try_from(transfers).unwrap_or(u32::MAX);
        self.block_import
            .saturating_mul(b)
            .saturating_add(self.per_transfer.saturating_mul(t))
    }

    /// The time importing a block of `transfers` transfers is charged.
    pub fn block(&self, transfers: usize) -> Duration {
        let n = u32::try_from(transfers).unwrap_or(u32::MAX);
        self.block_import
            .saturating_add(self.per_transfer.saturating_mul(n))
    }
}

/// Where work runs: threads in production, inline in the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spawner {
    /// Production: tokio's blocking pool, dedicated threads for ChainState and scans.
    Threads,
    /// Simulator: inline on the calling thread, with modelled virtual costs.
    Inline(CostModel),
}

/// The thread an actor started by [`Spawner::start_actor`] runs on, if it has its own.
#[derive(Debug)]
pub struct ActorThread {
    arbiter: Option<actix::Arbiter>,
}

impl ActorThread {
    /// Stops the thread (after its actor has stopped) and waits for it.
    pub fn join(self) {
        if let Some(arbiter) = self.arbiter {
            arbiter.stop();
            let _ = arbiter.join();
        }
    }
}

/// Why spawned work gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// The work panicked or its thread was shut down.
    #[error("blocking work did not finish: {0}")]
    Lost(String),
}

impl Spawner {
    /// True in the simulator.
    pub fn is_inline(&self) -> bool {
        matches!(self, Self::Inline(_))
    }

    /// The modelled costs (zero in production, where work takes real time).
    pub fn costs(&self) -> CostModel {
        match self {
            Self::Threads => CostModel::default(),
            Self::Inline(costs) => *costs,
        }
    }

    /// Starts an actor on an arbiter thread of its own in production (its work never delays
    /// the network's arbiters), on the current arbiter in the simulator.
    pub fn start_actor<A>(
        &self,
        make: impl FnOnce() -> A + Send + 'static,
    ) -> (actix::Addr<A>, ActorThread)
    where
        A: actix::Actor<Context = actix::Context<A>>,
    {
        if self.is_inline() {
            return (actix::Actor::start(make()), ActorThread { arbiter: None });
        }
        let arbiter = actix::Arbiter::new();
        let addr = A::start_in_arbiter(&arbiter.handle(), move |_| make());
        (
            addr,
            ActorThread {
                arbiter: Some(arbiter),
            },
        )
    }

    /// Runs blocking work and resolves with its result: on the blocking pool in production,
    /// at the first poll on this thread in the simulator.
    pub fn run<T, F>(&self, work: F) -> impl Future<Output = Result<T, SpawnError>> + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let inline = self.is_inline();
        async move {
            if inline {
                Ok(work())
            } else {
                tokio::task::spawn_blocking(work)
                    .await
                    .map_err(|e| SpawnError::Lost(e.to_string()))
            }
        }
    }

    /// Runs blocking work whose result nobody waits for (saving a file in the background).
    pub fn detach<F>(&self, work: F)
    where
        F: FnOnce() + Send + 'static,
    {
        if self.is_inline() {
            work();
        } else {
            drop(tokio::task::spawn_blocking(work));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test(flavor = "current_thread")]
    async fn inline_work_runs_on_this_thread_threaded_work_elsewhere() {
        let here = std::thread::current().id();
        let inline = Spawner::Inline(CostModel::default());
        assert_eq!(
            inline.run(move || std::thread::current().id()).await,
            Ok(here)
        );
        let threads = Spawner::Threads;
        let there = threads.run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(there, here);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn detached_inline_work_is_done_before_detach_returns() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        Spawner::Inline(CostModel::DEV).detach(move || flag.store(true, Ordering::SeqCst));
        assert!(done.load(Ordering::SeqCst));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_in_threaded_work_is_an_error() {
        let result: Result<(), _> = Spawner::Threads.run(|| panic!("boom")).await;
        assert!(matches!(result, Err(SpawnError::Lost(_))));
    }

    #[test]
    fn block_costs_grow_with_transfers_and_saturate() {
        let c = CostModel::DEV;
        assert_eq!(c.block(0), Duration::from_millis(1));
        assert_eq!(c.block(1000), Duration::from_millis(16));
        assert!(c.block(usize::MAX) >= c.block(1000));
        assert_eq!(Spawner::Threads.costs().block(1000), Duration::ZERO);
    }
}
