//! `type: frames`: camera frames from image files, an HTTP snapshot URL or an
//! HTTP MJPEG stream.
//!
//! ```yaml
//! entrance_cam:
//!   type: frames
//!   camera: entrance
//!   mjpeg_url: http://192.168.1.20/video.mjpg
//!   fps: 5
//! ```
//!
//! Every frame carries the camera id, its event time, its sequence number and
//! its size. Frames wait in a small queue (`queue: 2`) that drops the oldest
//! when downstream is slower (counted as `drop_oldest`); images that do not
//! decode are counted as `corrupt_frame` and dropped; a failed, stalled or
//! ended HTTP stream is counted, logged and reconnected with backoff.

mod capture;
mod config;
mod files;
pub mod http;
pub mod mjpeg;
mod source;

pub use config::{FramesConfig, Timestamps};
pub use files::{list, time_from_name, wildcard};
pub use source::{FramesSource, Input};

#[cfg(test)]
mod tests;
