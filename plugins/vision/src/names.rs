//! Metric names of the vision components, registered through
//! `ComponentMetrics::{counter, counter_with}` so they carry the standard labels.

/// Frames a `detect` transform ran the model on.
pub const DETECT_FRAMES_TOTAL: &str = "sluice_detect_frames_total";
/// Objects reported by a `detect` transform.
pub const DETECT_OBJECTS_TOTAL: &str = "sluice_detect_objects_total";
/// Frames a frame source captured.
pub const FRAMES_CAPTURED_TOTAL: &str = "sluice_frames_captured_total";
/// Reconnects of a frame source after a failed or stalled stream.
pub const FRAMES_RECONNECTS_TOTAL: &str = "sluice_frames_reconnects_total";
/// Thumbnails a `detect` transform wrote.
pub const DETECT_THUMBNAILS_TOTAL: &str = "sluice_detect_thumbnails_total";
/// Thumbnails a `detect` transform deleted to stay within its retention limits.
pub const DETECT_THUMBNAILS_DELETED_TOTAL: &str = "sluice_detect_thumbnails_deleted_total";
/// Failures of a `detect` transform's thumbnail store, by `reason`
/// (`encode`, `write`, `delete`, `scan`).
pub const DETECT_THUMBNAIL_ERRORS_TOTAL: &str = "sluice_detect_thumbnail_errors_total";
