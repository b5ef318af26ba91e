//! A local camera as a frame source (`type: camera`): V4L2 devices on Linux,
//! opened through [nokhwa](https://docs.rs/nokhwa).
//!
//! ```yaml
//! shelf_cam:
//!   type: camera
//!   camera: shelf
//!   device: 0              # or /dev/video2, or part of the device name
//!   resolution: 640x480
//!   fps: 15
//! ```
//!
//! The camera is opened once while the pipeline is built, so a missing, busy
//! or unsuitable camera stops `sluice run` at start-up with a message naming
//! the device and listing the devices found. At run time a capture thread
//! grabs buffers (drivers block) and queues frames in a small drop-oldest
//! queue that the async side forwards downstream. MJPEG buffers pass through
//! as JPEG frames; YUYV, NV12, RGB, BGR and GRAY become packed RGB. A camera
//! that fails or disappears later is counted, logged at most every 10 s and
//! reopened with backoff; nothing a camera does panics the gateway.
#![warn(missing_docs)]

mod capture;
mod config;
mod convert;
mod device;
mod mode;
pub mod names;
mod source;

pub use config::{CameraConfig, DeviceSelector, Resolution};
pub use source::CameraSource;

#[cfg(test)]
mod tests;
