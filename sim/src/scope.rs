//! A simulated node's tasks, grouped: every task the node spawns (its actors, sessions, dials)
//! lives in the node's own `LocalSet`, which runs as one task of the simulator's actix System.
//! While it is polled, the node's metrics recorder and log span are the thread's, so what the
//! node records is attributed to it; dropping the scope drops every task of the node at once,
//! which is a crash (nothing of it runs again, its disk keeps what was committed).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::task::LocalSet;

use crate::metrics::NodeMetrics;

/// The tasks of one node, polled with the node's recorder and span.
pub struct NodeScope {
    tasks: LocalSet,
    metrics: Arc<NodeMetrics>,
    span: tracing::Span,
}

impl NodeScope {
    /// A scope for the node whose metrics go to `metrics` and logs carry `span`.
    pub fn new(metrics: Arc<NodeMetrics>, span: tracing::Span) -> Self {
        Self {
            tasks: LocalSet::new(),
            metrics,
            span,
        }
    }

    /// Spawns a task of the node (it runs once the scope itself is polled).
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + 'static,
    {
        drop(self.tasks.spawn_local(task));
    }
}

impl Future for NodeScope {
    /// Ready once every task of the node has ended (the node stopped).
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let metrics = this.metrics.clone();
        let _recorder = metrics::set_default_local_recorder(metrics.as_ref());
        let _span = this.span.enter();
        Pin::new(&mut this.tasks).poll(cx)
    }
}
