//! `type: anomaly`: configuration, validation against the input schema and
//! building the running transform.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::{
    BufferConfig, BuildCx, BuildError, EnvString, HumanDuration, TransformConfig, Validator,
};

use super::model::{ModelError, ScoringModel};
use super::transform::AnomalyTransform;

/// Default name of the score column added to every row.
pub const SCORE_COLUMN: &str = "anomaly_score";
/// Default name of the flag column added to every row.
pub const FLAG_COLUMN: &str = "is_anomaly";

/// Scores rows with an ONNX model over a window of each key's recent values
/// and flags the anomalous ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AnomalyConfig {
    /// Upstream component ids.
    pub inputs: Vec<String>,
    /// Input edge settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// Path of the ONNX model. Its single f32 input is the window,
    /// `[batch, history * features]` or `[batch, history, features]` (each
    /// key's last `history` rows, oldest first, features in the order of
    /// `features`); its output is one score per row, higher meaning more
    /// anomalous.
    pub model: EnvString,
    /// Expected SHA-256 of the model file in hexadecimal; the model is refused
    /// when the file differs.
    #[serde(default)]
    pub sha256: Option<EnvString>,
    /// Column identifying a series, e.g. `device` (utf8 or integer). State is
    /// kept per key; without it all rows form one series.
    #[serde(default)]
    pub key: Option<String>,
    /// Numeric columns fed to the model, in the order it expects them.
    pub features: Vec<String>,
    /// Rows per window: the newest row and the ones before it, per key.
    #[serde(default = "default_history")]
    pub history: NonZeroUsize,
    /// Standardise each feature per key with running statistics before the
    /// model sees it (what the shipped models expect).
    #[serde(default = "default_normalize")]
    pub normalize: bool,
    /// Rows a key must have seen before its first score, so its running
    /// statistics settle; at least `history`. Default: the larger of
    /// `history` and 128.
    #[serde(default)]
    pub warmup: Option<usize>,
    /// Time constant of the running statistics in rows: how fast the
    /// baseline follows a lasting change.
    #[serde(default = "default_horizon")]
    pub horizon: NonZeroUsize,
    /// Score at or above which a row is an anomaly: a number, or
    /// `{calibrate: 5m, quantile: 0.999}` to learn it per key.
    #[serde(default)]
    pub threshold: Threshold,
    /// Keys without rows for this long are forgotten.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Most keys kept at once; the least recently seen key is forgotten to
    /// make room for a new one.
    #[serde(default = "default_max_keys")]
    pub max_keys: NonZeroUsize,
    /// Most rows per model call; larger groups are split.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: NonZeroUsize,
    /// Cores one model call may use: a call of at least 64 rows is cut
    /// into this many parts scored at once, on the calling thread and
    /// `threads - 1` helper threads of the transform's own. `1` (the
    /// default) keeps the other cores for the rest of the box; with `2` on a
    /// 2-core box the shipped models score 1.4-1.9x the rows per second. A
    /// helper spins for up to 100 µs after each call before it sleeps.
    #[serde(default = "default_threads")]
    pub threads: NonZeroUsize,
    /// What happens to rows with a missing, NaN or infinite feature.
    #[serde(default)]
    pub on_invalid: OnInvalid,
    /// Name of the added score column (float64, null until the key is warm).
    #[serde(default = "default_score_column")]
    pub score_column: String,
    /// Name of the added flag column (bool, null while undecided).
    #[serde(default = "default_flag_column")]
    pub flag_column: String,
}

fn default_score_column() -> String {
    SCORE_COLUMN.to_owned()
}
fn default_flag_column() -> String {
    FLAG_COLUMN.to_owned()
}

fn default_history() -> NonZeroUsize {
    NonZeroUsize::new(32).unwrap_or(NonZeroUsize::MIN)
}
fn default_normalize() -> bool {
    true
}
fn default_horizon() -> NonZeroUsize {
    NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN)
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}
fn default_max_keys() -> NonZeroUsize {
    NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN)
}
fn default_threads() -> NonZeroUsize {
    NonZeroUsize::MIN
}

fn default_batch_rows() -> NonZeroUsize {
    NonZeroUsize::new(512).unwrap_or(NonZeroUsize::MIN)
}

/// Default fixed threshold of the shipped models.
pub const DEFAULT_THRESHOLD: f64 = 0.9;

/// What happens to a row whose features cannot be scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    /// Drop the row and count it as `invalid_feature`.
    #[default]
    Drop,
    /// Keep the row with a null score and `is_anomaly: true`.
    Flag,
}

/// When a score counts as an anomaly.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    /// A fixed score.
    Fixed(f64),
    /// Learned per key from its first scores.
    Calibrate(CalibrateConfig),
}

impl Default for Threshold {
    fn default() -> Self {
        Self::Fixed(DEFAULT_THRESHOLD)
    }
}

/// Learning a key's threshold from its own scores.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct CalibrateConfig {
    /// How long each key learns, from its first score (event time when the
    /// stream has an event-time column, else processing time). Rows scored
    /// while learning have a null `is_anomaly`.
    pub calibrate: HumanDuration,
    /// Quantile of the learned scores that becomes the threshold.
    #[serde(default = "default_quantile")]
    pub quantile: f64,
    /// Lowest threshold calibration may produce, so a key that was perfectly
    /// clean while learning does not flag ordinary noise later.
    #[serde(default = "default_min")]
    pub min: f64,
    /// Scores kept per key while learning (a uniform sample beyond that).
    #[serde(default = "default_samples")]
    pub samples: NonZeroUsize,
}

fn default_quantile() -> f64 {
    0.999
}
fn default_min() -> f64 {
    0.5
}
fn default_samples() -> NonZeroUsize {
    NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN)
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a score such as `0.9` or `{calibrate: 5m, quantile: 0.999}`")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Threshold, E> {
                Ok(Threshold::Fixed(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threshold, E> {
                Ok(Threshold::Fixed(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threshold, E> {
                Ok(Threshold::Fixed(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Threshold, E> {
                v.trim()
                    .parse()
                    .map(Threshold::Fixed)
                    .map_err(|_| E::custom(format!("invalid threshold `{v}`: {}", ExpectThreshold)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Threshold, A::Error> {
                // The same map stream goes to the struct, so unknown keys are
                // reported at their own location.
                CalibrateConfig::deserialize(MapAccessDeserializer::new(map))
                    .map(Threshold::Calibrate)
            }
        }
        d.deserialize_any(V)
    }
}

struct ExpectThreshold;
impl fmt::Display for ExpectThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a score such as `0.9` or `{calibrate: 5m, quantile: 0.999}`")
    }
}

impl AnomalyConfig {
    /// The `type` of this component in pipeline YAML.
    pub const TYPE: &'static str = "anomaly";

    /// Rows before a key's first score.
    pub fn effective_warmup(&self) -> usize {
        self.warmup.unwrap_or_else(|| self.history.get().max(128))
    }

    /// Checks everything that does not need the model; returns the output
    /// schema when the input columns fit.
    fn check_columns(&self, input: &SchemaRef, v: &mut Validator) -> Option<SchemaRef> {
        let mut ok = true;
        if self.features.is_empty() {
            v.error(&["features"], "at least one feature column is required");
            ok = false;
        }
        for (i, name) in self.features.iter().enumerate() {
            if self.features[..i].contains(name) {
                v.warn(&["features"], format!("feature `{name}` is listed twice"));
            }
            match input.field_with_name(name) {
                Ok(f) if is_numeric(f.data_type()) => {}
                Ok(f) => {
                    v.error(
                        &["features"],
                        format!(
                            "feature `{name}` is {}, expected a numeric column",
                            f.data_type()
                        ),
                    );
                    ok = false;
                }
                Err(_) => {
                    v.error(
                        &["features"],
                        format!("feature `{name}` is not a column of the input"),
                    )
                    .help(format!("the input has the columns {}", column_list(input)));
                    ok = false;
                }
            }
        }
        if let Some(key) = &self.key {
            match input.field_with_name(key) {
                Ok(f) if is_key_type(f.data_type()) => {}
                Ok(f) => {
                    v.error(
                        &["key"],
                        format!(
                            "key `{key}` is {}, expected a string or integer column",
                            f.data_type()
                        ),
                    );
                    ok = false;
                }
                Err(_) => {
                    v.error(
                        &["key"],
                        format!("key `{key}` is not a column of the input"),
                    )
                    .help(format!("the input has the columns {}", column_list(input)));
                    ok = false;
                }
            }
        }
        for (key, col) in [
            ("score_column", &self.score_column),
            ("flag_column", &self.flag_column),
        ] {
            if input.field_with_name(col).is_ok() {
                v.error(&[key], format!("the input already has a column `{col}`"))
                    .help(format!("set `{key}` to another name"));
                ok = false;
            }
        }
        if self.score_column == self.flag_column {
            v.error(
                &["flag_column"],
                "`score_column` and `flag_column` must differ",
            );
            ok = false;
        }
        if let Some(w) = self.warmup
            && w < self.history.get()
        {
            v.error(
                &["warmup"],
                format!("warmup {w} is shorter than history {}", self.history),
            );
            ok = false;
        }
        match &self.threshold {
            Threshold::Fixed(t) if !t.is_finite() => {
                v.error(&["threshold"], "the threshold must be a finite number");
                ok = false;
            }
            Threshold::Calibrate(c) => {
                if !(c.quantile > 0.0 && c.quantile <= 1.0) {
                    v.error(&["threshold", "quantile"], "the quantile must be in (0, 1]");
                    ok = false;
                }
                if c.calibrate.get().is_zero() {
                    v.error(
                        &["threshold", "calibrate"],
                        "the calibration period must be positive",
                    );
                    ok = false;
                }
                if !c.min.is_finite() {
                    v.error(&["threshold", "min"], "`min` must be a finite number");
                    ok = false;
                }
            }
            Threshold::Fixed(_) => {}
        }
        ok.then(|| output_schema(input, &self.score_column, &self.flag_column))
    }

    fn load_model(&self, max_batch: usize) -> Result<ScoringModel, ModelError> {
        ScoringModel::load_threaded(
            Path::new(self.model.as_str()),
            self.sha256.as_deref(),
            self.history.get(),
            self.features.len(),
            max_batch,
            self.threads.get(),
        )
    }
}

/// The input columns plus the score (float64) and flag (bool) columns, both
/// nullable: they are null until a key has warmed up.
pub fn output_schema(input: &SchemaRef, score_column: &str, flag_column: &str) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(score_column, DataType::Float64, true));
    fields.push(Field::new(flag_column, DataType::Boolean, true));
    Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
}

fn report_model_error(e: &ModelError, v: &mut Validator) {
    let path: &[&str] = match e {
        ModelError::BadChecksum(_) | ModelError::ChecksumMismatch { .. } => &["sha256"],
        ModelError::Shape { features: true, .. } => &["features"],
        ModelError::Shape {
            features: false, ..
        } => &["history"],
        ModelError::Read { .. } | ModelError::Load { .. } | ModelError::Run(_) => &["model"],
    };
    v.error(path, e.to_string());
}

fn column_list(input: &SchemaRef) -> String {
    input
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn is_numeric(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Float64
            | DataType::Float32
            | DataType::Float16
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

pub(crate) fn is_key_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

impl TransformConfig for AnomalyConfig {
    type Component = AnomalyTransform;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, input: &SchemaRef, v: &mut Validator) -> Option<SchemaRef> {
        let schema = self.check_columns(input, v);
        // One small plan is enough to prove the model loads with these shapes.
        match self.load_model(1) {
            Ok(_) => schema,
            Err(e) => {
                report_model_error(&e, v);
                None
            }
        }
    }

    fn build(&self, cx: &BuildCx) -> Result<AnomalyTransform, BuildError> {
        let input = cx.require_input_schema()?;
        let mut v = Validator::new();
        let Some(output) = self.check_columns(&input, &mut v) else {
            let msgs: Vec<String> = v
                .into_issues()
                .into_iter()
                .filter(|i| i.severity == sluice_core::validate::Severity::Error)
                .map(|i| i.message)
                .collect();
            return Err(BuildError::msg(format!(
                "component `{}`: {}",
                cx.id,
                msgs.join("; ")
            )));
        };
        let model = self
            .load_model(self.batch_rows.get())
            .map_err(|e| BuildError::context(format!("component `{}`", cx.id), e))?;
        AnomalyTransform::new(self, cx, input, output, model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<AnomalyConfig, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn threshold_accepts_a_number() {
        let c = parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\nthreshold: 0.8\n").unwrap();
        assert_eq!(c.threshold, Threshold::Fixed(0.8));
        let c = parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\nthreshold: 1\n").unwrap();
        assert_eq!(c.threshold, Threshold::Fixed(1.0));
    }

    #[test]
    fn threshold_accepts_a_calibration_map_with_defaults() {
        let c = parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\nthreshold: {calibrate: 5m}\n")
            .unwrap();
        let Threshold::Calibrate(cal) = c.threshold else {
            panic!("{:?}", c.threshold)
        };
        assert_eq!(cal.calibrate.get(), Duration::from_secs(300));
        assert_eq!(cal.quantile, 0.999);
        assert_eq!(cal.min, 0.5);
    }

    #[test]
    fn threshold_map_rejects_unknown_keys() {
        let err = parse(
            "inputs: [a]\nmodel: m.onnx\nfeatures: [v]\nthreshold: {calibrate: 5m, quantle: 0.9}\n",
        )
        .unwrap_err();
        assert!(err.contains("quantle"), "{err}");
    }

    #[test]
    fn threshold_rejects_text_that_is_not_a_number() {
        let err =
            parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\nthreshold: high\n").unwrap_err();
        assert!(err.contains("invalid threshold `high`"), "{err}");
    }

    #[test]
    fn defaults_fit_the_univariate_model() {
        let c = parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\n").unwrap();
        assert_eq!(c.history.get(), 32);
        assert_eq!(c.effective_warmup(), 128);
        assert!(c.normalize);
        assert_eq!(c.threshold, Threshold::Fixed(DEFAULT_THRESHOLD));
        assert_eq!(c.on_invalid, OnInvalid::Drop);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\nhistroy: 3\n").is_err());
    }
}
