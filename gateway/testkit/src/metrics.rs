//! Capturing the metrics a component emits, to assert on them.
//!
//! `metrics_util::debugging::DebuggingRecorder` resets counters and gauges on
//! every snapshot, so repeated reads during a test would see deltas. This
//! recorder keeps cumulative values that can be read any number of times.

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};

/// A metrics recorder whose values tests can read.
///
/// Two ways to use it:
/// - [`MetricsCapture::scoped`] runs a closure (typically the construction of
///   `ComponentMetrics`) with the capture as the thread's local recorder; the
///   handles created there keep reporting to it from any task or thread.
///   Metrics registered later, outside the closure, are not captured.
/// - [`MetricsCapture::global`] installs one capture as the process-wide
///   recorder, which sees every metric; filter by a unique `pipeline` label.
#[derive(Clone)]
pub struct MetricsCapture {
    registry: Arc<Registry<Key, AtomicStorage>>,
}

impl std::fmt::Debug for MetricsCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsCapture").finish_non_exhaustive()
    }
}

impl Default for MetricsCapture {
    fn default() -> Self {
        Self::new()
    }
}

static GLOBAL: OnceLock<Option<MetricsCapture>> = OnceLock::new();

impl MetricsCapture {
    /// An empty capture, not installed anywhere.
    pub fn new() -> Self {
        Self {
            registry: Arc::new(Registry::atomic()),
        }
    }

    /// The process-wide capture, installed as the global recorder on first use.
    /// `None` when another global recorder was installed before.
    pub fn global() -> Option<&'static MetricsCapture> {
        GLOBAL
            .get_or_init(|| {
                let capture = MetricsCapture::new();
                metrics::set_global_recorder(capture.clone())
                    .ok()
                    .map(|()| capture)
            })
            .as_ref()
    }

    /// Runs `f` with this capture as the current thread's recorder.
    pub fn scoped<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self, f)
    }

    /// Sum of every counter called `name` whose labels include all of `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut total = 0;
        self.registry.visit_counters(|key, value| {
            if matches(key, name, labels) {
                total += value.load(std::sync::atomic::Ordering::Acquire);
            }
        });
        total
    }

    /// Value of the gauge called `name` whose labels include all of `labels`;
    /// `None` when no such gauge exists. With several matches, their sum.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut total = None;
        self.registry.visit_gauges(|key, value| {
            if matches(key, name, labels) {
                let v = f64::from_bits(value.load(std::sync::atomic::Ordering::Acquire));
                total = Some(total.unwrap_or(0.0) + v);
            }
        });
        total
    }

    /// Every recorded value of the histograms called `name` whose labels
    /// include all of `labels`.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let mut values = Vec::new();
        self.registry.visit_histograms(|key, bucket| {
            if matches(key, name, labels) {
                values.extend(bucket.data());
            }
        });
        values
    }

    /// Label sets of every counter called `name` whose labels include all of
    /// `labels`, sorted; useful to check that a component used bounded labels.
    pub fn counter_label_sets(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Vec<Vec<(String, String)>> {
        let mut sets = Vec::new();
        self.registry.visit_counters(|key, _| {
            if matches(key, name, labels) {
                let mut set: Vec<(String, String)> = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                set.sort();
                sets.push(set);
            }
        });
        sets.sort();
        sets
    }
}

fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
    key.name() == name
        && labels
            .iter()
            .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
}

impl Recorder for MetricsCapture {
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
    use sluice_core::metrics::names;
    use sluice_core::{ComponentKind, ComponentLabels, ComponentMetrics};

    use super::*;

    fn component(pipeline: &str) -> ComponentMetrics {
        ComponentMetrics::new(ComponentLabels::new(
            pipeline,
            "src",
            ComponentKind::Source,
            "mqtt",
        ))
    }

    #[test]
    fn scoped_handles_keep_reporting_after_the_scope_and_reads_are_cumulative() {
        let capture = MetricsCapture::new();
        let (m, link) = capture.scoped(|| {
            let m = component("p1");
            let link = m.gauge(names::LINK_UP);
            (m, link)
        });
        let rows = names::COMPONENT_RECEIVED_ROWS_TOTAL;
        m.received(2, 10);
        link.set(1.0);
        assert_eq!(capture.counter(rows, &[("pipeline", "p1")]), 2);
        m.received(3, 10);
        assert_eq!(capture.counter(rows, &[("pipeline", "p1")]), 5);
        assert_eq!(capture.counter(rows, &[("pipeline", "p2")]), 0);
        assert_eq!(
            capture.gauge(names::LINK_UP, &[("component_id", "src")]),
            Some(1.0)
        );
        assert_eq!(
            capture.gauge(names::LINK_UP, &[("component_id", "x")]),
            None
        );
        let sets = capture.counter_label_sets(rows, &[]);
        assert_eq!(sets.len(), 1);
        assert!(sets[0].contains(&("component_kind".to_owned(), "source".to_owned())));
    }

    #[test]
    fn metrics_registered_outside_the_scope_are_not_captured() {
        let capture = MetricsCapture::new();
        component("p3").received(1, 1);
        assert_eq!(
            capture.counter(names::COMPONENT_RECEIVED_ROWS_TOTAL, &[]),
            0
        );
    }
}
