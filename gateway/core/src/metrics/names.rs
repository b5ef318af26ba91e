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
/// Whether a component's link is up (1) or down (0).
pub const LINK_UP: &str = "sluice_link_up";
/// Frames a frame source (`frames` or `camera`) captured.
pub const FRAMES_CAPTURED_TOTAL: &str = "sluice_frames_captured_total";
/// Reconnects of a frame source after a failed, stalled or vanished stream
/// or camera.
pub const FRAMES_RECONNECTS_TOTAL: &str = "sluice_frames_reconnects_total";
