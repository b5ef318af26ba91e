//! Every metric name the gateway emits. Names follow
//! `sluice_<namespace>_<noun>_<unit>[_total]` in base units.

/// Rows received by a component (sources: rows decoded).
pub const COMPONENT_RECEIVED_ROWS_TOTAL: &str = "sluice_component_received_rows_total";
/// Batches received by a component.
pub const COMPONENT_RECEIVED_BATCHES_TOTAL: &str = "sluice_component_received_batches_total";
/// Bytes received (sources: payload bytes).
pub const COMPONENT_RECEIVED_BYTES_TOTAL: &str = "sluice_component_received_bytes_total";
/// Rows sent downstream.
pub const COMPONENT_SENT_ROWS_TOTAL: &str = "sluice_component_sent_rows_total";
/// Batches sent downstream.
pub const COMPONENT_SENT_BATCHES_TOTAL: &str = "sluice_component_sent_batches_total";
/// Rows dropped, labelled by `reason` and `intentional`.
pub const COMPONENT_DISCARDED_ROWS_TOTAL: &str = "sluice_component_discarded_rows_total";
/// Errors, labelled by `error_code`, `error_kind` and `stage`.
pub const COMPONENT_ERRORS_TOTAL: &str = "sluice_component_errors_total";
/// Time spent processing one batch.
pub const COMPONENT_PROCESSING_SECONDS: &str = "sluice_component_processing_seconds";
/// Component restarts by the supervisor.
pub const COMPONENT_RESTARTS_TOTAL: &str = "sluice_component_restarts_total";
/// Batches put on an edge.
pub const EDGE_SENT_BATCHES_TOTAL: &str = "sluice_edge_sent_batches_total";
/// Batches taken off an edge.
pub const EDGE_RECEIVED_BATCHES_TOTAL: &str = "sluice_edge_received_batches_total";
/// Batches waiting in an edge's queue.
pub const EDGE_QUEUE_BATCHES: &str = "sluice_edge_queue_batches";
/// MQTT connection errors.
pub const MQTT_CONNECTION_ERRORS_TOTAL: &str = "sluice_mqtt_connection_errors_total";
/// MQTT reconnects after a lost connection.
pub const MQTT_RECONNECTS_TOTAL: &str = "sluice_mqtt_reconnects_total";
/// Messages published by an MQTT sink.
pub const MQTT_PUBLISHED_MESSAGES_TOTAL: &str = "sluice_mqtt_published_messages_total";
/// Whether a component's link is up (1) or down (0).
pub const LINK_UP: &str = "sluice_link_up";
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
/// Digests whose model summary was replaced by the template summary, by
/// `reason` (`ungrounded`, `missing_top`, `incomplete`, `empty`, `timeout`,
/// `prompt_too_long`, `grammar_error`, `model_error`, `model_unavailable`).
pub const SUMMARIZE_FALLBACKS_TOTAL: &str = "sluice_summarize_fallbacks_total";
/// Extra generations run because an answer failed the grounding check.
pub const SUMMARIZE_REGENERATIONS_TOTAL: &str = "sluice_summarize_regenerations_total";
/// Digests a `summarize` transform with `escalate:` handled, by `outcome`:
/// `answered` (the endpoint's answer is in the row), `failed` (see
/// [`SUMMARIZE_ESCALATION_FAILURES_TOTAL`]) or `paused` (not sent: the
/// endpoint failed recently).
pub const SUMMARIZE_ESCALATIONS_TOTAL: &str = "sluice_summarize_escalations_total";
/// Escalations that brought no answer, by `reason` (`connect`, `timeout`,
/// `tls`, `http_status`, `bad_answer`, `transport`).
pub const SUMMARIZE_ESCALATION_FAILURES_TOTAL: &str = "sluice_summarize_escalation_failures_total";
/// Request bytes sent to the escalation endpoint (digest and compact facts).
pub const SUMMARIZE_ESCALATION_SENT_BYTES_TOTAL: &str =
    "sluice_summarize_escalation_sent_bytes_total";
/// Bytes of the events behind the escalated digests, as JSON lines: what
/// sending the raw events instead would have cost.
pub const SUMMARIZE_ESCALATION_WINDOW_BYTES_TOTAL: &str =
    "sluice_summarize_escalation_window_bytes_total";
