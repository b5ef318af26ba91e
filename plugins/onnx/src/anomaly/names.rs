//! Metric names of the `anomaly` transform, registered through
//! `ComponentMetrics::{counter, gauge}` so they carry the standard labels.

/// Keys whose state the transform currently holds.
pub const ANOMALY_KEYS: &str = "sluice_anomaly_keys";
/// Keys forgotten because they were idle or the key limit was reached.
pub const ANOMALY_EVICTED_KEYS_TOTAL: &str = "sluice_anomaly_evicted_keys_total";
/// Rows that received a score.
pub const ANOMALY_SCORED_ROWS_TOTAL: &str = "sluice_anomaly_scored_rows_total";
/// Rows flagged `is_anomaly: true`.
pub const ANOMALY_FLAGGED_ROWS_TOTAL: &str = "sluice_anomaly_flagged_rows_total";
