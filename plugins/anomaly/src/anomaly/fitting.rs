//! `fit:`: a PCA T²+Q model learned per key from its own first rows, on
//! the box, then used to score that key (see [`super::pca`]).
//!
//! A key collects its first `rows` valid rows (or the rows of its first
//! `for` of event time), fits, writes the model to
//! `dir/<pipeline>/<component>/<key>.json` when `dir` is set, and scores
//! every later row: the score is the mean of the key's last `smooth` ratios
//! `max(T² / limit, Q / limit)`, so 1 is the edge of normal. A key whose
//! model file exists is scored from its first row. A model file written by
//! `sluice fit` can be given as `model:` instead.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use sluice_core::{EnvString, HumanDuration};

use super::pca::{
    FitError, FitOptions, KeyedModels, ModelFile, ModelFileError, PcaModel, RatioSmoother,
};

/// `fit:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FitConfig {
    /// Valid rows of a key to learn from.
    #[serde(default)]
    pub rows: Option<NonZeroUsize>,
    /// Event time of a key to learn from, from its first row.
    #[serde(default, rename = "for")]
    pub period: Option<HumanDuration>,
    /// Directory the fitted models are kept in, so a restart scores at once
    /// instead of learning again. Without it, models live in memory only.
    #[serde(default)]
    pub dir: Option<EnvString>,
    /// Fraction of the standardised variance the kept components explain.
    #[serde(default)]
    pub variance: Option<f64>,
    /// Confidence of the control limits.
    #[serde(default)]
    pub quantile: Option<f64>,
    /// Factor on both control limits.
    #[serde(default)]
    pub margin: Option<f64>,
    /// Rows whose ratios are averaged into the score.
    #[serde(default)]
    pub smooth: Option<usize>,
}

impl FitConfig {
    /// The fit options, defaults filled in.
    pub fn options(&self) -> FitOptions {
        let d = FitOptions::default();
        FitOptions {
            variance: self.variance.unwrap_or(d.variance),
            quantile: self.quantile.unwrap_or(d.quantile),
            margin: self.margin.unwrap_or(d.margin),
            smooth: self.smooth.unwrap_or(d.smooth),
            limits: d.limits,
        }
    }
}

/// Where fitted models come from, shared by every key.
#[derive(Debug)]
pub(crate) struct PcaSource {
    /// Models given by `model:` (one for every key, or one per key).
    given: Option<ModelFile>,
    /// Learning on the box, when `fit:` is set.
    pub fit: Option<FitSpec>,
    features: Vec<String>,
    /// Models of `fit.dir` by file name: read when the transform starts and
    /// kept as keys fit, so a key that returns (after an idle eviction or a
    /// restart) finds its model without file I/O on the async reactor.
    saved: Mutex<HashMap<String, Arc<PcaModel>>>,
}

/// How keys learn.
#[derive(Debug, Clone)]
pub(crate) struct FitSpec {
    pub rows: Option<usize>,
    pub period_ms: Option<i64>,
    pub options: FitOptions,
    pub dir: Option<PathBuf>,
}

/// A key's PCA state.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per key; boxing would add a pointer chase per row
pub(crate) enum PcaState {
    /// Collecting fit rows since `started_ms`.
    Learning { rows: Vec<f64>, started_ms: i64 },
    /// Scoring.
    Ready {
        model: Arc<PcaModel>,
        smoother: RatioSmoother,
    },
    /// No model for this key and nothing to learn with.
    Unscored,
}

/// What observing one row did.
pub(crate) enum PcaStep {
    /// The row's score.
    Score(f64),
    /// Still learning, or unscored.
    Nothing,
    /// The key just fitted; `save` writes its model when a directory is
    /// set (file I/O, so the caller runs it off the async reactor); `score`
    /// is the row's score under the new model.
    Fitted { save: Option<Save>, score: f64 },
    /// Fitting failed; the key goes on learning from its next rows.
    Failed(FitError),
}

impl PcaSource {
    /// Loads `model` (a `sluice fit` file) if given and prepares learning.
    pub fn new(
        model: Option<&Path>,
        fit: Option<&FitConfig>,
        features: &[String],
        pipeline: &str,
        component: &str,
    ) -> Result<Self, String> {
        let given = match model {
            Some(p) => {
                let file = ModelFile::load(p).map_err(|e| e.to_string())?;
                check_features(&file, features, p)?;
                Some(file)
            }
            None => None,
        };
        let fit = fit.map(|f| FitSpec {
            rows: f.rows.map(NonZeroUsize::get),
            period_ms: f.period.map(|d| d.get().as_millis() as i64),
            options: f.options(),
            dir: f.dir.as_ref().map(|d| {
                Path::new(d.as_str())
                    .join(safe(pipeline))
                    .join(safe(component))
            }),
        });
        let saved = fit
            .as_ref()
            .and_then(|f| f.dir.as_deref())
            .map(|dir| load_saved(dir, features))
            .unwrap_or_default();
        Ok(Self {
            given,
            fit,
            features: features.to_vec(),
            saved: Mutex::new(saved),
        })
    }

    /// A new key's state: a given or saved model, else learning.
    pub fn start(&self, key: Option<&str>, now_ms: i64) -> PcaState {
        let given = match &self.given {
            Some(ModelFile::Single(m)) => Some(m.clone()),
            Some(ModelFile::Keyed(k)) => key.and_then(|k2| k.models.get(k2)).cloned(),
            None => None,
        };
        let saved = || {
            self.saved
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&file_name(key))
                .cloned()
        };
        match given.map(Arc::new).or_else(saved) {
            Some(m) => ready(m),
            None if self.fit.is_some() => PcaState::Learning {
                rows: Vec::new(),
                started_ms: now_ms,
            },
            None => PcaState::Unscored,
        }
    }

    /// Feeds one valid row of a key.
    pub fn observe(
        &self,
        state: &mut PcaState,
        key: Option<&str>,
        row: &[f64],
        now_ms: i64,
    ) -> PcaStep {
        match state {
            PcaState::Ready { model, smoother } => {
                PcaStep::Score(smoother.push(model.score(row).ratio))
            }
            PcaState::Unscored => PcaStep::Nothing,
            PcaState::Learning { rows, started_ms } => {
                let Some(spec) = &self.fit else {
                    return PcaStep::Nothing;
                };
                let d = self.features.len();
                let by_rows = spec.rows.is_some_and(|n| rows.len() / d >= n);
                let by_time = spec
                    .period_ms
                    .is_some_and(|p| now_ms.saturating_sub(*started_ms) >= p);
                if !(by_rows || by_time) {
                    rows.extend_from_slice(row);
                    return PcaStep::Nothing;
                }
                match PcaModel::fit_named(rows, &self.features, &spec.options) {
                    Ok(model) => {
                        let mut smoother = model.smoother();
                        let score = smoother.push(model.score(row).ratio);
                        let model = Arc::new(model);
                        if spec.dir.is_some() {
                            self.saved
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .insert(file_name(key), model.clone());
                        }
                        let save = spec.dir.as_ref().map(|dir| Save {
                            model: model.clone(),
                            dir: dir.clone(),
                            file: file_name(key),
                        });
                        *state = PcaState::Ready { model, smoother };
                        PcaStep::Fitted { save, score }
                    }
                    Err(e) => {
                        // Learn again from fresh rows rather than forever
                        // from rows that cannot be fitted.
                        rows.clear();
                        *started_ms = now_ms;
                        PcaStep::Failed(e)
                    }
                }
            }
        }
    }
}

fn ready(model: Arc<PcaModel>) -> PcaState {
    let smoother = model.smoother();
    PcaState::Ready { model, smoother }
}

/// Reads the saved models of a directory (missing: none yet). A file that
/// cannot be read, or was fitted on other features, is logged and skipped:
/// its key learns again and overwrites it.
fn load_saved(dir: &Path, features: &[String]) -> HashMap<String, Arc<PcaModel>> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        match PcaModel::load(&path) {
            Ok(m) if m.features() == features => {
                out.insert(name.to_owned(), Arc::new(m));
            }
            Ok(_) => tracing::warn!(
                path = %path.display(),
                "saved anomaly model was fitted on other features; the key learns again"
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "saved anomaly model cannot be read; the key learns again"
            ),
        }
    }
    out
}

/// A fitted model still to be written to its key's file.
#[derive(Debug)]
pub(crate) struct Save {
    model: Arc<PcaModel>,
    dir: PathBuf,
    file: String,
}

impl Save {
    /// Writes the model (blocking file I/O with fsync).
    pub fn run(self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        self.model
            .save(&self.dir.join(&self.file))
            .map_err(|e: ModelFileError| e.to_string())
    }
}

fn check_features(file: &ModelFile, features: &[String], path: &Path) -> Result<(), String> {
    let models: Vec<&PcaModel> = match file {
        ModelFile::Single(m) => vec![m],
        ModelFile::Keyed(KeyedModels { models, .. }) => models.values().collect(),
    };
    for m in models {
        if m.features() != features {
            return Err(format!(
                "{} was fitted on features [{}], not [{}]",
                path.display(),
                m.features().join(", "),
                features.join(", ")
            ));
        }
    }
    Ok(())
}

/// A file name for a key: letters, digits, `-`, `_` and `.` kept, anything
/// else as `%XX`; the null key is `_all`.
fn file_name(key: Option<&str>) -> String {
    match key {
        None => "_all.json".to_owned(),
        Some(k) => format!("{}.json", safe(k)),
    }
}

fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && !out.is_empty()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_names_are_safe() {
        assert_eq!(file_name(Some("pump-3")), "pump-3.json");
        assert_eq!(file_name(Some("../etc")), "%2E.%2Fetc.json");
        assert_eq!(file_name(Some("a b/c")), "a%20b%2Fc.json");
        assert_eq!(file_name(None), "_all.json");
    }

    fn rows(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut out = Vec::new();
        for _ in 0..n {
            let z = next() * 4.0;
            out.extend([z + 0.1 * next(), 2.0 * z + 0.1 * next(), -z + 0.1 * next()]);
        }
        out
    }

    #[test]
    fn a_key_learns_then_scores_and_a_saved_model_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let features: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let cfg: FitConfig = serde_saphyr::from_str(&format!(
            "rows: 100\ndir: {}\nsmooth: 1\n",
            dir.path().display()
        ))
        .unwrap();
        let src = PcaSource::new(None, Some(&cfg), &features, "line", "scored").unwrap();
        let mut st = src.start(Some("pump 1"), 0);
        let data = rows(150, 3);
        let mut fitted = 0;
        let mut scores = Vec::new();
        for (i, r) in data.chunks(3).enumerate() {
            match src.observe(&mut st, Some("pump 1"), r, i as i64) {
                PcaStep::Fitted { save, score } => {
                    save.unwrap().run().unwrap();
                    fitted += 1;
                    scores.push(score);
                }
                PcaStep::Score(s) => scores.push(s),
                PcaStep::Nothing => {}
                PcaStep::Failed(e) => panic!("{e}"),
            }
        }
        assert_eq!(fitted, 1);
        assert_eq!(scores.len(), 50);
        assert!(scores.iter().all(|s| *s < 3.0), "{scores:?}");
        // A row breaking the correlation is far past the limits.
        let PcaStep::Score(s) = src.observe(&mut st, Some("pump 1"), &[1.0, -2.0, 1.0], 0) else {
            panic!("not scoring")
        };
        assert!(s > 10.0, "{s}");
        let saved = dir.path().join("line/scored/pump%201.json");
        assert!(saved.is_file());
        // A restarted transform scores the key from its first row.
        let again = PcaSource::new(None, Some(&cfg), &features, "line", "scored").unwrap();
        let mut st2 = again.start(Some("pump 1"), 0);
        assert!(matches!(
            again.observe(&mut st2, Some("pump 1"), &data[..3], 0),
            PcaStep::Score(_)
        ));
        // So does the same transform when the key returns after eviction,
        // from memory: the file is not read again.
        std::fs::remove_file(&saved).unwrap();
        let mut st3 = src.start(Some("pump 1"), 0);
        assert!(matches!(
            src.observe(&mut st3, Some("pump 1"), &data[..3], 0),
            PcaStep::Score(_)
        ));
    }

    #[test]
    fn an_unreadable_saved_model_is_skipped_and_the_key_learns_again() {
        let dir = tempfile::tempdir().unwrap();
        let features: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let keyed = dir.path().join("line/scored");
        std::fs::create_dir_all(&keyed).unwrap();
        std::fs::write(keyed.join("pump-1.json"), "{ not json").unwrap();
        let names: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
        PcaModel::fit_named(&rows(100, 5), &names, &FitOptions::default())
            .unwrap()
            .save(&keyed.join("pump-2.json"))
            .unwrap();
        let cfg: FitConfig =
            serde_saphyr::from_str(&format!("rows: 100\ndir: {}\n", dir.path().display())).unwrap();
        let src = PcaSource::new(None, Some(&cfg), &features, "line", "scored").unwrap();
        for key in ["pump-1", "pump-2"] {
            assert!(
                matches!(src.start(Some(key), 0), PcaState::Learning { .. }),
                "{key}"
            );
        }
    }

    #[test]
    fn a_model_file_with_other_features_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let names: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
        PcaModel::fit_named(&rows(100, 5), &names, &FitOptions::default())
            .unwrap()
            .save(&path)
            .unwrap();
        let features: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let err = PcaSource::new(Some(&path), None, &features, "p", "c").unwrap_err();
        assert!(
            err.contains("fitted on features [x, y, z], not [a, b, c]"),
            "{err}"
        );
    }
}
