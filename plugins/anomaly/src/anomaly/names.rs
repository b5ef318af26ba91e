//! Metric names of the `anomaly` transform, with the gateway's common names
//! ([`sluice_core::metrics::names`]) re-exported so `names::X` reaches both.

pub use sluice_core::metrics::names::*;
use sluice_core::metrics::{MetricDoc, Unit};

/// Keys whose state an `anomaly` transform currently holds.
pub const ANOMALY_KEYS: &str = "sluice_anomaly_keys";
/// Keys an `anomaly` transform forgot because they were idle or the key
/// limit was reached.
pub const ANOMALY_EVICTED_KEYS_TOTAL: &str = "sluice_anomaly_evicted_keys_total";
/// Rows an `anomaly` transform scored.
pub const ANOMALY_SCORED_ROWS_TOTAL: &str = "sluice_anomaly_scored_rows_total";
/// Rows an `anomaly` transform flagged `is_anomaly: true`.
pub const ANOMALY_FLAGGED_ROWS_TOTAL: &str = "sluice_anomaly_flagged_rows_total";
/// Incidents an `anomaly` transform opened.
pub const ANOMALY_INCIDENTS_TOTAL: &str = "sluice_anomaly_incidents_total";
/// Keys an `anomaly` transform fitted a model for (`fit:`).
pub const ANOMALY_FITTED_KEYS_TOTAL: &str = "sluice_anomaly_fitted_keys_total";
/// Incident openings an `anomaly` transform held back because the key was
/// in its cool-down after the previous incident.
pub const ANOMALY_SUPPRESSED_TOTAL: &str = "sluice_anomaly_suppressed_openings_total";

/// Help texts of the metrics above.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::gauge(
        ANOMALY_KEYS,
        Unit::Count,
        "Keys whose state an anomaly transform holds.",
    ),
    MetricDoc::counter(
        ANOMALY_EVICTED_KEYS_TOTAL,
        Unit::Count,
        "Keys an anomaly transform forgot (idle or over the key limit).",
    ),
    MetricDoc::counter(
        ANOMALY_SCORED_ROWS_TOTAL,
        Unit::Count,
        "Rows an anomaly transform scored.",
    ),
    MetricDoc::counter(
        ANOMALY_FLAGGED_ROWS_TOTAL,
        Unit::Count,
        "Rows an anomaly transform flagged as anomalous.",
    ),
    MetricDoc::counter(
        ANOMALY_INCIDENTS_TOTAL,
        Unit::Count,
        "Incidents an anomaly transform opened.",
    ),
    MetricDoc::counter(
        ANOMALY_FITTED_KEYS_TOTAL,
        Unit::Count,
        "Keys an anomaly transform fitted a model for.",
    ),
    MetricDoc::counter(
        ANOMALY_SUPPRESSED_TOTAL,
        Unit::Count,
        "Incident openings held back by a key's cool-down.",
    ),
];
