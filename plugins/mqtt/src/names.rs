//! Metric names of the MQTT source and sink and of the outbox behind the
//! sink, with the gateway's common names ([`sluice_core::metrics::names`])
//! re-exported so `names::X` reaches both.

pub use sluice_core::metrics::names::*;
use sluice_core::metrics::{MetricDoc, Unit};

/// MQTT connection errors.
pub const MQTT_CONNECTION_ERRORS_TOTAL: &str = "sluice_mqtt_connection_errors_total";
/// MQTT reconnects after a lost connection.
pub const MQTT_RECONNECTS_TOTAL: &str = "sluice_mqtt_reconnects_total";
/// Messages published by an MQTT sink.
pub const MQTT_PUBLISHED_MESSAGES_TOTAL: &str = "sluice_mqtt_published_messages_total";
/// Entries waiting in an outbox.
pub const OUTBOX_STORED_ROWS: &str = "sluice_outbox_stored_rows";
/// Bytes waiting in an outbox.
pub const OUTBOX_STORED_BYTES: &str = "sluice_outbox_stored_bytes";
/// Age of the oldest entry waiting in an outbox.
pub const OUTBOX_OLDEST_AGE_SECONDS: &str = "sluice_outbox_oldest_age_seconds";
/// Entries acknowledged by the upstream broker and removed from an outbox.
pub const OUTBOX_ACKED_ROWS_TOTAL: &str = "sluice_outbox_acked_rows_total";
/// Entries evicted from an outbox, by `reason`.
pub const OUTBOX_EVICTED_ROWS_TOTAL: &str = "sluice_outbox_evicted_rows_total";
/// Damaged outbox files moved aside and replaced.
pub const OUTBOX_QUARANTINED_FILES_TOTAL: &str = "sluice_outbox_quarantined_files_total";

/// Help texts of the metrics above.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        MQTT_CONNECTION_ERRORS_TOTAL,
        Unit::Count,
        "MQTT connection errors.",
    ),
    MetricDoc::counter(
        MQTT_RECONNECTS_TOTAL,
        Unit::Count,
        "MQTT reconnects after a lost connection.",
    ),
    MetricDoc::counter(
        MQTT_PUBLISHED_MESSAGES_TOTAL,
        Unit::Count,
        "Messages published by an MQTT sink.",
    ),
    MetricDoc::gauge(
        OUTBOX_STORED_ROWS,
        Unit::Count,
        "Entries waiting in an outbox.",
    ),
    MetricDoc::gauge(
        OUTBOX_STORED_BYTES,
        Unit::Bytes,
        "Bytes waiting in an outbox.",
    ),
    MetricDoc::gauge(
        OUTBOX_OLDEST_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest entry waiting in an outbox.",
    ),
    MetricDoc::counter(
        OUTBOX_ACKED_ROWS_TOTAL,
        Unit::Count,
        "Outbox entries acknowledged upstream and removed.",
    ),
    MetricDoc::counter(
        OUTBOX_EVICTED_ROWS_TOTAL,
        Unit::Count,
        "Outbox entries evicted, by reason.",
    ),
    MetricDoc::counter(
        OUTBOX_QUARANTINED_FILES_TOTAL,
        Unit::Count,
        "Damaged outbox files moved aside.",
    ),
];
