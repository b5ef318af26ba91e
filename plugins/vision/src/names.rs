//! Metric names of the vision components, registered through
//! `ComponentMetrics::{counter, counter_with}` so they carry the standard labels.

pub use sluice_core::metrics::names::{FRAMES_CAPTURED_TOTAL, FRAMES_RECONNECTS_TOTAL};
use sluice_core::metrics::{MetricDoc, Unit};

/// Frames a `detect` transform ran the model on.
pub const DETECT_FRAMES_TOTAL: &str = "sluice_detect_frames_total";
/// Objects reported by a `detect` transform.
pub const DETECT_OBJECTS_TOTAL: &str = "sluice_detect_objects_total";
/// Thumbnails a `detect` transform wrote.
pub const DETECT_THUMBNAILS_TOTAL: &str = "sluice_detect_thumbnails_total";
/// Thumbnails a `detect` transform deleted to stay within its retention limits.
pub const DETECT_THUMBNAILS_DELETED_TOTAL: &str = "sluice_detect_thumbnails_deleted_total";
/// Failures of a `detect` transform's thumbnail store, by `reason`
/// (`encode`, `write`, `delete`, `scan`).
pub const DETECT_THUMBNAIL_ERRORS_TOTAL: &str = "sluice_detect_thumbnail_errors_total";

/// Help texts of the `detect` transform's metrics.
pub const DETECT_METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        DETECT_FRAMES_TOTAL,
        Unit::Count,
        "Frames a detect transform ran the model on.",
    ),
    MetricDoc::counter(
        DETECT_OBJECTS_TOTAL,
        Unit::Count,
        "Objects a detect transform reported.",
    ),
    MetricDoc::counter(
        DETECT_THUMBNAILS_TOTAL,
        Unit::Count,
        "Thumbnails a detect transform wrote.",
    ),
    MetricDoc::counter(
        DETECT_THUMBNAILS_DELETED_TOTAL,
        Unit::Count,
        "Thumbnails a detect transform deleted to stay within its retention limits.",
    ),
    MetricDoc::counter(
        DETECT_THUMBNAIL_ERRORS_TOTAL,
        Unit::Count,
        "Failures of a detect transform's thumbnail store, by reason.",
    ),
];
