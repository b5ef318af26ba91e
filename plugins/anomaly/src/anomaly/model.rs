//! Loading an anomaly model with tract and scoring windows with it.
//!
//! The model is loaded, checked and optimised once, with concrete shapes: one
//! plan per batch size in [`BUCKETS`] (capped by the configured batch size),
//! so a small batch does not pay for a large one. A batch is padded with
//! zeros up to the smallest plan that holds it; rows are independent, so
//! padding never changes a score.
//!

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// Batch sizes of the optimised plans, before the configured maximum.
pub const BUCKETS: [usize; 4] = [1, 8, 64, 512];

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read.
    #[error("reading model {path}: {source}")]
    Read {
        /// Model path.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// `sha256` is not 64 hexadecimal digits.
    #[error("`sha256` must be 64 hexadecimal digits, got `{0}`")]
    BadChecksum(String),
    /// The file does not have the configured checksum.
    #[error("model {path} has SHA-256 {actual}, expected {expected}; refusing to load it")]
    ChecksumMismatch {
        /// Model path.
        path: PathBuf,
        /// Configured checksum.
        expected: String,
        /// Checksum of the file.
        actual: String,
    },
    /// tract could not parse, type or optimise the model.
    #[error("loading model {path}: {message}")]
    Load {
        /// Model path.
        path: PathBuf,
        /// tract's error chain.
        message: String,
    },
    /// The model's input or output does not fit the configuration.
    #[error("model {path} {problem}")]
    Shape {
        /// Model path.
        path: PathBuf,
        /// What does not fit.
        problem: String,
        /// Whether the mismatch is in the number of features (else history).
        features: bool,
    },
    /// Inference failed.
    #[error("running the model: {0}")]
    Run(String),
}

/// The SHA-256 of `bytes` in lowercase hexadecimal.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An optimised model scoring windows of `history x features` values; what
/// the transform runs, public for benchmarks and tools.
#[derive(Debug)]
pub struct ScoringModel {
    plans: Vec<Plan>,
    history: usize,
    features: usize,
    layout: Layout,
}

/// One optimised plan and the run states kept between calls, so a call does
/// not rebuild the per-node state (the values themselves are still
/// allocated by each operator).
#[derive(Debug)]
struct Plan {
    batch: usize,
    plan: Arc<TypedRunnableModel>,
    states: Mutex<Vec<TypedSimpleState>>,
}

impl Plan {
    fn run(&self, input: Tensor) -> TractResult<TVec<TValue>> {
        let idle = self
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut state = match idle {
            Some(state) => state,
            None => self.plan.spawn()?,
        };
        let out = state.run(tvec!(input.into()));
        // A state that failed mid-run is dropped, not reused.
        if out.is_ok() {
            self.states
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(state);
        }
        out
    }
}

/// Batch sizes to optimise a plan for: the buckets below `max_batch` and
/// `max_batch` itself.
fn plan_sizes(max_batch: usize) -> Vec<usize> {
    let max_batch = max_batch.max(1);
    let mut sizes: Vec<usize> = BUCKETS.iter().copied().filter(|b| *b < max_batch).collect();
    sizes.push(max_batch);
    sizes
}

fn load_error(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Load {
        path: path.to_owned(),
        message: format!("{e:#}"),
    }
}

impl ScoringModel {
    /// Loads `path`, verifies `sha256` when given, checks the input shape
    /// against `history` and `features` and optimises one plan per batch size
    /// up to `max_batch`. Scores on the calling thread.
    pub fn load(
        path: &Path,
        sha256: Option<&str>,
        history: usize,
        features: usize,
        max_batch: usize,
    ) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.to_owned(),
            source,
        })?;
        if let Some(expected) = sha256 {
            let expected = expected.trim().to_ascii_lowercase();
            if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ModelError::BadChecksum(expected));
            }
            let actual = sha256_hex(&bytes);
            if actual != expected {
                return Err(ModelError::ChecksumMismatch {
                    path: path.to_owned(),
                    expected,
                    actual,
                });
            }
        }
        let onnx = tract_onnx::onnx();
        let proto = onnx
            .proto_model_for_read(&mut bytes.as_slice())
            .map_err(|e| load_error(path, e))?;
        let model = onnx
            .model_for_proto_model(&proto)
            .map_err(|e| load_error(path, e))?;
        let layout = check_input(path, &model, history, features)?;

        let sizes = plan_sizes(max_batch);
        let mut plans = Vec::with_capacity(sizes.len());
        for batch in sizes {
            let fact = match layout {
                Layout::Rank3 => f32::fact([batch, history, features]),
                Layout::Flat => f32::fact([batch, history * features]),
            };
            let plan = model
                .clone()
                .with_input_fact(0, fact.into())
                .and_then(|m| m.into_optimized())
                .and_then(|m| {
                    check_output(path, &m, batch)?;
                    m.into_runnable()
                })
                .map_err(|e| match e.downcast::<ModelError>() {
                    Ok(shape) => shape,
                    Err(e) => load_error(path, e),
                })?;
            plans.push(Plan {
                batch,
                plan,
                states: Mutex::new(Vec::new()),
            });
        }
        Ok(Self {
            plans,
            history,
            features,
            layout,
        })
    }

    /// Values per window: `history x features`.
    pub fn window_len(&self) -> usize {
        self.history * self.features
    }

    /// Scores the windows laid out one after the other in `windows`
    /// (row-major `[rows, history, features]`), one score per window.
    pub fn score(&self, windows: &[f32]) -> Result<Vec<f32>, ModelError> {
        let per_row = self.window_len();
        let rows = windows.len() / per_row;
        let mut scores = Vec::with_capacity(rows);
        let Some(largest) = self.plans.last().map(|p| p.batch) else {
            return Err(ModelError::Run("no execution plan".into()));
        };
        for chunk in windows.chunks(largest * per_row) {
            scores.extend(self.score_chunk(chunk)?);
        }
        Ok(scores)
    }

    /// Scores the windows of `chunk` with the smallest plan that holds them,
    /// the rest of its batch padded with zeros.
    fn score_chunk(&self, chunk: &[f32]) -> Result<Vec<f32>, ModelError> {
        let per_row = self.window_len();
        let n = chunk.len() / per_row;
        let Some(plan) = self.plans.iter().find(|p| p.batch >= n) else {
            return Err(ModelError::Run(format!("no plan holds {n} rows")));
        };
        let batch = plan.batch;
        // Both layouts hold the same values in the same order.
        let shape: &[usize] = match self.layout {
            Layout::Rank3 => &[batch, self.history, self.features],
            Layout::Flat => &[batch, per_row],
        };
        let run_err = |e: &dyn std::fmt::Display| ModelError::Run(format!("{e:#}"));
        let input = if n == batch {
            Tensor::from_shape(shape, chunk)
        } else {
            let mut data = Vec::with_capacity(batch * per_row);
            data.extend_from_slice(chunk);
            data.resize(batch * per_row, 0.0);
            Tensor::from_shape(shape, &data)
        }
        .map_err(|e| run_err(&e))?;
        let out = plan.run(input).map_err(|e| run_err(&e))?;
        let first = out
            .first()
            .ok_or_else(|| ModelError::Run("the model has no output".into()))?;
        let view = first
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(|e| run_err(&e))?;
        Ok(view.get(..n).unwrap_or(view).to_vec())
    }
}

/// The model's window layout: `[batch, history, features]` or the same
/// values flattened, `[batch, history * features]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Rank3,
    Flat,
}

fn check_input(
    path: &Path,
    model: &InferenceModel,
    history: usize,
    features: usize,
) -> Result<Layout, ModelError> {
    let shape_err = |problem: String, features: bool| ModelError::Shape {
        path: path.to_owned(),
        problem,
        features,
    };
    let inputs = model.inputs.len();
    if inputs != 1 {
        return Err(shape_err(
            format!("has {inputs} inputs, expected one window input"),
            false,
        ));
    }
    let fact = model.input_fact(0).map_err(|e| load_error(path, e))?;
    if let Some(dt) = fact.datum_type.concretize()
        && dt != f32::datum_type()
    {
        return Err(shape_err(
            format!("takes {dt:?} input, expected f32"),
            false,
        ));
    }
    let dims: Vec<Option<usize>> = fact
        .shape
        .dims()
        .map(|d| {
            d.concretize()
                .and_then(|d| d.to_i64().ok())
                .and_then(|d| usize::try_from(d).ok())
        })
        .collect();
    let plural = if features == 1 { "" } else { "s" };
    let expected = format!(
        "[batch, {}] or [batch, {history}, {features}] (history {history}, {features} feature{plural})",
        history * features
    );
    let shown = dims
        .iter()
        .map(|d| d.map_or_else(|| "?".to_owned(), |d| d.to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    let mismatch = |features_differ: bool| {
        shape_err(
            format!("takes windows [{shown}], expected {expected}"),
            features_differ,
        )
    };
    match dims.as_slice() {
        [_, Some(flat)] if *flat != history * features => {
            // When the configured features still divide the flat size, the
            // history is the likelier mistake.
            Err(mismatch(flat % features != 0))
        }
        [_, _] => Ok(Layout::Flat),
        [_, Some(h), _] if *h != history => Err(mismatch(false)),
        [_, _, Some(f)] if *f != features => Err(mismatch(true)),
        [_, _, _] => Ok(Layout::Rank3),
        _ if fact.shape.is_open() => Ok(Layout::Rank3),
        _ => Err(shape_err(
            format!(
                "takes input of rank {}, expected windows {expected}",
                dims.len()
            ),
            false,
        )),
    }
}

fn check_output(path: &Path, model: &TypedModel, batch: usize) -> TractResult<()> {
    let fact = model.output_fact(0)?;
    let volume = fact
        .shape
        .as_concrete()
        .map(|s| s.iter().product::<usize>());
    if fact.datum_type != f32::datum_type() || volume != Some(batch) {
        return Err(ModelError::Shape {
            path: path.to_owned(),
            problem: format!(
                "outputs {:?} {:?} for a batch of {batch}, expected one f32 score per row",
                fact.datum_type, fact.shape
            ),
            features: false,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/anomaly")
            .join(name)
    }

    #[test]
    fn loads_the_univariate_model_with_one_plan_per_bucket() {
        let m = ScoringModel::load(&model_path("univariate-h32.onnx"), None, 32, 1, 512).unwrap();
        let sizes: Vec<usize> = m.plans.iter().map(|p| p.batch).collect();
        assert_eq!(sizes, vec![1, 8, 64, 512]);
    }

    #[test]
    fn padding_does_not_change_scores() {
        let m = ScoringModel::load(&model_path("univariate-h32.onnx"), None, 32, 1, 64).unwrap();
        let windows: Vec<f32> = (0..32 * 10).map(|i| ((i as f32) * 0.37).sin()).collect();
        let all = m.score(&windows).unwrap();
        let one = m.score(&windows[..32]).unwrap();
        assert_eq!(all.len(), 10);
        assert!((all[0] - one[0]).abs() < 1e-6);
    }

    #[test]
    fn a_reused_run_state_gives_the_same_scores_as_a_fresh_one() {
        let m = ScoringModel::load(&model_path("factory-h16.onnx"), None, 16, 3, 8).unwrap();
        let a: Vec<f32> = (0..48 * 8).map(|i| ((i as f32) * 0.37).sin()).collect();
        let b: Vec<f32> = (0..48 * 8)
            .map(|i| ((i as f32) * 0.11).cos() * 3.0)
            .collect();
        let first = m.score(&a).unwrap();
        let other = m.score(&b).unwrap();
        assert_eq!(m.score(&a).unwrap(), first);
        assert_ne!(other, first);
    }

    #[test]
    fn plans_cover_the_buckets_below_the_largest_batch() {
        let m = ScoringModel::load(&model_path("univariate-h32.onnx"), None, 32, 1, 1000).unwrap();
        let sizes: Vec<usize> = m.plans.iter().map(|p| p.batch).collect();
        assert_eq!(sizes, vec![1, 8, 64, 512, 1000]);
        // Row counts between plans, at one, and beyond the largest plan.
        for rows in [1, 7, 63, 65, 512, 1100] {
            let windows: Vec<f32> = (0..32 * rows).map(|i| ((i as f32) * 0.37).sin()).collect();
            assert_eq!(m.score(&windows).unwrap().len(), rows);
        }
    }

    #[test]
    fn refuses_a_model_whose_checksum_differs() {
        let err = ScoringModel::load(
            &model_path("univariate-h32.onnx"),
            Some(&"0".repeat(64)),
            32,
            1,
            8,
        )
        .unwrap_err();
        assert!(matches!(err, ModelError::ChecksumMismatch { .. }), "{err}");
    }

    #[test]
    fn accepts_the_checksum_of_the_file() {
        let path = model_path("factory-h16.onnx");
        let sum = sha256_hex(&std::fs::read(&path).unwrap()).to_uppercase();
        assert!(ScoringModel::load(&path, Some(&sum), 16, 3, 8).is_ok());
    }

    #[test]
    fn rejects_a_window_shape_the_model_was_not_built_for() {
        let err =
            ScoringModel::load(&model_path("univariate-h32.onnx"), None, 16, 1, 8).unwrap_err();
        assert!(
            err.to_string()
                .contains("takes windows [?, 32], expected [batch, 16] or [batch, 16, 1]"),
            "{err}"
        );
        let err = ScoringModel::load(&model_path("factory-h16.onnx"), None, 16, 5, 8).unwrap_err();
        assert!(
            matches!(err, ModelError::Shape { features: true, .. }),
            "{err}"
        );
    }

    #[test]
    fn reports_a_corrupt_file_as_a_load_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.onnx");
        std::fs::write(&path, b"not a protobuf at all \xff\xfe").unwrap();
        let err = ScoringModel::load(&path, None, 32, 1, 8).unwrap_err();
        assert!(matches!(err, ModelError::Load { .. }), "{err}");
    }

    #[test]
    fn reports_a_missing_file_with_its_path() {
        let err = ScoringModel::load(Path::new("no/such/model.onnx"), None, 32, 1, 8).unwrap_err();
        assert!(err.to_string().contains("no/such/model.onnx"), "{err}");
    }
}
