//! Metric names of the camera source, registered through
//! `ComponentMetrics::counter` so they carry the standard labels.
//!
//! They are the names the `frames` source uses, so one dashboard covers both
//! kinds of frame source (`component_type` tells them apart).

use sluice_core::metrics::{MetricDoc, Unit};

/// Frames a frame source captured.
pub const FRAMES_CAPTURED_TOTAL: &str = "sluice_frames_captured_total";
/// Reopens of a camera after it failed, disappeared or could not be opened.
pub const FRAMES_RECONNECTS_TOTAL: &str = "sluice_frames_reconnects_total";

/// Help texts of the metrics above (the same text as the `frames` source's).
pub const METRICS: &[MetricDoc] = &[
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
