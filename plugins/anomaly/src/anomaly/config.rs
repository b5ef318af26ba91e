//! `type: anomaly`: configuration, validation against the input schema and
//! building the running transform.

use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use sluice_core::InputSchema;
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::{
    BufferConfig, BuildCx, BuildError, EnvString, HumanDuration, TransformConfig, Validator,
};

use super::fitting::{FitConfig, PcaSource};
use super::incident::Span;
use super::model::{ModelError, ScoringModel};
use super::transform::{AnomalyTransform, Scorer};

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
    /// anomalous. Or a `.json` model file written by `sluice fit` (PCA
    /// T²+Q, one model or one per key). Not needed with `fit`.
    #[serde(default)]
    pub model: Option<EnvString>,
    /// Learn a PCA T²+Q model per key from its own first rows, on the box:
    /// `{rows: 600}` or `{for: 10m}`, optionally `dir` to keep the models.
    #[serde(default)]
    pub fit: Option<FitConfig>,
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
    /// With `normalize`: a level a feature holds for a while, far from its
    /// running mean, becomes its mean at once (see `state.rs`), so a level
    /// shift is one incident rather than one per cool-down while the slow
    /// statistics catch up.
    #[serde(default = "default_rebase")]
    pub rebase: bool,
    /// Rows a key must have seen before its first score, so its running
    /// statistics settle; at least `history`. Default: the larger of
    /// `history` and 128.
    #[serde(default)]
    pub warmup: Option<usize>,
    /// Time constant of the running statistics in rows: how fast the
    /// baseline follows a lasting change.
    #[serde(default = "default_horizon")]
    pub horizon: NonZeroUsize,
    /// How raw scores become decisions: `likelihood` (the default) turns
    /// each key's scores into `anomaly_likelihood`, the probability that the
    /// recent scores are a surprise for that key, and `threshold` applies to
    /// it; `none` applies `threshold` to the raw score.
    /// Default: `likelihood` for an ONNX model, `none` for PCA models
    /// (their score is already relative to each key's normal: 1 is the edge
    /// of normal, so the default threshold there is 1).
    #[serde(default)]
    pub calibration: Option<CalibrationConfig>,
    /// Value at or above which a row is an anomaly and an incident opens.
    /// With `calibration: likelihood`, a likelihood (default 0.9, together with `calibration.min_score`); with
    /// `calibration: none`, a raw score (default 0.9) or `{calibrate: 5m,
    /// quantile: 0.999}` to learn a score threshold per key.
    #[serde(default)]
    pub threshold: Option<Threshold>,
    /// How flagged rows become incidents: one alert per episode.
    #[serde(default)]
    pub incident: IncidentConfig,
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
    /// What happens to rows with a missing, NaN or infinite feature.
    #[serde(default)]
    pub on_invalid: OnInvalid,
    /// Name of the added score column (float64, null until the key is warm).
    #[serde(default = "default_score_column")]
    pub score_column: String,
    /// Name of the added flag column (bool, null while undecided).
    #[serde(default = "default_flag_column")]
    pub flag_column: String,
    /// Put before the names of the likelihood and incident columns, so two
    /// `anomaly` transforms can be chained (e.g. `vib_` gives
    /// `vib_incident_start`).
    #[serde(default)]
    pub column_prefix: String,
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
fn default_batch_rows() -> NonZeroUsize {
    NonZeroUsize::new(512).unwrap_or(NonZeroUsize::MIN)
}

/// Default fixed threshold on the raw score of the shipped models, with
/// `calibration: none`.
pub const DEFAULT_THRESHOLD: f64 = 0.9;

/// Default threshold on the anomaly likelihood (chosen on the tuning part
/// of `models/anomaly/corpus.py`; see `models/anomaly/README.md`).
pub const DEFAULT_LIKELIHOOD_THRESHOLD: f64 = 0.9;

/// Default raw score a row needs besides its likelihood.
pub const DEFAULT_MIN_SCORE: f64 = 0.9;

/// Name of the likelihood column.
pub const LIKELIHOOD_COLUMN: &str = "anomaly_likelihood";
/// Name of the incident id column.
pub const INCIDENT_ID_COLUMN: &str = "incident_id";
/// Name of the column that is true on the row opening an incident.
pub const INCIDENT_START_COLUMN: &str = "incident_start";
/// Name of the column that is true on the row closing an incident.
pub const INCIDENT_END_COLUMN: &str = "incident_end";
/// Name of the column with the incident's peak score, on its closing row.
pub const INCIDENT_PEAK_COLUMN: &str = "incident_peak";
/// Name of the column with the incident's duration, on its closing row.
pub const INCIDENT_DURATION_COLUMN: &str = "incident_duration_ms";

/// The columns the transform adds after the score and flag columns.
pub const INCIDENT_COLUMNS: [&str; 6] = [
    LIKELIHOOD_COLUMN,
    INCIDENT_ID_COLUMN,
    INCIDENT_START_COLUMN,
    INCIDENT_END_COLUMN,
    INCIDENT_PEAK_COLUMN,
    INCIDENT_DURATION_COLUMN,
];

/// How raw scores become decisions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibrationConfig {
    /// The threshold applies to the raw score.
    None,
    /// The threshold applies to the anomaly likelihood.
    Likelihood(LikelihoodConfig),
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self::Likelihood(LikelihoodConfig::default())
    }
}

/// Settings of the anomaly likelihood.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LikelihoodConfig {
    /// Recent scores averaged into the value that is judged.
    #[serde(default = "default_short")]
    pub short: NonZeroUsize,
    /// Time constant, in scores, of the key's long-run score distribution.
    #[serde(default = "default_long")]
    pub long: NonZeroUsize,
    /// Scores a key sees before its first likelihood (its `is_anomaly`
    /// stays null until then).
    #[serde(default = "default_learn")]
    pub learn: usize,
    /// Floor of the long-run standard deviation of the averaged score, in
    /// log-odds of the raw score.
    #[serde(default = "default_min_std")]
    pub min_std: f64,
    /// Raw score a row needs besides a likelihood at the threshold: a
    /// surprise for the key must also be anomalous for the model.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    /// When short spikes are part of a key's normal behaviour.
    #[serde(default)]
    pub spikes: SpikesConfig,
}

/// Recurring short spikes: a key that has them often (a valve that kicks,
/// a bursty CPU metric) needs a lasting high score to raise an incident; a
/// key that rarely spikes keeps its first spike a surprise.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SpikesConfig {
    /// Raw score that counts as high; a spike starts on a high row after a
    /// row below it.
    #[serde(default = "default_spike_score")]
    pub score: f64,
    /// Spikes within about `long` scores that make them normal for the key.
    #[serde(default = "default_spike_count")]
    pub count: u32,
    /// High rows in a row a row of a spiky key needs.
    #[serde(default = "default_persist")]
    pub persist: NonZeroU32,
}

fn default_spike_score() -> f64 {
    0.95
}
fn default_spike_count() -> u32 {
    3
}
fn default_persist() -> NonZeroU32 {
    NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN)
}

impl Default for SpikesConfig {
    fn default() -> Self {
        Self {
            score: default_spike_score(),
            count: default_spike_count(),
            persist: default_persist(),
        }
    }
}

fn default_short() -> NonZeroUsize {
    NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN)
}
fn default_min_score() -> f64 {
    DEFAULT_MIN_SCORE
}
fn default_long() -> NonZeroUsize {
    NonZeroUsize::new(2000).unwrap_or(NonZeroUsize::MIN)
}
fn default_learn() -> usize {
    300
}
fn default_min_std() -> f64 {
    1.0
}

impl Default for LikelihoodConfig {
    fn default() -> Self {
        Self {
            short: default_short(),
            long: default_long(),
            learn: default_learn(),
            min_std: default_min_std(),
            min_score: default_min_score(),
            spikes: SpikesConfig::default(),
        }
    }
}

impl<'de> Deserialize<'de> for CalibrationConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CalibrationConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`likelihood`, `none` or `{short: 10, long: 2000, learn: 300}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CalibrationConfig, E> {
                match v.trim() {
                    "likelihood" => Ok(CalibrationConfig::default()),
                    "none" => Ok(CalibrationConfig::None),
                    other => Err(E::custom(format!(
                        "unknown calibration `{other}`: expected `likelihood` or `none`"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CalibrationConfig, A::Error> {
                LikelihoodConfig::deserialize(MapAccessDeserializer::new(map))
                    .map(CalibrationConfig::Likelihood)
            }
        }
        d.deserialize_any(V)
    }
}

/// How flagged rows become incidents.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct IncidentConfig {
    /// Raw score at or above which an open incident stays open (with
    /// `calibration: likelihood`, only on rows whose likelihood reaches the
    /// threshold). Default: `calibration.min_score`, or the threshold
    /// without calibration.
    #[serde(default)]
    pub release: Option<f64>,
    /// How long values stay below `release` before the incident closes:
    /// rows (`10`) or event time (`30s`).
    #[serde(default = "default_quiet")]
    pub quiet: Span,
    /// How long after closing the key opens no new incident: rows or event
    /// time.
    #[serde(default = "default_cooldown")]
    pub cooldown: Span,
}

fn default_quiet() -> Span {
    Span::Rows(40)
}
fn default_cooldown() -> Span {
    Span::Rows(150)
}
fn default_rebase() -> bool {
    true
}

impl Default for IncidentConfig {
    fn default() -> Self {
        Self {
            release: None,
            quiet: default_quiet(),
            cooldown: default_cooldown(),
        }
    }
}

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

    /// Names of the likelihood and incident columns, in output order.
    pub fn incident_columns(&self) -> Vec<String> {
        INCIDENT_COLUMNS
            .iter()
            .map(|c| format!("{}{c}", self.column_prefix))
            .collect()
    }

    /// Whether keys are scored by PCA models (`fit`, or a `.json` model).
    pub fn is_pca(&self) -> bool {
        self.fit.is_some()
            || self
                .model
                .as_ref()
                .is_some_and(|m| m.as_str().ends_with(".json"))
    }

    /// The calibration in force: the configured one, or the default of the
    /// kind of model.
    pub fn effective_calibration(&self) -> CalibrationConfig {
        self.calibration.unwrap_or(if self.is_pca() {
            CalibrationConfig::None
        } else {
            CalibrationConfig::default()
        })
    }

    /// The threshold in force: the configured one, or the default of the
    /// calibration.
    pub fn effective_threshold(&self) -> Threshold {
        self.threshold
            .clone()
            .unwrap_or(match self.effective_calibration() {
                CalibrationConfig::None if self.is_pca() => Threshold::Fixed(1.0),
                CalibrationConfig::None => Threshold::Fixed(DEFAULT_THRESHOLD),
                CalibrationConfig::Likelihood(_) => Threshold::Fixed(DEFAULT_LIKELIHOOD_THRESHOLD),
            })
    }

    /// The release value in force, when the threshold is a number.
    pub fn effective_release(&self) -> Option<f64> {
        let Threshold::Fixed(t) = self.effective_threshold() else {
            return self.incident.release;
        };
        Some(
            self.incident
                .release
                .unwrap_or(match self.effective_calibration() {
                    CalibrationConfig::Likelihood(l) => l.min_score,
                    CalibrationConfig::None => t,
                }),
        )
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
        let added = self.incident_columns();
        for col in &added {
            if input.field_with_name(col).is_ok() {
                v.error(
                    &["column_prefix"],
                    format!("the input already has a column `{col}`, which this transform adds"),
                )
                .help("set `column_prefix`, e.g. `column_prefix: second_`");
                ok = false;
            }
        }
        for (key, col) in [
            ("score_column", &self.score_column),
            ("flag_column", &self.flag_column),
        ] {
            if added.contains(col) {
                v.error(&[key], format!("`{col}` is a column this transform adds"));
                ok = false;
            }
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
        ok &= self.check_decision(v);
        match &self.effective_threshold() {
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
        ok.then(|| {
            output_schema(
                input,
                &self.score_column,
                &self.flag_column,
                &self.column_prefix,
            )
        })
    }

    /// Checks calibration, threshold and incident settings together.
    fn check_decision(&self, v: &mut Validator) -> bool {
        let mut ok = true;
        if let CalibrationConfig::Likelihood(l) = &self.effective_calibration() {
            if !(l.min_std.is_finite() && l.min_std > 0.0) {
                v.error(
                    &["calibration", "min_std"],
                    "`min_std` must be a positive number",
                );
                ok = false;
            }
            if !(l.spikes.score.is_finite() && l.spikes.score > 0.0 && l.spikes.score < 1.0) {
                v.error(
                    &["calibration", "spikes", "score"],
                    "`score` must be a raw score in (0, 1), e.g. 0.95",
                );
                ok = false;
            }
            if !l.min_score.is_finite() {
                v.error(
                    &["calibration", "min_score"],
                    "`min_score` must be a number",
                );
                ok = false;
            }
            match &self.threshold {
                Some(Threshold::Calibrate(_)) => {
                    v.error(
                        &["threshold"],
                        "a learned score threshold needs `calibration: none`",
                    )
                    .help("the likelihood is already calibrated per key: give a likelihood such as `0.9`, or set `calibration: none`");
                    ok = false;
                }
                Some(Threshold::Fixed(t)) if !(*t > 0.0 && *t < 1.0) => {
                    v.error(
                        &["threshold"],
                        format!("{t} is not a likelihood: with `calibration: likelihood` the threshold is in (0, 1), e.g. 0.9"),
                    );
                    ok = false;
                }
                _ => {}
            }
        }
        let open = match (&self.effective_calibration(), self.effective_threshold()) {
            (CalibrationConfig::Likelihood(l), _) => Some(l.min_score),
            (CalibrationConfig::None, Threshold::Fixed(t)) => Some(t),
            (CalibrationConfig::None, Threshold::Calibrate(_)) => None,
        };
        if let (Some(r), Some(t)) = (self.incident.release, open)
            && (!r.is_finite() || r > t)
        {
            v.error(
                &["incident", "release"],
                format!("release {r} must be a number no higher than the score that opens an incident ({t})"),
            );
            ok = false;
        }
        ok
    }

    /// Checks `model` and `fit` together; for PCA, loads a given model file.
    fn check_scoring(&self, v: &mut Validator) -> bool {
        let mut ok = true;
        match (&self.model, &self.fit) {
            (None, None) => {
                v.error(
                    &["model"],
                    "set `model` (an ONNX model or a `sluice fit` file) or `fit`",
                );
                return false;
            }
            (Some(m), Some(_)) if !m.as_str().ends_with(".json") => {
                v.error(
                    &["fit"],
                    "`fit` learns PCA models per key; it does not combine with an ONNX `model`",
                )
                .help("remove `model`, or give a `.json` file written by `sluice fit`");
                return false;
            }
            _ => {}
        }
        if let Some(f) = &self.fit {
            match (f.rows, f.period) {
                (None, None) | (Some(_), Some(_)) => {
                    v.error(&["fit"], "give exactly one of `rows` and `for`");
                    ok = false;
                }
                (Some(n), None) if n.get() < super::pca::min_rows(self.features.len()) => {
                    v.error(
                        &["fit", "rows"],
                        format!(
                            "{n} rows are too few to fit {} features: need at least {}",
                            self.features.len(),
                            super::pca::min_rows(self.features.len())
                        ),
                    );
                    ok = false;
                }
                _ => {}
            }
            if let Err(e) = f.options().validate() {
                v.error(&["fit"], e.to_string());
                ok = false;
            }
        }
        if self.is_pca()
            && let Err(e) = self.pca_source("", "")
        {
            v.error(&["model"], e);
            ok = false;
        }
        ok
    }

    pub(crate) fn pca_source(&self, pipeline: &str, id: &str) -> Result<PcaSource, String> {
        PcaSource::new(
            self.model.as_ref().map(|m| Path::new(m.as_str())),
            self.fit.as_ref(),
            &self.features,
            pipeline,
            id,
        )
    }

    fn load_model(&self, max_batch: usize) -> Result<ScoringModel, ModelError> {
        let path = self.model.as_ref().map(|m| m.as_str()).unwrap_or_default();
        ScoringModel::load(
            Path::new(path),
            self.sha256.as_deref(),
            self.history.get(),
            self.features.len(),
            max_batch,
        )
    }
}

/// The input columns plus the score (float64) and flag (bool) columns and
/// the likelihood and incident columns, all nullable: they are null until a
/// key has warmed up.
pub fn output_schema(
    input: &SchemaRef,
    score_column: &str,
    flag_column: &str,
    prefix: &str,
) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(score_column, DataType::Float64, true));
    fields.push(Field::new(flag_column, DataType::Boolean, true));
    let types = [
        DataType::Float64,
        DataType::Utf8,
        DataType::Boolean,
        DataType::Boolean,
        DataType::Float64,
        DataType::Int64,
    ];
    for (name, ty) in INCIDENT_COLUMNS.iter().zip(types) {
        fields.push(Field::new(format!("{prefix}{name}"), ty, true));
    }
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
    const TYPE: &'static str = "anomaly";
    const METRICS: &'static [sluice_core::metrics::MetricDoc] = super::names::METRICS;
    type Component = AnomalyTransform;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
        let input = InputSchema::stream(inputs)?;
        let schema = self.check_columns(input, v);
        if !self.check_scoring(v) {
            return None;
        }
        if self.is_pca() {
            return schema;
        }
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
            return Err(v.into_build_error(&cx.id));
        };
        let scorer = if self.is_pca() {
            Scorer::Pca(
                self.pca_source(&cx.pipeline, &cx.id)
                    .map_err(|e| BuildError::msg(format!("component `{}`: {e}", cx.id)))?,
            )
        } else {
            Scorer::Onnx(Arc::new(self.load_model(self.batch_rows.get()).map_err(
                |e| BuildError::context(format!("component `{}`", cx.id), e),
            )?))
        };
        AnomalyTransform::new(self, cx, input, output, scorer)
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
        assert_eq!(c.threshold, Some(Threshold::Fixed(0.8)));
        let c = parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\nthreshold: 1\n").unwrap();
        assert_eq!(c.threshold, Some(Threshold::Fixed(1.0)));
    }

    #[test]
    fn threshold_accepts_a_calibration_map_with_defaults() {
        let c = parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\nthreshold: {calibrate: 5m}\n")
            .unwrap();
        let Some(Threshold::Calibrate(cal)) = c.threshold else {
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
        assert_eq!(
            c.effective_threshold(),
            Threshold::Fixed(DEFAULT_LIKELIHOOD_THRESHOLD)
        );
        assert_eq!(c.effective_release(), Some(DEFAULT_MIN_SCORE));
        assert_eq!(c.effective_calibration(), CalibrationConfig::default());
        assert_eq!(c.incident, IncidentConfig::default());
        assert_eq!(c.on_invalid, OnInvalid::Drop);
    }

    #[test]
    fn without_calibration_the_threshold_is_a_raw_score() {
        let c = parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\ncalibration: none\n").unwrap();
        assert_eq!(c.effective_threshold(), Threshold::Fixed(DEFAULT_THRESHOLD));
        assert_eq!(c.effective_release(), Some(DEFAULT_THRESHOLD));
    }

    #[test]
    fn calibration_and_incidents_take_maps() {
        let c = parse(
            "inputs: [a]\nmodel: m.onnx\nfeatures: [v]\ncalibration: {short: 5, learn: 50}\nincident: {release: 0.95, quiet: 30s, cooldown: 500}\n",
        )
        .unwrap();
        let Some(CalibrationConfig::Likelihood(l)) = c.calibration else {
            panic!("{:?}", c.calibration)
        };
        assert_eq!((l.short.get(), l.long.get(), l.learn), (5, 2000, 50));
        assert_eq!(l.min_score, DEFAULT_MIN_SCORE);
        assert_eq!(c.incident.quiet, Span::Time(Duration::from_secs(30)));
        assert_eq!(c.incident.cooldown, Span::Rows(500));
        assert_eq!(c.effective_release(), Some(0.95));
        let err = parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\ncalibration: sometimes\n")
            .unwrap_err();
        assert!(err.contains("unknown calibration `sometimes`"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(parse("inputs: [a]\nmodel: m.onnx\nfeatures: [v]\nhistroy: 3\n").is_err());
    }
}
