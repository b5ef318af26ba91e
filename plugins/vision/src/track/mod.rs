//! `type: track`: stable track ids for detections.
//!
//! ```yaml
//! tracked:
//!   type: track
//!   inputs: [people]        # rows of a `detect` transform
//!   iou_threshold: 0.3
//!   max_age: 1s
//! ```
//!
//! Output: the input columns plus `track_id` (int64), stable while an object
//! stays in view and unique across cameras. Rows of one frame share `camera`
//! and `ts`; frames must arrive in event-time order per camera.

mod config;
mod tracker;
mod transform;

pub use config::TrackConfig;
pub(crate) use config::check_tracked;
pub use tracker::{Observation, Tracker, TrackerParams, Trackers};
pub use transform::TrackTransform;

#[cfg(test)]
mod tests;
