//! ONNX model transforms on tract.
//!
//! - [`AnomalyConfig`] (`type: anomaly`): sensor anomaly detection with small
//!   window models (see `models/anomaly/`), or a PCA T²+Q model fitted on
//!   the box (`fit:`). `sluice eval-anomaly` measures it on labelled CSV
//!   files by replaying them through a pipeline.
//!
//! Models are loaded and optimised once when the component is built, with
//! concrete shapes; inference runs on the blocking pool, never on the async
//! reactor.
#![warn(missing_docs)]

pub mod anomaly;

pub use anomaly::{AnomalyConfig, AnomalyTransform, Threshold};
