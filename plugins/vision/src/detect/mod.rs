//! `type: detect`: an object detector (ONNX on tract) over camera frames.
//!
//! ```yaml
//! people:
//!   type: detect
//!   inputs: [entrance_cam]
//!   model: models/detect/nanodet-g-416.onnx
//!   format: nanodet
//!   classes: [person]
//!   score_threshold: 0.35
//! ```
//!
//! Per frame: decode (JPEG, PNG or raw RGB), fit to the model input (stretch
//! or letterbox, bilinear), normalise, run, decode the layout selected by
//! `format`, per-class NMS. Output: one row per detection with `camera`,
//! `ts`, `seq`, `class`, `class_id`, `score`, the box `x1 y1 x2 y2` in frame
//! pixels and `frame_width`/`frame_height`, plus `thumbnail` (the path of a
//! small JPEG of the frame, or null) with `thumbnails`. Frames that do not
//! decode are counted as `corrupt_frame` and dropped.
//!
//! With `workers: N` up to N frames are in the model at once; their rows are
//! emitted in the order the frames arrived, so per camera in frame order.

mod config;
mod decode;
pub mod labels;
mod model;
mod nanodet;
mod nms;
mod ordered;
mod preprocess;
mod thumbnails;
mod transform;
mod yolov8;

#[cfg(test)]
mod tests;

pub use config::{DetectConfig, THUMBNAIL_COLUMN, detection_schema, output_schema};
pub use decode::{DecodeParams, Format, Head, LayoutError};
pub use model::{Detector, ModelError, PostProcess};
pub use nms::{BBox, Detection, nms};
pub use preprocess::{
    Channels, FrameError, Geometry, Layout, Preprocess, Resize, Rgb, decode_frame,
};
pub use thumbnails::ThumbnailsConfig;
pub use transform::DetectTransform;
