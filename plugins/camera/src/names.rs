//! Metric names of the camera source, registered through
//! `ComponentMetrics::counter` so they carry the standard labels.
//!
//! They are the names the `frames` source uses, so one dashboard covers both
//! kinds of frame source (`component_type` tells them apart).

/// Frames a frame source captured.
pub const FRAMES_CAPTURED_TOTAL: &str = "sluice_frames_captured_total";
/// Reopens of a camera after it failed, disappeared or could not be opened.
pub const FRAMES_RECONNECTS_TOTAL: &str = "sluice_frames_reconnects_total";
