//! Metric names of the camera source: those of every frame source
//! (`sluice_core::metrics::names`), so one dashboard covers the `frames` and
//! `camera` sources (`component_type` tells them apart).

pub use sluice_core::metrics::names::{FRAMES_CAPTURED_TOTAL, FRAMES_RECONNECTS_TOTAL};
