//! `type: anomaly`: scores sensor rows with an ONNX model over a window of
//! each key's recent values and flags the anomalous ones.
//!
//! ```yaml
//! anomaly:
//!   type: anomaly
//!   inputs: [telemetry]
//!   model: models/anomaly/univariate-h32.onnx
//!   key: device
//!   features: [temperature]
//!   history: 32
//!   threshold: { calibrate: 5m, quantile: 0.999 }
//! ```
//!
//! Output: the input columns plus `anomaly_score` (the model's output; the
//! shipped models give a probability in 0..1) and `is_anomaly`, both null
//! until the row's key has seen `warmup` rows (and, with a calibrated
//! threshold, `is_anomaly` stays null while the key learns its threshold).

mod config;
mod fitting;
mod incident;
mod likelihood;
mod model;
pub mod names;
pub mod pca;
mod state;
mod transform;

#[cfg(test)]
mod tests;

pub use config::{
    AnomalyConfig, CalibrateConfig, CalibrationConfig, DEFAULT_LIKELIHOOD_THRESHOLD,
    DEFAULT_MIN_SCORE, DEFAULT_THRESHOLD, FLAG_COLUMN, INCIDENT_COLUMNS, INCIDENT_DURATION_COLUMN,
    INCIDENT_END_COLUMN, INCIDENT_ID_COLUMN, INCIDENT_PEAK_COLUMN, INCIDENT_START_COLUMN,
    IncidentConfig, LIKELIHOOD_COLUMN, LikelihoodConfig, OnInvalid, SCORE_COLUMN, Threshold,
    output_schema,
};
pub use fitting::FitConfig;
pub use incident::Span;
pub use model::{BUCKETS, ModelError, ScoringModel, sha256_hex};
pub use transform::AnomalyTransform;
