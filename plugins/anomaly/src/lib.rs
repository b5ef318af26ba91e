//! ONNX model transforms on tract.
//!
//! - [`AnomalyConfig`] (`type: anomaly`): sensor anomaly detection with small
//!   window models (see `models/anomaly/`), plus [`evaluate_csv`], which
//!   replays a labelled CSV through the transform and reports precision,
//!   recall, F1 and detection delay.
//!
//! Models are loaded and optimised once when the component is built, with
//! concrete shapes; inference runs on the blocking pool, never on the async
//! reactor.
#![warn(missing_docs)]

pub mod anomaly;

pub use anomaly::{
    AnomalyConfig, AnomalyTransform, EvalOptions, EvalReport, Threshold, evaluate_csv,
};
