//! The model file: small versioned JSON, written atomically, checked on load.
//!
//! One model (`format: "sluice-pca"`):
//! ```json
//! { "format": "sluice-pca", "version": 1,
//!   "features": ["current", "pressure"], "n_rows": 400,
//!   "options": { "variance": 0.95, "quantile": 0.99, "margin": 1.5,
//!                "limits": "parametric", "smooth": 5 },
//!   "mean": [..d], "scale": [..d],
//!   "components": [[..d], ..k], "eigenvalues": [..d],
//!   "t2_limit": 20.4, "q_limit": 0.34,
//!   "explained_variance": 0.99, "constant_features": [] }
//! ```
//! `explained_variance` and `constant_features` are written for people and
//! ignored on load. One model per key (`format: "sluice-pca-keyed"`):
//! `{ "format": "sluice-pca-keyed", "version": 1, "key": "pump", "models":
//! { "<key value>": <one model, as above>, ... } }`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{FitOptions, MAX_FEATURES, PcaModel, check_names, min_rows};

/// `format` of a one-model file.
pub const FORMAT: &str = "sluice-pca";
/// `format` of a file with one model per key.
pub const FORMAT_KEYED: &str = "sluice-pca-keyed";
/// The file version this build writes and reads.
pub const VERSION: u32 = 1;

/// Why a model file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// Reading or writing failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// File path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON of the expected shape.
    #[error("{path}: {source}")]
    Json {
        /// File path.
        path: PathBuf,
        /// The parse error, with line and column.
        source: serde_json::Error,
    },
    /// The file is not a PCA model file.
    #[error("{path}: `format` is {found}, expected `{FORMAT}` or `{FORMAT_KEYED}`")]
    Format {
        /// File path.
        path: PathBuf,
        /// The `format` found (or `missing`).
        found: String,
    },
    /// The file was written by another version.
    #[error("{path}: version {found} is not supported (this build reads version {VERSION})")]
    Version {
        /// File path.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// The numbers do not make a usable model.
    #[error("{path}: {message}")]
    Invalid {
        /// File path.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelDoc {
    format: String,
    version: u32,
    features: Vec<String>,
    n_rows: usize,
    options: FitOptions,
    mean: Vec<f64>,
    scale: Vec<f64>,
    components: Vec<Vec<f64>>,
    eigenvalues: Vec<f64>,
    t2_limit: f64,
    q_limit: f64,
    #[serde(default)]
    explained_variance: Option<f64>,
    #[serde(default)]
    constant_features: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyedDoc {
    format: String,
    version: u32,
    key: String,
    models: BTreeMap<String, ModelDoc>,
}

/// Only the header, read first so that a foreign or newer file gets a clear
/// error rather than a field-by-field complaint.
#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u32>,
}

/// One model per value of a key column.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedModels {
    /// Name of the key column.
    pub key: String,
    /// Model per key value.
    pub models: BTreeMap<String, PcaModel>,
}

/// What a model file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelFile {
    /// One model for every row.
    Single(PcaModel),
    /// One model per key value.
    Keyed(KeyedModels),
}

impl ModelFile {
    /// Reads either kind of model file, checking every shape.
    pub fn load(path: &Path) -> Result<Self, ModelFileError> {
        let text = read(path)?;
        match header(path, &text)?.as_str() {
            FORMAT => parse_model(path, &text).map(ModelFile::Single),
            _ => parse_keyed(path, &text).map(ModelFile::Keyed),
        }
    }
}

impl PcaModel {
    /// Writes the model to `path` atomically: a temporary file in the same
    /// directory, fsynced, renamed over `path`, then the directory fsynced.
    pub fn save(&self, path: &Path) -> Result<(), ModelFileError> {
        let bytes = to_json(path, &to_doc(self))?;
        write_atomic(path, &bytes)
    }

    /// Reads a one-model file written by [`PcaModel::save`].
    pub fn load(path: &Path) -> Result<Self, ModelFileError> {
        let text = read(path)?;
        match header(path, &text)?.as_str() {
            FORMAT => parse_model(path, &text),
            _ => Err(invalid(
                path,
                format!("holds one model per key (`{FORMAT_KEYED}`), not one model"),
            )),
        }
    }
}

impl KeyedModels {
    /// Writes all models to one file, atomically (see [`PcaModel::save`]).
    pub fn save(&self, path: &Path) -> Result<(), ModelFileError> {
        let doc = KeyedDoc {
            format: FORMAT_KEYED.to_owned(),
            version: VERSION,
            key: self.key.clone(),
            models: self
                .models
                .iter()
                .map(|(k, m)| (k.clone(), to_doc(m)))
                .collect(),
        };
        write_atomic(path, &to_json(path, &doc)?)
    }

    /// Reads a file written by [`KeyedModels::save`].
    pub fn load(path: &Path) -> Result<Self, ModelFileError> {
        let text = read(path)?;
        match header(path, &text)?.as_str() {
            FORMAT_KEYED => parse_keyed(path, &text),
            _ => Err(invalid(
                path,
                format!("holds one model (`{FORMAT}`), not one model per key"),
            )),
        }
    }
}

fn invalid(path: &Path, message: String) -> ModelFileError {
    ModelFileError::Invalid {
        path: path.to_owned(),
        message,
    }
}

fn read(path: &Path) -> Result<String, ModelFileError> {
    std::fs::read_to_string(path).map_err(|source| ModelFileError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })
}

fn json_error(path: &Path, source: serde_json::Error) -> ModelFileError {
    ModelFileError::Json {
        path: path.to_owned(),
        source,
    }
}

fn to_json<T: Serialize>(path: &Path, doc: &T) -> Result<Vec<u8>, ModelFileError> {
    let mut bytes = serde_json::to_vec_pretty(doc).map_err(|e| json_error(path, e))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Checks `format` and `version`; returns the format.
fn header(path: &Path, text: &str) -> Result<String, ModelFileError> {
    let h: Header = serde_json::from_str(text).map_err(|e| json_error(path, e))?;
    let format = match h.format {
        Some(f) if f == FORMAT || f == FORMAT_KEYED => f,
        Some(f) => {
            return Err(ModelFileError::Format {
                path: path.to_owned(),
                found: format!("`{f}`"),
            });
        }
        None => {
            return Err(ModelFileError::Format {
                path: path.to_owned(),
                found: "missing".to_owned(),
            });
        }
    };
    match h.version {
        Some(VERSION) => Ok(format),
        Some(found) => Err(ModelFileError::Version {
            path: path.to_owned(),
            found,
        }),
        None => Err(invalid(path, "no `version`".to_owned())),
    }
}

fn parse_model(path: &Path, text: &str) -> Result<PcaModel, ModelFileError> {
    let doc: ModelDoc = serde_json::from_str(text).map_err(|e| json_error(path, e))?;
    from_doc(doc).map_err(|m| invalid(path, m))
}

fn parse_keyed(path: &Path, text: &str) -> Result<KeyedModels, ModelFileError> {
    let doc: KeyedDoc = serde_json::from_str(text).map_err(|e| json_error(path, e))?;
    if doc.models.is_empty() {
        return Err(invalid(path, "`models` is empty".to_owned()));
    }
    let mut models = BTreeMap::new();
    for (key, m) in doc.models {
        let model = from_doc(m).map_err(|e| invalid(path, format!("model of key `{key}`: {e}")))?;
        models.insert(key, model);
    }
    Ok(KeyedModels {
        key: doc.key,
        models,
    })
}

fn to_doc(m: &PcaModel) -> ModelDoc {
    let d = m.mean.len();
    ModelDoc {
        format: FORMAT.to_owned(),
        version: VERSION,
        features: m.features.clone(),
        n_rows: m.n_rows,
        options: m.options,
        mean: m.mean.clone(),
        scale: m.scale.clone(),
        components: m.components.chunks_exact(d).map(<[f64]>::to_vec).collect(),
        eigenvalues: m.eigenvalues.clone(),
        t2_limit: m.t2_limit,
        q_limit: m.q_limit,
        explained_variance: Some(m.explained_variance()),
        constant_features: Some(
            m.constant_features()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
    }
}

/// Checks every shape and range a scorer relies on.
fn from_doc(doc: ModelDoc) -> Result<PcaModel, String> {
    if doc.format != FORMAT {
        return Err(format!("`format` is `{}`, expected `{FORMAT}`", doc.format));
    }
    if doc.version != VERSION {
        return Err(format!(
            "version {} is not supported (this build reads version {VERSION})",
            doc.version
        ));
    }
    let d = doc.features.len();
    if d == 0 || d > MAX_FEATURES {
        return Err(format!(
            "`features` has {d} names, expected 1..={MAX_FEATURES}"
        ));
    }
    check_names(&doc.features).map_err(|e| e.to_string())?;
    doc.options
        .validate()
        .map_err(|e| format!("`options`: {e}"))?;
    if doc.n_rows < min_rows(d) {
        return Err(format!(
            "`n_rows` is {}, a fit of {d} features needs at least {}",
            doc.n_rows,
            min_rows(d)
        ));
    }
    let finite = |name: &str, v: &[f64]| -> Result<(), String> {
        if v.len() != d {
            return Err(format!(
                "`{name}` has {} values, expected {d} (one per feature)",
                v.len()
            ));
        }
        match v.iter().position(|x| !x.is_finite()) {
            Some(i) => Err(format!("`{name}`[{i}] is not a finite number")),
            None => Ok(()),
        }
    };
    finite("mean", &doc.mean)?;
    finite("scale", &doc.scale)?;
    if let Some(i) = doc.scale.iter().position(|s| *s <= 0.0) {
        return Err(format!("`scale`[{i}] is {}, expected > 0", doc.scale[i]));
    }
    finite("eigenvalues", &doc.eigenvalues)?;
    if let Some(i) = doc.eigenvalues.iter().position(|l| *l < 0.0) {
        return Err(format!("`eigenvalues`[{i}] is negative"));
    }
    if doc
        .eigenvalues
        .windows(2)
        .any(|w| w[1] > w[0] * (1.0 + 1e-9) + 1e-12)
    {
        return Err("`eigenvalues` are not in descending order".to_owned());
    }
    let k = doc.components.len();
    if k == 0 || k > d {
        return Err(format!("`components` has {k} rows, expected 1..={d}"));
    }
    for (c, row) in doc.components.iter().enumerate() {
        finite(&format!("components[{c}]"), row)?;
        let norm: f64 = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        if (norm - 1.0).abs() > 1e-6 {
            return Err(format!("`components`[{c}] has length {norm}, expected 1"));
        }
        if doc.eigenvalues[c] <= 0.0 {
            return Err(format!(
                "`eigenvalues`[{c}] is 0 but component {c} is kept: its T² would be infinite"
            ));
        }
    }
    for (name, v) in [("t2_limit", doc.t2_limit), ("q_limit", doc.q_limit)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!("`{name}` is {v}, expected a positive number"));
        }
    }
    Ok(PcaModel {
        features: doc.features,
        n_rows: doc.n_rows,
        mean: doc.mean,
        scale: doc.scale,
        components: doc.components.into_iter().flatten().collect(),
        eigenvalues: doc.eigenvalues,
        t2_limit: doc.t2_limit,
        q_limit: doc.q_limit,
        options: doc.options,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelFileError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let io = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| ModelFileError::Io {
            action,
            path: p,
            source,
        }
    };
    let name = path
        .file_name()
        .ok_or_else(|| invalid(path, "is not a file path".to_owned()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(io("writing", &tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io("renaming into", path)));
    if let Err(e) = written {
        // The temporary file is garbage either way; the error above is the one to report.
        std::fs::remove_file(&tmp).ok();
        return Err(e);
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing the directory of", path))
}
