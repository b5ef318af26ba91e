//! Camera frames: frame sources and object detection on tract.
//!
//! - [`FramesConfig`] (`type: frames`): frames from image files, an HTTP
//!   snapshot URL or an MJPEG stream.
//! - [`DetectConfig`] (`type: detect`): an ONNX object detector (NanoDet or
//!   YOLOv8 layouts) over frames, one row per detection.
//! - [`TrackConfig`] (`type: track`): stable track ids for detections.
//! - [`ZonesConfig`] (`type: zones`): enter/exit/dwell/line-crossing events
//!   with opening-hours rules.
//!
//! Frames are their own payload (`Msg::Frame`), never Arrow rows; the
//! detector is loaded and optimised once when the component is built and runs
//! on the blocking pool, never on the async reactor.
#![warn(missing_docs)]

pub mod detect;
pub mod frames;
pub mod names;
pub mod track;
pub mod zones;

pub use detect::{DetectConfig, DetectTransform, Detector};
pub use frames::{FramesConfig, FramesSource};
pub use track::{TrackConfig, TrackTransform};
pub use zones::{ZonesConfig, ZonesTransform};
