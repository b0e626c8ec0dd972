//! Each simulated node's own metrics. The node records through the `metrics` facade as in
//! production; the simulator installs the node's [`NodeMetrics`] as the thread's recorder while
//! it polls that node's tasks ([`crate::scope`]), so a hundred nodes in one process keep a
//! hundred separate sets of counters, gauges and histograms.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_util::registry::{AtomicStorage, Registry, Storage};

/// A histogram kept as count, sum and maximum: enough for the simulator's questions, constant
/// memory over a day of virtual time.
#[derive(Debug, Default)]
pub struct Summary {
    count: AtomicU64,
    sum_bits: AtomicU64,
    max_bits: AtomicU64,
}

impl HistogramFn for Summary {
    fn record(&self, value: f64) {
        // One thread records (the simulator's); the loads and stores need no compare-exchange.
        self.count.fetch_add(1, Ordering::Relaxed);
        let sum = f64::from_bits(self.sum_bits.load(Ordering::Relaxed)) + value;
        self.sum_bits.store(sum.to_bits(), Ordering::Relaxed);
        if value > f64::from_bits(self.max_bits.load(Ordering::Relaxed)) {
            self.max_bits.store(value.to_bits(), Ordering::Relaxed);
        }
    }
}

/// Counters and gauges as atomics, histograms as [`Summary`].
#[derive(Debug, Default)]
pub struct SummaryStorage;

impl Storage<Key> for SummaryStorage {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<AtomicU64>;
    type Histogram = Arc<Summary>;

    fn counter(&self, key: &Key) -> Self::Counter {
        AtomicStorage.counter(key)
    }

    fn gauge(&self, key: &Key) -> Self::Gauge {
        AtomicStorage.gauge(key)
    }

    fn histogram(&self, _: &Key) -> Self::Histogram {
        Arc::new(Summary::default())
    }
}

/// One node's metrics registry, a `metrics` recorder.
pub struct NodeMetrics {
    registry: Registry<Key, SummaryStorage>,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeMetrics")
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self {
            registry: Registry::new(SummaryStorage),
        }
    }
}

/// A histogram's summary.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HistogramSummary {
    /// Values recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The largest.
    pub max: f64,
}

impl HistogramSummary {
    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// A copy of one node's metrics, by metric name (label sets added up for counters and
/// histograms; for gauges, each label set is listed under `name{labels}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsView {
    /// Counters by name, summed over labels.
    pub counters: BTreeMap<String, u64>,
    /// Counters by `name{label=value,...}`.
    pub labelled: BTreeMap<String, u64>,
    /// Gauges by `name` (no labels) or `name{label=value,...}`.
    pub gauges: BTreeMap<String, f64>,
    /// Histograms by name, merged over labels.
    pub histograms: BTreeMap<String, HistogramSummary>,
}

impl MetricsView {
    /// A counter summed over its labels (0 when never incremented).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// A gauge without labels.
    pub fn gauge(&self, name: &str) -> Option<f64> {
        self.gauges.get(name).copied()
    }

    /// A histogram merged over its labels.
    pub fn histogram(&self, name: &str) -> HistogramSummary {
        self.histograms.get(name).copied().unwrap_or_default()
    }
}

fn full_name(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl NodeMetrics {
    /// Everything recorded so far.
    pub fn view(&self) -> MetricsView {
        let mut view = MetricsView::default();
        self.registry.visit_counters(|key, value| {
            let v = value.load(Ordering::Relaxed);
            *view.counters.entry(key.name().to_owned()).or_default() += v;
            view.labelled.insert(full_name(key), v);
        });
        self.registry.visit_gauges(|key, value| {
            view.gauges.insert(
                full_name(key),
                f64::from_bits(value.load(Ordering::Relaxed)),
            );
        });
        self.registry.visit_histograms(|key, h| {
            let entry = view.histograms.entry(key.name().to_owned()).or_default();
            entry.count += h.count.load(Ordering::Relaxed);
            entry.sum += f64::from_bits(h.sum_bits.load(Ordering::Relaxed));
            entry.max = entry
                .max
                .max(f64::from_bits(h.max_bits.load(Ordering::Relaxed)));
        });
        view
    }
}

impl Recorder for NodeMetrics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.registry
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.registry
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.registry
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_sees_only_what_was_recorded_under_it() {
        let a = NodeMetrics::default();
        let b = NodeMetrics::default();
        metrics::with_local_recorder(&a, || {
            metrics::counter!("c_total", "kind" => "x").increment(2);
            metrics::counter!("c_total", "kind" => "y").increment(3);
            metrics::gauge!("g").set(1.5);
            metrics::histogram!("h_seconds").record(2.0);
            metrics::histogram!("h_seconds").record(4.0);
        });
        metrics::with_local_recorder(&b, || metrics::counter!("c_total").increment(1));
        let v = a.view();
        assert_eq!(v.counter("c_total"), 5);
        assert_eq!(v.labelled.get("c_total{kind=y}"), Some(&3));
        assert_eq!(v.gauge("g"), Some(1.5));
        let h = v.histogram("h_seconds");
        assert_eq!((h.count, h.sum, h.max), (2, 6.0, 4.0));
        assert_eq!(h.mean(), 3.0);
        assert_eq!(b.view().counter("c_total"), 1);
        assert_eq!(b.view().counter("missing"), 0);
    }
}
