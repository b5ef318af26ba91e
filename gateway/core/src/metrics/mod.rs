//! Metric names and the pre-registered handles every component gets.
//!
//! Only this module calls the `metrics` macros (enforced by `clippy.toml`), so
//! names and label sets stay consistent. Labels are bounded: never a topic,
//! device id, path or error message.
#![allow(clippy::disallowed_macros)]

pub mod names;

use std::sync::Arc;
use std::time::Duration;

pub use metrics::Unit;
use metrics::{Counter, Gauge, Histogram, Label};

use crate::error::ComponentError;
use names::*;

/// Role of a component, the `component_kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    /// Produces rows.
    Source,
    /// Turns rows into rows.
    Transform,
    /// Consumes rows.
    Sink,
}

impl ComponentKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Source => "source",
            ComponentKind::Transform => "transform",
            ComponentKind::Sink => "sink",
        }
    }
}

/// The standard labels of one component.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ComponentLabels {
    /// Pipeline name.
    pub pipeline: Arc<str>,
    /// Component id within the pipeline.
    pub component_id: Arc<str>,
    /// Role.
    pub kind: ComponentKind,
    /// The `type` from the config, e.g. `mqtt` or `sql`.
    pub component_type: &'static str,
}

impl ComponentLabels {
    /// Labels for a component.
    pub fn new(
        pipeline: &str,
        component_id: &str,
        kind: ComponentKind,
        component_type: &'static str,
    ) -> Self {
        Self {
            pipeline: pipeline.into(),
            component_id: component_id.into(),
            kind,
            component_type,
        }
    }

    fn base(&self) -> Vec<Label> {
        vec![
            Label::new("pipeline", self.pipeline.to_string()),
            Label::new("component_id", self.component_id.to_string()),
            Label::new("component_kind", self.kind.as_str()),
            Label::new("component_type", self.component_type),
        ]
    }

    fn with(&self, extra: &[(&'static str, &'static str)]) -> Vec<Label> {
        let mut l = self.base();
        l.extend(extra.iter().map(|(k, v)| Label::new(*k, *v)));
        l
    }
}

/// Pre-registered metric handles of one component; created in `build` and
/// updated once per batch, never per row.
#[derive(Debug, Clone)]
pub struct ComponentMetrics {
    labels: ComponentLabels,
    received_rows: Counter,
    received_batches: Counter,
    received_bytes: Counter,
    sent_rows: Counter,
    sent_batches: Counter,
    processing: Histogram,
}

impl ComponentMetrics {
    /// Registers the handles for `labels` with the current recorder.
    pub fn new(labels: ComponentLabels) -> Self {
        let base = labels.base();
        Self {
            received_rows: metrics::counter!(COMPONENT_RECEIVED_ROWS_TOTAL, base.clone()),
            received_batches: metrics::counter!(COMPONENT_RECEIVED_BATCHES_TOTAL, base.clone()),
            received_bytes: metrics::counter!(COMPONENT_RECEIVED_BYTES_TOTAL, base.clone()),
            sent_rows: metrics::counter!(COMPONENT_SENT_ROWS_TOTAL, base.clone()),
            sent_batches: metrics::counter!(COMPONENT_SENT_BATCHES_TOTAL, base.clone()),
            processing: metrics::histogram!(COMPONENT_PROCESSING_SECONDS, base),
            labels,
        }
    }

    /// The labels these handles carry.
    pub fn labels(&self) -> &ComponentLabels {
        &self.labels
    }

    /// Counts a received batch of `rows` rows and `bytes` bytes.
    pub fn received(&self, rows: usize, bytes: usize) {
        self.received_rows.increment(rows as u64);
        self.received_batches.increment(1);
        self.received_bytes.increment(bytes as u64);
    }

    /// Counts a sent batch of `rows` rows.
    pub fn sent(&self, rows: usize) {
        self.sent_rows.increment(rows as u64);
        self.sent_batches.increment(1);
    }

    /// Records how long processing one batch took.
    pub fn processing(&self, took: Duration) {
        self.processing.record(took.as_secs_f64());
    }

    /// Counts `rows` dropped for `reason` (a bounded, snake_case word such as
    /// `malformed_json`, `schema_mismatch`, `late`, `queue_full`).
    pub fn discarded(&self, reason: &'static str, intentional: bool, rows: u64) {
        if rows == 0 {
            return;
        }
        let intentional = if intentional { "true" } else { "false" };
        metrics::counter!(
            COMPONENT_DISCARDED_ROWS_TOTAL,
            self.labels
                .with(&[("reason", reason), ("intentional", intentional)])
        )
        .increment(rows);
    }

    /// Counts an error in `stage` (`receiving`, `processing` or `sending`).
    pub fn error(&self, err: &ComponentError, stage: &'static str) {
        metrics::counter!(
            COMPONENT_ERRORS_TOTAL,
            self.labels.with(&[
                ("error_code", err.code),
                ("error_kind", err.kind.as_str()),
                ("stage", stage)
            ])
        )
        .increment(1);
    }

    /// Counts a restart of the component by the supervisor.
    pub fn restarted(&self) {
        metrics::counter!(COMPONENT_RESTARTS_TOTAL, self.labels.base()).increment(1);
    }

    /// A counter with the component's labels, for plugin-specific metrics whose
    /// name is a constant in [`names`].
    pub fn counter(&self, name: &'static str) -> Counter {
        metrics::counter!(name, self.labels.base())
    }

    /// A gauge with the component's labels, for plugin-specific metrics whose
    /// name is a constant in [`names`].
    pub fn gauge(&self, name: &'static str) -> Gauge {
        metrics::gauge!(name, self.labels.base())
    }

    /// A counter with the component's labels plus `extra` bounded labels.
    pub fn counter_with(
        &self,
        name: &'static str,
        extra: &[(&'static str, &'static str)],
    ) -> Counter {
        metrics::counter!(name, self.labels.with(extra))
    }
}

/// Sender-side handles of one edge (`component_id` -> `to`).
#[derive(Debug, Clone)]
pub struct EdgeMetrics {
    sent: Counter,
    queue: Gauge,
}

impl EdgeMetrics {
    /// Registers the handles of the edge from `from` to `to` in `pipeline`.
    pub fn new(pipeline: &str, from: &str, to: &str) -> Self {
        let labels = vec![
            Label::new("pipeline", pipeline.to_owned()),
            Label::new("component_id", from.to_owned()),
            Label::new("to", to.to_owned()),
        ];
        Self {
            sent: metrics::counter!(EDGE_SENT_BATCHES_TOTAL, labels),
            queue: InputMetrics::queue_gauge(pipeline, to),
        }
    }

    /// A batch was queued.
    pub fn sent(&self) {
        self.sent.increment(1);
        self.queue.increment(1.0);
    }
}

/// Receiver-side handles of a component's input queue, shared by all its
/// upstream edges: queue depth is `sluice_edge_queue_batches{component_id}`.
#[derive(Debug, Clone)]
pub struct InputMetrics {
    received: Counter,
    queue: Gauge,
}

impl InputMetrics {
    fn queue_gauge(pipeline: &str, to: &str) -> Gauge {
        metrics::gauge!(
            EDGE_QUEUE_BATCHES,
            vec![
                Label::new("pipeline", pipeline.to_owned()),
                Label::new("component_id", to.to_owned())
            ]
        )
    }

    /// Registers the handles of the input queue of `component_id`.
    pub fn new(pipeline: &str, component_id: &str) -> Self {
        let labels = vec![
            Label::new("pipeline", pipeline.to_owned()),
            Label::new("component_id", component_id.to_owned()),
        ];
        Self {
            received: metrics::counter!(EDGE_RECEIVED_BATCHES_TOTAL, labels),
            queue: Self::queue_gauge(pipeline, component_id),
        }
    }

    /// A batch was taken off the queue.
    pub fn received(&self) {
        self.received.increment(1);
        self.queue.decrement(1.0);
    }
}

/// How a metric is recorded, for its Prometheus `TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution of observations.
    Histogram,
}

/// A metric's name, type, unit and help text. Every crate that records
/// metrics lists them as a table of these; [`describe`] registers them.
#[derive(Debug, Clone, Copy)]
pub struct MetricDoc {
    /// Metric name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricType,
    /// Unit of the values.
    pub unit: Unit,
    /// One sentence for `# HELP`.
    pub help: &'static str,
}

impl MetricDoc {
    /// A counter.
    pub const fn counter(name: &'static str, unit: Unit, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricType::Counter,
            unit,
            help,
        }
    }

    /// A gauge.
    pub const fn gauge(name: &'static str, unit: Unit, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricType::Gauge,
            unit,
            help,
        }
    }

    /// A histogram.
    pub const fn histogram(name: &'static str, unit: Unit, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricType::Histogram,
            unit,
            help,
        }
    }
}

/// Registers the help texts of `docs` with the installed recorder.
pub fn describe(docs: &[MetricDoc]) {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    for d in docs {
        match d.kind {
            MetricType::Counter => describe_counter!(d.name, d.unit, d.help),
            MetricType::Gauge => describe_gauge!(d.name, d.unit, d.help),
            MetricType::Histogram => describe_histogram!(d.name, d.unit, d.help),
        }
    }
}

/// The metrics every component and edge has.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        COMPONENT_RECEIVED_ROWS_TOTAL,
        Unit::Count,
        "Rows received by a component.",
    ),
    MetricDoc::counter(
        COMPONENT_RECEIVED_BATCHES_TOTAL,
        Unit::Count,
        "Batches received by a component.",
    ),
    MetricDoc::counter(
        COMPONENT_RECEIVED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes received by a component (sources: payload bytes).",
    ),
    MetricDoc::counter(
        COMPONENT_SENT_ROWS_TOTAL,
        Unit::Count,
        "Rows sent downstream by a component.",
    ),
    MetricDoc::counter(
        COMPONENT_SENT_BATCHES_TOTAL,
        Unit::Count,
        "Batches sent downstream by a component.",
    ),
    MetricDoc::counter(
        COMPONENT_DISCARDED_ROWS_TOTAL,
        Unit::Count,
        "Rows dropped by a component, by reason.",
    ),
    MetricDoc::counter(
        COMPONENT_ERRORS_TOTAL,
        Unit::Count,
        "Errors of a component, by code, kind and stage.",
    ),
    MetricDoc::histogram(
        COMPONENT_PROCESSING_SECONDS,
        Unit::Seconds,
        "Time to process one batch.",
    ),
    MetricDoc::counter(
        COMPONENT_RESTARTS_TOTAL,
        Unit::Count,
        "Restarts of a component by the supervisor.",
    ),
    MetricDoc::counter(
        EDGE_SENT_BATCHES_TOTAL,
        Unit::Count,
        "Batches put on an edge.",
    ),
    MetricDoc::counter(
        EDGE_RECEIVED_BATCHES_TOTAL,
        Unit::Count,
        "Batches taken off an edge.",
    ),
    MetricDoc::gauge(
        EDGE_QUEUE_BATCHES,
        Unit::Count,
        "Batches waiting on an edge.",
    ),
    MetricDoc::gauge(
        LINK_UP,
        Unit::Count,
        "Whether a component's upstream link is up (1) or down (0).",
    ),
];

/// The metrics of a frame source, shared by `frames` and `camera` so one
/// dashboard covers both (`component_type` tells them apart).
pub const FRAME_SOURCE_METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        FRAMES_CAPTURED_TOTAL,
        Unit::Count,
        "Frames a frame source captured.",
    ),
    MetricDoc::counter(
        FRAMES_RECONNECTS_TOTAL,
        Unit::Count,
        "Reconnects of a frame source after a failed, stalled or vanished stream.",
    ),
];

/// Registers the help texts of the metrics every component and edge has;
/// each plugin registers its own (the catalog's `describe_metrics` does all).
pub fn describe_all() {
    describe(METRICS);
}
